//! Enhanced authentication (5.0 spec 4.12): a method that the session runs by itself, at
//! every CONNECT and on re-authentication, instead of handing each AUTH packet to the
//! application.

use std::borrow::Cow;

use bytes::Bytes;

/// One method of 5.0 enhanced authentication (a challenge-response such as SCRAM, a token
/// exchange ...), run by the session with
/// [`Session::set_authenticator`](crate::Session::set_authenticator).
///
/// The session calls it synchronously, as it does everything: an authenticator computes (a
/// hash, a signature) and does no IO. One exchange goes:
///
/// 1. [`start`](Self::start): the data of CONNECT, or of the AUTH (0x19, Re-authenticate)
///    that [`Session::reauthenticate`](crate::Session::reauthenticate) sends; it begins a
///    new exchange and drops whatever an earlier one left;
/// 2. [`challenge`](Self::challenge), once per AUTH (0x18, Continue authentication) from the
///    server: its data, and the answer's [MQTT-4.12.0-3 v5.0];
/// 3. [`finish`](Self::finish): the data of the server's final word, the CONNACK that
///    accepts the connection or the AUTH (0x00, Success) that ends a re-authentication.
///
/// Any step may fail with an [`AuthFailure`]: the session then ends the connection (see
/// [`ConnectionError::AuthFailed`](crate::ConnectionError::AuthFailed)). Every packet the
/// session sends for the method carries [`method`](Self::method) [MQTT-4.12.0-5 v5.0]
/// [MQTT-4.12.1-1 v5.0], and an AUTH from the server that names another method ends the
/// connection as a protocol violation.
///
/// A toy challenge-response: the server sends a nonce, the client answers with it mixed with
/// a shared key, and the server proves it knows the key too in its CONNACK.
///
/// ```
/// use std::time::Instant;
/// use bytes::{Bytes, BytesMut};
/// use mqtt_session::proto::{
///     Auth, AuthProperties, AuthReasonCode, ConnAck, Decoder, MqttString, Packet, ProtocolVersion,
/// };
/// use mqtt_session::{AuthFailure, Authenticator, Config, Event, Session};
///
/// /// Answers a nonce `n` with `n XOR key`; expects the server's proof `!key`.
/// struct XorKey(u8);
///
/// impl Authenticator for XorKey {
///     fn method(&self) -> &str {
///         "XOR-KEY"
///     }
///     fn start(&mut self) -> Result<Option<Bytes>, AuthFailure> {
///         Ok(None) // the server speaks first
///     }
///     fn challenge(&mut self, nonce: Option<&[u8]>) -> Result<Option<Bytes>, AuthFailure> {
///         let nonce = nonce.ok_or(AuthFailure::new("a challenge without a nonce"))?;
///         Ok(Some(nonce.iter().map(|b| b ^ self.0).collect()))
///     }
///     fn finish(&mut self, proof: Option<&[u8]>) -> Result<(), AuthFailure> {
///         match proof {
///             Some([p]) if *p == !self.0 => Ok(()),
///             _ => Err(AuthFailure::new("the server does not know the key")),
///         }
///     }
/// }
///
/// let now = Instant::now();
/// let config = Config::new("toy").unwrap().version(ProtocolVersion::V5);
/// let mut session = Session::new(config);
/// session.set_authenticator(Box::new(XorKey(0x5A))).unwrap();
/// session.handle_connected(now);
///
/// // The server challenges, and the session answers by itself.
/// let method = MqttString::new("XOR-KEY").unwrap();
/// let mut wire = BytesMut::new();
/// Packet::Auth(Auth {
///     reason_code: AuthReasonCode::ContinueAuthentication,
///     properties: AuthProperties {
///         authentication_method: Some(method.clone()),
///         authentication_data: Some(Bytes::from_static(&[1, 2, 3])),
///         ..Default::default()
///     }
///     .into(),
/// })
/// .encode(ProtocolVersion::V5, &mut wire)
/// .unwrap();
/// session.handle_read(now, &wire);
/// let mut sent = BytesMut::new();
/// session.poll_transmit(&mut sent);
/// let decoder = Decoder::new(ProtocolVersion::V5);
/// let _connect = decoder.decode(&mut sent).unwrap();
/// let Some(Packet::Auth(answer)) = decoder.decode(&mut sent).unwrap() else { panic!() };
/// assert_eq!(answer.properties.authentication_data.as_deref(), Some(&[0x5B, 0x58, 0x59][..]));
///
/// // The server accepts, with its proof.
/// let mut connack = ConnAck::accepted(false);
/// connack.properties.authentication_method = Some(method);
/// connack.properties.authentication_data = Some(Bytes::from_static(&[!0x5A]));
/// wire.clear();
/// Packet::from(connack).encode(ProtocolVersion::V5, &mut wire).unwrap();
/// session.handle_read(now, &wire);
/// assert!(matches!(session.poll_event(), Some(Event::Connected { .. })));
/// ```
pub trait Authenticator: Send {
    /// The Authentication Method: its name, as CONNECT and every AUTH carry it. It must not
    /// change while the authenticator is in use.
    fn method(&self) -> &str;

    /// Begins an exchange: the Authentication Data of CONNECT, or of the AUTH that starts a
    /// re-authentication; `None` to send none (a method where the server speaks first).
    fn start(&mut self) -> Result<Option<Bytes>, AuthFailure>;

    /// The server asks for more (AUTH 0x18, [MQTT-4.12.0-2 v5.0]) with `data`, its Authentication
    /// Data: the data of the answer (an AUTH 0x18 too), or `None` for none.
    fn challenge(&mut self, data: Option<&[u8]>) -> Result<Option<Bytes>, AuthFailure>;

    /// The server accepted (CONNACK with success, or AUTH 0x00 at the end of a
    /// re-authentication), with `data`, its Authentication Data: verify the server here if
    /// the method is mutual (a SCRAM server signature, say). The default accepts.
    ///
    /// The server may accept before the method has had every step it expects: the session
    /// does not count steps, and calls this in whatever state the exchange is. A method
    /// that must verify the server fails then, and the connection ends; one that only proves
    /// the client to the server may take the server's word.
    fn finish(&mut self, data: Option<&[u8]>) -> Result<(), AuthFailure> {
        let _ = data;
        Ok(())
    }
}

/// Why an [`Authenticator`] gave up: the server's data is not what the method expects, the
/// server failed to prove itself, or the client's secret is not at hand. It ends the
/// connection; describe the cause without secrets, as it is logged and reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct AuthFailure {
    reason: Cow<'static, str>,
}

impl AuthFailure {
    /// A failure described by `reason`.
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            reason: reason.into(),
        }
    }

    /// The description given.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}
