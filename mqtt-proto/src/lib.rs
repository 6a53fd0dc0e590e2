//! A sans-IO codec for MQTT 3.1, 3.1.1 and 5.0.
//!
//! One [`Packet`] model covers every control packet of every version; a [`ProtocolVersion`]
//! chooses the wire layout. Decoding frames a packet from a byte stream, enforces the maximum
//! packet size from the fixed header alone, and keeps topics, strings and payloads as
//! [`Bytes`](https://docs.rs/bytes/1/bytes/struct.Bytes.html) slices of the frame, so nothing is copied (but a PUBLISH of up to
//! 256 bytes that [`Decoder::decode`] reads from a stream, copied because that costs less than
//! sharing the buffer and keeps none of it, and strings of up to [`MqttString::INLINE_LEN`]
//! bytes, most topics and property strings, which an [`MqttString`] holds in place: no
//! allocation and no reference count). Encoding computes the exact size
//! first and reserves once; [`Packet::encode_split`] leaves a large PUBLISH payload out of the
//! buffer for a vectored write. Every rule of the specs' packet formats is checked, and each
//! violation is a typed [`DecodeError`] that names the statement (or section) it breaks in the
//! spec of the connection's version; nothing the peer sends can panic the decoder.
//!
//! [`Decoder::decode_ref`] decodes into [`PacketRef`], a view that borrows every string and
//! payload from the input: no allocation, no reference count, and the same rules, since the
//! owned packet is built by the same parser.
//!
//! ```
//! use bytes::BytesMut;
//! use mqtt_proto::{Decoder, Packet, ProtocolVersion, Publish, QosPid, PacketId, TopicName};
//!
//! let version = ProtocolVersion::V5;
//! let publish = Publish::new(
//!     TopicName::new("sensors/kitchen").unwrap(),
//!     QosPid::AtLeastOnce(PacketId::new(1).unwrap()),
//!     &b"21.5"[..],
//! );
//! let mut wire = BytesMut::new();
//! Packet::Publish(publish.clone()).encode(version, &mut wire).unwrap();
//!
//! let decoded = Decoder::new(version).decode(&mut wire).unwrap();
//! assert_eq!(decoded, Some(Packet::Publish(publish)));
//! assert!(wire.is_empty());
//! ```
//!
//! The 5.0 property sets of the packets that travel in bulk (PUBLISH and its acknowledgements,
//! DISCONNECT, AUTH) are kept behind a [`PropertyBox`], allocated only when a property is set.
//!
//! The crate is `no_std` with `alloc` when the default `std` feature is off.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

extern crate alloc;

mod append;
mod error;
mod packet;
mod primitives;
mod properties;
mod property_box;
mod reason;
mod segments;
mod string;
mod text;
mod topic;
mod types;
mod view;

pub use error::{
    DecodeError, DecodeErrorKind, EncodeError, Section, Spec, StatementId, StringError, TopicError,
};
pub use packet::{
    Auth, ConnAck, Connect, Decoder, Disconnect, LastWill, Packet, PacketType, PubAck, PubComp,
    PubRec, PubRel, Publish, RetainHandling, SubAck, Subscribe, Subscription, SubscriptionOptions,
    UnsubAck, Unsubscribe, MAX_PACKET_SIZE, SPLIT_PAYLOAD_MIN,
};
pub use primitives::{read_var_int, var_int_len, MAX_VAR_INT};
pub use properties::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties,
    PayloadFormat, PropertiesIter, PropertiesRef, PropertyId, PropertyValue, PublishProperties,
    SubscribeProperties, UnsubscribeProperties, UserProperty, WillProperties,
};
pub use property_box::{PropertyBox, PropertySet};
pub use reason::{
    AuthReasonCode, ConnectReasonCode, DisconnectReasonCode, PubAckReasonCode, PubRelReasonCode,
    SubAckReasonCode, UnsubAckReasonCode,
};
pub use segments::{SegmentList, Segments};
pub use string::{MqttString, MAX_STRING_LEN};
pub use topic::{TopicFilter, TopicName};
pub use types::{PacketId, ProtocolVersion, QoS, QosPid};
pub use view::{
    AckRef, AuthRef, ConnAckRef, ConnectRef, DisconnectRef, LastWillRef, PacketRef, PublishRef,
    ReasonCode, ReasonCodes, SubAckRef, SubscribeRef, Subscriptions, SubscriptionsIter,
    TopicFilters, TopicFiltersIter, UnsubAckRef, UnsubscribeRef,
};

/// `arbitrary` support for the `Bytes` fields, which `bytes` does not provide.
#[cfg(feature = "arbitrary")]
pub(crate) mod arbitrary_support {
    use alloc::vec::Vec;
    use arbitrary::{Arbitrary, Result, Unstructured};
    use bytes::Bytes;

    pub(crate) fn bytes(u: &mut Unstructured<'_>) -> Result<Bytes> {
        Ok(Bytes::from(Vec::<u8>::arbitrary(u)?))
    }

    pub(crate) fn option_bytes(u: &mut Unstructured<'_>) -> Result<Option<Bytes>> {
        Ok(if u.arbitrary()? {
            Some(bytes(u)?)
        } else {
            None
        })
    }
}
