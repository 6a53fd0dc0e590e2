//! Encoding refuses what the chosen version cannot carry, and what no version allows, with the
//! exact `EncodeError`; a refused packet writes nothing.

mod common;

use std::num::NonZeroU32;

use bytes::Bytes;
use common::{b, encode, filter, hex, pid, s, topic, user, V3, VERSIONS};
use mqtt_proto::{
    AckProperties, Auth, AuthProperties, AuthReasonCode, ConnAck, ConnAckProperties, Connect,
    ConnectProperties, ConnectReasonCode, Disconnect, DisconnectProperties, DisconnectReasonCode,
    EncodeError, LastWill, Packet, PacketType, PropertyId, ProtocolVersion, PubAck,
    PubAckReasonCode, PubComp, PubRec, PubRel, PubRelReasonCode, Publish, PublishProperties, QoS,
    QosPid, RetainHandling, SubAck, SubAckReasonCode, Subscribe, SubscribeProperties, Subscription,
    SubscriptionOptions, TopicName, UnsubAck, UnsubAckReasonCode, Unsubscribe,
    UnsubscribeProperties, WillProperties, MAX_VAR_INT,
};
use ProtocolVersion::{V3_1_1, V5};

fn reason_string() -> AckProperties {
    AckProperties {
        reason_string: Some(s("why")),
        ..Default::default()
    }
}

fn will() -> LastWill {
    LastWill::new(topic("w"), b(b"bye"), QoS::AtMostOnce)
}

#[test]
fn a_connect_is_encoded_only_in_the_version_it_names() {
    for named in VERSIONS {
        for asked in VERSIONS {
            let connect = Packet::from(Connect::new(named, s("c"), 10));
            let mut buf = bytes::BytesMut::new();
            let result = connect.encode(asked, &mut buf);
            if named == asked {
                assert!(result.is_ok());
            } else {
                assert_eq!(
                    result,
                    Err(EncodeError::VersionMismatch {
                        packet: named,
                        encoder: asked
                    })
                );
                assert!(buf.is_empty(), "a refused packet writes nothing");
                assert!(connect.encoded_len(asked).is_err());
            }
        }
    }
}

#[test]
fn constructors_make_the_plain_packets() {
    let subscribe = Subscribe::new(
        pid(3),
        vec![Subscription::new(filter("a/+"), QoS::AtLeastOnce)],
    );
    assert_eq!(subscribe.properties, SubscribeProperties::default());
    let unsubscribe = Unsubscribe::new(pid(4), vec![filter("a/+")]);
    assert_eq!(unsubscribe.properties, UnsubscribeProperties::default());
    for version in VERSIONS {
        assert!(encode(version, &Packet::Subscribe(subscribe.clone())).is_ok());
        assert!(encode(version, &Packet::Unsubscribe(unsubscribe.clone())).is_ok());
    }
    let will = will().retain(true);
    assert!(will.retain && will.properties == WillProperties::default().into());
}

#[test]
fn properties_cannot_be_sent_before_5_0() {
    let users = vec![user("k", "v")];
    for version in V3 {
        let expected = Err(EncodeError::PropertiesNotInVersion(version));
        let packets = [
            Packet::from(Connect {
                properties: ConnectProperties {
                    session_expiry_interval: Some(10),
                    ..Default::default()
                }
                .into(),
                ..Connect::new(version, s("c"), 0)
            }),
            Packet::from(Connect {
                will: Some(LastWill {
                    properties: WillProperties {
                        will_delay_interval: Some(5),
                        ..Default::default()
                    }
                    .into(),
                    ..will()
                }),
                ..Connect::new(version, s("c"), 0)
            }),
            Packet::from(ConnAck {
                properties: ConnAckProperties {
                    user_properties: users.clone(),
                    ..Default::default()
                },
                ..ConnAck::accepted(false)
            }),
            Packet::Publish(Publish {
                properties: PublishProperties {
                    content_type: Some(s("json")),
                    ..Default::default()
                }
                .into(),
                ..Publish::new(topic("t"), QosPid::AtMostOnce, b(b""))
            }),
            Packet::PubAck(PubAck {
                properties: reason_string().into(),
                ..PubAck::new(pid(1))
            }),
            Packet::PubRec(PubRec {
                properties: reason_string().into(),
                ..PubRec::new(pid(1))
            }),
            Packet::PubRel(PubRel {
                properties: reason_string().into(),
                ..PubRel::new(pid(1))
            }),
            Packet::PubComp(PubComp {
                properties: reason_string().into(),
                ..PubComp::new(pid(1))
            }),
            Packet::Subscribe(Subscribe {
                packet_id: pid(1),
                properties: SubscribeProperties {
                    subscription_identifier: NonZeroU32::new(1),
                    ..Default::default()
                },
                filters: vec![Subscription::new(filter("t"), QoS::AtMostOnce)],
            }),
            Packet::SubAck(SubAck {
                packet_id: pid(1),
                properties: reason_string().into(),
                reason_codes: vec![SubAckReasonCode::GrantedQoS0],
            }),
            Packet::Unsubscribe(Unsubscribe {
                packet_id: pid(1),
                properties: UnsubscribeProperties {
                    user_properties: users.clone(),
                },
                filters: vec![filter("t")],
            }),
            Packet::UnsubAck(UnsubAck {
                packet_id: pid(1),
                properties: reason_string().into(),
                reason_codes: vec![],
            }),
            Packet::Disconnect(Disconnect {
                reason_code: DisconnectReasonCode::NormalDisconnection,
                properties: DisconnectProperties {
                    reason_string: Some(s("bye")),
                    ..Default::default()
                }
                .into(),
            }),
        ];
        for packet in packets {
            assert_eq!(
                encode(version, &packet),
                expected,
                "{packet:?} in {version}"
            );
            // The same packet is fine in 5.0 (CONNECT names its own version, so it stays 3.x).
            if !matches!(packet, Packet::Connect(_)) {
                assert!(encode(V5, &packet).is_ok(), "{packet:?} in 5.0");
            }
        }
    }
}

#[test]
fn reason_codes_cannot_be_sent_before_5_0() {
    for version in V3 {
        let refused = |code: u8| Err(EncodeError::ReasonCodeNotInVersion { code, version });
        let cases = [
            (
                Packet::from(ConnAck {
                    reason_code: ConnectReasonCode::Banned,
                    ..ConnAck::accepted(false)
                }),
                0x8a,
            ),
            (
                Packet::PubAck(PubAck {
                    reason_code: PubAckReasonCode::NoMatchingSubscribers,
                    ..PubAck::new(pid(1))
                }),
                0x10,
            ),
            (
                Packet::PubRec(PubRec {
                    reason_code: PubAckReasonCode::QuotaExceeded,
                    ..PubRec::new(pid(1))
                }),
                0x97,
            ),
            (
                Packet::PubRel(PubRel {
                    reason_code: PubRelReasonCode::PacketIdentifierNotFound,
                    ..PubRel::new(pid(1))
                }),
                0x92,
            ),
            (
                Packet::PubComp(PubComp {
                    reason_code: PubRelReasonCode::PacketIdentifierNotFound,
                    ..PubComp::new(pid(1))
                }),
                0x92,
            ),
            (
                Packet::SubAck(SubAck {
                    packet_id: pid(1),
                    properties: Default::default(),
                    reason_codes: vec![
                        SubAckReasonCode::GrantedQoS1,
                        SubAckReasonCode::NotAuthorized,
                    ],
                }),
                0x87,
            ),
            (
                Packet::UnsubAck(UnsubAck {
                    packet_id: pid(1),
                    properties: Default::default(),
                    reason_codes: vec![UnsubAckReasonCode::Success],
                }),
                0x00,
            ),
            (
                Packet::Disconnect(Disconnect::new(DisconnectReasonCode::ServerShuttingDown)),
                0x8b,
            ),
        ];
        for (packet, code) in cases {
            assert_eq!(encode(version, &packet), refused(code), "{packet:?}");
            assert!(encode(V5, &packet).is_ok(), "{packet:?} in 5.0");
        }
    }
}

#[test]
fn connack_return_codes_of_3_1_1() {
    // Spec 3.2.2.3 (3.1.1): the five refusals have return codes 1 to 5.
    let mapped = [
        (ConnectReasonCode::Success, 0),
        (ConnectReasonCode::UnsupportedProtocolVersion, 1),
        (ConnectReasonCode::ClientIdentifierNotValid, 2),
        (ConnectReasonCode::ServerUnavailable, 3),
        (ConnectReasonCode::BadUserNameOrPassword, 4),
        (ConnectReasonCode::NotAuthorized, 5),
    ];
    for (reason_code, byte) in mapped {
        let packet = Packet::from(ConnAck {
            reason_code,
            ..ConnAck::accepted(false)
        });
        assert_eq!(encode(V3_1_1, &packet), Ok(vec![0x20, 0x02, 0x00, byte]));
    }
    let unmapped: Vec<ConnectReasonCode> = (0..=255)
        .filter_map(ConnectReasonCode::from_u8)
        .filter(|c| c.to_v3_return_code().is_none())
        .collect();
    assert_eq!(unmapped.len(), 16);
    for reason_code in unmapped {
        let packet = Packet::from(ConnAck {
            reason_code,
            ..ConnAck::accepted(false)
        });
        assert_eq!(
            encode(V3_1_1, &packet),
            Err(EncodeError::ReasonCodeNotInVersion {
                code: reason_code.as_u8(),
                version: V3_1_1
            })
        );
    }
}

#[test]
fn auth_cannot_be_sent_before_5_0() {
    let auth = Packet::Auth(Auth {
        reason_code: AuthReasonCode::Success,
        properties: Default::default(),
    });
    for version in V3 {
        assert_eq!(
            encode(version, &auth),
            Err(EncodeError::PacketNotInVersion {
                packet: PacketType::Auth,
                version
            })
        );
    }
    assert_eq!(encode(V5, &auth), Ok(hex("f0 00")));
}

#[test]
fn subscription_options_cannot_be_sent_before_5_0() {
    let options = [
        SubscriptionOptions {
            no_local: true,
            ..Default::default()
        },
        SubscriptionOptions {
            retain_as_published: true,
            ..Default::default()
        },
        SubscriptionOptions {
            retain_handling: RetainHandling::SendAtSubscribeIfNew,
            ..Default::default()
        },
        SubscriptionOptions {
            retain_handling: RetainHandling::DoNotSend,
            ..Default::default()
        },
    ];
    for version in V3 {
        for options in options {
            let packet = Packet::Subscribe(Subscribe {
                packet_id: pid(1),
                properties: SubscribeProperties::default(),
                filters: vec![
                    Subscription::new(filter("a"), QoS::ExactlyOnce),
                    Subscription {
                        filter: filter("b"),
                        options,
                    },
                ],
            });
            assert_eq!(
                encode(version, &packet),
                Err(EncodeError::SubscriptionOptionsNotInVersion(version)),
                "{options:?}"
            );
            assert!(encode(V5, &packet).is_ok());
        }
    }
}

#[test]
fn empty_topic_needs_a_topic_alias_in_5_0() {
    let empty = Publish::new(TopicName::empty_for_alias(), QosPid::AtMostOnce, b(b"x"));
    assert_eq!(
        encode(V5, &Packet::Publish(empty.clone())),
        Err(EncodeError::EmptyTopicWithoutAlias)
    );
    let aliased = Publish {
        properties: PublishProperties {
            topic_alias: std::num::NonZeroU16::new(3),
            ..Default::default()
        }
        .into(),
        ..empty.clone()
    };
    assert_eq!(
        encode(V5, &Packet::Publish(aliased.clone())),
        Ok(hex("30 07 00 00 03 23 00 03 'x'"))
    );
    // Before 5.0 there are no topic aliases, so an empty topic is never possible.
    for version in V3 {
        for publish in [&empty, &aliased] {
            assert_eq!(
                encode(version, &Packet::Publish(publish.clone())),
                Err(EncodeError::EmptyTopicWithoutAlias)
            );
        }
    }
}

#[test]
fn password_without_user_name_before_5_0() {
    // [MQTT-3.1.2-22 v3.1.1]
    for version in V3 {
        let connect = Packet::from(Connect {
            password: Some(b(b"pw")),
            ..Connect::new(version, s("c"), 0)
        });
        assert_eq!(
            encode(version, &connect),
            Err(EncodeError::PasswordWithoutUsername)
        );
    }
    let connect = Packet::from(Connect {
        password: Some(b(b"pw")),
        ..Connect::new(V5, s("c"), 0)
    });
    assert_eq!(
        encode(V5, &connect),
        Ok(hex(
            "10 12 00 04 'MQTT' 05 42 00 00 00 00 01 'c' 00 02 'pw'"
        ))
    );
}

#[test]
fn dup_on_qos_0() {
    // [MQTT-3.3.1-2 v3.1.1 v5.0]
    let publish = Packet::Publish(Publish {
        dup: true,
        ..Publish::new(topic("t"), QosPid::AtMostOnce, b(b""))
    });
    for version in VERSIONS {
        assert_eq!(encode(version, &publish), Err(EncodeError::DupOnQoS0));
    }
}

#[test]
fn subscribe_and_unsubscribe_without_filters() {
    // [MQTT-3.8.3-3 v3.1.1] / [MQTT-3.8.3-2 v5.0], [MQTT-3.10.3-2 v3.1.1 v5.0]
    for version in VERSIONS {
        let subscribe = Packet::Subscribe(Subscribe {
            packet_id: pid(1),
            properties: SubscribeProperties::default(),
            filters: vec![],
        });
        let unsubscribe = Packet::Unsubscribe(Unsubscribe {
            packet_id: pid(1),
            properties: UnsubscribeProperties::default(),
            filters: vec![],
        });
        assert_eq!(
            encode(version, &subscribe),
            Err(EncodeError::NoTopicFilters)
        );
        assert_eq!(
            encode(version, &unsubscribe),
            Err(EncodeError::NoTopicFilters)
        );
    }
}

#[test]
fn no_local_on_shared_subscription() {
    // [MQTT-3.8.3-4 v5.0]
    let packet = Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        properties: SubscribeProperties::default(),
        filters: vec![Subscription {
            filter: filter("$share/g/t"),
            options: SubscriptionOptions {
                no_local: true,
                ..Default::default()
            },
        }],
    });
    assert_eq!(
        encode(V5, &packet),
        Err(EncodeError::NoLocalOnSharedSubscription)
    );
}

#[test]
fn binary_fields_longer_than_65535_bytes() {
    // Spec 1.5.6: binary data has a two-byte length.
    let long = Bytes::from(vec![7u8; 65_536]);
    let longest = Bytes::from(vec![7u8; 65_535]);
    for version in VERSIONS {
        let with_password = |password: Bytes| {
            Packet::from(Connect {
                username: Some(s("u")),
                password: Some(password),
                ..Connect::new(version, s("c"), 0)
            })
        };
        assert_eq!(
            encode(version, &with_password(long.clone())),
            Err(EncodeError::FieldTooLong)
        );
        assert!(encode(version, &with_password(longest.clone())).is_ok());
        let with_will = Packet::from(Connect {
            will: Some(LastWill {
                payload: long.clone(),
                ..will()
            }),
            ..Connect::new(version, s("c"), 0)
        });
        assert_eq!(encode(version, &with_will), Err(EncodeError::FieldTooLong));
    }
    let with_correlation = Packet::Publish(Publish {
        properties: PublishProperties {
            correlation_data: Some(long.clone()),
            ..Default::default()
        }
        .into(),
        ..Publish::new(topic("t"), QosPid::AtMostOnce, b(b""))
    });
    assert_eq!(
        encode(V5, &with_correlation),
        Err(EncodeError::FieldTooLong)
    );
    let with_auth_data = Packet::Auth(Auth {
        reason_code: AuthReasonCode::ContinueAuthentication,
        properties: AuthProperties {
            authentication_method: Some(s("SCRAM")),
            authentication_data: Some(long),
            ..Default::default()
        }
        .into(),
    });
    assert_eq!(encode(V5, &with_auth_data), Err(EncodeError::FieldTooLong));
}

#[test]
fn maximum_qos_is_0_or_1() {
    // Spec 3.2.2.3.4 (5.0): a Maximum QoS of 2 is a protocol error; leaving it out means 2.
    let connack = |qos| {
        Packet::from(ConnAck {
            properties: ConnAckProperties {
                maximum_qos: Some(qos),
                ..Default::default()
            },
            ..ConnAck::accepted(false)
        })
    };
    assert_eq!(
        encode(V5, &connack(QoS::ExactlyOnce)),
        Err(EncodeError::InvalidPropertyValue(PropertyId::MaximumQoS))
    );
    assert_eq!(
        encode(V5, &connack(QoS::AtMostOnce)),
        Ok(hex("20 05 00 00 02 24 00"))
    );
    assert_eq!(
        encode(V5, &connack(QoS::AtLeastOnce)),
        Ok(hex("20 05 00 00 02 24 01"))
    );
}

#[test]
fn subscription_identifier_within_its_range() {
    // Spec 3.8.2.1.2 (5.0): 1 to 268,435,455, a variable byte integer.
    let with_id = |id| {
        Packet::Subscribe(Subscribe {
            packet_id: pid(1),
            properties: SubscribeProperties {
                subscription_identifier: NonZeroU32::new(id),
                ..Default::default()
            },
            filters: vec![Subscription::new(filter("t"), QoS::AtMostOnce)],
        })
    };
    assert_eq!(
        encode(V5, &with_id(MAX_VAR_INT + 1)),
        Err(EncodeError::InvalidPropertyValue(
            PropertyId::SubscriptionIdentifier
        ))
    );
    assert_eq!(
        encode(V5, &with_id(MAX_VAR_INT)),
        Ok(hex("82 0c 00 01 05 0b ff ff ff 7f 00 01 't' 00"))
    );
}

#[test]
fn packet_larger_than_the_remaining_length_can_express() {
    // Spec 2.2.3: the remaining length is at most 268,435,455. The zeroed buffer is never
    // touched, because the size is refused before anything is written.
    let payload = Bytes::from(vec![0u8; MAX_VAR_INT as usize]);
    let publish = Packet::Publish(Publish::new(topic("t"), QosPid::AtMostOnce, payload));
    for version in VERSIONS {
        // Topic, payload, and in 5.0 the property length.
        let body = 3 + MAX_VAR_INT as usize + usize::from(version == V5);
        assert_eq!(
            publish.encoded_len(version),
            Err(EncodeError::PacketTooLarge(body))
        );
        assert_eq!(
            encode(version, &publish),
            Err(EncodeError::PacketTooLarge(body))
        );
    }
}
