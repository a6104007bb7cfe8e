//! Property tests of DESIGN.md's invariants: arbitrary event sequences × arbitrary server
//! behaviour schedules, in virtual time, against the sans-IO client.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use amplitude_core::client::Client;
use amplitude_core::config::Config;
use amplitude_core::event::Target;
use amplitude_core::outcome::{DropReason, Outcome, OutcomeSink, RejectReason, Report};
use amplitude_core::queue::{RamQueue, Slot};
use amplitude_core::retry::ExponentialBackoff;
use amplitude_core::transport::Response;
use amplitude_core::{Logged, Value};
use amplitude_mock::Reply;
use amplitude_mock::strategies::{
    OwnedEvent, ServerAction, owned_event, reply_for, schedule, valid_event,
};
use embassy_time::{Duration, Instant};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

type BoxQueue = RamQueue<Box<[u8]>, Box<[Slot]>>;

#[derive(Debug, Clone)]
enum Op {
    Log(Box<OwnedEvent>),
    Advance(u32),
    Flush,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        8 => valid_event(6).prop_map(|e| Op::Log(Box::new(e))),
        1 => owned_event().prop_map(|e| Op::Log(Box::new(e))),
        3 => (0u32..40_000).prop_map(Op::Advance),
        1 => Just(Op::Flush),
    ];
    prop::collection::vec(op, 1..60)
}

#[derive(Default)]
struct Sink {
    /// seq → outcomes (must end up exactly one).
    outcomes: HashMap<u64, Vec<Outcome>>,
}

fn seq_of(json: &serde_json::Value) -> u64 {
    json["event_properties"]["__seq"]
        .as_u64()
        .expect("harness tags every event")
}

impl OutcomeSink for Sink {
    fn on_outcome(&mut self, r: &Report<'_>) {
        let json: serde_json::Value = serde_json::from_slice(r.json).expect("valid JSON");
        self.outcomes
            .entry(seq_of(&json))
            .or_default()
            .push(r.outcome);
    }
}

struct Harness<const F: usize> {
    client: Client<'static, BoxQueue, ExponentialBackoff, F>,
    sink: Sink,
    schedule: VecDeque<ServerAction>,
    now: Instant,
    /// seq → order key (device, else user)
    key_of: HashMap<u64, String>,
    accepted: Vec<u64>,
    insert_ids: HashMap<u64, String>,
    delivered: HashSet<u64>,
    paused: Vec<(String, Instant)>,
    retry_wait_until: Instant,
    requests: usize,
    limit_events: usize,
    limit_bytes: usize,
}

const PAUSE: Duration = Duration::from_secs(30);

impl<const F: usize> Harness<F> {
    fn new(flush_size: u16, max_bytes: usize, sched: Vec<ServerAction>) -> Self {
        let config = Config::new("KEY")
            .flush_queue_size(flush_size)
            .max_request_bytes(max_bytes)
            .throttle_pause(PAUSE);
        let q = RamQueue::new(
            vec![0u8; 64 * 1024].into_boxed_slice(),
            vec![Slot::EMPTY; 256].into_boxed_slice(),
        );
        let client = Client::with_policy(
            config,
            q,
            ExponentialBackoff {
                max_attempts: 6,
                ..Default::default()
            },
            9,
        );
        Self {
            client,
            sink: Sink::default(),
            schedule: sched.into(),
            now: Instant::from_ticks(0),
            key_of: HashMap::new(),
            accepted: Vec::new(),
            insert_ids: HashMap::new(),
            delivered: HashSet::new(),
            paused: Vec::new(),
            retry_wait_until: Instant::from_ticks(0),
            requests: 0,
            limit_events: usize::from(flush_size),
            limit_bytes: max_bytes,
        }
    }

    fn pending(&self) -> Vec<u64> {
        self.accepted
            .iter()
            .copied()
            .filter(|s| !self.sink.outcomes.contains_key(s))
            .collect()
    }

    fn check_counters(&self) {
        let c = self.client.counters();
        assert_eq!(c.accepted, self.accepted.len() as u64);
        assert_eq!(
            c.accepted,
            c.delivered + c.rejected + c.dropped + c.pending()
        );
        assert_eq!(
            c.pending(),
            self.pending().len() as u64,
            "counters match reported outcomes"
        );
        for (seq, o) in &self.sink.outcomes {
            assert_eq!(o.len(), 1, "event {seq} got {o:?}");
        }
    }

    fn log(&mut self, e: &OwnedEvent) {
        let seq =
            self.accepted.len() as u64 + 1_000_000 * (self.key_of.len() as u64 == u64::MAX) as u64;
        let now = self.now;
        let sink = &mut self.sink;
        let client = &mut self.client;
        let r = e.with_event(|mut ev| {
            ev.push(Target::Event, "__seq", Value::UInt(seq));
            client.log_event(now, ev, &mut (), None, sink)
        });
        if let Ok(Logged::Queued(_)) = r {
            self.accepted.push(seq);
            let key = e.device_id.clone().or_else(|| e.user_id.clone()).unwrap();
            self.key_of.insert(seq, key);
        }
    }

    /// Send what is due, answer per schedule, until nothing is due now.
    fn pump(&mut self) {
        loop {
            let mut flights = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            for _ in 0..F {
                let Some(out) = self.client.next_request(self.now, &mut buf, &mut self.sink) else {
                    break;
                };
                let body = out.request.body.to_vec();
                let flight = out.flight;
                self.check_request(&body);
                flights.push((flight, body));
            }
            if flights.is_empty() {
                return;
            }
            // Answer in reverse order to stress concurrency.
            for (flight, body) in flights.into_iter().rev() {
                let action = self.schedule.pop_front().unwrap_or(ServerAction::Accept);
                let reply = reply_for(&action, &body);
                self.apply(&action, &reply, &body);
                let mut rbuf = vec![0u8; 4096];
                let result = amplitude_mock::MockTransport::materialize(&reply, &mut rbuf);
                let before: HashSet<u64> = self.sink.outcomes.keys().copied().collect();
                self.client.on_response(
                    self.now,
                    flight,
                    result.map(|r| Response { ..r }),
                    &mut self.sink,
                );
                self.check_verdict(&action, &body, &before);
                self.check_counters();
            }
        }
    }

    fn check_request(&mut self, raw: &[u8]) {
        self.requests += 1;
        assert!(
            raw.len() <= self.limit_bytes,
            "request of {} bytes over {}",
            raw.len(),
            self.limit_bytes
        );
        assert!(
            self.now >= self.retry_wait_until,
            "a retry came before the policy's minimum wait"
        );
        let body: serde_json::Value = serde_json::from_slice(raw).expect("valid JSON body");
        let events = body["events"].as_array().unwrap();
        assert!(
            !events.is_empty() && events.len() <= self.limit_events,
            "{} events",
            events.len()
        );
        let pending: HashSet<u64> = self.pending().into_iter().collect();
        let mut seen_keys: HashMap<&str, u64> = HashMap::new();
        for e in events {
            let seq = seq_of(e);
            assert!(pending.contains(&seq), "event {seq} sent but not pending");
            assert!(!self.delivered.contains(&seq), "resent after a 200");
            let ins = e["insert_id"].as_str().unwrap().to_owned();
            assert_eq!(
                self.insert_ids.entry(seq).or_insert_with(|| ins.clone()),
                &ins,
                "insert_id changed on resend"
            );
            let key = self.key_of[&seq].as_str();
            // Per-device order: within the request, and no earlier event of the key pending.
            if let Some(prev) = seen_keys.insert(key, seq) {
                assert!(prev < seq, "order within request");
            } else {
                for &p in &pending {
                    assert!(
                        !(p < seq
                            && self.key_of[&p] == key
                            && !events.iter().any(|x| seq_of(x) == p)),
                        "event {seq} of {key} overtook pending {p}"
                    );
                }
            }
            for (k, until) in &self.paused {
                assert!(!(k == key && self.now < *until), "{key} sent while paused");
            }
        }
    }

    fn apply(&mut self, action: &ServerAction, reply: &Reply, raw: &[u8]) {
        let body: serde_json::Value = serde_json::from_slice(raw).unwrap();
        let events = body["events"].as_array().unwrap();
        match (action, reply) {
            (ServerAction::Throttle(_), Reply::Status { body: rb, .. }) => {
                let rj: serde_json::Value = serde_json::from_slice(rb).unwrap();
                for d in rj["throttled_devices"].as_object().unwrap().keys() {
                    self.paused.push((d.clone(), self.now + PAUSE));
                }
            }
            (
                ServerAction::ServerError(_)
                | ServerAction::RequestTimeout
                | ServerAction::Transport(_),
                _,
            ) => {
                self.retry_wait_until = self.now + Duration::from_millis(250);
            }
            (_, Reply::Status { status: 200, .. }) => {
                for e in events {
                    self.delivered.insert(seq_of(e));
                }
            }
            _ => {}
        }
    }

    fn check_verdict(&self, action: &ServerAction, raw: &[u8], before: &HashSet<u64>) {
        let body: serde_json::Value = serde_json::from_slice(raw).unwrap();
        let events: Vec<u64> = body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(seq_of)
            .collect();
        let n = events.len();
        let got = |s: u64| {
            self.sink
                .outcomes
                .get(&s)
                .filter(|_| !before.contains(&s))
                .map(|o| o[0])
        };
        match action {
            ServerAction::Accept | ServerAction::AcceptGarbage => {
                assert!(events.iter().all(|s| got(*s) == Some(Outcome::Delivered)))
            }
            ServerAction::TooLargeOver(k) if n <= usize::from(*k) => {
                assert!(events.iter().all(|s| got(*s) == Some(Outcome::Delivered)))
            }
            ServerAction::MissingField => {
                assert!(
                    events
                        .iter()
                        .all(|s| got(*s)
                            == Some(Outcome::Rejected(RejectReason::MissingRequestField)))
                )
            }
            ServerAction::RejectIndices(ix) => {
                let bad: HashSet<usize> = ix.iter().map(|i| usize::from(*i) % n).collect();
                for (i, s) in events.iter().enumerate() {
                    let want = bad
                        .contains(&i)
                        .then_some(Outcome::Rejected(RejectReason::InvalidFields));
                    assert_eq!(got(*s), want, "index {i}");
                }
            }
            ServerAction::RejectUnlisted | ServerAction::TooLargeOver(_) => {
                let alone = match action {
                    ServerAction::RejectUnlisted => Outcome::Rejected(RejectReason::Invalid),
                    _ => Outcome::Dropped(DropReason::TooLarge),
                };
                for s in &events {
                    assert_eq!(got(*s), (n == 1).then_some(alone));
                }
            }
            ServerAction::Throttle(_) => assert!(events.iter().all(|s| got(*s).is_none())),
            ServerAction::DailyQuota(_) => {
                for s in &events {
                    assert!(matches!(
                        got(*s),
                        None | Some(Outcome::Dropped(DropReason::DailyQuota))
                    ));
                }
            }
            ServerAction::ServerError(_)
            | ServerAction::RequestTimeout
            | ServerAction::Transport(_) => {
                for s in &events {
                    assert!(matches!(
                        got(*s),
                        None | Some(Outcome::Dropped(DropReason::RetriesExhausted))
                    ));
                }
            }
        }
    }

    fn run(&mut self, ops: &[Op]) {
        for op in ops {
            match op {
                Op::Log(e) => self.log(e),
                Op::Advance(ms) => self.now += Duration::from_millis(u64::from(*ms)),
                Op::Flush => {
                    self.client.flush();
                }
            }
            self.pump();
            self.check_counters();
        }
        // Drain: everything must end, in bounded virtual time, without a hot loop.
        self.client.flush();
        let mut wakes = 0;
        loop {
            self.pump();
            if self.pending().is_empty() {
                break;
            }
            let next = self
                .client
                .next_wakeup(self.now)
                .unwrap_or_else(|| panic!("pending {:?} but no wakeup", self.pending()));
            assert!(
                next > self.now || self.client.in_flight() > 0,
                "wakeup in the past with nothing due"
            );
            self.now = next.max(self.now);
            wakes += 1;
            assert!(wakes < 10_000, "no progress");
        }
        self.check_counters();
        assert_eq!(self.sink.outcomes.len(), self.accepted.len());
        assert!(
            self.requests <= 20 * self.accepted.len() + 200,
            "{} requests for {} events",
            self.requests,
            self.accepted.len()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_for_arbitrary_events_and_faults(
        ops in ops(),
        sched in schedule(40),
        flush_size in 1u16..8,
        max_bytes in 700usize..4000,
    ) {
        let mut h = Harness::<1>::new(flush_size, max_bytes, sched);
        h.run(&ops);
    }

    #[test]
    fn invariants_hold_with_requests_in_parallel(
        ops in ops(),
        sched in schedule(40),
        flush_size in 1u16..8,
    ) {
        let mut h = Harness::<3>::new(flush_size, 4000, sched);
        h.run(&ops);
    }
}

/// Only throttled keys pause: right after a 429, everyone else in that batch goes again
/// at once, and the throttled device waits its pause.
#[test]
fn throttle_pauses_only_the_named_device() {
    let mut h = Harness::<1>::new(10, 100_000, vec![ServerAction::Throttle(vec![0])]);
    let evs: Vec<OwnedEvent> = (0..6)
        .map(|i| {
            let mut e = valid_event(1)
                .new_tree(&mut proptest::test_runner::TestRunner::deterministic())
                .unwrap()
                .current();
            e.device_id = Some(format!("device-{}", i % 3));
            e
        })
        .collect();
    for e in &evs {
        h.log(e);
    }
    h.client.flush();
    h.pump();
    let mut by_key: BTreeMap<String, Vec<Outcome>> = BTreeMap::new();
    for (seq, o) in &h.sink.outcomes {
        by_key.entry(h.key_of[seq].clone()).or_default().push(o[0]);
    }
    assert!(!by_key.contains_key("device-0"), "throttled device waits");
    assert_eq!(by_key["device-1"].len(), 2);
    assert_eq!(by_key["device-2"].len(), 2);
    h.now += PAUSE;
    h.pump();
    assert!(h.pending().is_empty());
}
