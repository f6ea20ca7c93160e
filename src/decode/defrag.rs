//! IP fragment reassembly (IPv4 and IPv6) within a memory budget: the fragments of a datagram
//! are held until it is whole, then handed back as one IP packet for [`super::from_ip`].
//!
//! Policy, as Suricata's and Zeek's defragmenters have one:
//! - a datagram is keyed by source, destination, identification and, for IPv4, protocol
//!   (RFC 791, RFC 8200);
//! - overlapping fragments: the bytes held first win (Suricata's `first` policy); a fragment
//!   whose overlap carries the same bytes is counted in `overlaps`, one whose overlap differs in
//!   `conflicts` (an evasion, or a broken sender: the receiver's choice depends on its system,
//!   so the report says it happened);
//! - a datagram may be at most 65,535 bytes (IPv4: header included; IPv6: its payload) and
//!   have at most [`MAX_FRAGMENTS`] fragments;
//! - it is dropped when not whole [`TIMEOUT_SECS`] seconds (of packet time, the dispatcher's
//!   clock: the core never reads a clock) after its first fragment;
//! - memory: every byte held counts against a total cap and a per-source cap, in bytes and in
//!   datagrams (a fixed cost per fragment and per datagram included, so a flood of tiny
//!   fragments is bounded too); to make room the oldest datagram (of that source, or of all)
//!   gives way, having had the longest to complete.
//!
//! Every fragment taken in ends in a reassembled datagram, is still held, or was dropped for
//! one [`DefragDrop`] reason: [`DefragStats`] counts each.
//!
//! Hand-written: etherparse (the decoder's crate) has no reassembly, and the crates that do
//! (smoltcp's, for instance) are tied to their own stack and do not bound memory per source.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::capture::Timestamp;
use crate::wire::ip::{Ipv4Packet, Ipv6Packet, ip_proto};
use crate::wire::reader::{be16, be32};

/// Most fragments in one datagram: a 65,535-byte datagram over a 576-byte path takes 118.
pub const MAX_FRAGMENTS: u32 = 128;
/// Seconds a datagram may take to complete (Linux's `ipfrag_time`).
pub const TIMEOUT_SECS: u64 = 30;
/// Default total bytes held (`--max-fragment-bytes`).
pub const DEFAULT_MAX_BYTES: usize = 8 << 20;
/// Largest IP datagram (IPv4 total length, IPv6 payload length).
const MAX_DATAGRAM: usize = 65_535;
/// Bytes counted per fragment held beside its data (the piece's bookkeeping).
const FRAGMENT_COST: usize = 64;
/// Bytes counted per datagram held beside its fragments (the entry and its header).
const DATAGRAM_COST: usize = 256;
/// Bytes one largest datagram can cost: a source may always hold one.
const LARGEST_COST: usize =
    MAX_DATAGRAM + DATAGRAM_COST + 40 + 512 + MAX_FRAGMENTS as usize * FRAGMENT_COST;

/// Why fragments were dropped. Each reason counts fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DefragDrop {
    /// The datagram was not whole [`TIMEOUT_SECS`] after its first fragment.
    Timeout,
    /// Still incomplete when the run ended or packet time restarted.
    Incomplete,
    /// Evicted or refused to keep one source within its share of the budget.
    SourceCap,
    /// Evicted or refused to keep the total within the budget.
    TotalCap,
    /// The datagram had more than [`MAX_FRAGMENTS`] fragments.
    TooManyFragments,
    /// The datagram would be larger than 65,535 bytes.
    TooBig,
    /// Fragments that disagree on where the datagram ends.
    Inconsistent,
    /// A fragment whose IP header cannot be read whole (cut by the snap length, or damaged).
    Malformed,
}

impl DefragDrop {
    /// Every reason, in report order.
    pub const ALL: [Self; 8] = [
        Self::Timeout,
        Self::Incomplete,
        Self::SourceCap,
        Self::TotalCap,
        Self::TooManyFragments,
        Self::TooBig,
        Self::Inconsistent,
        Self::Malformed,
    ];

    /// Stable name used in reports, JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Incomplete => "incomplete",
            Self::SourceCap => "source-cap",
            Self::TotalCap => "total-cap",
            Self::TooManyFragments => "too-many-fragments",
            Self::TooBig => "too-big",
            Self::Inconsistent => "inconsistent",
            Self::Malformed => "malformed",
        }
    }
}

/// What the reassembler did, and holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefragStats {
    /// Fragments taken in.
    pub fragments: u64,
    /// Datagrams reassembled.
    pub reassembled: u64,
    /// Fragments those datagrams were made of.
    pub reassembled_fragments: u64,
    /// Fragments that overlapped bytes held with the same bytes.
    pub overlaps: u64,
    /// Fragments that overlapped bytes held with other bytes (the first bytes were kept).
    pub conflicts: u64,
    /// Fragments dropped, by [`DefragDrop`] reason.
    pub dropped: [u64; DefragDrop::ALL.len()],
    /// Fragments held now.
    pub held_fragments: u64,
    /// Bytes held now (data and bookkeeping, as counted against the caps).
    pub held_bytes: u64,
    /// The most bytes held at once.
    pub peak_held_bytes: u64,
    /// The most datagrams held at once.
    pub peak_held_datagrams: u64,
}

impl DefragStats {
    /// Whether no fragment was ever seen (the report then leaves the section out).
    pub fn is_empty(&self) -> bool {
        self.fragments == 0
    }

    /// Adds another reassembler's counters (another reader's); peaks add up too, as the
    /// readers' memory does.
    pub fn merge(&mut self, other: &Self) {
        self.fragments += other.fragments;
        self.reassembled += other.reassembled;
        self.reassembled_fragments += other.reassembled_fragments;
        self.overlaps += other.overlaps;
        self.conflicts += other.conflicts;
        for (a, b) in self.dropped.iter_mut().zip(other.dropped) {
            *a += b;
        }
        self.held_fragments += other.held_fragments;
        self.held_bytes += other.held_bytes;
        self.peak_held_bytes += other.peak_held_bytes;
        self.peak_held_datagrams += other.peak_held_datagrams;
    }

    /// Fragments dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

/// The caps of a reassembler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefragLimits {
    /// Bytes held in all.
    pub max_bytes: usize,
    /// Datagrams held in all.
    pub max_datagrams: usize,
    /// Bytes held for one source address.
    pub source_bytes: usize,
    /// Datagrams held for one source address.
    pub source_datagrams: usize,
}

impl DefragLimits {
    /// The caps for a total of `max_bytes`: a datagram per 4 KiB of it (at least 16), and an
    /// eighth of each for one source (but room for one largest datagram at least).
    pub fn with_max_bytes(max_bytes: usize) -> Self {
        let max_datagrams = (max_bytes / 4096).max(16);
        Self {
            max_bytes,
            max_datagrams,
            source_bytes: (max_bytes / 8).max(LARGEST_COST).min(max_bytes),
            source_datagrams: (max_datagrams / 8).max(1),
        }
    }
}

impl Default for DefragLimits {
    fn default() -> Self {
        Self::with_max_bytes(DEFAULT_MAX_BYTES)
    }
}

/// A reassembled datagram: one IP packet, its fragment flags cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassembled {
    /// The IP packet (header of the first fragment, then every fragment's data in order).
    pub data: Vec<u8>,
    /// The sum of its fragments' lengths on the wire.
    pub orig_len: u32,
    /// The Ethernet addresses of its first fragment, where it had them.
    pub link: Option<[u8; 12]>,
}

/// Which datagram a fragment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    /// IPv4's protocol; 0 for IPv6 (whose key has none).
    proto: u8,
}

/// One fragment, read from its IP header.
struct Fragment<'a> {
    key: Key,
    /// Offset of `data` in the datagram's payload.
    offset: usize,
    more: bool,
    data: &'a [u8],
    /// What goes before the payload when the datagram is rebuilt (IPv4: the header; IPv6: the
    /// fixed header and the extension headers before the fragment header).
    header: &'a [u8],
    /// IPv6: where in `header` the next-header byte that named the fragment header is, and
    /// the protocol the fragment header names.
    v6_next: V6Next,
}

/// IPv6: where the next-header byte that named the fragment header is in the rebuilt header,
/// and the protocol the fragment header names; `None` for IPv4.
type V6Next = Option<(usize, u8)>;

/// A datagram being reassembled.
struct Datagram {
    /// Its place in the age order.
    age: u64,
    /// The clock when its first fragment came.
    first_seen: Timestamp,
    /// From its first fragment (offset 0), once seen.
    header: Option<(Vec<u8>, V6Next)>,
    /// Data held, by offset, never overlapping.
    pieces: Vec<(usize, Vec<u8>)>,
    /// Where it ends, once its last fragment came.
    end: Option<usize>,
    fragments: u32,
    wire_bytes: u64,
    /// Bytes counted against the caps.
    cost: usize,
    covered: usize,
    link: Option<[u8; 12]>,
}

/// What an offered fragment came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offered {
    /// Held until its datagram is whole.
    Held,
    /// Dropped (counted).
    Dropped,
    /// It completed its datagram.
    Complete(Reassembled),
}

#[derive(Debug, Clone, Copy, Default)]
struct SourceUse {
    bytes: usize,
    datagrams: usize,
}

/// The reassembler: datagrams held, in age order, and what each source holds.
#[derive(Default)]
pub struct Defrag {
    limits: DefragLimits,
    datagrams: HashMap<Key, Datagram>,
    order: BTreeMap<u64, Key>,
    sources: HashMap<IpAddr, SourceUse>,
    next_age: u64,
    stats: DefragStats,
    /// Fragments settled (dropped, or folded into a datagram) since the last
    /// [`Defrag::take_settled`], and their wire bytes.
    settled: (u64, u64),
}

impl Defrag {
    /// An empty reassembler with these caps.
    pub fn new(limits: DefragLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// What it did and holds.
    pub fn stats(&self) -> DefragStats {
        self.stats
    }

    /// Fragments no longer held that will not be counted as a packet of their own since the
    /// last call, and their bytes on the wire: every dropped fragment, and all but one of each
    /// reassembled datagram's (the datagram is counted as one packet, of all their bytes).
    pub fn take_settled(&mut self) -> (u64, u64) {
        std::mem::take(&mut self.settled)
    }

    /// Takes one fragment (an IP packet, from its first header byte) seen at `now` (the
    /// dispatcher's clock), `orig_len` bytes on the wire.
    pub fn offer(
        &mut self,
        ip: &[u8],
        orig_len: u32,
        link: Option<&[u8; 12]>,
        now: Timestamp,
    ) -> Offered {
        self.stats.fragments += 1;
        self.expire(now);
        let Some(frag) = read_fragment(ip) else {
            return self.drop_one(DefragDrop::Malformed, orig_len);
        };
        let end = frag.offset + frag.data.len();
        let header_len = frag.header.len();
        if end > MAX_DATAGRAM || (frag.v6_next.is_none() && end + header_len > MAX_DATAGRAM) {
            self.drop_datagram(&frag.key, DefragDrop::TooBig);
            return self.drop_one(DefragDrop::TooBig, orig_len);
        }
        if !self.datagrams.contains_key(&frag.key) && !self.make_room_for_datagram(frag.key.src) {
            return self.drop_one(DefragDrop::SourceCap, orig_len);
        }
        let key = frag.key;
        if !self.datagrams.contains_key(&key) {
            let age = self.next_age;
            self.next_age += 1;
            self.datagrams.insert(
                key,
                Datagram {
                    age,
                    first_seen: now,
                    header: None,
                    pieces: Vec::new(),
                    end: None,
                    fragments: 0,
                    wire_bytes: 0,
                    cost: DATAGRAM_COST,
                    covered: 0,
                    link: None,
                },
            );
            self.order.insert(age, key);
            let s = self.sources.entry(key.src).or_default();
            s.datagrams += 1;
            s.bytes += DATAGRAM_COST;
            self.stats.held_bytes += DATAGRAM_COST as u64;
            self.stats.peak_held_datagrams =
                self.stats.peak_held_datagrams.max(self.order.len() as u64);
        }
        let Some(d) = self.datagrams.get(&key) else {
            return self.drop_one(DefragDrop::Malformed, orig_len);
        };
        if d.fragments >= MAX_FRAGMENTS {
            self.drop_datagram(&key, DefragDrop::TooManyFragments);
            return self.drop_one(DefragDrop::TooManyFragments, orig_len);
        }
        let inconsistent = match (d.end, frag.more) {
            (Some(e), false) => e != end,
            (Some(e), true) => end > e,
            (None, false) => d.pieces.last().is_some_and(|(at, p)| at + p.len() > end),
            (None, true) => false,
        };
        if inconsistent {
            self.drop_datagram(&key, DefragDrop::Inconsistent);
            return self.drop_one(DefragDrop::Inconsistent, orig_len);
        }
        let (holes, overlap) = holes(&d.pieces, frag.offset, frag.data);
        let mut cost = FRAGMENT_COST + holes.iter().map(|(a, b)| b - a).sum::<usize>();
        let new_header = frag.offset == 0 && d.header.is_none();
        if new_header {
            cost += header_len;
        }
        if let Some(reason) = self.make_room(&key, cost) {
            self.drop_datagram(&key, reason);
            return self.drop_one(reason, orig_len);
        }
        let Some(d) = self.datagrams.get_mut(&key) else {
            // make_room never evicts the datagram it makes room for.
            return self.drop_one(DefragDrop::Malformed, orig_len);
        };
        match overlap {
            Overlap::None => {}
            Overlap::Same => self.stats.overlaps += 1,
            Overlap::Conflict => self.stats.conflicts += 1,
        }
        if new_header {
            d.header = Some((frag.header.to_vec(), frag.v6_next));
        }
        if d.link.is_none() {
            d.link = link.copied();
        }
        if !frag.more {
            d.end = Some(end);
        }
        for (a, b) in holes {
            let at = d.pieces.partition_point(|(o, _)| *o < a);
            d.pieces.insert(
                at,
                (a, frag.data[a - frag.offset..b - frag.offset].to_vec()),
            );
            d.covered += b - a;
        }
        d.fragments += 1;
        d.wire_bytes += u64::from(orig_len);
        d.cost += cost;
        if let Some(s) = self.sources.get_mut(&key.src) {
            s.bytes += cost;
        }
        self.stats.held_fragments += 1;
        self.stats.held_bytes += cost as u64;
        self.stats.peak_held_bytes = self.stats.peak_held_bytes.max(self.stats.held_bytes);
        let complete = d.header.is_some() && d.end == Some(d.covered);
        if !complete {
            return Offered::Held;
        }
        let Some(d) = self.remove(&key) else {
            return Offered::Held;
        };
        let fragments = u64::from(d.fragments);
        match rebuild(d) {
            Some(r) => {
                self.stats.reassembled += 1;
                self.stats.reassembled_fragments += fragments;
                self.settled.0 += fragments - 1;
                Offered::Complete(r)
            }
            None => {
                self.count_dropped(DefragDrop::TooBig, fragments);
                Offered::Dropped
            }
        }
    }

    /// Drops every datagram held, as [`DefragDrop::Incomplete`] (the run ended, or packet
    /// time went back to a new stretch of capture).
    pub fn flush(&mut self) {
        let keys: Vec<Key> = self.order.values().copied().collect();
        for k in keys {
            self.drop_datagram(&k, DefragDrop::Incomplete);
        }
    }

    /// Drops the datagrams whose time is up at `now`.
    fn expire(&mut self, now: Timestamp) {
        while let Some((_, key)) = self.order.first_key_value() {
            let key = *key;
            let up = self
                .datagrams
                .get(&key)
                .is_none_or(|d| d.first_seen.plus_secs(TIMEOUT_SECS) < now);
            if !up {
                break;
            }
            self.drop_datagram(&key, DefragDrop::Timeout);
        }
    }

    /// Room for one more datagram of `src`: evicts its oldest, then the oldest of all, as
    /// needed. False if the caps allow none at all.
    fn make_room_for_datagram(&mut self, src: IpAddr) -> bool {
        if self.limits.source_datagrams == 0 || self.limits.max_datagrams == 0 {
            return false;
        }
        while self
            .sources
            .get(&src)
            .is_some_and(|s| s.datagrams >= self.limits.source_datagrams)
        {
            let Some(oldest) = self.oldest_of(Some(src), None) else {
                break;
            };
            self.drop_datagram(&oldest, DefragDrop::SourceCap);
        }
        while self.order.len() >= self.limits.max_datagrams {
            let Some(oldest) = self.oldest_of(None, None) else {
                break;
            };
            self.drop_datagram(&oldest, DefragDrop::TotalCap);
        }
        true
    }

    /// Room for `cost` more bytes of datagram `key`, evicting others; the reason it cannot
    /// have them if even alone it would not fit.
    fn make_room(&mut self, key: &Key, cost: usize) -> Option<DefragDrop> {
        loop {
            let used = self.sources.get(&key.src).map_or(0, |s| s.bytes);
            if used + cost <= self.limits.source_bytes {
                break;
            }
            let Some(oldest) = self.oldest_of(Some(key.src), Some(key)) else {
                return Some(DefragDrop::SourceCap);
            };
            self.drop_datagram(&oldest, DefragDrop::SourceCap);
        }
        let Some(mine) = self.datagrams.get(key).map(|d| d.cost) else {
            return Some(DefragDrop::TotalCap);
        };
        loop {
            if self.stats.held_bytes as usize + cost <= self.limits.max_bytes {
                return None;
            }
            if mine + cost > self.limits.max_bytes {
                return Some(DefragDrop::TotalCap);
            }
            let Some(oldest) = self.oldest_of(None, Some(key)) else {
                return Some(DefragDrop::TotalCap);
            };
            self.drop_datagram(&oldest, DefragDrop::TotalCap);
        }
    }

    /// The oldest datagram (of `src`, if given) other than `except`.
    fn oldest_of(&self, src: Option<IpAddr>, except: Option<&Key>) -> Option<Key> {
        self.order
            .values()
            .find(|k| src.is_none_or(|s| k.src == s) && Some(*k) != except)
            .copied()
    }

    /// Takes a datagram out of every table and count but the drop counts.
    fn remove(&mut self, key: &Key) -> Option<Datagram> {
        let Some(d) = self.datagrams.remove(key) else {
            // Never so (both tables change together), but the loops that evict and expire
            // must make progress whatever happens.
            self.order.retain(|_, k| k != key);
            return None;
        };
        self.order.remove(&d.age);
        if let Some(s) = self.sources.get_mut(&key.src) {
            s.bytes -= d.cost;
            s.datagrams -= 1;
            if s.datagrams == 0 {
                self.sources.remove(&key.src);
            }
        }
        self.stats.held_fragments -= u64::from(d.fragments);
        self.stats.held_bytes -= d.cost as u64;
        Some(d)
    }

    /// Drops a datagram held (if it is) with all its fragments, for `reason`.
    fn drop_datagram(&mut self, key: &Key, reason: DefragDrop) {
        if let Some(d) = self.remove(key) {
            self.count_dropped(reason, u64::from(d.fragments));
            self.settled.1 += d.wire_bytes;
        }
    }

    /// Drops the fragment being offered, for `reason`.
    fn drop_one(&mut self, reason: DefragDrop, orig_len: u32) -> Offered {
        self.count_dropped(reason, 1);
        self.settled.1 += u64::from(orig_len);
        Offered::Dropped
    }

    fn count_dropped(&mut self, reason: DefragDrop, fragments: u64) {
        self.stats.dropped[reason as usize] += fragments;
        self.settled.0 += fragments;
    }
}

/// How a fragment's bytes met the bytes held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overlap {
    None,
    Same,
    Conflict,
}

/// The ranges of `[offset, offset + data.len())` no piece holds yet (the bytes held first
/// win), and how the rest compared with what is held.
fn holes(
    pieces: &[(usize, Vec<u8>)],
    offset: usize,
    data: &[u8],
) -> (Vec<(usize, usize)>, Overlap) {
    let end = offset + data.len();
    let mut holes = Vec::new();
    let mut overlap = Overlap::None;
    let mut pos = offset;
    for (at, piece) in pieces {
        let piece_end = at + piece.len();
        if piece_end <= pos {
            continue;
        }
        if *at >= end {
            break;
        }
        if *at > pos {
            holes.push((pos, *at));
        }
        let (from, to) = (pos.max(*at), end.min(piece_end));
        if from < to {
            let same = piece[from - at..to - at] == data[from - offset..to - offset];
            overlap = match (overlap, same) {
                (Overlap::Conflict, _) | (_, false) => Overlap::Conflict,
                _ => Overlap::Same,
            };
        }
        pos = pos.max(piece_end);
    }
    if pos < end {
        holes.push((pos, end));
    }
    (holes, overlap)
}

/// The IP packet of a whole datagram; `None` if it would exceed 65,535 bytes.
fn rebuild(d: Datagram) -> Option<Reassembled> {
    let (mut data, v6_next) = d.header?;
    let payload = d.covered;
    match v6_next {
        None => {
            let total = u16::try_from(data.len() + payload).ok()?;
            data[2..4].copy_from_slice(&total.to_be_bytes());
            // No more fragments, offset 0 (DF cleared with them).
            data[6..8].copy_from_slice(&[0, 0]);
        }
        Some((at, next)) => {
            let len = u16::try_from(data.len() - Ipv6Packet::HEADER_LEN + payload).ok()?;
            data[4..6].copy_from_slice(&len.to_be_bytes());
            *data.get_mut(at)? = next;
        }
    }
    data.reserve(payload);
    for (_, p) in d.pieces {
        data.extend_from_slice(&p);
    }
    Some(Reassembled {
        data,
        orig_len: u32::try_from(d.wire_bytes).unwrap_or(u32::MAX),
        link: d.link,
    })
}

/// Reads a fragment's key, offset and data from a whole IP packet; `None` for a packet cut
/// short, inconsistent or not a fragment.
fn read_fragment(ip: &[u8]) -> Option<Fragment<'_>> {
    match ip.first()? >> 4 {
        4 => {
            let p = Ipv4Packet::new_checked(ip).ok()?;
            if !p.is_fragment() {
                return None;
            }
            Some(Fragment {
                key: Key {
                    src: IpAddr::V4(p.src()),
                    dst: IpAddr::V4(p.dst()),
                    id: u32::from(p.ident()),
                    proto: p.protocol(),
                },
                offset: usize::from(p.frag_offset()) * 8,
                more: p.more_fragments(),
                data: p.payload(),
                header: ip.get(..p.header_len())?,
                v6_next: None,
            })
        }
        6 => {
            let p = Ipv6Packet::new_checked(ip).ok()?;
            let payload = p.payload();
            // The unfragmentable part: hop-by-hop, routing and destination options headers
            // (RFC 8200 section 4.5), then the fragment header.
            let (mut next, mut pos, mut next_at) = (p.next_header(), 0usize, 6usize);
            loop {
                match next {
                    ip_proto::HOP_BY_HOP | ip_proto::ROUTING | ip_proto::DEST_OPTIONS => {
                        let len = (usize::from(*payload.get(pos + 1)?) + 1) * 8;
                        next = *payload.get(pos)?;
                        next_at = Ipv6Packet::HEADER_LEN + pos;
                        pos += len;
                    }
                    ip_proto::FRAGMENT => break,
                    _ => return None,
                }
            }
            let field = be16(payload, pos + 2)?;
            let data = payload.get(pos + 8..)?;
            let (offset, more) = (usize::from(field & 0xfff8), field & 1 != 0);
            if offset == 0 && !more {
                // An atomic fragment is a whole packet (RFC 6946): not ours.
                return None;
            }
            Some(Fragment {
                key: Key {
                    src: IpAddr::V6(p.src()),
                    dst: IpAddr::V6(p.dst()),
                    id: be32(payload, pos + 4)?,
                    proto: 0,
                },
                offset,
                more,
                data,
                header: ip.get(..Ipv6Packet::HEADER_LEN + pos)?,
                v6_next: Some((next_at, *payload.get(pos)?)),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "defrag_tests.rs"]
mod tests;
