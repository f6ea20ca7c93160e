//! Connection outcomes, per-service health verdicts, unexpected traffic, and `audit
//! --fail-on` as scripts use it: on fixtures built from real packets (fixtures/audit/) and on
//! the shared captures.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

fn fixture(name: &str) -> String {
    format!("{}/fixtures/audit/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn audit_json(path: &str) -> Value {
    let out = appletap(&["audit", "--format", "json", path]);
    assert!(
        out.status.code() == Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn health<'a>(doc: &'a Value, service: &str) -> &'a Value {
    doc["health"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["service"] == service)
        .unwrap_or_else(|| panic!("no health line for {service}: {doc}"))
}

fn states(path: &str) -> Vec<(String, u64, String)> {
    let out = appletap(&["read", "--threads", "1", "--flows", "-", path]);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let r: Value = serde_json::from_str(l).unwrap();
            (
                r["server_ip"].as_str().unwrap().to_string(),
                r["server_port"].as_u64().unwrap_or(0),
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn syn_answered_by_rst_is_rejected_and_apns_blocked() {
    let f = fixture("syn-rst.pcap");
    assert_eq!(
        states(&f),
        vec![("17.57.144.116".into(), 5223, "rejected".into())]
    );
    let h = audit_json(&f);
    let apns = health(&h, "apns");
    assert_eq!(apns["verdict"], "blocked");
    assert_eq!(apns["rejected"], 1);
    assert!(
        apns["reason"]
            .as_str()
            .unwrap()
            .contains("TCP 5223 looks blocked")
    );
    let allow = &apns["allow"];
    assert!(
        allow["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "tcp/5223"),
        "{allow}"
    );
    assert!(
        !allow["sources"].as_array().unwrap().is_empty(),
        "the verdict cites its sources"
    );
}

#[test]
fn unanswered_5223_with_443_fallback_is_degraded_and_says_so() {
    let f = fixture("apns-5223-blocked-443-fallback.pcap");
    let st = states(&f);
    let unanswered = st
        .iter()
        .filter(|s| s.1 == 5223 && s.2 == "unanswered")
        .count();
    assert_eq!(
        unanswered, 3,
        "retransmitted SYNs count once per attempt: {st:?}"
    );
    assert!(
        st.contains(&("17.57.144.116".into(), 443, "closed".into())),
        "{st:?}"
    );
    let apns = health(&audit_json(&f), "apns").clone();
    assert_eq!(apns["verdict"], "degraded");
    assert_eq!(
        (apns["attempts"].as_u64(), apns["unanswered"].as_u64()),
        (Some(4), Some(3))
    );
    let reason = apns["reason"].as_str().unwrap();
    assert_eq!(
        reason,
        "apns: 3 connection attempts to TCP 5223, none answered (3 unanswered); \
         1 fell back to TCP 443 and succeeded: TCP 5223 looks blocked"
    );
}

#[test]
fn icmp_port_unreachable_quoting_a_udp_request_marks_it_unreachable() {
    let f = fixture("icmp-port-unreachable-udp.pcap");
    assert_eq!(
        states(&f),
        vec![("17.253.26.125".into(), 123, "unreachable".into())]
    );
    let out = appletap(&["read", "--flows", "-", &f]);
    let rec: Value = serde_json::from_str(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(rec["icmp_error"]["reason"], "port-unreachable");
    assert_eq!(
        rec["packets_to_client"], 1,
        "the ICMP error is counted on the flow it quotes"
    );
    assert_eq!(health(&audit_json(&f), "time")["verdict"], "blocked");
}

#[test]
fn admin_prohibited_icmp_quoting_a_syn_marks_it_unreachable() {
    let f = fixture("icmp-admin-prohibited-syn.pcap");
    assert_eq!(
        states(&f),
        vec![("17.57.144.116".into(), 5223, "unreachable".into())]
    );
    let out = appletap(&["read", "--flows", "-", &f]);
    let rec: Value = serde_json::from_str(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(rec["icmp_error"]["reason"], "admin-prohibited");
    assert_eq!(rec["icmp_error"]["from"], "192.168.2.1");
    let apns = health(&audit_json(&f), "apns").clone();
    assert_eq!(
        (apns["verdict"].as_str(), apns["unreachable"].as_u64()),
        (Some("blocked"), Some(1))
    );
}

#[test]
fn capture_starting_mid_flow_gives_partial_flows_and_no_false_alarm() {
    let f = fixture("midflow.pcap");
    let st = states(&f);
    assert!(
        st.iter()
            .any(|s| s.0 == "17.248.185.140" && s.2 == "partial"),
        "the p26-fmfmobile flow began before the cut: {st:?}"
    );
    let doc = audit_json(&f);
    for h in doc["health"].as_array().unwrap() {
        assert_eq!(h["verdict"], "ok", "{h}");
    }
}

#[test]
fn fail_on_works_from_a_shell_script() {
    let bin = env!("CARGO_BIN_EXE_appletap");
    let script = format!(
        r#"
        check() {{ "{bin}" audit --fail-on "$1" "$2" > /dev/null; rc=$?; echo "$1 $(basename "$2") $rc"; }}
        check blocked  "{rst}"
        check degraded "{rst}"
        check blocked  "{fallback}"
        check degraded "{fallback}"
        check blocked  "{mid}"
        if "{bin}" audit --fail-on blocked "{rst}" > /dev/null; then echo "if: passed"; else echo "if: failed"; fi
        "#,
        rst = fixture("syn-rst.pcap"),
        fallback = fixture("apns-5223-blocked-443-fallback.pcap"),
        mid = fixture("midflow.pcap"),
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        vec![
            "blocked syn-rst.pcap 3",
            "degraded syn-rst.pcap 3",
            "blocked apns-5223-blocked-443-fallback.pcap 0",
            "degraded apns-5223-blocked-443-fallback.pcap 3",
            "blocked midflow.pcap 0",
            "if: failed",
        ],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn audit_of_shared_captures_lists_unanswered_apple_connections_and_unexpected_traffic() {
    // 1kxun: one NTP request to Apple's time server with no reply in the capture.
    let doc = audit_json(shared_pcaps().join("ndpi__1kxun.pcap").to_str().unwrap());
    let time = health(&doc, "time");
    assert_eq!(
        (time["verdict"].as_str(), time["unanswered"].as_u64()),
        (Some("blocked"), Some(1))
    );
    // h323: lab traffic on 17.2.0.x (Apple's block) on H.323 ports no Apple signature lists.
    let doc = audit_json(shared_pcaps().join("ndpi__h323.pcap").to_str().unwrap());
    let unexpected = doc["unexpected"].as_array().unwrap();
    assert!(
        unexpected
            .iter()
            .any(|u| u["kind"] == "apple-endpoint-unlisted-port"
                && u["server"] == "17.2.0.122"
                && u["port"] == 1720),
        "{unexpected:?}"
    );
    // stun: non-Apple STUN servers on FaceTime's UDP 3478.
    let doc = audit_json(shared_pcaps().join("ndpi__stun.pcap").to_str().unwrap());
    let unexpected = doc["unexpected"].as_array().unwrap();
    assert!(
        unexpected
            .iter()
            .any(|u| u["kind"] == "apple-port-non-apple-endpoint"
                && u["port"] == 3478
                && u["service"] == "facetime"),
        "{unexpected:?}"
    );
    // iphone: Apple names no narrower signature covers are listed. The shipped set covers
    // every such name of the shared captures (tests/coverage.rs), so two of its narrower
    // rules are left out of a copy here.
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("signatures/apple.toml"),
    )
    .unwrap();
    let mut without = String::new();
    for entry in shipped.split("[[host]]") {
        let narrower = ["\"cl4.apple.com\"", "\"iphone-ld.apple.com\""]
            .iter()
            .any(|n| entry.contains(&format!("pattern = {n}")));
        if !without.is_empty() && !narrower {
            without.push_str("[[host]]");
        }
        if without.is_empty() || !narrower {
            without.push_str(entry);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let sigs = dir.path().join("without-location-hosts.toml");
    std::fs::write(&sigs, &without).unwrap();
    let out = appletap(&[
        "audit",
        "--format",
        "json",
        "--signatures",
        sigs.to_str().unwrap(),
        shared_pcaps().join("ndpi__iphone.pcap").to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = doc["unclassified_apple_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["cl4.apple.com", "iphone-ld.apple.com"]);
}

#[test]
fn read_report_carries_health_and_unexpected_sections() {
    let out = appletap(&["read", &fixture("syn-rst.pcap")]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("HEALTH OF APPLE SERVICES") && text.contains("[BLOCKED] apns"),
        "{text}"
    );
    let out = appletap(&["read", "--format", "json", &fixture("syn-rst.pcap")]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["health"][0]["verdict"], "blocked");
    assert!(v["unexpected"].is_array());
}
