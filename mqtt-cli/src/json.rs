//! The little JSON that `-F %j` and `%J` need: building values, printing them as cJSON does
//! (compact, or with tabs for `--pretty`), and checking that a payload is JSON.
//!
//! Written here rather than with serde_json: `%J` must print a payload's numbers exactly as
//! they were written and keep its key order, which serde_json does only with its
//! `arbitrary_precision` and `preserve_order` features, and Cargo would turn those on for
//! every crate of the build that uses serde_json.

/// Deepest nesting accepted in a `%J` payload.
const MAX_DEPTH: usize = 256;

/// A JSON value ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Json {
    /// `null`.
    Null,
    /// Text printed as it is: a number, `true`/`false`, or a string already in JSON form.
    Raw(String),
    /// Text printed as a JSON string, escaped.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object; keys are in JSON form (quoted and escaped).
    Object(Vec<(String, Json)>),
}

impl Json {
    /// A number.
    pub(crate) fn number(value: impl Into<u64>) -> Self {
        Self::Raw(value.into().to_string())
    }

    /// An object from plain keys.
    pub(crate) fn object(members: Vec<(&str, Json)>) -> Self {
        Self::Object(members.into_iter().map(|(k, v)| (quote(k), v)).collect())
    }

    /// Bytes as a string when they are UTF-8, otherwise as an array of byte values.
    pub(crate) fn bytes(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::Str(text.to_owned()),
            Err(_) => Self::Array(bytes.iter().map(|b| Self::number(*b)).collect()),
        }
    }

    /// The value as text: compact, or indented with tabs as cJSON's formatted output.
    pub(crate) fn print(&self, pretty: bool) -> String {
        let mut out = String::new();
        self.write(pretty, 0, &mut out);
        out
    }

    /// Writes the value; `depth` is the number of enclosing arrays and objects.
    fn write(&self, pretty: bool, depth: usize, out: &mut String) {
        match self {
            Self::Null => out.push_str("null"),
            Self::Raw(text) => out.push_str(text),
            Self::Str(text) => out.push_str(&quote(text)),
            Self::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(if pretty { ", " } else { "," });
                    }
                    item.write(pretty, depth + 1, out);
                }
                out.push(']');
            }
            Self::Object(members) => {
                out.push('{');
                if pretty {
                    out.push('\n');
                }
                for (i, (key, value)) in members.iter().enumerate() {
                    if pretty {
                        push_tabs(out, depth + 1);
                    }
                    out.push_str(key);
                    out.push_str(if pretty { ":\t" } else { ":" });
                    value.write(pretty, depth + 1, out);
                    if i + 1 < members.len() {
                        out.push(',');
                    }
                    if pretty {
                        out.push('\n');
                    }
                }
                if pretty {
                    push_tabs(out, depth);
                }
                out.push('}');
            }
        }
    }
}

fn push_tabs(out: &mut String, count: usize) {
    out.extend(std::iter::repeat_n('\t', count));
}

/// `text` as a JSON string, escaped as cJSON escapes.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Parses `text` as one JSON value with nothing but white space around it; `None` when it is
/// not JSON. Numbers and strings keep their original spelling.
pub(crate) fn parse(text: &str) -> Option<Json> {
    let mut parser = Parser { text, pos: 0 };
    parser.skip_space();
    let value = parser.value(0)?;
    parser.skip_space();
    (parser.pos == text.len()).then_some(value)
}

/// A position in the text being parsed.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// The text from `start` to the current position.
    fn since(&self, start: usize) -> Option<String> {
        self.text.get(start..self.pos).map(str::to_owned)
    }

    fn value(&mut self, depth: usize) -> Option<Json> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => self.string().map(Json::Raw),
            b'-' | b'0'..=b'9' => self.number(),
            _ => self.literal(),
        }
    }

    fn object(&mut self, depth: usize) -> Option<Json> {
        self.pos += 1;
        let mut members = Vec::new();
        self.skip_space();
        if self.eat(b'}') {
            return Some(Json::Object(members));
        }
        loop {
            self.skip_space();
            let key = self.string()?;
            self.skip_space();
            if !self.eat(b':') {
                return None;
            }
            self.skip_space();
            let value = self.value(depth + 1)?;
            members.push((key, value));
            self.skip_space();
            match self.next()? {
                b',' => {}
                b'}' => return Some(Json::Object(members)),
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<Json> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_space();
        if self.eat(b']') {
            return Some(Json::Array(items));
        }
        loop {
            self.skip_space();
            items.push(self.value(depth + 1)?);
            self.skip_space();
            match self.next()? {
                b',' => {}
                b']' => return Some(Json::Array(items)),
                _ => return None,
            }
        }
    }

    /// A string, returned in its JSON form (quotes and escapes kept).
    fn string(&mut self) -> Option<String> {
        let start = self.pos;
        if !self.eat(b'"') {
            return None;
        }
        loop {
            match self.next()? {
                b'"' => return self.since(start),
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        for _ in 0..4 {
                            if !self.next()?.is_ascii_hexdigit() {
                                return None;
                            }
                        }
                    }
                    _ => return None,
                },
                byte if byte < 0x20 => return None,
                _ => {}
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Option<Json> {
        let start = self.pos;
        self.eat(b'-');
        if !self.eat(b'0') && self.digits() == 0 {
            return None;
        }
        if self.eat(b'.') && self.digits() == 0 {
            return None;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return None;
            }
        }
        self.since(start).map(Json::Raw)
    }

    fn literal(&mut self) -> Option<Json> {
        let rest = self.text.get(self.pos..)?;
        let word = ["true", "false", "null"]
            .into_iter()
            .find(|w| rest.starts_with(w))?;
        self.pos += word.len();
        Some(Json::Raw(word.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_cjson_escapes_them() {
        assert_eq!(quote("a\"b\\c\nd\te\u{1}é/"), r#""a\"b\\c\nd\te\u0001é/""#);
    }

    #[test]
    fn compact_and_pretty_printing() {
        let value = Json::object(vec![
            ("a", Json::number(1u8)),
            (
                "o",
                Json::object(vec![("k", Json::Str("v".into())), ("n", Json::Null)]),
            ),
            ("l", Json::Array(vec![Json::number(1u8), Json::number(2u8)])),
        ]);
        assert_eq!(
            value.print(false),
            r#"{"a":1,"o":{"k":"v","n":null},"l":[1,2]}"#
        );
        assert_eq!(
            value.print(true),
            "{\n\t\"a\":\t1,\n\t\"o\":\t{\n\t\t\"k\":\t\"v\",\n\t\t\"n\":\tnull\n\t},\n\t\"l\":\t[1, 2]\n}"
        );
        assert_eq!(Json::object(vec![]).print(true), "{\n}");
    }

    #[test]
    fn bytes_are_a_string_when_utf8_and_numbers_otherwise() {
        assert_eq!(Json::bytes(b"hi").print(false), r#""hi""#);
        assert_eq!(Json::bytes(&[0xff, 0]).print(false), "[255,0]");
    }

    #[test]
    fn parse_keeps_spelling_and_drops_white_space() {
        let value =
            parse(" { \"t\" : 27.0e+1 , \"a\":[ true,false , null,\"x\\u00e9\"],\"o\":{}} ")
                .unwrap();
        assert_eq!(
            value.print(false),
            r#"{"t":27.0e+1,"a":[true,false,null,"x\u00e9"],"o":{}}"#
        );
        assert_eq!(parse("-0").unwrap().print(false), "-0");
        assert_eq!(parse("[]").unwrap().print(true), "[]");
    }

    #[test]
    fn parse_rejects_what_is_not_json() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "{a:1}",
            "01x",
            "1.",
            "1e",
            "-",
            "tru",
            "\"a",
            "\"\\x\"",
            "\"\\u12g4\"",
            "\"a\nb\"",
            "1 2",
            "nul",
            "{\"a\":1,}",
        ] {
            assert!(parse(bad).is_none(), "{bad:?} is not JSON");
        }
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert!(parse(&deep).is_none(), "too deep");
        let fine = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&fine).is_some());
    }
}
