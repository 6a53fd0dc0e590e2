//! Drives a client session with arbitrary sequences of inputs and commands.
//!
//! The input is a configuration with small limits and a random protocol version, then a list of
//! operations: time passing, bytes from the server (arbitrary, or well-formed packets encoded
//! for the version, or acknowledgements and PUBLISH packets with small identifiers that match
//! the session's flows), application commands (publish, subscribe, unsubscribe, ack, auth,
//! disconnect), the transport closing or opening, and a restart from the session's store.
//! Properties checked:
//!
//! - nothing panics;
//! - `inflight() <= max_inflight`; `queued() <= max_queued + max_inflight` (a discarded
//!   session queues its unacknowledged messages again ahead of the queue, which may hold up to
//!   `max_inflight` more than `max_queued` then);
//! - every byte the session writes decodes as whole, well-formed packets of its version;
//! - after `handle_timeout(now)`, `poll_timeout()` is past `now` or `None`: no busy loop.
#![no_main]

use std::num::NonZeroU16;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqtt_proto::{
    Auth, ConnAck, Decoder, Packet, PacketId, ProtocolVersion, PubAck, PubComp, PubRec, PubRel,
    Publish, PublishProperties, QoS, QosPid, SubAck, SubAckReasonCode, Subscription, TopicFilter,
    TopicName, UnsubAck,
};
use mqtt_session::{AckToken, Config, Event, MemoryStore, Message, PublishToken, Session};

const TOPICS: [&str; 4] = ["a", "a/b", "b", "$SYS/x"];
const FILTERS: [&str; 5] = ["a", "a/#", "+/b", "#", "b"];

#[derive(Debug, Arbitrary)]
struct Limits {
    version: ProtocolVersion,
    clean_start: bool,
    keep_alive: u8,
    max_inflight: u8,
    max_queued: u8,
    manual_acks: bool,
    receive_maximum: Option<u8>,
    topic_alias_maximum: u8,
    session_expiry: Option<u32>,
    max_packet_size: Option<u16>,
}

#[derive(Debug, Arbitrary)]
enum Op {
    /// Time passes; the session's timer fires if due.
    Advance(u16),
    /// Jump to the session's deadline and fire it.
    Timer,
    /// Raw bytes from the server, through `handle_read` or `handle_read_buf`.
    Bytes {
        data: Vec<u8>,
        by_buf: bool,
    },
    /// An arbitrary packet, encoded for the session's version.
    Packet(Packet),
    /// A successful CONNACK.
    Accept {
        session_present: bool,
        receive_maximum: u8,
        topic_alias_maximum: u8,
    },
    /// An acknowledgement with a small identifier.
    Ack {
        kind: u8,
        id: u8,
        reason: u8,
    },
    /// A PUBLISH from the server with a small identifier.
    ServerPublish {
        qos: QoS,
        id: u8,
        dup: bool,
        topic: u8,
        alias: u8,
    },
    Publish {
        topic: u8,
        qos: QoS,
        retain: bool,
        len: u8,
        alias: bool,
    },
    PublishAny(TopicName, QoS, Vec<u8>, PublishProperties),
    /// A publish with a token chosen above `next_publish_token`.
    PublishWithToken {
        topic: u8,
        qos: QoS,
        skip: u8,
    },
    Subscribe {
        filter: u8,
        qos: QoS,
    },
    SubscribeAny(Vec<Subscription>),
    Unsubscribe {
        filter: u8,
    },
    AppAck(u8),
    Auth(Auth),
    Disconnect,
    Closed,
    Connected,
    Restart,
}

#[derive(Debug, Arbitrary)]
struct Input {
    limits: Limits,
    ops: Vec<Op>,
}

fn config(l: &Limits) -> Config {
    let mut config = Config::new("fuzz")
        .expect("valid client id")
        .version(l.version)
        .clean_start(l.clean_start)
        .keep_alive(Duration::from_secs(u64::from(l.keep_alive % 8)))
        .max_inflight(u16::from(l.max_inflight % 8))
        .max_queued(usize::from(l.max_queued % 8))
        .manual_acks(l.manual_acks);
    if let Some(size) = l.max_packet_size {
        config = config.max_packet_size(usize::from(size).max(16));
    }
    if l.version.is_v5() {
        config.properties.receive_maximum = l
            .receive_maximum
            .and_then(|m| NonZeroU16::new(u16::from(m % 8)));
        config.properties.topic_alias_maximum = Some(u16::from(l.topic_alias_maximum % 4));
        config.properties.session_expiry_interval = l.session_expiry;
    }
    config
}

fn id(n: u8) -> PacketId {
    PacketId::new(u16::from(n % 16) + 1).expect("non-zero")
}

struct Harness {
    session: Session,
    config: Config,
    store: MemoryStore,
    version: ProtocolVersion,
    now: Instant,
    acks: Vec<AckToken>,
}

impl Harness {
    fn check(&mut self) {
        let max_inflight = usize::from(self.config.max_inflight);
        assert!(
            self.session.inflight() <= max_inflight,
            "{} in flight, max {max_inflight}",
            self.session.inflight()
        );
        let max_queued = self.config.max_queued + max_inflight;
        assert!(
            self.session.queued() <= max_queued,
            "{} queued, bound {max_queued}",
            self.session.queued()
        );
        let mut out = BytesMut::new();
        self.session.poll_transmit(&mut out);
        let decoder = Decoder::new(self.version);
        while !out.is_empty() {
            match decoder.decode(&mut out) {
                Ok(Some(_)) => {}
                other => panic!("the session wrote bytes that are not a packet: {other:?}"),
            }
        }
        while let Some(event) = self.session.poll_event() {
            if let Event::Message {
                ack: Some(token), ..
            } = event
            {
                self.acks.push(token);
            }
        }
    }

    fn fire_timer(&mut self) {
        if self.session.poll_timeout().is_some_and(|t| t <= self.now) {
            self.session.handle_timeout(self.now);
            let next = self.session.poll_timeout();
            assert!(
                next.is_none_or(|t| t > self.now),
                "handle_timeout left the deadline in the past"
            );
        }
    }

    fn server(&mut self, packet: Packet) {
        let mut buf = BytesMut::new();
        if packet.encode(self.version, &mut buf).is_ok() {
            self.session.handle_read(self.now, &buf);
        }
    }

    fn apply(&mut self, op: Op) {
        let now = self.now;
        match op {
            Op::Advance(ms) => {
                self.now += Duration::from_millis(u64::from(ms) * 16);
                self.fire_timer();
            }
            Op::Timer => {
                if let Some(t) = self.session.poll_timeout() {
                    self.now = self.now.max(t);
                    self.fire_timer();
                }
            }
            Op::Bytes { data, by_buf } => {
                if by_buf {
                    let mut buf = BytesMut::from(&data[..]);
                    self.session.handle_read_buf(now, &mut buf);
                } else {
                    self.session.handle_read(now, &data);
                }
            }
            Op::Packet(packet) => self.server(packet),
            Op::Accept {
                session_present,
                receive_maximum,
                topic_alias_maximum,
            } => {
                let mut connack = ConnAck::accepted(session_present);
                if self.version.is_v5() {
                    connack.properties.receive_maximum =
                        NonZeroU16::new(u16::from(receive_maximum % 8));
                    connack.properties.topic_alias_maximum =
                        Some(u16::from(topic_alias_maximum % 4));
                }
                self.server(Packet::from(connack));
            }
            Op::Ack {
                kind,
                id: n,
                reason,
            } => {
                let pid = id(n);
                let packet = match kind % 6 {
                    0 => {
                        let mut a = PubAck::new(pid);
                        if reason & 1 == 1 {
                            a.reason_code = mqtt_proto::PubAckReasonCode::UnspecifiedError;
                        }
                        Packet::PubAck(a)
                    }
                    1 => {
                        let mut a = PubRec::new(pid);
                        if reason & 1 == 1 {
                            a.reason_code = mqtt_proto::PubAckReasonCode::UnspecifiedError;
                        }
                        Packet::PubRec(a)
                    }
                    2 => Packet::PubRel(PubRel::new(pid)),
                    3 => Packet::PubComp(PubComp::new(pid)),
                    4 => Packet::SubAck(SubAck {
                        packet_id: pid,
                        properties: Default::default(),
                        reason_codes: vec![SubAckReasonCode::GrantedQoS1; usize::from(reason % 3)],
                    }),
                    _ => Packet::UnsubAck(UnsubAck {
                        packet_id: pid,
                        properties: Default::default(),
                        reason_codes: Vec::new(),
                    }),
                };
                self.server(packet);
            }
            Op::ServerPublish {
                qos,
                id: n,
                dup,
                topic,
                alias,
            } => {
                let topic =
                    TopicName::new(TOPICS[usize::from(topic) % TOPICS.len()]).expect("valid topic");
                let mut publish = Publish::new(topic, QosPid::from_qos(qos, id(n)), &b"x"[..]);
                publish.dup = dup && qos != QoS::AtMostOnce;
                if self.version.is_v5() && alias % 3 != 0 {
                    publish.properties.topic_alias = NonZeroU16::new(u16::from(alias % 3));
                    if alias & 0x80 != 0 {
                        publish.topic = TopicName::empty_for_alias();
                    }
                }
                self.server(Packet::Publish(publish));
            }
            Op::Publish {
                topic,
                qos,
                retain,
                len,
                alias,
            } => {
                let mut message = Message::new(
                    TOPICS[usize::from(topic) % TOPICS.len()],
                    vec![0x5A; usize::from(len)],
                )
                .expect("valid topic")
                .qos(qos)
                .retain(retain);
                if alias {
                    message.properties.topic_alias = NonZeroU16::new(1);
                }
                let _ = self.session.publish(now, message);
            }
            Op::PublishAny(topic, qos, payload, properties) => {
                let message = Message::with_topic(topic, payload)
                    .qos(qos)
                    .properties(properties);
                let _ = self.session.publish(now, message);
            }
            Op::PublishWithToken { topic, qos, skip } => {
                let message = Message::new(TOPICS[usize::from(topic) % TOPICS.len()], "t")
                    .expect("valid topic")
                    .qos(qos);
                let next = self.session.next_publish_token();
                let token = PublishToken(next.0 + u64::from(skip));
                let _ = self.session.publish_with_token(now, message, token);
            }
            Op::Subscribe { filter, qos } => {
                let filter = TopicFilter::new(FILTERS[usize::from(filter) % FILTERS.len()])
                    .expect("valid filter");
                let _ = self
                    .session
                    .subscribe(now, vec![Subscription::new(filter, qos)]);
            }
            Op::SubscribeAny(subscriptions) => {
                let _ = self.session.subscribe(now, subscriptions);
            }
            Op::Unsubscribe { filter } => {
                let filter = TopicFilter::new(FILTERS[usize::from(filter) % FILTERS.len()])
                    .expect("valid filter");
                let _ = self.session.unsubscribe(now, vec![filter]);
            }
            Op::AppAck(pick) => {
                if !self.acks.is_empty() {
                    let token = self.acks.remove(usize::from(pick) % self.acks.len());
                    let _ = self.session.ack(now, token);
                }
            }
            Op::Auth(auth) => {
                let _ = self.session.auth(now, auth);
            }
            Op::Disconnect => self.session.disconnect(now),
            Op::Closed => self.session.handle_closed(now),
            Op::Connected => {
                self.session.handle_closed(now);
                self.session.handle_connected(now);
            }
            Op::Restart => {
                if let Ok(session) =
                    Session::with_store(self.config.clone(), Box::new(self.store.clone()))
                {
                    self.session = session;
                    self.acks.clear();
                }
            }
        }
        self.check();
    }
}

fuzz_target!(|input: Input| {
    let config = config(&input.limits);
    let store = MemoryStore::new();
    let Ok(session) = Session::with_store(config.clone(), Box::new(store.clone())) else {
        return;
    };
    let mut h = Harness {
        session,
        version: config.version,
        config,
        store,
        now: Instant::now(),
        acks: Vec::new(),
    };
    h.session.handle_connected(h.now);
    h.check();
    for op in input.ops.into_iter().take(256) {
        h.apply(op);
    }
});
