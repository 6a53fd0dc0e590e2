//! mqtt-tokio.
