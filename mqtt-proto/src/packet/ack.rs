//! PUBACK, PUBREC, PUBREL and PUBCOMP (spec 3.4-3.7): a packet identifier and, in 5.0, an
//! optional reason code and properties. One macro defines all four so they cannot drift.

use crate::property_box::PropertyBox;
use bytes::{BufMut, BytesMut};

use crate::error::EncodeError;
use crate::packet::PacketType;
use crate::properties::AckProperties;
use crate::reason::{PubAckReasonCode, PubRelReasonCode};
use crate::types::PacketId;
use crate::ProtocolVersion;

macro_rules! ack_packet {
    ($(#[$meta:meta])* $name:ident, $code:ident, $ty:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        pub struct $name {
            /// Identifier of the PUBLISH flow this packet belongs to [MQTT-2.3.1-6 v3.1.1].
            pub packet_id: PacketId,
            /// The outcome (5.0); always success before 5.0.
            pub reason_code: $code,
            /// 5.0 properties.
            pub properties: PropertyBox<AckProperties>,
        }

        impl $name {
            /// A successful ack without properties.
            pub fn new(packet_id: PacketId) -> Self {
                Self {
                    packet_id,
                    reason_code: $code::Success,
                    properties: PropertyBox::EMPTY,
                }
            }

            pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
                if !version.is_v5() {
                    if self.reason_code != $code::Success {
                        return Err(EncodeError::ReasonCodeNotInVersion {
                            code: self.reason_code.as_u8(),
                            version,
                        });
                    }
                    if !self.properties.is_empty() {
                        return Err(EncodeError::PropertiesNotInVersion(version));
                    }
                    return Ok(2);
                }
                // Spec 3.4.2.1: the reason code may be left out for success without
                // properties, and the property length when there are no properties.
                if self.properties.is_empty() {
                    Ok(if self.reason_code == $code::Success { 2 } else { 3 })
                } else {
                    Ok(3 + self.properties.encoded_len()?)
                }
            }

            pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut BytesMut) {
                buf.put_u16(self.packet_id.get());
                if !version.is_v5() {
                    return;
                }
                if self.properties.is_empty() {
                    if self.reason_code != $code::Success {
                        buf.put_u8(self.reason_code.as_u8());
                    }
                } else {
                    buf.put_u8(self.reason_code.as_u8());
                    self.properties.write(buf);
                }
            }

            /// The whole encoded packet in its common four-byte form (success, no
            /// properties), which every version shares.
            #[inline]
            pub(crate) fn short_form(&self) -> Option<[u8; 4]> {
                if self.reason_code == $code::Success && self.properties.is_empty() {
                    let [hi, lo] = self.packet_id.get().to_be_bytes();
                    let first = ((PacketType::$ty as u8) << 4) | PacketType::$ty.required_flags();
                    Some([first, 2, hi, lo])
                } else {
                    None
                }
            }

        }
    };
}

ack_packet!(
    /// PUBACK: answers a QoS 1 PUBLISH (spec 3.4).
    PubAck,
    PubAckReasonCode,
    PubAck
);
ack_packet!(
    /// PUBREC: first answer to a QoS 2 PUBLISH (spec 3.5).
    PubRec,
    PubAckReasonCode,
    PubRec
);
ack_packet!(
    /// PUBREL: answers PUBREC (spec 3.6).
    PubRel,
    PubRelReasonCode,
    PubRel
);
ack_packet!(
    /// PUBCOMP: answers PUBREL, completing a QoS 2 flow (spec 3.7).
    PubComp,
    PubRelReasonCode,
    PubComp
);
