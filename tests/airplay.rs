//! A real AirPlay 1 (RAOP) session between two independent implementations (pyatv sending,
//! shairport-sync receiving): its RTP audio, control and timing flows on UDP, negotiated by
//! RTSP SETUP on the control connection, are labelled with the control connection's service,
//! with evidence naming it, so the airplay tally holds the whole session.
//!
//! One test reads the committed capture (fixtures/airplay/, made by
//! fixtures/make_airplay_fixture.sh); the other makes a fresh session with the same script, in
//! network namespaces of its own, and reads that. The live part needs root, shairport-sync,
//! avahi-daemon, dbus-daemon, tcpdump and a Python venv with pyatv (`.ci/setup` installs them;
//! the venv is $APPLETAP_PYATV_VENV, by default /opt/appletap-pyatv). Set
//! APPLETAP_SKIP_LIVE=1 to skip it knowingly, as tests/live.rs.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> PathBuf {
    root().join("fixtures/airplay/raop-pyatv-shairport.pcap")
}

/// `appletap read --format json --flows FILE --threads N` of `capture`: the report and the
/// flow records.
fn read(capture: &Path, threads: u32) -> (Value, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let flows = dir.path().join("flows.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_appletap"))
        .args(["read", "--no-progress", "--format", "json", "--threads"])
        .arg(threads.to_string())
        .arg("--flows")
        .arg(&flows)
        .arg(capture)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let records = std::fs::read_to_string(&flows)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (report, records)
}

fn bytes(r: &Value) -> u64 {
    r["bytes_to_server"].as_u64().unwrap() + r["bytes_to_client"].as_u64().unwrap()
}

/// Checks the session of a capture between `sender` and `receiver`: the RTSP control flow is
/// airplay, every UDP flow between the two hosts is airplay by an `expected` evidence naming
/// that control flow (audio, control and timing each), and the airplay tally holds at least
/// 99% of the session's bytes.
fn check_session(capture: &Path, sender: &str, receiver: &str) {
    let (report, records) = read(capture, 1);
    let pair = |r: &Value| {
        let (c, s) = (r["client_ip"].as_str(), r["server_ip"].as_str());
        (c == Some(sender) && s == Some(receiver)) || (c == Some(receiver) && s == Some(sender))
    };
    let session: Vec<&Value> = records.iter().filter(|r| pair(r)).collect();
    let rtsp = session
        .iter()
        .find(|r| r["proto"] == "tcp" && r["server_port"] == 5000)
        .expect("the RTSP control flow");
    assert_eq!(rtsp["service"], "airplay", "{rtsp}");
    let parent = format!(
        "rtsp {}:{} -> {}:{} SETUP ",
        rtsp["client_ip"].as_str().unwrap(),
        rtsp["client_port"],
        rtsp["server_ip"].as_str().unwrap(),
        rtsp["server_port"]
    );
    let media: Vec<&&Value> = session.iter().filter(|r| r["proto"] == "udp").collect();
    let mut named = Vec::new();
    for m in &media {
        assert_eq!(m["service"], "airplay", "{m}");
        let ev = &m["evidence"][0];
        assert_eq!(ev["signal"], "expected", "{m}");
        let value = ev["value"].as_str().unwrap();
        let what = value
            .strip_prefix(&parent)
            .unwrap_or_else(|| panic!("{value} does not name the parent {parent}"));
        named.push(what.to_string());
        assert!(
            ev["rule"].as_str().unwrap().contains("parent is airplay"),
            "{ev}"
        );
    }
    named.sort();
    assert_eq!(
        named,
        ["control_port", "server_port", "timing_port"],
        "audio, control and timing flows"
    );
    let total: u64 = session.iter().map(|r| bytes(r)).sum();
    let media_bytes: u64 = media.iter().map(|r| bytes(r)).sum();
    assert!(
        media_bytes * 100 >= total * 95,
        "media carry most of a session"
    );
    let airplay = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "airplay")
        .expect("an airplay tally");
    let tallied = airplay["bytes"].as_u64().unwrap();
    assert!(
        tallied * 100 >= total * 99,
        "airplay tally {tallied} of the session's {total} bytes"
    );
    // The negotiated flows are one-way by design: no failed attempt, nothing "blocked".
    let health = report["health"].to_string();
    assert!(!health.contains("look blocked"), "{health}");
}

#[test]
fn the_committed_session_is_airplay_end_to_end() {
    check_session(&fixture(), "10.77.0.1", "10.77.0.2");
}

#[test]
fn the_session_reads_the_same_with_any_number_of_threads() {
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("inputs");
        v
    };
    let (one, rec1) = read(&fixture(), 1);
    for t in [2, 3, 5] {
        let (many, rec) = read(&fixture(), t);
        assert_eq!(strip(one.clone()), strip(many), "{t} threads");
        let key = |r: &Value| r["community_id"].to_string() + &r["first_ts"].to_string();
        let mut a: Vec<String> = rec1.iter().map(|r| key(r) + &r.to_string()).collect();
        let mut b: Vec<String> = rec.iter().map(|r| key(r) + &r.to_string()).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{t} threads");
    }
}

/// Without its RTSP control connection (the capture started after SETUP), the media flows
/// are what their ports alone say: the link comes from the negotiation, not from the ports.
#[test]
fn without_the_negotiation_the_media_flows_are_not_linked() {
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("no-rtsp.pcap");
    let status = Command::new("tshark")
        .args(["-r"])
        .arg(fixture())
        .args(["-Y", "not tcp.port == 5000", "-F", "pcap", "-w"])
        .arg(&cut)
        .status()
        .expect("tshark runs");
    assert!(status.success());
    let (_, records) = read(&cut, 1);
    let udp: Vec<&Value> = records
        .iter()
        .filter(|r| r["proto"] == "udp" && r["server_ip"] == "10.77.0.2")
        .collect();
    assert!(udp.len() >= 3);
    for r in udp {
        assert_ne!(r["service"], "airplay", "{r}");
        assert!(
            r["evidence"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["signal"] != "expected")
        );
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn a_fresh_session_between_pyatv_and_shairport_sync_is_airplay_end_to_end() {
    if std::env::var_os("APPLETAP_SKIP_LIVE").is_some() {
        eprintln!("APPLETAP_SKIP_LIVE is set: live AirPlay session skipped");
        return;
    }
    assert!(
        is_root(),
        "needs root (network namespaces); set APPLETAP_SKIP_LIVE=1 to skip"
    );
    let venv = std::env::var("APPLETAP_PYATV_VENV").unwrap_or("/opt/appletap-pyatv".into());
    for tool in [
        "shairport-sync",
        "avahi-daemon",
        "dbus-daemon",
        "tcpdump",
        "unshare",
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .status()
            .is_ok_and(|s| s.success());
        assert!(found, "{tool} missing: run .ci/setup");
    }
    assert!(
        Path::new(&venv).join("bin/python").exists(),
        "no pyatv venv at {venv}: run .ci/setup"
    );
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("session.pcap");
    let out = Command::new(root().join("fixtures/make_airplay_fixture.sh"))
        .arg(&capture)
        .arg("0.5")
        .arg(&venv)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "session failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_session(&capture, "10.77.0.1", "10.77.0.2");
}
