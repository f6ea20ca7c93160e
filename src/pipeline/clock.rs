//! Packet time for a whole run: the latest packet time so far, and whether a packet's time fits
//! it. Kept by the dispatcher, handed to workers with each packet, so every worker sees the
//! same time whatever packets it gets. What to do with a packet that does not fit (an outlier,
//! or the start of a new stretch of capture) the dispatcher decides by looking at the packets
//! after it.

use crate::capture::Timestamp;

/// How far packet time may go back before it no longer fits the stretch of capture (packets
/// out of order: merged interfaces, a reordering capture point): more than any idle timeout but
/// the longest, far more than any reordering.
pub const CLOCK_JUMP_BACK: Timestamp = Timestamp(60 * Timestamp::NANOS_PER_SEC);

/// How far packet time may go forward at once and still fit: the longest idle timeout (TCP,
/// 300 s). A longer gap is believed once the packets after it confirm it (a quiet network, a
/// capture paused); a single packet stamped years ahead is not.
pub const CLOCK_JUMP_FORWARD: Timestamp = Timestamp(300 * Timestamp::NANOS_PER_SEC);

/// The time of a run: the latest packet time of the current stretch of capture.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    now: Option<Timestamp>,
}

impl Clock {
    /// The clock, if any packet was seen.
    pub fn now(&self) -> Option<Timestamp> {
        self.now
    }

    /// Whether a packet of time `ts` fits the current stretch: no more than
    /// [`CLOCK_JUMP_BACK`] behind the clock, no more than [`CLOCK_JUMP_FORWARD`] ahead.
    pub fn fits(&self, ts: Timestamp) -> bool {
        self.now.is_none_or(|now| {
            ts.0.saturating_add(CLOCK_JUMP_BACK.0) >= now.0
                && ts.0 <= now.0.saturating_add(CLOCK_JUMP_FORWARD.0)
        })
    }

    /// Whether `ts` is behind the clock (by any amount).
    pub fn is_behind(&self, ts: Timestamp) -> bool {
        self.now.is_some_and(|now| ts < now)
    }

    /// The clock after a packet of time `ts` that fits: time only moves forward.
    pub fn advance(&mut self, ts: Timestamp) -> Timestamp {
        let now = self.now.map_or(ts, |now| now.max(ts));
        self.now = Some(now);
        now
    }

    /// [`Clock::fits`] and [`Clock::advance`] in one: the clock after a packet of time `ts`
    /// if it fits (and then advanced), `None` (and unchanged) if it does not.
    // One comparison tells which bound applies (packet time nearly always moves forward):
    // `fits` then `advance` compared against both, saturating, 20 instructions a packet
    // (callgrind, first 100,000 packets of the benchmark capture).
    #[inline]
    pub fn advance_if_fits(&mut self, ts: Timestamp) -> Option<Timestamp> {
        let now = match self.now {
            Some(now) if ts >= now => {
                if ts.0 - now.0 > CLOCK_JUMP_FORWARD.0 {
                    return None;
                }
                ts
            }
            Some(now) => {
                if now.0 - ts.0 > CLOCK_JUMP_BACK.0 {
                    return None;
                }
                now
            }
            None => ts,
        };
        self.now = Some(now);
        Some(now)
    }

    /// Sets the clock to `ts`, forward or back: a new stretch of capture.
    pub fn jump_to(&mut self, ts: Timestamp) {
        self.now = Some(ts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = Timestamp::NANOS_PER_SEC;

    #[test]
    fn clock_keeps_the_latest_time_through_reordering() {
        let mut c = Clock::default();
        assert!(c.fits(Timestamp(1_000 * S)));
        assert_eq!(c.advance(Timestamp(1_000 * S)), Timestamp(1_000 * S));
        // Out of order by up to a minute: fits, and the clock stays where it was.
        assert!(c.fits(Timestamp(940 * S)));
        assert_eq!(c.advance(Timestamp(950 * S)), Timestamp(1_000 * S));
        assert_eq!(c.advance(Timestamp(1_001 * S)), Timestamp(1_001 * S));
    }

    #[test]
    fn times_past_a_minute_back_or_five_minutes_ahead_do_not_fit() {
        let mut c = Clock::default();
        c.advance(Timestamp(1_000 * S));
        assert!(!c.fits(Timestamp(939 * S)));
        assert!(c.fits(Timestamp(1_300 * S)));
        assert!(!c.fits(Timestamp(1_301 * S)));
        // Near zero and near the end of time: no overflow either way.
        assert!(!c.fits(Timestamp(0)));
        assert!(!c.fits(Timestamp(u64::MAX)));
        c.jump_to(Timestamp(u64::MAX));
        assert!(c.fits(Timestamp(u64::MAX)));
        assert!(c.is_behind(Timestamp(0)));
    }

    #[test]
    fn advance_if_fits_is_fits_then_advance() {
        // Around both bounds, near zero and near the end of time.
        let edges = [
            0,
            1,
            CLOCK_JUMP_BACK.0,
            CLOCK_JUMP_FORWARD.0,
            1_000 * S,
            u64::MAX - CLOCK_JUMP_FORWARD.0,
            u64::MAX - CLOCK_JUMP_BACK.0,
            u64::MAX,
        ];
        let mut times = Vec::new();
        for e in edges {
            for d in [0, 1, 2] {
                times.extend([e.saturating_sub(d), e.saturating_add(d)]);
                for b in [CLOCK_JUMP_BACK.0, CLOCK_JUMP_FORWARD.0] {
                    times.extend([e.saturating_sub(b).saturating_sub(d), e.saturating_add(b)]);
                    times.push(e.saturating_sub(b).saturating_add(d));
                    times.push(e.saturating_add(b).saturating_sub(d));
                }
            }
        }
        let mut clocks = vec![Clock::default()];
        clocks.extend(times.iter().map(|&t| Clock {
            now: Some(Timestamp(t)),
        }));
        for clock in clocks {
            for &t in &times {
                let ts = Timestamp(t);
                let (mut a, mut b) = (clock, clock);
                let expected = a.fits(ts).then(|| a.advance(ts));
                assert_eq!(b.advance_if_fits(ts), expected, "{clock:?} {ts:?}");
                assert_eq!(a.now, b.now, "{clock:?} {ts:?}");
            }
        }
    }
}
