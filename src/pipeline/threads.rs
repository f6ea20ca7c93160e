//! Workers on threads: the dispatcher's routed packets go in batches over bounded crossbeam
//! channels to N workers, each owning the flows a symmetric hash of the flow key gives it;
//! finished flow records stream to the writer's channel as they end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, bounded};

use super::Totals;
use super::batch::Batch;
use super::dispatch::{Dispatcher, MAX_SHARDS, Routed, Sink, shard_count};
use super::worker::{EngineConfig, Worker};
use crate::capture::{Packet, Timestamp};
use crate::counters::Counters;
use crate::decode::PacketMeta;
use crate::inspect::names::{Names, Seq};
use crate::report::record::FlowRecord;
use crate::signature::{SharedSignatures, SignatureSet};

/// Batches queued per worker before the dispatcher waits (offline) or drops (live), with few
/// workers: enough to ride out a worker's pauses without holding the reading thread.
const QUEUE_DEPTH: usize = 16;
/// Batches queued in all, shared out among the workers: each batch costs its slots (about
/// 40 KiB), and with a capture file up to two of its 1 MiB blocks, or with a live capture up
/// to 256 KiB of copied packets. Without a total, `--threads 256` queued 64 times what
/// `--threads 2` does. Up to 4 workers get the full [`QUEUE_DEPTH`], so throughput with few
/// threads is unchanged.
const QUEUED_BATCHES: usize = 4 * QUEUE_DEPTH;
/// Batches queued per worker however many workers there are: one being filled while another
/// waits keeps a worker busy.
const MIN_QUEUE_DEPTH: usize = 2;
/// Live, how long the reading thread waits for a worker with a full queue before it drops
/// the batch (counted). Waiting is backpressure, not loss: meanwhile the kernel's ring holds
/// the packets that arrive (128 MiB by default: about 220,000 packets of the benchmark
/// capture, 0.4 s at 550,000 packets/s), and the reading thread catches up once the worker
/// does.
/// Dropping at once instead lost 1-3% of a 300,000-packet replay at 540-760 kpps to pipeline
/// drops with `--threads 2` on 2 cores shared with tcpreplay, while one thread read it all;
/// waiting, both read it all (`scripts/live-throughput.sh`).
/// The bound is for a worker that stops for good (its output blocked): then the capture
/// keeps going, counts what it cannot hand on, and still ends on a signal.
pub const LIVE_QUEUE_WAIT: Duration = Duration::from_secs(1);

/// Batches queued per worker with `workers` workers: [`QUEUED_BATCHES`] shared out, between
/// [`MIN_QUEUE_DEPTH`] and [`QUEUE_DEPTH`].
pub(crate) fn queue_depth(workers: usize) -> usize {
    (QUEUED_BATCHES / workers.max(1)).clamp(MIN_QUEUE_DEPTH, QUEUE_DEPTH)
}

enum ToWorker {
    Batch(Batch),
    /// A new stretch of capture begins at this time: end every flow.
    Restart(Timestamp),
    /// Counters as of now, live flows begun by the time given counted as if they ended.
    Snapshot(Sender<(Counters, usize, u64)>, Option<Timestamp>),
    /// Follow the signature sets that replace this one (SIGHUP).
    Follow(Arc<SharedSignatures>),
}

/// The dispatcher on the calling thread and N workers on their own.
pub(crate) struct Threads {
    sigs: Arc<SignatureSet>,
    dispatcher: Dispatcher,
    out: Outbox,
    workers: Vec<JoinHandle<(Counters, u64)>>,
}

/// The dispatcher's side of the channels: a batch being filled per worker.
struct Outbox {
    to_workers: Vec<Sender<ToWorker>>,
    /// Per worker: the dispatch number after the last packet it has handled.
    done: Vec<Arc<AtomicU64>>,
    /// Per worker: the dispatch number after the last packet sent to it.
    sent: Vec<Seq>,
    pool: Receiver<Batch>,
    pool_tx: Sender<Batch>,
    current: Vec<Batch>,
    /// The worker of each shard (`shard % workers`), looked up rather than divided for: a
    /// division per packet costs the dispatcher tens of cycles.
    worker_of: [u8; MAX_SHARDS],
    drop_when_full: bool,
    pipeline_drops: u64,
}

impl Threads {
    /// Classifies on `workers` worker threads beside the calling one, which reads, decodes,
    /// reads DNS answers and dispatches. (The reading thread taking a share of the flows
    /// itself measured slower on 2 cores, whatever the share: reading, decoding and
    /// dispatching keep it as busy as a worker.) Live (`drop_when_full`), a batch is dropped
    /// only after waiting [`LIVE_QUEUE_WAIT`] for a busy worker: the kernel's ring buffers
    /// meanwhile. Finished flow records go to `records` as they end.
    pub(crate) fn new(
        sigs: Arc<SignatureSet>,
        names: Arc<Names>,
        config: EngineConfig,
        workers: usize,
        drop_when_full: bool,
        records: Option<Sender<Vec<FlowRecord>>>,
    ) -> Self {
        let shards = shard_count(config.max_flows);
        // More workers than shards would have nothing to do.
        let n = workers.clamp(1, shards);
        let depth = queue_depth(n);
        let (pool_tx, pool) = bounded(n * (depth + 2));
        let mut to_workers = Vec::with_capacity(n);
        let mut done = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = bounded::<ToWorker>(depth);
            to_workers.push(tx);
            let worker = Worker::new(
                Arc::clone(&sigs),
                Arc::clone(&names),
                config,
                (i, n),
                records.is_some(),
            );
            let (pool_tx, records) = (pool_tx.clone(), records.clone());
            let progress = Arc::new(AtomicU64::new(0));
            done.push(Arc::clone(&progress));
            let handle = std::thread::Builder::new()
                .name(format!("appletap-worker-{i}"))
                .spawn(move || run_worker(worker, rx, pool_tx, records, progress))
                .expect("spawning a worker thread");
            handles.push(handle);
        }
        Self {
            sigs,
            dispatcher: Dispatcher::new(
                names,
                shards,
                config.max_devices,
                crate::decode::defrag::DefragLimits::with_max_bytes(config.max_fragment_bytes),
            ),
            out: Outbox {
                to_workers,
                sent: vec![0; done.len()],
                done,
                pool,
                pool_tx,
                current: (0..n).map(|_| Batch::with_capacity()).collect(),
                // Below MAX_SHARDS (64), so it fits.
                worker_of: std::array::from_fn(|s| (s % n) as u8),
                drop_when_full,
                pipeline_drops: 0,
            },
            workers: handles,
        }
    }

    /// Dispatches one packet to the worker that owns its flow.
    // Always: called for each packet, its saving and restoring of registers cost 16
    // instructions a packet on the reading thread (callgrind, first 100,000 packets of the
    // benchmark capture).
    #[inline(always)]
    pub(crate) fn push(&mut self, pkt: &Packet<'_>) {
        self.dispatcher.push(pkt, &mut self.out);
    }

    /// The current input ended; the next packet starts another.
    pub(crate) fn end_of_input(&mut self) {
        self.dispatcher.end_of_input(&mut self.out);
    }

    /// Every worker follows the signature sets that replace the one in `shared`.
    pub(crate) fn follow_reloads(&mut self, shared: &Arc<SharedSignatures>) {
        self.sigs = shared.load();
        for tx in &self.out.to_workers {
            let _ = tx.send(ToWorker::Follow(Arc::clone(shared)));
        }
    }

    /// Sends every partly filled batch (live capture: on a quiet moment, so packets are not
    /// held back).
    pub(crate) fn flush(&mut self) {
        self.out.flush();
    }

    /// Counters as if every flow (begun by `settled`, if given) ended now, without ending any.
    pub(crate) fn progress(&mut self, settled: Option<Timestamp>) -> Totals {
        self.flush();
        let mut t = Totals::new(
            &self.sigs,
            *self.dispatcher.stats(),
            self.out.pipeline_drops,
        );
        let replies: Vec<Receiver<(Counters, usize, u64)>> = self
            .out
            .to_workers
            .iter()
            .map(|tx| {
                let (rtx, rrx) = bounded(1);
                let _ = tx.send(ToWorker::Snapshot(rtx, settled));
                rrx
            })
            .collect();
        for r in replies {
            if let Ok((c, flows, evicted)) = r.recv() {
                t.add_worker(&c, flows, evicted);
            }
        }
        t.names = self.dispatcher.snapshot();
        t
    }

    /// Asks every worker for its counters (live flows begun by `settled` counted as if they
    /// ended now) without waiting for them: [`PendingTotals::collect`] waits, on another
    /// thread. Nothing is flushed (packets in batches being filled count at the next request)
    /// and nothing blocks: `None` when a worker's queue is full (ask again later).
    pub(crate) fn request_progress(&mut self, settled: Option<Timestamp>) -> Option<PendingTotals> {
        // This thread is the only sender: a queue with room now still has it below.
        if self.out.to_workers.iter().any(Sender::is_full) {
            return None;
        }
        let mut replies = Vec::with_capacity(self.out.to_workers.len());
        for tx in &self.out.to_workers {
            let (rtx, rrx) = bounded(1);
            tx.try_send(ToWorker::Snapshot(rtx, settled)).ok()?;
            replies.push(rrx);
        }
        let mut base = Totals::new(
            &self.sigs,
            *self.dispatcher.stats(),
            self.out.pipeline_drops,
        );
        base.names = self.dispatcher.snapshot();
        Some(PendingTotals { base, replies })
    }

    /// Sends what is left, ends every flow and merges the workers' counters.
    pub(crate) fn finish(mut self) -> Totals {
        self.dispatcher.finish(&mut self.out);
        self.flush();
        let Self {
            sigs,
            dispatcher,
            out,
            workers,
        } = self;
        let pipeline_drops = out.pipeline_drops;
        drop(out);
        let mut t = Totals::new(&sigs, *dispatcher.stats(), pipeline_drops);
        for h in workers {
            if let Ok((c, evicted)) = h.join() {
                t.add_worker(&c, 0, evicted);
            }
        }
        t.names = dispatcher.snapshot();
        t
    }
}

/// Counters asked of the workers and not yet merged (`Classifier::progress_settled`).
pub struct PendingTotals {
    base: Totals,
    replies: Vec<Receiver<(Counters, usize, u64)>>,
}

impl PendingTotals {
    /// Totals already complete (one worker inline).
    pub(crate) fn ready(base: Totals) -> Self {
        Self {
            base,
            replies: Vec::new(),
        }
    }

    /// Waits for every worker's answer and merges them.
    pub fn collect(self) -> Totals {
        let mut t = self.base;
        for r in self.replies {
            if let Ok((c, flows, evicted)) = r.recv() {
                t.add_worker(&c, flows, evicted);
            }
        }
        t
    }
}

fn run_worker(
    mut worker: Worker,
    rx: Receiver<ToWorker>,
    pool: Sender<Batch>,
    records: Option<Sender<Vec<FlowRecord>>>,
    progress: Arc<AtomicU64>,
) -> (Counters, u64) {
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
                worker.refresh_signatures();
                for s in b.slots() {
                    let (meta, route) = b.routed(s);
                    worker.process(&meta, &route);
                }
                if let Some((_, last)) = b.seqs() {
                    // Released after the lookups above: the dispatcher may now drop the name
                    // store versions only packets up to here could see.
                    progress.store(last + 1, Ordering::Release);
                }
                send(worker.take_records());
                b.clear();
                let _ = pool.try_send(b);
            }
            ToWorker::Restart(clock) => {
                worker.restart(clock);
                send(worker.take_records());
            }
            ToWorker::Follow(shared) => worker.follow_reloads(shared),
            ToWorker::Snapshot(reply, settled) => {
                let (flows, evicted) = worker.flow_counts();
                let _ = reply.send((worker.snapshot(settled), flows, evicted));
            }
        }
    }
    worker.finish();
    send(worker.take_records());
    (worker.counters().clone(), worker.flow_counts().1)
}

impl Outbox {
    fn send(&mut self, w: usize) {
        let fresh = self
            .pool
            .try_recv()
            .unwrap_or_else(|_| Batch::with_capacity());
        let batch = std::mem::replace(&mut self.current[w], fresh);
        if batch.is_empty() {
            let _ = self.pool_tx.try_send(batch);
            return;
        }
        let end = batch.seqs().map_or(0, |(_, last)| last + 1);
        if self.drop_when_full {
            match self.to_workers[w].send_timeout(ToWorker::Batch(batch), LIVE_QUEUE_WAIT) {
                Ok(()) => self.sent[w] = end,
                Err(SendTimeoutError::Timeout(ToWorker::Batch(mut b))) => {
                    // Never silent: every dropped packet is counted and reported.
                    self.pipeline_drops += b.len() as u64;
                    b.clear();
                    let _ = self.pool_tx.try_send(b);
                }
                Err(_) => {}
            }
        } else if self.to_workers[w].send(ToWorker::Batch(batch)).is_ok() {
            self.sent[w] = end;
        }
    }

    fn flush(&mut self) {
        for w in 0..self.current.len() {
            if !self.current[w].is_empty() {
                self.send(w);
            }
        }
    }
}

impl Sink for Outbox {
    #[inline]
    fn packet(&mut self, pkt: &Packet<'_>, meta: &PacketMeta<'_>, r: &Routed) {
        let w = usize::from(self.worker_of[usize::from(r.shard) % MAX_SHARDS]);
        self.current[w].push(pkt, meta, r);
        if self.current[w].is_full() {
            self.send(w);
        }
    }

    fn horizon(&self, next: Seq) -> Seq {
        // The lowest dispatch number any worker may still look up as of: the first packet of
        // a batch still being filled, or the first not yet handled of those sent.
        let mut h = next;
        for (w, batch) in self.current.iter().enumerate() {
            if let Some((first, _)) = batch.seqs() {
                h = h.min(first);
            }
            let done = self.done[w].load(Ordering::Acquire);
            if done < self.sent[w] {
                h = h.min(done);
            }
        }
        h
    }

    fn restart(&mut self, clock: Timestamp) {
        // Every packet before the restart reaches its worker before the restart does; a
        // restart is never dropped, even live (it carries no packets and ends flows).
        self.flush();
        for tx in &self.to_workers {
            let _ = tx.send(ToWorker::Restart(clock));
        }
    }
}
