//! Signals and pipes: SIGINT or SIGTERM while `appletap read -` is reading a long capture from
//! a pipe stops the reading and still flushes a complete, consistent report (exit code 1, an
//! error saying a signal stopped it); a reader that goes away (`| head -1`) ends the program
//! quietly.

mod common;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Writes a classic pcap of TCP SYNs (a new flow each, 1,000 per second of packet time) until
/// the reader goes away; counts the packets written.
fn write_scan_until_closed(mut out: impl Write, written: &AtomicU64) {
    let mut header = Vec::new();
    header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    header.extend_from_slice(&2u16.to_le_bytes());
    header.extend_from_slice(&4u16.to_le_bytes());
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(&65_535u32.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    if out.write_all(&header).is_err() {
        return;
    }
    let mut frame = [0u8; 54];
    frame[12] = 0x08; // IPv4
    frame[14] = 0x45;
    frame[17] = 40;
    frame[22] = 64;
    frame[23] = 6; // TCP
    frame[26..30].copy_from_slice(&[10, 0, 0, 1]);
    frame[36..38].copy_from_slice(&443u16.to_be_bytes());
    frame[46] = 0x50;
    frame[47] = 0x02; // SYN
    let mut buf = Vec::with_capacity(1 << 16);
    for i in 0u64.. {
        let (secs, micros) = (1_700_000_000 + i / 1000, (i % 1000) * 1000);
        buf.extend_from_slice(&(secs as u32).to_le_bytes());
        buf.extend_from_slice(&(micros as u32).to_le_bytes());
        buf.extend_from_slice(&54u32.to_le_bytes());
        buf.extend_from_slice(&54u32.to_le_bytes());
        let dst = (i / 60_000) as u32;
        frame[30..34].copy_from_slice(&[172, 16, (dst >> 8) as u8, dst as u8]);
        frame[34..36].copy_from_slice(&(1024 + (i % 60_000) as u16).to_be_bytes());
        frame[38..42].copy_from_slice(&(i as u32).to_be_bytes());
        buf.extend_from_slice(&frame);
        if buf.len() >= 1 << 16 {
            if out.write_all(&buf).is_err() {
                return;
            }
            buf.clear();
            written.store(i + 1, Ordering::SeqCst);
        }
    }
}

/// Waits for a child with a bound, reading its outputs meanwhile.
fn wait_bounded(mut child: Child, bound: Duration) -> (Option<i32>, Vec<u8>, String) {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).unwrap();
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > bound {
            let _ = child.kill();
            panic!("appletap did not stop within {bound:?} of the signal");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (
        status.code(),
        out_reader.join().unwrap(),
        err_reader.join().unwrap(),
    )
}

fn stopped_by(signal: &str, threads: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_appletap"))
        .args(["read", "--format", "json", "--threads", threads, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let stdin = child.stdin.take().unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let written = Arc::clone(&written);
        std::thread::spawn(move || write_scan_until_closed(stdin, &written))
    };
    // Far more than a pipe holds: appletap is reading, its signal handler long installed.
    let start = Instant::now();
    while written.load(Ordering::SeqCst) < 200_000 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "appletap is not reading"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let kill = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let (code, stdout, stderr) = wait_bounded(child, Duration::from_secs(30));
    writer.join().unwrap();
    let sent = written.load(Ordering::SeqCst);

    assert_eq!(code, Some(1), "SIG{signal}: exit code 1\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("stopped by a signal"), "{stderr}");
    let report: Value = serde_json::from_slice(&stdout).expect("a complete JSON report");
    let error = report["inputs"][0]["error"].as_str().unwrap_or("");
    assert!(error.contains("stopped by a signal"), "{error:?}");
    let t = &report["totals"];
    let read = t["packets_read"].as_u64().unwrap();
    let decoded = t["packets_decoded"].as_u64().unwrap();
    let skipped = t["packets_skipped"].as_u64().unwrap();
    let by_reason: u64 = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["packets"].as_u64().unwrap())
        .sum();
    assert!(read > 0 && read <= sent, "{read} read of {sent} sent");
    assert_eq!(read, decoded + skipped);
    assert_eq!(skipped, by_reason);
    assert_eq!(report["inputs"][0]["packets"], read);
    // Every flow was flushed into the report: each SYN is its own flow.
    let in_services: u64 = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["packets"].as_u64().unwrap())
        .sum();
    assert_eq!(
        in_services, decoded,
        "every decoded packet is in a reported flow"
    );
    assert_eq!(t["flows"].as_u64().unwrap(), decoded);
}

#[test]
fn sigint_while_reading_a_pipe_flushes_a_complete_report() {
    stopped_by("INT", "2");
}

#[test]
fn sigterm_while_reading_a_pipe_flushes_a_complete_report() {
    stopped_by("TERM", "1");
}

#[test]
fn flows_to_stdout_piped_into_head_exits_quietly() {
    let captures: Vec<String> = shared_captures()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let err_file = dir.path().join("stderr");
    // As a shell runs it; the script's exit code is appletap's, not head's.
    let script = r#"bin=$1; err=$2; shift 2
"$bin" read --flows - "$@" 2>"$err" | head -1
exit "${PIPESTATUS[0]}""#;
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg("bash")
        .arg(env!("CARGO_BIN_EXE_appletap"))
        .arg(&err_file)
        .args(&captures)
        .output()
        .expect("bash runs");
    let stderr = std::fs::read_to_string(&err_file).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let first = String::from_utf8(out.stdout).unwrap();
    assert_eq!(first.lines().count(), 1);
    let _: Value = serde_json::from_str(first.trim()).expect("the first flow record");
    for bad in ["panicked", "Broken pipe", "broken pipe", "appletap:"] {
        assert!(!stderr.contains(bad), "stderr has {bad:?}:\n{stderr}");
    }
    assert!(
        stderr.contains("totals:"),
        "the report still goes to stderr"
    );

    // The records would have filled the pipe (64 KiB) several times over.
    let out = Command::new(env!("CARGO_BIN_EXE_appletap"))
        .args(["read", "--flows", "-"])
        .args(&captures)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.stdout.len() > 4 * 65_536,
        "{} bytes of records",
        out.stdout.len()
    );
}
