//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amplitude_mock::server::{MockServer, insert_id_fingerprint};
use amplitude_reqwest::{Client, Event, EventId, Options, Outcome};

/// One outcome as the callback saw it.
#[derive(Debug, Clone)]
pub struct Rec {
    pub id: EventId,
    pub outcome: Outcome,
    pub json: serde_json::Value,
    pub at: Instant,
}

/// Records every outcome the client reports.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<Rec>>>);

impl Recorder {
    /// `options` with an outcome callback feeding this recorder.
    pub fn options(&self, options: Options) -> Options {
        let sink = self.0.clone();
        options.on_outcome(move |r| {
            let json = serde_json::from_str(r.json).expect("outcome JSON parses");
            sink.lock().unwrap().push(Rec {
                id: r.id,
                outcome: r.outcome,
                json,
                at: Instant::now(),
            });
        })
    }

    pub fn all(&self) -> Vec<Rec> {
        self.0.lock().unwrap().clone()
    }

    pub fn count(&self, pred: impl Fn(&Outcome) -> bool) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|r| pred(&r.outcome))
            .count()
    }

    /// Every id reported at most once; returns how many were reported.
    pub fn assert_unique(&self) -> usize {
        let all = self.all();
        let ids: HashSet<EventId> = all.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), all.len(), "an event got more than one outcome");
        all.len()
    }
}

/// Options with short timings for tests.
pub fn fast_options() -> Options {
    Options::default()
        .flush_interval(Duration::from_millis(50))
        .retry_backoff(Duration::from_millis(5), Duration::from_millis(50))
        .request_timeout(Duration::from_secs(2))
        .throttle_pause(Duration::from_millis(300))
        .drop_timeout(Duration::from_secs(2))
}

/// An event logged by a test: device, insert_id and per-device sequence number.
#[derive(Debug, Clone)]
pub struct Planned {
    pub device: String,
    pub user: String,
    pub insert_id: String,
    pub seq: i64,
}

impl Planned {
    pub fn event(&self) -> Event<'_> {
        Event::new("Test Event")
            .device_id(&self.device)
            .user_id(&self.user)
            .insert_id(&self.insert_id)
            .event_id(self.seq)
            .property("seq", self.seq)
            .property("padding", "some realistic property value")
    }
}

/// `per_device[i]` events for device i, interleaved round-robin in log order.
pub fn plan(tag: &str, per_device: &[usize]) -> Vec<Planned> {
    let mut out = Vec::new();
    let max = per_device.iter().copied().max().unwrap_or(0);
    for seq in 0..max {
        for (d, &n) in per_device.iter().enumerate() {
            if seq < n {
                out.push(Planned {
                    device: format!("{tag}-device-{d:03}"),
                    user: format!("{tag}-user-{d:03}"),
                    insert_id: format!("{tag}-{d}-{seq}"),
                    seq: seq as i64,
                });
            }
        }
    }
    out
}

/// Log every planned event; all must be accepted.
pub fn log_all(client: &Client, planned: &[Planned]) {
    for p in planned {
        client.log_event(p.event()).expect("accepted");
    }
}

/// The delivery invariants against the server: every accepted event has exactly one
/// outcome, all were delivered, the server holds each exactly once, and per device in
/// the order logged.
pub fn assert_delivered_exactly_once_in_order(
    server: &MockServer,
    client: &Client,
    rec: &Recorder,
    planned: &[Planned],
) {
    let c = client.counters();
    assert_eq!(c.accepted, planned.len() as u64);
    assert_eq!(
        c.accepted,
        c.delivered + c.rejected + c.dropped + c.pending()
    );
    assert_eq!(rec.assert_unique(), planned.len(), "one outcome per event");
    assert_eq!(
        c.delivered,
        planned.len() as u64,
        "all delivered: {c:?}, outcomes: {:?}",
        rec.all()
            .iter()
            .filter(|r| r.outcome != Outcome::Delivered)
            .map(|r| r.outcome)
            .collect::<Vec<_>>()
    );
    let summary = server.summary();
    assert_eq!(summary.events_ingested, planned.len() as u64, "{summary:?}");
    assert_eq!(summary.order_violations, 0, "{summary:?}");
    let ingested: HashSet<String> = server
        .events()
        .iter()
        .map(|e| e["insert_id"].as_str().unwrap().to_owned())
        .collect();
    let logged: HashSet<String> = planned.iter().map(|p| p.insert_id.clone()).collect();
    assert_eq!(
        ingested, logged,
        "the server holds exactly the logged events"
    );
    let mut by_device: HashMap<&str, Vec<u64>> = HashMap::new();
    for p in planned {
        by_device
            .entry(&p.device)
            .or_default()
            .push(insert_id_fingerprint(&p.insert_id));
    }
    for (device, expected) in by_device {
        assert_eq!(server.device_order(device), expected, "order of {device}");
    }
}
