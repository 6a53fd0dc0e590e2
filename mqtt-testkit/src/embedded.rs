//! An MQTT broker inside the process (rumqttd, MQTT 3.1.1) for examples that must run with
//! nothing installed.

use std::collections::HashMap;
use std::error::Error;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

/// Starts rumqttd on a free loopback port, on threads of its own (it brings its own runtime),
/// and returns its URL once it accepts connections.
pub fn embedded_broker() -> Result<String, Box<dyn Error>> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let server = ServerSettings {
        name: "quickstart".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 10_000,
            max_payload_size: 1024 * 1024,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = Config {
        router: RouterConfig {
            max_connections: 16,
            max_outgoing_packet_count: 200,
            max_segment_size: 1024 * 1024,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Config::default()
    };
    let mut broker = Broker::new(config);
    std::thread::spawn(move || {
        if let Err(error) = broker.start() {
            eprintln!("embedded broker stopped: {error}");
        }
    });
    // Wait until it listens.
    for _ in 0..200 {
        if TcpStream::connect(listen).is_ok() {
            return Ok(format!("mqtt://{listen}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err("the embedded broker did not start".into())
}
