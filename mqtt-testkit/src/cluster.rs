//! A clustered broker on loopback: N nodes of rmqtt (a Rust MQTT broker with a Raft cluster),
//! each with its own configuration and data directory, for tests of failover and consumer
//! groups.
//!
//! The broker is the small binary crate in `brokers/rmqtt` of this workspace, built on demand
//! ([`rmqtt_binary`]) into `target/rmqtt` (or `MQTT_TESTKIT_RMQTT_TARGET`), or taken from
//! `MQTT_TESTKIT_RMQTT`. Building it
//! needs `protoc`, which is installed like mosquitto when missing. Every listener of every
//! node (MQTT, the Raft peers', the gRPC between nodes) is configured on 127.0.0.1, and
//! [`RmqttCluster::start`] proves it from `/proc`: a node listening anywhere else stops the
//! cluster and fails the test.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::sockets;

/// Overrides where the node binary is (then nothing is built).
const BINARY_ENV: &str = "MQTT_TESTKIT_RMQTT";
/// Overrides where the broker is built (a directory kept between clean clones, say).
const TARGET_ENV: &str = "MQTT_TESTKIT_RMQTT_TARGET";
/// Set: a cluster that cannot be had fails the test instead of skipping it (for CI).
pub const REQUIRE_ENV: &str = "MQTT_TESTKIT_REQUIRE_CLUSTER";
/// The longest the broker's build may take (a first build is about 10 minutes on 2 cores).
const BUILD_LIMIT: Duration = Duration::from_secs(45 * 60);
/// How long a node may take to accept connections after it started.
const NODE_START_LIMIT: Duration = Duration::from_secs(60);
/// How long the whole cluster may take to route messages between every pair of nodes.
const CLUSTER_READY_LIMIT: Duration = Duration::from_secs(60);
/// How much of a node's log a failing test prints.
const LOG_TAIL_LINES: usize = 60;

/// The rmqtt node binary, built (or brought up to date) once per process;
/// or why it cannot be had (no `protoc` and no way to install it, no network for the crates,
/// a failed build).
pub fn rmqtt_binary() -> Result<PathBuf, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND.get_or_init(find_or_build).clone()
}

/// The workspace's root (the parent of this crate's directory).
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Where the broker is built: `MQTT_TESTKIT_RMQTT_TARGET`, else `target/rmqtt` in the
/// workspace (whatever `CARGO_TARGET_DIR` says, so that every build of the workspace finds it).
fn broker_target(root: &Path) -> PathBuf {
    std::env::var_os(TARGET_ENV).map_or_else(|| root.join("target/rmqtt"), PathBuf::from)
}

fn find_or_build() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(BINARY_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{BINARY_ENV}={} is not a file", path.display()))
        };
    }
    let root = workspace_root();
    let crate_dir = root.join("brokers/rmqtt");
    let target = broker_target(&root);
    let binary = target.join("release/rmqtt-node");
    if !crate_dir.join("Cargo.toml").is_file() {
        return Err(format!("no broker crate at {}", crate_dir.display()));
    }
    // Cargo decides what is stale: with everything built this takes a second or two.
    match build(&root, &crate_dir, &target, &binary) {
        Ok(()) => Ok(binary),
        Err(e) if binary.is_file() => {
            eprintln!("mqtt-testkit: {e}; using the rmqtt test broker built before");
            Ok(binary)
        }
        Err(e) => Err(e),
    }
}

/// `cargo build --release --locked` of the broker crate into `target`.
fn build(root: &Path, crate_dir: &Path, target: &Path, binary: &Path) -> Result<(), String> {
    protoc()?;
    if !binary.is_file() {
        eprintln!(
            "mqtt-testkit: building the rmqtt test broker into {} (about 10 minutes the first \
             time on 2 cores; the log is {}/build.log) ...",
            target.display(),
            target.display()
        );
    }
    fs::create_dir_all(target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let log_path = target.join("build.log");
    let log = File::create(&log_path).map_err(|e| format!("cannot write the build log: {e}"))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("cannot write the build log: {e}"))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    // Another test process building at the same time waits on cargo's own lock.
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(crate_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target);
    // What cargo sets for the test that runs this (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME` ...)
    // differs from test to test, and build scripts that watch those variables would be run
    // again, with everything above them: only cargo's configuration goes through.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let config = [
            "CARGO_HOME",
            "CARGO_NET_",
            "CARGO_HTTP_",
            "CARGO_REGISTR",
            "CARGO_TERM_",
        ]
        .iter()
        .any(|keep| name.starts_with(keep));
        if name.starts_with("CARGO_") && !config {
            command.env_remove(name.as_ref());
        }
    }
    let mut child = command
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > BUILD_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("the broker's build took over {BUILD_LIMIT:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(format!("waiting for cargo: {e}")),
        }
    };
    if !status.success() || !binary.is_file() {
        let log = fs::read_to_string(&log_path).unwrap_or_default();
        return Err(format!(
            "the rmqtt test broker did not build ({status}); see {}:\n{}",
            log_path.display(),
            tail(&log)
        ));
    }
    if started.elapsed() > Duration::from_secs(30) {
        eprintln!(
            "mqtt-testkit: built the rmqtt test broker in {:.0?}",
            started.elapsed()
        );
    }
    Ok(())
}

/// `protoc`, installed from `protobuf-compiler` when missing (like mosquitto).
fn protoc() -> Result<PathBuf, String> {
    let find = || {
        crate::provision::on_path("protoc").or_else(|| {
            let usr = PathBuf::from("/usr/bin/protoc");
            usr.is_file().then_some(usr)
        })
    };
    if let Some(found) = std::env::var_os("PROTOC").map(PathBuf::from) {
        if found.is_file() {
            return Ok(found);
        }
    }
    find().map_or_else(|| crate::provision::install("protobuf-compiler", find), Ok)
}

/// The ports of one node.
#[derive(Debug, Clone, Copy)]
struct NodePorts {
    mqtt: u16,
    raft: u16,
    grpc: u16,
}

/// One node: its directory, ports and process.
#[derive(Debug)]
struct Node {
    id: usize,
    dir: PathBuf,
    ports: NodePorts,
    child: Option<Child>,
}

impl Node {
    fn log_file(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    fn log(&self) -> String {
        fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A cluster of rmqtt nodes private to one test, on loopback ports picked at start; every
/// node is killed when the value drops.
#[derive(Debug)]
pub struct RmqttCluster {
    binary: PathBuf,
    nodes: Vec<Node>,
    /// Holds every node's directory; removed last.
    dir: TempDir,
}

impl RmqttCluster {
    /// Starts `n` nodes (3 for a Raft majority that survives one node's death) and waits
    /// until each accepts connections and routes messages to every other; or says why the
    /// broker cannot be had. A broker that is there but does not start fails the test.
    pub fn start(n: usize) -> Result<Self, String> {
        Self::start_with(n, true)
    }

    /// [`start`](Self::start), with rmqtt's message-storage plugin on or off: without it the
    /// messages a node holds for its subscribers die with the node.
    pub fn start_with(n: usize, message_storage: bool) -> Result<Self, String> {
        let binary = rmqtt_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("mqtt-testkit-cluster-")
            .tempdir()
            .map_err(|e| format!("no temporary directory: {e}"))?;
        let mut dir = dir;
        let mut last = String::new();
        // A port released by `free_ports` can be taken before a node binds it: new ports.
        for round in 0..3 {
            let mut cluster = Self::configure(binary.clone(), dir, n, round, message_storage);
            match cluster.launch_all() {
                Ok(()) => return Ok(cluster),
                Err(log) => {
                    last = log;
                    cluster.kill_all();
                    dir = std::mem::replace(&mut cluster.dir, crate::tempdir());
                }
            }
        }
        panic!("the rmqtt cluster did not start:\n{last}");
    }

    /// [`start`](Self::start), or `None` with the reason printed when the broker cannot be
    /// had (the test is then skipped); with `MQTT_TESTKIT_REQUIRE_CLUSTER` set that fails.
    pub fn start_or_skip(n: usize) -> Option<Self> {
        Self::start_or_skip_with(n, true)
    }

    /// [`start_or_skip`](Self::start_or_skip) with the message-storage plugin on or off (see
    /// [`start_with`](Self::start_with)).
    pub fn start_or_skip_with(n: usize, message_storage: bool) -> Option<Self> {
        match Self::start_with(n, message_storage) {
            Ok(cluster) => Some(cluster),
            Err(reason) if std::env::var_os(REQUIRE_ENV).is_some() => {
                panic!("no rmqtt cluster, and {REQUIRE_ENV} is set: {reason}")
            }
            Err(reason) => {
                eprintln!("SKIPPED: no rmqtt cluster for this test: {reason}");
                None
            }
        }
    }

    /// Writes the configurations of `n` nodes into `dir`, on fresh ports.
    fn configure(
        binary: PathBuf,
        dir: TempDir,
        n: usize,
        round: usize,
        message_storage: bool,
    ) -> Self {
        let ports = crate::free_ports(3 * n);
        let ports: Vec<NodePorts> = ports
            .chunks(3)
            .map(|p| NodePorts {
                mqtt: p.first().copied().unwrap_or_default(),
                raft: p.get(1).copied().unwrap_or_default(),
                grpc: p.get(2).copied().unwrap_or_default(),
            })
            .collect();
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(index, own)| {
                let id = index + 1;
                let node_dir = dir.path().join(format!("try{round}/node{id}"));
                write_node_config(&node_dir, id, *own, &ports, message_storage);
                Node {
                    id,
                    dir: node_dir,
                    ports: *own,
                    child: None,
                }
            })
            .collect();
        Self { binary, nodes, dir }
    }

    /// Starts the first node (the Raft leader to begin with), then the others, and waits
    /// for the whole cluster.
    fn launch_all(&mut self) -> Result<(), String> {
        for index in 0..self.nodes.len() {
            self.spawn(index)?;
            if index == 0 {
                self.wait_node(0)?;
            }
        }
        for index in 1..self.nodes.len() {
            self.wait_node(index)?;
        }
        self.wait_routes()?;
        for index in 0..self.nodes.len() {
            self.check_loopback_only(index);
        }
        Ok(())
    }

    fn spawn(&mut self, index: usize) -> Result<(), String> {
        let node = self
            .nodes
            .get_mut(index)
            .ok_or_else(|| format!("no node {index}"))?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.log_file())
            .map_err(|e| format!("cannot open the node's log: {e}"))?;
        let child = Command::new(&self.binary)
            .arg("-f")
            .arg(node.dir.join("node.toml"))
            .current_dir(&node.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        node.child = Some(child);
        Ok(())
    }

    /// Waits until node `index` accepts an MQTT connection (CONNACK 0).
    fn wait_node(&mut self, index: usize) -> Result<(), String> {
        let deadline = Instant::now() + NODE_START_LIMIT;
        let mut last = String::new();
        while Instant::now() < deadline {
            let Some(node) = self.nodes.get_mut(index) else {
                return Err(format!("no node {index}"));
            };
            if let Some(child) = node.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    node.child = None;
                    return Err(format!(
                        "node {} exited with {status}:\n{}",
                        node.id,
                        tail(&node.log())
                    ));
                }
            }
            match probe::connect(node.ports.mqtt, &format!("testkit-probe-{}", node.id)) {
                Ok(_) => return Ok(()),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = self.nodes.get(index).map(Node::log).unwrap_or_default();
        Err(format!(
            "node {} did not accept connections within {NODE_START_LIMIT:?} ({last}):\n{}",
            index + 1,
            tail(&log)
        ))
    }

    /// Waits until a message published on each running node reaches a subscriber on the
    /// next running one: the cluster routes between its nodes.
    fn wait_routes(&mut self) -> Result<(), String> {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes.get(*i).is_some_and(|n| n.child.is_some()))
            .collect();
        let deadline = Instant::now() + CLUSTER_READY_LIMIT;
        for (k, &from) in running.iter().enumerate() {
            let Some(&to) = running.get((k + 1) % running.len()) else {
                continue;
            };
            let (Some(a), Some(b)) = (self.nodes.get(from), self.nodes.get(to)) else {
                continue;
            };
            probe::route(a.ports.mqtt, b.ports.mqtt, deadline).map_err(|e| {
                format!(
                    "no route from node {} to node {} within {CLUSTER_READY_LIMIT:?}: {e}",
                    a.id, b.id
                )
            })?;
        }
        Ok(())
    }

    /// Fails (stopping every node) unless node `index` listens on loopback only, on its
    /// three configured ports at least.
    fn check_loopback_only(&mut self, index: usize) {
        let Some(node) = self.nodes.get(index) else {
            return;
        };
        let Some(pid) = node.child.as_ref().map(Child::id) else {
            return;
        };
        let wanted = [node.ports.mqtt, node.ports.raft, node.ports.grpc];
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let Some(addresses) = sockets::listening_addresses(pid) else {
                return; // no /proc: nothing to read
            };
            let exposed: Vec<_> = addresses
                .iter()
                .filter(|a| !sockets::is_loopback(a))
                .collect();
            if !exposed.is_empty() {
                let id = node.id;
                self.kill_all();
                panic!(
                    "rmqtt node {id} listened beyond loopback on {exposed:?} (all: \
                     {addresses:?}); stopped the cluster"
                );
            }
            let all_seen = wanted
                .iter()
                .all(|port| addresses.iter().any(|a| a.port() == *port));
            if all_seen || Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// `mqtt://127.0.0.1:PORT` of node `index` (from 0).
    pub fn url(&self, index: usize) -> String {
        let port = self.nodes.get(index).map_or(0, |n| n.ports.mqtt);
        format!("mqtt://127.0.0.1:{port}")
    }

    /// Every node's URL, from node `first` on and round the list: a client's failover list
    /// that starts at that node.
    pub fn urls_from(&self, first: usize) -> Vec<String> {
        let n = self.nodes.len().max(1);
        (0..self.nodes.len())
            .map(|k| self.url((first + k) % n))
            .collect()
    }

    /// The MQTT port of node `index`.
    pub fn port(&self, index: usize) -> u16 {
        self.nodes.get(index).map_or(0, |n| n.ports.mqtt)
    }

    /// The process id of node `index` while it runs.
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.nodes
            .get(index)
            .and_then(|n| n.child.as_ref())
            .map(Child::id)
    }

    /// Whether node `index` is running.
    pub fn is_running(&mut self, index: usize) -> bool {
        self.nodes
            .get_mut(index)
            .and_then(|n| n.child.as_mut())
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Node `index`'s log so far.
    pub fn log(&self, index: usize) -> String {
        self.nodes.get(index).map(Node::log).unwrap_or_default()
    }

    /// Kills node `index` with SIGKILL: its connections drop at once and what it held in
    /// memory (sessions, queued messages) is gone.
    pub fn kill(&mut self, index: usize) {
        if let Some(node) = self.nodes.get_mut(index) {
            node.stop();
        }
    }

    /// Starts node `index` again (killing it first if it runs), on the same ports (the
    /// listeners set SO_REUSEADDR, so connections of the old process in TIME-WAIT do not
    /// block them) and configuration, and waits until it accepts connections and routes to
    /// the others. Returns how long that took.
    pub fn restart(&mut self, index: usize) -> Duration {
        let started = Instant::now();
        self.kill(index);
        let mut last = String::new();
        for _ in 0..5 {
            let result = self
                .spawn(index)
                .and_then(|()| self.wait_node(index))
                .and_then(|()| self.wait_routes());
            match result {
                Ok(()) => {
                    self.check_loopback_only(index);
                    return started.elapsed();
                }
                Err(e) => last = e,
            }
            self.kill(index);
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("rmqtt node {} did not restart:\n{last}", index + 1);
    }

    /// Waits until node `index` accepts an MQTT connection; how long that took, or `None`
    /// after `limit`.
    pub fn wait_accepting(&self, index: usize, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        let port = self.port(index);
        while started.elapsed() < limit {
            if probe::connect(port, "testkit-probe-wait").is_ok() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn kill_all(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
    }
}

impl Drop for RmqttCluster {
    fn drop(&mut self) {
        self.kill_all();
        if std::thread::panicking() {
            for node in &self.nodes {
                eprintln!("--- rmqtt node {} log (tail) ---", node.id);
                eprintln!("{}", tail(&node.log()));
            }
        }
    }
}

/// The last lines of a log.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

/// Writes node `id`'s configuration (`node.toml`) and its plugins' into `dir`.
fn write_node_config(
    dir: &Path,
    id: usize,
    own: NodePorts,
    all: &[NodePorts],
    message_storage: bool,
) {
    let plugins = dir.join("plugins");
    fs::create_dir_all(&plugins).expect("the node's directory");
    let level = if std::env::var_os("MQTT_TESTKIT_DEBUG_LOG").is_some() {
        "debug"
    } else {
        "info"
    };
    let mut startups = vec![
        "\"rmqtt-cluster-raft\"",
        "\"rmqtt-shared-subscription\"",
        "\"rmqtt-retainer\"",
    ];
    if message_storage {
        startups.push("\"rmqtt-message-storage\"");
    }
    let node = format!(
        r#"# Written by mqtt-testkit for one node of a test cluster. Every listener on loopback.
[node]
id = {id}
busy.check_enable = false

[rpc]
server_addr = "127.0.0.1:{grpc}"
reuseaddr = true

[log]
level = "{level}"

[plugins]
dir = "{plugins}/"
default_startups = [{startups}]

[listener.tcp.external]
addr = "127.0.0.1:{mqtt}"
allow_anonymous = true
reuseaddr = true
nodelay = true
max_inflight = 128
# Tests publish bursts to slow subscribers: a long queue, nothing dropped for its length.
max_mqueue_len = 1000000
session_expiry_interval = "2h"
"#,
        grpc = own.grpc,
        mqtt = own.mqtt,
        plugins = plugins.display(),
        startups = startups.join(", "),
    );
    let list = |f: fn(&NodePorts) -> u16| -> String {
        all.iter()
            .enumerate()
            .map(|(i, p)| format!("\"{}@127.0.0.1:{}\"", i + 1, f(p)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let raft = format!(
        r#"worker_threads = 2
# Node 1 leads at first; a node that starts again joins whichever node leads then.
leader_id = 1
laddr = "127.0.0.1:{raft}"
raft_peer_addrs = [{peers}]
node_grpc_addrs = [{grpcs}]
# A dead node's calls time out after 2 s instead of 10 s: failover in about 2.3 s.
node_grpc_client_timeout = "2s"

[health]
exit_on_node_unavailable = false

[raft]
# Without it a node started again cannot bind its Raft port while connections of the
# process killed before are in TIME-WAIT (about 60 s).
grpc_reuseaddr = true
"#,
        raft = own.raft,
        peers = list(|p| p.raft),
        grpcs = list(|p| p.grpc),
    );
    let files = [
        ("node.toml", node.as_str()),
        ("plugins/rmqtt-cluster-raft.toml", raft.as_str()),
        (
            "plugins/rmqtt-shared-subscription.toml",
            "strategy = \"round_robin\"\n",
        ),
        ("plugins/rmqtt-retainer.toml", "storage.type = \"ram\"\n"),
        (
            "plugins/rmqtt-message-storage.toml",
            "storage.type = \"ram\"\n",
        ),
    ];
    for (name, text) in files {
        fs::write(dir.join(name), text).expect("write a node's configuration");
    }
}

/// A few blocking MQTT 3.1.1 exchanges through the codec, to tell when a node is ready
/// without an async client.
mod probe {
    use super::*;
    use bytes::BytesMut;
    use mqtt_proto::{
        Connect, ConnectReasonCode, Decoder, Disconnect, DisconnectReasonCode, MqttString, Packet,
        PacketId, ProtocolVersion, Publish, QoS, QosPid, Subscribe, Subscription, TopicFilter,
        TopicName,
    };

    const TIMEOUT: Duration = Duration::from_secs(2);
    const VERSION: ProtocolVersion = ProtocolVersion::V3_1_1;

    /// One connection to a node, read and written whole packets at a time.
    pub(super) struct Probe {
        stream: TcpStream,
        buf: BytesMut,
        decoder: Decoder,
    }

    impl Probe {
        fn send(&mut self, packet: Packet) -> Result<(), String> {
            let mut wire = BytesMut::new();
            packet
                .encode(VERSION, &mut wire)
                .map_err(|e| e.to_string())?;
            self.stream.write_all(&wire).map_err(|e| e.to_string())
        }

        /// The next packet, or why none came (a read timeout included).
        fn receive(&mut self) -> Result<Packet, String> {
            loop {
                if let Some(packet) = self
                    .decoder
                    .decode(&mut self.buf)
                    .map_err(|e| e.to_string())?
                {
                    return Ok(packet);
                }
                let mut chunk = [0u8; 4096];
                match self.stream.read(&mut chunk) {
                    Ok(0) => return Err("the node closed the connection".into()),
                    Ok(n) => self
                        .buf
                        .extend_from_slice(chunk.get(..n).unwrap_or_default()),
                    Err(e) => return Err(e.to_string()),
                }
            }
        }

        fn disconnect(mut self) {
            let _ = self.send(Packet::Disconnect(Disconnect::new(
                DisconnectReasonCode::NormalDisconnection,
            )));
        }
    }

    /// Connects to `port` as `client_id` (clean session) and reads CONNACK; the connection if
    /// the node accepted.
    pub(super) fn connect(port: u16, client_id: &str) -> Result<Probe, String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
            .map_err(|e| e.to_string())?;
        let mut probe = Probe {
            stream,
            buf: BytesMut::new(),
            decoder: Decoder::new(VERSION),
        };
        let client_id = MqttString::new(client_id).map_err(|e| e.to_string())?;
        probe.send(Packet::Connect(Box::new(Connect::new(
            VERSION, client_id, 30,
        ))))?;
        match probe.receive()? {
            Packet::ConnAck(ack) if ack.reason_code == ConnectReasonCode::Success => Ok(probe),
            Packet::ConnAck(ack) => Err(format!("CONNACK {:?}", ack.reason_code)),
            other => Err(format!("not a CONNACK: {:?}", other.packet_type())),
        }
    }

    /// Subscribes on `to`, publishes on `from` every 200 ms until the subscriber gets one.
    pub(super) fn route(from: u16, to: u16, deadline: Instant) -> Result<(), String> {
        let topic = format!("mqtt-testkit/ready/{from}/{to}");
        let mut last = String::from("nothing tried");
        while Instant::now() < deadline {
            match try_route(from, to, &topic) {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(last)
    }

    fn try_route(from: u16, to: u16, topic: &str) -> Result<(), String> {
        let mut sub = connect(to, &format!("testkit-probe-sub-{to}"))?;
        let filter = TopicFilter::new(topic).map_err(|e| e.to_string())?;
        let id = PacketId::new(1).ok_or("packet identifier 1")?;
        sub.send(Packet::Subscribe(Subscribe::new(
            id,
            vec![Subscription::new(filter, QoS::AtMostOnce)],
        )))?;
        match sub.receive()? {
            Packet::SubAck(_) => {}
            other => return Err(format!("not a SUBACK: {:?}", other.packet_type())),
        }
        let mut publisher = connect(from, &format!("testkit-probe-pub-{from}"))?;
        sub.stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| e.to_string())?;
        let name = TopicName::new(topic).map_err(|e| e.to_string())?;
        for _ in 0..10 {
            let message = Publish::new(name.clone(), QosPid::AtMostOnce, &b"ready"[..]);
            publisher.send(Packet::Publish(message))?;
            if let Ok(Packet::Publish(_)) = sub.receive() {
                sub.disconnect();
                publisher.disconnect();
                return Ok(());
            }
        }
        Err("published, nothing arrived".into())
    }
}
