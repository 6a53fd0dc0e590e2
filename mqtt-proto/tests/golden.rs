//! Golden byte vectors for every packet of every version, written by hand from the byte layouts
//! of the MQTT 3.1, 3.1.1 and 5.0 specifications.
//!
//! Each vector is checked both ways (decode gives the packet and consumes the buffer; encode
//! gives the bytes), then decoded again fed one byte at a time, split at every offset, and
//! concatenated with the others into one stream.

mod common;

use std::collections::BTreeSet;
use std::num::{NonZeroU16, NonZeroU32};

use bytes::BytesMut;
use common::{b, decode_one, encode, filter, hex, pid, s, topic, user};
use mqtt_proto::{
    AckProperties, Auth, AuthProperties, AuthReasonCode, ConnAck, ConnAckProperties, Connect,
    ConnectProperties, ConnectReasonCode, Decoder, Disconnect, DisconnectProperties,
    DisconnectReasonCode, LastWill, Packet, PayloadFormat, PropertyId, ProtocolVersion, PubAck,
    PubAckReasonCode, PubComp, PubRec, PubRel, PubRelReasonCode, Publish, PublishProperties, QoS,
    QosPid, RetainHandling, SubAck, SubAckReasonCode, Subscribe, SubscribeProperties, Subscription,
    SubscriptionOptions, UnsubAck, UnsubAckReasonCode, Unsubscribe, UnsubscribeProperties,
    UserProperty, WillProperties,
};
use ProtocolVersion::{V3_1, V3_1_1, V5};

/// One golden vector: the bytes on the wire and the packet they stand for.
struct Case {
    name: &'static str,
    version: ProtocolVersion,
    bytes: Vec<u8>,
    packet: Packet,
}

fn case(name: &'static str, version: ProtocolVersion, bytes: &str, packet: Packet) -> Case {
    Case {
        name,
        version,
        bytes: hex(bytes),
        packet,
    }
}

fn nz16(v: u16) -> NonZeroU16 {
    NonZeroU16::new(v).unwrap()
}

fn nz32(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap()
}

fn connect(version: ProtocolVersion, client_id: &str, keep_alive: u16) -> Connect {
    Connect::new(version, s(client_id), keep_alive)
}

fn publish(topic_name: &str, qos_pid: QosPid, payload: &'static [u8]) -> Publish {
    Publish::new(topic(topic_name), qos_pid, b(payload))
}

fn ack_props(reason: Option<&str>, users: &[(&str, &str)]) -> AckProperties {
    AckProperties {
        reason_string: reason.map(s),
        user_properties: users.iter().map(|(n, v)| user(n, v)).collect(),
    }
}

/// The packets every version before 5.0 shares, laid out identically in 3.1 and 3.1.1.
fn v3_cases(version: ProtocolVersion) -> Vec<Case> {
    vec![
        case(
            "publish qos 0",
            version,
            "30 0b               # PUBLISH, QoS 0, remaining length 11
             00 04 'test'        # topic name
             'hello'             # payload",
            Packet::Publish(publish("test", QosPid::AtMostOnce, b"hello")),
        ),
        case(
            "publish qos 0 retain, empty payload",
            version,
            "31 05 00 03 'a/b'",
            Packet::Publish(Publish {
                retain: true,
                ..publish("a/b", QosPid::AtMostOnce, b"")
            }),
        ),
        case(
            "publish qos 1 dup",
            version,
            "3a 0a               # PUBLISH, DUP, QoS 1
             00 03 'a/b'
             12 34               # packet identifier
             'xyz'",
            Packet::Publish(Publish {
                dup: true,
                ..publish("a/b", QosPid::AtLeastOnce(pid(0x1234)), b"xyz")
            }),
        ),
        case(
            "publish qos 2 dup retain",
            version,
            "3d 09 00 03 'a/b' ff ff 00 01",
            Packet::Publish(Publish {
                dup: true,
                retain: true,
                ..publish("a/b", QosPid::ExactlyOnce(pid(0xffff)), &[0x00, 0x01])
            }),
        ),
        case(
            "puback",
            version,
            "40 02 00 01",
            Packet::PubAck(PubAck::new(pid(1))),
        ),
        case(
            "pubrec",
            version,
            "50 02 ff ff",
            Packet::PubRec(PubRec::new(pid(0xffff))),
        ),
        case(
            "pubrel",
            version,
            "62 02 00 02",
            Packet::PubRel(PubRel::new(pid(2))),
        ),
        case(
            "pubcomp",
            version,
            "70 02 00 02",
            Packet::PubComp(PubComp::new(pid(2))),
        ),
        case(
            "subscribe three filters",
            version,
            "82 16               # SUBSCRIBE, flags 0010
             00 01               # packet identifier
             00 03 'a/b' 00      # filter, requested QoS 0
             00 03 'c/#' 01
             00 05 '+/x/+' 02",
            Packet::Subscribe(Subscribe {
                packet_id: pid(1),
                properties: SubscribeProperties::default(),
                filters: vec![
                    Subscription::new(filter("a/b"), QoS::AtMostOnce),
                    Subscription::new(filter("c/#"), QoS::AtLeastOnce),
                    Subscription::new(filter("+/x/+"), QoS::ExactlyOnce),
                ],
            }),
        ),
        case(
            "suback with failure",
            version,
            "90 06 00 01 00 01 02 80",
            Packet::SubAck(SubAck {
                packet_id: pid(1),
                properties: Default::default(),
                reason_codes: vec![
                    SubAckReasonCode::GrantedQoS0,
                    SubAckReasonCode::GrantedQoS1,
                    SubAckReasonCode::GrantedQoS2,
                    SubAckReasonCode::UnspecifiedError,
                ],
            }),
        ),
        case(
            "unsubscribe two filters",
            version,
            "a2 0c 00 02 00 03 'a/b' 00 03 'c/#'",
            Packet::Unsubscribe(Unsubscribe {
                packet_id: pid(2),
                properties: UnsubscribeProperties::default(),
                filters: vec![filter("a/b"), filter("c/#")],
            }),
        ),
        case(
            "unsuback",
            version,
            "b0 02 00 02",
            Packet::UnsubAck(UnsubAck {
                packet_id: pid(2),
                properties: Default::default(),
                reason_codes: vec![],
            }),
        ),
        case("pingreq", version, "c0 00", Packet::PingReq),
        case("pingresp", version, "d0 00", Packet::PingResp),
        case(
            "disconnect",
            version,
            "e0 00",
            Packet::Disconnect(Disconnect::default()),
        ),
    ]
}

fn v3_1_cases() -> Vec<Case> {
    let mut cases = vec![
        case(
            "connect 3.1 minimal",
            V3_1,
            "10 10               # CONNECT, remaining length 16
             00 06 'MQIsdp'      # protocol name
             03                  # protocol level 3
             02                  # flags: clean session
             00 3c               # keep alive 60
             00 02 'c1'          # client identifier",
            Packet::from(connect(V3_1, "c1", 60)),
        ),
        case(
            "connect 3.1 will, user name, password",
            V3_1,
            "10 21
             00 06 'MQIsdp' 03
             ee                  # user, password, will retain, will QoS 1, will, clean
             00 0a
             00 03 'cid'
             00 03 'w/t'         # will topic
             00 03 'bye'         # will message
             00 01 'u'
             00 01 'p'",
            Packet::from(Connect {
                will: Some(LastWill {
                    topic: topic("w/t"),
                    payload: b(b"bye"),
                    qos: QoS::AtLeastOnce,
                    retain: true,
                    properties: WillProperties::default().into(),
                }),
                username: Some(s("u")),
                password: Some(b(b"p")),
                ..connect(V3_1, "cid", 10)
            }),
        ),
        case(
            "connack 3.1 accepted",
            V3_1,
            "20 02 00 00",
            Packet::from(ConnAck::accepted(false)),
        ),
        case(
            "connack 3.1 identifier rejected",
            V3_1,
            "20 02 00 02",
            Packet::from(ConnAck {
                reason_code: ConnectReasonCode::ClientIdentifierNotValid,
                ..ConnAck::accepted(false)
            }),
        ),
    ];
    cases.extend(v3_cases(V3_1));
    cases
}

fn v3_1_1_cases() -> Vec<Case> {
    let mut cases = vec![
        case(
            "connect minimal, empty client id",
            V3_1_1,
            "10 0c 00 04 'MQTT' 04 02 00 3c 00 00",
            Packet::from(connect(V3_1_1, "", 60)),
        ),
        case(
            "connect with will",
            V3_1_1,
            "10 26
             00 04 'MQTT' 04
             14                  # will QoS 2, will flag, persistent session
             01 2c               # keep alive 300
             00 04 'dev1'
             00 0b 'status/dev1'
             00 07 'offline'",
            Packet::from(Connect {
                clean_start: false,
                will: Some(LastWill {
                    topic: topic("status/dev1"),
                    payload: b(b"offline"),
                    qos: QoS::ExactlyOnce,
                    retain: false,
                    properties: WillProperties::default().into(),
                }),
                ..connect(V3_1_1, "dev1", 300)
            }),
        ),
        case(
            "connect with user name",
            V3_1_1,
            "10 14 00 04 'MQTT' 04 82 00 3c 00 01 'c' 00 05 'alice'",
            Packet::from(Connect {
                username: Some(s("alice")),
                ..connect(V3_1_1, "c", 60)
            }),
        ),
        case(
            "connect with user name and binary password",
            V3_1_1,
            "10 19 00 04 'MQTT' 04 c2 00 3c 00 01 'c' 00 05 'alice' 00 03 00 ff 10",
            Packet::from(Connect {
                username: Some(s("alice")),
                password: Some(b(&[0x00, 0xff, 0x10])),
                ..connect(V3_1_1, "c", 60)
            }),
        ),
        case(
            "connect with retained will, user name and password",
            V3_1_1,
            "10 19
             00 04 'MQTT' 04
             e6                  # user, password, will retain, will QoS 0, will, clean
             00 0a
             00 01 'x'
             00 01 't'
             00 00               # empty will message
             00 01 'u'
             00 02 'pw'",
            Packet::from(Connect {
                will: Some(LastWill {
                    topic: topic("t"),
                    payload: b(b""),
                    qos: QoS::AtMostOnce,
                    retain: true,
                    properties: WillProperties::default().into(),
                }),
                username: Some(s("u")),
                password: Some(b(b"pw")),
                ..connect(V3_1_1, "x", 10)
            }),
        ),
        case(
            "connack accepted, session present",
            V3_1_1,
            "20 02 01 00",
            Packet::from(ConnAck::accepted(true)),
        ),
    ];
    let refusals = [
        (
            "connack 1 unacceptable protocol version",
            "20 02 00 01",
            ConnectReasonCode::UnsupportedProtocolVersion,
        ),
        (
            "connack 2 identifier rejected",
            "20 02 00 02",
            ConnectReasonCode::ClientIdentifierNotValid,
        ),
        (
            "connack 3 server unavailable",
            "20 02 00 03",
            ConnectReasonCode::ServerUnavailable,
        ),
        (
            "connack 4 bad user name or password",
            "20 02 00 04",
            ConnectReasonCode::BadUserNameOrPassword,
        ),
        (
            "connack 5 not authorized",
            "20 02 00 05",
            ConnectReasonCode::NotAuthorized,
        ),
    ];
    for (name, bytes, reason_code) in refusals {
        cases.push(case(
            name,
            V3_1_1,
            bytes,
            Packet::from(ConnAck {
                reason_code,
                ..ConnAck::accepted(false)
            }),
        ));
    }
    cases.extend(v3_cases(V3_1_1));
    cases
}

fn v5_connect_cases() -> Vec<Case> {
    vec![
        case(
            "connect 5.0 minimal",
            V5,
            "10 0d 00 04 'MQTT' 05 02 00 3c
             00                  # property length 0
             00 00               # empty client identifier",
            Packet::from(connect(V5, "", 60)),
        ),
        case(
            "connect 5.0 every property, will, user name, password",
            V5,
            "10 84 01            # remaining length 132
             00 04 'MQTT' 05
             ee                  # user, password, will retain, will QoS 1, will, clean start
             00 1e               # keep alive 30
             29                  # property length 41
               11 00 00 00 1e    # session expiry interval 30
               21 00 14          # receive maximum 20
               27 00 10 00 00    # maximum packet size 1 MiB
               22 00 0a          # topic alias maximum 10
               19 01             # request response information
               17 00             # request problem information: no
               15 00 05 'SCRAM'  # authentication method
               16 00 03 01 02 03 # authentication data
               26 00 01 'k' 00 01 'v'
             00 04 'dev1'        # client identifier
             2e                  # will property length 46
               18 00 00 00 0a    # will delay interval 10
               01 01             # payload format: UTF-8
               02 00 00 0e 10    # message expiry interval 3600
               03 00 0a 'text/plain'
               08 00 04 'resp'   # response topic
               09 00 02 ab cd    # correlation data
               26 00 02 'wk' 00 02 'wv'
             00 04 'dead'        # will topic
             00 04 'gone'        # will payload
             00 05 'alice'
             00 06 'secret'",
            Packet::from(Connect {
                will: Some(LastWill {
                    topic: topic("dead"),
                    payload: b(b"gone"),
                    qos: QoS::AtLeastOnce,
                    retain: true,
                    properties: WillProperties {
                        will_delay_interval: Some(10),
                        payload_format_indicator: Some(PayloadFormat::Utf8),
                        message_expiry_interval: Some(3600),
                        content_type: Some(s("text/plain")),
                        response_topic: Some(topic("resp")),
                        correlation_data: Some(b(&[0xab, 0xcd])),
                        user_properties: vec![user("wk", "wv")],
                    }
                    .into(),
                }),
                username: Some(s("alice")),
                password: Some(b(b"secret")),
                properties: ConnectProperties {
                    session_expiry_interval: Some(30),
                    receive_maximum: Some(nz16(20)),
                    maximum_packet_size: Some(nz32(1 << 20)),
                    topic_alias_maximum: Some(10),
                    request_response_information: Some(true),
                    request_problem_information: Some(false),
                    authentication_method: Some(s("SCRAM")),
                    authentication_data: Some(b(&[1, 2, 3])),
                    user_properties: vec![user("k", "v")],
                }
                .into(),
                ..connect(V5, "dev1", 30)
            }),
        ),
        case(
            "connect 5.0 password without user name",
            V5,
            "10 12 00 04 'MQTT' 05 42 00 00 00 00 01 'c' 00 02 'pw'",
            Packet::from(Connect {
                password: Some(b(b"pw")),
                ..connect(V5, "c", 0)
            }),
        ),
        case(
            "connack 5.0 success",
            V5,
            "20 03 00 00 00",
            Packet::from(ConnAck::accepted(false)),
        ),
        case(
            "connack 5.0 bad authentication method",
            V5,
            "20 03 00 8c 00",
            Packet::from(ConnAck {
                reason_code: ConnectReasonCode::BadAuthenticationMethod,
                ..ConnAck::accepted(false)
            }),
        ),
        case(
            "connack 5.0 not authorized with reason string",
            V5,
            "20 0c 00 87 09 1f 00 06 'denied'",
            Packet::from(ConnAck {
                reason_code: ConnectReasonCode::NotAuthorized,
                properties: ConnAckProperties {
                    reason_string: Some(s("denied")),
                    ..Default::default()
                },
                ..ConnAck::accepted(false)
            }),
        ),
        case(
            "connack 5.0 every property",
            V5,
            "20 54
             01                  # session present
             00                  # success
             51                  # property length 81
               11 00 00 00 78    # session expiry interval 120
               21 00 64          # receive maximum 100
               24 01             # maximum QoS 1
               25 00             # retain available: no
               27 00 00 ff ff    # maximum packet size
               12 00 06 'auto-1' # assigned client identifier
               22 00 05          # topic alias maximum
               1f 00 02 'ok'     # reason string
               28 01             # wildcard subscriptions available
               29 00             # subscription identifiers available: no
               2a 01             # shared subscriptions available
               13 00 3c          # server keep alive
               1a 00 05 'resp/'  # response information
               1c 00 07 'other:1' # server reference
               15 00 05 'SCRAM'
               16 00 02 0a 0b
               26 00 01 'a' 00 01 'b'",
            Packet::from(ConnAck {
                session_present: true,
                reason_code: ConnectReasonCode::Success,
                properties: ConnAckProperties {
                    session_expiry_interval: Some(120),
                    receive_maximum: Some(nz16(100)),
                    maximum_qos: Some(QoS::AtLeastOnce),
                    retain_available: Some(false),
                    maximum_packet_size: Some(nz32(0xffff)),
                    assigned_client_identifier: Some(s("auto-1")),
                    topic_alias_maximum: Some(5),
                    reason_string: Some(s("ok")),
                    wildcard_subscription_available: Some(true),
                    subscription_identifiers_available: Some(false),
                    shared_subscription_available: Some(true),
                    server_keep_alive: Some(60),
                    response_information: Some(s("resp/")),
                    server_reference: Some(s("other:1")),
                    authentication_method: Some(s("SCRAM")),
                    authentication_data: Some(b(&[0x0a, 0x0b])),
                    user_properties: vec![user("a", "b")],
                },
            }),
        ),
    ]
}

fn v5_publish_cases() -> Vec<Case> {
    vec![
        case(
            "publish 5.0 qos 0",
            V5,
            "30 08 00 03 'a/b' 00 'hi'",
            Packet::Publish(publish("a/b", QosPid::AtMostOnce, b"hi")),
        ),
        case(
            "publish 5.0 qos 1 retain, every property",
            V5,
            "33 3c
             00 03 'a/b'
             00 05               # packet identifier
             32                  # property length 50
               01 01             # payload format: UTF-8
               02 00 00 00 3c    # message expiry interval 60
               23 00 07          # topic alias 7
               08 00 05 'reply'  # response topic
               09 00 03 'cid'    # correlation data
               03 00 04 'json'   # content type
               0b 01             # subscription identifier 1
               0b 80 01          # subscription identifier 128
               26 00 01 'x' 00 01 'y'
               26 00 01 'x' 00 01 'z'
             '{}'",
            Packet::Publish(Publish {
                retain: true,
                properties: PublishProperties {
                    payload_format_indicator: Some(PayloadFormat::Utf8),
                    message_expiry_interval: Some(60),
                    topic_alias: Some(nz16(7)),
                    response_topic: Some(topic("reply")),
                    correlation_data: Some(b(b"cid")),
                    content_type: Some(s("json")),
                    subscription_identifiers: vec![nz32(1), nz32(128)],
                    user_properties: vec![user("x", "y"), user("x", "z")],
                }
                .into(),
                ..publish("a/b", QosPid::AtLeastOnce(pid(5)), b"{}")
            }),
        ),
        case(
            "publish 5.0 qos 2 dup, topic alias instead of topic",
            V5,
            "3c 09
             00 00               # empty topic name
             00 09
             03 23 00 02         # topic alias 2
             'z'",
            Packet::Publish(Publish {
                dup: true,
                topic: mqtt_proto::TopicName::empty_for_alias(),
                properties: PublishProperties {
                    topic_alias: Some(nz16(2)),
                    ..Default::default()
                }
                .into(),
                ..publish("x", QosPid::ExactlyOnce(pid(9)), b"z")
            }),
        ),
    ]
}

fn v5_ack_cases() -> Vec<Case> {
    vec![
        case(
            "puback 5.0 short",
            V5,
            "40 02 00 01",
            Packet::PubAck(PubAck::new(pid(1))),
        ),
        case(
            "puback 5.0 reason only",
            V5,
            "40 03 00 01 10",
            Packet::PubAck(PubAck {
                reason_code: PubAckReasonCode::NoMatchingSubscribers,
                ..PubAck::new(pid(1))
            }),
        ),
        case(
            "puback 5.0 with properties",
            V5,
            "40 12 00 01 80
             0e 1f 00 04 'oops' 26 00 01 'k' 00 01 'v'",
            Packet::PubAck(PubAck {
                packet_id: pid(1),
                reason_code: PubAckReasonCode::UnspecifiedError,
                properties: ack_props(Some("oops"), &[("k", "v")]).into(),
            }),
        ),
        case(
            "pubrec 5.0 short",
            V5,
            "50 02 00 02",
            Packet::PubRec(PubRec::new(pid(2))),
        ),
        case(
            "pubrec 5.0 reason only",
            V5,
            "50 03 00 02 91",
            Packet::PubRec(PubRec {
                reason_code: PubAckReasonCode::PacketIdentifierInUse,
                ..PubRec::new(pid(2))
            }),
        ),
        case(
            "pubrec 5.0 with properties",
            V5,
            "50 0a 00 02 97 06 1f 00 03 'max'",
            Packet::PubRec(PubRec {
                packet_id: pid(2),
                reason_code: PubAckReasonCode::QuotaExceeded,
                properties: ack_props(Some("max"), &[]).into(),
            }),
        ),
        case(
            "pubrel 5.0 short",
            V5,
            "62 02 00 03",
            Packet::PubRel(PubRel::new(pid(3))),
        ),
        case(
            "pubrel 5.0 reason only",
            V5,
            "62 03 00 03 92",
            Packet::PubRel(PubRel {
                reason_code: PubRelReasonCode::PacketIdentifierNotFound,
                ..PubRel::new(pid(3))
            }),
        ),
        case(
            "pubrel 5.0 success with properties",
            V5,
            "62 09 00 03 00 05 1f 00 02 'ok'",
            Packet::PubRel(PubRel {
                packet_id: pid(3),
                reason_code: PubRelReasonCode::Success,
                properties: ack_props(Some("ok"), &[]).into(),
            }),
        ),
        case(
            "pubcomp 5.0 short",
            V5,
            "70 02 00 04",
            Packet::PubComp(PubComp::new(pid(4))),
        ),
        case(
            "pubcomp 5.0 reason only",
            V5,
            "70 03 00 04 92",
            Packet::PubComp(PubComp {
                reason_code: PubRelReasonCode::PacketIdentifierNotFound,
                ..PubComp::new(pid(4))
            }),
        ),
        case(
            "pubcomp 5.0 with properties",
            V5,
            "70 0b 00 04 92 07 26 00 01 'a' 00 01 'b'",
            Packet::PubComp(PubComp {
                packet_id: pid(4),
                reason_code: PubRelReasonCode::PacketIdentifierNotFound,
                properties: ack_props(None, &[("a", "b")]).into(),
            }),
        ),
    ]
}

fn v5_subscribe_cases() -> Vec<Case> {
    vec![
        case(
            "subscribe 5.0 with options and properties",
            V5,
            "82 25
             00 0a
             09                  # property length 9
               0b 05             # subscription identifier 5
               26 00 01 'a' 00 01 'b'
             00 03 'a/b'
             2d                  # QoS 1, no local, retain as published, retain handling 2
             00 0c '$share/g/c/#'
             12                  # QoS 2, retain handling 1
             00 01 '#'
             00",
            Packet::Subscribe(Subscribe {
                packet_id: pid(10),
                properties: SubscribeProperties {
                    subscription_identifier: Some(nz32(5)),
                    user_properties: vec![user("a", "b")],
                },
                filters: vec![
                    Subscription {
                        filter: filter("a/b"),
                        options: SubscriptionOptions {
                            qos: QoS::AtLeastOnce,
                            no_local: true,
                            retain_as_published: true,
                            retain_handling: RetainHandling::DoNotSend,
                        },
                    },
                    Subscription {
                        filter: filter("$share/g/c/#"),
                        options: SubscriptionOptions {
                            qos: QoS::ExactlyOnce,
                            retain_handling: RetainHandling::SendAtSubscribeIfNew,
                            ..Default::default()
                        },
                    },
                    Subscription::new(filter("#"), QoS::AtMostOnce),
                ],
            }),
        ),
        case(
            "subscribe 5.0 without properties",
            V5,
            "82 07 00 0b 00 00 01 'x' 01",
            Packet::Subscribe(Subscribe {
                packet_id: pid(11),
                properties: SubscribeProperties::default(),
                filters: vec![Subscription::new(filter("x"), QoS::AtLeastOnce)],
            }),
        ),
        case(
            "suback 5.0 with reason string",
            V5,
            "90 0f 00 0a 07 1f 00 04 'nope' 00 01 02 87 8f",
            Packet::SubAck(SubAck {
                packet_id: pid(10),
                properties: ack_props(Some("nope"), &[]).into(),
                reason_codes: vec![
                    SubAckReasonCode::GrantedQoS0,
                    SubAckReasonCode::GrantedQoS1,
                    SubAckReasonCode::GrantedQoS2,
                    SubAckReasonCode::NotAuthorized,
                    SubAckReasonCode::TopicFilterInvalid,
                ],
            }),
        ),
        case(
            "suback 5.0 every reason code",
            V5,
            "90 0f 00 0b 00 00 01 02 80 83 87 8f 91 97 9e a1 a2",
            Packet::SubAck(SubAck {
                packet_id: pid(11),
                properties: Default::default(),
                reason_codes: vec![
                    SubAckReasonCode::GrantedQoS0,
                    SubAckReasonCode::GrantedQoS1,
                    SubAckReasonCode::GrantedQoS2,
                    SubAckReasonCode::UnspecifiedError,
                    SubAckReasonCode::ImplementationSpecificError,
                    SubAckReasonCode::NotAuthorized,
                    SubAckReasonCode::TopicFilterInvalid,
                    SubAckReasonCode::PacketIdentifierInUse,
                    SubAckReasonCode::QuotaExceeded,
                    SubAckReasonCode::SharedSubscriptionsNotSupported,
                    SubAckReasonCode::SubscriptionIdentifiersNotSupported,
                    SubAckReasonCode::WildcardSubscriptionsNotSupported,
                ],
            }),
        ),
        case(
            "unsubscribe 5.0 with user property",
            V5,
            "a2 1d 00 0b 07 26 00 01 'a' 00 01 'b' 00 03 'a/b' 00 0c '$share/g/c/#'",
            Packet::Unsubscribe(Unsubscribe {
                packet_id: pid(11),
                properties: UnsubscribeProperties {
                    user_properties: vec![user("a", "b")],
                },
                filters: vec![filter("a/b"), filter("$share/g/c/#")],
            }),
        ),
        case(
            "unsuback 5.0",
            V5,
            "b0 06 00 0b 00 00 11 80",
            Packet::UnsubAck(UnsubAck {
                packet_id: pid(11),
                properties: Default::default(),
                reason_codes: vec![
                    UnsubAckReasonCode::Success,
                    UnsubAckReasonCode::NoSubscriptionExisted,
                    UnsubAckReasonCode::UnspecifiedError,
                ],
            }),
        ),
        case(
            "unsuback 5.0 with reason string",
            V5,
            "b0 0b 00 0c 04 1f 00 01 'x' 83 87 8f 91",
            Packet::UnsubAck(UnsubAck {
                packet_id: pid(12),
                properties: ack_props(Some("x"), &[]).into(),
                reason_codes: vec![
                    UnsubAckReasonCode::ImplementationSpecificError,
                    UnsubAckReasonCode::NotAuthorized,
                    UnsubAckReasonCode::TopicFilterInvalid,
                    UnsubAckReasonCode::PacketIdentifierInUse,
                ],
            }),
        ),
    ]
}

fn v5_control_cases() -> Vec<Case> {
    vec![
        case("pingreq 5.0", V5, "c0 00", Packet::PingReq),
        case("pingresp 5.0", V5, "d0 00", Packet::PingResp),
        case(
            "disconnect 5.0 normal, no body",
            V5,
            "e0 00",
            Packet::Disconnect(Disconnect::default()),
        ),
        case(
            "disconnect 5.0 reason only",
            V5,
            "e0 01 8e",
            Packet::Disconnect(Disconnect::new(DisconnectReasonCode::SessionTakenOver)),
        ),
        case(
            "disconnect 5.0 with properties",
            V5,
            "e0 1b
             04                  # disconnect with will message
             19                  # property length 25
               11 00 00 00 00    # session expiry interval 0
               1f 00 03 'bye'    # reason string
               1c 00 04 'srv2'   # server reference
               26 00 01 'a' 00 01 'b'",
            Packet::Disconnect(Disconnect {
                reason_code: DisconnectReasonCode::DisconnectWithWillMessage,
                properties: DisconnectProperties {
                    session_expiry_interval: Some(0),
                    reason_string: Some(s("bye")),
                    server_reference: Some(s("srv2")),
                    user_properties: vec![user("a", "b")],
                }
                .into(),
            }),
        ),
        case(
            "auth 5.0 success, no body",
            V5,
            "f0 00",
            Packet::Auth(Auth {
                reason_code: AuthReasonCode::Success,
                properties: Default::default(),
            }),
        ),
        case(
            "auth 5.0 continue with method, data, reason string",
            V5,
            "f0 18
             18                  # continue authentication
             16                  # property length 22
               15 00 05 'SCRAM'
               16 00 04 01 02 03 04
               1f 00 04 'next'",
            Packet::Auth(Auth {
                reason_code: AuthReasonCode::ContinueAuthentication,
                properties: AuthProperties {
                    authentication_method: Some(s("SCRAM")),
                    authentication_data: Some(b(&[1, 2, 3, 4])),
                    reason_string: Some(s("next")),
                    user_properties: vec![],
                }
                .into(),
            }),
        ),
        case(
            "auth 5.0 re-authenticate",
            V5,
            "f0 0a 19 08 15 00 05 'SCRAM'",
            Packet::Auth(Auth {
                reason_code: AuthReasonCode::ReAuthenticate,
                properties: AuthProperties {
                    authentication_method: Some(s("SCRAM")),
                    ..Default::default()
                }
                .into(),
            }),
        ),
        case(
            "auth 5.0 continue with the method alone",
            V5,
            "f0 0a 18 08 15 00 05 'SCRAM'",
            Packet::Auth(Auth {
                reason_code: AuthReasonCode::ContinueAuthentication,
                properties: AuthProperties {
                    authentication_method: Some(s("SCRAM")),
                    ..Default::default()
                }
                .into(),
            }),
        ),
    ]
}

fn v5_cases() -> Vec<Case> {
    let mut cases = v5_connect_cases();
    cases.extend(v5_publish_cases());
    cases.extend(v5_ack_cases());
    cases.extend(v5_subscribe_cases());
    cases.extend(v5_control_cases());
    cases
}

fn all_cases() -> Vec<Case> {
    let mut cases = v3_1_cases();
    cases.extend(v3_1_1_cases());
    cases.extend(v5_cases());
    cases
}

#[test]
fn hex_notation_reads_digits_text_and_comments() {
    assert_eq!(
        hex("10 0c # header\n 00 04 'MQTT' ff"),
        vec![0x10, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0xff]
    );
    assert_eq!(hex("'a b'"), b"a b".to_vec());
}

#[test]
fn golden_vectors_decode_to_their_packet() {
    for c in all_cases() {
        let decoded = decode_one(c.version, &c.bytes);
        assert_eq!(
            decoded.as_ref(),
            Ok(&c.packet),
            "{} ({})",
            c.name,
            c.version
        );
    }
}

#[test]
fn golden_vectors_encode_to_their_bytes() {
    for c in all_cases() {
        let encoded = encode(c.version, &c.packet);
        assert_eq!(encoded.as_ref(), Ok(&c.bytes), "{} ({})", c.name, c.version);
    }
}

#[test]
fn golden_vectors_decode_as_whole_frames() {
    for c in all_cases() {
        let frame = bytes::Bytes::from(c.bytes.clone());
        let decoded = Decoder::new(c.version).decode_frame(&frame);
        assert_eq!(
            decoded.as_ref(),
            Ok(&c.packet),
            "{} ({})",
            c.name,
            c.version
        );
    }
}

#[test]
fn golden_vectors_declare_their_own_length() {
    for c in all_cases() {
        let decoder = Decoder::new(c.version);
        let (header, size) = decoder.frame_len(&c.bytes).unwrap().unwrap();
        assert_eq!(size, c.bytes.len(), "{}", c.name);
        assert!((2..=5).contains(&header), "{}", c.name);
    }
}

#[test]
fn golden_vectors_cover_every_packet_type_of_every_version() {
    let cases = all_cases();
    for version in common::VERSIONS {
        let types: BTreeSet<u8> = cases
            .iter()
            .filter(|c| c.version == version)
            .map(|c| c.packet.packet_type() as u8)
            .collect();
        let expected: BTreeSet<u8> = if version == V5 {
            (1..=15).collect()
        } else {
            (1..=14).collect()
        };
        assert_eq!(types, expected, "{version}");
    }
}

/// The property identifiers a packet carries, listed from its typed fields.
fn property_ids(packet: &Packet) -> Vec<PropertyId> {
    let mut ids = Vec::new();
    let mut add = |present: bool, id: PropertyId| {
        if present {
            ids.push(id);
        }
    };
    let users = |u: &[UserProperty]| !u.is_empty();
    match packet {
        Packet::Connect(c) => {
            let p = &c.properties;
            add(
                p.session_expiry_interval.is_some(),
                PropertyId::SessionExpiryInterval,
            );
            add(p.receive_maximum.is_some(), PropertyId::ReceiveMaximum);
            add(
                p.maximum_packet_size.is_some(),
                PropertyId::MaximumPacketSize,
            );
            add(
                p.topic_alias_maximum.is_some(),
                PropertyId::TopicAliasMaximum,
            );
            add(
                p.request_response_information.is_some(),
                PropertyId::RequestResponseInformation,
            );
            add(
                p.request_problem_information.is_some(),
                PropertyId::RequestProblemInformation,
            );
            add(
                p.authentication_method.is_some(),
                PropertyId::AuthenticationMethod,
            );
            add(
                p.authentication_data.is_some(),
                PropertyId::AuthenticationData,
            );
            add(users(&p.user_properties), PropertyId::UserProperty);
            if let Some(will) = &c.will {
                let w = &will.properties;
                add(
                    w.will_delay_interval.is_some(),
                    PropertyId::WillDelayInterval,
                );
                add(
                    w.payload_format_indicator.is_some(),
                    PropertyId::PayloadFormatIndicator,
                );
                add(
                    w.message_expiry_interval.is_some(),
                    PropertyId::MessageExpiryInterval,
                );
                add(w.content_type.is_some(), PropertyId::ContentType);
                add(w.response_topic.is_some(), PropertyId::ResponseTopic);
                add(w.correlation_data.is_some(), PropertyId::CorrelationData);
                add(users(&w.user_properties), PropertyId::UserProperty);
            }
        }
        Packet::ConnAck(c) => {
            let p = &c.properties;
            add(
                p.session_expiry_interval.is_some(),
                PropertyId::SessionExpiryInterval,
            );
            add(p.receive_maximum.is_some(), PropertyId::ReceiveMaximum);
            add(p.maximum_qos.is_some(), PropertyId::MaximumQoS);
            add(p.retain_available.is_some(), PropertyId::RetainAvailable);
            add(
                p.maximum_packet_size.is_some(),
                PropertyId::MaximumPacketSize,
            );
            add(
                p.assigned_client_identifier.is_some(),
                PropertyId::AssignedClientIdentifier,
            );
            add(
                p.topic_alias_maximum.is_some(),
                PropertyId::TopicAliasMaximum,
            );
            add(p.reason_string.is_some(), PropertyId::ReasonString);
            add(
                p.wildcard_subscription_available.is_some(),
                PropertyId::WildcardSubscriptionAvailable,
            );
            add(
                p.subscription_identifiers_available.is_some(),
                PropertyId::SubscriptionIdentifierAvailable,
            );
            add(
                p.shared_subscription_available.is_some(),
                PropertyId::SharedSubscriptionAvailable,
            );
            add(p.server_keep_alive.is_some(), PropertyId::ServerKeepAlive);
            add(
                p.response_information.is_some(),
                PropertyId::ResponseInformation,
            );
            add(p.server_reference.is_some(), PropertyId::ServerReference);
            add(
                p.authentication_method.is_some(),
                PropertyId::AuthenticationMethod,
            );
            add(
                p.authentication_data.is_some(),
                PropertyId::AuthenticationData,
            );
            add(users(&p.user_properties), PropertyId::UserProperty);
        }
        Packet::Publish(publish) => {
            let p = &publish.properties;
            add(
                p.payload_format_indicator.is_some(),
                PropertyId::PayloadFormatIndicator,
            );
            add(
                p.message_expiry_interval.is_some(),
                PropertyId::MessageExpiryInterval,
            );
            add(p.topic_alias.is_some(), PropertyId::TopicAlias);
            add(p.response_topic.is_some(), PropertyId::ResponseTopic);
            add(p.correlation_data.is_some(), PropertyId::CorrelationData);
            add(p.content_type.is_some(), PropertyId::ContentType);
            add(
                !p.subscription_identifiers.is_empty(),
                PropertyId::SubscriptionIdentifier,
            );
            add(users(&p.user_properties), PropertyId::UserProperty);
        }
        Packet::PubAck(PubAck { properties: p, .. })
        | Packet::PubRec(PubRec { properties: p, .. })
        | Packet::PubRel(PubRel { properties: p, .. })
        | Packet::PubComp(PubComp { properties: p, .. })
        | Packet::SubAck(SubAck { properties: p, .. })
        | Packet::UnsubAck(UnsubAck { properties: p, .. }) => {
            add(p.reason_string.is_some(), PropertyId::ReasonString);
            add(users(&p.user_properties), PropertyId::UserProperty);
        }
        Packet::Subscribe(sub) => {
            let p = &sub.properties;
            add(
                p.subscription_identifier.is_some(),
                PropertyId::SubscriptionIdentifier,
            );
            add(users(&p.user_properties), PropertyId::UserProperty);
        }
        Packet::Unsubscribe(unsub) => {
            add(
                users(&unsub.properties.user_properties),
                PropertyId::UserProperty,
            );
        }
        Packet::Disconnect(d) => {
            let p = &d.properties;
            add(
                p.session_expiry_interval.is_some(),
                PropertyId::SessionExpiryInterval,
            );
            add(p.reason_string.is_some(), PropertyId::ReasonString);
            add(p.server_reference.is_some(), PropertyId::ServerReference);
            add(users(&p.user_properties), PropertyId::UserProperty);
        }
        Packet::Auth(a) => {
            let p = &a.properties;
            add(
                p.authentication_method.is_some(),
                PropertyId::AuthenticationMethod,
            );
            add(
                p.authentication_data.is_some(),
                PropertyId::AuthenticationData,
            );
            add(p.reason_string.is_some(), PropertyId::ReasonString);
            add(users(&p.user_properties), PropertyId::UserProperty);
        }
        Packet::PingReq | Packet::PingResp => {}
    }
    ids
}

#[test]
fn golden_vectors_carry_every_property_of_5_0() {
    let seen: BTreeSet<u32> = v5_cases()
        .iter()
        .flat_map(|c| property_ids(&c.packet))
        .map(|id| id as u32)
        .collect();
    let all: BTreeSet<u32> = (0..=0x7f)
        .filter(|&id| PropertyId::from_u32(id).is_some())
        .collect();
    assert_eq!(all.len(), 27, "the spec defines 27 properties");
    assert_eq!(seen, all);
}

#[test]
fn golden_vectors_fed_one_byte_at_a_time() {
    for c in all_cases() {
        let decoder = Decoder::new(c.version);
        let mut buf = BytesMut::new();
        for (i, &byte) in c.bytes.iter().enumerate() {
            buf.extend_from_slice(&[byte]);
            let result = decoder.decode(&mut buf);
            if i + 1 < c.bytes.len() {
                assert_eq!(result, Ok(None), "{} after {} bytes", c.name, i + 1);
                assert_eq!(&buf[..], &c.bytes[..=i], "{} consumed input", c.name);
            } else {
                assert_eq!(result, Ok(Some(c.packet.clone())), "{}", c.name);
                assert!(buf.is_empty(), "{}", c.name);
            }
        }
    }
}

#[test]
fn golden_vectors_through_the_borrowed_view() {
    for c in all_cases() {
        let decoder = Decoder::new(c.version);
        let frame = bytes::Bytes::from(c.bytes.clone());
        let view = decoder.decode_frame_ref(&frame).expect(c.name);
        assert_eq!(view.packet_type(), c.packet.packet_type(), "{}", c.name);
        assert_eq!(view.to_owned(&frame), c.packet, "{}", c.name);
        // Strings, binary data and the payload are slices of the input.
        if let (mqtt_proto::PacketRef::Publish(p), Packet::Publish(_)) = (view, &c.packet) {
            let input = frame.as_ptr_range();
            assert!(input.contains(&p.payload.as_ptr()) || p.payload.is_empty());
            assert!(input.contains(&p.topic.as_ptr()) || p.topic.is_empty());
        }
        // Every prefix needs more; the whole packet, with the next one's first byte after it,
        // reports its own length.
        for end in 0..c.bytes.len() {
            assert_eq!(
                decoder.decode_ref(&c.bytes[..end]),
                Ok(None),
                "{} cut at {end}",
                c.name
            );
        }
        let mut followed = c.bytes.clone();
        followed.push(0xc0);
        let (packet, used) = decoder.decode_ref(&followed).unwrap().unwrap();
        assert_eq!((packet, used), (view, c.bytes.len()), "{}", c.name);
    }
}

#[test]
fn golden_vectors_split_at_every_offset() {
    for c in all_cases() {
        let decoder = Decoder::new(c.version);
        for split in 0..=c.bytes.len() {
            let (first, second) = c.bytes.split_at(split);
            let mut buf = BytesMut::from(first);
            let result = decoder.decode(&mut buf);
            if split < c.bytes.len() {
                assert_eq!(result, Ok(None), "{} split at {split}", c.name);
                assert_eq!(&buf[..], first, "{} consumed input", c.name);
                buf.extend_from_slice(second);
                assert_eq!(
                    decoder.decode(&mut buf),
                    Ok(Some(c.packet.clone())),
                    "{} split at {split}",
                    c.name
                );
            } else {
                assert_eq!(result, Ok(Some(c.packet.clone())), "{}", c.name);
            }
            assert!(buf.is_empty(), "{} split at {split}", c.name);
            assert_eq!(decoder.decode(&mut buf), Ok(None));
        }
    }
}

#[test]
fn golden_vectors_concatenated_decode_in_order() {
    let cases = all_cases();
    for version in common::VERSIONS {
        let of_version: Vec<&Case> = cases.iter().filter(|c| c.version == version).collect();
        let mut stream = BytesMut::new();
        for c in &of_version {
            stream.extend_from_slice(&c.bytes);
        }
        let decoder = Decoder::new(version);
        for c in &of_version {
            assert_eq!(
                decoder.decode(&mut stream),
                Ok(Some(c.packet.clone())),
                "{}",
                c.name
            );
        }
        assert!(stream.is_empty());
        assert_eq!(decoder.decode(&mut stream), Ok(None));
    }
}

#[test]
fn golden_stream_arriving_in_uneven_chunks() {
    // The whole 5.0 stream cut into chunks of 7 bytes: packets straddle chunk borders.
    let cases = v5_cases();
    let wire: Vec<u8> = cases.iter().flat_map(|c| c.bytes.clone()).collect();
    let decoder = Decoder::new(V5);
    let mut buf = BytesMut::new();
    let mut decoded = Vec::new();
    for chunk in wire.chunks(7) {
        buf.extend_from_slice(chunk);
        while let Some(packet) = decoder.decode(&mut buf).unwrap() {
            decoded.push(packet);
        }
    }
    let expected: Vec<Packet> = cases.into_iter().map(|c| c.packet).collect();
    assert_eq!(decoded, expected);
    assert!(buf.is_empty());
}

/// Vectors the decoder accepts although the encoder writes them shorter: the spec lets the
/// sender include what may be left out, and lets properties come in any order.
#[test]
fn lenient_forms_decode_and_encode_canonically() {
    let cases = [
        (
            "puback 5.0 success with property length 0",
            "40 04 00 01 00 00",
            Packet::PubAck(PubAck::new(pid(1))),
            "40 02 00 01",
        ),
        (
            "puback 5.0 success reason code only",
            "40 03 00 01 00",
            Packet::PubAck(PubAck::new(pid(1))),
            "40 02 00 01",
        ),
        (
            "pubrel 5.0 reason code with empty properties",
            "62 04 00 03 92 00",
            Packet::PubRel(PubRel {
                reason_code: PubRelReasonCode::PacketIdentifierNotFound,
                ..PubRel::new(pid(3))
            }),
            "62 03 00 03 92",
        ),
        (
            "disconnect 5.0 normal reason code only",
            "e0 01 00",
            Packet::Disconnect(Disconnect::default()),
            "e0 00",
        ),
        (
            "disconnect 5.0 normal with property length 0",
            "e0 02 00 00",
            Packet::Disconnect(Disconnect::default()),
            "e0 00",
        ),
        (
            "disconnect 5.0 reason with property length 0",
            "e0 02 8e 00",
            Packet::Disconnect(Disconnect::new(DisconnectReasonCode::SessionTakenOver)),
            "e0 01 8e",
        ),
        (
            "auth 5.0 success with property length 0",
            "f0 02 00 00",
            Packet::Auth(Auth {
                reason_code: AuthReasonCode::Success,
                properties: Default::default(),
            }),
            "f0 00",
        ),
        (
            "publish 5.0 properties in another order",
            "30 0f 00 01 't' 09
               03 00 01 'j'      # content type first
               23 00 04          # topic alias
               01 00             # payload format: unspecified
             'pl'",
            Packet::Publish(Publish {
                properties: PublishProperties {
                    payload_format_indicator: Some(PayloadFormat::Unspecified),
                    topic_alias: Some(nz16(4)),
                    content_type: Some(s("j")),
                    ..Default::default()
                }
                .into(),
                ..publish("t", QosPid::AtMostOnce, b"pl")
            }),
            "30 0f 00 01 't' 09 01 00 23 00 04 03 00 01 'j' 'pl'",
        ),
    ];
    for (name, wire, packet, canonical) in cases {
        let wire = hex(wire);
        let canonical = hex(canonical);
        assert_eq!(decode_one(V5, &wire), Ok(packet.clone()), "{name}");
        assert_eq!(encode(V5, &packet), Ok(canonical.clone()), "{name}");
        assert_eq!(decode_one(V5, &canonical), Ok(packet), "{name}");
    }
}
