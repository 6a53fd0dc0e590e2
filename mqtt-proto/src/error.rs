//! Typed errors of the codec. Short input is never an error: decoding answers `Ok(None)`.

use crate::packet::PacketType;
use crate::properties::PropertyId;

/// Why a topic name or topic filter is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// Topic names and filters are at least one character long [MQTT-4.7.3-1 v3.1.1 v5.0].
    #[error("topic is empty [MQTT-4.7.3-1]")]
    Empty,
    /// Topic names and filters encode to at most 65,535 bytes [MQTT-4.7.3-3 v3.1.1 v5.0].
    #[error("topic is longer than 65535 bytes [MQTT-4.7.3-3]")]
    TooLong,
    /// Topic names and filters never contain U+0000 [MQTT-4.7.3-2 v3.1.1 v5.0].
    #[error("topic contains U+0000 [MQTT-4.7.3-2]")]
    NullCharacter,
    /// A topic name contains `+` or `#` [MQTT-3.3.2-2 v3.1.1 v5.0], [MQTT-4.7.1-1 v3.1.1],
    /// [MQTT-4.7.0-1 v5.0].
    #[error("topic name contains a wildcard [MQTT-3.3.2-2]")]
    WildcardInName,
    /// `#` is not alone or after `/`, or is not the last character [MQTT-4.7.1-2 v3.1.1],
    /// [MQTT-4.7.1-1 v5.0].
    #[error("misplaced '#' in topic filter [MQTT-4.7.1-2]")]
    MisplacedMultiLevelWildcard,
    /// `+` does not fill a whole level [MQTT-4.7.1-3 v3.1.1], [MQTT-4.7.1-2 v5.0].
    #[error("'+' does not fill a whole topic level [MQTT-4.7.1-3]")]
    MisplacedSingleLevelWildcard,
    /// A `$share/` filter has an empty or ill-formed share name, or no filter after it
    /// [MQTT-4.8.2-1 v5.0], [MQTT-4.8.2-2 v5.0].
    #[error("ill-formed shared subscription [MQTT-4.8.2-1]")]
    InvalidShareName,
}

/// Why a UTF-8 encoded string is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StringError {
    /// Not well-formed UTF-8, or contains surrogates [MQTT-1.5.3-1 v3.1.1], [MQTT-1.5.4-1 v5.0].
    #[error("ill-formed UTF-8 [MQTT-1.5.3-1]")]
    InvalidUtf8,
    /// Contains U+0000 [MQTT-1.5.3-2 v3.1.1], [MQTT-1.5.4-2 v5.0].
    #[error("string contains U+0000 [MQTT-1.5.3-2]")]
    NullCharacter,
    /// Longer than the 65,535 bytes a two-byte length prefix can express.
    #[error("string is longer than 65535 bytes")]
    TooLong,
}

/// Why bytes from the peer are not a valid packet. Each variant is a protocol violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The packet, fixed header included, is larger than the configured maximum.
    #[error("packet of {size} bytes exceeds the maximum of {max}")]
    PacketTooLarge {
        /// Size the fixed header declares, in bytes.
        size: usize,
        /// Configured maximum, in bytes.
        max: usize,
    },
    /// The remaining length takes more than four bytes, or is not in its shortest form
    /// [MQTT-1.5.5-1 v5.0].
    #[error("malformed variable byte integer [MQTT-1.5.5-1]")]
    MalformedVarInt,
    /// Packet type 0, or 15 (AUTH) before 5.0.
    #[error("invalid packet type {0}")]
    InvalidPacketType(u8),
    /// Reserved fixed-header flag bits are not as the spec lists them [MQTT-2.2.2-1 v3.1.1],
    /// [MQTT-2.1.3-1 v5.0].
    #[error("invalid fixed header flags {flags:#06b} for {packet:?} [MQTT-2.2.2-1]")]
    InvalidFlags {
        /// The packet type.
        packet: PacketType,
        /// The low nibble of the first byte.
        flags: u8,
    },
    /// PUBLISH with both QoS bits set [MQTT-3.3.1-4 v3.1.1 v5.0].
    #[error("QoS 3 [MQTT-3.3.1-4]")]
    InvalidQoS,
    /// DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2 v3.1.1 v5.0].
    #[error("DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]")]
    DupOnQoS0,
    /// A packet identifier of zero [MQTT-2.3.1-1 v3.1.1].
    #[error("packet identifier 0 [MQTT-2.3.1-1]")]
    ZeroPacketId,
    /// A field runs past the end the fixed header declared.
    #[error("packet is shorter than its fields")]
    Truncated,
    /// Bytes left over after the last field of the packet.
    #[error("{0} trailing bytes after the packet")]
    TrailingBytes(usize),
    /// An ill-formed UTF-8 encoded string.
    #[error(transparent)]
    InvalidString(#[from] StringError),
    /// An ill-formed topic name or filter.
    #[error(transparent)]
    InvalidTopic(#[from] TopicError),
    /// A topic name is empty without a topic alias standing in for it [MQTT-3.3.2-1 v3.1.1 v5.0].
    #[error("empty topic name without a topic alias")]
    EmptyTopicWithoutAlias,
    /// CONNECT's protocol name is neither `MQTT` nor `MQIsdp` [MQTT-3.1.2-1 v3.1.1 v5.0].
    #[error("unknown protocol name [MQTT-3.1.2-1]")]
    InvalidProtocolName,
    /// CONNECT's protocol level is not 3, 4 or 5, or does not match the name.
    #[error("unsupported protocol level {0}")]
    UnsupportedProtocolLevel(u8),
    /// CONNECT flags break a rule: reserved bit set [MQTT-3.1.2-3 v3.1.1 v5.0], will QoS/retain
    /// without will [MQTT-3.1.2-11 v3.1.1 v5.0], [MQTT-3.1.2-13 v3.1.1 v5.0],
    /// [MQTT-3.1.2-15 v3.1.1], will QoS 3 [MQTT-3.1.2-14 v3.1.1], [MQTT-3.1.2-12 v5.0], password
    /// without user name before 5.0 [MQTT-3.1.2-22 v3.1.1].
    #[error("invalid CONNECT flags {0:#010b}")]
    InvalidConnectFlags(u8),
    /// CONNACK acknowledge flags bits 7..1 are not zero [MQTT-3.2.2-1 v5.0].
    #[error("invalid CONNACK flags {0:#010b} [MQTT-3.2.2-1]")]
    InvalidConnAckFlags(u8),
    /// A reason code (or 3.1.1 return code) not defined for this packet.
    #[error("reason code {code:#04x} is not defined for {packet:?}")]
    InvalidReasonCode {
        /// The packet type.
        packet: PacketType,
        /// The code received.
        code: u8,
    },
    /// A property identifier the spec does not define.
    #[error("unknown property identifier {0:#04x}")]
    UnknownProperty(u32),
    /// A property that this packet may not carry.
    #[error("property {property:?} is not allowed in {packet:?}")]
    PropertyNotAllowed {
        /// The packet type (CONNECT for will properties).
        packet: PacketType,
        /// The property.
        property: PropertyId,
    },
    /// A property that may appear once appears twice.
    #[error("property {0:?} appears more than once")]
    DuplicateProperty(PropertyId),
    /// A property value out of its range (e.g. Receive Maximum 0, Topic Alias 0
    /// [MQTT-3.3.2-8 v5.0], a boolean property other than 0 or 1).
    #[error("invalid value for property {0:?}")]
    InvalidPropertyValue(PropertyId),
    /// SUBSCRIBE options with reserved bits set or QoS 3 [MQTT-3.8.3-4 v3.1.1],
    /// [MQTT-3.8.3-5 v5.0], or retain handling 3.
    #[error("invalid subscription options {0:#010b}")]
    InvalidSubscriptionOptions(u8),
    /// No Local on a shared subscription [MQTT-3.8.3-4 v5.0].
    #[error("No Local set on a shared subscription [MQTT-3.8.3-4]")]
    NoLocalOnSharedSubscription,
    /// SUBSCRIBE or UNSUBSCRIBE without any topic filter [MQTT-3.8.3-3 v3.1.1],
    /// [MQTT-3.10.3-2 v3.1.1 v5.0].
    #[error("SUBSCRIBE/UNSUBSCRIBE without topic filters [MQTT-3.8.3-3]")]
    NoTopicFilters,
}

/// Why a packet cannot be encoded for the chosen protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The packet does not exist in this version (AUTH before 5.0).
    #[error("{packet:?} does not exist in MQTT {version}")]
    PacketNotInVersion {
        /// The packet type.
        packet: PacketType,
        /// The version asked for.
        version: crate::ProtocolVersion,
    },
    /// A CONNECT encoded for another version than the one it names (its `protocol`, which
    /// decides its layout and its protocol level byte).
    #[error("a CONNECT for MQTT {packet} cannot be encoded as MQTT {encoder}")]
    VersionMismatch {
        /// The version the CONNECT names.
        packet: crate::ProtocolVersion,
        /// The version it was to be encoded in.
        encoder: crate::ProtocolVersion,
    },
    /// 5.0 properties set on a packet for an older version, which cannot carry them.
    #[error("properties cannot be sent in MQTT {0}")]
    PropertiesNotInVersion(crate::ProtocolVersion),
    /// A reason code the version cannot express (anything but success before 5.0, where the
    /// packet has no reason code, or no 3.1.1 CONNACK return code maps to it).
    #[error("reason code {code:#04x} cannot be sent in MQTT {version}")]
    ReasonCodeNotInVersion {
        /// The code.
        code: u8,
        /// The version asked for.
        version: crate::ProtocolVersion,
    },
    /// 5.0 subscription options (No Local, Retain As Published, Retain Handling) before 5.0.
    #[error("subscription options beyond QoS cannot be sent in MQTT {0}")]
    SubscriptionOptionsNotInVersion(crate::ProtocolVersion),
    /// An empty topic name (topic alias) before 5.0, or without a topic alias.
    #[error("empty topic name without a topic alias")]
    EmptyTopicWithoutAlias,
    /// DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2 v3.1.1 v5.0].
    #[error("DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]")]
    DupOnQoS0,
    /// A password without a user name before 5.0 [MQTT-3.1.2-22 v3.1.1].
    #[error("password without user name [MQTT-3.1.2-22]")]
    PasswordWithoutUsername,
    /// SUBSCRIBE or UNSUBSCRIBE without filters [MQTT-3.8.3-3 v3.1.1], [MQTT-3.10.3-2 v3.1.1 v5.0].
    #[error("SUBSCRIBE/UNSUBSCRIBE without topic filters [MQTT-3.8.3-3]")]
    NoTopicFilters,
    /// No Local on a shared subscription [MQTT-3.8.3-4 v5.0].
    #[error("No Local set on a shared subscription [MQTT-3.8.3-4]")]
    NoLocalOnSharedSubscription,
    /// A property value the spec does not allow on the wire (Maximum QoS 2, a Subscription
    /// Identifier above 268,435,455).
    #[error("invalid value for property {0:?}")]
    InvalidPropertyValue(PropertyId),
    /// A binary field (password, will payload, correlation data ...) longer than 65,535 bytes.
    #[error("binary field longer than 65535 bytes")]
    FieldTooLong,
    /// The packet would exceed the 268,435,455-byte remaining length limit.
    #[error("packet too large: remaining length {0} exceeds 268435455")]
    PacketTooLarge(usize),
}
