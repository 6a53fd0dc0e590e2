//! What a slow application costs in memory: our tokio client and rumqttc side by side, each
//! run in a child process of its own, flooded by a scripted broker on loopback.
//!
//! The bench binary is both parent and child. The parent runs the broker
//! ([`mqtt_testkit::ScriptedBroker`], one thread per connection on 127.0.0.1) and re-executes
//! itself once per client and scenario with [`CHILD_VAR`] set, so each client's resident
//! memory is its own process's. Every flood sends 1 KiB PUBLISH packets as fast as the socket
//! takes them (blocking writes with a short timeout, so the broker stalls where TCP pushes
//! back and still keeps its schedule), and counts the bytes it managed to write and the
//! PUBACKs it received.
//!
//! Scenarios:
//!
//! 1. **Slow consumer, QoS 0.** The application (a) takes one message a millisecond, or
//!    (b) stops reading after CONNACK. The child reports its VmRSS (from /proc/self/status)
//!    at CONNACK, 1 s, 4 s and the end of the run (10 s), and its VmHWM (peak). What the
//!    broker wrote and the application did not take sits in the broker's socket, the client's
//!    socket (its receive queue, from /proc/self/net/tcp: kernel memory, not in VmRSS) and the
//!    client's own buffers.
//! 2. **The same at QoS 1**, and at 5 s how many PUBACKs the broker received against how many
//!    messages the application had taken. The application pauses for 200 ms there and the
//!    broker counts in the middle of the pause, so that neither count moves while the other
//!    is taken (the two processes' clocks start a little apart).
//! 3. **The application keeps 1 % of the payloads**: it reads N QoS 0 messages as fast as it
//!    can and keeps every 100th payload `Bytes`; VmRSS after the N-th message. A run that
//!    keeps nothing is the baseline: the difference is what the kept payloads cost, their own
//!    1 KiB each or the whole read buffer each one pins.
//!
//! VmRSS and VmHWM come from the kernel's approximate per-CPU counters: expect ±0.2 MiB.
//!
//! "Taking a message" is `Events::recv` for ours (default `ClientOptions`, which bound the
//! inbound queue at 1,000 messages / 16 MiB) and `EventLoop::poll` until an incoming PUBLISH
//! for rumqttc (default `MqttOptions`, a request channel of 10), as each crate's users read.
//!
//! `cargo bench -p mqtt-benches --bench memory`. `MEMORY_SECONDS` sets the length of a flood
//! run (default 10, at most 30: keep alive is 60 s and the broker does not answer pings) and
//! `MEMORY_SCALE` scales N (default 1,000,000); without `--bench` (as `cargo test --benches`
//! runs it) the runs are 2 s and 20,000 messages.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqtt_proto::{Decoder, Packet, PacketId, ProtocolVersion, QosPid};
use mqtt_testkit::{indexed_publish, Conn, ScriptedBroker};

/// The environment variable that makes the binary a child: `CLIENT SCENARIO PORT SECONDS N`.
const CHILD_VAR: &str = "MQTT_MEMORY_BENCH_CHILD";
/// Payload size of every message.
const PAYLOAD: usize = 1024;
/// The topic of every message.
const TOPIC: &str = "bench/memory";
/// The application keeps one payload in this many.
const KEEP_EVERY: u64 = 100;
/// Messages encoded at once by the broker.
const BATCH: u32 = 64;
/// The longest the broker's blocking write waits, so it keeps its schedule under pushback.
const WRITE_STEP: Duration = Duration::from_millis(10);
/// The longest a child may take to connect.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);
/// The longest the keep-1 % run may take to receive its messages.
const KEEP_LIMIT: Duration = Duration::from_secs(60);
/// How long the application stops taking messages while PUBACKs are counted.
const PAUSE: Duration = Duration::from_millis(200);
/// How long a child may take beyond its schedule before it is killed.
const CHILD_GRACE: Duration = Duration::from_secs(20);

/// The client under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    /// `mqtt_tokio::Client`.
    Ours,
    /// `rumqttc::AsyncClient` with its `EventLoop`.
    Rumqttc,
}

impl Client {
    /// Its name in the tables and on a child's command line.
    fn name(self) -> &'static str {
        match self {
            Client::Ours => "ours",
            Client::Rumqttc => "rumqttc",
        }
    }

    /// The client named `s`.
    fn parse(s: &str) -> Option<Self> {
        [Client::Ours, Client::Rumqttc]
            .into_iter()
            .find(|c| c.name() == s)
    }
}

/// What the application does while the broker floods it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Takes one message a millisecond; messages at this QoS.
    Slow(u8),
    /// Takes nothing after CONNACK; messages at this QoS.
    Stopped(u8),
    /// Takes every message as fast as it can and keeps none: the baseline of [`Scenario::Keep`].
    Drain,
    /// Takes every message as fast as it can and keeps one payload in [`KEEP_EVERY`].
    Keep,
}

impl Scenario {
    /// Its name on a child's command line.
    fn name(self) -> String {
        match self {
            Scenario::Slow(qos) => format!("slow{qos}"),
            Scenario::Stopped(qos) => format!("stopped{qos}"),
            Scenario::Drain => "drain".to_owned(),
            Scenario::Keep => "keep".to_owned(),
        }
    }

    /// The scenario named `s`.
    fn parse(s: &str) -> Option<Self> {
        match s {
            "drain" => Some(Scenario::Drain),
            "keep" => Some(Scenario::Keep),
            _ => {
                let (kind, qos) = s.split_at(s.len().checked_sub(1)?);
                let qos = qos.parse().ok().filter(|q| *q <= 1)?;
                match kind {
                    "slow" => Some(Scenario::Slow(qos)),
                    "stopped" => Some(Scenario::Stopped(qos)),
                    _ => None,
                }
            }
        }
    }

    /// The QoS of the messages the broker sends.
    fn qos(self) -> u8 {
        match self {
            Scenario::Slow(qos) | Scenario::Stopped(qos) => qos,
            Scenario::Drain | Scenario::Keep => 0,
        }
    }

    /// Whether the broker floods for a time (rather than sending a number of messages).
    fn timed(self) -> bool {
        matches!(self, Scenario::Slow(_) | Scenario::Stopped(_))
    }

    /// What the application does, for the tables.
    fn application(self) -> &'static str {
        match self {
            Scenario::Slow(_) => "1 message/ms",
            Scenario::Stopped(_) => "stopped",
            Scenario::Drain => "keeps none",
            Scenario::Keep => "keeps 1 %",
        }
    }
}

/// A field of /proc/self/status in KiB (`VmRSS`, `VmHWM`); 0 if unreadable.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let value = line.strip_prefix(field)?.strip_prefix(':')?;
                value.trim().strip_suffix("kB")?.trim().parse().ok()
            })
        })
        .unwrap_or(0)
}

/// Resident memory of this process, KiB.
fn rss_kib() -> u64 {
    status_kib("VmRSS")
}

/// Bytes waiting in the kernel's receive queue of this process's TCP connections to `port`
/// on loopback (`rx_queue` of /proc/self/net/tcp): what the client has not read yet.
fn socket_rx_queue(port: u16) -> u64 {
    let table = std::fs::read_to_string("/proc/self/net/tcp").unwrap_or_default();
    let remote = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(2) != Some(&remote.as_str()) {
                return None;
            }
            let (_, rx) = fields.get(4)?.split_once(':')?;
            u64::from_str_radix(rx, 16).ok()
        })
        .sum()
}

/// When a flood run samples, from CONNACK.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    /// Resident memory and bytes written: 1 s, 4 s and the end.
    samples: [Duration; 3],
    /// PUBACKs against messages taken: 5 s, or half the run if shorter. The application pauses
    /// for [`PAUSE`] there and the broker counts in the middle of the pause, so that neither
    /// count moves while the other is taken.
    check: Duration,
}

impl Schedule {
    /// The schedule of a run of `seconds`.
    fn new(seconds: f64) -> Self {
        let at = |t: f64| Duration::from_secs_f64(t.min(seconds));
        Self {
            samples: [at(1.0), at(4.0), at(seconds)],
            check: at(5.0f64.min(seconds / 2.0)),
        }
    }

    /// The broker's sampling times: the first two samples and the middle of the pause.
    fn broker(self) -> Vec<Duration> {
        vec![self.samples[0], self.samples[1], self.check + PAUSE / 2]
    }
}

// ---------------------------------------------------------------------------------------
// The child: one client, one scenario.
// ---------------------------------------------------------------------------------------

/// A connected client, seen as the application sees it.
enum App {
    /// Ours: the handle (kept so the client runs) and its events.
    Ours {
        _client: mqtt_tokio::Client,
        events: mqtt_tokio::Events,
    },
    /// rumqttc: the handle (kept so the event loop runs) and its event loop.
    Rumqttc {
        _client: rumqttc::AsyncClient,
        eventloop: Box<rumqttc::EventLoop>,
    },
}

impl App {
    /// Connects with default options and waits for CONNACK.
    async fn connect(client: Client, port: u16) -> Self {
        let connect = async {
            match client {
                Client::Ours => {
                    let options =
                        mqtt_tokio::ClientOptions::new(&format!("mqtt://127.0.0.1:{port}"));
                    let (client, mut events) =
                        mqtt_tokio::Client::connect(options).expect("valid client options");
                    loop {
                        match events.recv().await {
                            Some(mqtt_tokio::Event::Connected { .. }) => break,
                            Some(mqtt_tokio::Event::Closed) | None => {
                                panic!("our client stopped before CONNACK")
                            }
                            Some(_) => {}
                        }
                    }
                    App::Ours {
                        _client: client,
                        events,
                    }
                }
                Client::Rumqttc => {
                    let options = rumqttc::MqttOptions::new("rumqttc-memory", "127.0.0.1", port);
                    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 10);
                    loop {
                        match eventloop.poll().await {
                            Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => break,
                            Ok(_) => {}
                            Err(e) => panic!("rumqttc failed to connect: {e}"),
                        }
                    }
                    App::Rumqttc {
                        _client: client,
                        eventloop: Box::new(eventloop),
                    }
                }
            }
        };
        tokio::time::timeout(CONNECT_LIMIT, connect)
            .await
            .expect("the client connects to the scripted broker")
    }

    /// The payload of the next message; `None` once the connection has ended.
    async fn next_message(&mut self) -> Option<Bytes> {
        match self {
            App::Ours { events, .. } => loop {
                match events.recv().await? {
                    mqtt_tokio::Event::Message { publish, .. } => return Some(publish.payload),
                    mqtt_tokio::Event::Disconnected { .. } | mqtt_tokio::Event::Closed => {
                        return None
                    }
                    _ => {}
                }
            },
            App::Rumqttc { eventloop, .. } => loop {
                match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        return Some(p.payload)
                    }
                    Ok(_) => {}
                    Err(_) => return None,
                }
            },
        }
    }

    /// Events, messages and payload bytes waiting in the client for the application, where the
    /// client tells.
    fn pending(&self) -> Option<[u64; 3]> {
        match self {
            App::Ours { events, .. } => {
                let pending = events.pending();
                Some([pending.events, pending.messages, pending.payload_bytes].map(|n| n as u64))
            }
            App::Rumqttc { .. } => None,
        }
    }
}

/// Runs one child and prints its figures as `key=value` pairs on one line.
fn child(spec: &str) {
    let fields: Vec<&str> = spec.split_whitespace().collect();
    let [client, scenario, port, seconds, count] = fields[..] else {
        panic!("{CHILD_VAR} must be `CLIENT SCENARIO PORT SECONDS N`, not {spec:?}");
    };
    let client = Client::parse(client).expect("a known client");
    let scenario = Scenario::parse(scenario).expect("a known scenario");
    let port: u16 = port.parse().expect("a port");
    let seconds: f64 = seconds.parse().expect("seconds");
    let count: u64 = count.parse().expect("a message count");
    let mut report = vec![("start", rss_kib())];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let mut app = App::connect(client, port).await;
        report.push(("connack", rss_kib()));
        match scenario {
            Scenario::Slow(_) => flooded(&mut app, true, seconds, port, &mut report).await,
            Scenario::Stopped(_) => flooded(&mut app, false, seconds, port, &mut report).await,
            Scenario::Drain => keep(&mut app, count, None, &mut report).await,
            Scenario::Keep => keep(&mut app, count, Some(KEEP_EVERY), &mut report).await,
        }
        if let Some([events, messages, bytes]) = app.pending() {
            report.push(("pending_events", events));
            report.push(("pending", messages));
            report.push(("pending_bytes", bytes));
        }
    });
    report.push(("hwm", status_kib("VmHWM")));
    let line: Vec<String> = report.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("{}", line.join(" "));
    // The broker may still be writing; do not wait for the client's tasks.
    runtime.shutdown_background();
}

/// Scenarios 1 and 2: takes one message a millisecond (`reading`) or none, and samples
/// resident memory and messages taken at each checkpoint, and at the end what waits unread in
/// the socket of the connection to `port`.
async fn flooded(
    app: &mut App,
    reading: bool,
    seconds: f64,
    port: u16,
    report: &mut Vec<(&str, u64)>,
) {
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut taken = 0u64;
    let mut ended = false;
    let schedule = Schedule::new(seconds);
    // What to note when: memory and messages taken, or (`None`) the PUBACK check.
    let mut marks = [
        (schedule.samples[0], Some(("rss1", "read1"))),
        (schedule.samples[1], Some(("rss4", "read4"))),
        (schedule.check, None),
        (schedule.samples[2], Some(("rss_end", "read_end"))),
    ];
    marks.sort_by_key(|(at, _)| *at);
    for (at, note) in marks {
        let until = start + at;
        while reading && !ended && tokio::time::Instant::now() < until {
            match tokio::time::timeout_at(until, app.next_message()).await {
                Ok(Some(_)) => taken += 1,
                Ok(None) => ended = true,
                Err(_) => break,
            }
            tick.tick().await;
        }
        tokio::time::sleep_until(until).await;
        match note {
            Some((rss, read)) => {
                report.push((rss, rss_kib()));
                report.push((read, taken));
            }
            None => {
                report.push(("read_check", taken));
                tokio::time::sleep(PAUSE).await;
            }
        }
    }
    report.push(("socket_rx", socket_rx_queue(port)));
    report.push(("ended", u64::from(ended)));
}

/// Scenario 3: takes `count` messages as fast as it can, keeps one payload in `every` (none
/// without), and samples resident memory after the last.
async fn keep(app: &mut App, count: u64, every: Option<u64>, report: &mut Vec<(&str, u64)>) {
    let deadline = tokio::time::Instant::now() + KEEP_LIMIT;
    let mut kept: Vec<Bytes> = Vec::with_capacity((count / KEEP_EVERY) as usize);
    let mut taken = 0u64;
    let started = Instant::now();
    while taken < count {
        match tokio::time::timeout_at(deadline, app.next_message()).await {
            Ok(Some(payload)) => {
                taken += 1;
                if every.is_some_and(|every| taken.is_multiple_of(every)) {
                    kept.push(payload);
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    let elapsed = started.elapsed();
    report.push(("rss_end", rss_kib()));
    report.push(("read_end", taken));
    report.push(("kept", kept.len() as u64));
    report.push(("kept_bytes", kept.iter().map(|p| p.len() as u64).sum()));
    report.push(("millis", elapsed.as_millis() as u64));
}

// ---------------------------------------------------------------------------------------
// The broker: one flood per connection.
// ---------------------------------------------------------------------------------------

/// What the broker sends.
#[derive(Debug, Clone)]
struct Flood {
    /// QoS of every PUBLISH (0 or 1).
    qos: u8,
    /// Stop writing after this long (from CONNACK).
    limit: Duration,
    /// Stop writing after this many messages.
    count: Option<u64>,
    /// When to note bytes written and PUBACKs received.
    checkpoints: Vec<Duration>,
}

/// What the broker saw.
#[derive(Debug, Default)]
struct FloodReport {
    /// Bytes written in all.
    written: u64,
    /// Size of one PUBLISH frame.
    frame: u64,
    /// (bytes written, PUBACKs received) at each checkpoint.
    snapshots: Vec<(u64, u64)>,
}

/// Counts the PUBACKs arriving on `stream` until the client closes it or `until` passes.
fn count_pubacks(
    mut stream: TcpStream,
    version: ProtocolVersion,
    pubacks: &AtomicU64,
    until: Instant,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let decoder = Decoder::new(version);
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 16 * 1024];
    while Instant::now() < until {
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(_) => return,
        }
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(Packet::PubAck(_))) => {
                    pubacks.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

/// Encodes the next `n` messages, numbered from `index`.
fn encode_batch(version: ProtocolVersion, qos: u8, index: u64, n: u64, out: &mut BytesMut) {
    out.clear();
    for i in index..index + n {
        let qos_pid = match qos {
            0 => QosPid::AtMostOnce,
            _ => {
                let id = PacketId::new((i % 65_535 + 1) as u16).expect("a non-zero packet id");
                QosPid::AtLeastOnce(id)
            }
        };
        indexed_publish(TOPIC, qos_pid, i as u32, PAYLOAD)
            .encode(version, out)
            .expect("a PUBLISH encodes");
    }
}

/// What the broker has done so far, shared by its threads.
#[derive(Debug, Default)]
struct Counters {
    /// Bytes written to the client.
    written: AtomicU64,
    /// PUBACKs received from the client.
    pubacks: AtomicU64,
}

impl Counters {
    /// (bytes written, PUBACKs received) now.
    fn snapshot(&self) -> (u64, u64) {
        (
            self.written.load(Ordering::Relaxed),
            self.pubacks.load(Ordering::Relaxed),
        )
    }
}

/// The broker's script: CONNACK, then PUBLISH as fast as the socket takes it until the flood's
/// limit or count, then wait for the client to close (bounded).
fn flood(conn: &mut Conn, plan: &Flood) -> FloodReport {
    conn.connack();
    let start = Instant::now();
    let version = conn.version;
    let counters = Arc::new(Counters::default());
    let reader = conn.stream.try_clone().ok().map(|stream| {
        let counters = counters.clone();
        let until = start + plan.limit + CHILD_GRACE;
        std::thread::spawn(move || count_pubacks(stream, version, &counters.pubacks, until))
    });
    // Snapshots on time, whatever the writer is waiting for.
    let sampler = {
        let counters = counters.clone();
        let checkpoints = plan.checkpoints.clone();
        std::thread::spawn(move || {
            let mut snapshots = vec![(0, 0); checkpoints.len()];
            let mut order: Vec<usize> = (0..checkpoints.len()).collect();
            order.sort_by_key(|&i| checkpoints[i]);
            for i in order {
                let at = start + checkpoints[i];
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                snapshots[i] = counters.snapshot();
            }
            snapshots
        })
    };
    let _ = conn.stream.set_write_timeout(Some(WRITE_STEP));
    let mut one = BytesMut::new();
    encode_batch(version, plan.qos, 0, 1, &mut one);
    let mut batch = BytesMut::new();
    let mut pos = 0;
    let mut index = 0u64;
    while start.elapsed() < plan.limit {
        if pos == batch.len() {
            let left = plan.count.map_or(u64::from(BATCH), |count| count - index);
            if left == 0 {
                break;
            }
            let n = left.min(u64::from(BATCH));
            encode_batch(version, plan.qos, index, n, &mut batch);
            index += n;
            pos = 0;
        }
        match conn.stream.write(&batch[pos..]) {
            Ok(0) => break,
            Ok(n) => {
                pos += n;
                counters.written.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
    }
    let _ = conn.stream.flush();
    // Wait for the client to close: it reads what it wants and exits.
    if let Some(reader) = reader {
        let _ = reader.join();
    }
    let snapshots = sampler.join().unwrap_or_default();
    FloodReport {
        written: counters.snapshot().0,
        frame: one.len() as u64,
        snapshots,
    }
}

// ---------------------------------------------------------------------------------------
// The parent: runs every client in every scenario, prints the tables.
// ---------------------------------------------------------------------------------------

/// One client in one scenario: the child's figures and the broker's.
struct Run {
    client: Client,
    scenario: Scenario,
    /// The child's `key=value` figures (memory in KiB).
    child: HashMap<String, u64>,
    broker: FloodReport,
}

impl Run {
    /// A figure the child reported.
    fn get(&self, key: &str) -> Option<u64> {
        self.child.get(key).copied()
    }

    /// A figure the child reported, in MiB, for a table cell.
    fn mib(&self, key: &str) -> String {
        self.get(key)
            .map_or("—".into(), |kib| format!("{:.1}", kib as f64 / 1024.0))
    }
}

/// Starts a broker with `plan` and a child running `client` in `scenario`; waits (bounded) for
/// both.
fn run(client: Client, scenario: Scenario, seconds: f64, count: u64, plan: Flood) -> Run {
    let (tx, rx) = mpsc::channel();
    let script = {
        let plan = plan.clone();
        Box::new(move |conn: &mut Conn| {
            let _ = tx.send(flood(conn, &plan));
        })
    };
    let broker = ScriptedBroker::start(vec![script]);
    let port = broker
        .url()
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .expect("the scripted broker's port");
    let exe = std::env::current_exe().expect("the bench binary's path");
    let spec = format!(
        "{} {} {port} {seconds} {count}",
        client.name(),
        scenario.name()
    );
    let mut process = Command::new(exe)
        .env(CHILD_VAR, spec)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start a child process");
    let deadline = Instant::now() + plan.limit + CONNECT_LIMIT + CHILD_GRACE;
    loop {
        match process.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    eprintln!(
                        "{} {}: the child failed: {status}",
                        client.name(),
                        scenario.name()
                    );
                }
                break;
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                eprintln!(
                    "{} {}: the child overran; killed",
                    client.name(),
                    scenario.name()
                );
                let _ = process.kill();
                let _ = process.wait();
                break;
            }
        }
    }
    let mut out = String::new();
    if let Some(mut stdout) = process.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    let child = out
        .split_whitespace()
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect();
    // The script ends when the client has closed, within its own bound.
    let broker_report = match rx.recv_timeout(plan.limit + CHILD_GRACE * 2) {
        Ok(report) => {
            broker.join();
            report
        }
        Err(_) => {
            eprintln!(
                "{} {}: the broker's script did not finish",
                client.name(),
                scenario.name()
            );
            FloodReport::default()
        }
    };
    Run {
        client,
        scenario,
        child,
        broker: broker_report,
    }
}

/// Bytes as MiB, for a table cell.
fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// `ours : rumqttc (ours ÷ rumqttc)`, both in MiB, as a table cell.
fn versus(ours: Option<u64>, theirs: Option<u64>) -> String {
    match (ours, theirs) {
        (Some(a), Some(b)) if b > 0 => {
            format!("{} : {} ({:.2}×)", mib(a), mib(b), a as f64 / b as f64)
        }
        _ => "—".into(),
    }
}

/// The figure `key` (KiB) of a run, in bytes.
fn bytes(run: Option<&Run>, key: &str) -> Option<u64> {
    run?.get(key).map(|kib| kib * 1024)
}

/// What keeping one payload in a hundred cost `client`: resident memory after the keeping run
/// less after the run that kept nothing, in bytes.
fn keeping_cost(runs: &[Run], client: Client) -> Option<u64> {
    let find = |scenario| {
        runs.iter()
            .find(|r| r.client == client && r.scenario == scenario)
    };
    let keep = bytes(find(Scenario::Keep), "rss_end")?;
    let drain = bytes(find(Scenario::Drain), "rss_end")?;
    Some(keep.saturating_sub(drain))
}

/// Prints the tables of the README, from every run.
fn print_tables(runs: &[Run], seconds: f64) {
    let schedule = Schedule::new(seconds);
    let secs = |t: Duration| format!("{} s", t.as_secs_f64());
    let [first, second, end] = schedule.samples.map(secs);
    let check = secs(schedule.check);
    println!(
        "\nSlow consumer under a flood of 1 KiB PUBLISH; VmRSS of the client's process, MiB:\n"
    );
    println!(
        "| QoS | application | client | at CONNACK | {first} | {second} | {end} | peak (VmHWM) | broker wrote by {first} / {second} / {end} (MiB) | messages taken | written, not taken (MiB) | in the client's socket (MiB) | waiting in the client |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in runs.iter().filter(|r| r.scenario.timed()) {
        let waiting = match (
            r.get("pending_events"),
            r.get("pending"),
            r.get("pending_bytes"),
        ) {
            (Some(e), Some(m), Some(b)) if e == m => format!("{m} messages, {} MiB", mib(b)),
            (Some(e), Some(m), Some(b)) => format!("{e} events: {m} messages, {} MiB", mib(b)),
            _ => "—".into(),
        };
        let taken = r.get("read_end").unwrap_or(0);
        let unread = r.broker.written.saturating_sub(taken * r.broker.frame);
        let at = |i: usize| r.broker.snapshots.get(i).map_or("—".into(), |s| mib(s.0));
        let written = format!("{} / {} / {}", at(0), at(1), mib(r.broker.written));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {taken} | {} | {} | {waiting} |",
            r.scenario.qos(),
            r.scenario.application(),
            r.client.name(),
            r.mib("connack"),
            r.mib("rss1"),
            r.mib("rss4"),
            r.mib("rss_end"),
            r.mib("hwm"),
            written,
            mib(unread),
            r.get("socket_rx").map_or("—".into(), mib),
        );
    }

    println!(
        "\nQoS 1 at {check}: PUBACKs the broker received against messages the application took:\n"
    );
    println!("| application | client | messages taken | PUBACKs received | PUBACKs − taken |");
    println!("|---|---|---:|---:|---:|");
    for r in runs
        .iter()
        .filter(|r| r.scenario.timed() && r.scenario.qos() == 1)
    {
        let taken = r.get("read_check").unwrap_or(0);
        let acks = r.broker.snapshots.get(2).map_or(0, |s| s.1);
        println!(
            "| {} | {} | {taken} | {acks} | {} |",
            r.scenario.application(),
            r.client.name(),
            acks as i64 - taken as i64,
        );
    }

    println!("\nThe application takes every message, keeping none or every {KEEP_EVERY}th 1 KiB payload; VmRSS, MiB:\n");
    println!("| client | messages | messages/s | at CONNACK | after, keeps none | after, keeps 1 % | peak, keeps 1 % | kept payload (MiB) | cost of keeping (MiB) | cost ÷ kept payload |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for client in [Client::Rumqttc, Client::Ours] {
        let find = |scenario| {
            runs.iter()
                .find(|r| r.client == client && r.scenario == scenario)
        };
        let (Some(drain), Some(keep)) = (find(Scenario::Drain), find(Scenario::Keep)) else {
            continue;
        };
        let kept = keep.get("kept_bytes").unwrap_or(0);
        let cost = keeping_cost(runs, client);
        let rate = match (keep.get("read_end"), keep.get("millis")) {
            (Some(n), Some(ms)) if ms > 0 => format!("{:.0}", n as f64 * 1000.0 / ms as f64),
            _ => "—".into(),
        };
        println!(
            "| {} | {} | {rate} | {} | {} | {} | {} | {} | {} | {} |",
            client.name(),
            keep.get("read_end").unwrap_or(0),
            keep.mib("connack"),
            drain.mib("rss_end"),
            keep.mib("rss_end"),
            keep.mib("hwm"),
            mib(kept),
            cost.map_or("—".into(), mib),
            match cost {
                Some(c) if kept > 0 => format!("{:.2}×", c as f64 / kept as f64),
                _ => "—".into(),
            },
        );
    }

    println!("\nOurs : rumqttc, MiB (ours ÷ rumqttc):\n");
    println!(
        "| QoS | application | VmRSS at {end} / after the messages | peak (VmHWM) | broker wrote |"
    );
    println!("|---|---|---|---|---|");
    for ours in runs.iter().filter(|r| r.client == Client::Ours) {
        let Some(theirs) = runs
            .iter()
            .find(|r| r.client == Client::Rumqttc && r.scenario == ours.scenario)
        else {
            continue;
        };
        let written = |r: &Run| Some(r.broker.written);
        println!(
            "| {} | {} | {} | {} | {} |",
            ours.scenario.qos(),
            ours.scenario.application(),
            versus(bytes(Some(ours), "rss_end"), bytes(Some(theirs), "rss_end")),
            versus(bytes(Some(ours), "hwm"), bytes(Some(theirs), "hwm")),
            versus(written(ours), written(theirs)),
        );
    }
    println!(
        "| 0 | cost of keeping 1 % | {} | | |",
        versus(
            keeping_cost(runs, Client::Ours),
            keeping_cost(runs, Client::Rumqttc)
        )
    );
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_VAR) {
        child(&spec);
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: keep that short.
    let quick = std::env::args().all(|a| a != "--bench");
    let env = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<f64>().ok());
    let seconds = env("MEMORY_SECONDS")
        .unwrap_or(if quick { 2.0 } else { 10.0 })
        .clamp(1.0, 30.0);
    let scale = env("MEMORY_SCALE").unwrap_or(if quick { 0.02 } else { 1.0 });
    let count = ((1_000_000.0 * scale) as u64).max(KEEP_EVERY);
    let mut runs = Vec::new();
    let scenarios = [
        Scenario::Slow(0),
        Scenario::Stopped(0),
        Scenario::Slow(1),
        Scenario::Stopped(1),
        Scenario::Drain,
        Scenario::Keep,
    ];
    for scenario in scenarios {
        for client in [Client::Rumqttc, Client::Ours] {
            let plan = if scenario.timed() {
                Flood {
                    qos: scenario.qos(),
                    limit: Duration::from_secs_f64(seconds),
                    count: None,
                    checkpoints: Schedule::new(seconds).broker(),
                }
            } else {
                Flood {
                    qos: 0,
                    limit: KEEP_LIMIT,
                    count: Some(count),
                    checkpoints: Vec::new(),
                }
            };
            eprintln!("{} {} ...", client.name(), scenario.name());
            runs.push(run(client, scenario, seconds, count, plan));
        }
    }
    print_tables(&runs, seconds);
}
