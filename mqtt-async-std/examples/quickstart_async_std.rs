//! Quick start on async-std: connect with a user name, password and will, subscribe,
//! publish at QoS 0, 1 and 2, print what comes back, and disconnect cleanly.
//!
//! ```text
//! cargo run -p mqtt-async-std --example quickstart_async_std                 # embedded broker
//! cargo run -p mqtt-async-std --example quickstart_async_std mqtt://host:1883
//! MQTT_URL=mqtts://broker.example cargo run -p mqtt-async-std --example quickstart_async_std
//! ```
//!
//! Without a URL it starts a broker in this process (a demo broker of the testkit, on a free loopback port), so
//! it runs on a machine with nothing installed. `Client::connect` runs the client's driver
//! on async-std's executor.

mod common;

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use async_std::future::timeout;
use async_std::task;
use futures_channel::oneshot;
use mqtt_async_std::Client;

fn main() -> ExitCode {
    task::block_on(async {
        match timeout(Duration::from_secs(20), run()).await {
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
    })
}

async fn run() -> Result<(), Box<dyn Error>> {
    let url = common::broker_url()?;
    println!("broker: {url}");
    let (client, events) = Client::connect(common::options(&url, "mqtt-async-std-quickstart"))?;

    let (three_tx, three_rx) = oneshot::channel();
    let handler = task::spawn(common::print_events(events, three_tx));

    common::subscribe_and_publish(&client).await?;
    // Wait for the three messages to come back (the subscription grants QoS 1 at most).
    timeout(Duration::from_secs(5), three_rx).await??;

    client.disconnect().await?;
    handler.await;
    Ok(())
}
