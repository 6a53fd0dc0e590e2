//! Scale-out of one consumer group on a three-node rmqtt cluster: messages/s the group takes
//! against its number of member processes (1, 2, 4), and the client CPU time per message.
//!
//! Each member is a process of its own (this benchmark binary run again with
//! `MQTT_BENCH_MEMBER` set) on node `i % 3`, subscribed with `$share/bench/…` at QoS 1. One
//! publisher in this process, on node 1, publishes as fast as the cluster takes at QoS 1.
//! Two workloads: members that only count (the cluster and the client are the limit), and
//! members that spend 1 ms on each message (the work a group spreads). CPU is user + system
//! of the member processes (the consumer side) and of this process (the publisher).
//!
//! `cargo bench -p mqtt-benches --bench cluster` (builds the rmqtt test broker on first use,
//! about 10 minutes). Set `CLUSTER_SCALE` to a fraction (e.g. 0.2) for a quick run.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mqtt_testkit::RmqttCluster;
use mqtt_tokio::{Backoff, Client, ClientOptions, Event, Message, ProtocolVersion, QoS};

const MEMBER_ENV: &str = "MQTT_BENCH_MEMBER";
const URLS_ENV: &str = "MQTT_BENCH_URLS";
const TOPIC_ENV: &str = "MQTT_BENCH_TOPIC";
const WORK_ENV: &str = "MQTT_BENCH_WORK_MS";
/// Publishes in flight at once.
const PUBLISHERS: usize = 64;
/// The longest a run may take.
const RUN_LIMIT: Duration = Duration::from_secs(180);

fn options(urls: &[String], id: &str) -> ClientOptions {
    let mut options = ClientOptions::new(urls.first().map_or("mqtt://127.0.0.1:1", |u| u));
    for url in urls.iter().skip(1) {
        options = options.broker(url);
    }
    options
        .client_id(id)
        .version(ProtocolVersion::V5)
        .reconnect(Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(2),
        ))
}

/// A member: counts what it takes (spending the work time on each), prints `@COUNT n` every
/// 100 ms and `@DONE n cpu_us` when its stdin closes.
fn member() {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let urls: Vec<String> = var(URLS_ENV).split(' ').map(str::to_owned).collect();
    let topic = var(TOPIC_ENV);
    let work = Duration::from_millis(var(WORK_ENV).parse().unwrap_or(0));
    let id = var(MEMBER_ENV);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let (client, mut events) = Client::connect(options(&urls, &id)).expect("valid options");
        client
            .subscribe_shared("bench", &topic, QoS::AtLeastOnce)
            .await
            .expect("subscribed");
        say("READY".into());
        let (eof_tx, mut eof) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            let _ = eof_tx.send(());
        });
        let mut count = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(Event::Message { .. }) => {
                        count += 1;
                        if !work.is_zero() {
                            tokio::time::sleep(work).await;
                        }
                    }
                    Some(_) => {}
                    None => break,
                },
                _ = tick.tick() => say(format!("COUNT {count}")),
                _ = &mut eof => break,
            }
        }
        say(format!(
            "DONE {count} {}",
            mqtt_benches::process_cpu_time().as_micros()
        ));
        let _ = client.disconnect().await;
    });
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "@{line}");
    let _ = out.flush();
}

/// A member process and its stdin (closing it ends the member).
struct Member {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the members said, tagged with the member index.
type Said = (usize, String);

fn spawn_member(
    index: usize,
    urls: &[String],
    topic: &str,
    work_ms: u64,
    tx: Sender<Said>,
) -> Member {
    let exe = std::env::current_exe().expect("the benchmark binary");
    let mut child = Command::new(exe)
        .env(MEMBER_ENV, format!("bench-member-{index}"))
        .env(URLS_ENV, urls.join(" "))
        .env(TOPIC_ENV, topic)
        .env(WORK_ENV, work_ms.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn a member");
    let stdout = child.stdout.take().expect("stdout");
    let stdin = child.stdin.take();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Some(rest) = line.strip_prefix('@') {
                if tx.send((index, rest.to_owned())).is_err() {
                    return;
                }
            }
        }
    });
    Member { child, stdin }
}

/// One measured run.
struct Run {
    members: usize,
    work_ms: u64,
    messages: u64,
    received: u64,
    elapsed: Duration,
    member_cpu: Duration,
    publisher_cpu: Duration,
}

fn run(
    cluster: &RmqttCluster,
    rt: &tokio::runtime::Runtime,
    members: usize,
    work_ms: u64,
    messages: u64,
) -> Run {
    let topic = format!("bench/group/{members}/{work_ms}");
    let (tx, rx): (Sender<Said>, Receiver<Said>) = std::sync::mpsc::channel();
    let mut procs: Vec<Member> = (0..members)
        .map(|i| {
            spawn_member(
                i,
                &cluster.urls_from(i % cluster.len()),
                &topic,
                work_ms,
                tx.clone(),
            )
        })
        .collect();
    let mut ready = 0;
    let mut counts = vec![0u64; members];
    let deadline = Instant::now() + RUN_LIMIT;
    while ready < members && Instant::now() < deadline {
        if let Ok((_, line)) = rx.recv_timeout(Duration::from_secs(1)) {
            if line == "READY" {
                ready += 1;
            }
        }
    }
    // The subscriptions reach every node through the cluster's routing table.
    std::thread::sleep(Duration::from_millis(500));
    let urls = cluster.urls_from(0);
    let cpu_before = mqtt_benches::process_cpu_time();
    let started = Instant::now();
    rt.block_on(async {
        let (client, mut events) =
            Client::connect(options(&urls, "bench-publisher")).expect("valid options");
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut workers = Vec::new();
        for _ in 0..PUBLISHERS {
            let (client, next, topic) = (client.clone(), next.clone(), topic.clone());
            workers.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= messages {
                        return;
                    }
                    let Ok(message) = Message::new(&topic, i.to_string()) else {
                        return;
                    };
                    if let Ok(handle) = client.publish(message.qos(QoS::AtLeastOnce)).await {
                        let _ = handle.await;
                    }
                }
            }));
        }
        for worker in workers {
            let _ = tokio::time::timeout(RUN_LIMIT, worker).await;
        }
        let _ = client.disconnect().await;
    });
    let publisher_cpu = mqtt_benches::process_cpu_time().saturating_sub(cpu_before);
    let mut last_progress = Instant::now();
    let mut done_at = None;
    while Instant::now() < deadline && last_progress.elapsed() < Duration::from_secs(15) {
        if let Ok((index, line)) = rx.recv_timeout(Duration::from_millis(200)) {
            if let Some(n) = line.strip_prefix("COUNT ").and_then(|n| n.parse().ok()) {
                if let Some(c) = counts.get_mut(index) {
                    if n > *c {
                        last_progress = Instant::now();
                    }
                    *c = n;
                }
            }
        }
        if counts.iter().sum::<u64>() >= messages {
            done_at = Some(Instant::now());
            break;
        }
    }
    let elapsed = done_at.unwrap_or_else(Instant::now).duration_since(started);
    for member in &mut procs {
        member.stdin = None;
    }
    let mut member_cpu = Duration::ZERO;
    let mut done = 0;
    let mut received = 0;
    let until = Instant::now() + Duration::from_secs(10);
    while done < members && Instant::now() < until {
        if let Ok((_, line)) = rx.recv_timeout(Duration::from_millis(200)) {
            if let Some(rest) = line.strip_prefix("DONE ") {
                let mut parts = rest.split(' ').filter_map(|p| p.parse::<u64>().ok());
                received += parts.next().unwrap_or(0);
                member_cpu += Duration::from_micros(parts.next().unwrap_or(0));
                done += 1;
            }
        }
    }
    procs.clear();
    Run {
        members,
        work_ms,
        messages,
        received,
        elapsed,
        member_cpu,
        publisher_cpu,
    }
}

fn main() {
    if std::env::var_os(MEMBER_ENV).is_some() {
        member();
        return;
    }
    let scale: f64 = std::env::var("CLUSTER_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let Some(cluster) = RmqttCluster::start_or_skip(3) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let mut runs = Vec::new();
    for (work_ms, base) in [(0u64, 20_000.0), (1, 4_000.0)] {
        let messages = ((base * scale) as u64).max(100);
        for members in [1, 2, 4] {
            let r = run(&cluster, &rt, members, work_ms, messages);
            eprintln!(
                "{} members, {} ms work: {} of {} in {:.2?}",
                r.members, r.work_ms, r.received, r.messages, r.elapsed
            );
            runs.push(r);
        }
    }
    println!("| work per message | members | messages | received | msg/s | vs 1 member | member CPU µs/msg | publisher CPU µs/msg |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut base_rate = 0.0;
    for r in &runs {
        let rate = r.received.min(r.messages) as f64 / r.elapsed.as_secs_f64().max(1e-9);
        if r.members == 1 {
            base_rate = rate;
        }
        let per = |cpu: Duration| cpu.as_secs_f64() * 1e6 / r.messages.max(1) as f64;
        println!(
            "| {} ms | {} | {} | {} | {:.0} | {:.2}x | {:.1} | {:.1} |",
            r.work_ms,
            r.members,
            r.messages,
            r.received,
            rate,
            rate / base_rate.max(1e-9),
            per(r.member_cpu),
            per(r.publisher_cpu),
        );
    }
}
