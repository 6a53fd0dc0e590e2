//! A small MQTT server for one client, written from the spec rather than for speed.
//!
//! It keeps the client's session (subscriptions, incoming QoS 2 identifiers awaiting PUBREL,
//! outgoing messages) across connections as Clean Start / Clean Session and the session expiry
//! interval say, routes every PUBLISH to the matching subscriptions of the same client (so
//! messages loop back), completes QoS 1/2 flows in both directions, and resends its own
//! unacknowledged messages with DUP when the session is resumed. A fault can make it resend an
//! in-flight PUBLISH spontaneously, within a connection.
//!
//! Besides being a server it is a witness: it records every message it accepts, and checks
//! what the client sends against the rules a server can see break (packet identifier reuse,
//! DUP on resends, the Receive Maximum, keep alive). It learns which of the client's flows are
//! complete from [`Broker::observe_delivered`], which the driver calls for every packet the
//! client has read while its connection was up, since a client can only know a flow is over
//! once it has read the answer. It also gives a 5.0 client topic aliases up to its maximum and
//! may announce a Server Keep Alive, and may require enhanced authentication with the toy
//! challenge-response method of `toy_auth` (5.0): it challenges before CONNACK, proves itself
//! in CONNACK, and runs a re-authentication whenever the client starts one, flows going on.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::num::NonZeroU16;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqtt_proto::{
    Auth, AuthProperties, AuthReasonCode, ConnAck, Connect, Decoder, MqttString, Packet, PacketId,
    ProtocolVersion, PubAck, PubComp, PubRec, PubRel, PubRelReasonCode, Publish, QoS, QosPid,
    SubAck, SubAckReasonCode, Subscribe, TopicFilter, TopicName, UnsubAck, UnsubAckReasonCode,
    Unsubscribe,
};

use super::payload_id;
use crate::toy_auth::{ToyServer, METHOD};

/// The key the model broker shares with the client for the toy method.
pub const AUTH_KEY: &[u8] = b"sim key";

/// What the broker announces and how it limits itself.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Receive Maximum announced in CONNACK (5.0).
    pub receive_maximum: Option<u16>,
    /// Topic Alias Maximum announced in CONNACK (5.0); 0 announces none.
    pub topic_alias_maximum: u16,
    /// Server Keep Alive announced in CONNACK (5.0), replacing the client's.
    pub server_keep_alive: Option<u16>,
    /// Most QoS 1/2 messages the broker has in flight towards the client.
    pub max_outbound: u16,
    /// Enhanced authentication with the toy method, with this many challenges per exchange
    /// (5.0 only); `None` for none.
    pub auth_rounds: Option<u32>,
    /// A deliberate defect, to show that the checks catch it; `None` in a correct run.
    pub defect: Option<Defect>,
}

/// Deliberate defects of the model broker (and of the network, for `ReorderUplink`), each
/// breaking one guarantee, so that a test can show the check for it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// Takes every third message without routing it to the subscriptions.
    LoseRoutes,
    /// Forgets the incoming QoS 2 identifiers awaiting PUBREL when the client reconnects.
    ForgetQos2OnReconnect,
    /// Routes every QoS 2 message twice.
    RouteQos2Twice,
    /// Resends its in-flight messages on reconnect in reverse order.
    ResendInReverse,
    /// Does not resend its in-flight messages on reconnect.
    NoResendOnReconnect,
    /// Keeps the client's QoS 1 flows open after the client read their PUBACK.
    KeepQos1FlowsOpen,
    /// Clears DUP on every PUBLISH it reads.
    StripDup,
    /// Announces a Receive Maximum one above the one it enforces.
    UnderstateReceiveMaximum,
    /// Sends past its window towards the client.
    IgnoreWindow,
    /// Refuses every QoS 1 message with PUBACK 0x80 (5.0).
    RejectQos1,
    /// The network swaps the last two chunks in flight towards the broker.
    ReorderUplink,
    /// Accepts the connection with a proof made without the key (enhanced authentication).
    ForgeProof,
    /// Never answers a re-authentication.
    IgnoreReauth,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            receive_maximum: None,
            topic_alias_maximum: 0,
            server_keep_alive: None,
            max_outbound: 10,
            auth_rounds: None,
            defect: None,
        }
    }
}

/// Where one message towards the client stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutState {
    /// Waiting for the window.
    Queued,
    /// QoS 1 PUBLISH sent.
    AwaitPubAck,
    /// QoS 2 PUBLISH sent.
    AwaitPubRec,
    /// PUBREL sent.
    AwaitPubComp,
}

/// A message the broker delivers to the client.
#[derive(Debug, Clone)]
pub struct OutMsg {
    /// The identifier carried in the payload.
    pub msg_id: u64,
    pub topic: TopicName,
    pub payload: Bytes,
    /// Delivery QoS: the lower of the publication's and the subscription's.
    pub qos: QoS,
    pub packet_id: Option<PacketId>,
    pub state: OutState,
}

/// One flow the client has opened with a packet identifier, as far as the broker can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenFlow {
    /// A QoS 1/2 PUBLISH of the message with this id.
    Publish { msg_id: u64, qos: QoS },
    /// A SUBSCRIBE or UNSUBSCRIBE.
    Request,
}

/// The client's session as the broker keeps it.
#[derive(Debug)]
pub struct BrokerSession {
    /// Filters and their maximum QoS.
    pub subscriptions: BTreeMap<String, (TopicFilter, QoS)>,
    /// Identifiers of QoS 2 messages from the client awaiting PUBREL.
    pub inbound_qos2: BTreeSet<u16>,
    /// Messages towards the client, oldest first.
    pub outbound: VecDeque<OutMsg>,
    next_id: u16,
    /// Seconds the session outlives a connection; `None` forever (3.x, clean session off).
    expiry: Option<u32>,
    disconnected_at: Option<Instant>,
    /// Messages received from the client in this session, for the DUP check.
    seen: BTreeSet<u64>,
}

impl BrokerSession {
    fn new() -> Self {
        Self {
            subscriptions: BTreeMap::new(),
            inbound_qos2: BTreeSet::new(),
            outbound: VecDeque::new(),
            next_id: 1,
            expiry: Some(0),
            disconnected_at: None,
            seen: BTreeSet::new(),
        }
    }

    fn allocate_id(&mut self) -> PacketId {
        loop {
            let candidate = self.next_id;
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            let in_use = self
                .outbound
                .iter()
                .any(|m| m.packet_id.map(PacketId::get) == Some(candidate));
            if let (false, Some(id)) = (in_use, PacketId::new(candidate)) {
                return id;
            }
        }
    }

    fn inflight(&self) -> usize {
        self.outbound
            .iter()
            .filter(|m| m.state != OutState::Queued)
            .count()
    }
}

/// State of the current connection.
#[derive(Debug)]
struct BrokerConn {
    decoder: Decoder,
    read_buf: BytesMut,
    /// CONNECT received.
    connected: bool,
    version: ProtocolVersion,
    keep_alive: Option<Duration>,
    last_heard: Instant,
    aliases: HashMap<u16, TopicName>,
    /// Aliases the broker gave topics it sends, up to the client's Topic Alias Maximum.
    out_aliases: HashMap<TopicName, u16>,
    client_alias_maximum: u16,
    client_receive_maximum: u16,
    closing: bool,
    /// A CONNECT whose enhanced authentication is under way: no CONNACK, no session yet.
    pending_connect: Option<Box<Connect>>,
    /// A re-authentication is under way.
    reauthenticating: bool,
}

/// Counters for the report.
#[derive(Debug, Default, Clone)]
pub struct BrokerStats {
    pub connects: u64,
    pub sessions_resumed: u64,
    pub accepted: u64,
    pub duplicates_from_client: u64,
    pub delivered_publishes: u64,
    pub resent_on_reconnect: u64,
    pub spontaneous_resends: u64,
    pub stray_acks: u64,
    pub qos0_dropped_offline: u64,
    pub aliased_publishes: u64,
    pub pings: u64,
    pub stale_pubrels: u64,
    pub sessions_lost: u64,
    /// Connections whose enhanced authentication succeeded.
    pub authentications: u64,
    /// Challenges sent.
    pub challenges: u64,
    /// Re-authentications started by the client, and completed.
    pub reauths_started: u64,
    pub reauths_completed: u64,
}

/// The model broker.
#[derive(Debug)]
pub struct Broker {
    pub config: BrokerConfig,
    pub session: Option<BrokerSession>,
    conn: Option<BrokerConn>,
    out: BytesMut,
    /// Flows the client has open, by packet identifier: from the PUBLISH or SUBSCRIBE the
    /// broker read until the client has read the packet that completes it.
    pub client_open: BTreeMap<u16, OpenFlow>,
    /// Per message id: the delivery QoS decided at each acceptance (`None`: no subscriber).
    pub accepted: HashMap<u64, Vec<Option<QoS>>>,
    /// Messages in the order the broker first accepted them, with topic and QoS.
    pub first_accepted: Vec<(u64, String, QoS)>,
    /// Messages dropped with a session that ended (expiry or clean start), never delivered.
    pub discarded: BTreeSet<u64>,
    /// Session Present of each CONNACK sent.
    /// Session Present of each CONNACK, and whether the broker had lost the session since the
    /// previous one (restarted without persistence).
    pub connacks: Vec<(bool, bool)>,
    /// The session was lost since the last CONNACK.
    lost_since_connack: bool,
    /// A CONNACK telling of a new session after a loss went out, and the client has not
    /// seen it yet.
    pub fresh_connack_unseen: bool,
    /// The client missed such a CONNACK: it went on with a session the broker had lost,
    /// and may take the broker's new QoS 2 message, resent with DUP under an identifier it
    /// still holds from the lost session, for the old one.
    pub fresh_connack_missed: bool,
    /// Rules the client broke; empty in a correct run.
    pub violations: Vec<String>,
    pub stats: BrokerStats,
    /// A PUBREL for no open flow is answered (with PUBCOMP, 0x92 in 5.0) as a real broker
    /// does, rather than counted a violation, and the Receive Maximum may be exceeded by such
    /// flows: set once a store fault brought a completed flow back from the dead.
    pub allow_stale_pubrel: bool,
    /// The server side of enhanced authentication, when the broker requires it.
    toy: Option<ToyServer>,
}

impl Broker {
    pub fn new(config: BrokerConfig) -> Self {
        Self {
            session: None,
            conn: None,
            out: BytesMut::new(),
            client_open: BTreeMap::new(),
            accepted: HashMap::new(),
            first_accepted: Vec::new(),
            discarded: BTreeSet::new(),
            connacks: Vec::new(),
            lost_since_connack: false,
            fresh_connack_unseen: false,
            fresh_connack_missed: false,
            violations: Vec::new(),
            allow_stale_pubrel: false,
            stats: BrokerStats::default(),
            toy: config
                .auth_rounds
                .map(|rounds| ToyServer::new(AUTH_KEY, rounds)),
            config,
        }
    }

    fn defect(&self, defect: Defect) -> bool {
        self.config.defect == Some(defect)
    }

    // ----- transport -----

    /// A transport from the client is up.
    pub fn handle_open(&mut self, now: Instant) {
        assert!(self.conn.is_none(), "one connection at a time");
        self.out.clear();
        self.conn = Some(BrokerConn {
            decoder: Decoder::new(ProtocolVersion::V3_1_1),
            read_buf: BytesMut::new(),
            connected: false,
            version: ProtocolVersion::V3_1_1,
            keep_alive: None,
            last_heard: now,
            aliases: HashMap::new(),
            out_aliases: HashMap::new(),
            client_alias_maximum: 0,
            client_receive_maximum: u16::MAX,
            closing: false,
            pending_connect: None,
            reauthenticating: false,
        });
    }

    /// The transport closed.
    pub fn handle_closed(&mut self, now: Instant) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        self.out.clear();
        if !conn.connected {
            return;
        }
        let ends = self.session.as_ref().is_some_and(|s| s.expiry == Some(0));
        if ends {
            self.drop_session();
        } else if let Some(session) = self.session.as_mut() {
            session.disconnected_at = Some(now);
            // QoS 0 messages are not kept for a client that is away.
            let before = session.outbound.len();
            session
                .outbound
                .retain(|m| !(m.qos == QoS::AtMostOnce && m.state == OutState::Queued));
            self.stats.qos0_dropped_offline += (before - session.outbound.len()) as u64;
        }
    }

    pub fn is_open(&self) -> bool {
        self.conn.is_some()
    }

    /// Whether the broker wants the transport closed (after writing what it has).
    pub fn wants_close(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.closing)
    }

    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    /// When the client's keep alive runs out: one and a half times the interval after the
    /// last packet [MQTT-3.1.2-24 v3.1.1] / [MQTT-3.1.2-22 v5.0].
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conn = self.conn.as_ref().filter(|c| c.connected && !c.closing)?;
        conn.keep_alive.map(|ka| conn.last_heard + ka + ka / 2)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|t| now >= t) {
            self.violation("keep alive expired: the client sent nothing for 1.5 keep alive");
        }
    }

    pub fn handle_read(&mut self, now: Instant, data: &[u8]) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        if conn.closing {
            return;
        }
        conn.last_heard = now;
        conn.read_buf.extend_from_slice(data);
        loop {
            let Some(conn) = self.conn.as_mut().filter(|c| !c.closing) else {
                return;
            };
            match conn.decoder.decode(&mut conn.read_buf) {
                Ok(Some(packet)) => self.on_packet(now, packet),
                Ok(None) => return,
                Err(e) => {
                    self.violation(&format!("malformed packet from the client: {e}"));
                    return;
                }
            }
        }
    }

    // ----- faults -----

    /// Resends an in-flight PUBLISH with DUP on the current connection, unprompted. Picks the
    /// `pick`-th candidate modulo their number; false if there is none.
    pub fn inject_resend(&mut self, pick: usize) -> bool {
        if !self.connected() {
            return false;
        }
        let Some(session) = self.session.as_ref() else {
            return false;
        };
        let candidates: Vec<&OutMsg> = session
            .outbound
            .iter()
            .filter(|m| matches!(m.state, OutState::AwaitPubAck | OutState::AwaitPubRec))
            .collect();
        if candidates.is_empty() {
            return false;
        }
        let msg = candidates[pick % candidates.len()].clone();
        self.send_out_publish(&msg, true);
        self.stats.spontaneous_resends += 1;
        true
    }

    // ----- what the client has read -----

    /// Called for every packet the client has read, in order: closes the client's flows.
    pub fn observe_delivered(&mut self, packet: &Packet) {
        let (id, done): (PacketId, fn(&OpenFlow) -> bool) = match packet {
            Packet::PubAck(_) if self.defect(Defect::KeepQos1FlowsOpen) => return,
            Packet::PubAck(a) => (a.packet_id, |f| {
                matches!(
                    f,
                    OpenFlow::Publish {
                        qos: QoS::AtLeastOnce,
                        ..
                    }
                )
            }),
            Packet::PubComp(c) => (c.packet_id, |f| {
                matches!(
                    f,
                    OpenFlow::Publish {
                        qos: QoS::ExactlyOnce,
                        ..
                    }
                )
            }),
            Packet::PubRec(r) if !r.reason_code.is_success() => {
                (r.packet_id, |f| matches!(f, OpenFlow::Publish { .. }))
            }
            Packet::SubAck(SubAck { packet_id, .. })
            | Packet::UnsubAck(UnsubAck { packet_id, .. }) => {
                (*packet_id, |f| *f == OpenFlow::Request)
            }
            _ => return,
        };
        if self.client_open.get(&id.get()).is_some_and(done) {
            self.client_open.remove(&id.get());
        }
    }

    /// The broker restarts without persistence: the session (subscriptions, messages for the
    /// client, QoS 2 state) is gone. The connection must have been cut first.
    pub fn forget_session(&mut self) {
        assert!(self.conn.is_none(), "the connection dies with the broker");
        self.drop_session();
        self.lost_since_connack = true;
        self.stats.sessions_lost += 1;
        // A client that missed the CONNACK saying so may go on with its flows: a real broker
        // answers their PUBREL (and the window they take) as it would any stale one.
        self.allow_stale_pubrel = true;
    }

    /// The client process restarted: requests it had not seen answered are forgotten.
    pub fn client_restarted(&mut self) {
        self.client_open.retain(|_, f| *f != OpenFlow::Request);
    }

    // ----- packets -----

    fn connected(&self) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|c| c.connected && !c.closing)
    }

    fn version(&self) -> ProtocolVersion {
        self.conn
            .as_ref()
            .map_or(ProtocolVersion::V3_1_1, |c| c.version)
    }

    fn send(&mut self, packet: Packet) {
        let version = self.version();
        if self.conn.as_ref().is_some_and(|c| !c.closing) {
            packet
                .encode(version, &mut self.out)
                .expect("the broker encodes only valid packets");
        }
    }

    fn violation(&mut self, what: &str) {
        self.violations.push(what.to_string());
        if let Some(conn) = self.conn.as_mut() {
            conn.closing = true;
        }
    }

    fn on_packet(&mut self, now: Instant, packet: Packet) {
        let connected = self.conn.as_ref().is_some_and(|c| c.connected);
        let authenticating = self
            .conn
            .as_ref()
            .is_some_and(|c| c.pending_connect.is_some());
        match packet {
            Packet::Connect(c) if !connected && !authenticating => self.on_connect(now, *c),
            Packet::Connect(_) => self.violation("second CONNECT [MQTT-3.1.0-2 v3.1.1 v5.0]"),
            Packet::Auth(a) => self.on_auth(now, a),
            Packet::Disconnect(_) if authenticating => {
                if let Some(conn) = self.conn.as_mut() {
                    conn.closing = true;
                }
            }
            other if authenticating => self.violation(&format!(
                "{:?} before CONNACK with an Authentication Method [MQTT-3.1.2-30 v5.0]",
                other.packet_type()
            )),
            other if !connected => self.violation(&format!(
                "{:?} before CONNECT [MQTT-3.1.0-1 v3.1.1 v5.0]",
                other.packet_type()
            )),
            Packet::Publish(p) => self.on_publish(p),
            Packet::PubAck(a) => self.on_puback(a),
            Packet::PubRec(r) => self.on_pubrec(r),
            Packet::PubRel(r) => self.on_pubrel(r),
            Packet::PubComp(c) => self.on_pubcomp(c),
            Packet::Subscribe(s) => self.on_subscribe(s),
            Packet::Unsubscribe(u) => self.on_unsubscribe(u),
            Packet::PingReq => {
                self.stats.pings += 1;
                self.send(Packet::PingResp);
            }
            Packet::Disconnect(_) => {
                if let Some(conn) = self.conn.as_mut() {
                    conn.closing = true;
                }
            }
            other => self.violation(&format!("a client never sends {:?}", other.packet_type())),
        }
    }

    fn drop_session(&mut self) {
        if let Some(session) = self.session.take() {
            for m in session.outbound {
                self.discarded.insert(m.msg_id);
            }
        }
        // A new session starts with no flows of the client's open either.
        self.client_open.clear();
    }

    fn on_connect(&mut self, now: Instant, connect: Connect) {
        self.stats.connects += 1;
        let version = connect.protocol;
        let method = connect.properties.authentication_method.as_deref();
        let required = self.toy.is_some() && version.is_v5();
        if method != required.then_some(METHOD) {
            return self.violation(&format!(
                "CONNECT with authentication method {method:?}, the broker requires {:?}",
                required.then_some(METHOD)
            ));
        }
        if required {
            let data = connect.properties.authentication_data.clone();
            let Some(toy) = self.toy.as_mut() else {
                return;
            };
            match toy.start(data.as_deref()) {
                Ok(nonce) => {
                    let conn = self.conn.as_mut().expect("CONNECT arrives on a connection");
                    conn.version = version;
                    conn.decoder.set_version(version);
                    conn.pending_connect = Some(Box::new(connect));
                    self.challenge(nonce);
                }
                Err(e) => self.violation(&format!("CONNECT: {e}")),
            }
            return;
        }
        self.accept_connect(now, connect);
    }

    /// Sends AUTH with `reason_code`, the method and `data`.
    fn send_auth(&mut self, reason_code: AuthReasonCode, data: Bytes) {
        self.send(Packet::Auth(Auth {
            reason_code,
            properties: AuthProperties {
                authentication_method: Some(MqttString::new(METHOD).expect("valid method")),
                authentication_data: Some(data),
                ..Default::default()
            }
            .into(),
        }));
    }

    /// [MQTT-4.12.0-2 v5.0]: more authentication data, with 0x18.
    fn challenge(&mut self, nonce: Bytes) {
        self.stats.challenges += 1;
        self.send_auth(AuthReasonCode::ContinueAuthentication, nonce);
    }

    /// The proof the broker accepts with, forged under [`Defect::ForgeProof`].
    fn proof(&self) -> Bytes {
        match (&self.toy, self.defect(Defect::ForgeProof)) {
            (Some(toy), false) => toy.proof(),
            _ => Bytes::from_static(b"forged!!"),
        }
    }

    fn on_auth(&mut self, now: Instant, auth: Auth) {
        let (authenticating, reauthenticating, connected) = match self.conn.as_ref() {
            Some(c) => (c.pending_connect.is_some(), c.reauthenticating, c.connected),
            None => return,
        };
        if self.toy.is_none() || !(authenticating || connected) {
            // [MQTT-4.12.0-7 v5.0]
            return self.violation("AUTH without an Authentication Method in CONNECT");
        }
        if auth.properties.authentication_method.as_deref() != Some(METHOD) {
            // [MQTT-4.12.0-5 v5.0] [MQTT-4.12.1-1 v5.0]
            return self.violation(&format!(
                "AUTH with method {:?}, CONNECT had {METHOD:?}",
                auth.properties.authentication_method
            ));
        }
        let data = auth.properties.authentication_data.clone();
        match auth.reason_code {
            // [MQTT-4.12.0-3 v5.0]
            AuthReasonCode::ContinueAuthentication if authenticating || reauthenticating => {
                let answer = self.toy.as_mut().expect("checked").answer(data.as_deref());
                match answer {
                    Ok(Some(nonce)) => self.challenge(nonce),
                    Ok(None) if authenticating => {
                        self.stats.authentications += 1;
                        let connect = self
                            .conn
                            .as_mut()
                            .and_then(|c| c.pending_connect.take())
                            .expect("authenticating");
                        self.accept_connect(now, *connect);
                    }
                    Ok(None) => {
                        self.stats.reauths_completed += 1;
                        if let Some(conn) = self.conn.as_mut() {
                            conn.reauthenticating = false;
                        }
                        let proof = self.proof();
                        self.send_auth(AuthReasonCode::Success, proof);
                    }
                    Err(e) => self.violation(&format!("AUTH: {e}")),
                }
            }
            AuthReasonCode::ReAuthenticate if connected && !reauthenticating => {
                self.stats.reauths_started += 1;
                if self.defect(Defect::IgnoreReauth) {
                    return;
                }
                let started = self.toy.as_mut().expect("checked").start(data.as_deref());
                match started {
                    Ok(nonce) => {
                        if let Some(conn) = self.conn.as_mut() {
                            conn.reauthenticating = true;
                        }
                        self.challenge(nonce);
                    }
                    Err(e) => self.violation(&format!("re-authentication: {e}")),
                }
            }
            other => self.violation(&format!(
                "AUTH {other:?} out of place (authenticating {authenticating}, re-authenticating \
                 {reauthenticating})"
            )),
        }
    }

    /// Takes the connection: the session, CONNACK, resends.
    fn accept_connect(&mut self, now: Instant, connect: Connect) {
        let version = connect.protocol;
        let v5 = version.is_v5();
        if let Some(session) = &self.session {
            let expired = match (session.expiry, session.disconnected_at) {
                (Some(secs), Some(at)) => now >= at + Duration::from_secs(u64::from(secs)),
                _ => false,
            };
            if expired {
                self.drop_session();
            }
        }
        if connect.clean_start {
            // [MQTT-3.1.2-6 v3.1.1] / [MQTT-3.1.2-4 v5.0]
            self.drop_session();
        }
        let present = self.session.is_some();
        if present {
            self.stats.sessions_resumed += 1;
        }
        let session = self.session.get_or_insert_with(BrokerSession::new);
        session.expiry = if v5 {
            Some(connect.properties.session_expiry_interval.unwrap_or(0))
        } else if connect.clean_start {
            Some(0)
        } else {
            None
        };
        session.disconnected_at = None;
        if self.config.defect == Some(Defect::ForgetQos2OnReconnect) {
            session.inbound_qos2.clear();
        }
        let conn = self.conn.as_mut().expect("CONNECT arrives on a connection");
        conn.connected = true;
        conn.version = version;
        conn.decoder.set_version(version);
        // [MQTT-3.2.2-21 v5.0]: a Server Keep Alive replaces the client's.
        let keep_alive = match self.config.server_keep_alive {
            Some(ka) if v5 => ka,
            _ => connect.keep_alive,
        };
        conn.keep_alive = (keep_alive > 0).then(|| Duration::from_secs(u64::from(keep_alive)));
        conn.client_alias_maximum = if v5 {
            connect.properties.topic_alias_maximum.unwrap_or(0)
        } else {
            0
        };
        conn.client_receive_maximum = if v5 {
            connect
                .properties
                .receive_maximum
                .map_or(u16::MAX, NonZeroU16::get)
        } else {
            u16::MAX
        };
        let mut connack = ConnAck::accepted(present);
        if v5 {
            let understate = u16::from(self.defect(Defect::UnderstateReceiveMaximum));
            connack.properties.receive_maximum = self
                .config
                .receive_maximum
                .and_then(|m| NonZeroU16::new(m + understate));
            if self.config.topic_alias_maximum > 0 {
                connack.properties.topic_alias_maximum = Some(self.config.topic_alias_maximum);
            }
            connack.properties.server_keep_alive = self.config.server_keep_alive;
            if self.toy.is_some() {
                // [MQTT-4.12.0-5 v5.0]: the method again, and the broker's proof.
                connack.properties.authentication_method =
                    Some(MqttString::new(METHOD).expect("valid"));
                connack.properties.authentication_data = Some(self.proof());
            }
        }
        let lost = std::mem::take(&mut self.lost_since_connack);
        self.connacks.push((present, lost));
        if self.fresh_connack_unseen {
            self.fresh_connack_missed = true;
        }
        self.fresh_connack_unseen = !present && lost;
        self.send(Packet::from(connack));
        // [MQTT-4.4.0-1 v3.1.1 v5.0]: resend unacknowledged PUBLISH (with DUP) and PUBREL, in
        // order.
        let mut resend: Vec<OutMsg> = self
            .session
            .iter()
            .flat_map(|s| s.outbound.iter())
            .filter(|m| m.state != OutState::Queued)
            .cloned()
            .collect();
        if self.defect(Defect::ResendInReverse) {
            resend.reverse();
        }
        if self.defect(Defect::NoResendOnReconnect) {
            resend.clear();
        }
        for msg in resend {
            self.stats.resent_on_reconnect += 1;
            match msg.state {
                OutState::AwaitPubComp => {
                    let id = msg.packet_id.expect("in flight with an id");
                    self.send(Packet::PubRel(PubRel::new(id)));
                }
                _ => self.send_out_publish(&msg, true),
            }
        }
        self.pump();
    }

    /// Checks a PUBLISH or SUBSCRIBE from the client against the flows it has open.
    fn open_flow(&mut self, id: PacketId, flow: OpenFlow, dup: bool) {
        let existing = self.client_open.get(&id.get()).copied();
        match (existing, flow) {
            (None, OpenFlow::Publish { .. }) => {
                let open = self
                    .client_open
                    .values()
                    .filter(|f| matches!(f, OpenFlow::Publish { .. }))
                    .count();
                let limit = self
                    .config
                    .receive_maximum
                    .filter(|_| self.version().is_v5());
                if let Some(limit) = limit {
                    // A flow brought back from the dead by a store fault is one the client
                    // cannot know is over: it may exceed the quota by those.
                    let stale = usize::from(self.allow_stale_pubrel) * usize::from(limit);
                    if open >= usize::from(limit) + stale {
                        // [MQTT-3.3.4-9 v5.0]
                        self.violation(&format!(
                            "PUBLISH {id} exceeds the Receive Maximum {limit} ({open} open)"
                        ));
                    }
                }
                self.client_open.insert(id.get(), flow);
            }
            (None, OpenFlow::Request) => {
                self.client_open.insert(id.get(), flow);
            }
            (Some(OpenFlow::Request), OpenFlow::Request) => {}
            (Some(old), OpenFlow::Publish { .. }) if old == flow && dup => {}
            (Some(old), _) => {
                // [MQTT-2.3.1-2 v3.1.1] / [MQTT-2.2.1-3 v5.0]
                self.violation(&format!(
                    "packet identifier {id} reused while its flow {old:?} is open (new: {flow:?}, dup {dup})"
                ));
            }
        }
    }

    fn on_publish(&mut self, mut publish: Publish) {
        if self.defect(Defect::StripDup) {
            publish.dup = false;
        }
        let Some(msg_id) = payload_id(&publish.payload) else {
            return self.violation("PUBLISH with a payload the test did not write");
        };
        if self.version().is_v5() {
            if let Some(alias) = publish.properties.topic_alias {
                let max = self.config.topic_alias_maximum;
                if alias.get() > max {
                    // [MQTT-3.3.2-9 v5.0]
                    return self.violation(&format!("topic alias {alias} above maximum {max}"));
                }
                let conn = self.conn.as_mut().expect("connected");
                if publish.topic.is_empty() {
                    match conn.aliases.get(&alias.get()) {
                        Some(topic) => publish.topic = topic.clone(),
                        None => return self.violation(&format!("unknown topic alias {alias}")),
                    }
                } else {
                    conn.aliases.insert(alias.get(), publish.topic.clone());
                }
            }
        }
        let qos = publish.qos();
        let session = self
            .session
            .as_mut()
            .expect("a connected client has a session");
        let resent = session.seen.contains(&msg_id);
        if resent && qos != QoS::AtMostOnce && !publish.dup {
            // [MQTT-3.3.1-1 v3.1.1 v5.0]: a resend carries DUP.
            return self.violation(&format!(
                "message {msg_id} sent again without DUP (packet {:?})",
                publish.packet_id()
            ));
        }
        if qos == QoS::AtMostOnce && resent {
            return self.violation(&format!("QoS 0 message {msg_id} sent twice"));
        }
        session.seen.insert(msg_id);
        match publish.qos_pid {
            QosPid::AtMostOnce => self.accept(msg_id, &publish),
            QosPid::AtLeastOnce(id) => {
                self.open_flow(id, OpenFlow::Publish { msg_id, qos }, publish.dup);
                let mut ack = PubAck::new(id);
                if self.defect(Defect::RejectQos1) && self.version().is_v5() {
                    ack.reason_code = mqtt_proto::PubAckReasonCode::UnspecifiedError;
                } else {
                    self.accept(msg_id, &publish);
                }
                // [MQTT-4.3.2-2 v3.1.1] / [MQTT-4.3.2-4 v5.0]
                self.send(Packet::PubAck(ack));
            }
            QosPid::ExactlyOnce(id) => {
                self.open_flow(id, OpenFlow::Publish { msg_id, qos }, publish.dup);
                let session = self.session.as_mut().expect("session");
                if session.inbound_qos2.insert(id.get()) {
                    self.accept(msg_id, &publish);
                } else {
                    self.stats.duplicates_from_client += 1;
                }
                // [MQTT-4.3.3-9 v5.0]: PUBREC for every copy until PUBREL.
                self.send(Packet::PubRec(PubRec::new(id)));
            }
        }
    }

    /// A message from the client is taken over by the broker: route it to the subscriptions.
    fn accept(&mut self, msg_id: u64, publish: &Publish) {
        self.stats.accepted += 1;
        let session = self.session.as_mut().expect("session");
        // Overlapping subscriptions give one copy at the highest QoS (5.0 spec 4.7.1.3).
        let delivery = session
            .subscriptions
            .values()
            .filter(|(filter, _)| filter.matches(&publish.topic))
            .map(|(_, max)| (*max).min(publish.qos()))
            .max();
        let log = self.accepted.entry(msg_id).or_default();
        if log.is_empty() {
            self.first_accepted
                .push((msg_id, publish.topic.as_str().to_string(), publish.qos()));
        } else {
            self.stats.duplicates_from_client += 1;
        }
        log.push(delivery);
        let copies = match self.config.defect {
            Some(Defect::LoseRoutes) if msg_id.is_multiple_of(3) => 0,
            Some(Defect::RouteQos2Twice) if delivery == Some(QoS::ExactlyOnce) => 2,
            _ => 1,
        };
        if let Some(qos) = delivery {
            for _ in 0..copies {
                session.outbound.push_back(OutMsg {
                    msg_id,
                    topic: publish.topic.clone(),
                    payload: publish.payload.clone(),
                    qos,
                    packet_id: None,
                    state: OutState::Queued,
                });
            }
            self.pump();
        }
    }

    /// Sends queued messages in order while the window allows.
    fn pump(&mut self) {
        if !self.connected() {
            return;
        }
        let receive_maximum = self
            .conn
            .as_ref()
            .map_or(u16::MAX, |c| c.client_receive_maximum);
        let mut window = usize::from(self.config.max_outbound.min(receive_maximum).max(1));
        if self.defect(Defect::IgnoreWindow) {
            window = usize::MAX;
        }
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let mut inflight = session.inflight();
        let mut to_send = Vec::new();
        let mut index = 0;
        while index < session.outbound.len() {
            let msg = &session.outbound[index];
            if msg.state != OutState::Queued {
                index += 1;
                continue;
            }
            if msg.qos == QoS::AtMostOnce {
                let msg = session.outbound.remove(index).expect("index in range");
                to_send.push(msg);
                continue;
            }
            if inflight >= window {
                break;
            }
            let id = session.allocate_id();
            let msg = &mut session.outbound[index];
            msg.packet_id = Some(id);
            msg.state = match msg.qos {
                QoS::AtLeastOnce => OutState::AwaitPubAck,
                _ => OutState::AwaitPubRec,
            };
            to_send.push(msg.clone());
            inflight += 1;
            index += 1;
        }
        for msg in to_send {
            self.send_out_publish(&msg, false);
        }
    }

    fn send_out_publish(&mut self, msg: &OutMsg, dup: bool) {
        let qos_pid = match (msg.qos, msg.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => QosPid::AtLeastOnce(id),
            (QoS::ExactlyOnce, Some(id)) => QosPid::ExactlyOnce(id),
            _ => QosPid::AtMostOnce,
        };
        let mut publish = Publish::new(msg.topic.clone(), qos_pid, msg.payload.clone());
        publish.dup = dup && qos_pid != QosPid::AtMostOnce;
        // 5.0 topic aliases towards the client, within its maximum [MQTT-3.3.2-10 v5.0]: the topic
        // goes in full with a new alias once per connection, then the alias alone.
        if let Some(conn) = self.conn.as_mut().filter(|c| c.version.is_v5()) {
            let known = conn.out_aliases.get(&msg.topic).copied();
            let next = conn.out_aliases.len() + 1;
            if let Some(alias) = known {
                publish.topic = TopicName::empty_for_alias();
                publish.properties.topic_alias = NonZeroU16::new(alias);
                self.stats.aliased_publishes += 1;
            } else if next <= usize::from(conn.client_alias_maximum) {
                let alias = u16::try_from(next).expect("below a u16 maximum");
                conn.out_aliases.insert(msg.topic.clone(), alias);
                publish.properties.topic_alias = NonZeroU16::new(alias);
            }
        }
        self.stats.delivered_publishes += 1;
        self.send(Packet::Publish(publish));
    }

    fn find_out(&self, id: PacketId, state: OutState) -> Option<usize> {
        self.session.as_ref().and_then(|s| {
            s.outbound
                .iter()
                .position(|m| m.packet_id == Some(id) && m.state == state)
        })
    }

    fn on_puback(&mut self, ack: PubAck) {
        match self.find_out(ack.packet_id, OutState::AwaitPubAck) {
            Some(i) => {
                self.session.as_mut().expect("session").outbound.remove(i);
                self.pump();
            }
            // A second answer to a resent PUBLISH.
            None => self.stats.stray_acks += 1,
        }
    }

    fn on_pubrec(&mut self, rec: PubRec) {
        let id = rec.packet_id;
        if let Some(i) = self.find_out(id, OutState::AwaitPubRec) {
            self.session.as_mut().expect("session").outbound[i].state = OutState::AwaitPubComp;
            self.send(Packet::PubRel(PubRel::new(id)));
        } else if self.find_out(id, OutState::AwaitPubComp).is_some() {
            // A PUBREC for a resent PUBLISH: answer it like the first.
            self.stats.stray_acks += 1;
            self.send(Packet::PubRel(PubRel::new(id)));
        } else {
            self.stats.stray_acks += 1;
        }
    }

    fn on_pubcomp(&mut self, comp: PubComp) {
        match self.find_out(comp.packet_id, OutState::AwaitPubComp) {
            Some(i) => {
                self.session.as_mut().expect("session").outbound.remove(i);
                self.pump();
            }
            None => self.stats.stray_acks += 1,
        }
    }

    fn on_pubrel(&mut self, rel: PubRel) {
        let id = rel.packet_id;
        match self.client_open.get(&id.get()) {
            Some(OpenFlow::Publish {
                qos: QoS::ExactlyOnce,
                ..
            }) => {}
            None if self.allow_stale_pubrel => {
                self.stats.stale_pubrels += 1;
                let mut comp = PubComp::new(id);
                if self.version().is_v5() {
                    comp.reason_code = PubRelReasonCode::PacketIdentifierNotFound;
                }
                self.send(Packet::PubComp(comp));
                return;
            }
            other => {
                return self.violation(&format!(
                    "PUBREL {id} for a flow that is not an open QoS 2 PUBLISH ({other:?})"
                ));
            }
        }
        let session = self.session.as_mut().expect("session");
        let mut comp = PubComp::new(id);
        if !session.inbound_qos2.remove(&id.get()) && self.version().is_v5() {
            // The PUBCOMP for an earlier copy of this PUBREL was lost with a connection.
            comp.reason_code = PubRelReasonCode::PacketIdentifierNotFound;
        }
        // [MQTT-4.3.3-11 v5.0] / [MQTT-4.3.3-2 v3.1.1]
        self.send(Packet::PubComp(comp));
    }

    fn on_subscribe(&mut self, subscribe: Subscribe) {
        self.open_flow(subscribe.packet_id, OpenFlow::Request, false);
        let session = self.session.as_mut().expect("session");
        let mut codes = Vec::new();
        for s in subscribe.filters {
            // [MQTT-3.8.4-3 v3.1.1 v5.0]: a subscription to an existing filter replaces it.
            session.subscriptions.insert(
                s.filter.as_str().to_string(),
                (s.filter.clone(), s.options.qos),
            );
            codes.push(match s.options.qos {
                QoS::AtMostOnce => SubAckReasonCode::GrantedQoS0,
                QoS::AtLeastOnce => SubAckReasonCode::GrantedQoS1,
                QoS::ExactlyOnce => SubAckReasonCode::GrantedQoS2,
            });
        }
        self.send(Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            properties: Default::default(),
            reason_codes: codes,
        }));
    }

    fn on_unsubscribe(&mut self, unsubscribe: Unsubscribe) {
        self.open_flow(unsubscribe.packet_id, OpenFlow::Request, false);
        let session = self.session.as_mut().expect("session");
        let mut codes = Vec::new();
        for filter in unsubscribe.filters {
            codes.push(match session.subscriptions.remove(filter.as_str()) {
                Some(_) => UnsubAckReasonCode::Success,
                None => UnsubAckReasonCode::NoSubscriptionExisted,
            });
        }
        if !self.version().is_v5() {
            codes.clear();
        }
        self.send(Packet::UnsubAck(UnsubAck {
            packet_id: unsubscribe.packet_id,
            properties: Default::default(),
            reason_codes: codes,
        }));
    }
}
