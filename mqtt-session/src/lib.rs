//! mqtt-session.
