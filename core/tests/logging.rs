//! What `log_event` does with events it cannot or should not take.

mod common;

use amplitude_core::config::{Config, QueueFullPolicy};
use amplitude_core::middleware::{Middleware, Next, Payload};
use amplitude_core::outcome::{DropReason, Outcome};
use amplitude_core::queue::{RamQueue, Slot};
use amplitude_core::validate::{Field, Rule, ValidationError};
use amplitude_core::{Client, Event, LogError, Logged};
use common::*;

fn small(policy: QueueFullPolicy) -> Client<'static, RamQueue<[u8; 1024], [Slot; 4]>> {
    Client::new(
        Config::new("KEY").queue_full(policy),
        RamQueue::new([0u8; 1024], [Slot::EMPTY; 4]),
        1,
    )
}

fn ev(name: &str) -> Event<'_> {
    Event::new(name).device_id("device-1")
}

#[test]
fn full_queue_rejects_the_newest_by_default() {
    let mut c = small(QueueFullPolicy::RejectNewest);
    let mut log = Log::default();
    for i in 0..4 {
        c.log_event(at(i), ev("a"), &mut (), None, &mut log)
            .unwrap();
    }
    assert_eq!(
        c.log_event(at(5), ev("b"), &mut (), None, &mut log),
        Err(LogError::QueueFull)
    );
    assert_eq!(c.counters().refused_full, 1);
    assert_eq!(c.counters().accepted, 4);
    assert!(log.outcomes.is_empty());
}

#[test]
fn evict_oldest_drops_the_oldest_with_an_outcome() {
    let mut c = small(QueueFullPolicy::EvictOldest);
    let mut log = Log::default();
    for i in 0..4 {
        c.log_event(at(i), ev("old"), &mut (), None, &mut log)
            .unwrap();
    }
    let r = c
        .log_event(at(5), ev("new"), &mut (), None, &mut log)
        .unwrap();
    assert!(matches!(r, Logged::Queued(_)));
    assert_eq!(log.outcomes.len(), 1);
    assert_eq!(log.outcomes[0].0.0, 0, "the oldest went");
    assert_eq!(log.outcomes[0].1, Outcome::Dropped(DropReason::QueueFull));
    let c2 = c.counters();
    assert_eq!(
        c2.accepted,
        c2.delivered + c2.rejected + c2.dropped + c2.pending()
    );
}

#[test]
fn events_larger_than_a_request_are_refused_at_log_time() {
    let mut c = client(Config::new("KEY").max_request_bytes(300));
    let mut log = Log::default();
    let big = "x".repeat(400);
    let e: Event = Event::new("big")
        .device_id("device-1")
        .property("p", big.as_str());
    assert!(
        matches!(c.log_event(at(0), e, &mut (), None, &mut log), Err(LogError::TooLarge { bytes }) if bytes > 400)
    );
    let mut tiny = small(QueueFullPolicy::EvictOldest);
    let e: Event = Event::new("big")
        .device_id("device-1")
        .property("p", big.as_str());
    let e2 = e
        .clone()
        .property("q", big.as_str())
        .property("r", big.as_str());
    assert_eq!(
        tiny.log_event(at(0), e2, &mut (), None, &mut log),
        Err(LogError::TooLarge { bytes: 0 })
    );
    assert_eq!(c.counters().invalid, 1);
}

#[test]
fn invalid_events_name_the_field_and_rule() {
    let mut c = client(Config::new("KEY"));
    let mut log = Log::default();
    let cases: [(Event, ValidationError); 5] = [
        (
            Event::new("").device_id("device-1"),
            ValidationError {
                field: Field::EventType,
                rule: Rule::Missing,
            },
        ),
        (
            Event::new("x"),
            ValidationError {
                field: Field::Ids,
                rule: Rule::Missing,
            },
        ),
        (
            Event::new("x").user_id("Undefined"),
            ValidationError {
                field: Field::UserId,
                rule: Rule::ReservedValue,
            },
        ),
        (
            Event::new("x").device_id("abcd"),
            ValidationError {
                field: Field::DeviceId,
                rule: Rule::TooShort { min: 5 },
            },
        ),
        (
            Event::new("x").device_id("device-1").price(f64::NAN),
            ValidationError {
                field: Field::Price,
                rule: Rule::NotFinite,
            },
        ),
    ];
    for (e, want) in cases {
        assert_eq!(
            c.log_event(at(0), e, &mut (), None, &mut log),
            Err(LogError::Invalid(want))
        );
    }
    assert_eq!(c.counters().invalid, 5);
    assert_eq!(c.counters().accepted, 0);
    let msg = ValidationError {
        field: Field::DeviceId,
        rule: Rule::TooShort { min: 5 },
    }
    .to_string();
    assert_eq!(msg, "device_id is shorter than 5 characters");
}

#[test]
fn min_id_length_is_configurable_and_sent_as_an_option() {
    let mut c = client(Config::new("KEY").min_id_length(3));
    let mut log = Log::default();
    c.log_event(
        at(0),
        Event::new("x").device_id("abc"),
        &mut (),
        None,
        &mut log,
    )
    .unwrap();
    c.flush();
    let sent = next(&mut c, &mut log, at(0)).unwrap();
    assert_eq!(sent.body["options"]["min_id_length"], 3);
}

struct DropDebug;
impl Middleware for DropDebug {
    fn run<'p, 'a>(&mut self, payload: &mut Payload<'p, 'a>, next: Next<'_, 'p, 'a>) {
        if payload.event.event_type != "Debug" {
            next.run(payload);
        }
    }
}

struct Tag(&'static str);
impl Middleware for Tag {
    fn run<'p, 'a>(&mut self, payload: &mut Payload<'p, 'a>, next: Next<'_, 'p, 'a>) {
        payload
            .event
            .push(amplitude_core::event::Target::Event, "tag", self.0.into());
        if let Some(extra) = payload.extra.and_then(|e| e.downcast_ref::<u32>()) {
            payload.event.event_id = Some(i64::from(*extra));
        }
        next.run(payload);
    }
}

#[test]
fn middleware_filters_modifies_and_sees_extra_in_order() {
    let mut c = client(Config::new("KEY"));
    let mut log = Log::default();
    let mut chain: [&mut dyn Middleware; 2] = [&mut DropDebug, &mut Tag("mw")];
    assert_eq!(
        c.log_event(at(0), ev("Debug"), &mut chain[..], None, &mut log),
        Ok(Logged::Filtered)
    );
    c.log_event(at(0), ev("Click"), &mut chain[..], Some(&7u32), &mut log)
        .unwrap();
    assert_eq!(c.counters().filtered, 1);
    c.flush();
    let sent = next(&mut c, &mut log, at(0)).unwrap();
    assert_eq!(sent.body["events"][0]["event_properties"]["tag"], "mw");
    assert_eq!(sent.body["events"][0]["event_id"], 7);
}

#[test]
fn opt_out_accepts_nothing() {
    let mut c = client(Config::new("KEY").opt_out(true));
    let mut log = Log::default();
    assert_eq!(
        c.log_event(at(0), ev("x"), &mut (), None, &mut log),
        Ok(Logged::OptedOut)
    );
    assert_eq!(c.counters().accepted, 0);
    c.set_opt_out(false);
    assert!(matches!(
        c.log_event(at(0), ev("x"), &mut (), None, &mut log),
        Ok(Logged::Queued(_))
    ));
}

#[test]
fn batches_wait_for_size_or_interval_unless_flushed() {
    let mut c = client(Config::new("KEY").flush_queue_size(3));
    let mut log = Log::default();
    log_n(&mut c, &mut log, at(0), 2, 2);
    assert!(next(&mut c, &mut log, at(0)).is_none(), "2 < flush size");
    assert_eq!(c.next_wakeup(at(0)), Some(at(10_000)), "the flush interval");
    log_n(&mut c, &mut log, at(1), 1, 1);
    let sent = next(&mut c, &mut log, at(1)).expect("size reached");
    assert_eq!(event_types(&sent.body).len(), 3);
    log_n(&mut c, &mut log, at(2), 1, 1);
    assert!(next(&mut c, &mut log, at(9_999)).is_none());
    respond(&mut c, &mut log, at(3), &sent, 200, "");
    assert!(
        next(&mut c, &mut log, at(10_002)).is_some(),
        "interval passed"
    );
}

#[test]
fn api_key_never_appears_in_debug_output() {
    let c = client(Config::new("SECRET-KEY-123"));
    assert!(!format!("{:?}", c.config()).contains("SECRET-KEY-123"));
}

#[test]
fn shutdown_drops_everything_pending_with_a_reason() {
    let mut c = client(Config::new("KEY"));
    let mut log = Log::default();
    log_n(&mut c, &mut log, at(0), 4, 2);
    c.flush();
    let _in_flight = next(&mut c, &mut log, at(0)).unwrap();
    log_n(&mut c, &mut log, at(0), 2, 2);
    c.drop_all(DropReason::Shutdown, &mut log);
    assert_eq!(log.outcomes.len(), 6);
    assert!(
        log.outcomes
            .iter()
            .all(|o| o.1 == Outcome::Dropped(DropReason::Shutdown))
    );
    assert_eq!(c.counters().pending(), 0);
}

#[test]
fn offline_queues_without_sending_until_back_online() {
    let mut c = client(Config::new("KEY").offline(true));
    let mut log = Log::default();
    log_n(&mut c, &mut log, at(0), 3, 3);
    c.flush();
    assert!(next(&mut c, &mut log, at(60_000)).is_none());
    assert_eq!(c.next_wakeup(at(60_000)), None);
    c.set_offline(false);
    let sent = next(&mut c, &mut log, at(60_000)).expect("sends once online");
    assert_eq!(event_types(&sent.body).len(), 3);
}
