//! Counters grow as traffic flows: a two-hour connection shows in the settled snapshots the
//! metrics publish while it is open, minute by minute, never going back, and ends with what
//! the report gives once it ended.

use std::sync::Arc;

use appletap::capture::{LinkType, Packet, Timestamp};
use appletap::pipeline::{Engine, EngineConfig};
use appletap::signature::SignatureSet;

/// A raw IPv4 TCP packet between 192.168.2.17:50000 and 17.57.144.116:5223 (APNs).
fn tcp(to_server: bool, flags: u8, payload: usize) -> Vec<u8> {
    let (src, dst, sport, dport) = if to_server {
        ([192, 168, 2, 17], [17, 57, 144, 116], 50000u16, 5223u16)
    } else {
        ([17, 57, 144, 116], [192, 168, 2, 17], 5223, 50000)
    };
    let total = 40 + payload;
    let mut p = vec![
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
    ];
    p.extend(src);
    p.extend(dst);
    p.extend(sport.to_be_bytes());
    p.extend(dport.to_be_bytes());
    p.extend([0, 0, 0, 1, 0, 0, 0, 1, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    p.resize(total, 0xab);
    p
}

fn apns_packets(engine: &Engine, settled: Timestamp) -> u64 {
    let t = engine.totals_settled(settled);
    let sigs = SignatureSet::builtin().unwrap();
    let apns = sigs.services.iter().position(|s| s.id == "apns").unwrap();
    t.counters
        .tally
        .nonzero()
        .find(|(i, _)| *i == Some(apns))
        .map_or(0, |(_, s)| s.packets)
}

#[test]
fn a_long_connection_is_counted_while_it_lasts() {
    let sigs = Arc::new(SignatureSet::builtin().unwrap());
    let mut engine = Engine::new(sigs, EngineConfig::default());
    let start = 1_700_000_000 * Timestamp::NANOS_PER_SEC;
    let sec = Timestamp::NANOS_PER_SEC;
    let push = |engine: &mut Engine, at: u64, p: Vec<u8>| {
        let len = p.len() as u32;
        engine.process(&Packet {
            ts: Timestamp(at),
            link: LinkType::RAW,
            data: &p,
            orig_len: len,
            block: None,
        });
    };
    push(&mut engine, start, tcp(true, 0x02, 0));
    push(&mut engine, start + sec / 50, tcp(false, 0x12, 0));
    // A flow younger than the settling time is not counted yet.
    assert_eq!(apns_packets(&engine, Timestamp(start - 5 * sec)), 0);
    let mut seen = Vec::new();
    let mut packets = 2;
    for minute in 1..=120u64 {
        let at = start + minute * 60 * sec;
        push(&mut engine, at, tcp(true, 0x18, 100));
        push(&mut engine, at + sec / 50, tcp(false, 0x18, 1000));
        packets += 2;
        let now = apns_packets(&engine, Timestamp(at - 5 * sec));
        assert_eq!(
            now, packets,
            "minute {minute}: every packet so far is counted"
        );
        seen.push(now);
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "grows every minute");
    engine.finish();
    let done = engine.totals(false);
    let sigs = SignatureSet::builtin().unwrap();
    let apns = sigs.services.iter().position(|s| s.id == "apns").unwrap();
    let end = done
        .counters
        .tally
        .nonzero()
        .find(|(i, _)| *i == Some(apns))
        .unwrap()
        .1;
    assert_eq!(end.packets, packets);
    assert_eq!(end.flows, 1);
}
