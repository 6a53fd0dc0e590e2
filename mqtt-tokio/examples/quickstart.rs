//! Quick start: connect with a user name, password and will, subscribe, publish at QoS 0, 1
//! and 2, print each step with what it means, and disconnect cleanly.
//!
//! ```text
//! cargo run -p mqtt-tokio --example quickstart                 # embedded broker
//! cargo run -p mqtt-tokio --example quickstart mqtt://host:1883
//! MQTT_URL=mqtts://broker.example cargo run -p mqtt-tokio --example quickstart
//! ```
//!
//! Without a URL it starts the small demo broker of `mqtt-testkit` in this process, on a free
//! loopback port, so it runs on a machine with nothing installed.

use std::process::ExitCode;
use std::time::Duration;

use mqtt_tokio::{Client, ClientOptions, ConnectionError, Event, Message, PublishOutcome, QoS};

/// The QoS the quick start subscribes with: the most any message is delivered at.
const SUBSCRIPTION_QOS: QoS = QoS::AtLeastOnce;

#[tokio::main]
async fn main() -> ExitCode {
    match tokio::time::timeout(Duration::from_secs(20), run()).await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(error)) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("error: timed out");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (url, which) = match std::env::args()
        .nth(1)
        .or_else(|| std::env::var("MQTT_URL").ok())
    {
        Some(url) => (url, ""),
        None => (
            mqtt_testkit::embedded_broker()?,
            " (embedded: a demo broker in this process)",
        ),
    };
    println!("broker: {url}{which}");

    let options = ClientOptions::new(&url)
        .client_id("mqtt-tokio-quickstart")
        .credentials("demo", "demo-password")
        .will_message(
            "quickstart/status",
            "offline (unexpectedly)",
            QoS::AtLeastOnce,
        )
        .keep_alive(Duration::from_secs(30))
        .no_reconnect();
    let (client, mut events) = Client::connect(options)?;

    // Event handler: prints everything and reports when the three messages came back.
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let handler = tokio::spawn(async move {
        let mut done_tx = Some(done_tx);
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
                        if let Some(tx) = done_tx.take() {
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
    });

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

    // Wait for the three messages to come back.
    tokio::time::timeout(Duration::from_secs(5), done_rx).await??;

    client.disconnect().await?;
    handler.await?;
    Ok(())
}
