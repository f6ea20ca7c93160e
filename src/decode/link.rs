//! Link layers: from a captured frame of any supported link type down to its network-layer payload.
//!
//! The result is the payload's EtherType (or a pseudo-value for payloads that have none) and a
//! slice of the frame, never a copy. Frames that are not IP (ARP, EAPOL, LLDP, PPP control,
//! 802.3 LLC, ...) are not errors: they come back with their EtherType for the caller to count.
//! Errors are reserved for frames whose link header is cut short or cannot be right, and for
//! link types this module does not decode.

use thiserror::Error;

use crate::capture::LinkType;

/// IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
/// PPPoE discovery stage (PADI, PADO, ...): never carries IP.
pub const ETHERTYPE_PPPOE_DISCOVERY: u16 = 0x8863;
/// PPPoE session stage. Returned as such when the PPP payload is not IP (LCP, IPCP, ...);
/// the slice then starts at the PPP protocol field.
pub const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
/// 802.1X authentication (EAPOL).
pub const ETHERTYPE_EAPOL: u16 = 0x888E;
/// 802.1ad service VLAN tag (QinQ outer tag).
pub const ETHERTYPE_QINQ: u16 = 0x88A8;
/// LLDP.
pub const ETHERTYPE_LLDP: u16 = 0x88CC;
/// Pre-standard QinQ outer tag still used by some switches.
pub const ETHERTYPE_QINQ_LEGACY: u16 = 0x9100;
/// Pseudo-value: an 802.3 frame (length field instead of an EtherType) whose LLC payload is
/// not SNAP-encapsulated IP. The slice starts at the LLC header (DSAP). 0 is not a valid
/// EtherType (values below 0x0600 are lengths), so it cannot be confused with one.
pub const ETHERTYPE_LLC: u16 = 0x0000;
/// Pseudo-value: the link header names a protocol that has no EtherType (a BSD address
/// family other than IP, a Linux pseudo-protocol, PKTAP metadata without a packet).
/// 0xFFFF is reserved by IEEE and never assigned.
pub const ETHERTYPE_UNKNOWN: u16 = 0xFFFF;

/// Ethernet II header: destination (6), source (6), EtherType or 802.3 length (2).
const ETH_HEADER_LEN: usize = 14;
const ETH_TYPE_OFFSET: usize = 12;
/// Largest 802.3 length field; 0x05DD..0x0600 is neither length nor EtherType.
const ETH_MAX_LENGTH: u16 = 1500;
/// Smallest EtherType.
const ETHERTYPE_MIN: u16 = 0x0600;

/// VLAN tag after its TPID: TCI (2) then the inner EtherType (2).
const VLAN_TAG_LEN: usize = 4;
const VLAN_ID_MASK: u16 = 0x0FFF;
const VLAN_INNER_TYPE_OFFSET: usize = 2;

/// 802.2 LLC header: DSAP, SSAP, control.
const LLC_HEADER_LEN: usize = 3;
/// LLC header plus SNAP: OUI (3) and EtherType (2).
const SNAP_HEADER_LEN: usize = 8;
const LLC_SAP_SNAP: u8 = 0xAA;
const LLC_CONTROL_UI: u8 = 0x03;
const SNAP_TYPE_OFFSET: usize = 6;
/// SNAP OUIs under which the protocol id is an EtherType (RFC 1042 and 802.1H).
const SNAP_OUI_ETHERTYPE: [[u8; 3]; 2] = [[0x00, 0x00, 0x00], [0x00, 0x00, 0xF8]];

/// PPPoE header: version/type (1), code (1), session id (2), payload length (2).
const PPPOE_HEADER_LEN: usize = 6;
const PPPOE_VER_TYPE: u8 = 0x11;
const PPPOE_CODE_SESSION: u8 = 0x00;
const PPPOE_LENGTH_OFFSET: usize = 4;
/// PPP protocol numbers carried in PPPoE sessions.
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;

/// Linux cooked v1: packet type (2), ARPHRD (2), address length (2), address (8), protocol (2).
const SLL_HEADER_LEN: usize = 16;
const SLL_PROTOCOL_OFFSET: usize = 14;
/// Linux cooked v2: protocol (2), reserved (2), ifindex (4), ARPHRD (2), packet type (1),
/// address length (1), address (8).
const SLL2_HEADER_LEN: usize = 20;
const SLL2_PROTOCOL_OFFSET: usize = 0;
/// Linux pseudo-protocol for frames that carry an 802.2 LLC header (`ETH_P_802_2`).
const LINUX_ETH_P_802_2: u16 = 0x0004;

/// BSD loopback header: address family, 4 bytes.
const NULL_HEADER_LEN: usize = 4;
const BSD_AF_INET: u32 = 2;
/// AF_INET6 differs between BSDs: NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30.
const BSD_AF_INET6: [u32; 3] = [24, 28, 30];

/// PKTAP: little-endian `pth_length` (0), `pth_type_next` (4), `pth_dlt` (8), then fields
/// we do not need; the inner frame starts at `pth_length`.
const PKTAP_FIXED_LEN: usize = 12;
const PKTAP_TYPE_NEXT_OFFSET: usize = 4;
const PKTAP_DLT_OFFSET: usize = 8;
const PKTAP_TYPE_PACKET: u32 = 1;

/// Most link-layer shims (VLAN tags, PPPoE, SNAP, PKTAP) one frame may stack. Real networks
/// use two or three; the limit stops crafted frames from costing unbounded work.
const MAX_ENCAPSULATIONS: usize = 8;

/// The network-layer part of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkSlice<'a> {
    /// EtherType of `data`, or [`ETHERTYPE_LLC`] / [`ETHERTYPE_UNKNOWN`].
    pub ether_type: u16,
    /// The payload: an IP header first when `ether_type` is IPv4 or IPv6.
    pub data: &'a [u8],
    /// Outermost VLAN id, if the frame was tagged.
    pub vlan: Option<u16>,
}

/// Why a frame has no network-layer slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum LinkError {
    /// The frame ends inside a link-layer header.
    #[error("frame ends inside its link-layer header")]
    Truncated,
    /// This module does not decode that link type.
    #[error("unsupported link type {0}")]
    UnsupportedLinkType(u32),
    /// A link-layer header that cannot be right (or nests too deep).
    #[error("malformed link-layer header")]
    Malformed,
}

/// Big-endian `u16` at `at`.
fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let raw: [u8; 2] = bytes.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_be_bytes(raw))
}

/// Little-endian `u32` at `at` (PKTAP headers are written in the host order of a Mac).
fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(raw))
}

/// Splits `len` header bytes off the front of `data`.
fn split_header(data: &[u8], len: usize) -> Result<(&[u8], &[u8]), LinkError> {
    data.split_at_checked(len).ok_or(LinkError::Truncated)
}

/// Finds the network-layer payload of a frame captured with link type `link`.
pub fn network_slice(link: LinkType, data: &[u8]) -> Result<NetworkSlice<'_>, LinkError> {
    link_slice(link, data, 0)
}

fn link_slice(link: LinkType, data: &[u8], depth: usize) -> Result<NetworkSlice<'_>, LinkError> {
    match link {
        LinkType::ETHERNET => ethernet(data, depth),
        LinkType::NULL => bsd_loopback(data, AfOrder::Either),
        LinkType::LOOP => bsd_loopback(data, AfOrder::Network),
        LinkType::RAW | LinkType::RAW_DLT12 | LinkType::RAW_DLT14 => raw_ip(data),
        LinkType::IPV4 => Ok(untagged(ETHERTYPE_IPV4, data)),
        LinkType::IPV6 => Ok(untagged(ETHERTYPE_IPV6, data)),
        LinkType::LINUX_SLL => linux_cooked(data, SLL_HEADER_LEN, SLL_PROTOCOL_OFFSET, depth),
        LinkType::LINUX_SLL2 => linux_cooked(data, SLL2_HEADER_LEN, SLL2_PROTOCOL_OFFSET, depth),
        LinkType::PKTAP => pktap(data, depth),
        LinkType(other) => Err(LinkError::UnsupportedLinkType(other)),
    }
}

fn untagged(ether_type: u16, data: &[u8]) -> NetworkSlice<'_> {
    NetworkSlice {
        ether_type,
        data,
        vlan: None,
    }
}

fn ethernet(frame: &[u8], depth: usize) -> Result<NetworkSlice<'_>, LinkError> {
    let (header, payload) = split_header(frame, ETH_HEADER_LEN)?;
    let type_or_len = be16(header, ETH_TYPE_OFFSET).ok_or(LinkError::Truncated)?;
    after_type_field(type_or_len, payload, None, depth)
}

/// Decodes what follows an Ethernet type/length field: peels VLAN tags, 802.3 LLC/SNAP and
/// PPPoE until a payload with a plain EtherType remains.
fn after_type_field(
    mut type_or_len: u16,
    mut data: &[u8],
    mut vlan: Option<u16>,
    depth: usize,
) -> Result<NetworkSlice<'_>, LinkError> {
    for _ in depth..MAX_ENCAPSULATIONS {
        match type_or_len {
            0..=ETH_MAX_LENGTH => {
                // 802.3: the field is the payload length. Anything past it is padding; a
                // shorter capture is the snaplen's doing, not damage.
                let len = usize::from(type_or_len);
                let llc_data = data.get(..len).unwrap_or(data);
                match snap_ethertype(llc_data)? {
                    Some((ether_type, rest)) => (type_or_len, data) = (ether_type, rest),
                    None => {
                        return Ok(NetworkSlice {
                            ether_type: ETHERTYPE_LLC,
                            data: llc_data,
                            vlan,
                        });
                    }
                }
            }
            // Neither a length nor an EtherType.
            0x05DD..ETHERTYPE_MIN => return Err(LinkError::Malformed),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_LEGACY => {
                let (tag, rest) = split_header(data, VLAN_TAG_LEN)?;
                let tci = be16(tag, 0).ok_or(LinkError::Truncated)?;
                let inner = be16(tag, VLAN_INNER_TYPE_OFFSET).ok_or(LinkError::Truncated)?;
                vlan.get_or_insert(tci & VLAN_ID_MASK);
                (type_or_len, data) = (inner, rest);
            }
            ETHERTYPE_PPPOE_SESSION => return pppoe_session(data, vlan),
            ether_type => {
                return Ok(NetworkSlice {
                    ether_type,
                    data,
                    vlan,
                });
            }
        }
    }
    Err(LinkError::Malformed)
}

/// If `llc` is SNAP-encapsulated with an EtherType OUI, the EtherType and what follows;
/// `None` for any other LLC payload.
fn snap_ethertype(llc: &[u8]) -> Result<Option<(u16, &[u8])>, LinkError> {
    let (header, _) = split_header(llc, LLC_HEADER_LEN)?;
    if header != [LLC_SAP_SNAP, LLC_SAP_SNAP, LLC_CONTROL_UI] {
        return Ok(None);
    }
    let (snap, rest) = split_header(llc, SNAP_HEADER_LEN)?;
    let is_ethertype_oui = snap
        .get(LLC_HEADER_LEN..SNAP_TYPE_OFFSET)
        .is_some_and(|oui| SNAP_OUI_ETHERTYPE.iter().any(|known| known == oui));
    match be16(snap, SNAP_TYPE_OFFSET) {
        Some(ether_type) if is_ethertype_oui && ether_type >= ETHERTYPE_MIN => {
            Ok(Some((ether_type, rest)))
        }
        _ => Ok(None),
    }
}

fn pppoe_session(data: &[u8], vlan: Option<u16>) -> Result<NetworkSlice<'_>, LinkError> {
    let (header, payload) = split_header(data, PPPOE_HEADER_LEN)?;
    let (ver_type, code) = match header {
        [ver_type, code, ..] => (*ver_type, *code),
        [] | [_] => return Err(LinkError::Truncated),
    };
    if ver_type != PPPOE_VER_TYPE || code != PPPOE_CODE_SESSION {
        return Err(LinkError::Malformed);
    }
    // The length field excludes Ethernet padding; a capture cut by the snaplen may be shorter.
    let len = be16(header, PPPOE_LENGTH_OFFSET).ok_or(LinkError::Truncated)?;
    let ppp = payload.get(..usize::from(len)).unwrap_or(payload);
    // PPP protocol-field compression (RFC 1661): a first byte with its low bit set is a
    // complete one-byte protocol number.
    let (protocol, proto_len) = match ppp {
        [] => return Err(LinkError::Truncated),
        [first, ..] if first & 1 == 1 => (u16::from(*first), 1),
        _ => (be16(ppp, 0).ok_or(LinkError::Truncated)?, 2),
    };
    let ip = |ether_type| {
        ppp.get(proto_len..).map(|data| NetworkSlice {
            ether_type,
            data,
            vlan,
        })
    };
    let slice = match protocol {
        PPP_IPV4 => ip(ETHERTYPE_IPV4),
        PPP_IPV6 => ip(ETHERTYPE_IPV6),
        _ => Some(NetworkSlice {
            ether_type: ETHERTYPE_PPPOE_SESSION,
            data: ppp,
            vlan,
        }),
    };
    slice.ok_or(LinkError::Truncated)
}

fn linux_cooked(
    frame: &[u8],
    header_len: usize,
    protocol_offset: usize,
    depth: usize,
) -> Result<NetworkSlice<'_>, LinkError> {
    let (header, payload) = split_header(frame, header_len)?;
    let protocol = be16(header, protocol_offset).ok_or(LinkError::Truncated)?;
    if protocol >= ETHERTYPE_MIN {
        // An EtherType; VLAN tags and PPPoE can still follow.
        return after_type_field(protocol, payload, None, depth);
    }
    // Below 0x0600 the field is a Linux pseudo-protocol, not an 802.3 length.
    if protocol == LINUX_ETH_P_802_2 {
        if let Some((ether_type, rest)) = snap_ethertype(payload)? {
            return after_type_field(ether_type, rest, None, depth);
        }
        return Ok(untagged(ETHERTYPE_LLC, payload));
    }
    Ok(untagged(ETHERTYPE_UNKNOWN, payload))
}

/// Byte order of a BSD loopback address family.
#[derive(Clone, Copy)]
enum AfOrder {
    /// LINKTYPE_NULL: the capturing host's order, which the file does not record.
    Either,
    /// LINKTYPE_LOOP: network order.
    Network,
}

fn bsd_loopback(frame: &[u8], order: AfOrder) -> Result<NetworkSlice<'_>, LinkError> {
    let (header, payload) = split_header(frame, NULL_HEADER_LEN)?;
    let raw: [u8; NULL_HEADER_LEN] = header.try_into().map_err(|_| LinkError::Truncated)?;
    let big = u32::from_be_bytes(raw);
    let family = match order {
        AfOrder::Network => big,
        // Address families are small numbers, so whichever reading is small is the one
        // the capturing host wrote.
        AfOrder::Either => {
            let little = u32::from_le_bytes(raw);
            if little <= u32::from(u16::MAX) {
                little
            } else {
                big
            }
        }
    };
    let ether_type = if family == BSD_AF_INET {
        ETHERTYPE_IPV4
    } else if BSD_AF_INET6.contains(&family) {
        ETHERTYPE_IPV6
    } else {
        ETHERTYPE_UNKNOWN
    };
    Ok(untagged(ether_type, payload))
}

/// Raw IP without a link header: the IP version nibble says which.
fn raw_ip(packet: &[u8]) -> Result<NetworkSlice<'_>, LinkError> {
    match packet.first().map(|b| b >> 4) {
        None => Err(LinkError::Truncated),
        Some(4) => Ok(untagged(ETHERTYPE_IPV4, packet)),
        Some(6) => Ok(untagged(ETHERTYPE_IPV6, packet)),
        Some(_) => Err(LinkError::Malformed),
    }
}

fn pktap(frame: &[u8], depth: usize) -> Result<NetworkSlice<'_>, LinkError> {
    let (Some(header_len), Some(type_next), Some(dlt)) = (
        le32(frame, 0),
        le32(frame, PKTAP_TYPE_NEXT_OFFSET),
        le32(frame, PKTAP_DLT_OFFSET),
    ) else {
        return Err(LinkError::Truncated);
    };
    let header_len = usize::try_from(header_len).map_err(|_| LinkError::Malformed)?;
    if header_len < PKTAP_FIXED_LEN {
        return Err(LinkError::Malformed);
    }
    let (_, inner) = split_header(frame, header_len)?;
    if type_next != PKTAP_TYPE_PACKET {
        return Ok(untagged(ETHERTYPE_UNKNOWN, inner));
    }
    let depth = depth + 1;
    if depth >= MAX_ENCAPSULATIONS {
        return Err(LinkError::Malformed);
    }
    // pth_dlt is a DLT_ value; for the link types PKTAP wraps (Ethernet, NULL, raw IP on
    // Darwin = 12) the DLT and LINKTYPE numbers coincide.
    link_slice(LinkType(dlt), inner, depth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::file::CaptureFile;
    use std::path::Path;

    /// The shared real-world captures (see `capture::file` tests).
    const PCAPS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/pcaps");
    /// Link-layer fixtures made by `fixtures/make_link_fixtures.py`.
    const FIXTURES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/link");

    /// First bytes of an IPv4 header, enough to recognise in a slice.
    const IPV4_START: [u8; 4] = [0x45, 0x00, 0x00, 0x14];
    /// First bytes of an IPv6 header.
    const IPV6_START: [u8; 4] = [0x60, 0x00, 0x00, 0x00];

    #[rustfmt::skip]
    static ETHERNET_IPV4: [u8; 18] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, // destination MAC
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, // source MAC
        0x08, 0x00,                         // EtherType: IPv4
        0x45, 0x00, 0x00, 0x14,             // IPv4 header starts
    ];

    #[rustfmt::skip]
    static ETHERNET_ARP: [u8; 16] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination: broadcast
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, // source MAC
        0x08, 0x06,                         // EtherType: ARP
        0x00, 0x01,                         // ARP hardware type: Ethernet
    ];

    #[rustfmt::skip]
    static DOT1Q_IPV6: [u8; 22] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, // destination MAC
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, // source MAC
        0x81, 0x00,                         // TPID: 802.1Q
        0x20, 0x64,                         // TCI: priority 1, VLAN 100
        0x86, 0xdd,                         // EtherType: IPv6
        0x60, 0x00, 0x00, 0x00,             // IPv6 header starts
    ];

    #[rustfmt::skip]
    static QINQ_IPV4: [u8; 26] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, // destination MAC
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, // source MAC
        0x88, 0xa8,                         // TPID: 802.1ad service tag
        0x00, 0x0a,                         // TCI: VLAN 10 (outer)
        0x81, 0x00,                         // TPID: 802.1Q customer tag
        0x00, 0x14,                         // TCI: VLAN 20 (inner)
        0x08, 0x00,                         // EtherType: IPv4
        0x45, 0x00, 0x00, 0x14,             // IPv4 header starts
    ];

    #[rustfmt::skip]
    static LEGACY_QINQ_EAPOL: [u8; 22] = [
        0x01, 0x80, 0xc2, 0x00, 0x00, 0x03, // destination: PAE group address
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, // source MAC
        0x91, 0x00,                         // TPID: pre-standard QinQ
        0x0f, 0xff,                         // TCI: VLAN 4095
        0x88, 0x8e,                         // EtherType: EAPOL
        0x02, 0x03, 0x00, 0x5f,             // EAPOL header
    ];

    #[rustfmt::skip]
    static PPPOE_IPV4: [u8; 28] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, // destination MAC
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, // source MAC
        0x88, 0x64,                         // EtherType: PPPoE session
        0x11,                               // version 1, type 1
        0x00,                               // code: session data
        0x12, 0x34,                         // session id
        0x00, 0x06,                         // length: PPP protocol + 4 payload bytes
        0x00, 0x21,                         // PPP protocol: IPv4
        0x45, 0x00, 0x00, 0x14,             // IPv4 header starts
        0x00, 0x00,                         // Ethernet padding, outside the PPPoE length
    ];

    #[rustfmt::skip]
    static PPPOE_COMPRESSED_IPV6: [u8; 25] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, // destination MAC
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, // source MAC
        0x88, 0x64,                         // EtherType: PPPoE session
        0x11, 0x00,                         // version/type, code
        0x12, 0x34,                         // session id
        0x00, 0x05,                         // length
        0x57,                               // PPP protocol, compressed: IPv6
        0x60, 0x00, 0x00, 0x00,             // IPv6 header starts
    ];

    #[rustfmt::skip]
    static PPPOE_LCP: [u8; 26] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, // destination MAC
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, // source MAC
        0x88, 0x64,                         // EtherType: PPPoE session
        0x11, 0x00,                         // version/type, code
        0x12, 0x34,                         // session id
        0x00, 0x06,                         // length
        0xc0, 0x21,                         // PPP protocol: LCP
        0x09, 0x01, 0x00, 0x04,             // LCP echo request
    ];

    #[rustfmt::skip]
    static PPPOE_DISCOVERY: [u8; 20] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination: broadcast
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, // source MAC
        0x88, 0x63,                         // EtherType: PPPoE discovery
        0x11, 0x09,                         // version/type, code: PADI
        0x00, 0x00,                         // session id
        0x00, 0x00,                         // length
    ];

    #[rustfmt::skip]
    static IEEE8023_STP: [u8; 22] = [
        0x01, 0x80, 0xc2, 0x00, 0x00, 0x00, // destination: STP
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, // source MAC
        0x00, 0x07,                         // 802.3 length: 7
        0x42, 0x42, 0x03,                   // LLC: DSAP, SSAP STP, UI
        0x00, 0x00, 0x00, 0x00,             // BPDU starts
        0xee,                               // padding past the length
    ];

    #[rustfmt::skip]
    static IEEE8023_SNAP_IPV4: [u8; 26] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, // destination MAC
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, // source MAC
        0x00, 0x0c,                         // 802.3 length: 12
        0xaa, 0xaa, 0x03,                   // LLC: SNAP, SNAP, UI
        0x00, 0x00, 0x00,                   // OUI: RFC 1042 (EtherType follows)
        0x08, 0x00,                         // EtherType: IPv4
        0x45, 0x00, 0x00, 0x14,             // IPv4 header starts
    ];

    #[rustfmt::skip]
    static SLL_IPV4: [u8; 20] = [
        0x00, 0x04,                         // packet type: outgoing
        0x00, 0x01,                         // ARPHRD_ETHER
        0x00, 0x06,                         // address length
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x00, 0x00, // address, padded to 8
        0x08, 0x00,                         // protocol: IPv4
        0x45, 0x00, 0x00, 0x14,             // IPv4 header starts
    ];

    #[rustfmt::skip]
    static SLL_VLAN_IPV4: [u8; 24] = [
        0x00, 0x00,                         // packet type: to us
        0x00, 0x01,                         // ARPHRD_ETHER
        0x00, 0x06,                         // address length
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x00, 0x00, // address
        0x81, 0x00,                         // protocol: 802.1Q (tag kept in the packet)
        0x00, 0x07,                         // TCI: VLAN 7
        0x08, 0x00,                         // EtherType: IPv4
        0x45, 0x00, 0x00, 0x14,             // IPv4 header starts
    ];

    #[rustfmt::skip]
    static SLL_LLC: [u8; 19] = [
        0x00, 0x00,                         // packet type: to us
        0x00, 0x01,                         // ARPHRD_ETHER
        0x00, 0x06,                         // address length
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x00, 0x00, // address
        0x00, 0x04,                         // protocol: ETH_P_802_2 (LLC follows)
        0x42, 0x42, 0x03,                   // LLC: STP
    ];

    #[rustfmt::skip]
    static SLL2_IPV6: [u8; 24] = [
        0x86, 0xdd,                         // protocol: IPv6
        0x00, 0x00,                         // reserved
        0x00, 0x00, 0x00, 0x02,             // interface index
        0x00, 0x01,                         // ARPHRD_ETHER
        0x00,                               // packet type: to us
        0x06,                               // address length
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x00, 0x00, // address
        0x60, 0x00, 0x00, 0x00,             // IPv6 header starts
    ];

    #[rustfmt::skip]
    static NULL_LE_IPV4: [u8; 8] = [
        0x02, 0x00, 0x00, 0x00,             // AF_INET, little-endian host
        0x45, 0x00, 0x00, 0x14,             // IPv4 header starts
    ];

    #[rustfmt::skip]
    static NULL_BE_IPV6: [u8; 8] = [
        0x00, 0x00, 0x00, 0x1e,             // AF_INET6 (Darwin, 30), big-endian host
        0x60, 0x00, 0x00, 0x00,             // IPv6 header starts
    ];

    #[rustfmt::skip]
    static NULL_LE_IPV6_FREEBSD: [u8; 8] = [
        0x1c, 0x00, 0x00, 0x00,             // AF_INET6 (FreeBSD, 28), little-endian host
        0x60, 0x00, 0x00, 0x00,             // IPv6 header starts
    ];

    #[rustfmt::skip]
    static NULL_APPLETALK: [u8; 6] = [
        0x10, 0x00, 0x00, 0x00,             // AF_APPLETALK (16)
        0xab, 0xcd,                         // payload
    ];

    #[rustfmt::skip]
    static LOOP_IPV6: [u8; 8] = [
        0x00, 0x00, 0x00, 0x18,             // AF_INET6 (OpenBSD, 24), network order
        0x60, 0x00, 0x00, 0x00,             // IPv6 header starts
    ];

    #[rustfmt::skip]
    static PKTAP_ETHERNET: [u8; 30] = [
        0x0c, 0x00, 0x00, 0x00,             // pth_length: 12 (fixed part only)
        0x01, 0x00, 0x00, 0x00,             // pth_type_next: packet
        0x01, 0x00, 0x00, 0x00,             // pth_dlt: Ethernet
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, // inner: destination MAC
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, // inner: source MAC
        0x08, 0x00,                         // inner: EtherType IPv4
        0x45, 0x00, 0x00, 0x14,             // IPv4 header starts
    ];

    #[rustfmt::skip]
    static PKTAP_NULL: [u8; 24] = [
        0x10, 0x00, 0x00, 0x00,             // pth_length: 16
        0x01, 0x00, 0x00, 0x00,             // pth_type_next: packet
        0x00, 0x00, 0x00, 0x00,             // pth_dlt: NULL
        0xee, 0xee, 0xee, 0xee,             // rest of the header (ignored)
        0x1e, 0x00, 0x00, 0x00,             // inner: AF_INET6 (Darwin)
        0x60, 0x00, 0x00, 0x00,             // IPv6 header starts
    ];

    #[rustfmt::skip]
    static PKTAP_NOT_A_PACKET: [u8; 14] = [
        0x0c, 0x00, 0x00, 0x00,             // pth_length: 12
        0x03, 0x00, 0x00, 0x00,             // pth_type_next: process information
        0x01, 0x00, 0x00, 0x00,             // pth_dlt
        0xab, 0xcd,                         // metadata
    ];

    #[rustfmt::skip]
    static PKTAP_LENGTH_TOO_SMALL: [u8; 16] = [
        0x08, 0x00, 0x00, 0x00,             // pth_length: 8, shorter than its own fields
        0x01, 0x00, 0x00, 0x00,             // pth_type_next: packet
        0x01, 0x00, 0x00, 0x00,             // pth_dlt: Ethernet
        0x45, 0x00, 0x00, 0x14,             // bytes
    ];

    fn ok(link: LinkType, frame: &[u8]) -> NetworkSlice<'_> {
        network_slice(link, frame).unwrap_or_else(|e| panic!("{link:?}: {e}"))
    }

    fn slice(ether_type: u16, data: &[u8], vlan: Option<u16>) -> NetworkSlice<'_> {
        NetworkSlice {
            ether_type,
            data,
            vlan,
        }
    }

    #[test]
    fn ethernet_and_tags() {
        let e = LinkType::ETHERNET;
        assert_eq!(
            ok(e, &ETHERNET_IPV4),
            slice(ETHERTYPE_IPV4, &IPV4_START, None)
        );
        assert_eq!(ok(e, &ETHERNET_ARP), slice(ETHERTYPE_ARP, &[0, 1], None));
        assert_eq!(
            ok(e, &DOT1Q_IPV6),
            slice(ETHERTYPE_IPV6, &IPV6_START, Some(100))
        );
        assert_eq!(
            ok(e, &QINQ_IPV4),
            slice(ETHERTYPE_IPV4, &IPV4_START, Some(10))
        );
        assert_eq!(
            ok(e, &LEGACY_QINQ_EAPOL),
            slice(ETHERTYPE_EAPOL, &[0x02, 0x03, 0x00, 0x5f], Some(4095))
        );
    }

    #[test]
    fn pppoe() {
        let e = LinkType::ETHERNET;
        assert_eq!(ok(e, &PPPOE_IPV4), slice(ETHERTYPE_IPV4, &IPV4_START, None));
        assert_eq!(
            ok(e, &PPPOE_COMPRESSED_IPV6),
            slice(ETHERTYPE_IPV6, &IPV6_START, None)
        );
        assert_eq!(
            ok(e, &PPPOE_LCP),
            slice(ETHERTYPE_PPPOE_SESSION, &PPPOE_LCP[20..], None)
        );
        assert_eq!(
            ok(e, &PPPOE_DISCOVERY),
            slice(ETHERTYPE_PPPOE_DISCOVERY, &PPPOE_DISCOVERY[14..], None)
        );
        let mut wrong_version = PPPOE_IPV4;
        wrong_version[14] = 0x21;
        assert_eq!(network_slice(e, &wrong_version), Err(LinkError::Malformed));
    }

    #[test]
    fn ieee_802_3() {
        let e = LinkType::ETHERNET;
        // The slice stops at the length field: the trailing padding byte is not LLC data.
        assert_eq!(
            ok(e, &IEEE8023_STP),
            slice(ETHERTYPE_LLC, &IEEE8023_STP[14..21], None)
        );
        assert_eq!(
            ok(e, &IEEE8023_SNAP_IPV4),
            slice(ETHERTYPE_IPV4, &IPV4_START, None)
        );
        let mut neither = ETHERNET_IPV4;
        neither[12..14].copy_from_slice(&0x05FFu16.to_be_bytes());
        assert_eq!(network_slice(e, &neither), Err(LinkError::Malformed));
    }

    #[test]
    fn linux_cooked() {
        let v1 = LinkType::LINUX_SLL;
        assert_eq!(ok(v1, &SLL_IPV4), slice(ETHERTYPE_IPV4, &IPV4_START, None));
        assert_eq!(
            ok(v1, &SLL_VLAN_IPV4),
            slice(ETHERTYPE_IPV4, &IPV4_START, Some(7))
        );
        assert_eq!(
            ok(v1, &SLL_LLC),
            slice(ETHERTYPE_LLC, &[0x42, 0x42, 0x03], None)
        );
        let v2 = LinkType::LINUX_SLL2;
        assert_eq!(ok(v2, &SLL2_IPV6), slice(ETHERTYPE_IPV6, &IPV6_START, None));
    }

    #[test]
    fn bsd_loopback_and_raw() {
        let null = LinkType::NULL;
        assert_eq!(
            ok(null, &NULL_LE_IPV4),
            slice(ETHERTYPE_IPV4, &IPV4_START, None)
        );
        assert_eq!(
            ok(null, &NULL_BE_IPV6),
            slice(ETHERTYPE_IPV6, &IPV6_START, None)
        );
        assert_eq!(
            ok(null, &NULL_LE_IPV6_FREEBSD),
            slice(ETHERTYPE_IPV6, &IPV6_START, None)
        );
        assert_eq!(
            ok(null, &NULL_APPLETALK),
            slice(ETHERTYPE_UNKNOWN, &[0xab, 0xcd], None)
        );
        assert_eq!(
            ok(LinkType::LOOP, &LOOP_IPV6),
            slice(ETHERTYPE_IPV6, &IPV6_START, None)
        );
        // LOOP is always network order: a little-endian family is not IP.
        assert_eq!(
            ok(LinkType::LOOP, &NULL_LE_IPV4).ether_type,
            ETHERTYPE_UNKNOWN
        );
        for raw in [LinkType::RAW, LinkType::RAW_DLT12, LinkType::RAW_DLT14] {
            assert_eq!(
                ok(raw, &IPV4_START),
                slice(ETHERTYPE_IPV4, &IPV4_START, None)
            );
            assert_eq!(
                ok(raw, &IPV6_START),
                slice(ETHERTYPE_IPV6, &IPV6_START, None)
            );
            assert_eq!(network_slice(raw, &[0x55]), Err(LinkError::Malformed));
            assert_eq!(network_slice(raw, &[]), Err(LinkError::Truncated));
        }
        assert_eq!(ok(LinkType::IPV4, &IPV4_START).ether_type, ETHERTYPE_IPV4);
        assert_eq!(ok(LinkType::IPV6, &IPV6_START).ether_type, ETHERTYPE_IPV6);
    }

    #[test]
    fn pktap() {
        let p = LinkType::PKTAP;
        assert_eq!(
            ok(p, &PKTAP_ETHERNET),
            slice(ETHERTYPE_IPV4, &IPV4_START, None)
        );
        assert_eq!(ok(p, &PKTAP_NULL), slice(ETHERTYPE_IPV6, &IPV6_START, None));
        assert_eq!(
            ok(p, &PKTAP_NOT_A_PACKET),
            slice(ETHERTYPE_UNKNOWN, &[0xab, 0xcd], None)
        );
        assert_eq!(
            network_slice(p, &PKTAP_LENGTH_TOO_SMALL),
            Err(LinkError::Malformed)
        );
        // A PKTAP header whose inner link type is PKTAP again, forever.
        let mut nested = Vec::new();
        for _ in 0..MAX_ENCAPSULATIONS + 1 {
            nested.extend([12, 0, 0, 0, 1, 0, 0, 0]);
            nested.extend(LinkType::PKTAP.0.to_le_bytes());
        }
        nested.extend(ETHERNET_IPV4);
        assert_eq!(network_slice(p, &nested), Err(LinkError::Malformed));
    }

    #[test]
    fn too_many_tags_and_unsupported_links() {
        let mut frame = ETHERNET_IPV4[..12].to_vec();
        for _ in 0..MAX_ENCAPSULATIONS + 1 {
            frame.extend([0x81, 0x00, 0x00, 0x01]);
        }
        frame.extend([0x08, 0x00, 0x45, 0x00]);
        assert_eq!(
            network_slice(LinkType::ETHERNET, &frame),
            Err(LinkError::Malformed)
        );
        assert_eq!(
            network_slice(LinkType(105), &ETHERNET_IPV4),
            Err(LinkError::UnsupportedLinkType(105))
        );
    }

    /// Every sample, cut at every length, for its link type: never a panic, and a cut
    /// inside the link header is `Truncated`.
    #[test]
    fn every_prefix_is_safe() {
        let samples: [(LinkType, &[u8], usize); 20] = [
            (LinkType::ETHERNET, &ETHERNET_IPV4, 14),
            (LinkType::ETHERNET, &ETHERNET_ARP, 14),
            (LinkType::ETHERNET, &DOT1Q_IPV6, 18),
            (LinkType::ETHERNET, &QINQ_IPV4, 22),
            (LinkType::ETHERNET, &LEGACY_QINQ_EAPOL, 18),
            (LinkType::ETHERNET, &PPPOE_IPV4, 22),
            (LinkType::ETHERNET, &PPPOE_COMPRESSED_IPV6, 21),
            (LinkType::ETHERNET, &PPPOE_LCP, 20),
            (LinkType::ETHERNET, &IEEE8023_STP, 17),
            (LinkType::ETHERNET, &IEEE8023_SNAP_IPV4, 17),
            (LinkType::LINUX_SLL, &SLL_IPV4, 16),
            (LinkType::LINUX_SLL, &SLL_VLAN_IPV4, 20),
            (LinkType::LINUX_SLL, &SLL_LLC, 19),
            (LinkType::LINUX_SLL2, &SLL2_IPV6, 20),
            (LinkType::NULL, &NULL_LE_IPV4, 4),
            (LinkType::LOOP, &LOOP_IPV6, 4),
            (LinkType::RAW, &IPV4_START, 1),
            (LinkType::PKTAP, &PKTAP_ETHERNET, 26),
            (LinkType::PKTAP, &PKTAP_NULL, 20),
            (LinkType::PKTAP, &PKTAP_NOT_A_PACKET, 12),
        ];
        for (link, frame, header_len) in samples {
            for cut in 0..frame.len() {
                let result = network_slice(link, &frame[..cut]);
                if cut < header_len {
                    assert_eq!(result, Err(LinkError::Truncated), "{link:?} cut at {cut}");
                }
            }
        }
        // And arbitrary bytes under every link type.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let links = [0, 1, 12, 14, 101, 108, 113, 228, 229, 258, 276];
        for round in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bytes = state.to_le_bytes();
            let mut frame = Vec::new();
            for i in 0..(state % 48) as usize {
                // Bias towards bytes that mean something to the decoders.
                let b = bytes[i % 8];
                frame.push(match b % 7 {
                    0 => 0x81,
                    1 => 0x88,
                    2 => 0x00,
                    _ => b,
                });
            }
            let _ = network_slice(LinkType(links[round % links.len()]), &frame);
        }
    }

    // ----- real captures -----

    /// A decoded packet, copied: EtherType, network-layer bytes, VLAN.
    type Decoded = Result<(u16, Vec<u8>, Option<u16>), LinkError>;

    fn decode_file(path: &Path) -> Vec<Decoded> {
        let mut capture = CaptureFile::open(path).unwrap();
        let mut out = Vec::new();
        while let Some(packet) = capture.next_packet() {
            let packet = packet.unwrap();
            out.push(
                network_slice(packet.link, packet.data)
                    .map(|s| (s.ether_type, s.data.to_vec(), s.vlan)),
            );
        }
        out
    }

    #[test]
    fn pppoe_over_qinq_capture_is_all_ipv4() {
        let decoded = decode_file(&Path::new(PCAPS_DIR).join("zeek__pppoe-over-qinq.pcap"));
        assert_eq!(decoded.len(), 86);
        for d in decoded {
            let (ether_type, data, vlan) = d.unwrap();
            assert_eq!(ether_type, ETHERTYPE_IPV4);
            assert_eq!(data.first().map(|b| b >> 4), Some(4));
            assert_eq!(vlan, Some(3704));
        }
    }

    #[test]
    fn pktap_capture_is_a_dns_query_over_ipv4() {
        let decoded = decode_file(&Path::new(PCAPS_DIR).join("tcpdump__LINKTYPE_PKTAP.pcap"));
        let [Ok((ether_type, data, None))] = &decoded[..] else {
            panic!("{decoded:?}");
        };
        assert_eq!(*ether_type, ETHERTYPE_IPV4);
        assert_eq!(data[0], 0x45);
        assert_eq!(data[9], 17, "UDP");
        assert_eq!(u16::from_be_bytes([data[22], data[23]]), 53, "to port 53");
    }

    #[test]
    fn raw_ip_captures_are_ip() {
        for name in [
            "sv__bug-5881-01__input.pcap",
            "sv__tcp-fastopen-10-syn-data-ignore__input.pcap",
        ] {
            let decoded = decode_file(&Path::new(PCAPS_DIR).join(name));
            assert!(!decoded.is_empty());
            for d in decoded {
                let (ether_type, data, _) = d.unwrap();
                let version = data[0] >> 4;
                assert!(
                    (ether_type, version) == (ETHERTYPE_IPV4, 4)
                        || (ether_type, version) == (ETHERTYPE_IPV6, 6),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn every_shared_capture_decodes_without_link_errors() {
        for entry in std::fs::read_dir(PCAPS_DIR).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
                continue;
            }
            for d in decode_file(&path) {
                assert!(d.is_ok(), "{name}: {d:?}");
            }
        }
    }

    /// What the fixtures were made from: frames 294-323 of ndpi__iphone.pcap.
    fn fixture_source() -> Vec<(u16, Vec<u8>)> {
        let decoded = decode_file(&Path::new(PCAPS_DIR).join("ndpi__iphone.pcap"));
        decoded[293..323]
            .iter()
            .map(|d| {
                let (ether_type, data, _) = d.clone().unwrap();
                (ether_type, data)
            })
            .collect()
    }

    #[test]
    fn link_fixtures_decode_like_the_ethernet_original() {
        let original = fixture_source();
        assert_eq!(original.len(), 30);
        assert!(
            original
                .iter()
                .any(|(_, ip)| ip.windows(18).any(|w| w == b"gateway.icloud.com"))
        );
        let fixtures = [
            ("iphone-sll.pcap", None),
            ("iphone-sll2.pcap", None),
            ("iphone-null.pcap", None),
            ("iphone-raw.pcap", None),
            ("iphone-pktap.pcap", None),
            ("iphone-vlan.pcap", Some(100)),
            ("iphone-nsec.pcap", None),
            ("iphone-be.pcap", None),
            ("iphone-mixed.pcapng", None),
        ];
        for (name, vlan) in fixtures {
            let decoded = decode_file(&Path::new(FIXTURES_DIR).join(name));
            let decoded: Vec<(u16, Vec<u8>)> = decoded
                .into_iter()
                .map(|d| {
                    let (ether_type, data, tag) = d.unwrap();
                    assert_eq!(tag, vlan, "{name}");
                    (ether_type, data)
                })
                .collect();
            assert_eq!(decoded, original, "{name}");
        }
    }
}
