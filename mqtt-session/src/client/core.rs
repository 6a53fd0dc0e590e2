//! [`ClientCore`]: the runtime-independent half of an async client.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use std::io::IoSlice;

use bytes::{Bytes, BytesMut};
use mqtt_proto::{
    Auth, PacketId, QoS, SubAckReasonCode, SubscribeProperties, Subscription, TopicFilter,
    UnsubscribeProperties,
};
use tracing::{debug, info, warn};

use super::backoff::Reconnect;
use super::event::{Error, Event, Reply};
use super::failure::{ConnectFailure, DialError};
use super::hook::{ConnectAttempt, ConnectDecision, ConnectHook};
use super::options::{ClientOptions, OptionsError, TlsOptions};
use super::requests::{Requests, Subscription as ResponseSubscription, Waiting};
use super::url::BrokerUrl;
use crate::config::Delivery;
use crate::event::{
    AckToken, ConnectionError, Event as SessionEvent, PublishOutcome, PublishToken,
};
use crate::ids::IdMap;
use crate::message::Message;
use crate::session::Session;
use crate::transmit::Transmit;

/// A request from a client handle. `W` is the adapter's way to answer one caller (e.g. the
/// sending half of a one-shot channel carrying a [`Reply`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum Command<W> {
    /// Publish `message`. With a waiter, its [`Reply::Published`] reports the outcome;
    /// without, an [`Event::Published`] carrying `token` does.
    Publish {
        /// The message.
        message: Message,
        /// The token the handle gave the caller.
        token: PublishToken,
        /// Who waits for the outcome.
        waiter: Option<W>,
    },
    /// Subscribe; answered with [`Reply::Subscribed`].
    Subscribe {
        /// The filters and their options.
        filters: Vec<Subscription>,
        /// 5.0 properties.
        properties: SubscribeProperties,
        /// Who waits.
        waiter: W,
    },
    /// Unsubscribe; answered with [`Reply::Unsubscribed`].
    Unsubscribe {
        /// The filters.
        filters: Vec<TopicFilter>,
        /// 5.0 properties.
        properties: UnsubscribeProperties,
        /// Who waits.
        waiter: W,
    },
    /// Acknowledge a message received in manual-ack mode; failures become [`Event::Error`].
    Ack(AckToken),
    /// Send an AUTH step (5.0); answered with [`Reply::Done`].
    Auth {
        /// The packet.
        auth: Auth,
        /// Who waits.
        waiter: W,
    },
    /// Finish queued and in-flight messages (bounded by the disconnect timeout), send
    /// DISCONNECT, close and stop; answered with [`Reply::Done`] once stopped.
    Disconnect {
        /// Who waits.
        waiter: W,
    },
    /// Close at once without DISCONNECT (the broker publishes the will) and stop.
    Abort,
    /// Publish a request (5.0) and wait for the message that answers it; answered with
    /// [`Reply::Response`]. The core sets Response Topic and Correlation Data, and subscribes
    /// to the response topic before the first request goes out.
    Request {
        /// The request message.
        message: Message,
        /// The topic responses come back on; the first request's is kept for the client.
        response_topic: mqtt_proto::TopicName,
        /// What tells this request's response from others.
        correlation: bytes::Bytes,
        /// The token the handle gave the request's publish.
        token: PublishToken,
        /// Who waits.
        waiter: W,
    },
    /// Re-authenticate with the session's authenticator (5.0, see
    /// [`Session::reauthenticate`]); answered with [`Reply::Done`] when the broker's AUTH
    /// Success arrives, or with the error if the re-authentication cannot start or the
    /// connection ends first ([`Error::ConnectionEnded`]). Callers that ask while one is
    /// under way wait for that one.
    Reauthenticate {
        /// Who waits.
        waiter: W,
    },
}

/// Something for the adapter to deliver.
#[derive(Debug)]
pub enum Output<W> {
    /// Answer this caller.
    Reply(W, Reply),
    /// Pass this event to the application.
    Event(Event),
    /// Pass this message event to the application, and report with
    /// [`handle_taken`](ClientCore::handle_taken) and this token when the application takes
    /// it: that frees its room in the inbound queue and, unless acknowledgements are manual,
    /// acknowledges it to the broker.
    Message(AckToken, Event),
}

/// What the adapter should do with the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// Call the connect hook with [`connect_attempt`](ClientCore::connect_attempt) (bounded
    /// by the connect timeout), then
    /// [`handle_connect_decision`](ClientCore::handle_connect_decision). Only with a hook.
    Prepare,
    /// Open a transport to this broker, then call
    /// [`handle_connected`](ClientCore::handle_connected) or
    /// [`handle_connect_failed`](ClientCore::handle_connect_failed).
    Dial(&'a BrokerUrl),
    /// A transport is open: run the connection loop.
    Online,
    /// Wait until this instant (reconnect backoff), then call
    /// [`handle_timeout`](ClientCore::handle_timeout).
    Wait(Instant),
    /// The client has stopped: deliver the last outputs and end.
    Stopped,
}

/// Settings the adapter needs for its transports and channels.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// TLS settings.
    pub tls: TlsOptions,
    /// First read buffer size.
    pub read_buffer_size: usize,
    /// Largest read buffer size.
    pub max_read_buffer_size: usize,
    /// Bound of the publish request channel.
    pub publish_capacity: usize,
    /// How long opening a transport (TCP, TLS and WebSocket handshakes) may take.
    pub connect_timeout: Duration,
    /// Largest packet accepted from the broker (bounds WebSocket messages too).
    pub max_packet_size: usize,
    /// How long closing the transport (TLS close_notify, WebSocket close, TCP FIN) may take.
    pub close_timeout: Duration,
    /// The shortest time between two writes while bytes keep coming
    /// ([`ClientOptions::write_delay`]); zero writes at once.
    pub write_delay: Duration,
    /// The hook to call before each connection attempt ([`Step::Prepare`]).
    pub connect_hook: Option<ConnectHook>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Prepare,
    Dial,
    Online,
    Waiting(Instant),
    Stopped,
}

#[derive(Debug)]
enum PublishWaiter<W> {
    Caller(W),
    Token(PublishToken),
    /// The publish of a request: a failure fails the request with this correlation data.
    Request(bytes::Bytes),
}

/// Bytes from one `poll_transmit_chunks`, and the QoS 0 publishers to answer once they are
/// written.
#[derive(Debug)]
struct Chunk<W> {
    bytes: Transmit,
    written: Vec<W>,
}

#[derive(Debug)]
struct Deferred<W> {
    message: Message,
    token: PublishToken,
    waiter: Option<W>,
}

#[derive(Debug)]
struct Drain<W> {
    waiters: Vec<W>,
    deadline: Instant,
    sent: bool,
}

/// The runtime-independent half of an async MQTT client: a [`Session`], the reconnect and
/// failover policy, and the bookkeeping that answers each caller when its request completes.
///
/// Like the session it does no IO and reads no clock: an adapter owns the transport, the
/// timer and the channels, and drives the core:
///
/// 1. ask [`step`](Self::step) what to do: dial a broker, run the connection, wait, or stop;
/// 2. feed inputs: [`handle_connected`](Self::handle_connected) /
///    [`handle_connect_failed`](Self::handle_connect_failed),
///    [`handle_read`](Self::handle_read), [`handle_closed`](Self::handle_closed),
///    [`handle_timeout`](Self::handle_timeout) and [`handle_command`](Self::handle_command);
/// 3. then take outputs: write [`poll_transmit_vectored`](Self::poll_transmit_vectored) or
///    [`poll_transmit`](Self::poll_transmit) (reporting
///    [`handle_written`](Self::handle_written)), deliver every
///    [`poll_output`](Self::poll_output), sleep until [`poll_timeout`](Self::poll_timeout),
///    and close the transport when [`wants_close`](Self::wants_close) and nothing is left to
///    write.
///
/// Requests are answered when their flow completes: QoS 0 once its bytes were handed to
/// the transport, QoS 1 on PUBACK, QoS 2 on PUBCOMP, subscriptions on SUBACK.
pub struct ClientCore<W> {
    session: Session,
    brokers: Vec<BrokerUrl>,
    reconnect: Reconnect,
    phase: Phase,
    publishes: IdMap<PublishToken, PublishWaiter<W>>,
    requests: IdMap<PacketId, W>,
    chunks: VecDeque<Chunk<W>>,
    /// QoS 0 publishers whose bytes the session still holds.
    unpulled_written: Vec<W>,
    spare: Transmit,
    deferred: VecDeque<Deferred<W>>,
    drain: Option<Drain<W>>,
    last_reason: Option<ConnectionError>,
    outputs: VecDeque<Output<W>>,
    disconnect_timeout: Duration,
    write_timeout: Duration,
    close_timeout: Duration,
    /// Since when bytes wait to be written without the transport taking any.
    write_stalled_since: Option<Instant>,
    /// When a connection that wants to close is given up, written out or not.
    close_deadline: Option<Instant>,
    /// Whether a connect hook decides before each attempt.
    has_hook: bool,
    /// Why the last attempt or connection failed.
    last_failure: Option<ConnectFailure>,
    /// Why the client stopped, when it gave up connecting.
    stop_cause: Option<ConnectFailure>,
    /// Whether a permanent CONNACK refusal stops the client.
    stop_on_permanent_refusal: bool,
    /// Whether a 5.0 Server Reference sends the next attempt to the server it names.
    follow_server_reference: bool,
    /// Where a Server Reference sent the client; tried before the list.
    redirect: Option<BrokerUrl>,
    /// Redirects followed since the last connection that stayed up.
    redirects: u32,
    /// The broker of the current transport.
    current: Option<BrokerUrl>,
    /// Counters for [`ClientStats`](super::ClientStats).
    counters: Counters,
    /// Requests waiting for their response.
    responses: Requests<W>,
    /// How long a request waits for its response.
    request_timeout: Duration,
    /// Callers waiting for the re-authentication under way.
    reauth_waiters: Vec<W>,
}

/// What a client has done since it started.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    /// Connection attempts (transports dialled).
    pub(crate) attempts: u64,
    /// Connections the broker accepted.
    pub(crate) connections: u64,
    /// Since when the current connection is accepted.
    pub(crate) connected_since: Option<Instant>,
}

/// Most Server References followed in a row without a connection that stays up: a server
/// (or two) sending the client around in circles is then ignored.
const MAX_REDIRECTS: u32 = 4;

impl<W> std::fmt::Debug for ClientCore<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCore")
            .field("session", &self.session)
            .field("brokers", &self.brokers)
            .field("phase", &self.phase)
            .field("waiting_publishes", &self.publishes.len())
            .field("waiting_requests", &self.requests.len())
            .field("deferred", &self.deferred.len())
            .finish_non_exhaustive()
    }
}

impl<W> ClientCore<W> {
    /// Builds the core from options; returns it with what the adapter needs for transports.
    /// Loads the session store, if any.
    pub fn new(mut options: ClientOptions) -> Result<(Self, TransportOptions), OptionsError> {
        options.validate()?;
        // The application takes messages from the adapter's queue, later than the core sees
        // them: it reports each with `handle_taken`.
        options.config.delivery = Delivery::Reported;
        let write_timeout = options
            .write_timeout
            .unwrap_or_else(|| options.config.effective_packet_timeout());
        let transport = TransportOptions {
            tls: options.tls.clone(),
            read_buffer_size: options.read_buffer_size.max(512),
            max_read_buffer_size: options.max_read_buffer_size.max(options.read_buffer_size),
            publish_capacity: options.publish_capacity.max(1),
            connect_timeout: options.config.connect_timeout,
            max_packet_size: options.config.max_packet_size,
            close_timeout: options.close_timeout,
            write_delay: options.write_delay,
            connect_hook: options.connect_hook.clone(),
        };
        let authenticator = options.authenticator.take();
        let mut session = match options.store.take() {
            Some(store) => Session::with_store(options.config, store)?,
            None => Session::new(options.config),
        };
        if let Some(authenticator) = authenticator {
            session.set_authenticator(authenticator)?;
        }
        let core = Self {
            session,
            reconnect: Reconnect::new(options.brokers.len(), options.reconnect),
            brokers: options.brokers,
            phase: if options.connect_hook.is_some() {
                Phase::Prepare
            } else {
                Phase::Dial
            },
            publishes: IdMap::default(),
            requests: IdMap::default(),
            chunks: VecDeque::new(),
            unpulled_written: Vec::new(),
            spare: Transmit::new(),
            deferred: VecDeque::new(),
            drain: None,
            last_reason: None,
            outputs: VecDeque::new(),
            disconnect_timeout: options.disconnect_timeout,
            write_timeout,
            close_timeout: options.close_timeout,
            write_stalled_since: None,
            close_deadline: None,
            has_hook: options.connect_hook.is_some(),
            last_failure: None,
            stop_cause: None,
            stop_on_permanent_refusal: options.stop_on_permanent_refusal,
            follow_server_reference: options.follow_server_reference,
            redirect: None,
            redirects: 0,
            current: None,
            counters: Counters::default(),
            responses: Requests::default(),
            request_timeout: options.request_timeout,
            reauth_waiters: Vec::new(),
        };
        Ok((core, transport))
    }

    // ----- getters -----

    /// What the adapter should do now.
    pub fn step(&self) -> Step<'_> {
        match self.phase {
            Phase::Prepare => Step::Prepare,
            Phase::Dial => match self.next_broker() {
                Some(url) => Step::Dial(url),
                None => Step::Stopped,
            },
            Phase::Online => Step::Online,
            Phase::Waiting(until) => Step::Wait(until),
            Phase::Stopped => Step::Stopped,
        }
    }

    /// The broker addresses, in failover order.
    pub fn brokers(&self) -> &[BrokerUrl] {
        &self.brokers
    }

    /// The broker the next attempt goes to: one a Server Reference named, or the next in
    /// the list.
    fn next_broker(&self) -> Option<&BrokerUrl> {
        self.redirect
            .as_ref()
            .or_else(|| self.brokers.get(self.reconnect.broker()))
    }

    /// What the connect hook is asked about at [`Step::Prepare`].
    pub fn connect_attempt(&self) -> Option<ConnectAttempt> {
        Some(ConnectAttempt {
            broker: self.next_broker()?.clone(),
            attempt: self.reconnect.attempts().saturating_add(1),
            last_failure: self.last_failure.clone(),
        })
    }

    /// Why the client stopped, if it gave up connecting (or the connect hook stopped it).
    pub fn stop_cause(&self) -> Option<&ConnectFailure> {
        self.stop_cause.as_ref()
    }

    /// Why the last attempt or connection failed.
    pub fn last_failure(&self) -> Option<&ConnectFailure> {
        self.last_failure.as_ref()
    }

    pub(crate) fn counters(&self) -> Counters {
        self.counters
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Whether the broker accepted the current connection.
    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Online && self.session.is_connected()
    }

    /// Whether nothing is under way: no message in flight, queued or untaken, no request
    /// unanswered, no bytes or outputs waiting. A quiet client can give its memory back with
    /// [`release_memory`](Self::release_memory) at no cost to what comes next.
    pub fn is_quiet(&self) -> bool {
        self.session.inflight() == 0
            && self.session.queued() == 0
            && self.session.inbound_pending().0 == 0
            && self.publishes.is_empty()
            && self.requests.is_empty()
            && self.chunks.is_empty()
            && self.deferred.is_empty()
            && self.unpulled_written.is_empty()
            && self.outputs.is_empty()
    }

    /// Gives back the memory a burst left in the core's and the session's queues and buffers
    /// (see [`Session::release_memory`]): each keeps the capacity of the most it ever held.
    pub fn release_memory(&mut self) {
        self.publishes.shrink_to_fit();
        self.requests.shrink_to_fit();
        self.chunks.shrink_to_fit();
        self.deferred.shrink_to_fit();
        self.unpulled_written.shrink_to_fit();
        self.outputs.shrink_to_fit();
        self.spare.release_memory();
        self.session.release_memory();
    }

    /// Whether the client has stopped.
    pub fn is_stopped(&self) -> bool {
        self.phase == Phase::Stopped
    }

    /// Whether the adapter should take more publish requests now. While the session's queue
    /// is full, requests wait in the adapter's bounded publish queue, which makes publishers wait.
    pub fn accepts_publishes(&self) -> bool {
        self.phase != Phase::Stopped && self.deferred.is_empty()
    }

    /// Whether the connection is over: close the transport once
    /// [`poll_transmit`](Self::poll_transmit) has nothing left, then call
    /// [`handle_closed`](Self::handle_closed). If the bytes are not written by the close
    /// timeout, the core gives the connection up by itself ([`step`](Self::step) is no
    /// longer [`Step::Online`]): drop the transport.
    pub fn wants_close(&self) -> bool {
        self.phase == Phase::Online && self.session.wants_close()
    }

    /// Whether the adapter should read from the transport now, asked at `now`: false while
    /// the application's queue of messages is full (see
    /// [`Session::wants_read`](crate::Session::wants_read)), so that TCP pushes back on the
    /// broker. Taking messages ([`handle_taken`](Self::handle_taken)) makes it true again.
    pub fn wants_read(&mut self, now: Instant) -> bool {
        self.phase == Phase::Online && self.session.wants_read(now)
    }

    // ----- inputs -----

    /// The wall clock: `unix_time` is the time since the Unix epoch at `now` (see
    /// [`Session::handle_wall_clock`]). Call it first, and before each dial.
    pub fn handle_wall_clock(&mut self, now: Instant, unix_time: Duration) {
        self.session.handle_wall_clock(now, unix_time);
    }

    /// The transport to the broker of [`Step::Dial`] is open.
    pub fn handle_connected(&mut self, now: Instant) {
        if self.phase != Phase::Dial {
            return;
        }
        self.current = self.next_broker().cloned();
        self.counters.attempts += 1;
        self.phase = Phase::Online;
        self.last_reason = None;
        self.chunks.clear();
        self.write_stalled_since = None;
        self.close_deadline = None;
        self.session.handle_connected(now);
        self.pump(now);
    }

    /// Opening the transport failed (or the connect hook did not answer in time); `random`
    /// in `[0, 1)` jitters the reconnect delay.
    pub fn handle_connect_failed(&mut self, now: Instant, error: DialError, random: f64) {
        if !matches!(self.phase, Phase::Dial | Phase::Prepare) {
            return;
        }
        let broker = self.next_broker().cloned().unwrap_or_else(|| BrokerUrl {
            scheme: super::url::Scheme::Mqtt,
            host: String::new(),
            port: 0,
            path: String::new(),
        });
        if self.phase == Phase::Dial {
            self.counters.attempts += 1;
        }
        warn!(%broker, %error, "connection attempt failed");
        self.redirect = None;
        self.last_failure = Some(ConnectFailure::Dial {
            broker: broker.clone(),
            error: error.clone(),
        });
        self.event(Event::Error(Error::Connect { broker, error }));
        if self.drain.is_some() {
            self.stop();
        } else {
            self.schedule_retry(now, random);
        }
    }

    /// The connect hook's answer at [`Step::Prepare`]; `random` in `[0, 1)` jitters the
    /// reconnect delay if the broker is skipped.
    pub fn handle_connect_decision(
        &mut self,
        now: Instant,
        mut decision: ConnectDecision,
        random: f64,
    ) {
        if self.phase != Phase::Prepare {
            return;
        }
        if decision.is_stop() {
            info!("the connect hook stopped the client");
            let cause = self
                .last_failure
                .clone()
                .unwrap_or(ConnectFailure::StoppedByHook);
            self.stop_with(Some(cause));
            return;
        }
        if decision.is_skip() {
            debug!("the connect hook skipped the broker");
            self.redirect = None;
            self.schedule_retry(now, random);
            return;
        }
        match decision.take_credentials() {
            Some(Ok((username, password))) => {
                self.session.set_credentials(Some(username), password);
            }
            Some(Err(error)) => {
                let error = OptionsError::InvalidString {
                    field: "user name",
                    error,
                };
                warn!(%error, "the connect hook gave invalid credentials: skipping the attempt");
                self.event(Event::Error(Error::Options(error)));
                self.schedule_retry(now, random);
                return;
            }
            None => {}
        }
        if let Some(will) = decision.take_will() {
            let delay = self
                .session
                .config()
                .will
                .as_ref()
                .and_then(|w| w.properties.will_delay_interval);
            let will = will.map(|m| super::options::last_will(m, delay));
            self.session.set_will(will);
        }
        self.phase = Phase::Dial;
    }

    /// The next attempt starts: with the connect hook first, if there is one.
    fn next_attempt(&mut self) {
        self.phase = if self.has_hook {
            Phase::Prepare
        } else {
            Phase::Dial
        };
    }

    /// Bytes arrived; taken from `buf` without copying when possible (`buf` is left empty).
    pub fn handle_read(&mut self, now: Instant, buf: &mut BytesMut) {
        if self.phase != Phase::Online {
            buf.clear();
            return;
        }
        self.session.handle_read_buf(now, buf);
        self.pump(now);
    }

    /// The buffer to read into directly, with room for `want` bytes, and the most bytes to
    /// read (see [`Session::read_buffer`](crate::Session::read_buffer)); then call
    /// [`handle_buffered`](Self::handle_buffered).
    pub fn read_buffer(&mut self, want: usize) -> (&mut BytesMut, usize) {
        self.session.read_buffer(want)
    }

    /// Bytes were appended to [`read_buffer`](Self::read_buffer).
    pub fn handle_buffered(&mut self, now: Instant) {
        if self.phase != Phase::Online {
            return;
        }
        self.session.handle_buffered(now);
        self.pump(now);
    }

    /// The application took the message of an [`Output::Message`] from its queue.
    pub fn handle_taken(&mut self, now: Instant, token: AckToken) {
        self.session.handle_taken(now, token);
        self.pump(now);
    }

    /// The transport closed: by the broker (end of stream), on `error`, or by the adapter
    /// after [`wants_close`](Self::wants_close). Decides whether and when to reconnect.
    pub fn handle_closed(&mut self, now: Instant, error: Option<std::io::Error>, random: f64) {
        if self.phase != Phase::Online {
            return;
        }
        if let Some(error) = error {
            debug!(%error, "transport error");
            self.event(Event::Error(Error::Io(error)));
        }
        self.session.handle_closed(now);
        self.connection_over(now, random);
    }

    /// The transport is gone (the session has been told): decides whether to reconnect.
    fn connection_over(&mut self, now: Instant, random: f64) {
        self.write_stalled_since = None;
        self.close_deadline = None;
        self.pump(now);
        self.fail_unwritten();
        let was_up = self.counters.connected_since.take().is_some();
        if self.reconnect.is_stable(now) {
            self.redirects = 0;
        }
        let reason = self.last_reason.take();
        let broker = self.current.take();
        let failure = match (&reason, broker) {
            (Some(ConnectionError::LocalDisconnect) | None, _) | (_, None) => None,
            (Some(reason), Some(broker)) => Some(ConnectFailure::Connection {
                broker,
                reason: reason.clone(),
            }),
        };
        if failure.is_some() {
            self.last_failure.clone_from(&failure);
        }
        if self.drain.is_some() || matches!(reason, Some(ConnectionError::LocalDisconnect)) {
            self.stop();
            return;
        }
        if matches!(reason, Some(ConnectionError::InvalidConfig(_))) {
            self.stop_with(failure);
            return;
        }
        if self.stop_on_permanent_refusal && failure.as_ref().is_some_and(|f| f.is_permanent()) {
            warn!("the broker refused the connection for good: stopping");
            self.stop_with(failure);
            return;
        }
        if let Some(target) = reason.as_ref().and_then(|r| self.server_reference(r)) {
            info!(broker = %target, "following the server reference");
            self.redirect = Some(target);
            self.redirects += 1;
            self.next_attempt();
            return;
        }
        if !was_up {
            // A server a reference named that does not take the client: back to the list.
            self.redirect = None;
        }
        self.next_attempt();
        self.schedule_retry(now, random);
    }

    /// Where a 5.0 Server Reference in a refusal or a DISCONNECT sends the client, if it is
    /// to be followed (spec 4.11): the first reference, `host[:port]`, reached with the
    /// current broker's scheme (and WebSocket path).
    fn server_reference(&self, reason: &ConnectionError) -> Option<BrokerUrl> {
        use mqtt_proto::{ConnectReasonCode as C, DisconnectReasonCode as D};
        if !self.follow_server_reference || self.redirects >= MAX_REDIRECTS {
            return None;
        }
        let reference = match reason {
            ConnectionError::Refused {
                reason: C::UseAnotherServer | C::ServerMoved,
                properties,
            } => properties.server_reference.as_ref(),
            ConnectionError::ServerDisconnected {
                reason: D::UseAnotherServer | D::ServerMoved,
                properties,
            } => properties.server_reference.as_ref(),
            _ => None,
        }?;
        let base = self
            .redirect
            .as_ref()
            .or_else(|| self.brokers.get(self.reconnect.broker()))?;
        match parse_server_reference(reference.as_str(), base) {
            Some(url) => Some(url),
            None => {
                warn!(reference = %reference.as_str(), "cannot use the server reference");
                None
            }
        }
    }

    /// The deadline from [`poll_timeout`](Self::poll_timeout) passed; `random` in `[0, 1)`
    /// jitters the reconnect delay if the connection is given up.
    pub fn handle_timeout(&mut self, now: Instant, random: f64) {
        for waiter in self.responses.take_expired(now) {
            let timeout = self.request_timeout;
            self.reply(waiter, Reply::Response(Err(Error::RequestTimeout(timeout))));
        }
        match self.phase {
            Phase::Waiting(until) if now >= until => self.next_attempt(),
            Phase::Online => {
                if self
                    .write_stalled_since
                    .is_some_and(|since| now >= since + self.write_timeout)
                {
                    warn!(timeout = ?self.write_timeout, "the transport takes no bytes: giving up");
                    let reason = ConnectionError::WriteTimeout(self.write_timeout);
                    self.session.handle_transport_failed(now, reason);
                    self.connection_over(now, random);
                    return;
                }
                if self.close_deadline.is_some_and(|deadline| now >= deadline) {
                    warn!("the connection did not close in time: dropping it");
                    self.session
                        .handle_transport_failed(now, ConnectionError::TransportClosed);
                    self.connection_over(now, random);
                    return;
                }
                self.session.handle_timeout(now);
                self.pump(now);
            }
            _ => {}
        }
    }

    /// A request from a client handle.
    pub fn handle_command(&mut self, now: Instant, command: Command<W>) {
        if self.phase == Phase::Stopped {
            self.refuse(command);
            return;
        }
        match command {
            Command::Publish {
                message,
                token,
                waiter,
            } => self.publish(now, message, token, waiter),
            Command::Subscribe {
                filters,
                properties,
                waiter,
            } => match self.session.subscribe_with(now, filters, properties) {
                Ok(id) => {
                    self.requests.insert(id, waiter);
                }
                Err(e) => self.reply(waiter, Reply::Subscribed(Err(e.into()))),
            },
            Command::Unsubscribe {
                filters,
                properties,
                waiter,
            } => match self.session.unsubscribe_with(now, filters, properties) {
                Ok(id) => {
                    self.requests.insert(id, waiter);
                }
                Err(e) => self.reply(waiter, Reply::Unsubscribed(Err(e.into()))),
            },
            Command::Ack(token) => {
                if let Err(e) = self.session.ack(now, token) {
                    self.event(Event::Error(e.into()));
                }
            }
            Command::Auth { auth, waiter } => {
                let result = self.session.auth(now, auth).map_err(Error::from);
                self.reply(waiter, Reply::Done(result));
            }
            Command::Request {
                message,
                response_topic,
                correlation,
                token,
                waiter,
            } => self.request(now, message, response_topic, correlation, token, waiter),
            Command::Disconnect { waiter } => self.disconnect(now, waiter),
            Command::Reauthenticate { waiter } => self.reauthenticate(now, waiter),
            Command::Abort => {
                self.abort(now);
                return;
            }
        }
        self.pump(now);
    }

    /// Every client handle is gone: close at once, like [`Command::Abort`].
    pub fn handle_clients_gone(&mut self, now: Instant) {
        self.abort(now);
    }

    // ----- outputs -----

    /// Bytes waiting to be written: those handed out and not yet reported written, and
    /// those encoded since. Unlike [`poll_transmit`](Self::poll_transmit) it moves nothing,
    /// so that a driver holding writes back (see [`TransportOptions::write_delay`]) can ask
    /// as often as it likes.
    pub fn transmit_len(&self) -> usize {
        let handed_out: usize = self.chunks.iter().map(|c| c.bytes.len()).sum();
        handed_out + self.session.transmit_len()
    }

    /// The next bytes to write at `now`, if any: the first buffer of what waits. Write as
    /// many as the transport takes and report them with
    /// [`handle_written`](Self::handle_written). Packets come one after another in one
    /// buffer; the payload of a large PUBLISH is a buffer of its own (the message's bytes, not
    /// a copy), which [`poll_transmit_vectored`](Self::poll_transmit_vectored) writes
    /// together with the rest. Everything comes from `Session::poll_transmit_chunks`
    /// batches, each committed to the store first.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<&[u8]> {
        self.refill(now);
        self.chunks.front().map(|c| c.bytes.chunk())
    }

    /// Fills `slices` with the buffers to write at `now`, in order, for one vectored write;
    /// returns how many (0 when nothing waits). Report what the transport took with
    /// [`handle_written`](Self::handle_written).
    pub fn poll_transmit_vectored<'a>(
        &'a mut self,
        now: Instant,
        slices: &mut [IoSlice<'a>],
    ) -> usize {
        self.refill(now);
        let mut filled = 0;
        for chunk in &self.chunks {
            let rest = slices.get_mut(filled..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            filled += chunk.bytes.io_slices(rest);
        }
        filled
    }

    /// `n` bytes of [`poll_transmit`](Self::poll_transmit) (or of the buffers of
    /// [`poll_transmit_vectored`](Self::poll_transmit_vectored), in order) were written at
    /// `now`.
    pub fn handle_written(&mut self, now: Instant, n: usize) {
        let mut left = n;
        while let Some(front) = self.chunks.front_mut() {
            let step = left.min(front.bytes.len());
            front.bytes.advance(step);
            left -= step;
            if !front.bytes.is_empty() {
                break;
            }
            self.finish_chunk();
        }
        self.note_write_progress(now, n > 0);
    }

    /// Takes the next buffer whole at `now`, for message-oriented transports (WebSocket): a
    /// run of packets, or a large payload on its own. QoS 0 publishers are answered once
    /// their batch is handed to the transport.
    pub fn take_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.refill(now);
        let front = self.chunks.front_mut()?;
        let bytes = front.bytes.pop_chunk();
        if front.bytes.is_empty() {
            self.finish_chunk();
        }
        self.note_write_progress(now, true);
        bytes
    }

    /// Takes the session's next batch when nothing else waits.
    fn refill(&mut self, now: Instant) {
        if self.chunks.is_empty() && self.phase == Phase::Online {
            self.fill_transmit(now);
        }
    }

    /// Restarts the write timeout after progress; stops it when nothing waits.
    fn note_write_progress(&mut self, now: Instant, progressed: bool) {
        if self.chunks.is_empty() {
            self.write_stalled_since = None;
        } else if progressed || self.write_stalled_since.is_none() {
            self.write_stalled_since = Some(now);
        }
    }

    /// The next reply or event to deliver.
    pub fn poll_output(&mut self) -> Option<Output<W>> {
        self.outputs.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let requests = self.responses.next_deadline();
        let phase = match self.phase {
            Phase::Waiting(until) => Some(until),
            Phase::Online => {
                let drain = self.drain.as_ref().filter(|d| !d.sent).map(|d| d.deadline);
                let write = self.write_stalled_since.map(|t| t + self.write_timeout);
                [
                    self.session.poll_timeout(),
                    drain,
                    write,
                    self.close_deadline,
                ]
                .into_iter()
                .flatten()
                .min()
            }
            Phase::Prepare | Phase::Dial | Phase::Stopped => None,
        };
        match self.phase {
            Phase::Waiting(_) | Phase::Online => [phase, requests].into_iter().flatten().min(),
            _ => phase,
        }
    }

    // ----- internals -----

    fn event(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    fn reply(&mut self, waiter: W, reply: Reply) {
        self.outputs.push_back(Output::Reply(waiter, reply));
    }

    /// What a caller of a stopped client gets: the cause if it gave up connecting.
    fn stopped_error(&self) -> Error {
        match &self.stop_cause {
            Some(cause) => Error::Stopped(cause.clone()),
            None => Error::Closed,
        }
    }

    fn refuse(&mut self, command: Command<W>) {
        let e = self.stopped_error();
        match command {
            Command::Publish {
                waiter: Some(w), ..
            } => self.reply(w, Reply::Published(Err(e))),
            Command::Subscribe { waiter, .. } => {
                self.reply(waiter, Reply::Subscribed(Err(e)));
            }
            Command::Unsubscribe { waiter, .. } => {
                self.reply(waiter, Reply::Unsubscribed(Err(e)));
            }
            Command::Auth { waiter, .. } => self.reply(waiter, Reply::Done(Err(e))),
            Command::Disconnect { waiter } => self.reply(waiter, Reply::Done(Ok(()))),
            Command::Request { waiter, .. } => self.reply(waiter, Reply::Response(Err(e))),
            Command::Reauthenticate { waiter } => self.reply(waiter, Reply::Done(Err(e))),
            Command::Publish { waiter: None, .. } | Command::Ack(_) | Command::Abort => {}
        }
    }

    fn queue_full(&self) -> bool {
        self.session.queued() >= self.session.config().max_queued
    }

    fn publish(&mut self, now: Instant, message: Message, token: PublishToken, waiter: Option<W>) {
        if !self.deferred.is_empty() || self.queue_full() {
            self.deferred.push_back(Deferred {
                message,
                token,
                waiter,
            });
            return;
        }
        match self.session.publish_with_token(now, message, token) {
            Ok(()) => {
                let waiter = match waiter {
                    Some(w) => PublishWaiter::Caller(w),
                    None => PublishWaiter::Token(token),
                };
                self.publishes.insert(token, waiter);
            }
            Err(e) => match waiter {
                Some(w) => self.reply(w, Reply::Published(Err(e.into()))),
                None => self.event(Event::Published {
                    token,
                    outcome: PublishOutcome::Dropped(e),
                }),
            },
        }
    }

    /// A request: subscribes to the response topic first if needed, then publishes it with
    /// Response Topic and Correlation Data.
    fn request(
        &mut self,
        now: Instant,
        mut message: Message,
        response_topic: mqtt_proto::TopicName,
        correlation: bytes::Bytes,
        token: PublishToken,
        waiter: W,
    ) {
        if !self.session.config().version.is_v5() {
            self.reply(
                waiter,
                Reply::Response(Err(Error::NeedsV5("request/response"))),
            );
            return;
        }
        let topic = self.responses.topic.get_or_insert(response_topic).clone();
        message.properties.response_topic = Some(topic.clone());
        message.properties.correlation_data = Some(correlation.clone());
        let waiting = Waiting {
            waiter,
            deadline: now + self.request_timeout,
        };
        match self.responses.subscription {
            ResponseSubscription::Ready => {
                self.send_request(now, message, correlation, token, waiting)
            }
            ResponseSubscription::Pending(_) => {
                self.responses
                    .held
                    .push((message, correlation, waiting, token));
            }
            ResponseSubscription::None => {
                // A topic name without wildcards is a valid filter of itself.
                let filter = match TopicFilter::new(topic.as_str()) {
                    Ok(filter) => filter,
                    Err(e) => {
                        self.reply(waiting.waiter, Reply::Response(Err(e.into())));
                        return;
                    }
                };
                let filters = vec![Subscription::new(filter, QoS::AtLeastOnce)];
                match self.session.subscribe(now, filters) {
                    Ok(id) => {
                        debug!(topic = %topic.as_str(), "subscribing to the response topic");
                        self.responses.subscription = ResponseSubscription::Pending(id);
                        self.responses
                            .held
                            .push((message, correlation, waiting, token));
                    }
                    Err(e) => self.reply(waiting.waiter, Reply::Response(Err(e.into()))),
                }
            }
        }
    }

    /// Publishes a request whose response topic is subscribed.
    fn send_request(
        &mut self,
        now: Instant,
        message: Message,
        correlation: bytes::Bytes,
        token: PublishToken,
        waiting: Waiting<W>,
    ) {
        if self.queue_full() {
            self.reply(waiting.waiter, Reply::Response(Err(Error::QueueFull)));
            return;
        }
        match self.session.publish_with_token(now, message, token) {
            Ok(()) => {
                self.publishes
                    .insert(token, PublishWaiter::Request(correlation.clone()));
                self.responses.sent.insert(correlation, waiting);
            }
            Err(e) => self.reply(waiting.waiter, Reply::Response(Err(e.into()))),
        }
    }

    /// The answer to the subscription to the response topic: held requests go out, or fail.
    fn response_subscribed(&mut self, now: Instant, result: Option<Result<QoS, SubAckReasonCode>>) {
        let held = std::mem::take(&mut self.responses.held);
        match result {
            Some(Ok(_)) => {
                self.responses.subscription = ResponseSubscription::Ready;
                for (message, correlation, waiting, token) in held {
                    self.send_request(now, message, correlation, token, waiting);
                }
            }
            refused => {
                self.responses.subscription = ResponseSubscription::None;
                let code = refused
                    .and_then(Result::err)
                    .unwrap_or(SubAckReasonCode::UnspecifiedError);
                warn!(?code, "the broker refused the response topic");
                for (_, _, waiting, _) in held {
                    self.reply(
                        waiting.waiter,
                        Reply::Response(Err(Error::SubscribeRefused(code))),
                    );
                }
            }
        }
    }

    /// A request's publish completed: a request the broker did not take fails.
    fn request_published(&mut self, correlation: bytes::Bytes, outcome: PublishOutcome) {
        let error = match outcome {
            PublishOutcome::Dropped(e) => Error::from(e),
            PublishOutcome::Rejected { .. } | PublishOutcome::Expired => {
                Error::RequestNotDelivered(Box::new(outcome))
            }
            _ => return,
        };
        if let Some(waiting) = self.responses.sent.remove(&correlation) {
            self.reply(waiting.waiter, Reply::Response(Err(error)));
        }
    }

    /// A message on the response topic: the response to a request, which takes it (and
    /// acknowledges it: the application never sees it as an event), or a late one, dropped.
    fn on_response(&mut self, now: Instant, publish: mqtt_proto::Publish, ack: Option<AckToken>) {
        let waiting = self.responses.take_match(&publish);
        if let Some(token) = ack {
            self.session.handle_taken(now, token);
            if self.session.config().manual_acks && publish.qos_pid.qos() > QoS::AtMostOnce {
                let _ = self.session.ack(now, token);
            }
        }
        match waiting {
            Some(waiting) => self.reply(waiting.waiter, Reply::Response(Ok(publish))),
            None => debug!("a response no request waits for (late, or for an earlier process)"),
        }
    }

    /// Moves deferred publishes into the session while its queue has room.
    fn retry_deferred(&mut self, now: Instant) -> bool {
        let mut progressed = false;
        while !self.deferred.is_empty() && !self.queue_full() {
            let Some(d) = self.deferred.pop_front() else {
                break;
            };
            progressed = true;
            // The queue has room, so this goes straight into the session.
            let deferred = std::mem::take(&mut self.deferred);
            self.publish(now, d.message, d.token, d.waiter);
            self.deferred = deferred;
        }
        progressed
    }

    fn disconnect(&mut self, now: Instant, waiter: W) {
        if let Some(drain) = self.drain.as_mut() {
            drain.waiters.push(waiter);
            return;
        }
        match self.phase {
            Phase::Online => {
                // Before CONNACK there is nothing to wait for: disconnect at once.
                let deadline = if self.session.is_connected() {
                    now + self.disconnect_timeout
                } else {
                    now
                };
                info!("disconnecting");
                self.drain = Some(Drain {
                    waiters: vec![waiter],
                    deadline,
                    sent: false,
                });
            }
            Phase::Prepare | Phase::Dial | Phase::Waiting(_) => {
                self.drain = Some(Drain {
                    waiters: vec![waiter],
                    deadline: now,
                    sent: true,
                });
                self.stop();
            }
            Phase::Stopped => self.reply(waiter, Reply::Done(Ok(()))),
        }
    }

    /// During a graceful disconnect: sends DISCONNECT once nothing is outstanding or the
    /// deadline passed.
    fn check_drain(&mut self, now: Instant) -> bool {
        let outstanding =
            !self.deferred.is_empty() || self.session.queued() > 0 || self.session.inflight() > 0;
        let Some(drain) = self.drain.as_mut() else {
            return false;
        };
        if drain.sent || (outstanding && now < drain.deadline && self.session.is_connected()) {
            return false;
        }
        drain.sent = true;
        if outstanding {
            warn!(
                queued = self.session.queued(),
                inflight = self.session.inflight(),
                "disconnecting with messages outstanding"
            );
        }
        self.session.disconnect(now);
        true
    }

    /// Starts a re-authentication for `waiter`, or has it wait for the one under way.
    fn reauthenticate(&mut self, now: Instant, waiter: W) {
        if self.session.is_reauthenticating() {
            self.reauth_waiters.push(waiter);
            return;
        }
        match self.session.reauthenticate(now) {
            Ok(()) => self.reauth_waiters.push(waiter),
            Err(e) => self.reply(waiter, Reply::Done(Err(e.into()))),
        }
    }

    fn abort(&mut self, now: Instant) {
        if self.phase == Phase::Online {
            self.session.handle_closed(now);
            self.pump(now);
        }
        self.stop();
    }

    fn schedule_retry(&mut self, now: Instant, random: f64) {
        match self.reconnect.on_failure(now, random) {
            Some(delay) if delay.is_zero() => self.next_attempt(),
            Some(delay) => {
                debug!(?delay, "reconnecting after a delay");
                self.phase = Phase::Waiting(now + delay);
            }
            None => {
                info!("giving up connecting");
                self.stop_with(self.last_failure.clone());
            }
        }
    }

    /// Stops for good at the application's request (or with every handle gone).
    fn stop(&mut self) {
        self.stop_with(None);
    }

    /// Stops for good: answers every waiting caller (with `cause`, when the client gave up
    /// connecting) and reports [`Event::Closed`].
    fn stop_with(&mut self, cause: Option<ConnectFailure>) {
        if self.phase == Phase::Stopped {
            return;
        }
        self.phase = Phase::Stopped;
        self.stop_cause = cause;
        self.counters.connected_since = None;
        self.fail_unwritten();
        let publishes: Vec<_> = self.publishes.drain().map(|(_, w)| w).collect();
        for waiter in publishes {
            if let PublishWaiter::Caller(w) = waiter {
                let e = self.stopped_error();
                self.reply(w, Reply::Published(Err(e)));
            }
        }
        let deferred: Vec<_> = self.deferred.drain(..).collect();
        for d in deferred {
            if let Some(w) = d.waiter {
                let e = self.stopped_error();
                self.reply(w, Reply::Published(Err(e)));
            }
        }
        for w in self.responses.take_all() {
            let e = self.stopped_error();
            self.reply(w, Reply::Response(Err(e)));
        }
        let requests: Vec<_> = self.requests.drain().map(|(_, w)| w).collect();
        for w in requests {
            // The kind of request is not remembered; the adapter maps `Done(Err(_))` onto
            // whatever its caller expects.
            let e = self.stopped_error();
            self.reply(w, Reply::Done(Err(e)));
        }
        if let Some(drain) = self.drain.take() {
            for w in drain.waiters {
                self.reply(w, Reply::Done(Ok(())));
            }
        }
        for w in std::mem::take(&mut self.reauth_waiters) {
            let e = self.stopped_error();
            self.reply(w, Reply::Done(Err(e)));
        }
        info!("client stopped");
        self.event(Event::Closed);
    }

    /// Moves what the session produced into the transmit queue and the outputs, repeating
    /// while routing an event makes more happen.
    ///
    /// Bytes stay in the session until the adapter asks for them
    /// ([`poll_transmit`](Self::poll_transmit)): the session commits its store once per batch
    /// it hands out, so everything one turn of the driver produced shares one commit.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(event) = self.session.poll_event() {
                progressed = true;
                self.route(now, event);
            }
            progressed |= self.retry_deferred(now);
            progressed |= self.check_drain(now);
            if !progressed {
                break;
            }
        }
        if self.phase == Phase::Online
            && self.session.wants_close()
            && self.close_deadline.is_none()
        {
            self.close_deadline = Some(now + self.close_timeout);
        }
        if self.phase != Phase::Online && self.session.commit().is_err() {
            // Without a connection nothing pulls bytes, which commits: commit here, so that
            // what `publish` accepted offline is durable too. A failure is an event.
            while let Some(event) = self.session.poll_event() {
                self.route(now, event);
            }
        }
    }

    /// Takes the session's pending bytes (committing its store first) as the next chunk.
    fn fill_transmit(&mut self, now: Instant) {
        let mut bytes = std::mem::take(&mut self.spare);
        if self.session.poll_transmit_chunks(&mut bytes) > 0 {
            self.chunks.push_back(Chunk {
                bytes,
                written: std::mem::take(&mut self.unpulled_written),
            });
            self.note_write_progress(now, false);
        } else {
            self.spare = bytes;
        }
        // A failed commit reports through events, and ends the connection.
        self.pump(now);
    }

    fn finish_chunk(&mut self) {
        let Some(chunk) = self.chunks.pop_front() else {
            return;
        };
        let mut written = chunk.written;
        for w in written.drain(..) {
            self.reply(w, Reply::Published(Ok(PublishOutcome::Sent)));
        }
        // The emptied list serves the next chunk, which would otherwise grow one from nothing.
        if self.unpulled_written.is_empty() && self.unpulled_written.capacity() < written.capacity()
        {
            self.unpulled_written = written;
        }
        let mut bytes = chunk.bytes;
        if self.spare.capacity() < bytes.capacity() {
            bytes.clear();
            self.spare = bytes;
        }
    }

    fn fail_unwritten(&mut self) {
        let chunks: Vec<_> = self.chunks.drain(..).collect();
        for chunk in chunks {
            for w in chunk.written {
                self.reply(w, Reply::Published(Err(Error::NotSent)));
            }
        }
        for w in std::mem::take(&mut self.unpulled_written) {
            self.reply(w, Reply::Published(Err(Error::NotSent)));
        }
    }

    fn route(&mut self, now: Instant, event: SessionEvent) {
        match event {
            SessionEvent::Connected {
                session_present,
                properties,
            } => {
                info!(session_present, "connected");
                self.reconnect.on_connected(now);
                self.counters.connections += 1;
                self.counters.connected_since = Some(now);
                self.last_failure = None;
                self.event(Event::Connected {
                    session_present,
                    properties,
                });
            }
            SessionEvent::Message { publish, ack }
                if self.responses.is_response_topic(&publish) =>
            {
                self.on_response(now, publish, ack);
            }
            SessionEvent::Message { publish, ack } => {
                let Some(token) = ack else {
                    // Every message carries a token with `Delivery::Reported`.
                    return self.event(Event::Message { publish, ack: None });
                };
                let manual =
                    self.session.config().manual_acks && publish.qos_pid.qos() > QoS::AtMostOnce;
                let event = Event::Message {
                    publish,
                    ack: manual.then_some(token),
                };
                self.outputs.push_back(Output::Message(token, event));
            }
            SessionEvent::Published { token, outcome } => match self.publishes.remove(&token) {
                Some(PublishWaiter::Caller(w)) => match outcome {
                    // Its bytes are still in the session: answered once they are written.
                    PublishOutcome::Sent => self.unpulled_written.push(w),
                    PublishOutcome::Dropped(e) => self.reply(w, Reply::Published(Err(e.into()))),
                    outcome => self.reply(w, Reply::Published(Ok(outcome))),
                },
                Some(PublishWaiter::Token(token)) => {
                    self.event(Event::Published { token, outcome })
                }
                Some(PublishWaiter::Request(correlation)) => {
                    self.request_published(correlation, outcome);
                }
                // A flow resumed from the store of an earlier process.
                None => self.event(Event::Published { token, outcome }),
            },
            SessionEvent::Subscribed {
                packet_id, results, ..
            } if self.responses.subscription == ResponseSubscription::Pending(packet_id) => {
                self.response_subscribed(now, results.first().copied());
            }
            SessionEvent::Subscribed {
                packet_id,
                results,
                properties,
            } => {
                if let Some(w) = self.requests.remove(&packet_id) {
                    self.reply(w, Reply::Subscribed(Ok(results.clone())));
                }
                self.event(Event::Subscribed {
                    packet_id,
                    results,
                    properties,
                });
            }
            SessionEvent::Unsubscribed {
                packet_id,
                results,
                properties,
            } => {
                if let Some(w) = self.requests.remove(&packet_id) {
                    self.reply(w, Reply::Unsubscribed(Ok(results.clone())));
                }
                self.event(Event::Unsubscribed {
                    packet_id,
                    results,
                    properties,
                });
            }
            SessionEvent::Resubscribed { results } => {
                info!(filters = results.len(), "subscribed again");
                self.event(Event::Resubscribed { results });
            }
            SessionEvent::Auth(auth) => self.event(Event::Auth(auth)),
            SessionEvent::Reauthenticated { properties } => {
                info!("re-authenticated");
                for w in std::mem::take(&mut self.reauth_waiters) {
                    self.reply(w, Reply::Done(Ok(())));
                }
                self.event(Event::Reauthenticated { properties });
            }
            SessionEvent::Disconnected { reason } => {
                info!(%reason, "disconnected");
                for w in std::mem::take(&mut self.reauth_waiters) {
                    self.reply(w, Reply::Done(Err(Error::ConnectionEnded(reason.clone()))));
                }
                self.last_reason = Some(reason.clone());
                self.event(Event::Disconnected { reason });
            }
            SessionEvent::StoreFailed(e) => self.event(Event::Error(Error::Store(e))),
            SessionEvent::RecordSetAside(record) => self.event(Event::RecordSetAside(record)),
        }
    }
}

/// The first of a Server Reference's space-separated references, `host[:port]` (an IPv6
/// address in brackets), as a URL with `base`'s scheme and path; `None` if unusable.
fn parse_server_reference(reference: &str, base: &BrokerUrl) -> Option<BrokerUrl> {
    let first = reference.split_whitespace().next()?;
    let (host, port) = if let Some(rest) = first.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None if after.is_empty() => base.scheme.default_port(),
            None => return None,
        };
        (host.to_owned(), port)
    } else {
        match first.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), port.parse().ok()?),
            None => (first.to_owned(), base.scheme.default_port()),
        }
    };
    if host.is_empty() || host.contains(['/', '@', '?', '#']) {
        return None;
    }
    Some(BrokerUrl {
        scheme: base.scheme,
        host,
        port,
        path: base.path.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_proto::QoS;

    type Core = ClientCore<u32>;

    fn core(options: ClientOptions) -> Core {
        ClientCore::new(options.client_id("c")).unwrap().0
    }

    /// Takes everything to write; returns the packet type nibbles of the batch.
    fn written(core: &mut Core) -> Vec<u8> {
        let mut types = Vec::new();
        while let Some(bytes) = core.poll_transmit(Instant::now()) {
            let mut rest = bytes.to_vec();
            let n = rest.len();
            while rest.len() >= 2 {
                types.push(rest[0] >> 4);
                let len = usize::from(rest[1]) + 2; // short packets only in these tests
                rest.drain(..len.min(rest.len()));
            }
            core.handle_written(Instant::now(), n);
        }
        types
    }

    fn outputs(core: &mut Core) -> Vec<Output<u32>> {
        std::iter::from_fn(|| core.poll_output()).collect()
    }

    fn read(core: &mut Core, now: Instant, bytes: &[u8]) {
        core.handle_read(now, &mut BytesMut::from(bytes));
    }

    fn connected(options: ClientOptions) -> (Core, Instant) {
        let now = Instant::now();
        let mut core = core(options);
        assert!(matches!(core.step(), Step::Dial(_)));
        core.handle_connected(now);
        assert_eq!(written(&mut core), [1]); // CONNECT
        read(&mut core, now, &[0x20, 0x02, 0x00, 0x00]);
        assert!(matches!(
            outputs(&mut core).as_slice(),
            [Output::Event(Event::Connected { .. })]
        ));
        assert!(core.is_connected());
        (core, now)
    }

    fn publish(core: &mut Core, now: Instant, qos: QoS, waiter: Option<u32>, token: u64) {
        let message = Message::new("t", "x").unwrap().qos(qos);
        core.handle_command(
            now,
            Command::Publish {
                message,
                token: PublishToken(token),
                waiter,
            },
        );
    }

    #[test]
    fn qos0_is_answered_once_written() {
        let (mut core, now) = connected(ClientOptions::new("mqtt://h"));
        publish(&mut core, now, QoS::AtMostOnce, Some(7), 1);
        assert!(outputs(&mut core).is_empty(), "answered before the write");
        let len = core.poll_transmit(now).unwrap().len();
        core.handle_written(now, len - 1);
        assert!(
            outputs(&mut core).is_empty(),
            "answered after a partial write"
        );
        core.handle_written(now, 1);
        assert!(matches!(
            outputs(&mut core).as_slice(),
            [Output::Reply(7, Reply::Published(Ok(PublishOutcome::Sent)))]
        ));
    }

    #[test]
    fn qos1_is_answered_on_puback_and_detached_ones_become_events() {
        let (mut core, now) = connected(ClientOptions::new("mqtt://h"));
        publish(&mut core, now, QoS::AtLeastOnce, Some(1), 10);
        publish(&mut core, now, QoS::AtLeastOnce, None, 11);
        assert_eq!(written(&mut core), [3, 3]);
        assert!(outputs(&mut core).is_empty());
        read(
            &mut core,
            now,
            &[0x40, 0x02, 0x00, 0x01, 0x40, 0x02, 0x00, 0x02],
        );
        let out = outputs(&mut core);
        assert!(
            matches!(
                out.as_slice(),
                [
                    Output::Reply(1, Reply::Published(Ok(PublishOutcome::Acknowledged { .. }))),
                    Output::Event(Event::Published {
                        token: PublishToken(11),
                        outcome: PublishOutcome::Acknowledged { .. }
                    })
                ]
            ),
            "{out:?}"
        );
    }

    #[test]
    fn subscribe_is_answered_and_reported() {
        let (mut core, now) = connected(ClientOptions::new("mqtt://h"));
        let filter = TopicFilter::new("a/#").unwrap();
        core.handle_command(
            now,
            Command::Subscribe {
                filters: vec![Subscription::new(filter, QoS::ExactlyOnce)],
                properties: SubscribeProperties::default(),
                waiter: 3,
            },
        );
        assert_eq!(written(&mut core), [8]);
        read(&mut core, now, &[0x90, 0x03, 0x00, 0x01, 0x01]);
        let out = outputs(&mut core);
        assert!(
            matches!(
                out.as_slice(),
                [Output::Reply(3, Reply::Subscribed(Ok(r))), Output::Event(Event::Subscribed { .. })]
                    if r == &vec![Ok(QoS::AtLeastOnce)]
            ),
            "{out:?}"
        );
    }

    #[test]
    fn disconnect_waits_for_inflight_then_stops() {
        let (mut core, now) = connected(ClientOptions::new("mqtt://h"));
        publish(&mut core, now, QoS::AtLeastOnce, Some(1), 1);
        core.handle_command(now, Command::Disconnect { waiter: 2 });
        assert_eq!(written(&mut core), [3], "DISCONNECT before the PUBACK");
        assert!(!core.wants_close());
        read(&mut core, now, &[0x40, 0x02, 0x00, 0x01]);
        assert_eq!(written(&mut core), [14]);
        assert!(core.wants_close());
        core.handle_closed(now, None, 0.0);
        let out = outputs(&mut core);
        assert!(
            matches!(
                out.as_slice(),
                [
                    Output::Reply(1, Reply::Published(Ok(_))),
                    Output::Event(Event::Disconnected {
                        reason: ConnectionError::LocalDisconnect
                    }),
                    Output::Reply(2, Reply::Done(Ok(()))),
                    Output::Event(Event::Closed),
                ]
            ),
            "{out:?}"
        );
        assert_eq!(core.step(), Step::Stopped);
    }

    #[test]
    fn disconnect_gives_up_waiting_at_the_deadline() {
        let options = ClientOptions::new("mqtt://h").disconnect_timeout(Duration::from_secs(1));
        let (mut core, now) = connected(options);
        publish(&mut core, now, QoS::AtLeastOnce, Some(1), 1);
        core.handle_command(now, Command::Disconnect { waiter: 2 });
        written(&mut core);
        let deadline = core.poll_timeout().unwrap();
        assert!(deadline <= now + Duration::from_secs(1));
        core.handle_timeout(deadline, 0.0);
        assert_eq!(written(&mut core), [14]);
        assert!(core.wants_close());
    }

    #[test]
    fn a_transport_that_takes_no_bytes_is_given_up_at_the_write_timeout() {
        let options = ClientOptions::new("mqtt://h")
            .write_timeout(Duration::from_secs(3))
            .reconnect(super::super::Backoff::new(
                Duration::from_secs(1),
                Duration::from_secs(1),
            ));
        let (mut core, now) = connected(options);
        publish(&mut core, now, QoS::AtLeastOnce, Some(1), 1);
        assert!(core.poll_transmit(now).is_some(), "bytes wait");
        let deadline = core.poll_timeout().unwrap();
        assert_eq!(deadline, now + Duration::from_secs(3));
        // Progress restarts the clock.
        let later = now + Duration::from_secs(2);
        core.handle_written(later, 1);
        assert_eq!(core.poll_timeout(), Some(later + Duration::from_secs(3)));
        core.handle_timeout(later + Duration::from_secs(3), 0.0);
        let out = outputs(&mut core);
        assert!(
            matches!(
                out.as_slice(),
                [Output::Event(Event::Disconnected {
                    reason: ConnectionError::WriteTimeout(_)
                })]
            ),
            "{out:?}"
        );
        assert!(matches!(core.step(), Step::Wait(_)), "{:?}", core.step());
    }

    #[test]
    fn a_close_that_does_not_drain_is_given_up_at_the_close_timeout() {
        let options = ClientOptions::new("mqtt://h")
            .disconnect_timeout(Duration::from_secs(1))
            .close_timeout(Duration::from_secs(2));
        let (mut core, now) = connected(options);
        publish(&mut core, now, QoS::AtLeastOnce, Some(1), 1);
        core.handle_command(now, Command::Disconnect { waiter: 2 });
        // Nothing is ever written: the disconnect deadline sends DISCONNECT (queued behind the
        // PUBLISH), and the close deadline then drops the transport.
        let mut at = now;
        for _ in 0..4 {
            let Some(deadline) = core.poll_timeout() else {
                break;
            };
            at = deadline;
            core.handle_timeout(at, 0.0);
        }
        assert!(at <= now + Duration::from_secs(3), "{:?}", at - now);
        assert!(core.is_stopped());
        let out = outputs(&mut core);
        assert!(
            out.iter()
                .any(|o| matches!(o, Output::Reply(2, Reply::Done(Ok(()))))),
            "{out:?}"
        );
    }

    #[test]
    fn messages_are_acknowledged_when_the_application_takes_them() {
        let (mut core, now) = connected(ClientOptions::new("mqtt://h"));
        // PUBLISH QoS 1, id 7, topic "t", payload "x".
        read(
            &mut core,
            now,
            &[0x32, 0x06, 0x00, 0x01, b't', 0x00, 0x07, b'x'],
        );
        let out = outputs(&mut core);
        let [Output::Message(token, Event::Message { ack: None, .. })] = out.as_slice() else {
            panic!("{out:?}");
        };
        assert!(
            written(&mut core).is_empty(),
            "no PUBACK before it is taken"
        );
        core.handle_taken(now, *token);
        assert_eq!(written(&mut core), [4], "PUBACK");
    }

    #[test]
    fn lost_connection_backs_off_then_redials() {
        let options = ClientOptions::new("mqtt://h").reconnect(super::super::Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(8),
        ));
        let (mut core, now) = connected(options);
        core.handle_closed(now, None, 0.0);
        let Step::Wait(until) = core.step() else {
            panic!("{:?}", core.step());
        };
        assert!(until > now && until <= now + Duration::from_secs(1));
        assert_eq!(core.poll_timeout(), Some(until));
        core.handle_timeout(until, 0.0);
        assert!(matches!(core.step(), Step::Dial(_)));
    }

    #[test]
    fn without_reconnect_a_failure_stops_and_answers_everyone() {
        let now = Instant::now();
        let mut core = core(ClientOptions::new("mqtt://h").no_reconnect());
        publish(&mut core, now, QoS::AtLeastOnce, Some(1), 1);
        let error = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        core.handle_connect_failed(now, DialError::connect(error), 0.5);
        let out = outputs(&mut core);
        let refused = |e: &Error| {
            matches!(
                e,
                Error::Stopped(ConnectFailure::Dial {
                    error: DialError::Connect(_),
                    ..
                })
            )
        };
        assert!(
            matches!(
                out.as_slice(),
                [
                    Output::Event(Event::Error(Error::Connect { .. })),
                    Output::Reply(1, Reply::Published(Err(e))),
                    Output::Event(Event::Closed),
                ] if refused(e)
            ),
            "the caller gets the cause: {out:?}"
        );
        publish(&mut core, now, QoS::AtMostOnce, Some(2), 2);
        assert!(matches!(
            outputs(&mut core).as_slice(),
            [Output::Reply(2, Reply::Published(Err(e)))] if refused(e)
        ));
    }

    /// CONNACK refusing with a 3.1.1 return code.
    fn refuse(core: &mut Core, now: Instant, code: u8) {
        core.handle_connected(now);
        written(core);
        read(core, now, &[0x20, 0x02, 0x00, code]);
        if core.wants_close() {
            core.handle_closed(now, None, 0.0);
        }
    }

    #[test]
    fn a_permanent_refusal_stops_when_asked_with_its_reason() {
        let options = ClientOptions::new("mqtt://h").stop_on_permanent_refusal(true);
        let now = Instant::now();
        let mut c = core(options);
        publish(&mut c, now, QoS::AtLeastOnce, Some(1), 1);
        // Server unavailable (3) passes by itself: retried.
        refuse(&mut c, now, 3);
        assert!(!c.is_stopped());
        assert_eq!(
            c.last_failure().and_then(ConnectFailure::refusal),
            Some(mqtt_proto::ConnectReasonCode::ServerUnavailable)
        );
        while let Some(deadline) = c.poll_timeout() {
            c.handle_timeout(deadline, 0.0);
        }
        assert!(matches!(c.step(), Step::Dial(_)));
        // Bad user name or password (4) does not.
        refuse(&mut c, now, 4);
        assert!(c.is_stopped());
        let out = outputs(&mut c);
        let cause = out.iter().find_map(|o| match o {
            Output::Reply(1, Reply::Published(Err(Error::Stopped(cause)))) => Some(cause),
            _ => None,
        });
        assert_eq!(
            cause.and_then(ConnectFailure::refusal),
            Some(mqtt_proto::ConnectReasonCode::BadUserNameOrPassword),
            "{out:?}"
        );
    }

    #[test]
    fn the_connect_hook_decides_each_attempt() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let calls = std::sync::Arc::new(AtomicU32::new(0));
        let seen = calls.clone();
        let options = ClientOptions::new("mqtt://a")
            .broker("mqtt://b")
            .reconnect(super::super::Backoff::new(
                Duration::from_secs(1),
                Duration::from_secs(1),
            ))
            .before_connect(move |_| {
                seen.fetch_add(1, Ordering::Relaxed);
                async { ConnectDecision::proceed() }
            });
        let now = Instant::now();
        let mut c = core(options);
        assert_eq!(c.step(), Step::Prepare);
        let attempt = c.connect_attempt().unwrap();
        assert_eq!((attempt.broker.host.as_str(), attempt.attempt), ("a", 1));
        assert!(attempt.last_failure.is_none());
        // Skipping moves on to the next broker, asking again.
        c.handle_connect_decision(now, ConnectDecision::skip(), 0.0);
        assert_eq!(c.step(), Step::Prepare);
        let attempt = c.connect_attempt().unwrap();
        assert_eq!((attempt.broker.host.as_str(), attempt.attempt), ("b", 2));
        // Fresh credentials go into the next CONNECT.
        c.handle_connect_decision(
            now,
            ConnectDecision::proceed().credentials("device", "token-2"),
            0.0,
        );
        assert!(matches!(c.step(), Step::Dial(url) if url.host == "b"));
        c.handle_connected(now);
        let bytes = c.poll_transmit(now).unwrap().to_vec();
        let connect = mqtt_proto::Decoder::new(mqtt_proto::ProtocolVersion::V3_1_1)
            .decode(&mut BytesMut::from(&bytes[..]))
            .unwrap();
        let Some(mqtt_proto::Packet::Connect(connect)) = connect else {
            panic!("{connect:?}");
        };
        assert_eq!(connect.username.as_deref(), Some("device"));
        assert_eq!(connect.password.as_deref(), Some(&b"token-2"[..]));
        // Refused: the hook sees why, and may stop the client with that cause.
        read(&mut c, now, &[0x20, 0x02, 0x00, 0x05]);
        c.handle_closed(now, None, 0.0);
        while let Some(deadline) = c.poll_timeout() {
            c.handle_timeout(deadline, 0.0);
        }
        assert_eq!(c.step(), Step::Prepare);
        let attempt = c.connect_attempt().unwrap();
        assert_eq!(
            attempt
                .last_failure
                .as_ref()
                .and_then(ConnectFailure::refusal),
            Some(mqtt_proto::ConnectReasonCode::NotAuthorized)
        );
        c.handle_connect_decision(now, ConnectDecision::stop(), 0.0);
        assert!(c.is_stopped());
        assert!(c.stop_cause().is_some_and(ConnectFailure::is_permanent));
    }

    #[test]
    fn server_references_are_followed_a_bounded_number_of_times() {
        let options = ClientOptions::new("mqtts://home:8883")
            .version(mqtt_proto::ProtocolVersion::V5)
            .follow_server_reference(true);
        let now = Instant::now();
        let mut c = core(options);
        let mut hosts = Vec::new();
        for n in 0..7 {
            let Step::Dial(url) = c.step() else {
                panic!("{:?}", c.step());
            };
            hosts.push(format!("{}:{}", url.host, url.port));
            c.handle_connected(now);
            written(&mut c);
            // CONNACK 5.0: Server Moved (0x9D) with Server Reference (0x1C) "elsewhere-N:1884".
            let reference = format!("elsewhere-{n}:1884");
            let mut packet = vec![0x20, 0, 0x00, 0x9D, 0, 0x1C, 0, reference.len() as u8];
            packet.extend_from_slice(reference.as_bytes());
            packet[4] = (3 + reference.len()) as u8;
            packet[1] = (packet.len() - 2) as u8;
            read(&mut c, now, &packet);
            c.handle_closed(now, None, 0.0);
            while let Some(deadline) = c.poll_timeout() {
                c.handle_timeout(deadline, 0.0);
            }
        }
        assert_eq!(
            hosts,
            [
                "home:8883",
                "elsewhere-0:1884",
                "elsewhere-1:1884",
                "elsewhere-2:1884",
                "elsewhere-3:1884",
                // Four in a row without a connection that stays up: back to the list.
                "home:8883",
                "home:8883",
            ]
        );
    }

    #[test]
    fn a_request_subscribes_first_and_its_response_is_taken_not_delivered() {
        use mqtt_proto::{Decoder, Packet, ProtocolVersion, PubAck, SubAck, SubAckReasonCode};
        let options = ClientOptions::new("mqtt://h")
            .version(ProtocolVersion::V5)
            .request_timeout(Duration::from_secs(5));
        let now = Instant::now();
        let mut c = core(options);
        c.handle_connected(now);
        written(&mut c);
        read(&mut c, now, &[0x20, 0x03, 0x00, 0x00, 0x00]);
        outputs(&mut c);
        let decode = |c: &mut Core| {
            let mut packets = Vec::new();
            let decoder = Decoder::new(ProtocolVersion::V5);
            while let Some(bytes) = c.poll_transmit(now) {
                let mut buf = BytesMut::from(bytes);
                let n = buf.len();
                while let Some(p) = decoder.decode(&mut buf).unwrap() {
                    packets.push(p);
                }
                c.handle_written(now, n);
            }
            packets
        };
        let encode = |p: Packet| {
            let mut buf = BytesMut::new();
            p.encode(ProtocolVersion::V5, &mut buf).unwrap();
            buf
        };
        let topic = mqtt_proto::TopicName::new("responses/1").unwrap();
        for (n, waiter) in [(1u8, 7u32), (2, 8)] {
            c.handle_command(
                now,
                Command::Request {
                    message: Message::new("svc", "?").unwrap().qos(QoS::AtLeastOnce),
                    response_topic: topic.clone(),
                    correlation: bytes::Bytes::from(vec![n]),
                    token: PublishToken(u64::from(n)),
                    waiter,
                },
            );
        }
        let sent = decode(&mut c);
        let [Packet::Subscribe(subscribe)] = sent.as_slice() else {
            panic!("the subscription goes first, alone: {sent:?}");
        };
        let suback = Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            properties: Default::default(),
            reason_codes: vec![SubAckReasonCode::GrantedQoS1],
        });
        c.handle_read(now, &mut encode(suback));
        let sent = decode(&mut c);
        assert_eq!(sent.len(), 2, "both requests now: {sent:?}");
        for (p, n) in sent.iter().zip([1u8, 2]) {
            let Packet::Publish(p) = p else {
                panic!("{p:?}")
            };
            assert_eq!(p.properties.response_topic.as_ref(), Some(&topic));
            assert_eq!(p.properties.correlation_data.as_deref(), Some(&[n][..]));
            c.handle_read(
                now,
                &mut encode(Packet::PubAck(PubAck::new(p.packet_id().unwrap()))),
            );
        }
        assert!(outputs(&mut c).is_empty(), "no events for the application");
        // The response to request 2, at QoS 1: answered, acknowledged, not an event.
        let mut response = mqtt_proto::Publish::new(
            topic.clone(),
            mqtt_proto::QosPid::AtLeastOnce(mqtt_proto::PacketId::new(9).unwrap()),
            "!",
        );
        response.properties.correlation_data = Some(bytes::Bytes::from(vec![2u8]));
        c.handle_read(now, &mut encode(Packet::Publish(response.clone())));
        let out = outputs(&mut c);
        assert!(
            matches!(out.as_slice(), [Output::Reply(8, Reply::Response(Ok(p)))] if &p.payload[..] == b"!"),
            "{out:?}"
        );
        assert!(matches!(decode(&mut c).as_slice(), [Packet::PubAck(_)]));
        // A late duplicate is acknowledged and dropped.
        c.handle_read(now, &mut encode(Packet::Publish(response)));
        assert!(outputs(&mut c).is_empty());
        assert!(matches!(decode(&mut c).as_slice(), [Packet::PubAck(_)]));
        // Request 1 is never answered: it times out at its deadline.
        let deadline = c.poll_timeout().unwrap();
        assert!(deadline <= now + Duration::from_secs(5));
        c.handle_timeout(now + Duration::from_secs(5), 0.0);
        let out = outputs(&mut c);
        assert!(
            matches!(
                out.as_slice(),
                [Output::Reply(
                    7,
                    Reply::Response(Err(Error::RequestTimeout(_)))
                )]
            ),
            "{out:?}"
        );
    }

    #[test]
    fn server_reference_forms() {
        let base = BrokerUrl::parse("wss://h/mqtt").unwrap();
        let url = parse_server_reference("other", &base).unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("other", 443, "/mqtt")
        );
        let url = parse_server_reference("a:1 b:2", &base).unwrap();
        assert_eq!((url.host.as_str(), url.port), ("a", 1));
        let url = parse_server_reference("[::1]:8443", &base).unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 8443));
        for bad in ["", ":1", "a:x", "[::1", "a/b:1", "[::1]x"] {
            assert!(parse_server_reference(bad, &base).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_full_queue_defers_publishes_in_order() {
        let options = ClientOptions::new("mqtt://h").max_inflight(1).max_queued(1);
        let (mut core, now) = connected(options);
        for i in 1..=4 {
            publish(&mut core, now, QoS::AtLeastOnce, Some(i), u64::from(i));
        }
        assert!(!core.accepts_publishes());
        assert_eq!(written(&mut core), [3]);
        for id in 1..=4u8 {
            read(&mut core, now, &[0x40, 0x02, 0x00, id]);
            let out = outputs(&mut core);
            assert!(
                matches!(
                    out.as_slice(),
                    [Output::Reply(w, Reply::Published(Ok(_)))] if *w == u32::from(id)
                ),
                "{out:?}"
            );
            written(&mut core);
        }
        assert!(core.accepts_publishes());
    }

    #[test]
    fn unwritten_qos0_fails_when_the_connection_drops() {
        let (mut core, now) = connected(ClientOptions::new("mqtt://h"));
        publish(&mut core, now, QoS::AtMostOnce, Some(5), 1);
        core.handle_closed(now, None, 0.0);
        let out = outputs(&mut core);
        assert!(
            matches!(
                out.as_slice(),
                [
                    Output::Event(Event::Disconnected { .. }),
                    Output::Reply(5, Reply::Published(Err(Error::NotSent))),
                ]
            ),
            "{out:?}"
        );
    }

    #[test]
    fn abort_stops_at_once() {
        let (mut core, now) = connected(ClientOptions::new("mqtt://h"));
        publish(&mut core, now, QoS::ExactlyOnce, Some(1), 1);
        written(&mut core);
        core.handle_command(now, Command::Abort);
        let out = outputs(&mut core);
        assert!(
            matches!(
                out.as_slice(),
                [
                    Output::Event(Event::Disconnected {
                        reason: ConnectionError::TransportClosed
                    }),
                    Output::Reply(1, Reply::Published(Err(Error::Closed))),
                    Output::Event(Event::Closed),
                ]
            ),
            "{out:?}"
        );
        assert!(core.is_stopped());
    }

    #[test]
    fn reauthentication_answers_every_waiter_or_fails_them_with_the_cause() {
        use bytes::Bytes;
        use mqtt_proto::{Auth, AuthProperties, AuthReasonCode, ConnAck, MqttString, Packet};

        /// A method that needs no data.
        struct Plain;
        impl crate::Authenticator for Plain {
            fn method(&self) -> &str {
                "PLAIN"
            }
            fn start(&mut self) -> Result<Option<Bytes>, crate::AuthFailure> {
                Ok(None)
            }
            fn challenge(&mut self, _: Option<&[u8]>) -> Result<Option<Bytes>, crate::AuthFailure> {
                Ok(None)
            }
        }
        let encode = |packet: Packet| {
            let mut wire = BytesMut::new();
            packet
                .encode(mqtt_proto::ProtocolVersion::V5, &mut wire)
                .unwrap();
            wire
        };
        let method = Some(MqttString::new("PLAIN").unwrap());
        let now = Instant::now();
        let options = ClientOptions::new("mqtt://h")
            .version(mqtt_proto::ProtocolVersion::V5)
            .authenticator(Plain);
        let mut core = core(options);
        core.handle_connected(now);
        assert_eq!(written(&mut core), [1]);
        let mut connack = ConnAck::accepted(false);
        connack.properties.authentication_method = method.clone();
        read(&mut core, now, &encode(Packet::from(connack)));
        outputs(&mut core);

        // Two callers, one re-authentication: AUTH 0x19 once, both answered by its Success.
        core.handle_command(now, Command::Reauthenticate { waiter: 1 });
        core.handle_command(now, Command::Reauthenticate { waiter: 2 });
        assert_eq!(written(&mut core), [15]);
        let success = Packet::Auth(Auth {
            reason_code: AuthReasonCode::Success,
            properties: AuthProperties {
                authentication_method: method,
                ..Default::default()
            }
            .into(),
        });
        read(&mut core, now, &encode(success));
        let out = outputs(&mut core);
        assert!(
            matches!(
                out.as_slice(),
                [
                    Output::Reply(1, Reply::Done(Ok(()))),
                    Output::Reply(2, Reply::Done(Ok(()))),
                    Output::Event(Event::Reauthenticated { .. }),
                ]
            ),
            "{out:?}"
        );

        // The connection ends first: the caller learns why.
        core.handle_command(now, Command::Reauthenticate { waiter: 3 });
        assert_eq!(written(&mut core), [15]);
        core.handle_closed(now, None, 0.5);
        let out = outputs(&mut core);
        assert!(
            out.iter().any(|o| matches!(
                o,
                Output::Reply(
                    3,
                    Reply::Done(Err(Error::ConnectionEnded(
                        ConnectionError::TransportClosed
                    )))
                )
            )),
            "{out:?}"
        );

        // Without an authenticator, at once.
        let (mut core, now) = connected(ClientOptions::new("mqtt://h"));
        core.handle_command(now, Command::Reauthenticate { waiter: 4 });
        assert!(matches!(
            outputs(&mut core).as_slice(),
            [Output::Reply(
                4,
                Reply::Done(Err(Error::Auth(crate::AuthError::NoAuthenticator)))
            )]
        ));
    }
}
