//! DNS and mDNS messages on the wire: owns turning one DNS message (a UDP payload, or a frame
//! of a DNS-over-TCP stream) into its header fields, questions and a flat list of resource
//! records with the record data a classifier uses. A pure function of the bytes given: what
//! the records teach about later flows is kept by [`crate::inspect::records`].
//!
//! Hand-written rather than `simple-dns` (0.13): on the first 100,000 packets of the
//! benchmark capture, `simple-dns` parsing plus the conversion of its names took 32% of all
//! instructions (136M of 425M, callgrind), mostly allocating a `Vec` per name and per label
//! and dropping them again. This walker reads the wire once and writes the text of every
//! name of a message into one `String` (a [`Name`] says where each is). Like `simple-dns`
//! it refuses compression pointers that do not point strictly backwards (so pointer loops
//! cannot occur) and names over 255 bytes; unlike it, an unknown QTYPE, CLASS or header bit
//! is kept as data.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::reader::{Reader, be16};

/// Fixed DNS header length.
const HEADER_LEN: usize = 12;
/// Offsets of the header's 16-bit fields (RFC 1035 §4.1.1).
mod field {
    pub(super) const ID: usize = 0;
    pub(super) const FLAGS: usize = 2;
    pub(super) const QDCOUNT: usize = 4;
    pub(super) const ANCOUNT: usize = 6;
    pub(super) const NSCOUNT: usize = 8;
    pub(super) const ARCOUNT: usize = 10;
}
/// Longest label (RFC 1035 §2.3.4): the length byte's two top bits are left for compression
/// pointers. Host names in TLS SNI follow the same rule.
pub const MAX_LABEL_LEN: usize = 63;
/// Smallest question on the wire: a root name (1 byte), QTYPE, QCLASS.
const MIN_QUESTION_LEN: usize = 5;
/// Smallest resource record: a root name, TYPE, CLASS, TTL, RDLENGTH.
const MIN_RECORD_LEN: usize = 11;
/// mDNS reuses the top bit of QCLASS (unicast-response wanted) and CLASS (cache flush).
const MDNS_CLASS_BIT: u16 = 0x8000;
/// Longest name on the wire, length bytes and the root's zero included (RFC 1035 §3.1).
const MAX_NAME_WIRE: usize = 255;
/// Record types whose data the classifier reads (other types are kept as their number).
pub mod rtype {
    /// IPv4 address.
    pub const A: u16 = 1;
    /// Canonical name.
    pub const CNAME: u16 = 5;
    /// Pointer (DNS-SD browsing).
    pub const PTR: u16 = 12;
    /// Text strings (DNS-SD key=value pairs).
    pub const TXT: u16 = 16;
    /// IPv6 address.
    pub const AAAA: u16 = 28;
    /// Service location (DNS-SD instance to host and port).
    pub const SRV: u16 = 33;
    /// Pseudo-record carrying EDNS(0) options; not a record about a name.
    pub const OPT: u16 = 41;
}

/// Why a payload is not a usable DNS message.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The message ends before its header, or before the questions and records its header
    /// counts.
    #[error("DNS message truncated")]
    Truncated,
    /// DNS over TCP: the frame is not complete yet; `wanted` counts the 2-byte length prefix.
    #[error("DNS-over-TCP frame incomplete: {wanted} bytes needed")]
    Incomplete {
        /// Bytes of stream needed for the whole frame, length prefix included.
        wanted: usize,
    },
    /// Inconsistent: a name over 255 bytes, a label type other than length or pointer, a
    /// compression pointer that does not point strictly backwards (loops included), or
    /// record data that does not fit its type or its length.
    #[error("malformed DNS message: {0}")]
    Malformed(&'static str),
}

/// One parsed DNS message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsMessage<'a> {
    /// The message bytes (for DNS over TCP, without the length prefix; the frame took
    /// `raw.len() + 2` bytes of the stream).
    pub raw: &'a [u8],
    /// Transaction ID (0 in mDNS).
    pub id: u16,
    /// The raw flags word (QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode).
    pub flags: u16,
    /// QR bit: this is a response (for mDNS: an announcement or answer).
    pub is_response: bool,
    /// Opcode (0 = query, 4 = notify, 5 = update, others kept as they are).
    pub opcode: u8,
    /// Response code from the header (the 4 low bits; EDNS extended bits not included).
    pub rcode: u8,
    /// TC bit: the sender cut the message short, so the records may be incomplete.
    pub truncated: bool,
    /// The text of the message's names, one after another (a name that is a compression
    /// pointer to a name read before shares its text): see [`DnsMessage::name`].
    text: String,
    /// Question section, in order.
    pub questions: Vec<Question>,
    /// Answer, authority and additional records, in that order (EDNS OPT pseudo-records
    /// are left out).
    pub records: Vec<Record<'a>>,
}

/// A name of a [`DnsMessage`]: where its text is in the message's names
/// ([`DnsMessage::name`] gives it). Two names with the same place have the same text; two
/// with different places may have it too.
///
/// Why not a `String` per name: its allocation, its UTF-8 check and its drop were a third of
/// the cost of a name, and the text of a name that is only a compression pointer to a name
/// read before is now not built again (see [`DnsMessage::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Name {
    start: u32,
    end: u32,
}

impl Name {
    /// Whether the name is the root (`""`), or was not built.
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}

impl DnsMessage<'_> {
    /// The text of `name`, a name of this message: labels joined by `.`, ASCII letters
    /// lower-cased, no trailing dot, the root as `""`. A `.` or `\` inside a label is escaped
    /// as `\.` or `\\` (RFC 6763 §4.3) so it cannot pass for a label boundary; a name that is
    /// not UTF-8 has its bad bytes replaced by U+FFFD. `""` for a name of another message
    /// that does not fit this one.
    pub fn name(&self, name: Name) -> &str {
        self.text
            .get(name.start as usize..name.end as usize)
            .unwrap_or_default()
    }
}

/// One entry of the question section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Queried name (see [`DnsMessage::name`]).
    pub name: Name,
    /// QTYPE (1 = A, 28 = AAAA, 12 = PTR, 65 = HTTPS, ...).
    pub qtype: u16,
    /// QCLASS without the mDNS unicast-response bit (1 = IN, 255 = ANY).
    pub qclass: u16,
    /// mDNS "QU" bit: the querier asks for a unicast response (RFC 6762 §5.4).
    pub unicast_response: bool,
}

/// Section a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    /// Answer section.
    Answer,
    /// Authority section.
    Authority,
    /// Additional section.
    Additional,
}

/// One resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Section the record came from.
    pub section: Section,
    /// Owner name (see [`DnsMessage::name`]).
    pub name: Name,
    /// TYPE (1 = A, 5 = CNAME, 12 = PTR, 16 = TXT, 28 = AAAA, 33 = SRV, ...).
    pub rtype: u16,
    /// CLASS without the mDNS cache-flush bit.
    pub class: u16,
    /// mDNS cache-flush bit (top bit of CLASS, RFC 6762 §10.2).
    pub cache_flush: bool,
    /// Time to live, seconds.
    pub ttl: u32,
    /// Decoded record data.
    pub data: RecordData<'a>,
}

/// Record data of the types a classifier uses; anything else is `Other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData<'a> {
    /// IPv4 address.
    A(Ipv4Addr),
    /// IPv6 address.
    Aaaa(Ipv6Addr),
    /// Canonical name.
    Cname(Name),
    /// Pointer target, e.g. a DNS-SD instance name.
    Ptr(Name),
    /// Service location (DNS-SD).
    Srv {
        /// Priority (lower first).
        priority: u16,
        /// Weight among equal priorities.
        weight: u16,
        /// TCP or UDP port of the service.
        port: u16,
        /// Host offering the service.
        target: Name,
    },
    /// TXT strings as sent (borrowed from the message), each usually `key` or `key=value`
    /// (RFC 6763 §6). Strings that are empty or start with `=` are not kept (RFC 6763 §6.4
    /// says to ignore them).
    Txt(Vec<&'a [u8]>),
    /// Another type, or data that is empty; the value is the TYPE.
    Other(u16),
}

impl RecordData<'_> {
    /// For TXT data, the value of the first `key=value` string whose key matches
    /// (ASCII case-insensitive, RFC 6763 §6.4); `Some(b"")` for a bare `key`.
    pub fn txt_value(&self, key: &str) -> Option<&[u8]> {
        let RecordData::Txt(strings) = self else {
            return None;
        };
        strings.iter().find_map(|s| {
            let (k, v) = match s.iter().position(|&b| b == b'=') {
                Some(eq) => (s.get(..eq)?, s.get(eq + 1..)?),
                None => (*s, &[][..]),
            };
            k.eq_ignore_ascii_case(key.as_bytes()).then_some(v)
        })
    }
}

/// A header field: `header` is a whole header, so the read cannot fail.
#[inline]
fn word(header: &[u8; HEADER_LEN], at: usize) -> u16 {
    be16(header, at).unwrap_or(0)
}

/// The four section counts of `header`: questions, answers, authority, additional.
#[inline]
fn counts(header: &[u8; HEADER_LEN]) -> [usize; 4] {
    [
        field::QDCOUNT,
        field::ANCOUNT,
        field::NSCOUNT,
        field::ARCOUNT,
    ]
    .map(|at| usize::from(word(header, at)))
}

/// Parses one DNS or mDNS message (a whole UDP payload).
pub fn parse_message(payload: &[u8]) -> Result<DnsMessage<'_>, DnsError> {
    parse_message_keeping(payload, |_| true)
}

/// [`parse_message`], keeping only the records whose TYPE `keep` accepts. The others are
/// checked as [`parse_message`] checks them, so this fails exactly when it fails, but their
/// names are not built: a consumer that reads a few types does not pay for the rest (a
/// unicast DNS answer's NS, SOA and PTR records, for one).
pub fn parse_message_keeping(
    payload: &[u8],
    keep: impl Fn(u16) -> bool,
) -> Result<DnsMessage<'_>, DnsError> {
    let Some(header) = payload.first_chunk::<HEADER_LEN>() else {
        return Err(DnsError::Truncated);
    };
    let [qd, an, ns, ar] = counts(header);
    // Counts the payload cannot hold are refused before anything is reserved for them.
    if payload.len() < HEADER_LEN + qd * MIN_QUESTION_LEN + (an + ns + ar) * MIN_RECORD_LEN {
        return Err(DnsError::Truncated);
    }
    let flags = word(header, field::FLAGS);
    let mut r = Reader::at(payload, HEADER_LEN);
    let mut text = Text::for_message(payload);
    let mut questions = Vec::with_capacity(qd);
    for _ in 0..qd {
        let name = read_name(&mut r, &mut text)?;
        let qtype = read_u16(&mut r)?;
        let qclass = read_u16(&mut r)?;
        questions.push(Question {
            name,
            qtype,
            qclass: qclass & !MDNS_CLASS_BIT,
            unicast_response: qclass & MDNS_CLASS_BIT != 0,
        });
    }
    let mut records = Vec::with_capacity(an + ns + ar);
    let sections = [
        (Section::Answer, an),
        (Section::Authority, ns),
        (Section::Additional, ar),
    ];
    for (section, n) in sections {
        for _ in 0..n {
            if let Some(rec) = read_record(&mut r, section, &mut text, &keep)? {
                records.push(rec);
            }
        }
    }
    let text = text.finish(&mut questions, &mut records);
    Ok(DnsMessage {
        raw: payload,
        id: word(header, field::ID),
        flags,
        is_response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0xf) as u8,
        rcode: (flags & 0xf) as u8,
        truncated: flags & 0x0200 != 0,
        text,
        questions,
        records,
    })
}

/// Parses the DNS message framed at the start of a DNS-over-TCP stream (RFC 1035 §4.2.2:
/// a 2-byte length, then the message). Bytes after the frame are left alone: the next frame
/// starts at `raw.len() + 2`.
pub fn parse_tcp_message(payload: &[u8]) -> Result<DnsMessage<'_>, DnsError> {
    let Some(len) = be16(payload, 0) else {
        return Err(DnsError::Incomplete { wanted: 2 });
    };
    let len = usize::from(len);
    if len < HEADER_LEN {
        return Err(DnsError::Truncated);
    }
    match payload.get(2..2 + len) {
        Some(message) => parse_message(message),
        None => Err(DnsError::Incomplete { wanted: 2 + len }),
    }
}

/// The bytes of a query that say what it asks: the whole message, less a trailing EDNS(0)
/// OPT pseudo-record. Apple devices put an EDNS0 Owner option with a sequence number that
/// grows by one on every mDNS query they send (draft-cheshire-edns0-owner-option), so their
/// repeats are never byte-identical; the OPT record carries no name, and the parse leaves it
/// out, so two queries equal in these bytes parse to the same questions and records. On the
/// benchmark capture one querier sends 1,462 queries per copy in 512 byte-distinct forms, all
/// alike but for that sequence number.
///
/// An OPT record that is not last is kept (a later name could point into it), and so is the
/// ID (a name could point into the header). A message that does not walk cleanly is returned
/// whole: the parse will say what is wrong with it.
pub fn query_content(payload: &[u8]) -> &[u8] {
    query_content_decided(payload).0
}

/// [`query_content`], with how many of the first bytes of `payload` decide it: any payload
/// of the same length that starts with those bytes has the same content. The walk that
/// finds the content reads no byte past them (the OPT record's data, the sequence number
/// included, is only skipped), so a repeat can be told by comparing bytes.
pub fn query_content_decided(payload: &[u8]) -> (&[u8], usize) {
    without_trailing_opt(payload).unwrap_or((payload, payload.len()))
}

fn without_trailing_opt(payload: &[u8]) -> Option<(&[u8], usize)> {
    let [qd, an, ns, ar] = counts(payload.first_chunk::<HEADER_LEN>()?);
    let records = an + ns + ar;
    if records == 0 {
        return None;
    }
    let mut pos = HEADER_LEN;
    for _ in 0..qd {
        pos = skip_name(payload, pos)?.checked_add(4)?;
    }
    let mut last = (pos, 0, pos);
    for _ in 0..records {
        let start = pos;
        pos = skip_name(payload, pos)?;
        // TYPE, CLASS, TTL, RDLENGTH: the read of RDLENGTH checks all ten bytes are there.
        let rdlen = usize::from(be16(payload, pos + 8)?);
        let rtype = be16(payload, pos)?;
        pos += 10;
        last = (start, rtype, pos);
        pos += rdlen;
    }
    let (start, rtype, read) = last;
    (pos == payload.len() && rtype == rtype::OPT).then(|| (&payload[..start], read))
}

/// Where the name at `pos` ends, without reading its labels' text (at its root label or
/// its first pointer; the pointer is not followed).
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *msg.get(pos)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(pos + 1),
            0x00 => pos += 1 + usize::from(len),
            0xc0 => return Some(pos + 2).filter(|&end| end <= msg.len()),
            _ => return None,
        }
    }
}

#[inline]
fn read_u16(r: &mut Reader<'_>) -> Result<u16, DnsError> {
    r.u16().ok_or(DnsError::Truncated)
}

/// Reads the name at the cursor (following compression pointers, which may point anywhere
/// before it in the message) into `text`, and moves past it.
fn read_name(r: &mut Reader<'_>, text: &mut Text) -> Result<Name, DnsError> {
    let (name, end) = text.build(r.buffer(), r.position())?;
    r.seek(end);
    Ok(name)
}

/// Moves past the name at the cursor, checking it as [`read_name`] does without building it.
fn check_name(r: &mut Reader<'_>) -> Result<(), DnsError> {
    let end = name_at(r.buffer(), r.position())?;
    r.seek(end);
    Ok(())
}

/// One resource record; `None` for an OPT pseudo-record or a type `keep` refuses (read only
/// as far as it takes to say whether it is well-formed).
fn read_record<'a>(
    r: &mut Reader<'a>,
    section: Section,
    text: &mut Text,
    keep: &impl Fn(u16) -> bool,
) -> Result<Option<Record<'a>>, DnsError> {
    // The TYPE follows the name: found by skipping the name's labels, it says whether the
    // name is wanted. A name that does not skip is read, and refused, as any other.
    let rtype_ahead = skip_name(r.buffer(), r.position()).and_then(|end| be16(r.buffer(), end));
    let wanted = rtype_ahead.is_none_or(|t| t != rtype::OPT && keep(t));
    let name = if wanted {
        read_name(r, text)?
    } else {
        check_name(r)?;
        Name::default()
    };
    let rtype = read_u16(r)?;
    let class = read_u16(r)?;
    let ttl = r.u32().ok_or(DnsError::Truncated)?;
    let rdlen = usize::from(read_u16(r)?);
    let rdata_at = r.position();
    let rdata = r.bytes(rdlen).ok_or(DnsError::Truncated)?;
    if rtype == rtype::OPT {
        return Ok(None);
    }
    let data = if rdata.is_empty() {
        // mDNS announces TXT records with no strings at all as an empty RDATA; empty
        // data of another type is data we cannot use.
        if rtype == rtype::TXT {
            RecordData::Txt(Vec::new())
        } else {
            RecordData::Other(rtype)
        }
    } else {
        rdata_of(r.buffer(), rtype, rdata, rdata_at, wanted.then_some(text))?
    };
    if !(wanted && keep(rtype)) {
        return Ok(None);
    }
    Ok(Some(Record {
        section,
        name,
        rtype,
        class: class & !MDNS_CLASS_BIT,
        cache_flush: class & MDNS_CLASS_BIT != 0,
        ttl,
        data,
    }))
}

/// The data of a record of type `rtype`, which is `rdata`, found at `at` in `msg`. With no
/// `text` buffer the data is only checked: names come back empty, TXT strings are not kept.
fn rdata_of<'a>(
    msg: &'a [u8],
    rtype: u16,
    rdata: &'a [u8],
    at: usize,
    mut text: Option<&mut Text>,
) -> Result<RecordData<'a>, DnsError> {
    // A name inside the data may point back into the message, but must end inside it.
    let mut name_in = |start: usize| -> Result<Name, DnsError> {
        let mut r = Reader::at(msg, start);
        let name = match text.as_deref_mut() {
            Some(text) => read_name(&mut r, text),
            None => check_name(&mut r).map(|()| Name::default()),
        }
        .map_err(|e| match e {
            DnsError::Truncated => DnsError::Malformed("name runs past its record"),
            e => e,
        })?;
        if r.position() == at + rdata.len() {
            Ok(name)
        } else if r.position() < at + rdata.len() {
            Err(DnsError::Malformed(
                "bytes left after a name in record data",
            ))
        } else {
            Err(DnsError::Malformed("name runs past its record"))
        }
    };
    Ok(match rtype {
        rtype::A => RecordData::A(Ipv4Addr::from(
            <[u8; 4]>::try_from(rdata).map_err(|_| DnsError::Malformed("A record length"))?,
        )),
        rtype::AAAA => RecordData::Aaaa(Ipv6Addr::from(
            <[u8; 16]>::try_from(rdata).map_err(|_| DnsError::Malformed("AAAA record length"))?,
        )),
        rtype::CNAME => RecordData::Cname(name_in(at)?),
        rtype::PTR => RecordData::Ptr(name_in(at)?),
        rtype::SRV => {
            let mut srv = Reader::new(rdata);
            let (Some(priority), Some(weight), Some(port)) = (srv.u16(), srv.u16(), srv.u16())
            else {
                return Err(DnsError::Malformed("SRV record length"));
            };
            RecordData::Srv {
                priority,
                weight,
                port,
                target: name_in(at + 6)?,
            }
        }
        rtype::TXT => {
            let keep = text.is_some();
            let mut strings = Vec::new();
            let mut r = Reader::new(rdata);
            while !r.is_empty() {
                let s = r
                    .u8_prefixed()
                    .ok_or(DnsError::Malformed("TXT string runs past its record"))?;
                if keep && s.first().is_some_and(|&b| b != b'=') {
                    strings.push(s);
                }
            }
            RecordData::Txt(strings)
        }
        other => RecordData::Other(other),
    })
}

/// `0x01` in every byte of a word.
const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
/// The top bit of every byte of a word.
const TOPS: u64 = ONES * 0x80;
/// The seven low bits of every byte of a word.
const LOWS: u64 = ONES * 0x7f;

/// The top bit of each byte of `x` that equals `b`, nothing else.
#[inline]
pub(crate) fn bytes_equal(x: u64, b: u8) -> u64 {
    let y = x ^ (ONES * u64::from(b));
    !(((y & LOWS) + LOWS) | y | LOWS)
}

/// `x` with every ASCII capital letter lower-cased (bytes over 0x7f stay as they are).
#[inline]
fn ascii_lower(x: u64) -> u64 {
    let low7 = x & LOWS;
    // Top bit set where the low seven bits are at least 'A', and where they are past 'Z'.
    let from_a = low7 + ONES * (0x80 - u64::from(b'A'));
    let past_z = low7 + ONES * (0x80 - u64::from(b'Z' + 1));
    let capital = from_a & !past_z & !x & TOPS;
    x | (capital >> 2)
}

/// Appends the label `msg[at..at + len]` to `out`, ASCII letters lower-cased, `.` and `\`
/// escaped, and returns the top bits of its bytes (zero when it is ASCII). Eight bytes at a time: a byte at a time (a scan for the two escaped bytes, then
/// one to lower-case) this cost about 10 instructions a byte of every name of every DNS and
/// mDNS message; with the name's exact-size allocation, 182.2M -> 180.9M instructions on the
/// first 100k packets of the benchmark capture (callgrind).
fn push_label(out: &mut Vec<u8>, msg: &[u8], at: usize, len: usize) -> u64 {
    let (start, end) = (out.len(), at + len);
    let mut escaped = 0;
    let mut high = 0;
    let mut i = at;
    while i < end {
        let n = (end - i).min(8);
        // The next eight bytes of the message, those past the label cleared; byte by byte
        // only at the very end of the message.
        let x = match msg.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
            Some(w) => u64::from_le_bytes(w) & (u64::MAX >> (8 * (8 - n))),
            None => msg
                .get(i..i + n)
                .unwrap_or_default()
                .iter()
                .rev()
                .fold(0, |x, &b| x << 8 | u64::from(b)),
        };
        escaped |= bytes_equal(x, b'.') | bytes_equal(x, b'\\');
        high |= x & TOPS;
        out.extend_from_slice(&ascii_lower(x).to_le_bytes());
        i += n;
    }
    out.truncate(start + len);
    if escaped != 0 {
        // Rare: a `.` or `\` inside a label, escaped as RFC 6763 §4.3 writes it.
        out.truncate(start);
        for &b in msg.get(at..end).unwrap_or_default() {
            if b == b'.' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b.to_ascii_lowercase());
        }
    }
    high
}

/// Checks the name at `pos` of `msg` and returns where it ends at `pos` (after its root
/// label or its first pointer).
///
/// Every pointer must point before the start of the labels that hold it, so each jump lands
/// strictly earlier than the last and a walk cannot loop; the wire length (as if no pointer
/// were used) is capped at 255. [`Text::build`] walks a name the same way.
fn name_at(msg: &[u8], mut pos: usize) -> Result<usize, DnsError> {
    let mut end = None;
    let mut segment_start = pos;
    let mut wire = 1; // the root's zero byte
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Ok(end.unwrap_or(pos + 1)),
            // A label: with the top bits clear, at most `MAX_LABEL_LEN` bytes.
            0x00 => {
                let len = usize::from(len);
                if pos + 1 + len > msg.len() {
                    return Err(DnsError::Truncated);
                }
                wire += 1 + len;
                if wire > MAX_NAME_WIRE {
                    return Err(DnsError::Malformed("name over 255 bytes"));
                }
                pos += 1 + len;
            }
            0xc0 => {
                let target = pointer_target(msg, pos, segment_start)?;
                end.get_or_insert(pos + 2);
                pos = target;
                segment_start = target;
            }
            _ => return Err(DnsError::Malformed("reserved label type")),
        }
    }
}

/// Where the compression pointer at `pos` points; it must point before `segment_start`, the
/// start of the labels that hold it.
#[inline]
fn pointer_target(msg: &[u8], pos: usize, segment_start: usize) -> Result<usize, DnsError> {
    let high = *msg.get(pos).ok_or(DnsError::Truncated)?;
    let low = *msg.get(pos + 1).ok_or(DnsError::Truncated)?;
    let target = usize::from(high & 0x3f) << 8 | usize::from(low);
    if target >= segment_start {
        return Err(DnsError::Malformed(
            "compression pointer not strictly backwards",
        ));
    }
    Ok(target)
}

/// The text of a message's names while it is parsed: one buffer for all, and where the
/// labels of the names built so far start, so that a name pointing at one of them takes its
/// text from the buffer instead of walking its labels again. Most names of a message are
/// such pointers (an answer's owner is the question's name, an mDNS record's the instance
/// announced before), and walking them again was most of their cost.
// With a `String` per name before: 406.1M -> 396.4M instructions on bench-small, 146.1M ->
// 142.9M on the first 100k packets of the benchmark capture (callgrind).
struct Text {
    bytes: Vec<u8>,
    /// Top bits of every byte of `bytes`: zero when all are ASCII.
    high: u64,
    /// Label starts of the names built so far, in the order of their place in the message
    /// (names are read front to back, so only labels reached through a pointer, which are not
    /// kept, would come out of order).
    suffixes: Vec<Suffix>,
}

/// A name built from a label on: its text and wire length.
#[derive(Clone, Copy)]
struct Suffix {
    /// Where the label is in the message.
    at: u32,
    /// The text of the labels from there to the root, in `Text::bytes`.
    name: Name,
    /// Their wire length as if no pointer were used, the root's byte included (while the
    /// name is built: the wire length before the label).
    wire: u32,
}

impl Text {
    /// Room for the names of `msg`: its length in text (a message holds less text than
    /// bytes, unless most of its names point at earlier ones, whose text is then mostly
    /// shared), and a few names' labels. Growing both from nothing cost more than the
    /// walks they saved (callgrind).
    fn for_message(msg: &[u8]) -> Self {
        Self {
            bytes: Vec::with_capacity(msg.len()),
            high: 0,
            suffixes: Vec::with_capacity(16),
        }
    }

    /// Builds the name at `pos` of `msg`, walking it as [`name_at`] does (and failing as it
    /// does), and returns where its text is and where the name ends at `pos`.
    fn build(&mut self, msg: &[u8], mut pos: usize) -> Result<(Name, usize), DnsError> {
        let start = self.bytes.len();
        let first = self.suffixes.len();
        let mut end = None;
        let mut segment_start = pos;
        let mut wire = 1; // the root's zero byte
        // Labels at the name's own place (before any pointer) are kept as suffixes.
        let mut own = true;
        loop {
            let len = *msg.get(pos).ok_or(DnsError::Truncated)?;
            match len & 0xc0 {
                0x00 if len == 0 => break,
                0x00 => {
                    let len = usize::from(len);
                    if pos + 1 + len > msg.len() {
                        return Err(DnsError::Truncated);
                    }
                    if wire + 1 + len > MAX_NAME_WIRE {
                        return Err(DnsError::Malformed("name over 255 bytes"));
                    }
                    if self.bytes.len() > start {
                        self.bytes.push(b'.');
                    }
                    if own
                        && let Ok(at) = u32::try_from(pos)
                        && self.suffixes.last().is_none_or(|s| s.at < at)
                    {
                        let text = self.bytes.len() as u32;
                        self.suffixes.push(Suffix {
                            at,
                            name: Name {
                                start: text,
                                end: text,
                            },
                            wire: wire as u32,
                        });
                    }
                    wire += 1 + len;
                    self.high |= push_label(&mut self.bytes, msg, pos + 1, len);
                    pos += 1 + len;
                }
                0xc0 => {
                    let target = pointer_target(msg, pos, segment_start)?;
                    end.get_or_insert(pos + 2);
                    // A name built before from `target` on: the walk from there would go
                    // as it went then (its pointers point before `target`), adding its wire
                    // length and its text.
                    if let Some(s) = self.suffix_at(target) {
                        wire += s.wire as usize - 1;
                        if wire > MAX_NAME_WIRE {
                            return Err(DnsError::Malformed("name over 255 bytes"));
                        }
                        let end = end.unwrap_or(pos + 2);
                        if self.bytes.len() == start {
                            return Ok((s.name, end));
                        }
                        self.bytes.push(b'.');
                        let (from, to) = (s.name.start as usize, s.name.end as usize);
                        self.bytes.extend_from_within(from..to);
                        return Ok((self.close(start, first, wire), end));
                    }
                    own = false;
                    pos = target;
                    segment_start = target;
                }
                _ => return Err(DnsError::Malformed("reserved label type")),
            }
        }
        Ok((self.close(start, first, wire), end.unwrap_or(pos + 1)))
    }

    /// Ends the name whose text starts at `start` and whose suffixes start at `first`: it is
    /// `wire` bytes long on the wire.
    fn close(&mut self, start: usize, first: usize, wire: usize) -> Name {
        let end = self.bytes.len() as u32;
        for s in self.suffixes.get_mut(first..).unwrap_or_default() {
            s.name.end = end;
            s.wire = wire as u32 - s.wire + 1;
        }
        Name {
            start: start as u32,
            end,
        }
    }

    /// The name built before from the label at `at` of the message on.
    #[inline]
    fn suffix_at(&self, at: usize) -> Option<Suffix> {
        let at = u32::try_from(at).ok()?;
        let i = self.suffixes.binary_search_by_key(&at, |s| s.at).ok()?;
        self.suffixes.get(i).copied()
    }

    /// The text of every name as one string. Names that are not UTF-8 (all of them are when
    /// the text is ASCII) have their bad bytes replaced, and the names given new places.
    fn finish(self, questions: &mut [Question], records: &mut [Record<'_>]) -> String {
        let bytes = match String::from_utf8(self.bytes) {
            Ok(s) if self.high == 0 => return s,
            Ok(s) => {
                let mut all_text = true;
                each_name(questions, records, |n| {
                    all_text &= s.get(n.start as usize..n.end as usize).is_some();
                });
                if all_text {
                    return s;
                }
                s.into_bytes()
            }
            Err(e) => e.into_bytes(),
        };
        let mut text = String::with_capacity(bytes.len());
        each_name(questions, records, |n| {
            let raw = bytes
                .get(n.start as usize..n.end as usize)
                .unwrap_or_default();
            let start = text.len() as u32;
            text.push_str(&String::from_utf8_lossy(raw));
            *n = Name {
                start,
                end: text.len() as u32,
            };
        });
        text
    }
}

/// Calls `f` with every name of the questions and records.
fn each_name(questions: &mut [Question], records: &mut [Record<'_>], mut f: impl FnMut(&mut Name)) {
    for q in questions {
        f(&mut q.name);
    }
    for r in records {
        f(&mut r.name);
        match &mut r.data {
            RecordData::Cname(n) | RecordData::Ptr(n) | RecordData::Srv { target: n, .. } => f(n),
            _ => {}
        }
    }
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

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Record data with its names as text.
    fn shown(msg: &DnsMessage<'_>, data: &RecordData<'_>) -> String {
        match data {
            RecordData::Cname(n) => format!("CNAME {}", msg.name(*n)),
            RecordData::Ptr(n) => format!("PTR {}", msg.name(*n)),
            RecordData::Srv {
                priority,
                weight,
                port,
                target,
            } => format!("SRV {priority} {weight} {port} {}", msg.name(*target)),
            other => format!("{other:?}"),
        }
    }

    /// Everything a message says, its names as text.
    fn all_shown(msg: &DnsMessage<'_>) -> String {
        let questions: Vec<_> = msg
            .questions
            .iter()
            .map(|q| (msg.name(q.name), q.qtype, q.qclass, q.unicast_response))
            .collect();
        let records: Vec<_> = msg
            .records
            .iter()
            .map(|r| {
                let head = (r.section, msg.name(r.name), r.rtype, r.class, r.cache_flush);
                (head, r.ttl, shown(msg, &r.data))
            })
            .collect();
        let header = (msg.raw, msg.id, msg.flags, msg.is_response, msg.opcode);
        let more = (msg.rcode, msg.truncated);
        format!("{header:?} {more:?} {questions:?} {records:?}")
    }

    /// Follows CNAMEs from `name` to the addresses at the end of the chain.
    fn resolve(msg: &DnsMessage<'_>, name: &str) -> (Vec<String>, Vec<Ipv4Addr>) {
        let mut chain = vec![name.to_string()];
        let mut at = name.to_string();
        while let Some(next) = msg.records.iter().find_map(|r| match &r.data {
            RecordData::Cname(target) if msg.name(r.name) == at => {
                Some(msg.name(*target).to_string())
            }
            _ => None,
        }) {
            chain.push(next.clone());
            at = next;
        }
        let addrs = msg
            .records
            .iter()
            .filter(|r| msg.name(r.name) == at)
            .filter_map(|r| match r.data {
                RecordData::A(a) => Some(a),
                _ => None,
            })
            .collect();
        (chain, addrs)
    }

    /// A query header for one question, followed by `body`.
    fn query(body: &[u8]) -> Vec<u8> {
        let mut m = hex("123401000001000000000000");
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn apns_courier_with_cname_chain() {
        let msg = parse_message(fixture!("dns_41_courier_push_apple.bin")).unwrap();
        assert_eq!(msg.id, 0x6631);
        assert!(msg.is_response);
        assert_eq!(
            (msg.flags, msg.opcode, msg.rcode, msg.truncated),
            (0x8180, 0, 0, false)
        );
        let q = &msg.questions[..];
        assert_eq!(
            (q.len(), msg.name(q[0].name), q[0].qtype, q[0].qclass),
            (1, "41-courier.push.apple.com", 1, 1)
        );
        assert!(!q[0].unicast_response);
        // 10 answers; the additional OPT pseudo-record is not a record.
        assert_eq!(msg.records.len(), 10);
        assert!(msg.records.iter().all(|r| r.section == Section::Answer));
        let (chain, addrs) = resolve(&msg, "41-courier.push.apple.com");
        assert_eq!(
            chain,
            [
                "41-courier.push.apple.com",
                "41.courier-push-apple.com.akadns.net",
                "eu-north-courier-4.push-apple.com.akadns.net"
            ]
        );
        assert_eq!(addrs.len(), 8);
        assert!(addrs.contains(&Ipv4Addr::new(17, 57, 146, 139)));
        assert!(addrs.iter().all(|a| a.octets()[0] == 17));
        let first = &msg.records[0];
        assert_eq!(
            (first.rtype, first.class, first.ttl, first.cache_flush),
            (5, 1, 9431, false)
        );
    }

    #[test]
    fn siri_guzzoni_cname_to_aaplimg() {
        let msg = parse_message(fixture!("dns_guzzoni_apple_cname.bin")).unwrap();
        let (chain, addrs) = resolve(&msg, "guzzoni.apple.com");
        assert_eq!(
            chain,
            ["guzzoni.apple.com", "guzzoni-apple-com.v.aaplimg.com"]
        );
        assert_eq!(addrs, [Ipv4Addr::new(17, 130, 21, 5)]);
    }

    #[test]
    fn apns_courier_from_anyconnect_capture() {
        let msg = parse_message(fixture!("dns_1_courier_push_apple.bin")).unwrap();
        assert_eq!(msg.name(msg.questions[0].name), "1-courier.push.apple.com");
        let (chain, addrs) = resolve(&msg, "1-courier.push.apple.com");
        assert_eq!(chain.len(), 3);
        assert_eq!(addrs, [Ipv4Addr::new(17, 57, 144, 116)]);
    }

    #[test]
    fn dns_over_tcp_frame() {
        // No shared capture has DNS over TCP: frame a real UDP response as RFC 1035 does.
        let udp = fixture!("dns_41_courier_push_apple.bin");
        let mut stream = (udp.len() as u16).to_be_bytes().to_vec();
        stream.extend_from_slice(udp);
        let next_frame = [0, 12, 0x66];
        stream.extend_from_slice(&next_frame);
        let msg = parse_tcp_message(&stream).unwrap();
        assert_eq!(msg, parse_message(udp).unwrap());
        assert_eq!(msg.raw.len() + 2, stream.len() - next_frame.len());
        for cut in 0..udp.len() + 2 {
            let wanted = if cut < 2 { 2 } else { udp.len() + 2 };
            assert_eq!(
                parse_tcp_message(&stream[..cut]),
                Err(DnsError::Incomplete { wanted }),
                "cut {cut}"
            );
        }
        assert_eq!(
            parse_tcp_message(&[0, 5, 1, 2, 3, 4, 5]),
            Err(DnsError::Truncated)
        );
    }

    #[test]
    fn mdns_companion_link_and_device_info() {
        let msg = parse_message(fixture!("mdns_companion_link_device_info.bin")).unwrap();
        assert_eq!((msg.id, msg.flags, msg.is_response), (0, 0x8400, true));
        assert!(msg.questions.is_empty());
        let sections: Vec<Section> = msg.records.iter().map(|r| r.section).collect();
        assert_eq!(
            sections,
            [
                Section::Answer,
                Section::Additional,
                Section::Additional,
                Section::Additional,
                Section::Additional
            ]
        );
        let instance = "lp-rkerur-osx (9)._companion-link._tcp.local";
        assert_eq!(msg.name(msg.records[0].name), "_companion-link._tcp.local");
        assert_eq!(shown(&msg, &msg.records[0].data), format!("PTR {instance}"));
        assert_eq!(
            (msg.records[0].ttl, msg.records[0].cache_flush),
            (4500, false)
        );
        let srv = &msg.records[1];
        assert_eq!(
            (msg.name(srv.name), srv.rtype, srv.cache_flush),
            (instance, 33, true)
        );
        assert_eq!(shown(&msg, &srv.data), "SRV 0 0 56169 ndpi.local");
        assert_eq!(
            msg.records[2].data,
            RecordData::Txt(vec![&b"rpBA=37:2E:47:6D:18:54"[..], &b"rpVr=152.1"[..]])
        );
        let info = &msg.records[3];
        assert_eq!(
            msg.name(info.name),
            "lp-rkerur-osx (9)._device-info._tcp.local"
        );
        assert_eq!(info.data.txt_value("model"), Some(&b"MacBookPro11,1"[..]));
        assert_eq!(info.data.txt_value("MODEL"), Some(&b"MacBookPro11,1"[..]));
        assert_eq!(info.data.txt_value("osxvers"), Some(&b"17"[..]));
        assert_eq!(info.data.txt_value("missing"), None);
        let a = &msg.records[4];
        assert_eq!(
            (msg.name(a.name), a.class, a.cache_flush),
            ("ndpi.local", 1, true)
        );
        assert_eq!(a.data, RecordData::A(Ipv4Addr::new(10, 0, 0, 227)));
    }

    #[test]
    fn mdns_announcement_from_lucas_imac() {
        let msg = parse_message(fixture!("mdns_lucas_imac_announce.bin")).unwrap();
        assert_eq!(
            msg.records.len(),
            30 + 10,
            "30 answers, 10 additional plus OPT"
        );
        // Only ASCII letters are lower-cased; the curly apostrophe stays.
        let instance = "luca\u{2019}s imac._companion-link._tcp.local";
        let srv = msg
            .records
            .iter()
            .find(|r| msg.name(r.name) == instance && r.rtype == 33)
            .unwrap();
        assert_eq!(shown(&msg, &srv.data), "SRV 0 0 49155 lucas-imac.local");
        assert!(
            msg.records
                .iter()
                .any(|r| msg.name(r.name) == "_companion-link._tcp.local"
                    && shown(&msg, &r.data) == format!("PTR {instance}"))
        );
        let nsec = msg
            .records
            .iter()
            .find(|r| msg.name(r.name) == instance && r.rtype == 47)
            .unwrap();
        assert_eq!(
            (nsec.section, &nsec.data),
            (Section::Additional, &RecordData::Other(47))
        );
        let host: Vec<&RecordData<'_>> = msg
            .records
            .iter()
            .filter(|r| msg.name(r.name) == "lucas-imac.local")
            .map(|r| &r.data)
            .collect();
        assert!(host.contains(&&RecordData::A(Ipv4Addr::new(192, 168, 2, 1))));
        assert!(host.contains(&&RecordData::Aaaa(
            "fe80::c42c:3ff:fe60:6a64".parse().unwrap()
        )));
        let model = msg.records.iter().find_map(|r| {
            r.data
                .txt_value("model")
                .filter(|_| msg.name(r.name).contains("_device-info"))
        });
        assert_eq!(model, Some(&b"iMac11,3"[..]));
    }

    #[test]
    fn mdns_query_with_unicast_response_bit() {
        // ndpi__iphone.pcap frame 33: "QU" PTR query for _homekit._tcp.local with an EDNS
        // OPT record (Owner option) in the additional section.
        let bytes = hex(
            "000000000001000000000001085f686f6d656b6974045f746370056c6f63616c00000c8001\
             00002905a00000119400120004000e0000e6618b3582a9c4618b3582a9",
        );
        let msg = parse_message(&bytes).unwrap();
        assert!(!msg.is_response);
        let q = &msg.questions[..];
        assert_eq!(
            (q.len(), msg.name(q[0].name), q[0].qtype, q[0].qclass),
            (1, "_homekit._tcp.local", 12, 1)
        );
        assert!(q[0].unicast_response);
        assert!(msg.records.is_empty());
    }

    #[test]
    fn compression_pointer_loops_are_errors() {
        // Question name that points at itself.
        let looped = query(&hex("c00c00010001"));
        assert!(matches!(
            parse_message(&looped),
            Err(DnsError::Malformed(_))
        ));
        // A label then a pointer back to that label: each turn adds bytes, so the name
        // length limit ends it.
        let spiral = query(&hex("0161c00c00010001"));
        assert!(matches!(
            parse_message(&spiral),
            Err(DnsError::Malformed(_))
        ));
        // Two names pointing at each other: one pointer must go forwards, which is refused.
        let mut pair = hex("123481800001000100000000");
        pair.extend_from_slice(&hex("c01200010001")); // question name at 12 -> 18
        pair.extend_from_slice(&hex("c00c000100010000003c00040a000001")); // answer at 18 -> 12
        assert!(matches!(parse_message(&pair), Err(DnsError::Malformed(_))));
        // A legitimate backward pointer still works.
        let mut ok = hex("123481800001000100000000");
        ok.extend_from_slice(&hex("056170706c6503636f6d0000010001"));
        ok.extend_from_slice(&hex("c00c000100010000003c000411fdb7cb"));
        let msg = parse_message(&ok).unwrap();
        assert_eq!(msg.name(msg.records[0].name), "apple.com");
        assert_eq!(
            msg.records[0].data,
            RecordData::A(Ipv4Addr::new(17, 253, 183, 203))
        );
    }

    #[test]
    fn long_names_are_errors() {
        // 5 labels of 59 bytes: 300 bytes on the wire.
        let mut name = Vec::new();
        for _ in 0..5 {
            name.push(59);
            name.extend_from_slice(&[b'a'; 59]);
        }
        name.push(0);
        assert_eq!(name.len(), 301);
        let mut msg = query(&name);
        msg.extend_from_slice(&[0, 1, 0, 1]);
        assert!(matches!(parse_message(&msg), Err(DnsError::Malformed(_))));
        // Exactly 255 bytes on the wire is the limit; one more is refused.
        let wire = |total: usize| {
            let mut name = Vec::new();
            while total - 1 - name.len() > 64 {
                name.push(63);
                name.extend_from_slice(&[b'b'; 63]);
            }
            let last = total - 1 - name.len() - 1;
            name.push(last as u8);
            name.extend_from_slice(&vec![b'c'; last]);
            name.push(0);
            assert_eq!(name.len(), total);
            let mut msg = query(&name);
            msg.extend_from_slice(&[0, 1, 0, 1]);
            msg
        };
        let longest = wire(255);
        let msg = parse_message(&longest).unwrap();
        assert_eq!(msg.name(msg.questions[0].name).len(), 253);
        assert!(matches!(
            parse_message(&wire(256)),
            Err(DnsError::Malformed(_))
        ));
        // A name that points at a name read before counts that name's length: a question
        // of 200 bytes on the wire, then an answer whose owner adds labels before pointing
        // at it (55 bytes before the pointer make 255, 56 make 256).
        let answer = |before: usize| {
            let mut m = hex("000084000001000100000000");
            for _ in 0..3 {
                m.push(65 - 2);
                m.extend_from_slice(&[b'q'; 63]);
            }
            m.push(6);
            m.extend_from_slice(b"qqqqqq");
            m.push(0);
            m.extend_from_slice(&[0, 1, 0, 1]);
            let mut left = before;
            while left > 0 {
                let len = (left - 1).min(63);
                m.push(len as u8);
                m.extend_from_slice(&vec![b'a'; len]);
                left -= 1 + len;
            }
            m.extend_from_slice(&hex("c00c000100010000003c00040a000001"));
            m
        };
        let longest = answer(55);
        let msg = parse_message(&longest).unwrap();
        assert_eq!(msg.name(msg.questions[0].name).len(), 198);
        assert_eq!(msg.name(msg.records[0].name).len(), 253);
        assert_eq!(
            parse_message(&answer(56)),
            Err(DnsError::Malformed("name over 255 bytes"))
        );
        // A 64-byte label.
        let mut label = vec![64];
        label.extend_from_slice(&[b'd'; 64]);
        label.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert!(parse_message(&query(&label)).is_err());
    }

    #[test]
    fn truncated_messages_are_errors() {
        let full = fixture!("mdns_companion_link_device_info.bin");
        for cut in 0..full.len() {
            assert_eq!(
                parse_message(&full[..cut]),
                Err(DnsError::Truncated),
                "cut {cut}"
            );
        }
        // Counts no payload of this size can hold are refused before any parsing.
        let mut huge = hex("0000840000000000ffff0000");
        huge.extend_from_slice(&[0; 64]);
        assert_eq!(parse_message(&huge), Err(DnsError::Truncated));
        // An A record whose RDLENGTH runs past the end.
        let mut short = hex("123481800000000100000000");
        short.extend_from_slice(&hex("00000100010000003c0004"));
        short.extend_from_slice(&[10, 0]);
        assert_eq!(parse_message(&short), Err(DnsError::Truncated));
    }

    #[test]
    fn unusual_values() {
        // Unknown record type and opcode are kept as numbers; an upper-case name is
        // lower-cased; a dot inside a label is escaped.
        let mut m = hex("abcd98000000000100000000"); // QR, opcode 3, AA
        m.extend_from_slice(&hex("03412e42054150504c45000fa10001000000050002beef"));
        let msg = parse_message(&m).unwrap();
        assert_eq!((msg.opcode, msg.rcode, msg.is_response), (3, 0, true));
        assert_eq!(msg.name(msg.records[0].name), "a\\.b.apple");
        assert_eq!(
            (msg.records[0].rtype, &msg.records[0].data),
            (0x0fa1, &RecordData::Other(0x0fa1))
        );
        // Empty RDATA of a known type is data we cannot use, not an error.
        let mut m = hex("123481800000000100000000");
        m.extend_from_slice(&hex("00000100010000003c0000"));
        assert_eq!(
            parse_message(&m).unwrap().records[0].data,
            RecordData::Other(1)
        );
        // Unknown codes are data: an unknown QTYPE, an unknown CLASS and the reserved Z bit
        // (which `simple-dns` refused, losing the message) are kept as they are.
        let unknown_qtype = query(&hex("000fa10001"));
        let q = &parse_message(&unknown_qtype).unwrap().questions[0];
        assert_eq!((q.qtype, q.qclass), (0x0fa1, 1));
        let unknown_class = query(&hex("0000010009"));
        let q = &parse_message(&unknown_class).unwrap().questions[0];
        assert_eq!((q.qtype, q.qclass), (1, 9));
        let mut z = query(&hex("0000010001"));
        z[3] |= 0x40;
        assert_eq!(parse_message(&z).unwrap().flags & 0x0040, 0x0040);
        // Record data that does not fit its type is refused, not read past.
        let mut bad_a = hex("123481800000000100000000");
        bad_a.extend_from_slice(&hex("00000100010000003c00030a0000"));
        assert!(matches!(parse_message(&bad_a), Err(DnsError::Malformed(_))));
        let mut cname_past = hex("123481800000000100000000");
        cname_past.extend_from_slice(&hex("00000500010000003c0002036162630000"));
        assert!(matches!(
            parse_message(&cname_past),
            Err(DnsError::Malformed(_))
        ));
        // A reserved label type (0b01 or 0b10 in the top bits) is not a name.
        assert!(matches!(
            parse_message(&query(&hex("4000010001"))),
            Err(DnsError::Malformed(_))
        ));
        assert_eq!(parse_message(&[]), Err(DnsError::Truncated));
    }

    #[test]
    fn mutated_messages_never_panic() {
        let seeds = [
            fixture!("dns_41_courier_push_apple.bin"),
            fixture!("dns_guzzoni_apple_cname.bin"),
            fixture!("mdns_companion_link_device_info.bin"),
            fixture!("mdns_lucas_imac_announce.bin"),
        ];
        let mut state: u64 = 0x853c_49e6_748f_ea9b;
        let mut next = || {
            state = crate::testing::xorshift(state);
            state
        };
        for round in 0..8_000 {
            let mut bytes = seeds[round % seeds.len()].to_vec();
            for _ in 0..1 + next() % 4 {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            let cut = bytes.len() - (next() % 4) as usize;
            if let Ok(msg) = parse_message(&bytes[..cut]) {
                assert!(
                    msg.records
                        .iter()
                        .all(|r| msg.name(r.name).len() <= 2 * 255)
                );
            }
            let _ = parse_tcp_message(&bytes[..cut]);
        }
    }

    #[test]
    fn names_are_built_as_label_by_label_text() {
        // The text of a name, byte by byte: the form `Record::name` describes.
        fn reference(labels: &[Vec<u8>]) -> String {
            let mut out = Vec::new();
            for (i, label) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                for &b in label {
                    if b == b'.' || b == b'\\' {
                        out.push(b'\\');
                    }
                    out.push(b.to_ascii_lowercase());
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        }
        // Letters and the bytes next to them, the escaped bytes, UTF-8 and stray high bytes.
        let alphabet = b"AZaz@[`{09.\\-_ \xc3\xa9\xe2\x80\x99\x80\xff\x7f\x00";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state = crate::testing::xorshift(state);
            state
        };
        for round in 0..4_000 {
            let labels: Vec<Vec<u8>> = (0..1 + next() % 4)
                .map(|_| {
                    (0..1 + next() % 20)
                        .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                        .collect()
                })
                .collect();
            let mut wire = Vec::new();
            for l in &labels {
                wire.push(l.len() as u8);
                wire.extend_from_slice(l);
            }
            wire.push(0);
            // As a question (the name then has bytes after it) and as a PTR record's data at
            // the very end of the message (it has none).
            let mut q = query(&wire);
            q.extend_from_slice(&[0, 12, 0, 1]);
            let mut ptr = hex("000084000000000100000000");
            ptr.extend_from_slice(&hex("00000c00010000007800"));
            ptr.push(wire.len() as u8);
            ptr.extend_from_slice(&wire);
            let want = reference(&labels);
            let q = parse_message(&q).unwrap();
            assert_eq!(q.name(q.questions[0].name), want, "round {round}");
            let ptr = parse_message(&ptr).unwrap();
            assert_eq!(
                shown(&ptr, &ptr.records[0].data),
                format!("PTR {want}"),
                "round {round}"
            );
        }
    }

    #[test]
    fn keeping_some_types_fails_and_keeps_as_the_full_parse() {
        let seeds = [
            fixture!("dns_41_courier_push_apple.bin"),
            fixture!("dns_guzzoni_apple_cname.bin"),
            fixture!("mdns_companion_link_device_info.bin"),
            fixture!("mdns_lucas_imac_announce.bin"),
        ];
        let kinds: [fn(u16) -> bool; 3] = [
            |t| matches!(t, rtype::A | rtype::AAAA | rtype::CNAME),
            |t| t == rtype::TXT,
            |_| false,
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            state = crate::testing::xorshift(state);
            state
        };
        for round in 0..8_000 {
            let mut bytes = seeds[round % seeds.len()].to_vec();
            // The first rounds take each seed as it is.
            for _ in 0..(round >= seeds.len()) as u64 * (1 + next() % 4) {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            let bytes = &bytes[..bytes.len() - (next() % 4) as usize];
            let keep = kinds[round % kinds.len()];
            // Compared as text: the names not kept are not in the kept message's text.
            let full = parse_message(bytes).map(|mut m| {
                m.records.retain(|r| keep(r.rtype));
                all_shown(&m)
            });
            let kept = parse_message_keeping(bytes, keep).map(|m| all_shown(&m));
            assert_eq!(kept, full, "round {round}");
        }
    }

    #[test]
    fn repeats_differing_only_in_owner_option_have_the_same_content() {
        let a = fixture!("mdns_browse_owner_seq_179.bin");
        let b = fixture!("mdns_browse_owner_seq_180.bin");
        assert_ne!(a, b);
        // The content ends where the OPT record starts: after the 6 questions.
        assert_eq!(query_content(a), query_content(b));
        assert_eq!(query_content(a).len(), 156 - 29);
        // What the parse keeps is the same for both.
        let (pa, pb) = (parse_message(a).unwrap(), parse_message(b).unwrap());
        assert_eq!((pa.questions.len(), pa.records.len()), (6, 0));
        assert_eq!(
            (pa.text, pa.questions, pa.records),
            (pb.text, pb.questions, pb.records),
            "the OPT record is all that differs"
        );
    }

    /// The text of the name at `pos` of `msg`, walked label by label (`msg` parsed, so the
    /// walk ends).
    fn walked(msg: &[u8], mut pos: usize) -> String {
        let mut out = Vec::new();
        loop {
            let len = usize::from(msg[pos]);
            match len & 0xc0 {
                0 if len == 0 => break,
                0 => {
                    if !out.is_empty() {
                        out.push(b'.');
                    }
                    for &b in &msg[pos + 1..pos + 1 + len] {
                        if b == b'.' || b == b'\\' {
                            out.push(b'\\');
                        }
                        out.push(b.to_ascii_lowercase());
                    }
                    pos += 1 + len;
                }
                _ => pos = (len & 0x3f) << 8 | usize::from(msg[pos + 1]),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn names_taken_from_earlier_names_read_as_walked_ones() {
        let seeds = [
            fixture!("dns_41_courier_push_apple.bin"),
            fixture!("dns_guzzoni_apple_cname.bin"),
            fixture!("mdns_companion_link_device_info.bin"),
            fixture!("mdns_lucas_imac_announce.bin"),
            fixture!("mdns_browse_owner_seq_179.bin"),
        ];
        let mut state: u64 = 0x3c6e_f372_fe94_f82b;
        let mut next = || {
            state = crate::testing::xorshift(state);
            state
        };
        let mut checked = 0;
        for round in 0..6_000 {
            let mut bytes = seeds[round % seeds.len()].to_vec();
            // The first rounds take each seed as it is; then a few bytes change, one of them
            // often a pointer's low byte (the names then point elsewhere).
            for _ in 0..(round >= seeds.len()) as u64 * (1 + next() % 3) {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            let Ok(msg) = parse_message(&bytes) else {
                continue;
            };
            // Where each name is, found by walking the message again.
            let mut want = Vec::new();
            let mut pos = HEADER_LEN;
            for _ in &msg.questions {
                want.push(walked(&bytes, pos));
                pos = skip_name(&bytes, pos).unwrap() + 4;
            }
            let mut got: Vec<String> = msg
                .questions
                .iter()
                .map(|q| msg.name(q.name).into())
                .collect();
            let [_, an, ns, ar] = counts(bytes.first_chunk().unwrap());
            for _ in 0..an + ns + ar {
                let owner = pos;
                pos = skip_name(&bytes, pos).unwrap();
                let rtype = be16(&bytes, pos).unwrap();
                let rdata = pos + 10;
                pos = rdata + usize::from(be16(&bytes, pos + 8).unwrap());
                if rtype == rtype::OPT {
                    continue;
                }
                want.push(walked(&bytes, owner));
                match rtype {
                    rtype::CNAME | rtype::PTR => want.push(walked(&bytes, rdata)),
                    rtype::SRV => want.push(walked(&bytes, rdata + 6)),
                    _ => {}
                }
            }
            for r in &msg.records {
                got.push(msg.name(r.name).into());
                match r.data {
                    RecordData::Cname(n)
                    | RecordData::Ptr(n)
                    | RecordData::Srv { target: n, .. } => got.push(msg.name(n).into()),
                    _ => {}
                }
            }
            assert_eq!(got, want, "round {round}");
            checked += 1;
        }
        assert!(checked > 1_000, "{checked} messages parsed");
    }

    #[test]
    fn bytes_past_the_decided_ones_do_not_change_the_content() {
        let seeds = [
            fixture!("mdns_browse_owner_seq_179.bin"),
            fixture!("mdns_browse_owner_seq_180.bin"),
            fixture!("mdns_companion_link_device_info.bin"),
            fixture!("dns_41_courier_push_apple.bin"),
        ];
        let (content, decided) = query_content_decided(seeds[0]);
        assert_eq!((content.len(), decided), (156 - 29, 156 - 29 + 11));
        let mut state: u64 = 0x6a09_e667_f3bc_c908;
        let mut next = || {
            state = crate::testing::xorshift(state);
            state
        };
        for round in 0..4_000 {
            let mut bytes = seeds[round % seeds.len()].to_vec();
            for _ in 0..next() % 3 {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            let (content, decided) = query_content_decided(&bytes);
            assert_eq!(content, query_content(&bytes));
            assert!(content.len() <= decided && decided <= bytes.len());
            let mut other = bytes.clone();
            for b in &mut other[decided..] {
                *b = next() as u8;
            }
            assert_eq!(query_content(&other), content, "round {round}");
        }
    }

    #[test]
    fn query_content_keeps_what_the_parse_keeps() {
        let a = fixture!("mdns_browse_owner_seq_179.bin");
        // A message without a trailing OPT is its own content.
        let answer = fixture!("mdns_companion_link_device_info.bin");
        assert_eq!(query_content(answer), answer);
        // The OPT followed by a byte, or a question changed, is different content.
        let mut longer = a.to_vec();
        longer.push(0);
        assert_eq!(query_content(&longer), &longer[..]);
        let mut other = a.to_vec();
        other[20] ^= 0x20;
        assert_ne!(query_content(&other), query_content(a));
        // Broken framing: the whole message, never a panic.
        for cut in 0..a.len() {
            assert_eq!(query_content(&a[..cut]), &a[..cut]);
        }
    }
}
