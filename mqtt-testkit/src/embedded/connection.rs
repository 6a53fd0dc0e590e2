//! One client connection: a thread that reads its packets and answers them, next to a thread
//! that writes its outbox.

use std::collections::HashSet;
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::num::{NonZeroU16, NonZeroU32};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mqtt_proto::{
    ConnAck, Connect, ConnectReasonCode, DecodeError, DecodeErrorKind, Decoder, Disconnect,
    DisconnectReasonCode, MqttString, Packet, PacketId, ProtocolVersion, PubAck, PubComp, PubRec,
    PubRelReasonCode, Publish, QosPid,
};

use super::client::{Ack, Client, Message};
use super::outbox::{encode, write_loop, Outbox, Refused};
use super::router::Handle;
use super::{Limits, Shared};

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client sent DISCONNECT: its will is discarded unless a 5.0 client asked for it
    /// (reason 0x04) [MQTT-3.14.4-3].
    Disconnect { will: bool },
    /// The CONNECT was refused with a CONNACK.
    Refused,
    /// The network, the peer or the broker closed it: the will is published
    /// [MQTT-3.1.2-8]. A 5.0 client is sent DISCONNECT with the reason, if there is one.
    Closed(Option<DisconnectReasonCode>),
}

impl From<Refused> for End {
    /// The client does not take its own packets (acknowledgements) fast enough, or the
    /// socket failed: close.
    fn from(_: Refused) -> Self {
        Self::Closed(None)
    }
}

/// The reading side of one connection.
struct Connection {
    stream: TcpStream,
    conn: u64,
    shared: Arc<Shared>,
    limits: Limits,
    outbox: Arc<Outbox>,
    version: ProtocolVersion,
    decoder: Decoder,
    buf: BytesMut,
    /// When the bytes of an incomplete packet started to arrive.
    partial_since: Option<Instant>,
    /// QoS 2 packet ids received and not yet released by PUBREL: a PUBLISH with one of them
    /// is the same message again, and is not forwarded twice.
    unreleased: HashSet<PacketId>,
}

/// Serves one accepted connection until it ends, then forgets it.
pub(super) fn serve(stream: TcpStream, conn: u64, shared: &Arc<Shared>) {
    let limits = shared.limits;
    let outbox = Arc::new(Outbox::new(
        limits.max_queued_packets,
        limits.max_queued_bytes,
    ));
    let writer = stream.try_clone().and_then(|socket| {
        let outbox = outbox.clone();
        thread::Builder::new()
            .name(format!("mqtt-embedded-{conn}-write"))
            .spawn(move || write_loop(&socket, &outbox, limits.write_timeout))
    });
    if let Ok(writer) = writer {
        let mut connection = Connection {
            stream,
            conn,
            shared: shared.clone(),
            limits,
            outbox,
            version: ProtocolVersion::V5,
            // Any version's CONNECT decodes with the 5.0 decoder; the version is set from it.
            decoder: Decoder::new(ProtocolVersion::V5).with_max_packet_size(limits.max_packet_size),
            buf: BytesMut::new(),
            partial_since: None,
            unreleased: HashSet::new(),
        };
        let (handle, end) = connection.run();
        connection.close(handle.as_ref(), end);
        let _ = writer.join();
    }
    shared.router().unregister(conn);
}

impl Connection {
    /// Reads CONNECT, then every packet until the connection ends; the client's handle if it
    /// connected, and how it ended.
    fn run(&mut self) -> (Option<Handle>, End) {
        // The first packet is CONNECT [MQTT-3.1.0-1].
        let deadline = Instant::now() + self.limits.connect_timeout;
        let connect = match self.read_packet(Some(deadline)) {
            Ok(Packet::Connect(connect)) => connect,
            Ok(_) => return (None, End::Closed(None)),
            Err(DecodeFailure::UnsupportedLevel) => {
                // 3.1.1 return code 1, understood by every version.
                self.refuse(
                    ProtocolVersion::V3_1_1,
                    ConnectReasonCode::UnsupportedProtocolVersion,
                );
                return (None, End::Refused);
            }
            Err(DecodeFailure::End(end)) => return (None, end),
        };
        let keep_alive = (connect.keep_alive > 0)
            .then(|| Duration::from_millis(u64::from(connect.keep_alive) * 1500));
        let handle = match self.accept(*connect) {
            Ok(handle) => handle,
            Err(end) => return (None, end),
        };
        loop {
            // A client silent for 1.5 times its keep alive is closed: [MQTT-3.1.2-24]
            // (3.1.1), [MQTT-3.1.2-22] (5.0).
            let deadline = keep_alive.map(|interval| Instant::now() + interval);
            let packet = match self.read_packet(deadline) {
                Ok(packet) => packet,
                Err(DecodeFailure::End(end)) => return (Some(handle), end),
                Err(DecodeFailure::UnsupportedLevel) => {
                    return (
                        Some(handle),
                        End::Closed(Some(DisconnectReasonCode::ProtocolError)),
                    )
                }
            };
            if let Err(end) = self.handle(&handle, packet) {
                return (Some(handle), end);
            }
        }
    }

    /// Ends the connection: removes the client, publishing its will unless DISCONNECT said
    /// otherwise, and has the writer close the socket once a 5.0 client was told the reason.
    fn close(&self, handle: Option<&Handle>, end: End) {
        let (will, reason) = match end {
            End::Disconnect { will } => (will, None),
            End::Refused => (false, None),
            End::Closed(reason) => (true, reason),
        };
        let mut last = None;
        if let Some(handle) = handle {
            self.shared.router().disconnect(handle, will);
            if let (Some(reason), true) = (reason, self.version.is_v5()) {
                last = encode(self.version, &Disconnect::new(reason).into());
            }
        }
        self.outbox.close(last);
    }

    /// Accepts a CONNECT: registers the client and queues CONNACK. Any credentials are
    /// accepted.
    fn accept(&mut self, connect: Connect) -> Result<Handle, End> {
        let version = connect.protocol;
        self.version = version;
        self.decoder.set_version(version);
        let v5 = version.is_v5();
        if v5 && connect.properties.authentication_method.is_some() {
            self.refuse(version, ConnectReasonCode::BadAuthenticationMethod);
            return Err(End::Refused);
        }
        let mut connack = ConnAck::accepted(false);
        let mut client_id = connect.client_id.as_str().to_owned();
        if client_id.is_empty() {
            // 3.1.1 allows an empty id with a clean session only [MQTT-3.1.3-8]; 3.1 never.
            if version == ProtocolVersion::V3_1 || (!v5 && !connect.clean_start) {
                self.refuse(version, ConnectReasonCode::ClientIdentifierNotValid);
                return Err(End::Refused);
            }
            client_id = format!("embedded-{}", self.conn);
            if v5 {
                // [MQTT-3.2.2-16]
                connack.properties.assigned_client_identifier = MqttString::new(&client_id).ok();
            }
        }
        let mut client = Client::new(self.conn, version, self.outbox.clone(), self.limits);
        client.will = connect.will.map(Message::from_will);
        if v5 {
            let asked = &connect.properties;
            if let Some(max) = asked.maximum_packet_size {
                client.max_packet_size = usize::try_from(max.get()).unwrap_or(usize::MAX);
            }
            if let Some(max) = asked.receive_maximum {
                client.receive_maximum = client.receive_maximum.min(usize::from(max.get()));
            }
            let props = &mut connack.properties;
            if asked.session_expiry_interval.is_some_and(|secs| secs > 0) {
                // Sessions end with their connection.
                props.session_expiry_interval = Some(0);
            }
            props.receive_maximum = NonZeroU16::new(self.limits.max_inflight);
            props.maximum_packet_size = u32::try_from(self.limits.max_packet_size)
                .ok()
                .and_then(NonZeroU32::new);
            props.subscription_identifiers_available = Some(false);
            props.shared_subscription_available = Some(false);
        }
        // Clean sessions only: Session Present 0, [MQTT-3.2.2-1] (3.1.1), [MQTT-3.2.2-2] (5.0).
        let connack = encode(version, &connack.into()).ok_or(End::Closed(None))?;
        Ok(self.shared.router().connect(client_id, client, connack))
    }

    /// Answers CONNECT with a refusing CONNACK, then closes.
    fn refuse(&self, version: ProtocolVersion, reason_code: ConnectReasonCode) {
        let connack = ConnAck {
            reason_code,
            ..ConnAck::accepted(false)
        };
        self.outbox.close(encode(version, &connack.into()));
    }

    /// Handles one packet after CONNECT; `Err` ends the connection.
    fn handle(&mut self, handle: &Handle, packet: Packet) -> Result<(), End> {
        let v5 = self.version.is_v5();
        match packet {
            Packet::Publish(publish) => self.publish(publish)?,
            Packet::PubAck(ack) => self.acknowledge(handle, Ack::PubAck(ack.packet_id))?,
            Packet::PubRec(rec) => {
                let accepted = rec.reason_code.is_success();
                self.acknowledge(handle, Ack::PubRec(rec.packet_id, accepted))?;
            }
            Packet::PubComp(comp) => self.acknowledge(handle, Ack::PubComp(comp.packet_id))?,
            Packet::PubRel(rel) => {
                // The message is released: its id is new again [MQTT-4.3.3-2] (3.1.1).
                let known = self.unreleased.remove(&rel.packet_id);
                let mut comp = PubComp::new(rel.packet_id);
                if !known && v5 {
                    comp.reason_code = PubRelReasonCode::PacketIdentifierNotFound;
                }
                self.send(comp.into())?;
            }
            Packet::Subscribe(subscribe) => {
                if subscribe.properties.subscription_identifier.is_some() {
                    // The CONNACK said they are not available.
                    return Err(End::Closed(Some(
                        DisconnectReasonCode::SubscriptionIdentifiersNotSupported,
                    )));
                }
                self.shared.router().subscribe(handle, subscribe)?;
            }
            Packet::Unsubscribe(unsubscribe) => {
                self.shared.router().unsubscribe(handle, &unsubscribe)?;
            }
            // [MQTT-3.12.4-1]
            Packet::PingReq => self.send(Packet::PingResp)?,
            Packet::Disconnect(disconnect) => {
                let will =
                    disconnect.reason_code == DisconnectReasonCode::DisconnectWithWillMessage;
                return Err(End::Disconnect { will });
            }
            // A second CONNECT [MQTT-3.1.0-2], AUTH (no authentication method was accepted),
            // or a packet only a server sends.
            _ => return Err(End::Closed(Some(DisconnectReasonCode::ProtocolError))),
        }
        Ok(())
    }

    /// Forwards a PUBLISH and acknowledges it as its QoS asks [MQTT-3.3.4-1].
    fn publish(&mut self, publish: Publish) -> Result<(), End> {
        if publish.properties.topic_alias.is_some() {
            // The CONNACK offered none [MQTT-3.2.2-18] (5.0).
            return Err(End::Closed(Some(DisconnectReasonCode::TopicAliasInvalid)));
        }
        let qos_pid = publish.qos_pid;
        let message = Message::from_publish(publish);
        match qos_pid {
            QosPid::AtMostOnce => self.forward(message),
            QosPid::AtLeastOnce(id) => {
                self.forward(message);
                self.send(PubAck::new(id).into())?;
            }
            QosPid::ExactlyOnce(id) => {
                // Until PUBREL, the same id is the same message: PUBREC again, forward
                // nothing [MQTT-4.3.3-2] (3.1.1), [MQTT-4.3.3-10] (5.0).
                if !self.unreleased.contains(&id) {
                    // 5.0: the Receive Maximum the CONNACK announced. Before 5.0 the packet id
                    // space is the only bound.
                    let max = usize::from(self.limits.max_inflight);
                    if self.version.is_v5() && self.unreleased.len() >= max {
                        return Err(End::Closed(Some(
                            DisconnectReasonCode::ReceiveMaximumExceeded,
                        )));
                    }
                    self.unreleased.insert(id);
                    self.forward(message);
                }
                self.send(PubRec::new(id).into())?;
            }
        }
        Ok(())
    }

    fn forward(&self, message: Message) {
        self.shared.router().publish(Some(self.conn), message);
    }

    fn acknowledge(&self, handle: &Handle, ack: Ack) -> Result<(), Refused> {
        self.shared.router().acknowledge(handle, ack)
    }

    /// Queues a packet of the broker's own (an acknowledgement or PINGRESP).
    fn send(&self, packet: Packet) -> Result<(), Refused> {
        self.outbox.send(self.version, &packet)
    }

    /// Reads the next packet; an error ends the connection. `deadline` bounds the wait for
    /// a packet to start, the packet timeout its completion.
    fn read_packet(&mut self, deadline: Option<Instant>) -> Result<Packet, DecodeFailure> {
        let mut chunk = [0u8; 8 * 1024];
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(packet)) => {
                    self.partial_since = None;
                    return Ok(packet);
                }
                Ok(None) => {}
                Err(error) => return Err(DecodeFailure::from(error)),
            }
            let now = Instant::now();
            if !self.buf.is_empty() {
                self.partial_since.get_or_insert(now);
            }
            // The earlier of the keep alive's deadline and the incomplete packet's.
            let packet_deadline = self
                .partial_since
                .map(|since| since + self.limits.packet_timeout);
            let (deadline, reason) = match (deadline, packet_deadline) {
                (Some(idle), Some(packet)) if packet < idle => (Some(packet), None),
                (Some(idle), _) => (Some(idle), Some(DisconnectReasonCode::KeepAliveTimeout)),
                (None, packet) => (packet, None),
            };
            let timeout = match deadline {
                Some(at) if at <= now => return Err(DecodeFailure::End(End::Closed(reason))),
                Some(at) => Some(at - now),
                None => None,
            };
            if self.stream.set_read_timeout(timeout).is_err() {
                return Err(DecodeFailure::End(End::Closed(None)));
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(DecodeFailure::End(End::Closed(None))),
                Ok(n) => self
                    .buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(error)
                    if matches!(
                        error.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(_) => return Err(DecodeFailure::End(End::Closed(None))),
            }
        }
    }
}

/// Why no packet was read.
enum DecodeFailure {
    /// A CONNECT of a protocol level this broker does not speak.
    UnsupportedLevel,
    /// The connection ends.
    End(End),
}

impl From<DecodeError> for DecodeFailure {
    fn from(error: DecodeError) -> Self {
        let reason = match error.kind() {
            DecodeErrorKind::UnsupportedProtocolLevel(_) => return Self::UnsupportedLevel,
            DecodeErrorKind::PacketTooLarge { .. } => DisconnectReasonCode::PacketTooLarge,
            _ => DisconnectReasonCode::MalformedPacket,
        };
        Self::End(End::Closed(Some(reason)))
    }
}
