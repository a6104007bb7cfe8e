//! What the server saw: counters returned by [`MockServer::summary`](super::MockServer::summary)
//! and `GET /summary`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counters of everything the server received and answered since start (or the last reset).
///
/// Event counters relate as follows: every event of a request answered `200` (or
/// ingested and then answered `500` by a fault) is *received*; each received event is
/// either *ingested* or a *duplicate*. Events of refused requests are counted in
/// `events_rejected` (400), `events_throttled` (429), `events_too_large` (413) or not
/// at all (5xx before ingest, stalls, drops).
///
/// Serialises to the JSON of `GET /summary`:
///
/// ```
/// use amplitude_mock::server::Summary;
///
/// let summary = Summary::default();
/// let json = serde_json::to_value(&summary).unwrap();
/// assert_eq!(json["events_ingested"], 0);
/// assert_eq!(json["faults"]["drop"], 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Requests to the ingestion endpoints (`/2/httpapi`, `/batch`).
    pub requests: u64,
    /// Ingestion responses sent, by HTTP status (dropped connections have none).
    pub responses: BTreeMap<u16, u64>,
    /// Events in requests that were ingested (including duplicates).
    pub events_received: u64,
    /// Unique events stored (received minus duplicates).
    pub events_ingested: u64,
    /// Received events dropped because their `(device_id, insert_id)` was already ingested.
    pub duplicates: u64,
    /// Events in requests refused with 400 (all of each such request).
    pub events_rejected: u64,
    /// Events named in the index lists of 400 responses.
    pub events_invalid: u64,
    /// Events in requests refused with 429 (all of each such request).
    pub events_throttled: u64,
    /// Events named in `throttled_events` of 429 responses.
    pub events_throttled_listed: u64,
    /// Events in requests refused with 413 (when the body could be parsed).
    pub events_too_large: u64,
    /// Faults injected, by kind.
    pub faults: FaultCounts,
    /// Request body bytes received on the ingestion endpoints, as sent (compressed or not).
    pub bytes_received: u64,
    /// Request body bytes after decompression.
    pub bytes_decompressed: u64,
    /// Distinct device ids with ingested events.
    pub devices: u64,
    /// Distinct user ids with ingested events.
    pub users: u64,
    /// Ingested events whose integer `event_id` is lower than that of the previous event
    /// ingested for the same device (a per-device order violation).
    pub order_violations: u64,
}

impl Summary {
    /// Number of responses sent with `status`.
    ///
    /// ```
    /// use amplitude_mock::server::Summary;
    ///
    /// assert_eq!(Summary::default().status(200), 0);
    /// ```
    pub fn status(&self, status: u16) -> u64 {
        self.responses.get(&status).copied().unwrap_or(0)
    }
}

/// Faults injected, by kind (random and scripted alike).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounts {
    /// 5xx answered without ingesting.
    pub fail_before_ingest: u64,
    /// Requests ingested and then answered with a 5xx.
    pub fail_after_ingest: u64,
    /// Requests stalled (and then answered 504 without ingesting).
    pub stall: u64,
    /// Connections closed without a response.
    pub drop: u64,
}

impl FaultCounts {
    /// Sum of all kinds.
    pub fn total(&self) -> u64 {
        self.fail_before_ingest + self.fail_after_ingest + self.stall + self.drop
    }
}
