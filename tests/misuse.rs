//! The binary misused the way people misuse it: an output path that names an input or a
//! capture, flag values at and past their bounds, endless or huge files where a small one
//! belongs, hostile DNS TTLs, and `audit` without (or with both) sources. Each must end in a
//! clear message and exit code, never a panic, a hang or a destroyed file.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample/iphone.pcap")
}

/// A pcapng capture from the shared folder.
fn shared_pcapng() -> PathBuf {
    shared_pcaps().join("zeek__pcapng-multi-interface.pcapng")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Copies `from` into `dir` as `name` and returns its path and bytes.
fn copy_in(dir: &Path, name: &str, from: &Path) -> (PathBuf, Vec<u8>) {
    let p = dir.join(name);
    std::fs::copy(from, &p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    (p, bytes)
}

/// Exit 2, nothing on standard output, a message naming `want`, no panic.
fn assert_usage_error(out: &Output, want: &[&str], what: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert!(out.stdout.is_empty(), "{what}: nothing is reported");
    assert!(!err.contains("panicked"), "{what}: {err}");
    for w in want {
        assert!(err.contains(w), "{what}: message lacks {w:?}: {err}");
    }
}

// --- 1. An output over an input ---------------------------------------------------------

#[test]
fn flows_naming_a_capture_meant_as_input_is_refused_and_the_capture_kept() {
    // `read --flows a.pcap b.pcapng`: the user meant to read two captures.
    let dir = tempfile::tempdir().unwrap();
    let (a, a_bytes) = copy_in(dir.path(), "a.pcap", &sample());
    let (b, _) = copy_in(dir.path(), "b.pcapng", &shared_pcapng());
    for cmd in ["read", "audit"] {
        let out = appletap(&[cmd, "--flows", s(&a), s(&b)]);
        assert_usage_error(
            &out,
            &[
                "a.pcap",
                "existing pcap capture",
                "--overwrite",
                "without --flows",
            ],
            cmd,
        );
        assert_eq!(
            std::fs::read(&a).unwrap(),
            a_bytes,
            "{cmd}: a.pcap untouched"
        );
    }
    // A pcapng capture too.
    let (c, c_bytes) = copy_in(dir.path(), "c.pcapng", &shared_pcapng());
    let out = appletap(&["read", "--flows", s(&c), s(&a)]);
    assert_usage_error(&out, &["c.pcapng", "existing pcapng capture"], "pcapng");
    assert_eq!(std::fs::read(&c).unwrap(), c_bytes);
}

#[test]
fn flows_naming_an_input_is_refused_even_with_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let (x, x_bytes) = copy_in(dir.path(), "x.pcap", &sample());
    let dotted = dir.path().join(".").join("x.pcap");
    let hard = dir.path().join("hard-link.pcap");
    std::fs::hard_link(&x, &hard).unwrap();
    let soft = dir.path().join("soft-link.pcap");
    std::os::unix::fs::symlink(&x, &soft).unwrap();
    for (cmd, output, input) in [
        ("read", &x, &x),
        ("read", &dotted, &x),
        ("read", &x, &dotted),
        ("read", &hard, &x),
        ("read", &soft, &x),
        ("audit", &x, &x),
        ("audit", &hard, &x),
    ] {
        let what = format!("{cmd} --flows {} {}", output.display(), input.display());
        let out = appletap(&[cmd, "--overwrite", "--flows", s(output), s(input)]);
        assert_usage_error(
            &out,
            &["also an input", "name a new file for --flows"],
            &what,
        );
        assert_eq!(
            std::fs::read(&x).unwrap(),
            x_bytes,
            "{what}: input untouched"
        );
    }
    // The input as standard input: `read - --flows x.pcap < x.pcap`.
    let out = Command::new(env!("CARGO_BIN_EXE_appletap"))
        .args(["read", "--overwrite", "--flows", s(&x), "-"])
        .stdin(std::fs::File::open(&x).unwrap())
        .output()
        .unwrap();
    assert_usage_error(&out, &["also an input"], "standard input");
    assert_eq!(std::fs::read(&x).unwrap(), x_bytes);
}

#[test]
fn flows_naming_a_missing_input_does_not_create_it() {
    // `--flows x.pcap x.pcap` with no x.pcap: the output used to create the input empty,
    // which was then reported as an empty capture.
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.pcap");
    let out = appletap(&["read", "--flows", s(&x), s(&x)]);
    assert_usage_error(&out, &["also an input"], "missing input");
    assert!(!x.exists(), "nothing created");
}

#[test]
fn flows_naming_the_signature_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("signatures/apple.toml");
    let (sigs, sig_bytes) = copy_in(dir.path(), "sigs.toml", &shipped);
    let out = appletap(&[
        "read",
        "--signatures",
        s(&sigs),
        "--flows",
        s(&sigs),
        s(&sample()),
    ]);
    assert_usage_error(&out, &["sigs.toml", "also an input"], "signature file");
    assert_eq!(std::fs::read(&sigs).unwrap(), sig_bytes);
}

#[test]
fn live_flows_naming_a_capture_is_refused() {
    if std::env::var_os("APPLETAP_SKIP_LIVE").is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, a_bytes) = copy_in(dir.path(), "a.pcap", &sample());
    let out = appletap(&["live", "-i", "lo", "--duration", "1", "--flows", s(&a)]);
    assert_usage_error(&out, &["a.pcap", "--overwrite"], "live");
    assert_eq!(std::fs::read(&a).unwrap(), a_bytes);
}

#[test]
fn overwrite_replaces_a_capture_that_is_not_an_input_and_new_files_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _) = copy_in(dir.path(), "old.pcap", &sample());
    let jsonl = dir.path().join("flows.jsonl");
    std::fs::write(&jsonl, "stale\n").unwrap();
    for flows in [&old, &jsonl, &dir.path().join("new.jsonl")] {
        let overwrite = if flows == &old {
            "--overwrite"
        } else {
            "--no-progress"
        };
        let out = appletap(&["read", overwrite, "--flows", s(flows), s(&sample())]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            flows.display(),
            stderr(&out)
        );
        let text = std::fs::read_to_string(flows).unwrap();
        assert!(
            !text.is_empty() && text.lines().all(|l| l.starts_with('{')),
            "{}: flow records written",
            flows.display()
        );
    }
}

// --- 2. Flag values that panic -----------------------------------------------------------

#[test]
fn every_numeric_flag_out_of_range_exits_2_naming_the_range() {
    let sample = sample();
    let sample = s(&sample);
    let huge = ["9223372036854775807", "9223372036854775808"];
    // (command line before the flag, flag, range clap must name, values out of range)
    let cases: &[(&[&str], &str, &str, &[&str])] = &[
        (
            &["live", "-i", "lo"],
            "--interval",
            "1..=86400",
            &["0", "86401"],
        ),
        (&["live", "-i", "lo"], "--interval", "1..=86400", &huge),
        (
            &["live", "-i", "lo"],
            "--duration",
            "1..=315576000",
            &["0", "315576001"],
        ),
        (&["live", "-i", "lo"], "--duration", "1..=315576000", &huge),
        (
            &["audit", "-i", "lo"],
            "--duration",
            "1..=315576000",
            &["0", "315576001"],
        ),
        (&["audit", "-i", "lo"], "--duration", "1..=315576000", &huge),
        (
            &["live", "-i", "lo"],
            "--snaplen",
            "64..=262144",
            &["63", "262145", "-1"],
        ),
        (&["read", sample], "--threads", "1..=256", &["0", "257"]),
        (&["read", sample], "--threads", "1..=256", &huge),
        (&["live", "-i", "lo"], "--threads", "1..=256", &["0", "257"]),
        (
            &["read", sample],
            "--max-flows",
            "1..=100000000",
            &["0", "100000001"],
        ),
        (&["read", sample], "--max-flows", "1..=100000000", &huge),
        (&["audit", sample], "--max-flows", "1..=100000000", &["0"]),
    ];
    for (before, flag, range, values) in cases {
        for v in *values {
            let mut args = before.to_vec();
            let arg = format!("{flag}={v}");
            args.push(&arg);
            let out = appletap(&args);
            let err = stderr(&out);
            let what = args.join(" ");
            assert_eq!(out.status.code(), Some(2), "{what}: {err}");
            assert!(!err.contains("panicked"), "{what}: {err}");
            // Values past u64 are refused as numbers; the rest name the allowed range.
            if v.parse::<u64>().is_ok() {
                assert!(err.contains(range), "{what}: message lacks {range}: {err}");
            }
        }
    }
}

/// Runs `appletap args`, interrupts it after a second, and returns its output.
fn run_then_interrupt(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_appletap"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped on SIGINT"
    );
    out
}

#[test]
fn largest_interval_and_duration_run_without_overflow() {
    // 2^63 seconds added to the monotonic clock panicked at start; the largest accepted
    // values must run until interrupted. Needs a capture on `lo` (root).
    if std::env::var_os("APPLETAP_SKIP_LIVE").is_some() {
        return;
    }
    for args in [
        &[
            "live",
            "-i",
            "lo",
            "--interval",
            "86400",
            "--duration",
            "315576000",
        ][..],
        &["audit", "-i", "lo", "--duration", "315576000"][..],
    ] {
        let out = run_then_interrupt(args);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

// --- 3. Files read whole without bound ---------------------------------------------------

#[test]
fn endless_or_huge_signature_file_is_refused_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.toml");
    // A valid start, then comments past 16 MiB.
    let mut text = String::from("format = 1\n");
    let line = format!("# {}\n", "x".repeat(1021));
    while text.len() <= 16 << 20 {
        text.push_str(&line);
    }
    std::fs::write(&big, &text).unwrap();
    let sample = sample();
    for (args, file) in [
        (vec!["signatures", "--check", "/dev/zero"], "/dev/zero"),
        (
            vec!["read", "--signatures", "/dev/zero", s(&sample)],
            "/dev/zero",
        ),
        (vec!["signatures", "--check", s(&big)], "big.toml"),
    ] {
        let started = Instant::now();
        let out = appletap(&args);
        assert_usage_error(
            &out,
            &[file, "16 MiB limit for signature files"],
            &args.join(" "),
        );
        // Was: 14 GB read after 8 seconds and counting.
        assert!(started.elapsed() < Duration::from_secs(10), "{args:?}");
    }
}

#[test]
fn signature_file_that_is_a_capture_is_a_clear_error() {
    let out = appletap(&["signatures", "--check", s(&sample())]);
    assert_usage_error(
        &out,
        &["iphone.pcap", "not UTF-8 text"],
        "capture as signatures",
    );
}

// --- 4. DNS TTLs with the top bit set ----------------------------------------------------

/// A classic pcap (Ethernet) of `(seconds, frame)` records.
fn pcap(records: &[(u32, Vec<u8>)]) -> Vec<u8> {
    // Magic, version 2.4, zone, accuracy, snaplen, LINKTYPE_ETHERNET; little-endian.
    let mut out = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    out.extend_from_slice(&[2, 0, 4, 0]);
    for v in [0u32, 0, 65_535, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for (secs, frame) in records {
        let len = u32::try_from(frame.len()).unwrap();
        for v in [*secs, 0, len, len] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(frame);
    }
    out
}

/// An Ethernet/IPv4 frame carrying `l4` (protocol `proto`) from `src` to `dst`.
fn ipv4_frame(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    let total = u16::try_from(20 + l4.len()).unwrap();
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    let sum = !u16::try_from((sum & 0xffff) + (sum >> 16)).unwrap();
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(l4);
    f
}

/// The DNS answer `payload` from 192.0.2.53 to 10.0.0.2 at 1000 s, then a TCP handshake from
/// 10.0.0.2 to the answer's address 17.57.144.116:443 `gap` seconds later.
fn answer_then_connection(payload: &[u8], gap: u32) -> Vec<u8> {
    let (client, resolver, server) = ([10, 0, 0, 2], [192, 0, 2, 53], [17, 57, 144, 116]);
    let mut udp = Vec::new();
    udp.extend_from_slice(&53u16.to_be_bytes());
    udp.extend_from_slice(&53_000u16.to_be_bytes());
    udp.extend_from_slice(&u16::try_from(8 + payload.len()).unwrap().to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let tcp = |sport: u16, dport: u16, flags: u8| {
        let mut t = Vec::new();
        t.extend_from_slice(&sport.to_be_bytes());
        t.extend_from_slice(&dport.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        t
    };
    pcap(&[
        (1000, ipv4_frame(resolver, client, 17, &udp)),
        (
            1000 + gap,
            ipv4_frame(client, server, 6, &tcp(50_000, 443, 0x02)),
        ),
        (
            1000 + gap,
            ipv4_frame(server, client, 6, &tcp(443, 50_000, 0x12)),
        ),
    ])
}

/// The name the TCP flow's record carries after reading `capture`.
fn tcp_flow_name(capture: &[u8]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("dns.pcap");
    std::fs::write(&cap, capture).unwrap();
    let flows = dir.path().join("flows.jsonl");
    let out = appletap(&["read", "--threads", "1", "--flows", s(&flows), s(&cap)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&flows).unwrap();
    let tcp: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["proto"] == "tcp")
        .collect();
    assert_eq!(tcp.len(), 1, "{text}");
    tcp[0]["name"].clone()
}

#[test]
fn dns_ttl_with_the_top_bit_set_does_not_outlive_its_packet() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/packets");
    let real = std::fs::read(dir.join("dns_1_courier_push_apple.bin")).unwrap();
    let top = std::fs::read(dir.join("dns_1_courier_push_apple_ttl_top_bit.bin")).unwrap();
    let courier = Value::from("1-courier.push.apple.com");
    // Within the 10-second floor both answers name the connection (the test can see names).
    assert_eq!(tcp_flow_name(&answer_then_connection(&real, 5)), courier);
    assert_eq!(tcp_flow_name(&answer_then_connection(&top, 5)), courier);
    // A minute later the real answer (TTL 23 s) has expired; so must the one whose TTL has
    // the top bit set (RFC 2181 §8: 0), which used to bind the name for 68 years.
    assert_eq!(
        tcp_flow_name(&answer_then_connection(&real, 60)),
        Value::Null
    );
    assert_eq!(
        tcp_flow_name(&answer_then_connection(&top, 60)),
        Value::Null
    );
}

// --- 5. audit without (or with both) sources ---------------------------------------------

#[test]
fn audit_names_the_missing_or_the_extra_source() {
    let out = appletap(&["audit"]);
    assert_usage_error(&out, &["needs capture files", "-i IFACE"], "audit alone");
    assert!(!stderr(&out).contains("not both"), "{}", stderr(&out));
    let out = appletap(&["audit", "-i", "lo", s(&sample())]);
    assert_usage_error(&out, &["not both"], "audit with both");
}

#[test]
fn options_that_would_be_ignored_are_refused_naming_what_they_need() {
    // `--filter`/`--duration` only apply to `audit -i`, `--overwrite` only to `--flows`:
    // silently ignoring them would hide a mistake.
    let sample = sample();
    for (args, needs) in [
        (
            vec!["audit", "--filter", "port 53", s(&sample)],
            "--interface",
        ),
        (vec!["audit", "--duration", "5", s(&sample)], "--interface"),
        (vec!["read", "--overwrite", s(&sample)], "--flows"),
    ] {
        let out = appletap(&args);
        assert_usage_error(&out, &["required", needs], &args.join(" "));
    }
}
