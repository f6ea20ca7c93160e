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

use crate::capture::{Packet, Timestamp};
use crate::decode::{self, IcmpInfo, PacketMeta};
use crate::engine::{Engine, EngineConfig};
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
/// Batches queued per worker before the dispatcher waits (offline) or drops (live).
const QUEUE_DEPTH: usize = 16;

/// One packet inside a batch: its decoded headers, with its transport payload (and an ICMP
/// error's quote) as places in the batch's byte arena. The reading thread decodes each packet
/// once; the worker does not decode it again, and only payload bytes are copied.
#[derive(Debug, Clone, Copy)]
struct Slot {
    ts: Timestamp,
    /// The latest packet time of the input up to this packet (see `Engine::process_at`).
    clock: Timestamp,
    orig_len: u32,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    tcp_flags: u8,
    src_port: u16,
    dst_port: u16,
    tcp_seq: u32,
    payload: (u32, u32),
    icmp: Option<IcmpSlot>,
}

/// An ICMP message's `(v6, type, code)` and the place of its quote in the batch.
type IcmpSlot = ((bool, u8, u8), (u32, u32));

/// Packets for one worker: payloads copied once into one buffer (the capture buffer is
/// reused by the reader, so the bytes must move; one copy into a recycled arena, no
/// allocation per packet).
#[derive(Debug, Default)]
struct Batch {
    data: Vec<u8>,
    slots: Vec<Slot>,
}

impl Batch {
    fn with_capacity() -> Self {
        Self {
            data: Vec::with_capacity(BATCH_BYTES + 65_536),
            slots: Vec::with_capacity(BATCH_PACKETS),
        }
    }

    fn put(&mut self, bytes: &[u8]) -> (u32, u32) {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        (start as u32, bytes.len() as u32)
    }

    fn push(&mut self, pkt: &Packet<'_>, meta: &PacketMeta<'_>, clock: Timestamp) {
        let payload = self.put(meta.payload);
        let icmp = meta
            .icmp
            .map(|i| ((i.v6, i.icmp_type, i.code), self.put(i.quoted)));
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
        let bytes = |(start, len): (u32, u32)| {
            let start = start as usize;
            self.data.get(start..start + len as usize).unwrap_or(&[])
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
    /// The latest packet time dispatched (decoded packets only, as an engine counts it).
    clock: Timestamp,
    /// Offline, the reading thread classifies a share of the flows itself (see
    /// [`Pipeline::new`]).
    own: Option<OwnShare>,
}

/// The flows the reading thread classifies itself, and how many (per mille of flow hashes).
struct OwnShare {
    engine: Box<Engine>,
    permille: u64,
    records: Option<Sender<Vec<FlowRecord>>>,
    since_flush: u32,
}

/// The reading thread's work (read, decode, answers, dispatch) as a fraction of a worker's
/// whole classification, per mille: about 0.4 on the benchmark capture (callgrind: reading and
/// decoding 25-30% of all instructions, DNS answers and copying the rest).
const READER_LOAD_PERMILLE: u64 = 400;

/// The share of flows the reading thread classifies itself with `threads` classifying
/// threads in all, so that it ends up about as busy as each worker: s = (1 - r(N-1)) / N for
/// a reader load r, and none once the reader is busy enough dispatching.
fn own_share_permille(threads: usize) -> u64 {
    let n = threads as u64;
    (1000u64.saturating_sub(READER_LOAD_PERMILLE * (n - 1))) / n
}

impl Pipeline {
    /// Classifies on `threads` threads in all (at least 2). Offline, the calling thread
    /// reads, dispatches and classifies a share of the flows itself, sized so it is about as
    /// busy as each of the `threads - 1` workers: on 2 cores, two busy threads and no flow's
    /// bytes copied for the reader's share. Live (`drop_when_full`: a batch is dropped rather
    /// than wait for a busy worker), the calling thread only reads and dispatches, so it is
    /// always ready for the next packet. Finished flow records go to `records` as they end.
    pub fn new(
        sigs: Arc<SignatureSet>,
        config: EngineConfig,
        threads: usize,
        drop_when_full: bool,
        records: Option<Sender<Vec<FlowRecord>>>,
    ) -> Self {
        let total = threads.max(2);
        let shared = Arc::new(Shared::new(config.max_flows));
        let per_worker = EngineConfig {
            max_flows: (config.max_flows / total).max(1),
            ..config
        };
        let own = (!drop_when_full)
            .then(|| own_share_permille(total))
            .filter(|&p| p > 0)
            .map(|permille| {
                let mut engine = Box::new(Engine::with_shared(
                    Arc::clone(&sigs),
                    Arc::clone(&shared),
                    per_worker,
                ));
                engine.leave_dns_to_dispatcher();
                if records.is_none() {
                    engine.discard_records();
                }
                OwnShare {
                    engine,
                    permille,
                    records: records.clone(),
                    since_flush: 0,
                }
            });
        let threads = total - 1;
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
            clock: Timestamp(0),
            own,
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
                self.dispatcher.read += 1;
                self.dispatcher.bytes += u64::from(pkt.orig_len);
                self.dispatcher.skipped[skip.index()] += 1;
                return;
            }
        };
        // Answers bind names and endpoints that label later flows in any worker: they are read
        // here, in packet order, before any later packet is handed out. Queries only note who
        // searched for what, which any order gives the same; the workers read those.
        if let Some(mdns) = inspect::dns_port(&meta)
            && inspect::is_dns_response(meta.payload)
            && let Ok(msg) = inspect::dns::parse_message(meta.payload)
        {
            inspect::observe_message(&msg, &meta, mdns, pkt.ts, &self.shared);
        }
        // An ICMP error goes to the worker of the flow it quotes, which can then mark it.
        let key = meta
            .icmp
            .and_then(|i| i.quoted_packet())
            .map_or_else(|| FlowKey::of(&meta), |q| FlowKey::of_quoted(&q));
        let h = key.symmetric_hash();
        if pkt.ts > self.clock {
            self.clock = pkt.ts;
        }
        if let Some(own) = &mut self.own
            && h % 1000 < own.permille
        {
            own.engine
                .process_meta(&meta, pkt.ts, pkt.orig_len, self.clock);
            own.since_flush += 1;
            if own.since_flush >= 4096 {
                own.since_flush = 0;
                own.send_finished();
            }
            return;
        }
        let w = ((h / 1000) % self.current.len() as u64) as usize;
        self.current[w].push(pkt, &meta, self.clock);
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
        if let Some(own) = &self.own {
            tally.merge(&own.engine.snapshot_tally());
            stats.merge(own.engine.stats());
            let (f, e) = own.engine.flow_counts();
            flows += f;
            evicted += e;
        }
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
            own,
            ..
        } = self;
        drop(to_workers);
        let mut tally = Tally::new(&sigs);
        let mut stats = dispatcher;
        let mut evicted = 0;
        if let Some(mut own) = own {
            own.engine.finish();
            own.send_finished();
            tally.merge(own.engine.tally());
            stats.merge(own.engine.stats());
            evicted += own.engine.flow_counts().1;
        }
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

impl OwnShare {
    fn send_finished(&mut self) {
        let done = self.engine.take_finished();
        if let Some(r) = &self.records
            && !done.is_empty()
        {
            let _ = r.send(done);
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
