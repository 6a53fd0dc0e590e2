//! Quick start: connect with a user name, password and will, subscribe, publish at QoS 0, 1
//! and 2, print what comes back, and disconnect cleanly.
//!
//! ```text
//! cargo run -p mqtt-tokio --example quickstart                 # embedded broker
//! cargo run -p mqtt-tokio --example quickstart mqtt://host:1883
//! MQTT_URL=mqtts://broker.example cargo run -p mqtt-tokio --example quickstart
//! ```
//!
//! Without a URL it starts a broker in this process (rumqttd, on a free loopback port), so
//! it runs on a machine with nothing installed.

use std::process::ExitCode;
use std::time::Duration;

use mqtt_tokio::{Client, ClientOptions, Event, Message, PublishOutcome, QoS};

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
    let url = match std::env::args()
        .nth(1)
        .or_else(|| std::env::var("MQTT_URL").ok())
    {
        Some(url) => url,
        None => mqtt_testkit::embedded_broker()?,
    };
    println!("broker: {url}");

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
                        if let Some(tx) = done_tx.take() {
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
    });

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

    // Wait for the three messages to come back (the subscription grants QoS 1 at most).
    tokio::time::timeout(Duration::from_secs(5), done_rx).await??;

    client.disconnect().await?;
    handler.await?;
    Ok(())
}
