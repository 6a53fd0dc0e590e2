//! Validated topic names and topic filters, and the matching rules between them (spec 4.7).

use core::fmt;
use core::ops::Deref;

use bytes::Bytes;
use bytestring::ByteString;

use crate::error::TopicError;
use crate::string::{MqttString, MAX_STRING_LEN};

/// The prefix that marks a 5.0 shared subscription (spec 4.8.2).
pub(crate) const SHARE_PREFIX: &str = "$share/";

/// A topic name a PUBLISH is sent to: non-empty, at most 65,535 bytes, no U+0000, no wildcards.
///
/// ```
/// use mqtt_proto::TopicName;
/// assert!(TopicName::new("sensors/kitchen/temp").is_ok());
/// assert!(TopicName::new("sensors/+/temp").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicName(MqttString);

impl TopicName {
    /// Validates `name` as a topic name.
    pub fn new(name: &str) -> Result<Self, TopicError> {
        // Checked before the copy, in the decoder's one pass for U+0000 and wildcards.
        let wildcard = MqttString::scan_topic(name).map_err(string_to_topic_error)?;
        check_name_text(name.as_bytes(), wildcard)?;
        Ok(Self(MqttString::copied(name)))
    }

    /// Validates an already checked MQTT string as a topic name.
    pub fn from_string(s: MqttString) -> Result<Self, TopicError> {
        check_name(&s)?;
        Ok(Self(s))
    }

    /// A topic name from a string the decoder checked by the rules of [`check_name_text`].
    #[inline]
    pub(crate) fn from_checked(s: MqttString) -> Self {
        Self(s)
    }

    /// The empty topic name a 5.0 PUBLISH carries when a topic alias stands for the topic.
    pub fn empty_for_alias() -> Self {
        Self(MqttString::default())
    }

    /// The topic as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The topic as an MQTT string.
    pub fn as_mqtt_str(&self) -> &MqttString {
        &self.0
    }

    /// The encoded bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The encoded bytes as `Bytes`: sharing the name's buffer when it has one, copied when
    /// it is held in place (see [`MqttString`]).
    pub fn to_bytes(&self) -> Bytes {
        self.0.to_bytes()
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether this is the empty name used with a topic alias.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Checks a decoded topic name's bytes, which passed the string scan that found `wildcard`.
#[inline]
pub(crate) fn check_name_text(s: &[u8], wildcard: bool) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if wildcard {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

/// Checks the topic-name rules that an [`MqttString`] does not already guarantee.
fn check_name(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

fn string_to_topic_error(e: crate::error::StringError) -> TopicError {
    match e {
        crate::error::StringError::NullCharacter => TopicError::NullCharacter,
        crate::error::StringError::TooLong => TopicError::TooLong,
        // A `&str` is always well-formed, so this arm is only reached from raw bytes.
        crate::error::StringError::InvalidUtf8 => TopicError::Empty,
    }
}

impl Deref for TopicName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for TopicName {
    type Error = TopicError;
    fn try_from(value: &str) -> Result<Self, TopicError> {
        Self::new(value)
    }
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A topic filter a subscription asks for: may hold `+` (one level) and a trailing `#` (any
/// number of levels), or be a 5.0 shared subscription `$share/{group}/{filter}`.
///
/// ```
/// use mqtt_proto::{TopicFilter, TopicName};
/// let filter = TopicFilter::new("sensors/+/temp").unwrap();
/// assert!(filter.matches(&TopicName::new("sensors/kitchen/temp").unwrap()));
/// assert!(!filter.matches(&TopicName::new("sensors/kitchen/humidity").unwrap()));
/// assert!(TopicFilter::new("a/#/b").is_err());
/// ```
///
/// Unlike a [`TopicName`], a filter is never held in place: it is written once per
/// subscription, and SUBSCRIBE's encoder reads each filter twice (to size the packet, then to
/// copy it), where a string held in place costs a branch on every read.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicFilter(ByteString);

impl TopicFilter {
    /// Validates `filter` as a topic filter.
    pub fn new(filter: &str) -> Result<Self, TopicError> {
        let wildcard = MqttString::scan_topic(filter).map_err(string_to_topic_error)?;
        check_filter(filter, wildcard)?;
        Ok(Self(ByteString::from(filter)))
    }

    /// The shared subscription `$share/{group}/{filter}` (spec 4.8.2): the broker hands each
    /// message matching `filter` to one member of the group. The group name is not empty and
    /// holds no `/`, `+` or `#` [MQTT-4.8.2-1 v5.0] [MQTT-4.8.2-2 v5.0]; `filter` is a plain
    /// filter, not shared itself.
    ///
    /// ```
    /// use mqtt_proto::TopicFilter;
    /// let f = TopicFilter::shared("workers", "jobs/+").unwrap();
    /// assert_eq!(f.as_str(), "$share/workers/jobs/+");
    /// assert!(TopicFilter::shared("a/b", "jobs").is_err());
    /// ```
    pub fn shared(group: &str, filter: &str) -> Result<Self, TopicError> {
        if group.is_empty() || group.contains(['/', '+', '#']) || filter.starts_with(SHARE_PREFIX) {
            return Err(TopicError::InvalidShareName);
        }
        Self::new(&alloc::format!("{SHARE_PREFIX}{group}/{filter}"))
    }

    /// Validates an already checked MQTT string as a topic filter.
    pub fn from_string(s: MqttString) -> Result<Self, TopicError> {
        check_filter(&s, true)?;
        Ok(Self(s.into_byte_string()))
    }

    /// A topic filter from a string the decoder checked by the rules of [`check_filter`].
    #[inline]
    pub(crate) fn from_checked(s: ByteString) -> Self {
        Self(s)
    }

    /// The filter as text, `$share/` prefix included.
    #[inline]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The filter as an MQTT string, sharing its buffer.
    pub fn to_mqtt_string(&self) -> MqttString {
        MqttString::from_byte_string(self.0.clone())
    }

    /// The encoded bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The encoded bytes as `Bytes`, sharing the filter's buffer.
    pub fn to_bytes(&self) -> Bytes {
        self.0.as_bytes().clone()
    }

    /// Length in bytes, `$share/` prefix included.
    #[inline]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the filter is empty: never, for a filter made by this crate's checks.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The share name of a shared subscription (`group` in `$share/group/a/b`).
    pub fn share_name(&self) -> Option<&str> {
        let rest = self.0.strip_prefix(SHARE_PREFIX)?;
        rest.split('/').next()
    }

    /// Whether this is a 5.0 shared subscription.
    pub fn is_shared(&self) -> bool {
        self.0.starts_with(SHARE_PREFIX)
    }

    /// The filter that topic names are matched against (`a/b` in `$share/group/a/b`).
    pub fn match_filter(&self) -> &str {
        split_shared(&self.0).map_or(&self.0, |(_, filter)| filter)
    }

    /// Whether the filter contains `+` or `#`.
    pub fn has_wildcards(&self) -> bool {
        self.match_filter().bytes().any(|b| b == b'+' || b == b'#')
    }

    /// Whether `name` matches this filter by the rules of spec 4.7: `+` matches one level,
    /// `#` the parent and any number of levels below, and names starting with `$` are not
    /// matched by a filter starting with a wildcard [MQTT-4.7.2-1 v3.1.1 v5.0].
    pub fn matches(&self, name: &TopicName) -> bool {
        matches(self.match_filter(), name.as_str())
    }
}

/// Splits `$share/group/filter` into `(group, filter)`.
fn split_shared(s: &str) -> Option<(&str, &str)> {
    let rest = s.strip_prefix(SHARE_PREFIX)?;
    rest.split_once('/')
}

/// Matches a (non-shared) filter against a topic name.
fn matches(filter: &str, name: &str) -> bool {
    if name.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut filter_levels = filter.split('/');
    let mut name_levels = name.split('/');
    loop {
        match (filter_levels.next(), name_levels.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(f), Some(n)) if f == n => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Checks the topic-filter rules that an [`MqttString`] does not already guarantee.
///
/// `wildcard` is false only when `s` is known to hold neither `+` nor `#`.
pub(crate) fn check_filter(s: &str, wildcard: bool) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > MAX_STRING_LEN {
        return Err(TopicError::TooLong);
    }
    let filter = if s.starts_with(SHARE_PREFIX) {
        let rest = s.get(SHARE_PREFIX.len()..).unwrap_or_default();
        if rest.is_empty() || rest.starts_with('/') {
            // [MQTT-4.8.2-1 v5.0]
            return Err(TopicError::EmptyShareName);
        }
        // [MQTT-4.8.2-2 v5.0]
        let (group, filter) = rest.split_once('/').ok_or(TopicError::InvalidShareName)?;
        if (wildcard && group.contains(['+', '#'])) || filter.is_empty() {
            return Err(TopicError::InvalidShareName);
        }
        filter
    } else {
        s
    };
    if wildcard {
        check_levels(filter.as_bytes())
    } else {
        Ok(())
    }
}

/// Checks the wildcards of a (non-shared) filter in one pass: `#` only as the whole last level,
/// `+` only as a whole level. Within one level a misplaced `#` is reported before a misplaced
/// `+`.
fn check_levels(filter: &[u8]) -> Result<(), TopicError> {
    // Only the wildcards need a look: find them eight bytes at a time and check each in order.
    let (words, tail) = filter.as_chunks::<8>();
    for (w, word) in words.iter().enumerate() {
        let mut bits = crate::text::wildcard_bits(u64::from_le_bytes(*word));
        while bits != 0 {
            // The lowest flagged byte is a wildcard; bytes above one may be flagged in error,
            // and `check_wildcard` looks at the byte itself.
            check_wildcard(filter, w * 8 + (bits.trailing_zeros() / 8) as usize)?;
            bits &= bits - 1;
        }
    }
    let tail_start = filter.len() - tail.len();
    for (i, &b) in tail.iter().enumerate() {
        if b == b'+' || b == b'#' {
            check_wildcard(filter, tail_start + i)?;
        }
    }
    Ok(())
}

/// Checks the byte at `i` of a filter if it is a wildcard: `#` alone in the last level, `+`
/// filling a whole level [MQTT-4.7.1-2 v3.1.1] [MQTT-4.7.1-3 v3.1.1] [MQTT-4.7.1-1 v5.0]
/// [MQTT-4.7.1-2 v5.0].
#[inline]
fn check_wildcard(filter: &[u8], i: usize) -> Result<(), TopicError> {
    let prev = match i.checked_sub(1) {
        Some(p) => filter.get(p).copied().unwrap_or(b'/'),
        None => b'/',
    };
    match filter.get(i) {
        Some(b'#') if prev != b'/' || i + 1 != filter.len() => {
            Err(TopicError::MisplacedMultiLevelWildcard)
        }
        Some(b'+') if prev != b'/' || !matches!(filter.get(i + 1), None | Some(b'/')) => {
            let level_rest = filter.get(i..).unwrap_or_default();
            Err(
                if level_rest
                    .iter()
                    .take_while(|&&c| c != b'/')
                    .any(|&c| c == b'#')
                {
                    TopicError::MisplacedMultiLevelWildcard
                } else {
                    TopicError::MisplacedSingleLevelWildcard
                },
            )
        }
        _ => Ok(()),
    }
}

impl Deref for TopicFilter {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for TopicFilter {
    type Error = TopicError;
    fn try_from(value: &str) -> Result<Self, TopicError> {
        Self::new(value)
    }
}

impl fmt::Debug for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "arbitrary")]
mod arbitrary_impls {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;
    use arbitrary::{Arbitrary, Result, Unstructured};

    fn level(u: &mut Unstructured<'_>) -> Result<String> {
        let choices = ["a", "b", "sensor", "temp", "", "x1", "\u{e9}t\u{e9}"];
        Ok(String::from(*u.choose(&choices)?))
    }

    impl<'a> Arbitrary<'a> for TopicName {
        fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
            let n = u.int_in_range(1..=4)?;
            let levels: Vec<String> = (0..n).map(|_| level(u)).collect::<Result<_>>()?;
            let mut s = levels.join("/");
            if s.is_empty() {
                s.push('t');
            }
            TopicName::new(&s).map_err(|_| arbitrary::Error::IncorrectFormat)
        }
    }

    impl<'a> Arbitrary<'a> for TopicFilter {
        fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
            let n = u.int_in_range(1..=4)?;
            let mut levels: Vec<String> = Vec::new();
            for _ in 0..n {
                levels.push(if u.ratio(1, 4)? {
                    String::from("+")
                } else {
                    level(u)?
                });
            }
            if u.ratio(1, 4)? {
                levels.push(String::from("#"));
            }
            let mut s = levels.join("/");
            if s.is_empty() {
                s.push('t');
            }
            if u.ratio(1, 8)? {
                s = alloc::format!("$share/g/{s}");
            }
            TopicFilter::new(&s).map_err(|_| arbitrary::Error::IncorrectFormat)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> TopicName {
        TopicName::new(s).unwrap()
    }

    fn filter(s: &str) -> TopicFilter {
        TopicFilter::new(s).unwrap()
    }

    #[test]
    fn names_are_at_least_one_character() {
        // [MQTT-4.7.3-1 v3.1.1 v5.0]
        assert_eq!(TopicName::new(""), Err(TopicError::Empty));
        assert_eq!(TopicFilter::new(""), Err(TopicError::Empty));
    }

    #[test]
    fn names_never_hold_wildcards() {
        // [MQTT-3.3.2-2 v3.1.1 v5.0] [MQTT-4.7.1-1 v3.1.1] [MQTT-4.7.0-1 v5.0]
        assert_eq!(TopicName::new("a/+"), Err(TopicError::WildcardInName));
        assert_eq!(TopicName::new("a/#"), Err(TopicError::WildcardInName));
        assert_eq!(TopicName::new("a#"), Err(TopicError::WildcardInName));
    }

    #[test]
    fn names_and_filters_never_hold_null() {
        // [MQTT-4.7.3-2 v3.1.1 v5.0]
        assert_eq!(TopicName::new("a\0"), Err(TopicError::NullCharacter));
        assert_eq!(TopicFilter::new("a\0"), Err(TopicError::NullCharacter));
    }

    proptest::proptest! {
        /// The one-pass scan of `TopicName::new` agrees with the rules read one by one, wherever
        /// the `+`, `#` or U+0000 falls in a word of the scan and whatever the other characters.
        #[test]
        fn a_name_is_checked_as_the_rules_read(s in "[a/é\\x00+#]{0,40}") {
            let expected = if s.is_empty() {
                Err(TopicError::Empty)
            } else if s.contains('\0') {
                Err(TopicError::NullCharacter)
            } else if s.contains(['+', '#']) {
                Err(TopicError::WildcardInName)
            } else {
                Ok(s.as_str())
            };
            let got = TopicName::new(&s);
            proptest::prop_assert_eq!(got.as_ref().map(|t| t.as_str()).map_err(Clone::clone), expected);
        }
    }

    #[test]
    fn names_and_filters_up_to_65535_bytes() {
        // [MQTT-4.7.3-3 v3.1.1 v5.0]
        let long = "t".repeat(65_535);
        assert!(TopicName::new(&long).is_ok());
        assert!(TopicFilter::new(&long).is_ok());
        assert_eq!(
            TopicName::new(&(long.clone() + "t")),
            Err(TopicError::TooLong)
        );
        assert_eq!(TopicFilter::new(&(long + "t")), Err(TopicError::TooLong));
    }

    #[test]
    fn multi_level_wildcard_is_last_and_alone() {
        // [MQTT-4.7.1-2 v3.1.1] / [MQTT-4.7.1-1 v5.0]
        for ok in ["#", "a/#", "a/b/#", "+/#", "/#"] {
            assert!(TopicFilter::new(ok).is_ok(), "{ok}");
        }
        for bad in ["a/#/b", "a#", "#/", "a/b#", "##"] {
            assert_eq!(
                TopicFilter::new(bad),
                Err(TopicError::MisplacedMultiLevelWildcard),
                "{bad}"
            );
        }
    }

    #[test]
    fn single_level_wildcard_fills_a_level() {
        // [MQTT-4.7.1-3 v3.1.1] / [MQTT-4.7.1-2 v5.0]
        for ok in ["+", "+/+", "a/+/b", "/+", "+/"] {
            assert!(TopicFilter::new(ok).is_ok(), "{ok}");
        }
        for bad in ["a+", "a/+b", "++"] {
            assert_eq!(
                TopicFilter::new(bad),
                Err(TopicError::MisplacedSingleLevelWildcard),
                "{bad}"
            );
        }
    }

    #[test]
    fn matching_follows_spec_examples() {
        // Examples of spec 4.7.1.2 and 4.7.1.3.
        let cases = [
            ("sport/tennis/player1/#", "sport/tennis/player1", true),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/ranking",
                true,
            ),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/score/wimbledon",
                true,
            ),
            ("sport/#", "sport", true),
            ("#", "sport/tennis", true),
            ("sport/tennis/+", "sport/tennis/player1", true),
            ("sport/tennis/+", "sport/tennis/player1/ranking", false),
            ("sport/+", "sport", false),
            ("sport/+", "sport/", true),
            ("+/+", "/finance", true),
            ("/+", "/finance", true),
            ("+", "/finance", false),
            ("a/b", "a/b", true),
            ("a/b", "a/c", false),
            ("a/b", "a/b/c", false),
        ];
        for (f, n, expected) in cases {
            assert_eq!(filter(f).matches(&name(n)), expected, "{f} vs {n}");
        }
    }

    #[test]
    fn dollar_topics_are_not_matched_by_leading_wildcards() {
        // [MQTT-4.7.2-1 v3.1.1 v5.0 server], the server's matching rule, which `matches` follows.
        assert!(!filter("#").matches(&name("$SYS/uptime")));
        assert!(!filter("+/uptime").matches(&name("$SYS/uptime")));
        assert!(filter("$SYS/#").matches(&name("$SYS/uptime")));
        assert!(filter("$SYS/+").matches(&name("$SYS/uptime")));
    }

    #[test]
    fn shared_subscriptions() {
        // [MQTT-4.8.2-1 v5.0] [MQTT-4.8.2-2 v5.0]
        let f = filter("$share/group/sensors/+");
        assert!(f.is_shared());
        assert_eq!(f.share_name(), Some("group"));
        assert_eq!(f.match_filter(), "sensors/+");
        assert!(f.matches(&name("sensors/a")));
        for bad in ["$share/", "$share//a"] {
            assert_eq!(
                TopicFilter::new(bad),
                Err(TopicError::EmptyShareName),
                "{bad}"
            );
        }
        for bad in ["$share/g", "$share/g/", "$share/g+/a", "$share/#/a"] {
            assert_eq!(
                TopicFilter::new(bad),
                Err(TopicError::InvalidShareName),
                "{bad}"
            );
        }
        assert!(filter("$shared/x").share_name().is_none());
        // Built from its parts: a group name with `/` would shift the filter's levels.
        let built = TopicFilter::shared("g", "sensors/+").unwrap();
        assert_eq!(built.as_str(), "$share/g/sensors/+");
        for (group, topic) in [
            ("", "a"),
            ("g/h", "a"),
            ("g+", "a"),
            ("g", ""),
            ("g", "$share/h/a"),
        ] {
            assert_eq!(
                TopicFilter::shared(group, topic),
                Err(TopicError::InvalidShareName),
                "{group} {topic}"
            );
        }
    }

    /// The level-by-level statement of the wildcard rules, kept to check the one-pass scan.
    fn check_levels_by_split(filter: &str) -> Result<(), TopicError> {
        let mut levels = filter.split('/').peekable();
        while let Some(level) = levels.next() {
            if level.contains('#') && (level != "#" || levels.peek().is_some()) {
                return Err(TopicError::MisplacedMultiLevelWildcard);
            }
            if level.contains('+') && level != "+" {
                return Err(TopicError::MisplacedSingleLevelWildcard);
            }
        }
        Ok(())
    }

    #[test]
    fn one_pass_filter_check_agrees_with_the_level_rules() {
        let alphabet = ['a', '/', '+', '#'];
        let mut inputs = vec![String::new()];
        for _ in 0..7 {
            let mut next = Vec::new();
            for s in &inputs {
                for c in alphabet {
                    let mut t = s.clone();
                    t.push(c);
                    next.push(t);
                }
            }
            for s in &next {
                assert_eq!(
                    check_levels(s.as_bytes()),
                    check_levels_by_split(s),
                    "filter {s:?}"
                );
            }
            inputs = next;
        }
    }
}
