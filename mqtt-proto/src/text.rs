//! The bytes of UTF-8 encoded strings (spec 1.5.3 of 3.1.1, 1.5.4 of 5.0): the scan for
//! U+0000 and wildcards, and the `&str`s and `ByteString`s made of bytes it proved to be ASCII.
//!
//! The crate's `unsafe` code is here, conversions that skip a UTF-8 check already made and the
//! text of a string held in place ([`InlineStr`]), and in `append.rs`, the short copies and the
//! length set after an encoder's one capacity check.
//! A scan that proves a string free of U+0000 learns, in the same vector pass, whether every
//! byte is ASCII; an ASCII string is UTF-8, so checking it again with `core::str::from_utf8`
//! (about 0.44 instruction a byte, and a call) would only repeat the proof. Measured with
//! `benches/instructions.sh`: the 65,535-byte user name of `connect_long_username` took
//! 76,771 instructions to decode into the borrowed view and 62,404 into the owned packet with
//! the second check, a quarter to a third of that without it; every decoded topic name and
//! property string pays the call otherwise. Every `unsafe` block of this module depends only on
//! checks made in it: a [`Scanned`] can be made only by its scans, [`checked_str`]
//! and [`plain_topic_name`] test the bytes themselves, [`shared`] only slices a `&str`,
//! [`copied`] only copies one, and an [`InlineStr`] only copies one and reads back its length
//! and bytes.
#![allow(unsafe_code)]

use bytes::Bytes;
use bytestring::ByteString;

use crate::error::StringError;

/// Bytes of a string that passed a scan: no U+0000, and whether all are ASCII and whether any is
/// `+` or `#`. Made only by [`Scanned::topic`] and [`Scanned::plain`], so `ascii` is true only
/// when every byte was seen to be below 0x80.
#[derive(Clone, Copy)]
pub(crate) struct Scanned<'a> {
    bytes: &'a [u8],
    ascii: bool,
    wildcard: bool,
}

impl<'a> Scanned<'a> {
    /// Scans a string that may be a topic name or filter: for U+0000 [MQTT-1.5.3-2 v3.1.1]
    /// [MQTT-1.5.4-2 v5.0], and for `+` and `#`.
    #[inline]
    pub(crate) fn topic(bytes: &'a [u8]) -> Result<Self, StringError> {
        let (null, wildcard, ascii) = scan_special(bytes);
        if null {
            return Err(StringError::NullCharacter);
        }
        Ok(Self {
            bytes,
            ascii,
            wildcard,
        })
    }

    /// Scans a string whose wildcards mean nothing (a client identifier, a user name, a
    /// property): for U+0000 only, about half the work of [`Scanned::topic`].
    #[inline]
    pub(crate) fn plain(bytes: &'a [u8]) -> Result<Self, StringError> {
        let (null, ascii) = scan_plain(bytes);
        if null {
            return Err(StringError::NullCharacter);
        }
        Ok(Self {
            bytes,
            ascii,
            wildcard: false,
        })
    }

    /// Whether the bytes hold `+` or `#` (always false after [`Scanned::plain`]).
    #[inline(always)]
    pub(crate) fn has_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The text, once its bytes are proven UTF-8 [MQTT-1.5.3-1 v3.1.1] [MQTT-1.5.4-1 v5.0].
    #[inline(always)]
    pub(crate) fn to_str(self) -> Result<&'a str, StringError> {
        if self.ascii {
            debug_assert!(self.bytes.is_ascii());
            // SAFETY: `ascii` is set only by this module's scans, and only when every byte of
            // `bytes` is below 0x80; a sequence of ASCII bytes is valid UTF-8.
            Ok(unsafe { core::str::from_utf8_unchecked(self.bytes) })
        } else {
            core::str::from_utf8(self.bytes).map_err(|_| StringError::InvalidUtf8)
        }
    }
}

/// `bytes`, which a decoder already checked, as text: the ASCII test alone where it suffices.
/// `None` if they are not UTF-8 after all.
#[inline]
pub(crate) fn checked_str(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: every byte is below 0x80, as `is_ascii` just proved; ASCII is valid UTF-8.
        Some(unsafe { core::str::from_utf8_unchecked(bytes) })
    } else {
        core::str::from_utf8(bytes).ok()
    }
}

/// `text` as a `ByteString` sharing `frame` when it lies within it (a reference count), a copy
/// otherwise; never panics.
#[inline]
pub(crate) fn shared(frame: &Bytes, text: &str) -> ByteString {
    if crate::view::lies_within(frame, text.as_bytes()) {
        let bytes = frame.slice_ref(text.as_bytes());
        debug_assert_eq!(bytes.as_ref(), text.as_bytes());
        // SAFETY: `slice_ref` returns the bytes at exactly `text`'s addresses, which are
        // `text`'s bytes, and `Bytes` never changes the bytes it shares: they are a `&str`'s,
        // valid UTF-8.
        unsafe { ByteString::from_bytes_unchecked(bytes) }
    } else {
        copied(text)
    }
}

/// `bytes` copied into an allocation of exactly their size, which becomes the `Bytes`' buffer
/// as it is: `Bytes::copy_from_slice` goes through a `Vec` and checks its capacity on the way,
/// about 30 instructions more for each small PUBLISH's topic and payload.
#[inline]
pub(crate) fn copied_bytes(bytes: &[u8]) -> Bytes {
    Bytes::from(alloc::boxed::Box::<[u8]>::from(bytes))
}

/// `text` copied into a `ByteString` of its own, without a second UTF-8 check.
#[inline]
pub(crate) fn copied(text: &str) -> ByteString {
    let bytes = copied_bytes(text.as_bytes());
    // SAFETY: `bytes` holds a copy of exactly `text`'s bytes, which as a `&str`'s are valid
    // UTF-8.
    unsafe { ByteString::from_bytes_unchecked(bytes) }
}

/// The longest text an [`InlineStr`] holds: with its two-byte length, what fits in the five
/// words an `MqttString` takes when it holds a shared buffer instead.
pub(crate) const INLINE_LEN: usize = 38;

/// The high byte of an [`InlineStr`]'s length, always 0: a byte with one valid value, whose
/// other 255 values let an enum holding an `InlineStr` tell its other variants apart without a
/// tag of its own.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Zero {
    /// The only value.
    Zero = 0,
}

/// A copy of a `&str` of at most [`INLINE_LEN`] bytes held in place, laid out as the string is
/// encoded (its length in two bytes, big-endian, then the text), so that the length's high
/// byte, always 0, gives an enum holding one the room for its tag. No allocation to make or
/// free, and no reference count to move. Made only by [`InlineStr::new`], so its first `len`
/// bytes of text are always a `&str`'s.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct InlineStr {
    hi: Zero,
    len: u8,
    bytes: [u8; INLINE_LEN],
}

impl InlineStr {
    /// The empty string.
    pub(crate) const EMPTY: Self = Self {
        hi: Zero::Zero,
        len: 0,
        bytes: [0; INLINE_LEN],
    };

    /// `text` copied in place, or `None` if it is longer than [`INLINE_LEN`] bytes.
    ///
    /// The value is assembled in five registers, one per eight bytes of the layout, and
    /// stored whole: copying the text into a buffer and that buffer into the value made the
    /// CPU load bytes while the stores of the copy were still on their way to the cache, and
    /// each such load waits for them (the owned 5.0 stream with properties, four short strings
    /// a PUBLISH, took 18 % less time assembled so: `benches/README.md`).
    #[inline]
    pub(crate) fn new(text: &str) -> Option<Self> {
        let src = text.as_bytes();
        let n = src.len();
        if n > INLINE_LEN {
            return None;
        }
        // Word `i` holds bytes `8 * i..8 * i + 8` of the layout: the length in two bytes,
        // then the text from its byte `8 * i - 2`, then zeros. Every read lies within `src`.
        let mut words = [0u64; 5];
        if let (Some(first), Some(last)) = (src.first_chunk::<8>(), src.last_chunk::<8>()) {
            let last = u64::from_le_bytes(*last);
            words[0] = (u64::from_le_bytes(*first) << 16) | ((n as u64) << 8);
            for (i, word) in words.iter_mut().enumerate().skip(1) {
                let at = 8 * i - 2;
                *word = match src.get(at..).and_then(<[u8]>::first_chunk::<8>) {
                    Some(whole) => u64::from_le_bytes(*whole),
                    // The text's last bytes, `src[at..n]`, are the high ones of its last word.
                    None if at < n => last >> (8 * (at + 8 - n)),
                    None => 0,
                };
            }
        } else {
            let short = gather_short(src);
            words[0] = (short << 16) | ((n as u64) << 8);
            words[1] = short >> 48;
        }
        let mut raw = [0u8; 40];
        for (chunk, word) in raw.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        // SAFETY: `InlineStr` is `repr(C)` of fields of one-byte alignment (a `Zero`, a `u8`
        // and 38 bytes) with no padding, 40 bytes as `raw` is; its first byte, a `Zero`, is 0 (the low byte of `words[0]`), its `len` is
        // `n <= INLINE_LEN`, and its first `n` bytes of text are `text`'s, as `new` promises.
        Some(unsafe { core::mem::transmute::<[u8; 40], Self>(raw) })
    }

    /// The text's length in bytes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// The text.
    #[inline]
    pub(crate) fn as_str(&self) -> &str {
        // SAFETY: `new` made `len` at most `INLINE_LEN`, the length of `bytes`, and copied
        // exactly `len` bytes of a `&str` to its start; nothing changes them after, so they are
        // in bounds and valid UTF-8. (The checked slice cost four instructions on every read
        // of a string an encoder makes: `benches/instructions.sh`.)
        unsafe { core::str::from_utf8_unchecked(self.bytes.get_unchecked(..usize::from(self.len))) }
    }
}

/// The bytes of a text shorter than eight bytes as the low bytes of a word, the rest zero.
#[inline(always)]
fn gather_short(src: &[u8]) -> u64 {
    match (src.first_chunk::<4>(), src.last_chunk::<4>()) {
        // Two reads that overlap where the text is shorter than eight bytes.
        (Some(first), Some(last)) => {
            let first = u64::from(u32::from_le_bytes(*first));
            let last = u64::from(u32::from_le_bytes(*last));
            first | (last << (8 * (src.len() - 4)))
        }
        _ => src
            .iter()
            .rev()
            .fold(0, |word, &b| (word << 8) | u64::from(b)),
    }
}

/// `bytes` as a `ByteString` once scanned for U+0000 (and wildcards, reported) and proven
/// UTF-8, without copying them.
#[inline]
pub(crate) fn owned(bytes: Bytes) -> Result<(ByteString, bool), StringError> {
    let scanned = Scanned::topic(&bytes)?;
    let wildcard = scanned.has_wildcard();
    if scanned.ascii {
        // SAFETY: the scan saw every byte of `bytes` below 0x80: ASCII, valid UTF-8.
        Ok((unsafe { ByteString::from_bytes_unchecked(bytes) }, wildcard))
    } else {
        let s = ByteString::try_from(bytes).map_err(|_| StringError::InvalidUtf8)?;
        Ok((s, wildcard))
    }
}

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
/// `+` (0x2B) and `#` (0x23) differ only in bit 3: with it set, both read `+`.
const BIT3: u64 = u64::from_ne_bytes([0x08; 8]);
const PLUS: u64 = u64::from_ne_bytes([b'+'; 8]);

/// Non-zero exactly when some byte of `v` is zero.
#[inline(always)]
fn zero_byte(v: u64) -> u64 {
    v.wrapping_sub(ONES) & !v & HIGHS
}

/// Non-zero exactly when some byte of `v` is `+` or `#`; read as little-endian, the lowest
/// set bit is the high bit of the first such byte (bits above it may be set in error).
#[inline(always)]
pub(crate) fn wildcard_bits(v: u64) -> u64 {
    zero_byte((v | BIT3) ^ PLUS)
}

/// Whether `b` is `+` or `#`.
#[inline(always)]
fn is_wildcard(b: u8) -> bool {
    b | 0x08 == b'+'
}

/// Bytes per block of the long-string scan.
const BLOCK: usize = 32;

/// What a scan learned: the smallest byte (0 means U+0000), the OR of all bytes (below 0x80
/// means ASCII), and whether a `+` or `#` was seen.
#[derive(Clone, Copy)]
struct Seen {
    min: u8,
    all: u8,
    wildcard: bool,
}

/// Folds `step` over every [`BLOCK`]-byte block of `bytes` (at least one block long), the tail
/// as one block overlapping the last whole one.
#[inline(always)]
fn each_block(bytes: &[u8], last: &[u8; BLOCK], mut step: impl FnMut(&[u8; BLOCK])) {
    let (blocks, _) = bytes.as_chunks::<BLOCK>();
    for block in blocks {
        step(block);
    }
    step(last);
}

/// The scan of a string of at least [`BLOCK`] bytes: per-lane accumulators over 32-byte blocks,
/// so that the loops compile to vector operations (SSE2 is in every x86-64).
///
/// A first pass serves the common string, ASCII without U+0000 (and, for a topic, without
/// wildcards): `b - 1` (wrapping) is 0x7F or more exactly for U+0000 and the bytes from 0x80,
/// a wildcard counts as 0xFF, and the largest lane says whether any byte needs a closer look:
/// one subtraction and one maximum per 16 bytes (and a compare for topics), about a fifth of an
/// instruction a byte, which long strings (a 65,535-byte user name) feel. Only a string that
/// has such a byte is scanned again, for exactly which: a topic filter of 32 bytes or more with
/// a wildcard pays both passes, which a PUBLISH's topic name, the string a client decodes most,
/// never does.
#[inline]
fn scan_blocks<const WILDCARDS: bool>(bytes: &[u8], last: &[u8; BLOCK]) -> Seen {
    if blocks_plain::<WILDCARDS>(bytes, last) {
        return Seen {
            min: 1,
            all: 0,
            wildcard: false,
        };
    }
    let mut min = [u8::MAX; BLOCK];
    let mut all = [0u8; BLOCK];
    let mut wild = [0u8; BLOCK];
    each_block(bytes, last, |block| {
        let lanes = min.iter_mut().zip(all.iter_mut()).zip(wild.iter_mut());
        for (((min, all), wild), &b) in lanes.zip(block) {
            *min = (*min).min(b);
            *all |= b;
            if WILDCARDS {
                *wild |= u8::from(is_wildcard(b));
            }
        }
    });
    Seen {
        min: min.iter().fold(u8::MAX, |acc, &m| acc.min(m)),
        all: all.iter().fold(0, |acc, &a| acc | a),
        wildcard: wild.iter().fold(0, |acc, &w| acc | w) != 0,
    }
}

/// Whether every byte of a string of at least [`BLOCK`] bytes is ASCII and not U+0000 (and,
/// with `WILDCARDS`, neither `+` nor `#`): the first pass of [`scan_blocks`].
#[inline(always)]
fn blocks_plain<const WILDCARDS: bool>(bytes: &[u8], last: &[u8; BLOCK]) -> bool {
    let mut top = [0u8; BLOCK];
    each_block(bytes, last, |block| {
        for (top, &b) in top.iter_mut().zip(block) {
            let wildcard = if WILDCARDS {
                0u8.wrapping_sub(u8::from(is_wildcard(b)))
            } else {
                0
            };
            *top = (*top).max(b.wrapping_sub(1) | wildcard);
        }
    });
    top.iter().fold(0, |acc, &t| acc.max(t)) < 0x7F
}

/// [`blocks_plain`] for a string of 8 to 31 bytes, in eight-byte words as [`scan_words`] reads
/// them: a byte with its high bit set, a zero byte and a wildcard each leave a high bit in the
/// OR of the words.
#[inline(always)]
fn words_plain(bytes: &[u8], last: &[u8; 8]) -> bool {
    let (words, _) = bytes.as_chunks::<8>();
    let bad = words
        .iter()
        .chain(core::iter::once(last))
        .fold(0, |bad, word| {
            let v = u64::from_ne_bytes(*word);
            bad | v | zero_byte(v) | wildcard_bits(v)
        });
    bad & HIGHS == 0
}

/// `bytes` as a topic name when it is the kind nearly every PUBLISH carries: ASCII, with no
/// U+0000, `+` or `#`. `None` for any other bytes, which [`Scanned::topic`] then examines for
/// the rule they break, if any. One test of one accumulated value decides, where the full scan
/// reports three findings that each need a test of their own.
#[inline(always)]
pub(crate) fn plain_topic_name(bytes: &[u8]) -> Option<&str> {
    let plain = if let Some(last) = bytes.last_chunk::<BLOCK>() {
        blocks_plain::<true>(bytes, last)
    } else if let Some(last) = bytes.last_chunk::<8>() {
        words_plain(bytes, last)
    } else {
        // `b - 1` (wrapping) is 0x7F or more exactly for U+0000 and the bytes from 0x80.
        !bytes.iter().fold(false, |bad, &b| {
            bad | (b.wrapping_sub(1) >= 0x7F) | is_wildcard(b)
        })
    };
    if plain {
        debug_assert!(bytes.is_ascii());
        // SAFETY: `plain` is true only when every byte of `bytes` was seen to be below 0x80
        // (each of the three tests above rejects the bytes from 0x80); ASCII is valid UTF-8.
        Some(unsafe { core::str::from_utf8_unchecked(bytes) })
    } else {
        None
    }
}

/// The scan of a string of 8 to 31 bytes: eight-byte words, the tail as one word overlapping
/// the last whole one; no branch and no byte loop.
#[inline]
fn scan_words<const WILDCARDS: bool>(bytes: &[u8], last: &[u8; 8]) -> Seen {
    let (words, _) = bytes.as_chunks::<8>();
    let (null, all, wild) =
        words
            .iter()
            .chain(core::iter::once(last))
            .fold((0, 0, 0), |(null, all, wild), word| {
                let v = u64::from_ne_bytes(*word);
                let w = if WILDCARDS { wildcard_bits(v) } else { 0 };
                (null | zero_byte(v), all | v, wild | w)
            });
    Seen {
        min: u8::from(null == 0),
        all: if all & HIGHS == 0 { 0 } else { 0x80 },
        wildcard: wild != 0,
    }
}

/// The scan of fewer than eight bytes: a plain loop (`contains` would call memchr, dearer
/// here).
#[inline(always)]
fn scan_short(bytes: &[u8]) -> Seen {
    bytes.iter().fold(
        Seen {
            min: u8::MAX,
            all: 0,
            wildcard: false,
        },
        |seen, &b| Seen {
            min: seen.min.min(b),
            all: seen.all | b,
            wildcard: seen.wildcard | is_wildcard(b),
        },
    )
}

/// Scans `bytes` for U+0000 and non-ASCII bytes, and for `+` and `#` with `WILDCARDS`.
#[inline(always)]
fn scan<const WILDCARDS: bool>(bytes: &[u8]) -> Seen {
    if let Some(last) = bytes.last_chunk::<BLOCK>() {
        scan_blocks::<WILDCARDS>(bytes, last)
    } else if let Some(last) = bytes.last_chunk::<8>() {
        scan_words::<WILDCARDS>(bytes, last)
    } else {
        scan_short(bytes)
    }
}

/// Whether `bytes` holds U+0000, whether it holds `+` or `#`, and whether every byte is ASCII.
#[inline]
fn scan_special(bytes: &[u8]) -> (bool, bool, bool) {
    let seen = scan::<true>(bytes);
    (seen.min == 0, seen.wildcard, seen.all < 0x80)
}

/// Whether `bytes` holds U+0000 and whether every byte is ASCII.
#[inline]
fn scan_plain(bytes: &[u8]) -> (bool, bool) {
    let seen = scan::<false>(bytes);
    (seen.min == 0, seen.all < 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn scans_find_each_special_byte_at_every_position() {
        for len in 0..80 {
            let plain = vec![b'a'; len];
            assert_eq!(scan_special(&plain), (false, false, true));
            assert_eq!(scan_plain(&plain), (false, true));
            assert_eq!(plain_topic_name(&plain).map(str::len), Some(len));
            for pos in 0..len {
                for (special, null) in [(0, true), (b'+', false), (b'#', false)] {
                    let mut bytes = plain.clone();
                    bytes[pos] = special;
                    let found = scan_special(&bytes);
                    assert_eq!(found, (null, !null, true), "{special} at {pos} of {len}");
                    assert_eq!(
                        plain_topic_name(&bytes),
                        None,
                        "{special} at {pos} of {len}"
                    );
                    assert_eq!(
                        scan_plain(&bytes),
                        (null, true),
                        "{special} at {pos} of {len}"
                    );
                }
                for near in [
                    0x80, 0xFF, b'*', b'"', 0x01, b'$', b',', 0x7F, 0x03, 0x0B, 0xAB, 0xA3,
                ] {
                    let mut bytes = plain.clone();
                    bytes[pos] = near;
                    let ascii = near < 0x80;
                    assert_eq!(plain_topic_name(&bytes).is_some(), ascii, "{near} at {pos}");
                    assert_eq!(
                        scan_special(&bytes),
                        (false, false, ascii),
                        "{near} at {pos}"
                    );
                    assert_eq!(
                        scan_plain(&bytes),
                        (false, ascii),
                        "{near} at {pos} of {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_string_held_in_place_is_laid_out_as_it_is_encoded_at_every_length() {
        // Distinct bytes, so that a byte read from the wrong place shows; text of one, two and
        // four bytes a character, so that every length of UTF-8 is held.
        let chars = [
            'a',
            'b',
            '\u{e9}',
            'c',
            '\u{1F600}',
            'd',
            'e',
            '\u{3b1}',
            'f',
            'g',
        ];
        for len in 0..=INLINE_LEN + 8 {
            let mut text = alloc::string::String::new();
            for c in chars.iter().cycle() {
                if text.len() + c.len_utf8() > len {
                    break;
                }
                text.push(*c);
            }
            for text in [
                text.as_str(),
                &"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"[..len],
            ] {
                let Some(inline) = InlineStr::new(text) else {
                    assert!(text.len() > INLINE_LEN, "{len}");
                    continue;
                };
                assert_eq!(inline.as_str(), text);
                assert_eq!(inline.len(), text.len());
                assert!(inline.hi == Zero::Zero);
                assert_eq!(usize::from(inline.len), text.len());
                // After the text, zeros: the value is the same whoever made it.
                assert!(inline.bytes[text.len()..].iter().all(|&b| b == 0), "{len}");
            }
        }
    }

    #[test]
    fn text_is_made_without_a_second_check_only_for_ascii() {
        // [MQTT-1.5.3-1 v3.1.1] [MQTT-1.5.4-1 v5.0]: ill-formed UTF-8 still fails.
        for bytes in [&b"caf\xC3"[..], b"a/\xED\xA0\x80/b", &[0xC3; 40]] {
            assert_eq!(
                Scanned::plain(bytes).and_then(Scanned::to_str),
                Err(StringError::InvalidUtf8)
            );
            assert_eq!(
                Scanned::topic(bytes).and_then(Scanned::to_str),
                Err(StringError::InvalidUtf8)
            );
        }
        let text = "caf\u{e9}/\u{1F600}/b".repeat(5);
        assert_eq!(
            Scanned::plain(text.as_bytes()).and_then(Scanned::to_str),
            Ok(&*text)
        );
        // U+0000 is reported before UTF-8, as the owned and borrowed decoders both do.
        assert_eq!(
            Scanned::topic(b"\0\xC3").and_then(Scanned::to_str),
            Err(StringError::NullCharacter)
        );
        assert_eq!(checked_str(b"\xC3"), None);
        assert_eq!(checked_str("\u{e9}".as_bytes()), Some("\u{e9}"));
    }

    proptest::proptest! {
        /// The scans and the text they make agree with the plain definitions on any bytes,
        /// ASCII-heavy or not, short or long.
        #[test]
        fn scans_agree_with_the_definitions(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![0x20u8..0x7F, proptest::num::u8::ANY],
                0..200,
            )
        ) {
            let null = bytes.contains(&0);
            let wildcard = bytes.iter().any(|&b| b == b'+' || b == b'#');
            let utf8 = core::str::from_utf8(&bytes).ok();
            let expected = if null {
                Err(StringError::NullCharacter)
            } else {
                utf8.ok_or(StringError::InvalidUtf8)
            };
            proptest::prop_assert_eq!(scan_special(&bytes), (null, wildcard, bytes.is_ascii()));
            proptest::prop_assert_eq!(scan_plain(&bytes), (null, bytes.is_ascii()));
            proptest::prop_assert_eq!(Scanned::topic(&bytes).and_then(Scanned::to_str), expected);
            proptest::prop_assert_eq!(Scanned::plain(&bytes).and_then(Scanned::to_str), expected);
            proptest::prop_assert_eq!(checked_str(&bytes), utf8);
            let plain = bytes.is_ascii() && !null && !wildcard;
            proptest::prop_assert_eq!(plain_topic_name(&bytes), plain.then_some(utf8).flatten());
        }
    }

    #[test]
    fn shared_text_slices_the_frame_only_when_it_lies_within() {
        let frame = Bytes::from_static(b"xxhello");
        let inside = core::str::from_utf8(&frame[2..]).unwrap_or_default();
        let s = shared(&frame, inside);
        assert_eq!(&*s, "hello");
        assert_eq!(s.as_bytes().as_ptr(), inside.as_ptr());
        let outside = shared(&frame, "elsewhere");
        assert_eq!(&*outside, "elsewhere");
    }
}
