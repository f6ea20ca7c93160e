//! Link layers: from a captured frame of any supported link type down to its network-layer
//! payload, stepping through the [`crate::wire::link`] views.
//!
//! The result is the payload's EtherType (or a pseudo-value for payloads that have none) and a
//! slice of the frame, never a copy. Frames that are not IP (ARP, EAPOL, LLDP, PPP control,
//! 802.3 LLC, ...) are not errors: they come back with their EtherType for the caller to count.
//! Errors are reserved for frames whose link header is cut short or cannot be right, and for
//! link types this module does not decode.
//!
//! Hand-written rather than etherparse (which decodes the IP layer in [`super`]) because
//! etherparse 0.21 does not parse most of the link layers captures bring: it has no PKTAP
//! (every capture from a Mac with `-i any` or `--pktap`), no BSD loopback (NULL/LOOP), no
//! Linux cooked v2 (SLL2, tcpdump's `-i any` since 4.99), no PPPoE session header, no 802.3
//! LLC/SNAP (it reads an 802.3 length field as an EtherType), and its lax slicing
//! (`LaxSlicedPacket`) has no entry point for Linux cooked v1 either (only the strict
//! `SlicedPacket::from_linux_sll`, which refuses a packet cut by the snap length). It also
//! keeps at most three VLAN/MACsec link extensions (`LaxSlicedPacket::LINK_EXTS_CAP`), where
//! this module stops at [`MAX_ENCAPSULATIONS`] of any kind. Nor does it read 802.11 (see
//! [`wifi`]).

mod addrs;
mod wifi;

pub use addrs::LinkAddrs;

use crate::capture::LinkType;
use crate::wire::ieee80211::FrameKind;
use crate::wire::link::{
    BsdLoopback, EtherType, EthernetFrame, LinkError, LinuxSll, LinuxSll2, LlcFrame, PktapHeader,
    PppoeHeader, VlanTag, ppp,
};

/// Most link-layer shims (VLAN tags, PPPoE, SNAP, PKTAP) one frame may stack. Real networks
/// use two or three; the limit stops crafted frames from costing unbounded work.
pub const MAX_ENCAPSULATIONS: usize = 8;

/// The network-layer part of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkSlice<'a> {
    /// EtherType of `data`, or [`EtherType::LLC`] / [`EtherType::UNKNOWN`].
    pub ether_type: EtherType,
    /// The payload: an IP header first when `ether_type` is IPv4 or IPv6.
    pub data: &'a [u8],
    /// Outermost VLAN id, if the frame was tagged.
    pub vlan: Option<u16>,
}

/// Finds the network-layer payload of a frame captured with link type `link`.
///
/// # Errors
/// A [`LinkError`] when a link header is cut short or cannot be right, or the link type is
/// not one appletap decodes.
pub fn network_slice(link: LinkType, data: &[u8]) -> Result<NetworkSlice<'_>, LinkError> {
    link_slice(link, data, 0)
}

/// The link-layer addresses of a frame, borrowed from it: for Ethernet, Ethernet inside
/// PKTAP, and 802.11 data frames; `None` for link layers without them (raw IP, loopback,
/// Linux cooked captures, which keep only the sender's address).
#[inline]
pub fn addresses(link: LinkType, data: &[u8]) -> Option<LinkAddrs<'_>> {
    match link {
        LinkType::ETHERNET => Some(LinkAddrs::Ethernet(
            EthernetFrame::new_checked(data).ok()?.addresses(),
        )),
        LinkType::PKTAP => {
            let pktap = PktapHeader::new_checked(data).ok()?;
            (pktap.type_next() == PktapHeader::TYPE_PACKET
                && LinkType(pktap.dlt()) == LinkType::ETHERNET)
                .then(|| EthernetFrame::new_checked(pktap.inner()).ok())
                .flatten()
                .map(|e| LinkAddrs::Ethernet(e.addresses()))
        }
        LinkType::IEEE802_11 | LinkType::IEEE802_11_RADIOTAP => wifi::addresses(link, data),
        _ => None,
    }
}

/// The kind of an 802.11 frame, for the report's counters: `None` for other link types and
/// for a capture record that ends before the frame control field.
pub fn wifi_frame_kind(link: LinkType, data: &[u8]) -> Option<FrameKind> {
    if !link.is_ieee80211() {
        return None;
    }
    wifi::frame_kind(link, data)
}

/// The IP packet and the link addresses of an untagged Ethernet frame that carries IPv4 or
/// IPv6, the bulk of any capture; `None` for any other frame (which [`network_slice`] reads).
/// Read straight, two compares: through the general walker, with its loop over tags and
/// encapsulations, the same answer cost 50 instructions a packet (callgrind, first 100,000
/// packets of the benchmark capture).
#[inline(always)]
pub fn plain_ethernet_ip(link: LinkType, data: &[u8]) -> Option<(&[u8], LinkAddrs<'_>)> {
    if link != LinkType::ETHERNET {
        return None;
    }
    let eth = EthernetFrame::new_checked(data).ok()?;
    let ether_type = EtherType(eth.type_or_len());
    (ether_type == EtherType::IPV4 || ether_type == EtherType::IPV6)
        .then(|| (eth.payload(), LinkAddrs::Ethernet(eth.addresses())))
}

fn link_slice(link: LinkType, data: &[u8], depth: usize) -> Result<NetworkSlice<'_>, LinkError> {
    match link {
        LinkType::ETHERNET => ethernet(data, depth),
        LinkType::NULL => {
            let h = BsdLoopback::new_checked(data)?;
            Ok(untagged(bsd_family(h.family_host_order()), h.payload()))
        }
        LinkType::LOOP => {
            let h = BsdLoopback::new_checked(data)?;
            Ok(untagged(bsd_family(h.family_network_order()), h.payload()))
        }
        LinkType::RAW | LinkType::RAW_DLT12 | LinkType::RAW_DLT14 => raw_ip(data),
        LinkType::IPV4 => Ok(untagged(EtherType::IPV4, data)),
        LinkType::IPV6 => Ok(untagged(EtherType::IPV6, data)),
        LinkType::LINUX_SLL => {
            let h = LinuxSll::new_checked(data)?;
            linux_cooked(h.protocol(), h.payload(), depth)
        }
        LinkType::LINUX_SLL2 => {
            let h = LinuxSll2::new_checked(data)?;
            linux_cooked(h.protocol(), h.payload(), depth)
        }
        LinkType::PKTAP => pktap(data, depth),
        LinkType::IEEE802_11 | LinkType::IEEE802_11_RADIOTAP => {
            wifi::network_slice(link, data, depth)
        }
        LinkType(other) => Err(LinkError::UnsupportedLinkType(other)),
    }
}

fn untagged(ether_type: EtherType, data: &[u8]) -> NetworkSlice<'_> {
    NetworkSlice {
        ether_type,
        data,
        vlan: None,
    }
}

fn ethernet(frame: &[u8], depth: usize) -> Result<NetworkSlice<'_>, LinkError> {
    let eth = EthernetFrame::new_checked(frame)?;
    after_type_field(eth.type_or_len(), eth.payload(), None, depth)
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
            0..=EtherType::MAX_8023_LENGTH => {
                // 802.3: the field is the payload length. Anything past it is padding; a
                // shorter capture is the snaplen's doing, not damage.
                let len = usize::from(type_or_len);
                let llc_data = data.get(..len).unwrap_or(data);
                match snap_ethertype(llc_data)? {
                    Some((ether_type, rest)) => (type_or_len, data) = (ether_type, rest),
                    None => {
                        return Ok(NetworkSlice {
                            ether_type: EtherType::LLC,
                            data: llc_data,
                            vlan,
                        });
                    }
                }
            }
            // Neither a length nor an EtherType.
            0x05DD..EtherType::MIN => return Err(LinkError::Malformed),
            _ if EtherType(type_or_len).is_vlan_tag() => {
                let tag = VlanTag::new_checked(data)?;
                vlan.get_or_insert(tag.vlan_id());
                (type_or_len, data) = (tag.inner_type(), tag.payload());
            }
            _ if EtherType(type_or_len) == EtherType::PPPOE_SESSION => {
                return pppoe_session(data, vlan);
            }
            ether_type => {
                return Ok(NetworkSlice {
                    ether_type: EtherType(ether_type),
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
    let llc = LlcFrame::new_checked(llc)?;
    if !llc.is_snap() {
        return Ok(None);
    }
    let (oui, protocol, rest) = llc.snap()?;
    if LlcFrame::OUI_ETHERTYPE.contains(&oui) && protocol >= EtherType::MIN {
        Ok(Some((protocol, rest)))
    } else {
        Ok(None)
    }
}

fn pppoe_session(data: &[u8], vlan: Option<u16>) -> Result<NetworkSlice<'_>, LinkError> {
    let pppoe = PppoeHeader::new_checked(data)?;
    if pppoe.ver_type() != PppoeHeader::VER_TYPE || pppoe.code() != PppoeHeader::CODE_SESSION {
        return Err(LinkError::Malformed);
    }
    let frame = pppoe.ppp();
    let (protocol, payload) = ppp::protocol(frame)?;
    let (ether_type, data) = match protocol {
        ppp::IPV4 => (EtherType::IPV4, payload),
        ppp::IPV6 => (EtherType::IPV6, payload),
        _ => (EtherType::PPPOE_SESSION, frame),
    };
    Ok(NetworkSlice {
        ether_type,
        data,
        vlan,
    })
}

/// What follows a Linux cooked header's protocol field.
fn linux_cooked(
    protocol: u16,
    payload: &[u8],
    depth: usize,
) -> Result<NetworkSlice<'_>, LinkError> {
    if protocol >= EtherType::MIN {
        // An EtherType; VLAN tags and PPPoE can still follow.
        return after_type_field(protocol, payload, None, depth);
    }
    // Below 0x0600 the field is a Linux pseudo-protocol, not an 802.3 length.
    if protocol == LinuxSll::ETH_P_802_2 {
        if let Some((ether_type, rest)) = snap_ethertype(payload)? {
            return after_type_field(ether_type, rest, None, depth);
        }
        return Ok(untagged(EtherType::LLC, payload));
    }
    Ok(untagged(EtherType::UNKNOWN, payload))
}

/// The EtherType of a BSD address family.
fn bsd_family(family: u32) -> EtherType {
    if family == BsdLoopback::AF_INET {
        EtherType::IPV4
    } else if BsdLoopback::AF_INET6.contains(&family) {
        EtherType::IPV6
    } else {
        EtherType::UNKNOWN
    }
}

/// Raw IP without a link header: the IP version nibble says which.
fn raw_ip(packet: &[u8]) -> Result<NetworkSlice<'_>, LinkError> {
    match packet.first().map(|b| b >> 4) {
        None => Err(LinkError::Truncated),
        Some(4) => Ok(untagged(EtherType::IPV4, packet)),
        Some(6) => Ok(untagged(EtherType::IPV6, packet)),
        Some(_) => Err(LinkError::Malformed),
    }
}

fn pktap(frame: &[u8], depth: usize) -> Result<NetworkSlice<'_>, LinkError> {
    let pktap = PktapHeader::new_checked(frame)?;
    if pktap.type_next() != PktapHeader::TYPE_PACKET {
        return Ok(untagged(EtherType::UNKNOWN, pktap.inner()));
    }
    let depth = depth + 1;
    if depth >= MAX_ENCAPSULATIONS {
        return Err(LinkError::Malformed);
    }
    // pth_dlt is a DLT_ value; for the link types PKTAP wraps (Ethernet, NULL, raw IP on
    // Darwin = 12) the DLT and LINKTYPE numbers coincide.
    link_slice(LinkType(pktap.dlt()), pktap.inner(), depth)
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

    fn slice(ether_type: EtherType, data: &[u8], vlan: Option<u16>) -> NetworkSlice<'_> {
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
            slice(EtherType::IPV4, &IPV4_START, None)
        );
        assert_eq!(ok(e, &ETHERNET_ARP), slice(EtherType::ARP, &[0, 1], None));
        assert_eq!(
            ok(e, &DOT1Q_IPV6),
            slice(EtherType::IPV6, &IPV6_START, Some(100))
        );
        assert_eq!(
            ok(e, &QINQ_IPV4),
            slice(EtherType::IPV4, &IPV4_START, Some(10))
        );
        assert_eq!(
            ok(e, &LEGACY_QINQ_EAPOL),
            slice(EtherType::EAPOL, &[0x02, 0x03, 0x00, 0x5f], Some(4095))
        );
    }

    #[test]
    fn pppoe() {
        let e = LinkType::ETHERNET;
        assert_eq!(
            ok(e, &PPPOE_IPV4),
            slice(EtherType::IPV4, &IPV4_START, None)
        );
        assert_eq!(
            ok(e, &PPPOE_COMPRESSED_IPV6),
            slice(EtherType::IPV6, &IPV6_START, None)
        );
        assert_eq!(
            ok(e, &PPPOE_LCP),
            slice(EtherType::PPPOE_SESSION, &PPPOE_LCP[20..], None)
        );
        assert_eq!(
            ok(e, &PPPOE_DISCOVERY),
            slice(EtherType::PPPOE_DISCOVERY, &PPPOE_DISCOVERY[14..], None)
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
            slice(EtherType::LLC, &IEEE8023_STP[14..21], None)
        );
        assert_eq!(
            ok(e, &IEEE8023_SNAP_IPV4),
            slice(EtherType::IPV4, &IPV4_START, None)
        );
        let mut neither = ETHERNET_IPV4;
        neither[12..14].copy_from_slice(&0x05FFu16.to_be_bytes());
        assert_eq!(network_slice(e, &neither), Err(LinkError::Malformed));
    }

    #[test]
    fn linux_cooked() {
        let v1 = LinkType::LINUX_SLL;
        assert_eq!(ok(v1, &SLL_IPV4), slice(EtherType::IPV4, &IPV4_START, None));
        assert_eq!(
            ok(v1, &SLL_VLAN_IPV4),
            slice(EtherType::IPV4, &IPV4_START, Some(7))
        );
        assert_eq!(
            ok(v1, &SLL_LLC),
            slice(EtherType::LLC, &[0x42, 0x42, 0x03], None)
        );
        let v2 = LinkType::LINUX_SLL2;
        assert_eq!(
            ok(v2, &SLL2_IPV6),
            slice(EtherType::IPV6, &IPV6_START, None)
        );
    }

    #[test]
    fn bsd_loopback_and_raw() {
        let null = LinkType::NULL;
        assert_eq!(
            ok(null, &NULL_LE_IPV4),
            slice(EtherType::IPV4, &IPV4_START, None)
        );
        assert_eq!(
            ok(null, &NULL_BE_IPV6),
            slice(EtherType::IPV6, &IPV6_START, None)
        );
        assert_eq!(
            ok(null, &NULL_LE_IPV6_FREEBSD),
            slice(EtherType::IPV6, &IPV6_START, None)
        );
        assert_eq!(
            ok(null, &NULL_APPLETALK),
            slice(EtherType::UNKNOWN, &[0xab, 0xcd], None)
        );
        assert_eq!(
            ok(LinkType::LOOP, &LOOP_IPV6),
            slice(EtherType::IPV6, &IPV6_START, None)
        );
        // LOOP is always network order: a little-endian family is not IP.
        assert_eq!(
            ok(LinkType::LOOP, &NULL_LE_IPV4).ether_type,
            EtherType::UNKNOWN
        );
        for raw in [LinkType::RAW, LinkType::RAW_DLT12, LinkType::RAW_DLT14] {
            assert_eq!(
                ok(raw, &IPV4_START),
                slice(EtherType::IPV4, &IPV4_START, None)
            );
            assert_eq!(
                ok(raw, &IPV6_START),
                slice(EtherType::IPV6, &IPV6_START, None)
            );
            assert_eq!(network_slice(raw, &[0x55]), Err(LinkError::Malformed));
            assert_eq!(network_slice(raw, &[]), Err(LinkError::Truncated));
        }
        assert_eq!(ok(LinkType::IPV4, &IPV4_START).ether_type, EtherType::IPV4);
        assert_eq!(ok(LinkType::IPV6, &IPV6_START).ether_type, EtherType::IPV6);
    }

    #[test]
    fn pktap() {
        let p = LinkType::PKTAP;
        assert_eq!(
            ok(p, &PKTAP_ETHERNET),
            slice(EtherType::IPV4, &IPV4_START, None)
        );
        assert_eq!(
            ok(p, &PKTAP_NULL),
            slice(EtherType::IPV6, &IPV6_START, None)
        );
        assert_eq!(
            ok(p, &PKTAP_NOT_A_PACKET),
            slice(EtherType::UNKNOWN, &[0xab, 0xcd], None)
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
            network_slice(LinkType(119), &ETHERNET_IPV4),
            Err(LinkError::UnsupportedLinkType(119))
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
        let links = [0, 1, 12, 14, 101, 105, 108, 113, 127, 228, 229, 258, 276];
        for round in 0..20_000 {
            state = crate::testing::xorshift(state);
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
    type Decoded = Result<(EtherType, Vec<u8>, Option<u16>), LinkError>;

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
            assert_eq!(ether_type, EtherType::IPV4);
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
        assert_eq!(*ether_type, EtherType::IPV4);
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
                    (ether_type, version) == (EtherType::IPV4, 4)
                        || (ether_type, version) == (EtherType::IPV6, 6),
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

    #[test]
    fn plain_ethernet_shortcut_answers_as_the_link_walker_on_every_shared_capture() {
        // Where the shortcut answers, it must give the walker's IP payload and addresses;
        // where it does not, the frame must be one the walker reads as something else than
        // untagged IP over Ethernet (or a link type other than Ethernet).
        let (mut taken, mut left) = (0u64, 0u64);
        for entry in std::fs::read_dir(PCAPS_DIR).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
                continue;
            }
            let mut cap = CaptureFile::open(&path).unwrap();
            while let Some(Ok(p)) = cap.next_packet() {
                let walked = network_slice(p.link, p.data);
                match plain_ethernet_ip(p.link, p.data) {
                    Some((ip, addrs)) => {
                        taken += 1;
                        let net = walked.expect("the walker reads it too");
                        assert!(std::ptr::eq(ip, net.data), "{name}");
                        assert!(net.vlan.is_none(), "{name}");
                        assert_eq!(Some(addrs), addresses(p.link, p.data), "{name}");
                    }
                    None => {
                        left += 1;
                        if p.link == LinkType::ETHERNET
                            && let Ok(net) = walked
                        {
                            let ip = net.ether_type == EtherType::IPV4
                                || net.ether_type == EtherType::IPV6;
                            let right_after_header = p
                                .data
                                .get(14..)
                                .is_some_and(|rest| std::ptr::eq(rest, net.data));
                            assert!(!(ip && net.vlan.is_none() && right_after_header), "{name}");
                        }
                    }
                }
            }
        }
        assert!(taken > 10_000 && left > 100, "{taken} {left}");
    }

    /// What the fixtures were made from: frames 294-323 of ndpi__iphone.pcap.
    fn fixture_source() -> Vec<(EtherType, Vec<u8>)> {
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
            let decoded: Vec<(EtherType, Vec<u8>)> = decoded
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
