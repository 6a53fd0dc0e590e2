//! Session configuration: what goes into CONNECT and the limits the session keeps.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use mqtt_proto::{
    Connect, ConnectProperties, LastWill, MqttString, Packet, ProtocolVersion, MAX_PACKET_SIZE,
};

use crate::event::ConfigError;

/// Everything a [`Session`](crate::Session) needs to know before it connects.
///
/// ```
/// use std::time::Duration;
/// use mqtt_session::Config;
/// use mqtt_proto::ProtocolVersion;
/// let config = Config::new("sensor-17")
///     .unwrap()
///     .version(ProtocolVersion::V5)
///     .keep_alive(Duration::from_secs(30))
///     .credentials("user", b"secret".to_vec())
///     .unwrap();
/// assert_eq!(config.keep_alive_secs(), 30);
/// ```
#[derive(Clone)]
pub struct Config {
    /// Protocol version to speak.
    pub version: ProtocolVersion,
    /// Client identifier; empty asks the server to assign one (needs a clean session before 5.0).
    pub client_id: MqttString,
    /// Clean Session (3.1.x) / Clean Start (5.0) for the first connection. Later connections of
    /// the same session resume it when the session outlives the connection (3.1.x: clean session
    /// off; 5.0: a session expiry interval above zero).
    pub clean_start: bool,
    /// Keep alive interval; zero turns keep alive off. Whole seconds, at most 65,535.
    pub keep_alive: Duration,
    /// How long to wait for any packet after a PINGREQ before declaring the connection lost.
    pub ping_timeout: Duration,
    /// How long to wait for CONNACK after CONNECT.
    pub connect_timeout: Duration,
    /// User name.
    pub username: Option<MqttString>,
    /// Password.
    pub password: Option<Bytes>,
    /// Will message.
    pub will: Option<LastWill>,
    /// 5.0 CONNECT properties (session expiry, receive maximum, maximum packet size, topic
    /// alias maximum, request response/problem information, user properties, authentication).
    pub properties: ConnectProperties,
    /// Most QoS 1/2 messages in flight at once; the server's Receive Maximum lowers it. The
    /// default, 20, is mosquitto's default limit on a client's unreleased QoS 2 messages,
    /// which a 3.1.1 server cannot announce and enforces by closing the connection.
    pub max_inflight: u16,
    /// Most messages waiting behind the in-flight window; `publish` fails past it. When the
    /// server has lost the session, unacknowledged in-flight messages go back to the queue
    /// ahead of it, so the queue may briefly hold up to `max_queued + max_inflight`.
    pub max_queued: usize,
    /// Largest packet accepted from the server, fixed header included. In 5.0 it is announced
    /// in CONNECT unless `properties.maximum_packet_size` is set.
    pub max_packet_size: usize,
    /// Whether the application acknowledges each QoS 1/2 message itself.
    pub manual_acks: bool,
    /// Whether to assign topic aliases to outgoing messages when the server allows them (5.0).
    pub outgoing_topic_aliases: bool,
    /// Most messages received and not yet taken by the application. At this bound the
    /// session stops decoding and [`Session::wants_read`](crate::Session::wants_read) tells
    /// the driver to stop reading, so TCP pushes back on the server. In 5.0 it is announced as
    /// the Receive Maximum (unless `properties.receive_maximum` is set). At least 1.
    pub max_inbound_messages: usize,
    /// Most bytes (PUBLISH packet sizes) received and not yet taken by the application; one
    /// message larger than this is still taken when the queue is empty.
    pub max_inbound_bytes: usize,
    /// When a received message counts as taken by the application.
    pub delivery: Delivery,
    /// How long a packet may take to arrive once its first byte has; `None` derives it from
    /// keep alive: keep alive plus the ping timeout, or 60 s with keep alive off.
    pub packet_timeout: Option<Duration>,
    /// Whether a 5.0 server that sends more unacknowledged QoS 1/2 messages than the Receive
    /// Maximum announced to it is disconnected with 0x93, as the spec prescribes. Off by
    /// default: mosquitto 2.0 tops its window up on every acknowledgement
    /// (eclipse-mosquitto/mosquitto#2301), and closing would cost a clean session its
    /// messages; the excess is counted instead
    /// ([`Session::receive_maximum_excess`](crate::Session::receive_maximum_excess)) and the
    /// inbound queue's bounds still hold.
    pub strict_receive_maximum: bool,
    /// Whether a connection that starts without a session present subscribes again to every
    /// subscription the server had granted, before anything else (reported as
    /// [`Event::Resubscribed`](crate::Event::Resubscribed)). On by default.
    pub resubscribe: bool,
}

/// When a received message counts as taken by the application: it leaves the inbound queue
/// and, unless acknowledgements are manual, its PUBACK (QoS 1) or PUBREC (QoS 2) goes out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// When [`poll_event`](crate::Session::poll_event) returns it: for a driver that hands
    /// events straight to the application.
    #[default]
    OnPoll,
    /// When the driver reports it with [`handle_taken`](crate::Session::handle_taken): for a
    /// driver that queues events for the application, like the async client. Every message
    /// event then carries a token.
    Reported,
}

impl Default for Config {
    /// MQTT 3.1.1 with an empty client id (the server assigns one), a clean session and keep
    /// alive 60 s.
    fn default() -> Self {
        Self {
            version: ProtocolVersion::V3_1_1,
            client_id: MqttString::default(),
            clean_start: true,
            keep_alive: Duration::from_secs(60),
            ping_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(30),
            username: None,
            password: None,
            will: None,
            properties: ConnectProperties::default(),
            max_inflight: 20,
            max_queued: 10_000,
            max_packet_size: MAX_PACKET_SIZE,
            manual_acks: false,
            outgoing_topic_aliases: true,
            max_inbound_messages: 1000,
            max_inbound_bytes: 16 * 1024 * 1024,
            delivery: Delivery::OnPoll,
            packet_timeout: None,
            strict_receive_maximum: false,
            resubscribe: true,
        }
    }
}

impl Config {
    /// A configuration for MQTT 3.1.1 with the given client identifier, a clean session,
    /// keep alive 60 s, and the spec's largest packets.
    pub fn new(client_id: &str) -> Result<Self, mqtt_proto::StringError> {
        Ok(Self {
            client_id: MqttString::new(client_id)?,
            ..Self::default()
        })
    }

    /// Sets the protocol version.
    pub fn version(mut self, version: ProtocolVersion) -> Self {
        self.version = version;
        self
    }

    /// Sets the keep alive interval.
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// Sets Clean Session / Clean Start for the first connection.
    pub fn clean_start(mut self, clean: bool) -> Self {
        self.clean_start = clean;
        self
    }

    /// Sets user name and password; fails if the user name is not a valid MQTT string.
    pub fn credentials(
        mut self,
        username: &str,
        password: impl Into<Bytes>,
    ) -> Result<Self, mqtt_proto::StringError> {
        self.username = Some(MqttString::new(username)?);
        self.password = Some(password.into());
        Ok(self)
    }

    /// Sets the will message.
    pub fn will(mut self, will: LastWill) -> Self {
        self.will = Some(will);
        self
    }

    /// Sets the 5.0 session expiry interval in seconds.
    pub fn session_expiry(mut self, seconds: u32) -> Self {
        self.properties.session_expiry_interval = Some(seconds);
        self
    }

    /// Makes the application acknowledge each QoS 1/2 message with `Session::ack`.
    pub fn manual_acks(mut self, manual: bool) -> Self {
        self.manual_acks = manual;
        self
    }

    /// Sets the in-flight window.
    pub fn max_inflight(mut self, max: u16) -> Self {
        self.max_inflight = max.max(1);
        self
    }

    /// Sets the queue bound.
    pub fn max_queued(mut self, max: usize) -> Self {
        self.max_queued = max;
        self
    }

    /// Sets the largest packet accepted from the server.
    pub fn max_packet_size(mut self, max: usize) -> Self {
        self.max_packet_size = max.min(MAX_PACKET_SIZE);
        self
    }

    /// Sets the bounds of the inbound queue: messages received and not yet taken.
    pub fn max_inbound(mut self, messages: usize, bytes: usize) -> Self {
        self.max_inbound_messages = messages.max(1);
        self.max_inbound_bytes = bytes.max(1);
        self
    }

    /// Sets how long a packet may take to arrive once its first byte has.
    pub fn packet_timeout(mut self, timeout: Duration) -> Self {
        self.packet_timeout = Some(timeout);
        self
    }

    /// The keep alive in whole seconds as sent in CONNECT: a fraction of a second is rounded
    /// up, so the server never expects packets sooner than configured.
    pub fn keep_alive_secs(&self) -> u16 {
        let mut secs = self.keep_alive.as_secs();
        if self.keep_alive.subsec_nanos() > 0 {
            secs += 1;
        }
        u16::try_from(secs).unwrap_or(u16::MAX)
    }

    /// The keep alive the session runs with: what CONNECT carries, or none.
    pub(crate) fn keep_alive_interval(&self) -> Option<Duration> {
        let secs = self.keep_alive_secs();
        (secs > 0).then(|| Duration::from_secs(u64::from(secs)))
    }

    /// How long a packet may take to arrive once its first byte has.
    pub fn effective_packet_timeout(&self) -> Duration {
        self.packet_timeout.unwrap_or_else(|| {
            self.keep_alive_interval()
                .map_or(Duration::from_secs(60), |ka| ka + self.ping_timeout)
        })
    }

    /// Checks what can be checked without a connection: keep alive is zero (off) or between
    /// 1 and 65,535 seconds (CONNECT carries whole seconds in 16 bits), and CONNECT can be
    /// encoded in this version (e.g. no 5.0 properties, on the will or the session, before
    /// 5.0; no password without a user name in 3.1.1).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ka = self.keep_alive;
        if !ka.is_zero() && (ka < Duration::from_secs(1) || ka > Duration::from_secs(65_535)) {
            return Err(ConfigError::KeepAliveOutOfRange(ka));
        }
        let connect = Connect {
            protocol: self.version,
            clean_start: self.clean_start,
            keep_alive: self.keep_alive_secs(),
            client_id: self.client_id.clone(),
            will: self.will.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            properties: self.properties.clone().into(),
        };
        Packet::from(connect)
            .encoded_len(self.version)
            .map_err(ConfigError::Encode)?;
        Ok(())
    }

    /// Whether the server keeps the session after the connection closes, so that the next
    /// connection resumes it.
    pub fn session_outlives_connection(&self) -> bool {
        if self.version.is_v5() {
            self.properties.session_expiry_interval.unwrap_or(0) > 0
        } else {
            !self.clean_start
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password and authentication data never appear in debug output.
        f.debug_struct("Config")
            .field("version", &self.version)
            .field("client_id", &self.client_id)
            .field("clean_start", &self.clean_start)
            .field("keep_alive", &self.keep_alive)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("will", &self.will.as_ref().map(|w| &w.topic))
            .field("max_inflight", &self.max_inflight)
            .field("max_queued", &self.max_queued)
            .field("max_packet_size", &self.max_packet_size)
            .field("manual_acks", &self.manual_acks)
            .field("max_inbound_messages", &self.max_inbound_messages)
            .field("max_inbound_bytes", &self.max_inbound_bytes)
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_below_one_second_is_refused_and_fractions_round_up() {
        let config = |ms| Config::default().keep_alive(Duration::from_millis(ms));
        assert_eq!(
            config(500).validate(),
            Err(ConfigError::KeepAliveOutOfRange(Duration::from_millis(500)))
        );
        assert!(config(0).validate().is_ok());
        assert!(config(1000).validate().is_ok());
        assert_eq!(config(1500).keep_alive_secs(), 2);
        assert_eq!(config(65_535_000).keep_alive_secs(), u16::MAX);
        assert!(config(65_536_000).validate().is_err());
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let config = Config::new("c")
            .unwrap()
            .credentials("alice", &b"hunter2"[..])
            .unwrap();
        let shown = format!("{config:?}");
        assert!(shown.contains("alice"));
        assert!(!shown.contains("hunter2"));
    }
}
