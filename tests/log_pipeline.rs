//! What log pipelines read: `--flows-format ecs` documents (one per plain record, ECS field
//! types), `--events` lines (a blocked service, new unexpected traffic; never written over an
//! input), and the fields deploy/vector/appletap.toml reads exist in real records.

mod common;

use std::path::PathBuf;

use serde_json::Value;

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn ecs_records(capture: &str) -> (Vec<Value>, Vec<Value>) {
    let capture = common::shared_pcaps().join(capture);
    let (_, plain) = common::read_with_records("1", &[], std::slice::from_ref(&capture));
    let (_, ecs) = common::read_with_records("1", &["--flows-format", "ecs"], &[capture]);
    let parse = |v: Vec<String>| v.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    (parse(plain), parse(ecs))
}

#[test]
fn ecs_documents_have_ecs_types_one_per_record() {
    let (plain, ecs) = ecs_records("ndpi__iphone.pcap");
    assert!(plain.len() > 20);
    assert_eq!(plain.len(), ecs.len());
    let ts = |v: &Value| {
        let s = v.as_str().unwrap();
        assert!(
            s.len() == 27 && s.ends_with('Z') && &s[10..11] == "T",
            "{s}"
        );
    };
    for d in &ecs {
        ts(&d["@timestamp"]);
        ts(&d["event"]["start"]);
        ts(&d["event"]["end"]);
        assert_eq!(d["ecs"]["version"], "8.17.0");
        assert_eq!(d["event"]["kind"], "event");
        assert_eq!(d["event"]["category"], serde_json::json!(["network"]));
        assert!(d["event"]["duration"].is_u64());
        for side in ["source", "destination"] {
            let ip: std::net::IpAddr = d[side]["ip"].as_str().unwrap().parse().unwrap();
            let _ = ip;
            assert!(d[side]["bytes"].is_u64() && d[side]["packets"].is_u64());
        }
        let n = &d["network"];
        assert_eq!(
            n["bytes"].as_u64(),
            Some(
                d["source"]["bytes"].as_u64().unwrap()
                    + d["destination"]["bytes"].as_u64().unwrap()
            )
        );
        assert!(n["iana_number"].as_str().unwrap().parse::<u8>().is_ok());
        if let Some(mac) = d["source"]["mac"].as_str() {
            assert!(mac.len() == 17 && mac.split('-').count() == 6 && mac == mac.to_uppercase());
        }
    }
    // The same flows: community IDs and services agree record for record.
    let key = |v: &Value, a: &str, b: &str| {
        let get = |p: &str| v.pointer(p).cloned().unwrap_or(Value::Null);
        format!("{} {}", get(a), get(b))
    };
    let mut a: Vec<String> = plain
        .iter()
        .map(|r| key(r, "/community_id", "/service"))
        .collect();
    let mut b: Vec<String> = ecs
        .iter()
        .map(|d| key(d, "/network/community_id", "/appletap/service"))
        .collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

fn audit_events(capture: PathBuf) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let out = common::appletap(&[
        "audit",
        "--events",
        events.to_str().unwrap(),
        capture.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lines(&events)
}

#[test]
fn a_blocked_service_and_unexpected_traffic_are_events() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let ev = audit_events(root.join("fixtures/audit/dns-then-unanswered-5223.pcap"));
    assert!(
        ev.iter().any(|e| e["event"] == "health-change"
            && e["service"] == "apns"
            && e["to"] == "blocked"),
        "{ev:?}"
    );
    let ev = audit_events(common::shared_pcaps().join("ndpi__stun.pcap"));
    let unexpected: Vec<&Value> = ev.iter().filter(|e| e["event"] == "unexpected").collect();
    assert!(!unexpected.is_empty(), "{ev:?}");
    for u in unexpected {
        assert!(u["port"].is_u64() && u["server"].is_string() && u["flows"].as_u64() > Some(0));
    }
}

#[test]
fn events_never_overwrite_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.pcap");
    std::fs::copy(common::shared_pcaps().join("ndpi__iphone.pcap"), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    let p = input.to_str().unwrap();
    let out = common::appletap(&["read", "--events", p, p]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read(&input).unwrap(), before);
}

/// Vector itself is not in the package registries here (README "Log pipelines"): the config is
/// checked as TOML, and every record field its transforms read exists in real ECS documents.
#[test]
fn the_vector_config_reads_fields_real_records_have() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/vector/appletap.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let config: toml::Table = text.parse().expect("valid TOML");
    for sink in [
        "kafka",
        "elasticsearch_flows",
        "elasticsearch_events",
        "clickhouse",
    ] {
        assert!(config["sinks"].get(sink).is_some(), "{sink}");
    }
    let remap = config["transforms"]["flows_rows"]["source"]
        .as_str()
        .unwrap();
    let (_, ecs) = ecs_records("ndpi__iphone.pcap");
    let mut read = 0;
    for field in remap
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| w.starts_with('.') && w.len() > 1)
    {
        let pointer = field.replace('.', "/");
        assert!(
            ecs.iter().any(|d| d.pointer(&pointer).is_some()),
            "{field} is in no record"
        );
        read += 1;
    }
    assert!(read >= 10, "{read}");
}
