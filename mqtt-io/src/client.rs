//! The client handle, its [`Events`] and the [`Driver`] task, for any [`Runtime`].
//!
//! The handle talks to the driver through runtime-independent channels (`async-channel`,
//! `futures-channel`), so its futures need no runtime context and work from any executor.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use async_channel::Sender;
use futures_channel::oneshot;
use futures_core::Stream;
use mqtt_session::client::{
    ClientCore, ClientOptions, ClientStats, Command, Error, Event, HandleState, Reply,
};
use mqtt_session::proto::{
    Auth, Publish, QoS, SubAckReasonCode, SubscribeProperties, Subscription, TopicFilter,
    TopicName, UnsubAckReasonCode, UnsubscribeProperties,
};
use mqtt_session::{AckToken, Message, PublishOutcome};

use crate::driver::Connection;
use crate::inbox::Inbox;
pub use crate::inbox::Pending;
pub use crate::outbox::PublishHandle;
use crate::outbox::{Outbox, Refused};
use crate::runtime::Runtime;

/// How the driver answers one caller.
#[derive(Debug)]
pub(crate) enum Waiter {
    /// A command's caller, through a channel of its own.
    Reply(oneshot::Sender<Reply>),
    /// A publish, through its slot in the outbox.
    Publish(usize),
}

/// Why [`Client::try_publish`] did not take a message; the message comes back with it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TryPublishError {
    /// The publish queue is full; room frees as the driver takes messages (await
    /// [`Client::publish`] to wait for it).
    #[error("the publish queue is full")]
    Full(Message),
    /// The client has stopped, for this reason.
    #[error("{1}")]
    Stopped(Message, Error),
}

impl TryPublishError {
    /// The message that was not taken.
    pub fn into_message(self) -> Message {
        match self {
            Self::Full(message) | Self::Stopped(message, _) => message,
        }
    }

    /// Whether the queue was full (rather than the client stopped).
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }
}

impl From<TryPublishError> for Error {
    /// [`Error::QueueFull`], or why the client stopped; the message is dropped.
    fn from(error: TryPublishError) -> Self {
        match error {
            TryPublishError::Full(_) => Error::QueueFull,
            TryPublishError::Stopped(_, error) => error,
        }
    }
}

/// A handle to an MQTT client whose driver runs on the runtime `R`. Cheap to clone; every
/// clone talks to the same connection. The adapters name it `Client` for their runtime.
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
pub struct Client<R> {
    outbox: Arc<Outbox>,
    control_tx: Sender<Command<Waiter>>,
    shared: Arc<HandleState>,
    requests: Arc<RequestIds>,
    runtime: PhantomData<fn() -> R>,
}

impl<R> Clone for Client<R> {
    fn clone(&self) -> Self {
        Self {
            outbox: self.outbox.clone(),
            control_tx: self.control_tx.clone(),
            shared: self.shared.clone(),
            requests: self.requests.clone(),
            runtime: PhantomData,
        }
    }
}

/// The response topic of one client and the correlation data of its requests: a random
/// number fixed when the client starts, so that responses to an earlier process (or to
/// another client) never match, and a counter.
#[derive(Debug)]
struct RequestIds {
    nonce: u64,
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0x243f_6a88_85a3_08d3);
        Self {
            nonce: hasher.finish(),
            next: AtomicU64::new(0),
        }
    }

    /// `responses/<nonce>`: private to this client by its random part.
    fn topic(&self) -> Result<TopicName, Error> {
        Ok(TopicName::new(&format!("responses/{:016x}", self.nonce))?)
    }

    /// Sixteen bytes no other request of any client shares.
    fn correlation(&self) -> bytes::Bytes {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut data = Vec::with_capacity(16);
        data.extend_from_slice(&self.nonce.to_be_bytes());
        data.extend_from_slice(&n.to_be_bytes());
        data.into()
    }
}

impl<R> fmt::Debug for Client<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("connected", &self.shared.is_connected())
            .field("stopped", &self.control_tx.is_closed())
            .finish()
    }
}

/// The events of one client, in order; see [`Event`]. The stream ends after
/// [`Event::Closed`].
///
/// Taking an [`Event::Message`] from here is what hands it to the application: only then
/// does the client acknowledge it to the broker (QoS 1 PUBACK, QoS 2 PUBREC; with manual
/// acks, the application acknowledges itself), so a crash never loses a message the broker
/// was told was delivered. The messages waiting here are bounded
/// ([`ClientOptions::inbound_queue`]): when the application falls behind, the client stops
/// reading from the broker and TCP pushes back, while commands keep working, so a handler
/// may await client calls between events.
///
/// Dropping `Events` counts every message, queued or to come, as taken.
#[derive(Debug)]
pub struct Events {
    inbox: Inbox,
}

impl Events {
    /// The next event; `None` once the client has stopped and every event was read.
    pub async fn recv(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.inbox.poll_next(cx)).await
    }

    /// The next event if one is ready.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.inbox.try_next()
    }

    /// Polls for the next event.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.inbox.poll_next(cx)
    }

    /// What waits to be taken: events, and messages with their payload bytes.
    pub fn pending(&self) -> Pending {
        self.inbox.pending()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.inbox.abandon();
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.get_mut().poll_recv(cx)
    }
}

/// The task that owns a client's connection, for [`Client::connect_with`] to hand to an
/// executor. It finishes when the client stops.
#[must_use = "the client does nothing unless its driver is polled"]
pub struct Driver(Pin<Box<dyn Future<Output = ()> + Send>>);

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Driver")
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl<R: Runtime> Client<R> {
    /// Starts a client: checks the options, spawns its driver task with the runtime's
    /// spawner, and returns a handle with the client's events. Connecting happens in the
    /// background; [`Event::Connected`] reports success.
    pub fn connect(options: ClientOptions) -> Result<(Self, Events), Error> {
        Self::connect_with(options, R::spawn)
    }

    /// Starts a client like [`connect`](Self::connect), but hands the driver task to `spawn`,
    /// which must poll it to completion. The client does nothing until it is polled.
    pub fn connect_with(
        options: ClientOptions,
        spawn: impl FnOnce(Driver),
    ) -> Result<(Self, Events), Error> {
        let (core, transport) = ClientCore::new(options)?;
        crate::check_schemes(core.brokers())?;
        let tls = crate::tls::client_config_for(core.brokers(), &transport.tls)?;
        let (control_tx, control_rx) = async_channel::unbounded();
        let inbox = Inbox::new();
        let shared = Arc::new(HandleState::new(&core));
        let outbox = Arc::new(Outbox::new(transport.publish_capacity, shared.clone()));
        let driver = Connection::<R>::new(
            core,
            transport,
            tls,
            outbox.clone(),
            control_rx,
            inbox.clone(),
            shared.clone(),
        );
        spawn(Driver(Box::pin(driver.run())));
        let client = Client {
            outbox,
            control_tx,
            shared,
            requests: Arc::new(RequestIds::new()),
            runtime: PhantomData,
        };
        let events = Events { inbox };
        Ok((client, events))
    }
}

impl<R> Client<R> {
    /// What a call to a stopped client fails with: [`Error::Stopped`] with the cause if it
    /// gave up connecting, [`Error::Closed`] otherwise.
    fn stopped(&self) -> Error {
        match self.shared.stop_cause() {
            Some(cause) => Error::Stopped(cause),
            None => Error::Closed,
        }
    }

    /// Why the client stopped, if it gave up connecting (see [`Error::Stopped`]).
    pub fn stop_cause(&self) -> Option<mqtt_session::client::ConnectFailure> {
        self.shared.stop_cause()
    }

    /// Whether the broker has accepted the current connection.
    pub fn is_connected(&self) -> bool {
        self.shared.is_connected()
    }

    /// A snapshot of what the client holds and has done, as of the driver's last turn:
    /// messages in flight (each way), queued, waiting for the application; connection
    /// attempts, connections and the current one's start; packets and bytes each way. A
    /// copy of a few counters, cheap enough to call at any rate.
    pub fn stats(&self) -> ClientStats {
        self.shared.stats()
    }

    /// Publishes a message: waits only until the client has room for it in its publish
    /// queue ([`ClientOptions::publish_capacity`]), then returns the [`PublishHandle`] of its
    /// flow. Await the handle for the outcome: QoS 0 once written to the transport, QoS 1 on
    /// PUBACK, QoS 2 on PUBCOMP (for 5.0 possibly a rejection by the broker), or why the
    /// message was not delivered; or drop it if the outcome does not matter (the message
    /// still goes out).
    ///
    /// A plain loop therefore keeps the in-flight window full:
    ///
    /// ```ignore
    /// for reading in readings {
    ///     client.publish(Message::new("sensors/17", reading)?.qos(QoS::AtLeastOnce)).await?;
    /// }
    /// ```
    ///
    /// and one message is sent and confirmed with
    /// `client.publish(message).await?.await?` (or [`publish_and_wait`](Self::publish_and_wait)).
    /// Messages published while disconnected wait for the next connection. Fails at once if
    /// the client has stopped.
    pub async fn publish(&self, message: Message) -> Result<PublishHandle, Error> {
        let token = self.shared.next_token();
        let mut message = Some(message);
        let slot =
            std::future::poll_fn(|cx| self.outbox.poll_push(cx, &mut message, token)).await?;
        Ok(PublishHandle::new(self.outbox.clone(), slot, token))
    }

    /// Publishes a message and waits until its flow completes: `publish(message).await?.await`.
    pub async fn publish_and_wait(&self, message: Message) -> Result<PublishOutcome, Error> {
        self.publish(message).await?.await
    }

    /// Publishes a message if the publish queue has room now, without waiting; returns the
    /// [`PublishHandle`] of its flow. A full queue (or a stopped client) gives the message
    /// back in the error, to retry or to await [`publish`](Self::publish) with.
    // The error gives the message back by value: boxing it would allocate on the path that
    // reports a full queue.
    #[allow(clippy::result_large_err)]
    pub fn try_publish(&self, message: Message) -> Result<PublishHandle, TryPublishError> {
        let token = self.shared.next_token();
        match self.outbox.try_push(message, token) {
            Ok(slot) => Ok(PublishHandle::new(self.outbox.clone(), slot, token)),
            Err(Refused::Full(message)) => Err(TryPublishError::Full(message)),
            Err(Refused::Closed(message)) => Err(TryPublishError::Stopped(message, self.stopped())),
        }
    }

    async fn command(&self, make: impl FnOnce(Waiter) -> Command<Waiter>) -> Result<Reply, Error> {
        let (tx, rx) = oneshot::channel();
        self.control_tx
            .try_send(make(Waiter::Reply(tx)))
            .map_err(|_| self.stopped())?;
        rx.await.map_err(|_| self.stopped())
    }

    /// Subscribes to one filter; returns the QoS the broker granted, or
    /// [`Error::SubscribeRefused`].
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<QoS, Error> {
        self.subscribe_one(TopicFilter::new(filter)?, qos).await
    }

    /// Joins the consumer group `group` on `filter` (the shared subscription
    /// `$share/{group}/{filter}`): the broker hands each matching message to one member of
    /// the group. Returns the granted QoS, or [`Error::SubscribeRefused`] (for instance by a
    /// broker without shared subscriptions). Shared subscriptions are MQTT 5.0; most brokers
    /// take them from 3.1.1 clients too.
    pub async fn subscribe_shared(
        &self,
        group: &str,
        filter: &str,
        qos: QoS,
    ) -> Result<QoS, Error> {
        self.subscribe_one(TopicFilter::shared(group, filter)?, qos)
            .await
    }

    /// One filter, without properties: the granted QoS or [`Error::SubscribeRefused`].
    async fn subscribe_one(&self, filter: TopicFilter, qos: QoS) -> Result<QoS, Error> {
        let filters = vec![Subscription::new(filter, qos)];
        let properties = SubscribeProperties::default();
        self.command(|waiter| Command::Subscribe {
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
        let reply = self.command(|waiter| Command::Subscribe {
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
        self.command(|waiter| Command::Unsubscribe {
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
        let reply = self.command(|waiter| Command::Unsubscribe {
            filters,
            properties,
            waiter,
        });
        reply.await?.into_unsubscribed()
    }

    /// Sends a request (MQTT 5.0 request/response) and waits for its response: publishes
    /// `payload` to `topic` at QoS 1 with a Response Topic private to this client and a
    /// Correlation Data of its own, and resolves with the message the responder publishes
    /// back to that topic with the same Correlation Data. The client subscribes to its
    /// response topic once, before the first request; responses never appear as
    /// [`Event::Message`]. Fails with [`Error::RequestTimeout`] after
    /// [`ClientOptions::request_timeout`], and with [`Error::NeedsV5`] before 5.0.
    ///
    /// A responder answers by publishing to the request's `response_topic` with its
    /// `correlation_data` copied.
    pub async fn request(
        &self,
        topic: &str,
        payload: impl Into<bytes::Bytes>,
    ) -> Result<Publish, Error> {
        let message = Message::new(topic, payload)?.qos(QoS::AtLeastOnce);
        self.request_message(message).await
    }

    /// Sends a request like [`request`](Self::request), with the message as given (QoS,
    /// properties); its Response Topic and Correlation Data are replaced.
    pub async fn request_message(&self, message: Message) -> Result<Publish, Error> {
        let response_topic = self.requests.topic()?;
        let correlation = self.requests.correlation();
        let token = self.shared.next_token();
        let reply = self.command(|waiter| Command::Request {
            message,
            response_topic,
            correlation,
            token,
            waiter,
        });
        reply.await?.into_response()
    }

    /// Acknowledges a message received in manual-ack mode (see
    /// [`ClientOptions::manual_acks`]). Acknowledgements leave in arrival order; a token the
    /// session does not know is reported as [`Event::Error`].
    pub fn ack(&self, token: AckToken) -> Result<(), Error> {
        self.control_tx
            .try_send(Command::Ack(token))
            .map_err(|_| self.stopped())
    }

    /// Sends an AUTH step of 5.0 enhanced authentication.
    pub async fn auth(&self, auth: Auth) -> Result<(), Error> {
        let reply = self.command(|waiter| Command::Auth { auth, waiter });
        reply.await?.into_done()
    }

    /// Re-authenticates on the current connection with the authenticator of
    /// [`ClientOptions::authenticator`] (5.0 enhanced authentication, spec 4.12.1), e.g. to
    /// present a refreshed token without reconnecting. Returns once the broker accepted;
    /// messages keep flowing meanwhile. Fails without an authenticator or an accepted
    /// connection, and with [`Error::ConnectionEnded`] and the cause if the connection ends
    /// first (a broker that refuses the new authentication disconnects).
    pub async fn reauthenticate(&self) -> Result<(), Error> {
        let reply = self.command(|waiter| Command::Reauthenticate { waiter });
        reply.await?.into_done()
    }

    /// Ends the client gracefully: publishes already requested go out and complete (up to
    /// the disconnect timeout), then DISCONNECT is sent (so the broker discards the will),
    /// the connection closes and the client stops. Returns once stopped; succeeds also when
    /// the client had already stopped.
    pub async fn disconnect(&self) -> Result<(), Error> {
        let reply = self.command(|waiter| Command::Disconnect { waiter }).await;
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
