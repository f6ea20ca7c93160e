//! `appletap live --capture af-packet --readers N`: N AF_PACKET sockets in one fanout group,
//! each read on its own thread into its own classifier, for links one reading thread cannot
//! carry. The kernel hands every flow to one socket (a symmetric hash of addresses and ports),
//! so each classifier holds whole flows; the name stores (DNS answers, mDNS endpoints,
//! Bonjour) are shared, so an answer one reader saw labels the flows of every reader; reports
//! merge the readers' counters. The report is thus the same for any N.
//!
//! An ICMP error is hashed by its own addresses, not by the flow it quotes, so it may reach a
//! reader that does not hold that flow: that reader passes it on, round the ring of readers,
//! until one holds the flow (and notes why the flow got no answer) or every other one has been
//! asked (then it goes on to the reader the quoted flow's key chooses, which counts it as a
//! flow of its own, as one reader would have: every such error about a flow makes one flow,
//! whichever reader the kernel handed it to). The kernel's hash has a secret seed, so which
//! reader holds a flow cannot be computed. Tunnelled packets are classified by their inner
//! flow (see `decode::tunnel`), but the hash sees into GRE and IP in IP only (and only so
//! deep), not into UDP tunnels, whose two directions may differ in outer ports: such packets
//! go on, round the ring, to the reader their flow's key chooses (the decapsulation is the
//! decoder's, so each reader finds the same key).
//!
//! IP fragments: the kernel hashes every fragment of a datagram alike (addresses and protocol,
//! no ports), so one reader gets them all and reassembles the datagram; each reader has its
//! own reassembler, caps included (`--max-fragment-bytes` is per reader), and the reports add
//! their counters. The reassembled datagram is a packet of that reader's: where its flow's
//! unfragmented packets hash (with ports) to another reader, that flow is counted by both.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};

use super::output::{FlowSink, Writer, output_closed, outputs_gone};
use super::{Run, classifier_config, install_signal_handler, stopping};
use crate::capture::af_packet::{AfPacketCapture, ReadOutcome};
use crate::capture::live::CaptureDrops;
use crate::capture::{OwnedPacket, Timestamp};
use crate::cli::{CaptureBackend, ClassifyOpt};
use crate::inspect::names::Names;
use crate::pipeline::{Classifier, Totals};
use crate::report::Report;
use crate::signature::SharedSignatures;

/// How long a reader waits for a ring block before it looks at its mailbox and the stop flag:
/// the bound on how late a report or the end of a run can be.
const READ_TIMEOUT: Duration = Duration::from_millis(100);
/// How often the reporting thread looks at signals, the clock and its outputs.
const OUTPUT_POLL: Duration = Duration::from_millis(100);
/// At a signal or the end of `--duration`, how long live capture (either back-end) goes on
/// reading what the kernel already delivered to its ring, without waiting for more, before the
/// final report.
pub(super) const DRAIN: Duration = Duration::from_millis(1000);
/// How long the reporting thread waits for a reader's counters before it reports without them.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(5);

/// Refuses option combinations that cannot mean what they say.
///
/// # Errors
/// Which option to drop or add.
pub(super) fn check_options(
    backend: CaptureBackend,
    readers: Option<u64>,
    classify: &ClassifyOpt,
) -> Result<()> {
    match backend {
        CaptureBackend::Libpcap if readers.is_some() => {
            bail!("--readers needs --capture af-packet (libpcap reads on one thread)")
        }
        CaptureBackend::AfPacket if classify.threads.is_some() => bail!(
            "--threads does not apply to --capture af-packet: each of the --readers N readers classifies on its own thread"
        ),
        _ => Ok(()),
    }
}

/// What a reader hands back: its counters, its socket's drop counters.
type Snapshot = (Totals, CaptureDrops);

/// A request for a reader's counters: all its flows (`None`, for a report), or only those
/// that began at or before the given packet time (for the metrics, see
/// [`Classifier::progress_settled`]); and where to answer.
type Ask = (Option<Timestamp>, Sender<Snapshot>);

/// A reader's end: its final counters and drops, and the error that stopped it, if any.
type Ended = (Totals, CaptureDrops, Option<String>);

/// Settings of a capture through AF_PACKET readers.
pub(super) struct ReadersParams<'a> {
    pub(super) iface: &'a str,
    pub(super) filter: Option<&'a str>,
    pub(super) snaplen: i32,
    pub(super) interval: Option<Duration>,
    pub(super) duration: Option<u64>,
    pub(super) classify: &'a ClassifyOpt,
    /// The signature set, replaced on SIGHUP.
    pub(super) sigs: &'a Arc<SharedSignatures>,
    /// Sockets reading in parallel (default: the machine's cores).
    pub(super) readers: Option<u64>,
    /// `--buffer-size`: MiB of ring shared out among the sockets.
    pub(super) buffer_mib: u32,
    /// Serve metrics here (`--listen`).
    pub(super) listen: Option<std::net::SocketAddr>,
}

/// Builds a report from merged counters, drops and the error that ended the capture.
pub(super) type MakeReport<'a> = &'a dyn Fn(&Totals, CaptureDrops, Option<String>) -> Report;

/// Captures with `p.readers` AF_PACKET sockets until a signal, the duration or a capture
/// error; calls `on_interval` with a merged report (made by `report`) every interval.
pub(super) fn run_readers(
    p: &ReadersParams<'_>,
    report: MakeReport<'_>,
    mut on_interval: impl FnMut(&Report) -> Result<()>,
) -> Result<Run> {
    let sigs = p.sigs;
    // Without --readers, as many readers as live mode's default threads: one core is left to
    // the kernel filling the rings.
    let n = p.readers.map_or_else(
        || super::default_threads(true),
        |r| usize::try_from(r).unwrap_or(1),
    );
    let ring_mib = (p.buffer_mib / u32::try_from(n).unwrap_or(1)).max(1);
    // A fanout group id of this process's own (groups are per network namespace); one socket
    // needs no group.
    let group = (n > 1).then(|| (std::process::id() & 0xffff) as u16);
    let caps = (0..n)
        .map(|_| AfPacketCapture::open(p.iface, p.filter, p.snaplen, ring_mib, group))
        .collect::<Result<Vec<_>, _>>()?;
    let mut sensor = p
        .listen
        .map(|addr| super::sensor::start(addr, &p.classify.sig))
        .transpose()?;
    let sink = FlowSink::open(p.classify, &[])?;
    install_signal_handler();
    let writer = Writer::start(sink);
    let mut config = classifier_config(p.classify, true);
    let max_flows = config.engine.max_flows;
    // The flow cap is shared out among the readers, and the name stores shared by all.
    config.engine.max_flows = (max_flows / n).max(1);
    let names = Arc::new(Names::shared_by_dispatchers(max_flows));
    let stop = Arc::new(AtomicBool::new(false));
    let drain = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(n));
    let inboxes: Vec<(Sender<Passed>, Receiver<Passed>)> = (0..n).map(|_| unbounded()).collect();
    let (ended_tx, ended_rx) = unbounded::<()>();
    let mut readers = Vec::with_capacity(n);
    for (i, cap) in caps.into_iter().enumerate() {
        let mut classifier = Classifier::inline_sharing(
            sigs.load(),
            config.engine,
            writer.tx.clone(),
            Arc::clone(&names),
            (n > 1).then_some((i, n)),
        );
        classifier.follow_reloads(sigs);
        let (ask, mailbox) = unbounded::<Ask>();
        let (stop, barrier) = (Arc::clone(&stop), Arc::clone(&barrier));
        let ring = Ring {
            readers: n,
            inbox: inboxes[i].1.clone(),
            next: inboxes[(i + 1) % n].0.clone(),
            barrier,
            failed: ended_tx.clone(),
            drain: Arc::clone(&drain),
        };
        let handle = std::thread::Builder::new()
            .name(format!("appletap-reader-{i}"))
            .spawn(move || read_loop(cap, classifier, &stop, &mailbox, &ring))?;
        readers.push(Reader { ask, handle });
    }
    drop((ended_tx, inboxes));
    let mut notifier = super::service::Notifier::from_env();
    notifier.ready(p.iface);

    let stderr_too = p.classify.flows.as_deref() == Some(Path::new("-"));
    let started = Instant::now();
    let mut next_report = p.interval.map(|i| started + i);
    let deadline = p.duration.map(|d| started + Duration::from_secs(d));
    // A reader ending by itself has failed: the run ends with it.
    while let Err(RecvTimeoutError::Timeout) = ended_rx.recv_timeout(OUTPUT_POLL) {
        let now = Instant::now();
        if stopping() || deadline.is_some_and(|d| now >= d) {
            // Asked to stop: what the rings already hold is read first.
            drain.store(true, Ordering::SeqCst);
            break;
        }
        if output_closed() || outputs_gone(stderr_too) {
            break;
        }
        notifier.tick(now);
        if let (Some(at), Some(every)) = (next_report, p.interval)
            && now >= at
        {
            next_report = Some(at + every);
            if let Some((t, drops)) = snapshot(&readers, None) {
                on_interval(&report(&t, drops, None))?;
            }
        }
        // Only when a scrape asked, at most once a second: the readers' settled counters,
        // merged as for a report.
        if let Some(s) = &mut sensor
            && s.wants_snapshot(now)
        {
            match snapshot(&readers, Some(super::sensor::settled_now())) {
                Some((t, drops)) => {
                    let published = crate::sensor::Published {
                        report: report(&t, drops, None),
                        devices: None,
                    };
                    s.publish(Box::new(move || published));
                }
                None => s.retry(),
            }
        }
    }
    if let Some(s) = sensor {
        s.stop();
    }
    notifier.stopping();
    stop.store(true, Ordering::SeqCst);
    let mut merged: Option<(Totals, CaptureDrops)> = None;
    let mut error = None;
    for r in readers {
        drop(r.ask);
        let Ok((t, d, e)) = r.handle.join() else {
            error.get_or_insert_with(|| "a reader thread panicked".to_string());
            continue;
        };
        if e.is_some() && error.is_none() {
            error = e;
        }
        merge(&mut merged, t, d);
    }
    let sink = writer.finish();
    let Some((totals, drops)) = merged else {
        bail!("no reader finished");
    };
    let report = report(&totals, drops, error.clone());
    let errors: Vec<String> = sink.error.into_iter().chain(error).collect();
    Ok(Run {
        report,
        failed: !errors.is_empty(),
        errors,
    })
}

/// The reporting thread's handle on one reader.
struct Reader {
    /// Where to ask for the reader's counters.
    ask: Sender<Ask>,
    handle: JoinHandle<Ended>,
}

/// An ICMP error passed on to the next reader, and how many readers have had it.
type Passed = (OwnedPacket, usize);

/// A reader's place in the ring that passes ICMP errors on.
struct Ring {
    readers: usize,
    inbox: Receiver<Passed>,
    next: Sender<Passed>,
    /// Where the readers wait for each other at the end, so that nothing passed on is lost.
    barrier: Arc<Barrier>,
    /// Tells the reporting thread that this reader failed, so that every reader stops.
    failed: Sender<()>,
    /// Set before `stop` when the run ends by a signal or its duration: the reader first reads
    /// what its ring already holds (see [`DRAIN`]).
    drain: Arc<AtomicBool>,
}

impl Ring {
    /// Passes on what `classifier` kept, each packet having been with `had` readers.
    fn pass_on(&self, classifier: &mut Classifier, had: usize) {
        for p in classifier.take_passed_on() {
            let _ = self.next.send((p, had));
        }
    }

    /// Handles what other readers passed on, up to packet time `upto` (`None`: all of it);
    /// what is later waits in `waiting`. A reader that has not yet read up to an ICMP error's
    /// time may not yet hold the flow it quotes (the readers go at their own pace, and with a
    /// backlog in the rings one may be far behind another): it answers once it has.
    fn take_in(
        &self,
        classifier: &mut Classifier,
        waiting: &mut VecDeque<Passed>,
        upto: Option<Timestamp>,
    ) {
        waiting.extend(self.inbox.try_iter());
        let mut later = VecDeque::new();
        while let Some((p, had)) = waiting.pop_front() {
            if upto.is_some_and(|t| p.packet().ts > t) {
                later.push_back((p, had));
                continue;
            }
            if had + 1 >= self.readers {
                classifier.push_last_stop(&p.packet());
            } else {
                classifier.push(&p.packet());
            }
            // Kept again: not the reader the flow's key chooses; on to the next.
            self.pass_on(classifier, had + 1);
        }
        *waiting = later;
    }
}

/// Reads one socket into its classifier until `stop`, answering requests for its counters
/// between ring blocks and handling the ICMP errors other readers pass on.
fn read_loop(
    mut cap: AfPacketCapture,
    mut classifier: Classifier,
    stop: &AtomicBool,
    mailbox: &Receiver<Ask>,
    ring: &Ring,
) -> Ended {
    let mut error = None;
    // Packets other readers passed on that are later than what this one has read.
    let mut waiting = VecDeque::new();
    // The packet time this reader has read up to.
    let mut clock = Timestamp(0);
    while !stop.load(Ordering::SeqCst) {
        let upto = match cap.read(READ_TIMEOUT, |pkt| {
            clock = clock.max(pkt.ts);
            classifier.push(pkt);
        }) {
            Ok(ReadOutcome::Packets(_)) => Some(clock),
            Ok(ReadOutcome::Idle) => {
                classifier.idle();
                // Nothing more in the ring: whatever was passed on came before.
                None
            }
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        };
        ring.pass_on(&mut classifier, 1);
        ring.take_in(&mut classifier, &mut waiting, upto);
        while let Ok((settled, reply)) = mailbox.try_recv() {
            let totals = match settled {
                // Inline, the settled counters are ready at once.
                Some(t) => classifier
                    .progress_settled(t)
                    .map_or_else(|| classifier.progress(), |p| p.collect()),
                None => classifier.progress(),
            };
            let _ = reply.send((totals, cap.drops()));
        }
    }
    if error.is_some() {
        let _ = ring.failed.send(());
    } else if ring.drain.load(Ordering::SeqCst) {
        // Packets the kernel delivered before the end are counted: the ring is read without
        // waiting until it is empty, for at most DRAIN.
        let until = Instant::now() + DRAIN;
        while Instant::now() < until {
            match cap.read(Duration::ZERO, |pkt| classifier.push(pkt)) {
                Ok(ReadOutcome::Packets(_)) => ring.pass_on(&mut classifier, 1),
                Ok(ReadOutcome::Idle) | Err(_) => break,
            }
        }
    }
    // Every reader stops reading (a failed one too: it comes here); then what is passed on
    // moves one reader a round: it has been with every reader after as many rounds, and with
    // the reader its flow's key chooses after as many more.
    for _ in 0..2 * ring.readers {
        ring.barrier.wait();
        ring.take_in(&mut classifier, &mut waiting, None);
    }
    let drops = cap.drops();
    (classifier.finish(), drops, error)
}

/// Every reader's counters now, merged (as if every flow held ended now; with `settled`, only
/// those that began at or before it).
fn snapshot(readers: &[Reader], settled: Option<Timestamp>) -> Option<Snapshot> {
    let replies: Vec<Receiver<Snapshot>> = readers
        .iter()
        .map(|r| {
            let (tx, rx) = bounded(1);
            let _ = r.ask.send((settled, tx));
            rx
        })
        .collect();
    let mut merged = None;
    for rx in replies {
        let (t, d) = rx.recv_timeout(SNAPSHOT_WAIT).ok()?;
        merge(&mut merged, t, d);
    }
    merged
}

/// Adds one reader's counters and drops to `into`. The name stores are shared, so their
/// snapshot is taken once (the latest); the DNS-over-TCP streams each reader's dispatcher gave
/// up are its own, and add up. Interface drops are the interface's, not a socket's: every
/// reader reads the same number.
fn merge(into: &mut Option<Snapshot>, t: Totals, d: CaptureDrops) {
    let Some((acc, drops)) = into else {
        *into = Some((t, d));
        return;
    };
    acc.counters.merge(&t.counters);
    acc.active_flows += t.active_flows;
    acc.evicted += t.evicted;
    acc.pipeline_drops += t.pipeline_drops;
    let tcp_dropped = acc.names.dns_tcp_streams_dropped + t.names.dns_tcp_streams_dropped;
    // The name stores are shared by every reader; the DNS-over-TCP streams and the device
    // identities are each reader's dispatcher's own.
    let mut devices = std::mem::take(&mut acc.names.devices);
    let mut defrag = acc.names.defrag;
    // Each reader's dispatcher reassembles the fragments it reads.
    defrag.merge(&t.names.defrag);
    devices.merge(&t.names.devices);
    acc.names = t.names;
    acc.names.dns_tcp_streams_dropped = tcp_dropped;
    acc.names.devices = devices;
    acc.names.defrag = defrag;
    drops.received += d.received;
    drops.kernel += d.kernel;
    drops.interface = drops.interface.max(d.interface);
}
