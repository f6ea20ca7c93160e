//! Checked views over link-layer headers: Ethernet II / 802.3, VLAN tags, LLC/SNAP, PPPoE and
//! PPP, Linux cooked capture v1 and v2, BSD loopback (NULL/LOOP) and Apple's PKTAP.
//!
//! Each view checks its length once in `new_checked` and holds its fixed-size header as an
//! array, so every field accessor reads at a constant offset the compiler has checked: none
//! can fail or panic. Codes (EtherTypes, PPP protocols, address families) come back as data,
//! known or not; what to do with them is [`crate::decode`]'s step logic.

use std::fmt;

use thiserror::Error;

use super::reader::{Order, be16_in};

/// Why a link-layer header cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum LinkError {
    /// The frame ends inside a link-layer header.
    #[error("frame ends inside its link-layer header")]
    Truncated,
    /// A link type appletap does not decode.
    #[error("unsupported link type {0}")]
    UnsupportedLinkType(u32),
    /// A link-layer header that cannot be right (or nests too deep).
    #[error("malformed link-layer header")]
    Malformed,
}

/// An EtherType (or one of two pseudo-values for payloads that have none). Unknown values are
/// kept as they are: a frame that carries something else is data, not an error.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EtherType(pub u16);

impl EtherType {
    /// IPv4.
    pub const IPV4: Self = Self(0x0800);
    /// ARP.
    pub const ARP: Self = Self(0x0806);
    /// 802.1Q VLAN tag.
    pub const VLAN: Self = Self(0x8100);
    /// IPv6.
    pub const IPV6: Self = Self(0x86DD);
    /// PPPoE discovery stage (PADI, PADO, ...): never carries IP.
    pub const PPPOE_DISCOVERY: Self = Self(0x8863);
    /// PPPoE session stage. Returned as such when the PPP payload is not IP (LCP, IPCP, ...);
    /// the slice then starts at the PPP protocol field.
    pub const PPPOE_SESSION: Self = Self(0x8864);
    /// 802.1X authentication (EAPOL).
    pub const EAPOL: Self = Self(0x888E);
    /// 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: Self = Self(0x88A8);
    /// LLDP.
    pub const LLDP: Self = Self(0x88CC);
    /// Pre-standard QinQ outer tag still used by some switches.
    pub const QINQ_LEGACY: Self = Self(0x9100);
    /// Pseudo-value: an 802.3 frame (length field instead of an EtherType) whose LLC payload
    /// is not SNAP-encapsulated IP. The slice starts at the LLC header (DSAP). 0 is not a
    /// valid EtherType (values below 0x0600 are lengths), so it cannot be confused with one.
    pub const LLC: Self = Self(0x0000);
    /// Pseudo-value: the link header names a protocol that has no EtherType (a BSD address
    /// family other than IP, a Linux pseudo-protocol, PKTAP metadata without a packet).
    /// 0xFFFF is reserved by IEEE and never assigned.
    pub const UNKNOWN: Self = Self(0xFFFF);

    /// Smallest EtherType; below it an Ethernet type field is an 802.3 length.
    pub const MIN: u16 = 0x0600;
    /// Largest 802.3 length field; 0x05DD..0x0600 is neither length nor EtherType.
    pub const MAX_8023_LENGTH: u16 = 1500;

    /// Whether this is a VLAN tag protocol identifier (802.1Q, 802.1ad or pre-standard QinQ).
    #[inline]
    pub fn is_vlan_tag(self) -> bool {
        matches!(self, Self::VLAN | Self::QINQ | Self::QINQ_LEGACY)
    }
}

impl fmt::Debug for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EtherType({:#06x})", self.0)
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06x}", self.0)
    }
}

/// A 48-bit MAC address (EUI-48), shown as `aa:bb:cc:dd:ee:ff`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Whether the address is locally administered (bit 0x02 of the first octet): not
    /// assigned by a vendor from its IEEE prefix. Apple devices use a random one per network
    /// ("private Wi-Fi address").
    pub fn is_local(self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// Whether it is a group (multicast or broadcast) address (bit 0x01 of the first octet).
    pub fn is_group(self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// The 24-bit vendor prefix (OUI) it starts with.
    pub fn oui(self) -> u32 {
        u32::from_be_bytes([0, self.0[0], self.0[1], self.0[2]])
    }

    /// Whether the address is all zeros (a placeholder, not a device).
    pub fn is_zero(self) -> bool {
        self.0 == [0; 6]
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Splits a fixed-size header off the front of `bytes`.
#[inline]
fn header<const N: usize>(bytes: &[u8]) -> Result<(&[u8; N], &[u8]), LinkError> {
    bytes.split_first_chunk::<N>().ok_or(LinkError::Truncated)
}

/// Ethernet II header: destination (6), source (6), EtherType or 802.3 length (2).
#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<'a> {
    header: &'a [u8; EthernetFrame::HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> EthernetFrame<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = 14;
    const TYPE: usize = 12;

    /// The frame, if it holds a whole header.
    ///
    /// # Errors
    /// [`LinkError::Truncated`] if it does not.
    #[inline]
    pub fn new_checked(frame: &'a [u8]) -> Result<Self, LinkError> {
        let (header, payload) = header(frame)?;
        Ok(Self { header, payload })
    }

    /// Destination MAC address.
    #[inline]
    pub fn destination(&self) -> [u8; 6] {
        let [d @ .., _, _, _, _, _, _, _, _] = *self.header;
        d
    }

    /// Source MAC address.
    #[inline]
    pub fn source(&self) -> [u8; 6] {
        let [_, _, _, _, _, _, s @ .., _, _] = *self.header;
        s
    }

    /// Destination then source MAC address, borrowed from the frame.
    #[inline]
    pub fn addresses(&self) -> &'a [u8; 12] {
        let [addresses @ .., _, _] = self.header;
        addresses
    }

    /// The EtherType, or an 802.3 length if it is at most [`EtherType::MAX_8023_LENGTH`].
    #[inline]
    pub fn type_or_len(&self) -> u16 {
        be16_in::<{ EthernetFrame::TYPE }, _>(self.header)
    }

    /// What follows the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// A VLAN tag after its TPID: TCI (2), then the inner EtherType (2).
#[derive(Debug, Clone, Copy)]
pub struct VlanTag<'a> {
    header: &'a [u8; VlanTag::LEN],
    payload: &'a [u8],
}

impl<'a> VlanTag<'a> {
    /// Tag length (after the TPID, which is the EtherType before it).
    pub const LEN: usize = 4;
    const TCI: usize = 0;
    const INNER_TYPE: usize = 2;
    const VLAN_ID_MASK: u16 = 0x0FFF;

    /// The tag, if it is whole.
    ///
    /// # Errors
    /// [`LinkError::Truncated`] if it is not.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, LinkError> {
        let (header, payload) = header(bytes)?;
        Ok(Self { header, payload })
    }

    /// Tag control information: priority (3 bits), drop eligible (1), VLAN id (12).
    #[inline]
    pub fn tci(&self) -> u16 {
        be16_in::<{ VlanTag::TCI }, _>(self.header)
    }

    /// The VLAN id.
    #[inline]
    pub fn vlan_id(&self) -> u16 {
        self.tci() & Self::VLAN_ID_MASK
    }

    /// The type field after the tag (an EtherType, or in theory an 802.3 length).
    #[inline]
    pub fn inner_type(&self) -> u16 {
        be16_in::<{ VlanTag::INNER_TYPE }, _>(self.header)
    }

    /// What follows the tag.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// An 802.2 LLC header: DSAP, SSAP, control; with SNAP, an OUI (3) and a protocol id (2).
#[derive(Debug, Clone, Copy)]
pub struct LlcFrame<'a> {
    header: &'a [u8; LlcFrame::HEADER_LEN],
    bytes: &'a [u8],
}

impl<'a> LlcFrame<'a> {
    /// LLC header length (DSAP, SSAP, control).
    pub const HEADER_LEN: usize = 3;
    /// LLC plus SNAP header length.
    pub const SNAP_HEADER_LEN: usize = 8;
    /// The SAP value that announces a SNAP header.
    pub const SAP_SNAP: u8 = 0xAA;
    /// Unnumbered information, the only control value SNAP uses.
    pub const CONTROL_UI: u8 = 0x03;
    /// SNAP OUIs under which the protocol id is an EtherType (RFC 1042 and 802.1H).
    pub const OUI_ETHERTYPE: [[u8; 3]; 2] = [[0x00, 0x00, 0x00], [0x00, 0x00, 0xF8]];

    /// The LLC frame, if it holds a whole LLC header.
    ///
    /// # Errors
    /// [`LinkError::Truncated`] if it does not.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, LinkError> {
        let (header, _) = header(bytes)?;
        Ok(Self { header, bytes })
    }

    /// DSAP, SSAP and control.
    #[inline]
    pub fn header(&self) -> [u8; 3] {
        *self.header
    }

    /// Whether the header announces SNAP.
    #[inline]
    pub fn is_snap(&self) -> bool {
        *self.header == [Self::SAP_SNAP, Self::SAP_SNAP, Self::CONTROL_UI]
    }

    /// For a SNAP frame: the OUI, the protocol id and what follows.
    ///
    /// # Errors
    /// [`LinkError::Truncated`] if the SNAP header is cut short.
    #[inline]
    pub fn snap(&self) -> Result<([u8; 3], u16, &'a [u8]), LinkError> {
        let (snap, rest) = header::<{ LlcFrame::SNAP_HEADER_LEN }>(self.bytes)?;
        let [_, _, _, o1, o2, o3, _, _] = *snap;
        Ok(([o1, o2, o3], be16_in::<6, _>(snap), rest))
    }
}

/// A PPPoE header: version/type (1), code (1), session id (2), payload length (2).
#[derive(Debug, Clone, Copy)]
pub struct PppoeHeader<'a> {
    header: &'a [u8; PppoeHeader::LEN],
    payload: &'a [u8],
}

impl<'a> PppoeHeader<'a> {
    /// Header length.
    pub const LEN: usize = 6;
    /// Version 1, type 1: the only one defined (RFC 2516).
    pub const VER_TYPE: u8 = 0x11;
    /// Session data.
    pub const CODE_SESSION: u8 = 0x00;
    const SESSION_ID: usize = 2;
    const LENGTH: usize = 4;

    /// The header, if it is whole.
    ///
    /// # Errors
    /// [`LinkError::Truncated`] if it is not.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, LinkError> {
        let (header, payload) = header(bytes)?;
        Ok(Self { header, payload })
    }

    /// Version and type nibbles.
    #[inline]
    pub fn ver_type(&self) -> u8 {
        self.header[0]
    }

    /// Code (0 for session data).
    #[inline]
    pub fn code(&self) -> u8 {
        self.header[1]
    }

    /// Session id.
    #[inline]
    pub fn session_id(&self) -> u16 {
        be16_in::<{ PppoeHeader::SESSION_ID }, _>(self.header)
    }

    /// Payload length field.
    #[inline]
    pub fn length(&self) -> u16 {
        be16_in::<{ PppoeHeader::LENGTH }, _>(self.header)
    }

    /// The PPP frame: the payload up to the length field. The field excludes Ethernet
    /// padding; a capture cut by the snaplen may hold fewer bytes, which are all returned.
    #[inline]
    pub fn ppp(&self) -> &'a [u8] {
        self.payload
            .get(..usize::from(self.length()))
            .unwrap_or(self.payload)
    }
}

/// PPP protocol numbers carried in PPPoE sessions.
pub mod ppp {
    use super::LinkError;
    use crate::wire::reader::be16_in;

    /// IPv4.
    pub const IPV4: u16 = 0x0021;
    /// IPv6.
    pub const IPV6: u16 = 0x0057;

    /// The protocol field of a PPP frame and what follows it. With protocol-field
    /// compression (RFC 1661) a first byte with its low bit set is a complete one-byte
    /// protocol number.
    ///
    /// # Errors
    /// [`LinkError::Truncated`] if the protocol field is cut short.
    #[inline]
    pub fn protocol(frame: &[u8]) -> Result<(u16, &[u8]), LinkError> {
        match frame.split_first() {
            None => Err(LinkError::Truncated),
            Some((&first, rest)) if first & 1 == 1 => Ok((u16::from(first), rest)),
            Some(_) => {
                let (field, rest) = frame.split_first_chunk::<2>().ok_or(LinkError::Truncated)?;
                Ok((be16_in::<0, _>(field), rest))
            }
        }
    }
}

/// Linux cooked capture v1: packet type (2), ARPHRD (2), address length (2), address (8),
/// protocol (2).
#[derive(Debug, Clone, Copy)]
pub struct LinuxSll<'a> {
    header: &'a [u8; LinuxSll::HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> LinuxSll<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = 16;
    const PACKET_TYPE: usize = 0;
    const ARPHRD: usize = 2;
    const PROTOCOL: usize = 14;
    /// Linux pseudo-protocol for frames that carry an 802.2 LLC header (`ETH_P_802_2`).
    pub const ETH_P_802_2: u16 = 0x0004;

    /// The frame, if it holds a whole header.
    ///
    /// # Errors
    /// [`LinkError::Truncated`] if it does not.
    #[inline]
    pub fn new_checked(frame: &'a [u8]) -> Result<Self, LinkError> {
        let (header, payload) = header(frame)?;
        Ok(Self { header, payload })
    }

    /// Packet type (to us, broadcast, outgoing, ...).
    #[inline]
    pub fn packet_type(&self) -> u16 {
        be16_in::<{ LinuxSll::PACKET_TYPE }, _>(self.header)
    }

    /// ARPHRD device type.
    #[inline]
    pub fn arphrd(&self) -> u16 {
        be16_in::<{ LinuxSll::ARPHRD }, _>(self.header)
    }

    /// Protocol: an EtherType from 0x0600, a Linux pseudo-protocol below.
    #[inline]
    pub fn protocol(&self) -> u16 {
        be16_in::<{ LinuxSll::PROTOCOL }, _>(self.header)
    }

    /// What follows the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// Linux cooked capture v2: protocol (2), reserved (2), ifindex (4), ARPHRD (2), packet type
/// (1), address length (1), address (8).
#[derive(Debug, Clone, Copy)]
pub struct LinuxSll2<'a> {
    header: &'a [u8; LinuxSll2::HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> LinuxSll2<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = 20;
    const PROTOCOL: usize = 0;
    const IFINDEX: usize = 4;
    const ARPHRD: usize = 8;
    const PACKET_TYPE: usize = 10;

    /// The frame, if it holds a whole header.
    ///
    /// # Errors
    /// [`LinkError::Truncated`] if it does not.
    #[inline]
    pub fn new_checked(frame: &'a [u8]) -> Result<Self, LinkError> {
        let (header, payload) = header(frame)?;
        Ok(Self { header, payload })
    }

    /// Protocol, as in [`LinuxSll::protocol`].
    #[inline]
    pub fn protocol(&self) -> u16 {
        be16_in::<{ LinuxSll2::PROTOCOL }, _>(self.header)
    }

    /// Interface index.
    #[inline]
    pub fn ifindex(&self) -> u32 {
        Order::Big.u32_in::<{ LinuxSll2::IFINDEX }, _>(self.header)
    }

    /// ARPHRD device type.
    #[inline]
    pub fn arphrd(&self) -> u16 {
        be16_in::<{ LinuxSll2::ARPHRD }, _>(self.header)
    }

    /// Packet type.
    #[inline]
    pub fn packet_type(&self) -> u8 {
        self.header[Self::PACKET_TYPE]
    }

    /// What follows the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// BSD loopback (LINKTYPE_NULL and LINKTYPE_LOOP): a 4-byte address family.
#[derive(Debug, Clone, Copy)]
pub struct BsdLoopback<'a> {
    header: &'a [u8; BsdLoopback::HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> BsdLoopback<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = 4;
    /// `AF_INET` on every BSD.
    pub const AF_INET: u32 = 2;
    /// `AF_INET6` differs between BSDs: NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30.
    pub const AF_INET6: [u32; 3] = [24, 28, 30];

    /// The frame, if it holds a whole header.
    ///
    /// # Errors
    /// [`LinkError::Truncated`] if it does not.
    #[inline]
    pub fn new_checked(frame: &'a [u8]) -> Result<Self, LinkError> {
        let (header, payload) = header(frame)?;
        Ok(Self { header, payload })
    }

    /// The address family read in network order (LINKTYPE_LOOP).
    #[inline]
    pub fn family_network_order(&self) -> u32 {
        Order::Big.u32_in::<0, _>(self.header)
    }

    /// The address family in the capturing host's order (LINKTYPE_NULL), which the file does
    /// not record: families are small numbers, so whichever reading is small is the one the
    /// host wrote.
    #[inline]
    pub fn family_host_order(&self) -> u32 {
        let little = Order::Little.u32_in::<0, _>(self.header);
        if little <= u32::from(u16::MAX) {
            little
        } else {
            self.family_network_order()
        }
    }

    /// What follows the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// Apple's PKTAP header: little-endian `pth_length` (0), `pth_type_next` (4), `pth_dlt` (8),
/// then fields appletap does not need; the inner frame starts at `pth_length`.
#[derive(Debug, Clone, Copy)]
pub struct PktapHeader<'a> {
    fixed: &'a [u8; PktapHeader::FIXED_LEN],
    inner: &'a [u8],
}

impl<'a> PktapHeader<'a> {
    /// The fixed fields appletap reads.
    pub const FIXED_LEN: usize = 12;
    /// `pth_type_next` of a header followed by a packet.
    pub const TYPE_PACKET: u32 = 1;
    const TYPE_NEXT: usize = 4;
    const DLT: usize = 8;

    /// The header, if its fixed fields are whole and its length field covers them and stays
    /// inside the frame.
    ///
    /// # Errors
    /// [`LinkError::Truncated`] if the frame ends inside the header, [`LinkError::Malformed`]
    /// if the length field is shorter than the fixed fields.
    #[inline]
    pub fn new_checked(frame: &'a [u8]) -> Result<Self, LinkError> {
        let (fixed, _) = header::<{ PktapHeader::FIXED_LEN }>(frame)?;
        let header_len = usize::try_from(Order::Little.u32_in::<0, _>(fixed))
            .map_err(|_| LinkError::Malformed)?;
        if header_len < Self::FIXED_LEN {
            return Err(LinkError::Malformed);
        }
        let inner = frame.get(header_len..).ok_or(LinkError::Truncated)?;
        Ok(Self { fixed, inner })
    }

    /// `pth_length`: the whole header's length.
    #[inline]
    pub fn header_len(&self) -> u32 {
        Order::Little.u32_in::<0, _>(self.fixed)
    }

    /// `pth_type_next`: what follows the header ([`PktapHeader::TYPE_PACKET`] for a frame).
    #[inline]
    pub fn type_next(&self) -> u32 {
        Order::Little.u32_in::<{ PktapHeader::TYPE_NEXT }, _>(self.fixed)
    }

    /// `pth_dlt`: the inner frame's DLT.
    #[inline]
    pub fn dlt(&self) -> u32 {
        Order::Little.u32_in::<{ PktapHeader::DLT }, _>(self.fixed)
    }

    /// What follows the header.
    #[inline]
    pub fn inner(&self) -> &'a [u8] {
        self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rustfmt::skip]
    static VLAN_FRAME: [u8; 22] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, // destination MAC
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, // source MAC
        0x81, 0x00,                         // TPID: 802.1Q
        0x20, 0x64,                         // TCI: priority 1, VLAN 100
        0x86, 0xdd,                         // EtherType: IPv6
        0x60, 0x00, 0x00, 0x00,             // IPv6 header starts
    ];

    #[test]
    fn ethernet_and_vlan_fields() {
        let eth = EthernetFrame::new_checked(&VLAN_FRAME).unwrap();
        assert_eq!(eth.destination(), [0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_eq!(eth.source(), [0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb]);
        assert_eq!(EtherType(eth.type_or_len()), EtherType::VLAN);
        assert!(EtherType::VLAN.is_vlan_tag());
        let tag = VlanTag::new_checked(eth.payload()).unwrap();
        assert_eq!((tag.tci(), tag.vlan_id()), (0x2064, 100));
        assert_eq!(EtherType(tag.inner_type()), EtherType::IPV6);
        assert_eq!(tag.payload(), &[0x60, 0, 0, 0]);
        for cut in 0..EthernetFrame::HEADER_LEN {
            assert_eq!(
                EthernetFrame::new_checked(&VLAN_FRAME[..cut]).unwrap_err(),
                LinkError::Truncated
            );
        }
    }

    #[test]
    fn unknown_ethertypes_are_data_shown_in_hex() {
        assert_eq!(format!("{:?}", EtherType(0x88b5)), "EtherType(0x88b5)");
        assert_eq!(EtherType::IPV4.to_string(), "0x0800");
    }

    #[test]
    fn ppp_protocol_field_compression() {
        assert_eq!(
            ppp::protocol(&[0x00, 0x21, 0x45]),
            Ok((ppp::IPV4, &[0x45][..]))
        );
        assert_eq!(ppp::protocol(&[0x57, 0x60]), Ok((ppp::IPV6, &[0x60][..])));
        assert_eq!(ppp::protocol(&[0x00]), Err(LinkError::Truncated));
        assert_eq!(ppp::protocol(&[]), Err(LinkError::Truncated));
    }

    #[test]
    fn pktap_length_field_is_checked_once() {
        let mut h = [0u8; 16];
        h[0] = 16;
        h[4] = 1;
        h[8] = 1;
        let p = PktapHeader::new_checked(&h).unwrap();
        assert_eq!((p.header_len(), p.type_next(), p.dlt()), (16, 1, 1));
        assert!(p.inner().is_empty());
        h[0] = 17;
        assert_eq!(
            PktapHeader::new_checked(&h).unwrap_err(),
            LinkError::Truncated
        );
        h[0] = 11;
        assert_eq!(
            PktapHeader::new_checked(&h).unwrap_err(),
            LinkError::Malformed
        );
    }

    #[test]
    fn loopback_family_in_either_order() {
        let le = BsdLoopback::new_checked(&[2, 0, 0, 0]).unwrap();
        assert_eq!(le.family_host_order(), BsdLoopback::AF_INET);
        let be = BsdLoopback::new_checked(&[0, 0, 0, 30]).unwrap();
        assert_eq!(be.family_host_order(), 30);
        assert_eq!(be.family_network_order(), 30);
    }
}
