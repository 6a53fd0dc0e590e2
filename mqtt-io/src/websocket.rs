//! MQTT over WebSocket ([MQTT-6.0.0-1 v3.1.1 v5.0] to [MQTT-6.0.0-3 v3.1.1 v5.0]): the upgrade
//! request with the `mqtt` subprotocol, the frame limits, and the translation between the client's
//! byte stream and binary WebSocket messages, written once against the `Stream`/`Sink` traits that
//! every tungstenite binding implements.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use futures_core::Stream;
use futures_sink::Sink;
use mqtt_session::client::{BrokerUrl, ClientCore};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Request;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Error as WsError, Message};

/// The HTTP upgrade request for `url`, asking for the `mqtt` subprotocol
/// [MQTT-6.0.0-3 v3.1.1 v5.0].
pub fn request(url: &BrokerUrl) -> io::Result<Request> {
    let mut request = url
        .websocket_url()
        .into_client_request()
        .map_err(io_error)?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
    Ok(request)
}

/// WebSocket limits for a client that accepts packets up to `max_packet_size`. One message may
/// carry several packets [MQTT-6.0.0-2 v3.1.1 v5.0], so the bound sits well above one packet.
pub fn config(max_packet_size: usize) -> WebSocketConfig {
    let limit = max_packet_size
        .max(16 * 1024 * 1024)
        .saturating_add(64 * 1024);
    WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit))
}

/// A WebSocket error as the IO error the client reports.
pub fn io_error(error: WsError) -> io::Error {
    match error {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            io::Error::new(io::ErrorKind::ConnectionAborted, error)
        }
        other => io::Error::other(other),
    }
}

/// Reads the next binary message into `buf`; `Ok(0)` is the end of the stream (a close
/// message or the end of the connection). Packets need not align with messages
/// [MQTT-6.0.0-2 v3.1.1 v5.0]; text messages are an error [MQTT-6.0.0-1 v3.1.1 v5.0]; pings are
/// answered by the WebSocket layer.
pub fn poll_read<S>(
    mut ws: Pin<&mut S>,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>>
where
    S: Stream<Item = Result<Message, WsError>>,
{
    loop {
        match ws.as_mut().poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) | Poll::Ready(Some(Ok(Message::Close(_)))) => {
                return Poll::Ready(Ok(0));
            }
            Poll::Ready(Some(Ok(Message::Binary(data)))) => {
                if data.is_empty() {
                    continue;
                }
                buf.extend_from_slice(&data);
                return Poll::Ready(Ok(data.len()));
            }
            Poll::Ready(Some(Ok(Message::Text(_)))) => {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "text WebSocket message: MQTT uses binary messages only",
                )));
            }
            Poll::Ready(Some(Ok(_))) => continue,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(io_error(e))),
        }
    }
}

/// Hands the core's next buffer to the WebSocket as one binary message: a run of packets, or
/// the payload of a large PUBLISH on its own, which is legal as receivers must not expect
/// packets to align with messages [MQTT-6.0.0-2 v3.1.1 v5.0]. The payload is
/// not copied on the way; tungstenite copies each message into its frame buffer as it
/// writes it.
/// `Ready(Ok(true))` when a message was queued, `Ready(Ok(false))` when nothing is pending.
pub fn poll_transmit<S, W>(
    mut ws: Pin<&mut S>,
    cx: &mut Context<'_>,
    core: &mut ClientCore<W>,
    now: Instant,
) -> Poll<io::Result<bool>>
where
    S: Sink<Message, Error = WsError>,
{
    if core.poll_transmit(now).is_none() {
        return Poll::Ready(Ok(false));
    }
    match ws.as_mut().poll_ready(cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(e)) => return Poll::Ready(Err(io_error(e))),
        Poll::Pending => return Poll::Pending,
    }
    let Some(bytes) = core.take_transmit(now) else {
        return Poll::Ready(Ok(false));
    };
    Poll::Ready(
        ws.start_send(Message::Binary(bytes))
            .map(|()| true)
            .map_err(io_error),
    )
}

/// Pushes queued frames to the socket.
pub fn poll_flush<S>(ws: Pin<&mut S>, cx: &mut Context<'_>) -> Poll<io::Result<()>>
where
    S: Sink<Message, Error = WsError>,
{
    ws.poll_flush(cx).map_err(io_error)
}

/// Sends a close frame and closes the underlying stream.
pub fn poll_close<S>(ws: Pin<&mut S>, cx: &mut Context<'_>) -> Poll<io::Result<()>>
where
    S: Sink<Message, Error = WsError>,
{
    ws.poll_close(cx).map_err(io_error)
}
