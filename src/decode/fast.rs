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

use std::net::IpAddr;

use super::{PacketMeta, Skip};
use crate::wire::ip::{IpError, Ipv4Packet, Ipv6Packet, ip_proto};
use crate::wire::tcp::TcpSegment;
use crate::wire::udp::UdpDatagram;

/// The decoded headers of an ordinary TCP or UDP packet, or `MalformedIp` for an IPv6
/// extension header that runs past a whole packet; `None` for anything else.
#[cfg(test)]
pub(super) fn from_ip(data: &[u8]) -> Option<Result<PacketMeta<'_>, Skip>> {
    let mut meta = PacketMeta::EMPTY;
    Some(from_ip_into(data, &mut meta)?.map(|()| meta))
}

/// [`from_ip`] writing the headers into `out` (whose fields are all set when it answers
/// `Some(Ok(()))`). Written in place, field by field: built as a value and returned, the
/// headers were copied twice on the way to the dispatcher, and the first copy read the
/// fields back with wide loads right after narrow stores wrote them (a failed store
/// forward), which took a quarter of the dispatcher's time (perf, cpu-clock samples).
#[inline(always)]
pub(super) fn from_ip_into<'a>(
    data: &'a [u8],
    out: &mut PacketMeta<'a>,
) -> Option<Result<(), Skip>> {
    let (src, dst, proto, payload) = match *data.first()? >> 4 {
        4 => {
            // Fragments and lengths that disagree with the bytes (cut by the snap length, or
            // inconsistent) are etherparse's to judge.
            let ip = Ipv4Packet::new_checked(data).ok()?;
            if ip.is_fragment() {
                return None;
            }
            let (src, dst) = (IpAddr::V4(ip.src()), IpAddr::V4(ip.dst()));
            (src, dst, ip.protocol(), ip.payload())
        }
        6 => {
            // A zero length (jumbogram) or one past the bytes is etherparse's to judge.
            let ip = Ipv6Packet::new_checked(data).ok()?;
            if ip.payload_len() == 0 {
                return None;
            }
            let exts = ip.extensions();
            match exts.error {
                None if !exts.fragmenting => {}
                // Whole by its payload length, yet a header runs past it: not a transport
                // (issue 13). A header after a fragment header may not be a header at all:
                // etherparse counts those as fragments.
                Some(IpError::Truncated) if !exts.fragmenting => {
                    return Some(Err(Skip::MalformedIp));
                }
                _ => return None,
            }
            let (src, dst) = (IpAddr::V6(ip.src()), IpAddr::V6(ip.dst()));
            (src, dst, exts.next_header, exts.payload)
        }
        _ => return None,
    };
    match proto {
        ip_proto::TCP => {
            let tcp = TcpSegment::new_checked(payload)?;
            out.src_port = tcp.src_port();
            out.dst_port = tcp.dst_port();
            out.tcp_flags = tcp.flags();
            out.tcp_seq = tcp.seq();
            out.payload = tcp.payload();
        }
        ip_proto::UDP => {
            let udp = UdpDatagram::new_checked(payload)?;
            // The UDP length must agree with the IP payload for the answer to be plain.
            if udp.length() != payload.len() {
                return None;
            }
            out.src_port = udp.src_port();
            out.dst_port = udp.dst_port();
            out.tcp_flags = 0;
            out.tcp_seq = 0;
            out.payload = udp.payload();
        }
        _ => return None,
    }
    out.src = src;
    out.dst = dst;
    out.proto = proto;
    out.icmp = None;
    out.link = None;
    out.tunnel = None;
    Some(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::super::{PacketMeta, lax_from_ip};
    use super::from_ip;
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
        let Some(fast) = from_ip(ip) else {
            return false;
        };
        match (fast, lax_from_ip(ip)) {
            (Ok(fast), Ok(lax)) => assert!(
                same(&fast, &lax),
                "{what}: fast {fast:?} != etherparse {lax:?}"
            ),
            (Err(fast), Err(lax)) => assert_eq!(fast, lax, "{what}"),
            (fast, lax) => panic!("{what}: fast {fast:?} != etherparse {lax:?}"),
        }
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
                    state = crate::testing::xorshift(state);
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
