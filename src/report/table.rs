//! The report as a plain-text table for people.

use std::fmt::Write as _;

use super::Report;

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn or_none(s: String) -> String {
    if s.is_empty() { "none".to_string() } else { s }
}

/// Renders the report as aligned text: services (Apple first), totals, skipped packets.
pub fn render_table(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:>5} {:>8} {:>10} {:>10} {:>8} {:>7} {:>8}",
        "SERVICE", "APPLE", "FLOWS", "PACKETS", "BYTES", "CERTAIN", "LIKELY", "POSSIBLE"
    );
    let mut last_group = None;
    for l in &r.services {
        let group = if l.apple {
            "apple"
        } else if l.service == crate::signature::UNKNOWN {
            "unknown"
        } else {
            "other"
        };
        if last_group.is_some_and(|g| g != group) {
            out.push('\n');
        }
        last_group = Some(group);
        let _ = writeln!(
            out,
            "{:<20} {:>5} {:>8} {:>10} {:>10} {:>8} {:>7} {:>8}",
            l.service,
            if l.apple { "yes" } else { "no" },
            l.tally.flows,
            l.tally.packets,
            human_bytes(l.tally.bytes),
            l.tally.certain,
            l.tally.likely,
            l.tally.possible
        );
    }
    let t = &r.totals;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "totals: {} packets read ({}), {} decoded, {} skipped; {} flows, {} labelled Apple; {} evicted{}",
        t.packets_read,
        human_bytes(t.bytes_read),
        t.packets_decoded,
        t.packets_skipped,
        t.flows,
        t.apple_flows,
        t.flows_evicted,
        if t.flows_active > 0 {
            format!("; {} still open", t.flows_active)
        } else {
            String::new()
        }
    );
    if t.clock_restarts > 0 {
        let _ = writeln!(
            out,
            "packet time went back {} time(s) to a new stretch of capture, and the flows open \
             then ended there",
            t.clock_restarts
        );
    }
    if t.clock_outliers > 0 {
        let _ = writeln!(
            out,
            "{} packet(s) had a time far from the packets around them: counted at the capture's \
             time instead",
            t.clock_outliers
        );
    }
    let d = &r.drops;
    let opt = |v: Option<u64>| v.map_or("n/a".to_string(), |v| v.to_string());
    let _ = writeln!(
        out,
        "drops: kernel {}, interface {}, pipeline {}",
        opt(d.kernel),
        opt(d.interface),
        d.pipeline
    );
    let skipped: Vec<String> = r
        .skipped
        .iter()
        .filter(|s| s.packets > 0)
        .map(|s| format!("{} {}", s.reason, s.packets))
        .collect();
    let _ = writeln!(
        out,
        "skipped by reason: {}",
        if skipped.is_empty() {
            "none".to_string()
        } else {
            skipped.join(", ")
        }
    );
    if !r.defrag.is_empty() {
        let f = &r.defrag;
        let dropped: Vec<String> = f.dropped.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(
            out,
            "ip fragments: {} read, {} datagrams reassembled from {}, {} held ({} bytes); overlaps {}, conflicts {} (first kept); dropped: {}",
            f.fragments,
            f.reassembled,
            f.reassembled_fragments,
            f.held_fragments,
            f.held_bytes,
            f.overlaps,
            f.conflicts,
            if dropped.is_empty() {
                "none".to_string()
            } else {
                dropped.join(", ")
            }
        );
    }
    if !r.wifi_frames.is_empty() {
        let kinds: Vec<String> = r
            .wifi_frames
            .iter()
            .map(|w| format!("{} {}", w.kind, w.frames))
            .collect();
        let _ = writeln!(out, "802.11 frames by kind: {}", kinds.join(", "));
    }
    if let Some(t) = &r.tunnels {
        let list = |m: &std::collections::BTreeMap<&str, u64>| {
            m.iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut line = format!(
            "tunnelled packets: decapsulated {}",
            or_none(list(&t.decapsulated))
        );
        if !t.undecoded.is_empty() {
            let _ = write!(line, "; payload not read {}", list(&t.undecoded));
        }
        if !t.too_deep.is_empty() {
            let _ = write!(
                line,
                "; deeper than {} tunnels {}",
                crate::decode::tunnel::MAX_DEPTH,
                list(&t.too_deep)
            );
        }
        let _ = writeln!(out, "{line}");
    }
    if !r.bonjour.is_empty() {
        let _ = writeln!(
            out,
            "\nBONJOUR {:<30} {:<16} {:>9} {:>9}  MODELS",
            "TYPE", "SERVICE", "ANNOUNCED", "SEARCHED"
        );
        for b in &r.bonjour {
            let _ = writeln!(
                out,
                "        {:<30} {:<16} {:>9} {:>9}  {}",
                b.service_type,
                b.service.as_deref().unwrap_or("-"),
                b.announced_by.len(),
                b.searched_by.len(),
                if b.models.is_empty() {
                    "-".to_string()
                } else {
                    b.models.join(", ")
                }
            );
        }
    }
    if !r.unclassified_apple_names.is_empty() {
        let _ = writeln!(
            out,
            "\nunclassified Apple names (no narrower signature; flows):"
        );
        for n in &r.unclassified_apple_names {
            let _ = writeln!(out, "  {:<50} {}", n.name, n.flows);
        }
    }
    out.push_str(&render_audit(r));
    let s = &r.state;
    let dropped = s.dns_evictions
        + s.mdns_evictions
        + s.bonjour_dropped
        + s.apple_names_dropped
        + s.dns_tcp_streams_dropped;
    if dropped > 0 {
        let _ = writeln!(
            out,
            "\nbounded state dropped: {} DNS addresses, {} mDNS endpoints, {} Bonjour observations, {} Apple-name flows, {} DNS-over-TCP streams",
            s.dns_evictions,
            s.mdns_evictions,
            s.bonjour_dropped,
            s.apple_names_dropped,
            s.dns_tcp_streams_dropped
        );
    }
    if s.expected_evictions > 0 {
        let _ = writeln!(
            out,
            "expected flows dropped at their cap: {}",
            s.expected_evictions
        );
    }
    for i in &r.inputs {
        if let Some(e) = &i.error {
            let _ = writeln!(out, "input error: {e}");
        }
    }
    out
}

/// The health, floods-and-scans and unexpected-traffic sections, for people (also all
/// `appletap audit` prints).
pub fn render_audit(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\nHEALTH OF APPLE SERVICES");
    if r.health.is_empty() {
        let _ = writeln!(out, "  no connection attempts to Apple services were seen");
    }
    for h in &r.health {
        let _ = writeln!(
            out,
            "  [{}] {}",
            h.verdict.as_str().to_ascii_uppercase(),
            h.reason
        );
        let _ = writeln!(out, "         counted: {}", h.counted);
        if let Some(a) = &h.allow {
            let mut allow = a.ports.join(", ");
            if !a.hosts.is_empty() {
                allow.push_str(&format!("; hosts {}", a.hosts.join(", ")));
            }
            let _ = writeln!(
                out,
                "         to work, {} needs: {allow} (per {})",
                h.service,
                a.sources.join(", ")
            );
        }
    }
    let f = &r.floods_and_scans;
    let _ = writeln!(out, "\nFLOODS AND SCANS");
    if f.floods.is_empty() && f.scans.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for l in &f.floods {
        let _ = writeln!(out, "  [FLOOD] {}", l.reason);
    }
    for l in &f.scans {
        let _ = writeln!(out, "  [SCAN] {}", l.reason);
    }
    if f.clients_seen > f.clients_followed {
        let _ = writeln!(
            out,
            "  (followed {} of about {} clients, chosen by a hash of their address; the \
             attempts of the others are not counted in verdicts)",
            f.clients_followed, f.clients_seen
        );
    }
    if f.targets_seen > f.targets_followed {
        let _ = writeln!(
            out,
            "  (followed {} of about {} destinations of unanswered attempts)",
            f.targets_followed, f.targets_seen
        );
    }
    let _ = writeln!(out, "\nUNEXPECTED TRAFFIC");
    if r.unexpected.is_empty() && r.unclassified_apple_names.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for u in &r.unexpected {
        let _ = writeln!(out, "  {}", u.reason);
    }
    for n in &r.unclassified_apple_names {
        let _ = writeln!(
            out,
            "  Apple name {} matches no narrower signature (labelled generic apple): {} flow{}",
            n.name,
            n.flows,
            if n.flows == 1 { "" } else { "s" }
        );
    }
    super::devices::render(&mut out, &r.devices);
    out
}
