//! The state the connections share: who is connected, and the retained messages.

use std::collections::{BTreeMap, HashMap};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqtt_proto::{
    Disconnect, DisconnectReasonCode, QoS, RetainHandling, SubAck, SubAckReasonCode, Subscribe,
    Unsubscribe,
};

use super::client::{Ack, Client, Message};
use super::outbox::{encode, Refused};
use super::Limits;

/// Why a new connection is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unavailable {
    /// As many connections are open as the limits allow.
    Full,
    /// The broker is stopping.
    Stopped,
}

/// A retained message and when it expires (5.0 Message Expiry Interval).
#[derive(Debug)]
struct Retained {
    message: Message,
    size: usize,
    expires: Option<Instant>,
}

/// Who is connected, what they subscribed to, and the retained messages.
#[derive(Debug)]
pub(super) struct Router {
    limits: Limits,
    stopped: bool,
    next_conn: u64,
    /// Every open connection's socket, to close it from another thread.
    streams: HashMap<u64, TcpStream>,
    /// Connected clients by client id.
    clients: HashMap<String, Client>,
    /// Retained messages by topic.
    retained: BTreeMap<String, Retained>,
    retained_bytes: usize,
}

/// A connection's claim on its client id; stale once another connection has taken it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Handle {
    client_id: String,
    conn: u64,
}

impl Router {
    pub(super) fn new(limits: Limits) -> Self {
        Self {
            limits,
            stopped: false,
            next_conn: 0,
            streams: HashMap::new(),
            clients: HashMap::new(),
            retained: BTreeMap::new(),
            retained_bytes: 0,
        }
    }

    /// Counts a new connection in; its number, or why it is not served.
    pub(super) fn register(&mut self, stream: &TcpStream) -> Result<u64, Unavailable> {
        if self.stopped {
            return Err(Unavailable::Stopped);
        }
        if self.streams.len() >= self.limits.max_connections {
            return Err(Unavailable::Full);
        }
        let stream = stream.try_clone().map_err(|_| Unavailable::Full)?;
        self.next_conn += 1;
        self.streams.insert(self.next_conn, stream);
        Ok(self.next_conn)
    }

    /// Forgets a connection whose threads are done.
    pub(super) fn unregister(&mut self, conn: u64) {
        self.streams.remove(&conn);
    }

    /// Connections open: accepted and not yet done.
    #[cfg(test)]
    pub(super) fn connections(&self) -> usize {
        self.streams.len()
    }

    /// Refuses new connections and closes the open ones.
    pub(super) fn stop(&mut self) {
        self.stopped = true;
        for stream in self.streams.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn shutdown(&self, conn: u64, how: Shutdown) {
        if let Some(stream) = self.streams.get(&conn) {
            let _ = stream.shutdown(how);
        }
    }

    fn client(&mut self, handle: &Handle) -> Option<&mut Client> {
        self.clients
            .get_mut(&handle.client_id)
            .filter(|client| client.conn == handle.conn)
    }

    /// Adds a client whose CONNECT was accepted and queues its CONNACK. A client connected
    /// with the same id is taken over: its connection is closed, a 5.0 client told why first
    /// ([MQTT-3.1.4-2] (3.1.1), [MQTT-3.1.4-3] (5.0)), and its will published.
    pub(super) fn connect(&mut self, client_id: String, client: Client, connack: Bytes) -> Handle {
        let handle = Handle {
            client_id: client_id.clone(),
            conn: client.conn,
        };
        let _ = client.outbox.push(connack);
        if let Some(old) = self.clients.insert(client_id, client) {
            let last = if old.version.is_v5() {
                let disconnect = Disconnect::new(DisconnectReasonCode::SessionTakenOver);
                encode(old.version, &disconnect.into())
            } else {
                None
            };
            old.outbox.close(last);
            // Ends the old connection's reading; its writer sends the DISCONNECT and closes.
            self.shutdown(old.conn, Shutdown::Read);
            if let Some(will) = old.will {
                self.publish(None, will);
            }
        }
        handle
    }

    /// Removes a client whose connection ended, publishing its will if `will`.
    pub(super) fn disconnect(&mut self, handle: &Handle, will: bool) {
        if self.client(handle).is_none() {
            return;
        }
        let Some(client) = self.clients.remove(&handle.client_id) else {
            return;
        };
        if let (true, Some(message)) = (will, client.will) {
            self.publish(None, message);
        }
    }

    /// Keeps `message` if retained, and sends it to every client with a matching
    /// subscription; `from` is the publishing connection, for No Local.
    ///
    /// A subscriber that cannot take a QoS 1/2 message is disconnected (and its will
    /// published): with clean sessions there is no other way to tell it a message was lost.
    pub(super) fn publish(&mut self, from: Option<u64>, message: Message) {
        let mut from = from;
        let mut pending = vec![message];
        while let Some(message) = pending.pop() {
            self.retain(&message);
            let mut slow = Vec::new();
            for (id, client) in &mut self.clients {
                if let Some((qos, retain)) = client.interest(from, &message) {
                    if client.deliver(&message, qos, retain).is_err() {
                        slow.push(id.clone());
                    }
                }
            }
            from = None;
            for id in slow {
                if let Some(client) = self.clients.remove(&id) {
                    self.shutdown(client.conn, Shutdown::Both);
                    pending.extend(client.will);
                }
            }
        }
    }

    /// Stores, replaces or deletes the retained message of the topic of a RETAIN 1 message;
    /// a RETAIN 0 one leaves it alone. [MQTT-3.3.1-5] [MQTT-3.3.1-7] [MQTT-3.3.1-10]
    /// [MQTT-3.3.1-11] [MQTT-3.3.1-12] (3.1.1), [MQTT-3.3.1-5] to [MQTT-3.3.1-8] (5.0).
    fn retain(&mut self, message: &Message) {
        if !message.retain() {
            return;
        }
        if let Some(old) = self.retained.remove(message.topic.as_str()) {
            self.retained_bytes -= old.size;
        }
        if message.is_empty() {
            return;
        }
        let size = message.size();
        if self.retained.len() >= self.limits.max_retained
            || self.retained_bytes.saturating_add(size) > self.limits.max_retained_bytes
        {
            return; // Full: forwarded, not kept.
        }
        let expires = message
            .properties
            .message_expiry_interval
            .and_then(|secs| Instant::now().checked_add(Duration::from_secs(secs.into())));
        self.retained_bytes += size;
        self.retained.insert(
            message.topic.as_str().to_owned(),
            Retained {
                message: message.clone(),
                size,
                expires,
            },
        );
    }

    /// Drops the retained messages whose Message Expiry Interval has passed.
    fn expire_retained(&mut self, now: Instant) {
        let mut freed = 0;
        self.retained.retain(|_, retained| {
            let keep = retained.expires.is_none_or(|at| at > now);
            if !keep {
                freed += retained.size;
            }
            keep
        });
        self.retained_bytes -= freed;
    }

    /// Adds or replaces subscriptions and answers SUBACK, then sends the retained messages
    /// they match.
    pub(super) fn subscribe(
        &mut self,
        handle: &Handle,
        subscribe: Subscribe,
    ) -> Result<(), Refused> {
        let now = Instant::now();
        self.expire_retained(now);
        let Self {
            clients, retained, ..
        } = self;
        let Some(client) = clients
            .get_mut(&handle.client_id)
            .filter(|client| client.conn == handle.conn)
        else {
            return Ok(());
        };
        let mut reason_codes = Vec::with_capacity(subscribe.filters.len());
        let mut matched = Vec::new();
        for subscription in &subscribe.filters {
            // One code per filter, in order [MQTT-3.9.3-1].
            let new = match client.add_subscription(subscription) {
                Ok(new) => new,
                Err(code) => {
                    reason_codes.push(code);
                    continue;
                }
            };
            let options = subscription.options;
            reason_codes.push(match options.qos {
                QoS::AtMostOnce => SubAckReasonCode::GrantedQoS0,
                QoS::AtLeastOnce => SubAckReasonCode::GrantedQoS1,
                QoS::ExactlyOnce => SubAckReasonCode::GrantedQoS2,
            });
            // Retained messages for the subscription: [MQTT-3.3.1-6] [MQTT-3.8.4-3] (3.1.1),
            // Retain Handling [MQTT-3.3.1-9] to [MQTT-3.3.1-11] (5.0).
            let send = match options.retain_handling {
                RetainHandling::SendAtSubscribe => true,
                RetainHandling::SendAtSubscribeIfNew => new,
                RetainHandling::DoNotSend => false,
            };
            let topics = retained
                .values()
                .filter(|r| send && subscription.filter.matches(&r.message.topic));
            for retained in topics {
                let mut message = retained.message.clone();
                // The expiry interval left [MQTT-3.3.2-6] (5.0).
                if let Some(at) = retained.expires {
                    let left = at.saturating_duration_since(now).as_secs();
                    message.properties.message_expiry_interval =
                        Some(u32::try_from(left).unwrap_or(u32::MAX));
                }
                matched.push((message, retained.message.qos.min(options.qos)));
            }
        }
        let suback = SubAck {
            packet_id: subscribe.packet_id,
            properties: Default::default(),
            reason_codes,
        };
        client.outbox.send(client.version, &suback.into())?;
        for (message, qos) in matched {
            // RETAIN 1 on messages sent for a new subscription [MQTT-3.3.1-8] (3.1.1).
            client.deliver(&message, qos, true)?;
        }
        Ok(())
    }

    /// Removes subscriptions and answers UNSUBACK.
    pub(super) fn unsubscribe(
        &mut self,
        handle: &Handle,
        unsubscribe: &Unsubscribe,
    ) -> Result<(), Refused> {
        match self.client(handle) {
            Some(client) => client.unsubscribe(unsubscribe),
            None => Ok(()),
        }
    }

    /// Advances an outbound QoS 1/2 flow on the client's acknowledgement.
    pub(super) fn acknowledge(&mut self, handle: &Handle, ack: Ack) -> Result<(), Refused> {
        match self.client(handle) {
            Some(client) => client.acknowledge(ack),
            None => Ok(()),
        }
    }
}
