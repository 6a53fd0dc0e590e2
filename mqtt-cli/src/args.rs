//! Command-line flags, spelled as `mosquitto_pub` and `mosquitto_sub` spell them.
//!
//! `-h` is the host, as in mosquitto, so help is `--help` only.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// Publish and subscribe to MQTT brokers.
#[derive(Debug, Parser)]
#[command(
    name = "mqtt",
    version,
    disable_help_flag = true,
    disable_help_subcommand = true
)]
pub(crate) struct Cli {
    /// Print help.
    #[arg(long, action = ArgAction::Help, global = true)]
    help: Option<bool>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The two commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Publish one message, a file, or stdin (like mosquitto_pub).
    #[command(disable_help_flag = true)]
    Pub(PubArgs),
    /// Subscribe and print messages (like mosquitto_sub).
    #[command(disable_help_flag = true)]
    Sub(SubArgs),
}

/// Protocol versions, with mosquitto's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Version {
    /// MQTT 3.1.
    #[value(name = "mqttv31", alias = "31")]
    V31,
    /// MQTT 3.1.1.
    #[value(name = "mqttv311", alias = "311")]
    V311,
    /// MQTT 5.0.
    #[value(name = "mqttv5", alias = "5")]
    V5,
}

/// Connection flags shared by `pub` and `sub`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnArgs {
    /// Broker host.
    #[arg(short = 'h', long = "host", default_value = "localhost")]
    pub(crate) host: String,
    /// Broker port (default 1883, or 8883 with TLS).
    #[arg(short = 'p', long = "port")]
    pub(crate) port: Option<u16>,
    /// Broker URL: mqtt(s)://[user[:password]@]host[:port]/topic, or ws(s)://...
    #[arg(short = 'L', long = "url")]
    pub(crate) url: Option<String>,
    /// Client id (default: mqtt-<pid>).
    #[arg(short = 'i', long = "id")]
    pub(crate) id: Option<String>,
    /// Client id prefix; the process id is appended.
    #[arg(short = 'I', long = "id-prefix")]
    pub(crate) id_prefix: Option<String>,
    /// User name.
    #[arg(short = 'u', long = "username")]
    pub(crate) username: Option<String>,
    /// Password.
    #[arg(short = 'P', long = "pw")]
    pub(crate) password: Option<String>,
    /// Keep alive in seconds.
    #[arg(short = 'k', long = "keepalive", default_value_t = 60)]
    pub(crate) keepalive: u16,
    /// Disable clean session (persistent session).
    #[arg(short = 'c', long = "disable-clean-session")]
    pub(crate) no_clean: bool,
    /// Session expiry interval in seconds (MQTT 5.0).
    #[arg(short = 'x', long = "session-expiry-interval")]
    pub(crate) session_expiry: Option<u32>,
    /// Protocol version.
    #[arg(
        short = 'V',
        long = "protocol-version",
        value_enum,
        default_value = "mqttv311"
    )]
    pub(crate) version: Version,
    /// Print debug messages (packets sent and received; never passwords).
    #[arg(short = 'd', long = "debug")]
    pub(crate) debug: bool,
    /// Will topic.
    #[arg(long = "will-topic")]
    pub(crate) will_topic: Option<String>,
    /// Will payload.
    #[arg(long = "will-payload")]
    pub(crate) will_payload: Option<String>,
    /// Will QoS.
    #[arg(long = "will-qos", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub(crate) will_qos: u8,
    /// Retain the will.
    #[arg(long = "will-retain")]
    pub(crate) will_retain: bool,
    /// CA certificate file for TLS (turns TLS on).
    #[arg(long = "cafile")]
    pub(crate) cafile: Option<PathBuf>,
    /// Directory of CA certificates (turns TLS on).
    #[arg(long = "capath")]
    pub(crate) capath: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long = "cert")]
    pub(crate) cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long = "key")]
    pub(crate) key: Option<PathBuf>,
    /// Do not verify the server's certificate and host name (dangerous).
    #[arg(long = "insecure")]
    pub(crate) insecure: bool,
    /// Do not print error messages.
    #[arg(long = "quiet")]
    pub(crate) quiet: bool,
}

/// Flags of `mqtt pub`.
#[derive(Debug, Clone, Args)]
pub(crate) struct PubArgs {
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
    /// Topic to publish to.
    #[arg(short = 't', long = "topic")]
    pub(crate) topic: Option<String>,
    /// Message payload.
    #[arg(short = 'm', long = "message", group = "source")]
    pub(crate) message: Option<String>,
    /// Send the contents of a file as the message.
    #[arg(short = 'f', long = "file", group = "source")]
    pub(crate) file: Option<PathBuf>,
    /// Read the message from stdin, sending the whole input as one message.
    #[arg(short = 's', long = "stdin-file", group = "source")]
    pub(crate) stdin_file: bool,
    /// Read messages from stdin, one per line.
    #[arg(short = 'l', long = "stdin-line", group = "source")]
    pub(crate) stdin_line: bool,
    /// Send a zero-length message.
    #[arg(short = 'n', long = "null-message", group = "source")]
    pub(crate) null_message: bool,
    /// Quality of service.
    #[arg(short = 'q', long = "qos", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub(crate) qos: u8,
    /// Retain the message.
    #[arg(short = 'r', long = "retain")]
    pub(crate) retain: bool,
    /// Publish the message this many times.
    #[arg(long = "repeat", default_value_t = 1)]
    pub(crate) repeat: u32,
    /// Seconds between repeats.
    #[arg(long = "repeat-delay", default_value_t = 0.0)]
    pub(crate) repeat_delay: f64,
}

/// Flags of `mqtt sub`.
#[derive(Debug, Clone, Args)]
pub(crate) struct SubArgs {
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
    /// Topic filter to subscribe to; may be repeated.
    #[arg(short = 't', long = "topic")]
    pub(crate) topics: Vec<String>,
    /// Topic filter whose matches are not printed; may be repeated.
    #[arg(short = 'T', long = "filter-out")]
    pub(crate) filter_out: Vec<String>,
    /// Quality of service of the subscriptions.
    #[arg(short = 'q', long = "qos", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub(crate) qos: u8,
    /// Exit after this many messages.
    #[arg(short = 'C', long = "count")]
    pub(crate) count: Option<u64>,
    /// Exit after this many seconds.
    #[arg(short = 'W', long = "timeout")]
    pub(crate) timeout: Option<u64>,
    /// Print "topic payload".
    #[arg(short = 'v', long = "verbose")]
    pub(crate) verbose: bool,
    /// Do not print a newline after each payload.
    #[arg(short = 'N')]
    pub(crate) no_newline: bool,
    /// Do not print stale retained messages.
    #[arg(short = 'R')]
    pub(crate) no_retained: bool,
    /// Exit once subscribed.
    #[arg(short = 'E')]
    pub(crate) exit_after_subscribe: bool,
    /// Print only retained messages, and exit at the first non-retained one.
    #[arg(long = "retained-only")]
    pub(crate) retained_only: bool,
    /// Unsubscribe from the topics before exiting.
    #[arg(short = 'U', long = "unsubscribe")]
    pub(crate) unsubscribe: Vec<String>,
}
