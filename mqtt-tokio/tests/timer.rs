//! How often the driver moves its timer: rarely, however many messages pass. Moving a timer
//! can cost a system call (async-io wakes its reactor thread for each one), and the core's
//! deadline moves later on almost every turn.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use mqtt_io::client::{Client, Driver};
use mqtt_session::client::{BrokerUrl, DialError, TlsOptions};
use mqtt_testkit::Mosquitto;
use mqtt_tokio::{ClientOptions, Message, QoS, Tokio, TokioTimer, Transport};

/// Timer moves made by every [`Counting`] client of this test binary.
static TIMER_SETS: AtomicUsize = AtomicUsize::new(0);

/// Tokio, with every timer move counted.
struct Counting;

/// A [`TokioTimer`] that counts its moves.
struct CountingTimer(TokioTimer);

impl mqtt_io::Timer for CountingTimer {
    fn set(mut self: Pin<&mut Self>, deadline: Instant) {
        TIMER_SETS.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut self.0).set(deadline);
    }

    fn poll_fired(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll_fired(cx)
    }
}

impl mqtt_io::Runtime for Counting {
    type Transport = Transport;
    type Timer = CountingTimer;

    fn connect(
        url: BrokerUrl,
        tls: Option<mqtt_io::TlsConfig>,
        tls_options: TlsOptions,
        max_packet_size: usize,
    ) -> impl Future<Output = Result<Transport, DialError>> + Send {
        <Tokio as mqtt_io::Runtime>::connect(url, tls, tls_options, max_packet_size)
    }

    fn timer() -> CountingTimer {
        CountingTimer(<Tokio as mqtt_io::Runtime>::timer())
    }

    fn now() -> Instant {
        <Tokio as mqtt_io::Runtime>::now()
    }

    fn spawn(driver: Driver) {
        <Tokio as mqtt_io::Runtime>::spawn(driver);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_connection_moves_its_timer_a_few_times_not_once_a_message() {
    const MESSAGES: usize = 2_000;
    let broker = Mosquitto::plain();
    let options = ClientOptions::new(&broker.url())
        .client_id("timer-moves")
        .keep_alive(Duration::from_secs(30));
    let (client, _events) = Client::<Counting>::connect(options).expect("options");
    let run = async {
        let mut handles = Vec::with_capacity(MESSAGES);
        for i in 0..MESSAGES {
            let message = Message::new("timer/moves", i.to_string())
                .expect("topic")
                .qos(QoS::AtLeastOnce);
            handles.push(client.publish(message).await.expect("queued"));
        }
        for handle in handles {
            handle.await.expect("acknowledged");
        }
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the messages complete in time");
    let sets = TIMER_SETS.load(Ordering::Relaxed);
    // Each of the 2,000 flows moves the keep-alive and the in-flight deadlines; a timer that
    // followed them moved thousands of times. Earlier deadlines alone (connecting, the
    // first keep-alive, a packet read in part) take a few.
    assert!(
        sets <= 20,
        "the timer moved {sets} times for {MESSAGES} messages"
    );
}
