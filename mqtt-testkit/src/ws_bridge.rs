//! A WebSocket front (`ws://`, and `wss://` with the test certificates) for a broker's plain
//! TCP listener, bound to loopback.
//!
//! mosquitto 2.0's websockets listener ignores the address it is given and listens on every
//! interface (checked with mosquitto 2.0.11: `listener N 127.0.0.1` + `protocol websockets`
//! listens on `*:N`, and `bind_interface lo` does not help), which would expose an anonymous
//! broker beyond the machine while a test runs. So tests never open one: a client's WebSocket
//! connection ends here, on 127.0.0.1, and its MQTT bytes go on to the broker over TCP. The
//! WebSocket server is tungstenite's, a peer independent of the client's own framing.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::{Message, WebSocket};

/// How long a connection's handshakes (TLS, WebSocket) may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running bridge; stops when dropped.
#[derive(Debug)]
pub(crate) struct WsBridge {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WsBridge {
    /// Listens on a free port of 127.0.0.1 and forwards each WebSocket connection to
    /// `127.0.0.1:target`, over TLS first when `tls` is given.
    pub(crate) fn start(target: u16, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        assert!(
            addr.ip().is_loopback(),
            "the bridge listens on loopback only"
        );
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let tls = tls.clone();
                        let stopping = stopping.clone();
                        std::thread::spawn(move || serve(stream, target, tls, &stopping));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            port: addr.port(),
            stop,
            thread: Some(thread),
        }
    }

    /// The loopback port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for WsBridge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The server TLS configuration for the test certificates.
pub(crate) fn tls_config(cert_pem: &str, key_pem: &str) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("the test certificate parses");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("the test key parses");
    // Deprecated in rustls 0.23.48 for lacking post-quantum key exchange, which tests need not.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("a usable certificate");
    Arc::new(config)
}

/// One client connection: handshakes, then bytes both ways until either side closes.
fn serve(
    stream: TcpStream,
    target: u16,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: &AtomicBool,
) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT));
    match tls {
        Some(config) => {
            let Ok(connection) = rustls::ServerConnection::new(config) else {
                return;
            };
            let stream = rustls::StreamOwned::new(connection, stream);
            if let Some(ws) = handshake(stream) {
                pump(ws, target, stop, |s| &s.sock);
            }
        }
        None => {
            if let Some(ws) = handshake(stream) {
                pump(ws, target, stop, |s| s);
            }
        }
    }
}

/// The WebSocket handshake, answering with the `mqtt` subprotocol the client asks for
/// [MQTT-6.0.0-3 v3.1.1 v5.0]. (tungstenite's callback type fixes the large error type.)
#[allow(clippy::result_large_err)]
fn handshake<S: Read + Write>(stream: S) -> Option<WebSocket<S>> {
    let callback = |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        let asks_mqtt = request
            .headers()
            .get_all("Sec-WebSocket-Protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == "mqtt");
        if asks_mqtt {
            response.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                "mqtt".parse().expect("a header value"),
            );
        }
        Ok(response)
    };
    tungstenite::accept_hdr(stream, callback).ok()
}

/// Moves bytes both ways on one thread, both sockets non-blocking.
fn pump<S: Read + Write>(
    mut ws: WebSocket<S>,
    target: u16,
    stop: &AtomicBool,
    tcp: impl Fn(&S) -> &TcpStream,
) {
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", target)) else {
        let _ = ws.close(None);
        let _ = ws.flush();
        return;
    };
    let _ = upstream.set_nodelay(true);
    if upstream.set_nonblocking(true).is_err() || tcp(ws.get_ref()).set_nonblocking(true).is_err() {
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let mut idle = true;
        match ws.read() {
            Ok(Message::Binary(bytes)) => {
                idle = false;
                if write_all(&mut upstream, &bytes, stop).is_err() {
                    break;
                }
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => idle = false,
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
        match upstream.read(&mut buf) {
            Ok(0) => {
                let _ = ws.close(None);
                let _ = ws.flush();
                break;
            }
            Ok(n) => {
                idle = false;
                if send(&mut ws, Message::Binary(buf[..n].to_vec().into())).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
        match ws.flush() {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
        if idle {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Queues a message; a full socket buffer is not an error (flushed later).
fn send<S: Read + Write>(ws: &mut WebSocket<S>, message: Message) -> Result<(), ()> {
    match ws.write(message) {
        Ok(()) => Ok(()),
        Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => Ok(()),
        Err(_) => Err(()),
    }
}

/// Writes everything to a non-blocking socket, waiting while it is full.
fn write_all(stream: &mut TcpStream, mut bytes: &[u8], stop: &AtomicBool) -> std::io::Result<()> {
    while !bytes.is_empty() {
        if stop.load(Ordering::Relaxed) {
            return Err(ErrorKind::Interrupted.into());
        }
        match stream.write(bytes) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
