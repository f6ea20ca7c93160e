//! The classifier: one packet path for any number of threads. The [`dispatch`]er decodes each
//! packet once, keeps the clock, reads DNS answers in packet order and keys the packet to its
//! flow; [`worker`]s own the flows, inspect, label and count them. `--threads 1` runs one
//! worker inline ([`Engine`]); more run on threads ([`threads`]) fed in [`batch`]es. Either
//! way it takes bytes and packet timestamps and never reads a clock or a socket, so a capture
//! replays to the same output for any number of threads.

pub mod batch;
pub mod clock;
pub mod dispatch;
pub mod threads;
pub mod worker;

use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::capture::file::CaptureFile;
use crate::capture::{OwnedPacket, Packet, Timestamp};
use crate::counters::{Counters, PacketStats};
use crate::decode::defrag::DefragLimits;
use crate::inspect::names::{Names, NamesSnapshot};
use crate::report::record::FlowRecord;
use crate::signature::{SharedSignatures, SignatureSet};

pub use clock::{CLOCK_JUMP_BACK, Clock};
pub use dispatch::Routed;
pub use worker::EngineConfig;

use dispatch::Dispatcher;
pub use threads::PendingTotals;
use threads::Threads;
use worker::Worker;

/// What a classifier counted: merged over the dispatcher and every worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    /// Packets, per-service tallies and connection outcomes.
    pub counters: Counters,
    /// Flows held now (0 once finished).
    pub active_flows: usize,
    /// Flows evicted to respect the flow cap.
    pub evicted: u64,
    /// Packets dropped because a worker's queue stayed full (live capture only).
    pub pipeline_drops: u64,
    /// The name stores at the time.
    pub names: NamesSnapshot,
}

impl Totals {
    fn new(sigs: &SignatureSet, dispatcher: PacketStats, pipeline_drops: u64) -> Self {
        let mut counters = Counters::new(sigs);
        counters.packets = dispatcher;
        Self {
            counters,
            active_flows: 0,
            evicted: 0,
            pipeline_drops,
            names: NamesSnapshot::default(),
        }
    }

    fn add_worker(&mut self, c: &Counters, active_flows: usize, evicted: u64) {
        self.counters.merge(c);
        self.active_flows += active_flows;
        self.evicted += evicted;
    }
}

/// The dispatcher with one worker inline, on the calling thread (`--threads 1`).
pub struct Engine {
    sigs: Arc<SignatureSet>,
    dispatcher: Dispatcher,
    worker: Worker,
}

impl Engine {
    /// A classifier on the calling thread, keeping finished flows' records for
    /// [`Engine::take_finished`].
    pub fn new(sigs: Arc<SignatureSet>, config: EngineConfig) -> Self {
        Self::build(sigs, config, true)
    }

    /// A classifier on the calling thread that keeps no records (only counters), as
    /// `appletap read` without `--flows`.
    pub fn without_records(sigs: Arc<SignatureSet>, config: EngineConfig) -> Self {
        Self::build(sigs, config, false)
    }

    fn build(sigs: Arc<SignatureSet>, config: EngineConfig, keep_records: bool) -> Self {
        let names = Arc::new(Names::for_max_flows(config.max_flows));
        Self::with_names(sigs, config, keep_records, names)
    }

    fn with_names(
        sigs: Arc<SignatureSet>,
        config: EngineConfig,
        keep_records: bool,
        names: Arc<Names>,
    ) -> Self {
        Self {
            worker: Worker::new(
                Arc::clone(&sigs),
                Arc::clone(&names),
                config,
                (0, 1),
                keep_records,
            ),
            dispatcher: Dispatcher::new(
                names,
                dispatch::shard_count(config.max_flows),
                config.max_devices,
                DefragLimits::with_max_bytes(config.max_fragment_bytes),
            ),
            sigs,
        }
    }

    /// Handles one packet.
    #[inline(always)]
    pub fn process(&mut self, pkt: &Packet<'_>) {
        self.dispatcher.push(pkt, &mut self.worker);
    }

    /// The current input ended; the next packet starts another (a capture read again, or
    /// another file). An input that starts earlier than the last one ended is a new stretch.
    pub fn end_of_input(&mut self) {
        self.dispatcher.end_of_input(&mut self.worker);
    }

    /// Ends every flow (end of input, or shutdown).
    pub fn finish(&mut self) {
        self.dispatcher.finish(&mut self.worker);
        self.worker.finish();
    }

    /// Takes the records of flows that ended since the last call.
    pub fn take_finished(&mut self) -> Vec<FlowRecord> {
        self.worker.take_records()
    }

    /// Packet counters so far.
    pub fn stats(&self) -> PacketStats {
        let mut s = *self.dispatcher.stats();
        s.merge(&self.worker.counters().packets);
        s
    }

    /// Everything counted so far (finished flows only) and the name stores now; with
    /// `live_flows`, as if every flow held ended now (nothing changes).
    pub fn totals(&self, live_flows: bool) -> Totals {
        let mut t = Totals::new(&self.sigs, *self.dispatcher.stats(), 0);
        let (active, evicted) = self.worker.flow_counts();
        if live_flows {
            t.add_worker(&self.worker.snapshot(None), active, evicted);
        } else {
            t.add_worker(self.worker.counters(), active, evicted);
        }
        t.names = self.dispatcher.snapshot();
        t
    }

    /// Everything counted so far, with the flows held that began at or before `settled` counted
    /// as if they ended now (nothing changes): what the metrics publish while capturing.
    pub fn totals_settled(&self, settled: Timestamp) -> Totals {
        let mut t = Totals::new(&self.sigs, *self.dispatcher.stats(), 0);
        let (active, evicted) = self.worker.flow_counts();
        t.add_worker(&self.worker.snapshot(Some(settled)), active, evicted);
        t.names = self.dispatcher.snapshot();
        t
    }

    /// Flows currently held, and flows evicted to respect the cap.
    pub fn flow_counts(&self) -> (usize, u64) {
        self.worker.flow_counts()
    }

    /// The name stores (DNS bindings, mDNS endpoints, Bonjour).
    pub fn names(&self) -> &Arc<Names> {
        self.dispatcher.names()
    }
}

/// Settings of a classifier run.
#[derive(Debug, Clone, Copy)]
pub struct ClassifierConfig {
    /// Flow table settings (the flow cap is shared out among workers).
    pub engine: EngineConfig,
    /// Threads in all: 1 runs inline; N runs N - 1 workers beside the reading thread.
    pub threads: usize,
    /// Live capture: drop a batch (counted) rather than wait longer than
    /// [`threads::LIVE_QUEUE_WAIT`] for a busy worker (a file's reader waits as long as it
    /// takes).
    pub drop_when_full: bool,
}

/// The classifier a command runs: inline, or on threads.
pub struct Classifier(Mode);

enum Mode {
    /// One worker on the calling thread; its records go to the channel every few thousand
    /// packets.
    Inline {
        engine: Box<Engine>,
        records: Option<Sender<Vec<FlowRecord>>>,
        /// Packets since records were last sent.
        since_flush: u32,
    },
    /// Workers on threads.
    Threads(Box<Threads>),
}

/// Packets between two hand-overs of an inline worker's records to the writer.
const INLINE_RECORD_EVERY: u32 = 4096;

/// One packet through the inline worker, and its records to the writer every
/// [`INLINE_RECORD_EVERY`] packets: what [`Classifier::push`] and
/// [`Classifier::push_buffered`] do for each packet inline.
#[inline(always)]
fn push_inline(
    engine: &mut Engine,
    records: Option<&Sender<Vec<FlowRecord>>>,
    since_flush: &mut u32,
    pkt: &Packet<'_>,
) {
    engine.process(pkt);
    *since_flush += 1;
    if *since_flush >= INLINE_RECORD_EVERY {
        *since_flush = 0;
        engine.worker.refresh_signatures();
        send_records(records, engine.take_finished());
    }
}

impl Classifier {
    /// A classifier of `config.threads` threads; records of finished flows go to `records`
    /// (none are made without it).
    pub fn new(
        sigs: Arc<SignatureSet>,
        config: ClassifierConfig,
        records: Option<Sender<Vec<FlowRecord>>>,
    ) -> Self {
        if config.threads <= 1 {
            let engine = Box::new(Engine::build(sigs, config.engine, records.is_some()));
            Self(Mode::Inline {
                engine,
                records,
                since_flush: 0,
            })
        } else {
            // N threads in all: this one reads, decodes and dispatches, N - 1 workers
            // classify. (On a 2-core machine three busy threads measured slower than two.)
            let names = Arc::new(Names::for_max_flows(config.engine.max_flows));
            Self(Mode::Threads(Box::new(Threads::new(
                sigs,
                names,
                config.engine,
                config.threads - 1,
                config.drop_when_full,
                records,
            ))))
        }
    }

    /// A classifier on the calling thread that feeds and reads `names`, stores shared with
    /// other classifiers (live capture with several readers: see
    /// [`Names::shared_by_dispatchers`]), so a DNS answer one of them reads labels the flows
    /// of all. Records of finished flows go to `records`.
    ///
    /// With `reader` (this reader's index, the number of readers), ICMP errors quoting a flow
    /// it does not hold, and tunnelled packets of flows another reader handles, are kept for
    /// [`Classifier::take_passed_on`] rather than handled (another reader may hold the flow).
    pub fn inline_sharing(
        sigs: Arc<SignatureSet>,
        config: EngineConfig,
        records: Option<Sender<Vec<FlowRecord>>>,
        names: Arc<Names>,
        reader: Option<(usize, usize)>,
    ) -> Self {
        let mut engine = Box::new(Engine::with_names(sigs, config, records.is_some(), names));
        engine.worker.pass_on_unheld_icmp(reader);
        Self(Mode::Inline {
            engine,
            records,
            since_flush: 0,
        })
    }

    /// Classifies one packet.
    #[inline]
    pub fn push(&mut self, pkt: &Packet<'_>) {
        match &mut self.0 {
            Mode::Inline {
                engine,
                records,
                since_flush,
            } => push_inline(engine, records.as_ref(), since_flush, pkt),
            Mode::Threads(t) => t.push(pkt),
        }
    }

    /// Classifies the packets `cap` holds in memory already, up to `max` of them, and returns
    /// how many (see [`CaptureFile::buffered_packets`]: fewer does not mean the capture ended).
    // One loop per mode, the mode matched once for all of them: through `push` the match, and
    // the call that held it, cost 18 instructions a packet (callgrind, first 100,000 packets
    // of the benchmark capture).
    pub fn push_buffered(&mut self, cap: &mut CaptureFile, max: u64) -> u64 {
        match &mut self.0 {
            Mode::Inline {
                engine,
                records,
                since_flush,
            } => cap.buffered_packets(max, |pkt| {
                push_inline(engine, records.as_ref(), since_flush, pkt);
            }),
            Mode::Threads(t) => cap.buffered_packets(max, |pkt| t.push(pkt)),
        }
    }

    /// Classifies with the set in `shared`, and from then on with each set that replaces it
    /// (live capture, SIGHUP). Workers take a new set between batches (inline, every
    /// few thousand packets and when the link is quiet), so the packet path takes no lock.
    pub fn follow_reloads(&mut self, shared: &Arc<SharedSignatures>) {
        match &mut self.0 {
            Mode::Inline { engine, .. } => {
                engine.sigs = shared.load();
                engine.worker.follow_reloads(Arc::clone(shared));
            }
            Mode::Threads(t) => t.follow_reloads(shared),
        }
    }

    /// The ICMP errors kept for another reader since the last call (see
    /// [`Classifier::inline_sharing`]), uncounted here.
    pub fn take_passed_on(&mut self) -> Vec<OwnedPacket> {
        match &mut self.0 {
            Mode::Inline { engine, .. } => engine.worker.take_passed_on(),
            Mode::Threads(_) => Vec::new(),
        }
    }

    /// Classifies one packet, handling it here even if it is an ICMP error quoting a flow
    /// not held here: every other reader has been asked and holds none.
    pub fn push_last_stop(&mut self, pkt: &Packet<'_>) {
        if let Mode::Inline { engine, .. } = &mut self.0 {
            engine.worker.last_stop(true);
            engine.process(pkt);
            engine.worker.last_stop(false);
        } else {
            self.push(pkt);
        }
    }

    /// The current input ended; the next packet starts another.
    pub fn end_of_input(&mut self) {
        match &mut self.0 {
            Mode::Inline { engine, .. } => engine.end_of_input(),
            Mode::Threads(t) => t.end_of_input(),
        }
    }

    /// Nothing arrived for a moment: hand on what is queued (live capture): batches to the
    /// workers, or an inline worker's finished records to the writer (otherwise a quiet link
    /// would hold them until 4096 packets more had come).
    pub fn idle(&mut self) {
        match &mut self.0 {
            Mode::Inline {
                engine,
                records,
                since_flush,
            } => {
                *since_flush = 0;
                engine.worker.refresh_signatures();
                send_records(records.as_ref(), engine.take_finished());
            }
            Mode::Threads(t) => t.flush(),
        }
    }

    /// Counters as if every flow held ended now, without ending any.
    pub fn progress(&mut self) -> Totals {
        match &mut self.0 {
            Mode::Inline { engine, .. } => engine.totals(true),
            Mode::Threads(t) => t.progress(None),
        }
    }

    /// Counters as if every flow held that began at or before `settled` ended now, without
    /// ending any; younger flows are left out until they are that old or end. Counted this way,
    /// every per-service count only grows from one call to the next while `settled` does (a
    /// flow is counted once its label and outcome have settled), which the metrics need. With
    /// worker threads this only asks them: [`PendingTotals::collect`] waits for the answers (on
    /// another thread, so the reading thread never waits); `None` when a worker's queue is full.
    pub fn progress_settled(&mut self, settled: Timestamp) -> Option<PendingTotals> {
        match &mut self.0 {
            Mode::Inline { engine, .. } => {
                Some(PendingTotals::ready(engine.totals_settled(settled)))
            }
            Mode::Threads(t) => t.request_progress(Some(settled)),
        }
    }

    /// Ends every flow and returns the final counters.
    pub fn finish(self) -> Totals {
        match self.0 {
            Mode::Inline {
                mut engine,
                records,
                ..
            } => {
                engine.finish();
                send_records(records.as_ref(), engine.take_finished());
                let mut t = engine.totals(false);
                t.active_flows = 0;
                t
            }
            Mode::Threads(t) => t.finish(),
        }
    }
}

fn send_records(to: Option<&Sender<Vec<FlowRecord>>>, done: Vec<FlowRecord>) {
    if let Some(r) = to
        && !done.is_empty()
    {
        let _ = r.send(done);
    }
}
