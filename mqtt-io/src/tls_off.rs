//! This build has no TLS (the `tls` feature is off): rustls is not compiled, and a client
//! with an `mqtts://` or `wss://` broker is refused when it starts.

use std::sync::Arc;

use mqtt_session::client::{BrokerUrl, OptionsError, TlsOptions};

/// Stands for rustls' client configuration, which this build does not have; no value of it
/// exists.
#[derive(Debug)]
pub enum ClientConfig {}

/// `None` when no broker uses TLS; an error naming the missing feature otherwise.
pub fn client_config_for(
    brokers: &[BrokerUrl],
    _options: &TlsOptions,
) -> Result<Option<Arc<ClientConfig>>, OptionsError> {
    match brokers.iter().find(|b| b.scheme.is_tls()) {
        Some(broker) => Err(OptionsError::FeatureDisabled {
            scheme: broker.scheme.as_str(),
            feature: "tls",
        }),
        None => Ok(None),
    }
}
