//! Transports: TCP, TLS over TCP, WebSocket over either, and Unix domain sockets.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
#[cfg(feature = "tls")]
use tokio_rustls::client::TlsStream;
#[cfg(feature = "tls")]
use tokio_rustls::TlsConnector;
#[cfg(feature = "websocket")]
use tokio_tungstenite::WebSocketStream;

#[cfg(feature = "websocket")]
use mqtt_io::websocket;
use mqtt_io::TlsConfig;
use mqtt_session::client::{BrokerUrl, ClientCore, DialError, Scheme, TlsOptions};

/// A byte stream: plain TCP, TLS, or a Unix domain socket.
#[derive(Debug)]
pub(crate) enum ByteStream {
    Tcp(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream<TcpStream>>),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl AsyncRead for ByteStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            #[cfg(unix)]
            Self::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ByteStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            #[cfg(unix)]
            Self::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            #[cfg(unix)]
            Self::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Tcp(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.is_write_vectored(),
            #[cfg(unix)]
            Self::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            #[cfg(unix)]
            Self::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            #[cfg(unix)]
            Self::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// An open connection to a broker on tokio.
#[derive(Debug)]
pub struct Transport(Inner);

/// The connection's layers.
#[derive(Debug)]
enum Inner {
    /// MQTT directly on the byte stream.
    Stream(ByteStream),
    /// MQTT in binary WebSocket messages; packets need not align with messages.
    #[cfg(feature = "websocket")]
    WebSocket(Box<WebSocketStream<ByteStream>>),
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
    let addresses: Vec<_> = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .map_err(DialError::resolve)?
        .collect();
    // Every address in turn, as `TcpStream::connect` would; the last error if none answers.
    let tcp = TcpStream::connect(&addresses[..])
        .await
        .map_err(DialError::connect)?;
    tcp.set_nodelay(true).map_err(DialError::connect)?;
    let stream = if url.scheme.is_tls() {
        tls_handshake(tcp, &url, tls, &tls_options).await?
    } else {
        ByteStream::Tcp(tcp)
    };
    if !url.scheme.is_websocket() {
        return Ok(Transport(Inner::Stream(stream)));
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
) -> Result<ByteStream, DialError> {
    let config = tls.ok_or_else(|| DialError::tls(io::Error::other("TLS is not configured")))?;
    let name = mqtt_io::tls::server_name(&url.host, tls_options).map_err(DialError::tls)?;
    let stream = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(DialError::tls)?;
    Ok(ByteStream::Tls(Box::new(stream)))
}

/// Without the `tls` feature no TLS broker gets this far (refused when the client starts).
#[cfg(not(feature = "tls"))]
async fn tls_handshake(
    _tcp: TcpStream,
    _url: &BrokerUrl,
    _tls: Option<TlsConfig>,
    _tls_options: &TlsOptions,
) -> Result<ByteStream, DialError> {
    Err(DialError::tls(io::Error::new(
        io::ErrorKind::Unsupported,
        "this build has no TLS support (the `tls` feature)",
    )))
}

/// The WebSocket upgrade (subprotocol `mqtt`).
#[cfg(feature = "websocket")]
async fn websocket_handshake(
    stream: ByteStream,
    url: &BrokerUrl,
    max_packet_size: usize,
) -> Result<Transport, DialError> {
    let request = websocket::request(url).map_err(DialError::websocket)?;
    let config = websocket::config(max_packet_size);
    let (ws, _response) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .map_err(|e| DialError::websocket(websocket::io_error(e)))?;
    Ok(Transport(Inner::WebSocket(Box::new(ws))))
}

/// Without the `websocket` feature no WebSocket broker gets this far (refused when the
/// client starts).
#[cfg(not(feature = "websocket"))]
async fn websocket_handshake(
    _stream: ByteStream,
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
    let stream = tokio::net::UnixStream::connect(path).await?;
    Ok(Transport(Inner::Stream(ByteStream::Unix(stream))))
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
    // tokio reads into spare capacity: no scratch buffer.
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        size: usize,
    ) -> Poll<io::Result<usize>> {
        match &mut self.0 {
            Inner::Stream(s) => {
                buf.reserve(size);
                tokio_util::io::poll_read_buf(Pin::new(s), cx, buf)
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
            Inner::Stream(s) => mqtt_io::poll_write_transmit_vectored(core, now, |slices| {
                Pin::new(s).poll_write_vectored(cx, slices)
            }),
            #[cfg(feature = "websocket")]
            Inner::WebSocket(ws) => websocket::poll_transmit(Pin::new(ws.as_mut()), cx, core, now),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.0 {
            Inner::Stream(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "websocket")]
            Inner::WebSocket(ws) => websocket::poll_flush(Pin::new(ws.as_mut()), cx),
        }
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.0 {
            Inner::Stream(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "websocket")]
            Inner::WebSocket(ws) => websocket::poll_close(Pin::new(ws.as_mut()), cx),
        }
    }
}
