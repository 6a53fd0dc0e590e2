//! What an async client needs before it connects: brokers, session configuration, TLS,
//! reconnect policy and buffer sizes.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use mqtt_proto::{LastWill, MqttString, ProtocolVersion, StringError, WillProperties};

use super::backoff::Backoff;
use super::hook::{ConnectAttempt, ConnectDecision, ConnectHook};
use super::url::{BrokerUrl, UrlError};
use crate::auth::Authenticator;
use crate::config::Config;
use crate::event::ConfigError;
use crate::message::Message;
use crate::store::{SessionStore, StoreError};

/// Why client options cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// A broker URL is invalid.
    #[error("invalid broker URL {url:?}: {error}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        error: UrlError,
    },
    /// No broker URL was given.
    #[error("no broker URL")]
    NoBroker,
    /// A client identifier or user name is not a valid MQTT string.
    #[error("invalid {field}: {error}")]
    InvalidString {
        /// Which setting.
        field: &'static str,
        /// Why.
        error: StringError,
    },
    /// The will topic is not a valid topic name.
    #[error("invalid will topic: {0}")]
    InvalidWillTopic(mqtt_proto::TopicError),
    /// A certificate or key file cannot be read.
    #[error("cannot read {path}: {error}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// The TLS settings cannot be used (bad PEM, no usable root certificate ...).
    #[error("TLS settings: {0}")]
    Tls(String),
    /// The session store cannot be loaded.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A broker's scheme needs a feature this build of the client does not have.
    #[error("{scheme}:// needs the `{feature}` feature, which this build does not have")]
    FeatureDisabled {
        /// The scheme.
        scheme: &'static str,
        /// The cargo feature that brings it.
        feature: &'static str,
    },
    /// The session configuration cannot be used (e.g. keep alive below one second).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The write delay is longer than [`MAX_WRITE_DELAY`] or than a quarter of the ping
    /// timeout.
    #[error(
        "write delay of {0:?}: at most one second, and less than a quarter of the ping timeout"
    )]
    WriteDelay(Duration),
}

/// The longest [`ClientOptions::write_delay`].
pub const MAX_WRITE_DELAY: Duration = Duration::from_secs(1);

/// Bytes held back by [`ClientOptions::write_delay`] that are written at once: a write this
/// large already costs little per message.
pub const WRITE_DELAY_FLUSH: usize = 64 * 1024;

/// PEM data, or a file holding it.
#[derive(Clone, PartialEq, Eq)]
pub enum PemSource {
    /// A PEM file, read by the async client when it starts (this crate does no IO).
    File(PathBuf),
    /// PEM text.
    Pem(Bytes),
}

impl fmt::Debug for PemSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Pem(pem) => write!(f, "Pem(<{} bytes>)", pem.len()),
        }
    }
}

/// TLS settings for `mqtts://` and `wss://` brokers. Certificates and host names are
/// verified unless [`danger_accept_invalid_certs`](Self::danger_accept_invalid_certs) is set.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// Trusted CA certificates (PEM, possibly several per source).
    pub ca: Vec<PemSource>,
    /// Whether to trust the operating system's roots too; by default they are trusted only
    /// when no CA is given.
    pub system_roots: Option<bool>,
    /// Client certificate chain and private key, for brokers that ask for one.
    pub client_cert: Option<(PemSource, PemSource)>,
    /// Name to send in SNI and to verify the certificate against, instead of the URL's host.
    pub server_name: Option<String>,
    /// Accept any server certificate. Only for tests against self-signed brokers: it makes
    /// the connection open to interception.
    pub danger_accept_invalid_certs: bool,
    /// ALPN protocols to offer.
    pub alpn: Vec<Vec<u8>>,
    /// The oldest TLS version to accept; by default TLS 1.2 (and 1.3).
    pub min_version: TlsVersion,
}

/// A TLS protocol version a client can insist on. Older versions than 1.2 are not offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 or newer.
    #[default]
    V1_2,
    /// TLS 1.3 only.
    V1_3,
}

impl TlsOptions {
    /// Whether the operating system's roots are trusted under these settings.
    pub fn use_system_roots(&self) -> bool {
        self.system_roots.unwrap_or(self.ca.is_empty())
    }
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca", &self.ca)
            .field("system_roots", &self.system_roots)
            .field("client_cert", &self.client_cert.as_ref().map(|(c, _)| c))
            .field(
                "client_key",
                &self.client_cert.as_ref().map(|_| "<redacted>"),
            )
            .field("server_name", &self.server_name)
            .field(
                "danger_accept_invalid_certs",
                &self.danger_accept_invalid_certs,
            )
            .field("alpn", &self.alpn)
            .field("min_version", &self.min_version)
            .finish_non_exhaustive()
    }
}

/// Everything an async client needs: broker addresses (tried in order for failover), the
/// session [`Config`], TLS, reconnect policy, an optional session store and buffer sizes.
///
/// Setters never fail: the first invalid value is remembered and reported when the client
/// starts.
///
/// ```
/// use std::time::Duration;
/// use mqtt_session::client::ClientOptions;
/// use mqtt_session::proto::{ProtocolVersion, QoS};
/// use mqtt_session::Message;
///
/// let options = ClientOptions::new("mqtts://broker.example")
///     .broker("mqtts://backup.example:8884")
///     .client_id("sensor-17")
///     .version(ProtocolVersion::V5)
///     .credentials("alice", "secret")
///     .will(Message::new("sensors/17/status", "offline").unwrap().qos(QoS::AtLeastOnce))
///     .keep_alive(Duration::from_secs(30));
/// assert!(!format!("{options:?}").contains("secret"));
/// ```
pub struct ClientOptions {
    /// Broker addresses, tried in order.
    pub brokers: Vec<BrokerUrl>,
    /// The session configuration (CONNECT contents and limits).
    pub config: Config,
    /// TLS settings for `mqtts://` and `wss://`.
    pub tls: TlsOptions,
    /// Reconnect policy; `None` stops the client when the connection ends.
    pub reconnect: Option<Backoff>,
    /// Where the session's state is kept, so that QoS 1/2 flows survive a restart.
    pub store: Option<Box<dyn SessionStore>>,
    /// First size of the read buffer; it grows while reads fill it, up to
    /// [`max_read_buffer_size`](Self::max_read_buffer_size).
    pub read_buffer_size: usize,
    /// Largest read buffer, so one read never takes more than this from the socket.
    pub max_read_buffer_size: usize,
    /// How many publish requests may wait for the client's driver before `publish` waits and
    /// `try_publish` fails.
    pub publish_capacity: usize,
    /// How long a graceful disconnect waits for queued and in-flight messages to complete.
    pub disconnect_timeout: Duration,
    /// How long bytes may wait for the transport to take any of them before the connection
    /// is given up; `None` derives it from keep alive like the packet timeout (keep alive
    /// plus the ping timeout, or 60 s with keep alive off).
    pub write_timeout: Option<Duration>,
    /// How long a connection that is over may take to write its last bytes and close.
    pub close_timeout: Duration,
    /// The shortest time between two writes while bytes keep coming, so that more go out in
    /// each; zero (the default) writes at once. See [`write_delay`](Self::write_delay).
    pub write_delay: Duration,
    /// Called before every connection attempt; see
    /// [`before_connect`](Self::before_connect).
    pub connect_hook: Option<ConnectHook>,
    /// Whether a CONNACK refusal that does not pass by itself (bad credentials, not
    /// authorized, banned ...; see [`ConnectFailure::is_permanent`]) stops the client
    /// instead of retrying. Off by default.
    ///
    /// [`ConnectFailure::is_permanent`]: super::ConnectFailure::is_permanent
    pub stop_on_permanent_refusal: bool,
    /// Whether a 5.0 Server Reference (CONNACK or DISCONNECT with Use Another Server or
    /// Server Moved) sends the next attempt to the server it names. Off by default.
    pub follow_server_reference: bool,
    /// How long a request (5.0 request/response) waits for its response.
    pub request_timeout: Duration,
    /// The method of 5.0 enhanced authentication the session runs on every connection; see
    /// [`authenticator`](Self::authenticator).
    pub authenticator: Option<Box<dyn Authenticator>>,
    persistent: bool,
    will_delay: Option<u32>,
    error: Option<OptionsError>,
}

impl ClientOptions {
    /// Options for one broker, MQTT 3.1.1, an empty client id (the server assigns one), a
    /// clean session and reconnect with the default [`Backoff`].
    pub fn new(url: &str) -> Self {
        let config = Config::default();
        let mut options = Self {
            brokers: Vec::new(),
            config,
            tls: TlsOptions::default(),
            reconnect: Some(Backoff::default()),
            store: None,
            read_buffer_size: 64 * 1024,
            max_read_buffer_size: 1024 * 1024,
            publish_capacity: 1024,
            disconnect_timeout: Duration::from_secs(10),
            write_timeout: None,
            close_timeout: Duration::from_secs(2),
            write_delay: Duration::ZERO,
            connect_hook: None,
            stop_on_permanent_refusal: false,
            follow_server_reference: false,
            request_timeout: Duration::from_secs(30),
            authenticator: None,
            persistent: false,
            will_delay: None,
            error: None,
        };
        options = options.broker(url);
        options
    }

    fn fail(&mut self, error: OptionsError) {
        if self.error.is_none() {
            self.error = Some(error);
        }
    }

    /// Adds a fallback broker, tried when the ones before it fail.
    pub fn broker(mut self, url: &str) -> Self {
        match BrokerUrl::parse(url) {
            Ok(url) => self.brokers.push(url),
            Err(error) => self.fail(OptionsError::Url {
                url: url.to_owned(),
                error,
            }),
        }
        self
    }

    /// Sets the client identifier.
    pub fn client_id(mut self, id: &str) -> Self {
        match MqttString::new(id) {
            Ok(id) => self.config.client_id = id,
            Err(error) => self.fail(OptionsError::InvalidString {
                field: "client id",
                error,
            }),
        }
        self
    }

    /// Sets user name and password. The password never appears in logs or debug output.
    pub fn credentials(mut self, username: &str, password: impl Into<Bytes>) -> Self {
        match MqttString::new(username) {
            Ok(name) => {
                self.config.username = Some(name);
                self.config.password = Some(password.into());
            }
            Err(error) => self.fail(OptionsError::InvalidString {
                field: "user name",
                error,
            }),
        }
        self
    }

    /// Sets a user name without password.
    pub fn username(mut self, username: &str) -> Self {
        match MqttString::new(username) {
            Ok(name) => self.config.username = Some(name),
            Err(error) => self.fail(OptionsError::InvalidString {
                field: "user name",
                error,
            }),
        }
        self
    }

    /// Sets the protocol version.
    pub fn version(mut self, version: ProtocolVersion) -> Self {
        self.config.version = version;
        self
    }

    /// Sets the keep alive interval (zero turns it off).
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.config.keep_alive = keep_alive;
        self
    }

    /// Sets Clean Session (3.1.x) / Clean Start (5.0) for the first connection.
    pub fn clean_start(mut self, clean: bool) -> Self {
        self.config.clean_start = clean;
        self
    }

    /// Sets the 5.0 session expiry interval in seconds.
    pub fn session_expiry(mut self, seconds: u32) -> Self {
        self.config.properties.session_expiry_interval = Some(seconds);
        self
    }

    /// Asks for a session that outlives connections: Clean Session off (3.1.x) or, in 5.0,
    /// Clean Start off and, unless set otherwise, the longest session expiry.
    pub fn persistent_session(mut self) -> Self {
        self.config.clean_start = false;
        self.persistent = true;
        self
    }

    /// Sets the will: the message the server publishes if the connection ends without
    /// DISCONNECT. In 5.0 the message's properties go with it (payload format, message
    /// expiry, content type, response topic, correlation data, user properties); see also
    /// [`will_delay`](Self::will_delay). Before 5.0 a will with properties is refused when
    /// the client starts, as CONNECT could not carry them.
    pub fn will(mut self, message: Message) -> Self {
        let delay = self
            .config
            .will
            .as_ref()
            .and_then(|w| w.properties.will_delay_interval);
        self.config.will = Some(last_will(message, delay));
        self
    }

    /// Sets the 5.0 Will Delay Interval: how long the server waits after an unclean end
    /// before publishing the will (a client that reconnects within it cancels the will).
    /// Takes effect with a will set before or after it.
    pub fn will_delay(mut self, delay: Duration) -> Self {
        let seconds = u32::try_from(delay.as_secs()).unwrap_or(u32::MAX);
        self.will_delay = Some(seconds);
        self
    }

    /// Sets the will from a topic string; an invalid topic is reported when the client starts.
    pub fn will_message(
        mut self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: mqtt_proto::QoS,
    ) -> Self {
        match Message::new(topic, payload) {
            Ok(message) => self.will(message.qos(qos)),
            Err(error) => {
                self.fail(OptionsError::InvalidWillTopic(error));
                self
            }
        }
    }

    /// Makes the application acknowledge each QoS 1/2 message itself.
    pub fn manual_acks(mut self, manual: bool) -> Self {
        self.config.manual_acks = manual;
        self
    }

    /// Sets how many QoS 1/2 messages may be in flight at once.
    pub fn max_inflight(mut self, max: u16) -> Self {
        self.config.max_inflight = max.max(1);
        self
    }

    /// Sets how many messages may wait behind the in-flight window inside the session.
    pub fn max_queued(mut self, max: usize) -> Self {
        self.config.max_queued = max.max(1);
        self
    }

    /// Sets the largest packet accepted from the server.
    pub fn max_packet_size(mut self, max: usize) -> Self {
        self.config = self.config.max_packet_size(max);
        self
    }

    /// Sets how long to wait for the transport to connect and for CONNACK.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Replaces the whole session configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Trusts the CA certificates in this PEM file (instead of the system's roots).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca.push(PemSource::File(path.into()));
        self
    }

    /// Trusts the CA certificates in this PEM text (instead of the system's roots).
    pub fn ca_pem(mut self, pem: impl Into<Bytes>) -> Self {
        self.tls.ca.push(PemSource::Pem(pem.into()));
        self
    }

    /// Trusts the operating system's roots as well as (`true`) or instead of any CA given.
    pub fn system_roots(mut self, enabled: bool) -> Self {
        self.tls.system_roots = Some(enabled);
        self
    }

    /// Presents this client certificate chain and key (PEM files).
    pub fn client_cert_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls.client_cert = Some((PemSource::File(cert.into()), PemSource::File(key.into())));
        self
    }

    /// Presents this client certificate chain and key (PEM text).
    pub fn client_cert_pem(mut self, cert: impl Into<Bytes>, key: impl Into<Bytes>) -> Self {
        self.tls.client_cert = Some((PemSource::Pem(cert.into()), PemSource::Pem(key.into())));
        self
    }

    /// Sends this name in SNI and verifies the certificate against it.
    pub fn tls_server_name(mut self, name: &str) -> Self {
        self.tls.server_name = Some(name.to_owned());
        self
    }

    /// Accepts any server certificate: no chain or host name verification. Tests only.
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.tls.danger_accept_invalid_certs = accept;
        self
    }

    /// Offers an ALPN protocol in the TLS handshake (e.g. `"mqtt"`, or `"x-amzn-mqtt-ca"`
    /// for AWS IoT on port 443); call again to offer several, in order of preference.
    pub fn alpn(mut self, protocol: &str) -> Self {
        self.tls.alpn.push(protocol.as_bytes().to_vec());
        self
    }

    /// Refuses TLS versions older than `version` (by default TLS 1.2 and 1.3 are accepted).
    pub fn min_tls_version(mut self, version: TlsVersion) -> Self {
        self.tls.min_version = version;
        self
    }

    /// Sets the reconnect backoff.
    pub fn reconnect(mut self, backoff: Backoff) -> Self {
        self.reconnect = Some(backoff);
        self
    }

    /// Calls `hook` before every connection attempt, with the broker about to be tried, the
    /// attempt number and the last failure. Its [`ConnectDecision`] may refresh the
    /// credentials (an expiring token), change the will, skip the broker or stop the client.
    /// Commands keep working while it runs; an answer that takes longer than the connect
    /// timeout counts as a failed attempt.
    ///
    /// ```
    /// use mqtt_session::client::{ClientOptions, ConnectDecision};
    /// # fn fetch_token() -> String { "token".into() }
    /// let options = ClientOptions::new("mqtts://broker.example").before_connect(|attempt| async move {
    ///     if attempt.last_failure.as_ref().is_some_and(|f| f.is_permanent()) && attempt.attempt > 5 {
    ///         return ConnectDecision::stop();
    ///     }
    ///     ConnectDecision::proceed().credentials("device-17", fetch_token())
    /// });
    /// ```
    pub fn before_connect<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(ConnectAttempt) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ConnectDecision> + Send + 'static,
    {
        self.connect_hook = Some(ConnectHook::new(hook));
        self
    }

    /// Stops the client when the broker refuses the connection for a reason that does not
    /// pass by itself (bad credentials, not authorized, banned ...), instead of retrying.
    pub fn stop_on_permanent_refusal(mut self, stop: bool) -> Self {
        self.stop_on_permanent_refusal = stop;
        self
    }

    /// Follows a 5.0 Server Reference: when the broker answers Use Another Server or Server
    /// Moved with a reference, the next attempt goes to the server it names (`host[:port]`,
    /// with the current broker's scheme and TLS settings). At most 4 in a row are followed
    /// without a connection that stays up.
    pub fn follow_server_reference(mut self, follow: bool) -> Self {
        self.follow_server_reference = follow;
        self
    }

    /// Sets how long a request (5.0 request/response) waits for its response (30 s by
    /// default); then it fails with `Error::RequestTimeout`.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Runs 5.0 enhanced authentication with `authenticator` on every connection: CONNECT
    /// carries its method and first data, and the client answers the broker's challenges by
    /// itself (see [`Authenticator`]); the client's `reauthenticate` re-authenticates. Only
    /// for 5.0: refused when the client starts with another version.
    pub fn authenticator(mut self, authenticator: impl Authenticator + 'static) -> Self {
        self.authenticator = Some(Box::new(authenticator));
        self
    }

    /// Turns reconnecting off: the client stops when the connection ends.
    pub fn no_reconnect(mut self) -> Self {
        self.reconnect = None;
        self
    }

    /// Keeps the session's state in `store` (e.g. a `FileStore`), so a restarted process
    /// resumes its QoS 1/2 flows. Use with a persistent session.
    pub fn store(mut self, store: impl SessionStore + 'static) -> Self {
        self.store = Some(Box::new(store));
        self
    }

    /// Sets the first and the largest size of the read buffer.
    pub fn read_buffer_size(mut self, initial: usize, max: usize) -> Self {
        self.read_buffer_size = initial.max(512);
        self.max_read_buffer_size = max.max(self.read_buffer_size);
        self
    }

    /// Sets how many publish requests may wait for the driver.
    pub fn publish_capacity(mut self, capacity: usize) -> Self {
        self.publish_capacity = capacity.max(1);
        self
    }

    /// Sets how long a graceful disconnect waits for outstanding messages.
    pub fn disconnect_timeout(mut self, timeout: Duration) -> Self {
        self.disconnect_timeout = timeout;
        self
    }

    /// Sets how long bytes may wait for the transport before the connection is given up.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = Some(timeout);
        self
    }

    /// Sets how long a connection that is over may take to write its last bytes and close.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Lets the client write at most once per `delay`: bytes that become ready within `delay`
    /// of the last write are held until `delay` has passed since it, so that what is
    /// published and acknowledged meanwhile leaves in the same write, as TCP's Nagle
    /// algorithm or Kafka's `linger.ms` do. A busy connection makes fewer system calls, TCP
    /// segments and store commits per message, for up to `delay` more latency on each; the
    /// first bytes after a quiet spell leave at once. Held bytes also go at once when
    /// [`WRITE_DELAY_FLUSH`] or more wait, when the connection is closing, and while the
    /// broker has not accepted the connection. Zero (the default) writes at once; at most
    /// [`MAX_WRITE_DELAY`], and less than a quarter of the ping timeout, so that a held
    /// PINGREQ is still answered in time.
    pub fn write_delay(mut self, delay: Duration) -> Self {
        self.write_delay = delay;
        self
    }

    /// Sets how long a packet may take to arrive once its first byte has.
    pub fn packet_timeout(mut self, timeout: Duration) -> Self {
        self.config.packet_timeout = Some(timeout);
        self
    }

    /// Bounds the queue of received messages the application has not taken yet, by count
    /// and by bytes (defaults: 1,000 messages, 16 MiB). When it is full the client stops
    /// reading from the broker until the application takes messages.
    pub fn inbound_queue(mut self, messages: usize, bytes: usize) -> Self {
        self.config = self.config.max_inbound(messages, bytes);
        self
    }

    /// The first invalid setting, if any.
    pub fn error(&self) -> Option<&OptionsError> {
        self.error.as_ref()
    }

    /// Checks the options: reports the first invalid setting, or a missing broker.
    pub fn validate(&mut self) -> Result<(), OptionsError> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        if self.brokers.is_empty() {
            return Err(OptionsError::NoBroker);
        }
        if let (Some(delay), Some(will)) = (self.will_delay, self.config.will.as_mut()) {
            will.properties.will_delay_interval = Some(delay);
        }
        self.config.validate()?;
        let delay = self.write_delay;
        if !delay.is_zero() && (delay > MAX_WRITE_DELAY || delay * 4 >= self.config.ping_timeout) {
            return Err(OptionsError::WriteDelay(delay));
        }
        if let Some(authenticator) = &self.authenticator {
            if !self.config.version.is_v5() {
                return Err(ConfigError::EnhancedAuthNeedsV5.into());
            }
            MqttString::new(authenticator.method()).map_err(ConfigError::InvalidAuthMethod)?;
        }
        let expiry = &mut self.config.properties.session_expiry_interval;
        if self.persistent && self.config.version.is_v5() && expiry.is_none() {
            *expiry = Some(u32::MAX);
        }
        Ok(())
    }
}

/// A will from a message: its 5.0 properties go with it, and `delay` as the Will Delay
/// Interval.
pub(crate) fn last_will(message: Message, delay: Option<u32>) -> LastWill {
    let p = message.properties.into_inner();
    LastWill {
        topic: message.topic,
        payload: message.payload,
        qos: message.qos,
        retain: message.retain,
        properties: WillProperties {
            will_delay_interval: delay,
            payload_format_indicator: p.payload_format_indicator,
            message_expiry_interval: p.message_expiry_interval,
            content_type: p.content_type,
            response_topic: p.response_topic,
            correlation_data: p.correlation_data,
            user_properties: p.user_properties,
        }
        .into(),
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Config`'s and `TlsOptions`' Debug redact the password and the private key.
        f.debug_struct("ClientOptions")
            .field("brokers", &self.brokers)
            .field("config", &self.config)
            .field("tls", &self.tls)
            .field("reconnect", &self.reconnect)
            .field("store", &self.store.as_ref().map(|_| "<store>"))
            .field("read_buffer_size", &self.read_buffer_size)
            .field("max_read_buffer_size", &self.max_read_buffer_size)
            .field("publish_capacity", &self.publish_capacity)
            .field("disconnect_timeout", &self.disconnect_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("write_delay", &self.write_delay)
            .field("close_timeout", &self.close_timeout)
            .field("connect_hook", &self.connect_hook)
            .field("stop_on_permanent_refusal", &self.stop_on_permanent_refusal)
            .field("follow_server_reference", &self.follow_server_reference)
            .field("request_timeout", &self.request_timeout)
            .field(
                "authenticator",
                &self.authenticator.as_ref().map(|a| a.method()),
            )
            .field("persistent", &self.persistent)
            .field("will_delay", &self.will_delay)
            .field("error", &self.error)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let options = ClientOptions::new("mqtts://h")
            .credentials("alice", "hunter2")
            .client_cert_pem("-----BEGIN CERTIFICATE-----", "topsecretkey");
        let shown = format!("{options:?}");
        assert!(shown.contains("alice"));
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("topsecretkey"));
    }

    #[test]
    fn first_error_is_reported() {
        let mut options = ClientOptions::new("http://h").client_id("a\0b");
        assert!(matches!(options.validate(), Err(OptionsError::Url { .. })));
        assert!(matches!(options.validate(), Err(OptionsError::NoBroker)));
        let mut options = ClientOptions::new("mqtt://h").client_id("a\0b");
        assert!(matches!(
            options.validate(),
            Err(OptionsError::InvalidString {
                field: "client id",
                ..
            })
        ));
        let mut options =
            ClientOptions::new("mqtt://h").will_message("a/+", "x", mqtt_proto::QoS::AtMostOnce);
        assert!(matches!(
            options.validate(),
            Err(OptionsError::InvalidWillTopic(_))
        ));
    }

    #[test]
    fn keep_alive_below_a_second_is_refused() {
        let mut options = ClientOptions::new("mqtt://h").keep_alive(Duration::from_millis(500));
        assert!(matches!(
            options.validate(),
            Err(OptionsError::Config(ConfigError::KeepAliveOutOfRange(_)))
        ));
    }

    #[test]
    fn a_write_delay_is_bounded_by_a_second_and_the_ping_timeout() {
        let ok = |delay, ping| {
            let mut options = ClientOptions::new("mqtt://h").write_delay(delay);
            options.config.ping_timeout = ping;
            options
                .validate()
                .map_err(|e| assert!(matches!(e, OptionsError::WriteDelay(d) if d == delay)))
                .is_ok()
        };
        let ms = Duration::from_millis;
        assert!(ok(Duration::ZERO, ms(1000)));
        assert!(ok(ms(5), ms(10_000)));
        assert!(ok(MAX_WRITE_DELAY, ms(10_000)));
        assert!(!ok(MAX_WRITE_DELAY + ms(1), ms(60_000)), "over a second");
        assert!(!ok(ms(250), ms(1000)), "a quarter of the ping timeout");
        assert!(ok(ms(249), ms(1000)));
    }

    #[test]
    fn enhanced_authentication_is_refused_before_5_0() {
        struct Toy;
        impl Authenticator for Toy {
            fn method(&self) -> &str {
                "TOY"
            }
            fn start(&mut self) -> Result<Option<Bytes>, crate::AuthFailure> {
                Ok(None)
            }
            fn challenge(&mut self, _: Option<&[u8]>) -> Result<Option<Bytes>, crate::AuthFailure> {
                Ok(None)
            }
        }
        for version in [ProtocolVersion::V3_1, ProtocolVersion::V3_1_1] {
            let mut options = ClientOptions::new("mqtt://h")
                .version(version)
                .authenticator(Toy);
            assert!(matches!(
                options.validate(),
                Err(OptionsError::Config(ConfigError::EnhancedAuthNeedsV5))
            ));
        }
        let mut options = ClientOptions::new("mqtt://h")
            .version(ProtocolVersion::V5)
            .authenticator(Toy);
        options.validate().unwrap();
        assert!(format!("{options:?}").contains("Some(\"TOY\")"));
    }

    #[test]
    fn persistent_session_per_version() {
        let mut options = ClientOptions::new("mqtt://h")
            .persistent_session()
            .version(ProtocolVersion::V5);
        options.validate().unwrap();
        assert!(!options.config.clean_start);
        assert_eq!(
            options.config.properties.session_expiry_interval,
            Some(u32::MAX)
        );
        let mut options = ClientOptions::new("mqtt://h")
            .session_expiry(60)
            .persistent_session()
            .version(ProtocolVersion::V5);
        options.validate().unwrap();
        assert_eq!(options.config.properties.session_expiry_interval, Some(60));
        let mut options = ClientOptions::new("mqtt://h").persistent_session();
        options.validate().unwrap();
        assert_eq!(options.config.properties.session_expiry_interval, None);
        assert!(options.config.session_outlives_connection());
    }
}
