//! The async MQTT client, written once for every runtime, and the IO-level pieces it needs.
//!
//! [`client::Client`] is the handle and [`client::Events`] the event stream; a driver task
//! moves commands, bytes and deadlines between them, the transport and the sans-IO
//! [`ClientCore`]. What differs between runtimes (opening a transport, a timer, the clock,
//! spawning) is the [`Runtime`] trait, which the adapters (`mqtt-tokio`, `mqtt-async-std`)
//! implement; they add nothing else. Also here:
//!
//! - `tls` (feature `tls`, on by default): the rustls client configuration from
//!   [`TlsOptions`](mqtt_session::client::TlsOptions) (rustls itself is runtime-independent),
//!   so that certificate verification follows the same rules everywhere;
//! - `websocket` (feature `websocket`, on by default): the upgrade request, the limits, and
//!   MQTT packets over binary WebSocket messages, against the `Stream`/`Sink` traits every
//!   tungstenite binding implements;
//!
//! Without those features neither rustls nor tungstenite is compiled, and a client with an
//! `mqtts://`, `ws://` or `wss://` broker is refused when it starts
//! ([`OptionsError::FeatureDisabled`](mqtt_session::client::OptionsError::FeatureDisabled)).
//! - [`poll_write_transmit_vectored`], [`poll_write_transmit`] and [`ReadBuffer`]: moving
//!   bytes between a byte stream and the core;
//! - [`Jitter`]: the random numbers that spread reconnect attempts.
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

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::task::Poll;
use std::time::Instant;

use bytes::BytesMut;
use mqtt_session::client::{ClientCore, TransportOptions};

pub mod client;
mod driver;
mod inbox;
mod outbox;
pub mod runtime;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(not(feature = "tls"))]
#[path = "tls_off.rs"]
pub mod tls;
#[cfg(feature = "websocket")]
pub mod websocket;

pub use runtime::{Runtime, Timer, Transport};

/// The TLS configuration a transport is opened with (rustls' `ClientConfig`; a type without
/// values when the `tls` feature is off).
pub type TlsConfig = std::sync::Arc<tls::ClientConfig>;

/// Refuses brokers whose scheme needs a feature this build lacks (`ws://`, `wss://` without
/// `websocket`), when the client starts rather than at each attempt.
pub(crate) fn check_schemes(
    brokers: &[mqtt_session::client::BrokerUrl],
) -> Result<(), mqtt_session::client::OptionsError> {
    if cfg!(feature = "websocket") {
        return Ok(());
    }
    match brokers.iter().find(|b| b.scheme.is_websocket()) {
        Some(broker) => Err(mqtt_session::client::OptionsError::FeatureDisabled {
            scheme: broker.scheme.as_str(),
            feature: "websocket",
        }),
        None => Ok(()),
    }
}

/// The client API every adapter re-exports (`pub use mqtt_io::api::*`) next to its own
/// `Client` alias and runtime types, so that the adapters' APIs cannot drift apart.
pub mod api {
    pub use crate::client::{Driver, Events, Pending, PublishHandle, TryPublishError};
    pub use mqtt_session::client::{
        Backoff, BrokerUrl, ClientOptions, ClientStats, ConnectAttempt, ConnectDecision,
        ConnectFailure, DialError, Error, Event, OptionsError, PemSource, Scheme, TlsOptions,
        TlsVersion, UrlError, MAX_WRITE_DELAY, WRITE_DELAY_FLUSH,
    };
    /// The packet model, for 5.0 properties, reason codes and topic types.
    pub use mqtt_session::proto;
    pub use mqtt_session::proto::{ProtocolVersion, Publish, QoS, Subscription, TopicFilter};
    pub use mqtt_session::{
        AckToken, AuthError, AuthFailure, Authenticator, Config, ConfigError, ConnectionError,
        FileStore, MemoryStore, Message, ProtocolViolation, PublishError, PublishOutcome,
        PublishToken, SessionStore, SetAside, StoreError, SubscribeError,
    };
}

/// Writes the core's pending bytes with `write` (one `poll_write` on a byte stream) and
/// reports how many were taken. `Ready(Ok(true))` when bytes were written, `Ready(Ok(false))`
/// when nothing is pending; a write of zero bytes is [`io::ErrorKind::WriteZero`]. One buffer
/// per write: a large payload goes in writes of its own, never copied next to its header.
pub fn poll_write_transmit<W>(
    core: &mut ClientCore<W>,
    now: Instant,
    write: impl FnOnce(&[u8]) -> Poll<io::Result<usize>>,
) -> Poll<io::Result<bool>> {
    let Some(bytes) = core.poll_transmit(now) else {
        return Poll::Ready(Ok(false));
    };
    let written = write(bytes);
    report_written(core, now, written)
}

/// Most buffers handed to one vectored write; packets share buffers, so this is a batch of
/// about half as many large messages, each with the small packets before it.
pub const MAX_WRITE_SLICES: usize = 64;

/// [`poll_write_transmit`] with one vectored write (`poll_write_vectored` on a byte stream)
/// of up to [`MAX_WRITE_SLICES`] buffers: small packets and the payloads of large PUBLISH
/// packets, which are the messages' own bytes and never copied into one buffer. A stream
/// without vectored writes takes the first buffer, and the next call goes on from where it
/// stopped.
pub fn poll_write_transmit_vectored<W>(
    core: &mut ClientCore<W>,
    now: Instant,
    write: impl FnOnce(&[io::IoSlice<'_>]) -> Poll<io::Result<usize>>,
) -> Poll<io::Result<bool>> {
    let mut slices = [io::IoSlice::new(&[]); MAX_WRITE_SLICES];
    let filled = core.poll_transmit_vectored(now, &mut slices);
    let Some(slices) = slices.get(..filled).filter(|s| !s.is_empty()) else {
        return Poll::Ready(Ok(false));
    };
    let written = write(slices);
    report_written(core, now, written)
}

/// Reports the outcome of a write to the core.
fn report_written<W>(
    core: &mut ClientCore<W>,
    now: Instant,
    written: Poll<io::Result<usize>>,
) -> Poll<io::Result<bool>> {
    match written {
        Poll::Ready(Ok(0)) => Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
        Poll::Ready(Ok(n)) => {
            core.handle_written(now, n);
            Poll::Ready(Ok(true))
        }
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    }
}

/// How much a connection reads at a time. Each read asks for the current read size; a read
/// that fills it doubles the size, up to the configured maximum, so one read never takes more
/// than that from the socket. The bytes go straight into the session's buffer
/// ([`ClientCore::read_buffer`]); the rest of a large packet is read in one go into a buffer of
/// its own size.
#[derive(Debug)]
pub struct ReadBuffer {
    size: usize,
    max: usize,
}

impl ReadBuffer {
    /// A read size policy from the client's options.
    pub fn new(options: &TransportOptions) -> Self {
        Self {
            size: options.read_buffer_size,
            max: options.max_read_buffer_size,
        }
    }

    /// Reads once with `read`, which gets the buffer (with room reserved) and the most bytes
    /// to read, and passes what arrived to `core` at the time `now` gives.
    /// `Ready(Ok(true))` when bytes arrived, `Ready(Ok(false))` at the end of the stream.
    pub fn poll_read<W>(
        &mut self,
        core: &mut ClientCore<W>,
        now: impl FnOnce() -> Instant,
        read: impl FnOnce(&mut BytesMut, usize) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<bool>> {
        let (buf, limit) = core.read_buffer(self.size);
        match read(buf, limit) {
            Poll::Ready(Ok(0)) => Poll::Ready(Ok(false)),
            Poll::Ready(Ok(n)) => {
                if n >= self.size {
                    // The socket had more than we asked for: read bigger chunks.
                    self.size = (self.size * 2).min(self.max);
                }
                core.handle_buffered(now());
                Poll::Ready(Ok(true))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A small random source for reconnect jitter, seeded by the standard library's hasher keys.
#[derive(Debug)]
pub struct Jitter(u64);

impl Default for Jitter {
    fn default() -> Self {
        Self::new()
    }
}

impl Jitter {
    /// A generator with a fresh seed.
    pub fn new() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(0x9e37_79b9_7f4a_7c15);
        Self(hasher.finish() | 1)
    }

    /// A value in `[0, 1)` (xorshift64*).
    pub fn sample(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        let bits = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        bits as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_range_and_varies() {
        let mut jitter = Jitter::new();
        let values: Vec<f64> = (0..1000).map(|_| jitter.sample()).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        assert!(values.windows(2).any(|w| w[0] != w[1]));
    }
}

#[cfg(test)]
mod feature_tests {
    use mqtt_session::client::{BrokerUrl, OptionsError, TlsOptions};

    fn urls(list: &[&str]) -> Vec<BrokerUrl> {
        list.iter().map(|u| BrokerUrl::parse(u).unwrap()).collect()
    }

    #[test]
    fn schemes_need_their_features() {
        let plain = urls(&["mqtt://h", "unix:///tmp/s"]);
        assert!(super::check_schemes(&plain).is_ok());
        assert!(
            super::tls::client_config_for(&plain, &TlsOptions::default())
                .unwrap()
                .is_none()
        );
        let ws = super::check_schemes(&urls(&["mqtt://h", "ws://h/mqtt"]));
        if cfg!(feature = "websocket") {
            assert!(ws.is_ok());
        } else {
            assert!(matches!(
                ws,
                Err(OptionsError::FeatureDisabled {
                    feature: "websocket",
                    ..
                })
            ));
        }
        let tls = super::tls::client_config_for(&urls(&["mqtts://h"]), &TlsOptions::default());
        if !cfg!(feature = "tls") {
            assert!(matches!(
                tls,
                Err(OptionsError::FeatureDisabled { feature: "tls", .. })
            ));
        }
    }
}
