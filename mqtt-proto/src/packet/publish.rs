//! PUBLISH (spec 3.3).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::EncodeError;
use crate::primitives::{prefixed_len, put_prefixed};
use crate::properties::PublishProperties;
use crate::topic::TopicName;
use crate::types::{PacketId, QosPid};
use crate::{ProtocolVersion, QoS};

const DUP: u8 = 0b1000;
const RETAIN: u8 = 0b0001;

/// PUBLISH: an application message (spec 3.3).
///
/// Topic and payload of a decoded PUBLISH share the received frame; nothing is copied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Publish {
    /// Set on a retransmission of a QoS 1/2 message; never on QoS 0 [MQTT-3.3.1-2 v3.1.1 v5.0].
    pub dup: bool,
    /// QoS and, for QoS 1/2, the packet identifier.
    pub qos_pid: QosPid,
    /// Whether the server should retain the message.
    pub retain: bool,
    /// The topic; empty only in 5.0 when `properties.topic_alias` stands for it.
    pub topic: TopicName,
    /// 5.0 properties.
    pub properties: PublishProperties,
    /// The application message.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arbitrary_support::bytes))]
    pub payload: Bytes,
}

impl Publish {
    /// A PUBLISH without properties, DUP or RETAIN.
    pub fn new(topic: TopicName, qos_pid: QosPid, payload: impl Into<Bytes>) -> Self {
        Self {
            dup: false,
            qos_pid,
            retain: false,
            topic,
            properties: PublishProperties::default(),
            payload: payload.into(),
        }
    }

    /// The QoS level.
    pub fn qos(&self) -> QoS {
        self.qos_pid.qos()
    }

    /// The packet identifier, for QoS 1 and 2.
    pub fn packet_id(&self) -> Option<PacketId> {
        self.qos_pid.packet_id()
    }

    pub(crate) fn flags(&self) -> u8 {
        let mut flags = (self.qos() as u8) << 1;
        if self.dup {
            flags |= DUP;
        }
        if self.retain {
            flags |= RETAIN;
        }
        flags
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if self.dup && self.qos_pid == QosPid::AtMostOnce {
            return Err(EncodeError::DupOnQoS0);
        }
        let mut len = prefixed_len(self.topic.len())? + self.payload.len();
        if self.packet_id().is_some() {
            len += 2;
        }
        if version.is_v5() {
            if self.topic.is_empty() && self.properties.topic_alias.is_none() {
                return Err(EncodeError::EmptyTopicWithoutAlias);
            }
            len += self.properties.encoded_len()?;
        } else {
            if self.topic.is_empty() {
                return Err(EncodeError::EmptyTopicWithoutAlias);
            }
            if !self.properties.is_empty() {
                return Err(EncodeError::PropertiesNotInVersion(version));
            }
        }
        Ok(len)
    }

    pub(crate) fn write(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        put_prefixed(buf, self.topic.as_bytes());
        if let Some(id) = self.packet_id() {
            buf.put_u16(id.get());
        }
        if version.is_v5() {
            self.properties.write(buf);
        }
        buf.put_slice(&self.payload);
    }
}
