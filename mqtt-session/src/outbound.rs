//! Outgoing messages: the in-flight table of QoS 1/2 flows (keyed by packet identifier, ordered
//! by send sequence) and the bounded queue of messages waiting for the window.

use std::collections::VecDeque;
use std::time::Instant;

use mqtt_proto::{PacketId, Publish};

use crate::event::PublishToken;
use crate::expiry::{Expiry, WallClock};
use crate::ids::IdMap;
use crate::message::Message;
use crate::store::{OutgoingRecord, OutgoingState, QueuedRecord};

/// A message accepted by `publish` but not yet sent.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    pub(crate) token: PublishToken,
    pub(crate) message: Message,
    /// Whether the store holds it (as a queued record).
    pub(crate) stored: bool,
    /// The outgoing record that stands for it in the store instead, when a lost session put
    /// its flow back in the queue and the queued record could not be written: removed once
    /// its new flow is recorded. Its identifier stays in use until then.
    pub(crate) replaces: Option<PacketId>,
    /// When it is no longer worth sending (its Message Expiry Interval after `publish`
    /// accepted it).
    pub(crate) expiry: Expiry,
}

/// Outgoing state that survives connections.
#[derive(Debug, Default)]
pub(crate) struct Outbound {
    /// QoS 1/2 flows started and not complete.
    pub(crate) inflight: IdMap<u16, OutgoingRecord>,
    /// When the message of each flow that has one expires, for the interval its
    /// retransmission carries.
    expiry: IdMap<u16, Expiry>,
    /// Messages waiting, oldest first.
    pub(crate) queue: VecDeque<Queued>,
    /// Flows of an earlier connection whose PUBLISH this connection has not resent yet, in
    /// send order: the server's Receive Maximum held them back [MQTT-4.9.0-2 v5.0].
    pub(crate) held: VecDeque<PacketId>,
    /// Sequence number of the next flow.
    pub(crate) next_seq: u64,
    /// Token of the next message.
    pub(crate) next_token: u64,
}

impl Outbound {
    /// Gives back what the flows' containers kept beyond what they hold now.
    pub(crate) fn release_memory(&mut self) {
        self.inflight.shrink_to_fit();
        self.expiry.shrink_to_fit();
        self.queue.shrink_to_fit();
        self.held.shrink_to_fit();
    }

    /// The next unused token.
    pub(crate) fn peek_token(&self) -> PublishToken {
        PublishToken(self.next_token)
    }

    /// Notes that `token` is used, so later tokens are above it.
    pub(crate) fn reserve_token(&mut self, token: PublishToken) {
        self.next_token = self.next_token.max(token.0.saturating_add(1));
    }

    /// Starts a flow for a message with an identifier: the record to store and send.
    pub(crate) fn start(
        &mut self,
        token: PublishToken,
        publish: Publish,
        expires_at: Option<std::time::Duration>,
    ) -> OutgoingRecord {
        let record = OutgoingRecord {
            seq: self.next_seq,
            token,
            state: OutgoingState::Published,
            publish,
            expires_at,
        };
        self.next_seq += 1;
        record
    }

    pub(crate) fn insert(&mut self, id: PacketId, record: OutgoingRecord, expiry: Expiry) {
        self.inflight.insert(id.get(), record);
        self.set_expiry(id, expiry);
    }

    fn set_expiry(&mut self, id: PacketId, expiry: Expiry) {
        if expiry == Expiry::Never {
            self.expiry.remove(&id.get());
        } else {
            self.expiry.insert(id.get(), expiry);
        }
    }

    /// When the message of a flow expires.
    pub(crate) fn expiry(&self, id: PacketId) -> Expiry {
        self.expiry.get(&id.get()).copied().unwrap_or(Expiry::Never)
    }

    pub(crate) fn get(&self, id: PacketId) -> Option<&OutgoingRecord> {
        self.inflight.get(&id.get())
    }

    pub(crate) fn get_mut(&mut self, id: PacketId) -> Option<&mut OutgoingRecord> {
        self.inflight.get_mut(&id.get())
    }

    pub(crate) fn remove(&mut self, id: PacketId) -> Option<OutgoingRecord> {
        self.held.retain(|held| *held != id);
        self.expiry.remove(&id.get());
        self.inflight.remove(&id.get())
    }

    /// Forgets every flow.
    pub(crate) fn clear_inflight(&mut self) {
        self.inflight.clear();
        self.expiry.clear();
        self.held.clear();
    }

    /// Places the deadlines of restored messages and flows on the session's clock at `now`
    /// (see [`Expiry::restored`]); before 5.0 nothing expires.
    pub(crate) fn settle_expiry(&mut self, now: Instant, wall: Option<WallClock>, v5: bool) {
        let settle = |expiry: Expiry, interval: Option<u32>| {
            if v5 {
                expiry.restored(now, wall, interval)
            } else {
                Expiry::Never
            }
        };
        for queued in &mut self.queue {
            let interval = queued.message.properties.message_expiry_interval;
            queued.expiry = settle(queued.expiry, interval);
        }
        let mut flows: Vec<(u16, Expiry)> = self.expiry.iter().map(|(k, v)| (*k, *v)).collect();
        for (key, expiry) in &mut flows {
            let interval = self
                .inflight
                .get(key)
                .and_then(|r| r.publish.properties.message_expiry_interval);
            *expiry = settle(*expiry, interval);
        }
        self.expiry = flows
            .into_iter()
            .filter(|(_, e)| *e != Expiry::Never)
            .collect();
    }

    /// Flows whose PUBLISH or PUBREL was sent on this connection and is not complete.
    pub(crate) fn open(&self) -> usize {
        self.inflight.len().saturating_sub(self.held.len())
    }

    /// In-flight flows in the order they were first sent [MQTT-4.6.0-1 v3.1.1 v5.0].
    pub(crate) fn in_send_order(&self) -> Vec<OutgoingRecord> {
        let mut records: Vec<_> = self.inflight.values().cloned().collect();
        records.sort_by_key(|r| r.seq);
        records
    }

    /// Restores flows and queued messages loaded from a store; tokens and sequence numbers
    /// continue after them. A queued record whose token also has a flow is stale (the process
    /// stopped between writing the flow and forgetting the queued record): it is skipped, and
    /// its token returned for the store to forget.
    ///
    /// A flow whose token is above that of a queued message was put back in the queue by a
    /// lost session while its queued record could not be written (its flow's record stood
    /// for it): it is queued again, in publish order, still standing on that record.
    pub(crate) fn restore(
        &mut self,
        records: Vec<OutgoingRecord>,
        queued: Vec<QueuedRecord>,
    ) -> Vec<PublishToken> {
        let flow_tokens: std::collections::HashSet<PublishToken> =
            records.iter().map(|r| r.token).collect();
        let first_queued = queued
            .iter()
            .map(|r| r.token)
            .filter(|t| !flow_tokens.contains(t))
            .min();
        for record in records {
            self.next_seq = self.next_seq.max(record.seq + 1);
            self.reserve_token(record.token);
            let Some(id) = record.packet_id() else {
                continue;
            };
            if first_queued.is_some_and(|first| record.token > first) {
                self.queue.push_back(requeued(record, false, Some(id)));
            } else {
                let expiry = Expiry::Restored(record.expires_at);
                self.insert(id, record, expiry);
            }
        }
        let mut stale = Vec::new();
        for record in queued {
            self.reserve_token(record.token);
            if flow_tokens.contains(&record.token) {
                stale.push(record.token);
            } else {
                self.queue.push_back(Queued {
                    token: record.token,
                    message: record.message,
                    stored: true,
                    replaces: None,
                    expiry: Expiry::Restored(record.expires_at),
                });
            }
        }
        self.queue.make_contiguous().sort_by_key(|q| q.token);
        stale
    }
}

/// A restored flow's message queued again as a new message.
fn requeued(record: OutgoingRecord, stored: bool, replaces: Option<PacketId>) -> Queued {
    let expiry = Expiry::Restored(record.expires_at);
    let p = record.publish;
    let mut message = Message::with_topic(p.topic, p.payload).qos(p.qos_pid.qos());
    message.retain = p.retain;
    message.properties = p.properties;
    Queued {
        token: record.token,
        message,
        stored,
        replaces,
        expiry,
    }
}
