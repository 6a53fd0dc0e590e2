//! Runtime-independent pieces shared by the async client adapters: options, broker URLs,
//! reconnect backoff and the correlation of completions with waiting callers. Nothing here
//! performs IO or reads a clock.
//!
//! [`ClientCore`] is the adapters' common driver state: it wraps a [`Session`](crate::Session)
//! with failover and reconnect ([`Reconnect`], [`Backoff`]), answers each caller when its
//! request completes, and turns session events into the client [`Event`]s. An adapter adds
//! only sockets, a timer and channels.

mod backoff;
mod core;
mod event;
mod failure;
mod handle;
mod hook;
mod options;
mod requests;
mod url;

pub use self::backoff::{Backoff, Reconnect};
pub use self::core::{ClientCore, Command, Output, Step, TransportOptions};
pub use self::event::{Error, Event, Reply};
pub use self::failure::{is_permanent_refusal, ConnectFailure, DialError};
pub use self::handle::{ClientStats, HandleState};
pub use self::hook::{ConnectAttempt, ConnectDecision, ConnectHook, ConnectHookFuture};
pub use self::options::{
    ClientOptions, OptionsError, PemSource, TlsOptions, TlsVersion, MAX_WRITE_DELAY,
    WRITE_DELAY_FLUSH,
};
pub use self::url::{BrokerUrl, Scheme, UrlError};
