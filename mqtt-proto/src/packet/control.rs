//! DISCONNECT (spec 3.14) and AUTH (5.0 spec 3.15). PINGREQ/PINGRESP have no body and live
//! in `Packet` itself.

use crate::property_box::PropertyBox;
use bytes::{BufMut, BytesMut};

use crate::error::EncodeError;
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
    pub properties: PropertyBox<DisconnectProperties>,
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
            properties: PropertyBox::EMPTY,
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
}

/// AUTH: one step of an enhanced authentication exchange (5.0 spec 3.15).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Auth {
    /// Where the exchange stands.
    pub reason_code: AuthReasonCode,
    /// Method and data of this step.
    pub properties: PropertyBox<AuthProperties>,
}

impl Auth {
    pub(crate) fn body_len(&self) -> Result<usize, EncodeError> {
        if self.reason_code != AuthReasonCode::Success
            && self.properties.authentication_method.is_none()
        {
            // 5.0 section 3.15.2.2.2
            return Err(EncodeError::MissingAuthenticationMethod);
        }
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
}
