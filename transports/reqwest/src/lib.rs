//! Amplitude HTTP V2 client for std programs, on `reqwest`.
//!
//! - [`init`] creates a [`Client`]: `Clone + Send + Sync`, logging never blocks on the
//!   network (middleware, validation and encoding run on the caller's thread, the queue
//!   lock is held only to copy the encoded event in), and a background sender batches,
//!   sends with keep-alive and several requests in flight, and retries.
//! - Every accepted event ends with exactly one outcome — delivered, rejected by the
//!   server (with its reason) or dropped (with the SDK's reason) — reported to
//!   [`Options::on_outcome`] and counted in [`Client::counters`].
//! - [`Client::flush`] sends what is queued with the same retries as the sender and
//!   resolves with a [`FlushReport`] once those events are final or its deadline
//!   passes; [`Client::shutdown`] drains, reports what was not delivered and stops.
//! - It runs the same in async and plain code: the sender has its own thread and
//!   single-threaded tokio runtime by default, or runs on yours ([`Options::runtime`]);
//!   blocking calls ([`Client::flush_blocking`]) refuse to run on a runtime thread
//!   instead of panicking.
//! - [`ReqwestTransport`] is the core's [`Transport`](amplitude_core::transport::Transport)
//!   over reqwest, usable on its own with `amplitude_core::Client`.
//!
//! All SDK logic — batching, limits, response handling, retries, throttling — is in
//! `amplitude-core`; this crate adds threads, time and HTTP.
//!
//! ```
//! use std::time::Duration;
//! use amplitude_mock::server::{Config, MockServer};
//! use amplitude_reqwest::{Event, Options};
//!
//! # let server = MockServer::start(Config::default()).unwrap();
//! let client = amplitude_reqwest::init(
//!     "API_KEY",
//!     Options::default().server_url(server.http_v2_url()), // omit to send to Amplitude
//! )?;
//! client.add_event_middleware(|payload, next| {
//!     if payload.event.event_type != "Debug" {
//!         next.run(payload);
//!     }
//! });
//! let event: Event = Event::new("Button Clicked")
//!     .user_id("datamonster@gmail.com")
//!     .property("color", "blue");
//! client.log_event(event)?;
//! let report = client.flush_blocking(Duration::from_secs(10))?;
//! assert!(report.all_delivered());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Data you already hold as `serde_json` goes in as it is — typed through
//! [`Value::serde`], or as pre-encoded [`RawJson`]:
//!
//! ```
//! # use amplitude_reqwest::{Client, Options};
//! # let client = Client::with_transport("KEY", Options::default(), amplitude_mock::MockTransport::new())?;
//! use amplitude_reqwest::{Event, RawJson, Value};
//! use serde_json::json;
//!
//! let cart = json!({"items": [{"sku": "A-1", "qty": 2}], "total": 19.5});
//! let event: Event = Event::new("Checkout Started")
//!     .user_id("datamonster@gmail.com")
//!     .property("cart", Value::serde(&cart))
//!     .property("flags", RawJson::new(r#"["beta","eu"]"#)?);
//! client.log_event(event)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//! - `rustls` (default): HTTPS through rustls.
//! - `native-tls`: HTTPS through the platform's TLS library instead.
//! - `gzip`: gzip request bodies (`Options::gzip`).
//!
//! Logs go through `tracing`; the API key never appears in logs or `Debug` output.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod error;
mod middleware;
mod options;
mod report;
mod sender;
mod state;
pub mod transport;

pub use amplitude_core::event::Target;
pub use amplitude_core::outcome::{Counters, EventId};
pub use amplitude_core::{DropReason, Event, Outcome, RawJson, RejectReason, Value};
pub use client::{Client, init};
pub use error::{BlockingError, InitError, LogError};
pub use middleware::FnMiddleware;
pub use options::{MAX_IN_FLIGHT, Options, OutcomeCallback, QueueFullPolicy, ServerZone};
pub use report::{FlushReport, OutcomeReport};
pub use transport::ReqwestTransport;
