//! The client on executors other than the two the suite runs on: `Client::connect` under
//! smol (the driver then runs on the global executor), and a driver polled by nothing but a
//! plain thread's `block_on`.

use std::time::Duration;

use futures_lite::future;
use mqtt_async_std::{Client, ClientOptions, Event, Events, Message, QoS};
use mqtt_testkit::Mosquitto;

const LIMIT: Duration = Duration::from_secs(30);

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    let expired = async {
        async_io::Timer::after(LIMIT).await;
        panic!("timed out after {LIMIT:?}: {what}");
    };
    future::or(f, expired).await
}

/// Subscribes, publishes at QoS 1, receives it back, and disconnects.
async fn echo(client: Client, mut events: Events) {
    within("the echo", async {
        client.subscribe("echo", QoS::AtLeastOnce).await.unwrap();
        let message = Message::new("echo", "ping").unwrap().qos(QoS::AtLeastOnce);
        client.publish_and_wait(message).await.unwrap();
        loop {
            match events.recv().await {
                Some(Event::Message { publish, .. }) => {
                    assert_eq!(&publish.payload[..], b"ping");
                    break;
                }
                Some(Event::Closed) | None => panic!("stopped"),
                Some(_) => {}
            }
        }
        client.disconnect().await.unwrap();
        while let Some(event) = events.recv().await {
            if matches!(event, Event::Closed) {
                return;
            }
        }
        panic!("no Closed event");
    })
    .await;
}

fn options(broker: &Mosquitto, id: &str) -> ClientOptions {
    ClientOptions::new(&broker.url())
        .client_id(id)
        .no_reconnect()
}

#[test]
fn default_spawner_under_smol() {
    let broker = Mosquitto::plain();
    smol::block_on(async {
        let (client, events) = Client::connect(options(&broker, "smol-default")).unwrap();
        echo(client, events).await;
    });
}

#[test]
fn driver_on_a_plain_thread() {
    let broker = Mosquitto::plain();
    let mut driver_thread = None;
    let (client, events) = Client::connect_with(options(&broker, "thread"), |driver| {
        driver_thread = Some(std::thread::spawn(move || future::block_on(driver)));
    })
    .unwrap();
    future::block_on(echo(client, events));
    // The driver finishes once the client has stopped.
    driver_thread.unwrap().join().unwrap();
}
