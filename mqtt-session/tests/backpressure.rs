//! The inbound queue: messages are acknowledged when the application takes them, the queue
//! is bounded by messages and bytes, reading stops when it is full, and reading goes on for
//! answers the session waits for.

mod common;

use std::num::NonZeroU16;
use std::time::Duration;

use bytes::BytesMut;
use common::{config, id, server_publish, topic, Pair};
use mqtt_proto::{Packet, ProtocolVersion, PubAck, PubComp, PubRec, PubRel, Publish, QoS, QosPid};
use mqtt_session::{ConnectionError, Delivery, Event, Message, ProtocolViolation};

fn encoded(packets: &[Packet], version: ProtocolVersion) -> BytesMut {
    let mut wire = BytesMut::new();
    for p in packets {
        p.encode(version, &mut wire).unwrap();
    }
    wire
}

fn qos0(n: u8) -> Packet {
    Packet::Publish(Publish::new(topic("in"), QosPid::AtMostOnce, vec![n; 8]))
}

fn messages(events: &[Event]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message { publish, .. } => publish.payload.first().copied(),
            _ => None,
        })
        .collect()
}

fn taken_tokens(events: &[Event]) -> Vec<mqtt_session::AckToken> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message { ack, .. } => *ack,
            _ => None,
        })
        .collect()
}

#[test]
fn a_full_queue_stops_decoding_and_reading_until_the_application_takes_messages() {
    let mut pair = Pair::new(config(ProtocolVersion::V3_1_1).max_inbound(3, 1 << 20));
    pair.connect(false);
    let wire = encoded(&(0..10).map(qos0).collect::<Vec<_>>(), pair.version);
    pair.session.handle_read(pair.now, &wire);
    assert_eq!(
        pair.session.inbound_held().0,
        3,
        "three decoded, the rest buffered"
    );
    assert!(
        !pair.session.wants_read(pair.now),
        "full: the driver stops reading"
    );
    // Taking messages (poll_event, by default) makes room and decodes what waited.
    let got = messages(&pair.events());
    assert_eq!(got, (0..10).collect::<Vec<u8>>(), "nothing lost, in order");
    assert!(pair.session.wants_read(pair.now));
}

#[test]
fn the_byte_bound_counts_packet_sizes_and_admits_one_oversized_message() {
    let mut pair = Pair::new(
        config(ProtocolVersion::V3_1_1)
            .max_inbound(100, 1000)
            .max_packet_size(1 << 20),
    );
    pair.connect(false);
    let big = Publish::new(topic("in"), QosPid::AtMostOnce, vec![7u8; 5000]);
    let wire = encoded(&[Packet::Publish(big.clone()), qos0(1)], pair.version);
    pair.session.handle_read(pair.now, &wire);
    let (messages_held, bytes_held) = pair.session.inbound_held();
    assert_eq!(messages_held, 1, "the oversized message is taken alone");
    assert!(bytes_held > 5000);
    assert!(!pair.session.wants_read(pair.now));
    assert_eq!(pair.events().len(), 2);
}

#[test]
fn reported_delivery_acknowledges_when_the_driver_reports_the_message_taken() {
    // [MQTT-3.3.4-1 v3.1.1 v5.0] [MQTT-4.3.2-4 v5.0] [MQTT-4.3.3-8 v5.0]: the acknowledgements
    // still go out, later, in order.
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let mut cfg = config(version);
        cfg.delivery = Delivery::Reported;
        let mut pair = Pair::new(cfg);
        pair.connect(false);
        pair.deliver(server_publish("a", QosPid::AtLeastOnce(id(1)), b"1"));
        pair.deliver(server_publish("a", QosPid::ExactlyOnce(id(2)), b"2"));
        pair.deliver(server_publish("a", QosPid::AtLeastOnce(id(3)), b"3"));
        pair.deliver(server_publish("a", QosPid::AtMostOnce, b"4"));
        let events = pair.events();
        let tokens = taken_tokens(&events);
        assert_eq!(tokens.len(), 4, "every message carries a token");
        assert!(
            pair.sent().is_empty(),
            "nothing acknowledged before it is taken"
        );
        assert_eq!(pair.session.inbound_held().0, 4);
        // The application takes them out of order: acknowledgements keep arrival order
        // [MQTT-4.6.0-2 v3.1.1 v5.0] [MQTT-4.6.0-3 v3.1.1 v5.0].
        pair.session.handle_taken(pair.now, tokens[2]);
        assert!(pair.sent().is_empty(), "PUBACK 3 waits for PUBACK 1");
        pair.session.handle_taken(pair.now, tokens[0]);
        assert_eq!(
            pair.sent(),
            vec![
                Packet::PubAck(PubAck::new(id(1))),
                Packet::PubAck(PubAck::new(id(3)))
            ]
        );
        pair.session.handle_taken(pair.now, tokens[1]);
        assert_eq!(pair.sent(), vec![Packet::PubRec(PubRec::new(id(2)))]);
        pair.session.handle_taken(pair.now, tokens[3]);
        pair.session.handle_taken(pair.now, tokens[3]);
        assert_eq!(pair.session.inbound_held(), (0, 0), "taken once each");
        pair.deliver(Packet::PubRel(PubRel::new(id(2))));
        assert_eq!(pair.sent(), vec![Packet::PubComp(PubComp::new(id(2)))]);
    }
}

#[test]
fn messages_of_a_lost_connection_free_their_room_and_are_not_acknowledged() {
    let mut cfg = config(ProtocolVersion::V3_1_1).clean_start(false);
    cfg.delivery = Delivery::Reported;
    let mut pair = Pair::new(cfg);
    pair.connect(false);
    pair.deliver(server_publish("a", QosPid::AtLeastOnce(id(1)), b"1"));
    let tokens = taken_tokens(&pair.events());
    pair.cut();
    pair.connect(true);
    pair.session.handle_taken(pair.now, tokens[0]);
    assert!(
        pair.sent().is_empty(),
        "the broker sends it again on this connection; PUBACK 1 would answer another message"
    );
    assert_eq!(pair.session.inbound_held(), (0, 0));
}

#[test]
fn a_resend_of_a_message_still_queued_is_not_delivered_twice() {
    let mut cfg = config(ProtocolVersion::V3_1_1);
    cfg.delivery = Delivery::Reported;
    let mut pair = Pair::new(cfg);
    pair.connect(false);
    pair.deliver(server_publish("a", QosPid::AtLeastOnce(id(1)), b"1"));
    pair.deliver(server_publish("a", QosPid::AtLeastOnce(id(1)), b"1"));
    let tokens = taken_tokens(&pair.events());
    assert_eq!(tokens.len(), 1);
    pair.session.handle_taken(pair.now, tokens[0]);
    assert_eq!(pair.sent(), vec![Packet::PubAck(PubAck::new(id(1)))]);
}

#[test]
fn v5_announces_the_queue_as_receive_maximum_and_holds_the_broker_to_it() {
    // [MQTT-3.3.4-9 v5.0 server] is the server's duty; the client checks it with its queue's
    // bound.
    let mut cfg = config(ProtocolVersion::V5).max_inbound(2, 1 << 20);
    cfg.delivery = Delivery::Reported;
    cfg.strict_receive_maximum = true;
    let mut pair = Pair::new(cfg);
    let connect = pair.open();
    assert_eq!(connect.properties.receive_maximum, NonZeroU16::new(2));
    pair.deliver(Packet::from(mqtt_proto::ConnAck::accepted(false)));
    pair.events();
    // A publish of ours waits for its PUBACK, so reading goes on past the full queue and the
    // third message is seen (with nothing awaited, reading would just pause).
    pair.session
        .publish(
            pair.now,
            Message::new("out", "x").unwrap().qos(QoS::AtLeastOnce),
        )
        .unwrap();
    pair.sent();
    pair.deliver(server_publish("a", QosPid::AtLeastOnce(id(1)), b"1"));
    pair.deliver(server_publish("a", QosPid::ExactlyOnce(id(2)), b"2"));
    pair.deliver(server_publish("a", QosPid::AtLeastOnce(id(3)), b"3"));
    let events = pair.events();
    assert!(
        matches!(
            events.last(),
            Some(Event::Disconnected {
                reason: ConnectionError::ProtocolViolation(
                    ProtocolViolation::ReceiveMaximumExceeded
                )
            })
        ),
        "{events:?}"
    );
    let sent = pair.sent();
    assert!(
        matches!(sent.last(), Some(Packet::Disconnect(d)) if d.reason_code == mqtt_proto::DisconnectReasonCode::ReceiveMaximumExceeded),
        "{sent:?}"
    );
}

#[test]
fn by_default_an_exceeded_receive_maximum_is_counted_not_fatal() {
    let mut cfg = config(ProtocolVersion::V5).max_inbound(2, 1 << 20);
    cfg.delivery = Delivery::Reported;
    let mut pair = Pair::new(cfg);
    pair.connect(false);
    pair.session
        .publish(
            pair.now,
            Message::new("out", "x").unwrap().qos(QoS::AtLeastOnce),
        )
        .unwrap();
    pair.sent();
    for n in 1..=3 {
        pair.deliver(server_publish("a", QosPid::AtLeastOnce(id(n)), b"q"));
    }
    let events = pair.events();
    assert_eq!(taken_tokens(&events).len(), 3);
    assert_eq!(pair.session.receive_maximum_excess(), 1);
    assert!(pair.session.is_connected());
}

#[test]
fn an_explicit_receive_maximum_is_kept() {
    let mut cfg = config(ProtocolVersion::V5).max_inbound(2, 1 << 20);
    cfg.properties.receive_maximum = NonZeroU16::new(7);
    let mut pair = Pair::new(cfg);
    assert_eq!(pair.open().properties.receive_maximum, NonZeroU16::new(7));
    let mut pair = Pair::new(config(ProtocolVersion::V3_1_1).max_inbound(2, 1 << 20));
    assert_eq!(pair.open().properties.receive_maximum, None);
}

#[test]
fn reading_goes_on_for_awaited_answers_up_to_twice_the_bound_then_drops_qos0() {
    let mut cfg = config(ProtocolVersion::V3_1_1).max_inbound(4, 1 << 20);
    cfg.delivery = Delivery::Reported;
    let mut pair = Pair::new(cfg);
    pair.connect(false);
    pair.session
        .publish(
            pair.now,
            Message::new("out", "x").unwrap().qos(QoS::AtLeastOnce),
        )
        .unwrap();
    pair.sent();
    // A flood of 20 QoS 0 messages, then the PUBACK the application waits for.
    let mut packets: Vec<Packet> = (0..20).map(qos0).collect();
    packets.push(Packet::PubAck(PubAck::new(id(1))));
    let wire = encoded(&packets, pair.version);
    pair.session.handle_read(pair.now, &wire);
    let events = pair.events();
    assert_eq!(
        messages(&events).len(),
        8,
        "twice the bound, the rest dropped"
    );
    assert_eq!(pair.session.inbound_dropped(), 12);
    assert!(
        events.iter().any(|e| matches!(e, Event::Published { .. })),
        "the awaited PUBACK was read: {events:?}"
    );
    // Nothing awaited any more and the queue is full: reading stops.
    assert!(!pair.session.wants_read(pair.now));
}

#[test]
fn past_twice_the_bound_qos1_messages_are_still_taken_not_dropped() {
    // A 3.1.1 server cannot be told a Receive Maximum: its in-flight window bounds what it
    // sends unacknowledged, and those messages cannot be dropped.
    let mut cfg = config(ProtocolVersion::V3_1_1).max_inbound(2, 1 << 20);
    cfg.delivery = Delivery::Reported;
    let mut pair = Pair::new(cfg);
    pair.connect(false);
    pair.session
        .publish(
            pair.now,
            Message::new("out", "x").unwrap().qos(QoS::AtLeastOnce),
        )
        .unwrap();
    pair.sent();
    let mut packets: Vec<Packet> = (1..=6)
        .map(|n| server_publish("in", QosPid::AtLeastOnce(id(n)), b"q"))
        .collect();
    packets.push(Packet::PubAck(PubAck::new(id(1))));
    pair.session
        .handle_read(pair.now, &encoded(&packets, pair.version));
    let events = pair.events();
    assert_eq!(taken_tokens(&events).len(), 6);
    assert!(events.iter().any(|e| matches!(e, Event::Published { .. })));
    assert_eq!(pair.session.inbound_dropped(), 0);
    assert!(
        !pair.session.wants_read(pair.now),
        "nothing awaited: reading stops"
    );
}

#[test]
fn while_reading_is_paused_the_server_is_not_timed_out() {
    let mut cfg = config(ProtocolVersion::V3_1_1)
        .keep_alive(Duration::from_secs(10))
        .max_inbound(1, 1 << 20);
    cfg.delivery = Delivery::Reported;
    let mut pair = Pair::new(cfg);
    pair.connect(false);
    pair.deliver(qos0(1));
    let tokens = taken_tokens(&pair.events());
    assert!(!pair.session.wants_read(pair.now));
    // A minute of an application that does not take its message: PINGREQs keep the
    // connection alive from our side, and no answer is expected while we do not listen.
    for _ in 0..60 {
        pair.advance(Duration::from_secs(1));
    }
    let pings = pair
        .sent()
        .iter()
        .filter(|p| matches!(p, Packet::PingReq))
        .count();
    assert!(pings >= 5, "{pings} PINGREQs");
    assert!(pair.events().is_empty(), "still connected");
    pair.session.handle_taken(pair.now, tokens[0]);
    assert!(
        pair.session.wants_read(pair.now),
        "the deadlines restart now"
    );
    pair.advance(Duration::from_secs(10));
    pair.sent();
    pair.advance(Duration::from_secs(11));
    assert!(
        matches!(
            common_disconnect(&pair.events()),
            Some(ConnectionError::KeepAliveTimeout)
        ),
        "listening again, silence is a timeout"
    );
}

fn common_disconnect(events: &[Event]) -> Option<ConnectionError> {
    events.iter().find_map(|e| match e {
        Event::Disconnected { reason } => Some(reason.clone()),
        _ => None,
    })
}
