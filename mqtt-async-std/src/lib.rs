//! mqtt-async-std.
