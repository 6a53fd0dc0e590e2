//! ntex-mqtt's codec (8.2.1): `v3::codec::Codec` (3.1.1) and `v5::codec::Codec` (5.0), driven
//! through `ntex_codec`'s `Encoder` and `Decoder` as ntex's own I/O drives them.
//!
//! Encoding is `Encoder::encodev` into a `BytePages`, ntex's write buffer, reused across
//! packets (`Encoder::encode` into a `BytesMut` is deprecated, and ntex-mqtt does not implement
//! it). `encodev` takes the packet by value, so each encode clones the built packet. A PUBLISH
//! goes as `Encoded::Publish` with its payload beside it: a payload over 4 KiB is appended as a
//! page of its own, uncopied; a smaller one is copied after the header.
//!
//! Decoding is `Decoder::decode` on an ntex `BytesMut`, which it splits: a PUBLISH comes back
//! as `Decoded::Publish` with its payload as a shared ntex `Bytes`, every other packet as
//! `Decoded::Packet`. ntex has its own `Bytes` types and no decoding entry that takes a
//! `bytes::Bytes` or a slice, so a single frame is copied into an ntex `BytesMut` inside the
//! timed decode (see [`decode_frame`]); the stream is copied into one outside the timed loop.

use std::num::NonZeroU16;

use bytes::Bytes;
use ntex_bytes::{BytePages, ByteString, BytesMut};
use ntex_codec::{Decoder, Encoder};
use ntex_mqtt::v3::codec as v3;
use ntex_mqtt::v5::codec as v5;
use ntex_mqtt::QoS;

use crate::codec::Codec;
use crate::message::{ConnectMessage, Message};

/// Spare room after the data in a decoder's input. After each packet the decoder reserves room
/// for the next fixed header (`reserve(5)` after a PUBLISH); in a buffer filled to its last byte
/// that copies whatever is left into a new, larger allocation. ntex's own read buffer is a page
/// with room to spare.
const HEADROOM: usize = 5;

fn qos(level: u8) -> QoS {
    QoS::try_from(level).expect("QoS level")
}

fn packet_id(id: u16) -> NonZeroU16 {
    NonZeroU16::new(id).expect("non-zero packet id")
}

fn string(s: &str) -> ByteString {
    ByteString::from(s)
}

fn ntex_bytes(b: &[u8]) -> ntex_bytes::Bytes {
    ntex_bytes::Bytes::copy_from_slice(b)
}

fn payload_size(payload: &[u8]) -> u32 {
    u32::try_from(payload.len()).expect("payload size")
}

/// The encoding side of one connection: the codec (`encodev` takes `&self`) and the write
/// buffer it appends to.
pub(crate) struct Writer<C> {
    codec: C,
    pages: BytePages,
}

/// A codec with an empty write buffer of ntex's default page size (16 KiB, what ntex's I/O
/// uses for writing); the pages grow as a packet needs.
fn new_writer<C: Default>() -> Writer<C> {
    Writer {
        codec: C::default(),
        pages: BytePages::default(),
    }
}

/// Encodes a clone of `packet` (`encodev` consumes it) after emptying the write buffer, which
/// stands for ntex's I/O taking every page for the socket write; returns the bytes buffered.
fn encode_into<C>(packet: &C::Item, writer: &mut Writer<C>) -> usize
where
    C: Encoder,
    C::Item: Clone,
{
    writer.pages.clear();
    writer
        .codec
        .encodev(packet.clone(), &mut writer.pages)
        .expect("encode");
    writer.pages.len()
}

/// The bytes one encode of `packet` buffers, pages joined.
fn encoded_bytes<C>(packet: &C::Item) -> Vec<u8>
where
    C: Encoder + Default,
    C::Item: Clone,
{
    let mut writer = new_writer::<C>();
    encode_into(packet, &mut writer);
    writer.pages.freeze().to_vec()
}

/// Decodes the single whole packet of `frame`.
///
/// The decoder consumes an ntex `BytesMut`, and there is no way to make one from a
/// `bytes::Bytes` without copying, so the copy (one allocation and a copy of the frame, the
/// stand-in for the socket read into ntex's read buffer) is timed along with the decoding.
fn decode_frame<C: Decoder>(codec: &C, frame: &Bytes) -> C::Item {
    let mut src = BytesMut::with_capacity(frame.len() + HEADROOM);
    src.extend_from_slice(frame);
    codec
        .decode(&mut src)
        .expect("decode")
        .expect("whole packet")
}

/// The stream in an ntex `BytesMut` with [`HEADROOM`] to spare.
fn stream_buffer(stream: &Bytes) -> BytesMut {
    let mut input = BytesMut::with_capacity(stream.len() + HEADROOM);
    input.extend_from_slice(stream);
    input
}

/// ntex-mqtt's 3.1.1 codec.
pub(crate) struct V3;

impl Codec for V3 {
    const NAME: &'static str = "ntex-mqtt";
    type Packet<'m> = v3::Encoded;
    type Buf = Writer<v3::Codec>;
    type State = v3::Codec;
    type Decoded<'a> = v3::Decoded;
    type StreamInput = BytesMut;

    fn build(message: &Message) -> Option<v3::Encoded> {
        Some(match message {
            Message::Publish {
                topic,
                qos: level,
                packet_id,
                payload,
            } => v3::Encoded::Publish(
                v3::Publish {
                    dup: false,
                    retain: false,
                    qos: qos(*level),
                    topic: string(topic),
                    packet_id: NonZeroU16::new(*packet_id),
                    payload_size: payload_size(payload),
                },
                Some(ntex_bytes(payload)),
            ),
            Message::Connect(m) => {
                v3::Encoded::Packet(v3::Packet::Connect(Box::new(v3::Connect {
                    clean_session: m.clean_start,
                    keep_alive: m.keep_alive,
                    last_will: Some(v3::LastWill {
                        qos: qos(m.will_qos),
                        retain: m.will_retain,
                        topic: string(&m.will_topic),
                        message: ntex_bytes(&m.will_payload),
                    }),
                    client_id: string(&m.client_id),
                    username: Some(string(&m.username)),
                    password: Some(ntex_bytes(m.password.as_bytes())),
                })))
            }
            Message::Subscribe {
                packet_id: id,
                filters,
            } => v3::Encoded::Packet(v3::Packet::Subscribe {
                packet_id: packet_id(*id),
                topic_filters: filters.iter().map(|(f, q)| (string(f), qos(*q))).collect(),
            }),
            Message::PubAck { packet_id: id } => v3::Encoded::Packet(v3::Packet::PublishAck {
                packet_id: packet_id(*id),
            }),
        })
    }

    fn new_buf(_capacity: usize) -> Writer<v3::Codec> {
        new_writer()
    }

    #[inline(always)]
    fn encode(packet: &v3::Encoded, buf: &mut Writer<v3::Codec>) -> usize {
        encode_into(packet, buf)
    }

    fn encoded(packet: &v3::Encoded) -> Vec<u8> {
        encoded_bytes::<v3::Codec>(packet)
    }

    fn new_state() -> v3::Codec {
        v3::Codec::new()
    }

    fn decode(codec: &mut v3::Codec, frame: &Bytes) -> v3::Decoded {
        decode_frame(codec, frame)
    }

    fn describe(decoded: &v3::Decoded) -> Message {
        match decoded {
            v3::Decoded::Publish(p, payload, _) => Message::Publish {
                topic: p.topic.to_string(),
                qos: u8::from(p.qos),
                packet_id: p.packet_id.map_or(0, NonZeroU16::get),
                payload: Bytes::copy_from_slice(payload),
            },
            v3::Decoded::Packet(v3::Packet::Connect(c), _) => {
                let will = c.last_will.as_ref().expect("will");
                Message::Connect(ConnectMessage {
                    client_id: c.client_id.to_string(),
                    keep_alive: c.keep_alive,
                    clean_start: c.clean_session,
                    username: c.username.as_ref().expect("user name").to_string(),
                    password: String::from_utf8(c.password.as_ref().expect("password").to_vec())
                        .expect("UTF-8 password"),
                    will_topic: will.topic.to_string(),
                    will_payload: Bytes::copy_from_slice(&will.message),
                    will_qos: u8::from(will.qos),
                    will_retain: will.retain,
                })
            }
            v3::Decoded::Packet(
                v3::Packet::Subscribe {
                    packet_id,
                    topic_filters,
                },
                _,
            ) => Message::Subscribe {
                packet_id: packet_id.get(),
                filters: topic_filters
                    .iter()
                    .map(|(f, q)| (f.to_string(), u8::from(*q)))
                    .collect(),
            },
            v3::Decoded::Packet(v3::Packet::PublishAck { packet_id }, _) => Message::PubAck {
                packet_id: packet_id.get(),
            },
            other => panic!("unexpected packet {other:?}"),
        }
    }

    fn stream_input(stream: &Bytes) -> BytesMut {
        stream_buffer(stream)
    }

    fn decode_stream(codec: &mut v3::Codec, mut input: BytesMut) -> (usize, usize) {
        let (mut packets, mut bytes) = (0, 0);
        while let Some(decoded) = codec.decode(&mut input).expect("decode") {
            if let v3::Decoded::Publish(_, payload, _) = decoded {
                bytes += payload.len();
            }
            packets += 1;
        }
        (packets, bytes)
    }
}

/// ntex-mqtt's 5.0 codec.
pub(crate) struct V5;

impl Codec for V5 {
    const NAME: &'static str = "ntex-mqtt";
    type Packet<'m> = v5::Encoded;
    type Buf = Writer<v5::Codec>;
    type State = v5::Codec;
    type Decoded<'a> = v5::Decoded;
    type StreamInput = BytesMut;

    fn build(message: &Message) -> Option<v5::Encoded> {
        Some(match message {
            Message::Publish {
                topic,
                qos: level,
                packet_id,
                payload,
            } => v5::Encoded::Publish(
                v5::Publish {
                    dup: false,
                    retain: false,
                    qos: qos(*level),
                    packet_id: NonZeroU16::new(*packet_id),
                    topic: string(topic),
                    payload_size: payload_size(payload),
                    properties: v5::PublishProperties::default(),
                },
                Some(ntex_bytes(payload)),
            ),
            Message::Connect(m) => {
                v5::Encoded::Packet(v5::Packet::Connect(Box::new(v5::Connect {
                    clean_start: m.clean_start,
                    keep_alive: m.keep_alive,
                    last_will: Some(v5::LastWill {
                        qos: qos(m.will_qos),
                        retain: m.will_retain,
                        topic: string(&m.will_topic),
                        message: ntex_bytes(&m.will_payload),
                        will_delay_interval_sec: None,
                        correlation_data: None,
                        message_expiry_interval: None,
                        content_type: None,
                        user_properties: Vec::new(),
                        is_utf8_payload: None,
                        response_topic: None,
                    }),
                    client_id: string(&m.client_id),
                    username: Some(string(&m.username)),
                    password: Some(ntex_bytes(m.password.as_bytes())),
                    ..v5::Connect::default()
                })))
            }
            Message::Subscribe {
                packet_id: id,
                filters,
            } => v5::Encoded::Packet(v5::Packet::Subscribe(v5::Subscribe {
                packet_id: packet_id(*id),
                id: None,
                user_properties: Vec::new(),
                topic_filters: filters
                    .iter()
                    .map(|(f, q)| {
                        let options = v5::SubscriptionOptions {
                            qos: qos(*q),
                            ..v5::SubscriptionOptions::default()
                        };
                        (string(f), options)
                    })
                    .collect(),
            })),
            Message::PubAck { packet_id: id } => {
                v5::Encoded::Packet(v5::Packet::PublishAck(v5::PublishAck {
                    packet_id: packet_id(*id),
                    ..v5::PublishAck::default()
                }))
            }
        })
    }

    fn new_buf(_capacity: usize) -> Writer<v5::Codec> {
        new_writer()
    }

    #[inline(always)]
    fn encode(packet: &v5::Encoded, buf: &mut Writer<v5::Codec>) -> usize {
        encode_into(packet, buf)
    }

    fn encoded(packet: &v5::Encoded) -> Vec<u8> {
        encoded_bytes::<v5::Codec>(packet)
    }

    fn new_state() -> v5::Codec {
        v5::Codec::new()
    }

    fn decode(codec: &mut v5::Codec, frame: &Bytes) -> v5::Decoded {
        decode_frame(codec, frame)
    }

    fn describe(decoded: &v5::Decoded) -> Message {
        match decoded {
            v5::Decoded::Publish(p, payload, _) => Message::Publish {
                topic: p.topic.to_string(),
                qos: u8::from(p.qos),
                packet_id: p.packet_id.map_or(0, NonZeroU16::get),
                payload: Bytes::copy_from_slice(payload),
            },
            v5::Decoded::Packet(v5::Packet::Connect(c), _) => {
                let will = c.last_will.as_ref().expect("will");
                Message::Connect(ConnectMessage {
                    client_id: c.client_id.to_string(),
                    keep_alive: c.keep_alive,
                    clean_start: c.clean_start,
                    username: c.username.as_ref().expect("user name").to_string(),
                    password: String::from_utf8(c.password.as_ref().expect("password").to_vec())
                        .expect("UTF-8 password"),
                    will_topic: will.topic.to_string(),
                    will_payload: Bytes::copy_from_slice(&will.message),
                    will_qos: u8::from(will.qos),
                    will_retain: will.retain,
                })
            }
            v5::Decoded::Packet(v5::Packet::Subscribe(s), _) => Message::Subscribe {
                packet_id: s.packet_id.get(),
                filters: s
                    .topic_filters
                    .iter()
                    .map(|(f, o)| (f.to_string(), u8::from(o.qos)))
                    .collect(),
            },
            v5::Decoded::Packet(v5::Packet::PublishAck(a), _) => Message::PubAck {
                packet_id: a.packet_id.get(),
            },
            other => panic!("unexpected packet {other:?}"),
        }
    }

    fn stream_input(stream: &Bytes) -> BytesMut {
        stream_buffer(stream)
    }

    fn decode_stream(codec: &mut v5::Codec, mut input: BytesMut) -> (usize, usize) {
        let (mut packets, mut bytes) = (0, 0);
        while let Some(decoded) = codec.decode(&mut input).expect("decode") {
            if let v5::Decoded::Publish(_, payload, _) = decoded {
                bytes += payload.len();
            }
            packets += 1;
        }
        (packets, bytes)
    }
}
