//! Encoding for vectored writes: where [`Packet::encode_vectored`](crate::Packet::encode_vectored)
//! puts a packet whose large fields it does not copy.

use alloc::vec::Vec;

use bytes::{Bytes, BytesMut};

/// The output of [`Packet::encode_vectored`](crate::Packet::encode_vectored): the bytes it
/// encodes are appended to [`buf`](Segments::buf), and each field of
/// [`SPLIT_PAYLOAD_MIN`](crate::SPLIT_PAYLOAD_MIN) bytes or more is handed to
/// [`push`](Segments::push) whole, a reference to the packet's own bytes, to be written right
/// after what `buf` holds at that moment.
///
/// A writer typically seals `buf` into a list of buffers on each `push` and writes the list
/// with one vectored write, as [`SegmentList`] does:
///
/// ```
/// use bytes::Bytes;
/// use mqtt_proto::{Connect, MqttString, Packet, ProtocolVersion, SegmentList};
///
/// let name = MqttString::new(&"u".repeat(65_535)).unwrap();
/// let mut connect = Connect::new(ProtocolVersion::V3_1_1, MqttString::new("c").unwrap(), 60);
/// connect.username = Some(name.clone());
/// let mut out = SegmentList::default();
/// let size = Packet::from(connect).encode_vectored(ProtocolVersion::V3_1_1, &mut out).unwrap();
/// assert_eq!(out.sealed[1].as_ptr(), name.as_bytes().as_ptr()); // the name's own bytes
/// assert_eq!(size, out.sealed.iter().map(Bytes::len).sum::<usize>() + out.buf.len());
/// ```
pub trait Segments {
    /// The buffer encoded bytes are appended to.
    fn buf(&mut self) -> &mut BytesMut;
    /// Appends `bytes` after everything appended so far, without copying them.
    fn push(&mut self, bytes: Bytes);
}

/// A [`Segments`] sink that keeps what it is given in order: the buffers sealed before each
/// pushed one, and the pushed ones, in [`sealed`](Self::sealed), then what
/// [`buf`](Self::buf) holds. Write them in that order, with one vectored write.
#[derive(Debug, Default, Clone)]
pub struct SegmentList {
    /// The buffer encoded bytes are appended to, written after every buffer of `sealed`.
    pub buf: BytesMut,
    /// The buffers before `buf`, in order.
    pub sealed: Vec<Bytes>,
}

impl SegmentList {
    /// An empty list whose buffer has room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(capacity),
            sealed: Vec::new(),
        }
    }

    /// Forgets everything written, keeping the buffer's room.
    #[inline]
    pub fn clear(&mut self) {
        self.buf.clear();
        self.sealed.clear();
    }

    /// Every byte written, in order, copied into one vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut all: Vec<u8> = self.sealed.iter().flat_map(|p| p.iter().copied()).collect();
        all.extend_from_slice(&self.buf);
        all
    }
}

impl Segments for SegmentList {
    #[inline]
    fn buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    fn push(&mut self, bytes: Bytes) {
        self.sealed.push(self.buf.split().freeze());
        self.sealed.push(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_list_keeps_sealed_and_pushed_buffers_in_order_and_clears_them() {
        let mut list = SegmentList::with_capacity(16);
        list.buf().extend_from_slice(b"ab");
        list.push(Bytes::from_static(b"CD"));
        list.buf().extend_from_slice(b"ef");
        assert_eq!(list.sealed, [&b"ab"[..], b"CD"]);
        assert_eq!(list.to_vec(), b"abCDef");
        list.clear();
        assert!(list.sealed.is_empty() && list.buf.is_empty());
        assert_eq!(list.to_vec(), b"");
    }
}
