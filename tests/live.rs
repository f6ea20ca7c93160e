//! Live capture for real: as root, a veth pair inside a fresh network namespace; real captures
//! are replayed into one end with tcpreplay while `appletap live` captures on the other; after
//! SIGINT its final report must match `appletap read` on the same capture. Traffic never
//! leaves the namespace.
//!
//! Needs root, iproute2 and tcpreplay (installed by `.ci/setup`; CI runs as root). Set
//! APPLETAP_SKIP_LIVE=1 to skip it knowingly on a machine where that is impossible.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

struct Netns(String);

impl Netns {
    fn create() -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("atap{}-{n}", std::process::id());
        let ns = Self(name.clone());
        sh(&["ip", "netns", "add", &name]);
        for key in ["all", "default"] {
            // No IPv6 on the test links: the kernel would add its own neighbour and router
            // solicitations to what is captured.
            sh(&[
                "ip",
                "netns",
                "exec",
                &name,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{key}.disable_ipv6=1"),
            ]);
        }
        sh(&[
            "ip", "-n", &name, "link", "add", "va", "type", "veth", "peer", "name", "vb",
        ]);
        for dev in ["va", "vb"] {
            sh(&["ip", "-n", &name, "link", "set", dev, "mtu", "9000"]);
            sh(&["ip", "-n", &name, "link", "set", dev, "up"]);
        }
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("command runs");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn summary(report: &Value) -> Value {
    serde_json::json!({
        "totals": {
            "packets_read": report["totals"]["packets_read"],
            "bytes_read": report["totals"]["bytes_read"],
            "packets_decoded": report["totals"]["packets_decoded"],
            "flows": report["totals"]["flows"],
        },
        "services": report["services"],
        "bonjour": report["bonjour"],
        "devices": report["devices"],
    })
}

/// Replays `capture` into a veth while `appletap live` with `options` captures on its peer; its
/// final report must equal `appletap read` of the capture, with no drops.
fn live_matches_read(capture: &str, options: &[&str]) {
    let path = shared_pcaps().join(capture);
    let read = appletap(&["read", "--format", "json", path.to_str().unwrap()]);
    let expected: Value = serde_json::from_slice(&read.stdout).unwrap();
    let want_packets = expected["totals"]["packets_read"].as_u64().unwrap();

    let ns = Netns::create();
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            env!("CARGO_BIN_EXE_appletap"),
            "live",
            "-i",
            "vb",
        ])
        .args(["--interval", "1", "--format", "json"])
        .args(options)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("appletap live starts");
    let (tx, rx) = mpsc::channel::<Value>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    // The first periodic report means the capture is open.
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a first report within 20 s");
    assert!(
        first["drops"]["kernel"].is_u64(),
        "every report shows drop counters: {first}"
    );

    sh(&[
        "ip",
        "netns",
        "exec",
        &ns.0,
        "tcpreplay",
        "-q",
        "-i",
        "va",
        "--pps=2000",
        path.to_str().unwrap(),
    ]);

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = first;
    while last["totals"]["packets_read"].as_u64() != Some(want_packets) && Instant::now() < deadline
    {
        if let Ok(v) = rx.recv_timeout(Duration::from_secs(2)) {
            last = v;
        }
    }
    sh(&["kill", "-INT", &child.id().to_string()]);
    let mut final_report = None;
    while let Ok(v) = rx.recv_timeout(Duration::from_secs(20)) {
        final_report = Some(v);
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr);
    assert!(
        status.success(),
        "appletap live exited with {status}: {stderr}"
    );
    let got = final_report.expect("a final report after SIGINT");
    assert_eq!(
        got["drops"]["kernel"], 0,
        "{capture}: kernel drops: {}",
        got["drops"]
    );
    assert_eq!(
        got["drops"]["pipeline"], 0,
        "{capture}: pipeline drops: {}",
        got["drops"]
    );
    assert_eq!(
        summary(&got),
        summary(&expected),
        "{capture}: live totals ({options:?}) differ from read"
    );
}

#[test]
fn live_capture_of_replayed_traffic_matches_read() {
    if std::env::var_os("APPLETAP_SKIP_LIVE").is_some() {
        eprintln!("APPLETAP_SKIP_LIVE is set: live capture test skipped");
        return;
    }
    assert!(
        is_root(),
        "the live capture test needs root (network namespaces, raw sockets); CI runs as root. \
         Set APPLETAP_SKIP_LIVE=1 to skip it knowingly."
    );
    live_matches_read("ndpi__iphone.pcap", &["--threads", "1"]);
    live_matches_read("ndpi__anyconnect-vpn.pcap", &["--threads", "2"]);
    live_matches_read(
        "zeek__chromium-115.0.5790.110-google-de-fragmented.pcap",
        &["--threads", "2"],
    );
}

/// The same checks through AF_PACKET sockets, with one reader and with two sharing the flows
/// (the report must not depend on the number).
#[test]
fn af_packet_capture_of_replayed_traffic_matches_read() {
    if std::env::var_os("APPLETAP_SKIP_LIVE").is_some() {
        eprintln!("APPLETAP_SKIP_LIVE is set: live capture test skipped");
        return;
    }
    assert!(
        is_root(),
        "the live capture test needs root (network namespaces, raw sockets); CI runs as root. \
         Set APPLETAP_SKIP_LIVE=1 to skip it knowingly."
    );
    for readers in ["1", "2"] {
        let af = ["--capture", "af-packet", "--readers", readers];
        live_matches_read("ndpi__iphone.pcap", &af);
        live_matches_read("ndpi__anyconnect-vpn.pcap", &af);
        live_matches_read(
            "zeek__chromium-115.0.5790.110-google-de-fragmented.pcap",
            &af,
        );
    }
}
