//! TLS records and the ClientHello on the wire: owns finding the ClientHello at the start of
//! a client's TCP stream (record walking, and joining a message spread over several records)
//! or in a QUIC CRYPTO stream, and pulling out the SNI, ALPN and versions a classifier needs;
//! also the handshake framing QUIC shares. A pure function of the bytes given: keeping the
//! stream prefix until it holds the message is [`crate::inspect::stream`]'s job.
//!
//! Parsing of the ClientHello body and of each extension is done by `tls-parser`; this
//! module adds the framing around it, the limits, and the checks `tls-parser` leaves out
//! (it silently ignores trailing bytes and lying inner lengths in several places).

use std::borrow::Cow;

use super::dns::MAX_LABEL_LEN;
use super::reader::{be16, be24};
use tls_parser::{
    TlsExtension, parse_tls_client_hello_extension, parse_tls_extension_unknown,
    parse_tls_handshake_client_hello,
};

/// Largest handshake message body accepted. Real ClientHellos are below 2 KiB even with
/// post-quantum key shares; anything claiming more is refused rather than buffered.
pub const MAX_HANDSHAKE_LEN: usize = 64 * 1024;

/// TLS record header: content type, version, length.
const RECORD_HEADER_LEN: usize = 5;
/// Handshake message header: type (1 byte) and a 24-bit length (RFC 8446 §4); QUIC CRYPTO
/// streams carry the same messages.
pub(crate) const HANDSHAKE_HEADER_LEN: usize = 4;
/// Largest record body a peer may send (RFC 8446 §5.2 allows 2^14 + 256 for ciphertext;
/// `tls-parser` uses the same bound for plaintext, so we stay as lenient as it is).
const MAX_RECORD_LEN: usize = (1 << 14) + 256;
const CONTENT_TYPE_HANDSHAKE: u8 = 22;
/// Handshake message type of ClientHello (RFC 8446 §4).
pub(crate) const HANDSHAKE_CLIENT_HELLO: u8 = 1;
/// Host names in SNI are limited like DNS names (RFC 6066 §3 refers to RFC 1035).
const MAX_SNI_LEN: usize = 255;

const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
const EXT_ENCRYPTED_CLIENT_HELLO: u16 = 0xfe0d;
const SNI_TYPE_HOST_NAME: u8 = 0;

/// What a classifier needs from a ClientHello.
///
/// `sni` and `alpn` borrow from the input when the ClientHello sits in one piece of it
/// (a single TLS record, or a QUIC CRYPTO buffer); they are owned only when the message was
/// spread over several TLS records and had to be copied together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello<'a> {
    /// The `host_name` entry of the server_name extension, if it is a well-formed host name
    /// (ASCII letters, digits, `-`, `_`, dot-separated labels of 1..=63 bytes, at most 255
    /// bytes, no trailing dot). Not lower-cased.
    pub sni: Option<Cow<'a, str>>,
    /// A server_name extension was present but unusable: bad framing, no `host_name` entry,
    /// or a name that is not a valid host name. `sni` is then `None`.
    pub sni_malformed: bool,
    /// Raw ALPN `protocol_name_list` contents: the length-prefixed protocol names, without
    /// the list's own 2-byte length (e.g. `b"\x02h2\x08http/1.1"`). Only set when the list
    /// is well formed; iterate it with [`ClientHello::alpn_protocols`].
    pub alpn: Option<Cow<'a, [u8]>>,
    /// An ALPN extension was present but its framing was inconsistent; `alpn` is then `None`.
    pub alpn_malformed: bool,
    /// `legacy_version` of the ClientHello (0x0303 for TLS 1.2 and 1.3 clients).
    pub version: u16,
    /// Highest non-GREASE version in the supported_versions extension (0x0304 = TLS 1.3).
    pub supported_version: Option<u16>,
    /// Version field of the first TLS record (usually 0x0301); `None` outside TLS-over-TCP.
    pub record_version: Option<u16>,
    /// The encrypted_client_hello extension is present: `sni` is then the outer (public) name.
    pub ech: bool,
}

impl<'a> ClientHello<'a> {
    /// The ALPN protocol names offered, in the client's order (empty if none).
    pub fn alpn_protocols(&self) -> AlpnProtocols<'_> {
        AlpnProtocols {
            rest: self.alpn.as_deref().unwrap_or(&[]),
        }
    }

    /// Detaches the ClientHello from its input, for storing in flow state.
    pub fn into_owned(self) -> ClientHello<'static> {
        ClientHello {
            sni: self.sni.map(|s| Cow::Owned(s.into_owned())),
            sni_malformed: self.sni_malformed,
            alpn: self.alpn.map(|a| Cow::Owned(a.into_owned())),
            alpn_malformed: self.alpn_malformed,
            version: self.version,
            supported_version: self.supported_version,
            record_version: self.record_version,
            ech: self.ech,
        }
    }
}

/// Iterator over ALPN protocol names (see [`ClientHello::alpn_protocols`]).
#[derive(Debug, Clone)]
pub struct AlpnProtocols<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for AlpnProtocols<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, tail) = self.rest.split_first()?;
        // The list was validated when parsed; stopping on a short entry keeps this total
        // even for a hand-built ClientHello.
        if let Some((name, rest)) = tail.split_at_checked(usize::from(len)) {
            self.rest = rest;
            Some(name)
        } else {
            self.rest = &[];
            None
        }
    }
}

/// Why a handshake message did not yield a ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The message is cut short; `wanted` is its full length (header included), once known.
    #[error("TLS handshake message incomplete: {wanted} bytes needed")]
    Incomplete {
        /// Total bytes the handshake message needs, from its first header byte.
        wanted: usize,
    },
    /// The handshake message is of another type (the value is the type byte).
    #[error("TLS handshake message type {0} is not ClientHello")]
    NotClientHello(u8),
    /// The declared message length is over [`MAX_HANDSHAKE_LEN`].
    #[error("TLS handshake message length {0} is over the limit")]
    TooLong(usize),
    /// The ClientHello body is inconsistent; the text says which part.
    #[error("malformed ClientHello: {0}")]
    Malformed(&'static str),
}

/// Outcome of looking for a ClientHello at the start of a client-to-server TCP stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsProbe<'a> {
    /// The ClientHello is complete and parsed.
    Complete(ClientHello<'a>),
    /// The stream is a TLS handshake so far, but the ClientHello is not complete.
    NeedMore {
        /// A lower bound on the total stream length (from its first byte) needed to make
        /// progress; exact once the handshake header and the record carrying the end of the
        /// ClientHello have been seen, which in practice is after the first segment.
        wanted: usize,
    },
    /// The stream does not start with a TLS ClientHello (or it is malformed): stop looking.
    NotTls,
}

/// Parses a ClientHello from a handshake message, as carried by QUIC CRYPTO frames.
///
/// `msg` starts at the handshake header (type 1, 24-bit length); bytes after the message are
/// ignored (they belong to the next message of the CRYPTO stream).
pub fn client_hello_from_handshake(msg: &[u8]) -> Result<ClientHello<'_>, TlsError> {
    if let Some(&ty) = msg.first()
        && ty != HANDSHAKE_CLIENT_HELLO
    {
        return Err(TlsError::NotClientHello(ty));
    }
    let Some(body_len) = handshake_body_len(msg) else {
        return Err(TlsError::Incomplete {
            wanted: HANDSHAKE_HEADER_LEN,
        });
    };
    if body_len > MAX_HANDSHAKE_LEN {
        return Err(TlsError::TooLong(body_len));
    }
    let total = HANDSHAKE_HEADER_LEN + body_len;
    match msg.get(HANDSHAKE_HEADER_LEN..total) {
        Some(body) => parse_body(body, None),
        None => Err(TlsError::Incomplete { wanted: total }),
    }
}

/// Looks for a ClientHello at the start of a client-to-server TCP stream.
///
/// `stream` holds the first bytes the client sent, in order: one or more TLS handshake
/// records; the ClientHello may be split over several records and arrive over several
/// segments. Call again with a longer prefix after [`TlsProbe::NeedMore`].
pub fn client_hello_from_records(stream: &[u8]) -> TlsProbe<'_> {
    let (total, first_record) = match locate(stream) {
        Located::Message {
            total,
            first_record,
        } => (total, first_record),
        Located::NeedMore(wanted) => return TlsProbe::NeedMore { wanted },
        Located::NotTls => return TlsProbe::NotTls,
    };
    let record_version = Some(first_record.version);
    // Common case: the whole message sits in the first record, so borrow it in place.
    if first_record.body.len() >= total {
        return match first_record.body.get(HANDSHAKE_HEADER_LEN..total) {
            Some(body) => probe(parse_body(body, record_version)),
            None => TlsProbe::NotTls,
        };
    }
    // Spread over several records: copy the fragments together, then detach the result
    // from the local buffer.
    let mut msg = Vec::with_capacity(total);
    for record in Records::new(stream) {
        let Ok(record) = record else { break };
        let still = total.saturating_sub(msg.len());
        msg.extend_from_slice(record.body.get(..still).unwrap_or(record.body));
        if msg.len() == total {
            break;
        }
    }
    match msg.get(HANDSHAKE_HEADER_LEN..) {
        Some(body) if msg.len() == total => {
            probe(parse_body(body, record_version).map(ClientHello::into_owned))
        }
        _ => TlsProbe::NotTls,
    }
}

fn probe(parsed: Result<ClientHello<'_>, TlsError>) -> TlsProbe<'_> {
    match parsed {
        Ok(hello) => TlsProbe::Complete(hello),
        Err(_) => TlsProbe::NotTls,
    }
}

/// Where the ClientHello is in the stream, found without copying anything.
enum Located<'a> {
    /// All `total` bytes (header included) of the handshake message are in the stream.
    Message {
        total: usize,
        first_record: Record<'a>,
    },
    NeedMore(usize),
    NotTls,
}

fn locate(stream: &[u8]) -> Located<'_> {
    let mut header = [0u8; HANDSHAKE_HEADER_LEN];
    // Handshake bytes seen in the records walked so far.
    let mut have = 0usize;
    // Full message length (header included), once the handshake header is known.
    let mut total: Option<usize> = None;
    let mut first: Option<Record<'_>> = None;
    let mut records = Records::new(stream);
    loop {
        let record = match records.next() {
            Some(Ok(record)) => record,
            Some(Err(RecordError::NotTls)) => return Located::NotTls,
            Some(Err(RecordError::Truncated)) | None => {
                // The next record header is not (fully) there yet.
                let still = total.unwrap_or(HANDSHAKE_HEADER_LEN).saturating_sub(have);
                return Located::NeedMore(records.pos + RECORD_HEADER_LEN + still);
            }
        };
        // The handshake header itself may be split over records (1-byte records are legal).
        for (i, &b) in record.body.iter().enumerate() {
            match header.get_mut(have + i) {
                Some(slot) => *slot = b,
                None => break,
            }
        }
        have += record.body.len();
        if total.is_none() && have >= HANDSHAKE_HEADER_LEN {
            if header[0] != HANDSHAKE_CLIENT_HELLO {
                return Located::NotTls;
            }
            let Some(body_len) = handshake_body_len(&header) else {
                return Located::NotTls;
            };
            if body_len > MAX_HANDSHAKE_LEN {
                return Located::NotTls;
            }
            total = Some(HANDSHAKE_HEADER_LEN + body_len);
        }
        let first_record = *first.get_or_insert(record);
        if let Some(total) = total
            && have >= total
        {
            return Located::Message {
                total,
                first_record,
            };
        }
        if record.body.len() < record.declared_len {
            // This record is cut short, and with it the message.
            let still = total.unwrap_or(HANDSHAKE_HEADER_LEN).saturating_sub(have);
            let left_in_record = record.declared_len.saturating_sub(record.body.len());
            let end_of_body = record.start + RECORD_HEADER_LEN + record.body.len();
            let wanted = if still <= left_in_record {
                end_of_body + still
            } else {
                end_of_body + left_in_record + RECORD_HEADER_LEN + (still - left_in_record)
            };
            return Located::NeedMore(wanted);
        }
    }
}

/// One TLS handshake record, possibly cut short by the end of the stream.
#[derive(Debug, Clone, Copy)]
struct Record<'a> {
    start: usize,
    version: u16,
    declared_len: usize,
    /// The part of the record body present in the stream.
    body: &'a [u8],
}

enum RecordError {
    /// The stream ends inside a record header (the bytes present are plausible).
    Truncated,
    NotTls,
}

/// Walks consecutive handshake records; stops (returns `None`) after a truncated record.
struct Records<'a> {
    stream: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Records<'a> {
    fn new(stream: &'a [u8]) -> Self {
        Records {
            stream,
            pos: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.stream.get(self.pos..).unwrap_or(&[]);
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        // Reject on the first implausible byte, so a non-TLS stream is dropped at once even
        // when only a few bytes have arrived.
        let plausible = rest.iter().take(3).enumerate().all(|(i, &b)| match i {
            0 => b == CONTENT_TYPE_HANDSHAKE,
            1 => b == 3,
            _ => b <= 4,
        });
        if !plausible {
            self.done = true;
            return Some(Err(RecordError::NotTls));
        }
        // Content type, version, length: the read of the length checks the whole header.
        let (Some(declared_len), Some(version)) = (be16(rest, 3), be16(rest, 1)) else {
            self.done = true;
            return Some(Err(RecordError::Truncated));
        };
        let declared_len = usize::from(declared_len);
        // Zero-length handshake fragments are forbidden (RFC 8446 §5.1) and would let a
        // stream of empty records stall us.
        if declared_len == 0 || declared_len > MAX_RECORD_LEN {
            self.done = true;
            return Some(Err(RecordError::NotTls));
        }
        let avail = rest.len() - RECORD_HEADER_LEN;
        let body_end = RECORD_HEADER_LEN + declared_len.min(avail);
        let body = rest.get(RECORD_HEADER_LEN..body_end).unwrap_or(&[]);
        let record = Record {
            start: self.pos,
            version,
            declared_len,
            body,
        };
        if body.len() < declared_len {
            self.done = true;
        }
        self.pos += RECORD_HEADER_LEN + declared_len;
        Some(Ok(record))
    }
}

/// The 24-bit body length of the handshake message that starts `msg` (RFC 8446 §4), once its
/// header is there.
#[inline]
pub(crate) fn handshake_body_len(msg: &[u8]) -> Option<usize> {
    be24(msg, 1)
}

/// Parses a ClientHello body (after the handshake header), borrowing from it.
fn parse_body(body: &[u8], record_version: Option<u16>) -> Result<ClientHello<'_>, TlsError> {
    // `parse_tls_handshake_client_hello` rather than `parse_tls_message_handshake`: the
    // latter drops whatever follows the parsed fields, and a lying extensions length makes
    // `tls-parser` report "no extensions" instead of an error; the remainder shows both.
    let (rest, contents) = parse_tls_handshake_client_hello(body)
        .map_err(|_| TlsError::Malformed("ClientHello fields"))?;
    if !rest.is_empty() {
        return Err(TlsError::Malformed("extensions length"));
    }
    let mut hello = ClientHello {
        sni: None,
        sni_malformed: false,
        alpn: None,
        alpn_malformed: false,
        version: contents.version.0,
        supported_version: None,
        record_version,
        ech: false,
    };
    let mut seen_sni = false;
    let mut seen_alpn = false;
    let mut exts = contents.ext.unwrap_or(&[]);
    while !exts.is_empty() {
        // Split off one extension without interpreting it (no allocation), so an extension
        // `tls-parser` cannot decode does not hide the ones after it.
        let (rest, ext) =
            parse_tls_extension_unknown(exts).map_err(|_| TlsError::Malformed("extension"))?;
        let TlsExtension::Unknown(ext_type, data) = ext else {
            return Err(TlsError::Malformed("extension"));
        };
        let raw = exts
            .get(..exts.len().saturating_sub(rest.len()))
            .unwrap_or(&[]);
        exts = rest;
        match ext_type.0 {
            // Duplicates are forbidden (RFC 8446 §4.2); the first one wins.
            EXT_SERVER_NAME if !seen_sni => {
                seen_sni = true;
                match server_name(raw, data) {
                    Some(name) => hello.sni = Some(Cow::Borrowed(name)),
                    None => hello.sni_malformed = true,
                }
            }
            EXT_ALPN if !seen_alpn => {
                seen_alpn = true;
                match alpn_list(raw, data) {
                    Some(list) => hello.alpn = Some(Cow::Borrowed(list)),
                    None => hello.alpn_malformed = true,
                }
            }
            EXT_SUPPORTED_VERSIONS if hello.supported_version.is_none() => {
                if let Ok((_, TlsExtension::SupportedVersions(versions))) =
                    parse_tls_client_hello_extension(raw)
                {
                    hello.supported_version = versions
                        .iter()
                        .map(|v| v.0)
                        .filter(|v| !is_grease(*v))
                        .max();
                }
            }
            EXT_ENCRYPTED_CLIENT_HELLO => hello.ech = true,
            _ => {}
        }
    }
    Ok(hello)
}

/// The `host_name` of a server_name extension (`raw` is the whole extension, `data` its
/// body), if the extension is well framed and the name is a valid host name.
fn server_name<'a>(raw: &'a [u8], data: &'a [u8]) -> Option<&'a str> {
    let Ok((_, TlsExtension::SNI(entries))) = parse_tls_client_hello_extension(raw) else {
        return None;
    };
    // `tls-parser` stops quietly at a short trailing entry and ignores bytes after the
    // list: require the entries to fill the list and the list to fill the extension.
    let list_len = usize::from(be16(data, 0)?);
    let entries_len: usize = entries.iter().map(|(_, name)| 3 + name.len()).sum();
    if list_len + 2 != data.len() || entries_len != list_len {
        return None;
    }
    let (_, name) = entries.iter().find(|(ty, _)| ty.0 == SNI_TYPE_HOST_NAME)?;
    host_name(name)
}

/// `b` as a host name: ASCII letters, digits, `-` and `_` (seen in real names despite
/// RFC 952), labels of 1..=63 bytes, at most 255 bytes, no trailing dot (RFC 6066 §3).
fn host_name(b: &[u8]) -> Option<&str> {
    if b.is_empty() || b.len() > MAX_SNI_LEN {
        return None;
    }
    let labels_ok = b.split(|&c| c == b'.').all(|label| {
        !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && label
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    });
    if labels_ok {
        std::str::from_utf8(b).ok()
    } else {
        None
    }
}

/// The protocol names of an ALPN extension (`raw` whole, `data` body) if well framed:
/// the list fills the extension, each name is 1..=255 bytes and the names fill the list.
fn alpn_list<'a>(raw: &'a [u8], data: &'a [u8]) -> Option<&'a [u8]> {
    let Ok((_, TlsExtension::ALPN(names))) = parse_tls_client_hello_extension(raw) else {
        return None;
    };
    let list = data.get(2..)?;
    let list_len = usize::from(be16(data, 0)?);
    let names_len: usize = names.iter().map(|n| 1 + n.len()).sum();
    let names_ok = !names.is_empty() && names.iter().all(|n| !n.is_empty());
    (list_len == list.len() && names_len == list_len && names_ok).then_some(list)
}

/// GREASE values (RFC 8701) look like 0x?a?a and carry no meaning.
fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real packets: see fixtures/packets/README.md for where each one comes from.
    macro_rules! fixture {
        ($name:literal) => {
            &include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/packets/",
                $name
            ))[..]
        };
    }

    fn gateway_icloud() -> &'static [u8] {
        fixture!("client_hello_gateway_icloud.bin")
    }

    fn complete(probe: TlsProbe<'_>) -> ClientHello<'_> {
        match probe {
            TlsProbe::Complete(hello) => hello,
            other => panic!("expected a ClientHello, got {other:?}"),
        }
    }

    fn alpn<'h>(hello: &'h ClientHello<'_>) -> Vec<&'h [u8]> {
        hello.alpn_protocols().collect()
    }

    /// The handshake message (header included) inside a single-record stream.
    fn message_of(record: &[u8]) -> Vec<u8> {
        record[RECORD_HEADER_LEN..].to_vec()
    }

    /// Offset, in a handshake message, of the 2-byte extensions length.
    fn ext_block_offset(msg: &[u8]) -> usize {
        let mut at = HANDSHAKE_HEADER_LEN + 2 + 32;
        at += 1 + usize::from(msg[at]);
        at += 2 + usize::from(u16::from_be_bytes([msg[at], msg[at + 1]]));
        at += 1 + usize::from(msg[at]);
        at
    }

    /// Offset, in a handshake message, of the type field of the first extension `ty`.
    fn ext_offset(msg: &[u8], ty: u16) -> usize {
        let mut at = ext_block_offset(msg) + 2;
        while at + 4 <= msg.len() {
            let this = u16::from_be_bytes([msg[at], msg[at + 1]]);
            if this == ty {
                return at;
            }
            at += 4 + usize::from(u16::from_be_bytes([msg[at + 2], msg[at + 3]]));
        }
        panic!("extension {ty} not found");
    }

    fn put_u16(buf: &mut [u8], at: usize, v: usize) {
        buf[at..at + 2].copy_from_slice(&(v as u16).to_be_bytes());
    }

    fn put_u24(buf: &mut [u8], at: usize, v: usize) {
        buf[at..at + 3].copy_from_slice(&(v as u32).to_be_bytes()[1..]);
    }

    /// A handshake message grown to `total` bytes with a padding extension (RFC 7685), the
    /// size of a ClientHello carrying an X25519MLKEM768 key share.
    fn padded_message(record: &[u8], total: usize) -> Vec<u8> {
        let mut msg = message_of(record);
        let pad = total - msg.len() - 4;
        msg.extend_from_slice(&21u16.to_be_bytes());
        msg.extend_from_slice(&(pad as u16).to_be_bytes());
        msg.resize(total, 0);
        let ext_at = ext_block_offset(&msg);
        let ext_len = total - ext_at - 2;
        put_u16(&mut msg, ext_at, ext_len);
        put_u24(&mut msg, 1, total - HANDSHAKE_HEADER_LEN);
        msg
    }

    /// `msg` framed as TLS records whose fragments end at the given offsets.
    fn records_of(msg: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut from = 0;
        for &to in cuts.iter().chain(std::iter::once(&msg.len())) {
            out.extend_from_slice(&[CONTENT_TYPE_HANDSHAKE, 3, 1]);
            out.extend_from_slice(&((to - from) as u16).to_be_bytes());
            out.extend_from_slice(&msg[from..to]);
            from = to;
        }
        out
    }

    #[test]
    fn gateway_icloud_from_iphone() {
        let hello = complete(client_hello_from_records(gateway_icloud()));
        assert_eq!(hello.sni.as_deref(), Some("gateway.icloud.com"));
        assert!(
            matches!(hello.sni, Some(Cow::Borrowed(_))),
            "single record: borrowed"
        );
        assert!(!hello.sni_malformed);
        assert_eq!(alpn(&hello), [&b"h2"[..], b"http/1.1"]);
        assert_eq!(hello.alpn.as_deref(), Some(&b"\x02h2\x08http/1.1"[..]));
        assert_eq!(hello.version, 0x0303);
        assert_eq!(hello.supported_version, Some(0x0304));
        assert_eq!(hello.record_version, Some(0x0301));
        assert!(!hello.ech);
    }

    #[test]
    fn musicstatus_itunes_from_raw_ip_capture() {
        let stream = fixture!("client_hello_musicstatus_itunes.bin");
        let hello = complete(client_hello_from_records(stream));
        assert_eq!(hello.sni.as_deref(), Some("musicstatus.itunes.apple.com"));
        assert_eq!(alpn(&hello), [&b"h2"[..], b"http/1.1"]);
        // supported_versions starts with GREASE 0x9a9a, which must not count as a version.
        assert_eq!(hello.supported_version, Some(0x0304));
    }

    #[test]
    fn icloud_from_tcp_fast_open_syn_data() {
        let stream = fixture!("client_hello_icloud_tfo_syn.bin");
        let hello = complete(client_hello_from_records(stream));
        assert_eq!(hello.sni.as_deref(), Some("icloud.com"));
        assert_eq!(alpn(&hello), [&b"h2"[..], b"http/1.1"]);
        assert_eq!(hello.supported_version, Some(0x0304));
    }

    #[test]
    fn ntop_from_firefox() {
        let stream = fixture!("client_hello_ntop_firefox.bin");
        let hello = complete(client_hello_from_records(stream));
        assert_eq!(hello.sni.as_deref(), Some("www.ntop.org"));
        assert_eq!(alpn(&hello), [&b"h2"[..], b"http/1.1"]);
    }

    #[test]
    fn handshake_message_as_quic_carries_it() {
        // The same ClientHello without its record header, as a CRYPTO stream would hold it,
        // followed by bytes of a next message that must be ignored.
        let mut msg = message_of(gateway_icloud());
        msg.extend_from_slice(&[0x0f, 0, 0]);
        let hello = client_hello_from_handshake(&msg).unwrap();
        assert_eq!(hello.sni.as_deref(), Some("gateway.icloud.com"));
        assert_eq!(hello.record_version, None);
    }

    #[test]
    fn quic_client_hello_from_chromium() {
        // CRYPTO frames of the first Initial packet, reassembled by offset (Chromium sends
        // them out of order), as tshark decrypts them.
        let msg = fixture!("quic_client_hello_google_de.bin");
        let hello = client_hello_from_handshake(msg).unwrap();
        assert_eq!(hello.sni.as_deref(), Some("www.google.de"));
        assert_eq!(alpn(&hello), [&b"h3"[..]]);
        assert_eq!(hello.supported_version, Some(0x0304));
        // The same bytes are no TLS record stream.
        assert_eq!(client_hello_from_records(msg), TlsProbe::NotTls);
    }

    #[test]
    fn handshake_errors() {
        let msg = message_of(gateway_icloud());
        assert_eq!(
            client_hello_from_handshake(&[]),
            Err(TlsError::Incomplete { wanted: 4 })
        );
        assert_eq!(
            client_hello_from_handshake(&msg[..3]),
            Err(TlsError::Incomplete { wanted: 4 })
        );
        assert_eq!(
            client_hello_from_handshake(&msg[..100]),
            Err(TlsError::Incomplete { wanted: msg.len() })
        );
        assert_eq!(
            client_hello_from_handshake(&[2, 0, 0, 0]),
            Err(TlsError::NotClientHello(2))
        );
        assert_eq!(
            client_hello_from_handshake(&[1, 1, 0, 1]),
            Err(TlsError::TooLong(0x01_0001))
        );
        assert!(matches!(
            client_hello_from_handshake(&[1, 0, 0, 0]),
            Err(TlsError::Malformed(_))
        ));
    }

    #[test]
    fn every_split_of_one_segment() {
        let stream = gateway_icloud();
        for cut in 0..stream.len() {
            match client_hello_from_records(&stream[..cut]) {
                TlsProbe::NeedMore { wanted } => {
                    assert!(
                        wanted > cut && wanted <= stream.len(),
                        "cut {cut}: {wanted}"
                    );
                    if cut >= RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN {
                        assert_eq!(wanted, stream.len(), "cut {cut}");
                    }
                }
                other => panic!("cut {cut}: {other:?}"),
            }
        }
        let hello = complete(client_hello_from_records(stream));
        assert_eq!(hello.sni.as_deref(), Some("gateway.icloud.com"));
    }

    #[test]
    fn large_client_hello_over_two_segments() {
        let msg = padded_message(gateway_icloud(), 1_700);
        let stream = records_of(&msg, &[]);
        // A 1,448-byte first segment (typical MSS with timestamps).
        assert_eq!(
            client_hello_from_records(&stream[..1_448]),
            TlsProbe::NeedMore {
                wanted: stream.len()
            }
        );
        let hello = complete(client_hello_from_records(&stream));
        assert_eq!(hello.sni.as_deref(), Some("gateway.icloud.com"));
        assert_eq!(alpn(&hello), [&b"h2"[..], b"http/1.1"]);
    }

    #[test]
    fn client_hello_over_two_records() {
        let msg = padded_message(gateway_icloud(), 1_700);
        let stream = records_of(&msg, &[1_000]);
        assert_eq!(stream.len(), msg.len() + 2 * RECORD_HEADER_LEN);
        let hello = complete(client_hello_from_records(&stream));
        assert_eq!(hello.sni.as_deref(), Some("gateway.icloud.com"));
        assert!(
            matches!(hello.sni, Some(Cow::Owned(_))),
            "reassembled: owned"
        );
        assert_eq!(hello.supported_version, Some(0x0304));
        assert_eq!(hello.record_version, Some(0x0301));
        for cut in 0..stream.len() {
            match client_hello_from_records(&stream[..cut]) {
                TlsProbe::NeedMore { wanted } => {
                    assert!(
                        wanted > cut && wanted <= stream.len(),
                        "cut {cut}: {wanted}"
                    );
                    if cut >= 1_005 + RECORD_HEADER_LEN {
                        assert_eq!(wanted, stream.len(), "cut {cut}");
                    }
                }
                other => panic!("cut {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn record_boundaries_inside_header_and_sni() {
        // A record boundary in the handshake header and another one in the middle of the
        // host name: the SNI must still come out whole.
        let msg = message_of(gateway_icloud());
        let sni_at = ext_offset(&msg, EXT_SERVER_NAME) + 4 + 2 + 3;
        let stream = records_of(&msg, &[1, 2, 3, sni_at + 7]);
        let hello = complete(client_hello_from_records(&stream));
        assert_eq!(hello.sni.as_deref(), Some("gateway.icloud.com"));
        // One byte per record is legal too.
        let cuts: Vec<usize> = (1..msg.len()).collect();
        let stream = records_of(&msg, &cuts);
        let hello = complete(client_hello_from_records(&stream));
        assert_eq!(hello.sni.as_deref(), Some("gateway.icloud.com"));
    }

    #[test]
    fn lying_lengths() {
        let record = gateway_icloud();
        let msg_len = record.len() - RECORD_HEADER_LEN;
        let msg = message_of(record);
        let ext_block = RECORD_HEADER_LEN + ext_block_offset(&msg);
        let sni_ext = RECORD_HEADER_LEN + ext_offset(&msg, EXT_SERVER_NAME);
        let alpn_ext = RECORD_HEADER_LEN + ext_offset(&msg, EXT_ALPN);
        let read = |at: usize| usize::from(u16::from_be_bytes([record[at], record[at + 1]]));
        // (what, offset of a 2-byte length in the stream)
        let fields = [
            ("record length", 3),
            ("extensions length", ext_block),
            ("server_name extension length", sni_ext + 2),
            ("server_name list length", sni_ext + 4),
            ("host name length", sni_ext + 7),
            ("ALPN extension length", alpn_ext + 2),
            ("ALPN list length", alpn_ext + 4),
        ];
        for (what, at) in fields {
            let real = read(at);
            for v in [0, 1, real - 1, real + 1, real + 100, 0xffff] {
                let mut bad = record.to_vec();
                put_u16(&mut bad, at, v);
                let outcome = client_hello_from_records(&bad);
                // Never a wrong name; a lying inner length gives NotTls or a flagged
                // absence, a too-long outer length gives NeedMore (it may be true).
                if let TlsProbe::Complete(hello) = &outcome {
                    assert!(
                        hello.sni.is_none() || hello.sni.as_deref() == Some("gateway.icloud.com"),
                        "{what} = {v}: {outcome:?}"
                    );
                    // Only a longer record can still carry the intact message.
                    let harmless = v == real || (at == 3 && v > real) || what.starts_with("ALPN");
                    assert!(
                        harmless || hello.sni.is_none(),
                        "{what} = {v} (real {real})"
                    );
                }
                let handshake_result = client_hello_from_handshake(&bad[RECORD_HEADER_LEN..]);
                if let Ok(hello) = handshake_result {
                    assert!(
                        hello.sni.is_none() || hello.sni.as_deref() == Some("gateway.icloud.com")
                    );
                }
            }
        }
        // Specific outcomes.
        let with = |at: usize, v: usize| {
            let mut bad = record.to_vec();
            put_u16(&mut bad, at, v);
            bad
        };
        // A record longer than the data still holds the whole handshake message, which is
        // all we need; a shorter one cuts it, and the next "record" is the message's tail.
        let longer = with(3, msg_len + 1);
        let hello = complete(client_hello_from_records(&longer));
        assert_eq!(hello.sni.as_deref(), Some("gateway.icloud.com"));
        assert_eq!(
            client_hello_from_records(&with(3, msg_len - 1)),
            TlsProbe::NotTls
        );
        assert_eq!(client_hello_from_records(&with(3, 0)), TlsProbe::NotTls);
        assert_eq!(
            client_hello_from_records(&with(3, 0x7fff)),
            TlsProbe::NotTls
        );
        let ext_len = read(ext_block);
        assert_eq!(
            client_hello_from_records(&with(ext_block, ext_len + 1)),
            TlsProbe::NotTls
        );
        assert_eq!(
            client_hello_from_records(&with(ext_block, ext_len - 1)),
            TlsProbe::NotTls
        );
        let sni_len = read(sni_ext + 2);
        assert_eq!(
            client_hello_from_records(&with(sni_ext + 2, sni_len + 1)),
            TlsProbe::NotTls
        );
        for at in [sni_ext + 4, sni_ext + 7] {
            for v in [read(at) - 1, read(at) + 1] {
                let bad = with(at, v);
                let hello = complete(client_hello_from_records(&bad));
                assert_eq!(hello.sni, None);
                assert!(hello.sni_malformed);
            }
        }
        let list_len = read(alpn_ext + 4);
        let bad = with(alpn_ext + 4, list_len - 1);
        let hello = complete(client_hello_from_records(&bad));
        assert_eq!((hello.alpn, hello.alpn_malformed), (None, true));
        assert_eq!(hello.sni.as_deref(), Some("gateway.icloud.com"));
        // Handshake length: larger than the record is a continuation to wait for, larger
        // than the limit is refused, smaller leaves the extensions cut.
        let mut bad = record.to_vec();
        put_u24(
            &mut bad,
            RECORD_HEADER_LEN + 1,
            msg_len - HANDSHAKE_HEADER_LEN + 10,
        );
        assert_eq!(
            client_hello_from_records(&bad),
            TlsProbe::NeedMore {
                wanted: record.len() + RECORD_HEADER_LEN + 10
            }
        );
        put_u24(&mut bad, RECORD_HEADER_LEN + 1, MAX_HANDSHAKE_LEN + 1);
        assert_eq!(client_hello_from_records(&bad), TlsProbe::NotTls);
        put_u24(&mut bad, RECORD_HEADER_LEN + 1, msg_len - 20);
        assert_eq!(client_hello_from_records(&bad), TlsProbe::NotTls);
        put_u24(&mut bad, RECORD_HEADER_LEN + 1, 0);
        assert_eq!(client_hello_from_records(&bad), TlsProbe::NotTls);
    }

    #[test]
    fn not_tls() {
        let get = b"GET /hotspot-detect.html HTTP/1.0\r\nHost: captive.apple.com\r\n\r\n";
        assert_eq!(client_hello_from_records(get), TlsProbe::NotTls);
        assert_eq!(client_hello_from_records(b"G"), TlsProbe::NotTls);
        // Application data, an alert, SSLv2-style hello, a record version from nowhere.
        assert_eq!(
            client_hello_from_records(b"\x17\x03\x03\x00\x10"),
            TlsProbe::NotTls
        );
        assert_eq!(
            client_hello_from_records(b"\x15\x03\x01\x00\x02\x02\x28"),
            TlsProbe::NotTls
        );
        assert_eq!(
            client_hello_from_records(b"\x80\x2e\x01\x00\x02"),
            TlsProbe::NotTls
        );
        assert_eq!(client_hello_from_records(b"\x16\x02\x00"), TlsProbe::NotTls);
        assert_eq!(client_hello_from_records(b"\x16\x03\x09"), TlsProbe::NotTls);
        // A ServerHello is a handshake, but not the one we look for.
        assert_eq!(
            client_hello_from_records(b"\x16\x03\x03\x00\x04\x02\x00\x00\x46"),
            TlsProbe::NotTls
        );
        // A plausible start is worth waiting for.
        assert_eq!(
            client_hello_from_records(b""),
            TlsProbe::NeedMore { wanted: 9 }
        );
        assert_eq!(
            client_hello_from_records(b"\x16\x03"),
            TlsProbe::NeedMore { wanted: 9 }
        );
        // A complete record followed by a non-handshake record before the message ends.
        let msg = message_of(gateway_icloud());
        let mut stream = records_of(&msg[..100], &[]);
        stream.extend_from_slice(b"\x15\x03\x01\x00\x02\x02\x28");
        assert_eq!(client_hello_from_records(&stream), TlsProbe::NotTls);
    }

    #[test]
    fn host_names() {
        assert_eq!(host_name(b"gateway.icloud.com"), Some("gateway.icloud.com"));
        assert_eq!(
            host_name(b"_dmarc.Example-1.COM"),
            Some("_dmarc.Example-1.COM")
        );
        assert_eq!(host_name(b"localhost"), Some("localhost"));
        for bad in [
            &b""[..],
            b"example.com.",
            b".example.com",
            b"a..b",
            b"exa mple.com",
            b"caf\xc3\xa9.fr",
            b"host\0name",
            b"a:443",
        ] {
            assert_eq!(host_name(bad), None, "{bad:?}");
        }
        let label = [b'a'; 63];
        assert!(host_name(&label).is_some());
        assert!(host_name(&[b'a'; 64]).is_none());
        let long: Vec<u8> = std::iter::repeat_n(&b"abcdefghi."[..], 26)
            .flatten()
            .copied()
            .collect();
        assert!(host_name(&long[..255]).is_some());
        assert!(host_name(&long[..256]).is_none());
    }

    #[test]
    fn alpn_iterator_is_total() {
        let hello = ClientHello {
            sni: None,
            sni_malformed: false,
            alpn: Some(Cow::Borrowed(b"\x02h2\x05h")),
            alpn_malformed: false,
            version: 0x0303,
            supported_version: None,
            record_version: None,
            ech: false,
        };
        assert_eq!(alpn(&hello), [&b"h2"[..]]);
    }

    /// Deterministic xorshift, so failures reproduce without a fuzzing crate.
    fn xorshift(state: &mut u64) -> u64 {
        *state = crate::testing::xorshift(*state);
        *state
    }

    #[test]
    fn mutated_client_hellos_never_panic() {
        let msg = padded_message(gateway_icloud(), 700);
        let seeds = [
            gateway_icloud().to_vec(),
            fixture!("client_hello_icloud_tfo_syn.bin").to_vec(),
            records_of(&msg, &[300]),
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15;
        for round in 0..6_000 {
            let mut bytes = seeds[round % seeds.len()].clone();
            for _ in 0..1 + xorshift(&mut state) % 4 {
                let at = (xorshift(&mut state) % bytes.len() as u64) as usize;
                bytes[at] = xorshift(&mut state) as u8;
            }
            let cut = bytes.len() - (xorshift(&mut state) % 8) as usize;
            if let TlsProbe::Complete(hello) = client_hello_from_records(&bytes[..cut])
                && let Some(sni) = &hello.sni
            {
                assert!(host_name(sni.as_bytes()).is_some());
            }
            let _ = client_hello_from_handshake(bytes.get(RECORD_HEADER_LEN..cut).unwrap_or(&[]));
        }
    }
}
