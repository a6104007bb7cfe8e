//! `pipeline_model`: an arbitrary sequence of log / next_request / response / time /
//! flush / wake-up operations against the sans-IO client, checked step by step against a
//! small reference model and DESIGN.md's invariants:
//!
//! 1. every accepted event gets exactly one outcome, the one spec §6 calls for, and
//!    `accepted = delivered + rejected + dropped + pending` at every step;
//! 2. nothing is resent after a 200 that covered it; `insert_id` is stable on resend;
//! 3. per device (else user), events are sent in log order;
//! 4. no request exceeds the event or byte limit (nor a split's halved size);
//! 5. throttled users/devices wait their pause, nobody else does;
//! 6. no request before a retry's minimum backoff; no hot loop (a wake-up that sends
//!    nothing is followed by one in the future); the pipeline always drains.
//!
//! The input is a compact byte code (see [`decode`]) so that seeds can be written from
//! readable scripts ([`encode`]).

use std::collections::HashMap;

use amplitude_core::client::{Client, FlightId, LogError, prepare};
use amplitude_core::config::{Config, QueueFullPolicy};
use amplitude_core::encode::Rng;
use amplitude_core::outcome::{DropReason, EventId, Outcome, OutcomeSink, RejectReason, Report};
use amplitude_core::queue::{Batcher, RamQueue, Slot};
use amplitude_core::retry::ExponentialBackoff;
use amplitude_core::transport::{Response, TransportError};
use amplitude_core::validate::Rules;
use amplitude_core::{Event, Logged};
use embassy_time::{Duration, Instant};
use serde_json::{Value as Json, json};

type Queue = RamQueue<Box<[u8]>, Box<[Slot]>>;

const API_KEY: &str = "fuzz-key";
const DEVICES: [&str; 4] = ["device-0", "device-1", "device-2", "device-3"];
const USERS: [&str; 3] = ["user-0", "user-1", "user-2"];
const THROTTLE_PAUSE: Duration = Duration::from_secs(30);
const BASE: Duration = Duration::from_millis(250);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
const SERVER_EPOCH_MS: i64 = 1_700_000_000_000;

/// How the client is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// Events per request (1..=8).
    pub flush_size: u16,
    /// Byte limit of a request.
    pub max_bytes: usize,
    /// Requests in flight at once: 1 or 3.
    pub parallel: bool,
    /// Queue policy: evict oldest instead of rejecting newest.
    pub evict: bool,
    /// Retry attempts before giving up (0..=3).
    pub max_attempts: u8,
    /// Wall-clock offset configured up front.
    pub clock_known: bool,
    /// Record slots of the queue.
    pub slots: usize,
    /// Byte size of the queue.
    pub arena: usize,
}

/// A server reply, chosen by the fuzzer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// 200; `upload_time`: body has `server_upload_time`; `date`: `Date` header.
    Ok { upload_time: bool, date: bool },
    /// 200 with an HTML body.
    OkGarbage,
    /// 400 listing batch positions (bit i of the mask = index i).
    BadIndices(u8),
    /// 400 listing only positions beyond the batch (`n + k`).
    BadOutOfRange(u8),
    /// 400 without anything usable (HTML).
    BadUnlisted,
    /// 400 `missing_field`.
    MissingField,
    /// 400 `Invalid API key`.
    InvalidKey,
    /// 400 `silenced_devices` (mask over [`DEVICES`]).
    Silenced(u8),
    /// 403.
    Forbidden,
    /// 413.
    TooLarge,
    /// 429: throttled/quota devices and users (masks), throttled positions, Retry-After.
    Throttled {
        devices: u8,
        quota_devices: u8,
        users: u8,
        quota_users: u8,
        events: u8,
        retry_after: Option<u8>,
    },
    /// 500/502/503/504 or 408, with an optional Retry-After.
    ServerError {
        status: u16,
        retry_after: Option<u8>,
    },
    /// A transport failure.
    Transport(TransportError),
}

/// One operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Log an event of `DEVICES[device]` (≥ 4: none) and `USERS[user]` (≥ 3: none).
    Log {
        device: u8,
        user: u8,
        explicit_time: bool,
        explicit_insert_id: bool,
        invalid: bool,
        /// Padding property of `4 * pad` characters.
        pad: u8,
    },
    /// Build the next request into a buffer of `200 + 24 * buf` bytes (0: 64 KiB).
    Next { buf: u8 },
    /// Answer in-flight request number `which` (modulo their count).
    Respond { which: u8, reply: Reply },
    /// Let `4 * ms4` milliseconds pass.
    Advance { ms4: u16 },
    /// `flush()`.
    Flush,
    /// Go to the next wake-up and build a request.
    Wake,
}

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
}

const TRANSPORT_ERRORS: [TransportError; 8] = [
    TransportError::Dns,
    TransportError::Connect,
    TransportError::Timeout,
    TransportError::Closed,
    TransportError::Io,
    TransportError::Tls,
    TransportError::Protocol,
    TransportError::InvalidUrl,
];

fn reply_of(kind: u8, a: u8, b: u8, c: u8) -> Reply {
    match kind % 14 {
        0 => Reply::Ok {
            upload_time: a & 1 != 0,
            date: a & 2 != 0,
        },
        1 => Reply::OkGarbage,
        2 => Reply::BadIndices(a),
        3 => Reply::BadOutOfRange(a),
        4 => Reply::BadUnlisted,
        5 => Reply::MissingField,
        6 => Reply::InvalidKey,
        7 => Reply::Silenced(a),
        8 => Reply::Forbidden,
        9 => Reply::TooLarge,
        10 => Reply::Throttled {
            devices: a & 15,
            quota_devices: a >> 4,
            users: b & 7,
            quota_users: (b >> 3) & 7,
            events: c & 15,
            retry_after: (b & 64 != 0).then_some(c >> 4),
        },
        11 => Reply::ServerError {
            status: [500, 502, 503, 504, 408][usize::from(a % 5)],
            retry_after: (b & 1 != 0).then_some(c),
        },
        _ => Reply::Transport(TRANSPORT_ERRORS[usize::from(a % 8)]),
    }
}

/// Decode a fuzz input: four setup bytes, then operations until the input ends.
pub fn decode(data: &[u8]) -> (Setup, Vec<Op>) {
    let mut b = Bytes(data);
    let (s0, s1, s2, s3) = (b.u8(), b.u8(), b.u8(), b.u8());
    let setup = Setup {
        flush_size: u16::from(s0 % 8) + 1,
        max_bytes: 700 + usize::from(s1) * 16,
        parallel: s2 & 1 != 0,
        evict: s2 & 2 != 0,
        max_attempts: (s2 >> 2) & 3,
        clock_known: s2 & 16 != 0,
        slots: 4 + usize::from(s3 & 31) % 29,
        arena: 4096 + usize::from(s3 >> 5) * 2048,
    };
    let mut ops = Vec::new();
    while !b.0.is_empty() && ops.len() < 400 {
        let op = match b.u8() % 6 {
            0 => {
                let (d, u, f, pad) = (b.u8(), b.u8(), b.u8(), b.u8());
                Op::Log {
                    device: d % 5,
                    user: u % 4,
                    explicit_time: f & 1 != 0,
                    explicit_insert_id: f & 2 != 0,
                    invalid: f & 4 != 0,
                    pad,
                }
            }
            1 => Op::Next { buf: b.u8() },
            2 => {
                let (w, k, x, y, z) = (b.u8(), b.u8(), b.u8(), b.u8(), b.u8());
                Op::Respond {
                    which: w,
                    reply: reply_of(k, x, y, z),
                }
            }
            3 => Op::Advance {
                ms4: u16::from_le_bytes([b.u8(), b.u8()]),
            },
            4 => Op::Flush,
            _ => Op::Wake,
        };
        ops.push(op);
    }
    (setup, ops)
}

/// Encode a setup and operations as fuzz input (the inverse of [`decode`]).
pub fn encode(setup: &Setup, ops: &[Op]) -> Vec<u8> {
    let mut s2 = u8::from(setup.parallel) | u8::from(setup.evict) << 1;
    s2 |= (setup.max_attempts & 3) << 2 | u8::from(setup.clock_known) << 4;
    let s3 = (((setup.slots - 4) as u8 % 29) & 31) | (((setup.arena - 4096) / 2048) as u8) << 5;
    let mut out = vec![
        (setup.flush_size - 1) as u8,
        ((setup.max_bytes - 700) / 16) as u8,
        s2,
        s3,
    ];
    for op in ops {
        match *op {
            Op::Log {
                device,
                user,
                explicit_time,
                explicit_insert_id,
                invalid,
                pad,
            } => {
                let f = u8::from(explicit_time)
                    | u8::from(explicit_insert_id) << 1
                    | u8::from(invalid) << 2;
                out.extend([0, device, user, f, pad]);
            }
            Op::Next { buf } => out.extend([1, buf]),
            Op::Respond { which, reply } => {
                let (k, a, b, c) = match reply {
                    Reply::Ok { upload_time, date } => {
                        (0, u8::from(upload_time) | u8::from(date) << 1, 0, 0)
                    }
                    Reply::OkGarbage => (1, 0, 0, 0),
                    Reply::BadIndices(m) => (2, m, 0, 0),
                    Reply::BadOutOfRange(k) => (3, k, 0, 0),
                    Reply::BadUnlisted => (4, 0, 0, 0),
                    Reply::MissingField => (5, 0, 0, 0),
                    Reply::InvalidKey => (6, 0, 0, 0),
                    Reply::Silenced(m) => (7, m, 0, 0),
                    Reply::Forbidden => (8, 0, 0, 0),
                    Reply::TooLarge => (9, 0, 0, 0),
                    Reply::Throttled {
                        devices,
                        quota_devices,
                        users,
                        quota_users,
                        events,
                        retry_after,
                    } => (
                        10,
                        devices | quota_devices << 4,
                        users | quota_users << 3 | u8::from(retry_after.is_some()) << 6,
                        events | retry_after.unwrap_or(0) << 4,
                    ),
                    Reply::ServerError {
                        status,
                        retry_after,
                    } => {
                        let i = [500, 502, 503, 504, 408]
                            .iter()
                            .position(|s| *s == status)
                            .unwrap() as u8;
                        (
                            11,
                            i,
                            u8::from(retry_after.is_some()),
                            retry_after.unwrap_or(0),
                        )
                    }
                    Reply::Transport(e) => (
                        12,
                        TRANSPORT_ERRORS.iter().position(|t| *t == e).unwrap() as u8,
                        0,
                        0,
                    ),
                };
                out.extend([2, which, k, a, b, c]);
            }
            Op::Advance { ms4 } => {
                let [x, y] = ms4.to_le_bytes();
                out.extend([3, x, y]);
            }
            Op::Flush => out.push(4),
            Op::Wake => out.push(5),
        }
    }
    out
}

/// Run the fuzz input.
pub fn check(data: &[u8]) {
    let (setup, ops) = decode(data);
    if setup.parallel {
        Harness::<3>::new(setup).run(&ops);
    } else {
        Harness::<1>::new(setup).run(&ops);
    }
}

// ---- the model ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Ev {
    device: Option<&'static str>,
    user: Option<&'static str>,
    explicit_time: Option<i64>,
    insert_id: Option<String>,
    logged_at: Instant,
    outcome: Option<Outcome>,
    flight: Option<FlightId>,
    attempts: u8,
    cap: u16,
    not_before: Instant,
    json_len: usize,
}

impl Ev {
    fn order_key(&self) -> (char, &'static str) {
        match (self.device, self.user) {
            (Some(d), _) => ('d', d),
            (None, Some(u)) => ('u', u),
            (None, None) => unreachable!("every logged event has an id"),
        }
    }
    fn pending(&self) -> bool {
        self.outcome.is_none()
    }
}

#[derive(Debug)]
struct Flight {
    id: FlightId,
    seqs: Vec<u64>,
}

/// Every report, in order, with the event's `__seq` tag.
#[derive(Default)]
struct Sink {
    reports: Vec<(EventId, Outcome, Json)>,
}

impl OutcomeSink for Sink {
    fn on_outcome(&mut self, r: &Report<'_>) {
        let json: Json = serde_json::from_slice(r.json).expect("reported event JSON");
        self.reports.push((r.id, r.outcome, json));
    }
}

struct Harness<const F: usize> {
    setup: Setup,
    client: Client<'static, Queue, ExponentialBackoff, F>,
    sink: Sink,
    now: Instant,
    events: Vec<Ev>,
    flights: Vec<Flight>,
    /// (kind, name) → paused until.
    pauses: HashMap<(char, &'static str), Instant>,
    backoff_until: Instant,
    clock: Option<i64>,
    invalid: u64,
    refused_full: u64,
    requests: u64,
    pads: Vec<String>,
}

fn seq_of(json: &Json) -> u64 {
    json["event_properties"]["__seq"]
        .as_u64()
        .expect("every event is tagged")
}

impl<const F: usize> Harness<F> {
    fn new(setup: Setup) -> Self {
        let mut config = Config::new(API_KEY)
            .flush_queue_size(setup.flush_size)
            .max_request_bytes(setup.max_bytes)
            .throttle_pause(THROTTLE_PAUSE)
            .max_retries(setup.max_attempts)
            .queue_full(if setup.evict {
                QueueFullPolicy::EvictOldest
            } else {
                QueueFullPolicy::RejectNewest
            });
        if setup.clock_known {
            config = config.clock_offset_ms(SERVER_EPOCH_MS);
        }
        let queue = RamQueue::new(
            vec![0u8; setup.arena].into_boxed_slice(),
            vec![Slot::EMPTY; setup.slots].into_boxed_slice(),
        );
        let policy = ExponentialBackoff {
            base: BASE,
            cap: Duration::from_secs(30),
            max_attempts: u32::from(setup.max_attempts),
            max_retry_after: MAX_RETRY_AFTER,
        };
        Self {
            setup,
            client: Client::with_policy(config, queue, policy, 0xf022),
            sink: Sink::default(),
            now: Instant::from_millis(0),
            events: Vec::new(),
            flights: Vec::new(),
            pauses: HashMap::new(),
            backoff_until: Instant::from_millis(0),
            clock: setup.clock_known.then_some(SERVER_EPOCH_MS),
            invalid: 0,
            refused_full: 0,
            requests: 0,
            pads: (0..=255).map(|p| "p".repeat(4 * p)).collect(),
        }
    }

    fn pending(&self) -> usize {
        self.events.iter().filter(|e| e.pending()).count()
    }

    /// Take the reports of the last call, checking each names a pending event with its
    /// own JSON, once.
    fn take_reports(&mut self) -> Vec<(u64, Outcome)> {
        let mut out = Vec::new();
        for (id, outcome, json) in std::mem::take(&mut self.sink.reports) {
            let seq = id.0;
            let ev = self
                .events
                .get(seq as usize)
                .unwrap_or_else(|| panic!("outcome {outcome:?} for unknown {id:?}"));
            assert!(
                ev.pending(),
                "event {seq} got a second outcome {outcome:?} after {:?}",
                ev.outcome
            );
            assert_eq!(seq_of(&json), seq, "report carries another event's JSON");
            if let Some(ins) = &ev.insert_id {
                assert_eq!(
                    json["insert_id"].as_str(),
                    Some(ins.as_str()),
                    "insert_id changed"
                );
            }
            out.push((seq, outcome));
        }
        out
    }

    fn settle(&mut self, seq: u64, outcome: Outcome) {
        let ev = &mut self.events[seq as usize];
        ev.outcome = Some(outcome);
        ev.flight = None;
    }

    fn check_counters(&self) {
        let c = self.client.counters();
        let count = |f: fn(&Outcome) -> bool| {
            self.events
                .iter()
                .filter(|e| e.outcome.as_ref().is_some_and(f))
                .count() as u64
        };
        assert_eq!(c.accepted, self.events.len() as u64, "accepted");
        assert_eq!(
            c.delivered,
            count(|o| *o == Outcome::Delivered),
            "delivered"
        );
        assert_eq!(
            c.rejected,
            count(|o| matches!(o, Outcome::Rejected(_))),
            "rejected"
        );
        assert_eq!(
            c.dropped,
            count(|o| matches!(o, Outcome::Dropped(_))),
            "dropped"
        );
        assert_eq!(c.pending(), self.pending() as u64, "pending");
        assert_eq!(
            c.accepted,
            c.delivered + c.rejected + c.dropped + c.pending()
        );
        assert_eq!(c.invalid, self.invalid, "invalid");
        assert_eq!(c.refused_full, self.refused_full, "refused (queue full)");
        assert_eq!(c.requests, self.requests, "requests");
        assert_eq!(c.filtered + c.opted_out, 0);
        assert_eq!(
            self.client.queue().len(),
            self.pending(),
            "queue holds exactly the pending events"
        );
        assert_eq!(self.client.in_flight(), self.flights.len(), "in flight");
    }

    // ---- log ----

    fn log(
        &mut self,
        device: u8,
        user: u8,
        explicit_time: bool,
        explicit_insert_id: bool,
        invalid: bool,
        pad: u8,
    ) {
        let seq = self.events.len() as u64;
        let mut dev = DEVICES.get(usize::from(device)).copied();
        let usr = USERS.get(usize::from(user)).copied();
        if dev.is_none() && usr.is_none() {
            dev = Some(DEVICES[usize::from(device) % 4]);
        }
        let insert = explicit_insert_id.then(|| format!("ins-{seq}"));
        let time = explicit_time.then_some(1_600_000_000_000 + seq as i64);
        let pad_s = &self.pads[usize::from(pad)];
        let mut ev: Event = Event::new("Pipeline Event").property("__seq", seq);
        if let Some(d) = dev {
            ev = ev.device_id(d);
        }
        if let Some(u) = usr {
            ev = ev.user_id(u);
        }
        if invalid {
            ev = ev.user_id("n/a");
        }
        if let Some(i) = &insert {
            ev = ev.insert_id(i);
        }
        if let Some(t) = time {
            ev = ev.time(t);
        }
        if pad > 0 {
            ev = ev.property("pad", pad_s.as_str());
        }
        // The encoded size, as the client will see it.
        let mut buf = vec![0u8; 1 << 14];
        let len = prepare(&ev, &Rules::default(), &mut Rng::new(1), &mut buf).map(|p| p.json.len());

        // What must happen to the queue first (evict-oldest): oldest queued events go.
        let (slots, arena) = self.client.queue().capacity();
        let result = self
            .client
            .log_event(self.now, ev, &mut (), None, &mut self.sink);
        let reports = self.take_reports();
        let max_event = self.client.max_event_bytes();
        match (result, len) {
            (Err(LogError::Invalid(_)), Err(LogError::Invalid(_))) => {
                assert!(invalid, "a valid event was refused");
                self.invalid += 1;
                assert!(reports.is_empty());
            }
            (r, Ok(len)) => {
                // An event that can never fit is refused as too large, without evicting
                // anything; otherwise evict-oldest evicts (oldest not in flight first) only
                // when that can make room.
                let too_large = len > max_event || len > arena;
                let mut queued: Vec<u64> = self
                    .events
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.pending())
                    .map(|(i, _)| i as u64)
                    .collect();
                let mut used: usize = queued
                    .iter()
                    .map(|s| self.events[*s as usize].json_len)
                    .sum();
                let flying: Vec<u64> = queued
                    .iter()
                    .copied()
                    .filter(|s| self.events[*s as usize].flight.is_some())
                    .collect();
                let flying_bytes: usize = flying
                    .iter()
                    .map(|s| self.events[*s as usize].json_len)
                    .sum();
                let could_fit = flying.len() < slots && flying_bytes + len <= arena;
                let mut evicted = Vec::new();
                let fits = |q: &Vec<u64>, used: usize| q.len() < slots && used + len <= arena;
                while !too_large && !fits(&queued, used) && self.setup.evict && could_fit {
                    let Some(pos) = queued
                        .iter()
                        .position(|s| self.events[*s as usize].flight.is_none())
                    else {
                        break;
                    };
                    let s = queued.remove(pos);
                    used -= self.events[s as usize].json_len;
                    evicted.push((s, Outcome::Dropped(DropReason::QueueFull)));
                }
                if too_large {
                    let bytes = if len > max_event { len } else { 0 };
                    assert_eq!(
                        r,
                        Err(LogError::TooLarge { bytes }),
                        "{len} bytes, limit {max_event}, arena {arena}"
                    );
                    self.invalid += 1;
                } else if fits(&queued, used) {
                    assert_eq!(
                        r,
                        Ok(Logged::Queued(EventId(seq))),
                        "event of {len} bytes not queued"
                    );
                } else {
                    assert_eq!(
                        r,
                        Err(LogError::QueueFull),
                        "full queue ({} of {slots}, {used}+{len} of {arena} bytes)",
                        queued.len()
                    );
                    self.refused_full += 1;
                }
                let accept = !too_large && fits(&queued, used);
                assert_eq!(reports, evicted, "evictions");
                for (s, o) in evicted {
                    self.settle(s, o);
                }
                if accept {
                    self.events.push(Ev {
                        device: dev,
                        user: usr,
                        explicit_time: time,
                        insert_id: insert,
                        logged_at: self.now,
                        outcome: None,
                        flight: None,
                        attempts: 0,
                        cap: u16::MAX,
                        not_before: self.now,
                        json_len: len,
                    });
                }
            }
            (r, l) => panic!("log_event {r:?}, but prepare says {l:?}"),
        }
    }

    // ---- requests ----

    fn envelope(&self) -> (usize, usize) {
        (format!(r#"{{"api_key":"{API_KEY}","events":["#).len(), 2)
    }

    fn next(&mut self, buf_len: usize) -> bool {
        let mut buf = vec![0u8; buf_len];
        let out = self.client.next_request(self.now, &mut buf, &mut self.sink);
        let sent = out.map(|o| (o.flight, o.request.body.to_vec(), o.events, o.request.url));
        let reports = self.take_reports();
        let limit = self.setup.max_bytes.min(buf_len);
        let (head, tail) = self.envelope();
        for &(seq, o) in &reports {
            assert_eq!(
                o,
                Outcome::Dropped(DropReason::TooLarge),
                "next_request gave {seq} {o:?}"
            );
            let ev = &self.events[seq as usize];
            let time = if ev.explicit_time.is_none() && self.clock.is_some() {
                29
            } else {
                0
            };
            assert!(
                head + ev.json_len + time + tail > limit,
                "event {seq} of {} bytes dropped as too large for {limit}",
                ev.json_len
            );
            assert!(ev.flight.is_none());
            self.settle(seq, o);
        }
        let Some((flight, body, n, url)) = sent else {
            return !reports.is_empty();
        };
        self.requests += 1;
        assert_eq!(url, Config::new(API_KEY).server_url);
        assert!(
            self.now >= self.backoff_until,
            "request before the retry backoff ended"
        );
        assert!(
            body.len() <= limit,
            "request of {} bytes over {limit}",
            body.len()
        );
        let json: Json = serde_json::from_slice(&body).expect("request body is JSON");
        assert_eq!(json["api_key"], API_KEY);
        let events = json["events"].as_array().expect("events");
        assert_eq!(events.len(), n);
        assert!(
            n >= 1 && n <= usize::from(self.setup.flush_size),
            "{n} events in a request"
        );
        assert!(
            self.flights.iter().all(|f| f.id != flight),
            "flight id reused while in flight"
        );
        let seqs: Vec<u64> = events.iter().map(seq_of).collect();
        for (i, (e, &seq)) in events.iter().zip(&seqs).enumerate() {
            let ev = self
                .events
                .get(seq as usize)
                .unwrap_or_else(|| panic!("unknown event {seq}"));
            assert!(
                ev.pending(),
                "event {seq} sent after its outcome {:?}",
                ev.outcome
            );
            assert!(ev.flight.is_none(), "event {seq} sent twice at once");
            assert!(
                usize::from(ev.cap) >= n,
                "event {seq} in a request of {n}, split to {}",
                ev.cap
            );
            assert!(
                self.now >= ev.not_before,
                "event {seq} sent before its retry time"
            );
            for key in [ev.device.map(|d| ('d', d)), ev.user.map(|u| ('u', u))]
                .into_iter()
                .flatten()
            {
                if let Some(until) = self.pauses.get(&key) {
                    assert!(self.now >= *until, "{key:?} sent while paused");
                }
            }
            let ins = e["insert_id"].as_str().expect("insert_id").to_owned();
            let ev = &mut self.events[seq as usize];
            assert_eq!(
                ev.insert_id.get_or_insert_with(|| ins.clone()),
                &ins,
                "insert_id changed on resend"
            );
            let want_time = ev
                .explicit_time
                .or(self.clock.map(|c| c + ev.logged_at.as_millis() as i64));
            assert_eq!(
                e.get("time").and_then(Json::as_i64),
                want_time,
                "time of event {seq}"
            );
            // Per-device order: no earlier pending event of the key outside this request.
            let key = ev.order_key();
            for (j, other) in self.events.iter().enumerate().take(seq as usize) {
                if other.pending() && other.order_key() == key {
                    assert!(
                        seqs[..i].contains(&(j as u64)),
                        "event {seq} of {key:?} overtook {j}"
                    );
                }
            }
        }
        for &seq in &seqs {
            self.events[seq as usize].flight = Some(flight);
        }
        self.flights.push(Flight { id: flight, seqs });
        true
    }

    /// Go to the next wake-up; build a request there. A wake-up that yields nothing must
    /// be followed by a later one (no hot loop).
    fn wake(&mut self) {
        if self.client.in_flight() == F {
            assert_eq!(self.client.next_wakeup(self.now), None);
            return;
        }
        let t = self.client.next_wakeup(self.now);
        if self.flights.is_empty() && self.pending() > 0 {
            assert!(
                t.is_some(),
                "pending events, nothing in flight, and no wake-up"
            );
        }
        let Some(t) = t else { return };
        self.now = self.now.max(t);
        if !self.next(1 << 16) {
            let later = self.client.next_wakeup(self.now);
            assert!(
                later.is_none_or(|l| l > self.now),
                "hot loop: wake-up {later:?} at {:?} sends nothing",
                self.now
            );
        }
    }

    // ---- responses ----

    fn respond(&mut self, which: u8, reply: Reply) {
        if self.flights.is_empty() {
            return;
        }
        let f = self.flights.remove(usize::from(which) % self.flights.len());
        let n = f.seqs.len();
        let now_ms = self.now.as_millis() as i64;
        let mut date_ms = None;
        let mut retry_after = None;
        let (status, body): (u16, String) = match reply {
            Reply::Ok { upload_time, date } => {
                let mut b = json!({"code":200,"events_ingested":n,"payload_size_bytes":100});
                if upload_time {
                    b["server_upload_time"] = json!(SERVER_EPOCH_MS + now_ms);
                }
                if date {
                    date_ms = Some((SERVER_EPOCH_MS + 5_000 + now_ms) as u64);
                }
                (200, b.to_string())
            }
            Reply::OkGarbage => (200, "<html>ok</html>".into()),
            Reply::BadIndices(mask) => {
                let ix: Vec<usize> = (0..8).filter(|i| mask & (1 << i) != 0).collect();
                (400, json!({"code":400,"error":"Invalid field values on some events","events_with_invalid_fields":{"time":ix}}).to_string())
            }
            Reply::BadOutOfRange(k) => (400, json!({"code":400,"events_with_missing_fields":{"event_type":[n + usize::from(k)]}}).to_string()),
            Reply::BadUnlisted => (400, "<html>Bad Request</html>".into()),
            Reply::MissingField => (400, r#"{"code":400,"error":"Request missing required field","missing_field":"api_key"}"#.into()),
            Reply::InvalidKey => (400, r#"{"code":400,"error":"Invalid API key: fuzz-key"}"#.into()),
            Reply::Silenced(mask) => {
                let d: Vec<&str> = (0..4).filter(|i| mask & (1 << i) != 0).map(|i| DEVICES[i]).collect();
                (400, json!({"code":400,"error":"silenced","silenced_devices":d}).to_string())
            }
            Reply::Forbidden => (403, r#"{"code":403,"error":"Forbidden"}"#.into()),
            Reply::TooLarge => (413, r#"{"code":413,"error":"Payload too large"}"#.into()),
            Reply::Throttled { devices, quota_devices, users, quota_users, events, retry_after: ra } => {
                let names = |mask: u8, pool: &[&'static str]| -> serde_json::Map<String, Json> {
                    pool.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, n)| ((*n).to_owned(), json!(31))).collect()
                };
                let ev: Vec<usize> = (0..4).filter(|i| events & (1 << i) != 0).collect();
                retry_after = ra.map(u32::from);
                (429, json!({"code":429,"error":"Too many requests for some devices and users","eps_threshold":30,
                    "throttled_devices":names(devices, &DEVICES),"throttled_users":names(users, &USERS),
                    "throttled_events":ev,"exceeded_daily_quota_devices":names(quota_devices, &DEVICES),
                    "exceeded_daily_quota_users":names(quota_users, &USERS)}).to_string())
            }
            Reply::ServerError { status, retry_after: ra } => {
                retry_after = ra.map(u32::from);
                (status, format!("<html>{status}</html>"))
            }
            Reply::Transport(_) => (0, String::new()),
        };
        let result = match reply {
            Reply::Transport(e) => Err(e),
            _ => Ok(Response {
                status,
                retry_after_secs: retry_after,
                date_ms,
                body: body.as_bytes(),
                truncated: false,
            }),
        };
        self.client
            .on_response(self.now, f.id, result, &mut self.sink);
        let mut reports = self.take_reports();
        reports.sort_by_key(|r| r.0);
        let expected = self.expect(&f, reply, retry_after);
        let mut want: Vec<(u64, Outcome)> = expected.into_iter().flatten().collect();
        want.sort_by_key(|r| r.0);
        assert_eq!(
            reports, want,
            "outcomes after {reply:?} for batch {:?}",
            f.seqs
        );
        for (s, o) in reports {
            self.settle(s, o);
        }
        for s in &f.seqs {
            self.events[*s as usize].flight = None;
        }
    }

    /// The outcome each event of the flight must get (`None`: back to the queue), and the
    /// model's new waits, caps, pauses, backoff and clock.
    fn expect(
        &mut self,
        f: &Flight,
        reply: Reply,
        retry_after: Option<u32>,
    ) -> Vec<Option<(u64, Outcome)>> {
        let n = f.seqs.len();
        let now = self.now;
        let all = |o: Outcome| f.seqs.iter().map(|s| Some((*s, o))).collect::<Vec<_>>();
        let bisect = |h: &mut Self, alone: Outcome| {
            if n == 1 {
                return vec![Some((f.seqs[0], alone))];
            }
            for s in &f.seqs {
                let e = &mut h.events[*s as usize];
                e.cap = e.cap.min((n / 2) as u16);
            }
            vec![None; n]
        };
        match reply {
            Reply::Ok { upload_time, date } => {
                // The client learns wall-clock time from the body, else the Date header.
                if !self.setup.clock_known {
                    if upload_time {
                        self.clock = Some(SERVER_EPOCH_MS);
                    } else if date {
                        self.clock = Some(SERVER_EPOCH_MS + 5_000);
                    }
                }
                all(Outcome::Delivered)
            }
            Reply::OkGarbage => all(Outcome::Delivered),
            Reply::MissingField => all(Outcome::Rejected(RejectReason::MissingRequestField)),
            Reply::InvalidKey => all(Outcome::Rejected(RejectReason::InvalidApiKey)),
            Reply::Forbidden => all(Outcome::Rejected(RejectReason::Forbidden)),
            Reply::BadIndices(mask) if (0..n.min(8)).any(|i| mask & (1 << i) != 0) => f
                .seqs
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    (i < 8 && mask & (1 << i) != 0)
                        .then_some((*s, Outcome::Rejected(RejectReason::InvalidFields)))
                })
                .collect(),
            Reply::Silenced(mask) if f.seqs.iter().any(|s| self.silenced(*s, mask)) => f
                .seqs
                .iter()
                .map(|s| {
                    self.silenced(*s, mask)
                        .then_some((*s, Outcome::Rejected(RejectReason::Silenced)))
                })
                .collect(),
            Reply::BadIndices(_)
            | Reply::BadOutOfRange(_)
            | Reply::BadUnlisted
            | Reply::Silenced(_) => bisect(self, Outcome::Rejected(RejectReason::Invalid)),
            Reply::TooLarge => bisect(self, Outcome::Dropped(DropReason::TooLarge)),
            Reply::Throttled {
                devices,
                quota_devices,
                users,
                quota_users,
                events,
                ..
            } => {
                let hint = retry_after.map(|s| Duration::from_secs(u64::from(s)));
                let until = now + hint.unwrap_or(THROTTLE_PAUSE).max(BASE);
                let has = |mask: u8, pool: &[&'static str], name: Option<&'static str>| {
                    name.is_some_and(|n| {
                        pool.iter()
                            .position(|p| *p == n)
                            .is_some_and(|i| mask & (1 << i) != 0)
                    })
                };
                let quota = |e: &Ev| {
                    has(quota_devices, &DEVICES, e.device) || has(quota_users, &USERS, e.user)
                };
                let throttled = |e: &Ev, i: usize| {
                    has(devices, &DEVICES, e.device)
                        || has(users, &USERS, e.user)
                        || (i < 4 && events & (1 << i) != 0)
                };
                let any_known = f.seqs.iter().enumerate().any(|(i, s)| {
                    let e = &self.events[*s as usize];
                    quota(e) || throttled(e, i)
                });
                if !any_known {
                    // Names nobody in the batch: a counted retry after the pause.
                    return self.retry(f, Some(until - now));
                }
                for (i, d) in DEVICES.iter().enumerate() {
                    if devices & (1 << i) != 0 {
                        self.pauses.insert(('d', d), until);
                    }
                }
                for (i, u) in USERS.iter().enumerate() {
                    if users & (1 << i) != 0 {
                        self.pauses.insert(('u', u), until);
                    }
                }
                let mut out = Vec::new();
                for (i, s) in f.seqs.iter().enumerate() {
                    let e = &self.events[*s as usize];
                    if quota(e) {
                        out.push(Some((*s, Outcome::Dropped(DropReason::DailyQuota))));
                    } else {
                        if throttled(e, i) {
                            self.events[*s as usize].not_before = until;
                        }
                        out.push(None);
                    }
                }
                out
            }
            Reply::ServerError { .. } | Reply::Transport(_) => {
                if reply == Reply::Transport(TransportError::InvalidUrl) {
                    return all(Outcome::Dropped(DropReason::InvalidUrl));
                }
                let hint = retry_after.map(|s| Duration::from_secs(u64::from(s)));
                self.retry(f, hint)
            }
        }
    }

    /// A retryable failure: one more attempt for each event (dropped past the policy's
    /// limit), each waiting at least the policy's minimum or the server's hint; every
    /// request waits at least the minimum.
    fn retry(&mut self, f: &Flight, hint: Option<Duration>) -> Vec<Option<(u64, Outcome)>> {
        let now = self.now;
        self.backoff_until = now + BASE;
        let wait = hint.map_or(BASE, |h| h.min(MAX_RETRY_AFTER).max(BASE));
        let mut out = Vec::new();
        for s in &f.seqs {
            let e = &mut self.events[*s as usize];
            e.attempts += 1;
            if e.attempts > self.setup.max_attempts {
                out.push(Some((*s, Outcome::Dropped(DropReason::RetriesExhausted))));
            } else {
                e.not_before = now + wait;
                out.push(None);
            }
        }
        out
    }

    fn silenced(&self, seq: u64, mask: u8) -> bool {
        self.events[seq as usize]
            .device
            .and_then(|d| DEVICES.iter().position(|p| *p == d))
            .is_some_and(|i| mask & (1 << i) != 0)
    }

    // ---- the run ----

    fn run(&mut self, ops: &[Op]) {
        for op in ops {
            match *op {
                Op::Log {
                    device,
                    user,
                    explicit_time,
                    explicit_insert_id,
                    invalid,
                    pad,
                } => self.log(
                    device,
                    user,
                    explicit_time,
                    explicit_insert_id,
                    invalid,
                    pad,
                ),
                Op::Next { buf } => {
                    let len = if buf == 0 {
                        1 << 16
                    } else {
                        200 + 24 * usize::from(buf)
                    };
                    self.next(len);
                }
                Op::Respond { which, reply } => self.respond(which, reply),
                Op::Advance { ms4 } => self.now += Duration::from_millis(4 * u64::from(ms4)),
                Op::Flush => {
                    self.client.flush();
                }
                Op::Wake => self.wake(),
            }
            self.check_counters();
        }
        // Drain: a server that accepts everything; every event must end.
        self.client.flush();
        for _ in 0..10_000 {
            while !self.flights.is_empty() {
                self.respond(
                    0,
                    Reply::Ok {
                        upload_time: false,
                        date: false,
                    },
                );
            }
            self.check_counters();
            if self.pending() == 0 {
                break;
            }
            self.wake();
            self.check_counters();
        }
        assert_eq!(self.pending(), 0, "events never drained");
        assert!(self.client.queue().is_empty());
    }
}

/// Readable scripts for the seed corpus.
pub fn seed_scripts() -> Vec<(&'static str, Setup, Vec<Op>)> {
    let setup = Setup {
        flush_size: 4,
        max_bytes: 3996,
        parallel: false,
        evict: false,
        max_attempts: 2,
        clock_known: false,
        slots: 16,
        arena: 8192,
    };
    let log = |device: u8, user: u8| Op::Log {
        device,
        user,
        explicit_time: false,
        explicit_insert_id: false,
        invalid: false,
        pad: 0,
    };
    let four = vec![log(0, 0), log(1, 1), log(0, 2), log(2, 3)];
    let then = |reply: Reply| {
        let mut v = four.clone();
        v.extend([
            Op::Flush,
            Op::Next { buf: 0 },
            Op::Respond { which: 0, reply },
            Op::Wake,
            Op::Advance { ms4: 8000 },
            Op::Wake,
        ]);
        v
    };
    vec![
        (
            "accept",
            setup,
            then(Reply::Ok {
                upload_time: true,
                date: false,
            }),
        ),
        ("reject_indices", setup, then(Reply::BadIndices(0b101))),
        ("bisect", setup, then(Reply::BadUnlisted)),
        ("too_large", setup, then(Reply::TooLarge)),
        ("missing_field", setup, then(Reply::MissingField)),
        (
            "throttle",
            setup,
            then(Reply::Throttled {
                devices: 1,
                quota_devices: 4,
                users: 0,
                quota_users: 0,
                events: 0,
                retry_after: Some(2),
            }),
        ),
        (
            "server_error",
            setup,
            then(Reply::ServerError {
                status: 503,
                retry_after: None,
            }),
        ),
        (
            "transport",
            setup,
            then(Reply::Transport(TransportError::Timeout)),
        ),
        ("silenced", setup, then(Reply::Silenced(2))),
        (
            "parallel_evict",
            Setup {
                parallel: true,
                evict: true,
                slots: 5,
                flush_size: 2,
                ..setup
            },
            {
                let mut v = four.clone();
                v.extend([Op::Next { buf: 0 }, Op::Next { buf: 0 }]);
                v.extend(four.clone());
                v.extend([
                    Op::Respond {
                        which: 1,
                        reply: Reply::ServerError {
                            status: 500,
                            retry_after: Some(1),
                        },
                    },
                    Op::Advance { ms4: 300 },
                    Op::Wake,
                ]);
                v
            },
        ),
        (
            "small_limits",
            Setup {
                max_bytes: 700,
                clock_known: true,
                ..setup
            },
            vec![
                Op::Log {
                    device: 0,
                    user: 3,
                    explicit_time: true,
                    explicit_insert_id: true,
                    invalid: false,
                    pad: 60,
                },
                Op::Log {
                    device: 0,
                    user: 3,
                    explicit_time: false,
                    explicit_insert_id: false,
                    invalid: false,
                    pad: 200,
                },
                Op::Log {
                    device: 1,
                    user: 0,
                    explicit_time: false,
                    explicit_insert_id: false,
                    invalid: true,
                    pad: 0,
                },
                Op::Flush,
                Op::Next { buf: 10 },
                Op::Wake,
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_pass() {
        for (name, data) in crate::seeds("pipeline_model") {
            eprintln!("{name}");
            check(&data);
        }
    }

    #[test]
    fn scripts_round_trip_through_the_byte_code() {
        for (name, setup, ops) in seed_scripts() {
            assert_eq!(decode(&encode(&setup, &ops)), (setup, ops), "{name}");
        }
    }

    #[test]
    fn committed_seeds_are_the_scripts() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/pipeline_model");
        for (name, setup, ops) in seed_scripts() {
            let path = dir.join(name);
            let bytes = encode(&setup, &ops);
            if std::env::var_os("FUZZ_WRITE_SEEDS").is_some() {
                std::fs::write(&path, &bytes).unwrap();
            }
            assert_eq!(
                std::fs::read(&path).ok(),
                Some(bytes),
                "{name}: regenerate with FUZZ_WRITE_SEEDS=1 cargo test"
            );
        }
    }

    #[test]
    fn pools_hash_apart() {
        use amplitude_core::response::key_hash;
        let mut keys: Vec<u32> = DEVICES
            .iter()
            .map(|d| key_hash(b"d", d))
            .chain(USERS.iter().map(|u| key_hash(b"u", u)))
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), DEVICES.len() + USERS.len());
    }
}
