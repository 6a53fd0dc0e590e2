//! [`HandleState`]: what the handles of one client share with its driver.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::core::ClientCore;
use super::failure::ConnectFailure;
use crate::event::PublishToken;
use crate::session::Traffic;

/// What every handle of one client shares with the driver: whether the broker has accepted
/// the current connection, the counters of [`ClientStats`], the counter of publish tokens,
/// and why the client stopped. Written by the driver once per turn; reading never blocks
/// the driver for longer than a copy.
#[derive(Debug, Default)]
pub struct HandleState {
    connected: AtomicBool,
    next_token: AtomicU64,
    stats: Mutex<ClientStats>,
    stop_cause: Mutex<Option<ConnectFailure>>,
}

/// A snapshot of what a client holds and has done, as of the driver's last turn. Cheap: a
/// copy of a few counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// QoS 1/2 messages sent and not yet acknowledged by the broker.
    pub in_flight: usize,
    /// Incoming QoS 2 messages received and not yet released by the broker (PUBREL).
    pub in_flight_incoming: usize,
    /// Messages the session has accepted (and, with a store, recorded) that wait for the
    /// in-flight window or a connection.
    pub queued: usize,
    /// Messages received that the application has not taken from its event stream yet.
    pub inbound_pending: usize,
    /// Payload bytes of those messages.
    pub inbound_pending_bytes: usize,
    /// QoS 0 messages dropped because the inbound queue was full twice over while the client
    /// read on for answers to its own requests.
    pub inbound_dropped: u64,
    /// QoS 1/2 messages a 5.0 broker sent beyond the Receive Maximum announced to it.
    pub receive_maximum_excess: u64,
    /// Transports opened or tried.
    pub connect_attempts: u64,
    /// Connections the broker accepted; all but the first are reconnections.
    pub connections: u64,
    /// Since when the current connection is accepted, if it is.
    pub connected_since: Option<Instant>,
    /// Packets and bytes in each direction, over every connection.
    pub traffic: Traffic,
}

impl ClientStats {
    /// Connections accepted after the first.
    pub fn reconnects(&self) -> u64 {
        self.connections.saturating_sub(1)
    }

    /// How long the current connection has been up at `now`, if it is.
    pub fn uptime(&self, now: Instant) -> Option<Duration> {
        self.connected_since
            .map(|since| now.saturating_duration_since(since))
    }
}

impl HandleState {
    /// The state of a client driven by `core`. Tokens continue the session's numbering, so
    /// flows resumed from a store never share a token with new messages.
    pub fn new<W>(core: &ClientCore<W>) -> Self {
        let state = Self {
            connected: AtomicBool::new(false),
            next_token: AtomicU64::new(core.session().next_publish_token().0),
            stats: Mutex::new(ClientStats::default()),
            stop_cause: Mutex::new(None),
        };
        state.update(core);
        state
    }

    /// Whether the broker has accepted the current connection.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// What the client holds and has done.
    pub fn stats(&self) -> ClientStats {
        // A poisoned lock still holds a valid copy of plain counters.
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why the client stopped, if it gave up connecting.
    pub fn stop_cause(&self) -> Option<ConnectFailure> {
        self.stop_cause
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records whether `core` is connected, and its counters; the driver calls it after
    /// delivering outputs.
    pub fn update<W>(&self, core: &ClientCore<W>) {
        self.connected.store(core.is_connected(), Ordering::Relaxed);
        let session = core.session();
        let (inbound_pending, inbound_pending_bytes) = session.inbound_pending();
        let counters = core.counters();
        let stats = ClientStats {
            in_flight: session.inflight(),
            in_flight_incoming: session.incoming_unreleased(),
            queued: session.queued(),
            inbound_pending,
            inbound_pending_bytes,
            inbound_dropped: session.inbound_dropped(),
            receive_maximum_excess: session.receive_maximum_excess(),
            connect_attempts: counters.attempts,
            connections: counters.connections,
            connected_since: counters.connected_since,
            traffic: session.traffic(),
        };
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = stats;
        if let Some(cause) = core.stop_cause() {
            let mut slot = self.stop_cause.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(cause.clone());
            }
        }
    }

    /// A token for a new publish request, unique within the client.
    pub fn next_token(&self) -> PublishToken {
        PublishToken(self.next_token.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientOptions;

    #[test]
    fn tokens_are_fresh_and_connection_starts_down() {
        let (core, _) = ClientCore::<()>::new(ClientOptions::new("mqtt://h")).unwrap();
        let state = HandleState::new(&core);
        let first = state.next_token();
        assert!(first.0 >= core.session().next_publish_token().0);
        assert_ne!(first, state.next_token());
        state.update(&core);
        assert!(!state.is_connected());
        assert_eq!(state.stats().connections, 0);
        assert!(state.stop_cause().is_none());
    }
}
