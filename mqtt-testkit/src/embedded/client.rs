//! One connected client as the router sees it: its subscriptions, and the QoS 1/2 messages
//! on their way to it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use mqtt_proto::{
    LastWill, Packet, PacketId, PropertyBox, ProtocolVersion, PubRel, PubRelReasonCode, Publish,
    PublishProperties, QoS, QosPid, SubAckReasonCode, Subscription, TopicName, UnsubAck,
    UnsubAckReasonCode, Unsubscribe,
};

use super::outbox::{encode, Outbox, Refused};
use super::Limits;

/// An application message on its way through the broker.
#[derive(Debug, Clone)]
pub(super) struct Message {
    pub(super) topic: TopicName,
    payload: Bytes,
    pub(super) qos: QoS,
    retain: bool,
    pub(super) properties: PropertyBox<PublishProperties>,
}

impl Message {
    pub(super) fn from_publish(publish: Publish) -> Self {
        Self {
            qos: publish.qos(),
            topic: publish.topic,
            payload: publish.payload,
            retain: publish.retain,
            properties: publish.properties,
        }
    }

    pub(super) fn from_will(will: LastWill) -> Self {
        let props = will.properties.into_inner();
        Self {
            topic: will.topic,
            payload: will.payload,
            qos: will.qos,
            retain: will.retain,
            properties: PublishProperties {
                payload_format_indicator: props.payload_format_indicator,
                message_expiry_interval: props.message_expiry_interval,
                content_type: props.content_type,
                response_topic: props.response_topic,
                correlation_data: props.correlation_data,
                user_properties: props.user_properties,
                ..PublishProperties::default()
            }
            .into(),
        }
    }

    /// The PUBLISH for a client of `version`: 5.0 properties pass on but for the publisher's
    /// topic alias and subscription identifiers; 3.x carries none.
    fn to_publish(&self, version: ProtocolVersion, qos_pid: QosPid, retain: bool) -> Publish {
        let mut publish = Publish::new(self.topic.clone(), qos_pid, self.payload.clone());
        publish.retain = retain;
        if version.is_v5() {
            publish.properties = PublishProperties {
                topic_alias: None,
                subscription_identifiers: Vec::new(),
                ..(*self.properties).clone()
            }
            .into();
        }
        publish
    }

    /// Whether it is to be retained (a RETAIN 1 PUBLISH or will).
    pub(super) fn retain(&self) -> bool {
        self.retain
    }

    /// Whether the payload is empty: a retained one deletes.
    pub(super) fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    /// What the message costs to keep: its size as a 5.0 PUBLISH.
    pub(super) fn size(&self) -> usize {
        let publish = self.to_publish(ProtocolVersion::V5, QosPid::AtMostOnce, true);
        Packet::Publish(publish)
            .encoded_len(ProtocolVersion::V5)
            .unwrap_or(usize::MAX)
    }
}

/// The acknowledgement an outbound QoS 1/2 message awaits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // named after the packets, as everywhere
enum Awaiting {
    PubAck,
    PubRec,
    PubComp,
}

/// An acknowledgement from a client for a message the broker sent it.
#[derive(Debug, Clone, Copy)]
#[allow(clippy::enum_variant_names)] // named after the packets, as everywhere
pub(super) enum Ack {
    PubAck(PacketId),
    /// PUBREC, and whether it accepted the message (5.0: a code of 0x80 or above refuses).
    PubRec(PacketId, bool),
    PubComp(PacketId),
}

/// A connected client.
#[derive(Debug)]
pub(super) struct Client {
    pub(super) conn: u64,
    pub(super) version: ProtocolVersion,
    pub(super) outbox: Arc<Outbox>,
    limits: Limits,
    /// Published if the connection ends without DISCONNECT.
    pub(super) will: Option<Message>,
    /// The client's Maximum Packet Size (5.0): larger messages are not sent to it.
    pub(super) max_packet_size: usize,
    /// How many QoS 1/2 messages may await its acknowledgement at once.
    pub(super) receive_maximum: usize,
    subscriptions: Vec<Subscription>,
    inflight: HashMap<PacketId, Awaiting>,
    /// QoS 1/2 messages waiting for a free in-flight slot: message, QoS, RETAIN flag.
    waiting: VecDeque<(Message, QoS, bool)>,
    waiting_bytes: usize,
    next_id: PacketId,
}

impl Client {
    pub(super) fn new(
        conn: u64,
        version: ProtocolVersion,
        outbox: Arc<Outbox>,
        limits: Limits,
    ) -> Self {
        Self {
            conn,
            version,
            outbox,
            limits,
            will: None,
            max_packet_size: limits.max_packet_size,
            receive_maximum: usize::from(limits.max_inflight),
            subscriptions: Vec::new(),
            inflight: HashMap::new(),
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            next_id: PacketId::MIN,
        }
    }

    /// The QoS and RETAIN flag to send `message` with, if a subscription matches it.
    pub(super) fn interest(&self, from: Option<u64>, message: &Message) -> Option<(QoS, bool)> {
        let mut best: Option<(QoS, bool)> = None;
        for subscription in &self.subscriptions {
            let options = subscription.options;
            // Wildcards at the first level skip `$` topics [MQTT-4.7.2-1].
            if !subscription.filter.matches(&message.topic) {
                continue;
            }
            // No Local: not back to the publisher [MQTT-3.8.3-3] (5.0).
            if options.no_local && from == Some(self.conn) {
                continue;
            }
            // The lower of the published and the granted QoS: [MQTT-3.8.4-6] (3.1.1),
            // [MQTT-3.8.4-8] (5.0).
            let qos = message.qos.min(options.qos);
            // RETAIN 0 on forwarded messages unless Retain As Published: [MQTT-3.3.1-9]
            // (3.1.1), [MQTT-3.3.1-12] (5.0).
            let retain = message.retain && options.retain_as_published;
            // Overlapping subscriptions: one copy at the highest QoS [MQTT-3.3.5-1] (3.1.1),
            // [MQTT-3.3.4-2] (5.0).
            best = Some(match best {
                Some((q, r)) => (q.max(qos), r || retain),
                None => (qos, retain),
            });
        }
        best
    }

    /// Sends `message` at `qos`, or queues it for a free in-flight slot. A QoS 0 message that
    /// does not fit is dropped; `Err` if a QoS 1/2 message does not fit.
    pub(super) fn deliver(
        &mut self,
        message: &Message,
        qos: QoS,
        retain: bool,
    ) -> Result<(), Refused> {
        if qos == QoS::AtMostOnce {
            let _ = self.send_publish(message.to_publish(self.version, QosPid::AtMostOnce, retain));
            return Ok(());
        }
        // [MQTT-3.3.4-9] (5.0): no more unacknowledged than the client's Receive Maximum.
        if self.waiting.is_empty() && self.inflight.len() < self.receive_maximum {
            return self.start_flow(message, qos, retain);
        }
        let size = message.topic.len() + message.payload.len();
        if self.waiting.len() >= self.limits.max_queued_packets
            || self.waiting_bytes + size > self.limits.max_queued_bytes
        {
            return Err(Refused::Full);
        }
        self.waiting_bytes += size;
        self.waiting.push_back((message.clone(), qos, retain));
        Ok(())
    }

    /// Sends a QoS 1/2 message with a packet id of this client's.
    fn start_flow(&mut self, message: &Message, qos: QoS, retain: bool) -> Result<(), Refused> {
        let id = self.free_id();
        let publish = message.to_publish(self.version, QosPid::from_qos(qos, id), retain);
        match self.send_publish(publish) {
            Ok(true) => {
                let awaiting = match qos {
                    QoS::ExactlyOnce => Awaiting::PubRec,
                    _ => Awaiting::PubAck,
                };
                self.inflight.insert(id, awaiting);
                Ok(())
            }
            Ok(false) | Err(Refused::Closed) => Ok(()),
            Err(Refused::Full) => Err(Refused::Full),
        }
    }

    /// Queues a PUBLISH. `Ok(false)`: it exceeds the client's Maximum Packet Size, and is
    /// dropped as if it had been sent [MQTT-3.1.2-25] (5.0).
    fn send_publish(&self, publish: Publish) -> Result<bool, Refused> {
        let frame = encode(self.version, &Packet::Publish(publish)).ok_or(Refused::Closed)?;
        if frame.len() > self.max_packet_size {
            return Ok(false);
        }
        self.outbox.push(frame).map(|()| true)
    }

    /// A packet id no flow of this client uses. There are fewer flows than ids, so one is
    /// found.
    fn free_id(&mut self) -> PacketId {
        loop {
            let id = self.next_id;
            self.next_id = id.next();
            if !self.inflight.contains_key(&id) {
                return id;
            }
        }
    }

    /// Ends the flow of `id` if it awaited `stage`, and starts waiting messages in free slots.
    fn finish(&mut self, id: PacketId, stage: Awaiting) -> Result<(), Refused> {
        if self.inflight.get(&id) == Some(&stage) {
            self.inflight.remove(&id);
        }
        while self.inflight.len() < self.receive_maximum {
            let Some((message, qos, retain)) = self.waiting.pop_front() else {
                break;
            };
            self.waiting_bytes -= message.topic.len() + message.payload.len();
            self.start_flow(&message, qos, retain)?;
        }
        Ok(())
    }

    /// Advances an outbound QoS 1/2 flow on the client's acknowledgement.
    pub(super) fn acknowledge(&mut self, ack: Ack) -> Result<(), Refused> {
        match ack {
            Ack::PubAck(id) => self.finish(id, Awaiting::PubAck),
            Ack::PubComp(id) => self.finish(id, Awaiting::PubComp),
            // 5.0: a refusing PUBREC ends the flow.
            Ack::PubRec(id, false) => self.finish(id, Awaiting::PubRec),
            Ack::PubRec(id, true) => {
                let known = matches!(
                    self.inflight.get(&id),
                    Some(Awaiting::PubRec | Awaiting::PubComp)
                );
                let mut pubrel = PubRel::new(id);
                if known {
                    self.inflight.insert(id, Awaiting::PubComp);
                } else if self.version.is_v5() {
                    pubrel.reason_code = PubRelReasonCode::PacketIdentifierNotFound;
                } else {
                    return Ok(());
                }
                // [MQTT-4.3.3-4] (5.0)
                self.outbox.send(self.version, &pubrel.into())
            }
        }
    }

    /// Adds a subscription or replaces the one with the same filter [MQTT-3.8.4-3]; whether
    /// it is new, or the code refusing it.
    pub(super) fn add_subscription(
        &mut self,
        subscription: &Subscription,
    ) -> Result<bool, SubAckReasonCode> {
        let v5 = self.version.is_v5();
        if subscription.filter.is_shared() {
            return Err(if v5 {
                SubAckReasonCode::SharedSubscriptionsNotSupported
            } else {
                SubAckReasonCode::UnspecifiedError
            });
        }
        let existing = self
            .subscriptions
            .iter_mut()
            .find(|s| s.filter == subscription.filter);
        if let Some(existing) = existing {
            *existing = subscription.clone();
            return Ok(false);
        }
        if self.subscriptions.len() >= self.limits.max_subscriptions {
            return Err(if v5 {
                SubAckReasonCode::QuotaExceeded
            } else {
                SubAckReasonCode::UnspecifiedError
            });
        }
        self.subscriptions.push(subscription.clone());
        Ok(true)
    }

    /// Removes the subscriptions whose filters are exactly those given [MQTT-3.10.4-1] and
    /// answers UNSUBACK, even if none existed [MQTT-3.10.4-4] [MQTT-3.10.4-5].
    pub(super) fn unsubscribe(&mut self, unsubscribe: &Unsubscribe) -> Result<(), Refused> {
        let mut reason_codes = Vec::with_capacity(unsubscribe.filters.len());
        for filter in &unsubscribe.filters {
            let before = self.subscriptions.len();
            self.subscriptions.retain(|s| s.filter != *filter);
            reason_codes.push(if self.subscriptions.len() < before {
                UnsubAckReasonCode::Success
            } else {
                UnsubAckReasonCode::NoSubscriptionExisted
            });
        }
        let unsuback = UnsubAck {
            packet_id: unsubscribe.packet_id,
            properties: Default::default(),
            reason_codes,
        };
        self.outbox.send(self.version, &unsuback.into())
    }
}
