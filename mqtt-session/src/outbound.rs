//! Outgoing messages: the in-flight table of QoS 1/2 flows (keyed by packet identifier, ordered
//! by send sequence) and the bounded queue of messages waiting for the window.

use std::collections::{HashMap, VecDeque};

use mqtt_proto::{PacketId, Publish};

use crate::event::PublishToken;
use crate::message::Message;
use crate::store::{OutgoingRecord, OutgoingState, QueuedRecord};

/// A message accepted by `publish` but not yet sent.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    pub(crate) token: PublishToken,
    pub(crate) message: Message,
    /// Whether the store holds it (as a queued record).
    pub(crate) stored: bool,
}

/// Outgoing state that survives connections.
#[derive(Debug, Default)]
pub(crate) struct Outbound {
    /// QoS 1/2 flows started and not complete.
    pub(crate) inflight: HashMap<u16, OutgoingRecord>,
    /// Messages waiting, oldest first.
    pub(crate) queue: VecDeque<Queued>,
    /// Sequence number of the next flow.
    pub(crate) next_seq: u64,
    /// Token of the next message.
    pub(crate) next_token: u64,
}

impl Outbound {
    /// The next unused token.
    pub(crate) fn peek_token(&self) -> PublishToken {
        PublishToken(self.next_token)
    }

    /// Notes that `token` is used, so later tokens are above it.
    pub(crate) fn reserve_token(&mut self, token: PublishToken) {
        self.next_token = self.next_token.max(token.0.saturating_add(1));
    }

    /// Starts a flow for a message with an identifier: the record to store and send.
    pub(crate) fn start(&mut self, token: PublishToken, publish: Publish) -> OutgoingRecord {
        let record = OutgoingRecord {
            seq: self.next_seq,
            token,
            state: OutgoingState::Published,
            publish,
        };
        self.next_seq += 1;
        record
    }

    pub(crate) fn insert(&mut self, id: PacketId, record: OutgoingRecord) {
        self.inflight.insert(id.get(), record);
    }

    pub(crate) fn get(&self, id: PacketId) -> Option<&OutgoingRecord> {
        self.inflight.get(&id.get())
    }

    pub(crate) fn get_mut(&mut self, id: PacketId) -> Option<&mut OutgoingRecord> {
        self.inflight.get_mut(&id.get())
    }

    pub(crate) fn remove(&mut self, id: PacketId) -> Option<OutgoingRecord> {
        self.inflight.remove(&id.get())
    }

    /// In-flight flows in the order they were first sent [MQTT-4.6.0-1].
    pub(crate) fn in_send_order(&self) -> Vec<OutgoingRecord> {
        let mut records: Vec<_> = self.inflight.values().cloned().collect();
        records.sort_by_key(|r| r.seq);
        records
    }

    /// Restores flows and queued messages loaded from a store; tokens and sequence numbers
    /// continue after them. A queued record whose token also has a flow is stale (the process
    /// stopped between writing the flow and forgetting the queued record): it is skipped, and
    /// its token returned for the store to forget.
    pub(crate) fn restore(
        &mut self,
        records: Vec<OutgoingRecord>,
        queued: Vec<QueuedRecord>,
    ) -> Vec<PublishToken> {
        for record in records {
            self.next_seq = self.next_seq.max(record.seq + 1);
            self.reserve_token(record.token);
            if let Some(id) = record.packet_id() {
                self.inflight.insert(id.get(), record);
            }
        }
        let started: std::collections::HashSet<PublishToken> =
            self.inflight.values().map(|r| r.token).collect();
        let mut stale = Vec::new();
        for record in queued {
            self.reserve_token(record.token);
            if started.contains(&record.token) {
                stale.push(record.token);
            } else {
                self.queue.push_back(Queued {
                    token: record.token,
                    message: record.message,
                    stored: true,
                });
            }
        }
        stale
    }
}
