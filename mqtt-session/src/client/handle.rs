//! [`HandleState`]: what the handles of one client share with its driver.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::core::ClientCore;
use crate::event::PublishToken;

/// What every handle of one client shares with the driver, without locks: whether the broker
/// has accepted the current connection, a few counters, and the counter of publish tokens.
#[derive(Debug, Default)]
pub struct HandleState {
    connected: AtomicBool,
    next_token: AtomicU64,
    in_flight: AtomicUsize,
    queued: AtomicUsize,
    inbound_dropped: AtomicU64,
    receive_maximum_excess: AtomicU64,
}

/// What a client holds, as of the driver's last turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// QoS 1/2 messages sent and not yet acknowledged.
    pub in_flight: usize,
    /// Messages the session has accepted (and, with a store, recorded) that wait for the
    /// in-flight window or a connection.
    pub queued: usize,
    /// QoS 0 messages dropped because the inbound queue was full twice over while the client
    /// read on for answers to its own requests.
    pub inbound_dropped: u64,
    /// QoS 1/2 messages a 5.0 broker sent beyond the Receive Maximum announced to it.
    pub receive_maximum_excess: u64,
}

impl HandleState {
    /// The state of a client driven by `core`. Tokens continue the session's numbering, so
    /// flows resumed from a store never share a token with new messages.
    pub fn new<W>(core: &ClientCore<W>) -> Self {
        Self {
            connected: AtomicBool::new(false),
            next_token: AtomicU64::new(core.session().next_publish_token().0),
            in_flight: AtomicUsize::new(core.session().inflight()),
            queued: AtomicUsize::new(core.session().queued()),
            inbound_dropped: AtomicU64::new(0),
            receive_maximum_excess: AtomicU64::new(0),
        }
    }

    /// Whether the broker has accepted the current connection.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// What the client holds.
    pub fn stats(&self) -> ClientStats {
        ClientStats {
            in_flight: self.in_flight.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            inbound_dropped: self.inbound_dropped.load(Ordering::Relaxed),
            receive_maximum_excess: self.receive_maximum_excess.load(Ordering::Relaxed),
        }
    }

    /// Records whether `core` is connected, and its counters; the driver calls it after
    /// delivering outputs.
    pub fn update<W>(&self, core: &ClientCore<W>) {
        self.connected.store(core.is_connected(), Ordering::Relaxed);
        let session = core.session();
        self.in_flight.store(session.inflight(), Ordering::Relaxed);
        self.queued.store(session.queued(), Ordering::Relaxed);
        self.inbound_dropped
            .store(session.inbound_dropped(), Ordering::Relaxed);
        self.receive_maximum_excess
            .store(session.receive_maximum_excess(), Ordering::Relaxed);
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
    }
}
