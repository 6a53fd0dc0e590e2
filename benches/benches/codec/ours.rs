//! This workspace's codec, `mqtt-proto`.

use core::num::NonZeroU16;
use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use mqtt_proto::{
    Connect, Decoder, LastWill, MqttString, Packet, PacketId, ProtocolVersion, PubAck, Publish,
    QoS, QosPid, SegmentList, Subscribe, SubscribeProperties, Subscription, TopicFilter, TopicName,
    UserProperty,
};

use crate::codec::Codec;
use crate::message::{ConnectMessage, Message, TOPIC};

/// Our codec speaking 3.1.1 (`V5 = false`) or 5.0 (`V5 = true`).
pub(crate) struct Ours<const V5: bool>;

impl<const V5: bool> Ours<V5> {
    const VERSION: ProtocolVersion = if V5 {
        ProtocolVersion::V5
    } else {
        ProtocolVersion::V3_1_1
    };
}

fn qos(level: u8) -> QoS {
    QoS::from_u8(level).expect("QoS level")
}

fn packet_id(id: u16) -> PacketId {
    PacketId::new(id).expect("non-zero packet id")
}

impl<const V5: bool> Codec for Ours<V5> {
    const NAME: &'static str = "ours";
    type Packet<'m> = Packet;
    type Buf = SegmentList;
    type State = Decoder;
    type Decoded<'a> = Packet;
    type StreamInput = BytesMut;

    fn build(message: &Message) -> Option<Packet> {
        Some(match message {
            Message::Publish {
                topic,
                qos: level,
                packet_id: id,
                payload,
            } => {
                let qos_pid = match level {
                    0 => QosPid::AtMostOnce,
                    _ => QosPid::from_qos(qos(*level), packet_id(*id)),
                };
                let topic = TopicName::new(topic).expect("topic");
                Packet::Publish(Publish::new(topic, qos_pid, payload.clone()))
            }
            Message::Connect(m) => {
                let client_id = MqttString::new(&m.client_id).expect("client id");
                let mut connect = Connect::new(Self::VERSION, client_id, m.keep_alive);
                connect.clean_start = m.clean_start;
                connect.username = Some(MqttString::new(&m.username).expect("user name"));
                connect.password = Some(Bytes::copy_from_slice(m.password.as_bytes()));
                connect.will = Some(LastWill {
                    topic: TopicName::new(&m.will_topic).expect("will topic"),
                    payload: m.will_payload.clone(),
                    qos: qos(m.will_qos),
                    retain: m.will_retain,
                    properties: Default::default(),
                });
                Packet::from(connect)
            }
            Message::Subscribe {
                packet_id: id,
                filters,
            } => Packet::Subscribe(Subscribe {
                packet_id: packet_id(*id),
                properties: SubscribeProperties::default(),
                filters: filters
                    .iter()
                    .map(|(f, q)| Subscription::new(TopicFilter::new(f).expect("filter"), qos(*q)))
                    .collect(),
            }),
            Message::PubAck { packet_id: id } => Packet::PubAck(PubAck::new(packet_id(*id))),
        })
    }

    fn new_buf(capacity: usize) -> SegmentList {
        SegmentList::with_capacity(capacity)
    }

    #[inline(always)]
    fn encode(packet: &Packet, out: &mut SegmentList) -> usize {
        out.clear();
        // A large PUBLISH payload or CONNECT field is handed over uncopied, for a vectored
        // write.
        let size = packet.encode_vectored(Self::VERSION, out).expect("encode");
        black_box(&out.sealed);
        size
    }

    fn encoded(packet: &Packet) -> Vec<u8> {
        let mut out = Self::new_buf(0);
        packet
            .encode_vectored(Self::VERSION, &mut out)
            .expect("encode");
        out.to_vec()
    }

    fn new_state() -> Decoder {
        Decoder::new(Self::VERSION)
    }

    fn decode(decoder: &mut Decoder, frame: &Bytes) -> Packet {
        decoder.decode_frame(frame).expect("decode")
    }

    fn describe(packet: &Packet) -> Message {
        describe(packet)
    }

    fn stream_input(stream: &Bytes) -> BytesMut {
        BytesMut::from(&stream[..])
    }

    fn decode_stream(decoder: &mut Decoder, mut input: BytesMut) -> (usize, usize) {
        let (mut packets, mut bytes) = (0, 0);
        while let Some(packet) = decoder.decode(&mut input).expect("decode") {
            if let Packet::Publish(publish) = packet {
                bytes += publish.payload.len();
            }
            packets += 1;
        }
        (packets, bytes)
    }
}

/// What one of our packets says; also used to check what the peers encode.
pub(crate) fn describe(packet: &Packet) -> Message {
    match packet {
        Packet::Publish(p) => Message::Publish {
            topic: p.topic.to_string(),
            qos: p.qos() as u8,
            packet_id: p.packet_id().map_or(0, PacketId::get),
            payload: p.payload.clone(),
        },
        Packet::Connect(c) => {
            let will = c.will.as_ref().expect("will");
            Message::Connect(ConnectMessage {
                client_id: c.client_id.to_string(),
                keep_alive: c.keep_alive,
                clean_start: c.clean_start,
                username: c.username.as_ref().expect("user name").to_string(),
                password: String::from_utf8(c.password.as_ref().expect("password").to_vec())
                    .expect("UTF-8 password"),
                will_topic: will.topic.to_string(),
                will_payload: will.payload.clone(),
                will_qos: will.qos as u8,
                will_retain: will.retain,
            })
        }
        Packet::Subscribe(s) => Message::Subscribe {
            packet_id: s.packet_id.get(),
            filters: s
                .filters
                .iter()
                .map(|sub| (sub.filter.to_string(), sub.options.qos as u8))
                .collect(),
        },
        Packet::PubAck(a) => Message::PubAck {
            packet_id: a.packet_id.get(),
        },
        other => panic!("unexpected packet {other:?}"),
    }
}

/// A 5.0 QoS 0 PUBLISH of `payload` to [`TOPIC`] with the properties real traffic carries: a
/// Topic Alias (sent with the topic, as a sender that sets the alias up does), a Message Expiry
/// Interval and two User Properties.
pub(crate) fn publish_with_properties(payload: Bytes) -> Bytes {
    let topic = TopicName::new(TOPIC).expect("topic");
    let mut publish = Publish::new(topic, QosPid::AtMostOnce, payload);
    publish.properties.topic_alias = NonZeroU16::new(1);
    publish.properties.message_expiry_interval = Some(3600);
    let user = |name: &str, value: &str| {
        UserProperty::new(
            MqttString::new(name).expect("name"),
            MqttString::new(value).expect("value"),
        )
    };
    publish.properties.user_properties = vec![
        user("trace-id", "4bf92f3577b34da6a3ce929d0e0e4736"),
        user("source", "building-7/floor-3"),
    ];
    let mut buf = BytesMut::new();
    Packet::Publish(publish)
        .encode(ProtocolVersion::V5, &mut buf)
        .expect("encode");
    buf.freeze()
}
