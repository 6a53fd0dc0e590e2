//! `MqttString`: a validated UTF-8 encoded string that shares the packet's buffer.

use core::fmt;
use core::ops::Deref;

use bytes::Bytes;
use bytestring::ByteString;

use crate::error::StringError;
use crate::text;

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
        let (s, wildcard) = text::owned(bytes)?;
        Ok((Self(s), wildcard))
    }

    /// `s`, copied, once [`text::Scanned::topic`] found no U+0000 in it; reports whether it
    /// holds a `+` or `#`. One pass over the bytes serves a topic's every check.
    #[inline]
    pub(crate) fn new_scan_topic(s: &str) -> Result<(Self, bool), StringError> {
        if s.len() > MAX_STRING_LEN {
            return Err(StringError::TooLong);
        }
        let wildcard = text::Scanned::topic(s.as_bytes())?.has_wildcard();
        Ok((Self(ByteString::from(s)), wildcard))
    }

    /// The string of `text`, a string a decoder checked, sharing `frame` when `text` lies within
    /// it (as it does when both come from one decode) and copied otherwise.
    #[inline]
    pub(crate) fn share(frame: &Bytes, text: &str) -> Self {
        Self(text::shared(frame, text))
    }

    /// `text`, a string a decoder checked, copied into an allocation of its own.
    #[inline]
    pub(crate) fn copied(text: &str) -> Self {
        Self(text::copied(text))
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
}
