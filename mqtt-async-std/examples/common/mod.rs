//! What both quick starts share: choosing the broker (starting one in this process when none
//! is given) and the steps of the demonstration, which use only the client's API and so run
//! the same on every executor.

use std::error::Error;
use std::time::Duration;

use futures_channel::oneshot;
use mqtt_async_std::{
    Client, ClientOptions, ConnectionError, Event, Events, Message, PublishOutcome, QoS,
};

/// The QoS the demo subscribes at: messages on it arrive at this QoS at most.
const SUBSCRIPTION_QOS: QoS = QoS::AtLeastOnce;

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
            } => println!(
                "connected: the broker accepted us (CONNACK; session present: {})",
                u8::from(session_present)
            ),
            Event::Message { publish, .. } => {
                received += 1;
                let topic = publish.topic.as_str();
                let qos = publish.qos() as u8;
                // The topic names the QoS it was published at.
                let why = match topic.strip_prefix("quickstart/demo/qos") {
                    Some(sent) if sent != qos.to_string() => format!(
                        " (sent at QoS {sent}; delivered at the lower of that and the \
                         subscription's QoS {})",
                        SUBSCRIPTION_QOS as u8
                    ),
                    Some(sent) => format!(" (sent at QoS {sent})"),
                    None => String::new(),
                };
                println!("received on {topic} at QoS {qos}{why}");
                if received == 3 {
                    if let Some(tx) = three_received.take() {
                        let _ = tx.send(());
                    }
                }
            }
            Event::Disconnected {
                reason: ConnectionError::LocalDisconnect,
            } => println!("disconnected: we sent DISCONNECT, so the broker drops our will"),
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
        .subscribe("quickstart/demo/#", SUBSCRIPTION_QOS)
        .await?;
    println!(
        "subscribed to quickstart/demo/# at QoS {}: messages on it arrive at QoS {0} at most",
        granted as u8
    );
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let topic = format!("quickstart/demo/qos{}", qos as u8);
        let message = Message::new(&topic, "hello")?.qos(qos);
        // `publish` returns once the message is queued; its handle resolves when the flow
        // completes.
        let outcome = match client.publish(message).await?.await? {
            PublishOutcome::Sent => "written to the socket; QoS 0 is never acknowledged".to_owned(),
            PublishOutcome::Acknowledged { .. } => "the broker acknowledged it (PUBACK)".to_owned(),
            PublishOutcome::Completed { .. } => {
                "the broker has it exactly once (PUBREC, PUBREL, PUBCOMP)".to_owned()
            }
            other => format!("{other:?}"),
        };
        println!("published to {topic} at QoS {}: {outcome}", qos as u8);
    }

    // Pipelined: the loop does not wait for acknowledgements, so up to the in-flight window
    // of messages travel at once; awaiting the handles afterwards confirms every one.
    let mut handles = Vec::new();
    for n in 0..100 {
        let message = Message::new("quickstart/burst", n.to_string())?.qos(QoS::AtLeastOnce);
        handles.push(client.publish(message).await?);
    }
    for handle in handles {
        handle.await?;
    }
    println!("published 100 messages to quickstart/burst at QoS 1, pipelined: all acknowledged");
    Ok(())
}
