//! Helpers shared by the fuzz targets: the built-in signature set (parsed once per process),
//! small engines, and walking every output so that lazily computed parts run too.
#![allow(dead_code)]

use std::sync::{Arc, LazyLock};

use appletap::capture::{LinkType, MemorySource, Next, PacketSource, Timestamp};
use appletap::decode::{self, PacketMeta};
use appletap::pipeline::{Engine, EngineConfig};
use appletap::flow::FlowKey;
use appletap::inspect;
use appletap::report::{Drops, InputSummary, Report, render_table};
use appletap::signature::SignatureSet;

/// The shipped signature set, parsed once per fuzzing process.
pub static SIGS: LazyLock<Arc<SignatureSet>> =
    LazyLock::new(|| Arc::new(SignatureSet::builtin().expect("built-in signatures parse")));

/// An engine with a small flow cap, so that eviction runs too.
pub fn engine(max_flows: usize) -> Engine {
    Engine::new(
        Arc::clone(&SIGS),
        EngineConfig {
            max_flows,
            ..EngineConfig::default()
        },
    )
}

/// Decodes one frame of `link` and looks at what came out, as the engine would.
pub fn decode_frame(link: LinkType, frame: &[u8]) {
    let _ = decode::link::network_slice(link, frame);
    if let Ok(meta) = decode::decode(link, frame) {
        touch_meta(&meta);
    }
}

/// Uses every field of decoded headers: flow key, DNS parsing of DNS/mDNS ports.
pub fn touch_meta(meta: &PacketMeta<'_>) {
    let key = FlowKey::of(meta);
    std::hint::black_box(key.symmetric_hash());
    std::hint::black_box(meta.icmp.map(|i| i.is_unreachable()));
    std::hint::black_box(meta.link.map(|l| (l.src(), l.dst())));
    if let Some((msg, _mdns)) = inspect::udp_dns_message(meta) {
        std::hint::black_box(msg.records.len());
    }
}

/// Ends every flow, then renders the report both ways and every flow record as JSON: the
/// output paths see fuzzed names too. Checks the counter invariant the report promises.
/// `taken` counts records the caller already took with `take_finished`.
pub fn finish_and_report(mut engine: Engine, inputs: Vec<InputSummary>, taken: usize) {
    std::hint::black_box(engine.totals(true));
    engine.finish();
    let records = engine.take_finished();
    for r in &records {
        std::hint::black_box(serde_json::to_string(r).expect("flow records serialize"));
    }
    let stats = engine.stats();
    assert_eq!(
        stats.read,
        stats.decoded + stats.skipped_total(),
        "packets read = decoded + skipped"
    );
    let (held, evicted) = engine.flow_counts();
    assert_eq!(held, 0, "finish ends every flow");
    let totals = engine.totals(false);
    assert_eq!(totals.counters.packets, stats, "one set of packet counters");
    let report = Report::build(
        &SIGS,
        inputs,
        &totals.counters,
        &totals.names,
        evicted,
        Drops::default(),
    );
    assert_eq!(
        report.totals.flows,
        (taken + records.len()) as u64,
        "one record per flow"
    );
    std::hint::black_box(render_table(&report));
    std::hint::black_box(serde_json::to_string(&report).expect("report serializes"));
}

/// A raw IPv4/UDP packet (checksums zero: appletap does not verify them).
pub fn ipv4_udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = 28 + payload.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// A raw IPv4/TCP packet with a 20-byte header (checksums zero).
pub fn ipv4_tcp(
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    seq: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let total = 40 + payload.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0x40,
        0,
        64,
        6,
        0,
        0,
    ]);
    p.extend_from_slice(&src.0);
    p.extend_from_slice(&dst.0);
    p.extend_from_slice(&src.1.to_be_bytes());
    p.extend_from_slice(&dst.1.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    p.extend_from_slice(payload);
    p
}

/// Feeds raw IP packets to an engine, one second apart from `start`.
pub fn feed_raw(engine: &mut Engine, start: u64, packets: Vec<Vec<u8>>) {
    let frames = packets
        .into_iter()
        .enumerate()
        .map(|(i, p)| (Timestamp::from_parts(start + i as u64, 0), LinkType::RAW, p));
    feed(engine, &mut MemorySource::from_frames(frames));
}

/// Feeds every packet of `source` to an engine.
pub fn feed(engine: &mut Engine, source: &mut MemorySource) {
    while let Next::Packet(p) = source.next_packet() {
        engine.process(&p);
    }
}

/// TCP flags.
pub const SYN: u8 = 0x02;
/// TCP flags.
pub const ACK: u8 = 0x10;
/// TCP flags.
pub const PSH_ACK: u8 = 0x18;
