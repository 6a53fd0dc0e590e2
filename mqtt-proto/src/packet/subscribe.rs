//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK (spec 3.8-3.11).

use crate::property_box::PropertyBox;
use alloc::vec::Vec;

use bytes::{BufMut, BytesMut};

use crate::append::append;
use crate::error::EncodeError;
use crate::primitives::{
    prefixed_len, put_fixed_header, put_prefixed, put_var_int, var_int_len, MAX_VAR_INT,
};
use crate::properties::{AckProperties, SubscribeProperties, UnsubscribeProperties};
use crate::reason::{SubAckReasonCode, UnsubAckReasonCode};
use crate::topic::TopicFilter;
use crate::types::PacketId;
use crate::{ProtocolVersion, QoS};

/// When the server sends retained messages for a new subscription (5.0 spec 3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum RetainHandling {
    /// Send retained messages at the time of the subscribe (0).
    #[default]
    SendAtSubscribe = 0,
    /// Send them only if the subscription did not exist (1).
    SendAtSubscribeIfNew = 1,
    /// Do not send them (2).
    DoNotSend = 2,
}

/// The options byte of one subscription (spec 3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SubscriptionOptions {
    /// Maximum QoS the server may deliver with.
    pub qos: QoS,
    /// 5.0: do not send the client its own publications.
    pub no_local: bool,
    /// 5.0: keep the RETAIN flag as published.
    pub retain_as_published: bool,
    /// 5.0: when to send retained messages.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options asking only for a QoS (all that 3.1.1 can express).
    pub fn qos(qos: QoS) -> Self {
        Self {
            qos,
            ..Self::default()
        }
    }

    fn to_byte(self, version: ProtocolVersion) -> Result<u8, EncodeError> {
        if !version.is_v5() && self.beyond_qos() {
            return Err(EncodeError::SubscriptionOptionsNotInVersion(version));
        }
        Ok(self.bits())
    }

    /// Whether any option beyond the QoS is set, which 3.1.1 cannot carry.
    #[inline(always)]
    fn beyond_qos(self) -> bool {
        u8::from(self.no_local) | u8::from(self.retain_as_published) | self.retain_handling as u8
            != 0
    }

    /// The byte, whether or not the version can carry what is beyond the QoS (bits 2 to 5).
    #[inline(always)]
    fn bits(self) -> u8 {
        self.qos as u8
            | u8::from(self.no_local) << 2
            | u8::from(self.retain_as_published) << 3
            | (self.retain_handling as u8) << 4
    }
}

/// One topic filter of a SUBSCRIBE with its options.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Subscription {
    /// The filter.
    pub filter: TopicFilter,
    /// Its options.
    pub options: SubscriptionOptions,
}

impl Subscription {
    /// A subscription to `filter` at `qos` with default options.
    pub fn new(filter: TopicFilter, qos: QoS) -> Self {
        Self {
            filter,
            options: SubscriptionOptions::qos(qos),
        }
    }
}

/// SUBSCRIBE: asks for one or more subscriptions (spec 3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Subscribe {
    /// Identifier the SUBACK will echo.
    pub packet_id: PacketId,
    /// 5.0 properties.
    pub properties: SubscribeProperties,
    /// At least one subscription [MQTT-3.8.3-3 v3.1.1] / [MQTT-3.8.3-2 v5.0].
    pub filters: Vec<Subscription>,
}

impl Subscribe {
    /// A SUBSCRIBE of `filters` (at least one to be encodable), without 5.0 properties.
    ///
    /// ```
    /// use mqtt_proto::{PacketId, QoS, Subscribe, Subscription, TopicFilter};
    /// let id = PacketId::new(1).unwrap();
    /// let subscribe = Subscribe::new(id, vec![Subscription::new(TopicFilter::new("a/#")?, QoS::AtLeastOnce)]);
    /// assert_eq!(subscribe.filters.len(), 1);
    /// # Ok::<(), mqtt_proto::TopicError>(())
    /// ```
    pub fn new(packet_id: PacketId, filters: Vec<Subscription>) -> Self {
        Self {
            packet_id,
            properties: SubscribeProperties::default(),
            filters,
        }
    }

    /// Sets the 5.0 properties (subscription identifier, user properties).
    pub fn properties(mut self, properties: SubscribeProperties) -> Self {
        self.properties = properties;
        self
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::NoTopicFilters);
        }
        let mut len = 2 + props_len(version, self.properties.is_empty(), || {
            self.properties.encoded_len()
        })?;
        for sub in &self.filters {
            sub.options.to_byte(version)?;
            if sub.options.no_local && sub.filter.is_shared() {
                return Err(EncodeError::NoLocalOnSharedSubscription);
            }
            len += prefixed_len(sub.filter.len())? + 1;
        }
        Ok(len)
    }

    /// Encodes a SUBSCRIBE without properties in its own layout: each filter in one append, its
    /// length, its bytes and its options byte. `None` for a SUBSCRIBE with properties, or one
    /// to refuse, which the general path encodes or refuses (it checks what
    /// [`Subscribe::body_len`] checks, in its order).
    #[inline(always)]
    pub(crate) fn encode_plain(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Option<Result<usize, EncodeError>> {
        if !self.properties.is_empty() {
            return None;
        }
        self.encode_without_properties(version, buf).map(Ok)
    }

    // Out of line, so that `Packet::encode`, which it would be inlined into, stays short on the
    // fixed-size packets' path; its `Option<usize>` comes back in registers, not through memory
    // (see `Connect::encode_without_properties`).
    #[inline(never)]
    fn encode_without_properties(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Option<usize> {
        if self.filters.is_empty() {
            return None;
        }
        let v5 = version.is_v5();
        let mut body = 2 + usize::from(v5);
        // One loop per version, so that neither checks what only the other needs: in 3.1.1
        // the options are the QoS alone, which makes the options byte the QoS. The loops sum
        // the lengths and branch once after, on what they gathered: options beyond the QoS in
        // 3.1.1, and a filter longer than a length prefix can say (which a `TopicFilter`
        // never is: the OR of lengths exceeds 0xFFFF only if one does); the general path then
        // names the first error, in `body_len`'s order. The 5.0 loop leaves No Local on a
        // shared subscription to it as it finds one.
        let mut longest = 0;
        let mut refused = false;
        if v5 {
            for sub in &self.filters {
                if sub.options.no_local && sub.filter.is_shared() {
                    return None;
                }
                longest |= sub.filter.len();
                body += sub.filter.len() + 3;
            }
        } else {
            for sub in &self.filters {
                refused |= sub.options.beyond_qos();
                longest |= sub.filter.len();
                body += sub.filter.len() + 3;
            }
        }
        if refused || longest > usize::from(u16::MAX) || body > MAX_VAR_INT as usize {
            return None;
        }
        let total = 1 + var_int_len(body) + body;
        let [id_hi, id_lo] = self.packet_id.get().to_be_bytes();
        let written = append(buf, total, |out| {
            put_fixed_header(out, 0x82, body);
            if v5 {
                // The empty property block (length 0) between identifier and filters.
                out.array([id_hi, id_lo, 0]);
                for sub in &self.filters {
                    out.prefixed_then(sub.filter.as_bytes(), sub.options.bits());
                }
            } else {
                // In 3.1.1 the options byte is the QoS, as checked above.
                out.array([id_hi, id_lo]);
                for sub in &self.filters {
                    out.prefixed_then(sub.filter.as_bytes(), sub.options.qos as u8);
                }
            }
        });
        if !written {
            // Not reached: `total` is what the writes above take.
            buf.reserve(total);
            buf.put_u8(0x82);
            put_var_int(buf, body);
            self.write(version, buf);
        }
        Some(total)
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.write(buf);
        }
        for sub in &self.filters {
            put_prefixed(buf, sub.filter.as_bytes());
            buf.put_u8(sub.options.to_byte(version).unwrap_or(0));
        }
    }
}

/// Size of a 5.0 property block, or an error if properties are set before 5.0.
fn props_len(
    version: ProtocolVersion,
    is_empty: bool,
    len: impl FnOnce() -> Result<usize, EncodeError>,
) -> Result<usize, EncodeError> {
    if version.is_v5() {
        len()
    } else if is_empty {
        Ok(0)
    } else {
        Err(EncodeError::PropertiesNotInVersion(version))
    }
}

/// SUBACK: one result per filter of a SUBSCRIBE (spec 3.9).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SubAck {
    /// Identifier of the SUBSCRIBE answered.
    pub packet_id: PacketId,
    /// 5.0 properties.
    pub properties: PropertyBox<AckProperties>,
    /// One code per filter, in the SUBSCRIBE's order.
    pub reason_codes: Vec<SubAckReasonCode>,
}

impl SubAck {
    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if !version.is_v5() {
            if let Some(code) = self.reason_codes.iter().find(|c| !c.in_v3()) {
                return Err(EncodeError::ReasonCodeNotInVersion {
                    code: code.as_u8(),
                    version,
                });
            }
        }
        Ok(2 + props_len(version, self.properties.is_empty(), || {
            self.properties.encoded_len()
        })? + self.reason_codes.len())
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.write(buf);
        }
        for code in &self.reason_codes {
            buf.put_u8(code.as_u8());
        }
    }
}

/// UNSUBSCRIBE: removes one or more subscriptions (spec 3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Unsubscribe {
    /// Identifier the UNSUBACK will echo.
    pub packet_id: PacketId,
    /// 5.0 properties.
    pub properties: UnsubscribeProperties,
    /// At least one filter [MQTT-3.10.3-2 v3.1.1 v5.0].
    pub filters: Vec<TopicFilter>,
}

impl Unsubscribe {
    /// An UNSUBSCRIBE of `filters` (at least one to be encodable), without 5.0 properties.
    pub fn new(packet_id: PacketId, filters: Vec<TopicFilter>) -> Self {
        Self {
            packet_id,
            properties: UnsubscribeProperties::default(),
            filters,
        }
    }

    /// Sets the 5.0 properties (user properties).
    pub fn properties(mut self, properties: UnsubscribeProperties) -> Self {
        self.properties = properties;
        self
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::NoTopicFilters);
        }
        let mut len = 2 + props_len(version, self.properties.is_empty(), || {
            self.properties.encoded_len()
        })?;
        for filter in &self.filters {
            len += prefixed_len(filter.len())?;
        }
        Ok(len)
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.write(buf);
        }
        for filter in &self.filters {
            put_prefixed(buf, filter.as_bytes());
        }
    }
}

/// UNSUBACK: answers UNSUBSCRIBE (spec 3.11).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct UnsubAck {
    /// Identifier of the UNSUBSCRIBE answered.
    pub packet_id: PacketId,
    /// 5.0 properties.
    pub properties: PropertyBox<AckProperties>,
    /// 5.0: one code per filter. Empty before 5.0, which has no codes.
    pub reason_codes: Vec<UnsubAckReasonCode>,
}

impl UnsubAck {
    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if version.is_v5() {
            return Ok(2 + self.properties.encoded_len()? + self.reason_codes.len());
        }
        if let Some(code) = self.reason_codes.first() {
            return Err(EncodeError::ReasonCodeNotInVersion {
                code: code.as_u8(),
                version,
            });
        }
        props_len(version, self.properties.is_empty(), || Ok(0))?;
        Ok(2)
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.write(buf);
            for code in &self.reason_codes {
                buf.put_u8(code.as_u8());
            }
        }
    }
}
