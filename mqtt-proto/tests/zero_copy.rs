//! Decoded strings and payloads are slices of the received frame, not copies (but for the small
//! PUBLISHes `Decoder::decode` copies out of a stream, which keep only themselves, and topic
//! names short enough to be held in place); the largest
//! fields and packets the specs allow survive a round trip; framing handles the largest
//! remaining length without buffering it.

mod common;

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use common::{b, encode, hex, pid, s, topic, user, VERSIONS};
use mqtt_proto::{
    ConnAck, ConnAckProperties, Connect, DecodeErrorKind, Decoder, LastWill, MqttString, Packet,
    ProtocolVersion, Publish, PublishProperties, QoS, QosPid, SegmentList, Subscribe,
    SubscribeProperties, Subscription, TopicName, WillProperties, MAX_PACKET_SIZE,
    SPLIT_PAYLOAD_MIN,
};
use ProtocolVersion::{V3_1_1, V5};

/// Address range of a buffer's bytes.
fn range(bytes: &[u8]) -> Range<usize> {
    let start = bytes.as_ptr() as usize;
    start..start + bytes.len()
}

/// Asserts that `part` (non-empty) lies inside the buffer whose addresses are `whole`.
#[track_caller]
fn assert_within(whole: &Range<usize>, part: &[u8], what: &str) {
    assert!(!part.is_empty(), "{what} is empty: nothing to locate");
    let part = range(part);
    assert!(
        whole.start <= part.start && part.end <= whole.end,
        "{what} at {part:x?} is not inside the received buffer {whole:x?}"
    );
}

/// Asserts that `s`'s text is held in the string value itself, not in a buffer.
#[track_caller]
fn assert_in_place(s: &MqttString, what: &str) {
    let at = s as *const MqttString as usize;
    let text = range(s.as_bytes());
    assert!(
        at <= text.start && text.end <= at + std::mem::size_of::<MqttString>(),
        "{what} at {text:x?} is not held in place"
    );
}

/// Asserts that a decoded string is where its length puts it: held in place if it is short
/// enough, a slice of the received buffer `whole` otherwise.
#[track_caller]
fn assert_kept(whole: &Range<usize>, s: &MqttString, what: &str) {
    if s.len() <= MqttString::INLINE_LEN {
        assert_in_place(s, what);
    } else {
        assert_within(whole, s.as_bytes(), what);
    }
}

/// Decodes one packet from `wire`, returning it with the address range the bytes had.
fn decode_in_place(version: ProtocolVersion, wire: &[u8]) -> (Packet, Range<usize>) {
    let mut buf = BytesMut::from(wire);
    let whole = range(&buf);
    let packet = Decoder::new(version).decode(&mut buf).unwrap().unwrap();
    assert!(buf.is_empty());
    (packet, whole)
}

/// Decodes one whole frame with `Decoder::decode_frame`, returning it with the frame's address
/// range.
fn decode_frame_in_place(version: ProtocolVersion, wire: &[u8]) -> (Packet, Range<usize>) {
    let frame = Bytes::copy_from_slice(wire);
    let whole = range(&frame);
    (Decoder::new(version).decode_frame(&frame).unwrap(), whole)
}

#[test]
fn publish_topic_payload_and_properties_are_slices_of_the_frame() {
    let wire = hex("33 2f
         00 07 'sensors'
         00 05
         1c
           08 00 05 'reply'
           09 00 03 'cid'
           03 00 04 'json'
           26 00 01 'k' 00 01 'v'
         'payload'");
    let (packet, whole) = decode_frame_in_place(V5, &wire);
    let Packet::Publish(publish) = packet else {
        panic!("not a PUBLISH");
    };
    assert_eq!(publish.topic.as_str(), "sensors");
    assert_eq!(publish.payload, &b"payload"[..]);
    // Names this short are copied into the packet: cheaper than a reference count.
    assert_in_place(publish.topic.as_mqtt_str(), "topic");
    assert_within(&whole, &publish.payload, "payload");
    let p = &publish.properties;
    assert_in_place(
        p.response_topic.as_ref().unwrap().as_mqtt_str(),
        "response topic",
    );
    assert_within(
        &whole,
        p.correlation_data.as_ref().unwrap(),
        "correlation data",
    );
    assert_kept(&whole, p.content_type.as_ref().unwrap(), "content type");
    let pair = &p.user_properties[0];
    assert_kept(&whole, &pair.name, "user property name");
    assert_kept(&whole, &pair.value, "user property value");
    // The payload is exactly the tail of the frame.
    assert_eq!(range(&publish.payload).end, whole.end);

    // Cloning the packet shares the same payload; the clone holds its own short topic.
    let copy = publish.clone();
    assert_eq!(copy.payload.as_ptr(), publish.payload.as_ptr());
    assert_in_place(copy.topic.as_mqtt_str(), "cloned topic");
    assert_eq!(copy.topic, publish.topic);
}

#[test]
fn strings_longer_than_held_in_place_are_slices_of_the_frame() {
    let long = |c: &str| c.repeat(MqttString::INLINE_LEN + 1);
    let mut publish = Publish::new(topic(&long("t")), QosPid::AtLeastOnce(pid(3)), b(b"p"));
    publish.properties = PublishProperties {
        response_topic: Some(topic(&long("r"))),
        content_type: Some(s(&long("c"))),
        user_properties: vec![user(&long("k"), &long("v"))],
        ..PublishProperties::default()
    }
    .into();
    let wire = encode(V5, &Packet::Publish(publish.clone())).unwrap();
    let (decoded, whole) = decode_frame_in_place(V5, &wire);
    assert!(decoded == Packet::Publish(publish));
    let Packet::Publish(p) = decoded else {
        unreachable!()
    };
    let props = &p.properties;
    for (string, what) in [
        (p.topic.as_mqtt_str(), "topic"),
        (
            props.response_topic.as_ref().unwrap().as_mqtt_str(),
            "response topic",
        ),
        (props.content_type.as_ref().unwrap(), "content type"),
        (&props.user_properties[0].name, "user property name"),
        (&props.user_properties[0].value, "user property value"),
    ] {
        assert_within(&whole, string.as_bytes(), what);
    }
}

/// A 3.1.1 PUBLISH of `topic` and `payload` at QoS 0.
fn publish_3_1_1_wire(topic: &str, payload: &[u8]) -> Vec<u8> {
    let remaining = u8::try_from(2 + topic.len() + payload.len()).unwrap();
    let mut wire = vec![0x30, remaining, 0, u8::try_from(topic.len()).unwrap()];
    wire.extend_from_slice(topic.as_bytes());
    wire.extend_from_slice(payload);
    wire
}

#[test]
fn publish_3_1_1_topic_and_payload_are_slices_of_the_frame() {
    // One byte longer than a name held in place.
    let name = "t".repeat(MqttString::INLINE_LEN + 1);
    let wire = publish_3_1_1_wire(&name, b"payload");
    let (packet, whole) = decode_frame_in_place(V3_1_1, &wire);
    let Packet::Publish(publish) = packet else {
        panic!("not a PUBLISH");
    };
    assert_eq!(publish.topic.as_str(), name);
    assert_kept(&whole, publish.topic.as_mqtt_str(), "topic");
    assert_within(&whole, &publish.payload, "payload");
    // Topic starts right after its two-byte length, at offset 4 of the frame.
    assert_eq!(publish.topic.as_bytes().as_ptr() as usize, whole.start + 4);
    assert_eq!(
        publish.payload.as_ptr() as usize,
        whole.start + 4 + name.len()
    );
    // Cloning the packet shares the topic too.
    let copy = publish.clone();
    assert_eq!(
        copy.topic.as_bytes().as_ptr(),
        publish.topic.as_bytes().as_ptr()
    );
}

#[test]
fn short_topic_names_are_held_in_place() {
    for len in [1, 3, MqttString::INLINE_LEN] {
        let name = "n".repeat(len);
        for decode in [decode_frame_in_place, decode_in_place] {
            let (packet, whole) = decode(V3_1_1, &publish_3_1_1_wire(&name, b"p"));
            let Packet::Publish(publish) = packet else {
                panic!("not a PUBLISH");
            };
            assert_eq!(publish.topic.as_str(), name);
            assert_in_place(publish.topic.as_mqtt_str(), "decoded topic");
            assert!(!whole.contains(&(publish.topic.as_bytes().as_ptr() as usize)));
        }
        assert_in_place(TopicName::new(&name).unwrap().as_mqtt_str(), "made topic");
    }
    assert_in_place(TopicName::empty_for_alias().as_mqtt_str(), "empty topic");
    let long = TopicName::new(&"n".repeat(MqttString::INLINE_LEN + 1)).unwrap();
    let at = &long as *const TopicName as usize;
    assert!(
        !(at..at + std::mem::size_of::<TopicName>()).contains(&(long.as_bytes().as_ptr() as usize))
    );
}

#[test]
fn connect_strings_and_binary_fields_are_slices_of_the_frame() {
    let wire = hex("10 43
         00 04 'MQTT' 05 ee 00 1e
         0f
           15 00 05 'SCRAM'
           26 00 01 'k' 00 01 'v'
         00 04 'dev1'
         07 09 00 04 'corr'
         00 04 'dead'
         00 04 'gone'
         00 05 'alice'
         00 06 'secret'");
    let (packet, whole) = decode_in_place(V5, &wire);
    let Packet::Connect(connect) = packet else {
        panic!("not a CONNECT");
    };
    assert_eq!(connect.client_id, "dev1");
    assert_kept(&whole, &connect.client_id, "client id");
    assert_kept(&whole, connect.username.as_ref().unwrap(), "user name");
    assert_within(&whole, connect.password.as_ref().unwrap(), "password");
    let p = &connect.properties;
    assert_kept(
        &whole,
        p.authentication_method.as_ref().unwrap(),
        "authentication method",
    );
    assert_kept(&whole, &p.user_properties[0].name, "user property name");
    assert_kept(&whole, &p.user_properties[0].value, "user property value");
    let will = connect.will.as_ref().unwrap();
    assert_kept(&whole, will.topic.as_mqtt_str(), "will topic");
    assert_within(&whole, &will.payload, "will payload");
    assert_within(
        &whole,
        will.properties.correlation_data.as_ref().unwrap(),
        "will correlation data",
    );
}

#[test]
fn subscribe_filters_and_connack_strings_are_slices_of_the_frame() {
    let wire = hex("82 0e 00 01 00 03 'a/+' 01 00 03 'b/#' 02");
    let (packet, whole) = decode_in_place(V3_1_1, &wire);
    let Packet::Subscribe(subscribe) = packet else {
        panic!("not a SUBSCRIBE");
    };
    for sub in &subscribe.filters {
        assert_within(&whole, sub.filter.as_bytes(), "filter");
    }

    let (packet, whole) = decode_in_place(
        V5,
        &hex("20 14 00 00 11 12 00 06 'auto-1' 1f 00 05 'hello'"),
    );
    let Packet::ConnAck(connack) = packet else {
        panic!("not a CONNACK");
    };
    let p = &connack.properties;
    assert_kept(
        &whole,
        p.assigned_client_identifier.as_ref().unwrap(),
        "assigned client id",
    );
    assert_kept(&whole, p.reason_string.as_ref().unwrap(), "reason string");
}

#[test]
fn decode_frame_slices_the_frame_it_is_given() {
    let mut wire = publish_3_1_1_wire(&"a/b".repeat(20), b"hello");
    wire[0] |= 1;
    let frame = Bytes::from(wire);
    let whole = range(&frame);
    let Ok(Packet::Publish(publish)) = Decoder::new(V3_1_1).decode_frame(&frame) else {
        panic!("not a PUBLISH");
    };
    assert!(publish.retain);
    assert_kept(&whole, publish.topic.as_mqtt_str(), "topic");
    assert_within(&whole, &publish.payload, "payload");
}

#[test]
fn decoded_packets_outlive_the_stream_buffer() {
    // The frame is split off the stream, so later reads into the stream do not disturb it.
    let decoder = Decoder::new(V3_1_1);
    let mut stream = BytesMut::from(&hex("30 07 00 03 'a/b' 'hi' 30")[..]);
    let Some(Packet::Publish(first)) = decoder.decode(&mut stream).unwrap() else {
        panic!("not a PUBLISH");
    };
    stream.extend_from_slice(&hex("07 00 03 'c/d' 'yo'"));
    let Some(Packet::Publish(second)) = decoder.decode(&mut stream).unwrap() else {
        panic!("not a PUBLISH");
    };
    assert_eq!(
        (first.topic.as_str(), &first.payload[..]),
        ("a/b", &b"hi"[..])
    );
    assert_eq!(
        (second.topic.as_str(), &second.payload[..]),
        ("c/d", &b"yo"[..])
    );
}

/// A PUBLISH of `size` bytes with properties in 5.0, and the bytes it encodes to.
fn publish_of_size(version: ProtocolVersion, size: usize) -> (Packet, Vec<u8>) {
    let mut publish = Publish::new(topic("a/b"), QosPid::AtLeastOnce(pid(9)), Bytes::new());
    if version == V5 {
        publish.properties = PublishProperties {
            content_type: Some(s("json")),
            user_properties: vec![user("k", "v")],
            ..PublishProperties::default()
        }
        .into();
    }
    let bare = encode(version, &Packet::Publish(publish.clone()))
        .unwrap()
        .len();
    // The bare packet's remaining length takes one byte; from 131 bytes in all it takes two.
    assert!(bare < 128 && size >= 131);
    publish.payload = Bytes::from(vec![b'p'; size - bare - 1]);
    let packet = Packet::Publish(publish);
    let wire = encode(version, &packet).unwrap();
    assert_eq!(wire.len(), size);
    (packet, wire)
}

#[test]
fn small_publish_read_from_a_stream_is_copied_and_pins_no_buffer() {
    for version in VERSIONS {
        for size in [131, 255, 256] {
            let (sent, wire) = publish_of_size(version, size);
            let mut buf = BytesMut::with_capacity(4096);
            buf.extend_from_slice(&wire);
            let whole = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.capacity();
            let decoded = Decoder::new(version).decode(&mut buf).unwrap().unwrap();
            assert!(decoded == sent, "{version:?} {size}: decoded {decoded:?}");
            assert!(buf.is_empty());
            let Packet::Publish(p) = &decoded else {
                unreachable!()
            };
            let mut kept = vec![p.topic.as_bytes(), &p.payload[..]];
            for pair in &p.properties.user_properties {
                kept.extend([pair.name.as_bytes(), pair.value.as_bytes()]);
            }
            for part in kept {
                let part = range(part);
                assert!(
                    part.end <= whole.start || part.start >= whole.end,
                    "{version:?} {size}: {part:x?} lies in the read buffer {whole:x?}"
                );
            }
            // While the message is kept, the next read reuses the buffer in place.
            buf.reserve(4096);
            assert_eq!(buf.as_ptr() as usize, whole.start, "{version:?} {size}");
            // The same frame decoded whole gives the same packet.
            assert!(
                Decoder::new(version)
                    .decode_frame(&Bytes::from(wire))
                    .unwrap()
                    == decoded
            );
        }
    }
}

#[test]
fn publish_above_the_copy_size_read_from_a_stream_shares_the_buffer() {
    for version in VERSIONS {
        let (sent, wire) = publish_of_size(version, 257);
        let (decoded, whole) = decode_in_place(version, &wire);
        assert!(decoded == sent, "{version:?}");
        let Packet::Publish(p) = &decoded else {
            unreachable!()
        };
        assert_in_place(p.topic.as_mqtt_str(), "topic");
        assert_within(&whole, &p.payload, "payload");
        assert_eq!(range(&p.payload).end, whole.end);
    }
}

// ---------------------------------------------------------------------------------------------
// The largest fields and packets

/// Encodes `packet`, decodes it in place, and checks that it comes back unchanged.
fn round_trip(version: ProtocolVersion, packet: &Packet) -> (Packet, Range<usize>) {
    let wire = encode(version, packet).unwrap();
    let (decoded, whole) = decode_in_place(version, &wire);
    assert!(decoded == *packet, "round trip changed the packet");
    (decoded, whole)
}

#[test]
fn longest_client_id_user_name_and_topic() {
    let longest = "x".repeat(65_535);
    for version in VERSIONS {
        let connect = Packet::from(Connect {
            username: Some(s(&longest)),
            password: Some(Bytes::from(vec![0xa5; 65_535])),
            will: Some(LastWill {
                topic: topic(&longest),
                payload: Bytes::from(vec![0x5a; 65_535]),
                qos: QoS::ExactlyOnce,
                retain: true,
                properties: WillProperties::default().into(),
            }),
            ..Connect::new(version, s(&longest), 10)
        });
        let (decoded, whole) = round_trip(version, &connect);
        let Packet::Connect(c) = decoded else {
            unreachable!()
        };
        assert_eq!(c.client_id.len(), 65_535);
        assert_kept(&whole, &c.client_id, "client id");
        assert_kept(&whole, c.username.as_ref().unwrap(), "user name");

        let publish = Packet::Publish(Publish::new(
            topic(&longest),
            QosPid::AtLeastOnce(pid(7)),
            b(b"p"),
        ));
        let (decoded, whole) = round_trip(version, &publish);
        let Packet::Publish(p) = decoded else {
            unreachable!()
        };
        assert_eq!(p.topic.len(), 65_535);
        assert_kept(&whole, p.topic.as_mqtt_str(), "topic");
    }
    assert!(MqttString::new(&"x".repeat(65_536)).is_err());
}

#[test]
fn longest_user_property_and_topic_filter() {
    let longest = "y".repeat(65_535);
    let subscribe = Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        properties: SubscribeProperties {
            user_properties: vec![user(&longest, &longest)],
            ..Default::default()
        },
        filters: vec![Subscription::new(
            common::filter(&longest),
            QoS::AtLeastOnce,
        )],
    });
    let (decoded, whole) = round_trip(V5, &subscribe);
    let Packet::Subscribe(sub) = decoded else {
        unreachable!()
    };
    assert_kept(&whole, &sub.properties.user_properties[0].value, "value");
    assert_within(&whole, sub.filters[0].filter.as_bytes(), "filter");
}

#[test]
fn one_mebibyte_payload() {
    let payload: Bytes = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    for version in VERSIONS {
        let publish = Packet::Publish(Publish::new(
            topic("big"),
            QosPid::ExactlyOnce(pid(3)),
            payload.clone(),
        ));
        let (decoded, whole) = round_trip(version, &publish);
        let Packet::Publish(p) = decoded else {
            unreachable!()
        };
        assert_eq!(p.payload.len(), 1 << 20);
        assert_within(&whole, &p.payload, "payload");
    }
}

#[test]
fn one_mebibyte_payload_arriving_in_chunks() {
    let payload = Bytes::from(vec![0x42; 1 << 20]);
    let publish = Packet::Publish(Publish {
        properties: PublishProperties {
            content_type: Some(s("application/octet-stream")),
            ..Default::default()
        }
        .into(),
        ..Publish::new(topic("big"), QosPid::AtMostOnce, payload)
    });
    let wire = encode(V5, &publish).unwrap();
    let decoder = Decoder::new(V5);
    let mut buf = BytesMut::new();
    let mut chunks = wire.chunks(64 * 1024).peekable();
    while let Some(chunk) = chunks.next() {
        buf.extend_from_slice(chunk);
        let result = decoder.decode(&mut buf).unwrap();
        if chunks.peek().is_some() {
            assert_eq!(result, None);
        } else {
            assert_eq!(result, Some(publish.clone()));
        }
    }
    assert!(buf.is_empty());
}

#[test]
fn sixteen_mebibyte_payload() {
    let payload = Bytes::from(vec![0xc3; 16 << 20]);
    let publish = Packet::Publish(Publish {
        retain: true,
        ..Publish::new(topic("huge"), QosPid::AtLeastOnce(pid(1)), payload)
    });
    let wire = encode(V5, &publish).unwrap();
    // 16 MiB plus the variable header needs a four-byte remaining length.
    assert_eq!(Decoder::new(V5).frame_len(&wire), Ok(Some((5, wire.len()))));
    let (decoded, whole) = decode_in_place(V5, &wire);
    let Packet::Publish(p) = &decoded else {
        unreachable!()
    };
    assert_within(&whole, &p.payload, "payload");
    assert!(decoded == publish);
}

// ---------------------------------------------------------------------------------------------
// Framing

#[test]
fn frame_len_handles_every_remaining_length_size() {
    // Spec 2.2.3 table: the bounds of each remaining-length size.
    let cases: [(&[u8], usize); 8] = [
        (&[0x00], 0),
        (&[0x7f], 127),
        (&[0x80, 0x01], 128),
        (&[0xff, 0x7f], 16_383),
        (&[0x80, 0x80, 0x01], 16_384),
        (&[0xff, 0xff, 0x7f], 2_097_151),
        (&[0x80, 0x80, 0x80, 0x01], 2_097_152),
        (&[0xff, 0xff, 0xff, 0x7f], 268_435_455),
    ];
    for version in VERSIONS {
        let decoder = Decoder::new(version);
        for (length, remaining) in cases {
            let header = [&[0x30][..], length].concat();
            let header_len = header.len();
            assert_eq!(
                decoder.frame_len(&header),
                Ok(Some((header_len, header_len + remaining))),
                "{length:x?}"
            );
            // Until the last length byte has arrived, the size is unknown.
            for cut in 0..header_len {
                assert_eq!(decoder.frame_len(&header[..cut]), Ok(None));
            }
        }
    }
}

#[test]
fn largest_remaining_length_is_framed_without_its_body() {
    let header = [0x30, 0xff, 0xff, 0xff, 0x7f];
    let decoder = Decoder::new(V5);
    assert_eq!(decoder.max_packet_size(), MAX_PACKET_SIZE);
    assert_eq!(MAX_PACKET_SIZE, 268_435_460);
    assert_eq!(decoder.frame_len(&header), Ok(Some((5, 268_435_460))));
    // The same header under a smaller limit is refused at once.
    assert_eq!(
        decoder
            .with_max_packet_size(1 << 20)
            .frame_len(&header)
            .map_err(|e| e.kind()),
        Err(DecodeErrorKind::PacketTooLarge {
            size: 268_435_460,
            max: 1 << 20
        })
    );
}

#[test]
fn decoder_waits_for_the_body_once_the_size_is_allowed() {
    let decoder = Decoder::new(V3_1_1).with_max_packet_size(1024);
    let mut buf = BytesMut::from(&hex("30 80 04")[..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    // The buffer made room for the whole packet, consuming nothing.
    assert_eq!(&buf[..], hex("30 80 04"));
    assert!(buf.capacity() >= 3 + 512);
}

#[test]
fn connack_with_all_string_properties_decodes_in_place() {
    let connack = Packet::from(ConnAck {
        properties: ConnAckProperties {
            response_information: Some(s("resp")),
            server_reference: Some(s("srv")),
            authentication_data: Some(b(b"data")),
            ..Default::default()
        },
        ..ConnAck::accepted(true)
    });
    let (decoded, whole) = round_trip(V5, &connack);
    let Packet::ConnAck(c) = decoded else {
        unreachable!()
    };
    let p = &c.properties;
    assert_kept(&whole, p.response_information.as_ref().unwrap(), "info");
    assert_kept(&whole, p.server_reference.as_ref().unwrap(), "reference");
    assert_within(&whole, p.authentication_data.as_ref().unwrap(), "auth data");
}

#[test]
fn encode_split_hands_large_payloads_back_uncopied() {
    let payload = Bytes::from(vec![0x5a; 64 << 10]);
    let mut with_properties =
        Publish::new(topic("a/b"), QosPid::AtLeastOnce(pid(9)), payload.clone());
    with_properties.properties.message_expiry_interval = Some(60);
    let plain = Publish::new(topic("a/b"), QosPid::AtMostOnce, payload.clone());
    for version in VERSIONS {
        let mut cases = vec![Packet::Publish(plain.clone())];
        if version.is_v5() {
            cases.push(Packet::Publish(with_properties.clone()));
        }
        for packet in cases {
            let whole = encode(version, &packet).unwrap();
            let mut head = BytesMut::from(&b"before"[..]);
            let (size, rest) = packet.encode_split(version, &mut head).unwrap();
            let rest = rest.expect("the payload is handed back");
            // The payload's own bytes, not a copy.
            assert_eq!(rest.as_ptr(), payload.as_ptr());
            assert_eq!(size, whole.len());
            assert_eq!(
                [&head[6..], &rest[..]].concat(),
                whole,
                "{packet:?} in {version}"
            );
        }
    }
}

#[test]
fn encode_vectored_hands_large_connect_fields_over_uncopied() {
    let large = |fill: char| fill.to_string().repeat(SPLIT_PAYLOAD_MIN);
    // Small fields of one byte, and of one byte short of large: several of those together
    // are more than SPLIT_PAYLOAD_MIN, and still copied.
    let cases = VERSIONS.into_iter().flat_map(|v| {
        [
            (v, 1, false),
            (v, SPLIT_PAYLOAD_MIN - 1, false),
            (v, 1, true),
        ]
    });
    for (version, small_len, with_properties) in cases {
        let small = |fill: char| fill.to_string().repeat(small_len);
        // Each of the five fields small or large: every combination.
        for mask in 0u8..32 {
            let pick = |bit: u8, fill: char| {
                if mask & (1 << bit) != 0 {
                    large(fill)
                } else {
                    small(fill)
                }
            };
            let client_id = s(&pick(0, 'c'));
            let will_topic = topic(&pick(1, 't'));
            let will_payload = Bytes::from(pick(2, 'p'));
            let username = s(&pick(3, 'u'));
            let password = Bytes::from(pick(4, 'w'));
            let mut will =
                LastWill::new(will_topic.clone(), will_payload.clone(), QoS::AtLeastOnce);
            will.retain = true;
            let mut connect = Connect::new(version, client_id.clone(), 30);
            if version.is_v5() && with_properties {
                will.properties = WillProperties {
                    will_delay_interval: Some(5),
                    ..WillProperties::default()
                }
                .into();
                connect.properties.session_expiry_interval = Some(60);
            }
            connect.will = Some(will);
            connect.username = Some(username.clone());
            connect.password = Some(password.clone());
            let packet = Packet::from(connect);
            let whole = encode(version, &packet).unwrap();
            let mut out = SegmentList::default();
            let size = packet.encode_vectored(version, &mut out).unwrap();
            assert_eq!(size, whole.len(), "mask {mask:05b} in {version}");
            assert_eq!(out.to_vec(), whole, "mask {mask:05b} in {version}");
            // Every large field is one of the parts, at its own address; nothing else is.
            let fields = [
                client_id.as_bytes(),
                will_topic.as_bytes(),
                &will_payload,
                username.as_bytes(),
                &password,
            ];
            let handed: Vec<*const u8> = out
                .sealed
                .iter()
                .skip(1)
                .step_by(2)
                .map(|p| p.as_ptr())
                .collect();
            let expected: Vec<*const u8> = fields
                .iter()
                .filter(|f| f.len() >= SPLIT_PAYLOAD_MIN)
                .map(|f| f.as_ptr())
                .collect();
            assert_eq!(handed, expected, "mask {mask:05b} in {version}");
        }
    }
}

#[test]
fn encode_vectored_fails_as_encode_does_and_writes_nothing() {
    // [MQTT-3.1.2-22 v3.1.1]: a password needs a user name before 5.0.
    let mut connect = Connect::new(V3_1_1, s("c"), 30);
    connect.password = Some(Bytes::from(vec![1; SPLIT_PAYLOAD_MIN]));
    let packet = Packet::from(connect);
    let mut out = SegmentList::default();
    assert_eq!(
        packet.encode_vectored(V3_1_1, &mut out),
        packet.encode(V3_1_1, &mut BytesMut::new())
    );
    assert!(packet.encode_vectored(V3_1_1, &mut out).is_err());
    assert!(out.buf.is_empty() && out.sealed.is_empty());
    // A CONNECT of another version than the encoder's.
    let mut connect = Connect::new(V5, s("c"), 30);
    connect.username = Some(s(&"u".repeat(SPLIT_PAYLOAD_MIN)));
    let packet = Packet::from(connect);
    assert_eq!(
        packet.encode_vectored(V3_1_1, &mut out),
        packet.encode(V3_1_1, &mut BytesMut::new())
    );
    assert!(packet.encode_vectored(V3_1_1, &mut out).is_err());
    assert!(out.buf.is_empty() && out.sealed.is_empty());
}

#[test]
fn encode_vectored_writes_other_packets_as_encode_split_does() {
    let payload = Bytes::from(vec![0x5a; SPLIT_PAYLOAD_MIN]);
    let packets = [
        Packet::Publish(Publish::new(
            topic("a/b"),
            QosPid::AtMostOnce,
            payload.clone(),
        )),
        Packet::Publish(Publish::new(topic("a/b"), QosPid::AtMostOnce, b(b"small"))),
        Packet::PingReq,
    ];
    for version in VERSIONS {
        let connect = Packet::from(Connect::new(version, s("c"), 30));
        for packet in packets.iter().chain([&connect]) {
            let whole = encode(version, packet).unwrap();
            let mut out = SegmentList::default();
            let size = packet.encode_vectored(version, &mut out).unwrap();
            assert_eq!(
                (size, out.to_vec()),
                (whole.len(), whole),
                "{packet:?} in {version}"
            );
        }
        let mut out = SegmentList::default();
        packets[0].encode_vectored(version, &mut out).unwrap();
        assert_eq!(
            out.sealed.get(1).map(|p| p.as_ptr()),
            Some(payload.as_ptr())
        );
    }
}

#[test]
fn encode_split_copies_small_payloads_and_other_packets() {
    let small = Packet::Publish(Publish::new(
        topic("a/b"),
        QosPid::AtMostOnce,
        Bytes::from(vec![1; mqtt_proto::SPLIT_PAYLOAD_MIN - 1]),
    ));
    for version in VERSIONS {
        for packet in [small.clone(), Packet::PingReq] {
            let whole = encode(version, &packet).unwrap();
            let mut buf = BytesMut::new();
            assert_eq!(
                packet.encode_split(version, &mut buf),
                Ok((whole.len(), None))
            );
            assert_eq!(&buf[..], &whole[..]);
        }
    }
}

#[test]
fn publish_encodes_every_size_of_remaining_length() {
    // Payloads around the limits of one-, two-, three- and four-byte remaining lengths.
    for len in [0, 120, 130, 16_370, 16_390, 2_097_140, 2_097_160] {
        for version in VERSIONS {
            let packet = Packet::Publish(Publish::new(
                topic("a/b"),
                QosPid::AtMostOnce,
                Bytes::from(vec![3; len]),
            ));
            let wire = encode(version, &packet).unwrap();
            assert_eq!(packet.encoded_len(version), Ok(wire.len()), "{len}");
            let decoder = Decoder::new(version).with_max_packet_size(MAX_PACKET_SIZE);
            let mut buf = BytesMut::from(&wire[..]);
            assert_eq!(
                decoder.decode(&mut buf),
                Ok(Some(packet)),
                "{len} in {version}"
            );
        }
    }
}
