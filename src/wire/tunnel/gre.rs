//! GRE (RFC 2784, with RFC 2890's key and sequence number), PPTP's enhanced GRE (RFC 2637,
//! version 1, carrying PPP) and the ERSPAN headers of switch mirror sessions that ride on GRE
//! (type II, and type III with its optional platform sub-header; type I has none).

use super::{Carried, by_ether_type, proto};
use crate::wire::reader::be16_in;

/// A GRE header whose optional fields are all there.
#[derive(Debug, Clone, Copy)]
pub struct GrePacket<'a> {
    header: &'a [u8; GrePacket::FIXED_LEN],
    payload: &'a [u8],
}

impl<'a> GrePacket<'a> {
    /// Flags, version and protocol type.
    pub const FIXED_LEN: usize = 4;
    const CHECKSUM: u8 = 0x80;
    const ROUTING: u8 = 0x40;
    const KEY: u8 = 0x20;
    const SEQUENCE: u8 = 0x10;
    const STRICT_ROUTE: u8 = 0x08;
    const ACK: u8 = 0x80;
    const VERSION: u8 = 0x07;
    const PROTOCOL: usize = 2;

    /// The header, if it is GRE version 0 without source routing (RFC 1701's routing field
    /// is obsolete) or PPTP's version 1 with its key, and every optional field it announces is
    /// there.
    ///
    /// # Errors
    /// `None` for another version, obsolete routing, or a header cut short.
    pub fn new_checked(bytes: &'a [u8]) -> Option<Self> {
        let (header, rest) = bytes.split_first_chunk::<{ GrePacket::FIXED_LEN }>()?;
        let (flags, ver) = (header[0], header[1]);
        let optional = match ver & Self::VERSION {
            0 if flags & (Self::ROUTING | Self::STRICT_ROUTE) == 0 => {
                4 * (usize::from(flags & Self::CHECKSUM != 0)
                    + usize::from(flags & Self::KEY != 0)
                    + usize::from(flags & Self::SEQUENCE != 0))
            }
            // PPTP: no checksum or routing, a key (payload length and call id), and optional
            // sequence and acknowledgment numbers.
            1 if flags & (Self::CHECKSUM | Self::ROUTING | Self::STRICT_ROUTE) == 0
                && flags & Self::KEY != 0 =>
            {
                4 * (1
                    + usize::from(flags & Self::SEQUENCE != 0)
                    + usize::from(ver & Self::ACK != 0))
            }
            _ => return None,
        };
        let payload = rest.get(optional..)?;
        Some(Self { header, payload })
    }

    /// Version: 0 (GRE) or 1 (PPTP).
    pub fn version(&self) -> u8 {
        self.header[1] & Self::VERSION
    }

    /// Whether a sequence number is present (tells ERSPAN type II from type I).
    pub fn has_sequence(&self) -> bool {
        self.header[0] & Self::SEQUENCE != 0
    }

    /// Protocol type of the payload (an EtherType).
    pub fn protocol(&self) -> u16 {
        be16_in::<{ GrePacket::PROTOCOL }, _>(self.header)
    }

    /// What follows the header.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// What the packet carries, reading the ERSPAN header (type II and III: an Ethernet
    /// frame follows) or the PPP header (PPTP: IP where the PPP protocol says so).
    pub fn carried(&self) -> Carried<'a> {
        match self.protocol() {
            proto::ERSPAN_II if !self.has_sequence() => Carried::Ethernet(self.payload),
            proto::ERSPAN_II => erspan(self.payload, ERSPAN_II_LEN, 1),
            proto::ERSPAN_III => erspan(self.payload, ERSPAN_III_LEN, 2),
            proto::PPP if self.version() == 1 => ppp(self.payload),
            // Version 1 carries nothing but PPP.
            p if self.version() == 1 => Carried::Other(p),
            p => by_ether_type(p, self.payload),
        }
    }
}

/// ERSPAN type II header: version 1, VLAN, session, index.
const ERSPAN_II_LEN: usize = 8;
/// ERSPAN type III header: version 2, ..., timestamp, SGT, then frame type and the O bit.
const ERSPAN_III_LEN: usize = 12;
/// ERSPAN type III's optional platform-specific sub-header (the O bit).
const ERSPAN_III_PLATFORM_LEN: usize = 8;

/// The frame an ERSPAN header of `len` bytes and `version` carries: Ethernet (type III's
/// frame type 0); anything else (a wrong version, another frame type) is not read.
fn erspan(bytes: &[u8], len: usize, version: u8) -> Carried<'_> {
    let (Some(header), Some(rest)) = (bytes.get(..len), bytes.get(len..)) else {
        return Carried::Other(0);
    };
    if header[0] >> 4 != version {
        return Carried::Other(0);
    }
    if version == 1 {
        return Carried::Ethernet(rest);
    }
    // Word 3: SGT (16 bits), P (1), FT (5), hardware id (6), D (1), granularity (2), O (1).
    let frame_type = (header[10] >> 2) & 0x1f;
    let rest = if header[11] & 0x01 != 0 {
        match rest.get(ERSPAN_III_PLATFORM_LEN..) {
            Some(r) => r,
            None => return Carried::Other(0),
        }
    } else {
        rest
    };
    match frame_type {
        0 => Carried::Ethernet(rest),
        ft => Carried::Other(u16::from(ft)),
    }
}

/// PPP protocol numbers PPTP carries IP in.
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;

/// What a PPP frame carries: its optional address and control bytes (0xFF 0x03), then its
/// protocol field (one byte when compressed, RFC 1661).
fn ppp(frame: &[u8]) -> Carried<'_> {
    let frame = frame.strip_prefix(&[0xff, 0x03]).unwrap_or(frame);
    let (protocol, rest) = match frame {
        [first, rest @ ..] if first & 1 == 1 => (u16::from(*first), rest),
        [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
        _ => return Carried::Other(0),
    };
    match protocol {
        PPP_IPV4 | PPP_IPV6 => Carried::Ip(rest),
        other => Carried::Other(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_fields_are_skipped_and_must_be_there() {
        // Key and sequence: 4 + 8 bytes of header.
        let mut p = vec![0x30, 0x00, 0x08, 0x00, 0, 0, 0, 1, 0, 0, 0, 2, 0x45];
        let g = GrePacket::new_checked(&p).unwrap();
        assert_eq!((g.version(), g.protocol()), (0, proto::IPV4));
        assert_eq!(g.carried(), Carried::Ip(&[0x45]));
        p.truncate(10);
        assert!(GrePacket::new_checked(&p).is_none());
        // Routing present: obsolete, not read.
        assert!(GrePacket::new_checked(&[0x40, 0, 8, 0, 0, 0, 0, 0]).is_none());
        // Version 2 does not exist.
        assert!(GrePacket::new_checked(&[0, 2, 8, 0]).is_none());
    }

    #[test]
    fn pptp_carries_ip_in_ppp() {
        // Version 1, key, sequence, no ack; PPP with address/control then IPv4.
        let p = [
            0x30, 0x01, 0x88, 0x0b, 0, 5, 0, 7, 0, 0, 0, 1, 0xff, 0x03, 0x00, 0x21, 0x45,
        ];
        let g = GrePacket::new_checked(&p).unwrap();
        assert_eq!(g.carried(), Carried::Ip(&[0x45]));
        // LCP is PPP control, not IP.
        let lcp = [
            0x30, 0x01, 0x88, 0x0b, 0, 5, 0, 7, 0, 0, 0, 1, 0xc0, 0x21, 1,
        ];
        let g = GrePacket::new_checked(&lcp).unwrap();
        assert_eq!(g.carried(), Carried::Other(0xc021));
        // Version 1 without a key is not PPTP.
        assert!(GrePacket::new_checked(&[0x10, 0x01, 0x88, 0x0b, 0, 0, 0, 1]).is_none());
    }

    #[test]
    fn erspan_headers() {
        let eth = [0xaa; 14];
        // Type II: sequence number present, 8-byte header of version 1.
        let mut p = vec![0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1];
        p.extend([0x10, 0x01, 0, 1, 0, 0, 0, 0]);
        p.extend(eth);
        assert_eq!(
            GrePacket::new_checked(&p).unwrap().carried(),
            Carried::Ethernet(&eth)
        );
        // A version that disagrees with the protocol type is not read.
        p[8] = 0x20;
        assert_eq!(
            GrePacket::new_checked(&p).unwrap().carried(),
            Carried::Other(0)
        );
        // Type III with the platform sub-header.
        let mut p = vec![0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 1];
        p.extend([0x20, 0x01, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend([0; 8]);
        p.extend(eth);
        assert_eq!(
            GrePacket::new_checked(&p).unwrap().carried(),
            Carried::Ethernet(&eth)
        );
    }
}
