//! Checked views over IPv4 and IPv6 headers, and the walk over IPv6 extension headers (and
//! the authentication header, which IPv4 carries too).
//!
//! Each view checks its length once when built and keeps its fixed header as an array, so
//! field accessors read at offsets the compiler has checked and cannot fail. Two ways to
//! build one: `new_checked` takes only whole packets whose length field agrees with the bytes
//! (the decoder's fast path), `new_lax` follows etherparse's lax slicing (a length field past
//! the bytes or too small falls back to the bytes there are), for packets cut by the snap
//! length and the packets quoted by ICMP errors.
//!
//! An extension header that runs past the packet is an error, never a payload whose protocol
//! is the extension header's number (issue 13).

use std::net::{Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use super::reader::{be16_in, be32_in};

/// IP protocol numbers appletap names (transports and the IPv6 extension headers it walks).
pub mod ip_proto {
    /// IPv6 hop-by-hop options (only directly after the IPv6 header).
    pub const HOP_BY_HOP: u8 = 0;
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Authentication header (IPv4 and IPv6).
    pub const AUTH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 destination options.
    pub const DEST_OPTIONS: u8 = 60;
}

/// Why an IP header cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum IpError {
    /// The bytes end inside a header (or, for `new_checked`, before the length field says).
    #[error("IP header cut short")]
    Truncated,
    /// A header that cannot be right: wrong version, a length field smaller than the header,
    /// a hop-by-hop header after another header, an authentication header of length zero.
    #[error("malformed IP header")]
    Malformed,
}

/// An IPv4 packet: the fixed header, its options and its payload.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<'a> {
    header: &'a [u8; Ipv4Packet::MIN_HEADER_LEN],
    options: &'a [u8],
    payload: &'a [u8],
}

impl<'a> Ipv4Packet<'a> {
    /// The fixed header's length (no options).
    pub const MIN_HEADER_LEN: usize = 20;
    const TOTAL_LEN: usize = 2;
    const IDENT: usize = 4;
    const FLAGS_FRAG: usize = 6;
    const TTL: usize = 8;
    const PROTOCOL: usize = 9;
    const MORE_FRAGMENTS: u16 = 0x2000;
    const FRAG_OFFSET_MASK: u16 = 0x1fff;

    /// Splits the header (with its options) off; the rest is the payload, before any length
    /// field is applied.
    #[inline]
    fn split(bytes: &'a [u8]) -> Result<(Self, &'a [u8]), IpError> {
        let (header, _) = bytes
            .split_first_chunk::<{ Ipv4Packet::MIN_HEADER_LEN }>()
            .ok_or(IpError::Truncated)?;
        if header[0] >> 4 != 4 {
            return Err(IpError::Malformed);
        }
        let header_len = usize::from(header[0] & 0x0f) * 4;
        if header_len < Self::MIN_HEADER_LEN {
            return Err(IpError::Malformed);
        }
        let (with_options, rest) = bytes
            .split_at_checked(header_len)
            .ok_or(IpError::Truncated)?;
        let view = Self {
            header,
            options: with_options.get(Self::MIN_HEADER_LEN..).unwrap_or(&[]),
            payload: rest,
        };
        Ok((view, rest))
    }

    /// A whole packet: version 4, a header length of at least 20 bytes and a total length
    /// that covers the header and stays inside `bytes` (bytes past it are link padding).
    ///
    /// # Errors
    /// [`IpError::Truncated`] if the header or the total length runs past `bytes`,
    /// [`IpError::Malformed`] for another version or a length field smaller than the header.
    // Always: in the decoding fast path, where left to itself the compiler called it (20
    // instructions a packet more, callgrind).
    #[inline(always)]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, IpError> {
        let (mut view, rest) = Self::split(bytes)?;
        let header_len = bytes.len() - rest.len();
        let total = view.total_len();
        if total < header_len {
            return Err(IpError::Malformed);
        }
        view.payload = rest.get(..total - header_len).ok_or(IpError::Truncated)?;
        Ok(view)
    }

    /// As etherparse's `LaxIpSlice::from_slice`: the header and its options must be there; a
    /// total length smaller than the header (unset by segmentation offload) or past the
    /// bytes (cut by the snap length) falls back to the bytes there are.
    ///
    /// # Errors
    /// As [`Ipv4Packet::new_checked`], except that the total length is not one.
    #[inline]
    pub fn new_lax(bytes: &'a [u8]) -> Result<Self, IpError> {
        let (mut view, rest) = Self::split(bytes)?;
        let header_len = bytes.len() - rest.len();
        let total = view.total_len();
        if total >= header_len
            && let Some(payload) = rest.get(..total - header_len)
        {
            view.payload = payload;
        }
        Ok(view)
    }

    /// Header length in bytes, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        Self::MIN_HEADER_LEN + self.options.len()
    }

    /// Total length field.
    #[inline]
    pub fn total_len(&self) -> usize {
        usize::from(be16_in::<{ Ipv4Packet::TOTAL_LEN }, _>(self.header))
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        be16_in::<{ Ipv4Packet::IDENT }, _>(self.header)
    }

    /// Whether the more-fragments flag is set.
    #[inline]
    pub fn more_fragments(&self) -> bool {
        be16_in::<{ Ipv4Packet::FLAGS_FRAG }, _>(self.header) & Self::MORE_FRAGMENTS != 0
    }

    /// Fragment offset, in 8-byte units.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        be16_in::<{ Ipv4Packet::FLAGS_FRAG }, _>(self.header) & Self::FRAG_OFFSET_MASK
    }

    /// Whether this packet is a fragment (more to come, or not the first).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.more_fragments() || self.frag_offset() != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.header[Self::TTL]
    }

    /// Protocol of the payload.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.header[Self::PROTOCOL]
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(be32_in::<12, _>(self.header))
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(be32_in::<16, _>(self.header))
    }

    /// Options (possibly empty).
    #[inline]
    pub fn options(&self) -> &'a [u8] {
        self.options
    }

    /// The payload, by the total length field (or, for `new_lax`, the bytes there are).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// An IPv6 packet: the fixed header and what follows it (extension headers first, if any).
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<'a> {
    header: &'a [u8; Ipv6Packet::HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> Ipv6Packet<'a> {
    /// The fixed header's length.
    pub const HEADER_LEN: usize = 40;
    const PAYLOAD_LEN: usize = 4;
    const NEXT_HEADER: usize = 6;
    const HOP_LIMIT: usize = 7;

    #[inline]
    fn split(bytes: &'a [u8]) -> Result<(&'a [u8; Ipv6Packet::HEADER_LEN], &'a [u8]), IpError> {
        let (header, rest) = bytes
            .split_first_chunk::<{ Ipv6Packet::HEADER_LEN }>()
            .ok_or(IpError::Truncated)?;
        if header[0] >> 4 != 6 {
            return Err(IpError::Malformed);
        }
        Ok((header, rest))
    }

    /// A whole packet: version 6 and a payload length that stays inside `bytes` (bytes past
    /// it are link padding). A payload length of 0 (a jumbogram, or unset) gives an empty
    /// payload.
    ///
    /// # Errors
    /// [`IpError::Truncated`] if the header or the payload length runs past `bytes`,
    /// [`IpError::Malformed`] for another version.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, IpError> {
        let (header, rest) = Self::split(bytes)?;
        let len = usize::from(be16_in::<{ Ipv6Packet::PAYLOAD_LEN }, _>(header));
        let payload = rest.get(..len).ok_or(IpError::Truncated)?;
        Ok(Self { header, payload })
    }

    /// As etherparse's `LaxIpSlice::from_slice`: the fixed header must be there; a payload
    /// length of 0 with bytes after the header (a jumbogram, or unset) or one past the bytes
    /// (cut by the snap length) falls back to the bytes there are.
    ///
    /// # Errors
    /// As [`Ipv6Packet::new_checked`], except that the payload length is not one.
    #[inline]
    pub fn new_lax(bytes: &'a [u8]) -> Result<Self, IpError> {
        let (header, rest) = Self::split(bytes)?;
        let len = usize::from(be16_in::<{ Ipv6Packet::PAYLOAD_LEN }, _>(header));
        let payload = match rest.get(..len) {
            Some(_) if len == 0 => rest,
            Some(payload) => payload,
            None => rest,
        };
        Ok(Self { header, payload })
    }

    /// Payload length field.
    #[inline]
    pub fn payload_len(&self) -> usize {
        usize::from(be16_in::<{ Ipv6Packet::PAYLOAD_LEN }, _>(self.header))
    }

    /// Next header: the protocol of the payload, or the first extension header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.header[Self::NEXT_HEADER]
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.header[Self::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> Ipv6Addr {
        let [
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            src @ ..,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
        ] = *self.header;
        Ipv6Addr::from(src)
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Ipv6Addr {
        let [
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            dst @ ..,
        ] = *self.header;
        Ipv6Addr::from(dst)
    }

    /// The payload, by the payload length field (or, for `new_lax`, the bytes there are).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// Walks the extension headers of the payload (see [`walk_extensions`]).
    #[inline]
    pub fn extensions(&self) -> Extensions<'a> {
        walk_extensions(self.next_header(), self.payload)
    }
}

/// Where a walk over extension headers stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extensions<'a> {
    /// Protocol of what follows the last header read (the header that failed, on error).
    pub next_header: u8,
    /// What follows the last header read.
    pub payload: &'a [u8],
    /// Whether a fragment header said the payload is a fragment (more to come, or not the
    /// first).
    pub fragmenting: bool,
    /// Why the walk stopped early: a header cut short or past the payload
    /// ([`IpError::Truncated`]), or one that cannot be right ([`IpError::Malformed`]).
    pub error: Option<IpError>,
}

/// Smallest IPv6 extension header (and the unit of their length field).
const EXT_UNIT: usize = 8;
/// Smallest authentication header: next header, length, reserved, SPI, sequence number.
const AUTH_MIN_LEN: usize = 12;
const FRAG_MORE: u16 = 0x0001;
const FRAG_OFFSET_MASK: u16 = 0xfff8;

/// Walks IPv6 extension headers from `next_header` over `payload`: hop-by-hop (only first),
/// routing, destination options, fragment and authentication headers, exactly the ones
/// etherparse's lax slicing walks and in the same way, so that both decoders agree. Stops at
/// the first other protocol, or at the first header that cannot be read, with what was read
/// so far. Every header is at least 8 bytes, so the walk is bounded by the payload.
#[inline]
pub fn walk_extensions(mut next_header: u8, payload: &[u8]) -> Extensions<'_> {
    let mut rest = payload;
    let mut fragmenting = false;
    let mut first = true;
    let error = loop {
        let len = match next_header {
            ip_proto::HOP_BY_HOP if !first => break Some(IpError::Malformed),
            ip_proto::HOP_BY_HOP | ip_proto::ROUTING | ip_proto::DEST_OPTIONS => {
                match rest.first_chunk::<EXT_UNIT>() {
                    Some(h) => (usize::from(h[1]) + 1) * EXT_UNIT,
                    None => break Some(IpError::Truncated),
                }
            }
            ip_proto::FRAGMENT => match rest.first_chunk::<EXT_UNIT>() {
                Some(h) => {
                    let field = be16_in::<2, _>(h);
                    fragmenting |= field & (FRAG_MORE | FRAG_OFFSET_MASK) != 0;
                    EXT_UNIT
                }
                None => break Some(IpError::Truncated),
            },
            ip_proto::AUTH => match split_auth_header(rest) {
                Ok((next, after)) => {
                    (next_header, rest) = (next, after);
                    first = false;
                    continue;
                }
                Err(e) => break Some(e),
            },
            _ => break None,
        };
        let Some((header, after)) = rest.split_at_checked(len) else {
            break Some(IpError::Truncated);
        };
        next_header = header[0];
        rest = after;
        first = false;
    };
    Extensions {
        next_header,
        payload: rest,
        fragmenting,
        error,
    }
}

/// Splits the authentication header (RFC 4302: its length field counts 4-byte words, minus
/// 2) off the front of `bytes`: its next header and what follows it.
///
/// # Errors
/// [`IpError::Truncated`] if it runs past `bytes`, [`IpError::Malformed`] for a length field
/// of zero (shorter than the header's own fixed fields).
#[inline]
pub fn split_auth_header(bytes: &[u8]) -> Result<(u8, &[u8]), IpError> {
    let h = bytes
        .first_chunk::<AUTH_MIN_LEN>()
        .ok_or(IpError::Truncated)?;
    if h[1] == 0 {
        return Err(IpError::Malformed);
    }
    let len = (usize::from(h[1]) + 2) * 4;
    let rest = bytes.get(len..).ok_or(IpError::Truncated)?;
    Ok((h[0], rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rustfmt::skip]
    static IPV4_WITH_OPTION: [u8; 28] = [
        0x46, 0x00, 0x00, 0x1a, // version 4, IHL 6, total length 26
        0x12, 0x34, 0x20, 0x00, // id, MF set, offset 0
        0x40, 0x11, 0x00, 0x00, // TTL 64, UDP, checksum
        10, 0, 0, 1,            // source
        10, 0, 0, 2,            // destination
        0x94, 0x04, 0x00, 0x00, // router alert option
        0xaa, 0xbb,             // payload
        0x00, 0x00,             // link padding
    ];

    #[test]
    fn ipv4_fields_and_lengths() {
        let ip = Ipv4Packet::new_checked(&IPV4_WITH_OPTION).unwrap();
        assert_eq!((ip.header_len(), ip.total_len()), (24, 26));
        assert_eq!(
            (ip.ident(), ip.ttl(), ip.protocol()),
            (0x1234, 64, ip_proto::UDP)
        );
        assert!(ip.more_fragments() && ip.is_fragment() && ip.frag_offset() == 0);
        assert_eq!(
            (ip.src(), ip.dst()),
            (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2))
        );
        assert_eq!(ip.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(ip.payload(), &[0xaa, 0xbb]);
        // Cut by the snap length: only the lax view takes it, with the bytes there are.
        let cut = &IPV4_WITH_OPTION[..25];
        assert_eq!(
            Ipv4Packet::new_checked(cut).unwrap_err(),
            IpError::Truncated
        );
        assert_eq!(Ipv4Packet::new_lax(cut).unwrap().payload(), &[0xaa]);
        // Options cut short: neither.
        assert_eq!(
            Ipv4Packet::new_lax(&IPV4_WITH_OPTION[..22]).unwrap_err(),
            IpError::Truncated
        );
        // A total length smaller than the header.
        let mut small = IPV4_WITH_OPTION;
        small[3] = 22;
        assert_eq!(
            Ipv4Packet::new_checked(&small).unwrap_err(),
            IpError::Malformed
        );
        assert_eq!(Ipv4Packet::new_lax(&small).unwrap().payload().len(), 4);
        // A header length field smaller than the fixed header.
        let mut ihl = IPV4_WITH_OPTION;
        ihl[0] = 0x44;
        assert_eq!(Ipv4Packet::new_lax(&ihl).unwrap_err(), IpError::Malformed);
    }

    #[rustfmt::skip]
    static IPV6_DEST_OPTS_UDP: [u8; 56] = [
        0x60, 0x00, 0x00, 0x00, // version 6
        0x00, 0x10, 60, 64,     // payload length 16, next header: destination options
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // source
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // destination
        17, 0, 1, 4, 0, 0, 0, 0, // destination options: next UDP, 8 bytes, PadN
        0x00, 0x35, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00, // UDP header
    ];

    #[test]
    fn ipv6_extension_walk() {
        let ip = Ipv6Packet::new_checked(&IPV6_DEST_OPTS_UDP).unwrap();
        assert_eq!(
            (ip.payload_len(), ip.next_header(), ip.hop_limit()),
            (16, 60, 64)
        );
        assert_eq!(ip.src().to_string(), "2001:db8::1");
        assert_eq!(ip.dst().to_string(), "2001:db8::2");
        let exts = ip.extensions();
        assert_eq!(exts.next_header, ip_proto::UDP);
        assert_eq!(exts.payload, &IPV6_DEST_OPTS_UDP[48..]);
        assert_eq!((exts.fragmenting, exts.error), (false, None));
    }

    #[test]
    fn ipv6_extension_header_past_the_payload_is_an_error_not_a_protocol() {
        // See: issue 13. Length field 2: 24 bytes, of which the payload holds 16.
        let mut p = IPV6_DEST_OPTS_UDP;
        p[41] = 2;
        let exts = Ipv6Packet::new_checked(&p).unwrap().extensions();
        assert_eq!(exts.error, Some(IpError::Truncated));
        // Hop-by-hop anywhere but first.
        let exts = walk_extensions(
            ip_proto::DEST_OPTIONS,
            &[0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0],
        );
        assert_eq!(exts.error, Some(IpError::Malformed));
        // A fragment header cut short, then a whole one that fragments.
        assert_eq!(
            walk_extensions(ip_proto::FRAGMENT, &[6, 0, 0]).error,
            Some(IpError::Truncated)
        );
        let exts = walk_extensions(ip_proto::FRAGMENT, &[6, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(
            (exts.next_header, exts.fragmenting, exts.error),
            (6, true, None)
        );
        // An authentication header of length zero, and one past the bytes.
        let ah = [6, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xaa];
        assert_eq!(split_auth_header(&ah), Ok((6, &[0xaa][..])));
        let mut zero = ah;
        zero[1] = 0;
        assert_eq!(split_auth_header(&zero), Err(IpError::Malformed));
        let mut long = ah;
        long[1] = 2;
        assert_eq!(split_auth_header(&long), Err(IpError::Truncated));
        let exts = walk_extensions(ip_proto::AUTH, &long);
        assert_eq!(
            (exts.next_header, exts.error),
            (ip_proto::AUTH, Some(IpError::Truncated))
        );
    }

    #[test]
    fn ipv6_lax_payload_length() {
        let mut p = IPV6_DEST_OPTS_UDP;
        p[5] = 0;
        assert_eq!(Ipv6Packet::new_checked(&p).unwrap().payload().len(), 0);
        assert_eq!(Ipv6Packet::new_lax(&p).unwrap().payload().len(), 16);
        assert_eq!(Ipv6Packet::new_lax(&p[..40]).unwrap().payload().len(), 0);
        p[5] = 17;
        assert_eq!(Ipv6Packet::new_checked(&p).unwrap_err(), IpError::Truncated);
        assert_eq!(Ipv6Packet::new_lax(&p).unwrap().payload().len(), 16);
        assert_eq!(
            Ipv6Packet::new_lax(&p[..39]).unwrap_err(),
            IpError::Truncated
        );
    }
}
