//! Many connections through one local mosquitto: `CONN_COUNT` (1,000) connections open and
//! idle with a keep-alive, then `CONN_PUBLISHERS` (100) of them publish `CONN_MESSAGES` (100)
//! QoS 1 messages each to one more connection that subscribes. Ours (tokio) against rumqttc.
//!
//! For each client it reports the memory each open connection costs this process (growth of
//! its resident set while the connections open, divided by their number), the CPU time the
//! idle connections cost (keep-alive pings included), and for the publishing phase the
//! messages/s, the CPU time per message (read from the process's CPU clock, to the
//! nanosecond), the broker's CPU time per message over the same phase (`CONN_BROKER_PID`
//! names the broker's process when `CONN_BROKER_PORT` points at one already running), the
//! resident set added while publishing and the messages lost or duplicated.
//! `BENCH_PERF_CTL` (see `mqtt_benches::perf_control`) lets `perf` count that phase alone.
//!
//! `CONN_ROUNDS` runs the publishing phase that many times, one after the other, and reports
//! the last: from the second on, every queue a burst fills has grown already, as in a
//! long-running process.
//!
//! Each client runs in a process of its own (this program started again with `--client`),
//! so that memory one client freed does not hide what the next one allocates.
//!
//! `cargo bench -p mqtt-benches --bench connections` (needs mosquitto installed, and
//! `ulimit -n` above the connection count: the program says so and stops when it is not).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mqtt_testkit::{Mosquitto, MosquittoConfig};

/// Keep-alive of every connection: the idle phase lasts two of them.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Payload size of every message.
const PAYLOAD: usize = 64;
/// A phase ends when nothing arrived for this long.
const IDLE: Duration = Duration::from_secs(10);

/// What one client's process measured.
#[derive(Debug, Default)]
struct Phases {
    connections: usize,
    /// Resident set growth per open connection.
    bytes_per_connection: f64,
    idle: Duration,
    idle_cpu: Duration,
    sent: u64,
    received: u64,
    duplicates: u64,
    publish_elapsed: Duration,
    publish_cpu: Duration,
    /// The broker's CPU time over the same phase.
    broker_cpu: Duration,
    /// Resident set growth while publishing: the messages queued at once, and what the
    /// allocator kept of them.
    publish_rss_growth: u64,
}

/// Resident set size of this process, from /proc.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// CPU time of the broker's main thread (mosquitto has only that one), to the nanosecond, from
/// the scheduler's own count in `/proc/<pid>/sched`; zero if unknown.
fn broker_cpu_time(pid: u32) -> Duration {
    if pid == 0 {
        return Duration::ZERO;
    }
    let sched = std::fs::read_to_string(format!("/proc/{pid}/sched")).unwrap_or_default();
    // "se.sum_exec_runtime   :   1234.567890", in milliseconds.
    sched
        .lines()
        .find_map(|l| l.strip_prefix("se.sum_exec_runtime"))
        .and_then(|rest| {
            rest.trim_start_matches([' ', ':'])
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(Duration::ZERO, |ms| Duration::from_secs_f64(ms / 1e3))
}

/// The soft limit on open files, from /proc.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn payload(publisher: usize, seq: u64) -> Vec<u8> {
    let mut p = vec![0u8; PAYLOAD];
    p[..8].copy_from_slice(&(publisher as u64).to_be_bytes());
    p[8..16].copy_from_slice(&seq.to_be_bytes());
    p
}

/// Counts deliveries of (publisher, sequence) pairs.
struct Tally {
    seen: HashSet<(u64, u64)>,
    expected: u64,
    duplicates: u64,
}

impl Tally {
    fn record(&mut self, payload: &[u8]) {
        let word = |r: std::ops::Range<usize>| {
            payload
                .get(r)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
        };
        if let (Some(p), Some(s)) = (word(0..8), word(8..16)) {
            if !self.seen.insert((p, s)) {
                self.duplicates += 1;
            }
        }
    }

    fn complete(&self) -> bool {
        self.seen.len() as u64 >= self.expected
    }
}

struct Config {
    port: u16,
    /// The broker's process, whose CPU time the publishing phase reads too (0: unknown).
    broker_pid: u32,
    connections: usize,
    publishers: usize,
    messages: u64,
    /// Publishing phases run one after the other; the figures are the last one's.
    rounds: u64,
    idle: Duration,
}

/// Leaves the connections idle for the configured time and records what that cost.
async fn idle_phase(phases: &mut Phases, config: &Config) {
    let cpu = mqtt_benches::process_cpu_time();
    tokio::time::sleep(config.idle).await;
    phases.idle = config.idle;
    phases.idle_cpu = mqtt_benches::process_cpu_time().saturating_sub(cpu);
}

/// The measurements of one publishing round, started before its publishers and finished
/// once they are done; perf counts only the last round.
struct RoundMeter {
    broker_pid: u32,
    last: bool,
    rss: u64,
    broker_cpu: Duration,
    cpu: Duration,
    start: Instant,
}

impl RoundMeter {
    fn start(config: &Config, round: u64) -> Self {
        let rss = rss_bytes();
        let last = round + 1 == config.rounds;
        if last {
            mqtt_benches::perf_control("enable");
        }
        Self {
            broker_pid: config.broker_pid,
            last,
            rss,
            broker_cpu: broker_cpu_time(config.broker_pid),
            cpu: mqtt_benches::process_cpu_time(),
            start: Instant::now(),
        }
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Records this round in `phases`: its CPU times and memory, and adds its counts.
    fn finish(self, phases: &mut Phases, tally: &Tally) {
        phases.publish_cpu = mqtt_benches::process_cpu_time().saturating_sub(self.cpu);
        phases.broker_cpu = broker_cpu_time(self.broker_pid).saturating_sub(self.broker_cpu);
        if self.last {
            mqtt_benches::perf_control("disable");
        }
        phases.publish_rss_growth = rss_bytes().saturating_sub(self.rss);
        phases.sent += tally.expected;
        phases.received += tally.seen.len() as u64;
        phases.duplicates += tally.duplicates;
    }
}

/// Our tokio client.
async fn ours(config: &Config) -> Phases {
    use mqtt_tokio::{Client, ClientOptions, Event, Message, QoS};
    let url = format!("mqtt://127.0.0.1:{}", config.port);
    let options = |id: String| {
        ClientOptions::new(&url)
            .client_id(&id)
            .keep_alive(KEEP_ALIVE)
            .no_reconnect()
    };
    async fn connected(events: &mut mqtt_tokio::Events) {
        while let Some(event) = events.recv().await {
            if matches!(event, Event::Connected { .. }) {
                return;
            }
        }
        panic!("closed before CONNACK");
    }
    let (sub, mut sub_events) = Client::connect(options("conn-sub".into())).unwrap();
    connected(&mut sub_events).await;
    sub.subscribe("conn/#", QoS::AtLeastOnce).await.unwrap();

    let mut phases = Phases::default();
    let rss = rss_bytes();
    let mut clients = Vec::with_capacity(config.connections);
    for batch in (0..config.connections).collect::<Vec<_>>().chunks(50) {
        let mut opened = Vec::new();
        for &i in batch {
            opened.push(Client::connect(options(format!("conn-{i}"))).unwrap());
        }
        for (client, mut events) in opened {
            connected(&mut events).await;
            clients.push((client, events));
        }
    }
    phases.connections = clients.len();
    phases.bytes_per_connection =
        rss_bytes().saturating_sub(rss) as f64 / config.connections.max(1) as f64;

    idle_phase(&mut phases, config).await;

    for round in 0..config.rounds {
        let meter = RoundMeter::start(config, round);
        let messages = config.messages;
        let first = round * messages;
        let publishing: Vec<_> = clients
            .iter()
            .take(config.publishers)
            .enumerate()
            .map(|(p, (client, _))| {
                let client = client.clone();
                tokio::spawn(async move {
                    let mut handles = Vec::new();
                    for seq in first..first + messages {
                        let message = Message::new(&format!("conn/{p}"), payload(p, seq))
                            .unwrap()
                            .qos(QoS::AtLeastOnce);
                        handles.push(client.publish(message).await.unwrap());
                    }
                    for handle in handles {
                        handle.await.unwrap();
                    }
                })
            })
            .collect();
        let publishers = publishing.len() as u64;
        let mut tally = Tally {
            seen: HashSet::new(),
            expected: publishers * messages,
            duplicates: 0,
        };
        while !tally.complete() {
            match tokio::time::timeout(IDLE, sub_events.recv()).await {
                Ok(Some(Event::Message { publish, .. })) => tally.record(&publish.payload),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        phases.publish_elapsed = meter.elapsed();
        for task in publishing {
            let _ = task.await;
        }
        meter.finish(&mut phases, &tally);
    }
    for (client, _) in &clients {
        let _ = client.disconnect().await;
    }
    let _ = sub.disconnect().await;
    phases
}

/// rumqttc: one event loop task per connection, as its API asks.
async fn rumqttc(config: &Config) -> Phases {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let options = |id: String| {
        let mut o = MqttOptions::new(id, "127.0.0.1", config.port);
        o.set_keep_alive(KEEP_ALIVE);
        o
    };
    let (sub, mut sub_loop) = AsyncClient::new(options("rumqttc-conn-sub".into()), 100);
    sub.subscribe("conn/#", QoS::AtLeastOnce).await.unwrap();
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = sub_loop.poll().await.unwrap() {
            break;
        }
    }

    let mut phases = Phases::default();
    let rss = rss_bytes();
    let acked = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::with_capacity(config.connections);
    let mut loops = Vec::with_capacity(config.connections);
    for batch in (0..config.connections).collect::<Vec<_>>().chunks(50) {
        for &i in batch {
            let (client, mut event_loop) =
                AsyncClient::new(options(format!("rumqttc-conn-{i}")), 100);
            let acked = acked.clone();
            loops.push(tokio::spawn(async move {
                loop {
                    match event_loop.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            }));
            clients.push(client);
        }
        while acked.load(Ordering::SeqCst) < clients.len() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    phases.connections = clients.len();
    phases.bytes_per_connection =
        rss_bytes().saturating_sub(rss) as f64 / config.connections.max(1) as f64;

    idle_phase(&mut phases, config).await;

    for round in 0..config.rounds {
        let meter = RoundMeter::start(config, round);
        let messages = config.messages;
        let first = round * messages;
        let publishing: Vec<_> = clients
            .iter()
            .take(config.publishers)
            .enumerate()
            .map(|(p, client)| {
                let client = client.clone();
                tokio::spawn(async move {
                    for seq in first..first + messages {
                        client
                            .publish(
                                format!("conn/{p}"),
                                QoS::AtLeastOnce,
                                false,
                                payload(p, seq),
                            )
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        let publishers = publishing.len() as u64;
        let mut tally = Tally {
            seen: HashSet::new(),
            expected: publishers * messages,
            duplicates: 0,
        };
        while !tally.complete() {
            match tokio::time::timeout(IDLE, sub_loop.poll()).await {
                Ok(Ok(Event::Incoming(Packet::Publish(p)))) => tally.record(&p.payload),
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => break,
            }
        }
        phases.publish_elapsed = meter.elapsed();
        for task in publishing {
            let _ = task.await;
        }
        meter.finish(&mut phases, &tally);
    }
    for client in &clients {
        let _ = client.disconnect().await;
    }
    for event_loop in loops {
        let _ = tokio::time::timeout(Duration::from_secs(1), event_loop).await;
    }
    let _ = sub.disconnect().await;
    phases
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs one client in this process and prints its measurements on one line.
fn child(client: &str, config: &Config) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let phases = match client {
        "ours" => rt.block_on(ours(config)),
        _ => rt.block_on(rumqttc(config)),
    };
    println!(
        "RESULT {} {:.0} {} {} {} {} {} {} {} {} {}",
        phases.connections,
        phases.bytes_per_connection,
        phases.idle.as_micros(),
        phases.idle_cpu.as_micros(),
        phases.sent,
        phases.received,
        phases.duplicates,
        phases.publish_elapsed.as_micros(),
        phases.publish_cpu.as_micros(),
        phases.publish_rss_growth,
        phases.broker_cpu.as_micros(),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: keep that short.
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().all(|a| a != "--bench" && a != "--client");
    let connections: usize = env("CONN_COUNT", if quick { 20 } else { 1_000 });
    let config = Config {
        port: env("CONN_BROKER_PORT", 0),
        broker_pid: env("CONN_BROKER_PID", 0),
        connections,
        publishers: env("CONN_PUBLISHERS", if quick { 5 } else { 100 }).min(connections),
        messages: env("CONN_MESSAGES", if quick { 10 } else { 100 }),
        rounds: env("CONN_ROUNDS", 1u64).max(1),
        idle: Duration::from_secs(env("CONN_IDLE_SECS", if quick { 1 } else { 10 })),
    };
    if let Some(i) = args.iter().position(|a| a == "--client") {
        let client = args.get(i + 1).map_or("ours", String::as_str);
        return child(client, &config);
    }
    // This process holds no connection; each client's process holds all of its own, and
    // the broker (which inherits the limit) one per connection of each.
    let needed = connections as u64 + 100;
    if let Some(limit) = open_files_limit().filter(|&l| l < needed) {
        eprintln!("open files limited to {limit}: run `ulimit -n {needed}` (or more) first");
        std::process::exit(2);
    }
    // mosquitto as installed (Nagle's algorithm on), as the e2e bench runs it, unless
    // `CONN_BROKER_NODELAY=1` asks for the test kit's TCP_NODELAY.
    let nodelay = std::env::var("CONN_BROKER_NODELAY").is_ok_and(|v| v == "1");
    let broker = (config.port == 0).then(|| {
        Mosquitto::start(MosquittoConfig::new().extra(&format!("set_tcp_nodelay {nodelay}")))
    });
    let port = broker.as_ref().map_or(config.port, |b| b.port());
    let broker_pid = broker
        .as_ref()
        .and_then(Mosquitto::pid)
        .unwrap_or(config.broker_pid);
    let exe = std::env::current_exe().expect("this program's path");
    println!(
        "| client | connections | memory per connection | idle CPU, {} s | messages (QoS 1) | received/s | CPU µs/message | broker CPU µs/message | memory added publishing | lost | duplicates |",
        config.idle.as_secs()
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut failed = false;
    for (client, name) in [("rumqttc", "rumqttc"), ("ours", "ours (tokio)")] {
        let output = std::process::Command::new(&exe)
            .args(["--client", client])
            .env("CONN_BROKER_PORT", port.to_string())
            .env("CONN_BROKER_PID", broker_pid.to_string())
            .env("CONN_COUNT", config.connections.to_string())
            .env("CONN_PUBLISHERS", config.publishers.to_string())
            .env("CONN_MESSAGES", config.messages.to_string())
            .env("CONN_ROUNDS", config.rounds.to_string())
            .env("CONN_IDLE_SECS", config.idle.as_secs().to_string())
            .output()
            .expect("start the client's process");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let Some(line) = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")) else {
            eprintln!(
                "{name} failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            failed = true;
            continue;
        };
        let v: Vec<f64> = line
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        let get = |i: usize| v.get(i).copied().unwrap_or(0.0);
        let (sent, received, duplicates) = (get(4), get(5), get(6));
        failed |= received < sent || duplicates > 0.0;
        // Every round sends as many; the time, CPU and memory columns are the last round's.
        let round = sent / config.rounds as f64;
        println!(
            "| {name} | {:.0} | {:.1} KiB | {:.1} ms | {:.0} | {:.0} | {:.2} | {:.2} | {:.1} MiB | {:.0} | {:.0} |",
            get(0),
            get(1) / 1024.0,
            get(3) / 1e3,
            sent,
            round / (get(7) / 1e6),
            get(8) / round.max(1.0),
            get(10) / round.max(1.0),
            get(9) / (1024.0 * 1024.0),
            sent - received,
            duplicates,
        );
    }
    if failed {
        if let Some(broker) = &broker {
            eprintln!("broker log:\n{}", broker.log());
        }
        std::process::exit(1);
    }
}
