//! What is blocked and what is unexpected: per Apple service and server port, how connection
//! attempts ended (answered, rejected, unanswered, unreachable), a verdict with its reason in
//! words and what Apple says to allow; and traffic that does not fit the signature set (Apple
//! endpoints on unlisted ports, Apple service ports on non-Apple endpoints).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::classify::{Confidence, Signal};
use crate::decode::ip_proto;
use crate::signature::{ServiceId, SignatureSet, Transport};
use crate::tally::Finished;

/// Most distinct (kind, endpoint, port) lines of unexpected traffic remembered.
const MAX_UNEXPECTED: usize = 10_000;

/// How the connection attempts to one service on one server port ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    /// Flows whose start was seen (a SYN, or a first UDP request).
    pub attempts: u64,
    /// Attempts that were answered (established, then closed or reset or still open).
    pub established: u64,
    /// SYNs answered by RST.
    pub rejected: u64,
    /// SYNs or requests with no reply at all.
    pub unanswered: u64,
    /// Attempts an ICMP error said could not be delivered.
    pub unreachable: u64,
    /// Flows seen only from the middle (the capture began after they did), with traffic both
    /// ways: evidence that the service works, not attempts.
    pub midflow: u64,
}

impl Outcomes {
    fn add(&mut self, o: &Self) {
        self.attempts += o.attempts;
        self.established += o.established;
        self.rejected += o.rejected;
        self.unanswered += o.unanswered;
        self.unreachable += o.unreachable;
        self.midflow += o.midflow;
    }

    fn failed(&self) -> u64 {
        self.rejected + self.unanswered + self.unreachable
    }
}

/// A kind of unexpected traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnexpectedKind {
    /// An Apple address or Apple name on a port the signature set does not list.
    AppleEndpointUnlistedPort,
    /// A well-known Apple service port used by a non-Apple endpoint.
    ApplePortNonAppleEndpoint,
}

/// One line of unexpected traffic: who, which port, how many flows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct UnexpectedKey {
    /// What is unexpected about it.
    pub kind: UnexpectedKind,
    /// `tcp` or `udp`.
    pub proto: String,
    /// Server port.
    pub port: u16,
    /// Server address.
    pub server: String,
    /// Name seen for the server, if any.
    pub name: Option<String>,
    /// The service the port or endpoint suggests.
    pub service: String,
}

/// Health and unexpected-traffic counters of one worker; merged across workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    /// (service, transport, server port) -> outcomes.
    pub health: BTreeMap<(ServiceId, Transport, u16), Outcomes>,
    /// Unexpected traffic -> flows.
    pub unexpected: BTreeMap<UnexpectedKey, u64>,
    /// Flows of unexpected traffic past the bound.
    pub unexpected_dropped: u64,
}

impl Audit {
    /// Counts a finished flow.
    pub fn add_flow(&mut self, sigs: &SignatureSet, f: &Finished<'_>) {
        let flow = f.flow;
        let transport = match flow.proto {
            ip_proto::TCP => Transport::Tcp,
            ip_proto::UDP => Transport::Udp,
            _ => return,
        };
        let port = flow.server.1;
        let conf = f.decision.confidence;
        let service = f.decision.service;
        let apple = service.is_some_and(|s| sigs.service(s).apple);
        // Health: Apple services labelled at least `likely`; a port-only guess is not enough
        // to call a service blocked.
        if let Some(service) = service
            && apple
            && conf >= Some(Confidence::Likely)
        {
            let mut o = Outcomes::default();
            match flow.state() {
                "established" | "closed" | "reset" => {
                    o.attempts = 1;
                    o.established = 1;
                }
                "rejected" => {
                    o.attempts = 1;
                    o.rejected = 1;
                }
                "unanswered" => {
                    o.attempts = 1;
                    o.unanswered = 1;
                }
                "unreachable" => {
                    o.attempts = 1;
                    o.unreachable = 1;
                }
                "partial" if flow.packets[0] > 0 && flow.packets[1] > 0 => {
                    o.midflow = 1;
                }
                _ => {}
            }
            if o != Outcomes::default() {
                self.health
                    .entry((service, transport, port))
                    .or_default()
                    .add(&o);
            }
        }
        let decided_by = f.decision.decided_by();
        let port_rule = sigs.port_rule(transport, port).map(|(_, r)| r);
        let port_listed =
            port_rule.is_some_and(|r| !r.used_by.is_empty() || sigs.service(r.service).apple);
        // An Apple endpoint on the Internet (by address or name; mDNS endpoints of local
        // devices legitimately use dynamic ports) on a port no Apple signature lists.
        let internet_apple = apple
            && matches!(
                decided_by,
                Some(
                    Signal::Address
                        | Signal::Sni
                        | Signal::QuicSni
                        | Signal::HttpHost
                        | Signal::Dns
                )
            );
        if internet_apple && !port_listed {
            let service = service.map_or(crate::signature::UNKNOWN, |s| &sigs.service(s).id);
            self.note(
                f,
                transport,
                UnexpectedKind::AppleEndpointUnlistedPort,
                service,
            );
        }
        // A port that only Apple services use, on an Internet endpoint nothing says is Apple's.
        // (On a private or link-local address the server is a local device, often a Mac, and
        // nothing tells whose it is.)
        if let Some(r) = port_rule
            && sigs.service(r.service).apple
            && !(apple && conf >= Some(Confidence::Likely))
            && !sigs.is_apple_address(flow.server.0)
            && is_global(flow.server.0)
        {
            self.note(
                f,
                transport,
                UnexpectedKind::ApplePortNonAppleEndpoint,
                &sigs.service(r.service).id,
            );
        }
    }

    fn note(
        &mut self,
        f: &Finished<'_>,
        transport: Transport,
        kind: UnexpectedKind,
        service: &str,
    ) {
        let key = UnexpectedKey {
            kind,
            proto: transport.as_str().to_string(),
            port: f.flow.server.1,
            server: f.flow.server.0.to_string(),
            name: f.name.map(str::to_string),
            service: service.to_string(),
        };
        if let Some(n) = self.unexpected.get_mut(&key) {
            *n += 1;
        } else if self.unexpected.len() < MAX_UNEXPECTED {
            self.unexpected.insert(key, 1);
        } else {
            self.unexpected_dropped += 1;
        }
    }

    /// Adds another worker's counters.
    pub fn merge(&mut self, other: &Self) {
        for (k, o) in &other.health {
            self.health.entry(*k).or_default().add(o);
        }
        for (k, n) in &other.unexpected {
            if let Some(m) = self.unexpected.get_mut(k) {
                *m += n;
            } else if self.unexpected.len() < MAX_UNEXPECTED {
                self.unexpected.insert(k.clone(), *n);
            } else {
                self.unexpected_dropped += n;
            }
        }
        self.unexpected_dropped += other.unexpected_dropped;
    }
}

/// A service's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No attempt failed.
    Ok,
    /// Some attempts failed, others got through.
    Degraded,
    /// Attempts were made and none got through.
    Blocked,
}

impl Verdict {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Degraded => "degraded",
            Self::Blocked => "blocked",
        }
    }
}

/// Per-port outcomes in a health line.
#[derive(Debug, Clone, Serialize)]
pub struct PortOutcomes {
    /// `tcp` or `udp`.
    pub proto: String,
    /// Server port.
    pub port: u16,
    /// Outcomes.
    #[serde(flatten)]
    pub outcomes: Outcomes,
}

/// What the sources say a firewall must allow for a service.
#[derive(Debug, Clone, Serialize)]
pub struct Allow {
    /// Ports (`tcp/5223`, ...).
    pub ports: Vec<String>,
    /// Hosts (`*.push.apple.com`, ...).
    pub hosts: Vec<String>,
    /// Where that comes from.
    pub sources: Vec<String>,
}

/// One Apple service's health.
#[derive(Debug, Clone, Serialize)]
pub struct HealthLine {
    /// Service id.
    pub service: String,
    /// Totals over its ports.
    #[serde(flatten)]
    pub outcomes: Outcomes,
    /// `ok`, `degraded` or `blocked`.
    pub verdict: Verdict,
    /// The verdict in words.
    pub reason: String,
    /// Per server port.
    pub ports: Vec<PortOutcomes>,
    /// What to allow, per the sources (for verdicts other than ok).
    pub allow: Option<Allow>,
}

fn port_name(proto: &str, port: u16) -> String {
    format!("{} {port}", proto.to_ascii_uppercase())
}

/// "connection attempts" for TCP, "requests" for UDP.
fn attempts_word(proto: &str, n: u64) -> String {
    if proto == "tcp" {
        plural(n, "connection attempt", "connection attempts")
    } else {
        plural(n, "request", "requests")
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Builds the health lines: one per Apple service with at least one attempt or mid-flow flow.
pub fn health_lines(sigs: &SignatureSet, audit: &Audit) -> Vec<HealthLine> {
    let mut by_service: BTreeMap<&str, Vec<PortOutcomes>> = BTreeMap::new();
    for ((service, transport, port), o) in &audit.health {
        let service = sigs.service(*service).id.as_str();
        by_service.entry(service).or_default().push(PortOutcomes {
            proto: transport.as_str().to_string(),
            port: *port,
            outcomes: *o,
        });
    }
    let mut lines: Vec<HealthLine> = by_service
        .into_iter()
        .map(|(service, ports)| {
            let mut total = Outcomes::default();
            for p in &ports {
                total.add(&p.outcomes);
            }
            let answered = total.established + total.midflow;
            let verdict = if total.failed() == 0 {
                Verdict::Ok
            } else if answered == 0 {
                Verdict::Blocked
            } else {
                Verdict::Degraded
            };
            let reason = reason(service, &ports, &total, verdict);
            let allow = (verdict != Verdict::Ok)
                .then(|| sigs.service_id(service))
                .flatten()
                .map(|id| sigs.service(id))
                .filter(|s| !s.allow.is_empty() || !s.allow_hosts.is_empty())
                .map(|s| Allow {
                    ports: s.allow.iter().map(ToString::to_string).collect(),
                    hosts: s.allow_hosts.clone(),
                    sources: s.sources.clone(),
                });
            HealthLine {
                service: service.to_string(),
                outcomes: total,
                verdict,
                reason,
                ports,
                allow,
            }
        })
        .collect();
    lines.sort_by(|a, b| b.verdict.cmp(&a.verdict).then(a.service.cmp(&b.service)));
    lines
}

fn failures(o: &Outcomes) -> String {
    let mut parts = Vec::new();
    if o.unanswered > 0 {
        parts.push(format!("{} unanswered", o.unanswered));
    }
    if o.rejected > 0 {
        parts.push(format!("{} rejected", o.rejected));
    }
    if o.unreachable > 0 {
        parts.push(format!("{} unreachable", o.unreachable));
    }
    parts.join(", ")
}

fn reason(service: &str, ports: &[PortOutcomes], total: &Outcomes, verdict: Verdict) -> String {
    let blocked: Vec<&PortOutcomes> = ports
        .iter()
        .filter(|p| p.outcomes.failed() > 0 && p.outcomes.established + p.outcomes.midflow == 0)
        .collect();
    let working: Vec<&PortOutcomes> = ports
        .iter()
        .filter(|p| p.outcomes.established + p.outcomes.midflow > 0)
        .collect();
    let mut s = String::new();
    match verdict {
        Verdict::Ok => {
            let mut seen = Vec::new();
            if total.established > 0 {
                seen.push(format!(
                    "{} answered",
                    plural(total.established, "flow", "flows")
                ));
            }
            if total.midflow > 0 {
                seen.push(format!(
                    "{} seen mid-flow",
                    plural(total.midflow, "flow", "flows")
                ));
            }
            let list: Vec<String> = ports.iter().map(|p| port_name(&p.proto, p.port)).collect();
            s.push_str(&format!(
                "{service}: {} ({}); nothing failed",
                seen.join(", "),
                list.join(", ")
            ));
        }
        _ => {
            let mut parts = Vec::new();
            for p in &blocked {
                parts.push(format!(
                    "{} to {}, none answered ({})",
                    attempts_word(&p.proto, p.outcomes.attempts),
                    port_name(&p.proto, p.port),
                    failures(&p.outcomes)
                ));
            }
            for w in &working {
                let ok = w.outcomes.established + w.outcomes.midflow;
                if w.outcomes.failed() > 0 {
                    parts.push(format!(
                        "{ok} of {} to {} answered ({})",
                        attempts_word(&w.proto, w.outcomes.attempts + w.outcomes.midflow),
                        port_name(&w.proto, w.port),
                        failures(&w.outcomes)
                    ));
                } else if !blocked.is_empty() {
                    parts.push(format!(
                        "{ok} fell back to {} and succeeded",
                        port_name(&w.proto, w.port)
                    ));
                } else {
                    parts.push(format!("{ok} succeeded on {}", port_name(&w.proto, w.port)));
                }
            }
            s.push_str(&format!("{service}: {}", parts.join("; ")));
            if !blocked.is_empty() {
                let names: Vec<String> = blocked
                    .iter()
                    .map(|p| port_name(&p.proto, p.port))
                    .collect();
                s.push_str(&format!(
                    ": {} {} blocked",
                    names.join(" and "),
                    if names.len() == 1 { "looks" } else { "look" }
                ));
            }
        }
    }
    s
}

/// Whether an address is a global unicast one (not private, loopback, link-local, multicast,
/// broadcast, documentation or unspecified).
pub fn is_global(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        std::net::IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_multicast()
                || v6.is_unspecified()
                || (first & 0xffc0) == 0xfe80
                || (first & 0xfe00) == 0xfc00)
        }
    }
}
