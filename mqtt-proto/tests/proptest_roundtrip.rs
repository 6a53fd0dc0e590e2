//! Property tests: arbitrary valid packets of every type and version survive an encode/decode
//! round trip with exact lengths, and arbitrary or corrupted bytes never panic the decoder.

mod common;

use std::num::{NonZeroU16, NonZeroU32};

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::strategy::Union;
use proptest::test_runner::{RngSeed, TestCaseError};

use common::VERSIONS;
use mqtt_proto::{
    AckProperties, Auth, AuthProperties, AuthReasonCode, ConnAck, ConnAckProperties, Connect,
    ConnectProperties, ConnectReasonCode, DecodeErrorKind, Decoder, Disconnect,
    DisconnectProperties, DisconnectReasonCode, LastWill, MqttString, Packet, PacketId,
    PayloadFormat, ProtocolVersion, PubAck, PubAckReasonCode, PubComp, PubRec, PubRel,
    PubRelReasonCode, Publish, PublishProperties, QoS, QosPid, RetainHandling, SubAck,
    SubAckReasonCode, Subscribe, SubscribeProperties, Subscription, SubscriptionOptions,
    TopicFilter, TopicName, UnsubAck, UnsubAckReasonCode, Unsubscribe, UnsubscribeProperties,
    UserProperty, WillProperties, MAX_PACKET_SIZE, MAX_VAR_INT,
};

/// Fixed seed and no regression files: every run checks the same cases.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(0x4d51_5454),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Values

/// Any text an MQTT string may hold: every `char` but U+0000, with some separators and byte
/// order marks mixed in.
fn text() -> impl Strategy<Value = String> {
    vec(
        prop_oneof![
            6 => any::<char>().prop_filter("U+0000 is not allowed", |c| *c != '\0'),
            1 => select(vec!['a', '/', ' ', '\u{feff}']),
        ],
        0..12,
    )
    .prop_map(String::from_iter)
}

fn mqtt_string() -> impl Strategy<Value = MqttString> {
    text().prop_map(|t| MqttString::new(&t).expect("generated a valid string"))
}

fn binary(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// One topic level without wildcards.
fn level() -> impl Strategy<Value = String> {
    let chars = vec![
        'a', 'b', 'z', '0', '9', ' ', '$', '-', 'é', '€', '😀', '\u{feff}',
    ];
    vec(select(chars), 0..4).prop_map(String::from_iter)
}

fn topic_name() -> impl Strategy<Value = TopicName> {
    vec(level(), 1..5).prop_map(|levels| {
        let mut name = levels.join("/");
        if name.is_empty() {
            name.push('t');
        }
        TopicName::new(&name).expect("generated a valid topic name")
    })
}

/// A filter with `+` levels, maybe a trailing `#`, and, if `shared`, maybe a share name.
fn topic_filter(shared: bool) -> BoxedStrategy<TopicFilter> {
    let levels = vec(prop_oneof![3 => level(), 1 => Just("+".to_string())], 1..5);
    let group = if shared {
        option::of("[a-z0-9]{1,4}").boxed()
    } else {
        Just(None).boxed()
    };
    (levels, any::<bool>(), group)
        .prop_map(|(mut levels, multi, group)| {
            if multi {
                levels.push("#".to_string());
            }
            let mut filter = levels.join("/");
            if filter.is_empty() {
                filter.push('t');
            }
            if let Some(group) = group {
                filter = format!("$share/{group}/{filter}");
            }
            TopicFilter::new(&filter).expect("generated a valid topic filter")
        })
        .boxed()
}

fn packet_id() -> impl Strategy<Value = PacketId> {
    (1..=u16::MAX).prop_map(|v| PacketId::new(v).unwrap())
}

fn nz16() -> impl Strategy<Value = NonZeroU16> {
    (1..=u16::MAX).prop_map(|v| NonZeroU16::new(v).unwrap())
}

fn nz32() -> impl Strategy<Value = NonZeroU32> {
    (1..=u32::MAX).prop_map(|v| NonZeroU32::new(v).unwrap())
}

fn subscription_identifier() -> impl Strategy<Value = NonZeroU32> {
    (1..=MAX_VAR_INT).prop_map(|v| NonZeroU32::new(v).unwrap())
}

fn qos() -> impl Strategy<Value = QoS> {
    select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
}

fn qos_pid() -> impl Strategy<Value = QosPid> {
    prop_oneof![
        Just(QosPid::AtMostOnce),
        packet_id().prop_map(QosPid::AtLeastOnce),
        packet_id().prop_map(QosPid::ExactlyOnce),
    ]
}

fn payload_format() -> impl Strategy<Value = PayloadFormat> {
    select(vec![PayloadFormat::Unspecified, PayloadFormat::Utf8])
}

fn retain_handling() -> impl Strategy<Value = RetainHandling> {
    select(vec![
        RetainHandling::SendAtSubscribe,
        RetainHandling::SendAtSubscribeIfNew,
        RetainHandling::DoNotSend,
    ])
}

/// Every code `from_u8` knows.
fn codes<T>(from_u8: fn(u8) -> Option<T>) -> Vec<T> {
    (0..=255).filter_map(from_u8).collect()
}

/// Any defined reason code in 5.0, only `success` before.
fn reason<T: Clone + std::fmt::Debug + 'static>(
    version: ProtocolVersion,
    from_u8: fn(u8) -> Option<T>,
    success: T,
) -> BoxedStrategy<T> {
    if version.is_v5() {
        select(codes(from_u8)).boxed()
    } else {
        Just(success).boxed()
    }
}

// ---------------------------------------------------------------------------------------------
// 5.0 properties

/// Properties from `strategy` in 5.0, none before.
fn props<T: Default + Clone + std::fmt::Debug + 'static>(
    version: ProtocolVersion,
    strategy: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    if version.is_v5() {
        strategy.boxed()
    } else {
        Just(T::default()).boxed()
    }
}

fn user_properties() -> impl Strategy<Value = Vec<UserProperty>> {
    vec(
        (mqtt_string(), mqtt_string()).prop_map(|(n, v)| UserProperty::new(n, v)),
        0..3,
    )
}

fn connect_properties() -> impl Strategy<Value = ConnectProperties> {
    (
        option::of(any::<u32>()),
        option::of(nz16()),
        option::of(nz32()),
        option::of(any::<u16>()),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        option::of(mqtt_string()),
        option::of(binary(16)),
        user_properties(),
    )
        .prop_map(
            |(sei, rm, mps, tam, rri, rpi, am, ad, users)| ConnectProperties {
                session_expiry_interval: sei,
                receive_maximum: rm,
                maximum_packet_size: mps,
                topic_alias_maximum: tam,
                request_response_information: rri,
                request_problem_information: rpi,
                // Authentication Data only with a method (5.0 section 3.1.2.11.10).
                authentication_data: ad.filter(|_| am.is_some()),
                authentication_method: am,
                user_properties: users,
            },
        )
}

fn will_properties() -> impl Strategy<Value = WillProperties> {
    (
        option::of(any::<u32>()),
        option::of(payload_format()),
        option::of(any::<u32>()),
        option::of(mqtt_string()),
        option::of(topic_name()),
        option::of(binary(16)),
        user_properties(),
    )
        .prop_map(|(wdi, pfi, mei, ct, rt, cd, users)| WillProperties {
            will_delay_interval: wdi,
            payload_format_indicator: pfi,
            message_expiry_interval: mei,
            content_type: ct,
            response_topic: rt,
            correlation_data: cd,
            user_properties: users,
        })
}

fn connack_properties() -> impl Strategy<Value = ConnAckProperties> {
    let first = (
        option::of(any::<u32>()),
        option::of(nz16()),
        // Maximum QoS is 0 or 1; leaving it out means 2.
        option::of(select(vec![QoS::AtMostOnce, QoS::AtLeastOnce])),
        option::of(any::<bool>()),
        option::of(nz32()),
        option::of(mqtt_string()),
        option::of(any::<u16>()),
        option::of(mqtt_string()),
    );
    let second = (
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        option::of(any::<u16>()),
        option::of(mqtt_string()),
        option::of(mqtt_string()),
        option::of(mqtt_string()),
        option::of(binary(16)),
        user_properties(),
    );
    (first, second).prop_map(
        |((sei, rm, mq, ra, mps, aci, tam, rs), (wsa, sia, ssa, ska, ri, sr, am, ad, users))| {
            ConnAckProperties {
                session_expiry_interval: sei,
                receive_maximum: rm,
                maximum_qos: mq,
                retain_available: ra,
                maximum_packet_size: mps,
                assigned_client_identifier: aci,
                topic_alias_maximum: tam,
                reason_string: rs,
                wildcard_subscription_available: wsa,
                subscription_identifiers_available: sia,
                shared_subscription_available: ssa,
                server_keep_alive: ska,
                response_information: ri,
                server_reference: sr,
                authentication_method: am,
                authentication_data: ad,
                user_properties: users,
            }
        },
    )
}

fn publish_properties() -> impl Strategy<Value = PublishProperties> {
    (
        option::of(payload_format()),
        option::of(any::<u32>()),
        option::of(nz16()),
        option::of(topic_name()),
        option::of(binary(16)),
        option::of(mqtt_string()),
        vec(subscription_identifier(), 0..3),
        user_properties(),
    )
        .prop_map(|(pfi, mei, ta, rt, cd, ct, ids, users)| PublishProperties {
            payload_format_indicator: pfi,
            message_expiry_interval: mei,
            topic_alias: ta,
            response_topic: rt,
            correlation_data: cd,
            content_type: ct,
            subscription_identifiers: ids,
            user_properties: users,
        })
}

fn ack_properties() -> impl Strategy<Value = AckProperties> {
    (option::of(mqtt_string()), user_properties()).prop_map(|(rs, users)| AckProperties {
        reason_string: rs,
        user_properties: users,
    })
}

fn subscribe_properties() -> impl Strategy<Value = SubscribeProperties> {
    (option::of(subscription_identifier()), user_properties()).prop_map(|(id, users)| {
        SubscribeProperties {
            subscription_identifier: id,
            user_properties: users,
        }
    })
}

fn disconnect_properties() -> impl Strategy<Value = DisconnectProperties> {
    (
        option::of(any::<u32>()),
        option::of(mqtt_string()),
        option::of(mqtt_string()),
        user_properties(),
    )
        .prop_map(|(sei, rs, sr, users)| DisconnectProperties {
            session_expiry_interval: sei,
            reason_string: rs,
            server_reference: sr,
            user_properties: users,
        })
}

fn auth_properties() -> impl Strategy<Value = AuthProperties> {
    (
        option::of(mqtt_string()),
        option::of(binary(16)),
        option::of(mqtt_string()),
        user_properties(),
    )
        .prop_map(|(am, ad, rs, users)| AuthProperties {
            authentication_method: am,
            authentication_data: ad,
            reason_string: rs,
            user_properties: users,
        })
}

// ---------------------------------------------------------------------------------------------
// Packets

fn will(version: ProtocolVersion) -> impl Strategy<Value = LastWill> {
    (
        topic_name(),
        binary(32),
        qos(),
        any::<bool>(),
        props(version, will_properties()),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| LastWill {
            topic,
            payload,
            qos,
            retain,
            properties: properties.into(),
        })
}

fn connect(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    (
        any::<bool>(),
        any::<u16>(),
        mqtt_string(),
        option::of(will(version)),
        option::of(mqtt_string()),
        option::of(binary(16)),
        props(version, connect_properties()),
    )
        .prop_map(
            move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
                // Before 5.0 a password needs a user name [MQTT-3.1.2-22 v3.1.1].
                let password = password.filter(|_| version.is_v5() || username.is_some());
                Packet::from(Connect {
                    protocol: version,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties: properties.into(),
                })
            },
        )
        .boxed()
}

fn connack(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    // 3.1 has no session present flag; 3.1.1 has only the six return codes.
    let session_present = if version == ProtocolVersion::V3_1 {
        Just(false).boxed()
    } else {
        any::<bool>().boxed()
    };
    let reason_code = if version.is_v5() {
        select(codes(ConnectReasonCode::from_u8)).boxed()
    } else {
        select(codes(ConnectReasonCode::from_v3_return_code)).boxed()
    };
    (
        session_present,
        reason_code,
        props(version, connack_properties()),
    )
        .prop_map(|(session_present, reason_code, properties)| {
            Packet::from(ConnAck {
                session_present,
                reason_code,
                properties,
            })
        })
        .boxed()
}

fn publish(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    (
        qos_pid(),
        any::<bool>(),
        any::<bool>(),
        topic_name(),
        any::<bool>(),
        props(version, publish_properties()),
        binary(64),
    )
        .prop_map(
            |(qos_pid, dup, retain, topic, alias_only, properties, payload)| {
                // DUP only on QoS 1/2 [MQTT-3.3.1-2 v3.1.1 v5.0]; an empty topic only with an
                // alias.
                let dup = dup && qos_pid != QosPid::AtMostOnce;
                let topic = if alias_only && properties.topic_alias.is_some() {
                    TopicName::empty_for_alias()
                } else {
                    topic
                };
                Packet::Publish(Publish {
                    dup,
                    qos_pid,
                    retain,
                    topic,
                    properties: properties.into(),
                    payload,
                })
            },
        )
        .boxed()
}

fn pub_acks(version: ProtocolVersion) -> Vec<BoxedStrategy<Packet>> {
    let ack = || (packet_id(), props(version, ack_properties()));
    vec![
        (
            ack(),
            reason(
                version,
                PubAckReasonCode::from_u8,
                PubAckReasonCode::Success,
            ),
        )
            .prop_map(|((packet_id, properties), reason_code)| {
                Packet::PubAck(PubAck {
                    packet_id,
                    reason_code,
                    properties: properties.into(),
                })
            })
            .boxed(),
        (
            ack(),
            reason(
                version,
                PubAckReasonCode::from_u8,
                PubAckReasonCode::Success,
            ),
        )
            .prop_map(|((packet_id, properties), reason_code)| {
                Packet::PubRec(PubRec {
                    packet_id,
                    reason_code,
                    properties: properties.into(),
                })
            })
            .boxed(),
        (
            ack(),
            reason(
                version,
                PubRelReasonCode::from_u8,
                PubRelReasonCode::Success,
            ),
        )
            .prop_map(|((packet_id, properties), reason_code)| {
                Packet::PubRel(PubRel {
                    packet_id,
                    reason_code,
                    properties: properties.into(),
                })
            })
            .boxed(),
        (
            ack(),
            reason(
                version,
                PubRelReasonCode::from_u8,
                PubRelReasonCode::Success,
            ),
        )
            .prop_map(|((packet_id, properties), reason_code)| {
                Packet::PubComp(PubComp {
                    packet_id,
                    reason_code,
                    properties: properties.into(),
                })
            })
            .boxed(),
    ]
}

fn subscription(version: ProtocolVersion) -> impl Strategy<Value = Subscription> {
    let v5 = version.is_v5();
    (
        topic_filter(v5),
        qos(),
        any::<bool>(),
        any::<bool>(),
        retain_handling(),
    )
        .prop_map(
            move |(filter, qos, no_local, retain_as_published, retain_handling)| {
                let options = if v5 {
                    SubscriptionOptions {
                        qos,
                        // No Local is not allowed on shared subscriptions [MQTT-3.8.3-4 v5.0].
                        no_local: no_local && !filter.is_shared(),
                        retain_as_published,
                        retain_handling,
                    }
                } else {
                    SubscriptionOptions::qos(qos)
                };
                Subscription { filter, options }
            },
        )
}

fn subscribe(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    (
        packet_id(),
        props(version, subscribe_properties()),
        vec(subscription(version), 1..4),
    )
        .prop_map(|(packet_id, properties, filters)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                filters,
            })
        })
        .boxed()
}

fn suback(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    let all = codes(SubAckReasonCode::from_u8);
    let allowed: Vec<SubAckReasonCode> = if version.is_v5() {
        all
    } else {
        all.into_iter().filter(|c| c.in_v3()).collect()
    };
    (
        packet_id(),
        props(version, ack_properties()),
        vec(select(allowed), 0..5),
    )
        .prop_map(|(packet_id, properties, reason_codes)| {
            Packet::SubAck(SubAck {
                packet_id,
                properties: properties.into(),
                reason_codes,
            })
        })
        .boxed()
}

fn unsubscribe(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    (
        packet_id(),
        props(version, user_properties()),
        vec(topic_filter(version.is_v5()), 1..4),
    )
        .prop_map(|(packet_id, user_properties, filters)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties: UnsubscribeProperties { user_properties },
                filters,
            })
        })
        .boxed()
}

fn unsuback(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    // 3.1.1 UNSUBACK has no reason codes at all.
    let reason_codes = if version.is_v5() {
        vec(select(codes(UnsubAckReasonCode::from_u8)), 0..5).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    (packet_id(), props(version, ack_properties()), reason_codes)
        .prop_map(|(packet_id, properties, reason_codes)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                properties: properties.into(),
                reason_codes,
            })
        })
        .boxed()
}

fn disconnect(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    (
        reason(
            version,
            DisconnectReasonCode::from_u8,
            DisconnectReasonCode::NormalDisconnection,
        ),
        props(version, disconnect_properties()),
    )
        .prop_map(|(reason_code, properties)| {
            Packet::Disconnect(Disconnect {
                reason_code,
                properties: properties.into(),
            })
        })
        .boxed()
}

fn auth() -> BoxedStrategy<Packet> {
    (
        select(codes(AuthReasonCode::from_u8)),
        auth_properties(),
        mqtt_string(),
    )
        .prop_map(|(reason_code, mut properties, method)| {
            // An AUTH continuing or starting an exchange names its method (5.0 section
            // 3.15.2.2.2).
            if reason_code != AuthReasonCode::Success {
                properties.authentication_method.get_or_insert(method);
            }
            Packet::Auth(Auth {
                reason_code,
                properties: properties.into(),
            })
        })
        .boxed()
}

/// Any valid packet of `version`, each type equally likely.
fn packet(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    let mut types = vec![connect(version), connack(version), publish(version)];
    types.extend(pub_acks(version));
    types.extend([
        subscribe(version),
        suback(version),
        unsubscribe(version),
        unsuback(version),
        Just(Packet::PingReq).boxed(),
        Just(Packet::PingResp).boxed(),
        disconnect(version),
    ]);
    if version.is_v5() {
        types.push(auth());
    }
    Union::new(types).boxed()
}

fn version_and_packet() -> impl Strategy<Value = (ProtocolVersion, Packet)> {
    select(VERSIONS.to_vec()).prop_flat_map(|v| (Just(v), packet(v)))
}

// ---------------------------------------------------------------------------------------------
// Checks

/// Encodes after some bytes already in the buffer, checks every length agrees, and returns the
/// packet's bytes.
fn encode_checked(version: ProtocolVersion, packet: &Packet) -> Result<BytesMut, TestCaseError> {
    let predicted = packet.encoded_len(version);
    prop_assert!(predicted.is_ok(), "encoded_len refused: {:?}", predicted);
    let mut buf = BytesMut::from(&b"earlier"[..]);
    let written = packet.encode(version, &mut buf);
    prop_assert_eq!(written, predicted);
    prop_assert_eq!(&buf[..7], b"earlier");
    let wire = buf.split_off(7);
    prop_assert_eq!(Ok(wire.len()), written);
    Ok(wire)
}

fn check_round_trip(
    version: ProtocolVersion,
    packet: &Packet,
    split: Index,
) -> Result<(), TestCaseError> {
    let wire = encode_checked(version, packet)?;
    let decoder = Decoder::new(version);

    let mut buf = wire.clone();
    prop_assert_eq!(decoder.decode(&mut buf), Ok(Some(packet.clone())));
    prop_assert!(buf.is_empty());
    prop_assert_eq!(
        decoder.decode_frame(&wire.clone().freeze()),
        Ok(packet.clone())
    );

    // Arriving in two pieces: nothing before the last byte, nothing consumed.
    let at = split.index(wire.len());
    let mut buf = BytesMut::from(&wire[..at]);
    prop_assert_eq!(decoder.decode(&mut buf), Ok(None));
    prop_assert_eq!(&buf[..], &wire[..at]);
    buf.extend_from_slice(&wire[at..]);
    prop_assert_eq!(decoder.decode(&mut buf), Ok(Some(packet.clone())));

    // A limit of exactly the packet's size lets it through; one byte less does not.
    let size = wire.len();
    let exact = decoder.with_max_packet_size(size);
    prop_assert_eq!(exact.decode(&mut wire.clone()), Ok(Some(packet.clone())));
    let below = decoder.with_max_packet_size(size - 1);
    prop_assert_eq!(
        below.decode(&mut wire.clone()).map_err(|e| e.kind()),
        Err(DecodeErrorKind::PacketTooLarge {
            size,
            max: size - 1
        })
    );
    Ok(())
}

/// Decodes everything in `input`: never panics, consumes nothing on `Ok(None)`, and every
/// packet it yields encodes and decodes back to itself.
fn check_decode_anything(
    version: ProtocolVersion,
    max: usize,
    input: &[u8],
) -> Result<(), TestCaseError> {
    let decoder = Decoder::new(version).with_max_packet_size(max);
    let mut buf = BytesMut::from(input);
    loop {
        let before = buf.clone();
        match decoder.decode(&mut buf) {
            Ok(Some(packet)) => {
                prop_assert!(buf.len() < before.len(), "a packet consumed nothing");
                // A CONNECT names its own version, and is encoded and read in that one.
                let version = match &packet {
                    Packet::Connect(c) => c.protocol,
                    _ => version,
                };
                let wire = encode_checked(version, &packet)?;
                let again = Decoder::new(version).decode(&mut wire.clone());
                prop_assert_eq!(again, Ok(Some(packet)));
            }
            Ok(None) => {
                prop_assert_eq!(&buf[..], &before[..], "Ok(None) consumed input");
                return Ok(());
            }
            Err(_) => return Ok(()),
        }
    }
}

/// Ways to damage an encoded packet.
#[derive(Debug, Clone)]
enum Damage {
    Replace(Index, u8),
    Flip(Index, u8),
    Truncate(Index),
    Insert(Index, u8),
    Remove(Index),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Damage::Replace(i, b)),
        (any::<Index>(), 0..8u8).prop_map(|(i, bit)| Damage::Flip(i, bit)),
        any::<Index>().prop_map(Damage::Truncate),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Damage::Insert(i, b)),
        any::<Index>().prop_map(Damage::Remove),
    ]
}

fn apply(damage: &[Damage], wire: &mut Vec<u8>) {
    for d in damage {
        if wire.is_empty() {
            return;
        }
        match *d {
            Damage::Replace(i, b) => {
                let at = i.index(wire.len());
                wire[at] = b;
            }
            Damage::Flip(i, bit) => {
                let at = i.index(wire.len());
                wire[at] ^= 1 << bit;
            }
            Damage::Truncate(i) => wire.truncate(i.index(wire.len())),
            Damage::Insert(i, b) => {
                let at = i.index(wire.len() + 1);
                wire.insert(at, b);
            }
            Damage::Remove(i) => {
                let at = i.index(wire.len());
                wire.remove(at);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn valid_packets_round_trip_in_3_1(packet in packet(ProtocolVersion::V3_1), split in any::<Index>()) {
        check_round_trip(ProtocolVersion::V3_1, &packet, split)?;
    }

    #[test]
    fn valid_packets_round_trip_in_3_1_1(packet in packet(ProtocolVersion::V3_1_1), split in any::<Index>()) {
        check_round_trip(ProtocolVersion::V3_1_1, &packet, split)?;
    }

    #[test]
    fn valid_packets_round_trip_in_5_0(packet in packet(ProtocolVersion::V5), split in any::<Index>()) {
        check_round_trip(ProtocolVersion::V5, &packet, split)?;
    }

    #[test]
    fn valid_packets_back_to_back(
        packets in select(VERSIONS.to_vec()).prop_flat_map(|v| (Just(v), vec(packet(v), 1..6))),
        chunk in 1..64usize,
    ) {
        let (version, packets) = packets;
        let mut wire = Vec::new();
        for p in &packets {
            wire.extend_from_slice(&encode_checked(version, p)?);
        }
        let decoder = Decoder::new(version);
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        for piece in wire.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(p) = decoder.decode(&mut buf)? {
                decoded.push(p);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decoded, packets);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        version in select(VERSIONS.to_vec()),
        max in prop_oneof![0..5000usize, Just(MAX_PACKET_SIZE)],
        input in vec(any::<u8>(), 0..4096),
    ) {
        check_decode_anything(version, max, &input)?;
        // Whole-frame decoding of the same bytes never panics either.
        let _ = Decoder::new(version).decode_frame(&Bytes::from(input));
    }

    #[test]
    fn arbitrary_bytes_behind_a_plausible_header_never_panic(
        version in select(VERSIONS.to_vec()),
        first in any::<u8>(),
        body in vec(any::<u8>(), 0..200),
    ) {
        // A correct remaining length makes the body parsers, not framing, see the bytes.
        let mut input = vec![first];
        let mut len = body.len();
        loop {
            let byte = (len % 128) as u8;
            len /= 128;
            input.push(if len > 0 { byte | 0x80 } else { byte });
            if len == 0 {
                break;
            }
        }
        input.extend_from_slice(&body);
        check_decode_anything(version, MAX_PACKET_SIZE, &input)?;
    }

    #[test]
    fn damaged_packets_never_panic(
        (version, packet) in version_and_packet(),
        damage in vec(damage(), 1..4),
    ) {
        let mut wire = encode_checked(version, &packet)?.to_vec();
        apply(&damage, &mut wire);
        check_decode_anything(version, MAX_PACKET_SIZE, &wire)?;
    }

    #[test]
    fn packets_of_one_version_read_by_another_never_panic(
        (version, packet) in version_and_packet(),
        reader in select(VERSIONS.to_vec()),
    ) {
        let wire = encode_checked(version, &packet)?;
        check_decode_anything(reader, MAX_PACKET_SIZE, &wire)?;
    }
}
