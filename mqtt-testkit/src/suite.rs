//! The integration suite every async adapter runs against mosquitto.

/// Expands to the integration tests of an async client adapter.
///
/// The adapter crate must offer the common client API (`Client::connect(ClientOptions)`
/// returning a client handle and an event stream with `recv().await`, and the re-exported
/// option, event and message types). Each test starts its own broker, talks over loopback
/// only, and bounds every wait.
///
/// The runtime is given by
/// - either `test:`, an attribute that runs an `async fn` test (`tokio::test`), or
///   `block_on:`, a function that runs a future to completion on the test's thread
///   (`smol::block_on`, `async_std::task::block_on`);
/// - `timeout:`, `async fn(Duration, F) -> Result<F::Output, _>`, and `sleep:`, a function
///   of a `Duration` whose future waits that long;
/// - optionally `connect:`, a function used instead of `Client::connect` to start clients
///   (e.g. one that spawns the driver on the runtime's own executor).
///
/// ```text
/// mqtt_testkit::client_suite! {
///     krate: mqtt_tokio,
///     test: tokio::test,
///     timeout: tokio::time::timeout,
///     sleep: tokio::time::sleep,
/// }
///
/// mqtt_testkit::client_suite! {
///     krate: mqtt_async_std,
///     block_on: smol::block_on,
///     timeout: timeout,
///     sleep: smol::Timer::after,
///     connect: connect_on_smol,
/// }
/// ```
#[macro_export]
macro_rules! client_suite {
    (
        krate: $k:ident,
        test: $test:meta,
        timeout: $timeout:path,
        sleep: $sleep:path
        $(, connect: $connect:path)? $(,)?
    ) => {
        $crate::client_suite! {
            @suite $k, [attribute $test], $timeout, $sleep, [$($connect)?]
        }
    };
    (
        krate: $k:ident,
        block_on: $block_on:path,
        timeout: $timeout:path,
        sleep: $sleep:path
        $(, connect: $connect:path)? $(,)?
    ) => {
        $crate::client_suite! {
            @suite $k, [block_on $block_on], $timeout, $sleep, [$($connect)?]
        }
    };
    (@connect []) => {
        Client::connect
    };
    (@connect [$connect:path]) => {
        $connect
    };
    (@suite $k:ident, $mode:tt, $timeout:path, $sleep:path, $connect:tt) => {
        use std::collections::BTreeMap;
        use std::time::Duration;

        use $crate::{Mosquitto, MosquittoConfig};
        use $k::{
            Backoff, Client, ClientOptions, Error, Event, Events, Message, ProtocolVersion,
            Publish, PublishOutcome, QoS,
        };

        /// Longest wait for any one step.
        const LIMIT: Duration = Duration::from_secs(30);

        /// Starts a client the way this suite was asked to.
        fn connect(options: ClientOptions) -> Result<(Client, Events), Error> {
            ($crate::client_suite!(@connect $connect))(options)
        }

        async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
            match $timeout(LIMIT, future).await {
                Ok(output) => output,
                Err(_) => panic!("timed out after {LIMIT:?}: {what}"),
            }
        }

        fn options(url: &str, id: &str, version: ProtocolVersion) -> ClientOptions {
            ClientOptions::new(url)
                .client_id(id)
                .version(version)
                .no_reconnect()
                .connect_timeout(Duration::from_secs(10))
        }

        fn fast_reconnect() -> Backoff {
            Backoff::new(Duration::from_millis(50), Duration::from_millis(500))
        }

        fn message(topic: &str, payload: impl Into<bytes::Bytes>, qos: QoS) -> Message {
            Message::new(topic, payload).expect("valid topic").qos(qos)
        }

        /// Starts a client and waits for CONNACK.
        async fn start(options: ClientOptions) -> (Client, Events) {
            let (client, mut events) = connect(options).expect("valid options");
            within("CONNACK", async {
                let mut seen = Vec::new();
                loop {
                    match events.recv().await {
                        Some(Event::Connected { .. }) => break,
                        Some(Event::Closed) | None => panic!("stopped before connecting: {seen:?}"),
                        Some(event) => seen.push(event),
                    }
                }
            })
            .await;
            (client, events)
        }

        /// The next message, skipping other events.
        async fn next_message(events: &mut Events) -> Publish {
            within("a message", async {
                loop {
                    match events.recv().await {
                        Some(Event::Message { publish, .. }) => return publish,
                        Some(Event::Closed) | None => panic!("stopped while waiting for a message"),
                        Some(_) => {}
                    }
                }
            })
            .await
        }

        /// Every event up to and including `Closed`.
        async fn until_closed(events: &mut Events) -> Vec<Event> {
            within("Closed", async {
                let mut seen = Vec::new();
                while let Some(event) = events.recv().await {
                    let last = matches!(event, Event::Closed);
                    seen.push(event);
                    if last {
                        return seen;
                    }
                }
                panic!("event stream ended without Closed: {seen:?}");
            })
            .await
        }

        fn index(publish: &Publish) -> u32 {
            let bytes: [u8; 4] = publish.payload[..4].try_into().expect("4-byte index");
            u32::from_be_bytes(bytes)
        }

        /// Subscribes to `prefix/#`, publishes one QoS 2 message of each size and checks each
        /// arrives byte-exact, then disconnects.
        async fn sized_round_trip(client: Client, events: &mut Events, prefix: &str, sizes: &[usize]) {
            client
                .subscribe(&format!("{prefix}/#"), QoS::ExactlyOnce)
                .await
                .unwrap();
            let topic = format!("{prefix}/a");
            for (i, &size) in sizes.iter().enumerate() {
                let payload = vec![i as u8; size];
                client
                    .publish_and_wait(message(&topic, payload.clone(), QoS::ExactlyOnce))
                    .await
                    .unwrap();
                assert_eq!(next_message(events).await.payload[..], payload[..]);
            }
            client.disconnect().await.unwrap();
            until_closed(events).await;
        }

        async fn round_trip(version: ProtocolVersion) {
            let broker = Mosquitto::plain();
            let (sub, mut sub_events) = start(options(&broker.url(), "rt-sub", version)).await;
            assert_eq!(
                sub.subscribe("rt/#", QoS::ExactlyOnce).await.unwrap(),
                QoS::ExactlyOnce
            );
            let (publisher, mut pub_events) =
                start(options(&broker.url(), "rt-pub", version)).await;
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                let topic = format!("rt/{}", qos as u8);
                let payload = format!("payload at {qos:?}");
                let outcome = within(
                    "publish",
                    publisher.publish_and_wait(message(&topic, payload.clone(), qos)),
                )
                .await
                .unwrap();
                match qos {
                    QoS::AtMostOnce => assert_eq!(outcome, PublishOutcome::Sent),
                    QoS::AtLeastOnce => assert!(
                        matches!(outcome, PublishOutcome::Acknowledged { .. }),
                        "{outcome:?}"
                    ),
                    QoS::ExactlyOnce => assert!(
                        matches!(outcome, PublishOutcome::Completed { .. }),
                        "{outcome:?}"
                    ),
                }
                let got = next_message(&mut sub_events).await;
                assert_eq!(got.topic.as_str(), topic);
                assert_eq!(&got.payload[..], payload.as_bytes());
                assert_eq!(got.qos(), qos);
                assert!(!got.retain);
            }
            publisher.disconnect().await.unwrap();
            sub.disconnect().await.unwrap();
            let events = until_closed(&mut pub_events).await;
            assert!(
                events.iter().any(|e| matches!(
                    e,
                    Event::Disconnected {
                        reason: $k::ConnectionError::LocalDisconnect
                    }
                )),
                "{events:?}"
            );
            until_closed(&mut sub_events).await;
            assert!(!publisher.is_connected());
            assert!(matches!(
                publisher
                    .publish_and_wait(message("rt/late", "x", QoS::AtMostOnce))
                    .await,
                Err(Error::Closed)
            ));
        }

        $crate::__suite_test! { $mode
            async fn round_trip_qos_0_1_2_mqtt_3_1() {
                round_trip(ProtocolVersion::V3_1).await;
            }
        }

        $crate::__suite_test! { $mode
            async fn round_trip_qos_0_1_2_mqtt_3_1_1() {
                // [MQTT-7.1.2-1 v3.1.1]: TCP, an ordered lossless byte stream.
                round_trip(ProtocolVersion::V3_1_1).await;
            }
        }

        $crate::__suite_test! { $mode
            async fn round_trip_qos_0_1_2_mqtt_5() {
                // [MQTT-4.2.0-1 v5.0]: TCP, an ordered lossless byte stream.
                round_trip(ProtocolVersion::V5).await;
            }
        }

        $crate::__suite_test! { $mode
            async fn retained_message_reaches_a_later_subscriber() {
                let broker = Mosquitto::plain();
                let (publisher, _p) =
                    start(options(&broker.url(), "ret-pub", ProtocolVersion::V5)).await;
                publisher
                    .publish_and_wait(message("ret/state", "on", QoS::AtLeastOnce).retain(true))
                    .await
                    .unwrap();
                let (sub, mut events) =
                    start(options(&broker.url(), "ret-sub", ProtocolVersion::V5)).await;
                sub.subscribe("ret/#", QoS::AtLeastOnce).await.unwrap();
                let got = next_message(&mut events).await;
                assert_eq!(
                    (got.topic.as_str(), &got.payload[..], got.retain),
                    ("ret/state", &b"on"[..], true)
                );
                // An empty retained message clears it.
                publisher
                    .publish_and_wait(message("ret/state", "", QoS::AtLeastOnce).retain(true))
                    .await
                    .unwrap();
                let (late, mut late_events) =
                    start(options(&broker.url(), "ret-late", ProtocolVersion::V5)).await;
                late.subscribe("ret/#", QoS::AtLeastOnce).await.unwrap();
                publisher
                    .publish_and_wait(message("ret/marker", "m", QoS::AtLeastOnce))
                    .await
                    .unwrap();
                assert_eq!(
                    next_message(&mut late_events).await.topic.as_str(),
                    "ret/marker"
                );
            }
        }

        async fn will_watcher(broker: &Mosquitto, id: &str) -> (Client, Events) {
            let (watcher, events) =
                start(options(&broker.url(), id, ProtocolVersion::V3_1_1)).await;
            watcher.subscribe("will/#", QoS::AtLeastOnce).await.unwrap();
            (watcher, events)
        }

        fn with_will(url: &str, id: &str) -> ClientOptions {
            options(url, id, ProtocolVersion::V3_1_1)
                .keep_alive(Duration::from_secs(30))
                .will(message("will/victim", "gone", QoS::AtLeastOnce))
        }

        $crate::__suite_test! { $mode
            async fn will_is_published_when_the_connection_is_cut() {
                let broker = Mosquitto::plain();
                let (_watcher, mut events) = will_watcher(&broker, "will-w1").await;
                let (victim, mut victim_events) = start(with_will(&broker.url(), "will-v1")).await;
                victim.abort();
                until_closed(&mut victim_events).await;
                let will = next_message(&mut events).await;
                assert_eq!(
                    (will.topic.as_str(), &will.payload[..]),
                    ("will/victim", &b"gone"[..])
                );
            }
        }

        $crate::__suite_test! { $mode
            async fn will_is_published_when_every_handle_is_dropped() {
                let broker = Mosquitto::plain();
                let (_watcher, mut events) = will_watcher(&broker, "will-w2").await;
                let (victim, victim_events) = start(with_will(&broker.url(), "will-v2")).await;
                drop(victim);
                drop(victim_events);
                let will = next_message(&mut events).await;
                assert_eq!(will.topic.as_str(), "will/victim");
            }
        }

        $crate::__suite_test! { $mode
            async fn will_is_not_published_after_a_clean_disconnect() {
                let broker = Mosquitto::plain();
                let (watcher, mut events) = will_watcher(&broker, "will-w3").await;
                let (victim, mut victim_events) = start(with_will(&broker.url(), "will-v3")).await;
                victim.disconnect().await.unwrap();
                until_closed(&mut victim_events).await;
                // A will would have been published when the connection closed, before this.
                watcher
                    .publish_and_wait(message("will/marker", "m", QoS::AtLeastOnce))
                    .await
                    .unwrap();
                assert_eq!(
                    next_message(&mut events).await.topic.as_str(),
                    "will/marker"
                );
            }
        }

        $crate::__suite_test! { $mode
            async fn ten_mib_message_round_trip_is_byte_exact() {
                let broker = Mosquitto::plain();
                let (sub, mut events) =
                    start(options(&broker.url(), "big-sub", ProtocolVersion::V5)).await;
                sub.subscribe("big", QoS::AtLeastOnce).await.unwrap();
                let (publisher, _p) =
                    start(options(&broker.url(), "big-pub", ProtocolVersion::V5)).await;
                let payload: Vec<u8> = (0..10 * 1024 * 1024u32)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                    .collect();
                let outcome = within(
                    "10 MiB publish",
                    publisher.publish_and_wait(message("big", payload.clone(), QoS::AtLeastOnce)),
                )
                .await
                .unwrap();
                assert!(
                    matches!(outcome, PublishOutcome::Acknowledged { .. }),
                    "{outcome:?}"
                );
                let got = next_message(&mut events).await;
                assert_eq!(got.payload.len(), payload.len());
                assert!(got.payload[..] == payload[..], "payload differs");
            }
        }

        $crate::__suite_test! { $mode
            async fn long_user_name_and_topic() {
                let broker = Mosquitto::plain();
                let user = "u".repeat(1500);
                let topic = format!("long/{}/end", "t".repeat(1200));
                let (client, mut events) = start(
                    options(&broker.url(), "long", ProtocolVersion::V3_1_1).credentials(&user, "pw"),
                )
                .await;
                client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
                client
                    .publish_and_wait(message(&topic, "hi", QoS::AtLeastOnce))
                    .await
                    .unwrap();
                let got = next_message(&mut events).await;
                assert_eq!(got.topic.as_str(), topic);
            }
        }

        $crate::__suite_test! { $mode
            async fn ten_thousand_qos1_messages_arrive_in_order() {
                const COUNT: u32 = 10_000;
                let broker = Mosquitto::plain();
                let (sub, mut events) =
                    start(options(&broker.url(), "many-sub", ProtocolVersion::V3_1_1)).await;
                sub.subscribe("many", QoS::AtLeastOnce).await.unwrap();
                // A plain loop: `publish` waits only for room in the publish queue, so the
                // messages travel pipelined, and the handles confirm each one afterwards.
                let (publisher, _pub_events) = start(
                    options(&broker.url(), "many-pub", ProtocolVersion::V3_1_1)
                        .publish_capacity(100),
                )
                .await;
                let mut handles = Vec::new();
                within("publishing", async {
                    for i in 0..COUNT {
                        let payload = i.to_be_bytes().to_vec();
                        let handle = publisher
                            .publish(message("many", payload, QoS::AtLeastOnce))
                            .await
                            .unwrap();
                        handles.push(handle);
                    }
                })
                .await;
                for expected in 0..COUNT {
                    let got = next_message(&mut events).await;
                    assert_eq!(index(&got), expected, "out of order or lost");
                }
                let mut tokens = std::collections::HashSet::new();
                within("every PUBACK", async {
                    for handle in handles {
                        assert!(tokens.insert(handle.token()), "repeated token");
                        let outcome = handle.await.unwrap();
                        assert!(
                            matches!(outcome, PublishOutcome::Acknowledged { .. }),
                            "{outcome:?}"
                        );
                    }
                })
                .await;
            }
        }

        $crate::__suite_test! { $mode
            async fn tls_with_the_broker_ca() {
                let broker = Mosquitto::start(MosquittoConfig::new().tls());
                let ca = broker.certs().ca.cert_pem.clone();
                let (client, mut events) =
                    start(options(&broker.tls_url(), "tls", ProtocolVersion::V5).ca_pem(ca)).await;
                client.subscribe("tls", QoS::ExactlyOnce).await.unwrap();
                client
                    .publish_and_wait(message("tls", "secret", QoS::ExactlyOnce))
                    .await
                    .unwrap();
                assert_eq!(&next_message(&mut events).await.payload[..], b"secret");
                // The same through the host name, with the CA from a file.
                let file = broker.certs().ca.cert_file.clone();
                let url = format!("mqtts://localhost:{}", broker.tls_port());
                let (other, _e) =
                    start(options(&url, "tls-name", ProtocolVersion::V3_1_1).ca_file(file)).await;
                other.disconnect().await.unwrap();
            }
        }

        /// Connecting must fail: an error event, then `Closed`, and never `Connected`.
        async fn expect_rejected(options: ClientOptions) -> String {
            let (_client, mut events) = connect(options).expect("valid options");
            let seen = until_closed(&mut events).await;
            assert!(
                !seen.iter().any(|e| matches!(e, Event::Connected { .. })),
                "{seen:?}"
            );
            seen.iter()
                .find_map(|e| match e {
                    Event::Error(error) => Some(error.to_string()),
                    _ => None,
                })
                .unwrap_or_else(|| format!("{seen:?}"))
        }

        $crate::__suite_test! { $mode
            async fn tls_rejects_a_certificate_from_another_ca() {
                let broker = Mosquitto::start(MosquittoConfig::new().tls());
                let wrong = broker.certs().other_ca.cert_pem.clone();
                let error = expect_rejected(
                    options(&broker.tls_url(), "tls-bad", ProtocolVersion::V5).ca_pem(wrong),
                )
                .await;
                assert!(error.contains("certificate"), "{error}");
            }
        }

        $crate::__suite_test! { $mode
            async fn tls_rejects_a_wrong_host_name() {
                let broker = Mosquitto::start(MosquittoConfig::new().tls());
                let ca = broker.certs().ca.cert_pem.clone();
                let error = expect_rejected(
                    options(&broker.tls_url(), "tls-name", ProtocolVersion::V5)
                        .ca_pem(ca)
                        .tls_server_name("wrong.example"),
                )
                .await;
                assert!(error.contains("certificate"), "{error}");
            }
        }

        $crate::__suite_test! { $mode
            async fn tls_accepts_anything_only_when_told_to() {
                let broker = Mosquitto::start(MosquittoConfig::new().tls());
                let (client, _e) = start(
                    options(&broker.tls_url(), "tls-any", ProtocolVersion::V5)
                        .danger_accept_invalid_certs(true),
                )
                .await;
                client.disconnect().await.unwrap();
            }
        }

        $crate::__suite_test! { $mode
            async fn tls_client_certificate() {
                let broker = Mosquitto::start(MosquittoConfig::new().require_client_cert());
                let certs = broker.certs().clone();
                let (client, _e) = start(
                    options(&broker.tls_url(), "tls-cert", ProtocolVersion::V3_1_1)
                        .ca_pem(certs.ca.cert_pem.clone())
                        .client_cert_files(&certs.client.cert_file, &certs.client.key_file),
                )
                .await;
                client.subscribe("c", QoS::AtLeastOnce).await.unwrap();
                expect_rejected(
                    options(&broker.tls_url(), "tls-nocert", ProtocolVersion::V3_1_1)
                        .ca_pem(certs.ca.cert_pem.clone()),
                )
                .await;
            }
        }

        $crate::__suite_test! { $mode
            async fn websocket_round_trip() {
                // [MQTT-6.0.0-1 v3.1.1] binary frames only; [MQTT-6.0.0-2 v3.1.1] packets need not
                // align with frames (300 KB payloads span many); [MQTT-6.0.0-3 v3.1.1] subprotocol
                // "mqtt".
                let broker = Mosquitto::start(MosquittoConfig::new().websockets());
                let (client, mut events) =
                    start(options(&broker.ws_url(), "ws", ProtocolVersion::V3_1_1)).await;
                // Packets of many sizes, so that they straddle WebSocket frames.
                sized_round_trip(client, &mut events, "ws", &[0, 1, 200, 70_000, 300_000]).await;
            }
        }

        #[cfg(unix)]
        $crate::__suite_test! { $mode
            async fn unix_socket_round_trip() {
                let broker = Mosquitto::start(MosquittoConfig::new().unix_socket());
                let (client, mut events) =
                    start(options(&broker.unix_url(), "unix", ProtocolVersion::V5)).await;
                // Large enough to take several reads of the socket.
                sized_round_trip(client, &mut events, "unix", &[0, 100, 300_000]).await;
            }
        }

        $crate::__suite_test! { $mode
            async fn secure_websocket_round_trip() {
                let broker = Mosquitto::start(MosquittoConfig::new().websockets_tls());
                let ca = broker.certs().ca.cert_pem.clone();
                let (client, mut events) =
                    start(options(&broker.wss_url(), "wss", ProtocolVersion::V5).ca_pem(ca)).await;
                client.subscribe("wss", QoS::AtLeastOnce).await.unwrap();
                client
                    .publish_and_wait(message("wss", "over tls", QoS::AtLeastOnce))
                    .await
                    .unwrap();
                assert_eq!(&next_message(&mut events).await.payload[..], b"over tls");
            }
        }

        /// Publishes `count` messages while the broker is stopped and restarted; every
        /// message must arrive, QoS 2 exactly once.
        async fn stream_across_broker_restart(qos: QoS, version: ProtocolVersion) {
            const COUNT: u32 = 400;
            // mosquitto 2.0.11 restores at most `max_inflight_messages` (default 20) of a
            // session's outgoing messages as in flight and queues the rest. It then publishes
            // those again with DUP set, even the ones whose PUBREL it had already sent, and a
            // subscriber that completed them rightly takes them as new messages. That breaks
            // [MQTT-4.3.3-1 v3.1.1] and [MQTT-4.3.3-6 v5.0], so the broker here gets a window
            // wider than the stream and the test stays about the client. To see every packet
            // the broker handles, run with `MQTT_TESTKIT_DEBUG_LOG=1`.
            let mut broker = Mosquitto::start(
                MosquittoConfig::new()
                    .persistence()
                    .extra("max_inflight_messages 1000"),
            );
            let persistent = |id: &str| {
                options(&broker.url(), id, version)
                    .persistent_session()
                    .reconnect(fast_reconnect())
            };
            let (sub, mut events) = start(persistent("restart-sub")).await;
            sub.subscribe("stream", qos).await.unwrap();
            let (publisher, _pub_events) = start(
                persistent("restart-pub")
                    .max_inflight(10)
                    .store($k::MemoryStore::new()),
            )
            .await;
            let publish = |i: u32| {
                publisher
                    .try_publish(message("stream", i.to_be_bytes().to_vec(), qos))
                    .unwrap()
            };
            let mut handles: Vec<_> = (0..COUNT / 2).map(publish).collect();
            let mut received: BTreeMap<u32, u32> = BTreeMap::new();
            while received.len() < 50 {
                *received
                    .entry(index(&next_message(&mut events).await))
                    .or_default() += 1;
            }
            broker.stop();
            broker.restart();
            handles.extend((COUNT / 2..COUNT).map(publish));
            let mut completed = 0;
            within("every message after the restart", async {
                while received.len() < COUNT as usize || completed < COUNT {
                    next_stream_event(&mut events, &mut handles, &mut received, &mut completed)
                        .await;
                }
            })
            .await;
            // Let late duplicates, if any, arrive before counting.
            $sleep(Duration::from_millis(300)).await;
            while let Some(event) = events.try_recv() {
                if let Event::Message { publish, .. } = event {
                    *received.entry(index(&publish)).or_default() += 1;
                }
            }
            for i in 0..COUNT {
                let n = received.get(&i).copied().unwrap_or(0);
                assert!(n >= 1, "message {i} lost");
                if qos == QoS::ExactlyOnce {
                    assert_eq!(n, 1, "message {i} delivered {n} times at QoS 2");
                }
            }
        }

        /// Takes a message if one is ready, else the outcomes of the publishes that completed,
        /// without a select macro.
        async fn next_stream_event(
            events: &mut Events,
            handles: &mut Vec<$k::PublishHandle>,
            received: &mut BTreeMap<u32, u32>,
            completed: &mut u32,
        ) {
            use std::future::Future as _;
            loop {
                if let Some(event) = events.try_recv() {
                    if let Event::Message { publish, .. } = event {
                        *received.entry(index(&publish)).or_default() += 1;
                    }
                    return;
                }
                let before = handles.len();
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                handles.retain_mut(|handle| match std::pin::Pin::new(handle).poll(&mut cx) {
                    std::task::Poll::Ready(outcome) => {
                        assert!(
                            matches!(
                                outcome,
                                Ok(PublishOutcome::Acknowledged { .. }
                                    | PublishOutcome::Completed { .. })
                            ),
                            "{outcome:?}"
                        );
                        false
                    }
                    std::task::Poll::Pending => true,
                });
                if handles.len() < before {
                    *completed += (before - handles.len()) as u32;
                    return;
                }
                $sleep(Duration::from_millis(2)).await;
            }
        }

        $crate::__suite_test! { $mode
            async fn qos1_stream_survives_a_broker_restart() {
                stream_across_broker_restart(QoS::AtLeastOnce, ProtocolVersion::V3_1_1).await;
            }
        }

        $crate::__suite_test! { $mode
            async fn qos2_stream_survives_a_broker_restart_exactly_once() {
                stream_across_broker_restart(QoS::ExactlyOnce, ProtocolVersion::V3_1_1).await;
            }
        }

        $crate::__suite_test! { $mode
            async fn qos2_stream_survives_a_broker_restart_exactly_once_mqtt_5() {
                stream_across_broker_restart(QoS::ExactlyOnce, ProtocolVersion::V5).await;
            }
        }

        $crate::__suite_test! { $mode
            async fn reconnects_after_the_broker_is_killed_and_subscribes_again() {
                for (version, clean) in [
                    (ProtocolVersion::V3_1_1, true),
                    (ProtocolVersion::V3_1_1, false),
                    (ProtocolVersion::V5, false),
                ] {
                    let mut broker = Mosquitto::plain();
                    let mut opts = options(&broker.url(), "killed", version)
                        .reconnect(fast_reconnect())
                        .clean_start(clean);
                    if !clean && version == ProtocolVersion::V5 {
                        opts = opts.session_expiry(600);
                    }
                    let (client, mut events) = start(opts).await;
                    client.subscribe("k/#", QoS::AtLeastOnce).await.unwrap();
                    client.subscribe("j", QoS::ExactlyOnce).await.unwrap();
                    // The broker dies with the session (no persistence): Session Present 0.
                    broker.kill();
                    broker.restart();
                    let (present, results) = within("Resubscribed", async {
                        let mut present = None;
                        loop {
                            match events.recv().await {
                                Some(Event::Connected { session_present, .. }) => {
                                    present = Some(session_present);
                                }
                                Some(Event::Resubscribed { results }) => {
                                    return (present, results);
                                }
                                Some(Event::Closed) | None => panic!("gave up reconnecting"),
                                _ => {}
                            }
                        }
                    })
                    .await;
                    assert_eq!(present, Some(false), "{version:?} clean {clean}");
                    let filters: Vec<String> = results.iter().map(|(f, _)| f.to_string()).collect();
                    assert_eq!(filters, ["j", "k/#"], "{version:?} clean {clean}");
                    assert_eq!(results[0].1, Ok(QoS::ExactlyOnce));
                    assert_eq!(results[1].1, Ok(QoS::AtLeastOnce));
                    // Nobody subscribed by hand: the broker routes to us again.
                    client
                        .publish_and_wait(message("k/1", "back", QoS::AtLeastOnce))
                        .await
                        .unwrap();
                    client
                        .publish_and_wait(message("j", "again", QoS::ExactlyOnce))
                        .await
                        .unwrap();
                    assert_eq!(&next_message(&mut events).await.payload[..], b"back");
                    assert_eq!(&next_message(&mut events).await.payload[..], b"again");
                    client.disconnect().await.unwrap();
                }
            }
        }

        $crate::__suite_test! { $mode
            async fn fails_over_to_the_next_broker() {
                let broker = Mosquitto::plain();
                let dead = format!("mqtt://127.0.0.1:{}", $crate::free_port());
                let (client, mut events) = connect(
                    ClientOptions::new(&dead)
                        .broker(&broker.url())
                        .client_id("failover")
                        .no_reconnect(),
                )
                .unwrap();
                let seen = within("failover", async {
                    let mut seen = Vec::new();
                    loop {
                        let event = events.recv().await.expect("events");
                        let done = matches!(event, Event::Connected { .. } | Event::Closed);
                        seen.push(event);
                        if done {
                            return seen;
                        }
                    }
                })
                .await;
                assert!(
                    matches!(seen.first(), Some(Event::Error(Error::Connect { .. }))),
                    "{seen:?}"
                );
                assert!(
                    matches!(seen.last(), Some(Event::Connected { .. })),
                    "{seen:?}"
                );
                client.disconnect().await.unwrap();
            }
        }

        $crate::__suite_test! { $mode
            async fn subscribe_many_and_unsubscribe() {
                let broker = Mosquitto::plain();
                let (client, mut events) =
                    start(options(&broker.url(), "subs", ProtocolVersion::V5)).await;
                let filters = vec![
                    $k::Subscription::new($k::TopicFilter::new("a/#").unwrap(), QoS::AtLeastOnce),
                    $k::Subscription::new($k::TopicFilter::new("b/+").unwrap(), QoS::ExactlyOnce),
                ];
                let granted = client.subscribe_many(filters).await.unwrap();
                assert_eq!(granted, vec![Ok(QoS::AtLeastOnce), Ok(QoS::ExactlyOnce)]);
                let code = client.unsubscribe("a/#").await.unwrap();
                assert_eq!(code, $k::proto::UnsubAckReasonCode::Success);
                client
                    .publish_and_wait(message("a/x", "gone", QoS::AtLeastOnce))
                    .await
                    .unwrap();
                client
                    .publish_and_wait(message("b/x", "kept", QoS::AtLeastOnce))
                    .await
                    .unwrap();
                assert_eq!(next_message(&mut events).await.topic.as_str(), "b/x");
                assert!(matches!(
                    client.subscribe("bad/#/x", QoS::AtMostOnce).await,
                    Err(Error::InvalidTopic(_))
                ));
            }
        }

        $crate::__suite_test! { $mode
            async fn manual_acknowledgements() {
                let broker = Mosquitto::plain();
                let (client, mut events) =
                    start(options(&broker.url(), "manual", ProtocolVersion::V5).manual_acks(true))
                        .await;
                client.subscribe("m/#", QoS::ExactlyOnce).await.unwrap();
                for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
                    client.try_publish(message("m/x", "payload", qos)).unwrap();
                    let token = within("a message to acknowledge", async {
                        loop {
                            if let Some(Event::Message {
                                ack: Some(token), ..
                            }) = events.recv().await
                            {
                                return token;
                            }
                        }
                    })
                    .await;
                    client.ack(token).unwrap();
                }
                // Acknowledged messages are not redelivered: the next one is new.
                client
                    .publish_and_wait(message("m/y", "next", QoS::AtLeastOnce))
                    .await
                    .unwrap();
                assert_eq!(next_message(&mut events).await.topic.as_str(), "m/y");
            }
        }

        $crate::__suite_test! { $mode
            async fn disconnect_sends_what_was_queued_first() {
                let broker = Mosquitto::plain();
                let (sub, mut events) =
                    start(options(&broker.url(), "flush-sub", ProtocolVersion::V3_1_1)).await;
                sub.subscribe("flush", QoS::AtLeastOnce).await.unwrap();
                let (publisher, mut pub_events) =
                    start(options(&broker.url(), "flush-pub", ProtocolVersion::V3_1_1)).await;
                for i in 0..300u32 {
                    let qos = if i % 3 == 0 {
                        QoS::AtMostOnce
                    } else {
                        QoS::AtLeastOnce
                    };
                    publisher
                        .try_publish(message("flush", i.to_be_bytes().to_vec(), qos))
                        .unwrap();
                }
                publisher.disconnect().await.unwrap();
                until_closed(&mut pub_events).await;
                // The broker may let QoS 0 overtake queued QoS 1 messages: check that all came.
                let mut seen = std::collections::BTreeSet::new();
                while seen.len() < 300 {
                    assert!(
                        seen.insert(index(&next_message(&mut events).await)),
                        "duplicate"
                    );
                }
            }
        }

        $crate::__suite_test! { $mode
            async fn a_file_store_sends_what_a_stopped_process_had_queued() {
                // A process publishes while no broker is reachable, then dies (abort: no
                // DISCONNECT, nothing flushed). A new process on the same store sends every
                // QoS 1/2 message it had accepted, once, and with its original token.
                use $k::SessionStore as _;
                const COUNT: u32 = 60;
                let dir = $crate::tempdir();
                // What a store left in the directory holds (once no client has it open).
                let stored = || {
                    let loaded = $k::FileStore::open(dir.path())
                        .expect("the store is free")
                        .load()
                        .expect("the store loads");
                    assert!(loaded.set_aside.is_empty(), "{:?}", loaded.set_aside);
                    loaded.outgoing.len() + loaded.incoming.len() + loaded.queued.len()
                };
                let store = || $k::FileStore::open(dir.path()).expect("store").sync(false);
                let dead = format!("mqtt://127.0.0.1:{}", $crate::free_port());
                let (offline, mut offline_events) = connect(
                    options(&dead, "durable-pub", ProtocolVersion::V3_1_1)
                        .persistent_session()
                        .reconnect(fast_reconnect())
                        .store(store()),
                )
                .expect("valid options");
                let mut tokens = Vec::new();
                for i in 0..COUNT {
                    let qos = if i % 2 == 0 { QoS::AtLeastOnce } else { QoS::ExactlyOnce };
                    let handle = offline
                        .try_publish(message("durable", i.to_be_bytes().to_vec(), qos))
                        .unwrap();
                    tokens.push(handle.token());
                }
                within("every message taken by the session", async {
                    while offline.stats().queued < COUNT as usize {
                        $sleep(Duration::from_millis(10)).await;
                    }
                })
                .await;
                offline.abort();
                until_closed(&mut offline_events).await;
                drop(offline);
                // The driver has stopped, but may not have dropped its store yet.
                let mut kept = 0;
                for _ in 0..200 {
                    if let Ok(store) = $k::FileStore::open(dir.path()) {
                        drop(store);
                        kept = stored();
                        break;
                    }
                    $sleep(Duration::from_millis(10)).await;
                }
                assert_eq!(kept, COUNT as usize, "the dying process kept them");

                let broker = Mosquitto::plain();
                let (sub, mut events) = start(
                    options(&broker.url(), "durable-sub", ProtocolVersion::V3_1_1),
                )
                .await;
                sub.subscribe("durable", QoS::ExactlyOnce).await.unwrap();
                let (restarted, mut pub_events) = start(
                    options(&broker.url(), "durable-pub", ProtocolVersion::V3_1_1)
                        .persistent_session()
                        .store(store()),
                )
                .await;
                // In order per QoS: mosquitto routes a QoS 2 message on its PUBREL, so a QoS 1
                // message sent after it may overtake it.
                let mut last: [Option<u32>; 2] = [None, None];
                for _ in 0..COUNT {
                    let i = index(&next_message(&mut events).await);
                    let lane = &mut last[(i % 2) as usize];
                    assert!(lane.is_none_or(|before| before < i), "{i} after {lane:?}");
                    *lane = Some(i);
                }
                assert_eq!(last, [Some(COUNT - 2), Some(COUNT - 1)], "every message came");
                let mut completed = Vec::new();
                within("every restored message completed", async {
                    while completed.len() < COUNT as usize {
                        match pub_events.recv().await {
                            Some(Event::Published { token, outcome }) => {
                                assert!(
                                    matches!(
                                        outcome,
                                        PublishOutcome::Acknowledged { .. }
                                            | PublishOutcome::Completed { .. }
                                    ),
                                    "{outcome:?}"
                                );
                                completed.push(token);
                            }
                            Some(Event::Closed) | None => panic!("stopped"),
                            Some(_) => {}
                        }
                    }
                })
                .await;
                // QoS 1 completes in fewer steps than QoS 2: compare as sets.
                completed.sort();
                assert_eq!(completed, tokens, "restored messages keep their tokens");
                $sleep(Duration::from_millis(200)).await;
                assert!(events.try_recv().is_none(), "nothing arrives twice");
                restarted.disconnect().await.unwrap();
                until_closed(&mut pub_events).await;
                drop(restarted);
                let mut left = usize::MAX;
                for _ in 0..200 {
                    if $k::FileStore::open(dir.path()).is_ok() {
                        left = stored();
                        break;
                    }
                    $sleep(Duration::from_millis(10)).await;
                }
                assert_eq!(left, 0, "a completed session leaves an empty store");
            }
        }

        $crate::__suite_test! { $mode
            async fn a_corrupt_record_is_set_aside_and_every_other_message_is_sent() {
                // A process queues ten messages while no broker is reachable and dies; one byte
                // of one record is then flipped on disk. The next process reports that record
                // set aside, and sends the nine others.
                const COUNT: u32 = 10;
                let dir = $crate::tempdir();
                let dead = format!("mqtt://127.0.0.1:{}", $crate::free_port());
                let store = || $k::FileStore::open(dir.path()).expect("store");
                let (offline, mut offline_events) = connect(
                    options(&dead, "corrupt-pub", ProtocolVersion::V3_1_1)
                        .persistent_session()
                        .reconnect(fast_reconnect())
                        .store(store()),
                )
                .expect("valid options");
                for i in 0..COUNT {
                    let payload = format!("{i:04}-payload");
                    offline
                        .try_publish(message("corrupt", payload, QoS::AtLeastOnce))
                        .unwrap();
                }
                within("every message taken by the session", async {
                    while offline.stats().queued < COUNT as usize {
                        $sleep(Duration::from_millis(10)).await;
                    }
                })
                .await;
                offline.abort();
                until_closed(&mut offline_events).await;
                drop(offline);
                within("the store to be free", async {
                    while $k::FileStore::open(dir.path()).is_err() {
                        $sleep(Duration::from_millis(10)).await;
                    }
                })
                .await;
                let log = dir.path().join("log");
                let mut bytes = std::fs::read(&log).expect("the log");
                let at = bytes
                    .windows(12)
                    .position(|w| w == b"0004-payload")
                    .expect("message 4 in the log");
                bytes[at + 6] ^= 0x01;
                std::fs::write(&log, &bytes).expect("write the log");

                let broker = Mosquitto::plain();
                let (sub, mut events) = start(
                    options(&broker.url(), "corrupt-sub", ProtocolVersion::V3_1_1),
                )
                .await;
                sub.subscribe("corrupt", QoS::AtLeastOnce).await.unwrap();
                let (restarted, mut pub_events) = connect(
                    options(&broker.url(), "corrupt-pub", ProtocolVersion::V3_1_1)
                        .persistent_session()
                        .store(store()),
                )
                .expect("valid options");
                let set_aside = within("RecordSetAside", async {
                    loop {
                        match pub_events.recv().await {
                            Some(Event::RecordSetAside(record)) => return record,
                            Some(Event::Closed) | None => panic!("stopped"),
                            Some(_) => {}
                        }
                    }
                })
                .await;
                assert!(
                    set_aside.kept_at.as_ref().is_some_and(|p| p.exists()),
                    "{set_aside:?}"
                );
                let mut got = Vec::new();
                for _ in 0..COUNT - 1 {
                    let publish = next_message(&mut events).await;
                    got.push(String::from_utf8_lossy(&publish.payload).into_owned());
                }
                let expected: Vec<String> = (0..COUNT)
                    .filter(|i| *i != 4)
                    .map(|i| format!("{i:04}-payload"))
                    .collect();
                assert_eq!(got, expected, "every intact message, in order");
                restarted.disconnect().await.unwrap();
            }
        }

        $crate::__suite_test! { $mode
            async fn commands_from_the_event_handler_do_not_deadlock() {
                let broker = Mosquitto::plain();
                let (client, mut events) =
                    start(options(&broker.url(), "handler", ProtocolVersion::V5)).await;
                client.subscribe("ping/#", QoS::ExactlyOnce).await.unwrap();
                client
                    .publish_and_wait(message("ping/0", "0", QoS::ExactlyOnce))
                    .await
                    .unwrap();
                within("a chain of replies from the handler", async {
                    let mut hops = 0;
                    while hops < 20 {
                        if let Some(Event::Message { publish, .. }) = events.recv().await {
                            hops += 1;
                            // Await commands while messages keep arriving.
                            client
                                .subscribe(&format!("extra/{hops}"), QoS::AtLeastOnce)
                                .await
                                .unwrap();
                            let next = format!("ping/{hops}");
                            client
                                .publish_and_wait(message(&next, publish.payload.clone(), QoS::ExactlyOnce))
                                .await
                                .unwrap();
                        }
                    }
                })
                .await;
            }
        }

        $crate::__suite_test! { $mode
            async fn keep_alive_holds_an_idle_connection() {
                let broker = Mosquitto::plain();
                let (client, mut events) = start(
                    options(&broker.url(), "idle", ProtocolVersion::V3_1_1)
                        .keep_alive(Duration::from_secs(1)),
                )
                .await;
                client.subscribe("idle", QoS::AtLeastOnce).await.unwrap();
                $sleep(Duration::from_millis(3500)).await;
                assert!(client.is_connected());
                client
                    .publish_and_wait(message("idle", "still here", QoS::AtLeastOnce))
                    .await
                    .unwrap();
                let got = next_message(&mut events).await;
                assert_eq!(&got.payload[..], b"still here");
                while let Some(event) = events.try_recv() {
                    assert!(!matches!(event, Event::Disconnected { .. }), "{event:?}");
                }
            }
        }

        /// A scripted broker on loopback, for what a real broker never does: it accepts one
        /// client and reads its CONNECT, runs `script` on the socket, then holds the socket
        /// until the client closes it. Runs on a thread of its own, so any runtime will do.
        fn scripted_broker(
            script: impl FnOnce(&mut std::net::TcpStream) + Send + 'static,
        ) -> (String, std::thread::JoinHandle<()>) {
            use std::io::Read;
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let url = format!("mqtt://{}", listener.local_addr().expect("address"));
            let broker = std::thread::spawn(move || {
                let (mut socket, _) = listener.accept().expect("accept");
                socket.set_read_timeout(Some(LIMIT)).expect("read timeout");
                socket.set_nodelay(true).expect("nodelay");
                let mut buf = [0u8; 256];
                let n = socket.read(&mut buf).expect("CONNECT");
                assert!(n > 0 && buf[0] == 0x10, "expected CONNECT");
                script(&mut socket);
                let mut sink = [0u8; 1024];
                while matches!(socket.read(&mut sink), Ok(n) if n > 0) {}
            });
            (url, broker)
        }

        /// Waits, without blocking the runtime, for the scripted broker to finish.
        async fn broker_finished(broker: std::thread::JoinHandle<()>) {
            within("the scripted broker to finish", async {
                while !broker.is_finished() {
                    $sleep(Duration::from_millis(10)).await;
                }
            })
            .await;
            broker.join().expect("the scripted broker failed");
        }

        $crate::__suite_test! { $mode
            async fn an_oversized_packet_is_refused_from_its_header() {
                use std::io::Write;
                let (url, broker) = scripted_broker(|socket| {
                    socket.write_all(&[0x20, 0x02, 0x00, 0x00]).expect("CONNACK");
                    // PUBLISH announcing 200 MiB, then a little of it.
                    let mut header = vec![0x30];
                    let mut len = 200 * 1024 * 1024u32;
                    loop {
                        let byte = (len % 128) as u8;
                        len /= 128;
                        header.push(if len > 0 { byte | 0x80 } else { byte });
                        if len == 0 {
                            break;
                        }
                    }
                    socket.write_all(&header).expect("header");
                    let _ = socket.write_all(&[0u8; 4096]);
                });
                let options = ClientOptions::new(&url)
                    .client_id("small")
                    .max_packet_size(1024 * 1024)
                    .no_reconnect();
                let (_client, mut events) = connect(options).expect("valid options");
                let reason = within("Disconnected", async {
                    loop {
                        match events.recv().await.expect("events") {
                            Event::Disconnected { reason } => return reason,
                            Event::Closed => panic!("closed without a reason"),
                            _ => {}
                        }
                    }
                })
                .await;
                let $k::ConnectionError::ProtocolViolation(violation) = reason else {
                    panic!("{reason:?}");
                };
                assert!(
                    matches!(
                        violation,
                        $k::ProtocolViolation::Malformed(e)
                            if matches!(e.kind(), $k::proto::DecodeErrorKind::PacketTooLarge { .. })
                    ),
                    "{violation:?}"
                );
                broker_finished(broker).await;
            }
        }

        $crate::__suite_test! { $mode
            async fn packets_trickled_byte_by_byte() {
                use std::io::Write;
                let (url, broker) = scripted_broker(|socket| {
                    // CONNACK, then PUBLISH QoS 0 "a/b" = "hello", one byte per write.
                    let mut bytes = vec![0x20, 0x02, 0x00, 0x00, 0x30, 10, 0x00, 0x03];
                    bytes.extend_from_slice(b"a/bhello");
                    for byte in bytes {
                        socket.write_all(&[byte]).expect("write");
                        std::thread::sleep(Duration::from_millis(2));
                    }
                });
                let options = ClientOptions::new(&url).client_id("trickle").no_reconnect();
                let (client, mut events) = connect(options).expect("valid options");
                let publish = next_message(&mut events).await;
                assert_eq!(
                    (publish.topic.as_str(), &publish.payload[..]),
                    ("a/b", &b"hello"[..])
                );
                client.disconnect().await.unwrap();
                broker_finished(broker).await;
            }
        }

        /// A scripted broker that sends `first` after CONNECT, waits `quiet`, sends `then`, and
        /// reports each read of what the client writes next, with its time, until `expect`
        /// bytes came.
        fn recording_broker(
            first: Vec<u8>,
            quiet: Duration,
            then: Vec<u8>,
            expect: usize,
        ) -> (
            String,
            std::thread::JoinHandle<()>,
            std::sync::mpsc::Receiver<Vec<(std::time::Instant, Vec<u8>)>>,
        ) {
            use std::io::{Read, Write};
            let (reads_tx, reads_rx) = std::sync::mpsc::channel();
            let (url, broker) = scripted_broker(move |socket| {
                socket.write_all(&first).expect("first bytes");
                std::thread::sleep(quiet);
                socket.write_all(&then).expect("then");
                let mut reads = Vec::new();
                let mut got = 0;
                let mut buf = [0u8; 4096];
                while got < expect {
                    let n = socket.read(&mut buf).expect("a read");
                    assert!(n > 0, "closed after {got} bytes");
                    reads.push((std::time::Instant::now(), buf[..n].to_vec()));
                    got += n;
                }
                reads_tx.send(reads).expect("report");
            });
            (url, broker, reads_rx)
        }

        /// What `recording_broker` read, waited for without blocking: on a single-threaded
        /// runtime the driver that ends a hold runs on this thread.
        async fn recorded(
            reads: &std::sync::mpsc::Receiver<Vec<(std::time::Instant, Vec<u8>)>>,
        ) -> Vec<(std::time::Instant, Vec<u8>)> {
            within("the broker's reads", async {
                loop {
                    if let Ok(reads) = reads.try_recv() {
                        return reads;
                    }
                    $sleep(Duration::from_millis(10)).await;
                }
            })
            .await
        }

        $crate::__suite_test! { $mode
            async fn a_write_delay_sends_at_once_after_a_quiet_spell_and_then_once_per_delay() {
                let delay = $k::MAX_WRITE_DELAY;
                let publish = |i: u8| [0x30, 0x04, 0x00, 0x01, b't', i];
                let (url, broker, reads) =
                    recording_broker(vec![0x20, 0x02, 0x00, 0x00], Duration::ZERO, vec![], 66);
                let options = ClientOptions::new(&url)
                    .client_id("held")
                    .no_reconnect()
                    .write_delay(delay);
                let (client, _events) = start(options).await;
                // Quiet for longer than the delay since CONNECT: the next write goes at once.
                $sleep(delay + Duration::from_millis(100)).await;
                let quiet_end = std::time::Instant::now();
                let first = client.try_publish(message("t", vec![0], QoS::AtMostOnce));
                within("a publish after a quiet spell", first.expect("room"))
                    .await
                    .expect("written");
                let at_once = quiet_end.elapsed();
                assert!(at_once < delay / 2, "a quiet connection held {at_once:?}");
                // Within the delay of that write: held until it has passed, then together.
                let mut handles = Vec::new();
                for i in 1..=10u8 {
                    let small = message("t", vec![i], QoS::AtMostOnce);
                    handles.push(client.try_publish(small).expect("room"));
                }
                for handle in handles {
                    within("a held publish", handle).await.expect("written");
                }
                let held = quiet_end.elapsed();
                assert!(held < delay * 2 + Duration::from_secs(5), "held {held:?}");
                let reads = recorded(&reads).await;
                let bytes: Vec<Vec<u8>> = reads.iter().map(|(_, b)| b.clone()).collect();
                let ten: Vec<u8> = (1..=10u8).flat_map(publish).collect();
                assert_eq!(bytes, vec![publish(0).to_vec(), ten], "two writes: one, then ten");
                let gap = reads[1].0.duration_since(reads[0].0);
                assert!(gap >= delay / 2, "writes {gap:?} apart");
                // A full write's worth goes at once, and so does DISCONNECT.
                let started = std::time::Instant::now();
                let large = message("t", vec![7u8; $k::WRITE_DELAY_FLUSH], QoS::AtMostOnce);
                let handle = client.publish(large).await.expect("queued");
                within("a large publish", handle).await.expect("written");
                within("disconnect", client.disconnect()).await.expect("disconnect");
                let took = started.elapsed();
                assert!(took < delay, "a large publish and DISCONNECT took {took:?}");
                broker_finished(broker).await;
            }
        }

        $crate::__suite_test! { $mode
            async fn a_write_delay_acknowledges_what_was_taken_meanwhile_together() {
                let delay = Duration::from_millis(300);
                let mut messages = Vec::new();
                for id in 1..=5u8 {
                    messages.extend_from_slice(&[0x32, 0x06, 0x00, 0x01, b't', 0x00, id, id]);
                }
                let quiet = delay + Duration::from_millis(200);
                let (url, broker, reads) =
                    recording_broker(vec![0x20, 0x02, 0x00, 0x00], quiet, messages, 20);
                let options = ClientOptions::new(&url)
                    .client_id("held-acks")
                    .no_reconnect()
                    .write_delay(delay);
                let (client, mut events) = connect(options).expect("valid options");
                for id in 1..=5u8 {
                    let publish = next_message(&mut events).await;
                    assert_eq!(&publish.payload[..], &[id][..]);
                }
                let reads = recorded(&reads).await;
                let acks: Vec<u8> = (1..=5u8).flat_map(|id| [0x40, 0x02, 0x00, id]).collect();
                let wire: Vec<u8> = reads.iter().flat_map(|(_, b)| b.clone()).collect();
                assert_eq!(wire, acks, "five PUBACKs, in order");
                // The first may leave alone, at once; what is taken within the delay of it
                // leaves together, once the delay has passed.
                assert!(reads.len() <= 2, "{} writes", reads.len());
                if let [(first, _), (second, _)] = &reads[..] {
                    let gap = second.duration_since(*first);
                    assert!(gap >= delay / 2, "writes {gap:?} apart");
                }
                within("disconnect", client.disconnect()).await.expect("disconnect");
                broker_finished(broker).await;
            }
        }

        $crate::__hostile_suite! { $k, $mode, $sleep }

        $crate::__suite_test! { $mode
            async fn a_broker_that_accepts_and_drops_at_once_meets_a_growing_delay() {
                // Duplicate client id, quota, policy: CONNACK, then the connection is closed.
                let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
                let scripts: Vec<$crate::Script> = (0..6)
                    .map(|_| {
                        let accepted = accepted.clone();
                        Box::new(move |conn: &mut $crate::Conn| {
                            accepted.lock().unwrap().push(std::time::Instant::now());
                            conn.connack();
                        }) as $crate::Script
                    })
                    .collect();
                let broker = $crate::ScriptedBroker::start(scripts);
                let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
                    .jitter(0.0)
                    .stable_after(Duration::from_secs(10));
                let (client, mut events) = connect(
                    ClientOptions::new(&broker.url())
                        .client_id("dropped")
                        .reconnect(backoff),
                )
                .unwrap();
                within("six connections", async {
                    let mut connected = 0;
                    while connected < 6 {
                        match events.recv().await {
                            Some(Event::Connected { .. }) => connected += 1,
                            Some(Event::Closed) | None => panic!("stopped"),
                            _ => {}
                        }
                    }
                })
                .await;
                client.abort();
                let times = accepted.lock().unwrap().clone();
                let gaps: Vec<u128> = times.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
                eprintln!("accept-and-drop: gaps between attempts {gaps:?} ms");
                // 100, 200, 400, 800, 1600 ms: each no shorter than the backoff asks, and
                // growing, not a reconnect every half second.
                for (k, gap) in gaps.iter().enumerate() {
                    let floor = 100u128 << k;
                    assert!(*gap >= floor, "gap {k} is {gap} ms, below {floor} ms: {gaps:?}");
                    assert!(*gap < floor + 1_000, "gap {k} is {gap} ms: {gaps:?}");
                }
                broker.join();
            }
        }

        $crate::__suite_test! { $mode
            async fn a_client_that_cannot_connect_tells_every_caller_why() {
                use $k::{ConnectFailure, DialError};
                // Nothing listens: the TCP connection is refused.
                let nobody = format!("mqtt://127.0.0.1:{}", $crate::free_port());
                let (client, mut events) = connect(
                    ClientOptions::new(&nobody).client_id("nobody").no_reconnect(),
                )
                .unwrap();
                let error = within("subscribe", client.subscribe("a", QoS::AtLeastOnce))
                    .await
                    .unwrap_err();
                assert!(
                    matches!(
                        &error,
                        Error::Stopped(ConnectFailure::Dial { error: DialError::Connect(_), .. })
                    ),
                    "{error:?}"
                );
                until_closed(&mut events).await;
                let error = client.publish_and_wait(message("a", "x", QoS::AtMostOnce)).await.unwrap_err();
                assert!(matches!(&error, Error::Stopped(_)), "after the stop too: {error:?}");
                // Calls racing the stop are answered too, never left waiting.
                for i in 0..50 {
                    let (client, _events) = connect(
                        ClientOptions::new(&nobody).client_id("racer").no_reconnect(),
                    )
                    .unwrap();
                    if i % 2 == 0 {
                        $sleep(Duration::from_micros(200 * i)).await;
                    }
                    let error = within("a call racing the stop", client.publish_and_wait(message("a", "x", QoS::AtLeastOnce)))
                        .await
                        .unwrap_err();
                    assert!(matches!(&error, Error::Stopped(_) | Error::Closed), "{error:?}");
                }

                // A CA the broker's certificate does not chain to: the TLS handshake fails.
                let broker = Mosquitto::start(MosquittoConfig::new().tls());
                let wrong = broker.certs().other_ca.cert_pem.clone();
                let (client, _events) = connect(
                    options(&broker.tls_url(), "tls-cause", ProtocolVersion::V5).ca_pem(wrong),
                )
                .unwrap();
                let error = within("publish", client.publish_and_wait(message("a", "x", QoS::AtLeastOnce)))
                    .await
                    .unwrap_err();
                assert!(
                    matches!(
                        &error,
                        Error::Stopped(ConnectFailure::Dial { error: DialError::Tls(_), .. })
                    ),
                    "{error:?}"
                );
                assert!(error.to_string().contains("certificate"), "{error}");

                // A broker that accepts TCP and never answers CONNECT: the connect timeout.
                let (url, silent) = scripted_broker(|_| {});
                let (client, _events) = connect(
                    ClientOptions::new(&url)
                        .client_id("silent")
                        .no_reconnect()
                        .connect_timeout(Duration::from_millis(500)),
                )
                .unwrap();
                let error = within("subscribe", client.subscribe("a", QoS::AtMostOnce))
                    .await
                    .unwrap_err();
                assert!(
                    matches!(
                        &error,
                        Error::Stopped(ConnectFailure::Connection {
                            reason: $k::ConnectionError::ConnectTimeout,
                            ..
                        })
                    ),
                    "{error:?}"
                );
                broker_finished(silent).await;
            }
        }

        $crate::__suite_test! { $mode
            async fn a_permanent_refusal_stops_with_its_reason_code() {
                let broker = Mosquitto::start(MosquittoConfig::new().password("alice", "right"));
                for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
                    let (client, mut events) = connect(
                        options(&broker.url(), "refused", version)
                            .credentials("alice", "wrong")
                            .reconnect(fast_reconnect())
                            .stop_on_permanent_refusal(true),
                    )
                    .unwrap();
                    let error = within("publish", client.publish_and_wait(message("a", "x", QoS::AtLeastOnce)))
                        .await
                        .unwrap_err();
                    let Error::Stopped(cause) = &error else {
                        panic!("{error:?}");
                    };
                    let code = cause.refusal().expect("a CONNACK refusal");
                    assert!(cause.is_permanent(), "{version:?}: {code:?}");
                    assert!(
                        matches!(
                            code,
                            $k::proto::ConnectReasonCode::NotAuthorized
                                | $k::proto::ConnectReasonCode::BadUserNameOrPassword
                        ),
                        "{version:?}: {code:?}"
                    );
                    eprintln!("mosquitto refuses a wrong password ({version:?}) with {code:?}");
                    until_closed(&mut events).await;
                }
            }
        }

        $crate::__suite_test! { $mode
            async fn the_connect_hook_refreshes_credentials_after_a_refusal() {
                use std::sync::{Arc, Mutex};
                use $k::ConnectDecision;
                let mut broker = Mosquitto::start(MosquittoConfig::new().password("device", "token-1"));
                // The token service issues the current token; the hook caches it and asks
                // again only when the broker refused the cached one.
                let service = Arc::new(Mutex::new("token-1".to_string()));
                let cached = Arc::new(Mutex::new(None::<String>));
                let seen = Arc::new(Mutex::new(Vec::new()));
                let (svc, cache, log) = (service.clone(), cached.clone(), seen.clone());
                let hook = move |attempt: $k::ConnectAttempt| {
                    let refused = attempt.last_failure.as_ref().and_then(|f| f.refusal());
                    let mut cache = cache.lock().unwrap();
                    if cache.is_none() || refused.is_some() {
                        *cache = Some(svc.lock().unwrap().clone());
                    }
                    let token = cache.clone().unwrap_or_default();
                    log.lock().unwrap().push((attempt.attempt, refused, token.clone()));
                    async move { ConnectDecision::proceed().credentials("device", token) }
                };
                let (client, mut events) = start(
                    options(&broker.url(), "hooked", ProtocolVersion::V5)
                        .reconnect(fast_reconnect())
                        .before_connect(hook),
                )
                .await;
                // The token rotates; the broker restarts and knows only the new one.
                *service.lock().unwrap() = "token-2".to_string();
                broker.set_password("device", "token-2");
                broker.restart();
                within("Connected again", async {
                    loop {
                        match events.recv().await {
                            Some(Event::Connected { .. }) => break,
                            Some(Event::Closed) | None => panic!("gave up"),
                            _ => {}
                        }
                    }
                })
                .await;
                let seen = seen.lock().unwrap().clone();
                eprintln!("connect hook calls: {seen:?}");
                assert_eq!(seen[0].2, "token-1");
                let refusal = seen
                    .iter()
                    .position(|(_, refused, _)| refused.is_some())
                    .expect("an attempt with the stale token was refused");
                assert_eq!(seen[refusal].2, "token-2", "refreshed after the refusal: {seen:?}");
                assert_eq!(seen.last().map(|s| s.2.as_str()), Some("token-2"));
                client.publish_and_wait(message("t", "x", QoS::AtLeastOnce)).await.unwrap();
                let stats = client.stats();
                assert!(stats.connections >= 2 && stats.reconnects() >= 1, "{stats:?}");
                assert!(stats.connect_attempts > stats.connections, "{stats:?}");
                client.disconnect().await.unwrap();
            }
        }

        $crate::__suite_test! { $mode
            async fn will_properties_and_delay_reach_the_subscriber() {
                let broker = Mosquitto::plain();
                // A 5.0 subscriber, to see the properties.
                let (watcher_client, mut watcher) =
                    start(options(&broker.url(), "props-watcher", ProtocolVersion::V5)).await;
                watcher_client.subscribe("will/#", QoS::AtLeastOnce).await.unwrap();
                let properties = $k::proto::PublishProperties {
                    content_type: Some($k::proto::MqttString::new("text/plain").unwrap()),
                    user_properties: vec![$k::proto::UserProperty {
                        name: $k::proto::MqttString::new("site").unwrap(),
                        value: $k::proto::MqttString::new("lab").unwrap(),
                    }],
                    ..Default::default()
                };
                let will = message("will/props", "gone", QoS::AtLeastOnce).properties(properties);
                let (client, _events) = start(
                    options(&broker.url(), "props", ProtocolVersion::V5)
                        .will(will)
                        .will_delay(Duration::from_secs(1))
                        .session_expiry(60),
                )
                .await;
                let cut = std::time::Instant::now();
                client.abort();
                let publish = next_message(&mut watcher).await;
                let waited = cut.elapsed();
                assert_eq!(&publish.payload[..], b"gone");
                assert_eq!(
                    publish.properties.content_type.as_ref().map(|c| c.as_str()),
                    Some("text/plain")
                );
                assert_eq!(publish.properties.user_properties.len(), 1);
                assert!(waited >= Duration::from_millis(900), "the will delay: {waited:?}");
            }
        }

        $crate::__suite_test! { $mode
            async fn request_response_matches_answers_by_correlation_data() {
                let mut broker = Mosquitto::plain();
                // A responder: answers each request on its Response Topic, with its
                // Correlation Data.
                let (responder, mut requests) =
                    start(options(&broker.url(), "responder", ProtocolVersion::V5).reconnect(fast_reconnect())).await;
                responder.subscribe("service/echo", QoS::AtLeastOnce).await.unwrap();
                let answering = responder.clone();
                let (client, mut events) = start(
                    options(&broker.url(), "requester", ProtocolVersion::V5)
                        .reconnect(fast_reconnect())
                        .request_timeout(Duration::from_secs(20)),
                )
                .await;
                let serve = async {
                    let mut answered = 0;
                    while answered < 2 {
                        let Some(event) = requests.recv().await else { break };
                        let Event::Message { publish, .. } = event else { continue };
                        let props = &publish.properties;
                        let topic = props.response_topic.clone().expect("a response topic");
                        let mut reply = message(topic.as_str(), [&b"re: "[..], &publish.payload[..]].concat(), QoS::AtLeastOnce);
                        reply.properties.correlation_data = props.correlation_data.clone();
                        answering.publish_and_wait(reply).await.unwrap();
                        answered += 1;
                    }
                };
                let ask = async {
                    let (a, b) = $crate::join(client.request("service/echo", "one"), client.request("service/echo", "two")).await;
                    assert_eq!(&a.unwrap().payload[..], b"re: one");
                    assert_eq!(&b.unwrap().payload[..], b"re: two");
                };
                within("two requests answered", $crate::join(serve, ask)).await;
                // The broker restarts without the session: the response topic is subscribed
                // again by itself, and requests work again.
                broker.kill();
                broker.restart();
                within("Resubscribed", async {
                    loop {
                        match events.recv().await {
                            Some(Event::Resubscribed { .. }) => break,
                            Some(Event::Closed) | None => panic!("gave up"),
                            _ => {}
                        }
                    }
                })
                .await;
                responder.subscribe("service/echo", QoS::AtLeastOnce).await.unwrap();
                let serve = async {
                    loop {
                        let Some(Event::Message { publish, .. }) = requests.recv().await else { continue };
                        let props = &publish.properties;
                        let topic = props.response_topic.clone().expect("a response topic");
                        let mut reply = message(topic.as_str(), "again", QoS::AtLeastOnce);
                        reply.properties.correlation_data = props.correlation_data.clone();
                        answering.publish_and_wait(reply).await.unwrap();
                        break;
                    }
                };
                let (_, answer) = within("a request after the restart", $crate::join(serve, client.request("service/echo", "x"))).await;
                assert_eq!(&answer.unwrap().payload[..], b"again");
                // Nobody answers: the request times out, within its bound.
                let (quiet, _events) = start(
                    options(&broker.url(), "impatient", ProtocolVersion::V5)
                        .request_timeout(Duration::from_millis(300)),
                )
                .await;
                let error = within("a timeout", quiet.request("nobody/listens", "?")).await.unwrap_err();
                assert!(matches!(error, Error::RequestTimeout(_)), "{error:?}");
                // Before 5.0 there is no request/response.
                let (old, _events) = start(options(&broker.url(), "old", ProtocolVersion::V3_1_1)).await;
                let error = old.request("service/echo", "x").await.unwrap_err();
                assert!(matches!(error, Error::NeedsV5(_)), "{error:?}");
                // Responses never show up as messages of the requester.
                while let Some(event) = events.try_recv() {
                    assert!(!matches!(event, Event::Message { .. }), "{event:?}");
                }
                client.disconnect().await.unwrap();
            }
        }

        $crate::__suite_test! { $mode
            async fn enhanced_authentication_and_reauthentication() {
                // mosquitto 2.0 runs enhanced authentication only through a plugin of its own,
                // so a scripted broker plays the server: it requires a toy challenge-response
                // method, challenges, accepts with a proof of its own, then re-authenticates
                // the client on request while a message flows [MQTT-4.12.0-5 v5.0]
                // [MQTT-4.12.1-1 v5.0].
                use $k::proto::{
                    Auth, AuthProperties, AuthReasonCode, ConnAck, MqttString, Packet, PubAck,
                };
                use $k::{AuthFailure, Authenticator};
                const METHOD: &str = "XOR-KEY";
                const KEY: u8 = 0x5A;
                fn answer(nonce: &[u8]) -> Vec<u8> {
                    nonce.iter().map(|b| b ^ KEY).collect()
                }
                fn proof(nonce: &[u8]) -> Vec<u8> {
                    nonce.iter().map(|b| b.rotate_left(3) ^ KEY).collect()
                }
                /// The client side: answers each nonce, checks the proof of the last one.
                #[derive(Default)]
                struct XorKey {
                    nonce: Option<Vec<u8>>,
                }
                impl Authenticator for XorKey {
                    fn method(&self) -> &str {
                        METHOD
                    }
                    fn start(&mut self) -> Result<Option<bytes::Bytes>, AuthFailure> {
                        self.nonce = None;
                        Ok(None)
                    }
                    fn challenge(
                        &mut self,
                        nonce: Option<&[u8]>,
                    ) -> Result<Option<bytes::Bytes>, AuthFailure> {
                        let nonce = nonce.ok_or(AuthFailure::new("no nonce"))?;
                        self.nonce = Some(nonce.to_vec());
                        Ok(Some(answer(nonce).into()))
                    }
                    fn finish(&mut self, data: Option<&[u8]>) -> Result<(), AuthFailure> {
                        let nonce = self.nonce.take().ok_or(AuthFailure::new("no challenge"))?;
                        if data != Some(&proof(&nonce)[..]) {
                            return Err(AuthFailure::new("wrong proof"));
                        }
                        Ok(())
                    }
                }
                fn auth(reason_code: AuthReasonCode, data: Vec<u8>) -> Packet {
                    Packet::Auth(Auth {
                        reason_code,
                        properties: AuthProperties {
                            authentication_method: Some(MqttString::new(METHOD).unwrap()),
                            authentication_data: Some(data.into()),
                            ..Default::default()
                        }.into(),
                    })
                }
                /// Reads until the client's answer to `nonce`, acknowledging messages on the
                /// way; panics on a wrong answer.
                fn expect_answer(conn: &mut $crate::Conn, nonce: &[u8]) {
                    loop {
                        match conn.read_packet().expect("the client's answer") {
                            Packet::Auth(a) => {
                                assert_eq!(a.reason_code, AuthReasonCode::ContinueAuthentication);
                                let method = a.properties.authentication_method.as_deref();
                                assert_eq!(method, Some(METHOD));
                                assert_eq!(
                                    a.properties.authentication_data.as_deref(),
                                    Some(&answer(nonce)[..]),
                                    "a wrong answer"
                                );
                                return;
                            }
                            Packet::Publish(p) => {
                                let id = p.packet_id().expect("QoS 1");
                                conn.send(Packet::PubAck(PubAck::new(id))).unwrap();
                            }
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                }
                let exchanges = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let done = exchanges.clone();
                let script: $crate::Script = Box::new(move |conn: &mut $crate::Conn| {
                    let connect = conn.connect.clone().expect("a 5.0 CONNECT");
                    assert_eq!(connect.properties.authentication_method.as_deref(), Some(METHOD));
                    let nonce = vec![1, 2, 3, 4];
                    conn.send(auth(AuthReasonCode::ContinueAuthentication, nonce.clone())).unwrap();
                    expect_answer(conn, &nonce);
                    let mut connack = ConnAck::accepted(false);
                    connack.properties.authentication_method =
                        Some(MqttString::new(METHOD).unwrap());
                    connack.properties.authentication_data = Some(proof(&nonce).into());
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    conn.send(Packet::from(connack)).unwrap();
                    let nonce = vec![9, 8, 7, 6, 5];
                    loop {
                        match conn.read_packet() {
                            Some(Packet::Auth(a)) => {
                                assert_eq!(a.reason_code, AuthReasonCode::ReAuthenticate);
                                let method = a.properties.authentication_method.as_deref();
                                assert_eq!(method, Some(METHOD));
                                let challenge =
                                    auth(AuthReasonCode::ContinueAuthentication, nonce.clone());
                                conn.send(challenge).unwrap();
                                expect_answer(conn, &nonce);
                                // Counted before the client can see it, which it may at once.
                                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                conn.send(auth(AuthReasonCode::Success, proof(&nonce))).unwrap();
                            }
                            Some(Packet::Publish(p)) => {
                                let id = p.packet_id().expect("QoS 1");
                                conn.send(Packet::PubAck(PubAck::new(id))).unwrap();
                            }
                            Some(Packet::PingReq) => {
                                conn.send(Packet::PingResp).unwrap();
                            }
                            Some(Packet::Disconnect(_)) | None => return,
                            Some(other) => panic!("unexpected {other:?}"),
                        }
                    }
                });
                let broker = $crate::ScriptedBroker::start(vec![script]);
                let (client, mut events) = start(
                    options(&broker.url(), "enhanced", ProtocolVersion::V5)
                        .authenticator(XorKey::default()),
                )
                .await;
                // A message in flight while the re-authentication runs completes too.
                let published = client
                    .try_publish(message("t", "during", QoS::AtLeastOnce))
                    .unwrap();
                within("re-authentication", client.reauthenticate())
                    .await
                    .expect("re-authenticated");
                within("the events", async {
                    loop {
                        match events.recv().await {
                            Some(Event::Reauthenticated { .. }) => break,
                            Some(Event::Closed) | None => panic!("stopped"),
                            _ => {}
                        }
                    }
                })
                .await;
                let outcome = within("the publish", published).await.unwrap();
                assert!(
                    matches!(outcome, PublishOutcome::Acknowledged { .. }),
                    "{outcome:?}"
                );
                assert_eq!(exchanges.load(std::sync::atomic::Ordering::SeqCst), 2);
                client.disconnect().await.unwrap();
                within("the scripted broker to finish", async {
                    while !broker.is_finished() {
                        $sleep(Duration::from_millis(10)).await;
                    }
                })
                .await;
                broker.join();

                // Enhanced authentication is 5.0 only.
                let refused = connect(
                    options("mqtt://127.0.0.1:1", "old", ProtocolVersion::V3_1_1)
                        .authenticator(XorKey::default()),
                );
                assert!(
                    matches!(
                        refused,
                        Err(Error::Options($k::OptionsError::Config(
                            $k::ConfigError::EnhancedAuthNeedsV5
                        )))
                    ),
                    "{:?}",
                    refused.map(|_| ())
                );
            }
        }

        $crate::__suite_test! { $mode
            async fn invalid_options_are_reported_at_connect() {
                assert!(matches!(
                    connect(ClientOptions::new("http://x")),
                    Err(Error::Options(_))
                ));
                let missing = ClientOptions::new("mqtts://127.0.0.1:1").ca_file("/nonexistent/ca.pem");
                assert!(matches!(connect(missing), Err(Error::Options(_))));
            }
        }
    };
}

/// One test of [`client_suite!`], run by the suite's test attribute or `block_on`.
#[doc(hidden)]
#[macro_export]
macro_rules! __suite_test {
    ([attribute $test:meta] async fn $name:ident() { $($body:tt)* }) => {
        #[$test]
        async fn $name() {
            $($body)*
        }
    };
    ([block_on $block_on:path] async fn $name:ident() { $($body:tt)* }) => {
        #[test]
        fn $name() {
            $block_on(async { $($body)* })
        }
    };
}
