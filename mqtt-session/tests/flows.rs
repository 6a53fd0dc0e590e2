//! Deterministic tests of every session flow, with virtual time and a scripted server.

mod common;

use std::num::{NonZeroU16, NonZeroU32};
use std::time::Duration;

use bytes::Bytes;
use common::{config, id, server_publish, topic, Pair};
use mqtt_proto::{
    Auth, AuthProperties, AuthReasonCode, ConnAck, ConnAckProperties, ConnectReasonCode,
    Disconnect, DisconnectReasonCode, LastWill, MqttString, Packet, ProtocolVersion, PubAck,
    PubAckReasonCode, PubComp, PubRec, PubRel, PubRelReasonCode, QoS, QosPid, SubAck,
    SubAckReasonCode, Subscription, TopicFilter, UnsubAck, WillProperties,
};
use mqtt_session::{
    ConfigError, ConnectionError, ConnectionState, Event, MemoryStore, Message, ProtocolViolation,
    PublishError, PublishOutcome, Session, SubscribeError,
};

const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V3_1,
    ProtocolVersion::V3_1_1,
    ProtocolVersion::V5,
];

fn msg(t: &str, qos: QoS) -> Message {
    Message::new(t, "payload").unwrap().qos(qos)
}

fn publishes(packets: &[Packet]) -> Vec<(u16, bool)> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some((p.packet_id().map_or(0, |i| i.get()), p.dup)),
            _ => None,
        })
        .collect()
}

fn disconnected(events: &[Event]) -> Option<ConnectionError> {
    events.iter().find_map(|e| match e {
        Event::Disconnected { reason } => Some(reason.clone()),
        _ => None,
    })
}

#[test]
fn connect_is_the_first_packet_and_carries_will_and_credentials() {
    // [MQTT-3.1.0-1 v3.1.1 v5.0]
    for version in VERSIONS {
        let will = LastWill {
            topic: topic("clients/test/status"),
            payload: Bytes::from_static(b"gone"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: WillProperties::default().into(),
        };
        let username = "u".repeat(1000);
        let cfg = config(version)
            .will(will.clone())
            .credentials(&username, &b"pw"[..])
            .unwrap()
            .keep_alive(Duration::from_secs(15));
        let mut pair = Pair::new(cfg);
        let connect = pair.open();
        assert_eq!(connect.protocol, version);
        assert_eq!(connect.will, Some(will));
        assert_eq!(connect.username.as_deref(), Some(username.as_str()));
        assert_eq!(connect.password.as_deref(), Some(&b"pw"[..]));
        assert_eq!(connect.keep_alive, 15);
        assert!(connect.clean_start);
        assert_eq!(pair.session.state(), ConnectionState::Connecting);
    }
}

#[test]
fn refused_connack_reports_a_typed_reason() {
    let mut pair = Pair::new(config(ProtocolVersion::V3_1_1));
    pair.open();
    // 3.1.1 return code 5: not authorized.
    pair.deliver_bytes(&[0x20, 0x02, 0x00, 0x05]);
    let events = pair.events();
    assert!(matches!(
        disconnected(&events),
        Some(ConnectionError::Refused {
            reason: ConnectReasonCode::NotAuthorized,
            ..
        })
    ));
    assert!(
        pair.session.wants_close(),
        "[MQTT-3.2.2-5 v3.1.1 server] a refusal closes"
    );
}

#[test]
fn a_3_1_1_only_server_refusing_a_5_0_connect_is_an_unsupported_version() {
    // A server that knows only 3.1.1 answers with its return code 1, "unacceptable protocol
    // version", which no 5.0 CONNACK carries: a refusal, not a protocol violation.
    let mut pair = Pair::new(config(ProtocolVersion::V5));
    pair.open();
    pair.deliver_bytes(&[0x20, 0x02, 0x00, 0x01]);
    assert!(matches!(
        disconnected(&pair.events()),
        Some(ConnectionError::Refused {
            reason: ConnectReasonCode::UnsupportedProtocolVersion,
            ..
        })
    ));
    let sent = pair.sent();
    assert!(
        sent.is_empty(),
        "no DISCONNECT to a server that refused: {sent:?}"
    );
}

#[test]
fn qos1_publish_completes_on_its_puback() {
    // [MQTT-4.3.2-1 v3.1.1 v5.0] [MQTT-4.3.2-2 v5.0] [MQTT-4.3.2-3 v5.0] [MQTT-2.2.1-5 v5.0]
    for version in VERSIONS {
        let mut pair = Pair::new(config(version));
        pair.connect(false);
        let t1 = pair
            .session
            .publish(pair.now, msg("a", QoS::AtLeastOnce))
            .unwrap();
        let t2 = pair
            .session
            .publish(pair.now, msg("a", QoS::AtLeastOnce))
            .unwrap();
        let sent = pair.sent();
        assert_eq!(publishes(&sent), vec![(1, false), (2, false)]);
        pair.deliver(Packet::PubAck(PubAck::new(id(2))));
        let events = pair.events();
        assert_eq!(events.len(), 1);
        assert!(
            matches!(&events[0], Event::Published { token, outcome: PublishOutcome::Acknowledged { reason: PubAckReasonCode::Success, .. } } if *token == t2)
        );
        assert_eq!(pair.session.inflight(), 1);
        pair.deliver(Packet::PubAck(PubAck::new(id(1))));
        assert!(matches!(&pair.events()[0], Event::Published { token, .. } if *token == t1));
        assert_eq!(
            pair.session.packet_ids_in_use(),
            0,
            "[MQTT-2.3.1-3 v3.1.1] ids are freed"
        );
    }
}

#[test]
fn qos2_publish_runs_the_four_way_handshake() {
    // [MQTT-4.3.3-1 v3.1.1 v5.0] [MQTT-4.3.3-2 v5.0] [MQTT-4.3.3-3 v5.0] [MQTT-4.3.3-4 v5.0]
    // [MQTT-4.3.3-5 v5.0] [MQTT-2.3.1-6 v3.1.1] [MQTT-2.2.1-5 v5.0]
    for version in VERSIONS {
        let mut pair = Pair::new(config(version));
        pair.connect(false);
        let token = pair
            .session
            .publish(pair.now, msg("a", QoS::ExactlyOnce))
            .unwrap();
        assert_eq!(publishes(&pair.sent()), vec![(1, false)]);
        pair.deliver(Packet::PubRec(PubRec::new(id(1))));
        assert_eq!(pair.sent(), vec![Packet::PubRel(PubRel::new(id(1)))]);
        assert!(pair.events().is_empty(), "not complete before PUBCOMP");
        // A repeated PUBREC is answered with PUBREL again, never the PUBLISH [MQTT-4.3.3-6 v5.0].
        pair.deliver(Packet::PubRec(PubRec::new(id(1))));
        assert_eq!(pair.sent(), vec![Packet::PubRel(PubRel::new(id(1)))]);
        pair.deliver(Packet::PubComp(PubComp::new(id(1))));
        let events = pair.events();
        assert!(
            matches!(&events[..], [Event::Published { token: t, outcome: PublishOutcome::Completed { reason: PubRelReasonCode::Success, .. } }] if *t == token)
        );
        assert_eq!(pair.session.inflight(), 0);
    }
}

#[test]
fn qos0_publish_reports_sent() {
    // [MQTT-4.3.1-1 v5.0]
    let mut pair = Pair::new(config(ProtocolVersion::V5));
    pair.connect(false);
    let token = pair
        .session
        .publish(pair.now, msg("a", QoS::AtMostOnce))
        .unwrap();
    let sent = pair.sent();
    assert!(matches!(&sent[..], [Packet::Publish(p)] if p.qos_pid == QosPid::AtMostOnce && !p.dup));
    assert!(
        matches!(&pair.events()[..], [Event::Published { token: t, outcome: PublishOutcome::Sent }] if *t == token)
    );
}

#[test]
fn v5_failed_puback_rejects_the_message_without_resend() {
    // [MQTT-4.4.0-2 v5.0]
    let mut pair = Pair::new(config(ProtocolVersion::V5));
    pair.connect(false);
    pair.session
        .publish(pair.now, msg("a", QoS::AtLeastOnce))
        .unwrap();
    pair.sent();
    let mut ack = PubAck::new(id(1));
    ack.reason_code = PubAckReasonCode::NotAuthorized;
    pair.deliver(Packet::PubAck(ack));
    assert!(matches!(
        &pair.events()[..],
        [Event::Published {
            outcome: PublishOutcome::Rejected {
                reason: PubAckReasonCode::NotAuthorized,
                ..
            },
            ..
        }]
    ));
    assert_eq!(pair.session.inflight(), 0);
}

#[test]
fn inflight_window_queues_the_rest_in_order() {
    let mut pair = Pair::new(config(ProtocolVersion::V3_1_1).max_inflight(2));
    pair.connect(false);
    for _ in 0..5 {
        pair.session
            .publish(pair.now, msg("a", QoS::AtLeastOnce))
            .unwrap();
    }
    assert_eq!(publishes(&pair.sent()), vec![(1, false), (2, false)]);
    assert_eq!(pair.session.queued(), 3);
    pair.deliver(Packet::PubAck(PubAck::new(id(1))));
    assert_eq!(publishes(&pair.sent()), vec![(3, false)]);
    pair.deliver(Packet::PubAck(PubAck::new(id(2))));
    pair.deliver(Packet::PubAck(PubAck::new(id(3))));
    assert_eq!(publishes(&pair.sent()), vec![(4, false), (5, false)]);
}

#[test]
fn server_receive_maximum_lowers_the_window() {
    // [MQTT-4.9.0-1 v5.0] [MQTT-4.9.0-2 v5.0] [MQTT-4.9.0-3 v5.0] [MQTT-3.3.4-7 v5.0]
    // [MQTT-3.3.4-8 v5.0]
    let mut pair = Pair::new(config(ProtocolVersion::V5).max_inflight(10));
    pair.connect_with(
        false,
        ConnAckProperties {
            receive_maximum: NonZeroU16::new(1),
            ..Default::default()
        },
    );
    pair.session
        .publish(pair.now, msg("a", QoS::ExactlyOnce))
        .unwrap();
    pair.session
        .publish(pair.now, msg("a", QoS::AtLeastOnce))
        .unwrap();
    assert_eq!(publishes(&pair.sent()).len(), 1);
    // Still answering other packets while the quota is zero.
    pair.deliver(server_publish("in", QosPid::AtLeastOnce(id(9)), b"x"));
    pair.events();
    assert_eq!(pair.sent(), vec![Packet::PubAck(PubAck::new(id(9)))]);
    pair.deliver(Packet::PubRec(PubRec::new(id(1))));
    let sent = pair.sent();
    assert_eq!(
        sent,
        vec![Packet::PubRel(PubRel::new(id(1)))],
        "PUBREL still counts against the quota"
    );
    pair.deliver(Packet::PubComp(PubComp::new(id(1))));
    assert_eq!(publishes(&pair.sent()), vec![(2, false)]);
}

#[test]
fn full_queue_is_backpressure_not_growth() {
    let mut pair = Pair::new(config(ProtocolVersion::V3_1_1).max_queued(3));
    for _ in 0..3 {
        pair.session
            .publish(pair.now, msg("a", QoS::AtLeastOnce))
            .unwrap();
    }
    assert_eq!(
        pair.session.publish(pair.now, msg("a", QoS::AtLeastOnce)),
        Err(PublishError::QueueFull)
    );
    assert_eq!(pair.session.queued(), 3);
    pair.connect(false);
    assert_eq!(
        publishes(&pair.sent()).len(),
        3,
        "queued while offline, sent on connect"
    );
}

#[test]
fn packet_id_exhaustion_queues_rather_than_fails() {
    let mut pair = Pair::new(
        config(ProtocolVersion::V3_1_1)
            .max_inflight(u16::MAX)
            .max_queued(70_000),
    );
    pair.connect(false);
    for _ in 0..65_536u32 {
        pair.session
            .publish(pair.now, msg("a", QoS::AtLeastOnce))
            .unwrap();
    }
    let sent = publishes(&pair.sent());
    assert_eq!(sent.len(), 65_535);
    assert_eq!(pair.session.queued(), 1);
    pair.deliver(Packet::PubAck(PubAck::new(id(40_000))));
    assert_eq!(
        publishes(&pair.sent()),
        vec![(40_000, false)],
        "the freed id is used next"
    );
}

#[test]
fn inbound_qos1_is_acknowledged() {
    // [MQTT-4.5.0-2 v3.1.1] [MQTT-3.3.4-1 v3.1.1]
    let mut pair = Pair::new(config(ProtocolVersion::V3_1_1));
    pair.connect(false);
    pair.deliver(server_publish("x", QosPid::AtLeastOnce(id(5)), b"hello"));
    assert!(
        pair.sent().is_empty(),
        "no PUBACK before the application has the message"
    );
    let events = pair.events();
    assert!(
        matches!(&events[..], [Event::Message { publish, ack: None }] if publish.payload == "hello")
    );
    assert_eq!(pair.sent(), vec![Packet::PubAck(PubAck::new(id(5)))]);
}

#[test]
fn an_inbound_qos1_identifier_acknowledged_is_a_new_message_next_time() {
    // [MQTT-4.3.2-2 v3.1.1] [MQTT-4.3.2-5 v5.0]: once PUBACK is sent, a PUBLISH with the same
    // identifier is a new message, DUP or not; and the session keeps its state meanwhile
    // [MQTT-4.1.0-1 v5.0].
    for version in VERSIONS {
        let mut pair = Pair::new(config(version));
        pair.connect(false);
        for (n, dup) in [(1u8, false), (2, true), (3, false)] {
            let mut publish =
                mqtt_proto::Publish::new(topic("x"), QosPid::AtLeastOnce(id(9)), vec![n]);
            publish.dup = dup;
            pair.deliver(Packet::Publish(publish));
            let events = pair.events();
            assert!(
                matches!(&events[..], [Event::Message { publish, .. }] if publish.payload[..] == [n]),
                "{version:?}: message {n} delivered: {events:?}"
            );
            assert_eq!(
                pair.sent(),
                vec![Packet::PubAck(PubAck::new(id(9)))],
                "{version:?}: each one acknowledged"
            );
        }
    }
}

#[test]
fn inbound_qos2_is_delivered_exactly_once_despite_resends() {
    // [MQTT-4.3.3-8 v5.0] [MQTT-4.3.3-10 v5.0] [MQTT-4.3.3-11 v5.0] [MQTT-4.3.3-12 v5.0];
    // [MQTT-4.3.3-2 v3.1.1]
    for version in VERSIONS {
        let mut pair = Pair::new(config(version));
        pair.connect(false);
        pair.deliver(server_publish("x", QosPid::ExactlyOnce(id(7)), b"once"));
        assert!(pair.sent().is_empty(), "PUBREC waits for the application");
        let mut dup = Packet::Publish({
            let mut p =
                mqtt_proto::Publish::new(topic("x"), QosPid::ExactlyOnce(id(7)), &b"once"[..]);
            p.dup = true;
            p
        });
        pair.deliver(dup.clone());
        assert!(pair.sent().is_empty(), "a resend is not delivered again");
        let messages = pair
            .events()
            .iter()
            .filter(|e| matches!(e, Event::Message { .. }))
            .count();
        assert_eq!(messages, 1, "delivered once");
        assert_eq!(pair.sent(), vec![Packet::PubRec(PubRec::new(id(7)))]);
        pair.deliver(dup.clone());
        assert_eq!(pair.sent(), vec![Packet::PubRec(PubRec::new(id(7)))]);
        assert!(pair.events().is_empty(), "still delivered once");
        pair.deliver(Packet::PubRel(PubRel::new(id(7))));
        assert_eq!(pair.sent(), vec![Packet::PubComp(PubComp::new(id(7)))]);
        // After PUBCOMP the same id is a new message.
        if let Packet::Publish(p) = &mut dup {
            p.dup = false;
        }
        pair.deliver(dup);
        assert_eq!(pair.events().len(), 1);
    }
}

#[test]
fn pubrel_for_unknown_id_is_still_completed() {
    let mut pair = Pair::new(config(ProtocolVersion::V5));
    pair.connect(false);
    pair.deliver(Packet::PubRel(PubRel::new(id(3))));
    let mut comp = PubComp::new(id(3));
    comp.reason_code = PubRelReasonCode::PacketIdentifierNotFound;
    assert_eq!(pair.sent(), vec![Packet::PubComp(comp)]);
}

#[test]
fn manual_acks_leave_in_arrival_order() {
    // [MQTT-4.6.0-2 v3.1.1] [MQTT-4.6.0-3 v3.1.1]
    let mut pair = Pair::new(config(ProtocolVersion::V3_1_1).manual_acks(true));
    pair.connect(false);
    pair.deliver(server_publish("x", QosPid::AtLeastOnce(id(1)), b"1"));
    pair.deliver(server_publish("x", QosPid::AtLeastOnce(id(2)), b"2"));
    pair.deliver(server_publish("x", QosPid::ExactlyOnce(id(3)), b"3"));
    assert!(
        pair.sent().is_empty(),
        "nothing acknowledged before the application says so"
    );
    let tokens: Vec<_> = pair
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { ack, .. } => ack,
            _ => None,
        })
        .collect();
    assert_eq!(tokens.len(), 3);
    pair.session.ack(pair.now, tokens[1]).unwrap();
    assert!(pair.sent().is_empty(), "PUBACK 2 waits for PUBACK 1");
    pair.session.ack(pair.now, tokens[2]).unwrap();
    assert_eq!(pair.sent(), vec![Packet::PubRec(PubRec::new(id(3)))]);
    pair.session.ack(pair.now, tokens[0]).unwrap();
    assert_eq!(
        pair.sent(),
        vec![
            Packet::PubAck(PubAck::new(id(1))),
            Packet::PubAck(PubAck::new(id(2)))
        ]
    );
    assert!(
        pair.session.ack(pair.now, tokens[0]).is_err(),
        "one ack per token"
    );
}

#[test]
fn reconnect_resends_publish_with_dup_and_pubrel_in_original_order() {
    // [MQTT-4.4.0-1 v3.1.1 v5.0] [MQTT-4.6.0-1 v3.1.1 v5.0] [MQTT-3.3.1-1 v3.1.1 v5.0]
    // [MQTT-2.3.1-3 v3.1.1] [MQTT-4.1.0-1 v3.1.1] [MQTT-4.1.0-2 v3.1.1] [MQTT-3.1.2-4 v3.1.1]
    // [MQTT-3.1.2-23 v5.0]
    for version in VERSIONS {
        let mut cfg = config(version).clean_start(false);
        if version.is_v5() {
            cfg = cfg.session_expiry(3600);
        }
        let mut pair = Pair::new(cfg);
        pair.connect(false);
        for qos in [
            QoS::AtLeastOnce,
            QoS::ExactlyOnce,
            QoS::ExactlyOnce,
            QoS::AtLeastOnce,
        ] {
            pair.session.publish(pair.now, msg("a", qos)).unwrap();
        }
        pair.sent();
        pair.deliver(Packet::PubRec(PubRec::new(id(2))));
        assert_eq!(pair.sent(), vec![Packet::PubRel(PubRel::new(id(2)))]);
        pair.cut();
        assert!(matches!(
            disconnected(&pair.events()),
            Some(ConnectionError::TransportClosed)
        ));

        let connect = pair.open();
        assert!(!connect.clean_start, "the session is resumed");
        pair.deliver(Packet::from(ConnAck::accepted(true)));
        let resent = pair.sent();
        let summary: Vec<String> = resent
            .iter()
            .map(|p| match p {
                Packet::Publish(p) => format!("PUBLISH {} dup={}", p.packet_id().unwrap(), p.dup),
                Packet::PubRel(r) => format!("PUBREL {}", r.packet_id),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            summary,
            [
                "PUBLISH 1 dup=true",
                "PUBREL 2",
                "PUBLISH 3 dup=true",
                "PUBLISH 4 dup=true"
            ]
        );
    }
}

#[test]
fn no_resend_while_the_connection_lasts() {
    // [MQTT-4.4.0-1 v5.0]: resend only on reconnect.
    let mut pair = Pair::new(config(ProtocolVersion::V5).keep_alive(Duration::ZERO));
    pair.connect(false);
    pair.session
        .publish(pair.now, msg("a", QoS::AtLeastOnce))
        .unwrap();
    pair.sent();
    pair.advance(Duration::from_secs(3600));
    assert!(pair.sent().is_empty());
    assert_eq!(pair.session.poll_timeout(), None);
}

#[test]
fn session_present_after_clean_start_is_a_violation() {
    // [MQTT-3.2.2-4 v5.0]
    let mut pair = Pair::new(config(ProtocolVersion::V5));
    pair.open();
    pair.deliver(Packet::from(ConnAck::accepted(true)));
    assert!(matches!(
        disconnected(&pair.events()),
        Some(ConnectionError::ProtocolViolation(
            ProtocolViolation::UnexpectedSessionPresent
        ))
    ));
    assert_eq!(
        pair.sent(),
        vec![Packet::Disconnect(Disconnect::new(
            DisconnectReasonCode::ProtocolError
        ))]
    );
}

#[test]
fn lost_session_requeues_unacknowledged_messages() {
    // [MQTT-3.2.2-3 v3.1.1 server]: the server has no session; nothing accepted is lost.
    let cfg = config(ProtocolVersion::V3_1_1).clean_start(false);
    let mut pair = Pair::new(cfg);
    pair.connect(false);
    let t1 = pair
        .session
        .publish(pair.now, msg("a", QoS::AtLeastOnce))
        .unwrap();
    let t2 = pair
        .session
        .publish(pair.now, msg("b", QoS::ExactlyOnce))
        .unwrap();
    let t3 = pair
        .session
        .publish(pair.now, msg("c", QoS::ExactlyOnce))
        .unwrap();
    pair.sent();
    pair.deliver(Packet::PubRec(PubRec::new(id(3))));
    pair.sent();
    pair.cut();
    pair.events();
    pair.open();
    pair.deliver(Packet::from(ConnAck::accepted(false)));
    let events = pair.events();
    assert!(events.iter().any(|e| matches!(e, Event::Published { token, outcome: PublishOutcome::Completed { .. } } if *token == t3)),
        "the server owned message 3 since PUBREC");
    let sent = pair.sent();
    let topics: Vec<(String, bool)> = sent
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some((p.topic.to_string(), p.dup)),
            _ => None,
        })
        .collect();
    assert_eq!(
        topics,
        [("a".to_string(), false), ("b".to_string(), false)],
        "sent again as new messages, in order"
    );
    let Packet::Publish(resent_a) = &sent[0] else {
        panic!("expected PUBLISH")
    };
    pair.deliver(Packet::PubAck(PubAck::new(resent_a.packet_id().unwrap())));
    assert!(matches!(&pair.events()[..], [Event::Published { token, .. }] if *token == t1));
    let _ = t2;
}

#[test]
fn keep_alive_pings_when_idle_and_detects_a_dead_server() {
    // [MQTT-3.1.2-23 v3.1.1]
    let mut cfg = config(ProtocolVersion::V3_1_1).keep_alive(Duration::from_secs(30));
    cfg.ping_timeout = Duration::from_secs(5);
    let mut pair = Pair::new(cfg);
    pair.connect(false);
    let start = pair.now;
    assert_eq!(
        pair.session.poll_timeout(),
        Some(start + Duration::from_secs(30))
    );
    pair.advance(Duration::from_secs(29));
    assert!(pair.sent().is_empty());
    pair.advance(Duration::from_secs(1));
    assert_eq!(pair.sent(), vec![Packet::PingReq]);
    pair.deliver(Packet::PingResp);
    assert_eq!(
        pair.session.poll_timeout(),
        Some(pair.now + Duration::from_secs(30))
    );
    pair.advance(Duration::from_secs(30));
    assert_eq!(pair.sent(), vec![Packet::PingReq]);
    pair.advance(Duration::from_secs(5));
    assert_eq!(
        disconnected(&pair.events()),
        Some(ConnectionError::KeepAliveTimeout)
    );
    assert!(pair.session.wants_close());
}

#[test]
fn silence_from_the_server_prompts_a_ping_even_while_sending() {
    let mut cfg = config(ProtocolVersion::V3_1_1).keep_alive(Duration::from_secs(10));
    cfg.ping_timeout = Duration::from_secs(3);
    let mut pair = Pair::new(cfg);
    pair.connect(false);
    for _ in 0..10 {
        pair.advance(Duration::from_secs(2));
        pair.session
            .publish(pair.now, msg("a", QoS::AtMostOnce))
            .unwrap();
    }
    let pings = pair
        .sent()
        .iter()
        .filter(|p| **p == Packet::PingReq)
        .count();
    assert_eq!(
        pings, 1,
        "a half-open connection is probed although we keep sending"
    );
    pair.advance(Duration::from_secs(3));
    assert_eq!(
        disconnected(&pair.events()),
        Some(ConnectionError::KeepAliveTimeout)
    );
}

#[test]
fn server_keep_alive_replaces_ours() {
    // [MQTT-3.1.2-21 v5.0] [MQTT-3.2.2-21 v5.0]
    let mut pair = Pair::new(config(ProtocolVersion::V5).keep_alive(Duration::from_secs(60)));
    pair.connect_with(
        false,
        ConnAckProperties {
            server_keep_alive: Some(5),
            ..Default::default()
        },
    );
    assert_eq!(
        pair.session.poll_timeout(),
        Some(pair.now + Duration::from_secs(5))
    );
}

#[test]
fn connect_timeout_without_connack() {
    let mut pair = Pair::new(config(ProtocolVersion::V3_1_1));
    pair.open();
    assert!(pair.fire_timer());
    assert_eq!(
        disconnected(&pair.events()),
        Some(ConnectionError::ConnectTimeout)
    );
}

#[test]
fn subscribe_results_are_typed_per_filter() {
    let mut pair = Pair::new(config(ProtocolVersion::V3_1_1));
    pair.connect(false);
    let filters = vec![
        Subscription::new(TopicFilter::new("a/#").unwrap(), QoS::ExactlyOnce),
        Subscription::new(TopicFilter::new("b/+").unwrap(), QoS::AtLeastOnce),
    ];
    let pid = pair.session.subscribe(pair.now, filters.clone()).unwrap();
    assert!(
        matches!(&pair.sent()[..], [Packet::Subscribe(s)] if s.filters == filters && s.packet_id == pid)
    );
    pair.deliver(Packet::SubAck(SubAck {
        packet_id: pid,
        properties: Default::default(),
        reason_codes: vec![
            SubAckReasonCode::GrantedQoS1,
            SubAckReasonCode::UnspecifiedError,
        ],
    }));
    let events = pair.events();
    assert!(
        matches!(&events[..], [Event::Subscribed { packet_id, results, .. }]
        if *packet_id == pid && results == &vec![Ok(QoS::AtLeastOnce), Err(SubAckReasonCode::UnspecifiedError)])
    );
    assert_eq!(
        pair.session.subscribe(pair.now, vec![]),
        Err(SubscribeError::NoFilters)
    );

    let uid = pair
        .session
        .unsubscribe(pair.now, vec![TopicFilter::new("a/#").unwrap()])
        .unwrap();
    pair.sent();
    pair.deliver(Packet::UnsubAck(UnsubAck {
        packet_id: uid,
        properties: Default::default(),
        reason_codes: vec![],
    }));
    assert!(
        matches!(&pair.events()[..], [Event::Unsubscribed { packet_id, results, .. }] if *packet_id == uid && results.len() == 1)
    );
}

#[test]
fn subscriptions_asked_offline_are_sent_after_connack() {
    let mut pair = Pair::new(config(ProtocolVersion::V5));
    let pid = pair
        .session
        .subscribe(
            pair.now,
            vec![Subscription::new(
                TopicFilter::new("t").unwrap(),
                QoS::AtLeastOnce,
            )],
        )
        .unwrap();
    pair.connect(false);
    assert!(matches!(&pair.sent()[..], [Packet::Subscribe(s)] if s.packet_id == pid));
}

#[test]
fn inbound_topic_aliases_are_resolved_and_checked() {
    // [MQTT-3.3.2-10 v5.0]: any alias from 1 to the maximum we announced is accepted.
    let mut cfg = config(ProtocolVersion::V5);
    cfg.properties.topic_alias_maximum = Some(4);
    let mut pair = Pair::new(cfg);
    pair.connect(false);
    let mut first =
        mqtt_proto::Publish::new(topic("long/topic/name"), QosPid::AtMostOnce, &b"1"[..]);
    first.properties.topic_alias = NonZeroU16::new(2);
    pair.deliver(Packet::Publish(first.clone()));
    let mut second = first.clone();
    second.topic = mqtt_proto::TopicName::empty_for_alias();
    pair.deliver(Packet::Publish(second));
    let topics: Vec<String> = pair
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { publish, .. } => Some(publish.topic.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(topics, ["long/topic/name", "long/topic/name"]);

    let mut too_high = first;
    too_high.properties.topic_alias = NonZeroU16::new(5);
    pair.deliver(Packet::Publish(too_high));
    assert_eq!(
        disconnected(&pair.events()),
        Some(ConnectionError::ProtocolViolation(
            ProtocolViolation::TopicAliasInvalid(5)
        ))
    );
    assert_eq!(
        pair.sent(),
        vec![Packet::Disconnect(Disconnect::new(
            DisconnectReasonCode::TopicAliasInvalid
        ))]
    );
}

#[test]
fn outbound_topic_aliases_stay_within_the_server_maximum() {
    // [MQTT-3.2.2-17 v5.0] [MQTT-3.2.2-18 v5.0] [MQTT-3.3.2-9 v5.0]
    let mut pair = Pair::new(config(ProtocolVersion::V5));
    pair.connect_with(
        false,
        ConnAckProperties {
            topic_alias_maximum: Some(1),
            ..Default::default()
        },
    );
    for t in ["a/b", "a/b", "c/d"] {
        pair.session
            .publish(pair.now, msg(t, QoS::AtMostOnce))
            .unwrap();
    }
    let sent: Vec<(String, Option<u16>)> = pair
        .sent()
        .into_iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some((
                p.topic.to_string(),
                p.properties.topic_alias.map(|a| a.get()),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        [
            ("a/b".into(), Some(1)),
            (String::new(), Some(1)),
            ("c/d".into(), None)
        ]
    );

    let mut none = Pair::new(config(ProtocolVersion::V5));
    none.connect(false);
    none.session
        .publish(none.now, msg("a/b", QoS::AtMostOnce))
        .unwrap();
    assert!(matches!(&none.sent()[..], [Packet::Publish(p)] if p.properties.topic_alias.is_none()));
}

#[test]
fn server_limits_refuse_messages_the_server_cannot_take() {
    // [MQTT-3.2.2-11 v5.0] [MQTT-3.2.2-14 v5.0] [MQTT-3.2.2-15 v5.0]
    let mut pair = Pair::new(config(ProtocolVersion::V5));
    pair.connect_with(
        false,
        ConnAckProperties {
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(false),
            maximum_packet_size: NonZeroU32::new(100),
            ..Default::default()
        },
    );
    assert!(matches!(
        pair.session.publish(pair.now, msg("a", QoS::ExactlyOnce)),
        Err(PublishError::QoSNotSupported { .. })
    ));
    assert_eq!(
        pair.session
            .publish(pair.now, msg("a", QoS::AtMostOnce).retain(true)),
        Err(PublishError::RetainNotSupported)
    );
    let big = Message::new("a", vec![0u8; 200]).unwrap();
    assert!(matches!(
        pair.session.publish(pair.now, big),
        Err(PublishError::PacketTooLarge { max: 100, .. })
    ));
    assert!(pair.sent().is_empty());
}

#[test]
fn a_client_publish_never_carries_a_subscription_identifier() {
    // [MQTT-3.3.4-6 v5.0]
    let mut pair = Pair::new(config(ProtocolVersion::V5));
    pair.connect(false);
    let mut message = msg("a", QoS::AtMostOnce);
    message
        .properties
        .subscription_identifiers
        .push(NonZeroU32::new(7).unwrap());
    assert_eq!(
        pair.session.publish(pair.now, message),
        Err(PublishError::SubscriptionIdentifierInPublish)
    );
    assert!(pair.sent().is_empty());
}

#[test]
fn v5_properties_cannot_be_published_on_3_1_1() {
    let mut pair = Pair::new(config(ProtocolVersion::V3_1_1));
    let mut message = msg("a", QoS::AtMostOnce);
    message.properties.content_type = Some(MqttString::new("text/plain").unwrap());
    assert!(matches!(
        pair.session.publish(pair.now, message),
        Err(PublishError::Encode(_))
    ));
}

#[test]
fn server_violations_end_the_connection_with_a_typed_error() {
    let cases: Vec<(Packet, ProtocolViolation, DisconnectReasonCode)> = vec![
        (
            Packet::PubAck(PubAck::new(id(99))),
            ProtocolViolation::UnknownPacketId {
                packet: mqtt_proto::PacketType::PubAck,
                packet_id: 99,
            },
            DisconnectReasonCode::ProtocolError,
        ),
        (
            Packet::PubComp(PubComp::new(id(1))),
            ProtocolViolation::UnknownPacketId {
                packet: mqtt_proto::PacketType::PubComp,
                packet_id: 1,
            },
            DisconnectReasonCode::ProtocolError,
        ),
        (
            Packet::from(ConnAck::accepted(false)),
            ProtocolViolation::SecondConnAck,
            DisconnectReasonCode::ProtocolError,
        ),
        (
            Packet::PingReq,
            ProtocolViolation::UnexpectedPacket(mqtt_proto::PacketType::PingReq),
            DisconnectReasonCode::ProtocolError,
        ),
    ];
    for (packet, violation, reason) in cases {
        let mut pair = Pair::new(config(ProtocolVersion::V5));
        pair.connect(false);
        pair.deliver(packet);
        assert_eq!(
            disconnected(&pair.events()),
            Some(ConnectionError::ProtocolViolation(violation))
        );
        assert_eq!(
            pair.sent(),
            vec![Packet::Disconnect(Disconnect::new(reason))]
        );
        // Nothing more is read or sent on that connection.
        pair.deliver(Packet::PingResp);
        pair.session
            .publish(pair.now, msg("a", QoS::AtMostOnce))
            .unwrap();
        assert!(pair.sent().is_empty());
        assert!(pair.events().is_empty());
    }
}

#[test]
fn malformed_bytes_are_a_typed_error_with_disconnect_0x81() {
    let mut pair = Pair::new(config(ProtocolVersion::V5));
    pair.connect(false);
    pair.deliver_bytes(&[0x32, 0x03, 0x00, 0x01, b'#']); // QoS 1 PUBLISH, truncated
    assert!(matches!(
        disconnected(&pair.events()),
        Some(ConnectionError::ProtocolViolation(
            ProtocolViolation::Malformed(_)
        ))
    ));
    assert_eq!(
        pair.sent(),
        vec![Packet::Disconnect(Disconnect::new(
            DisconnectReasonCode::MalformedPacket
        ))]
    );
}

#[test]
fn oversized_packets_are_refused_from_the_header() {
    let mut pair = Pair::new(config(ProtocolVersion::V5).max_packet_size(1024));
    let connect = pair.open();
    assert_eq!(
        connect.properties.maximum_packet_size,
        NonZeroU32::new(1024),
        "announced in CONNECT"
    );
    pair.deliver(Packet::from(ConnAck::accepted(false)));
    pair.events();
    // A PUBLISH header declaring 100 MB, without its body.
    pair.deliver_bytes(&[0x30, 0x80, 0xDA, 0xC4, 0x09]);
    assert!(matches!(
        disconnected(&pair.events()),
        Some(ConnectionError::ProtocolViolation(ProtocolViolation::Malformed(e)))
            if matches!(e.kind(), mqtt_proto::DecodeErrorKind::PacketTooLarge { .. })
    ));
    assert_eq!(
        pair.sent(),
        vec![Packet::Disconnect(Disconnect::new(
            DisconnectReasonCode::PacketTooLarge
        ))]
    );
}

#[test]
fn server_disconnect_is_reported_with_its_reason() {
    let mut pair = Pair::new(config(ProtocolVersion::V5));
    pair.connect(false);
    pair.deliver(Packet::Disconnect(Disconnect::new(
        DisconnectReasonCode::ServerShuttingDown,
    )));
    assert!(matches!(
        disconnected(&pair.events()),
        Some(ConnectionError::ServerDisconnected {
            reason: DisconnectReasonCode::ServerShuttingDown,
            ..
        })
    ));
}

#[test]
fn local_disconnect_sends_disconnect_then_nothing() {
    // [MQTT-3.14.4-1 v3.1.1 v5.0] [MQTT-3.14.4-2 v3.1.1 v5.0]
    for version in VERSIONS {
        let mut pair = Pair::new(config(version));
        pair.connect(false);
        pair.session.disconnect(pair.now);
        assert_eq!(pair.sent(), vec![Packet::Disconnect(Disconnect::default())]);
        assert!(pair.session.wants_close());
        assert_eq!(
            disconnected(&pair.events()),
            Some(ConnectionError::LocalDisconnect)
        );
        pair.session
            .publish(pair.now, msg("a", QoS::AtLeastOnce))
            .unwrap();
        assert!(pair.sent().is_empty());
        pair.cut();
        assert!(pair.events().is_empty(), "one Disconnected per connection");
        assert_eq!(pair.session.queued(), 1, "kept for the next connection");
    }
}

#[test]
fn empty_client_id_needs_clean_session_before_v5() {
    // [MQTT-3.1.3-7 v3.1.1]
    let cfg = mqtt_session::Config::new("")
        .unwrap()
        .version(ProtocolVersion::V3_1_1)
        .clean_start(false);
    let mut session = Session::new(cfg);
    session.handle_connected(std::time::Instant::now());
    assert!(matches!(
        session.poll_event(),
        Some(Event::Disconnected {
            reason: ConnectionError::InvalidConfig(ConfigError::EmptyClientIdNeedsCleanSession)
        })
    ));
}

#[test]
fn assigned_client_id_is_used_on_reconnect() {
    // [MQTT-3.1.3-2 v5.0]: the client id names the session, so the resumed one is reused.
    let cfg = mqtt_session::Config::new("")
        .unwrap()
        .version(ProtocolVersion::V5)
        .session_expiry(60);
    let mut pair = Pair::new(cfg);
    pair.connect_with(
        false,
        ConnAckProperties {
            assigned_client_identifier: Some(MqttString::new("srv-42").unwrap()),
            ..Default::default()
        },
    );
    assert_eq!(pair.session.client_id(), "srv-42");
    pair.cut();
    let connect = pair.open();
    assert_eq!(connect.client_id, "srv-42");
}

#[test]
fn enhanced_authentication_round_trips() {
    // [MQTT-3.1.2-30 v5.0]: until CONNACK only AUTH goes out, even with messages waiting.
    let mut cfg = config(ProtocolVersion::V5);
    cfg.properties.authentication_method = Some(MqttString::new("SCRAM-SHA-1").unwrap());
    let mut pair = Pair::new(cfg);
    pair.open();
    pair.session
        .publish(pair.now, msg("queued", QoS::AtLeastOnce))
        .unwrap();
    let challenge = Auth {
        reason_code: AuthReasonCode::ContinueAuthentication,
        properties: AuthProperties {
            authentication_method: Some(MqttString::new("SCRAM-SHA-1").unwrap()),
            authentication_data: Some(Bytes::from_static(b"challenge")),
            ..Default::default()
        }
        .into(),
    };
    pair.deliver(Packet::Auth(challenge.clone()));
    assert_eq!(pair.events(), vec![Event::Auth(challenge)]);
    let response = Auth {
        reason_code: AuthReasonCode::ContinueAuthentication,
        properties: AuthProperties {
            authentication_method: Some(MqttString::new("SCRAM-SHA-1").unwrap()),
            authentication_data: Some(Bytes::from_static(b"response")),
            ..Default::default()
        }
        .into(),
    };
    pair.session.auth(pair.now, response.clone()).unwrap();
    assert_eq!(pair.sent(), vec![Packet::Auth(response)]);
    pair.deliver(Packet::from(ConnAck::accepted(false)));
    assert!(pair.session.is_connected());
    assert!(matches!(&pair.sent()[..], [Packet::Publish(p)] if p.topic.as_str() == "queued"));

    let mut plain = Pair::new(config(ProtocolVersion::V5));
    plain.connect(false);
    assert!(
        plain
            .session
            .auth(
                plain.now,
                Auth {
                    reason_code: AuthReasonCode::ReAuthenticate,
                    properties: Default::default()
                }
            )
            .is_err(),
        "[MQTT-4.12.0-7 v5.0]"
    );
}

#[test]
fn restart_from_store_resumes_qos2_exactly_once() {
    let store = MemoryStore::new();
    let cfg = config(ProtocolVersion::V3_1_1).clean_start(false);
    let mut pair = Pair::with_session(
        Session::with_store(cfg.clone(), Box::new(store.clone())).unwrap(),
        ProtocolVersion::V3_1_1,
    );
    pair.connect(false);
    pair.session
        .publish(pair.now, msg("out", QoS::ExactlyOnce))
        .unwrap();
    pair.session
        .publish(pair.now, msg("out", QoS::AtLeastOnce))
        .unwrap();
    pair.sent();
    pair.deliver(Packet::PubRec(PubRec::new(id(1))));
    pair.deliver(server_publish("in", QosPid::ExactlyOnce(id(9)), b"once"));
    pair.sent();
    assert_eq!(
        pair.events()
            .iter()
            .filter(|e| matches!(e, Event::Message { .. }))
            .count(),
        1
    );
    drop(pair); // the process dies

    let restarted = Session::with_store(cfg, Box::new(store)).unwrap();
    let mut pair = Pair::with_session(restarted, ProtocolVersion::V3_1_1);
    let connect = pair.open();
    assert!(!connect.clean_start);
    pair.deliver(Packet::from(ConnAck::accepted(true)));
    let resent = pair.sent();
    assert_eq!(resent[0], Packet::PubRel(PubRel::new(id(1))));
    assert!(matches!(&resent[1], Packet::Publish(p) if p.dup && p.packet_id() == Some(id(2))));
    // The server resends its QoS 2 message: answered, not delivered again.
    let mut dup = mqtt_proto::Publish::new(topic("in"), QosPid::ExactlyOnce(id(9)), &b"once"[..]);
    dup.dup = true;
    pair.deliver(Packet::Publish(dup));
    assert_eq!(pair.sent(), vec![Packet::PubRec(PubRec::new(id(9)))]);
    assert!(pair
        .events()
        .iter()
        .all(|e| !matches!(e, Event::Message { .. })));
    // New identifiers do not collide with restored ones.
    pair.session
        .publish(pair.now, msg("out", QoS::AtLeastOnce))
        .unwrap();
    assert!(matches!(&pair.sent()[..], [Packet::Publish(p)] if p.packet_id() == Some(id(3))));
}

#[test]
fn auth_repeats_the_connect_method_and_uses_allowed_codes() {
    // [MQTT-4.12.0-3 v5.0] [MQTT-4.12.0-5 v5.0] [MQTT-4.12.1-1 v5.0]
    let method = MqttString::new("SCRAM-SHA-1").unwrap();
    let mut cfg = config(ProtocolVersion::V5);
    cfg.properties.authentication_method = Some(method.clone());
    let mut pair = Pair::new(cfg);
    pair.open();
    let auth = |reason_code, method: Option<MqttString>| Auth {
        reason_code,
        properties: AuthProperties {
            authentication_method: method,
            ..Default::default()
        }
        .into(),
    };
    assert_eq!(
        pair.session.auth(
            pair.now,
            auth(
                AuthReasonCode::ContinueAuthentication,
                Some(MqttString::new("PLAIN").unwrap())
            )
        ),
        Err(mqtt_session::AuthError::MethodMismatch)
    );
    assert_eq!(
        pair.session.auth(
            pair.now,
            auth(AuthReasonCode::ReAuthenticate, Some(method.clone()))
        ),
        Err(mqtt_session::AuthError::WrongReasonCode(
            AuthReasonCode::ReAuthenticate
        )),
        "only continue-authentication before CONNACK"
    );
    assert!(pair.sent().is_empty());
    pair.deliver(Packet::from(ConnAck::accepted(false)));
    pair.session
        .auth(pair.now, auth(AuthReasonCode::ReAuthenticate, Some(method)))
        .unwrap();
    assert!(
        matches!(&pair.sent()[..], [Packet::Auth(a)] if a.reason_code == AuthReasonCode::ReAuthenticate)
    );
}

#[test]
fn caller_chosen_tokens_continue_after_restored_ones() {
    let store = MemoryStore::new();
    let cfg = config(ProtocolVersion::V3_1_1).clean_start(false);
    let mut session = Session::with_store(cfg.clone(), Box::new(store.clone())).unwrap();
    let mut pair = Pair::with_session(session, ProtocolVersion::V3_1_1);
    pair.connect(false);
    let first = pair.session.next_publish_token();
    pair.session
        .publish_with_token(
            pair.now,
            msg("a", QoS::AtLeastOnce),
            mqtt_session::PublishToken(first.0 + 41),
        )
        .unwrap();
    drop(pair);
    session = Session::with_store(cfg, Box::new(store)).unwrap();
    assert_eq!(
        session.next_publish_token().0,
        first.0 + 42,
        "restored tokens are never handed out again"
    );
}

#[test]
fn pubrels_leave_in_the_order_the_pubrecs_arrived() {
    // [MQTT-4.6.0-4 v5.0]
    let mut pair = Pair::new(config(ProtocolVersion::V5));
    pair.connect(false);
    for _ in 0..3 {
        pair.session
            .publish(pair.now, msg("a", QoS::ExactlyOnce))
            .unwrap();
    }
    pair.sent();
    for n in [3, 1, 2] {
        pair.deliver(Packet::PubRec(PubRec::new(id(n))));
    }
    assert_eq!(
        pair.sent(),
        vec![
            Packet::PubRel(PubRel::new(id(3))),
            Packet::PubRel(PubRel::new(id(1))),
            Packet::PubRel(PubRel::new(id(2))),
        ]
    );
}

#[test]
fn topic_aliases_do_not_outlive_the_connection() {
    // [MQTT-3.3.2-7 v5.0]: mappings in both directions start empty on a new connection.
    let mut cfg = config(ProtocolVersion::V5)
        .clean_start(false)
        .session_expiry(60);
    cfg.properties.topic_alias_maximum = Some(4);
    let mut pair = Pair::new(cfg);
    let with_aliases = ConnAckProperties {
        topic_alias_maximum: Some(4),
        ..Default::default()
    };
    pair.connect_with(false, with_aliases.clone());
    let mut aliased = mqtt_proto::Publish::new(topic("x/y"), QosPid::AtMostOnce, &b"1"[..]);
    aliased.properties.topic_alias = NonZeroU16::new(1);
    pair.deliver(Packet::Publish(aliased.clone()));
    pair.session
        .publish(pair.now, msg("a/b", QoS::AtMostOnce))
        .unwrap();
    pair.sent();
    pair.cut();
    pair.open();
    pair.deliver(Packet::from(ConnAck {
        session_present: true,
        reason_code: ConnectReasonCode::Success,
        properties: with_aliases,
    }));
    pair.events();
    // Our alias for a/b is defined afresh: the topic goes out in full again.
    pair.session
        .publish(pair.now, msg("a/b", QoS::AtMostOnce))
        .unwrap();
    assert!(matches!(&pair.sent()[..], [Packet::Publish(p)] if p.topic.as_str() == "a/b"));
    // The server's alias 1 from the old connection means nothing now.
    let mut stale = aliased;
    stale.topic = mqtt_proto::TopicName::empty_for_alias();
    pair.deliver(Packet::Publish(stale));
    assert_eq!(
        disconnected(&pair.events()),
        Some(ConnectionError::ProtocolViolation(
            ProtocolViolation::TopicAliasInvalid(1)
        ))
    );
}

#[test]
fn diagnostics_are_dropped_to_fit_the_server_maximum_packet_size() {
    // [MQTT-3.14.2-3 v5.0] [MQTT-3.14.2-4 v5.0] [MQTT-3.15.2-2 v5.0] [MQTT-3.15.2-3 v5.0]
    let method = MqttString::new("M").unwrap();
    let mut cfg = config(ProtocolVersion::V5);
    cfg.properties.authentication_method = Some(method.clone());
    let mut pair = Pair::new(cfg);
    pair.connect_with(
        false,
        ConnAckProperties {
            maximum_packet_size: NonZeroU32::new(64),
            ..Default::default()
        },
    );
    let long = MqttString::new(&"r".repeat(100)).unwrap();
    let user = mqtt_proto::UserProperty::new(long.clone(), long.clone());
    let small =
        mqtt_proto::UserProperty::new(MqttString::new("k").unwrap(), MqttString::new("v").unwrap());
    // Dropping the reason string is enough: the small user property stays.
    let mut auth = Auth {
        reason_code: AuthReasonCode::ReAuthenticate,
        properties: AuthProperties {
            authentication_method: Some(method.clone()),
            reason_string: Some(long.clone()),
            user_properties: vec![small.clone()],
            ..Default::default()
        }
        .into(),
    };
    pair.session.auth(pair.now, auth.clone()).unwrap();
    auth.properties.reason_string = None;
    assert_eq!(pair.sent(), vec![Packet::Auth(auth)]);
    // Both must go for the DISCONNECT to fit.
    let mut disconnect = Disconnect::new(DisconnectReasonCode::NormalDisconnection);
    disconnect.properties.reason_string = Some(long);
    disconnect.properties.user_properties = vec![user];
    pair.session.disconnect_with(pair.now, disconnect);
    assert_eq!(
        pair.sent(),
        vec![Packet::Disconnect(Disconnect::new(
            DisconnectReasonCode::NormalDisconnection
        ))]
    );
}

#[test]
fn queued_messages_survive_a_restart_in_order() {
    for version in VERSIONS {
        let store = MemoryStore::new();
        let cfg = config(version).clean_start(false).max_inflight(1);
        let session = Session::with_store(cfg.clone(), Box::new(store.clone())).unwrap();
        let mut pair = Pair::with_session(session, version);
        pair.connect(false);
        // One message in flight, three queued behind the window (QoS 0 lives in memory only).
        let mut tokens = Vec::new();
        for (name, qos) in [
            ("first", QoS::AtLeastOnce),
            ("second", QoS::ExactlyOnce),
            ("third", QoS::AtMostOnce),
            ("fourth", QoS::AtLeastOnce),
        ] {
            let message = Message::new("out", name).unwrap().qos(qos);
            tokens.push(pair.session.publish(pair.now, message).unwrap());
        }
        assert_eq!((pair.session.inflight(), pair.session.queued()), (1, 3));
        pair.sent();
        drop(pair); // the process dies

        let restarted = Session::with_store(cfg, Box::new(store)).unwrap();
        assert_eq!(
            restarted.queued(),
            2,
            "{version:?}: the QoS 1/2 queued messages"
        );
        let mut pair = Pair::with_session(restarted, version);
        pair.open();
        pair.deliver(Packet::from(ConnAck::accepted(true)));
        let sent = pair.sent();
        assert!(
            matches!(&sent[..], [Packet::Publish(p)] if p.dup && &p.payload[..] == b"first"),
            "{version:?}: the flow in flight is resent first: {sent:?}"
        );
        pair.deliver(Packet::PubAck(PubAck::new(id(1))));
        let sent = pair.sent();
        assert!(
            matches!(&sent[..], [Packet::Publish(p)] if !p.dup && &p.payload[..] == b"second"),
            "{version:?}: then the queue, in order: {sent:?}"
        );
        let second = sent[0].clone();
        let Packet::Publish(second) = second else {
            unreachable!()
        };
        let second_id = second.packet_id().unwrap();
        pair.deliver(Packet::PubRec(PubRec::new(second_id)));
        pair.sent();
        pair.deliver(Packet::PubComp(PubComp::new(second_id)));
        let sent = pair.sent();
        assert!(
            matches!(&sent[..], [Packet::Publish(p)] if &p.payload[..] == b"fourth"),
            "{version:?}: {sent:?}"
        );
        let completed: Vec<_> = pair
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Published { token, .. } => Some(token),
                _ => None,
            })
            .collect();
        assert_eq!(
            completed,
            vec![tokens[0], tokens[1]],
            "{version:?}: restored messages keep their tokens"
        );
    }
}

#[test]
fn a_queued_record_whose_flow_started_is_dropped_on_restore() {
    use mqtt_session::store::{OutgoingRecord, OutgoingState, QueuedRecord};
    use mqtt_session::{PublishToken, SessionStore};
    // The process stopped after writing the flow of token 7 and before forgetting its queued
    // record: the message must go once, as the flow, and the stale record must go away.
    let mut store = MemoryStore::new();
    let message = msg("out", QoS::ExactlyOnce);
    store
        .put_queued(&QueuedRecord {
            token: PublishToken(7),
            message: message.clone(),
            expires_at: None,
        })
        .unwrap();
    let publish = mqtt_proto::Publish::new(
        message.topic.clone(),
        QosPid::ExactlyOnce(id(1)),
        message.payload.clone(),
    );
    store
        .put_outgoing(&OutgoingRecord {
            seq: 0,
            token: PublishToken(7),
            state: OutgoingState::Published,
            publish,
            expires_at: None,
        })
        .unwrap();
    let cfg = config(ProtocolVersion::V5).clean_start(false);
    let session = Session::with_store(cfg, Box::new(store.clone())).unwrap();
    assert_eq!((session.inflight(), session.queued()), (1, 0));
    assert!(store.load().unwrap().queued.is_empty());
    assert_eq!(session.next_publish_token(), PublishToken(8));
}

#[test]
fn a_store_that_cannot_record_a_queued_message_refuses_it() {
    use mqtt_session::store::{OutgoingRecord, QueuedRecord, StoredSession};
    use mqtt_session::{PublishToken, SessionStore, StoreError};
    /// A store whose disk is full for queued records.
    struct Full;
    impl SessionStore for Full {
        fn put_outgoing(&mut self, _: &OutgoingRecord) -> Result<(), StoreError> {
            Ok(())
        }
        fn remove_outgoing(&mut self, _: mqtt_proto::PacketId) -> Result<(), StoreError> {
            Ok(())
        }
        fn put_incoming(&mut self, _: mqtt_proto::PacketId) -> Result<(), StoreError> {
            Ok(())
        }
        fn remove_incoming(&mut self, _: mqtt_proto::PacketId) -> Result<(), StoreError> {
            Ok(())
        }
        fn put_queued(&mut self, _: &QueuedRecord) -> Result<(), StoreError> {
            Err(StoreError::Io("no space left on device".into()))
        }
        fn remove_queued(&mut self, _: PublishToken) -> Result<(), StoreError> {
            Ok(())
        }
        fn put_subscription(
            &mut self,
            _: &mqtt_session::store::SubscriptionRecord,
        ) -> Result<(), StoreError> {
            Ok(())
        }
        fn remove_subscription(&mut self, _: &TopicFilter) -> Result<(), StoreError> {
            Ok(())
        }
        fn load(&mut self) -> Result<StoredSession, StoreError> {
            Ok(StoredSession::default())
        }
        fn clear(&mut self) -> Result<(), StoreError> {
            Ok(())
        }
    }
    let cfg = config(ProtocolVersion::V3_1_1).clean_start(false);
    let mut session = Session::with_store(cfg, Box::new(Full)).unwrap();
    // Offline, so the message would wait in the queue: refused, not accepted and forgotten.
    let refused = session.publish(std::time::Instant::now(), msg("out", QoS::AtLeastOnce));
    assert!(matches!(refused, Err(PublishError::Store(_))));
    assert_eq!(session.queued(), 0);
    // QoS 0 is not stored, so the store's state does not matter.
    session
        .publish(std::time::Instant::now(), msg("out", QoS::AtMostOnce))
        .unwrap();
    assert_eq!(session.queued(), 1);
}

#[test]
fn a_lost_session_rewrites_its_flows_not_its_queue() {
    use mqtt_session::store::{OutgoingRecord, QueuedRecord, StoredSession};
    use mqtt_session::{PublishToken, SessionStore, StoreError};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    /// A memory store that counts the queued records written.
    struct Counting(MemoryStore, Arc<AtomicUsize>);
    impl SessionStore for Counting {
        fn put_outgoing(&mut self, r: &OutgoingRecord) -> Result<(), StoreError> {
            self.0.put_outgoing(r)
        }
        fn remove_outgoing(&mut self, id: mqtt_proto::PacketId) -> Result<(), StoreError> {
            self.0.remove_outgoing(id)
        }
        fn put_incoming(&mut self, id: mqtt_proto::PacketId) -> Result<(), StoreError> {
            self.0.put_incoming(id)
        }
        fn remove_incoming(&mut self, id: mqtt_proto::PacketId) -> Result<(), StoreError> {
            self.0.remove_incoming(id)
        }
        fn put_queued(&mut self, r: &QueuedRecord) -> Result<(), StoreError> {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.put_queued(r)
        }
        fn remove_queued(&mut self, token: PublishToken) -> Result<(), StoreError> {
            self.0.remove_queued(token)
        }
        fn put_subscription(
            &mut self,
            r: &mqtt_session::store::SubscriptionRecord,
        ) -> Result<(), StoreError> {
            self.0.put_subscription(r)
        }
        fn remove_subscription(&mut self, f: &TopicFilter) -> Result<(), StoreError> {
            self.0.remove_subscription(f)
        }
        fn load(&mut self) -> Result<StoredSession, StoreError> {
            self.0.load()
        }
        fn clear(&mut self) -> Result<(), StoreError> {
            self.0.clear()
        }
    }
    let mut memory = MemoryStore::new();
    let writes = Arc::new(AtomicUsize::new(0));
    let store = Counting(memory.clone(), writes.clone());
    let cfg = config(ProtocolVersion::V3_1_1)
        .clean_start(false)
        .max_inflight(1);
    let session = Session::with_store(cfg, Box::new(store)).unwrap();
    let mut pair = Pair::with_session(session, ProtocolVersion::V3_1_1);
    pair.connect(false);
    for _ in 0..5 {
        pair.session
            .publish(pair.now, msg("q", QoS::AtLeastOnce))
            .unwrap();
    }
    assert_eq!(
        writes.load(Ordering::SeqCst),
        4,
        "one in flight, four queued"
    );
    pair.sent();
    pair.cut();
    pair.open();
    pair.deliver(Packet::from(ConnAck::accepted(false)));
    assert_eq!(
        writes.load(Ordering::SeqCst),
        5,
        "the flow in flight goes back to the queue; the queue is not written again"
    );
    let stored = memory.load().unwrap();
    // The first message went out again at once, so only the four behind it are queued.
    assert_eq!((stored.outgoing.len(), stored.queued.len()), (1, 4));
}
