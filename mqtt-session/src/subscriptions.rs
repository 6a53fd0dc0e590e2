//! The subscriptions the server granted, kept so that a session the server lost can be rebuilt:
//! a connection that starts without a session present subscribes to them again before it sends
//! anything else.

use std::collections::BTreeMap;

use mqtt_proto::{
    Packet, ProtocolVersion, QoS, RetainHandling, SubAckReasonCode, Subscribe, SubscribeProperties,
    Subscription, TopicFilter, UnsubAckReasonCode,
};

use crate::store::SubscriptionRecord;

/// Active subscriptions by filter.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    active: BTreeMap<String, SubscriptionRecord>,
}

/// A change to make in the store.
#[derive(Debug)]
pub(crate) enum Change {
    Put(SubscriptionRecord),
    Remove(TopicFilter),
}

impl Subscriptions {
    /// Subscriptions restored from a store.
    pub(crate) fn restore(&mut self, records: Vec<SubscriptionRecord>) {
        for record in records {
            let key = record.subscription.filter.as_str().to_owned();
            self.active.insert(key, record);
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &SubscriptionRecord> {
        self.active.values()
    }

    pub(crate) fn len(&self) -> usize {
        self.active.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// The answer to a SUBSCRIBE: granted filters become (or stay) active with the options
    /// asked for; a refused one is no longer active (the server replaces a subscription to
    /// the same filter [MQTT-3.8.4-3 v3.1.1 v5.0], so the old one cannot be counted on).
    pub(crate) fn subscribed(
        &mut self,
        filters: &[Subscription],
        properties: &SubscribeProperties,
        results: &[Result<QoS, SubAckReasonCode>],
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        for (subscription, result) in filters.iter().zip(results) {
            let key = subscription.filter.as_str().to_owned();
            match result {
                Ok(_) => {
                    let record = SubscriptionRecord {
                        subscription: subscription.clone(),
                        properties: properties.clone(),
                        confirmed: true,
                    };
                    if self.active.get(&key) != Some(&record) {
                        self.active.insert(key, record.clone());
                        changes.push(Change::Put(record));
                    }
                }
                Err(_) => {
                    if self.active.remove(&key).is_some() {
                        changes.push(Change::Remove(subscription.filter.clone()));
                    }
                }
            }
        }
        changes
    }

    /// The answer to a resubscription: granted filters are confirmed (with the options they
    /// were first asked for), refused ones are no longer active.
    pub(crate) fn resubscribed(
        &mut self,
        filters: &[Subscription],
        results: &[Result<QoS, SubAckReasonCode>],
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        for (subscription, result) in filters.iter().zip(results) {
            let key = subscription.filter.as_str();
            match result {
                Ok(_) => {
                    if let Some(record) = self.active.get_mut(key).filter(|r| !r.confirmed) {
                        record.confirmed = true;
                        changes.push(Change::Put(record.clone()));
                    }
                }
                Err(_) => {
                    if self.active.remove(key).is_some() {
                        changes.push(Change::Remove(subscription.filter.clone()));
                    }
                }
            }
        }
        changes
    }

    /// The answer to an UNSUBSCRIBE: filters the server removed (or never had) are gone.
    pub(crate) fn unsubscribed(
        &mut self,
        filters: &[TopicFilter],
        results: &[UnsubAckReasonCode],
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        for (filter, result) in filters.iter().zip(results) {
            let gone = matches!(
                result,
                UnsubAckReasonCode::Success | UnsubAckReasonCode::NoSubscriptionExisted
            );
            if gone && self.active.remove(filter.as_str()).is_some() {
                changes.push(Change::Remove(filter.clone()));
            }
        }
        changes
    }

    /// Whether some subscription is not known to be held by the server.
    pub(crate) fn has_unconfirmed(&self) -> bool {
        self.active.values().any(|r| !r.confirmed)
    }

    /// A resubscription starts: until answered, the subscriptions are not known to be held.
    pub(crate) fn unconfirm_all(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        for record in self.active.values_mut().filter(|r| r.confirmed) {
            record.confirmed = false;
            changes.push(Change::Put(record.clone()));
        }
        changes
    }

    /// Marks one subscription confirmed again (its unconfirmed record was not written).
    pub(crate) fn confirm(&mut self, filter: &TopicFilter) {
        if let Some(record) = self.active.get_mut(filter.as_str()) {
            record.confirmed = true;
        }
    }

    /// The server is known to hold every subscription again.
    pub(crate) fn confirm_all(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        for record in self.active.values_mut().filter(|r| !r.confirmed) {
            record.confirmed = true;
            changes.push(Change::Put(record.clone()));
        }
        changes
    }

    /// SUBSCRIBE packets (with identifier placeholders) for the active subscriptions (only
    /// those not known to be held, with `unconfirmed_only`; none in `covered`): one per set of
    /// properties, split so that none exceeds `max_packet_size`.
    pub(crate) fn resubscribe_packets(
        &self,
        version: ProtocolVersion,
        max_packet_size: usize,
        unconfirmed_only: bool,
        covered: &std::collections::HashSet<String>,
    ) -> Vec<Subscribe> {
        let mut groups: Vec<(SubscribeProperties, Vec<Subscription>)> = Vec::new();
        let records = self
            .active
            .iter()
            .filter(|(key, r)| (!unconfirmed_only || !r.confirmed) && !covered.contains(*key))
            .map(|(_, r)| r);
        for record in records {
            let mut subscription = record.subscription.clone();
            if unconfirmed_only
                && version.is_v5()
                && subscription.options.retain_handling == RetainHandling::SendAtSubscribe
            {
                // Checking a session the server says it has: if it holds the subscription,
                // its retained messages are not sent again (5.0; 3.1.1 cannot say so).
                subscription.options.retain_handling = RetainHandling::SendAtSubscribeIfNew;
            }
            match groups.iter_mut().find(|(p, _)| *p == record.properties) {
                Some((_, filters)) => filters.push(subscription),
                None => groups.push((record.properties.clone(), vec![subscription])),
            }
        }
        let placeholder = mqtt_proto::PacketId::MIN;
        let mut packets = Vec::new();
        for (properties, filters) in groups {
            let mut current = Subscribe {
                packet_id: placeholder,
                properties: properties.clone(),
                filters: Vec::new(),
            };
            for subscription in filters {
                current.filters.push(subscription);
                let size = Packet::Subscribe(current.clone())
                    .encoded_len(version)
                    .unwrap_or(usize::MAX);
                if size > max_packet_size && current.filters.len() > 1 {
                    // Too large with this filter: send what came before, start again with it.
                    let last = current.filters.pop();
                    packets.push(current);
                    current = Subscribe {
                        packet_id: placeholder,
                        properties: properties.clone(),
                        filters: last.into_iter().collect(),
                    };
                }
            }
            if !current.filters.is_empty() {
                packets.push(current);
            }
        }
        packets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_proto::SubscriptionOptions;
    use std::num::NonZeroU32;

    fn sub(filter: &str, qos: QoS) -> Subscription {
        Subscription::new(TopicFilter::new(filter).unwrap(), qos)
    }

    #[test]
    fn granted_filters_are_kept_refused_and_unsubscribed_ones_are_not() {
        let mut s = Subscriptions::default();
        let props = SubscribeProperties::default();
        let filters = [sub("a/#", QoS::AtLeastOnce), sub("b", QoS::ExactlyOnce)];
        let changes = s.subscribed(
            &filters,
            &props,
            &[Ok(QoS::AtLeastOnce), Err(SubAckReasonCode::NotAuthorized)],
        );
        assert_eq!(changes.len(), 1);
        assert_eq!(s.len(), 1);
        // The same again changes nothing; new options replace the old.
        assert!(s
            .subscribed(&filters[..1], &props, &[Ok(QoS::AtLeastOnce)])
            .is_empty());
        let mut upgraded = sub("a/#", QoS::ExactlyOnce);
        upgraded.options = SubscriptionOptions {
            no_local: true,
            ..SubscriptionOptions::qos(QoS::ExactlyOnce)
        };
        assert_eq!(
            s.subscribed(&[upgraded], &props, &[Ok(QoS::ExactlyOnce)])
                .len(),
            1
        );
        let gone = s.unsubscribed(
            &[TopicFilter::new("a/#").unwrap()],
            &[UnsubAckReasonCode::Success],
        );
        assert_eq!(gone.len(), 1);
        assert!(s.is_empty());
    }

    #[test]
    fn resubscribe_groups_by_properties_and_splits_to_fit() {
        let mut s = Subscriptions::default();
        let plain = SubscribeProperties::default();
        let identified = SubscribeProperties {
            subscription_identifier: NonZeroU32::new(7),
            ..SubscribeProperties::default()
        };
        let many: Vec<_> = (0..50)
            .map(|i| sub(&format!("f/{i:03}"), QoS::AtMostOnce))
            .collect();
        let ok = vec![Ok(QoS::AtMostOnce); 50];
        s.subscribed(&many, &plain, &ok);
        s.subscribed(
            &[sub("g", QoS::AtLeastOnce)],
            &identified,
            &[Ok(QoS::AtLeastOnce)],
        );
        let all =
            s.resubscribe_packets(ProtocolVersion::V5, usize::MAX, false, &Default::default());
        assert_eq!(all.len(), 2, "one packet per set of properties");
        assert!(s
            .resubscribe_packets(ProtocolVersion::V5, usize::MAX, true, &Default::default())
            .is_empty());
        assert_eq!(s.unconfirm_all().len(), 51);
        assert!(s.has_unconfirmed());
        let small = s.resubscribe_packets(ProtocolVersion::V5, 100, true, &Default::default());
        assert!(small.len() > 2);
        for packet in &small {
            let size = Packet::Subscribe(packet.clone())
                .encoded_len(ProtocolVersion::V5)
                .unwrap();
            assert!(size <= 100, "{size}");
        }
        let count: usize = small.iter().map(|p| p.filters.len()).sum();
        assert_eq!(count, 51);
    }
}
