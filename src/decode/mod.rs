//! Packet decoding: link layer to network and transport headers, borrowed from the capture
//! buffer. A packet that cannot be decoded is an outcome ([`Skip`]), counted by the caller.

pub mod defrag;
mod fast;
pub mod link;
pub mod tunnel;

use std::net::IpAddr;

use etherparse::err::Layer;
use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};

use crate::capture::LinkType;
use crate::wire::icmp::{self, IcmpMessage};
use crate::wire::link::{EtherType, LinkError};

pub use crate::wire::icmp::Quoted;
pub use crate::wire::ip::ip_proto;
pub use crate::wire::tcp::tcp_flags;
pub use link::LinkAddrs;
pub use tunnel::{Tunnel, TunnelEnd, TunnelKind};

/// Why a packet was not decoded. Each reason is a counter in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// A link-layer frame that carries no IP (ARP, EAPOL, LLDP, PPPoE discovery, ...).
    NotIp,
    /// The link-layer header is cut short.
    LinkTruncated,
    /// A link type appletap does not decode.
    UnsupportedLinkType,
    /// The link-layer header is inconsistent.
    LinkMalformed,
    /// The IP header is cut short or inconsistent.
    MalformedIp,
    /// An IP fragment (first or not). The dispatcher reassembles them ([`defrag`]); a
    /// fragment is counted skipped here once settled: every fragment the reassembler dropped,
    /// and all but one of each reassembled datagram's (the datagram is one packet decoded).
    IpFragment,
    /// The TCP/UDP/ICMP header is cut short or inconsistent.
    MalformedTransport,
}

impl Skip {
    /// Every reason, in report order.
    pub const ALL: [Self; 7] = [
        Self::NotIp,
        Self::LinkTruncated,
        Self::UnsupportedLinkType,
        Self::LinkMalformed,
        Self::MalformedIp,
        Self::IpFragment,
        Self::MalformedTransport,
    ];

    /// Stable name used in reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotIp => "not-ip",
            Self::LinkTruncated => "link-truncated",
            Self::UnsupportedLinkType => "unsupported-link-type",
            Self::LinkMalformed => "link-malformed",
            Self::MalformedIp => "malformed-ip",
            Self::IpFragment => "ip-fragment",
            Self::MalformedTransport => "malformed-transport",
        }
    }

    /// Index into a counter array.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// An ICMP or ICMPv6 message's type, code and, for error messages, the quoted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpInfo<'a> {
    /// ICMPv6 rather than ICMP.
    pub v6: bool,
    /// Message type.
    pub icmp_type: u8,
    /// Message code.
    pub code: u8,
    /// For error messages (destination unreachable, time exceeded, ...): the quoted IP header
    /// and at least 8 bytes of its payload. Empty otherwise.
    pub quoted: &'a [u8],
}

impl IcmpInfo<'_> {
    /// Whether this is a destination-unreachable message (ICMP type 3, ICMPv6 type 1), which
    /// covers "administratively prohibited".
    pub fn is_unreachable(&self) -> bool {
        icmp::is_unreachable(self.v6, self.icmp_type)
    }

    /// For a destination-unreachable message: the addresses and ports of the packet it
    /// quotes (its source is the original sender), if they can be read (see
    /// [`icmp::quoted_packet`]).
    pub fn quoted_packet(&self) -> Option<Quoted> {
        if !self.is_unreachable() || self.quoted.is_empty() {
            return None;
        }
        icmp::quoted_packet(self.quoted)
    }
}

/// The decoded headers of one IP packet, borrowed from the capture buffer.
#[derive(Debug, Clone, Copy)]
pub struct PacketMeta<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol of the transport (after IPv6 extension headers).
    pub proto: u8,
    /// Source port (0 if the protocol has none).
    pub src_port: u16,
    /// Destination port (0 if the protocol has none).
    pub dst_port: u16,
    /// TCP flags byte (0 for other protocols).
    pub tcp_flags: u8,
    /// TCP sequence number.
    pub tcp_seq: u32,
    /// Transport payload (TCP/UDP data; the IP payload for other protocols).
    pub payload: &'a [u8],
    /// ICMP details for ICMP and ICMPv6 packets.
    pub icmp: Option<IcmpInfo<'a>>,
    /// The link-layer addresses, where the frame has them (Ethernet, Ethernet inside PKTAP,
    /// 802.11 data frames, or the inner frame of a tunnel that carries Ethernet); `None` for
    /// other link layers, for packets decoded from IP and for packets out of a tunnel that
    /// carries IP (the outer frame's addresses are the tunnel endpoints').
    pub link: Option<LinkAddrs<'a>>,
    /// For a packet that came through a tunnel (see [`tunnel`]): what is kept of it.
    pub tunnel: Option<Tunnel<'a>>,
}

impl PacketMeta<'_> {
    /// Headers with nothing in them (unspecified addresses, no ports, no payload): what
    /// [`decode_into`] writes over.
    pub const EMPTY: PacketMeta<'static> = PacketMeta {
        src: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        dst: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        proto: 0,
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        tcp_seq: 0,
        payload: &[],
        icmp: None,
        link: None,
        tunnel: None,
    };

    /// Whether the TCP flags include every bit of `mask`.
    pub fn has_flags(&self, mask: u8) -> bool {
        self.tcp_flags & mask == mask
    }
}

/// Decodes a captured frame down to its transport header.
///
/// # Errors
/// A [`Skip`] reason when the frame carries no IP or its headers are cut short or malformed.
#[inline]
pub fn decode(link_type: LinkType, data: &[u8]) -> Result<PacketMeta<'_>, Skip> {
    let mut meta = PacketMeta::EMPTY;
    decode_into(link_type, data, &mut meta).map(|()| meta)
}

/// [`decode`] writing the headers into `out` (every field, when it answers `Ok`; what it
/// leaves there on an error means nothing).
///
/// # Errors
/// As [`decode`].
// Inlined into the dispatcher, which reads the headers where they were written: returned as
// a value, the headers (128 bytes) were copied on the way, and each copy read them back with
// wide loads right after narrow stores wrote them (a failed store forward each time): a
// quarter of the dispatcher's time (perf, cpu-clock samples on the benchmark capture).
// Always: with the 802.11 link types `#[inline]` alone no longer did (29 more a packet).
#[inline(always)]
pub fn decode_into<'a>(
    link_type: LinkType,
    data: &'a [u8],
    out: &mut PacketMeta<'a>,
) -> Result<(), Skip> {
    if let Some((ip, addrs)) = link::plain_ethernet_ip(link_type, data) {
        from_ip_into(ip, out)?;
        if out.tunnel.is_none_or(|t| !t.is_decapsulated()) {
            out.link = Some(addrs);
        }
        return Ok(());
    }
    let net = link::network_slice(link_type, data).map_err(|e| match e {
        LinkError::Truncated => Skip::LinkTruncated,
        LinkError::UnsupportedLinkType(_) => Skip::UnsupportedLinkType,
        LinkError::Malformed => Skip::LinkMalformed,
    })?;
    if net.ether_type != EtherType::IPV4 && net.ether_type != EtherType::IPV6 {
        return Err(Skip::NotIp);
    }
    from_ip_into(net.data, out)?;
    // A packet out of a tunnel has its inner frame's addresses, or none; the packet of a
    // tunnel whose payload was not read is the tunnel's own, and has the frame's.
    if out.tunnel.is_none_or(|t| !t.is_decapsulated()) {
        out.link = link::addresses(link_type, data);
    }
    Ok(())
}

/// Source, destination and payload of the IP header of a sliced packet.
fn ip_parts<'a, 's>(
    sliced: &'s LaxSlicedPacket<'a>,
) -> Option<(IpAddr, IpAddr, &'s etherparse::LaxIpPayloadSlice<'a>)> {
    match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => Some((
            IpAddr::V4(v4.header().source_addr()),
            IpAddr::V4(v4.header().destination_addr()),
            v4.payload(),
        )),
        Some(LaxNetSlice::Ipv6(v6)) => Some((
            IpAddr::V6(v6.header().source_addr()),
            IpAddr::V6(v6.header().destination_addr()),
            v6.payload(),
        )),
        _ => None,
    }
}

/// Decodes an IP packet (v4 or v6, by its version nibble), and the packet inside it if it is
/// a tunnel (see [`tunnel`]).
///
/// Lax parsing on purpose: a packet cut by the capture's snap length still has usable headers.
///
/// # Errors
/// A [`Skip`] reason when the IP or transport headers are cut short or malformed.
#[inline]
pub fn from_ip(data: &[u8]) -> Result<PacketMeta<'_>, Skip> {
    let mut meta = PacketMeta::EMPTY;
    from_ip_into(data, &mut meta).map(|()| meta)
}

/// [`from_ip`] writing the headers into `out` (see [`decode_into`]).
#[inline(always)]
fn from_ip_into<'a>(data: &'a [u8], out: &mut PacketMeta<'a>) -> Result<(), Skip> {
    plain_from_ip_into(data, out)?;
    // TCP, the bulk of any capture, is never a tunnel: one compare.
    if out.proto != ip_proto::TCP && tunnel::may_carry(out) {
        tunnel::decapsulate(data, out);
    }
    Ok(())
}

/// [`from_ip`] without its fast path, for the fuzz target that checks the two agree.
#[doc(hidden)]
pub fn from_ip_by_etherparse(data: &[u8]) -> Result<PacketMeta<'_>, Skip> {
    let mut decoded = lax_from_ip(data);
    if let Ok(meta) = &mut decoded
        && meta.proto != ip_proto::TCP
        && tunnel::may_carry(meta)
    {
        tunnel::decapsulate(data, meta);
    }
    decoded
}

/// One IP packet's headers, tunnel or not.
#[inline(always)]
fn plain_from_ip(data: &[u8]) -> Result<PacketMeta<'_>, Skip> {
    let mut meta = PacketMeta::EMPTY;
    plain_from_ip_into(data, &mut meta).map(|()| meta)
}

/// [`plain_from_ip`] writing the headers into `out`: the fast path writes them in place; the
/// rare packets etherparse reads are copied in.
#[inline(always)]
fn plain_from_ip_into<'a>(data: &'a [u8], out: &mut PacketMeta<'a>) -> Result<(), Skip> {
    match fast::from_ip_into(data, out) {
        Some(answer) => answer,
        None => {
            *out = lax_from_ip(data)?;
            Ok(())
        }
    }
}

/// [`from_ip`] by etherparse alone: every packet the fast path leaves.
fn lax_from_ip(data: &[u8]) -> Result<PacketMeta<'_>, Skip> {
    let sliced = LaxSlicedPacket::from_ip(data).map_err(|_| Skip::MalformedIp)?;
    let (src, dst, ip_payload) = ip_parts(&sliced).ok_or(Skip::MalformedIp)?;
    let proto = ip_payload.ip_number.0;
    let mut meta = PacketMeta {
        src,
        dst,
        proto,
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        tcp_seq: 0,
        payload: ip_payload.payload,
        icmp: None,
        link: None,
        tunnel: None,
    };
    match &sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => {
            meta.src_port = tcp.source_port();
            meta.dst_port = tcp.destination_port();
            // Byte 13 of the TCP header holds CWR..FIN; the slice guarantees 20 bytes.
            meta.tcp_flags = tcp.header_slice().get(13).copied().unwrap_or(0);
            meta.tcp_seq = tcp.sequence_number();
            meta.payload = tcp.payload();
        }
        Some(TransportSlice::Udp(udp)) => {
            meta.src_port = udp.source_port();
            meta.dst_port = udp.destination_port();
            meta.payload = udp.payload();
        }
        Some(TransportSlice::Icmpv4(icmp)) => {
            meta.icmp = icmp_info(icmp.slice(), false);
            meta.payload = icmp.payload();
        }
        Some(TransportSlice::Icmpv6(icmp)) => {
            meta.icmp = icmp_info(icmp.slice(), true);
            meta.payload = icmp.payload();
        }
        _ => {
            if ip_payload.fragmented {
                return Err(Skip::IpFragment);
            }
            // An extension or authentication header that could not be read (cut short, past
            // the packet, or inconsistent): etherparse stops there and names that header's
            // number as the payload's protocol, which is no transport at all. See: issue 13.
            if sliced
                .stop_err
                .as_ref()
                .is_some_and(|(_, layer)| stopped_in_ip(*layer))
            {
                return Err(Skip::MalformedIp);
            }
            if matches!(
                proto,
                ip_proto::TCP | ip_proto::UDP | ip_proto::ICMP | ip_proto::ICMPV6
            ) {
                // The transport header was expected but could not be read.
                return Err(Skip::MalformedTransport);
            }
        }
    }
    Ok(meta)
}

/// Whether etherparse stopped inside the IP layer (in an extension header: the IP header
/// itself is an `Err` of `from_ip`), rather than in the transport header.
fn stopped_in_ip(layer: Layer) -> bool {
    matches!(
        layer,
        Layer::IpHeader
            | Layer::Ipv4Header
            | Layer::Ipv4Packet
            | Layer::IpAuthHeader
            | Layer::Ipv6Header
            | Layer::Ipv6Packet
            | Layer::Ipv6ExtHeader
            | Layer::Ipv6HopByHopHeader
            | Layer::Ipv6DestOptionsHeader
            | Layer::Ipv6RouteHeader
            | Layer::Ipv6FragHeader
    )
}

/// The ICMP details of a message etherparse has sliced (its 8-byte header is there).
fn icmp_info(message: &[u8], v6: bool) -> Option<IcmpInfo<'_>> {
    let m = IcmpMessage::new_checked(message, v6)?;
    Some(IcmpInfo {
        v6,
        icmp_type: m.icmp_type(),
        code: m.code(),
        quoted: m.quoted(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rustfmt::skip]
    static TCP_SYN_V4: [u8; 40] = [
        0x45, 0x00, 0x00, 0x28, // version/IHL, DSCP, total length 40
        0x00, 0x01, 0x40, 0x00, // id, flags DF
        0x40, 0x06, 0x00, 0x00, // TTL 64, proto TCP, checksum (unchecked)
        192, 168, 2, 17,        // source
        17, 57, 144, 116,       // destination
        0xc3, 0x50, 0x14, 0x67, // src port 50000, dst port 5223
        0, 0, 0, 1,             // seq
        0, 0, 0, 0,             // ack
        0x50, 0x02, 0xff, 0xff, // data offset 5, flags SYN, window
        0, 0, 0, 0,             // checksum, urgent
    ];

    #[test]
    fn tcp_syn_fields() {
        let m = from_ip(&TCP_SYN_V4).unwrap();
        assert_eq!(m.src.to_string(), "192.168.2.17");
        assert_eq!(m.dst.to_string(), "17.57.144.116");
        assert_eq!(
            (m.proto, m.src_port, m.dst_port),
            (ip_proto::TCP, 50000, 5223)
        );
        assert!(m.has_flags(tcp_flags::SYN) && !m.has_flags(tcp_flags::ACK));
        assert!(m.payload.is_empty());
    }

    #[test]
    fn truncated_transport_is_malformed_not_a_panic() {
        for cut in 0..TCP_SYN_V4.len() {
            let r = from_ip(&TCP_SYN_V4[..cut]);
            if cut < 20 {
                assert_eq!(r.unwrap_err(), Skip::MalformedIp, "cut {cut}");
            } else {
                assert_eq!(r.unwrap_err(), Skip::MalformedTransport, "cut {cut}");
            }
        }
    }

    #[test]
    fn non_first_fragment_is_counted_as_fragment() {
        let mut p = TCP_SYN_V4;
        p[6] = 0x00;
        p[7] = 0x10; // fragment offset 16 * 8 bytes
        assert_eq!(from_ip(&p).unwrap_err(), Skip::IpFragment);
    }

    /// An IPv6 packet carrying `exts` (extension headers, as bytes) then an 8-byte UDP
    /// header, with `first` as the IPv6 next header and a payload length that covers it all.
    fn ipv6_with(first: u8, exts: &[u8]) -> Vec<u8> {
        let udp = [0x14, 0xe9, 0x14, 0xe9, 0x00, 0x08, 0x00, 0x00];
        let len = u16::try_from(exts.len() + udp.len()).unwrap();
        let mut p = vec![0x60, 0, 0, 0];
        p.extend(len.to_be_bytes());
        p.extend([first, 64]);
        p.extend([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfb]);
        p.extend(exts);
        p.extend(udp);
        p
    }

    /// Both decoders, and `decode` under the raw-IP link type, give `want`.
    fn all_say(packet: &[u8], want: Skip, what: &str) {
        assert_eq!(
            from_ip(packet).map(|m| m.proto),
            Err(want),
            "{what}: from_ip"
        );
        assert_eq!(
            from_ip_by_etherparse(packet).map(|m| m.proto),
            Err(want),
            "{what}: etherparse"
        );
        assert_eq!(
            decode(LinkType::RAW, packet).map(|m| m.proto),
            Err(want),
            "{what}: decode"
        );
    }

    #[test]
    fn ipv6_extension_header_past_the_end_is_malformed_ip() {
        // See: issue 13. A real mDNS packet with a Destination Options header whose length
        // (2,048 bytes) runs past the packet; it was a flow of protocol 60.
        let packet = include_bytes!("../../fixtures/packets/ipv6_dest_options_past_the_end.bin");
        all_say(packet, Skip::MalformedIp, "whole packet");
        // The same header cut by the snap length instead (the payload length says more).
        all_say(&packet[..44], Skip::MalformedIp, "cut inside the header");
        // With a length that fits, it is the UDP packet it always was.
        let mut fits = packet.to_vec();
        fits[41] = 0;
        let m = from_ip(&fits).unwrap();
        assert_eq!(
            (m.proto, m.src_port, m.dst_port),
            (ip_proto::UDP, 5353, 5353)
        );
        assert_eq!(from_ip_by_etherparse(&fits).unwrap().payload, m.payload);
    }

    #[test]
    fn ipv6_fragment_header_cut_short_is_malformed_ip() {
        let p = ipv6_with(ip_proto::FRAGMENT, &[]);
        // The UDP header's 8 bytes read as a fragment header: take 4 of them away.
        let mut cut = p[..44].to_vec();
        cut[5] = 4;
        all_say(&cut, Skip::MalformedIp, "fragment header of 4 bytes");
        // A whole fragment header that fragments is a fragment, not malformed.
        let frag = ipv6_with(ip_proto::FRAGMENT, &[ip_proto::UDP, 0, 0, 8, 0, 0, 0, 1]);
        assert_eq!(from_ip(&frag).unwrap_err(), Skip::IpFragment);
        // An atomic fragment (offset 0, no more) is the UDP packet inside.
        let atomic = ipv6_with(ip_proto::FRAGMENT, &[ip_proto::UDP, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(from_ip(&atomic).unwrap().proto, ip_proto::UDP);
        assert_eq!(from_ip_by_etherparse(&atomic).unwrap().proto, ip_proto::UDP);
    }

    #[test]
    fn authentication_header_past_the_end_or_empty_is_malformed_ip() {
        // IPv6: length field 4 = 24 bytes, 12 there.
        let ah = [ip_proto::UDP, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
        let p = ipv6_with(ip_proto::AUTH, &ah);
        all_say(&p[..52], Skip::MalformedIp, "IPv6 AH past the end");
        let mut zero = ipv6_with(ip_proto::AUTH, &ah);
        zero[41] = 0;
        all_say(&zero, Skip::MalformedIp, "IPv6 AH of length 0");
        let mut fits = ipv6_with(ip_proto::AUTH, &ah);
        fits[41] = 1;
        assert_eq!(from_ip(&fits).unwrap().proto, ip_proto::UDP);
        // IPv4: the same header after a 20-byte IPv4 header.
        let mut v4 = TCP_SYN_V4[..20].to_vec();
        v4[9] = ip_proto::AUTH;
        v4.extend(ah);
        v4[3] = u8::try_from(v4.len()).unwrap();
        all_say(&v4, Skip::MalformedIp, "IPv4 AH past the end");
        v4[21] = 0;
        all_say(&v4, Skip::MalformedIp, "IPv4 AH of length 0");
    }

    #[test]
    fn hop_by_hop_after_another_header_is_malformed_ip() {
        let dest_opts_then_hop_by_hop = [ip_proto::HOP_BY_HOP, 0, 1, 4, 0, 0, 0, 0];
        let p = ipv6_with(ip_proto::DEST_OPTIONS, &dest_opts_then_hop_by_hop);
        all_say(&p, Skip::MalformedIp, "hop-by-hop second");
        let first = [ip_proto::UDP, 0, 1, 4, 0, 0, 0, 0];
        let p = ipv6_with(ip_proto::HOP_BY_HOP, &first);
        assert_eq!(from_ip(&p).unwrap().proto, ip_proto::UDP);
    }

    #[test]
    fn ipv4_options_cut_short_is_malformed_ip() {
        // IHL 15 claims 60 bytes of header; the packet has 40.
        let mut p = TCP_SYN_V4;
        p[0] = 0x4f;
        all_say(&p, Skip::MalformedIp, "IHL past the end");
        // IHL 4: shorter than the fixed header.
        p[0] = 0x44;
        all_say(&p, Skip::MalformedIp, "IHL under 5");
    }

    /// What `IcmpInfo::quoted_packet` answered when etherparse read the quote, with the
    /// issue 13 rule (a header etherparse stopped in gives nothing).
    fn quoted_by_etherparse(quoted: &[u8]) -> Option<Quoted> {
        let sliced = LaxSlicedPacket::from_ip(quoted).ok()?;
        if sliced
            .stop_err
            .as_ref()
            .is_some_and(|(_, l)| stopped_in_ip(*l))
        {
            return None;
        }
        let (src, dst, payload) = ip_parts(&sliced)?;
        let proto = payload.ip_number.0;
        let (src_port, dst_port) = match (proto, payload.payload) {
            (ip_proto::TCP | ip_proto::UDP, [a, b, c, d, ..]) => {
                (u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d]))
            }
            (ip_proto::TCP | ip_proto::UDP | ip_proto::ICMP | ip_proto::ICMPV6, _) => {
                return None;
            }
            _ => (0, 0),
        };
        Some(Quoted {
            proto,
            src,
            dst,
            src_port,
            dst_port,
        })
    }

    #[test]
    fn quoted_packets_read_by_the_wire_views_as_etherparse_reads_them() {
        use crate::capture::file::CaptureFile;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps");
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let (mut quotes, mut read) = (0u32, 0u32);
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let Ok(mut cap) = CaptureFile::open(&e.path()) else {
                continue;
            };
            while let Some(Ok(p)) = cap.next_packet() {
                let Ok(m) = decode(p.link, p.data) else {
                    continue;
                };
                let Some(icmp) = m.icmp.filter(|i| !i.quoted.is_empty()) else {
                    continue;
                };
                quotes += 1;
                let q = icmp::quoted_packet(icmp.quoted);
                assert_eq!(q, quoted_by_etherparse(icmp.quoted), "{:?}", e.path());
                read += u32::from(q.is_some());
                // Mutations and cuts of the quote's headers.
                for _ in 0..64 {
                    let mut b = icmp.quoted.to_vec();
                    state = crate::testing::xorshift(state);
                    let at = (state as usize) % b.len().min(64);
                    b[at] = (state >> 32) as u8;
                    let cut = b.len() - ((state >> 40) as usize % 48).min(b.len());
                    let b = &b[..cut];
                    assert_eq!(
                        icmp::quoted_packet(b),
                        quoted_by_etherparse(b),
                        "{:?}: {b:02x?}",
                        e.path()
                    );
                }
            }
        }
        assert!(quotes >= 40 && read >= 40, "{quotes} quotes, {read} read");
    }

    #[test]
    fn ipv4_total_length_smaller_than_the_header_falls_back_to_the_bytes() {
        // Not the issue 13 class on purpose: a sender's capture taken before segmentation
        // offload fills the length in shows 0 here, and the headers are still right. So, as
        // etherparse does, the bytes there are stand in for the length.
        for total in [0u8, 19] {
            let mut p = TCP_SYN_V4;
            p[2] = 0;
            p[3] = total;
            let m = from_ip(&p).unwrap();
            assert_eq!(
                (m.proto, m.src_port, m.dst_port),
                (ip_proto::TCP, 50000, 5223)
            );
        }
    }
}
