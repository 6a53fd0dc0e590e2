//! Decodes arbitrary bytes as a packet stream.
//!
//! Input layout: byte 0 picks the protocol version, byte 1 the maximum packet size, byte 2 how
//! the stream is cut into chunks; the rest is the stream. Properties checked:
//!
//! - the decoder never panics;
//! - `Ok(None)` consumes nothing;
//! - feeding the stream in chunks yields the same packets, the same final error (or the same
//!   unconsumed tail) as feeding it whole;
//! - every decoded packet that encodes again decodes back to itself, and `encoded_len` agrees
//!   with the bytes written;
//! - the borrowed view (`decode_ref`) reads the stream into the same packets and ends with the
//!   same error or the same unconsumed tail: one set of rules for both APIs.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqtt_proto::{DecodeError, Decoder, Packet, ProtocolVersion, MAX_PACKET_SIZE};

fuzz_target!(|data: &[u8]| {
    let [version, max, chunking, stream @ ..] = data else {
        return;
    };
    let version = match version % 3 {
        0 => ProtocolVersion::V3_1,
        1 => ProtocolVersion::V3_1_1,
        _ => ProtocolVersion::V5,
    };
    let decoder = Decoder::new(version).with_max_packet_size(max_packet_size(*max));

    // The whole stream at once.
    let mut whole = BytesMut::from(stream);
    let mut whole_packets = Vec::new();
    let whole_end = drain(&decoder, &mut whole, &mut whole_packets);

    // The same stream through the borrowed view.
    let frozen = bytes::Bytes::copy_from_slice(stream);
    let mut view_packets = Vec::new();
    let mut at = 0;
    let view_end = loop {
        let rest = frozen.get(at..).unwrap_or_default();
        match decoder.decode_ref(rest) {
            Ok(Some((packet, used))) => {
                assert!(
                    used > 0 && used <= rest.len(),
                    "the view took {used} of {} bytes",
                    rest.len()
                );
                view_packets.push(packet.to_owned(&frozen));
                at += used;
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    assert_eq!(
        whole_packets, view_packets,
        "the view decoded other packets"
    );
    assert_eq!(whole_end, view_end, "the view ended otherwise");
    if whole_end.is_none() {
        assert_eq!(&whole[..], &frozen[at..], "the view left another tail");
    }

    // The same stream in chunks.
    let mut chunked = BytesMut::new();
    let mut chunked_packets = Vec::new();
    let mut chunked_end = None;
    let mut rest = stream;
    let mut sizes = ChunkSizes::new(*chunking);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(sizes.next().min(rest.len()));
        rest = tail;
        chunked.extend_from_slice(chunk);
        chunked_end = drain(&decoder, &mut chunked, &mut chunked_packets);
        if chunked_end.is_some() {
            break;
        }
    }

    assert_eq!(
        whole_packets, chunked_packets,
        "chunking changed the packets"
    );
    assert_eq!(whole_end, chunked_end, "chunking changed the outcome");
    if whole_end.is_none() {
        assert_eq!(whole, chunked, "chunking changed the unconsumed tail");
    }

    for packet in &whole_packets {
        check_reencode(version, packet);
    }
});

/// Decodes packets until the decoder needs more bytes (`None`) or fails (`Some(error)`).
fn drain(decoder: &Decoder, buf: &mut BytesMut, out: &mut Vec<Packet>) -> Option<DecodeError> {
    loop {
        let before = buf.clone();
        match decoder.decode(buf) {
            Ok(Some(packet)) => {
                assert!(buf.len() < before.len(), "a packet consumed nothing");
                out.push(packet);
            }
            Ok(None) => {
                assert_eq!(*buf, before, "Ok(None) consumed bytes");
                return None;
            }
            Err(e) => return Some(e),
        }
    }
}

/// Small limits exercise the size check; large ones let whole packets through.
fn max_packet_size(selector: u8) -> usize {
    let n = usize::from(selector >> 2);
    match selector & 0b11 {
        0 => MAX_PACKET_SIZE,
        1 => 1 << 20,
        2 => n,
        _ => 64 + n * 16,
    }
}

/// Chunk sizes from a small xorshift generator; seed 0 feeds one byte at a time.
struct ChunkSizes {
    state: u32,
    limit: u32,
}

impl ChunkSizes {
    fn new(seed: u8) -> Self {
        Self {
            state: u32::from(seed).wrapping_mul(0x9E37_79B9) | 1,
            limit: if seed == 0 {
                1
            } else if seed & 0x80 == 0 {
                16
            } else {
                512
            },
        }
    }

    fn next(&mut self) -> usize {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        1 + (self.state % self.limit) as usize
    }
}

/// A decoded packet that encodes again must decode back to itself.
fn check_reencode(version: ProtocolVersion, packet: &Packet) {
    // A CONNECT names its own version, and is encoded in that one.
    let version = match packet {
        Packet::Connect(c) => c.protocol,
        _ => version,
    };
    let mut buf = BytesMut::new();
    let Ok(written) = packet.encode(version, &mut buf) else {
        assert!(buf.is_empty(), "a failed encode wrote bytes");
        return;
    };
    assert_eq!(written, buf.len(), "encode miscounted its bytes");
    assert_eq!(
        packet.encoded_len(version),
        Ok(written),
        "encoded_len disagrees with encode"
    );

    let frame = buf.clone().freeze();
    let decoder = Decoder::new(version);
    let again = decoder.decode(&mut buf);
    assert_eq!(
        again.as_ref(),
        Ok(&Some(packet.clone())),
        "re-encoded packet decodes differently"
    );
    assert!(buf.is_empty(), "re-encoded packet left bytes behind");
    assert_eq!(
        decoder.decode_frame(&frame).as_ref(),
        Ok(packet),
        "decode_frame disagrees"
    );
}
