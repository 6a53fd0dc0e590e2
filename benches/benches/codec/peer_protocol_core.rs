//! `mqtt-protocol-core`: 3.1.1 (`v3_1_1`) and 5.0 (`v5_0`) packets.
//!
//! Its byte-stream entry is `PacketBuilder::feed`, which copies each packet's body into a
//! buffer of its own, followed by the packet type's `parse`; both count as decoding here.
//! Encoding uses `to_continuous_buffer`, which returns a new `Vec`.

use bytes::Bytes;
use mqtt_protocol_core::mqtt::common::Cursor;
use mqtt_protocol_core::mqtt::connection::{
    PacketBuildResult, PacketBuilder, PacketData, RawPacket,
};
use mqtt_protocol_core::mqtt::packet::{Qos, SubEntry, SubOpts};

use crate::codec::Codec;
use crate::message::{ConnectMessage, Message};

fn qos(level: u8) -> Qos {
    Qos::try_from(level).expect("QoS level")
}

/// The next whole packet in `cursor`.
fn next_raw(builder: &mut PacketBuilder, cursor: &mut Cursor<&[u8]>) -> RawPacket {
    match builder.feed(cursor) {
        PacketBuildResult::Complete(raw) => raw,
        PacketBuildResult::Incomplete => panic!("incomplete packet"),
        PacketBuildResult::Error(e) => panic!("decode: {e:?}"),
    }
}

/// One codec per protocol module; the two modules have the same shape.
macro_rules! protocol_core_codec {
    ($(#[$meta:meta])* $codec:ident, $module:ident) => {
        $(#[$meta])*
        pub(crate) struct $codec;

        /// The packets of this case, in the module's own types.
        pub(crate) mod $module {
            use mqtt_protocol_core::mqtt::packet::$module::{Connect, Puback, Publish, Subscribe};

            /// One of the packets the cases use.
            #[derive(Debug)]
            pub(crate) enum Packet {
                Publish(Publish),
                Connect(Connect),
                Subscribe(Subscribe),
                PubAck(Puback),
            }
        }

        impl Codec for $codec {
            const NAME: &'static str = "mqtt-protocol-core";
            type Packet<'m> = $module::Packet;
            type Buf = ();
            type State = PacketBuilder;
            type Decoded<'a> = $module::Packet;
            type StreamInput = Bytes;

            fn build(message: &Message) -> Option<$module::Packet> {
                use mqtt_protocol_core::mqtt::packet::$module::{Connect, Puback, Publish, Subscribe};
                Some(match message {
                    Message::Publish {
                        topic,
                        qos: level,
                        packet_id,
                        payload,
                    } => {
                        let mut builder = Publish::builder()
                            .topic_name(topic.as_str())
                            .expect("topic")
                            .qos(qos(*level))
                            .payload(payload.to_vec());
                        if *level > 0 {
                            builder = builder.packet_id(*packet_id);
                        }
                        $module::Packet::Publish(builder.build().expect("publish"))
                    }
                    Message::Connect(m) => $module::Packet::Connect(
                        Connect::builder()
                            .client_id(m.client_id.as_str())
                            .expect("client id")
                            .clean_start(m.clean_start)
                            .keep_alive(m.keep_alive)
                            .will_message(
                                m.will_topic.as_str(),
                                m.will_payload.to_vec(),
                                qos(m.will_qos),
                                m.will_retain,
                            )
                            .expect("will")
                            .user_name(m.username.as_str())
                            .expect("user name")
                            .password(m.password.as_bytes().to_vec())
                            .expect("password")
                            .build()
                            .expect("connect"),
                    ),
                    Message::Subscribe { packet_id, filters } => $module::Packet::Subscribe(
                        Subscribe::builder()
                            .packet_id(*packet_id)
                            .entries(
                                filters
                                    .iter()
                                    .map(|(f, q)| {
                                        SubEntry::new(f.as_str(), SubOpts::new().set_qos(qos(*q)))
                                            .expect("filter")
                                    })
                                    .collect::<Vec<_>>(),
                            )
                            .build()
                            .expect("subscribe"),
                    ),
                    Message::PubAck { packet_id } => $module::Packet::PubAck(
                        Puback::builder()
                            .packet_id(*packet_id)
                            .build()
                            .expect("puback"),
                    ),
                })
            }

            fn new_buf(_capacity: usize) {}


            #[inline(always)]
            fn encode(packet: &$module::Packet, (): &mut ()) -> usize {
                Self::encoded(packet).len()
            }

            fn encoded(packet: &$module::Packet) -> Vec<u8> {
                match packet {
                    $module::Packet::Publish(p) => p.to_continuous_buffer(),
                    $module::Packet::Connect(p) => p.to_continuous_buffer(),
                    $module::Packet::Subscribe(p) => p.to_continuous_buffer(),
                    $module::Packet::PubAck(p) => p.to_continuous_buffer(),
                }
            }

            fn new_state() -> PacketBuilder {
                PacketBuilder::new()
            }

            fn decode(builder: &mut PacketBuilder, frame: &Bytes) -> $module::Packet {
                let raw = next_raw(builder, &mut Cursor::new(&frame[..]));
                Self::parse(&raw)
            }

            fn describe(packet: &$module::Packet) -> Message {
                match packet {
                    $module::Packet::Publish(p) => Message::Publish {
                        topic: p.topic_name().to_owned(),
                        qos: p.qos() as u8,
                        packet_id: p.packet_id().unwrap_or(0),
                        payload: Bytes::copy_from_slice(p.payload().as_slice()),
                    },
                    $module::Packet::Connect(c) => Message::Connect(ConnectMessage {
                        client_id: c.client_id().to_owned(),
                        keep_alive: c.keep_alive(),
                        clean_start: c.clean_start(),
                        username: c.user_name().expect("user name").to_owned(),
                        password: String::from_utf8(c.password().expect("password").to_vec())
                            .expect("UTF-8 password"),
                        will_topic: c.will_topic().expect("will").to_owned(),
                        will_payload: Bytes::copy_from_slice(c.will_payload().expect("will")),
                        will_qos: c.will_qos() as u8,
                        will_retain: c.will_retain(),
                    }),
                    $module::Packet::Subscribe(s) => Message::Subscribe {
                        packet_id: s.packet_id(),
                        filters: s
                            .entries()
                            .iter()
                            .map(|e| (e.topic_filter().to_owned(), e.sub_opts().qos() as u8))
                            .collect(),
                    },
                    $module::Packet::PubAck(a) => Message::PubAck {
                        packet_id: a.packet_id(),
                    },
                }
            }

            fn stream_input(stream: &Bytes) -> Bytes {
                stream.clone()
            }

            fn decode_stream(builder: &mut PacketBuilder, input: Bytes) -> (usize, usize) {
                let (mut packets, mut bytes) = (0, 0);
                let mut cursor = Cursor::new(&input[..]);
                while (cursor.position() as usize) < input.len() {
                    let raw = next_raw(builder, &mut cursor);
                    if let $module::Packet::Publish(publish) = Self::parse(&raw) {
                        bytes += publish.payload().len();
                    }
                    packets += 1;
                }
                (packets, bytes)
            }
        }

        impl $codec {
            /// Parses a raw packet the way the crate's connection does.
            fn parse(raw: &RawPacket) -> $module::Packet {
                use mqtt_protocol_core::mqtt::packet::$module::{Connect, Puback, Publish, Subscribe};
                match (raw.packet_type(), &raw.data) {
                    (3, PacketData::Publish(body)) => $module::Packet::Publish(
                        Publish::parse(raw.flags(), body.clone()).expect("decode").0,
                    ),
                    (1, _) => $module::Packet::Connect(raw.parse_exact(Connect::parse).expect("decode")),
                    (8, _) => $module::Packet::Subscribe(raw.parse_exact(Subscribe::parse).expect("decode")),
                    (4, _) => $module::Packet::PubAck(raw.parse_exact(Puback::parse).expect("decode")),
                    (other, _) => panic!("unexpected packet type {other}"),
                }
            }
        }
    };
}

protocol_core_codec!(
    /// `mqtt-protocol-core` speaking 3.1.1.
    V3,
    v3_1_1
);
protocol_core_codec!(
    /// `mqtt-protocol-core` speaking 5.0.
    V5,
    v5_0
);
