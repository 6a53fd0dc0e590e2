//! CONNECT (spec 3.1) with its will message, and CONNACK (spec 3.2).

use bytes::{BufMut, Bytes, BytesMut};

use crate::append::append;
use crate::error::EncodeError;
use crate::primitives::{
    len16, prefixed_len, put_fixed_header, put_prefixed, put_var_int, var_int_len, MAX_VAR_INT,
};
use crate::properties::{ConnAckProperties, ConnectProperties, WillProperties};
use crate::reason::ConnectReasonCode;
use crate::segments::Segments;
use crate::string::MqttString;
use crate::topic::TopicName;
use crate::PropertyBox;
use crate::{ProtocolVersion, QoS, SPLIT_PAYLOAD_MIN};

const USERNAME: u8 = 0b1000_0000;
const PASSWORD: u8 = 0b0100_0000;
const WILL_RETAIN: u8 = 0b0010_0000;
const WILL_QOS_SHIFT: u8 = 3;
const WILL: u8 = 0b0000_0100;
const CLEAN_START: u8 = 0b0000_0010;

/// `bytes` with its two-byte length (which [`Connect::body_len`] checked), handed to `out`
/// uncopied if it holds [`SPLIT_PAYLOAD_MIN`] bytes or more.
fn put_field(out: &mut impl Segments, bytes: &Bytes) {
    let buf = out.buf();
    buf.put_slice(&len16(bytes.len()));
    if bytes.len() >= SPLIT_PAYLOAD_MIN {
        out.push(bytes.clone());
    } else {
        buf.extend_from_slice(bytes);
    }
}

/// A string field into `out` as [`put_field`] writes one: a string held in place is far
/// shorter than a field pushed whole.
fn put_string(out: &mut impl Segments, s: &crate::MqttString) {
    match s.shared_bytes() {
        Some(bytes) => put_field(out, bytes),
        None => put_prefixed(out.buf(), s.as_bytes()),
    }
}

/// The general encoder's single buffer as a [`Segments`] sink: what is pushed is copied.
struct Copying<'a>(&'a mut BytesMut);

impl Segments for Copying<'_> {
    fn buf(&mut self) -> &mut BytesMut {
        self.0
    }

    fn push(&mut self, bytes: Bytes) {
        self.0.extend_from_slice(&bytes);
    }
}

/// CONNECT: the first packet a client sends (spec 3.1).
///
/// The packet names its own protocol version, which decides its layout when encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Connect {
    /// The protocol version the client asks for.
    pub protocol: ProtocolVersion,
    /// Clean Session (3.1, 3.1.1) or Clean Start (5.0).
    pub clean_start: bool,
    /// Keep alive interval in seconds; 0 turns keep alive off.
    pub keep_alive: u16,
    /// The client identifier; may be empty (spec 3.1.3.1).
    pub client_id: MqttString,
    /// The will message, published by the server if the client goes away abnormally.
    pub will: Option<LastWill>,
    /// The user name.
    pub username: Option<MqttString>,
    /// The password: binary data.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arbitrary_support::option_bytes))]
    pub password: Option<Bytes>,
    /// 5.0 properties, allocated only when one is set.
    pub properties: PropertyBox<ConnectProperties>,
}

/// The will message in CONNECT (spec 3.1.2.5, 3.1.3.2-3.1.3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct LastWill {
    /// The topic the will is published to.
    pub topic: TopicName,
    /// The will payload.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arbitrary_support::bytes))]
    pub payload: Bytes,
    /// QoS of the will.
    pub qos: QoS,
    /// Whether the will is retained.
    pub retain: bool,
    /// 5.0 will properties, allocated only when one is set.
    pub properties: PropertyBox<WillProperties>,
}

impl LastWill {
    /// A will of `payload` to `topic` at `qos`, not retained, without 5.0 properties.
    ///
    /// ```
    /// use mqtt_proto::{LastWill, QoS, TopicName};
    /// let will = LastWill::new(TopicName::new("clients/17/status")?, "offline", QoS::AtLeastOnce)
    ///     .retain(true);
    /// assert!(will.retain && will.properties.is_empty());
    /// # Ok::<(), mqtt_proto::TopicError>(())
    /// ```
    pub fn new(topic: TopicName, payload: impl Into<Bytes>, qos: QoS) -> Self {
        Self {
            topic,
            payload: payload.into(),
            qos,
            retain: false,
            properties: PropertyBox::EMPTY,
        }
    }

    /// Sets whether the server retains the will.
    pub fn retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }

    /// Sets the 5.0 will properties (delay, expiry, content type ...).
    pub fn properties(mut self, properties: WillProperties) -> Self {
        self.properties = properties.into();
        self
    }
}

impl Connect {
    /// A CONNECT with a clean session, no will and no credentials.
    pub fn new(protocol: ProtocolVersion, client_id: MqttString, keep_alive: u16) -> Self {
        Self {
            protocol,
            clean_start: true,
            keep_alive,
            client_id,
            will: None,
            username: None,
            password: None,
            properties: PropertyBox::EMPTY,
        }
    }

    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.username.is_some() {
            flags |= USERNAME;
        }
        if self.password.is_some() {
            flags |= PASSWORD;
        }
        if let Some(will) = &self.will {
            flags |= WILL | ((will.qos as u8) << WILL_QOS_SHIFT);
            if will.retain {
                flags |= WILL_RETAIN;
            }
        }
        if self.clean_start {
            flags |= CLEAN_START;
        }
        flags
    }

    pub(crate) fn body_len(&self) -> Result<usize, EncodeError> {
        let v5 = self.protocol.is_v5();
        if !v5 {
            if !self.properties.is_empty()
                || self.will.as_ref().is_some_and(|w| !w.properties.is_empty())
            {
                return Err(EncodeError::PropertiesNotInVersion(self.protocol));
            }
            if self.password.is_some() && self.username.is_none() {
                // [MQTT-3.1.2-22 v3.1.1]
                return Err(EncodeError::PasswordWithoutUsername);
            }
        }
        if v5
            && self.properties.authentication_data.is_some()
            && self.properties.authentication_method.is_none()
        {
            // 5.0 section 3.1.2.11.10
            return Err(EncodeError::MissingAuthenticationMethod);
        }
        let mut len = prefixed_len(self.protocol.protocol_name().len())? + 1 + 1 + 2;
        if v5 {
            len += self.properties.encoded_len()?;
        }
        len += prefixed_len(self.client_id.len())?;
        if let Some(will) = &self.will {
            if v5 {
                len += will.properties.encoded_len()?;
            }
            len += prefixed_len(will.topic.len())? + prefixed_len(will.payload.len())?;
        }
        if let Some(username) = &self.username {
            len += prefixed_len(username.len())?;
        }
        if let Some(password) = &self.password {
            len += prefixed_len(password.len())?;
        }
        Ok(len)
    }

    /// Encodes a CONNECT that carries no property (every 3.1 and 3.1.1 one, and most 5.0
    /// ones) in its own layout: the variable header up to the client identifier's length in one
    /// append of a known size, then one copy per field. `None` for a CONNECT with properties,
    /// which takes the general path. Checks what [`Connect::body_len`] checks, in its order.
    ///
    /// With `vectored`, also `None` for a CONNECT with a field of [`SPLIT_PAYLOAD_MIN`] bytes
    /// or more, for [`Connect::encode_segments`] to hand over: found while sizing, where the
    /// OR of the fields' lengths reaches it exactly when one does (it is a power of two).
    #[inline(always)]
    pub(crate) fn encode_plain(
        &self,
        buf: &mut BytesMut,
        vectored: bool,
    ) -> Option<Result<usize, EncodeError>> {
        let will_props = self.will.as_ref().is_some_and(|w| !w.properties.is_empty());
        if will_props || !self.properties.is_empty() {
            return None;
        }
        self.encode_without_properties(buf, vectored).map(Ok)
    }

    // Out of line, so that `Packet::encode`, which it would be inlined into, stays short on the
    // fixed-size packets' path. It returns an `Option<usize>`, which comes back in two
    // registers: an `Option<Result<usize, EncodeError>>` came back through memory, written as a
    // byte and a word and read as one 16-byte load, which stalled on the store forwarding
    // (`perf annotate`: a third of the time of the CONNECT encode row). A CONNECT to refuse is
    // left to the general path, which names the error.
    #[inline(never)]
    fn encode_without_properties(&self, buf: &mut BytesMut, vectored: bool) -> Option<usize> {
        const _: () = assert!(SPLIT_PAYLOAD_MIN.is_power_of_two());
        let v5 = self.protocol.is_v5();
        let name = self.protocol.protocol_name();
        // Each string read once: finding a string's text takes a test of where it is held.
        let client_id = self.client_id.as_bytes();
        let will = self.will.as_ref().map(|w| (w.topic.as_bytes(), &w.payload));
        let username = self.username.as_ref().map(|u| u.as_bytes());
        let mut lengths = client_id.len();
        let mut body = 2 + name.len() + 4 + usize::from(v5) + 2 + client_id.len();
        if let Some((topic, payload)) = will {
            lengths |= topic.len() | payload.len();
            body += usize::from(v5) + 4 + topic.len() + payload.len();
        }
        if let Some(username) = username {
            lengths |= username.len();
            body += 2 + username.len();
        }
        if let Some(password) = &self.password {
            lengths |= password.len();
            body += 2 + password.len();
        }
        if vectored && lengths >= SPLIT_PAYLOAD_MIN {
            return None;
        }
        if lengths > usize::from(u16::MAX)
            || (!v5 && self.password.is_some() && self.username.is_none())
        {
            // [MQTT-3.1.2-22 v3.1.1], or a field too long for its length prefix (a binary
            // one: strings are never): named by the general sizing, in its order.
            return None;
        }
        // At most five fields of 65,537 bytes and 14 more: far below the remaining length's
        // limit, which needs no check here.
        let total = 1 + var_int_len(body) + body;
        let flags = self.flags();
        let [ka_hi, ka_lo] = self.keep_alive.to_be_bytes();
        let [id_hi, id_lo] = len16(client_id.len());
        let written = append(buf, total, |out| {
            put_fixed_header(out, 0x10, body);
            match self.protocol {
                ProtocolVersion::V3_1 => out.array([
                    0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, flags, ka_hi, ka_lo, id_hi, id_lo,
                ]),
                ProtocolVersion::V3_1_1 => out.array([
                    0, 4, b'M', b'Q', b'T', b'T', 4, flags, ka_hi, ka_lo, id_hi, id_lo,
                ]),
                // The empty property block (length 0) before the client identifier.
                ProtocolVersion::V5 => out.array([
                    0, 4, b'M', b'Q', b'T', b'T', 5, flags, ka_hi, ka_lo, 0, id_hi, id_lo,
                ]),
            }
            out.slice(client_id);
            if let Some((topic, payload)) = will {
                if v5 {
                    // The will's empty property block.
                    out.array([0]);
                }
                out.prefixed_slice(topic);
                out.prefixed_slice(payload);
            }
            if let Some(username) = username {
                out.prefixed_slice(username);
            }
            if let Some(password) = &self.password {
                out.prefixed_slice(password);
            }
        });
        if !written {
            // Not reached: `total` is what the writes above take.
            buf.reserve(total);
            buf.put_u8(0x10);
            put_var_int(buf, body);
            self.write(buf);
        }
        Some(total)
    }

    /// Whether a field is large enough for [`Packet::encode_vectored`](crate::Packet) to hand
    /// it over uncopied.
    pub(crate) fn has_large_field(&self) -> bool {
        let large = |len: usize| len >= SPLIT_PAYLOAD_MIN;
        large(self.client_id.len())
            || self
                .will
                .as_ref()
                .is_some_and(|w| large(w.topic.len()) || large(w.payload.len()))
            || self.username.as_ref().is_some_and(|u| large(u.len()))
            || self.password.as_ref().is_some_and(|p| large(p.len()))
    }

    /// The packet, sized and checked as the general encoder does, into `out`, with every field
    /// of [`SPLIT_PAYLOAD_MIN`] bytes or more handed over uncopied.
    pub(crate) fn encode_segments(&self, out: &mut impl Segments) -> Result<usize, EncodeError> {
        let body = self.body_len()?;
        if body > MAX_VAR_INT as usize {
            return Err(EncodeError::PacketTooLarge(body));
        }
        out.buf().put_u8(0x10);
        put_var_int(out.buf(), body);
        self.write_to(out);
        Ok(1 + var_int_len(body) + body)
    }

    /// The variable header and payload, every field copied into `buf`.
    pub(crate) fn write(&self, buf: &mut BytesMut) {
        self.write_to(&mut Copying(buf));
    }

    /// The variable header and payload into `out`, a field of [`SPLIT_PAYLOAD_MIN`] bytes or
    /// more pushed whole.
    fn write_to(&self, out: &mut impl Segments) {
        let v5 = self.protocol.is_v5();
        let buf = out.buf();
        put_prefixed(buf, self.protocol.protocol_name().as_bytes());
        buf.put_u8(self.protocol.level());
        buf.put_u8(self.flags());
        buf.put_u16(self.keep_alive);
        if v5 {
            self.properties.write(buf);
        }
        put_string(out, &self.client_id);
        if let Some(will) = &self.will {
            if v5 {
                will.properties.write(out.buf());
            }
            put_string(out, will.topic.as_mqtt_str());
            put_field(out, &will.payload);
        }
        if let Some(username) = &self.username {
            put_string(out, username);
        }
        if let Some(password) = &self.password {
            put_field(out, password);
        }
    }
}

/// CONNACK: the server's answer to CONNECT (spec 3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ConnAck {
    /// Whether the server resumed a session (3.1.1 and 5.0).
    pub session_present: bool,
    /// The outcome; 3.1.1 return codes map onto the 5.0 codes.
    pub reason_code: ConnectReasonCode,
    /// 5.0 properties.
    pub properties: ConnAckProperties,
}

impl ConnAck {
    /// A successful CONNACK without properties.
    pub fn accepted(session_present: bool) -> Self {
        Self {
            session_present,
            reason_code: ConnectReasonCode::Success,
            properties: ConnAckProperties::default(),
        }
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if version.is_v5() {
            Ok(2 + self.properties.encoded_len()?)
        } else {
            if !self.properties.is_empty() {
                return Err(EncodeError::PropertiesNotInVersion(version));
            }
            if self.reason_code.to_v3_return_code().is_none() {
                return Err(EncodeError::ReasonCodeNotInVersion {
                    code: self.reason_code.as_u8(),
                    version,
                });
            }
            Ok(2)
        }
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        buf.put_u8(u8::from(self.session_present));
        if version.is_v5() {
            buf.put_u8(self.reason_code.as_u8());
            self.properties.write(buf);
        } else {
            buf.put_u8(self.reason_code.to_v3_return_code().unwrap_or(0));
        }
    }
}
