//! QUIC Initial CRYPTO reassembly: owns the per-flow state that turns a client's Initial
//! packets (QUIC v1, RFC 9000/9001; QUIC v2, RFC 9369), fed in any order, into the CRYPTO stream
//! that carries its TLS ClientHello. Headers, keys and frames are read by the views in
//! [`crate::wire::quic`]; what is kept between datagrams lives here.
//!
//! Everything here is sans-IO: the caller feeds the client→server UDP payloads of one flow, in
//! any order, and reads the reassembled handshake bytes back.

use crate::wire::quic::frames::{Frame, Frames};
use crate::wire::quic::keys::{InitialKeys, Opened, open_packet};
use crate::wire::quic::{
    HeaderError, LongPacket, PacketKind, QuicError, QuicVersion, parse_long_packet,
};
use crate::wire::tls::{HANDSHAKE_CLIENT_HELLO, HANDSHAKE_HEADER_LEN, handshake_body_len};

/// Bound on the reassembled CRYPTO data kept per flow. Bytes past it are dropped and counted
/// ([`CryptoAssembler::dropped_bytes`]); a ClientHello that cannot fit fails permanently.
pub const MAX_CRYPTO_BYTES: usize = 16 * 1024;

/// Most disjoint received ranges tracked. Real clients split a ClientHello into a dozen or so
/// fragments; a cap keeps a hostile flow from making range bookkeeping quadratic.
const MAX_RANGES: usize = 64;
/// Retired (pre-Retry) DCIDs remembered. A server may send more than one Retry in theory, but a
/// client follows at most one per connection attempt (RFC 9000 §17.2.5.2).
const MAX_RETIRED: usize = 4;

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
    /// CONNECTION_CLOSE (type 0x1c). Anything else is a protocol violation; reading stops there,
    /// after the CRYPTO data of the frames before it is kept.
    fn walk_frames(&mut self, plaintext: &[u8]) -> Result<(), QuicError> {
        for frame in Frames::new(plaintext) {
            if let Frame::Crypto { offset, data } = frame? {
                self.insert(offset, data);
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
        if ty != HANDSHAKE_CLIENT_HELLO {
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
    handshake_body_len(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::quic::is_initial;
    use crate::wire::quic::testing::*;

    const CH_DATAGRAM: &[u8] =
        include_bytes!("../../fixtures/packets/quic_chromium_initial_ch.bin");
    const ACK_DATAGRAM: &[u8] =
        include_bytes!("../../fixtures/packets/quic_chromium_initial_ack.bin");
    const HANDSHAKE_DATAGRAM: &[u8] =
        include_bytes!("../../fixtures/packets/quic_chromium_handshake.bin");
    const SHORT_DATAGRAM: &[u8] = include_bytes!("../../fixtures/packets/quic_chromium_short.bin");
    const GQUIC_Q024: &[u8] = include_bytes!("../../fixtures/packets/quic_gquic_q024_chlo.bin");
    const GQUIC_Q035: &[u8] = include_bytes!("../../fixtures/packets/quic_gquic_q035_chlo.bin");

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

    /// The real ClientHello of the Chromium capture, decrypted by this module.
    fn chromium_client_hello() -> Vec<u8> {
        let mut asm = CryptoAssembler::new();
        assert_eq!(asm.push_datagram(CH_DATAGRAM), QuicProgress::Complete);
        asm.client_hello().unwrap().to_vec()
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
}
