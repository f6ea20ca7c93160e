//! QUIC long headers on the wire (QUIC v1, RFC 9000; QUIC v2, RFC 9369): versions, the
//! long-header packet and its Initial header, the client Initial keys anyone can derive
//! (`keys`) and the frames of an Initial's plaintext ([`frames`]). Everything here is a pure
//! function of the bytes given; reassembling a flow's CRYPTO stream is
//! [`crate::inspect::quic::CryptoAssembler`]'s job.
//!
//! Hand-written rather than taken from a QUIC endpoint crate: `quinn-proto` (0.11) makes public
//! only the invariant header (`PartialDecode::new`, `dst_cid`, `len`, over an owned `BytesMut`,
//! so a copy per datagram), while header protection removal and frame parsing stay
//! crate-private behind its `Connection`; `quiche` builds BoringSSL from C. A long header, the
//! Initial key schedule and five frame types take a few hundred lines over the crate's one
//! reader. Crypto comes from `ring` (HKDF-SHA256, AES-128-GCM, AES header protection).
//!
//! Google QUIC (Q0xx public headers, Q046+/T05x long headers), version negotiation and any
//! version other than v1/v2 are recognised as such and left alone.

pub mod frames;
pub(crate) mod keys;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use super::reader::Reader;

/// RFC 9000 §17.2: in QUIC v1 (and v2, RFC 9369 §3) connection IDs are at most 20 bytes.
const MAX_CID_LEN: usize = 20;

/// An IETF QUIC version whose Initial packets this crate can decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuicVersion {
    /// QUIC version 1 (RFC 9000), wire value 0x00000001.
    V1,
    /// QUIC version 2 (RFC 9369), wire value 0x6b3343cf.
    V2,
}

impl QuicVersion {
    /// Wire value of QUIC v1 (RFC 9000 §15).
    pub const V1_WIRE: u32 = 0x0000_0001;
    /// Wire value of QUIC v2 (RFC 9369 §3.1).
    pub const V2_WIRE: u32 = 0x6b33_43cf;

    /// The version for a long header's version field, if supported.
    pub fn from_wire(version: u32) -> Option<Self> {
        match version {
            Self::V1_WIRE => Some(Self::V1),
            Self::V2_WIRE => Some(Self::V2),
            _ => None,
        }
    }

    /// The long header's version field value.
    pub fn wire(self) -> u32 {
        match self {
            Self::V1 => Self::V1_WIRE,
            Self::V2 => Self::V2_WIRE,
        }
    }

    /// The two long-header type bits: RFC 9000 §17.2 table 5 for v1; RFC 9369 §3.2 shuffles them
    /// for v2 (Initial is 0b01 there) so that middleboxes cannot ossify on v1's values.
    pub fn packet_kind(self, type_bits: u8) -> PacketKind {
        match (self, type_bits & 0b11) {
            (Self::V1, 0b00) | (Self::V2, 0b01) => PacketKind::Initial,
            (Self::V1, 0b01) | (Self::V2, 0b10) => PacketKind::ZeroRtt,
            (Self::V1, 0b10) | (Self::V2, 0b11) => PacketKind::Handshake,
            _ => PacketKind::Retry,
        }
    }
}

/// What one long-header packet is (RFC 9000 §17.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// Initial: carries the client's ClientHello, under keys an observer can derive.
    Initial,
    /// 0-RTT: early data under keys only the endpoints have.
    ZeroRtt,
    /// Handshake: the rest of the TLS handshake, under handshake keys.
    Handshake,
    /// Retry: the server asks the client to start over with a token.
    Retry,
}

/// The cleartext part of an Initial packet's long header (RFC 9000 §17.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialHeader<'a> {
    /// Which QUIC version the packet is.
    pub version: QuicVersion,
    /// Destination Connection ID (0..=20 bytes).
    pub dcid: &'a [u8],
    /// Source Connection ID (0..=20 bytes).
    pub scid: &'a [u8],
    /// Address validation token (empty unless the client answers a Retry or reuses a NEW_TOKEN).
    pub token: &'a [u8],
}

/// Why a datagram (or a packet in it) could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuicError {
    /// A long header field or the Length field runs past the end of the datagram.
    #[error("QUIC long header truncated")]
    Truncated,
    /// A connection ID length above 20 (RFC 9000 §17.2).
    #[error("QUIC connection ID longer than 20 bytes")]
    ConnectionIdTooLong,
    /// The packet is too short to hold the header protection sample (RFC 9001 §5.4.2).
    #[error("QUIC packet too short for a header protection sample")]
    TooShortForSample,
    /// AEAD authentication failed: corrupted, not a client Initial, or keyed to a DCID not seen.
    #[error("QUIC Initial packet failed authentication")]
    Decrypt,
    /// A frame inside a decrypted Initial is malformed.
    #[error("malformed frame in a QUIC Initial packet")]
    MalformedFrame,
    /// A frame type that RFC 9000 §17.2.2 does not allow in Initial packets; frames after it are
    /// not read.
    #[error("frame type {0:#x} is not allowed in a QUIC Initial packet")]
    ForbiddenFrame(u64),
    /// Permanent: the CRYPTO stream does not start with a ClientHello.
    #[error("QUIC CRYPTO stream starts with handshake type {0}, not a ClientHello")]
    NotClientHello(u8),
    /// Permanent: the ClientHello declares more bytes than
    /// [`MAX_CRYPTO_BYTES`](crate::inspect::quic::MAX_CRYPTO_BYTES) can hold.
    #[error("ClientHello of {0} bytes exceeds the reassembly bound")]
    HandshakeTooLarge(u32),
    /// `ring` refused a key derivation (not expected with these fixed sizes).
    #[error("QUIC Initial key derivation failed")]
    KeyDerivation,
}

impl QuicError {
    /// Whether the flow can never complete after this error. Other errors concern one datagram
    /// only: the assembler keeps its state and later datagrams may still complete it.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::NotClientHello(_) | Self::HandshakeTooLarge(_))
    }
}

/// Cheap check that a UDP payload starts with a QUIC v1/v2 Initial packet; exposes its header.
/// Validates the long header through the Length field (RFC 9000 §17.2.2) but decrypts nothing.
pub fn is_initial(udp_payload: &[u8]) -> Option<InitialHeader<'_>> {
    let pkt = parse_long_packet(udp_payload).ok()?;
    (pkt.kind == PacketKind::Initial).then_some(InitialHeader {
        version: pkt.version,
        dcid: pkt.dcid,
        scid: pkt.scid,
        token: pkt.token,
    })
}

/// One long-header packet of a datagram.
pub(crate) struct LongPacket<'a> {
    pub(crate) version: QuicVersion,
    pub(crate) kind: PacketKind,
    pub(crate) dcid: &'a [u8],
    pub(crate) scid: &'a [u8],
    pub(crate) token: &'a [u8],
    /// Offset of the packet number within `packet`.
    pub(crate) pn_offset: usize,
    /// The packet from its first byte through the end of its payload.
    pub(crate) packet: &'a [u8],
    /// What follows this packet in the datagram.
    pub(crate) rest: &'a [u8],
}

/// Why the start of a datagram is not a long-header packet this crate reads.
pub(crate) enum HeaderError {
    /// Not an IETF long header, or a version negotiation packet (version 0, RFC 9000 §17.2.1).
    NotQuic,
    /// A long header with a QUIC-like version this crate does not decrypt.
    Unsupported(u32),
    /// A v1/v2 long header that is malformed.
    Bad(QuicError),
}

/// Parse one long-header packet (RFC 9000 §17.2; v2 per RFC 9369 §3.2).
pub(crate) fn parse_long_packet(datagram: &[u8]) -> Result<LongPacket<'_>, HeaderError> {
    let mut r = Reader::new(datagram);
    let first = r.u8().ok_or(HeaderError::NotQuic)?;
    if first & 0x80 == 0 {
        return Err(HeaderError::NotQuic);
    }
    // The fixed bit (0x40) is not checked: RFC 9287 lets clients grease it, even in Initials.
    let version = r.u32().ok_or(HeaderError::NotQuic)?;
    if version == 0 {
        return Err(HeaderError::NotQuic);
    }
    let Some(version) = QuicVersion::from_wire(version) else {
        return Err(if is_known_other_version(version) {
            HeaderError::Unsupported(version)
        } else {
            HeaderError::NotQuic
        });
    };
    let kind = version.packet_kind(first >> 4);
    let bad = HeaderError::Bad;
    let dcid = read_cid(&mut r).map_err(bad)?;
    let scid = read_cid(&mut r).map_err(bad)?;
    if kind == PacketKind::Retry {
        // RFC 9000 §17.2.5: a Retry has no Length field and fills the rest of the datagram.
        return Ok(LongPacket {
            version,
            kind,
            dcid,
            scid,
            token: &[],
            pn_offset: datagram.len(),
            packet: datagram,
            rest: &[],
        });
    }
    let token = if kind == PacketKind::Initial {
        let token_len = r.varint_len().ok_or(bad(QuicError::Truncated))?;
        r.bytes(token_len).ok_or(bad(QuicError::Truncated))?
    } else {
        &[]
    };
    // Length covers the packet number and the protected payload (RFC 9000 §17.2).
    let length = r.varint_len().ok_or(bad(QuicError::Truncated))?;
    let pn_offset = r.position();
    let end = pn_offset
        .checked_add(length)
        .ok_or(bad(QuicError::Truncated))?;
    let (packet, rest) = (
        datagram.get(..end).ok_or(bad(QuicError::Truncated))?,
        datagram.get(end..).ok_or(bad(QuicError::Truncated))?,
    );
    Ok(LongPacket {
        version,
        kind,
        dcid,
        scid,
        token,
        pn_offset,
        packet,
        rest,
    })
}

/// Versions of QUIC-like protocols that this crate recognises but does not decrypt. Anything else
/// behind a set high bit is treated as not QUIC: RTP, DNS responses and STUN often start with 0x80
/// or above, and their next four bytes are not a version.
fn is_known_other_version(version: u32) -> bool {
    let [a, b, c, d] = version.to_be_bytes();
    // Google QUIC: "Q043", "Q046", "Q050", "T051", ... (ASCII tag and three digits).
    let gquic = matches!(a, b'Q' | b'T') && [b, c, d].iter().all(u8::is_ascii_digit);
    // IETF drafts 0xff000000..=0xff000022 (draft-34 was the last); mvfst's 0xfaceb00x; the provisional v2 codepoint 0x709a50c4 of
    // draft-ietf-quic-v2; RFC 9000 §15's reserved 0x?a?a?a?a versions that grease negotiation.
    gquic
        || (0xff00_0000..=0xff00_0022).contains(&version)
        || version & 0xffff_fff0 == 0xface_b000
        || version == 0x709a_50c4
        || version & 0x0f0f_0f0f == 0x0a0a_0a0a
}

fn read_cid<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], QuicError> {
    let len = usize::from(r.u8().ok_or(QuicError::Truncated)?);
    if len > MAX_CID_LEN {
        return Err(QuicError::ConnectionIdTooLong);
    }
    r.bytes(len).ok_or(QuicError::Truncated)
}
