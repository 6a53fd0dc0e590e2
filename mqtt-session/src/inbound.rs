//! Incoming state: the bounded queue of messages delivered and not yet taken by the
//! application, identifiers of QoS 2 messages not yet released, and the queues that keep PUBACK
//! and PUBREC in the order their PUBLISH packets arrived [MQTT-4.6.0-2 v3.1.1 v5.0],
//! [MQTT-4.6.0-3 v3.1.1 v5.0], even when the application acknowledges out of order.

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
    /// One bit per packet identifier in `pending` (each is there at most once: a message
    /// resent under an identifier still pending is not delivered again), grown to the word of
    /// the highest one seen, 8 KiB at most: finding a resent message needs no scan of up to
    /// the whole inbound queue.
    ids: Vec<u64>,
}

impl OrderedAcks {
    fn slot(id: PacketId) -> (usize, u64) {
        (usize::from(id.get() / 64), 1u64 << (id.get() % 64))
    }

    fn set(&mut self, id: PacketId, on: bool) {
        let (word, bit) = Self::slot(id);
        if word >= self.ids.len() {
            if !on {
                return;
            }
            self.ids.resize(word + 1, 0);
        }
        if let Some(w) = self.ids.get_mut(word) {
            if on {
                *w |= bit;
            } else {
                *w &= !bit;
            }
        }
    }

    fn clear(&mut self) {
        self.pending.clear();
        self.ids.iter_mut().for_each(|w| *w = 0);
    }

    fn len(&self) -> usize {
        self.pending.len()
    }

    /// Shrinks the queue to what it holds; with nothing pending every bit is clear, and the
    /// bitmap goes until the next identifier.
    fn release_memory(&mut self) {
        self.pending.shrink_to_fit();
        if self.pending.is_empty() {
            self.ids = Vec::new();
        }
    }

    fn push(&mut self, token: u64, packet_id: PacketId) {
        self.set(packet_id, true);
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
        let (word, bit) = Self::slot(id);
        self.ids.get(word).is_some_and(|w| w & bit != 0)
    }

    /// Removes the acknowledged entry at the front, if any: it may go out now.
    fn pop_ready(&mut self) -> Option<PacketId> {
        let front = self.pending.front().filter(|p| p.acked)?;
        let id = front.packet_id;
        self.pending.pop_front();
        self.set(id, false);
        Some(id)
    }
}

/// A message delivered to the application's queue and not yet taken from it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Held {
    pub(crate) token: u64,
    /// The size of its PUBLISH packet.
    pub(crate) size: usize,
    /// Whether taking it acknowledges it (QoS 1/2 without manual acks).
    pub(crate) ack_on_take: bool,
}

/// Incoming state that lasts as long as the session (QoS 2, the queue) or the connection
/// (QoS 1 acks).
#[derive(Debug, Default)]
pub(crate) struct Inbound {
    pub(crate) qos2: HashMap<u16, Qos2State>,
    pubacks: OrderedAcks,
    pubrecs: OrderedAcks,
    next_token: u64,
    /// Messages delivered and not taken, in delivery order (tokens grow).
    held: VecDeque<Held>,
    held_bytes: usize,
    /// QoS 2 identifiers the server may have forgotten (a session it may have started anew).
    pub(crate) tentative: std::collections::HashSet<u16>,
}

impl Inbound {
    /// Gives back what the queues kept beyond what they hold now.
    pub(crate) fn release_memory(&mut self) {
        self.qos2.shrink_to_fit();
        self.pubacks.release_memory();
        self.pubrecs.release_memory();
        self.held.shrink_to_fit();
        self.tentative.shrink_to_fit();
    }

    /// A fresh token for a delivery.
    pub(crate) fn new_token(&mut self) -> AckToken {
        let token = self.next_token;
        self.next_token += 1;
        AckToken(token)
    }

    /// Counts a delivery of `size` bytes in the queue until [`take`](Self::take).
    pub(crate) fn hold(&mut self, token: AckToken, size: usize, ack_on_take: bool) {
        self.held.push_back(Held {
            token: token.0,
            size,
            ack_on_take,
        });
        self.held_bytes += size;
    }

    /// The application took the delivery `token` from the queue; `None` if it is not held.
    pub(crate) fn take(&mut self, token: AckToken) -> Option<Held> {
        let i = if self.held.front().is_some_and(|h| h.token == token.0) {
            0
        } else {
            self.held.binary_search_by_key(&token.0, |h| h.token).ok()?
        };
        let held = self.held.remove(i)?;
        self.held_bytes -= held.size;
        Some(held)
    }

    /// The oldest delivery still held.
    pub(crate) fn oldest_held(&self) -> Option<AckToken> {
        self.held.front().map(|h| AckToken(h.token))
    }

    /// Deliveries held: messages and bytes.
    pub(crate) fn held(&self) -> (usize, usize) {
        (self.held.len(), self.held_bytes)
    }

    /// Registers a message whose acknowledgement waits for `token`.
    pub(crate) fn expect_ack(&mut self, token: AckToken, kind: AckKind, packet_id: PacketId) {
        match kind {
            AckKind::PubAck => self.pubacks.push(token.0, packet_id),
            AckKind::PubRec => self.pubrecs.push(token.0, packet_id),
        }
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

    /// The next acknowledgement of `kind` that may go out now, in arrival order.
    pub(crate) fn next_ready(&mut self, kind: AckKind) -> Option<PacketId> {
        match kind {
            AckKind::PubAck => self.pubacks.pop_ready(),
            AckKind::PubRec => self.pubrecs.pop_ready(),
        }
    }

    /// Every acknowledgement of `kind` that may go out now, in arrival order.
    #[cfg(test)]
    fn ready(&mut self, kind: AckKind) -> Vec<PacketId> {
        std::iter::from_fn(|| self.next_ready(kind)).collect()
    }

    /// QoS 1 messages the server will send again on the next connection need no PUBACK.
    pub(crate) fn connection_lost(&mut self) {
        self.pubacks.clear();
    }

    /// Messages delivered but not released: counted against our Receive Maximum.
    pub(crate) fn unreleased(&self) -> usize {
        self.pubacks.len() + self.qos2.len()
    }

    /// Forgets the session's acknowledgement state (the session was not resumed); messages
    /// still held in the application's queue stay counted until taken.
    pub(crate) fn clear(&mut self) {
        self.qos2.clear();
        self.tentative.clear();
        self.pubacks.clear();
        self.pubrecs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    fn expect(inbound: &mut Inbound, kind: AckKind, n: u16) -> AckToken {
        let token = inbound.new_token();
        inbound.expect_ack(token, kind, id(n));
        token
    }

    #[test]
    fn held_deliveries_are_counted_until_taken_in_any_order() {
        let mut inbound = Inbound::default();
        let tokens: Vec<_> = (0..4).map(|_| inbound.new_token()).collect();
        for (i, t) in tokens.iter().enumerate() {
            inbound.hold(*t, 100 * (i + 1), i % 2 == 0);
        }
        assert_eq!(inbound.held(), (4, 1000));
        assert_eq!(inbound.take(tokens[2]).map(|h| h.size), Some(300));
        assert!(inbound.take(tokens[2]).is_none(), "taken once");
        assert_eq!(inbound.oldest_held(), Some(tokens[0]));
        assert!(inbound.take(tokens[0]).is_some_and(|h| h.ack_on_take));
        assert_eq!(inbound.held(), (2, 600));
        inbound.clear();
        assert_eq!(
            inbound.held(),
            (2, 600),
            "the queue outlives the session state"
        );
    }

    #[test]
    fn a_puback_is_pending_from_delivery_until_it_leaves_or_the_connection_drops() {
        let mut inbound = Inbound::default();
        let a = expect(&mut inbound, AckKind::PubAck, 10);
        expect(&mut inbound, AckKind::PubAck, 65_535);
        assert!(inbound.puback_pending(id(10)));
        assert!(inbound.puback_pending(id(65_535)));
        assert!(!inbound.puback_pending(id(11)));
        assert!(
            !inbound.puback_pending(id(64)),
            "same word as none, other bit"
        );
        inbound.mark(a);
        assert!(inbound.puback_pending(id(10)), "acknowledged, not sent yet");
        assert_eq!(inbound.ready(AckKind::PubAck), vec![id(10)]);
        assert!(
            !inbound.puback_pending(id(10)),
            "sent: the identifier may come again"
        );
        inbound.connection_lost();
        assert!(!inbound.puback_pending(id(65_535)));
        assert_eq!(inbound.unreleased(), 0);
    }

    #[test]
    fn acks_leave_in_arrival_order_whatever_the_application_order() {
        // [MQTT-4.6.0-2 v3.1.1 v5.0]
        let mut inbound = Inbound::default();
        let a = expect(&mut inbound, AckKind::PubAck, 10);
        let b = expect(&mut inbound, AckKind::PubAck, 11);
        let c = expect(&mut inbound, AckKind::PubAck, 12);
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
        // [MQTT-4.6.0-3 v3.1.1 v5.0]
        let mut inbound = Inbound::default();
        let q1 = expect(&mut inbound, AckKind::PubAck, 1);
        let q2 = expect(&mut inbound, AckKind::PubRec, 2);
        assert_eq!(inbound.mark(q2), Some((AckKind::PubRec, id(2))));
        assert_eq!(inbound.ready(AckKind::PubRec), vec![id(2)]);
        assert!(inbound.ready(AckKind::PubAck).is_empty());
        assert_eq!(inbound.mark(q1), Some((AckKind::PubAck, id(1))));
        assert_eq!(inbound.ready(AckKind::PubAck), vec![id(1)]);
    }
}
