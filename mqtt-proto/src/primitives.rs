//! Wire primitives (spec 1.5) for encoding, and the variable byte integer reader that framing
//! uses. Body parsing reads with [`crate::view::Reader`].

use bytes::{BufMut, BytesMut};

use crate::append::Appender;
use crate::error::{DecodeErrorKind, EncodeError, StringError};

/// The largest value a variable byte integer can hold (spec 1.5.5).
pub const MAX_VAR_INT: u32 = 268_435_455;

/// Reads a variable byte integer from the start of `input`: `Ok(None)` when `input` ends inside
/// it, else the value and the number of bytes it took.
///
/// Framing must tell "need more bytes" from "malformed" before a whole frame exists.
pub fn read_var_int(input: &[u8]) -> Result<Option<(u32, usize)>, DecodeErrorKind> {
    let mut value: u32 = 0;
    for (i, byte) in input.iter().take(4).enumerate() {
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            // A last byte of zero after the first one means a longer form than needed.
            if i > 0 && *byte == 0 {
                return Err(DecodeErrorKind::MalformedVarInt);
            }
            return Ok(Some((value, i + 1)));
        }
    }
    if input.len() >= 4 {
        Err(DecodeErrorKind::MalformedVarInt)
    } else {
        Ok(None)
    }
}

/// Number of bytes the variable byte integer encoding of `value` takes.
pub const fn var_int_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes `value` (at most [`MAX_VAR_INT`]) as a variable byte integer.
pub(crate) fn put_var_int(buf: &mut BytesMut, value: usize) {
    let mut x = value;
    loop {
        let mut byte = (x % 128) as u8;
        x /= 128;
        if x > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if x == 0 {
            break;
        }
    }
}

/// Writes a fixed header: the first byte and the remaining length `body` (at most
/// [`MAX_VAR_INT`]), as one write of a size known per length of the length, which compiles to
/// stores rather than a loop and a call.
#[inline(always)]
pub(crate) fn put_fixed_header(out: &mut Appender<'_>, first: u8, body: usize) {
    let b = |shift: u32| (body >> shift) as u8 & 0x7F;
    match var_int_len(body) {
        1 => out.array([first, body as u8]),
        2 => out.array([first, b(0) | 0x80, b(7)]),
        3 => out.array([first, b(0) | 0x80, b(7) | 0x80, b(14)]),
        _ => out.array([first, b(0) | 0x80, b(7) | 0x80, b(14) | 0x80, b(21)]),
    }
}

/// The two-byte length prefix of a field whose length [`prefixed_len`] checked.
#[inline(always)]
pub(crate) fn len16(len: usize) -> [u8; 2] {
    (len as u16).to_be_bytes()
}

/// Encoded size of a length-prefixed field of `len` bytes, checking it fits the prefix.
pub(crate) fn prefixed_len(len: usize) -> Result<usize, EncodeError> {
    if len > usize::from(u16::MAX) {
        Err(EncodeError::FieldTooLong)
    } else {
        Ok(2 + len)
    }
}

/// Writes two-byte-length-prefixed bytes; the length was checked by [`prefixed_len`].
pub(crate) fn put_prefixed(buf: &mut BytesMut, data: &[u8]) {
    buf.put_u16(data.len() as u16);
    buf.put_slice(data);
}

/// Converts a string error found while encoding (cannot happen for validated types).
impl From<StringError> for EncodeError {
    fn from(_: StringError) -> Self {
        EncodeError::FieldTooLong
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_int_boundaries_from_the_spec_table() {
        // Spec 1.5.5 / 2.2.3 table of variable byte integer sizes.
        let cases: [(&[u8], u32); 8] = [
            (&[0x00], 0),
            (&[0x7F], 127),
            (&[0x80, 0x01], 128),
            (&[0xFF, 0x7F], 16_383),
            (&[0x80, 0x80, 0x01], 16_384),
            (&[0xFF, 0xFF, 0x7F], 2_097_151),
            (&[0x80, 0x80, 0x80, 0x01], 2_097_152),
            (&[0xFF, 0xFF, 0xFF, 0x7F], 268_435_455),
        ];
        for (bytes, value) in cases {
            assert_eq!(read_var_int(bytes), Ok(Some((value, bytes.len()))));
            let mut buf = BytesMut::new();
            put_var_int(&mut buf, value as usize);
            assert_eq!(&buf[..], bytes);
            assert_eq!(var_int_len(value as usize), bytes.len());
        }
    }

    #[test]
    fn var_int_longer_than_four_bytes_is_malformed() {
        assert_eq!(
            read_var_int(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            Err(DecodeErrorKind::MalformedVarInt)
        );
        assert_eq!(read_var_int(&[0xFF, 0xFF, 0xFF]), Ok(None));
    }

    #[test]
    fn var_int_uses_fewest_bytes() {
        // [MQTT-1.5.5-1 v5.0]: 0x80 0x00 encodes 0 in two bytes.
        assert_eq!(
            read_var_int(&[0x80, 0x00]),
            Err(DecodeErrorKind::MalformedVarInt)
        );
    }
}
