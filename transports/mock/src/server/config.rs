//! Server configuration: limits, throttling, event retention and fault injection.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Request limits and throttling threshold of one ingestion endpoint.
///
/// Both limits are *inclusive maxima*: a request is accepted when it has at most
/// `max_events` events and its (decompressed) body has at most `max_bytes` bytes;
/// anything larger is answered `413`.
///
/// ```
/// use amplitude_mock::server::EndpointLimits;
///
/// let v2 = EndpointLimits::http_v2();
/// assert_eq!(v2.max_events, 1999); // "under 2000 events"
/// assert_eq!(v2.max_bytes, 999_999); // "under 1 MB"
/// assert_eq!(v2.eps, 30);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointLimits {
    /// Largest accepted number of events in one request.
    pub max_events: usize,
    /// Largest accepted body size in bytes, counted after gzip decompression.
    pub max_bytes: usize,
    /// Events per second allowed per device and per user, averaged over
    /// [`Config::eps_window`]; `0` turns throttling off for this endpoint.
    pub eps: u32,
}

impl EndpointLimits {
    /// Amplitude's HTTP V2 limits (`/2/httpapi`): under 2000 events, under 1 MB
    /// (1,000,000 bytes), 30 events/s per device or user.
    pub const fn http_v2() -> Self {
        Self {
            max_events: 1999,
            max_bytes: 999_999,
            eps: 30,
        }
    }

    /// Amplitude's Batch API limits (`/batch`): at most 2000 events, at most 20 MB
    /// (20,000,000 bytes), 1000 events/s per device or user.
    pub const fn batch() -> Self {
        Self {
            max_events: 2000,
            max_bytes: 20_000_000,
            eps: 1000,
        }
    }
}

/// Randomised fault injection. Every rate is a probability in `0.0..=1.0`, drawn
/// independently for each ingestion request from a generator seeded with
/// [`seed`](Self::seed) and the request's sequence number, so a sequential client
/// sees the same faults on every run with the same seed.
///
/// When several faults fire for one request, the first in this order wins:
/// drop, stall, fail (before ingest), fail after ingest.
///
/// ```
/// use amplitude_mock::server::FaultConfig;
///
/// let faults = FaultConfig {
///     seed: 7,
///     fail_rate: 0.1,
///     ..FaultConfig::default()
/// };
/// assert!(faults.is_active());
/// assert!(!FaultConfig::default().is_active());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Seed of the fault generator.
    pub seed: u64,
    /// Rate of requests answered 500, 502, 503 or 504 (chosen uniformly) *without*
    /// ingesting anything.
    pub fail_rate: f64,
    /// Rate of requests that are ingested and then answered `500` — the ambiguous
    /// case a client must resolve by resending with the same `insert_id`s.
    /// Only requests that would otherwise be answered `200` are affected.
    pub fail_after_ingest_rate: f64,
    /// Rate of requests that stall for [`stall`](Self::stall) without ingesting and
    /// are then answered `504` (if the client is still there).
    pub stall_rate: f64,
    /// How long a stalled request hangs; pick it longer than the client's timeout.
    pub stall: Duration,
    /// Rate of requests whose body is read and whose connection is then closed
    /// without any response. Nothing is ingested.
    pub drop_rate: f64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            fail_rate: 0.0,
            fail_after_ingest_rate: 0.0,
            stall_rate: 0.0,
            stall: Duration::from_secs(30),
            drop_rate: 0.0,
        }
    }
}

impl FaultConfig {
    /// `true` when any rate is above zero.
    pub fn is_active(&self) -> bool {
        self.fail_rate > 0.0
            || self.fail_after_ingest_rate > 0.0
            || self.stall_rate > 0.0
            || self.drop_rate > 0.0
    }

    fn rates(&self) -> [(&'static str, f64); 4] {
        [
            ("fail_rate", self.fail_rate),
            ("fail_after_ingest_rate", self.fail_after_ingest_rate),
            ("stall_rate", self.stall_rate),
            ("drop_rate", self.drop_rate),
        ]
    }
}

/// Configuration of a [`MockServer`](super::MockServer).
///
/// `Config::default()` behaves like Amplitude: HTTP V2 and Batch limits, throttling
/// at 30 (HTTP V2) and 1000 (Batch) events/s per device or user averaged over 30 s,
/// any non-empty API key accepted, no daily quota, no faults, all ingested events
/// kept for inspection. The setters consume and return the config, so they chain:
///
/// ```
/// use std::time::Duration;
/// use amplitude_mock::server::Config;
///
/// let config = Config::default()
///     .api_key("test-key")
///     .eps(0) // no throttling
///     .seed(42)
///     .fail_rate(0.05)
///     .stall(0.01, Duration::from_millis(500));
/// assert_eq!(config.api_keys, vec!["test-key".to_string()]);
/// assert_eq!(config.http_v2.eps, 0);
/// // `Debug` never shows the accepted keys.
/// assert!(!format!("{config:?}").contains("test-key"));
/// ```
#[derive(Clone, PartialEq)]
pub struct Config {
    /// Address to bind; default `127.0.0.1`.
    pub host: IpAddr,
    /// Port to bind; `0` (default) lets the OS pick one — read it from
    /// [`MockServer::addr`](super::MockServer::addr).
    pub port: u16,
    /// Accepted API keys; empty (default) accepts any non-empty key.
    pub api_keys: Vec<String>,
    /// Limits of `POST /2/httpapi`.
    pub http_v2: EndpointLimits,
    /// Limits of `POST /batch`.
    pub batch: EndpointLimits,
    /// Window over which events per second are averaged for throttling; default 30 s.
    pub eps_window: Duration,
    /// Events per device and per user allowed in a rolling 24 h; `None` (default) = no quota.
    pub daily_quota: Option<u64>,
    /// Keep every ingested event for [`MockServer::events`](super::MockServer::events)
    /// and `GET /events` (default `true`). When `false` the server keeps only hashes
    /// of `(device_id, insert_id)` for de-duplication and per-device order.
    pub keep_events: bool,
    /// Fault injection.
    pub faults: FaultConfig,
    /// Seconds to send in a `Retry-After` header on 503 and 429 responses; `None` = no header.
    pub retry_after: Option<u64>,
    /// Tokio worker threads of the server's runtime; default 2.
    pub worker_threads: usize,
    /// Log one line per ingestion request to stderr; default `false`.
    pub log_requests: bool,
}

impl fmt::Debug for Config {
    /// Shows how many API keys are accepted, never the keys themselves.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
            .field("http_v2", &self.http_v2)
            .field("batch", &self.batch)
            .field("eps_window", &self.eps_window)
            .field("daily_quota", &self.daily_quota)
            .field("keep_events", &self.keep_events)
            .field("faults", &self.faults)
            .field("retry_after", &self.retry_after)
            .field("worker_threads", &self.worker_threads)
            .field("log_requests", &self.log_requests)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            api_keys: Vec::new(),
            http_v2: EndpointLimits::http_v2(),
            batch: EndpointLimits::batch(),
            eps_window: Duration::from_secs(30),
            daily_quota: None,
            keep_events: true,
            faults: FaultConfig::default(),
            retry_after: None,
            worker_threads: 2,
            log_requests: false,
        }
    }
}

impl Config {
    /// Binds this port (`0` = any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Binds this address.
    pub fn host(mut self, host: IpAddr) -> Self {
        self.host = host;
        self
    }

    /// Adds an accepted API key; once any key is added, only listed keys are accepted.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_keys.push(key.into());
        self
    }

    /// Sets the throttling threshold of both endpoints (events/s per device or user); `0` = off.
    pub fn eps(mut self, eps: u32) -> Self {
        self.http_v2.eps = eps;
        self.batch.eps = eps;
        self
    }

    /// Sets the window over which events per second are averaged.
    pub fn eps_window(mut self, window: Duration) -> Self {
        self.eps_window = window;
        self
    }

    /// Sets a daily quota per device and per user.
    pub fn daily_quota(mut self, quota: u64) -> Self {
        self.daily_quota = Some(quota);
        self
    }

    /// Sets the largest accepted event count of HTTP V2 requests.
    pub fn max_events(mut self, max: usize) -> Self {
        self.http_v2.max_events = max;
        self
    }

    /// Sets the largest accepted (decompressed) body size of HTTP V2 requests.
    pub fn max_bytes(mut self, max: usize) -> Self {
        self.http_v2.max_bytes = max;
        self
    }

    /// Keeps (`true`) or discards (`false`) full ingested events.
    pub fn keep_events(mut self, keep: bool) -> Self {
        self.keep_events = keep;
        self
    }

    /// Seeds the fault generator.
    pub fn seed(mut self, seed: u64) -> Self {
        self.faults.seed = seed;
        self
    }

    /// Rate of 5xx answers before ingesting.
    pub fn fail_rate(mut self, rate: f64) -> Self {
        self.faults.fail_rate = rate;
        self
    }

    /// Rate of requests ingested and then answered 500.
    pub fn fail_after_ingest_rate(mut self, rate: f64) -> Self {
        self.faults.fail_after_ingest_rate = rate;
        self
    }

    /// Rate and duration of stalls.
    pub fn stall(mut self, rate: f64, duration: Duration) -> Self {
        self.faults.stall_rate = rate;
        self.faults.stall = duration;
        self
    }

    /// Rate of connections closed without a response.
    pub fn drop_rate(mut self, rate: f64) -> Self {
        self.faults.drop_rate = rate;
        self
    }

    /// Sends `Retry-After: secs` on 503 and 429 responses.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Logs one line per ingestion request to stderr.
    pub fn log_requests(mut self, log: bool) -> Self {
        self.log_requests = log;
        self
    }

    /// Checks that the configuration can be served.
    ///
    /// ```
    /// use amplitude_mock::server::{Config, ConfigError};
    ///
    /// assert!(Config::default().validate().is_ok());
    /// assert!(matches!(
    ///     Config::default().fail_rate(1.5).validate(),
    ///     Err(ConfigError::RateOutOfRange { name: "fail_rate", .. })
    /// ));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in self.faults.rates() {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::RateOutOfRange { name, value });
            }
        }
        if self.worker_threads == 0 {
            return Err(ConfigError::NoWorkerThreads);
        }
        if self.api_keys.iter().any(String::is_empty) {
            return Err(ConfigError::EmptyApiKey);
        }
        if self.eps_window.is_zero() && (self.http_v2.eps > 0 || self.batch.eps > 0) {
            return Err(ConfigError::ZeroEpsWindow);
        }
        Ok(())
    }
}

/// A [`Config`] that cannot be served.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// A fault rate is not a probability in `0.0..=1.0`.
    RateOutOfRange {
        /// Name of the rate field.
        name: &'static str,
        /// The offending value.
        value: f64,
    },
    /// `worker_threads` is zero.
    NoWorkerThreads,
    /// An accepted API key is the empty string (which is never valid).
    EmptyApiKey,
    /// Throttling is on but `eps_window` is zero.
    ZeroEpsWindow,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RateOutOfRange { name, value } => {
                write!(f, "{name} must be between 0.0 and 1.0, got {value}")
            }
            Self::NoWorkerThreads => f.write_str("worker_threads must be at least 1"),
            Self::EmptyApiKey => f.write_str("an accepted API key is empty"),
            Self::ZeroEpsWindow => f.write_str("eps_window must be above zero when throttling"),
        }
    }
}

impl std::error::Error for ConfigError {}
