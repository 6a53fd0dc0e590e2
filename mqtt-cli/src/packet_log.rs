//! `-d`: a line on stdout for each packet sent or received, worded as mosquitto_pub and
//! mosquitto_sub word theirs:
//!
//! ```text
//! Client mqtt_pub_4242 sending CONNECT
//! Client mqtt_pub_4242 received CONNACK (0)
//! Client mqtt_pub_4242 sending PUBLISH (d0, q1, r0, m1, 'a/b', ... (5 bytes))
//! Client mqtt_pub_4242 received PUBACK (Mid: 1, RC:0)
//! Client mqtt_pub_4242 sending DISCONNECT
//! ```
//!
//! The client library reports what came of a request, not the packets that carried it, so
//! the lines are written from both: a QoS 2 exchange is written whole when it completes, in
//! the order mosquitto prints it. Message ids are counted as mosquitto counts them (QoS 0
//! messages take one too); they are the packet identifiers of a fresh session, whose
//! identifiers the library hands out in the same order. PINGREQ and PINGRESP are not shown.

use std::cell::Cell;
use std::fmt;
use std::io::Write;

use mqtt_tokio::proto::SubAckReasonCode;
use mqtt_tokio::{Error, Message, Publish, PublishOutcome, QoS, Subscription};

/// Writes the `-d` lines of one client; does nothing without `-d`.
#[derive(Debug)]
pub(crate) struct PacketLog {
    /// The client id the lines name; `None` without `-d`.
    client: Option<String>,
    /// The last message id handed out.
    last_mid: Cell<u16>,
}

impl PacketLog {
    /// The log of the client `client_id`, written only if `debug`.
    pub(crate) fn new(debug: bool, client_id: &str) -> Self {
        Self {
            client: debug.then(|| client_id.to_owned()),
            last_mid: Cell::new(0),
        }
    }

    /// The next message id: 1, 2, ... 65535, then 1 again.
    pub(crate) fn next_mid(&self) -> u16 {
        let mid = self.last_mid.get().checked_add(1).unwrap_or(1);
        self.last_mid.set(mid);
        mid
    }

    fn line(&self, what: fmt::Arguments<'_>) {
        if let Some(client) = &self.client {
            // A closed stdout is noticed where messages are written.
            let _ = writeln!(std::io::stdout().lock(), "Client {client} {what}");
        }
    }

    /// CONNECT is on its way.
    pub(crate) fn connect(&self) {
        self.line(format_args!("sending CONNECT"));
    }

    /// The broker answered with this CONNACK code (0: accepted).
    pub(crate) fn connack(&self, code: u8) {
        self.line(format_args!("received CONNACK ({code})"));
    }

    /// DISCONNECT is on its way.
    pub(crate) fn disconnect(&self) {
        self.line(format_args!("sending DISCONNECT"));
    }

    /// `message` is published with message id `mid`.
    pub(crate) fn publish(&self, mid: u16, message: &Message) {
        self.line(format_args!(
            "sending PUBLISH (d0, q{}, r{}, m{mid}, '{}', ... ({} bytes))",
            message.qos as u8,
            u8::from(message.retain),
            message.topic.as_str(),
            message.payload.len()
        ));
    }

    /// The acknowledgements that ended the publish of message `mid` at `qos`.
    pub(crate) fn published(&self, mid: u16, qos: QoS, result: &Result<PublishOutcome, Error>) {
        match (qos, result) {
            (_, Ok(PublishOutcome::Acknowledged { reason, .. })) => {
                self.puback(mid, reason.as_u8());
            }
            (QoS::AtLeastOnce, Ok(PublishOutcome::Rejected { reason, .. })) => {
                self.puback(mid, reason.as_u8());
            }
            (_, Ok(PublishOutcome::Rejected { .. })) => {
                self.line(format_args!("received PUBREC (Mid: {mid})"));
            }
            (_, Ok(PublishOutcome::Completed { reason, .. })) => {
                self.line(format_args!("received PUBREC (Mid: {mid})"));
                self.line(format_args!("sending PUBREL (m{mid})"));
                self.line(format_args!(
                    "received PUBCOMP (Mid: {mid}, RC:{})",
                    reason.as_u8()
                ));
            }
            _ => {}
        }
    }

    fn puback(&self, mid: u16, code: u8) {
        self.line(format_args!("received PUBACK (Mid: {mid}, RC:{code})"));
    }

    /// A message arrived, and the library acknowledged it.
    pub(crate) fn received(&self, publish: &Publish) {
        let mid = publish.packet_id().map_or(0, |id| id.get());
        self.line(format_args!(
            "received PUBLISH (d{}, q{}, r{}, m{mid}, '{}', ... ({} bytes))",
            u8::from(publish.dup),
            publish.qos() as u8,
            u8::from(publish.retain),
            publish.topic.as_str(),
            publish.payload.len()
        ));
        match publish.qos() {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.line(format_args!("sending PUBACK (m{mid}, rc0)")),
            QoS::ExactlyOnce => {
                self.line(format_args!("sending PUBREC (m{mid}, rc0)"));
                self.line(format_args!("received PUBREL (Mid: {mid})"));
                self.line(format_args!("sending PUBCOMP (m{mid})"));
            }
        }
    }

    /// One SUBSCRIBE with message id `mid` carries `subscriptions`; mosquitto writes a line
    /// for each. `mqtt sub` sets no subscription options besides the QoS.
    pub(crate) fn subscribe(&self, mid: u16, subscriptions: &[Subscription]) {
        for subscription in subscriptions {
            self.line(format_args!(
                "sending SUBSCRIBE (Mid: {mid}, Topic: {}, QoS: {}, Options: 0x00)",
                subscription.filter.as_str(),
                subscription.options.qos as u8
            ));
        }
    }

    /// The SUBACK of SUBSCRIBE `mid`; mosquitto_sub follows it with the granted QoS (or
    /// refusal code) of each filter.
    pub(crate) fn suback(&self, mid: u16, results: &[Result<QoS, SubAckReasonCode>]) {
        if self.client.is_none() {
            return;
        }
        self.line(format_args!("received SUBACK"));
        let codes: Vec<String> = results
            .iter()
            .map(|result| match result {
                Ok(qos) => (*qos as u8).to_string(),
                Err(code) => code.as_u8().to_string(),
            })
            .collect();
        let _ = writeln!(
            std::io::stdout().lock(),
            "Subscribed (mid: {mid}): {}",
            codes.join(", ")
        );
    }

    /// One UNSUBSCRIBE with message id `mid` carries `filters`, a line each.
    pub(crate) fn unsubscribe(&self, mid: u16, filters: &[String]) {
        for filter in filters {
            self.line(format_args!(
                "sending UNSUBSCRIBE (Mid: {mid}, Topic: {filter})"
            ));
        }
    }

    /// The UNSUBACK arrived.
    pub(crate) fn unsuback(&self) {
        self.line(format_args!("received UNSUBACK"));
    }
}
