//! DISCONNECT (spec 3.14) and AUTH (5.0 spec 3.15). PINGREQ/PINGRESP have no body and live
//! in `Packet` itself.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::packet::{expect_end, PacketType};
use crate::primitives::{self, fail, finish, PResult};
use crate::properties::{AuthProperties, DisconnectProperties};
use crate::reason::{AuthReasonCode, DisconnectReasonCode};
use crate::ProtocolVersion;

/// DISCONNECT: the last packet of a connection (spec 3.14). Before 5.0 it has no body and is
/// sent only by the client.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Disconnect {
    /// Why the connection closes (5.0).
    pub reason_code: DisconnectReasonCode,
    /// 5.0 properties.
    pub properties: DisconnectProperties,
}

// The reason-code macro serves enums without a natural default, so it cannot derive one.
#[allow(clippy::derivable_impls)]
impl Default for DisconnectReasonCode {
    fn default() -> Self {
        Self::NormalDisconnection
    }
}

impl Disconnect {
    /// A DISCONNECT with a reason code and no properties.
    pub fn new(reason_code: DisconnectReasonCode) -> Self {
        Self {
            reason_code,
            properties: DisconnectProperties::default(),
        }
    }

    /// Whether the packet has no body in any version: normal disconnection, no properties.
    #[inline]
    pub(crate) fn is_short_form(&self) -> bool {
        self.reason_code == DisconnectReasonCode::NormalDisconnection && self.properties.is_empty()
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if !version.is_v5() {
            if self.reason_code != DisconnectReasonCode::NormalDisconnection {
                return Err(EncodeError::ReasonCodeNotInVersion {
                    code: self.reason_code.as_u8(),
                    version,
                });
            }
            if !self.properties.is_empty() {
                return Err(EncodeError::PropertiesNotInVersion(version));
            }
            return Ok(0);
        }
        // Spec 3.14.2.1: reason code and property length may be left out.
        if self.properties.is_empty() {
            Ok(usize::from(
                self.reason_code != DisconnectReasonCode::NormalDisconnection,
            ))
        } else {
            Ok(1 + self.properties.encoded_len()?)
        }
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        if !version.is_v5() {
            return;
        }
        if !self.properties.is_empty() {
            buf.put_u8(self.reason_code.as_u8());
            self.properties.write(buf);
        } else if self.reason_code != DisconnectReasonCode::NormalDisconnection {
            buf.put_u8(self.reason_code.as_u8());
        }
    }

    pub(crate) fn parse(
        frame: &Bytes,
        body: &[u8],
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        if !version.is_v5() {
            expect_end(body)?;
            return Ok(Self::default());
        }
        let (rest, packet) = finish(Self::parse_body(frame, body))?;
        expect_end(rest)?;
        Ok(packet)
    }

    fn parse_body<'a>(frame: &Bytes, input: &'a [u8]) -> PResult<'a, Self> {
        let mut packet = Self::default();
        if input.is_empty() {
            return Ok((input, packet));
        }
        let (input, code) = primitives::u8(input)?;
        let Some(reason_code) = DisconnectReasonCode::from_u8(code) else {
            // [MQTT-3.14.2-1 v5.0]
            return fail(DecodeError::InvalidReasonCode {
                packet: PacketType::Disconnect,
                code,
            });
        };
        packet.reason_code = reason_code;
        if input.is_empty() {
            return Ok((input, packet));
        }
        let (input, properties) = DisconnectProperties::parse(frame, input)?;
        packet.properties = properties;
        Ok((input, packet))
    }
}

/// AUTH: one step of an enhanced authentication exchange (5.0 spec 3.15).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Auth {
    /// Where the exchange stands.
    pub reason_code: AuthReasonCode,
    /// Method and data of this step.
    pub properties: AuthProperties,
}

impl Auth {
    pub(crate) fn body_len(&self) -> Result<usize, EncodeError> {
        // Spec 3.15.2.1: an AUTH with success and no properties may have no body.
        if self.reason_code == AuthReasonCode::Success && self.properties.is_empty() {
            Ok(0)
        } else {
            Ok(1 + self.properties.encoded_len()?)
        }
    }

    pub(crate) fn write(&self, buf: &mut BytesMut) {
        if self.reason_code == AuthReasonCode::Success && self.properties.is_empty() {
            return;
        }
        buf.put_u8(self.reason_code.as_u8());
        self.properties.write(buf);
    }

    pub(crate) fn parse(frame: &Bytes, body: &[u8]) -> Result<Self, DecodeError> {
        let (rest, packet) = finish(Self::parse_body(frame, body))?;
        expect_end(rest)?;
        Ok(packet)
    }

    fn parse_body<'a>(frame: &Bytes, input: &'a [u8]) -> PResult<'a, Self> {
        let mut packet = Self {
            reason_code: AuthReasonCode::Success,
            properties: AuthProperties::default(),
        };
        if input.is_empty() {
            return Ok((input, packet));
        }
        let (input, code) = primitives::u8(input)?;
        let Some(reason_code) = AuthReasonCode::from_u8(code) else {
            // [MQTT-3.15.2-1 v5.0]
            return fail(DecodeError::InvalidReasonCode {
                packet: PacketType::Auth,
                code,
            });
        };
        packet.reason_code = reason_code;
        if input.is_empty() {
            return Ok((input, packet));
        }
        let (input, properties) = AuthProperties::parse(frame, input)?;
        packet.properties = properties;
        Ok((input, packet))
    }
}
