//! The fast path of IP decoding: whole, unfragmented IPv4 or IPv6 packets carrying TCP or
//! UDP, the bulk of any capture, read straight from the header bytes.
//!
//! Hand-written because etherparse's lax slicing (which handles everything else: options,
//! extension headers, fragments, ICMP, cut and inconsistent headers) was the largest single
//! cost of decoding: `LaxSlicedPacket::from_ip` took 11% of all instructions on the first
//! 100,000 packets of the benchmark capture (37M of 323M, callgrind), about 370 per packet;
//! with this path in front, `from_ip` takes 9M (93 per packet, etherparse's share included).
//!
//! It answers only where its answer is exactly etherparse's: a test compares the two on every
//! packet of the shared captures and on mutations of them, and the `decode_raw_ip` fuzz
//! target on every input. Anything unusual returns `None` and goes to etherparse.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{PacketMeta, ip_proto};

const IPV4_MIN_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const TCP_MIN_HEADER: usize = 20;
const UDP_HEADER: usize = 8;

/// The decoded headers of an ordinary TCP or UDP packet; `None` for anything else.
pub(super) fn tcp_udp(data: &[u8]) -> Option<PacketMeta<'_>> {
    let first = *data.first()?;
    let (src, dst, proto, payload) = match first >> 4 {
        4 => {
            let h: &[u8; IPV4_MIN_HEADER] = data.first_chunk()?;
            let header_len = usize::from(first & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
            // Fragments (MF set or an offset) and lengths that disagree with the bytes (cut
            // by the snap length, or inconsistent) are etherparse's to judge.
            let frag = u16::from_be_bytes([h[6], h[7]]) & 0x3fff;
            if header_len < IPV4_MIN_HEADER || total < header_len || total > data.len() || frag != 0
            {
                return None;
            }
            let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
            let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
            (
                IpAddr::V4(src),
                IpAddr::V4(dst),
                h[9],
                data.get(header_len..total)?,
            )
        }
        6 => {
            let h: &[u8; IPV6_HEADER] = data.first_chunk()?;
            let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
            // A zero length (jumbogram) or one past the bytes is etherparse's to judge; so is
            // any extension header (next header other than TCP or UDP).
            if len == 0 || IPV6_HEADER + len > data.len() {
                return None;
            }
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&h[8..24]).ok()?);
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&h[24..40]).ok()?);
            (
                IpAddr::V6(src),
                IpAddr::V6(dst),
                h[6],
                data.get(IPV6_HEADER..IPV6_HEADER + len)?,
            )
        }
        _ => return None,
    };
    let word = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    match proto {
        ip_proto::TCP => {
            let t: &[u8; TCP_MIN_HEADER] = payload.first_chunk()?;
            let header_len = usize::from(t[12] >> 4) * 4;
            if header_len < TCP_MIN_HEADER {
                return None;
            }
            Some(PacketMeta {
                src,
                dst,
                proto,
                src_port: word(t, 0),
                dst_port: word(t, 2),
                tcp_flags: t[13],
                tcp_seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
                payload: payload.get(header_len..)?,
                icmp: None,
            })
        }
        ip_proto::UDP => {
            let u: &[u8; UDP_HEADER] = payload.first_chunk()?;
            let len = usize::from(word(u, 4));
            // The UDP length must agree with the IP payload for the answer to be plain.
            if len != payload.len() {
                return None;
            }
            Some(PacketMeta {
                src,
                dst,
                proto,
                src_port: word(u, 0),
                dst_port: word(u, 2),
                tcp_flags: 0,
                tcp_seq: 0,
                payload: &payload[UDP_HEADER..],
                icmp: None,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{PacketMeta, lax_from_ip};
    use super::tcp_udp;
    use crate::capture::file::CaptureFile;
    use crate::decode::link;

    fn same(a: &PacketMeta<'_>, b: &PacketMeta<'_>) -> bool {
        (
            a.src,
            a.dst,
            a.proto,
            a.src_port,
            a.dst_port,
            a.tcp_flags,
            a.tcp_seq,
        ) == (
            b.src,
            b.dst,
            b.proto,
            b.src_port,
            b.dst_port,
            b.tcp_flags,
            b.tcp_seq,
        ) && std::ptr::eq(a.payload, b.payload)
            && a.icmp.is_none()
            && b.icmp.is_none()
    }

    /// Checks the fast path against etherparse on one IP packet.
    fn check(ip: &[u8], what: &str) -> bool {
        let Some(fast) = tcp_udp(ip) else {
            return false;
        };
        let lax = lax_from_ip(ip).unwrap_or_else(|e| {
            panic!("{what}: fast path read a packet etherparse refuses ({e:?})")
        });
        assert!(
            same(&fast, &lax),
            "{what}: fast {fast:?} != etherparse {lax:?}"
        );
        true
    }

    #[test]
    fn fast_path_agrees_with_etherparse_on_every_shared_capture_packet() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            panic!("the shared captures are needed: {}", dir.display());
        };
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let (mut packets, mut fast) = (0u64, 0u64);
        for e in entries.flatten() {
            let path = e.path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
                continue;
            }
            let Ok(mut cap) = CaptureFile::open(&path) else {
                continue;
            };
            let mut i = 0;
            while let Some(Ok(p)) = cap.next_packet() {
                i += 1;
                let Ok(net) = link::network_slice(p.link, p.data) else {
                    continue;
                };
                packets += 1;
                fast += u64::from(check(net.data, &format!("{name} #{i}")));
                // Mutations of the header bytes: every answer the fast path gives must
                // still be etherparse's.
                for _ in 0..16 {
                    let mut m = net.data.to_vec();
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    if m.is_empty() {
                        break;
                    }
                    let at = (state as usize) % m.len().min(64);
                    m[at] = (state >> 32) as u8;
                    let cut = m.len() - ((state >> 40) as usize % 3).min(m.len());
                    check(
                        &m[..cut],
                        &format!("{name} #{i} mutated at {at}, cut to {cut}"),
                    );
                }
            }
        }
        // Most packets of the shared captures are ordinary TCP/UDP: the fast path must
        // take them, or it is not the fast path.
        assert!(packets > 20_000, "{packets} packets read");
        assert!(
            fast * 10 > packets * 8,
            "fast path took {fast} of {packets} packets"
        );
    }
}
