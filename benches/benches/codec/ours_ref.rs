//! This workspace's codec through its borrowed view, `Decoder::decode_frame_ref` and
//! `Decoder::decode_ref`: the packet borrows the input, with no allocation and no reference
//! count, and is checked exactly as the owned decoder checks it. Encoding is the owned codec's,
//! so this column has decode rows only.

use bytes::Bytes;
use mqtt_proto::{Decoder, Packet, PacketId, PacketRef, SegmentList};

use crate::codec::Codec;
use crate::message::{ConnectMessage, Message};
use crate::ours::Ours;

/// Our borrowed view speaking 3.1.1 (`V5 = false`) or 5.0 (`V5 = true`).
pub(crate) struct OursRef<const V5: bool>;

impl<const V5: bool> Codec for OursRef<V5> {
    const NAME: &'static str = "ours (borrowed)";
    const ENCODES: bool = false;
    type Packet<'m> = Packet;
    type Buf = SegmentList;
    type State = Decoder;
    type Decoded<'a> = PacketRef<'a>;
    type StreamInput = Bytes;

    fn build(message: &Message) -> Option<Packet> {
        Ours::<V5>::build(message)
    }

    fn new_buf(capacity: usize) -> SegmentList {
        Ours::<V5>::new_buf(capacity)
    }

    fn encode(packet: &Packet, buf: &mut SegmentList) -> usize {
        Ours::<V5>::encode(packet, buf)
    }

    fn encoded(packet: &Packet) -> Vec<u8> {
        Ours::<V5>::encoded(packet)
    }

    fn new_state() -> Decoder {
        Ours::<V5>::new_state()
    }

    fn decode<'a>(decoder: &mut Decoder, frame: &'a Bytes) -> PacketRef<'a> {
        decoder.decode_frame_ref(frame).expect("decode")
    }

    fn describe(packet: &PacketRef<'_>) -> Message {
        match packet {
            PacketRef::Publish(p) => Message::Publish {
                topic: p.topic.to_owned(),
                qos: p.qos_pid.qos() as u8,
                packet_id: p.qos_pid.packet_id().map_or(0, PacketId::get),
                payload: Bytes::copy_from_slice(p.payload),
            },
            PacketRef::Connect(c) => {
                let will = c.will.as_ref().expect("will");
                Message::Connect(ConnectMessage {
                    client_id: c.client_id.to_owned(),
                    keep_alive: c.keep_alive,
                    clean_start: c.clean_start,
                    username: c.username.expect("user name").to_owned(),
                    password: String::from_utf8(c.password.expect("password").to_vec())
                        .expect("UTF-8 password"),
                    will_topic: will.topic.to_owned(),
                    will_payload: Bytes::copy_from_slice(will.payload),
                    will_qos: will.qos as u8,
                    will_retain: will.retain,
                })
            }
            PacketRef::Subscribe(s) => Message::Subscribe {
                packet_id: s.packet_id.get(),
                filters: s
                    .filters
                    .into_iter()
                    .map(|(filter, options)| (filter.to_owned(), options.qos as u8))
                    .collect(),
            },
            PacketRef::PubAck(a) => Message::PubAck {
                packet_id: a.packet_id.get(),
            },
            other => panic!("unexpected packet {other:?}"),
        }
    }

    fn stream_input(stream: &Bytes) -> Bytes {
        stream.clone()
    }

    fn decode_stream(decoder: &mut Decoder, input: Bytes) -> (usize, usize) {
        let (mut packets, mut bytes) = (0, 0);
        let mut rest = &input[..];
        while let Some((packet, used)) = decoder.decode_ref(rest).expect("decode") {
            if let PacketRef::Publish(publish) = packet {
                bytes += publish.payload.len();
            }
            packets += 1;
            rest = rest.get(used..).unwrap_or_default();
        }
        (packets, bytes)
    }
}
