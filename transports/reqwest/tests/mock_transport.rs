//! The std client against the scripted `MockTransport`: outcomes, middleware, flush,
//! shutdown, queue policies, opt-out, threads, and blocking calls in a runtime.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use amplitude_core::transport::TransportError;
use amplitude_mock::{MockTransport, Reply, count_events};
use amplitude_reqwest::{
    BlockingError, Client, DropReason, Event, EventId, LogError, Options, Outcome, QueueFullPolicy,
    RejectReason, Target,
};
use common::{Recorder, fast_options, plan};

fn client(options: Options, transport: &MockTransport) -> Client {
    Client::with_transport("test-key", options, transport.clone()).expect("client starts")
}

fn ev(user: &str) -> Event<'_> {
    Event::new("Button Clicked").user_id(user)
}

#[test]
fn flush_delivers_everything_and_reports_each_outcome_once() {
    let rec = Recorder::default();
    let t = MockTransport::new();
    let c = client(rec.options(fast_options().flush_queue_size(25)), &t);
    let planned = plan("flush", &[30, 30, 30, 30]);
    common::log_all(&c, &planned);
    let report = c.flush_blocking(Duration::from_secs(10)).unwrap();
    assert!(report.is_settled(), "{report}");
    assert!(!report.timed_out);
    let counters = c.counters();
    assert_eq!(counters.delivered, 120);
    assert_eq!(counters.pending(), 0);
    assert_eq!(rec.assert_unique(), 120);
    let sent: usize = t.requests().iter().map(|r| count_events(&r.body)).sum();
    assert_eq!(sent, 120);
    assert!(
        t.requests()
            .iter()
            .all(|r| count_events(&r.body) <= 25 && r.body.starts_with(br#"{"api_key":"test-key""#))
    );
    // The events carry a wall-clock time (the std client knows it from the start).
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let body: serde_json::Value = serde_json::from_slice(&t.requests()[0].body).unwrap();
    let t0 = body["events"][0]["time"].as_i64().expect("time rendered");
    assert!((now_ms - t0).abs() < 60_000, "time {t0} vs now {now_ms}");
}

#[test]
fn log_event_returns_increasing_ids_and_flush_covers_only_earlier_events() {
    let t = MockTransport::new();
    let c = client(fast_options(), &t);
    let a = c.log_event(ev("user-0001")).unwrap();
    let b = c.log_event(ev("user-0002")).unwrap();
    assert!(b > a);
    let r = c.flush_blocking(Duration::from_secs(5)).unwrap();
    assert_eq!((r.delivered, r.pending), (2, 0));
    // Nothing new: an empty flush settles at once.
    let r = c.flush_blocking(Duration::from_secs(5)).unwrap();
    assert_eq!(r.total(), 0);
}

#[test]
fn middleware_filters_modifies_and_sees_extra_data() {
    let t = MockTransport::new();
    let c = client(fast_options(), &t);
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    c.add_event_middleware(move |payload, next| {
        s.fetch_add(1, Ordering::Relaxed);
        next.run(payload);
    });
    c.add_event_middleware(|payload, next| {
        if payload.event.event_type == "Debug" {
            return;
        }
        let tenant = payload
            .extra
            .and_then(|x| x.downcast_ref::<&str>())
            .copied()
            .unwrap_or("none");
        payload.event.push(Target::Event, "tenant", tenant.into());
        next.run(payload);
    });
    assert_eq!(
        c.log_event(Event::new("Debug").user_id("user-0001")),
        Err(LogError::Filtered)
    );
    c.log_event_with(ev("user-0001"), &"acme").unwrap();
    c.log_event(ev("user-0002")).unwrap();
    c.flush_blocking(Duration::from_secs(5)).unwrap();
    assert_eq!(seen.load(Ordering::Relaxed), 3);
    let counters = c.counters();
    assert_eq!((counters.filtered, counters.accepted), (1, 2));
    let body = String::from_utf8(t.requests().concat_bodies()).unwrap();
    assert!(body.contains(r#""tenant":"acme""#), "{body}");
    assert!(body.contains(r#""tenant":"none""#), "{body}");
    assert!(!body.contains("Debug"));
}

trait Bodies {
    fn concat_bodies(&self) -> Vec<u8>;
}

impl Bodies for Vec<amplitude_mock::Recorded> {
    fn concat_bodies(&self) -> Vec<u8> {
        self.iter().flat_map(|r| r.body.clone()).collect()
    }
}

#[test]
fn logging_to_the_same_client_from_its_middleware_is_refused_not_deadlocked() {
    let t = MockTransport::new();
    let c = client(fast_options(), &t);
    let inner = c.clone();
    let nested = Arc::new(std::sync::Mutex::new(None));
    let n = nested.clone();
    c.add_event_middleware(move |payload, next| {
        *n.lock().unwrap() = Some(inner.log_event(Event::new("Nested").user_id("user-0009")));
        next.run(payload);
    });
    c.log_event(ev("user-0001")).unwrap();
    assert_eq!(*nested.lock().unwrap(), Some(Err(LogError::Reentrant)));
}

#[test]
fn invalid_events_are_refused_with_the_field_and_counted() {
    let t = MockTransport::new();
    let c = client(fast_options(), &t);
    let err = c.log_event(Event::new("Login").user_id("abc")).unwrap_err();
    assert!(matches!(err, LogError::Invalid(_)));
    assert_eq!(
        err.to_string(),
        "invalid event: user_id is shorter than 5 characters"
    );
    assert!(matches!(
        c.log_event(Event::new("Login")),
        Err(LogError::Invalid(_))
    ));
    assert_eq!(c.counters().invalid, 2);
    assert_eq!(c.counters().accepted, 0);
}

#[test]
fn server_rejections_are_reported_with_their_reason() {
    let rec = Recorder::default();
    let t = MockTransport::new();
    t.push(Reply::status(
        400,
        r#"{"code":400,"error":"Request missing required field","events_with_invalid_fields":{"time":[1]}}"#,
    ));
    let c = client(rec.options(fast_options()), &t);
    for u in ["user-0001", "user-0002", "user-0003"] {
        c.log_event(ev(u)).unwrap();
    }
    let r = c.flush_blocking(Duration::from_secs(5)).unwrap();
    assert_eq!((r.delivered, r.rejected, r.pending), (2, 1, 0), "{r}");
    let rejected: Vec<_> = rec
        .all()
        .into_iter()
        .filter(|r| r.outcome != Outcome::Delivered)
        .collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].id, EventId(1));
    assert_eq!(
        rejected[0].outcome,
        Outcome::Rejected(RejectReason::InvalidFields)
    );
    assert_eq!(rejected[0].json["user_id"], "user-0002");
}

#[test]
fn an_invalid_api_key_rejects_every_event_without_retrying() {
    let rec = Recorder::default();
    let t = MockTransport::new();
    t.set_default(Reply::status(
        400,
        r#"{"code":400,"error":"Invalid API key: test-key"}"#,
    ));
    let c = client(rec.options(fast_options()), &t);
    for u in ["user-0001", "user-0002"] {
        c.log_event(ev(u)).unwrap();
    }
    let r = c.flush_blocking(Duration::from_secs(5)).unwrap();
    assert_eq!(r.rejected, 2);
    assert_eq!(t.requests().len(), 1);
    assert_eq!(
        rec.count(|o| *o == Outcome::Rejected(RejectReason::InvalidApiKey)),
        2
    );
}

#[test]
fn flush_retries_failures_like_the_background_sender() {
    let t = MockTransport::new();
    t.push(Reply::Fail(TransportError::Timeout));
    t.push(Reply::Fail(TransportError::Closed));
    t.push(Reply::status(503, "busy"));
    t.push(Reply::status(502, "<html>bad gateway</html>"));
    let c = client(fast_options(), &t);
    for u in ["user-0001", "user-0002", "user-0003"] {
        c.log_event(ev(u)).unwrap();
    }
    let r = c.flush_blocking(Duration::from_secs(10)).unwrap();
    assert_eq!((r.delivered, r.pending), (3, 0), "{r}");
    assert_eq!(t.requests().len(), 5);
    assert_eq!(c.counters().failed_requests, 4);
}

#[test]
fn exhausted_retries_drop_events_with_that_reason() {
    let rec = Recorder::default();
    let t = MockTransport::new();
    t.set_default(Reply::Fail(TransportError::Connect));
    let c = client(rec.options(fast_options().max_retries(2)), &t);
    c.log_event(ev("user-0001")).unwrap();
    let r = c.flush_blocking(Duration::from_secs(10)).unwrap();
    assert_eq!((r.dropped, r.pending), (1, 0), "{r}");
    assert_eq!(t.requests().len(), 3);
    assert_eq!(
        rec.count(|o| *o == Outcome::Dropped(DropReason::RetriesExhausted)),
        1
    );
}

#[test]
fn a_flush_deadline_reports_what_is_pending_and_sending_goes_on() {
    let t = MockTransport::new();
    t.push(Reply::Fail(TransportError::Timeout));
    let c = client(
        fast_options().retry_backoff(Duration::from_millis(400), Duration::from_millis(400)),
        &t,
    );
    c.log_event(ev("user-0001")).unwrap();
    let started = Instant::now();
    let r = c.flush_blocking(Duration::from_millis(100)).unwrap();
    assert!(r.timed_out, "{r}");
    assert_eq!(r.pending, 1);
    assert!(started.elapsed() < Duration::from_millis(390));
    let r = c.flush_blocking(Duration::from_secs(5)).unwrap();
    assert_eq!(r.delivered, 1, "{r}");
}

#[test]
fn shutdown_drops_what_is_left_and_refuses_new_events() {
    let rec = Recorder::default();
    let t = MockTransport::new();
    t.set_default(Reply::Fail(TransportError::Timeout));
    let c = client(
        rec.options(fast_options().retry_backoff(Duration::from_secs(5), Duration::from_secs(5))),
        &t,
    );
    for u in ["user-0001", "user-0002"] {
        c.log_event(ev(u)).unwrap();
    }
    let started = Instant::now();
    let r = c.shutdown_blocking(Duration::from_millis(200)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!((r.dropped, r.pending), (2, 0), "{r}");
    assert!(r.timed_out);
    assert_eq!(
        rec.count(|o| *o == Outcome::Dropped(DropReason::Shutdown)),
        2
    );
    assert_eq!(c.log_event(ev("user-0003")), Err(LogError::Closed));
    // Later flushes and shutdowns answer at once.
    let r = c.flush_blocking(Duration::from_secs(5)).unwrap();
    assert!(r.stopped);
    assert_eq!(r.pending, 0);
    let r = c.shutdown_blocking(Duration::from_secs(5)).unwrap();
    assert_eq!(r.total(), 0);
}

#[test]
fn a_full_queue_rejects_the_newest_event_by_default() {
    let t = MockTransport::new();
    let c = client(
        fast_options()
            .queue_capacity(64 * 1024, 4)
            .flush_interval(Duration::from_secs(3600)),
        &t,
    );
    for i in 0..4 {
        c.log_event(ev(&format!("user-{i:04}"))).unwrap();
    }
    assert_eq!(c.log_event(ev("user-0004")), Err(LogError::QueueFull));
    assert_eq!(c.counters().refused_full, 1);
    let r = c.flush_blocking(Duration::from_secs(5)).unwrap();
    assert_eq!(r.delivered, 4);
}

#[test]
fn evict_oldest_reports_the_evicted_event_as_dropped() {
    let rec = Recorder::default();
    let t = MockTransport::new();
    let c = client(
        rec.options(
            fast_options()
                .queue_capacity(64 * 1024, 4)
                .queue_full(QueueFullPolicy::EvictOldest)
                .flush_interval(Duration::from_secs(3600)),
        ),
        &t,
    );
    for i in 0..5 {
        c.log_event(ev(&format!("user-{i:04}"))).unwrap();
    }
    let r = c.flush_blocking(Duration::from_secs(5)).unwrap();
    assert_eq!((r.delivered, r.dropped), (4, 0), "{r}");
    let dropped: Vec<_> = rec
        .all()
        .into_iter()
        .filter(|r| r.outcome == Outcome::Dropped(DropReason::QueueFull))
        .collect();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].id, EventId(0));
    assert_eq!(c.counters().dropped, 1);
}

#[test]
fn log_event_wait_waits_for_room_instead_of_failing() {
    let t = MockTransport::new();
    let c = client(
        fast_options()
            .queue_capacity(64 * 1024, 8)
            .flush_queue_size(4),
        &t,
    );
    for i in 0..200 {
        c.log_event_wait(ev(&format!("user-{i:04}")), Duration::from_secs(10))
            .unwrap();
    }
    let r = c.flush_blocking(Duration::from_secs(10)).unwrap();
    let counters = c.counters();
    assert_eq!(counters.accepted, 200);
    assert_eq!(counters.refused_full, 0);
    assert_eq!(counters.delivered, 200, "{r}");
}

#[test]
fn opt_out_refuses_events_and_counts_them() {
    let t = MockTransport::new();
    let c = client(fast_options().opt_out(true), &t);
    assert_eq!(c.log_event(ev("user-0001")), Err(LogError::OptedOut));
    c.set_opt_out(false);
    c.log_event(ev("user-0001")).unwrap();
    let counters = c.counters();
    assert_eq!((counters.opted_out, counters.accepted), (1, 1));
}

#[test]
fn many_threads_log_at_once_and_every_event_is_delivered_once() {
    let rec = Recorder::default();
    let t = MockTransport::new();
    let c = client(rec.options(fast_options().flush_queue_size(100)), &t);
    let threads: Vec<_> = (0..8)
        .map(|th| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..250 {
                    let user = format!("user-{th}-{i:04}");
                    c.log_event(ev(&user)).unwrap();
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    let r = c.flush_blocking(Duration::from_secs(10)).unwrap();
    assert_eq!(r.pending, 0, "{r}");
    assert_eq!(c.counters().delivered, 2000);
    assert_eq!(rec.assert_unique(), 2000);
    // insert_ids are unique across threads.
    let ids: std::collections::HashSet<String> = rec
        .all()
        .iter()
        .map(|r| r.json["insert_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2000);
}

#[test]
fn dropping_the_last_handle_delivers_what_is_queued() {
    let t = MockTransport::new();
    let c = client(fast_options().flush_interval(Duration::from_secs(3600)), &t);
    let other = c.clone();
    for i in 0..10 {
        c.log_event(ev(&format!("user-{i:04}"))).unwrap();
    }
    drop(other);
    assert!(t.requests().is_empty(), "a clone's drop does not flush");
    drop(c);
    let sent: usize = t.requests().iter().map(|r| count_events(&r.body)).sum();
    assert_eq!(sent, 10);
}

#[test]
fn dropping_is_bounded_when_nothing_can_be_delivered() {
    let t = MockTransport::new();
    t.set_default(Reply::Fail(TransportError::Connect));
    let c = client(
        fast_options()
            .retry_backoff(Duration::from_secs(5), Duration::from_secs(5))
            .drop_timeout(Duration::from_millis(200)),
        &t,
    );
    c.log_event(ev("user-0001")).unwrap();
    let started = Instant::now();
    drop(c);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn blocking_calls_refuse_on_a_runtime_thread_and_async_ones_work() {
    let t = MockTransport::new();
    let c = client(fast_options(), &t);
    c.log_event(ev("user-0001")).unwrap();
    assert_eq!(
        c.flush_blocking(Duration::from_secs(1)),
        Err(BlockingError::InsideRuntime)
    );
    assert_eq!(
        c.shutdown_blocking(Duration::from_secs(1)),
        Err(BlockingError::InsideRuntime)
    );
    let r = c.flush().await;
    assert_eq!(r.delivered, 1);
    c.log_event(ev("user-0002")).unwrap();
    let r = c.shutdown(Duration::from_secs(5)).await;
    assert_eq!(r.delivered, 1);
    // Dropping on a runtime thread neither blocks nor panics.
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_transport_can_run_on_the_callers_runtime() {
    let t = MockTransport::new();
    let c = client(
        fast_options().runtime(tokio::runtime::Handle::current()),
        &t,
    );
    for i in 0..50 {
        c.log_event(ev(&format!("user-{i:04}"))).unwrap();
    }
    let r = c.flush().await;
    assert_eq!(r.delivered, 50, "{r}");
    let r = c.shutdown(Duration::from_secs(5)).await;
    assert_eq!(r.total(), 0);
}

#[test]
fn outcome_callbacks_may_log_events_and_panics_in_them_are_contained() {
    let t = MockTransport::new();
    let slot: Arc<std::sync::Mutex<Option<Client>>> = Arc::default();
    let s = slot.clone();
    let follow_ups = Arc::new(AtomicU64::new(0));
    let f = follow_ups.clone();
    let options = fast_options().on_outcome(move |r| {
        if r.json.contains("\"Button Clicked\"") {
            if let Some(c) = s.lock().unwrap().as_ref() {
                c.log_event(Event::new("Follow Up").user_id("user-0001"))
                    .unwrap();
                f.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            panic!("callback panics on follow-ups");
        }
    });
    let c = client(options, &t);
    *slot.lock().unwrap() = Some(c.clone());
    c.log_event(ev("user-0001")).unwrap();
    c.flush_blocking(Duration::from_secs(5)).unwrap();
    // The follow-up was logged from the callback; flushing it makes the callback panic,
    // which must not stop the sender.
    c.flush_blocking(Duration::from_secs(5)).unwrap();
    assert_eq!(follow_ups.load(Ordering::Relaxed), 1);
    c.log_event(ev("user-0002")).unwrap();
    let r = c.flush_blocking(Duration::from_secs(5)).unwrap();
    assert_eq!(r.delivered, 1, "the sender survived the panic: {r}");
    slot.lock().unwrap().take();
}

#[test]
fn bad_options_are_refused_at_init() {
    let t = MockTransport::new();
    let e = Client::with_transport("", Options::default(), t.clone()).unwrap_err();
    assert_eq!(e.to_string(), "the API key is empty");
    let e =
        Client::with_transport("k", Options::default().flush_queue_size(0), t.clone()).unwrap_err();
    assert!(e.to_string().contains("flush_queue_size"));
    let e =
        Client::with_transport("k", Options::default().max_in_flight(17), t.clone()).unwrap_err();
    assert!(e.to_string().contains("max_in_flight"));
    let e = Client::with_transport("k", Options::default().server_url("ftp://x/"), t.clone())
        .unwrap_err();
    assert!(e.to_string().contains("unusable server URL"));
}

#[test]
fn the_client_and_its_futures_can_move_between_threads() {
    fn send_sync_clone<T: Send + Sync + Clone>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let c = client(fast_options(), &MockTransport::new());
    send_sync_clone(&c);
    send(c.flush());
    send(c.flush_within(Duration::from_secs(1)));
    send(c.shutdown(Duration::from_secs(1)));
}

#[test]
fn a_paused_device_does_not_delay_other_events_past_their_flush_interval() {
    let rec = Recorder::default();
    let t = MockTransport::new();
    t.push(Reply::status(
        429,
        r#"{"code":429,"error":"Too many requests for some devices and users","eps_threshold":30,"throttled_devices":{"device-hot-01":31},"throttled_events":[0]}"#,
    ));
    let c = client(
        rec.options(
            fast_options()
                .throttle_pause(Duration::from_secs(5))
                .flush_interval(Duration::from_millis(100)),
        ),
        &t,
    );
    c.log_event(Event::new("Hot").device_id("device-hot-01"))
        .unwrap();
    let r = c.flush_blocking(Duration::from_millis(300)).unwrap();
    assert_eq!(r.pending, 1, "the hot device is paused: {r}");
    // The sender now sleeps until the pause ends; a new event of another device is
    // still sent within its flush interval.
    std::thread::sleep(Duration::from_millis(200));
    let logged = Instant::now();
    c.log_event(Event::new("Cool").device_id("device-cool-01"))
        .unwrap();
    while rec.count(|o| *o == Outcome::Delivered) == 0 {
        assert!(
            logged.elapsed() < Duration::from_secs(2),
            "the cool device's event waited for the hot device's pause"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
