//! Running under systemd: readiness and watchdog pings over the `sd_notify` protocol (the
//! sd-notify crate writes the datagrams). Nothing is sent unless systemd set `NOTIFY_SOCKET`.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// Tells systemd the capture is open, that the live loop still turns, and that it stops.
pub(super) struct Notifier {
    /// Whether `NOTIFY_SOCKET` is set.
    enabled: bool,
    /// Pings every half of `WATCHDOG_USEC` (systemd's advice), when the unit has a watchdog.
    every: Option<Duration>,
    next: Instant,
}

impl Notifier {
    /// From the environment systemd gives a `Type=notify` service.
    pub(super) fn from_env() -> Self {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some();
        let every = sd_notify::watchdog_enabled().map(|d| (d / 2).max(Duration::from_millis(10)));
        Self {
            enabled,
            every,
            next: Instant::now(),
        }
    }

    fn send(&self, state: &[NotifyState<'_>]) {
        if self.enabled {
            // A service manager that went away is no reason to stop capturing.
            let _ = sd_notify::notify(state);
        }
    }

    /// The capture is open: `READY=1`.
    pub(super) fn ready(&mut self, iface: &str) {
        let status = format!("capturing on {iface}");
        self.send(&[NotifyState::Ready, NotifyState::Status(&status)]);
        self.next = Instant::now();
    }

    /// Called from the live loop (it wakes at least every 100 ms): `WATCHDOG=1` when due.
    pub(super) fn tick(&mut self, now: Instant) {
        if let Some(every) = self.every
            && now >= self.next
        {
            self.next = now + every;
            self.send(&[NotifyState::Watchdog]);
        }
    }

    /// The run ends: `STOPPING=1`.
    pub(super) fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }
}
