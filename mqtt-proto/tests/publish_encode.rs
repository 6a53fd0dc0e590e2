//! A PUBLISH is encoded by one of two writers: a short one for the common packet (no
//! properties, a topic of at most 64 bytes, a payload under 4 KiB) and the general one. Both
//! must write the bytes the spec lays out (3.3), whichever takes the packet.

mod common;

use bytes::BytesMut;
use common::VERSIONS;
use mqtt_proto::{
    Packet, PacketId, ProtocolVersion, Publish, PublishProperties, QoS, QosPid, SegmentList,
    TopicName, SPLIT_PAYLOAD_MIN,
};
use proptest::prelude::*;

/// The PUBLISH laid out field by field as spec 3.3 describes it, independently of the codec.
fn reference(version: ProtocolVersion, publish: &Publish) -> Vec<u8> {
    let mut body = Vec::new();
    let topic = publish.topic.as_bytes();
    body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    body.extend_from_slice(topic);
    if let Some(id) = publish.packet_id() {
        body.extend_from_slice(&id.get().to_be_bytes());
    }
    if version == ProtocolVersion::V5 {
        body.push(0); // no properties
    }
    body.extend_from_slice(&publish.payload);
    let qos = publish.qos_pid.qos() as u8;
    let mut wire = vec![0x30 | u8::from(publish.dup) << 3 | qos << 1 | u8::from(publish.retain)];
    let mut len = body.len();
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        wire.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
    wire.extend_from_slice(&body);
    wire
}

/// Checks `encode`, `encode_split`, `encode_vectored` and `encoded_len` against the reference,
/// each after bytes already in the buffer.
fn check(version: ProtocolVersion, publish: Publish) -> Result<(), TestCaseError> {
    let expected = reference(version, &publish);
    let packet = Packet::Publish(publish);
    prop_assert_eq!(packet.encoded_len(version), Ok(expected.len()));

    let mut buf = BytesMut::from(&b"xyz"[..]);
    prop_assert_eq!(packet.encode(version, &mut buf), Ok(expected.len()));
    prop_assert_eq!(&buf[..3], b"xyz");
    prop_assert_eq!(&buf[3..], &expected[..]);

    let mut buf = BytesMut::from(&b"xyz"[..]);
    let (size, rest) = packet
        .encode_split(version, &mut buf)
        .map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(size, expected.len());
    let mut joined = buf[3..].to_vec();
    joined.extend_from_slice(rest.as_deref().unwrap_or_default());
    prop_assert_eq!(&joined[..], &expected[..]);

    let mut out = SegmentList {
        buf: BytesMut::from(&b"xyz"[..]),
        sealed: Vec::new(),
    };
    prop_assert_eq!(
        packet.encode_vectored(version, &mut out),
        Ok(expected.len())
    );
    let joined = out.to_vec();
    prop_assert_eq!(&joined[..3], b"xyz");
    prop_assert_eq!(&joined[3..], &expected[..]);
    Ok(())
}

/// Payload lengths around every edge either writer has: the short copies (4, 8, 16, 32 and 64
/// bytes), one and two bytes of remaining length (127 and 16,383 with the headers), and the
/// 4 KiB from which a payload is handed over uncopied.
fn payload_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..=140,
        SPLIT_PAYLOAD_MIN - 80..=SPLIT_PAYLOAD_MIN + 8,
        16_280usize..=16_400,
    ]
}

fn qos_pid() -> impl Strategy<Value = QosPid> {
    (0u8..3, 1u16..=u16::MAX).prop_map(|(qos, id)| {
        let id = PacketId::new(id).unwrap_or(PacketId::MIN);
        match qos {
            0 => QosPid::AtMostOnce,
            1 => QosPid::from_qos(QoS::AtLeastOnce, id),
            _ => QosPid::from_qos(QoS::ExactlyOnce, id),
        }
    })
}

proptest! {
    #[test]
    fn every_publish_is_written_as_the_spec_lays_it_out(
        version in prop::sample::select(&VERSIONS[..]),
        topic_len in 1usize..=80,
        payload_len in payload_len(),
        qos_pid in qos_pid(),
        dup in any::<bool>(),
        retain in any::<bool>(),
    ) {
        let topic: String = (0..topic_len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
        let mut publish = Publish::new(
            TopicName::new(&topic).map_err(|e| TestCaseError::fail(format!("{e}")))?,
            qos_pid,
            payload,
        );
        // DUP is not set on QoS 0 [MQTT-3.3.1-2 v3.1.1 v5.0].
        publish.dup = dup && qos_pid != QosPid::AtMostOnce;
        publish.retain = retain;
        check(version, publish)?;
    }
}

#[test]
fn a_publish_with_properties_or_a_long_topic_is_written_by_the_general_writer() {
    for version in VERSIONS {
        let long_topic = "t".repeat(65_535);
        let mut publish = Publish::new(
            TopicName::new(&long_topic).unwrap(),
            QosPid::AtMostOnce,
            vec![1u8; 10],
        );
        check(version, publish.clone()).unwrap();
        if version == ProtocolVersion::V5 {
            publish.properties = PublishProperties {
                message_expiry_interval: Some(5),
                ..Default::default()
            }
            .into();
            let packet = Packet::Publish(publish);
            let mut buf = BytesMut::new();
            let size = packet.encode(version, &mut buf).unwrap();
            assert_eq!(packet.encoded_len(version), Ok(size));
            // The property block follows the topic: length 5, then 0x02 and four bytes.
            assert_eq!(&buf[1 + 3 + 2 + 65_535..][..6], [5, 0x02, 0, 0, 0, 5]);
        }
    }
}
