//! End-to-end throughput through one local mosquitto: one publisher and one subscriber
//! connection per run, rumqttc and ours (on tokio, async-std and smol) side by side in the same
//! process and run.
//!
//! For each client and QoS it reports messages/s received, losses, duplicates, and the
//! client's CPU time per message (user + system of this process, which holds both client
//! connections; the broker is another process). On a small machine the broker is the
//! bottleneck, so CPU per message is the figure that shows a client's own cost.
//!
//! At QoS 1 and 2 our tokio client also runs with its session in a store (a `MemoryStore`, a
//! `FileStore` syncing each commit, and one that does not sync), which shows what durability
//! costs: every QoS 1/2 message is recorded before it is sent.
//!
//! `cargo bench -p mqtt-benches --bench e2e` (needs mosquitto installed). Set `E2E_SCALE` to
//! a fraction (e.g. 0.1) for a quick run.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use mqtt_testkit::{Mosquitto, MosquittoConfig};

/// Messages in flight per publisher, for every client.
const INFLIGHT: u16 = 100;
/// Payload size of every message.
const PAYLOAD: usize = 64;
/// The write delay of the `+ write delay` rows (`ClientOptions::write_delay`), unless
/// `E2E_WRITE_DELAY_US` gives another: below tokio's 1 ms timer tick, which tokio rounds up
/// to the next tick (so there writes are 0.7–1.7 ms apart under load, on async-io 0.7 ms).
fn write_delay() -> Duration {
    let micros = std::env::var("E2E_WRITE_DELAY_US")
        .ok()
        .and_then(|us| us.parse().ok())
        .unwrap_or(700);
    Duration::from_micros(micros)
}
/// A run ends when nothing arrived for this long.
const IDLE: Duration = Duration::from_secs(10);

/// One measured run.
struct Run {
    client: &'static str,
    qos: u8,
    sent: u64,
    received: u64,
    duplicates: u64,
    elapsed: Duration,
    cpu: Duration,
}

/// CPU time (user + system) of this process, to the nanosecond, and of its children that
/// ended (the mosquitto command-line clients), in the ticks of /proc.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // cutime and cstime are fields 16 and 17 of the file, 14 and 15 after the name.
    let children = ticks(13) + ticks(14);
    let hz = clock_ticks_per_second();
    mqtt_benches::process_cpu_time() + Duration::from_secs_f64(children as f64 / hz as f64)
}

fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

fn payload(seq: u64) -> Vec<u8> {
    let mut p = vec![0u8; PAYLOAD];
    p[..8].copy_from_slice(&seq.to_be_bytes());
    p
}

/// Counts deliveries by sequence number.
struct Tally {
    seen: Vec<u8>,
    received: u64,
    duplicates: u64,
}

impl Tally {
    fn new(n: u64) -> Self {
        Self {
            seen: vec![0; n as usize],
            received: 0,
            duplicates: 0,
        }
    }

    fn record(&mut self, payload: &[u8]) {
        let Some(seq) = payload
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
        else {
            return;
        };
        match self.seen.get_mut(seq as usize) {
            Some(0) => {
                self.seen[seq as usize] = 1;
                self.received += 1;
            }
            Some(_) => self.duplicates += 1,
            None => {}
        }
    }

    fn complete(&self) -> bool {
        self.received as usize == self.seen.len()
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = (Tally, Duration)>>>;

/// One of our clients, run to the end: the bench's tokio runtime, broker URL, topic, QoS,
/// message count.
type OurRun = fn(&tokio::runtime::Runtime, String, String, u8, u64) -> (Tally, Duration);

/// The application side of a run (its publishing loop and the subscriber's receive loop) on
/// the bench's tokio runtime.
mod on_tokio {
    use super::{BoxFuture, Duration, Future, Tally};

    pub(crate) fn block_on(rt: &tokio::runtime::Runtime, run: BoxFuture) -> (Tally, Duration) {
        rt.block_on(run)
    }

    pub(crate) fn spawn<T: Send + 'static>(
        task: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = Option<T>> {
        let handle = tokio::spawn(task);
        async move { handle.await.ok() }
    }

    pub(crate) fn detach(task: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(task);
    }

    /// Ends a receive loop after [`IDLE`](super::IDLE) without a message: a tokio timeout on
    /// each wait, which costs a timer-wheel entry and no system call.
    pub(crate) struct Idle;

    impl Idle {
        pub(crate) fn new() -> Self {
            Self
        }

        /// `f`'s output, or `None` once nothing came for the idle time.
        pub(crate) async fn within<T>(&mut self, f: impl Future<Output = T>) -> Option<T> {
            tokio::time::timeout(super::IDLE, f).await.ok()
        }

        /// Whether the run is over after `within` gave `None`.
        pub(crate) fn quiet(&mut self) -> bool {
            true
        }
    }
}

/// The application side of a run on async-std's executor, as an async-std application runs.
mod on_async_std {
    use super::{BoxFuture, Duration, Future, Tally};

    pub(crate) fn block_on(_: &tokio::runtime::Runtime, run: BoxFuture) -> (Tally, Duration) {
        async_std::task::block_on(run)
    }

    pub(crate) fn spawn<T: Send + 'static>(
        task: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = Option<T>> {
        let handle = async_std::task::spawn(task);
        async move { Some(handle.await) }
    }

    pub(crate) fn detach(task: impl Future<Output = ()> + Send + 'static) {
        async_std::task::spawn(task);
    }

    pub(crate) use super::AsyncIoIdle as Idle;
}

/// The application side of a run on smol's global executor, as a smol application runs.
mod on_smol {
    use super::{BoxFuture, Duration, Future, Tally};

    pub(crate) fn block_on(_: &tokio::runtime::Runtime, run: BoxFuture) -> (Tally, Duration) {
        smol::block_on(run)
    }

    pub(crate) fn spawn<T: Send + 'static>(
        task: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = Option<T>> {
        let task = smol::spawn(task);
        async move { Some(task.await) }
    }

    pub(crate) fn detach(task: impl Future<Output = ()> + Send + 'static) {
        smol::spawn(task).detach();
    }

    pub(crate) use super::AsyncIoIdle as Idle;
}

/// Ends a receive loop after a tick of [`IDLE`] without a message, on async-io's timers. One
/// interval timer for the whole loop: a timer made for each wait would, on async-io, wake
/// the reactor thread through a system call every time the loop waits, which the
/// application side of a tokio run does not pay.
struct AsyncIoIdle {
    ticks: smol::Timer,
    progress: bool,
}

impl AsyncIoIdle {
    fn new() -> Self {
        Self {
            ticks: smol::Timer::interval(IDLE),
            progress: false,
        }
    }

    /// `f`'s output, or `None` when a tick passed first.
    async fn within<T>(&mut self, f: impl Future<Output = T>) -> Option<T> {
        use smol::stream::StreamExt;
        let ticks = &mut self.ticks;
        let out = smol::future::or(async { Some(f.await) }, async {
            ticks.next().await;
            None
        })
        .await;
        self.progress |= out.is_some();
        out
    }

    /// Whether nothing came since the previous tick; after `within` gave `None`.
    fn quiet(&mut self) -> bool {
        !std::mem::take(&mut self.progress)
    }
}

/// Defines a run of one of our clients: `$krate` is the adapter crate, `$app` the module of the
/// runtime the application side runs on, `$connect` starts a client on the runtime under test,
/// `$publisher` adds to the publisher's options (given a scratch directory), e.g. a session
/// store, and `$both` to both clients' options.
macro_rules! our_client {
    ($(#[$doc:meta])* $name:ident, $krate:ident, $app:ident, $connect:expr) => {
        our_client!($(#[$doc])* $name, $krate, $app, $connect, |_dir, options| options);
    };
    ($(#[$doc:meta])* $name:ident, $krate:ident, $app:ident, $connect:expr, $publisher:expr) => {
        our_client!($(#[$doc])* $name, $krate, $app, $connect, $publisher, |options| options);
    };
    (
        $(#[$doc:meta])* $name:ident, $krate:ident, $app:ident, $connect:expr, $publisher:expr,
        $both:expr
    ) => {
        $(#[$doc])*
        fn $name(
            rt: &tokio::runtime::Runtime,
            url: String,
            topic: String,
            qos: u8,
            n: u64,
        ) -> (Tally, Duration) {
    $app::block_on(rt, Box::pin(async move {
        use $krate::{Client, ClientOptions, Event, Message, QoS};
        let connect = $connect;
        let qos = QoS::from_u8(qos).unwrap();
        let both: fn(ClientOptions) -> ClientOptions = $both;
        let options = |id: &str| {
            both(
                ClientOptions::new(&url)
                    .client_id(id)
                    .max_inflight(INFLIGHT)
                    .max_queued(100_000)
                    .no_reconnect(),
            )
        };
        let (sub, mut events) = connect(options(concat!(stringify!($name), "-sub"))).unwrap();
        sub.subscribe(&topic, qos).await.unwrap();
        let dir = mqtt_testkit::tempdir();
        let publisher_options: fn(&std::path::Path, ClientOptions) -> ClientOptions = $publisher;
        let publisher_options =
            publisher_options(dir.path(), options(concat!(stringify!($name), "-pub")));
        let (publisher, mut pub_events) = connect(publisher_options).unwrap();
        $app::detach(async move { while pub_events.recv().await.is_some() {} });
        let start = Instant::now();
        let publishing = $app::spawn({
            let topic = topic.clone();
            async move {
                // A plain loop: `publish` returns once the message is queued; the handles,
                // awaited a thousand behind, check every outcome.
                let mut handles = std::collections::VecDeque::new();
                for seq in 0..n {
                    let msg = Message::new(&topic, payload(seq)).unwrap().qos(qos);
                    handles.push_back(publisher.publish(msg).await.unwrap());
                    if handles.len() >= 1_000 {
                        handles.pop_front().unwrap().await.unwrap();
                    }
                }
                for handle in handles {
                    handle.await.unwrap();
                }
                publisher
            }
        });
        let mut tally = Tally::new(n);
        let mut idle = $app::Idle::new();
        while !tally.complete() {
            match idle.within(events.recv()).await {
                Some(Some(Event::Message { publish, .. })) => tally.record(&publish.payload),
                Some(Some(_)) => {}
                Some(None) => break,
                None if idle.quiet() => break,
                None => {}
            }
        }
        let elapsed = start.elapsed();
        if let Some(publisher) = publishing.await {
            let _ = publisher.disconnect().await;
        }
        let _ = sub.disconnect().await;
        (tally, elapsed)
    }))
}
    };
}

our_client!(
    /// Our tokio client.
    ours_tokio,
    mqtt_tokio,
    on_tokio,
    Client::connect
);
our_client!(
    /// Our tokio client, its session in a `MemoryStore`.
    ours_tokio_memory_store,
    mqtt_tokio,
    on_tokio,
    Client::connect,
    |_dir, options| options.persistent_session().store(mqtt_tokio::MemoryStore::new())
);
our_client!(
    /// Our tokio client, its session in a `FileStore` that syncs every commit.
    ours_tokio_file_store,
    mqtt_tokio,
    on_tokio,
    Client::connect,
    |dir, options| options
        .persistent_session()
        .store(mqtt_tokio::FileStore::open(dir).unwrap())
);
our_client!(
    /// Our tokio client, its session in a `FileStore` without syncs (survives a crash of the
    /// process, not of the machine).
    ours_tokio_file_store_no_sync,
    mqtt_tokio,
    on_tokio,
    Client::connect,
    |dir, options| options
        .persistent_session()
        .store(mqtt_tokio::FileStore::open(dir).unwrap().sync(false))
);
our_client!(
    /// Our futures-io client on async-std: its driver and the application on async-std's
    /// executor.
    ours_async_std,
    mqtt_async_std,
    on_async_std,
    Client::connect
);
our_client!(
    /// Our futures-io client on smol: its driver and the application on smol's executor.
    ours_smol,
    mqtt_async_std,
    on_smol,
    |options| Client::connect_with(options, |driver| smol::spawn(driver).detach())
);

our_client!(
    /// Our tokio client, its session in a `FileStore` that syncs every commit, holding writes
    /// for up to [`write_delay()`] (so that one commit and one sync serve each write).
    ours_tokio_file_store_write_delay,
    mqtt_tokio,
    on_tokio,
    Client::connect,
    |dir, options| options
        .persistent_session()
        .store(mqtt_tokio::FileStore::open(dir).unwrap()),
    |options| options.write_delay(write_delay())
);
our_client!(
    /// Our tokio client holding writes for up to [`write_delay()`] to gather more into each.
    ours_tokio_write_delay,
    mqtt_tokio,
    on_tokio,
    Client::connect,
    |_dir, options| options,
    |options| options.write_delay(write_delay())
);
our_client!(
    /// Our futures-io client on async-std, holding writes for up to [`write_delay()`].
    ours_async_std_write_delay,
    mqtt_async_std,
    on_async_std,
    Client::connect,
    |_dir, options| options,
    |options| options.write_delay(write_delay())
);
our_client!(
    /// Our futures-io client on smol, holding writes for up to [`write_delay()`].
    ours_smol_write_delay,
    mqtt_async_std,
    on_smol,
    |options| Client::connect_with(options, |driver| smol::spawn(driver).detach()),
    |_dir, options| options,
    |options| options.write_delay(write_delay())
);

/// rumqttc, the most used Rust client.
fn rumqttc(port: u16, topic: String, qos: u8, n: u64) -> BoxFuture {
    Box::pin(async move {
        use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
        let qos = match qos {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        };
        let options = |id: &str| {
            let mut o = MqttOptions::new(id, "127.0.0.1", port);
            o.set_inflight(INFLIGHT)
                .set_keep_alive(Duration::from_secs(60));
            o
        };
        let (sub, mut sub_loop) = AsyncClient::new(options("rumqttc-sub"), 1_000);
        sub.subscribe(topic.clone(), qos).await.unwrap();
        // Wait for SUBACK so no message is published before the subscription exists.
        loop {
            if let Event::Incoming(Packet::SubAck(_)) = sub_loop.poll().await.unwrap() {
                break;
            }
        }
        let (publisher, mut pub_loop) = AsyncClient::new(options("rumqttc-pub"), 1_000);
        let driver = tokio::spawn(async move {
            let mut completed = 0u64;
            while completed < n {
                match pub_loop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_))) => completed += 1,
                    Ok(Event::Outgoing(rumqttc::Outgoing::Publish(_)))
                        if qos == QoS::AtMostOnce =>
                    {
                        completed += 1
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            // Let the last packets reach the socket.
            let _ = tokio::time::timeout(Duration::from_millis(100), pub_loop.poll()).await;
        });
        let start = Instant::now();
        let publishing = tokio::spawn({
            let topic = topic.clone();
            async move {
                for seq in 0..n {
                    publisher
                        .publish(topic.clone(), qos, false, payload(seq))
                        .await
                        .unwrap();
                }
                publisher
            }
        });
        let mut tally = Tally::new(n);
        while !tally.complete() {
            match tokio::time::timeout(IDLE, sub_loop.poll()).await {
                Ok(Ok(Event::Incoming(Packet::Publish(p)))) => tally.record(&p.payload),
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => break,
            }
        }
        let elapsed = start.elapsed();
        let _ = driver.await;
        if let Ok(publisher) = publishing.await {
            let _ = publisher.disconnect().await;
        }
        let _ = sub.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_millis(100), sub_loop.poll()).await;
        (tally, elapsed)
    })
}

/// libmosquitto, through mosquitto_sub and mosquitto_pub (`-l`: one message per line of its
/// input, `-M 100` in flight): the C library as its own command-line clients use it. The
/// payload is the sequence number in 64 decimal digits; the CPU time is the two processes'.
fn mosquitto_clients(port: u16, topic: String, qos: u8, n: u64) -> BoxFuture {
    Box::pin(async move {
        tokio::task::spawn_blocking(move || mosquitto_clients_blocking(port, &topic, qos, n))
            .await
            .unwrap_or_else(|_| (Tally::new(n), Duration::ZERO))
    })
}

fn mosquitto_clients_blocking(port: u16, topic: &str, qos: u8, n: u64) -> (Tally, Duration) {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let port = port.to_string();
    let qos = qos.to_string();
    let common = ["-h", "127.0.0.1", "-p", &port, "-t", topic, "-q", &qos];
    let mut tally = Tally::new(n);
    let Ok(mut sub) = Command::new("mosquitto_sub")
        .args(common)
        .args(["-i", "mosquitto-sub"])
        .stdout(Stdio::piped())
        .spawn()
    else {
        eprintln!("mosquitto_sub not found: no libmosquitto row");
        return (tally, Duration::ZERO);
    };
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = sub.stdout.take();
    let reader = std::thread::spawn(move || {
        for line in stdout
            .map(BufReader::new)
            .into_iter()
            .flat_map(|r| r.lines())
        {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // mosquitto_sub says nothing once subscribed: publish a marker until it shows up.
    let ready = (0..100).any(|_| {
        let _ = Command::new("mosquitto_pub")
            .args(common)
            .args(["-m", "ready"])
            .status();
        lines.recv_timeout(Duration::from_millis(100)).is_ok()
    });
    let start = Instant::now();
    let publisher = Command::new("mosquitto_pub")
        .args(common)
        .args(["-i", "mosquitto-pub", "-M", "100", "-l"])
        .stdin(Stdio::piped())
        .spawn();
    if let (true, Ok(mut publisher)) = (ready, publisher) {
        if let Some(mut stdin) = publisher.stdin.take() {
            let input: String = (0..n).map(|seq| format!("{seq:064}\n")).collect();
            let _ = stdin.write_all(input.as_bytes());
        }
        while !tally.complete() {
            match lines.recv_timeout(IDLE) {
                // Anything else is a late marker.
                Ok(line) => {
                    if let Ok(seq) = line.parse::<u64>() {
                        tally.record(&seq.to_be_bytes());
                    }
                }
                Err(_) => break,
            }
        }
        let _ = publisher.wait();
    }
    let elapsed = start.elapsed();
    let _ = sub.kill();
    let _ = sub.wait();
    let _ = reader.join();
    (tally, elapsed)
}

fn measure(client: &'static str, qos: u8, n: u64, run: impl FnOnce() -> (Tally, Duration)) -> Run {
    let cpu = cpu_time();
    let (tally, elapsed) = run();
    Run {
        client,
        qos,
        sent: n,
        received: tally.received,
        duplicates: tally.duplicates,
        elapsed,
        cpu: cpu_time().saturating_sub(cpu),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: keep that short.
    let quick = std::env::args().all(|a| a != "--bench");
    let scale: f64 = std::env::var("E2E_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 0.01 } else { 1.0 });
    // mosquitto holds at most 20 incoming QoS 2 messages per client by default and drops a
    // 3.1.1 client that sends more; both clients here keep 100 in flight.
    let external: Option<u16> = std::env::var("E2E_BROKER_PORT")
        .ok()
        .and_then(|p| p.parse().ok());
    // The test kit's brokers set TCP_NODELAY, so that tests see each packet at once; a
    // mosquitto as installed leaves it off and coalesces small packets. The bench runs the
    // broker as installed unless `E2E_BROKER_NODELAY=1`: with it on, every message reaches the
    // subscriber in its own segment, and loopback TCP, not the client, takes most of the CPU.
    let nodelay = std::env::var("E2E_BROKER_NODELAY").is_ok_and(|v| v == "1");
    let broker = external.is_none().then(|| {
        Mosquitto::start(
            MosquittoConfig::new()
                .extra("max_inflight_messages 1000")
                .extra(&format!("set_tcp_nodelay {nodelay}")),
        )
    });
    let port = external.unwrap_or_else(|| broker.as_ref().unwrap().port());
    let url = format!("mqtt://127.0.0.1:{port}");
    // `E2E_RUNTIME=current_thread` runs the application and the drivers of the tokio clients
    // on one thread, so that handing work between them never wakes another thread.
    let rt = match std::env::var("E2E_RUNTIME").as_deref() {
        Ok("current_thread") => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    };
    let cases = [(0u8, 100_000u64), (1, 50_000), (2, 20_000)];
    let only = std::env::var("E2E_ONLY").ok();
    // Names are separated by commas, or by semicolons when one is given (the store rows'
    // names hold commas).
    let wanted = |name: &str| {
        only.as_ref().is_none_or(|o| {
            let separator = if o.contains(';') { ';' } else { ',' };
            o.split(separator).any(|w| name == w)
        })
    };
    let qos_only: Option<u8> = std::env::var("E2E_QOS").ok().and_then(|q| q.parse().ok());
    // `E2E_RUNS` runs of everything, interleaved so that a busy moment hits every client;
    // the table shows each client's median.
    let repeats: usize = std::env::var("E2E_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let mut runs = Vec::new();
    for (qos, count) in (0..repeats).flat_map(|_| {
        cases
            .into_iter()
            .filter(|(q, _)| qos_only.is_none_or(|o| o == *q))
    }) {
        let n = ((count as f64 * scale) as u64).max(10);
        let topic = |who: &str| {
            let who: String = who
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            format!("bench/{who}/{qos}")
        };
        if wanted("rumqttc") {
            runs.push(measure("rumqttc", qos, n, || {
                rt.block_on(rumqttc(port, topic("rumqttc"), qos, n))
            }));
        }
        if wanted("libmosquitto") {
            runs.push(measure("libmosquitto (mosquitto_pub/sub)", qos, n, || {
                rt.block_on(mosquitto_clients(port, topic("libmosquitto"), qos, n))
            }));
        }
        let ours: [(&'static str, OurRun); 6] = [
            ("ours (tokio)", ours_tokio),
            ("ours (async-std)", ours_async_std),
            ("ours (smol)", ours_smol),
            ("ours (tokio) + write delay", ours_tokio_write_delay),
            ("ours (async-std) + write delay", ours_async_std_write_delay),
            ("ours (smol) + write delay", ours_smol_write_delay),
        ];
        for (name, run) in ours.into_iter().filter(|(n, _)| wanted(n)) {
            runs.push(measure(name, qos, n, || {
                run(&rt, url.clone(), topic(name), qos, n)
            }));
        }
        // What durability costs: QoS 1/2 messages are recorded before they are sent.
        let stored: [(&'static str, OurRun); 4] = [
            ("ours (tokio, MemoryStore)", ours_tokio_memory_store),
            ("ours (tokio, FileStore, sync)", ours_tokio_file_store),
            (
                "ours (tokio, FileStore, no sync)",
                ours_tokio_file_store_no_sync,
            ),
            (
                "ours (tokio, FileStore, sync) + write delay",
                ours_tokio_file_store_write_delay,
            ),
        ];
        for (name, run) in stored.into_iter().filter(|(n, _)| qos > 0 && wanted(n)) {
            runs.push(measure(name, qos, n, || {
                run(&rt, url.clone(), topic(name), qos, n)
            }));
        }
    }
    if runs.iter().any(|r| r.received < r.sent) {
        if let Some(broker) = &broker {
            eprintln!("broker log:\n{}", broker.log());
        }
    }
    print_table(&runs);
    if runs.iter().any(|r| r.received < r.sent || r.duplicates > 0) {
        eprintln!("messages were lost or duplicated");
        std::process::exit(1);
    }
}

/// The median of each client's runs at each QoS, with its ratios to rumqttc's.
fn print_table(runs: &[Run]) {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let mut rows: Vec<(u8, &str, u64, f64, u64, u64, f64)> = Vec::new();
    for r in runs {
        if rows.iter().any(|row| row.0 == r.qos && row.1 == r.client) {
            continue;
        }
        let same: Vec<&Run> = runs
            .iter()
            .filter(|o| o.qos == r.qos && o.client == r.client)
            .collect();
        let rate = median(
            same.iter()
                .map(|o| o.received as f64 / o.elapsed.as_secs_f64())
                .collect(),
        );
        let cpu = median(
            same.iter()
                .map(|o| o.cpu.as_secs_f64() * 1e6 / o.sent as f64)
                .collect(),
        );
        let lost = same.iter().map(|o| o.sent - o.received.min(o.sent)).sum();
        let duplicates = same.iter().map(|o| o.duplicates).sum();
        rows.push((r.qos, r.client, r.sent, rate, lost, duplicates, cpu));
    }
    println!(
        "| QoS | client | messages | received/s | lost | duplicates | CPU µs/message | msg/s vs rumqttc | CPU vs rumqttc |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &(qos, client, sent, rate, lost, duplicates, cpu) in &rows {
        let reference = rows.iter().find(|r| r.0 == qos && r.1 == "rumqttc");
        let ratio = |ours: f64, theirs: f64| {
            if theirs > 0.0 {
                format!("{:.2}×", ours / theirs)
            } else {
                "–".to_owned()
            }
        };
        println!(
            "| {qos} | {client} | {sent} | {rate:.0} | {lost} | {duplicates} | {cpu:.2} | {} | {} |",
            reference.map_or("–".to_owned(), |r| ratio(rate, r.3)),
            reference.map_or("–".to_owned(), |r| ratio(cpu, r.6)),
        );
    }
}
