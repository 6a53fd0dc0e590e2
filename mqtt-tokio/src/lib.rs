//! An async MQTT 3.1 / 3.1.1 / 5.0 client for tokio.
//!
//! The sans-IO [`mqtt_session`] decodes packets, runs the QoS flows and keep alive; the
//! client handle and its driver task are written once in [`mqtt_io`]; this crate gives them
//! tokio's sockets, timers and spawner (the [`Tokio`] runtime).
//!
//! - [`Client::connect`] returns a cloneable [`Client`] handle and the [`Events`] stream.
//! - `publish(..).await` resolves when that message's flow completes (QoS 0: written;
//!   QoS 1: PUBACK; QoS 2: PUBCOMP); [`Client::try_publish`] returns a token at once.
//! - Transports by URL: `mqtt://` (TCP), `mqtts://` (TLS with rustls, verified against the
//!   system's roots or a given CA), `ws://` and `wss://` (WebSocket, subprotocol `mqtt`),
//!   `unix:///path` (Unix domain socket). Several URLs fail over in order.
//! - Reconnects with exponential backoff and jitter, resuming a persistent session so that
//!   nothing in flight is lost; an optional [`FileStore`] keeps it across restarts.
//!
//! ```no_run
//! use mqtt_tokio::{Client, ClientOptions, Event, Message, QoS};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let options = ClientOptions::new("mqtts://broker.example")
//!     .client_id("sensor-17")
//!     .credentials("alice", "secret");
//! let (client, mut events) = Client::connect(options)?;
//! client.subscribe("commands/sensor-17", QoS::AtLeastOnce).await?;
//! client.publish(Message::new("sensors/17", "21.5")?.qos(QoS::ExactlyOnce)).await?;
//! while let Some(event) = events.recv().await {
//!     if let Event::Message { publish, .. } = event {
//!         println!("command: {:?}", publish.payload);
//!     }
//! }
//! # Ok(())
//! # }
//! ```
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

mod runtime;
mod transport;

pub use mqtt_io::api::*;
pub use runtime::{Client, Tokio, TokioTimer};
pub use transport::Transport;
