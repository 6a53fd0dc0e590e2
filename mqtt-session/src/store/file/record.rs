//! One record of the log: its frame (marker, length, checksums), the body of each kind of
//! write, and a scanner that cuts a log into records and the bad stretches between them.
//!
//! The layout is described in the [parent module](super).

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use mqtt_proto::{
    Decoder, Packet, PacketId, ProtocolVersion, Publish, QoS, QosPid, Subscribe, TopicFilter,
    MAX_PACKET_SIZE,
};

use crate::event::PublishToken;
use crate::message::Message;
use crate::store::{OutgoingRecord, OutgoingState, QueuedRecord, StoreError, SubscriptionRecord};

/// The first bytes of every record.
pub(super) const MARKER: [u8; 4] = *b"MQL1";
/// Marker, body length, body CRC and header CRC.
pub(super) const HEADER_LEN: usize = 16;
/// The largest body a record may have: an outgoing record with a deadline around the largest
/// PUBLISH.
const MAX_BODY: usize = 1 + 8 + 8 + 1 + 8 + MAX_PACKET_SIZE;

/// Record kinds: the first byte of a body.
const PUT_OUTGOING: u8 = 1;
const REMOVE_OUTGOING: u8 = 2;
const PUT_INCOMING: u8 = 3;
const REMOVE_INCOMING: u8 = 4;
const PUT_QUEUED: u8 = 5;
const REMOVE_QUEUED: u8 = 6;
const CLEAR: u8 = 7;
const COMMIT: u8 = 8;
const PUT_SUBSCRIPTION: u8 = 9;
const REMOVE_SUBSCRIPTION: u8 = 10;
/// Kinds 1 and 5 with the message's deadline. A record without one keeps the older kind, which
/// every version reads.
const PUT_OUTGOING_EXPIRING: u8 = 11;
const PUT_QUEUED_EXPIRING: u8 = 12;

/// How a commit record's batch was written.
const APPENDED: u8 = 1;
const REWRITTEN: u8 = 2;

/// Outgoing flow states on disk.
const PUBLISHED: u8 = 1;
const RELEASED: u8 = 2;

/// The packet identifier written into queued messages, which have none yet, and into
/// subscriptions, which keep none.
pub(super) const PLACEHOLDER_ID: PacketId = PacketId::MIN;

/// What a record is about: later records with the same key replace earlier ones.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Key {
    /// An outgoing flow, by packet identifier.
    Outgoing(u16),
    /// An incoming QoS 2 identifier.
    Incoming(u16),
    /// A queued message, by token.
    Queued(u64),
    /// A subscription, by filter. The text is a copy of its own: the store keeps its keys for
    /// as long as it is open, and a decoded filter is a slice that would pin the whole log
    /// buffer it was read from. `str` order, so the subscriptions of a replay come out sorted
    /// by filter.
    Subscription(Box<str>),
}

impl Key {
    fn subscription(filter: &TopicFilter) -> Self {
        Self::Subscription(filter.as_str().into())
    }
}

/// One write of the session, as the store receives it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Write<'a> {
    PutOutgoing(&'a OutgoingRecord),
    RemoveOutgoing(PacketId),
    PutIncoming(PacketId),
    RemoveIncoming(PacketId),
    PutQueued(&'a QueuedRecord),
    RemoveQueued(PublishToken),
    PutSubscription(&'a SubscriptionRecord),
    RemoveSubscription(&'a TopicFilter),
    Clear,
    /// Ends a batch that starts at offset `start`; `rewritten` if the file was written whole
    /// and renamed into place, else appended by a commit.
    Commit {
        start: u64,
        rewritten: bool,
    },
}

/// What a record does to the set of live keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Effect {
    Put(Key),
    Remove(Key),
    Clear,
    /// A commit record: no key.
    Nothing,
}

/// A stored value, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    Outgoing(OutgoingRecord),
    Incoming(PacketId),
    Queued(QueuedRecord),
    Subscription(SubscriptionRecord),
}

impl Value {
    /// The key the value is stored under.
    pub(super) fn key(&self) -> Option<Key> {
        match self {
            Self::Outgoing(r) => r.packet_id().map(|id| Key::Outgoing(id.get())),
            Self::Incoming(id) => Some(Key::Incoming(id.get())),
            Self::Queued(r) => Some(Key::Queued(r.token.0)),
            Self::Subscription(r) => Some(Key::subscription(&r.subscription.filter)),
        }
    }

    /// The write that puts the value.
    pub(super) fn put(&self) -> Write<'_> {
        match self {
            Self::Outgoing(r) => Write::PutOutgoing(r),
            Self::Incoming(id) => Write::PutIncoming(*id),
            Self::Queued(r) => Write::PutQueued(r),
            Self::Subscription(r) => Write::PutSubscription(r),
        }
    }
}

/// A record body, decoded. Most are puts, whose value moves on into the replay's map: boxing
/// it would cost an allocation per record for nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub(super) enum Op {
    Put(Key, Value),
    Remove(Key),
    Clear,
    Commit { start: u64, rewritten: bool },
}

fn qos0() -> StoreError {
    StoreError::Corrupt("QoS 0 message in the store".into())
}

impl Write<'_> {
    /// What the write does to the live keys; fails for a message that cannot be stored.
    pub(super) fn effect(&self) -> Result<Effect, StoreError> {
        Ok(match *self {
            Self::PutOutgoing(r) => {
                Effect::Put(Key::Outgoing(r.packet_id().ok_or_else(qos0)?.get()))
            }
            Self::RemoveOutgoing(id) => Effect::Remove(Key::Outgoing(id.get())),
            Self::PutIncoming(id) => Effect::Put(Key::Incoming(id.get())),
            Self::RemoveIncoming(id) => Effect::Remove(Key::Incoming(id.get())),
            Self::PutQueued(r) => Effect::Put(Key::Queued(r.token.0)),
            Self::RemoveQueued(token) => Effect::Remove(Key::Queued(token.0)),
            Self::PutSubscription(r) => Effect::Put(Key::subscription(&r.subscription.filter)),
            Self::RemoveSubscription(filter) => Effect::Remove(Key::subscription(filter)),
            Self::Clear => Effect::Clear,
            Self::Commit { .. } => Effect::Nothing,
        })
    }
}

#[cfg(test)]
impl Op {
    /// What the record does to the live keys.
    pub(super) fn effect(&self) -> Effect {
        match self {
            Self::Put(key, _) => Effect::Put(key.clone()),
            Self::Remove(key) => Effect::Remove(key.clone()),
            Self::Clear => Effect::Clear,
            Self::Commit { .. } => Effect::Nothing,
        }
    }
}

// ----- frame -----

/// CRC-32C (Castagnoli) rather than the IEEE CRC-32 of `crc32fast`: it keeps a Hamming
/// distance of 4 (every 1-, 2- and 3-bit error detected) up to far longer messages than the
/// IEEE polynomial, which drops to 3 past about 11 KiB, and records can be megabytes; it is
/// the checksum of ext4 and btrfs metadata, iSCSI and LevelDB/RocksDB logs for that reason,
/// and modern x86 and ARM CPUs compute it in hardware, which the crate uses.
fn crc(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// The header fields that the header CRC covers after the offset.
fn fields(body_len: u32, body_crc: u32) -> [u8; 12] {
    let mut out = [0; 12];
    let bytes = MARKER
        .into_iter()
        .chain(body_len.to_be_bytes())
        .chain(body_crc.to_be_bytes());
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = b;
    }
    out
}

/// The header CRC: the record's offset in its log (not stored, so a record is valid only
/// where it was written and a record quoted inside another's payload never resynchronises a
/// scan), then marker, length and body CRC (which covers the body).
fn header_crc(offset: u64, fields: &[u8; 12]) -> u32 {
    crc32c::crc32c_append(crc(&offset.to_be_bytes()), fields)
}

/// The whole header of a record at `offset` with a body of `body_len` bytes.
pub(super) fn header(offset: u64, body_len: u32, body_crc: u32) -> [u8; HEADER_LEN] {
    let fields = fields(body_len, body_crc);
    let mut out = [0; HEADER_LEN];
    let bytes = fields
        .into_iter()
        .chain(header_crc(offset, &fields).to_be_bytes());
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = b;
    }
    out
}

/// The header of a record holding `body` at `offset`; fails if the body is too large.
pub(super) fn header_for(offset: u64, body: &[u8]) -> Result<[u8; HEADER_LEN], StoreError> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&len| len as usize <= MAX_BODY)
        .ok_or_else(|| StoreError::Corrupt(format!("record of {} bytes", body.len())))?;
    Ok(header(offset, len, crc(body)))
}

/// Appends `write` to `buf` as one record at log offset `offset`; returns its effect. On
/// error `buf` is left as it was.
pub(super) fn append(
    buf: &mut BytesMut,
    offset: u64,
    write: &Write<'_>,
) -> Result<Effect, StoreError> {
    let effect = write.effect()?;
    let start = buf.len();
    buf.put_bytes(0, HEADER_LEN);
    let sealed = encode_body(buf, write).and_then(|()| {
        let (head, body) = buf
            .get_mut(start..)
            .and_then(|record| record.split_at_mut_checked(HEADER_LEN))
            .ok_or_else(|| StoreError::Corrupt("record buffer".into()))?;
        head.copy_from_slice(&header_for(offset, body)?);
        Ok(())
    });
    match sealed {
        Ok(()) => Ok(effect),
        Err(e) => {
            buf.truncate(start);
            Err(e)
        }
    }
}

/// Rewrites the header CRCs of the records in `buf` (whose lengths are `lens`, in order) for
/// a new start offset `base` in the log.
pub(super) fn rebase(buf: &mut [u8], base: u64, lens: impl IntoIterator<Item = usize>) {
    let mut pos = 0;
    for len in lens {
        let offset = base + pos as u64;
        if let Some(head) = buf.get_mut(pos..pos + HEADER_LEN) {
            let mut reader = Reader(head);
            if let (Some(_), Some(body_len), Some(body_crc)) =
                (reader.array::<4>(), reader.u32(), reader.u32())
            {
                head.copy_from_slice(&header(offset, body_len, body_crc));
            }
        }
        pos += len;
    }
}

/// Why no record starts at an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameError {
    /// The log ends inside the header: `have` bytes of it.
    ShortHeader { have: usize },
    /// The log ends inside the body.
    ShortBody { have: usize, want: usize },
    /// No marker.
    Marker,
    /// The header CRC does not match.
    HeaderChecksum,
    /// The header is valid but announces a body larger than any record.
    TooLong(u32),
    /// The body CRC does not match.
    BodyChecksum,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ShortHeader { have } => {
                write!(f, "the log ends {have} bytes into a record header")
            }
            Self::ShortBody { have, want } => {
                write!(f, "the log ends {have} bytes into a record of {want} bytes")
            }
            Self::Marker => write!(f, "no record marker"),
            Self::HeaderChecksum => write!(f, "record header checksum mismatch"),
            Self::TooLong(len) => write!(f, "record body of {len} bytes is too large"),
            Self::BodyChecksum => write!(f, "record body checksum mismatch"),
        }
    }
}

/// Reads big-endian fields off the front of a slice, never past its end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn rest(&self) -> &'a [u8] {
        self.0
    }
}

/// The body length of the valid record at `pos` of `buf`, a log whose first byte is at
/// offset `base` of its file.
fn frame_at(buf: &[u8], pos: usize, base: u64) -> Result<usize, FrameError> {
    let rest = buf.get(pos..).unwrap_or_default();
    let mut reader = Reader(rest);
    let (Some(marker), Some(body_len), Some(body_crc), Some(stored_crc)) = (
        reader.array::<4>(),
        reader.u32(),
        reader.u32(),
        reader.u32(),
    ) else {
        // Either the marker is already wrong, or the log ends inside the header.
        return match rest.get(..MARKER.len().min(rest.len())) {
            Some(start) if MARKER.starts_with(start) => {
                Err(FrameError::ShortHeader { have: rest.len() })
            }
            _ => Err(FrameError::Marker),
        };
    };
    if marker != MARKER {
        return Err(FrameError::Marker);
    }
    if header_crc(base + pos as u64, &fields(body_len, body_crc)) != stored_crc {
        return Err(FrameError::HeaderChecksum);
    }
    let len = body_len as usize;
    if len > MAX_BODY {
        return Err(FrameError::TooLong(body_len));
    }
    let body = reader.rest();
    let Some(body) = body.get(..len) else {
        return Err(FrameError::ShortBody {
            have: HEADER_LEN + body.len(),
            want: HEADER_LEN + len,
        });
    };
    if crc(body) != body_crc {
        return Err(FrameError::BodyChecksum);
    }
    Ok(len)
}

/// The first offset at or after `from` where a valid record starts.
fn next_valid(buf: &[u8], mut from: usize, base: u64) -> Option<usize> {
    loop {
        let found = buf
            .get(from..)?
            .windows(MARKER.len())
            .position(|w| w == MARKER)?;
        from += found;
        if frame_at(buf, from, base).is_ok() {
            return Some(from);
        }
        from += 1;
    }
}

/// A piece of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Scanned {
    /// A record whose checksums match.
    Record {
        /// Where it starts in the scanned buffer.
        pos: usize,
        /// The whole record, header included.
        record: Bytes,
        /// Its body.
        body: Bytes,
    },
    /// Bytes where no valid record starts, up to the next valid record or the end.
    Bad {
        /// Where they start in the scanned buffer.
        pos: usize,
        /// The bytes.
        bytes: Bytes,
        /// Why they are not a record.
        reason: String,
    },
}

/// Cuts a log into records and bad stretches. After a bad record it resumes at the next offset
/// where a valid record starts (a marker whose header and body checksums match), so one bad
/// record costs only itself.
#[derive(Debug)]
pub(super) struct Scanner {
    buf: Bytes,
    base: u64,
    pos: usize,
}

impl Scanner {
    /// Scans `buf`, which starts at offset `base` of its log file.
    pub(super) fn new(buf: Bytes, base: u64) -> Self {
        Self { buf, base, pos: 0 }
    }
}

impl Iterator for Scanner {
    type Item = Scanned;

    fn next(&mut self) -> Option<Scanned> {
        let pos = self.pos;
        if pos >= self.buf.len() {
            return None;
        }
        match frame_at(&self.buf, pos, self.base) {
            Ok(len) => {
                let end = pos + HEADER_LEN + len;
                self.pos = end;
                let record = self.buf.slice(pos..end);
                let body = record.slice(HEADER_LEN..);
                Some(Scanned::Record { pos, record, body })
            }
            Err(error) => {
                let next = next_valid(&self.buf, pos + 1, self.base);
                let end = next.unwrap_or(self.buf.len());
                self.pos = end;
                let skipped = end - pos;
                let reason = match (next, error) {
                    (None, FrameError::ShortHeader { .. } | FrameError::ShortBody { .. }) => {
                        format!("torn write: {error}")
                    }
                    (None, _) => format!(
                        "{error}; nothing valid in the {skipped} bytes up to the end of the log"
                    ),
                    (Some(_), _) => {
                        format!("{error}; {skipped} bytes skipped up to the next valid record")
                    }
                };
                Some(Scanned::Bad {
                    pos,
                    bytes: self.buf.slice(pos..end),
                    reason,
                })
            }
        }
    }
}

// ----- bodies -----

/// Appends `packet` encoded as MQTT 5.0, which carries every field of the model.
fn encode_packet(packet: &Packet, buf: &mut BytesMut) -> Result<(), StoreError> {
    packet
        .encode(ProtocolVersion::V5, buf)
        .map(drop)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn encode_publish(publish: Publish, buf: &mut BytesMut) -> Result<(), StoreError> {
    encode_packet(&Packet::Publish(publish), buf)
}

/// Appends the body of `write`: the kind, then its fields.
pub(super) fn encode_body(buf: &mut BytesMut, write: &Write<'_>) -> Result<(), StoreError> {
    match *write {
        Write::PutOutgoing(record) => {
            if record.packet_id().is_none() {
                return Err(qos0());
            }
            buf.reserve(1 + 8 + 8 + 1 + 8 + record.publish.payload.len() + 64);
            buf.put_u8(match record.expires_at {
                None => PUT_OUTGOING,
                Some(_) => PUT_OUTGOING_EXPIRING,
            });
            buf.put_u64(record.seq);
            buf.put_u64(record.token.0);
            buf.put_u8(match record.state {
                OutgoingState::Published => PUBLISHED,
                OutgoingState::Released => RELEASED,
            });
            if let Some(at) = record.expires_at {
                buf.put_u64(unix_millis(at));
            }
            encode_publish(record.publish.clone(), buf)
        }
        Write::PutQueued(record) => {
            let message = &record.message;
            let qos_pid = match message.qos {
                QoS::AtLeastOnce => QosPid::AtLeastOnce(PLACEHOLDER_ID),
                QoS::ExactlyOnce => QosPid::ExactlyOnce(PLACEHOLDER_ID),
                QoS::AtMostOnce => return Err(qos0()),
            };
            let mut publish = Publish::new(message.topic.clone(), qos_pid, message.payload.clone());
            publish.retain = message.retain;
            publish.properties = message.properties.clone();
            buf.reserve(1 + 8 + 8 + message.payload.len() + 64);
            buf.put_u8(match record.expires_at {
                None => PUT_QUEUED,
                Some(_) => PUT_QUEUED_EXPIRING,
            });
            buf.put_u64(record.token.0);
            if let Some(at) = record.expires_at {
                buf.put_u64(unix_millis(at));
            }
            encode_publish(publish, buf)
        }
        Write::PutSubscription(record) => {
            let subscribe = Subscribe {
                packet_id: PLACEHOLDER_ID,
                properties: record.properties.clone(),
                filters: vec![record.subscription.clone()],
            };
            buf.put_u8(PUT_SUBSCRIPTION);
            buf.put_u8(u8::from(record.confirmed));
            encode_packet(&Packet::Subscribe(subscribe), buf)
        }
        Write::RemoveSubscription(filter) => {
            // An MQTT string: at most 65,535 bytes, so its length fits the prefix.
            let text = filter.as_str().as_bytes();
            let len = u16::try_from(text.len())
                .map_err(|_| StoreError::Corrupt(format!("filter of {} bytes", text.len())))?;
            buf.reserve(1 + 2 + text.len());
            buf.put_u8(REMOVE_SUBSCRIPTION);
            buf.put_u16(len);
            buf.put_slice(text);
            Ok(())
        }
        Write::RemoveOutgoing(id) => {
            buf.put_u8(REMOVE_OUTGOING);
            buf.put_u16(id.get());
            Ok(())
        }
        Write::PutIncoming(id) => {
            buf.put_u8(PUT_INCOMING);
            buf.put_u16(id.get());
            Ok(())
        }
        Write::RemoveIncoming(id) => {
            buf.put_u8(REMOVE_INCOMING);
            buf.put_u16(id.get());
            Ok(())
        }
        Write::RemoveQueued(token) => {
            buf.put_u8(REMOVE_QUEUED);
            buf.put_u64(token.0);
            Ok(())
        }
        Write::Clear => {
            buf.put_u8(CLEAR);
            Ok(())
        }
        Write::Commit { start, rewritten } => {
            buf.put_u8(COMMIT);
            buf.put_u64(start);
            buf.put_u8(if rewritten { REWRITTEN } else { APPENDED });
            Ok(())
        }
    }
}

/// A deadline as written: milliseconds since the Unix epoch, rounded down (a message never
/// outlives its deadline for it).
fn unix_millis(at: Duration) -> u64 {
    u64::try_from(at.as_millis()).unwrap_or(u64::MAX)
}

/// The PUBLISH that fills the rest of a body, which must be QoS 1 or 2. It is decoded from a
/// copy of its own, not a slice of the log: the session keeps a loaded message until its flow
/// ends, and it must not pin the whole log buffer it was read from.
fn decode_publish(_body: &Bytes, rest: &[u8]) -> Result<Publish, String> {
    let frame = Bytes::copy_from_slice(rest);
    match Decoder::new(ProtocolVersion::V5).decode_frame(&frame) {
        Ok(Packet::Publish(publish)) if publish.packet_id().is_some() => Ok(publish),
        Ok(_) => Err("the message is not a QoS 1/2 PUBLISH".into()),
        Err(e) => Err(format!("the message does not decode: {e}")),
    }
}

/// The SUBSCRIBE of one filter that fills the rest of a body. It is decoded from a copy of its
/// own, not a slice of the log: a session keeps its subscriptions as long as it lives, and a
/// small filter must not pin the whole log buffer it was read from.
fn decode_subscription(rest: &[u8], confirmed: bool) -> Result<SubscriptionRecord, String> {
    let frame = Bytes::copy_from_slice(rest);
    match Decoder::new(ProtocolVersion::V5).decode_frame(&frame) {
        Ok(Packet::Subscribe(s)) => match <[_; 1]>::try_from(s.filters) {
            Ok([subscription]) => Ok(SubscriptionRecord {
                subscription,
                properties: s.properties,
                confirmed,
            }),
            Err(filters) => Err(format!(
                "the subscription holds {} filters, not one",
                filters.len()
            )),
        },
        Ok(_) => Err("the subscription is not a SUBSCRIBE".into()),
        Err(e) => Err(format!("the subscription does not decode: {e}")),
    }
}

/// A topic filter as MQTT writes strings: its length (u16), then its UTF-8 bytes.
fn topic_filter(reader: &mut Reader<'_>) -> Result<TopicFilter, String> {
    let text = reader
        .u16()
        .and_then(|len| reader.bytes(usize::from(len)))
        .ok_or_else(|| "record body too short".to_string())?;
    let text = std::str::from_utf8(text).map_err(|e| format!("bad filter: {e}"))?;
    TopicFilter::new(text).map_err(|e| format!("bad filter: {e}"))
}

fn packet_id(reader: &mut Reader<'_>) -> Result<PacketId, String> {
    reader
        .u16()
        .and_then(PacketId::new)
        .ok_or_else(|| "bad packet identifier".to_string())
}

/// The commit record that `body` is, if it is one.
pub(super) fn decode_commit(body: &Bytes) -> Option<Op> {
    match body.first() {
        Some(&COMMIT) => decode_body(body).ok(),
        _ => None,
    }
}

/// Decodes a body whose checksum matched. The error says why it makes no sense.
pub(super) fn decode_body(body: &Bytes) -> Result<Op, String> {
    let short = || "record body too short".to_string();
    let mut reader = Reader(body);
    let op = match reader.u8().ok_or_else(short)? {
        kind @ (PUT_OUTGOING | PUT_OUTGOING_EXPIRING) => {
            let (Some(seq), Some(token), Some(state)) = (reader.u64(), reader.u64(), reader.u8())
            else {
                return Err(short());
            };
            let state = match state {
                PUBLISHED => OutgoingState::Published,
                RELEASED => OutgoingState::Released,
                other => return Err(format!("unknown outgoing state {other}")),
            };
            let expires_at = match kind {
                PUT_OUTGOING_EXPIRING => {
                    Some(reader.u64().map(Duration::from_millis).ok_or_else(short)?)
                }
                _ => None,
            };
            let publish = decode_publish(body, reader.rest())?;
            let record = OutgoingRecord {
                seq,
                token: PublishToken(token),
                state,
                publish,
                expires_at,
            };
            let value = Value::Outgoing(record);
            let key = value.key().ok_or_else(short)?;
            return Ok(Op::Put(key, value));
        }
        kind @ (PUT_QUEUED | PUT_QUEUED_EXPIRING) => {
            let token = reader.u64().ok_or_else(short)?;
            let expires_at = match kind {
                PUT_QUEUED_EXPIRING => {
                    Some(reader.u64().map(Duration::from_millis).ok_or_else(short)?)
                }
                _ => None,
            };
            let p = decode_publish(body, reader.rest())?;
            let mut message = Message::with_topic(p.topic, p.payload).qos(p.qos_pid.qos());
            message.retain = p.retain;
            message.properties = p.properties;
            return Ok(Op::Put(
                Key::Queued(token),
                Value::Queued(QueuedRecord {
                    token: PublishToken(token),
                    message,
                    expires_at,
                }),
            ));
        }
        REMOVE_OUTGOING => Op::Remove(Key::Outgoing(packet_id(&mut reader)?.get())),
        PUT_INCOMING => {
            let id = packet_id(&mut reader)?;
            Op::Put(Key::Incoming(id.get()), Value::Incoming(id))
        }
        REMOVE_INCOMING => Op::Remove(Key::Incoming(packet_id(&mut reader)?.get())),
        REMOVE_QUEUED => Op::Remove(Key::Queued(reader.u64().ok_or_else(short)?)),
        PUT_SUBSCRIPTION => {
            let confirmed = match reader.u8() {
                Some(0) => false,
                Some(1) => true,
                Some(other) => return Err(format!("confirmation flag {other}")),
                None => return Err(short()),
            };
            let record = decode_subscription(reader.rest(), confirmed)?;
            let key = Key::subscription(&record.subscription.filter);
            return Ok(Op::Put(key, Value::Subscription(record)));
        }
        REMOVE_SUBSCRIPTION => Op::Remove(Key::subscription(&topic_filter(&mut reader)?)),
        CLEAR => Op::Clear,
        COMMIT => {
            let (Some(start), Some(how)) = (reader.u64(), reader.u8()) else {
                return Err(short());
            };
            let rewritten = match how {
                APPENDED => false,
                REWRITTEN => true,
                other => return Err(format!("unknown kind of commit {other}")),
            };
            Op::Commit { start, rewritten }
        }
        other => return Err(format!("unknown record kind {other}")),
    };
    match reader.rest().len() {
        0 => Ok(op),
        n => Err(format!("{n} bytes after the record's fields")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_proto::{
        MqttString, RetainHandling, Subscription, SubscriptionOptions, TopicName, UserProperty,
    };

    fn outgoing() -> OutgoingRecord {
        let mut publish = Publish::new(
            TopicName::new("a/b").unwrap(),
            QosPid::ExactlyOnce(PacketId::new(7).unwrap()),
            vec![1, 2, 3],
        );
        publish.dup = true;
        publish.properties.content_type = Some(MqttString::new("text/plain").unwrap());
        OutgoingRecord {
            seq: 3,
            token: PublishToken(30),
            state: OutgoingState::Released,
            publish,
            expires_at: None,
        }
    }

    fn queued() -> QueuedRecord {
        let mut message = Message::new("c", vec![9; 4]).unwrap().qos(QoS::AtLeastOnce);
        message.retain = true;
        message.properties.message_expiry_interval = Some(60);
        QueuedRecord {
            token: PublishToken(u64::MAX),
            message,
            expires_at: None,
        }
    }

    /// A deadline in milliseconds, as the log keeps it.
    fn deadline(ms: u64) -> Option<Duration> {
        Some(Duration::from_millis(ms))
    }

    fn subscription() -> SubscriptionRecord {
        let mut record = SubscriptionRecord {
            subscription: Subscription {
                filter: TopicFilter::new("s/+/t").unwrap(),
                options: SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
            },
            properties: Default::default(),
            confirmed: false,
        };
        record.properties.subscription_identifier = std::num::NonZeroU32::new(268_435_455);
        record.properties.user_properties = vec![UserProperty::new(
            MqttString::new("k").unwrap(),
            MqttString::new("v").unwrap(),
        )];
        record
    }

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    fn log_of(writes: &[Write<'_>]) -> BytesMut {
        let mut buf = BytesMut::new();
        for w in writes {
            let offset = buf.len() as u64;
            append(&mut buf, offset, w).unwrap();
        }
        buf
    }

    #[test]
    fn every_kind_decodes_to_what_was_written() {
        let (o, q, s) = (outgoing(), queued(), subscription());
        let mut oe = outgoing();
        oe.publish.qos_pid = QosPid::AtLeastOnce(id(8));
        oe.state = OutgoingState::Published;
        oe.expires_at = deadline(1_700_000_000_123);
        let qe = QueuedRecord {
            token: PublishToken(4),
            expires_at: deadline(u64::MAX),
            ..queued()
        };
        let filter = TopicFilter::new("$share/g/a/#").unwrap();
        let writes = [
            Write::PutOutgoing(&o),
            Write::PutOutgoing(&oe),
            Write::PutQueued(&qe),
            Write::RemoveOutgoing(id(7)),
            Write::PutIncoming(id(65535)),
            Write::RemoveIncoming(id(1)),
            Write::PutQueued(&q),
            Write::RemoveQueued(PublishToken(0)),
            Write::PutSubscription(&s),
            Write::RemoveSubscription(&filter),
            Write::Clear,
            Write::Commit {
                start: 5,
                rewritten: false,
            },
            Write::Commit {
                start: 0,
                rewritten: true,
            },
        ];
        let expected = [
            Op::Put(Key::Outgoing(7), Value::Outgoing(o.clone())),
            Op::Put(Key::Outgoing(8), Value::Outgoing(oe.clone())),
            Op::Put(Key::Queued(4), Value::Queued(qe.clone())),
            Op::Remove(Key::Outgoing(7)),
            Op::Put(Key::Incoming(65535), Value::Incoming(id(65535))),
            Op::Remove(Key::Incoming(1)),
            Op::Put(Key::Queued(u64::MAX), Value::Queued(q.clone())),
            Op::Remove(Key::Queued(0)),
            Op::Put(
                Key::Subscription("s/+/t".into()),
                Value::Subscription(s.clone()),
            ),
            Op::Remove(Key::Subscription("$share/g/a/#".into())),
            Op::Clear,
            Op::Commit {
                start: 5,
                rewritten: false,
            },
            Op::Commit {
                start: 0,
                rewritten: true,
            },
        ];
        let log = log_of(&writes).freeze();
        let ops: Vec<Op> = Scanner::new(log, 0)
            .map(|s| match s {
                Scanned::Record { body, .. } => decode_body(&body).unwrap(),
                bad => panic!("{bad:?}"),
            })
            .collect();
        assert_eq!(ops, expected);
        for (w, op) in writes.iter().zip(&ops) {
            assert_eq!(w.effect().unwrap(), op.effect());
        }
    }

    #[test]
    fn qos0_is_refused_and_leaves_the_buffer_alone() {
        let mut o = outgoing();
        o.publish.qos_pid = QosPid::AtMostOnce;
        let mut q = queued();
        q.message.qos = QoS::AtMostOnce;
        let mut buf = log_of(&[Write::Clear]);
        let before = buf.clone();
        for w in [Write::PutOutgoing(&o), Write::PutQueued(&q)] {
            assert!(matches!(
                append(&mut buf, 17, &w),
                Err(StoreError::Corrupt(_))
            ));
            assert_eq!(buf, before);
        }
    }

    #[test]
    fn a_subscription_that_cannot_be_sent_is_refused_and_leaves_the_buffer_alone() {
        // No Local on a shared subscription [MQTT-3.8.3-4 v5.0]: no SUBSCRIBE can carry it.
        let mut s = subscription();
        s.subscription.filter = TopicFilter::new("$share/g/a").unwrap();
        let mut buf = log_of(&[Write::Clear]);
        let before = buf.clone();
        assert!(matches!(
            append(&mut buf, 17, &Write::PutSubscription(&s)),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(buf, before);
    }

    #[test]
    fn a_decoded_subscription_does_not_pin_the_log() {
        let s = subscription();
        let log = log_of(&[Write::PutIncoming(id(1)), Write::PutSubscription(&s)]).freeze();
        let Some(Scanned::Record { body, .. }) = Scanner::new(log.clone(), 0).nth(1) else {
            panic!("no second record");
        };
        let Ok(Op::Put(_, Value::Subscription(decoded))) = decode_body(&body) else {
            panic!("not a subscription");
        };
        assert_eq!(decoded, s);
        let in_log = |bytes: &[u8]| log.as_ptr_range().contains(&bytes.as_ptr());
        assert!(!in_log(decoded.subscription.filter.as_bytes()));
        assert!(!in_log(
            decoded.properties.user_properties[0].name.as_bytes()
        ));
    }

    #[test]
    fn a_record_is_valid_only_at_its_offset() {
        let log = log_of(&[Write::Clear]).freeze();
        assert_eq!(frame_at(&log, 0, 0), Ok(1));
        assert_eq!(frame_at(&log, 0, 1), Err(FrameError::HeaderChecksum));
        // Rebased, it is valid at the new offset.
        let mut moved = log.to_vec();
        rebase(&mut moved, 1000, [log.len()]);
        assert_eq!(frame_at(&moved, 0, 1000), Ok(1));
        assert_eq!(frame_at(&moved, 0, 0), Err(FrameError::HeaderChecksum));
    }

    #[test]
    fn bodies_that_make_no_sense_are_refused() {
        for body in [
            &[][..],
            &[0],
            &[99],
            &[REMOVE_OUTGOING, 0, 0],
            &[REMOVE_OUTGOING, 0],
            &[REMOVE_OUTGOING, 0, 1, 2],
            &[REMOVE_QUEUED, 1, 2, 3],
            &[CLEAR, 0],
            &[COMMIT, 0, 0, 0, 0, 0, 0, 0, 0],
            &[COMMIT, 0, 0, 0, 0, 0, 0, 0, 0, 3],
            &[COMMIT, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
            &[
                PUT_OUTGOING,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                1,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                1,
                3,
            ],
            &[
                PUT_OUTGOING,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                1,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                1,
                1,
                0x30,
                0,
            ],
            &[PUT_QUEUED, 0, 0, 0, 0, 0, 0, 0, 1, 0x32],
            // A deadline cut short, or none before the PUBLISH.
            &[PUT_QUEUED_EXPIRING, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
            &[
                PUT_QUEUED_EXPIRING,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                1,
                0x32,
                6,
                0,
                1,
                b'a',
                0,
                1,
                0,
            ],
            &[
                PUT_OUTGOING_EXPIRING,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                1,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                1,
                1,
                0,
            ],
            // A SUBSCRIBE cut short, with no filter, or with two; a PUBLISH.
            &[PUT_SUBSCRIPTION],
            &[PUT_SUBSCRIPTION, 2, 0x82, 6, 0, 1, 0, 0, 1, b'a', 0],
            &[PUT_SUBSCRIPTION, 0, 0x82, 6, 0, 1, 0, 0, 1, b'a'],
            &[PUT_SUBSCRIPTION, 0, 0x82, 3, 0, 1, 0],
            &[
                PUT_SUBSCRIPTION,
                0,
                0x82,
                11,
                0,
                1,
                0,
                0,
                1,
                b'a',
                0,
                0,
                1,
                b'b',
                0,
            ],
            &[PUT_SUBSCRIPTION, 0, 0x32, 6, 0, 1, b'a', 0, 1, 0],
            // Options byte with reserved bits set.
            &[PUT_SUBSCRIPTION, 0, 0x82, 7, 0, 1, 0, 0, 1, b'a', 0xC0],
            &[PUT_SUBSCRIPTION, 0, 0x82, 7, 0, 1, 0, 0, 1, b'a', 0, 0],
            // A filter cut short, empty, not UTF-8, not a filter, or followed by more.
            &[REMOVE_SUBSCRIPTION, 0],
            &[REMOVE_SUBSCRIPTION, 0, 2, b'a'],
            &[REMOVE_SUBSCRIPTION, 0, 0],
            &[REMOVE_SUBSCRIPTION, 0, 1, 0xFF],
            &[REMOVE_SUBSCRIPTION, 0, 1, 0],
            &[REMOVE_SUBSCRIPTION, 0, 5, b'a', b'/', b'#', b'/', b'b'],
            &[REMOVE_SUBSCRIPTION, 0, 1, b'a', b'b'],
        ] {
            assert!(
                decode_body(&Bytes::copy_from_slice(body)).is_err(),
                "{body:?}"
            );
        }
    }

    #[test]
    fn torn_headers_are_told_from_bad_markers() {
        let log = log_of(&[Write::Clear]).freeze();
        for cut in 1..HEADER_LEN {
            assert_eq!(
                frame_at(&log[..cut], 0, 0),
                Err(FrameError::ShortHeader { have: cut })
            );
        }
        assert_eq!(
            frame_at(&log[..HEADER_LEN], 0, 0),
            Err(FrameError::ShortBody {
                have: HEADER_LEN,
                want: HEADER_LEN + 1
            })
        );
        assert_eq!(frame_at(b"MQX", 0, 0), Err(FrameError::Marker));
        assert_eq!(frame_at(b"\0", 0, 0), Err(FrameError::Marker));
    }
}
