//! One node of an rmqtt cluster, for the cluster tests of mqtt-testkit.
//!
//! The start-up of rmqtt's own server (`rmqttd` 0.24.0, `src/server.rs`, MIT OR Apache-2.0)
//! cut down to what the tests use: the configuration file given with `-f` (the testkit writes
//! one per node), plain TCP listeners, the gRPC server between nodes, and the plugins the
//! cluster tests need. Logs go to stderr, which the testkit sends to a file per node.

#![forbid(unsafe_code)]

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::anyhow;
use clap_free::options;
use rmqtt::args::CommandArgs;
use rmqtt::context::{
    CircuitBreakerConfig, CountBasedWindowConfig, ServerContext, TimeBasedWindowConfig,
    WindowConfig,
};
use rmqtt::net::Builder;
use rmqtt::node::Node;
use rmqtt::server::MqttServer;
use rmqtt_conf::{listener::Listener, Settings};

/// The plugins this broker carries, all started at once (the names are also the names of
/// their configuration files in the plugins directory).
const PLUGINS: [&str; 4] = [
    "rmqtt-cluster-raft",
    "rmqtt-shared-subscription",
    "rmqtt-retainer",
    "rmqtt-message-storage",
];

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        log::error!("{e:#}");
        eprintln!("rmqtt-node: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let conf = Settings::init(options()?)?;
    StderrLogger::install(&conf.log.level.to_string());

    let node = Node::new(
        conf.node.id,
        conf.node.busy.loadavg,
        conf.node.busy.cpuloadavg,
        conf.node.busy.update_interval,
    );
    log::info!(
        "Starting rmqtt (version={}, rustc={})",
        Node::version(),
        Node::rustc_version()
    );
    let _ = Settings::logs();

    let scx = ServerContext::new()
        .args(command_args(conf))
        .node(node)
        .task_exec_workers(conf.task.exec_workers)
        .task_exec_queue_max(conf.task.exec_queue_max)
        .busy_check_enable(conf.node.busy.check_enable)
        .busy_handshaking_limit(conf.node.busy.handshaking)
        .mqtt_max_sessions(conf.mqtt.max_sessions)
        .plugins_config_dir(conf.plugins.dir.as_str())
        .circuit_breaker_config(circuit_breaker(conf))
        .build()
        .await;

    scx.node.start_grpc_server(
        scx.clone(),
        conf.rpc.server_addr,
        conf.rpc.reuseaddr,
        conf.rpc.reuseport,
    );

    // Registered as immutable where rmqttd registers them so (the cluster and the message
    // store cannot be stopped at run time), and started at once. `plugins.default_startups`
    // names the ones to start; empty, all of them.
    let startups = &conf.plugins.default_startups;
    let wanted = |name: &str| startups.is_empty() || startups.iter().any(|s| s == name);
    rmqtt_cluster_raft::register_named(&scx, PLUGINS[0], true, true).await?;
    if wanted(PLUGINS[1]) {
        rmqtt_shared_subscription::register_named(&scx, PLUGINS[1], true, false).await?;
    }
    if wanted(PLUGINS[2]) {
        rmqtt_retainer::register_named(&scx, PLUGINS[2], true, false).await?;
    }
    if wanted(PLUGINS[3]) {
        rmqtt_message_storage::register_named(&scx, PLUGINS[3], true, true).await?;
    }

    let mut builder = MqttServer::new(scx);
    for listen in conf.listeners.tcps.values() {
        let listener = listener(listen)
            .bind()
            .and_then(|l| l.tcp())
            .map_err(|e| anyhow!("cannot listen on {}: {e}", listen.addr))?;
        builder = builder.listener(listener);
    }
    builder.build().start();

    tokio::select! {
        _ = wait_for_signal() => {}
        _ = parent_gone() => log::warn!("the process that started this node is gone: stopping"),
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    std::process::exit(0);
}

/// Resolves once the process that started this node has gone (its parent is then another
/// process): a test runner killed before it could stop its brokers leaves none behind.
async fn parent_gone() {
    let parent = std::os::unix::process::parent_id();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if std::os::unix::process::parent_id() != parent {
            return;
        }
    }
}

/// SIGTERM or SIGINT (SIGINT only, if no SIGTERM handler can be installed).
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn circuit_breaker(conf: &Settings) -> CircuitBreakerConfig {
    let cb = &conf.circuit_breaker;
    let window = match cb.sliding_window_type.as_str() {
        "CountBased" => WindowConfig::CountBased(CountBasedWindowConfig {
            sliding_window_size: cb.sliding_window_size,
        }),
        _ => WindowConfig::TimeBased(TimeBasedWindowConfig {
            sliding_window_duration: cb.sliding_window_duration,
            sliding_window_size: cb.sliding_window_size,
        }),
    };
    CircuitBreakerConfig {
        failure_rate_threshold: cb.failure_rate_threshold,
        window,
        minimum_number_of_calls: cb.minimum_number_of_calls,
        wait_duration_in_open: cb.wait_duration_in_open,
        slow_call_duration_threshold: cb.slow_call_duration_threshold,
        slow_call_rate_threshold: cb.slow_call_rate_threshold,
        name: "grpc".into(),
    }
}

fn listener(cfg: &Listener) -> Builder {
    Builder::new()
        .name(cfg.name.as_str())
        .laddr(cfg.addr)
        .max_connections(cfg.max_connections)
        .max_handshaking_limit(cfg.max_handshaking_limit)
        .max_packet_size(cfg.max_packet_size.as_u32())
        .backlog(cfg.backlog)
        .nodelay(cfg.nodelay)
        .reuseaddr(cfg.reuseaddr)
        .reuseport(cfg.reuseport)
        .tcp_keepalive(cfg.tcp_keepalive)
        .allow_anonymous(cfg.allow_anonymous)
        .min_keepalive(cfg.min_keepalive)
        .max_keepalive(cfg.max_keepalive)
        .allow_zero_keepalive(cfg.allow_zero_keepalive)
        .keepalive_backoff(cfg.keepalive_backoff)
        .max_inflight(cfg.max_inflight)
        .handshake_timeout(cfg.handshake_timeout)
        .max_mqueue_len(cfg.max_mqueue_len)
        .mqueue_rate_limit(cfg.mqueue_rate_limit.0, cfg.mqueue_rate_limit.1)
        .max_clientid_len(cfg.max_clientid_len)
        .max_qos_allowed(cfg.max_qos_allowed)
        .max_topic_levels(cfg.max_topic_levels)
        .session_expiry_interval(cfg.session_expiry_interval)
        .max_session_expiry_interval(cfg.max_session_expiry_interval)
        .message_retry_interval(cfg.message_retry_interval)
        .message_expiry_interval(cfg.message_expiry_interval)
        .max_subscriptions(cfg.max_subscriptions)
        .max_topic_aliases(cfg.max_topic_aliases)
        .limit_subscription(cfg.limit_subscription)
        .idle_timeout(cfg.idle_timeout)
}

fn command_args(cfg: &Settings) -> CommandArgs {
    CommandArgs {
        node_id: cfg.opts.node_id,
        plugins_default_startups: cfg.opts.plugins_default_startups.clone(),
        node_grpc_addrs: cfg.opts.node_grpc_addrs.clone(),
        raft_peer_addrs: cfg.opts.raft_peer_addrs.clone(),
        raft_leader_id: cfg.opts.raft_leader_id,
    }
}

/// The command line: `rmqtt-node -f CONFIG` (rmqttd's other flags are not needed here).
mod clap_free {
    use anyhow::bail;
    use rmqtt_conf::Options;

    pub(crate) fn options() -> anyhow::Result<Options> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        match args.as_slice() {
            [flag, file] if flag == "-f" || flag == "--config" => Ok(Options {
                cfg_name: Some(file.clone()),
                ..Options::default()
            }),
            _ => bail!("usage: rmqtt-node -f CONFIG"),
        }
    }
}

/// `log` records to stderr, one line each, with the Unix time in milliseconds.
struct StderrLogger(log::LevelFilter);

impl StderrLogger {
    fn install(level: &str) {
        let level = level.parse().unwrap_or(log::LevelFilter::Info);
        let _ = log::set_boxed_logger(Box::new(Self(level)));
        log::set_max_level(level);
    }
}

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.0
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let _ = writeln!(
            std::io::stderr().lock(),
            "{}.{:03} {:5} {} {}",
            ms / 1000,
            ms % 1000,
            record.level(),
            record.target(),
            record.args()
        );
    }

    fn flush(&self) {}
}
