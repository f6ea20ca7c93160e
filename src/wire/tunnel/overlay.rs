//! The overlay headers of cloud networks and traffic mirroring: VXLAN (RFC 7348, UDP 4789)
//! and Geneve (RFC 8926, UDP 6081).

use super::{Carried, by_ether_type};
use crate::wire::reader::{be16_in, be32_in};

/// A VXLAN header: flags (the I flag says the VNI is valid), reserved, VNI, reserved; an
/// Ethernet frame follows.
#[derive(Debug, Clone, Copy)]
pub struct VxlanPacket<'a> {
    header: &'a [u8; VxlanPacket::HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> VxlanPacket<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = 8;
    const FLAG_VNI: u8 = 0x08;

    /// The header, if it is whole and has the I flag set (RFC 7348: "MUST be set to 1 for a
    /// valid VXLAN Network ID"); traffic on UDP 4789 without it is not read as VXLAN.
    ///
    /// # Errors
    /// `None` if cut short or without the I flag.
    pub fn new_checked(bytes: &'a [u8]) -> Option<Self> {
        let (header, payload) = bytes.split_first_chunk::<{ VxlanPacket::HEADER_LEN }>()?;
        (header[0] & Self::FLAG_VNI != 0).then_some(Self { header, payload })
    }

    /// The VXLAN network identifier.
    pub fn vni(&self) -> u32 {
        be32_in::<4, _>(self.header) >> 8
    }

    /// The Ethernet frame carried.
    pub fn carried(&self) -> Carried<'a> {
        Carried::Ethernet(self.payload)
    }
}

/// A Geneve header: version and options length, flags, protocol type, VNI, then options.
#[derive(Debug, Clone, Copy)]
pub struct GenevePacket<'a> {
    header: &'a [u8; GenevePacket::FIXED_LEN],
    payload: &'a [u8],
}

impl<'a> GenevePacket<'a> {
    /// The fixed header's length (options follow).
    pub const FIXED_LEN: usize = 8;
    const PROTOCOL: usize = 2;

    /// The header, if it is version 0 and its options are all there.
    ///
    /// # Errors
    /// `None` for another version or a header cut short.
    pub fn new_checked(bytes: &'a [u8]) -> Option<Self> {
        let (header, rest) = bytes.split_first_chunk::<{ GenevePacket::FIXED_LEN }>()?;
        if header[0] >> 6 != 0 {
            return None;
        }
        let options = usize::from(header[0] & 0x3f) * 4;
        let payload = rest.get(options..)?;
        Some(Self { header, payload })
    }

    /// The payload's protocol type (an EtherType; 0x6558 for Ethernet).
    pub fn protocol(&self) -> u16 {
        be16_in::<{ GenevePacket::PROTOCOL }, _>(self.header)
    }

    /// The virtual network identifier.
    pub fn vni(&self) -> u32 {
        be32_in::<4, _>(self.header) >> 8
    }

    /// What the packet carries.
    pub fn carried(&self) -> Carried<'a> {
        by_ether_type(self.protocol(), self.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vxlan_needs_its_flag() {
        let p = [0x08, 0, 0, 0, 0, 0x12, 0x34, 0, 0xee];
        let v = VxlanPacket::new_checked(&p).unwrap();
        assert_eq!((v.vni(), v.carried()), (0x1234, Carried::Ethernet(&[0xee])));
        assert!(VxlanPacket::new_checked(&[0, 0, 0, 0, 0, 0x12, 0x34, 0]).is_none());
        assert!(VxlanPacket::new_checked(&p[..7]).is_none());
    }

    #[test]
    fn geneve_options_are_skipped() {
        // Two words of options, protocol IPv4.
        let p = [
            0x02, 0, 0x08, 0x00, 0, 0, 7, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x45,
        ];
        let g = GenevePacket::new_checked(&p).unwrap();
        assert_eq!((g.vni(), g.carried()), (7, Carried::Ip(&[0x45])));
        assert!(GenevePacket::new_checked(&p[..15]).is_none());
        let mut v1 = p;
        v1[0] |= 0x40;
        assert!(GenevePacket::new_checked(&v1).is_none());
    }
}
