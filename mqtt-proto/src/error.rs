//! Typed errors of the codec. Short input is never an error: decoding answers `Ok(None)`.
//!
//! A decode error names the rule the peer broke in the version the connection speaks: the
//! numbered normative statement where the spec has one ([`DecodeError::statement`]), and the
//! section that states the rule in any case ([`DecodeError::section`]).

use core::fmt;

use crate::packet::PacketType;
use crate::properties::PropertyId;
use crate::ProtocolVersion;

/// Which specification a citation refers to: MQTT 3.1.1 or MQTT 5.0.
///
/// MQTT 3.1 numbered no statements; a 3.1 connection cites the 3.1.1 spec, which restates the
/// rules of 3.1 with numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spec {
    /// MQTT 3.1.1 (OASIS Standard, 2014), also cited for 3.1.
    V3_1_1,
    /// MQTT 5.0 (OASIS Standard, 2019).
    V5,
}

impl Spec {
    /// The spec that states the rules of `version`.
    pub const fn of(version: ProtocolVersion) -> Self {
        match version {
            ProtocolVersion::V3_1 | ProtocolVersion::V3_1_1 => Self::V3_1_1,
            ProtocolVersion::V5 => Self::V5,
        }
    }

    /// `3.1.1` or `5.0`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::V3_1_1 => "3.1.1",
            Self::V5 => "5.0",
        }
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A numbered normative statement of one spec, such as `MQTT-3.3.1-4` of 5.0. The two specs
/// reuse ids for different statements, so the id is meaningful only with its spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatementId {
    spec: Spec,
    id: &'static str,
}

impl StatementId {
    const fn new(spec: Spec, id: &'static str) -> Self {
        Self { spec, id }
    }

    /// The spec that numbers the statement.
    pub const fn spec(self) -> Spec {
        self.spec
    }

    /// The id as the spec prints it, e.g. `MQTT-3.3.1-4`.
    pub const fn id(self) -> &'static str {
        self.id
    }
}

/// `[MQTT-3.3.1-4 v5.0]`.
impl fmt::Display for StatementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} v{}]", self.id, self.spec)
    }
}

/// A section of one spec, such as 3.15.2.2.2 of 5.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Section {
    spec: Spec,
    number: &'static str,
}

impl Section {
    const fn new(spec: Spec, number: &'static str) -> Self {
        Self { spec, number }
    }

    /// The spec.
    pub const fn spec(self) -> Spec {
        self.spec
    }

    /// The section number, e.g. `3.15.2.2.2`.
    pub const fn number(self) -> &'static str {
        self.number
    }
}

/// `MQTT 5.0 section 3.15.2.2.2`.
impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MQTT {} section {}", self.spec, self.number)
    }
}

/// Why a topic name or topic filter is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// Topic names and filters are at least one character long [MQTT-4.7.3-1 v3.1.1 v5.0].
    #[error("topic is empty")]
    Empty,
    /// Topic names and filters encode to at most 65,535 bytes [MQTT-4.7.3-3 v3.1.1 v5.0].
    #[error("topic is longer than 65535 bytes")]
    TooLong,
    /// Topic names and filters never contain U+0000 [MQTT-4.7.3-2 v3.1.1 v5.0].
    #[error("topic contains U+0000")]
    NullCharacter,
    /// A topic name contains `+` or `#` [MQTT-4.7.1-1 v3.1.1], [MQTT-4.7.0-1 v5.0]; in a
    /// PUBLISH also [MQTT-3.3.2-2 v3.1.1 v5.0].
    #[error("topic name contains a wildcard")]
    WildcardInName,
    /// `#` is not alone or after `/`, or is not the last character [MQTT-4.7.1-2 v3.1.1],
    /// [MQTT-4.7.1-1 v5.0].
    #[error("misplaced '#' in topic filter")]
    MisplacedMultiLevelWildcard,
    /// `+` does not fill a whole level [MQTT-4.7.1-3 v3.1.1], [MQTT-4.7.1-2 v5.0].
    #[error("'+' does not fill a whole topic level")]
    MisplacedSingleLevelWildcard,
    /// A `$share/` filter whose share name is empty [MQTT-4.8.2-1 v5.0].
    #[error("shared subscription with an empty share name")]
    EmptyShareName,
    /// A `$share/` filter whose share name holds `+` or `#`, or is not followed by `/` and a
    /// filter [MQTT-4.8.2-2 v5.0].
    #[error("ill-formed shared subscription")]
    InvalidShareName,
}

impl TopicError {
    /// The numbered statement this error breaks in `spec`, if that spec numbers the rule.
    pub const fn statement(self, spec: Spec) -> Option<StatementId> {
        use Spec::*;
        let id = match (self, spec) {
            (Self::Empty, _) => "MQTT-4.7.3-1",
            (Self::TooLong, _) => "MQTT-4.7.3-3",
            (Self::NullCharacter, _) => "MQTT-4.7.3-2",
            (Self::WildcardInName, V3_1_1) => "MQTT-4.7.1-1",
            (Self::WildcardInName, V5) => "MQTT-4.7.0-1",
            (Self::MisplacedMultiLevelWildcard, V3_1_1) => "MQTT-4.7.1-2",
            (Self::MisplacedMultiLevelWildcard, V5) => "MQTT-4.7.1-1",
            (Self::MisplacedSingleLevelWildcard, V3_1_1) => "MQTT-4.7.1-3",
            (Self::MisplacedSingleLevelWildcard, V5) => "MQTT-4.7.1-2",
            // 3.1.1 has no shared subscriptions.
            (Self::EmptyShareName | Self::InvalidShareName, V3_1_1) => return None,
            (Self::EmptyShareName, V5) => "MQTT-4.8.2-1",
            (Self::InvalidShareName, V5) => "MQTT-4.8.2-2",
        };
        Some(StatementId::new(spec, id))
    }

    /// The section that states the rule in `spec`.
    pub const fn section(self, spec: Spec) -> Section {
        Section::new(
            spec,
            match (self, spec) {
                (Self::Empty | Self::TooLong | Self::NullCharacter, _) => "4.7.3",
                (Self::WildcardInName, Spec::V5) => "4.7",
                (Self::EmptyShareName | Self::InvalidShareName, _) => "4.8.2",
                _ => "4.7.1",
            },
        )
    }
}

/// Why a UTF-8 encoded string is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StringError {
    /// Not well-formed UTF-8, or contains surrogates [MQTT-1.5.3-1 v3.1.1], [MQTT-1.5.4-1 v5.0].
    #[error("ill-formed UTF-8")]
    InvalidUtf8,
    /// Contains U+0000 [MQTT-1.5.3-2 v3.1.1], [MQTT-1.5.4-2 v5.0].
    #[error("string contains U+0000")]
    NullCharacter,
    /// Longer than the 65,535 bytes a two-byte length prefix can express.
    #[error("string is longer than 65535 bytes")]
    TooLong,
}

impl StringError {
    /// The numbered statement this error breaks in `spec`, if that spec numbers the rule.
    pub const fn statement(self, spec: Spec) -> Option<StatementId> {
        let id = match (self, spec) {
            (Self::InvalidUtf8, Spec::V3_1_1) => "MQTT-1.5.3-1",
            (Self::InvalidUtf8, Spec::V5) => "MQTT-1.5.4-1",
            (Self::NullCharacter, Spec::V3_1_1) => "MQTT-1.5.3-2",
            (Self::NullCharacter, Spec::V5) => "MQTT-1.5.4-2",
            (Self::TooLong, _) => return None,
        };
        Some(StatementId::new(spec, id))
    }

    /// The section that states the rule in `spec`.
    pub const fn section(self, spec: Spec) -> Section {
        Section::new(
            spec,
            match spec {
                Spec::V3_1_1 => "1.5.3",
                Spec::V5 => "1.5.4",
            },
        )
    }
}

/// What is wrong with bytes from the peer: the kind of a [`DecodeError`]. Each kind is a
/// protocol violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The packet, fixed header included, is larger than the configured maximum.
    PacketTooLarge {
        /// Size the fixed header declares, in bytes.
        size: usize,
        /// Configured maximum, in bytes.
        max: usize,
    },
    /// The remaining length takes more than four bytes, or is not in its shortest form
    /// [MQTT-1.5.5-1 v5.0].
    MalformedVarInt,
    /// Packet type 0, or 15 (AUTH) before 5.0.
    InvalidPacketType(u8),
    /// Reserved fixed-header flag bits are not as the spec lists them [MQTT-2.2.2-1 v3.1.1],
    /// [MQTT-2.1.3-1 v5.0].
    InvalidFlags {
        /// The packet type.
        packet: PacketType,
        /// The low nibble of the first byte.
        flags: u8,
    },
    /// PUBLISH with both QoS bits set [MQTT-3.3.1-4 v3.1.1 v5.0].
    InvalidQoS,
    /// DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2 v3.1.1 v5.0].
    DupOnQoS0,
    /// A packet identifier of zero [MQTT-2.3.1-1 v3.1.1].
    ZeroPacketId,
    /// A field runs past the end the fixed header declared.
    Truncated,
    /// Bytes left over after the last field of the packet.
    TrailingBytes(usize),
    /// An ill-formed UTF-8 encoded string.
    InvalidString(StringError),
    /// An ill-formed topic name or filter.
    InvalidTopic(TopicError),
    /// A 5.0 topic name is empty without a topic alias standing in for it.
    EmptyTopicWithoutAlias,
    /// CONNECT's protocol name is neither `MQTT` nor `MQIsdp` [MQTT-3.1.2-1 v5.0].
    InvalidProtocolName,
    /// CONNECT's protocol level is not 3, 4 or 5, or does not match the name.
    UnsupportedProtocolLevel(u8),
    /// CONNECT flags break a rule: reserved bit set [MQTT-3.1.2-3 v3.1.1 v5.0], will QoS/retain
    /// without will [MQTT-3.1.2-13 v3.1.1], [MQTT-3.1.2-15 v3.1.1], [MQTT-3.1.2-11 v5.0],
    /// [MQTT-3.1.2-13 v5.0], will QoS 3 [MQTT-3.1.2-14 v3.1.1], [MQTT-3.1.2-12 v5.0], password
    /// without user name before 5.0 [MQTT-3.1.2-22 v3.1.1]. [`DecodeError::statement`] tells
    /// which from the flags.
    InvalidConnectFlags(u8),
    /// CONNACK acknowledge flags bits 7..1 are not zero [MQTT-3.2.2-1 v5.0].
    InvalidConnAckFlags(u8),
    /// A reason code (or 3.1.1 return code) not defined for this packet.
    InvalidReasonCode {
        /// The packet type.
        packet: PacketType,
        /// The code received.
        code: u8,
    },
    /// A property identifier the spec does not define.
    UnknownProperty(u32),
    /// A property that this packet may not carry.
    PropertyNotAllowed {
        /// The packet type (CONNECT for will properties).
        packet: PacketType,
        /// The property.
        property: PropertyId,
    },
    /// A property that may appear once appears twice.
    DuplicateProperty(PropertyId),
    /// A property value out of its range (e.g. Receive Maximum 0, Topic Alias 0
    /// [MQTT-3.3.2-8 v5.0], a boolean property other than 0 or 1).
    InvalidPropertyValue(PropertyId),
    /// SUBSCRIBE options with reserved bits set or QoS 3 [MQTT-3.8.3-4 v3.1.1],
    /// [MQTT-3.8.3-5 v5.0], or retain handling 3.
    InvalidSubscriptionOptions(u8),
    /// No Local on a shared subscription [MQTT-3.8.3-4 v5.0].
    NoLocalOnSharedSubscription,
    /// SUBSCRIBE or UNSUBSCRIBE without any topic filter [MQTT-3.8.3-3 v3.1.1],
    /// [MQTT-3.8.3-2 v5.0], [MQTT-3.10.3-2 v3.1.1 v5.0].
    NoTopicFilters {
        /// SUBSCRIBE or UNSUBSCRIBE.
        packet: PacketType,
    },
    /// A 5.0 CONNECT with Authentication Data but no Authentication Method (5.0 section
    /// 3.1.2.11.10).
    AuthenticationDataWithoutMethod,
    /// A 5.0 AUTH continuing or starting an exchange (reason 0x18 or 0x19) without an
    /// Authentication Method (5.0 section 3.15.2.2.2).
    MissingAuthenticationMethod,
}

impl From<StringError> for DecodeErrorKind {
    fn from(e: StringError) -> Self {
        Self::InvalidString(e)
    }
}

impl From<TopicError> for DecodeErrorKind {
    fn from(e: TopicError) -> Self {
        Self::InvalidTopic(e)
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::PacketTooLarge { size, max } => {
                write!(f, "packet of {size} bytes exceeds the maximum of {max}")
            }
            Self::MalformedVarInt => f.write_str("malformed variable byte integer"),
            Self::InvalidPacketType(t) => write!(f, "invalid packet type {t}"),
            Self::InvalidFlags { packet, flags } => {
                write!(f, "invalid fixed header flags {flags:#06b} for {packet:?}")
            }
            Self::InvalidQoS => f.write_str("QoS 3"),
            Self::DupOnQoS0 => f.write_str("DUP set on a QoS 0 PUBLISH"),
            Self::ZeroPacketId => f.write_str("packet identifier 0"),
            Self::Truncated => f.write_str("packet is shorter than its fields"),
            Self::TrailingBytes(n) => write!(f, "{n} trailing bytes after the packet"),
            Self::InvalidString(e) => fmt::Display::fmt(&e, f),
            Self::InvalidTopic(e) => fmt::Display::fmt(&e, f),
            Self::EmptyTopicWithoutAlias => f.write_str("empty topic name without a topic alias"),
            Self::InvalidProtocolName => f.write_str("unknown protocol name"),
            Self::UnsupportedProtocolLevel(l) => write!(f, "unsupported protocol level {l}"),
            Self::InvalidConnectFlags(b) => write!(f, "invalid CONNECT flags {b:#010b}"),
            Self::InvalidConnAckFlags(b) => write!(f, "invalid CONNACK flags {b:#010b}"),
            Self::InvalidReasonCode { packet, code } => {
                write!(f, "reason code {code:#04x} is not defined for {packet:?}")
            }
            Self::UnknownProperty(id) => write!(f, "unknown property identifier {id:#04x}"),
            Self::PropertyNotAllowed { packet, property } => {
                write!(f, "property {property:?} is not allowed in {packet:?}")
            }
            Self::DuplicateProperty(p) => write!(f, "property {p:?} appears more than once"),
            Self::InvalidPropertyValue(p) => write!(f, "invalid value for property {p:?}"),
            Self::InvalidSubscriptionOptions(b) => {
                write!(f, "invalid subscription options {b:#010b}")
            }
            Self::NoLocalOnSharedSubscription => {
                f.write_str("No Local set on a shared subscription")
            }
            Self::NoTopicFilters { packet } => write!(f, "{packet:?} without topic filters"),
            Self::AuthenticationDataWithoutMethod => {
                f.write_str("Authentication Data without an Authentication Method")
            }
            Self::MissingAuthenticationMethod => {
                f.write_str("AUTH without an Authentication Method")
            }
        }
    }
}

const CONNECT_USERNAME: u8 = 0b1000_0000;
const CONNECT_PASSWORD: u8 = 0b0100_0000;
const CONNECT_WILL_RETAIN: u8 = 0b0010_0000;
const CONNECT_WILL_QOS: u8 = 0b0001_1000;
const CONNECT_WILL: u8 = 0b0000_0100;
const CONNECT_RESERVED: u8 = 0b0000_0001;

impl DecodeErrorKind {
    /// The numbered statement this error breaks in `spec`, if that spec numbers the rule.
    pub const fn statement(self, spec: Spec) -> Option<StatementId> {
        use Spec::*;
        let id = match (self, spec) {
            (Self::MalformedVarInt, V5) => "MQTT-1.5.5-1",
            (Self::InvalidFlags { .. }, V3_1_1) => "MQTT-2.2.2-1",
            (Self::InvalidFlags { .. }, V5) => "MQTT-2.1.3-1",
            (Self::InvalidQoS, _) => "MQTT-3.3.1-4",
            (Self::DupOnQoS0, _) => "MQTT-3.3.1-2",
            (Self::ZeroPacketId, V3_1_1) => "MQTT-2.3.1-1",
            (Self::InvalidString(e), _) => return e.statement(spec),
            (Self::InvalidTopic(e), _) => return e.statement(spec),
            (Self::InvalidProtocolName, V5) => "MQTT-3.1.2-1",
            (Self::InvalidConnectFlags(flags), _) => return connect_flags_statement(flags, spec),
            (Self::InvalidConnAckFlags(_), V5) => "MQTT-3.2.2-1",
            (Self::InvalidReasonCode { packet, .. }, _) => {
                return reason_code_statement(packet, spec)
            }
            (Self::InvalidPropertyValue(PropertyId::TopicAlias), V5) => "MQTT-3.3.2-8",
            (Self::InvalidSubscriptionOptions(_), V3_1_1) => "MQTT-3.8.3-4",
            (Self::InvalidSubscriptionOptions(byte), V5) => {
                // Reserved bits 7..6 are the numbered rule; QoS 3 and Retain Handling 3 are
                // protocol errors of section 3.8.3.1.
                if byte & 0b1100_0000 == 0 {
                    return None;
                }
                "MQTT-3.8.3-5"
            }
            (Self::NoLocalOnSharedSubscription, V5) => "MQTT-3.8.3-4",
            (
                Self::NoTopicFilters {
                    packet: PacketType::Subscribe,
                },
                V3_1_1,
            ) => "MQTT-3.8.3-3",
            (
                Self::NoTopicFilters {
                    packet: PacketType::Subscribe,
                },
                V5,
            ) => "MQTT-3.8.3-2",
            (Self::NoTopicFilters { .. }, _) => "MQTT-3.10.3-2",
            _ => return None,
        };
        Some(StatementId::new(spec, id))
    }

    /// The section that states the rule in `spec`.
    pub const fn section(self, spec: Spec) -> Section {
        use Spec::*;
        let number = match (self, spec) {
            (Self::PacketTooLarge { .. }, V3_1_1) => "2.2.3",
            (Self::PacketTooLarge { .. }, V5) => "3.1.2.11.4",
            (Self::MalformedVarInt, V3_1_1) => "2.2.3",
            (Self::MalformedVarInt, V5) => "1.5.5",
            (Self::InvalidPacketType(_), V3_1_1) => "2.2.1",
            (Self::InvalidPacketType(_), V5) => "2.1.2",
            (Self::InvalidFlags { .. }, V3_1_1) => "2.2.2",
            (Self::InvalidFlags { .. }, V5) => "2.1.3",
            (Self::InvalidQoS | Self::DupOnQoS0, _) => "3.3.1",
            (Self::ZeroPacketId, V3_1_1) => "2.3.1",
            (Self::ZeroPacketId, V5) => "2.2.1",
            (Self::Truncated | Self::TrailingBytes(_), V3_1_1) => "2.2.3",
            (Self::Truncated | Self::TrailingBytes(_), V5) => "2.1.4",
            (Self::InvalidString(e), _) => return e.section(spec),
            (Self::InvalidTopic(e), _) => return e.section(spec),
            (Self::EmptyTopicWithoutAlias, _) => "3.3.2.1",
            (Self::InvalidProtocolName, _) => "3.1.2.1",
            (Self::UnsupportedProtocolLevel(_), _) => "3.1.2.2",
            (Self::InvalidConnectFlags(_), _) => "3.1.2",
            (Self::InvalidConnAckFlags(_), _) => "3.2.2.1",
            (Self::InvalidReasonCode { packet, .. }, _) => reason_code_section(packet, spec),
            (Self::InvalidPropertyValue(PropertyId::TopicAlias), V5) => "3.3.2.3.4",
            (
                Self::UnknownProperty(_)
                | Self::PropertyNotAllowed { .. }
                | Self::DuplicateProperty(_)
                | Self::InvalidPropertyValue(_),
                _,
            ) => "2.2.2.2",
            (Self::InvalidSubscriptionOptions(_), V3_1_1) => "3.8.3.1",
            (Self::InvalidSubscriptionOptions(_) | Self::NoLocalOnSharedSubscription, V5) => {
                "3.8.3.1"
            }
            (Self::NoLocalOnSharedSubscription, V3_1_1) => "3.8.3",
            (
                Self::NoTopicFilters {
                    packet: PacketType::Subscribe,
                },
                _,
            ) => "3.8.3",
            (Self::NoTopicFilters { .. }, _) => "3.10.3",
            (Self::AuthenticationDataWithoutMethod, _) => "3.1.2.11.10",
            (Self::MissingAuthenticationMethod, _) => "3.15.2.2.2",
        };
        Section::new(spec, number)
    }
}

/// Which CONNECT flag rule `flags` breaks, checked in the decoder's order.
const fn connect_flags_statement(flags: u8, spec: Spec) -> Option<StatementId> {
    let will = flags & CONNECT_WILL != 0;
    let will_qos = (flags & CONNECT_WILL_QOS) >> 3;
    let id = match spec {
        Spec::V3_1_1 => {
            if flags & CONNECT_RESERVED != 0 {
                "MQTT-3.1.2-3"
            } else if !will && will_qos != 0 {
                "MQTT-3.1.2-13"
            } else if !will && flags & CONNECT_WILL_RETAIN != 0 {
                "MQTT-3.1.2-15"
            } else if will_qos == 3 {
                "MQTT-3.1.2-14"
            } else if flags & CONNECT_PASSWORD != 0 && flags & CONNECT_USERNAME == 0 {
                "MQTT-3.1.2-22"
            } else {
                return None;
            }
        }
        Spec::V5 => {
            if flags & CONNECT_RESERVED != 0 {
                "MQTT-3.1.2-3"
            } else if !will && will_qos != 0 {
                "MQTT-3.1.2-11"
            } else if !will && flags & CONNECT_WILL_RETAIN != 0 {
                "MQTT-3.1.2-13"
            } else if will_qos == 3 {
                "MQTT-3.1.2-12"
            } else {
                return None;
            }
        }
    };
    Some(StatementId::new(spec, id))
}

/// The statement listing the reason codes of `packet`.
const fn reason_code_statement(packet: PacketType, spec: Spec) -> Option<StatementId> {
    let id = match (packet, spec) {
        (PacketType::SubAck, Spec::V3_1_1) => "MQTT-3.9.3-2",
        (_, Spec::V3_1_1) => return None,
        (PacketType::ConnAck, _) => "MQTT-3.2.2-8",
        (PacketType::PubAck, _) => "MQTT-3.4.2-1",
        (PacketType::PubRec, _) => "MQTT-3.5.2-1",
        (PacketType::PubRel, _) => "MQTT-3.6.2-1",
        (PacketType::PubComp, _) => "MQTT-3.7.2-1",
        (PacketType::SubAck, _) => "MQTT-3.9.3-2",
        (PacketType::UnsubAck, _) => "MQTT-3.11.3-2",
        (PacketType::Disconnect, _) => "MQTT-3.14.2-1",
        (PacketType::Auth, _) => "MQTT-3.15.2-1",
        _ => return None,
    };
    Some(StatementId::new(spec, id))
}

/// The section listing the reason codes of `packet`.
const fn reason_code_section(packet: PacketType, spec: Spec) -> &'static str {
    match (packet, spec) {
        (PacketType::ConnAck, Spec::V3_1_1) => "3.2.2.3",
        (PacketType::SubAck, Spec::V3_1_1) => "3.9.3",
        (PacketType::ConnAck, _) => "3.2.2.2",
        (PacketType::PubAck, _) => "3.4.2.1",
        (PacketType::PubRec, _) => "3.5.2.1",
        (PacketType::PubRel, _) => "3.6.2.1",
        (PacketType::PubComp, _) => "3.7.2.1",
        (PacketType::SubAck, _) => "3.9.3",
        (PacketType::UnsubAck, _) => "3.11.3",
        (PacketType::Disconnect, _) => "3.14.2.1",
        (PacketType::Auth, _) => "3.15.2.1",
        _ => "2.4",
    }
}

/// Why bytes from the peer are not a valid packet, in the protocol version of the connection.
///
/// [`kind`](Self::kind) tells what is wrong; [`statement`](Self::statement) names the numbered
/// rule of that version's spec when there is one, and [`section`](Self::section) the section
/// that states the rule. `Display` shows the kind and the citation:
///
/// ```
/// use bytes::BytesMut;
/// use mqtt_proto::{DecodeErrorKind, Decoder, ProtocolVersion, Spec};
///
/// // A PUBLISH with both QoS bits set.
/// let e = Decoder::new(ProtocolVersion::V5).decode(&mut BytesMut::from(&[0x36, 0x00][..]));
/// let e = e.unwrap_err();
/// assert_eq!(e.kind(), DecodeErrorKind::InvalidQoS);
/// let statement = e.statement().unwrap();
/// assert_eq!((statement.spec(), statement.id()), (Spec::V5, "MQTT-3.3.1-4"));
/// assert_eq!(e.to_string(), "QoS 3 [MQTT-3.3.1-4 v5.0]");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    kind: DecodeErrorKind,
    version: ProtocolVersion,
}

impl DecodeError {
    /// An error of `kind` on a connection speaking `version`.
    pub const fn new(kind: DecodeErrorKind, version: ProtocolVersion) -> Self {
        Self { kind, version }
    }

    /// What is wrong.
    pub const fn kind(&self) -> DecodeErrorKind {
        self.kind
    }

    /// The version the packet was decoded as.
    pub const fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The numbered normative statement the packet breaks, in the spec of the connection's
    /// version, if that spec numbers the rule.
    pub const fn statement(&self) -> Option<StatementId> {
        self.kind.statement(Spec::of(self.version))
    }

    /// The section of the connection's spec that states the rule.
    pub const fn section(&self) -> Section {
        self.kind.section(Spec::of(self.version))
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.statement() {
            Some(statement) => write!(f, "{} {statement}", self.kind),
            None => write!(f, "{} ({})", self.kind, self.section()),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}

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
    /// SUBSCRIBE or UNSUBSCRIBE without filters [MQTT-3.8.3-3 v3.1.1], [MQTT-3.8.3-2 v5.0],
    /// [MQTT-3.10.3-2 v3.1.1 v5.0].
    #[error("SUBSCRIBE/UNSUBSCRIBE without topic filters")]
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
    /// Authentication Data without an Authentication Method (5.0 section 3.1.2.11.10), or an
    /// AUTH continuing or starting an exchange without a method (5.0 section 3.15.2.2.2).
    #[error("authentication without an Authentication Method")]
    MissingAuthenticationMethod,
}
