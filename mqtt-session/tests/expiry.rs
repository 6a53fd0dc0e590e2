//! Message Expiry (5.0) of the messages the session holds: queued ones expire or go with the
//! interval left, sent ones are resent and never expire, and deadlines survive a restart
//! through the wall clock. The spec states these rules for the server ([MQTT-3.3.2-5 v5.0],
//! [MQTT-3.3.2-6 v5.0]); the session applies them to the messages it holds for the server.

mod common;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{config, id, Pair};
use mqtt_proto::{Packet, ProtocolVersion, PubAck, PubComp, PubRec, PubRel, Publish, QoS};
use mqtt_session::client::{ClientCore, ClientOptions, Command, Output, Reply};
use mqtt_session::store::SessionStore;
use mqtt_session::{Event, FileStore, MemoryStore, Message, PublishOutcome, PublishToken, Session};

/// A message that expires `secs` seconds after it is accepted.
fn expiring(topic: &str, qos: QoS, secs: u32) -> Message {
    let mut message = Message::new(topic, "payload").unwrap().qos(qos);
    message.properties.message_expiry_interval = Some(secs);
    message
}

/// The PUBLISH packets among `packets`.
fn publishes(packets: Vec<Packet>) -> Vec<Publish> {
    packets
        .into_iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        })
        .collect()
}

/// Topic, DUP and Message Expiry Interval of each PUBLISH.
fn summary(publishes: &[Publish]) -> Vec<(String, bool, Option<u32>)> {
    publishes
        .iter()
        .map(|p| {
            let interval = p.properties.message_expiry_interval;
            (p.topic.to_string(), p.dup, interval)
        })
        .collect()
}

fn outcomes(events: Vec<Event>) -> Vec<(PublishToken, PublishOutcome)> {
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::Published { token, outcome } => Some((token, outcome)),
            _ => None,
        })
        .collect()
}

fn v5_persistent() -> mqtt_session::Config {
    config(ProtocolVersion::V5)
        .clean_start(false)
        .session_expiry(3600)
}

/// A Unix time for the tests' wall clock: whole seconds, as a record keeps milliseconds.
const T: Duration = Duration::from_secs(1_700_000_000);

#[test]
fn an_expired_queued_message_is_dropped_unsent_reported_and_forgotten_by_the_store() {
    // [MQTT-3.3.2-5 v5.0 server], applied by the client to the messages it holds.
    let store = MemoryStore::new();
    let session = Session::with_store(v5_persistent(), Box::new(store.clone())).unwrap();
    let mut pair = Pair::with_session(session, ProtocolVersion::V5);
    let q1 = pair
        .session
        .publish(pair.now, expiring("q1", QoS::AtLeastOnce, 10))
        .unwrap();
    let q0 = pair
        .session
        .publish(pair.now, expiring("q0", QoS::AtMostOnce, 10))
        .unwrap();
    let kept = pair
        .session
        .publish(pair.now, expiring("kept", QoS::ExactlyOnce, 11))
        .unwrap();
    let plain = pair
        .session
        .publish(
            pair.now,
            Message::new("plain", "x").unwrap().qos(QoS::AtLeastOnce),
        )
        .unwrap();
    pair.session.commit().unwrap();
    assert_eq!(store.clone().load().unwrap().queued.len(), 3);

    pair.now += Duration::from_secs(10);
    let events = pair.connect(false);
    let sent = publishes(pair.sent());
    assert_eq!(
        summary(&sent),
        [
            ("kept".into(), false, Some(1)),
            ("plain".into(), false, None)
        ]
    );
    assert_eq!(
        outcomes(events),
        [(q1, PublishOutcome::Expired), (q0, PublishOutcome::Expired)]
    );
    let stored = store.clone().load().unwrap();
    assert!(stored.queued.is_empty(), "{stored:?}");
    let flows: Vec<PublishToken> = stored.outgoing.iter().map(|r| r.token).collect();
    assert_eq!(flows, [kept, plain]);
    assert_eq!(pair.session.queued(), 0);
    // The identifiers went to the messages that were sent.
    assert_eq!(sent[0].packet_id(), Some(id(1)));
}

#[test]
fn a_queued_message_is_sent_with_the_interval_left_rounded_down_but_never_zero() {
    // [MQTT-3.3.2-6 v5.0 server], applied by the client: the interval is cut by the time it
    // waited.
    let mut pair = Pair::new(config(ProtocolVersion::V5));
    let start = pair.now;
    for (topic, secs) in [("a", 60), ("b", 26), ("c", 3600), ("d", 0)] {
        pair.session
            .publish(pair.now, expiring(topic, QoS::AtLeastOnce, secs))
            .unwrap();
    }
    pair.now = start + Duration::from_millis(25_500);
    let events = pair.connect(false);
    assert_eq!(
        summary(&publishes(pair.sent())),
        [
            ("a".into(), false, Some(34)),
            ("b".into(), false, Some(1)),
            ("c".into(), false, Some(3574)),
            // 0 is passed on as given.
            ("d".into(), false, Some(0)),
        ]
    );
    assert!(outcomes(events).is_empty());
    // Sent at once: the whole interval.
    pair.session
        .publish(pair.now, expiring("e", QoS::AtMostOnce, 60))
        .unwrap();
    assert_eq!(
        summary(&publishes(pair.sent())),
        [("e".into(), false, Some(60))]
    );
}

#[test]
fn a_message_behind_the_window_expires_while_it_waits() {
    let mut pair = Pair::new(config(ProtocolVersion::V5).max_inflight(1));
    pair.connect(false);
    let first = pair
        .session
        .publish(pair.now, expiring("first", QoS::AtLeastOnce, 5))
        .unwrap();
    let second = pair
        .session
        .publish(pair.now, expiring("second", QoS::AtLeastOnce, 5))
        .unwrap();
    let third = pair
        .session
        .publish(pair.now, expiring("third", QoS::AtLeastOnce, 7))
        .unwrap();
    assert_eq!(
        summary(&publishes(pair.sent())),
        [("first".into(), false, Some(5))]
    );
    pair.now += Duration::from_secs(6);
    pair.deliver(Packet::PubAck(PubAck::new(id(1))));
    let sent = publishes(pair.sent());
    assert_eq!(summary(&sent), [("third".into(), false, Some(1))]);
    let outcomes = outcomes(pair.events());
    assert!(matches!(
        &outcomes[..],
        [
            (a, PublishOutcome::Acknowledged { .. }),
            (b, PublishOutcome::Expired)
        ] if *a == first && *b == second
    ));
    pair.deliver(Packet::PubAck(PubAck::new(sent[0].packet_id().unwrap())));
    assert!(matches!(
        &self::outcomes(pair.events())[..],
        [(t, PublishOutcome::Acknowledged { .. })] if *t == third
    ));
}

#[test]
fn a_sent_message_is_resent_with_the_interval_left_and_never_expires() {
    // [MQTT-4.3.3-7 v5.0]: a QoS 2 sender does not expire a message whose PUBLISH it sent;
    // [MQTT-4.4.0-1 v5.0]: a resumed session resends every unacknowledged PUBLISH. QoS 1 alike.
    let mut pair = Pair::new(v5_persistent());
    pair.connect(false);
    let t1 = pair
        .session
        .publish(pair.now, expiring("one", QoS::AtLeastOnce, 10))
        .unwrap();
    let t2 = pair
        .session
        .publish(pair.now, expiring("two", QoS::ExactlyOnce, 10))
        .unwrap();
    pair.sent();
    pair.cut();
    pair.now += Duration::from_millis(3_500);
    let mut events = pair.connect(true);
    assert_eq!(
        summary(&publishes(pair.sent())),
        [("one".into(), true, Some(6)), ("two".into(), true, Some(6))]
    );
    // Offline past the deadline: resent all the same, with the least interval there is.
    pair.cut();
    pair.now += Duration::from_secs(60);
    events.extend(pair.connect(true));
    assert_eq!(
        summary(&publishes(pair.sent())),
        [("one".into(), true, Some(1)), ("two".into(), true, Some(1))]
    );
    assert!(outcomes(events).is_empty(), "nothing expired");
    pair.deliver(Packet::PubAck(PubAck::new(id(1))));
    pair.deliver(Packet::PubRec(PubRec::new(id(2))));
    assert_eq!(pair.sent(), [Packet::PubRel(PubRel::new(id(2)))]);
    pair.deliver(Packet::PubComp(PubComp::new(id(2))));
    let outcomes = outcomes(pair.events());
    assert!(matches!(
        &outcomes[..],
        [
            (a, PublishOutcome::Acknowledged { .. }),
            (b, PublishOutcome::Completed { .. })
        ] if *a == t1 && *b == t2
    ));
}

#[test]
fn a_flow_the_server_lost_is_queued_again_and_expires_like_a_new_message() {
    // [MQTT-3.2.2-5 v5.0]: the server lost the session, so the client drops the flow and queues
    // the message anew.
    let mut pair = Pair::new(v5_persistent());
    pair.connect(false);
    let late = pair
        .session
        .publish(pair.now, expiring("late", QoS::AtLeastOnce, 10))
        .unwrap();
    pair.session
        .publish(pair.now, expiring("alive", QoS::AtLeastOnce, 100))
        .unwrap();
    pair.sent();
    pair.cut();
    pair.now += Duration::from_secs(30);
    let events = pair.connect(false);
    assert_eq!(
        summary(&publishes(pair.sent())),
        [("alive".into(), false, Some(70))]
    );
    assert_eq!(outcomes(events), [(late, PublishOutcome::Expired)]);
}

#[test]
fn before_5_0_nothing_expires() {
    for version in [ProtocolVersion::V3_1, ProtocolVersion::V3_1_1] {
        let store = MemoryStore::new();
        let cfg = config(version).clean_start(false);
        let session = Session::with_store(cfg.clone(), Box::new(store.clone())).unwrap();
        let mut pair = Pair::with_session(session, version);
        pair.session.handle_wall_clock(pair.now, T);
        let message = Message::new("old", "x").unwrap().qos(QoS::AtLeastOnce);
        let token = pair.session.publish(pair.now, message).unwrap();
        assert_eq!(store.clone().load().unwrap().queued[0].expires_at, None);
        drop(pair);

        let session = Session::with_store(cfg, Box::new(store)).unwrap();
        let mut pair = Pair::with_session(session, version);
        pair.session
            .handle_wall_clock(pair.now, T + Duration::from_secs(365 * 24 * 3600));
        pair.connect(false);
        let sent = publishes(pair.sent());
        assert_eq!(summary(&sent), [("old".into(), false, None)], "{version:?}");
        pair.deliver(Packet::PubAck(PubAck::new(id(1))));
        assert!(matches!(
            &outcomes(pair.events())[..],
            [(t, PublishOutcome::Acknowledged { .. })] if *t == token
        ));
    }
}

/// A session on a `FileStore` in `dir`, as a process starting at `now` would open it.
fn restarted(dir: &std::path::Path, now: Instant) -> Pair {
    let store = FileStore::open(dir).unwrap();
    let session = Session::with_store(v5_persistent(), Box::new(store)).unwrap();
    let mut pair = Pair::with_session(session, ProtocolVersion::V5);
    pair.now = now;
    pair
}

#[test]
fn a_restart_past_the_deadline_drops_the_message_and_one_before_it_sends_the_interval_left() {
    let dir = tempfile::tempdir().unwrap();
    let mut pair = restarted(dir.path(), Instant::now());
    pair.session.handle_wall_clock(pair.now, T);
    let gone = pair
        .session
        .publish(pair.now, expiring("gone", QoS::AtLeastOnce, 60))
        .unwrap();
    let alive = pair
        .session
        .publish(pair.now, expiring("alive", QoS::ExactlyOnce, 120))
        .unwrap();
    pair.session.commit().unwrap();
    drop(pair); // the process stops

    // A later process, whose monotonic clock has nothing to do with the first one's: 61 s
    // have passed on the wall clock.
    let mut pair = restarted(dir.path(), Instant::now() + Duration::from_secs(5));
    pair.session
        .handle_wall_clock(pair.now, T + Duration::from_secs(61));
    let events = pair.connect(false);
    let sent = publishes(pair.sent());
    assert_eq!(summary(&sent), [("alive".into(), false, Some(59))]);
    assert_eq!(outcomes(events), [(gone, PublishOutcome::Expired)]);
    drop(pair);

    // The expired message's record is gone; the other one's flow carries its deadline on.
    let loaded = FileStore::open(dir.path()).unwrap().load().unwrap();
    assert!(loaded.queued.is_empty());
    let [flow] = &loaded.outgoing[..] else {
        panic!("{loaded:?}");
    };
    assert_eq!(flow.token, alive);
    assert_eq!(flow.expires_at, Some(T + Duration::from_secs(120)));
}

#[test]
fn a_flow_restored_past_its_deadline_is_resent_not_expired() {
    // [MQTT-4.4.0-1 v5.0] [MQTT-4.3.3-7 v5.0]
    let dir = tempfile::tempdir().unwrap();
    let mut pair = restarted(dir.path(), Instant::now());
    pair.session.handle_wall_clock(pair.now, T);
    pair.connect(false);
    let token = pair
        .session
        .publish(pair.now, expiring("sent", QoS::ExactlyOnce, 60))
        .unwrap();
    pair.sent();
    drop(pair);

    for (later, interval) in [(30, 30), (600, 1)] {
        let mut pair = restarted(dir.path(), Instant::now());
        pair.session
            .handle_wall_clock(pair.now, T + Duration::from_secs(later));
        let events = pair.connect(true);
        assert_eq!(
            summary(&publishes(pair.sent())),
            [("sent".into(), true, Some(interval))]
        );
        assert!(outcomes(events).is_empty());
    }
    // Without a wall clock, the interval as recorded (as first sent) counts from the restart.
    let mut pair = restarted(dir.path(), Instant::now());
    pair.connect(true);
    assert_eq!(
        summary(&publishes(pair.sent())),
        [("sent".into(), true, Some(60))]
    );
    pair.deliver(Packet::PubRec(PubRec::new(id(1))));
    pair.deliver(Packet::PubComp(PubComp::new(id(1))));
    assert!(matches!(
        &outcomes(pair.events())[..],
        [(t, PublishOutcome::Completed { .. })] if *t == token
    ));
}

#[test]
fn without_a_wall_clock_a_restored_message_counts_its_interval_from_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    // Written with no wall clock: the record holds no deadline.
    let mut pair = restarted(dir.path(), Instant::now());
    pair.session
        .publish(pair.now, expiring("unknown", QoS::AtLeastOnce, 60))
        .unwrap();
    pair.session.commit().unwrap();
    drop(pair);
    let loaded = FileStore::open(dir.path()).unwrap().load().unwrap();
    assert_eq!(loaded.queued[0].expires_at, None);

    // A process given the wall clock writes a deadline for the next message.
    let mut pair = restarted(dir.path(), Instant::now());
    pair.session.handle_wall_clock(pair.now, T);
    pair.session
        .publish(pair.now, expiring("dated", QoS::AtLeastOnce, 60))
        .unwrap();
    pair.session.commit().unwrap();
    drop(pair);

    // A process given no wall clock cannot tell how long it was stopped: the interval as
    // stored counts from the first time it is given, for both.
    let start = Instant::now() + Duration::from_secs(1000);
    let mut pair = restarted(dir.path(), start);
    pair.session.handle_timeout(start);
    pair.now = start + Duration::from_secs(45);
    let events = pair.connect(false);
    assert_eq!(
        summary(&publishes(pair.sent())),
        [
            ("unknown".into(), false, Some(15)),
            ("dated".into(), false, Some(15))
        ]
    );
    assert!(outcomes(events).is_empty());
}

#[test]
fn a_record_without_a_deadline_counts_its_interval_from_the_restart_even_with_a_wall_clock() {
    let dir = tempfile::tempdir().unwrap();
    let mut pair = restarted(dir.path(), Instant::now());
    pair.session
        .publish(pair.now, expiring("undated", QoS::AtLeastOnce, 60))
        .unwrap();
    pair.session.commit().unwrap();
    drop(pair);

    let start = Instant::now();
    let mut pair = restarted(dir.path(), start);
    pair.session
        .handle_wall_clock(start, T + Duration::from_secs(3600));
    pair.now = start + Duration::from_secs(59);
    let events = pair.connect(false);
    assert_eq!(
        summary(&publishes(pair.sent())),
        [("undated".into(), false, Some(1))]
    );
    assert!(outcomes(events).is_empty());
}

#[test]
fn a_caller_waiting_on_an_expired_message_is_answered_with_expired() {
    let options = ClientOptions::new("mqtt://h")
        .client_id("c")
        .version(ProtocolVersion::V5);
    let (mut core, _) = ClientCore::<u32>::new(options).unwrap();
    let now = Instant::now();
    core.handle_wall_clock(now, T);
    core.handle_command(
        now,
        Command::Publish {
            message: expiring("t", QoS::AtLeastOnce, 1),
            token: PublishToken(1),
            waiter: Some(7),
        },
    );
    let later = now + Duration::from_secs(2);
    core.handle_connected(later);
    while let Some(bytes) = core.poll_transmit(later) {
        let n = bytes.len();
        core.handle_written(later, n);
    }
    // CONNACK, accepted.
    core.handle_read(
        later,
        &mut BytesMut::from(&[0x20, 0x03, 0x00, 0x00, 0x00][..]),
    );
    let outputs: Vec<Output<u32>> = std::iter::from_fn(|| core.poll_output()).collect();
    assert!(
        outputs.iter().any(|o| matches!(
            o,
            Output::Reply(7, Reply::Published(Ok(PublishOutcome::Expired)))
        )),
        "{outputs:?}"
    );
}
