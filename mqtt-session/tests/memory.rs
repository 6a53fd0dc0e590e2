//! What a kept message costs: decoded messages own about their own size, not the read buffer
//! they arrived in. Measured with a counting allocator, so the figures are exact and do not
//! depend on the machine.

use std::sync::Mutex;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use mqtt_proto::{Decoder, Packet, ProtocolVersion, Publish, QoS, QosPid, TopicName};
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

/// Hands `wire` to the session in reads of 64 KiB, as a driver makes them, without copying,
/// and each message received to `each`.
fn read_in_64k(session: &mut Session, now: Instant, wire: &[u8], mut each: impl FnMut(Publish)) {
    for chunk in wire.chunks(64 * 1024) {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        buf.extend_from_slice(chunk);
        session.handle_read_buf(now, &mut buf);
        while let Some(event) = session.poll_event() {
            if let Event::Message { publish, .. } = event {
                each(publish);
            }
        }
    }
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
    read_in_64k(&mut session, now, &wire, |publish| {
        let index = u32::from_be_bytes(publish.payload[..4].try_into().unwrap());
        if index % 100 == 0 {
            kept.push(publish.payload);
        }
    });
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
fn a_small_received_message_takes_one_heap_block() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _profiler = dhat::Profiler::builder().testing().build();
    const COUNT: u32 = 20_000;
    const KEEP_EVERY: u32 = 200;
    for payload in [8, 64, 200, 1024] {
        let wire = stream_of(COUNT, payload);
        let (mut session, now) = connected_session();
        session.release_memory();
        let (live_before, blocks_before) = (live(), blocks());
        let mut kept: Vec<Publish> = Vec::with_capacity((COUNT / KEEP_EVERY) as usize);
        let mut taken = 0;
        read_in_64k(&mut session, now, &wire, |publish| {
            if taken % KEEP_EVERY == 0 {
                kept.push(publish);
            }
            taken += 1;
        });
        assert_eq!(taken, COUNT);
        let allocated = blocks() - blocks_before;
        session.release_memory();
        let cost = live() - live_before;
        let own: usize = kept.iter().map(|p| p.payload.len()).sum();
        eprintln!(
            "{payload} B payloads: {allocated} heap blocks for {COUNT} messages; {} kept, {own} B \
             of payload, {cost} B live",
            kept.len()
        );
        // Each frame is copied out of the read buffer into one allocation that also holds the
        // reference count its topic and payload share; a frame up to 256 bytes goes into a size
        // class of 32–256 bytes, a larger one into a `Vec` of its size plus the shared count.
        // The margin is for the reads (a frame cut by the end of one is gathered in the
        // reader's buffer) and the test harness's other threads.
        let per_message = if payload + 16 <= 256 { 1 } else { 2 };
        let reads = wire.len().div_ceil(64 * 1024) as u64;
        assert!(
            allocated <= u64::from(COUNT) * per_message + 3 * reads + u64::from(COUNT) / 100,
            "{payload} B: {allocated} heap blocks for {COUNT} messages"
        );
        // Each kept message costs about its own size, not the 64 KiB read it arrived in; the
        // margin is for the list that keeps them and the harness's other threads.
        let list = kept.capacity() * std::mem::size_of::<Publish>();
        assert!(
            cost < (own + kept.len() * 192 + list + 8 * 1024) as isize,
            "{cost} B live for {} kept {payload} B messages",
            kept.len()
        );
    }
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

/// Checks that a burst left more than `min_left` bytes live since `before`, and that `release`
/// gives them all back. The margin is for the test harness's other threads, whose allocations
/// the profiler counts too.
fn assert_burst_released(what: &str, before: isize, min_left: isize, release: impl FnOnce()) {
    let left = live() - before;
    release();
    let released = live() - before;
    eprintln!("{what}: {left} B kept; after release_memory: {released} B");
    assert!(left > min_left, "{what}: the burst left only {left} B");
    assert!(
        released <= 16 * 1024,
        "{what}: {released} B still held after release_memory"
    );
}

/// The PUBACK a server would send for each QoS 1 PUBLISH in `written`, which it consumes.
fn pubacks_for(decoder: &Decoder, written: &mut BytesMut) -> BytesMut {
    let mut acks = BytesMut::new();
    while let Some(Packet::Publish(p)) = decoder.decode(written).unwrap() {
        let [hi, lo] = p.packet_id().unwrap().get().to_be_bytes();
        acks.extend_from_slice(&[0x40, 0x02, hi, lo]);
    }
    acks
}

/// A burst of QoS 1 messages through a connected 3.1.1 session: all published at once (the
/// in-flight window full, the rest queued behind it), then every flow acknowledged as the
/// server would, in order.
fn publish_burst(session: &mut Session, now: Instant, count: u16) {
    let mut out = BytesMut::new();
    let messages: Vec<Message> = (0..count)
        .map(|i| {
            let payload = Bytes::from(vec![0x5A; 64 + usize::from(i % 2)]);
            Message::new("sensors/a", payload)
                .unwrap()
                .qos(QoS::AtLeastOnce)
        })
        .collect();
    for message in messages {
        session.publish(now, message).unwrap();
    }
    // Each PUBLISH written is acknowledged; each PUBACK lets the next queued one out.
    let decoder = Decoder::new(ProtocolVersion::V3_1_1);
    for _ in 0..count {
        session.poll_transmit(&mut out);
        let acks = pubacks_for(&decoder, &mut out);
        if acks.is_empty() {
            break;
        }
        session.handle_read(now, &acks);
        while session.poll_event().is_some() {}
    }
    assert_eq!(
        (session.inflight(), session.queued()),
        (0, 0),
        "every flow completed"
    );
}

#[test]
fn a_quiet_session_gives_back_what_a_burst_left() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _profiler = dhat::Profiler::builder().testing().build();
    let (mut session, now) = connected_session();
    // One small burst first, so that what stays allocated for good (the read buffer, the
    // first identifiers' bitmap word) is counted in `before`.
    publish_burst(&mut session, now, 2);
    session.release_memory();
    let before = live();
    publish_burst(&mut session, now, 2_000);
    // The queue behind the window held 1,980 messages; its capacity, the in-flight map's and
    // the encoding buffer's stay until released (the identifiers' bitmap, grown to the
    // highest identifier used, goes too with none in use).
    assert_burst_released("2,000 published", before, 100 * 1024, || {
        session.release_memory()
    });
}

#[test]
fn a_quiet_client_core_gives_back_what_a_burst_left() {
    use mqtt_session::client::{ClientCore, ClientOptions, Command};
    use mqtt_session::PublishToken;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _profiler = dhat::Profiler::builder().testing().build();
    let (mut core, _) =
        ClientCore::<u32>::new(ClientOptions::new("mqtt://h").client_id("c")).unwrap();
    let now = Instant::now();
    core.handle_connected(now);
    while let Some(bytes) = core.poll_transmit(now) {
        let n = bytes.len();
        core.handle_written(now, n);
    }
    core.handle_read(now, &mut BytesMut::from(&[0x20, 0x02, 0x00, 0x00][..]));
    while core.poll_output().is_some() {}
    assert!(core.is_quiet(), "connected, nothing under way");
    core.release_memory();
    let before = live();
    const COUNT: u32 = 1_000;
    for i in 0..COUNT {
        let message = Message::new("sensors/a", Bytes::from(vec![0x5A; 64]))
            .unwrap()
            .qos(QoS::AtLeastOnce);
        let token = PublishToken(u64::from(i) + 1);
        let command = Command::Publish {
            message,
            token,
            waiter: Some(i),
        };
        core.handle_command(now, command);
    }
    assert!(!core.is_quiet(), "messages in flight and queued");
    let decoder = Decoder::new(ProtocolVersion::V3_1_1);
    let mut answered = 0;
    for _ in 0..COUNT {
        let mut written = BytesMut::new();
        while let Some(bytes) = core.poll_transmit(now) {
            written.extend_from_slice(bytes);
            let n = bytes.len();
            core.handle_written(now, n);
        }
        let mut acks = pubacks_for(&decoder, &mut written);
        if acks.is_empty() {
            break;
        }
        core.handle_read(now, &mut acks);
        answered += std::iter::from_fn(|| core.poll_output()).count();
    }
    assert_eq!(answered, COUNT as usize, "every caller answered");
    assert!(core.is_quiet(), "every flow complete, every output taken");
    assert_burst_released("client core, 1,000 published", before, 50 * 1024, || {
        core.release_memory()
    });
}

#[test]
fn a_quiet_session_gives_back_what_a_burst_of_incoming_messages_left() {
    use mqtt_proto::PacketId;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _profiler = dhat::Profiler::builder().testing().build();
    const COUNT: u16 = 1_000;
    let mut wire = BytesMut::new();
    for id in 1..=COUNT {
        let qos_pid = QosPid::AtLeastOnce(PacketId::new(id).unwrap());
        let p = Publish::new(
            TopicName::new("sensors/a").unwrap(),
            qos_pid,
            vec![0x5A; 64],
        );
        Packet::Publish(p)
            .encode(ProtocolVersion::V3_1_1, &mut wire)
            .unwrap();
    }
    let (mut session, now) = connected_session();
    session.release_memory();
    let before = live();
    // The whole burst arrives before the application takes any of it.
    session.handle_read(now, &wire);
    drop(wire);
    let mut taken = 0;
    while let Some(event) = session.poll_event() {
        taken += usize::from(matches!(event, Event::Message { .. }));
    }
    assert_eq!(taken, usize::from(COUNT));
    let mut out = BytesMut::new();
    session.poll_transmit(&mut out);
    assert_eq!(out.len(), 4 * usize::from(COUNT), "a PUBACK for each");
    drop(out);
    assert_eq!(session.inbound_pending(), (0, 0));
    assert_burst_released("1,000 received", before, 50 * 1024, || {
        session.release_memory()
    });
}
