//! What an async client reports: events for the application, errors, and the replies that
//! complete a caller's request.

use mqtt_proto::{
    AckProperties, Auth, AuthProperties, ConnAckProperties, PacketId, PropertyBox, Publish, QoS,
    SubAckReasonCode, TopicFilter, UnsubAckReasonCode,
};

use super::failure::{ConnectFailure, DialError};
use super::options::OptionsError;
use super::url::BrokerUrl;
use crate::event::{
    AckError, AckToken, AuthError, ConnectionError, PublishError, PublishOutcome, PublishToken,
    SubscribeError,
};
use crate::store::{SetAside, StoreError};

/// Something an async client reports to the application, in order.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The broker accepted a connection.
    Connected {
        /// Whether the broker resumed a stored session.
        session_present: bool,
        /// 5.0 CONNACK properties (assigned client id, server limits ...).
        properties: Box<ConnAckProperties>,
    },
    /// A message arrived. In manual-ack mode, pass `ack` to the client's `ack` once the
    /// message is processed.
    Message {
        /// The PUBLISH: topic, payload, QoS, retain flag, 5.0 properties.
        publish: Publish,
        /// Token to acknowledge it with, in manual-ack mode.
        ack: Option<AckToken>,
    },
    /// A message given to `try_publish` completed (messages given to `publish` report
    /// through its future instead).
    Published {
        /// The token `try_publish` returned.
        token: PublishToken,
        /// How the flow ended.
        outcome: PublishOutcome,
    },
    /// The broker answered a SUBSCRIBE.
    Subscribed {
        /// Its packet identifier.
        packet_id: PacketId,
        /// Per filter: the granted QoS, or the refusal.
        results: Vec<Result<QoS, SubAckReasonCode>>,
        /// 5.0 SUBACK properties.
        properties: PropertyBox<AckProperties>,
    },
    /// A connection started without a session present (the broker restarted without
    /// persistence, the session expired, a failover to another broker), and the client
    /// subscribed again to every subscription the broker had granted: per filter, the granted
    /// QoS or why it was refused (a refused filter is no longer active).
    Resubscribed {
        /// Per filter, the answer.
        results: Vec<(TopicFilter, Result<QoS, SubAckReasonCode>)>,
    },
    /// The broker answered an UNSUBSCRIBE.
    Unsubscribed {
        /// Its packet identifier.
        packet_id: PacketId,
        /// Per filter: the result.
        results: Vec<UnsubAckReasonCode>,
        /// 5.0 UNSUBACK properties.
        properties: PropertyBox<AckProperties>,
    },
    /// The broker sent an AUTH step of enhanced authentication (5.0); not reported while an
    /// authenticator runs the exchange.
    Auth(Auth),
    /// A re-authentication succeeded: the broker sent AUTH with Success and the
    /// authenticator accepted it (5.0).
    Reauthenticated {
        /// The properties of the broker's AUTH.
        properties: PropertyBox<AuthProperties>,
    },
    /// A connection ended. Unless the client stops (then [`Event::Closed`] follows), it
    /// reconnects and resumes the session.
    Disconnected {
        /// Why.
        reason: ConnectionError,
    },
    /// Something failed that did not end the client by itself: a connection attempt, the
    /// transport, the session store, an acknowledgement.
    Error(Error),
    /// A record of the session store could not be read back (torn by a crash or corrupted
    /// on disk) and was moved aside for inspection; every intact record was loaded and is
    /// sent. Reported when the client starts.
    RecordSetAside(SetAside),
    /// The client stopped: after `disconnect`, when reconnecting is off or gave up, or when
    /// every handle was dropped. No event follows.
    Closed,
}

/// What went wrong in an async client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The options are invalid.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// A connection attempt failed (resolution, TCP, TLS, WebSocket handshake, timeout).
    #[error("cannot connect to {broker}: {error}")]
    Connect {
        /// The broker.
        broker: BrokerUrl,
        /// Which step failed, and how.
        error: DialError,
    },
    /// Reading or writing the transport failed.
    #[error("transport error: {0}")]
    Io(#[from] std::io::Error),
    /// A topic or topic filter is invalid.
    #[error(transparent)]
    InvalidTopic(#[from] mqtt_proto::TopicError),
    /// The session refused the message.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The session refused the (un)subscription.
    #[error(transparent)]
    Subscribe(#[from] SubscribeError),
    /// The broker refused the subscription.
    #[error("subscription refused: {0:?}")]
    SubscribeRefused(SubAckReasonCode),
    /// An acknowledgement token was not accepted.
    #[error(transparent)]
    Ack(#[from] AckError),
    /// An AUTH packet was not accepted.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The session store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The connection closed before a QoS 0 message was written.
    #[error("the connection closed before the message was written")]
    NotSent,
    /// `try_publish` found the publish queue full.
    #[error("the publish queue is full")]
    QueueFull,
    /// The connection ended before the request completed (a re-authentication), for this
    /// reason; the client reconnects unless it stops.
    #[error("the connection ended: {0}")]
    ConnectionEnded(ConnectionError),
    /// The client has stopped (after `disconnect` or `abort`, or with every handle gone).
    #[error("the client has stopped")]
    Closed,
    /// The feature needs MQTT 5.0.
    #[error("{0} needs MQTT 5.0")]
    NeedsV5(&'static str),
    /// No response to a request arrived in time.
    #[error("no response within {0:?}")]
    RequestTimeout(std::time::Duration),
    /// The broker did not take the request (5.0 rejection), or it expired before it could be
    /// sent.
    #[error("the request was not delivered: {0:?}")]
    RequestNotDelivered(Box<PublishOutcome>),
    /// The client stopped because it could not connect: reconnecting is off or gave up, the
    /// broker refused for good (with `stop_on_permanent_refusal`), or the connect hook said
    /// stop. The cause is the last attempt's failure.
    #[error("the client stopped: {0}")]
    Stopped(ConnectFailure),
}

/// The answer to one caller's request.
#[derive(Debug)]
#[non_exhaustive]
pub enum Reply {
    /// A publish completed: the outcome, or why the message was not sent.
    Published(Result<PublishOutcome, Error>),
    /// A subscribe completed: per filter, the granted QoS or the refusal.
    Subscribed(Result<Vec<Result<QoS, SubAckReasonCode>>, Error>),
    /// An unsubscribe completed.
    Unsubscribed(Result<Vec<UnsubAckReasonCode>, Error>),
    /// A request without a value (auth, re-authentication, disconnect) completed.
    Done(Result<(), Error>),
    /// A request/response request completed: the response, or why none came.
    Response(Result<Publish, Error>),
}

impl Reply {
    /// The result of a publish request. A reply of another kind can only come from a client
    /// that stopped, and reads as [`Error::Closed`].
    pub fn into_published(self) -> Result<PublishOutcome, Error> {
        match self {
            Self::Published(result) => result,
            Self::Done(Err(e)) => Err(e),
            _ => Err(Error::Closed),
        }
    }

    /// The result of a subscribe request: per filter, the granted QoS or the refusal.
    pub fn into_subscribed(self) -> Result<Vec<Result<QoS, SubAckReasonCode>>, Error> {
        match self {
            Self::Subscribed(result) => result,
            Self::Done(Err(e)) => Err(e),
            _ => Err(Error::Closed),
        }
    }

    /// The result of a subscribe request for one filter: the granted QoS, or
    /// [`Error::SubscribeRefused`].
    pub fn into_granted(self) -> Result<QoS, Error> {
        match self.into_subscribed()?.into_iter().next() {
            Some(Ok(granted)) => Ok(granted),
            Some(Err(code)) => Err(Error::SubscribeRefused(code)),
            None => Err(Error::Subscribe(SubscribeError::NoFilters)),
        }
    }

    /// The result of an unsubscribe request: per filter, the broker's answer.
    pub fn into_unsubscribed(self) -> Result<Vec<UnsubAckReasonCode>, Error> {
        match self {
            Self::Unsubscribed(result) => result,
            Self::Done(Err(e)) => Err(e),
            _ => Err(Error::Closed),
        }
    }

    /// The result of an unsubscribe request for one filter.
    pub fn into_unsubscribed_one(self) -> Result<UnsubAckReasonCode, Error> {
        self.into_unsubscribed()?
            .into_iter()
            .next()
            .ok_or(Error::Subscribe(SubscribeError::NoFilters))
    }

    /// The result of a request/response request: the response message.
    pub fn into_response(self) -> Result<Publish, Error> {
        match self {
            Self::Response(result) => result,
            Self::Done(Err(e)) => Err(e),
            _ => Err(Error::Closed),
        }
    }

    /// The result of a request without a value (auth, disconnect).
    pub fn into_done(self) -> Result<(), Error> {
        match self {
            Self::Done(result) => result,
            _ => Err(Error::Closed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_map_to_the_caller_results() {
        let closed = || Reply::Done(Err(Error::Closed));
        assert!(matches!(closed().into_published(), Err(Error::Closed)));
        assert!(matches!(
            Reply::Published(Ok(PublishOutcome::Sent)).into_published(),
            Ok(PublishOutcome::Sent)
        ));
        assert!(matches!(
            Reply::Subscribed(Ok(vec![Ok(QoS::AtLeastOnce)])).into_granted(),
            Ok(QoS::AtLeastOnce)
        ));
        assert!(matches!(
            Reply::Subscribed(Ok(vec![Err(SubAckReasonCode::NotAuthorized)])).into_granted(),
            Err(Error::SubscribeRefused(SubAckReasonCode::NotAuthorized))
        ));
        assert!(matches!(
            Reply::Subscribed(Ok(Vec::new())).into_granted(),
            Err(Error::Subscribe(SubscribeError::NoFilters))
        ));
        assert!(matches!(closed().into_granted(), Err(Error::Closed)));
        assert!(matches!(
            Reply::Unsubscribed(Ok(vec![UnsubAckReasonCode::Success])).into_unsubscribed_one(),
            Ok(UnsubAckReasonCode::Success)
        ));
        assert!(matches!(closed().into_unsubscribed(), Err(Error::Closed)));
        assert!(matches!(Reply::Done(Ok(())).into_done(), Ok(())));
        assert!(matches!(
            Reply::Published(Ok(PublishOutcome::Sent)).into_done(),
            Err(Error::Closed)
        ));
    }
}
