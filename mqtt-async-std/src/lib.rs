//! An async MQTT 3.1 / 3.1.1 / 5.0 client for async-std, smol and any other executor.
//!
//! The sans-IO [`mqtt_session`] decodes packets, runs the QoS flows and keep alive; the
//! client handle and its driver task are written once in [`mqtt_io`]; this crate gives them
//! sockets from `async-net`, timers from `async-io`, streams through the `futures-io` traits
//! and a spawner (the [`AsyncIo`] runtime). Nothing here depends on one runtime: the reactor
//! of `async-io` serves async-std and smol alike (it runs on its own thread when no
//! `block_on` drives it).
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
//! # Where the client runs
//!
//! The crate does not depend on async-std itself (deprecated upstream in favour of smol):
//! only on the pieces both are built from, `async-io`, `async-net` and, for the default
//! spawner, `async-global-executor`.
//!
//! Each client has one driver task. [`Client::connect`] spawns it on the global executor of
//! `async-global-executor`, which is the executor async-std's `task::spawn` uses: on
//! async-std the driver is an ordinary task. Any other executor, smol's included, works as
//! it is, the driver then running on that global executor's threads; to keep it on your own
//! executor, pass a spawner to [`Client::connect_with`]:
//!
//! ```no_run
//! # fn run() -> Result<(), mqtt_async_std::Error> {
//! use mqtt_async_std::{Client, ClientOptions};
//!
//! let options = ClientOptions::new("mqtt://localhost:1883");
//! let (client, events) = Client::connect_with(options, |driver| smol::spawn(driver).detach())?;
//! # Ok(())
//! # }
//! ```
//!
//! ```no_run
//! use mqtt_async_std::{Client, ClientOptions, Event, Message, QoS};
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
pub use runtime::{AsyncIo, AsyncIoTimer, Client};
pub use transport::Transport;
