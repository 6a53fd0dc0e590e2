//! What a kept message costs: decoded messages own about their own size, not the read buffer
//! they arrived in. Measured with a counting allocator, so the figures are exact and do not
//! depend on the machine.

use std::sync::Mutex;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use mqtt_proto::{Packet, ProtocolVersion, Publish, QoS, QosPid, TopicName};
use mqtt_session::{Config, Event, Message, Session, Transmit};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// One heap profiler at a time: the tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

/// Bytes allocated and not freed.
fn live() -> isize {
    dhat::HeapStats::get().curr_bytes as isize
}

fn connected_session() -> (Session, Instant) {
    let now = Instant::now();
    let mut session = Session::new(Config::new("memory").unwrap());
    session.handle_connected(now);
    session.poll_transmit(&mut BytesMut::new());
    session.handle_read(now, &[0x20, 0x02, 0x00, 0x00]);
    while session.poll_event().is_some() {}
    (session, now)
}

fn stream_of(count: u32, payload: usize) -> Vec<u8> {
    let mut wire = BytesMut::new();
    for i in 0..count {
        let mut body = i.to_be_bytes().to_vec();
        body.resize(payload, 0x5A);
        let p = Publish::new(
            TopicName::new("sensors/a").unwrap(),
            QosPid::AtMostOnce,
            body,
        );
        Packet::Publish(p)
            .encode(ProtocolVersion::V3_1_1, &mut wire)
            .unwrap();
    }
    wire.to_vec()
}

#[test]
fn keeping_one_message_in_a_hundred_costs_about_their_own_size() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _profiler = dhat::Profiler::builder().testing().build();
    const COUNT: u32 = 20_000;
    const PAYLOAD: usize = 1024;
    let wire = stream_of(COUNT, PAYLOAD);
    let (mut session, now) = connected_session();
    let before = live();
    let mut kept: Vec<Bytes> = Vec::new();
    // Reads of 64 KiB, as a driver makes them, handed over without copying.
    for chunk in wire.chunks(64 * 1024) {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        buf.extend_from_slice(chunk);
        session.handle_read_buf(now, &mut buf);
        while let Some(event) = session.poll_event() {
            if let Event::Message { publish, .. } = event {
                let index = u32::from_be_bytes(publish.payload[..4].try_into().unwrap());
                if index % 100 == 0 {
                    kept.push(publish.payload);
                }
            }
        }
    }
    assert_eq!(kept.len(), (COUNT / 100) as usize);
    let cost = live() - before;
    let own: usize = kept.iter().map(Bytes::len).sum();
    eprintln!(
        "{} kept payloads of {PAYLOAD} B: {own} B of payload, {cost} B live",
        kept.len()
    );
    // Each kept payload holds its frame (payload + ~16 B of header) and the bytes
    // bookkeeping; pinned 64 KiB read buffers would be 200 × 64 KiB = 12.8 MiB.
    assert!(
        cost < (own as isize) * 2 + 256 * 1024,
        "{cost} B live for {own} B kept"
    );
}

#[test]
fn a_large_message_costs_its_own_size_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _profiler = dhat::Profiler::builder().testing().build();
    const PAYLOAD: usize = 8 << 20;
    let wire = stream_of(1, PAYLOAD);
    let mut session = Session::new(Config::new("memory").unwrap());
    let now = Instant::now();
    session.handle_connected(now);
    session.poll_transmit(&mut BytesMut::new());
    session.handle_read(now, &[0x20, 0x02, 0x00, 0x00]);
    while session.poll_event().is_some() {}
    let before = live();
    let mut kept = None;
    let mut offset = 0;
    // Reads straight into the buffer the session offers, 64 KiB at a time.
    while offset < wire.len() {
        let (buf, limit) = session.read_buffer(64 * 1024);
        let n = limit.min(64 * 1024).min(wire.len() - offset);
        buf.extend_from_slice(&wire[offset..offset + n]);
        offset += n;
        session.handle_buffered(now);
        while let Some(event) = session.poll_event() {
            if let Event::Message { publish, .. } = event {
                kept = Some(publish.payload);
            }
        }
    }
    let kept = kept.expect("the message arrived");
    assert_eq!(kept.len(), PAYLOAD);
    let cost = live() - before;
    eprintln!("an {PAYLOAD} B message: {cost} B live");
    assert!(
        cost < PAYLOAD as isize + 256 * 1024,
        "{cost} B live for one {PAYLOAD} B message (a doubling buffer would hold up to twice)"
    );
}

/// Bytes allocated at the peak since the profiler started.
fn peak() -> isize {
    dhat::HeapStats::get().max_bytes as isize
}

#[test]
fn a_64_mib_publish_is_not_copied_on_its_way_out() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _profiler = dhat::Profiler::builder().testing().build();
    const PAYLOAD: usize = 64 << 20;
    let (mut session, now) = connected_session();
    let payload = Bytes::from(vec![0x5A; PAYLOAD]);
    let before = live();
    assert!(
        peak() <= before + 64 * 1024,
        "the payload is the peak so far"
    );

    // Handed out as buffers: the payload is the message's own bytes.
    let message = mqtt_session::Message::new("big", payload.clone()).unwrap();
    session.publish(now, message).unwrap();
    let mut chunks = Transmit::new();
    let sent = session.poll_transmit_chunks(&mut chunks);
    assert_eq!(sent, chunks.len());
    assert!(sent > PAYLOAD);
    assert!(chunks.chunks().any(|c| c.as_ptr() == payload.as_ptr()));
    let chunked = peak() - before;
    drop(chunks);

    // Joined into one buffer (`poll_transmit`), as every publish was before: one copy.
    let message = mqtt_session::Message::new("big", payload.clone()).unwrap();
    session.publish(now, message).unwrap();
    let mut joined = BytesMut::new();
    assert_eq!(session.poll_transmit(&mut joined), sent);
    let copied = peak() - before;
    eprintln!("a {PAYLOAD} B publish: peak +{chunked} B handed out as buffers, +{copied} B joined");
    assert!(
        chunked < 64 * 1024,
        "{chunked} B allocated for a {PAYLOAD} B publish handed out as buffers"
    );
    assert!(
        copied >= PAYLOAD as isize,
        "the joined path copies ({copied} B)"
    );
}

/// Heap blocks allocated so far.
fn blocks() -> u64 {
    dhat::HeapStats::get().total_blocks
}

/// Publishes `messages` one at a time through a connected 3.1.1 session, answering each flow
/// as the server would, and returns the heap blocks allocated on the way.
fn blocks_to_publish(session: &mut Session, now: Instant, messages: Vec<Message>) -> u64 {
    let mut out = BytesMut::with_capacity(4096);
    let mut answer = Vec::with_capacity(8);
    let before = blocks();
    for message in messages {
        let qos = message.qos;
        session.publish(now, message).unwrap();
        out.clear();
        session.poll_transmit(&mut out);
        // 0x3Q, remaining length, topic length (2), "sensors/a" (9), packet identifier.
        let id = out.get(13..15).map(|b| [b[0], b[1]]).unwrap_or_default();
        answer.clear();
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => answer.extend_from_slice(&[0x40, 0x02, id[0], id[1]]),
            QoS::ExactlyOnce => {
                session.handle_read(now, &[0x50, 0x02, id[0], id[1]]);
                out.clear();
                session.poll_transmit(&mut out);
                assert_eq!(out[..], [0x62, 0x02, id[0], id[1]], "PUBREL");
                answer.extend_from_slice(&[0x70, 0x02, id[0], id[1]]);
            }
        }
        session.handle_read(now, &answer);
        while session.poll_event().is_some() {}
    }
    blocks() - before
}

#[test]
fn publishing_allocates_nothing_per_message() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _profiler = dhat::Profiler::builder().testing().build();
    const COUNT: u64 = 2_000;
    let (mut session, now) = connected_session();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        // Messages are made before counting: what the application allocates is its own.
        let batch = |n: u64| -> Vec<Message> {
            (0..n)
                .map(|i| {
                    let payload = Bytes::from(i.to_be_bytes().to_vec());
                    Message::new("sensors/a", payload).unwrap().qos(qos)
                })
                .collect()
        };
        // A first batch grows the session's queues and maps to their working size.
        blocks_to_publish(&mut session, now, batch(100));
        let allocated = blocks_to_publish(&mut session, now, batch(COUNT));
        eprintln!("{qos:?}: {allocated} heap blocks for {COUNT} messages");
        // The topic and payload move from the message into the PUBLISH and its in-flight
        // record; nothing is copied, shared or boxed per message.
        assert!(
            allocated <= COUNT / 100,
            "{qos:?}: {allocated} heap blocks for {COUNT} messages"
        );
    }
}
