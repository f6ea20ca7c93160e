//! `--ipfix`: what real collectors make of the export. Debian's nfdump (`nfcapd` receives on
//! loopback, `nfdump -r` lists) shows every flow with the addresses, ports, packets and bytes
//! of both directions that `--flows` writes, and the application id of its service;
//! tshark's IPFIX dissector decodes every template and field of the messages, without
//! expert warnings, one data record per flow, and the options records name every service.
//! A collector that is down or cannot be resolved changes nothing but the export counters.
//! (nfdump and tshark are installed by .ci/setup.)

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use appletap::report::ipfix::app_selector;
use serde_json::Value;

/// Captures with TCP, UDP, IPv4 and IPv6 flows, enough of them to need several messages.
fn captures() -> Vec<PathBuf> {
    ["ndpi__iphone.pcap", "ndpi__safari.pcap", "ndpi__quic.pcap"]
        .iter()
        .map(|n| common::shared_pcaps().join(n))
        .collect()
}

/// A UDP port nothing listens on right now.
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `appletap read --format json --flows F --ipfix TARGET capture`: the report, the records
/// and standard error.
fn export(target: &str, capture: &Path) -> (String, Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let flows = dir.path().join("flows.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_appletap"))
        .args(["read", "--format", "json", "--flows"])
        .arg(&flows)
        .args(["--ipfix", target])
        .arg(capture)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let records = std::fs::read_to_string(&flows)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (String::from_utf8(out.stdout).unwrap(), records, stderr)
}

/// The export counters from standard error: sent, messages, dropped, send errors.
fn counters(stderr: &str) -> [u64; 4] {
    let line = stderr
        .lines()
        .find(|l| l.contains("IPFIX export to"))
        .unwrap_or_else(|| panic!("no export summary in {stderr}"));
    let nums: Vec<u64> = line
        .split(": ")
        .nth(2)
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    [nums[0], nums[1], nums[2], nums[3]]
}

fn port(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// A record as a collector sees it: addresses, ports, both directions' packets and bytes.
fn key(r: &Value) -> String {
    let icmp = r["proto"].as_str().unwrap().starts_with("icmp");
    let (sp, dp) = if icmp {
        (0, 0)
    } else {
        (port(&r["client_port"]), port(&r["server_port"]))
    };
    format!(
        "{} {} {sp} {dp} {} {} {} {}",
        r["client_ip"].as_str().unwrap(),
        r["server_ip"].as_str().unwrap(),
        r["packets_to_server"],
        r["bytes_to_server"],
        r["packets_to_client"],
        r["bytes_to_client"],
    )
}

struct Nfcapd(Child);

impl Drop for Nfcapd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts nfcapd on 127.0.0.1:`port` writing to `dir`, once it listens.
fn nfcapd(port: u16, dir: &Path) -> Nfcapd {
    let child = Command::new("nfcapd")
        .args(["-b", "127.0.0.1", "-p", &port.to_string(), "-w"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nfcapd (apt-get install nfdump; .ci/setup does)");
    let deadline = Instant::now() + Duration::from_secs(20);
    // Listening: our own bind of the port fails.
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "nfcapd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Nfcapd(child)
}

#[test]
fn nfdump_lists_every_flow_with_the_counters_appletap_reports() {
    for capture in captures() {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut collector = nfcapd(port, dir.path());
        let (_, records, stderr) = export(&format!("127.0.0.1:{port}"), &capture);
        let [sent, messages, dropped, errors] = counters(&stderr);
        assert_eq!(
            (sent, dropped, errors),
            (records.len() as u64, 0, 0),
            "{stderr}"
        );
        assert!(messages >= 2, "templates and data: {stderr}");
        // Let nfcapd take in the last datagrams, then SIGTERM: it writes its file and ends.
        std::thread::sleep(Duration::from_millis(500));
        let pid = collector.0.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        assert!(collector.0.wait().unwrap().success());
        let out = Command::new("nfdump")
            .args(["-6", "-N", "-q", "-R"])
            .arg(dir.path())
            .args([
                "-o",
                "fmt:%sa,%da,%sp,%dp,%pr,%ipkt,%ibyt,%opkt,%obyt,%nbid",
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let mut seen: Vec<String> = Vec::new();
        let mut apps = BTreeSet::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            assert_eq!(f.len(), 10, "{line}");
            // nfdump shows ICMP's type and code as the destination port, `0.0`.
            let (sp, dp) = if f[3].contains('.') {
                ("0", "0")
            } else {
                (f[2], f[3])
            };
            seen.push(format!(
                "{} {} {sp} {dp} {} {} {} {}",
                f[0], f[1], f[5], f[6], f[7], f[8]
            ));
            apps.insert(f[9].to_string());
        }
        let mut want: Vec<String> = records.iter().map(key).collect();
        let want_apps: BTreeSet<String> = records
            .iter()
            .map(|r| {
                let s = app_selector(r["service"].as_str().unwrap());
                format!("20..32473..{s}")
            })
            .collect();
        want.sort();
        seen.sort();
        assert_eq!(seen, want, "{}", capture.display());
        assert_eq!(apps, want_apps, "{}", capture.display());
    }
}

/// Writes UDP payloads to `path` as a pcap of raw IPv4 packets to port 4739.
fn write_pcap(path: &Path, payloads: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&101u32.to_le_bytes()); // LINKTYPE_RAW
    for p in payloads {
        let udp_len = 8 + p.len();
        let total = 20 + udp_len;
        for v in [0u32, 0, total as u32, total as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&[0x45, 0]);
        out.extend_from_slice(&(total as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        out.extend_from_slice(&40000u16.to_be_bytes());
        out.extend_from_slice(&4739u16.to_be_bytes());
        out.extend_from_slice(&(udp_len as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(p);
    }
    std::fs::write(path, out).unwrap();
}

/// The datagrams an export of `capture` sends, as received on loopback.
fn received(capture: &Path) -> (Vec<Vec<u8>>, Vec<Value>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let target = sock.local_addr().unwrap().to_string();
    let (_, records, stderr) = export(&target, capture);
    let [_, messages, dropped, _] = counters(&stderr);
    assert_eq!(dropped, 0, "{stderr}");
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(buf[..n].to_vec());
    }
    assert_eq!(got.len() as u64, messages);
    (got, records)
}

#[test]
fn tshark_decodes_every_field_one_data_record_per_flow() {
    for capture in captures() {
        let (messages, records) = received(&capture);
        assert!(messages.iter().all(|m| m.len() <= 1400));
        let dir = tempfile::tempdir().unwrap();
        let pcap = dir.path().join("ipfix.pcap");
        write_pcap(&pcap, &messages);
        let tshark = |extra: &[&str]| {
            let out = Command::new("tshark")
                .args(["-n", "-r"])
                .arg(&pcap)
                .args(["-d", "udp.port==4739,cflow"])
                .args(extra)
                .output()
                .unwrap();
            assert!(out.status.success());
            String::from_utf8(out.stdout).unwrap()
        };
        // No malformed packet, no expert note at warning or above (sequence numbers included).
        let bad = tshark(&["-Y", "_ws.malformed || _ws.expert.severity >= warning"]);
        assert_eq!(bad.trim(), "", "{}", capture.display());
        let text = tshark(&["-V"]);
        assert!(!text.contains("Unknown"), "an undecoded field");
        // Walk the data sets: flows (templates 256, 257) and application names (258).
        let mut flows: Vec<BTreeMap<String, Vec<String>>> = Vec::new();
        let mut names = BTreeSet::new();
        let mut set = 0;
        for line in text.lines().map(str::trim) {
            if line.starts_with("Set ") {
                set = if line.contains("[id=256]") || line.contains("[id=257]") {
                    1
                } else if line.contains("[id=258]") {
                    2
                } else {
                    0
                };
            } else if set == 1
                && line
                    .strip_prefix("Flow ")
                    .is_some_and(|n| n.parse::<u32>().is_ok())
            {
                flows.push(BTreeMap::new());
            } else if set == 1 && !flows.is_empty() {
                if let Some((k, v)) = line.split_once(": ") {
                    let k = if v.contains("(Reverse") {
                        format!("reverse {k}")
                    } else {
                        k.to_string()
                    };
                    let v = v.split(" (").next().unwrap().to_string();
                    flows.last_mut().unwrap().entry(k).or_default().push(v);
                }
            } else if set == 2
                && let Some(n) = line.strip_prefix("ApplicationName: ")
            {
                names.insert(n.to_string());
            }
        }
        assert_eq!(flows.len(), records.len(), "{}", capture.display());
        let one = |f: &BTreeMap<String, Vec<String>>, k: &str| -> String {
            let v = f.get(k).unwrap_or_else(|| panic!("{k} missing: {f:?}"));
            assert_eq!(v.len(), 1, "{k}: {f:?}");
            v[0].clone()
        };
        let mut seen: Vec<String> = flows
            .iter()
            .map(|f| {
                // Every record carries its application id and confidence.
                assert_eq!(one(f, "Classification Engine ID"), "PANA-L7-PEN");
                assert!(one(f, "Selector ID").starts_with("00007ed9"));
                format!(
                    "{} {} {} {} {} {} {} {}",
                    one(f, "SrcAddr"),
                    one(f, "DstAddr"),
                    one(f, "SrcPort"),
                    one(f, "DstPort"),
                    one(f, "Packets"),
                    one(f, "Octets"),
                    one(f, "reverse Packets"),
                    one(f, "reverse Octets"),
                )
            })
            .collect();
        let mut want: Vec<String> = records
            .iter()
            .map(|r| {
                let mut r = r.clone();
                // tshark shows ports as sent: 0 for ICMP.
                if r["proto"].as_str().unwrap().starts_with("icmp") {
                    r["client_port"] = 0.into();
                    r["server_port"] = 0.into();
                }
                key(&r)
            })
            .collect();
        seen.sort();
        want.sort();
        assert_eq!(seen, want, "{}", capture.display());
        let services: BTreeSet<String> = records
            .iter()
            .map(|r| r["service"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, services, "{}", capture.display());
        // The names seen go out as the enterprise element 2, byte for byte.
        let sent_names = text.matches(") Type 2: Value").count();
        let named = records.iter().filter(|r| r["name"].is_string()).count();
        assert_eq!(sent_names, named);
    }
}

#[test]
fn a_collector_down_or_unresolvable_changes_only_the_export_counters() {
    let capture = common::shared_pcaps().join("ndpi__iphone.pcap");
    let plain = common::appletap(&["read", "--format", "json", capture.to_str().unwrap()]);
    assert_eq!(plain.status.code(), Some(0));
    let plain = String::from_utf8(plain.stdout).unwrap();
    // Nothing listens: the kernel reports ICMP port unreachable on the next send.
    let down = format!("127.0.0.1:{}", free_port());
    // An unresolvable name (RFC 6761 `.invalid`): nothing can be sent.
    for target in [down.as_str(), "collector.invalid:4739"] {
        let (report, records, stderr) = export(target, &capture);
        assert_eq!(report, plain, "the report does not depend on the collector");
        let [sent, _, dropped, errors] = counters(&stderr);
        assert_eq!(sent + dropped, records.len() as u64, "{stderr}");
        assert!(dropped > 0, "{stderr}");
        if target.ends_with(".invalid:4739") {
            assert_eq!(sent, 0, "{stderr}");
            assert!(stderr.contains("did not resolve"), "{stderr}");
        } else {
            assert!(errors > 0, "{stderr}");
        }
    }
}
