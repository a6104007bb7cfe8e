//! What the client tells its caller: per-event outcome reports and flush reports.

use std::fmt;

use amplitude_core::outcome::{EventId, Outcome, Report};

/// One accepted event's final outcome, as passed to
/// [`Options::on_outcome`](crate::Options::on_outcome).
#[derive(Debug, Clone, Copy)]
pub struct OutcomeReport<'r> {
    /// The id [`Client::log_event`](crate::Client::log_event) returned.
    pub id: EventId,
    /// Delivered, rejected (with the server's reason) or dropped (with the SDK's reason).
    pub outcome: Outcome,
    /// The event as encoded (and sent, unless it never got that far).
    pub json: &'r str,
    /// Failed attempts before the outcome.
    pub attempts: u8,
}

/// Outcomes collected under the client's lock and handed to the callback after it.
#[derive(Debug, Default)]
pub(crate) struct ReportBuf {
    json: Vec<u8>,
    items: Vec<(EventId, Outcome, u8, usize, usize)>,
}

impl ReportBuf {
    pub(crate) fn push(&mut self, r: &Report<'_>) {
        let start = self.json.len();
        self.json.extend_from_slice(r.json);
        self.items
            .push((r.id, r.outcome, r.attempts, start, r.json.len()));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.json.clear();
        self.items.clear();
    }

    pub(crate) fn for_each(&self, mut f: impl FnMut(&OutcomeReport<'_>)) {
        for &(id, outcome, attempts, start, len) in &self.items {
            let json = std::str::from_utf8(&self.json[start..start + len]).unwrap_or("");
            f(&OutcomeReport {
                id,
                outcome,
                json,
                attempts,
            });
        }
    }
}

/// What became of the events that were pending when a flush (or shutdown) started.
///
/// `delivered + rejected + dropped + pending` is the number of events that were
/// waiting when it started.
///
/// ```
/// use amplitude_reqwest::FlushReport;
/// let r = FlushReport { delivered: 10, rejected: 1, dropped: 0, pending: 0, timed_out: false, stopped: false };
/// assert!(r.is_settled());
/// assert!(!r.all_delivered());
/// assert_eq!(r.to_string(), "11 events: 10 delivered, 1 rejected, 0 dropped, 0 pending");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Events a 2xx covered.
    pub delivered: u64,
    /// Events the server refused.
    pub rejected: u64,
    /// Events the SDK gave up on (including those dropped at shutdown).
    pub dropped: u64,
    /// Events still without a final outcome (the deadline passed first).
    pub pending: u64,
    /// The deadline passed before every event had its outcome.
    pub timed_out: bool,
    /// The background sender was not running (shut down, or its runtime ended):
    /// pending events will not be sent.
    pub stopped: bool,
}

impl FlushReport {
    /// Every covered event has its final outcome.
    pub fn is_settled(&self) -> bool {
        self.pending == 0
    }

    /// Every covered event was delivered.
    pub fn all_delivered(&self) -> bool {
        self.rejected == 0 && self.dropped == 0 && self.pending == 0
    }

    /// Events the report covers.
    pub fn total(&self) -> u64 {
        self.delivered + self.rejected + self.dropped + self.pending
    }
}

impl fmt::Display for FlushReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} events: {} delivered, {} rejected, {} dropped, {} pending",
            self.total(),
            self.delivered,
            self.rejected,
            self.dropped,
            self.pending
        )?;
        if self.timed_out {
            f.write_str(" (timed out)")?;
        }
        if self.stopped {
            f.write_str(" (sender stopped)")?;
        }
        Ok(())
    }
}
