//! Hostile traffic: packets built to hurt a passive classifier (lying lengths, compression
//! loops, streams that never finish, scans and floods meant to exhaust its state), built with
//! etherparse's `PacketBuilder` around real payloads. Each test is named after what it guards:
//! no panic, no hang, no name taken from garbage, and state that stays bounded and counted.
//!
//! Tests that measure this process's memory or time take one lock, so that they do not run
//! alongside each other; tests that run the binary measure the child instead.

mod common;

use std::io::{Read, Write};
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use appletap::capture::{LinkType, MemorySource, Next, Packet, PacketSource, Timestamp};
use appletap::classify::Signal;
use appletap::pipeline::{Engine, EngineConfig};
use appletap::report::record::FlowRecord;
use appletap::signature::SignatureSet;
use etherparse::PacketBuilder;
use serde_json::Value;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const CLIENT: [u8; 4] = [192, 168, 2, 17];
const RESOLVER: [u8; 4] = [192, 168, 2, 1];

/// A raw IPv4/TCP packet; `flags` spells the TCP flags: S(YN), A(CK), P(SH), F(IN), R(ST).
fn tcp(src: ([u8; 4], u16), dst: ([u8; 4], u16), seq: u32, flags: &str, payload: &[u8]) -> Vec<u8> {
    let mut b = PacketBuilder::ipv4(src.0, dst.0, 64).tcp(src.1, dst.1, seq, 65_535);
    for f in flags.chars() {
        b = match f {
            'S' => b.syn(),
            'A' => b.ack(1),
            'P' => b.psh(),
            'F' => b.fin(),
            'R' => b.rst(),
            other => panic!("unknown TCP flag {other}"),
        };
    }
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, payload).unwrap();
    v
}

/// A raw IPv4/UDP packet.
fn udp(src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src.0, dst.0, 64).udp(src.1, dst.1);
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, payload).unwrap();
    v
}

/// Packet time advances by 1 ms + 1 ns per packet: no two packets are a whole number of
/// idle timeouts apart (see `flow_idle_for_exactly_its_timeout_does_not_hang`).
const STEP_NS: u64 = 1_000_001;

/// An engine fed raw IP packets at a steady packet clock.
struct Feed {
    engine: Engine,
    ts: Timestamp,
}

impl Feed {
    fn new(max_flows: usize) -> Self {
        let sigs = Arc::new(SignatureSet::builtin().unwrap());
        let config = EngineConfig {
            max_flows,
            ..EngineConfig::default()
        };
        Self {
            engine: Engine::new(sigs, config),
            ts: Timestamp::from_parts(1_700_000_000, 0),
        }
    }

    fn push(&mut self, p: &[u8]) {
        self.ts = Timestamp(self.ts.0 + STEP_NS);
        self.engine.process(&Packet {
            ts: self.ts,
            link: LinkType::RAW,
            data: p,
            orig_len: p.len() as u32,
            block: None,
        });
    }

    fn finish(mut self) -> (Engine, Vec<FlowRecord>) {
        self.engine.finish();
        let records = self.engine.take_finished();
        (self.engine, records)
    }
}

/// Runs `f` on its own thread; fails if it panics or does not end within `bound`.
fn within<T: Send + 'static>(
    bound: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(bound) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: did not finish within {bound:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

/// This process's resident set, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn record_to(records: &[FlowRecord], server: [u8; 4], port: u16) -> &FlowRecord {
    let ip = IpAddr::from(server);
    records
        .iter()
        .find(|r| r.server_ip == ip && r.server_port == Some(port))
        .unwrap_or_else(|| panic!("no flow to {ip}:{port}"))
}

// ----- a flow idle for exactly its timeout ------------------------------------------------------

#[test]
fn flow_idle_for_exactly_its_timeout_does_not_hang() {
    // Minimized from a fuzzing timeout (fuzz target capture_file) and from
    // `tests/damaged.rs::flipped_file_bytes_headers_included_never_panic_or_hang`: a UDP flow,
    // then any packet exactly 120 s (the UDP idle timeout) later, to the nanosecond.
    within(
        Duration::from_secs(20),
        "two UDP packets 120 s apart",
        || {
            let mut f = Feed::new(1000);
            let t0 = f.ts;
            let a = udp((CLIENT, 40_000), (RESOLVER, 12_345), b"x");
            let b = udp((CLIENT, 40_001), (RESOLVER, 12_345), b"y");
            let mut packets = MemorySource::from_frames([
                (t0, LinkType::RAW, a),
                (t0.plus_secs(120), LinkType::RAW, b),
            ]);
            while let Next::Packet(p) = packets.next_packet() {
                f.engine.process(&p);
            }
            let (_, records) = f.finish();
            assert_eq!(records.len(), 2);
        },
    );
}

// ----- a ClientHello with lying lengths -------------------------------------------------------

/// A real ClientHello record: SNI gateway.icloud.com (frame 157 of ndpi__iphone.pcap).
const CLIENT_HELLO: &[u8] = include_bytes!("../fixtures/packets/client_hello_gateway_icloud.bin");

/// Every length field of a ClientHello record: (name, offset, width in bytes).
fn length_fields(r: &[u8]) -> Vec<(String, usize, usize)> {
    let be = |at: usize, n: usize| {
        r[at..at + n]
            .iter()
            .fold(0usize, |a, &b| a << 8 | b as usize)
    };
    let mut v = vec![
        ("record length".to_string(), 3, 2),
        ("handshake length".to_string(), 6, 3),
    ];
    let mut at = 5 + 4 + 2 + 32; // record header, handshake header, version, random
    v.push(("session id length".into(), at, 1));
    at += 1 + be(at, 1);
    v.push(("cipher suites length".into(), at, 2));
    at += 2 + be(at, 2);
    v.push(("compression methods length".into(), at, 1));
    at += 1 + be(at, 1);
    v.push(("extensions length".into(), at, 2));
    let end = at + 2 + be(at, 2);
    at += 2;
    while at + 4 <= end {
        let (ty, len) = (be(at, 2), be(at + 2, 2));
        v.push((format!("extension {ty:#06x} length"), at + 2, 2));
        match ty {
            0x0000 => {
                v.push(("server_name list length".into(), at + 4, 2));
                v.push(("server_name host_name length".into(), at + 7, 2));
            }
            0x0010 => v.push(("ALPN list length".into(), at + 4, 2)),
            _ => {}
        }
        at += 4 + len;
    }
    assert_eq!(at, end, "the fixture's extensions are walked exactly");
    v
}

/// Whether a lie in this field must leave no SNI: the fields on the path to the server_name
/// extension. A record longer than its ClientHello is not a lie about the ClientHello (a
/// record may carry more handshake data), and a lie inside another extension can leave a
/// ClientHello that still parses (zero padding reads as empty extensions): for those the SNI
/// may stay, but it must be the honest one.
fn on_sni_path(field: &str, truth: u64, lie: u64) -> bool {
    match field {
        "record length" => lie < truth,
        f if f.starts_with("extension ") => f.starts_with("extension 0x0000"),
        f => !f.starts_with("ALPN"),
    }
}

#[test]
fn client_hello_with_lying_lengths_gives_no_sni_and_no_panic() {
    let _serial = serial();
    let fields = length_fields(CLIENT_HELLO);
    assert!(fields.iter().any(|f| f.0 == "server_name host_name length"));
    let server = [17, 248, 176, 75];
    let mut f = Feed::new(100_000);
    // (client port, field, truth, lie); port 40000 carries the honest ClientHello.
    let mut cases: Vec<(u16, String, u64, u64)> = Vec::new();
    let mut variants = vec![CLIENT_HELLO.to_vec()];
    cases.push((40_000, "honest".into(), 0, 0));
    for (name, at, width) in &fields {
        let truth = CLIENT_HELLO[*at..at + width]
            .iter()
            .fold(0u64, |a, &b| a << 8 | u64::from(b));
        let max = (1u64 << (8 * width)) - 1;
        for lie in [
            0,
            1,
            truth.saturating_sub(1),
            truth + 1,
            truth + 7,
            max / 2,
            max,
        ] {
            if lie == truth || lie > max {
                continue;
            }
            let mut bytes = CLIENT_HELLO.to_vec();
            bytes[*at..at + width].copy_from_slice(&lie.to_be_bytes()[8 - width..]);
            cases.push((40_000 + variants.len() as u16, name.clone(), truth, lie));
            variants.push(bytes);
        }
    }
    assert!(cases.len() > 100, "{} lies", cases.len());
    for ((port, ..), bytes) in cases.iter().zip(&variants) {
        let c = (CLIENT, *port);
        let s = (server, 443);
        f.push(&tcp(c, s, 1000, "S", &[]));
        f.push(&tcp(s, c, 5000, "SA", &[]));
        f.push(&tcp(c, s, 1001, "A", &[]));
        // The ClientHello in two segments, then a retransmission of the whole.
        let (a, b) = bytes.split_at(bytes.len() / 2);
        f.push(&tcp(c, s, 1001, "PA", a));
        f.push(&tcp(c, s, 1001 + a.len() as u32, "PA", b));
        f.push(&tcp(c, s, 1001, "PA", bytes));
        f.push(&tcp(s, c, 5001, "A", &[]));
        f.push(&tcp(c, s, 1001 + bytes.len() as u32, "FA", &[]));
    }
    let (_, records) = f.finish();
    let mut wrong = Vec::new();
    for (port, field, truth, lie) in &cases {
        let r = records
            .iter()
            .find(|r| r.client_port == Some(*port))
            .unwrap_or_else(|| panic!("no flow for {field}"));
        let sni = r.names.sni.as_deref();
        let sni_evidence = r.evidence.iter().any(|e| matches!(e.signal, Signal::Sni));
        if field == "honest" {
            assert_eq!(sni, Some("gateway.icloud.com"));
            assert!(sni_evidence);
        } else if on_sni_path(field, *truth, *lie) {
            if sni.is_some() || sni_evidence {
                wrong.push(format!("{field} {truth} -> {lie}: SNI {sni:?}"));
            }
        } else if sni.is_some_and(|s| s != "gateway.icloud.com") {
            wrong.push(format!("{field} {truth} -> {lie}: another SNI {sni:?}"));
        }
        if field.starts_with("ALPN") && r.alpn.is_some() {
            wrong.push(format!("{field} {truth} -> {lie}: ALPN {:?}", r.alpn));
        }
    }
    assert!(
        wrong.is_empty(),
        "lying ClientHellos:\n{}",
        wrong.join("\n")
    );
}

// ----- DNS compression loops and names over 255 bytes ------------------------------------------

/// A DNS message: header (`flags`, the section counts) then `body` as given.
fn dns_message(flags: u16, qd: u16, an: u16, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    for v in [0x1234, flags, qd, an, 0, 0] {
        m.extend_from_slice(&u16::to_be_bytes(v));
    }
    m.extend_from_slice(body);
    m
}

/// An uncompressed name from its labels.
fn dns_name(labels: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for l in labels {
        v.push(l.len() as u8);
        v.extend_from_slice(l);
    }
    v.push(0);
    v
}

/// Type, class, TTL and data of an A record.
fn a_rdata(addr: [u8; 4]) -> Vec<u8> {
    let mut v = vec![0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4];
    v.extend_from_slice(&addr);
    v
}

const QTYPE_A: [u8; 4] = [0, 1, 0, 1];

/// Hostile DNS answers, each binding (if it were believed) a name to `addr`.
fn hostile_dns(addr: [u8; 4]) -> Vec<(&'static str, Vec<u8>)> {
    let label63 = [b'a'; 63];
    let mut v = Vec::new();
    // The question's name is a pointer to itself (offset 12).
    let mut body = vec![0xC0, 0x0C];
    body.extend_from_slice(&QTYPE_A);
    body.extend_from_slice(&[0xC0, 0x0C]);
    body.extend(a_rdata(addr));
    v.push(("pointer to itself", body));
    // A label, then a pointer back to that label: a.a.a.a... forever.
    let mut body = vec![1, b'a', 0xC0, 0x0C];
    body.extend_from_slice(&QTYPE_A);
    body.extend_from_slice(&[0xC0, 0x0C]);
    body.extend(a_rdata(addr));
    v.push(("label then pointer back to it", body));
    // Two names pointing at each other (one pointer forward, one back): b.c.b.c...
    let mut body = dns_name(&[b"x"]);
    body.extend_from_slice(&QTYPE_A);
    let b_at = 12 + body.len();
    body.extend_from_slice(&[1, b'b', 0xC0, (b_at + 4) as u8]); // b, then forward to c
    body.extend_from_slice(&[1, b'c', 0xC0, b_at as u8]); // c, then back to b
    body.extend(a_rdata(addr));
    v.push(("two names pointing at each other", body));
    // A pointer past the end of the message.
    let mut body = vec![0xC0, 0xFF];
    body.extend_from_slice(&QTYPE_A);
    body.extend_from_slice(&[0xC0, 0x0C]);
    body.extend(a_rdata(addr));
    v.push(("pointer past the end", body));
    // A 320-byte name, uncompressed.
    let long = dns_name(&[&label63, &label63, &label63, &label63, &label63]);
    let mut body = long.clone();
    body.extend_from_slice(&QTYPE_A);
    body.extend_from_slice(&long);
    body.extend(a_rdata(addr));
    v.push(("320-byte name", body));
    // A valid 193-byte question, and an answer name of one more 63-byte label plus a pointer
    // to it: 257 bytes on the wire, only through compression.
    let mut body = dns_name(&[&label63, &label63, &label63]);
    body.extend_from_slice(&QTYPE_A);
    body.push(63);
    body.extend_from_slice(&label63);
    body.extend_from_slice(&[0xC0, 0x0C]);
    body.extend(a_rdata(addr));
    v.push(("name over 255 bytes through a pointer", body));
    // A label length of 127 (the 0x40 bits are reserved label types).
    let mut body = vec![127];
    body.extend_from_slice(&[b'z'; 127]);
    body.push(0);
    body.extend_from_slice(&QTYPE_A);
    body.extend_from_slice(&[0xC0, 0x0C]);
    body.extend(a_rdata(addr));
    v.push(("label of 127 bytes", body));
    v
}

#[test]
fn dns_compression_loops_and_overlong_names_bind_nothing_on_53_or_5353() {
    let _serial = serial();
    let mdns_fixture: &[u8] =
        include_bytes!("../fixtures/packets/mdns_companion_link_device_info.bin");
    let types_of = |packets: &[Vec<u8>]| {
        let mut f = Feed::new(10_000);
        for p in packets {
            f.push(p);
        }
        let (engine, _) = f.finish();
        let mut t: Vec<String> = engine
            .names()
            .bonjour
            .types()
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        t.sort();
        t
    };
    let announcer = ([10, 0, 0, 227], 5353);
    let group = ([224, 0, 0, 251], 5353);
    let control_mdns = udp(announcer, group, mdns_fixture);
    let control_types = types_of(std::slice::from_ref(&control_mdns));
    assert!(control_types.contains(&"_companion-link._tcp".to_string()));

    let mut f = Feed::new(10_000);
    let mut hostile_addrs: Vec<([u8; 4], &str)> = Vec::new();
    for i in 0..hostile_dns([0; 4]).len() {
        let addr = [17, 57, 144, 10 + i as u8];
        let (what, body) = hostile_dns(addr).swap_remove(i);
        let port = 30_000 + i as u16;
        // As a DNS answer on 53 (and a query carrying it), and as an mDNS announcement.
        f.push(&udp(
            (CLIENT, port),
            (RESOLVER, 53),
            &dns_message(0x0100, 1, 0, &body),
        ));
        f.push(&udp(
            (RESOLVER, 53),
            (CLIENT, port),
            &dns_message(0x8180, 1, 1, &body),
        ));
        f.push(&udp(announcer, group, &dns_message(0x8400, 1, 1, &body)));
        hostile_addrs.push((addr, what));
    }
    // Controls: a well-formed answer binds its name; a real announcement is learned.
    let mut good = dns_name(&[b"1-courier", b"push", b"apple", b"com"]);
    good.extend_from_slice(&QTYPE_A);
    good.extend_from_slice(&[0xC0, 0x0C]);
    good.extend(a_rdata([17, 57, 144, 200]));
    f.push(&udp(
        (RESOLVER, 53),
        (CLIENT, 29_999),
        &dns_message(0x8180, 1, 1, &good),
    ));
    f.push(&control_mdns);
    // Then a connection to every address answered.
    let control_addr = ([17, 57, 144, 200], "control");
    for (i, (addr, _)) in hostile_addrs.iter().chain([&control_addr]).enumerate() {
        f.push(&tcp(
            (CLIENT, 50_000 + i as u16),
            (*addr, 5223),
            1,
            "S",
            &[],
        ));
    }
    let (engine, records) = f.finish();
    for (addr, what) in &hostile_addrs {
        let r = record_to(&records, *addr, 5223);
        assert!(r.names.dns.is_empty(), "{what}: bound {:?}", r.names.dns);
        assert_ne!(r.confidence, Some("certain"), "{what}");
    }
    let control = record_to(&records, [17, 57, 144, 200], 5223);
    assert_eq!(
        control.names.dns.first().map(String::as_str),
        Some("1-courier.push.apple.com")
    );
    assert_eq!(
        engine.names().dns.len(),
        1,
        "only the control answer is held"
    );
    let mut types: Vec<String> = engine
        .names()
        .bonjour
        .types()
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    types.sort();
    assert_eq!(
        types, control_types,
        "only the control announcement is learned"
    );
    // The DNS flows themselves noted no garbage names.
    for r in records.iter().filter(|r| r.server_port == Some(53)) {
        for q in &r.names.queried {
            assert!(q.len() <= 255 && !q.contains("a.a.a"), "{q}");
        }
    }
}

// ----- a ClientHello that never completes ------------------------------------------------------

/// Flows of `segments` segments of 1,000 bytes each continuing one TLS record that claims
/// 16 KB (and a handshake message that claims 64 KB), interleaved over `flows` flows; with
/// `gap`, each flow's first data segment never arrives, so everything after it waits for it.
fn endless_client_hellos(flows: u16, segments: u32, gap: bool) -> (Vec<FlowRecord>, Duration, u64) {
    let server = [17, 248, 176, 75];
    let mut f = Feed::new(100_000);
    let mut first = vec![
        0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x01, 0x00, 0x00, 0x03, 0x03,
    ];
    first.resize(1000, 0x41);
    let filler = vec![0x41u8; 1000];
    for i in 0..flows {
        let (c, s) = ((CLIENT, 20_000 + i), (server, 443));
        f.push(&tcp(c, s, 1000, "S", &[]));
        f.push(&tcp(s, c, 5000, "SA", &[]));
        f.push(&tcp(c, s, 1001, "A", &[]));
    }
    let before = rss();
    let start = Instant::now();
    for k in 0..segments {
        for i in 0..flows {
            if gap && k == 0 {
                continue;
            }
            let (c, s) = ((CLIENT, 20_000 + i), (server, 443));
            let seq = 1001u32.wrapping_add(k * 1000);
            f.push(&tcp(c, s, seq, "PA", if k == 0 { &first } else { &filler }));
        }
    }
    let elapsed = start.elapsed();
    let grown = rss().saturating_sub(before);
    let (_, records) = f.finish();
    (records, elapsed, grown)
}

#[test]
fn client_hello_that_never_completes_keeps_reassembly_bounded() {
    let _serial = serial();
    // One flow, 10,000 segments (10 MB): no name, done quickly.
    let (records, elapsed, _) = endless_client_hellos(1, 10_000, false);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].names.sni, None);
    assert_eq!(records[0].packets_to_server, 10_002);
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    // 32 flows at once, 10,000 segments each (320 MB of stream), in order and after a gap:
    // reassembly holds at most 16 KiB per flow (2 x 16 KiB with a gap), so memory stays flat.
    for gap in [false, true] {
        let (records, elapsed, grown) = endless_client_hellos(32, 10_000, gap);
        assert_eq!(records.len(), 32);
        assert!(records.iter().all(|r| r.names.sni.is_none()));
        assert!(elapsed < Duration::from_secs(60), "gap {gap}: {elapsed:?}");
        assert!(
            grown < 32 << 20,
            "gap {gap}: RSS grew by {} MiB for 320 MB of never-ending ClientHellos",
            grown >> 20
        );
    }
}

// ----- DNS over TCP after a gap ------------------------------------------------------------

#[test]
fn dns_over_tcp_segments_past_a_gap_are_reassembled_in_linear_time() {
    // The server side of DNS over TCP is reassembled up to 128 KiB with no cap on segments.
    // 131,000 one-byte segments after a missing first one wait as 131,000 pending pieces;
    // when the gap is filled they must be joined in linear time, not one scan per piece.
    let _serial = serial();
    let mut f = Feed::new(1000);
    let (c, s) = ((CLIENT, 40_000), (RESOLVER, 53));
    f.push(&tcp(c, s, 100, "S", &[]));
    f.push(&tcp(s, c, 5000, "SA", &[]));
    for k in 1..131_000u32 {
        f.push(&tcp(s, c, 5001 + 2 + k, "A", b"x"));
    }
    let start = Instant::now();
    f.push(&tcp(s, c, 5001, "A", &[0x00, 0xff, 0xaa]));
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(2),
        "filling one gap before 131,000 one-byte segments took {elapsed:?}"
    );
}

// ----- a spoofed scan of millions of flows ----------------------------------------------------

/// A classic pcap (Ethernet, microseconds) of `n` TCP SYNs, each a new flow: distinct source
/// port and destination address per packet, 1,000 packets per second of packet time (as
/// `examples/synth_scan.rs` writes it), or all at the same instant if `frozen`.
fn write_scan(out: &mut impl Write, n: u64, frozen: bool) -> std::io::Result<()> {
    let mut header = Vec::new();
    header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    header.extend_from_slice(&2u16.to_le_bytes());
    header.extend_from_slice(&4u16.to_le_bytes());
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(&65_535u32.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    out.write_all(&header)?;
    let mut buf = Vec::with_capacity(1 << 20);
    for i in 0..n {
        let dst = (i / 60_000) as u32;
        let frame = {
            let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                .ipv4(
                    [10, 0, 0, 1],
                    [10 + (dst >> 16) as u8, 16, (dst >> 8) as u8, dst as u8],
                    64,
                )
                .tcp(1024 + (i % 60_000) as u16, 443, i as u32, 1024)
                .syn();
            let mut v = Vec::with_capacity(54);
            b.write(&mut v, &[]).unwrap();
            v
        };
        let (secs, micros) = if frozen {
            (1_700_000_000, 0)
        } else {
            (1_700_000_000 + i / 1000, (i % 1000) * 1000)
        };
        buf.extend_from_slice(&(secs as u32).to_le_bytes());
        buf.extend_from_slice(&(micros as u32).to_le_bytes());
        buf.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        buf.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        buf.extend_from_slice(&frame);
        if buf.len() >= 1 << 20 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)
}

/// Peak resident set of a running process, in bytes (0 once it has gone).
fn peak_rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Runs `appletap read --format json ARGS -` on a generated capture streamed to its standard
/// input; returns the report and the child's peak RSS.
fn read_stream(
    args: &[&str],
    write: impl FnOnce(&mut std::process::ChildStdin) + Send + 'static,
) -> (Value, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_appletap"))
        .args(["read", "--format", "json"])
        .args(args)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || write(&mut stdin));
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        stdout.read_to_end(&mut v).unwrap();
        v
    });
    let (pid, start) = (child.id(), Instant::now());
    let mut peak = 0;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        peak = peak.max(peak_rss_of(pid));
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "appletap read - did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    writer.join().unwrap();
    let stdout = reader.join().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    (
        serde_json::from_slice(&stdout).expect("a JSON report"),
        peak,
    )
}

#[test]
fn spoofed_scan_of_millions_of_flows_is_bounded_by_max_flows_and_counted() {
    const N: u64 = 2_000_000;
    const MAX: u64 = 20_000;
    let (report, peak) = read_stream(&["--max-flows", "20000"], |stdin| {
        write_scan(stdin, N, false).expect("appletap reads the whole scan");
    });
    let t = &report["totals"];
    assert_eq!(t["packets_read"], N);
    assert_eq!(
        t["flows"], N,
        "every SYN is its own flow, and every flow is reported"
    );
    let evicted = t["flows_evicted"].as_u64().unwrap();
    assert!(
        (N - MAX..=N).contains(&evicted),
        "{evicted} evicted: at most {MAX} flows may be held"
    );
    // Two million flows held at once would take hundreds of MiB; the cap keeps it small.
    assert!(
        peak < 200 << 20,
        "peak RSS {} MiB with --max-flows {MAX}",
        peak >> 20
    );
}

// ----- floods of DNS answers and mDNS announcements -----------------------------------------

/// An uncompressed name from dotted text.
fn dotted(name: &str) -> Vec<u8> {
    let labels: Vec<&[u8]> = name.split('.').map(str::as_bytes).collect();
    dns_name(&labels)
}

/// A resource record: owner, type, class, TTL 3600, data.
fn rr(owner: &str, rtype: u16, class: u16, rdata: &[u8]) -> Vec<u8> {
    let mut v = dotted(owner);
    v.extend_from_slice(&rtype.to_be_bytes());
    v.extend_from_slice(&class.to_be_bytes());
    v.extend_from_slice(&3600u32.to_be_bytes());
    v.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    v.extend_from_slice(rdata);
    v
}

/// A classic pcap (Ethernet) of raw IP packets, one per millisecond (+1 ns, see `STEP_NS`).
fn write_pcap(path: &std::path::Path, packets: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes()); // nanosecond pcap
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&101u32.to_le_bytes()); // LINKTYPE_RAW
    let mut ts = 1_700_000_000_000_000_000u64;
    for p in packets {
        ts += STEP_NS;
        out.extend_from_slice(&((ts / 1_000_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((ts % 1_000_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p);
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn dns_and_mdns_floods_stay_within_max_flows_and_count_evictions() {
    const ADDRESSES: u32 = 10_000;
    const MAX: u64 = 1_000;
    let mut packets = Vec::new();
    // 400 DNS responses of 25 A answers each: 10,000 distinct addresses.
    for r in 0..ADDRESSES / 25 {
        let q = format!("flood-{r}.example.com");
        let mut body = dotted(&q);
        body.extend_from_slice(&QTYPE_A);
        for k in 0..25 {
            let i = r * 25 + k;
            body.extend(rr(&q, 1, 1, &[10, 50, (i >> 8) as u8, i as u8]));
        }
        let msg = dns_message(0x8180, 1, 25, &body);
        packets.push(udp((RESOLVER, 53), (CLIENT, 40_000 + r as u16), &msg));
    }
    // 10,000 mDNS announcements from distinct devices: an AirPlay endpoint each, and a
    // service type of their own.
    for i in 0..ADDRESSES {
        let (hi, lo) = ((i >> 8) as u8, i as u8);
        let instance = format!("dev{i}._airplay._tcp.local");
        let host = format!("dev{i}.local");
        let mut srv = vec![0, 0, 0, 0, 0x1b, 0x58]; // priority, weight, port 7000
        srv.extend(dotted(&host));
        let mut body = rr("_airplay._tcp.local", 12, 1, &dotted(&instance));
        body.extend(rr(&instance, 33, 0x8001, &srv));
        body.extend(rr(&host, 1, 0x8001, &[10, 60, hi, lo]));
        body.extend(rr(
            &format!("_flood{i}._tcp.local"),
            12,
            1,
            &dotted(&format!("x._flood{i}._tcp.local")),
        ));
        let msg = dns_message(0x8400, 0, 4, &body);
        packets.push(udp(
            ([10, 70, hi, lo], 5353),
            ([224, 0, 0, 251], 5353),
            &msg,
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flood.pcap");
    write_pcap(&path, &packets);
    let out = Command::new(env!("CARGO_BIN_EXE_appletap"))
        .args(["read", "--format", "json", "--max-flows", &MAX.to_string()])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let state = &report["state"];
    let held = state["dns_addresses"].as_u64().unwrap();
    let evicted = state["dns_evictions"].as_u64().unwrap();
    assert!(held <= MAX, "{held} addresses held with --max-flows {MAX}");
    assert_eq!(
        held + evicted,
        u64::from(ADDRESSES),
        "every address is held or counted"
    );
    let mdns_evicted = state["mdns_evictions"].as_u64().unwrap();
    assert!(
        mdns_evicted >= u64::from(ADDRESSES) - MAX,
        "{mdns_evicted} mDNS endpoints evicted of {ADDRESSES} with room for {MAX}"
    );
    assert!(state["bonjour_dropped"].as_u64().unwrap() > 0, "{state}");
    let types = report["bonjour"].as_array().unwrap().len();
    assert!(types <= 4096 + 1, "{types} Bonjour types listed");
}

#[test]
fn spoofed_scan_with_frozen_packet_time_stays_bounded_by_max_flows() {
    // The same scan with every packet stamped with the same instant (a capture whose clock
    // stands still or jumped back): packet time never advances, so the idle sweep never runs.
    // Memory must still be bounded by --max-flows, not grow with the flows seen: 2 million
    // more flows may not cost more than a few MiB.
    let peak_for = |n: u64| {
        let (report, peak) = read_stream(&["--max-flows", "20000"], move |stdin| {
            write_scan(stdin, n, true).expect("appletap reads the whole scan");
        });
        assert_eq!(report["totals"]["flows"], n);
        assert_eq!(report["totals"]["flows_evicted"], n - 20_000);
        peak
    };
    let (small, large) = (peak_for(1_000_000), peak_for(3_000_000));
    assert!(
        large.saturating_sub(small) < 16 << 20,
        "peak RSS {} MiB after 1 million flows, {} MiB after 3 million, with --max-flows 20000",
        small >> 20,
        large >> 20
    );
}
