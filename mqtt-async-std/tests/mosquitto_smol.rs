//! Integration tests against a real mosquitto broker (`apt-get install -y mosquitto`), on
//! smol: the driver runs on smol's executor, spawned through `Client::connect_with`.

mod on_smol {
    use std::future::Future;
    use std::time::Duration;

    use mqtt_async_std::{Client, ClientOptions, Error, Events};

    /// `future`'s output, or an error once `limit` has passed.
    pub(crate) async fn timeout<F: Future>(
        limit: Duration,
        future: F,
    ) -> Result<F::Output, Duration> {
        let expired = async {
            smol::Timer::after(limit).await;
            Err(limit)
        };
        smol::future::or(async { Ok(future.await) }, expired).await
    }

    /// Starts a client whose driver runs on smol's executor.
    pub(crate) fn connect(options: ClientOptions) -> Result<(Client, Events), Error> {
        Client::connect_with(options, |driver| smol::spawn(driver).detach())
    }
}

mqtt_testkit::client_suite! {
    krate: mqtt_async_std,
    block_on: smol::block_on,
    timeout: on_smol::timeout,
    sleep: smol::Timer::after,
    connect: on_smol::connect,
}
