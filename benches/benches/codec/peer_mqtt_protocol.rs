//! `mqtt-protocol` (crate `mqtt`): 3.1.1 only; `Read`/`Write` based, owns its strings and
//! payload.

use std::io::Cursor;

use bytes::Bytes;
use mqtt::packet::{
    ConnectPacket, PubackPacket, PublishPacket, QoSWithPacketIdentifier, SubscribePacket,
    VariablePacket,
};
use mqtt::{Decodable, Encodable, QualityOfService, TopicFilter, TopicName};

use crate::codec::Codec;
use crate::message::{ConnectMessage, Message};

fn qos(level: u8) -> QualityOfService {
    match level {
        0 => QualityOfService::Level0,
        1 => QualityOfService::Level1,
        _ => QualityOfService::Level2,
    }
}

/// `mqtt-protocol`.
pub(crate) struct MqttProtocol;

impl Codec for MqttProtocol {
    const NAME: &'static str = "mqtt-protocol";
    type Packet<'m> = VariablePacket;
    type Buf = Vec<u8>;
    type State = ();
    type Decoded<'a> = VariablePacket;
    type StreamInput = Bytes;

    fn build(message: &Message) -> Option<VariablePacket> {
        Some(match message {
            Message::Publish {
                topic,
                qos: level,
                packet_id,
                payload,
            } => PublishPacket::new(
                TopicName::new(topic.as_str()).expect("topic"),
                QoSWithPacketIdentifier::new(qos(*level), *packet_id),
                payload.to_vec(),
            )
            .into(),
            Message::Connect(m) => {
                let mut connect = ConnectPacket::new(m.client_id.as_str());
                connect.set_keep_alive(m.keep_alive);
                connect.set_clean_session(m.clean_start);
                connect.set_will(Some((
                    TopicName::new(m.will_topic.as_str()).expect("will topic"),
                    m.will_payload.to_vec(),
                )));
                connect.set_will_qos(m.will_qos);
                connect.set_will_retain(m.will_retain);
                connect.set_user_name(Some(m.username.clone()));
                connect.set_password(Some(m.password.clone()));
                connect.into()
            }
            Message::Subscribe { packet_id, filters } => SubscribePacket::new(
                *packet_id,
                filters
                    .iter()
                    .map(|(f, q)| (TopicFilter::new(f.as_str()).expect("filter"), qos(*q)))
                    .collect(),
            )
            .into(),
            Message::PubAck { packet_id } => PubackPacket::new(*packet_id).into(),
        })
    }

    fn new_buf(capacity: usize) -> Vec<u8> {
        Vec::with_capacity(capacity)
    }

    #[inline(always)]
    fn encode(packet: &VariablePacket, buf: &mut Vec<u8>) -> usize {
        buf.clear();
        packet.encode(buf).expect("encode");
        buf.len()
    }

    fn encoded(packet: &VariablePacket) -> Vec<u8> {
        let mut buf = Vec::new();
        Self::encode(packet, &mut buf);
        buf
    }

    fn new_state() {}

    fn decode((): &mut (), frame: &Bytes) -> VariablePacket {
        VariablePacket::decode(&mut &frame[..]).expect("decode")
    }

    fn describe(packet: &VariablePacket) -> Message {
        match packet {
            VariablePacket::PublishPacket(p) => {
                let (level, packet_id) = p.qos().split();
                Message::Publish {
                    topic: p.topic_name().to_owned(),
                    qos: level as u8,
                    packet_id: packet_id.unwrap_or(0),
                    payload: Bytes::copy_from_slice(p.payload()),
                }
            }
            VariablePacket::ConnectPacket(c) => {
                let (will_topic, will_payload) = c.will().expect("will");
                Message::Connect(ConnectMessage {
                    client_id: c.client_identifier().to_owned(),
                    keep_alive: c.keep_alive(),
                    clean_start: c.clean_session(),
                    username: c.user_name().expect("user name").to_owned(),
                    password: c.password().expect("password").to_owned(),
                    will_topic: will_topic.to_owned(),
                    will_payload: Bytes::copy_from_slice(will_payload),
                    will_qos: c.will_qos(),
                    will_retain: c.will_retain(),
                })
            }
            VariablePacket::SubscribePacket(s) => Message::Subscribe {
                packet_id: s.packet_identifier(),
                filters: s
                    .subscribes()
                    .iter()
                    .map(|(f, q)| (f.to_string(), *q as u8))
                    .collect(),
            },
            VariablePacket::PubackPacket(a) => Message::PubAck {
                packet_id: a.packet_identifier(),
            },
            other => panic!("unexpected packet {other:?}"),
        }
    }

    fn stream_input(stream: &Bytes) -> Bytes {
        stream.clone()
    }

    fn decode_stream((): &mut (), input: Bytes) -> (usize, usize) {
        let (mut packets, mut bytes) = (0, 0);
        let mut reader = Cursor::new(&input[..]);
        while (reader.position() as usize) < input.len() {
            if let VariablePacket::PublishPacket(publish) =
                VariablePacket::decode(&mut reader).expect("decode")
            {
                bytes += publish.payload().len();
            }
            packets += 1;
        }
        (packets, bytes)
    }
}
