//! Wire primitives (spec 1.5): integers, variable byte integers, strings and binary data.
//!
//! Parsers are nom `complete` parsers over one packet's frame: running out of input inside a
//! frame is [`DecodeError::Truncated`], never "need more". Values that keep their bytes are
//! sliced from the frame with [`Bytes::slice_ref`], so nothing is copied.

use bytes::{BufMut, Bytes, BytesMut};
use nom::error::{ErrorKind, ParseError};
use nom::IResult;

use crate::error::{DecodeError, EncodeError, StringError};
use crate::string::MqttString;
use crate::topic::{TopicFilter, TopicName};

/// The largest value a variable byte integer can hold (spec 1.5.5).
pub const MAX_VAR_INT: u32 = 268_435_455;

/// Result of a body parser.
pub(crate) type PResult<'a, T> = IResult<&'a [u8], T, DecodeError>;

impl ParseError<&[u8]> for DecodeError {
    fn from_error_kind(_input: &[u8], _kind: ErrorKind) -> Self {
        // The only nom failures our parsers can hit are short reads inside a frame.
        DecodeError::Truncated
    }

    fn append(_input: &[u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

/// Turns a typed error into a nom failure.
pub(crate) fn fail<T>(e: impl Into<DecodeError>) -> Result<T, nom::Err<DecodeError>> {
    Err(nom::Err::Failure(e.into()))
}

/// Unwraps a nom result at the top of a body parser.
pub(crate) fn finish<T>(r: Result<T, nom::Err<DecodeError>>) -> Result<T, DecodeError> {
    r.map_err(|e| match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => e,
        nom::Err::Incomplete(_) => DecodeError::Truncated,
    })
}

/// One byte.
pub(crate) fn u8(input: &[u8]) -> PResult<'_, u8> {
    nom::number::complete::be_u8(input)
}

/// A big-endian two-byte integer.
pub(crate) fn u16(input: &[u8]) -> PResult<'_, u16> {
    nom::number::complete::be_u16(input)
}

/// A big-endian four-byte integer.
pub(crate) fn u32(input: &[u8]) -> PResult<'_, u32> {
    nom::number::complete::be_u32(input)
}

/// A variable byte integer in its shortest form [MQTT-1.5.5-1 v5.0].
pub(crate) fn var_int(input: &[u8]) -> PResult<'_, u32> {
    match read_var_int(input) {
        Ok(Some((value, len))) => Ok((input.get(len..).unwrap_or_default(), value)),
        Ok(None) => fail(DecodeError::Truncated),
        Err(e) => fail(e),
    }
}

/// Reads a variable byte integer from the start of `input`: `Ok(None)` when `input` ends inside
/// it, else the value and the number of bytes it took.
///
/// Hand-written rather than built from nom combinators because framing must tell "need more
/// bytes" from "malformed" before a whole frame exists.
pub fn read_var_int(input: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for (i, byte) in input.iter().take(4).enumerate() {
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            // A last byte of zero after the first one means a longer form than needed.
            if i > 0 && *byte == 0 {
                return Err(DecodeError::MalformedVarInt);
            }
            return Ok(Some((value, i + 1)));
        }
    }
    if input.len() >= 4 {
        Err(DecodeError::MalformedVarInt)
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

/// Two-byte-length-prefixed bytes, borrowed from the frame.
#[inline]
pub(crate) fn binary_slice(input: &[u8]) -> PResult<'_, &[u8]> {
    let (input, len) = u16(input)?;
    nom::bytes::complete::take(len)(input)
}

/// How many two-byte-length-prefixed fields, each followed by `trailer` bytes, `input` holds;
/// a malformed last field still counts, so this is at most `input.len() / 2`.
pub(crate) fn count_prefixed(mut input: &[u8], trailer: usize) -> usize {
    let mut n = 0;
    while let [hi, lo, rest @ ..] = input {
        n += 1;
        let skip = usize::from(u16::from_be_bytes([*hi, *lo])) + trailer;
        input = rest.get(skip..).unwrap_or_default();
    }
    n
}

/// Binary data (spec 1.5.6), sliced from `frame` without copying.
pub(crate) fn binary<'a>(frame: &Bytes, input: &'a [u8]) -> PResult<'a, Bytes> {
    let (rest, data) = binary_slice(input)?;
    Ok((rest, frame.slice_ref(data)))
}

/// A string sliced from `frame`, validated, with whether it holds `+` or `#`.
#[inline]
fn scanned_string<'a>(frame: &Bytes, input: &'a [u8]) -> PResult<'a, (MqttString, bool)> {
    let (rest, data) = binary_slice(input)?;
    match MqttString::from_bytes_scan(frame.slice_ref(data)) {
        Ok(s) => Ok((rest, s)),
        Err(e) => fail(e),
    }
}

/// A UTF-8 encoded string (spec 1.5.3 / 1.5.4), sliced from `frame` without copying.
pub(crate) fn string<'a>(frame: &Bytes, input: &'a [u8]) -> PResult<'a, MqttString> {
    let (rest, (s, _)) = scanned_string(frame, input)?;
    Ok((rest, s))
}

/// A topic name (the empty name is left for the caller to judge: 5.0 topic aliases use it).
#[inline]
pub(crate) fn topic_name_or_empty<'a>(frame: &Bytes, input: &'a [u8]) -> PResult<'a, TopicName> {
    let (rest, (s, wildcard)) = scanned_string(frame, input)?;
    if s.is_empty() {
        return Ok((rest, TopicName::empty_for_alias()));
    }
    match TopicName::from_scanned(s, wildcard) {
        Ok(t) => Ok((rest, t)),
        Err(e) => fail(e),
    }
}

/// A non-empty topic name.
pub(crate) fn topic_name<'a>(frame: &Bytes, input: &'a [u8]) -> PResult<'a, TopicName> {
    let (rest, (s, wildcard)) = scanned_string(frame, input)?;
    match TopicName::from_scanned(s, wildcard) {
        Ok(t) => Ok((rest, t)),
        Err(e) => fail(e),
    }
}

/// A topic filter.
pub(crate) fn topic_filter<'a>(frame: &Bytes, input: &'a [u8]) -> PResult<'a, TopicFilter> {
    let (rest, (s, wildcard)) = scanned_string(frame, input)?;
    match TopicFilter::from_scanned(s, wildcard) {
        Ok(t) => Ok((rest, t)),
        Err(e) => fail(e),
    }
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
            Err(DecodeError::MalformedVarInt)
        );
        assert_eq!(read_var_int(&[0xFF, 0xFF, 0xFF]), Ok(None));
    }

    #[test]
    fn var_int_uses_fewest_bytes() {
        // [MQTT-1.5.5-1 v5.0]: 0x80 0x00 encodes 0 in two bytes.
        assert_eq!(
            read_var_int(&[0x80, 0x00]),
            Err(DecodeError::MalformedVarInt)
        );
    }
}
