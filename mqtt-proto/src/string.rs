//! `MqttString`: a validated UTF-8 encoded string, held in place when short, sharing the
//! packet's buffer otherwise.

use core::fmt;
use core::ops::Deref;

use bytes::Bytes;
use bytestring::ByteString;

use crate::error::StringError;
use crate::text::{self, InlineStr};

/// The longest string (in bytes) a two-byte length prefix can carry.
pub const MAX_STRING_LEN: usize = u16::MAX as usize;

/// A UTF-8 encoded string as MQTT defines it: well-formed UTF-8 without surrogates or U+0000,
/// at most 65,535 bytes [MQTT-1.5.3-1 v3.1.1], [MQTT-1.5.3-2 v3.1.1], [MQTT-1.5.4-1 v5.0],
/// [MQTT-1.5.4-2 v5.0].
///
/// A string of up to [`MqttString::INLINE_LEN`] bytes (most topics, client identifiers and
/// user properties) is held in place: making, decoding, cloning and dropping one allocates
/// nothing and moves no reference count. A longer decoded string is a slice of the received
/// packet, which cloning the string or the packet shares, never copies.
///
/// ```
/// use mqtt_proto::MqttString;
/// let s = MqttString::new("client-1").unwrap();
/// assert_eq!(&*s, "client-1");
/// assert!(MqttString::new("a\0b").is_err());
/// ```
#[derive(Clone)]
pub struct MqttString(Repr);

/// Where an [`MqttString`]'s text is.
#[derive(Clone)]
enum Repr {
    /// Short enough to be held in place.
    Inline(InlineStr),
    /// Longer, or given as a buffer to share.
    Shared(ByteString),
}

impl MqttString {
    /// The longest string, in bytes, held in place rather than in a buffer.
    pub const INLINE_LEN: usize = text::INLINE_LEN;

    /// Validates `s` and stores it; copies `s` once, into the string itself if it is short.
    pub fn new(s: &str) -> Result<Self, StringError> {
        check_text(s)?;
        Ok(Self::copied(s))
    }

    /// A string that is known to be valid: `&'static` literals in code, without copying.
    pub fn from_static(s: &'static str) -> Result<Self, StringError> {
        check_text(s)?;
        Ok(Self(Repr::Shared(ByteString::from_static(s))))
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
        Ok((Self(Repr::Shared(s)), wildcard))
    }

    /// Checks `s` by the rules of an MQTT string in the decoder's one pass over its bytes,
    /// and reports whether it holds a `+` or `#`.
    #[inline]
    pub(crate) fn scan_topic(s: &str) -> Result<bool, StringError> {
        if s.len() > MAX_STRING_LEN {
            return Err(StringError::TooLong);
        }
        Ok(text::Scanned::topic(s.as_bytes())?.has_wildcard())
    }

    /// The string of `text`, a string a decoder checked: held in place if it is short, else
    /// sharing `frame` when `text` lies within it (as it does when both come from one decode)
    /// and copied otherwise.
    #[inline]
    pub(crate) fn share(frame: &Bytes, text: &str) -> Self {
        match InlineStr::new(text) {
            Some(inline) => Self(Repr::Inline(inline)),
            None => Self(Repr::Shared(text::shared(frame, text))),
        }
    }

    /// `text`, a string a decoder checked, copied: into the string itself if it is short, an
    /// allocation of its own otherwise.
    #[inline]
    pub(crate) fn copied(text: &str) -> Self {
        match InlineStr::new(text) {
            Some(inline) => Self(Repr::Inline(inline)),
            None => Self(Repr::Shared(text::copied(text))),
        }
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline(s) => s.as_str(),
            Repr::Shared(s) => s,
        }
    }

    /// The encoded bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.as_str().as_bytes()
    }

    /// The encoded bytes as `Bytes`: sharing the string's buffer when it has one, copied when
    /// the string is held in place.
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Repr::Inline(s) => Bytes::copy_from_slice(s.as_str().as_bytes()),
            Repr::Shared(s) => s.as_bytes().clone(),
        }
    }

    /// A string of `s`, a string already checked, sharing its buffer.
    #[inline]
    pub(crate) fn from_byte_string(s: ByteString) -> Self {
        Self(Repr::Shared(s))
    }

    /// The string as a `ByteString`: its own buffer, or a copy of the text held in place.
    pub(crate) fn into_byte_string(self) -> ByteString {
        match self.0 {
            Repr::Inline(s) => ByteString::from(s.as_str()),
            Repr::Shared(s) => s,
        }
    }

    /// The buffer the string shares, unless it is held in place.
    #[inline]
    pub(crate) fn shared_bytes(&self) -> Option<&Bytes> {
        match &self.0 {
            Repr::Inline(_) => None,
            Repr::Shared(s) => Some(s.as_bytes()),
        }
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Inline(s) => s.len(),
            Repr::Shared(s) => s.len(),
        }
    }

    /// Whether the string is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.as_str().is_empty()
    }
}

impl Default for MqttString {
    fn default() -> Self {
        Self(Repr::Inline(InlineStr::EMPTY))
    }
}

impl PartialEq for MqttString {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for MqttString {}

impl PartialOrd for MqttString {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MqttString {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl core::hash::Hash for MqttString {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
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
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for MqttString {
    fn as_ref(&self) -> &str {
        self.as_str()
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
        Ok(match InlineStr::new(&value) {
            Some(inline) => Self(Repr::Inline(inline)),
            // The `String`'s buffer becomes the string's, without a copy.
            None => Self(Repr::Shared(ByteString::from(value))),
        })
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

    /// Whether `s`'s text lies in the value itself.
    fn in_place(s: &MqttString) -> bool {
        let at = s as *const MqttString as usize;
        let text = s.as_bytes().as_ptr() as usize;
        (at..at + core::mem::size_of::<MqttString>()).contains(&text)
    }

    #[test]
    fn short_strings_are_held_in_place_and_long_ones_are_not() {
        let short = "s".repeat(MqttString::INLINE_LEN);
        let long = "l".repeat(MqttString::INLINE_LEN + 1);
        assert!(in_place(&MqttString::new(&short).unwrap()));
        assert!(in_place(&MqttString::try_from(short.clone()).unwrap()));
        assert!(in_place(&MqttString::copied(&short)));
        assert!(in_place(&MqttString::share(&Bytes::new(), &short)));
        assert!(in_place(&MqttString::default()));
        assert!(!in_place(&MqttString::new(&long).unwrap()));
        assert!(!in_place(&MqttString::try_from(long.clone()).unwrap()));
        assert!(!in_place(&MqttString::copied(&long)));
        // What a caller hands over as a buffer stays that buffer, however short.
        let shared = MqttString::from_bytes(Bytes::from(short.clone())).unwrap();
        assert!(!in_place(&shared));
        assert_eq!(MqttString::new(&short).unwrap().as_str(), short);
        assert_eq!(MqttString::new(&long).unwrap().as_str(), long);
    }

    #[test]
    fn equality_order_and_hash_follow_the_text_not_where_it_is() {
        use core::hash::BuildHasher;
        let state = std::collections::hash_map::RandomState::new();
        let hash_with = |s: &MqttString| state.hash_one(s);
        let text = "sensors/kitchen";
        let inline = MqttString::new(text).unwrap();
        let shared = MqttString::from_bytes(Bytes::from_static(text.as_bytes())).unwrap();
        assert!(in_place(&inline) && !in_place(&shared));
        assert_eq!(inline, shared);
        assert_eq!(hash_with(&inline), hash_with(&shared));
        let later = MqttString::from_bytes(Bytes::from_static(b"sensors/l")).unwrap();
        assert!(inline < later && later > shared);
        assert_eq!(inline.to_bytes(), shared.to_bytes());
    }

    #[test]
    fn accepts_the_longest_string() {
        let long = "x".repeat(MAX_STRING_LEN);
        assert_eq!(MqttString::new(&long).map(|s| s.len()), Ok(MAX_STRING_LEN));
        assert_eq!(MqttString::new(&(long + "x")), Err(StringError::TooLong));
    }
}
