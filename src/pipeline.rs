//! The multi-threaded pipeline: the calling thread reads packets and dispatches them in
//! batches over bounded crossbeam channels to N workers, each owning the flows a symmetric
//! hash of the flow's addresses and ports gives it; a writer thread streams finished flow
//! records. Workers share only the DNS/mDNS stores (dashmap), which the dispatcher feeds in
//! packet order, so an answer is known before any later packet reaches any worker and the
//! output does not depend on the number of workers.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use std::net::IpAddr;

use crate::capture::file::Block;
use crate::capture::{Packet, Timestamp};
use crate::decode::{self, IcmpInfo, PacketMeta};
use crate::engine::{Clock, Engine, EngineConfig};
use crate::flow::FlowKey;
use crate::flow::record::FlowRecord;
use crate::inspect;
use crate::shared::Shared;
use crate::signature::SignatureSet;
use crate::tally::{PacketStats, Tally};

/// Packets per batch: enough to amortize a channel operation, small enough to keep latency
/// and the memory of queued batches low.
const BATCH_PACKETS: usize = 256;
/// Bytes of packet data per batch before it is sent early.
const BATCH_BYTES: usize = 256 * 1024;
/// Most capture blocks one batch holds on to; later packets of a batch that spans more of
/// the file are copied. A worker that gets few packets fills its batch slowly, and without
/// this bound its batch would keep up to one block (1 MiB) per packet alive.
const BLOCKS_PER_BATCH: usize = 2;
/// Batches queued per worker before the dispatcher waits (offline) or drops (live).
const QUEUE_DEPTH: usize = 16;

/// One packet inside a batch: its decoded headers, with its transport payload (and an ICMP
/// error's quote) as places in the capture's shared blocks or in the batch's own arena. The
/// reading thread decodes each packet once; the worker does not decode it again, and no byte
/// of a capture file's packet is copied.
#[derive(Debug, Clone, Copy)]
struct Slot {
    ts: Timestamp,
    /// The latest packet time of the input up to this packet (see `Engine::process_meta`).
    clock: Timestamp,
    orig_len: u32,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    tcp_flags: u8,
    src_port: u16,
    dst_port: u16,
    tcp_seq: u32,
    payload: Place,
    icmp: Option<IcmpSlot>,
}

/// Where some bytes of a batch are: `(block, start, len)`, the block being an index into the
/// batch's shared blocks, or [`ARENA`] for its own arena.
type Place = (u32, u32, u32);

/// The block index of bytes copied into the batch's arena.
const ARENA: u32 = u32::MAX;

/// An ICMP message's `(v6, type, code)` and the place of its quote.
type IcmpSlot = ((bool, u8, u8), Place);

/// Packets for one worker. Packets read from a capture file stay where the reader put them:
/// the batch holds the shared blocks they lie in (copying every payload cost the reading
/// thread a tenth of its time on the benchmark capture). Packets from a source that reuses
/// its buffer (a live interface) are copied once into a recycled arena.
#[derive(Debug, Default)]
struct Batch {
    data: Vec<u8>,
    blocks: Vec<Arc<Block>>,
    slots: Vec<Slot>,
}

impl Batch {
    fn with_capacity() -> Self {
        Self {
            // Only live packets are copied here; it grows to what they need and is reused.
            data: Vec::new(),
            blocks: Vec::new(),
            slots: Vec::with_capacity(BATCH_PACKETS),
        }
    }

    /// The place of `bytes`: in `block` if they lie there, else copied into the arena.
    fn put(&mut self, block: Option<&Arc<Block>>, bytes: &[u8]) -> Place {
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

    fn copy(&mut self, bytes: &[u8]) -> Place {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        (ARENA, start as u32, bytes.len() as u32)
    }

    fn push(&mut self, pkt: &Packet<'_>, meta: &PacketMeta<'_>, clock: Timestamp) {
        let payload = self.put(pkt.block, meta.payload);
        let icmp = meta
            .icmp
            .map(|i| ((i.v6, i.icmp_type, i.code), self.put(pkt.block, i.quoted)));
        self.slots.push(Slot {
            ts: pkt.ts,
            clock,
            orig_len: pkt.orig_len,
            src: meta.src,
            dst: meta.dst,
            proto: meta.proto,
            tcp_flags: meta.tcp_flags,
            src_port: meta.src_port,
            dst_port: meta.dst_port,
            tcp_seq: meta.tcp_seq,
            payload,
            icmp,
        });
    }

    /// The decoded headers of a slot, borrowing its bytes from this batch.
    fn meta(&self, s: &Slot) -> PacketMeta<'_> {
        let bytes = |(block, start, len): Place| {
            let whole = match block {
                ARENA => &self.data[..],
                i => self.blocks.get(i as usize).map_or(&[][..], |b| b.bytes()),
            };
            let start = start as usize;
            whole.get(start..start + len as usize).unwrap_or(&[])
        };
        PacketMeta {
            src: s.src,
            dst: s.dst,
            proto: s.proto,
            src_port: s.src_port,
            dst_port: s.dst_port,
            tcp_flags: s.tcp_flags,
            tcp_seq: s.tcp_seq,
            payload: bytes(s.payload),
            icmp: s.icmp.map(|((v6, icmp_type, code), quoted)| IcmpInfo {
                v6,
                icmp_type,
                code,
                quoted: bytes(quoted),
            }),
        }
    }

    fn is_full(&self) -> bool {
        self.slots.len() >= BATCH_PACKETS || self.data.len() >= BATCH_BYTES
    }

    fn clear(&mut self) {
        self.data.clear();
        self.blocks.clear();
        self.slots.clear();
    }
}

enum ToWorker {
    Batch(Batch),
    Snapshot(Sender<Snapshot>),
}

/// A worker's counters at a point in time.
struct Snapshot {
    tally: Tally,
    stats: PacketStats,
    flows: usize,
    evicted: u64,
}

/// What the pipeline hands back when it is done.
pub struct Outcome {
    /// Tallies of all flows.
    pub tally: Tally,
    /// Packet counters (dispatcher's skips included).
    pub stats: PacketStats,
    /// Flows evicted to respect the flow cap.
    pub evicted: u64,
    /// Packets dropped because a worker's queue was full (live capture only).
    pub pipeline_drops: u64,
}

/// Counters for a periodic (live) report.
pub struct Progress {
    /// Tallies as if every live flow ended now.
    pub tally: Tally,
    /// Packet counters.
    pub stats: PacketStats,
    /// Flows currently held.
    pub active_flows: usize,
    /// Flows evicted so far.
    pub evicted: u64,
    /// Packets dropped at full queues so far.
    pub pipeline_drops: u64,
}

/// A running pipeline.
pub struct Pipeline {
    sigs: Arc<SignatureSet>,
    shared: Arc<Shared>,
    to_workers: Vec<Sender<ToWorker>>,
    pool: Receiver<Batch>,
    pool_tx: Sender<Batch>,
    current: Vec<Batch>,
    workers: Vec<JoinHandle<(Tally, PacketStats, u64)>>,
    dispatcher: PacketStats,
    drop_when_full: bool,
    pipeline_drops: u64,
    /// The clock of the packets dispatched (decoded packets only, as an engine keeps it).
    clock: Clock,
}

impl Pipeline {
    /// Classifies on `threads` threads in all (at least 2): the calling thread reads,
    /// decodes, reads DNS answers and dispatches; `threads - 1` workers classify. (The
    /// reading thread taking a share of the flows itself measured slower on 2 cores, whatever
    /// the share: reading, decoding and dispatching keep it as busy as a worker.) Live
    /// (`drop_when_full`), a batch is dropped rather than wait for a busy worker, so the
    /// reading thread is always ready for the next packet. Finished flow records go to
    /// `records` as they end.
    pub fn new(
        sigs: Arc<SignatureSet>,
        config: EngineConfig,
        threads: usize,
        drop_when_full: bool,
        records: Option<Sender<Vec<FlowRecord>>>,
    ) -> Self {
        let threads = threads.max(2) - 1;
        let shared = Arc::new(Shared::new(config.max_flows));
        let per_worker = EngineConfig {
            max_flows: (config.max_flows / threads).max(1),
            ..config
        };
        let (pool_tx, pool) = bounded(threads * (QUEUE_DEPTH + 2));
        let mut to_workers = Vec::with_capacity(threads);
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let (tx, rx) = bounded::<ToWorker>(QUEUE_DEPTH);
            to_workers.push(tx);
            let (sigs, shared, pool_tx, records) = (
                Arc::clone(&sigs),
                Arc::clone(&shared),
                pool_tx.clone(),
                records.clone(),
            );
            let handle = std::thread::Builder::new()
                .name(format!("appletap-worker-{i}"))
                .spawn(move || worker(sigs, shared, per_worker, rx, pool_tx, records))
                .expect("spawning a worker thread");
            workers.push(handle);
        }
        Self {
            sigs,
            shared,
            to_workers,
            pool,
            pool_tx,
            current: (0..threads).map(|_| Batch::with_capacity()).collect(),
            workers,
            dispatcher: PacketStats::default(),
            drop_when_full,
            pipeline_drops: 0,
            clock: Clock::default(),
        }
    }

    /// The shared stores (DNS bindings, mDNS endpoints, Bonjour).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Dispatches one packet to the worker that owns its flow.
    pub fn push(&mut self, pkt: &Packet<'_>) {
        let meta = match decode::decode(pkt.link, pkt.data) {
            Ok(m) => m,
            Err(skip) => {
                // Undecodable packets are counted here and go no further.
                self.dispatcher.count_skipped(pkt.orig_len, skip);
                return;
            }
        };
        // Answers bind names and endpoints that label later flows in any worker: they are read
        // here, in packet order, before any later packet is handed out. Queries only note who
        // searched for what, which any order gives the same; the workers read those.
        if let Some(mdns) = inspect::dns_port(&meta)
            && inspect::is_dns_response(meta.payload)
            && let Ok(msg) = crate::wire::dns::parse_message(meta.payload)
        {
            inspect::observe_message(&msg, &meta, mdns, pkt.ts, &self.shared);
        }
        // An ICMP error goes to the worker of the flow it quotes, which can then mark it.
        let key = meta
            .icmp
            .and_then(|i| i.quoted_packet())
            .map_or_else(|| FlowKey::of(&meta), |q| FlowKey::of_quoted(&q));
        let h = key.symmetric_hash();
        let (clock, restart) = self.clock.tick(pkt.ts);
        self.dispatcher.clock_restarts += u64::from(restart);
        let w = (h % self.current.len() as u64) as usize;
        self.current[w].push(pkt, &meta, clock);
        if self.current[w].is_full() {
            self.send(w);
        }
    }

    fn send(&mut self, w: usize) {
        let fresh = self
            .pool
            .try_recv()
            .unwrap_or_else(|_| Batch::with_capacity());
        let batch = std::mem::replace(&mut self.current[w], fresh);
        if batch.slots.is_empty() {
            let _ = self.pool_tx.try_send(batch);
            return;
        }
        if self.drop_when_full {
            match self.to_workers[w].try_send(ToWorker::Batch(batch)) {
                Ok(()) => {}
                Err(TrySendError::Full(ToWorker::Batch(mut b))) => {
                    // Never silent: every dropped packet is counted and reported.
                    self.pipeline_drops += b.slots.len() as u64;
                    b.clear();
                    let _ = self.pool_tx.try_send(b);
                }
                Err(_) => {}
            }
        } else {
            let _ = self.to_workers[w].send(ToWorker::Batch(batch));
        }
    }

    /// Sends every partly filled batch (live capture: on a quiet moment, so packets are not
    /// held back).
    pub fn flush(&mut self) {
        for w in 0..self.current.len() {
            if !self.current[w].slots.is_empty() {
                self.send(w);
            }
        }
    }

    /// Counters as if every flow ended now, without ending any.
    pub fn progress(&mut self) -> Progress {
        self.flush();
        let mut tally = Tally::new(&self.sigs);
        let mut stats = self.dispatcher;
        let (mut flows, mut evicted) = (0, 0);
        let replies: Vec<Receiver<Snapshot>> = self
            .to_workers
            .iter()
            .map(|tx| {
                let (rtx, rrx) = bounded(1);
                let _ = tx.send(ToWorker::Snapshot(rtx));
                rrx
            })
            .collect();
        for r in replies {
            if let Ok(s) = r.recv() {
                tally.merge(&s.tally);
                stats.merge(&s.stats);
                flows += s.flows;
                evicted += s.evicted;
            }
        }
        Progress {
            tally,
            stats,
            active_flows: flows,
            evicted,
            pipeline_drops: self.pipeline_drops,
        }
    }

    /// Sends what is left, ends every flow and merges the workers' counters.
    pub fn finish(mut self) -> Outcome {
        self.flush();
        let Self {
            sigs,
            to_workers,
            workers,
            dispatcher,
            pipeline_drops,
            ..
        } = self;
        drop(to_workers);
        let mut tally = Tally::new(&sigs);
        let mut stats = dispatcher;
        let mut evicted = 0;
        for h in workers {
            if let Ok((t, s, e)) = h.join() {
                tally.merge(&t);
                stats.merge(&s);
                evicted += e;
            }
        }
        Outcome {
            tally,
            stats,
            evicted,
            pipeline_drops,
        }
    }
}

fn worker(
    sigs: Arc<SignatureSet>,
    shared: Arc<Shared>,
    config: EngineConfig,
    rx: Receiver<ToWorker>,
    pool: Sender<Batch>,
    records: Option<Sender<Vec<FlowRecord>>>,
) -> (Tally, PacketStats, u64) {
    let mut engine = Engine::with_shared(sigs, shared, config);
    engine.leave_dns_to_dispatcher();
    if records.is_none() {
        engine.discard_records();
    }
    let send = |done: Vec<FlowRecord>| {
        if let Some(r) = &records
            && !done.is_empty()
        {
            let _ = r.send(done);
        }
    };
    for msg in rx {
        match msg {
            ToWorker::Batch(mut b) => {
                for s in &b.slots {
                    engine.process_meta(&b.meta(s), s.ts, s.orig_len, s.clock);
                }
                send(engine.take_finished());
                b.clear();
                let _ = pool.try_send(b);
            }
            ToWorker::Snapshot(reply) => {
                let (flows, evicted) = engine.flow_counts();
                let _ = reply.send(Snapshot {
                    tally: engine.snapshot_tally(),
                    stats: *engine.stats(),
                    flows,
                    evicted,
                });
            }
        }
    }
    engine.finish();
    send(engine.take_finished());
    (
        engine.tally().clone(),
        *engine.stats(),
        engine.flow_counts().1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::file::CaptureFile;

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
        let mut batch = Batch::with_capacity();
        let mut expected: Vec<Vec<u8>> = Vec::new();
        while let Some(Ok(pkt)) = capture.next_packet() {
            let Ok(meta) = decode::decode(pkt.link, pkt.data) else {
                continue;
            };
            expected.push(meta.payload.to_vec());
            batch.push(&pkt, &meta, pkt.ts);
            assert!(batch.blocks.len() <= BLOCKS_PER_BATCH);
        }
        assert!(expected.len() > 1_000);
        assert!(!batch.data.is_empty(), "later packets were copied");
        assert!(
            batch.slots.iter().any(|s| s.payload.0 != ARENA),
            "earlier packets stayed in their blocks"
        );
        for (slot, payload) in batch.slots.iter().zip(&expected) {
            assert_eq!(batch.meta(slot).payload, &payload[..]);
        }
        batch.clear();
        assert!(
            batch.blocks.is_empty(),
            "a cleared batch lets its blocks go"
        );
    }

    #[test]
    fn packets_from_a_buffer_that_is_reused_are_copied() {
        // A live packet has no block: its bytes go to the arena.
        let frame = include_bytes!("../fixtures/packets/client_hello_gateway_icloud.bin");
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
        let meta = decode::decode(pkt.link, pkt.data).unwrap();
        let mut batch = Batch::with_capacity();
        batch.push(&pkt, &meta, pkt.ts);
        assert_eq!(batch.slots[0].payload.0, ARENA);
        assert_eq!(batch.meta(&batch.slots[0]).payload, &frame[..]);
    }
}
