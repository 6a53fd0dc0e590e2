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
        publisher.publish(message).await.expect("published");
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
