//! Why a connection could not be made: typed, cheap to clone, so that every caller waiting
//! on a client that gave up gets the cause, not only "stopped".

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use mqtt_proto::ConnectReasonCode;

use super::url::BrokerUrl;
use crate::event::ConnectionError;

/// Which step of opening a transport failed, with the error it failed with.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// The host name could not be resolved (DNS).
    #[error("cannot resolve the host name: {0}")]
    Resolve(Arc<io::Error>),
    /// No TCP connection could be opened to any of the host's addresses (refused,
    /// unreachable), or the Unix socket could not be opened.
    #[error("cannot open a connection: {0}")]
    Connect(Arc<io::Error>),
    /// The TLS handshake failed: the certificate was not trusted or not for this host, no
    /// common protocol version, or a bad server name. The error's inner error is the TLS
    /// library's, for those who need the detail.
    #[error("TLS handshake failed: {0}")]
    Tls(Arc<io::Error>),
    /// The WebSocket upgrade failed.
    #[error("WebSocket handshake failed: {0}")]
    WebSocket(Arc<io::Error>),
    /// Opening the transport took longer than the connect timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The connect hook did not decide within the connect timeout.
    #[error("the connect hook did not answer within {0:?}")]
    HookTimeout(Duration),
}

impl DialError {
    /// A resolution failure.
    pub fn resolve(error: io::Error) -> Self {
        Self::Resolve(Arc::new(error))
    }

    /// A TCP (or Unix socket) failure.
    pub fn connect(error: io::Error) -> Self {
        Self::Connect(Arc::new(error))
    }

    /// A TLS failure.
    pub fn tls(error: io::Error) -> Self {
        Self::Tls(Arc::new(error))
    }

    /// A WebSocket failure.
    pub fn websocket(error: io::Error) -> Self {
        Self::WebSocket(Arc::new(error))
    }

    /// The IO error underneath, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Self::Resolve(e) | Self::Connect(e) | Self::Tls(e) | Self::WebSocket(e) => Some(e),
            Self::Timeout(_) | Self::HookTimeout(_) => None,
        }
    }
}

/// Why the last attempt to connect failed; what a client that gives up reports to every
/// caller still waiting ([`Error::Stopped`](super::Error::Stopped)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConnectFailure {
    /// The transport could not be opened.
    Dial {
        /// The broker tried.
        broker: BrokerUrl,
        /// Which step failed and how.
        error: DialError,
    },
    /// The transport opened but the connection did not come up, or ended: refused with a
    /// reason code, no CONNACK in time, closed by the broker, a protocol violation.
    Connection {
        /// The broker tried.
        broker: BrokerUrl,
        /// Why.
        reason: ConnectionError,
    },
    /// The connect hook decided to stop.
    StoppedByHook,
}

impl ConnectFailure {
    /// The CONNACK reason code, if the broker refused the connection.
    pub fn refusal(&self) -> Option<ConnectReasonCode> {
        match self {
            Self::Connection {
                reason: ConnectionError::Refused { reason, .. },
                ..
            } => Some(*reason),
            _ => None,
        }
    }

    /// Whether trying again unchanged cannot succeed: the broker refused the connection for
    /// a reason that does not pass by itself (bad credentials, not authorized, banned, an
    /// identifier or protocol version it does not accept), or the client's authenticator
    /// gave up. New credentials from the connect hook may still succeed.
    pub fn is_permanent(&self) -> bool {
        match self {
            // The client's own authenticator refused to go on: trying again unchanged fails
            // the same way.
            Self::Connection {
                reason: ConnectionError::AuthFailed(_),
                ..
            } => true,
            _ => self.refusal().is_some_and(is_permanent_refusal),
        }
    }

    /// The broker involved, if any.
    pub fn broker(&self) -> Option<&BrokerUrl> {
        match self {
            Self::Dial { broker, .. } | Self::Connection { broker, .. } => Some(broker),
            Self::StoppedByHook => None,
        }
    }
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dial { broker, error } => write!(f, "cannot connect to {broker}: {error}"),
            Self::Connection { broker, reason } => write!(f, "{broker}: {reason}"),
            Self::StoppedByHook => f.write_str("stopped by the connect hook"),
        }
    }
}

impl std::error::Error for ConnectFailure {}

/// Whether a CONNACK refusal does not pass by itself (spec 3.2.2.2 and table 3.1.1's return
/// codes, mapped onto 5.0 codes). Server unavailable, busy, quota and rate limits, a server
/// reference and unspecified errors may pass, and are retried.
pub fn is_permanent_refusal(reason: ConnectReasonCode) -> bool {
    use ConnectReasonCode as C;
    matches!(
        reason,
        C::MalformedPacket
            | C::ProtocolError
            | C::UnsupportedProtocolVersion
            | C::ClientIdentifierNotValid
            | C::BadUserNameOrPassword
            | C::NotAuthorized
            | C::Banned
            | C::BadAuthenticationMethod
            | C::TopicNameInvalid
            | C::PacketTooLarge
            | C::PayloadFormatInvalid
            | C::RetainNotSupported
            | C::QoSNotSupported
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker() -> BrokerUrl {
        BrokerUrl::parse("mqtt://127.0.0.1:1883").unwrap()
    }

    #[test]
    fn refusals_are_classified() {
        let refused = |reason| ConnectFailure::Connection {
            broker: broker(),
            reason: ConnectionError::Refused {
                reason,
                properties: Box::default(),
            },
        };
        assert!(refused(ConnectReasonCode::BadUserNameOrPassword).is_permanent());
        assert!(refused(ConnectReasonCode::NotAuthorized).is_permanent());
        assert!(!refused(ConnectReasonCode::ServerUnavailable).is_permanent());
        assert!(!refused(ConnectReasonCode::ServerBusy).is_permanent());
        assert_eq!(
            refused(ConnectReasonCode::Banned).refusal(),
            Some(ConnectReasonCode::Banned)
        );
        let dial = ConnectFailure::Dial {
            broker: broker(),
            error: DialError::Timeout(Duration::from_secs(1)),
        };
        assert!(!dial.is_permanent());
        assert_eq!(dial.refusal(), None);
        assert!(dial.to_string().contains("127.0.0.1:1883"), "{dial}");
    }
}
