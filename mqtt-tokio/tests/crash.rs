//! Crash tests: client processes killed with SIGKILL at arbitrary points, against a real
//! mosquitto on loopback.
//!
//! The test binary is its own child process: a parent test re-runs this executable with
//! `MQTT_CRASH_CHILD` set, which makes [`crash_child`] play the part (subscriber or
//! publisher) and report what it did on stdout, one line per step, flushed before it goes
//! on. The parent kills it at random points and checks what the broker delivered against
//! what the child had reported.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use mqtt_testkit::Mosquitto;
use mqtt_tokio::{Client, ClientOptions, Event, Message, ProtocolVersion, QoS};

/// The publisher's store directory, run number, first index, last index and QoS.
const STORE_ENV: &str = "MQTT_CRASH_STORE";
const RUN_ENV: &str = "MQTT_CRASH_RUN";
const FROM_ENV: &str = "MQTT_CRASH_FROM";
const COUNT_ENV: &str = "MQTT_CRASH_COUNT";
const QOS_ENV: &str = "MQTT_CRASH_QOS";

/// Longest wait for any one step.
const LIMIT: Duration = Duration::from_secs(30);

/// What a child process does, chosen by the `MQTT_CRASH_CHILD` variable.
const CHILD_ENV: &str = "MQTT_CRASH_CHILD";
/// The broker URL for the child.
const URL_ENV: &str = "MQTT_CRASH_URL";

/// A child process and the lines it printed, as they come.
struct ChildProcess {
    child: Child,
    lines: Receiver<String>,
}

impl ChildProcess {
    /// Runs this test binary's `crash_child` as `role` against `url`.
    fn spawn(role: &str, url: &str, extra: &[(&str, String)]) -> Self {
        let exe = std::env::current_exe().expect("the test binary");
        let mut command = Command::new(exe);
        command
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, role)
            .env(URL_ENV, url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in extra {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn the child");
        let stdout = child.stdout.take().expect("the child's stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// The next line starting with `prefix` (its rest), or `None` if the child ended or the
    /// limit passed.
    fn next(&self, prefix: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = after(&line, prefix) {
                        return Some(rest);
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// SIGKILL, and wait for the process to be gone; returns what it printed meanwhile.
    fn kill(mut self) -> Receiver<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (_, placeholder) = std::sync::mpsc::channel();
        std::mem::replace(&mut self.lines, placeholder)
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines with `prefix` still buffered from a killed child (printed before it died).
fn remaining(lines: Receiver<String>, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
        if let Some(rest) = after(&line, prefix) {
            out.push(rest);
        }
    }
    out
}

/// What follows the marker `prefix` in a line of the child's output. The test harness
/// prints `test crash_child ... ` without a newline first, so a marker may start mid-line.
fn after(line: &str, prefix: &str) -> Option<String> {
    let marker = format!("@{prefix}");
    line.find(&marker)
        .map(|at| line[at + marker.len()..].trim().to_owned())
}

/// A small random source for kill points (xorshift), seeded from the clock.
struct Random(u64);

impl Random {
    fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        eprintln!("crash test seed {seed}");
        Self(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Runs the part a parent test asked for; does nothing in a normal test run.
#[test]
fn crash_child() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let url = std::env::var(URL_ENV).expect("the broker URL");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match role.as_str() {
        "subscriber" => runtime.block_on(slow_subscriber(&url)),
        "publisher" => durable_publisher(&url),
        other => panic!("unknown child role {other}"),
    }
}

/// Prints a line, marked with `@`, and makes sure it left the process before going on.
fn report(line: String) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "@{line}");
    let _ = out.flush();
}

/// A persistent-session subscriber that takes one message every 2 ms and reports each as it
/// takes it.
async fn slow_subscriber(url: &str) {
    let options = ClientOptions::new(url)
        .client_id("crash-subscriber")
        .version(ProtocolVersion::V3_1_1)
        .persistent_session()
        .inbound_queue(50, 1 << 20);
    let (client, mut events) = Client::connect(options).expect("valid options");
    client
        .subscribe("crash/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    report("READY".into());
    while let Some(event) = events.recv().await {
        if let Event::Message { publish, .. } = event {
            let index = u32::from_be_bytes(publish.payload[..4].try_into().expect("4 bytes"));
            report(format!("TOOK {index}"));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_subscriber_gets_every_message_it_had_not_taken() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    const COUNT: u32 = 1000;
    let broker = Mosquitto::plain();
    let url = broker.url();
    let mut random = Random::new();
    let mut taken = BTreeSet::new();
    let mut kills = 0;
    // The first run only sets up the persistent session and its subscription.
    let first = ChildProcess::spawn("subscriber", &url, &[]);
    first.next("READY", LIMIT).expect("the subscriber is ready");
    let options = ClientOptions::new(&url)
        .client_id("crash-publisher")
        .version(ProtocolVersion::V3_1_1)
        .no_reconnect();
    let (publisher, _publisher_events) = Client::connect(options).expect("valid options");
    for i in 0..COUNT {
        let message = Message::new("crash/a", i.to_be_bytes().to_vec())
            .expect("valid topic")
            .qos(QoS::AtLeastOnce);
        publisher
            .publish_and_wait(message)
            .await
            .expect("published");
    }
    let mut child = first;
    // Kill the subscriber three times at random points while it works through its queue.
    for _ in 0..3 {
        let take = 50 + random.below(200);
        for _ in 0..take {
            match child.next("TOOK", LIMIT) {
                Some(index) => {
                    taken.insert(index.parse::<u32>().expect("an index"));
                }
                None => break,
            }
        }
        let lines = child.kill();
        kills += 1;
        for index in remaining(lines, "TOOK") {
            taken.insert(index.parse::<u32>().expect("an index"));
        }
        child = ChildProcess::spawn("subscriber", &url, &[]);
        child
            .next("READY", LIMIT)
            .expect("the subscriber is ready again");
    }
    let deadline = Instant::now() + LIMIT;
    while taken.len() < COUNT as usize && Instant::now() < deadline {
        if let Some(index) = child.next("TOOK", Duration::from_secs(5)) {
            taken.insert(index.parse::<u32>().expect("an index"));
        }
    }
    drop(child);
    let missing: Vec<u32> = (0..COUNT).filter(|i| !taken.contains(i)).collect();
    eprintln!(
        "{kills} kills: {} of {COUNT} messages taken, {} missing",
        taken.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "messages the broker was told were delivered but no application took: {missing:?}"
    );
    publisher.disconnect().await.expect("disconnect");
}

fn env_number(name: &str) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not set"))
}

/// A publisher on the sans-IO session with a `FileStore`, driven by a plain blocking loop:
/// it publishes messages `FROM..COUNT` (payload: run number and index), makes each durable
/// with `commit`, and only then reports it `ACCEPTED`. Restarted from the same store, it
/// first finishes what the store holds.
fn durable_publisher(url: &str) {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use bytes::BytesMut;
    use mqtt_session::{Config, Event as SessionEvent, FileStore, PublishError, Session};

    let dir = std::env::var(STORE_ENV).expect("the store directory");
    let run = env_number(RUN_ENV);
    let count = env_number(COUNT_ENV);
    let mut next = env_number(FROM_ENV);
    let qos = QoS::from_u8(env_number(QOS_ENV) as u8).expect("a QoS");
    let store = FileStore::open(&dir).expect("the store opens");
    let config = Config::new("crash-publisher")
        .expect("a client id")
        .version(ProtocolVersion::V3_1_1)
        .clean_start(false)
        .max_inflight(PUBLISHER_INFLIGHT)
        .max_queued(PUBLISHER_QUEUE);
    let mut session = Session::with_store(config, Box::new(store)).expect("the store loads");
    report(format!(
        "RESUMED {} {}",
        session.inflight(),
        session.queued()
    ));
    let address = url.trim_start_matches("mqtt://");
    let mut socket = TcpStream::connect(address).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_millis(1)))
        .expect("read timeout");
    socket.set_nodelay(true).expect("nodelay");
    let start = Instant::now();
    session.handle_connected(start);
    let mut out = BytesMut::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u32> = Vec::new();
    loop {
        let now = Instant::now();
        // Publish what the queue takes, then make it durable before reporting it.
        while next < count && session.is_connected() {
            let mut payload = run.to_be_bytes().to_vec();
            payload.extend_from_slice(&next.to_be_bytes());
            let message = mqtt_session::Message::new("durable/a", payload)
                .expect("valid topic")
                .qos(qos);
            match session.publish(now, message) {
                Ok(_token) => {
                    pending.push(next);
                    next += 1;
                }
                Err(PublishError::QueueFull) => break,
                Err(e) => panic!("publish refused: {e}"),
            }
        }
        if !pending.is_empty() {
            session.commit().expect("commit");
            for index in pending.drain(..) {
                report(format!("ACCEPTED {run} {index}"));
            }
        }
        out.clear();
        session.poll_transmit(&mut out);
        if !out.is_empty() {
            socket.write_all(&out).expect("write");
        }
        while let Some(event) = session.poll_event() {
            if let SessionEvent::Disconnected { reason } = event {
                panic!("disconnected: {reason}");
            }
        }
        if next >= count && session.inflight() == 0 && session.queued() == 0 {
            report("DONE".into());
            return;
        }
        match socket.read(&mut buf) {
            Ok(0) => panic!("the broker closed the connection"),
            Ok(n) => session.handle_read(Instant::now(), &buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("read: {e}"),
        }
        if session.poll_timeout().is_some_and(|t| t <= Instant::now()) {
            session.handle_timeout(Instant::now());
        }
    }
}

/// The publisher's in-flight window and queue: how many messages it may have accepted
/// before one commit.
const PUBLISHER_INFLIGHT: u16 = 20;
const PUBLISHER_QUEUE: usize = 64;

/// Kills a durable publisher again and again; checks that every message it reported
/// accepted is delivered (QoS 1 at least once, QoS 2 exactly once) and nothing else is.
async fn killed_publisher_loses_nothing(qos: QoS, kills: u32) {
    const COUNT: u32 = 2500;
    let broker = Mosquitto::plain();
    let url = broker.url();
    let dir = mqtt_testkit::tempdir();
    let store = dir.path().join("store");
    let mut random = Random::new();
    let options = ClientOptions::new(&url)
        .client_id(&format!("durable-subscriber-{}", qos as u8))
        .version(ProtocolVersion::V3_1_1)
        .no_reconnect();
    let (subscriber, mut events) = Client::connect(options).expect("valid options");
    subscriber
        .subscribe("durable/#", QoS::ExactlyOnce)
        .await
        .expect("subscribe");
    // (run, index) of every message reported accepted, and of the one each killed run may
    // have published without reporting it.
    let mut accepted: BTreeSet<(u32, u32)> = BTreeSet::new();
    let mut unreported: BTreeSet<(u32, u32)> = BTreeSet::new();
    let mut from = 0;
    let mut run = 0;
    let mut killed = 0;
    loop {
        run += 1;
        let extra = [
            (STORE_ENV, store.display().to_string()),
            (RUN_ENV, run.to_string()),
            (FROM_ENV, from.to_string()),
            (COUNT_ENV, COUNT.to_string()),
            (QOS_ENV, (qos as u8).to_string()),
        ];
        let child = ChildProcess::spawn("publisher", &url, &extra);
        let last_run = killed >= kills;
        // Kill after a random number of steps: anywhere from while it resumes to deep in
        // the stream.
        let steps = if last_run { u64::MAX } else { random.below(80) };
        let mut seen = 0;
        let mut done = false;
        while seen < steps {
            let Some(line) = child.next("", LIMIT) else {
                break;
            };
            if let Some(rest) = line.strip_prefix("ACCEPTED") {
                let mut parts = rest.split_whitespace().map(|p| p.parse::<u32>());
                let (Some(Ok(r)), Some(Ok(i))) = (parts.next(), parts.next()) else {
                    panic!("bad line {line}");
                };
                accepted.insert((r, i));
                from = from.max(i + 1);
            }
            if line == "DONE" {
                done = true;
                break;
            }
            seen += 1;
        }
        if done {
            break;
        }
        assert!(!last_run, "the last run did not finish");
        let lines = child.kill();
        killed += 1;
        for line in remaining(lines, "ACCEPTED") {
            let mut parts = line.split_whitespace().map(|p| p.parse::<u32>());
            if let (Some(Ok(r)), Some(Ok(i))) = (parts.next(), parts.next()) {
                accepted.insert((r, i));
                from = from.max(i + 1);
            }
        }
        // Messages published but not yet reported when the process died may still have been
        // stored and sent: at most what the window and the queue hold.
        let window = u32::from(PUBLISHER_INFLIGHT) + PUBLISHER_QUEUE as u32;
        for i in from..from + window {
            unreported.insert((run, i));
        }
    }
    // Collect deliveries until every accepted message has arrived and a quiet period passed.
    let mut delivered: std::collections::BTreeMap<(u32, u32), u32> = Default::default();
    let deadline = Instant::now() + LIMIT;
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        let all = accepted.iter().all(|k| delivered.contains_key(k));
        if all && quiet_since.elapsed() > Duration::from_millis(500) {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(100), events.recv()).await {
            Ok(Some(Event::Message { publish, .. })) => {
                let p = &publish.payload;
                let run = u32::from_be_bytes(p[..4].try_into().expect("run"));
                let index = u32::from_be_bytes(p[4..8].try_into().expect("index"));
                *delivered.entry((run, index)).or_default() += 1;
                quiet_since = Instant::now();
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => {}
        }
    }
    let lost: Vec<_> = accepted
        .iter()
        .filter(|k| !delivered.contains_key(k))
        .collect();
    let twice: Vec<_> = delivered.iter().filter(|(_, n)| **n > 1).collect();
    let foreign: Vec<_> = delivered
        .keys()
        .filter(|k| !accepted.contains(k) && !unreported.contains(k))
        .collect();
    eprintln!(
        "QoS {}: {killed} kills, {} runs, {} accepted, {} delivered, {} delivered twice, {} lost",
        qos as u8,
        run,
        accepted.len(),
        delivered.len(),
        twice.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "accepted but never delivered: {lost:?}");
    assert!(
        foreign.is_empty(),
        "delivered but never published: {foreign:?}"
    );
    if qos == QoS::ExactlyOnce {
        assert!(twice.is_empty(), "QoS 2 delivered twice: {twice:?}");
    }
    subscriber.disconnect().await.expect("disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_qos1_publisher_delivers_everything_it_accepted() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    killed_publisher_loses_nothing(QoS::AtLeastOnce, 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_qos2_publisher_delivers_everything_it_accepted_exactly_once() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    killed_publisher_loses_nothing(QoS::ExactlyOnce, 40).await;
}
