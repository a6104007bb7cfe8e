//! Test kit for `amplitude-core`.
//!
//! - [`MockTransport`]: a scripted transport (any status and body, transport errors,
//!   seeded random faults) that records every request.
//! - [`strategies`] (feature `proptest`): arbitrary events, hostile strings included, and
//!   arbitrary server behaviour schedules, for SDK authors' property tests.
//! - [`server`] (feature `server`, default): a local Amplitude-compatible HTTP V2 server,
//!   also the `amplitude-mock-server` binary.
#![warn(missing_docs)]

#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "proptest")]
pub mod strategies;
mod transport;

pub use transport::{Faults, MockTransport, Recorded, Reply, count_events};
