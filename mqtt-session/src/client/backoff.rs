//! Reconnect delays: exponential backoff with jitter, and the choice of the next broker.
//!
//! Nothing here draws random numbers or reads a clock: the caller passes a random value in
//! `[0, 1)` and adds the returned delay to its own clock.

use std::time::{Duration, Instant};

/// Exponential backoff with jitter for reconnect attempts.
///
/// Attempt `n` (from 0) waits `min(max, initial * multiplier^n)`, shortened by up to
/// `jitter` of itself according to the random value passed in, so that many clients cut off
/// at once do not come back in lockstep.
///
/// ```
/// use std::time::Duration;
/// use mqtt_session::client::Backoff;
/// let backoff = Backoff::default();
/// assert_eq!(backoff.delay(0, 0.0), Duration::from_millis(500));
/// assert_eq!(backoff.delay(3, 0.0), Duration::from_secs(4));
/// assert_eq!(backoff.delay(3, 0.5), Duration::from_secs(3));
/// assert_eq!(backoff.delay(30, 0.0), Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Growth factor per attempt (at least 1).
    pub multiplier: f64,
    /// Fraction of the delay that is randomised, from 0 (none) to 1 (anywhere from zero).
    pub jitter: f64,
    /// How long a connection must have lasted for the backoff to start afresh when it ends:
    /// a broker that accepts and then drops the client (a duplicate client id, a quota, a
    /// policy) meets a growing delay, not a reconnect every half second.
    pub stable_after: Duration,
    /// How many attempts in a row may fail before the client gives up and stops; `None`
    /// (the default) never gives up.
    pub give_up_after: Option<u32>,
}

impl Default for Backoff {
    /// 0.5 s doubling up to 30 s, with half of each delay randomised; a connection counts
    /// as stable after 10 s.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.5,
            stable_after: Duration::from_secs(10),
            give_up_after: None,
        }
    }
}

impl Backoff {
    /// A backoff from `initial` up to `max`, doubling, with half of each delay randomised.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            ..Self::default()
        }
    }

    /// Sets the jitter fraction.
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the growth factor.
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Sets how long a connection must last for the backoff to start afresh.
    pub fn stable_after(mut self, stable_after: Duration) -> Self {
        self.stable_after = stable_after;
        self
    }

    /// Gives up (the client stops, reporting the last failure) after `attempts` failed
    /// attempts in a row.
    pub fn give_up_after(mut self, attempts: u32) -> Self {
        self.give_up_after = Some(attempts);
        self
    }

    /// The delay before retry number `attempt` (0 for the first), given `random` in `[0, 1)`.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let max = self.max.as_secs_f64();
        let multiplier = if self.multiplier.is_finite() {
            self.multiplier.max(1.0)
        } else {
            1.0
        };
        let exponent = i32::try_from(attempt.min(1024)).unwrap_or(1024);
        let base = (self.initial.as_secs_f64() * multiplier.powi(exponent)).min(max);
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let random = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Duration::try_from_secs_f64(base * (1.0 - jitter * random)).unwrap_or(self.max)
    }
}

/// Which broker to dial next and how long to wait first, across failures and failovers.
///
/// Brokers are tried in list order. A failed attempt moves on to the next broker at once;
/// after a whole round of failures the next round waits for the backoff, which grows with
/// each failed round. A connection that lasted [`Backoff::stable_after`] and then ended is
/// retried on the same broker after the initial delay, with the backoff started afresh; one
/// that ended sooner counts as a failed attempt, so a broker that accepts and drops the client
/// at once meets a growing delay. Without a backoff, only the first round of the first
/// connection is attempted.
///
/// ```
/// use std::time::{Duration, Instant};
/// use mqtt_session::client::{Backoff, Reconnect};
/// let now = Instant::now();
/// let mut r = Reconnect::new(2, Some(Backoff::default().jitter(0.0)));
/// assert_eq!(r.broker(), 0);
/// assert_eq!(r.on_failure(now, 0.0), Some(Duration::ZERO)); // fail over to broker 1 at once
/// assert_eq!(r.broker(), 1);
/// assert_eq!(r.on_failure(now, 0.0), Some(Duration::from_millis(500))); // round over: back off
/// assert_eq!(r.broker(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct Reconnect {
    backoff: Option<Backoff>,
    brokers: usize,
    current: usize,
    failed_in_round: usize,
    failed_rounds: u32,
    /// When the current connection was accepted.
    established: Option<Instant>,
    /// Attempts since the last stable connection.
    attempts: u32,
}

impl Reconnect {
    /// A policy over `brokers` addresses (at least one is assumed); `None` never retries.
    pub fn new(brokers: usize, backoff: Option<Backoff>) -> Self {
        Self {
            backoff,
            brokers: brokers.max(1),
            current: 0,
            failed_in_round: 0,
            failed_rounds: 0,
            established: None,
            attempts: 0,
        }
    }

    /// Connection attempts since the last stable connection (or the start).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Index of the broker to dial now.
    pub fn broker(&self) -> usize {
        self.current
    }

    /// Whether reconnecting is enabled.
    pub fn enabled(&self) -> bool {
        self.backoff.is_some()
    }

    /// Whether the current connection, accepted earlier, counts as stable at `now`.
    pub fn is_stable(&self, now: Instant) -> bool {
        match (self.established, self.backoff) {
            (Some(since), Some(b)) => now.saturating_duration_since(since) >= b.stable_after,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// The broker accepted the connection (CONNACK) at `now`.
    pub fn on_connected(&mut self, now: Instant) {
        self.established = Some(now);
    }

    /// A connection attempt failed, or an established connection ended, at `now`. Returns how
    /// long to wait before dialling [`broker`](Self::broker) again, or `None` to give up.
    pub fn on_failure(&mut self, now: Instant, random: f64) -> Option<Duration> {
        self.attempts = self.attempts.saturating_add(1);
        if let Some(since) = self.established.take() {
            let stable = self
                .backoff
                .is_some_and(|b| now.saturating_duration_since(since) >= b.stable_after);
            if stable || self.backoff.is_none() {
                // Stay on the broker that worked, starting afresh; pause briefly so that a
                // server closing every connection does not cause a busy loop.
                self.failed_in_round = 0;
                self.failed_rounds = 0;
                self.attempts = 1;
                return self.backoff.map(|b| b.delay(0, random));
            }
            // Accepted and dropped too soon: a failed attempt like any other.
        }
        if let Some(limit) = self.backoff.and_then(|b| b.give_up_after) {
            if self.attempts >= limit {
                return None;
            }
        }
        self.current = (self.current + 1) % self.brokers;
        self.failed_in_round += 1;
        if self.failed_in_round < self.brokers {
            return Some(Duration::ZERO);
        }
        self.failed_in_round = 0;
        let backoff = self.backoff?;
        let delay = backoff.delay(self.failed_rounds, random);
        self.failed_rounds = self.failed_rounds.saturating_add(1);
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_caps_and_jitters_within_bounds() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<_> = (0..6).map(|n| b.delay(n, 0.0).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        for r in [0.0, 0.25, 0.5, 0.999, 1.0] {
            let d = b.delay(2, r);
            assert!(
                d <= Duration::from_millis(400) && d >= Duration::from_millis(200),
                "{d:?}"
            );
        }
        assert_eq!(b.delay(u32::MAX, 0.0), Duration::from_secs(1));
        assert_eq!(b.delay(1, f64::NAN), Duration::from_millis(200));
        assert_eq!(
            b.multiplier(f64::INFINITY).delay(5, 0.0),
            Duration::from_millis(100)
        );
        assert_eq!(b.jitter(1.0).delay(0, 1.0), Duration::ZERO);
    }

    #[test]
    fn without_backoff_one_round_then_give_up() {
        let now = Instant::now();
        let mut r = Reconnect::new(3, None);
        assert_eq!(r.on_failure(now, 0.0), Some(Duration::ZERO));
        assert_eq!(r.on_failure(now, 0.0), Some(Duration::ZERO));
        assert_eq!(r.on_failure(now, 0.0), None);
        let mut r = Reconnect::new(1, None);
        r.on_connected(now);
        assert_eq!(r.on_failure(now, 0.0), None);
    }

    #[test]
    fn lost_connection_retries_same_broker_then_fails_over() {
        let b = Backoff::new(Duration::from_millis(10), Duration::from_secs(1)).jitter(0.0);
        let mut now = Instant::now();
        let mut r = Reconnect::new(2, Some(b));
        assert_eq!(r.on_failure(now, 0.0), Some(Duration::ZERO));
        assert_eq!(r.broker(), 1);
        r.on_connected(now);
        now += Duration::from_secs(60);
        assert_eq!(r.on_failure(now, 0.0), Some(Duration::from_millis(10)));
        assert_eq!(r.broker(), 1);
        assert_eq!(r.on_failure(now, 0.0), Some(Duration::ZERO));
        assert_eq!(r.broker(), 0);
        assert_eq!(r.on_failure(now, 0.0), Some(Duration::from_millis(10)));
        assert_eq!(r.on_failure(now, 0.0), Some(Duration::ZERO));
        assert_eq!(r.on_failure(now, 0.0), Some(Duration::from_millis(20)));
    }

    #[test]
    fn gives_up_after_the_limit() {
        let b = Backoff::new(Duration::from_millis(10), Duration::from_secs(1)).give_up_after(3);
        let now = Instant::now();
        let mut r = Reconnect::new(2, Some(b));
        assert!(r.on_failure(now, 0.0).is_some());
        assert!(r.on_failure(now, 0.0).is_some());
        assert_eq!(r.on_failure(now, 0.0), None);
    }

    #[test]
    fn a_broker_that_accepts_and_drops_at_once_meets_a_growing_delay() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10)).jitter(0.0);
        let mut now = Instant::now();
        let mut r = Reconnect::new(1, Some(b));
        let mut delays = Vec::new();
        for _ in 0..6 {
            r.on_connected(now);
            now += Duration::from_millis(50);
            let delay = r.on_failure(now, 0.0).unwrap();
            delays.push(delay.as_millis());
            now += delay;
        }
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200]);
        assert_eq!(r.attempts(), 6);
        // A connection that lasts starts the backoff afresh.
        r.on_connected(now);
        now += Duration::from_secs(10);
        assert_eq!(r.on_failure(now, 0.0), Some(Duration::from_millis(100)));
        assert_eq!(r.attempts(), 1);
    }
}
