//! An async MQTT 3.1 / 3.1.1 / 5.0 client for tokio.
//!
//! The sans-IO [`mqtt_session`] decodes packets, runs the QoS flows and keep alive; the
//! client handle and its driver task are written once in [`mqtt_io`]; this crate gives them
//! tokio's sockets, timers and spawner (the [`Tokio`] runtime).
//!
//! - [`Client::connect`] returns a cloneable [`Client`] handle and the [`Events`] stream.
//! - `publish(..).await` waits only for room in the client's publish queue and returns a
//!   [`PublishHandle`], which resolves when that message's flow completes (QoS 0: written;
//!   QoS 1: PUBACK; QoS 2: PUBCOMP): a plain loop keeps the in-flight window full (see
//!   below). [`Client::try_publish`] never waits, and gives the message back in
//!   [`TryPublishError::Full`] when the queue is full.
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
//!
//! Publishing in two stages, against the demo broker of `mqtt-testkit`:
//!
//! ```
//! use mqtt_tokio::{Client, ClientOptions, Message, PublishOutcome, QoS, TryPublishError};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let url = mqtt_testkit::embedded_broker()?;
//! let (client, _events) = Client::connect(ClientOptions::new(&url))?;
//! // The loop does not wait for acknowledgements: up to the in-flight window travels at once.
//! let mut handles = Vec::new();
//! for i in 0..100 {
//!     let message = Message::new("sensors/17", i.to_string())?.qos(QoS::AtLeastOnce);
//!     handles.push(client.publish(message).await?);
//! }
//! for handle in handles {
//!     assert!(matches!(handle.await?, PublishOutcome::Acknowledged { .. }));
//! }
//! // `try_publish` never waits; a full queue gives the message back to publish later.
//! match client.try_publish(Message::new("sensors/17", "last")?) {
//!     Ok(handle) => drop(handle), // dropping a handle does not cancel the message
//!     Err(TryPublishError::Full(message)) => drop(client.publish(message).await?),
//!     Err(e) => return Err(e.into()),
//! }
//! client.disconnect().await?;
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
