//! `mqtt sub -F`: mosquitto_sub's output format, parsed once at startup and rendered for each
//! message.
//!
//! `%` sequences print the message and its 5.0 properties, `@` sequences print the time the
//! message arrived (UTC) as strftime would, `\` sequences print characters that are hard to
//! type. A `%` sequence may carry `-` (left align), `0` (pad with zeros), a field width and a
//! `.precision`, as in mosquitto: `%-20t`, `%05l`, `%.10t`.

use mqtt_tokio::Publish;

use crate::json::{self, Json};
use crate::utc::Utc;
use crate::CliError;

/// Widest field width or precision accepted, so a typo cannot ask for gigabytes of padding.
const MAX_WIDTH: usize = 65_535;

/// A parsed `-F` format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Format {
    pieces: Vec<Piece>,
}

/// One part of a format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Bytes printed as they are: text, `%%`, `@@` and escapes.
    Text(Vec<u8>),
    /// A `%` field with its layout.
    Field(Field, Layout),
    /// An `@` time field.
    Time(TimeField),
}

/// Alignment, padding, width and precision of a `%` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Layout {
    /// `-`: pad on the right.
    left: bool,
    /// `0`: pad numbers and payloads with zeros instead of spaces.
    zeros: bool,
    /// Minimum width; 0 for none.
    width: usize,
    /// Most bytes of a string field.
    precision: Option<usize>,
}

impl Layout {
    fn pad(&self) -> u8 {
        if self.zeros {
            b'0'
        } else {
            b' '
        }
    }
}

/// What a `%` sequence prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// `%t`.
    Topic,
    /// `%p`.
    Payload,
    /// `%x`.
    HexLower,
    /// `%X`.
    HexUpper,
    /// `%q`.
    Qos,
    /// `%r`.
    Retain,
    /// `%l`.
    Length,
    /// `%m`.
    MessageId,
    /// `%I`.
    Iso8601,
    /// `%U`.
    UnixTime,
    /// `%j`.
    Json,
    /// `%J`.
    JsonPayload,
    /// `%A`.
    TopicAlias,
    /// `%C`.
    ContentType,
    /// `%D`.
    CorrelationData,
    /// `%E`.
    MessageExpiry,
    /// `%F`.
    PayloadFormat,
    /// `%P`.
    UserProperties,
    /// `%R`.
    ResponseTopic,
    /// `%S`.
    SubscriptionId,
}

impl Field {
    fn from_char(c: char) -> Option<Self> {
        Some(match c {
            't' => Self::Topic,
            'p' => Self::Payload,
            'x' => Self::HexLower,
            'X' => Self::HexUpper,
            'q' => Self::Qos,
            'r' => Self::Retain,
            'l' => Self::Length,
            'm' => Self::MessageId,
            'I' => Self::Iso8601,
            'U' => Self::UnixTime,
            'j' => Self::Json,
            'J' => Self::JsonPayload,
            'A' => Self::TopicAlias,
            'C' => Self::ContentType,
            'D' => Self::CorrelationData,
            'E' => Self::MessageExpiry,
            'F' => Self::PayloadFormat,
            'P' => Self::UserProperties,
            'R' => Self::ResponseTopic,
            'S' => Self::SubscriptionId,
            _ => return None,
        })
    }
}

/// What an `@` sequence prints: the strftime conversion of the same letter, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeField {
    /// `@Y`: 2024.
    Year,
    /// `@y`: 24.
    YearOfCentury,
    /// `@m`: 01 to 12.
    Month,
    /// `@d`: 01 to 31.
    Day,
    /// `@e`: 1 to 31, padded with a space.
    DaySpacePadded,
    /// `@H`: 00 to 23.
    Hour,
    /// `@M`: 00 to 59.
    Minute,
    /// `@S`: 00 to 59.
    Second,
    /// `@s`: seconds since the epoch.
    UnixSeconds,
    /// `@N`: nanoseconds into the second (mosquitto's extension).
    Nanos,
    /// `@F`: 2024-01-31.
    Date,
    /// `@T`: 23:59:59.
    Time,
    /// `@j`: day of the year, 001 to 366.
    DayOfYear,
    /// `@u`: day of the week, 1 (Monday) to 7.
    WeekdayFromMonday,
    /// `@w`: day of the week, 0 (Sunday) to 6.
    WeekdayFromSunday,
    /// `@a`: Mon.
    WeekdayShort,
    /// `@A`: Monday.
    WeekdayLong,
    /// `@b`: Jan.
    MonthShort,
    /// `@B`: January.
    MonthLong,
    /// `@z`: +0000 (times are UTC).
    Offset,
    /// `@Z`: UTC.
    Zone,
}

impl TimeField {
    fn from_char(c: char) -> Option<Self> {
        Some(match c {
            'Y' => Self::Year,
            'y' => Self::YearOfCentury,
            'm' => Self::Month,
            'd' => Self::Day,
            'e' => Self::DaySpacePadded,
            'H' => Self::Hour,
            'M' => Self::Minute,
            'S' => Self::Second,
            's' => Self::UnixSeconds,
            'N' => Self::Nanos,
            'F' => Self::Date,
            'T' => Self::Time,
            'j' => Self::DayOfYear,
            'u' => Self::WeekdayFromMonday,
            'w' => Self::WeekdayFromSunday,
            'a' => Self::WeekdayShort,
            'A' => Self::WeekdayLong,
            'b' | 'h' => Self::MonthShort,
            'B' => Self::MonthLong,
            'z' => Self::Offset,
            'Z' => Self::Zone,
            _ => return None,
        })
    }

    fn render(self, t: &Utc) -> String {
        match self {
            Self::Year => format!("{:04}", t.year),
            Self::YearOfCentury => format!("{:02}", t.year.rem_euclid(100)),
            Self::Month => format!("{:02}", t.month),
            Self::Day => format!("{:02}", t.day),
            Self::DaySpacePadded => format!("{:2}", t.day),
            Self::Hour => format!("{:02}", t.hour),
            Self::Minute => format!("{:02}", t.minute),
            Self::Second => format!("{:02}", t.second),
            Self::UnixSeconds => t.unix_seconds.to_string(),
            Self::Nanos => format!("{:09}", t.nanos),
            Self::Date => t.date(),
            Self::Time => t.time(),
            Self::DayOfYear => format!("{:03}", t.day_of_year),
            Self::WeekdayFromMonday => (if t.weekday == 0 { 7 } else { t.weekday }).to_string(),
            Self::WeekdayFromSunday => t.weekday.to_string(),
            Self::WeekdayShort => weekday_name(t.weekday).chars().take(3).collect(),
            Self::WeekdayLong => weekday_name(t.weekday).to_owned(),
            Self::MonthShort => month_name(t.month).chars().take(3).collect(),
            Self::MonthLong => month_name(t.month).to_owned(),
            Self::Offset => "+0000".to_owned(),
            Self::Zone => "UTC".to_owned(),
        }
    }
}

fn weekday_name(weekday: u32) -> &'static str {
    match weekday {
        0 => "Sunday",
        1 => "Monday",
        2 => "Tuesday",
        3 => "Wednesday",
        4 => "Thursday",
        5 => "Friday",
        _ => "Saturday",
    }
}

fn month_name(month: u32) -> &'static str {
    match month {
        1 => "January",
        2 => "February",
        3 => "March",
        4 => "April",
        5 => "May",
        6 => "June",
        7 => "July",
        8 => "August",
        9 => "September",
        10 => "October",
        11 => "November",
        _ => "December",
    }
}

fn usage(message: String) -> CliError {
    CliError::Usage(format!("-F: {message}"))
}

/// Reads an optional number; `what` names it in errors.
fn number(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    what: &str,
) -> Result<Option<usize>, CliError> {
    let mut value: Option<usize> = None;
    while let Some(digit) = chars.peek().and_then(|c| c.to_digit(10)) {
        chars.next();
        let next = value.unwrap_or(0) * 10 + digit as usize;
        if next > MAX_WIDTH {
            return Err(usage(format!("{what} larger than {MAX_WIDTH}")));
        }
        value = Some(next);
    }
    Ok(value)
}

impl Format {
    /// Parses a format; unknown or incomplete sequences are errors, as in mosquitto.
    pub(crate) fn parse(format: &str) -> Result<Self, CliError> {
        let mut pieces = Vec::new();
        let mut text = Vec::new();
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '%' => {
                    let mut layout = Layout {
                        left: chars.next_if_eq(&'-').is_some(),
                        ..Layout::default()
                    };
                    layout.zeros = chars.next_if_eq(&'0').is_some();
                    layout.width = number(&mut chars, "field width")?.unwrap_or(0);
                    if chars.next_if_eq(&'.').is_some() {
                        layout.precision = Some(number(&mut chars, "precision")?.unwrap_or(0));
                    }
                    let spec = chars.next().ok_or_else(|| {
                        usage("incomplete format specifier at the end".to_owned())
                    })?;
                    if spec == '%' {
                        text.push(b'%');
                        continue;
                    }
                    let field = Field::from_char(spec).ok_or_else(|| {
                        usage(format!(
                            "invalid format specifier '%{spec}' (known: %% %t %p %x %X %q %r \
                             %l %m %I %U %j %J %A %C %D %E %F %P %R %S)"
                        ))
                    })?;
                    flush(&mut text, &mut pieces);
                    pieces.push(Piece::Field(field, layout));
                }
                '@' => {
                    let spec = chars.next().ok_or_else(|| {
                        usage("incomplete time specifier at the end (write @@ for @)".to_owned())
                    })?;
                    if spec == '@' {
                        text.push(b'@');
                        continue;
                    }
                    let field = TimeField::from_char(spec).ok_or_else(|| {
                        usage(format!(
                            "unsupported time specifier '@{spec}' (known: @@ @Y @y @m @d @e @H \
                             @M @S @s @N @F @T @j @u @w @a @A @b @h @B @z @Z)"
                        ))
                    })?;
                    flush(&mut text, &mut pieces);
                    pieces.push(Piece::Time(field));
                }
                '\\' => {
                    let escape = chars.next().ok_or_else(|| {
                        usage("incomplete escape at the end (write \\\\ for \\)".to_owned())
                    })?;
                    text.push(match escape {
                        '\\' => b'\\',
                        '"' => b'"',
                        '0' => 0,
                        'a' => 0x07,
                        'e' => 0x1b,
                        'n' => b'\n',
                        'r' => b'\r',
                        't' => b'\t',
                        'v' => 0x0b,
                        other => {
                            return Err(usage(format!(
                                "invalid escape '\\{other}' (known: \\\\ \\\" \\0 \\a \\e \\n \
                                 \\r \\t \\v)"
                            )))
                        }
                    });
                }
                other => {
                    let mut buf = [0; 4];
                    text.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        flush(&mut text, &mut pieces);
        Ok(Self { pieces })
    }

    /// Appends `message`, which arrived at `arrival`, to `out`; `pretty` indents `%j`/`%J`.
    /// Returns a warning when a `%J` payload is not JSON (that field then prints nothing).
    pub(crate) fn render(
        &self,
        message: &Publish,
        arrival: &Utc,
        pretty: bool,
        out: &mut Vec<u8>,
    ) -> Option<String> {
        let mut warning = None;
        for piece in &self.pieces {
            match piece {
                Piece::Text(bytes) => out.extend_from_slice(bytes),
                Piece::Time(field) => out.extend_from_slice(field.render(arrival).as_bytes()),
                Piece::Field(field, layout) => {
                    if let Err(w) = render_field(*field, layout, message, arrival, pretty, out) {
                        warning = Some(w);
                    }
                }
            }
        }
        warning
    }
}

/// Moves pending text into a piece.
fn flush(text: &mut Vec<u8>, pieces: &mut Vec<Piece>) {
    if !text.is_empty() {
        pieces.push(Piece::Text(std::mem::take(text)));
    }
}

fn render_field(
    field: Field,
    layout: &Layout,
    message: &Publish,
    arrival: &Utc,
    pretty: bool,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let props = &message.properties;
    match field {
        Field::Topic => write_str(out, message.topic.as_bytes(), layout),
        Field::Payload => write_payload(out, &message.payload, None, layout),
        Field::HexLower => write_payload(out, &message.payload, Some(false), layout),
        Field::HexUpper => write_payload(out, &message.payload, Some(true), layout),
        Field::Qos => out.extend_from_slice((message.qos() as u8).to_string().as_bytes()),
        Field::Retain => out.push(if message.retain { b'1' } else { b'0' }),
        Field::Length => write_int(out, Some(message.payload.len() as u64), layout),
        Field::MessageId => write_int(out, Some(message_id(message)), layout),
        Field::Iso8601 => write_str(out, arrival.iso8601().as_bytes(), layout),
        Field::UnixTime => out.extend_from_slice(arrival.unix_with_nanos().as_bytes()),
        Field::Json => {
            let payload = if message.payload.is_empty() {
                Json::Null
            } else {
                Json::bytes(&message.payload)
            };
            let text = message_json(message, arrival, payload).print(pretty);
            out.extend_from_slice(text.as_bytes());
        }
        Field::JsonPayload => {
            let payload = if message.payload.is_empty() {
                Some(Json::Null)
            } else {
                std::str::from_utf8(&message.payload)
                    .ok()
                    .and_then(json::parse)
            };
            let Some(payload) = payload else {
                return Err(format!(
                    "Message payload is not valid JSON on topic {}.",
                    message.topic
                ));
            };
            let text = message_json(message, arrival, payload).print(pretty);
            out.extend_from_slice(text.as_bytes());
        }
        Field::TopicAlias => write_int(out, props.topic_alias.map(|a| a.get().into()), layout),
        Field::ContentType => match &props.content_type {
            Some(c) => write_str(out, c.as_bytes(), layout),
            None => pad(out, b' ', layout.width),
        },
        Field::CorrelationData => {
            if let Some(data) = &props.correlation_data {
                out.extend_from_slice(data);
            }
        }
        Field::MessageExpiry => {
            write_int(out, props.message_expiry_interval.map(u64::from), layout)
        }
        Field::PayloadFormat => write_int(
            out,
            props.payload_format_indicator.map(|f| f as u64),
            layout,
        ),
        Field::UserProperties => {
            for (i, p) in props.user_properties.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(p.name.as_bytes());
                out.push(b':');
                out.extend_from_slice(p.value.as_bytes());
            }
        }
        Field::ResponseTopic => {
            if let Some(topic) = &props.response_topic {
                write_str(out, topic.as_bytes(), layout);
            }
        }
        Field::SubscriptionId => write_int(
            out,
            props
                .subscription_identifiers
                .first()
                .map(|id| id.get().into()),
            layout,
        ),
    }
    Ok(())
}

/// The packet identifier, 0 for QoS 0 as mosquitto prints it.
fn message_id(message: &Publish) -> u64 {
    message.packet_id().map_or(0, |id| id.get().into())
}

/// A number (or, when absent, only padding) laid out as mosquitto's `formatted_print_int`.
fn write_int(out: &mut Vec<u8>, value: Option<u64>, layout: &Layout) {
    let Some(value) = value else {
        pad(out, layout.pad(), layout.width);
        return;
    };
    let width = layout.width;
    let text = if layout.left {
        format!("{value:<width$}")
    } else if layout.zeros {
        format!("{value:0width$}")
    } else {
        format!("{value:>width$}")
    };
    out.extend_from_slice(text.as_bytes());
}

/// A string cut to the precision and padded with spaces to the width, as printf's `%*.*s`.
fn write_str(out: &mut Vec<u8>, value: &[u8], layout: &Layout) {
    let value = match layout.precision {
        Some(p) => value.get(..p).unwrap_or(value),
        None => value,
    };
    let padding = layout.width.saturating_sub(value.len());
    if !layout.left {
        pad(out, b' ', padding);
    }
    out.extend_from_slice(value);
    if layout.left {
        pad(out, b' ', padding);
    }
}

/// The payload, raw or in hex (`Some(true)` for upper case). With a width, as mosquitto: the
/// output is cut to the width (whole bytes for hex) and padded to it.
fn write_payload(out: &mut Vec<u8>, payload: &[u8], hex_upper: Option<bool>, layout: &Layout) {
    let chars_per_byte = if hex_upper.is_some() { 2 } else { 1 };
    let shown = if layout.width > 0 {
        payload
            .get(..layout.width / chars_per_byte)
            .unwrap_or(payload)
    } else {
        payload
    };
    let padding = layout.width.saturating_sub(shown.len() * chars_per_byte);
    if !layout.left {
        pad(out, layout.pad(), padding);
    }
    match hex_upper {
        None => out.extend_from_slice(shown),
        Some(upper) => {
            for byte in shown {
                let text = if upper {
                    format!("{byte:02X}")
                } else {
                    format!("{byte:02x}")
                };
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
    if layout.left {
        pad(out, b' ', padding);
    }
}

fn pad(out: &mut Vec<u8>, byte: u8, count: usize) {
    out.extend(std::iter::repeat_n(byte, count));
}

/// The JSON object of `%j` and `%J`, with mosquitto's keys.
fn message_json(message: &Publish, arrival: &Utc, payload: Json) -> Json {
    let mut members = vec![
        ("tst", Json::Str(arrival.iso8601_micros())),
        ("topic", Json::Str(message.topic.as_str().to_owned())),
        ("qos", Json::number(message.qos() as u8)),
        ("retain", Json::number(u8::from(message.retain))),
        ("payloadlen", Json::number(message.payload.len() as u64)),
    ];
    if let Some(id) = message.packet_id() {
        members.push(("mid", Json::number(id.get())));
    }
    let properties = properties_json(message);
    if !properties.is_empty() {
        members.push(("properties", Json::object(properties)));
    }
    members.push(("payload", payload));
    Json::object(members)
}

/// The 5.0 properties of a message, named as mosquitto names them.
fn properties_json(message: &Publish) -> Vec<(&'static str, Json)> {
    let props = &message.properties;
    let mut members = Vec::new();
    if let Some(format) = props.payload_format_indicator {
        members.push(("payload-format-indicator", Json::number(format as u8)));
    }
    if let Some(expiry) = props.message_expiry_interval {
        members.push(("message-expiry-interval", Json::number(expiry)));
    }
    if let Some(alias) = props.topic_alias {
        members.push(("topic-alias", Json::number(alias.get())));
    }
    if let Some(content_type) = &props.content_type {
        members.push(("content-type", Json::Str(content_type.as_str().to_owned())));
    }
    if let Some(topic) = &props.response_topic {
        members.push(("response-topic", Json::Str(topic.as_str().to_owned())));
    }
    if let Some(data) = &props.correlation_data {
        members.push(("correlation-data", Json::bytes(data)));
    }
    if let Some(id) = props.subscription_identifiers.first() {
        members.push(("subscription-identifier", Json::number(id.get())));
    }
    if !props.user_properties.is_empty() {
        let pairs = props
            .user_properties
            .iter()
            .map(|p| {
                (
                    json::quote(p.name.as_str()),
                    Json::Str(p.value.as_str().to_owned()),
                )
            })
            .collect();
        members.push(("user-properties", Json::Object(pairs)));
    }
    members
}

#[cfg(test)]
mod tests {
    use std::num::{NonZeroU16, NonZeroU32};

    use mqtt_tokio::proto::{MqttString, PacketId, PayloadFormat, QosPid, TopicName, UserProperty};

    use super::*;

    fn message(payload: &[u8]) -> Publish {
        Publish::new(
            TopicName::new("a/b").unwrap(),
            QosPid::AtMostOnce,
            payload.to_vec(),
        )
    }

    fn render(format: &str, message: &Publish) -> String {
        render_pretty(format, message, false)
    }

    fn render_pretty(format: &str, message: &Publish, pretty: bool) -> String {
        let at = Utc::from_unix(1_470_822_458, 786_368_637);
        let mut out = Vec::new();
        let warning = Format::parse(format)
            .unwrap()
            .render(message, &at, pretty, &mut out);
        assert_eq!(warning, None);
        String::from_utf8(out).unwrap()
    }

    fn with_properties() -> Publish {
        let mut m = message(b"hi");
        m.qos_pid = QosPid::ExactlyOnce(PacketId::new(42).unwrap());
        m.retain = true;
        let p = &mut m.properties;
        p.content_type = Some(MqttString::new("text/plain").unwrap());
        p.response_topic = Some(TopicName::new("re/ply").unwrap());
        p.correlation_data = Some(b"corr".to_vec().into());
        p.message_expiry_interval = Some(30);
        p.payload_format_indicator = Some(PayloadFormat::Utf8);
        p.topic_alias = Some(NonZeroU16::new(3).unwrap());
        p.subscription_identifiers = vec![NonZeroU32::new(7).unwrap()];
        p.user_properties = vec![
            UserProperty::new(MqttString::new("k").unwrap(), MqttString::new("v").unwrap()),
            UserProperty::new(
                MqttString::new("k2").unwrap(),
                MqttString::new("v 2").unwrap(),
            ),
        ];
        m
    }

    #[test]
    fn message_fields() {
        let m = message(b"hello");
        assert_eq!(render("%t %p %q %r %l %m %%", &m), "a/b hello 0 0 5 0 %");
        assert_eq!(render("%x %X", &message(&[0xab, 0x01])), "ab01 AB01");
        let m = with_properties();
        assert_eq!(render("%q %r %m", &m), "2 1 42");
        // Nothing is added at the end: the newline is the caller's (-N).
        assert_eq!(render("%p", &message(b"x")), "x");
        assert_eq!(render("plain text é", &m), "plain text é");
    }

    #[test]
    fn v5_properties() {
        let m = with_properties();
        assert_eq!(
            render("%C|%R|%D|%E|%F|%A|%S|%P", &m),
            "text/plain|re/ply|corr|30|1|3|7|k:v k2:v 2"
        );
        // Absent properties print nothing (or the field width of padding).
        let m = message(b"x");
        assert_eq!(render("[%C%R%D%E%F%A%S%P]", &m), "[]");
        assert_eq!(render("[%3C|%3E|%03E]", &m), "[   |   |000]");
    }

    #[test]
    fn timestamps() {
        let m = message(b"x");
        assert_eq!(render("%I", &m), "2016-08-10T09:47:38+0000");
        assert_eq!(render("%U", &m), "1470822458.786368637");
        assert_eq!(
            render(
                "@Y-@m-@dT@H:@M:@S@z @s.@N @@ @F @T @j @a @A @b @B @u @w @y @e @Z",
                &m
            ),
            "2016-08-10T09:47:38+0000 1470822458.786368637 @ 2016-08-10 09:47:38 223 Wed \
             Wednesday Aug August 3 3 16 10 UTC"
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(
            render(r#"\\\"\0\a\e\n\r\t\v"#, &message(b"")),
            "\\\"\0\x07\x1b\n\r\t\x0b"
        );
    }

    #[test]
    fn widths_precision_and_alignment() {
        let m = message(b"hello");
        assert_eq!(render("[%8t]", &m), "[     a/b]");
        assert_eq!(render("[%-8t]", &m), "[a/b     ]");
        assert_eq!(render("[%.1t]", &m), "[a]");
        assert_eq!(render("[%4.2t]", &m), "[  a/]");
        assert_eq!(render("[%5l|%-5l|%05l]", &m), "[    5|5    |00005]");
        // Payloads are cut to the width and padded to it.
        assert_eq!(
            render("[%3p|%8p|%-8p|%08p]", &m),
            "[hel|   hello|hello   |000hello]"
        );
        assert_eq!(render("[%4x|%7X]", &m), "[6865| 68656C]");
        assert_eq!(render("[%12x]", &m), "[  68656c6c6f]");
    }

    #[test]
    fn json_with_escaped_payload() {
        let m = message(b"say \"hi\"\n");
        assert_eq!(
            render("%j", &m),
            r#"{"tst":"2016-08-10T09:47:38.786368Z+0000","topic":"a/b","qos":0,"retain":0,"payloadlen":9,"payload":"say \"hi\"\n"}"#
        );
        // Binary payloads are byte arrays; empty ones are null.
        assert!(render("%j", &message(&[0xff, 1])).ends_with(r#""payload":[255,1]}"#));
        assert!(render("%j", &message(b"")).ends_with(r#""payloadlen":0,"payload":null}"#));
        assert_eq!(
            render("%j", &with_properties()),
            concat!(
                r#"{"tst":"2016-08-10T09:47:38.786368Z+0000","topic":"a/b","qos":2,"retain":1,"#,
                r#""payloadlen":2,"mid":42,"properties":{"payload-format-indicator":1,"#,
                r#""message-expiry-interval":30,"topic-alias":3,"content-type":"text/plain","#,
                r#""response-topic":"re/ply","correlation-data":"corr","#,
                r#""subscription-identifier":7,"user-properties":{"k":"v","k2":"v 2"}},"#,
                r#""payload":"hi"}"#
            )
        );
    }

    #[test]
    fn json_with_json_payload_and_pretty() {
        let m = message(br#"{ "temperature": 27.0, "humidity": [57] }"#);
        assert!(render("%J", &m)
            .ends_with(r#""payloadlen":41,"payload":{"temperature":27.0,"humidity":[57]}}"#));
        assert_eq!(
            render_pretty("%J", &m, true),
            "{\n\t\"tst\":\t\"2016-08-10T09:47:38.786368Z+0000\",\n\t\"topic\":\t\"a/b\",\n\
             \t\"qos\":\t0,\n\t\"retain\":\t0,\n\t\"payloadlen\":\t41,\n\
             \t\"payload\":\t{\n\t\t\"temperature\":\t27.0,\n\t\t\"humidity\":\t[57]\n\t}\n}"
        );
        // A payload that is not JSON: a warning, and nothing printed for that field.
        let at = Utc::from_unix(0, 0);
        let mut out = Vec::new();
        let warning =
            Format::parse("<%J>")
                .unwrap()
                .render(&message(b"{nope"), &at, false, &mut out);
        assert_eq!(out, b"<>");
        assert_eq!(
            warning.as_deref(),
            Some("Message payload is not valid JSON on topic a/b.")
        );
    }

    #[test]
    fn invalid_formats_are_rejected_at_startup() {
        for (format, complaint) in [
            ("%", "incomplete format specifier"),
            ("abc%-08", "incomplete format specifier"),
            ("%k", "invalid format specifier '%k'"),
            ("%5Z", "invalid format specifier '%Z'"),
            ("@", "incomplete time specifier"),
            ("@K", "unsupported time specifier '@K'"),
            ("\\", "incomplete escape"),
            ("\\q", "invalid escape '\\q'"),
            ("%99999999999999999999p", "field width larger than"),
            ("%.70000t", "precision larger than"),
        ] {
            match Format::parse(format) {
                Err(CliError::Usage(message)) => {
                    assert!(message.contains(complaint), "{format:?}: {message}")
                }
                other => panic!("{format:?} should be rejected, got {other:?}"),
            }
        }
    }
}
