//! [`HandleState`]: what the handles of one client share with its driver.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::core::ClientCore;
use crate::event::PublishToken;

/// What every handle of one client shares with the driver, without locks: whether the broker
/// has accepted the current connection, and the counter of publish tokens.
#[derive(Debug, Default)]
pub struct HandleState {
    connected: AtomicBool,
    next_token: AtomicU64,
}

impl HandleState {
    /// The state of a client driven by `core`. Tokens continue the session's numbering, so
    /// flows resumed from a store never share a token with new messages.
    pub fn new<W>(core: &ClientCore<W>) -> Self {
        Self {
            connected: AtomicBool::new(false),
            next_token: AtomicU64::new(core.session().next_publish_token().0),
        }
    }

    /// Whether the broker has accepted the current connection.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Records whether `core` is connected; the driver calls it after delivering outputs.
    pub fn update<W>(&self, core: &ClientCore<W>) {
        self.connected.store(core.is_connected(), Ordering::Relaxed);
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
