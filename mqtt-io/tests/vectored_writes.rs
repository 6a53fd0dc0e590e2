//! Writing the core's buffers to a byte stream: large payloads travel as the messages' own
//! bytes, and writes that take a few bytes at a time, with or without vectored IO, resume at
//! the right offset, so the stream is byte-exact.

use std::io::IoSlice;
use std::task::Poll;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use mqtt_io::{poll_write_transmit, poll_write_transmit_vectored};
use mqtt_session::client::{ClientCore, ClientOptions, Command, Step};
use mqtt_session::proto::{Decoder, Packet, ProtocolVersion, QoS};
use mqtt_session::{Message, PublishToken};

type Core = ClientCore<u32>;

/// A core online with CONNECT written and CONNACK read.
fn connected(version: ProtocolVersion) -> (Core, Instant) {
    let now = Instant::now();
    let options = ClientOptions::new("mqtt://h")
        .client_id("vectored")
        .version(version);
    let mut core = ClientCore::new(options).unwrap().0;
    assert!(matches!(core.step(), Step::Dial(_)));
    core.handle_connected(now);
    while let Some(bytes) = core.poll_transmit(now) {
        let n = bytes.len();
        core.handle_written(now, n);
    }
    let connack: &[u8] = if version.is_v5() {
        &[0x20, 0x03, 0x00, 0x00, 0x00]
    } else {
        &[0x20, 0x02, 0x00, 0x00]
    };
    core.handle_read(now, &mut BytesMut::from(connack));
    while core.poll_output().is_some() {}
    assert!(core.is_connected());
    (core, now)
}

/// Payloads below and above the split threshold, in an order that makes them interleave.
fn payloads() -> Vec<Bytes> {
    [10, 100_000, 3, 4096, 4095, 1, 70_000, 0, 4097, 5]
        .into_iter()
        .enumerate()
        .map(|(i, len)| Bytes::from((0..len).map(|j| (i * 31 + j * 7) as u8).collect::<Vec<_>>()))
        .collect()
}

/// Publishes every payload, QoS 0 and 1 in turn.
fn publish_all(core: &mut Core, now: Instant, payloads: &[Bytes]) {
    for (i, payload) in payloads.iter().enumerate() {
        let qos = if i % 2 == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        let message = Message::new(&format!("t/{i}"), payload.clone())
            .unwrap()
            .qos(qos);
        core.handle_command(
            now,
            Command::Publish {
                message,
                token: PublishToken(i as u64 + 1),
                waiter: Some(i as u32),
            },
        );
    }
}

/// How a stingy stream takes bytes.
#[derive(Clone, Copy, Debug)]
enum Stream {
    /// Up to `n` bytes across every buffer given (`writev`).
    Vectored(usize),
    /// Up to `n` bytes of the first non-empty buffer only (a stream without vectored IO).
    FirstBuffer(usize),
}

/// What one run wrote, and what it saw on the way.
struct Run {
    wire: Vec<u8>,
    /// The most buffers one write was given.
    most_slices: usize,
    /// Whether a write was given a buffer that is one of `payloads`' own bytes.
    saw_own_payload: usize,
}

/// Writes everything with the stream's rule, the size of each write cycling through 1..=7
/// times the unit.
fn drain(core: &mut Core, now: Instant, stream: Stream, payloads: &[Bytes]) -> Run {
    let mut run = Run {
        wire: Vec::new(),
        most_slices: 0,
        saw_own_payload: 0,
    };
    let mut seen = vec![false; payloads.len()];
    for turn in 0.. {
        let step = turn % 7 + 1;
        let write = |slices: &[IoSlice<'_>]| {
            run.most_slices = run.most_slices.max(slices.len());
            for s in slices {
                for (i, p) in payloads.iter().enumerate() {
                    if p.len() >= 4096 && s.as_ptr() == p.as_ptr() && s.len() == p.len() {
                        seen[i] = true;
                    }
                }
            }
            let (limit, slices) = match stream {
                Stream::Vectored(unit) => (unit * step, slices),
                Stream::FirstBuffer(unit) => (unit * step, &slices[..1]),
            };
            let mut taken = 0;
            for s in slices {
                let n = s.len().min(limit - taken);
                run.wire.extend_from_slice(&s[..n]);
                taken += n;
                if taken == limit {
                    break;
                }
            }
            Poll::Ready(Ok(taken))
        };
        match poll_write_transmit_vectored(core, now, write) {
            Poll::Ready(Ok(true)) => {}
            Poll::Ready(Ok(false)) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    run.saw_own_payload = seen.iter().filter(|s| **s).count();
    run
}

/// The stream a contiguous writer produces: one whole buffer per write.
fn reference(version: ProtocolVersion, payloads: &[Bytes]) -> Vec<u8> {
    let (mut core, now) = connected(version);
    publish_all(&mut core, now, payloads);
    let mut wire = Vec::new();
    loop {
        let write = |bytes: &[u8]| {
            wire.extend_from_slice(bytes);
            Poll::Ready(Ok(bytes.len()))
        };
        match poll_write_transmit(&mut core, now, write) {
            Poll::Ready(Ok(true)) => {}
            Poll::Ready(Ok(false)) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    wire
}

/// The packets of `wire`, which must be whole.
fn decode(version: ProtocolVersion, wire: &[u8]) -> Vec<Packet> {
    let decoder = Decoder::new(version);
    let mut buf = BytesMut::from(wire);
    let mut packets = Vec::new();
    while let Some(packet) = decoder.decode(&mut buf).unwrap() {
        packets.push(packet);
    }
    assert!(buf.is_empty(), "a packet was cut short");
    packets
}

#[test]
fn stingy_writes_interleave_large_and_small_packets_byte_exact() {
    let payloads = payloads();
    let large = payloads.iter().filter(|p| p.len() >= 4096).count();
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let expected = reference(version, &payloads);
        let packets = decode(version, &expected);
        let got: Vec<_> = packets
            .iter()
            .map(|p| match p {
                Packet::Publish(p) => p.payload.clone(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(got, payloads, "{version:?}: the messages, in order");
        for stream in [
            Stream::Vectored(1),
            Stream::Vectored(3),
            Stream::Vectored(4099),
            Stream::FirstBuffer(1),
            Stream::FirstBuffer(5),
            Stream::FirstBuffer(1 << 20),
        ] {
            let (mut core, now) = connected(version);
            publish_all(&mut core, now, &payloads);
            let run = drain(&mut core, now, stream, &payloads);
            assert!(
                run.wire == expected,
                "{version:?} {stream:?}: {} bytes written, {} expected",
                run.wire.len(),
                expected.len()
            );
            assert!(run.most_slices > 1, "{stream:?}: buffers were joined");
            assert_eq!(
                run.saw_own_payload, large,
                "{version:?} {stream:?}: a large payload was copied"
            );
            let answered = std::iter::from_fn(|| core.poll_output()).count();
            assert_eq!(
                answered,
                payloads.len().div_ceil(2),
                "QoS 0 answered once written"
            );
            assert_eq!(core.poll_transmit(now), None);
        }
    }
}

#[test]
fn a_64_mib_payload_reaches_the_write_as_the_messages_own_bytes() {
    let payload = Bytes::from(vec![0xA5u8; 64 << 20]);
    let (mut core, now) = connected(ProtocolVersion::V5);
    publish_all(&mut core, now, std::slice::from_ref(&payload));
    let mut slices = [IoSlice::new(&[]); 8];
    let filled = core.poll_transmit_vectored(now, &mut slices);
    assert_eq!(filled, 2, "header, then payload");
    assert_eq!(slices[1].as_ptr(), payload.as_ptr());
    assert_eq!(slices[1].len(), payload.len());
    let total = slices[0].len() + slices[1].len();
    core.handle_written(now, total);
    assert_eq!(core.poll_transmit(now), None);
}

#[test]
fn transmit_len_counts_every_byte_until_the_transport_takes_it() {
    let (mut core, now) = connected(ProtocolVersion::V5);
    assert_eq!(core.transmit_len(), 0);
    let payloads = payloads();
    publish_all(&mut core, now, &payloads);
    let waiting = core.transmit_len();
    assert_eq!(waiting, reference(ProtocolVersion::V5, &payloads).len());
    assert_eq!(core.transmit_len(), waiting, "asking moves nothing");
    let partial = |slices: &[IoSlice<'_>]| {
        assert!(slices.iter().map(|s| s.len()).sum::<usize>() >= 100);
        Poll::Ready(Ok(100))
    };
    assert!(matches!(
        poll_write_transmit_vectored(&mut core, now, partial),
        Poll::Ready(Ok(true))
    ));
    assert_eq!(core.transmit_len(), waiting - 100);
    let run = drain(&mut core, now, Stream::Vectored(4096), &payloads);
    assert_eq!(run.wire.len(), waiting - 100);
    assert_eq!(core.transmit_len(), 0);
}
