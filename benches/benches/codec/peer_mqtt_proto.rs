//! `mqtt-proto` 0.4 from crates.io (renamed `peer-mqtt-proto` here): `v3` and `v5` modules.
//!
//! `Packet::decode(&[u8])` does not say how many bytes it used, so stream decoding reads each
//! packet's size with the crate's own `Header::decode` and `total_len` to step to the next one.

use std::sync::Arc;

use bytes::Bytes;
use peer_mqtt_proto::{total_len, v3, v5, Pid, QoS, QosPid, TopicFilter, TopicName};

use crate::codec::Codec;
use crate::message::{ConnectMessage, Message};

fn qos(level: u8) -> QoS {
    QoS::from_u8(level).expect("QoS level")
}

fn pid(id: u16) -> Pid {
    Pid::try_from(id).expect("non-zero packet id")
}

fn qos_pid(level: u8, id: u16) -> QosPid {
    match level {
        0 => QosPid::Level0,
        1 => QosPid::Level1(pid(id)),
        _ => QosPid::Level2(pid(id)),
    }
}

fn topic(name: &str) -> TopicName {
    TopicName::try_from(name).expect("topic")
}

fn filter(filter: &str) -> TopicFilter {
    TopicFilter::try_from(filter).expect("filter")
}

/// `mqtt-proto` 0.4 speaking 3.1.1.
pub(crate) struct V3;

impl Codec for V3 {
    const NAME: &'static str = "mqtt-proto 0.4";
    type Packet<'m> = v3::Packet;
    type Buf = ();
    type State = ();
    type Decoded<'a> = v3::Packet;
    type StreamInput = Bytes;

    fn build(message: &Message) -> Option<v3::Packet> {
        Some(match message {
            Message::Publish {
                topic: name,
                qos: level,
                packet_id,
                payload,
            } => v3::Packet::Publish(v3::Publish::new(
                qos_pid(*level, *packet_id),
                topic(name),
                payload.clone(),
            )),
            Message::Connect(m) => {
                let mut connect = v3::Connect::new(Arc::from(m.client_id.as_str()), m.keep_alive);
                connect.clean_session = m.clean_start;
                let mut will = v3::LastWill::new(
                    qos(m.will_qos),
                    topic(&m.will_topic),
                    m.will_payload.clone(),
                );
                will.retain = m.will_retain;
                connect.last_will = Some(will);
                connect.username = Some(Arc::from(m.username.as_str()));
                connect.password = Some(Bytes::copy_from_slice(m.password.as_bytes()));
                v3::Packet::Connect(connect)
            }
            Message::Subscribe { packet_id, filters } => v3::Packet::Subscribe(v3::Subscribe::new(
                pid(*packet_id),
                filters.iter().map(|(f, q)| (filter(f), qos(*q))).collect(),
            )),
            Message::PubAck { packet_id } => v3::Packet::Puback(pid(*packet_id)),
        })
    }

    fn new_buf(_capacity: usize) {}

    /// The crate encodes into a buffer of its own making; there is no API that reuses one.
    #[inline(always)]
    fn encode(packet: &v3::Packet, (): &mut ()) -> usize {
        packet.encode().expect("encode").as_ref().len()
    }

    fn encoded(packet: &v3::Packet) -> Vec<u8> {
        packet.encode().expect("encode").as_ref().to_vec()
    }

    fn new_state() {}

    fn decode((): &mut (), frame: &Bytes) -> v3::Packet {
        v3::Packet::decode(frame)
            .expect("decode")
            .expect("whole packet")
    }

    fn describe(packet: &v3::Packet) -> Message {
        match packet {
            v3::Packet::Publish(p) => Message::Publish {
                topic: p.topic_name.to_string(),
                qos: p.qos_pid.qos() as u8,
                packet_id: p.qos_pid.pid().map_or(0, Pid::value),
                payload: p.payload.clone(),
            },
            v3::Packet::Connect(c) => {
                let will = c.last_will.as_ref().expect("will");
                Message::Connect(ConnectMessage {
                    client_id: c.client_id.to_string(),
                    keep_alive: c.keep_alive,
                    clean_start: c.clean_session,
                    username: c.username.as_ref().expect("user name").to_string(),
                    password: String::from_utf8(c.password.as_ref().expect("password").to_vec())
                        .expect("UTF-8 password"),
                    will_topic: will.topic_name.to_string(),
                    will_payload: will.message.clone(),
                    will_qos: will.qos as u8,
                    will_retain: will.retain,
                })
            }
            v3::Packet::Subscribe(s) => Message::Subscribe {
                packet_id: s.pid.value(),
                filters: s
                    .topics
                    .iter()
                    .map(|(f, q)| (f.to_string(), *q as u8))
                    .collect(),
            },
            v3::Packet::Puback(id) => Message::PubAck {
                packet_id: id.value(),
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
            let packet = v3::Packet::decode(rest)
                .expect("decode")
                .expect("whole packet");
            if let v3::Packet::Publish(publish) = packet {
                bytes += publish.payload.len();
            }
            let header = v3::Header::decode(rest).expect("fixed header");
            rest = &rest[total_len(header.remaining_len as usize).expect("size")..];
            packets += 1;
        }
        (packets, bytes)
    }
}

/// `mqtt-proto` 0.4 speaking 5.0.
pub(crate) struct V5;

impl Codec for V5 {
    const NAME: &'static str = "mqtt-proto 0.4";
    type Packet<'m> = v5::Packet;
    type Buf = ();
    type State = ();
    type Decoded<'a> = v5::Packet;
    type StreamInput = Bytes;

    fn build(message: &Message) -> Option<v5::Packet> {
        Some(match message {
            Message::Publish {
                topic: name,
                qos: level,
                packet_id,
                payload,
            } => v5::Packet::Publish(v5::Publish::new(
                qos_pid(*level, *packet_id),
                topic(name),
                payload.clone(),
            )),
            Message::Connect(m) => {
                let mut connect = v5::Connect::new(Arc::from(m.client_id.as_str()), m.keep_alive);
                connect.clean_start = m.clean_start;
                let mut will = v5::LastWill::new(
                    qos(m.will_qos),
                    topic(&m.will_topic),
                    m.will_payload.clone(),
                );
                will.retain = m.will_retain;
                connect.last_will = Some(will);
                connect.username = Some(Arc::from(m.username.as_str()));
                connect.password = Some(Bytes::copy_from_slice(m.password.as_bytes()));
                v5::Packet::Connect(connect)
            }
            Message::Subscribe { packet_id, filters } => v5::Packet::Subscribe(v5::Subscribe::new(
                pid(*packet_id),
                filters
                    .iter()
                    .map(|(f, q)| {
                        // `new` asks for retain-as-published; the case leaves every option off.
                        let mut options = v5::SubscriptionOptions::new(qos(*q));
                        options.retain_as_published = false;
                        (filter(f), options)
                    })
                    .collect(),
            )),
            Message::PubAck { packet_id } => {
                v5::Packet::Puback(v5::Puback::new_success(pid(*packet_id)))
            }
        })
    }

    fn new_buf(_capacity: usize) {}

    /// The crate encodes into a buffer of its own making; there is no API that reuses one.
    #[inline(always)]
    fn encode(packet: &v5::Packet, (): &mut ()) -> usize {
        packet.encode().expect("encode").as_ref().len()
    }

    fn encoded(packet: &v5::Packet) -> Vec<u8> {
        packet.encode().expect("encode").as_ref().to_vec()
    }

    fn new_state() {}

    fn decode((): &mut (), frame: &Bytes) -> v5::Packet {
        v5::Packet::decode(frame)
            .expect("decode")
            .expect("whole packet")
    }

    fn describe(packet: &v5::Packet) -> Message {
        match packet {
            v5::Packet::Publish(p) => Message::Publish {
                topic: p.topic_name.to_string(),
                qos: p.qos_pid.qos() as u8,
                packet_id: p.qos_pid.pid().map_or(0, Pid::value),
                payload: p.payload.clone(),
            },
            v5::Packet::Connect(c) => {
                let will = c.last_will.as_ref().expect("will");
                Message::Connect(ConnectMessage {
                    client_id: c.client_id.to_string(),
                    keep_alive: c.keep_alive,
                    clean_start: c.clean_start,
                    username: c.username.as_ref().expect("user name").to_string(),
                    password: String::from_utf8(c.password.as_ref().expect("password").to_vec())
                        .expect("UTF-8 password"),
                    will_topic: will.topic_name.to_string(),
                    will_payload: will.payload.clone(),
                    will_qos: will.qos as u8,
                    will_retain: will.retain,
                })
            }
            v5::Packet::Subscribe(s) => Message::Subscribe {
                packet_id: s.pid.value(),
                filters: s
                    .topics
                    .iter()
                    .map(|(f, o)| (f.to_string(), o.max_qos as u8))
                    .collect(),
            },
            v5::Packet::Puback(a) => Message::PubAck {
                packet_id: a.pid.value(),
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
            let packet = v5::Packet::decode(rest)
                .expect("decode")
                .expect("whole packet");
            if let v5::Packet::Publish(publish) = packet {
                bytes += publish.payload.len();
            }
            let header = v5::Header::decode(rest).expect("fixed header");
            rest = &rest[total_len(header.remaining_len as usize).expect("size")..];
            packets += 1;
        }
        (packets, bytes)
    }
}
