//! The `appletap_*` metrics: a prometheus-client registry set from reports, encoded as
//! OpenMetrics (prometheus-client's own format) or as Prometheus' text format 0.0.4 (what
//! `promtool check metrics`, node_exporter's textfile collector and scrapers that do not ask
//! for OpenMetrics read).
//!
//! Labels only come from closed sets: service ids of the signature set, `apple`, confidence,
//! direction, outcome, skip reason, fragment drop reason, 802.11 frame kind, where a drop happened, the kind of a name store or device.
//! Never an address, port, name or MAC.
//!
//! Counters never go back: each is set from a report's running total by adding what it grew
//! by, and a total that is lower than what was published (which the settled snapshots of
//! [`crate::pipeline::Classifier::progress_settled`] should never give, but a wrapping
//! kernel counter could) leaves the counter where it was, counted in
//! `appletap_metrics_held_total`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::counters::TrafficSplit;
use crate::decode::defrag::DefragDrop;
use crate::report::Report;
use crate::report::health::Verdict;

/// A set of labels: keys and values from closed sets.
type Labels = Vec<(&'static str, String)>;

/// Devices seen, by kind (`appletap_devices{kind}`): what the device inventory counts.
pub type DevicesByKind = BTreeMap<&'static str, u64>;

/// The metrics of one run.
pub struct Metrics {
    registry: Registry,
    packets_read: Counter,
    bytes_read: Counter,
    packets_decoded: Counter,
    skipped: Family<Labels, Counter>,
    wifi_frames: Family<Labels, Counter>,
    drops: Family<Labels, Counter>,
    service_flows: Family<Labels, Counter>,
    service_packets: Family<Labels, Counter>,
    service_bytes: Family<Labels, Counter>,
    outcomes: Family<Labels, Counter>,
    health: Family<Labels, Gauge>,
    flows_active: Gauge,
    flows_evicted: Counter,
    store_entries: Family<Labels, Gauge>,
    store_evictions: Family<Labels, Counter>,
    devices: Family<Labels, Gauge>,
    held: Counter,
    fragments_reassembled: Counter,
    fragments_conflicts: Counter,
    fragments_dropped: Family<Labels, Counter>,
    fragments_held_bytes: Gauge,
}

/// How the metrics are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Prometheus' text exposition format 0.0.4.
    Text,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Encoding {
    /// The `Content-Type` of this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// What an `Accept` header asks for: OpenMetrics when it names it, text otherwise.
    pub fn from_accept(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Self::OpenMetrics,
            _ => Self::Text,
        }
    }
}

impl Metrics {
    /// The metrics, all zero, with the build info: appletap's version and the signature set's
    /// (see [`signature_version`]).
    pub fn new(signatures_version: &str) -> Self {
        let mut registry = Registry::default();
        let m = Self {
            registry: Registry::default(),
            packets_read: Counter::default(),
            bytes_read: Counter::default(),
            packets_decoded: Counter::default(),
            skipped: Family::default(),
            wifi_frames: Family::default(),
            drops: Family::default(),
            service_flows: Family::default(),
            service_packets: Family::default(),
            service_bytes: Family::default(),
            outcomes: Family::default(),
            health: Family::default(),
            flows_active: Gauge::default(),
            flows_evicted: Counter::default(),
            store_entries: Family::default(),
            store_evictions: Family::default(),
            devices: Family::default(),
            held: Counter::default(),
            fragments_reassembled: Counter::default(),
            fragments_conflicts: Counter::default(),
            fragments_dropped: Family::default(),
            fragments_held_bytes: Gauge::default(),
        };
        registry.register(
            "appletap_build",
            "appletap version and signature set version",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION").to_string()),
                ("signatures", signatures_version.to_string()),
            ]),
        );
        let r = &mut registry;
        r.register(
            "appletap_packets_read",
            "Packets read",
            m.packets_read.clone(),
        );
        r.register(
            "appletap_bytes_read",
            "Bytes on the wire of the packets read",
            m.bytes_read.clone(),
        );
        r.register(
            "appletap_packets_decoded",
            "Packets decoded into flows",
            m.packets_decoded.clone(),
        );
        r.register(
            "appletap_packets_skipped",
            "Packets skipped, by reason",
            m.skipped.clone(),
        );
        r.register(
            "appletap_ip_datagrams_reassembled",
            "IP datagrams reassembled from fragments",
            m.fragments_reassembled.clone(),
        );
        r.register(
            "appletap_ip_fragment_conflicts",
            "IP fragments whose overlap disagreed with the bytes held (the first were kept)",
            m.fragments_conflicts.clone(),
        );
        r.register(
            "appletap_ip_fragments_dropped",
            "IP fragments dropped by the reassembler, by reason",
            m.fragments_dropped.clone(),
        );
        r.register(
            "appletap_ip_fragment_bytes_held",
            "Bytes of IP fragments held for reassembly",
            m.fragments_held_bytes.clone(),
        );
        r.register(
            "appletap_wifi_frames",
            "802.11 frames read, by kind (Wi-Fi captures only)",
            m.wifi_frames.clone(),
        );
        r.register(
            "appletap_drops",
            "Packets lost before classification, by where (kernel, interface, pipeline)",
            m.drops.clone(),
        );
        r.register(
            "appletap_service_flows",
            "Flows per service, by confidence",
            m.service_flows.clone(),
        );
        r.register(
            "appletap_service_packets",
            "Packets per service, by confidence and direction",
            m.service_packets.clone(),
        );
        r.register(
            "appletap_service_bytes",
            "Bytes on the wire per service, by confidence and direction",
            m.service_bytes.clone(),
        );
        r.register(
            "appletap_connection_outcomes",
            "Connection attempts per Apple service, by outcome",
            m.outcomes.clone(),
        );
        r.register(
            "appletap_service_health",
            "Health per Apple service: 0 ok, 1 degraded, 2 blocked",
            m.health.clone(),
        );
        r.register(
            "appletap_flows_active",
            "Flows held now",
            m.flows_active.clone(),
        );
        r.register(
            "appletap_flows_evicted",
            "Flows evicted to respect the flow cap",
            m.flows_evicted.clone(),
        );
        r.register(
            "appletap_name_store_entries",
            "Entries held by a name store, by kind",
            m.store_entries.clone(),
        );
        r.register(
            "appletap_name_store_evictions",
            "Entries a name store evicted or dropped at its bound, by kind",
            m.store_evictions.clone(),
        );
        r.register(
            "appletap_devices",
            "Devices seen, by kind",
            m.devices.clone(),
        );
        r.register(
            "appletap_metrics_held",
            "Times a counter's new total was lower than the one published, which was kept",
            m.held.clone(),
        );
        Self { registry, ..m }
    }

    /// Sets every metric from a report (running totals since the start) and, once the device
    /// inventory gives them, the devices by kind.
    pub fn update(&self, report: &Report, devices: Option<&DevicesByKind>) {
        let t = &report.totals;
        self.raise(&self.packets_read, t.packets_read);
        self.raise(&self.bytes_read, t.bytes_read);
        self.raise(&self.packets_decoded, t.packets_decoded);
        for s in &report.skipped {
            self.raise(
                &self
                    .skipped
                    .get_or_create(&vec![("reason", s.reason.to_string())]),
                s.packets,
            );
        }
        let f = &report.defrag;
        self.raise(&self.fragments_reassembled, f.reassembled);
        self.raise(&self.fragments_conflicts, f.conflicts);
        for reason in DefragDrop::ALL {
            let n = f.dropped.get(reason.as_str()).copied().unwrap_or(0);
            self.raise(
                &self
                    .fragments_dropped
                    .get_or_create(&vec![("reason", reason.as_str().to_string())]),
                n,
            );
        }
        self.fragments_held_bytes
            .set(i64::try_from(f.held_bytes).unwrap_or(i64::MAX));
        for w in &report.wifi_frames {
            self.raise(
                &self
                    .wifi_frames
                    .get_or_create(&vec![("kind", w.kind.to_string())]),
                w.frames,
            );
        }
        let d = &report.drops;
        for (place, n) in [
            ("kernel", d.kernel),
            ("interface", d.interface),
            ("pipeline", Some(d.pipeline)),
        ] {
            if let Some(n) = n {
                self.raise(
                    &self
                        .drops
                        .get_or_create(&vec![("where", place.to_string())]),
                    n,
                );
            }
        }
        for line in &report.services {
            let base = |extra: &[(&'static str, &str)]| -> Labels {
                let mut l = vec![
                    ("service", line.service.clone()),
                    ("apple", line.apple.to_string()),
                ];
                l.extend(extra.iter().map(|(k, v)| (*k, (*v).to_string())));
                l
            };
            let tally = &line.tally;
            for (c, conf) in TrafficSplit::CONFIDENCES.iter().enumerate() {
                let flows = [tally.certain, tally.likely, tally.possible, 0][c];
                if c < 3 && flows > 0 {
                    self.raise(
                        &self
                            .service_flows
                            .get_or_create(&base(&[("confidence", conf)])),
                        flows,
                    );
                }
                for (d, dir) in TrafficSplit::DIRECTIONS.iter().enumerate() {
                    let (p, b) = (tally.split.packets[c][d], tally.split.bytes[c][d]);
                    if p > 0 {
                        let l = base(&[("confidence", conf), ("direction", dir)]);
                        self.raise(&self.service_packets.get_or_create(&l), p);
                        self.raise(&self.service_bytes.get_or_create(&l), b);
                    }
                }
            }
            let unlabelled = tally.flows - tally.certain - tally.likely - tally.possible;
            if unlabelled > 0 {
                self.raise(
                    &self
                        .service_flows
                        .get_or_create(&base(&[("confidence", "none")])),
                    unlabelled,
                );
            }
        }
        for h in &report.health {
            let o = &h.outcomes;
            for (outcome, n) in [
                ("answered", o.established),
                ("rejected", o.rejected),
                ("unanswered", o.unanswered),
                ("unreachable", o.unreachable),
            ] {
                let l = vec![
                    ("service", h.service.clone()),
                    ("outcome", outcome.to_string()),
                ];
                self.raise(&self.outcomes.get_or_create(&l), n);
            }
            let level = match h.verdict {
                Verdict::Ok => Some(0),
                Verdict::Degraded => Some(1),
                Verdict::Blocked => Some(2),
                Verdict::Inconclusive => None,
            };
            let l = vec![("service", h.service.clone())];
            match level {
                Some(v) => {
                    self.health.get_or_create(&l).set(v);
                }
                None => {
                    self.health.remove(&l);
                }
            }
        }
        self.flows_active
            .set(i64::try_from(t.flows_active).unwrap_or(i64::MAX));
        self.raise(&self.flows_evicted, t.flows_evicted);
        let s = &report.state;
        for (kind, n) in [
            ("dns", s.dns_addresses),
            ("mdns", s.mdns_endpoints),
            ("expected", s.expected_flows),
        ] {
            self.store_entries
                .get_or_create(&vec![("kind", kind.to_string())])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        for (kind, n) in [
            ("dns", s.dns_evictions),
            ("mdns", s.mdns_evictions),
            ("bonjour", s.bonjour_dropped),
            ("apple-names", s.apple_names_dropped),
            ("dns-tcp-streams", s.dns_tcp_streams_dropped),
            ("expected", s.expected_evictions),
        ] {
            self.raise(
                &self
                    .store_evictions
                    .get_or_create(&vec![("kind", kind.to_string())]),
                n,
            );
        }
        if let Some(devices) = devices {
            for (kind, n) in devices {
                self.devices
                    .get_or_create(&vec![("kind", (*kind).to_string())])
                    .set(i64::try_from(*n).unwrap_or(i64::MAX));
            }
        }
    }

    /// Raises `c` to `total`; a lower total leaves it as it is (counted).
    fn raise(&self, c: &Counter, total: u64) {
        let now = c.get();
        if total > now {
            c.inc_by(total - now);
        } else if total < now {
            self.held.inc();
        }
    }

    /// The metrics in `encoding`.
    pub fn encode(&self, encoding: Encoding) -> String {
        let mut open = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut open, &self.registry);
        match encoding {
            Encoding::OpenMetrics => open,
            Encoding::Text => to_text_format(&open),
        }
    }
}

/// The first 12 hex digits of the SHA-256 of a signature file's text: the version of the
/// signature set in `appletap_build_info` (the set has no version number of its own; any edit
/// changes this one).
pub fn signature_version(text: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, text);
    d.as_ref()[..6].iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// OpenMetrics text as prometheus-client writes it, in Prometheus' text format 0.0.4: a
/// counter family is named with its `_total` suffix there, an info family becomes a gauge named
/// with `_info`, and there is no `# EOF`. prometheus-client writes only OpenMetrics; these few
/// renames are the whole difference for the metric types used here (no units, no exemplars, no
/// created timestamps).
fn to_text_format(open: &str) -> String {
    let mut types: BTreeMap<&str, &str> = BTreeMap::new();
    for line in open.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some((name, kind)) = rest.split_once(' ')
        {
            types.insert(name, kind);
        }
    }
    let mut out = String::with_capacity(open.len());
    for line in open.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = line
            .strip_prefix("# TYPE ")
            .map(|r| ("TYPE", r))
            .or_else(|| line.strip_prefix("# HELP ").map(|r| ("HELP", r)));
        if let Some((what, rest)) = meta
            && let Some((name, tail)) = rest.split_once(' ')
        {
            let (suffix, tail) = match (types.get(name).copied(), what) {
                (Some("counter"), _) => ("_total", tail),
                (Some("info"), "TYPE") => ("_info", "gauge"),
                (Some("info"), _) => ("_info", tail),
                _ => ("", tail),
            };
            let _ = writeln!(out, "# {what} {name}{suffix} {tail}");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_names_counters_with_total_and_has_no_eof() {
        let m = Metrics::new("abc");
        m.packets_read.inc_by(3);
        let text = m.encode(Encoding::Text);
        assert!(
            text.contains("# TYPE appletap_packets_read_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP appletap_packets_read_total Packets read.\n"),
            "{text}"
        );
        assert!(text.contains("appletap_packets_read_total 3\n"), "{text}");
        assert!(
            text.contains("# TYPE appletap_build_info gauge\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        let open = m.encode(Encoding::OpenMetrics);
        assert!(
            open.contains("# TYPE appletap_packets_read counter\n"),
            "{open}"
        );
        assert!(open.ends_with("# EOF\n"), "{open}");
    }

    #[test]
    fn a_counter_never_goes_back() {
        let m = Metrics::new("abc");
        m.raise(&m.packets_read, 10);
        m.raise(&m.packets_read, 7);
        assert_eq!(m.packets_read.get(), 10);
        assert_eq!(m.held.get(), 1);
        m.raise(&m.packets_read, 12);
        assert_eq!(m.packets_read.get(), 12);
    }

    #[test]
    fn accept_header_picks_the_encoding() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Encoding::from_accept(Some(prom)), Encoding::OpenMetrics);
        assert_eq!(Encoding::from_accept(Some("text/plain")), Encoding::Text);
        assert_eq!(Encoding::from_accept(None), Encoding::Text);
    }
}
