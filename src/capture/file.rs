//! Offline capture files: classic pcap and pcapng, read from a file or a stream, one borrowed packet at a time.
//!
//! Both formats are parsed out of one large buffer that this module owns, so packets are
//! handed out as slices of it (no copy, no allocation per packet) and every error can say
//! exactly which record and byte offset it concerns.
//!
//! Classic pcap: the file header and each record are parsed with pcap-file's slice parser
//! (`PcapParser`), but only after this module has checked the 16-byte record header itself
//! and made sure the whole record is in the buffer. That ordering is what keeps the reader
//! panic-free and lets it tell a cut-short file from a damaged one; pcap-file's own
//! `PcapReader` cannot (see the notes on `read_pcap_record`).
//!
//! pcapng: parsed here by hand. pcap-file 2.0.0's only pcapng slice parser usable without
//! naming `byteorder_slice` types (which it does not re-export, and which are no dependency of
//! ours) is `PcapNgParser`, and it (like `PcapNgReader`) eagerly decodes every section and
//! interface option with checks that reject files Wireshark and libpcap read (an `if_tzone`
//! option of the 4 bytes the specification gives it is refused as "length != 1", option strings
//! must be UTF-8, a non-zero reserved field fails the block), reports some malformed options as
//! `IncompleteBuffer` (indistinguishable from "need more data"), ignores `if_tsresol` and
//! `if_tsoffset` in packet timestamps, reads the obsolete Packet Block's timestamp words in the
//! wrong order for little-endian files, and allocates an option vector per packet. The framing
//! we need is a few dozen lines, written below against the pcapng specification with every
//! length checked once.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, bounded};

use pcap_file::pcap::PcapParser;
use pcap_file::{Endianness, TsResolution};
use thiserror::Error;

use crate::capture::{LinkType, Packet, Timestamp};

/// Room past a small file's length in its block (the read that finds the end needs some).
const SMALL_FILE_SLACK: usize = 4096;

/// Buffers kept for reuse once every packet of theirs has been handled.
const SPARE_BLOCKS: usize = 16;

/// A run of bytes read from a capture file, shared with whoever still holds packets in it.
///
/// The pipeline hands a worker a place in a block rather than a copy of the packet (copying
/// every payload into batches cost the reading thread a tenth of its time on the benchmark
/// capture). The reader writes into its block only while nobody else holds it; otherwise it
/// moves on to a fresh one, and the old one's buffer comes back for reuse when the last
/// holder lets go.
#[derive(Debug)]
pub struct Block {
    bytes: Vec<u8>,
    spare: Option<Sender<Vec<u8>>>,
}

impl Block {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Where `part` lies in this block, if it lies inside it: `(start, len)`.
    pub fn place_of(&self, part: &[u8]) -> Option<(usize, usize)> {
        let start = (part.as_ptr() as usize).checked_sub(self.bytes.as_ptr() as usize)?;
        (start.checked_add(part.len())? <= self.bytes.len()).then_some((start, part.len()))
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if let Some(spare) = &self.spare {
            let _ = spare.try_send(std::mem::take(&mut self.bytes));
        }
    }
}

/// Size of the read buffer. Large reads keep the per-packet cost of I/O negligible; the
/// buffer grows past this only for a single block that does not fit (rare, bounded by
/// [`MAX_BLOCK_LEN`]).
const BUFFER_LEN: usize = 1 << 20;

/// Largest captured length accepted for one packet: libpcap's `MAXIMUM_SNAPLEN`. A longer
/// record header is damage, not data, and trusting it would make us buffer gigabytes.
pub const MAX_CAPLEN: u32 = 262_144;

/// Snap length assumed when a header declares none (0) or a small one; together with
/// [`SNAPLEN_SLACK`] it bounds how far a record may exceed the header's snap length.
/// Writers do emit records longer than their declared snaplen (libpcap tolerates it), so
/// the bound is generous; it exists to catch garbage, not to police writers.
const TYPICAL_SNAPLEN: u32 = 65_535;

/// Multiplier applied to the snap length before a caplen is called impossible.
const SNAPLEN_SLACK: u32 = 2;

/// Largest pcapng block accepted (libpcap uses the same 16 MiB ceiling).
const MAX_BLOCK_LEN: u32 = 16 * 1024 * 1024;

/// Length of the magic number that tells the formats apart.
const MAGIC_LEN: usize = 4;

// Classic pcap magics as they appear on disk, in file byte order.
const PCAP_MAGIC_USEC_LE: [u8; 4] = [0xd4, 0xc3, 0xb2, 0xa1];
const PCAP_MAGIC_USEC_BE: [u8; 4] = [0xa1, 0xb2, 0xc3, 0xd4];
const PCAP_MAGIC_NSEC_LE: [u8; 4] = [0x4d, 0x3c, 0xb2, 0xa1];
const PCAP_MAGIC_NSEC_BE: [u8; 4] = [0xa1, 0xb2, 0x3c, 0x4d];
/// pcapng files start with a Section Header Block, whose type reads the same in both orders.
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Classic pcap file header length.
const PCAP_FILE_HEADER_LEN: usize = 24;
/// Offset of the link-type field in the classic pcap file header.
const PCAP_HDR_LINKTYPE: usize = 20;
/// The link-type field's upper bits carry FCS information (libpcap's `LT_LINKTYPE`).
const PCAP_LINKTYPE_MASK: u32 = 0x03ff_ffff;
/// Classic pcap record header length.
const PCAP_RECORD_HEADER_LEN: usize = 16;
/// Offset of `incl_len` (captured length) in a classic pcap record header.
const PCAP_REC_CAPLEN: usize = 8;
/// Record header: offsets of the timestamp's seconds, its fraction (micro- or nanoseconds,
/// by the magic) and the original length.
const PCAP_REC_TS_SEC: usize = 0;
const PCAP_REC_TS_FRAC: usize = 4;
const PCAP_REC_ORIG_LEN: usize = 12;

/// pcapng block type and total-length fields.
const BLOCK_HEADER_LEN: usize = 8;
/// pcapng trailing total-length field.
const BLOCK_TRAILER_LEN: usize = 4;
/// Smallest legal pcapng block: header plus trailer, empty body.
const MIN_BLOCK_LEN: u32 = 12;
/// Offset of the total-length field within a block.
const BLOCK_LEN_FIELD: usize = 4;

const BT_SECTION_HEADER: u32 = 0x0a0d_0d0a;
const BT_INTERFACE_DESCRIPTION: u32 = 0x0000_0001;
/// Obsolete Packet Block, still produced by old writers.
const BT_PACKET: u32 = 0x0000_0002;
const BT_SIMPLE_PACKET: u32 = 0x0000_0003;
const BT_ENHANCED_PACKET: u32 = 0x0000_0006;

/// Section header: the byte-order magic sits right after the 8-byte block header.
const SHB_BOM_OFFSET: usize = 8;
/// Bytes needed to know a section header's byte order and therefore its length.
const SHB_PREFIX_LEN: usize = 12;
/// Section header body: byte-order magic (4), versions (2 + 2), section length (8).
const SHB_FIXED_BODY: usize = 16;
const SHB_BODY_MAJOR: usize = 4;
const PCAPNG_MAJOR_VERSION: u16 = 1;
const BYTE_ORDER_MAGIC_BE: [u8; 4] = [0x1a, 0x2b, 0x3c, 0x4d];
const BYTE_ORDER_MAGIC_LE: [u8; 4] = [0x4d, 0x3c, 0x2b, 0x1a];

/// Interface description body: link type (2), reserved (2), snaplen (4), then options.
const IDB_FIXED_BODY: usize = 8;
const IDB_BODY_SNAPLEN: usize = 4;
/// Option header: code (2) and length (2).
const OPT_HEADER_LEN: usize = 4;
const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;
/// `if_tsresol` when absent: microseconds.
const DEFAULT_TSRESOL: u8 = 6;

/// Enhanced packet body: interface (4), timestamp high/low (4 + 4), caplen (4), orig len (4).
const EPB_FIXED_BODY: usize = 20;
/// Obsolete packet block body: interface (2), drops (2), then as in an enhanced packet block.
const PB_FIXED_BODY: usize = 20;
const PKT_BODY_TS_HIGH: usize = 4;
const PKT_BODY_TS_LOW: usize = 8;
const PKT_BODY_CAPLEN: usize = 12;
const PKT_BODY_ORIGLEN: usize = 16;
/// Simple packet body: original length (4), then data.
const SPB_FIXED_BODY: usize = 4;

/// Why a capture could not be read. Every message names the file; errors inside the
/// capture also name the 1-based number of the packet being read and the byte offset at
/// which its record (or the block in its way) starts.
#[derive(Debug, Error)]
pub enum CaptureError {
    /// The file could not be opened.
    #[error("{}: cannot open: {source}", .path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The file does not start with a pcap or pcapng magic number.
    #[error(
        "{}: not a pcap or pcapng capture (it starts with bytes {})",
        .path.display(),
        hex_bytes(.magic)
    )]
    NotACapture {
        /// The file.
        path: PathBuf,
        /// The first four bytes seen.
        magic: [u8; 4],
    },
    /// The file ends inside a header or record.
    #[error("{}: truncated at record {record} (byte offset {offset}): {detail}", .path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// 1-based number of the packet that could not be read.
        record: u64,
        /// Byte offset where the cut-short record or block starts.
        offset: u64,
        /// What was cut, in words.
        detail: String,
    },
    /// A header that cannot be right: damage, not a short file.
    #[error("{}: corrupt at record {record} (byte offset {offset}): {detail}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based number of the packet that could not be read.
        record: u64,
        /// Byte offset where the damaged record or block starts.
        offset: u64,
        /// What is wrong, in words.
        detail: String,
    },
    /// Reading failed.
    #[error("{}: read error: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
}

/// Formats bytes as `0a 0d 0d 0a` for messages.
fn hex_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Byte order of the file's headers (never of the packet data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Little,
    Big,
}

impl Order {
    /// Reads a `u16` at `at`, or `None` if `bytes` is too short.
    fn u16_at(self, bytes: &[u8], at: usize) -> Option<u16> {
        let raw: [u8; 2] = bytes.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(match self {
            Order::Little => u16::from_le_bytes(raw),
            Order::Big => u16::from_be_bytes(raw),
        })
    }

    /// Reads a `u32` at `at`, or `None` if `bytes` is too short.
    fn u32_at(self, bytes: &[u8], at: usize) -> Option<u32> {
        let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(match self {
            Order::Little => u32::from_le_bytes(raw),
            Order::Big => u32::from_be_bytes(raw),
        })
    }

    /// Reads a `u64` at `at`, or `None` if `bytes` is too short.
    fn u64_at(self, bytes: &[u8], at: usize) -> Option<u64> {
        let raw: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(match self {
            Order::Little => u64::from_le_bytes(raw),
            Order::Big => u64::from_be_bytes(raw),
        })
    }
}

/// How one interface's timestamp ticks become nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TickScale {
    /// Decimal resolutions down to nanoseconds: one multiplication (the common cases).
    Mul(u64),
    /// Anything finer than nanoseconds, or binary: exact arithmetic in 128 bits.
    PerSecond(u128),
}

impl TickScale {
    /// Interprets an `if_tsresol` byte: high bit clear means 10^-n seconds, set means 2^-n.
    fn from_tsresol(tsresol: u8) -> Self {
        let exponent = u32::from(tsresol & 0x7f);
        if tsresol & 0x80 != 0 {
            // 2^127 still fits in a u128; beyond what a u128 can hold, ticks are so fine
            // that every timestamp rounds to the epoch, which is what u128::MAX gives.
            return TickScale::PerSecond(1u128.checked_shl(exponent).unwrap_or(u128::MAX));
        }
        match 9u32.checked_sub(exponent) {
            Some(diff) => TickScale::Mul(10u64.pow(diff)),
            None => TickScale::PerSecond(10u128.checked_pow(exponent).unwrap_or(u128::MAX)),
        }
    }

    /// Ticks since the epoch to nanoseconds since the epoch, saturating.
    fn to_nanos(self, ticks: u64) -> u64 {
        match self {
            TickScale::Mul(factor) => ticks.saturating_mul(factor),
            TickScale::PerSecond(per_second) => {
                let nanos = u128::from(ticks) * u128::from(Timestamp::NANOS_PER_SEC) / per_second;
                u64::try_from(nanos).unwrap_or(u64::MAX)
            }
        }
    }
}

/// What a pcapng section says about one interface.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link: LinkType,
    /// 0 means "no limit".
    snaplen: u32,
    scale: TickScale,
    /// `if_tsoffset`: seconds added to every timestamp of this interface.
    offset_secs: i64,
}

impl Interface {
    fn timestamp(&self, ticks: u64) -> Timestamp {
        let nanos = self.scale.to_nanos(ticks);
        let shift = self
            .offset_secs
            .unsigned_abs()
            .saturating_mul(Timestamp::NANOS_PER_SEC);
        Timestamp(if self.offset_secs >= 0 {
            nanos.saturating_add(shift)
        } else {
            nanos.saturating_sub(shift)
        })
    }
}

/// Classic pcap state: what pcap-file read from the file header, plus what we check.
struct PcapState {
    order: Order,
    nanos: bool,
    link: LinkType,
    /// Largest caplen accepted, from the header's snaplen and [`MAX_CAPLEN`].
    max_caplen: u32,
}

/// pcapng state for the current section.
struct PcapNgState {
    order: Order,
    interfaces: Vec<Interface>,
    /// Simple packet blocks carry no timestamp; they get the last one seen.
    last_ts: Timestamp,
}

enum Format {
    Pcap(PcapState),
    PcapNg(PcapNgState),
}

/// Where a pcapng packet's data sits in the buffer, and what goes with it.
struct PacketAt {
    start: usize,
    len: usize,
    ts: Timestamp,
    link: LinkType,
    orig_len: u32,
}

/// What one pcapng block turned out to be.
enum Step {
    Packet(PacketAt),
    /// A block that describes or annotates; nothing to return.
    Other,
    /// Clean end of file between blocks.
    End,
}

/// The largest caplen a header with this snaplen can honestly produce.
fn caplen_limit(snaplen: u32) -> u32 {
    snaplen
        .max(TYPICAL_SNAPLEN)
        .saturating_mul(SNAPLEN_SLACK)
        .min(MAX_CAPLEN)
}

/// Rounds a length up to the pcapng 32-bit alignment.
fn padded_to_4(len: usize) -> Option<usize> {
    Some(len.checked_add(3)? & !3)
}

/// A pcap or pcapng capture being read front to back.
pub struct CaptureFile {
    path: PathBuf,
    reader: Box<dyn Read + Send>,
    buf: Arc<Block>,
    /// Buffers of blocks nobody holds any more.
    spare: (Sender<Vec<u8>>, Receiver<Vec<u8>>),
    /// First byte of `buf` not yet consumed.
    start: usize,
    /// End of the valid bytes in `buf`.
    end: usize,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    /// The reader has reported end of file.
    eof: bool,
    /// An error was returned; the reader is finished.
    failed: bool,
    records: u64,
    file_len: Option<u64>,
    format: Format,
}

impl std::fmt::Debug for CaptureFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureFile")
            .field("path", &self.path)
            .field("format", &self.format())
            .field("records", &self.records)
            .field("offset", &self.bytes_consumed())
            .finish_non_exhaustive()
    }
}

impl CaptureFile {
    /// Opens a capture file, telling pcap from pcapng by its magic number.
    /// The path `-` means standard input.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        if path == Path::new("-") {
            return Self::from_reader("-".to_owned(), Box::new(io::stdin()));
        }
        let file = File::open(path).map_err(|source| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        // Only a regular file has a length worth showing in a progress bar.
        let file_len = file
            .metadata()
            .ok()
            .filter(std::fs::Metadata::is_file)
            .map(|m| m.len());
        Self::start(path.to_path_buf(), Box::new(file), file_len)
    }

    /// Reads a capture from any stream (standard input, a test buffer). `name` is what
    /// error messages call it.
    pub fn from_reader(name: String, r: Box<dyn Read + Send>) -> Result<Self, CaptureError> {
        Self::start(PathBuf::from(name), r, None)
    }

    fn start(
        path: PathBuf,
        reader: Box<dyn Read + Send>,
        file_len: Option<u64>,
    ) -> Result<Self, CaptureError> {
        let mut capture = CaptureFile {
            path,
            reader,
            // A small file gets a block its size, not a whole one: reading a thousand small
            // captures in one run should not allocate (and zero) a gigabyte.
            buf: Arc::new(Block {
                bytes: vec![
                    0;
                    file_len.map_or(BUFFER_LEN, |n| {
                        usize::try_from(n)
                            .unwrap_or(BUFFER_LEN)
                            .saturating_add(SMALL_FILE_SLACK)
                            .min(BUFFER_LEN)
                    })
                ],
                spare: None,
            }),
            spare: bounded(SPARE_BLOCKS),
            start: 0,
            end: 0,
            buf_offset: 0,
            eof: false,
            failed: false,
            records: 0,
            file_len,
            // Replaced below once the magic is known.
            format: Format::PcapNg(PcapNgState {
                order: Order::Little,
                interfaces: Vec::new(),
                last_ts: Timestamp::default(),
            }),
        };
        let have = capture.fill(MAGIC_LEN)?;
        let Some(magic) = capture.window(MAGIC_LEN) else {
            let detail = if have == 0 {
                "the file is empty".to_owned()
            } else {
                format!("the file ends {have} bytes into the 4-byte magic number")
            };
            return Err(capture.truncated(detail));
        };
        let magic: [u8; 4] = magic.try_into().unwrap_or_default();
        match magic {
            PCAP_MAGIC_USEC_LE | PCAP_MAGIC_USEC_BE | PCAP_MAGIC_NSEC_LE | PCAP_MAGIC_NSEC_BE => {
                capture.format = Format::Pcap(capture.read_pcap_header()?);
            }
            PCAPNG_MAGIC => {
                // The first block is the section header; reading it now means a damaged
                // or cut-short header fails `open`, as it does for classic pcap.
                capture.ng_step()?;
            }
            _ => {
                return Err(CaptureError::NotACapture {
                    path: capture.path,
                    magic,
                });
            }
        }
        Ok(capture)
    }

    /// Returns the next packet, `None` at clean end of file, or the error that ends the
    /// capture (after which it returns `None`).
    pub fn next_packet(&mut self) -> Option<Result<Packet<'_>, CaptureError>> {
        if self.failed {
            return None;
        }
        if matches!(self.format, Format::Pcap(_)) {
            return self.read_pcap_record().transpose();
        }
        loop {
            match self.ng_step() {
                Ok(Step::Other) => {}
                Ok(Step::End) => return None,
                Err(e) => return Some(Err(e)),
                Ok(Step::Packet(at)) => {
                    let data = self
                        .buf
                        .bytes
                        .get(at.start..at.start.saturating_add(at.len))
                        .unwrap_or_default();
                    return Some(Ok(Packet {
                        ts: at.ts,
                        link: at.link,
                        data,
                        orig_len: at.orig_len,
                        block: Some(&self.buf),
                    }));
                }
            }
        }
    }

    /// Packets returned so far.
    pub fn records_read(&self) -> u64 {
        self.records
    }

    /// Byte offset in the file of the next record (the end of the last one returned).
    pub fn bytes_consumed(&self) -> u64 {
        self.buf_offset + self.start as u64
    }

    /// The file's length, when it is a regular file.
    pub fn file_len(&self) -> Option<u64> {
        self.file_len
    }

    /// `"pcap"` or `"pcapng"`.
    pub fn format(&self) -> &'static str {
        match self.format {
            Format::Pcap(_) => "pcap",
            Format::PcapNg(_) => "pcapng",
        }
    }

    // ----- buffer -----

    /// Makes `need` bytes from `start` available if the file has them, reading as needed.
    /// Returns how many are available (fewer than `need` only at end of file).
    fn fill(&mut self, need: usize) -> Result<usize, CaptureError> {
        let have = self.end - self.start;
        if have >= need || self.eof {
            return Ok(have);
        }
        let shared = Arc::get_mut(&mut self.buf).is_none();
        let mut fresh = false;
        if shared
            || self.start == self.end
            || self.start.saturating_add(need) > self.buf.bytes.len()
        {
            // Move the partial record to the front (of this block, or of a fresh one if
            // packets of this one are still held): copies less than one record per refill.
            // The same size as the block before (a small file keeps its small block), or
            // larger if one record needs it.
            let len = need.max(self.buf.bytes.len());
            let tail = self.start..self.end;
            match Arc::get_mut(&mut self.buf) {
                Some(block) => {
                    block.bytes.copy_within(tail, 0);
                    if len > block.bytes.len() {
                        block.bytes.resize(len, 0);
                    }
                }
                None => {
                    let mut bytes = self.spare.1.try_recv().unwrap_or_default();
                    if bytes.len() < len {
                        bytes.resize(len, 0);
                    }
                    bytes[..tail.len()].copy_from_slice(&self.buf.bytes[tail]);
                    self.buf = Arc::new(Block {
                        bytes,
                        spare: Some(self.spare.0.clone()),
                    });
                    fresh = true;
                }
            }
            self.buf_offset += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        // A fresh block is filled at least halfway before packets go out of it: a pipe gives
        // 64 KiB a read, and a block per read would keep mostly empty blocks alive.
        let at_least = if fresh { self.buf.bytes.len() / 2 } else { 0 };
        while self.end - self.start < need || self.end < at_least {
            // Unshared here: a shared block was replaced above.
            let Some(space) = Arc::get_mut(&mut self.buf).and_then(|b| b.bytes.get_mut(self.end..))
            else {
                break;
            };
            let room = space.len();
            match self.reader.read(space) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                // `min` guards against a reader that claims more than it was given.
                Ok(n) => self.end = self.end.saturating_add(n.min(room)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Reading ahead of what was asked for: hand out what is here first; the
                // error comes back on the next read.
                Err(_) if self.end - self.start >= need => break,
                Err(source) => {
                    self.failed = true;
                    return Err(CaptureError::Io {
                        path: self.path.clone(),
                        source,
                    });
                }
            }
        }
        Ok(self.end - self.start)
    }

    /// The next `len` unconsumed bytes, if buffered.
    fn window(&self, len: usize) -> Option<&[u8]> {
        let end = self.start.checked_add(len)?;
        if end > self.end {
            return None;
        }
        self.buf.bytes.get(self.start..end)
    }

    /// Marks `len` bytes consumed.
    fn consume(&mut self, len: usize) {
        self.start = self.start.saturating_add(len).min(self.end);
    }

    fn truncated(&mut self, detail: String) -> CaptureError {
        self.failed = true;
        CaptureError::Truncated {
            path: self.path.clone(),
            record: self.records + 1,
            offset: self.bytes_consumed(),
            detail,
        }
    }

    fn corrupt(&mut self, detail: String) -> CaptureError {
        self.failed = true;
        CaptureError::Corrupt {
            path: self.path.clone(),
            record: self.records + 1,
            offset: self.bytes_consumed(),
            detail,
        }
    }

    // ----- classic pcap -----

    fn read_pcap_header(&mut self) -> Result<PcapState, CaptureError> {
        let have = self.fill(PCAP_FILE_HEADER_LEN)?;
        let Some(header) = self.window(PCAP_FILE_HEADER_LEN) else {
            return Err(self.truncated(format!(
                "the file ends {have} bytes into the {PCAP_FILE_HEADER_LEN}-byte pcap file header"
            )));
        };
        let parsed = PcapParser::new(header).map(|(_, parser)| parser);
        let parser = match parsed {
            Ok(parser) => parser,
            // Unreachable in practice (magic and length were checked), but never a panic.
            Err(e) => return Err(self.corrupt(format!("pcap file header rejected: {e}"))),
        };
        let h = parser.header();
        let order = match h.endianness {
            Endianness::Big => Order::Big,
            Endianness::Little => Order::Little,
        };
        let link = order
            .u32_at(header, PCAP_HDR_LINKTYPE)
            .map_or(0, |raw| raw & PCAP_LINKTYPE_MASK);
        let state = PcapState {
            order,
            nanos: h.ts_resolution == TsResolution::NanoSecond,
            link: LinkType(link),
            max_caplen: caplen_limit(h.snaplen),
        };
        self.consume(PCAP_FILE_HEADER_LEN);
        Ok(state)
    }

    /// Reads one classic pcap record.
    ///
    /// The record header is read here, not by pcap-file (which reads the file header): its
    /// `PcapReader` takes any `incl_len` at face value (a damaged one makes it read until its
    /// fixed 8 MB buffer is full and then report `UnexpectedEof`, so damage looks like
    /// truncation), its buffer code has `assert!`/`expect`s and `unsafe`, and its `PcapPacket`
    /// validation rejects valid records whose original length exceeds the snaplen. Its slice
    /// parser, `next_raw_packet`, was used for the four fields until a benchmark showed the
    /// reading around it cost 290 instructions a packet (callgrind, first 100,000 packets of
    /// the benchmark capture: 29M of 142M); reading the fields straight from the buffered
    /// header brings that to about 50.
    fn read_pcap_record(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        let Format::Pcap(state) = &self.format else {
            return Ok(None);
        };
        let (order, max_caplen, nanos, link) =
            (state.order, state.max_caplen, state.nanos, state.link);
        // Offsets are constants inside the 16-byte header: never `None`.
        let field =
            |h: &[u8; PCAP_RECORD_HEADER_LEN], at: usize| order.u32_at(h, at).unwrap_or_default();
        // Nearly always the whole record is buffered already: no refill, no length checks
        // beyond these two.
        let buffered = self.buf.bytes.get(self.start..self.end).unwrap_or_default();
        let (header, whole) = match buffered.first_chunk::<PCAP_RECORD_HEADER_LEN>() {
            Some(h)
                if PCAP_RECORD_HEADER_LEN + field(h, PCAP_REC_CAPLEN) as usize
                    <= buffered.len() =>
            {
                (*h, true)
            }
            _ => {
                let have = self.fill(PCAP_RECORD_HEADER_LEN)?;
                if have == 0 {
                    return Ok(None);
                }
                match self
                    .window(PCAP_RECORD_HEADER_LEN)
                    .and_then(|w| w.first_chunk::<PCAP_RECORD_HEADER_LEN>())
                {
                    Some(h) => (*h, false),
                    None => {
                        return Err(self.truncated(format!(
                            "the file ends {have} bytes into the {PCAP_RECORD_HEADER_LEN}-byte \
                             record header"
                        )));
                    }
                }
            }
        };
        let caplen = field(&header, PCAP_REC_CAPLEN);
        if caplen > max_caplen {
            return Err(self.corrupt(format!(
                "the record header claims {caplen} captured bytes, more than the \
                 {max_caplen} this file's snaplen allows; the header is damaged"
            )));
        }
        // Cannot overflow: caplen <= MAX_CAPLEN.
        let total = PCAP_RECORD_HEADER_LEN + caplen as usize;
        let have = if whole { total } else { self.fill(total)? };
        if have < total {
            return Err(self.truncated(format!(
                "the file ends {have} bytes into a {total}-byte record \
                 ({PCAP_RECORD_HEADER_LEN}-byte header + {caplen} bytes of packet data)"
            )));
        }
        let data_start = self.start + PCAP_RECORD_HEADER_LEN;
        self.consume(total);
        self.records += 1;
        let frac = u64::from(field(&header, PCAP_REC_TS_FRAC));
        let nanos = if nanos { frac } else { frac * 1_000 };
        let data = self
            .buf
            .bytes
            .get(data_start..data_start + caplen as usize)
            .unwrap_or_default();
        Ok(Some(Packet {
            ts: Timestamp::from_parts(u64::from(field(&header, PCAP_REC_TS_SEC)), nanos),
            link,
            data,
            orig_len: field(&header, PCAP_REC_ORIG_LEN),
            block: Some(&self.buf),
        }))
    }

    // ----- pcapng -----

    fn ng_state(&mut self) -> Option<&mut PcapNgState> {
        match &mut self.format {
            Format::PcapNg(state) => Some(state),
            Format::Pcap(_) => None,
        }
    }

    /// Reads one pcapng block, checks its framing, and acts on it.
    fn ng_step(&mut self) -> Result<Step, CaptureError> {
        let Some(order) = self.ng_state().map(|s| s.order) else {
            return Ok(Step::End);
        };
        let have = self.fill(SHB_PREFIX_LEN)?;
        if have == 0 {
            return Ok(Step::End);
        }
        let Some(head) = self.window(BLOCK_HEADER_LEN) else {
            return Err(self.truncated(format!(
                "the file ends {have} bytes into a {BLOCK_HEADER_LEN}-byte block header"
            )));
        };
        let Some(block_type) = order.u32_at(head, 0) else {
            return Err(self.corrupt("unreadable block header".to_owned()));
        };

        // A section header declares its own byte order, and its length is in that order.
        let order = if block_type == BT_SECTION_HEADER {
            let bom: Option<[u8; 4]> = self
                .window(SHB_PREFIX_LEN)
                .and_then(|w| w.get(SHB_BOM_OFFSET..))
                .and_then(|b| b.try_into().ok());
            match bom {
                Some(BYTE_ORDER_MAGIC_LE) => Order::Little,
                Some(BYTE_ORDER_MAGIC_BE) => Order::Big,
                Some(other) => {
                    return Err(self.corrupt(format!(
                        "section header byte-order magic is {}, not 1a 2b 3c 4d in either order",
                        hex_bytes(&other)
                    )));
                }
                None => {
                    return Err(self.truncated(format!(
                        "the file ends {have} bytes into a section header block"
                    )));
                }
            }
        } else {
            order
        };
        let block_len = self
            .window(BLOCK_HEADER_LEN)
            .and_then(|h| order.u32_at(h, BLOCK_LEN_FIELD))
            .unwrap_or(0);
        let kind = block_name(block_type);
        if !block_len.is_multiple_of(4) || !(MIN_BLOCK_LEN..=MAX_BLOCK_LEN).contains(&block_len) {
            return Err(self.corrupt(format!(
                "{kind} block claims a length of {block_len} bytes; block lengths are \
                 multiples of 4 between {MIN_BLOCK_LEN} and {MAX_BLOCK_LEN}"
            )));
        }
        let total = block_len as usize;
        let have = self.fill(total)?;
        let Some(block) = self.window(total) else {
            return Err(self.truncated(format!(
                "the file ends {have} bytes into a {total}-byte {kind} block"
            )));
        };
        let trailer = order.u32_at(block, total - BLOCK_TRAILER_LEN);
        if trailer != Some(block_len) {
            let trailer = trailer.unwrap_or(0);
            return Err(self.corrupt(format!(
                "{kind} block starts with length {block_len} but ends with length {trailer}"
            )));
        }
        let body_start = self.start + BLOCK_HEADER_LEN;
        let body_len = total - BLOCK_HEADER_LEN - BLOCK_TRAILER_LEN;

        let step = match block_type {
            BT_SECTION_HEADER => self.ng_section_header(order, body_len)?,
            BT_INTERFACE_DESCRIPTION => self.ng_interface(order, body_len)?,
            BT_ENHANCED_PACKET | BT_PACKET => {
                Step::Packet(self.ng_packet(order, block_type, body_start, body_len)?)
            }
            BT_SIMPLE_PACKET => Step::Packet(self.ng_simple_packet(order, body_start, body_len)?),
            // Statistics, name resolution, decryption secrets, custom blocks: not packets.
            _ => Step::Other,
        };
        if let Step::Packet(at) = &step {
            self.records += 1;
            let ts = at.ts;
            if let Some(state) = self.ng_state() {
                state.last_ts = ts;
            }
        }
        self.consume(total);
        Ok(step)
    }

    /// The body of the block at `start`, whose framing has been checked.
    fn ng_body(&self, body_len: usize) -> &[u8] {
        let from = self.start + BLOCK_HEADER_LEN;
        self.buf
            .bytes
            .get(from..from + body_len)
            .unwrap_or_default()
    }

    fn ng_section_header(&mut self, order: Order, body_len: usize) -> Result<Step, CaptureError> {
        let body = self.ng_body(body_len);
        if body.len() < SHB_FIXED_BODY {
            return Err(self.corrupt(format!(
                "section header block body is {body_len} bytes, shorter than its \
                 {SHB_FIXED_BODY}-byte fixed part"
            )));
        }
        let major = order.u16_at(body, SHB_BODY_MAJOR).unwrap_or(0);
        if major != PCAPNG_MAJOR_VERSION {
            return Err(self.corrupt(format!(
                "section header declares pcapng version {major}, only version 1 exists"
            )));
        }
        if let Some(state) = self.ng_state() {
            // Interface numbers restart with every section.
            state.order = order;
            state.interfaces.clear();
        }
        Ok(Step::Other)
    }

    fn ng_interface(&mut self, order: Order, body_len: usize) -> Result<Step, CaptureError> {
        let body = self.ng_body(body_len);
        let (Some(link), Some(snaplen)) =
            (order.u16_at(body, 0), order.u32_at(body, IDB_BODY_SNAPLEN))
        else {
            return Err(self.corrupt(format!(
                "interface description block body is {body_len} bytes, shorter than its \
                 {IDB_FIXED_BODY}-byte fixed part"
            )));
        };
        let mut tsresol = DEFAULT_TSRESOL;
        let mut offset_secs = 0i64;
        // Options we do not need are skipped; a malformed option list ends the walk
        // rather than the capture, since only the timestamp options matter here.
        let mut options = body.get(IDB_FIXED_BODY..).unwrap_or_default();
        while let (Some(code), Some(len)) = (order.u16_at(options, 0), order.u16_at(options, 2)) {
            if code == OPT_END {
                break;
            }
            let len = usize::from(len);
            let Some(value) = options.get(OPT_HEADER_LEN..OPT_HEADER_LEN + len) else {
                break;
            };
            match (code, value) {
                (OPT_IF_TSRESOL, [resol]) => tsresol = *resol,
                (OPT_IF_TSOFFSET, _) => {
                    // Signed seconds, per the pcapng specification.
                    if let Some(raw) = order.u64_at(value, 0) {
                        offset_secs = raw as i64;
                    }
                }
                _ => {}
            }
            let next = padded_to_4(len).map_or(usize::MAX, |p| p + OPT_HEADER_LEN);
            options = options.get(next..).unwrap_or_default();
        }
        let interface = Interface {
            link: LinkType(u32::from(link)),
            snaplen,
            scale: TickScale::from_tsresol(tsresol),
            offset_secs,
        };
        if let Some(state) = self.ng_state() {
            state.interfaces.push(interface);
        }
        Ok(Step::Other)
    }

    /// The interface a packet names, or a Corrupt error.
    fn ng_interface_at(&mut self, id: u32) -> Result<Interface, CaptureError> {
        let state = self.ng_state();
        let known = state.as_ref().map_or(0, |s| s.interfaces.len());
        let found = state.and_then(|s| s.interfaces.get(id as usize).copied());
        match found {
            Some(interface) => Ok(interface),
            None => Err(self.corrupt(format!(
                "the packet names interface {id}, but this section describes {known} interface{}",
                if known == 1 { "" } else { "s" }
            ))),
        }
    }

    fn ng_packet(
        &mut self,
        order: Order,
        block_type: u32,
        body_start: usize,
        body_len: usize,
    ) -> Result<PacketAt, CaptureError> {
        let body = self.ng_body(body_len);
        let kind = block_name(block_type);
        let fixed = if block_type == BT_PACKET {
            PB_FIXED_BODY
        } else {
            EPB_FIXED_BODY
        };
        let interface_id = if block_type == BT_PACKET {
            order.u16_at(body, 0).map(u32::from)
        } else {
            order.u32_at(body, 0)
        };
        let fields = (
            interface_id,
            order.u32_at(body, PKT_BODY_TS_HIGH),
            order.u32_at(body, PKT_BODY_TS_LOW),
            order.u32_at(body, PKT_BODY_CAPLEN),
            order.u32_at(body, PKT_BODY_ORIGLEN),
        );
        let (Some(id), Some(ts_high), Some(ts_low), Some(caplen), Some(orig_len)) = fields else {
            return Err(self.corrupt(format!(
                "{kind} block body is {body_len} bytes, shorter than its {fixed}-byte fixed part"
            )));
        };
        let interface = self.ng_interface_at(id)?;
        let limit = caplen_limit(interface.snaplen);
        if caplen > limit {
            return Err(self.corrupt(format!(
                "{kind} block claims {caplen} captured bytes, more than the {limit} \
                 its interface's snaplen allows"
            )));
        }
        let room = body_len.saturating_sub(fixed);
        if padded_to_4(caplen as usize).is_none_or(|padded| padded > room) {
            return Err(self.corrupt(format!(
                "{kind} block claims {caplen} captured bytes but has room for {room}"
            )));
        }
        let ticks = (u64::from(ts_high) << 32) | u64::from(ts_low);
        Ok(PacketAt {
            start: body_start + fixed,
            len: caplen as usize,
            ts: interface.timestamp(ticks),
            link: interface.link,
            orig_len,
        })
    }

    fn ng_simple_packet(
        &mut self,
        order: Order,
        body_start: usize,
        body_len: usize,
    ) -> Result<PacketAt, CaptureError> {
        let body = self.ng_body(body_len);
        let Some(orig_len) = order.u32_at(body, 0) else {
            return Err(self.corrupt(format!(
                "simple packet block body is {body_len} bytes, shorter than its \
                 {SPB_FIXED_BODY}-byte fixed part"
            )));
        };
        // A simple packet always belongs to interface 0 and carries no timestamp.
        let interface = self.ng_interface_at(0)?;
        // Its captured length is implied: the original length cut to the snaplen; what is
        // left of the body is padding.
        let mut len = body_len
            .saturating_sub(SPB_FIXED_BODY)
            .min(orig_len as usize);
        if interface.snaplen != 0 {
            len = len.min(interface.snaplen as usize);
        }
        let ts = self
            .ng_state()
            .map_or_else(Timestamp::default, |s| s.last_ts);
        Ok(PacketAt {
            start: body_start + SPB_FIXED_BODY,
            len,
            ts,
            link: interface.link,
            orig_len,
        })
    }
}

/// A pcapng block type's name for messages.
fn block_name(block_type: u32) -> &'static str {
    match block_type {
        BT_SECTION_HEADER => "section header",
        BT_INTERFACE_DESCRIPTION => "interface description",
        BT_PACKET => "packet",
        BT_SIMPLE_PACKET => "simple packet",
        BT_ENHANCED_PACKET => "enhanced packet",
        0x0000_0004 => "name resolution",
        0x0000_0005 => "interface statistics",
        0x0000_000a => "decryption secrets",
        _ => "pcapng",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    /// The shared real-world captures. The crate root sits next to `shared/` (in the main
    /// repository as in a scratch crate that links it), so this one path serves both.
    const PCAPS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/pcaps");
    /// Link-layer fixtures made by `fixtures/make_link_fixtures.py`.
    const FIXTURES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/link");

    /// A packet copied out of the reader, for comparisons.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Owned {
        ts: u64,
        link: u32,
        data: Vec<u8>,
        orig_len: u32,
    }

    fn read_all(capture: &mut CaptureFile) -> (Vec<Owned>, Option<CaptureError>) {
        let mut packets = Vec::new();
        while let Some(next) = capture.next_packet() {
            match next {
                Ok(p) => packets.push(Owned {
                    ts: p.ts.0,
                    link: p.link.0,
                    data: p.data.to_vec(),
                    orig_len: p.orig_len,
                }),
                Err(e) => {
                    // After an error the capture is finished.
                    assert!(capture.next_packet().is_none());
                    return (packets, Some(e));
                }
            }
        }
        (packets, None)
    }

    fn from_bytes(bytes: &[u8]) -> Result<CaptureFile, CaptureError> {
        CaptureFile::from_reader("test.cap".to_owned(), Box::new(Cursor::new(bytes.to_vec())))
    }

    fn read_path(path: &Path) -> (Vec<Owned>, Option<CaptureError>) {
        let mut capture = CaptureFile::open(path).unwrap();
        read_all(&mut capture)
    }

    fn shared(name: &str) -> PathBuf {
        Path::new(PCAPS_DIR).join(name)
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(FIXTURES_DIR).join(name)
    }

    fn shared_captures() -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(PCAPS_DIR)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.ends_with(".pcap") || name.ends_with(".pcapng")
            })
            .collect();
        paths.sort();
        paths
    }

    /// A reader that hands out at most `chunk` bytes per call, like a pipe.
    struct Trickle {
        bytes: Vec<u8>,
        at: usize,
        chunk: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.bytes.len() - self.at);
            buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn trickle(bytes: &[u8], chunk: usize) -> CaptureFile {
        let reader = Trickle {
            bytes: bytes.to_vec(),
            at: 0,
            chunk,
        };
        CaptureFile::from_reader("trickle".to_owned(), Box::new(reader)).unwrap()
    }

    // ----- tshark summaries -----

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// `2020-02-23 10:42:32.576659` (UTC) to nanoseconds, and the printed precision in ns.
    fn parse_utc(text: &str) -> (u64, u64) {
        let (date, time) = text.trim().split_once(' ').unwrap();
        let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
        let (hms, frac) = time.split_once('.').unwrap();
        let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
        let secs = days_from_civil(d[0], d[1], d[2]) * 86_400 + t[0] * 3600 + t[1] * 60 + t[2];
        let unit = 10u64.pow(9 - frac.len() as u32);
        let nanos = frac.parse::<u64>().unwrap() * unit;
        (secs as u64 * 1_000_000_000 + nanos, unit)
    }

    /// `1582454599.476232001` to nanoseconds.
    fn parse_epoch(text: &str) -> u64 {
        let (secs, frac) = text.split_once('.').unwrap();
        assert_eq!(frac.len(), 9, "{text}");
        secs.parse::<u64>().unwrap() * 1_000_000_000 + frac.parse::<u64>().unwrap()
    }

    #[test]
    fn shared_captures_match_tshark_summaries() {
        let paths = shared_captures();
        assert!(
            paths.len() >= 30,
            "expected the shared captures in {PCAPS_DIR}"
        );
        for path in paths {
            let summary =
                std::fs::read_to_string(format!("{}.tshark.txt", path.display())).unwrap();
            let field = |key: &str| {
                summary
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(|rest| rest.trim_start().trim_start_matches(':').trim().to_owned())
                    .unwrap()
            };
            let expected: usize = field("packets").parse().unwrap();
            let mut capture = CaptureFile::open(&path).unwrap();
            let (packets, err) = read_all(&mut capture);
            assert!(err.is_none(), "{}: {err:?}", path.display());
            assert_eq!(packets.len(), expected, "{}", path.display());
            assert_eq!(capture.records_read(), expected as u64);
            assert_eq!(Some(capture.bytes_consumed()), capture.file_len());
            // tshark's "first/last packet" are the earliest and latest timestamps.
            let (first, last) = field("first/last packet")
                .split_once(" / ")
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .unwrap();
            let min = packets.iter().map(|p| p.ts).min().unwrap();
            let max = packets.iter().map(|p| p.ts).max().unwrap();
            for (text, ours) in [(first, min), (last, max)] {
                let (theirs, unit) = parse_utc(&text);
                assert_eq!(ours / unit * unit, theirs, "{}: {text}", path.display());
            }
        }
    }

    #[test]
    fn multi_interface_pcapng_matches_tshark_times() {
        // `tshark -r zeek__pcapng-multi-interface.pcapng -T fields -e frame.time_epoch`:
        // interface 0 counts nanoseconds, interface 1 microseconds.
        let tshark = [
            "1767663089.500330493",
            "1767663089.514291940",
            "1767663437.111897000",
            "1767663437.126460000",
            "1767663437.128303000",
            "1767663437.140942000",
        ];
        let (packets, err) = read_path(&shared("zeek__pcapng-multi-interface.pcapng"));
        assert!(err.is_none());
        let ours: Vec<u64> = packets.iter().map(|p| p.ts).collect();
        let theirs: Vec<u64> = tshark.iter().map(|t| parse_epoch(t)).collect();
        assert_eq!(ours, theirs);
        assert!(packets.iter().all(|p| p.link == LinkType::ETHERNET.0));
    }

    #[test]
    fn mixed_fixture_matches_tshark_times_and_link_types() {
        // `tshark -r fixtures/link/iphone-mixed.pcapng -T fields -e frame.time_epoch`.
        // Section 1: ns Ethernet / us raw IP; section 2: 2^-20 s raw IP / ms Ethernet with
        // if_tsoffset.
        let tshark = [
            "1582454599.476232001",
            "1582454599.477445000",
            "1582454599.477475275",
            "1582454599.542468000",
            "1582454599.568888549",
            "1582454599.573770000",
            "1582454599.585460823",
            "1582454599.593958000",
            "1582454599.595381097",
            "1582454599.602893000",
            "1582454599.603102371",
            "1582454599.632713000",
            "1582454599.740262645",
            "1582454599.740320000",
            "1582454599.740875919",
            "1582454599.740889000",
            "1582454599.741016193",
            "1582454599.741075000",
            "1582454599.741119467",
            "1582454599.741264000",
            "1582454599.741418838",
            "1582454599.741000000",
            "1582454599.773717880",
            "1582454599.773000000",
            "1582454599.774110794",
            "1582454599.774000000",
            "1582454599.774978637",
            "1582454599.775000000",
            "1582454599.776185989",
            "1582454599.776000000",
        ];
        let mut capture = CaptureFile::open(&fixture("iphone-mixed.pcapng")).unwrap();
        assert_eq!(capture.format(), "pcapng");
        let (packets, err) = read_all(&mut capture);
        assert!(err.is_none(), "{err:?}");
        let ours: Vec<u64> = packets.iter().map(|p| p.ts).collect();
        let theirs: Vec<u64> = tshark.iter().map(|t| parse_epoch(t)).collect();
        assert_eq!(ours, theirs);
        let links: Vec<u32> = packets.iter().map(|p| p.link).collect();
        let expected: Vec<u32> = (0..30)
            .map(|i| match (i < 20, i % 2 == 0) {
                (true, true) | (false, false) => LinkType::ETHERNET.0,
                _ => LinkType::RAW.0,
            })
            .collect();
        assert_eq!(links, expected);
    }

    #[test]
    fn nanosecond_and_big_endian_fixtures_read_like_the_original() {
        let (original, _) = read_path(&shared("ndpi__iphone.pcap"));
        let original = &original[293..323];
        // `tshark -r fixtures/link/iphone-nsec.pcap -T fields -e frame.time_epoch`, first three.
        let tshark = [
            "1582454599.476232001",
            "1582454599.477445138",
            "1582454599.477475275",
        ];
        let (nsec, err) = read_path(&fixture("iphone-nsec.pcap"));
        assert!(err.is_none());
        for (i, t) in tshark.iter().enumerate() {
            assert_eq!(nsec[i].ts, parse_epoch(t));
        }
        let (be, err) = read_path(&fixture("iphone-be.pcap"));
        assert!(err.is_none());
        assert_eq!(be, original);
        assert_eq!(nsec.len(), original.len());
        for (n, o) in nsec.iter().zip(original) {
            assert_eq!((&n.data, n.orig_len, n.link), (&o.data, o.orig_len, o.link));
            assert_eq!(n.ts / 1000 * 1000, o.ts, "sub-microsecond digits only");
        }
    }

    // ----- truncation -----

    /// A header or record/block span of a capture: (start, end, is_packet).
    type Span = (usize, usize, bool);

    /// Record spans of a classic pcap, found independently of the reader.
    fn pcap_spans(bytes: &[u8]) -> Vec<Span> {
        let big = bytes[..4] == PCAP_MAGIC_USEC_BE || bytes[..4] == PCAP_MAGIC_NSEC_BE;
        let order = if big { Order::Big } else { Order::Little };
        let mut spans = vec![(0, PCAP_FILE_HEADER_LEN, false)];
        let mut at = PCAP_FILE_HEADER_LEN;
        while at < bytes.len() {
            let caplen = order.u32_at(bytes, at + 8).unwrap() as usize;
            spans.push((at, at + 16 + caplen, true));
            at += 16 + caplen;
        }
        assert_eq!(at, bytes.len());
        spans
    }

    /// Block spans of a pcapng file, found independently of the reader.
    fn pcapng_spans(bytes: &[u8]) -> Vec<Span> {
        let mut spans = Vec::new();
        let mut order = Order::Little;
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at..at + 4] == PCAPNG_MAGIC {
                order = if bytes[at + 8..at + 12] == BYTE_ORDER_MAGIC_BE {
                    Order::Big
                } else {
                    Order::Little
                };
            }
            let ty = order.u32_at(bytes, at).unwrap();
            let len = order.u32_at(bytes, at + 4).unwrap() as usize;
            let is_packet = matches!(ty, BT_ENHANCED_PACKET | BT_SIMPLE_PACKET | BT_PACKET);
            spans.push((at, at + len, is_packet));
            at += len;
        }
        assert_eq!(at, bytes.len());
        spans
    }

    /// Cuts `bytes` at every offset and checks the reader returns every complete packet and
    /// then, unless the cut falls between records, a Truncated error for the right record at
    /// the right offset.
    fn check_every_cut(bytes: &[u8], spans: &[Span], step: usize) {
        let mut full = from_bytes(bytes).unwrap();
        let (all, err) = read_all(&mut full);
        assert!(err.is_none());
        for cut in (0..bytes.len()).step_by(step) {
            let complete = spans.iter().filter(|s| s.2 && s.1 <= cut).count();
            let inside = spans.iter().find(|s| s.0 < cut && cut < s.1);
            let result = from_bytes(&bytes[..cut]);
            let (packets, err) = match result {
                Ok(mut capture) => read_all(&mut capture),
                Err(e) => (Vec::new(), Some(e)),
            };
            assert_eq!(packets[..], all[..complete], "cut at {cut}");
            match (inside, cut, err) {
                (
                    _,
                    0,
                    Some(CaptureError::Truncated {
                        record: 1,
                        offset: 0,
                        detail,
                        ..
                    }),
                ) => {
                    assert_eq!(detail, "the file is empty");
                }
                (
                    Some(span),
                    _,
                    Some(CaptureError::Truncated {
                        record,
                        offset,
                        detail,
                        ..
                    }),
                ) => {
                    assert_eq!(record, complete as u64 + 1, "cut at {cut}: {detail}");
                    assert_eq!(offset, span.0 as u64, "cut at {cut}: {detail}");
                    let into = cut - span.0;
                    assert!(
                        detail.contains(&format!("ends {into} bytes into")),
                        "cut at {cut}: {detail}"
                    );
                }
                (None, _, None) => {}
                (inside, _, err) => panic!("cut at {cut} (inside {inside:?}): {err:?}"),
            }
        }
    }

    #[test]
    fn truncated_pcap_returns_complete_records_then_truncated() {
        for name in ["ndpi__ssdp-m-search-ua.pcap", "ndpi__afp.pcap"] {
            let bytes = std::fs::read(shared(name)).unwrap();
            check_every_cut(&bytes, &pcap_spans(&bytes), 1);
        }
        for name in ["iphone-be.pcap", "iphone-nsec.pcap"] {
            let bytes = std::fs::read(fixture(name)).unwrap();
            check_every_cut(&bytes, &pcap_spans(&bytes), 7);
        }
    }

    #[test]
    fn truncated_pcapng_returns_complete_records_then_truncated() {
        let bytes = std::fs::read(shared("zeek__pcapng-multi-interface.pcapng")).unwrap();
        check_every_cut(&bytes, &pcapng_spans(&bytes), 1);
        let bytes = std::fs::read(fixture("iphone-mixed.pcapng")).unwrap();
        check_every_cut(&bytes, &pcapng_spans(&bytes), 1);
    }

    #[test]
    fn truncation_message_names_file_record_and_offset() {
        let bytes = std::fs::read(shared("ndpi__iphone.pcap")).unwrap();
        let spans = pcap_spans(&bytes);
        // Record 321 is span 321 (span 0 is the file header).
        let (start, end, _) = spans[321];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ndpi__iphone.pcap");
        std::fs::write(&path, &bytes[..start + 40]).unwrap();
        let mut capture = CaptureFile::open(&path).unwrap();
        let (packets, err) = read_all(&mut capture);
        assert_eq!(packets.len(), 320);
        let caplen = end - start - 16;
        assert_eq!(
            err.unwrap().to_string(),
            format!(
                "{}: truncated at record 321 (byte offset {start}): the file ends 40 bytes into \
                 a {}-byte record (16-byte header + {caplen} bytes of packet data)",
                path.display(),
                end - start
            )
        );
        // Inside the file header and inside a record header.
        std::fs::write(&path, &bytes[..10]).unwrap();
        let err = CaptureFile::open(&path).unwrap_err().to_string();
        assert!(err.ends_with("truncated at record 1 (byte offset 0): the file ends 10 bytes into the 24-byte pcap file header"), "{err}");
        std::fs::write(&path, &bytes[..spans[3].0 + 5]).unwrap();
        let (packets, err) = read_path(&path);
        assert_eq!(packets.len(), 2);
        let err = err.unwrap().to_string();
        assert!(err.ends_with(&format!("truncated at record 3 (byte offset {}): the file ends 5 bytes into the 16-byte record header", spans[3].0)), "{err}");
    }

    #[test]
    fn large_truncated_file_reports_offsets_across_buffer_refills() {
        // Bigger than the read buffer, so the cut record is found after several refills.
        let bytes = std::fs::read(shared("mercury__capture2.pcap")).unwrap();
        assert!(bytes.len() > 2 * BUFFER_LEN);
        let spans = pcap_spans(&bytes);
        let (index, &(start, _, _)) = spans
            .iter()
            .enumerate()
            .find(|(_, s)| s.0 > BUFFER_LEN + BUFFER_LEN / 2)
            .unwrap();
        let (packets, err) = read_all(&mut from_bytes(&bytes[..start + 20]).unwrap());
        assert_eq!(packets.len(), index - 1);
        match err {
            Some(CaptureError::Truncated { record, offset, .. }) => {
                assert_eq!((record, offset), (index as u64, start as u64));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn trickling_reader_reads_the_same_packets() {
        for path in [shared("ndpi__iphone.pcap"), fixture("iphone-mixed.pcapng")] {
            let bytes = std::fs::read(&path).unwrap();
            let (expected, _) = read_path(&path);
            for chunk in [1, 3, 4096] {
                let (packets, err) = read_all(&mut trickle(&bytes, chunk));
                assert!(err.is_none());
                assert_eq!(packets, expected, "{} in chunks of {chunk}", path.display());
            }
        }
    }

    /// Reads a capture the way the pipeline does: every packet's block is held (by a batch
    /// on its way to a worker) while the reader goes on. Returns the packets as seen through
    /// the held blocks at the end, and how many distinct blocks there were.
    fn read_holding_blocks(capture: &mut CaptureFile) -> (Vec<Owned>, usize) {
        /// A packet as a worker holds it: its block, its place there, ts, link, orig_len.
        type Held = (Arc<Block>, (usize, usize), u64, u32, u32);
        let mut held: Vec<Held> = Vec::new();
        while let Some(Ok(p)) = capture.next_packet() {
            let block = Arc::clone(p.block.expect("capture packets lie in a block"));
            let place = block.place_of(p.data).expect("the data lies in its block");
            held.push((block, place, p.ts.0, p.link.0, p.orig_len));
        }
        let mut distinct: Vec<*const Block> = held.iter().map(|h| Arc::as_ptr(&h.0)).collect();
        distinct.dedup();
        let packets = held
            .iter()
            .map(|(block, (start, len), ts, link, orig_len)| Owned {
                ts: *ts,
                link: *link,
                data: block.bytes()[*start..*start + *len].to_vec(),
                orig_len: *orig_len,
            })
            .collect();
        (packets, distinct.len())
    }

    #[test]
    fn held_blocks_keep_their_packets_while_the_reader_moves_on() {
        // Captures over the 1 MiB block: the reader must move to fresh blocks rather than
        // overwrite bytes a worker has yet to read.
        let mut ng = Ng {
            big: false,
            out: Vec::new(),
        };
        ng.section(false);
        ng.interface(1, None, None);
        let frame = std::fs::read(fixture("../packets/client_hello_gateway_icloud.bin")).unwrap();
        for i in 0..4_000u64 {
            ng.enhanced(0, i, &frame);
        }
        let pcapng = ng.out;
        assert!(pcapng.len() > 2 * BUFFER_LEN);
        for (name, bytes) in [
            (
                "mercury__capture2.pcap",
                std::fs::read(shared("mercury__capture2.pcap")).unwrap(),
            ),
            (
                "ndpi__1kxun.pcap",
                std::fs::read(shared("ndpi__1kxun.pcap")).unwrap(),
            ),
            ("built.pcapng", pcapng),
        ] {
            let (expected, err) = read_all(&mut from_bytes(&bytes).unwrap());
            assert!(err.is_none());
            for chunk in [7, 65_536, usize::MAX] {
                let mut capture = if chunk == usize::MAX {
                    from_bytes(&bytes).unwrap()
                } else {
                    trickle(&bytes, chunk)
                };
                let (packets, blocks) = read_holding_blocks(&mut capture);
                assert!(packets == expected, "{name} in chunks of {chunk}");
                assert!(blocks > 1, "{name}: {blocks} block(s)");
            }
        }
    }

    #[test]
    fn a_small_file_gets_a_block_its_size() {
        let path = shared("ndpi__iphone.pcap");
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        assert!(len + SMALL_FILE_SLACK < BUFFER_LEN);
        let mut capture = CaptureFile::open(&path).unwrap();
        let block = capture
            .next_packet()
            .unwrap()
            .unwrap()
            .block
            .map(|b| b.bytes().len());
        assert_eq!(block, Some(len + SMALL_FILE_SLACK));
        let (packets, err) = read_all(&mut capture);
        assert!(err.is_none());
        assert_eq!(packets.len() + 1, read_path(&path).0.len());
    }

    #[test]
    fn a_block_nobody_holds_is_reused_in_place() {
        // Read alone (one thread), the reader keeps refilling its one block.
        let bytes = std::fs::read(shared("mercury__capture2.pcap")).unwrap();
        let mut capture = from_bytes(&bytes).unwrap();
        let first = capture
            .next_packet()
            .unwrap()
            .unwrap()
            .block
            .map(Arc::as_ptr);
        let mut n = 1;
        while let Some(Ok(p)) = capture.next_packet() {
            assert_eq!(p.block.map(Arc::as_ptr), first);
            n += 1;
        }
        assert!(n > 1_000);
    }

    // ----- corruption -----

    #[test]
    fn huge_caplen_is_corrupt() {
        let mut bytes = std::fs::read(shared("ndpi__iphone.pcap")).unwrap();
        let spans = pcap_spans(&bytes);
        let start = spans[3].0;
        bytes[start + 8..start + 12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let (packets, err) = read_all(&mut from_bytes(&bytes).unwrap());
        assert_eq!(packets.len(), 2);
        match err {
            Some(CaptureError::Corrupt {
                record: 3,
                offset,
                ref detail,
                ..
            }) => {
                assert_eq!(offset, start as u64);
                assert!(detail.contains("4294967280 captured bytes"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        let text = err.unwrap().to_string();
        assert!(
            text.starts_with(&format!(
                "test.cap: corrupt at record 3 (byte offset {start}): "
            )),
            "{text}"
        );
    }

    #[test]
    fn broken_pcapng_framing_is_corrupt() {
        let original = std::fs::read(shared("zeek__pcapng-multi-interface.pcapng")).unwrap();
        let spans = pcapng_spans(&original);
        let (epb_index, &(start, end, _)) = spans.iter().enumerate().find(|(_, s)| s.2).unwrap();
        let packets_before = 0;
        let len = (end - start) as u32;
        fn set(bytes: &mut [u8], at: usize, value: u32) {
            bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
        }
        type Breakage = (&'static str, Box<dyn Fn(&mut Vec<u8>)>);
        let cases: Vec<Breakage> = vec![
            (
                "multiples of 4",
                Box::new(move |b| set(b, start + 4, len + 1)),
            ),
            ("multiples of 4", Box::new(move |b| set(b, start + 4, 8))),
            (
                "multiples of 4",
                Box::new(move |b| set(b, start + 4, 0xFFFF_FFF0)),
            ),
            (
                "ends with length",
                Box::new(move |b| set(b, end - 4, len + 4)),
            ),
            ("names interface 7", Box::new(move |b| set(b, start + 8, 7))),
            (
                "has room for",
                Box::new(move |b| set(b, start + 8 + 12, len)),
            ),
            ("byte-order magic", Box::new(|b| set(b, 8, 0x1234_5678))),
        ];
        for (expected, breakage) in cases {
            let mut bytes = original.clone();
            breakage(&mut bytes);
            let (packets, err) = match from_bytes(&bytes) {
                Ok(mut capture) => read_all(&mut capture),
                Err(e) => (Vec::new(), Some(e)),
            };
            match err {
                Some(CaptureError::Corrupt {
                    record,
                    offset,
                    detail,
                    ..
                }) => {
                    assert!(detail.contains(expected), "{expected}: {detail}");
                    if expected != "byte-order magic" {
                        assert_eq!(packets.len(), packets_before);
                        assert_eq!((record, offset), (1, start as u64), "{detail}");
                    } else {
                        assert_eq!((record, offset), (1, 0));
                    }
                }
                other => panic!("{expected}: {other:?}"),
            }
        }
        assert!(epb_index > 1);
    }

    #[test]
    fn unknown_magic_is_not_a_capture() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        File::create(&path)
            .unwrap()
            .write_all(b"hello world\n")
            .unwrap();
        let err = CaptureFile::open(&path).unwrap_err();
        assert!(matches!(err, CaptureError::NotACapture { magic, .. } if &magic == b"hell"));
        assert_eq!(
            err.to_string(),
            format!(
                "{}: not a pcap or pcapng capture (it starts with bytes 68 65 6c 6c)",
                path.display()
            )
        );
        let err = CaptureFile::open(&dir.path().join("missing.pcap")).unwrap_err();
        assert!(matches!(err, CaptureError::Open { .. }), "{err}");
    }

    // ----- hand-made pcapng -----

    /// Builds pcapng blocks in either byte order.
    struct Ng {
        big: bool,
        out: Vec<u8>,
    }

    impl Ng {
        fn u16(&self, v: u16) -> [u8; 2] {
            if self.big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }
        fn u32(&self, v: u32) -> [u8; 4] {
            if self.big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }
        fn block(&mut self, ty: u32, body: &[u8]) {
            let mut body = body.to_vec();
            body.resize(body.len().div_ceil(4) * 4, 0);
            let len = body.len() as u32 + 12;
            let (ty, len) = (self.u32(ty), self.u32(len));
            self.out.extend(ty);
            self.out.extend(len);
            self.out.extend(body);
            self.out.extend(len);
        }
        fn section(&mut self, big: bool) {
            self.big = big;
            let mut body = self.u32(0x1A2B_3C4D).to_vec();
            body.extend(self.u16(1));
            body.extend(self.u16(0));
            body.extend([0xFF; 8]);
            self.block(BT_SECTION_HEADER, &body);
        }
        /// An interface with optional if_tsresol and if_tsoffset, and an if_tzone option of
        /// the 4 bytes the specification gives it (which pcap-file refuses).
        fn interface(&mut self, link: u16, tsresol: Option<u8>, tsoffset: Option<i64>) {
            let mut body = self.u16(link).to_vec();
            body.extend(self.u16(0));
            body.extend(self.u32(0));
            body.extend(self.u16(10));
            body.extend(self.u16(4));
            body.extend(self.u32(0));
            if let Some(resol) = tsresol {
                body.extend(self.u16(OPT_IF_TSRESOL));
                body.extend(self.u16(1));
                body.extend([resol, 0, 0, 0]);
            }
            if let Some(offset) = tsoffset {
                body.extend(self.u16(OPT_IF_TSOFFSET));
                body.extend(self.u16(8));
                let raw = if self.big {
                    offset.to_be_bytes()
                } else {
                    offset.to_le_bytes()
                };
                body.extend(raw);
            }
            body.extend([0; 4]);
            self.block(BT_INTERFACE_DESCRIPTION, &body);
        }
        fn enhanced(&mut self, interface: u32, ticks: u64, data: &[u8]) {
            let mut body = self.u32(interface).to_vec();
            body.extend(self.u32((ticks >> 32) as u32));
            body.extend(self.u32(ticks as u32));
            body.extend(self.u32(data.len() as u32));
            body.extend(self.u32(data.len() as u32 + 100));
            body.extend(data);
            self.block(BT_ENHANCED_PACKET, &body);
        }
        fn obsolete(&mut self, interface: u16, ticks: u64, data: &[u8]) {
            let mut body = self.u16(interface).to_vec();
            body.extend(self.u16(0));
            body.extend(self.u32((ticks >> 32) as u32));
            body.extend(self.u32(ticks as u32));
            body.extend(self.u32(data.len() as u32));
            body.extend(self.u32(data.len() as u32));
            body.extend(data);
            self.block(BT_PACKET, &body);
        }
        fn simple(&mut self, orig_len: u32, data: &[u8]) {
            let mut body = self.u32(orig_len).to_vec();
            body.extend(data);
            self.block(BT_SIMPLE_PACKET, &body);
        }
    }

    #[test]
    fn pcapng_sections_resolutions_and_block_kinds() {
        let mut ng = Ng {
            big: false,
            out: Vec::new(),
        };
        ng.section(false);
        ng.interface(1, None, None); // 0: Ethernet, microseconds by default
        ng.interface(101, Some(9), Some(-10)); // 1: raw IP, nanoseconds, 10 s earlier
        ng.enhanced(0, 1_500_000_000_123_456, b"frame-a");
        ng.block(0x0000_0BAD, b"custom block to skip");
        ng.enhanced(1, 1_500_000_000_123_456_789, b"ip-b");
        ng.simple(3, b"abcdef"); // interface 0, cut to its original length, last timestamp
        ng.section(true);
        ng.interface(228, Some(0x80 | 10), None); // 0: 2^-10 s
        ng.interface(229, Some(3), Some(1_000)); // 1: ms, +1000 s
        ng.interface(1, Some(12), None); // 2: picoseconds
        ng.obsolete(1, 1_500_000_000_123, b"v6");
        ng.enhanced(0, 1024 * 1_500_000_000 + 512, b"v4");
        ng.enhanced(2, 123_456_789_999, b"ps"); // picoseconds overflow u64 for recent dates
        let (packets, err) = read_all(&mut from_bytes(&ng.out).unwrap());
        assert!(err.is_none(), "{err:?}");
        let got: Vec<(u64, u32, &[u8], u32)> = packets
            .iter()
            .map(|p| (p.ts, p.link, &p.data[..], p.orig_len))
            .collect();
        let s = 1_500_000_000_000_000_000u64;
        assert_eq!(
            got,
            vec![
                (s + 123_456_000, 1, &b"frame-a"[..], 107),
                (s - 10_000_000_000 + 123_456_789, 101, &b"ip-b"[..], 104),
                (s - 10_000_000_000 + 123_456_789, 1, &b"abc"[..], 3),
                (s + 1_000_000_000_000 + 123_000_000, 229, &b"v6"[..], 2),
                (s + 500_000_000, 228, &b"v4"[..], 102),
                (123_456_789, 1, &b"ps"[..], 102),
            ]
        );
    }

    #[test]
    fn packet_before_any_interface_is_corrupt() {
        let mut ng = Ng {
            big: true,
            out: Vec::new(),
        };
        ng.section(true);
        ng.simple(4, b"data");
        let (packets, err) = read_all(&mut from_bytes(&ng.out).unwrap());
        assert!(packets.is_empty());
        match err {
            Some(CaptureError::Corrupt {
                record: 1,
                offset: 28,
                detail,
                ..
            }) => {
                assert!(detail.contains("describes 0 interfaces"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tsresol_scales() {
        assert_eq!(TickScale::from_tsresol(6).to_nanos(1), 1_000);
        assert_eq!(TickScale::from_tsresol(9).to_nanos(7), 7);
        assert_eq!(TickScale::from_tsresol(0).to_nanos(2), 2_000_000_000);
        assert_eq!(TickScale::from_tsresol(12).to_nanos(123_456), 123);
        assert_eq!(TickScale::from_tsresol(0x80).to_nanos(3), 3_000_000_000);
        assert_eq!(
            TickScale::from_tsresol(0x80 | 20).to_nanos(1 << 20),
            1_000_000_000
        );
        assert_eq!(TickScale::from_tsresol(0xFF).to_nanos(u64::MAX), 0);
        assert_eq!(TickScale::from_tsresol(127).to_nanos(u64::MAX), 0);
        assert_eq!(TickScale::from_tsresol(0).to_nanos(u64::MAX), u64::MAX);
    }

    // ----- robustness -----

    /// Deterministic xorshift, so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn damaged_captures_never_panic() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let seeds = [
            std::fs::read(shared("ndpi__ssdp-m-search-ua.pcap")).unwrap(),
            std::fs::read(shared("zeek__pcapng-multi-interface.pcapng")).unwrap(),
            std::fs::read(fixture("iphone-mixed.pcapng")).unwrap(),
            std::fs::read(fixture("iphone-be.pcap")).unwrap(),
        ];
        for round in 0..3000 {
            let mut bytes = seeds[round % seeds.len()].clone();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(bytes.len());
                match rng.below(4) {
                    0 => bytes[at] ^= 1 << rng.below(8),
                    1 => bytes[at] = 0xFF,
                    2 => bytes[at] = 0,
                    _ => bytes.truncate(at.max(1)),
                }
            }
            if let Ok(mut capture) = from_bytes(&bytes) {
                let mut count = 0;
                while let Some(next) = capture.next_packet() {
                    count += 1;
                    assert!(count <= bytes.len(), "reader does not terminate");
                    if let Ok(p) = next {
                        assert!(p.data.len() <= MAX_CAPLEN as usize);
                    }
                }
            }
        }
        // Random bytes behind each magic.
        for magic in [PCAP_MAGIC_USEC_LE, PCAP_MAGIC_NSEC_BE, PCAPNG_MAGIC] {
            for _ in 0..500 {
                let mut bytes = magic.to_vec();
                bytes.extend((0..rng.below(200)).map(|_| rng.next() as u8));
                if let Ok(mut capture) = from_bytes(&bytes) {
                    while capture.next_packet().is_some() {}
                }
            }
        }
    }
}
