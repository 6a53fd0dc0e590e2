//! Encoding for vectored writes: where [`Packet::encode_vectored`](crate::Packet::encode_vectored)
//! puts a packet whose large fields it does not copy.

use bytes::{Bytes, BytesMut};

/// The output of [`Packet::encode_vectored`](crate::Packet::encode_vectored): the bytes it
/// encodes are appended to [`buf`](Segments::buf), and each field of
/// [`SPLIT_PAYLOAD_MIN`](crate::SPLIT_PAYLOAD_MIN) bytes or more is handed to
/// [`push`](Segments::push) whole, a reference to the packet's own bytes, to be written right
/// after what `buf` holds at that moment.
///
/// A writer typically seals `buf` into a list of buffers on each `push` and writes the list
/// with one vectored write:
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use mqtt_proto::{Connect, MqttString, Packet, ProtocolVersion, Segments};
///
/// #[derive(Default)]
/// struct Parts {
///     buf: BytesMut,
///     parts: Vec<Bytes>,
/// }
///
/// impl Segments for Parts {
///     fn buf(&mut self) -> &mut BytesMut {
///         &mut self.buf
///     }
///     fn push(&mut self, bytes: Bytes) {
///         self.parts.push(self.buf.split().freeze());
///         self.parts.push(bytes);
///     }
/// }
///
/// let name = MqttString::new(&"u".repeat(65_535)).unwrap();
/// let mut connect = Connect::new(ProtocolVersion::V3_1_1, MqttString::new("c").unwrap(), 60);
/// connect.username = Some(name.clone());
/// let mut out = Parts::default();
/// let size = Packet::from(connect).encode_vectored(ProtocolVersion::V3_1_1, &mut out).unwrap();
/// assert_eq!(out.parts[1].as_ptr(), name.as_bytes().as_ptr()); // the name's own bytes
/// assert_eq!(size, out.parts.iter().map(Bytes::len).sum::<usize>() + out.buf.len());
/// ```
pub trait Segments {
    /// The buffer encoded bytes are appended to.
    fn buf(&mut self) -> &mut BytesMut;
    /// Appends `bytes` after everything appended so far, without copying them.
    fn push(&mut self, bytes: Bytes);
}
