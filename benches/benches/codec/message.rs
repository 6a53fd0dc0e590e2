//! The messages every codec encodes and decodes, described without any codec's types, so that
//! each codec's result can be checked against the same expectation.

use bytes::Bytes;

/// A packet as plain data: what every codec is asked to build, and what its decoded packet must
/// describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// PUBLISH; `packet_id` is 0 at QoS 0.
    Publish {
        topic: String,
        qos: u8,
        packet_id: u16,
        payload: Bytes,
    },
    /// CONNECT with user name, password and will.
    Connect(ConnectMessage),
    /// SUBSCRIBE: filters with their maximum QoS.
    Subscribe {
        packet_id: u16,
        filters: Vec<(String, u8)>,
    },
    /// PUBACK.
    PubAck { packet_id: u16 },
}

impl Message {
    /// The packet type's name.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Publish { .. } => "PUBLISH",
            Self::Connect(_) => "CONNECT",
            Self::Subscribe { .. } => "SUBSCRIBE",
            Self::PubAck { .. } => "PUBACK",
        }
    }
}

/// The fields of the CONNECT case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectMessage {
    pub(crate) client_id: String,
    pub(crate) keep_alive: u16,
    pub(crate) clean_start: bool,
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) will_topic: String,
    pub(crate) will_payload: Bytes,
    pub(crate) will_qos: u8,
    pub(crate) will_retain: bool,
}

/// The topic of every PUBLISH case.
pub(crate) const TOPIC: &str = "sensors/building-7/floor-3/temperature";

/// A payload of `len` bytes that is not all one value.
pub(crate) fn payload(len: usize) -> Bytes {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// PUBLISH to [`TOPIC`].
pub(crate) fn publish(qos: u8, payload_len: usize) -> Message {
    Message::Publish {
        topic: TOPIC.to_owned(),
        qos,
        packet_id: if qos == 0 { 0 } else { 4242 },
        payload: payload(payload_len),
    }
}

/// CONNECT with user name, password and a retained QoS 1 will.
pub(crate) fn connect() -> Message {
    Message::Connect(ConnectMessage {
        client_id: "bench-client-0001".to_owned(),
        keep_alive: 30,
        clean_start: true,
        username: "bench-user".to_owned(),
        password: "bench-password-0123456789".to_owned(),
        will_topic: "clients/bench-client-0001/status".to_owned(),
        will_payload: Bytes::from_static(b"offline"),
        will_qos: 1,
        will_retain: true,
    })
}

/// The CONNECT case with the longest user name a string can hold, 65,535 bytes.
pub(crate) fn connect_long_username() -> Message {
    let Message::Connect(mut m) = connect() else {
        unreachable!("connect() is a CONNECT")
    };
    m.username = "u".repeat(65_535);
    Message::Connect(m)
}

/// SUBSCRIBE with ten filters, wildcards among them, at QoS 0, 1 and 2.
pub(crate) fn subscribe() -> Message {
    let filters = (0..10)
        .map(|i| {
            let filter = match i % 3 {
                0 => format!("sensors/building-{i}/+/temperature"),
                1 => format!("devices/{i:04}/status/#"),
                _ => format!("alerts/site-{i}/fire"),
            };
            (filter, (i % 3) as u8)
        })
        .collect();
    Message::Subscribe {
        packet_id: 7,
        filters,
    }
}

/// PUBACK.
pub(crate) fn puback() -> Message {
    Message::PubAck { packet_id: 4242 }
}
