//! Codec benchmarks: this workspace's `mqtt-proto` against the codecs a user would otherwise
//! pick, case by case, each case one criterion group with one function per codec.
//!
//! Group names are `{encode,decode}/{case}/{version}`; function names are the codecs. Every
//! codec decodes the same bytes (ours' encoding), and each codec's result is checked once
//! against the expected message before it is timed. See `benches/README.md`.

mod codec;
mod message;
mod ours;
mod ours_ref;
mod peer_mqtt_proto;
mod peer_mqtt_protocol;
mod peer_mqttrs;
mod peer_ntex;
mod peer_protocol_core;
mod peer_rumqttc;

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, Throughput};

use crate::codec::{Codec, Visit};
use crate::message::Message;
use crate::ours::Ours;
use crate::ours_ref::OursRef;

/// Packets in the stream-decoding case.
const STREAM_PACKETS: usize = 10_000;
/// Payload size of each packet in the stream.
const STREAM_PAYLOAD: usize = 16;

/// A protocol version and the codecs that speak it.
#[derive(Clone, Copy)]
enum Version {
    V3_1_1,
    V5,
}

impl Version {
    fn label(self) -> &'static str {
        match self {
            Self::V3_1_1 => "v3.1.1",
            Self::V5 => "v5.0",
        }
    }

    /// Runs `visit` with every codec of this version, ours first.
    fn each_codec(self, visit: &mut impl Visit) {
        match self {
            Self::V3_1_1 => {
                visit.visit::<Ours<false>>();
                visit.visit::<OursRef<false>>();
                visit.visit::<peer_rumqttc::V4>();
                visit.visit::<peer_mqttrs::Mqttrs>();
                visit.visit::<peer_mqtt_protocol::MqttProtocol>();
                visit.visit::<peer_mqtt_proto::V3>();
                visit.visit::<peer_protocol_core::V3>();
                visit.visit::<peer_ntex::V3>();
            }
            Self::V5 => {
                visit.visit::<Ours<true>>();
                visit.visit::<OursRef<true>>();
                visit.visit::<peer_rumqttc::V5>();
                visit.visit::<peer_mqtt_proto::V5>();
                visit.visit::<peer_protocol_core::V5>();
                visit.visit::<peer_ntex::V5>();
            }
        }
    }

    /// `message` as our codec encodes it for this version.
    fn reference(self, message: &Message) -> Bytes {
        match self {
            Self::V3_1_1 => encoded::<Ours<false>>(message),
            Self::V5 => encoded::<Ours<true>>(message),
        }
    }

    /// What our codec reads from `bytes`, for checking another codec's encoding.
    fn read_back(self, bytes: &[u8]) -> Message {
        let frame = Bytes::copy_from_slice(bytes);
        match self {
            Self::V3_1_1 => read_back::<Ours<false>>(&frame),
            Self::V5 => read_back::<Ours<true>>(&frame),
        }
    }
}

fn encoded<C: Codec>(message: &Message) -> Bytes {
    let packet = C::build(message).expect("our codec expresses every case");
    Bytes::from(C::encoded(&packet))
}

fn read_back<C: Codec>(frame: &Bytes) -> Message {
    C::describe(&C::decode(&mut C::new_state(), frame))
}

/// Times encoding `message` with each codec.
struct Encode<'a, 'g> {
    group: &'a mut BenchmarkGroup<'g, WallTime>,
    version: Version,
    message: &'a Message,
    reference: &'a [u8],
}

impl Visit for Encode<'_, '_> {
    fn visit<C: Codec>(&mut self) {
        if !C::ENCODES {
            return;
        }
        let Some(packet) = C::build(self.message) else {
            return;
        };
        let bytes = C::encoded(&packet);
        assert_eq!(
            self.version.read_back(&bytes),
            *self.message,
            "{} encodes a different packet",
            C::NAME
        );
        if bytes != self.reference {
            let at = bytes
                .iter()
                .zip(self.reference)
                .take_while(|(a, b)| a == b)
                .count();
            eprintln!(
                "note: {} encodes {} {} in {} bytes, ours in {}; they differ from byte {at} on \
                 ({:02x?} against ours {:02x?})",
                C::NAME,
                self.version.label(),
                self.message.kind(),
                bytes.len(),
                self.reference.len(),
                &bytes[at..(at + 4).min(bytes.len())],
                &self.reference[at..(at + 4).min(self.reference.len())],
            );
        }
        let mut buf = C::new_buf(bytes.len());
        self.group.bench_function(C::NAME, |b| {
            b.iter(|| C::encode(black_box(&packet), &mut buf));
        });
    }
}

/// Times decoding one frame with each codec.
struct Decode<'a, 'g> {
    group: &'a mut BenchmarkGroup<'g, WallTime>,
    message: &'a Message,
    frame: &'a Bytes,
}

impl Visit for Decode<'_, '_> {
    fn visit<C: Codec>(&mut self) {
        if C::build(self.message).is_none() {
            return;
        }
        let frame = self.frame;
        let mut state = C::new_state();
        assert_eq!(
            C::describe(&C::decode(&mut state, frame)),
            *self.message,
            "{} decodes a different packet",
            C::NAME
        );
        // Decoded packets are dropped outside the timed loop.
        self.group.bench_function(C::NAME, |b| {
            b.iter_batched(
                || (),
                |()| C::decode(&mut state, black_box(frame)),
                BatchSize::SmallInput,
            );
        });
    }
}

/// Times decoding a stream of many packets with each codec.
struct DecodeStream<'a, 'g> {
    group: &'a mut BenchmarkGroup<'g, WallTime>,
    stream: &'a Bytes,
}

impl Visit for DecodeStream<'_, '_> {
    fn visit<C: Codec>(&mut self) {
        let stream = self.stream;
        let mut state = C::new_state();
        assert_eq!(
            C::decode_stream(&mut state, C::stream_input(stream)),
            (STREAM_PACKETS, STREAM_PACKETS * STREAM_PAYLOAD),
            "{} decodes a different stream",
            C::NAME
        );
        // Copying the stream into the codec's input buffer happens outside the timed loop.
        self.group.bench_function(C::NAME, |b| {
            b.iter_batched(
                || C::stream_input(stream),
                |input| C::decode_stream(&mut state, input),
                BatchSize::SmallInput,
            );
        });
    }
}

/// The single-packet cases.
fn cases() -> Vec<(&'static str, Message)> {
    vec![
        ("publish_qos0_16B", message::publish(0, 16)),
        ("publish_qos0_1KiB", message::publish(0, 1 << 10)),
        ("publish_qos0_64KiB", message::publish(0, 64 << 10)),
        ("publish_qos0_1MiB", message::publish(0, 1 << 20)),
        ("publish_qos1_1KiB", message::publish(1, 1 << 10)),
        ("connect", message::connect()),
        ("connect_long_username", message::connect_long_username()),
        ("subscribe_10", message::subscribe()),
        ("puback", message::puback()),
    ]
}

/// The stream cases: plain PUBLISH packets in both versions, and in 5.0 also PUBLISH packets
/// with properties.
fn streams(version: Version) -> Vec<(String, Bytes)> {
    let mut streams = vec![(
        format!("stream_{STREAM_PACKETS}_publish"),
        stream(&version.reference(&message::publish(0, STREAM_PAYLOAD))),
    )];
    if let Version::V5 = version {
        streams.push((
            format!("stream_{STREAM_PACKETS}_publish_props"),
            stream(&ours::publish_with_properties(message::payload(
                STREAM_PAYLOAD,
            ))),
        ));
    }
    streams
}

/// One buffer holding [`STREAM_PACKETS`] copies of `packet`.
fn stream(packet: &[u8]) -> Bytes {
    let mut stream = BytesMut::new();
    for _ in 0..STREAM_PACKETS {
        stream.extend_from_slice(packet);
    }
    stream.freeze()
}

fn codec_benches(c: &mut Criterion) {
    for version in [Version::V3_1_1, Version::V5] {
        for (case, message) in cases() {
            let reference = version.reference(&message);
            let throughput = Throughput::Bytes(reference.len() as u64);

            let mut group = c.benchmark_group(format!("encode/{case}/{}", version.label()));
            group.throughput(throughput.clone());
            version.each_codec(&mut Encode {
                group: &mut group,
                version,
                message: &message,
                reference: &reference,
            });
            group.finish();

            let mut group = c.benchmark_group(format!("decode/{case}/{}", version.label()));
            group.throughput(throughput);
            version.each_codec(&mut Decode {
                group: &mut group,
                message: &message,
                frame: &reference,
            });
            group.finish();
        }

        for (case, stream) in streams(version) {
            let mut group = c.benchmark_group(format!("decode/{case}/{}", version.label()));
            group.throughput(Throughput::Elements(STREAM_PACKETS as u64));
            version.each_codec(&mut DecodeStream {
                group: &mut group,
                stream: &stream,
            });
            group.finish();
        }
    }
}

/// Runs one benchmark's timed operation `iterations` times and nothing else, for counting its
/// instructions under `valgrind --tool=cachegrind` (see `benches/instructions.sh`).
struct Count<'a> {
    op: &'a str,
    version: Version,
    codec: &'a str,
    message: Option<&'a Message>,
    reference: &'a Bytes,
    iterations: usize,
    found: bool,
}

impl Visit for Count<'_> {
    // Each codec's loops in a function of their own, as criterion times them: inlined into
    // one function for every codec, a change to one codec moved another's counts (by up to
    // 60 instructions), through the inlining budget they shared.
    #[inline(never)]
    fn visit<C: Codec>(&mut self) {
        if C::NAME != self.codec {
            return;
        }
        let n = self.iterations;
        match (self.op, self.message) {
            ("encode", Some(_)) if !C::ENCODES => return,
            ("encode", Some(message)) => {
                let Some(packet) = C::build(message) else {
                    return;
                };
                let mut buf = C::new_buf(self.reference.len());
                for _ in 0..n {
                    black_box(C::encode(black_box(&packet), &mut buf));
                }
            }
            ("decode", Some(_)) => {
                let mut state = C::new_state();
                for _ in 0..n {
                    drop(black_box(C::decode(&mut state, black_box(self.reference))));
                }
            }
            ("decode", None) => {
                let mut state = C::new_state();
                let inputs: Vec<_> = (0..n).map(|_| C::stream_input(self.reference)).collect();
                for input in inputs {
                    black_box(C::decode_stream(&mut state, input));
                }
            }
            _ => return,
        }
        let _ = self.version;
        self.found = true;
    }
}

/// `CODEC_COUNT=op/case/version/codec CODEC_ITERATIONS=n`: see [`Count`].
fn count(id: &str, iterations: usize) {
    let parts: Vec<&str> = id.split('/').collect();
    let [op, case, version, codec] = parts[..] else {
        panic!("CODEC_COUNT is op/case/version/codec, not {id}");
    };
    let version = match version {
        "v3.1.1" => Version::V3_1_1,
        "v5.0" => Version::V5,
        other => panic!("unknown version {other}"),
    };
    let cases = cases();
    let stream = streams(version).into_iter().find(|(name, _)| name == case);
    let (message, reference) = if let Some((_, stream)) = stream {
        (None, stream)
    } else {
        let (_, message) = cases
            .iter()
            .find(|(name, _)| *name == case)
            .unwrap_or_else(|| panic!("unknown case {case}"));
        (Some(message), version.reference(message))
    };
    let mut visit = Count {
        op,
        version,
        codec,
        message,
        reference: &reference,
        iterations,
        found: false,
    };
    version.each_codec(&mut visit);
    assert!(visit.found, "no codec {codec} for {id}");
}

fn main() {
    if let Ok(id) = std::env::var("CODEC_COUNT") {
        let iterations = std::env::var("CODEC_ITERATIONS")
            .map_or(1, |n| n.parse().expect("CODEC_ITERATIONS is a number"));
        count(&id, iterations);
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    codec_benches(&mut criterion);
    criterion.final_summary();
}
