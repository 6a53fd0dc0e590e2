//! `-D`/`--property`: MQTT 5.0 properties, named as mosquitto names them.
//!
//! ```text
//! -D connect session-expiry-interval 60
//! -D publish user-property key value
//! ```

use std::num::{NonZeroU16, NonZeroU32};
use std::str::FromStr;

use bytes::Bytes;
use mqtt_tokio::proto::{
    ConnectProperties, MqttString, PayloadFormat, PublishProperties, SubscribeProperties,
    TopicName, UnsubscribeProperties, UserProperty, WillProperties, MAX_VAR_INT,
};

use crate::CliError;

/// Which command reads the properties: `pub` sends PUBLISH, `sub` sends SUBSCRIBE and
/// UNSUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    /// `mqtt pub`.
    Pub,
    /// `mqtt sub`.
    Sub,
}

/// The properties given with `-D`, by packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Properties {
    /// CONNECT properties.
    pub(crate) connect: ConnectProperties,
    /// Properties of the will (`--will-topic`).
    pub(crate) will: WillProperties,
    /// Properties of every message `mqtt pub` sends.
    pub(crate) publish: PublishProperties,
    /// SUBSCRIBE properties of `mqtt sub`.
    pub(crate) subscribe: SubscribeProperties,
    /// UNSUBSCRIBE properties of `mqtt sub -U`.
    pub(crate) unsubscribe: UnsubscribeProperties,
}

impl Properties {
    /// Whether no property was given.
    pub(crate) fn is_empty(&self) -> bool {
        self.connect.is_empty()
            && self.will.is_empty()
            && self.publish.is_empty()
            && self.subscribe.is_empty()
            && self.unsubscribe.is_empty()
    }

    /// Reads every `-D COMMAND NAME VALUE` (or `-D COMMAND user-property KEY VALUE`).
    pub(crate) fn parse(definitions: &[Vec<String>], tool: Tool) -> Result<Self, CliError> {
        let mut properties = Self::default();
        for definition in definitions {
            properties.add(definition, tool)?;
        }
        Ok(properties)
    }

    fn add(&mut self, definition: &[String], tool: Tool) -> Result<(), CliError> {
        let (command, name, values) = match definition {
            [command, name, values @ ..] => (command.as_str(), name.as_str(), values),
            _ => return Err(usage("-D needs a command, a property name and a value")),
        };
        let value = match (name, values) {
            ("user-property", [key, value]) => {
                let pair = UserProperty::new(string(name, key)?, string(name, value)?);
                return self.add_user_property(command, tool, pair);
            }
            ("user-property", _) => {
                return Err(usage(&format!(
                    "-D {command} user-property needs a key and a value"
                )))
            }
            (_, [value]) => value.as_str(),
            _ => return Err(usage(&format!("-D {command} {name} takes one value"))),
        };
        match command {
            "connect" => self.add_connect(name, value),
            "publish" => {
                allowed_for(command, tool, Tool::Pub)?;
                add_message_property(&mut self.publish, command, name, value)
            }
            "will" => add_message_property(&mut self.will, command, name, value),
            "subscribe" => {
                allowed_for(command, tool, Tool::Sub)?;
                match name {
                    "subscription-identifier" => {
                        let id = number::<u32>(name, value)?;
                        let id = NonZeroU32::new(id)
                            .filter(|id| id.get() <= MAX_VAR_INT)
                            .ok_or_else(|| {
                                usage(&format!(
                                    "{name} must be between 1 and {MAX_VAR_INT}, not {value}"
                                ))
                            })?;
                        set_once(
                            &mut self.subscribe.subscription_identifier,
                            id,
                            command,
                            name,
                        )
                    }
                    _ => Err(not_valid(command, name)),
                }
            }
            "unsubscribe" => {
                allowed_for(command, tool, Tool::Sub)?;
                Err(not_valid(command, name))
            }
            _ => Err(unknown_command(command)),
        }
    }

    fn add_user_property(
        &mut self,
        command: &str,
        tool: Tool,
        pair: UserProperty,
    ) -> Result<(), CliError> {
        let list = match command {
            "connect" => &mut self.connect.user_properties,
            "will" => &mut self.will.user_properties,
            "publish" => {
                allowed_for(command, tool, Tool::Pub)?;
                &mut self.publish.user_properties
            }
            "subscribe" => {
                allowed_for(command, tool, Tool::Sub)?;
                &mut self.subscribe.user_properties
            }
            "unsubscribe" => {
                allowed_for(command, tool, Tool::Sub)?;
                &mut self.unsubscribe.user_properties
            }
            _ => return Err(unknown_command(command)),
        };
        list.push(pair);
        Ok(())
    }

    fn add_connect(&mut self, name: &str, value: &str) -> Result<(), CliError> {
        let c = &mut self.connect;
        let command = "connect";
        match name {
            "session-expiry-interval" => {
                let v = number(name, value)?;
                set_once(&mut c.session_expiry_interval, v, command, name)
            }
            "receive-maximum" => {
                let v = NonZeroU16::new(number(name, value)?)
                    .ok_or_else(|| usage(&format!("{name} must be between 1 and 65535")))?;
                set_once(&mut c.receive_maximum, v, command, name)
            }
            "maximum-packet-size" => {
                let v = NonZeroU32::new(number(name, value)?)
                    .ok_or_else(|| usage(&format!("{name} must be at least 1")))?;
                set_once(&mut c.maximum_packet_size, v, command, name)
            }
            "topic-alias-maximum" => {
                let v = number(name, value)?;
                set_once(&mut c.topic_alias_maximum, v, command, name)
            }
            "request-problem-information" => {
                let v = flag(name, value)?;
                set_once(&mut c.request_problem_information, v, command, name)
            }
            "request-response-information" => {
                let v = flag(name, value)?;
                set_once(&mut c.request_response_information, v, command, name)
            }
            "authentication-method" | "authentication-data" => Err(usage(&format!(
                "-D connect {name} is not supported: mqtt has no enhanced authentication"
            ))),
            _ => Err(not_valid(command, name)),
        }
    }
}

/// The properties PUBLISH and the will share.
trait MessageProperties {
    fn payload_format(&mut self) -> &mut Option<PayloadFormat>;
    fn message_expiry(&mut self) -> &mut Option<u32>;
    fn content_type(&mut self) -> &mut Option<MqttString>;
    fn response_topic(&mut self) -> &mut Option<TopicName>;
    fn correlation_data(&mut self) -> &mut Option<Bytes>;
    /// Sets a property only the will has; false if there is no such property.
    fn set_own(&mut self, name: &str, value: &str) -> Result<bool, CliError>;
}

impl MessageProperties for PublishProperties {
    fn payload_format(&mut self) -> &mut Option<PayloadFormat> {
        &mut self.payload_format_indicator
    }
    fn message_expiry(&mut self) -> &mut Option<u32> {
        &mut self.message_expiry_interval
    }
    fn content_type(&mut self) -> &mut Option<MqttString> {
        &mut self.content_type
    }
    fn response_topic(&mut self) -> &mut Option<TopicName> {
        &mut self.response_topic
    }
    fn correlation_data(&mut self) -> &mut Option<Bytes> {
        &mut self.correlation_data
    }
    fn set_own(&mut self, name: &str, _: &str) -> Result<bool, CliError> {
        if name == "topic-alias" {
            return Err(usage(
                "-D publish topic-alias is not supported: the client assigns topic aliases itself",
            ));
        }
        Ok(false)
    }
}

impl MessageProperties for WillProperties {
    fn payload_format(&mut self) -> &mut Option<PayloadFormat> {
        &mut self.payload_format_indicator
    }
    fn message_expiry(&mut self) -> &mut Option<u32> {
        &mut self.message_expiry_interval
    }
    fn content_type(&mut self) -> &mut Option<MqttString> {
        &mut self.content_type
    }
    fn response_topic(&mut self) -> &mut Option<TopicName> {
        &mut self.response_topic
    }
    fn correlation_data(&mut self) -> &mut Option<Bytes> {
        &mut self.correlation_data
    }
    fn set_own(&mut self, name: &str, value: &str) -> Result<bool, CliError> {
        if name != "will-delay-interval" {
            return Ok(false);
        }
        let v = number(name, value)?;
        set_once(&mut self.will_delay_interval, v, "will", name)?;
        Ok(true)
    }
}

fn add_message_property(
    props: &mut impl MessageProperties,
    command: &str,
    name: &str,
    value: &str,
) -> Result<(), CliError> {
    match name {
        "payload-format-indicator" => {
            let format = match value {
                "0" => PayloadFormat::Unspecified,
                "1" => PayloadFormat::Utf8,
                _ => return Err(usage(&format!("{name} must be 0 or 1, not '{value}'"))),
            };
            set_once(props.payload_format(), format, command, name)
        }
        "message-expiry-interval" => {
            let v = number(name, value)?;
            set_once(props.message_expiry(), v, command, name)
        }
        "content-type" => set_once(props.content_type(), string(name, value)?, command, name),
        "response-topic" => {
            let topic = TopicName::new(value)
                .map_err(|e| usage(&format!("invalid {name} '{value}': {e}")))?;
            set_once(props.response_topic(), topic, command, name)
        }
        "correlation-data" => {
            if value.len() > usize::from(u16::MAX) {
                return Err(usage(&format!("{name} is longer than 65535 bytes")));
            }
            let data = Bytes::from(value.as_bytes().to_vec());
            set_once(props.correlation_data(), data, command, name)
        }
        _ if props.set_own(name, value)? => Ok(()),
        _ => Err(not_valid(command, name)),
    }
}

fn usage(message: &str) -> CliError {
    CliError::Usage(message.to_owned())
}

fn unknown_command(command: &str) -> CliError {
    if command == "disconnect" || command == "auth" {
        return usage(&format!(
            "-D {command} properties are not supported by mqtt"
        ));
    }
    usage(&format!(
        "-D: unknown command '{command}' (expected connect, publish, subscribe, unsubscribe or \
         will)"
    ))
}

fn not_valid(command: &str, name: &str) -> CliError {
    usage(&format!("-D: '{name}' is not a valid {command} property"))
}

/// Rejects properties of a packet the other command sends.
fn allowed_for(command: &str, tool: Tool, only: Tool) -> Result<(), CliError> {
    if tool == only {
        return Ok(());
    }
    let name = match only {
        Tool::Pub => "mqtt pub",
        Tool::Sub => "mqtt sub",
    };
    Err(usage(&format!(
        "-D {command} properties apply to {name} only"
    )))
}

/// Sets a property that may appear once.
fn set_once<T>(slot: &mut Option<T>, value: T, command: &str, name: &str) -> Result<(), CliError> {
    if slot.is_some() {
        return Err(usage(&format!("-D {command} {name} is given twice")));
    }
    *slot = Some(value);
    Ok(())
}

fn number<T: FromStr>(name: &str, value: &str) -> Result<T, CliError> {
    value.parse().map_err(|_| {
        usage(&format!(
            "invalid value '{value}' for {name}: not a number in range"
        ))
    })
}

fn flag(name: &str, value: &str) -> Result<bool, CliError> {
    match value {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(usage(&format!("{name} must be 0 or 1, not '{value}'"))),
    }
}

fn string(name: &str, value: &str) -> Result<MqttString, CliError> {
    MqttString::new(value).map_err(|e| usage(&format!("invalid {name} '{value}': {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(tool: Tool, defs: &[&[&str]]) -> Result<Properties, CliError> {
        let defs: Vec<Vec<String>> = defs
            .iter()
            .map(|d| d.iter().map(|s| s.to_string()).collect())
            .collect();
        Properties::parse(&defs, tool)
    }

    fn error(tool: Tool, defs: &[&[&str]]) -> String {
        match parse(tool, defs) {
            Err(CliError::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    fn pair(k: &str, v: &str) -> UserProperty {
        UserProperty::new(MqttString::new(k).unwrap(), MqttString::new(v).unwrap())
    }

    #[test]
    fn connect_properties() {
        let p = parse(
            Tool::Sub,
            &[
                &["connect", "session-expiry-interval", "60"],
                &["connect", "receive-maximum", "10"],
                &["connect", "maximum-packet-size", "1000"],
                &["connect", "topic-alias-maximum", "5"],
                &["connect", "request-problem-information", "0"],
                &["connect", "request-response-information", "1"],
                &["connect", "user-property", "k", "v"],
            ],
        )
        .unwrap();
        let c = &p.connect;
        assert_eq!(c.session_expiry_interval, Some(60));
        assert_eq!(c.receive_maximum, NonZeroU16::new(10));
        assert_eq!(c.maximum_packet_size, NonZeroU32::new(1000));
        assert_eq!(c.topic_alias_maximum, Some(5));
        assert_eq!(c.request_problem_information, Some(false));
        assert_eq!(c.request_response_information, Some(true));
        assert_eq!(c.user_properties, vec![pair("k", "v")]);
        assert!(p.publish.is_empty() && p.will.is_empty() && !p.is_empty());
    }

    #[test]
    fn publish_and_will_properties() {
        let p = parse(
            Tool::Pub,
            &[
                &["publish", "content-type", "text/plain"],
                &["publish", "message-expiry-interval", "30"],
                &["publish", "response-topic", "a/b"],
                &["publish", "correlation-data", "xyz"],
                &["publish", "payload-format-indicator", "1"],
                &["publish", "user-property", "k", "v"],
                &["publish", "user-property", "k", "w"],
                &["will", "will-delay-interval", "5"],
                &["will", "content-type", "text/x"],
            ],
        )
        .unwrap();
        let m = &p.publish;
        assert_eq!(m.content_type.as_ref().unwrap(), "text/plain");
        assert_eq!(m.message_expiry_interval, Some(30));
        assert_eq!(m.response_topic.as_ref().unwrap().as_str(), "a/b");
        assert_eq!(m.correlation_data.as_deref(), Some(&b"xyz"[..]));
        assert_eq!(m.payload_format_indicator, Some(PayloadFormat::Utf8));
        assert_eq!(m.user_properties, vec![pair("k", "v"), pair("k", "w")]);
        assert_eq!(p.will.will_delay_interval, Some(5));
        assert_eq!(p.will.content_type.as_ref().unwrap(), "text/x");
    }

    #[test]
    fn subscribe_and_unsubscribe_properties() {
        let p = parse(
            Tool::Sub,
            &[
                &["subscribe", "subscription-identifier", "7"],
                &["subscribe", "user-property", "a", "b"],
                &["unsubscribe", "user-property", "c", "d"],
            ],
        )
        .unwrap();
        assert_eq!(p.subscribe.subscription_identifier, NonZeroU32::new(7));
        assert_eq!(p.subscribe.user_properties, vec![pair("a", "b")]);
        assert_eq!(p.unsubscribe.user_properties, vec![pair("c", "d")]);
    }

    #[test]
    fn mistakes_are_clear_errors() {
        for (tool, def, complaint) in [
            (
                Tool::Pub,
                &["connect", "bogus", "1"][..],
                "'bogus' is not a valid connect property",
            ),
            (
                Tool::Pub,
                &["conect", "receive-maximum", "1"],
                "unknown command 'conect'",
            ),
            (
                Tool::Pub,
                &["connect", "receive-maximum", "0"],
                "between 1 and 65535",
            ),
            (
                Tool::Pub,
                &["connect", "receive-maximum", "70000"],
                "not a number in range",
            ),
            (
                Tool::Pub,
                &["connect", "session-expiry-interval", "-1"],
                "not a number",
            ),
            (
                Tool::Pub,
                &["connect", "user-property", "k"],
                "needs a key and a value",
            ),
            (
                Tool::Pub,
                &["connect", "receive-maximum", "1", "2"],
                "takes one value",
            ),
            (
                Tool::Pub,
                &["connect", "authentication-method", "x"],
                "not supported",
            ),
            (Tool::Pub, &["publish", "topic-alias", "1"], "not supported"),
            (
                Tool::Pub,
                &["publish", "payload-format-indicator", "2"],
                "must be 0 or 1",
            ),
            (
                Tool::Pub,
                &["publish", "response-topic", "a/#"],
                "invalid response-topic",
            ),
            (
                Tool::Pub,
                &["publish", "will-delay-interval", "1"],
                "not a valid publish property",
            ),
            (
                Tool::Pub,
                &["subscribe", "user-property", "k", "v"],
                "mqtt sub only",
            ),
            (
                Tool::Sub,
                &["publish", "content-type", "x"],
                "mqtt pub only",
            ),
            (
                Tool::Sub,
                &["subscribe", "subscription-identifier", "0"],
                "between 1 and",
            ),
            (
                Tool::Sub,
                &["subscribe", "subscription-identifier", "268435456"],
                "between 1",
            ),
            (
                Tool::Sub,
                &["unsubscribe", "content-type", "x"],
                "not a valid unsubscribe property",
            ),
            (
                Tool::Sub,
                &["disconnect", "reason-string", "x"],
                "disconnect properties are not supported",
            ),
        ] {
            let message = error(tool, &[def]);
            assert!(message.contains(complaint), "{def:?}: {message}");
        }
        let twice = error(
            Tool::Pub,
            &[
                &["publish", "content-type", "a"],
                &["publish", "content-type", "b"],
            ],
        );
        assert!(twice.contains("given twice"), "{twice}");
    }
}
