//! The packet model: one `Packet` enum for every control packet of 3.1, 3.1.1 and 5.0, and the
//! fixed header (spec 2.1/2.2) that frames each of them.

mod ack;
mod connect;
mod control;
mod publish;
mod subscribe;

pub use ack::{PubAck, PubComp, PubRec, PubRel};
pub use connect::{ConnAck, Connect, LastWill};
pub use control::{Auth, Disconnect};
pub use publish::{Publish, SPLIT_PAYLOAD_MIN};
pub use subscribe::{
    RetainHandling, SubAck, Subscribe, Subscription, SubscriptionOptions, UnsubAck, Unsubscribe,
};

use alloc::boxed::Box;
use alloc::vec::Vec;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::append::put_array;
use crate::error::{DecodeError, DecodeErrorKind as Kind, EncodeError};
use crate::primitives::{put_var_int, var_int_len, MAX_VAR_INT};
use crate::properties::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties,
    PublishProperties, SubscribeProperties, UnsubscribeProperties, WillProperties,
};
use crate::topic::{TopicFilter, TopicName};
use crate::view::{self, owned_string, share, PacketRef};
use crate::ProtocolVersion;

/// The type of a control packet: the high nibble of its first byte (spec 2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    /// 5.0 only.
    Auth = 15,
}

impl PacketType {
    /// The packet type for a first byte, checked against the version.
    #[inline(always)]
    pub(crate) fn from_first_byte(byte: u8, version: ProtocolVersion) -> Result<Self, Kind> {
        use PacketType::*;
        Ok(match byte >> 4 {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            15 if version.is_v5() => Auth,
            other => return Err(Kind::InvalidPacketType(other)),
        })
    }

    /// The fixed flags every packet but PUBLISH must carry [MQTT-2.2.2-1 v3.1.1]
    /// [MQTT-2.1.3-1 v5.0].
    pub(crate) const fn required_flags(self) -> u8 {
        match self {
            Self::PubRel | Self::Subscribe | Self::Unsubscribe => 0b0010,
            _ => 0,
        }
    }
}

/// An MQTT control packet of any version.
///
/// Decoding keeps every string and payload as a slice of the received frame; encoding writes
/// the packet in the layout of the version asked for, or says why it cannot.
///
/// CONNECT and CONNACK, large and sent once per connection, are boxed so that the enum is
/// about the size of [`Publish`]. Build any variant with `Packet::from(p)` or `p.into()`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[allow(missing_docs)]
pub enum Packet {
    Connect(Box<Connect>),
    ConnAck(Box<ConnAck>),
    Publish(Publish),
    PubAck(PubAck),
    PubRec(PubRec),
    PubRel(PubRel),
    PubComp(PubComp),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    /// 5.0 only.
    Auth(Auth),
}

/// Wraps CONNECT in its boxed [`Packet`] variant.
impl From<Connect> for Packet {
    #[inline]
    fn from(packet: Connect) -> Self {
        Self::Connect(Box::new(packet))
    }
}

/// Wraps CONNACK in its boxed [`Packet`] variant.
impl From<ConnAck> for Packet {
    #[inline]
    fn from(packet: ConnAck) -> Self {
        Self::ConnAck(Box::new(packet))
    }
}

/// `impl From<$ty> for Packet` for the variants that hold their packet inline.
macro_rules! packet_from {
    ($($ty:ident),* $(,)?) => {$(
        /// Wraps the packet in its [`Packet`] variant.
        impl From<$ty> for Packet {
            #[inline]
            fn from(packet: $ty) -> Self {
                Self::$ty(packet)
            }
        }
    )*};
}

packet_from!(
    Publish,
    PubAck,
    PubRec,
    PubRel,
    PubComp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
);

/// The spec's upper bound on a whole packet: one type byte, four length bytes, and the largest
/// remaining length.
pub const MAX_PACKET_SIZE: usize = 1 + 4 + MAX_VAR_INT as usize;

impl Packet {
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

    /// The remaining length: size of everything after the fixed header.
    fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        match self {
            // CONNECT names its version; encoding it as another would mix two layouts.
            Self::Connect(p) if p.protocol != version => Err(EncodeError::VersionMismatch {
                packet: p.protocol,
                encoder: version,
            }),
            Self::Connect(p) => p.body_len(),
            Self::ConnAck(p) => p.body_len(version),
            Self::Publish(p) => p.body_len(version),
            Self::PubAck(p) => p.body_len(version),
            Self::PubRec(p) => p.body_len(version),
            Self::PubRel(p) => p.body_len(version),
            Self::PubComp(p) => p.body_len(version),
            Self::Subscribe(p) => p.body_len(version),
            Self::SubAck(p) => p.body_len(version),
            Self::Unsubscribe(p) => p.body_len(version),
            Self::UnsubAck(p) => p.body_len(version),
            Self::PingReq | Self::PingResp => Ok(0),
            Self::Disconnect(p) => p.body_len(version),
            Self::Auth(p) => {
                if !version.is_v5() {
                    return Err(EncodeError::PacketNotInVersion {
                        packet: PacketType::Auth,
                        version,
                    });
                }
                p.body_len()
            }
        }
    }

    /// The first byte: packet type and flags.
    fn first_byte(&self) -> u8 {
        let ty = self.packet_type();
        let flags = match self {
            Self::Publish(p) => p.flags(),
            _ => ty.required_flags(),
        };
        ((ty as u8) << 4) | flags
    }

    /// Exact encoded size of the packet for `version`, or why it cannot be encoded.
    ///
    /// CONNECT is laid out for the version it names, whatever `version` says.
    pub fn encoded_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let body = self.body_len(version)?;
        if body > MAX_VAR_INT as usize {
            return Err(EncodeError::PacketTooLarge(body));
        }
        Ok(1 + var_int_len(body) + body)
    }

    /// Appends the packet to `buf` in the layout of `version`, reserving its exact size once.
    /// Returns the number of bytes written. On error nothing is written.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use mqtt_proto::{Packet, ProtocolVersion};
    /// let mut buf = BytesMut::new();
    /// Packet::PingReq.encode(ProtocolVersion::V3_1_1, &mut buf).unwrap();
    /// assert_eq!(&buf[..], [0xC0, 0x00]);
    /// ```
    #[inline]
    pub fn encode(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        if let Self::Publish(p) = self {
            if let Some(total) = p.encode_small(version, buf) {
                return Ok(total);
            }
            return p.encode_with(version, buf, false).map(|(total, _)| total);
        } else if let Some(total) = self.encode_short(buf) {
            return Ok(total);
        }
        self.encode_other(version, buf)
    }

    /// [`Packet::encode`], except that the payload of a PUBLISH of at least
    /// [`SPLIT_PAYLOAD_MIN`] bytes is not copied: `buf` receives everything before it and the
    /// payload comes back, a reference to the packet's own, for the writer to send right after
    /// `buf`'s bytes (a vectored write, or a second write). Returns the size of the whole
    /// packet, payload included, and the payload if it was left out.
    ///
    /// ```
    /// use bytes::{Bytes, BytesMut};
    /// use mqtt_proto::{Packet, ProtocolVersion, Publish, QosPid, TopicName};
    /// let payload = Bytes::from(vec![7u8; 1 << 20]);
    /// let publish = Publish::new(TopicName::new("t").unwrap(), QosPid::AtMostOnce, payload.clone());
    /// let mut buf = BytesMut::new();
    /// let (size, rest) = Packet::Publish(publish).encode_split(ProtocolVersion::V5, &mut buf).unwrap();
    /// assert_eq!((size, buf.len()), (buf.len() + payload.len(), 8));
    /// assert_eq!(rest, Some(payload)); // the same bytes, not a copy
    /// ```
    #[inline]
    pub fn encode_split(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<(usize, Option<Bytes>), EncodeError> {
        if let Self::Publish(p) = self {
            return p.encode_split(version, buf);
        } else if let Some(total) = self.encode_short(buf) {
            return Ok((total, None));
        }
        self.encode_other(version, buf).map(|total| (total, None))
    }

    /// [`Packet::encode_split`] for a writer of several buffers: the payload of a PUBLISH and
    /// the client identifier, will topic, will payload, user name and password of a CONNECT
    /// go to `out` uncopied when they hold [`SPLIT_PAYLOAD_MIN`] bytes or more (see
    /// [`Segments`](crate::Segments), which shows one). Returns the size of the whole packet.
    /// On error nothing is written.
    #[inline(always)]
    pub fn encode_vectored(
        &self,
        version: ProtocolVersion,
        out: &mut impl crate::Segments,
    ) -> Result<usize, EncodeError> {
        if let Self::Publish(p) = self {
            let (size, rest) = p.encode_split(version, out.buf())?;
            if let Some(rest) = rest {
                push_cold(out, rest);
            }
            return Ok(size);
        } else if let Some(total) = self.encode_short(out.buf()) {
            return Ok(total);
        }
        self.encode_other_vectored(version, out)
    }

    /// [`Packet::encode_other`], with a CONNECT's large fields handed to `out` uncopied. Calls
    /// the packets' own encoders directly: each call level between cost a SUBSCRIBE or CONNECT
    /// some 20 instructions of saved registers and a result moved through memory.
    #[inline(always)]
    fn encode_other_vectored(
        &self,
        version: ProtocolVersion,
        out: &mut impl crate::Segments,
    ) -> Result<usize, EncodeError> {
        match self {
            // A CONNECT for another version than `version` fails as `encode` fails.
            Self::Connect(c) if c.protocol == version => {
                if let Some(result) = c.encode_plain(out.buf(), true) {
                    return result;
                }
                if c.has_large_field() {
                    return c.encode_segments(out);
                }
            }
            Self::Subscribe(p) => {
                if let Some(result) = p.encode_plain(version, out.buf()) {
                    return result;
                }
            }
            _ => {}
        }
        self.encode_general(version, out.buf())
    }

    /// Fixed-size packets in their common form, which are the same bytes in every version, in
    /// one append; `None` for any other packet.
    #[inline(always)]
    fn encode_short(&self, buf: &mut BytesMut) -> Option<usize> {
        match self {
            Self::PubAck(p) => p.short_form().map(|bytes| put_array(buf, bytes)),
            Self::PubRec(p) => p.short_form().map(|bytes| put_array(buf, bytes)),
            Self::PubRel(p) => p.short_form().map(|bytes| put_array(buf, bytes)),
            Self::PubComp(p) => p.short_form().map(|bytes| put_array(buf, bytes)),
            Self::PingReq => Some(put_array(buf, [(PacketType::PingReq as u8) << 4, 0])),
            Self::PingResp => Some(put_array(buf, [(PacketType::PingResp as u8) << 4, 0])),
            Self::Disconnect(p) if p.is_short_form() => {
                Some(put_array(buf, [(PacketType::Disconnect as u8) << 4, 0]))
            }
            _ => None,
        }
    }

    /// Every packet's encoder but PUBLISH's and the fixed-size packets': CONNECT and SUBSCRIBE
    /// without properties in their own layouts, the rest sized first, then written field by
    /// field.
    fn encode_other(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        let plain = match self {
            Self::Connect(p) if p.protocol == version => p.encode_plain(buf, false),
            Self::Subscribe(p) => p.encode_plain(version, buf),
            _ => None,
        };
        match plain {
            Some(result) => result,
            None => self.encode_general(version, buf),
        }
    }

    /// The general encoder: sized first, then written field by field.
    fn encode_general(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        if let Self::Publish(p) = self {
            return p.encode_with(version, buf, false).map(|(total, _)| total);
        }
        let body = self.body_len(version)?;
        if body > MAX_VAR_INT as usize {
            return Err(EncodeError::PacketTooLarge(body));
        }
        let total = 1 + var_int_len(body) + body;
        buf.reserve(total);
        let start = buf.len();
        buf.put_u8(self.first_byte());
        put_var_int(buf, body);
        match self {
            Self::Connect(p) => p.write(buf),
            Self::ConnAck(p) => p.write(version, buf),
            // Encoded by `Publish::encode_with`, above.
            Self::Publish(_) => {}
            Self::PubAck(p) => p.write(version, buf),
            Self::PubRec(p) => p.write(version, buf),
            Self::PubRel(p) => p.write(version, buf),
            Self::PubComp(p) => p.write(version, buf),
            Self::Subscribe(p) => p.write(version, buf),
            Self::SubAck(p) => p.write(version, buf),
            Self::Unsubscribe(p) => p.write(version, buf),
            Self::UnsubAck(p) => p.write(version, buf),
            Self::PingReq | Self::PingResp => {}
            Self::Disconnect(p) => p.write(version, buf),
            Self::Auth(p) => p.write(buf),
        }
        debug_assert_eq!(buf.len() - start, total, "encoded_len disagrees with write");
        Ok(total)
    }
}

/// Hands a payload left out of the buffer to `out`: out of line, so that the small packets'
/// path of [`Packet::encode_vectored`] stays short.
#[cold]
#[inline(never)]
fn push_cold(out: &mut impl crate::Segments, rest: Bytes) {
    out.push(rest);
}

/// Decodes one whole frame whose fixed header (`header_len` bytes, type `ty`, low nibble
/// `flags`) was read, into the owned packet.
#[inline(always)]
fn owned_from_frame(
    frame: Bytes,
    ty: PacketType,
    flags: u8,
    header_len: usize,
    version: ProtocolVersion,
) -> Result<Packet, Kind> {
    if ty == PacketType::Publish {
        owned_publish(frame, flags, header_len, version)
    } else {
        owned_other(&frame, ty, flags, header_len, version)
    }
}

/// PUBLISH, the packet decoded most, built from its checked parts: its topic shares the frame
/// without a second check, and its payload is the frame itself advanced past the headers,
/// which costs no reference count.
#[inline]
fn owned_publish(
    frame: Bytes,
    flags: u8,
    header_len: usize,
    version: ProtocolVersion,
) -> Result<Packet, Kind> {
    let body = frame.get(header_len..).ok_or(Kind::Truncated)?;
    // The set is built as the block is checked, in one pass, and allocated by its first
    // property.
    let mut properties = crate::PropertyBox::<PublishProperties>::default();
    let p = view::publish_parts(body, flags, version, |id, value| {
        properties.apply(&frame, id, value)
    })?;
    let topic = owned_topic(p.topic, |text| owned_string(&frame, text));
    let header_flags = (p.dup, p.qos_pid, p.retain);
    let payload_start = frame.len() - p.payload.len();
    let mut payload = frame;
    payload.advance(payload_start);
    Ok(publish_of(header_flags, topic, properties, payload))
}

/// A PUBLISH of at most [`COPY_PUBLISH_MAX`] bytes whose `body` is still in the read buffer:
/// its topic, payload and property strings are copied into allocations of their own.
///
/// Sharing the buffer instead costs an atomic increment and decrement of its reference count
/// for each of the frame and the topic, about 20 cycles apiece even when no other thread
/// touches them; two small allocations cost less (`benches/`: the 3.1.1 stream of 58-byte
/// PUBLISHes took 0.86 µs a packet shared, 0.70 µs copied). And a small message the
/// application keeps then keeps only itself, not the read buffer, which `BytesMut` can then
/// reuse in place.
#[inline]
fn copied_publish(body: &[u8], flags: u8, version: ProtocolVersion) -> Result<Packet, Kind> {
    // Nothing lies within an empty frame, so every property string is copied.
    let none = Bytes::new();
    let mut properties = crate::PropertyBox::<PublishProperties>::default();
    let p = view::publish_parts(body, flags, version, |id, value| {
        properties.apply(&none, id, value)
    })?;
    let topic = owned_topic(p.topic, crate::MqttString::copied);
    let payload = crate::text::copied_bytes(p.payload);
    Ok(publish_of(
        (p.dup, p.qos_pid, p.retain),
        topic,
        properties,
        payload,
    ))
}

/// The topic name of a decoded PUBLISH or will, `text` made owned by `own` (which holds a
/// short one, the empty name of a topic alias included, in place).
#[inline(always)]
fn owned_topic(text: &str, own: impl FnOnce(&str) -> crate::MqttString) -> TopicName {
    TopicName::from_checked(own(text))
}

/// The owned PUBLISH of DUP, QoS with packet identifier, and RETAIN, and its parts.
#[inline(always)]
fn publish_of(
    (dup, qos_pid, retain): (bool, crate::QosPid, bool),
    topic: TopicName,
    properties: crate::PropertyBox<PublishProperties>,
    payload: Bytes,
) -> Packet {
    Packet::Publish(Publish {
        dup,
        qos_pid,
        retain,
        topic,
        properties,
        payload,
    })
}

/// Every packet but PUBLISH, from the view's parsers. The acknowledgements, the next most
/// frequent, go to their parser directly rather than through [`PacketRef`]; the rest are
/// built from the view.
#[inline]
fn owned_other(
    frame: &Bytes,
    ty: PacketType,
    flags: u8,
    header_len: usize,
    version: ProtocolVersion,
) -> Result<Packet, Kind> {
    let body = frame.get(header_len..).ok_or(Kind::Truncated)?;
    view::check_flags(ty, flags)?;
    let r = view::Reader::new(body);
    Ok(match ty {
        PacketType::PubAck => {
            let a = view::ack(r, version, ty)?;
            Packet::PubAck(PubAck {
                packet_id: a.packet_id,
                reason_code: a.reason_code,
                properties: AckProperties::boxed_from_ref(frame, a.properties),
            })
        }
        PacketType::PubRec => {
            let a = view::ack(r, version, ty)?;
            Packet::PubRec(PubRec {
                packet_id: a.packet_id,
                reason_code: a.reason_code,
                properties: AckProperties::boxed_from_ref(frame, a.properties),
            })
        }
        PacketType::PubRel => {
            let a = view::ack(r, version, ty)?;
            Packet::PubRel(PubRel {
                packet_id: a.packet_id,
                reason_code: a.reason_code,
                properties: AckProperties::boxed_from_ref(frame, a.properties),
            })
        }
        PacketType::PubComp => {
            let a = view::ack(r, version, ty)?;
            Packet::PubComp(PubComp {
                packet_id: a.packet_id,
                reason_code: a.reason_code,
                properties: AckProperties::boxed_from_ref(frame, a.properties),
            })
        }
        PacketType::Connect => owned_connect(frame, r)?,
        PacketType::Subscribe => owned_subscribe(frame, r, version)?,
        PacketType::Unsubscribe => owned_unsubscribe(frame, r, version)?,
        _ => owned_from_ref(frame, &view::parse_checked(ty, body, version)?),
    })
}

/// CONNECT through the view's rules, each string made owned as it is checked.
#[inline(never)]
fn owned_connect(frame: &Bytes, r: view::Reader<'_>) -> Result<Packet, Kind> {
    let c = view::connect_with(r, |text| owned_string(frame, text))?;
    Ok(Packet::from(Connect {
        protocol: c.protocol,
        clean_start: c.clean_start,
        keep_alive: c.keep_alive,
        client_id: c.client_id,
        will: c.will.map(|w| LastWill {
            topic: TopicName::from_checked(w.topic),
            payload: share(frame, w.payload),
            qos: w.qos,
            retain: w.retain,
            properties: WillProperties::boxed_from_ref(frame, w.properties),
        }),
        username: c.username,
        password: c.password.map(|p| share(frame, p)),
        properties: ConnectProperties::boxed_from_ref(frame, c.properties),
    }))
}

/// SUBSCRIBE through the view's rules, each filter made owned as it is checked.
#[inline(never)]
fn owned_subscribe(
    frame: &Bytes,
    r: view::Reader<'_>,
    version: ProtocolVersion,
) -> Result<Packet, Kind> {
    let mut filters = Vec::with_capacity(8);
    let (packet_id, properties, _, _) = view::subscribe_with(
        r,
        version,
        // Made through an `MqttString`, whose variant test reads the buffer's four words one
        // at a time: a `ByteString` moved as it is from the parser into the list was copied
        // with 16-byte loads of the 8-byte stores that had just written it, and each filter
        // stalled on the store forwarding (`benches/`: ten filters 250 -> 304 ns).
        |text| crate::MqttString::from_byte_string(crate::text::shared(frame, text)),
        |filter, options| {
            filters.push(Subscription {
                filter: TopicFilter::from_checked(filter.into_byte_string()),
                options,
            })
        },
    )?;
    Ok(Packet::Subscribe(Subscribe {
        packet_id,
        properties: SubscribeProperties::from_ref(frame, properties),
        filters,
    }))
}

/// UNSUBSCRIBE through the view's rules, each filter made owned as it is checked.
#[inline(never)]
fn owned_unsubscribe(
    frame: &Bytes,
    r: view::Reader<'_>,
    version: ProtocolVersion,
) -> Result<Packet, Kind> {
    let mut filters = Vec::with_capacity(8);
    let (packet_id, properties, _, _) = view::unsubscribe_with(
        r,
        version,
        // As in `owned_subscribe`.
        |text| crate::MqttString::from_byte_string(crate::text::shared(frame, text)),
        |filter| filters.push(TopicFilter::from_checked(filter.into_byte_string())),
    )?;
    Ok(Packet::Unsubscribe(Unsubscribe {
        packet_id,
        properties: UnsubscribeProperties::from_ref(frame, properties),
        filters,
    }))
}

/// The owned packet of a view whose slices lie in `frame`.
pub(crate) fn owned_from_ref(frame: &Bytes, packet: &PacketRef<'_>) -> Packet {
    let f = frame;
    match *packet {
        PacketRef::Connect(c) => {
            let will = c.will.map(|w| LastWill {
                topic: owned_topic(w.topic, |text| owned_string(f, text)),
                payload: share(f, w.payload),
                qos: w.qos,
                retain: w.retain,
                properties: WillProperties::boxed_from_ref(f, w.properties),
            });
            Packet::from(Connect {
                protocol: c.protocol,
                clean_start: c.clean_start,
                keep_alive: c.keep_alive,
                client_id: owned_string(f, c.client_id),
                will,
                username: c.username.map(|u| owned_string(f, u)),
                password: c.password.map(|p| share(f, p)),
                properties: ConnectProperties::boxed_from_ref(f, c.properties),
            })
        }
        PacketRef::ConnAck(c) => Packet::from(ConnAck {
            session_present: c.session_present,
            reason_code: c.reason_code,
            properties: ConnAckProperties::from_ref(f, c.properties),
        }),
        PacketRef::Publish(p) => Packet::Publish(Publish {
            dup: p.dup,
            qos_pid: p.qos_pid,
            retain: p.retain,
            topic: owned_topic(p.topic, |text| owned_string(f, text)),
            properties: PublishProperties::boxed_from_ref(f, p.properties),
            payload: share(f, p.payload),
        }),
        PacketRef::PubAck(a) => Packet::PubAck(PubAck {
            packet_id: a.packet_id,
            reason_code: a.reason_code,
            properties: AckProperties::boxed_from_ref(f, a.properties),
        }),
        PacketRef::PubRec(a) => Packet::PubRec(PubRec {
            packet_id: a.packet_id,
            reason_code: a.reason_code,
            properties: AckProperties::boxed_from_ref(f, a.properties),
        }),
        PacketRef::PubRel(a) => Packet::PubRel(PubRel {
            packet_id: a.packet_id,
            reason_code: a.reason_code,
            properties: AckProperties::boxed_from_ref(f, a.properties),
        }),
        PacketRef::PubComp(a) => Packet::PubComp(PubComp {
            packet_id: a.packet_id,
            reason_code: a.reason_code,
            properties: AckProperties::boxed_from_ref(f, a.properties),
        }),
        PacketRef::Subscribe(s) => {
            let mut filters = Vec::with_capacity(s.filters.len());
            for (filter, options) in s.filters {
                filters.push(Subscription {
                    filter: TopicFilter::from_checked(crate::text::shared(f, filter)),
                    options,
                });
            }
            Packet::Subscribe(Subscribe {
                packet_id: s.packet_id,
                properties: SubscribeProperties::from_ref(f, s.properties),
                filters,
            })
        }
        PacketRef::SubAck(s) => Packet::SubAck(SubAck {
            packet_id: s.packet_id,
            properties: AckProperties::boxed_from_ref(f, s.properties),
            reason_codes: s.reason_codes.iter().collect(),
        }),
        PacketRef::Unsubscribe(u) => {
            let mut filters = Vec::with_capacity(u.filters.len());
            for filter in u.filters {
                filters.push(TopicFilter::from_checked(crate::text::shared(f, filter)));
            }
            Packet::Unsubscribe(Unsubscribe {
                packet_id: u.packet_id,
                properties: UnsubscribeProperties::from_ref(f, u.properties),
                filters,
            })
        }
        PacketRef::UnsubAck(u) => Packet::UnsubAck(UnsubAck {
            packet_id: u.packet_id,
            properties: AckProperties::boxed_from_ref(f, u.properties),
            reason_codes: u.reason_codes.iter().collect(),
        }),
        PacketRef::PingReq => Packet::PingReq,
        PacketRef::PingResp => Packet::PingResp,
        PacketRef::Disconnect(d) => Packet::Disconnect(Disconnect {
            reason_code: d.reason_code,
            properties: DisconnectProperties::boxed_from_ref(f, d.properties),
        }),
        PacketRef::Auth(a) => Packet::Auth(Auth {
            reason_code: a.reason_code,
            properties: AuthProperties::boxed_from_ref(f, a.properties),
        }),
    }
}

/// PUBLISH frames up to this size that [`Decoder::decode`] reads are copied out of the buffer
/// (see [`copied_publish`]); larger ones share it.
const COPY_PUBLISH_MAX: usize = 256;

/// Most bytes reserved ahead of what has arrived while a packet is incomplete.
const RESERVE_AHEAD: usize = 1 << 20;

/// Cuts packets out of a byte stream and decodes them, enforcing a maximum packet size before
/// any body is buffered.
///
/// ```
/// use bytes::BytesMut;
/// use mqtt_proto::{Decoder, Packet, ProtocolVersion};
/// let decoder = Decoder::new(ProtocolVersion::V3_1_1);
/// let mut stream = BytesMut::from(&[0xD0, 0x00, 0xD0][..]);
/// assert_eq!(decoder.decode(&mut stream), Ok(Some(Packet::PingResp)));
/// assert_eq!(decoder.decode(&mut stream), Ok(None)); // half a packet: wait for more
/// assert_eq!(stream.len(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder {
    version: ProtocolVersion,
    max_packet_size: usize,
}

impl Decoder {
    /// A decoder for `version` that accepts packets up to the spec's largest,
    /// [`MAX_PACKET_SIZE`].
    pub const fn new(version: ProtocolVersion) -> Self {
        Self {
            version,
            max_packet_size: MAX_PACKET_SIZE,
        }
    }

    /// Limits whole packets (fixed header included) to `max` bytes.
    pub const fn with_max_packet_size(mut self, max: usize) -> Self {
        self.max_packet_size = max;
        self
    }

    /// The version packets are decoded as.
    pub const fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// Changes the version, e.g. once CONNECT has chosen it.
    pub fn set_version(&mut self, version: ProtocolVersion) {
        self.version = version;
    }

    /// The largest packet accepted, in bytes.
    pub const fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    /// Reads the fixed header at the start of `buf`: `Ok(None)` if it is incomplete, else the
    /// header size and the whole packet size, checked against the maximum.
    pub fn frame_len(&self, buf: &[u8]) -> Result<Option<(usize, usize)>, DecodeError> {
        match self.header(buf) {
            Ok(h) => Ok(h.map(|(_, _, header_len, size)| (header_len, size))),
            Err(kind) => Err(self.error(kind)),
        }
    }

    /// The fixed header, its size checked against the maximum.
    #[inline(always)]
    fn header(&self, buf: &[u8]) -> Result<Option<(PacketType, u8, usize, usize)>, Kind> {
        let header = view::fixed_header(buf, self.version)?;
        if let Some((_, _, _, size)) = header {
            if size > self.max_packet_size {
                return Err(Kind::PacketTooLarge {
                    size,
                    max: self.max_packet_size,
                });
            }
        }
        Ok(header)
    }

    /// The error of `kind` on this decoder's connection.
    #[cold]
    fn error(&self, kind: Kind) -> DecodeError {
        DecodeError::new(kind, self.version)
    }

    /// Decodes the packet at the start of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed; nothing is consumed then, and once the packet's
    /// size is known and allowed `buf` is grown towards it (at most 1 MiB at a time). A packet
    /// is removed from `buf` only when it decodes. After an error the stream cannot be
    /// resynchronised: close it.
    ///
    /// A decoded packet shares `buf`'s bytes (reference-counted `Bytes`), except a PUBLISH of
    /// at most 256 bytes: its topic, payload and property strings are copied, which costs less
    /// than sharing, and a kept small message then keeps none of `buf`.
    #[inline]
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        match self.decode_kind(buf) {
            Ok(p) => Ok(p),
            Err(kind) => Err(self.error(kind)),
        }
    }

    #[inline(always)]
    fn decode_kind(&self, buf: &mut BytesMut) -> Result<Option<Packet>, Kind> {
        let Some((ty, flags, header_len, size)) = self.header(buf)? else {
            return Ok(None);
        };
        if buf.len() < size {
            // Room for the rest of the packet, but no more than 1 MiB ahead of the bytes that
            // actually arrived: a header alone cannot make the decoder allocate the maximum.
            buf.reserve((size - buf.len()).min(RESERVE_AHEAD));
            return Ok(None);
        }
        if ty == PacketType::Publish && size <= COPY_PUBLISH_MAX {
            let body = buf.get(header_len..size).unwrap_or_default();
            let packet = copied_publish(body, flags, self.version)?;
            buf.advance(size);
            return Ok(Some(packet));
        }
        let frame = buf.split_to(size).freeze();
        owned_from_frame(frame, ty, flags, header_len, self.version).map(Some)
    }

    /// Decodes one whole frame, fixed header included, that was cut out by other means.
    pub fn decode_frame(&self, frame: &Bytes) -> Result<Packet, DecodeError> {
        let decoded = match self.header(frame) {
            Ok(Some((ty, flags, header_len, size))) if size == frame.len() => {
                if ty == PacketType::Publish {
                    owned_publish(frame.clone(), flags, header_len, self.version)
                } else {
                    owned_other(frame, ty, flags, header_len, self.version)
                }
            }
            Ok(Some((_, _, _, size))) if size < frame.len() => {
                Err(Kind::TrailingBytes(frame.len() - size))
            }
            Ok(_) => Err(Kind::Truncated),
            Err(kind) => Err(kind),
        };
        decoded.map_err(|kind| self.error(kind))
    }

    /// Decodes the packet at the start of `buf` into a view that borrows from `buf`: no
    /// allocation, no reference count, the same checks as [`Decoder::decode`].
    ///
    /// `Ok(None)` means more bytes are needed. Otherwise the packet and the number of bytes it
    /// took, which the caller skips to read the next one.
    ///
    /// ```
    /// use mqtt_proto::{Decoder, PacketRef, ProtocolVersion};
    /// let decoder = Decoder::new(ProtocolVersion::V3_1_1);
    /// let stream = [0x30, 0x06, 0x00, 0x01, b't', b'h', b'i', b'!', 0xD0];
    /// let Ok(Some((PacketRef::Publish(p), used))) = decoder.decode_ref(&stream) else {
    ///     panic!("a PUBLISH")
    /// };
    /// assert_eq!((p.topic, p.payload, used), ("t", &b"hi!"[..], 8));
    /// assert_eq!(decoder.decode_ref(&stream[used..]), Ok(None)); // half a PINGRESP
    /// ```
    #[inline]
    pub fn decode_ref<'a>(
        &self,
        buf: &'a [u8],
    ) -> Result<Option<(PacketRef<'a>, usize)>, DecodeError> {
        match self.decode_ref_kind(buf) {
            Ok(p) => Ok(p),
            Err(kind) => Err(self.error(kind)),
        }
    }

    #[inline(always)]
    fn decode_ref_kind<'a>(&self, buf: &'a [u8]) -> Result<Option<(PacketRef<'a>, usize)>, Kind> {
        let Some((ty, flags, header_len, size)) = self.header(buf)? else {
            return Ok(None);
        };
        let Some(body) = buf.get(header_len..size) else {
            return Ok(None);
        };
        Ok(Some((view::parse(ty, flags, body, self.version)?, size)))
    }

    /// Decodes one whole frame, fixed header included, into a view that borrows from it.
    pub fn decode_frame_ref<'a>(&self, frame: &'a [u8]) -> Result<PacketRef<'a>, DecodeError> {
        let decoded = match self.header(frame) {
            Ok(Some((ty, flags, header_len, size))) if size == frame.len() => {
                let body = frame.get(header_len..).unwrap_or_default();
                view::parse(ty, flags, body, self.version)
            }
            Ok(Some((_, _, _, size))) if size < frame.len() => {
                Err(Kind::TrailingBytes(frame.len() - size))
            }
            Ok(_) => Err(Kind::Truncated),
            Err(kind) => Err(kind),
        };
        decoded.map_err(|kind| self.error(kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MqttString, PacketId, QoS};

    /// The bytes of `packet` from `Packet::encode` (the fast paths) and from the general
    /// encoder, which sizes every field and then writes it.
    fn both_encodings(packet: &Packet, version: ProtocolVersion) -> (Vec<u8>, Vec<u8>) {
        let (mut fast, mut general) = (BytesMut::new(), BytesMut::new());
        let fast_len = packet.encode(version, &mut fast);
        let general_len = packet.encode_general(version, &mut general);
        assert_eq!(fast_len, general_len, "{packet:?}");
        assert_eq!(fast_len.unwrap_or(0), fast.len(), "{packet:?}");
        (fast.to_vec(), general.to_vec())
    }

    #[test]
    fn fast_encoders_write_what_the_general_one_writes() {
        let versions = [
            ProtocolVersion::V3_1,
            ProtocolVersion::V3_1_1,
            ProtocolVersion::V5,
        ];
        let text = |s: &str| MqttString::new(s).unwrap();
        let long = "u".repeat(300);
        for version in versions {
            let mut connects = vec![Connect::new(version, text("c"), 60)];
            let mut full = Connect::new(version, text("client-1"), 0xABCD);
            full.clean_start = false;
            full.will = Some(LastWill::new(
                TopicName::new("will/topic").unwrap(),
                vec![7u8; 200],
                QoS::ExactlyOnce,
            ));
            full.username = Some(text(&long));
            full.password = Some(Bytes::from_static(b"secret"));
            connects.push(full.clone());
            full.will.as_mut().unwrap().retain = true;
            full.username = None;
            connects.push(full);
            for connect in connects {
                let packet = Packet::from(connect);
                let (fast, general) = both_encodings(&packet, version);
                assert_eq!(fast, general, "{packet:?}");
            }
            let filters = ["a/+/c", "#", "$share/g/x", &long];
            for n in 1..=filters.len() {
                let subs = filters[..n]
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let qos = QoS::from_u8(i as u8 % 3).unwrap();
                        Subscription::new(TopicFilter::new(f).unwrap(), qos)
                    })
                    .collect();
                let packet = Packet::Subscribe(Subscribe::new(PacketId::new(513).unwrap(), subs));
                let (fast, general) = both_encodings(&packet, version);
                assert_eq!(fast, general, "{packet:?}");
            }
        }
        // The errors are the general encoder's, in its order.
        let mut bad = Connect::new(ProtocolVersion::V3_1_1, text("c"), 0);
        bad.password = Some(Bytes::from_static(b"p"));
        let (fast, _) = both_encodings(&Packet::from(bad), ProtocolVersion::V3_1_1);
        assert!(fast.is_empty());
        let empty = Packet::Subscribe(Subscribe::new(PacketId::new(1).unwrap(), vec![]));
        assert_eq!(
            empty.encode(ProtocolVersion::V5, &mut BytesMut::new()),
            Err(EncodeError::NoTopicFilters)
        );
        let mut no_local =
            Subscription::new(TopicFilter::new("$share/g/t").unwrap(), QoS::AtMostOnce);
        no_local.options.no_local = true;
        let shared = Packet::Subscribe(Subscribe::new(PacketId::new(1).unwrap(), vec![no_local]));
        let (fast, _) = both_encodings(&shared, ProtocolVersion::V5);
        assert!(fast.is_empty());
    }

    #[test]
    fn packet_is_about_the_size_of_publish() {
        // Every decoded packet is moved at least once (out of the parser, into `Option`/`Result`
        // and on to the caller), so the enum's size is paid per packet: the large, rare
        // CONNECT and CONNACK stay boxed to keep it near the size of the common PUBLISH.
        assert!(
            core::mem::size_of::<Packet>() <= core::mem::size_of::<Publish>() + 8,
            "Packet is {} bytes, Publish {}",
            core::mem::size_of::<Packet>(),
            core::mem::size_of::<Publish>(),
        );
    }

    #[test]
    fn publish_keeps_its_properties_out_of_line() {
        // The topic (a short name in place, a `Bytes` otherwise, in five words), the payload (a
        // `Bytes`), one pointer for the property set, QoS and flags: a PUBLISH is copied
        // through every queue on its way, so it must stay this small.
        assert_eq!(core::mem::size_of::<crate::MqttString>(), 40);
        assert_eq!(core::mem::size_of::<TopicName>(), 40);
        let size = core::mem::size_of::<Publish>();
        assert!(size <= 88, "Publish is {size} bytes");
        assert!(core::mem::size_of::<PubAck>() <= 16);
        assert!(
            core::mem::size_of::<Packet>() <= 88,
            "Packet is {} bytes",
            core::mem::size_of::<Packet>()
        );
    }

    #[test]
    fn from_boxes_connect_and_connack() {
        let connack = ConnAck::accepted(false);
        assert_eq!(
            Packet::from(connack.clone()),
            Packet::ConnAck(Box::new(connack))
        );
        let connect = Connect::new(ProtocolVersion::V5, MqttString::default(), 60);
        assert_eq!(
            Packet::from(connect.clone()),
            Packet::Connect(Box::new(connect))
        );
    }
}
