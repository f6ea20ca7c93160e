//! The whole core on a sequence of raw IP packets: decode, flow table (idle expiry, key reuse,
//! eviction at a cap of 8 flows), per-flow inspection (TCP reassembly, TLS, HTTP, QUIC, DNS
//! over TCP), the shared DNS/mDNS stores, classification, records and the report.
//!
//! Input: packets `[ctl: u8][len: u16 BE][bytes]` (the last one takes what is left); each is
//! copied to a buffer of its exact length. `ctl` advances packet time: bits 0..=6 in tenths of
//! a second, bit 7 by 1,000 s more (past every idle timeout).
#![no_main]

mod common;

use appletap::capture::{LinkType, MemorySource, Next, OwnedPacket, PacketSource, Timestamp};
use libfuzzer_sys::fuzz_target;

const MAX_PACKETS: usize = 512;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let mut ts = Timestamp::from_parts(1_700_000_000, 0);
    let mut packets = Vec::new();
    while rest.len() >= 3 && packets.len() < MAX_PACKETS {
        let (ctl, len) = (rest[0], usize::from(u16::from_be_bytes([rest[1], rest[2]])));
        rest = &rest[3..];
        let (bytes, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        ts = Timestamp(ts.0 + u64::from(ctl & 0x7f) * 100_000_000);
        if ctl & 0x80 != 0 {
            ts = ts.plus_secs(1_000);
        }
        packets.push(OwnedPacket::new(ts, LinkType::RAW, bytes.to_vec()));
    }
    let mut source = MemorySource::new(packets);
    let mut engine = common::engine(8);
    let mut n = 0;
    let mut taken = 0;
    while let Next::Packet(packet) = source.next_packet() {
        engine.process(&packet);
        n += 1;
        let (held, _) = engine.flow_counts();
        assert!(held <= 8, "{held} flows held with a cap of 8");
        if n % 64 == 0 {
            taken += engine.take_finished().len();
        }
    }
    common::finish_and_report(engine, Vec::new(), taken);
});
