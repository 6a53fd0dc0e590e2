//! [`Tokio`]: the runtime that [`Client`] runs on.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use mqtt_io::client::Driver;
use mqtt_session::client::{BrokerUrl, DialError, TlsOptions};
use tokio::time::Sleep;

use crate::transport::{self, Transport};

/// A handle to an MQTT client running on tokio. Cheap to clone; every clone talks to the
/// same connection.
///
/// [`Client::connect`] spawns one driver task with `tokio::spawn` (so it panics outside a
/// tokio runtime; [`Client::connect_with`] takes any spawner, e.g. a runtime
/// `Handle::spawn`). The task dials the broker (failing over through the listed URLs and
/// reconnecting with backoff), resumes the session, and reports what happens through
/// [`Events`](crate::Events). Commands reach it through channels that it never blocks on, so
/// a task handling events may call any method without deadlock, and a slow event consumer
/// never delays the completion of commands.
///
/// Dropping every handle closes the connection without DISCONNECT, as a crash would (the
/// broker publishes the will); call [`disconnect`](mqtt_io::client::Client::disconnect) for
/// a clean end.
///
/// ```no_run
/// use mqtt_tokio::{Client, ClientOptions, Event, Message, QoS};
///
/// # async fn run() -> Result<(), mqtt_tokio::Error> {
/// let options = ClientOptions::new("mqtt://localhost:1883").client_id("example");
/// let (client, mut events) = Client::connect(options)?;
/// client.subscribe("sensors/#", QoS::AtLeastOnce).await?;
/// client
///     .publish(Message::new("sensors/kitchen", "21.5")?.qos(QoS::AtLeastOnce))
///     .await?;
/// while let Some(event) = events.recv().await {
///     match event {
///         Event::Message { publish, .. } => {
///             println!("{}: {:?}", publish.topic.as_str(), publish.payload);
///             break;
///         }
///         Event::Closed => break,
///         _ => {}
///     }
/// }
/// client.disconnect().await?;
/// # Ok(())
/// # }
/// ```
pub type Client = mqtt_io::client::Client<Tokio>;

/// The tokio runtime as the client uses it: `tokio::net` sockets, `tokio-rustls`,
/// `tokio-tungstenite`, `tokio::time` (so clients follow paused test time) and
/// `tokio::spawn`.
#[derive(Debug, Clone, Copy)]
pub struct Tokio;

impl mqtt_io::Runtime for Tokio {
    type Transport = Transport;
    type Timer = TokioTimer;

    fn connect(
        url: BrokerUrl,
        tls: Option<mqtt_io::TlsConfig>,
        tls_options: TlsOptions,
        max_packet_size: usize,
    ) -> impl Future<Output = Result<Transport, DialError>> + Send {
        transport::connect(url, tls, tls_options, max_packet_size)
    }

    fn timer() -> TokioTimer {
        TokioTimer(Box::pin(tokio::time::sleep_until(
            tokio::time::Instant::now(),
        )))
    }

    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn spawn(driver: Driver) {
        tokio::spawn(driver);
    }
}

/// A `tokio::time::Sleep` that can be moved to a new deadline.
#[derive(Debug)]
pub struct TokioTimer(Pin<Box<Sleep>>);

impl mqtt_io::Timer for TokioTimer {
    fn set(mut self: Pin<&mut Self>, deadline: Instant) {
        self.0.as_mut().reset(deadline.into());
    }

    fn poll_fired(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}
