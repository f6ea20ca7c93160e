//! pcapng: block framing (both lengths checked against each other and a ceiling), sections and
//! their byte order, interfaces with their link type, snap length and timestamp resolution
//! and offset, and the three packet block kinds, read straight from the input's buffer.
//!
//! Why not a crate: pcap-file 2.0.0's only pcapng slice parser usable without naming
//! `byteorder_slice` types (which it does not re-export, and which are no dependency of ours)
//! is `PcapNgParser`, and it (like `PcapNgReader`) eagerly decodes every section and interface
//! option with checks that reject files Wireshark and libpcap read (an `if_tzone` option of the
//! 4 bytes the specification gives it is refused as "length != 1", option strings must be
//! UTF-8, a non-zero reserved field fails the block), reports some malformed options as
//! `IncompleteBuffer` (indistinguishable from "need more data"), ignores `if_tsresol` and
//! `if_tsoffset` in packet timestamps, reads the obsolete Packet Block's timestamp words in the
//! wrong order for little-endian files, and allocates an option vector per packet. The framing
//! we need is a few dozen lines, written here against the pcapng specification with every
//! length checked once.

use crate::wire::reader::{Order, Reader};

use super::buffer::Input;
use super::error::hex_bytes;
use super::pcap::caplen_limit;
use super::{CaptureError, LinkType, Packet, Timestamp};

/// pcapng files start with a Section Header Block, whose type reads the same in both orders.
pub(super) const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Largest pcapng block accepted (libpcap uses the same 16 MiB ceiling).
const MAX_BLOCK_LEN: u32 = 16 * 1024 * 1024;

/// pcapng block type and total-length fields.
const BLOCK_HEADER_LEN: usize = 8;
/// pcapng trailing total-length field.
const BLOCK_TRAILER_LEN: usize = 4;
/// Smallest legal pcapng block: header plus trailer, empty body.
const MIN_BLOCK_LEN: u32 = 12;
/// Offset of the total-length field within a block.
const BLOCK_LEN_FIELD: usize = 4;

pub(super) const BT_SECTION_HEADER: u32 = 0x0a0d_0d0a;
pub(super) const BT_INTERFACE_DESCRIPTION: u32 = 0x0000_0001;
/// Obsolete Packet Block, still produced by old writers.
pub(super) const BT_PACKET: u32 = 0x0000_0002;
pub(super) const BT_SIMPLE_PACKET: u32 = 0x0000_0003;
pub(super) const BT_ENHANCED_PACKET: u32 = 0x0000_0006;

/// Section header: the byte-order magic sits right after the 8-byte block header.
const SHB_BOM_OFFSET: usize = 8;
/// Bytes needed to know a section header's byte order and therefore its length.
const SHB_PREFIX_LEN: usize = 12;
/// Section header body: byte-order magic (4), versions (2 + 2), section length (8).
const SHB_FIXED_BODY: usize = 16;
const SHB_BODY_MAJOR: usize = 4;
const PCAPNG_MAJOR_VERSION: u16 = 1;
pub(super) const BYTE_ORDER_MAGIC_BE: [u8; 4] = [0x1a, 0x2b, 0x3c, 0x4d];
const BYTE_ORDER_MAGIC_LE: [u8; 4] = [0x4d, 0x3c, 0x2b, 0x1a];

/// Interface description body: link type (2), reserved (2), snaplen (4), then options.
const IDB_FIXED_BODY: usize = 8;
const IDB_BODY_SNAPLEN: usize = 4;
/// Option header: code (2) and length (2).
const OPT_HEADER_LEN: usize = 4;
const OPT_END: u16 = 0;
pub(super) const OPT_IF_TSRESOL: u16 = 9;
pub(super) const OPT_IF_TSOFFSET: u16 = 14;
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

/// Where a packet's data sits in the input's buffer, and what goes with it.
struct PacketAt {
    start: usize,
    len: usize,
    ts: Timestamp,
    link: LinkType,
    orig_len: u32,
}

/// What one block turned out to be.
enum Step {
    Packet(PacketAt),
    /// A block that describes or annotates; nothing to return.
    Other,
    /// Clean end of file between blocks.
    End,
}

/// Rounds a length up to the pcapng 32-bit alignment.
fn padded_to_4(len: usize) -> Option<usize> {
    Some(len.checked_add(3)? & !3)
}

/// A pcapng file being read: the current section's byte order and interfaces.
#[derive(Debug)]
pub(super) struct PcapNgReader {
    order: Order,
    interfaces: Vec<Interface>,
    /// Simple packet blocks carry no timestamp; they get the last one seen.
    last_ts: Timestamp,
}

impl PcapNgReader {
    /// Reads the first block, the section header: a damaged or cut-short header fails
    /// `open`, as it does for classic pcap.
    pub(super) fn start(input: &mut Input) -> Result<Self, CaptureError> {
        let mut reader = PcapNgReader {
            order: Order::Little,
            interfaces: Vec::new(),
            last_ts: Timestamp::default(),
        };
        reader.step(input)?;
        Ok(reader)
    }

    /// The next packet, skipping blocks that are not packets: `None` at clean end of file.
    pub(super) fn next_packet<'a>(
        &mut self,
        input: &'a mut Input,
    ) -> Option<Result<Packet<'a>, CaptureError>> {
        loop {
            match self.step(input) {
                Ok(Step::Other) => {}
                Ok(Step::End) => return None,
                Err(e) => return Some(Err(e)),
                Ok(Step::Packet(at)) => {
                    let input: &'a Input = input;
                    return Some(Ok(Packet {
                        ts: at.ts,
                        link: at.link,
                        data: input.slice(at.start, at.len),
                        orig_len: at.orig_len,
                        block: Some(input.buffer()),
                    }));
                }
            }
        }
    }

    /// Reads one block, checks its framing, and acts on it.
    fn step(&mut self, input: &mut Input) -> Result<Step, CaptureError> {
        let have = input.fill(SHB_PREFIX_LEN)?;
        if have == 0 {
            return Ok(Step::End);
        }
        let Some(head) = input.window(BLOCK_HEADER_LEN) else {
            return Err(input.truncated(format!(
                "the file ends {have} bytes into a {BLOCK_HEADER_LEN}-byte block header"
            )));
        };
        let Some(block_type) = self.order.u32_at(head, 0) else {
            return Err(input.corrupt("unreadable block header".to_owned()));
        };

        // A section header declares its own byte order, and its length is in that order.
        let order = if block_type == BT_SECTION_HEADER {
            let bom: Option<[u8; 4]> = input
                .window(SHB_PREFIX_LEN)
                .and_then(|w| w.get(SHB_BOM_OFFSET..))
                .and_then(|b| b.try_into().ok());
            match bom {
                Some(BYTE_ORDER_MAGIC_LE) => Order::Little,
                Some(BYTE_ORDER_MAGIC_BE) => Order::Big,
                Some(other) => {
                    return Err(input.corrupt(format!(
                        "section header byte-order magic is {}, not 1a 2b 3c 4d in either order",
                        hex_bytes(&other)
                    )));
                }
                None => {
                    return Err(input.truncated(format!(
                        "the file ends {have} bytes into a section header block"
                    )));
                }
            }
        } else {
            self.order
        };
        let block_len = input
            .window(BLOCK_HEADER_LEN)
            .and_then(|h| order.u32_at(h, BLOCK_LEN_FIELD))
            .unwrap_or(0);
        let kind = block_name(block_type);
        if !block_len.is_multiple_of(4) || !(MIN_BLOCK_LEN..=MAX_BLOCK_LEN).contains(&block_len) {
            return Err(input.corrupt(format!(
                "{kind} block claims a length of {block_len} bytes; block lengths are \
                 multiples of 4 between {MIN_BLOCK_LEN} and {MAX_BLOCK_LEN}"
            )));
        }
        let total = block_len as usize;
        let have = input.fill(total)?;
        let Some(block) = input.window(total) else {
            return Err(input.truncated(format!(
                "the file ends {have} bytes into a {total}-byte {kind} block"
            )));
        };
        let trailer = order.u32_at(block, total - BLOCK_TRAILER_LEN);
        if trailer != Some(block_len) {
            let trailer = trailer.unwrap_or(0);
            return Err(input.corrupt(format!(
                "{kind} block starts with length {block_len} but ends with length {trailer}"
            )));
        }
        let body_start = input.start() + BLOCK_HEADER_LEN;
        let body_len = total - BLOCK_HEADER_LEN - BLOCK_TRAILER_LEN;
        let block = Block {
            order,
            body_start,
            body_len,
        };

        let step = match block_type {
            BT_SECTION_HEADER => self.section_header(input, block)?,
            BT_INTERFACE_DESCRIPTION => self.interface(input, block)?,
            BT_ENHANCED_PACKET | BT_PACKET => Step::Packet(self.packet(input, block_type, block)?),
            BT_SIMPLE_PACKET => Step::Packet(self.simple_packet(input, block)?),
            // Statistics, name resolution, decryption secrets, custom blocks: not packets.
            _ => Step::Other,
        };
        if let Step::Packet(at) = &step {
            input.count_record();
            self.last_ts = at.ts;
        }
        input.consume(total);
        Ok(step)
    }

    fn section_header(&mut self, input: &mut Input, block: Block) -> Result<Step, CaptureError> {
        let Block {
            order, body_len, ..
        } = block;
        let body = block.body(input);
        if body.len() < SHB_FIXED_BODY {
            return Err(input.corrupt(format!(
                "section header block body is {body_len} bytes, shorter than its \
                 {SHB_FIXED_BODY}-byte fixed part"
            )));
        }
        let major = order.u16_at(body, SHB_BODY_MAJOR).unwrap_or(0);
        if major != PCAPNG_MAJOR_VERSION {
            return Err(input.corrupt(format!(
                "section header declares pcapng version {major}, only version 1 exists"
            )));
        }
        // Interface numbers restart with every section.
        self.order = order;
        self.interfaces.clear();
        Ok(Step::Other)
    }

    fn interface(&mut self, input: &mut Input, block: Block) -> Result<Step, CaptureError> {
        let Block {
            order, body_len, ..
        } = block;
        let body = block.body(input);
        let (Some(link), Some(snaplen)) =
            (order.u16_at(body, 0), order.u32_at(body, IDB_BODY_SNAPLEN))
        else {
            return Err(input.corrupt(format!(
                "interface description block body is {body_len} bytes, shorter than its \
                 {IDB_FIXED_BODY}-byte fixed part"
            )));
        };
        let mut tsresol = DEFAULT_TSRESOL;
        let mut offset_secs = 0i64;
        // Options we do not need are skipped; a malformed option list ends the walk
        // rather than the capture, since only the timestamp options matter here.
        let mut options = Reader::new(body.get(IDB_FIXED_BODY..).unwrap_or_default());
        while let Some(head) = options.bytes(OPT_HEADER_LEN) {
            let (Some(code), Some(len)) = (order.u16_at(head, 0), order.u16_at(head, 2)) else {
                break;
            };
            if code == OPT_END {
                break;
            }
            let len = usize::from(len);
            let Some(value) = options.bytes(len) else {
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
            let padding = padded_to_4(len).map_or(usize::MAX, |p| p - len);
            if options.skip(padding).is_none() {
                break;
            }
        }
        self.interfaces.push(Interface {
            link: LinkType(u32::from(link)),
            snaplen,
            scale: TickScale::from_tsresol(tsresol),
            offset_secs,
        });
        Ok(Step::Other)
    }

    /// The interface a packet names, or a Corrupt error.
    fn interface_at(&self, input: &mut Input, id: u32) -> Result<Interface, CaptureError> {
        match self.interfaces.get(id as usize) {
            Some(interface) => Ok(*interface),
            None => {
                let known = self.interfaces.len();
                Err(input.corrupt(format!(
                    "the packet names interface {id}, but this section describes {known} \
                     interface{}",
                    if known == 1 { "" } else { "s" }
                )))
            }
        }
    }

    fn packet(
        &self,
        input: &mut Input,
        block_type: u32,
        block: Block,
    ) -> Result<PacketAt, CaptureError> {
        let Block {
            order,
            body_start,
            body_len,
        } = block;
        let body = block.body(input);
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
            return Err(input.corrupt(format!(
                "{kind} block body is {body_len} bytes, shorter than its {fixed}-byte fixed part"
            )));
        };
        let interface = self.interface_at(input, id)?;
        let limit = caplen_limit(interface.snaplen);
        if caplen > limit {
            return Err(input.corrupt(format!(
                "{kind} block claims {caplen} captured bytes, more than the {limit} \
                 its interface's snaplen allows"
            )));
        }
        let room = body_len.saturating_sub(fixed);
        if padded_to_4(caplen as usize).is_none_or(|padded| padded > room) {
            return Err(input.corrupt(format!(
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

    fn simple_packet(&self, input: &mut Input, block: Block) -> Result<PacketAt, CaptureError> {
        let Block {
            order,
            body_start,
            body_len,
        } = block;
        let body = block.body(input);
        let Some(orig_len) = order.u32_at(body, 0) else {
            return Err(input.corrupt(format!(
                "simple packet block body is {body_len} bytes, shorter than its \
                 {SPB_FIXED_BODY}-byte fixed part"
            )));
        };
        // A simple packet always belongs to interface 0 and carries no timestamp.
        let interface = self.interface_at(input, 0)?;
        // Its captured length is implied: the original length cut to the snaplen; what is
        // left of the body is padding.
        let mut len = body_len
            .saturating_sub(SPB_FIXED_BODY)
            .min(orig_len as usize);
        if interface.snaplen != 0 {
            len = len.min(interface.snaplen as usize);
        }
        Ok(PacketAt {
            start: body_start + SPB_FIXED_BODY,
            len,
            ts: self.last_ts,
            link: interface.link,
            orig_len,
        })
    }
}

/// A block whose framing has been checked: its byte order and where its body lies in the
/// input's buffer.
#[derive(Debug, Clone, Copy)]
struct Block {
    order: Order,
    body_start: usize,
    body_len: usize,
}

impl Block {
    /// The body.
    fn body(self, input: &Input) -> &[u8] {
        input.slice(self.body_start, self.body_len)
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
}
