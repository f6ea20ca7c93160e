//! The sensor: what `appletap live --listen ADDR` serves over HTTP beside the capture. It owns
//! the `appletap_*` [`metrics`], the dashboard and JSON [`api`], its [`auth`] and the [`http`]
//! server; the capture loop only hands it a snapshot when a client asked for fresh numbers (at
//! most once a second), and every [`api::HISTORY_INTERVAL_SECS`] for the dashboard's history
//! (one snapshot every ten seconds: the only cost with no client connected).
//!
//! Three threads, none of them the capture's: the HTTP server (its own single-threaded tokio
//! runtime), the updater (turns a snapshot into a report and sets the metrics, so the report is
//! not built on the capture thread) and the capture loop, which only answers
//! [`Sensor::wants_snapshot`] with [`Sensor::publish`].

pub mod api;
pub mod auth;
pub mod http;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Sender, TrySendError, bounded};

use crate::report::Report;
pub use api::{Documents, History};
pub use auth::Auth;
pub use metrics::{DevicesByKind, Encoding, Metrics};

/// Fewest time between two snapshots the capture loop takes for the metrics, however often
/// clients ask: a snapshot asks every worker for its counters.
pub const MIN_SNAPSHOT_GAP: Duration = Duration::from_secs(1);

/// Time before a snapshot that could not be taken (a busy worker) is tried again.
const RETRY_GAP: Duration = Duration::from_millis(100);

/// What one snapshot publishes.
pub struct Published {
    /// The report: running totals since the start.
    pub report: Report,
    /// Devices seen, by kind; `None` takes them from the report's inventory.
    pub devices: Option<DevicesByKind>,
}

impl Published {
    /// A report, its devices by kind taken from its inventory.
    pub fn new(report: Report) -> Self {
        Self {
            report,
            devices: None,
        }
    }
}

/// A snapshot still to be turned into a report: built on the updater's thread.
pub type Snapshot = Box<dyn FnOnce() -> Published + Send>;

/// Errors starting the sensor.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start the metrics server: {0}")]
    Thread(std::io::Error),
}

/// What the capture loop, the updater and the HTTP server share.
pub(crate) struct Shared {
    pub(crate) metrics: Metrics,
    /// A client wants numbers fresher than the last snapshot's.
    requested: AtomicBool,
    /// Milliseconds after `epoch` when the metrics were last set (0: never).
    updated_ms: AtomicU64,
    epoch: Instant,
    /// Bumped after each update: requests waiting for fresh numbers watch it.
    pub(crate) generation: tokio::sync::watch::Sender<u64>,
    /// The JSON API's documents of the last snapshot (none before the first).
    pub(crate) documents: Mutex<Option<Arc<Documents>>>,
    /// The dashboard's per-service history.
    pub(crate) history: Mutex<History>,
    /// Who may read.
    pub(crate) auth: Auth,
}

impl Shared {
    /// Whether the metrics were set within `age`.
    pub(crate) fn fresh_within(&self, age: Duration) -> bool {
        let at = self.updated_ms.load(Ordering::Acquire);
        at != 0 && self.epoch.elapsed().as_millis() <= u128::from(at) + age.as_millis()
    }

    /// Asks the capture loop for a snapshot.
    pub(crate) fn request(&self) {
        self.requested.store(true, Ordering::Release);
    }

    /// The last snapshot's documents.
    pub(crate) fn documents(&self) -> Option<Arc<Documents>> {
        self.documents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sets everything served from one snapshot (on the updater's thread).
    fn update(&self, p: &Published) {
        let by_kind;
        let devices = match &p.devices {
            Some(d) => d,
            None => {
                by_kind = api::by_kind(&p.report.devices);
                &by_kind
            }
        };
        self.metrics.update(&p.report, Some(devices));
        if let Ok(docs) = Documents::render(&p.report) {
            *self
                .documents
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(docs));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(now, &p.report);
    }
}

/// Time between two snapshots taken for the history, whether a client asks or not.
pub const HISTORY_GAP: Duration = Duration::from_secs(api::HISTORY_INTERVAL_SECS);

/// The running sensor: HTTP server and updater threads.
pub struct Sensor {
    shared: Arc<Shared>,
    addr: SocketAddr,
    to_updater: Option<Sender<Snapshot>>,
    updater: Option<JoinHandle<()>>,
    server: Option<http::Server>,
    next_snapshot: Instant,
    /// When the history wants its next point.
    next_history: Instant,
}

impl Sensor {
    /// Binds `addr` now (so a bad address fails before the capture starts) and starts serving
    /// `metrics` to anyone who can reach it.
    ///
    /// # Errors
    /// [`SensorError`] when the address cannot be bound or a thread cannot start.
    pub fn start(addr: SocketAddr, metrics: Metrics) -> Result<Self, SensorError> {
        Self::start_with(addr, metrics, Auth::default())
    }

    /// As [`Sensor::start`], answering only requests that `auth` allows.
    ///
    /// # Errors
    /// [`SensorError`] when the address cannot be bound or a thread cannot start.
    pub fn start_with(addr: SocketAddr, metrics: Metrics, auth: Auth) -> Result<Self, SensorError> {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|source| SensorError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SensorError::Bind { addr, source })?;
        let shared = Arc::new(Shared {
            metrics,
            requested: AtomicBool::new(false),
            updated_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            generation: tokio::sync::watch::Sender::new(0),
            documents: Mutex::new(None),
            history: Mutex::new(History::default()),
            auth,
        });
        let server =
            http::Server::start(listener, Arc::clone(&shared)).map_err(SensorError::Thread)?;
        // One snapshot waits at most: a newer one is not taken until it is done.
        let (tx, rx) = bounded::<Snapshot>(1);
        let sh = Arc::clone(&shared);
        let updater = std::thread::Builder::new()
            .name("appletap-metrics".into())
            .spawn(move || {
                for snapshot in rx {
                    sh.update(&snapshot());
                    let ms = u64::try_from(sh.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
                    sh.updated_ms.store(ms.max(1), Ordering::Release);
                    sh.generation.send_modify(|g| *g += 1);
                }
            })
            .map_err(SensorError::Thread)?;
        Ok(Self {
            shared,
            addr,
            to_updater: Some(tx),
            updater: Some(updater),
            server: Some(server),
            next_snapshot: Instant::now(),
            next_history: Instant::now(),
        })
    }

    /// The address it serves on (the port chosen, when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the capture loop should take a snapshot now: a client asked for fresh numbers,
    /// or the history wants its next point ([`HISTORY_GAP`]), and the last snapshot is at
    /// least [`MIN_SNAPSHOT_GAP`] old. An atomic load and a comparison when no client asks.
    pub fn wants_snapshot(&mut self, now: Instant) -> bool {
        let due = now >= self.next_history;
        if !(due || self.shared.requested.load(Ordering::Acquire)) || now < self.next_snapshot {
            return false;
        }
        self.shared.requested.store(false, Ordering::Release);
        self.next_snapshot = now + MIN_SNAPSHOT_GAP;
        self.next_history = now + HISTORY_GAP;
        true
    }

    /// The snapshot could not be taken now (a worker's queue was full): try again in a moment.
    pub fn retry(&mut self) {
        self.shared.request();
        self.next_snapshot = Instant::now() + RETRY_GAP;
    }

    /// Hands a snapshot to the updater; dropped if one is still waiting (the next request
    /// takes another).
    pub fn publish(&self, snapshot: Snapshot) {
        if let Some(tx) = &self.to_updater
            && let Err(TrySendError::Full(_)) = tx.try_send(snapshot)
        {
            self.shared.request();
        }
    }

    /// The metrics it serves.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Stops serving and joins the threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.to_updater = None;
        if let Some(u) = self.updater.take() {
            let _ = u.join();
        }
        if let Some(s) = self.server.take() {
            s.stop();
        }
    }
}

impl Drop for Sensor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Whether an address is loopback only (the default); anything else is said in the log.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_quiet() {
        assert!(is_loopback(&"127.0.0.1:9477".parse().unwrap()));
        assert!(is_loopback(&"[::1]:9477".parse().unwrap()));
        assert!(!is_loopback(&"0.0.0.0:9477".parse().unwrap()));
        assert!(!is_loopback(&"192.0.2.1:9477".parse().unwrap()));
    }

    #[test]
    fn a_scrape_asks_for_a_snapshot_at_most_once_a_second() {
        let mut s = Sensor::start("127.0.0.1:0".parse().unwrap(), Metrics::new("x")).unwrap();
        let now = Instant::now();
        assert!(s.wants_snapshot(now), "the history's first point");
        let now = now + MIN_SNAPSHOT_GAP;
        assert!(!s.wants_snapshot(now), "no client asked");
        s.shared.request();
        assert!(s.wants_snapshot(now));
        s.shared.request();
        assert!(!s.wants_snapshot(now + Duration::from_millis(500)));
        assert!(s.wants_snapshot(now + MIN_SNAPSHOT_GAP));
        s.stop();
    }

    #[test]
    fn the_history_asks_every_ten_seconds_without_clients() {
        let mut s = Sensor::start("127.0.0.1:0".parse().unwrap(), Metrics::new("x")).unwrap();
        let now = Instant::now();
        assert!(s.wants_snapshot(now));
        assert!(!s.wants_snapshot(now + HISTORY_GAP - Duration::from_millis(1)));
        assert!(s.wants_snapshot(now + HISTORY_GAP));
        s.stop();
    }
}
