//! A sans-IO MQTT client session for 3.1, 3.1.1 and 5.0.
//!
//! [`Session`] is a state machine: the driver feeds it bytes read from the transport and the
//! current time, and takes from it bytes to write, [`Event`]s for the application and the
//! next deadline. It never touches a socket, reads a clock or draws a random number, so the
//! same session runs on tokio, async-std, smol or a microcontroller loop, and tests drive it
//! with virtual time. A message being sent is not copied: the payload of a large PUBLISH is
//! handed out as the message's own bytes, a buffer of its own in the [`Transmit`] queue, for a
//! vectored write.
//!
//! It implements CONNECT/CONNACK, QoS 0/1/2 in both directions with per-message completion
//! events, an in-flight window and a bounded queue, keep alive with a ping timeout, the will,
//! clean and persistent sessions with retransmission on reconnect, a write-through
//! [`SessionStore`] (in memory or in files) that keeps every accepted QoS 1/2 message, queued
//! or in flight, and QoS 2 exactly-once across restarts, 5.0
//! topic aliases, server limits, enhanced authentication (by the application, or by an
//! [`Authenticator`] the session runs itself, re-authentication included) and reason codes.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod alias;
mod auth;
pub mod client;
mod config;
mod event;
mod expiry;
mod ids;
mod inbound;
mod message;
mod outbound;
mod reader;
mod session;
pub mod store;
mod subscriptions;
mod transmit;

pub use auth::{AuthFailure, Authenticator};
pub use config::{Config, Delivery};
pub use event::{
    AckError, AckToken, AuthError, ConfigError, ConnectionError, Event, ProtocolViolation,
    PublishError, PublishOutcome, PublishToken, SubscribeError,
};
pub use message::Message;
pub use session::{ConnectionState, Session, Traffic};
#[cfg(feature = "file-store")]
pub use store::FileStore;
pub use store::{MemoryStore, SessionStore, SetAside, StoreError};
pub use transmit::Transmit;

/// The codec this session speaks, re-exported so users need one dependency.
pub use mqtt_proto as proto;
