//! Every decode error names the rule it breaks in the version the connection speaks: the numbered
//! statement of that version's spec where there is one, checked here against the statement lists
//! in `spec/`, and the section that states the rule in any case. The borrowed view reports the
//! same error as the owned decoder.

mod common;

use std::collections::HashMap;

use bytes::Bytes;
use common::{decode_one, hex, VERSIONS};
use mqtt_proto::{
    DecodeError, DecodeErrorKind, Decoder, PacketType, PropertyId, ProtocolVersion, Spec,
    StringError, TopicError,
};
use ProtocolVersion::{V3_1, V3_1_1, V5};

/// The statement list of `spec`: each id and its section.
fn statements(spec: Spec) -> HashMap<&'static str, &'static str> {
    let text = match spec {
        Spec::V3_1_1 => include_str!("../../spec/mqtt-3.1.1-statements.tsv"),
        Spec::V5 => include_str!("../../spec/mqtt-5.0-statements.tsv"),
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split('\t');
            Some((fields.next()?, fields.next()?))
        })
        .collect()
}

/// The error for bytes holding one whole invalid packet, the same from both APIs.
fn error(version: ProtocolVersion, wire: &str) -> DecodeError {
    let bytes = hex(wire);
    let decoder = Decoder::new(version);
    let owned = decoder
        .decode_frame(&Bytes::from(bytes.clone()))
        .expect_err(wire);
    let borrowed = decoder.decode_ref(&bytes).expect_err(wire);
    assert_eq!(owned, borrowed, "{wire} in {version}");
    assert_eq!(owned.version(), version, "{wire}");
    owned
}

/// Checks that `e` cites `id` (or nothing), that the cited statement is in the list of the
/// connection's spec, and that the cited section holds it.
fn check_citation(e: &DecodeError, id: Option<&str>, section: &str) {
    let spec = Spec::of(e.version());
    let list = statements(spec);
    assert_eq!(e.statement().map(|s| s.id()), id, "{e}");
    assert_eq!(e.section().spec(), spec, "{e}");
    assert_eq!(e.section().number(), section, "{e}");
    if let Some(statement) = e.statement() {
        assert_eq!(statement.spec(), spec, "{e}");
        let listed = list
            .get(statement.id())
            .unwrap_or_else(|| panic!("{} is not a statement of MQTT {spec}", statement.id()));
        let within = section == *listed || section.starts_with(&format!("{listed}."));
        assert!(within, "{e}: {} is in section {listed}", statement.id());
        assert!(e.to_string().contains(statement.id()), "{e}");
    } else {
        assert!(e.to_string().contains(section), "{e}");
    }
}

#[test]
fn errors_cite_the_statements_of_the_version_spoken() {
    // (version, wire, kind, statement, section)
    let cases: &[(ProtocolVersion, &str, DecodeErrorKind, Option<&str>, &str)] = &[
        // Invalid fixed-header flags: [MQTT-2.2.2-1 v3.1.1], [MQTT-2.1.3-1 v5.0] (in 5.0,
        // MQTT-2.2.2-1 is a rule of the property length).
        (
            V3_1_1,
            "e1 00",
            DecodeErrorKind::InvalidFlags {
                packet: PacketType::Disconnect,
                flags: 1,
            },
            Some("MQTT-2.2.2-1"),
            "2.2.2",
        ),
        (
            V5,
            "e1 00",
            DecodeErrorKind::InvalidFlags {
                packet: PacketType::Disconnect,
                flags: 1,
            },
            Some("MQTT-2.1.3-1"),
            "2.1.3",
        ),
        // No topic filters: [MQTT-3.8.3-3 v3.1.1], [MQTT-3.8.3-2 v5.0] (in 5.0, MQTT-3.8.3-3 is
        // the No Local rule); [MQTT-3.10.3-2 v3.1.1 v5.0] for UNSUBSCRIBE.
        (
            V3_1_1,
            "82 02 00 01",
            DecodeErrorKind::NoTopicFilters {
                packet: PacketType::Subscribe,
            },
            Some("MQTT-3.8.3-3"),
            "3.8.3",
        ),
        (
            V5,
            "82 03 00 01 00",
            DecodeErrorKind::NoTopicFilters {
                packet: PacketType::Subscribe,
            },
            Some("MQTT-3.8.3-2"),
            "3.8.3",
        ),
        (
            V5,
            "a2 03 00 01 00",
            DecodeErrorKind::NoTopicFilters {
                packet: PacketType::Unsubscribe,
            },
            Some("MQTT-3.10.3-2"),
            "3.10.3",
        ),
        // A misplaced '#': [MQTT-4.7.1-2 v3.1.1], [MQTT-4.7.1-1 v5.0] (in 5.0, MQTT-4.7.1-2 is
        // the '+' rule).
        (
            V3_1_1,
            "82 0a 00 01 00 05 'a/#/b' 00",
            DecodeErrorKind::InvalidTopic(TopicError::MisplacedMultiLevelWildcard),
            Some("MQTT-4.7.1-2"),
            "4.7.1",
        ),
        (
            V5,
            "82 0b 00 01 00 00 05 'a/#/b' 00",
            DecodeErrorKind::InvalidTopic(TopicError::MisplacedMultiLevelWildcard),
            Some("MQTT-4.7.1-1"),
            "4.7.1",
        ),
        // A misplaced '+': [MQTT-4.7.1-3 v3.1.1], [MQTT-4.7.1-2 v5.0].
        (
            V3_1_1,
            "82 07 00 01 00 02 'a+' 00",
            DecodeErrorKind::InvalidTopic(TopicError::MisplacedSingleLevelWildcard),
            Some("MQTT-4.7.1-3"),
            "4.7.1",
        ),
        (
            V5,
            "82 08 00 01 00 00 02 'a+' 00",
            DecodeErrorKind::InvalidTopic(TopicError::MisplacedSingleLevelWildcard),
            Some("MQTT-4.7.1-2"),
            "4.7.1",
        ),
        // A wildcard in a topic name: [MQTT-4.7.1-1 v3.1.1], [MQTT-4.7.0-1 v5.0].
        (
            V3_1_1,
            "30 06 00 03 'a/+' 'x'",
            DecodeErrorKind::InvalidTopic(TopicError::WildcardInName),
            Some("MQTT-4.7.1-1"),
            "4.7.1",
        ),
        (
            V5,
            "30 07 00 03 'a/#' 00 'x'",
            DecodeErrorKind::InvalidTopic(TopicError::WildcardInName),
            Some("MQTT-4.7.0-1"),
            "4.7",
        ),
        // Strings: [MQTT-1.5.3-1 v3.1.1] [MQTT-1.5.4-1 v5.0], [MQTT-1.5.3-2 v3.1.1]
        // [MQTT-1.5.4-2 v5.0].
        (
            V3_1_1,
            "30 05 00 02 c3 28 'x'",
            DecodeErrorKind::InvalidString(StringError::InvalidUtf8),
            Some("MQTT-1.5.3-1"),
            "1.5.3",
        ),
        (
            V5,
            "30 06 00 02 c3 28 00 'x'",
            DecodeErrorKind::InvalidString(StringError::InvalidUtf8),
            Some("MQTT-1.5.4-1"),
            "1.5.4",
        ),
        (
            V3_1_1,
            "30 05 00 02 'a' 00 'x'",
            DecodeErrorKind::InvalidString(StringError::NullCharacter),
            Some("MQTT-1.5.3-2"),
            "1.5.3",
        ),
        (
            V5,
            "30 06 00 02 'a' 00 00 'x'",
            DecodeErrorKind::InvalidString(StringError::NullCharacter),
            Some("MQTT-1.5.4-2"),
            "1.5.4",
        ),
        // PUBLISH flags: [MQTT-3.3.1-4 v3.1.1 v5.0], [MQTT-3.3.1-2 v3.1.1 v5.0].
        (
            V3_1_1,
            "36 06 00 01 't' 00 01 'x'",
            DecodeErrorKind::InvalidQoS,
            Some("MQTT-3.3.1-4"),
            "3.3.1",
        ),
        (
            V5,
            "38 05 00 01 't' 00 'x'",
            DecodeErrorKind::DupOnQoS0,
            Some("MQTT-3.3.1-2"),
            "3.3.1",
        ),
        // Packet identifier 0: [MQTT-2.3.1-1 v3.1.1]; 5.0 states it for the sender alone.
        (
            V3_1_1,
            "40 02 00 00",
            DecodeErrorKind::ZeroPacketId,
            Some("MQTT-2.3.1-1"),
            "2.3.1",
        ),
        (
            V5,
            "40 02 00 00",
            DecodeErrorKind::ZeroPacketId,
            None,
            "2.2.1",
        ),
        // A remaining length not in its shortest form: [MQTT-1.5.5-1 v5.0]; 3.1.1 numbers no
        // rule for it.
        (
            V3_1_1,
            "c0 80 00",
            DecodeErrorKind::MalformedVarInt,
            None,
            "2.2.3",
        ),
        (
            V5,
            "c0 80 00",
            DecodeErrorKind::MalformedVarInt,
            Some("MQTT-1.5.5-1"),
            "1.5.5",
        ),
        // CONNECT flags, each rule in each version: the reserved bit [MQTT-3.1.2-3 v3.1.1 v5.0],
        // Will QoS without a will [MQTT-3.1.2-13 v3.1.1] [MQTT-3.1.2-11 v5.0], Will Retain
        // without a will [MQTT-3.1.2-15 v3.1.1] [MQTT-3.1.2-13 v5.0], Will QoS 3
        // [MQTT-3.1.2-14 v3.1.1] [MQTT-3.1.2-12 v5.0], a password without a user name
        // [MQTT-3.1.2-22 v3.1.1].
        (
            V3_1_1,
            "10 0c 00 04 'MQTT' 04 03 00 3c 00 00",
            DecodeErrorKind::InvalidConnectFlags(0x03),
            Some("MQTT-3.1.2-3"),
            "3.1.2",
        ),
        (
            V5,
            "10 0d 00 04 'MQTT' 05 03 00 3c 00 00 00",
            DecodeErrorKind::InvalidConnectFlags(0x03),
            Some("MQTT-3.1.2-3"),
            "3.1.2",
        ),
        (
            V3_1_1,
            "10 0c 00 04 'MQTT' 04 0a 00 3c 00 00",
            DecodeErrorKind::InvalidConnectFlags(0x0a),
            Some("MQTT-3.1.2-13"),
            "3.1.2",
        ),
        (
            V5,
            "10 0d 00 04 'MQTT' 05 0a 00 3c 00 00 00",
            DecodeErrorKind::InvalidConnectFlags(0x0a),
            Some("MQTT-3.1.2-11"),
            "3.1.2",
        ),
        (
            V3_1_1,
            "10 0c 00 04 'MQTT' 04 22 00 3c 00 00",
            DecodeErrorKind::InvalidConnectFlags(0x22),
            Some("MQTT-3.1.2-15"),
            "3.1.2",
        ),
        (
            V5,
            "10 0d 00 04 'MQTT' 05 22 00 3c 00 00 00",
            DecodeErrorKind::InvalidConnectFlags(0x22),
            Some("MQTT-3.1.2-13"),
            "3.1.2",
        ),
        (
            V3_1_1,
            "10 0c 00 04 'MQTT' 04 1e 00 3c 00 00",
            DecodeErrorKind::InvalidConnectFlags(0x1e),
            Some("MQTT-3.1.2-14"),
            "3.1.2",
        ),
        (
            V5,
            "10 0d 00 04 'MQTT' 05 1e 00 3c 00 00 00",
            DecodeErrorKind::InvalidConnectFlags(0x1e),
            Some("MQTT-3.1.2-12"),
            "3.1.2",
        ),
        (
            V3_1_1,
            "10 0c 00 04 'MQTT' 04 42 00 3c 00 00",
            DecodeErrorKind::InvalidConnectFlags(0x42),
            Some("MQTT-3.1.2-22"),
            "3.1.2",
        ),
        // The protocol name: [MQTT-3.1.2-1 v5.0]; in 3.1.1 that id binds the server's answer.
        (
            V5,
            "10 0d 00 04 'MQTX' 05 02 00 3c 00 00 00",
            DecodeErrorKind::InvalidProtocolName,
            Some("MQTT-3.1.2-1"),
            "3.1.2.1",
        ),
        (
            V3_1_1,
            "10 0c 00 04 'MQTX' 04 02 00 3c 00 00",
            DecodeErrorKind::InvalidProtocolName,
            None,
            "3.1.2.1",
        ),
        // CONNACK flags [MQTT-3.2.2-1 v5.0]; reason codes of each 5.0 packet [MQTT-3.2.2-8 v5.0
        // server] [MQTT-3.4.2-1 v5.0] [MQTT-3.14.2-1 v5.0] [MQTT-3.15.2-1 v5.0]; 3.1.1 SUBACK
        // return codes [MQTT-3.9.3-2 v3.1.1].
        (
            V5,
            "20 03 02 00 00",
            DecodeErrorKind::InvalidConnAckFlags(2),
            Some("MQTT-3.2.2-1"),
            "3.2.2.1",
        ),
        (
            V5,
            "20 03 00 01 00",
            DecodeErrorKind::InvalidReasonCode {
                packet: PacketType::ConnAck,
                code: 1,
            },
            Some("MQTT-3.2.2-8"),
            "3.2.2.2",
        ),
        (
            V3_1_1,
            "20 02 00 06",
            DecodeErrorKind::InvalidReasonCode {
                packet: PacketType::ConnAck,
                code: 6,
            },
            None,
            "3.2.2.3",
        ),
        (
            V5,
            "40 03 00 01 01",
            DecodeErrorKind::InvalidReasonCode {
                packet: PacketType::PubAck,
                code: 1,
            },
            Some("MQTT-3.4.2-1"),
            "3.4.2.1",
        ),
        (
            V5,
            "e0 01 03",
            DecodeErrorKind::InvalidReasonCode {
                packet: PacketType::Disconnect,
                code: 3,
            },
            Some("MQTT-3.14.2-1"),
            "3.14.2.1",
        ),
        (
            V5,
            "f0 01 01",
            DecodeErrorKind::InvalidReasonCode {
                packet: PacketType::Auth,
                code: 1,
            },
            Some("MQTT-3.15.2-1"),
            "3.15.2.1",
        ),
        (
            V3_1_1,
            "90 03 00 01 03",
            DecodeErrorKind::InvalidReasonCode {
                packet: PacketType::SubAck,
                code: 3,
            },
            Some("MQTT-3.9.3-2"),
            "3.9.3",
        ),
        // Subscription options: [MQTT-3.8.3-4 v3.1.1], reserved bits [MQTT-3.8.3-5 v5.0];
        // Retain Handling 3 is a protocol error of section 3.8.3.1 without a number; No Local
        // on a shared subscription [MQTT-3.8.3-4 v5.0].
        (
            V3_1_1,
            "82 06 00 01 00 01 't' 04",
            DecodeErrorKind::InvalidSubscriptionOptions(4),
            Some("MQTT-3.8.3-4"),
            "3.8.3.1",
        ),
        (
            V5,
            "82 07 00 01 00 00 01 't' 40",
            DecodeErrorKind::InvalidSubscriptionOptions(0x40),
            Some("MQTT-3.8.3-5"),
            "3.8.3.1",
        ),
        (
            V5,
            "82 07 00 01 00 00 01 't' 30",
            DecodeErrorKind::InvalidSubscriptionOptions(0x30),
            None,
            "3.8.3.1",
        ),
        (
            V5,
            "82 10 00 01 00 00 0a '$share/g/t' 04",
            DecodeErrorKind::NoLocalOnSharedSubscription,
            Some("MQTT-3.8.3-4"),
            "3.8.3.1",
        ),
        // Shared subscriptions: [MQTT-4.8.2-1 v5.0], [MQTT-4.8.2-2 v5.0].
        (
            V5,
            "82 0f 00 01 00 00 09 '$share//a' 00",
            DecodeErrorKind::InvalidTopic(TopicError::EmptyShareName),
            Some("MQTT-4.8.2-1"),
            "4.8.2",
        ),
        (
            V5,
            "82 0e 00 01 00 00 08 '$share/g' 00",
            DecodeErrorKind::InvalidTopic(TopicError::InvalidShareName),
            Some("MQTT-4.8.2-2"),
            "4.8.2",
        ),
        // Topic Alias 0 [MQTT-3.3.2-8 v5.0]; other property errors cite section 2.2.2.2.
        (
            V5,
            "30 08 00 01 't' 03 23 00 00 'x'",
            DecodeErrorKind::InvalidPropertyValue(PropertyId::TopicAlias),
            Some("MQTT-3.3.2-8"),
            "3.3.2.3.4",
        ),
        (
            V5,
            "30 06 00 01 't' 02 7f 00",
            DecodeErrorKind::UnknownProperty(0x7f),
            None,
            "2.2.2.2",
        ),
        (
            V5,
            "40 06 00 01 00 02 23 00",
            DecodeErrorKind::PropertyNotAllowed {
                packet: PacketType::PubAck,
                property: PropertyId::TopicAlias,
            },
            None,
            "2.2.2.2",
        ),
        // Errors without a numbered rule cite their section.
        (
            V5,
            "30 04 00 00 00 'x'",
            DecodeErrorKind::EmptyTopicWithoutAlias,
            None,
            "3.3.2.1",
        ),
        (
            V3_1_1,
            "40 01 00",
            DecodeErrorKind::Truncated,
            None,
            "2.2.3",
        ),
        (V5, "40 01 00", DecodeErrorKind::Truncated, None, "2.1.4"),
        (
            V3_1_1,
            "c0 01 00",
            DecodeErrorKind::TrailingBytes(1),
            None,
            "2.2.3",
        ),
        (
            V3_1_1,
            "10 0c 00 04 'MQTT' 06 02 00 3c 00 00",
            DecodeErrorKind::UnsupportedProtocolLevel(6),
            None,
            "3.1.2.2",
        ),
        (
            V3_1_1,
            "00 00",
            DecodeErrorKind::InvalidPacketType(0),
            None,
            "2.2.1",
        ),
        (
            V5,
            "00 00",
            DecodeErrorKind::InvalidPacketType(0),
            None,
            "2.1.2",
        ),
    ];
    for &(version, wire, kind, id, section) in cases {
        let e = error(version, wire);
        assert_eq!(e.kind(), kind, "{wire} in {version}");
        check_citation(&e, id, section);
    }
}

#[test]
fn a_3_1_connection_cites_the_3_1_1_spec() {
    // MQTT 3.1 numbered no statements; 3.1.1 restates its rules with numbers.
    let e = error(V3_1, "e1 00");
    assert_eq!(e.version(), V3_1);
    check_citation(&e, Some("MQTT-2.2.2-1"), "2.2.2");
}

/// One of each kind of decode error, with the fields that decide its citation varied.
fn every_kind() -> Vec<DecodeErrorKind> {
    use DecodeErrorKind::*;
    let mut kinds = vec![
        PacketTooLarge { size: 2, max: 1 },
        MalformedVarInt,
        InvalidPacketType(0),
        InvalidQoS,
        DupOnQoS0,
        ZeroPacketId,
        Truncated,
        TrailingBytes(1),
        EmptyTopicWithoutAlias,
        InvalidProtocolName,
        UnsupportedProtocolLevel(6),
        InvalidConnAckFlags(2),
        UnknownProperty(0),
        NoLocalOnSharedSubscription,
        AuthenticationDataWithoutMethod,
        MissingAuthenticationMethod,
    ];
    for e in [
        StringError::InvalidUtf8,
        StringError::NullCharacter,
        StringError::TooLong,
    ] {
        kinds.push(InvalidString(e));
    }
    for e in [
        TopicError::Empty,
        TopicError::TooLong,
        TopicError::NullCharacter,
        TopicError::WildcardInName,
        TopicError::MisplacedMultiLevelWildcard,
        TopicError::MisplacedSingleLevelWildcard,
        TopicError::EmptyShareName,
        TopicError::InvalidShareName,
    ] {
        kinds.push(InvalidTopic(e));
    }
    for flags in 0..=255 {
        kinds.push(InvalidConnectFlags(flags));
        kinds.push(InvalidSubscriptionOptions(flags));
    }
    for packet in [
        PacketType::Connect,
        PacketType::ConnAck,
        PacketType::Publish,
        PacketType::PubAck,
        PacketType::PubRec,
        PacketType::PubRel,
        PacketType::PubComp,
        PacketType::Subscribe,
        PacketType::SubAck,
        PacketType::Unsubscribe,
        PacketType::UnsubAck,
        PacketType::PingReq,
        PacketType::PingResp,
        PacketType::Disconnect,
        PacketType::Auth,
    ] {
        kinds.push(InvalidFlags { packet, flags: 1 });
        kinds.push(InvalidReasonCode { packet, code: 0xff });
        kinds.push(NoTopicFilters { packet });
        kinds.push(PropertyNotAllowed {
            packet,
            property: PropertyId::TopicAlias,
        });
    }
    for property in [
        PropertyId::TopicAlias,
        PropertyId::ReceiveMaximum,
        PropertyId::MaximumQoS,
    ] {
        kinds.push(InvalidPropertyValue(property));
        kinds.push(DuplicateProperty(property));
    }
    kinds
}

#[test]
fn every_cited_statement_is_in_the_list_of_its_spec() {
    for spec in [Spec::V3_1_1, Spec::V5] {
        let list = statements(spec);
        for kind in every_kind() {
            let section = kind.section(spec);
            assert_eq!(section.spec(), spec);
            let number = section.number();
            let well_formed = !number.is_empty()
                && number
                    .split('.')
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            assert!(well_formed, "{kind:?}: section {number:?}");
            let Some(statement) = kind.statement(spec) else {
                continue;
            };
            assert_eq!(statement.spec(), spec, "{kind:?}");
            let listed = list.get(statement.id()).unwrap_or_else(|| {
                panic!(
                    "{kind:?} cites {}, not a statement of MQTT {spec}",
                    statement.id()
                )
            });
            let within = number == *listed || number.starts_with(&format!("{listed}."));
            assert!(
                within,
                "{kind:?} cites {} of section {listed} in section {number}",
                statement.id()
            );
        }
    }
}

#[test]
fn decode_errors_are_data() {
    let e = error(V5, "36 06 00 01 't' 00 00 01");
    let statement = e.statement().expect("a numbered rule");
    assert_eq!(statement.spec(), Spec::V5);
    assert_eq!(statement.id(), "MQTT-3.3.1-4");
    assert_eq!(e.to_string(), "QoS 3 [MQTT-3.3.1-4 v5.0]");
    let e = error(V5, "40 01 00");
    assert_eq!(e.statement(), None);
    assert_eq!(
        e.to_string(),
        "packet is shorter than its fields (MQTT 5.0 section 2.1.4)"
    );
}

// ---------------------------------------------------------------------------------------------
// The two AUTH rules of 5.0 without a numbered statement.

#[test]
fn connect_with_authentication_data_and_no_method_is_rejected() {
    // 5.0 section 3.1.2.11.10: "It is a Protocol Error to include Authentication Data if there
    // is no Authentication Method."
    let e = error(V5, "10 13 00 04 'MQTT' 05 02 00 3c 06 16 00 03 'abc' 00 00");
    assert_eq!(e.kind(), DecodeErrorKind::AuthenticationDataWithoutMethod);
    check_citation(&e, None, "3.1.2.11.10");
    // With the method the same data is accepted.
    let ok = decode_one(
        V5,
        &hex("10 1b 00 04 'MQTT' 05 02 00 3c 0e 15 00 05 'SCRAM' 16 00 03 'abc' 00 00"),
    );
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn auth_continuing_or_starting_an_exchange_without_method_is_rejected() {
    // 5.0 section 3.15.2.2.2: an AUTH of reason 0x18 (continue) or 0x19 (re-authenticate)
    // names its Authentication Method.
    for code in [0x18, 0x19] {
        for wire in [
            format!("f0 01 {code:02x}"),
            format!("f0 02 {code:02x} 00"),
            format!("f0 08 {code:02x} 06 16 00 03 'abc'"),
        ] {
            let e = error(V5, &wire);
            assert_eq!(
                e.kind(),
                DecodeErrorKind::MissingAuthenticationMethod,
                "{wire}"
            );
            check_citation(&e, None, "3.15.2.2.2");
        }
        let with_method = format!("f0 0a {code:02x} 08 15 00 05 'SCRAM'");
        assert!(decode_one(V5, &hex(&with_method)).is_ok(), "{with_method}");
    }
    // Success may omit everything (5.0 section 3.15.2.1).
    assert!(decode_one(V5, &hex("f0 00")).is_ok());
    assert!(decode_one(V5, &hex("f0 02 00 00")).is_ok());
}

#[test]
fn the_view_and_the_owned_decoder_report_the_same_error_in_every_version() {
    for version in VERSIONS {
        for wire in [
            "e1 00",
            "36 06 00 01 't' 00 01 'x'",
            "82 02 00 01",
            "40 01 00",
        ] {
            error(version, wire);
        }
    }
}
