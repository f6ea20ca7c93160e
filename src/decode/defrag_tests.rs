use super::*;
use crate::decode::from_ip;

const S: u64 = Timestamp::NANOS_PER_SEC;

/// A UDP datagram (IPv4 payload) from port 53 to 40000 carrying `len` bytes of a pattern.
fn udp(len: usize, seed: u8) -> Vec<u8> {
    let total = u16::try_from(8 + len).unwrap();
    let mut d = vec![0, 53, 0x9c, 0x40];
    d.extend(total.to_be_bytes());
    d.extend([0, 0]);
    d.extend((0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)));
    d
}

/// An IPv4 fragment of datagram `id` from `src`: `data` at byte `offset`, `more` to come.
fn v4(src: [u8; 4], id: u16, offset: usize, more: bool, data: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + data.len()).unwrap();
    let field = u16::try_from(offset / 8).unwrap() | if more { 0x2000 } else { 0 };
    let mut p = vec![0x45, 0];
    p.extend(total.to_be_bytes());
    p.extend(id.to_be_bytes());
    p.extend(field.to_be_bytes());
    p.extend([64, ip_proto::UDP, 0, 0]);
    p.extend(src);
    p.extend([192, 168, 1, 2]);
    p.extend(data);
    p
}

/// An IPv6 fragment (with a destination options header before the fragment header).
fn v6(id: u32, offset: usize, more: bool, data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + 8 + data.len()).unwrap();
    let mut p = vec![0x60, 0, 0, 0];
    p.extend(len.to_be_bytes());
    p.extend([ip_proto::DEST_OPTIONS, 64]);
    p.extend([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfb]);
    p.extend([ip_proto::FRAGMENT, 0, 1, 4, 0, 0, 0, 0]);
    let field = u16::try_from(offset).unwrap() | u16::from(more);
    p.extend([ip_proto::UDP, 0]);
    p.extend(field.to_be_bytes());
    p.extend(id.to_be_bytes());
    p.extend(data);
    p
}

/// Splits `datagram` into IPv4 fragments of `size` bytes (a multiple of 8).
fn split_v4(src: [u8; 4], id: u16, datagram: &[u8], size: usize) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> = datagram.chunks(size).collect();
    let n = chunks.len();
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| v4(src, id, i * size, i + 1 < n, c))
        .collect()
}

fn offer_all(d: &mut Defrag, frags: &[Vec<u8>], t: u64) -> Vec<Offered> {
    frags
        .iter()
        .map(|f| d.offer(f, f.len() as u32 + 14, None, Timestamp(t)))
        .collect()
}

fn complete(o: &[Offered]) -> Option<&Reassembled> {
    o.iter().find_map(|o| match o {
        Offered::Complete(r) => Some(r),
        _ => None,
    })
}

/// Every fragment is reassembled, held or dropped for one reason.
fn accounted(d: &Defrag) {
    let s = d.stats();
    assert_eq!(
        s.fragments,
        s.reassembled_fragments + s.held_fragments + s.dropped_total(),
        "{s:?}"
    );
}

#[test]
fn fragments_in_any_order_make_the_datagram() {
    let datagram = udp(3000, 1);
    let mut frags = split_v4([10, 0, 0, 1], 7, &datagram, 1480);
    frags.reverse();
    let mut d = Defrag::default();
    let out = offer_all(&mut d, &frags, 5 * S);
    assert_eq!(out[..2], [Offered::Held, Offered::Held]);
    let r = complete(&out).unwrap();
    assert_eq!(
        r.orig_len,
        frags.iter().map(|f| f.len() as u32 + 14).sum::<u32>()
    );
    let m = from_ip(&r.data).unwrap();
    assert_eq!((m.src_port, m.dst_port, m.payload.len()), (53, 40000, 3000));
    assert_eq!(m.payload, &datagram[8..]);
    let s = d.stats();
    assert_eq!(
        (s.reassembled, s.reassembled_fragments, s.held_bytes),
        (1, 3, 0)
    );
    assert_eq!(d.take_settled(), (2, 0));
    accounted(&d);
}

#[test]
fn ipv6_fragments_make_the_datagram_without_the_fragment_header() {
    let datagram = udp(2000, 2);
    let (a, b) = datagram.split_at(1232);
    let mut d = Defrag::default();
    assert_eq!(
        d.offer(&v6(9, 0, true, a), 1300, None, Timestamp(S)),
        Offered::Held
    );
    let Offered::Complete(r) = d.offer(&v6(9, 1232, false, b), 900, None, Timestamp(S)) else {
        panic!("not complete");
    };
    // Header, destination options (now naming UDP), then the datagram.
    assert_eq!(r.data.len(), 40 + 8 + datagram.len());
    assert_eq!(r.data[6], ip_proto::DEST_OPTIONS);
    assert_eq!(r.data[40], ip_proto::UDP);
    let m = from_ip(&r.data).unwrap();
    assert_eq!(
        (m.proto, m.src_port, m.payload),
        (ip_proto::UDP, 53, &datagram[8..])
    );
    accounted(&d);
}

#[test]
fn overlaps_keep_the_first_bytes_and_count_conflicts() {
    let datagram = udp(40, 3);
    let mut d = Defrag::default();
    let src = [10, 0, 0, 1];
    d.offer(
        &v4(src, 1, 0, true, &datagram[..24]),
        60,
        None,
        Timestamp(S),
    );
    // The same bytes again, overlapping: an overlap, not a conflict.
    d.offer(
        &v4(src, 1, 16, true, &datagram[16..32]),
        60,
        None,
        Timestamp(S),
    );
    // Other bytes over 16..24 (and new ones after): first wins.
    let mut forged = datagram[16..48].to_vec();
    forged[0] ^= 0xff;
    let out = d.offer(&v4(src, 1, 16, false, &forged), 60, None, Timestamp(S));
    let Offered::Complete(r) = out else {
        panic!("{out:?}")
    };
    assert_eq!(&r.data[20..], &datagram[..]);
    let s = d.stats();
    assert_eq!(
        (s.overlaps, s.conflicts, s.reassembled_fragments),
        (1, 1, 3)
    );
    accounted(&d);
}

#[test]
fn a_missing_piece_times_out_by_packet_time() {
    let frags = split_v4([10, 0, 0, 1], 2, &udp(3000, 4), 1480);
    let mut d = Defrag::default();
    offer_all(&mut d, &frags[..2], 100 * S);
    assert_eq!(d.stats().held_fragments, 2);
    // 30 s later it is still waiting; past that, the next fragment (of another datagram)
    // finds it expired.
    let other = split_v4([10, 0, 0, 9], 3, &udp(100, 5), 64);
    d.offer(&other[0], 100, None, Timestamp(130 * S));
    assert_eq!(d.stats().dropped[DefragDrop::Timeout as usize], 0);
    d.offer(&other[1], 100, None, Timestamp(131 * S));
    let s = d.stats();
    assert_eq!(s.dropped[DefragDrop::Timeout as usize], 2);
    assert_eq!(d.take_settled(), (2 + 1, 2 * (1500 + 14)));
    d.flush();
    assert_eq!(d.stats().dropped[DefragDrop::Incomplete as usize], 0);
    accounted(&d);
}

#[test]
fn too_many_fragments_drop_the_datagram() {
    // 8-byte fragments: 129 of them for 1,032 bytes.
    let frags = split_v4([10, 0, 0, 1], 4, &udp(1024, 6), 8);
    assert_eq!(frags.len(), 129);
    let mut d = Defrag::default();
    let out = offer_all(&mut d, &frags, S);
    assert!(complete(&out).is_none());
    assert_eq!(
        d.stats().dropped[DefragDrop::TooManyFragments as usize],
        129
    );
    // 128 tiny fragments are still a datagram.
    let frags = split_v4([10, 0, 0, 1], 5, &udp(1016, 6), 8);
    assert_eq!(frags.len(), 128);
    assert!(complete(&offer_all(&mut d, &frags, S)).is_some());
    accounted(&d);
}

#[test]
fn past_65535_bytes_is_too_big() {
    let mut d = Defrag::default();
    d.offer(
        &v4([10, 0, 0, 1], 6, 0, true, &[0; 64]),
        100,
        None,
        Timestamp(S),
    );
    let out = d.offer(
        &v4([10, 0, 0, 1], 6, 65_512, false, &[0; 16]),
        100,
        None,
        Timestamp(S),
    );
    assert_eq!(out, Offered::Dropped);
    assert_eq!(d.stats().dropped[DefragDrop::TooBig as usize], 2);
    accounted(&d);
}

#[test]
fn fragments_that_disagree_on_the_end_are_inconsistent() {
    let mut d = Defrag::default();
    let src = [10, 0, 0, 1];
    d.offer(&v4(src, 8, 0, true, &[1; 16]), 60, None, Timestamp(S));
    d.offer(&v4(src, 8, 32, false, &[1; 8]), 60, None, Timestamp(S));
    d.offer(&v4(src, 8, 40, false, &[1; 8]), 60, None, Timestamp(S));
    assert_eq!(d.stats().dropped[DefragDrop::Inconsistent as usize], 3);
    let out = d.offer(&[0x45, 0, 0], 3, None, Timestamp(S));
    assert_eq!(out, Offered::Dropped);
    assert_eq!(d.stats().dropped[DefragDrop::Malformed as usize], 1);
    accounted(&d);
}

#[test]
fn a_flood_of_never_completing_datagrams_stays_within_the_caps() {
    let limits = DefragLimits::with_max_bytes(256 * 1024);
    let mut d = Defrag::new(limits);
    for i in 0..20_000u32 {
        let b = i.to_be_bytes();
        let f = v4([10, b[1], b[2], b[3]], i as u16, 0, true, &[0; 1024]);
        d.offer(&f, 1100, None, Timestamp(S + u64::from(i)));
        let s = d.stats();
        assert!(s.held_bytes as usize <= limits.max_bytes, "{s:?}");
    }
    // One source alone may hold its share, no more.
    for i in 0..2_000u16 {
        let f = v4([10, 99, 99, 99], i, 0, true, &[0; 1024]);
        d.offer(&f, 1100, None, Timestamp(2 * S));
    }
    let s = d.stats();
    assert!(s.peak_held_bytes as usize <= limits.max_bytes, "{s:?}");
    assert!(
        s.peak_held_datagrams as usize <= limits.max_datagrams,
        "{s:?}"
    );
    assert!(s.dropped[DefragDrop::TotalCap as usize] > 10_000, "{s:?}");
    assert!(s.dropped[DefragDrop::SourceCap as usize] > 1_000, "{s:?}");
    // A datagram that completes right away still gets through.
    let frags = split_v4([10, 1, 1, 1], 1, &udp(3000, 7), 1480);
    assert!(complete(&offer_all(&mut d, &frags, 2 * S)).is_some());
    accounted(&d);
}

#[test]
fn arbitrary_bytes_never_panic_and_stay_accounted() {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut d = Defrag::new(DefragLimits::with_max_bytes(100_000));
    let base = split_v4([10, 0, 0, 1], 1, &udp(3000, 1), 1480);
    for i in 0..5_000u64 {
        state = crate::testing::xorshift(state);
        let mut f = base[(state % 3) as usize].clone();
        let at = (state >> 8) as usize % 20;
        f[at] = (state >> 16) as u8;
        let cut = f.len() - ((state >> 24) as usize % 4).min(f.len());
        d.offer(&f[..cut], 100, None, Timestamp(i * S / 10));
        accounted(&d);
    }
}
