//! Failover and consumer groups on a real broker cluster: three rmqtt nodes on loopback
//! (see `mqtt_testkit::cluster`), nodes and client processes killed with SIGKILL mid-stream.
//!
//! Run alone, with the counts printed: `cargo test -p mqtt-tokio --test cluster -- --nocapture`.
//! Each test prints a `CLUSTER` line per scenario: delivered, lost and duplicated messages,
//! failover times and the client's own counters. Loss on a killed node (messages the broker
//! queued there) is the broker's and is printed, never hidden; loss the client could have
//! prevented fails the test.
//!
//! The group members are processes: this test binary run again with `MQTT_CLUSTER_CHILD`
//! set, which makes [`cluster_child`] play one member and print what it takes on stdout.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mqtt_testkit::RmqttCluster;
use mqtt_tokio::{
    Backoff, Client, ClientOptions, ClientStats, Event, Events, Message, ProtocolVersion,
    PublishOutcome, QoS,
};

/// What a child process does (`member`), its client id, version, group topic and URLs.
const CHILD_ENV: &str = "MQTT_CLUSTER_CHILD";
const ID_ENV: &str = "MQTT_CLUSTER_ID";
const VERSION_ENV: &str = "MQTT_CLUSTER_VERSION";
const TOPIC_ENV: &str = "MQTT_CLUSTER_TOPIC";
const URLS_ENV: &str = "MQTT_CLUSTER_URLS";

/// The longest any one step waits.
const LIMIT: Duration = Duration::from_secs(60);
/// How long delivery may take to settle after the last publish.
const SETTLE: Duration = Duration::from_secs(30);
/// The longest a member process runs.
const CHILD_LIFETIME: Duration = Duration::from_secs(600);

/// One cluster at a time: three nodes each, on two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Whether this process is a child playing a part, not the test run.
fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Options for a client that starts at node `first` and fails over round the others, with a
/// short backoff (the Raft leader's death gives some seconds of "server unavailable").
fn options(
    cluster: &RmqttCluster,
    first: usize,
    id: &str,
    version: ProtocolVersion,
) -> ClientOptions {
    options_for(&cluster.urls_from(first), id, version)
}

fn options_for(urls: &[String], id: &str, version: ProtocolVersion) -> ClientOptions {
    let mut options = ClientOptions::new(urls.first().map_or("mqtt://127.0.0.1:1", |u| u));
    for url in urls.iter().skip(1) {
        options = options.broker(url);
    }
    options
        .client_id(id)
        .version(version)
        .keep_alive(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(3))
        .reconnect(Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(2),
        ))
}

fn version_name(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V5 => "5.0",
        _ => "3.1.1",
    }
}

fn index_of(payload: &[u8]) -> Option<u64> {
    std::str::from_utf8(payload).ok()?.parse().ok()
}

fn stats_line(stats: &ClientStats) -> String {
    format!(
        "attempts={} connections={} reconnects={} in_flight={} queued={}",
        stats.connect_attempts,
        stats.connections,
        stats.reconnects(),
        stats.in_flight,
        stats.queued
    )
}

/// Ranges of consecutive numbers, for printing gaps: `3-7, 12`.
fn ranges(numbers: &BTreeSet<u64>) -> String {
    let mut out = Vec::new();
    let mut iter = numbers.iter().copied();
    let Some(mut start) = iter.next() else {
        return "none".into();
    };
    let mut end = start;
    for n in iter {
        if n == end + 1 {
            end = n;
            continue;
        }
        out.push(if start == end {
            format!("{start}")
        } else {
            format!("{start}-{end}")
        });
        start = n;
        end = n;
    }
    out.push(if start == end {
        format!("{start}")
    } else {
        format!("{start}-{end}")
    });
    out.join(", ")
}

/// What a subscriber received: how often each index, and when it (re)connected.
#[derive(Debug, Default)]
struct Received {
    counts: BTreeMap<u64, u32>,
    connected: Vec<(Instant, bool)>,
    resubscribed: Vec<Instant>,
    /// When each index first arrived.
    first_seen: BTreeMap<u64, Instant>,
}

impl Received {
    fn take(&mut self, index: u64) {
        *self.counts.entry(index).or_default() += 1;
        self.first_seen.entry(index).or_insert_with(Instant::now);
    }

    fn duplicates(&self) -> u64 {
        self.counts.values().map(|c| u64::from(c - 1)).sum()
    }
}

/// Reads `events` into `received` until the stream ends.
fn collect(mut events: Events, received: Arc<Mutex<Received>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let mut r = received.lock().unwrap_or_else(|p| p.into_inner());
            match event {
                Event::Message { publish, .. } => {
                    if let Some(index) = index_of(&publish.payload) {
                        r.take(index);
                    }
                }
                Event::Connected {
                    session_present, ..
                } => r.connected.push((Instant::now(), session_present)),
                Event::Resubscribed { .. } => r.resubscribed.push(Instant::now()),
                _ => {}
            }
        }
    })
}

/// Waits until `done` holds of `received`, or `limit` passes.
async fn settle(received: &Mutex<Received>, limit: Duration, done: impl Fn(&Received) -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done(&received.lock().unwrap_or_else(|p| p.into_inner())) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes `count` indexed messages to `topic` from `WORKERS` concurrent publishes, at most
/// `rate` a second, and records the indices whose publish resolved successfully, with when.
struct Publisher {
    resolved: Arc<Mutex<BTreeMap<u64, Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

const WORKERS: usize = 16;

impl Publisher {
    fn start(client: Client, topic: String, count: u64, qos: QoS, rate: u64) -> Self {
        let resolved = Arc::new(Mutex::new(BTreeMap::new()));
        let next = Arc::new(AtomicUsize::new(0));
        let begin = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..WORKERS {
            let (client, topic, resolved, next) = (
                client.clone(),
                topic.clone(),
                resolved.clone(),
                next.clone(),
            );
            workers.push(tokio::spawn(async move {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed) as u64;
                    if index >= count {
                        return;
                    }
                    // Paced: message `index` goes no earlier than index / rate seconds in.
                    let due = begin + Duration::from_secs_f64(index as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                    let Ok(message) = Message::new(&topic, index.to_string()) else {
                        return;
                    };
                    let outcome = match client.publish(message.qos(qos)).await {
                        Ok(handle) => handle.await,
                        Err(e) => Err(e),
                    };
                    let ok = matches!(
                        outcome,
                        Ok(PublishOutcome::Acknowledged { .. } | PublishOutcome::Completed { .. })
                    );
                    if ok {
                        resolved
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(index, Instant::now());
                    }
                }
            }));
        }
        let task = tokio::spawn(async move {
            for worker in workers {
                let _ = worker.await;
            }
        });
        Self { resolved, task }
    }

    fn resolved_count(&self) -> usize {
        self.resolved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Waits until `n` publishes resolved (or the limit passes).
    async fn wait_resolved(&self, n: usize) {
        let deadline = Instant::now() + LIMIT;
        while self.resolved_count() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for every publish to end, within `limit`; the resolved indices.
    async fn finish(self, limit: Duration) -> BTreeMap<u64, Instant> {
        let _ = tokio::time::timeout(limit, self.task).await;
        let resolved = self.resolved.lock().unwrap_or_else(|p| p.into_inner());
        resolved.clone()
    }
}

/// A publisher at QoS 1 and 2, 3.1.1 and 5.0, whose node is killed a third of the way
/// through: every publish that resolved reaches a subscriber on another node, and the
/// publisher fails over by itself through its list of node URLs.
/// The most acknowledged publishes a killed node may take with it: the client's in-flight
/// window (20 by default).
const DYING_NODE_LOSS_LIMIT: usize = 20;

#[test]
fn a_publisher_whose_node_dies_loses_nothing_it_was_told_was_delivered() {
    if is_child() {
        return;
    }
    let _serial = serial();
    let Some(mut cluster) = RmqttCluster::start_or_skip(3) else {
        return;
    };
    let rt = runtime();
    let cases = [
        (ProtocolVersion::V3_1_1, QoS::AtLeastOnce),
        (ProtocolVersion::V3_1_1, QoS::ExactlyOnce),
        (ProtocolVersion::V5, QoS::AtLeastOnce),
        (ProtocolVersion::V5, QoS::ExactlyOnce),
    ];
    const COUNT: u64 = 3000;
    for (round, (version, qos)) in cases.into_iter().enumerate() {
        let victim = round % cluster.len();
        let watcher = (victim + 1) % cluster.len();
        let topic = format!("cluster/publisher/{round}");
        let report = rt.block_on(async {
            let received = Arc::new(Mutex::new(Received::default()));
            let sub_options = options(&cluster, watcher, &format!("watch-{round}"), version);
            let (subscriber, events) = Client::connect(sub_options).expect("valid options");
            let collector = collect(events, received.clone());
            subscriber.subscribe(&topic, qos).await.expect("subscribed");

            let pub_options = options(&cluster, victim, &format!("pub-{round}"), version);
            let (client, pub_events) = Client::connect(pub_options).expect("valid options");
            let pub_received = Arc::new(Mutex::new(Received::default()));
            let pub_collector = collect(pub_events, pub_received.clone());
            let publisher = Publisher::start(client.clone(), topic.clone(), COUNT, qos, 1500);
            publisher.wait_resolved(COUNT as usize / 3).await;
            let killed_at = Instant::now();
            cluster.kill(victim);
            let resolved = publisher.finish(LIMIT * 2).await;
            settle(&received, SETTLE, |r| {
                resolved.keys().all(|i| r.counts.contains_key(i))
            })
            .await;
            let stats = client.stats();
            let _ = client.disconnect().await;
            let _ = subscriber.disconnect().await;
            let _ = tokio::time::timeout(LIMIT, collector).await;
            let _ = tokio::time::timeout(LIMIT, pub_collector).await;

            let r = received.lock().unwrap_or_else(|p| p.into_inner());
            let lost: BTreeSet<u64> = resolved
                .keys()
                .filter(|i| !r.counts.contains_key(i))
                .copied()
                .collect();
            let delivered = resolved.len() - lost.len();
            let unresolved_delivered = r
                .counts
                .keys()
                .filter(|i| !resolved.contains_key(i))
                .count();
            let failover = resolved
                .values()
                .filter(|t| **t > killed_at)
                .min()
                .map(|t| t.duration_since(killed_at));
            let reconnected_at = pub_received
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .connected
                .iter()
                .find(|(t, _)| *t > killed_at)
                .map(|(t, _)| *t);
            let reconnected = reconnected_at.map(|t| t.duration_since(killed_at));
            // Acknowledged by the node being killed (before the client was on another one):
            // the node owned those messages and died with them, which is the broker's loss.
            let (broker_lost, lost): (BTreeSet<u64>, BTreeSet<u64>) =
                lost.into_iter().partition(|i| {
                    resolved
                        .get(i)
                        .is_some_and(|t| reconnected_at.is_none_or(|r| *t < r))
                });
            println!(
                "CLUSTER publisher {} QoS {}: node {} killed after {} of {COUNT}; resolved={} \
                 delivered={delivered} lost={} lost_by_the_dying_node={} duplicated={} delivered_unresolved={} \
                 failover (reconnected after the kill)={reconnected:?} first_resolved_after_kill={failover:?} \
                 publisher: {}",
                version_name(version),
                qos as u8,
                victim + 1,
                COUNT / 3,
                resolved.len(),
                lost.len(),
                broker_lost.len(),
                r.duplicates(),
                unresolved_delivered,
                stats_line(&stats),
            );
            (lost, broker_lost, resolved.len(), stats, reconnected)
        });
        let (lost, broker_lost, resolved, stats, reconnected) = report;
        assert!(
            lost.is_empty(),
            "publishes that resolved and never arrived: {}",
            ranges(&lost)
        );
        // What a node acknowledges just before it dies can be lost with it; no more than
        // one in-flight window of it.
        assert!(
            broker_lost.len() <= DYING_NODE_LOSS_LIMIT,
            "the dying node lost {} acknowledged publishes: {}",
            broker_lost.len(),
            ranges(&broker_lost)
        );
        assert_eq!(
            resolved as u64, COUNT,
            "every publish resolves after failover"
        );
        assert!(
            stats.connections >= 2,
            "the publisher failed over: {stats:?}"
        );
        assert!(reconnected.is_some(), "the publisher reconnected");
        let took = cluster.restart(victim);
        println!("CLUSTER node {} restarted in {took:.1?}", victim + 1);
    }
}

/// A persistent subscriber (3.1.1 and 5.0) whose node dies: it reconnects to another node,
/// subscribes again as the session is gone there, and the gap is reported; every message
/// published once it has subscribed again arrives.
#[test]
fn a_persistent_subscriber_whose_node_dies_resubscribes_elsewhere() {
    persistent_subscribers(true);
}

/// The same without the broker's message storage: what the dead node had queued for the
/// subscribers is lost with it. That loss is the broker's; it is measured and printed, and
/// only what was published once the subscription was back must arrive.
#[test]
fn without_message_storage_the_broker_loses_what_the_dead_node_held() {
    persistent_subscribers(false);
}

fn persistent_subscribers(message_storage: bool) {
    if is_child() {
        return;
    }
    let _serial = serial();
    let Some(mut cluster) = RmqttCluster::start_or_skip_with(3, message_storage) else {
        return;
    };
    let rt = runtime();
    const COUNT: u64 = 4000;
    let victim = 1;
    rt.block_on(async {
        let topic = "cluster/persistent/a";
        let mut subscribers = Vec::new();
        for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
            let received = Arc::new(Mutex::new(Received::default()));
            let id = format!("persistent-{}", version_name(version));
            let options = options(&cluster, victim, &id, version).persistent_session();
            let (client, events) = Client::connect(options).expect("valid options");
            let collector = collect(events, received.clone());
            client
                .subscribe(topic, QoS::AtLeastOnce)
                .await
                .expect("subscribed");
            subscribers.push((version, client, received, collector));
        }
        let (publisher, pub_events) = Client::connect(options(
            &cluster,
            0,
            "persistent-publisher",
            ProtocolVersion::V5,
        ))
        .expect("valid options");
        let _pub_collector = collect(pub_events, Arc::new(Mutex::new(Received::default())));
        let publishing = Publisher::start(
            publisher.clone(),
            topic.into(),
            COUNT,
            QoS::AtLeastOnce,
            1000,
        );
        publishing.wait_resolved(COUNT as usize / 3).await;
        let killed_at = Instant::now();
        cluster.kill(victim);
        let resolved = publishing.finish(LIMIT * 2).await;
        for (_, _, received, _) in &subscribers {
            settle(received, SETTLE, |r| {
                resolved.keys().all(|i| r.counts.contains_key(i))
            })
            .await;
        }
        let _ = publisher.disconnect().await;
        for (version, client, received, collector) in subscribers {
            let stats = client.stats();
            let _ = client.disconnect().await;
            let _ = tokio::time::timeout(LIMIT, collector).await;
            let r = received.lock().unwrap_or_else(|p| p.into_inner());
            let reconnect = r.connected.iter().find(|(t, _)| *t > killed_at).copied();
            let resubscribed = r.resubscribed.iter().find(|t| **t > killed_at).copied();
            let gap: BTreeSet<u64> = resolved
                .keys()
                .filter(|i| !r.counts.contains_key(i))
                .copied()
                .collect();
            // Published after the subscription was back: the client's part, no loss allowed.
            let back = resubscribed.or(reconnect.map(|(t, _)| t));
            let lost_after: BTreeSet<u64> = gap
                .iter()
                .filter(|i| {
                    back.zip(resolved.get(i))
                        .is_some_and(|(back, at)| *at > back + Duration::from_millis(500))
                })
                .copied()
                .collect();
            println!(
                "CLUSTER persistent subscriber {} (broker message storage {}): node {} killed; published={} \
                 delivered={} lost={} (gap: {}) duplicated={} reconnected_after={:?} \
                 session_present={:?} resubscribed_after={:?} subscriber: {}",
                version_name(version),
                if message_storage { "on" } else { "off" },
                victim + 1,
                resolved.len(),
                resolved.len() - gap.len(),
                gap.len(),
                ranges(&gap),
                r.duplicates(),
                reconnect.map(|(t, _)| t.duration_since(killed_at)),
                reconnect.map(|(_, present)| present),
                resubscribed.map(|t| t.duration_since(killed_at)),
                stats_line(&stats),
            );
            let (_, present) = reconnect.expect("the subscriber reconnected to another node");
            assert!(
                present || resubscribed.is_some(),
                "a session not present was rebuilt by subscribing again"
            );
            assert!(
                lost_after.is_empty(),
                "messages published after the subscription was back never arrived: {}",
                ranges(&lost_after)
            );
        }
    });
}

/// A child process playing one consumer-group member; prints `@…` lines.
#[test]
fn cluster_child() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    assert_eq!(role, "member", "unknown child role");
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let urls: Vec<String> = var(URLS_ENV).split(' ').map(str::to_owned).collect();
    let version = if var(VERSION_ENV) == "5" {
        ProtocolVersion::V5
    } else {
        ProtocolVersion::V3_1_1
    };
    let (id, topic) = (var(ID_ENV), var(TOPIC_ENV));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // A member outlives no test: one whose parent was killed stops by itself.
    let member = async move {
        let options = options_for(&urls, &id, version).persistent_session();
        let (client, mut events) = Client::connect(options).expect("valid options");
        let subscriber = client.clone();
        tokio::spawn(async move {
            match subscriber
                .subscribe_shared("g", &topic, QoS::AtLeastOnce)
                .await
            {
                Ok(_) => report("READY".into()),
                Err(e) => report(format!("FAILED {e}")),
            }
        });
        while let Some(event) = events.recv().await {
            match event {
                Event::Message { publish, .. } => {
                    if let Some(index) = index_of(&publish.payload) {
                        report(format!("MSG {index}"));
                    }
                }
                Event::Connected {
                    session_present, ..
                } => report(format!("CONNECTED {session_present}")),
                Event::Resubscribed { .. } => report("RESUBSCRIBED".into()),
                _ => {}
            }
        }
    };
    let _ = rt.block_on(async { tokio::time::timeout(CHILD_LIFETIME, member).await });
}

/// Prints a line, marked with `@`, and makes sure it left the process before going on.
fn report(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "@{line}");
    let _ = out.flush();
}

/// What the members of a group printed, merged.
#[derive(Debug, Default)]
struct GroupLog {
    received: Received,
    per_member: BTreeMap<usize, u64>,
    ready: BTreeSet<usize>,
    connected: Vec<(usize, Instant, bool)>,
}

/// One member process.
struct Member {
    child: Child,
}

impl Member {
    fn spawn(
        index: usize,
        urls: &[String],
        version: ProtocolVersion,
        topic: &str,
        log: Arc<Mutex<GroupLog>>,
    ) -> Self {
        let exe = std::env::current_exe().expect("the test binary");
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "cluster_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "member")
            .env(ID_ENV, format!("member-{index}"))
            .env(
                VERSION_ENV,
                if version == ProtocolVersion::V5 {
                    "5"
                } else {
                    "4"
                },
            )
            .env(TOPIC_ENV, topic)
            .env(URLS_ENV, urls.join(" "))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn a member");
        let stdout = child.stdout.take().expect("the member's stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let Some(at) = line.find('@') else { continue };
                let rest = &line[at + 1..];
                let mut g = log.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(message) = rest.strip_prefix("MSG ").and_then(|i| i.parse().ok()) {
                    g.received.take(message);
                    *g.per_member.entry(index).or_default() += 1;
                }
                if rest == "READY" {
                    g.ready.insert(index);
                }
                if let Some(present) = rest.strip_prefix("CONNECTED ") {
                    g.connected.push((index, Instant::now(), present == "true"));
                }
            }
        });
        Self { child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `done` holds of the group's log, or `limit` passes.
fn wait_group(log: &Mutex<GroupLog>, limit: Duration, done: impl Fn(&GroupLog) -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done(&log.lock().unwrap_or_else(|p| p.into_inner())) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A consumer group (`$share/g/…`) of three member processes on three nodes (5.0, 3.1.1,
/// 5.0, persistent sessions): one member killed with SIGKILL and started again, then a
/// node killed under another member. Every message is delivered at least once to the group
/// while only a member dies; what the dead node held is the broker's, and is printed;
/// duplicates are counted and bounded.
#[test]
fn a_consumer_group_keeps_consuming_when_a_member_then_a_node_dies() {
    if is_child() {
        return;
    }
    let _serial = serial();
    let Some(mut cluster) = RmqttCluster::start_or_skip(3) else {
        return;
    };
    let rt = runtime();
    const COUNT: u64 = 8000;
    let topic = "cluster/group/jobs";
    let versions = [
        ProtocolVersion::V5,
        ProtocolVersion::V3_1_1,
        ProtocolVersion::V5,
    ];
    let log = Arc::new(Mutex::new(GroupLog::default()));
    let mut members: Vec<Member> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| Member::spawn(i, &cluster.urls_from(i), *v, topic, log.clone()))
        .collect();
    assert!(
        wait_group(&log, LIMIT, |g| g.ready.len() == members.len()),
        "every member subscribed"
    );
    let node_victim = 1;
    let member_victim = 2;
    let (resolved, member_killed_at, respawned_at, node_killed_at, stats) = rt.block_on(async {
        let options = options(&cluster, 0, "group-publisher", ProtocolVersion::V5);
        let (client, events) = Client::connect(options).expect("valid options");
        let _collector = collect(events, Arc::new(Mutex::new(Received::default())));
        let publishing =
            Publisher::start(client.clone(), topic.into(), COUNT, QoS::AtLeastOnce, 1000);
        publishing.wait_resolved(COUNT as usize / 4).await;
        let member_killed_at = Instant::now();
        if let Some(member) = members.get_mut(member_victim) {
            member.kill();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let respawned_at = Instant::now();
        let urls = cluster.urls_from(member_victim);
        if let Some(slot) = members.get_mut(member_victim) {
            *slot = Member::spawn(
                member_victim,
                &urls,
                versions[member_victim],
                topic,
                log.clone(),
            );
        }
        publishing.wait_resolved(COUNT as usize / 2).await;
        let node_killed_at = Instant::now();
        cluster.kill(node_victim);
        let resolved = publishing.finish(LIMIT * 2).await;
        let stats = client.stats();
        let _ = client.disconnect().await;
        (
            resolved,
            member_killed_at,
            respawned_at,
            node_killed_at,
            stats,
        )
    });
    wait_group(&log, SETTLE, |g| {
        resolved.keys().all(|i| g.received.counts.contains_key(i))
    });
    drop(members);
    let g = log.lock().unwrap_or_else(|p| p.into_inner());
    let lost: BTreeSet<u64> = resolved
        .keys()
        .filter(|i| !g.received.counts.contains_key(i))
        .copied()
        .collect();
    let resolved_before = |at: Instant| -> BTreeSet<u64> {
        lost.iter()
            .filter(|i| resolved.get(i).is_some_and(|t| *t < at))
            .copied()
            .collect()
    };
    let lost_before_node = resolved_before(node_killed_at);
    let lost_before_member = resolved_before(member_killed_at);
    let member_back = g
        .connected
        .iter()
        .find(|(m, t, _)| *m == member_victim && *t > respawned_at)
        .map(|(_, t, present)| (t.duration_since(member_killed_at), *present));
    let node_failover = g
        .connected
        .iter()
        .find(|(m, t, _)| *m == node_victim && *t > node_killed_at)
        .map(|(_, t, present)| (t.duration_since(node_killed_at), *present));
    println!(
        "CLUSTER consumer group of {} processes: published={} delivered={} lost={} (gap: {}) \
         lost_before_node_death={} duplicated={} per_member={:?}; member-{} killed, back \
         (connected, session present) after {:?}; node {} killed, member-{} on it back \
         (connected, session present) after {:?}; publisher: {}",
        versions.len(),
        resolved.len(),
        resolved.len() - lost.len(),
        lost.len(),
        ranges(&lost),
        lost_before_node.len(),
        g.received.duplicates(),
        g.per_member,
        member_victim,
        member_back,
        node_victim + 1,
        node_victim,
        node_failover,
        stats_line(&stats),
    );
    assert_eq!(resolved.len() as u64, COUNT, "every publish resolved");
    assert!(
        lost_before_member.is_empty() && lost_before_node.is_empty(),
        "messages lost while only a member died: {}",
        ranges(&lost_before_node)
    );
    assert!(
        node_failover.is_some(),
        "the member on the dead node failed over"
    );
    assert!(
        g.received.duplicates() <= COUNT / 10,
        "duplicates beyond what was in flight at the kills"
    );
}
