//! SIGHUP on `appletap live`, both capture back-ends: traffic replayed with tcpreplay into a
//! veth pair in a namespace of the test's own; the `--flows` and `--events` files are moved away
//! (as logrotate does) and SIGHUP sent, first with a broken signature file (named with what to
//! fix; the run goes on with the old set), then with a good one (logged with its counts). The
//! files are made again, the counters keep counting across the reloads (a second replay adds
//! up), and the old and new flow files together hold one whole record per flow the final report
//! counts.
//!
//! Needs root (network namespaces); set APPLETAP_SKIP_LIVE=1 to skip it knowingly.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::netns::{Netns, Running, run_ok, skip_live};
use common::*;
use serde_json::Value;

/// Waits for a line of `rx` containing `what`, for at most 20 s.
fn wait_line(rx: &mpsc::Receiver<String>, what: &str, seen: &mut Vec<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(l.clone());
            if l.contains(what) {
                return l;
            }
        }
    }
    panic!("no line with {what:?} on stderr: {seen:#?}");
}

/// Waits for a report of `rx` with `packets` packets read, for at most 30 s.
fn wait_packets(rx: &mpsc::Receiver<Value>, packets: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Ok(v) = rx.recv_timeout(Duration::from_secs(2)) {
            if v["totals"]["packets_read"].as_u64() == Some(packets) {
                return v;
            }
            last = v;
        }
    }
    panic!("no report with {packets} packets: last {last}");
}

fn wait_file(p: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !p.exists() {
        assert!(Instant::now() < deadline, "{} not made again", p.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn json_lines(p: &Path) -> usize {
    let text = std::fs::read_to_string(p).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "{}", p.display());
    for l in text.lines() {
        serde_json::from_str::<Value>(l)
            .unwrap_or_else(|e| panic!("{}: a split record? {e}: {l}", p.display()));
    }
    text.lines().count()
}

fn sighup_reloads_and_reopens(tag: &str, options: &[&str]) {
    let capture = shared_pcaps().join("ndpi__iphone.pcap");
    let dir = tempfile::tempdir().unwrap();
    let sigs = dir.path().join("sigs.toml");
    let builtin = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("signatures/apple.toml"),
    )
    .unwrap();
    std::fs::write(&sigs, &builtin).unwrap();
    let read = appletap(&["read", "--format", "json", capture.to_str().unwrap()]);
    let expected: Value = serde_json::from_slice(&read.stdout).unwrap();
    let want = expected["totals"]["packets_read"].as_u64().unwrap();
    let services = appletap::signature::SignatureSet::builtin()
        .unwrap()
        .services
        .len();

    let ns = Netns::create(&format!("atsvc-{tag}{}", std::process::id()));
    let (flows, events) = (dir.path().join("flows.jsonl"), dir.path().join("ev.jsonl"));
    let mut child = ns
        .exec(env!("CARGO_BIN_EXE_appletap"))
        .args(["live", "-i", "vb", "--interval", "1", "--format", "json"])
        .arg("--flows")
        .arg(&flows)
        .arg("--events")
        .arg(&events)
        .arg("--signatures")
        .arg(&sigs)
        .args(options)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("appletap live starts");
    let (out_tx, reports) = mpsc::channel::<Value>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = out_tx.send(v);
            }
        }
    });
    let (err_tx, said) = mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = err_tx.send(line);
        }
    });
    let pid = child.id().to_string();
    let child = Running(child);
    reports
        .recv_timeout(Duration::from_secs(20))
        .expect("a first report within 20 s");
    let replay = || {
        run_ok(
            ns.exec("tcpreplay")
                .args(["-q", "-i", "va", "--pps=2000"])
                .arg(&capture),
        )
    };
    replay();
    wait_packets(&reports, want);

    // logrotate: move the files away, then SIGHUP; here with a broken signature file.
    let (old_flows, old_events) = (dir.path().join("flows.1"), dir.path().join("ev.1"));
    std::fs::rename(&flows, &old_flows).unwrap();
    std::fs::rename(&events, &old_events).unwrap();
    std::fs::write(&sigs, "[[service]]\nid = 5\n").unwrap();
    run_ok(Command::new("kill").args(["-HUP", &pid]));
    let mut seen = Vec::new();
    let refused = wait_line(&said, "signatures NOT reloaded", &mut seen);
    assert!(refused.contains(sigs.to_str().unwrap()), "{refused}");
    wait_file(&flows);
    wait_file(&events);

    // A good file with one service more.
    let extra = "[[service]]\nid = \"extra\"\napple = true\nname = \"Extra\"\nsources = [\"A5\"]\n\n[[service]]";
    std::fs::write(&sigs, builtin.replacen("[[service]]", extra, 1)).unwrap();
    run_ok(Command::new("kill").args(["-HUP", &pid]));
    let loaded = wait_line(&said, "signatures reloaded from", &mut seen);
    assert!(
        loaded.contains(&format!("{}: {} services", sigs.display(), services + 1)),
        "{loaded}"
    );

    // The counters go on from where they were.
    replay();
    wait_packets(&reports, 2 * want);
    run_ok(Command::new("kill").args(["-TERM", &pid]));
    let mut last = None;
    while let Ok(v) = reports.recv_timeout(Duration::from_secs(20)) {
        last = Some(v);
    }
    let mut child = child;
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status}: {seen:#?}");
    let last = last.expect("a final report");
    assert_eq!(last["totals"]["packets_read"], 2 * want, "{last}");
    assert_eq!(last["drops"]["kernel"], 0, "{}", last["drops"]);
    let records = json_lines(&old_flows) + json_lines(&flows);
    assert_eq!(
        records as u64,
        last["totals"]["flows"].as_u64().unwrap(),
        "one record per flow, in one of the two files"
    );
    json_lines(&old_events);
    json_lines(&events);
}

#[test]
fn sighup_reloads_signatures_and_reopens_files_libpcap() {
    if skip_live("SIGHUP test") {
        return;
    }
    sighup_reloads_and_reopens("p", &["--threads", "2"]);
}

#[test]
fn sighup_reloads_signatures_and_reopens_files_af_packet() {
    if skip_live("SIGHUP test") {
        return;
    }
    sighup_reloads_and_reopens("a", &["--capture", "af-packet", "--readers", "2"]);
}

/// The shipped logrotate config, run by logrotate itself against a live appletap (its paths
/// moved to a temporary directory and `systemctl kill` replaced by `kill`, there being no
/// systemd here): the flow records written before are in the rotated file, the new file is made
/// again, and the two hold one whole record per flow of the final report.
#[test]
fn logrotate_config_rotates_a_live_appletap() {
    if skip_live("logrotate test") {
        return;
    }
    let capture = shared_pcaps().join("ndpi__iphone.pcap");
    let dir = tempfile::tempdir().unwrap();
    let (flows, events) = (
        dir.path().join("flows.jsonl"),
        dir.path().join("events.jsonl"),
    );
    let ns = Netns::create(&format!("atsvc-lr{}", std::process::id()));
    // A small flow cap: flows are evicted, and so written, while the capture runs.
    let mut child = ns
        .exec(env!("CARGO_BIN_EXE_appletap"))
        .args(["live", "-i", "vb", "--interval", "1", "--format", "json"])
        .args(["--max-flows", "4"])
        .arg("--flows")
        .arg(&flows)
        .arg("--events")
        .arg(&events)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("appletap live starts");
    let (out_tx, reports) = mpsc::channel::<Value>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = out_tx.send(v);
            }
        }
    });
    let pid = child.id().to_string();
    let mut child = Running(child);
    reports
        .recv_timeout(Duration::from_secs(20))
        .expect("a first report within 20 s");
    let replay = || {
        run_ok(
            ns.exec("tcpreplay")
                .args(["-q", "-i", "va", "--pps=2000"])
                .arg(&capture),
        )
    };
    replay();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&flows).map_or(0, |m| m.len()) == 0 {
        assert!(
            Instant::now() < deadline,
            "no record reached {}",
            flows.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/logrotate/appletap"),
    )
    .unwrap();
    let hup = "systemctl kill -s HUP --kill-whom=main appletap.service";
    assert!(shipped.contains(hup), "{shipped}");
    let config = shipped
        .replace("/var/lib/appletap/", &format!("{}/", dir.path().display()))
        .replace(hup, &format!("kill -HUP {pid}"));
    let conf = dir.path().join("logrotate.conf");
    std::fs::write(&conf, config).unwrap();
    run_ok(
        Command::new("logrotate")
            .args(["-f", "-s"])
            .arg(dir.path().join("state"))
            .arg(&conf),
    );
    let rotated = dir.path().join("flows.jsonl.1");
    assert!(rotated.exists(), "logrotate moved {}", flows.display());
    wait_file(&flows);
    replay();
    run_ok(Command::new("kill").args(["-TERM", &pid]));
    let mut last = None;
    while let Ok(v) = reports.recv_timeout(Duration::from_secs(20)) {
        last = Some(v);
    }
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status}");
    let last = last.expect("a final report");
    let before = json_lines(&rotated);
    let after = json_lines(&flows);
    assert!(before > 0 && after > 0, "{before} then {after}");
    assert_eq!(
        (before + after) as u64,
        last["totals"]["flows"].as_u64().unwrap(),
        "one record per flow, in one of the two files"
    );
}

/// Through the library, inline and with worker threads: a set reloaded half-way through a
/// capture labels the flows that end after it (here `*.ls.apple.com` moved from `maps` to a new
/// service), and every count goes on: packets, flows, and the services the two sets share.
#[test]
fn a_reload_midway_relabels_later_flows_and_keeps_every_count() {
    use appletap::capture::file::CaptureFile;
    use appletap::pipeline::{Classifier, ClassifierConfig, EngineConfig};
    use appletap::report::{Drops, Report};
    use appletap::signature::{BUILTIN_TEXT, SharedSignatures, SignatureSet};
    use std::sync::Arc;

    let capture = shared_pcaps().join("ndpi__iphone.pcap");
    let moved = BUILTIN_TEXT
        .replacen(
            "[[service]]",
            "[[service]]\nid = \"extra\"\napple = true\nname = \"Extra\"\nsources = [\"A5\"]\n\n[[service]]",
            1,
        )
        .replace(
            "pattern = \"*.ls.apple.com\"\nservice = \"maps\"",
            "pattern = \"*.ls.apple.com\"\nservice = \"extra\"",
        );
    assert_ne!(moved, BUILTIN_TEXT);
    let run = |threads: usize, reload: bool| -> Value {
        let builtin = Arc::new(SignatureSet::builtin().unwrap());
        let shared = Arc::new(SharedSignatures::new(Arc::clone(&builtin)));
        let config = ClassifierConfig {
            engine: EngineConfig::default(),
            threads,
            drop_when_full: false,
        };
        let mut c = Classifier::new(builtin, config, None);
        c.follow_reloads(&shared);
        let mut cap = CaptureFile::open(&capture).unwrap();
        let mut n = 0;
        while let Some(p) = cap.next_packet() {
            c.push(&p.unwrap());
            n += 1;
            if n == 250 && reload {
                shared.replace(SignatureSet::parse("moved", &moved).unwrap());
                // Inline, a worker takes the new set when the input pauses.
                c.idle();
            }
        }
        let t = c.finish();
        let r = Report::build(
            &shared.load(),
            vec![],
            &t.counters,
            &t.names,
            0,
            Drops::default(),
        );
        serde_json::to_value(&r).unwrap()
    };
    let flows = |r: &Value, service: &str| -> u64 {
        r["services"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["service"] == service)
            .map(|l| l["flows"].as_u64().unwrap())
            .sum()
    };
    for threads in [1, 3] {
        let (plain, reloaded) = (run(threads, false), run(threads, true));
        assert_eq!(plain["totals"], reloaded["totals"], "{threads} threads");
        let (maps, extra) = (flows(&plain, "maps"), flows(&reloaded, "extra"));
        assert!(maps > 0 && extra > 0, "{threads} threads: {maps} {extra}");
        assert_eq!(maps, flows(&reloaded, "maps") + extra, "{threads} threads");
        for shared in ["icloud", "app-store", "bonjour", "unknown"] {
            assert_eq!(
                flows(&plain, shared),
                flows(&reloaded, shared),
                "{threads} threads: {shared}"
            );
        }
    }
}
