//! Session configuration: what goes into CONNECT and the limits the session keeps.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use mqtt_proto::{ConnectProperties, LastWill, MqttString, ProtocolVersion, MAX_PACKET_SIZE};

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

    /// The keep alive in whole seconds as sent in CONNECT.
    pub fn keep_alive_secs(&self) -> u16 {
        u16::try_from(self.keep_alive.as_secs()).unwrap_or(u16::MAX)
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
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
