//! [`AsyncIo`]: the runtime-neutral runtime that [`Client`] runs on.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_core::Stream;
use mqtt_io::client::Driver;
use mqtt_session::client::{BrokerUrl, DialError, TlsOptions};

use crate::transport::{self, Transport};

/// A handle to an MQTT client. Cheap to clone; every clone talks to the same connection.
///
/// [`Client::connect`] spawns one driver task on the global executor that async-std uses
/// (`async-global-executor`); [`Client::connect_with`] hands it to any executor instead,
/// e.g. `|driver| smol::spawn(driver).detach()`. The task dials the broker (failing over
/// through the listed URLs and reconnecting with backoff), resumes the session, and reports
/// what happens through [`Events`](crate::Events). Commands reach it through channels that it
/// never blocks on, so a task handling events may call any method without deadlock, and a
/// slow event consumer never delays the completion of commands.
///
/// The handle works from any executor, or none: its futures need no runtime context.
///
/// Dropping every handle closes the connection without DISCONNECT, as a crash would (the
/// broker publishes the will); call [`disconnect`](mqtt_io::client::Client::disconnect) for
/// a clean end.
///
/// ```no_run
/// use mqtt_async_std::{Client, ClientOptions, Event, Message, QoS};
///
/// # async fn run() -> Result<(), mqtt_async_std::Error> {
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
pub type Client = mqtt_io::client::Client<AsyncIo>;

/// The pieces async-std and smol are both built from: `async-net` sockets, `futures-rustls`,
/// `async-tungstenite`, `async-io` timers on the standard clock, and
/// `async-global-executor` to spawn the driver (unless [`Client::connect_with`] is given
/// another spawner).
#[derive(Debug, Clone, Copy)]
pub struct AsyncIo;

impl mqtt_io::Runtime for AsyncIo {
    type Transport = Transport;
    type Timer = AsyncIoTimer;

    fn connect(
        url: BrokerUrl,
        tls: Option<mqtt_io::TlsConfig>,
        tls_options: TlsOptions,
        max_packet_size: usize,
    ) -> impl Future<Output = Result<Transport, DialError>> + Send {
        transport::connect(url, tls, tls_options, max_packet_size)
    }

    fn timer() -> AsyncIoTimer {
        AsyncIoTimer(async_io::Timer::never())
    }

    fn now() -> Instant {
        Instant::now()
    }

    fn spawn(driver: Driver) {
        async_global_executor::spawn(driver).detach();
    }
}

/// An `async_io::Timer` behind the [`mqtt_io::Timer`] trait.
#[derive(Debug)]
pub struct AsyncIoTimer(async_io::Timer);

impl mqtt_io::Timer for AsyncIoTimer {
    fn set(mut self: Pin<&mut Self>, deadline: Instant) {
        self.0.set_at(deadline);
    }

    fn poll_fired(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll_next(cx).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientOptions, Error, Events, Message, QoS};

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}

    #[test]
    fn handles_cross_threads() {
        send_sync::<Client>();
        send::<Events>();
        send::<Driver>();
    }

    #[test]
    fn invalid_options_spawn_nothing() {
        let mut spawned = false;
        let result = Client::connect_with(ClientOptions::new("http://x"), |_| spawned = true);
        assert!(matches!(result, Err(Error::Options(_))));
        assert!(!spawned);
    }

    #[test]
    fn an_unpolled_driver_leaves_the_handles_closed() {
        let (client, mut events) =
            Client::connect_with(ClientOptions::new("mqtt://127.0.0.1:1"), drop).unwrap();
        let message = Message::new("t", "x").unwrap();
        assert!(matches!(
            client.try_publish(message),
            Err(mqtt_io::api::TryPublishError::Stopped(_, Error::Closed))
        ));
        assert!(events.try_recv().is_none());
        futures_lite::future::block_on(async {
            assert!(matches!(
                client.subscribe("t", QoS::AtMostOnce).await,
                Err(Error::Closed)
            ));
            assert!(client.disconnect().await.is_ok());
            assert!(events.recv().await.is_none());
        });
    }
}
