//! The borrowed view of a packet, [`PacketRef`], and the one parser that checks every rule of
//! the packet formats. The owned [`Packet`](crate::Packet) is built from what this parser
//! returns, so both APIs accept and reject exactly the same bytes.
//!
//! Parsing is a cursor over one frame's bytes ([`Reader`]): each read checks the bytes left and
//! fails with [`DecodeErrorKind::Truncated`], never indexes past the end, and never allocates.
//! Strings come out as `&str` slices of the frame, binary data as `&[u8]`; lists (subscriptions,
//! reason codes) and property blocks are checked whole and kept as their bytes, which their
//! iterators read again.

use core::num::NonZeroU16;

use bytes::Bytes;

use crate::error::DecodeErrorKind as Kind;
use crate::packet::PacketType;
use crate::properties::{self, PropertiesRef};
use crate::reason::{
    AuthReasonCode, ConnectReasonCode, DisconnectReasonCode, PubAckReasonCode, PubRelReasonCode,
    SubAckReasonCode, UnsubAckReasonCode,
};
use crate::string::MqttString;
use crate::text::{self, Scanned};
use crate::topic;
use crate::types::{PacketId, QosPid};
use crate::{ProtocolVersion, QoS, RetainHandling, SubscriptionOptions};

/// Result of a parse step.
pub(crate) type Result<T> = core::result::Result<T, Kind>;

/// A cursor over the bytes of one frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    #[inline(always)]
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// The bytes not read yet.
    #[inline(always)]
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf
    }

    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    #[inline(always)]
    pub(crate) fn u8(&mut self) -> Result<u8> {
        let (&b, rest) = self.buf.split_first().ok_or(Kind::Truncated)?;
        self.buf = rest;
        Ok(b)
    }

    #[inline(always)]
    pub(crate) fn u16(&mut self) -> Result<u16> {
        let (bytes, rest) = self.buf.split_first_chunk::<2>().ok_or(Kind::Truncated)?;
        self.buf = rest;
        Ok(u16::from_be_bytes(*bytes))
    }

    #[inline(always)]
    pub(crate) fn u32(&mut self) -> Result<u32> {
        let (bytes, rest) = self.buf.split_first_chunk::<4>().ok_or(Kind::Truncated)?;
        self.buf = rest;
        Ok(u32::from_be_bytes(*bytes))
    }

    /// A variable byte integer in its shortest form [MQTT-1.5.5-1 v5.0].
    #[inline]
    pub(crate) fn var_int(&mut self) -> Result<u32> {
        if let Some((&b, rest)) = self.buf.split_first() {
            if b & 0x80 == 0 {
                self.buf = rest;
                return Ok(u32::from(b));
            }
        }
        match crate::primitives::read_var_int(self.buf)? {
            Some((value, len)) => {
                self.buf = self.buf.get(len..).unwrap_or_default();
                Ok(value)
            }
            None => Err(Kind::Truncated),
        }
    }

    #[inline(always)]
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let (head, rest) = self.buf.split_at_checked(n).ok_or(Kind::Truncated)?;
        self.buf = rest;
        Ok(head)
    }

    /// Two-byte-length-prefixed bytes (spec 1.5.6).
    #[inline(always)]
    pub(crate) fn prefixed(&mut self) -> Result<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    /// A UTF-8 encoded string and whether it holds `+` or `#`.
    #[inline]
    pub(crate) fn scanned_string(&mut self) -> Result<(&'a str, bool)> {
        let scanned = Scanned::topic(self.prefixed()?)?;
        Ok((scanned.to_str()?, scanned.has_wildcard()))
    }

    /// A UTF-8 encoded string whose wildcards mean nothing.
    #[inline]
    pub(crate) fn string(&mut self) -> Result<&'a str> {
        Ok(Scanned::plain(self.prefixed()?)?.to_str()?)
    }

    /// A non-empty topic name (spec 4.7).
    #[inline]
    pub(crate) fn topic_name(&mut self) -> Result<&'a str> {
        let (s, wildcard) = self.scanned_string()?;
        topic::check_name_text(s.as_bytes(), wildcard)?;
        Ok(s)
    }

    /// A packet identifier, never zero [MQTT-2.3.1-1 v3.1.1].
    #[inline(always)]
    pub(crate) fn packet_id(&mut self) -> Result<PacketId> {
        PacketId::new(self.u16()?).ok_or(Kind::ZeroPacketId)
    }

    /// Fails if bytes are left.
    #[inline(always)]
    pub(crate) fn end(self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Kind::TrailingBytes(self.buf.len()))
        }
    }
}

/// `sub` as a slice of `frame` when it lies within it, which costs a reference count; a copy
/// otherwise. Never panics, whatever the caller passes.
#[inline]
pub(crate) fn share(frame: &Bytes, sub: &[u8]) -> Bytes {
    if lies_within(frame, sub) {
        frame.slice_ref(sub)
    } else {
        text::copied_bytes(sub)
    }
}

/// Whether `sub` lies within `frame`'s bytes, so that `frame.slice_ref(sub)` cannot panic.
#[inline(always)]
pub(crate) fn lies_within(frame: &Bytes, sub: &[u8]) -> bool {
    let start = frame.as_ptr() as usize;
    let sub_start = sub.as_ptr() as usize;
    sub_start >= start && sub_start + sub.len() <= start + frame.len()
}

/// A decoded packet borrowing every string and payload from the bytes it was decoded from: no
/// allocation and no reference count.
///
/// Made by [`Decoder::decode_ref`](crate::Decoder::decode_ref) and
/// [`Decoder::decode_frame_ref`](crate::Decoder::decode_frame_ref), which check exactly what
/// the owned decoder checks. [`PacketRef::to_owned`] makes the owned [`Packet`](crate::Packet)
/// when the packet must outlive the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum PacketRef<'a> {
    Connect(ConnectRef<'a>),
    ConnAck(ConnAckRef<'a>),
    Publish(PublishRef<'a>),
    PubAck(AckRef<'a, PubAckReasonCode>),
    PubRec(AckRef<'a, PubAckReasonCode>),
    PubRel(AckRef<'a, PubRelReasonCode>),
    PubComp(AckRef<'a, PubRelReasonCode>),
    Subscribe(SubscribeRef<'a>),
    SubAck(SubAckRef<'a>),
    Unsubscribe(UnsubscribeRef<'a>),
    UnsubAck(UnsubAckRef<'a>),
    PingReq,
    PingResp,
    Disconnect(DisconnectRef<'a>),
    /// 5.0 only.
    Auth(AuthRef<'a>),
}

impl PacketRef<'_> {
    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::Connect(_) => PacketType::Connect,
            Self::ConnAck(_) => PacketType::ConnAck,
            Self::Publish(_) => PacketType::Publish,
            Self::PubAck(_) => PacketType::PubAck,
            Self::PubRec(_) => PacketType::PubRec,
            Self::PubRel(_) => PacketType::PubRel,
            Self::PubComp(_) => PacketType::PubComp,
            Self::Subscribe(_) => PacketType::Subscribe,
            Self::SubAck(_) => PacketType::SubAck,
            Self::Unsubscribe(_) => PacketType::Unsubscribe,
            Self::UnsubAck(_) => PacketType::UnsubAck,
            Self::PingReq => PacketType::PingReq,
            Self::PingResp => PacketType::PingResp,
            Self::Disconnect(_) => PacketType::Disconnect,
            Self::Auth(_) => PacketType::Auth,
        }
    }

    /// The owned packet, its strings and payloads slices of `frame` where they lie within it
    /// (one reference count each) and copies otherwise.
    ///
    /// Owned strings are `ByteString`s, which check UTF-8 again when made: building the owned
    /// packet from the view costs that second pass over each string. The owned decoder
    /// ([`Decoder::decode`](crate::Decoder::decode)) avoids it for the topic of a PUBLISH.
    pub fn to_owned(&self, frame: &Bytes) -> crate::Packet {
        crate::packet::owned_from_ref(frame, self)
    }
}

/// CONNECT (spec 3.1), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectRef<'a> {
    /// The protocol version the client asks for.
    pub protocol: ProtocolVersion,
    /// Clean Session (3.1, 3.1.1) or Clean Start (5.0).
    pub clean_start: bool,
    /// Keep alive interval in seconds.
    pub keep_alive: u16,
    /// The client identifier.
    pub client_id: &'a str,
    /// The will message.
    pub will: Option<LastWillRef<'a>>,
    /// The user name.
    pub username: Option<&'a str>,
    /// The password.
    pub password: Option<&'a [u8]>,
    /// 5.0 properties.
    pub properties: PropertiesRef<'a>,
}

/// The will message of a CONNECT, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LastWillRef<'a> {
    /// The topic the will is published to.
    pub topic: &'a str,
    /// The will payload.
    pub payload: &'a [u8],
    /// QoS of the will.
    pub qos: QoS,
    /// Whether the will is retained.
    pub retain: bool,
    /// 5.0 will properties.
    pub properties: PropertiesRef<'a>,
}

/// CONNACK (spec 3.2), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnAckRef<'a> {
    /// Whether the server resumed a session.
    pub session_present: bool,
    /// The outcome; 3.1.1 return codes map onto the 5.0 codes.
    pub reason_code: ConnectReasonCode,
    /// 5.0 properties.
    pub properties: PropertiesRef<'a>,
}

/// PUBLISH (spec 3.3), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishRef<'a> {
    /// Set on a retransmission of a QoS 1/2 message.
    pub dup: bool,
    /// QoS and, for QoS 1/2, the packet identifier.
    pub qos_pid: QosPid,
    /// Whether the server should retain the message.
    pub retain: bool,
    /// The topic; empty only in 5.0 when a topic alias stands for it.
    pub topic: &'a str,
    /// The 5.0 Topic Alias, also found in `properties`.
    pub topic_alias: Option<NonZeroU16>,
    /// 5.0 properties.
    pub properties: PropertiesRef<'a>,
    /// The application message.
    pub payload: &'a [u8],
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP (spec 3.4-3.7), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AckRef<'a, C> {
    /// Identifier of the PUBLISH flow.
    pub packet_id: PacketId,
    /// The outcome (5.0); success before 5.0.
    pub reason_code: C,
    /// 5.0 properties.
    pub properties: PropertiesRef<'a>,
}

/// SUBSCRIBE (spec 3.8), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeRef<'a> {
    /// Identifier the SUBACK will echo.
    pub packet_id: PacketId,
    /// 5.0 properties.
    pub properties: PropertiesRef<'a>,
    /// The subscriptions, at least one.
    pub filters: Subscriptions<'a>,
}

/// UNSUBSCRIBE (spec 3.10), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnsubscribeRef<'a> {
    /// Identifier the UNSUBACK will echo.
    pub packet_id: PacketId,
    /// 5.0 properties.
    pub properties: PropertiesRef<'a>,
    /// The topic filters, at least one.
    pub filters: TopicFilters<'a>,
}

/// SUBACK (spec 3.9), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubAckRef<'a> {
    /// Identifier of the SUBSCRIBE answered.
    pub packet_id: PacketId,
    /// 5.0 properties.
    pub properties: PropertiesRef<'a>,
    /// One code per filter.
    pub reason_codes: ReasonCodes<'a, SubAckReasonCode>,
}

/// UNSUBACK (spec 3.11), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnsubAckRef<'a> {
    /// Identifier of the UNSUBSCRIBE answered.
    pub packet_id: PacketId,
    /// 5.0 properties.
    pub properties: PropertiesRef<'a>,
    /// 5.0: one code per filter; empty before 5.0.
    pub reason_codes: ReasonCodes<'a, UnsubAckReasonCode>,
}

/// DISCONNECT (spec 3.14), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DisconnectRef<'a> {
    /// Why the connection closes (5.0).
    pub reason_code: DisconnectReasonCode,
    /// 5.0 properties.
    pub properties: PropertiesRef<'a>,
}

/// AUTH (5.0 spec 3.15), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthRef<'a> {
    /// Where the exchange stands.
    pub reason_code: AuthReasonCode,
    /// Method and data of this step.
    pub properties: PropertiesRef<'a>,
}

/// The subscriptions of a SUBSCRIBE: checked when decoded, read again as they are iterated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscriptions<'a> {
    raw: &'a [u8],
    len: usize,
    version: ProtocolVersion,
}

impl<'a> Subscriptions<'a> {
    /// How many subscriptions there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none (never, in a decoded SUBSCRIBE).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<'a> IntoIterator for Subscriptions<'a> {
    type Item = (&'a str, SubscriptionOptions);
    type IntoIter = SubscriptionsIter<'a>;

    fn into_iter(self) -> SubscriptionsIter<'a> {
        SubscriptionsIter {
            r: Reader::new(self.raw),
            version: self.version,
        }
    }
}

/// Iterator over [`Subscriptions`]: each filter and its options.
#[derive(Debug, Clone)]
pub struct SubscriptionsIter<'a> {
    r: Reader<'a>,
    version: ProtocolVersion,
}

impl<'a> Iterator for SubscriptionsIter<'a> {
    type Item = (&'a str, SubscriptionOptions);

    fn next(&mut self) -> Option<Self::Item> {
        // The bytes were checked when decoded; only the ASCII test is made again.
        let filter = text::checked_str(self.r.prefixed().ok()?)?;
        let options = SubscriptionOptions::from_byte(self.r.u8().ok()?, self.version).ok()?;
        Some((filter, options))
    }
}

/// The topic filters of an UNSUBSCRIBE: checked when decoded, read again as they are iterated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicFilters<'a> {
    raw: &'a [u8],
    len: usize,
}

impl<'a> TopicFilters<'a> {
    /// How many filters there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none (never, in a decoded UNSUBSCRIBE).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<'a> IntoIterator for TopicFilters<'a> {
    type Item = &'a str;
    type IntoIter = TopicFiltersIter<'a>;

    fn into_iter(self) -> TopicFiltersIter<'a> {
        TopicFiltersIter {
            r: Reader::new(self.raw),
        }
    }
}

/// Iterator over [`TopicFilters`].
#[derive(Debug, Clone)]
pub struct TopicFiltersIter<'a> {
    r: Reader<'a>,
}

impl<'a> Iterator for TopicFiltersIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        text::checked_str(self.r.prefixed().ok()?)
    }
}

/// A reason code type that has a byte form.
pub trait ReasonCode: Copy + Sized {
    /// The code for a byte, `None` if the packet does not define it.
    fn from_byte(byte: u8) -> Option<Self>;
}

macro_rules! reason_code_trait {
    ($($ty:ident),*) => {$(
        impl ReasonCode for $ty {
            #[inline]
            fn from_byte(byte: u8) -> Option<Self> {
                Self::from_u8(byte)
            }
        }
    )*};
}

reason_code_trait!(SubAckReasonCode, UnsubAckReasonCode);

/// The reason codes of a SUBACK or UNSUBACK, checked when decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasonCodes<'a, C> {
    raw: &'a [u8],
    _code: core::marker::PhantomData<C>,
}

impl<'a, C: ReasonCode> ReasonCodes<'a, C> {
    fn new(raw: &'a [u8]) -> Self {
        Self {
            raw,
            _code: core::marker::PhantomData,
        }
    }

    /// How many codes there are.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The codes as bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// The codes.
    pub fn iter(&self) -> impl Iterator<Item = C> + 'a {
        self.raw.iter().filter_map(|&b| C::from_byte(b))
    }
}

/// Reads the fixed header at the start of `buf`: `Ok(None)` if it is incomplete, else the
/// packet type, the flags, the header size and the whole packet size (not checked against any
/// maximum).
#[inline(always)]
pub(crate) fn fixed_header(
    buf: &[u8],
    version: ProtocolVersion,
) -> Result<Option<(PacketType, u8, usize, usize)>> {
    let Some((&first, rest)) = buf.split_first() else {
        return Ok(None);
    };
    let ty = PacketType::from_first_byte(first, version)?;
    // The common case: a remaining length below 128, in one byte.
    if let Some(&len) = rest.first() {
        if len & 0x80 == 0 {
            return Ok(Some((ty, first & 0x0F, 2, 2 + usize::from(len))));
        }
    }
    let Some((remaining, len_bytes)) = crate::primitives::read_var_int(rest)? else {
        return Ok(None);
    };
    let header_len = 1 + len_bytes;
    Ok(Some((
        ty,
        first & 0x0F,
        header_len,
        header_len + remaining as usize,
    )))
}

/// The parts of a PUBLISH, every rule checked.
pub(crate) struct PublishParts<'a> {
    pub(crate) dup: bool,
    pub(crate) qos_pid: QosPid,
    pub(crate) retain: bool,
    pub(crate) topic: &'a str,
    pub(crate) topic_alias: Option<NonZeroU16>,
    pub(crate) properties: PropertiesRef<'a>,
    pub(crate) payload: &'a [u8],
}

const DUP: u8 = 0b1000;
const RETAIN: u8 = 0b0001;

/// Parses the body of a PUBLISH (spec 3.3) whose fixed header had `flags`, handing
/// `each_property` every property as it is checked.
#[inline(always)]
pub(crate) fn publish_parts<'a>(
    body: &'a [u8],
    flags: u8,
    version: ProtocolVersion,
    each_property: impl FnMut(crate::PropertyId, crate::PropertyValue<'a>),
) -> Result<PublishParts<'a>> {
    let dup = flags & DUP != 0;
    // [MQTT-3.3.1-4 v3.1.1 v5.0]
    let qos = match (flags >> 1) & 0b11 {
        0 if dup => return Err(Kind::DupOnQoS0), // [MQTT-3.3.1-2 v3.1.1 v5.0]
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        2 => QoS::ExactlyOnce,
        _ => return Err(Kind::InvalidQoS),
    };
    let mut r = Reader::new(body);
    let name = r.prefixed()?;
    let topic = match text::plain_topic_name(name) {
        Some(topic) => topic,
        None => unusual_topic_name(name)?,
    };
    let qos_pid = match qos {
        // [MQTT-2.3.1-5 v3.1.1] / [MQTT-2.2.1-2 v5.0]: no packet identifier at QoS 0.
        QoS::AtMostOnce => QosPid::AtMostOnce,
        // [MQTT-2.3.1-1 v3.1.1]
        QoS::AtLeastOnce => QosPid::AtLeastOnce(r.packet_id()?),
        QoS::ExactlyOnce => QosPid::ExactlyOnce(r.packet_id()?),
    };
    let (properties, topic_alias) = if !version.is_v5() {
        (PropertiesRef::empty(), None)
    } else if let Some((&0, rest)) = r.rest().split_first() {
        // The common case: an empty property block.
        r = Reader::new(rest);
        (PropertiesRef::empty(), None)
    } else {
        let (props, found) =
            properties::read_block_with(&mut r, properties::Set::Publish, each_property)?;
        (props, found.topic_alias)
    };
    if topic.is_empty() && topic_alias.is_none() {
        return Err(if version.is_v5() {
            Kind::EmptyTopicWithoutAlias
        } else {
            crate::TopicError::Empty.into()
        });
    }
    Ok(PublishParts {
        dup,
        qos_pid,
        retain: flags & RETAIN != 0,
        topic,
        topic_alias,
        properties,
        payload: r.rest(),
    })
}

/// A PUBLISH's topic name that [`text::plain_topic_name`] did not take: checked for U+0000,
/// then for wildcards, then for UTF-8 (a name outside ASCII is valid when it is UTF-8). Cold,
/// so that the plain name falls through to the rest of the parser: the borrowed 3.1.1 stream
/// 90.6-92.1 -> 87.7-91.8 us in alternating runs (`benches/README.md`).
#[cold]
#[inline(never)]
fn unusual_topic_name(bytes: &[u8]) -> Result<&str> {
    // [MQTT-3.3.2-1 v3.1.1 v5.0] [MQTT-3.3.2-2 v3.1.1 v5.0]
    let topic = Scanned::topic(bytes)?;
    if topic.has_wildcard() {
        return Err(crate::TopicError::WildcardInName.into());
    }
    Ok(topic.to_str()?)
}

/// Parses one frame's body into the borrowed packet. `flags` are the low nibble of the first
/// byte, already checked for every type but PUBLISH.
#[inline]
pub(crate) fn parse(
    ty: PacketType,
    flags: u8,
    body: &[u8],
    version: ProtocolVersion,
) -> Result<PacketRef<'_>> {
    if ty == PacketType::Publish {
        let p = publish_parts(body, flags, version, |_, _| {})?;
        return Ok(PacketRef::Publish(PublishRef {
            dup: p.dup,
            qos_pid: p.qos_pid,
            retain: p.retain,
            topic: p.topic,
            topic_alias: p.topic_alias,
            properties: p.properties,
            payload: p.payload,
        }));
    }
    check_flags(ty, flags)?;
    parse_checked(ty, body, version)
}

/// Checks the fixed-header flags of every packet type but PUBLISH, whose flags carry
/// DUP, QoS and RETAIN.
#[inline(always)]
pub(crate) fn check_flags(ty: PacketType, flags: u8) -> Result<()> {
    if flags != ty.required_flags() {
        // [MQTT-2.2.2-1 v3.1.1] [MQTT-2.2.2-2 v3.1.1] [MQTT-2.1.3-1 v5.0]
        // [MQTT-3.6.1-1 v3.1.1 v5.0] [MQTT-3.8.1-1 v3.1.1 v5.0] [MQTT-3.10.1-1 v3.1.1 v5.0]
        // [MQTT-3.14.1-1 v3.1.1 v5.0] [MQTT-3.15.1-1 v5.0]
        return Err(Kind::InvalidFlags { packet: ty, flags });
    }
    Ok(())
}

/// Parses the body of a packet other than PUBLISH whose flags [`check_flags`] accepted.
#[inline]
pub(crate) fn parse_checked(
    ty: PacketType,
    body: &[u8],
    version: ProtocolVersion,
) -> Result<PacketRef<'_>> {
    let mut r = Reader::new(body);
    let packet = match ty {
        PacketType::PubAck => PacketRef::PubAck(ack(r, version, PacketType::PubAck)?),
        PacketType::PubRec => PacketRef::PubRec(ack(r, version, PacketType::PubRec)?),
        PacketType::PubRel => PacketRef::PubRel(ack(r, version, PacketType::PubRel)?),
        PacketType::PubComp => PacketRef::PubComp(ack(r, version, PacketType::PubComp)?),
        PacketType::PingReq => {
            r.end()?;
            PacketRef::PingReq
        }
        PacketType::PingResp => {
            r.end()?;
            PacketRef::PingResp
        }
        PacketType::Connect => PacketRef::Connect(connect(r)?),
        PacketType::ConnAck => PacketRef::ConnAck(connack(r, version)?),
        PacketType::Subscribe => PacketRef::Subscribe(subscribe(r, version)?),
        PacketType::SubAck => PacketRef::SubAck(suback(r, version)?),
        PacketType::Unsubscribe => PacketRef::Unsubscribe(unsubscribe(r, version)?),
        PacketType::UnsubAck => PacketRef::UnsubAck(unsuback(r, version)?),
        PacketType::Disconnect => PacketRef::Disconnect(disconnect(&mut r, version)?),
        PacketType::Auth => PacketRef::Auth(auth(&mut r)?),
        PacketType::Publish => return Err(Kind::Truncated),
    };
    Ok(packet)
}

/// A property block of `set`, or none before 5.0.
#[inline]
fn props<'a>(
    r: &mut Reader<'a>,
    version: ProtocolVersion,
    set: properties::Set,
) -> Result<(PropertiesRef<'a>, properties::Found)> {
    if version.is_v5() {
        properties::read_block(r, set)
    } else {
        Ok((PropertiesRef::empty(), properties::Found::default()))
    }
}

/// A code byte that the reason code type `C` defines.
pub(crate) trait AckCode: Copy {
    const SUCCESS: Self;
    fn from_byte(byte: u8) -> Option<Self>;
}

impl AckCode for PubAckReasonCode {
    const SUCCESS: Self = Self::Success;
    #[inline]
    fn from_byte(byte: u8) -> Option<Self> {
        Self::from_u8(byte)
    }
}

impl AckCode for PubRelReasonCode {
    const SUCCESS: Self = Self::Success;
    #[inline]
    fn from_byte(byte: u8) -> Option<Self> {
        Self::from_u8(byte)
    }
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP (spec 3.4-3.7): a packet identifier and, in 5.0, an
/// optional reason code and properties.
#[inline(always)]
pub(crate) fn ack<C: AckCode>(
    mut r: Reader<'_>,
    version: ProtocolVersion,
    ty: PacketType,
) -> Result<AckRef<'_, C>> {
    let packet_id = r.packet_id()?;
    let mut packet = AckRef {
        packet_id,
        reason_code: C::SUCCESS,
        properties: PropertiesRef::empty(),
    };
    if r.is_empty() {
        return Ok(packet);
    }
    if !version.is_v5() {
        return Err(Kind::TrailingBytes(r.rest().len()));
    }
    let code = r.u8()?;
    // [MQTT-3.4.2-1 v5.0] [MQTT-3.5.2-1 v5.0] [MQTT-3.6.2-1 v5.0] [MQTT-3.7.2-1 v5.0]
    packet.reason_code = C::from_byte(code).ok_or(Kind::InvalidReasonCode { packet: ty, code })?;
    if !r.is_empty() {
        packet.properties = properties::read_block(&mut r, properties::Set::Ack(ty))?.0;
    }
    r.end()?;
    Ok(packet)
}

const USERNAME: u8 = 0b1000_0000;
const PASSWORD: u8 = 0b0100_0000;
const WILL_RETAIN: u8 = 0b0010_0000;
const WILL_QOS_SHIFT: u8 = 3;
const WILL_QOS_MASK: u8 = 0b0001_1000;
const WILL: u8 = 0b0000_0100;
const CLEAN_START: u8 = 0b0000_0010;
const RESERVED: u8 = 0b0000_0001;

/// The fields of a CONNECT, its strings made by the caller's `string`.
pub(crate) struct ConnectParts<'a, S> {
    pub(crate) protocol: ProtocolVersion,
    pub(crate) clean_start: bool,
    pub(crate) keep_alive: u16,
    pub(crate) client_id: S,
    pub(crate) will: Option<WillParts<'a, S>>,
    pub(crate) username: Option<S>,
    pub(crate) password: Option<&'a [u8]>,
    pub(crate) properties: PropertiesRef<'a>,
}

/// The will of a CONNECT, its topic made by the caller's `string`.
pub(crate) struct WillParts<'a, S> {
    pub(crate) topic: S,
    pub(crate) payload: &'a [u8],
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    pub(crate) properties: PropertiesRef<'a>,
}

/// A UTF-8 encoded string whose wildcards mean nothing, made by `string`.
#[inline(always)]
fn made<'a, S>(r: &mut Reader<'a>, string: &mut impl FnMut(&'a str) -> S) -> Result<S> {
    Ok(string(r.string()?))
}

/// CONNECT (spec 3.1), each checked string made by `string`: the view keeps the `&str`s, the
/// owned decoder makes its own strings of them.
#[inline]
pub(crate) fn connect_with<'a, S: AsRef<str>>(
    mut r: Reader<'a>,
    mut string: impl FnMut(&'a str) -> S,
) -> Result<ConnectParts<'a, S>> {
    let name = r.prefixed()?;
    let level = r.u8()?;
    let protocol = match (name, level) {
        (b"MQTT", 4) => ProtocolVersion::V3_1_1,
        (b"MQTT", 5) => ProtocolVersion::V5,
        (b"MQIsdp", 3) => ProtocolVersion::V3_1,
        (b"MQTT" | b"MQIsdp", other) => return Err(Kind::UnsupportedProtocolLevel(other)),
        // [MQTT-3.1.2-1 v5.0]
        _ => return Err(Kind::InvalidProtocolName),
    };
    let v5 = protocol.is_v5();
    let flags = r.u8()?;
    let will_flag = flags & WILL != 0;
    let will_qos = (flags & WILL_QOS_MASK) >> WILL_QOS_SHIFT;
    // The reserved bit is 0 [MQTT-3.1.2-3 v3.1.1 v5.0]; without a Will, Will QoS and Retain
    // are 0 [MQTT-3.1.2-11 v5.0] [MQTT-3.1.2-13 v3.1.1 v5.0] [MQTT-3.1.2-15 v3.1.1];
    // Will QoS is never 3 [MQTT-3.1.2-14 v3.1.1] / [MQTT-3.1.2-12 v5.0]; before 5.0 a
    // password needs a user name [MQTT-3.1.2-22 v3.1.1].
    let bad_flags = flags & RESERVED != 0
        || (!will_flag && (will_qos != 0 || flags & WILL_RETAIN != 0))
        || will_qos == 3
        || (!v5 && flags & PASSWORD != 0 && flags & USERNAME == 0);
    if bad_flags {
        return Err(Kind::InvalidConnectFlags(flags));
    }
    let keep_alive = r.u16()?;
    let (properties, found) = props(&mut r, protocol, properties::Set::Connect)?;
    if found.authentication_data && !found.authentication_method {
        // 5.0 section 3.1.2.11.10: Authentication Data needs an Authentication Method.
        return Err(Kind::AuthenticationDataWithoutMethod);
    }
    // [MQTT-3.1.3-1 v3.1.1 v5.0] [MQTT-3.1.3-3 v3.1.1 v5.0] [MQTT-3.1.3-4 v3.1.1 v5.0]: client
    // id first, then will, user, password.
    let client_id = made(&mut r, &mut string)?;
    let will = if will_flag {
        // [MQTT-3.1.2-9 v3.1.1 v5.0]
        let (properties, _) = props(&mut r, protocol, properties::Set::Will)?;
        let (topic, wildcard) = r.scanned_string()?;
        topic::check_name_text(topic.as_bytes(), wildcard)?;
        let topic = string(topic);
        let payload = r.prefixed()?;
        Some(WillParts {
            topic,
            payload,
            qos: QoS::from_u8(will_qos).unwrap_or_default(),
            retain: flags & WILL_RETAIN != 0,
            properties,
        })
    } else {
        None
    };
    // [MQTT-3.1.2-19 v3.1.1] / [MQTT-3.1.2-17 v5.0]
    let username = if flags & USERNAME != 0 {
        Some(made(&mut r, &mut string)?)
    } else {
        None
    };
    // [MQTT-3.1.2-21 v3.1.1] / [MQTT-3.1.2-19 v5.0]
    let password = if flags & PASSWORD != 0 {
        Some(r.prefixed()?)
    } else {
        None
    };
    r.end()?;
    Ok(ConnectParts {
        protocol,
        clean_start: flags & CLEAN_START != 0,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

/// CONNECT (spec 3.1).
fn connect(r: Reader<'_>) -> Result<ConnectRef<'_>> {
    let c = connect_with(r, view_str)?;
    Ok(ConnectRef {
        protocol: c.protocol,
        clean_start: c.clean_start,
        keep_alive: c.keep_alive,
        client_id: c.client_id,
        will: c.will.map(|w| LastWillRef {
            topic: w.topic,
            payload: w.payload,
            qos: w.qos,
            retain: w.retain,
            properties: w.properties,
        }),
        username: c.username,
        password: c.password,
        properties: c.properties,
    })
}

/// CONNACK (spec 3.2).
fn connack(mut r: Reader<'_>, version: ProtocolVersion) -> Result<ConnAckRef<'_>> {
    let flags = r.u8()?;
    // 3.1 calls the whole byte reserved; 3.1.1 and 5.0 use bit 0 [MQTT-3.2.2-1 v5.0].
    if version != ProtocolVersion::V3_1 && flags & 0xFE != 0 {
        return Err(Kind::InvalidConnAckFlags(flags));
    }
    let code = r.u8()?;
    let reason_code = if version.is_v5() {
        ConnectReasonCode::from_u8(code)
    } else {
        ConnectReasonCode::from_v3_return_code(code)
    };
    let reason_code = reason_code.ok_or(Kind::InvalidReasonCode {
        packet: PacketType::ConnAck,
        code,
    })?;
    let (properties, _) = props(&mut r, version, properties::Set::ConnAck)?;
    r.end()?;
    Ok(ConnAckRef {
        session_present: flags & 1 != 0,
        reason_code,
        properties,
    })
}

/// The parts of a SUBSCRIBE or UNSUBSCRIBE but its list: identifier, properties, the list's
/// bytes and how many entries it holds.
pub(crate) type ListParts<'a> = (PacketId, PropertiesRef<'a>, &'a [u8], usize);

/// A topic filter of a SUBSCRIBE or UNSUBSCRIBE list: scanned for U+0000 and wildcards, checked
/// as UTF-8, then by the filter rules (spec 4.7, 4.8.2), in the order a topic name's rules are
/// checked; made into a string by `string`.
#[inline(always)]
fn list_filter<'a, S: AsRef<str>>(
    r: &mut Reader<'a>,
    string: &mut impl FnMut(&'a str) -> S,
) -> Result<S> {
    let (filter, wildcard) = r.scanned_string()?;
    topic::check_filter(filter, wildcard)?;
    Ok(string(filter))
}

/// SUBSCRIBE (spec 3.8): the rules of the packet, with each filter made by `string` and handed
/// to `each` with its options. The view makes `&str`s and keeps nothing; the owned decoder makes
/// its strings here, so that each filter's UTF-8 is checked once.
#[inline]
pub(crate) fn subscribe_with<'a, S: AsRef<str>>(
    mut r: Reader<'a>,
    version: ProtocolVersion,
    mut string: impl FnMut(&'a str) -> S,
    mut each: impl FnMut(S, SubscriptionOptions),
) -> Result<ListParts<'a>> {
    let packet_id = r.packet_id()?;
    let (properties, _) = props(&mut r, version, properties::Set::Subscribe)?;
    let raw = r.rest();
    let mut len = 0;
    while !r.is_empty() {
        // [MQTT-3.8.3-1 v3.1.1 v5.0]
        let filter = list_filter(&mut r, &mut string)?;
        let options = SubscriptionOptions::from_byte(r.u8()?, version)?;
        if options.no_local && filter.as_ref().starts_with(topic::SHARE_PREFIX) {
            // [MQTT-3.8.3-4 v5.0]
            return Err(Kind::NoLocalOnSharedSubscription);
        }
        each(filter, options);
        len += 1;
    }
    if len == 0 {
        // [MQTT-3.8.3-3 v3.1.1] [MQTT-3.8.3-2 v5.0]
        return Err(Kind::NoTopicFilters {
            packet: PacketType::Subscribe,
        });
    }
    Ok((packet_id, properties, raw, len))
}

/// The view's string maker: the checked `&str` itself.
#[inline(always)]
fn view_str(text: &str) -> &str {
    text
}

/// SUBSCRIBE (spec 3.8).
fn subscribe(r: Reader<'_>, version: ProtocolVersion) -> Result<SubscribeRef<'_>> {
    let (packet_id, properties, raw, len) = subscribe_with(r, version, view_str, |_, _| {})?;
    Ok(SubscribeRef {
        packet_id,
        properties,
        filters: Subscriptions { raw, len, version },
    })
}

/// UNSUBSCRIBE (spec 3.10), each filter made by `string` and handed to `each`, as
/// [`subscribe_with`] does.
#[inline]
pub(crate) fn unsubscribe_with<'a, S: AsRef<str>>(
    mut r: Reader<'a>,
    version: ProtocolVersion,
    mut string: impl FnMut(&'a str) -> S,
    mut each: impl FnMut(S),
) -> Result<ListParts<'a>> {
    let packet_id = r.packet_id()?;
    let (properties, _) = props(&mut r, version, properties::Set::Unsubscribe)?;
    let raw = r.rest();
    let mut len = 0;
    while !r.is_empty() {
        // [MQTT-3.10.3-1 v3.1.1 v5.0]
        each(list_filter(&mut r, &mut string)?);
        len += 1;
    }
    if len == 0 {
        // [MQTT-3.10.3-2 v3.1.1 v5.0]
        return Err(Kind::NoTopicFilters {
            packet: PacketType::Unsubscribe,
        });
    }
    Ok((packet_id, properties, raw, len))
}

/// UNSUBSCRIBE (spec 3.10).
fn unsubscribe(r: Reader<'_>, version: ProtocolVersion) -> Result<UnsubscribeRef<'_>> {
    let (packet_id, properties, raw, len) = unsubscribe_with(r, version, view_str, |_| {})?;
    Ok(UnsubscribeRef {
        packet_id,
        properties,
        filters: TopicFilters { raw, len },
    })
}

/// SUBACK (spec 3.9).
fn suback(mut r: Reader<'_>, version: ProtocolVersion) -> Result<SubAckRef<'_>> {
    let packet_id = r.packet_id()?;
    let (properties, _) = props(&mut r, version, properties::Set::Ack(PacketType::SubAck))?;
    let raw = r.rest();
    for &code in raw {
        let valid = SubAckReasonCode::from_u8(code)
            // [MQTT-3.9.3-2 v3.1.1]: only 0, 1, 2 and 0x80.
            .is_some_and(|c| version.is_v5() || c.in_v3());
        if !valid {
            return Err(Kind::InvalidReasonCode {
                packet: PacketType::SubAck,
                code,
            });
        }
    }
    Ok(SubAckRef {
        packet_id,
        properties,
        reason_codes: ReasonCodes::new(raw),
    })
}

/// UNSUBACK (spec 3.11).
fn unsuback(mut r: Reader<'_>, version: ProtocolVersion) -> Result<UnsubAckRef<'_>> {
    let packet_id = r.packet_id()?;
    if !version.is_v5() {
        r.end()?;
        return Ok(UnsubAckRef {
            packet_id,
            properties: PropertiesRef::empty(),
            reason_codes: ReasonCodes::new(&[]),
        });
    }
    let (properties, _) =
        properties::read_block(&mut r, properties::Set::Ack(PacketType::UnsubAck))?;
    let raw = r.rest();
    for &code in raw {
        if UnsubAckReasonCode::from_u8(code).is_none() {
            return Err(Kind::InvalidReasonCode {
                packet: PacketType::UnsubAck,
                code,
            });
        }
    }
    Ok(UnsubAckRef {
        packet_id,
        properties,
        reason_codes: ReasonCodes::new(raw),
    })
}

/// DISCONNECT (spec 3.14).
fn disconnect<'a>(r: &mut Reader<'a>, version: ProtocolVersion) -> Result<DisconnectRef<'a>> {
    let mut packet = DisconnectRef {
        reason_code: DisconnectReasonCode::NormalDisconnection,
        properties: PropertiesRef::empty(),
    };
    if !version.is_v5() || r.is_empty() {
        r.end()?;
        return Ok(packet);
    }
    let code = r.u8()?;
    // [MQTT-3.14.2-1 v5.0]
    packet.reason_code = DisconnectReasonCode::from_u8(code).ok_or(Kind::InvalidReasonCode {
        packet: PacketType::Disconnect,
        code,
    })?;
    if !r.is_empty() {
        packet.properties = properties::read_block(r, properties::Set::Disconnect)?.0;
    }
    r.end()?;
    Ok(packet)
}

/// AUTH (5.0 spec 3.15).
fn auth<'a>(r: &mut Reader<'a>) -> Result<AuthRef<'a>> {
    let mut packet = AuthRef {
        reason_code: AuthReasonCode::Success,
        properties: PropertiesRef::empty(),
    };
    if r.is_empty() {
        return Ok(packet);
    }
    let code = r.u8()?;
    // [MQTT-3.15.2-1 v5.0]
    packet.reason_code = AuthReasonCode::from_u8(code).ok_or(Kind::InvalidReasonCode {
        packet: PacketType::Auth,
        code,
    })?;
    let mut found = properties::Found::default();
    if !r.is_empty() {
        let (properties, f) = properties::read_block(r, properties::Set::Auth)?;
        packet.properties = properties;
        found = f;
    }
    r.end()?;
    if packet.reason_code != AuthReasonCode::Success && !found.authentication_method {
        // 5.0 section 3.15.2.2.2: an exchange's AUTH names its Authentication Method.
        return Err(Kind::MissingAuthenticationMethod);
    }
    Ok(packet)
}

/// A subscription's options byte, checked for `version` (spec 3.8.3.1).
impl SubscriptionOptions {
    pub(crate) fn from_byte(byte: u8, version: ProtocolVersion) -> Result<Self> {
        let bad = Kind::InvalidSubscriptionOptions(byte);
        let qos = QoS::from_u8(byte & 0b11).ok_or(bad)?;
        if !version.is_v5() {
            // [MQTT-3.8.3-4 v3.1.1]: reserved bits 7..2 are zero.
            return if byte & 0b1111_1100 == 0 {
                Ok(Self::qos(qos))
            } else {
                Err(bad)
            };
        }
        // [MQTT-3.8.3-5 v5.0]: reserved bits 7..6 are zero; retain handling 3 is a protocol
        // error.
        let retain_handling = match (byte >> 4) & 0b11 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendAtSubscribeIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(bad),
        };
        if byte & 0b1100_0000 != 0 {
            return Err(bad);
        }
        Ok(Self {
            qos,
            no_local: byte & 0b0100 != 0,
            retain_as_published: byte & 0b1000 != 0,
            retain_handling,
        })
    }
}

/// The owned string for `text` of a decoded view.
#[inline]
pub(crate) fn owned_string(frame: &Bytes, text: &str) -> MqttString {
    MqttString::share(frame, text)
}
