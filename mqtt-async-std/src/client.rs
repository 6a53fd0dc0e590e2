//! [`Client`], its [`Events`], and the [`Driver`] task behind them.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender, TrySendError};
use async_io::Timer;
use futures_channel::oneshot;
use futures_core::Stream;
use mqtt_io::{Jitter, ReadBuffer};
use mqtt_session::client::{
    BrokerUrl, ClientCore, ClientOptions, Command, Error, Event, HandleState, Output, Reply, Step,
    TransportOptions,
};
use mqtt_session::proto::{
    Auth, QoS, SubAckReasonCode, SubscribeProperties, Subscription, TopicFilter,
    UnsubAckReasonCode, UnsubscribeProperties,
};
use mqtt_session::{AckToken, Message, PublishOutcome, PublishToken};
use tracing::debug;

use crate::transport::{self, Transport};

/// How the driver answers one caller.
type Waiter = oneshot::Sender<Reply>;

/// Most commands taken from one channel before the driver turns to the socket.
const COMMAND_BATCH: usize = 256;

/// How long a graceful close of the transport may take after DISCONNECT.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A handle to an MQTT client. Cheap to clone; every clone talks to the same connection.
///
/// [`Client::connect`] starts one driver task that owns the connection: it dials the broker
/// (failing over through the listed URLs and reconnecting with backoff), resumes the
/// session, and reports what happens through [`Events`]. Commands reach it through channels
/// that it never blocks on, so a task handling events may call any method here without
/// deadlock, and a slow event consumer never delays the completion of commands.
///
/// The handle works from any executor, or none: its futures need no runtime context.
///
/// Dropping every handle closes the connection without DISCONNECT, as a crash would (the
/// broker publishes the will); call [`disconnect`](Self::disconnect) for a clean end.
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
#[derive(Clone)]
pub struct Client {
    publish_tx: Sender<Command<Waiter>>,
    control_tx: Sender<Command<Waiter>>,
    shared: Arc<HandleState>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("connected", &self.is_connected())
            .field("stopped", &self.control_tx.is_closed())
            .finish()
    }
}

/// The events of one client, in order; see [`Event`]. The stream ends after
/// [`Event::Closed`].
///
/// The channel behind it is unbounded, so that handling an event may await a command
/// without deadlock: read events promptly, or memory grows with unread messages.
#[derive(Debug)]
pub struct Events {
    rx: Pin<Box<Receiver<Event>>>,
}

impl Events {
    /// The next event; `None` once the client has stopped and every event was read.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await.ok()
    }

    /// The next event if one is ready.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// Polls for the next event.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.as_mut().poll_next(cx)
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.get_mut().poll_recv(cx)
    }
}

/// The task that owns a client's connection, for [`Client::connect_with`] to hand to an
/// executor. It needs nothing from the executor but to be polled: sockets and timers belong
/// to the `async-io` reactor. It finishes when the client stops.
#[must_use = "the client does nothing unless its driver is polled"]
pub struct Driver(Pin<Box<dyn Future<Output = ()> + Send>>);

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Driver")
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

fn closed<T>(_: T) -> Error {
    Error::Closed
}

impl Client {
    /// Starts a client: checks the options, spawns its driver task on the global executor
    /// that async-std uses (`async-global-executor`), and returns a handle with the client's
    /// events. Connecting happens in the background; [`Event::Connected`] reports success.
    ///
    /// Works under async-std, smol or any other executor; see [`connect_with`](Self::connect_with)
    /// to run the driver on an executor of your choice.
    pub fn connect(options: ClientOptions) -> Result<(Client, Events), Error> {
        Self::connect_with(options, |driver| {
            async_global_executor::spawn(driver).detach();
        })
    }

    /// Starts a client like [`connect`](Self::connect), but hands the driver task to `spawn`,
    /// which must poll it to completion: e.g. `|driver| smol::spawn(driver).detach()`, or
    /// `|driver| async_std::task::spawn(driver)`. The client does nothing until it is
    /// polled.
    pub fn connect_with(
        options: ClientOptions,
        spawn: impl FnOnce(Driver),
    ) -> Result<(Client, Events), Error> {
        let (core, transport) = ClientCore::new(options)?;
        let tls = mqtt_io::tls::client_config_for(core.brokers(), &transport.tls)?;
        let (publish_tx, publish_rx) = async_channel::bounded(transport.publish_capacity);
        let (control_tx, control_rx) = async_channel::unbounded();
        let (events_tx, events_rx) = async_channel::unbounded();
        let shared = Arc::new(HandleState::new(&core));
        let driver = Connection {
            core,
            read_buf: ReadBuffer::new(&transport),
            options: transport,
            tls,
            publish_rx: Box::pin(publish_rx),
            publish_open: true,
            control_rx: Box::pin(control_rx),
            events: events_tx,
            shared: shared.clone(),
            jitter: Jitter::new(),
        };
        spawn(Driver(Box::pin(driver.run())));
        let client = Client {
            publish_tx,
            control_tx,
            shared,
        };
        let events = Events {
            rx: Box::pin(events_rx),
        };
        Ok((client, events))
    }

    /// Whether the broker has accepted the current connection.
    pub fn is_connected(&self) -> bool {
        self.shared.is_connected()
    }

    /// Publishes a message and waits until its flow completes: QoS 0 once written to the
    /// transport, QoS 1 on PUBACK, QoS 2 on PUBCOMP. Messages published while disconnected
    /// wait for the next connection. Waits for room when many publishes are outstanding.
    ///
    /// Returns the outcome (which for 5.0 may be a rejection by the broker), or why the
    /// message could not be sent.
    pub async fn publish(&self, message: Message) -> Result<PublishOutcome, Error> {
        let (tx, rx) = oneshot::channel();
        let command = Command::Publish {
            message,
            token: self.shared.next_token(),
            waiter: Some(tx),
        };
        self.publish_tx.send(command).await.map_err(closed)?;
        rx.await.map_err(closed)?.into_published()
    }

    /// Queues a message without waiting; [`Event::Published`] with the returned token
    /// reports its completion. Fails with [`Error::QueueFull`] when the publish queue is full.
    pub fn try_publish(&self, message: Message) -> Result<PublishToken, Error> {
        let token = self.shared.next_token();
        let command = Command::Publish {
            message,
            token,
            waiter: None,
        };
        match self.publish_tx.try_send(command) {
            Ok(()) => Ok(token),
            Err(TrySendError::Full(_)) => Err(Error::QueueFull),
            Err(TrySendError::Closed(_)) => Err(Error::Closed),
        }
    }

    async fn request(&self, make: impl FnOnce(Waiter) -> Command<Waiter>) -> Result<Reply, Error> {
        let (tx, rx) = oneshot::channel();
        self.control_tx.try_send(make(tx)).map_err(closed)?;
        rx.await.map_err(closed)
    }

    /// Subscribes to one filter; returns the QoS the broker granted, or
    /// [`Error::SubscribeRefused`].
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<QoS, Error> {
        let filters = vec![Subscription::new(TopicFilter::new(filter)?, qos)];
        let properties = SubscribeProperties::default();
        self.request(|waiter| Command::Subscribe {
            filters,
            properties,
            waiter,
        })
        .await?
        .into_granted()
    }

    /// Subscribes to several filters at once; returns per filter the granted QoS or the
    /// refusal.
    pub async fn subscribe_many(
        &self,
        subscriptions: Vec<Subscription>,
    ) -> Result<Vec<Result<QoS, SubAckReasonCode>>, Error> {
        let properties = SubscribeProperties::default();
        self.subscribe_with(subscriptions, properties).await
    }

    /// Subscribes with 5.0 properties (subscription identifier, user properties).
    pub async fn subscribe_with(
        &self,
        filters: Vec<Subscription>,
        properties: SubscribeProperties,
    ) -> Result<Vec<Result<QoS, SubAckReasonCode>>, Error> {
        let reply = self.request(|waiter| Command::Subscribe {
            filters,
            properties,
            waiter,
        });
        reply.await?.into_subscribed()
    }

    /// Unsubscribes from one filter; returns the broker's answer (always success before 5.0).
    pub async fn unsubscribe(&self, filter: &str) -> Result<UnsubAckReasonCode, Error> {
        let filters = vec![TopicFilter::new(filter)?];
        let properties = UnsubscribeProperties::default();
        self.request(|waiter| Command::Unsubscribe {
            filters,
            properties,
            waiter,
        })
        .await?
        .into_unsubscribed_one()
    }

    /// Unsubscribes from several filters at once.
    pub async fn unsubscribe_many(
        &self,
        filters: Vec<TopicFilter>,
    ) -> Result<Vec<UnsubAckReasonCode>, Error> {
        let properties = UnsubscribeProperties::default();
        self.unsubscribe_with(filters, properties).await
    }

    /// Unsubscribes with 5.0 properties.
    pub async fn unsubscribe_with(
        &self,
        filters: Vec<TopicFilter>,
        properties: UnsubscribeProperties,
    ) -> Result<Vec<UnsubAckReasonCode>, Error> {
        let reply = self.request(|waiter| Command::Unsubscribe {
            filters,
            properties,
            waiter,
        });
        reply.await?.into_unsubscribed()
    }

    /// Acknowledges a message received in manual-ack mode (see
    /// [`ClientOptions::manual_acks`]). Acknowledgements leave in arrival order; a token the
    /// session does not know is reported as [`Event::Error`].
    pub fn ack(&self, token: AckToken) -> Result<(), Error> {
        self.control_tx
            .try_send(Command::Ack(token))
            .map_err(closed)
    }

    /// Sends an AUTH step of 5.0 enhanced authentication.
    pub async fn auth(&self, auth: Auth) -> Result<(), Error> {
        let reply = self.request(|waiter| Command::Auth { auth, waiter });
        reply.await?.into_done()
    }

    /// Ends the client gracefully: publishes already requested go out and complete (up to
    /// the disconnect timeout), then DISCONNECT is sent (so the broker discards the will),
    /// the connection closes and the client stops. Returns once stopped; succeeds also when
    /// the client had already stopped.
    pub async fn disconnect(&self) -> Result<(), Error> {
        let reply = self.request(|waiter| Command::Disconnect { waiter }).await;
        match reply.and_then(Reply::into_done) {
            Err(Error::Closed) => Ok(()),
            result => result,
        }
    }

    /// Closes the connection at once without DISCONNECT, as a crash would: the broker
    /// publishes the will. The client stops.
    pub fn abort(&self) {
        let _ = self.control_tx.try_send(Command::Abort);
    }
}

fn now() -> Instant {
    Instant::now()
}

/// `future`'s output, or `None` if `limit` passes first.
async fn within<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    let expired = async {
        Timer::after(limit).await;
        None
    };
    futures_lite::future::or(async { Some(future.await) }, expired).await
}

/// Why the connection loop woke up.
enum Wake {
    /// Something was done; deliver outputs and look again.
    Progress,
    /// The transport ended, with the error if any.
    Closed(Option<io::Error>),
}

/// What happened while waiting for an operation with the transport closed.
enum Offline<T> {
    Control(Option<Command<Waiter>>),
    Publish(Option<Command<Waiter>>),
    Done(T),
}

/// The state of the driver task.
struct Connection {
    core: ClientCore<Waiter>,
    options: TransportOptions,
    tls: Option<Arc<rustls::ClientConfig>>,
    publish_rx: Pin<Box<Receiver<Command<Waiter>>>>,
    publish_open: bool,
    control_rx: Pin<Box<Receiver<Command<Waiter>>>>,
    events: Sender<Event>,
    shared: Arc<HandleState>,
    read_buf: ReadBuffer,
    jitter: Jitter,
}

impl Connection {
    async fn run(mut self) {
        loop {
            self.deliver();
            match self.core.step() {
                Step::Stopped => break,
                Step::Dial(url) => {
                    let url = url.clone();
                    if let Some(transport) = self.dial(url).await {
                        self.online(transport).await;
                    }
                }
                Step::Wait(until) => self.wait(until).await,
                Step::Online => {
                    // Only reachable with a transport in hand; recover by closing.
                    let random = self.jitter.sample();
                    self.core.handle_closed(now(), None, random);
                }
            }
        }
        self.deliver();
        debug!("driver finished");
    }

    /// Hands replies and events out.
    fn deliver(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Reply(waiter, reply) => {
                    let _ = waiter.send(reply);
                }
                Output::Event(event) => {
                    let _ = self.events.try_send(event);
                }
            }
        }
        self.shared.update(&self.core);
    }

    /// Passes a command to the core. A disconnect first takes every publish already
    /// requested, so that they go out before DISCONNECT.
    fn on_command(&mut self, command: Command<Waiter>) {
        if matches!(command, Command::Disconnect { .. }) && self.publish_open {
            self.publish_rx.close();
            while let Ok(publish) = self.publish_rx.try_recv() {
                self.core.handle_command(now(), publish);
            }
            self.publish_open = false;
        }
        self.core.handle_command(now(), command);
    }

    /// Handles commands while `operation` runs; returns its output, or `None` if the client
    /// stopped meanwhile.
    async fn offline<T>(&mut self, operation: impl Future<Output = T>) -> Option<T> {
        let mut operation = pin!(operation);
        loop {
            let accept_publish = self.publish_open && self.core.accepts_publishes();
            let next = poll_fn(|cx| {
                if let Poll::Ready(command) = self.control_rx.as_mut().poll_next(cx) {
                    return Poll::Ready(Offline::Control(command));
                }
                if accept_publish {
                    if let Poll::Ready(command) = self.publish_rx.as_mut().poll_next(cx) {
                        return Poll::Ready(Offline::Publish(command));
                    }
                }
                operation.as_mut().poll(cx).map(Offline::Done)
            })
            .await;
            match next {
                Offline::Control(Some(command)) => self.on_command(command),
                Offline::Control(None) => self.core.handle_clients_gone(now()),
                Offline::Publish(Some(command)) => self.core.handle_command(now(), command),
                Offline::Publish(None) => self.publish_open = false,
                Offline::Done(output) => return Some(output),
            }
            self.deliver();
            if self.core.is_stopped() {
                return None;
            }
        }
    }

    /// Opens a transport to `url`, handling commands meanwhile.
    async fn dial(&mut self, url: BrokerUrl) -> Option<Transport> {
        debug!(broker = %url, "connecting");
        let tls = self.tls.clone();
        let tls_options = self.options.tls.clone();
        let limit = self.options.connect_timeout;
        let max_packet_size = self.options.max_packet_size;
        let connect = async move {
            let connect = transport::connect(&url, tls.as_ref(), &tls_options, max_packet_size);
            within(limit, connect).await.unwrap_or_else(|| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "timed out opening the transport",
                ))
            })
        };
        match self.offline(connect).await? {
            Ok(transport) => {
                self.core.handle_connected(now());
                Some(transport)
            }
            Err(error) => {
                let random = self.jitter.sample();
                self.core.handle_connect_failed(now(), error, random);
                None
            }
        }
    }

    /// Waits out a reconnect delay, handling commands meanwhile.
    async fn wait(&mut self, until: Instant) {
        if self.offline(Timer::at(until)).await.is_some() {
            self.core.handle_timeout(now());
        }
    }

    /// Runs one connection until it ends.
    async fn online(&mut self, mut transport: Transport) {
        let mut timer = Timer::never();
        let mut armed: Option<Instant> = None;
        let mut flush_pending = false;
        loop {
            self.deliver();
            if self.core.step() != Step::Online {
                // Closed, or stopped by abort: dropping the transport closes it.
                return;
            }
            if self.core.wants_close() && self.core.poll_transmit().is_none() && !flush_pending {
                let close = poll_fn(|cx| transport.poll_close(cx));
                if let Some(Err(error)) = within(CLOSE_TIMEOUT, close).await {
                    debug!(%error, "closing the transport");
                }
                let random = self.jitter.sample();
                self.core.handle_closed(now(), None, random);
                continue;
            }
            let deadline = self.core.poll_timeout();
            if deadline != armed {
                if let Some(deadline) = deadline {
                    timer.set_at(deadline);
                }
                armed = deadline;
            }
            let wake = poll_fn(|cx| {
                self.poll_connection(
                    cx,
                    &mut transport,
                    &mut timer,
                    &mut armed,
                    &mut flush_pending,
                )
            })
            .await;
            if let Wake::Closed(error) = wake {
                let random = self.jitter.sample();
                self.core.handle_closed(now(), error, random);
            }
        }
    }

    /// One pass over every source: commands, writes, reads, the timer. Ready when anything
    /// happened. A timer that fired is disarmed, so the next pass sets it again if the core
    /// still wants that deadline.
    fn poll_connection(
        &mut self,
        cx: &mut Context<'_>,
        transport: &mut Transport,
        timer: &mut Timer,
        armed: &mut Option<Instant>,
        flush_pending: &mut bool,
    ) -> Poll<Wake> {
        let mut progress = false;
        for _ in 0..COMMAND_BATCH {
            match self.control_rx.as_mut().poll_next(cx) {
                Poll::Ready(Some(command)) => {
                    progress = true;
                    self.on_command(command);
                    if self.core.step() != Step::Online {
                        return Poll::Ready(Wake::Progress);
                    }
                }
                Poll::Ready(None) => {
                    self.core.handle_clients_gone(now());
                    return Poll::Ready(Wake::Progress);
                }
                Poll::Pending => break,
            }
        }
        let mut taken = 0;
        while self.publish_open && self.core.accepts_publishes() && taken < COMMAND_BATCH {
            match self.publish_rx.as_mut().poll_next(cx) {
                Poll::Ready(Some(command)) => {
                    progress = true;
                    taken += 1;
                    self.core.handle_command(now(), command);
                }
                Poll::Ready(None) => self.publish_open = false,
                Poll::Pending => break,
            }
        }
        loop {
            match transport.poll_transmit(cx, &mut self.core) {
                Poll::Ready(Ok(true)) => {
                    progress = true;
                    *flush_pending = true;
                }
                Poll::Ready(Ok(false)) => {
                    if *flush_pending {
                        match transport.poll_flush(cx) {
                            Poll::Ready(Ok(())) => *flush_pending = false,
                            Poll::Ready(Err(e)) => return Poll::Ready(Wake::Closed(Some(e))),
                            Poll::Pending => {}
                        }
                    }
                    break;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Wake::Closed(Some(e))),
                Poll::Pending => break,
            }
        }
        if !self.core.wants_close() {
            let read = |buf: &mut _, size| transport.poll_read(cx, buf, size);
            match self.read_buf.poll_read(&mut self.core, now, read) {
                Poll::Ready(Ok(true)) => progress = true,
                Poll::Ready(Ok(false)) => return Poll::Ready(Wake::Closed(None)),
                Poll::Ready(Err(e)) => return Poll::Ready(Wake::Closed(Some(e))),
                Poll::Pending => {}
            }
        }
        if armed.is_some() && Pin::new(&mut *timer).poll_next(cx).is_ready() {
            progress = true;
            *armed = None;
            self.core.handle_timeout(now());
        }
        if progress {
            Poll::Ready(Wake::Progress)
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(matches!(client.try_publish(message), Err(Error::Closed)));
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
