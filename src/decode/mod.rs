//! Packet decoding: link layer to network and transport headers, borrowed from the capture
//! buffer. A packet that cannot be decoded is an outcome ([`Skip`]), counted by the caller.

mod fast;
pub mod link;

use std::net::IpAddr;

use etherparse::err::Layer;
use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};

use crate::capture::LinkType;
use crate::wire::icmp::{self, IcmpMessage};
use crate::wire::link::{EtherType, LinkError};

pub use crate::wire::icmp::Quoted;
pub use crate::wire::ip::ip_proto;
pub use crate::wire::tcp::tcp_flags;

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
    /// A non-first IP fragment, or a first fragment whose transport header is incomplete.
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
}

impl PacketMeta<'_> {
    /// Whether the TCP flags include every bit of `mask`.
    pub fn has_flags(&self, mask: u8) -> bool {
        self.tcp_flags & mask == mask
    }
}

/// Decodes a captured frame down to its transport header.
///
/// # Errors
/// A [`Skip`] reason when the frame carries no IP or its headers are cut short or malformed.
pub fn decode(link_type: LinkType, data: &[u8]) -> Result<PacketMeta<'_>, Skip> {
    let net = link::network_slice(link_type, data).map_err(|e| match e {
        LinkError::Truncated => Skip::LinkTruncated,
        LinkError::UnsupportedLinkType(_) => Skip::UnsupportedLinkType,
        LinkError::Malformed => Skip::LinkMalformed,
    })?;
    if net.ether_type != EtherType::IPV4 && net.ether_type != EtherType::IPV6 {
        return Err(Skip::NotIp);
    }
    from_ip(net.data)
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

/// Decodes an IP packet (v4 or v6, by its version nibble).
///
/// Lax parsing on purpose: a packet cut by the capture's snap length still has usable headers.
///
/// # Errors
/// A [`Skip`] reason when the IP or transport headers are cut short or malformed.
pub fn from_ip(data: &[u8]) -> Result<PacketMeta<'_>, Skip> {
    match fast::from_ip(data) {
        Some(answer) => answer,
        None => lax_from_ip(data),
    }
}

/// [`from_ip`] without its fast path, for the fuzz target that checks the two agree.
#[doc(hidden)]
pub fn from_ip_by_etherparse(data: &[u8]) -> Result<PacketMeta<'_>, Skip> {
    lax_from_ip(data)
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
}
