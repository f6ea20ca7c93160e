//! The binary as a user drives it: exit codes, messages that say what to fix, partial reports
//! from damaged captures, and the JSON/JSONL outputs' stable fields.

mod common;

use common::*;
use serde_json::Value;

fn sample() -> String {
    format!("{}/fixtures/sample/iphone.pcap", env!("CARGO_MANIFEST_DIR"))
}

fn json_report(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

#[test]
fn read_sample_table_lists_services_and_totals() {
    let out = appletap(&["read", &sample()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("SERVICE"), "{text}");
    assert!(text.contains("totals: 500 packets read"), "{text}");
    assert!(text.contains("skipped by reason: not-ip 14"), "{text}");
}

#[test]
fn json_report_and_flow_records_carry_the_stable_fields() {
    let dir = tempfile::tempdir().unwrap();
    let flows = dir.path().join("flows.jsonl");
    let out = appletap(&[
        "read",
        "--format",
        "json",
        "--flows",
        flows.to_str().unwrap(),
        &sample(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let report = json_report(&out);
    assert_eq!(report["totals"]["packets_read"], 500);
    let lines = std::fs::read_to_string(&flows).unwrap();
    let mut n = 0;
    for line in lines.lines() {
        let rec: Value = serde_json::from_str(line).expect("each line is a JSON object");
        for field in [
            "proto",
            "client_ip",
            "client_port",
            "server_ip",
            "server_port",
            "service",
            "apple",
            "confidence",
            "evidence",
            "name",
            "state",
            "first_ts",
            "last_ts",
            "packets_to_server",
            "packets_to_client",
            "bytes_to_server",
            "bytes_to_client",
        ] {
            assert!(
                rec.get(field).is_some(),
                "flow record lacks {field}: {line}"
            );
        }
        n += 1;
    }
    assert_eq!(report["totals"]["flows"], n);
}

#[test]
fn flows_to_stdout_moves_the_report_to_stderr() {
    let out = appletap(&["read", "--flows", "-", &sample()]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.lines().all(|l| l.starts_with('{')));
    assert!(String::from_utf8_lossy(&out.stderr).contains("totals:"));
}

#[test]
fn truncated_capture_gives_partial_report_and_names_the_record() {
    let bytes = std::fs::read(sample()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 50]).unwrap();
    let out = appletap(&["read", "--format", "json", cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "a file not fully read exits 1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cut.pcap"), "{err}");
    assert!(err.contains("record 500"), "{err}");
    let report = json_report(&out);
    assert_eq!(
        report["totals"]["packets_read"], 499,
        "everything before the cut is reported"
    );
    assert!(
        report["inputs"][0]["error"]
            .as_str()
            .unwrap()
            .contains("record 500")
    );
}

#[test]
fn corrupted_record_header_gives_partial_report() {
    let mut bytes = std::fs::read(sample()).unwrap();
    // Walk to record 101 and give it an impossible captured length.
    let mut off = 24;
    for _ in 0..100 {
        let incl = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16 + incl;
    }
    bytes[off + 8..off + 12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pcap");
    std::fs::write(&bad, &bytes).unwrap();
    let out = appletap(&["read", "--format", "json", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.pcap") && err.contains("record 101"),
        "{err}"
    );
    assert_eq!(json_report(&out)["totals"]["packets_read"], 100);
}

#[test]
fn not_a_capture_and_missing_file_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, "hello, this is text").unwrap();
    let out = appletap(&["read", txt.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("notes.txt"));
    let out = appletap(&["read", "/nonexistent/x.pcap"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.pcap"));
}

#[test]
fn wrong_flag_exits_2_with_usage() {
    let out = appletap(&["read", "--frobnicate", &sample()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--frobnicate"));
    let out = appletap(&["read", "--format", "xml", &sample()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("table, json"));
}

#[test]
fn bad_signature_file_exits_2_naming_file_line_and_entry() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(format!(
        "{}/signatures/apple.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let bad = dir.path().join("bad.toml");
    // Break the first port rule's range.
    let broken = shipped.replacen("\nports = \"", "\nports = \"99999", 1);
    std::fs::write(&bad, broken).unwrap();
    let out = appletap(&["signatures", "--check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:") && err.contains("[[port]] #1"),
        "{err}"
    );
    let out = appletap(&["read", "--signatures", bad.to_str().unwrap(), &sample()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn signatures_check_and_listing() {
    let shipped = format!("{}/signatures/apple.toml", env!("CARGO_MANIFEST_DIR"));
    let out = appletap(&["signatures", "--check", &shipped]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(": OK:"));
    let out = appletap(&["signatures", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["ports"].as_array().unwrap().len() > 100);
    assert!(
        v["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["sources"].as_array().is_some_and(|s| !s.is_empty()))
    );
    let out = appletap(&["signatures"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("PORTS ("));
}

#[test]
fn broken_pipe_is_quiet() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_appletap"))
        .args(["read", "--flows", "-", &sample()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // stdout is now closed: further writes hit a broken pipe.
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn flows_on_a_full_or_unwritable_disk_is_a_clear_error_and_the_report_still_prints() {
    for (path, want) in [
        ("/dev/full", "No space left on device"),
        (
            "/nonexistent-dir/flows.jsonl",
            "cannot write flow records to /nonexistent-dir/flows.jsonl",
        ),
    ] {
        let out = appletap(&["read", "--flows", path, &sample()]);
        assert_eq!(out.status.code(), Some(1), "{path}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{path}: {err}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("totals: 500 packets read"));
    }
}
