//! Encodes arbitrary packets and decodes them again.
//!
//! For every `(version, packet)`: `encode` and `encoded_len` fail or succeed together; a failed
//! encode writes nothing; a successful one writes exactly `encoded_len` bytes, and decoding them
//! gives the packet back with nothing left over, whether the bytes arrive whole or one at a time.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqtt_proto::{Decoder, Packet, ProtocolVersion};

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
            return;
        }
        (encoded, len) => panic!("encode {encoded:?} but encoded_len {len:?}"),
    };
    let _ = buf.split_to(b"prefix".len());
    assert_eq!(buf.len(), written, "encode miscounted its bytes");

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
