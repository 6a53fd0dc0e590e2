//! Every connection state has a deadline: a packet that does not complete, a server that
//! trickles bytes, a keep alive that cannot be expressed, a store that cannot commit.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::{config, Pair};
use mqtt_proto::{Packet, PacketId, ProtocolVersion, QoS};
use mqtt_session::store::{
    OutgoingRecord, QueuedRecord, SessionStore, StoredSession, SubscriptionRecord,
};
use mqtt_session::{
    ConfigError, ConnectionError, Event, MemoryStore, Message, PublishToken, Session, StoreError,
};

fn disconnect_reason(events: &[Event]) -> Option<ConnectionError> {
    events.iter().find_map(|e| match e {
        Event::Disconnected { reason } => Some(reason.clone()),
        _ => None,
    })
}

/// The first bytes of a PUBLISH announcing `len` bytes of body.
fn announce(len: u32) -> Vec<u8> {
    let mut header = vec![0x30];
    let mut rest = len;
    loop {
        let byte = (rest % 128) as u8;
        rest /= 128;
        header.push(if rest > 0 { byte | 0x80 } else { byte });
        if rest == 0 {
            break;
        }
    }
    header.extend_from_slice(&[0x00, 0x01, b't']);
    header
}

#[test]
fn a_packet_trickled_a_byte_a_second_is_cut_off_at_the_packet_timeout() {
    let mut pair = Pair::new(
        config(ProtocolVersion::V3_1_1)
            .keep_alive(Duration::from_secs(5))
            .packet_timeout(Duration::from_secs(20)),
    );
    pair.connect(false);
    let start = pair.now;
    pair.deliver_bytes(&announce(100_000));
    let mut ended = None;
    for _ in 0..120 {
        pair.now += Duration::from_secs(1);
        pair.deliver_bytes(&[0xA5]);
        if pair.session.poll_timeout().is_some_and(|t| t <= pair.now) {
            pair.session.handle_timeout(pair.now);
        }
        if let Some(reason) = disconnect_reason(&pair.events()) {
            ended = Some((reason, pair.now - start));
            break;
        }
    }
    let (reason, after) = ended.expect("the connection ended");
    assert_eq!(
        reason,
        ConnectionError::PacketTimeout(Duration::from_secs(20))
    );
    assert!(after <= Duration::from_secs(21), "after {after:?}");
}

#[test]
fn the_packet_timeout_is_derived_from_keep_alive() {
    let mut pair = Pair::new(config(ProtocolVersion::V3_1_1).keep_alive(Duration::from_secs(4)));
    pair.connect(false);
    pair.deliver_bytes(&announce(1000)[..3]);
    // Keep alive 4 s plus the ping timeout (10 s).
    assert!(pair.fire_timer());
    pair.sent();
    let mut reason = disconnect_reason(&pair.events());
    for _ in 0..4 {
        if reason.is_some() {
            break;
        }
        pair.fire_timer();
        reason = disconnect_reason(&pair.events());
    }
    assert_eq!(
        reason,
        Some(ConnectionError::PacketTimeout(Duration::from_secs(14)))
    );
}

#[test]
fn a_large_packet_arriving_steadily_is_not_taken_for_silence() {
    // Bytes of an unfinished packet do not count as life for keep alive, but while they
    // come in the packet deadline, not the ping deadline, governs: a big message on a slow
    // link is not cut off after keep alive plus the ping timeout.
    let mut pair = Pair::new(
        config(ProtocolVersion::V3_1_1)
            .keep_alive(Duration::from_secs(2))
            .packet_timeout(Duration::from_secs(300))
            .max_packet_size(1 << 20),
    );
    pair.connect(false);
    let body = 60_000u32;
    let mut wire = announce(body);
    let total = wire.len() - 3 + body as usize;
    wire.resize(total, 0x5A);
    let chunks: Vec<&[u8]> = wire.chunks(1000).collect();
    for chunk in chunks {
        pair.now += Duration::from_millis(500);
        pair.deliver_bytes(chunk);
        if pair.session.poll_timeout().is_some_and(|t| t <= pair.now) {
            pair.session.handle_timeout(pair.now);
        }
    }
    let events = pair.events();
    assert_eq!(disconnect_reason(&events), None, "{events:?}");
    assert!(events.iter().any(|e| matches!(e, Event::Message { .. })));
}

#[test]
fn keep_alive_below_one_second_is_a_typed_error_not_zero() {
    for ms in [1, 500, 999] {
        let mut pair =
            Pair::new(config(ProtocolVersion::V3_1_1).keep_alive(Duration::from_millis(ms)));
        pair.session.handle_connected(pair.now);
        assert!(pair.sent().is_empty(), "no CONNECT with keep alive 0");
        assert_eq!(
            disconnect_reason(&pair.events()),
            Some(ConnectionError::InvalidConfig(
                ConfigError::KeepAliveOutOfRange(Duration::from_millis(ms))
            ))
        );
    }
    let mut pair =
        Pair::new(config(ProtocolVersion::V3_1_1).keep_alive(Duration::from_millis(1500)));
    assert_eq!(pair.open().keep_alive, 2, "a fraction rounds up");
}

/// A store whose commits fail on demand, counting them.
#[derive(Default, Clone)]
struct CountingStore {
    inner: MemoryStore,
    fail: Arc<AtomicBool>,
    commits: Arc<AtomicUsize>,
}

impl SessionStore for CountingStore {
    fn put_outgoing(&mut self, record: &OutgoingRecord) -> Result<(), StoreError> {
        self.inner.put_outgoing(record)
    }
    fn remove_outgoing(&mut self, id: PacketId) -> Result<(), StoreError> {
        self.inner.remove_outgoing(id)
    }
    fn put_incoming(&mut self, id: PacketId) -> Result<(), StoreError> {
        self.inner.put_incoming(id)
    }
    fn remove_incoming(&mut self, id: PacketId) -> Result<(), StoreError> {
        self.inner.remove_incoming(id)
    }
    fn put_queued(&mut self, record: &QueuedRecord) -> Result<(), StoreError> {
        self.inner.put_queued(record)
    }
    fn remove_queued(&mut self, token: PublishToken) -> Result<(), StoreError> {
        self.inner.remove_queued(token)
    }
    fn put_subscription(&mut self, record: &SubscriptionRecord) -> Result<(), StoreError> {
        self.inner.put_subscription(record)
    }
    fn remove_subscription(&mut self, filter: &mqtt_proto::TopicFilter) -> Result<(), StoreError> {
        self.inner.remove_subscription(filter)
    }
    fn load(&mut self) -> Result<StoredSession, StoreError> {
        self.inner.load()
    }
    fn clear(&mut self) -> Result<(), StoreError> {
        self.inner.clear()
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            Err(StoreError::Io("no space left on device".into()))
        } else {
            Ok(())
        }
    }
}

fn with_store(store: &CountingStore, version: ProtocolVersion) -> Pair {
    let mut cfg = config(version).clean_start(false);
    if version.is_v5() {
        cfg = cfg.session_expiry(60);
    }
    let session = Session::with_store(cfg, Box::new(store.clone())).unwrap();
    Pair::with_session(session, version)
}

#[test]
fn nothing_that_depends_on_a_failed_commit_is_sent() {
    let store = CountingStore::default();
    let mut pair = with_store(&store, ProtocolVersion::V5);
    pair.connect(false);
    store.fail.store(true, Ordering::SeqCst);
    let message = Message::new("t", "x").unwrap().qos(QoS::ExactlyOnce);
    pair.session.publish(pair.now, message).unwrap();
    let sent = pair.sent();
    assert!(
        !sent.iter().any(|p| matches!(p, Packet::Publish(_))),
        "the PUBLISH was not made durable, so it is not sent: {sent:?}"
    );
    let events = pair.events();
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::StoreFailed(StoreError::Io(_)))));
    assert!(matches!(
        disconnect_reason(&events),
        Some(ConnectionError::StoreFailed(_))
    ));
    // The next connection, with a working store, sends it.
    store.fail.store(false, Ordering::SeqCst);
    pair.cut();
    pair.connect(true);
    let sent = pair.sent();
    assert!(
        sent.iter().any(|p| matches!(p, Packet::Publish(_))),
        "{sent:?}"
    );
}

#[test]
fn one_commit_covers_a_batch_of_writes() {
    let store = CountingStore::default();
    let mut pair = with_store(&store, ProtocolVersion::V3_1_1);
    pair.connect(false);
    let before = store.commits.load(Ordering::SeqCst);
    for _ in 0..5 {
        let message = Message::new("t", "x").unwrap().qos(QoS::AtLeastOnce);
        pair.session.publish(pair.now, message).unwrap();
    }
    assert_eq!(pair.sent().len(), 5);
    assert_eq!(store.commits.load(Ordering::SeqCst), before + 1);
    let mut acks = BytesMut::new();
    for n in 1..=5 {
        Packet::PubAck(mqtt_proto::PubAck::new(common::id(n)))
            .encode(ProtocolVersion::V3_1_1, &mut acks)
            .unwrap();
    }
    pair.deliver_bytes(&acks);
    pair.sent();
    assert_eq!(store.commits.load(Ordering::SeqCst), before + 2);
    pair.sent();
    assert_eq!(
        store.commits.load(Ordering::SeqCst),
        before + 2,
        "nothing written, nothing committed"
    );
}
