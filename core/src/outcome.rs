//! Final outcomes, the sink that receives them, and the counters that balance.

use core::fmt;

/// Why the server refused an event (it will never be accepted as sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RejectReason {
    /// Listed in `events_with_invalid_fields`.
    InvalidFields,
    /// Listed in `events_with_missing_fields`.
    MissingFields,
    /// Listed in `events_with_invalid_id_lengths`.
    InvalidIdLength,
    /// Listed in `silenced_events` or its device in `silenced_devices`.
    Silenced,
    /// Isolated by bisection as the event a 400 without usable index lists was about.
    Invalid,
    /// The whole request was refused for a request-level `missing_field`.
    MissingRequestField,
    /// The API key was refused (`Invalid API key`).
    InvalidApiKey,
    /// 403: the request was blocked.
    Forbidden,
}

/// Why the SDK gave up on an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DropReason {
    /// Evicted to make room under the evict-oldest queue policy.
    QueueFull,
    /// The retry policy gave up (408, 5xx, transport errors).
    RetriesExhausted,
    /// The user or device exceeded the daily quota (429 `exceeded_daily_quota_*`).
    DailyQuota,
    /// Still too large when sent alone (413), or larger than the request limit.
    TooLarge,
    /// Shutdown (or a drain) came before delivery.
    Shutdown,
    /// The server URL cannot be used by the transport.
    InvalidUrl,
}

/// The one final outcome every accepted event gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Outcome {
    /// A 2xx response covered it.
    Delivered,
    /// The server refused it.
    Rejected(RejectReason),
    /// The SDK gave up on it.
    Dropped(DropReason),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Delivered => f.write_str("delivered"),
            Outcome::Rejected(r) => write!(f, "rejected ({r:?})"),
            Outcome::Dropped(d) => write!(f, "dropped ({d:?})"),
        }
    }
}

/// Identifies an accepted event: its position in log order (starting at 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EventId(pub u64);

/// One event's final outcome, with the JSON that was (or would have been) sent.
#[derive(Debug, Clone, Copy)]
pub struct Report<'r> {
    /// Which event.
    pub id: EventId,
    /// What happened to it.
    pub outcome: Outcome,
    /// The encoded event object.
    pub json: &'r [u8],
    /// How many failed attempts it went through.
    pub attempts: u8,
}

/// Receives every final outcome, exactly once per accepted event.
///
/// ```
/// use amplitude_core::outcome::{OutcomeSink, Report};
/// struct Count(u32);
/// impl OutcomeSink for Count {
///     fn on_outcome(&mut self, _report: &Report<'_>) { self.0 += 1; }
/// }
/// ```
pub trait OutcomeSink {
    /// Called once per event when its outcome is final.
    fn on_outcome(&mut self, report: &Report<'_>);
}

/// A sink that ignores reports (the counters still count).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSink;

impl OutcomeSink for NoSink {
    fn on_outcome(&mut self, _report: &Report<'_>) {}
}

impl<F: FnMut(&Report<'_>)> OutcomeSink for F {
    fn on_outcome(&mut self, report: &Report<'_>) {
        self(report)
    }
}

/// Running totals. At every moment `accepted == delivered + rejected + dropped + pending()`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Counters {
    /// Events taken into the queue.
    pub accepted: u64,
    /// Events a 2xx covered.
    pub delivered: u64,
    /// Events the server refused.
    pub rejected: u64,
    /// Events the SDK gave up on.
    pub dropped: u64,
    /// Events stopped by a middleware (not accepted).
    pub filtered: u64,
    /// Events refused by validation or encoding (not accepted).
    pub invalid: u64,
    /// Events refused because the queue was full (not accepted).
    pub refused_full: u64,
    /// Events not taken because of opt-out (not accepted).
    pub opted_out: u64,
    /// Requests handed to the transport.
    pub requests: u64,
    /// Requests that failed in a retryable way.
    pub failed_requests: u64,
}

impl Counters {
    /// Events accepted and not yet final.
    pub fn pending(&self) -> u64 {
        self.accepted - self.delivered - self.rejected - self.dropped
    }

    pub(crate) fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Delivered => self.delivered += 1,
            Outcome::Rejected(_) => self.rejected += 1,
            Outcome::Dropped(_) => self.dropped += 1,
        }
    }
}
