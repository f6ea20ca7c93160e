//! Every TLS SNI, QUIC SNI, HTTP Host and DNS name that tshark sees in the shared captures is
//! found by appletap on the same flow (same protocol and endpoint pair).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use appletap::report::record::FlowRecord;
use common::*;

type Endpoint = (String, String);

fn flow_key(proto: &str, a: Endpoint, b: Endpoint) -> (String, Endpoint, Endpoint) {
    if a <= b {
        (proto.into(), a, b)
    } else {
        (proto.into(), b, a)
    }
}

fn record_key(r: &FlowRecord) -> (String, Endpoint, Endpoint) {
    let port = |p: Option<u16>| p.map_or(String::new(), |p| p.to_string());
    flow_key(
        &r.proto,
        (r.client_ip.to_string(), port(r.client_port)),
        (r.server_ip.to_string(), port(r.server_port)),
    )
}

fn record_names(r: &FlowRecord) -> BTreeSet<String> {
    let n = &r.names;
    [&n.sni, &n.quic_sni, &n.http_host]
        .into_iter()
        .flatten()
        .cloned()
        .chain(n.queried.iter().cloned())
        .map(|s| s.to_ascii_lowercase())
        .collect()
}

/// (flow key, kind, name) for every name tshark decodes.
fn tshark_names(
    path: &std::path::Path,
) -> Vec<((String, Endpoint, Endpoint), &'static str, String)> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args([
            "-Y",
            "tls.handshake.extensions_server_name || http.host || (dns.qry.name && (udp.port == 53 || tcp.port == 53))",
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=|",
        ])
        .args(["-e", "ip.src", "-e", "ipv6.src", "-e", "ip.dst", "-e", "ipv6.dst"])
        .args(["-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "udp.srcport", "-e", "udp.dstport"])
        .args(["-e", "tls.handshake.extensions_server_name", "-e", "http.host", "-e", "dns.qry.name"])
        .args(["-e", "quic.version"])
        .output()
        .expect("tshark runs (installed by .ci/setup)");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let c: Vec<&str> = line.split('\t').collect();
        let first = |s: &str| s.split('|').next().unwrap_or("").to_string();
        // The innermost (last) IP header is the one the transport belongs to.
        let last = |s: &str| s.split('|').next_back().unwrap_or("").to_string();
        let src = if c[0].is_empty() {
            last(c[1])
        } else {
            last(c[0])
        };
        let dst = if c[2].is_empty() {
            last(c[3])
        } else {
            last(c[2])
        };
        let (proto, sp, dp) = if !c[4].is_empty() {
            ("tcp", first(c[4]), first(c[5]))
        } else {
            ("udp", first(c[6]), first(c[7]))
        };
        let key = flow_key(proto, (src, sp), (dst, dp));
        let quic = !c.get(11).unwrap_or(&"").is_empty();
        for sni in c[8].split('|').filter(|s| !s.is_empty()) {
            v.push((
                key.clone(),
                if quic { "quic-sni" } else { "sni" },
                sni.to_ascii_lowercase(),
            ));
        }
        for host in c[9].split('|').filter(|s| !s.is_empty()) {
            let h = host
                .rsplit_once(':')
                .filter(|(_, p)| p.parse::<u16>().is_ok())
                .map_or(host, |(h, _)| h);
            let literal = h.trim_start_matches('[').trim_end_matches(']');
            if literal.parse::<std::net::IpAddr>().is_err()
                && host.parse::<std::net::IpAddr>().is_err()
            {
                v.push((key.clone(), "http-host", h.to_ascii_lowercase()));
            }
        }
        for q in c[10].split('|').filter(|s| !s.is_empty()) {
            v.push((key.clone(), "dns", q.to_ascii_lowercase()));
        }
    }
    v
}

/// Names listed in a companion's section (lines "  N  name ...").
fn companion_section(path: &std::path::Path, header: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(format!("{}.tshark.txt", path.display())).unwrap();
    let mut in_section = false;
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("## ") {
            in_section = line.starts_with(header);
            continue;
        }
        if in_section {
            let mut parts = line.split_whitespace();
            if let (Some(count), Some(name)) = (parts.next(), parts.next())
                && count.parse::<u64>().is_ok()
            {
                names.insert(name.to_ascii_lowercase());
            }
        }
    }
    names
}

#[test]
fn every_name_tshark_sees_is_on_the_same_appletap_flow() {
    let mut total = 0;
    let mut missing = Vec::new();
    for path in shared_captures() {
        let run = run_engine(&path);
        let mut by_flow: BTreeMap<_, BTreeSet<String>> = BTreeMap::new();
        for r in &run.records {
            by_flow
                .entry(record_key(r))
                .or_default()
                .extend(record_names(r));
        }
        let found: BTreeSet<String> = by_flow.values().flatten().cloned().collect();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        for (key, kind, name) in tshark_names(&path) {
            total += 1;
            if !by_flow.get(&key).is_some_and(|names| names.contains(&name)) {
                missing.push(format!("{file}: {kind} {name} on {key:?}"));
            }
        }
        for header in [
            "## TLS SNI over TCP",
            "## QUIC SNI",
            "## HTTP Host headers",
            "## DNS query names",
        ] {
            for listed in companion_section(&path, header) {
                // Hosts may carry a port; IP literals are not names.
                let name = listed
                    .rsplit_once(':')
                    .filter(|(_, p)| p.parse::<u16>().is_ok())
                    .map_or(listed.as_str(), |(h, _)| h)
                    .to_string();
                if name
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse::<std::net::IpAddr>()
                    .is_ok()
                {
                    continue;
                }
                if !found.contains(&name) {
                    missing.push(format!(
                        "{file}: {header} lists {name}, appletap has it on no flow"
                    ));
                }
            }
        }
    }
    println!(
        "names: {total} checked against tshark, {} missing",
        missing.len()
    );
    assert!(total > 300, "expected hundreds of names, got {total}");
    assert!(
        missing.is_empty(),
        "names not found:\n{}",
        missing.join("\n")
    );
}
