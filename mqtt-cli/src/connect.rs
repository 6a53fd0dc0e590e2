//! Turning connection flags into client options, and waiting for the broker's answer.

use std::time::Duration;

use mqtt_tokio::proto::{ConnectProperties, ConnectReasonCode, LastWill, TopicName};
use mqtt_tokio::{
    Client, ClientOptions, ConnectionError, Event, Events, ProtocolVersion, QoS, TlsVersion,
};

use crate::args::{ConnArgs, Version};
use crate::packet_log::PacketLog;
use crate::props::Properties;
use crate::reason;
use crate::CliError;

/// What `-L` carries besides the broker: credentials and a topic.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct UrlParts {
    /// `scheme://host:port` (or the whole URL for WebSocket).
    pub(crate) broker: String,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) topic: Option<String>,
}

/// Splits `mqtt(s)://[user[:password]@]host[:port]/topic` as mosquitto reads `-L`.
pub(crate) fn split_url(url: &str) -> Result<UrlParts, CliError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| CliError::Usage(format!("invalid URL '{url}': expected scheme://host")))?;
    if scheme.starts_with("ws") {
        // A WebSocket URL's path names the endpoint, not a topic.
        return Ok(UrlParts {
            broker: url.to_string(),
            ..UrlParts::default()
        });
    }
    let (authority, topic) = match rest.split_once('/') {
        Some((a, t)) => (a, (!t.is_empty()).then(|| t.to_string())),
        None => (rest, None),
    };
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((name, pw)) => (Some(name.to_string()), Some(pw.to_string())),
            None => (Some(u.to_string()), None),
        },
        None => (None, None),
    };
    Ok(UrlParts {
        broker: format!("{scheme}://{host}"),
        username,
        password,
        topic,
    })
}

/// The broker URL from `--unix`, or `-h`/`-p` and the TLS flags.
fn host_url(conn: &ConnArgs) -> String {
    if let Some(path) = &conn.unix {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        return format!("unix://{}", path.display());
    }
    let tls =
        conn.cafile.is_some() || conn.capath.is_some() || conn.insecure || conn.tls_use_os_certs;
    let scheme = if tls { "mqtts" } else { "mqtt" };
    let port = conn.port.unwrap_or(if tls { 8883 } else { 1883 });
    let host = if conn.host.contains(':') && !conn.host.starts_with('[') {
        format!("[{}]", conn.host)
    } else {
        conn.host.clone()
    };
    format!("{scheme}://{host}:{port}")
}

fn qos(value: u8) -> QoS {
    QoS::from_u8(value).unwrap_or_default()
}

/// The protocol version: `-V`, else 5.0 when there are `-D` properties (as mosquitto), else
/// 3.1.1. Properties with another `-V` are an error.
pub(crate) fn version(conn: &ConnArgs, props: &Properties) -> Result<ProtocolVersion, CliError> {
    match (conn.version, props.is_empty()) {
        (Some(Version::V5), _) | (None, false) => Ok(ProtocolVersion::V5),
        (None, true) | (Some(Version::V311), true) => Ok(ProtocolVersion::V3_1_1),
        (Some(Version::V31), true) => Ok(ProtocolVersion::V3_1),
        (Some(other), false) => Err(CliError::Usage(format!(
            "-D properties need MQTT 5.0, but -V {} was given (use -V mqttv5)",
            match other {
                Version::V31 => "mqttv31",
                _ => "mqttv311",
            }
        ))),
    }
}

/// Client options from the flags and the `-D` properties; `default_prefix` and the process
/// id name the client when `-i`/`-I` do not.
pub(crate) fn options(
    conn: &ConnArgs,
    url: Option<&UrlParts>,
    props: &Properties,
    default_prefix: &str,
) -> Result<ClientOptions, CliError> {
    let broker = url.map_or_else(|| host_url(conn), |u| u.broker.clone());
    let prefix = conn.id_prefix.as_deref().unwrap_or(default_prefix);
    let client_id = match &conn.id {
        Some(id) => id.clone(),
        None => format!("{prefix}{}", std::process::id()),
    };
    let version = version(conn, props)?;
    let keep_alive = Duration::from_secs(u64::from(conn.keepalive));
    let mut options = ClientOptions::new(&broker)
        .client_id(&client_id)
        .version(version)
        .keep_alive(keep_alive)
        .no_reconnect()
        .clean_start(!conn.no_clean)
        // A broker that stays silent cannot hold the command longer than its keep alive.
        .connect_timeout(if keep_alive.is_zero() {
            Duration::from_secs(30)
        } else {
            keep_alive
        });
    if let Some(expiry) = conn.session_expiry {
        if props.connect.session_expiry_interval.is_some() {
            return Err(CliError::Usage(
                "give the session expiry with -x or with -D connect session-expiry-interval, \
                 not both"
                    .to_string(),
            ));
        }
        options = options.session_expiry(expiry);
    }
    options = with_connect_properties(options, &props.connect);
    let username = conn
        .username
        .clone()
        .or_else(|| url.and_then(|u| u.username.clone()));
    let password = conn
        .password
        .clone()
        .or_else(|| url.and_then(|u| u.password.clone()));
    match (username, password) {
        (Some(user), Some(pw)) => options = options.credentials(&user, pw.into_bytes()),
        (Some(user), None) => options = options.username(&user),
        (None, Some(_)) => {
            return Err(CliError::Usage(
                "a password needs a user name (-u)".to_string(),
            ))
        }
        (None, None) => {}
    }
    if let Some(topic) = &conn.will_topic {
        let topic = TopicName::new(topic)
            .map_err(|e| CliError::Usage(format!("invalid will topic: {e}")))?;
        let payload = conn.will_payload.clone().unwrap_or_default();
        let mut config = options.config.clone();
        config.will = Some(LastWill {
            topic,
            payload: payload.into_bytes().into(),
            qos: qos(conn.will_qos),
            retain: conn.will_retain,
            properties: props.will.clone().into(),
        });
        options = options.config(config);
    } else if conn.will_payload.is_some() {
        return Err(CliError::Usage(
            "--will-payload needs --will-topic".to_string(),
        ));
    } else if !props.will.is_empty() {
        return Err(CliError::Usage(
            "-D will properties need --will-topic".to_string(),
        ));
    }
    if let Some(ca) = &conn.cafile {
        options = options.ca_file(ca);
    }
    if let Some(dir) = &conn.capath {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| CliError::Usage(format!("cannot read --capath {}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let is_cert = path.extension().is_some_and(|e| e == "pem" || e == "crt");
            if is_cert {
                options = options.ca_file(path);
            }
        }
    }
    match (&conn.cert, &conn.key) {
        (Some(cert), Some(key)) => options = options.client_cert_files(cert, key),
        (None, None) => {}
        _ => return Err(CliError::Usage("--cert and --key go together".to_string())),
    }
    if conn.insecure {
        options = options.danger_accept_invalid_certs(true);
    }
    if conn.tls_use_os_certs {
        options = options.system_roots(true);
    }
    if let Some(version) = &conn.tls_version {
        options = options.min_tls_version(tls_version(version)?);
    }
    if let Some(protocol) = &conn.tls_alpn {
        options = options.alpn(protocol);
    }
    Ok(options)
}

/// The `--tls-version` value as the oldest version to accept.
fn tls_version(value: &str) -> Result<TlsVersion, CliError> {
    match value {
        "tlsv1.3" => Ok(TlsVersion::V1_3),
        "tlsv1.2" => Ok(TlsVersion::V1_2),
        "tlsv1.1" | "tlsv1" => Err(CliError::Usage(format!(
            "--tls-version {value}: only TLS 1.2 and 1.3 are supported"
        ))),
        other => Err(CliError::Usage(format!(
            "--tls-version {other}: expected tlsv1.3 or tlsv1.2"
        ))),
    }
}

/// Adds the `-D connect` properties; a maximum packet size is also enforced on what arrives.
fn with_connect_properties(options: ClientOptions, props: &ConnectProperties) -> ClientOptions {
    let options = match props.maximum_packet_size {
        Some(max) => options.max_packet_size(usize::try_from(max.get()).unwrap_or(usize::MAX)),
        None => options,
    };
    let mut config = options.config.clone();
    let c = &mut config.properties;
    c.session_expiry_interval = props.session_expiry_interval.or(c.session_expiry_interval);
    c.receive_maximum = props.receive_maximum.or(c.receive_maximum);
    c.maximum_packet_size = props.maximum_packet_size.or(c.maximum_packet_size);
    c.topic_alias_maximum = props.topic_alias_maximum.or(c.topic_alias_maximum);
    c.request_problem_information = props
        .request_problem_information
        .or(c.request_problem_information);
    c.request_response_information = props
        .request_response_information
        .or(c.request_response_information);
    c.user_properties
        .extend(props.user_properties.iter().cloned());
    options.config(config)
}

/// Connects and waits for the broker's CONNACK; a refusal or a failed connection is an error.
pub(crate) async fn connect(
    options: ClientOptions,
    log: &PacketLog,
) -> Result<(Client, Events), CliError> {
    let version = options.config.version;
    let (client, mut events) =
        Client::connect(options).map_err(|e| CliError::Connect(e.to_string()))?;
    log.connect();
    let mut failure = None;
    while let Some(event) = events.recv().await {
        match event {
            Event::Connected { .. } => {
                log.connack(0);
                return Ok((client, events));
            }
            Event::Disconnected { reason } => {
                let error = connect_failure(&reason, version);
                if let CliError::Refused { code, .. } = error {
                    log.connack(code);
                }
                failure = Some(error);
            }
            Event::Error(e) => failure = failure.or(Some(CliError::Connect(e.to_string()))),
            Event::Closed => break,
            _ => {}
        }
    }
    Err(failure.unwrap_or_else(|| CliError::Connect("connection closed".to_string())))
}

/// Why the connection did not come up: a refusal is [`CliError::Refused`] with mosquitto's
/// words and code.
fn connect_failure(reason: &ConnectionError, version: ProtocolVersion) -> CliError {
    match reason {
        // A broker that knows only 3.1.1 answers a 5.0 CONNECT with its return code 1: the
        // session reports it as Unsupported Protocol Version, as libmosquitto does.
        ConnectionError::Refused { reason, .. } => refused(*reason, version),
        other => CliError::Connect(other.to_string()),
    }
}

/// A refusal as mosquitto's clients report it: the 3.1.1 return code or the 5.0 reason code
/// is the exit code, worded as libmosquitto words it.
fn refused(reason: ConnectReasonCode, version: ProtocolVersion) -> CliError {
    if !version.is_v5() {
        let code = reason.to_v3_return_code().unwrap_or(reason.as_u8());
        return CliError::Refused {
            code,
            message: reason::connack_string(code).to_string(),
        };
    }
    let code = reason.as_u8();
    let mut message = reason::reason_string(code).to_string();
    if reason == ConnectReasonCode::UnsupportedProtocolVersion {
        message.push_str(". Try connecting to an MQTT v5 broker, or use MQTT v3.x mode.");
    }
    CliError::Refused { code, message }
}

/// One clear line for how an established connection ended.
pub(crate) fn connection_error(reason: &ConnectionError) -> CliError {
    CliError::Connect(reason.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use crate::props::Tool;

    fn conn(args: &[&str]) -> (ConnArgs, Properties) {
        let argv = ["mqtt", "pub"].iter().chain(args);
        let Command::Pub(args) = Cli::from_args(argv.copied()).unwrap().command else {
            panic!("pub expected");
        };
        let props = Properties::parse(&args.conn.properties, Tool::Pub).unwrap();
        (args.conn, props)
    }

    #[test]
    fn properties_imply_v5_and_conflict_with_other_versions() {
        let property = ["-D", "publish", "content-type", "x"];
        let (c, p) = conn(&[]);
        assert_eq!(version(&c, &p).unwrap(), ProtocolVersion::V3_1_1);
        let (c, p) = conn(&["-V", "31"]);
        assert_eq!(version(&c, &p).unwrap(), ProtocolVersion::V3_1);
        let (c, p) = conn(&property);
        assert_eq!(version(&c, &p).unwrap(), ProtocolVersion::V5);
        let (c, p) = conn(&[&property[..], &["-V", "mqttv5"]].concat());
        assert_eq!(version(&c, &p).unwrap(), ProtocolVersion::V5);
        for other in ["mqttv311", "31"] {
            let (c, p) = conn(&[&property[..], &["-V", other]].concat());
            let Err(CliError::Usage(message)) = version(&c, &p) else {
                panic!("-V {other} with -D must fail");
            };
            assert!(message.contains("need MQTT 5.0"), "{message}");
        }
    }

    #[test]
    fn connect_and_will_properties_reach_the_options() {
        let (c, p) = conn(&[
            "-D",
            "connect",
            "maximum-packet-size",
            "4096",
            "-D",
            "connect",
            "receive-maximum",
            "3",
            "-D",
            "connect",
            "user-property",
            "k",
            "v",
            "-D",
            "will",
            "content-type",
            "text/plain",
            "--will-topic",
            "w",
        ]);
        let options = options(&c, None, &p, "t").unwrap();
        let config = &options.config;
        assert_eq!(config.version, ProtocolVersion::V5);
        assert_eq!(config.max_packet_size, 4096, "enforced on what arrives");
        let props = &config.properties;
        assert_eq!(props.maximum_packet_size.map(|m| m.get()), Some(4096));
        assert_eq!(props.receive_maximum.map(|m| m.get()), Some(3));
        assert_eq!(props.user_properties.len(), 1);
        let will = config.will.as_ref().unwrap();
        assert_eq!(will.properties.content_type.as_ref().unwrap(), "text/plain");

        let (c, p) = conn(&["-D", "will", "content-type", "x"]);
        assert!(matches!(options_error(&c, &p), CliError::Usage(m) if m.contains("--will-topic")));
        let (c, p) = conn(&["-x", "5", "-D", "connect", "session-expiry-interval", "6"]);
        assert!(matches!(options_error(&c, &p), CliError::Usage(m) if m.contains("not both")));
    }

    fn options_error(c: &ConnArgs, p: &Properties) -> CliError {
        match options(c, None, p, "t") {
            Err(e) => e,
            Ok(_) => panic!("options should fail"),
        }
    }

    #[test]
    fn url_with_credentials_and_topic() {
        let parts = split_url("mqtts://alice:s3cret@example.com:8884/a/b").unwrap();
        assert_eq!(
            parts,
            UrlParts {
                broker: "mqtts://example.com:8884".into(),
                username: Some("alice".into()),
                password: Some("s3cret".into()),
                topic: Some("a/b".into()),
            }
        );
        let bare = split_url("mqtt://[::1]").unwrap();
        assert_eq!(bare.broker, "mqtt://[::1]");
        assert_eq!(bare.topic, None);
        assert!(split_url("localhost").is_err());
        assert_eq!(
            split_url("ws://h:9001/mqtt").unwrap().broker,
            "ws://h:9001/mqtt"
        );
    }
}
