//! `mqttrs`: 3.1.1 only; packets borrow their strings and payload from the buffer.
//!
//! `decode_slice` does not say how many bytes it used, so stream decoding reads each packet's
//! length from its fixed header to step to the next one.

use bytes::Bytes;
use mqttrs::{
    decode_slice, encode_slice, Connect, LastWill, Packet, Pid, Protocol, Publish, QoS, QosPid,
    Subscribe, SubscribeTopic,
};

use crate::codec::Codec;
use crate::message::{ConnectMessage, Message};

fn qos(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn pid(id: u16) -> Pid {
    Pid::try_from(id).expect("non-zero packet id")
}

/// The size of the packet at the start of `buf`, from its fixed header.
pub(crate) fn frame_len(buf: &[u8]) -> usize {
    let mut remaining = 0;
    for (i, byte) in buf.iter().skip(1).take(4).enumerate() {
        remaining |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return 2 + i + remaining;
        }
    }
    panic!("malformed remaining length")
}

/// `mqttrs`.
pub(crate) struct Mqttrs;

impl Codec for Mqttrs {
    const NAME: &'static str = "mqttrs";
    type Packet<'m> = Packet<'m>;
    type Buf = Vec<u8>;
    type State = ();
    type Decoded<'a> = Packet<'a>;
    type StreamInput = Bytes;

    fn build(message: &Message) -> Option<Packet<'_>> {
        Some(match message {
            Message::Publish {
                topic,
                qos: level,
                packet_id,
                payload,
            } => Packet::Publish(Publish {
                dup: false,
                qospid: match level {
                    0 => QosPid::AtMostOnce,
                    1 => QosPid::AtLeastOnce(pid(*packet_id)),
                    _ => QosPid::ExactlyOnce(pid(*packet_id)),
                },
                retain: false,
                topic_name: topic,
                payload,
            }),
            Message::Connect(m) => Packet::Connect(Connect {
                protocol: Protocol::MQTT311,
                keep_alive: m.keep_alive,
                client_id: &m.client_id,
                clean_session: m.clean_start,
                last_will: Some(LastWill {
                    topic: &m.will_topic,
                    message: &m.will_payload,
                    qos: qos(m.will_qos),
                    retain: m.will_retain,
                }),
                username: Some(&m.username),
                password: Some(m.password.as_bytes()),
            }),
            Message::Subscribe { packet_id, filters } => Packet::Subscribe(Subscribe::new(
                pid(*packet_id),
                filters
                    .iter()
                    .map(|(f, q)| SubscribeTopic {
                        topic_path: f.clone(),
                        qos: qos(*q),
                    })
                    .collect(),
            )),
            Message::PubAck { packet_id } => Packet::Puback(pid(*packet_id)),
        })
    }

    fn new_buf(capacity: usize) -> Vec<u8> {
        vec![0; capacity]
    }

    #[inline(always)]
    fn encode(packet: &Packet<'_>, buf: &mut Vec<u8>) -> usize {
        encode_slice(packet, buf).expect("encode")
    }

    fn encoded(packet: &Packet<'_>) -> Vec<u8> {
        let mut buf = vec![0; 4 << 20];
        let len = Self::encode(packet, &mut buf);
        buf.truncate(len);
        buf
    }

    fn new_state() {}

    fn decode<'a>((): &mut (), frame: &'a Bytes) -> Packet<'a> {
        decode_slice(frame).expect("decode").expect("whole packet")
    }

    fn describe(packet: &Packet<'_>) -> Message {
        match packet {
            Packet::Publish(p) => Message::Publish {
                topic: p.topic_name.to_owned(),
                qos: p.qospid.qos() as u8,
                packet_id: p.qospid.pid().map_or(0, Pid::get),
                payload: Bytes::copy_from_slice(p.payload),
            },
            Packet::Connect(c) => {
                let will = c.last_will.as_ref().expect("will");
                Message::Connect(ConnectMessage {
                    client_id: c.client_id.to_owned(),
                    keep_alive: c.keep_alive,
                    clean_start: c.clean_session,
                    username: c.username.expect("user name").to_owned(),
                    password: String::from_utf8(c.password.expect("password").to_vec())
                        .expect("UTF-8 password"),
                    will_topic: will.topic.to_owned(),
                    will_payload: Bytes::copy_from_slice(will.message),
                    will_qos: will.qos as u8,
                    will_retain: will.retain,
                })
            }
            Packet::Subscribe(s) => Message::Subscribe {
                packet_id: s.pid.get(),
                filters: s
                    .topics
                    .iter()
                    .map(|t| (t.topic_path.clone(), t.qos as u8))
                    .collect(),
            },
            Packet::Puback(id) => Message::PubAck {
                packet_id: id.get(),
            },
            other => panic!("unexpected packet {other:?}"),
        }
    }

    fn stream_input(stream: &Bytes) -> Bytes {
        stream.clone()
    }

    fn decode_stream((): &mut (), input: Bytes) -> (usize, usize) {
        let (mut packets, mut bytes) = (0, 0);
        let mut rest = &input[..];
        while !rest.is_empty() {
            if let Packet::Publish(publish) = decode_slice(rest).expect("decode").expect("whole") {
                bytes += publish.payload.len();
            }
            rest = &rest[frame_len(rest)..];
            packets += 1;
        }
        (packets, bytes)
    }
}
