//! Shared harness: a client over a big RAM queue, an outcome log, and helpers to drive
//! one request at a time.
#![allow(dead_code)]

use std::collections::HashMap;

use amplitude_core::Event;
use amplitude_core::client::{Client, FlightId};
use amplitude_core::config::Config;
use amplitude_core::outcome::{EventId, Outcome, OutcomeSink, Report};
use amplitude_core::queue::{RamQueue, Slot};
use amplitude_core::transport::{Response, TransportError};
use embassy_time::Instant;

pub type Queue = RamQueue<Box<[u8]>, Box<[Slot]>>;
pub type TestClient = Client<'static, Queue>;

pub fn queue(bytes: usize, events: usize) -> Queue {
    RamQueue::new(
        vec![0u8; bytes].into_boxed_slice(),
        vec![Slot::EMPTY; events].into_boxed_slice(),
    )
}

pub fn client(config: Config<'static>) -> TestClient {
    Client::new(config, queue(1 << 20, 4096), 42)
}

/// Every outcome, with the event JSON it carried.
#[derive(Default, Debug)]
pub struct Log {
    pub outcomes: Vec<(EventId, Outcome, serde_json::Value)>,
}

impl OutcomeSink for Log {
    fn on_outcome(&mut self, r: &Report<'_>) {
        let json = serde_json::from_slice(r.json).expect("queued events are valid JSON");
        self.outcomes.push((r.id, r.outcome, json));
    }
}

impl Log {
    pub fn of(&self, id: EventId) -> Vec<Outcome> {
        self.outcomes
            .iter()
            .filter(|o| o.0 == id)
            .map(|o| o.1)
            .collect()
    }
    pub fn counts(&self) -> HashMap<Outcome, usize> {
        let mut m = HashMap::new();
        for o in &self.outcomes {
            *m.entry(o.1).or_insert(0) += 1;
        }
        m
    }
}

pub fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// Log `n` events of device `device-<i % devices>` named `e<i>`.
pub fn log_n(
    c: &mut TestClient,
    log: &mut Log,
    now: Instant,
    n: usize,
    devices: usize,
) -> Vec<EventId> {
    (0..n)
        .map(|i| {
            let et = format!("e{i}");
            let dev = format!("device-{}", i % devices);
            let ev: Event = Event::new(&et).device_id(&dev);
            match c.log_event(now, ev, &mut (), None, log).unwrap() {
                amplitude_core::Logged::Queued(id) => id,
                other => panic!("not queued: {other:?}"),
            }
        })
        .collect()
}

/// A request the client built.
#[derive(Debug, Clone)]
pub struct Sent {
    pub flight: FlightId,
    pub url: String,
    pub raw: Vec<u8>,
    pub body: serde_json::Value,
}

/// The next request, if one is due.
pub fn next(c: &mut TestClient, log: &mut Log, now: Instant) -> Option<Sent> {
    let mut buf = vec![0u8; 1 << 20];
    let out = c.next_request(now, &mut buf, log)?;
    let body = serde_json::from_slice(out.request.body).expect("request bodies are valid JSON");
    Some(Sent {
        flight: out.flight,
        url: out.request.url.to_owned(),
        raw: out.request.body.to_vec(),
        body,
    })
}

pub fn respond(
    c: &mut TestClient,
    log: &mut Log,
    now: Instant,
    sent: &Sent,
    status: u16,
    body: &str,
) {
    c.on_response(
        now,
        sent.flight,
        Ok(Response::new(status, body.as_bytes())),
        log,
    );
}

pub fn fail(c: &mut TestClient, log: &mut Log, now: Instant, sent: &Sent, e: TransportError) {
    c.on_response(now, sent.flight, Err(e), log);
}

pub fn event_types(body: &serde_json::Value) -> Vec<String> {
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect()
}
