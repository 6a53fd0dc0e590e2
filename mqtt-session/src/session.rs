//! The client session state machine. All transition logic lives here; the tables it drives
//! are in `outbound`, `inbound`, `alias` and `ids`.

use std::collections::VecDeque;
use std::num::NonZeroU16;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqtt_proto::{
    Auth, AuthReasonCode, ConnAck, Connect, ConnectReasonCode, Decoder, Disconnect,
    DisconnectReasonCode, EncodeError, LastWill, MqttString, Packet, PacketId, PacketType,
    PropertyBox, ProtocolVersion, PubAck, PubComp, PubRec, PubRel, PubRelReasonCode, Publish, QoS,
    QosPid, SubAck, SubAckReasonCode, Subscribe, SubscribeProperties, Subscription, TopicFilter,
    UnsubAck, UnsubAckReasonCode, Unsubscribe, UnsubscribeProperties, MAX_PACKET_SIZE,
};
use tracing::{debug, trace, warn};

use crate::alias::{InboundAliases, OutboundAliases};
use crate::auth::{AuthFailure, Authenticator};
use crate::config::Config;
use crate::config::Delivery;
use crate::event::{
    AckError, AckToken, AuthError, ConfigError, ConnectionError, Event, ProtocolViolation,
    PublishError, PublishOutcome, PublishToken, SubscribeError,
};
use crate::expiry::{Expiry, WallClock};
use crate::ids::PacketIds;
use crate::inbound::{AckKind, Inbound, Qos2State};
use crate::message::Message;
use crate::outbound::{Outbound, Queued};
use crate::reader::Reader;
use crate::store::{OutgoingRecord, OutgoingState, QueuedRecord, SessionStore, StoreError};
use crate::subscriptions::{Change, Subscriptions};
use crate::transmit::Transmit;

/// Packets and bytes a session sent and received: whole packets as encoded and decoded
/// (bytes sent count when handed out by [`Session::poll_transmit`] or
/// [`Session::poll_transmit_chunks`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Traffic {
    /// Packets received.
    pub packets_in: u64,
    /// Bytes of the packets received.
    pub bytes_in: u64,
    /// Packets sent.
    pub packets_out: u64,
    /// Bytes sent.
    pub bytes_out: u64,
}

/// Where the current connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// No transport.
    Idle,
    /// CONNECT sent, waiting for CONNACK.
    Connecting,
    /// CONNACK accepted.
    Connected,
    /// The connection ended (DISCONNECT, refusal, violation, timeout); the transport should be
    /// closed once pending bytes are written.
    Closing,
}

/// What the server announced in CONNACK (5.0), with the spec's defaults.
#[derive(Debug, Clone, Copy)]
struct ServerLimits {
    receive_maximum: u16,
    max_packet_size: usize,
    max_qos: QoS,
    retain_available: bool,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            receive_maximum: u16::MAX,
            max_packet_size: MAX_PACKET_SIZE,
            max_qos: QoS::ExactlyOnce,
            retain_available: true,
        }
    }
}

/// How long after a failed store write the session tries the held-back work again.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// Work that a failed store write held back, tried again at `at`: without it, a flow would
/// wait for the next connection (or forever) after a passing store failure.
#[derive(Debug, Default)]
struct StoreRetry {
    at: Option<Instant>,
    /// Outgoing QoS 2 flows whose PUBREC arrived but whose release was not recorded.
    releases: Vec<PacketId>,
    /// Incoming QoS 2 identifiers whose PUBREL arrived but whose removal was not recorded.
    completions: Vec<PacketId>,
    /// Deliveries taken whose acknowledgement (the QoS 2 identifier) was not recorded.
    acks: Vec<AckToken>,
    /// Queued records to forget: their messages left the queue.
    queued: Vec<PublishToken>,
    /// Outgoing records to forget: their flows ended. Their identifiers stay in use until
    /// then, so that no new flow takes the key the removal would delete.
    outgoing: Vec<PacketId>,
    /// Incoming QoS 2 identifiers to forget (the session was not resumed), unless in use
    /// again by then.
    incoming: Vec<PacketId>,
}

impl StoreRetry {
    fn is_empty(&self) -> bool {
        self.releases.is_empty()
            && self.completions.is_empty()
            && self.acks.is_empty()
            && self.queued.is_empty()
            && self.outgoing.is_empty()
            && self.incoming.is_empty()
    }
}

/// State of one network connection; reset by `handle_connected`.
#[derive(Debug)]
struct Connection {
    state: ConnectionState,
    clean_start: bool,
    connect_deadline: Instant,
    keep_alive: Option<Duration>,
    last_sent: Instant,
    /// When the last whole packet arrived (bytes of an unfinished packet do not count).
    last_received: Instant,
    ping_sent: Option<Instant>,
    /// Since when bytes of an unfinished packet are buffered.
    partial_since: Option<Instant>,
    /// Whether the driver was last told not to read (the inbound queue is full): the server
    /// cannot be heard then, so its deadlines wait.
    read_paused: bool,
    /// The Receive Maximum announced in CONNECT (5.0).
    receive_maximum: Option<u16>,
    /// Whether every subscription was known to be held by the server when CONNECT went out.
    subscriptions_confirmed: bool,
    server: ServerLimits,
    inbound_aliases: InboundAliases,
    outbound_aliases: OutboundAliases,
    /// Enhanced authentication, when CONNECT carried an Authentication Method (5.0).
    auth: Option<EnhancedAuth>,
}

/// Enhanced authentication on one connection (5.0 spec 4.12).
#[derive(Debug)]
struct EnhancedAuth {
    /// The Authentication Method of CONNECT, which every AUTH and a successful CONNACK
    /// repeat [MQTT-4.12.0-5 v5.0] [MQTT-4.12.1-1 v5.0].
    method: MqttString,
    /// Whether the session's authenticator answers the server; otherwise the application
    /// does ([`Event::Auth`], [`Session::auth`]).
    by_authenticator: bool,
    /// While a re-authentication by the authenticator is under way: when it is given up.
    reauth_deadline: Option<Instant>,
}

/// A SUBSCRIBE or UNSUBSCRIBE waiting for its answer; resent on a new connection.
#[derive(Debug, Clone)]
struct PendingRequest {
    packet_id: PacketId,
    packet: Packet,
    filters: usize,
    /// A SUBSCRIBE the session sent by itself to rebuild a lost session: its answer goes to
    /// [`Event::Resubscribed`], not [`Event::Subscribed`].
    resubscribe: bool,
}

/// A resubscription under way: the SUBSCRIBE packets not answered yet, and the answers so far.
#[derive(Debug, Default)]
struct Resubscription {
    pending: usize,
    results: Vec<(TopicFilter, Result<QoS, SubAckReasonCode>)>,
}

/// An MQTT client session: bytes and time go in; bytes, events and deadlines come out.
///
/// The session never touches a socket or reads a clock. A driver calls, in a loop:
/// 1. inputs: [`handle_wall_clock`](Self::handle_wall_clock) first, and when the wall clock
///    may have been set (only the deadlines of stored messages need it),
///    [`handle_connected`](Self::handle_connected) when a transport is up,
///    [`handle_read`](Self::handle_read) with received bytes,
///    [`handle_timeout`](Self::handle_timeout) when the deadline passed,
///    [`handle_closed`](Self::handle_closed) when the transport closed;
///    and commands such as [`publish`](Self::publish) whenever the application asks;
/// 2. then outputs, in this order: [`poll_transmit`](Self::poll_transmit) (write those bytes;
///    or [`poll_transmit_chunks`](Self::poll_transmit_chunks), whose buffers leave the payload
///    of a large PUBLISH uncopied, for a vectored write),
///    [`poll_event`](Self::poll_event) until `None`, [`poll_timeout`](Self::poll_timeout)
///    (sleep no later than that), and close the transport when
///    [`wants_close`](Self::wants_close) says so.
///
/// In-flight QoS 1/2 flows, packet identifiers and the queue outlive connections; on a
/// resumed session unacknowledged PUBLISH (with DUP) and PUBREL are resent in their original
/// order.
///
/// ```
/// use std::time::Instant;
/// use bytes::BytesMut;
/// use mqtt_session::{Config, Event, Message, Session};
///
/// let now = Instant::now();
/// let mut session = Session::new(Config::new("client-1").unwrap());
/// session.handle_connected(now);
/// let mut wire = BytesMut::new();
/// session.poll_transmit(&mut wire); // the CONNECT packet
/// assert_eq!(wire[0], 0x10);
///
/// session.handle_read(now, &[0x20, 0x02, 0x00, 0x00]); // CONNACK: accepted
/// assert!(matches!(session.poll_event(), Some(Event::Connected { .. })));
/// let token = session.publish(now, Message::new("hello", "world").unwrap()).unwrap();
/// wire.clear();
/// session.poll_transmit(&mut wire);
/// assert_eq!(wire[0], 0x30); // PUBLISH, QoS 0
/// # let _ = token;
/// ```
pub struct Session {
    config: Config,
    client_id: mqtt_proto::MqttString,
    store: Option<Box<dyn SessionStore>>,
    ids: PacketIds,
    outbound: Outbound,
    inbound: Inbound,
    requests: VecDeque<PendingRequest>,
    events: VecDeque<Event>,
    transmit: Transmit,
    reader: Reader,
    conn: Option<Connection>,
    /// Whether a session exists that a later connection may resume.
    session_started: bool,
    /// Whether store writes were made since the last commit.
    store_dirty: bool,
    /// Whether the last commit failed (reported once).
    store_failing: bool,
    /// Work held back by failed store writes.
    retry: StoreRetry,
    /// The subscriptions the server granted.
    subscriptions: Subscriptions,
    /// A resubscription under way.
    resubscription: Option<Resubscription>,
    /// Packets and bytes in each direction.
    traffic: Traffic,
    /// QoS 0 messages dropped because the inbound queue overflowed.
    inbound_dropped: u64,
    /// QoS 1/2 messages the server sent beyond our Receive Maximum.
    receive_maximum_excess: u64,
    /// The wall clock as last given, for the deadlines of stored messages.
    wall_clock: Option<WallClock>,
    /// Whether messages restored from the store wait for their deadlines to be placed on the
    /// session's clock.
    expiry_unsettled: bool,
    /// The method of enhanced authentication the session runs itself, and its name.
    authenticator: Option<(Box<dyn Authenticator>, MqttString)>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("config", &self.config)
            .field(
                "authenticator",
                &self.authenticator.as_ref().map(|(_, method)| method),
            )
            .field("state", &self.state())
            .field("inflight", &self.outbound.inflight.len())
            .field("queued", &self.outbound.queue.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session whose state lives in memory only.
    pub fn new(config: Config) -> Self {
        let reader = Reader::new(Decoder::new(config.version));
        Self {
            client_id: config.client_id.clone(),
            config,
            store: None,
            ids: PacketIds::new(),
            outbound: Outbound::default(),
            inbound: Inbound::default(),
            requests: VecDeque::new(),
            events: VecDeque::new(),
            transmit: Transmit::new(),
            reader,
            conn: None,
            session_started: false,
            store_dirty: false,
            store_failing: false,
            retry: StoreRetry::default(),
            subscriptions: Subscriptions::default(),
            resubscription: None,
            inbound_dropped: 0,
            receive_maximum_excess: 0,
            traffic: Traffic::default(),
            wall_clock: None,
            expiry_unsettled: false,
            authenticator: None,
        }
    }

    /// A session that writes its state through `store` and resumes what the store holds,
    /// e.g. after a process restart. Resuming needs `clean_start` off in the configuration.
    /// Give it the wall clock ([`handle_wall_clock`](Self::handle_wall_clock)) before any
    /// other input, so that restored messages expire when they should.
    pub fn with_store(
        config: Config,
        mut store: Box<dyn SessionStore>,
    ) -> Result<Self, StoreError> {
        let stored = store.load()?;
        let mut session = Self::new(config);
        session.session_started = !stored.outgoing.is_empty() || !stored.incoming.is_empty();
        for record in &stored.outgoing {
            if let Some(id) = record.packet_id() {
                session.ids.claim(id);
            }
        }
        let stale = session.outbound.restore(stored.outgoing, stored.queued);
        session.expiry_unsettled = true;
        // Queued records whose flow had started are skipped at every load; forgetting them
        // is only tidying, so a store that cannot write now does not keep the session from
        // starting.
        let tidied = stale
            .iter()
            .try_for_each(|token| store.remove_queued(*token))
            .and_then(|()| {
                if stale.is_empty() {
                    Ok(())
                } else {
                    store.commit()
                }
            });
        if let Err(e) = tidied {
            warn!(error = %e, "cannot forget stale queued records");
        }
        for id in stored.incoming {
            session.inbound.qos2.insert(id.get(), Qos2State::Received);
        }
        session.subscriptions.restore(stored.subscriptions);
        for record in stored.set_aside {
            warn!(source = %record.source, reason = %record.reason, "stored record set aside");
            session.events.push_back(Event::RecordSetAside(record));
        }
        session.store = Some(store);
        Ok(session)
    }

    // ----- getters -----

    /// Where the connection stands.
    pub fn state(&self) -> ConnectionState {
        self.conn
            .as_ref()
            .map_or(ConnectionState::Idle, |c| c.state)
    }

    /// Whether CONNACK accepted the current connection.
    pub fn is_connected(&self) -> bool {
        self.state() == ConnectionState::Connected
    }

    /// Whether a re-authentication started by [`reauthenticate`](Self::reauthenticate) waits
    /// for the server's answer.
    pub fn is_reauthenticating(&self) -> bool {
        self.conn
            .as_ref()
            .filter(|c| c.state == ConnectionState::Connected)
            .and_then(|c| c.auth.as_ref())
            .is_some_and(|a| a.reauth_deadline.is_some())
    }

    /// Whether the driver should close the transport once `poll_transmit` is drained.
    pub fn wants_close(&self) -> bool {
        self.state() == ConnectionState::Closing
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The client identifier in use (the server may have assigned it).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Number of QoS 1/2 flows in flight.
    pub fn inflight(&self) -> usize {
        self.outbound.inflight.len()
    }

    /// Number of messages waiting behind the in-flight window.
    pub fn queued(&self) -> usize {
        self.outbound.queue.len()
    }

    /// Gives back the memory a burst left in the session's queues and buffers: each keeps
    /// the capacity of the most it ever held, which an idle connection need not. Only what
    /// is held now stays; call it when the connection has gone quiet (the async client does
    /// at a keep-alive deadline with nothing in flight, queued or unread).
    pub fn release_memory(&mut self) {
        self.outbound.release_memory();
        self.inbound.release_memory();
        self.requests.shrink_to_fit();
        self.events.shrink_to_fit();
        self.transmit.release_memory();
        self.reader.release_memory();
        self.ids.release_memory();
    }

    /// Number of packet identifiers in use.
    pub fn packet_ids_in_use(&self) -> usize {
        self.ids.in_use()
    }

    /// The subscriptions the server granted and that a lost session would be rebuilt with,
    /// in filter order.
    pub fn subscriptions(&self) -> impl Iterator<Item = &crate::store::SubscriptionRecord> {
        self.subscriptions.iter()
    }

    /// Packets and bytes sent and received since the session was created, over every
    /// connection.
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// Messages the application has not taken yet, and their payload bytes.
    pub fn inbound_pending(&self) -> (usize, usize) {
        self.inbound.held()
    }

    /// Sets the user name and password of the next CONNECT (e.g. a refreshed token); the
    /// current connection, if any, is not affected.
    pub fn set_credentials(&mut self, username: Option<MqttString>, password: Option<Bytes>) {
        self.config.username = username;
        self.config.password = password;
    }

    /// Sets the will of the next CONNECT; the current connection, if any, is not affected.
    pub fn set_will(&mut self, will: Option<LastWill>) {
        self.config.will = will;
    }

    /// Runs 5.0 enhanced authentication with `authenticator` from the next CONNECT on (see
    /// [`Authenticator`]): CONNECT carries its method and first data (instead of the
    /// configuration's `authentication_method` and `authentication_data`), and the session
    /// answers every challenge of the server by itself, at connection and on
    /// re-authentication. Fails before 5.0, or if the method's name is not a valid MQTT
    /// string.
    ///
    /// A connection that is up goes on with the method it started with: an authenticator set
    /// while connected should have the same method, or re-authentication is refused.
    pub fn set_authenticator(
        &mut self,
        authenticator: Box<dyn Authenticator>,
    ) -> Result<(), ConfigError> {
        if !self.version().is_v5() {
            return Err(ConfigError::EnhancedAuthNeedsV5);
        }
        let method =
            MqttString::new(authenticator.method()).map_err(ConfigError::InvalidAuthMethod)?;
        self.authenticator = Some((authenticator, method));
        Ok(())
    }

    /// SUBSCRIBE and UNSUBSCRIBE packets waiting for their answer, the session's own
    /// resubscriptions included.
    pub fn requests_pending(&self) -> usize {
        self.requests.len()
    }

    /// Number of incoming QoS 2 identifiers waiting for PUBREL or for the application.
    pub fn incoming_unreleased(&self) -> usize {
        self.inbound.qos2.len()
    }

    fn version(&self) -> ProtocolVersion {
        self.config.version
    }

    /// Messages delivered and not yet taken by the application: how many, and the bytes of
    /// their PUBLISH packets.
    pub fn inbound_held(&self) -> (usize, usize) {
        self.inbound.held()
    }

    /// Whether the driver should read from the transport now, asked at `now`.
    ///
    /// False while the inbound queue is full ([`Config::max_inbound_messages`],
    /// [`Config::max_inbound_bytes`]): the session decodes nothing more until the application
    /// takes messages, and a driver that stops reading lets TCP push back on the server.
    ///
    /// While flows or requests wait for the server's answers, reading goes on, so that an
    /// application awaiting its own requests is never stuck behind its own queue. The queue
    /// then grows past its bounds only by what the server may send unasked: QoS 0 messages
    /// up to twice the bounds (beyond, they are dropped and counted in
    /// [`inbound_dropped`](Self::inbound_dropped), as at-most-once allows), and QoS 1/2
    /// messages up to the server's send quota (the Receive Maximum announced in 5.0, which
    /// is the queue's message bound by default; the server's own in-flight window before),
    /// and never past four times the byte bound.
    ///
    /// The server's deadlines (ping, packet) wait while reading is paused, since it cannot be
    /// heard; asking again after the pause restarts them.
    pub fn wants_read(&mut self, now: Instant) -> bool {
        if !self.reading() {
            return false;
        }
        let read = self.may_decode_next();
        if let Some(conn) = self.conn.as_mut() {
            if conn.read_paused && read {
                // The server may have been talking all along: count from now.
                conn.last_received = now;
                conn.ping_sent = None;
                conn.partial_since = conn.partial_since.map(|_| now);
            }
            conn.read_paused = !read;
        }
        read
    }

    /// QoS 0 messages dropped because the inbound queue was full twice over while the
    /// session read on for answers to its own flows and requests.
    pub fn inbound_dropped(&self) -> u64 {
        self.inbound_dropped
    }

    /// QoS 1/2 messages the server sent beyond the Receive Maximum announced to it (5.0);
    /// with [`Config::strict_receive_maximum`] the first one ends the connection instead.
    pub fn receive_maximum_excess(&self) -> u64 {
        self.receive_maximum_excess
    }

    // ----- inputs -----

    /// A new transport is up: queue CONNECT. Per-connection state starts afresh; in-flight
    /// flows wait for CONNACK to be resent.
    pub fn handle_connected(&mut self, now: Instant) {
        self.settle_expiry(now);
        self.transmit.clear();
        self.inbound.connection_lost();
        // The new connection resends the PUBLISH of flows whose release was not recorded, and
        // the server its PUBREL for identifiers whose removal was not: each answer retries.
        self.retry.releases.clear();
        self.retry.completions.clear();
        let v5 = self.version().is_v5();
        let clean_start = self.config.clean_start
            && (!self.session_started || !self.config.session_outlives_connection());
        if clean_start {
            // [MQTT-3.1.2-4 v5.0] / [MQTT-3.1.2-6 v3.1.1]: a clean start discards the old session.
            self.discard_session(now);
        }
        let mut properties = self.config.properties.clone();
        if v5
            && properties.maximum_packet_size.is_none()
            && self.config.max_packet_size < MAX_PACKET_SIZE
        {
            properties.maximum_packet_size = u32::try_from(self.config.max_packet_size)
                .ok()
                .and_then(std::num::NonZeroU32::new);
        }
        if v5 && properties.receive_maximum.is_none() {
            // The broker may not have more unacknowledged QoS 1/2 messages on their way to us
            // than the queue holds, since they are acknowledged as the application takes them.
            let max = self.config.max_inbound_messages.clamp(1, 65_535);
            properties.receive_maximum = u16::try_from(max).ok().and_then(NonZeroU16::new);
        }
        let receive_maximum = if v5 {
            properties.receive_maximum.map(NonZeroU16::get)
        } else {
            None
        };
        let inbound_alias_max = properties.topic_alias_maximum.unwrap_or(0);
        let mut auth_failure = None;
        if let Some((authenticator, method)) = self.authenticator.as_mut().filter(|_| v5) {
            properties.authentication_method = Some(method.clone());
            match authenticator.start() {
                Ok(data) => properties.authentication_data = data,
                Err(e) => auth_failure = Some(e),
            }
        }
        let auth = properties
            .authentication_method
            .clone()
            .filter(|_| v5)
            .map(|method| EnhancedAuth {
                method,
                by_authenticator: self.authenticator.is_some(),
                reauth_deadline: None,
            });
        let connect = Connect {
            protocol: self.version(),
            clean_start,
            keep_alive: self.config.keep_alive_secs(),
            client_id: self.client_id.clone(),
            will: self.config.will.clone(),
            username: self.config.username.clone(),
            password: self.config.password.clone(),
            properties: properties.into(),
        };
        let decoder =
            Decoder::new(self.version()).with_max_packet_size(self.config.max_packet_size);
        self.reader.reset(decoder);
        // Until CONNACK says what the server has, the subscriptions are not known to be held:
        // a server that starts a new session for this CONNECT (after losing the old one) and a
        // CONNACK or a commit that never arrives would otherwise leave the next connection to
        // find a session present without them. Recorded before CONNECT goes out.
        let subscriptions_confirmed = !self.subscriptions.has_unconfirmed();
        let marked = !self.config.resubscribe || self.unconfirm_subscriptions(now);
        self.conn = Some(Connection {
            state: ConnectionState::Connecting,
            clean_start,
            connect_deadline: now + self.config.connect_timeout,
            keep_alive: self.config.keep_alive_interval(),
            last_sent: now,
            last_received: now,
            ping_sent: None,
            partial_since: None,
            read_paused: false,
            receive_maximum,
            subscriptions_confirmed,
            server: ServerLimits::default(),
            inbound_aliases: InboundAliases::new(inbound_alias_max),
            outbound_aliases: OutboundAliases::new(0),
            auth,
        });
        if let Err(e) = self.config.validate() {
            self.end_connection(ConnectionError::InvalidConfig(e), None);
            return;
        }
        if let Some(e) = auth_failure {
            // Nothing may precede CONNECT [MQTT-3.1.0-1 v3.1.1 v5.0]: the connection ends
            // unannounced.
            warn!(error = %e, "the authenticator cannot start: no CONNECT");
            self.end_connection(ConnectionError::AuthFailed(e), None);
            return;
        }
        if !marked {
            // CONNECT depends on that record: without it, no CONNECT.
            let e = StoreError::Io("cannot record the subscriptions as unconfirmed".into());
            self.end_connection(ConnectionError::StoreFailed(e), None);
            return;
        }
        if !v5 && !clean_start && connect.client_id.is_empty() {
            // [MQTT-3.1.3-7 v3.1.1]: an empty client id needs a clean session before 5.0.
            self.end_connection(
                ConnectionError::InvalidConfig(ConfigError::EmptyClientIdNeedsCleanSession),
                None,
            );
            return;
        }
        debug!(client_id = %self.client_id, clean_start, "CONNECT");
        // [MQTT-3.1.0-1 v3.1.1 v5.0]: CONNECT is the first packet on the connection.
        if let Err(e) = self.send(now, &Packet::from(connect)) {
            self.end_connection(ConnectionError::InvalidConfig(ConfigError::Encode(e)), None);
        }
    }

    /// Bytes arrived from the server. Every complete packet is processed while the inbound
    /// queue has room; the rest waits, as does a partial packet.
    pub fn handle_read(&mut self, now: Instant, data: &[u8]) {
        if !self.reading() {
            return;
        }
        self.reader.extend(data);
        self.process_reads(now);
    }

    /// Like [`handle_read`](Self::handle_read), taking the bytes out of `buf` without copying
    /// them when nothing is buffered already.
    pub fn handle_read_buf(&mut self, now: Instant, buf: &mut BytesMut) {
        if !self.reading() {
            buf.clear();
            return;
        }
        self.reader.extend_from_buf(buf);
        self.process_reads(now);
    }

    /// The buffer a driver may read into directly (reserving the room it reads into, or
    /// appending a buffer of its own), and the most bytes to read into it (`want`); call
    /// [`handle_buffered`](Self::handle_buffered) after.
    ///
    /// A large packet still arriving gets a buffer of exactly its size, and the limit is what
    /// it still lacks: read no more than that, and the packet is never copied.
    pub fn read_buffer(&mut self, want: usize) -> (&mut BytesMut, usize) {
        self.reader.read_buffer(want)
    }

    /// Bytes were appended to [`read_buffer`](Self::read_buffer): process them.
    pub fn handle_buffered(&mut self, now: Instant) {
        if !self.reading() {
            self.reader.clear();
            return;
        }
        self.process_reads(now);
    }

    fn reading(&self) -> bool {
        matches!(
            self.state(),
            ConnectionState::Connecting | ConnectionState::Connected
        )
    }

    /// Whether flows or requests wait for answers from the server, so that reading must go
    /// on even with the inbound queue full.
    fn awaiting_answers(&self) -> bool {
        self.state() == ConnectionState::Connecting
            || !self.outbound.inflight.is_empty()
            || !self.requests.is_empty()
            || self.is_reauthenticating()
    }

    /// Whether the packet at the head of the read buffer may be decoded now (see
    /// [`wants_read`](Self::wants_read)).
    fn may_decode_next(&self) -> bool {
        let (messages, bytes) = self.inbound.held();
        let max_messages = self.config.max_inbound_messages.max(1);
        let max_bytes = self.config.max_inbound_bytes.max(1);
        if messages < max_messages && bytes < max_bytes {
            return true;
        }
        // Full: read on only for answers. QoS 0 messages beyond twice the bounds are then
        // dropped (see `on_publish`); QoS 1/2 messages are taken, as the server may not have
        // more of them unacknowledged than its send quota: our Receive Maximum in 5.0, its
        // in-flight window before (and never more than 65,535, one per packet identifier).
        // A server that ignores its quota is stopped at four times the byte bound.
        self.awaiting_answers() && bytes < 4 * max_bytes
    }

    /// Whether the inbound queue is full twice over (QoS 0 messages are dropped then).
    fn inbound_overflowing(&self) -> bool {
        let (messages, bytes) = self.inbound.held();
        messages >= 2 * self.config.max_inbound_messages.max(1)
            || bytes >= 2 * self.config.max_inbound_bytes.max(1)
    }

    fn process_reads(&mut self, now: Instant) {
        let mut completed = false;
        while self.reading() && self.may_decode_next() {
            match self.reader.next() {
                Ok(Some(frame)) => {
                    completed = true;
                    self.traffic.packets_in += 1;
                    self.traffic.bytes_in += frame.size as u64;
                    if let Some(conn) = self.conn.as_mut() {
                        // Only whole packets show the server is alive: a packet trickled a
                        // byte at a time must not hold the connection open.
                        conn.last_received = now;
                        conn.ping_sent = None;
                    }
                    self.handle_packet(now, frame.packet, frame.size);
                }
                Ok(None) => break,
                Err(e)
                    if e.kind()
                        == (mqtt_proto::DecodeErrorKind::InvalidReasonCode {
                            packet: PacketType::ConnAck,
                            code: 0x01,
                        })
                        && self.version().is_v5()
                        && self.state() == ConnectionState::Connecting =>
                {
                    // A server that knows only 3.1.1 answers a 5.0 CONNECT with its return
                    // code 1, "unacceptable protocol version", which no 5.0 CONNACK carries.
                    // It refused the version; it did not break the protocol.
                    self.end_connection(
                        ConnectionError::Refused {
                            reason: ConnectReasonCode::UnsupportedProtocolVersion,
                            properties: Box::default(),
                        },
                        None,
                    );
                    return;
                }
                Err(e) => {
                    self.violation(ProtocolViolation::Malformed(e));
                    return;
                }
            }
        }
        let partial = self.reader.has_partial();
        if let Some(conn) = self.conn.as_mut() {
            conn.partial_since = match (partial, completed, conn.partial_since) {
                (false, _, _) => None,
                (true, true, _) | (true, false, None) => Some(now),
                (true, false, Some(since)) => Some(since),
            };
        }
    }

    /// The transport closed (by either side or the network).
    pub fn handle_closed(&mut self, now: Instant) {
        self.handle_transport_failed(now, ConnectionError::TransportClosed);
    }

    /// The transport was given up for `reason` (e.g. [`ConnectionError::WriteTimeout`]): the
    /// connection ends at once, as if closed, and `reason` is reported unless a reason was
    /// already given.
    pub fn handle_transport_failed(&mut self, _now: Instant, reason: ConnectionError) {
        let Some(conn) = self.conn.take() else { return };
        if conn.state != ConnectionState::Closing {
            self.events.push_back(Event::Disconnected { reason });
        }
        self.inbound.connection_lost();
        self.reader.clear();
        self.transmit.clear();
    }

    /// The deadline from [`poll_timeout`](Self::poll_timeout) passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.settle_expiry(now);
        if self.retry.at.is_some_and(|at| now >= at) {
            self.retry_store(now);
        }
        let Some(conn) = self.conn.as_ref() else {
            return;
        };
        let packet_timeout = self.config.effective_packet_timeout();
        match conn.state {
            ConnectionState::Connecting if now >= conn.connect_deadline => {
                self.end_connection(ConnectionError::ConnectTimeout, None);
            }
            ConnectionState::Connecting | ConnectionState::Connected
                if !conn.read_paused
                    && conn
                        .partial_since
                        .is_some_and(|since| now >= since + packet_timeout) =>
            {
                warn!("a packet did not complete in time: connection lost");
                self.end_connection(ConnectionError::PacketTimeout(packet_timeout), None);
            }
            ConnectionState::Connected
                if conn
                    .auth
                    .as_ref()
                    .and_then(|a| a.reauth_deadline)
                    .is_some_and(|deadline| now >= deadline) =>
            {
                // A re-authentication that does not complete has failed [MQTT-4.12.1-2 v5.0].
                warn!("no answer to re-authentication: closing the connection");
                let timeout = self.config.connect_timeout;
                self.end_connection(
                    ConnectionError::ReauthenticationTimeout(timeout),
                    Some(DisconnectReasonCode::UnspecifiedError),
                );
            }
            ConnectionState::Connected => {
                let ping_due = conn.ping_sent.map(|sent| sent + self.config.ping_timeout);
                let listening = !conn.read_paused && conn.partial_since.is_none();
                if let Some(due) = ping_due.filter(|_| listening) {
                    if now >= due {
                        warn!("no answer to PINGREQ: connection lost");
                        self.end_connection(ConnectionError::KeepAliveTimeout, None);
                    }
                } else if let Some(ka) = conn.keep_alive {
                    // [MQTT-3.1.2-23 v3.1.1] / [MQTT-3.1.2-20 v5.0]: PINGREQ when idle. Silence
                    // from the server also prompts one, so half-open connections are found
                    // even while we keep sending.
                    let idle_since = if listening {
                        conn.last_sent.min(conn.last_received)
                    } else {
                        conn.last_sent
                    };
                    if now >= idle_since + ka && (ping_due.is_none() || !listening) {
                        trace!("PINGREQ");
                        if self.send(now, &Packet::PingReq).is_ok() {
                            if let Some(conn) = self.conn.as_mut() {
                                conn.ping_sent = conn.ping_sent.or(Some(now));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// The wall clock: `unix_time` is the time since the Unix epoch at `now`.
    ///
    /// The session reads no clock, and the instants it is given mean nothing to another
    /// process. With this it records in the store when each message expires (its 5.0 Message
    /// Expiry Interval, see [`publish`](Self::publish)) as Unix time, so that a restarted
    /// process tells which restored messages expired while it was stopped. Call it when the
    /// driver starts, before any other input, and again whenever the wall clock may have been
    /// set (before each connection, say): deadlines already on the session's clock keep
    /// counting on it; a new reading serves the records written after it.
    ///
    /// Messages loaded by [`with_store`](Self::with_store) are placed on the session's clock at
    /// the first call after loading of this, [`handle_connected`](Self::handle_connected),
    /// [`handle_timeout`](Self::handle_timeout) or [`publish`](Self::publish). A message whose
    /// record holds a deadline expires then if the wall clock was given by that call: at
    /// once if its deadline passed while the process was stopped (it is dropped when the
    /// session next tries to send it, with [`Event::Published`] and
    /// [`PublishOutcome::Expired`], as any expired message). Without a wall clock, or without
    /// a deadline in the record (written with no wall clock given, or by an older version),
    /// the session cannot tell how long the process was stopped: the message keeps the
    /// interval as stored, counted from that call.
    pub fn handle_wall_clock(&mut self, now: Instant, unix_time: Duration) {
        self.wall_clock = Some(WallClock {
            at: now,
            unix: unix_time,
        });
        self.settle_expiry(now);
    }

    /// Places the deadlines of restored messages on the session's clock, once.
    fn settle_expiry(&mut self, now: Instant) {
        if std::mem::take(&mut self.expiry_unsettled) {
            let v5 = self.version().is_v5();
            self.outbound.settle_expiry(now, self.wall_clock, v5);
        }
    }

    // ----- commands -----

    /// Publishes a message. Returns at once with a token; [`Event::Published`] with that
    /// token reports when the flow completed. Messages beyond the in-flight window, or sent
    /// while disconnected, wait in a bounded queue, in order.
    ///
    /// # Message expiry (5.0)
    ///
    /// A message with a Message Expiry Interval counts it down from the `now` it is accepted
    /// at, while it waits in the queue. If the interval has passed when the session would send
    /// it, the message is dropped unsent, its stored record removed, and [`Event::Published`]
    /// reports [`PublishOutcome::Expired`]. Otherwise its PUBLISH carries the interval left,
    /// as [MQTT-3.3.2-6 v5.0] asks of a server that forwards a message: in whole seconds, rounded
    /// down so that the server keeps it no longer than asked, but at least 1, since 0 would
    /// send a message that is still alive as one without a lifetime.
    ///
    /// A message whose PUBLISH was sent is not expired: its delivery has started (the server
    /// itself expires only messages whose onward delivery has not [MQTT-3.3.2-5 v5.0]), a QoS 2
    /// sender must not expire it [MQTT-4.3.3-7 v5.0], and a resumed session resends every
    /// unacknowledged PUBLISH [MQTT-4.4.0-1 v5.0]. The resent PUBLISH carries the interval left,
    /// at least 1 even past the deadline, so that the server, which counts from its own
    /// receipt, holds the message no more than a second longer than asked. A flow whose
    /// server lost the session is queued again as a new message, and expires like one.
    ///
    /// An interval of 0 is sent as given; before 5.0 nothing expires. Across a restart,
    /// deadlines need the wall clock: see [`handle_wall_clock`](Self::handle_wall_clock).
    pub fn publish(
        &mut self,
        now: Instant,
        message: Message,
    ) -> Result<PublishToken, PublishError> {
        let token = self.next_publish_token();
        self.publish_with_token(now, message, token)?;
        Ok(token)
    }

    /// Like [`publish`](Self::publish) with a token the caller chose, e.g. a handle that must
    /// answer at once while the session runs elsewhere. Tokens must be unique within the
    /// session and its store: start from [`next_publish_token`](Self::next_publish_token).
    pub fn publish_with_token(
        &mut self,
        now: Instant,
        mut message: Message,
        token: PublishToken,
    ) -> Result<(), PublishError> {
        self.check_message(&mut message)?;
        if self.outbound.queue.len() >= self.config.max_queued {
            return Err(PublishError::QueueFull);
        }
        self.settle_expiry(now);
        self.outbound.reserve_token(token);
        let expiry = if self.version().is_v5() {
            Expiry::after(now, message.properties.message_expiry_interval)
        } else {
            Expiry::Never
        };
        self.outbound.queue.push_back(Queued {
            token,
            message,
            stored: false,
            replaces: None,
            expiry,
        });
        self.pump(now);
        self.store_queued_tail(token)
    }

    /// Records in the store the message `publish` just queued, if it is QoS 1/2 and still
    /// waits (one that went straight into flight has its outgoing record already). If the
    /// store fails, the message is taken back and the error returned.
    fn store_queued_tail(&mut self, token: PublishToken) -> Result<(), PublishError> {
        let Some(store) = self.store.as_mut() else {
            return Ok(());
        };
        let Some(last) = self.outbound.queue.back_mut() else {
            return Ok(());
        };
        if last.token != token || last.message.qos == QoS::AtMostOnce {
            return Ok(());
        }
        let record = QueuedRecord {
            token,
            message: last.message.clone(),
            expires_at: last.expiry.unix(self.wall_clock),
        };
        self.store_dirty = true;
        match store.put_queued(&record) {
            Ok(()) => {
                last.stored = true;
                Ok(())
            }
            Err(e) => {
                self.outbound.queue.pop_back();
                Err(PublishError::Store(e))
            }
        }
    }

    /// Forgets a queued record once its message left the queue.
    /// Forgets the records of a message that left the queue (its flow started, recorded
    /// first, or it was dropped).
    fn forget_queued(&mut self, now: Instant, queued: &Queued) {
        if queued.stored && !self.write_store(now, |store| store.remove_queued(queued.token)) {
            // A queued record left behind would send the message again after a restart.
            self.retry.queued.push(queued.token);
        }
        if let Some(old) = queued.replaces {
            if self.write_store(now, |store| store.remove_outgoing(old)) {
                self.ids.release(old);
            } else {
                self.retry.outgoing.push(old);
            }
        }
    }

    /// The token the next [`publish`](Self::publish) will return: above every token in use or
    /// restored from the store.
    pub fn next_publish_token(&self) -> PublishToken {
        self.outbound.peek_token()
    }

    /// Checks what can be checked before a message is queued.
    fn check_message(&self, message: &mut Message) -> Result<(), PublishError> {
        if !message.properties.subscription_identifiers.is_empty() {
            // [MQTT-3.3.4-6 v5.0]
            return Err(PublishError::SubscriptionIdentifierInPublish);
        }
        // Sized as the PUBLISH it will become: the message moves into it and back, since a
        // clone would promote its topic and payload to shared storage (an allocation each).
        let probe = into_publish(message.take(), PacketId::new(1));
        let size = probe.encoded_len(self.version());
        *message = into_message(probe);
        let size = size?;
        if let Some(conn) = self
            .conn
            .as_ref()
            .filter(|c| c.state == ConnectionState::Connected)
        {
            check_against_server(&conn.server, message.qos, message.retain, size)?;
        }
        Ok(())
    }

    /// Subscribes to `filters`; [`Event::Subscribed`] with the returned identifier reports the
    /// result per filter.
    pub fn subscribe(
        &mut self,
        now: Instant,
        filters: Vec<Subscription>,
    ) -> Result<PacketId, SubscribeError> {
        self.subscribe_with(now, filters, SubscribeProperties::default())
    }

    /// Subscribes with 5.0 properties (subscription identifier, user properties).
    pub fn subscribe_with(
        &mut self,
        now: Instant,
        filters: Vec<Subscription>,
        properties: SubscribeProperties,
    ) -> Result<PacketId, SubscribeError> {
        if filters.is_empty() {
            return Err(SubscribeError::NoFilters);
        }
        let count = filters.len();
        self.request(now, count, |packet_id| {
            Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                filters,
            })
        })
    }

    /// Unsubscribes from `filters`; [`Event::Unsubscribed`] reports the result.
    pub fn unsubscribe(
        &mut self,
        now: Instant,
        filters: Vec<TopicFilter>,
    ) -> Result<PacketId, SubscribeError> {
        self.unsubscribe_with(now, filters, UnsubscribeProperties::default())
    }

    /// Unsubscribes with 5.0 properties.
    pub fn unsubscribe_with(
        &mut self,
        now: Instant,
        filters: Vec<TopicFilter>,
        properties: UnsubscribeProperties,
    ) -> Result<PacketId, SubscribeError> {
        if filters.is_empty() {
            return Err(SubscribeError::NoFilters);
        }
        let count = filters.len();
        self.request(now, count, |packet_id| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties,
                filters,
            })
        })
    }

    fn request(
        &mut self,
        now: Instant,
        filters: usize,
        build: impl FnOnce(PacketId) -> Packet,
    ) -> Result<PacketId, SubscribeError> {
        let packet_id = self
            .ids
            .allocate()
            .ok_or(SubscribeError::NoPacketIdAvailable)?;
        let packet = build(packet_id);
        let size = match packet.encoded_len(self.version()) {
            Ok(size) => size,
            Err(e) => {
                self.ids.release(packet_id);
                return Err(e.into());
            }
        };
        if let Some(conn) = self
            .conn
            .as_ref()
            .filter(|c| c.state == ConnectionState::Connected)
        {
            if size > conn.server.max_packet_size {
                self.ids.release(packet_id);
                return Err(SubscribeError::PacketTooLarge {
                    size,
                    max: conn.server.max_packet_size,
                });
            }
        }
        if self.is_connected() {
            let _ = self.send(now, &packet);
        }
        self.requests.push_back(PendingRequest {
            packet_id,
            packet,
            filters,
            resubscribe: false,
        });
        Ok(packet_id)
    }

    /// Acknowledges a QoS 1/2 message received in manual-ack mode. Acknowledgements leave in
    /// the order the messages arrived, whatever order the application acknowledges in.
    pub fn ack(&mut self, now: Instant, token: AckToken) -> Result<(), AckError> {
        if !self.config.manual_acks {
            return Err(AckError::UnknownToken);
        }
        self.acknowledge(now, token)
    }

    /// The application took the message delivered with `token` from its queue
    /// ([`Delivery::Reported`]): it leaves the inbound queue and, unless acknowledgements are
    /// manual, its PUBACK (QoS 1) or PUBREC (QoS 2) goes out, after those of earlier
    /// messages. Tokens of messages from an earlier connection only free their room: the
    /// server sends those QoS 1 messages again. Unknown tokens are ignored.
    pub fn handle_taken(&mut self, now: Instant, token: AckToken) {
        self.take_delivery(now, token);
        // Room freed: decode what waits in the read buffer.
        self.process_reads(now);
    }

    fn take_delivery(&mut self, now: Instant, token: AckToken) {
        let Some(held) = self.inbound.take(token) else {
            return;
        };
        if held.ack_on_take {
            self.ack_taken(now, token);
        }
    }

    /// Acknowledges a message the application took (without manual acks); if the store
    /// cannot record it, it is tried again later.
    fn ack_taken(&mut self, now: Instant, token: AckToken) {
        match self.acknowledge(now, token) {
            // Its connection ended: the server will send it again.
            Ok(()) | Err(AckError::UnknownToken) => {}
            Err(AckError::Store(e)) => {
                self.retry.acks.push(token);
                self.store_failed(now, e);
            }
        }
    }

    fn acknowledge(&mut self, now: Instant, token: AckToken) -> Result<(), AckError> {
        let (kind, acked) = self.inbound.mark(token).ok_or(AckError::UnknownToken)?;
        if kind == AckKind::PubRec
            && self.inbound.qos2.get(&acked.get()) == Some(&Qos2State::Delivered)
        {
            // Record the identifier now, even if its PUBREC must wait for earlier ones
            // [MQTT-4.6.0-3 v3.1.1 v5.0]: a restart in between must not deliver the message again.
            if let Err(e) = self.store_incoming(acked) {
                self.inbound.unmark(token);
                return Err(AckError::Store(e));
            }
        }
        while let Some(id) = self.inbound.next_ready(kind) {
            match kind {
                AckKind::PubAck => {
                    // [MQTT-4.3.2-4 v5.0] [MQTT-4.5.0-2 v3.1.1 v5.0]
                    let _ = self.send(now, &Packet::PubAck(PubAck::new(id)));
                }
                AckKind::PubRec => {
                    if self.inbound.qos2.get(&id.get()) != Some(&Qos2State::Delivered) {
                        continue;
                    }
                    self.inbound.qos2.insert(id.get(), Qos2State::Received);
                    // [MQTT-4.3.3-8 v5.0]
                    let _ = self.send(now, &Packet::PubRec(PubRec::new(id)));
                }
            }
        }
        Ok(())
    }

    /// Sends an AUTH packet of enhanced authentication (5.0 with an authentication method).
    pub fn auth(&mut self, now: Instant, auth: Auth) -> Result<(), AuthError> {
        if self.authenticator.is_some() {
            return Err(AuthError::HandledByAuthenticator);
        }
        let method = self.config.properties.authentication_method.as_ref();
        if !self.version().is_v5() || method.is_none() {
            // [MQTT-4.12.0-7 v5.0]
            return Err(AuthError::NotNegotiated);
        }
        if auth.properties.authentication_method.as_ref() != method {
            // [MQTT-4.12.0-5 v5.0] [MQTT-4.12.1-1 v5.0]: every AUTH repeats the method of CONNECT.
            return Err(AuthError::MethodMismatch);
        }
        let allowed = match self.state() {
            // [MQTT-4.12.0-3 v5.0]: while connecting, only "continue authentication".
            ConnectionState::Connecting => {
                auth.reason_code == AuthReasonCode::ContinueAuthentication
            }
            ConnectionState::Connected => auth.reason_code != AuthReasonCode::Success,
            _ => return Err(AuthError::NotConnected),
        };
        if !allowed {
            return Err(AuthError::WrongReasonCode(auth.reason_code));
        }
        let mut packet = Packet::Auth(auth);
        self.fit_diagnostics(&mut packet);
        self.send(now, &packet)?;
        Ok(())
    }

    /// Re-authenticates with the authenticator (5.0 spec 4.12.1): sends AUTH with 0x19
    /// (Re-authenticate), the method the connection started with [MQTT-4.12.1-1 v5.0] and the data
    /// of a new exchange ([`Authenticator::start`]); the session answers the server's
    /// challenges by itself, and [`Event::Reauthenticated`] reports the server's success.
    ///
    /// Other flows go on meanwhile, under the authentication so far (spec 4.12.1). A server
    /// that refuses the new authentication ends the connection with DISCONNECT
    /// ([`ConnectionError::ServerDisconnected`]); an authenticator that refuses the server
    /// ends it with [`ConnectionError::AuthFailed`]; and one that gets no answer within the
    /// connect timeout ([`Config::connect_timeout`]) ends it with
    /// [`ConnectionError::ReauthenticationTimeout`] [MQTT-4.12.1-2 v5.0].
    ///
    /// Fails without an authenticator, without an accepted connection, when the connection
    /// did not start with the authenticator's method [MQTT-4.12.0-7 v5.0], when a
    /// re-authentication is under way already, or when the authenticator cannot start
    /// (nothing is sent then, and the connection goes on).
    pub fn reauthenticate(&mut self, now: Instant) -> Result<(), AuthError> {
        let timeout = self.config.connect_timeout;
        let Some((authenticator, method)) = self.authenticator.as_mut() else {
            return Err(AuthError::NoAuthenticator);
        };
        let conn = self
            .conn
            .as_mut()
            .filter(|c| c.state == ConnectionState::Connected)
            .ok_or(AuthError::NotConnected)?;
        let exchange = conn.auth.as_mut().ok_or(AuthError::NotNegotiated)?;
        if exchange.method != *method {
            // [MQTT-4.12.1-1 v5.0]
            return Err(AuthError::MethodMismatch);
        }
        if exchange.reauth_deadline.is_some() {
            return Err(AuthError::InProgress);
        }
        let data = authenticator.start().map_err(AuthError::Failed)?;
        exchange.by_authenticator = true;
        exchange.reauth_deadline = Some(now + timeout);
        let packet = Packet::Auth(Auth {
            reason_code: AuthReasonCode::ReAuthenticate,
            properties: mqtt_proto::AuthProperties {
                authentication_method: Some(method.clone()),
                authentication_data: data,
                ..Default::default()
            }
            .into(),
        });
        debug!("re-authenticating");
        if let Err(e) = self.send(now, &packet) {
            if let Some(exchange) = self.conn.as_mut().and_then(|c| c.auth.as_mut()) {
                exchange.reauth_deadline = None;
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Ends the connection gracefully: DISCONNECT (normal, will not published) goes out after
    /// everything already queued for transmission, then the transport should be closed.
    pub fn disconnect(&mut self, now: Instant) {
        self.disconnect_with(now, Disconnect::default());
    }

    /// Ends the connection with a 5.0 reason code and properties (e.g.
    /// `DisconnectWithWillMessage`, or a new session expiry interval).
    pub fn disconnect_with(&mut self, now: Instant, disconnect: Disconnect) {
        if !self.reading() {
            return;
        }
        let disconnect = if self.version().is_v5() {
            disconnect
        } else {
            Disconnect::default()
        };
        let mut packet = Packet::Disconnect(disconnect);
        self.fit_diagnostics(&mut packet);
        let _ = self.send(now, &packet);
        // [MQTT-3.14.4-1 v3.1.1 v5.0] [MQTT-3.14.4-2 v3.1.1 v5.0]: nothing more is sent; the
        // transport closes.
        self.close(ConnectionError::LocalDisconnect);
    }

    /// Drops the Reason String, then the User Properties, of a DISCONNECT or AUTH that would
    /// exceed the server's Maximum Packet Size [MQTT-3.14.2-3 v5.0] [MQTT-3.14.2-4 v5.0]
    /// [MQTT-3.15.2-2 v5.0] [MQTT-3.15.2-3 v5.0].
    fn fit_diagnostics(&self, packet: &mut Packet) {
        let Some(max) = self
            .conn
            .as_ref()
            .filter(|c| c.state == ConnectionState::Connected)
            .map(|c| c.server.max_packet_size)
        else {
            return;
        };
        let version = self.version();
        let too_big = |p: &Packet| p.encoded_len(version).is_ok_and(|n| n > max);
        for step in 0..2 {
            if !too_big(packet) {
                return;
            }
            let diagnostics = match packet {
                Packet::Disconnect(d) => d
                    .properties
                    .get_mut()
                    .map(|p| (&mut p.reason_string, &mut p.user_properties)),
                Packet::Auth(a) => a
                    .properties
                    .get_mut()
                    .map(|p| (&mut p.reason_string, &mut p.user_properties)),
                _ => None,
            };
            let Some((reason, users)) = diagnostics else {
                return;
            };
            if step == 0 {
                *reason = None;
            } else {
                users.clear();
            }
        }
    }

    // ----- outputs -----

    /// Appends the bytes to send to `out`; returns how many. Without copying when `out` is
    /// empty and no large payload waits; the payloads that
    /// [`poll_transmit_chunks`](Self::poll_transmit_chunks) would hand out as their own
    /// buffers are copied into `out`.
    ///
    /// With a store, the writes the session made since the last commit are committed first;
    /// if that fails, nothing that depended on them goes out: the connection ends with
    /// [`ConnectionError::StoreFailed`] (the next one sends everything again).
    pub fn poll_transmit(&mut self, out: &mut BytesMut) -> usize {
        let n = self.take_transmit();
        if n > 0 {
            self.transmit.drain_into(out);
        }
        n
    }

    /// Bytes encoded and not yet taken by [`poll_transmit`](Self::poll_transmit) or
    /// [`poll_transmit_chunks`](Self::poll_transmit_chunks).
    pub fn transmit_len(&self) -> usize {
        self.transmit.len()
    }

    /// [`poll_transmit`](Self::poll_transmit) without copying anything: moves the bytes to
    /// send to the end of `out`, where the payload of each PUBLISH of at least
    /// [`SPLIT_PAYLOAD_MIN`](mqtt_proto::SPLIT_PAYLOAD_MIN) bytes is a buffer of its own, the
    /// message's own bytes. Returns how many bytes were added. The store is committed first,
    /// as for `poll_transmit`.
    pub fn poll_transmit_chunks(&mut self, out: &mut Transmit) -> usize {
        let n = self.take_transmit();
        if n > 0 {
            out.append(&mut self.transmit);
        }
        n
    }

    /// Commits the store before bytes go out (dropping them if that fails) and counts them as
    /// sent; returns how many wait in `self.transmit`.
    fn take_transmit(&mut self) -> usize {
        if let Err(e) = self.commit() {
            // Nothing of this batch goes out, not even a DISCONNECT: it may be the first
            // packet of the connection, where only CONNECT may go [MQTT-3.1.0-1 v3.1.1 v5.0].
            self.transmit.clear();
            self.end_connection(ConnectionError::StoreFailed(e), None);
        }
        let n = self.transmit.len();
        self.traffic.bytes_out += n as u64;
        n
    }

    /// Makes the store writes since the last commit durable (see [`SessionStore::commit`]):
    /// every message `publish` accepted before is then kept across a crash.
    /// [`poll_transmit`](Self::poll_transmit) commits by itself; call this to make accepted
    /// messages durable without transmitting. A failure is reported once as
    /// [`Event::StoreFailed`] until a commit succeeds again.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if !self.store_dirty {
            return Ok(());
        }
        let Some(store) = self.store.as_mut() else {
            self.store_dirty = false;
            return Ok(());
        };
        match store.commit() {
            Ok(()) => {
                self.store_dirty = false;
                self.store_failing = false;
                Ok(())
            }
            Err(e) => {
                if !self.store_failing {
                    warn!(error = %e, "session store commit failed");
                    self.events.push_back(Event::StoreFailed(e.clone()));
                }
                self.store_failing = true;
                Err(e)
            }
        }
    }

    /// The next event, if any. With [`Delivery::OnPoll`] (the default), returning a message
    /// hands it to the application: it leaves the inbound queue and, unless acknowledgements
    /// are manual, its PUBACK or PUBREC is queued for transmission.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        if self.config.delivery == Delivery::OnPoll && matches!(event, Event::Message { .. }) {
            if let (Some(token), Some(now)) = (self.inbound.oldest_held(), self.last_input()) {
                let was_full = !self.may_decode_next();
                self.take_delivery(now, token);
                if was_full {
                    // Packets that waited for room are decoded now, not at the next read.
                    self.process_reads(now);
                }
            } else if let Some(token) = self.inbound.oldest_held() {
                // No connection: nothing to acknowledge, only room to free.
                self.inbound.take(token);
            }
        }
        Some(event)
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let connection = self.connection_timeout();
        match (connection, self.retry.at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn connection_timeout(&self) -> Option<Instant> {
        let conn = self.conn.as_ref()?;
        let packet = conn
            .partial_since
            .filter(|_| !conn.read_paused)
            .map(|since| since + self.config.effective_packet_timeout());
        let listening = !conn.read_paused && conn.partial_since.is_none();
        let keep_alive = match conn.state {
            ConnectionState::Connecting => Some(conn.connect_deadline),
            ConnectionState::Connected if listening => match conn.ping_sent {
                Some(sent) => Some(sent + self.config.ping_timeout),
                None => conn
                    .keep_alive
                    .map(|ka| conn.last_sent.min(conn.last_received) + ka),
            },
            ConnectionState::Connected => conn.keep_alive.map(|ka| conn.last_sent + ka),
            _ => return None,
        };
        let reauth = conn.auth.as_ref().and_then(|a| a.reauth_deadline);
        [packet, keep_alive, reauth].into_iter().flatten().min()
    }

    // ----- transitions -----

    fn handle_packet(&mut self, now: Instant, packet: Packet, size: usize) {
        trace!(packet = ?packet.packet_type(), "received");
        let state = self.state();
        let v5 = self.version().is_v5();
        match packet {
            Packet::ConnAck(connack) if state == ConnectionState::Connecting => {
                self.on_connack(now, *connack);
            }
            Packet::ConnAck(_) => self.violation(ProtocolViolation::SecondConnAck),
            Packet::Auth(auth) if v5 => self.on_auth(now, auth),
            Packet::Disconnect(d) if v5 => {
                self.close(ConnectionError::ServerDisconnected {
                    reason: d.reason_code,
                    properties: d.properties,
                });
            }
            other if state == ConnectionState::Connecting => {
                self.violation(ProtocolViolation::UnexpectedPacket(other.packet_type()));
            }
            Packet::Publish(publish) => self.on_publish(now, publish, size),
            Packet::PubAck(ack) => self.on_puback(now, ack),
            Packet::PubRec(rec) => self.on_pubrec(now, rec),
            Packet::PubRel(rel) => self.on_pubrel(now, rel),
            Packet::PubComp(comp) => self.on_pubcomp(now, comp),
            Packet::SubAck(suback) => self.on_suback(now, suback),
            Packet::UnsubAck(unsuback) => self.on_unsuback(now, unsuback),
            Packet::PingResp => {}
            other => self.violation(ProtocolViolation::UnexpectedPacket(other.packet_type())),
        }
    }

    /// An AUTH from the server: a step of enhanced authentication, answered by the
    /// authenticator or handed to the application.
    fn on_auth(&mut self, now: Instant, auth: Auth) {
        let connecting = self.state() == ConnectionState::Connecting;
        let Some(exchange) = self.conn.as_ref().and_then(|c| c.auth.as_ref()) else {
            // [MQTT-4.12.0-6 v5.0]: no Authentication Method in CONNECT, no AUTH from the server.
            return self.violation(ProtocolViolation::UnexpectedAuth(auth.reason_code));
        };
        if auth.properties.authentication_method.as_ref() != Some(&exchange.method) {
            // [MQTT-4.12.0-5 v5.0]
            return self.violation(ProtocolViolation::AuthMethodMismatch);
        }
        let by_authenticator = exchange.by_authenticator;
        let reauthenticating = exchange.reauth_deadline.is_some();
        let method = exchange.method.clone();
        let expected = match auth.reason_code {
            // [MQTT-4.12.0-2 v5.0]: the server asks for more, while the client authenticates.
            AuthReasonCode::ContinueAuthentication => {
                connecting || reauthenticating || !by_authenticator
            }
            // CONNACK, not AUTH, accepts a connection (spec 4.12); Success ends a
            // re-authentication (spec 4.12.1).
            AuthReasonCode::Success => !connecting && (reauthenticating || !by_authenticator),
            // Only a client starts re-authentication (spec 3.15.2.1).
            _ => false,
        };
        if !expected {
            return self.violation(ProtocolViolation::UnexpectedAuth(auth.reason_code));
        }
        if !by_authenticator {
            self.events.push_back(Event::Auth(auth));
            return;
        }
        let Some((authenticator, _)) = self.authenticator.as_mut() else {
            return;
        };
        let data = auth.properties.authentication_data.as_deref();
        if auth.reason_code == AuthReasonCode::Success {
            match authenticator.finish(data) {
                Ok(()) => {
                    if let Some(exchange) = self.conn.as_mut().and_then(|c| c.auth.as_mut()) {
                        exchange.reauth_deadline = None;
                    }
                    debug!("re-authenticated");
                    self.events.push_back(Event::Reauthenticated {
                        properties: auth.properties,
                    });
                }
                Err(e) => self.auth_failed(e),
            }
            return;
        }
        match authenticator.challenge(data) {
            Ok(data) => {
                // [MQTT-4.12.0-3 v5.0] [MQTT-4.12.0-5 v5.0]
                let answer = Auth {
                    reason_code: AuthReasonCode::ContinueAuthentication,
                    properties: mqtt_proto::AuthProperties {
                        authentication_method: Some(method),
                        authentication_data: data,
                        ..Default::default()
                    }
                    .into(),
                };
                if let Err(e) = self.send(now, &Packet::Auth(answer)) {
                    warn!(error = %e, "cannot encode the authenticator's answer");
                    self.auth_failed(AuthFailure::new(format!("cannot encode the answer: {e}")));
                }
            }
            Err(e) => self.auth_failed(e),
        }
    }

    /// Whether the authenticator, if it runs this connection's exchange, accepts the
    /// server's CONNACK with success; if not, the connection is ending.
    fn authenticator_accepts(&mut self, connack: &ConnAck) -> bool {
        let Some(exchange) = self.conn.as_ref().and_then(|c| c.auth.as_ref()) else {
            return true;
        };
        if !exchange.by_authenticator {
            return true;
        }
        if connack.properties.authentication_method.as_ref() != Some(&exchange.method) {
            // [MQTT-4.12.0-5 v5.0]
            self.violation(ProtocolViolation::AuthMethodMismatch);
            return false;
        }
        let Some((authenticator, _)) = self.authenticator.as_mut() else {
            return true;
        };
        match authenticator.finish(connack.properties.authentication_data.as_deref()) {
            Ok(()) => true,
            Err(e) => {
                self.auth_failed(e);
                false
            }
        }
    }

    /// The authenticator gave up: the exchange cannot go on, and neither can the connection
    /// [MQTT-4.12.1-2 v5.0]. DISCONNECT may go before CONNACK [MQTT-3.1.2-30 v5.0]; its code is
    /// 0x83 (Implementation specific error: a valid packet this side cannot accept), as Not
    /// authorized (0x87) is the server's to send and Bad authentication method (0x8C) is no
    /// DISCONNECT code (spec 3.14.2.1).
    fn auth_failed(&mut self, failure: AuthFailure) {
        warn!(error = %failure, "authentication failed: closing the connection");
        self.end_connection(
            ConnectionError::AuthFailed(failure),
            Some(DisconnectReasonCode::ImplementationSpecificError),
        );
    }

    fn on_connack(&mut self, now: Instant, connack: ConnAck) {
        if !connack.reason_code.is_success() {
            // [MQTT-4.13.2-1 v5.0]: a refusal closes the connection.
            self.close(ConnectionError::Refused {
                reason: connack.reason_code,
                properties: Box::new(connack.properties),
            });
            return;
        }
        let clean_start = self.conn.as_ref().is_some_and(|c| c.clean_start);
        if connack.session_present && clean_start {
            // [MQTT-3.2.2-4 v5.0]; a 3.1.1 server breaks [MQTT-3.2.2-1 v3.1.1].
            self.violation(ProtocolViolation::UnexpectedSessionPresent);
            return;
        }
        if !self.authenticator_accepts(&connack) {
            return;
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        conn.state = ConnectionState::Connected;
        let props = &connack.properties;
        if let Some(ka) = props.server_keep_alive {
            // [MQTT-3.1.2-21 v5.0] [MQTT-3.2.2-21 v5.0]: the server's keep alive replaces ours.
            conn.keep_alive = (ka > 0).then(|| Duration::from_secs(u64::from(ka)));
        }
        conn.server = ServerLimits {
            receive_maximum: props.receive_maximum.map_or(u16::MAX, |v| v.get()),
            max_packet_size: props.maximum_packet_size.map_or(MAX_PACKET_SIZE, |v| {
                usize::try_from(v.get()).unwrap_or(MAX_PACKET_SIZE)
            }),
            max_qos: props.maximum_qos.unwrap_or(QoS::ExactlyOnce),
            retain_available: props.retain_available.unwrap_or(true),
        };
        if self.config.outgoing_topic_aliases {
            conn.outbound_aliases = OutboundAliases::new(props.topic_alias_maximum.unwrap_or(0));
        }
        if let Some(id) = &props.assigned_client_identifier {
            self.client_id = id.clone();
        }
        self.session_started = true;
        debug!(
            session_present = connack.session_present,
            "CONNACK accepted"
        );
        self.events.push_back(Event::Connected {
            session_present: connack.session_present,
            properties: Box::new(connack.properties),
        });
        if connack.session_present {
            self.retransmit(now);
            let confirmed = self
                .conn
                .as_ref()
                .is_some_and(|c| c.subscriptions_confirmed);
            if confirmed {
                // The session continues: the server holds what it held.
                let changes = self.subscriptions.confirm_all();
                self.store_subscriptions(now, changes);
            } else {
                // An earlier connection ended before the server's session was known (its
                // CONNACK, its resubscription or their commit never came): the session present
                // now may be one the server started then, without the subscriptions, and
                // without the incoming QoS 2 messages awaiting PUBREL. Those stay until the
                // server shows it knows them (PUBREL, or the PUBLISH again with DUP); the first
                // new message it sends shows it forgot the rest.
                self.start_resubscription(now, true);
                self.inbound.tentative = self.inbound.qos2.keys().copied().collect();
            }
        } else {
            // [MQTT-3.2.2-5 v5.0]: the server has no session, so neither may we.
            self.discard_session(now);
            self.start_resubscription(now, false);
        }
        for request in self.requests.clone() {
            let _ = self.send(now, &request.packet);
        }
        self.pump(now);
    }

    /// The server has no session: subscribe again to everything it had granted (or to what
    /// it is not known to hold), ahead of any request of the application's (queued first,
    /// sent first).
    fn start_resubscription(&mut self, now: Instant, unconfirmed_only: bool) {
        if !self.config.resubscribe || self.subscriptions.is_empty() {
            return;
        }
        // Resubscriptions an earlier connection sent and never saw answered go again as they
        // are (pending requests are resent in order): only what they do not cover is new.
        let mut covered = std::collections::HashSet::new();
        let mut carried = 0;
        for request in self.requests.iter().filter(|r| r.resubscribe) {
            carried += 1;
            if let Packet::Subscribe(subscribe) = &request.packet {
                covered.extend(
                    subscribe
                        .filters
                        .iter()
                        .map(|s| s.filter.as_str().to_owned()),
                );
            }
        }
        let max = self
            .conn
            .as_ref()
            .map_or(MAX_PACKET_SIZE, |c| c.server.max_packet_size);
        let packets =
            self.subscriptions
                .resubscribe_packets(self.version(), max, unconfirmed_only, &covered);
        if packets.is_empty() && carried == 0 {
            return;
        }
        if !unconfirmed_only {
            let changes = self.subscriptions.unconfirm_all();
            self.store_subscriptions(now, changes);
        }
        let mut queued = Vec::new();
        for mut subscribe in packets {
            let Some(packet_id) = self.ids.allocate() else {
                warn!("no packet identifier free to subscribe again");
                break;
            };
            subscribe.packet_id = packet_id;
            let filters = subscribe.filters.len();
            queued.push(PendingRequest {
                packet_id,
                packet: Packet::Subscribe(subscribe),
                filters,
                resubscribe: true,
            });
        }
        debug!(
            subscriptions = self.subscriptions.len(),
            packets = queued.len() + carried,
            "subscribing again: the server's session may lack them"
        );
        let results = self
            .resubscription
            .take()
            .map(|r| r.results)
            .unwrap_or_default();
        self.resubscription = Some(Resubscription {
            pending: queued.len() + carried,
            results,
        });
        // Ahead of the application's requests, behind the carried ones.
        let position = self.requests.iter().take_while(|r| r.resubscribe).count();
        for request in queued.into_iter().rev() {
            self.requests.insert(position, request);
        }
    }

    /// Records every subscription as not known to be held; whether the store took it all. A
    /// subscription whose record failed stays confirmed in memory, so that the next attempt
    /// writes it again.
    fn unconfirm_subscriptions(&mut self, now: Instant) -> bool {
        let mut all = true;
        let changes = self.subscriptions.unconfirm_all();
        if self.store.is_none() {
            return true;
        }
        for change in changes {
            let Change::Put(record) = change else {
                continue;
            };
            if !self.write_store(now, |store| store.put_subscription(&record)) {
                self.subscriptions.confirm(&record.subscription.filter);
                all = false;
            }
        }
        all
    }

    /// Applies changes to the active subscriptions to the store.
    fn store_subscriptions(&mut self, now: Instant, changes: Vec<Change>) {
        for change in changes {
            match change {
                Change::Put(record) => {
                    self.write_store(now, |store| store.put_subscription(&record));
                }
                Change::Remove(filter) => {
                    self.write_store(now, |store| store.remove_subscription(&filter));
                }
            }
        }
    }

    /// Resends unacknowledged PUBLISH (DUP set) and PUBREL in their original order
    /// [MQTT-4.4.0-1 v3.1.1 v5.0] [MQTT-4.6.0-1 v3.1.1 v5.0] [MQTT-3.3.1-1 v3.1.1 v5.0].
    ///
    /// PUBLISH packets beyond the server's send quota wait, in order, for flows to complete
    /// [MQTT-4.9.0-2 v5.0]: a session can hold more flows than the server now allows (it restarted
    /// with a lower Receive Maximum, or this is another broker of a cluster).
    fn retransmit(&mut self, now: Instant) {
        self.outbound.held.clear();
        let window = self.send_window();
        let mut sent = 0;
        for record in self.outbound.in_send_order() {
            let Some(id) = record.packet_id() else {
                continue;
            };
            if record.state == OutgoingState::Published && sent >= window {
                self.outbound.held.push_back(id);
                continue;
            }
            sent += 1;
            self.resend(now, &record);
        }
    }

    /// Resends one flow of an earlier connection: its PUBLISH with DUP set, or its PUBREL.
    fn resend(&mut self, now: Instant, record: &OutgoingRecord) {
        let Some(id) = record.packet_id() else {
            return;
        };
        let packet = match record.state {
            OutgoingState::Published => {
                let mut publish = record.publish.clone();
                publish.dup = true;
                // Sent, so never expired; it carries the interval left (see `publish`).
                if let Some(left) = self.outbound.expiry(id).interval_at(now) {
                    publish.properties.message_expiry_interval = Some(left);
                }
                Packet::Publish(publish)
            }
            OutgoingState::Released => Packet::PubRel(PubRel::new(id)),
        };
        if let Err(e) = self.send(now, &packet) {
            warn!(error = %e, "cannot resend a stored message");
        }
    }

    /// How many QoS 1/2 flows may be open on this connection: the in-flight window, lowered
    /// by the server's Receive Maximum.
    fn send_window(&self) -> usize {
        let server = self
            .conn
            .as_ref()
            .map_or(u16::MAX, |c| c.server.receive_maximum);
        usize::from(self.config.max_inflight.min(server).max(1))
    }

    /// Drops session state the server no longer has. Messages it had not acknowledged are
    /// queued again as new messages, ahead of the queue, so nothing accepted is lost; QoS 2
    /// messages it had taken ownership of (PUBREC received) are reported complete.
    fn discard_session(&mut self, now: Instant) {
        // Queued again as new messages, in publish order: a flow whose record stood in for a
        // requeued message may have been started after a later one (see `Queued::replaces`).
        let mut records = self.outbound.in_send_order();
        records.sort_by_key(|r| r.token);
        let expiries: Vec<Expiry> = records
            .iter()
            .map(|r| {
                r.packet_id()
                    .map_or(Expiry::Never, |id| self.outbound.expiry(id))
            })
            .collect();
        self.outbound.clear_inflight();
        for (record, expiry) in records.into_iter().zip(expiries).rev() {
            let id = record.packet_id();
            if let Some(id) = id {
                self.ids.release(id);
            }
            match record.state {
                OutgoingState::Released => self.events.push_back(Event::Published {
                    token: record.token,
                    outcome: PublishOutcome::Completed {
                        reason: PubRelReasonCode::PacketIdentifierNotFound,
                        properties: PropertyBox::EMPTY,
                    },
                }),
                OutgoingState::Published => {
                    let p = record.publish;
                    let mut message = Message::with_topic(p.topic, p.payload).qos(p.qos_pid.qos());
                    message.retain = p.retain;
                    message.properties = p.properties;
                    let record = QueuedRecord {
                        token: record.token,
                        message,
                        expires_at: expiry.unix(self.wall_clock),
                    };
                    // Recorded as queued before its flow is forgotten: a crash in between
                    // leaves both, and loading keeps the flow. If the queued record cannot be
                    // written, the flow's record keeps standing for the message until its
                    // next flow is recorded.
                    let stored = self.write_store(now, |store| store.put_queued(&record));
                    let replaces = if stored { None } else { id };
                    self.outbound.queue.push_front(Queued {
                        token: record.token,
                        message: record.message,
                        stored,
                        replaces,
                        expiry,
                    });
                    if let Some(id) = replaces {
                        self.ids.claim(id);
                        continue;
                    }
                }
            }
            if let Some(id) = id {
                if !self.write_store(now, |store| store.remove_outgoing(id)) {
                    self.ids.claim(id);
                    self.retry.outgoing.push(id);
                }
            }
        }
        // The queue itself is already in the store: only the flows are rewritten, so a lost
        // session costs a write per flow, not per queued message.
        let incoming: Vec<u16> = self.inbound.qos2.keys().copied().collect();
        self.inbound.clear();
        for id in incoming.into_iter().filter_map(PacketId::new) {
            if !self.write_store(now, |store| store.remove_incoming(id)) {
                // Left behind, it would make a new message with this identifier look like a
                // resend after a restart.
                self.retry.incoming.push(id);
            }
        }
    }

    /// Runs a write on the store, if there is one; a failure is reported as
    /// [`Event::StoreFailed`] and schedules a retry of held-back work. Whether the store holds
    /// the result.
    fn write_store(
        &mut self,
        now: Instant,
        write: impl FnOnce(&mut dyn SessionStore) -> Result<(), StoreError>,
    ) -> bool {
        let Some(store) = self.store.as_mut() else {
            return false;
        };
        self.store_dirty = true;
        match write(store.as_mut()) {
            Ok(()) => true,
            Err(e) => {
                self.store_failed(now, e);
                false
            }
        }
    }

    /// A store write failed: report it, and try the held-back work again a little later.
    fn store_failed(&mut self, now: Instant, e: StoreError) {
        warn!(error = %e, "session store write failed");
        self.events.push_back(Event::StoreFailed(e));
        self.retry.at.get_or_insert(now + STORE_RETRY);
    }

    /// Tries again what failed store writes held back, in the order the protocol needs.
    fn retry_store(&mut self, now: Instant) {
        self.retry.at = None;
        for token in std::mem::take(&mut self.retry.queued) {
            if !self.write_store(now, |store| store.remove_queued(token)) {
                self.retry.queued.push(token);
            }
        }
        for id in std::mem::take(&mut self.retry.outgoing) {
            if self.write_store(now, |store| store.remove_outgoing(id)) {
                self.ids.release(id);
            } else {
                self.retry.outgoing.push(id);
            }
        }
        for id in std::mem::take(&mut self.retry.incoming) {
            if self.inbound.qos2.contains_key(&id.get()) {
                continue;
            }
            if !self.write_store(now, |store| store.remove_incoming(id)) {
                self.retry.incoming.push(id);
            }
        }
        for id in std::mem::take(&mut self.retry.releases) {
            if self.flow_state(id) == Some((QoS::ExactlyOnce, OutgoingState::Published)) {
                self.release_flow(now, id);
            }
        }
        for id in std::mem::take(&mut self.retry.completions) {
            if self.inbound.qos2.get(&id.get()) == Some(&Qos2State::Received) {
                self.on_pubrel(now, PubRel::new(id));
            }
        }
        for token in std::mem::take(&mut self.retry.acks) {
            self.ack_taken(now, token);
        }
        self.pump(now);
        if !self.retry.is_empty() {
            self.retry.at.get_or_insert(now + STORE_RETRY);
        }
    }

    /// Moves queued messages into the in-flight window and sends them, in order.
    fn pump(&mut self, now: Instant) {
        self.settle_expiry(now);
        // Flows held back at reconnect go first, as quota frees.
        while let Some(&id) = self.outbound.held.front() {
            if !self.is_connected() || self.outbound.open() >= self.send_window() {
                return;
            }
            self.outbound.held.pop_front();
            if let Some(record) = self.outbound.get(id).cloned() {
                self.resend(now, &record);
            }
        }
        loop {
            let Some(conn) = self.conn.as_ref() else {
                return;
            };
            if conn.state != ConnectionState::Connected {
                return;
            }
            let server = conn.server;
            let Some(front) = self.outbound.queue.front() else {
                return;
            };
            let qos = front.message.qos;
            let token = front.token;
            let expiry = front.expiry;
            if expiry.has_passed(now) {
                // Not worth sending any more (see `publish`); nothing of it stays.
                if let Some(expired) = self.outbound.queue.pop_front() {
                    debug!(token = expired.token.0, "message expired in the queue");
                    self.forget_queued(now, &expired);
                }
                self.events.push_back(Event::Published {
                    token,
                    outcome: PublishOutcome::Expired,
                });
                continue;
            }
            if qos > QoS::AtMostOnce {
                // [MQTT-4.9.0-2 v5.0]: no new QoS 1/2 PUBLISH while the send quota is used up.
                if self.outbound.inflight.len() >= self.send_window() {
                    return;
                }
            }
            let id = if qos > QoS::AtMostOnce {
                // A message whose old flow's record still stands for it in the store starts
                // its new flow under that identifier: the new record replaces the old one in
                // one write, so no crash can leave the message stored twice, or not at all.
                match front.replaces.or_else(|| self.ids.allocate()) {
                    Some(id) => Some(id),
                    // All identifiers in use: wait for one to be freed.
                    None => return,
                }
            } else {
                None
            };
            // The message leaves the queue by value: its topic and payload move into the
            // PUBLISH (and the in-flight record) instead of being shared, so that sending it
            // costs no allocation and no reference count.
            let Some(mut queued) = self.outbound.queue.pop_front() else {
                return;
            };
            let mut publish = into_publish(queued.message.take(), id);
            if let Some(left) = expiry.interval_at(now) {
                publish.properties.message_expiry_interval = Some(left);
            }
            let checked = publish
                .encoded_len(self.version())
                .map_err(PublishError::from)
                .and_then(|size| {
                    check_against_server(&server, publish.qos(), publish.retain, size)
                });
            if let Err(e) = checked {
                // An identifier that stands for the message in the store is released when its
                // record goes (`forget_queued`).
                if let Some(id) = id.filter(|_| queued.replaces.is_none()) {
                    self.ids.release(id);
                }
                self.forget_queued(now, &queued);
                self.events.push_back(Event::Published {
                    token,
                    outcome: PublishOutcome::Dropped(e),
                });
                continue;
            }
            match id {
                None => {
                    self.send_publish(now, &publish);
                    self.events.push_back(Event::Published {
                        token,
                        outcome: PublishOutcome::Sent,
                    });
                }
                Some(id) => {
                    let expires_at = expiry.unix(self.wall_clock);
                    let record = self.outbound.start(token, publish, expires_at);
                    if let Some(store) = self.store.as_mut() {
                        self.store_dirty = true;
                        if let Err(e) = store.put_outgoing(&record) {
                            // The message stays queued; `retry_store` pumps again.
                            if queued.replaces.is_none() {
                                self.ids.release(id);
                            }
                            queued.message = into_message(record.publish);
                            self.outbound.queue.push_front(queued);
                            self.store_failed(now, e);
                            return;
                        }
                    }
                    // Its record was just replaced by the new flow's.
                    queued.replaces = None;
                    self.forget_queued(now, &queued);
                    self.send_publish(now, &record.publish);
                    self.outbound.insert(id, record, expiry);
                }
            }
        }
    }

    /// Sends a PUBLISH from where it is kept; copied only to give it a topic alias.
    fn send_publish(&mut self, now: Instant, publish: &Publish) {
        let sent = match self.conn.as_mut() {
            Some(conn) if conn.outbound_aliases.is_active() => {
                let mut aliased = publish.clone();
                conn.outbound_aliases.apply(&mut aliased);
                self.send_outgoing(now, Outgoing::Publish(&aliased))
            }
            _ => self.send_outgoing(now, Outgoing::Publish(publish)),
        };
        if let Err(e) = sent {
            warn!(error = %e, "cannot encode PUBLISH");
        }
    }

    fn on_publish(&mut self, now: Instant, mut publish: Publish, size: usize) {
        if let Some(conn) = self.conn.as_mut() {
            if let Err(v) = conn.inbound_aliases.resolve(&mut publish) {
                self.violation(v);
                return;
            }
        }
        if !publish.dup && publish.qos_pid != QosPid::AtMostOnce {
            self.forget_tentative(now, publish.packet_id());
        }
        match publish.qos_pid {
            QosPid::AtMostOnce => {
                if self.inbound_overflowing() {
                    // At most once allows it, and the alternative is to stop reading while
                    // the application awaits answers that only reading can bring.
                    if self.inbound_dropped == 0 {
                        warn!("inbound queue full twice over: dropping QoS 0 messages");
                    }
                    self.inbound_dropped += 1;
                    return;
                }
                self.deliver(publish, size, None);
            }
            QosPid::AtLeastOnce(id) => {
                if self.inbound.puback_pending(id) {
                    // Sent again while the first copy waits for the application: that copy
                    // is queued already, and its PUBACK answers both.
                    return;
                }
                if self.receive_maximum_exceeded() && self.config.strict_receive_maximum {
                    self.violation(ProtocolViolation::ReceiveMaximumExceeded);
                    return;
                }
                self.deliver(publish, size, Some((AckKind::PubAck, id)));
            }
            QosPid::ExactlyOnce(id) => match self.inbound.qos2.get(&id.get()) {
                // [MQTT-4.3.3-10 v5.0] / [MQTT-4.3.3-2 v3.1.1]: a resend before PUBREL is
                // answered but never delivered twice.
                Some(Qos2State::Received) => {
                    self.inbound.tentative.remove(&id.get());
                    let _ = self.send(now, &Packet::PubRec(PubRec::new(id)));
                }
                // Still with the application: its PUBREC goes out once taken.
                Some(Qos2State::Delivered) => {
                    self.inbound.tentative.remove(&id.get());
                }
                None => {
                    if self.receive_maximum_exceeded() && self.config.strict_receive_maximum {
                        self.violation(ProtocolViolation::ReceiveMaximumExceeded);
                        return;
                    }
                    self.inbound.qos2.insert(id.get(), Qos2State::Delivered);
                    self.deliver(publish, size, Some((AckKind::PubRec, id)));
                }
            },
        }
    }

    /// A new message (not a resend) arrived: the server has resent what it still knew of, so
    /// incoming QoS 2 identifiers it did not mention are ones it forgot (see
    /// [`on_connack`](Self::on_connack)); so is one it uses again for a new message.
    fn forget_tentative(&mut self, now: Instant, reused: Option<PacketId>) {
        if self.inbound.tentative.is_empty() {
            return;
        }
        if let Some(id) = reused {
            if self.inbound.tentative.contains(&id.get()) {
                debug!(%id, "the server reuses an identifier it forgot: a new message");
            }
        }
        for id in std::mem::take(&mut self.inbound.tentative)
            .into_iter()
            .filter_map(PacketId::new)
        {
            match self.inbound.qos2.remove(&id.get()) {
                Some(Qos2State::Received) => {
                    if !self.write_store(now, |store| store.remove_incoming(id))
                        && self.store.is_some()
                    {
                        self.retry.incoming.push(id);
                    }
                }
                // With the application: its acknowledgement will find nothing to send.
                Some(Qos2State::Delivered) | None => {}
            }
        }
    }

    /// Queues a message for the application; its acknowledgement, if any, waits until the
    /// application takes it (or acknowledges it, with manual acks).
    fn deliver(&mut self, publish: Publish, size: usize, ack: Option<(AckKind, PacketId)>) {
        let token = self.inbound.new_token();
        if let Some((kind, id)) = ack {
            self.inbound.expect_ack(token, kind, id);
        }
        let manual = self.config.manual_acks;
        self.inbound.hold(token, size, ack.is_some() && !manual);
        let shown = self.config.delivery == Delivery::Reported || (manual && ack.is_some());
        self.events.push_back(Event::Message {
            publish,
            ack: shown.then_some(token),
        });
    }

    /// The time of the latest input on the connection, for work done in an output call.
    fn last_input(&self) -> Option<Instant> {
        self.conn.as_ref().map(|c| c.last_received.max(c.last_sent))
    }

    /// Whether one more unacknowledged message would exceed the Receive Maximum we
    /// announced; counts the excess (see [`receive_maximum_excess`](Self::receive_maximum_excess)).
    fn receive_maximum_exceeded(&mut self) -> bool {
        if !self.version().is_v5() {
            return false;
        }
        let exceeded = match self.conn.as_ref().and_then(|c| c.receive_maximum) {
            Some(max) => self.inbound.unreleased() >= usize::from(max),
            None => false,
        };
        if exceeded {
            if self.receive_maximum_excess == 0 {
                warn!("the server exceeds the Receive Maximum it was given");
            }
            self.receive_maximum_excess += 1;
        }
        exceeded
    }

    fn store_incoming(&mut self, id: PacketId) -> Result<(), StoreError> {
        match self.store.as_mut() {
            Some(store) => {
                self.store_dirty = true;
                store.put_incoming(id)
            }
            None => Ok(()),
        }
    }

    fn on_pubrel(&mut self, now: Instant, rel: PubRel) {
        let id = rel.packet_id;
        self.inbound.tentative.remove(&id.get());
        let mut comp = PubComp::new(id);
        if self.inbound.qos2.remove(&id.get()).is_some() {
            if let Some(store) = self.store.as_mut() {
                self.store_dirty = true;
                if let Err(e) = store.remove_incoming(id) {
                    // Keep the identifier rather than risk dropping a later message with it;
                    // the PUBCOMP waits for a retry (or the server's next PUBREL).
                    self.inbound.qos2.insert(id.get(), Qos2State::Received);
                    self.retry.completions.push(id);
                    self.store_failed(now, e);
                    return;
                }
            }
        } else if self.version().is_v5() {
            comp.reason_code = PubRelReasonCode::PacketIdentifierNotFound;
        }
        // [MQTT-4.3.3-11 v5.0]
        let _ = self.send(now, &Packet::PubComp(comp));
    }

    /// Ends an outgoing flow: frees its identifier, forgets it in the store, reports it.
    fn finish_flow(&mut self, now: Instant, id: PacketId, outcome: PublishOutcome) {
        let Some(record) = self.outbound.remove(id) else {
            return;
        };
        // [MQTT-2.3.1-3 v3.1.1]: the identifier is free once the acknowledgement is processed, and
        // once its record is gone: a new flow under it must not lose its record to a retry.
        if self.write_store(now, |store| store.remove_outgoing(id)) || self.store.is_none() {
            self.ids.release(id);
        } else {
            self.retry.outgoing.push(id);
        }
        self.events.push_back(Event::Published {
            token: record.token,
            outcome,
        });
        self.pump(now);
    }

    fn flow_state(&self, id: PacketId) -> Option<(QoS, OutgoingState)> {
        self.outbound.get(id).map(|r| (r.publish.qos(), r.state))
    }

    fn unknown_id(&mut self, packet: PacketType, id: PacketId) {
        self.violation(ProtocolViolation::UnknownPacketId {
            packet,
            packet_id: id.get(),
        });
    }

    fn on_puback(&mut self, now: Instant, ack: PubAck) {
        let id = ack.packet_id;
        if self.flow_state(id) != Some((QoS::AtLeastOnce, OutgoingState::Published)) {
            return self.unknown_id(PacketType::PubAck, id);
        }
        let properties = ack.properties;
        let outcome = if ack.reason_code.is_success() {
            PublishOutcome::Acknowledged {
                reason: ack.reason_code,
                properties,
            }
        } else {
            // [MQTT-4.4.0-2 v5.0]
            PublishOutcome::Rejected {
                reason: ack.reason_code,
                properties,
            }
        };
        self.finish_flow(now, id, outcome);
    }

    fn on_pubrec(&mut self, now: Instant, rec: PubRec) {
        let id = rec.packet_id;
        match self.flow_state(id) {
            Some((QoS::ExactlyOnce, OutgoingState::Published)) => {
                if !rec.reason_code.is_success() {
                    // [MQTT-4.4.0-2 v5.0] [MQTT-4.3.3-4 v5.0]: a failed PUBREC ends the flow.
                    let outcome = PublishOutcome::Rejected {
                        reason: rec.reason_code,
                        properties: rec.properties,
                    };
                    return self.finish_flow(now, id, outcome);
                }
                self.release_flow(now, id);
            }
            // A repeated PUBREC: repeat the PUBREL.
            Some((QoS::ExactlyOnce, OutgoingState::Released)) => {
                let _ = self.send(now, &Packet::PubRel(PubRel::new(id)));
            }
            _ => self.unknown_id(PacketType::PubRec, id),
        }
    }

    /// Records that a QoS 2 flow's PUBREC arrived, then sends PUBREL. If the store cannot
    /// record it, the PUBREL waits for a retry (a restart meanwhile resends the PUBLISH, which
    /// restarts the handshake safely).
    fn release_flow(&mut self, now: Instant, id: PacketId) {
        let Some(record) = self.outbound.get_mut(id) else {
            return;
        };
        record.state = OutgoingState::Released;
        let failed = match self.store.as_mut() {
            Some(store) => {
                self.store_dirty = true;
                store.put_outgoing(record).err()
            }
            None => None,
        };
        if let Some(e) = failed {
            record.state = OutgoingState::Published;
            self.retry.releases.push(id);
            self.store_failed(now, e);
            return;
        }
        // [MQTT-4.3.3-4 v5.0] / [MQTT-4.3.3-1 v3.1.1]
        let _ = self.send(now, &Packet::PubRel(PubRel::new(id)));
    }

    fn on_pubcomp(&mut self, now: Instant, comp: PubComp) {
        let id = comp.packet_id;
        if self.flow_state(id) != Some((QoS::ExactlyOnce, OutgoingState::Released)) {
            return self.unknown_id(PacketType::PubComp, id);
        }
        let outcome = PublishOutcome::Completed {
            reason: comp.reason_code,
            properties: comp.properties,
        };
        self.finish_flow(now, id, outcome);
    }

    fn take_request(&mut self, packet: PacketType, id: PacketId) -> Option<PendingRequest> {
        let position = self
            .requests
            .iter()
            .position(|r| r.packet_id == id && r.packet.packet_type() == packet)?;
        self.requests.remove(position)
    }

    fn on_suback(&mut self, now: Instant, suback: SubAck) {
        let id = suback.packet_id;
        let Some(request) = self.take_request(PacketType::Subscribe, id) else {
            return self.unknown_id(PacketType::SubAck, id);
        };
        self.ids.release(id);
        if suback.reason_codes.len() != request.filters {
            return self.violation(ProtocolViolation::WrongResultCount {
                packet: PacketType::SubAck,
                expected: request.filters,
                got: suback.reason_codes.len(),
            });
        }
        let results: Vec<_> = suback
            .reason_codes
            .iter()
            .map(|code| code.granted_qos().ok_or(*code))
            .collect();
        if let Packet::Subscribe(subscribe) = &request.packet {
            let changes = if request.resubscribe {
                self.subscriptions
                    .resubscribed(&subscribe.filters, &results)
            } else {
                self.subscriptions
                    .subscribed(&subscribe.filters, &subscribe.properties, &results)
            };
            self.store_subscriptions(now, changes);
            if request.resubscribe {
                return self.resubscribed(&subscribe.filters, results);
            }
        }
        self.events.push_back(Event::Subscribed {
            packet_id: id,
            results,
            properties: suback.properties,
        });
    }

    /// One answer to a resubscription; the last one reports them all.
    fn resubscribed(
        &mut self,
        filters: &[Subscription],
        results: Vec<Result<QoS, SubAckReasonCode>>,
    ) {
        let Some(resubscription) = self.resubscription.as_mut() else {
            return;
        };
        resubscription
            .results
            .extend(filters.iter().map(|s| s.filter.clone()).zip(results));
        resubscription.pending = resubscription.pending.saturating_sub(1);
        if resubscription.pending == 0 {
            if let Some(done) = self.resubscription.take() {
                self.events.push_back(Event::Resubscribed {
                    results: done.results,
                });
            }
        }
    }

    fn on_unsuback(&mut self, now: Instant, unsuback: UnsubAck) {
        let id = unsuback.packet_id;
        let Some(request) = self.take_request(PacketType::Unsubscribe, id) else {
            return self.unknown_id(PacketType::UnsubAck, id);
        };
        self.ids.release(id);
        let results = if self.version().is_v5() {
            if unsuback.reason_codes.len() != request.filters {
                return self.violation(ProtocolViolation::WrongResultCount {
                    packet: PacketType::UnsubAck,
                    expected: request.filters,
                    got: unsuback.reason_codes.len(),
                });
            }
            unsuback.reason_codes
        } else {
            vec![UnsubAckReasonCode::Success; request.filters]
        };
        if let Packet::Unsubscribe(unsubscribe) = &request.packet {
            let changes = self
                .subscriptions
                .unsubscribed(&unsubscribe.filters, &results);
            self.store_subscriptions(now, changes);
        }
        self.events.push_back(Event::Unsubscribed {
            packet_id: id,
            results,
            properties: unsuback.properties,
        });
    }

    /// Encodes a packet for transmission on the current connection and notes the time.
    fn send(&mut self, now: Instant, packet: &Packet) -> Result<(), EncodeError> {
        self.send_outgoing(now, Outgoing::Packet(packet))
    }

    /// [`send`](Self::send) for a packet given by reference to its part.
    fn send_outgoing(&mut self, now: Instant, packet: Outgoing<'_>) -> Result<(), EncodeError> {
        if self.encode(packet)? {
            if let Some(conn) = self.conn.as_mut() {
                conn.last_sent = now;
            }
        }
        Ok(())
    }

    /// Encodes a packet for transmission unless the connection is gone or closing; returns
    /// whether it was queued.
    fn encode(&mut self, packet: Outgoing<'_>) -> Result<bool, EncodeError> {
        match self.conn.as_ref() {
            Some(conn)
                if conn.state == ConnectionState::Connecting
                    && conn.auth.is_some()
                    && !matches!(
                        packet.packet_type(),
                        PacketType::Connect | PacketType::Auth | PacketType::Disconnect
                    ) =>
            {
                // [MQTT-3.1.2-30 v5.0]: with an Authentication Method, only AUTH and DISCONNECT
                // until CONNACK. What a connection that is not up could send is an
                // acknowledgement the application gave late (PUBREC) or a store retry
                // (PUBREL): both go again after CONNACK, as answer to the server's resend or
                // as a resend.
                trace!(packet = ?packet.packet_type(), "held back until CONNACK");
                Ok(false)
            }
            Some(conn) if conn.state != ConnectionState::Closing => {
                match packet {
                    Outgoing::Packet(packet) => self.transmit.encode(self.config.version, packet),
                    Outgoing::Publish(publish) => {
                        self.transmit.encode_publish(self.config.version, publish)
                    }
                }?;
                self.traffic.packets_out += 1;
                trace!(packet = ?packet.packet_type(), "sent");
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The server broke the protocol: tell it why (5.0) and close [MQTT-4.8.0-1 v3.1.1].
    fn violation(&mut self, violation: ProtocolViolation) {
        warn!(%violation, "closing the connection");
        let reason = violation.disconnect_reason();
        self.end_connection(ConnectionError::ProtocolViolation(violation), Some(reason));
    }

    fn end_connection(&mut self, error: ConnectionError, disconnect: Option<DisconnectReasonCode>) {
        if let Some(reason) = disconnect.filter(|_| self.version().is_v5()) {
            let _ = self.encode(Outgoing::Packet(&Packet::Disconnect(Disconnect::new(
                reason,
            ))));
        }
        self.close(error);
    }

    /// Marks the connection closing and reports why, once.
    fn close(&mut self, reason: ConnectionError) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        if conn.state == ConnectionState::Closing {
            return;
        }
        conn.state = ConnectionState::Closing;
        self.inbound.connection_lost();
        self.reader.clear();
        self.events.push_back(Event::Disconnected { reason });
    }
}

/// Checks a message against the limits the server announced in CONNACK.
/// A packet to encode, given by reference: a PUBLISH in flight is sent from its record.
#[derive(Clone, Copy)]
enum Outgoing<'a> {
    Packet(&'a Packet),
    Publish(&'a Publish),
}

impl Outgoing<'_> {
    fn packet_type(self) -> PacketType {
        match self {
            Self::Packet(packet) => packet.packet_type(),
            Self::Publish(_) => PacketType::Publish,
        }
    }
}

/// The PUBLISH of `message` under `id` (none for QoS 0), built by moving its parts. The
/// application's Topic Alias is dropped: the session manages aliases itself.
fn into_publish(message: Message, id: Option<PacketId>) -> Publish {
    let qos_pid = match (message.qos, id) {
        (QoS::AtLeastOnce, Some(id)) => QosPid::AtLeastOnce(id),
        (QoS::ExactlyOnce, Some(id)) => QosPid::ExactlyOnce(id),
        _ => QosPid::AtMostOnce,
    };
    let mut properties = message.properties;
    if let Some(set) = properties.get_mut() {
        set.topic_alias = None;
    }
    Publish {
        dup: false,
        qos_pid,
        retain: message.retain,
        topic: message.topic,
        properties,
        payload: message.payload,
    }
}

/// The message a PUBLISH carries, by moving its parts; the inverse of [`into_publish`].
fn into_message(publish: Publish) -> Message {
    Message {
        qos: publish.qos(),
        topic: publish.topic,
        payload: publish.payload,
        retain: publish.retain,
        properties: publish.properties,
    }
}

fn check_against_server(
    server: &ServerLimits,
    qos: QoS,
    retain: bool,
    size: usize,
) -> Result<(), PublishError> {
    if qos > server.max_qos {
        // [MQTT-3.2.2-11 v5.0]
        return Err(PublishError::QoSNotSupported {
            requested: qos,
            max: server.max_qos,
        });
    }
    if retain && !server.retain_available {
        // [MQTT-3.2.2-14 v5.0]
        return Err(PublishError::RetainNotSupported);
    }
    if size > server.max_packet_size {
        // [MQTT-3.2.2-15 v5.0]
        return Err(PublishError::PacketTooLarge {
            size,
            max: server.max_packet_size,
        });
    }
    Ok(())
}
