//! IP fragment reassembly end to end (`appletap read`): real traffic fragmented by the Linux
//! kernel (fixtures/defrag/real-fragments.pcap, made by fixtures/make_fragment_fixtures.sh)
//! comes out as the mDNS announcements, DNS answer and QUIC Initial it carried; the crafted
//! cases (fixtures/make_crafted_fragment_fixtures.py) give each policy and drop reason; the
//! output is the same for any number of threads; a flood of fragments that never complete
//! stays within `--max-fragment-bytes`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::netns::{Netns, Running, run_ok};
use common::*;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/defrag")
        .join(name)
}

/// The JSON report and the flow records of `read --threads N`.
fn read(threads: &str, extra: &[&str], name: &str) -> (Value, Vec<Value>) {
    let (report, records) = read_with_records(threads, extra, &[fixture(name)]);
    let records = records
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    (serde_json::from_str(&report).unwrap(), records)
}

/// The report's `defrag` counters.
fn defrag(report: &Value) -> &Value {
    report.get("defrag").expect("a defrag section")
}

/// Every fragment read is reassembled, held or dropped for one reason; every packet read is
/// decoded or skipped.
fn accounted(report: &Value) {
    let d = defrag(report);
    let dropped: u64 = d["dropped"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        d["fragments"].as_u64().unwrap(),
        d["reassembled_fragments"].as_u64().unwrap()
            + d["held_fragments"].as_u64().unwrap()
            + dropped,
        "{d}"
    );
    let t = &report["totals"];
    assert_eq!(
        t["packets_read"].as_u64().unwrap(),
        t["packets_decoded"].as_u64().unwrap() + t["packets_skipped"].as_u64().unwrap()
    );
}

fn bonjour_instances(report: &Value, service_type: &str) -> Vec<String> {
    report["bonjour"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == service_type)
        .flat_map(|b| b["instances"].as_array().unwrap().clone())
        .map(|i| i.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn kernel_fragmented_traffic_is_read_whole() {
    let (report, records) = read("1", &[], "real-fragments.pcap");
    accounted(&report);
    let d = defrag(&report);
    // 3 + 8 fragments of the IPv4 announcements, 4 of the IPv6 one, 4 of the DNS answer, 3 of
    // the QUIC Initial.
    assert_eq!(d["fragments"], 3 + 8 + 4 + 4 + 3, "{d}");
    assert_eq!(d["reassembled"], 5, "{d}");
    assert!(d["dropped"].as_object().unwrap().is_empty(), "{d}");
    // The real mDNS announcement (IPv4) and the AirPlay one (IPv4 and IPv6) give their names.
    assert!(
        bonjour_instances(&report, "_airplay._tcp")
            .contains(&"living room._airplay._tcp.local".to_string()),
        "{}",
        report["bonjour"]
    );
    assert!(
        bonjour_instances(&report, "_odisk._tcp")
            .contains(&"luca’s imac._odisk._tcp.local".to_string())
    );
    let airplay = report["bonjour"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "_airplay._tcp")
        .unwrap();
    let announcers: Vec<&str> = airplay["announced_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(announcers.contains(&"192.168.77.1"), "{announcers:?}");
    assert!(
        announcers.iter().any(|a| a.starts_with("fe80::")),
        "{announcers:?}"
    );
    assert!(
        airplay["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "AppleTV6,2"),
        "{airplay}"
    );
    // The fragmented DNS answer bound gateway.icloud.com to 203.0.113.10, which nothing else
    // names: the TCP flow there is iCloud by that name.
    let tcp = records
        .iter()
        .find(|r| r["server_ip"] == "203.0.113.10")
        .expect("the TCP flow");
    assert_eq!(tcp["service"], "icloud", "{tcp}");
    assert!(
        tcp["names"]["dns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "gateway.icloud.com"),
        "{tcp}"
    );
    // The DNS flow's answer is one packet of all its fragments' bytes.
    let dns = records.iter().find(|r| r["server_port"] == 53).unwrap();
    assert_eq!(dns["packets_to_client"], 1, "{dns}");
    // The QUIC Initial in 3 fragments gives its SNI; the ICMP error quoting its first fragment
    // joins the flow.
    let quic = records
        .iter()
        .find(|r| r["server_port"] == 443 && r["proto"] == "udp")
        .unwrap();
    assert_eq!(quic["names"]["quic_sni"], "www.google.de", "{quic}");
    assert_eq!(quic["packets_to_server"], 1, "{quic}");
    // Its bytes: the UDP datagram, and each fragment's IPv4 and Linux cooked v2 headers.
    assert_eq!(quic["bytes_to_server"], 1230 + 8 + 3 * (20 + 20), "{quic}");
}

#[test]
fn crafted_cases_give_each_policy_and_drop_reason() {
    // (file, datagrams reassembled, overlaps, conflicts, drops by reason)
    type Case<'a> = (&'a str, u64, u64, u64, &'a [(&'a str, u64)]);
    let cases: [Case<'_>; 7] = [
        ("crafted-overlap.pcap", 1, 1, 1, &[]),
        ("crafted-timeout.pcap", 1, 0, 0, &[("timeout", 3)]),
        ("crafted-incomplete.pcap", 0, 0, 0, &[("incomplete", 2)]),
        (
            "crafted-too-many.pcap",
            0,
            0,
            0,
            &[("incomplete", 17), ("too-many-fragments", 129)],
        ),
        ("crafted-tiny.pcap", 1, 0, 0, &[]),
        ("crafted-too-big.pcap", 0, 0, 0, &[("too-big", 2)]),
        ("crafted-inconsistent.pcap", 0, 0, 0, &[("inconsistent", 4)]),
    ];
    for (name, reassembled, overlaps, conflicts, drops) in cases {
        let (report, _) = read("1", &[], name);
        accounted(&report);
        let d = defrag(&report);
        assert_eq!(d["reassembled"], reassembled, "{name}: {d}");
        assert_eq!(d["overlaps"], overlaps, "{name}: {d}");
        assert_eq!(d["conflicts"], conflicts, "{name}: {d}");
        let want: serde_json::Map<String, Value> = drops
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        assert_eq!(d["dropped"], Value::Object(want), "{name}: {d}");
        assert_eq!(d["held_fragments"], 0, "{name}: {d}");
        // Each reassembled announcement is the real one: first bytes won over the forged ones.
        if reassembled > 0 {
            assert_eq!(
                bonjour_instances(&report, "_odisk._tcp"),
                ["luca’s imac._odisk._tcp.local"],
                "{name}"
            );
        }
    }
}

#[test]
fn output_is_the_same_for_1_and_2_threads() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixture(""))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    paths.sort();
    assert_eq!(paths.len(), 8);
    let one = read_with_records("1", &[], &paths);
    let two = read_with_records("2", &[], &paths);
    assert_eq!(one.0, two.0, "report");
    assert_eq!(one.1, two.1, "flow records");
    let report: Value = serde_json::from_str(&one.0).unwrap();
    accounted(&report);
}

#[test]
fn the_table_shows_fragments_only_when_there_were_some() {
    let out = appletap(&["read", fixture("crafted-timeout.pcap").to_str().unwrap()]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("ip fragments: 7 read, 1 datagrams reassembled from 4, 0 held (0 bytes); overlaps 0, conflicts 0 (first kept); dropped: timeout 3"),
        "{table}"
    );
    let plain = shared_pcaps().join("ndpi__iphone.pcap");
    let out = appletap(&["read", plain.to_str().unwrap()]);
    assert!(
        !String::from_utf8(out.stdout)
            .unwrap()
            .contains("ip fragments")
    );
    let out = appletap(&["read", "--format", "json", plain.to_str().unwrap()]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report.get("defrag").is_none());
}

/// A classic pcap of raw IP packets, one millisecond apart.
fn pcap(packets: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(0xa1b2_c3d4u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend([0; 8]);
    out.extend(65_535u32.to_le_bytes());
    out.extend(101u32.to_le_bytes());
    for (i, p) in packets.iter().enumerate() {
        let us = i as u32 * 1000;
        out.extend((1_700_000_000 + us / 1_000_000).to_le_bytes());
        out.extend((us % 1_000_000).to_le_bytes());
        out.extend((p.len() as u32).to_le_bytes());
        out.extend((p.len() as u32).to_le_bytes());
        out.extend(p);
    }
    out
}

/// The first of two IPv4 fragments of a UDP datagram that never completes, from `src`.
fn first_fragment(src: [u8; 4], id: u16, len: usize) -> Vec<u8> {
    let total = (20 + len) as u16;
    let mut p = vec![0x45, 0];
    p.extend(total.to_be_bytes());
    p.extend(id.to_be_bytes());
    p.extend([0x20, 0, 64, 17, 0, 0]);
    p.extend(src);
    p.extend([192, 168, 1, 2]);
    p.extend([0x14, 0xe9, 0x14, 0xe9, 0x10, 0, 0, 0]);
    p.resize(20 + len, 0xab);
    p
}

#[test]
fn a_flood_of_spoofed_fragments_stays_within_the_cap() {
    // 20,000 spoofed sources, one never-completing datagram each, then one source sending
    // 2,000: with the smallest cap, 64 KiB.
    let mut packets: Vec<Vec<u8>> = (0..20_000u32)
        .map(|i| {
            let b = i.to_be_bytes();
            first_fragment([10, b[1], b[2], b[3]], i as u16, 1200)
        })
        .collect();
    packets.extend((0..2_000u16).map(|i| first_fragment([10, 200, 0, 1], i, 1200)));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flood.pcap");
    std::fs::write(&path, pcap(&packets)).unwrap();
    for threads in ["1", "2"] {
        let (report, _) = read_with_records(
            threads,
            &["--max-fragment-bytes", "65536"],
            std::slice::from_ref(&path),
        );
        let report: Value = serde_json::from_str(&report).unwrap();
        accounted(&report);
        let d = defrag(&report);
        assert_eq!(d["fragments"], 22_000, "{d}");
        assert!(d["peak_held_bytes"].as_u64().unwrap() <= 65_536, "{d}");
        // 16 datagrams (a datagram per 4 KiB, at least 16) of 1,200 bytes and bookkeeping.
        assert!(d["peak_held_bytes"].as_u64().unwrap() > 16 * 1200, "{d}");
        let dropped = &d["dropped"];
        assert!(dropped["total-cap"].as_u64().unwrap() > 19_000, "{d}");
        assert!(dropped["source-cap"].as_u64().unwrap() > 1_900, "{d}");
        assert_eq!(report["totals"]["packets_read"], 22_000);
    }
}

/// The records of a classic little-endian pcap: (seconds, microseconds, bytes).
fn records(pcap: &[u8]) -> Vec<(u32, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 24;
    while let Some(h) = pcap.get(at..at + 16) {
        let word = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().unwrap());
        let len = word(8) as usize;
        out.push((word(0), word(4), pcap[at + 16..at + 16 + len].to_vec()));
        at += 16 + len;
    }
    out
}

/// The Linux cooked v2 capture as Ethernet frames (tcpreplay sends the bytes of a record as a
/// frame): the SLL2 source address, a multicast destination for multicast IP, EtherType kept.
fn as_ethernet(sll2: &[u8]) -> Vec<u8> {
    assert_eq!(u32::from_le_bytes(sll2[20..24].try_into().unwrap()), 276);
    let mut out = sll2[..24].to_vec();
    out[20..24].copy_from_slice(&1u32.to_le_bytes());
    for (sec, usec, frame) in records(sll2) {
        let (ether_type, ip) = (&frame[0..2], &frame[20..]);
        let dst: [u8; 6] = match (ether_type, ip.first().map(|b| b >> 4)) {
            ([0x08, 0x00], _) if ip[16] >> 4 == 0xe => [1, 0, 0x5e, ip[17] & 0x7f, ip[18], ip[19]],
            ([0x86, 0xdd], _) if ip[24] == 0xff => [0x33, 0x33, ip[36], ip[37], ip[38], ip[39]],
            _ => [2, 0, 0, 0, 0, 0xaa],
        };
        let mut eth = dst.to_vec();
        eth.extend(&frame[12..18]);
        eth.extend(ether_type);
        eth.extend(ip);
        out.extend(sec.to_le_bytes());
        out.extend(usec.to_le_bytes());
        out.extend((eth.len() as u32).to_le_bytes());
        out.extend((eth.len() as u32).to_le_bytes());
        out.extend(eth);
    }
    out
}

/// `--capture af-packet --readers 2`: the kernel's fanout hashes every fragment of a datagram
/// alike, so the readers reassemble exactly what `read` does (the real fragments replayed into
/// a veth; the readers' counters merged).
#[test]
fn af_packet_readers_reassemble_what_read_does() {
    if std::env::var_os("APPLETAP_SKIP_LIVE").is_some() {
        eprintln!("APPLETAP_SKIP_LIVE is set: live capture test skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("real-fragments-ethernet.pcap");
    std::fs::write(
        &capture,
        as_ethernet(&std::fs::read(fixture("real-fragments.pcap")).unwrap()),
    )
    .unwrap();
    let out = appletap(&["read", "--format", "json", capture.to_str().unwrap()]);
    let expected: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(defrag(&expected)["reassembled"], 5);
    for readers in ["1", "2"] {
        let ns = Netns::create(&format!("atf{}r{readers}", std::process::id()));
        let got = live(&ns, &capture, readers, &expected);
        let (d, want) = (defrag(&got), defrag(&expected));
        for field in [
            "fragments",
            "reassembled",
            "reassembled_fragments",
            "dropped",
        ] {
            assert_eq!(d[field], want[field], "--readers {readers}: {field}: {d}");
        }
        assert_eq!(got["bonjour"], expected["bonjour"], "--readers {readers}");
        let icloud = |r: &Value| {
            r["services"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["service"] == "icloud")
                .map(|l| l["flows"].clone())
        };
        assert_eq!(icloud(&got), Some(Value::from(1)), "--readers {readers}");
    }
}

/// `appletap live -i vb --capture af-packet --readers N` while `capture` is replayed into `va`:
/// its final report once every packet of `expected` was read.
fn live(ns: &Netns, capture: &Path, readers: &str, expected: &Value) -> Value {
    let want = expected["totals"]["packets_read"].as_u64().unwrap();
    let mut child = Running(
        ns.exec(env!("CARGO_BIN_EXE_appletap"))
            .args(["live", "-i", "vb", "--interval", "1", "--format", "json"])
            .args(["--capture", "af-packet", "--readers", readers])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("appletap live starts"),
    );
    let (tx, rx) = mpsc::channel::<Value>();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("a first report within 20 s");
    run_ok(
        ns.exec("tcpreplay")
            .args(["-q", "-i", "va", "--pps=200"])
            .arg(capture),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_secs(2)) {
            Ok(v) if v["totals"]["packets_read"].as_u64() == Some(want) => break,
            _ => {}
        }
    }
    run_ok(Command::new("kill").args(["-INT", &child.0.id().to_string()]));
    let mut last = None;
    while let Ok(v) = rx.recv_timeout(Duration::from_secs(10)) {
        last = Some(v);
    }
    let report = last.expect("a final report after SIGINT");
    assert_eq!(
        report["totals"]["packets_read"], want,
        "{}",
        report["totals"]
    );
    report
}

/// The metrics (`read --metrics-file`): every drop reason, zeros included, and the datagrams
/// reassembled.
#[test]
fn metrics_count_fragments_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("appletap.prom");
    let out = appletap(&[
        "read",
        "--metrics-file",
        metrics.to_str().unwrap(),
        fixture("crafted-too-many.pcap").to_str().unwrap(),
        fixture("crafted-overlap.pcap").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let text = std::fs::read_to_string(&metrics).unwrap();
    for line in [
        "appletap_ip_fragments_dropped_total{reason=\"too-many-fragments\"} 129",
        "appletap_ip_fragments_dropped_total{reason=\"incomplete\"} 17",
        "appletap_ip_fragments_dropped_total{reason=\"timeout\"} 0",
        "appletap_ip_fragments_dropped_total{reason=\"source-cap\"} 0",
        "appletap_ip_datagrams_reassembled_total 1",
        "appletap_ip_fragment_conflicts_total 1",
        "appletap_ip_fragment_bytes_held 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
    }
}
