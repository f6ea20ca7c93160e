//! Tunnel decapsulation: the input's first byte picks an outer packet (GRE, IP in IP or IPv6
//! in IPv4 or IPv6, or UDP to a tunnel port), the rest is what that packet carries, so that
//! mutations reach the tunnel headers and the packets nested inside them rather than dying at
//! the outer lengths.
#![no_main]

mod common;

use appletap::decode::{self, tunnel::MAX_DEPTH};
use libfuzzer_sys::fuzz_target;

/// (IPv6 outer, IP protocol, UDP destination port or 0)
const OUTER: [(bool, u8, u16); 16] = [
    (false, 47, 0),
    (true, 47, 0),
    (false, 4, 0),
    (true, 4, 0),
    (false, 41, 0),
    (true, 41, 0),
    (false, 17, 4789),
    (false, 17, 6081),
    (false, 17, 2152),
    (false, 17, 3544),
    (false, 17, 5072),
    (true, 17, 4789),
    (true, 17, 6081),
    (true, 17, 2152),
    (true, 17, 3544),
    (true, 17, 5072),
];

fn outer(v6: bool, proto: u8, port: u16, inner: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    if proto == 17 {
        let len = u16::try_from(8 + inner.len()).unwrap_or(u16::MAX);
        payload.extend(50_000u16.to_be_bytes());
        payload.extend(port.to_be_bytes());
        payload.extend(len.to_be_bytes());
        payload.extend([0, 0]);
    }
    payload.extend(inner);
    let mut p = if v6 {
        let mut h = vec![0x60, 0, 0, 0];
        h.extend(u16::try_from(payload.len()).unwrap_or(u16::MAX).to_be_bytes());
        h.extend([proto, 64]);
        h.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        h.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        h
    } else {
        let total = u16::try_from(20 + payload.len()).unwrap_or(u16::MAX);
        let mut h = vec![0x45, 0];
        h.extend(total.to_be_bytes());
        h.extend([0, 1, 0x40, 0, 64, proto, 0, 0, 192, 0, 2, 1, 198, 51, 100, 2]);
        h
    };
    p.extend(payload);
    p
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, inner)) = data.split_first() else {
        return;
    };
    let (v6, proto, port) = OUTER[usize::from(pick) % OUTER.len()];
    let packet = outer(v6, proto, port, inner);
    let Ok(meta) = decode::from_ip(&packet) else {
        return;
    };
    common::touch_meta(&meta);
    let within = |s: &[u8]| {
        let (start, end) = (packet.as_ptr() as usize, packet.as_ptr() as usize + packet.len());
        s.is_empty() || (s.as_ptr() as usize >= start && s.as_ptr() as usize + s.len() <= end)
    };
    assert!(within(meta.payload), "the payload is borrowed from the packet");
    if let Some(t) = meta.tunnel {
        assert!(t.depth <= MAX_DEPTH, "at most {MAX_DEPTH} tunnels: {}", t.depth);
        let (src, dst) = t.outer_addrs().expect("the outer header's addresses read");
        let want = if v6 { ("2001:db8::1", "2001:db8::2") } else { ("192.0.2.1", "198.51.100.2") };
        assert_eq!((src.to_string().as_str(), dst.to_string().as_str()), want);
        assert!(within(t.outer));
        if let Some(l) = meta.link {
            assert!(within(l.bytes()), "inner Ethernet addresses are the packet's");
        }
    }
});
