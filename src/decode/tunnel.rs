//! Tunnel decapsulation: a packet that is a tunnel (GRE, PPTP, ERSPAN, VXLAN, Geneve, GTP-U,
//! IP in IP, IPv6 in IPv4 or IPv6, Teredo, AYIYA) is decoded down to the packet it carries,
//! up to [`MAX_DEPTH`] tunnels deep, and that inner packet is the one classified, its flow
//! keyed by its own addresses and ports. What is kept of the tunnel ([`Tunnel`]) is small and
//! borrowed: the outermost tunnel's kind, how many were taken off, how decapsulation ended,
//! and the outermost IP header, whose addresses are read only when a flow begins.
//!
//! Which packets are tunnels: IP protocols 4 (IPv4 inside), 41 (IPv6 inside) and 47 (GRE),
//! and UDP to or from the ports the tunnels are assigned: 2152 (GTP-U), 3544 (Teredo), 4789
//! (VXLAN, destination), 6081 (Geneve, destination) and 5072 (AYIYA). A UDP tunnel on another
//! port stays a UDP flow between the tunnel's endpoints: ports are how Zeek and Suricata find
//! these tunnels too (a configured list), and guessing from payload bytes would take ordinary
//! UDP for tunnels. A packet on those ports whose header is not the tunnel's stays what it is.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{LinkAddrs, PacketMeta, link};
use crate::capture::LinkType;
use crate::wire::ip::ip_proto;
use crate::wire::link::EtherType;
use crate::wire::tunnel::gre::GrePacket;
use crate::wire::tunnel::gtp::GtpUPacket;
use crate::wire::tunnel::overlay::{GenevePacket, VxlanPacket};
use crate::wire::tunnel::{Carried, proto, teredo};

/// Most tunnels taken off one packet. Real traffic nests two or three (a mirror session of
/// VXLAN traffic, GRE inside IPsec-less GRE); the bound keeps a crafted packet's cost fixed.
/// A packet still tunnelled after that many is counted ([`TunnelEnd::TooDeep`]) and
/// classified as the packet found at that depth.
pub const MAX_DEPTH: u8 = 4;

/// The UDP ports of the tunnels read over UDP.
pub mod tunnel_ports {
    /// GTP-U (3GPP TS 29.281).
    pub const GTP_U: u16 = 2152;
    /// Teredo (RFC 4380).
    pub const TEREDO: u16 = 3544;
    /// VXLAN (RFC 7348).
    pub const VXLAN: u16 = 4789;
    /// AYIYA.
    pub const AYIYA: u16 = 5072;
    /// Geneve (RFC 8926).
    pub const GENEVE: u16 = 6081;
}

/// IP protocol numbers of tunnels.
const IPV4_IN_IP: u8 = 4;
const IPV6_IN_IP: u8 = 41;
const GRE: u8 = 47;

/// A kind of tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TunnelKind {
    /// GRE (IP protocol 47) carrying IP or Ethernet.
    Gre,
    /// PPTP's enhanced GRE (version 1) carrying PPP.
    Pptp,
    /// ERSPAN type I, II or III over GRE (switch mirror sessions).
    Erspan,
    /// VXLAN (UDP 4789).
    Vxlan,
    /// Geneve (UDP 6081).
    Geneve,
    /// GTP-U (UDP 2152).
    GtpU,
    /// IPv4 inside IPv4 or IPv6 (IP protocol 4).
    IpInIp,
    /// IPv6 inside IPv4 (IP protocol 41: 6in4, 6to4, ISATAP, `sit`).
    SixInFour,
    /// IPv6 inside IPv6 (IP protocol 41).
    SixInSix,
    /// Teredo (UDP 3544).
    Teredo,
    /// AYIYA (UDP 5072).
    Ayiya,
}

impl TunnelKind {
    /// Every kind, in report order.
    pub const ALL: [Self; 11] = [
        Self::Gre,
        Self::Pptp,
        Self::Erspan,
        Self::Vxlan,
        Self::Geneve,
        Self::GtpU,
        Self::IpInIp,
        Self::SixInFour,
        Self::SixInSix,
        Self::Teredo,
        Self::Ayiya,
    ];

    /// Stable name used in flow records and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gre => "gre",
            Self::Pptp => "pptp",
            Self::Erspan => "erspan",
            Self::Vxlan => "vxlan",
            Self::Geneve => "geneve",
            Self::GtpU => "gtp-u",
            Self::IpInIp => "ip-in-ip",
            Self::SixInFour => "6in4",
            Self::SixInSix => "6in6",
            Self::Teredo => "teredo",
            Self::Ayiya => "ayiya",
        }
    }

    /// Index into a counter array.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How decapsulation of a tunnelled packet ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelEnd {
    /// At a packet that is no tunnel: the innermost packet.
    Inner,
    /// At a tunnel whose payload is not an IP packet appletap reads (802.11 frames, ARP,
    /// PPP control, GTP-U signalling, an inner fragment or a damaged inner header): the
    /// packet is classified as the tunnel packet that carried it.
    Undecoded,
    /// After [`MAX_DEPTH`] tunnels, at a packet that is a tunnel still.
    TooDeep,
}

/// What is kept of the tunnels a packet came through: 24 bytes, borrowed from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunnel<'a> {
    /// The outermost IP header (its fixed part), where the tunnel's endpoints are read from
    /// when needed ([`Tunnel::outer_addrs`]).
    pub outer: &'a [u8],
    /// The outermost tunnel's kind.
    pub kind: TunnelKind,
    /// Tunnels taken off: 0 when the outermost one's payload could not be read (the packet
    /// is then the tunnel's own).
    pub depth: u8,
    /// How decapsulation ended.
    pub end: TunnelEnd,
}

impl Tunnel<'_> {
    /// The outermost IP header's source and destination.
    pub fn outer_addrs(&self) -> Option<(IpAddr, IpAddr)> {
        let h = self.outer;
        match *h.first()? >> 4 {
            4 => {
                let src: [u8; 4] = h.get(12..16)?.try_into().ok()?;
                let dst: [u8; 4] = h.get(16..20)?.try_into().ok()?;
                Some((Ipv4Addr::from(src).into(), Ipv4Addr::from(dst).into()))
            }
            6 => {
                let src: [u8; 16] = h.get(8..24)?.try_into().ok()?;
                let dst: [u8; 16] = h.get(24..40)?.try_into().ok()?;
                Some((Ipv6Addr::from(src).into(), Ipv6Addr::from(dst).into()))
            }
            _ => None,
        }
    }

    /// Whether at least one tunnel was taken off: the packet is an inner one.
    pub fn is_decapsulated(&self) -> bool {
        self.depth > 0
    }
}

/// Whether a UDP port is possibly a tunnel's: one multiply, shift and bit test, so that the
/// ordinary UDP packet (DNS, QUIC, mDNS, ...) pays next to nothing. The constant puts the five
/// tunnel ports on five bits that none of the common UDP ports (DNS, NTP, DHCP, mDNS, SSDP,
/// IKE, STUN, QUIC, FaceTime's RTP range) fall on; about 6% of ephemeral ports do, and those
/// are told apart by [`udp_tunnel`].
#[inline(always)]
fn port_hint(port: u16) -> u64 {
    const MUL: u32 = 0x814a_fa33;
    const BITS: u64 = 0x0280_0880_0000_2000;
    BITS >> (u32::from(port).wrapping_mul(MUL) >> 26)
}

/// Whether a decoded packet may be a tunnel (TCP never is: the caller tests that first).
#[inline(always)]
pub(super) fn may_carry(meta: &PacketMeta<'_>) -> bool {
    match meta.proto {
        ip_proto::UDP => (port_hint(meta.src_port) | port_hint(meta.dst_port)) & 1 != 0,
        IPV4_IN_IP | IPV6_IN_IP | GRE => true,
        _ => false,
    }
}

/// Takes the tunnels off `meta`, decoded from the IP packet `outer`: it becomes the innermost
/// packet, with what was kept of the tunnels; it is left untouched if it is no tunnel.
#[cold]
#[inline(never)]
pub(super) fn decapsulate<'a>(outer: &'a [u8], meta: &mut PacketMeta<'a>) {
    let mut current = *meta;
    let mut ip = outer;
    let mut outermost = None;
    let mut depth = 0;
    let end = loop {
        let Some((kind, carried)) = tunnel_of(ip, &current) else {
            break TunnelEnd::Inner;
        };
        outermost.get_or_insert(kind);
        if depth == MAX_DEPTH {
            break TunnelEnd::TooDeep;
        }
        let inner = match carried {
            Carried::Ip(bytes) => Some((bytes, None)),
            Carried::Ethernet(frame) => ip_in_ethernet(frame),
            Carried::Other(_) => None,
        };
        let Some((bytes, link)) = inner else {
            break TunnelEnd::Undecoded;
        };
        let Ok(mut inner) = super::plain_from_ip(bytes) else {
            break TunnelEnd::Undecoded;
        };
        // The flow's hardware addresses are the inner frame's where the tunnel carries
        // Ethernet; the outer frame's belong to the tunnel's endpoints.
        inner.link = link;
        current = inner;
        ip = bytes;
        depth += 1;
    };
    let Some(kind) = outermost else {
        return;
    };
    let header_len = if outer.first().is_some_and(|b| b >> 4 == 6) {
        40
    } else {
        20
    };
    current.tunnel = Some(Tunnel {
        outer: outer.get(..header_len).unwrap_or(outer),
        kind,
        depth,
        end,
    });
    *meta = current;
}

/// The IP packet an Ethernet frame carries (VLAN tags and the like taken off), with the
/// frame's addresses.
fn ip_in_ethernet(frame: &[u8]) -> Option<(&[u8], Option<LinkAddrs<'_>>)> {
    let net = link::network_slice(LinkType::ETHERNET, frame).ok()?;
    if net.ether_type != EtherType::IPV4 && net.ether_type != EtherType::IPV6 {
        return None;
    }
    Some((net.data, link::addresses(LinkType::ETHERNET, frame)))
}

/// The tunnel `meta` (decoded from the IP packet `ip`) is, and what it carries; `None` if it
/// is none.
fn tunnel_of<'a>(ip: &[u8], meta: &PacketMeta<'a>) -> Option<(TunnelKind, Carried<'a>)> {
    match meta.proto {
        ip_proto::UDP => udp_tunnel(meta),
        IPV4_IN_IP => Some((TunnelKind::IpInIp, Carried::Ip(meta.payload))),
        IPV6_IN_IP if ip.first().is_some_and(|b| b >> 4 == 6) => {
            Some((TunnelKind::SixInSix, Carried::Ip(meta.payload)))
        }
        IPV6_IN_IP => Some((TunnelKind::SixInFour, Carried::Ip(meta.payload))),
        GRE => {
            let gre = GrePacket::new_checked(meta.payload)?;
            let kind = match (gre.version(), gre.protocol()) {
                (1, _) => TunnelKind::Pptp,
                (_, proto::ERSPAN_II | proto::ERSPAN_III) => TunnelKind::Erspan,
                _ => TunnelKind::Gre,
            };
            Some((kind, gre.carried()))
        }
        _ => None,
    }
}

/// The tunnel a UDP packet is, by its ports and then its header.
fn udp_tunnel<'a>(meta: &PacketMeta<'a>) -> Option<(TunnelKind, Carried<'a>)> {
    use tunnel_ports::{AYIYA, GENEVE, GTP_U, TEREDO, VXLAN};
    let (src, dst, payload) = (meta.src_port, meta.dst_port, meta.payload);
    // VXLAN and Geneve senders pick the source port from a hash of the inner flow: only the
    // destination port says what it is. The others answer from their port.
    if dst == VXLAN {
        VxlanPacket::new_checked(payload).map(|v| (TunnelKind::Vxlan, v.carried()))
    } else if dst == GENEVE {
        GenevePacket::new_checked(payload).map(|g| (TunnelKind::Geneve, g.carried()))
    } else if src == GTP_U || dst == GTP_U {
        GtpUPacket::new_checked(payload).map(|g| (TunnelKind::GtpU, g.carried()))
    } else if src == TEREDO || dst == TEREDO {
        teredo::teredo(payload).map(|c| (TunnelKind::Teredo, c))
    } else if src == AYIYA || dst == AYIYA {
        teredo::ayiya(payload).map(|c| (TunnelKind::Ayiya, c))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_hint_takes_every_tunnel_port_and_no_common_one() {
        use tunnel_ports::*;
        for p in [GTP_U, TEREDO, VXLAN, AYIYA, GENEVE] {
            assert_eq!(port_hint(p) & 1, 1, "{p}");
        }
        for p in [
            53, 67, 68, 123, 137, 138, 443, 500, 1900, 3478, 4500, 5223, 5353, 5355,
        ] {
            assert_eq!(port_hint(p) & 1, 0, "{p}");
        }
        for p in 16_384..16_404 {
            assert_eq!(port_hint(p) & 1, 0, "{p}");
        }
    }

    #[test]
    fn tunnel_is_24_bytes_and_an_option_of_it_too() {
        assert!(size_of::<Option<Tunnel<'_>>>() <= 24);
    }
}
