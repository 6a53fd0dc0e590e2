//! A small MQTT broker inside the process, for the quick starts and for tests that must run
//! with nothing installed.
//!
//! It is a demo and test broker, not a server to deploy: it listens on `127.0.0.1` only, keeps
//! everything in memory, and trades features for being short enough to read. Clients of MQTT
//! 3.1, 3.1.1 and 5.0 may connect to it at once, with any credentials.
//!
//! What it does:
//! - CONNECT/CONNACK with clean sessions only (Session Present is always 0; a 5.0 client that
//!   asks for a session expiry is told 0); a client id already connected takes over and the
//!   old connection is closed (5.0: DISCONNECT 0x8E first). Enhanced authentication (AUTH) is
//!   refused.
//! - SUBSCRIBE grants the QoS asked for; topic filters with `+` and `#`; topics starting with
//!   `$` are not matched by a leading wildcard. UNSUBSCRIBE. No shared subscriptions, no
//!   subscription identifiers, no topic aliases (the 5.0 CONNACK says so).
//! - PUBLISH at QoS 0, 1 and 2 in both directions. Each subscriber receives a message at the
//!   lower of the published QoS and its subscription's QoS, with packet ids of its own.
//!   Nothing is retransmitted: sessions end with their connection.
//! - Retained messages (stored, replaced, deleted by an empty payload, sent with RETAIN set to
//!   new subscriptions; 5.0 message expiry honoured), wills (published when a connection ends
//!   without DISCONNECT, at once: the will delay is not honoured), keep alive (a client silent
//!   for 1.5 times its keep alive is closed), PINGREQ.
//!
//! Everything is bounded, by `Limits`: the packet size, the number of connections, each
//! connection's outbound queue, in-flight messages, subscriptions and the retained store. A
//! subscriber too slow to take its messages loses QoS 0 messages once its queue is full; one
//! that cannot take a QoS 1 or 2 message is disconnected, since with clean sessions that is
//! the only way to tell it something was lost. A packet that breaks the protocol closes its
//! connection and nothing else; nothing a client sends can panic the broker.
//!
//! Threads and `std::net`, no runtime: each connection has a thread that reads and answers
//! its packets and a thread that writes its queue; the shared state sits in one `Router`
//! behind a mutex.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]

mod client;
mod connection;
mod outbox;
mod router;
#[cfg(test)]
mod tests;

use std::error::Error;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use router::Router;

/// Starts an embedded broker on a free loopback port for the rest of the process and returns
/// its URL, `mqtt://127.0.0.1:PORT`. It accepts connections when this returns.
pub fn embedded_broker() -> Result<String, Box<dyn Error>> {
    Ok(EmbeddedBroker::start(Limits::default())?.detach())
}

/// The bounds of an embedded broker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Connections open at once; more are closed as soon as they are accepted.
    pub(crate) max_connections: usize,
    /// The largest packet accepted, fixed header included; a larger one closes its connection
    /// (5.0: DISCONNECT 0x95). Announced to 5.0 clients as Maximum Packet Size.
    pub(crate) max_packet_size: usize,
    /// Packets queued for one connection's socket.
    pub(crate) max_queued_packets: usize,
    /// Bytes queued for one connection's socket.
    pub(crate) max_queued_bytes: usize,
    /// QoS 1/2 messages sent to one client and not yet acknowledged (fewer if the client's
    /// Receive Maximum says so); further ones wait in a queue bounded like the socket's. Also
    /// the QoS 2 messages a 5.0 client may have unreleased, announced as Receive Maximum.
    pub(crate) max_inflight: u16,
    /// Subscriptions of one client.
    pub(crate) max_subscriptions: usize,
    /// Retained messages kept; a new retained topic beyond it is forwarded but not kept.
    pub(crate) max_retained: usize,
    /// Bytes of retained messages kept.
    pub(crate) max_retained_bytes: usize,
    /// Time from accepting a connection to its CONNECT.
    pub(crate) connect_timeout: Duration,
    /// Time from the first byte of a packet to its last.
    pub(crate) packet_timeout: Duration,
    /// Time a write to a socket may make no progress before the connection is closed.
    pub(crate) write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            max_packet_size: 1 << 20,
            max_queued_packets: 1000,
            max_queued_bytes: 4 << 20,
            max_inflight: 64,
            max_subscriptions: 256,
            max_retained: 1000,
            max_retained_bytes: 16 << 20,
            connect_timeout: Duration::from_secs(10),
            packet_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// What every thread of one broker shares.
#[derive(Debug)]
struct Shared {
    limits: Limits,
    router: Mutex<Router>,
}

impl Shared {
    /// The router, locked. A thread that panicked while holding it left it usable: every
    /// update is a few field writes, so the state is taken as it is.
    fn router(&self) -> MutexGuard<'_, Router> {
        self.router.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running embedded broker; dropping it closes every connection and stops it.
#[derive(Debug)]
pub(crate) struct EmbeddedBroker {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Listens on a free loopback port and accepts connections on a thread of its own.
    ///
    /// # Panics
    ///
    /// If the listening address is not loopback (it is bound to `127.0.0.1`).
    pub(crate) fn start(limits: Limits) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        assert!(
            addr.ip().is_loopback(),
            "the embedded broker listens on loopback only, not {addr}"
        );
        let shared = Arc::new(Shared {
            limits,
            router: Mutex::new(Router::new(limits)),
        });
        let accepting = shared.clone();
        let acceptor = thread::Builder::new()
            .name("mqtt-embedded-accept".into())
            .spawn(move || accept_loop(&listener, &accepting))?;
        Ok(Self {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    /// Leaves the broker running until the process ends; returns its URL.
    pub(crate) fn detach(mut self) -> String {
        self.acceptor = None;
        self.url()
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.shared.router().stop();
        // Wake the acceptor, which then sees the broker stopped.
        let _ = TcpStream::connect(self.addr);
        let _ = acceptor.join();
    }
}

/// Accepts connections until the broker stops, each served on threads of its own.
fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(_) => {
                // Out of file descriptors, most likely: let some connections end.
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let registered = shared.router().register(&stream);
        let conn = match registered {
            Ok(conn) => conn,
            Err(router::Unavailable::Stopped) => return,
            // Over the connection limit: dropping the socket closes it.
            Err(router::Unavailable::Full) => continue,
        };
        let _ = stream.set_nodelay(true);
        let serving = shared.clone();
        let spawned = thread::Builder::new()
            .name(format!("mqtt-embedded-{conn}"))
            .spawn(move || connection::serve(stream, conn, &serving));
        if spawned.is_err() {
            shared.router().unregister(conn);
        }
    }
}
