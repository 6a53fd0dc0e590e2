//! PUBLISH (spec 3.3).

use bytes::{BufMut, Bytes, BytesMut};

use crate::append::{append, append_fill, Appender, Fill};
use crate::error::EncodeError;
use crate::primitives::{prefixed_len, put_prefixed, put_var_int, var_int_len, MAX_VAR_INT};
use crate::properties::PublishProperties;
use crate::property_box::PropertyBox;
use crate::topic::TopicName;
use crate::types::{PacketId, QosPid};
use crate::{ProtocolVersion, QoS};

const DUP: u8 = 0b1000;
const RETAIN: u8 = 0b0001;

/// The smallest payload that [`Packet::encode_split`](crate::Packet::encode_split) hands back
/// instead of copying: below it, a copy costs less than a second buffer for the writer.
pub const SPLIT_PAYLOAD_MIN: usize = 4096;

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
    pub properties: PropertyBox<PublishProperties>,
    /// The application message.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arbitrary_support::bytes))]
    pub payload: Bytes,
}

/// The longest topic [`Publish::encode_small`] takes: a topic name is seldom longer.
const SMALL_TOPIC_MAX: usize = 64;

/// The packet identifier, if any, and in 5.0 the empty property block's length, as one store.
#[inline(always)]
fn write_id_and_empty_properties(out: &mut Appender<'_>, id: Option<PacketId>, v5: bool) {
    match (id, v5) {
        (Some(id), false) => out.array(id.get().to_be_bytes()),
        (Some(id), true) => {
            let [id_hi, id_lo] = id.get().to_be_bytes();
            out.array([id_hi, id_lo, 0]);
        }
        (None, true) => out.array([0]),
        (None, false) => {}
    }
}

/// What [`Publish::encode_small`] writes, as stores and short copies forced inline.
struct Small<'a> {
    first: u8,
    body: usize,
    topic: &'a [u8],
    id: Option<PacketId>,
    v5: bool,
    payload: &'a [u8],
}

impl Fill for Small<'_> {
    #[inline(always)]
    fn fill(self, out: &mut Appender<'_>) {
        // The topic is at most 64 bytes: its length's high byte is 0.
        let topic_len = self.topic.len() as u8;
        if self.body < 0x80 {
            out.array([self.first, self.body as u8, 0, topic_len]);
        } else {
            let body = self.body;
            out.array([
                self.first,
                body as u8 | 0x80,
                (body >> 7) as u8,
                0,
                topic_len,
            ]);
        }
        out.slice(self.topic);
        write_id_and_empty_properties(out, self.id, self.v5);
        out.slice(self.payload);
    }
}

impl Publish {
    /// A PUBLISH without properties, DUP or RETAIN.
    pub fn new(topic: TopicName, qos_pid: QosPid, payload: impl Into<Bytes>) -> Self {
        Self {
            dup: false,
            qos_pid,
            retain: false,
            topic,
            properties: PropertyBox::EMPTY,
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

    /// The size of this PUBLISH on the wire in `version`, or why it cannot be encoded: what
    /// [`Packet::encoded_len`](crate::Packet::encoded_len) gives, without wrapping (or
    /// cloning) it into a [`Packet`](crate::Packet).
    pub fn encoded_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let body = self.body_len(version)?;
        if body > MAX_VAR_INT as usize {
            return Err(EncodeError::PacketTooLarge(body));
        }
        Ok(1 + var_int_len(body) + body)
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

    /// Appends this PUBLISH as [`Packet::encode_split`](crate::Packet::encode_split) does,
    /// without wrapping (or cloning) it into a [`Packet`](crate::Packet): a payload of
    /// [`SPLIT_PAYLOAD_MIN`] bytes or more comes back uncopied, to be written after `buf`.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use mqtt_proto::{ProtocolVersion, Publish, QosPid, TopicName};
    /// let publish = Publish::new(TopicName::new("t").unwrap(), QosPid::AtMostOnce, vec![7u8; 8192]);
    /// let mut buf = BytesMut::new();
    /// let (size, payload) = publish.encode_split(ProtocolVersion::V3_1_1, &mut buf).unwrap();
    /// assert_eq!((size, buf.len(), payload.map(|p| p.len())), (8198, 6, Some(8192)));
    /// ```
    #[inline(always)]
    pub fn encode_split(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<(usize, Option<Bytes>), EncodeError> {
        if let Some(size) = self.encode_small(version, buf) {
            return Ok((size, None));
        }
        self.encode_with(version, buf, true)
    }

    /// The PUBLISH most traffic carries, appended inline by the caller: no properties, a topic
    /// of 1 to [`SMALL_TOPIC_MAX`] bytes, a payload shorter than [`SPLIT_PAYLOAD_MIN`] and no
    /// DUP at QoS 0. Every check of [`Self::body_len`] passes for such a packet, its remaining
    /// length takes one or two bytes, and nothing is handed back. `None`, with nothing
    /// written, for any other PUBLISH (one to refuse included), which [`Self::encode_with`]
    /// encodes or refuses.
    #[inline(always)]
    pub(crate) fn encode_small(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Option<usize> {
        let topic = self.topic.as_bytes();
        let payload: &[u8] = &self.payload;
        if !self.properties.is_empty()
            || topic.is_empty()
            || topic.len() > SMALL_TOPIC_MAX
            || payload.len() >= SPLIT_PAYLOAD_MIN
            || (self.dup && self.qos_pid == QosPid::AtMostOnce)
        {
            return None;
        }
        let id = self.packet_id();
        let v5 = version.is_v5();
        // At most 2 + 64 + 2 + 1 + 4095 bytes: below 16,384, two bytes of remaining length.
        let body =
            2 + topic.len() + if id.is_some() { 2 } else { 0 } + usize::from(v5) + payload.len();
        let header_len = if body < 0x80 { 2 } else { 3 };
        let small = Small {
            first: 0x30 | self.flags(),
            body,
            topic,
            id,
            v5,
            payload,
        };
        let written = append_fill(buf, header_len + body, small);
        written.then_some(header_len + body)
    }

    /// Appends this PUBLISH; leaves a large payload out when `split` (see [`Self::encode_split`]).
    #[inline]
    pub(crate) fn encode_with(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
        split: bool,
    ) -> Result<(usize, Option<Bytes>), EncodeError> {
        if self.properties.is_empty() {
            self.encode_without_properties(version, buf, split)
        } else {
            self.encode_general(version, buf, split)
        }
    }

    /// A PUBLISH with properties: sized first, then written field by field.
    fn encode_general(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
        split: bool,
    ) -> Result<(usize, Option<Bytes>), EncodeError> {
        let body = self.body_len(version)?;
        if body > MAX_VAR_INT as usize {
            return Err(EncodeError::PacketTooLarge(body));
        }
        let total = 1 + var_int_len(body) + body;
        let hand_back = split && self.payload.len() >= SPLIT_PAYLOAD_MIN;
        let head = total - self.payload.len();
        buf.reserve(if hand_back { head } else { total });
        buf.put_u8(0x30 | self.flags());
        put_var_int(buf, body);
        self.write_head(version, buf);
        if !hand_back {
            buf.put_slice(&self.payload);
            return Ok((total, None));
        }
        Ok((total, Some(self.payload.clone())))
    }

    /// Encodes a PUBLISH without properties that [`Self::encode_small`] did not take (a long
    /// topic, a large payload, or an error to report) in one append of four writes: the fixed
    /// header with the topic's length, the topic, the packet identifier with the empty 5.0
    /// property length, and the payload unless `split` hands it back (see
    /// [`Packet::encode_split`]).
    ///
    /// Checks what [`Publish::body_len`] checks, in the same order.
    ///
    /// [`Packet::encode_split`]: crate::Packet::encode_split
    #[inline]
    fn encode_without_properties(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
        split: bool,
    ) -> Result<(usize, Option<Bytes>), EncodeError> {
        if self.dup && self.qos_pid == QosPid::AtMostOnce {
            return Err(EncodeError::DupOnQoS0);
        }
        let topic = self.topic.as_bytes();
        let topic_len = prefixed_len(topic.len())?;
        if topic.is_empty() {
            // No properties, so no topic alias either.
            return Err(EncodeError::EmptyTopicWithoutAlias);
        }
        let id = self.packet_id();
        let v5 = version.is_v5();
        // The packet identifier and, in 5.0, a property length of 0.
        let tail_len = if id.is_some() { 2 } else { 0 } + usize::from(v5);
        let body = topic_len + tail_len + self.payload.len();
        if body > MAX_VAR_INT as usize {
            return Err(EncodeError::PacketTooLarge(body));
        }
        let header_len = 1 + var_int_len(body);
        let total = header_len + body;
        // The payload handed back is cloned at the end, only then: a `Bytes` carried through
        // the appends would be spilled and copied into the result whether there or not.
        let hand_back = split && self.payload.len() >= SPLIT_PAYLOAD_MIN;
        let size = if hand_back {
            total - self.payload.len()
        } else {
            total
        };
        // One capacity check for the whole packet, and stores for every part of a size known
        // here: one arm per size of the remaining length, the topic's length bytes joined to
        // the fixed header.
        let first = 0x30 | self.flags();
        let [hi, lo] = (topic.len() as u16).to_be_bytes();
        let b = |shift: u32| (body >> shift) as u8 & 0x7F;
        let written = append(buf, size, |out| {
            match header_len {
                2 => out.array([first, body as u8, hi, lo]),
                3 => out.array([first, b(0) | 0x80, b(7), hi, lo]),
                4 => out.array([first, b(0) | 0x80, b(7) | 0x80, b(14), hi, lo]),
                _ => out.array([first, b(0) | 0x80, b(7) | 0x80, b(14) | 0x80, b(21), hi, lo]),
            }
            out.slice(topic);
            write_id_and_empty_properties(out, id, v5);
            if !hand_back {
                out.slice(&self.payload);
            }
        });
        if !written {
            // Not reached: `size` is what the writes above take.
            return self.encode_general(version, buf, split);
        }
        if !hand_back {
            return Ok((total, None));
        }
        Ok((total, Some(self.payload.clone())))
    }

    /// Writes everything after the fixed header but the payload.
    pub(crate) fn write_head(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        put_prefixed(buf, self.topic.as_bytes());
        if let Some(id) = self.packet_id() {
            buf.put_u16(id.get());
        }
        if version.is_v5() {
            self.properties.write(buf);
        }
    }
}
