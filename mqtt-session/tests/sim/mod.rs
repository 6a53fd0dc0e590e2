//! A client [`Session`] against a model broker over a network with latency, in virtual time,
//! with injected faults: connection cuts at a byte offset, spontaneous resends by the broker,
//! and restarts of the client process from its [`FileStore`]. In some 5.0 runs the broker
//! requires enhanced authentication, which the client's authenticator answers, and the
//! application re-authenticates from time to time.
//!
//! The driver is the only clock: it jumps to the next thing due (a chunk of bytes arriving, a
//! close arriving, a timer of either side, a reconnect) and handles it. Every message payload
//! starts with a unique 8-byte id, so the [`Ledger`] can follow each message from `publish`
//! through the broker back to the application.
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod broker;
pub mod faulty;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::num::NonZeroU16;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqtt_proto::{
    Decoder, Packet, PacketId, ProtocolVersion, PubRelReasonCode, QoS, QosPid, Subscription,
    TopicFilter,
};
use mqtt_session::store::SessionStore;
use mqtt_session::{
    AckError, AckToken, AuthError, Config, ConnectionError, ConnectionState, Event, FileStore,
    Message, PublishError, PublishOutcome, Session,
};

use broker::{Broker, BrokerConfig, OpenFlow};
use faulty::{FaultyStore, SharedFaults};

use crate::toy_auth::{ToyClient, ToyLog};

/// The topics messages are published to.
pub const TOPICS: [&str; 3] = ["t/0", "t/1", "t/2"];
/// The filters the client may subscribe to.
pub const FILTERS: [&str; 5] = ["t/#", "t/0", "t/+", "#", "t/2"];

/// A payload carrying `msg_id`, padded to a length that varies with it.
pub fn payload(msg_id: u64) -> Bytes {
    let mut p = msg_id.to_be_bytes().to_vec();
    p.resize(8 + (msg_id as usize * 7) % 41, 0xA5);
    Bytes::from(p)
}

/// The id a payload written by [`payload`] carries.
pub fn payload_id(payload: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(payload.get(..8)?.try_into().ok()?))
}

pub fn qos(n: u8) -> QoS {
    QoS::from_u8(n % 3).expect("0..=2")
}

/// Everything a simulated run is made of, besides its operations.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub version: ProtocolVersion,
    pub latency_up: Duration,
    pub latency_down: Duration,
    pub reconnect_delay: Duration,
    pub keep_alive_secs: u16,
    pub max_inflight: u16,
    pub max_queued: usize,
    /// The client's Receive Maximum (5.0).
    pub client_receive_maximum: Option<u16>,
    /// The client's Topic Alias Maximum (5.0).
    pub client_topic_alias_maximum: u16,
    /// Session expiry interval (5.0).
    pub session_expiry: u32,
    /// Clean Session / Clean Start on the first connection.
    pub clean_start: bool,
    /// Whether the application acknowledges each QoS 1/2 message itself.
    pub manual_acks: bool,
    pub broker: BrokerConfig,
}

impl SimConfig {
    /// A persistent session with small limits and a little latency.
    pub fn new(version: ProtocolVersion) -> Self {
        Self {
            version,
            latency_up: Duration::from_millis(20),
            latency_down: Duration::from_millis(30),
            reconnect_delay: Duration::from_millis(100),
            keep_alive_secs: 30,
            max_inflight: 4,
            max_queued: 16,
            client_receive_maximum: None,
            client_topic_alias_maximum: 0,
            session_expiry: 3600,
            clean_start: false,
            manual_acks: false,
            broker: BrokerConfig::default(),
        }
    }

    pub fn client_config(&self) -> Config {
        let mut config = Config::new("sim-client")
            .expect("valid client id")
            .version(self.version)
            .clean_start(self.clean_start)
            .keep_alive(Duration::from_secs(u64::from(self.keep_alive_secs)))
            .max_inflight(self.max_inflight)
            .max_queued(self.max_queued)
            .manual_acks(self.manual_acks);
        // The model broker keeps to the quota it is given: hold it to it.
        config.strict_receive_maximum = true;
        if self.version.is_v5() {
            config = config.session_expiry(self.session_expiry);
            config.properties.receive_maximum =
                self.client_receive_maximum.and_then(NonZeroU16::new);
            if self.client_topic_alias_maximum > 0 {
                config.properties.topic_alias_maximum = Some(self.client_topic_alias_maximum);
            }
        }
        config
    }

    /// Whether the broker requires enhanced authentication, and the client runs it.
    pub fn enhanced_auth(&self) -> bool {
        self.version.is_v5() && self.broker.auth_rounds.is_some()
    }

    /// Whether the session outlives each connection (always resumed after the first).
    pub fn session_survives(&self) -> bool {
        !self.clean_start && (!self.version.is_v5() || self.session_expiry > 0)
    }

    /// The most QoS 1/2 messages the broker has in flight towards the client.
    pub fn broker_window(&self) -> usize {
        let client = match self.version {
            ProtocolVersion::V5 => self.client_receive_maximum.unwrap_or(u16::MAX),
            _ => u16::MAX,
        };
        usize::from(self.broker.max_outbound.min(client).max(1))
    }
}

/// Fault and traffic counters.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub runs: u64,
    pub ops: u64,
    pub cuts: u64,
    pub cuts_losing_bytes: u64,
    pub cuts_mid_packet: u64,
    pub resends: u64,
    pub restarts: u64,
    pub reconnects: u64,
    pub published: [u64; 3],
    pub refused_queue_full: u64,
    pub lost_in_restart: u64,
    pub queued_restored: u64,
    pub delivered: u64,
    pub delivered_twice_or_more: u64,
    pub app_acks: u64,
    pub tolerated_violations: u64,
    pub stale_acks: u64,
    pub manual_ack_runs: u64,
    pub clean_runs: u64,
    pub broker_resent_on_reconnect: u64,
    pub stray_acks: u64,
    pub aliased_publishes: u64,
    pub pings: u64,
    pub virtual_secs: u64,
    pub events: u64,
    pub refused_store: u64,
    pub lost_uncommitted: u64,
    pub deliveries_undone: u64,
    pub resurrected: u64,
    pub broker_sessions_lost: u64,
    pub resubscriptions: u64,
    pub store_writes_failed: u64,
    pub store_commits_failed: u64,
    pub store_commits_torn: u64,
    /// Runs with enhanced authentication.
    pub auth_runs: u64,
    /// Connections authenticated, and challenges answered.
    pub authentications: u64,
    pub challenges: u64,
    /// Re-authentications started, completed, and ended by a cut or restart.
    pub reauths_started: u64,
    pub reauths_completed: u64,
    pub reauths_cut: u64,
    /// Flows that completed while a re-authentication was under way.
    pub completed_during_reauth: u64,
}

impl Stats {
    pub fn add(&mut self, other: &Stats) {
        self.runs += other.runs;
        self.ops += other.ops;
        self.cuts += other.cuts;
        self.cuts_losing_bytes += other.cuts_losing_bytes;
        self.cuts_mid_packet += other.cuts_mid_packet;
        self.resends += other.resends;
        self.restarts += other.restarts;
        self.reconnects += other.reconnects;
        for (a, b) in self.published.iter_mut().zip(other.published) {
            *a += b;
        }
        self.refused_queue_full += other.refused_queue_full;
        self.lost_in_restart += other.lost_in_restart;
        self.queued_restored += other.queued_restored;
        self.delivered += other.delivered;
        self.delivered_twice_or_more += other.delivered_twice_or_more;
        self.app_acks += other.app_acks;
        self.tolerated_violations += other.tolerated_violations;
        self.stale_acks += other.stale_acks;
        self.manual_ack_runs += other.manual_ack_runs;
        self.clean_runs += other.clean_runs;
        self.broker_resent_on_reconnect += other.broker_resent_on_reconnect;
        self.stray_acks += other.stray_acks;
        self.aliased_publishes += other.aliased_publishes;
        self.pings += other.pings;
        self.virtual_secs += other.virtual_secs;
        self.events += other.events;
        self.refused_store += other.refused_store;
        self.lost_uncommitted += other.lost_uncommitted;
        self.deliveries_undone += other.deliveries_undone;
        self.resurrected += other.resurrected;
        self.broker_sessions_lost += other.broker_sessions_lost;
        self.resubscriptions += other.resubscriptions;
        self.store_writes_failed += other.store_writes_failed;
        self.store_commits_failed += other.store_commits_failed;
        self.store_commits_torn += other.store_commits_torn;
        self.auth_runs += other.auth_runs;
        self.authentications += other.authentications;
        self.challenges += other.challenges;
        self.reauths_started += other.reauths_started;
        self.reauths_completed += other.reauths_completed;
        self.reauths_cut += other.reauths_cut;
        self.completed_during_reauth += other.completed_during_reauth;
    }
}

/// One message the application published.
#[derive(Debug, Clone)]
pub struct MsgRecord {
    pub topic: String,
    pub qos: QoS,
    /// `Published` events for it.
    pub outcomes: Vec<PublishOutcome>,
    /// A QoS 0 message still waiting in the queue when the process restarted: never sent.
    pub lost_in_restart: bool,
    /// QoS of each delivery to the application.
    pub deliveries: Vec<QoS>,
    /// Deliveries the application has made its own: at once without manual acks, else when
    /// `ack` accepted its token.
    pub committed: usize,
    /// For QoS 2 deliveries made its own: how many store commits had succeeded then, and the
    /// packet identifier. The acknowledgement (recording the identifier, then PUBREC) takes
    /// effect with the next commit; a crash in it may undo the delivery (the identifier did
    /// not reach the disk) and the broker then sends the message again.
    pub committed_at: Vec<(u64, u16)>,
    /// How many store commits had succeeded when `publish` accepted it: the message is durable
    /// once one more has.
    pub accepted_at: u64,
    /// A QoS 1/2 message lost in a restart before any commit made it durable: allowed, and
    /// nothing may have come of it.
    pub lost_uncommitted: bool,
    /// A flow that completed, then came back from the store after a crash (its removal was
    /// not committed): it completes a second time.
    pub resurrected: bool,
}

/// What the application saw.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Indexed by message id.
    pub msgs: Vec<MsgRecord>,
    /// Tokens of the current process whose `Published` event is due, and their messages.
    pub pending: HashMap<u64, u64>,
    /// SUBSCRIBE requests of the current process awaiting SUBACK: id and requested QoS.
    pub requests: BTreeMap<u16, Vec<QoS>>,
    /// Messages in the order of their first delivery.
    pub first_deliveries: Vec<u64>,
    /// Deliveries waiting for the application's `ack` (manual acks), in arrival order.
    pub unacked: Vec<(AckToken, u64, QoS, u16)>,
    /// QoS 2 deliveries with manual acks in arrival order, and whether `ack` took each. The
    /// session sends PUBREC in arrival order only [MQTT-4.6.0-3 v3.1.1 v5.0], but records the
    /// identifier as soon as `ack` takes it.
    pub qos2_acks: VecDeque<(AckToken, u64, bool)>,
    pub connected: Vec<bool>,
    pub disconnects: Vec<ConnectionError>,
    pub failures: Vec<String>,
    /// Store commits that had succeeded when the current event was handled.
    pub commits_ok: u64,
    /// Store faults fired: the store's failures are expected.
    pub store_faulted: bool,
    /// Store failures reported while faults were injected.
    pub store_failures: u64,
    /// Resubscriptions reported.
    pub resubscriptions: u64,
    /// A re-authentication the application started waits for its end.
    pub reauth_pending: bool,
    /// Re-authentications reported complete, and ended with their connection.
    pub reauths_completed: u64,
    pub reauths_cut: u64,
    /// Flows that completed while a re-authentication was under way.
    pub completed_during_reauth: u64,
}

impl Ledger {
    fn fail(&mut self, what: String) {
        self.failures.push(what);
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Connected {
                session_present, ..
            } => {
                if !session_present {
                    // The session's acknowledgement queues are gone with it.
                    self.qos2_acks.clear();
                }
                self.connected.push(session_present);
            }
            Event::Message { publish, ack } => {
                let Some(id) = payload_id(&publish.payload) else {
                    return self.fail(format!("message with a foreign payload: {publish:?}"));
                };
                let Some(msg) = self.msgs.get_mut(id as usize) else {
                    return self.fail(format!("message {id} was never published"));
                };
                if msg.topic != publish.topic.as_str() {
                    let topic = msg.topic.clone();
                    return self.fail(format!(
                        "message {id} arrived on {} instead of {topic}",
                        publish.topic.as_str()
                    ));
                }
                if msg.deliveries.is_empty() {
                    self.first_deliveries.push(id);
                }
                msg.deliveries.push(publish.qos());
                match ack {
                    Some(token) => {
                        let pid = publish.packet_id().map_or(0, PacketId::get);
                        self.unacked.push((token, id, publish.qos(), pid));
                        if publish.qos() == QoS::ExactlyOnce {
                            self.qos2_acks.push_back((token, id, false));
                        }
                    }
                    None => {
                        msg.committed += 1;
                        if let QosPid::ExactlyOnce(pid) = publish.qos_pid {
                            msg.committed_at.push((self.commits_ok, pid.get()));
                        }
                    }
                }
            }
            Event::Published { token, outcome } => {
                let Some(id) = self.pending.remove(&token.0) else {
                    return self.fail(format!(
                        "Published for token {} that has no flow pending: {outcome:?}",
                        token.0
                    ));
                };
                self.msgs[id as usize].outcomes.push(outcome);
                self.completed_during_reauth += u64::from(self.reauth_pending);
            }
            Event::Subscribed {
                packet_id, results, ..
            } => match self.requests.remove(&packet_id.get()) {
                Some(asked) => {
                    let granted: Vec<_> = asked.into_iter().map(Ok).collect();
                    if results != granted {
                        self.fail(format!(
                            "SUBACK {packet_id}: {results:?}, asked {granted:?}"
                        ));
                    }
                }
                None => self.fail(format!("Subscribed for unknown request {packet_id}")),
            },
            Event::Reauthenticated { .. } => {
                if !std::mem::take(&mut self.reauth_pending) {
                    self.fail("Reauthenticated without a re-authentication under way".into());
                }
                self.reauths_completed += 1;
            }
            Event::Disconnected { reason } => {
                if std::mem::take(&mut self.reauth_pending) {
                    self.reauths_cut += 1;
                }
                // Only the network ends connections in a correct run, and a store that fails.
                let store = matches!(reason, ConnectionError::StoreFailed(_));
                if reason != ConnectionError::TransportClosed && !(store && self.store_faulted) {
                    self.fail(format!("the client ended a connection: {reason}"));
                }
                self.disconnects.push(reason);
            }
            Event::Resubscribed { results } => {
                self.resubscriptions += 1;
                // The model broker grants every subscription.
                if let Some((filter, refused)) = results.iter().find(|(_, r)| r.is_err()) {
                    self.fail(format!("resubscription to {filter:?} refused: {refused:?}"));
                }
            }
            Event::StoreFailed(_) if self.store_faulted => self.store_failures += 1,
            Event::StoreFailed(e) => self.fail(format!("store failed: {e}")),
            other => self.fail(format!("unexpected event {other:?}")),
        }
    }
}

/// Which way a packet went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ClientToBroker,
    BrokerToClient,
}

/// Decodes a byte stream into packets as it grows, for logs and observation.
#[derive(Debug)]
struct Tap {
    decoder: Decoder,
    buf: BytesMut,
    /// Bytes at the start of `buf` the client already has (see `Sim::feed_client`).
    fed: usize,
}

impl Tap {
    fn new(version: ProtocolVersion) -> Self {
        Self {
            decoder: Decoder::new(version),
            buf: BytesMut::new(),
            fed: 0,
        }
    }

    fn feed(&mut self, data: &[u8]) -> Vec<Packet> {
        self.buf.extend_from_slice(data);
        let mut packets = Vec::new();
        while let Ok(Some(p)) = self.decoder.decode(&mut self.buf) {
            packets.push(p);
        }
        packets
    }
}

/// One transport connection: bytes in flight both ways, and closes on their way.
#[derive(Debug)]
struct Link {
    number: u64,
    up: VecDeque<(Instant, Bytes)>,
    down: VecDeque<(Instant, Bytes)>,
    /// The client closed: the broker sees it at this time, after the bytes before it.
    up_close: Option<Instant>,
    /// The broker closed: the client sees it at this time.
    down_close: Option<Instant>,
    client_open: bool,
    broker_open: bool,
    /// What the client has read, decoded, to tell the broker which flows the client saw end.
    client_reads: Tap,
    client_writes: Tap,
    broker_writes: Tap,
}

impl Link {
    fn in_flight(queue: &VecDeque<(Instant, Bytes)>) -> usize {
        queue.iter().map(|(_, b)| b.len()).sum()
    }

    /// Removes the first `n` bytes in flight on `queue`, concatenated, and drops the rest.
    fn take_prefix(queue: &mut VecDeque<(Instant, Bytes)>, mut n: usize) -> BytesMut {
        let mut out = BytesMut::new();
        for (_, chunk) in queue.drain(..) {
            let take = n.min(chunk.len());
            out.extend_from_slice(&chunk[..take]);
            n -= take;
        }
        out
    }
}

/// Something the driver does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Up,
    UpClose,
    Down,
    DownClose,
    ClientTimer,
    BrokerTimer,
    Reconnect,
}

/// The simulation: client, broker, network and the ledger of what happened.
pub struct Sim {
    pub cfg: SimConfig,
    /// Faults to inject into the client's store.
    pub faults: SharedFaults,
    pub start: Instant,
    pub now: Instant,
    dir: tempfile::TempDir,
    pub client: Session,
    pub broker: Broker,
    link: Option<Link>,
    links: u64,
    reconnect_at: Option<Instant>,
    pub ledger: Ledger,
    pub stats: Stats,
    /// Every whole packet written by either side, with the connection number, while
    /// `keep_log` is on.
    pub log: Vec<(Dir, u64, Packet)>,
    pub keep_log: bool,
    /// Recent lines of trace, for failure reports.
    trace: VecDeque<String>,
    /// Events handled at the current instant without time moving, to catch busy loops.
    spins: u32,
    /// A cut waiting for a connection with bytes in flight (offsets as for `Op::Cut`).
    armed_cut: Option<(usize, usize)>,
    /// A broker resend waiting for a message in flight.
    armed_resend: Option<usize>,
    /// The broker resent a PUBLISH unprompted on the latest connection.
    resent_on_link: bool,
    /// What the client's authenticator did, over every process.
    pub auth_log: Arc<Mutex<ToyLog>>,
}

const TRACE_LINES: usize = 400;

impl Sim {
    /// A simulation whose client connects at once.
    pub fn new(cfg: SimConfig) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let faults = SharedFaults::default();
        let auth_log = Arc::default();
        let client = Self::open_client(&cfg, &dir, &faults, &auth_log);
        let now = Instant::now();
        let broker = Broker::new(cfg.broker.clone());
        Self {
            cfg,
            faults,
            start: now,
            now,
            dir,
            client,
            broker,
            link: None,
            links: 0,
            reconnect_at: Some(now),
            ledger: Ledger::default(),
            stats: Stats::default(),
            log: Vec::new(),
            keep_log: true,
            trace: VecDeque::new(),
            spins: 0,
            armed_cut: None,
            armed_resend: None,
            resent_on_link: false,
            auth_log,
        }
    }

    fn open_store(dir: &tempfile::TempDir) -> FileStore {
        FileStore::open(dir.path())
            .expect("open the store")
            .sync(false)
    }

    fn open_client(
        cfg: &SimConfig,
        dir: &tempfile::TempDir,
        faults: &SharedFaults,
        auth_log: &Arc<Mutex<ToyLog>>,
    ) -> Session {
        let store = FaultyStore::new(
            Self::open_store(dir),
            dir.path().to_path_buf(),
            faults.clone(),
        );
        let mut session =
            Session::with_store(cfg.client_config(), Box::new(store)).expect("load the store");
        if cfg.enhanced_auth() {
            let mut authenticator = ToyClient::new(broker::AUTH_KEY);
            authenticator.log = auth_log.clone();
            session
                .set_authenticator(Box::new(authenticator))
                .expect("5.0 takes an authenticator");
        }
        session
    }

    // ----- store faults -----

    /// Makes the store's next write fail.
    pub fn fail_next_store_write(&mut self) {
        faulty::lock(&self.faults).fail_write = true;
        self.note("FAULT: the next store write fails".into());
    }

    /// Makes the store's next commit fail (its records stay pending).
    pub fn fail_next_commit(&mut self) {
        faulty::lock(&self.faults).fail_commit = true;
        self.note("FAULT: the next store commit fails".into());
    }

    /// Makes the process die in its next commit, with `keep` of the appended bytes on disk.
    pub fn tear_next_commit(&mut self, keep: usize) {
        faulty::lock(&self.faults).tear_commit = Some(keep);
        self.note(format!(
            "FAULT: the next store commit is torn after {keep} bytes"
        ));
    }

    /// Whether the process died in a commit; it then restarts at once.
    fn crash_pending(&mut self) -> bool {
        if !faulty::lock(&self.faults).crashed {
            return false;
        }
        self.note("the process died in a commit".into());
        self.restart(0, 0);
        true
    }

    /// Copies what the store's faults did into the ledger before it handles events.
    fn sync_fault_state(&mut self) {
        let faults = faulty::lock(&self.faults);
        self.ledger.commits_ok = faults.commits_ok;
        self.ledger.store_faulted |=
            faults.writes_failed + faults.commits_failed + faults.commits_torn > 0;
    }

    // ----- tracing -----

    fn ms(&self) -> u128 {
        (self.now - self.start).as_millis()
    }

    fn note(&mut self, line: String) {
        if self.trace.len() == TRACE_LINES {
            self.trace.pop_front();
        }
        let line = format!("{:>9} ms  {line}", self.ms());
        self.trace.push_back(line);
    }

    /// The recent trace, for a failure message.
    pub fn trace(&self) -> String {
        let mut out = String::new();
        for line in &self.trace {
            let _ = writeln!(out, "{line}");
        }
        out
    }

    fn describe(p: &Packet) -> String {
        match p {
            Packet::Publish(p) => format!(
                "PUBLISH {:?} id={:?} dup={} topic={:?} alias={:?} msg={:?}",
                p.qos(),
                p.packet_id().map(PacketId::get),
                p.dup,
                p.topic.as_str(),
                p.properties.topic_alias,
                payload_id(&p.payload)
            ),
            Packet::PubAck(a) => format!("PUBACK {}", a.packet_id),
            Packet::PubRec(a) => format!("PUBREC {}", a.packet_id),
            Packet::PubRel(a) => format!("PUBREL {}", a.packet_id),
            Packet::PubComp(a) => format!("PUBCOMP {} {:?}", a.packet_id, a.reason_code),
            Packet::Connect(c) => format!("CONNECT clean={}", c.clean_start),
            Packet::ConnAck(c) => format!("CONNACK present={}", c.session_present),
            Packet::Subscribe(s) => format!("SUBSCRIBE {}", s.packet_id),
            Packet::SubAck(s) => format!("SUBACK {}", s.packet_id),
            Packet::Auth(a) => format!("AUTH {:?}", a.reason_code),
            other => format!("{:?}", other.packet_type()),
        }
    }

    // ----- application commands -----

    /// Publishes the next message; returns its id if `publish` accepted it.
    pub fn publish(&mut self, topic: &str, qos: QoS) -> Option<u64> {
        self.crash_pending();
        let id = self.ledger.msgs.len() as u64;
        let message = Message::new(topic, payload(id))
            .expect("valid topic")
            .qos(qos);
        let queued = self.client.queued();
        match self.client.publish(self.now, message) {
            Ok(token) => {
                self.ledger.msgs.push(MsgRecord {
                    topic: topic.to_string(),
                    qos,
                    outcomes: Vec::new(),
                    lost_in_restart: false,
                    deliveries: Vec::new(),
                    committed: 0,
                    committed_at: Vec::new(),
                    accepted_at: faulty::lock(&self.faults).commits_ok,
                    lost_uncommitted: false,
                    resurrected: false,
                });
                self.ledger.pending.insert(token.0, id);
                self.stats.published[qos as usize] += 1;
                self.note(format!(
                    "app publish msg={id} {qos:?} {topic} -> token {}",
                    token.0
                ));
                self.flush();
                Some(id)
            }
            Err(PublishError::QueueFull) => {
                if queued < self.cfg.max_queued {
                    self.ledger.fail(format!(
                        "QueueFull with {queued} queued of {}",
                        self.cfg.max_queued
                    ));
                }
                self.stats.refused_queue_full += 1;
                None
            }
            Err(PublishError::Store(_)) if faulty::lock(&self.faults).writes_failed > 0 => {
                self.stats.refused_store += 1;
                None
            }
            Err(e) => {
                self.ledger.fail(format!("publish refused: {e}"));
                None
            }
        }
    }

    /// Subscribes to one filter.
    pub fn subscribe(&mut self, filter: &str, qos: QoS) {
        self.crash_pending();
        let sub = Subscription::new(TopicFilter::new(filter).expect("valid filter"), qos);
        match self.client.subscribe(self.now, vec![sub]) {
            Ok(id) => {
                self.ledger.requests.insert(id.get(), vec![qos]);
                self.note(format!("app subscribe {filter} {qos:?} -> id {id}"));
                self.flush();
            }
            Err(e) => self.ledger.fail(format!("subscribe refused: {e}")),
        }
    }

    /// Re-authenticates, as the application may at any time: refused only when there is
    /// nothing to re-authenticate (no enhanced authentication, no accepted connection) or one
    /// is under way.
    pub fn reauthenticate(&mut self) {
        self.crash_pending();
        match self.client.reauthenticate(self.now) {
            Ok(()) => {
                self.stats.reauths_started += 1;
                self.ledger.reauth_pending = true;
                self.note("app re-authenticates".into());
                self.flush();
            }
            Err(AuthError::InProgress) if self.ledger.reauth_pending => {}
            Err(AuthError::NotConnected) if !self.client.is_connected() => {}
            Err(AuthError::NoAuthenticator) if !self.cfg.enhanced_auth() => {}
            Err(e) => self.ledger.fail(format!("reauthenticate refused: {e}")),
        }
    }

    /// Acknowledges deliveries (manual acks): the `pick`-th waiting one, or all in order.
    pub fn app_ack(&mut self, pick: Option<usize>) {
        self.crash_pending();
        if self.ledger.unacked.is_empty() {
            return;
        }
        let chosen = match pick {
            Some(i) => {
                let i = i % self.ledger.unacked.len();
                vec![self.ledger.unacked.remove(i)]
            }
            None => std::mem::take(&mut self.ledger.unacked),
        };
        for (token, id, q, pid) in chosen {
            match self.client.ack(self.now, token) {
                Ok(()) if q == QoS::ExactlyOnce => {
                    // The session records the identifier when `ack` returns, even while the
                    // PUBREC waits for earlier ones: the acknowledgement takes effect at once.
                    self.stats.app_acks += 1;
                    let ledger = &mut self.ledger;
                    if let Some(entry) = ledger.qos2_acks.iter_mut().find(|e| e.0 == token) {
                        entry.2 = true;
                    }
                    let stamp = faulty::lock(&self.faults).commits_ok;
                    ledger.msgs[id as usize].committed += 1;
                    ledger.msgs[id as usize].committed_at.push((stamp, pid));
                    while let Some(&(_, _, true)) = ledger.qos2_acks.front() {
                        ledger.qos2_acks.pop_front();
                    }
                }
                Ok(()) => {
                    self.stats.app_acks += 1;
                    self.ledger.msgs[id as usize].committed += 1;
                }
                // A QoS 1 token dies with its connection: the server sends the message again.
                // So do all tokens of a discarded session (a clean one, or one the broker
                // lost).
                Err(AckError::UnknownToken)
                    if q == QoS::AtLeastOnce
                        || !self.cfg.session_survives()
                        || self.broker.stats.sessions_lost > 0 =>
                {
                    self.stats.stale_acks += 1;
                }
                // The store could not record it: the application acknowledges again later.
                Err(AckError::Store(_)) if faulty::lock(&self.faults).writes_failed > 0 => {
                    self.ledger.unacked.push((token, id, q, pid));
                }
                Err(e) => self
                    .ledger
                    .fail(format!("ack of message {id} ({q:?}) refused: {e}")),
            }
        }
        self.flush();
    }

    // ----- faults -----

    /// Cuts the connection: of the bytes in flight, the first `up` (towards the broker) and
    /// `down` (towards the client) still arrive, the rest is lost; then both sides see the
    /// close. Offsets beyond what is in flight deliver everything. False if there is no
    /// connection.
    pub fn cut(&mut self, up: usize, down: usize) -> bool {
        if !self.sever(up, down) {
            return false;
        }
        self.stats.cuts += 1;
        self.client.handle_closed(self.now);
        self.drain_events();
        true
    }

    /// The prefix-delivery part of a cut; leaves the client's side of the close to the caller.
    fn sever(&mut self, up: usize, down: usize) -> bool {
        let Some(mut link) = self.link.take() else {
            return false;
        };
        let (in_up, in_down) = (Link::in_flight(&link.up), Link::in_flight(&link.down));
        let up_bytes = Link::take_prefix(&mut link.up, up);
        let down_bytes = Link::take_prefix(&mut link.down, down);
        if up_bytes.len() < in_up || down_bytes.len() < in_down {
            self.stats.cuts_losing_bytes += 1;
        }
        let split = |tap: &Tap, delivered: &[u8]| {
            // Whether the cut falls inside a packet: decode what arrives on top of what the
            // reader already holds.
            let mut probe = Tap::new(self.cfg.version);
            probe.buf.extend_from_slice(&tap.buf);
            probe.feed(delivered);
            !probe.buf.is_empty()
        };
        let mid_up = {
            let mut probe = Tap::new(self.cfg.version);
            probe.feed(&up_bytes);
            !probe.buf.is_empty()
        };
        if mid_up || split(&link.client_reads, &down_bytes) {
            self.stats.cuts_mid_packet += 1;
        }
        self.note(format!(
            "CUT link {}: {} bytes still reach the broker, {} the client",
            link.number,
            up_bytes.len(),
            down_bytes.len()
        ));
        if link.broker_open && !up_bytes.is_empty() {
            self.broker.handle_read(self.now, &up_bytes);
        }
        if link.client_open && !down_bytes.is_empty() {
            self.feed_client(&mut link.client_reads, &down_bytes);
        }
        // Whatever either side writes now is lost with the connection.
        let _ = self.broker.poll_transmit();
        self.client.poll_transmit(&mut BytesMut::new());
        if link.broker_open {
            self.broker.handle_closed(self.now);
        }
        self.reconnect_at = Some(self.now + self.cfg.reconnect_delay);
        true
    }

    /// Cuts as soon as a connection has bytes in flight (now, if it has), with offsets taken
    /// modulo the bytes in flight plus one.
    pub fn arm_cut(&mut self, up: usize, down: usize) {
        self.armed_cut = Some((up, down));
        self.fire_armed();
    }

    /// Makes the broker resend as soon as it has a PUBLISH in flight (now, if it has).
    pub fn arm_resend(&mut self, pick: usize) {
        self.armed_resend = Some(pick);
        self.fire_armed();
    }

    fn fire_armed(&mut self) {
        if let Some(pick) = self.armed_resend {
            if self.broker_resend(pick) {
                self.armed_resend = None;
            }
        }
        if let Some((up, down)) = self.armed_cut {
            let (in_up, in_down) = self.in_flight();
            if in_up + in_down > 0 {
                self.armed_cut = None;
                self.cut(up % (in_up + 1), down % (in_down + 1));
            }
        }
    }

    /// Makes the broker resend one in-flight PUBLISH with DUP; false if it has none.
    pub fn broker_resend(&mut self, pick: usize) -> bool {
        let done = self.broker.inject_resend(pick);
        if done {
            self.resent_on_link = true;
            self.stats.resends += 1;
            self.note("broker resends a PUBLISH (fault)".into());
            self.flush();
        }
        done
    }

    /// A completed flow found in the store at a restart: allowed when a store fault kept its
    /// removal from being committed; it completes again.
    fn resurrect(&mut self, id: u64) -> bool {
        let faulted = {
            let f = faulty::lock(&self.faults);
            f.writes_failed + f.commits_failed + f.commits_torn > 0
        };
        let Some(msg) = self.ledger.msgs.get_mut(id as usize) else {
            return false;
        };
        if !faulted || msg.outcomes.is_empty() {
            return false;
        }
        msg.resurrected = true;
        self.stats.resurrected += 1;
        self.broker.allow_stale_pubrel = true;
        true
    }

    /// The broker restarts without persistence: the connection is cut as by [`cut`](Self::cut)
    /// and the broker forgets the session, subscriptions included.
    pub fn broker_restart(&mut self, up: usize, down: usize) {
        self.sever(up, down);
        self.client.handle_closed(self.now);
        self.drain_events();
        self.broker.forget_session();
        self.note("BROKER RESTART: the session is gone".into());
    }

    /// Kills the client process and starts it again from its store. The connection dies with
    /// it, cut as by [`cut`](Self::cut).
    pub fn restart(&mut self, up: usize, down: usize) {
        self.stats.restarts += 1;
        self.sever(up, down);
        // The process dies: its store (and the lock on the directory) goes with it, and
        // what survives is what the store had committed.
        self.client = Session::new(self.cfg.client_config());
        let stored = Self::open_store(&self.dir).load().expect("the store loads");
        let mut pending = HashMap::new();
        let mut stored_flows = BTreeMap::new();
        for record in &stored.outgoing {
            let Some(id) = payload_id(&record.publish.payload) else {
                self.ledger
                    .fail("a stored record has a foreign payload".into());
                continue;
            };
            if self.ledger.pending.get(&record.token.0) != Some(&id) && !self.resurrect(id) {
                self.ledger.fail(format!(
                    "the store holds message {id} (token {}) whose flow is not pending",
                    record.token.0
                ));
            }
            pending.insert(record.token.0, id);
            if let Some(pid) = record.packet_id() {
                stored_flows.insert(pid.get(), id);
            }
        }
        for record in &stored.queued {
            let Some(id) = payload_id(&record.message.payload) else {
                self.ledger
                    .fail("a queued record has a foreign payload".into());
                continue;
            };
            if self.ledger.pending.get(&record.token.0) != Some(&id) && !self.resurrect(id) {
                self.ledger.fail(format!(
                    "the store holds queued message {id} (token {}) that is not pending",
                    record.token.0
                ));
            }
            pending.insert(record.token.0, id);
        }
        for (&pid, flow) in &self.broker.client_open {
            if let OpenFlow::Publish { msg_id, .. } = flow {
                if stored_flows.get(&pid) != Some(msg_id) {
                    self.ledger.fail(format!(
                        "restart: flow {pid} of message {msg_id} is open at the broker but not in the store"
                    ));
                }
            }
        }
        let commits_ok = faulty::lock(&self.faults).commits_ok;
        let mut lost = 0;
        for (_, id) in self.ledger.pending.drain() {
            if !pending.values().any(|&p| p == id) {
                let msg = &mut self.ledger.msgs[id as usize];
                if msg.qos != QoS::AtMostOnce && msg.accepted_at >= commits_ok {
                    // Accepted, but the process died before a commit made it durable.
                    msg.lost_uncommitted = true;
                    self.stats.lost_uncommitted += 1;
                } else {
                    msg.lost_in_restart = true;
                    lost += 1;
                }
            }
        }
        // A QoS 2 delivery takes effect with the write that records its identifier: one whose
        // record a store fault (a failed write, a crash in a commit) kept from the disk is
        // undone, and the broker, which never got the PUBREC, sends the message again.
        let incoming: std::collections::HashSet<u16> =
            stored.incoming.iter().map(|id| id.get()).collect();
        let resent: std::collections::HashSet<u64> = self
            .broker
            .session
            .iter()
            .flat_map(|s| s.outbound.iter())
            .filter(|m| m.qos == QoS::ExactlyOnce && m.state == broker::OutState::AwaitPubRec)
            .map(|m| m.msg_id)
            .collect();
        for (id, msg) in self.ledger.msgs.iter_mut().enumerate() {
            if !resent.contains(&(id as u64)) {
                continue;
            }
            let before = msg.committed_at.len();
            msg.committed_at.retain(|(_, pid)| incoming.contains(pid));
            let undone = before - msg.committed_at.len();
            msg.committed -= undone;
            self.stats.deliveries_undone += undone as u64;
        }
        let _ = commits_ok;
        self.stats.lost_in_restart += lost;
        self.stats.queued_restored += stored.queued.len() as u64;
        self.ledger.pending = pending;
        self.ledger.requests.clear();
        // Deliveries not acknowledged die with the process: the server sends them again.
        self.ledger.unacked.clear();
        self.ledger.qos2_acks.clear();
        self.broker.client_restarted();
        self.note(format!(
            "RESTART: {} flows, {} queued messages and {} incoming ids restored, {lost} QoS 0 \
             messages lost",
            stored.outgoing.len(),
            stored.queued.len(),
            stored.incoming.len()
        ));
        faulty::lock(&self.faults).crashed = false;
        if std::mem::take(&mut self.ledger.reauth_pending) {
            // The re-authentication died with the process and its connection.
            self.ledger.reauths_cut += 1;
        }
        self.client = Self::open_client(&self.cfg, &self.dir, &self.faults, &self.auth_log);
        if self.reconnect_at.is_none() && self.link.is_none() {
            self.reconnect_at = Some(self.now + self.cfg.reconnect_delay);
        }
    }

    // ----- driving -----

    fn drain_events(&mut self) {
        while let Some(event) = self.client.poll_event() {
            self.stats.events += 1;
            self.sync_fault_state();
            if let Event::Disconnected { reason } = &event {
                self.note(format!("client: disconnected: {reason}"));
                // 5.0 forbids resending within a connection [MQTT-4.4.0-1 v5.0]; a client may
                // take a resent QoS 1 PUBLISH it has not acknowledged yet as one more message
                // beyond its Receive Maximum, and close. That ends the connection like a cut.
                let resent = self.resent_on_link;
                let tolerated = ConnectionError::ProtocolViolation(
                    mqtt_session::ProtocolViolation::ReceiveMaximumExceeded,
                );
                if resent && self.cfg.version.is_v5() && *reason == tolerated {
                    self.stats.tolerated_violations += 1;
                    if std::mem::take(&mut self.ledger.reauth_pending) {
                        self.ledger.reauths_cut += 1;
                    }
                    continue;
                }
            }
            if matches!(event, Event::Connected { .. }) {
                self.broker.fresh_connack_unseen = false;
            }
            self.ledger.on_event(event);
        }
    }

    /// Hands bytes to the client one packet at a time, and tells the broker of each packet the
    /// client has read while reading: a session that closes on a packet ignores the rest of
    /// what it is given, so the packets after it must not count as read. A trailing partial
    /// packet is handed over at once.
    fn feed_client(&mut self, tap: &mut Tap, bytes: &[u8]) {
        tap.buf.extend_from_slice(bytes);
        loop {
            let reading = matches!(
                self.client.state(),
                ConnectionState::Connecting | ConnectionState::Connected
            );
            if !reading {
                tap.buf.clear();
                tap.fed = 0;
                return;
            }
            let size = match tap.decoder.frame_len(&tap.buf) {
                Ok(Some((_, size))) if size <= tap.buf.len() => size,
                _ => break,
            };
            let frame = tap.buf.split_to(size).freeze();
            let fresh = frame.slice(tap.fed..);
            tap.fed = 0;
            self.client.handle_read(self.now, &fresh);
            if let Ok(p) = tap.decoder.decode_frame(&frame) {
                self.broker.observe_delivered(&p);
            }
            self.drain_events();
        }
        if tap.buf.len() > tap.fed {
            let fresh = tap.buf[tap.fed..].to_vec();
            self.client.handle_read(self.now, &fresh);
            tap.fed = tap.buf.len();
            self.drain_events();
        }
    }

    /// Moves what each side wrote onto the network, and starts closes either side asked for.
    fn flush(&mut self) {
        loop {
            let mut progress = false;
            let mut out = BytesMut::new();
            self.client.poll_transmit(&mut out);
            self.drain_events();
            if let Some(link) = self.link.as_mut() {
                if !out.is_empty() && link.client_open {
                    let at = (self.now + self.cfg.latency_up)
                        .max(link.up.back().map_or(self.now, |(t, _)| *t));
                    let number = link.number;
                    let packets = link.client_writes.feed(&out);
                    link.up.push_back((at, out.freeze()));
                    if self.cfg.broker.defect == Some(broker::Defect::ReorderUplink) {
                        let n = link.up.len();
                        if n >= 2 {
                            let last = link.up[n - 1].1.clone();
                            link.up[n - 1].1 = std::mem::replace(&mut link.up[n - 2].1, last);
                        }
                    }
                    for p in packets {
                        self.note(format!("C-> {}", Self::describe(&p)));
                        if self.keep_log {
                            self.log.push((Dir::ClientToBroker, number, p));
                        }
                    }
                    progress = true;
                }
            }
            if self.client.wants_close() && self.link.as_ref().is_some_and(|l| l.client_open) {
                self.close_by_client();
                progress = true;
            }
            if let Some(out) = self.broker.poll_transmit() {
                if let Some(link) = self.link.as_mut().filter(|l| l.broker_open) {
                    let at = (self.now + self.cfg.latency_down)
                        .max(link.down.back().map_or(self.now, |(t, _)| *t));
                    let number = link.number;
                    let packets = link.broker_writes.feed(&out);
                    if link.client_open {
                        link.down.push_back((at, out));
                    }
                    for p in packets {
                        self.note(format!("<-B {}", Self::describe(&p)));
                        if self.keep_log {
                            self.log.push((Dir::BrokerToClient, number, p));
                        }
                    }
                    progress = true;
                }
            }
            if self.broker.wants_close() && self.link.as_ref().is_some_and(|l| l.broker_open) {
                self.close_by_broker();
                progress = true;
            }
            if !progress {
                break;
            }
        }
        self.check_bounds();
    }

    fn close_by_client(&mut self) {
        self.note("client closes the transport".into());
        self.client.handle_closed(self.now);
        self.drain_events();
        let Some(link) = self.link.as_mut() else {
            return;
        };
        link.client_open = false;
        link.down.clear();
        link.down_close = None;
        if link.broker_open {
            let at =
                (self.now + self.cfg.latency_up).max(link.up.back().map_or(self.now, |(t, _)| *t));
            link.up_close = Some(at);
        } else {
            self.link_gone();
        }
    }

    fn close_by_broker(&mut self) {
        self.note("broker closes the transport".into());
        self.broker.handle_closed(self.now);
        let Some(link) = self.link.as_mut() else {
            return;
        };
        link.broker_open = false;
        link.up.clear();
        link.up_close = None;
        if link.client_open {
            let at = (self.now + self.cfg.latency_down)
                .max(link.down.back().map_or(self.now, |(t, _)| *t));
            link.down_close = Some(at);
        } else {
            self.link_gone();
        }
    }

    fn link_gone(&mut self) {
        self.link = None;
        self.reconnect_at = Some(self.now + self.cfg.reconnect_delay);
    }

    fn next_due(&self) -> Option<(Instant, Due)> {
        let mut candidates: Vec<(Instant, Due)> = Vec::new();
        if let Some(link) = &self.link {
            if let Some((t, _)) = link.up.front() {
                candidates.push((*t, Due::Up));
            } else if let Some(t) = link.up_close {
                candidates.push((t, Due::UpClose));
            }
            if let Some((t, _)) = link.down.front() {
                candidates.push((*t, Due::Down));
            } else if let Some(t) = link.down_close {
                candidates.push((t, Due::DownClose));
            }
        }
        if let Some(t) = self.client.poll_timeout() {
            candidates.push((t, Due::ClientTimer));
        }
        if let Some(t) = self.broker.poll_timeout() {
            candidates.push((t, Due::BrokerTimer));
        }
        if let (None, Some(t)) = (&self.link, self.reconnect_at) {
            candidates.push((t, Due::Reconnect));
        }
        candidates.into_iter().min_by_key(|(t, _)| *t)
    }

    /// Handles the next thing due if it is due by `until`; false if nothing is.
    fn step(&mut self, until: Instant) -> bool {
        if self.crash_pending() {
            return true;
        }
        self.flush();
        let Some((at, due)) = self.next_due().filter(|(t, _)| *t <= until) else {
            return false;
        };
        if at > self.now {
            self.now = at;
            self.spins = 0;
        } else {
            self.spins += 1;
            if self.spins > 10_000 {
                self.ledger.fail(format!(
                    "busy loop: {due:?} keeps being due at the same instant"
                ));
                return false;
            }
        }
        let now = self.now;
        match due {
            Due::Up => {
                let link = self.link.as_mut().expect("due on a link");
                let (_, bytes) = link.up.pop_front().expect("due chunk");
                if link.broker_open {
                    self.broker.handle_read(now, &bytes);
                }
            }
            Due::UpClose => {
                self.note("broker sees the close".into());
                self.broker.handle_closed(now);
                self.link_gone();
            }
            Due::Down => {
                let link = self.link.as_mut().expect("due on a link");
                let (_, bytes) = link.down.pop_front().expect("due chunk");
                if link.client_open {
                    let version = self.cfg.version;
                    let mut tap = std::mem::replace(&mut link.client_reads, Tap::new(version));
                    self.feed_client(&mut tap, &bytes);
                    if let Some(link) = self.link.as_mut() {
                        link.client_reads = tap;
                    }
                }
            }
            Due::DownClose => {
                self.note("client sees the close".into());
                self.client.handle_closed(now);
                self.drain_events();
                self.link_gone();
            }
            Due::ClientTimer => {
                self.client.handle_timeout(now);
                self.drain_events();
                self.flush();
                if self.client.poll_timeout().is_some_and(|t| t <= now) {
                    self.ledger.fail(format!(
                        "poll_timeout is still {:?} after handle_timeout at that instant",
                        self.client.poll_timeout().map(|t| t - self.start)
                    ));
                }
            }
            Due::BrokerTimer => self.broker.handle_timeout(now),
            Due::Reconnect => {
                self.reconnect_at = None;
                self.resent_on_link = false;
                self.links += 1;
                self.stats.reconnects += 1;
                let version = self.cfg.version;
                self.link = Some(Link {
                    number: self.links,
                    up: VecDeque::new(),
                    down: VecDeque::new(),
                    up_close: None,
                    down_close: None,
                    client_open: true,
                    broker_open: true,
                    client_reads: Tap::new(version),
                    client_writes: Tap::new(version),
                    broker_writes: Tap::new(version),
                });
                self.note(format!("connection {} opens", self.links));
                self.broker.handle_open(now);
                self.client.handle_connected(now);
                self.drain_events();
            }
        }
        self.flush();
        self.fire_armed();
        true
    }

    /// Runs until `until`, handling everything due on the way.
    pub fn run_until(&mut self, until: Instant) {
        while self.failed().is_none() && self.step(until) {}
        self.now = self.now.max(until);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Runs, one event at a time, until `cond` holds; false if it did not within `limit`.
    pub fn run_until_cond(&mut self, limit: Duration, cond: impl Fn(&Sim) -> bool) -> bool {
        let until = self.now + limit;
        loop {
            self.flush();
            if cond(self) {
                return true;
            }
            if self.failed().is_some() || !self.step(until) {
                return cond(self);
            }
        }
    }

    /// Whether a packet matching `f` has been written in direction `dir`.
    pub fn sent(&self, dir: Dir, f: impl Fn(&Packet) -> bool) -> bool {
        self.log.iter().any(|(d, _, p)| *d == dir && f(p))
    }

    /// Bytes in flight towards the broker and towards the client.
    pub fn in_flight(&self) -> (usize, usize) {
        self.link.as_ref().map_or((0, 0), |l| {
            (Link::in_flight(&l.up), Link::in_flight(&l.down))
        })
    }

    /// The whole packets in flight in `dir`, with their byte range from the first byte in
    /// flight. Chunks hold whole packets, so what is in flight starts at a packet boundary.
    pub fn in_flight_packets(&self, dir: Dir) -> Vec<(usize, usize, Packet)> {
        let Some(link) = &self.link else {
            return Vec::new();
        };
        let queue = match dir {
            Dir::ClientToBroker => &link.up,
            Dir::BrokerToClient => &link.down,
        };
        let mut buf = BytesMut::new();
        for (_, chunk) in queue {
            buf.extend_from_slice(chunk);
        }
        let total = buf.len();
        let decoder = Decoder::new(self.cfg.version);
        let mut out = Vec::new();
        let mut start = 0;
        while let Ok(Some(p)) = decoder.decode(&mut buf) {
            let end = total - buf.len();
            out.push((start, end, p));
            start = end;
        }
        out
    }

    /// Byte range of the first packet in flight in `dir` that matches `f`.
    pub fn find_in_flight(&self, dir: Dir, f: impl Fn(&Packet) -> bool) -> Option<(usize, usize)> {
        self.in_flight_packets(dir)
            .into_iter()
            .find(|(_, _, p)| f(p))
            .map(|(s, e, _)| (s, e))
    }

    // ----- checks -----

    /// Limits that hold at every moment.
    fn check_bounds(&mut self) {
        let c = &self.client;
        let cfg = &self.cfg;
        let mut failures = Vec::new();
        // Flows a store fault brought back from the dead are restored on top of the window.
        if c.inflight() > usize::from(cfg.max_inflight) && !self.ledger.store_faulted {
            failures.push(format!(
                "{} in flight, max_inflight {}",
                c.inflight(),
                cfg.max_inflight
            ));
        }
        // When a session is discarded its unacknowledged messages are queued again ahead of
        // the queue, which may then hold up to `max_inflight` more than `max_queued` (see
        // `queue_stays_within_max_queued_when_the_session_is_discarded`). Persistent sessions
        // are never discarded here, so they are held to `max_queued` itself.
        let max_queued = if cfg.session_survives() {
            cfg.max_queued
        } else {
            cfg.max_queued + usize::from(cfg.max_inflight)
        };
        // A store fault can leave records of flows that ended, or of messages both queued and
        // in flight, which a restart restores on top of the bounds: only their sum holds then.
        let max_queued = if self.ledger.store_faulted {
            max_queued + 2 * usize::from(cfg.max_inflight)
        } else {
            max_queued
        };
        if c.queued() > max_queued {
            failures.push(format!(
                "{} queued, max_queued {}",
                c.queued(),
                cfg.max_queued
            ));
        }
        if c.incoming_unreleased() > cfg.broker_window() {
            failures.push(format!(
                "{} incoming QoS 2 unreleased, the broker never has more than {} in flight",
                c.incoming_unreleased(),
                cfg.broker_window()
            ));
        }
        let ids = c.inflight() + c.requests_pending();
        if self.ledger.requests.len() > c.requests_pending() {
            failures.push(format!(
                "{} requests of the application pending, the session has {}",
                self.ledger.requests.len(),
                c.requests_pending()
            ));
        }
        // Identifiers whose record a failed store write left behind stay in use until it is
        // removed.
        let leaked = c.packet_ids_in_use() != ids;
        if leaked && !(self.ledger.store_faulted && c.packet_ids_in_use() > ids) {
            failures.push(format!(
                "{} packet ids in use for {} flows and {} requests",
                c.packet_ids_in_use(),
                c.inflight(),
                self.ledger.requests.len()
            ));
        }
        for f in failures {
            self.ledger.fail(f);
        }
    }

    /// The first thing that went wrong, with the recent trace.
    pub fn failed(&self) -> Option<String> {
        let mut problems: Vec<String> = self
            .broker
            .violations
            .iter()
            .map(|v| format!("broker saw: {v}"))
            .collect();
        problems.extend(self.ledger.failures.iter().cloned());
        if problems.is_empty() {
            return None;
        }
        Some(format!(
            "{}\n--- recent trace ---\n{}",
            problems.join("\n"),
            self.trace()
        ))
    }

    /// Whether everything is done: connected, nothing in flight, nothing queued, every flow
    /// of either side complete.
    pub fn quiescent(&self) -> bool {
        let Some(link) = &self.link else {
            return false;
        };
        let broker_idle = self
            .broker
            .session
            .as_ref()
            .is_some_and(|s| s.outbound.is_empty() && s.inbound_qos2.is_empty());
        link.up.is_empty()
            && link.down.is_empty()
            && link.client_open
            && link.broker_open
            && self.client.is_connected()
            && self.client.inflight() == 0
            && self.client.queued() == 0
            // An incoming QoS 2 identifier the broker forgot with a lost session stays, unused,
            // until the broker sends a new message (a client that missed the CONNACK telling of
            // the new session cannot know before).
            && (self.client.incoming_unreleased() == 0 || self.broker.stats.sessions_lost > 0)
            && self.ledger.pending.is_empty()
            && self.ledger.requests.is_empty()
            && broker_idle
            && self.broker.client_open.is_empty()
            && self.armed_cut.is_none()
            && self.armed_resend.is_none()
            && self.ledger.unacked.is_empty()
            && !self.ledger.reauth_pending
    }

    /// Drives without faults until quiescent; fails if that takes more than `max_steps`
    /// events (a liveness bug).
    pub fn settle(&mut self, max_steps: usize) -> Result<(), String> {
        self.armed_cut = None;
        self.armed_resend = None;
        let limit = self.now + Duration::from_secs(24 * 3600);
        for _ in 0..max_steps {
            self.flush();
            if let Some(f) = self.failed() {
                return Err(f);
            }
            if self.quiescent() {
                return Ok(());
            }
            self.app_ack(None);
            if !self.step(limit) && self.ledger.unacked.is_empty() {
                break;
            }
        }
        if let Some(f) = self.failed() {
            return Err(f);
        }
        if self.quiescent() {
            return Ok(());
        }
        Err(format!(
            "not quiescent after {max_steps} steps: connected {}, inflight {}, queued {}, \
             incoming {}, pending {:?}, requests {:?}, broker session {:?}, open {:?}\n\
             --- recent trace ---\n{}",
            self.client.is_connected(),
            self.client.inflight(),
            self.client.queued(),
            self.client.incoming_unreleased(),
            self.ledger.pending,
            self.ledger.requests,
            self.broker.session,
            self.broker.client_open,
            self.trace()
        ))
    }

    /// The end-of-run guarantees; see the checks in order below.
    pub fn check_final(&mut self) -> Result<(), String> {
        self.stats.runs += 1;
        self.stats.manual_ack_runs += u64::from(self.cfg.manual_acks);
        self.stats.clean_runs += u64::from(!self.cfg.session_survives());
        self.stats.virtual_secs += (self.now - self.start).as_secs();
        self.stats.broker_resent_on_reconnect += self.broker.stats.resent_on_reconnect;
        self.stats.stray_acks += self.broker.stats.stray_acks;
        self.stats.aliased_publishes += self.broker.stats.aliased_publishes;
        self.stats.pings += self.broker.stats.pings;
        self.stats.broker_sessions_lost += self.broker.stats.sessions_lost;
        self.stats.resubscriptions += self.ledger.resubscriptions;
        self.stats.auth_runs += u64::from(self.cfg.enhanced_auth());
        self.stats.authentications += self.broker.stats.authentications;
        self.stats.challenges += self.broker.stats.challenges;
        self.stats.reauths_completed += self.ledger.reauths_completed;
        self.stats.reauths_cut += self.ledger.reauths_cut;
        self.stats.completed_during_reauth += self.ledger.completed_during_reauth;
        {
            let f = faulty::lock(&self.faults);
            self.stats.store_writes_failed += f.writes_failed;
            self.stats.store_commits_failed += f.commits_failed;
            self.stats.store_commits_torn += f.commits_torn;
        }
        let mut errors = Vec::new();
        let store_faulted = self.ledger.store_faulted;
        let unexpected: Vec<_> = self
            .ledger
            .disconnects
            .iter()
            .filter(|r| **r != ConnectionError::TransportClosed)
            .filter(|r| !(store_faulted && matches!(r, ConnectionError::StoreFailed(_))))
            .collect();
        if !unexpected.is_empty() {
            errors.push(format!(
                "connections ended other than by a cut: {unexpected:?}"
            ));
        }
        // A persistent session is resumed by every connection after the first, restarts
        // included: the client asks for it (Clean Start 0) and the broker still has it, unless
        // the broker restarted without it.
        let not_resumed = self
            .broker
            .connacks
            .iter()
            .skip(1)
            .any(|(present, lost)| !present && !lost);
        if self.cfg.session_survives() && not_resumed {
            errors.push(format!(
                "a persistent session was not resumed: Session Present {:?}",
                self.broker.connacks
            ));
        }
        errors.extend(self.auth_errors());
        let broker_lost_sessions = self.broker.stats.sessions_lost > 0;
        for (id, m) in self.ledger.msgs.iter().enumerate() {
            let id = id as u64;
            let accepted = self.broker.accepted.get(&id).cloned().unwrap_or_default();
            let n = m.deliveries.len();
            if n > 1 {
                self.stats.delivered_twice_or_more += 1;
            }
            self.stats.delivered += n as u64;
            let survives = self.cfg.session_survives();
            if m.lost_uncommitted {
                // Accepted and lost before any commit: it was never sent, so nothing at all
                // may have come of it.
                let came_of_it = !accepted.is_empty() || n > 0 || !m.outcomes.is_empty();
                if came_of_it {
                    errors.push(format!(
                        "message {id} lost before a commit yet outcomes {:?}, accepted {accepted:?}, delivered {n}",
                        m.outcomes
                    ));
                }
                continue;
            }
            if m.lost_in_restart {
                // Only a QoS 0 message waiting in the queue may die with the process: the store
                // holds every QoS 1/2 message from `publish` on, queued or in flight.
                if m.qos != QoS::AtMostOnce {
                    errors.push(format!(
                        "QoS {:?} message {id} lost in a restart: the store held neither its \
                         queued record nor its flow",
                        m.qos
                    ));
                    continue;
                }
                // It waited in memory and was never sent: nothing may have come of it.
                let came_of_it = !accepted.is_empty() || n > 0;
                if !m.outcomes.is_empty() || came_of_it {
                    errors.push(format!(
                        "message {id} lost in a restart yet outcomes {:?}, accepted {accepted:?}, delivered {n}",
                        m.outcomes
                    ));
                }
                continue;
            }
            // Exactly one Published event, with the outcome its QoS calls for (two for a flow
            // whose removal a crash undid: it completes again). Without a surviving session
            // the client reports QoS 2 flows the server had taken over (PUBREC received) as
            // complete with 0x92 when it discards them.
            let outcomes = match m.outcomes.as_slice() {
                [first, again @ ..]
                    if m.resurrected
                        && again.iter().all(|o| {
                            o == first || matches!(o, PublishOutcome::Completed { .. })
                        }) =>
                {
                    std::slice::from_ref(first)
                }
                all => all,
            };
            let outcome_ok = match (m.qos, outcomes) {
                (QoS::AtMostOnce, [PublishOutcome::Sent]) => true,
                (QoS::AtLeastOnce, [PublishOutcome::Acknowledged { reason, .. }]) => {
                    reason.is_success()
                }
                (QoS::ExactlyOnce, [PublishOutcome::Completed { reason, .. }]) => {
                    *reason == PubRelReasonCode::Success
                        || ((self.cfg.version.is_v5() || !survives || broker_lost_sessions)
                            && *reason == PubRelReasonCode::PacketIdentifierNotFound)
                }
                _ => false,
            };
            if !outcome_ok {
                errors.push(format!(
                    "message {id} ({:?}): outcomes {:?}",
                    m.qos, m.outcomes
                ));
            }
            // The broker took it over: QoS 0 at most once, QoS 1 at least once, QoS 2 once.
            // Without a surviving session QoS 2 is only at least once: a message whose PUBREC
            // was lost is sent again as a new message to a new session.
            let taken = match m.qos {
                QoS::AtMostOnce => accepted.len() <= 1,
                QoS::AtLeastOnce => !accepted.is_empty(),
                // A broker that lost the session with a message it had taken over gets it
                // again as a new message: no client can make that exactly once.
                QoS::ExactlyOnce if !survives || broker_lost_sessions => !accepted.is_empty(),
                QoS::ExactlyOnce => accepted.len() == 1,
            };
            if !taken {
                errors.push(format!(
                    "message {id} ({:?}) accepted by the broker {} times",
                    m.qos,
                    accepted.len()
                ));
            }
            // Delivery to the subscriber: at least once if any acceptance was routed at QoS
            // 1/2, never more than once per acceptance routed at QoS 0/2, never if unrouted.
            let reliable = accepted
                .iter()
                .any(|q| matches!(q, Some(QoS::AtLeastOnce | QoS::ExactlyOnce)));
            // Counted in committed deliveries: with manual acks, one not acknowledged before
            // a restart is sent again and does not count.
            let c = m.committed;
            let discarded = self.broker.discarded.contains(&id);
            // A client that missed the CONNACK telling it the broker had lost the session
            // cannot tell the broker's new QoS 2 message, resent with DUP under an identifier
            // it still holds, from the old one it answered: it answers PUBREC again and the new
            // one is lost. Only a broker restarted without its session, and a lost CONNACK
            // after it, make this possible; the session cannot do better without breaking
            // exactly once when the broker did keep the session.
            let ambiguous = accepted.contains(&Some(QoS::ExactlyOnce))
                && (self.broker.fresh_connack_missed || self.broker.fresh_connack_unseen);
            if reliable && c == 0 && !discarded && !ambiguous {
                errors.push(format!(
                    "message {id} ({:?}, routed {accepted:?}) never delivered",
                    m.qos
                ));
            }
            let routed = accepted.iter().filter(|q| q.is_some()).count();
            let may_repeat = accepted.contains(&Some(QoS::AtLeastOnce));
            if c > routed && !may_repeat {
                errors.push(format!(
                    "message {id} ({:?}, routed {accepted:?}) delivered {c} times",
                    m.qos
                ));
            }
            for q in &m.deliveries {
                if !accepted.contains(&Some(*q)) {
                    errors.push(format!(
                        "message {id} delivered at {q:?}, routed {accepted:?}"
                    ));
                }
            }
        }
        // A broker that lost the session makes the client send its flows again as new
        // messages; a store that failed to record one of them (the old flow's record keeps
        // standing for it) and a crash before its new flow is recorded can put it back in its
        // old place in send order, behind messages published after it.
        if !(self.ledger.store_faulted && self.broker.stats.sessions_lost > 0) {
            errors.extend(self.order_errors());
        }
        // The broker holds exactly the subscriptions the client holds granted: a session the
        // broker lost (or a clean session) was rebuilt.
        let client: Vec<String> = self
            .client
            .subscriptions()
            .map(|r| r.subscription.filter.as_str().to_string())
            .collect();
        let broker: Vec<String> = self
            .broker
            .session
            .as_ref()
            .map(|s| s.subscriptions.keys().cloned().collect())
            .unwrap_or_default();
        // A store fault can lose the record of a subscription the broker granted (the crash
        // came before its commit), and a restart loses a SUBSCRIBE the broker took but never
        // answered; the broker then holds one the client does not know of.
        let consistent = if self.ledger.store_faulted || self.stats.restarts > 0 {
            client.iter().all(|f| broker.contains(f))
        } else {
            client == broker
        };
        if !consistent {
            errors.push(format!(
                "subscriptions: the client holds {client:?}, the broker {broker:?}"
            ));
        }
        if let Some(f) = self.failed() {
            errors.push(f);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{}\n--- recent trace ---\n{}",
                errors.join("\n"),
                self.trace()
            ))
        }
    }

    /// Enhanced authentication: every connection the broker accepted authenticated first,
    /// and the client accepted only a broker that proved itself; every re-authentication the
    /// application started completed, or ended with its connection.
    fn auth_errors(&self) -> Vec<String> {
        let mut errors = Vec::new();
        let log = self.auth_log.lock().expect("the authenticator's log");
        let b = &self.broker.stats;
        let connacks = self.broker.connacks.len() as u64;
        if !self.cfg.enhanced_auth() {
            if log.starts + b.challenges + b.reauths_started > 0 {
                errors.push(format!(
                    "enhanced authentication without an authenticator: {log:?}, {b:?}"
                ));
            }
            return errors;
        }
        if b.authentications != connacks {
            errors.push(format!(
                "{connacks} CONNACK sent, {} connections authenticated",
                b.authentications
            ));
        }
        // The client verified the broker's proof before each connection it took, and at the
        // end of each re-authentication.
        let connected = self.ledger.connected.len() as u64;
        if log.finishes != connected + self.ledger.reauths_completed {
            errors.push(format!(
                "the authenticator verified the broker {} times, for {connected} connections \
                 and {} re-authentications",
                log.finishes, self.ledger.reauths_completed
            ));
        }
        if !log.failures.is_empty() {
            errors.push(format!("the authenticator failed: {:?}", log.failures));
        }
        let ended = self.ledger.reauths_completed + self.ledger.reauths_cut;
        if self.stats.reauths_started != ended || self.ledger.reauth_pending {
            errors.push(format!(
                "{} re-authentications started, {} completed, {} ended with their connection",
                self.stats.reauths_started, self.ledger.reauths_completed, self.ledger.reauths_cut
            ));
        }
        if self.ledger.reauths_completed > b.reauths_completed {
            errors.push(format!(
                "{} re-authentications reported complete, the broker completed {}",
                self.ledger.reauths_completed, b.reauths_completed
            ));
        }
        errors
    }

    /// Order per topic of QoS 1/2 messages: the broker first accepts them in publish order,
    /// and the application first receives those routed at QoS 1/2 in publish order.
    fn order_errors(&self) -> Vec<String> {
        let mut errors = Vec::new();
        let mut last: HashMap<&str, u64> = HashMap::new();
        for (id, topic, q) in &self.broker.first_accepted {
            if *q == QoS::AtMostOnce {
                continue;
            }
            if let Some(prev) = last.insert(topic, *id) {
                if prev > *id {
                    errors.push(format!(
                        "broker first accepted message {id} after {prev} on {topic}"
                    ));
                }
            }
        }
        let mut last: HashMap<&str, u64> = HashMap::new();
        for id in &self.ledger.first_deliveries {
            let m = &self.ledger.msgs[*id as usize];
            let first_route = self
                .broker
                .accepted
                .get(id)
                .and_then(|a| a.first().copied())
                .flatten();
            if m.qos == QoS::AtMostOnce || !matches!(first_route, Some(q) if q != QoS::AtMostOnce) {
                continue;
            }
            if let Some(prev) = last.insert(&m.topic, *id) {
                if prev > *id {
                    errors.push(format!(
                        "application first received message {id} after {prev} on {}",
                        m.topic
                    ));
                }
            }
        }
        errors
    }
}
