//! Property tests of the transmit queue: for any sequence of packets, the buffers handed out
//! are, joined, exactly what `Packet::encode` writes; large payloads are the packets' own
//! bytes; and writes of any sizes resume at the right offset.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::RngSeed;

use mqtt_proto::{
    Disconnect, DisconnectReasonCode, Packet, PacketId, ProtocolVersion, PubAck, PubRel, Publish,
    PublishProperties, QoS, QosPid, Subscribe, Subscription, TopicFilter, TopicName,
    SPLIT_PAYLOAD_MIN,
};
use mqtt_session::{Config, Message, Session, Transmit};

/// Fixed seed and no regression files: every run checks the same cases.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(0x7472_616e),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn version() -> impl Strategy<Value = ProtocolVersion> {
    select(vec![
        ProtocolVersion::V3_1,
        ProtocolVersion::V3_1_1,
        ProtocolVersion::V5,
    ])
}

/// Payload sizes around the split threshold, small ones, and a few tens of KiB.
fn payload_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => 0usize..64,
        3 => (SPLIT_PAYLOAD_MIN - 3)..(SPLIT_PAYLOAD_MIN + 3),
        2 => SPLIT_PAYLOAD_MIN..40_000,
    ]
}

fn payload() -> impl Strategy<Value = Bytes> {
    (payload_len(), any::<u8>())
        .prop_map(|(len, seed)| Bytes::from((0..len).map(|i| seed ^ (i as u8)).collect::<Vec<_>>()))
}

fn id() -> impl Strategy<Value = PacketId> {
    (1u16..).prop_map(|n| PacketId::new(n).unwrap())
}

fn publish() -> impl Strategy<Value = Publish> {
    (
        select(vec!["a", "a/b/c", "sensors/kitchen/temperature"]),
        prop_oneof![
            Just(None),
            id().prop_map(|i| Some((QoS::AtLeastOnce, i))),
            id().prop_map(|i| Some((QoS::ExactlyOnce, i))),
        ],
        any::<(bool, bool)>(),
        proptest::option::of(any::<u32>()),
        payload(),
    )
        .prop_map(|(topic, qos, (dup, retain), expiry, payload)| {
            let qos_pid = match qos {
                None => QosPid::AtMostOnce,
                Some((QoS::AtLeastOnce, i)) => QosPid::AtLeastOnce(i),
                Some((_, i)) => QosPid::ExactlyOnce(i),
            };
            let mut p = Publish::new(TopicName::new(topic).unwrap(), qos_pid, payload);
            p.dup = dup && qos.is_some();
            p.retain = retain;
            p.properties = PublishProperties {
                message_expiry_interval: expiry,
                ..PublishProperties::default()
            }
            .into();
            p
        })
}

fn packet() -> impl Strategy<Value = Packet> {
    prop_oneof![
        6 => publish().prop_map(Packet::Publish),
        1 => Just(Packet::PingReq),
        1 => id().prop_map(|i| Packet::PubAck(PubAck::new(i))),
        1 => id().prop_map(|i| Packet::PubRel(PubRel::new(i))),
        1 => id().prop_map(|i| Packet::Subscribe(Subscribe::new(
            i,
            vec![Subscription::new(TopicFilter::new("a/#").unwrap(), QoS::AtLeastOnce)],
        ))),
        1 => Just(Packet::Disconnect(Disconnect::new(DisconnectReasonCode::NormalDisconnection))),
    ]
}

fn joined(t: &Transmit) -> Vec<u8> {
    t.chunks().flatten().copied().collect()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn chunks_joined_are_the_encoding(
        version in version(),
        packets in vec(packet(), 1..12),
        steps in vec(1usize..6000, 1..40),
    ) {
        let mut transmit = Transmit::new();
        let mut expected = BytesMut::new();
        // Packets the version cannot carry (5.0 properties in 3.1.1) fail alike and add nothing.
        let mut valid = Vec::new();
        for p in &packets {
            let len = transmit.len();
            match (transmit.encode(version, p), p.encode(version, &mut expected)) {
                (Ok(size), Ok(reference)) => {
                    prop_assert_eq!(size, reference);
                    valid.push(p.clone());
                }
                (Err(e), Err(reference)) => {
                    prop_assert_eq!(e, reference);
                    prop_assert_eq!(transmit.len(), len);
                }
                (got, reference) => prop_assert!(false, "{:?} where encode gave {:?}", got, reference),
            }
        }
        let packets = valid;
        prop_assert_eq!(transmit.len(), expected.len());
        prop_assert_eq!(joined(&transmit), &expected[..]);

        // Every large payload is handed out as the packet's own bytes.
        for p in &packets {
            if let Packet::Publish(p) = p {
                if p.payload.len() >= SPLIT_PAYLOAD_MIN {
                    prop_assert!(transmit.chunks().any(|c| c.as_ptr() == p.payload.as_ptr()
                        && c.len() == p.payload.len()));
                }
            }
        }

        // Writes of any sizes: what is left is always the rest of the encoding.
        let mut at = 0;
        for step in steps.iter().cycle() {
            if transmit.is_empty() {
                break;
            }
            let step = (*step).min(transmit.len());
            transmit.advance(step);
            at += step;
            prop_assert_eq!(transmit.len(), expected.len() - at);
            prop_assert_eq!(transmit.chunk(), &expected[at..at + transmit.chunk().len()]);
        }
        prop_assert_eq!(at, expected.len());

        // Taken whole, buffer by buffer (message transports), and joined (`poll_transmit`).
        let mut again = Transmit::new();
        let mut other = Transmit::new();
        let half = packets.len() / 2;
        for p in packets.get(..half).unwrap_or_default() {
            again.encode(version, p).unwrap();
        }
        for p in packets.get(half..).unwrap_or_default() {
            other.encode(version, p).unwrap();
        }
        again.append(&mut other);
        prop_assert!(other.is_empty());
        let mut popped = Vec::new();
        while let Some(chunk) = again.pop_chunk() {
            prop_assert!(!chunk.is_empty());
            popped.extend_from_slice(&chunk);
        }
        prop_assert_eq!(popped, &expected[..]);
        for p in &packets {
            again.encode(version, p).unwrap();
        }
        let mut out = BytesMut::from(&b"before"[..]);
        again.drain_into(&mut out);
        prop_assert_eq!(&out[..6], b"before");
        prop_assert_eq!(&out[6..], &expected[..]);
        prop_assert!(again.is_empty());
    }

    #[test]
    fn a_session_hands_out_the_same_bytes_either_way(
        messages in vec(
            (payload(), select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]), any::<bool>()),
            1..16,
        ),
    ) {
        let now = Instant::now();
        let connected = || {
            let mut session = Session::new(Config::new("transmit").unwrap());
            session.handle_connected(now);
            session.handle_read(now, &[0x20, 0x02, 0x00, 0x00]);
            session
        };
        let (mut joined_session, mut chunked_session) = (connected(), connected());
        let mut joined_wire = BytesMut::new();
        let mut chunks = Transmit::new();
        let (mut joined_count, mut chunked_count) = (0, 0);
        for (payload, qos, poll) in &messages {
            for session in [&mut joined_session, &mut chunked_session] {
                let message = Message::new("t", payload.clone()).unwrap().qos(*qos);
                session.publish(now, message).unwrap();
            }
            if *poll {
                joined_count += joined_session.poll_transmit(&mut joined_wire);
                chunked_count += chunked_session.poll_transmit_chunks(&mut chunks);
            }
        }
        joined_count += joined_session.poll_transmit(&mut joined_wire);
        chunked_count += chunked_session.poll_transmit_chunks(&mut chunks);
        prop_assert_eq!(joined_count, chunked_count);
        prop_assert_eq!(joined_count, joined_wire.len());
        prop_assert_eq!(joined(&chunks), &joined_wire[..]);
        let payloads: usize = messages.iter().map(|(p, _, _)| p.len()).sum();
        prop_assert!(joined_wire.len() > payloads, "every message was sent");
        prop_assert_eq!(
            joined_session.traffic().bytes_out,
            chunked_session.traffic().bytes_out
        );
        for (payload, _, _) in &messages {
            if payload.len() >= SPLIT_PAYLOAD_MIN {
                prop_assert!(chunks.chunks().any(|c| c.as_ptr() == payload.as_ptr()));
            }
        }
    }
}
