//! QUIC Initial packets: decrypting a client's Initial packets (QUIC v1, RFC 9000/9001; QUIC v2,
//! RFC 9369) and reassembling the CRYPTO stream that carries its TLS ClientHello.
//!
//! Initial packets are encrypted, but with keys that anyone can derive from the Destination
//! Connection ID of the client's first Initial (RFC 9001 §5.2), so a passive observer can read the
//! ClientHello (SNI, ALPN) exactly as the server does. Everything here is sans-IO: the caller feeds
//! the client→server UDP payloads of one flow, in any order, and reads the reassembled handshake
//! bytes back. Crypto comes from `ring` (HKDF-SHA256, AES-128-GCM, AES header protection).
//!
//! Google QUIC (Q0xx public headers, Q046+/T05x long headers), version negotiation and any version
//! other than v1/v2 are recognised as such and left alone.

use ring::aead::{self, quic as hp};
use ring::hkdf;

/// Bound on the reassembled CRYPTO data kept per flow. Bytes past it are dropped and counted
/// ([`CryptoAssembler::dropped_bytes`]); a ClientHello that cannot fit fails permanently.
pub const MAX_CRYPTO_BYTES: usize = 16 * 1024;

/// RFC 9000 §17.2: in QUIC v1 (and v2, RFC 9369 §3) connection IDs are at most 20 bytes.
const MAX_CID_LEN: usize = 20;
/// RFC 9001 §5.4.2: header protection samples 16 bytes of ciphertext.
const SAMPLE_LEN: usize = 16;
/// RFC 9001 §5.3: AEAD_AES_128_GCM appends a 16-byte tag.
const TAG_LEN: usize = 16;
/// RFC 9001 §5.4.2: the sample starts 4 bytes after the packet number's start, whatever the
/// packet number's real length.
const SAMPLE_SKIP: usize = 4;
/// Most disjoint received ranges tracked. Real clients split a ClientHello into a dozen or so
/// fragments; a cap keeps a hostile flow from making range bookkeeping quadratic.
const MAX_RANGES: usize = 64;
/// Retired (pre-Retry) DCIDs remembered. A server may send more than one Retry in theory, but a
/// client follows at most one per connection attempt (RFC 9000 §17.2.5.2).
const MAX_RETIRED: usize = 4;
/// RFC 9000 §19.6: the end of CRYPTO data (offset + length) cannot exceed 2^62 - 1.
const MAX_STREAM_END: u64 = (1 << 62) - 1;
/// TLS handshake message type of ClientHello (RFC 8446 §4).
const CLIENT_HELLO: u8 = 1;
/// TLS handshake message header: type (1 byte) and 24-bit length (RFC 8446 §4).
const HANDSHAKE_HEADER_LEN: usize = 4;

/// RFC 9001 §5.2: initial_salt for QUIC v1.
const V1_SALT: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
/// RFC 9369 §3.3.1: initial_salt for QUIC v2.
const V2_SALT: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];

/// An IETF QUIC version whose Initial packets this module can decrypt.
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

    fn salt(self) -> &'static [u8] {
        match self {
            Self::V1 => &V1_SALT,
            Self::V2 => &V2_SALT,
        }
    }

    /// HKDF labels for key, iv and header protection: RFC 9001 §5.1 and §5.4 for v1; RFC 9369
    /// §3.3.2 renames them for v2 so that v1 and v2 keys never coincide.
    fn labels(self) -> [&'static [u8]; 3] {
        match self {
            Self::V1 => [b"quic key", b"quic iv", b"quic hp"],
            Self::V2 => [b"quicv2 key", b"quicv2 iv", b"quicv2 hp"],
        }
    }

    /// The two long-header type bits: RFC 9000 §17.2 table 5 for v1; RFC 9369 §3.2 shuffles them
    /// for v2 (Initial is 0b01 there) so that middleboxes cannot ossify on v1's values.
    fn packet_kind(self, type_bits: u8) -> PacketKind {
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
enum PacketKind {
    Initial,
    ZeroRtt,
    Handshake,
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
    /// Permanent: the ClientHello declares more bytes than [`MAX_CRYPTO_BYTES`] can hold.
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

/// Where a flow stands after a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuicProgress {
    /// The datagram does not start with an IETF QUIC long header: a short header, a version
    /// negotiation packet (version 0), Google QUIC's public header (Q043 and older), or not QUIC.
    NotQuic,
    /// A long header with a QUIC-like version other than v1/v2: Google QUIC (Q046/Q050/T05x),
    /// IETF drafts (0xff000000..=0xff000022), mvfst (0xfaceb00x), provisional v2 (0x709a50c4) or a reserved
    /// greasing version (0x?a?a?a?a). Other values are reported as [`QuicProgress::NotQuic`].
    UnsupportedVersion(u32),
    /// QUIC v1/v2, but the ClientHello is not complete yet.
    Pending,
    /// [`CryptoAssembler::crypto_prefix`] holds the whole ClientHello.
    Complete,
    /// This datagram failed (see [`QuicError::is_permanent`] for whether the flow is over).
    Failed(QuicError),
}

/// Per-flow reassembly of the client's Initial CRYPTO stream.
///
/// Keys follow RFC 9001 §5.2: they derive from the DCID of the client's first Initial and stay in
/// force when the client later switches to the server's connection ID. Keys are only adopted once
/// they have authenticated a packet, so garbage or out-of-order datagrams cannot pin a wrong DCID.
/// A packet that only opens under keys from its own, different DCID is a client Initial after a
/// Retry (RFC 9000 §17.2.5.2, RFC 9001 §5.2): the keys move to that DCID and reassembly restarts,
/// since the client sends its ClientHello again from offset 0 to the server that sent the Retry.
pub struct CryptoAssembler {
    /// DCID whose keys authenticated the packets reassembled so far.
    origin_dcid: Option<Vec<u8>>,
    /// Keys that authenticated a packet, all derived from `origin_dcid` (at most one per version:
    /// RFC 9369 §4 lets a flow move from v1 to v2 Initials mid-handshake).
    keys: Vec<InitialKeys>,
    /// DCIDs whose keys were given up after a Retry (most recent last, at most
    /// [`MAX_RETIRED`]): late packets under them must not switch the keys back.
    retired: Vec<Vec<u8>>,
    /// Version of the last authenticated Initial.
    last_version: Option<QuicVersion>,
    /// Largest packet number authenticated, for packet number recovery (RFC 9000 §17.1).
    largest_pn: Option<u64>,
    /// CRYPTO bytes by stream offset; grows on demand up to [`MAX_CRYPTO_BYTES`].
    buf: Vec<u8>,
    /// Sorted, disjoint, non-adjacent half-open ranges of `buf` that hold received data.
    ranges: Vec<(usize, usize)>,
    /// CRYPTO bytes dropped for falling past [`MAX_CRYPTO_BYTES`] or the range cap.
    dropped: u64,
    /// A permanent failure of the current stream.
    fatal: Option<QuicError>,
    /// Initial packets authenticated.
    packets: u64,
    /// Reused decryption buffer.
    scratch: Vec<u8>,
}

impl Default for CryptoAssembler {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for CryptoAssembler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoAssembler")
            .field("origin_dcid", &self.origin_dcid)
            .field(
                "versions",
                &self.keys.iter().map(|k| k.version).collect::<Vec<_>>(),
            )
            .field("retired", &self.retired)
            .field("largest_pn", &self.largest_pn)
            .field("ranges", &self.ranges)
            .field("dropped", &self.dropped)
            .field("fatal", &self.fatal)
            .field("packets", &self.packets)
            .finish()
    }
}

impl CryptoAssembler {
    /// An empty assembler for one flow.
    pub fn new() -> Self {
        Self {
            origin_dcid: None,
            keys: Vec::new(),
            retired: Vec::new(),
            last_version: None,
            largest_pn: None,
            buf: Vec::new(),
            ranges: Vec::new(),
            dropped: 0,
            fatal: None,
            packets: 0,
            scratch: Vec::new(),
        }
    }

    /// Feed one client→server UDP payload. It may hold several coalesced QUIC packets
    /// (RFC 9000 §12.2): every Initial in it is decrypted and its CRYPTO frames kept; 0-RTT and
    /// Handshake packets are skipped (their keys are not derivable by an observer); a short header
    /// ends the datagram, since it has no length field and must come last.
    ///
    /// Feed only the client's direction: server Initials use other keys ("server in") and fail
    /// to open. `Complete` (and a permanent failure) describe the flow and win over this
    /// datagram's own problems; a non-permanent `Failed` concerns this datagram only, and an
    /// Initial that arrives before the one carrying the first DCID fails to open until then.
    pub fn push_datagram(&mut self, udp_payload: &[u8]) -> QuicProgress {
        let mut rest = udp_payload;
        let mut first = true;
        let mut error = None;
        // A short header (high bit clear) or an empty remainder ends the datagram; it also covers
        // trailing zero padding that some stacks append after the last packet.
        while rest.first().is_some_and(|b| b & 0x80 != 0) {
            match parse_long_packet(rest) {
                Ok(pkt) => {
                    rest = pkt.rest;
                    if pkt.kind == PacketKind::Initial
                        && let Err(e) = self.process_initial(&pkt)
                    {
                        error.get_or_insert(e);
                    }
                }
                Err(HeaderError::NotQuic) if first => return QuicProgress::NotQuic,
                Err(HeaderError::Unsupported(v)) if first => {
                    return QuicProgress::UnsupportedVersion(v);
                }
                Err(HeaderError::Bad(e)) if first => return self.progress(Some(e)),
                // Bytes after a valid packet that do not parse are junk padding (RFC 9000 §12.2
                // lets receivers drop them); they say nothing about the flow.
                Err(_) => break,
            }
            first = false;
        }
        if first {
            return QuicProgress::NotQuic;
        }
        self.progress(error)
    }

    /// The flow's state, with `error` (this datagram's first problem) reported only while the
    /// ClientHello is incomplete.
    fn progress(&self, error: Option<QuicError>) -> QuicProgress {
        if let Some(f) = self.fatal {
            QuicProgress::Failed(f)
        } else if self.is_complete() {
            QuicProgress::Complete
        } else if let Some(e) = error {
            QuicProgress::Failed(e)
        } else {
            QuicProgress::Pending
        }
    }

    /// The contiguous CRYPTO bytes from offset 0: a TLS handshake message stream whose first
    /// message is the ClientHello.
    pub fn crypto_prefix(&self) -> &[u8] {
        let end = match self.ranges.first() {
            Some(&(0, end)) => end,
            _ => 0,
        };
        self.buf.get(..end).unwrap_or(&[])
    }

    /// The whole ClientHello handshake message (4-byte header included), once complete.
    pub fn client_hello(&self) -> Option<&[u8]> {
        if self.fatal.is_some() {
            return None;
        }
        let prefix = self.crypto_prefix();
        let len = first_message_len(prefix)?;
        prefix.get(..len.checked_add(HANDSHAKE_HEADER_LEN)?)
    }

    /// Whether [`Self::crypto_prefix`] holds the whole first handshake message.
    pub fn is_complete(&self) -> bool {
        self.client_hello().is_some()
    }

    /// The QUIC version of the last authenticated Initial, if any.
    pub fn version(&self) -> Option<QuicVersion> {
        self.last_version
    }

    /// The DCID the Initial keys derive from (the client's first Initial, or its Initial after a
    /// Retry), once a packet has authenticated under it.
    pub fn original_dcid(&self) -> Option<&[u8]> {
        self.origin_dcid.as_deref()
    }

    /// CRYPTO bytes dropped because they lay past [`MAX_CRYPTO_BYTES`] (or would have split the
    /// received data into too many pieces).
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped
    }

    /// Initial packets authenticated so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Decrypt one Initial and keep its CRYPTO data.
    fn process_initial(&mut self, pkt: &LongPacket<'_>) -> Result<(), QuicError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = self.open_and_walk(pkt, &mut scratch);
        self.scratch = scratch;
        result
    }

    fn open_and_walk(
        &mut self,
        pkt: &LongPacket<'_>,
        scratch: &mut Vec<u8>,
    ) -> Result<(), QuicError> {
        let origin = self.origin_dcid.clone();
        if let Some(origin) = &origin {
            // RFC 9001 §5.2: keys stay those of the first Initial's DCID even after the client
            // adopts the server's connection ID.
            match self.try_open(pkt, origin, scratch) {
                Ok(opened) => return self.accept(pkt.version, opened, scratch),
                // Not a candidate for a Retry switch: same DCID (so simply corrupt), a DCID
                // already left behind (a late pre-Retry packet), or a ClientHello already
                // complete, which a restart would only throw away.
                Err(e)
                    if origin.as_slice() == pkt.dcid
                        || self.retired.iter().any(|r| r.as_slice() == pkt.dcid)
                        || self.is_complete() =>
                {
                    return Err(e);
                }
                Err(_) => {}
            }
        }
        let opened = self.try_open(pkt, pkt.dcid, scratch)?;
        if let Some(old) = origin {
            // After a Retry the client starts over with keys from the new DCID and sends its
            // ClientHello again from offset 0 (RFC 9000 §17.2.5.2); packet numbers continue
            // (§17.2.5.3), so `largest_pn` stays.
            self.restart_stream();
            self.keys.retain(|k| k.dcid == pkt.dcid);
            if self.retired.len() >= MAX_RETIRED {
                self.retired.remove(0);
            }
            self.retired.push(old);
        }
        self.origin_dcid = Some(pkt.dcid.to_vec());
        self.accept(pkt.version, opened, scratch)
    }

    /// Try the keys for `dcid` (cached or freshly derived); keep fresh keys that authenticate.
    fn try_open(
        &mut self,
        pkt: &LongPacket<'_>,
        dcid: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Result<Opened, QuicError> {
        let cached = self
            .keys
            .iter()
            .find(|k| k.version == pkt.version && k.dcid == dcid);
        let mut fresh = None;
        let keys = match cached {
            Some(k) => k,
            None => &*fresh.insert(
                InitialKeys::derive(pkt.version, dcid).map_err(|_| QuicError::KeyDerivation)?,
            ),
        };
        let opened = open_packet(keys, pkt, self.largest_pn, scratch)?;
        if let Some(k) = fresh {
            // One key set per version for the current DCID.
            self.keys.retain(|old| old.version != k.version);
            self.keys.push(k);
        }
        Ok(opened)
    }

    fn accept(
        &mut self,
        version: QuicVersion,
        opened: Opened,
        scratch: &[u8],
    ) -> Result<(), QuicError> {
        self.packets = self.packets.saturating_add(1);
        self.last_version = Some(version);
        self.largest_pn = Some(self.largest_pn.map_or(opened.pn, |l| l.max(opened.pn)));
        let plaintext = scratch
            .get(opened.start..opened.end)
            .ok_or(QuicError::Decrypt)?;
        self.walk_frames(plaintext)
    }

    fn restart_stream(&mut self) {
        self.buf.clear();
        self.ranges.clear();
        self.dropped = 0;
        self.fatal = None;
    }

    /// RFC 9000 §17.2.2: Initial packets carry only PADDING, PING, ACK, CRYPTO and
    /// CONNECTION_CLOSE (type 0x1c). Anything else is a protocol violation; reading stops there.
    fn walk_frames(&mut self, plaintext: &[u8]) -> Result<(), QuicError> {
        let mut r = Reader::new(plaintext);
        while r.remaining() > 0 {
            // RFC 9000 §12.4: frame types are varints.
            let ty = r.varint().ok_or(QuicError::MalformedFrame)?;
            match ty {
                // PADDING (§19.1), PING (§19.2): the type byte is the whole frame.
                0x00 | 0x01 => {}
                // ACK (§19.3), with ECN counts for 0x03.
                0x02 | 0x03 => skip_ack(&mut r, ty == 0x03).ok_or(QuicError::MalformedFrame)?,
                // CRYPTO (§19.6).
                0x06 => {
                    let (offset, data) = read_crypto(&mut r).ok_or(QuicError::MalformedFrame)?;
                    self.insert(offset, data);
                }
                // CONNECTION_CLOSE of the transport kind (§19.19).
                0x1c => skip_close(&mut r).ok_or(QuicError::MalformedFrame)?,
                other => return Err(QuicError::ForbiddenFrame(other)),
            }
        }
        Ok(())
    }

    /// Store CRYPTO data at `offset`. Bytes already held are kept (first copy wins, so a
    /// completed ClientHello never changes), bytes past the bound are dropped and counted.
    fn insert(&mut self, offset: u64, data: &[u8]) {
        let len = data.len() as u64;
        let end = offset.saturating_add(len);
        let bound = MAX_CRYPTO_BYTES as u64;
        if end > bound {
            self.dropped = self
                .dropped
                .saturating_add(end.saturating_sub(offset.max(bound)));
        }
        // Both fit in usize: they are at most MAX_CRYPTO_BYTES.
        let (Ok(start), Ok(stop)) = (usize::try_from(offset), usize::try_from(end.min(bound)))
        else {
            return;
        };
        if start >= stop {
            return;
        }
        let touches = |&(s, e): &(usize, usize)| s <= stop && start <= e;
        if self.ranges.len() >= MAX_RANGES && !self.ranges.iter().any(touches) {
            self.dropped = self.dropped.saturating_add((stop - start) as u64);
            return;
        }
        if self.buf.len() < stop {
            self.buf.resize(stop, 0);
        }
        // Copy only into the gaps between ranges already received.
        let mut pos = start;
        for &(s, e) in &self.ranges {
            if e <= pos {
                continue;
            }
            if s >= stop {
                break;
            }
            if s > pos {
                copy_span(&mut self.buf, data, start, pos, s);
            }
            pos = e;
            if pos >= stop {
                break;
            }
        }
        if pos < stop {
            copy_span(&mut self.buf, data, start, pos, stop);
        }
        self.add_range(start, stop);
        self.check_first_message();
    }

    fn add_range(&mut self, start: usize, stop: usize) {
        self.ranges.push((start, stop));
        self.ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(self.ranges.len());
        for (s, e) in self.ranges.drain(..) {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.ranges = merged;
    }

    /// A client's Initial CRYPTO stream holds exactly one message, its ClientHello (RFC 9001
    /// §4.1.3); anything else, or one too big to keep, ends the flow.
    fn check_first_message(&mut self) {
        if self.fatal.is_some() {
            return;
        }
        let prefix = self.crypto_prefix();
        let Some(&ty) = prefix.first() else {
            return;
        };
        if ty != CLIENT_HELLO {
            self.fatal = Some(QuicError::NotClientHello(ty));
        } else if let Some(len) = first_message_len(prefix)
            && len > MAX_CRYPTO_BYTES - HANDSHAKE_HEADER_LEN
        {
            self.fatal = Some(QuicError::HandshakeTooLarge(
                u32::try_from(len).unwrap_or(u32::MAX),
            ));
        }
    }
}

/// Copy `data[pos - start..stop - start]` to `buf[pos..stop]`, if both exist.
fn copy_span(buf: &mut [u8], data: &[u8], start: usize, pos: usize, stop: usize) {
    let (Some(from), Some(to)) = (pos.checked_sub(start), stop.checked_sub(start)) else {
        return;
    };
    if let (Some(dst), Some(src)) = (buf.get_mut(pos..stop), data.get(from..to)) {
        dst.copy_from_slice(src);
    }
}

/// The 24-bit body length of the handshake message at the start of `prefix` (RFC 8446 §4).
fn first_message_len(prefix: &[u8]) -> Option<usize> {
    match *prefix {
        [_, a, b, c, ..] => usize::try_from(u32::from_be_bytes([0, a, b, c])).ok(),
        _ => None,
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
struct LongPacket<'a> {
    version: QuicVersion,
    kind: PacketKind,
    dcid: &'a [u8],
    scid: &'a [u8],
    token: &'a [u8],
    /// Offset of the packet number within `packet`.
    pn_offset: usize,
    /// The packet from its first byte through the end of its payload.
    packet: &'a [u8],
    /// What follows this packet in the datagram.
    rest: &'a [u8],
}

enum HeaderError {
    /// Not an IETF long header, or a version negotiation packet (version 0, RFC 9000 §17.2.1).
    NotQuic,
    /// A long header with a QUIC-like version this module does not decrypt.
    Unsupported(u32),
    /// A v1/v2 long header that is malformed.
    Bad(QuicError),
}

/// Parse one long-header packet (RFC 9000 §17.2; v2 per RFC 9369 §3.2).
fn parse_long_packet(datagram: &[u8]) -> Result<LongPacket<'_>, HeaderError> {
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
    let pn_offset = r.pos;
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

/// Versions of QUIC-like protocols that this module recognises but does not decrypt. Anything else
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

/// Client Initial keys for one (version, DCID).
struct InitialKeys {
    version: QuicVersion,
    dcid: Vec<u8>,
    aead: aead::LessSafeKey,
    iv: [u8; aead::NONCE_LEN],
    hp: hp::HeaderProtectionKey,
}

/// The raw client Initial secrets, kept apart from the `ring` key objects so tests can compare
/// them with the RFC vectors.
struct KeyMaterial {
    #[cfg_attr(not(test), allow(dead_code))]
    secret: [u8; 32],
    key: [u8; 16],
    iv: [u8; aead::NONCE_LEN],
    hp: [u8; 16],
}

impl KeyMaterial {
    /// RFC 9001 §5.2 (v2: RFC 9369 §3.3): initial_secret = HKDF-Extract(initial_salt, DCID);
    /// client_initial_secret = HKDF-Expand-Label(initial_secret, "client in", "", 32); then the
    /// packet key, IV and header protection key by HKDF-Expand-Label with the version's labels.
    fn derive(version: QuicVersion, dcid: &[u8]) -> Result<Self, ring::error::Unspecified> {
        let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, version.salt()).extract(dcid);
        let mut secret = [0u8; 32];
        expand_label(&initial, b"client in", &mut secret)?;
        let client = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &secret);
        let [key_label, iv_label, hp_label] = version.labels();
        let mut m = Self {
            secret,
            key: [0; 16],
            iv: [0; aead::NONCE_LEN],
            hp: [0; 16],
        };
        expand_label(&client, key_label, &mut m.key)?;
        expand_label(&client, iv_label, &mut m.iv)?;
        expand_label(&client, hp_label, &mut m.hp)?;
        Ok(m)
    }
}

impl InitialKeys {
    fn derive(version: QuicVersion, dcid: &[u8]) -> Result<Self, ring::error::Unspecified> {
        let m = KeyMaterial::derive(version, dcid)?;
        Ok(Self {
            version,
            dcid: dcid.to_vec(),
            aead: aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &m.key)?),
            iv: m.iv,
            hp: hp::HeaderProtectionKey::new(&hp::AES_128, &m.hp)?,
        })
    }
}

/// An output length for `ring`'s HKDF-Expand.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label with an empty context (RFC 8446 §7.1, used by RFC 9001 §5.1):
/// info = uint16 length || uint8 len("tls13 " + label) || "tls13 " + label || uint8 0.
fn expand_label(
    prk: &hkdf::Prk,
    label: &[u8],
    out: &mut [u8],
) -> Result<(), ring::error::Unspecified> {
    const PREFIX: &[u8] = b"tls13 ";
    let out_len = u16::try_from(out.len()).map_err(|_| ring::error::Unspecified)?;
    let label_len =
        u8::try_from(PREFIX.len() + label.len()).map_err(|_| ring::error::Unspecified)?;
    let out_len = out_len.to_be_bytes();
    let label_len = [label_len];
    let info: [&[u8]; 5] = [&out_len, &label_len, PREFIX, label, &[0]];
    prk.expand(&info, Len(out.len()))?.fill(out)
}

/// Where the plaintext of an opened packet lies in the scratch buffer, and its packet number.
struct Opened {
    pn: u64,
    start: usize,
    end: usize,
}

/// Remove header protection (RFC 9001 §5.4) and the AEAD (§5.3) from a copy of `pkt` in
/// `scratch`.
fn open_packet(
    keys: &InitialKeys,
    pkt: &LongPacket<'_>,
    largest_pn: Option<u64>,
    scratch: &mut Vec<u8>,
) -> Result<Opened, QuicError> {
    scratch.clear();
    scratch.extend_from_slice(pkt.packet);
    let sample_start = pkt
        .pn_offset
        .checked_add(SAMPLE_SKIP)
        .ok_or(QuicError::TooShortForSample)?;
    let sample = scratch
        .get(sample_start..sample_start.saturating_add(SAMPLE_LEN))
        .filter(|s| s.len() == SAMPLE_LEN)
        .ok_or(QuicError::TooShortForSample)?;
    let mask = keys.hp.new_mask(sample).map_err(|_| QuicError::Decrypt)?;
    // §5.4.1: long headers protect the low 4 bits of the first byte (reserved bits and the packet
    // number length), then the packet number's bytes.
    let first = scratch.first_mut().ok_or(QuicError::Truncated)?;
    *first ^= mask[0] & 0x0f;
    // RFC 9000 §17.2: the reserved bits (0x0c) must be zero once unprotected, and an endpoint
    // would close the connection otherwise; the AEAD below authenticates them anyway, and an
    // observer reports what the client sent rather than enforcing the rule.
    let pn_len = usize::from(*first & 0x03) + 1;
    let pn_end = pkt.pn_offset + pn_len;
    let pn_bytes = scratch
        .get_mut(pkt.pn_offset..pn_end)
        .ok_or(QuicError::Truncated)?;
    let mut truncated = 0u64;
    for (b, m) in pn_bytes.iter_mut().zip(mask.iter().skip(1)) {
        *b ^= m;
        truncated = (truncated << 8) | u64::from(*b);
    }
    // pn_len <= 4, so the shift is at most 32.
    let pn = decode_packet_number(largest_pn, truncated, 8 * pn_len as u32);
    // §5.3: nonce = IV XOR the packet number, left-padded to the IV's length.
    let mut nonce = keys.iv;
    for (n, p) in nonce.iter_mut().rev().zip(pn.to_le_bytes()) {
        *n ^= p;
    }
    // The sample check above guarantees at least 16 bytes after the packet number for the tag.
    let (header, payload) = scratch.split_at_mut(pn_end.min(pkt.packet.len()));
    if payload.len() < TAG_LEN {
        return Err(QuicError::TooShortForSample);
    }
    // §5.3: the associated data is the header as unprotected, through the packet number.
    let plaintext = keys
        .aead
        .open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(&*header),
            payload,
        )
        .map_err(|_| QuicError::Decrypt)?;
    Ok(Opened {
        pn,
        start: pn_end,
        end: pn_end + plaintext.len(),
    })
}

/// RFC 9000 §17.1 and Appendix A.3: the full packet number closest to one past the largest
/// authenticated so far.
fn decode_packet_number(largest: Option<u64>, truncated: u64, pn_nbits: u32) -> u64 {
    let expected = largest.map_or(0, |l| l.saturating_add(1));
    let win = 1u64 << pn_nbits;
    let hwin = win / 2;
    let mask = win - 1;
    let candidate = (expected & !mask) | truncated;
    if candidate.saturating_add(hwin) <= expected && candidate < (1u64 << 62) - win {
        candidate + win
    } else if candidate > expected.saturating_add(hwin) && candidate >= win {
        candidate - win
    } else {
        candidate
    }
}

/// Skip an ACK frame's body (RFC 9000 §19.3): Largest Acknowledged, ACK Delay, ACK Range Count,
/// First ACK Range, then Count × (Gap, ACK Range Length), then three ECN counts for type 0x03.
/// Each range takes at least two bytes, so a huge count runs out of input, not out of time.
fn skip_ack(r: &mut Reader<'_>, ecn: bool) -> Option<()> {
    r.varint()?;
    r.varint()?;
    let count = r.varint()?;
    r.varint()?;
    for _ in 0..count {
        r.varint()?;
        r.varint()?;
    }
    if ecn {
        for _ in 0..3 {
            r.varint()?;
        }
    }
    Some(())
}

/// Read a CRYPTO frame's body (RFC 9000 §19.6): Offset, Length, Crypto Data.
fn read_crypto<'a>(r: &mut Reader<'a>) -> Option<(u64, &'a [u8])> {
    let offset = r.varint()?;
    let len = r.varint()?;
    if offset.checked_add(len)? > MAX_STREAM_END {
        return None;
    }
    let data = r.bytes(usize::try_from(len).ok()?)?;
    Some((offset, data))
}

/// Skip a transport CONNECTION_CLOSE body (RFC 9000 §19.19): Error Code, Frame Type, Reason
/// Phrase Length, Reason Phrase.
fn skip_close(r: &mut Reader<'_>) -> Option<()> {
    r.varint()?;
    r.varint()?;
    let len = r.varint_len()?;
    r.bytes(len)?;
    Some(())
}

/// A bounds-checked cursor over wire bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn u8(&mut self) -> Option<u8> {
        self.bytes(1)?.first().copied()
    }

    fn u32(&mut self) -> Option<u32> {
        let b: [u8; 4] = self.bytes(4)?.try_into().ok()?;
        Some(u32::from_be_bytes(b))
    }

    /// RFC 9000 §16: the two high bits of the first byte give the length (1, 2, 4 or 8 bytes).
    fn varint(&mut self) -> Option<u64> {
        let first = self.u8()?;
        let extra = (1usize << (first >> 6)) - 1;
        let mut value = u64::from(first & 0x3f);
        for &b in self.bytes(extra)? {
            value = (value << 8) | u64::from(b);
        }
        Some(value)
    }

    /// A varint used as a byte count.
    fn varint_len(&mut self) -> Option<usize> {
        usize::try_from(self.varint()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CH_DATAGRAM: &[u8] =
        include_bytes!("../../fixtures/packets/quic_chromium_initial_ch.bin");
    const ACK_DATAGRAM: &[u8] =
        include_bytes!("../../fixtures/packets/quic_chromium_initial_ack.bin");
    const HANDSHAKE_DATAGRAM: &[u8] =
        include_bytes!("../../fixtures/packets/quic_chromium_handshake.bin");
    const SHORT_DATAGRAM: &[u8] = include_bytes!("../../fixtures/packets/quic_chromium_short.bin");
    const GQUIC_Q024: &[u8] = include_bytes!("../../fixtures/packets/quic_gquic_q024_chlo.bin");
    const GQUIC_Q035: &[u8] = include_bytes!("../../fixtures/packets/quic_gquic_q035_chlo.bin");

    /// RFC 9001 Appendix A: the client-chosen DCID of all sample packets.
    const RFC_DCID: [u8; 8] = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];

    /// RFC 9001 Appendix A.2: the CRYPTO frame of the client Initial (PADDING follows to 1162).
    const RFC_CRYPTO_FRAME: &str = "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868\
        04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578\
        616d706c652e636f6dff01000100000a00080006001d00170018001000070005\
        04616c706e0005000501000000000033 00260024001d00209370b2c9caa47fba\
        baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400\
        0d0010000e0403050306030203080408050806002d00020101001c0002400100\
        3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000\
        75300901100f088394c8f03e51570806048000ffff";

    /// RFC 9001 Appendix A.2: the protected client Initial (1200 bytes).
    const RFC9001_CLIENT_INITIAL: &str = "\
        c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11\
        d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399\
        1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c\
        8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212\
        30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5\
        457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208\
        4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec\
        4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3\
        485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db\
        059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c\
        7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8\
        9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556\
        be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74\
        68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a\
        c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00\
        f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632\
        291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964\
        25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd\
        14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff\
        ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198\
        e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd\
        c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73\
        203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f\
        cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e\
        fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade\
        a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047\
        90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2\
        162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4\
        40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0\
        6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e\
        8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0\
        be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400\
        54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab\
        760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9\
        f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4\
        056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064\
        7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241\
        e221af44860018ab0856972e194cd934";

    /// RFC 9369 Appendix A.2: the protected v2 client Initial (1200 bytes, same plaintext).
    const RFC9369_CLIENT_INITIAL: &str = "\
        d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485\
        dd04de806071bf03dceebfa162e75d6c96058bdbfb127cdfcbf903388e99ad04\
        9f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d\
        250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243cf1a\
        12834e3f249a78d395e0d18f4d766004f1a2674802a747eaa901c3f10cda5500\
        cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd68\
        18f6625efce3b6def6ba7e4b37a40f7732e093daa7d52190935b8da58976ff33\
        12ae50b187c1433c0f028edcc4c2838b6a9bfc226ca4b4530e7a4ccee1bfa2a3\
        d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd\
        6f7521a3f6c7d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520\
        bcfb7966fc49b393f0061d974a2706df8c4a9449f11d7f3d2dcbb90c6b877045\
        636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452aaa549e27a1f\
        ac7cf4ed77f322e8fa894b6a83810a34b361901751a6f5eb65a0326e07de7c12\
        16ccce2d0193f958bb3850a833f7ae432b65bc5a53975c155aa4bcb4f7b2c4e5\
        4df16efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4\
        fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a37cbb08b847741c3b\
        8017c25ca9052ca1079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de7\
        14d19d61370f8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff9\
        9c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c446151adfeceb51b91\
        abfe43960977c87471cf9ad4074d30e10d6a7f03c63bd5d4317f68ff325ba3bd\
        80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db\
        848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b614eaed18\
        d703dd84045a274ae8bfa73379661388d6991fe39b0d93debb41700b41f90a15\
        c4d526250235ddcd6776fc77bc97e7a417ebcb31600d01e57f32162a8560cacc\
        7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61\
        f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e70710\
        10d3f270121b493ce85054ef58bada42310138fe081adb04e2bd901f2f13458b\
        3d6758158197107c14ebb193230cd1157380aa79cae1374a7c1e5bbcb80ee23e\
        06ebfde206bfb0fcbc0edc4ebec309661bdd908d532eb0c6adc38b7ca7331dce\
        8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d1\
        34b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1\
        e86215c2d54e6670e07383a27bbffb5addf47d66aa85a0c6f9f32e59d85a44dd\
        5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ecabee93dfc6e3\
        8d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89\
        d5974ee12e5cf7d5da4d6a31123041f33e61407e76cffcdcfd7e19ba58cf4b53\
        6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19\
        9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96b\
        a18b2faa745b6fe189cf772a9f84cbfc";

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        assert_eq!(digits.len() % 2, 0, "odd hex length");
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    /// SNI and ALPN of a ClientHello handshake message, read with tls-parser.
    fn sni_alpn(client_hello: &[u8]) -> (String, Vec<String>) {
        use tls_parser::{TlsExtension, TlsMessage, TlsMessageHandshake};
        let (_, msg) = tls_parser::parse_tls_message_handshake(client_hello).expect("ClientHello");
        let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) = msg else {
            panic!("not a ClientHello: {msg:?}");
        };
        let (_, exts) = tls_parser::parse_tls_client_hello_extensions(ch.ext.expect("extensions"))
            .expect("extensions parse");
        let mut sni = String::new();
        let mut alpn = Vec::new();
        for ext in exts {
            match ext {
                TlsExtension::SNI(names) => {
                    sni = String::from_utf8(names[0].1.to_vec()).unwrap();
                }
                TlsExtension::ALPN(protos) => {
                    alpn = protos
                        .iter()
                        .map(|p| String::from_utf8(p.to_vec()).unwrap())
                        .collect();
                }
                _ => {}
            }
        }
        (sni, alpn)
    }

    fn sni_of(asm: &CryptoAssembler) -> String {
        sni_alpn(asm.client_hello().expect("complete ClientHello")).0
    }

    /// The first byte of an unprotected long header for `kind` with a `pn_len`-byte packet number.
    fn first_byte(version: QuicVersion, kind: PacketKind, pn_len: usize) -> u8 {
        let ty = (0..4u8).find(|&t| version.packet_kind(t) == kind).unwrap();
        0xc0 | (ty << 4) | (pn_len as u8 - 1)
    }

    /// Build and protect a client long-header packet with keys from `key_dcid`, the way a client
    /// does (RFC 9001 §5.3, §5.4). The payload is padded to leave room for the HP sample.
    #[allow(clippy::too_many_arguments)]
    fn seal(
        version: QuicVersion,
        kind: PacketKind,
        key_dcid: &[u8],
        dcid: &[u8],
        scid: &[u8],
        token: &[u8],
        pn: u64,
        pn_len: usize,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut payload = payload.to_vec();
        if payload.len() < 4 {
            payload.resize(4, 0);
        }
        let mut pkt = vec![first_byte(version, kind, pn_len)];
        pkt.extend_from_slice(&version.wire().to_be_bytes());
        pkt.push(dcid.len() as u8);
        pkt.extend_from_slice(dcid);
        pkt.push(scid.len() as u8);
        pkt.extend_from_slice(scid);
        if kind == PacketKind::Initial {
            assert!(token.len() < 64);
            pkt.push(token.len() as u8);
            pkt.extend_from_slice(token);
        }
        let length = pn_len + payload.len() + TAG_LEN;
        assert!(length < 0x4000);
        pkt.extend_from_slice(&(0x4000 | length as u16).to_be_bytes());
        let pn_offset = pkt.len();
        pkt.extend_from_slice(&pn.to_be_bytes()[8 - pn_len..]);
        let keys = InitialKeys::derive(version, key_dcid).unwrap();
        let mut nonce = keys.iv;
        for (n, p) in nonce.iter_mut().rev().zip(pn.to_le_bytes()) {
            *n ^= p;
        }
        let tag = keys
            .aead
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(&pkt[..]),
                &mut payload,
            )
            .unwrap();
        pkt.extend_from_slice(&payload);
        pkt.extend_from_slice(tag.as_ref());
        let mask = keys
            .hp
            .new_mask(&pkt[pn_offset + 4..pn_offset + 4 + SAMPLE_LEN])
            .unwrap();
        pkt[0] ^= mask[0] & 0x0f;
        for i in 0..pn_len {
            pkt[pn_offset + i] ^= mask[1 + i];
        }
        pkt
    }

    fn seal_initial(dcid: &[u8], pn: u64, payload: &[u8]) -> Vec<u8> {
        seal(
            QuicVersion::V1,
            PacketKind::Initial,
            dcid,
            dcid,
            b"client",
            b"",
            pn,
            2,
            payload,
        )
    }

    fn varint(v: u64) -> Vec<u8> {
        match v {
            0..0x40 => vec![v as u8],
            0x40..0x4000 => (0x4000 | v as u16).to_be_bytes().to_vec(),
            0x4000..0x4000_0000 => (0x8000_0000 | v as u32).to_be_bytes().to_vec(),
            _ => (0xc000_0000_0000_0000 | v).to_be_bytes().to_vec(),
        }
    }

    fn crypto_frame(offset: u64, data: &[u8]) -> Vec<u8> {
        let mut f = vec![0x06];
        f.extend(varint(offset));
        f.extend(varint(data.len() as u64));
        f.extend_from_slice(data);
        f
    }

    /// The real ClientHello of the Chromium capture, decrypted by this module.
    fn chromium_client_hello() -> Vec<u8> {
        let mut asm = CryptoAssembler::new();
        assert_eq!(asm.push_datagram(CH_DATAGRAM), QuicProgress::Complete);
        asm.client_hello().unwrap().to_vec()
    }

    fn assert_key_material(version: QuicVersion, secret: &str, key: &str, iv: &str, hp: &str) {
        let m = KeyMaterial::derive(version, &RFC_DCID).unwrap();
        assert_eq!(m.secret.to_vec(), hex(secret), "client_initial_secret");
        assert_eq!(m.key.to_vec(), hex(key), "key");
        assert_eq!(m.iv.to_vec(), hex(iv), "iv");
        assert_eq!(m.hp.to_vec(), hex(hp), "hp");
    }

    #[test]
    fn rfc9001_a1_client_keys() {
        assert_key_material(
            QuicVersion::V1,
            "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea",
            "1f369613dd76d5467730efcbe3b1a22d",
            "fa044b2f42a3fd3b46fb255c",
            "9f50449e04a0e810283a1e9933adedd2",
        );
    }

    #[test]
    fn rfc9369_a1_client_keys() {
        assert_key_material(
            QuicVersion::V2,
            "14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b",
            "8b1a0bc121284290a29e0971b5cd045d",
            "91f73e2351d8fa91660e909f",
            "45b95e15235d6f45a6b19cbcb0294ba9",
        );
    }

    fn check_rfc_client_initial(version: QuicVersion, packet_hex: &str) {
        let packet = hex(packet_hex);
        assert_eq!(packet.len(), 1200);
        let header = is_initial(&packet).expect("an Initial");
        assert_eq!(header.version, version);
        assert_eq!(header.dcid, RFC_DCID);
        assert!(header.scid.is_empty() && header.token.is_empty());

        let mut asm = CryptoAssembler::new();
        assert_eq!(asm.push_datagram(&packet), QuicProgress::Complete);
        assert_eq!(asm.version(), Some(version));
        assert_eq!(asm.original_dcid(), Some(&RFC_DCID[..]));
        assert_eq!(asm.largest_pn, Some(2), "RFC packet number is 2");
        // The CRYPTO frame's data is everything after its 4-byte frame header (06 00 40f1).
        let frame = hex(RFC_CRYPTO_FRAME);
        assert_eq!(asm.crypto_prefix(), &frame[4..]);
        assert_eq!(asm.client_hello(), Some(&frame[4..]));
        let (sni, alpn) = sni_alpn(asm.client_hello().unwrap());
        assert_eq!(sni, "example.com");
        assert_eq!(alpn, vec!["alpn".to_string()]);
    }

    #[test]
    fn rfc9001_a2_client_initial_decrypts() {
        check_rfc_client_initial(QuicVersion::V1, RFC9001_CLIENT_INITIAL);
    }

    #[test]
    fn rfc9369_a2_client_initial_decrypts() {
        check_rfc_client_initial(QuicVersion::V2, RFC9369_CLIENT_INITIAL);
    }

    /// The test sealer reproduces the RFC packets byte for byte, so the synthetic packets the
    /// other tests build are protected exactly as real clients protect theirs.
    #[test]
    fn test_sealer_matches_rfc_vectors() {
        let mut payload = hex(RFC_CRYPTO_FRAME);
        payload.resize(1162, 0);
        for (version, expected) in [
            (QuicVersion::V1, RFC9001_CLIENT_INITIAL),
            (QuicVersion::V2, RFC9369_CLIENT_INITIAL),
        ] {
            let sealed = seal(
                version,
                PacketKind::Initial,
                &RFC_DCID,
                &RFC_DCID,
                b"",
                b"",
                2,
                4,
                &payload,
            );
            assert_eq!(sealed, hex(expected), "{version:?}");
        }
    }

    /// Frame 1 of zeek's chromium-115 capture: one Initial whose ClientHello is cut into 10
    /// CRYPTO frames in scrambled order among PING and PADDING. tshark 4.0 reads SNI
    /// www.google.de, ALPN h3, handshake length 296, packet number 1, version 0x00000001.
    #[test]
    fn chromium_fragmented_client_hello() {
        let header = is_initial(CH_DATAGRAM).expect("Initial");
        assert_eq!(header.version, QuicVersion::V1);
        assert_eq!(header.dcid, hex("5a37463b0eb7cc5d"));
        assert!(header.scid.is_empty());

        let mut asm = CryptoAssembler::new();
        assert_eq!(asm.push_datagram(CH_DATAGRAM), QuicProgress::Complete);
        assert_eq!(asm.largest_pn, Some(1));
        assert_eq!(asm.crypto_prefix().len(), 4 + 296);
        let (sni, alpn) = sni_alpn(asm.client_hello().unwrap());
        assert_eq!(sni, "www.google.de");
        assert_eq!(alpn, vec!["h3".to_string()]);
    }

    /// The client's datagrams of that capture: the ClientHello Initial, an ACK-only Initial sent
    /// to the server's new connection ID but still under the first DCID's keys (RFC 9001 §5.2),
    /// a Handshake packet and a 1-RTT short-header packet.
    #[test]
    fn chromium_flow_in_order_reverse_and_duplicated() {
        let flow = [
            CH_DATAGRAM,
            ACK_DATAGRAM,
            HANDSHAKE_DATAGRAM,
            SHORT_DATAGRAM,
        ];

        let mut asm = CryptoAssembler::new();
        let got: Vec<_> = flow.iter().map(|d| asm.push_datagram(d)).collect();
        assert_eq!(
            got,
            [
                QuicProgress::Complete,
                QuicProgress::Complete,
                QuicProgress::Complete,
                QuicProgress::NotQuic
            ]
        );
        assert_eq!(
            asm.packets(),
            2,
            "the ACK-only Initial opens with the first DCID's keys"
        );
        assert_eq!(asm.largest_pn, Some(2));
        assert_eq!(asm.original_dcid(), Some(&hex("5a37463b0eb7cc5d")[..]));
        assert_eq!(sni_of(&asm), "www.google.de");

        // Reversed: the ACK-only Initial comes first, addressed to a DCID whose keys it was not
        // sealed with, so it cannot be opened yet; the ClientHello datagram still completes.
        let mut asm = CryptoAssembler::new();
        assert_eq!(asm.push_datagram(SHORT_DATAGRAM), QuicProgress::NotQuic);
        assert_eq!(asm.push_datagram(HANDSHAKE_DATAGRAM), QuicProgress::Pending);
        assert_eq!(
            asm.push_datagram(ACK_DATAGRAM),
            QuicProgress::Failed(QuicError::Decrypt)
        );
        assert_eq!(asm.original_dcid(), None, "failed keys are not adopted");
        assert_eq!(asm.push_datagram(CH_DATAGRAM), QuicProgress::Complete);
        assert_eq!(asm.push_datagram(ACK_DATAGRAM), QuicProgress::Complete);
        assert_eq!(sni_of(&asm), "www.google.de");

        // Duplicates change nothing.
        let mut asm = CryptoAssembler::new();
        for d in [
            CH_DATAGRAM,
            CH_DATAGRAM,
            ACK_DATAGRAM,
            CH_DATAGRAM,
            ACK_DATAGRAM,
        ] {
            assert_eq!(asm.push_datagram(d), QuicProgress::Complete);
        }
        assert_eq!(asm.crypto_prefix().len(), 300);
        assert_eq!(sni_of(&asm), "www.google.de");
    }

    /// The real ClientHello split over several Initial packets (several datagrams, one with two
    /// coalesced Initials and a trailing Handshake and short header), fed in every order that
    /// matters, with duplicates and overlapping retransmissions.
    #[test]
    fn multi_packet_client_hello_any_order() {
        let ch = chromium_client_hello();
        let dcid = hex("0011223344556677");
        let pieces = [(0usize, 50usize), (50, 130), (130, 200), (200, ch.len())];
        let mut datagrams: Vec<Vec<u8>> = Vec::new();
        for (pn, &(s, e)) in pieces.iter().enumerate().take(2) {
            let mut payload = crypto_frame(s as u64, &ch[s..e]);
            payload.resize(1100, 0);
            datagrams.push(seal_initial(&dcid, pn as u64, &payload));
        }
        // Datagram 3: two coalesced Initials (pieces 3 and 4; the CRYPTO frame of the second
        // follows a PING and an ACK), then a Handshake packet and a short-header packet.
        let p3 = seal_initial(&dcid, 2, &crypto_frame(130, &ch[130..200]));
        let mut payload4 = vec![0x01, 0x02, 0x01, 0x00, 0x00, 0x00];
        payload4.extend(crypto_frame(200, &ch[200..]));
        let p4 = seal_initial(&dcid, 3, &payload4);
        let hs = seal(
            QuicVersion::V1,
            PacketKind::Handshake,
            b"whatever",
            &dcid,
            b"client",
            b"",
            0,
            1,
            &[0x01; 30],
        );
        let mut d3 = p3.clone();
        d3.extend(&p4);
        d3.extend(&hs);
        d3.extend_from_slice(SHORT_DATAGRAM);
        datagrams.push(d3);

        let check = |order: &[usize], label: &str| {
            let mut asm = CryptoAssembler::new();
            let mut last = QuicProgress::NotQuic;
            for &i in order {
                last = asm.push_datagram(&datagrams[i]);
                assert!(
                    matches!(last, QuicProgress::Pending | QuicProgress::Complete),
                    "{label}: {last:?}"
                );
            }
            assert_eq!(last, QuicProgress::Complete, "{label}");
            assert_eq!(asm.client_hello(), Some(&ch[..]), "{label}");
            assert_eq!(sni_of(&asm), "www.google.de", "{label}");
            assert_eq!(asm.dropped_bytes(), 0);
        };
        check(&[0, 1, 2], "in order");
        check(&[2, 1, 0], "reversed");
        check(&[1, 2, 0], "rotated");
        check(&[2, 2, 0, 2, 1, 0, 1], "duplicated");

        // Not complete until the last missing piece arrives.
        let mut asm = CryptoAssembler::new();
        assert_eq!(asm.push_datagram(&datagrams[2]), QuicProgress::Pending);
        assert_eq!(asm.push_datagram(&datagrams[0]), QuicProgress::Pending);
        assert_eq!(asm.crypto_prefix().len(), 50);
        assert_eq!(asm.push_datagram(&datagrams[1]), QuicProgress::Complete);

        // Overlapping retransmissions with different cuts; the first copy of a byte wins.
        let mut asm = CryptoAssembler::new();
        let over = [(100, 250), (0, 120), (240, ch.len()), (10, 20)];
        for (pn, &(s, e)) in over.iter().enumerate() {
            let d = seal_initial(&dcid, pn as u64, &crypto_frame(s as u64, &ch[s..e]));
            asm.push_datagram(&d);
        }
        assert_eq!(asm.client_hello(), Some(&ch[..]));
        let junk = vec![0xAA; 40];
        let d = seal_initial(&dcid, 9, &crypto_frame(5, &junk));
        assert_eq!(asm.push_datagram(&d), QuicProgress::Complete);
        assert_eq!(
            asm.client_hello(),
            Some(&ch[..]),
            "completed data never changes"
        );
    }

    /// RFC 9000 §17.2.5: after a Retry the client's next Initial goes to the server's new CID
    /// with keys derived from it and carries the ClientHello again from offset 0.
    #[test]
    fn retry_rekeys_and_restarts() {
        let ch = chromium_client_hello();
        let first = hex("0102030405060708");
        let retry_cid = hex("a1a2a3a4a5a6a7a8a9");
        let server_cid = hex("b1b2b3b4");
        let mut asm = CryptoAssembler::new();
        // First attempt: only the first half reaches us.
        let d0 = seal_initial(&first, 0, &crypto_frame(0, &ch[..100]));
        assert_eq!(asm.push_datagram(&d0), QuicProgress::Pending);
        assert_eq!(asm.original_dcid(), Some(&first[..]));
        // After the Retry: token present, new DCID, new keys, packet numbers continue.
        let d1 = seal(
            QuicVersion::V1,
            PacketKind::Initial,
            &retry_cid,
            &retry_cid,
            b"client",
            b"retry-token",
            1,
            1,
            &crypto_frame(0, &ch[..60]),
        );
        assert_eq!(is_initial(&d1).unwrap().token, b"retry-token");
        assert_eq!(asm.push_datagram(&d1), QuicProgress::Pending);
        assert_eq!(asm.original_dcid(), Some(&retry_cid[..]));
        assert_eq!(asm.crypto_prefix(), &ch[..60], "the stream restarted");
        // The rest arrives addressed to the server's chosen CID, under the Retry CID's keys.
        let d2 = seal(
            QuicVersion::V1,
            PacketKind::Initial,
            &retry_cid,
            &server_cid,
            b"client",
            b"",
            2,
            1,
            &crypto_frame(60, &ch[60..]),
        );
        assert_eq!(asm.push_datagram(&d2), QuicProgress::Complete);
        assert_eq!(asm.original_dcid(), Some(&retry_cid[..]));
        assert_eq!(sni_of(&asm), "www.google.de");
        // A stray pre-Retry Initial no longer opens, and changes nothing.
        let d3 = seal_initial(&first, 3, &crypto_frame(0, &[0xEE; 30]));
        assert_eq!(asm.push_datagram(&d3), QuicProgress::Complete);
        assert_eq!(asm.client_hello(), Some(&ch[..]));
    }

    /// RFC 9369 §4: compatible version negotiation may move the client from v1 to v2 Initials;
    /// the v2 keys still derive from the client's first DCID, with v2's salt and labels.
    #[test]
    fn v1_then_v2_initials_share_the_first_dcid() {
        let ch = chromium_client_hello();
        let first = hex("0102030405060708");
        let server_cid = hex("5e5e5e5e");
        let mut asm = CryptoAssembler::new();
        let d0 = seal_initial(&first, 0, &crypto_frame(0, &ch[..150]));
        assert_eq!(asm.push_datagram(&d0), QuicProgress::Pending);
        let d1 = seal(
            QuicVersion::V2,
            PacketKind::Initial,
            &first,
            &server_cid,
            b"client",
            b"",
            1,
            2,
            &crypto_frame(150, &ch[150..]),
        );
        assert_eq!(is_initial(&d1).unwrap().version, QuicVersion::V2);
        assert_eq!(asm.push_datagram(&d1), QuicProgress::Complete);
        assert_eq!(asm.version(), Some(QuicVersion::V2));
        assert_eq!(asm.original_dcid(), Some(&first[..]));
        assert_eq!(sni_of(&asm), "www.google.de");
    }

    /// v2 long-header types are shuffled (RFC 9369 §3.2): v2 type 0b00 is Retry, 0b10 is
    /// 0-RTT, and only 0b01 is an Initial.
    #[test]
    fn v2_packet_types() {
        let ch = chromium_client_hello();
        let dcid = hex("0102030405060708");
        let zero_rtt = seal(
            QuicVersion::V2,
            PacketKind::ZeroRtt,
            &dcid,
            &dcid,
            b"",
            b"",
            0,
            1,
            &crypto_frame(0, &ch),
        );
        assert_eq!(zero_rtt[0] & 0x30, 0x20);
        assert!(is_initial(&zero_rtt).is_none());
        let mut asm = CryptoAssembler::new();
        assert_eq!(asm.push_datagram(&zero_rtt), QuicProgress::Pending);
        assert_eq!(asm.packets(), 0);
        // The same bytes with v1's Initial type bits (0b00) are a v2 Retry: skipped whole.
        let mut retry = zero_rtt.clone();
        retry[0] &= !0x30;
        assert!(is_initial(&retry).is_none());
        assert_eq!(asm.push_datagram(&retry), QuicProgress::Pending);
    }

    #[test]
    fn frames_ack_ping_close_and_forbidden() {
        let ch = chromium_client_hello();
        let dcid = hex("0102030405060708");
        // ACK with ECN (0x03): largest 70 (2-byte varint), delay, 2 extra ranges, ECN counts.
        let mut payload = vec![0x03, 0x40, 0x46, 0x00, 0x02, 0x01, 0x01, 0x02, 0x00, 0x00];
        payload.extend([0x05, 0x06, 0x07]);
        payload.push(0x01);
        payload.extend(crypto_frame(0, &ch[..100]));
        payload.extend([0x02, 0x05, 0x00, 0x00, 0x00]);
        // CONNECTION_CLOSE 0x1c: error 0x0a, frame type 0x06, reason "bye".
        payload.extend([0x1c, 0x0a, 0x06, 0x03, b'b', b'y', b'e']);
        payload.extend(crypto_frame(100, &ch[100..200]));
        let mut asm = CryptoAssembler::new();
        assert_eq!(
            asm.push_datagram(&seal_initial(&dcid, 0, &payload)),
            QuicProgress::Pending
        );
        assert_eq!(asm.crypto_prefix(), &ch[..200]);

        // A STREAM frame (0x08) is not allowed in an Initial: reading stops before the CRYPTO
        // frame behind it, and the datagram is reported.
        let mut payload = vec![0x08, 0x00, 0x00];
        payload.extend(crypto_frame(200, &ch[200..]));
        assert_eq!(
            asm.push_datagram(&seal_initial(&dcid, 1, &payload)),
            QuicProgress::Failed(QuicError::ForbiddenFrame(0x08))
        );
        assert_eq!(asm.crypto_prefix().len(), 200);

        // A CRYPTO frame whose length runs past the packet is malformed.
        let mut bad = crypto_frame(200, &ch[200..]);
        bad.truncate(bad.len() - 1);
        bad[3] = 0xff; // length byte grows beyond the remaining data
        assert_eq!(
            asm.push_datagram(&seal_initial(&dcid, 2, &bad)),
            QuicProgress::Failed(QuicError::MalformedFrame)
        );
        // An ACK whose range count claims more ranges than there are bytes.
        let ack = [
            0x02, 0x05, 0x00, 0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x01,
        ];
        assert_eq!(
            asm.push_datagram(&seal_initial(&dcid, 3, &ack)),
            QuicProgress::Failed(QuicError::MalformedFrame)
        );
        // §19.6: offset + length past 2^62 - 1 is malformed.
        let mut huge = vec![0x06];
        huge.extend(varint((1 << 62) - 2));
        huge.extend(varint(4));
        huge.extend([1, 2, 3, 4]);
        assert_eq!(
            asm.push_datagram(&seal_initial(&dcid, 4, &huge)),
            QuicProgress::Failed(QuicError::MalformedFrame)
        );
        let mut rest = vec![0u8; 20];
        rest.extend(crypto_frame(200, &ch[200..]));
        assert_eq!(
            asm.push_datagram(&seal_initial(&dcid, 5, &rest)),
            QuicProgress::Complete
        );
        assert_eq!(sni_of(&asm), "www.google.de");
    }

    #[test]
    fn crypto_beyond_bound_is_dropped_and_counted() {
        let dcid = hex("0102030405060708");
        let mut asm = CryptoAssembler::new();
        let tail = vec![0x55; 100];
        let d = seal_initial(&dcid, 0, &crypto_frame(MAX_CRYPTO_BYTES as u64 - 10, &tail));
        assert_eq!(asm.push_datagram(&d), QuicProgress::Pending);
        assert_eq!(asm.dropped_bytes(), 90);
        assert_eq!(asm.buf.len(), MAX_CRYPTO_BYTES);
        let far = seal_initial(&dcid, 1, &crypto_frame(1 << 40, &tail));
        assert_eq!(asm.push_datagram(&far), QuicProgress::Pending);
        assert_eq!(asm.dropped_bytes(), 190);
        assert_eq!(asm.buf.len(), MAX_CRYPTO_BYTES, "memory stays bounded");
        assert!(asm.crypto_prefix().is_empty());

        // A ClientHello declaring 0xffffff bytes can never fit: permanent failure.
        let mut asm = CryptoAssembler::new();
        let d = seal_initial(&dcid, 0, &crypto_frame(0, &[0x01, 0xff, 0xff, 0xff, 0x03]));
        let got = asm.push_datagram(&d);
        assert_eq!(
            got,
            QuicProgress::Failed(QuicError::HandshakeTooLarge(0xff_ffff))
        );
        assert!(matches!(got, QuicProgress::Failed(e) if e.is_permanent()));
        assert_eq!(asm.client_hello(), None);

        // A ClientHello filling the bound exactly still completes.
        let mut asm = CryptoAssembler::new();
        let body = MAX_CRYPTO_BYTES - 4;
        let mut msg = vec![0x01];
        msg.extend_from_slice(&(body as u32).to_be_bytes()[1..]);
        msg.resize(MAX_CRYPTO_BYTES, 0x33);
        for (pn, chunk) in msg.chunks(1000).enumerate() {
            let off = (pn * 1000) as u64;
            let got = asm.push_datagram(&seal_initial(&dcid, pn as u64, &crypto_frame(off, chunk)));
            assert_ne!(got, QuicProgress::NotQuic);
        }
        assert!(asm.is_complete());
        assert_eq!(asm.client_hello().map(<[u8]>::len), Some(MAX_CRYPTO_BYTES));
        assert_eq!(asm.dropped_bytes(), 0);

        // Not a ClientHello (a ServerHello, type 2): permanent.
        let mut asm = CryptoAssembler::new();
        let d = seal_initial(&dcid, 0, &crypto_frame(0, &[0x02, 0, 0, 1, 0]));
        assert_eq!(
            asm.push_datagram(&d),
            QuicProgress::Failed(QuicError::NotClientHello(2))
        );
    }

    /// Many 1-byte fragments with gaps: the range cap drops what would split the data further,
    /// yet data adjacent to what is held is still accepted.
    #[test]
    fn range_cap_bounds_bookkeeping() {
        let dcid = hex("0102030405060708");
        let mut asm = CryptoAssembler::new();
        let mut payload = Vec::new();
        for i in 0..(MAX_RANGES as u64 + 10) {
            payload.extend(crypto_frame(1000 + 2 * i, &[0x11]));
        }
        asm.push_datagram(&seal_initial(&dcid, 0, &payload));
        assert_eq!(asm.ranges.len(), MAX_RANGES);
        assert_eq!(asm.dropped_bytes(), 10);
        asm.push_datagram(&seal_initial(&dcid, 1, &crypto_frame(1001, &[0x22])));
        assert_eq!(asm.ranges.len(), MAX_RANGES - 1);
    }

    #[test]
    fn corrupted_bytes_never_complete() {
        for i in 0..CH_DATAGRAM.len() {
            for flip in [0x01u8, 0x80] {
                let mut d = CH_DATAGRAM.to_vec();
                d[i] ^= flip;
                let mut asm = CryptoAssembler::new();
                let got = asm.push_datagram(&d);
                assert_ne!(got, QuicProgress::Complete, "byte {i} ^ {flip:#x}");
                assert!(asm.crypto_prefix().is_empty(), "byte {i}");
                if i >= 30 {
                    // Ciphertext and tag: authentication catches it.
                    assert_eq!(got, QuicProgress::Failed(QuicError::Decrypt), "byte {i}");
                }
            }
        }
        let mut d = CH_DATAGRAM.to_vec();
        d[0] ^= 0x80;
        assert_eq!(
            CryptoAssembler::new().push_datagram(&d),
            QuicProgress::NotQuic
        );
        // A version that is no QUIC version at all reads as not QUIC; a draft version is
        // recognised.
        let mut d = CH_DATAGRAM.to_vec();
        d[4] ^= 0x02;
        assert_eq!(
            CryptoAssembler::new().push_datagram(&d),
            QuicProgress::NotQuic
        );
        d[1..5].copy_from_slice(&0xff00_001du32.to_be_bytes());
        assert_eq!(
            CryptoAssembler::new().push_datagram(&d),
            QuicProgress::UnsupportedVersion(0xff00_001d)
        );
    }

    #[test]
    fn truncated_prefixes_never_panic() {
        for packet in [
            CH_DATAGRAM.to_vec(),
            hex(RFC9001_CLIENT_INITIAL),
            hex(RFC9369_CLIENT_INITIAL),
        ] {
            for len in 0..packet.len() {
                let cut = &packet[..len];
                let mut asm = CryptoAssembler::new();
                let got = asm.push_datagram(cut);
                assert_ne!(got, QuicProgress::Complete, "len {len}");
                assert!(matches!(
                    got,
                    QuicProgress::NotQuic | QuicProgress::Failed(QuicError::Truncated)
                ));
                assert!(is_initial(cut).is_none());
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        // xorshift64*: deterministic, no dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let dcid = hex("0102030405060708");
        let mut asm = CryptoAssembler::new();
        for round in 0..6000u64 {
            if round % 600 == 0 {
                asm = CryptoAssembler::new();
            }
            let len = (next() % 1400) as usize;
            let mut d: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            match round % 5 {
                // A v1/v2 long header in front, so parsing goes past the version.
                1 | 2 if d.len() > 6 => {
                    d[0] |= 0x80;
                    let v = if round % 5 == 1 {
                        QuicVersion::V1
                    } else {
                        QuicVersion::V2
                    };
                    d[1..5].copy_from_slice(&v.wire().to_be_bytes());
                    d[5] %= 21;
                }
                // A validly sealed Initial with a random plaintext, then random coalesced bytes.
                3 => {
                    let tail = d.split_off(d.len() / 2);
                    d = seal_initial(&dcid, round, &d);
                    d.extend(tail);
                }
                // A validly sealed Initial of plausible frames with random fields, some lying
                // about their lengths: exercises the frame walker and the reassembly bounds.
                4 => {
                    let mut payload = Vec::new();
                    for _ in 0..(next() % 12) {
                        let r = next();
                        let field = |x: u64| x >> (2 + (x % 62));
                        match r % 5 {
                            0 => payload.extend(std::iter::repeat_n(0, (r % 40) as usize)),
                            1 => {
                                payload.push(0x02 | (r as u8 & 1));
                                for _ in 0..(next() % 9) {
                                    payload.extend(varint(field(next())));
                                }
                            }
                            2 => {
                                let data: Vec<u8> =
                                    (0..(next() % 300)).map(|_| next() as u8).collect();
                                let offset = if r % 3 == 0 {
                                    field(next())
                                } else {
                                    next() % 20_000
                                };
                                payload.extend(crypto_frame(offset, &data));
                            }
                            3 => {
                                payload.push(0x06);
                                payload.extend(varint(field(next())));
                                payload.extend(varint(field(next())));
                            }
                            _ => payload.extend(varint(field(next()))),
                        }
                    }
                    d = seal_initial(&dcid, round, &payload);
                }
                _ => {}
            }
            let _ = asm.push_datagram(&d);
            let _ = is_initial(&d);
            let _ = asm.client_hello();
            assert!(asm.crypto_prefix().len() <= MAX_CRYPTO_BYTES);
            assert!(asm.buf.len() <= MAX_CRYPTO_BYTES);
            assert!(asm.ranges.len() <= MAX_RANGES);
        }
        assert!(asm.buf.len() <= MAX_CRYPTO_BYTES);
    }

    /// Google QUIC is not IETF QUIC: ndpi's quic.pcap (Q024, public header 0x0d) and WeChat's
    /// Q035 give NotQuic; Q046/Q050/T051 long headers give their version; version negotiation
    /// (version 0) and non-QUIC payloads with the high bit set give NotQuic.
    #[test]
    fn gquic_and_version_negotiation_are_not_decrypted() {
        for d in [GQUIC_Q024, GQUIC_Q035] {
            assert_eq!(
                CryptoAssembler::new().push_datagram(d),
                QuicProgress::NotQuic
            );
            assert!(is_initial(d).is_none());
        }
        for v in [b"Q046", b"Q050", b"T051"] {
            let mut d = vec![0xc3];
            d.extend_from_slice(v);
            d.extend([0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x00]);
            d.resize(1200, 0);
            assert_eq!(
                CryptoAssembler::new().push_datagram(&d),
                QuicProgress::UnsupportedVersion(u32::from_be_bytes(*v))
            );
            assert!(is_initial(&d).is_none());
        }
        // Reserved greasing versions (RFC 9000 §15) and mvfst are QUIC, just not decryptable.
        for v in [0x1a2a_3a4au32, 0xface_b002] {
            let mut d = vec![0xc0];
            d.extend_from_slice(&v.to_be_bytes());
            d.resize(1200, 0);
            assert_eq!(
                CryptoAssembler::new().push_datagram(&d),
                QuicProgress::UnsupportedVersion(v)
            );
        }
        // RTP (version 2 → first byte 0x80), a DNS response with its high bits set, and a
        // LAN discovery beacon from ndpi's 1kxun.pcap (ff ff0000a0 ...) are not.
        let beacon = hex("ffff0000a0005cd998ddf5f3c0a80a6e000002002701444e532d313130302d3034");
        assert_eq!(
            CryptoAssembler::new().push_datagram(&beacon),
            QuicProgress::NotQuic
        );
        let rtp = hex("80 08 1a2b 0001e240 deadbeef d5d5d5d5d5d5d5d5");
        assert_eq!(
            CryptoAssembler::new().push_datagram(&rtp),
            QuicProgress::NotQuic
        );
        let dns = hex("c4f3 8180 0001 0001 0000 0000 03777777");
        assert_eq!(
            CryptoAssembler::new().push_datagram(&dns),
            QuicProgress::NotQuic
        );
        let vn = hex("80 00000000 08 0102030405060708 04 0a0b0c0d 00000001 6b3343cf");
        assert_eq!(
            CryptoAssembler::new().push_datagram(&vn),
            QuicProgress::NotQuic
        );
        assert_eq!(
            CryptoAssembler::new().push_datagram(&[]),
            QuicProgress::NotQuic
        );
        assert_eq!(
            CryptoAssembler::new().push_datagram(&[0xc0, 0, 0]),
            QuicProgress::NotQuic
        );
    }

    #[test]
    fn header_limits() {
        // DCID length 21 (RFC 9000 §17.2: at most 20 in v1).
        let mut d = hex("c0 00000001 15");
        d.resize(1200, 0);
        assert_eq!(
            CryptoAssembler::new().push_datagram(&d),
            QuicProgress::Failed(QuicError::ConnectionIdTooLong)
        );
        // A Length too small for the header protection sample.
        let d = hex("c0 00000001 00 00 00 05 0000000000");
        assert_eq!(
            CryptoAssembler::new().push_datagram(&d),
            QuicProgress::Failed(QuicError::TooShortForSample)
        );
        assert!(is_initial(&d).is_some());
    }

    #[test]
    fn packet_number_recovery() {
        // RFC 9000 Appendix A.3 example: largest 0xa82f30ea, 16-bit 0x9b32 → 0xa82f9b32.
        assert_eq!(
            decode_packet_number(Some(0xa82f_30ea), 0x9b32, 16),
            0xa82f_9b32
        );
        assert_eq!(decode_packet_number(None, 0, 8), 0);
        assert_eq!(decode_packet_number(None, 7, 8), 7);
        assert_eq!(decode_packet_number(Some(300), 0x2c, 8), 300);
    }
}
