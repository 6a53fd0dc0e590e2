//! One test per packet-format normative statement of MQTT 3.1.1 and 5.0 that the codec
//! enforces. Each names the statement it checks; where the two specs number the same rule
//! differently, both ids are cited. Every violation must give its exact typed error.

mod common;

use bytes::{Bytes, BytesMut};
use common::{decode_one, encode, hex, pid, s, topic, V3, VERSIONS};
use mqtt_proto::{
    ConnAck, Connect, DecodeErrorKind, Decoder, Packet, PacketType, PropertyId, ProtocolVersion,
    Publish, QoS, QosPid, StringError, SubAck, Subscribe, SubscribeProperties, Subscription,
    TopicError, TopicFilter, TopicName, UnsubAck, Unsubscribe, UnsubscribeProperties,
};
use ProtocolVersion::{V3_1, V3_1_1, V5};

/// The decode error for bytes that hold one whole (invalid) packet.
fn err(version: ProtocolVersion, bytes: &str) -> DecodeErrorKind {
    match decode_one(version, &hex(bytes)) {
        Ok(packet) => panic!("{bytes:?} decoded as {packet:?} in {version}"),
        Err(e) => e,
    }
}

/// The packet for bytes that hold one whole valid packet.
fn ok(version: ProtocolVersion, bytes: &str) -> Packet {
    decode_one(version, &hex(bytes)).unwrap_or_else(|e| panic!("{bytes:?} in {version}: {e:?}"))
}

/// Frames `body` behind `first` with a remaining length written by hand.
fn framed(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// A minimal valid packet of each type for `version`, first byte included.
fn minimal_packets(version: ProtocolVersion) -> Vec<(PacketType, Vec<u8>)> {
    let v5 = version == V5;
    let p = if v5 { "00" } else { "" };
    let connect = match version {
        V3_1 => "10 0e 00 06 'MQIsdp' 03 02 00 00 00 00",
        V3_1_1 => "10 0c 00 04 'MQTT' 04 02 00 00 00 00",
        V5 => "10 0d 00 04 'MQTT' 05 02 00 00 00 00 00",
    };
    let mut packets = vec![
        (PacketType::Connect, hex(connect)),
        (
            PacketType::ConnAck,
            hex(&format!("20 {} 00 00 {p}", if v5 { "03" } else { "02" })),
        ),
        (
            PacketType::Publish,
            hex(&format!(
                "30 {} 00 01 't' {p}",
                if v5 { "04" } else { "03" }
            )),
        ),
        (PacketType::PubAck, hex("40 02 00 01")),
        (PacketType::PubRec, hex("50 02 00 01")),
        (PacketType::PubRel, hex("62 02 00 01")),
        (PacketType::PubComp, hex("70 02 00 01")),
        (
            PacketType::Subscribe,
            hex(&format!(
                "82 {} 00 01 {p} 00 01 't' 00",
                if v5 { "07" } else { "06" }
            )),
        ),
        (
            PacketType::SubAck,
            hex(&format!("90 {} 00 01 {p} 00", if v5 { "04" } else { "03" })),
        ),
        (
            PacketType::Unsubscribe,
            hex(&format!(
                "a2 {} 00 01 {p} 00 01 't'",
                if v5 { "06" } else { "05" }
            )),
        ),
        (
            PacketType::UnsubAck,
            hex(&format!("b0 {} 00 01 {p}", if v5 { "03" } else { "02" })),
        ),
        (PacketType::PingReq, hex("c0 00")),
        (PacketType::PingResp, hex("d0 00")),
        (PacketType::Disconnect, hex("e0 00")),
    ];
    if v5 {
        packets.push((PacketType::Auth, hex("f0 00")));
    }
    packets
}

/// Checks that every flags nibble but `required` is rejected for the packet in `bytes`.
fn only_flags_accepted(version: ProtocolVersion, packet: PacketType, bytes: &[u8], required: u8) {
    for flags in 0..16u8 {
        let mut wire = bytes.to_vec();
        wire[0] = (wire[0] & 0xf0) | flags;
        let result = decode_one(version, &wire);
        if flags == required {
            assert_eq!(result.map(|p| p.packet_type()), Ok(packet), "{version}");
        } else {
            assert_eq!(
                result,
                Err(DecodeErrorKind::InvalidFlags { packet, flags }),
                "{packet:?} flags {flags:04b} in {version}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed header

#[test]
fn mqtt_2_2_2_1_and_2_1_3_1_reserved_flag_bits() {
    // [MQTT-2.2.2-1 v3.1.1] [MQTT-2.2.2-2 v3.1.1], [MQTT-2.1.3-1 v5.0]: every packet but PUBLISH
    // carries exactly the flags the spec lists.
    for version in VERSIONS {
        for (packet, bytes) in minimal_packets(version) {
            if packet == PacketType::Publish {
                continue;
            }
            let required = match packet {
                PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => 0b0010,
                _ => 0,
            };
            only_flags_accepted(version, packet, &bytes, required);
        }
    }
}

#[test]
fn mqtt_3_6_1_1_pubrel_flags() {
    // [MQTT-3.6.1-1 v3.1.1 v5.0]
    for version in VERSIONS {
        only_flags_accepted(version, PacketType::PubRel, &hex("62 02 00 01"), 0b0010);
        assert_eq!(
            err(version, "60 02 00 01"),
            DecodeErrorKind::InvalidFlags {
                packet: PacketType::PubRel,
                flags: 0
            }
        );
    }
}

#[test]
fn mqtt_3_8_1_1_subscribe_flags() {
    // [MQTT-3.8.1-1 v3.1.1 v5.0]
    assert_eq!(
        err(V3_1_1, "80 06 00 01 00 01 't' 00"),
        DecodeErrorKind::InvalidFlags {
            packet: PacketType::Subscribe,
            flags: 0
        }
    );
    assert_eq!(
        err(V5, "8a 07 00 01 00 00 01 't' 00"),
        DecodeErrorKind::InvalidFlags {
            packet: PacketType::Subscribe,
            flags: 0b1010
        }
    );
}

#[test]
fn mqtt_3_10_1_1_unsubscribe_flags() {
    // [MQTT-3.10.1-1 v3.1.1 v5.0]
    assert_eq!(
        err(V3_1_1, "a0 05 00 01 00 01 't'"),
        DecodeErrorKind::InvalidFlags {
            packet: PacketType::Unsubscribe,
            flags: 0
        }
    );
    assert_eq!(
        err(V5, "a3 06 00 01 00 00 01 't'"),
        DecodeErrorKind::InvalidFlags {
            packet: PacketType::Unsubscribe,
            flags: 0b0011
        }
    );
}

#[test]
fn mqtt_3_14_1_1_disconnect_flags() {
    // [MQTT-3.14.1-1 v3.1.1 v5.0]
    for version in VERSIONS {
        assert_eq!(
            err(version, "e1 00"),
            DecodeErrorKind::InvalidFlags {
                packet: PacketType::Disconnect,
                flags: 1
            }
        );
    }
}

#[test]
fn mqtt_3_15_1_1_auth_flags() {
    // [MQTT-3.15.1-1 v5.0]
    only_flags_accepted(V5, PacketType::Auth, &hex("f0 00"), 0);
    assert_eq!(
        err(V5, "f2 02 18 00"),
        DecodeErrorKind::InvalidFlags {
            packet: PacketType::Auth,
            flags: 2
        }
    );
}

#[test]
fn packet_type_0_is_reserved() {
    // Spec 2.2.1 (3.1.1) / 2.1.2 (5.0): type 0 is reserved. Known from the first byte alone.
    for version in VERSIONS {
        let mut buf = BytesMut::from(&[0x00][..]);
        assert_eq!(
            Decoder::new(version).decode(&mut buf).map_err(|e| e.kind()),
            Err(DecodeErrorKind::InvalidPacketType(0))
        );
    }
}

#[test]
fn auth_does_not_exist_before_5_0() {
    // Spec 2.2.1 (3.1.1): type 15 is reserved. Known from the first byte alone.
    for version in V3 {
        let mut buf = BytesMut::from(&[0xf0][..]);
        assert_eq!(
            Decoder::new(version).decode(&mut buf).map_err(|e| e.kind()),
            Err(DecodeErrorKind::InvalidPacketType(15))
        );
        assert_eq!(
            err(version, "f0 00"),
            DecodeErrorKind::InvalidPacketType(15)
        );
    }
    assert!(matches!(ok(V5, "f0 00"), Packet::Auth(_)));
}

// ---------------------------------------------------------------------------------------------
// Remaining length and variable byte integers

#[test]
fn mqtt_1_5_5_1_remaining_length_of_five_bytes_is_malformed() {
    // [MQTT-1.5.5-1 v5.0], spec 2.2.3 (3.1.1): at most four bytes.
    for version in VERSIONS {
        let decoder = Decoder::new(version);
        // Three continuation bytes: the length is still incomplete.
        let mut buf = BytesMut::from(&hex("30 ff ff ff")[..]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), 4);
        // A fourth continuation byte can only be followed by a fifth length byte.
        let mut buf = BytesMut::from(&hex("30 ff ff ff ff")[..]);
        assert_eq!(
            decoder.decode(&mut buf).map_err(|e| e.kind()),
            Err(DecodeErrorKind::MalformedVarInt)
        );
        let mut buf = BytesMut::from(&hex("30 ff ff ff ff 01")[..]);
        assert_eq!(
            decoder.decode(&mut buf).map_err(|e| e.kind()),
            Err(DecodeErrorKind::MalformedVarInt)
        );
    }
}

#[test]
fn mqtt_1_5_5_1_remaining_length_not_in_shortest_form() {
    // [MQTT-1.5.5-1 v5.0], spec 2.2.3 (3.1.1): the fewest bytes that hold the value.
    for version in VERSIONS {
        for wire in [
            "c0 80 00",
            "c0 80 80 00",
            "c0 80 80 80 00",
            "40 82 00 00 01",
        ] {
            assert_eq!(
                err(version, wire),
                DecodeErrorKind::MalformedVarInt,
                "{wire}"
            );
        }
    }
}

#[test]
fn mqtt_1_5_5_1_property_varints_in_shortest_form() {
    // [MQTT-1.5.5-1 v5.0]: property length and subscription identifier are variable byte integers.
    assert_eq!(
        err(V5, "30 06 00 01 't' 80 00 'x'"),
        DecodeErrorKind::MalformedVarInt
    );
    assert_eq!(
        err(V5, "30 08 00 01 't' 03 0b 81 00 'x'"),
        DecodeErrorKind::MalformedVarInt
    );
    // Property identifiers are variable byte integers too.
    assert_eq!(
        err(V5, "30 07 00 01 't' 02 a6 00 'x'"),
        DecodeErrorKind::MalformedVarInt
    );
}

// ---------------------------------------------------------------------------------------------
// Packet identifiers

#[test]
fn mqtt_2_3_1_1_packet_identifier_zero() {
    // [MQTT-2.3.1-1 v3.1.1]: never zero. 5.0 makes it each sender's duty; decoding checks the
    // server's [MQTT-2.2.1-4 v5.0 server].
    for version in VERSIONS {
        let p = if version == V5 { "00" } else { "" };
        let n = usize::from(version == V5);
        let cases = [
            format!("32 07 00 03 'a/b' 00 00 {p}"),
            format!("34 07 00 03 'a/b' 00 00 {p}"),
            "40 02 00 00".to_string(),
            "50 02 00 00".to_string(),
            "62 02 00 00".to_string(),
            "70 02 00 00".to_string(),
            format!("82 {:02x} 00 00 {p} 00 03 'a/b' 00", 8 + n),
            format!("90 {:02x} 00 00 {p} 00", 3 + n),
            format!("a2 {:02x} 00 00 {p} 00 03 'a/b'", 7 + n),
            format!("b0 {:02x} 00 00 {p}", 2 + n),
        ];
        for wire in cases {
            assert_eq!(err(version, &wire), DecodeErrorKind::ZeroPacketId, "{wire}");
        }
    }
}

#[test]
fn mqtt_2_3_1_5_qos_0_publish_has_no_packet_identifier() {
    // [MQTT-2.3.1-5 v3.1.1], [MQTT-2.2.1-2 v5.0]: the bytes after the topic are payload.
    for (version, wire) in [
        (V3_1, "30 07 00 03 'a/b' 00 01"),
        (V3_1_1, "30 07 00 03 'a/b' 00 01"),
        (V5, "30 08 00 03 'a/b' 00 00 01"),
    ] {
        let expected = Publish::new(topic("a/b"), QosPid::AtMostOnce, &[0u8, 1][..]);
        assert_eq!(ok(version, wire), Packet::Publish(expected.clone()));
        assert_eq!(encode(version, &Packet::Publish(expected)), Ok(hex(wire)));
    }
}

// ---------------------------------------------------------------------------------------------
// PUBLISH fixed header

#[test]
fn mqtt_3_3_1_4_qos_3() {
    // [MQTT-3.3.1-4 v3.1.1 v5.0]
    for version in VERSIONS {
        assert_eq!(
            err(version, "36 07 00 03 'a/b' 00 01"),
            DecodeErrorKind::InvalidQoS
        );
        assert_eq!(
            err(version, "3f 07 00 03 'a/b' 00 01"),
            DecodeErrorKind::InvalidQoS
        );
    }
}

#[test]
fn mqtt_3_3_1_2_dup_on_qos_0() {
    // [MQTT-3.3.1-2 v3.1.1 v5.0]
    for version in V3 {
        assert_eq!(
            err(version, "38 05 00 03 'a/b'"),
            DecodeErrorKind::DupOnQoS0
        );
        assert_eq!(
            err(version, "39 05 00 03 'a/b'"),
            DecodeErrorKind::DupOnQoS0
        );
    }
    assert_eq!(err(V5, "38 06 00 03 'a/b' 00"), DecodeErrorKind::DupOnQoS0);
}

// ---------------------------------------------------------------------------------------------
// UTF-8 encoded strings

#[test]
fn mqtt_1_5_3_1_ill_formed_utf8() {
    // [MQTT-1.5.3-1 v3.1.1], [MQTT-1.5.4-1 v5.0]
    let bad = StringError::InvalidUtf8;
    for version in V3 {
        // Topic: C3 28 is a lead byte without its continuation.
        assert_eq!(
            err(version, "30 05 00 02 c3 28 'x'"),
            DecodeErrorKind::InvalidString(bad)
        );
        // Topic: C0 80 is an overlong encoding of U+0000.
        assert_eq!(
            err(version, "30 05 00 02 c0 80 'x'"),
            DecodeErrorKind::InvalidString(bad)
        );
    }
    // Client identifier cut in the middle of a character.
    assert_eq!(
        err(V3_1_1, "10 0e 00 04 'MQTT' 04 02 00 3c 00 02 e2 82"),
        DecodeErrorKind::InvalidString(bad)
    );
    assert_eq!(
        err(V5, "30 06 00 02 c3 28 00 'x'"),
        DecodeErrorKind::InvalidString(bad)
    );
}

#[test]
fn mqtt_1_5_3_1_surrogates() {
    // [MQTT-1.5.3-1 v3.1.1], [MQTT-1.5.4-1 v5.0]: U+D800..U+DFFF are not characters.
    // Client identifier ED A0 80 (U+D800).
    assert_eq!(
        err(V3_1_1, "10 0f 00 04 'MQTT' 04 02 00 3c 00 03 ed a0 80"),
        DecodeErrorKind::InvalidString(StringError::InvalidUtf8)
    );
    // User name ED BF BF (U+DFFF).
    assert_eq!(
        err(
            V5,
            "10 13 00 04 'MQTT' 05 82 00 3c 00 00 01 'c' 00 03 ed bf bf"
        ),
        DecodeErrorKind::InvalidString(StringError::InvalidUtf8)
    );
}

#[test]
fn mqtt_1_5_3_2_null_character() {
    // [MQTT-1.5.3-2 v3.1.1], [MQTT-1.5.4-2 v5.0]
    let null = DecodeErrorKind::InvalidString(StringError::NullCharacter);
    for version in V3 {
        assert_eq!(err(version, "30 05 00 02 'a' 00 'x'"), null);
        assert_eq!(
            err(version, "10 0f 00 04 'MQTT' 04 02 00 3c 00 03 'a' 00 'b'"),
            null
        );
        // Topic filter of SUBSCRIBE and UNSUBSCRIBE.
        assert_eq!(err(version, "82 06 00 01 00 01 00 00"), null);
        assert_eq!(err(version, "a2 05 00 01 00 01 00"), null);
    }
    assert_eq!(err(V5, "30 06 00 02 'a' 00 00 'x'"), null);
}

#[test]
fn mqtt_1_5_3_3_byte_order_mark_is_kept() {
    // [MQTT-1.5.3-3 v3.1.1], [MQTT-1.5.4-3 v5.0]: EF BB BF is U+FEFF, never stripped.
    let wire = "30 08 00 04 ef bb bf 'a' 'pl'";
    let Packet::Publish(publish) = ok(V3_1_1, wire) else {
        panic!("not a PUBLISH");
    };
    assert_eq!(publish.topic.as_str(), "\u{feff}a");
    assert_eq!(publish.topic.len(), 4);
    assert_eq!(publish.payload, &b"pl"[..]);
    assert_eq!(
        encode(V3_1_1, &Packet::Publish(publish)),
        Ok(hex(wire)),
        "re-encoded with the mark"
    );
    // In a 5.0 user property value as well.
    let Packet::UnsubAck(ack) = ok(V5, "b0 0d 00 01 09 26 00 01 'k' 00 03 ef bb bf 00") else {
        panic!("not an UNSUBACK");
    };
    assert_eq!(ack.properties.user_properties[0].value.as_str(), "\u{feff}");
}

#[test]
fn mqtt_1_5_7_1_user_property_strings() {
    // [MQTT-1.5.7-1 v5.0]: both strings of a pair obey the string rules.
    assert_eq!(
        err(V5, "40 0c 00 01 00 08 26 00 01 'k' 00 02 'v' 00"),
        DecodeErrorKind::InvalidString(StringError::NullCharacter)
    );
    assert_eq!(
        err(V5, "40 0b 00 01 00 07 26 00 01 ff 00 01 'v'"),
        DecodeErrorKind::InvalidString(StringError::InvalidUtf8)
    );
}

#[test]
fn mqtt_3_1_3_utf8_fields_of_connect() {
    // [MQTT-3.1.3-4 v3.1.1 v5.0]: client id; [MQTT-3.1.3-10 v3.1.1] / [MQTT-3.1.3-11 v5.0]: will
    // topic; [MQTT-3.1.3-11 v3.1.1] / [MQTT-3.1.3-12 v5.0]: user name.
    let bad = DecodeErrorKind::InvalidString(StringError::InvalidUtf8);
    assert_eq!(
        err(V3_1_1, "10 0d 00 04 'MQTT' 04 02 00 3c 00 01 ff"),
        bad,
        "client id"
    );
    assert_eq!(
        err(
            V3_1_1,
            "10 12 00 04 'MQTT' 04 06 00 3c 00 01 'c' 00 01 ff 00 00"
        ),
        bad,
        "will topic"
    );
    assert_eq!(
        err(V3_1_1, "10 10 00 04 'MQTT' 04 82 00 3c 00 01 'c' 00 01 ff"),
        bad,
        "user name"
    );
    assert_eq!(
        err(
            V5,
            "10 13 00 04 'MQTT' 05 06 00 3c 00 00 01 'c' 00 00 01 ff 00 00"
        ),
        bad,
        "will topic 5.0"
    );
}

#[test]
fn mqtt_3_3_2_19_content_type_is_utf8() {
    // [MQTT-3.3.2-19 v5.0]
    assert_eq!(
        err(V5, "30 09 00 01 't' 05 03 00 02 c3 28"),
        DecodeErrorKind::InvalidString(StringError::InvalidUtf8)
    );
}

// ---------------------------------------------------------------------------------------------
// Topic names and filters

#[test]
fn mqtt_3_3_2_2_wildcards_in_topic_names() {
    // [MQTT-3.3.2-2 v3.1.1 v5.0], [MQTT-4.7.1-1 v3.1.1], [MQTT-4.7.0-1 v5.0]
    let wildcard = DecodeErrorKind::InvalidTopic(TopicError::WildcardInName);
    for version in V3 {
        assert_eq!(err(version, "30 06 00 03 'a/+' 'x'"), wildcard);
        assert_eq!(err(version, "30 06 00 03 'a/#' 'x'"), wildcard);
        assert_eq!(err(version, "30 04 00 01 '#' 'x'"), wildcard);
        // The will topic is a topic name too.
        assert_eq!(
            err(
                version,
                "10 12 00 04 'MQTT' 04 06 00 3c 00 01 'c' 00 01 '+' 00 00"
            ),
            wildcard
        );
    }
    assert_eq!(err(V5, "30 07 00 03 'a/+' 00 'x'"), wildcard);
}

#[test]
fn mqtt_3_3_2_14_response_topic_has_no_wildcards() {
    // [MQTT-3.3.2-14 v5.0], and [MQTT-3.3.2-13 v5.0]: it is a UTF-8 string.
    assert_eq!(
        err(V5, "30 0a 00 01 't' 06 08 00 03 'a/#'"),
        DecodeErrorKind::InvalidTopic(TopicError::WildcardInName)
    );
    assert_eq!(
        err(V5, "30 08 00 01 't' 04 08 00 01 ff"),
        DecodeErrorKind::InvalidString(StringError::InvalidUtf8)
    );
}

#[test]
fn mqtt_4_7_1_2_misplaced_multi_level_wildcard() {
    // [MQTT-4.7.1-2 v3.1.1], [MQTT-4.7.1-1 v5.0]
    let bad = DecodeErrorKind::InvalidTopic(TopicError::MisplacedMultiLevelWildcard);
    for version in V3 {
        assert_eq!(err(version, "82 0a 00 01 00 05 'a/#/b' 00"), bad);
        assert_eq!(err(version, "82 07 00 01 00 02 'a#' 00"), bad);
        assert_eq!(err(version, "a2 09 00 01 00 05 'a/#/b'"), bad);
    }
    assert_eq!(err(V5, "82 0b 00 01 00 00 05 'a/#/b' 00"), bad);
    assert_eq!(err(V5, "a2 07 00 01 00 00 02 '#/'"), bad);
}

#[test]
fn mqtt_4_7_1_3_misplaced_single_level_wildcard() {
    // [MQTT-4.7.1-3 v3.1.1], [MQTT-4.7.1-2 v5.0]
    let bad = DecodeErrorKind::InvalidTopic(TopicError::MisplacedSingleLevelWildcard);
    for version in V3 {
        assert_eq!(err(version, "82 07 00 01 00 02 'a+' 00"), bad);
        assert_eq!(err(version, "a2 08 00 01 00 04 'a/+b'"), bad);
    }
    assert_eq!(err(V5, "82 08 00 01 00 00 02 'a+' 00"), bad);
    // The well-placed forms are accepted.
    assert!(matches!(
        ok(V3_1_1, "82 0a 00 01 00 05 '+/a/#' 00"),
        Packet::Subscribe(_)
    ));
}

#[test]
fn mqtt_4_7_3_1_topics_are_not_empty() {
    // [MQTT-4.7.3-1 v3.1.1 v5.0]
    let empty = DecodeErrorKind::InvalidTopic(TopicError::Empty);
    for version in V3 {
        assert_eq!(err(version, "30 03 00 00 'x'"), empty);
        assert_eq!(err(version, "82 05 00 01 00 00 00"), empty);
        assert_eq!(err(version, "a2 04 00 01 00 00"), empty);
        assert_eq!(
            err(
                version,
                "10 11 00 04 'MQTT' 04 06 00 3c 00 01 'c' 00 00 00 00"
            ),
            empty,
            "will topic"
        );
    }
    assert_eq!(err(V5, "82 06 00 01 00 00 00 00"), empty);
    assert_eq!(TopicName::new(""), Err(TopicError::Empty));
    assert_eq!(TopicFilter::new(""), Err(TopicError::Empty));
}

#[test]
fn mqtt_3_3_2_1_empty_topic_without_alias_in_5_0() {
    // Spec 3.3.2.1 (5.0): a zero-length topic is a protocol error without a topic alias.
    assert_eq!(
        err(V5, "30 04 00 00 00 'x'"),
        DecodeErrorKind::EmptyTopicWithoutAlias
    );
    assert!(matches!(
        ok(V5, "30 07 00 00 03 23 00 01 'x'"),
        Packet::Publish(_)
    ));
}

#[test]
fn mqtt_4_7_3_2_topics_hold_no_null_character() {
    // [MQTT-4.7.3-2 v3.1.1 v5.0]: reported as the string rule it also breaks.
    let null = DecodeErrorKind::InvalidString(StringError::NullCharacter);
    for version in V3 {
        assert_eq!(err(version, "30 06 00 03 'a' 00 'b' 'x'"), null);
        assert_eq!(err(version, "82 08 00 01 00 03 'a' 00 'b' 00"), null);
    }
    assert_eq!(TopicName::new("a\0b"), Err(TopicError::NullCharacter));
    assert_eq!(TopicFilter::new("a\0b"), Err(TopicError::NullCharacter));
}

#[test]
fn mqtt_4_7_3_3_topics_up_to_65535_bytes() {
    // [MQTT-4.7.3-3 v3.1.1 v5.0]: the longest topic fits its two-byte length; a longer one cannot
    // be built.
    let longest = "t".repeat(65_535);
    for version in VERSIONS {
        let publish = Publish::new(topic(&longest), QosPid::AtMostOnce, &b"x"[..]);
        let wire = encode(version, &Packet::Publish(publish.clone())).unwrap();
        assert_eq!(&wire[4..6], [0xff, 0xff], "three-byte remaining length");
        assert_eq!(decode_one(version, &wire), Ok(Packet::Publish(publish)));
    }
    let too_long = "t".repeat(65_536);
    assert_eq!(TopicName::new(&too_long), Err(TopicError::TooLong));
    assert_eq!(TopicFilter::new(&too_long), Err(TopicError::TooLong));
}

#[test]
fn mqtt_4_8_2_1_shared_subscription_share_name() {
    // [MQTT-4.8.2-1 v5.0]: "$share/" then a ShareName of at least one character.
    let bad = DecodeErrorKind::InvalidTopic(TopicError::EmptyShareName);
    assert_eq!(err(V5, "82 0e 00 01 00 00 08 '$share//' 00"), bad);
    assert_eq!(err(V5, "82 0f 00 01 00 00 09 '$share//a' 00"), bad);
    assert_eq!(err(V5, "a2 0c 00 01 00 00 07 '$share/'"), bad);
}

#[test]
fn mqtt_4_8_2_2_shared_subscription_filter() {
    // [MQTT-4.8.2-2 v5.0]: no '/', '+' or '#' in the ShareName, then '/' and a filter.
    let bad = DecodeErrorKind::InvalidTopic(TopicError::InvalidShareName);
    for wire in [
        "82 0e 00 01 00 00 08 '$share/g' 00",
        "82 0f 00 01 00 00 09 '$share/g/' 00",
        "82 11 00 01 00 00 0b '$share/g+/a' 00",
        "82 11 00 01 00 00 0b '$share/g#/a' 00",
    ] {
        assert_eq!(err(V5, wire), bad, "{wire}");
    }
    let Packet::Subscribe(sub) = ok(V5, "82 12 00 01 00 00 0c '$share/g/a/#' 01") else {
        panic!("not a SUBSCRIBE");
    };
    assert_eq!(sub.filters[0].filter.share_name(), Some("g"));
    assert_eq!(sub.filters[0].filter.match_filter(), "a/#");
}

// ---------------------------------------------------------------------------------------------
// SUBSCRIBE and UNSUBSCRIBE payloads

#[test]
fn mqtt_3_8_3_3_subscribe_without_filters() {
    // [MQTT-3.8.3-3 v3.1.1], [MQTT-3.8.3-2 v5.0]
    for version in V3 {
        assert_eq!(
            err(version, "82 02 00 01"),
            DecodeErrorKind::NoTopicFilters {
                packet: PacketType::Subscribe
            }
        );
    }
    assert_eq!(
        err(V5, "82 03 00 01 00"),
        DecodeErrorKind::NoTopicFilters {
            packet: PacketType::Subscribe
        }
    );
    assert_eq!(
        err(V5, "82 05 00 01 02 0b 01"),
        DecodeErrorKind::NoTopicFilters {
            packet: PacketType::Subscribe
        }
    );
}

#[test]
fn mqtt_3_10_3_2_unsubscribe_without_filters() {
    // [MQTT-3.10.3-2 v3.1.1 v5.0]
    for version in V3 {
        assert_eq!(
            err(version, "a2 02 00 01"),
            DecodeErrorKind::NoTopicFilters {
                packet: PacketType::Unsubscribe
            }
        );
    }
    assert_eq!(
        err(V5, "a2 03 00 01 00"),
        DecodeErrorKind::NoTopicFilters {
            packet: PacketType::Unsubscribe
        }
    );
}

#[test]
fn mqtt_3_8_3_1_filter_needs_its_options_byte() {
    // [MQTT-3.8.3-1 v3.1.1]: each filter is a string followed by its options byte.
    assert_eq!(
        err(V3_1_1, "82 05 00 01 00 01 't'"),
        DecodeErrorKind::Truncated
    );
}

#[test]
fn mqtt_3_8_3_4_subscription_options_reserved_bits_3_1_1() {
    // [MQTT-3.8.3-4 v3.1.1]: bits 7..2 are zero and the QoS is at most 2.
    for version in V3 {
        for byte in 0..=255u8 {
            let wire = format!("82 06 00 01 00 01 't' {byte:02x}");
            let result = decode_one(version, &hex(&wire));
            if byte <= 2 {
                assert!(result.is_ok(), "{byte:#04x}");
            } else {
                assert_eq!(
                    result,
                    Err(DecodeErrorKind::InvalidSubscriptionOptions(byte)),
                    "{byte:#04x}"
                );
            }
        }
    }
}

#[test]
fn mqtt_3_8_3_5_subscription_options_reserved_bits_5_0() {
    // [MQTT-3.8.3-5 v5.0]: bits 7..6 are zero; spec 3.8.3.1 also forbids QoS 3 and retain
    // handling 3.
    for byte in 0..=255u8 {
        let wire = format!("82 07 00 01 00 00 01 't' {byte:02x}");
        let result = decode_one(V5, &hex(&wire));
        let valid = byte & 0xc0 == 0 && byte & 0x03 != 3 && (byte >> 4) & 0x03 != 3;
        if valid {
            assert!(result.is_ok(), "{byte:#04x}");
        } else {
            assert_eq!(
                result,
                Err(DecodeErrorKind::InvalidSubscriptionOptions(byte)),
                "{byte:#04x}"
            );
        }
    }
}

#[test]
fn mqtt_3_8_3_4_no_local_on_shared_subscription() {
    // [MQTT-3.8.3-4 v5.0]
    assert_eq!(
        err(V5, "82 10 00 01 00 00 0a '$share/g/a' 04"),
        DecodeErrorKind::NoLocalOnSharedSubscription
    );
    // Without No Local, or on an ordinary filter, it is fine.
    assert!(matches!(
        ok(V5, "82 10 00 01 00 00 0a '$share/g/a' 00"),
        Packet::Subscribe(_)
    ));
    assert!(matches!(
        ok(V5, "82 07 00 01 00 00 01 'a' 04"),
        Packet::Subscribe(_)
    ));
}

// ---------------------------------------------------------------------------------------------
// CONNECT

/// A 3.1.1 CONNECT with the given flags, client id "c" and `payload` after it.
fn connect_3_1_1(flags: u8, payload: &str) -> Vec<u8> {
    let mut body = hex("00 04 'MQTT' 04");
    body.push(flags);
    body.extend(hex("00 3c 00 01 'c'"));
    body.extend(hex(payload));
    framed(0x10, &body)
}

/// A 5.0 CONNECT with the given flags, no properties, client id "c" and `payload` after it.
fn connect_5(flags: u8, payload: &str) -> Vec<u8> {
    let mut body = hex("00 04 'MQTT' 05");
    body.push(flags);
    body.extend(hex("00 3c 00 00 01 'c'"));
    body.extend(hex(payload));
    framed(0x10, &body)
}

#[test]
fn mqtt_3_1_2_1_protocol_name() {
    // [MQTT-3.1.2-1 v5.0], and the check a 3.1.1 server makes [MQTT-3.1.2-1 v3.1.1 server].
    for version in VERSIONS {
        assert_eq!(
            err(version, "10 0d 00 04 'MQTX' 04 02 00 3c 00 01 'c'"),
            DecodeErrorKind::InvalidProtocolName
        );
        assert_eq!(
            err(version, "10 0d 00 04 'mqtt' 04 02 00 3c 00 01 'c'"),
            DecodeErrorKind::InvalidProtocolName
        );
    }
}

#[test]
fn mqtt_3_1_2_2_protocol_level() {
    // [MQTT-3.1.2-2 v3.1.1 v5.0 server]: an unsupported level is refused, as a server must.
    assert_eq!(
        err(V5, "10 0d 00 04 'MQTT' 06 02 00 3c 00 01 'c'"),
        DecodeErrorKind::UnsupportedProtocolLevel(6)
    );
    assert_eq!(
        err(V3_1_1, "10 0d 00 04 'MQTT' 03 02 00 3c 00 01 'c'"),
        DecodeErrorKind::UnsupportedProtocolLevel(3)
    );
    assert_eq!(
        err(V3_1, "10 0f 00 06 'MQIsdp' 04 02 00 3c 00 01 'c'"),
        DecodeErrorKind::UnsupportedProtocolLevel(4)
    );
}

#[test]
fn mqtt_3_1_2_3_connect_reserved_flag() {
    // [MQTT-3.1.2-3 v3.1.1 v5.0]
    let wire = connect_3_1_1(0x03, "");
    assert_eq!(
        decode_one(V3_1_1, &wire),
        Err(DecodeErrorKind::InvalidConnectFlags(0x03))
    );
    let wire = connect_5(0x01, "");
    assert_eq!(
        decode_one(V5, &wire),
        Err(DecodeErrorKind::InvalidConnectFlags(0x01))
    );
}

#[test]
fn mqtt_3_1_2_11_will_qos_and_retain_zero_without_will() {
    // [MQTT-3.1.2-11 v3.1.1 v5.0]
    for flags in [0x0a, 0x12, 0x22, 0x3a] {
        assert_eq!(
            decode_one(V3_1_1, &connect_3_1_1(flags, "")),
            Err(DecodeErrorKind::InvalidConnectFlags(flags)),
            "{flags:#04x}"
        );
        assert_eq!(
            decode_one(V5, &connect_5(flags, "")),
            Err(DecodeErrorKind::InvalidConnectFlags(flags)),
            "{flags:#04x}"
        );
    }
}

#[test]
fn mqtt_3_1_2_13_will_qos_zero_without_will() {
    // [MQTT-3.1.2-13 v3.1.1], [MQTT-3.1.2-11 v5.0]
    assert_eq!(
        decode_one(V3_1_1, &connect_3_1_1(0x08, "")),
        Err(DecodeErrorKind::InvalidConnectFlags(0x08))
    );
    assert_eq!(
        decode_one(V5, &connect_5(0x10, "")),
        Err(DecodeErrorKind::InvalidConnectFlags(0x10))
    );
}

#[test]
fn mqtt_3_1_2_14_will_qos_3() {
    // [MQTT-3.1.2-14 v3.1.1], [MQTT-3.1.2-12 v5.0]
    let will = "00 01 't' 00 00";
    assert_eq!(
        decode_one(V3_1_1, &connect_3_1_1(0x1e, will)),
        Err(DecodeErrorKind::InvalidConnectFlags(0x1e))
    );
    assert_eq!(
        decode_one(V5, &connect_5(0x1e, &format!("00 {will}"))),
        Err(DecodeErrorKind::InvalidConnectFlags(0x1e))
    );
    // QoS 0, 1 and 2 are accepted.
    for (flags, qos) in [
        (0x06, QoS::AtMostOnce),
        (0x0e, QoS::AtLeastOnce),
        (0x16, QoS::ExactlyOnce),
    ] {
        let Ok(Packet::Connect(c)) = decode_one(V3_1_1, &connect_3_1_1(flags, will)) else {
            panic!("{flags:#04x} refused");
        };
        assert_eq!(c.will.map(|w| w.qos), Some(qos));
    }
}

#[test]
fn mqtt_3_1_2_15_will_retain_zero_without_will() {
    // [MQTT-3.1.2-15 v3.1.1], [MQTT-3.1.2-13 v5.0]
    assert_eq!(
        decode_one(V3_1_1, &connect_3_1_1(0x20, "")),
        Err(DecodeErrorKind::InvalidConnectFlags(0x20))
    );
    assert_eq!(
        decode_one(V5, &connect_5(0x22, "")),
        Err(DecodeErrorKind::InvalidConnectFlags(0x22))
    );
}

#[test]
fn mqtt_3_1_2_9_will_flag_requires_will_fields() {
    // [MQTT-3.1.2-9 v3.1.1 v5.0]
    assert_eq!(
        decode_one(V3_1_1, &connect_3_1_1(0x06, "")),
        Err(DecodeErrorKind::Truncated)
    );
    assert_eq!(
        decode_one(V3_1_1, &connect_3_1_1(0x06, "00 01 't'")),
        Err(DecodeErrorKind::Truncated)
    );
    // 5.0 also needs the will properties.
    assert_eq!(
        decode_one(V5, &connect_5(0x06, "00 01 't' 00 00")),
        Err(DecodeErrorKind::Truncated)
    );
}

#[test]
fn mqtt_3_1_2_18_no_user_name_without_its_flag() {
    // [MQTT-3.1.2-18 v3.1.1], [MQTT-3.1.2-16 v5.0]
    assert_eq!(
        decode_one(V3_1_1, &connect_3_1_1(0x02, "00 01 'u'")),
        Err(DecodeErrorKind::TrailingBytes(3))
    );
    assert_eq!(
        decode_one(V5, &connect_5(0x02, "00 01 'u'")),
        Err(DecodeErrorKind::TrailingBytes(3))
    );
}

#[test]
fn mqtt_3_1_2_19_user_name_with_its_flag() {
    // [MQTT-3.1.2-19 v3.1.1], [MQTT-3.1.2-17 v5.0]
    assert_eq!(
        decode_one(V3_1_1, &connect_3_1_1(0x82, "")),
        Err(DecodeErrorKind::Truncated)
    );
    assert_eq!(
        decode_one(V5, &connect_5(0x82, "")),
        Err(DecodeErrorKind::Truncated)
    );
}

#[test]
fn mqtt_3_1_2_20_no_password_without_its_flag() {
    // [MQTT-3.1.2-20 v3.1.1], [MQTT-3.1.2-18 v5.0]
    assert_eq!(
        decode_one(V3_1_1, &connect_3_1_1(0x82, "00 01 'u' 00 01 'p'")),
        Err(DecodeErrorKind::TrailingBytes(3))
    );
    assert_eq!(
        decode_one(V5, &connect_5(0x82, "00 01 'u' 00 01 'p'")),
        Err(DecodeErrorKind::TrailingBytes(3))
    );
}

#[test]
fn mqtt_3_1_2_21_password_with_its_flag() {
    // [MQTT-3.1.2-21 v3.1.1], [MQTT-3.1.2-19 v5.0]
    assert_eq!(
        decode_one(V3_1_1, &connect_3_1_1(0xc2, "00 01 'u'")),
        Err(DecodeErrorKind::Truncated)
    );
    assert_eq!(
        decode_one(V5, &connect_5(0x42, "")),
        Err(DecodeErrorKind::Truncated)
    );
}

#[test]
fn mqtt_3_1_2_22_password_without_user_name() {
    // [MQTT-3.1.2-22 v3.1.1] (3.1 has the same rule). 5.0 dropped it.
    assert_eq!(
        decode_one(V3_1_1, &connect_3_1_1(0x42, "00 01 'p'")),
        Err(DecodeErrorKind::InvalidConnectFlags(0x42))
    );
    assert_eq!(
        err(V3_1, "10 12 00 06 'MQIsdp' 03 42 00 3c 00 01 'c' 00 01 'p'"),
        DecodeErrorKind::InvalidConnectFlags(0x42)
    );
    let Ok(Packet::Connect(c)) = decode_one(V5, &connect_5(0x42, "00 01 'p'")) else {
        panic!("5.0 allows a password alone");
    };
    assert_eq!(c.username, None);
    assert_eq!(c.password.as_deref(), Some(&b"p"[..]));
}

#[test]
fn mqtt_3_1_3_3_client_identifier_is_mandatory() {
    // [MQTT-3.1.3-3 v3.1.1 v5.0]: the payload starts with the client identifier.
    assert_eq!(
        err(V3_1_1, "10 0a 00 04 'MQTT' 04 02 00 3c"),
        DecodeErrorKind::Truncated
    );
    assert_eq!(
        err(V5, "10 0b 00 04 'MQTT' 05 02 00 3c 00"),
        DecodeErrorKind::Truncated
    );
}

// ---------------------------------------------------------------------------------------------
// CONNACK

#[test]
fn mqtt_3_2_2_1_connack_reserved_flags() {
    // [MQTT-3.2.2-1 v5.0], spec 3.2.2.1 (3.1.1): bits 7..1 of the acknowledge flags are 0.
    for flags in 2..=255u8 {
        assert_eq!(
            decode_one(V3_1_1, &[0x20, 0x02, flags, 0x00]),
            Err(DecodeErrorKind::InvalidConnAckFlags(flags)),
            "{flags:#04x}"
        );
        assert_eq!(
            decode_one(V5, &[0x20, 0x03, flags, 0x00, 0x00]),
            Err(DecodeErrorKind::InvalidConnAckFlags(flags)),
            "{flags:#04x}"
        );
    }
}

#[test]
fn connack_3_1_first_byte_is_unused() {
    // Spec 3.2 of 3.1: the first byte is reserved and not used, so it is not checked.
    assert_eq!(
        ok(V3_1, "20 02 00 00"),
        Packet::from(ConnAck::accepted(false))
    );
    assert!(matches!(ok(V3_1, "20 02 fe 00"), Packet::ConnAck(_)));
}

// ---------------------------------------------------------------------------------------------
// Reason codes

/// Checks that exactly the `defined` codes decode for the packet `template` builds.
fn only_codes_accepted(
    version: ProtocolVersion,
    packet: PacketType,
    defined: &[u8],
    template: impl Fn(u8) -> Vec<u8>,
) {
    for code in 0..=255u8 {
        let result = decode_one(version, &template(code));
        if defined.contains(&code) {
            assert!(result.is_ok(), "{packet:?} {code:#04x}: {result:?}");
        } else {
            assert_eq!(
                result,
                Err(DecodeErrorKind::InvalidReasonCode { packet, code }),
                "{packet:?} {code:#04x}"
            );
        }
    }
}

const PUBACK_CODES: [u8; 9] = [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL_CODES: [u8; 2] = [0x00, 0x92];

#[test]
fn mqtt_3_4_2_1_puback_reason_codes() {
    // [MQTT-3.4.2-1 v5.0]
    only_codes_accepted(V5, PacketType::PubAck, &PUBACK_CODES, |c| {
        vec![0x40, 0x03, 0x00, 0x01, c]
    });
    only_codes_accepted(V5, PacketType::PubAck, &PUBACK_CODES, |c| {
        vec![0x40, 0x04, 0x00, 0x01, c, 0x00]
    });
}

#[test]
fn mqtt_3_5_2_1_pubrec_reason_codes() {
    // [MQTT-3.5.2-1 v5.0]
    only_codes_accepted(V5, PacketType::PubRec, &PUBACK_CODES, |c| {
        vec![0x50, 0x03, 0x00, 0x01, c]
    });
}

#[test]
fn mqtt_3_6_2_1_pubrel_reason_codes() {
    // [MQTT-3.6.2-1 v5.0]
    only_codes_accepted(V5, PacketType::PubRel, &PUBREL_CODES, |c| {
        vec![0x62, 0x03, 0x00, 0x01, c]
    });
}

#[test]
fn mqtt_3_7_2_1_pubcomp_reason_codes() {
    // [MQTT-3.7.2-1 v5.0]
    only_codes_accepted(V5, PacketType::PubComp, &PUBREL_CODES, |c| {
        vec![0x70, 0x03, 0x00, 0x01, c]
    });
}

#[test]
fn mqtt_3_14_2_1_disconnect_reason_codes() {
    // [MQTT-3.14.2-1 v5.0]
    let defined = [
        0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94,
        0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2,
    ];
    only_codes_accepted(V5, PacketType::Disconnect, &defined, |c| {
        vec![0xe0, 0x01, c]
    });
}

#[test]
fn mqtt_3_15_2_1_auth_reason_codes() {
    // [MQTT-3.15.2-1 v5.0]
    only_codes_accepted(V5, PacketType::Auth, &[0x00, 0x18, 0x19], |c| {
        [vec![0xf0, 0x0a, c], hex("08 15 00 05 'SCRAM'")].concat()
    });
}

#[test]
fn mqtt_3_9_3_2_suback_return_codes() {
    // [MQTT-3.9.3-2 v3.1.1]: only 0x00, 0x01, 0x02 and 0x80.
    only_codes_accepted(V3_1_1, PacketType::SubAck, &[0x00, 0x01, 0x02, 0x80], |c| {
        vec![0x90, 0x03, 0x00, 0x01, c]
    });
    // [MQTT-3.9.3-2 v5.0 server]: a defined Subscribe Reason Code for every filter.
    let defined = [
        0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2,
    ];
    only_codes_accepted(V5, PacketType::SubAck, &defined, |c| {
        vec![0x90, 0x05, 0x00, 0x01, 0x00, 0x00, c]
    });
}

#[test]
fn mqtt_3_11_3_2_unsuback_reason_codes() {
    // [MQTT-3.11.3-2 v5.0 server]
    let defined = [0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91];
    only_codes_accepted(V5, PacketType::UnsubAck, &defined, |c| {
        vec![0xb0, 0x04, 0x00, 0x01, 0x00, c]
    });
}

#[test]
fn mqtt_3_2_2_8_connack_reason_codes() {
    // [MQTT-3.2.2-8 v5.0 server]
    let defined = [
        0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95,
        0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f,
    ];
    only_codes_accepted(V5, PacketType::ConnAck, &defined, |c| {
        vec![0x20, 0x03, 0x00, c, 0x00]
    });
    // Spec 3.2.2.3 (3.1.1): return codes 6-255 are reserved.
    for version in V3 {
        only_codes_accepted(version, PacketType::ConnAck, &[0, 1, 2, 3, 4, 5], |c| {
            vec![0x20, 0x02, 0x00, c]
        });
    }
}

#[test]
fn reason_codes_do_not_exist_before_5_0() {
    // Spec 3.4-3.7 and 3.14 (3.1.1): the ack packets end after the packet identifier.
    for version in V3 {
        for wire in [
            "40 03 00 01 00",
            "50 03 00 01 10",
            "62 03 00 01 92",
            "70 03 00 01 00",
            "b0 03 00 01 00",
        ] {
            assert_eq!(
                err(version, wire),
                DecodeErrorKind::TrailingBytes(1),
                "{wire}"
            );
        }
        assert_eq!(err(version, "e0 01 00"), DecodeErrorKind::TrailingBytes(1));
    }
}

// ---------------------------------------------------------------------------------------------
// 5.0 properties

/// The packets that may carry each property (spec 2.2.2.2 of 5.0); `Will` is the will
/// properties of CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    Connect,
    Will,
    ConnAck,
    Publish,
    PubAck,
    PubRec,
    PubRel,
    PubComp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

const HOLDERS: [Holder; 14] = [
    Holder::Connect,
    Holder::Will,
    Holder::ConnAck,
    Holder::Publish,
    Holder::PubAck,
    Holder::PubRec,
    Holder::PubRel,
    Holder::PubComp,
    Holder::Subscribe,
    Holder::SubAck,
    Holder::Unsubscribe,
    Holder::UnsubAck,
    Holder::Disconnect,
    Holder::Auth,
];

impl Holder {
    fn packet_type(self) -> PacketType {
        match self {
            Holder::Connect | Holder::Will => PacketType::Connect,
            Holder::ConnAck => PacketType::ConnAck,
            Holder::Publish => PacketType::Publish,
            Holder::PubAck => PacketType::PubAck,
            Holder::PubRec => PacketType::PubRec,
            Holder::PubRel => PacketType::PubRel,
            Holder::PubComp => PacketType::PubComp,
            Holder::Subscribe => PacketType::Subscribe,
            Holder::SubAck => PacketType::SubAck,
            Holder::Unsubscribe => PacketType::Unsubscribe,
            Holder::UnsubAck => PacketType::UnsubAck,
            Holder::Disconnect => PacketType::Disconnect,
            Holder::Auth => PacketType::Auth,
        }
    }

    /// A valid 5.0 packet whose (only) property block holds `props`.
    fn packet(self, props: &[u8]) -> Vec<u8> {
        assert!(props.len() < 128);
        let block = [&[props.len() as u8][..], props].concat();
        let (first, before, after) = match self {
            Holder::Connect => (0x10, hex("00 04 'MQTT' 05 02 00 3c"), hex("00 01 'c'")),
            Holder::Will => (
                0x10,
                hex("00 04 'MQTT' 05 06 00 3c 00 00 01 'c'"),
                hex("00 01 't' 00 00"),
            ),
            Holder::ConnAck => (0x20, hex("00 00"), vec![]),
            Holder::Publish => (0x30, hex("00 01 't'"), hex("'payload'")),
            Holder::PubAck => (0x40, hex("00 01 00"), vec![]),
            Holder::PubRec => (0x50, hex("00 01 00"), vec![]),
            Holder::PubRel => (0x62, hex("00 01 00"), vec![]),
            Holder::PubComp => (0x70, hex("00 01 00"), vec![]),
            Holder::Subscribe => (0x82, hex("00 01"), hex("00 01 'a' 00")),
            Holder::SubAck => (0x90, hex("00 01"), hex("00")),
            Holder::Unsubscribe => (0xa2, hex("00 01"), hex("00 01 'a'")),
            Holder::UnsubAck => (0xb0, hex("00 01"), hex("00")),
            Holder::Disconnect => (0xe0, hex("00"), vec![]),
            // Success: an AUTH continuing an exchange must also name its method.
            Holder::Auth => (0xf0, hex("00"), vec![]),
        };
        framed(first, &[before, block, after].concat())
    }
}

/// Which packets may carry each property, from the table of spec 2.2.2.2 (5.0).
fn allowed(id: u8) -> &'static [Holder] {
    use Holder::*;
    match id {
        0x01 | 0x02 | 0x03 | 0x08 | 0x09 => &[Publish, Will],
        0x0b => &[Publish, Subscribe],
        0x11 => &[Connect, ConnAck, Disconnect],
        0x12 | 0x13 | 0x1a | 0x24 | 0x25 | 0x28 | 0x29 | 0x2a => &[ConnAck],
        0x15 | 0x16 => &[Connect, ConnAck, Auth],
        0x17 | 0x19 => &[Connect],
        0x18 => &[Will],
        0x1c => &[ConnAck, Disconnect],
        0x1f => &[
            ConnAck, PubAck, PubRec, PubRel, PubComp, SubAck, UnsubAck, Disconnect, Auth,
        ],
        0x21 | 0x22 | 0x27 => &[Connect, ConnAck],
        0x23 => &[Publish],
        0x26 => &HOLDERS,
        _ => &[],
    }
}

/// One property with a valid value, identifier first.
fn property_with_value(id: u8) -> Vec<u8> {
    let value = match id {
        0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2a => hex("01"),
        0x13 | 0x21 | 0x22 | 0x23 => hex("00 01"),
        0x02 | 0x11 | 0x18 | 0x27 => hex("00 00 00 01"),
        0x0b => hex("01"),
        0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1a | 0x1c | 0x1f => hex("00 01 'a'"),
        0x26 => hex("00 01 'a' 00 01 'b'"),
        other => panic!("no property {other:#04x}"),
    };
    [vec![id], value].concat()
}

const PROPERTY_IDS: [u8; 27] = [
    0x01, 0x02, 0x03, 0x08, 0x09, 0x0b, 0x11, 0x12, 0x13, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1c,
    0x1f, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a,
];

#[test]
fn property_not_allowed_in_packet() {
    // Spec 2.2.2.2 (5.0): each property belongs to the packets the table lists.
    for holder in HOLDERS {
        for id in PROPERTY_IDS {
            let wire = holder.packet(&property_with_value(id));
            let result = decode_one(V5, &wire);
            if holder == Holder::Connect && id == 0x16 {
                // Allowed, but not without an Authentication Method (5.0 section 3.1.2.11.10).
                assert_eq!(
                    result,
                    Err(DecodeErrorKind::AuthenticationDataWithoutMethod)
                );
            } else if allowed(id).contains(&holder) {
                assert_eq!(
                    result.map(|p| p.packet_type()),
                    Ok(holder.packet_type()),
                    "{holder:?} {id:#04x}"
                );
            } else {
                let property = PropertyId::from_u32(u32::from(id)).unwrap();
                assert_eq!(
                    result,
                    Err(DecodeErrorKind::PropertyNotAllowed {
                        packet: holder.packet_type(),
                        property
                    }),
                    "{holder:?} {id:#04x}"
                );
            }
        }
    }
}

#[test]
fn duplicated_property_is_a_protocol_error() {
    // Spec 3.x.2.x (5.0): "It is a Protocol Error to include <property> more than once". User
    // Property, and Subscription Identifier in PUBLISH, may repeat.
    for holder in HOLDERS {
        for id in PROPERTY_IDS {
            if !allowed(id).contains(&holder) {
                continue;
            }
            let one = property_with_value(id);
            let wire = holder.packet(&[one.clone(), one].concat());
            let result = decode_one(V5, &wire);
            let may_repeat = id == 0x26 || (id == 0x0b && holder == Holder::Publish);
            if may_repeat {
                assert!(result.is_ok(), "{holder:?} {id:#04x}: {result:?}");
            } else {
                let property = PropertyId::from_u32(u32::from(id)).unwrap();
                assert_eq!(
                    result,
                    Err(DecodeErrorKind::DuplicateProperty(property)),
                    "{holder:?} {id:#04x}"
                );
            }
        }
    }
}

#[test]
fn unknown_property_identifier() {
    // Spec 2.2.2.2 (5.0) defines 27 identifiers; any other one is malformed.
    for id in (0u8..0x80).filter(|id| !PROPERTY_IDS.contains(id)) {
        let wire = Holder::Publish.packet(&[id, 0x00]);
        assert_eq!(
            decode_one(V5, &wire),
            Err(DecodeErrorKind::UnknownProperty(u32::from(id))),
            "{id:#04x}"
        );
    }
    // A two-byte identifier, 0x80 0x01 = 128.
    assert_eq!(
        decode_one(V5, &Holder::ConnAck.packet(&[0x80, 0x01, 0x00])),
        Err(DecodeErrorKind::UnknownProperty(128))
    );
}

#[test]
fn mqtt_3_3_2_8_topic_alias_zero() {
    // [MQTT-3.3.2-8 v5.0]
    assert_eq!(
        err(V5, "30 08 00 01 't' 03 23 00 00 'x'"),
        DecodeErrorKind::InvalidPropertyValue(PropertyId::TopicAlias)
    );
    assert_eq!(
        err(V5, "30 07 00 00 03 23 00 00 'x'"),
        DecodeErrorKind::InvalidPropertyValue(PropertyId::TopicAlias)
    );
}

#[test]
fn property_values_out_of_range() {
    // Spec 3.1.2.11, 3.2.2.3, 3.3.2.3, 3.8.2.1 (5.0): values the spec calls a protocol error.
    let cases = [
        (Holder::Connect, "21 00 00", PropertyId::ReceiveMaximum),
        (Holder::ConnAck, "21 00 00", PropertyId::ReceiveMaximum),
        (
            Holder::Connect,
            "27 00 00 00 00",
            PropertyId::MaximumPacketSize,
        ),
        (
            Holder::Connect,
            "19 02",
            PropertyId::RequestResponseInformation,
        ),
        (
            Holder::Connect,
            "17 02",
            PropertyId::RequestProblemInformation,
        ),
        (Holder::ConnAck, "24 02", PropertyId::MaximumQoS),
        (Holder::ConnAck, "25 02", PropertyId::RetainAvailable),
        (
            Holder::ConnAck,
            "28 02",
            PropertyId::WildcardSubscriptionAvailable,
        ),
        (
            Holder::ConnAck,
            "29 ff",
            PropertyId::SubscriptionIdentifierAvailable,
        ),
        (
            Holder::ConnAck,
            "2a 02",
            PropertyId::SharedSubscriptionAvailable,
        ),
        (Holder::Publish, "01 02", PropertyId::PayloadFormatIndicator),
        (Holder::Will, "01 02", PropertyId::PayloadFormatIndicator),
        (Holder::Publish, "0b 00", PropertyId::SubscriptionIdentifier),
        (
            Holder::Subscribe,
            "0b 00",
            PropertyId::SubscriptionIdentifier,
        ),
    ];
    for (holder, props, property) in cases {
        assert_eq!(
            decode_one(V5, &holder.packet(&hex(props))),
            Err(DecodeErrorKind::InvalidPropertyValue(property)),
            "{holder:?} {props}"
        );
    }
}

#[test]
fn property_block_longer_than_the_packet() {
    // Spec 2.2.2.1 (5.0): the property length counts bytes inside the packet.
    assert_eq!(err(V5, "30 05 00 01 't' 05 01"), DecodeErrorKind::Truncated);
    // A property value running past the end of its block.
    assert_eq!(
        err(V5, "30 08 00 01 't' 02 02 00 00 00"),
        DecodeErrorKind::Truncated
    );
}

#[test]
fn mqtt_2_2_2_1_property_length_zero_is_encoded() {
    // [MQTT-2.2.2-1 v5.0]: a packet without properties still has a property length of 0.
    let cases: Vec<(Packet, &str)> = vec![
        (
            Packet::from(Connect::new(V5, s("c"), 0)),
            "10 0e 00 04 'MQTT' 05 02 00 00 00 00 01 'c'",
        ),
        (Packet::from(ConnAck::accepted(false)), "20 03 00 00 00"),
        (
            Packet::Publish(Publish::new(
                topic("t"),
                QosPid::AtLeastOnce(pid(1)),
                &b"x"[..],
            )),
            "32 07 00 01 't' 00 01 00 'x'",
        ),
        (
            Packet::Subscribe(Subscribe {
                packet_id: pid(1),
                properties: SubscribeProperties::default(),
                filters: vec![Subscription::new(common::filter("t"), QoS::AtMostOnce)],
            }),
            "82 07 00 01 00 00 01 't' 00",
        ),
        (
            Packet::SubAck(SubAck {
                packet_id: pid(1),
                properties: Default::default(),
                reason_codes: vec![mqtt_proto::SubAckReasonCode::GrantedQoS0],
            }),
            "90 04 00 01 00 00",
        ),
        (
            Packet::Unsubscribe(Unsubscribe {
                packet_id: pid(1),
                properties: UnsubscribeProperties::default(),
                filters: vec![common::filter("t")],
            }),
            "a2 06 00 01 00 00 01 't'",
        ),
        (
            Packet::UnsubAck(UnsubAck {
                packet_id: pid(1),
                properties: Default::default(),
                reason_codes: vec![mqtt_proto::UnsubAckReasonCode::Success],
            }),
            "b0 04 00 01 00 00",
        ),
    ];
    for (packet, wire) in cases {
        assert_eq!(encode(V5, &packet), Ok(hex(wire)), "{packet:?}");
    }
    // A 5.0 receiver does not accept these packets without it.
    assert_eq!(err(V5, "20 02 00 00"), DecodeErrorKind::Truncated);
    assert_eq!(err(V5, "32 05 00 01 't' 00 01"), DecodeErrorKind::Truncated);
    assert_eq!(
        err(V5, "10 0d 00 04 'MQTT' 05 02 00 00 00 01 'c'"),
        DecodeErrorKind::Truncated
    );
}

// ---------------------------------------------------------------------------------------------
// Packet boundaries

#[test]
fn trailing_bytes_after_the_last_field() {
    // Spec 2.2.3 (both): the remaining length is exactly the size of what follows; a packet
    // whose fields end early is malformed.
    for version in VERSIONS {
        assert_eq!(err(version, "c0 01 00"), DecodeErrorKind::TrailingBytes(1));
        assert_eq!(
            err(version, "d0 02 00 00"),
            DecodeErrorKind::TrailingBytes(2)
        );
    }
    for version in V3 {
        assert_eq!(
            err(version, "20 03 00 00 00"),
            DecodeErrorKind::TrailingBytes(1)
        );
        assert_eq!(
            err(version, "10 0e 00 04 'MQTT' 04 02 00 3c 00 00 ff ff"),
            DecodeErrorKind::TrailingBytes(2)
        );
    }
    assert_eq!(
        err(V5, "20 04 00 00 00 ff"),
        DecodeErrorKind::TrailingBytes(1)
    );
    assert_eq!(
        err(V5, "40 05 00 01 00 00 ff"),
        DecodeErrorKind::TrailingBytes(1)
    );
    assert_eq!(err(V5, "e0 03 00 00 ff"), DecodeErrorKind::TrailingBytes(1));
    assert_eq!(err(V5, "f0 03 18 00 ff"), DecodeErrorKind::TrailingBytes(1));
}

#[test]
fn frame_longer_or_shorter_than_declared() {
    let decoder = Decoder::new(V3_1_1);
    assert_eq!(
        decoder
            .decode_frame(&Bytes::from(hex("40 02 00 01 00")))
            .map_err(|e| e.kind()),
        Err(DecodeErrorKind::TrailingBytes(1))
    );
    assert_eq!(
        decoder
            .decode_frame(&Bytes::from(hex("40 02 00")))
            .map_err(|e| e.kind()),
        Err(DecodeErrorKind::Truncated)
    );
    assert_eq!(
        decoder
            .decode_frame(&Bytes::from(hex("40")))
            .map_err(|e| e.kind()),
        Err(DecodeErrorKind::Truncated)
    );
    // A field running past the declared end is truncated, whatever follows in the stream.
    let mut stream = BytesMut::from(&hex("40 01 00 01")[..]);
    assert_eq!(
        decoder.decode(&mut stream).map_err(|e| e.kind()),
        Err(DecodeErrorKind::Truncated)
    );
}

// ---------------------------------------------------------------------------------------------
// Maximum packet size

#[test]
fn packet_too_large_is_rejected_from_the_fixed_header_alone() {
    // Spec 3.1.2.11.4 / 3.2.2.3.6 (5.0): a receiver may bound packet size; the check needs
    // only the fixed header, so the body is never buffered.
    for version in VERSIONS {
        let decoder = Decoder::new(version).with_max_packet_size(100);
        // Remaining length 128: 131 bytes in all.
        let mut buf = BytesMut::from(&hex("30 80")[..]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&[0x01]);
        assert_eq!(
            decoder.decode(&mut buf).map_err(|e| e.kind()),
            Err(DecodeErrorKind::PacketTooLarge {
                size: 131,
                max: 100
            })
        );
        assert!(buf.capacity() < 131, "body space was reserved");
        // The largest remaining length, with no body at all.
        let mut buf = BytesMut::from(&hex("30 ff ff ff 7f")[..]);
        assert_eq!(
            decoder.decode(&mut buf).map_err(|e| e.kind()),
            Err(DecodeErrorKind::PacketTooLarge {
                size: 268_435_460,
                max: 100
            })
        );
    }
}

#[test]
fn packet_of_exactly_the_maximum_size_is_accepted() {
    // 2 bytes of header + 98 of body = 100.
    let mut body = hex("00 01 't'");
    body.resize(98, b'p');
    let wire = framed(0x30, &body);
    assert_eq!(wire.len(), 100);
    for (max, accepted) in [(100, true), (99, false)] {
        let decoder = Decoder::new(V3_1_1).with_max_packet_size(max);
        let result = decoder
            .decode(&mut BytesMut::from(&wire[..]))
            .map_err(|e| e.kind());
        if accepted {
            assert!(matches!(result, Ok(Some(Packet::Publish(_)))));
        } else {
            assert_eq!(
                result,
                Err(DecodeErrorKind::PacketTooLarge { size: 100, max })
            );
        }
    }
}

#[test]
fn size_limit_applies_to_every_packet_type() {
    let decoder = Decoder::new(V5).with_max_packet_size(4);
    for (packet, wire) in minimal_packets(V5) {
        let mut buf = BytesMut::from(&wire[..]);
        let result = decoder.decode(&mut buf).map_err(|e| e.kind());
        if wire.len() <= 4 {
            assert!(matches!(result, Ok(Some(_))), "{packet:?}");
        } else {
            assert_eq!(
                result,
                Err(DecodeErrorKind::PacketTooLarge {
                    size: wire.len(),
                    max: 4
                }),
                "{packet:?}"
            );
        }
    }
}
