//! A scripted broker on loopback, for what a real broker never does: oversized packets and
//! packets trickled one byte at a time.

use std::time::Duration;

use mqtt_tokio::proto::DecodeError;
use mqtt_tokio::{Client, ClientOptions, ConnectionError, Event, ProtocolViolation};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(10);

/// Accepts one client and reads its CONNECT (any bytes will do here).
async fn accept(listener: &TcpListener) -> TcpStream {
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut buf = [0u8; 256];
    let n = socket.read(&mut buf).await.unwrap();
    assert!(n > 0 && buf[0] == 0x10, "expected CONNECT");
    socket
}

async fn listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("mqtt://{}", listener.local_addr().unwrap());
    (listener, url)
}

#[tokio::test]
async fn an_oversized_packet_is_refused_from_its_header() {
    let (listener, url) = listener().await;
    let broker = tokio::spawn(async move {
        let mut socket = accept(&listener).await;
        socket.write_all(&[0x20, 0x02, 0x00, 0x00]).await.unwrap();
        // PUBLISH announcing 200 MiB, then a little of it.
        let mut header = vec![0x30];
        let mut len = 200 * 1024 * 1024u32;
        loop {
            let byte = (len % 128) as u8;
            len /= 128;
            header.push(if len > 0 { byte | 0x80 } else { byte });
            if len == 0 {
                break;
            }
        }
        socket.write_all(&header).await.unwrap();
        let _ = socket.write_all(&[0u8; 4096]).await;
        // Hold the socket until the client closes it.
        let mut sink = [0u8; 1024];
        while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    let options = ClientOptions::new(&url)
        .client_id("small")
        .max_packet_size(1024 * 1024)
        .no_reconnect();
    let (_client, mut events) = Client::connect(options).unwrap();
    let reason = tokio::time::timeout(LIMIT, async {
        loop {
            match events.recv().await.expect("events") {
                Event::Disconnected { reason } => return reason,
                Event::Closed => panic!("closed without a reason"),
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    let ConnectionError::ProtocolViolation(violation) = reason else {
        panic!("{reason:?}");
    };
    assert!(
        matches!(
            violation,
            ProtocolViolation::Malformed(DecodeError::PacketTooLarge { .. })
        ),
        "{violation:?}"
    );
    tokio::time::timeout(LIMIT, broker).await.unwrap().unwrap();
}

#[tokio::test]
async fn packets_trickled_byte_by_byte() {
    let (listener, url) = listener().await;
    let broker = tokio::spawn(async move {
        let mut socket = accept(&listener).await;
        socket.set_nodelay(true).unwrap();
        // CONNACK, then PUBLISH QoS 0 "a/b" = "hello", one byte per write.
        let mut bytes = vec![0x20, 0x02, 0x00, 0x00, 0x30, 10, 0x00, 0x03];
        bytes.extend_from_slice(b"a/bhello");
        for byte in bytes {
            socket.write_all(&[byte]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut sink = [0u8; 1024];
        while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    let options = ClientOptions::new(&url).client_id("trickle").no_reconnect();
    let (client, mut events) = Client::connect(options).unwrap();
    let publish = tokio::time::timeout(LIMIT, async {
        loop {
            match events.recv().await.expect("events") {
                Event::Message { publish, .. } => return publish,
                Event::Closed => panic!("closed"),
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        (publish.topic.as_str(), &publish.payload[..]),
        ("a/b", &b"hello"[..])
    );
    client.disconnect().await.unwrap();
    tokio::time::timeout(LIMIT, broker).await.unwrap().unwrap();
}
