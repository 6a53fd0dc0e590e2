//! What both quick starts share: choosing the broker (starting one in this process when none
//! is given) and the steps of the demonstration, which use only the client's API and so run
//! the same on every executor.

use std::error::Error;
use std::time::Duration;

use futures_channel::oneshot;
use mqtt_async_std::{Client, ClientOptions, Event, Events, Message, PublishOutcome, QoS};

/// The broker URL: the first argument, else `MQTT_URL`, else an embedded broker.
pub(crate) fn broker_url() -> Result<String, Box<dyn Error>> {
    match std::env::args()
        .nth(1)
        .or_else(|| std::env::var("MQTT_URL").ok())
    {
        Some(url) => Ok(url),
        None => mqtt_testkit::embedded_broker(),
    }
}

/// Options with a user name, password and will, and no reconnect.
pub(crate) fn options(url: &str, client_id: &str) -> ClientOptions {
    ClientOptions::new(url)
        .client_id(client_id)
        .credentials("demo", "demo-password")
        .will_message(
            "quickstart/status",
            "offline (unexpectedly)",
            QoS::AtLeastOnce,
        )
        .keep_alive(Duration::from_secs(30))
        .no_reconnect()
}

/// The event handler: prints every event, reports when three messages came back, and ends
/// after `Closed`.
pub(crate) async fn print_events(mut events: Events, three_received: oneshot::Sender<()>) {
    let mut three_received = Some(three_received);
    let mut received = 0;
    while let Some(event) = events.recv().await {
        match event {
            Event::Connected {
                session_present, ..
            } => println!("connected (session present: {session_present})"),
            Event::Message { publish, .. } => {
                received += 1;
                println!(
                    "message on {} at {:?}: {}",
                    publish.topic.as_str(),
                    publish.qos(),
                    String::from_utf8_lossy(&publish.payload)
                );
                if received == 3 {
                    if let Some(tx) = three_received.take() {
                        let _ = tx.send(());
                    }
                }
            }
            Event::Disconnected { reason } => println!("disconnected: {reason}"),
            Event::Error(error) => println!("error: {error}"),
            Event::Closed => {
                println!("closed");
                break;
            }
            _ => {}
        }
    }
}

/// Subscribes to `quickstart/demo/#`, then publishes one message at each QoS and prints how
/// each flow completed.
pub(crate) async fn subscribe_and_publish(client: &Client) -> Result<(), Box<dyn Error>> {
    let granted = client
        .subscribe("quickstart/demo/#", QoS::AtLeastOnce)
        .await?;
    println!("subscribed to quickstart/demo/# with QoS {granted:?}");
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let topic = format!("quickstart/demo/qos{}", qos as u8);
        let message = Message::new(&topic, format!("hello at {qos:?}"))?.qos(qos);
        let outcome = match client.publish(message).await? {
            PublishOutcome::Sent => "written to the socket".to_owned(),
            PublishOutcome::Acknowledged { .. } => "PUBACK received".to_owned(),
            PublishOutcome::Completed { .. } => "PUBCOMP received".to_owned(),
            other => format!("{other:?}"),
        };
        println!("published to {topic}: {outcome}");
    }
    Ok(())
}
