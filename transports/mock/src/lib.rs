#![doc = "Test kit for amplitude-core."]

#[cfg(feature = "server")]
pub mod server;
