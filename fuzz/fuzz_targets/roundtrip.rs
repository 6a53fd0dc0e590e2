//! Encodes arbitrary packets and decodes them again.
//!
//! For every `(version, packet)`: `encode` and `encoded_len` fail or succeed together; a failed
//! encode writes nothing; a successful one writes exactly `encoded_len` bytes, and decoding them
//! gives the packet back with nothing left over, whether the bytes arrive whole or one at a time.
//! `encode_split` and `encode_vectored`, which hand large payloads and fields over uncopied,
//! write the same bytes as `encode` or fail with the same error, writing nothing.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqtt_proto::{Decoder, Packet, ProtocolVersion, SegmentList};

/// `encode_split` and `encode_vectored` agree with `encode`'s result, `expected`.
fn check_other_encoders(
    version: ProtocolVersion,
    packet: &Packet,
    expected: Result<&[u8], mqtt_proto::EncodeError>,
) {
    let mut buf = BytesMut::from(&b"prefix"[..]);
    match (packet.encode_split(version, &mut buf), expected) {
        (Ok((size, rest)), Ok(bytes)) => {
            let mut all = buf[b"prefix".len()..].to_vec();
            all.extend_from_slice(rest.as_deref().unwrap_or_default());
            assert_eq!(
                (size, &all[..]),
                (bytes.len(), bytes),
                "encode_split differs"
            );
        }
        (Err(e), Err(f)) => {
            assert_eq!(e, f, "encode_split and encode give different errors");
            assert_eq!(&buf[..], b"prefix", "a failed encode_split wrote bytes");
        }
        (split, _) => panic!("encode_split {split:?} but encode {expected:?}"),
    }
    let mut out = SegmentList {
        buf: BytesMut::from(&b"prefix"[..]),
        sealed: Vec::new(),
    };
    match (packet.encode_vectored(version, &mut out), expected) {
        (Ok(size), Ok(bytes)) => {
            let all = out.to_vec();
            assert_eq!(&all[..b"prefix".len()], b"prefix");
            let all = &all[b"prefix".len()..];
            assert_eq!((size, all), (bytes.len(), bytes), "encode_vectored differs");
        }
        (Err(e), Err(f)) => {
            assert_eq!(e, f, "encode_vectored and encode give different errors");
            assert!(
                out.sealed.is_empty(),
                "a failed encode_vectored handed buffers over"
            );
            assert_eq!(
                &out.buf[..],
                b"prefix",
                "a failed encode_vectored wrote bytes"
            );
        }
        (vectored, _) => panic!("encode_vectored {vectored:?} but encode {expected:?}"),
    }
}

fuzz_target!(|input: (ProtocolVersion, Packet)| {
    let (version, packet) = input;
    // Something already in the buffer: encode must append, not overwrite.
    let mut buf = BytesMut::from(&b"prefix"[..]);
    let encoded = packet.encode(version, &mut buf);
    let len = packet.encoded_len(version);
    let written = match (encoded, len) {
        (Ok(written), Ok(len)) => {
            assert_eq!(written, len, "encoded_len disagrees with encode");
            written
        }
        (Err(e), Err(f)) => {
            assert_eq!(e, f, "encode and encoded_len give different errors");
            assert_eq!(&buf[..], b"prefix", "a failed encode wrote bytes");
            check_other_encoders(version, &packet, Err(e));
            return;
        }
        (encoded, len) => panic!("encode {encoded:?} but encoded_len {len:?}"),
    };
    let _ = buf.split_to(b"prefix".len());
    assert_eq!(buf.len(), written, "encode miscounted its bytes");
    check_other_encoders(version, &packet, Ok(&buf[..]));

    // CONNECT is laid out in the version it names.
    let decode_version = match &packet {
        Packet::Connect(connect) => connect.protocol,
        _ => version,
    };
    let decoder = Decoder::new(decode_version);

    let frame = buf.clone().freeze();
    let decoded = decoder.decode(&mut buf);
    assert_eq!(
        decoded,
        Ok(Some(packet.clone())),
        "decoding the encoding changed the packet"
    );
    assert!(buf.is_empty(), "decoding left bytes behind");

    // Byte by byte: `Ok(None)` until the last byte, then the packet.
    let mut stream = BytesMut::new();
    for (i, byte) in frame.iter().enumerate() {
        stream.extend_from_slice(&[*byte]);
        let result = decoder.decode(&mut stream);
        if i + 1 < frame.len() {
            assert_eq!(result, Ok(None), "a partial packet decoded");
        } else {
            assert_eq!(
                result,
                Ok(Some(packet.clone())),
                "byte-wise decode changed the packet"
            );
        }
    }
});
