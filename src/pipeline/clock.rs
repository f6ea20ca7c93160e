//! Packet time for a whole input: the latest packet time so far, and when time goes back far
//! enough to start a new stretch of capture. Kept by the dispatcher, handed to workers with
//! each packet, so every worker sees the same time whatever packets it gets.

use crate::capture::Timestamp;

/// How far packet time may go back before it counts as a new stretch of capture rather than
/// packets out of order (merged interfaces, a reordering capture point): more than any idle
/// timeout but the longest, far more than any reordering.
pub const CLOCK_JUMP_BACK: Timestamp = Timestamp(60 * Timestamp::NANOS_PER_SEC);

/// The time of an input: the latest packet time so far, unless a packet is more than
/// [`CLOCK_JUMP_BACK`] older than that. Then the clock goes back to it and a new stretch of
/// capture begins (files read out of order, a capture restarted with an older clock): every
/// flow still open ends there, as at the end of an input. Without this, every packet of the
/// older stretch was idle by the clock and started a flow of its own, and nothing was ever
/// swept (the clock stood still): reading one capture twice held ten times its flows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    now: Option<Timestamp>,
}

impl Clock {
    /// The clock after a packet of time `ts`, and whether it went back (a new stretch of
    /// capture begins here; the keeper counts it in [`crate::counters::PacketStats::clock_restarts`]).
    pub fn tick(&mut self, ts: Timestamp) -> (Timestamp, bool) {
        let (now, restart) = match self.now {
            Some(now) if ts.0.saturating_add(CLOCK_JUMP_BACK.0) < now.0 => (ts, true),
            Some(now) => (now.max(ts), false),
            None => (ts, false),
        };
        self.now = Some(now);
        (now, restart)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = Timestamp::NANOS_PER_SEC;

    #[test]
    fn clock_keeps_the_latest_time_through_reordering() {
        let mut c = Clock::default();
        assert_eq!(c.tick(Timestamp(1_000 * S)), (Timestamp(1_000 * S), false));
        // Out of order by up to a minute: the clock stays where it was.
        assert_eq!(c.tick(Timestamp(950 * S)), (Timestamp(1_000 * S), false));
        assert_eq!(c.tick(Timestamp(940 * S)), (Timestamp(1_000 * S), false));
        assert_eq!(c.tick(Timestamp(1_001 * S)), (Timestamp(1_001 * S), false));
    }

    #[test]
    fn clock_goes_back_past_a_minute_and_counts_it() {
        let mut c = Clock::default();
        c.tick(Timestamp(1_000 * S));
        assert_eq!(c.tick(Timestamp(939 * S)), (Timestamp(939 * S), true));
        // A timestamp near zero from a damaged header: one more restart, no overflow.
        assert_eq!(c.tick(Timestamp(0)), (Timestamp(0), true));
        assert_eq!(c.tick(Timestamp(u64::MAX)), (Timestamp(u64::MAX), false));
    }
}
