//! Wi-Fi captures (radiotap 127, plain 802.11 105) end to end: the fixtures of
//! `fixtures/make_wifi_fixtures.py` (real iPhone and Mac frames put back into 802.11 data
//! frames) give the report and flow records the Ethernet original gives, devices keyed by the
//! 802.11 source addresses, and the frame-kind counters; Wireshark's WPA capture is counted
//! by kind as tshark, run here, counts it.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/wifi")
        .join(name)
}

fn pcaps_more(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/pcaps-more")
        .join(name)
}

/// The report and the flow records of `appletap read --format json`.
fn read(path: &Path) -> (Value, Vec<Value>) {
    let (report, records) = read_with_records("1", &[], &[path.to_path_buf()]);
    let records = records
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    (serde_json::from_str(&report).unwrap(), records)
}

/// `v` without what depends on the link layer's length: every field whose name holds
/// `bytes`, the inputs, the totals, the skip and frame-kind counters.
fn without_link_sizes(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !k.contains("bytes")
                        && !["inputs", "totals", "skipped", "wifi_frames"].contains(&k.as_str())
                })
                .map(|(k, v)| (k.clone(), without_link_sizes(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_link_sizes).collect()),
        _ => v.clone(),
    }
}

fn sorted(records: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .map(|r| without_link_sizes(r).to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn wifi_fixtures_read_like_the_ethernet_original() {
    let (eth, eth_records) = read(&fixture("wifi-ethernet.pcap"));
    // What the original holds, so that "the same" means something.
    let services: Vec<&str> = eth["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    for s in ["bonjour", "apple", "icloud", "apple-account"] {
        assert!(services.contains(&s), "{services:?}");
    }
    let bonjour: Vec<&str> = eth["bonjour"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert!(bonjour.contains(&"_companion-link._tcp"), "{bonjour:?}");
    assert!(
        eth_records
            .iter()
            .any(|r| r["name"] == "gateway.icloud.com")
    );
    assert!(eth.get("wifi_frames").is_none(), "absent when zero");

    for name in [
        "wifi-radiotap-fcs.pcap",
        "wifi-radiotap.pcap",
        "wifi-plain.pcap",
        "wifi-wds.pcap",
    ] {
        let (wifi, records) = read(&fixture(name));
        assert_eq!(
            without_link_sizes(&wifi),
            without_link_sizes(&eth),
            "{name}"
        );
        assert_eq!(sorted(&records), sorted(&eth_records), "{name}");
        assert_eq!(wifi["totals"]["packets_decoded"], 78, "{name}");
        // The iPhone's flows carry its Wi-Fi address as the client's.
        let iphone = records
            .iter()
            .find(|r| r["name"] == "gateway.icloud.com")
            .unwrap();
        assert_eq!(iphone["client_mac"], "c4:61:8b:35:82:a9", "{name}");
        // On worker threads the packets (and their 802.11 headers) go through batches.
        let (threaded, threaded_records) = read_with_records("3", &[], &[fixture(name)]);
        let threaded: Value = serde_json::from_str(&threaded).unwrap();
        assert_eq!(threaded["devices"], wifi["devices"], "{name}");
        let mut want: Vec<String> = records.iter().map(Value::to_string).collect();
        want.sort();
        let mut got: Vec<String> = threaded_records
            .iter()
            .map(|r| serde_json::from_str::<Value>(r).unwrap().to_string())
            .collect();
        got.sort();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn devices_are_keyed_by_the_wifi_source_addresses() {
    for name in ["wifi-radiotap-fcs.pcap", "wifi-wds.pcap", "wifi-plain.pcap"] {
        let (r, _) = read(&fixture(name));
        let devices: BTreeMap<String, String> = r["devices"]["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["key"].as_str().unwrap().to_string(),
                    d["kind"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        // The iPhone (station, To DS source), the Mac (the access point itself, From DS
        // source) and the sharing bridge behind it (From DS source, transmitted by the Mac):
        // the mesh radios of the four-address file are no devices.
        let want: BTreeMap<String, String> = [
            ("c4:61:8b:35:82:a9", "iphone"),
            ("d8:30:62:56:00:1c", "mac"),
            ("c6:2c:03:60:6a:64", "mac"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(devices, want, "{name}");
    }
}

#[test]
fn frame_kinds_in_json_and_table() {
    let (r, _) = read(&fixture("wifi-radiotap-fcs.pcap"));
    assert_eq!(
        r["wifi_frames"],
        serde_json::json!([
            {"kind": "qos-data", "frames": 92},
            {"kind": "protected-data", "frames": 1},
            {"kind": "null", "frames": 1},
            {"kind": "qos-null", "frames": 1},
        ])
    );
    // Skipped: the original's 14 frames without IP (ARP, EAPOL) and the 3 frames added. The
    // Protected copy of the captive.apple.com query holds it in the clear (only the bit says
    // otherwise): a reader ignoring the bit would decode it.
    assert_eq!(r["totals"]["packets_skipped"], 17);
    assert_eq!(r["totals"]["packets_decoded"], 78);
    let out = appletap(&["read", fixture("wifi-radiotap-fcs.pcap").to_str().unwrap()]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("802.11 frames by kind: qos-data 92, protected-data 1, null 1, qos-null 1"),
        "{table}"
    );
    let out = appletap(&["read", fixture("wifi-ethernet.pcap").to_str().unwrap()]);
    assert!(!String::from_utf8(out.stdout).unwrap().contains("802.11"));
}

/// tshark's frame type/subtype (`wlan.fc.type_subtype`) and Protected bit, as appletap's kind.
fn kind_of(type_subtype: u32, protected: bool) -> &'static str {
    match type_subtype {
        0x00 => "association-request",
        0x01 => "association-response",
        0x02 => "reassociation-request",
        0x03 => "reassociation-response",
        0x04 => "probe-request",
        0x05 => "probe-response",
        0x08 => "beacon",
        0x0a => "disassociation",
        0x0b => "authentication",
        0x0c => "deauthentication",
        0x0d => "action",
        0x19 => "block-ack",
        0x1b => "rts",
        0x1c => "cts",
        0x1d => "ack",
        0x20 | 0x28 if protected => "protected-data",
        0x20 => "data",
        0x28 => "qos-data",
        0x24 => "null",
        0x2c => "qos-null",
        other => panic!("no kind for {other:#x} in this test"),
    }
}

#[test]
fn wpa_induction_counted_by_kind_as_tshark_counts() {
    let path = pcaps_more("wireshark__wpa-Induction.pcap");
    let out = Command::new("tshark")
        .args(["-r", path.to_str().unwrap(), "-T", "fields"])
        .args(["-e", "wlan.fc.type_subtype", "-e", "wlan.fc.protected"])
        .output()
        .expect("tshark runs (.ci/setup installs it)");
    assert!(out.status.success());
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let mut f = line.split('\t');
        let ts = f.next().unwrap_or("");
        let kind = if ts.is_empty() {
            // tshark: "Unknown protocol version", no type decoded.
            "invalid"
        } else {
            let ts = u32::from_str_radix(ts.trim_start_matches("0x"), 16).unwrap();
            kind_of(ts, f.next() == Some("1"))
        };
        *want.entry(kind.to_string()).or_default() += 1;
    }
    assert_eq!(want.values().sum::<u64>(), 1093);
    assert!(
        want["beacon"] > 300 && want["protected-data"] > 200,
        "{want:?}"
    );
    let (r, records) = read(&path);
    let got: BTreeMap<String, u64> = r["wifi_frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["kind"].as_str().unwrap().to_string(),
                w["frames"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want);
    // Nothing in it is IP: management, control, encrypted data and the 4 EAPOL frames of
    // the WPA handshake are not IP; the damaged frames are malformed.
    assert!(records.is_empty());
    let skipped: BTreeMap<&str, u64> = r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["reason"].as_str().unwrap(),
                s["packets"].as_u64().unwrap(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(
        skipped,
        [
            ("link-malformed", want["invalid"]),
            ("not-ip", 1093 - want["invalid"])
        ]
        .into_iter()
        .collect()
    );
}

#[test]
fn zeek_arp_captures_are_not_ip_nor_unsupported() {
    for name in [
        "zeek__arp-who-has-radiotap.pcap",
        "zeek__arp-who-has-wlanmon.pcap",
    ] {
        let (r, _) = read(&pcaps_more(name));
        let not_ip = r["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["reason"] == "not-ip")
            .unwrap()["packets"]
            .clone();
        assert_eq!(not_ip, 2, "{name}");
        assert_eq!(
            r["wifi_frames"],
            serde_json::json!([{"kind": "qos-data", "frames": 2}]),
            "{name}"
        );
    }
}

/// The Prometheus text of the metrics set from the report of `path`, run through the core.
fn metrics_text(path: &Path) -> String {
    use appletap::capture::file::CaptureFile;
    use appletap::pipeline::{Engine, EngineConfig};
    use appletap::report::{Drops, Report};
    use appletap::sensor::metrics::{Encoding, Metrics};
    use appletap::signature::SignatureSet;
    let sigs = std::sync::Arc::new(SignatureSet::builtin().unwrap());
    let mut engine = Engine::new(std::sync::Arc::clone(&sigs), EngineConfig::default());
    let mut cap = CaptureFile::open(path).unwrap();
    while let Some(p) = cap.next_packet() {
        engine.process(&p.unwrap());
    }
    engine.finish();
    let t = engine.totals(false);
    let report = Report::build(
        &sigs,
        vec![],
        &t.counters,
        &t.names,
        t.evicted,
        Drops::default(),
    );
    let m = Metrics::new("test");
    m.update(&report, None);
    m.encode(Encoding::Text)
}

#[test]
fn frame_kinds_as_metrics_with_their_closed_labels() {
    let text = metrics_text(&pcaps_more("wireshark__wpa-Induction.pcap"));
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("appletap_wifi_frames_total{"))
        .collect();
    for want in [
        r#"appletap_wifi_frames_total{kind="beacon"} 398"#,
        r#"appletap_wifi_frames_total{kind="protected-data"} 280"#,
        r#"appletap_wifi_frames_total{kind="ack"} 191"#,
        r#"appletap_wifi_frames_total{kind="invalid"} 10"#,
    ] {
        assert!(series.contains(&want), "{want} in {series:#?}");
    }
    assert_eq!(series.len(), 12, "{series:#?}");
    // An Ethernet capture has no series (the family's HELP and TYPE lines only).
    let text = metrics_text(&fixture("wifi-ethernet.pcap"));
    assert!(!text.contains("appletap_wifi_frames_total{"));
    assert!(text.contains("appletap_packets_read_total 92"));
}
