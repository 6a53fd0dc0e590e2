//! Quick start on smol: connect with a user name, password and will, subscribe, publish at
//! QoS 0, 1 and 2, print what comes back, and disconnect cleanly.
//!
//! ```text
//! cargo run -p mqtt-async-std --example quickstart_smol                 # embedded broker
//! cargo run -p mqtt-async-std --example quickstart_smol mqtt://host:1883
//! MQTT_URL=mqtts://broker.example cargo run -p mqtt-async-std --example quickstart_smol
//! ```
//!
//! Without a URL it starts a broker in this process (a demo broker of the testkit, on a free loopback port), so
//! it runs on a machine with nothing installed. `Client::connect_with` hands the client's
//! driver to smol's executor.

mod common;

use std::error::Error;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use futures_channel::oneshot;
use mqtt_async_std::Client;

fn main() -> ExitCode {
    smol::block_on(async {
        match timeout(Duration::from_secs(20), run()).await {
            Some(Ok(())) => ExitCode::SUCCESS,
            Some(Err(error)) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
            None => {
                eprintln!("error: timed out");
                ExitCode::FAILURE
            }
        }
    })
}

/// `future`'s output, or `None` once `limit` has passed.
async fn timeout<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    let expired = async {
        smol::Timer::after(limit).await;
        None
    };
    smol::future::or(async { Some(future.await) }, expired).await
}

async fn run() -> Result<(), Box<dyn Error>> {
    let url = common::broker_url()?;
    println!("broker: {url}");
    let options = common::options(&url, "mqtt-smol-quickstart");
    let (client, events) = Client::connect_with(options, |driver| smol::spawn(driver).detach())?;

    let (three_tx, three_rx) = oneshot::channel();
    let handler = smol::spawn(common::print_events(events, three_tx));

    common::subscribe_and_publish(&client).await?;
    // Wait for the three messages to come back (the subscription grants QoS 1 at most).
    timeout(Duration::from_secs(5), three_rx)
        .await
        .ok_or("timed out waiting for the messages")??;

    client.disconnect().await?;
    handler.await;
    Ok(())
}
