//! Transports: TCP, TLS over TCP, WebSocket over either, and Unix domain sockets, through the
//! `futures-io` traits.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_net::TcpStream;
#[cfg(feature = "websocket")]
use async_tungstenite::WebSocketStream;
use bytes::BytesMut;
use futures_io::{AsyncRead, AsyncWrite};
#[cfg(feature = "tls")]
use futures_rustls::TlsConnector;

#[cfg(feature = "websocket")]
use mqtt_io::websocket;
use mqtt_io::TlsConfig;
use mqtt_session::client::{BrokerUrl, ClientCore, DialError, Scheme, TlsOptions};

/// A byte stream: plain TCP or TLS.
pub(crate) trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> ByteStream for T {}

/// An open connection to a broker through `futures-io`.
pub struct Transport(Inner);

/// The connection's layers.
enum Inner {
    /// MQTT directly on the byte stream, read into a zeroed buffer of the transport's own
    /// (`futures-io` reads into initialised memory only), whose pieces go to the session.
    Stream(Box<dyn ByteStream>, BytesMut),
    /// MQTT in binary WebSocket messages; packets need not align with messages.
    #[cfg(feature = "websocket")]
    WebSocket(Box<WebSocketStream<Box<dyn ByteStream>>>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Inner::Stream(..) => "Transport::Stream",
            #[cfg(feature = "websocket")]
            Inner::WebSocket(_) => "Transport::WebSocket",
        })
    }
}

/// Opens a transport to `url`: TCP, then TLS for `mqtts`/`wss`, then the WebSocket upgrade
/// (subprotocol `mqtt`) for `ws`/`wss`.
pub(crate) async fn connect(
    url: BrokerUrl,
    tls: Option<TlsConfig>,
    tls_options: TlsOptions,
    max_packet_size: usize,
) -> Result<Transport, DialError> {
    if url.scheme == Scheme::Unix {
        return connect_unix(&url.path).await.map_err(DialError::connect);
    }
    let addresses = async_net::resolve((url.host.as_str(), url.port))
        .await
        .map_err(DialError::resolve)?;
    // Every address in turn, as `TcpStream::connect` would; the last error if none answers.
    let tcp = TcpStream::connect(&addresses[..])
        .await
        .map_err(DialError::connect)?;
    tcp.set_nodelay(true).map_err(DialError::connect)?;
    let stream: Box<dyn ByteStream> = if url.scheme.is_tls() {
        tls_handshake(tcp, &url, tls, &tls_options).await?
    } else {
        Box::new(tcp)
    };
    if !url.scheme.is_websocket() {
        return Ok(Transport(Inner::Stream(stream, BytesMut::new())));
    }
    websocket_handshake(stream, &url, max_packet_size).await
}

/// The TLS handshake.
#[cfg(feature = "tls")]
async fn tls_handshake(
    tcp: TcpStream,
    url: &BrokerUrl,
    tls: Option<TlsConfig>,
    tls_options: &TlsOptions,
) -> Result<Box<dyn ByteStream>, DialError> {
    let config = tls.ok_or_else(|| DialError::tls(io::Error::other("TLS is not configured")))?;
    let name = mqtt_io::tls::server_name(&url.host, tls_options).map_err(DialError::tls)?;
    let stream = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(DialError::tls)?;
    Ok(Box::new(stream))
}

/// Without the `tls` feature no TLS broker gets this far (refused when the client starts).
#[cfg(not(feature = "tls"))]
async fn tls_handshake(
    _tcp: TcpStream,
    _url: &BrokerUrl,
    _tls: Option<TlsConfig>,
    _tls_options: &TlsOptions,
) -> Result<Box<dyn ByteStream>, DialError> {
    Err(DialError::tls(io::Error::new(
        io::ErrorKind::Unsupported,
        "this build has no TLS support (the `tls` feature)",
    )))
}

/// The WebSocket upgrade (subprotocol `mqtt`).
#[cfg(feature = "websocket")]
async fn websocket_handshake(
    stream: Box<dyn ByteStream>,
    url: &BrokerUrl,
    max_packet_size: usize,
) -> Result<Transport, DialError> {
    let request = websocket::request(url).map_err(DialError::websocket)?;
    let config = Some(websocket::config(max_packet_size));
    let (ws, _response) = async_tungstenite::client_async_with_config(request, stream, config)
        .await
        .map_err(|e| DialError::websocket(websocket::io_error(e)))?;
    Ok(Transport(Inner::WebSocket(Box::new(ws))))
}

/// Without the `websocket` feature no WebSocket broker gets this far (refused when the
/// client starts).
#[cfg(not(feature = "websocket"))]
async fn websocket_handshake(
    _stream: Box<dyn ByteStream>,
    _url: &BrokerUrl,
    _max_packet_size: usize,
) -> Result<Transport, DialError> {
    Err(DialError::websocket(io::Error::new(
        io::ErrorKind::Unsupported,
        "this build has no WebSocket support (the `websocket` feature)",
    )))
}

/// Opens a Unix domain socket.
#[cfg(unix)]
async fn connect_unix(path: &str) -> io::Result<Transport> {
    let stream = async_net::unix::UnixStream::connect(path).await?;
    Ok(Transport(Inner::Stream(Box::new(stream), BytesMut::new())))
}

/// Unix domain sockets exist on Unix only.
#[cfg(not(unix))]
async fn connect_unix(_path: &str) -> io::Result<Transport> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "unix:// brokers need a Unix platform",
    ))
}

impl mqtt_io::Transport for Transport {
    // `futures-io` reads into initialised memory only. Bytes are read into a zeroed buffer
    // of the transport's own, and the piece read is handed to the session without a copy:
    // the session's buffer becomes that piece, or grows by it in place when it holds the
    // piece before (the rest of a packet cut in two). The buffer is zeroed once, when it is
    // allocated (by `calloc`, for free where the allocator maps fresh pages). The rest of a
    // large packet, whose buffer has exactly the room it needs, is read in place. A WebSocket
    // read takes at least one whole message.
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        size: usize,
    ) -> Poll<io::Result<usize>> {
        match &mut self.0 {
            Inner::Stream(stream, _) if buf.capacity() - buf.len() >= size => {
                let start = buf.len();
                buf.resize(start + size, 0);
                let room = buf.get_mut(start..).unwrap_or_default();
                let result = Pin::new(stream).poll_read(cx, room);
                let n = match result {
                    Poll::Ready(Ok(n)) => n,
                    _ => 0,
                };
                buf.truncate(start + n);
                result
            }
            Inner::Stream(stream, own) => {
                if own.len() < size {
                    *own = BytesMut::zeroed(2 * size);
                }
                let room = own.get_mut(..size).unwrap_or_default();
                let result = Pin::new(stream).poll_read(cx, room);
                if let Poll::Ready(Ok(n)) = result {
                    let piece = own.split_to(n);
                    if buf.is_empty() {
                        *buf = piece;
                    } else {
                        buf.unsplit(piece);
                    }
                }
                result
            }
            #[cfg(feature = "websocket")]
            Inner::WebSocket(ws) => websocket::poll_read(Pin::new(ws.as_mut()), cx, buf),
        }
    }

    fn poll_transmit<W>(
        &mut self,
        cx: &mut Context<'_>,
        core: &mut ClientCore<W>,
        now: Instant,
    ) -> Poll<io::Result<bool>> {
        match &mut self.0 {
            // TCP and Unix sockets write the buffers in one `writev`; TLS encrypts them into
            // records from rustls' bounded send buffer, as it would one buffer.
            Inner::Stream(s, _) => mqtt_io::poll_write_transmit_vectored(core, now, |slices| {
                Pin::new(s).poll_write_vectored(cx, slices)
            }),
            #[cfg(feature = "websocket")]
            Inner::WebSocket(ws) => websocket::poll_transmit(Pin::new(ws.as_mut()), cx, core, now),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.0 {
            Inner::Stream(s, _) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "websocket")]
            Inner::WebSocket(ws) => websocket::poll_flush(Pin::new(ws.as_mut()), cx),
        }
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.0 {
            Inner::Stream(s, _) => Pin::new(s).poll_close(cx),
            #[cfg(feature = "websocket")]
            Inner::WebSocket(ws) => websocket::poll_close(Pin::new(ws.as_mut()), cx),
        }
    }
}
