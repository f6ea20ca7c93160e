//! The sensor: what `appletap live --listen ADDR` serves over HTTP beside the capture. It owns
//! the `appletap_*` [`metrics`] and the [`http`] server; the capture loop only hands it a
//! snapshot, and only when a client asked for fresh numbers (at most once a second), so with
//! no client connected it costs the capture nothing.
//!
//! Three threads, none of them the capture's: the HTTP server (its own single-threaded tokio
//! runtime), the updater (turns a snapshot into a report and sets the metrics, so the report is
//! not built on the capture thread) and the capture loop, which only answers
//! [`Sensor::wants_snapshot`] with [`Sensor::publish`].

pub mod http;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError, bounded};

use crate::report::Report;
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
    /// Devices seen, by kind, where the inventory counts them.
    pub devices: Option<DevicesByKind>,
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
}

/// The running sensor: HTTP server and updater threads.
pub struct Sensor {
    shared: Arc<Shared>,
    addr: SocketAddr,
    to_updater: Option<Sender<Snapshot>>,
    updater: Option<JoinHandle<()>>,
    server: Option<http::Server>,
    next_snapshot: Instant,
}

impl Sensor {
    /// Binds `addr` now (so a bad address fails before the capture starts) and starts serving
    /// `metrics`.
    ///
    /// # Errors
    /// [`SensorError`] when the address cannot be bound or a thread cannot start.
    pub fn start(addr: SocketAddr, metrics: Metrics) -> Result<Self, SensorError> {
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
                    let p = snapshot();
                    sh.metrics.update(&p.report, p.devices.as_ref());
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
        })
    }

    /// The address it serves on (the port chosen, when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the capture loop should take a snapshot now: a client asked for fresh numbers,
    /// and the last snapshot is at least [`MIN_SNAPSHOT_GAP`] old. Two atomic loads when no
    /// client asks.
    pub fn wants_snapshot(&mut self, now: Instant) -> bool {
        if !self.shared.requested.load(Ordering::Acquire) || now < self.next_snapshot {
            return false;
        }
        self.shared.requested.store(false, Ordering::Release);
        self.next_snapshot = now + MIN_SNAPSHOT_GAP;
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
        assert!(!s.wants_snapshot(now), "no client asked");
        s.shared.request();
        assert!(s.wants_snapshot(now));
        s.shared.request();
        assert!(!s.wants_snapshot(now + Duration::from_millis(500)));
        assert!(s.wants_snapshot(now + MIN_SNAPSHOT_GAP));
        s.stop();
    }
}
