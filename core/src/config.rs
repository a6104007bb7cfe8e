//! Client configuration, with the official SDKs' defaults.

use core::fmt;

use embassy_time::Duration;

use crate::validate::Rules;

/// Amplitude's data centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ServerZone {
    /// United States (default).
    #[default]
    Us,
    /// European Union.
    Eu,
}

impl ServerZone {
    /// The ingestion URL of the zone: HTTP V2, or the Batch API when `batch` is set.
    ///
    /// ```
    /// use amplitude_core::config::ServerZone;
    /// assert_eq!(ServerZone::Eu.url(false), "https://api.eu.amplitude.com/2/httpapi");
    /// assert_eq!(ServerZone::Us.url(true), "https://api2.amplitude.com/batch");
    /// ```
    pub const fn url(self, batch: bool) -> &'static str {
        match (self, batch) {
            (ServerZone::Us, false) => "https://api2.amplitude.com/2/httpapi",
            (ServerZone::Us, true) => "https://api2.amplitude.com/batch",
            (ServerZone::Eu, false) => "https://api.eu.amplitude.com/2/httpapi",
            (ServerZone::Eu, true) => "https://api.eu.amplitude.com/batch",
        }
    }
}

/// What `log_event` does when the queue has no room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QueueFullPolicy {
    /// Refuse the new event with [`crate::client::LogError::QueueFull`] (default).
    #[default]
    RejectNewest,
    /// Drop the oldest waiting events (each reported as
    /// [`crate::outcome::DropReason::QueueFull`]) to make room.
    EvictOldest,
}

/// Everything the client needs to know.
///
/// ```
/// use amplitude_core::config::{Config, ServerZone};
/// use embassy_time::Duration;
/// let cfg = Config::new("API_KEY")
///     .server_zone(ServerZone::Eu, false)
///     .flush_queue_size(100)
///     .flush_interval(Duration::from_secs(5));
/// assert_eq!(cfg.server_url, "https://api.eu.amplitude.com/2/httpapi");
/// assert!(!format!("{cfg:?}").contains("API_KEY"));
/// ```
#[derive(Clone, Copy)]
pub struct Config<'c> {
    /// The project's API key (never printed by `Debug`).
    pub api_key: &'c str,
    /// Where requests go (default: US HTTP V2).
    pub server_url: &'c str,
    /// Send when this many events wait, and at most this many per request
    /// (default 200; clamped to 1..=1999).
    pub flush_queue_size: u16,
    /// Send waiting events at the latest this long after they were logged (default 10 s).
    pub flush_interval: Duration,
    /// Failed attempts after which an event is dropped (default 12).
    pub max_retries: u8,
    /// How long throttled users/devices are paused after a 429 (default 30 s).
    pub throttle_pause: Duration,
    /// Largest request body in bytes (default 1,000,000 − 1: the server wants under 1 MB).
    pub max_request_bytes: usize,
    /// Validation rules (minimum id length).
    pub rules: Rules,
    /// What to do when the queue is full.
    pub queue_full: QueueFullPolicy,
    /// Accept no events at all.
    pub opt_out: bool,
    /// Keep queueing but send nothing (a device without a network, a paused sender).
    pub offline: bool,
    /// Wall-clock time, as ms since the epoch at `Instant` zero, when known up front.
    /// Otherwise it is learned from responses.
    pub clock_offset_ms: Option<i64>,
}

impl fmt::Debug for Config<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("api_key", &"<redacted>")
            .field("server_url", &self.server_url)
            .field("flush_queue_size", &self.flush_queue_size)
            .field("flush_interval", &self.flush_interval)
            .field("max_retries", &self.max_retries)
            .field("throttle_pause", &self.throttle_pause)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("rules", &self.rules)
            .field("queue_full", &self.queue_full)
            .field("opt_out", &self.opt_out)
            .field("offline", &self.offline)
            .field("clock_offset_ms", &self.clock_offset_ms)
            .finish()
    }
}

impl<'c> Config<'c> {
    /// Defaults for `api_key`: US HTTP V2, flush at 200 events or 10 s, 12 retries,
    /// 30 s throttle pause, requests under 1 MB, minimum id length 5.
    pub const fn new(api_key: &'c str) -> Self {
        Self {
            api_key,
            server_url: ServerZone::Us.url(false),
            flush_queue_size: 200,
            flush_interval: Duration::from_secs(10),
            max_retries: 12,
            throttle_pause: Duration::from_secs(30),
            max_request_bytes: 999_999,
            rules: Rules { min_id_length: 5 },
            queue_full: QueueFullPolicy::RejectNewest,
            opt_out: false,
            offline: false,
            clock_offset_ms: None,
        }
    }

    /// Send to a zone's HTTP V2 or Batch endpoint.
    #[must_use]
    pub const fn server_zone(mut self, zone: ServerZone, batch: bool) -> Self {
        self.server_url = zone.url(batch);
        self
    }

    /// Send to an explicit URL (a proxy, a relay, a local server).
    #[must_use]
    pub const fn server_url(mut self, url: &'c str) -> Self {
        self.server_url = url;
        self
    }

    /// See [`Config::flush_queue_size`](Config#structfield.flush_queue_size).
    #[must_use]
    pub const fn flush_queue_size(mut self, n: u16) -> Self {
        self.flush_queue_size = n;
        self
    }

    /// See [`Config::flush_interval`](Config#structfield.flush_interval).
    #[must_use]
    pub const fn flush_interval(mut self, d: Duration) -> Self {
        self.flush_interval = d;
        self
    }

    /// See [`Config::max_retries`](Config#structfield.max_retries).
    #[must_use]
    pub const fn max_retries(mut self, n: u8) -> Self {
        self.max_retries = n;
        self
    }

    /// See [`Config::throttle_pause`](Config#structfield.throttle_pause).
    #[must_use]
    pub const fn throttle_pause(mut self, d: Duration) -> Self {
        self.throttle_pause = d;
        self
    }

    /// See [`Config::max_request_bytes`](Config#structfield.max_request_bytes).
    #[must_use]
    pub const fn max_request_bytes(mut self, n: usize) -> Self {
        self.max_request_bytes = n;
        self
    }

    /// Minimum `user_id`/`device_id` length (sent as `options.min_id_length`).
    #[must_use]
    pub const fn min_id_length(mut self, n: u16) -> Self {
        self.rules.min_id_length = n;
        self
    }

    /// See [`QueueFullPolicy`].
    #[must_use]
    pub const fn queue_full(mut self, p: QueueFullPolicy) -> Self {
        self.queue_full = p;
        self
    }

    /// Accept no events.
    #[must_use]
    pub const fn opt_out(mut self, yes: bool) -> Self {
        self.opt_out = yes;
        self
    }

    /// Queue events but send nothing until set back online.
    #[must_use]
    pub const fn offline(mut self, yes: bool) -> Self {
        self.offline = yes;
        self
    }

    /// Known wall-clock time: ms since the Unix epoch at `Instant` zero.
    #[must_use]
    pub const fn clock_offset_ms(mut self, ms: i64) -> Self {
        self.clock_offset_ms = Some(ms);
        self
    }

    /// Events per request, after clamping.
    pub fn batch_limit(&self) -> usize {
        usize::from(self.flush_queue_size).clamp(1, crate::response::MAX_EVENTS_PER_REQUEST)
    }
}
