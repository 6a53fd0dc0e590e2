//! Enhanced authentication run by an [`Authenticator`] (5.0 spec 4.12, 4.12.1): the session
//! answers the server's challenges by itself while connecting and when re-authenticating,
//! verifies the server, and ends the connection on a failure or a server that breaks the
//! exchange's rules.

mod common;
mod toy_auth;

use bytes::Bytes;
use common::{config, Pair};
use mqtt_proto::{
    Auth, AuthProperties, AuthReasonCode, ConnAck, Disconnect, DisconnectReasonCode, MqttString,
    Packet, ProtocolVersion, QoS,
};
use mqtt_session::{
    AuthError, AuthFailure, Authenticator, ConfigError, ConnectionError, Event, Message,
    ProtocolViolation, Session,
};
use toy_auth::{ToyClient, ToyServer, METHOD};

const KEY: &[u8] = b"shared secret";

fn method() -> MqttString {
    MqttString::new(METHOD).unwrap()
}

fn auth(reason_code: AuthReasonCode, method: Option<MqttString>, data: Option<Bytes>) -> Packet {
    Packet::Auth(Auth {
        reason_code,
        properties: AuthProperties {
            authentication_method: method,
            authentication_data: data,
            ..Default::default()
        }
        .into(),
    })
}

fn challenge(data: Bytes) -> Packet {
    auth(
        AuthReasonCode::ContinueAuthentication,
        Some(method()),
        Some(data),
    )
}

fn connack_with(method: Option<MqttString>, data: Option<Bytes>) -> Packet {
    let mut connack = ConnAck::accepted(false);
    connack.properties.authentication_method = method;
    connack.properties.authentication_data = data;
    Packet::from(connack)
}

/// A 5.0 pair whose session runs `authenticator`.
fn pair_with(authenticator: impl Authenticator + 'static) -> Pair {
    let mut session = Session::new(config(ProtocolVersion::V5));
    session.set_authenticator(Box::new(authenticator)).unwrap();
    Pair::with_session(session, ProtocolVersion::V5)
}

/// The data of the AUTH packets in `sent`, checking that each continues the exchange with
/// the method of CONNECT.
fn answers(sent: &[Packet]) -> Vec<Bytes> {
    sent.iter()
        .map(|p| match p {
            // [MQTT-4.12.0-3 v5.0] [MQTT-4.12.0-5 v5.0]
            Packet::Auth(a) => {
                assert_eq!(a.reason_code, AuthReasonCode::ContinueAuthentication);
                assert_eq!(a.properties.authentication_method, Some(method()));
                a.properties.authentication_data.clone().unwrap()
            }
            other => panic!("expected AUTH, got {other:?}"),
        })
        .collect()
}

/// Opens a connection and runs the toy exchange with `rounds` challenges; returns the
/// server, ready to send its proof.
fn handshake(pair: &mut Pair, rounds: u32) -> ToyServer {
    let connect = pair.open();
    assert_eq!(connect.properties.authentication_method, Some(method()));
    let mut server = ToyServer::new(KEY, rounds);
    let mut next = Some(
        server
            .start(connect.properties.authentication_data.as_deref())
            .unwrap(),
    );
    while let Some(nonce) = next.take() {
        pair.deliver(challenge(nonce));
        let sent = pair.sent();
        let [answer] = &answers(&sent)[..] else {
            panic!("one answer per challenge: {sent:?}");
        };
        next = server.answer(Some(answer)).unwrap();
    }
    server
}

fn disconnect_reason(sent: &[Packet]) -> Option<DisconnectReasonCode> {
    sent.iter().find_map(|p| match p {
        Packet::Disconnect(Disconnect { reason_code, .. }) => Some(*reason_code),
        _ => None,
    })
}

fn ended_with(events: &[Event]) -> Option<&ConnectionError> {
    events.iter().find_map(|e| match e {
        Event::Disconnected { reason } => Some(reason),
        _ => None,
    })
}

#[test]
fn a_multi_step_handshake_is_answered_while_connecting() {
    // [MQTT-3.1.2-30 v5.0]: until CONNACK only AUTH goes out, even with a message waiting.
    let client = ToyClient::new(KEY);
    let log = client.log.clone();
    let mut pair = pair_with(client);
    pair.session
        .publish(
            pair.now,
            Message::new("t", "queued").unwrap().qos(QoS::AtLeastOnce),
        )
        .unwrap();
    let server = handshake(&mut pair, 3);
    assert!(pair.events().is_empty(), "the application is not asked");
    assert_eq!(log.lock().unwrap().challenges, 3);
    // [MQTT-4.12.0-5 v5.0]: the CONNACK repeats the method; its data proves the server.
    pair.deliver(connack_with(Some(method()), Some(server.proof())));
    assert!(matches!(&pair.events()[..], [Event::Connected { .. }]));
    assert!(matches!(&pair.sent()[..], [Packet::Publish(p)] if p.topic.as_str() == "t"));
    assert_eq!(log.lock().unwrap().finishes, 1);

    // A new connection runs a new exchange.
    pair.cut();
    pair.events();
    let server = handshake(&mut pair, 1);
    pair.deliver(connack_with(Some(method()), Some(server.proof())));
    assert!(pair.session.is_connected());
    let log = log.lock().unwrap();
    assert_eq!((log.starts, log.challenges, log.finishes), (2, 4, 2));
}

#[test]
fn a_server_that_fails_to_prove_itself_is_disconnected() {
    // The server answers with a proof made with another key: the connection is not used.
    let mut pair = pair_with(ToyClient::new(KEY));
    handshake(&mut pair, 1);
    let impostor = Bytes::from_static(b"12345678");
    pair.deliver(connack_with(Some(method()), Some(impostor)));
    let events = pair.events();
    assert!(
        !events.iter().any(|e| matches!(e, Event::Connected { .. })),
        "{events:?}"
    );
    assert!(
        matches!(ended_with(&events), Some(ConnectionError::AuthFailed(f)) if f.reason() == "the server's proof is wrong"),
        "{events:?}"
    );
    // [MQTT-4.12.1-2 v5.0] (the same rule at connection): DISCONNECT, then close.
    assert_eq!(
        disconnect_reason(&pair.sent()),
        Some(DisconnectReasonCode::ImplementationSpecificError)
    );
    assert!(pair.session.wants_close());
}

#[test]
fn a_challenge_the_authenticator_refuses_ends_the_connection() {
    let client = ToyClient::new(KEY);
    let log = client.log.clone();
    let mut pair = pair_with(client);
    pair.open();
    // A challenge without the nonce the method needs.
    pair.deliver(auth(
        AuthReasonCode::ContinueAuthentication,
        Some(method()),
        None,
    ));
    let sent = pair.sent();
    assert_eq!(sent.len(), 1, "DISCONNECT only, no answer: {sent:?}");
    assert_eq!(
        disconnect_reason(&sent),
        Some(DisconnectReasonCode::ImplementationSpecificError)
    );
    let events = pair.events();
    assert_eq!(
        ended_with(&events),
        Some(&ConnectionError::AuthFailed(AuthFailure::new(
            "a challenge without a nonce"
        )))
    );
    assert_eq!(log.lock().unwrap().failures.len(), 1);
}

#[test]
fn an_early_connack_is_left_to_the_authenticator() {
    // The server accepts before it challenged: the session counts no steps and asks the
    // authenticator, whose method is mutual and so refuses a server that proved nothing.
    let mut pair = pair_with(ToyClient::new(KEY));
    pair.open();
    pair.deliver(connack_with(Some(method()), None));
    let events = pair.events();
    assert!(
        matches!(ended_with(&events), Some(ConnectionError::AuthFailed(f)) if f.reason() == "the server accepted before it challenged"),
        "{events:?}"
    );

    // A one-way method takes the server's word.
    struct Token;
    impl Authenticator for Token {
        fn method(&self) -> &str {
            METHOD
        }
        fn start(&mut self) -> Result<Option<Bytes>, AuthFailure> {
            Ok(Some(Bytes::from_static(b"token")))
        }
        fn challenge(&mut self, _: Option<&[u8]>) -> Result<Option<Bytes>, AuthFailure> {
            Err(AuthFailure::new("a token method has no challenge"))
        }
    }
    let mut pair = pair_with(Token);
    let connect = pair.open();
    assert_eq!(
        connect.properties.authentication_data.as_deref(),
        Some(&b"token"[..])
    );
    pair.deliver(connack_with(Some(method()), None));
    assert!(pair.session.is_connected());
}

// [MQTT-3.1.0-1 v5.0]: nothing may go before CONNECT, so no DISCONNECT either.
#[test]
fn an_authenticator_that_cannot_start_sends_no_connect() {
    struct NoSecret;
    impl Authenticator for NoSecret {
        fn method(&self) -> &str {
            METHOD
        }
        fn start(&mut self) -> Result<Option<Bytes>, AuthFailure> {
            Err(AuthFailure::new("no secret at hand"))
        }
        fn challenge(&mut self, _: Option<&[u8]>) -> Result<Option<Bytes>, AuthFailure> {
            unreachable!("never started")
        }
    }
    let mut pair = pair_with(NoSecret);
    pair.session.handle_connected(pair.now);
    assert!(pair.sent().is_empty(), "no CONNECT, and so no DISCONNECT");
    assert!(pair.session.wants_close());
    assert_eq!(
        ended_with(&pair.events()),
        Some(&ConnectionError::AuthFailed(AuthFailure::new(
            "no secret at hand"
        )))
    );
}

#[test]
fn a_server_auth_with_another_method_is_a_protocol_violation() {
    // [MQTT-4.12.0-5 v5.0]: every AUTH and a successful CONNACK repeat the method of CONNECT.
    let other = MqttString::new("OTHER").unwrap();
    let cases = [
        auth(
            AuthReasonCode::ContinueAuthentication,
            Some(other.clone()),
            Some(Bytes::from_static(b"12345678")),
        ),
        connack_with(Some(other), None),
        connack_with(None, None),
    ];
    for packet in cases {
        let mut pair = pair_with(ToyClient::new(KEY));
        pair.open();
        pair.deliver(packet.clone());
        assert_eq!(
            disconnect_reason(&pair.sent()),
            Some(DisconnectReasonCode::ProtocolError),
            "{packet:?}"
        );
        assert_eq!(
            ended_with(&pair.events()),
            Some(&ConnectionError::ProtocolViolation(
                ProtocolViolation::AuthMethodMismatch
            )),
            "{packet:?}"
        );
    }

    // Without an authenticator, the method of the configuration is checked the same way
    // before the application sees the AUTH.
    let mut cfg = config(ProtocolVersion::V5);
    cfg.properties.authentication_method = Some(method());
    let mut pair = Pair::new(cfg);
    pair.open();
    pair.deliver(auth(
        AuthReasonCode::ContinueAuthentication,
        Some(MqttString::new("OTHER").unwrap()),
        None,
    ));
    assert!(matches!(
        ended_with(&pair.events()),
        Some(ConnectionError::ProtocolViolation(
            ProtocolViolation::AuthMethodMismatch
        ))
    ));
}

#[test]
fn a_server_auth_without_a_method_is_a_protocol_error() {
    // 5.0 section 3.15.2.2.2: an AUTH continuing the exchange names its method. The codec
    // refuses it; the session answers with Protocol Error.
    let mut pair = pair_with(ToyClient::new(KEY));
    pair.open();
    // AUTH 0x18 with Authentication Data "1234" and no Authentication Method.
    pair.deliver_bytes(&[
        0xf0, 0x09, 0x18, 0x07, 0x16, 0x00, 0x04, b'1', b'2', b'3', b'4',
    ]);
    assert_eq!(
        disconnect_reason(&pair.sent()),
        Some(DisconnectReasonCode::ProtocolError)
    );
    assert!(matches!(
        ended_with(&pair.events()),
        Some(ConnectionError::ProtocolViolation(ProtocolViolation::Malformed(e)))
            if e.kind() == mqtt_proto::DecodeErrorKind::MissingAuthenticationMethod
    ));
}

#[test]
fn an_auth_the_server_may_not_send_is_a_protocol_violation() {
    // [MQTT-4.12.0-6 v5.0 server]: no method in CONNECT, no AUTH from the server.
    let mut pair = Pair::new(config(ProtocolVersion::V5));
    pair.open();
    pair.deliver(auth(
        AuthReasonCode::ContinueAuthentication,
        Some(method()),
        None,
    ));
    assert_eq!(
        disconnect_reason(&pair.sent()),
        Some(DisconnectReasonCode::ProtocolError)
    );
    assert_eq!(
        ended_with(&pair.events()),
        Some(&ConnectionError::ProtocolViolation(
            ProtocolViolation::UnexpectedAuth(AuthReasonCode::ContinueAuthentication)
        ))
    );
    // Re-authenticate is the client's to send (spec 3.15.2.1), and Success does not accept a
    // connection, CONNACK does (spec 4.12).
    for code in [AuthReasonCode::ReAuthenticate, AuthReasonCode::Success] {
        let mut pair = pair_with(ToyClient::new(KEY));
        pair.open();
        pair.deliver(auth(code, Some(method()), None));
        assert_eq!(
            ended_with(&pair.events()),
            Some(&ConnectionError::ProtocolViolation(
                ProtocolViolation::UnexpectedAuth(code)
            ))
        );
    }
    // Once connected, a challenge of no exchange the client started.
    let mut pair = pair_with(ToyClient::new(KEY));
    let server = handshake(&mut pair, 1);
    pair.deliver(connack_with(Some(method()), Some(server.proof())));
    pair.events();
    pair.deliver(challenge(Bytes::from_static(b"12345678")));
    assert_eq!(
        ended_with(&pair.events()),
        Some(&ConnectionError::ProtocolViolation(
            ProtocolViolation::UnexpectedAuth(AuthReasonCode::ContinueAuthentication)
        ))
    );
}

#[test]
fn enhanced_authentication_needs_5_0_and_a_valid_method() {
    for version in [ProtocolVersion::V3_1, ProtocolVersion::V3_1_1] {
        let mut session = Session::new(config(version));
        assert_eq!(
            session.set_authenticator(Box::new(ToyClient::new(KEY))),
            Err(ConfigError::EnhancedAuthNeedsV5),
            "{version:?}"
        );
    }
    struct BadName;
    impl Authenticator for BadName {
        fn method(&self) -> &str {
            "nul\0inside"
        }
        fn start(&mut self) -> Result<Option<Bytes>, AuthFailure> {
            Ok(None)
        }
        fn challenge(&mut self, _: Option<&[u8]>) -> Result<Option<Bytes>, AuthFailure> {
            Ok(None)
        }
    }
    let mut session = Session::new(config(ProtocolVersion::V5));
    assert!(matches!(
        session.set_authenticator(Box::new(BadName)),
        Err(ConfigError::InvalidAuthMethod(_))
    ));
}

#[test]
fn the_application_does_not_send_auth_while_an_authenticator_runs() {
    let mut pair = pair_with(ToyClient::new(KEY));
    pair.open();
    let answer = Auth {
        reason_code: AuthReasonCode::ContinueAuthentication,
        properties: AuthProperties {
            authentication_method: Some(method()),
            ..Default::default()
        }
        .into(),
    };
    assert_eq!(
        pair.session.auth(pair.now, answer),
        Err(AuthError::HandledByAuthenticator)
    );
    assert!(pair.sent().is_empty());
}

/// A pair connected through the toy exchange; returns the server side.
fn connected(client: ToyClient) -> (Pair, ToyServer) {
    let mut pair = pair_with(client);
    let server = handshake(&mut pair, 1);
    pair.deliver(connack_with(Some(method()), Some(server.proof())));
    assert!(matches!(&pair.events()[..], [Event::Connected { .. }]));
    (pair, server)
}

/// The data of the AUTH 0x19 in `sent`, checking it keeps the method [MQTT-4.12.1-1 v5.0].
fn reauth_data(sent: &[Packet]) -> Option<Bytes> {
    sent.iter().find_map(|p| match p {
        Packet::Auth(a) if a.reason_code == AuthReasonCode::ReAuthenticate => {
            assert_eq!(a.properties.authentication_method, Some(method()));
            a.properties.authentication_data.clone()
        }
        _ => None,
    })
}

fn success(data: Bytes) -> Packet {
    auth(AuthReasonCode::Success, Some(method()), Some(data))
}

#[test]
fn reauthentication_runs_while_messages_flow() {
    // Spec 4.12.1: during re-authentication other packets flow under the authentication so
    // far. A QoS 1 message in flight when it starts completes while it runs.
    let client = ToyClient::new(KEY);
    let log = client.log.clone();
    let (mut pair, mut server) = connected(client);
    let first = pair
        .session
        .publish(
            pair.now,
            Message::new("t", "first").unwrap().qos(QoS::AtLeastOnce),
        )
        .unwrap();
    let sent = pair.sent();
    let Some(Packet::Publish(publish)) = sent.first() else {
        panic!("{sent:?}");
    };
    let id = publish.packet_id().unwrap();

    // [MQTT-4.12.1-1 v5.0]: AUTH 0x19 with the method of CONNECT and a new exchange's data.
    pair.session.reauthenticate(pair.now).unwrap();
    assert!(pair.session.is_reauthenticating());
    let data = reauth_data(&pair.sent()).expect("AUTH 0x19");
    assert_eq!(
        pair.session.reauthenticate(pair.now),
        Err(AuthError::InProgress)
    );
    let nonce = server.start(Some(&data)).unwrap();

    // The server acknowledges the message and sends one, then challenges.
    pair.deliver(Packet::PubAck(mqtt_proto::PubAck::new(id)));
    pair.deliver(common::server_publish(
        "in",
        mqtt_proto::QosPid::AtLeastOnce(common::id(7)),
        b"during",
    ));
    let second = pair
        .session
        .publish(
            pair.now,
            Message::new("t", "second").unwrap().qos(QoS::AtLeastOnce),
        )
        .unwrap();
    pair.deliver(challenge(nonce));
    let events = pair.events();
    assert!(
        events.iter().any(
            |e| matches!(e, Event::Published { token, outcome: mqtt_session::PublishOutcome::Acknowledged { .. } } if *token == first)
        ),
        "{events:?}"
    );
    assert!(events.iter().any(|e| matches!(e, Event::Message { .. })));
    let sent = pair.sent();
    assert!(
        sent.iter()
            .any(|p| matches!(p, Packet::PubAck(a) if a.packet_id == common::id(7))),
        "{sent:?}"
    );
    assert!(sent.iter().any(|p| matches!(p, Packet::Publish(_))));
    let answer = sent
        .iter()
        .find_map(|p| match p {
            Packet::Auth(a) => a.properties.authentication_data.clone(),
            _ => None,
        })
        .expect("the answer to the challenge");
    assert_eq!(server.answer(Some(&answer)).unwrap(), None);

    pair.deliver(success(server.proof()));
    let events = pair.events();
    assert!(
        matches!(&events[..], [Event::Reauthenticated { properties }] if properties.authentication_data == Some(server.proof())),
        "{events:?}"
    );
    assert!(!pair.session.is_reauthenticating());
    assert!(pair.session.is_connected());
    let log = log.lock().unwrap();
    assert_eq!((log.starts, log.challenges, log.finishes), (2, 2, 2));
    drop(log);
    // The second message goes on as usual.
    pair.deliver(Packet::PubAck(mqtt_proto::PubAck::new(common::id(2))));
    assert!(pair
        .events()
        .iter()
        .any(|e| matches!(e, Event::Published { token, .. } if *token == second)));
}

#[test]
fn a_refused_reauthentication_ends_the_connection() {
    // [MQTT-4.12.1-2 v5.0]: the server refuses with DISCONNECT and closes.
    let (mut pair, _server) = connected(ToyClient::new(KEY));
    pair.session.reauthenticate(pair.now).unwrap();
    pair.sent();
    pair.deliver(Packet::Disconnect(Disconnect::new(
        DisconnectReasonCode::NotAuthorized,
    )));
    assert!(matches!(
        ended_with(&pair.events()),
        Some(ConnectionError::ServerDisconnected {
            reason: DisconnectReasonCode::NotAuthorized,
            ..
        })
    ));
    assert!(!pair.session.is_reauthenticating());

    // [MQTT-4.12.1-2 v5.0]: the client refuses a server whose final proof is wrong.
    let (mut pair, mut server) = connected(ToyClient::new(KEY));
    pair.session.reauthenticate(pair.now).unwrap();
    let nonce = server.start(reauth_data(&pair.sent()).as_deref()).unwrap();
    pair.deliver(challenge(nonce));
    pair.sent();
    pair.deliver(success(Bytes::from_static(b"12345678")));
    assert_eq!(
        disconnect_reason(&pair.sent()),
        Some(DisconnectReasonCode::ImplementationSpecificError)
    );
    assert!(matches!(
        ended_with(&pair.events()),
        Some(ConnectionError::AuthFailed(f)) if f.reason() == "the server's proof is wrong"
    ));
}

#[test]
fn an_unanswered_reauthentication_is_given_up_at_the_connect_timeout() {
    // [MQTT-4.12.1-2 v5.0]: a re-authentication that never completes has failed.
    let (mut pair, _server) = connected(ToyClient::new(KEY));
    let timeout = pair.session.config().connect_timeout;
    pair.session.reauthenticate(pair.now).unwrap();
    pair.sent();
    let started = pair.now;
    assert_eq!(pair.session.poll_timeout(), Some(started + timeout));
    pair.advance(timeout - std::time::Duration::from_millis(1));
    assert!(pair.session.is_connected());
    pair.advance(std::time::Duration::from_millis(1));
    assert_eq!(
        disconnect_reason(&pair.sent()),
        Some(DisconnectReasonCode::UnspecifiedError)
    );
    assert_eq!(
        ended_with(&pair.events()),
        Some(&ConnectionError::ReauthenticationTimeout(timeout))
    );
}

#[test]
fn a_full_inbound_queue_does_not_stop_the_answer_to_reauthentication() {
    // The application does not take its one message: reading pauses, except for answers the
    // session waits for, re-authentication's included.
    let mut session = Session::new(config(ProtocolVersion::V5).max_inbound(1, 1 << 20));
    session
        .set_authenticator(Box::new(ToyClient::new(KEY)))
        .unwrap();
    let mut pair = Pair::with_session(session, ProtocolVersion::V5);
    let server = handshake(&mut pair, 1);
    pair.deliver(connack_with(Some(method()), Some(server.proof())));
    let mut server = server;
    pair.deliver(common::server_publish(
        "in",
        mqtt_proto::QosPid::AtMostOnce,
        b"untaken",
    ));
    assert!(!pair.session.wants_read(pair.now), "the queue is full");
    pair.session.reauthenticate(pair.now).unwrap();
    assert!(pair.session.wants_read(pair.now));
    let nonce = server.start(reauth_data(&pair.sent()).as_deref()).unwrap();
    pair.deliver(challenge(nonce));
    let answer = answers(&pair.sent()).pop().unwrap();
    server.answer(Some(&answer)).unwrap();
    pair.deliver(success(server.proof()));
    assert!(!pair.session.is_reauthenticating());
    assert!(!pair.session.wants_read(pair.now), "paused again");
}

#[test]
fn reauthenticate_refuses_what_it_cannot_do() {
    // Without an authenticator.
    let mut pair = Pair::new(config(ProtocolVersion::V5));
    pair.connect(false);
    assert_eq!(
        pair.session.reauthenticate(pair.now),
        Err(AuthError::NoAuthenticator)
    );
    // [MQTT-4.12.0-7 v5.0]: on a connection whose CONNECT carried no method, no AUTH.
    pair.session
        .set_authenticator(Box::new(ToyClient::new(KEY)))
        .unwrap();
    assert_eq!(
        pair.session.reauthenticate(pair.now),
        Err(AuthError::NotNegotiated)
    );
    assert!(pair.sent().is_empty());

    // [MQTT-4.12.1-1 v5.0]: on a connection that started with another method.
    let mut cfg = config(ProtocolVersion::V5);
    cfg.properties.authentication_method = Some(MqttString::new("OTHER").unwrap());
    let mut pair = Pair::new(cfg);
    pair.connect(false);
    pair.session
        .set_authenticator(Box::new(ToyClient::new(KEY)))
        .unwrap();
    assert_eq!(
        pair.session.reauthenticate(pair.now),
        Err(AuthError::MethodMismatch)
    );

    // Before CONNACK.
    let mut pair = pair_with(ToyClient::new(KEY));
    assert_eq!(
        pair.session.reauthenticate(pair.now),
        Err(AuthError::NotConnected)
    );
    pair.open();
    assert_eq!(
        pair.session.reauthenticate(pair.now),
        Err(AuthError::NotConnected)
    );

    // An authenticator that cannot start: nothing is sent, the connection goes on.
    struct Once(bool);
    impl Authenticator for Once {
        fn method(&self) -> &str {
            METHOD
        }
        fn start(&mut self) -> Result<Option<Bytes>, AuthFailure> {
            if std::mem::replace(&mut self.0, true) {
                return Err(AuthFailure::new("the token expired"));
            }
            Ok(None)
        }
        fn challenge(&mut self, _: Option<&[u8]>) -> Result<Option<Bytes>, AuthFailure> {
            Ok(None)
        }
    }
    let mut pair = pair_with(Once(false));
    pair.open();
    pair.deliver(connack_with(Some(method()), None));
    assert!(pair.session.is_connected());
    assert_eq!(
        pair.session.reauthenticate(pair.now),
        Err(AuthError::Failed(AuthFailure::new("the token expired")))
    );
    assert!(pair.sent().is_empty());
    assert!(pair.session.is_connected());
    assert!(!pair.session.is_reauthenticating());
}

#[test]
fn an_acknowledgement_given_while_authenticating_waits_for_connack() {
    // [MQTT-3.1.2-30 v5.0]: with an Authentication Method, only AUTH (and DISCONNECT) goes out
    // until CONNACK, even a PUBREC the application allows while the exchange runs.
    let cfg = config(ProtocolVersion::V5)
        .manual_acks(true)
        .clean_start(false)
        .session_expiry(60);
    let mut session = Session::new(cfg);
    session
        .set_authenticator(Box::new(ToyClient::new(KEY)))
        .unwrap();
    let mut pair = Pair::with_session(session, ProtocolVersion::V5);
    let server = handshake(&mut pair, 1);
    pair.deliver(connack_with(Some(method()), Some(server.proof())));
    pair.events();
    let incoming = || {
        common::server_publish(
            "in",
            mqtt_proto::QosPid::ExactlyOnce(common::id(3)),
            b"once",
        )
    };
    pair.deliver(incoming());
    let token = pair
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::Message { ack, .. } => ack,
            _ => None,
        })
        .expect("a token to acknowledge with");
    pair.cut();
    pair.events();

    let connect = pair.open();
    let mut server = ToyServer::new(KEY, 1);
    let nonce = server
        .start(connect.properties.authentication_data.as_deref())
        .unwrap();
    pair.session.ack(pair.now, token).unwrap();
    assert!(pair.sent().is_empty(), "no PUBREC before CONNACK");
    pair.deliver(challenge(nonce));
    let answer = answers(&pair.sent()).pop().unwrap();
    server.answer(Some(&answer)).unwrap();
    let mut connack = ConnAck::accepted(true);
    connack.properties.authentication_method = Some(method());
    connack.properties.authentication_data = Some(server.proof());
    pair.deliver(Packet::from(connack));
    // The server resends the message; the PUBREC answers it, and it is not delivered again.
    let mut resent = incoming();
    if let Packet::Publish(p) = &mut resent {
        p.dup = true;
    }
    pair.deliver(resent);
    assert!(pair
        .sent()
        .iter()
        .any(|p| matches!(p, Packet::PubRec(r) if r.packet_id == common::id(3))));
    assert!(!pair
        .events()
        .iter()
        .any(|e| matches!(e, Event::Message { .. })));
}
