//! A local Amplitude-compatible HTTP server for tests, examples, benchmarks and soaks.
//!
//! [`MockServer`] speaks HTTP/1.1 on loopback and answers like Amplitude's HTTP V2
//! and Batch endpoints (`spec/http-v2.md` §2–§5): the same request format, the same
//! validation with the same `400` body shapes, `413` over the size limits, `429` for
//! devices and users over their events-per-second threshold or daily quota,
//! `insert_id` de-duplication, gzip bodies — plus seeded fault injection (5xx before
//! or after ingesting, stalls, dropped connections) and counters of everything.
//!
//! # Endpoints
//!
//! | request | answer |
//! |---|---|
//! | `POST /2/httpapi` | HTTP V2 ingestion ([`Config::http_v2`] limits) |
//! | `POST /batch` | Batch ingestion, same body format ([`Config::batch`] limits) |
//! | `GET /summary` | [`Summary`] as JSON |
//! | `GET /events` | ingested events as NDJSON, in ingest order (`409` when events are not kept) |
//! | `POST /reset` | forgets everything (counters, events, de-duplication, throttling, queued faults) |
//!
//! # Behaviour, decided where Amplitude leaves it open
//!
//! * **A refused request ingests nothing.** A `400` with index lists, a `413` and a
//!   `429` refuse the whole request, as Amplitude does; the client resends the events
//!   that were not named.
//! * Index lists name *every* bad event, under the field that is wrong. An event
//!   with neither id is listed in `events_with_missing_fields` under
//!   `"user_id or device_id"`; an event that is not an object under
//!   `events_with_invalid_fields["event"]`; ids from the rejected list (`"null"`,
//!   `"anonymous"`, …) under `events_with_invalid_fields`; ids shorter than
//!   `options.min_id_length` (default 5) under `events_with_invalid_id_lengths`.
//!   Known fields with the wrong JSON type (`time` that is not an integer, a string
//!   `price`, …) are invalid fields; `null` counts as absent.
//! * Limits are inclusive maxima counted after gzip decompression; the defaults
//!   refuse 2000 or more events and 1,000,000 or more bytes on HTTP V2.
//! * Throttling counts the events of accepted requests per device and per user in a
//!   sliding [`Config::eps_window`] (default 30 s): a request is refused when, with
//!   it, a key would exceed `eps × window` events. `throttled_devices`/`throttled_users`
//!   report each refused key's average rate (events/s, rounded up) and
//!   `throttled_events` the indices of their events (also those of keys over the
//!   daily quota).
//! * The `200` body's `payload_size_bytes` is the body size after decompression.
//! * The `200` body's `events_ingested` counts all events of the request; duplicates
//!   (same `device_id` — or `user_id` when there is no device — and `insert_id` as an
//!   event already ingested) are dropped silently, as Amplitude does, and counted in
//!   [`Summary::duplicates`].
//! * Faults: see [`FaultConfig`] and [`Fault`]. 502 and 504 answers have an HTML
//!   body, like a load balancer's; the others carry `{"code":S,"error":…}`.
//! * Every response has a `Date` header; `Retry-After` is added to 503 and 429 when
//!   [`Config::retry_after`] is set.
//!
//! # Example
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//! use amplitude_mock::server::{Config, MockServer};
//!
//! let server = MockServer::start(Config::default()).unwrap();
//! let body = r#"{"api_key":"key","events":[{"event_type":"click","device_id":"device-1"}]}"#;
//! let mut stream = TcpStream::connect(server.addr()).unwrap();
//! write!(
//!     stream,
//!     "POST /2/httpapi HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
//!      Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
//!     body.len()
//! )
//! .unwrap();
//! let mut response = String::new();
//! stream.read_to_string(&mut response).unwrap();
//! assert!(response.starts_with("HTTP/1.1 200"));
//!
//! let summary = server.stop();
//! assert_eq!(summary.events_ingested, 1);
//! ```

mod config;
mod faults;
mod http;
mod reply;
mod request;
mod state;
mod summary;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use serde_json::Value;
use tokio::sync::watch;

pub use config::{Config, ConfigError, EndpointLimits, FaultConfig};
pub use faults::{Fault, InvalidFault};
pub use state::insert_id_fingerprint;
pub use summary::{FaultCounts, Summary};

use http::Shared;

/// A running server, serving on its own thread and tokio runtime, so it works from
/// plain `#[test]`s and from `#[tokio::test]`s alike. Dropping it stops it (like
/// [`stop`](Self::stop), without returning the summary).
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for MockServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Why a [`MockServer`] could not start.
#[derive(Debug)]
pub enum StartError {
    /// The configuration is invalid.
    Config(ConfigError),
    /// The address could not be bound.
    Bind(io::Error),
    /// The runtime or its thread could not be created.
    Runtime(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "invalid configuration: {e}"),
            Self::Bind(e) => write!(f, "cannot bind: {e}"),
            Self::Runtime(e) => write!(f, "cannot start the server runtime: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(e) => Some(e),
            Self::Bind(e) | Self::Runtime(e) => Some(e),
        }
    }
}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

impl MockServer {
    /// Binds `config.host:config.port` (default `127.0.0.1:0`) and starts serving in
    /// the background. Returns once the socket is bound, so requests can be sent
    /// right away.
    ///
    /// ```
    /// use amplitude_mock::server::{Config, MockServer};
    ///
    /// let server = MockServer::start(Config::default().eps(0)).unwrap();
    /// assert!(server.url().starts_with("http://127.0.0.1:"));
    /// assert!(MockServer::start(Config::default().fail_rate(2.0)).is_err());
    /// ```
    pub fn start(config: Config) -> Result<Self, StartError> {
        config.validate()?;
        let listener =
            std::net::TcpListener::bind((config.host, config.port)).map_err(StartError::Bind)?;
        listener.set_nonblocking(true).map_err(StartError::Bind)?;
        let addr = listener.local_addr().map_err(StartError::Bind)?;
        let workers = config.worker_threads;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared::new(config, shutdown_rx.clone()));

        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
        let serve_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("amplitude-mock-server".into())
            .spawn(move || {
                // The runtime is created and dropped on this thread, never inside the
                // caller's async context.
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(workers)
                    .thread_name("amplitude-mock-worker")
                    .enable_io()
                    .enable_time()
                    .build();
                match runtime {
                    Ok(runtime) => {
                        let _ = ready_tx.send(Ok(()));
                        runtime.block_on(http::serve(listener, serve_shared, shutdown_rx));
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
            .map_err(StartError::Runtime)?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                addr,
                shared,
                shutdown,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(StartError::Runtime(e))
            }
            Err(_) => {
                let _ = thread.join();
                Err(StartError::Runtime(io::Error::other(
                    "server thread exited during start",
                )))
            }
        }
    }

    /// The bound address (with the real port when `0` was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// URL of the HTTP V2 endpoint, `{url}/2/httpapi`.
    pub fn http_v2_url(&self) -> String {
        format!("http://{}/2/httpapi", self.addr)
    }

    /// URL of the Batch endpoint, `{url}/batch`.
    pub fn batch_url(&self) -> String {
        format!("http://{}/batch", self.addr)
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Counters so far (the same as `GET /summary`).
    pub fn summary(&self) -> Summary {
        self.shared.state().snapshot()
    }

    /// The ingested events (without duplicates) in ingest order; empty when
    /// [`Config::keep_events`] is off.
    pub fn events(&self) -> Vec<Value> {
        let raw: Vec<bytes::Bytes> = self.shared.state().events().to_vec();
        raw.iter()
            .filter_map(|e| serde_json::from_slice(e).ok())
            .collect()
    }

    /// The ingested events of one device, in ingest order.
    pub fn events_for_device(&self, device_id: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e.get("device_id").and_then(Value::as_str) == Some(device_id))
            .collect()
    }

    /// The ingest order of one device's events as [`insert_id_fingerprint`]s of their
    /// `insert_id`s (`""` for events without one). Kept in both retention modes.
    ///
    /// ```no_run
    /// # use amplitude_mock::server::{Config, MockServer, insert_id_fingerprint};
    /// # let server = MockServer::start(Config::default()).unwrap();
    /// let expected: Vec<u64> = ["i-1", "i-2"].iter().map(|i| insert_id_fingerprint(i)).collect();
    /// assert_eq!(server.device_order("device-1"), expected);
    /// ```
    pub fn device_order(&self, device_id: &str) -> Vec<u64> {
        self.shared.state().device_order(device_id)
    }

    /// Queues a fault for the next ingestion request (queued faults are used in order,
    /// before any random fault).
    ///
    /// ```
    /// use amplitude_mock::server::{Config, Fault, MockServer};
    ///
    /// let server = MockServer::start(Config::default()).unwrap();
    /// server.push_fault(Fault::Status(503)).unwrap();
    /// assert!(server.push_fault(Fault::Status(99)).is_err());
    /// ```
    pub fn push_fault(&self, fault: Fault) -> Result<(), InvalidFault> {
        fault.check()?;
        self.shared.push_fault(fault);
        Ok(())
    }

    /// Forgets everything, like `POST /reset`.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s; stalls are cut
    /// short with a 503), and returns the final counters.
    pub fn stop(mut self) -> Summary {
        self.shutdown_and_join();
        self.summary()
    }

    fn shutdown_and_join(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shutdown_and_join();
    }
}
