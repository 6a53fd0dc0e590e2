//! The connect hook: an async function the client calls before every connection attempt,
//! which may refresh the credentials (an expiring token), change the will, skip the broker
//! or stop.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use mqtt_proto::{MqttString, StringError};

use super::failure::ConnectFailure;
use super::url::BrokerUrl;
use crate::message::Message;

/// What the client is about to do, for the connect hook to decide on.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectAttempt {
    /// The broker about to be tried.
    pub broker: BrokerUrl,
    /// Which attempt this is since the client started or since the last connection that
    /// stayed up (1 for the first).
    pub attempt: u32,
    /// Why the previous attempt or connection failed, if it did.
    pub last_failure: Option<ConnectFailure>,
}

/// The connect hook's answer.
///
/// ```
/// use mqtt_session::client::ConnectDecision;
/// // Connect with a freshly issued token as the password.
/// let decision = ConnectDecision::proceed().credentials("device-17", "eyJhbGciOi...");
/// assert!(decision.is_proceed());
/// ```
#[derive(Clone, Default)]
pub struct ConnectDecision {
    action: Action,
    credentials: Option<Result<(MqttString, Option<Bytes>), StringError>>,
    will: Option<Option<Message>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Action {
    #[default]
    Proceed,
    Skip,
    Stop,
}

impl ConnectDecision {
    /// Connect to the broker, with whatever this decision changes.
    pub fn proceed() -> Self {
        Self::default()
    }

    /// Do not try this broker now: move on as if the attempt had failed (the next broker, or
    /// the backoff after a whole round).
    pub fn skip() -> Self {
        Self {
            action: Action::Skip,
            ..Self::default()
        }
    }

    /// Stop the client: every waiting caller gets the last failure as the cause.
    pub fn stop() -> Self {
        Self {
            action: Action::Stop,
            ..Self::default()
        }
    }

    /// Connects with this user name and password from now on (e.g. a fresh token).
    pub fn credentials(mut self, username: &str, password: impl Into<Bytes>) -> Self {
        let name = MqttString::new(username).map(|name| (name, Some(password.into())));
        self.credentials = Some(name);
        self
    }

    /// Connects with this user name and no password from now on.
    pub fn username(mut self, username: &str) -> Self {
        self.credentials = Some(MqttString::new(username).map(|name| (name, None)));
        self
    }

    /// Connects with this will from now on (`None` for none).
    pub fn will(mut self, will: Option<Message>) -> Self {
        self.will = Some(will);
        self
    }

    /// Whether the client connects.
    pub fn is_proceed(&self) -> bool {
        self.action == Action::Proceed
    }

    /// Whether the client skips this broker.
    pub fn is_skip(&self) -> bool {
        self.action == Action::Skip
    }

    /// Whether the client stops.
    pub fn is_stop(&self) -> bool {
        self.action == Action::Stop
    }

    /// The new credentials, if any: user name (or why it is not a valid MQTT string) and
    /// password.
    pub(crate) fn take_credentials(
        &mut self,
    ) -> Option<Result<(MqttString, Option<Bytes>), StringError>> {
        self.credentials.take()
    }

    /// The new will, if any.
    pub(crate) fn take_will(&mut self) -> Option<Option<Message>> {
        self.will.take()
    }
}

impl fmt::Debug for ConnectDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password never appears in debug output.
        let user = self
            .credentials
            .as_ref()
            .map(|c| c.as_ref().map(|(name, _)| name.as_str()));
        f.debug_struct("ConnectDecision")
            .field("action", &self.action)
            .field("username", &user)
            .field(
                "will",
                &self.will.as_ref().map(|w| w.as_ref().map(|m| &m.topic)),
            )
            .finish()
    }
}

/// The future a connect hook returns.
pub type ConnectHookFuture = Pin<Box<dyn Future<Output = ConnectDecision> + Send>>;

/// A connect hook, as [`ClientOptions::before_connect`](super::ClientOptions::before_connect)
/// keeps it.
#[derive(Clone)]
pub struct ConnectHook(Arc<dyn Fn(ConnectAttempt) -> ConnectHookFuture + Send + Sync>);

impl ConnectHook {
    /// Wraps an async function.
    pub fn new<F, Fut>(hook: F) -> Self
    where
        F: Fn(ConnectAttempt) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ConnectDecision> + Send + 'static,
    {
        Self(Arc::new(move |attempt| Box::pin(hook(attempt))))
    }

    /// Calls the hook.
    pub fn call(&self, attempt: ConnectAttempt) -> ConnectHookFuture {
        (self.0)(attempt)
    }
}

impl fmt::Debug for ConnectHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConnectHook")
    }
}
