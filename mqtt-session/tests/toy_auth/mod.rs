//! A toy challenge-response method of enhanced authentication, both sides of it, for tests.
//!
//! The client starts with a nonce of its own; the server answers with a nonce (one or more
//! rounds); the client answers each with a keyed hash of both nonces; the server accepts with
//! a proof of its own, a keyed hash the client checks. Not cryptography: a wrong key, a
//! replayed answer or a skipped step gives a wrong answer, which is all the tests need.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use mqtt_session::{AuthFailure, Authenticator};

/// The method's name.
pub const METHOD: &str = "TOY-CHAP";

/// A keyed hash: FNV-1a (64 bits) over the key, a label and the parts.
pub fn mac(key: &[u8], label: &[u8], parts: &[&[u8]]) -> [u8; 8] {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so that moving bytes between parts changes the hash.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    };
    eat(key);
    eat(label);
    for part in parts {
        eat(part);
    }
    hash.to_be_bytes()
}

/// What a [`ToyClient`] did, shared with the test.
#[derive(Debug, Default)]
pub struct ToyLog {
    /// Exchanges started (CONNECT or re-authentication).
    pub starts: u64,
    /// Challenges answered.
    pub challenges: u64,
    /// Servers verified.
    pub finishes: u64,
    /// Why it gave up, each time it did.
    pub failures: Vec<String>,
}

/// The client side.
#[derive(Debug)]
pub struct ToyClient {
    key: Vec<u8>,
    counter: u64,
    client_nonce: Option<[u8; 8]>,
    last_challenge: Option<Vec<u8>>,
    pub log: Arc<Mutex<ToyLog>>,
}

impl ToyClient {
    pub fn new(key: &[u8]) -> Self {
        Self {
            key: key.to_vec(),
            counter: 0,
            client_nonce: None,
            last_challenge: None,
            log: Arc::default(),
        }
    }

    fn fail(&self, why: &'static str) -> AuthFailure {
        if let Ok(mut log) = self.log.lock() {
            log.failures.push(why.to_string());
        }
        AuthFailure::new(why)
    }
}

impl Authenticator for ToyClient {
    fn method(&self) -> &str {
        METHOD
    }

    fn start(&mut self) -> Result<Option<Bytes>, AuthFailure> {
        self.counter += 1;
        let nonce = mac(&self.key, b"client-nonce", &[&self.counter.to_be_bytes()]);
        self.client_nonce = Some(nonce);
        self.last_challenge = None;
        self.log.lock().unwrap().starts += 1;
        Ok(Some(Bytes::copy_from_slice(&nonce)))
    }

    fn challenge(&mut self, data: Option<&[u8]>) -> Result<Option<Bytes>, AuthFailure> {
        let Some(nonce) = data.filter(|d| d.len() == 8) else {
            return Err(self.fail("a challenge without a nonce"));
        };
        let Some(client_nonce) = self.client_nonce else {
            return Err(self.fail("a challenge before the exchange started"));
        };
        self.last_challenge = Some(nonce.to_vec());
        self.log.lock().unwrap().challenges += 1;
        let answer = mac(&self.key, b"client", &[&client_nonce, nonce]);
        Ok(Some(Bytes::copy_from_slice(&answer)))
    }

    fn finish(&mut self, data: Option<&[u8]>) -> Result<(), AuthFailure> {
        let (Some(client_nonce), Some(challenge)) = (self.client_nonce, &self.last_challenge)
        else {
            return Err(self.fail("the server accepted before it challenged"));
        };
        let expected = mac(&self.key, b"server", &[&client_nonce, challenge]);
        if data != Some(&expected[..]) {
            return Err(self.fail("the server's proof is wrong"));
        }
        self.client_nonce = None;
        self.last_challenge = None;
        self.log.lock().unwrap().finishes += 1;
        Ok(())
    }
}

/// The server side of one exchange at a time.
#[derive(Debug)]
pub struct ToyServer {
    key: Vec<u8>,
    rounds: u32,
    counter: u64,
    client_nonce: Vec<u8>,
    challenge: Option<[u8; 8]>,
    rounds_left: u32,
}

impl ToyServer {
    /// A server that challenges `rounds` times (at least once) per exchange.
    pub fn new(key: &[u8], rounds: u32) -> Self {
        Self {
            key: key.to_vec(),
            rounds: rounds.max(1),
            counter: 0,
            client_nonce: Vec::new(),
            challenge: None,
            rounds_left: 0,
        }
    }

    fn next_challenge(&mut self) -> Bytes {
        self.counter += 1;
        let nonce = mac(
            b"server-nonce",
            &self.client_nonce,
            &[&self.counter.to_be_bytes()],
        );
        self.challenge = Some(nonce);
        self.rounds_left -= 1;
        Bytes::copy_from_slice(&nonce)
    }

    /// The client's first data (CONNECT or AUTH 0x19): the first challenge.
    pub fn start(&mut self, data: Option<&[u8]>) -> Result<Bytes, String> {
        let nonce = data
            .filter(|d| d.len() == 8)
            .ok_or("no client nonce in the first data")?;
        self.client_nonce = nonce.to_vec();
        self.rounds_left = self.rounds;
        Ok(self.next_challenge())
    }

    /// The client's answer: the next challenge, or `None` when the exchange succeeded.
    pub fn answer(&mut self, data: Option<&[u8]>) -> Result<Option<Bytes>, String> {
        let challenge = self.challenge.ok_or("an answer to no challenge")?;
        let expected = mac(&self.key, b"client", &[&self.client_nonce, &challenge]);
        if data != Some(&expected[..]) {
            return Err("wrong answer to the challenge".into());
        }
        if self.rounds_left > 0 {
            return Ok(Some(self.next_challenge()));
        }
        Ok(None)
    }

    /// The server's proof, sent when it accepts.
    pub fn proof(&self) -> Bytes {
        let challenge = self.challenge.unwrap_or_default();
        Bytes::copy_from_slice(&mac(
            &self.key,
            b"server",
            &[&self.client_nonce, &challenge],
        ))
    }
}
