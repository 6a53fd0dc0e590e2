//! The part of [`client_suite!`](crate::client_suite) that meets slow applications and
//! hostile brokers: floods, brokers that stop reading, packets trickled a byte at a time.
//! Each test asserts a bound (bytes the broker could push, acknowledgements it got, time
//! until the connection is given up) that an unbounded client would blow.

/// Expands to the hostile-broker tests inside [`client_suite!`](crate::client_suite), which
/// defines the helpers they use (`connect`, `start`, `within`, `options`, `next_message` ...).
#[doc(hidden)]
#[macro_export]
macro_rules! __hostile_suite {
    ($k:ident, $mode:tt, $sleep:path) => {
        mod hostile {
            use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
            use std::sync::Arc;
            use std::time::{Duration, Instant};

            use $crate::{indexed_publish, Conn, Mosquitto, Script, ScriptedBroker};
            use $k::proto::{Packet, PubAck, QosPid};
            use $k::{ConnectionError, Event, Events, ProtocolVersion, QoS};

            use super::{index, message, next_message, options, start, within, LIMIT};

            fn script(f: impl FnOnce(&mut Conn) + Send + 'static) -> Script {
                Box::new(f)
            }

            /// Waits, without blocking the runtime, for the scripted broker to finish.
            async fn finished(broker: ScriptedBroker) {
                within("the scripted broker to finish", async {
                    while !broker.is_finished() {
                        $sleep(Duration::from_millis(10)).await;
                    }
                })
                .await;
                broker.join();
            }

            /// The reason of the next `Disconnected`, and when it came.
            async fn next_disconnect(events: &mut Events) -> (ConnectionError, Instant) {
                within("Disconnected", async {
                    loop {
                        match events.recv().await {
                            Some(Event::Disconnected { reason }) => {
                                return (reason, Instant::now())
                            }
                            Some(Event::Closed) | None => panic!("closed without a reason"),
                            Some(_) => {}
                        }
                    }
                })
                .await
            }

            /// Waits until `counter` stops growing for a while; returns its value.
            async fn settled(counter: &AtomicUsize) -> usize {
                let mut last = usize::MAX;
                for _ in 0..200 {
                    $sleep(Duration::from_millis(250)).await;
                    let now = counter.load(Ordering::SeqCst);
                    if now == last {
                        return now;
                    }
                    last = now;
                }
                panic!("still growing after 50 s: {last}");
            }

            $crate::__suite_test! { $mode
                async fn a_slow_application_makes_tcp_push_back_on_a_qos0_flood() {
                    // 40,000 messages of 1 KiB, as fast as the socket takes them.
                    const COUNT: u32 = 40_000;
                    let written = Arc::new(AtomicUsize::new(0));
                    let counter = written.clone();
                    let broker = ScriptedBroker::start(vec![script(move |conn| {
                        conn.connack();
                        for i in 0..COUNT {
                            let packet = indexed_publish("flood", QosPid::AtMostOnce, i, 1024);
                            match conn.send(packet) {
                                Ok(n) => counter.fetch_add(n, Ordering::SeqCst),
                                Err(_) => return,
                            };
                        }
                        conn.drain(LIMIT);
                    })]);
                    let options = options(&broker.url(), "slow-reader", ProtocolVersion::V3_1_1)
                        .inbound_queue(100, 256 * 1024);
                    let (client, mut events) = start(options).await;
                    // The application takes nothing: the broker must be held back by TCP.
                    let stalled_at = settled(&written).await;
                    let pending = events.pending();
                    eprintln!(
                        "flood held back after {stalled_at} bytes; {} messages ({} bytes) queued",
                        pending.messages, pending.payload_bytes
                    );
                    assert!(stalled_at < 24 << 20, "the broker pushed {stalled_at} bytes");
                    assert!(pending.messages <= 100, "{pending:?}");
                    // Nothing was lost: every message arrives, in order, once the application
                    // reads.
                    for i in 0..COUNT {
                        assert_eq!(index(&next_message(&mut events).await), i);
                    }
                    client.disconnect().await.unwrap();
                    finished(broker).await;
                }
            }

            $crate::__suite_test! { $mode
                async fn qos1_is_acknowledged_when_the_application_takes_it() {
                    const COUNT: u16 = 2000;
                    let acks = Arc::new(AtomicUsize::new(0));
                    let counter = acks.clone();
                    let broker = ScriptedBroker::start(vec![script(move |conn| {
                        conn.connack();
                        let mut writer = conn.stream.try_clone().expect("clone the socket");
                        let version = conn.version;
                        let flood = std::thread::spawn(move || {
                            use std::io::Write;
                            for id in 1..=COUNT {
                                let pid = $k::proto::PacketId::new(id).expect("non-zero");
                                let packet = indexed_publish(
                                    "q1",
                                    QosPid::AtLeastOnce(pid),
                                    u32::from(id),
                                    64,
                                );
                                let mut wire = bytes::BytesMut::new();
                                packet.encode(version, &mut wire).expect("encode");
                                if writer.write_all(&wire).is_err() {
                                    return;
                                }
                            }
                        });
                        while let Some(packet) = conn.read_packet() {
                            if matches!(packet, Packet::PubAck(_)) {
                                counter.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        let _ = flood.join();
                    })]);
                    let options = options(&broker.url(), "q1-reader", ProtocolVersion::V3_1_1)
                        .inbound_queue(50, 1 << 20);
                    let (client, mut events) = start(options).await;
                    for id in 1..=10 {
                        assert_eq!(index(&next_message(&mut events).await), id);
                    }
                    assert_eq!(
                        settled(&acks).await,
                        10,
                        "one PUBACK per message the application took, not per message read"
                    );
                    for id in 11..=u32::from(COUNT) {
                        assert_eq!(index(&next_message(&mut events).await), id);
                    }
                    within("every PUBACK", async {
                        while acks.load(Ordering::SeqCst) < usize::from(COUNT) {
                            $sleep(Duration::from_millis(10)).await;
                        }
                    })
                    .await;
                    client.disconnect().await.unwrap();
                    finished(broker).await;
                }
            }

            $crate::__suite_test! { $mode
                async fn a_handler_awaiting_client_calls_progresses_while_its_queue_is_full() {
                    const COUNT: u32 = 300;
                    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
                        let broker = Mosquitto::plain();
                        let (client, mut events) = start(
                            options(&broker.url(), "full-handler", version).inbound_queue(4, 1 << 16),
                        )
                        .await;
                        client.subscribe("flood/#", QoS::AtLeastOnce).await.unwrap();
                        let (flooder, _flooder_events) =
                            start(options(&broker.url(), "flooder", version)).await;
                        for i in 0..COUNT {
                            let payload = i.to_be_bytes().to_vec();
                            flooder
                                .try_publish(message("flood/a", payload, QoS::AtLeastOnce))
                                .unwrap();
                        }
                        within("the handler to get through the flood", async {
                            for i in 0..COUNT {
                                let got = next_message(&mut events).await;
                                assert_eq!(index(&got), i, "QoS 1, in order, none lost");
                                // Await client calls while the queue behind is full.
                                client
                                    .publish_and_wait(message("echo", "x", QoS::AtLeastOnce))
                                    .await
                                    .unwrap();
                                if i % 50 == 0 {
                                    client
                                        .subscribe(&format!("extra/{i}"), QoS::AtLeastOnce)
                                        .await
                                        .unwrap();
                                }
                            }
                        })
                        .await;
                        client.disconnect().await.unwrap();
                        flooder.disconnect().await.unwrap();
                    }
                }
            }

            $crate::__suite_test! { $mode
                async fn a_broker_that_stops_reading_is_given_up_and_the_client_reconnects() {
                    let second = Arc::new(AtomicBool::new(false));
                    let arrived = second.clone();
                    let broker = ScriptedBroker::start(vec![
                        // Deaf: accepts, then never reads again.
                        script(move |conn| {
                            conn.connack();
                            let deadline = Instant::now() + LIMIT;
                            while !arrived.load(Ordering::SeqCst) && Instant::now() < deadline {
                                std::thread::sleep(Duration::from_millis(10));
                            }
                        }),
                        // Healthy: acknowledges QoS 1.
                        script(move |conn| {
                            second.store(true, Ordering::SeqCst);
                            conn.connack();
                            while let Some(packet) = conn.read_packet() {
                                if let Packet::Publish(p) = packet {
                                    if let Some(id) = p.packet_id() {
                                        let _ = conn.send(Packet::PubAck(PubAck::new(id)));
                                    }
                                }
                            }
                        }),
                    ]);
                    let options = options(&broker.url(), "deaf", ProtocolVersion::V3_1_1)
                        .reconnect(super::fast_reconnect())
                        .write_timeout(Duration::from_secs(1));
                    let (client, mut events) = start(options).await;
                    // More than the socket buffers hold.
                    let flood_started = Instant::now();
                    for _ in 0..64 {
                        client
                            .try_publish(message("big", vec![0u8; 1 << 20], QoS::AtMostOnce))
                            .unwrap();
                    }
                    let (reason, at) = next_disconnect(&mut events).await;
                    assert!(
                        matches!(reason, ConnectionError::WriteTimeout(_)),
                        "{reason:?}"
                    );
                    let took = at - flood_started;
                    eprintln!("deaf broker given up after {took:?}");
                    assert!(took < Duration::from_secs(10), "{took:?}");
                    // The reconnect policy applies: the next connection works.
                    client
                        .publish_and_wait(message("after", "x", QoS::AtLeastOnce))
                        .await
                        .unwrap();
                    client.disconnect().await.unwrap();
                    finished(broker).await;
                }
            }

            $crate::__suite_test! { $mode
                async fn disconnect_returns_in_time_from_a_broker_that_stopped_reading() {
                    let done = Arc::new(AtomicBool::new(false));
                    let release = done.clone();
                    let broker = ScriptedBroker::start(vec![script(move |conn| {
                        conn.connack();
                        let deadline = Instant::now() + LIMIT;
                        while !release.load(Ordering::SeqCst) && Instant::now() < deadline {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    })]);
                    let options = options(&broker.url(), "deaf-disconnect", ProtocolVersion::V3_1_1)
                        .disconnect_timeout(Duration::from_secs(1))
                        .close_timeout(Duration::from_secs(1))
                        .write_timeout(Duration::from_secs(60));
                    let (client, mut events) = start(options).await;
                    for _ in 0..64 {
                        client
                            .try_publish(message("big", vec![0u8; 1 << 20], QoS::AtMostOnce))
                            .unwrap();
                    }
                    let _ = client.try_publish(message("q1", "x", QoS::AtLeastOnce));
                    $sleep(Duration::from_millis(300)).await;
                    let started = Instant::now();
                    within("disconnect", client.disconnect()).await.unwrap();
                    let took = started.elapsed();
                    eprintln!("disconnect from a deaf broker took {took:?}");
                    assert!(took < Duration::from_millis(3500), "{took:?}");
                    while let Some(event) = events.try_recv() {
                        let _ = event;
                    }
                    done.store(true, Ordering::SeqCst);
                    finished(broker).await;
                }
            }

            $crate::__suite_test! { $mode
                async fn a_packet_trickled_a_byte_at_a_time_ends_the_connection() {
                    let stop = Arc::new(AtomicBool::new(false));
                    let stopped = stop.clone();
                    let broker = ScriptedBroker::start(vec![script(move |conn| {
                        conn.connack();
                        // A PUBLISH announcing 100,000 bytes, then one byte every 200 ms.
                        let _ = conn.write_raw(&[0x30, 0xA0, 0x8D, 0x06, 0x00, 0x01, b't']);
                        for _ in 0..300 {
                            if stopped.load(Ordering::SeqCst) || conn.write_raw(&[0x5A]).is_err() {
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    })]);
                    let options = options(&broker.url(), "drip", ProtocolVersion::V3_1_1)
                        .keep_alive(Duration::from_secs(1))
                        .packet_timeout(Duration::from_secs(2));
                    let started = Instant::now();
                    let (_client, mut events) = start(options).await;
                    let (reason, at) = next_disconnect(&mut events).await;
                    stop.store(true, Ordering::SeqCst);
                    assert_eq!(reason, ConnectionError::PacketTimeout(Duration::from_secs(2)));
                    let took = at - started;
                    eprintln!("trickled packet cut off after {took:?}");
                    assert!(took < Duration::from_secs(5), "{took:?}");
                    finished(broker).await;
                }
            }

            /// A broker that counts the PUBLISHes it reads and holds back every PUBACK until
            /// `release` is set, then acknowledges what it holds and everything after.
            fn holding_acks(seen: Arc<AtomicUsize>, release: Arc<AtomicBool>) -> ScriptedBroker {
                ScriptedBroker::start(vec![script(move |conn| {
                    conn.connack();
                    // Short reads, so that a release is noticed while the client is silent.
                    let _ = conn.stream.set_read_timeout(Some(Duration::from_millis(20)));
                    let mut held = Vec::new();
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while Instant::now() < deadline {
                        match conn.read_packet() {
                            Some(Packet::Publish(publish)) => {
                                seen.fetch_add(1, Ordering::SeqCst);
                                if let QosPid::AtLeastOnce(id) = publish.qos_pid {
                                    held.push(id);
                                }
                            }
                            Some(Packet::Disconnect(_)) => return,
                            Some(_) | None => {}
                        }
                        if release.load(Ordering::SeqCst) {
                            for id in held.drain(..) {
                                let _ = conn.send(Packet::PubAck(PubAck::new(id)));
                            }
                        }
                    }
                })])
            }

            $crate::__suite_test! { $mode
                async fn a_plain_publish_loop_fills_the_in_flight_window_before_any_puback() {
                    const WINDOW: u16 = 8;
                    let seen = Arc::new(AtomicUsize::new(0));
                    let release = Arc::new(AtomicBool::new(false));
                    let broker = holding_acks(seen.clone(), release.clone());
                    let options = options(&broker.url(), "window", ProtocolVersion::V3_1_1)
                        .max_inflight(WINDOW);
                    let (client, _events) = start(options).await;
                    // `publish` returns once the message is queued, so this loop finishes
                    // although the broker acknowledges nothing yet.
                    let mut handles = Vec::new();
                    within("a plain publish loop", async {
                        for i in 0..u32::from(WINDOW) {
                            let payload = i.to_be_bytes().to_vec();
                            let handle = client
                                .publish(message("window", payload, QoS::AtLeastOnce))
                                .await
                                .unwrap();
                            handles.push(handle);
                        }
                    })
                    .await;
                    // One more, whose handle is dropped at once: it still goes out, after
                    // the window opens.
                    drop(
                        client
                            .publish(message("window", "dropped", QoS::AtLeastOnce))
                            .await
                            .unwrap(),
                    );
                    within("the whole window on the wire", async {
                        while seen.load(Ordering::SeqCst) < usize::from(WINDOW) {
                            $sleep(Duration::from_millis(10)).await;
                        }
                    })
                    .await;
                    $sleep(Duration::from_millis(200)).await;
                    assert_eq!(
                        seen.load(Ordering::SeqCst),
                        usize::from(WINDOW),
                        "no more than the window before a PUBACK"
                    );
                    release.store(true, Ordering::SeqCst);
                    within("every outcome", async {
                        for handle in handles {
                            let outcome = handle.await.unwrap();
                            assert!(
                                matches!(outcome, $k::PublishOutcome::Acknowledged { .. }),
                                "{outcome:?}"
                            );
                        }
                        while seen.load(Ordering::SeqCst) <= usize::from(WINDOW) {
                            $sleep(Duration::from_millis(10)).await;
                        }
                    })
                    .await;
                    client.disconnect().await.unwrap();
                    finished(broker).await;
                }
            }

            $crate::__suite_test! { $mode
                async fn try_publish_on_a_full_queue_gives_the_message_back() {
                    let seen = Arc::new(AtomicUsize::new(0));
                    let release = Arc::new(AtomicBool::new(false));
                    let broker = holding_acks(seen.clone(), release.clone());
                    // One in flight, one queued in the session, one the session could not
                    // take yet, one in the publish queue: the fifth cannot be taken.
                    let options = options(&broker.url(), "full", ProtocolVersion::V3_1_1)
                        .max_inflight(1)
                        .max_queued(1)
                        .publish_capacity(1);
                    let (client, _events) = start(options).await;
                    let mut handles = Vec::new();
                    let mut refused = None;
                    for i in 0u32..50 {
                        let payload = i.to_be_bytes().to_vec();
                        match client.try_publish(message("full", payload, QoS::AtLeastOnce)) {
                            Ok(handle) => handles.push(handle),
                            Err($k::TryPublishError::Full(back)) => {
                                refused = Some((i, back));
                                break;
                            }
                            Err(e) => panic!("{e}"),
                        }
                        // Room for the driver to take what was queued.
                        $sleep(Duration::from_millis(20)).await;
                    }
                    let (i, back) = refused.expect("the queue fills up");
                    assert_eq!(&back.payload[..], &i.to_be_bytes()[..], "the same message");
                    assert!(handles.len() <= 4, "held beyond the bounds: {}", handles.len());
                    release.store(true, Ordering::SeqCst);
                    within("the message given back, published again", async {
                        let outcome = client.publish(back).await.unwrap().await.unwrap();
                        assert!(matches!(outcome, $k::PublishOutcome::Acknowledged { .. }));
                        for handle in handles {
                            handle.await.unwrap();
                        }
                    })
                    .await;
                    assert_eq!(seen.load(Ordering::SeqCst), i as usize + 1);
                    client.disconnect().await.unwrap();
                    finished(broker).await;
                }
            }

            $crate::__suite_test! { $mode
                async fn keep_alive_below_one_second_is_refused_at_connect() {
                    let options = $k::ClientOptions::new("mqtt://127.0.0.1:1")
                        .keep_alive(Duration::from_millis(500));
                    assert!(matches!(
                        super::connect(options),
                        Err($k::Error::Options(_))
                    ));
                }
            }
        }
    };
}
