//! [`Options`]: how a [`Client`](crate::Client) behaves, with the official SDKs' defaults.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use amplitude_core::config::{QueueFullPolicy, ServerZone};

use crate::report::OutcomeReport;

/// Largest number of requests a client keeps in flight ([`Options::max_in_flight`]).
pub const MAX_IN_FLIGHT: usize = 16;

/// The outcome callback's type (see [`Options::on_outcome`]).
pub type OutcomeCallback = Arc<dyn Fn(&OutcomeReport<'_>) + Send + Sync>;

/// Settings of a [`Client`](crate::Client). Start from [`Options::default`] and chain
/// the setters; [`init`](crate::init) checks the values.
///
/// | option | default |
/// |---|---|
/// | [`server_zone`](Self::server_zone) / [`use_batch`](Self::use_batch) | US, HTTP V2 |
/// | [`server_url`](Self::server_url) | the zone's URL |
/// | [`flush_queue_size`](Self::flush_queue_size) | 200 events |
/// | [`flush_interval`](Self::flush_interval) | 10 s |
/// | [`max_retries`](Self::max_retries) | 12 |
/// | [`retry_backoff`](Self::retry_backoff) | 250 ms doubling up to 30 s, with jitter |
/// | [`throttle_pause`](Self::throttle_pause) | 30 s |
/// | [`min_id_length`](Self::min_id_length) | 5 |
/// | [`request_timeout`](Self::request_timeout) | 10 s |
/// | [`max_in_flight`](Self::max_in_flight) | 4 requests |
/// | [`queue_capacity`](Self::queue_capacity) | 64 MiB and 200,000 events |
/// | [`queue_full`](Self::queue_full) | reject the newest event |
/// | [`flush_timeout`](Self::flush_timeout) | 30 s |
/// | [`drop_timeout`](Self::drop_timeout) | 2 s |
/// | [`opt_out`](Self::opt_out) | off |
/// | [`offline`](Self::offline) | off |
///
/// ```
/// use std::time::Duration;
/// use amplitude_reqwest::{Options, Outcome, ServerZone};
///
/// let options = Options::default()
///     .server_zone(ServerZone::Eu)
///     .flush_queue_size(100)
///     .flush_interval(Duration::from_secs(5))
///     .on_outcome(|report| {
///         if report.outcome != Outcome::Delivered {
///             eprintln!("event {:?}: {}", report.id, report.outcome);
///         }
///     });
/// assert_eq!(options.url(), "https://api.eu.amplitude.com/2/httpapi");
/// ```
#[derive(Clone)]
pub struct Options {
    pub(crate) server_zone: ServerZone,
    pub(crate) use_batch: bool,
    pub(crate) server_url: Option<String>,
    pub(crate) flush_queue_size: u16,
    pub(crate) flush_interval: Duration,
    pub(crate) max_retries: u8,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_cap: Duration,
    pub(crate) throttle_pause: Duration,
    pub(crate) min_id_length: u16,
    pub(crate) request_timeout: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) max_request_bytes: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) queue_events: usize,
    pub(crate) queue_full: QueueFullPolicy,
    pub(crate) opt_out: bool,
    pub(crate) offline: bool,
    pub(crate) flush_timeout: Duration,
    pub(crate) drop_timeout: Duration,
    pub(crate) gzip: bool,
    pub(crate) runtime: Option<tokio::runtime::Handle>,
    pub(crate) on_outcome: Option<OutcomeCallback>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            server_zone: ServerZone::Us,
            use_batch: false,
            server_url: None,
            flush_queue_size: 200,
            flush_interval: Duration::from_secs(10),
            max_retries: 12,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(30),
            throttle_pause: Duration::from_secs(30),
            min_id_length: 5,
            request_timeout: crate::transport::DEFAULT_REQUEST_TIMEOUT,
            max_in_flight: 4,
            max_request_bytes: 999_999,
            queue_bytes: 64 << 20,
            queue_events: 200_000,
            queue_full: QueueFullPolicy::RejectNewest,
            opt_out: false,
            offline: false,
            flush_timeout: Duration::from_secs(30),
            drop_timeout: Duration::from_secs(2),
            gzip: false,
            runtime: None,
            on_outcome: None,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("url", &self.url())
            .field("flush_queue_size", &self.flush_queue_size)
            .field("flush_interval", &self.flush_interval)
            .field("max_retries", &self.max_retries)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_cap", &self.backoff_cap)
            .field("throttle_pause", &self.throttle_pause)
            .field("min_id_length", &self.min_id_length)
            .field("request_timeout", &self.request_timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("queue_bytes", &self.queue_bytes)
            .field("queue_events", &self.queue_events)
            .field("queue_full", &self.queue_full)
            .field("opt_out", &self.opt_out)
            .field("offline", &self.offline)
            .field("flush_timeout", &self.flush_timeout)
            .field("drop_timeout", &self.drop_timeout)
            .field("gzip", &self.gzip)
            .field("runtime", &self.runtime.is_some())
            .field("on_outcome", &self.on_outcome.is_some())
            .finish()
    }
}

/// A setter for a plain field.
macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        #[must_use]
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = value;
            self
        }
    };
}

impl Options {
    setter!(
        /// Amplitude's data centre (US or EU). Ignored when [`server_url`](Self::server_url) is set.
        server_zone: ServerZone
    );
    setter!(
        /// Send to the Batch API instead of HTTP V2 (higher per-device rate limits).
        use_batch: bool
    );
    setter!(
        /// Send when this many events wait, and at most this many per request (1–2000).
        flush_queue_size: u16
    );
    setter!(
        /// Send waiting events at the latest this long after they were logged.
        flush_interval: Duration
    );
    setter!(
        /// Failed attempts after which an event is dropped (`RetriesExhausted`).
        max_retries: u8
    );
    setter!(
        /// How long throttled users and devices are paused after a 429.
        throttle_pause: Duration
    );
    setter!(
        /// Minimum `user_id` / `device_id` length (sent as `options.min_id_length`).
        min_id_length: u16
    );
    setter!(
        /// Time one request may take, from connecting to the end of the response body.
        request_timeout: Duration
    );
    setter!(
        /// Requests in flight at once (1–16). Events of one device are never in two
        /// requests at once, so their order is kept.
        max_in_flight: usize
    );
    setter!(
        /// Largest request body in bytes (Amplitude: under 1 MB).
        max_request_bytes: usize
    );
    setter!(
        /// What `log_event` does when the queue is full.
        queue_full: QueueFullPolicy
    );
    setter!(
        /// Accept no events (they are counted as opted out). Can be changed later with
        /// [`Client::set_opt_out`](crate::Client::set_opt_out).
        opt_out: bool
    );
    setter!(
        /// Start offline: events queue (up to the queue's capacity) but nothing is sent
        /// until [`Client::set_offline`](crate::Client::set_offline)`(false)`.
        offline: bool
    );
    setter!(
        /// How long [`Client::flush`](crate::Client::flush) waits for final outcomes.
        flush_timeout: Duration
    );
    setter!(
        /// How long dropping the last [`Client`](crate::Client) handle may spend
        /// delivering what is queued (only off a tokio runtime thread; on one, the
        /// sender finishes in the background).
        drop_timeout: Duration
    );

    /// Send to an explicit URL (a proxy, a relay, a local server) instead of the zone's.
    #[must_use]
    pub fn server_url(mut self, url: impl Into<String>) -> Self {
        self.server_url = Some(url.into());
        self
    }

    /// Retry backoff: after the n-th failure wait a random time in
    /// `[base, min(cap, base·2ⁿ⁻¹)]` (a `Retry-After` header wins).
    #[must_use]
    pub fn retry_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_cap = cap;
        self
    }

    /// Queue capacity: encoded bytes and events. The byte store is reserved up front
    /// but only touched as it fills; the event table (56 bytes an event) is allocated
    /// at once.
    #[must_use]
    pub fn queue_capacity(mut self, bytes: usize, events: usize) -> Self {
        self.queue_bytes = bytes;
        self.queue_events = events;
        self
    }

    /// Gzip request bodies (feature `gzip`).
    #[cfg(feature = "gzip")]
    #[must_use]
    pub fn gzip(mut self, on: bool) -> Self {
        self.gzip = on;
        self
    }

    /// Run the background sender as a task on this tokio runtime instead of on its own
    /// thread with its own single-threaded runtime.
    #[must_use]
    pub fn runtime(mut self, handle: tokio::runtime::Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// Receive every accepted event's final outcome (delivered, rejected, dropped),
    /// exactly once. Called on the sender, never while the client is locked, so it may
    /// log events itself; keep it quick.
    #[must_use]
    pub fn on_outcome<F>(mut self, callback: F) -> Self
    where
        F: Fn(&OutcomeReport<'_>) + Send + Sync + 'static,
    {
        self.on_outcome = Some(Arc::new(callback));
        self
    }

    /// The URL requests go to.
    ///
    /// ```
    /// use amplitude_reqwest::Options;
    /// assert_eq!(Options::default().url(), "https://api2.amplitude.com/2/httpapi");
    /// assert_eq!(Options::default().use_batch(true).url(), "https://api2.amplitude.com/batch");
    /// assert_eq!(Options::default().server_url("http://127.0.0.1:9/2/httpapi").url(), "http://127.0.0.1:9/2/httpapi");
    /// ```
    pub fn url(&self) -> &str {
        match &self.server_url {
            Some(u) => u,
            None => self.server_zone.url(self.use_batch),
        }
    }

    /// Check the values; the first bad one is named.
    pub(crate) fn check(&self) -> Result<(), (&'static str, &'static str)> {
        if !(1..=2000).contains(&self.flush_queue_size) {
            return Err(("flush_queue_size", "must be 1 to 2000"));
        }
        if !(1..=MAX_IN_FLIGHT).contains(&self.max_in_flight) {
            return Err(("max_in_flight", "must be 1 to 16"));
        }
        if self.request_timeout.is_zero() {
            return Err(("request_timeout", "must be above zero"));
        }
        if self.backoff_base.is_zero() || self.backoff_cap < self.backoff_base {
            return Err((
                "retry_backoff",
                "base must be above zero and at most the cap",
            ));
        }
        if self.min_id_length == 0 {
            return Err(("min_id_length", "must be at least 1"));
        }
        if self.max_request_bytes < 1024 {
            return Err(("max_request_bytes", "must be at least 1024"));
        }
        if self.queue_events == 0 || self.queue_events > u32::MAX as usize {
            return Err(("queue_capacity", "events must be 1 to 2^32-1"));
        }
        if self.queue_bytes < 1024 || self.queue_bytes > u32::MAX as usize {
            return Err(("queue_capacity", "bytes must be 1 KiB to 4 GiB"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_official_sdks() {
        let o = Options::default();
        assert_eq!(o.flush_queue_size, 200);
        assert_eq!(o.flush_interval, Duration::from_secs(10));
        assert_eq!(o.max_retries, 12);
        assert_eq!(o.throttle_pause, Duration::from_secs(30));
        assert_eq!(o.min_id_length, 5);
        assert_eq!(o.request_timeout, Duration::from_secs(10));
        assert_eq!(o.url(), "https://api2.amplitude.com/2/httpapi");
        assert_eq!(o.check(), Ok(()));
    }

    #[test]
    fn out_of_range_values_are_named() {
        let bad = |o: Options| o.check().unwrap_err().0;
        assert_eq!(
            bad(Options::default().flush_queue_size(2001)),
            "flush_queue_size"
        );
        assert_eq!(bad(Options::default().max_in_flight(0)), "max_in_flight");
        assert_eq!(
            bad(Options::default().request_timeout(Duration::ZERO)),
            "request_timeout"
        );
        assert_eq!(
            bad(Options::default().retry_backoff(Duration::from_secs(2), Duration::from_secs(1))),
            "retry_backoff"
        );
        assert_eq!(bad(Options::default().min_id_length(0)), "min_id_length");
        assert_eq!(
            bad(Options::default().max_request_bytes(10)),
            "max_request_bytes"
        );
        assert_eq!(
            bad(Options::default().queue_capacity(1 << 20, 0)),
            "queue_capacity"
        );
    }

    #[test]
    fn debug_shows_settings_but_not_the_callback() {
        let o = Options::default().on_outcome(|_| {});
        let text = format!("{o:?}");
        assert!(text.contains("flush_queue_size: 200"));
        assert!(text.contains("on_outcome: true"));
    }
}
