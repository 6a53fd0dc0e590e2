//! Command-line flags, spelled as `mosquitto_pub` and `mosquitto_sub` spell them.
//!
//! `-h` is the host, as in mosquitto, so help is `--help` only.

use std::path::PathBuf;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::CliError;

/// Publish and subscribe to MQTT brokers.
#[derive(Debug, Parser)]
#[command(
    name = "mqtt",
    version,
    disable_help_flag = true,
    disable_help_subcommand = true,
    disable_version_flag = true,
    propagate_version = true
)]
pub(crate) struct Cli {
    /// Print help.
    #[arg(long, action = ArgAction::Help, global = true)]
    help: Option<bool>,
    /// Print the version.
    #[arg(long = "version", action = ArgAction::Version, global = true)]
    print_version: Option<bool>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

impl Cli {
    /// Parses the command line.
    pub(crate) fn from_command_line() -> Result<Self, CliError> {
        Self::from_args(std::env::args_os())
    }

    /// Parses arguments (the first is the program name); a command line clap rejects is
    /// worded as mosquitto's clients word it.
    pub(crate) fn from_args(
        args: impl IntoIterator<Item = impl Into<std::ffi::OsString> + Clone>,
    ) -> Result<Self, CliError> {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let rejected = |e| rejected(e, command_name(&args));
        let matches = Self::command()
            .try_get_matches_from(&args)
            .map_err(rejected)?;
        let mut cli = Self::from_arg_matches(&matches).map_err(rejected)?;
        let conn = match &mut cli.command {
            Command::Pub(args) => &mut args.conn,
            Command::Sub(args) => &mut args.conn,
        };
        if conn.property_values.is_empty() {
            return Ok(cli);
        }
        // Each -D is one occurrence: a property's own values, 3 or 4 of them.
        conn.properties = matches
            .subcommand()
            .and_then(|(_, sub)| {
                sub.try_get_occurrences::<String>("property_values")
                    .ok()
                    .flatten()
            })
            .map(|occurrences| {
                occurrences
                    .map(|values| values.cloned().collect())
                    .collect()
            })
            .unwrap_or_default();
        Ok(cli)
    }
}

/// `mqtt pub`, `mqtt sub` or `mqtt`, after the first argument: how usage errors name the
/// command.
pub(crate) fn command_name(args: &[std::ffi::OsString]) -> &'static str {
    match args.get(1).and_then(|a| a.to_str()) {
        Some("pub") => "mqtt pub",
        Some("sub") => "mqtt sub",
        _ => "mqtt",
    }
}

/// A command line clap rejects, in mosquitto's words where mosquitto has them. Help and the
/// version are [`CliError::Info`]: printed, with exit code 1, as mosquitto's clients do.
fn rejected(error: clap::Error, command: &str) -> CliError {
    use clap::error::{ContextKind, ErrorKind};
    let context = |kind| match error.get(kind) {
        Some(value) => value.to_string(),
        None => String::new(),
    };
    let flag = context(ContextKind::InvalidArg);
    let flag = flag.split(' ').next().unwrap_or_default();
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            CliError::Info(error.render().to_string())
        }
        ErrorKind::DisplayVersion => {
            CliError::Info(format!("{command} version {}\n", env!("CARGO_PKG_VERSION")))
        }
        ErrorKind::UnknownArgument => CliError::Usage(format!("Unknown option '{flag}'.")),
        // The value parsers below word their complaints as mosquitto does.
        ErrorKind::ValueValidation => match std::error::Error::source(&error) {
            Some(reason) => CliError::Usage(reason.to_string()),
            None => CliError::Usage(format!("Invalid value for {flag}.")),
        },
        ErrorKind::InvalidValue if context(ContextKind::InvalidValue).is_empty() => {
            CliError::Usage(format!("{flag} argument given but no value specified."))
        }
        ErrorKind::ArgumentConflict if MESSAGE_SOURCES.contains(&flag) => {
            CliError::Usage("Only one type of message can be sent at once.".to_string())
        }
        _ => {
            // clap's own first line, without its "error: " prefix.
            let text = error.to_string();
            let line = text.lines().next().unwrap_or_default();
            CliError::Usage(line.trim_start_matches("error: ").to_string())
        }
    }
}

/// The flags of `mqtt pub` that say where the message comes from: only one may be given.
const MESSAGE_SOURCES: [&str; 5] = [
    "--message",
    "--file",
    "--stdin-file",
    "--stdin-line",
    "--null-message",
];

/// `-q` and `--will-qos`: 0, 1 or 2.
fn qos(value: &str) -> Result<u8, String> {
    match value.parse() {
        Ok(qos @ 0..=2) => Ok(qos),
        _ => Err(format!("Invalid QoS given: {value}")),
    }
}

/// `--will-qos`: 0, 1 or 2.
fn will_qos(value: &str) -> Result<u8, String> {
    qos(value).map_err(|_| format!("Invalid will QoS {value}."))
}

/// `-V`: mosquitto's names, or the bare numbers.
fn protocol_version(value: &str) -> Result<Version, String> {
    match value {
        "mqttv31" | "31" => Ok(Version::V31),
        "mqttv311" | "311" => Ok(Version::V311),
        "mqttv5" | "5" => Ok(Version::V5),
        _ => Err("Invalid protocol version argument given.".to_string()),
    }
}

/// `-C`: a positive count.
fn count(value: &str) -> Result<u64, String> {
    match value.parse() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("Invalid message count \"{value}\".")),
    }
}

/// `-W`: a positive number of seconds.
fn timeout(value: &str) -> Result<u64, String> {
    match value.parse() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("Invalid timeout \"{value}\".")),
    }
}

/// The two commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Publish one message, a file, or stdin (like mosquitto_pub).
    #[command(
        disable_help_flag = true,
        mut_arg("id", |a| a.help(default_id_help(DEFAULT_ID_PUB)))
    )]
    Pub(PubArgs),
    /// Subscribe and print messages (like mosquitto_sub).
    #[command(
        disable_help_flag = true,
        mut_arg("id", |a| a.help(default_id_help(DEFAULT_ID_SUB)))
    )]
    Sub(SubArgs),
}

/// The client id of `mqtt pub` without `-i` or `-I` is this with the process id appended,
/// as mosquitto_pub's is `mosquitto_pub_` and the process id.
pub(crate) const DEFAULT_ID_PUB: &str = "mqtt_pub_";
/// The same for `mqtt sub`.
pub(crate) const DEFAULT_ID_SUB: &str = "mqtt_sub_";

/// The help of `-i`, in mosquitto's words.
fn default_id_help(prefix: &str) -> String {
    format!("Id to use for this client. Defaults to {prefix} appended with the process id")
}

/// Protocol versions, with mosquitto's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// MQTT 3.1.
    V31,
    /// MQTT 3.1.1.
    V311,
    /// MQTT 5.0.
    V5,
}

/// Connection flags shared by `pub` and `sub`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnArgs {
    /// Broker host.
    #[arg(short = 'h', long = "host", default_value = "localhost")]
    pub(crate) host: String,
    /// Connect through this Unix domain socket instead of TCP (-h and -p are then ignored).
    #[arg(long = "unix")]
    pub(crate) unix: Option<PathBuf>,
    /// Broker port (default 1883, or 8883 with TLS).
    #[arg(short = 'p', long = "port")]
    pub(crate) port: Option<u16>,
    /// Broker URL: mqtt(s)://[user[:password]@]host[:port]/topic, or ws(s)://...
    #[arg(short = 'L', long = "url")]
    pub(crate) url: Option<String>,
    /// Client id (defaults to the command's prefix with the process id appended).
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
    /// Protocol version: mqttv31, mqttv311 or mqttv5 (also 31, 311, 5) [default: mqttv311,
    /// or mqttv5 when -D is given].
    #[arg(short = 'V', long = "protocol-version", value_parser = protocol_version)]
    pub(crate) version: Option<Version>,
    /// MQTT 5.0 property, as mosquitto names it: COMMAND NAME VALUE, or COMMAND user-property
    /// KEY VALUE; may be repeated.
    ///
    /// Commands and properties: connect (session-expiry-interval, receive-maximum,
    /// maximum-packet-size, topic-alias-maximum, request-problem-information,
    /// request-response-information, user-property); will (will-delay-interval,
    /// payload-format-indicator, message-expiry-interval, content-type, response-topic,
    /// correlation-data, user-property); for pub, publish (payload-format-indicator,
    /// message-expiry-interval, content-type, response-topic, correlation-data,
    /// user-property); for sub, subscribe (subscription-identifier, user-property) and
    /// unsubscribe (user-property). Implies -V mqttv5; any other -V is an error.
    #[arg(
        short = 'D',
        long = "property",
        num_args = 3..=4,
        value_names = ["COMMAND", "NAME", "VALUE"],
        action = ArgAction::Append
    )]
    property_values: Vec<String>,
    /// The `-D` properties, one list of values per `-D` (clap's derive only keeps them all in
    /// one list; [`Cli::from_command_line`] splits them).
    #[arg(skip)]
    pub(crate) properties: Vec<Vec<String>>,
    /// Accepted for compatibility: Nagle's algorithm is always off (TCP_NODELAY).
    #[arg(long = "nodelay")]
    pub(crate) nodelay: bool,
    /// Print a line on stdout for each packet sent and received, as mosquitto's -d does.
    #[arg(short = 'd', long = "debug")]
    pub(crate) debug: bool,
    /// Will topic.
    #[arg(long = "will-topic")]
    pub(crate) will_topic: Option<String>,
    /// Will payload.
    #[arg(long = "will-payload")]
    pub(crate) will_payload: Option<String>,
    /// Will QoS.
    #[arg(long = "will-qos", default_value_t = 0, value_parser = will_qos)]
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
    /// Trust the operating system's CA certificates, also next to --cafile (turns TLS on).
    #[arg(long = "tls-use-os-certs")]
    pub(crate) tls_use_os_certs: bool,
    /// Oldest TLS version to accept: tlsv1.3 or tlsv1.2 (the default, which allows 1.3 too).
    #[arg(long = "tls-version")]
    pub(crate) tls_version: Option<String>,
    /// ALPN protocol to offer in the TLS handshake (e.g. x-amzn-mqtt-ca).
    #[arg(long = "tls-alpn")]
    pub(crate) tls_alpn: Option<String>,
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
    #[arg(short = 'q', long = "qos", default_value_t = 0, value_parser = qos)]
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
    #[arg(short = 'q', long = "qos", default_value_t = 0, value_parser = qos)]
    pub(crate) qos: u8,
    /// Exit after this many messages.
    #[arg(short = 'C', long = "count", value_parser = count)]
    pub(crate) count: Option<u64>,
    /// Exit after this many seconds.
    #[arg(short = 'W', long = "timeout", value_parser = timeout)]
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
    /// Clear every retained message received: publish an empty retained message to its topic.
    #[arg(long = "remove-retained")]
    pub(crate) remove_retained: bool,
    /// Print each message with this format instead of the payload (overrides -v; -N still
    /// drops the newline).
    ///
    /// %t topic, %p payload, %x/%X payload in lower/upper case hex, %q QoS, %r retain flag,
    /// %l payload length, %m message id (0 at QoS 0), %I ISO 8601 time, %U Unix time with
    /// nanoseconds, %j JSON of the message, %J the same with a JSON payload embedded, %%
    /// a literal %. MQTT 5.0 properties: %A topic alias, %C content type, %D correlation
    /// data, %E message expiry interval, %F payload format indicator, %P user properties
    /// (key:value ...), %R response topic, %S subscription identifier. Fields take
    /// printf-style flags, width and precision: %-20t, %05l, %.10t. @ sequences print the
    /// arrival time (UTC) as strftime does: @Y @m @d @H @M @S @s @N (nanoseconds) @F @T @z
    /// @@ and more. Escapes: \\ \" \0 \a \e \n \r \t \v.
    #[arg(short = 'F', allow_hyphen_values = true)]
    pub(crate) format: Option<String>,
    /// Pretty-print the JSON of -F %j and %J.
    #[arg(long = "pretty")]
    pub(crate) pretty: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(args: &[&str]) -> SubArgs {
        let argv = ["mqtt", "sub", "-t", "a"].iter().chain(args);
        match Cli::from_args(argv.copied()).unwrap().command {
            Command::Sub(args) => args,
            Command::Pub(_) => panic!("sub expected"),
        }
    }

    #[test]
    fn each_property_keeps_its_own_values() {
        let args = sub(&[
            "-D",
            "connect",
            "user-property",
            "k",
            "v",
            "-D",
            "subscribe",
            "subscription-identifier",
            "7",
            "-v",
            "-D",
            "connect",
            "receive-maximum",
            "5",
        ]);
        assert_eq!(
            args.conn.properties,
            vec![
                vec!["connect", "user-property", "k", "v"],
                vec!["subscribe", "subscription-identifier", "7"],
                vec!["connect", "receive-maximum", "5"],
            ]
        );
        assert!(args.verbose);
        assert!(sub(&[]).conn.properties.is_empty());
    }

    #[test]
    fn property_needs_three_values() {
        let argv = ["mqtt", "pub", "-D", "connect", "receive-maximum", "-t", "a"];
        assert!(Cli::from_args(argv).is_err());
    }

    #[test]
    fn format_may_start_with_a_dash_and_flags_parse() {
        let args = sub(&["-F", "-%t-", "--pretty", "--remove-retained", "--nodelay"]);
        assert_eq!(args.format.as_deref(), Some("-%t-"));
        assert!(args.pretty && args.remove_retained && args.conn.nodelay);
    }
}
