//! Integration tests against a real mosquitto broker (`apt-get install -y mosquitto`).

mqtt_testkit::client_suite! {
    krate: mqtt_tokio,
    test: tokio::test,
    timeout: tokio::time::timeout,
    sleep: tokio::time::sleep,
}
