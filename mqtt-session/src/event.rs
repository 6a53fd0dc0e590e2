//! What the session reports to the application, and the errors of its commands, split by
//! blame: the caller's misuse (`*Error` of a command) versus the peer or the network
//! ([`ConnectionError`]).

use mqtt_proto::{
    AckProperties, Auth, AuthProperties, AuthReasonCode, ConnAckProperties, ConnectReasonCode,
    DecodeError, DecodeErrorKind, DisconnectProperties, DisconnectReasonCode, EncodeError,
    PacketId, PacketType, PropertyBox, PubAckReasonCode, PubRelReasonCode, Publish, QoS,
    StringError, SubAckReasonCode, TopicFilter, UnsubAckReasonCode,
};

use crate::auth::AuthFailure;
use crate::store::{SetAside, StoreError};

/// Identifies one message given to [`Session::publish`](crate::Session::publish), from the
/// call until its flow completes. Unlike packet identifiers, tokens are not reused within a
/// process and the flows its store resumes; a new process with an empty store counts afresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublishToken(pub u64);

/// Identifies one received QoS 1/2 message that the application acknowledges itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AckToken(pub(crate) u64);

/// Something the application should know about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The server accepted the connection.
    Connected {
        /// Whether the server resumed a stored session.
        session_present: bool,
        /// 5.0 CONNACK properties (assigned client id, server limits ...).
        properties: Box<ConnAckProperties>,
    },
    /// A message arrived. For QoS 1/2 with manual acknowledgement, `ack` must be passed to
    /// [`Session::ack`](crate::Session::ack) once the message is processed.
    Message {
        /// The PUBLISH, its topic resolved from any topic alias.
        publish: Publish,
        /// Token to acknowledge it with, in manual-ack mode.
        ack: Option<AckToken>,
    },
    /// The flow of a message given to `publish` has ended.
    Published {
        /// The token `publish` returned.
        token: PublishToken,
        /// How it ended.
        outcome: PublishOutcome,
    },
    /// The server answered a SUBSCRIBE.
    Subscribed {
        /// Identifier `subscribe` returned.
        packet_id: PacketId,
        /// Per filter, in request order: the granted QoS, or why it was refused.
        results: Vec<Result<QoS, SubAckReasonCode>>,
        /// 5.0 SUBACK properties.
        properties: PropertyBox<AckProperties>,
    },
    /// The server answered an UNSUBSCRIBE.
    Unsubscribed {
        /// Identifier `unsubscribe` returned.
        packet_id: PacketId,
        /// Per filter: the outcome (always success before 5.0, which has no codes).
        results: Vec<UnsubAckReasonCode>,
        /// 5.0 UNSUBACK properties.
        properties: PropertyBox<AckProperties>,
    },
    /// A connection started without a session present, and the session subscribed again to
    /// every subscription the server had granted before: per filter, the granted QoS or why
    /// it was refused (a refused filter is no longer active).
    Resubscribed {
        /// Per filter, the answer.
        results: Vec<(TopicFilter, Result<QoS, SubAckReasonCode>)>,
    },
    /// The server sent an AUTH step of enhanced authentication (5.0); answer with
    /// [`Session::auth`](crate::Session::auth). Not reported while an
    /// [`Authenticator`](crate::Authenticator) runs the exchange.
    Auth(Auth),
    /// A re-authentication started by
    /// [`Session::reauthenticate`](crate::Session::reauthenticate) succeeded: the server sent
    /// AUTH with Success, and the authenticator accepted it.
    Reauthenticated {
        /// The properties of the server's AUTH (its data, reason string, user properties).
        properties: PropertyBox<AuthProperties>,
    },
    /// The connection ended; the transport should be closed once pending bytes are written.
    Disconnected {
        /// Why.
        reason: ConnectionError,
    },
    /// The session store failed; messages it could not record wait in the queue.
    StoreFailed(StoreError),
    /// A stored record could not be read back (torn by a crash or corrupted on disk) and was
    /// moved aside; every intact record was loaded. Reported once, before the first
    /// connection.
    RecordSetAside(SetAside),
}

/// How the flow of one published message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishOutcome {
    /// QoS 0: handed to the transport.
    Sent,
    /// QoS 1: the server sent PUBACK with a success code.
    Acknowledged {
        /// 0x00 or 0x10 (no matching subscribers).
        reason: PubAckReasonCode,
        /// 5.0 properties.
        properties: PropertyBox<AckProperties>,
    },
    /// QoS 2: the server sent PUBCOMP.
    Completed {
        /// Success, or 0x92 if the server had lost the identifier.
        reason: PubRelReasonCode,
        /// 5.0 properties.
        properties: PropertyBox<AckProperties>,
    },
    /// 5.0: the server refused the message with PUBACK or PUBREC of 0x80 or above; it is not
    /// sent again [MQTT-4.4.0-2 v5.0].
    Rejected {
        /// The reason.
        reason: PubAckReasonCode,
        /// 5.0 properties.
        properties: PropertyBox<AckProperties>,
    },
    /// The message can no longer be sent: it exceeds the maximum packet size or QoS the
    /// server announced on a later connection.
    Dropped(PublishError),
    /// 5.0: the message's Message Expiry Interval passed while it waited to be sent: it was
    /// dropped unsent, its stored record removed (see
    /// [`Session::publish`](crate::Session::publish)).
    Expired,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The server refused the connection with this CONNACK code.
    #[error("connection refused: {reason:?}")]
    Refused {
        /// The reason code (3.1.1 return codes are mapped onto 5.0 codes).
        reason: ConnectReasonCode,
        /// 5.0 CONNACK properties (reason string, server reference ...).
        properties: Box<ConnAckProperties>,
    },
    /// The server sent DISCONNECT (5.0).
    #[error("disconnected by the server: {reason:?}")]
    ServerDisconnected {
        /// The reason code.
        reason: DisconnectReasonCode,
        /// Its properties (reason string, server reference ...).
        properties: PropertyBox<DisconnectProperties>,
    },
    /// The server broke the protocol.
    #[error("protocol violation by the server: {0}")]
    ProtocolViolation(#[from] ProtocolViolation),
    /// Nothing arrived within the ping timeout after a PINGREQ.
    #[error("keep alive timeout: no answer to PINGREQ")]
    KeepAliveTimeout,
    /// No CONNACK arrived within the connect timeout.
    #[error("no CONNACK within the connect timeout")]
    ConnectTimeout,
    /// The transport closed.
    #[error("connection closed by the network or the server")]
    TransportClosed,
    /// The application asked to disconnect.
    #[error("disconnected by the client")]
    LocalDisconnect,
    /// The configuration cannot make a valid CONNECT.
    #[error("invalid configuration: {0}")]
    InvalidConfig(ConfigError),
    /// A packet whose first bytes arrived did not complete within the packet timeout (a
    /// stalled or deliberately slow server).
    #[error("a packet did not arrive whole within {0:?}")]
    PacketTimeout(std::time::Duration),
    /// Bytes waiting to be written made no progress within the write timeout (the server
    /// stopped reading).
    #[error("the transport took no bytes for {0:?}")]
    WriteTimeout(std::time::Duration),
    /// The session store failed to make a batch of writes durable; the packets that depended
    /// on it were not sent.
    #[error("session store failed: {0}")]
    StoreFailed(StoreError),
    /// The [`Authenticator`](crate::Authenticator) gave up: its exchange cannot go on (the
    /// server's data is not what the method expects, or the server failed to prove itself).
    /// In 5.0 the session sends DISCONNECT with 0x83 (Implementation specific error) first,
    /// unless CONNECT itself could not be made.
    #[error("authentication failed: {0}")]
    AuthFailed(AuthFailure),
    /// A re-authentication got no answer within this time (the connect timeout); the session
    /// sent DISCONNECT with 0x80 (Unspecified error) [MQTT-4.12.1-2 v5.0].
    #[error("no answer to re-authentication within {0:?}")]
    ReauthenticationTimeout(std::time::Duration),
}

/// Why a configuration cannot make a valid CONNECT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Before 5.0 an empty client identifier needs a clean session [MQTT-3.1.3-7 v3.1.1].
    #[error("an empty client id needs a clean session before MQTT 5.0 [MQTT-3.1.3-7]")]
    EmptyClientIdNeedsCleanSession,
    /// CONNECT cannot be encoded (e.g. a password without a user name before 5.0).
    #[error(transparent)]
    Encode(EncodeError),
    /// Keep alive must be zero (off) or from 1 to 65,535 seconds: CONNECT carries whole
    /// seconds in 16 bits (spec 3.1.2.10), and a shorter one would silently turn it off.
    #[error("keep alive {0:?} is outside 1 s ..= 65,535 s (or zero to turn it off)")]
    KeepAliveOutOfRange(std::time::Duration),
    /// Enhanced authentication (an [`Authenticator`](crate::Authenticator)) exists only in
    /// MQTT 5.0.
    #[error("enhanced authentication needs MQTT 5.0")]
    EnhancedAuthNeedsV5,
    /// The authenticator's method name is not a valid MQTT string.
    #[error("invalid authentication method: {0}")]
    InvalidAuthMethod(StringError),
}

/// A rule the server broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolViolation {
    /// Bytes that are not a valid packet.
    #[error("malformed packet: {0}")]
    Malformed(#[from] DecodeError),
    /// A packet a server never sends, or not in this state (e.g. before CONNACK).
    #[error("unexpected {0:?} packet")]
    UnexpectedPacket(PacketType),
    /// An acknowledgement for a packet identifier with no flow waiting for it.
    #[error("{packet:?} for unknown packet identifier {packet_id}")]
    UnknownPacketId {
        /// The packet.
        packet: PacketType,
        /// Its identifier.
        packet_id: u16,
    },
    /// A second CONNACK on one connection.
    #[error("second CONNACK")]
    SecondConnAck,
    /// Session Present set although the client asked for a clean start [MQTT-3.2.2-1 v3.1.1],
    /// [MQTT-3.2.2-4 v5.0].
    #[error("session present after a clean start [MQTT-3.2.2-4]")]
    UnexpectedSessionPresent,
    /// A topic alias that is 0, above our maximum, or not yet defined.
    #[error("invalid topic alias {0}")]
    TopicAliasInvalid(u16),
    /// More QoS 1/2 messages unacknowledged than our Receive Maximum allows.
    #[error("receive maximum exceeded")]
    ReceiveMaximumExceeded,
    /// A SUBACK or UNSUBACK with a different number of results than filters asked for.
    #[error("{packet:?} answers {got} filters, {expected} were sent")]
    WrongResultCount {
        /// SUBACK or UNSUBACK.
        packet: PacketType,
        /// Filters in the request.
        expected: usize,
        /// Results in the answer.
        got: usize,
    },
    /// An AUTH, or a successful CONNACK, whose Authentication Method is not the one CONNECT
    /// carried [MQTT-4.12.0-5 v5.0].
    #[error("the server's authentication method is not the one CONNECT carried [MQTT-4.12.0-5]")]
    AuthMethodMismatch,
    /// An AUTH the server may not send now: without an Authentication Method in CONNECT
    /// [MQTT-4.12.0-6 v5.0], Re-authenticate (only a client starts that), Success before CONNACK
    /// (CONNACK ends the first exchange), or a step of no exchange under way.
    #[error("unexpected AUTH with reason code {0:?}")]
    UnexpectedAuth(AuthReasonCode),
}

impl ProtocolViolation {
    /// The 5.0 DISCONNECT reason code that reports this violation to the server.
    pub fn disconnect_reason(&self) -> DisconnectReasonCode {
        match self {
            Self::Malformed(e) if matches!(e.kind(), DecodeErrorKind::PacketTooLarge { .. }) => {
                DisconnectReasonCode::PacketTooLarge
            }
            // 5.0 sections 3.1.2.11.10 and 3.15.2.2.2 call these protocol errors.
            Self::Malformed(e)
                if matches!(
                    e.kind(),
                    DecodeErrorKind::MissingAuthenticationMethod
                        | DecodeErrorKind::AuthenticationDataWithoutMethod
                ) =>
            {
                DisconnectReasonCode::ProtocolError
            }
            Self::Malformed(_) => DisconnectReasonCode::MalformedPacket,
            Self::TopicAliasInvalid(_) => DisconnectReasonCode::TopicAliasInvalid,
            Self::ReceiveMaximumExceeded => DisconnectReasonCode::ReceiveMaximumExceeded,
            _ => DisconnectReasonCode::ProtocolError,
        }
    }
}

/// Why `publish` refused a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The queue behind the in-flight window is full: back off and retry.
    #[error("publish queue is full")]
    QueueFull,
    /// The packet would exceed the server's maximum packet size [MQTT-3.2.2-15 v5.0].
    #[error("packet of {size} bytes exceeds the server's maximum of {max}")]
    PacketTooLarge {
        /// Encoded size.
        size: usize,
        /// The server's maximum.
        max: usize,
    },
    /// The QoS exceeds the server's Maximum QoS [MQTT-3.2.2-11 v5.0].
    #[error("QoS {requested:?} exceeds the server's maximum {max:?}")]
    QoSNotSupported {
        /// Asked for.
        requested: QoS,
        /// Allowed.
        max: QoS,
    },
    /// RETAIN on a server without retain support [MQTT-3.2.2-14 v5.0].
    #[error("the server does not support retained messages")]
    RetainNotSupported,
    /// The message cannot be expressed in the protocol version (e.g. 5.0 properties on 3.1.1).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The session store failed to record the message.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A client's PUBLISH never carries a Subscription Identifier [MQTT-3.3.4-6 v5.0].
    #[error("a client may not send a subscription identifier in PUBLISH [MQTT-3.3.4-6]")]
    SubscriptionIdentifierInPublish,
    /// A disconnect was asked for; no new messages are taken.
    #[error("the session is disconnecting")]
    Disconnecting,
}

/// Why `subscribe` or `unsubscribe` refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// No filters were given [MQTT-3.8.3-3 v3.1.1], [MQTT-3.8.3-2 v5.0],
    /// [MQTT-3.10.3-2 v3.1.1 v5.0].
    #[error("no topic filters")]
    NoFilters,
    /// All 65,535 packet identifiers are in use.
    #[error("no packet identifier free")]
    NoPacketIdAvailable,
    /// The request cannot be expressed in the protocol version.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The packet would exceed the server's maximum packet size.
    #[error("packet of {size} bytes exceeds the server's maximum of {max}")]
    PacketTooLarge {
        /// Encoded size.
        size: usize,
        /// The server's maximum.
        max: usize,
    },
}

/// Why `ack` refused a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The token is unknown, already acknowledged, or belongs to a connection that has ended
    /// (the server resends such QoS 1 messages).
    #[error("unknown or stale acknowledgement token")]
    UnknownToken,
    /// The session store failed to record the QoS 2 identifier.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why `auth` refused an AUTH packet, or `reauthenticate` could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// AUTH exists only in 5.0, with an Authentication Method in CONNECT [MQTT-4.12.0-7 v5.0].
    #[error("enhanced authentication needs MQTT 5.0 and an authentication method")]
    NotNegotiated,
    /// The Authentication Method differs from the one in CONNECT [MQTT-4.12.0-5 v5.0],
    /// [MQTT-4.12.1-1 v5.0].
    #[error("AUTH must carry the authentication method of CONNECT")]
    MethodMismatch,
    /// A reason code the client may not send now: only 0x18 while connecting
    /// [MQTT-4.12.0-3 v5.0], 0x18 or 0x19 once connected.
    #[error("AUTH reason code {0:?} is not allowed here")]
    WrongReasonCode(mqtt_proto::AuthReasonCode),
    /// There is no connection to send it on.
    #[error("not connected")]
    NotConnected,
    /// The packet cannot be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// An [`Authenticator`](crate::Authenticator) runs the exchange: AUTH packets are its to
    /// send.
    #[error("an authenticator runs enhanced authentication")]
    HandledByAuthenticator,
    /// Re-authentication needs an authenticator
    /// ([`Session::set_authenticator`](crate::Session::set_authenticator)).
    #[error("no authenticator to re-authenticate with")]
    NoAuthenticator,
    /// A re-authentication is under way already.
    #[error("a re-authentication is under way")]
    InProgress,
    /// The authenticator could not start the exchange.
    #[error("the authenticator cannot start: {0}")]
    Failed(AuthFailure),
}
