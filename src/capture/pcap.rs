//! Classic pcap: the 24-byte file header and the 16-byte record headers, read straight from
//! the input's buffer, every record length checked against the header's snap length before
//! the record is trusted.
//!
//! Why not a crate: pcap-file 2.0.0's `PcapReader` takes any `incl_len` at face value (a
//! damaged one makes it read until its fixed 8 MB buffer is full and then report
//! `UnexpectedEof`, so damage looks like truncation), its buffer code has `assert!`/`expect`s
//! and `unsafe`, and its `PcapPacket` validation rejects valid records whose original length
//! exceeds the snaplen. Its slice parser, `next_raw_packet`, was used for the four record
//! fields until a benchmark showed the reading around it cost 290 instructions a packet
//! (callgrind, first 100,000 packets of the benchmark capture: 29M of 142M); reading the
//! fields straight from the buffered header brings that to about 50. Its `PcapParser` then
//! only read the file header, re-checking a magic number already matched, for three fields
//! read here at fixed offsets.

use crate::wire::reader::Order;

use super::buffer::Input;
use super::{CaptureError, LinkType, MAX_CAPLEN, Packet, Timestamp};

// Classic pcap magics as they appear on disk, in file byte order.
pub(super) const PCAP_MAGIC_USEC_LE: [u8; 4] = [0xd4, 0xc3, 0xb2, 0xa1];
pub(super) const PCAP_MAGIC_USEC_BE: [u8; 4] = [0xa1, 0xb2, 0xc3, 0xd4];
pub(super) const PCAP_MAGIC_NSEC_LE: [u8; 4] = [0x4d, 0x3c, 0xb2, 0xa1];
pub(super) const PCAP_MAGIC_NSEC_BE: [u8; 4] = [0xa1, 0xb2, 0x3c, 0x4d];

/// Classic pcap file header length.
pub(super) const PCAP_FILE_HEADER_LEN: usize = 24;
/// Offset of the snap length in the file header.
const PCAP_HDR_SNAPLEN: usize = 16;
/// Offset of the link-type field in the file header.
const PCAP_HDR_LINKTYPE: usize = 20;
/// The link-type field's upper bits carry FCS information (libpcap's `LT_LINKTYPE`).
const PCAP_LINKTYPE_MASK: u32 = 0x03ff_ffff;
/// Classic pcap record header length.
pub(super) const PCAP_RECORD_HEADER_LEN: usize = 16;
/// Offset of `incl_len` (captured length) in a record header.
pub(super) const PCAP_REC_CAPLEN: usize = 8;
/// Record header: offsets of the timestamp's seconds, its fraction (micro- or nanoseconds,
/// by the magic) and the original length.
const PCAP_REC_TS_SEC: usize = 0;
const PCAP_REC_TS_FRAC: usize = 4;
const PCAP_REC_ORIG_LEN: usize = 12;

/// Snap length assumed when a header declares none (0) or a small one; together with
/// [`SNAPLEN_SLACK`] it bounds how far a record may exceed the header's snap length.
/// Writers do emit records longer than their declared snaplen (libpcap tolerates it), so
/// the bound is generous; it exists to catch garbage, not to police writers.
const TYPICAL_SNAPLEN: u32 = 65_535;

/// Multiplier applied to the snap length before a caplen is called impossible.
const SNAPLEN_SLACK: u32 = 2;

/// The largest caplen a header with this snaplen can honestly produce (pcapng interfaces
/// use the same bound).
pub(super) fn caplen_limit(snaplen: u32) -> u32 {
    snaplen
        .max(TYPICAL_SNAPLEN)
        .saturating_mul(SNAPLEN_SLACK)
        .min(MAX_CAPLEN)
}

/// What a classic pcap magic number says: the headers' byte order and the timestamp unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Magic {
    order: Order,
    nanos: bool,
}

impl Magic {
    /// The classic pcap magic `magic` is, if it is one.
    pub(super) fn of(magic: [u8; 4]) -> Option<Self> {
        let (order, nanos) = match magic {
            PCAP_MAGIC_USEC_LE => (Order::Little, false),
            PCAP_MAGIC_USEC_BE => (Order::Big, false),
            PCAP_MAGIC_NSEC_LE => (Order::Little, true),
            PCAP_MAGIC_NSEC_BE => (Order::Big, true),
            _ => return None,
        };
        Some(Self { order, nanos })
    }
}

/// A classic pcap file past its header: what the header said, plus what we check.
#[derive(Debug)]
pub(super) struct PcapReader {
    order: Order,
    nanos: bool,
    link: LinkType,
    /// Largest caplen accepted, from the header's snaplen and [`MAX_CAPLEN`].
    max_caplen: u32,
}

impl PcapReader {
    /// Reads the file header, whose magic is `magic`.
    pub(super) fn start(input: &mut Input, magic: Magic) -> Result<Self, CaptureError> {
        let have = input.fill(PCAP_FILE_HEADER_LEN)?;
        let Some(header) = input.window(PCAP_FILE_HEADER_LEN) else {
            return Err(input.truncated(format!(
                "the file ends {have} bytes into the {PCAP_FILE_HEADER_LEN}-byte pcap file header"
            )));
        };
        let order = magic.order;
        // Offsets are constants inside the 24-byte header: never `None`.
        let field = |at: usize| order.u32_at(header, at).unwrap_or_default();
        let reader = PcapReader {
            order,
            nanos: magic.nanos,
            link: LinkType(field(PCAP_HDR_LINKTYPE) & PCAP_LINKTYPE_MASK),
            max_caplen: caplen_limit(field(PCAP_HDR_SNAPLEN)),
        };
        input.consume(PCAP_FILE_HEADER_LEN);
        Ok(reader)
    }

    /// Hands `each` the records already buffered, in order, up to `max` of them, and returns
    /// how many: the fast path of reading. It stops short at the first record it cannot hand
    /// out without a read (not wholly buffered) or a check failing (a length past the snap
    /// length), and at once for a big-endian file: [`PcapReader::next_packet`] reads those.
    // One loop over the buffer, the cursor in a register, the packet built where `each` reads
    // it: returned one at a time through `Option<Result<..>>` and `Next`, with the buffer's
    // bounds checked again each time, a record cost the reading thread 97 instructions
    // (callgrind, first 100,000 packets of the benchmark capture).
    #[inline(always)]
    pub(super) fn buffered_packets(
        &self,
        input: &mut Input,
        max: u64,
        each: &mut impl FnMut(&Packet<'_>),
    ) -> u64 {
        if self.order != Order::Little {
            return 0;
        }
        // A timestamp's fraction in nanoseconds: microseconds times 1,000.
        let unit: u64 = if self.nanos { 1 } else { 1_000 };
        let (link, max_caplen) = (self.link, self.max_caplen);
        let (block, bytes, start, records) = input.unread_parts();
        // Offsets are constants inside the 16-byte header: never `None`.
        let field = |h: &[u8; PCAP_RECORD_HEADER_LEN], at: usize| {
            Order::Little.u32_at(h, at).unwrap_or_default()
        };
        let mut at = *start;
        let mut n = 0;
        while n < max {
            let Some(header) = bytes
                .get(at..)
                .and_then(<[u8]>::first_chunk::<PCAP_RECORD_HEADER_LEN>)
            else {
                break;
            };
            let caplen = field(header, PCAP_REC_CAPLEN);
            if caplen > max_caplen {
                break;
            }
            // Cannot overflow: caplen <= MAX_CAPLEN, `at` is inside the buffer.
            let data_at = at + PCAP_RECORD_HEADER_LEN;
            let Some(data) = bytes.get(data_at..data_at + caplen as usize) else {
                break;
            };
            // As `Timestamp::from_parts`, which cannot saturate with 32-bit parts.
            let ts = u64::from(field(header, PCAP_REC_TS_SEC)) * Timestamp::NANOS_PER_SEC
                + u64::from(field(header, PCAP_REC_TS_FRAC)) * unit;
            let pkt = Packet {
                ts: Timestamp(ts),
                link,
                data,
                orig_len: field(header, PCAP_REC_ORIG_LEN),
                block: Some(block),
            };
            at = data_at + caplen as usize;
            n += 1;
            each(&pkt);
        }
        *start = at;
        *records += n;
        n
    }

    /// Reads one record: `None` at clean end of file.
    pub(super) fn next_packet<'a>(
        &self,
        input: &'a mut Input,
    ) -> Result<Option<Packet<'a>>, CaptureError> {
        let Self {
            order,
            nanos,
            link,
            max_caplen,
        } = *self;
        // Offsets are constants inside the 16-byte header: never `None`.
        let field =
            |h: &[u8; PCAP_RECORD_HEADER_LEN], at: usize| order.u32_at(h, at).unwrap_or_default();
        // Nearly always the whole record is buffered already: no refill, no length checks
        // beyond these two.
        let buffered = input.buffered();
        let (header, whole) = match buffered.first_chunk::<PCAP_RECORD_HEADER_LEN>() {
            Some(h)
                if PCAP_RECORD_HEADER_LEN + field(h, PCAP_REC_CAPLEN) as usize
                    <= buffered.len() =>
            {
                (*h, true)
            }
            _ => {
                let have = input.fill(PCAP_RECORD_HEADER_LEN)?;
                if have == 0 {
                    return Ok(None);
                }
                match input
                    .window(PCAP_RECORD_HEADER_LEN)
                    .and_then(|w| w.first_chunk::<PCAP_RECORD_HEADER_LEN>())
                {
                    Some(h) => (*h, false),
                    None => {
                        return Err(input.truncated(format!(
                            "the file ends {have} bytes into the {PCAP_RECORD_HEADER_LEN}-byte \
                             record header"
                        )));
                    }
                }
            }
        };
        let caplen = field(&header, PCAP_REC_CAPLEN);
        if caplen > max_caplen {
            return Err(input.corrupt(format!(
                "the record header claims {caplen} captured bytes, more than the \
                 {max_caplen} this file's snaplen allows; the header is damaged"
            )));
        }
        // Cannot overflow: caplen <= MAX_CAPLEN.
        let total = PCAP_RECORD_HEADER_LEN + caplen as usize;
        let have = if whole { total } else { input.fill(total)? };
        if have < total {
            return Err(input.truncated(format!(
                "the file ends {have} bytes into a {total}-byte record \
                 ({PCAP_RECORD_HEADER_LEN}-byte header + {caplen} bytes of packet data)"
            )));
        }
        let data_start = input.start() + PCAP_RECORD_HEADER_LEN;
        input.consume(total);
        input.count_record();
        let frac = u64::from(field(&header, PCAP_REC_TS_FRAC));
        let nanos = if nanos { frac } else { frac * 1_000 };
        let input: &'a Input = input;
        Ok(Some(Packet {
            ts: Timestamp::from_parts(u64::from(field(&header, PCAP_REC_TS_SEC)), nanos),
            link,
            data: input.slice(data_start, caplen as usize),
            orig_len: field(&header, PCAP_REC_ORIG_LEN),
            block: Some(input.buffer()),
        }))
    }
}
