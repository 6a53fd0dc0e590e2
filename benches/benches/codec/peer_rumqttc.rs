//! rumqttc's `mqttbytes` codec: `v4` (3.1.1) and `v5` modules.
//!
//! `Packet::read` wants a `BytesMut` it can split; a single frame is decoded the same way from
//! a shared `Bytes`: `check` reads the fixed header, then the packet's own `read` parses it.

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::{self, v4, QoS};
use rumqttc::v5::mqttbytes::v5;
use rumqttc::v5::mqttbytes::QoS as QoS5;

use crate::codec::Codec;
use crate::message::{ConnectMessage, Message};

/// Large enough for every case.
const MAX: usize = 16 << 20;

fn qos(level: u8) -> QoS {
    mqttbytes::qos(level).expect("QoS level")
}

fn qos5(level: u8) -> QoS5 {
    rumqttc::v5::mqttbytes::qos(level).expect("QoS level")
}

/// rumqttc's 3.1.1 codec.
pub(crate) struct V4;

impl Codec for V4 {
    const NAME: &'static str = "rumqttc";
    type Packet<'m> = v4::Packet;
    type Buf = BytesMut;
    type State = ();
    type Decoded<'a> = v4::Packet;
    type StreamInput = BytesMut;

    fn build(message: &Message) -> Option<v4::Packet> {
        Some(match message {
            Message::Publish {
                topic,
                qos: level,
                packet_id,
                payload,
            } => {
                let mut publish =
                    v4::Publish::from_bytes(topic.as_str(), qos(*level), payload.clone());
                publish.pkid = *packet_id;
                v4::Packet::Publish(publish)
            }
            Message::Connect(m) => v4::Packet::Connect(v4::Connect {
                protocol: mqttbytes::Protocol::V4,
                keep_alive: m.keep_alive,
                client_id: m.client_id.clone(),
                clean_session: m.clean_start,
                last_will: Some(v4::LastWill {
                    topic: m.will_topic.clone(),
                    message: m.will_payload.clone(),
                    qos: qos(m.will_qos),
                    retain: m.will_retain,
                }),
                login: Some(v4::Login::new(m.username.as_str(), m.password.as_str())),
            }),
            Message::Subscribe { packet_id, filters } => {
                let mut subscribe = v4::Subscribe::new_many(
                    filters
                        .iter()
                        .map(|(f, q)| v4::SubscribeFilter::new(f.clone(), qos(*q))),
                );
                subscribe.pkid = *packet_id;
                v4::Packet::Subscribe(subscribe)
            }
            Message::PubAck { packet_id } => v4::Packet::PubAck(v4::PubAck::new(*packet_id)),
        })
    }

    fn new_buf(capacity: usize) -> BytesMut {
        BytesMut::with_capacity(capacity)
    }

    #[inline(always)]
    fn encode(packet: &v4::Packet, buf: &mut BytesMut) -> usize {
        buf.clear();
        packet.write(buf, MAX).expect("encode")
    }

    fn encoded(packet: &v4::Packet) -> Vec<u8> {
        let mut buf = BytesMut::new();
        Self::encode(packet, &mut buf);
        buf.to_vec()
    }

    fn new_state() {}

    fn decode((): &mut (), frame: &Bytes) -> v4::Packet {
        let header = mqttbytes::check(frame.iter(), MAX).expect("fixed header");
        let frame = frame.clone();
        match header.packet_type().expect("packet type") {
            mqttbytes::PacketType::Publish => {
                v4::Packet::Publish(v4::Publish::read(header, frame).expect("decode"))
            }
            mqttbytes::PacketType::Connect => {
                v4::Packet::Connect(v4::Connect::read(header, frame).expect("decode"))
            }
            mqttbytes::PacketType::Subscribe => {
                v4::Packet::Subscribe(v4::Subscribe::read(header, frame).expect("decode"))
            }
            mqttbytes::PacketType::PubAck => {
                v4::Packet::PubAck(v4::PubAck::read(header, frame).expect("decode"))
            }
            other => panic!("unexpected packet type {other:?}"),
        }
    }

    fn describe(packet: &v4::Packet) -> Message {
        match packet {
            v4::Packet::Publish(p) => Message::Publish {
                topic: p.topic.clone(),
                qos: p.qos as u8,
                packet_id: p.pkid,
                payload: p.payload.clone(),
            },
            v4::Packet::Connect(c) => {
                let will = c.last_will.as_ref().expect("will");
                let login = c.login.as_ref().expect("login");
                Message::Connect(ConnectMessage {
                    client_id: c.client_id.clone(),
                    keep_alive: c.keep_alive,
                    clean_start: c.clean_session,
                    username: login.username.clone(),
                    password: login.password.clone(),
                    will_topic: will.topic.clone(),
                    will_payload: will.message.clone(),
                    will_qos: will.qos as u8,
                    will_retain: will.retain,
                })
            }
            v4::Packet::Subscribe(s) => Message::Subscribe {
                packet_id: s.pkid,
                filters: s
                    .filters
                    .iter()
                    .map(|f| (f.path.clone(), f.qos as u8))
                    .collect(),
            },
            v4::Packet::PubAck(a) => Message::PubAck { packet_id: a.pkid },
            other => panic!("unexpected packet {other:?}"),
        }
    }

    fn stream_input(stream: &Bytes) -> BytesMut {
        BytesMut::from(&stream[..])
    }

    fn decode_stream((): &mut (), mut input: BytesMut) -> (usize, usize) {
        let (mut packets, mut bytes) = (0, 0);
        while !input.is_empty() {
            if let v4::Packet::Publish(publish) = v4::Packet::read(&mut input, MAX).expect("decode")
            {
                bytes += publish.payload.len();
            }
            packets += 1;
        }
        (packets, bytes)
    }
}

/// rumqttc's 5.0 codec.
pub(crate) struct V5;

impl Codec for V5 {
    const NAME: &'static str = "rumqttc";
    type Packet<'m> = v5::Packet;
    type Buf = BytesMut;
    type State = ();
    type Decoded<'a> = v5::Packet;
    type StreamInput = BytesMut;

    fn build(message: &Message) -> Option<v5::Packet> {
        Some(match message {
            Message::Publish {
                topic,
                qos: level,
                packet_id,
                payload,
            } => {
                let mut publish =
                    v5::Publish::new(topic.as_str(), qos5(*level), payload.clone(), None);
                publish.pkid = *packet_id;
                v5::Packet::Publish(publish)
            }
            Message::Connect(m) => v5::Packet::Connect(
                v5::Connect {
                    keep_alive: m.keep_alive,
                    client_id: m.client_id.clone(),
                    clean_start: m.clean_start,
                    properties: None,
                },
                Some(v5::LastWill::new(
                    m.will_topic.as_str(),
                    m.will_payload.to_vec(),
                    qos5(m.will_qos),
                    m.will_retain,
                    None,
                )),
                Some(v5::Login::new(m.username.as_str(), m.password.as_str())),
            ),
            Message::Subscribe { packet_id, filters } => {
                let mut subscribe = v5::Subscribe::new_many(
                    filters
                        .iter()
                        .map(|(f, q)| v5::Filter::new(f.as_str(), qos5(*q))),
                    None,
                );
                subscribe.pkid = *packet_id;
                v5::Packet::Subscribe(subscribe)
            }
            Message::PubAck { packet_id } => v5::Packet::PubAck(v5::PubAck::new(*packet_id, None)),
        })
    }

    fn new_buf(capacity: usize) -> BytesMut {
        BytesMut::with_capacity(capacity)
    }

    #[inline(always)]
    fn encode(packet: &v5::Packet, buf: &mut BytesMut) -> usize {
        buf.clear();
        packet.write(buf, None).expect("encode")
    }

    fn encoded(packet: &v5::Packet) -> Vec<u8> {
        let mut buf = BytesMut::new();
        Self::encode(packet, &mut buf);
        buf.to_vec()
    }

    fn new_state() {}

    fn decode((): &mut (), frame: &Bytes) -> v5::Packet {
        let header = v5::check(frame.iter(), None).expect("fixed header");
        let frame = frame.clone();
        match header.packet_type().expect("packet type") {
            v5::PacketType::Publish => {
                v5::Packet::Publish(v5::Publish::read(header, frame).expect("decode"))
            }
            v5::PacketType::Connect => {
                let (connect, will, login) = v5::Connect::read(header, frame).expect("decode");
                v5::Packet::Connect(connect, will, login)
            }
            v5::PacketType::Subscribe => {
                v5::Packet::Subscribe(v5::Subscribe::read(header, frame).expect("decode"))
            }
            v5::PacketType::PubAck => {
                v5::Packet::PubAck(v5::PubAck::read(header, frame).expect("decode"))
            }
            other => panic!("unexpected packet type {other:?}"),
        }
    }

    fn describe(packet: &v5::Packet) -> Message {
        match packet {
            v5::Packet::Publish(p) => Message::Publish {
                topic: String::from_utf8(p.topic.to_vec()).expect("UTF-8 topic"),
                qos: p.qos as u8,
                packet_id: p.pkid,
                payload: p.payload.clone(),
            },
            v5::Packet::Connect(c, will, login) => {
                let will = will.as_ref().expect("will");
                let login = login.as_ref().expect("login");
                Message::Connect(ConnectMessage {
                    client_id: c.client_id.clone(),
                    keep_alive: c.keep_alive,
                    clean_start: c.clean_start,
                    username: login.username.clone(),
                    password: login.password.clone(),
                    will_topic: String::from_utf8(will.topic.to_vec()).expect("UTF-8 topic"),
                    will_payload: will.message.clone(),
                    will_qos: will.qos as u8,
                    will_retain: will.retain,
                })
            }
            v5::Packet::Subscribe(s) => Message::Subscribe {
                packet_id: s.pkid,
                filters: s
                    .filters
                    .iter()
                    .map(|f| (f.path.clone(), f.qos as u8))
                    .collect(),
            },
            v5::Packet::PubAck(a) => Message::PubAck { packet_id: a.pkid },
            other => panic!("unexpected packet {other:?}"),
        }
    }

    fn stream_input(stream: &Bytes) -> BytesMut {
        BytesMut::from(&stream[..])
    }

    fn decode_stream((): &mut (), mut input: BytesMut) -> (usize, usize) {
        let (mut packets, mut bytes) = (0, 0);
        while !input.is_empty() {
            if let v5::Packet::Publish(publish) =
                v5::Packet::read(&mut input, None).expect("decode")
            {
                bytes += publish.payload.len();
            }
            packets += 1;
        }
        (packets, bytes)
    }
}
