//! Test utilities shared by the integration tests: a readable hex notation for wire bytes and short
//! constructors for the validated value types.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use mqtt_proto::{
    DecodeErrorKind, Decoder, MqttString, Packet, PacketId, ProtocolVersion, TopicFilter,
    TopicName, UserProperty,
};

/// Wire bytes written as text: pairs of hex digits, `'text'` for ASCII runs, and `#` comments
/// to the end of the line. Whitespace is ignored.
///
/// ```text
/// 10 0c            # CONNECT, remaining length 12
/// 00 04 'MQTT'     # protocol name
/// ```
pub(crate) fn hex(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '\'' => {
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '\'' {
                        closed = true;
                        break;
                    }
                    assert!(c.is_ascii(), "non-ASCII character {c:?} in quoted text");
                    out.push(c as u8);
                }
                assert!(closed, "unterminated quoted text in {text:?}");
            }
            hi => {
                let lo = chars.next().expect("odd number of hex digits");
                let byte = hi
                    .to_digit(16)
                    .zip(lo.to_digit(16))
                    .map(|(h, l)| (h * 16 + l) as u8)
                    .unwrap_or_else(|| panic!("bad hex digits {hi}{lo}"));
                out.push(byte);
            }
        }
    }
    out
}

/// A packet identifier.
pub(crate) fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero packet id")
}

/// A validated string.
pub(crate) fn s(text: &str) -> MqttString {
    MqttString::new(text).expect("valid MQTT string")
}

/// A validated topic name.
pub(crate) fn topic(text: &str) -> TopicName {
    TopicName::new(text).expect("valid topic name")
}

/// A validated topic filter.
pub(crate) fn filter(text: &str) -> TopicFilter {
    TopicFilter::new(text).expect("valid topic filter")
}

/// A user property.
pub(crate) fn user(name: &str, value: &str) -> UserProperty {
    UserProperty::new(s(name), s(value))
}

/// Static bytes.
pub(crate) fn b(data: &'static [u8]) -> Bytes {
    Bytes::from_static(data)
}

/// Decodes `bytes`, which must hold exactly one packet or one error, with the owned decoder and
/// with the borrowed view, and checks that both give the same packet or the same error.
pub(crate) fn decode_one(
    version: ProtocolVersion,
    bytes: &[u8],
) -> Result<Packet, DecodeErrorKind> {
    let decoder = Decoder::new(version);
    let mut buf = BytesMut::from(bytes);
    let owned = match decoder.decode(&mut buf) {
        Ok(Some(packet)) => {
            assert!(buf.is_empty(), "{} bytes left after the packet", buf.len());
            Ok(packet)
        }
        Ok(None) => panic!("decoder wants more than the {} bytes given", bytes.len()),
        Err(e) => {
            assert_eq!(e.version(), version, "the error names another version");
            Err(e)
        }
    };
    let frame = Bytes::copy_from_slice(bytes);
    let borrowed = match decoder.decode_ref(&frame) {
        Ok(Some((packet, used))) => {
            assert_eq!(used, bytes.len(), "the view took another length");
            Ok(packet.to_owned(&frame))
        }
        Ok(None) => panic!("the view wants more than the {} bytes given", bytes.len()),
        Err(e) => Err(e),
    };
    assert_eq!(
        owned, borrowed,
        "the view disagrees with the owned decoder on {bytes:02x?}"
    );
    owned.map_err(|e| e.kind())
}

/// Encodes `packet`, checking that the reported and predicted lengths match what was written.
pub(crate) fn encode(
    version: ProtocolVersion,
    packet: &Packet,
) -> Result<Vec<u8>, mqtt_proto::EncodeError> {
    let mut buf = BytesMut::new();
    let predicted = packet.encoded_len(version);
    let written = packet.encode(version, &mut buf);
    assert_eq!(predicted, written, "encoded_len and encode disagree");
    match written {
        Ok(n) => {
            assert_eq!(n, buf.len(), "encode reported {n} but wrote {}", buf.len());
            Ok(buf.to_vec())
        }
        Err(e) => {
            assert!(buf.is_empty(), "a failed encode wrote {} bytes", buf.len());
            Err(e)
        }
    }
}

/// All three versions.
pub(crate) const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V3_1,
    ProtocolVersion::V3_1_1,
    ProtocolVersion::V5,
];

/// Versions before 5.0.
pub(crate) const V3: [ProtocolVersion; 2] = [ProtocolVersion::V3_1, ProtocolVersion::V3_1_1];
