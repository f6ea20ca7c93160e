//! TEMPORARY STUB (replaced by the real link decoder).
use crate::capture::LinkType;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
pub struct NetworkSlice<'a> { pub ether_type: u16, pub data: &'a [u8], pub vlan: Option<u16> }
#[derive(Debug, Clone, Copy, PartialEq, Eq)] pub enum LinkError { Truncated, UnsupportedLinkType(u32), Malformed }
pub fn network_slice(link: LinkType, data: &[u8]) -> Result<NetworkSlice<'_>, LinkError> {
    match link.0 {
        1 => { if data.len() < 14 { return Err(LinkError::Truncated) } Ok(NetworkSlice { ether_type: u16::from_be_bytes([data[12], data[13]]), data: &data[14..], vlan: None }) }
        101 | 12 | 14 => { let v = data.first().map(|b| b >> 4); Ok(NetworkSlice { ether_type: if v == Some(6) { ETHERTYPE_IPV6 } else { ETHERTYPE_IPV4 }, data, vlan: None }) }
        n => Err(LinkError::UnsupportedLinkType(n)),
    }
}
