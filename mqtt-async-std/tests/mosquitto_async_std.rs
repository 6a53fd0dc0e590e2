//! Integration tests against a real mosquitto broker (`apt-get install -y mosquitto`), on
//! async-std: the driver runs on async-std's executor, spawned by `Client::connect`.

mqtt_testkit::client_suite! {
    krate: mqtt_async_std,
    block_on: async_std::task::block_on,
    timeout: async_std::future::timeout,
    sleep: async_std::task::sleep,
}
