//! Every flow record's Community ID equals the reference implementation's (the `communityid`
//! package from PyPI, installed by .ci/setup) on every TCP, UDP and portless IP flow of every
//! shared capture, with the default seed and another; and equals what tshark's own
//! Community ID dissector computes for the packets of a capture.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The records appletap writes for `capture` with `extra` options.
fn records(capture: &Path, extra: &[&str]) -> Vec<Value> {
    let (_, lines) = common::read_with_records("1", extra, &[capture.to_path_buf()]);
    lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("a record is JSON"))
        .collect()
}

/// The IP protocol number of a record's `proto`, or None for ICMP (no ID: see the README).
fn proto_number(proto: &str) -> Option<u8> {
    match proto {
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" | "icmpv6" => None,
        other => Some(other.strip_prefix("ip-").unwrap().parse().unwrap()),
    }
}

/// The reference implementation's IDs of `tuples` (`proto saddr daddr sport dport`).
fn reference(seed: u16, tuples: &[String]) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/community_id/reference.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let input = format!("{seed}\n{}\n", tuples.join("\n"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the reference implementation failed (is `communityid` installed? see .ci/setup): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn check(seed: u16, capture: &Path) -> usize {
    let seed_arg = seed.to_string();
    let extra: Vec<&str> = if seed == 0 {
        vec![]
    } else {
        vec!["--community-id-seed", &seed_arg]
    };
    let recs = records(capture, &extra);
    let mut tuples = Vec::new();
    let mut ours = Vec::new();
    for r in &recs {
        let Some(proto) = proto_number(r["proto"].as_str().unwrap()) else {
            assert!(r["community_id"].is_null(), "{r}");
            continue;
        };
        let port = |v: &Value| v.as_u64().map_or("-".to_string(), |p| p.to_string());
        tuples.push(format!(
            "{proto} {} {} {} {}",
            r["client_ip"].as_str().unwrap(),
            r["server_ip"].as_str().unwrap(),
            port(&r["client_port"]),
            port(&r["server_port"]),
        ));
        ours.push(r["community_id"].as_str().expect("an ID").to_string());
    }
    let theirs = reference(seed, &tuples);
    assert_eq!(theirs.len(), tuples.len());
    for ((t, a), b) in tuples.iter().zip(&ours).zip(&theirs) {
        assert_eq!(a, b, "{}: {t} (seed {seed})", capture.display());
    }
    tuples.len()
}

#[test]
fn every_flow_of_every_shared_capture_matches_the_reference_implementation() {
    let mut checked = 0;
    for capture in common::shared_captures() {
        checked += check(0, &capture);
    }
    // Thousands of flows across the captures: a run that found none would prove nothing.
    assert!(checked > 1000, "only {checked} flows checked");
    // Another seed changes every ID, still as the reference computes it.
    let capture = common::shared_pcaps().join("ndpi__iphone.pcap");
    assert!(check(4242, &capture) > 10);
}

#[test]
fn ids_match_tshark_on_the_packets_of_a_capture() {
    let capture = common::shared_pcaps().join("ndpi__iphone.pcap");
    let out = Command::new("tshark")
        .args(["--enable-protocol", "communityid", "-n", "-r"])
        .arg(&capture)
        .args([
            "-Y",
            "(tcp or udp) and not icmp and not icmpv6",
            "-T",
            "fields",
            "-e",
            "communityid",
        ])
        .output()
        .expect("tshark runs");
    assert!(out.status.success());
    let tshark: BTreeSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let ours: BTreeSet<String> = records(&capture, &[])
        .iter()
        .filter(|r| matches!(r["proto"].as_str(), Some("tcp" | "udp")))
        .map(|r| r["community_id"].as_str().unwrap().to_string())
        .collect();
    assert!(ours.len() > 10);
    // Every flow's ID is one tshark gave its packets, and every packet's ID one of a flow
    // (ICMP errors quoting a flow are left out: tshark hashes them as ICMP).
    assert_eq!(ours, tshark);
}
