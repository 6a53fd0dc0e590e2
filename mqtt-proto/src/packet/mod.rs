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
pub use publish::Publish;
pub use subscribe::{
    RetainHandling, SubAck, Subscribe, Subscription, SubscriptionOptions, UnsubAck, Unsubscribe,
};

use alloc::boxed::Box;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::primitives::{put_var_int, var_int_len, MAX_VAR_INT};
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
    fn from_first_byte(byte: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
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
            other => return Err(DecodeError::InvalidPacketType(other)),
        })
    }

    /// The fixed flags every packet but PUBLISH must carry [MQTT-2.2.2-1 v3.1.1]
    /// [MQTT-2.1.3-1 v5.0].
    const fn required_flags(self) -> u8 {
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
    pub fn encode(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        // Fixed-size packets in their common form are the same bytes in every version.
        match self {
            Self::PubAck(p) => {
                if let Some(bytes) = p.short_form() {
                    return Ok(put_short(buf, &bytes));
                }
            }
            Self::PubRec(p) => {
                if let Some(bytes) = p.short_form() {
                    return Ok(put_short(buf, &bytes));
                }
            }
            Self::PubRel(p) => {
                if let Some(bytes) = p.short_form() {
                    return Ok(put_short(buf, &bytes));
                }
            }
            Self::PubComp(p) => {
                if let Some(bytes) = p.short_form() {
                    return Ok(put_short(buf, &bytes));
                }
            }
            Self::PingReq => return Ok(put_short(buf, &[(PacketType::PingReq as u8) << 4, 0])),
            Self::PingResp => return Ok(put_short(buf, &[(PacketType::PingResp as u8) << 4, 0])),
            Self::Disconnect(p) if p.is_short_form() => {
                return Ok(put_short(buf, &[(PacketType::Disconnect as u8) << 4, 0]));
            }
            _ => {}
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
            Self::Publish(p) => p.write(version, buf),
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

    /// Parses one whole frame (fixed header included, as cut by [`Decoder`]).
    ///
    /// `header_len` is the size of the fixed header at the start of `frame`.
    #[inline]
    fn parse(
        frame: Bytes,
        header_len: usize,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let first = *frame.first().ok_or(DecodeError::Truncated)?;
        let ty = PacketType::from_first_byte(first, version)?;
        let flags = first & 0x0F;
        if ty == PacketType::Publish {
            return Publish::parse_packet(frame, header_len, flags, version);
        }
        if flags != ty.required_flags() {
            // [MQTT-2.2.2-1 v3.1.1] [MQTT-2.2.2-2 v3.1.1] [MQTT-2.1.3-1 v5.0]
            // [MQTT-3.6.1-1 v3.1.1 v5.0] [MQTT-3.8.1-1 v3.1.1 v5.0] [MQTT-3.10.1-1 v3.1.1 v5.0]
            // [MQTT-3.14.1-1 v3.1.1 v5.0] [MQTT-3.15.1-1 v5.0]
            return Err(DecodeError::InvalidFlags { packet: ty, flags });
        }
        Self::parse_other(&frame, header_len, ty, flags, version)
    }

    /// Parses a packet whose type and flags were checked; PUBLISH takes [`Packet::parse`]'s
    /// path that hands it the frame.
    fn parse_other(
        frame: &Bytes,
        header_len: usize,
        ty: PacketType,
        flags: u8,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let body = frame.get(header_len..).ok_or(DecodeError::Truncated)?;
        Ok(match ty {
            PacketType::Connect => Connect::parse(frame, body)?.into(),
            PacketType::ConnAck => ConnAck::parse(frame, body, version)?.into(),
            PacketType::Publish => {
                return Publish::parse_packet(frame.clone(), header_len, flags, version)
            }
            PacketType::PubAck => return PubAck::parse_packet(frame, body, version),
            PacketType::PubRec => return PubRec::parse_packet(frame, body, version),
            PacketType::PubRel => return PubRel::parse_packet(frame, body, version),
            PacketType::PubComp => return PubComp::parse_packet(frame, body, version),
            PacketType::Subscribe => Self::Subscribe(Subscribe::parse(frame, body, version)?),
            PacketType::SubAck => Self::SubAck(SubAck::parse(frame, body, version)?),
            PacketType::Unsubscribe => Self::Unsubscribe(Unsubscribe::parse(frame, body, version)?),
            PacketType::UnsubAck => Self::UnsubAck(UnsubAck::parse(frame, body, version)?),
            PacketType::PingReq => empty(body, Self::PingReq)?,
            PacketType::PingResp => empty(body, Self::PingResp)?,
            PacketType::Disconnect => Self::Disconnect(Disconnect::parse(frame, body, version)?),
            PacketType::Auth => Self::Auth(Auth::parse(frame, body)?),
        })
    }
}

/// Appends a whole packet of a few bytes; returns its size.
#[inline]
fn put_short(buf: &mut BytesMut, bytes: &[u8]) -> usize {
    buf.extend_from_slice(bytes);
    bytes.len()
}

/// A packet without a body: anything after the fixed header is an error.
fn empty(body: &[u8], packet: Packet) -> Result<Packet, DecodeError> {
    if body.is_empty() {
        Ok(packet)
    } else {
        Err(DecodeError::TrailingBytes(body.len()))
    }
}

/// Fails if a parser left bytes behind.
pub(crate) fn expect_end(rest: &[u8]) -> Result<(), DecodeError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::TrailingBytes(rest.len()))
    }
}

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
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        PacketType::from_first_byte(first, self.version)?;
        let Some((remaining, len_bytes)) =
            crate::primitives::read_var_int(buf.get(1..).unwrap_or_default())?
        else {
            return Ok(None);
        };
        let header_len = 1 + len_bytes;
        let size = header_len + remaining as usize;
        if size > self.max_packet_size {
            return Err(DecodeError::PacketTooLarge {
                size,
                max: self.max_packet_size,
            });
        }
        Ok(Some((header_len, size)))
    }

    /// Decodes the packet at the start of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed; nothing is consumed then, and once the packet's
    /// size is known and allowed `buf` is grown towards it (at most 1 MiB at a time). A packet is removed from `buf`
    /// only when it decodes. After an error the stream cannot be resynchronised: close it.
    #[inline]
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let Some((header_len, size)) = self.frame_len(buf)? else {
            return Ok(None);
        };
        if buf.len() < size {
            // Room for the rest of the packet, but no more than 1 MiB ahead of the bytes that
            // actually arrived: a header alone cannot make the decoder allocate the maximum.
            buf.reserve((size - buf.len()).min(RESERVE_AHEAD));
            return Ok(None);
        }
        let frame = buf.split_to(size).freeze();
        match Packet::parse(frame, header_len, self.version) {
            Ok(packet) => Ok(Some(packet)),
            Err(e) => Err(e),
        }
    }

    /// Decodes one whole frame, fixed header included, that was cut out by other means.
    pub fn decode_frame(&self, frame: &Bytes) -> Result<Packet, DecodeError> {
        match self.frame_len(frame)? {
            Some((header_len, size)) if size == frame.len() => {
                Packet::parse(frame.clone(), header_len, self.version)
            }
            Some((_, size)) if size < frame.len() => {
                Err(DecodeError::TrailingBytes(frame.len() - size))
            }
            _ => Err(DecodeError::Truncated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MqttString;

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
