//! Issue 13, "Spoofable verdicts": unanswered attempts from sources that do nothing else must
//! not raise a BLOCKED alarm nor count as use of a service; they are reported as a flood in
//! their own section. Real blocking (a client that resolved the name, or has answered flows)
//! stays BLOCKED or DEGRADED. The floods are built from a real SYN (the first packet of
//! fixtures/audit/syn-rst.pcap, the iPhone of ndpi__iphone.pcap to a real APNs address on TCP
//! 5223), rewritten per packet, in a temporary directory.
// See: issue 13.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/audit")
        .join(name)
}

/// The records of a little-endian microsecond pcap: (seconds, microseconds, frame).
fn records(pcap: &[u8]) -> Vec<(u32, u32, Vec<u8>)> {
    let le = |o: usize| u32::from_le_bytes(pcap[o..o + 4].try_into().unwrap());
    assert_eq!(le(0), 0xa1b2_c3d4, "a little-endian microsecond pcap");
    let (mut off, mut out) = (24, Vec::new());
    while off + 16 <= pcap.len() {
        let incl = le(off + 8) as usize;
        out.push((
            le(off),
            le(off + 4),
            pcap[off + 16..off + 16 + incl].to_vec(),
        ));
        off += 16 + incl;
    }
    out
}

/// RFC 1071 ones'-complement sum, folded and inverted.
fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for c in chunks {
        for pair in c.chunks(2) {
            sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The real SYN with its IPv4 source and TCP source port replaced, checksums recomputed.
fn respoof(syn: &[u8], src: [u8; 4], sport: u16) -> Vec<u8> {
    let mut f = syn.to_vec();
    let ip = 14; // after the Ethernet header
    let ihl = usize::from(f[ip] & 0x0f) * 4;
    let tcp = ip + ihl;
    f[ip + 12..ip + 16].copy_from_slice(&src);
    f[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
    let c = checksum(&[&f[ip..tcp]]);
    f[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
    f[tcp..tcp + 2].copy_from_slice(&sport.to_be_bytes());
    f[tcp + 16..tcp + 18].copy_from_slice(&[0, 0]);
    let len = u16::try_from(f.len() - tcp).unwrap();
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&f[ip + 12..ip + 20]);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&len.to_be_bytes());
    let c = checksum(&[&pseudo, &f[tcp..]]);
    f[tcp + 16..tcp + 18].copy_from_slice(&c.to_be_bytes());
    f
}

/// Writes `before` (real records), then `n` spoofed SYNs from 10.0.0.0/8, one source each,
/// 10 µs apart, then `after`.
fn write_flood(path: &Path, n: u32, before: &[(u32, u32, Vec<u8>)], after: &[(u32, u32, Vec<u8>)]) {
    let syn = records(&std::fs::read(fixture("syn-rst.pcap")).unwrap())
        .remove(0)
        .2;
    assert_eq!(syn[14 + 20 + 13] & 0x12, 0x02, "the real packet is a SYN");
    let mut out = Vec::with_capacity(24 + (n as usize) * (16 + syn.len()));
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let mut rec = |sec: u32, usec: u32, f: &[u8]| {
        out.extend_from_slice(&sec.to_le_bytes());
        out.extend_from_slice(&usec.to_le_bytes());
        let len = u32::try_from(f.len()).unwrap();
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(f);
    };
    let t0 = before.last().map_or(1_582_454_600, |r| r.0 + 1);
    for (s, u, f) in before {
        rec(*s, *u, f);
    }
    for i in 0..n {
        let a = (i + 1).to_be_bytes();
        let us = u64::from(i) * 10;
        let sport = 1024 + u16::try_from(i % 60_000).unwrap();
        rec(
            t0 + u32::try_from(us / 1_000_000).unwrap(),
            u32::try_from(us % 1_000_000).unwrap(),
            &respoof(&syn, [10, a[1], a[2], a[3]], sport),
        );
    }
    let shift = t0 + 30 - after.first().map_or(0, |r| r.0);
    for (s, u, f) in after {
        rec(s + shift, *u, f);
    }
    std::fs::write(path, out).unwrap();
}

fn json(args: &[&str]) -> Value {
    let out = appletap(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn health<'a>(doc: &'a Value, service: &str) -> Option<&'a Value> {
    doc["health"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["service"] == service)
}

#[test]
fn spoofed_syn_flood_to_apns_is_a_flood_not_a_blocked_verdict_nor_likely_use() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("spoofed-syn-flood.pcap");
    write_flood(&pcap, 200_000, &[], &[]);
    let p = pcap.to_str().unwrap();

    // `audit`: no BLOCKED verdict, the flood in its own section with its numbers.
    let out = appletap(&["audit", p]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("[BLOCKED]"), "{text}");
    assert!(text.contains("[INCONCLUSIVE] apns"), "{text}");
    let health_part = &text[..text.find("FLOODS AND SCANS").expect("its own section")];
    let floods_part = &text[text.find("FLOODS AND SCANS").unwrap()..];
    // The client table follows 32,768 sources (those whose address hashes smallest): what it
    // saw did nothing else; the rest are counted as not followed.
    assert!(
        health_part.contains(
            "200000 unanswered attempts to TCP 5223 (32768 from sources that did nothing else \
             in the capture, 167232 from sources past the 32768 clients followed)"
        ),
        "the reason says why: {health_part}"
    );
    assert!(
        floods_part.contains("[FLOOD] TCP 5223 on 17.57.144.116 (an Apple address), apns's port: 200000 connection attempts (SYNs) with no reply from about"),
        "{floods_part}"
    );
    assert!(
        floods_part.contains("200000 of them a single packet"),
        "{floods_part}"
    );

    // `audit --fail-on blocked`: the flood does not trip it.
    let out = appletap(&["audit", "--fail-on", "blocked", p]);
    assert_eq!(out.status.code(), Some(0));
    let out = appletap(&["audit", "--fail-on", "degraded", p]);
    assert_eq!(out.status.code(), Some(0));

    // `read --format json`: apns is not inflated at `likely`, the flood has its numbers.
    for threads in ["1", "3"] {
        let doc = json(&["read", "--format", "json", "--threads", threads, p]);
        let apns = doc["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == "apns")
            .unwrap();
        assert_eq!(
            (
                apns["flows"].as_u64(),
                apns["likely"].as_u64(),
                apns["certain"].as_u64(),
                apns["possible"].as_u64()
            ),
            (Some(200_000), Some(0), Some(0), Some(200_000)),
            "{apns}"
        );
        let h = health(&doc, "apns").unwrap();
        assert_eq!(h["verdict"], "inconclusive", "{h}");
        assert_eq!(
            (
                h["unanswered"].as_u64(),
                h["basis"]["unanswered_counted"].as_u64(),
                h["basis"]["unanswered_from_inactive"]
                    .as_u64()
                    .zip(h["basis"]["unanswered_unchecked"].as_u64())
                    .map(|(a, b)| a + b),
            ),
            (Some(200_000), Some(0), Some(200_000)),
            "{h}"
        );
        let floods = doc["floods_and_scans"]["floods"].as_array().unwrap();
        assert_eq!(floods.len(), 1, "{floods:?}");
        let f = &floods[0];
        assert_eq!(
            (
                f["proto"].as_str(),
                f["server"].as_str(),
                f["port"].as_u64(),
                f["service"].as_str(),
                f["unanswered"].as_u64(),
                f["one_packet"].as_u64(),
                f["sources_estimated"].as_bool()
            ),
            (
                Some("tcp"),
                Some("17.57.144.116"),
                Some(5223),
                Some("apns"),
                Some(200_000),
                Some(200_000),
                Some(true)
            ),
            "{f}"
        );
        let sources = f["sources"].as_u64().unwrap();
        assert!((170_000..=230_000).contains(&sources), "{f}");
        assert!(
            doc["floods_and_scans"]["scans"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        let seen = doc["floods_and_scans"]["clients_seen"].as_u64().unwrap();
        assert!(
            (170_000..=230_000).contains(&seen),
            "what was dropped is counted: {seen}"
        );
    }
}

#[test]
fn real_client_blocked_inside_a_flood_still_counts() {
    // The real fallback capture (one client: 3 unanswered SYNs to 5223, then TCP 443 that
    // works) with 20,000 spoofed SYNs to the same address and port in between.
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("flood-and-real-client.pcap");
    let real = records(&std::fs::read(fixture("apns-5223-blocked-443-fallback.pcap")).unwrap());
    let (syns, rest) = real.split_at(9);
    write_flood(&pcap, 20_000, syns, rest);
    let p = pcap.to_str().unwrap();
    for threads in ["1", "2", "4"] {
        let doc = json(&["audit", "--format", "json", "--threads", threads, p]);
        let apns = health(&doc, "apns").unwrap();
        assert_eq!(apns["verdict"], "degraded", "{apns}");
        let b = &apns["basis"];
        assert_eq!(
            (
                b["unanswered_counted"].as_u64(),
                b["unanswered_from_inactive"].as_u64(),
                b["clients"].as_u64(),
                b["active_clients"].as_u64()
            ),
            (Some(3), Some(20_000), Some(1), Some(1)),
            "{apns}"
        );
        let reason = apns["reason"].as_str().unwrap();
        assert!(
            reason.starts_with(
                "apns: 3 connection attempts to TCP 5223, none answered (3 unanswered); \
                 1 fell back to TCP 443 and succeeded: TCP 5223 looks blocked; not counted"
            ),
            "{reason}"
        );
    }
    let out = appletap(&["audit", "--fail-on", "degraded", p]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn client_that_resolved_apns_and_got_no_answer_is_still_blocked() {
    let f = fixture("dns-then-unanswered-5223.pcap");
    let p = f.to_str().unwrap();
    for threads in ["1", "2"] {
        let doc = json(&["audit", "--format", "json", "--threads", threads, p]);
        let apns = health(&doc, "apns").unwrap();
        assert_eq!(apns["verdict"], "blocked", "{apns}");
        assert_eq!(
            apns["counted"],
            "3 attempts from 1 active client (3 unanswered)"
        );
    }
    let out = appletap(&["audit", "--fail-on", "blocked", p]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn lone_unanswered_syn_from_a_silent_source_is_inconclusive_and_possible_use() {
    let f = fixture("lone-unanswered-5223.pcap");
    let p = f.to_str().unwrap();
    let out = appletap(&["audit", "--fail-on", "blocked", p]);
    assert_eq!(out.status.code(), Some(0));
    let doc = json(&["read", "--format", "json", p]);
    assert_eq!(health(&doc, "apns").unwrap()["verdict"], "inconclusive");
    assert_eq!(doc["services"][0]["possible"], 1);
    assert_eq!(doc["services"][0]["likely"], 0);
}

#[test]
fn real_blocking_fixtures_still_give_blocked_or_degraded() {
    for (name, service, verdict) in [
        ("syn-rst.pcap", "apns", "blocked"),
        ("icmp-admin-prohibited-syn.pcap", "apns", "blocked"),
        ("icmp-port-unreachable-udp.pcap", "time", "blocked"),
        ("apns-5223-blocked-443-fallback.pcap", "apns", "degraded"),
        ("dns-then-unanswered-5223.pcap", "apns", "blocked"),
    ] {
        let f = fixture(name);
        let doc = json(&["audit", "--format", "json", f.to_str().unwrap()]);
        assert_eq!(health(&doc, service).unwrap()["verdict"], verdict, "{name}");
    }
    // 1kxun: a real client (other flows answered) whose NTP request to Apple got no reply.
    let k = shared_pcaps().join("ndpi__1kxun.pcap");
    let doc = json(&["audit", "--format", "json", k.to_str().unwrap()]);
    assert_eq!(health(&doc, "time").unwrap()["verdict"], "blocked");
}
