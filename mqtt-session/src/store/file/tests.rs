//! Tests of the file store: round trips, torn and flipped bytes, the lock, compaction, failed
//! commits, migration, and a model check.

use std::collections::{BTreeMap, BTreeSet};

use std::num::NonZeroU32;
use std::time::Duration;

use mqtt_proto::{
    MqttString, Publish, QoS, QosPid, RetainHandling, SubscribeProperties, Subscription,
    SubscriptionOptions, TopicName, UserProperty,
};
use proptest::prelude::*;

use super::*;
use crate::message::Message;
use crate::store::{OutgoingState, SubscriptionRecord};

/// A fault injected into the next commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    /// Half the pending bytes are written, then the write fails.
    ShortWrite,
    /// The write succeeds and the sync fails.
    Sync,
}

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn outgoing(n: u16, seq: u64) -> OutgoingRecord {
    outgoing_sized(n, seq, 3)
}

fn outgoing_sized(n: u16, seq: u64, len: usize) -> OutgoingRecord {
    let payload: Vec<u8> = (0..len).map(|i| (i as u64 ^ seq) as u8).collect();
    let mut publish = Publish::new(
        TopicName::new("a/b").unwrap(),
        QosPid::ExactlyOnce(id(n)),
        payload,
    );
    publish.properties.content_type = Some(MqttString::new("text/plain").unwrap());
    OutgoingRecord {
        seq,
        token: PublishToken(seq * 10),
        state: OutgoingState::Published,
        publish,
        expires_at: deadline(seq),
    }
}

/// A deadline for every other record, so that records of both kinds (with and without one)
/// go through every test.
fn deadline(n: u64) -> Option<Duration> {
    (n % 2 == 1).then(|| Duration::from_millis(1_700_000_000_000 + n))
}

fn queued(token: u64, qos: QoS) -> QueuedRecord {
    queued_sized(token, qos, 3)
}

fn queued_sized(token: u64, qos: QoS, len: usize) -> QueuedRecord {
    let mut message = Message::new("a/b", vec![token as u8; len])
        .unwrap()
        .qos(qos);
    message.retain = token.is_multiple_of(2);
    message.properties.content_type = Some(MqttString::new("text/plain").unwrap());
    QueuedRecord {
        token: PublishToken(token),
        message,
        expires_at: deadline(token),
    }
}

/// A subscription to `filter` whose options and properties vary with `n`: every QoS, each
/// flag on and off, every retain handling, a subscription identifier or none, zero to two
/// user properties.
fn subscription(filter: &str, n: u32) -> SubscriptionRecord {
    let user_properties = (0..n % 3)
        .map(|i| {
            UserProperty::new(
                MqttString::new(&format!("key{i}")).unwrap(),
                MqttString::new(&format!("value {n}")).unwrap(),
            )
        })
        .collect();
    SubscriptionRecord {
        subscription: Subscription {
            filter: TopicFilter::new(filter).unwrap(),
            options: SubscriptionOptions {
                qos: [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][n as usize % 3],
                no_local: n & 1 != 0,
                retain_as_published: n & 2 != 0,
                retain_handling: [
                    RetainHandling::SendAtSubscribe,
                    RetainHandling::SendAtSubscribeIfNew,
                    RetainHandling::DoNotSend,
                ][n as usize / 4 % 3],
            },
        },
        properties: SubscribeProperties {
            subscription_identifier: NonZeroU32::new(n.wrapping_mul(2_654_435_761) >> 4),
            user_properties,
        },
        confirmed: !n.is_multiple_of(5),
    }
}

/// The length of a commit record.
const COMMIT_LEN: usize = HEADER_LEN + 1 + 8 + 1;

/// Opens without syncing: the tests are about content, not power loss.
fn open(dir: &Path) -> FileStore {
    FileStore::open_with(dir, false).unwrap()
}

fn log_of(dir: &Path) -> Vec<u8> {
    fs::read(dir.join(LOG)).unwrap()
}

/// A new store directory whose log is `log`.
fn dir_with_log(log: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(LOG), log).unwrap();
    dir
}

/// The offsets where the records of a valid log end.
fn record_ends(log: &[u8], from: usize) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut pos = from;
    while pos < log.len() {
        let len = u32::from_be_bytes(log[pos + 4..pos + 8].try_into().unwrap()) as usize;
        pos += HEADER_LEN + len;
        ends.push(pos);
    }
    assert_eq!(pos, log.len());
    ends
}

/// What a store holds, as maps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Model {
    outgoing: BTreeMap<u16, OutgoingRecord>,
    incoming: BTreeSet<u16>,
    queued: BTreeMap<u64, QueuedRecord>,
    subscriptions: BTreeMap<String, SubscriptionRecord>,
}

impl Model {
    /// The maps of a loaded session, checking its order.
    fn of(loaded: &StoredSession) -> Self {
        assert!(
            loaded.outgoing.is_sorted_by_key(|r| r.seq),
            "outgoing in send order"
        );
        assert!(loaded.incoming.is_sorted(), "incoming sorted");
        assert!(
            loaded.queued.is_sorted_by_key(|r| r.token),
            "queued in token order"
        );
        assert!(
            loaded.subscriptions.is_sorted_by(
                |a, b| a.subscription.filter.as_str() < b.subscription.filter.as_str()
            ),
            "subscriptions sorted by filter, one per filter"
        );
        Self {
            outgoing: loaded
                .outgoing
                .iter()
                .map(|r| (r.packet_id().unwrap().get(), r.clone()))
                .collect(),
            incoming: loaded.incoming.iter().map(|id| id.get()).collect(),
            queued: loaded
                .queued
                .iter()
                .map(|r| (r.token.0, r.clone()))
                .collect(),
            subscriptions: loaded
                .subscriptions
                .iter()
                .map(|r| (r.subscription.filter.as_str().to_owned(), r.clone()))
                .collect(),
        }
    }

    fn apply(&mut self, op: &TestOp) {
        match op {
            TestOp::PutOut(r) => {
                self.outgoing
                    .insert(r.packet_id().unwrap().get(), r.clone());
            }
            TestOp::RemoveOut(n) => {
                self.outgoing.remove(n);
            }
            TestOp::PutIn(n) => {
                self.incoming.insert(*n);
            }
            TestOp::RemoveIn(n) => {
                self.incoming.remove(n);
            }
            TestOp::PutQueued(r) => {
                self.queued.insert(r.token.0, r.clone());
            }
            TestOp::RemoveQueued(t) => {
                self.queued.remove(t);
            }
            TestOp::PutSub(r) => {
                let filter = r.subscription.filter.as_str().to_owned();
                self.subscriptions.insert(filter, r.clone());
            }
            TestOp::RemoveSub(filter) => {
                self.subscriptions.remove(filter);
            }
            TestOp::Clear => *self = Self::default(),
        }
    }
}

/// A write, as tests describe it.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
enum TestOp {
    PutOut(OutgoingRecord),
    RemoveOut(u16),
    PutIn(u16),
    RemoveIn(u16),
    PutQueued(QueuedRecord),
    RemoveQueued(u64),
    PutSub(SubscriptionRecord),
    RemoveSub(String),
    Clear,
}

impl TestOp {
    fn run(&self, store: &mut FileStore) {
        match self {
            Self::PutOut(r) => store.put_outgoing(r),
            Self::RemoveOut(n) => store.remove_outgoing(id(*n)),
            Self::PutIn(n) => store.put_incoming(id(*n)),
            Self::RemoveIn(n) => store.remove_incoming(id(*n)),
            Self::PutQueued(r) => store.put_queued(r),
            Self::RemoveQueued(t) => store.remove_queued(PublishToken(*t)),
            Self::PutSub(r) => store.put_subscription(r),
            Self::RemoveSub(filter) => {
                store.remove_subscription(&TopicFilter::new(filter).unwrap())
            }
            Self::Clear => store.clear(),
        }
        .unwrap();
    }
}

fn run_all(store: &mut FileStore, ops: &[TestOp]) -> Model {
    let mut model = Model::default();
    for op in ops {
        op.run(store);
        model.apply(op);
    }
    model
}

// ----- round trips -----

#[test]
fn every_kind_survives_reopening_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store.put_outgoing(&outgoing(9, 2)).unwrap();
    store.put_outgoing(&outgoing(3, 1)).unwrap();
    let mut released = outgoing(5, 3);
    released.state = OutgoingState::Released;
    released.publish.dup = true;
    store.put_outgoing(&released).unwrap();
    store.put_incoming(id(42)).unwrap();
    store.put_incoming(id(7)).unwrap();
    store
        .put_queued(&queued(10_000_000_000, QoS::AtLeastOnce))
        .unwrap();
    store.put_queued(&queued(9, QoS::ExactlyOnce)).unwrap();
    store.put_queued(&queued(12, QoS::AtLeastOnce)).unwrap();
    assert!(matches!(
        store.put_queued(&queued(13, QoS::AtMostOnce)),
        Err(StoreError::Corrupt(_))
    ));
    let mut qos0 = outgoing(4, 4);
    qos0.publish.qos_pid = QosPid::AtMostOnce;
    assert!(matches!(
        store.put_outgoing(&qos0),
        Err(StoreError::Corrupt(_))
    ));
    assert_eq!(
        log_of(dir.path()).len(),
        0,
        "nothing written before the commit"
    );
    store.commit().unwrap();
    drop(store);

    let mut reopened = open(dir.path());
    let loaded = reopened.load().unwrap();
    assert_eq!(
        loaded.outgoing,
        vec![outgoing(3, 1), outgoing(9, 2), released]
    );
    assert_eq!(loaded.incoming, vec![id(7), id(42)]);
    assert_eq!(
        loaded.queued,
        vec![
            queued(9, QoS::ExactlyOnce),
            queued(12, QoS::AtLeastOnce),
            queued(10_000_000_000, QoS::AtLeastOnce)
        ]
    );
    assert!(loaded.set_aside.is_empty());

    reopened.remove_outgoing(id(3)).unwrap();
    reopened.remove_incoming(id(42)).unwrap();
    reopened.remove_queued(PublishToken(12)).unwrap();
    // A load sees the writes not committed yet.
    let loaded = reopened.load().unwrap();
    assert_eq!(loaded.outgoing.len(), 2);
    assert_eq!(loaded.incoming, vec![id(7)]);
    assert_eq!(loaded.queued.len(), 2);
    reopened.commit().unwrap();
    drop(reopened);
    let mut reopened = open(dir.path());
    let loaded = reopened.load().unwrap();
    assert_eq!((loaded.outgoing.len(), loaded.incoming.len()), (2, 1));
    assert_eq!(loaded.queued.len(), 2);

    reopened.clear().unwrap();
    reopened.put_incoming(id(1)).unwrap();
    reopened.commit().unwrap();
    drop(reopened);
    let mut reopened = open(dir.path());
    let loaded = reopened.load().unwrap();
    assert_eq!(
        loaded,
        StoredSession {
            incoming: vec![id(1)],
            ..StoredSession::default()
        }
    );
    reopened.clear().unwrap();
    reopened.commit().unwrap();
    drop(reopened);
    assert_eq!(open(dir.path()).load().unwrap(), StoredSession::default());
    assert_eq!(
        log_of(dir.path()).len(),
        0,
        "open compacted the cleared log"
    );
}

#[test]
fn records_written_before_deadlines_load_without_one() {
    // Bodies of kinds 1 and 5 as a version before deadlines wrote them: a QoS 1 PUBLISH to
    // "c" with a Message Expiry Interval of 60 s and payload "x".
    let publish = [
        0x32, 12, 0, 1, b'c', 0, 7, 5, 0x02, 0, 0, 0, 60, b'x', //
    ];
    let outgoing_body: Vec<u8> = [&[1u8][..], &2u64.to_be_bytes(), &20u64.to_be_bytes(), &[1]]
        .concat()
        .into_iter()
        .chain(publish)
        .collect();
    let mut queued_publish = publish;
    queued_publish[6] = 1; // the placeholder identifier
    let queued_body: Vec<u8> = [&[5u8][..], &30u64.to_be_bytes()]
        .concat()
        .into_iter()
        .chain(queued_publish)
        .collect();
    let mut log = BytesMut::new();
    for body in [&outgoing_body, &queued_body] {
        let offset = log.len() as u64;
        log.extend_from_slice(&record::header_for(offset, body).unwrap());
        log.extend_from_slice(body);
    }
    let offset = log.len() as u64;
    record::append(&mut log, offset, &commit(0)).unwrap();
    let dir = dir_with_log(&log);
    let loaded = open(dir.path()).load().unwrap();
    assert!(loaded.set_aside.is_empty(), "{:?}", loaded.set_aside);
    let [flow] = &loaded.outgoing[..] else {
        panic!("{loaded:?}");
    };
    assert_eq!(
        (flow.seq, flow.token, flow.expires_at),
        (2, PublishToken(20), None)
    );
    assert_eq!(flow.packet_id(), Some(id(7)));
    assert_eq!(flow.publish.properties.message_expiry_interval, Some(60));
    let [queued] = &loaded.queued[..] else {
        panic!("{loaded:?}");
    };
    assert_eq!((queued.token, queued.expires_at), (PublishToken(30), None));
    assert_eq!(queued.message.properties.message_expiry_interval, Some(60));
    assert_eq!(&queued.message.payload[..], b"x");
}

#[test]
fn a_deadline_is_written_only_for_a_message_that_has_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let (without, with) = (queued(2, QoS::AtLeastOnce), queued(3, QoS::AtLeastOnce));
    assert_eq!(
        (without.expires_at.is_some(), with.expires_at.is_some()),
        (false, true)
    );
    store.put_queued(&without).unwrap();
    store.put_queued(&with).unwrap();
    store.commit().unwrap();
    let log = log_of(dir.path());
    let ends = record_ends(&log, 0);
    let kinds = [log[HEADER_LEN], log[ends[0] + HEADER_LEN]];
    assert_eq!(kinds, [5, 12]);
    assert_eq!(ends[1] - ends[0], ends[0] + 8, "the deadline costs 8 bytes");
    drop(store);
    assert_eq!(open(dir.path()).load().unwrap().queued, vec![without, with]);
}

#[test]
fn subscriptions_survive_reopening_sorted_by_filter() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    // Numbered 0, 5, 10, ...: the shared one gets an even number, so no No Local.
    let filters = ["z/#", "a/b", "$share/g/x/+", "+/c", "a", "é/ü"];
    let mut written: Vec<SubscriptionRecord> = filters
        .iter()
        .zip(0u32..)
        .map(|(f, n)| subscription(f, n * 5))
        .collect();
    // Each option and property, on in one and off in another.
    written.push(subscription("o/1", 0));
    written.push(subscription("o/2", 7));
    written.push(subscription("o/3", 8));
    written.push(subscription("o/4", 11));
    for r in &written {
        store.put_subscription(r).unwrap();
    }
    let options = |r: &SubscriptionRecord| r.subscription.options;
    assert!(written.iter().any(|r| options(r).no_local));
    assert!(written.iter().any(|r| options(r).retain_as_published));
    for handling in [
        RetainHandling::SendAtSubscribe,
        RetainHandling::SendAtSubscribeIfNew,
        RetainHandling::DoNotSend,
    ] {
        assert!(written
            .iter()
            .any(|r| options(r).retain_handling == handling));
    }
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        assert!(written.iter().any(|r| options(r).qos == qos));
    }
    assert!(written
        .iter()
        .any(|r| r.properties.user_properties.len() == 2));
    assert!(written
        .iter()
        .any(|r| r.properties.subscription_identifier.is_none()));
    // A subscription that no SUBSCRIBE can carry is refused, and nothing is written.
    let mut shared_no_local = subscription("$share/g/y", 1);
    shared_no_local.subscription.options.no_local = true;
    assert!(matches!(
        store.put_subscription(&shared_no_local),
        Err(StoreError::Corrupt(_))
    ));
    store.commit().unwrap();
    drop(store);

    let mut sorted = written.clone();
    sorted.sort_by(|a, b| {
        a.subscription
            .filter
            .as_str()
            .cmp(b.subscription.filter.as_str())
    });
    let mut reopened = open(dir.path());
    let loaded = reopened.load().unwrap();
    assert_eq!(loaded.subscriptions, sorted);
    assert_eq!(loaded.set_aside, vec![]);

    // Replace one (new options and properties), remove one and one that is not there.
    let replaced = subscription("a/b", 13);
    assert!(!sorted.contains(&replaced));
    reopened.put_subscription(&replaced).unwrap();
    reopened
        .remove_subscription(&TopicFilter::new("+/c").unwrap())
        .unwrap();
    reopened
        .remove_subscription(&TopicFilter::new("never/subscribed").unwrap())
        .unwrap();
    let mut expected: Vec<SubscriptionRecord> = sorted
        .iter()
        .filter(|r| r.subscription.filter.as_str() != "+/c")
        .map(|r| match r.subscription.filter.as_str() {
            "a/b" => replaced.clone(),
            _ => r.clone(),
        })
        .collect();
    // A load sees the writes not committed yet.
    assert_eq!(reopened.load().unwrap().subscriptions, expected);
    reopened.put_incoming(id(1)).unwrap();
    reopened.commit().unwrap();
    drop(reopened);
    let mut reopened = open(dir.path());
    let loaded = reopened.load().unwrap();
    assert_eq!(loaded.subscriptions, expected);
    assert_eq!(loaded.incoming, vec![id(1)]);

    // A clear drops them with everything else; a subscription after it stays.
    reopened.clear().unwrap();
    expected = vec![subscription("after/clear", 2)];
    reopened.put_subscription(&expected[0]).unwrap();
    reopened.commit().unwrap();
    drop(reopened);
    let mut reopened = open(dir.path());
    assert_eq!(
        reopened.load().unwrap(),
        StoredSession {
            subscriptions: expected,
            ..StoredSession::default()
        }
    );
    reopened.clear().unwrap();
    reopened.commit().unwrap();
    drop(reopened);
    assert_eq!(open(dir.path()).load().unwrap(), StoredSession::default());
    assert_eq!(
        log_of(dir.path()).len(),
        0,
        "open compacted the cleared log"
    );
}

#[test]
fn writes_after_the_last_commit_are_lost_with_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store.put_outgoing(&outgoing(1, 1)).unwrap();
    store.commit().unwrap();
    store.put_outgoing(&outgoing(2, 2)).unwrap();
    store.remove_outgoing(id(1)).unwrap();
    drop(store);
    let loaded = open(dir.path()).load().unwrap();
    assert_eq!(loaded.outgoing, vec![outgoing(1, 1)]);
}

#[test]
fn a_commit_is_one_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store.put_queued(&queued(1, QoS::AtLeastOnce)).unwrap();
    store.commit().unwrap();
    let before = log_of(dir.path());
    for n in 1..=100 {
        store.put_outgoing(&outgoing(n, u64::from(n))).unwrap();
        store.remove_queued(PublishToken(1)).unwrap();
    }
    assert_eq!(log_of(dir.path()), before);
    store.commit().unwrap();
    let after = log_of(dir.path());
    assert_eq!(&after[..before.len()], &before[..]);
    assert_eq!(
        record_ends(&after, before.len()).len(),
        200 + 1,
        "and a commit record"
    );
    // Committing nothing writes nothing.
    store.commit().unwrap();
    assert_eq!(log_of(dir.path()), after);
}

// ----- torn and flipped bytes -----

#[test]
fn a_torn_write_at_every_offset_costs_only_the_torn_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let first = [
        TestOp::PutOut(outgoing(1, 1)),
        TestOp::PutQueued(queued(10, QoS::ExactlyOnce)),
        TestOp::PutSub(subscription("a/+", 3)),
        TestOp::PutIn(5),
        TestOp::PutOut(outgoing(2, 2)),
    ];
    let second = [
        TestOp::PutOut(outgoing_sized(3, 3, 40)),
        TestOp::PutSub(subscription("b/#", 5)),
        TestOp::PutIn(6),
        TestOp::PutQueued(queued(11, QoS::AtLeastOnce)),
        TestOp::RemoveSub("a/+".into()),
        TestOp::RemoveIn(6),
        TestOp::PutSub(subscription("b/#", 10)),
        TestOp::RemoveQueued(11),
        TestOp::PutOut(outgoing(4, 4)),
    ];
    let committed = run_all(&mut store, &first);
    store.commit().unwrap();
    let first_len = log_of(dir.path()).len();
    run_all(&mut store, &second);
    store.commit().unwrap();
    drop(store);
    let full = log_of(dir.path());
    let ends = record_ends(&full, first_len);
    assert_eq!(
        ends.len(),
        second.len() + 1,
        "the records and a commit record"
    );

    for cut in first_len..=full.len() {
        let dir = dir_with_log(&full[..cut]);
        let mut store = open(dir.path());
        let loaded = store.load().unwrap();
        let complete = ends.iter().filter(|&&end| end <= cut).count();
        let mut expected = committed.clone();
        for op in second.iter().take(complete) {
            expected.apply(op);
        }
        assert_eq!(Model::of(&loaded), expected, "cut at {cut}");
        let torn_from = ends[..complete].last().copied().unwrap_or(first_len);
        if torn_from == cut {
            assert_eq!(loaded.set_aside, vec![], "cut at {cut}");
        } else {
            let [aside] = &loaded.set_aside[..] else {
                panic!("cut at {cut}: {:?}", loaded.set_aside);
            };
            assert!(aside.reason.starts_with("torn write"), "{aside:?}");
            assert!(
                aside.source.ends_with(&format!("at offset {torn_from}")),
                "{aside:?}"
            );
            let kept = fs::read(aside.kept_at.as_ref().unwrap()).unwrap();
            assert_eq!(kept, &full[torn_from..cut]);
        }
        // Reported once: the log was rewritten without the torn bytes.
        drop(store);
        let again = open(dir.path()).load().unwrap();
        assert_eq!(again.set_aside, vec![]);
        assert_eq!(Model::of(&again), expected);
    }
}

/// Flips each byte of record `index` of `log` (counted from 0), whose records start at
/// `first`, three ways: that record is set aside, the rest load as `expected`.
fn flip_every_byte(log: &[u8], first: usize, index: usize, expected: &Model) {
    let ends = record_ends(log, first);
    let start = index.checked_sub(1).map_or(first, |i| ends[i]);
    let end = ends[index];
    for offset in start..end {
        for mask in [0x01, 0x80, 0xFF] {
            let mut bad = log.to_vec();
            bad[offset] ^= mask;
            let dir = dir_with_log(&bad);
            let loaded = open(dir.path()).load().unwrap();
            assert_eq!(&Model::of(&loaded), expected, "byte {offset} ^ {mask:#x}");
            let [aside] = &loaded.set_aside[..] else {
                panic!("byte {offset}: {:?}", loaded.set_aside);
            };
            assert!(
                aside.source.ends_with(&format!("at offset {start}")),
                "{aside:?}"
            );
            assert!(aside.reason.contains("skipped"), "{aside:?}");
            let kept = fs::read(aside.kept_at.as_ref().unwrap()).unwrap();
            assert_eq!(kept, &bad[start..end]);
        }
    }
}

fn six_records() -> [TestOp; 6] {
    [
        TestOp::PutOut(outgoing(1, 1)),
        TestOp::PutQueued(queued(10, QoS::ExactlyOnce)),
        TestOp::PutOut(outgoing_sized(2, 2, 20)),
        TestOp::PutSub(subscription("s/+/t", 11)),
        TestOp::PutIn(5),
        TestOp::PutQueued(queued(11, QoS::AtLeastOnce)),
    ]
}

#[test]
fn a_flipped_byte_at_every_offset_costs_only_its_record() {
    // In a log as open leaves it: rewritten whole.
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let all = run_all(&mut store, &six_records());
    store.commit().unwrap();
    drop(store);
    drop(open(dir.path()));
    // Rewritten in key order: outgoing flows, incoming identifiers, queued messages,
    // subscriptions.
    let log = log_of(dir.path());
    let mut expected = all.clone();
    expected.incoming.remove(&5);
    flip_every_byte(&log, 0, 2, &expected);
    let mut expected = all;
    expected.subscriptions.remove("s/+/t");
    flip_every_byte(&log, 0, 5, &expected);
}

#[test]
fn a_flipped_byte_at_every_offset_of_a_committed_batch_costs_only_its_record() {
    // In a log appended to by commits: the batch of the record is followed by another.
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let ops = six_records();
    let mut all = run_all(&mut store, &ops[..4]);
    store.commit().unwrap();
    for op in &ops[4..] {
        op.run(&mut store);
        all.apply(op);
        store.commit().unwrap();
    }
    drop(store);
    let log = log_of(dir.path());
    let mut expected = all.clone();
    expected.outgoing.remove(&2);
    flip_every_byte(&log, 0, 2, &expected);
    let mut expected = all;
    expected.subscriptions.remove("s/+/t");
    flip_every_byte(&log, 0, 3, &expected);
}

#[test]
fn a_flipped_byte_in_the_last_batch_costs_the_rest_of_that_batch() {
    // The last commit may not have finished: its end may be on disk and a part before it not,
    // when power fails. Only the records before the bad one load, a prefix of the writes.
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store.put_incoming(id(1)).unwrap();
    store.commit().unwrap();
    let first = log_of(dir.path()).len();
    store.put_incoming(id(2)).unwrap();
    store.put_incoming(id(3)).unwrap();
    store.put_incoming(id(4)).unwrap();
    store.commit().unwrap();
    drop(store);
    let log = log_of(dir.path());
    let ends = record_ends(&log, first);
    let mut bad = log.clone();
    bad[ends[0] + HEADER_LEN] ^= 1;
    let dir = dir_with_log(&bad);
    let loaded = open(dir.path()).load().unwrap();
    assert_eq!(loaded.incoming, vec![id(1), id(2)]);
    let [aside] = &loaded.set_aside[..] else {
        panic!("{:?}", loaded.set_aside);
    };
    assert!(
        aside.reason.contains("with the 2 valid records after it"),
        "{aside:?}"
    );
    assert_eq!(
        fs::read(aside.kept_at.as_ref().unwrap()).unwrap(),
        &bad[ends[0]..]
    );
    // A flipped commit record leaves its batch unfinished: its records load, in order.
    let mut bad = log.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let dir = dir_with_log(&bad);
    let loaded = open(dir.path()).load().unwrap();
    assert_eq!(loaded.incoming, vec![id(1), id(2), id(3), id(4)]);
    assert_eq!(loaded.set_aside.len(), 1);
    assert!(
        loaded.set_aside[0].reason.contains("checksum"),
        "{:?}",
        loaded.set_aside
    );
}

// ----- garbage -----

#[test]
fn garbage_logs_are_set_aside_whole() {
    for garbage in [
        &b"hello, world"[..],
        &[0; 4096],
        &[0xFF; 17],
        b"MQL1",
        b"MQL1\0\0\0\x05",
        b"MQL1\xff\xff\xff\xff\0\0\0\0\0\0\0\0",
    ] {
        let dir = dir_with_log(garbage);
        let mut store = open(dir.path());
        let loaded = store.load().unwrap();
        assert_eq!(Model::of(&loaded), Model::default());
        let [aside] = &loaded.set_aside[..] else {
            panic!("{garbage:?}: {:?}", loaded.set_aside);
        };
        assert_eq!(fs::read(aside.kept_at.as_ref().unwrap()).unwrap(), garbage);
        assert_eq!(log_of(dir.path()).len(), 0);
        // The store works on.
        store.put_incoming(id(3)).unwrap();
        store.commit().unwrap();
        drop(store);
        let loaded = open(dir.path()).load().unwrap();
        assert_eq!(loaded.incoming, vec![id(3)]);
        assert_eq!(loaded.set_aside, vec![]);
    }
}

/// A log of `parts`: records (framed where they land) and raw bytes.
fn build_log(parts: &[Result<Write<'_>, &[u8]>]) -> Vec<u8> {
    let mut log = BytesMut::new();
    for part in parts {
        let offset = log.len() as u64;
        match part {
            Ok(write) => drop(record::append(&mut log, offset, write).unwrap()),
            Err(raw) => log.extend_from_slice(raw),
        }
    }
    log.to_vec()
}

fn commit(start: usize) -> Write<'static> {
    Write::Commit {
        start: start as u64,
        rewritten: false,
    }
}

fn kept(loaded: &StoredSession) -> Vec<Vec<u8>> {
    loaded
        .set_aside
        .iter()
        .map(|a| fs::read(a.kept_at.as_ref().unwrap()).unwrap())
        .collect()
}

#[test]
fn garbage_between_committed_records_costs_only_itself() {
    let junk = &b"junk MQL1 more junk"[..];
    let one = build_log(&[Ok(Write::PutIncoming(id(1))), Ok(commit(0))]);
    let log = build_log(&[
        Err(&one),
        Err(junk),
        Ok(Write::PutIncoming(id(2))),
        Ok(commit(one.len() + junk.len())),
        Err(&[0; 10]),
    ]);
    let dir = dir_with_log(&log);
    let loaded = open(dir.path()).load().unwrap();
    assert_eq!(loaded.incoming, vec![id(1), id(2)]);
    assert_eq!(kept(&loaded), vec![junk.to_vec(), vec![0; 10]]);
    assert!(loaded.set_aside[0].reason.contains("skipped"));
    assert!(loaded.set_aside[1].reason.contains("nothing valid"));
}

#[test]
fn records_after_garbage_in_an_unfinished_batch_do_not_load() {
    let committed = build_log(&[Ok(Write::PutIncoming(id(1))), Ok(commit(0))]);
    let two = build_log(&[Err(&committed), Ok(Write::PutIncoming(id(2)))]);
    let log = build_log(&[Err(&two), Err(b"junk"), Ok(Write::PutIncoming(id(3)))]);
    let dir = dir_with_log(&log);
    let loaded = open(dir.path()).load().unwrap();
    assert_eq!(loaded.incoming, vec![id(1), id(2)]);
    assert_eq!(kept(&loaded), vec![log[two.len()..].to_vec()]);
    assert!(loaded.set_aside[0]
        .reason
        .contains("the 1 valid records after it"));
    // Likewise in a batch whose commit record reached the disk and a part before it did not.
    let log = build_log(&[Err(&log), Ok(commit(committed.len()))]);
    let dir = dir_with_log(&log);
    let loaded = open(dir.path()).load().unwrap();
    assert_eq!(loaded.incoming, vec![id(1), id(2)]);
    assert_eq!(kept(&loaded), vec![log[two.len()..].to_vec()]);
    assert!(loaded.set_aside[0]
        .reason
        .contains("the 2 valid records after it"));
}

#[test]
fn an_empty_log_and_strange_neighbours_load_as_nothing() {
    let dir = dir_with_log(b"");
    fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
    fs::write(dir.path().join("out-abc"), b"?").unwrap();
    fs::write(dir.path().join("queue-"), b"?").unwrap();
    fs::create_dir(dir.path().join("out-00001")).unwrap();
    fs::create_dir(dir.path().join("in-00002")).unwrap();
    let loaded = open(dir.path()).load().unwrap();
    assert_eq!(loaded, StoredSession::default());
    for name in ["notes.txt", "out-abc", "queue-", "out-00001", "in-00002"] {
        assert!(dir.path().join(name).exists(), "{name} left alone");
    }
    assert!(!dir.path().join(CORRUPT).exists());
}

#[test]
fn a_record_with_a_valid_checksum_and_a_senseless_body_is_set_aside() {
    let kept = subscription("kept", 1);
    for (body, reason) in [
        (&[42u8, 1, 2][..], "unknown record kind 42"),
        // Put a subscription (kind 9) whose SUBSCRIBE has no filter.
        (
            &[9, 0, 0x82, 3, 0, 1, 0],
            "the subscription does not decode",
        ),
        // Put a subscription whose packet is a PUBLISH.
        (&[9, 0, 0x32, 6, 0, 1, b'a', 0, 1, 0], "not a SUBSCRIBE"),
        // Remove a subscription (kind 10) to something that is not a filter.
        (&[10, 0, 3, b'a', b'#', b'b'], "bad filter"),
    ] {
        let mut log = BytesMut::new();
        record::append(&mut log, 0, &Write::PutIncoming(id(1))).unwrap();
        let offset = log.len() as u64;
        record::append(&mut log, offset, &Write::PutSubscription(&kept)).unwrap();
        let offset = log.len() as u64;
        log.extend_from_slice(&record::header_for(offset, body).unwrap());
        log.extend_from_slice(body);
        let offset = log.len() as u64;
        record::append(&mut log, offset, &Write::PutIncoming(id(2))).unwrap();
        let commit = Write::Commit {
            start: 0,
            rewritten: true,
        };
        let offset = log.len() as u64;
        record::append(&mut log, offset, &commit).unwrap();
        let dir = dir_with_log(&log);
        let loaded = open(dir.path()).load().unwrap();
        assert_eq!(loaded.incoming, vec![id(1), id(2)], "{reason}");
        assert_eq!(loaded.subscriptions, vec![kept.clone()], "{reason}");
        let [aside] = &loaded.set_aside[..] else {
            panic!("{reason}: {:?}", loaded.set_aside);
        };
        assert!(aside.reason.contains(reason), "{aside:?}");
    }
}

#[test]
fn corruption_while_open_is_set_aside_by_the_next_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store.put_incoming(id(1)).unwrap();
    store.commit().unwrap();
    store.put_incoming(id(2)).unwrap();
    store.commit().unwrap();
    store.put_incoming(id(3)).unwrap();
    let mut log = log_of(dir.path());
    log[HEADER_LEN] ^= 0xFF;
    fs::write(dir.path().join(LOG), &log).unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(loaded.incoming, vec![id(2), id(3)]);
    assert_eq!(loaded.set_aside.len(), 1);
    assert_eq!(store.load().unwrap().set_aside, vec![], "reported once");
    store.commit().unwrap();
    drop(store);
    let loaded = open(dir.path()).load().unwrap();
    assert_eq!(
        (loaded.incoming, loaded.set_aside),
        (vec![id(2), id(3)], vec![])
    );
}

#[test]
fn open_removes_an_interrupted_compaction() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(LOG_TMP), b"half a compaction").unwrap();
    let mut store = open(dir.path());
    assert!(!dir.path().join(LOG_TMP).exists());
    assert_eq!(store.load().unwrap(), StoredSession::default());
}

// ----- the lock -----

#[test]
fn one_store_at_a_time_opens_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = FileStore::open(dir.path()).unwrap();
    match FileStore::open(dir.path()) {
        Err(StoreError::Locked(d)) => assert_eq!(d, dir.path().display().to_string()),
        other => panic!("{other:?}"),
    }
    drop(first);
    let _second = FileStore::open(dir.path()).unwrap();
}

/// Run by [`the_lock_holds_against_another_process`] in a child process: opens the store named
/// by the environment and prints what happened. Does nothing when run directly.
#[test]
#[ignore = "run in a child process by the_lock_holds_against_another_process"]
fn lock_probe() {
    if let Some(dir) = std::env::var_os("MQTT_STORE_LOCK_PROBE") {
        match FileStore::open(&dir) {
            Ok(_) => println!("probe: opened"),
            Err(StoreError::Locked(_)) => println!("probe: locked"),
            Err(e) => println!("probe: {e}"),
        }
    }
}

#[test]
fn the_lock_holds_against_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let probe = || {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::file::tests::lock_probe",
                "--ignored",
                "--nocapture",
            ])
            .env("MQTT_STORE_LOCK_PROBE", dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("probe: "))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no answer from the probe: {stdout}"))
    };
    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(probe(), "locked");
    drop(store);
    assert_eq!(probe(), "opened");
}

// ----- compaction -----

#[test]
fn compaction_keeps_exactly_the_live_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let mut model = Model::default();
    let (mut last, mut compactions) = (0, 0);
    let filters: Vec<String> = (0..30).map(|k| format!("sub/{k}/+")).collect();
    for i in 0..3000u64 {
        let n = (i % 40) as u16 + 1;
        let op = match i % 7 {
            0 | 3 => TestOp::RemoveOut((i % 13) as u16 + 1),
            5 => TestOp::RemoveQueued(i - 4),
            1 => TestOp::PutQueued(queued_sized(i, QoS::AtLeastOnce, 1000)),
            _ => TestOp::PutOut(outgoing_sized(n, i, 2000)),
        };
        op.run(&mut store);
        model.apply(&op);
        // Subscriptions are put, replaced and removed along the way.
        let filter = &filters[(i * 7 % 30) as usize];
        let op = match i % 4 {
            0 | 1 => TestOp::PutSub(subscription(filter, i as u32)),
            2 => TestOp::RemoveSub(filter.clone()),
            _ => continue,
        };
        op.run(&mut store);
        model.apply(&op);
        if i % 3 == 0 {
            store.commit().unwrap();
            let len = log_of(dir.path()).len();
            let live = store.live_bytes as usize;
            assert!(
                len <= COMPACT_MIN as usize + 2 * live + 3 * 2100,
                "{len} for {live}"
            );
            compactions += usize::from(len < last);
            last = len;
        }
    }
    store.commit().unwrap();
    assert!(
        compactions >= 3,
        "compaction was exercised {compactions} times"
    );
    let live = model.subscriptions.len();
    assert!(
        live > 0 && live < filters.len(),
        "{live} subscriptions live"
    );
    assert_eq!(Model::of(&store.load().unwrap()), model);
    // The live size kept record by record is the one a replay of the log finds.
    let counted = store.live_bytes;
    drop(store);
    let mut store = open(dir.path());
    assert_eq!(Model::of(&store.load().unwrap()), model);
    assert_eq!(store.live_bytes, counted);
    assert_eq!(
        log_of(dir.path()).len(),
        store.live_bytes as usize + COMMIT_LEN,
        "open compacted"
    );
}

// ----- failed commits -----

#[test]
fn a_commit_fails_when_the_directory_vanished() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("store");
    let mut store = open(&dir);
    store.put_incoming(id(1)).unwrap();
    store.commit().unwrap();
    fs::remove_dir_all(&dir).unwrap();
    store.put_incoming(id(2)).unwrap();
    assert!(matches!(store.commit(), Err(StoreError::Io(_))));
    assert!(matches!(store.commit(), Err(StoreError::Io(_))));
    assert_eq!(store.load().unwrap().incoming, vec![id(1), id(2)]);
}

#[cfg(unix)]
#[test]
fn a_log_removed_by_a_neighbour_is_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store.put_incoming(id(1)).unwrap();
    store.commit().unwrap();
    fs::remove_file(dir.path().join(LOG)).unwrap();
    store.put_incoming(id(2)).unwrap();
    assert!(matches!(store.commit(), Err(StoreError::Io(_))));
    store.put_incoming(id(3)).unwrap();
    store.commit().unwrap();
    drop(store);
    let loaded = open(dir.path()).load().unwrap();
    assert_eq!(loaded.incoming, vec![id(1), id(2), id(3)]);
}

#[test]
fn a_short_write_is_cut_off_and_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store.put_outgoing(&outgoing(1, 1)).unwrap();
    store.commit().unwrap();
    let committed = log_of(dir.path()).len();
    store.put_outgoing(&outgoing(2, 2)).unwrap();
    store.put_queued(&queued(5, QoS::AtLeastOnce)).unwrap();
    store.fault = Some(Fault::ShortWrite);
    assert!(matches!(store.commit(), Err(StoreError::Io(_))));
    assert_eq!(
        log_of(dir.path()).len(),
        committed,
        "the partial write was cut off"
    );
    // A crash now keeps the committed record only.
    let copy = dir_with_log(&log_of(dir.path()));
    let loaded = open(copy.path()).load().unwrap();
    assert_eq!((loaded.outgoing.len(), loaded.queued.len()), (1, 0));
    assert_eq!(loaded.set_aside, vec![]);
    // The next commit writes the pending records again.
    store.remove_outgoing(id(1)).unwrap();
    store.commit().unwrap();
    drop(store);
    let loaded = open(dir.path()).load().unwrap();
    assert_eq!(loaded.outgoing, vec![outgoing(2, 2)]);
    assert_eq!(loaded.queued, vec![queued(5, QoS::AtLeastOnce)]);
    assert_eq!(loaded.set_aside, vec![]);
}

#[test]
fn a_failed_sync_makes_the_next_commit_rewrite_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store.put_incoming(id(1)).unwrap();
    store.commit().unwrap();
    #[cfg(unix)]
    let inode = {
        use std::os::unix::fs::MetadataExt;
        || fs::metadata(dir.path().join(LOG)).unwrap().ino()
    };
    #[cfg(unix)]
    let before = inode();
    store.put_incoming(id(2)).unwrap();
    store.fault = Some(Fault::Sync);
    assert!(matches!(store.commit(), Err(StoreError::Io(_))));
    // Nothing new to write, but the failed batch is still to be made durable.
    store.commit().unwrap();
    #[cfg(unix)]
    assert_ne!(inode(), before, "the log was rewritten into a new file");
    assert!(!store.rewrite);
    store.put_incoming(id(3)).unwrap();
    store.commit().unwrap();
    drop(store);
    let loaded = open(dir.path()).load().unwrap();
    assert_eq!(loaded.incoming, vec![id(1), id(2), id(3)]);
}

// ----- migration -----

#[test]
fn the_old_format_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let mut released = outgoing(5, 3);
    released.state = OutgoingState::Released;
    released.publish.dup = true;
    // The old format kept no deadlines.
    released.expires_at = None;
    legacy::write::outgoing(dir.path(), &outgoing(9, 2));
    legacy::write::outgoing(dir.path(), &released);
    legacy::write::incoming(dir.path(), id(42));
    legacy::write::queued(dir.path(), &queued(12, QoS::AtLeastOnce));
    legacy::write::queued(dir.path(), &queued(10_000_000_000, QoS::ExactlyOnce));
    fs::write(dir.path().join("out-00007.tmp"), b"interrupted").unwrap();
    fs::write(dir.path().join("queue-00000000000000000003"), b"MQQ1\0\0").unwrap();
    fs::write(dir.path().join("notes.txt"), b"not ours").unwrap();

    let mut store = open(dir.path());
    let loaded = store.load().unwrap();
    assert_eq!(loaded.outgoing, vec![outgoing(9, 2), released.clone()]);
    assert_eq!(loaded.incoming, vec![id(42)]);
    assert_eq!(
        loaded.queued,
        vec![
            queued(12, QoS::AtLeastOnce),
            queued(10_000_000_000, QoS::ExactlyOnce)
        ]
    );
    let [aside] = &loaded.set_aside[..] else {
        panic!("{:?}", loaded.set_aside);
    };
    assert!(aside.source.ends_with("queue-00000000000000000003"));
    assert_eq!(
        aside.kept_at.as_deref(),
        Some(&*dir.path().join(CORRUPT).join("queue-00000000000000000003"))
    );
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [LOCK, CORRUPT, LOG, "notes.txt"]);
    drop(store);

    let loaded = open(dir.path()).load().unwrap();
    assert_eq!(loaded.outgoing, vec![outgoing(9, 2), released]);
    assert_eq!((loaded.incoming.len(), loaded.queued.len()), (1, 2));
    assert_eq!(loaded.set_aside, vec![]);
}

// ----- a model -----

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
enum Step {
    Op(TestOp),
    Commit,
    /// A crash: the store is dropped without a commit and opened again.
    Reopen,
}

/// The filters the model check subscribes to (none shared: `subscription` may set No Local).
const FILTERS: [&str; 5] = ["a", "a/+", "a/#", "+/b", "$SYS/x"];

fn step() -> impl Strategy<Value = Step> {
    let n = 1u16..6;
    prop_oneof![
        4 => (n.clone(), 0u64..1000, any::<bool>(), 0usize..200).prop_map(|(n, seq, rel, len)| {
            let mut r = outgoing_sized(n, seq, len);
            if rel {
                r.state = OutgoingState::Released;
            }
            Step::Op(TestOp::PutOut(r))
        }),
        2 => n.clone().prop_map(|n| Step::Op(TestOp::RemoveOut(n))),
        2 => n.clone().prop_map(|n| Step::Op(TestOp::PutIn(n))),
        2 => n.prop_map(|n| Step::Op(TestOp::RemoveIn(n))),
        3 => (0u64..6, any::<bool>(), 0usize..200).prop_map(|(t, q2, len)| {
            let qos = if q2 { QoS::ExactlyOnce } else { QoS::AtLeastOnce };
            Step::Op(TestOp::PutQueued(queued_sized(t, qos, len)))
        }),
        2 => (0u64..6).prop_map(|t| Step::Op(TestOp::RemoveQueued(t))),
        3 => (prop::sample::select(FILTERS.to_vec()), any::<u32>())
            .prop_map(|(f, n)| Step::Op(TestOp::PutSub(subscription(f, n)))),
        2 => prop::sample::select(FILTERS.to_vec()).prop_map(|f| Step::Op(TestOp::RemoveSub(f.into()))),
        1 => Just(Step::Op(TestOp::Clear)),
        4 => Just(Step::Commit),
        1 => Just(Step::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_store_holds_its_committed_writes(steps in prop::collection::vec(step(), 1..80)) {
        let dir = tempfile::tempdir().unwrap();
        let reopen = || {
            let mut store = open(dir.path());
            store.compact_min = 256;
            store
        };
        let mut store = reopen();
        let (mut committed, mut current) = (Model::default(), Model::default());
        for step in &steps {
            match step {
                Step::Op(op) => {
                    let op = match op {
                        // Unique send order, so that the order of the vector is defined.
                        TestOp::PutOut(r) => {
                            let mut r = r.clone();
                            r.seq = r.seq * 10 + u64::from(r.packet_id().unwrap().get());
                            TestOp::PutOut(r)
                        }
                        other => other.clone(),
                    };
                    op.run(&mut store);
                    current.apply(&op);
                }
                Step::Commit => {
                    store.commit().unwrap();
                    committed = current.clone();
                }
                Step::Reopen => {
                    drop(store);
                    store = reopen();
                    let loaded = store.load().unwrap();
                    prop_assert_eq!(&loaded.set_aside, &vec![]);
                    prop_assert_eq!(Model::of(&loaded), committed.clone());
                    current = committed.clone();
                }
            }
            prop_assert_eq!(Model::of(&store.load().unwrap()), current.clone());
        }
        store.commit().unwrap();
        drop(store);
        let loaded = reopen().load().unwrap();
        prop_assert_eq!(Model::of(&loaded), current);
    }
}
