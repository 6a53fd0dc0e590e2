//! What an async runtime lends a client: transports, a timer, its clock and a spawner.
//!
//! `mqtt-tokio` and `mqtt-async-std` each implement [`Runtime`] and nothing more; the client
//! handle and its driver are written once, in [`crate::client`]. Implementing these traits
//! runs the same client on another runtime.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use mqtt_session::client::{BrokerUrl, ClientCore, DialError, TlsOptions};

use crate::client::Driver;

/// An async runtime as a client needs it.
pub trait Runtime: 'static {
    /// An open connection to a broker.
    type Transport: Transport;
    /// A timer that can be moved to a new deadline.
    type Timer: Timer;

    /// Opens a transport to `url`: TCP, then TLS for `mqtts`/`wss` with `tls` (built from
    /// `tls_options` by [`crate::tls::client_config_for`]), then the WebSocket upgrade for
    /// `ws`/`wss` with messages of at most `max_packet_size` bytes. The driver bounds the
    /// time it may take. A failure says which step failed ([`DialError`]): name resolution,
    /// TCP, TLS or the WebSocket upgrade.
    fn connect(
        url: BrokerUrl,
        tls: Option<crate::TlsConfig>,
        tls_options: TlsOptions,
        max_packet_size: usize,
    ) -> impl Future<Output = Result<Self::Transport, DialError>> + Send;

    /// A timer to [`set`](Timer::set) before polling.
    fn timer() -> Self::Timer;

    /// The current time as this runtime's timers see it.
    fn now() -> Instant;

    /// Runs a client's driver task to completion; what [`Client::connect`] uses.
    ///
    /// [`Client::connect`]: crate::client::Client::connect
    fn spawn(driver: Driver);
}

/// A resettable timer.
pub trait Timer: Send {
    /// Sets the deadline, replacing any earlier one, fired or not.
    fn set(self: Pin<&mut Self>, deadline: Instant);

    /// Ready once the deadline has passed.
    fn poll_fired(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}

/// An open connection to a broker, moving bytes between a socket and a [`ClientCore`].
pub trait Transport: Send + Unpin + 'static {
    /// Reads into `buf` (up to `size` bytes where the transport can bound it); `Ok(0)` is
    /// the end of the stream.
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        size: usize,
    ) -> Poll<io::Result<usize>>;

    /// Hands the core's pending bytes to the transport, reporting them written at `now`:
    /// on a byte stream with [`poll_write_transmit_vectored`](crate::poll_write_transmit_vectored),
    /// so that large payloads are written from the messages' own bytes.
    /// `Ready(Ok(true))` when something was written, `Ready(Ok(false))` when nothing is
    /// pending.
    fn poll_transmit<W>(
        &mut self,
        cx: &mut Context<'_>,
        core: &mut ClientCore<W>,
        now: Instant,
    ) -> Poll<io::Result<bool>>;

    /// Pushes buffered bytes (TLS records, WebSocket frames) to the socket.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Closes gracefully: TLS close_notify, WebSocket close frame, TCP FIN.
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}
