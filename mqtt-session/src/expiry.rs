//! Message Expiry (5.0): when a message the session holds is no longer worth sending, on the
//! session's clock, and the wall clock that carries that moment across a restart.
//!
//! The session reads no clock. Its deadlines are instants of the clock the driver passes as
//! `now`, which means nothing to another process: a store records a deadline as Unix time
//! instead, converted with the wall clock the driver last gave
//! ([`Session::handle_wall_clock`](crate::Session::handle_wall_clock)).

use std::time::{Duration, Instant};

/// When a message the session holds expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// Never: no Message Expiry Interval, an interval of 0 (passed on as given: the session
    /// has nothing to count down), or a version before 5.0.
    Never,
    /// At this instant of the session's clock.
    At(Instant),
    /// Loaded from a store and not yet placed on the session's clock: at this Unix time, if
    /// the record had one. See [`Expiry::restored`].
    Restored(Option<Duration>),
}

impl Expiry {
    /// A message with this Message Expiry Interval, counted from `from`.
    pub(crate) fn after(from: Instant, interval: Option<u32>) -> Self {
        match interval {
            Some(secs) if secs > 0 => from
                .checked_add(Duration::from_secs(u64::from(secs)))
                .map_or(Self::Never, Self::At),
            _ => Self::Never,
        }
    }

    /// Places a restored deadline on the session's clock at `now`: its Unix time through the
    /// wall clock, if both are known; otherwise, with no way to tell how long the process was
    /// stopped, the interval as stored counts from `now`.
    pub(crate) fn restored(
        self,
        now: Instant,
        wall: Option<WallClock>,
        interval: Option<u32>,
    ) -> Self {
        match (self, wall) {
            (Self::Restored(Some(unix)), Some(wall)) => {
                wall.instant(unix).map_or(Self::Never, Self::At)
            }
            (Self::Restored(_), _) => Self::after(now, interval),
            (settled, _) => settled,
        }
    }

    /// Whether the deadline has passed at `now`.
    pub(crate) fn has_passed(self, now: Instant) -> bool {
        matches!(self, Self::At(deadline) if now >= deadline)
    }

    /// The Message Expiry Interval to send at `now`, if the session counts one down: the whole
    /// seconds left, rounded down so that the server never keeps the message longer than its
    /// publisher asked, but at least 1. A message with less than a second left is still alive
    /// and 0 would send it as already dead (a lifetime of nothing), so it goes with 1; the
    /// same holds for a retransmission past the deadline, which must go out anyway.
    pub(crate) fn interval_at(self, now: Instant) -> Option<u32> {
        match self {
            Self::At(deadline) => {
                let left = deadline.saturating_duration_since(now).as_secs();
                Some(u32::try_from(left).unwrap_or(u32::MAX).max(1))
            }
            Self::Never | Self::Restored(_) => None,
        }
    }

    /// The deadline as Unix time, for a store record: `None` if the message does not expire,
    /// or if no wall clock was given.
    pub(crate) fn unix(self, wall: Option<WallClock>) -> Option<Duration> {
        match self {
            Self::At(deadline) => wall.map(|w| w.unix(deadline)),
            Self::Restored(unix) => unix,
            Self::Never => None,
        }
    }
}

/// The wall clock as the driver last gave it: an instant of the session's clock and the Unix
/// time at that instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WallClock {
    pub(crate) at: Instant,
    pub(crate) unix: Duration,
}

impl WallClock {
    /// The Unix time at `instant`.
    pub(crate) fn unix(self, instant: Instant) -> Duration {
        match instant.checked_duration_since(self.at) {
            Some(later) => self.unix.saturating_add(later),
            None => self.unix.saturating_sub(self.at - instant),
        }
    }

    /// The instant of the session's clock at Unix time `unix`; `None` past the latest
    /// instant the platform can represent. A time before the earliest one is long past: the
    /// instant the clock was given stands for it, which every later `now` has passed too.
    pub(crate) fn instant(self, unix: Duration) -> Option<Instant> {
        match unix.checked_sub(self.unix) {
            Some(later) => self.at.checked_add(later),
            None => Some(self.at.checked_sub(self.unix - unix).unwrap_or(self.at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YEARS: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

    #[test]
    fn the_interval_sent_is_rounded_down_but_never_zero() {
        let t0 = Instant::now();
        let expiry = Expiry::after(t0, Some(10));
        assert_eq!(expiry, Expiry::At(t0 + Duration::from_secs(10)));
        assert_eq!(expiry.interval_at(t0), Some(10));
        assert_eq!(expiry.interval_at(t0 + Duration::from_millis(1)), Some(9));
        assert_eq!(
            expiry.interval_at(t0 + Duration::from_millis(8_999)),
            Some(1)
        );
        assert_eq!(
            expiry.interval_at(t0 + Duration::from_millis(9_999)),
            Some(1)
        );
        assert!(!expiry.has_passed(t0 + Duration::from_millis(9_999)));
        assert!(expiry.has_passed(t0 + Duration::from_secs(10)));
        // Past the deadline (a retransmission): still 1.
        assert_eq!(expiry.interval_at(t0 + Duration::from_secs(60)), Some(1));
    }

    #[test]
    fn no_interval_or_zero_never_expires() {
        let t0 = Instant::now();
        for interval in [None, Some(0)] {
            let expiry = Expiry::after(t0, interval);
            assert_eq!(expiry, Expiry::Never);
            assert!(!expiry.has_passed(t0 + YEARS));
            assert_eq!(expiry.interval_at(t0), None);
        }
    }

    #[test]
    fn the_wall_clock_converts_both_ways() {
        let t0 = Instant::now() + Duration::from_secs(3600);
        let wall = WallClock {
            at: t0,
            unix: Duration::from_secs(1_700_000_000),
        };
        for offset in [0, 1, 59, 3599] {
            let d = Duration::from_secs(offset);
            assert_eq!(wall.unix(t0 + d), wall.unix + d);
            assert_eq!(wall.unix(t0 - d), wall.unix - d);
            assert_eq!(wall.instant(wall.unix + d), Some(t0 + d));
            assert_eq!(wall.instant(wall.unix - d), Some(t0 - d));
        }
        // Long past (the clock was given at its instant or an earlier one); beyond what
        // `Instant` holds, never.
        assert!(wall.instant(Duration::ZERO).is_some_and(|at| at <= t0));
        assert_eq!(wall.instant(Duration::MAX), None);
        let never = Expiry::Restored(Some(Duration::MAX));
        assert_eq!(never.restored(t0, Some(wall), Some(1)), Expiry::Never);
    }

    #[test]
    fn a_restored_deadline_goes_through_the_wall_clock_if_it_can() {
        let t0 = Instant::now();
        let wall = WallClock {
            at: t0,
            unix: Duration::from_secs(1_000),
        };
        let stored = Expiry::Restored(Some(Duration::from_secs(1_030)));
        let at = Expiry::At(t0 + Duration::from_secs(30));
        assert_eq!(stored.restored(t0, Some(wall), Some(60)), at);
        // No wall clock, or no deadline: the interval as stored counts from now.
        let later = t0 + Duration::from_secs(5);
        let from_now = Expiry::At(later + Duration::from_secs(60));
        assert_eq!(stored.restored(later, None, Some(60)), from_now);
        let old = Expiry::Restored(None);
        assert_eq!(old.restored(later, Some(wall), Some(60)), from_now);
        assert_eq!(old.restored(later, Some(wall), None), Expiry::Never);
        // Settled ones stay.
        assert_eq!(at.restored(later, None, Some(1)), at);
    }
}
