//! Cutting packets out of the bytes read from the transport, so that what the application keeps
//! costs about its own size.
//!
//! Decoding is zero-copy: a packet's topic and payload are slices of the bytes its frame was
//! read into. A slice keeps its whole allocation alive, so a message cut from a shared 64 KiB –
//! 1 MiB read buffer would pin that buffer for as long as the application keeps it. The
//! reader avoids that in two ways:
//!
//! - a frame found whole in the read buffer is copied into an allocation of its own size
//!   before it is decoded (one `memcpy`, cheaper than the allocation it saves pinning; a frame
//!   up to [`SMALL_FRAME`] bytes goes into a size class that also holds its reference count),
//!   except acknowledgements without properties, which keep nothing once handled;
//! - a frame larger than [`LARGE_FRAME`] that is still arriving gets a buffer of exactly its
//!   size, and the transport reads the rest straight into it, so large messages are never
//!   copied and pin nothing but themselves.

use bytes::{Buf, Bytes, BytesMut};
use mqtt_proto::{DecodeError, Decoder, Packet};

/// Frames above this size that arrive over several reads get a buffer of their own.
pub(crate) const LARGE_FRAME: usize = 64 * 1024;

/// Packet types (high nibble of the first byte) that never hold on to their frame when their
/// remaining length leaves no room for properties: PUBACK, PUBREC, PUBREL, PUBCOMP, PINGRESP.
fn keeps_nothing(first: u8, size: usize) -> bool {
    matches!(first >> 4, 4..=7 | 13) && size <= 5
}

/// Frames up to this size are copied into a [`SizeClass`]; larger ones into a `Vec` of their
/// exact size.
const SMALL_FRAME: usize = 256;

/// `frame` copied into an allocation of its own.
///
/// A `Bytes` made from a `Vec` allocates a second time, for its reference count, when the
/// decoder first slices the topic and payload out of it. A small frame instead goes into a
/// [`SizeClass`] that holds the reference count beside the bytes: one allocation per frame, and
/// at most 32–128 bytes more than the frame itself.
fn copy_frame(frame: &[u8]) -> Bytes {
    match frame.len() {
        0..=32 => Bytes::from_owner(SizeClass::<32>::new(frame)),
        33..=64 => Bytes::from_owner(SizeClass::<64>::new(frame)),
        65..=128 => Bytes::from_owner(SizeClass::<128>::new(frame)),
        129..=SMALL_FRAME => Bytes::from_owner(SizeClass::<SMALL_FRAME>::new(frame)),
        _ => Bytes::copy_from_slice(frame),
    }
}

/// Up to `N` bytes held inline, so that `Bytes::from_owner` puts them and the reference count in
/// one allocation.
struct SizeClass<const N: usize> {
    len: usize,
    bytes: [u8; N],
}

impl<const N: usize> SizeClass<N> {
    /// The first `N` bytes of `frame` (the caller picks `N` to hold all of it).
    fn new(frame: &[u8]) -> Self {
        let mut bytes = [0; N];
        let len = frame.len().min(N);
        if let (Some(to), Some(from)) = (bytes.get_mut(..len), frame.get(..len)) {
            to.copy_from_slice(from);
        }
        Self { len, bytes }
    }
}

impl<const N: usize> AsRef<[u8]> for SizeClass<N> {
    fn as_ref(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// A large frame being read into a buffer of its exact size.
#[derive(Debug)]
struct LargeFrame {
    buf: BytesMut,
    size: usize,
}

/// Buffers bytes from the transport and cuts whole packets out of them.
#[derive(Debug)]
pub(crate) struct Reader {
    decoder: Decoder,
    buf: BytesMut,
    large: Option<LargeFrame>,
}

/// A packet cut from the stream, with the size of its frame.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) packet: Packet,
    pub(crate) size: usize,
}

impl Reader {
    pub(crate) fn new(decoder: Decoder) -> Self {
        Self {
            decoder,
            buf: BytesMut::new(),
            large: None,
        }
    }

    /// Forgets everything buffered and starts afresh with `decoder` (a new connection).
    pub(crate) fn reset(&mut self, decoder: Decoder) {
        self.decoder = decoder;
        self.buf.clear();
        self.large = None;
    }

    /// Forgets everything buffered (the connection ended).
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.large = None;
    }

    /// Whether bytes of an incomplete packet are buffered.
    pub(crate) fn has_partial(&self) -> bool {
        self.large.is_some() || !self.buf.is_empty()
    }

    /// Appends bytes read from the transport.
    pub(crate) fn extend(&mut self, mut data: &[u8]) {
        self.settle_large();
        if let Some(large) = self.large.as_mut() {
            let take = large.size.saturating_sub(large.buf.len()).min(data.len());
            let (head, rest) = data.split_at(take);
            large.buf.extend_from_slice(head);
            data = rest;
        }
        self.buf.extend_from_slice(data);
    }

    /// Takes the bytes in `other` (left empty), without copying when nothing is buffered or
    /// when `other` continues the buffered bytes in the same allocation (a transport that
    /// reads into a buffer of its own and hands out consecutive pieces of it).
    pub(crate) fn extend_from_buf(&mut self, other: &mut BytesMut) {
        if self.large.is_none() && self.buf.is_empty() {
            std::mem::swap(&mut self.buf, other);
        } else if self.large.is_none() {
            self.buf.unsplit(other.split());
        } else {
            self.extend(other);
            other.clear();
        }
    }

    /// Frees the read buffer if it holds no bytes: the next read reserves room again.
    pub(crate) fn release_memory(&mut self) {
        if self.buf.is_empty() && self.large.is_none() {
            self.buf = BytesMut::new();
        }
    }

    /// The buffer the next read from the transport should append to, and the most it should
    /// take: the rest of a large frame (whose buffer has room for exactly that), or `want`.
    /// The transport reserves the room it reads into, or appends a buffer of its own.
    pub(crate) fn read_buffer(&mut self, want: usize) -> (&mut BytesMut, usize) {
        self.settle_large();
        match self.large.as_mut() {
            Some(large) if large.buf.len() < large.size => {
                let rest = large.size - large.buf.len();
                (&mut large.buf, rest)
            }
            _ => (&mut self.buf, want),
        }
    }

    /// Keeps a large frame's buffer to its exact size after a transport appended more to it
    /// than the frame needs (a WebSocket message carries whole messages): the excess starts
    /// the next packets.
    fn settle_large(&mut self) {
        let Some(large) = self.large.as_mut() else {
            return;
        };
        if large.buf.len() <= large.size {
            return;
        }
        let mut excess = large.buf.split_off(large.size);
        if large.buf.capacity() > large.size {
            large.buf = BytesMut::from(&large.buf[..]);
        }
        excess.extend_from_slice(&self.buf);
        self.buf = BytesMut::from(&excess[..]);
    }

    /// The next whole packet, `Ok(None)` if more bytes are needed.
    pub(crate) fn next(&mut self) -> Result<Option<Frame>, DecodeError> {
        self.settle_large();
        if let Some(large) = self.large.as_mut() {
            if large.buf.len() < large.size {
                return Ok(None);
            }
            let frame = std::mem::take(&mut large.buf).freeze();
            let size = large.size;
            self.large = None;
            let packet = self.decoder.decode_frame(&frame)?;
            return Ok(Some(Frame { packet, size }));
        }
        let Some((_, size)) = self.decoder.frame_len(&self.buf)? else {
            return Ok(None);
        };
        if self.buf.len() < size {
            if size > LARGE_FRAME {
                // The rest goes straight into a buffer of the frame's size. Capacity is
                // virtual memory until written, so announcing a large packet costs only what
                // actually arrives.
                let mut buf = BytesMut::with_capacity(size);
                buf.extend_from_slice(&self.buf);
                self.buf.clear();
                self.large = Some(LargeFrame { buf, size });
            }
            return Ok(None);
        }
        let first = self.buf.first().copied().unwrap_or_default();
        let frame = if keeps_nothing(first, size) {
            self.buf.split_to(size).freeze()
        } else {
            let frame = copy_frame(self.buf.get(..size).unwrap_or_default());
            self.buf.advance(size);
            frame
        };
        let packet = self.decoder.decode_frame(&frame)?;
        Ok(Some(Frame { packet, size }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_proto::{ProtocolVersion, Publish, QosPid, TopicName};

    fn publish(payload: usize) -> (Publish, Vec<u8>) {
        let p = Publish::new(
            TopicName::new("a/b").unwrap(),
            QosPid::AtMostOnce,
            vec![7u8; payload],
        );
        let mut wire = BytesMut::new();
        Packet::Publish(p.clone())
            .encode(ProtocolVersion::V3_1_1, &mut wire)
            .unwrap();
        (p, wire.to_vec())
    }

    fn reader() -> Reader {
        Reader::new(Decoder::new(ProtocolVersion::V3_1_1))
    }

    #[test]
    fn small_frames_are_copied_out_of_the_read_buffer() {
        let (p, wire) = publish(100);
        let mut r = reader();
        let mut stream = wire.repeat(3);
        stream.extend_from_slice(&wire[..10]);
        r.extend(&stream);
        for _ in 0..3 {
            let frame = r.next().unwrap().unwrap();
            assert_eq!(frame.size, wire.len());
            let Packet::Publish(got) = frame.packet else {
                panic!()
            };
            assert_eq!(got, p);
            // The payload's allocation is not the read buffer's.
            let buffer = r.buf.as_ptr_range();
            assert!(!buffer.contains(&got.payload.as_ptr()));
        }
        assert!(r.next().unwrap().is_none());
        assert!(r.has_partial());
    }

    #[test]
    fn a_large_frame_is_read_into_a_buffer_of_its_own_size() {
        let (p, wire) = publish(300 * 1024);
        let mut r = reader();
        r.extend(&wire[..1000]);
        assert!(r.next().unwrap().is_none());
        let mut offset = 1000;
        while offset < wire.len() {
            let (buf, limit) = r.read_buffer(64 * 1024);
            assert!(limit <= wire.len() - offset);
            let n = limit.min(50_000);
            buf.extend_from_slice(&wire[offset..offset + n]);
            offset += n;
        }
        let frame = r.next().unwrap().unwrap();
        let Packet::Publish(got) = frame.packet else {
            panic!()
        };
        assert_eq!(got, p);
        assert!(!r.has_partial());
    }

    #[test]
    fn a_transport_that_overfills_a_large_frame_keeps_the_rest_for_the_next_packets() {
        let (p, wire) = publish(100 * 1024);
        let (small, small_wire) = publish(5);
        let mut r = reader();
        r.extend(&wire[..100]);
        assert!(r.next().unwrap().is_none());
        let (buf, _) = r.read_buffer(1024);
        buf.extend_from_slice(&wire[100..]);
        buf.extend_from_slice(&small_wire);
        let first = r.next().unwrap().unwrap();
        assert_eq!(first.packet, Packet::Publish(p));
        let second = r.next().unwrap().unwrap();
        assert_eq!(second.packet, Packet::Publish(small));
        assert!(r.next().unwrap().is_none());
    }

    #[test]
    fn consecutive_pieces_of_one_buffer_are_joined_without_a_copy() {
        let (p, wire) = publish(100);
        let mut shared = BytesMut::from(&wire.repeat(2)[..]);
        let mut r = reader();
        let mut first = shared.split_to(wire.len() + 10);
        r.extend_from_buf(&mut first);
        assert!(r.next().unwrap().is_some());
        let partial = r.buf.as_ptr();
        r.extend_from_buf(&mut shared);
        assert_eq!(r.buf.as_ptr(), partial, "joined in place");
        assert_eq!(r.next().unwrap().unwrap().packet, Packet::Publish(p));
        assert!(!r.has_partial());
    }

    #[test]
    fn every_split_of_a_stream_decodes_the_same_packets() {
        let (a, wa) = publish(70 * 1024);
        let (b, wb) = publish(3);
        let stream = [wa.clone(), wb.clone(), wa, wb].concat();
        for cut in (0..stream.len()).step_by(997) {
            let mut r = reader();
            let mut got = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                r.extend(part);
                while let Some(f) = r.next().unwrap() {
                    got.push(f.packet);
                }
            }
            let want = vec![
                Packet::Publish(a.clone()),
                Packet::Publish(b.clone()),
                Packet::Publish(a.clone()),
                Packet::Publish(b.clone()),
            ];
            assert_eq!(got, want, "cut at {cut}");
        }
    }
}
