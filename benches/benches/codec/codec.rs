//! What a codec must offer to take part: build a packet from a [`Message`], encode it into a
//! reused buffer, decode one frame, and decode a whole stream.

use bytes::Bytes;

use crate::message::Message;

/// One codec for one protocol version, as a user of that crate would drive it.
pub(crate) trait Codec {
    /// Column name in the report.
    const NAME: &'static str;
    /// Whether the codec has encode rows; a decode-only view of another codec has none.
    const ENCODES: bool = true;
    /// The codec's packet type, built once before encoding is timed; may borrow the message.
    type Packet<'m>;
    /// The buffer encoding writes into, reused across iterations where the API allows.
    type Buf;
    /// State decoding keeps across packets (a decoder, a packet builder), or `()`.
    type State;
    /// A decoded packet; may borrow the frame.
    type Decoded<'a>;
    /// What stream decoding consumes, made from the stream bytes outside the timed loop.
    type StreamInput;

    /// The codec's packet for `message`, or `None` when it cannot express it.
    fn build(message: &Message) -> Option<Self::Packet<'_>>;
    /// A buffer with room for `capacity` bytes.
    fn new_buf(capacity: usize) -> Self::Buf;
    /// Encodes `packet`, reusing `buf` if the API takes one; returns the encoded size. Every
    /// codec marks it `#[inline(always)]`, so that the timing loop's call is nobody's cost.
    fn encode(packet: &Self::Packet<'_>, buf: &mut Self::Buf) -> usize;
    /// The bytes [`Codec::encode`] produces, for checking.
    fn encoded(packet: &Self::Packet<'_>) -> Vec<u8>;

    /// Fresh decoding state.
    fn new_state() -> Self::State;
    /// Decodes one whole frame, fixed header included.
    fn decode<'a>(state: &mut Self::State, frame: &'a Bytes) -> Self::Decoded<'a>;
    /// What a decoded packet says, for checking.
    fn describe(decoded: &Self::Decoded<'_>) -> Message;

    /// Prepares the stream for [`Codec::decode_stream`].
    fn stream_input(stream: &Bytes) -> Self::StreamInput;
    /// Decodes every packet of the stream; returns the number of packets and of payload bytes.
    fn decode_stream(state: &mut Self::State, input: Self::StreamInput) -> (usize, usize);
}

/// Something done with every codec of one protocol version in turn.
pub(crate) trait Visit {
    /// Called once per codec.
    fn visit<C: Codec>(&mut self);
}
