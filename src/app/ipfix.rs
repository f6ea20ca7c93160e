//! `--ipfix HOST:PORT`: a thread that sends flow records as IPFIX messages over UDP, fed
//! through a bounded queue that never makes capture wait (what does not fit is dropped and
//! counted), with its counters written to standard error at the end.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use crate::cli::IpfixOpt;
use crate::report::ipfix::Encoder;
use crate::report::record::FlowRecord;

/// Batches of records queued for the exporter; beyond it batches are dropped and counted.
const QUEUE: usize = 256;
/// Templates (and the application names) are re-sent, before the next records, once this
/// old (RFC 7011 §8.4: over UDP a collector that restarted learns them again)...
const TEMPLATE_REFRESH: Duration = Duration::from_secs(60);
/// ...and after this many messages.
const TEMPLATE_REFRESH_MESSAGES: u64 = 1000;
/// How long an unresolvable collector name is left before it is looked up again.
const RESOLVE_RETRY: Duration = Duration::from_secs(10);

/// What the export did: every flow record is either sent or dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct IpfixStats {
    /// Flow records in messages the socket accepted.
    pub(super) records_sent: u64,
    /// Messages the socket accepted (templates included).
    pub(super) messages_sent: u64,
    /// Flow records not sent: queue full, collector unresolvable, or a failed send.
    pub(super) records_dropped: u64,
    /// Sends that failed (a collector's port unreachable, no route, a full socket buffer).
    pub(super) send_errors: u64,
    /// Whether the collector's name never resolved.
    pub(super) unresolved: bool,
}

/// The exporter thread and the sending end of its queue.
pub(super) struct Exporter {
    tx: Option<Sender<Vec<FlowRecord>>>,
    handle: Option<JoinHandle<IpfixStats>>,
    target: String,
    /// Records dropped because the queue was full.
    queue_dropped: u64,
}

impl Exporter {
    /// Starts the exporter for `opt.ipfix`, or None without it.
    pub(super) fn start(opt: &IpfixOpt) -> Option<Self> {
        let target = opt.ipfix.clone()?;
        let (tx, rx) = bounded(QUEUE);
        let encoder = Encoder::new(opt.ipfix_domain, opt.ipfix_enterprise);
        let t = target.clone();
        let handle = std::thread::Builder::new()
            .name("appletap-ipfix".into())
            .spawn(move || run(&t, encoder, &rx))
            .ok();
        Some(Self {
            tx: handle.is_some().then_some(tx),
            handle,
            target,
            queue_dropped: 0,
        })
    }

    /// Queues a batch, or drops and counts it when the queue is full: never waits.
    pub(super) fn send(&mut self, batch: &[FlowRecord]) {
        let n = batch.len() as u64;
        match &self.tx {
            Some(tx) => match tx.try_send(batch.to_vec()) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.queue_dropped += n;
                }
            },
            None => self.queue_dropped += n,
        }
    }

    /// Ends the thread once it sent what is queued; its counters and a line saying them.
    pub(super) fn finish(mut self) -> (IpfixStats, String) {
        drop(self.tx.take());
        let mut stats = self
            .handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        stats.records_dropped += self.queue_dropped;
        let line = format!(
            "IPFIX export to {}: {} flow records sent in {} messages, {} dropped, {} send errors{}\n",
            self.target,
            stats.records_sent,
            stats.messages_sent,
            stats.records_dropped,
            stats.send_errors,
            if stats.unresolved {
                " (the collector's address did not resolve)"
            } else {
                ""
            }
        );
        (stats, line)
    }
}

/// The socket, connected once the collector's name resolves.
struct Link {
    target: String,
    socket: Option<UdpSocket>,
    next_resolve: Instant,
    /// Whether a lookup of the collector's address failed.
    failed: bool,
}

impl Link {
    fn socket(&mut self) -> Option<&UdpSocket> {
        if self.socket.is_none() && Instant::now() >= self.next_resolve {
            self.next_resolve = Instant::now() + RESOLVE_RETRY;
            self.socket = connect(&self.target);
            self.failed |= self.socket.is_none();
        }
        self.socket.as_ref()
    }
}

/// A UDP socket connected to the first address `target` resolves to (so the kernel reports
/// ICMP errors as send errors), non-blocking so a full buffer drops instead of waiting.
fn connect(target: &str) -> Option<UdpSocket> {
    let addr: SocketAddr = target.to_socket_addrs().ok()?.next()?;
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let s = UdpSocket::bind(local).ok()?;
    s.connect(addr).ok()?;
    s.set_nonblocking(true).ok()?;
    Some(s)
}

fn now_secs() -> u32 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

fn run(target: &str, mut encoder: Encoder, rx: &Receiver<Vec<FlowRecord>>) -> IpfixStats {
    let mut stats = IpfixStats::default();
    let mut link = Link {
        target: target.to_string(),
        socket: None,
        next_resolve: Instant::now(),
        failed: false,
    };
    // None: templates not sent yet (first batch, or after the socket was missing).
    let mut templates_at: Option<Instant> = None;
    let mut since_templates: u64 = 0;
    let send = |link: &mut Link, stats: &mut IpfixStats, msg: &[u8]| -> bool {
        let ok = link.socket().is_some_and(|s| s.send(msg).is_ok());
        if ok {
            stats.messages_sent += 1;
        } else {
            stats.send_errors += 1;
        }
        ok
    };
    for batch in rx {
        let time = now_secs();
        if templates_at.is_none_or(|t| t.elapsed() >= TEMPLATE_REFRESH)
            || since_templates >= TEMPLATE_REFRESH_MESSAGES
        {
            if link.socket().is_none() {
                stats.records_dropped += batch.len() as u64;
                continue;
            }
            let mut all = true;
            for msg in encoder.templates(time) {
                all &= send(&mut link, &mut stats, &msg);
            }
            if all {
                templates_at = Some(Instant::now());
                since_templates = 0;
            }
        }
        for (msg, flows) in encoder.records(&batch, time) {
            since_templates += 1;
            if send(&mut link, &mut stats, &msg) {
                stats.records_sent += flows as u64;
            } else {
                stats.records_dropped += flows as u64;
            }
        }
    }
    stats.unresolved = link.socket.is_none() && link.failed;
    stats
}
