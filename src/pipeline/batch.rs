//! Batches: the packets the dispatcher hands one worker at a time, as routed, with their bytes
//! left where the capture put them (a file's shared blocks) or copied once into the batch's
//! arena (a live capture's reused buffer).

use std::net::IpAddr;
use std::sync::Arc;

use super::dispatch::Routed;
use crate::capture::SharedBuffer;
use crate::capture::{Packet, Timestamp};
use crate::decode::{IcmpInfo, LinkAddrs, PacketMeta, Tunnel, TunnelEnd, TunnelKind};
use crate::flow::FlowKey;

/// Packets per batch: enough to amortize a channel operation, small enough to keep latency
/// and the memory of queued batches low.
const BATCH_PACKETS: usize = 256;
/// Bytes of packet data per batch before it is sent early.
const BATCH_BYTES: usize = 256 * 1024;
/// Most capture blocks one batch holds on to; later packets of a batch that spans more of
/// the file are copied. A worker that gets few packets fills its batch slowly, and without
/// this bound its batch would keep up to one block (1 MiB) per packet alive.
const BLOCKS_PER_BATCH: usize = 2;

/// One packet inside a batch: its decoded headers, with its transport payload (and an ICMP
/// error's quote) as places in the capture's shared blocks or in the batch's own arena. The
/// reading thread decodes each packet once; the worker does not decode it again, and no byte
/// of a capture file's packet is copied.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    /// Where the packet goes, as routed, kept whole: copied field by field it cost 6
    /// instructions a packet more on the reading thread (callgrind).
    route: Routed,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    tcp_flags: u8,
    src_port: u16,
    dst_port: u16,
    tcp_seq: u32,
    payload: Place,
    /// Which of `icmp` and `tunnel` the packet has ([`HAS_ICMP`], [`HAS_TUNNEL`]); the other
    /// is left from an earlier packet and means nothing.
    extras: u8,
    icmp: IcmpSlot,
    /// The link addresses' bytes, copied (Ethernet's 12, an 802.11 header's 24 or 30;
    /// `LinkAddrs::from_bytes` tells them apart), `link_len` of them (0: none): copying costs
    /// less than placing them (a second look-up of the block, 26 instructions a packet by
    /// callgrind). Bytes past `link_len` are left from an earlier packet and mean nothing.
    link: [u8; LINK_ADDRS_MAX],
    link_len: u8,
    /// A tunnelled packet's outermost IP header's place, and the rest of its [`Tunnel`].
    tunnel: TunnelSlot,
}

impl Slot {
    const EMPTY: Slot = Slot {
        route: Routed {
            key: FlowKey::NONE,
            quoted_src: None,
            ts: Timestamp(0),
            orig_len: 0,
            clock: Timestamp(0),
            shard: 0,
            seq: 0,
            dns_valid: None,
        },
        src: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        dst: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        proto: 0,
        tcp_flags: 0,
        src_port: 0,
        dst_port: 0,
        tcp_seq: 0,
        payload: (ARENA, 0, 0),
        extras: 0,
        icmp: ((false, 0, 0), (ARENA, 0, 0)),
        link: [0; LINK_ADDRS_MAX],
        link_len: 0,
        tunnel: ((ARENA, 0, 0), TunnelKind::Gre, 0, TunnelEnd::Inner),
    };
}

/// A [`Tunnel`]'s outer header place, kind, depth and end.
type TunnelSlot = (Place, TunnelKind, u8, TunnelEnd);

/// Where some bytes of a batch are: `(block, start, len)`, the block being an index into the
/// batch's shared blocks, or [`ARENA`] for its own arena.
type Place = (u32, u32, u32);

/// The longest link addresses a packet has: a 4-address 802.11 header.
const LINK_ADDRS_MAX: usize = crate::wire::ieee80211::DataFrame::WDS_LEN;

/// The block index of bytes copied into the batch's arena.
const ARENA: u32 = u32::MAX;

/// An ICMP message's `(v6, type, code)` and the place of its quote.
type IcmpSlot = ((bool, u8, u8), Place);

/// [`Slot::extras`]: the packet has ICMP details.
const HAS_ICMP: u8 = 1;
/// [`Slot::extras`]: the packet came through a tunnel.
const HAS_TUNNEL: u8 = 2;

/// Packets for one worker. Packets read from a capture file stay where the reader put them:
/// the batch holds the shared blocks they lie in (copying every payload cost the reading
/// thread a tenth of its time on the benchmark capture). Packets from a source that reuses
/// its buffer (a live interface) are copied once into a recycled arena.
#[derive(Debug, Default)]
pub(super) struct Batch {
    data: Vec<u8>,
    blocks: Vec<Arc<SharedBuffer>>,
    /// Slots kept from batch to batch (a cleared batch keeps them, stale): the first `len`
    /// are this batch's packets.
    slots: Vec<Slot>,
    len: usize,
}

impl Batch {
    pub(super) fn with_capacity() -> Self {
        Self {
            // Only live packets are copied here; it grows to what they need and is reused.
            data: Vec::new(),
            blocks: Vec::new(),
            slots: Vec::with_capacity(BATCH_PACKETS),
            len: 0,
        }
    }

    /// The packets of this batch.
    pub(super) fn slots(&self) -> &[Slot] {
        self.slots.get(..self.len).unwrap_or_default()
    }

    /// How many packets it holds.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The place of `bytes`: in `block` if they lie there, else copied into the arena.
    #[inline(always)]
    fn put(&mut self, block: Option<&Arc<SharedBuffer>>, bytes: &[u8]) -> Place {
        if let Some(b) = block
            && let Some((start, len)) = b.place_of(bytes)
        {
            let held = self.blocks.last().is_some_and(|l| Arc::ptr_eq(l, b));
            if !held && self.blocks.len() >= BLOCKS_PER_BATCH {
                return self.copy(bytes);
            }
            if !held {
                self.blocks.push(Arc::clone(b));
            }
            // Blocks and their lengths are far below u32::MAX (a block is about 1 MiB).
            return ((self.blocks.len() - 1) as u32, start as u32, len as u32);
        }
        self.copy(bytes)
    }

    #[inline(never)]
    fn copy(&mut self, bytes: &[u8]) -> Place {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        (ARENA, start as u32, bytes.len() as u32)
    }

    /// Adds a routed packet of `pkt`.
    // The slot is filled where it lies, one kept from an earlier batch: built as a value and
    // pushed, it was written on the stack and copied (its 200 bytes read back right after
    // being written), 80 instructions a packet on the reading thread (callgrind, first
    // 100,000 packets of the benchmark capture).
    pub(super) fn push(&mut self, pkt: &Packet<'_>, meta: &PacketMeta<'_>, r: &Routed) {
        let payload = self.put(pkt.block, meta.payload);
        // ICMP and tunnels are rare: a flag says whether the slot has them, and only then are
        // they placed and written (out of line). Written as two `Option`s every time, they
        // cost 26 instructions a packet on the reading thread (callgrind, first 100,000
        // packets of the benchmark capture).
        let extras = (meta.icmp.is_some() || meta.tunnel.is_some())
            .then(|| self.place_extras(pkt.block, meta));
        if self.len == self.slots.len() {
            self.slots.push(Slot::EMPTY);
        }
        let Some(s) = self.slots.get_mut(self.len) else {
            return;
        };
        self.len += 1;
        s.route = *r;
        s.src = meta.src;
        s.dst = meta.dst;
        s.proto = meta.proto;
        s.tcp_flags = meta.tcp_flags;
        s.src_port = meta.src_port;
        s.dst_port = meta.dst_port;
        s.tcp_seq = meta.tcp_seq;
        s.payload = payload;
        match extras {
            None => s.extras = 0,
            Some((flags, icmp, tunnel)) => {
                s.extras = flags;
                s.icmp = icmp;
                s.tunnel = tunnel;
            }
        }
        let bytes = meta.link.map_or(&[][..], |l| l.bytes());
        // Ethernet's 12 bytes, the bulk, as a copy of known length (not a call to memcpy).
        if let Some(eth) = bytes.first_chunk::<12>()
            && bytes.len() == 12
        {
            s.link[..12].copy_from_slice(eth);
            s.link_len = 12;
        } else {
            let len = bytes.len().min(LINK_ADDRS_MAX);
            s.link[..len].copy_from_slice(&bytes[..len]);
            // At most LINK_ADDRS_MAX (30).
            s.link_len = len as u8;
        }
    }

    /// The places of a packet's ICMP quote and tunnel header, those it has flagged.
    #[cold]
    #[inline(never)]
    fn place_extras(
        &mut self,
        block: Option<&Arc<SharedBuffer>>,
        meta: &PacketMeta<'_>,
    ) -> (u8, IcmpSlot, TunnelSlot) {
        let (mut flags, mut icmp, mut tunnel) = (0, Slot::EMPTY.icmp, Slot::EMPTY.tunnel);
        if let Some(i) = meta.icmp {
            flags |= HAS_ICMP;
            icmp = ((i.v6, i.icmp_type, i.code), self.put(block, i.quoted));
        }
        if let Some(t) = meta.tunnel {
            flags |= HAS_TUNNEL;
            tunnel = (self.put(block, t.outer), t.kind, t.depth, t.end);
        }
        (flags, icmp, tunnel)
    }

    /// The routed packet of a slot, borrowing its bytes from this batch.
    pub(super) fn routed<'a>(&'a self, s: &'a Slot) -> (PacketMeta<'a>, Routed) {
        let bytes = |(block, start, len): Place| {
            let whole = match block {
                ARENA => &self.data[..],
                i => self.blocks.get(i as usize).map_or(&[][..], |b| b.bytes()),
            };
            let start = start as usize;
            whole.get(start..start + len as usize).unwrap_or(&[])
        };
        let meta = PacketMeta {
            src: s.src,
            dst: s.dst,
            proto: s.proto,
            src_port: s.src_port,
            dst_port: s.dst_port,
            tcp_flags: s.tcp_flags,
            tcp_seq: s.tcp_seq,
            payload: bytes(s.payload),
            icmp: (s.extras & HAS_ICMP != 0).then(|| {
                let ((v6, icmp_type, code), quoted) = s.icmp;
                IcmpInfo {
                    v6,
                    icmp_type,
                    code,
                    quoted: bytes(quoted),
                }
            }),
            link: LinkAddrs::from_bytes(&s.link[..usize::from(s.link_len)]),
            tunnel: (s.extras & HAS_TUNNEL != 0).then(|| {
                let (outer, kind, depth, end) = s.tunnel;
                Tunnel {
                    outer: bytes(outer),
                    kind,
                    depth,
                    end,
                }
            }),
        };
        (meta, s.route)
    }

    /// The dispatch numbers of its first and last packets.
    pub(super) fn seqs(&self) -> Option<(u64, u64)> {
        let slots = self.slots();
        Some((slots.first()?.route.seq, slots.last()?.route.seq))
    }

    pub(super) fn is_full(&self) -> bool {
        self.len >= BATCH_PACKETS || self.data.len() >= BATCH_BYTES
    }

    pub(super) fn clear(&mut self) {
        self.data.clear();
        self.blocks.clear();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::file::CaptureFile;
    use crate::inspect::names::Names;
    use crate::pipeline::dispatch::{Dispatcher, Sink};

    /// Fills one batch with whatever the dispatcher routes, and the payloads it saw.
    struct Fill(Batch, Vec<Vec<u8>>);

    impl Sink for Fill {
        fn packet(&mut self, pkt: &Packet<'_>, meta: &PacketMeta<'_>, r: &Routed) {
            self.1.push(meta.payload.to_vec());
            self.0.push(pkt, meta, r);
            assert!(self.0.blocks.len() <= BLOCKS_PER_BATCH);
        }

        fn restart(&mut self, _clock: Timestamp) {}

        fn horizon(&self, next: u64) -> u64 {
            next
        }
    }

    fn shared_capture(name: &str) -> CaptureFile {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/pcaps/");
        CaptureFile::open(std::path::Path::new(&format!("{dir}{name}"))).unwrap()
    }

    #[test]
    fn a_batch_that_spans_the_file_holds_two_blocks_and_copies_the_rest() {
        // A batch that is never sent (a worker that gets few packets) while the reader goes
        // through 2.3 MB: it keeps two blocks alive at most, and every packet reads back the
        // same through it, whether it lies in a held block or was copied.
        let mut capture = shared_capture("mercury__capture2.pcap");
        let mut dispatcher = Dispatcher::new(Arc::new(Names::new(1000)), 1, 16, Default::default());
        let mut fill = Fill(Batch::with_capacity(), Vec::new());
        while let Some(Ok(pkt)) = capture.next_packet() {
            dispatcher.push(&pkt, &mut fill);
        }
        dispatcher.finish(&mut fill);
        let Fill(mut batch, expected) = fill;
        assert!(expected.len() > 1_000);
        assert!(!batch.data.is_empty(), "later packets were copied");
        assert!(
            batch.slots().iter().any(|s| s.payload.0 != ARENA),
            "earlier packets stayed in their blocks"
        );
        for (slot, payload) in batch.slots().iter().zip(&expected) {
            assert_eq!(batch.routed(slot).0.payload, &payload[..]);
        }
        batch.clear();
        assert!(
            batch.blocks.is_empty(),
            "a cleared batch lets its blocks go"
        );
    }

    #[test]
    fn a_reused_slot_keeps_nothing_of_the_packet_before() {
        // Slots outlive a cleared batch and are filled in place: an Ethernet packet's link
        // addresses must not show through in the raw IP packet that takes its slot next.
        let mut capture = shared_capture("mercury__capture2.pcap");
        let mut dispatcher = Dispatcher::new(Arc::new(Names::new(1000)), 1, 16, Default::default());
        let mut fill = Fill(Batch::with_capacity(), Vec::new());
        let first = capture.next_packet().unwrap().unwrap();
        dispatcher.push(&first, &mut fill);
        assert!(fill.0.routed(&fill.0.slots()[0]).0.link.is_some());
        fill.0.clear();
        assert!(fill.0.is_empty() && fill.0.slots().is_empty());
        let ip = [
            0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 192, 168, 2, 17, 17, 248, 191, 172, 0xc3,
            0x50, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
        ];
        let raw = Packet {
            ts: first.ts,
            link: crate::capture::LinkType::RAW,
            data: &ip,
            orig_len: 40,
            block: None,
        };
        dispatcher.push(&raw, &mut fill);
        assert_eq!(fill.0.len(), 1);
        let (meta, _) = fill.0.routed(&fill.0.slots()[0]);
        assert!(meta.link.is_none(), "{:?}", meta.link);
        assert_eq!((meta.src_port, meta.dst_port), (0xc350, 443));
    }

    #[test]
    fn packets_from_a_buffer_that_is_reused_are_copied() {
        // A live packet has no block: its bytes go to the arena.
        let frame = include_bytes!("../../fixtures/packets/client_hello_gateway_icloud.bin");
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 192, 168, 2, 17, 17, 248, 191, 172, 0xc3,
            0x50, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
        ];
        let total = (ip.len() + frame.len()) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(frame);
        let pkt = Packet {
            ts: Timestamp(1),
            link: crate::capture::LinkType::RAW,
            data: &ip,
            orig_len: u32::from(total),
            block: None,
        };
        let mut fill = Fill(Batch::with_capacity(), Vec::new());
        Dispatcher::new(Arc::new(Names::new(10)), 1, 16, Default::default()).push(&pkt, &mut fill);
        let batch = fill.0;
        assert_eq!(batch.slots()[0].payload.0, ARENA);
        assert_eq!(batch.routed(&batch.slots()[0]).0.payload, &frame[..]);
    }
}
