//! Session persistence. The session writes through a [`SessionStore`] *before* it transmits
//! the packet a record stands for, and records each QoS 1/2 message that has to wait in the
//! queue before `publish` returns, so a restarted process resumes every flow and sends every
//! message it had accepted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mqtt_proto::{PacketId, Publish, SubscribeProperties, Subscription, TopicFilter};

use crate::event::PublishToken;
use crate::message::Message;

#[cfg(feature = "file-store")]
mod file;
#[cfg(feature = "file-store")]
pub use file::FileStore;

/// Where an outgoing QoS 1/2 flow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutgoingState {
    /// PUBLISH sent (or about to be); waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published,
    /// PUBREL sent (or about to be); waiting for PUBCOMP.
    Released,
}

/// One outgoing QoS 1/2 message in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRecord {
    /// Send order: flows are resent in this order after a reconnect [MQTT-4.6.0-1 v3.1.1 v5.0].
    pub seq: u64,
    /// The token `publish` returned.
    pub token: PublishToken,
    /// Where the flow stands.
    pub state: OutgoingState,
    /// The message with its packet identifier and full topic (never a topic alias), and the
    /// Message Expiry Interval it was first sent with.
    pub publish: Publish,
    /// When the message expires, as time since the Unix epoch (see
    /// [`QueuedRecord::expires_at`]). A flow is never dropped for it, since its PUBLISH was
    /// sent; a retransmission carries the interval left.
    pub expires_at: Option<Duration>,
}

impl OutgoingRecord {
    /// The packet identifier of the flow.
    pub fn packet_id(&self) -> Option<PacketId> {
        self.publish.packet_id()
    }
}

/// A QoS 1/2 message accepted by `publish` and waiting behind the in-flight window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecord {
    /// The token `publish` returned; tokens grow in publish order.
    pub token: PublishToken,
    /// The message as published.
    pub message: Message,
    /// When the message expires (its 5.0 Message Expiry Interval after `publish` accepted
    /// it), as time since the Unix epoch, converted with the wall clock the session was given
    /// ([`Session::handle_wall_clock`](crate::Session::handle_wall_clock)). `None` if it does
    /// not expire, or if the session had no wall clock when it wrote the record: after a
    /// restart such a message counts its interval again from the restart.
    pub expires_at: Option<Duration>,
}

/// A subscription the server granted, kept so that the session can subscribe again when a
/// server has lost it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    /// The filter and the options it was asked for with.
    pub subscription: Subscription,
    /// The 5.0 properties it was asked for with (subscription identifier, user properties).
    pub properties: SubscribeProperties,
    /// Whether the server is known to hold it: false while a resubscription asking for it is
    /// unanswered, so that a process restarted meanwhile asks again even if the server now has
    /// a session (one the interrupted resubscription created).
    pub confirmed: bool,
}

/// A stored record that could not be read back (torn by a crash, or corrupted on disk). The
/// store moves it aside instead of loading it, so that every intact record still loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// Where the record was (file, and offset within it).
    pub source: String,
    /// Why it could not be read.
    pub reason: String,
    /// Where its bytes were kept for inspection, if they could be.
    pub kept_at: Option<std::path::PathBuf>,
}

/// Everything a store holds, as loaded after a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredSession {
    /// Outgoing flows in send order.
    pub outgoing: Vec<OutgoingRecord>,
    /// Identifiers of incoming QoS 2 messages acknowledged with PUBREC and not yet released.
    pub incoming: Vec<PacketId>,
    /// Queued messages in token order. A token that also has an outgoing record is one whose
    /// flow had started when the process stopped: the outgoing record wins.
    pub queued: Vec<QueuedRecord>,
    /// Records that could not be read and were moved aside; the session reports each as
    /// [`Event::RecordSetAside`](crate::Event::RecordSetAside).
    pub set_aside: Vec<SetAside>,
    /// Active subscriptions, keyed by filter (the last record of a filter wins).
    pub subscriptions: Vec<SubscriptionRecord>,
}

/// Why the store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing failed.
    #[error("session store I/O error: {0}")]
    Io(String),
    /// Stored data could not be understood.
    #[error("session store is corrupt: {0}")]
    Corrupt(String),
    /// Another store (in this process or another) has the same directory open: two sessions
    /// writing one store would lose and duplicate each other's messages.
    #[error("session store {0} is in use by another client")]
    Locked(String),
}

/// Durable storage of session state.
///
/// Writes are grouped: the session makes its writes (each before the packet it stands for is
/// produced) and then calls [`commit`](Self::commit) once before it hands any bytes to the
/// transport, so that one sync covers a whole batch. A store must make every write before a
/// successful `commit` survive a crash; writes after the last commit may be lost. An error
/// from a write or from `commit` stops the transmission that depended on it.
pub trait SessionStore: Send {
    /// Records (or updates) an outgoing flow.
    fn put_outgoing(&mut self, record: &OutgoingRecord) -> Result<(), StoreError>;
    /// Forgets an outgoing flow once it completed.
    fn remove_outgoing(&mut self, packet_id: PacketId) -> Result<(), StoreError>;
    /// Records an incoming QoS 2 identifier before PUBREC is sent.
    fn put_incoming(&mut self, packet_id: PacketId) -> Result<(), StoreError>;
    /// Forgets an incoming QoS 2 identifier before PUBCOMP is sent.
    fn remove_incoming(&mut self, packet_id: PacketId) -> Result<(), StoreError>;
    /// Records a QoS 1/2 message that waits in the queue.
    fn put_queued(&mut self, record: &QueuedRecord) -> Result<(), StoreError>;
    /// Forgets a queued message: its flow started (after its outgoing record was written), or
    /// it was dropped.
    fn remove_queued(&mut self, token: PublishToken) -> Result<(), StoreError>;
    /// Records (or replaces) the active subscription to a filter.
    fn put_subscription(&mut self, record: &SubscriptionRecord) -> Result<(), StoreError>;
    /// Forgets the subscription to a filter (unsubscribed, or refused).
    fn remove_subscription(&mut self, filter: &TopicFilter) -> Result<(), StoreError>;
    /// Reads everything stored.
    fn load(&mut self) -> Result<StoredSession, StoreError>;
    /// Forgets everything (the session ended).
    fn clear(&mut self) -> Result<(), StoreError>;
    /// Makes every write since the last commit durable. The default does nothing, for stores
    /// whose writes are durable (or volatile) as soon as they return.
    fn commit(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A store in memory, shared by its clones: a new `Session` given a clone of the store used
/// by one that was dropped resumes its flows, as after a restart.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<MemoryInner>>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    outgoing: BTreeMap<u16, OutgoingRecord>,
    incoming: BTreeMap<u16, ()>,
    queued: BTreeMap<u64, QueuedRecord>,
    subscriptions: BTreeMap<String, SubscriptionRecord>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut MemoryInner) -> T) -> Result<T, StoreError> {
        let mut guard = self
            .inner
            .lock()
            .map_err(|_| StoreError::Io("memory store lock poisoned".into()))?;
        Ok(f(&mut guard))
    }
}

impl SessionStore for MemoryStore {
    fn put_outgoing(&mut self, record: &OutgoingRecord) -> Result<(), StoreError> {
        let id = record
            .packet_id()
            .ok_or_else(|| StoreError::Corrupt("QoS 0 message in the store".into()))?;
        self.with(|s| {
            s.outgoing.insert(id.get(), record.clone());
        })
    }

    fn remove_outgoing(&mut self, packet_id: PacketId) -> Result<(), StoreError> {
        self.with(|s| {
            s.outgoing.remove(&packet_id.get());
        })
    }

    fn put_incoming(&mut self, packet_id: PacketId) -> Result<(), StoreError> {
        self.with(|s| {
            s.incoming.insert(packet_id.get(), ());
        })
    }

    fn remove_incoming(&mut self, packet_id: PacketId) -> Result<(), StoreError> {
        self.with(|s| {
            s.incoming.remove(&packet_id.get());
        })
    }

    fn put_queued(&mut self, record: &QueuedRecord) -> Result<(), StoreError> {
        self.with(|s| {
            s.queued.insert(record.token.0, record.clone());
        })
    }

    fn remove_queued(&mut self, token: PublishToken) -> Result<(), StoreError> {
        self.with(|s| {
            s.queued.remove(&token.0);
        })
    }

    fn put_subscription(&mut self, record: &SubscriptionRecord) -> Result<(), StoreError> {
        let filter = record.subscription.filter.as_str().to_owned();
        self.with(|s| {
            s.subscriptions.insert(filter, record.clone());
        })
    }

    fn remove_subscription(&mut self, filter: &TopicFilter) -> Result<(), StoreError> {
        self.with(|s| {
            s.subscriptions.remove(filter.as_str());
        })
    }

    fn load(&mut self) -> Result<StoredSession, StoreError> {
        self.with(|s| {
            let mut outgoing: Vec<_> = s.outgoing.values().cloned().collect();
            outgoing.sort_by_key(|r| r.seq);
            StoredSession {
                outgoing,
                incoming: s
                    .incoming
                    .keys()
                    .filter_map(|id| PacketId::new(*id))
                    .collect(),
                queued: s.queued.values().cloned().collect(),
                set_aside: Vec::new(),
                subscriptions: s.subscriptions.values().cloned().collect(),
            }
        })
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        self.with(|s| {
            s.outgoing.clear();
            s.incoming.clear();
            s.queued.clear();
            s.subscriptions.clear();
        })
    }
}
