//! Allocation-free, `no_std` core of an Amplitude HTTP V2 client.
//!
//! One core for a Cortex-M gateway and a tokio server: events, validation, encoding, a
//! fixed-capacity queue and batcher, middleware, retry policy and the handling of every
//! HTTP V2 response, written once and driven by any [`transport::Transport`].
//!
//! ```text
//! log_event(Event) ─► middleware ─► validate ─► encode JSON ─► queue (fixed bytes)
//!                                                                  │
//!        outcome sink ◄── apply verdict ◄── classify ◄── Transport.send ◄── batch builder
//! ```
//!
//! Every event accepted by [`client::Client::log_event`] ends with exactly one
//! [`outcome::Outcome`]: delivered, rejected by the server with its reason, or dropped
//! with a reason.
//!
//! ```
//! use amplitude_core::{Event, client::Client, config::Config, outcome::NoSink};
//! use amplitude_core::queue::{RamQueue, Slot};
//! use embassy_time::Instant;
//!
//! // 16 KiB of queue, 64 events, fixed at compile time.
//! let queue = RamQueue::new([0u8; 16 * 1024], [Slot::EMPTY; 64]);
//! let mut client: Client<'_, _> = Client::new(Config::new("API_KEY"), queue, 0x5eed);
//! let event: Event = Event::new("Node.js Event")
//!     .user_id("datamonster@gmail.com")
//!     .location(37.77, -122.39)
//!     .ip("127.0.0.1")
//!     .property("keyString", "valueString")
//!     .property("keyInt", 11)
//!     .property("keyBool", true);
//! client.log_event(Instant::from_millis(0), event, &mut (), None, &mut NoSink).unwrap();
//! assert_eq!(client.counters().pending(), 1);
//! ```
//!
//! # Features
//! - `defmt` / `log`: log through either facade (nothing is logged otherwise).
//! - `embassy`: the async [`driver`] (embassy-time timers, embassy-sync mutex).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
mod fmt;

pub mod client;
pub mod config;
#[cfg(feature = "embassy")]
pub mod driver;
pub mod encode;
pub mod event;
pub mod identify;
pub mod json;
pub mod middleware;
pub mod outcome;
pub mod queue;
pub mod response;
pub mod retry;
mod ser;
pub mod transport;
pub mod validate;
pub mod value;

pub use client::{Client, LogError, Logged};
pub use config::Config;
pub use event::{Event, TypedEvent};
pub use identify::{GroupIdentify, Identify, Revenue};
pub use outcome::{DropReason, Outcome, RejectReason};
pub use validate::ValidationError;
pub use value::{RawJson, ToJson, Value};
