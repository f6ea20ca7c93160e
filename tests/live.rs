//! Live capture for real: as root, a veth pair inside a fresh network namespace; real captures
//! are replayed into one end with tcpreplay while `appletap live` captures on the other; after
//! SIGINT its final report must match `appletap read` on the same capture. Traffic never
//! leaves the namespace.
//!
//! Least privilege: a copy of the binary given `cap_net_raw,cap_net_admin+eip` with setcap,
//! run as the unprivileged user `nobody`, captures the same; without the capabilities it is
//! refused with a message that names the missing capability and the setcap command.
//!
//! Needs root, iproute2, tcpreplay, setcap (libcap2-bin) and setpriv (util-linux) (installed
//! by `.ci/setup`; CI runs as root). Set APPLETAP_SKIP_LIVE=1 to skip it knowingly on a
//! machine where that is impossible.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::netns::skip_live;
use common::*;
use serde_json::Value;

struct Netns(String);

impl Netns {
    /// A namespace of its own for each test (`tag`): the tests of this file run at once.
    fn create(tag: &str) -> Self {
        let name = format!("atap{}{tag}", std::process::id());
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
        // Loopback too: the metrics tests scrape `live --listen 127.0.0.1:PORT` from inside.
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
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

/// The privileges `appletap live` runs with.
#[derive(Clone, Copy)]
enum As {
    /// Root, as started.
    Root,
    /// The user `nobody`, with no capabilities but what the binary's file gives.
    Nobody,
}

/// The command that starts `bin` in namespace `ns` as `who`.
fn in_netns(ns: &Netns, who: As, bin: &Path) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &ns.0]);
    if let As::Nobody = who {
        c.args([
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
        ]);
    }
    c.arg(bin);
    c
}

/// Replays `capture` into a veth while `appletap live` with `options` captures on its peer, in
/// a namespace tagged `tag`; its final report must equal `appletap read` of the capture, with
/// no drops.
fn live_matches_read(tag: &str, capture: &str, options: &[&str]) {
    let ns = Netns::create(tag);
    let bin = Path::new(env!("CARGO_BIN_EXE_appletap"));
    live_matches_read_as(&ns, As::Root, bin, capture, options);
}

fn live_matches_read_as(ns: &Netns, who: As, bin: &Path, capture: &str, options: &[&str]) {
    let path = shared_pcaps().join(capture);
    let read = appletap(&["read", "--format", "json", path.to_str().unwrap()]);
    let expected: Value = serde_json::from_slice(&read.stdout).unwrap();
    let want_packets = expected["totals"]["packets_read"].as_u64().unwrap();

    let mut child = in_netns(ns, who, bin)
        .args(["live", "-i", "vb"])
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
    if skip_live("live capture test") {
        return;
    }
    live_matches_read("", "ndpi__iphone.pcap", &["--threads", "1"]);
    live_matches_read("", "ndpi__anyconnect-vpn.pcap", &["--threads", "2"]);
    live_matches_read(
        "",
        "zeek__chromium-115.0.5790.110-google-de-fragmented.pcap",
        &["--threads", "2"],
    );
}

/// The same checks through AF_PACKET sockets, with one reader and with two sharing the flows
/// (the report must not depend on the number).
#[test]
fn af_packet_capture_of_replayed_traffic_matches_read() {
    if skip_live("live capture test") {
        return;
    }
    for readers in ["1", "2"] {
        let af = ["--capture", "af-packet", "--readers", readers];
        live_matches_read("a", "ndpi__iphone.pcap", &af);
        live_matches_read("a", "ndpi__anyconnect-vpn.pcap", &af);
        live_matches_read(
            "a",
            "zeek__chromium-115.0.5790.110-google-de-fragmented.pcap",
            &af,
        );
    }
}

/// Tunnelled traffic through two AF_PACKET readers: the kernel's fanout hash sees into GRE
/// (to the inner Ethernet frame of `gretap.pcap`, to the VXLAN packet second down in
/// `depth-4.pcap`, whose source port differs per packet) but not into UDP tunnels (GTP-U in
/// `ndpi__zoom.pcap`), so packets of one inner flow reach either reader: each goes on to the
/// reader its inner flow's key chooses, and the report is `read`'s.
#[test]
fn af_packet_readers_keep_tunnelled_flows_whole() {
    if skip_live("live capture test") {
        return;
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tunnels");
    let af = ["--capture", "af-packet", "--readers", "2"];
    for capture in [
        fixtures.join("gretap.pcap"),
        fixtures.join("depth-4.pcap"),
        shared_pcaps().join("ndpi__zoom.pcap"),
    ] {
        // An absolute path: `shared_pcaps().join` keeps it as it is.
        live_matches_read("t", capture.to_str().unwrap(), &af);
    }
}

/// Whether the file system holding `dir` is mounted nosuid (file capabilities then count for
/// nothing).
fn nosuid(dir: &Path) -> bool {
    let out = Command::new("findmnt")
        .args(["-n", "-o", "OPTIONS", "-T"])
        .arg(dir)
        .output()
        .expect("findmnt runs");
    String::from_utf8_lossy(&out.stdout)
        .split(',')
        .any(|o| o.trim() == "nosuid")
}

#[test]
fn live_capture_runs_without_root_with_capabilities() {
    if skip_live("least-privilege test") {
        return;
    }
    // A copy of the binary that `nobody` may run, on a file system that honours file
    // capabilities.
    let dir = tempfile::Builder::new()
        .prefix("appletap-caps")
        .tempdir()
        .unwrap();
    assert!(
        !nosuid(dir.path()),
        "{} is on a nosuid mount, where file capabilities do not apply: set TMPDIR to another",
        dir.path().display()
    );
    let bin = dir.path().join("appletap");
    std::fs::copy(env!("CARGO_BIN_EXE_appletap"), &bin).unwrap();
    sh(&[
        "chmod",
        "755",
        dir.path().to_str().unwrap(),
        bin.to_str().unwrap(),
    ]);
    let ns = Netns::create("c");

    // Without capabilities: refused, saying which one is missing and how to grant it.
    let out = in_netns(&ns, As::Nobody, &bin)
        .args(["live", "-i", "vb", "--duration", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let setcap = format!("setcap cap_net_raw,cap_net_admin+eip {}", bin.display());
    assert!(
        stderr.contains("lacks the CAP_NET_RAW capability") && stderr.contains(&setcap),
        "the refusal names the capability and the command: {stderr}"
    );

    // With them as ambient capabilities (as systemd's AmbientCapabilities gives them), the
    // same binary captures.
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, "setpriv"])
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .args([
            "--inh-caps=+net_raw,+net_admin",
            "--ambient-caps=+net_raw,+net_admin",
        ])
        .arg(&bin)
        .args(["live", "-i", "vb", "--duration", "1", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stdout.starts_with(b"{"),
        "with ambient capabilities: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // With file capabilities, as nobody: the same report as `read`.
    sh(&[
        "setcap",
        "cap_net_raw,cap_net_admin+eip",
        bin.to_str().unwrap(),
    ]);
    live_matches_read_as(
        &ns,
        As::Nobody,
        &bin,
        "ndpi__iphone.pcap",
        &["--threads", "2"],
    );
}

/// The series of a Prometheus text exposition whose name starts with `prefix`: `name{labels}`
/// -> value.
fn series(text: &str, prefix: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `--listen` with AF_PACKET readers: the metrics merge every reader's settled counters, so a
/// scrape of /metrics (curl inside the namespace) ends up with the per-service counters that
/// `appletap read --metrics-file` gives for the same capture, with one reader and with two.
#[test]
fn af_packet_metrics_match_read() {
    if skip_live("live capture test") {
        return;
    }
    let path = shared_pcaps().join("ndpi__iphone.pcap");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("read.prom");
    let out = appletap(&[
        "read",
        "--format",
        "json",
        "--metrics-file",
        file.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let want = series(
        &std::fs::read_to_string(&file).unwrap(),
        "appletap_service_",
    );
    assert!(want.len() > 10, "the capture gives many series: {want:?}");
    for (readers, port) in [("1", "9481"), ("2", "9482")] {
        let ns = Netns::create(&format!("m{readers}"));
        sh(&["ip", "-n", &ns.0, "link", "set", "lo", "up"]);
        let addr = format!("127.0.0.1:{port}");
        let live = in_netns(&ns, As::Root, Path::new(env!("CARGO_BIN_EXE_appletap")))
            .args(["live", "-i", "vb", "--interval", "3600", "--format", "json"])
            .args(["--capture", "af-packet", "--readers", readers])
            .args(["--listen", &addr])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("appletap live starts");
        struct Kill(std::process::Child);
        impl Drop for Kill {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let mut live = Kill(live);
        let mut stderr = BufReader::new(live.0.stderr.take().unwrap());
        let mut said = String::new();
        stderr.read_line(&mut said).expect("a line on stderr");
        assert!(
            said.contains(&format!("metrics at http://{addr}/metrics")),
            "{said}"
        );
        let url = format!("http://{addr}/metrics");
        let scrape = || {
            Command::new("ip")
                .args(["netns", "exec", &ns.0, "curl", "-sSf", &url])
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout).into_owned()
                        + &String::from_utf8_lossy(&o.stderr)
                })
                .unwrap_or_default()
        };
        // Serving before any traffic, with nothing counted.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = scrape();
            if got.contains("appletap_packets_read_total") {
                break;
            }
            if Instant::now() >= deadline {
                let status = live.0.try_wait();
                let mut rest = String::new();
                if let Ok(Some(_)) = status {
                    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
                }
                panic!("/metrics never answered with counters: {got:?}; live: {status:?} {rest}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(
            series(&scrape(), "appletap_service_")
                .values()
                .all(|v| v == "0")
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
        // Live flows count once settled (5 s), then hold what read gives.
        let deadline = Instant::now() + Duration::from_secs(40);
        let got = loop {
            let got = series(&scrape(), "appletap_service_");
            if got == want || Instant::now() > deadline {
                break got;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        assert_eq!(
            got, want,
            "--readers {readers}: per-service metrics differ from read"
        );
    }
}

/// At SIGINT, what the kernel already delivered to the capture ring is read before the final
/// report: appletap is stopped (SIGSTOP) while the capture is replayed into the ring, then gets
/// SIGINT and SIGCONT together. It sees the signal after a few packets at most; its final
/// report must still hold every packet, and equal `appletap read`.
#[test]
fn packets_in_the_ring_at_sigint_are_counted() {
    if skip_live("live capture test") {
        return;
    }
    let path = shared_pcaps().join("ndpi__iphone.pcap");
    let read = appletap(&["read", "--format", "json", path.to_str().unwrap()]);
    let expected: Value = serde_json::from_slice(&read.stdout).unwrap();
    let options: [&[&str]; 2] = [
        &["--threads", "1"],
        &["--capture", "af-packet", "--readers", "2"],
    ];
    for (i, opts) in options.iter().enumerate() {
        let ns = Netns::create(&format!("d{i}"));
        let mut child = in_netns(&ns, As::Root, Path::new(env!("CARGO_BIN_EXE_appletap")))
            .args(["live", "-i", "vb", "--interval", "1", "--format", "json"])
            .args(*opts)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("appletap live starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // The first periodic report means the capture is open.
        let _ = lines.next().expect("a first report").unwrap();
        let pid = child.id().to_string();
        sh(&["kill", "-STOP", &pid]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &ns.0,
            "tcpreplay",
            "-q",
            "-i",
            "va",
            "--pps=5000",
            path.to_str().unwrap(),
        ]);
        sh(&["kill", "-INT", &pid]);
        sh(&["kill", "-CONT", &pid]);
        let last = lines.map_while(Result::ok).last().expect("a final report");
        let status = child.wait().unwrap();
        assert!(status.success(), "{opts:?}: exited with {status}");
        let got: Value = serde_json::from_str(&last).unwrap();
        assert_eq!(
            summary(&got),
            summary(&expected),
            "{opts:?}: the final report misses what the ring held at SIGINT"
        );
    }
}
