//! [`Client`], its [`Events`] and the driver task behind them.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use mqtt_io::{Jitter, ReadBuffer};
use mqtt_session::client::{
    ClientCore, ClientOptions, Command, Error, Event, HandleState, Output, Reply, Step,
    TransportOptions,
};
use mqtt_session::proto::{
    Auth, QoS, SubAckReasonCode, SubscribeProperties, Subscription, TopicFilter,
    UnsubAckReasonCode, UnsubscribeProperties,
};
use mqtt_session::{AckToken, Message, PublishOutcome, PublishToken};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Sleep;
use tracing::debug;

use crate::transport::{self, Transport};

/// How the driver answers one caller.
type Waiter = oneshot::Sender<Reply>;

/// Most commands taken from one channel before the driver turns to the socket.
const COMMAND_BATCH: usize = 256;

/// How long a graceful close of the transport may take after DISCONNECT.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A handle to an MQTT client running on tokio. Cheap to clone; every clone talks to the
/// same connection.
///
/// [`Client::connect`] spawns one driver task that owns the connection: it dials the
/// broker (failing over through the listed URLs and reconnecting with backoff), resumes the
/// session, and reports what happens through [`Events`]. Commands reach it through channels
/// that it never blocks on, so a task handling events may call any method here without
/// deadlock, and a slow event consumer never delays the completion of commands.
///
/// Dropping every handle closes the connection without DISCONNECT, as a crash would (the
/// broker publishes the will); call [`disconnect`](Self::disconnect) for a clean end.
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
#[derive(Clone)]
pub struct Client {
    publish_tx: mpsc::Sender<Command<Waiter>>,
    control_tx: mpsc::UnboundedSender<Command<Waiter>>,
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
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Events {
    /// The next event; `None` once the client has stopped and every event was read.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is ready.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// Polls for the next event.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}

impl futures_core::Stream for Events {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.get_mut().rx.poll_recv(cx)
    }
}

fn closed<T>(_: T) -> Error {
    Error::Closed
}

impl Client {
    /// Starts a client: checks the options, spawns its driver task on the current tokio
    /// runtime, and returns a handle with the client's events. Connecting happens in the
    /// background; [`Event::Connected`] reports success.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn connect(options: ClientOptions) -> Result<(Client, Events), Error> {
        let (core, transport) = ClientCore::new(options)?;
        let tls = mqtt_io::tls::client_config_for(core.brokers(), &transport.tls)?;
        let (publish_tx, publish_rx) = mpsc::channel(transport.publish_capacity);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(HandleState::new(&core));
        let driver = Driver {
            core,
            read_buf: ReadBuffer::new(&transport),
            options: transport,
            tls,
            publish_rx,
            publish_open: true,
            control_rx,
            events: events_tx,
            shared: shared.clone(),
            jitter: Jitter::new(),
        };
        tokio::spawn(driver.run());
        let client = Client {
            publish_tx,
            control_tx,
            shared,
        };
        Ok((client, Events { rx: events_rx }))
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
        self.publish_tx.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::QueueFull,
            mpsc::error::TrySendError::Closed(_) => Error::Closed,
        })?;
        Ok(token)
    }

    async fn request(&self, make: impl FnOnce(Waiter) -> Command<Waiter>) -> Result<Reply, Error> {
        let (tx, rx) = oneshot::channel();
        self.control_tx.send(make(tx)).map_err(closed)?;
        rx.await.map_err(closed)
    }

    /// Subscribes to one filter; returns the QoS the broker granted, or
    /// [`Error::SubscribeRefused`].
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<QoS, Error> {
        let filters = vec![Subscription::new(TopicFilter::new(filter)?, qos)];
        self.request(|waiter| Command::Subscribe {
            filters,
            properties: SubscribeProperties::default(),
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
        self.subscribe_with(subscriptions, SubscribeProperties::default())
            .await
    }

    /// Subscribes with 5.0 properties (subscription identifier, user properties).
    pub async fn subscribe_with(
        &self,
        subscriptions: Vec<Subscription>,
        properties: SubscribeProperties,
    ) -> Result<Vec<Result<QoS, SubAckReasonCode>>, Error> {
        self.request(|waiter| Command::Subscribe {
            filters: subscriptions,
            properties,
            waiter,
        })
        .await?
        .into_subscribed()
    }

    /// Unsubscribes from one filter; returns the broker's answer (always success before 5.0).
    pub async fn unsubscribe(&self, filter: &str) -> Result<UnsubAckReasonCode, Error> {
        let filters = vec![TopicFilter::new(filter)?];
        self.request(|waiter| Command::Unsubscribe {
            filters,
            properties: UnsubscribeProperties::default(),
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
        self.unsubscribe_with(filters, UnsubscribeProperties::default())
            .await
    }

    /// Unsubscribes with 5.0 properties.
    pub async fn unsubscribe_with(
        &self,
        filters: Vec<TopicFilter>,
        properties: UnsubscribeProperties,
    ) -> Result<Vec<UnsubAckReasonCode>, Error> {
        self.request(|waiter| Command::Unsubscribe {
            filters,
            properties,
            waiter,
        })
        .await?
        .into_unsubscribed()
    }

    /// Acknowledges a message received in manual-ack mode (see
    /// [`ClientOptions::manual_acks`]). Acknowledgements leave in arrival order; a token the
    /// session does not know is reported as [`Event::Error`].
    pub fn ack(&self, token: AckToken) -> Result<(), Error> {
        self.control_tx.send(Command::Ack(token)).map_err(closed)
    }

    /// Sends an AUTH step of 5.0 enhanced authentication.
    pub async fn auth(&self, auth: Auth) -> Result<(), Error> {
        self.request(|waiter| Command::Auth { auth, waiter })
            .await?
            .into_done()
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
        let _ = self.control_tx.send(Command::Abort);
    }
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Why the connection loop woke up.
enum Wake {
    /// Something was done; deliver outputs and look again.
    Progress,
    /// The transport ended, with the error if any.
    Closed(Option<io::Error>),
}

/// Either a command arrived or the awaited operation finished.
enum Offline<T> {
    Control(Option<Command<Waiter>>),
    Publish(Option<Command<Waiter>>),
    Done(T),
}

/// The task that owns the connection.
struct Driver {
    core: ClientCore<Waiter>,
    options: TransportOptions,
    tls: Option<Arc<rustls::ClientConfig>>,
    publish_rx: mpsc::Receiver<Command<Waiter>>,
    publish_open: bool,
    control_rx: mpsc::UnboundedReceiver<Command<Waiter>>,
    events: mpsc::UnboundedSender<Event>,
    shared: Arc<HandleState>,
    read_buf: ReadBuffer,
    jitter: Jitter,
}

impl Driver {
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
                    let _ = self.events.send(event);
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
        let mut operation = std::pin::pin!(operation);
        loop {
            let accept_publish = self.publish_open && self.core.accepts_publishes();
            let next = tokio::select! {
                biased;
                command = self.control_rx.recv() => Offline::Control(command),
                command = self.publish_rx.recv(), if accept_publish => Offline::Publish(command),
                output = &mut operation => Offline::Done(output),
            };
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
    async fn dial(&mut self, url: mqtt_session::client::BrokerUrl) -> Option<Transport> {
        debug!(broker = %url, "connecting");
        let tls = self.tls.clone();
        let tls_options = self.options.tls.clone();
        let timeout = self.options.connect_timeout;
        let max_packet_size = self.options.max_packet_size;
        let connect = async move {
            let connect = transport::connect(&url, tls.as_ref(), &tls_options, max_packet_size);
            match tokio::time::timeout(timeout, connect).await {
                Ok(result) => result,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "timed out opening the transport",
                )),
            }
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
        let sleep = tokio::time::sleep_until(until.into());
        if self.offline(sleep).await.is_some() {
            self.core.handle_timeout(now());
        }
    }

    /// Runs one connection until it ends.
    async fn online(&mut self, mut transport: Transport) {
        let mut sleep = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
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
                if let Ok(Err(error)) = tokio::time::timeout(CLOSE_TIMEOUT, close).await {
                    debug!(%error, "closing the transport");
                }
                let random = self.jitter.sample();
                self.core.handle_closed(now(), None, random);
                continue;
            }
            let deadline = self.core.poll_timeout();
            if deadline != armed {
                if let Some(deadline) = deadline {
                    sleep.as_mut().reset(deadline.into());
                }
                armed = deadline;
            }
            let wake = poll_fn(|cx| {
                self.poll_connection(
                    cx,
                    &mut transport,
                    sleep.as_mut(),
                    armed.is_some(),
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
    /// happened.
    fn poll_connection(
        &mut self,
        cx: &mut Context<'_>,
        transport: &mut Transport,
        mut sleep: Pin<&mut Sleep>,
        timer_armed: bool,
        flush_pending: &mut bool,
    ) -> Poll<Wake> {
        let mut progress = false;
        for _ in 0..COMMAND_BATCH {
            match self.control_rx.poll_recv(cx) {
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
            match self.publish_rx.poll_recv(cx) {
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
            let read = |buf: &mut _, _| transport.poll_read(cx, buf);
            match self.read_buf.poll_read(&mut self.core, now, read) {
                Poll::Ready(Ok(true)) => progress = true,
                Poll::Ready(Ok(false)) => return Poll::Ready(Wake::Closed(None)),
                Poll::Ready(Err(e)) => return Poll::Ready(Wake::Closed(Some(e))),
                Poll::Pending => {}
            }
        }
        if timer_armed && sleep.as_mut().poll(cx).is_ready() {
            progress = true;
            self.core.handle_timeout(now());
        }
        if progress {
            Poll::Ready(Wake::Progress)
        } else {
            Poll::Pending
        }
    }
}
