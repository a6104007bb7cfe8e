//! Shared code of the example binaries (`quickstart`, `send`, `middleware`).
//!
//! - [`ndjson`]: one HTTP V2 event object per line → a core [`Event`](amplitude_core::Event),
//!   parsed once into borrowed structures (used by the `send` CLI).
//! - [`sample`]: realistic sample events (used by `quickstart` and `middleware`).
#![warn(missing_docs)]

pub mod ndjson;
pub mod sample;
