//! Request/response (5.0): requests waiting for the message that answers them, matched by
//! Correlation Data on the client's response topic.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use mqtt_proto::{PacketId, Publish, TopicName};

/// Where the subscription to the response topic stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subscription {
    /// Not asked for yet.
    None,
    /// SUBSCRIBE sent with this identifier; requests wait for its answer.
    Pending(PacketId),
    /// Granted: requests go out at once.
    Ready,
}

/// One request waiting for its response.
#[derive(Debug)]
pub(crate) struct Waiting<W> {
    pub(crate) waiter: W,
    pub(crate) deadline: Instant,
}

/// The requests of one client.
#[derive(Debug)]
pub(crate) struct Requests<W> {
    /// The response topic, fixed by the first request.
    pub(crate) topic: Option<TopicName>,
    pub(crate) subscription: Subscription,
    /// Requests sent, by correlation data.
    pub(crate) sent: HashMap<Bytes, Waiting<W>>,
    /// Requests waiting for the subscription, in order: message, correlation data, publish
    /// token.
    pub(crate) held: Vec<(
        crate::message::Message,
        Bytes,
        Waiting<W>,
        crate::PublishToken,
    )>,
}

impl<W> Default for Requests<W> {
    fn default() -> Self {
        Self {
            topic: None,
            subscription: Subscription::None,
            sent: HashMap::new(),
            held: Vec::new(),
        }
    }
}

impl<W> Requests<W> {
    /// Whether `publish` answers a request sent: on the response topic, with a correlation
    /// data that a request waits for. Takes that request.
    pub(crate) fn take_match(&mut self, publish: &Publish) -> Option<Waiting<W>> {
        if self.sent.is_empty() || self.topic.as_ref() != Some(&publish.topic) {
            return None;
        }
        let correlation = publish.properties.correlation_data.as_ref()?;
        self.sent.remove(correlation)
    }

    /// Whether `publish` arrived on the response topic (a late or unknown response).
    pub(crate) fn is_response_topic(&self, publish: &Publish) -> bool {
        self.topic.as_ref() == Some(&publish.topic)
    }

    /// The earliest deadline of any request.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let sent = self.sent.values().map(|w| w.deadline);
        let held = self.held.iter().map(|(_, _, w, _)| w.deadline);
        sent.chain(held).min()
    }

    /// Takes every request whose deadline has passed at `now`.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Vec<W> {
        let mut expired = Vec::new();
        let keys: Vec<Bytes> = self
            .sent
            .iter()
            .filter(|(_, w)| w.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            if let Some(w) = self.sent.remove(&key) {
                expired.push(w.waiter);
            }
        }
        let mut kept = Vec::new();
        for (message, correlation, w, token) in self.held.drain(..) {
            if w.deadline <= now {
                expired.push(w.waiter);
            } else {
                kept.push((message, correlation, w, token));
            }
        }
        self.held = kept;
        expired
    }

    /// Takes every request, sent or held.
    pub(crate) fn take_all(&mut self) -> Vec<W> {
        let mut all: Vec<W> = self.sent.drain().map(|(_, w)| w.waiter).collect();
        all.extend(self.held.drain(..).map(|(_, _, w, _)| w.waiter));
        all
    }
}
