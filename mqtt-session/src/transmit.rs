//! The bytes a session has to send, as a short queue of buffers: packets encoded one after
//! another into a buffer, and the payload of each large PUBLISH as a buffer of its own, the
//! message's own bytes, never copied.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};
use mqtt_proto::{EncodeError, Packet, ProtocolVersion, Publish, Segments};

/// Bytes to write, in order, as a few buffers: encoded packets, and the payloads of PUBLISH
/// packets of at least [`SPLIT_PAYLOAD_MIN`](mqtt_proto::SPLIT_PAYLOAD_MIN) bytes left out of
/// them by [`Packet::encode_split`]. Write them with a vectored write
/// ([`io_slices`](Self::io_slices)) or buffer by buffer ([`chunk`](Self::chunk)), then
/// [`advance`](Self::advance) past what was written.
///
/// ```
/// use bytes::Bytes;
/// use mqtt_proto::{Packet, ProtocolVersion, Publish, QosPid, TopicName};
/// use mqtt_session::Transmit;
///
/// let payload = Bytes::from(vec![7u8; 1 << 20]);
/// let publish = Publish::new(TopicName::new("t").unwrap(), QosPid::AtMostOnce, payload.clone());
/// let mut transmit = Transmit::new();
/// transmit.encode(ProtocolVersion::V5, &Packet::Publish(publish)).unwrap();
/// transmit.encode(ProtocolVersion::V5, &Packet::PingReq).unwrap();
/// let pieces: Vec<&[u8]> = transmit.chunks().collect();
/// assert_eq!(pieces.len(), 3); // header, payload, PINGREQ
/// assert_eq!(pieces[1].as_ptr(), payload.as_ptr()); // the message's own bytes
/// ```
#[derive(Debug, Default)]
pub struct Transmit {
    /// Finished buffers, to go before `tail`.
    sealed: VecDeque<Bytes>,
    /// The buffer packets are encoded into.
    tail: BytesMut,
    /// Bytes in `sealed` and `tail`.
    len: usize,
    /// The size of the last batch [`append`](Self::append) took from this queue whole, which
    /// an empty encoding buffer reserves at once rather than doubling its way up to it.
    size_hint: usize,
}

/// The most an empty encoding buffer reserves ahead on [`Transmit::size_hint`]'s word.
const MAX_SIZE_HINT: usize = 64 * 1024;

impl Transmit {
    /// Nothing to send.
    pub fn new() -> Self {
        Self::default()
    }

    /// Frees the buffers' memory if nothing waits in them: the encoding buffer keeps the size
    /// of the largest burst it held, which an idle connection need not.
    pub fn release_memory(&mut self) {
        if self.len == 0 {
            *self = Self::default();
        }
    }

    /// Appends `packet` in the layout of `version`; a large PUBLISH payload, and a large field
    /// of a CONNECT, is kept as its own buffer instead of being copied
    /// ([`Packet::encode_vectored`]). Returns the packet's size. On error nothing is added.
    pub fn encode(
        &mut self,
        version: ProtocolVersion,
        packet: &Packet,
    ) -> Result<usize, EncodeError> {
        self.reserve_size_hint();
        let size = packet.encode_vectored(version, &mut self.segmenter())?;
        self.len += size;
        Ok(size)
    }

    /// [`encode`](Self::encode) for a PUBLISH not wrapped in a [`Packet`].
    pub fn encode_publish(
        &mut self,
        version: ProtocolVersion,
        publish: &Publish,
    ) -> Result<usize, EncodeError> {
        self.reserve_size_hint();
        let (size, payload) = publish.encode_split(version, &mut self.tail)?;
        if let Some(payload) = payload {
            self.segmenter().push(payload);
        }
        self.len += size;
        Ok(size)
    }

    /// The encoding buffer and the buffers before it, for an encoder that hands buffers over.
    fn segmenter(&mut self) -> Segmenter<'_> {
        Segmenter {
            tail: &mut self.tail,
            sealed: &mut self.sealed,
        }
    }

    /// Reserves the last batch's size in an empty encoding buffer: one allocation instead of
    /// a doubling per power of two up to it, each copying what the batch encoded so far.
    fn reserve_size_hint(&mut self) {
        if self.tail.is_empty() && self.tail.capacity() < self.size_hint {
            self.tail.reserve(self.size_hint);
        }
    }

    /// Bytes waiting, in every buffer.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The buffers, in order (none empty).
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.sealed
            .iter()
            .map(|b| &b[..])
            .chain(std::iter::once(&self.tail[..]))
            .filter(|b| !b.is_empty())
    }

    /// The first buffer; empty when nothing waits.
    pub fn chunk(&self) -> &[u8] {
        self.chunks().next().unwrap_or(&[])
    }

    /// Fills `slices` with the first buffers, for a vectored write; returns how many.
    pub fn io_slices<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let mut filled = 0;
        for (slot, chunk) in slices.iter_mut().zip(self.chunks()) {
            *slot = IoSlice::new(chunk);
            filled += 1;
        }
        filled
    }

    /// Drops the first `n` bytes, which were written; buffers emptied are released.
    ///
    /// # Panics
    ///
    /// If `n` is more than [`len`](Self::len): a writer reports no more than it was given.
    pub fn advance(&mut self, mut n: usize) {
        assert!(n <= self.len, "advanced past the bytes to send");
        self.len -= n;
        while n > 0 {
            let Some(front) = self.sealed.front_mut() else {
                self.tail.advance(n);
                return;
            };
            let step = n.min(front.len());
            front.advance(step);
            n -= step;
            if front.is_empty() {
                self.sealed.pop_front();
            }
        }
        while self.sealed.front().is_some_and(Bytes::is_empty) {
            self.sealed.pop_front();
        }
    }

    /// Takes the first buffer whole (for message-oriented transports); `None` when nothing
    /// waits.
    pub fn pop_chunk(&mut self) -> Option<Bytes> {
        let chunk = match self.sealed.pop_front() {
            Some(chunk) => chunk,
            None if self.tail.is_empty() => return None,
            None => self.tail.split().freeze(),
        };
        self.len -= chunk.len();
        if chunk.is_empty() {
            return self.pop_chunk();
        }
        Some(chunk)
    }

    /// Moves everything in `other` to the end of `self`, leaving `other` empty. No byte is
    /// copied: buffers change hands.
    pub fn append(&mut self, other: &mut Self) {
        if self.is_empty() {
            std::mem::swap(self, other);
            other.clear();
            other.size_hint = self.len.min(MAX_SIZE_HINT);
            return;
        }
        if other.is_empty() {
            return;
        }
        self.seal();
        self.sealed.append(&mut other.sealed);
        std::mem::swap(&mut self.tail, &mut other.tail);
        self.len += other.len;
        other.clear();
    }

    /// Appends every byte to `out`, copying the large payloads too: for callers that want one
    /// contiguous buffer. Without copying when `out` is empty and no payload was left out.
    pub fn drain_into(&mut self, out: &mut BytesMut) {
        if out.is_empty() && self.sealed.is_empty() {
            std::mem::swap(out, &mut self.tail);
        } else {
            out.reserve(self.len);
            for chunk in self.chunks() {
                out.extend_from_slice(chunk);
            }
        }
        self.clear();
    }

    /// Drops everything, keeping the encoding buffer's memory when it is not shared.
    pub fn clear(&mut self) {
        self.sealed.clear();
        self.tail.clear();
        self.len = 0;
    }

    /// The encoding buffer's capacity, to keep the larger of two spent queues.
    pub(crate) fn capacity(&self) -> usize {
        self.tail.capacity()
    }

    /// Closes the encoding buffer, so that what follows goes after it.
    fn seal(&mut self) {
        if !self.tail.is_empty() {
            self.sealed.push_back(self.tail.split().freeze());
        }
    }
}

/// The encoding buffer and the buffers before it, as [`Packet::encode_vectored`] writes them.
struct Segmenter<'a> {
    tail: &'a mut BytesMut,
    sealed: &'a mut VecDeque<Bytes>,
}

impl Segments for Segmenter<'_> {
    fn buf(&mut self) -> &mut BytesMut {
        self.tail
    }

    fn push(&mut self, bytes: Bytes) {
        if !self.tail.is_empty() {
            self.sealed.push_back(self.tail.split().freeze());
        }
        self.sealed.push_back(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_proto::{PacketId, PubAck, Publish, QosPid, TopicName};

    fn publish(size: usize, fill: u8) -> Packet {
        Packet::Publish(Publish::new(
            TopicName::new("a/b").unwrap(),
            QosPid::AtLeastOnce(PacketId::new(7).unwrap()),
            vec![fill; size],
        ))
    }

    fn concat(t: &Transmit) -> Vec<u8> {
        t.chunks().flatten().copied().collect()
    }

    #[test]
    fn advancing_across_buffers_keeps_the_rest_byte_exact() {
        let v = ProtocolVersion::V5;
        let packets = [
            publish(10, 1),
            publish(5000, 2),
            Packet::PingReq,
            publish(9000, 3),
        ];
        let mut t = Transmit::new();
        let mut expected = BytesMut::new();
        for p in &packets {
            t.encode(v, p).unwrap();
            p.encode(v, &mut expected).unwrap();
        }
        assert_eq!(t.len(), expected.len());
        assert_eq!(concat(&t), &expected[..]);
        let mut at = 0;
        for step in [1, 3, 17, 4096, 1, 5000, 2] {
            let step = step.min(t.len());
            t.advance(step);
            at += step;
            assert_eq!(concat(&t), &expected[at..]);
            assert_eq!(t.len(), expected.len() - at);
        }
        t.advance(t.len());
        assert!(t.is_empty());
        assert_eq!(t.chunks().count(), 0);
        assert_eq!(t.chunk(), &[] as &[u8]);
    }

    #[test]
    fn a_connect_with_a_long_user_name_is_queued_without_copying_it() {
        use mqtt_proto::{Connect, MqttString};
        let v = ProtocolVersion::V3_1_1;
        let name = MqttString::new(&"u".repeat(65_535)).unwrap();
        let mut connect = Connect::new(v, MqttString::new("c").unwrap(), 30);
        connect.username = Some(name.clone());
        connect.password = Some(Bytes::from_static(b"secret"));
        let packet = Packet::from(connect);
        let mut t = Transmit::new();
        t.encode(v, &publish(10, 1)).unwrap();
        let size = t.encode(v, &packet).unwrap();
        t.encode(v, &Packet::PingReq).unwrap();
        let mut expected = BytesMut::new();
        publish(10, 1).encode(v, &mut expected).unwrap();
        assert_eq!(packet.encode(v, &mut expected), Ok(size));
        Packet::PingReq.encode(v, &mut expected).unwrap();
        assert_eq!(concat(&t), expected.to_vec());
        assert!(t.chunks().any(|c| c.as_ptr() == name.as_bytes().as_ptr()));
        assert_eq!(t.len(), expected.len());
    }

    #[test]
    fn an_emptied_queue_sizes_its_next_buffer_by_the_last_batch() {
        let v = ProtocolVersion::V3_1_1;
        let (mut session, mut spare) = (Transmit::new(), Transmit::new());
        for _ in 0..100 {
            session.encode(v, &publish(60, 1)).unwrap();
        }
        let batch = session.len();
        spare.append(&mut session);
        assert_eq!((spare.len(), session.len()), (batch, 0));
        // The first packet of the next batch reserves the whole last batch at once.
        session.encode(v, &publish(60, 2)).unwrap();
        assert!(
            session.capacity() >= batch,
            "{} < {batch}",
            session.capacity()
        );
        // A batch larger than the bound is not reserved ahead in full.
        let (mut big, mut out) = (Transmit::new(), Transmit::new());
        for _ in 0..40 {
            big.encode(v, &publish(3000, 3)).unwrap();
        }
        out.append(&mut big);
        big.encode(v, &publish(1, 4)).unwrap();
        assert!(big.capacity() < out.len(), "{} reserved", big.capacity());
        // A queue that gave its memory back starts small again.
        session.advance(session.len());
        session.release_memory();
        session.encode(v, &publish(1, 5)).unwrap();
        assert!(session.capacity() < batch);
    }

    #[test]
    fn append_and_pop_keep_the_order() {
        let v = ProtocolVersion::V3_1_1;
        let mut a = Transmit::new();
        let mut b = Transmit::new();
        let mut expected = BytesMut::new();
        for p in [
            publish(4096, 1),
            Packet::PubAck(PubAck::new(PacketId::new(1).unwrap())),
        ] {
            a.encode(v, &p).unwrap();
            p.encode(v, &mut expected).unwrap();
        }
        for p in [Packet::PingReq, publish(4100, 2), Packet::PingReq] {
            b.encode(v, &p).unwrap();
            p.encode(v, &mut expected).unwrap();
        }
        a.append(&mut b);
        assert!(b.is_empty());
        assert_eq!(a.len(), expected.len());
        let mut popped = Vec::new();
        while let Some(chunk) = a.pop_chunk() {
            assert!(!chunk.is_empty());
            popped.extend_from_slice(&chunk);
        }
        assert_eq!(popped, &expected[..]);
        assert!(a.is_empty());
    }

    #[test]
    fn io_slices_stop_at_the_space_given() {
        let v = ProtocolVersion::V5;
        let mut t = Transmit::new();
        for fill in 0..4 {
            t.encode(v, &publish(5000, fill)).unwrap();
        }
        t.encode(v, &Packet::PingReq).unwrap();
        let mut slices = [IoSlice::new(&[]); 3];
        assert_eq!(t.io_slices(&mut slices), 3);
        let mut all = [IoSlice::new(&[]); 16];
        assert_eq!(t.io_slices(&mut all), 9);
        let total: usize = all.iter().map(|s| s.len()).sum();
        assert_eq!(total, t.len());
    }
}
