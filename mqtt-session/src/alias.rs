//! 5.0 topic aliases (spec 3.3.2.3.4), per connection and per direction.

use std::collections::HashMap;
use std::num::NonZeroU16;

use mqtt_proto::{Publish, TopicName};

use crate::event::ProtocolViolation;

/// Aliases the server defines for messages it sends us.
#[derive(Debug, Default)]
pub(crate) struct InboundAliases {
    /// Our Topic Alias Maximum, as announced in CONNECT.
    max: u16,
    topics: HashMap<u16, TopicName>,
}

impl InboundAliases {
    pub(crate) fn new(max: u16) -> Self {
        Self {
            max,
            topics: HashMap::new(),
        }
    }

    /// Replaces an empty topic by the one its alias stands for, and learns new aliases.
    pub(crate) fn resolve(&mut self, publish: &mut Publish) -> Result<(), ProtocolViolation> {
        let Some(alias) = publish.properties.topic_alias else {
            return Ok(());
        };
        if alias.get() > self.max {
            return Err(ProtocolViolation::TopicAliasInvalid(alias.get()));
        }
        if publish.topic.is_empty() {
            match self.topics.get(&alias.get()) {
                Some(topic) => publish.topic = topic.clone(),
                None => return Err(ProtocolViolation::TopicAliasInvalid(alias.get())),
            }
        } else {
            self.topics.insert(alias.get(), publish.topic.clone());
        }
        Ok(())
    }
}

/// Aliases we define for messages we send.
#[derive(Debug, Default)]
pub(crate) struct OutboundAliases {
    /// The server's Topic Alias Maximum; 0 means none may be used [MQTT-3.2.2-18 v5.0].
    max: u16,
    aliases: HashMap<TopicName, NonZeroU16>,
}

impl OutboundAliases {
    pub(crate) fn new(max: u16) -> Self {
        Self {
            max,
            aliases: HashMap::new(),
        }
    }

    /// Whether the server accepts aliases, so that PUBLISH packets get one.
    pub(crate) fn is_active(&self) -> bool {
        self.max > 0
    }

    /// Gives `publish` an alias: the topic is sent in full the first time and left empty after.
    /// Aliases never exceed the server's maximum [MQTT-3.2.2-17 v5.0]; when they run out, later
    /// topics go without one.
    pub(crate) fn apply(&mut self, publish: &mut Publish) {
        if self.max == 0 || publish.properties.topic_alias.is_some() {
            return;
        }
        if let Some(alias) = self.aliases.get(&publish.topic) {
            publish.properties.topic_alias = Some(*alias);
            publish.topic = TopicName::empty_for_alias();
            return;
        }
        let next = self.aliases.len() + 1;
        if next > usize::from(self.max) {
            return;
        }
        if let Some(alias) = u16::try_from(next).ok().and_then(NonZeroU16::new) {
            self.aliases.insert(publish.topic.clone(), alias);
            publish.properties.topic_alias = Some(alias);
        }
    }
}
