//! A scripted broker on loopback, for what a real broker never does: flood a client, stop
//! reading, trickle a packet a byte at a time. Each accepted connection runs one script on a
//! thread of its own, so the client under test may use any runtime.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mqtt_proto::{ConnAck, Connect, Decoder, Packet, ProtocolVersion, Publish, QosPid, TopicName};

/// What one connection does, given the socket after CONNECT was read.
pub type Script = Box<dyn FnOnce(&mut Conn) + Send>;

/// How long a script's socket waits for a read or a write before the script fails.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);

/// One accepted connection, with helpers to speak MQTT on it.
#[derive(Debug)]
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
    /// The version the client's CONNECT asked for.
    pub version: ProtocolVersion,
    /// The client's CONNECT, if it decodes in that version.
    pub connect: Option<Connect>,
    decoder: Decoder,
    buf: BytesMut,
}

impl Conn {
    fn accept(stream: TcpStream) -> std::io::Result<Self> {
        stream.set_read_timeout(Some(SOCKET_TIMEOUT))?;
        stream.set_write_timeout(Some(SOCKET_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let mut conn = Self {
            stream,
            version: ProtocolVersion::V3_1_1,
            connect: None,
            decoder: Decoder::new(ProtocolVersion::V5),
            buf: BytesMut::new(),
        };
        // The protocol level is the byte after the protocol name; read CONNECT leniently.
        let connect = conn.read_raw()?;
        let level = connect.get(8).copied().unwrap_or(4);
        conn.version = match level {
            5 => ProtocolVersion::V5,
            3 => ProtocolVersion::V3_1,
            _ => ProtocolVersion::V3_1_1,
        };
        conn.decoder = Decoder::new(conn.version);
        conn.connect = match conn.decoder.decode(&mut BytesMut::from(&connect[..])) {
            Ok(Some(Packet::Connect(c))) => Some(*c),
            _ => None,
        };
        Ok(conn)
    }

    /// Reads one whole packet's bytes, whatever it is.
    fn read_raw(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            if let Ok(Some((_, size))) = self.decoder.frame_len(&self.buf) {
                if self.buf.len() >= size {
                    return Ok(self.buf.split_to(size).to_vec());
                }
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads the next packet the client sent; `None` at the end of the stream or on a read
    /// timeout.
    pub fn read_packet(&mut self) -> Option<Packet> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(packet)) => return Some(packet),
                Ok(None) => {}
                Err(e) => panic!("the client sent a malformed packet: {e}"),
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Encodes and writes a packet.
    pub fn send(&mut self, packet: Packet) -> std::io::Result<usize> {
        let mut wire = BytesMut::new();
        packet
            .encode(self.version, &mut wire)
            .expect("the script's packet encodes");
        self.stream.write_all(&wire)?;
        Ok(wire.len())
    }

    /// Accepts the connection: CONNACK, success, no session.
    pub fn connack(&mut self) {
        self.send(Packet::from(ConnAck::accepted(false)))
            .expect("write CONNACK");
    }

    /// Writes raw bytes.
    pub fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads and discards whatever the client sends until it closes or `limit` passes.
    pub fn drain(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let _ = self
            .stream
            .set_read_timeout(Some(Duration::from_millis(100)));
        let mut sink = [0u8; 16 * 1024];
        while Instant::now() < deadline {
            match self.stream.read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
    }
}

/// A PUBLISH to `topic` whose payload is `index` (4 bytes, big-endian) padded to `size`.
pub fn indexed_publish(topic: &str, qos_pid: QosPid, index: u32, size: usize) -> Packet {
    let mut payload = index.to_be_bytes().to_vec();
    payload.resize(size.max(4), 0xA5);
    let topic = TopicName::new(topic).expect("valid topic");
    Packet::Publish(Publish::new(topic, qos_pid, payload))
}

/// A broker on a loopback port that runs one script per accepted connection, in order.
#[derive(Debug)]
pub struct ScriptedBroker {
    url: String,
    thread: Option<JoinHandle<()>>,
    done: Arc<AtomicBool>,
}

impl ScriptedBroker {
    /// Listens on `127.0.0.1` on a free port and runs `scripts`, one per connection.
    pub fn start(scripts: Vec<Script>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        assert!(
            addr.ip().is_loopback(),
            "scripted brokers listen on loopback only"
        );
        let url = format!("mqtt://{addr}");
        let done = Arc::new(AtomicBool::new(false));
        let finished = done.clone();
        let thread = std::thread::spawn(move || {
            let mut sessions = Vec::new();
            for script in scripts {
                let (stream, _) = listener.accept().expect("accept");
                let mut conn = Conn::accept(stream).expect("read CONNECT");
                // Each connection on its own thread, so that a script that holds its socket
                // open does not keep the next connection from being accepted.
                sessions.push(std::thread::spawn(move || script(&mut conn)));
            }
            for session in sessions {
                if let Err(panic) = session.join() {
                    finished.store(true, Ordering::SeqCst);
                    std::panic::resume_unwind(panic);
                }
            }
            finished.store(true, Ordering::SeqCst);
        });
        Self {
            url,
            thread: Some(thread),
            done,
        }
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Whether every script has finished.
    pub fn is_finished(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }

    /// Waits for the scripts, failing the test if one failed.
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}
