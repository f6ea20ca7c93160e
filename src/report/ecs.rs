//! The flow record as an Elastic Common Schema document (`--flows-format ecs`), for
//! Elasticsearch and OpenSearch: the ECS fields where ECS has one (README "ECS records" maps
//! them), appletap's classification under `appletap`. Timestamps are written as RFC 3339 by
//! hand (a dozen lines of calendar arithmetic) rather than pulling a date crate in for it.

use std::net::IpAddr;

use serde::Serialize;

use super::record::{FlowRecord, TunnelRecord};
use crate::classify::Evidence;

/// The ECS version the documents follow.
pub const ECS_VERSION: &str = "8.17.0";

/// One flow record in ECS shape, borrowing from the record.
#[derive(Debug, Serialize)]
pub struct EcsRecord<'a> {
    /// When the flow began (RFC 3339, UTC, microseconds).
    #[serde(rename = "@timestamp")]
    timestamp: String,
    ecs: EcsVersion,
    event: Event,
    source: Endpoint,
    destination: Endpoint,
    network: Network<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<Tls<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<UserAgent<'a>>,
    appletap: Appletap<'a>,
}

#[derive(Debug, Serialize)]
struct EcsVersion {
    version: &'static str,
}

#[derive(Debug, Serialize)]
struct Event {
    kind: &'static str,
    category: [&'static str; 1],
    #[serde(rename = "type")]
    kind_of: [&'static str; 1],
    outcome: &'static str,
    start: String,
    end: String,
    /// Nanoseconds, as ECS counts durations.
    duration: u64,
}

#[derive(Debug, Serialize)]
struct Endpoint {
    ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<String>,
    bytes: u64,
    packets: u64,
}

#[derive(Debug, Serialize)]
struct Network<'a> {
    transport: &'a str,
    iana_number: String,
    #[serde(rename = "type")]
    ip_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    community_id: Option<&'a str>,
    bytes: u64,
    packets: u64,
}

#[derive(Debug, Serialize)]
struct Tls<'a> {
    client: TlsClient<'a>,
}

#[derive(Debug, Serialize)]
struct TlsClient<'a> {
    server_name: &'a str,
}

#[derive(Debug, Serialize)]
struct UserAgent<'a> {
    original: &'a str,
}

#[derive(Debug, Serialize)]
struct Appletap<'a> {
    service: &'a str,
    apple: bool,
    confidence: Option<&'a str>,
    state: &'a str,
    role_by: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    alpn: Option<&'a str>,
    evidence: &'a [Evidence],
    /// ECS has no tunnel fields (its `network.inner` holds VLANs only): the flow record's
    /// `tunnel` goes here, as it is, and only where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    tunnel: Option<&'a TunnelRecord>,
}

impl<'a> EcsRecord<'a> {
    /// The ECS document of `r`.
    pub fn of(r: &'a FlowRecord) -> Self {
        let (transport, iana) = match r.proto.as_str() {
            // ECS wants the IANA keyword: ICMPv6 is `ipv6-icmp`.
            "tcp" => ("tcp", 6),
            "udp" => ("udp", 17),
            "icmp" => ("icmp", 1),
            "icmpv6" => ("ipv6-icmp", 58),
            other => (other, other.trim_start_matches("ip-").parse().unwrap_or(0)),
        };
        // ECS: state "failure" when the flow got no answer, "success" when it had one.
        let outcome = match r.state {
            "established" | "closed" | "reset" => "success",
            "rejected" | "unanswered" | "unreachable" => "failure",
            _ => "unknown",
        };
        let duration = ((r.last_ts - r.first_ts).max(0.0) * 1e9).round() as u64;
        Self {
            timestamp: rfc3339(r.first_ts),
            ecs: EcsVersion {
                version: ECS_VERSION,
            },
            event: Event {
                kind: "event",
                category: ["network"],
                kind_of: ["connection"],
                outcome,
                start: rfc3339(r.first_ts),
                end: rfc3339(r.last_ts),
                duration,
            },
            source: Endpoint {
                ip: r.client_ip,
                port: r.client_port,
                // ECS writes MACs upper case, dash-separated.
                mac: r
                    .client_mac
                    .map(|m| m.to_string().to_uppercase().replace(':', "-")),
                domain: None,
                bytes: r.bytes_to_server,
                packets: r.packets_to_server,
            },
            destination: Endpoint {
                ip: r.server_ip,
                port: r.server_port,
                mac: None,
                domain: r.name.clone(),
                bytes: r.bytes_to_client,
                packets: r.packets_to_client,
            },
            network: Network {
                transport,
                iana_number: iana.to_string(),
                ip_version: if r.client_ip.is_ipv4() {
                    "ipv4"
                } else {
                    "ipv6"
                },
                community_id: r.community_id.as_deref(),
                bytes: r.bytes_to_server + r.bytes_to_client,
                packets: r.packets_to_server + r.packets_to_client,
            },
            tls: r.names.sni.as_deref().map(|s| Tls {
                client: TlsClient { server_name: s },
            }),
            user_agent: r.user_agent.as_deref().map(|u| UserAgent { original: u }),
            appletap: Appletap {
                service: &r.service,
                apple: r.apple,
                confidence: r.confidence,
                state: r.state,
                role_by: r.role_by,
                alpn: r.alpn.as_deref(),
                evidence: &r.evidence,
                tunnel: r.tunnel.as_ref(),
            },
        }
    }
}

/// Seconds since the epoch as RFC 3339 in UTC with microseconds (`2020-02-23T10:43:18.587648Z`).
pub fn rfc3339(ts: f64) -> String {
    let micros = (ts.max(0.0) * 1e6).round() as i64;
    let (secs, frac) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to civil date (H. Hinnant's algorithm, proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00.000000Z");
        // `date -u -d @1582454598` = Sun Feb 23 10:43:18 UTC 2020.
        assert_eq!(rfc3339(1_582_454_598.587648), "2020-02-23T10:43:18.587648Z");
        // 2000-02-29 (leap day) and 2024-12-31T23:59:59.
        assert_eq!(rfc3339(951_782_400.5), "2000-02-29T00:00:00.500000Z");
        assert_eq!(rfc3339(1_735_689_599.0), "2024-12-31T23:59:59.000000Z");
    }
}
