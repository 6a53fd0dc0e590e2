//! Incoming QoS 1/2 state: identifiers of QoS 2 messages not yet released, and the queues that
//! keep PUBACK and PUBREC in the order their PUBLISH packets arrived [MQTT-4.6.0-2],
//! [MQTT-4.6.0-3], even when the application acknowledges out of order.

use std::collections::{HashMap, VecDeque};

use mqtt_proto::PacketId;

use crate::event::AckToken;

/// Where an incoming QoS 2 message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Qos2State {
    /// Delivered to the application, PUBREC not sent yet (manual acks).
    Delivered,
    /// PUBREC sent (and the identifier stored); waiting for PUBREL.
    Received,
}

/// Which acknowledgement an entry stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckKind {
    /// PUBACK for QoS 1.
    PubAck,
    /// PUBREC for QoS 2.
    PubRec,
}

#[derive(Debug, Clone, Copy)]
struct PendingAck {
    token: u64,
    packet_id: PacketId,
    acked: bool,
}

/// Acknowledgements waiting to go out in arrival order.
#[derive(Debug, Default)]
struct OrderedAcks {
    pending: VecDeque<PendingAck>,
}

impl OrderedAcks {
    fn push(&mut self, token: u64, packet_id: PacketId) {
        self.pending.push_back(PendingAck {
            token,
            packet_id,
            acked: false,
        });
    }

    /// Marks `token` acknowledged; returns its packet identifier, `None` if it is not here.
    fn mark(&mut self, token: u64, acked: bool) -> Option<PacketId> {
        // Tokens grow with arrival, so the queue is sorted by token.
        let i = self
            .pending
            .binary_search_by_key(&token, |p| p.token)
            .ok()?;
        match self.pending.get_mut(i) {
            Some(p) if p.acked != acked => {
                p.acked = acked;
                Some(p.packet_id)
            }
            _ => None,
        }
    }

    /// Whether a message with `id` waits for its acknowledgement.
    fn contains(&self, id: PacketId) -> bool {
        self.pending.iter().any(|p| p.packet_id == id)
    }

    /// Removes the acknowledged entries at the front: they may go out now.
    fn drain_ready(&mut self, out: &mut Vec<PacketId>) {
        while let Some(front) = self.pending.front() {
            if !front.acked {
                break;
            }
            out.push(front.packet_id);
            self.pending.pop_front();
        }
    }
}

/// Incoming state that lasts as long as the session (QoS 2) or the connection (QoS 1 acks).
#[derive(Debug, Default)]
pub(crate) struct Inbound {
    pub(crate) qos2: HashMap<u16, Qos2State>,
    pubacks: OrderedAcks,
    pubrecs: OrderedAcks,
    next_token: u64,
}

impl Inbound {
    /// Registers a message the application will acknowledge; returns its token.
    pub(crate) fn expect_ack(&mut self, kind: AckKind, packet_id: PacketId) -> AckToken {
        let token = self.next_token;
        self.next_token += 1;
        match kind {
            AckKind::PubAck => self.pubacks.push(token, packet_id),
            AckKind::PubRec => self.pubrecs.push(token, packet_id),
        }
        AckToken(token)
    }

    /// Marks a token acknowledged. Returns which queue it was in and its packet identifier,
    /// or `None` if unknown or already acknowledged.
    pub(crate) fn mark(&mut self, token: AckToken) -> Option<(AckKind, PacketId)> {
        if let Some(id) = self.pubacks.mark(token.0, true) {
            Some((AckKind::PubAck, id))
        } else {
            self.pubrecs
                .mark(token.0, true)
                .map(|id| (AckKind::PubRec, id))
        }
    }

    /// Takes back an acknowledgement that could not be recorded.
    pub(crate) fn unmark(&mut self, token: AckToken) {
        if self.pubacks.mark(token.0, false).is_none() {
            self.pubrecs.mark(token.0, false);
        }
    }

    /// Whether a QoS 1 message with `id` was delivered and waits for the application.
    pub(crate) fn puback_pending(&self, id: PacketId) -> bool {
        self.pubacks.contains(id)
    }

    /// The acknowledgements of `kind` that may go out now, in arrival order.
    pub(crate) fn ready(&mut self, kind: AckKind) -> Vec<PacketId> {
        let mut out = Vec::new();
        match kind {
            AckKind::PubAck => self.pubacks.drain_ready(&mut out),
            AckKind::PubRec => self.pubrecs.drain_ready(&mut out),
        }
        out
    }

    /// QoS 1 messages the server will send again on the next connection need no PUBACK.
    pub(crate) fn connection_lost(&mut self) {
        self.pubacks.pending.clear();
    }

    /// Messages delivered but not released: counted against our Receive Maximum.
    pub(crate) fn unreleased(&self) -> usize {
        self.pubacks.pending.len() + self.qos2.len()
    }

    /// Forgets everything (the session was not resumed).
    pub(crate) fn clear(&mut self) {
        self.qos2.clear();
        self.pubacks.pending.clear();
        self.pubrecs.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    #[test]
    fn acks_leave_in_arrival_order_whatever_the_application_order() {
        // [MQTT-4.6.0-2]
        let mut inbound = Inbound::default();
        let a = inbound.expect_ack(AckKind::PubAck, id(10));
        let b = inbound.expect_ack(AckKind::PubAck, id(11));
        let c = inbound.expect_ack(AckKind::PubAck, id(12));
        assert_eq!(inbound.mark(c), Some((AckKind::PubAck, id(12))));
        assert!(
            inbound.ready(AckKind::PubAck).is_empty(),
            "12 waits for 10 and 11"
        );
        assert_eq!(inbound.mark(a), Some((AckKind::PubAck, id(10))));
        assert_eq!(inbound.ready(AckKind::PubAck), vec![id(10)]);
        assert_eq!(inbound.mark(b), Some((AckKind::PubAck, id(11))));
        assert_eq!(inbound.ready(AckKind::PubAck), vec![id(11), id(12)]);
        assert_eq!(inbound.mark(b), None, "a token acknowledges once");
    }

    #[test]
    fn pubrec_order_is_independent_of_puback_order() {
        // [MQTT-4.6.0-3]
        let mut inbound = Inbound::default();
        let q1 = inbound.expect_ack(AckKind::PubAck, id(1));
        let q2 = inbound.expect_ack(AckKind::PubRec, id(2));
        assert_eq!(inbound.mark(q2), Some((AckKind::PubRec, id(2))));
        assert_eq!(inbound.ready(AckKind::PubRec), vec![id(2)]);
        assert!(inbound.ready(AckKind::PubAck).is_empty());
        assert_eq!(inbound.mark(q1), Some((AckKind::PubAck, id(1))));
        assert_eq!(inbound.ready(AckKind::PubAck), vec![id(1)]);
    }
}
