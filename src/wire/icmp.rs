//! A checked view over ICMP and ICMPv6 messages, and the packet an error message quotes.
//!
//! An error message (destination unreachable, time exceeded, ...) carries the start of the
//! packet that caused it: its IP header and at least 8 bytes of its payload, usually cut
//! there. [`quoted_packet`] reads that packet's addresses and ports with the lax IP views,
//! since a quote is cut by design.

use std::net::IpAddr;

use super::ip::{Ipv4Packet, Ipv6Packet, ip_proto, split_auth_header};
use super::reader::{be16, be16_in};

/// ICMP (v4) destination unreachable.
pub const V4_DEST_UNREACHABLE: u8 = 3;
/// ICMPv6 destination unreachable.
pub const V6_DEST_UNREACHABLE: u8 = 1;
/// ICMPv6 types below this are errors (RFC 4443 §2.1).
pub const V6_FIRST_INFORMATIONAL: u8 = 128;

/// Whether an ICMP (`v6` false) or ICMPv6 message type is an error message, which quotes the
/// packet that caused it: for ICMP destination unreachable (3), source quench (4), redirect
/// (5), time exceeded (11) and parameter problem (12); for ICMPv6 every type below 128.
#[inline]
pub fn is_error(v6: bool, icmp_type: u8) -> bool {
    if v6 {
        icmp_type < V6_FIRST_INFORMATIONAL
    } else {
        matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
    }
}

/// Whether an ICMP or ICMPv6 message type is destination unreachable, which covers
/// "administratively prohibited".
#[inline]
pub fn is_unreachable(v6: bool, icmp_type: u8) -> bool {
    icmp_type
        == if v6 {
            V6_DEST_UNREACHABLE
        } else {
            V4_DEST_UNREACHABLE
        }
}

/// An ICMP or ICMPv6 message whose 8-byte header (type, code, checksum, 4 bytes that depend
/// on the type) is whole.
#[derive(Debug, Clone, Copy)]
pub struct IcmpMessage<'a> {
    header: &'a [u8; IcmpMessage::HEADER_LEN],
    body: &'a [u8],
    v6: bool,
}

impl<'a> IcmpMessage<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = 8;
    const CHECKSUM: usize = 2;

    /// The message, if its header is whole; `v6` for ICMPv6.
    ///
    /// # Errors
    /// `None` if the header is cut short.
    #[inline]
    pub fn new_checked(bytes: &'a [u8], v6: bool) -> Option<Self> {
        let (header, body) = bytes.split_first_chunk::<{ IcmpMessage::HEADER_LEN }>()?;
        Some(Self { header, body, v6 })
    }

    /// ICMPv6 rather than ICMP.
    #[inline]
    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// Message type.
    #[inline]
    pub fn icmp_type(&self) -> u8 {
        self.header[0]
    }

    /// Message code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.header[1]
    }

    /// Checksum (not verified).
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16_in::<{ IcmpMessage::CHECKSUM }, _>(self.header)
    }

    /// The four bytes after the checksum (identifier and sequence, MTU, pointer, unused).
    #[inline]
    pub fn rest_of_header(&self) -> [u8; 4] {
        let [_, _, _, _, rest @ ..] = *self.header;
        rest
    }

    /// Everything after the header.
    #[inline]
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// Whether this is an error message (see [`is_error`]).
    #[inline]
    pub fn is_error(&self) -> bool {
        is_error(self.v6, self.icmp_type())
    }

    /// For an error message, the quoted packet (the body); empty otherwise.
    #[inline]
    pub fn quoted(&self) -> &'a [u8] {
        if self.is_error() { self.body } else { &[] }
    }
}

/// The addresses and ports of a packet quoted by an ICMP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    /// IP protocol of the quoted packet.
    pub proto: u8,
    /// Its source (the original sender).
    pub src: IpAddr,
    /// Its destination.
    pub dst: IpAddr,
    /// Its source port (0 without ports).
    pub src_port: u16,
    /// Its destination port.
    pub dst_port: u16,
}

/// The addresses and ports of a quoted IP packet, if they can be read: the IP header must be
/// whole; lengths that disagree with the quote fall back to the bytes there are (a quote is
/// usually cut after 8 bytes of the transport header, so ports are read from those bytes). An
/// IPv6 extension or authentication header that cannot be read gives `None` (issue 13), as
/// does a quoted ICMP error (an error about an error is never sent, RFC 1122 §3.2.2).
pub fn quoted_packet(quoted: &[u8]) -> Option<Quoted> {
    let (src, dst, proto, payload) = match quoted.first()? >> 4 {
        4 => {
            let ip = Ipv4Packet::new_lax(quoted).ok()?;
            let (proto, payload) = match ip.protocol() {
                ip_proto::AUTH => split_auth_header(ip.payload()).ok()?,
                proto => (proto, ip.payload()),
            };
            (IpAddr::V4(ip.src()), IpAddr::V4(ip.dst()), proto, payload)
        }
        6 => {
            let ip = Ipv6Packet::new_lax(quoted).ok()?;
            let exts = ip.extensions();
            if exts.error.is_some() {
                return None;
            }
            let (src, dst) = (IpAddr::V6(ip.src()), IpAddr::V6(ip.dst()));
            (src, dst, exts.next_header, exts.payload)
        }
        _ => return None,
    };
    let (src_port, dst_port) = match proto {
        ip_proto::TCP | ip_proto::UDP => (be16(payload, 0)?, be16(payload, 2)?),
        ip_proto::ICMP | ip_proto::ICMPV6 => return None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[rustfmt::skip]
    static UNREACHABLE: [u8; 36] = [
        3, 13, 0x12, 0x34,      // destination unreachable, administratively prohibited
        0, 0, 0, 0,             // unused
        0x45, 0x00, 0x00, 0x3c, // quoted IPv4 header, total length 60 (cut)
        0, 0, 0x40, 0,
        64, 6, 0, 0,            // TCP
        192, 168, 2, 17,        // source: the original sender
        17, 57, 144, 116,       // destination
        0xc3, 0x50, 0x14, 0x67, // ports 50000 -> 5223
        0, 0, 0, 1,             // sequence number, where the quote stops
    ];

    #[test]
    fn error_message_and_its_quote() {
        let m = IcmpMessage::new_checked(&UNREACHABLE, false).unwrap();
        assert_eq!((m.icmp_type(), m.code(), m.checksum()), (3, 13, 0x1234));
        assert_eq!(m.rest_of_header(), [0; 4]);
        assert!(m.is_error() && is_unreachable(false, m.icmp_type()));
        assert_eq!(m.quoted(), &UNREACHABLE[8..]);
        let q = quoted_packet(m.quoted()).unwrap();
        assert_eq!(q.src.to_string(), "192.168.2.17");
        assert_eq!(q.dst.to_string(), "17.57.144.116");
        assert_eq!((q.proto, q.src_port, q.dst_port), (6, 50000, 5223));
        // Cut inside the ports: nothing to match.
        assert_eq!(quoted_packet(&UNREACHABLE[8..30]), None);
        let echo = IcmpMessage::new_checked(&[8, 0, 0, 0, 0, 1, 0, 1, 0xaa], false).unwrap();
        assert!(!echo.is_error() && echo.quoted().is_empty());
        assert!(is_error(true, 1) && !is_error(true, 128) && is_unreachable(true, 1));
        assert!(IcmpMessage::new_checked(&[3, 0, 0, 0, 0, 0, 0], false).is_none());
    }
}
