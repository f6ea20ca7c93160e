//! Tunnel decapsulation end to end (`appletap read --flows`): the inner flows of every tunnel
//! kind are classified like any other, and the flow records keep the outermost tunnel's kind
//! and endpoints. On third-party captures (Zeek's tunnel traces in ../shared/pcaps-more, real
//! Teredo, PPTP and GTP-U in ../shared/pcaps) and on fixtures that wrap real iPhone packets in
//! the kinds no public capture here has (fixtures/tunnels/, made by
//! fixtures/make_tunnel_fixtures.py).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn more(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/pcaps-more")
        .join(name)
}

/// The report and the flow records of one capture, read with `threads`.
fn read(path: &Path, threads: &str) -> (Value, Vec<Value>) {
    let (report, records) = read_with_records(threads, &[], &[path.to_path_buf()]);
    let records = records
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (serde_json::from_str(&report).unwrap(), records)
}

/// A flow's identity and label, as a line to compare.
fn flow_line(r: &Value) -> String {
    format!(
        "{} {}:{} -> {}:{} {} {}",
        r["proto"].as_str().unwrap(),
        r["client_ip"].as_str().unwrap(),
        r["client_port"],
        r["server_ip"].as_str().unwrap(),
        r["server_port"],
        r["service"].as_str().unwrap(),
        r["name"],
    )
}

/// The tunnel of a record as `kind outer_src -> outer_dst depth`.
fn tunnel_line(r: &Value) -> String {
    let t = &r["tunnel"];
    format!(
        "{} {} -> {} depth {}",
        t["kind"]
            .as_str()
            .unwrap_or_else(|| panic!("no tunnel in {r}")),
        t["outer_src"].as_str().unwrap(),
        t["outer_dst"].as_str().unwrap(),
        t["depth"]
    )
}

/// The record of the flow to `server` (address and port).
fn to<'a>(records: &'a [Value], server: &str, port: u64) -> &'a Value {
    records
        .iter()
        .find(|r| r["server_ip"] == server && r["server_port"].as_u64().unwrap_or(0) == port)
        .unwrap_or_else(|| panic!("no flow to {server}:{port} in {records:#?}"))
}

/// The iPhone's flows as the link fixtures give them untunnelled: the flows every tunnel
/// fixture must give again.
fn iphone_flows() -> Vec<String> {
    let (_, records) = read(&fixture("link/iphone-be.pcap"), "1");
    let mut lines: Vec<String> = records.iter().map(flow_line).collect();
    lines.sort();
    assert_eq!(lines.len(), 6, "{lines:#?}");
    lines
}

#[test]
fn every_fixture_kind_gives_the_inner_flows_with_the_outer_endpoints() {
    let expected = iphone_flows();
    // (file, kind of the TCP flows, kind of the ICMPv6 flow, outer endpoints, inner Ethernet)
    let cases = [
        (
            "gretap.pcap",
            "gre",
            "gre",
            "192.0.2.1 -> 198.51.100.2",
            true,
        ),
        (
            "gre-ipv6.pcap",
            "gre",
            "gre",
            "2001:db8::1 -> 2001:db8::2",
            false,
        ),
        (
            "erspan-ii.pcap",
            "erspan",
            "erspan",
            "192.0.2.1 -> 198.51.100.2",
            true,
        ),
        (
            "erspan-iii.pcap",
            "erspan",
            "erspan",
            "192.0.2.1 -> 198.51.100.2",
            true,
        ),
        (
            "ipip-6in4.pcap",
            "ip-in-ip",
            "6in4",
            "192.0.2.1 -> 198.51.100.2",
            false,
        ),
        (
            "ip6tnl.pcap",
            "ip-in-ip",
            "6in6",
            "2001:db8::1 -> 2001:db8::2",
            false,
        ),
    ];
    for (file, kind, v6_kind, outer, ethernet) in cases {
        let (report, records) = read(&fixture(&format!("tunnels/{file}")), "1");
        let mut lines: Vec<String> = records.iter().map(flow_line).collect();
        lines.sort();
        assert_eq!(lines, expected, "{file}");
        let icloud = to(&records, "17.248.176.75", 443);
        let hello = records
            .iter()
            .find(|r| r["names"]["sni"] == "gateway.icloud.com")
            .unwrap_or_else(|| panic!("{file}: no flow with the SNI"));
        assert_eq!(
            (hello["service"].as_str(), hello["confidence"].as_str()),
            (Some("icloud"), Some("certain")),
            "{file}"
        );
        assert_eq!(icloud["client_ip"], "192.168.2.17", "{file}");
        for r in &records {
            let k = if r["proto"] == "icmpv6" {
                v6_kind
            } else {
                kind
            };
            assert_eq!(tunnel_line(r), format!("{k} {outer} depth 1"), "{file}");
            // The flow's MAC is the inner frame's where the tunnel carries Ethernet; the
            // outer frame's belongs to the tunnel's endpoints.
            let mac = r["client_mac"].as_str();
            if ethernet {
                assert!(mac.is_some_and(|m| m != "02:00:00:00:00:01"), "{file}: {r}");
            } else {
                assert_eq!(mac, None, "{file}: {r}");
            }
        }
        let tunnels = &report["tunnels"];
        let decapsulated: u64 = tunnels["decapsulated"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(decapsulated, 30, "{file}: {tunnels}");
        // Every packet but the ICMPv6 one by the kind of the TCP flows.
        assert!(
            tunnels["decapsulated"][kind].as_u64().unwrap() >= 29,
            "{file}: {tunnels}"
        );
    }
}

#[test]
fn four_nested_tunnels_are_taken_off_and_a_fifth_is_counted_not_followed() {
    let expected = iphone_flows();
    // GRE around VXLAN around IP in IP around GTP-U: the bound.
    let (report, records) = read(&fixture("tunnels/depth-4.pcap"), "1");
    let mut lines: Vec<String> = records.iter().map(flow_line).collect();
    lines.sort();
    assert_eq!(lines, expected);
    for r in &records {
        assert_eq!(tunnel_line(r), "gre 192.0.2.1 -> 198.51.100.2 depth 4");
    }
    assert_eq!(report["tunnels"]["decapsulated"]["gre"], 30);
    assert!(
        report["tunnels"]["too_deep"]
            .as_object()
            .unwrap()
            .is_empty()
    );
    // One more IP in IP outside: the packet found 4 tunnels down (the GTP-U one) is the flow,
    // and every packet is counted as too deep.
    let (report, records) = read(&fixture("tunnels/depth-5.pcap"), "1");
    let lines: Vec<String> = records.iter().map(flow_line).collect();
    assert_eq!(
        lines,
        ["udp 10.0.4.1:2152 -> 10.0.4.2:2152 unknown null"],
        "{records:#?}"
    );
    assert_eq!(
        tunnel_line(&records[0]),
        "ip-in-ip 10.0.0.1 -> 10.0.0.2 depth 4"
    );
    assert_eq!(report["tunnels"]["too_deep"]["ip-in-ip"], 30);
    assert_eq!(report["totals"]["packets_decoded"], 30);
}

#[test]
fn zeek_tunnel_captures() {
    // (capture, flow, tunnel)
    let cases = [
        (
            "zeek__vxlan-triple-v2.pcap",
            "udp 4.4.4.4:53 -> 4.4.4.9:53 dns null",
            "vxlan 1.1.1.1 -> 1.1.1.9 depth 3",
        ),
        (
            "zeek__vxlan-inner-tcp-bad-checksum.pcap",
            "tcp 10.0.0.1:12345 -> 10.0.0.2:80 http null",
            "vxlan 192.168.1.1 -> 192.168.1.2 depth 1",
        ),
        (
            "zeek__geneve-many-options.pcap",
            "tcp 10.0.0.226:39088 -> 95.217.228.176:80 http \"wtfismyip.com\"",
            "geneve 192.168.33.179 -> 192.168.179.33 depth 1",
        ),
        (
            // GTP-U from a non-standard source port (5906) to 2152.
            "zeek__gtp2_different_udp_port.pcap",
            "tcp 10.131.17.170:51803 -> 173.199.115.168:80 http \"cdn.epicgameads.com\"",
            "gtp-u 167.55.105.244 -> 207.233.125.40 depth 1",
        ),
        (
            // The inner UDP uses port 2152 too, but is no GTP-U: one level only.
            "zeek__gtp4_udp_2152_inside.pcap",
            "udp 74.125.216.149:2152 -> 10.131.138.69:2152 unknown null",
            "gtp-u 84.249.173.213 -> 84.249.173.85 depth 1",
        ),
        (
            // IPv6 carrying IPv4 carrying PPTP's GRE carrying PPP carrying a DNS query.
            "zeek__gre-pptp.pcap",
            "udp 172.16.44.3:40768 -> 8.8.8.8:53 dns null",
            "ip-in-ip 2402:f000:1:8e01::5555 -> 2607:fcd0:100:2300::b108:2a6b depth 2",
        ),
        (
            "zeek__6in6in6.pcap",
            "udp dead::beef:30000 -> cafe::babe:13000 unknown null",
            "6in6 feed::beef -> feed::cafe depth 2",
        ),
        (
            // The second packet comes through other outer endpoints (feed::beef ->
            // feed::cafe): one flow, the first packet's endpoints kept.
            "zeek__6in6-tunnel-change.pcap",
            "udp dead::beef:30000 -> cafe::babe:13000 unknown null",
            "6in6 2001:4f8:4:7:2e0:81ff:fe52:ffff -> 2001:4f8:4:7:2e0:81ff:fe52:9a6b depth 1",
        ),
        (
            "zeek__ayiya3.pcap",
            "tcp 2001:4978:f:4c::2:53382 -> 2001:4860:b002::68:80 http \"ipv6.google.com\"",
            "ayiya 192.168.3.101 -> 216.14.98.22 depth 1",
        ),
    ];
    for (file, flow, tunnel) in cases {
        let (_, records) = read(&more(file), "1");
        let r = records
            .iter()
            .find(|r| flow_line(r) == flow)
            .unwrap_or_else(|| {
                let lines: Vec<String> = records.iter().map(flow_line).collect();
                panic!("{file}: no {flow} in {lines:#?}")
            });
        assert_eq!(tunnel_line(r), tunnel, "{file}");
    }
    let (_, records) = read(&more("zeek__6in6-tunnel-change.pcap"), "1");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["packets_to_server"], 2);
    // The DNS name inside three VXLAN tunnels is read.
    let (_, records) = read(&more("zeek__vxlan-triple-v2.pcap"), "1");
    assert!(
        !records[0]["names"]["queried"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn gre_carrying_80211_frames_is_counted_and_stays_the_tunnel_flow() {
    // Aruba's controller tunnel carries 802.11 frames (GRE protocol 0x8200), which are not
    // decoded: every packet is the GRE flow it was, and counted as tunnelled but not read.
    let (report, records) = read(&more("zeek__gre-aruba.pcap"), "1");
    let lines: Vec<String> = records.iter().map(flow_line).collect();
    assert_eq!(
        lines,
        ["ip-47 10.3.34.171:null -> 10.33.10.23:null unknown null"]
    );
    assert!(records[0].get("tunnel").is_none());
    // The tunnel's own flow keeps the outer frame's MAC, as before.
    assert!(records[0]["client_mac"].is_string(), "{}", records[0]);
    assert_eq!(report["tunnels"]["undecoded"]["gre"], 2407);
    let out = appletap(&["read", more("zeek__gre-aruba.pcap").to_str().unwrap()]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("tunnelled packets: decapsulated none; payload not read gre 2407"),
        "{table}"
    );
}

#[test]
fn real_teredo_pptp_and_gtp_in_the_shared_captures() {
    let (report, records) = read(&shared_pcaps().join("mercury__capture2.pcap"), "1");
    let teredo: Vec<String> = records
        .iter()
        .filter(|r| r["tunnel"]["kind"] == "teredo")
        .map(|r| format!("{} {}", flow_line(r), tunnel_line(r)))
        .collect();
    assert!(
        teredo.contains(
            &"icmpv6 fe80::ffff:ffff:fffe:null -> ff02::2:null unknown null teredo 192.168.1.101 -> 157.56.106.184 depth 1"
                .to_string()
        ),
        "{teredo:#?}"
    );
    // A ping through PPTP, and its PPP control (LCP, IPCP) counted as not read.
    let ping = to(&records, "40.0.0.2", 0);
    assert_eq!(tunnel_line(ping), "pptp 20.0.0.2 -> 20.0.0.1 depth 1");
    assert_eq!(report["tunnels"]["decapsulated"]["pptp"], 2);
    assert!(report["tunnels"]["undecoded"]["pptp"].as_u64().unwrap() > 0);
    // Zoom media inside GTP-U (the outer flow was UDP 2152 both ways).
    let (_, records) = read(&shared_pcaps().join("ndpi__zoom.pcap"), "1");
    let zoom = to(&records, "193.122.35.237", 8801);
    assert_eq!(
        tunnel_line(zoom),
        "gtp-u 10.134.25.67 -> 10.132.15.176 depth 1"
    );
    assert!(records.iter().all(|r| r["server_port"] != 2152));
}

#[test]
fn tunnelled_flows_are_the_same_with_worker_threads() {
    // The batch that carries packets to worker threads carries their tunnel too.
    for file in ["tunnels/depth-4.pcap", "tunnels/gretap.pcap"] {
        let path = fixture(file);
        let one = read_with_records("1", &[], std::slice::from_ref(&path)).1;
        let three = read_with_records("3", &[], std::slice::from_ref(&path)).1;
        assert_eq!(one, three, "{file}");
        assert!(one.iter().all(|l| l.contains("\"tunnel\"")), "{file}");
    }
}

#[test]
fn ecs_records_carry_the_tunnel_under_appletap() {
    let path = fixture("tunnels/erspan-iii.pcap");
    let out = appletap(&[
        "read",
        "--flows",
        "-",
        "--flows-format",
        "ecs",
        "--threads",
        "1",
        path.to_str().unwrap(),
    ]);
    let docs: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 6);
    for d in &docs {
        assert_eq!(d["appletap"]["tunnel"]["kind"], "erspan", "{d}");
        assert_eq!(d["appletap"]["tunnel"]["outer_dst"], "198.51.100.2");
    }
    // Untunnelled flows have no tunnel at all, in either shape.
    let plain = fixture("link/iphone-be.pcap");
    let out = appletap(&[
        "read",
        "--flows",
        "-",
        "--flows-format",
        "ecs",
        plain.to_str().unwrap(),
    ]);
    assert!(!String::from_utf8(out.stdout).unwrap().contains("tunnel"));
}
