//! Transports: TCP, TLS over TCP, and WebSocket over either.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;

use mqtt_session::client::{BrokerUrl, ClientCore, TlsOptions};

/// A byte stream: plain TCP or TLS.
#[derive(Debug)]
pub(crate) enum ByteStream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ByteStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
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
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An open connection to a broker.
#[derive(Debug)]
pub(crate) enum Transport {
    /// MQTT directly on the byte stream.
    Stream(ByteStream),
    /// MQTT in binary WebSocket messages; packets need not align with messages.
    WebSocket(Box<WebSocketStream<ByteStream>>),
}

fn ws_error(error: WsError) -> io::Error {
    match error {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            io::Error::new(io::ErrorKind::ConnectionAborted, error)
        }
        other => io::Error::other(other),
    }
}

/// Opens a transport to `url`: TCP, then TLS for `mqtts`/`wss`, then the WebSocket upgrade
/// (subprotocol `mqtt`) for `ws`/`wss`.
pub(crate) async fn connect(
    url: &BrokerUrl,
    tls: Option<&Arc<rustls::ClientConfig>>,
    tls_options: &TlsOptions,
    max_packet_size: usize,
) -> io::Result<Transport> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port)).await?;
    tcp.set_nodelay(true)?;
    let stream = if url.scheme.is_tls() {
        let config = tls.ok_or_else(|| io::Error::other("TLS is not configured"))?;
        let name = crate::tls::server_name(&url.host, tls_options)?;
        let stream = TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await?;
        ByteStream::Tls(Box::new(stream))
    } else {
        ByteStream::Tcp(tcp)
    };
    if !url.scheme.is_websocket() {
        return Ok(Transport::Stream(stream));
    }
    let mut request = url
        .websocket_url()
        .into_client_request()
        .map_err(ws_error)?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
    // One WebSocket message may carry several packets; bound it well above one packet.
    let limit = max_packet_size
        .max(16 * 1024 * 1024)
        .saturating_add(64 * 1024);
    let config = WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit));
    let (ws, _response) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .map_err(ws_error)?;
    Ok(Transport::WebSocket(Box::new(ws)))
}

impl Transport {
    /// Reads what is available into `buf`; `Ok(0)` is the end of the stream.
    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        match self {
            Self::Stream(s) => tokio_util::io::poll_read_buf(Pin::new(s), cx, buf),
            Self::WebSocket(ws) => loop {
                match Pin::new(ws.as_mut()).poll_next(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) | Poll::Ready(Some(Ok(WsMessage::Close(_)))) => {
                        return Poll::Ready(Ok(0));
                    }
                    Poll::Ready(Some(Ok(WsMessage::Binary(data)))) => {
                        if data.is_empty() {
                            continue;
                        }
                        buf.extend_from_slice(&data);
                        return Poll::Ready(Ok(data.len()));
                    }
                    Poll::Ready(Some(Ok(WsMessage::Text(_)))) => {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "text WebSocket message: MQTT uses binary messages only",
                        )));
                    }
                    // Pings are answered by the WebSocket layer.
                    Poll::Ready(Some(Ok(_))) => continue,
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(ws_error(e))),
                }
            },
        }
    }

    /// Hands the core's pending bytes to the transport. `Ready(Ok(true))` when something was
    /// written, `Ready(Ok(false))` when nothing is pending.
    pub(crate) fn poll_transmit<W>(
        &mut self,
        cx: &mut Context<'_>,
        core: &mut ClientCore<W>,
    ) -> Poll<io::Result<bool>> {
        match self {
            Self::Stream(s) => {
                let Some(bytes) = core.poll_transmit() else {
                    return Poll::Ready(Ok(false));
                };
                match Pin::new(s).poll_write(cx, bytes) {
                    Poll::Ready(Ok(0)) => Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => {
                        core.handle_written(n);
                        Poll::Ready(Ok(true))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            }
            Self::WebSocket(ws) => {
                if core.poll_transmit().is_none() {
                    return Poll::Ready(Ok(false));
                }
                let mut ws = Pin::new(ws.as_mut());
                match ws.as_mut().poll_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(ws_error(e))),
                    Poll::Pending => return Poll::Pending,
                }
                let Some(bytes) = core.take_transmit() else {
                    return Poll::Ready(Ok(false));
                };
                match ws.start_send(WsMessage::Binary(bytes.freeze())) {
                    Ok(()) => Poll::Ready(Ok(true)),
                    Err(e) => Poll::Ready(Err(ws_error(e))),
                }
            }
        }
    }

    /// Pushes buffered bytes (TLS records, WebSocket frames) to the socket.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Self::Stream(s) => Pin::new(s).poll_flush(cx),
            Self::WebSocket(ws) => Pin::new(ws.as_mut()).poll_flush(cx).map_err(ws_error),
        }
    }

    /// Closes gracefully: TLS close_notify, WebSocket close frame, TCP FIN.
    pub(crate) fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Self::Stream(s) => Pin::new(s).poll_shutdown(cx),
            Self::WebSocket(ws) => Pin::new(ws.as_mut()).poll_close(cx).map_err(ws_error),
        }
    }
}
