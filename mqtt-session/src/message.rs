//! `Message`: what the application publishes.

use bytes::Bytes;
use mqtt_proto::{PropertyBox, PublishProperties, QoS, TopicError, TopicName};

/// An application message to publish.
///
/// ```
/// use mqtt_session::Message;
/// use mqtt_proto::QoS;
/// let msg = Message::new("sensors/kitchen", "21.5").unwrap().qos(QoS::AtLeastOnce).retain(true);
/// assert_eq!(msg.topic.as_str(), "sensors/kitchen");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Where to publish.
    pub topic: TopicName,
    /// The payload, any size up to the spec's limit.
    pub payload: Bytes,
    /// Quality of service.
    pub qos: QoS,
    /// Whether the server retains it.
    pub retain: bool,
    /// 5.0 properties (the session manages the topic alias itself); allocated only when set.
    pub properties: PropertyBox<PublishProperties>,
}

impl Message {
    /// A QoS 0, non-retained message; fails if `topic` is not a valid topic name.
    pub fn new(topic: &str, payload: impl Into<Bytes>) -> Result<Self, TopicError> {
        Ok(Self::with_topic(TopicName::new(topic)?, payload))
    }

    /// A QoS 0, non-retained message to an already validated topic.
    pub fn with_topic(topic: TopicName, payload: impl Into<Bytes>) -> Self {
        Self {
            topic,
            payload: payload.into(),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: PropertyBox::EMPTY,
        }
    }

    /// Sets the QoS.
    pub fn qos(mut self, qos: QoS) -> Self {
        self.qos = qos;
        self
    }

    /// Sets RETAIN.
    pub fn retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }

    /// Moves the message out, leaving an empty one (no topic, no payload) that allocates
    /// nothing.
    pub(crate) fn take(&mut self) -> Self {
        let empty = Self::with_topic(TopicName::empty_for_alias(), Bytes::new());
        std::mem::replace(self, empty)
    }

    /// Sets the 5.0 properties.
    pub fn properties(mut self, properties: impl Into<PropertyBox<PublishProperties>>) -> Self {
        self.properties = properties.into();
        self
    }
}
