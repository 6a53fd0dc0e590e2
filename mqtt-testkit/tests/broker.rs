//! The test broker's own life cycle.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use mqtt_testkit::{Mosquitto, MosquittoConfig};

fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

fn process_exists(pid: u32) -> bool {
    // A reaped process has no /proc entry; a zombie would show state Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

#[test]
fn start_kill_restart_and_drop() {
    let mut broker = Mosquitto::start(MosquittoConfig::new().persistence());
    let port = broker.port();
    assert!(broker.url().ends_with(&format!(":{port}")));
    assert!(accepts(port));
    let first = broker.pid().unwrap();

    broker.kill();
    assert!(!broker.is_running());
    assert!(!process_exists(first));
    assert!(!accepts(port));

    broker.restart();
    assert!(accepts(port), "restarted on the same port");
    broker.stop();
    assert!(!accepts(port));
    broker.restart();
    let second = broker.pid().unwrap();
    assert_ne!(first, second);

    drop(broker);
    assert!(!process_exists(second), "the broker outlived its value");
}

#[test]
fn every_listener_accepts() {
    let broker = Mosquitto::start(
        MosquittoConfig::new()
            .tls()
            .websockets()
            .websockets_tls()
            .extra("max_keepalive 120"),
    );
    assert!(accepts(broker.port()));
    assert!(accepts(broker.tls_port()));
    assert!(broker.ws_url().starts_with("ws://127.0.0.1:"));
    assert!(broker.wss_url().starts_with("wss://localhost:"));
    let certs = broker.certs();
    for file in [
        &certs.ca.cert_file,
        &certs.server.key_file,
        &certs.client.cert_file,
    ] {
        assert!(Path::new(file).is_file());
    }
    assert!(certs.ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(certs.client.key_pem.contains("PRIVATE KEY"));
    assert!(broker.log().contains("mosquitto version"));
    // Every socket the broker listens on is on loopback: the TCP and TLS listeners, and no
    // websockets listener of its own (those listen on every interface in mosquitto 2.0).
    let pid = broker.pid().expect("running");
    if let Some(addresses) = mqtt_testkit::sockets::listening_addresses(pid) {
        assert_eq!(addresses.len(), 2, "{addresses:?}");
        assert!(
            addresses.iter().all(mqtt_testkit::sockets::is_loopback),
            "{addresses:?}"
        );
    }
}
