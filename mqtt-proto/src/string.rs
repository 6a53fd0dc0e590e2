//! `MqttString`: a validated UTF-8 encoded string that shares the packet's buffer.

use core::fmt;
use core::ops::Deref;

use bytes::Bytes;
use bytestring::ByteString;

use crate::error::StringError;

/// The longest string (in bytes) a two-byte length prefix can carry.
pub const MAX_STRING_LEN: usize = u16::MAX as usize;

/// A UTF-8 encoded string as MQTT defines it: well-formed UTF-8 without surrogates or U+0000,
/// at most 65,535 bytes [MQTT-1.5.3-1 v3.1.1], [MQTT-1.5.3-2 v3.1.1], [MQTT-1.5.4-1 v5.0],
/// [MQTT-1.5.4-2 v5.0].
///
/// Decoded strings are slices of the received packet: cloning one or the packet never copies
/// the text.
///
/// ```
/// use mqtt_proto::MqttString;
/// let s = MqttString::new("client-1").unwrap();
/// assert_eq!(&*s, "client-1");
/// assert!(MqttString::new("a\0b").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MqttString(ByteString);

impl MqttString {
    /// Validates `s` and stores it; copies `s` once.
    pub fn new(s: &str) -> Result<Self, StringError> {
        check_text(s)?;
        Ok(Self(ByteString::from(s)))
    }

    /// A string that is known to be valid: `&'static` literals in code, without copying.
    pub fn from_static(s: &'static str) -> Result<Self, StringError> {
        check_text(s)?;
        Ok(Self(ByteString::from_static(s)))
    }

    /// Validates `bytes` as an MQTT string without copying them.
    pub fn from_bytes(bytes: Bytes) -> Result<Self, StringError> {
        let (s, _) = Self::from_bytes_scan(bytes)?;
        Ok(s)
    }

    /// [`MqttString::from_bytes`] that also reports whether the text holds a `+` or `#`, found
    /// in the same pass over the bytes as the U+0000 check.
    #[inline]
    pub(crate) fn from_bytes_scan(bytes: Bytes) -> Result<(Self, bool), StringError> {
        if bytes.len() > MAX_STRING_LEN {
            return Err(StringError::TooLong);
        }
        let wildcard = scan(&bytes)?;
        let s = ByteString::try_from(bytes).map_err(|_| StringError::InvalidUtf8)?;
        Ok((Self(s), wildcard))
    }

    /// The string of `text`, a string validated by [`check`], sharing `frame` when `text` lies
    /// within it (as it does when both come from one decode) and copied otherwise.
    ///
    /// `ByteString` offers no safe way to skip its own UTF-8 check, so this validates `text`
    /// again: the price of building owned strings from the borrowed view.
    pub(crate) fn share(frame: &Bytes, text: &str) -> Self {
        let bytes = crate::view::share(frame, text.as_bytes());
        // `text` is a `&str`: the check passes and the copy is never made.
        Self(ByteString::try_from(bytes).unwrap_or_else(|_| ByteString::from(text)))
    }

    /// The string of `bytes`, which a decoder checked as UTF-8, sharing `frame` when they lie
    /// within it. `ByteString` checks them once more; should that ever fail, the text is kept
    /// with U+FFFD for what is not UTF-8 rather than panicking.
    pub(crate) fn from_checked_bytes(frame: &Bytes, bytes: &[u8]) -> Self {
        let shared = crate::view::share(frame, bytes);
        Self(ByteString::try_from(shared).unwrap_or_else(|_| {
            ByteString::from(alloc::string::String::from_utf8_lossy(bytes).into_owned())
        }))
    }

    /// A string from bytes that passed [`scan`]; checks only that they are UTF-8.
    #[inline]
    pub(crate) fn from_scanned(bytes: Bytes) -> Result<Self, StringError> {
        ByteString::try_from(bytes)
            .map(Self)
            .map_err(|_| StringError::InvalidUtf8)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The encoded bytes, sharing the buffer.
    pub fn as_bytes(&self) -> &Bytes {
        self.0.as_bytes()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
const PLUS: u64 = u64::from_ne_bytes([b'+'; 8]);
const HASH: u64 = u64::from_ne_bytes([b'#'; 8]);

/// Non-zero exactly when some byte of `v` is zero.
#[inline(always)]
fn zero_byte(v: u64) -> u64 {
    v.wrapping_sub(ONES) & !v & HIGHS
}

/// Non-zero exactly when some byte of `v` is `+` or `#`; read as little-endian, the lowest
/// set bit is the high bit of the first such byte (bits above it may be set in error).
#[inline(always)]
pub(crate) fn wildcard_bits(v: u64) -> u64 {
    wildcard_byte(v)
}

/// Non-zero exactly when some byte of `v` is `+` or `#`.
#[inline(always)]
fn wildcard_byte(v: u64) -> u64 {
    zero_byte(v ^ PLUS) | zero_byte(v ^ HASH)
}

/// ORs `bits` of every eight-byte word of `bytes` (at least eight long), the tail as one word
/// overlapping the last whole one: no branch and no byte loop.
#[inline(always)]
fn fold_words(bytes: &[u8], last: &[u8; 8], bits: impl Fn(u64) -> u64) -> u64 {
    let (words, _) = bytes.as_chunks::<8>();
    let found = words
        .iter()
        .fold(0, |found, word| found | bits(u64::from_ne_bytes(*word)));
    found | bits(u64::from_ne_bytes(*last))
}

/// Bytes per block of [`scan_blocks`].
const BLOCK: usize = 32;

/// 1 if `b` is U+0000, `+` or `#`, else 0; without branches, so that a loop of it compiles to
/// vector compares.
#[inline(always)]
fn special_byte(b: u8) -> u8 {
    u8::from(b == 0) | u8::from(b == b'+') | u8::from(b == b'#')
}

/// [`scan_bytes`] of a string of at least [`BLOCK`] bytes: 32 bytes per step, in vector
/// compares (SSE2 is in every x86-64), the tail as one block overlapping the last whole one;
/// about half an instruction per byte, which long strings (a 65,535-byte user name) feel.
#[inline]
fn scan_blocks(bytes: &[u8], last: &[u8; BLOCK]) -> (bool, bool) {
    let fold_blocks = |bits: fn(u8) -> u8| {
        let (blocks, _) = bytes.as_chunks::<BLOCK>();
        let mut found = 0;
        for block in blocks.iter().chain(core::iter::once(last)) {
            found |= block.iter().fold(0, |found, &b| found | bits(b));
        }
        found != 0
    };
    if !fold_blocks(special_byte) {
        return (false, false);
    }
    (fold_blocks(|b| u8::from(b == 0)), true)
}

/// Whether `bytes` holds U+0000 and whether it holds `+` or `#` (the latter meaningful only
/// without the former): one pass of word tests for all three, about a dozen instructions per
/// eight bytes, and a second pass for U+0000 alone only when one of them is there.
#[inline]
fn scan_bytes(bytes: &[u8]) -> (bool, bool) {
    if let Some(last) = bytes.last_chunk::<BLOCK>() {
        return scan_blocks(bytes, last);
    }
    let Some(last) = bytes.last_chunk::<8>() else {
        // Under eight bytes: a plain loop (`contains` would call memchr, dearer here).
        let null = bytes.iter().fold(false, |found, &b| found | (b == 0));
        let wildcard = bytes
            .iter()
            .fold(false, |found, &b| found | (b == b'+') | (b == b'#'));
        return (null, wildcard);
    };
    if fold_words(bytes, last, |v| zero_byte(v) | wildcard_byte(v)) == 0 {
        return (false, false);
    }
    (fold_words(bytes, last, zero_byte) != 0, true)
}

/// Whether `bytes` holds U+0000, `+` or `#`.
#[cfg(test)]
fn has_special_byte(bytes: &[u8]) -> bool {
    let (null, wildcard) = scan_bytes(bytes);
    null || wildcard
}

/// Checks a string's bytes for U+0000 and reports whether they hold `+` or `#`; the UTF-8
/// check is left to the caller ([`check`] or [`MqttString::from_scanned`]).
#[inline]
pub(crate) fn scan(bytes: &[u8]) -> Result<bool, StringError> {
    let (null, wildcard) = scan_bytes(bytes);
    if null {
        return Err(StringError::NullCharacter);
    }
    Ok(wildcard)
}

/// Validates a UTF-8 encoded string (spec 1.5.3 of 3.1.1, 1.5.4 of 5.0): well-formed UTF-8
/// [MQTT-1.5.3-1 v3.1.1] [MQTT-1.5.4-1 v5.0], no U+0000 [MQTT-1.5.3-2 v3.1.1]
/// [MQTT-1.5.4-2 v5.0]. Returns the text and whether it holds `+` or `#`.
#[inline]
pub(crate) fn check(bytes: &[u8]) -> Result<(&str, bool), StringError> {
    // The scan first, as the owned decoder does before `ByteString` checks UTF-8: both report
    // the same error for a string that breaks both rules.
    let wildcard = scan(bytes)?;
    let text = core::str::from_utf8(bytes).map_err(|_| StringError::InvalidUtf8)?;
    Ok((text, wildcard))
}

/// Checks the rules a `&str` does not already guarantee.
fn check_text(s: &str) -> Result<(), StringError> {
    if s.len() > MAX_STRING_LEN {
        Err(StringError::TooLong)
    } else if s.as_bytes().contains(&0) {
        Err(StringError::NullCharacter)
    } else {
        Ok(())
    }
}

impl Deref for MqttString {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for MqttString {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for MqttString {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for MqttString {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl TryFrom<&str> for MqttString {
    type Error = StringError;
    fn try_from(value: &str) -> Result<Self, StringError> {
        Self::new(value)
    }
}

impl TryFrom<alloc::string::String> for MqttString {
    type Error = StringError;
    fn try_from(value: alloc::string::String) -> Result<Self, StringError> {
        check_text(&value)?;
        Ok(Self(ByteString::from(value)))
    }
}

impl fmt::Debug for MqttString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for MqttString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for MqttString {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let s: alloc::string::String = u.arbitrary()?;
        let s: alloc::string::String = s.chars().filter(|c| *c != '\0').take(64).collect();
        Self::try_from(s).map_err(|_| arbitrary::Error::IncorrectFormat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_null_character() {
        // [MQTT-1.5.3-2 v3.1.1] [MQTT-1.5.4-2 v5.0]
        assert_eq!(
            MqttString::from_bytes(Bytes::from_static(b"a\0")),
            Err(StringError::NullCharacter)
        );
    }

    #[test]
    fn rejects_surrogates_and_ill_formed_utf8() {
        // [MQTT-1.5.3-1 v3.1.1] [MQTT-1.5.4-1 v5.0]: U+D800 encoded as ED A0 80 is not UTF-8.
        assert_eq!(
            MqttString::from_bytes(Bytes::from_static(&[0xED, 0xA0, 0x80])),
            Err(StringError::InvalidUtf8)
        );
        assert_eq!(
            MqttString::from_bytes(Bytes::from_static(&[0xC3])),
            Err(StringError::InvalidUtf8)
        );
    }

    #[test]
    fn keeps_byte_order_mark() {
        // [MQTT-1.5.3-3 v3.1.1] [MQTT-1.5.4-3 v5.0]
        let s = MqttString::from_bytes(Bytes::from_static(&[0xEF, 0xBB, 0xBF, b'a'])).unwrap();
        assert_eq!(s.as_str(), "\u{FEFF}a");
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn accepts_the_longest_string() {
        let long = "x".repeat(MAX_STRING_LEN);
        assert_eq!(MqttString::new(&long).map(|s| s.len()), Ok(MAX_STRING_LEN));
        assert_eq!(MqttString::new(&(long + "x")), Err(StringError::TooLong));
    }

    #[test]
    fn word_scan_finds_each_special_byte_at_every_position() {
        for len in 0..80 {
            let plain = vec![b'a'; len];
            assert!(!has_special_byte(&plain));
            for pos in 0..len {
                for special in [0, b'+', b'#'] {
                    let mut bytes = plain.clone();
                    bytes[pos] = special;
                    assert!(has_special_byte(&bytes), "{special} at {pos} of {len}");
                }
                for near in [0x80, 0xFF, b'*', b'"', 0x01, b'$', b','] {
                    let mut bytes = plain.clone();
                    bytes[pos] = near;
                    assert!(!has_special_byte(&bytes), "{near} at {pos} of {len}");
                }
            }
        }
    }
}
