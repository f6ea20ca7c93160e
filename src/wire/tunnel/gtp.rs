//! GTP-U version 1 (3GPP TS 29.281), the user plane of cellular core networks: an IP packet
//! of a subscriber's session in every G-PDU message.

use super::Carried;
use crate::wire::reader::{be16_in, be32_in};

/// Most GTP-U extension headers one packet may chain before the rest is not read: real
/// packets carry one or two (PDU session container, UDP port); the bound keeps a crafted
/// chain cheap.
const MAX_EXTENSIONS: usize = 8;

/// A GTP-U version 1 header with its optional fields and extension headers.
#[derive(Debug, Clone, Copy)]
pub struct GtpUPacket<'a> {
    header: &'a [u8; GtpUPacket::FIXED_LEN],
    payload: &'a [u8],
}

impl<'a> GtpUPacket<'a> {
    /// Flags, message type, length and TEID.
    pub const FIXED_LEN: usize = 8;
    /// Message type of a G-PDU: a user packet follows.
    pub const G_PDU: u8 = 0xff;
    const PROTOCOL_TYPE: u8 = 0x10;
    const OPTIONAL: u8 = 0x07;
    const EXTENSION: u8 = 0x04;

    /// The header, if it is version 1 with the GTP protocol type (not GTP'), its length
    /// field fits the bytes and its optional fields and extension headers are all there.
    ///
    /// # Errors
    /// `None` for another version or protocol type, or a header cut short.
    pub fn new_checked(bytes: &'a [u8]) -> Option<Self> {
        let (header, rest) = bytes.split_first_chunk::<{ GtpUPacket::FIXED_LEN }>()?;
        if header[0] >> 5 != 1 || header[0] & Self::PROTOCOL_TYPE == 0 {
            return None;
        }
        // The length counts what follows the fixed header; past the bytes is the snap
        // length's doing, and the bytes there are are read.
        let len = usize::from(be16_in::<2, _>(header));
        let mut rest = rest.get(..len).unwrap_or(rest);
        if header[0] & Self::OPTIONAL != 0 {
            // Sequence number, N-PDU number, next extension header type.
            let (opt, after) = rest.split_first_chunk::<4>()?;
            rest = after;
            let mut next = if header[0] & Self::EXTENSION != 0 {
                opt[3]
            } else {
                0
            };
            let mut chained = 0;
            while next != 0 {
                chained += 1;
                // Each extension header: length in 4-byte words (itself included), content,
                // and the next type in its last byte.
                let words = usize::from(*rest.first()?);
                if words == 0 || chained > MAX_EXTENSIONS {
                    return None;
                }
                let ext = rest.get(..words * 4)?;
                next = *ext.last()?;
                rest = &rest[words * 4..];
            }
        }
        Some(Self {
            header,
            payload: rest,
        })
    }

    /// Message type (0xff: G-PDU).
    pub fn message_type(&self) -> u8 {
        self.header[1]
    }

    /// Tunnel endpoint identifier.
    pub fn teid(&self) -> u32 {
        be32_in::<4, _>(self.header)
    }

    /// What the packet carries: an IP packet in a G-PDU; other messages (echo, error
    /// indication, end marker) carry none.
    pub fn carried(&self) -> Carried<'a> {
        match (self.message_type(), self.payload.first().map(|b| b >> 4)) {
            (Self::G_PDU, Some(4 | 6)) => Carried::Ip(self.payload),
            (t, _) => Carried::Other(u16::from(t)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_headers_are_walked() {
        // E flag, one PDU session container (1 word), then IPv4.
        let p = [
            0x34, 0xff, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0x85, 1, 0x10, 0x01, 0, 0x45,
        ];
        let g = GtpUPacket::new_checked(&p).unwrap();
        assert_eq!((g.teid(), g.carried()), (1, Carried::Ip(&[0x45])));
        // An extension header of length 0 cannot be right.
        let mut bad = p;
        bad[12] = 0;
        assert!(GtpUPacket::new_checked(&bad).is_none());
        // Echo request: no user packet.
        let echo = [0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0];
        assert_eq!(
            GtpUPacket::new_checked(&echo).unwrap().carried(),
            Carried::Other(1)
        );
        // GTP' (protocol type 0) and version 2 are not GTP-U.
        assert!(GtpUPacket::new_checked(&[0x20, 0xff, 0, 0, 0, 0, 0, 0]).is_none());
        assert!(GtpUPacket::new_checked(&[0x48, 0xff, 0, 0, 0, 0, 0, 0]).is_none());
    }
}
