//! The IP fragment reassembler (`decode::defrag`) on sequences of fragments built from the
//! input: records `[ctl][src][id][offset u16][len u8][fill]`, each an IPv4 or IPv6 fragment
//! (by `ctl`'s low bit) of one of 4 sources and 4 identifications, `offset` in 8-byte units,
//! more-fragments from `ctl`, `len` bytes of `fill`; packet time advances by `ctl >> 2` tenths
//! of a second; a record whose `ctl` has its second bit set is instead raw bytes (the rest of
//! the input), mutations that reach the header parsing. With a small cap (64 KiB).
//!
//! Checks: no panic; bytes held never exceed the cap; every fragment taken in is reassembled,
//! held or dropped (and after a flush none is held); a reassembled datagram is at most
//! 65,535 bytes of IPv4, or 40 + 65,535 of IPv6, and decodes without panicking.
#![no_main]

use appletap::capture::Timestamp;
use appletap::decode::defrag::{Defrag, DefragLimits, Offered};
use libfuzzer_sys::fuzz_target;

const CAP: usize = 64 * 1024;

fn fragment(ctl: u8, src: u8, id: u8, offset: u16, len: u8, fill: u8) -> Vec<u8> {
    let data: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i)).collect();
    let more = ctl & 0x10 != 0;
    let offset = offset & 0x1fff;
    if ctl & 1 == 0 {
        let total = 20 + u16::from(len);
        let field = offset | if more { 0x2000 } else { 0 };
        let mut p = vec![0x45, 0];
        p.extend(total.to_be_bytes());
        p.extend(u16::from(id & 3).to_be_bytes());
        p.extend(field.to_be_bytes());
        p.extend([64, 17, 0, 0, 10, 0, 0, src & 3, 10, 0, 0, 100]);
        p.extend(data);
        p
    } else {
        let plen = 8 + u16::from(len);
        let mut p = vec![0x60, 0, 0, 0];
        p.extend(plen.to_be_bytes());
        p.extend([44, 64]);
        p.extend([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, src & 3]);
        p.extend([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfb]);
        let field = (offset << 3) | u16::from(more);
        p.extend([17, 0]);
        p.extend(field.to_be_bytes());
        p.extend(u32::from(id & 3).to_be_bytes());
        p.extend(data);
        p
    }
}

fn check(d: &Defrag) {
    let s = d.stats();
    assert!(s.held_bytes as usize <= CAP, "{s:?}");
    assert!(s.peak_held_bytes as usize <= CAP, "{s:?}");
    assert_eq!(
        s.fragments,
        s.reassembled_fragments + s.held_fragments + s.dropped_total(),
        "{s:?}"
    );
}

fuzz_target!(|input: &[u8]| {
    let mut d = Defrag::new(DefragLimits::with_max_bytes(CAP));
    let mut now = Timestamp(1_700_000_000 * Timestamp::NANOS_PER_SEC);
    let mut rest = input;
    while let [ctl, src, id, o1, o2, len, fill, tail @ ..] = rest {
        now = Timestamp(now.0 + u64::from(ctl >> 2) * Timestamp::NANOS_PER_SEC / 10);
        let (packet, next) = if ctl & 2 != 0 {
            (rest[1..].to_vec(), &[][..])
        } else {
            let offset = u16::from_be_bytes([*o1, *o2]);
            (fragment(*ctl, *src, *id, offset, *len, *fill), tail)
        };
        rest = next;
        if let Offered::Complete(r) = d.offer(&packet, packet.len() as u32, None, now) {
            assert!(r.data.len() <= 40 + 65_535, "{}", r.data.len());
            if r.data[0] >> 4 == 4 {
                assert!(r.data.len() <= 65_535, "{}", r.data.len());
            }
            let _ = appletap::decode::from_ip(&r.data);
        }
        check(&d);
    }
    d.flush();
    check(&d);
    assert_eq!(d.stats().held_fragments, 0);
    assert_eq!(d.stats().held_bytes, 0);
});
