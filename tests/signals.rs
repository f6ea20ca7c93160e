//! Signals and pipes: SIGINT or SIGTERM while `appletap read -` is reading a long capture from
//! a pipe stops the reading and still flushes a complete, consistent report (exit code 1, an
//! error saying a signal stopped it); so does a signal while appletap waits for input that does
//! not come (a FIFO without a writer, an idle pipe, a writer gone quiet), well under a second
//! after it; a second signal ends a run whose flush is stuck; a reader that goes away
//! (`| head -1`) ends the program quietly, `live` too, with or without traffic; a closed
//! standard error panics nothing.

mod common;

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// How soon after a signal appletap must have exited when it was waiting for input.
const PROMPT: Duration = Duration::from_secs(1);

/// A classic pcap file header (Ethernet, microseconds).
fn pcap_header() -> Vec<u8> {
    let mut header = Vec::new();
    header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    header.extend_from_slice(&2u16.to_le_bytes());
    header.extend_from_slice(&4u16.to_le_bytes());
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(&65_535u32.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    header
}

/// Appends record `i` of the scan: a TCP SYN opening a flow of its own, 1,000 per second of
/// packet time.
fn push_syn(buf: &mut Vec<u8>, i: u64) {
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
}

/// Bytes of one scan record (16-byte record header, 54-byte frame).
const SYN_RECORD_LEN: u64 = 70;

/// A pcap of `packets` scan records, then the first `partial` bytes of the next one.
fn scan(packets: u64, partial: usize) -> Vec<u8> {
    let mut buf = pcap_header();
    for i in 0..packets {
        push_syn(&mut buf, i);
    }
    let mut next = Vec::new();
    push_syn(&mut next, packets);
    buf.extend_from_slice(&next[..partial]);
    buf
}

/// Writes a classic pcap of TCP SYNs (a new flow each, 1,000 per second of packet time) until
/// the reader goes away; counts the packets written.
fn write_scan_until_closed(mut out: impl Write, written: &AtomicU64) {
    if out.write_all(&pcap_header()).is_err() {
        return;
    }
    let mut buf = Vec::with_capacity(1 << 16);
    for i in 0u64.. {
        push_syn(&mut buf, i);
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

/// Sends `signal` (`INT`, `TERM`) to `pid`.
fn kill(signal: &str, pid: u32) {
    let kill = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
}

/// Sends `signal` to a child that waits for input and waits for it to exit, which it must do
/// within [`PROMPT`].
fn signal_waiting(child: Child, signal: &str) -> (Option<i32>, Vec<u8>, String) {
    let pid = child.id();
    let start = Instant::now();
    kill(signal, pid);
    let outcome = wait_bounded(child, Duration::from_secs(30));
    let took = start.elapsed();
    assert!(
        took < PROMPT,
        "SIG{signal}: appletap took {took:?} to stop (at most {PROMPT:?})\n{}",
        outcome.2
    );
    outcome
}

/// Checks the report of a run a signal stopped after `packets` packets of one input.
fn check_stopped_report(code: Option<i32>, stdout: &[u8], stderr: &str, packets: u64) {
    assert_eq!(code, Some(1), "a stopped run exits with 1\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("stopped by a signal"), "{stderr}");
    let report: Value = serde_json::from_slice(stdout).expect("a complete JSON report");
    let input = &report["inputs"][0];
    let error = input["error"].as_str().unwrap_or("");
    assert!(
        error.contains(&format!("stopped by a signal after {packets} packets")),
        "{error:?}"
    );
    assert_eq!(input["packets"], packets, "{input}");
    let t = &report["totals"];
    assert_eq!(t["packets_read"], packets, "{t}");
    assert_eq!(t["packets_decoded"], packets, "{t}");
    assert_eq!(
        t["flows"], packets,
        "every flow is flushed into the report: {t}"
    );
}

fn appletap_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_appletap"));
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// A FIFO in a fresh directory (kept alive by the returned guard).
fn fifo() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capture.fifo");
    let made = Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(made.success());
    (dir, path)
}

/// Waits until appletap catches SIGINT and SIGTERM (its handler is installed: the signal
/// cannot kill it before it has a report to print), then gives it time to block where the
/// test wants it (in open, in read).
fn let_it_block(pid: u32) {
    let status = format!("/proc/{pid}/status");
    let start = Instant::now();
    loop {
        let caught = std::fs::read_to_string(&status)
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("SigCgt:"))?;
                u64::from_str_radix(line["SigCgt:".len()..].trim(), 16).ok()
            })
            .unwrap_or(0);
        // Bit n-1 for signal n: SIGINT is 2, SIGTERM 15.
        if caught & (1 << 1) != 0 && caught & (1 << 14) != 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "appletap never installed its signal handler"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
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
    kill(signal, child.id());
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

#[test]
fn sigint_while_a_fifo_has_no_writer_ends_at_once_with_the_report() {
    let (_dir, path) = fifo();
    let child = appletap_cmd()
        .args(["read", "--format", "json"])
        .arg(&path)
        .spawn()
        .unwrap();
    let_it_block(child.id()); // in open(): a FIFO opens once a writer does
    let (code, stdout, stderr) = signal_waiting(child, "INT");
    check_stopped_report(code, &stdout, &stderr, 0);
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
}

#[test]
fn sigterm_while_stdin_is_an_idle_pipe_ends_at_once_with_the_report() {
    // Nothing at all yet (`sleep 100 | appletap read -`).
    let mut child = appletap_cmd()
        .args(["read", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let_it_block(child.id());
    let (code, stdout, stderr) = signal_waiting(child, "TERM");
    drop(stdin);
    check_stopped_report(code, &stdout, &stderr, 0);

    // Some packets, then nothing more; the pipe stays open.
    let mut child = appletap_cmd()
        .args(["read", "--format", "json", "--threads", "2", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&scan(1000, 0)).unwrap();
    let_it_block(child.id());
    let (code, stdout, stderr) = signal_waiting(child, "TERM");
    drop(stdin);
    check_stopped_report(code, &stdout, &stderr, 1000);
}

#[test]
fn sigint_while_a_fifo_writer_is_quiet_mid_record_reports_what_was_read() {
    let (_dir, path) = fifo();
    let child = appletap_cmd()
        .args(["read", "--format", "json"])
        .arg(&path)
        .spawn()
        .unwrap();
    // Opening for writing waits for appletap to open the FIFO for reading.
    let mut writer = OpenOptions::new().write(true).open(&path).unwrap();
    writer.write_all(&scan(300, 30)).unwrap();
    let_it_block(child.id());
    let (code, stdout, stderr) = signal_waiting(child, "INT");
    drop(writer);
    check_stopped_report(code, &stdout, &stderr, 300);
}

#[test]
fn fifo_closed_mid_record_reports_what_was_read_and_where_it_broke() {
    let (_dir, path) = fifo();
    let child = appletap_cmd()
        .args(["read", "--format", "json"])
        .arg(&path)
        .spawn()
        .unwrap();
    let mut writer = OpenOptions::new().write(true).open(&path).unwrap();
    writer.write_all(&scan(300, 30)).unwrap();
    let_it_block(child.id());
    drop(writer);
    let (code, stdout, stderr) = wait_bounded(child, Duration::from_secs(30));
    assert_eq!(code, Some(1), "{stderr}");
    let report: Value = serde_json::from_slice(&stdout).expect("a complete JSON report");
    assert_eq!(report["totals"]["packets_read"], 300);
    assert_eq!(report["totals"]["flows"], 300);
    let offset = 24 + 300 * SYN_RECORD_LEN;
    let want = format!(
        "{}: truncated at record 301 (byte offset {offset})",
        path.display()
    );
    assert!(stderr.contains(&want), "want {want:?} in:\n{stderr}");
    let error = report["inputs"][0]["error"].as_str().unwrap();
    assert!(error.starts_with(&want), "{error}");
}

#[test]
fn a_second_signal_ends_a_run_whose_flush_is_stuck_on_a_stalled_output() {
    // Flow records to a pipe nobody reads: once it is full the writer waits, the workers
    // wait for it, and the first signal's flush can never finish.
    let mut child = appletap_cmd()
        .args(["read", "--flows", "-", "--threads", "2", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let written = Arc::clone(&written);
        std::thread::spawn(move || write_scan_until_closed(stdin, &written))
    };
    // Stalled: nothing more is taken from the input.
    let mut last = u64::MAX;
    let start = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = written.load(Ordering::SeqCst);
        if now == last && now > 0 {
            break;
        }
        last = now;
        assert!(start.elapsed() < Duration::from_secs(60), "never stalled");
    }
    kill("INT", child.id());
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the flush was expected to be stuck behind the stalled output"
    );
    let start = Instant::now();
    kill("INT", child.id());
    let mut err = child.stderr.take().unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("a second signal did not end the run");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = start.elapsed();
    assert!(took < PROMPT, "the second signal took {took:?}");
    let mut stderr = String::new();
    err.read_to_string(&mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("a second signal"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    drop(child.stdout.take());
    writer.join().unwrap();
}

#[test]
fn a_closed_stderr_panics_nothing() {
    let capture = shared_pcaps().join("ndpi__iphone.pcap");
    // The report goes to standard error with `--flows -`; an error message goes there too.
    for args in [
        vec!["read", "--flows", "-", capture.to_str().unwrap()],
        vec!["read", "/nonexistent/appletap.pcap"],
    ] {
        let mut child = appletap_cmd().args(&args).spawn().unwrap();
        drop(child.stderr.take());
        let mut stdout = Vec::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_end(&mut stdout)
            .unwrap();
        let status = child.wait().unwrap();
        let want = if args.len() == 4 { 0 } else { 1 };
        assert_eq!(status.code(), Some(want), "{args:?}");
    }
}

/// A fresh network namespace with its loopback up: live tests capture there, away from the
/// machine's own traffic.
struct Netns(String);

impl Netns {
    fn create(tag: &str) -> Self {
        let name = format!("atsig{tag}{}", std::process::id());
        let ns = Self(name.clone());
        run(&["ip", "netns", "add", &name]);
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        ns
    }

    /// `args`, run inside the namespace.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.0]).args(args);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether the live tests can run here (root); says why not when they cannot.
fn can_capture() -> bool {
    if std::env::var_os("APPLETAP_SKIP_LIVE").is_some() {
        eprintln!("APPLETAP_SKIP_LIVE is set: live test skipped");
        return false;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    assert!(
        root,
        "live tests need root (network namespaces, raw sockets); CI runs as root. \
         Set APPLETAP_SKIP_LIVE=1 to skip them knowingly."
    );
    true
}

/// Runs `script` (bash; `$bin` is appletap) in `ns`; returns appletap's exit code and how
/// long the script took, which must be under `bound`.
fn live_pipeline(ns: &Netns, script: &str, bound: Duration) -> (Option<i32>, Duration, String) {
    let dir = tempfile::tempdir().unwrap();
    let err_file = dir.path().join("stderr");
    let script = format!("bin=$1; err=$2\n{script}\nexit \"${{PIPESTATUS[0]}}\"");
    let start = Instant::now();
    let mut child = ns
        .command(&["bash", "-c", &script, "bash"])
        .arg(env!("CARGO_BIN_EXE_appletap"))
        .arg(&err_file)
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > bound {
            // The script's own process group: appletap and head, nothing else.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            panic!("`{script}` did not end within {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&err_file).unwrap_or_default();
    (status.code(), start.elapsed(), stderr)
}

#[test]
fn live_piped_into_head_ends_once_head_exits() {
    if !can_capture() {
        return;
    }
    let ns = Netns::create("h");
    // The report: head exits after its first line, no traffic at all.
    let (code, took, stderr) = live_pipeline(
        &ns,
        r#""$bin" live -i lo --interval 1 2>"$err" | head -1"#,
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("appletap:"),
        "{stderr}"
    );

    // Flow records: a reader that is gone before anything is written, no traffic at all.
    let (code, took, stderr) = live_pipeline(
        &ns,
        r#""$bin" live -i lo --flows - 2>"$err" | true"#,
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("appletap:"),
        "{stderr}"
    );

    // Flow records: head exits after the first (each UDP datagram to a closed port is a flow;
    // with one flow held at a time, each evicts the one before).
    let (code, took, stderr) = live_pipeline(
        &ns,
        r#"(sleep 1; for p in $(seq 40000 40030); do echo x >/dev/udp/127.0.0.1/$p; done) &
"$bin" live -i lo --flows - --max-flows 1 2>"$err" | head -1"#,
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("appletap:"),
        "{stderr}"
    );
}

#[test]
fn sigterm_during_audit_of_an_interface_prints_the_audit_at_once() {
    if !can_capture() {
        return;
    }
    let ns = Netns::create("a");
    let child = ns
        .command(&[env!("CARGO_BIN_EXE_appletap"), "audit", "-i", "lo"])
        .args(["--duration", "600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let_it_block(child.id()); // the capture is open
    let (code, stdout, stderr) = signal_waiting(child, "TERM");
    assert_eq!(code, Some(0), "{stderr}");
    let stdout = String::from_utf8(stdout).unwrap();
    assert!(stdout.starts_with("input: live:lo"), "{stdout}");
    assert!(stdout.contains("HEALTH OF APPLE SERVICES"), "{stdout}");
}
