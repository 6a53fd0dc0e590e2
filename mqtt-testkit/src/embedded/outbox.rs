//! One connection's bounded queue of encoded packets, and the thread that writes it to the
//! socket.

use std::collections::VecDeque;
use std::io::{BufWriter, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_proto::{Packet, ProtocolVersion};

/// Why a packet was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// The queue holds as many packets or bytes as it may.
    Full,
    /// The connection is closing.
    Closed,
}

/// Encodes a packet into a frame of its own; `None` if `version` cannot express it.
pub(super) fn encode(version: ProtocolVersion, packet: &Packet) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    packet.encode(version, &mut buf).ok()?;
    Some(buf.freeze())
}

/// Packets waiting for the writer thread, bounded in packets and in bytes. A batch the writer
/// has taken no longer counts, so a connection holds at most twice the bound.
#[derive(Debug)]
pub(super) struct Outbox {
    state: Mutex<State>,
    ready: Condvar,
    max_packets: usize,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Bytes>,
    bytes: usize,
    closed: bool,
}

impl Outbox {
    pub(super) fn new(max_packets: usize, max_bytes: usize) -> Self {
        Self {
            state: Mutex::default(),
            ready: Condvar::new(),
            max_packets,
            max_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a frame if there is room.
    pub(super) fn push(&self, frame: Bytes) -> Result<(), Refused> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.frames.len() >= self.max_packets
            || state.bytes.saturating_add(frame.len()) > self.max_bytes
        {
            return Err(Refused::Full);
        }
        state.bytes += frame.len();
        state.frames.push_back(frame);
        self.ready.notify_one();
        Ok(())
    }

    /// Encodes and queues a packet.
    pub(super) fn send(&self, version: ProtocolVersion, packet: &Packet) -> Result<(), Refused> {
        self.push(encode(version, packet).ok_or(Refused::Closed)?)
    }

    /// Closes the queue after `last` (a refusing CONNACK or a DISCONNECT, queued beyond the
    /// bounds): the writer writes what is queued, then shuts the socket down. Closing twice
    /// keeps the first.
    pub(super) fn close(&self, last: Option<Bytes>) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        state.closed = true;
        if let Some(frame) = last {
            state.frames.push_back(frame);
        }
        self.ready.notify_one();
    }

    /// Drops whatever is queued and closes: the socket failed.
    fn abort(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.frames.clear();
        state.bytes = 0;
    }

    /// Takes every queued frame, waiting for one; `None` once closed and empty.
    fn take(&self) -> Option<VecDeque<Bytes>> {
        let mut state = self.lock();
        loop {
            if !state.frames.is_empty() {
                state.bytes = 0;
                return Some(std::mem::take(&mut state.frames));
            }
            if state.closed {
                return None;
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Writes the outbox to `stream` until it closes or a write fails or makes no progress for
/// `timeout`; then shuts the socket down, which also ends the connection's reading thread.
pub(super) fn write_loop(stream: &TcpStream, outbox: &Outbox, timeout: Duration) {
    if stream.set_write_timeout(Some(timeout)).is_ok() {
        let mut writer = BufWriter::new(stream);
        while let Some(frames) = outbox.take() {
            let written = frames
                .iter()
                .try_for_each(|frame| writer.write_all(frame))
                .and_then(|()| writer.flush());
            if written.is_err() {
                break;
            }
        }
        // Not flushed again: the socket failed or everything was written.
        let _ = writer.into_parts();
    }
    outbox.abort();
    let _ = stream.shutdown(Shutdown::Both);
}
