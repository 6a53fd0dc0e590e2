//! Reason codes (spec 2.4 of 5.0), one enum per packet so each holds only the codes its
//! packet may carry [MQTT-3.4.2-1 v5.0], [MQTT-3.5.2-1 v5.0], [MQTT-3.6.2-1 v5.0],
//! [MQTT-3.7.2-1 v5.0], [MQTT-3.14.2-1 v5.0], [MQTT-3.15.2-1 v5.0].

/// Defines a reason code enum with its byte conversions.
macro_rules! reason_codes {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $value:literal, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )*
        }

        impl $name {
            /// The code for a byte, `None` if this packet does not define it.
            pub const fn from_u8(code: u8) -> Option<Self> {
                match code {
                    $( $value => Some(Self::$variant), )*
                    _ => None,
                }
            }

            /// The byte on the wire.
            pub const fn as_u8(self) -> u8 {
                self as u8
            }

            /// Whether the code reports success (below 0x80).
            pub const fn is_success(self) -> bool {
                (self as u8) < 0x80
            }
        }

        impl From<$name> for u8 {
            fn from(code: $name) -> u8 {
                code as u8
            }
        }
    };
}

reason_codes! {
    /// CONNACK reason codes (5.0 spec 3.2.2.2); 3.1.1 return codes map onto them.
    pub enum ConnectReasonCode {
        /// The connection is accepted.
        Success = 0x00,
        /// The server does not wish to reveal the reason.
        UnspecifiedError = 0x80,
        /// The CONNECT could not be parsed.
        MalformedPacket = 0x81,
        /// The CONNECT broke the protocol.
        ProtocolError = 0x82,
        /// Valid, but not accepted by this server.
        ImplementationSpecificError = 0x83,
        /// The protocol version is not supported (3.1.1 return code 1).
        UnsupportedProtocolVersion = 0x84,
        /// The client identifier is not allowed (3.1.1 return code 2).
        ClientIdentifierNotValid = 0x85,
        /// Wrong user name or password (3.1.1 return code 4).
        BadUserNameOrPassword = 0x86,
        /// Not authorized to connect (3.1.1 return code 5).
        NotAuthorized = 0x87,
        /// The server is not available (3.1.1 return code 3).
        ServerUnavailable = 0x88,
        /// The server is busy.
        ServerBusy = 0x89,
        /// This client is banned.
        Banned = 0x8A,
        /// The authentication method is not supported.
        BadAuthenticationMethod = 0x8C,
        /// The will topic is not accepted.
        TopicNameInvalid = 0x90,
        /// The CONNECT exceeded the maximum permissible size.
        PacketTooLarge = 0x95,
        /// An implementation or administrative limit was exceeded.
        QuotaExceeded = 0x97,
        /// The will payload does not match its payload format indicator.
        PayloadFormatInvalid = 0x99,
        /// Retained wills are not supported.
        RetainNotSupported = 0x9A,
        /// The will QoS is not supported.
        QoSNotSupported = 0x9B,
        /// Use another server, temporarily.
        UseAnotherServer = 0x9C,
        /// Use another server, permanently.
        ServerMoved = 0x9D,
        /// The connection rate limit was exceeded.
        ConnectionRateExceeded = 0x9F,
    }
}

impl ConnectReasonCode {
    /// The 3.1 / 3.1.1 CONNACK return code (spec 3.2.2.3 of 3.1.1) for a byte.
    pub const fn from_v3_return_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Success,
            1 => Self::UnsupportedProtocolVersion,
            2 => Self::ClientIdentifierNotValid,
            3 => Self::ServerUnavailable,
            4 => Self::BadUserNameOrPassword,
            5 => Self::NotAuthorized,
            _ => return None,
        })
    }

    /// The 3.1 / 3.1.1 return code for this reason, if 3.1.1 has one.
    pub const fn to_v3_return_code(self) -> Option<u8> {
        Some(match self {
            Self::Success => 0,
            Self::UnsupportedProtocolVersion => 1,
            Self::ClientIdentifierNotValid => 2,
            Self::ServerUnavailable => 3,
            Self::BadUserNameOrPassword => 4,
            Self::NotAuthorized => 5,
            _ => return None,
        })
    }
}

reason_codes! {
    /// PUBACK and PUBREC reason codes (5.0 spec 3.4.2.1, 3.5.2.1).
    pub enum PubAckReasonCode {
        /// The message is accepted.
        Success = 0x00,
        /// Accepted, but nobody is subscribed.
        NoMatchingSubscribers = 0x10,
        /// Not accepted, no reason given.
        UnspecifiedError = 0x80,
        /// Valid, but not accepted by this receiver.
        ImplementationSpecificError = 0x83,
        /// Not authorized to publish.
        NotAuthorized = 0x87,
        /// The topic name is not accepted.
        TopicNameInvalid = 0x90,
        /// The packet identifier is already in use.
        PacketIdentifierInUse = 0x91,
        /// A quota was exceeded.
        QuotaExceeded = 0x97,
        /// The payload does not match its payload format indicator.
        PayloadFormatInvalid = 0x99,
    }
}

reason_codes! {
    /// PUBREL and PUBCOMP reason codes (5.0 spec 3.6.2.1, 3.7.2.1).
    pub enum PubRelReasonCode {
        /// The packet identifier is released.
        Success = 0x00,
        /// The packet identifier is not known.
        PacketIdentifierNotFound = 0x92,
    }
}

reason_codes! {
    /// SUBACK reason codes (5.0 spec 3.9.3); 3.1.1 return codes 0, 1, 2 and 0x80 are a subset
    /// [MQTT-3.9.3-2 v3.1.1].
    pub enum SubAckReasonCode {
        /// Subscribed with maximum QoS 0.
        GrantedQoS0 = 0x00,
        /// Subscribed with maximum QoS 1.
        GrantedQoS1 = 0x01,
        /// Subscribed with maximum QoS 2.
        GrantedQoS2 = 0x02,
        /// Refused, no reason given (the 3.1.1 failure code).
        UnspecifiedError = 0x80,
        /// Valid, but not accepted by this server.
        ImplementationSpecificError = 0x83,
        /// Not authorized to subscribe.
        NotAuthorized = 0x87,
        /// The filter is well-formed but not accepted.
        TopicFilterInvalid = 0x8F,
        /// The packet identifier is already in use.
        PacketIdentifierInUse = 0x91,
        /// A quota was exceeded.
        QuotaExceeded = 0x97,
        /// Shared subscriptions are not supported.
        SharedSubscriptionsNotSupported = 0x9E,
        /// Subscription identifiers are not supported.
        SubscriptionIdentifiersNotSupported = 0xA1,
        /// Wildcard subscriptions are not supported.
        WildcardSubscriptionsNotSupported = 0xA2,
    }
}

impl SubAckReasonCode {
    /// The QoS granted, if the subscription succeeded.
    pub const fn granted_qos(self) -> Option<crate::QoS> {
        match self {
            Self::GrantedQoS0 => Some(crate::QoS::AtMostOnce),
            Self::GrantedQoS1 => Some(crate::QoS::AtLeastOnce),
            Self::GrantedQoS2 => Some(crate::QoS::ExactlyOnce),
            _ => None,
        }
    }

    /// Whether 3.1 / 3.1.1 can carry this code.
    pub const fn in_v3(self) -> bool {
        matches!(
            self,
            Self::GrantedQoS0 | Self::GrantedQoS1 | Self::GrantedQoS2 | Self::UnspecifiedError
        )
    }
}

reason_codes! {
    /// UNSUBACK reason codes (5.0 spec 3.11.3).
    pub enum UnsubAckReasonCode {
        /// The subscription is deleted.
        Success = 0x00,
        /// No matching subscription existed.
        NoSubscriptionExisted = 0x11,
        /// Refused, no reason given.
        UnspecifiedError = 0x80,
        /// Valid, but not accepted by this server.
        ImplementationSpecificError = 0x83,
        /// Not authorized to unsubscribe.
        NotAuthorized = 0x87,
        /// The filter is well-formed but not accepted.
        TopicFilterInvalid = 0x8F,
        /// The packet identifier is already in use.
        PacketIdentifierInUse = 0x91,
    }
}

reason_codes! {
    /// DISCONNECT reason codes (5.0 spec 3.14.2.1).
    pub enum DisconnectReasonCode {
        /// Close normally; the server does not publish the will.
        NormalDisconnection = 0x00,
        /// Close, and have the server publish the will (client to server).
        DisconnectWithWillMessage = 0x04,
        /// No reason given.
        UnspecifiedError = 0x80,
        /// A packet could not be parsed.
        MalformedPacket = 0x81,
        /// A packet broke the protocol.
        ProtocolError = 0x82,
        /// Valid, but not accepted by this side.
        ImplementationSpecificError = 0x83,
        /// Not authorized.
        NotAuthorized = 0x87,
        /// The server is busy.
        ServerBusy = 0x89,
        /// The server is shutting down.
        ServerShuttingDown = 0x8B,
        /// No packet within 1.5 keep alive intervals.
        KeepAliveTimeout = 0x8D,
        /// Another connection took this client identifier.
        SessionTakenOver = 0x8E,
        /// A topic filter is not accepted.
        TopicFilterInvalid = 0x8F,
        /// A topic name is not accepted.
        TopicNameInvalid = 0x90,
        /// More QoS 1/2 PUBLISH in flight than Receive Maximum allows.
        ReceiveMaximumExceeded = 0x93,
        /// A topic alias was out of range.
        TopicAliasInvalid = 0x94,
        /// A packet exceeded the maximum packet size.
        PacketTooLarge = 0x95,
        /// The message rate is too high.
        MessageRateTooHigh = 0x96,
        /// A quota was exceeded.
        QuotaExceeded = 0x97,
        /// Closed by an administrator.
        AdministrativeAction = 0x98,
        /// A payload did not match its payload format indicator.
        PayloadFormatInvalid = 0x99,
        /// Retained messages are not supported.
        RetainNotSupported = 0x9A,
        /// The QoS is not supported.
        QoSNotSupported = 0x9B,
        /// Use another server, temporarily.
        UseAnotherServer = 0x9C,
        /// Use another server, permanently.
        ServerMoved = 0x9D,
        /// Shared subscriptions are not supported.
        SharedSubscriptionsNotSupported = 0x9E,
        /// The connection rate limit was exceeded.
        ConnectionRateExceeded = 0x9F,
        /// The maximum connection time was reached.
        MaximumConnectTime = 0xA0,
        /// Subscription identifiers are not supported.
        SubscriptionIdentifiersNotSupported = 0xA1,
        /// Wildcard subscriptions are not supported.
        WildcardSubscriptionsNotSupported = 0xA2,
    }
}

reason_codes! {
    /// AUTH reason codes (5.0 spec 3.15.2.1).
    pub enum AuthReasonCode {
        /// Authentication succeeded.
        Success = 0x00,
        /// Continue the authentication exchange.
        ContinueAuthentication = 0x18,
        /// Start re-authentication (client to server).
        ReAuthenticate = 0x19,
    }
}
