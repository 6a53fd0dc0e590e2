//! The embedded broker driven over raw sockets with the codec, so no async runtime is needed
//! and every byte is the test's to choose.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqtt_proto::{
    ConnAck, Connect, ConnectReasonCode, Decoder, Disconnect, DisconnectReasonCode, LastWill,
    MqttString, Packet, PacketId, ProtocolVersion, PubAck, PubComp, PubRec, PubRel, Publish, QoS,
    QosPid, RetainHandling, SubAckReasonCode, Subscribe, Subscription, TopicFilter, TopicName,
    UserProperty,
};

use super::{EmbeddedBroker, Limits};

use ProtocolVersion::{V3_1, V3_1_1, V5};
use QoS::{AtLeastOnce, AtMostOnce, ExactlyOnce};

/// How long a test waits for a packet that should come.
const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be sure a packet does not come.
const QUIET: Duration = Duration::from_millis(300);

fn broker() -> EmbeddedBroker {
    EmbeddedBroker::start(Limits::default()).unwrap()
}

fn pid(id: u16) -> PacketId {
    PacketId::new(id).unwrap()
}

fn topic(name: &str) -> TopicName {
    TopicName::new(name).unwrap()
}

/// A client speaking raw MQTT over a blocking socket.
struct Raw {
    stream: TcpStream,
    version: ProtocolVersion,
    decoder: Decoder,
    buf: BytesMut,
    next_id: u16,
}

impl Raw {
    /// A TCP connection, nothing sent yet.
    fn tcp(broker: &EmbeddedBroker, version: ProtocolVersion) -> Self {
        let stream = TcpStream::connect(broker.addr).unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            version,
            decoder: Decoder::new(version),
            buf: BytesMut::new(),
            next_id: 1000,
        }
    }

    /// Connects with `id`, a keep alive of 60 s, and checks the CONNACK.
    fn connect(broker: &EmbeddedBroker, version: ProtocolVersion, id: &str) -> Self {
        Self::connect_with(
            broker,
            Connect::new(version, MqttString::new(id).unwrap(), 60),
        )
        .0
    }

    /// Sends `connect`, checks the CONNACK accepts it without a session, and returns both.
    fn connect_with(broker: &EmbeddedBroker, connect: Connect) -> (Self, ConnAck) {
        let mut raw = Self::tcp(broker, connect.protocol);
        raw.send(connect.into());
        match raw.recv() {
            Some(Packet::ConnAck(connack)) => {
                assert_eq!(connack.reason_code, ConnectReasonCode::Success);
                // Clean sessions only.
                assert!(!connack.session_present);
                (raw, *connack)
            }
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    fn send(&mut self, packet: Packet) {
        let mut wire = BytesMut::new();
        packet.encode(self.version, &mut wire).unwrap();
        self.stream.write_all(&wire).unwrap();
    }

    fn write_raw(&mut self, bytes: &[u8]) {
        // The broker may already have closed the connection: a failed write is fine.
        let _ = self.stream.write_all(bytes);
    }

    fn id(&mut self) -> PacketId {
        self.next_id += 1;
        pid(self.next_id)
    }

    /// The next packet within `wait`; `None` if the connection closed or nothing came.
    fn recv_within(&mut self, wait: Duration) -> Option<Packet> {
        let deadline = Instant::now() + wait;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if let Some(packet) = self.decoder.decode(&mut self.buf).unwrap() {
                return Some(packet);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn recv(&mut self) -> Option<Packet> {
        self.recv_within(WAIT)
    }

    /// Asserts that nothing arrives for a while.
    fn assert_quiet(&mut self) {
        if let Some(packet) = self.recv_within(QUIET) {
            panic!("expected nothing, got {packet:?}");
        }
    }

    /// Whether the broker closes the connection within `wait`; packets before are skipped.
    fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return false
                }
                Err(_) => return true,
            }
        }
    }

    fn subscribe_many(&mut self, filters: Vec<Subscription>) -> Vec<SubAckReasonCode> {
        let packet_id = self.id();
        self.send(Packet::Subscribe(Subscribe {
            packet_id,
            properties: Default::default(),
            filters,
        }));
        match self.recv() {
            Some(Packet::SubAck(suback)) => {
                assert_eq!(suback.packet_id, packet_id);
                suback.reason_codes
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    fn subscribe(&mut self, filter: &str, qos: QoS) -> SubAckReasonCode {
        let filter = TopicFilter::new(filter).unwrap();
        self.subscribe_many(vec![Subscription::new(filter, qos)])[0]
    }

    /// Publishes and completes the message's flow.
    fn publish(&mut self, name: &str, qos: QoS, retain: bool, payload: &str) {
        let mut publish = Publish::new(
            topic(name),
            QosPid::from_qos(qos, self.id()),
            payload.to_owned(),
        );
        publish.retain = retain;
        self.publish_packet(publish);
    }

    fn publish_packet(&mut self, publish: Publish) {
        let qos_pid = publish.qos_pid;
        self.send(publish.into());
        match qos_pid {
            QosPid::AtMostOnce => {}
            QosPid::AtLeastOnce(id) => {
                assert_eq!(self.recv(), Some(PubAck::new(id).into()));
            }
            QosPid::ExactlyOnce(id) => {
                assert_eq!(self.recv(), Some(PubRec::new(id).into()));
                self.send(PubRel::new(id).into());
                assert_eq!(self.recv(), Some(PubComp::new(id).into()));
            }
        }
    }

    /// The next message, acknowledged as its QoS asks (QoS 2: the PUBREL must come next).
    fn message(&mut self) -> Publish {
        let publish = match self.recv() {
            Some(Packet::Publish(publish)) => publish,
            other => panic!("expected PUBLISH, got {other:?}"),
        };
        match publish.qos_pid {
            QosPid::AtMostOnce => {}
            QosPid::AtLeastOnce(id) => self.send(PubAck::new(id).into()),
            QosPid::ExactlyOnce(id) => {
                self.send(PubRec::new(id).into());
                assert_eq!(self.recv(), Some(PubRel::new(id).into()));
                self.send(PubComp::new(id).into());
            }
        }
        publish
    }

    fn ping(&mut self) {
        self.send(Packet::PingReq);
        assert_eq!(self.recv(), Some(Packet::PingResp));
    }
}

/// Topic, QoS, RETAIN flag and payload of a message, for comparing.
fn summary(publish: &Publish) -> (String, QoS, bool, Bytes) {
    (
        publish.topic.as_str().to_owned(),
        publish.qos(),
        publish.retain,
        publish.payload.clone(),
    )
}

fn expect(name: &str, qos: QoS, retain: bool, payload: &str) -> (String, QoS, bool, Bytes) {
    (
        name.to_owned(),
        qos,
        retain,
        Bytes::from(payload.to_owned()),
    )
}

#[test]
fn delivers_at_the_lower_of_the_published_and_the_granted_qos() {
    // [MQTT-3.8.4-6] (3.1.1), [MQTT-3.8.4-8] (5.0)
    let broker = broker();
    let mut at_most_once = Raw::connect(&broker, V3_1_1, "sub0");
    let mut at_least_once = Raw::connect(&broker, V3_1_1, "sub1");
    let mut exactly_once = Raw::connect(&broker, V5, "sub2");
    assert_eq!(
        at_most_once.subscribe("q/#", AtMostOnce),
        SubAckReasonCode::GrantedQoS0
    );
    assert_eq!(
        at_least_once.subscribe("q/#", AtLeastOnce),
        SubAckReasonCode::GrantedQoS1
    );
    assert_eq!(
        exactly_once.subscribe("q/#", ExactlyOnce),
        SubAckReasonCode::GrantedQoS2
    );
    let mut publisher = Raw::connect(&broker, V3_1_1, "pub");
    for (qos, name) in [
        (AtMostOnce, "q/0"),
        (AtLeastOnce, "q/1"),
        (ExactlyOnce, "q/2"),
    ] {
        publisher.publish(name, qos, false, "hello");
    }
    for (subscriber, granted) in [
        (&mut at_most_once, AtMostOnce),
        (&mut at_least_once, AtLeastOnce),
        (&mut exactly_once, ExactlyOnce),
    ] {
        for (qos, name) in [
            (AtMostOnce, "q/0"),
            (AtLeastOnce, "q/1"),
            (ExactlyOnce, "q/2"),
        ] {
            let publish = subscriber.message();
            assert_eq!(
                summary(&publish),
                expect(name, qos.min(granted), false, "hello")
            );
            // Packet ids are the subscriber's own, not the publisher's.
            assert!(publish.packet_id().is_none_or(|id| id.get() < 1000));
        }
        subscriber.assert_quiet();
    }
}

#[test]
fn a_resent_qos2_publish_is_forwarded_once() {
    // [MQTT-4.3.3-2] (3.1.1), [MQTT-4.3.3-10] (5.0)
    let broker = broker();
    let mut subscriber = Raw::connect(&broker, V3_1_1, "sub");
    subscriber.subscribe("dup", ExactlyOnce);
    let mut publisher = Raw::connect(&broker, V3_1_1, "pub");
    let id = pid(7);
    let mut publish = Publish::new(topic("dup"), QosPid::ExactlyOnce(id), "once");
    publisher.send(publish.clone().into());
    assert_eq!(publisher.recv(), Some(PubRec::new(id).into()));
    publish.dup = true;
    publisher.send(publish.clone().into());
    assert_eq!(publisher.recv(), Some(PubRec::new(id).into()));
    assert_eq!(subscriber.message().payload, "once");
    subscriber.assert_quiet();
    publisher.send(PubRel::new(id).into());
    assert_eq!(publisher.recv(), Some(PubComp::new(id).into()));
    // Released: the id is new again.
    publish.dup = false;
    publisher.publish_packet(publish);
    assert_eq!(subscriber.message().payload, "once");
}

#[test]
fn wildcards_match_levels_but_not_dollar_topics() {
    let broker = broker();
    let mut sport = Raw::connect(&broker, V3_1_1, "sport");
    let filters = ["sport/+/player1", "sport/#"]
        .map(|f| Subscription::new(TopicFilter::new(f).unwrap(), AtLeastOnce));
    sport.subscribe_many(filters.to_vec());
    let mut everything = Raw::connect(&broker, V5, "everything");
    everything.subscribe("#", AtMostOnce);
    everything.subscribe("+/monitor/Clients", AtMostOnce);
    let mut system = Raw::connect(&broker, V3_1_1, "system");
    system.subscribe("$SYS/#", AtMostOnce);

    let mut publisher = Raw::connect(&broker, V3_1_1, "pub");
    publisher.publish("sport/tennis/player1", AtMostOnce, false, "a");
    publisher.publish("sport", AtMostOnce, false, "b");
    publisher.publish("sports", AtMostOnce, false, "c");
    publisher.publish("$SYS/monitor/Clients", AtMostOnce, false, "d");

    // Two matching subscriptions, one copy at their highest QoS [MQTT-3.3.5-1].
    let publish = sport.message();
    assert_eq!(
        summary(&publish),
        expect("sport/tennis/player1", AtMostOnce, false, "a")
    );
    // `#` matches its parent level too.
    assert_eq!(sport.message().payload, "b");
    sport.assert_quiet();
    let seen: Vec<_> = (0..3).map(|_| everything.message().payload).collect();
    assert_eq!(seen, ["a", "b", "c"]);
    // A leading wildcard does not match a `$` topic [MQTT-4.7.2-1].
    everything.assert_quiet();
    assert_eq!(system.message().payload, "d");
    system.assert_quiet();
}

#[test]
fn retained_messages_are_kept_replaced_and_deleted() {
    let broker = broker();
    let mut publisher = Raw::connect(&broker, V3_1_1, "pub");
    publisher.publish("r/a", AtLeastOnce, true, "one");
    publisher.publish("r/a", AtLeastOnce, true, "two");
    publisher.publish("r/b", AtMostOnce, true, "b");
    publisher.publish("r/b", AtLeastOnce, false, "not retained");
    publisher.publish("other", AtMostOnce, true, "other");

    let mut subscriber = Raw::connect(&broker, V3_1_1, "sub");
    subscriber.subscribe("r/#", ExactlyOnce);
    // Sent with RETAIN 1 at the stored QoS [MQTT-3.3.1-6] [MQTT-3.3.1-8]; replaced by a later
    // one [MQTT-3.3.1-5]; untouched by RETAIN 0 [MQTT-3.3.1-12].
    assert_eq!(
        summary(&subscriber.message()),
        expect("r/a", AtLeastOnce, true, "two")
    );
    assert_eq!(
        summary(&subscriber.message()),
        expect("r/b", AtMostOnce, true, "b")
    );
    subscriber.assert_quiet();

    // Forwarded live with RETAIN 0 [MQTT-3.3.1-9].
    publisher.publish("r/a", AtLeastOnce, true, "three");
    assert_eq!(
        summary(&subscriber.message()),
        expect("r/a", AtLeastOnce, false, "three")
    );
    // An empty payload is forwarded and deletes [MQTT-3.3.1-10] [MQTT-3.3.1-11].
    publisher.publish("r/a", AtMostOnce, true, "");
    assert_eq!(
        summary(&subscriber.message()),
        expect("r/a", AtMostOnce, false, "")
    );

    let mut late = Raw::connect(&broker, V5, "late");
    late.subscribe("r/#", AtLeastOnce);
    assert_eq!(
        summary(&late.message()),
        expect("r/b", AtMostOnce, true, "b")
    );
    late.assert_quiet();
    // 5.0 Retain Handling 2: none sent [MQTT-3.3.1-11].
    let mut filter = Subscription::new(TopicFilter::new("other").unwrap(), AtLeastOnce);
    filter.options.retain_handling = RetainHandling::DoNotSend;
    late.subscribe_many(vec![filter]);
    late.assert_quiet();
}

#[test]
fn the_will_is_published_on_an_unclean_close_only() {
    let broker = broker();
    let mut watcher = Raw::connect(&broker, V3_1_1, "watcher");
    watcher.subscribe("will/#", AtLeastOnce);
    let with_will = |version, id: &str| {
        let mut connect = Connect::new(version, MqttString::new(id).unwrap(), 60);
        connect.will = Some(LastWill {
            topic: topic(&format!("will/{id}")),
            payload: Bytes::from(format!("{id} is gone")),
            qos: AtLeastOnce,
            retain: false,
            properties: Default::default(),
        });
        Raw::connect_with(&broker, connect).0
    };

    // Closed without DISCONNECT: the will goes out [MQTT-3.1.2-8].
    let dropped = with_will(V3_1_1, "dropped");
    drop(dropped);
    assert_eq!(
        summary(&watcher.message()),
        expect("will/dropped", AtLeastOnce, false, "dropped is gone")
    );

    // DISCONNECT discards it [MQTT-3.14.4-3].
    let mut polite = with_will(V3_1_1, "polite");
    polite.send(Disconnect::default().into());
    assert!(polite.closed_within(WAIT));
    let mut polite5 = with_will(V5, "polite5");
    polite5.send(Disconnect::default().into());
    assert!(polite5.closed_within(WAIT));
    watcher.assert_quiet();

    // 5.0: unless the DISCONNECT asks for it.
    let mut asks = with_will(V5, "asks");
    asks.send(Disconnect::new(DisconnectReasonCode::DisconnectWithWillMessage).into());
    assert_eq!(watcher.message().payload, "asks is gone");

    // A protocol violation closes the connection: the will goes out.
    let mut violator = with_will(V3_1_1, "violator");
    violator.send(Connect::new(V3_1_1, MqttString::new("again").unwrap(), 60).into());
    assert!(violator.closed_within(WAIT));
    assert_eq!(watcher.message().payload, "violator is gone");
}

#[test]
fn a_malformed_packet_closes_only_its_connection() {
    let broker = broker();
    let mut good = Raw::connect(&broker, V3_1_1, "good");
    good.subscribe("m/#", AtLeastOnce);
    let bad_packets: [&[u8]; 7] = [
        &[0x00, 0x00],                                     // packet type 0
        &[0x30, 0x03, 0x00, 0x05, b'a'],                   // topic longer than the packet
        &[0x36, 0x05, 0x00, 0x01, b'a', 0x00, 0x01],       // QoS 3
        &[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'#', 0x03], // SUBSCRIBE asking QoS 3
        &[0x80, 0x05, 0x00, 0x01, 0x00, 0x01, b'a'],       // SUBSCRIBE with reserved flags 0
        &[0x30, 0x04, 0x00, 0x02, 0xC3, 0x28],             // topic of invalid UTF-8
        &[0xC0, 0x80, 0x80, 0x80, 0x80, 0x01],             // remaining length of five bytes
    ];
    for (i, bytes) in bad_packets.into_iter().enumerate() {
        let mut bad = Raw::connect(&broker, V3_1_1, &format!("bad{i}"));
        bad.write_raw(bytes);
        assert!(bad.closed_within(WAIT), "not closed after {bytes:02x?}");
    }
    // A 5.0 client is told why.
    let mut bad = Raw::connect(&broker, V5, "bad5");
    bad.write_raw(&[0x30, 0x03, 0x00, 0x05, b'a']);
    assert_eq!(
        bad.recv(),
        Some(Disconnect::new(DisconnectReasonCode::MalformedPacket).into())
    );
    assert!(bad.closed_within(WAIT));
    // Before CONNECT, too.
    let mut early = Raw::tcp(&broker, V3_1_1);
    early.write_raw(&[0x10, 0x02, 0x00, 0x00]);
    assert!(early.closed_within(WAIT));

    good.ping();
    let mut publisher = Raw::connect(&broker, V3_1_1, "pub");
    publisher.publish("m/1", AtLeastOnce, false, "still here");
    assert_eq!(good.message().payload, "still here");
}

#[test]
fn clients_of_3_1_and_3_1_1_and_5_0_talk_to_each_other() {
    let broker = broker();
    let mut connect = Connect::new(V5, MqttString::default(), 60);
    connect.properties.session_expiry_interval = Some(3600);
    let (mut v5, connack) = Raw::connect_with(&broker, connect);
    let props = &connack.properties;
    // No client id: one is assigned [MQTT-3.2.2-16]. No sessions kept.
    assert!(props.assigned_client_identifier.is_some());
    assert_eq!(props.session_expiry_interval, Some(0));
    assert_eq!(props.receive_maximum.map(|m| m.get()), Some(64));
    assert_eq!(props.maximum_packet_size.map(|m| m.get()), Some(1 << 20));
    assert_eq!(props.shared_subscription_available, Some(false));
    assert_eq!(props.subscription_identifiers_available, Some(false));
    let mut v311 = Raw::connect(&broker, V3_1_1, "v311");
    let mut v31 = Raw::connect(&broker, V3_1, "v31");
    for client in [&mut v5, &mut v311, &mut v31] {
        client.subscribe("mix/#", ExactlyOnce);
    }

    let mut publish = Publish::new(topic("mix/5"), QosPid::AtLeastOnce(pid(1)), "from 5.0");
    publish.properties.content_type = Some(MqttString::new("text/plain").unwrap());
    publish.properties.user_properties.push(UserProperty::new(
        MqttString::new("k").unwrap(),
        MqttString::new("v").unwrap(),
    ));
    let sent = publish.properties.clone();
    Raw::connect(&broker, V5, "pub5").publish_packet(publish);
    // 5.0 properties reach 5.0 clients; 3.x clients get the message without them.
    assert_eq!(v5.message().properties, sent);
    assert_eq!(v311.message().payload, "from 5.0");
    assert_eq!(v31.message().payload, "from 5.0");

    let publishers = [
        (V3_1_1, "mix/311", ExactlyOnce, "from 3.1.1"),
        (V3_1, "mix/31", AtLeastOnce, "from 3.1"),
    ];
    for (version, name, qos, payload) in publishers {
        Raw::connect(&broker, version, name).publish(name, qos, false, payload);
        for client in [&mut v5, &mut v311, &mut v31] {
            assert_eq!(
                summary(&client.message()),
                expect(name, qos, false, payload)
            );
        }
    }
}

#[test]
fn a_client_id_taken_over_closes_the_old_connection() {
    let broker = broker();
    let mut watcher = Raw::connect(&broker, V3_1_1, "watcher");
    watcher.subscribe("will/#", AtMostOnce);
    let mut connect = Connect::new(V5, MqttString::new("twin").unwrap(), 60);
    connect.will = Some(LastWill {
        topic: topic("will/twin"),
        payload: Bytes::from_static(b"first twin gone"),
        qos: AtMostOnce,
        retain: false,
        properties: Default::default(),
    });
    let (mut first, _) = Raw::connect_with(&broker, connect);
    let mut second = Raw::connect(&broker, V5, "twin");
    // [MQTT-3.1.4-3] (5.0)
    assert_eq!(
        first.recv(),
        Some(Disconnect::new(DisconnectReasonCode::SessionTakenOver).into())
    );
    assert!(first.closed_within(WAIT));
    assert_eq!(watcher.message().payload, "first twin gone");
    second.ping();
}

#[test]
fn a_silent_client_is_closed_after_one_and_a_half_keep_alives() {
    // [MQTT-3.1.2-24] (3.1.1), [MQTT-3.1.2-22] (5.0)
    let broker = broker();
    let connect = |id: &str| Connect::new(V5, MqttString::new(id).unwrap(), 1);
    let (mut silent, _) = Raw::connect_with(&broker, connect("silent"));
    let (mut pinging, _) = Raw::connect_with(&broker, connect("pinging"));
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2500) {
        pinging.ping();
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        silent.recv(),
        Some(Disconnect::new(DisconnectReasonCode::KeepAliveTimeout).into())
    );
    assert!(silent.closed_within(WAIT));
    pinging.ping();
}

#[test]
fn packets_above_the_maximum_size_close_the_connection() {
    let broker = EmbeddedBroker::start(Limits {
        max_packet_size: 1024,
        ..Limits::default()
    })
    .unwrap();
    let mut client = Raw::connect(&broker, V5, "big");
    client.publish("fits", AtLeastOnce, false, &"x".repeat(900));
    client.send(Publish::new(topic("too/big"), QosPid::AtMostOnce, vec![0u8; 2000]).into());
    assert_eq!(
        client.recv(),
        Some(Disconnect::new(DisconnectReasonCode::PacketTooLarge).into())
    );
    assert!(client.closed_within(WAIT));
    // The fixed header alone is enough to refuse: the body is never waited for.
    let mut header_only = Raw::connect(&broker, V3_1_1, "header");
    header_only.write_raw(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F]);
    assert!(header_only.closed_within(WAIT));
}

#[test]
fn connections_beyond_the_limit_are_closed() {
    let broker = EmbeddedBroker::start(Limits {
        max_connections: 2,
        ..Limits::default()
    })
    .unwrap();
    let first = Raw::connect(&broker, V3_1_1, "one");
    let mut second = Raw::connect(&broker, V3_1_1, "two");
    let mut third = Raw::tcp(&broker, V3_1_1);
    assert!(third.closed_within(WAIT));
    drop(first);
    // Once a connection is gone, there is room again.
    let deadline = Instant::now() + WAIT;
    while broker.shared.router().connections() > 1 {
        assert!(
            Instant::now() < deadline,
            "the closed connection was not forgotten"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Raw::connect(&broker, V3_1_1, "three").ping();
    second.ping();
}

#[test]
fn a_slow_qos0_subscriber_loses_messages_and_slows_nobody() {
    let broker = EmbeddedBroker::start(Limits {
        max_queued_packets: 16,
        max_queued_bytes: 256 * 1024,
        ..Limits::default()
    })
    .unwrap();
    let mut slow = Raw::connect(&broker, V3_1_1, "slow");
    slow.subscribe("flood", AtMostOnce);
    let mut publisher = Raw::connect(&broker, V3_1_1, "pub");
    // Far more than the socket buffers and the queue hold, while `slow` reads nothing.
    let payload = vec![0xA5u8; 16 * 1024];
    let count = 2000;
    for _ in 0..count {
        publisher.send(Publish::new(topic("flood"), QosPid::AtMostOnce, payload.clone()).into());
    }
    // Answered within `WAIT`, well before the write timeout would have freed a broker that
    // waited on the subscriber.
    publisher.ping();
    let mut received = 0;
    while let Some(packet) = slow.recv_within(QUIET) {
        assert!(matches!(packet, Packet::Publish(_)));
        received += 1;
    }
    assert!(
        0 < received && received < count,
        "{received} of {count} messages reached a subscriber that read none for a while"
    );
    // Still connected: only messages were lost.
    publisher.publish("flood", AtMostOnce, false, "last");
    assert_eq!(slow.message().payload, "last");
}

#[test]
fn a_subscriber_that_cannot_take_its_qos1_messages_is_disconnected() {
    let broker = EmbeddedBroker::start(Limits {
        max_inflight: 4,
        max_queued_packets: 16,
        ..Limits::default()
    })
    .unwrap();
    let mut slow = Raw::connect(&broker, V3_1_1, "slow");
    slow.subscribe("work", AtLeastOnce);
    let mut publisher = Raw::connect(&broker, V3_1_1, "pub");
    for i in 0..100 {
        publisher.publish("work", AtLeastOnce, false, &i.to_string());
    }
    // Four in flight, sixteen waiting, then no room: closed rather than silently dropped.
    let mut received = 0;
    while let Some(packet) = slow.recv_within(WAIT) {
        assert!(matches!(packet, Packet::Publish(_)));
        received += 1;
    }
    // The broker may close it before the last of them was written.
    assert!(
        received <= 4,
        "{received} messages beyond the in-flight limit"
    );
    assert!(slow.closed_within(WAIT));
    publisher.ping();
}

#[test]
fn a_connection_that_stalls_mid_packet_or_before_connect_is_closed() {
    let broker = EmbeddedBroker::start(Limits {
        connect_timeout: Duration::from_millis(300),
        packet_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .unwrap();
    let mut mute = Raw::tcp(&broker, V3_1_1);
    assert!(mute.closed_within(WAIT));
    let (mut stalled, _) = Raw::connect_with(
        &broker,
        Connect::new(V3_1_1, MqttString::new("s").unwrap(), 0),
    );
    stalled.write_raw(&[0x30, 0x10, 0x00]);
    assert!(stalled.closed_within(WAIT));
}

#[test]
fn an_unsubscribed_filter_gets_nothing_more() {
    let broker = broker();
    let mut client = Raw::connect(&broker, V5, "c");
    client.subscribe("u/+", AtLeastOnce);
    client.publish("u/1", AtMostOnce, false, "before");
    assert_eq!(client.message().payload, "before");
    let packet_id = client.id();
    let filters = vec![
        TopicFilter::new("u/+").unwrap(),
        TopicFilter::new("never").unwrap(),
    ];
    client.send(
        mqtt_proto::Unsubscribe {
            packet_id,
            properties: Default::default(),
            filters,
        }
        .into(),
    );
    match client.recv() {
        Some(Packet::UnsubAck(unsuback)) => assert_eq!(
            unsuback.reason_codes,
            [
                mqtt_proto::UnsubAckReasonCode::Success,
                mqtt_proto::UnsubAckReasonCode::NoSubscriptionExisted
            ]
        ),
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
    client.publish("u/1", AtMostOnce, false, "after");
    client.assert_quiet();
}

#[test]
fn an_unknown_protocol_level_is_refused() {
    let broker = broker();
    let mut client = Raw::tcp(&broker, V3_1_1);
    // CONNECT for "MQTT" level 6.
    client.write_raw(&[
        0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x06, 0x02, 0x00, 0x3C, 0x00, 0x01, b'x',
    ]);
    match client.recv() {
        Some(Packet::ConnAck(connack)) => assert_eq!(
            connack.reason_code,
            ConnectReasonCode::UnsupportedProtocolVersion
        ),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    assert!(client.closed_within(WAIT));
}

/// A small deterministic generator of test bytes (xorshift).
struct Bytes64(u64);

impl Bytes64 {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn garbage_after_connect_never_panics_the_broker() {
    // A garbled length may announce a packet that never completes.
    let broker = EmbeddedBroker::start(Limits {
        packet_timeout: Duration::from_millis(50),
        ..Limits::default()
    })
    .unwrap();
    let mut random = Bytes64(0x9E37_79B9_7F4A_7C15);
    let mut valid = BytesMut::new();
    let mut publish = Publish::new(topic("g/1"), QosPid::ExactlyOnce(pid(3)), "payload");
    publish.properties.content_type = Some(MqttString::new("x").unwrap());
    Packet::Publish(publish).encode(V5, &mut valid).unwrap();
    let subscription = Subscription::new(TopicFilter::new("g/#").unwrap(), ExactlyOnce);
    Packet::Subscribe(Subscribe {
        packet_id: pid(4),
        properties: Default::default(),
        filters: vec![subscription],
    })
    .encode(V5, &mut valid)
    .unwrap();
    for round in 0..200 {
        let version = [V3_1, V3_1_1, V5][round % 3];
        let mut client = Raw::connect(&broker, version, &format!("g{round}"));
        // Valid packets with a few bytes changed, or noise.
        let mut bytes = valid.to_vec();
        if round % 4 == 0 {
            bytes.iter_mut().for_each(|b| *b = random.next() as u8);
        } else {
            for _ in 0..1 + round % 3 {
                let at = random.next() as usize % bytes.len();
                bytes[at] = random.next() as u8;
            }
        }
        client.write_raw(&bytes);
        client.write_raw(&[0xE0, 0x00]);
        assert!(client.closed_within(WAIT), "round {round} left open");
    }
    // A panicking connection thread would never have been forgotten.
    let deadline = Instant::now() + WAIT;
    while broker.shared.router().connections() > 0 {
        assert!(Instant::now() < deadline, "connections left over");
        std::thread::sleep(Duration::from_millis(10));
    }
    Raw::connect(&broker, V5, "after").ping();
}

#[test]
fn dropping_the_broker_closes_its_connections() {
    let broker = broker();
    let mut client = Raw::connect(&broker, V3_1_1, "c");
    let addr = broker.addr;
    drop(broker);
    assert!(client.closed_within(WAIT));
    assert!(TcpStream::connect(addr).is_err());
}
