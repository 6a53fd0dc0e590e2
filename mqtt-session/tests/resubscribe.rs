//! A session the server lost is rebuilt: the subscriptions it had granted are sent again
//! before anything else, and kept in the store across process restarts.

mod common;

use std::num::NonZeroU32;

use common::{config, id, Pair};
use mqtt_proto::{
    ConnAck, Packet, ProtocolVersion, QoS, RetainHandling, SubAck, SubAckReasonCode,
    SubscribeProperties, Subscription, SubscriptionOptions, TopicFilter, UnsubAck,
};
use mqtt_session::{Event, FileStore, Message, Session};

const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V3_1,
    ProtocolVersion::V3_1_1,
    ProtocolVersion::V5,
];

fn sub(filter: &str, qos: QoS) -> Subscription {
    Subscription::new(TopicFilter::new(filter).unwrap(), qos)
}

fn suback(packet_id: u16, reason_codes: Vec<SubAckReasonCode>) -> Packet {
    Packet::SubAck(SubAck {
        packet_id: id(packet_id),
        properties: Default::default(),
        reason_codes,
    })
}

fn granted(packet_id: u16, qos: &[QoS]) -> Packet {
    let code = |q: &QoS| match q {
        QoS::AtMostOnce => SubAckReasonCode::GrantedQoS0,
        QoS::AtLeastOnce => SubAckReasonCode::GrantedQoS1,
        QoS::ExactlyOnce => SubAckReasonCode::GrantedQoS2,
    };
    suback(packet_id, qos.iter().map(code).collect())
}

/// The SUBSCRIBE packets among `packets`: (identifier, filters).
fn subscribes(packets: &[Packet]) -> Vec<(u16, Vec<String>)> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Subscribe(s) => Some((
                s.packet_id.get(),
                s.filters.iter().map(|f| f.filter.to_string()).collect(),
            )),
            _ => None,
        })
        .collect()
}

fn resubscribed(events: &[Event]) -> Option<Vec<(String, Result<QoS, SubAckReasonCode>)>> {
    events.iter().find_map(|e| match e {
        Event::Resubscribed { results } => {
            Some(results.iter().map(|(f, r)| (f.to_string(), *r)).collect())
        }
        _ => None,
    })
}

/// A persistent session subscribed to `a/#` (QoS 1) and `b` (QoS 2), with `c` refused.
fn subscribed(version: ProtocolVersion) -> Pair {
    let mut pair = Pair::new(config(version).clean_start(false));
    pair.connect(false);
    let packet_id = pair
        .session
        .subscribe(
            pair.now,
            vec![
                sub("a/#", QoS::AtLeastOnce),
                sub("b", QoS::ExactlyOnce),
                sub("c", QoS::AtMostOnce),
            ],
        )
        .unwrap();
    pair.sent();
    pair.deliver(suback(
        packet_id.get(),
        vec![
            SubAckReasonCode::GrantedQoS1,
            SubAckReasonCode::GrantedQoS2,
            if version.is_v5() {
                SubAckReasonCode::NotAuthorized
            } else {
                SubAckReasonCode::UnspecifiedError
            },
        ],
    ));
    pair.events();
    pair
}

#[test]
fn a_lost_session_is_resubscribed_before_anything_else() {
    for version in VERSIONS {
        let mut pair = subscribed(version);
        pair.cut();
        pair.events();
        // Published while offline: it waits behind the resubscription.
        pair.session
            .publish(
                pair.now,
                Message::new("a/1", "x").unwrap().qos(QoS::AtLeastOnce),
            )
            .unwrap();
        pair.open();
        // [MQTT-3.2.2-3 v3.1.1 v5.0 server]: the server restarted without the session.
        pair.deliver(Packet::from(ConnAck::accepted(false)));
        let sent = pair.sent();
        assert!(
            matches!(sent.first(), Some(Packet::Subscribe(_))),
            "{version:?}: the resubscription goes first: {sent:?}"
        );
        let resent = subscribes(&sent);
        assert_eq!(
            resent,
            [(resent[0].0, vec!["a/#".to_string(), "b".to_string()])],
            "{version:?}: granted filters only, the refused one is not asked again"
        );
        let Packet::Subscribe(subscribe) = &sent[0] else {
            unreachable!()
        };
        assert_eq!(subscribe.filters[0].options.qos, QoS::AtLeastOnce);
        assert_eq!(subscribe.filters[1].options.qos, QoS::ExactlyOnce);
        assert!(pair
            .events()
            .iter()
            .all(|e| !matches!(e, Event::Subscribed { .. } | Event::Resubscribed { .. })));
        pair.deliver(suback(
            resent[0].0,
            vec![
                SubAckReasonCode::GrantedQoS1,
                if version.is_v5() {
                    SubAckReasonCode::QuotaExceeded
                } else {
                    SubAckReasonCode::UnspecifiedError
                },
            ],
        ));
        let events = pair.events();
        let results = resubscribed(&events).expect("Event::Resubscribed");
        assert_eq!(results.len(), 2);
        assert_eq!(results[0], ("a/#".to_string(), Ok(QoS::AtLeastOnce)));
        assert!(results[1].1.is_err());
        assert!(
            events
                .iter()
                .all(|e| !matches!(e, Event::Subscribed { .. })),
            "the application did not ask: no Event::Subscribed"
        );
        // A filter refused now is no longer active.
        let active: Vec<String> = pair
            .session
            .subscriptions()
            .map(|r| r.subscription.filter.to_string())
            .collect();
        assert_eq!(active, ["a/#"]);
    }
}

#[test]
fn a_session_the_server_kept_is_not_resubscribed() {
    for version in VERSIONS {
        let mut pair = subscribed(version);
        pair.cut();
        pair.events();
        pair.open();
        pair.deliver(Packet::from(ConnAck::accepted(true)));
        assert!(subscribes(&pair.sent()).is_empty(), "{version:?}");
        assert!(resubscribed(&pair.events()).is_none());
    }
}

#[test]
fn a_connection_lost_before_connack_checks_the_session_it_finds_next() {
    // The server may have started a new session for a CONNECT whose CONNACK never arrived:
    // the next CONNACK says "present" of a session without the subscriptions. The client
    // cannot tell, so it subscribes again; in 5.0 without asking for retained messages again.
    for version in VERSIONS {
        let mut retain_kept = sub("r", QoS::AtLeastOnce);
        retain_kept.options.retain_handling = RetainHandling::SendAtSubscribe;
        let mut pair = Pair::new(config(version).clean_start(false));
        pair.connect(false);
        let packet_id = pair.session.subscribe(pair.now, vec![retain_kept]).unwrap();
        pair.sent();
        pair.deliver(granted(packet_id.get(), &[QoS::AtLeastOnce]));
        pair.events();
        pair.cut();
        pair.events();
        pair.open();
        pair.cut(); // no CONNACK
        pair.events();
        pair.open();
        pair.deliver(Packet::from(ConnAck::accepted(true)));
        let sent = pair.sent();
        let resent = subscribes(&sent);
        assert_eq!(resent.len(), 1, "{version:?}: {sent:?}");
        let Packet::Subscribe(subscribe) = &sent[0] else {
            panic!("{version:?}: the check goes first: {sent:?}");
        };
        let expected = if version.is_v5() {
            RetainHandling::SendAtSubscribeIfNew
        } else {
            RetainHandling::SendAtSubscribe
        };
        assert_eq!(subscribe.filters[0].options.retain_handling, expected);
        pair.deliver(granted(resent[0].0, &[QoS::AtLeastOnce]));
        assert!(resubscribed(&pair.events()).is_some());
        // Confirmed now: the next resumed session is trusted.
        pair.cut();
        pair.events();
        pair.open();
        pair.deliver(Packet::from(ConnAck::accepted(true)));
        assert!(subscribes(&pair.sent()).is_empty(), "{version:?}");
    }
}

#[test]
fn unsubscribed_filters_are_not_resubscribed_and_options_are_kept() {
    let mut pair = Pair::new(config(ProtocolVersion::V5).clean_start(false));
    pair.connect(false);
    let identified = SubscribeProperties {
        subscription_identifier: NonZeroU32::new(42),
        ..SubscribeProperties::default()
    };
    let mut no_local = sub("n/+", QoS::ExactlyOnce);
    no_local.options = SubscriptionOptions {
        no_local: true,
        retain_as_published: true,
        retain_handling: RetainHandling::DoNotSend,
        ..SubscriptionOptions::qos(QoS::ExactlyOnce)
    };
    let first = pair
        .session
        .subscribe_with(pair.now, vec![no_local.clone()], identified.clone())
        .unwrap();
    let second = pair
        .session
        .subscribe(pair.now, vec![sub("gone", QoS::AtMostOnce)])
        .unwrap();
    pair.sent();
    pair.deliver(granted(first.get(), &[QoS::ExactlyOnce]));
    pair.deliver(granted(second.get(), &[QoS::AtMostOnce]));
    let unsubscribe = pair
        .session
        .unsubscribe(pair.now, vec![TopicFilter::new("gone").unwrap()])
        .unwrap();
    pair.sent();
    pair.deliver(Packet::UnsubAck(UnsubAck {
        packet_id: unsubscribe,
        properties: Default::default(),
        reason_codes: vec![mqtt_proto::UnsubAckReasonCode::Success],
    }));
    pair.events();
    pair.cut();
    pair.events();
    pair.open();
    pair.deliver(Packet::from(ConnAck::accepted(false)));
    let sent = pair.sent();
    let [Packet::Subscribe(again)] = sent.as_slice() else {
        panic!("one SUBSCRIBE: {sent:?}");
    };
    assert_eq!(again.filters, [no_local], "options as first asked");
    assert_eq!(
        again.properties, identified,
        "the subscription identifier too"
    );
}

#[test]
fn resubscribing_can_be_turned_off() {
    let mut cfg = config(ProtocolVersion::V3_1_1).clean_start(false);
    cfg.resubscribe = false;
    let mut pair = Pair::new(cfg);
    pair.connect(false);
    let packet_id = pair
        .session
        .subscribe(pair.now, vec![sub("a", QoS::AtLeastOnce)])
        .unwrap();
    pair.sent();
    pair.deliver(granted(packet_id.get(), &[QoS::AtLeastOnce]));
    pair.cut();
    pair.events();
    pair.open();
    pair.deliver(Packet::from(ConnAck::accepted(false)));
    assert!(subscribes(&pair.sent()).is_empty());
    assert!(resubscribed(&pair.events()).is_none());
}

#[test]
fn subscriptions_survive_a_process_restart_in_the_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = || config(ProtocolVersion::V3_1_1).clean_start(false);
    {
        let store = FileStore::open(dir.path()).unwrap();
        let session = Session::with_store(cfg(), Box::new(store)).unwrap();
        let mut pair = Pair::with_session(session, ProtocolVersion::V3_1_1);
        pair.connect(false);
        let packet_id = pair
            .session
            .subscribe(
                pair.now,
                vec![sub("x/#", QoS::ExactlyOnce), sub("y", QoS::AtMostOnce)],
            )
            .unwrap();
        pair.sent();
        pair.deliver(granted(
            packet_id.get(),
            &[QoS::ExactlyOnce, QoS::AtMostOnce],
        ));
        pair.sent(); // commits
                     // The process dies here.
    }
    let store = FileStore::open(dir.path()).unwrap();
    let session = Session::with_store(cfg(), Box::new(store)).unwrap();
    let restored: Vec<String> = session
        .subscriptions()
        .map(|r| r.subscription.filter.to_string())
        .collect();
    assert_eq!(restored, ["x/#", "y"]);
    let mut pair = Pair::with_session(session, ProtocolVersion::V3_1_1);
    pair.open();
    // The broker restarted too, without persistence.
    pair.deliver(Packet::from(ConnAck::accepted(false)));
    let resent = subscribes(&pair.sent());
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].1, ["x/#", "y"]);
}
