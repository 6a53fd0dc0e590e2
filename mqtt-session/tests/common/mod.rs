//! A scripted server for deterministic session tests: it decodes what the session sends and
//! feeds it packets, with virtual time.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use bytes::BytesMut;
use mqtt_proto::{
    ConnAck, ConnAckProperties, ConnectReasonCode, Decoder, Packet, PacketId, ProtocolVersion,
    Publish, QosPid, TopicName,
};
use mqtt_session::{Config, Event, Session};

/// A session under test and the server side of its connection.
pub struct Pair {
    pub session: Session,
    pub now: Instant,
    pub version: ProtocolVersion,
    decoder: Decoder,
    wire: BytesMut,
}

pub fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

pub fn topic(s: &str) -> TopicName {
    TopicName::new(s).unwrap()
}

pub fn config(version: ProtocolVersion) -> Config {
    Config::new("test-client").unwrap().version(version)
}

impl Pair {
    pub fn new(config: Config) -> Self {
        let version = config.version;
        Self::with_session(Session::new(config), version)
    }

    pub fn with_session(session: Session, version: ProtocolVersion) -> Self {
        Self {
            session,
            now: Instant::now(),
            version,
            decoder: Decoder::new(version),
            wire: BytesMut::new(),
        }
    }

    /// Opens a transport and returns the CONNECT the session sent.
    pub fn open(&mut self) -> mqtt_proto::Connect {
        self.session.handle_connected(self.now);
        match self.sent().as_slice() {
            [Packet::Connect(c)] => (**c).clone(),
            other => panic!("expected CONNECT, got {other:?}"),
        }
    }

    /// Opens a transport and accepts it with a CONNACK.
    pub fn connect(&mut self, session_present: bool) -> Vec<Event> {
        self.connect_with(session_present, ConnAckProperties::default())
    }

    pub fn connect_with(
        &mut self,
        session_present: bool,
        properties: ConnAckProperties,
    ) -> Vec<Event> {
        self.open();
        self.deliver(Packet::from(ConnAck {
            session_present,
            reason_code: ConnectReasonCode::Success,
            properties,
        }));
        self.events()
    }

    /// Packets the session has sent since the last call.
    pub fn sent(&mut self) -> Vec<Packet> {
        self.session.poll_transmit(&mut self.wire);
        let mut packets = Vec::new();
        while let Some(p) = self
            .decoder
            .decode(&mut self.wire)
            .expect("session sent a malformed packet")
        {
            packets.push(p);
        }
        assert!(self.wire.is_empty(), "session sent a partial packet");
        packets
    }

    /// Feeds a packet from the server.
    pub fn deliver(&mut self, packet: Packet) {
        let mut buf = BytesMut::new();
        packet.encode(self.version, &mut buf).unwrap();
        self.session.handle_read(self.now, &buf);
    }

    /// Feeds raw bytes from the server.
    pub fn deliver_bytes(&mut self, bytes: &[u8]) {
        self.session.handle_read(self.now, bytes);
    }

    /// Events since the last call.
    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.session.poll_event()).collect()
    }

    /// Moves virtual time forward and fires the session's timer if it is due.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.session.poll_timeout().is_some_and(|t| t <= self.now) {
            self.session.handle_timeout(self.now);
        }
    }

    /// Jumps to the session's next deadline and fires it.
    pub fn fire_timer(&mut self) -> bool {
        match self.session.poll_timeout() {
            Some(t) => {
                self.now = self.now.max(t);
                self.session.handle_timeout(self.now);
                true
            }
            None => false,
        }
    }

    /// Closes the transport.
    pub fn cut(&mut self) {
        self.session.poll_transmit(&mut BytesMut::new());
        self.session.handle_closed(self.now);
        self.wire.clear();
    }
}

/// A server-side PUBLISH.
pub fn server_publish(t: &str, qos_pid: QosPid, payload: &'static [u8]) -> Packet {
    Packet::Publish(Publish::new(topic(t), qos_pid, payload))
}
