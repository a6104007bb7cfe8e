//! Every response case of spec §5, with its literal body, leads to the outcomes spec §6
//! asks for.

mod common;

use amplitude_core::Event;
use amplitude_core::config::Config;
use amplitude_core::outcome::{DropReason, Outcome, RejectReason};
use amplitude_core::transport::{Response, TransportError};
use common::*;

const OK_200: &str = r#"{"code":200,"events_ingested":50,"payload_size_bytes":50,"server_upload_time":1396381378123}"#;
const MISSING_FIELD_400: &str = r#"{"code":400,"error":"Request missing required field","missing_field":"api_key","events_with_invalid_fields":{"time":[3,4,7]},"events_with_missing_fields":{"event_type":[3,4,7]}}"#;
const ID_LENGTH_400: &str = r#"{"code":400,"events_with_invalid_id_lengths":{"device_id":[0]},"error":"Invalid id length for user_id or device_id"}"#;
const API_KEY_400: &str = r#"{"code":400,"error":"Invalid API key: my_api_key"}"#;
const FORBIDDEN_403: &str = r#"{"code":403,"error":"Forbidden"}"#;
const TOO_LARGE_413: &str = r#"{"code":413,"error":"Payload too large"}"#;
const THROTTLED_429: &str = r#"{"code":429,"error":"Too many requests for some devices and users","eps_threshold":30,
 "throttled_devices":{"C8F9E604-F01A-4BD9-95C6-8E5357DF265D":31},
 "throttled_users":{"datamonster@amplitude.com":32},
 "throttled_events":[3,4,7],
 "exceeded_daily_quota_users":{"datanom@amplitude.com":500200},
 "exceeded_daily_quota_devices":{"A1A1A000-F01A-4BD9-95C6-8E5357DF265D":500900}}"#;

fn flushed(n: usize, devices: usize) -> (TestClient, Log, Vec<amplitude_core::outcome::EventId>) {
    let mut c = client(Config::new("KEY"));
    let mut log = Log::default();
    let ids = log_n(&mut c, &mut log, at(0), n, devices);
    c.flush();
    (c, log, ids)
}

#[test]
fn ok_200_delivers_every_event_and_learns_the_clock() {
    let (mut c, mut log, ids) = flushed(5, 5);
    let sent = next(&mut c, &mut log, at(1000)).unwrap();
    assert_eq!(sent.body["events"].as_array().unwrap().len(), 5);
    respond(&mut c, &mut log, at(1000), &sent, 200, OK_200);
    for id in &ids {
        assert_eq!(log.of(*id), vec![Outcome::Delivered]);
    }
    assert_eq!(c.clock_offset_ms(), Some(1_396_381_378_123i64 - 1000));
    assert!(
        next(&mut c, &mut log, at(2000)).is_none(),
        "nothing is resent after a 200"
    );
    // Later events get their `time` from the learned clock.
    log_n(&mut c, &mut log, at(3000), 1, 1);
    c.flush();
    let sent = next(&mut c, &mut log, at(3000)).unwrap();
    assert_eq!(sent.body["events"][0]["time"], 1_396_381_378_123i64 + 2000);
}

#[test]
fn missing_field_400_rejects_the_whole_request_without_retry() {
    let (mut c, mut log, ids) = flushed(8, 8);
    let sent = next(&mut c, &mut log, at(0)).unwrap();
    respond(&mut c, &mut log, at(0), &sent, 400, MISSING_FIELD_400);
    for id in &ids {
        assert_eq!(
            log.of(*id),
            vec![Outcome::Rejected(RejectReason::MissingRequestField)]
        );
    }
    assert!(next(&mut c, &mut log, at(60_000)).is_none());
    assert_eq!(c.counters().pending(), 0);
}

#[test]
fn index_lists_400_reject_exactly_the_listed_events_and_resend_the_rest() {
    let (mut c, mut log, ids) = flushed(8, 8);
    let sent = next(&mut c, &mut log, at(0)).unwrap();
    let body = r#"{"code":400,"error":"Request missing required field","events_with_invalid_fields":{"time":[3,4,7]},"events_with_missing_fields":{"event_type":[3,4,7]}}"#;
    respond(&mut c, &mut log, at(0), &sent, 400, body);
    for i in [3, 4, 7] {
        assert_eq!(
            log.of(ids[i]),
            vec![Outcome::Rejected(RejectReason::InvalidFields)]
        );
    }
    let resent = next(&mut c, &mut log, at(0)).expect("the rest goes again at once");
    assert_eq!(event_types(&resent.body), ["e0", "e1", "e2", "e5", "e6"]);
    // Same insert_ids on resend.
    for e in resent.body["events"].as_array().unwrap() {
        let first = sent.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["event_type"] == e["event_type"])
            .unwrap();
        assert_eq!(first["insert_id"], e["insert_id"]);
    }
    respond(&mut c, &mut log, at(0), &resent, 200, OK_200);
    assert_eq!(c.counters().delivered, 5);
    assert_eq!(c.counters().rejected, 3);
}

#[test]
fn invalid_id_length_400_rejects_the_listed_device() {
    let (mut c, mut log, ids) = flushed(3, 3);
    let sent = next(&mut c, &mut log, at(0)).unwrap();
    respond(&mut c, &mut log, at(0), &sent, 400, ID_LENGTH_400);
    assert_eq!(
        log.of(ids[0]),
        vec![Outcome::Rejected(RejectReason::InvalidIdLength)]
    );
    let resent = next(&mut c, &mut log, at(0)).unwrap();
    assert_eq!(event_types(&resent.body), ["e1", "e2"]);
}

#[test]
fn invalid_api_key_400_rejects_all() {
    let (mut c, mut log, ids) = flushed(4, 2);
    let sent = next(&mut c, &mut log, at(0)).unwrap();
    respond(&mut c, &mut log, at(0), &sent, 400, API_KEY_400);
    for id in &ids {
        assert_eq!(
            log.of(*id),
            vec![Outcome::Rejected(RejectReason::InvalidApiKey)]
        );
    }
}

#[test]
fn unlisted_400_is_bisected_to_the_bad_event() {
    let (mut c, mut log, ids) = flushed(8, 8);
    let bad = "e5";
    let mut requests = 0;
    let mut now = 0;
    while let Some(sent) = next(&mut c, &mut log, at(now)) {
        requests += 1;
        assert!(requests < 20, "bisection terminates");
        if event_types(&sent.body).iter().any(|t| t == bad) {
            respond(
                &mut c,
                &mut log,
                at(now),
                &sent,
                400,
                r#"{"code":400,"error":"Invalid request"}"#,
            );
        } else {
            respond(&mut c, &mut log, at(now), &sent, 200, OK_200);
        }
        now += 1;
    }
    assert_eq!(
        log.of(ids[5]),
        vec![Outcome::Rejected(RejectReason::Invalid)]
    );
    assert_eq!(c.counters().delivered, 7);
    assert!(requests <= 8, "{requests} requests");
}

#[test]
fn forbidden_403_is_not_retried() {
    let (mut c, mut log, ids) = flushed(2, 2);
    let sent = next(&mut c, &mut log, at(0)).unwrap();
    respond(&mut c, &mut log, at(0), &sent, 403, FORBIDDEN_403);
    for id in &ids {
        assert_eq!(
            log.of(*id),
            vec![Outcome::Rejected(RejectReason::Forbidden)]
        );
    }
    assert!(next(&mut c, &mut log, at(600_000)).is_none());
}

#[test]
fn too_large_413_halves_the_batch_and_drops_a_lone_event_that_is_still_too_large() {
    let (mut c, mut log, ids) = flushed(8, 8);
    let sent = next(&mut c, &mut log, at(0)).unwrap();
    respond(&mut c, &mut log, at(0), &sent, 413, TOO_LARGE_413);
    let half = next(&mut c, &mut log, at(0)).unwrap();
    assert_eq!(event_types(&half.body), ["e0", "e1", "e2", "e3"]);
    respond(&mut c, &mut log, at(0), &half, 200, OK_200);
    let rest = next(&mut c, &mut log, at(0)).unwrap();
    assert_eq!(event_types(&rest.body), ["e4", "e5", "e6", "e7"]);
    // Keep answering 413 for anything containing e6: it ends alone and is dropped.
    let mut sent = rest;
    let mut requests = 0;
    loop {
        requests += 1;
        assert!(requests < 10);
        if event_types(&sent.body).iter().any(|t| t == "e6") {
            respond(&mut c, &mut log, at(0), &sent, 413, TOO_LARGE_413);
        } else {
            respond(&mut c, &mut log, at(0), &sent, 200, OK_200);
        }
        match next(&mut c, &mut log, at(0)) {
            Some(s) => sent = s,
            None => break,
        }
    }
    assert_eq!(log.of(ids[6]), vec![Outcome::Dropped(DropReason::TooLarge)]);
    assert_eq!(c.counters().delivered, 7);
}

#[test]
fn throttled_429_drops_quota_keys_and_pauses_only_throttled_keys() {
    let mut c = client(Config::new("KEY"));
    let mut log = Log::default();
    // Positions: 0 throttled device, 1 quota user, 2 quota device, 3/4/7 throttled_events,
    // 5 throttled user, 6 free.
    let specs: [(&str, Option<&str>, Option<&str>); 8] = [
        ("e0", Some("C8F9E604-F01A-4BD9-95C6-8E5357DF265D"), None),
        ("e1", None, Some("datanom@amplitude.com")),
        ("e2", Some("A1A1A000-F01A-4BD9-95C6-8E5357DF265D"), None),
        ("e3", Some("device-3"), None),
        ("e4", Some("device-4"), None),
        ("e5", None, Some("datamonster@amplitude.com")),
        ("e6", Some("device-6"), None),
        ("e7", Some("device-7"), None),
    ];
    let mut ids = Vec::new();
    for (et, dev, user) in specs {
        let mut ev: Event = Event::new(et);
        ev.device_id = dev;
        ev.user_id = user;
        ids.push(
            match c.log_event(at(0), ev, &mut (), None, &mut log).unwrap() {
                amplitude_core::Logged::Queued(id) => id,
                o => panic!("{o:?}"),
            },
        );
    }
    c.flush();
    let sent = next(&mut c, &mut log, at(0)).unwrap();
    respond(&mut c, &mut log, at(0), &sent, 429, THROTTLED_429);
    assert_eq!(
        log.of(ids[1]),
        vec![Outcome::Dropped(DropReason::DailyQuota)]
    );
    assert_eq!(
        log.of(ids[2]),
        vec![Outcome::Dropped(DropReason::DailyQuota)]
    );
    let free = next(&mut c, &mut log, at(1)).expect("others keep flowing");
    assert_eq!(event_types(&free.body), ["e6"]);
    respond(&mut c, &mut log, at(1), &free, 200, OK_200);
    // New events of the throttled device wait with it; other devices flow.
    let later: Event =
        Event::new("late-throttled").device_id("C8F9E604-F01A-4BD9-95C6-8E5357DF265D");
    c.log_event(at(2), later, &mut (), None, &mut log).unwrap();
    let other: Event = Event::new("late-free").device_id("device-9");
    c.log_event(at(2), other, &mut (), None, &mut log).unwrap();
    c.flush();
    let sent = next(&mut c, &mut log, at(2)).unwrap();
    assert_eq!(event_types(&sent.body), ["late-free"]);
    respond(&mut c, &mut log, at(2), &sent, 200, OK_200);
    assert!(
        next(&mut c, &mut log, at(29_999)).is_none(),
        "throttled keys wait the 30 s pause"
    );
    assert_eq!(c.next_wakeup(at(3)), Some(at(30_000)));
    // After the pause they go again, in requests of at most half the throttled one's size.
    let after = next(&mut c, &mut log, at(30_000)).unwrap();
    assert_eq!(event_types(&after.body), ["e0", "e3", "e4", "e5"]);
    respond(&mut c, &mut log, at(30_000), &after, 200, OK_200);
    let rest = next(&mut c, &mut log, at(30_000)).unwrap();
    assert_eq!(event_types(&rest.body), ["e7", "late-throttled"]);
}

#[test]
fn server_errors_and_408_retry_with_backoff_keeping_insert_ids() {
    for (status, body) in [
        (500, r#"{"code":500,"error":"Internal"}"#),
        (502, "<html>Bad Gateway</html>"),
        (503, ""),
        (504, "<html>Gateway Timeout</html>"),
        (408, ""),
    ] {
        let (mut c, mut log, ids) = flushed(3, 3);
        let sent = next(&mut c, &mut log, at(0)).unwrap();
        respond(&mut c, &mut log, at(0), &sent, status, body);
        assert!(log.outcomes.is_empty(), "{status}: nothing final yet");
        assert!(
            next(&mut c, &mut log, at(0)).is_none(),
            "{status}: no immediate resend"
        );
        let wake = c.next_wakeup(at(0)).unwrap();
        assert!(
            wake >= at(250),
            "{status}: waits at least the base delay, got {wake:?}"
        );
        assert!(
            next(&mut c, &mut log, at(249)).is_none(),
            "{status}: not before the delay"
        );
        let again = next(&mut c, &mut log, wake).unwrap();
        assert_eq!(
            again.body["events"][0]["insert_id"],
            sent.body["events"][0]["insert_id"]
        );
        respond(&mut c, &mut log, wake, &again, 200, OK_200);
        for id in &ids {
            assert_eq!(log.of(*id), vec![Outcome::Delivered]);
        }
    }
}

#[test]
fn retry_after_is_honoured() {
    let (mut c, mut log, _) = flushed(1, 1);
    let sent = next(&mut c, &mut log, at(0)).unwrap();
    let resp = Response {
        retry_after_secs: Some(7),
        ..Response::new(503, b"")
    };
    c.on_response(at(0), sent.flight, Ok(resp), &mut log);
    assert_eq!(c.next_wakeup(at(0)), Some(at(7000)));
}

#[test]
fn transport_errors_retry_until_the_policy_gives_up() {
    let (mut c, mut log, ids) = flushed(2, 2);
    let mut now = at(0);
    let mut attempts = 0;
    while let Some(sent) = next(&mut c, &mut log, now) {
        attempts += 1;
        fail(&mut c, &mut log, now, &sent, TransportError::Connect);
        match c.next_wakeup(now) {
            Some(t) => {
                assert!(t >= now + embassy_time::Duration::from_millis(250));
                now = t;
            }
            None => break,
        }
    }
    assert_eq!(attempts, 13, "1 try + 12 retries");
    for id in &ids {
        assert_eq!(
            log.of(*id),
            vec![Outcome::Dropped(DropReason::RetriesExhausted)]
        );
    }
}

#[test]
fn empty_non_json_truncated_and_unknown_field_bodies_are_classified_by_status() {
    for body in [
        "",
        "not json",
        r#"{"code":200,"events_ingest"#,
        r#"{"code":200,"new_field":{"x":[1,{"y":null}]},"events_ingested":1}"#,
    ] {
        let (mut c, mut log, ids) = flushed(1, 1);
        let sent = next(&mut c, &mut log, at(0)).unwrap();
        respond(&mut c, &mut log, at(0), &sent, 200, body);
        assert_eq!(log.of(ids[0]), vec![Outcome::Delivered], "{body}");
    }
    // A 400 whose body cannot be read is bisected like one that lists nothing.
    let (mut c, mut log, ids) = flushed(1, 1);
    let sent = next(&mut c, &mut log, at(0)).unwrap();
    respond(&mut c, &mut log, at(0), &sent, 400, "<html>");
    assert_eq!(
        log.of(ids[0]),
        vec![Outcome::Rejected(RejectReason::Invalid)]
    );
}

#[test]
fn seed_example_event_encodes_as_the_http_api_expects() {
    let mut c = client(Config::new("API_KEY").clock_offset_ms(1_700_000_000_000));
    let mut log = Log::default();
    let ev: Event = Event::new("Node.js Event")
        .user_id("datamonster@gmail.com")
        .location(37.77, -122.39)
        .ip("127.0.0.1")
        .insert_id("5f0adeff-6668-4427-8d02-57d803a2b841")
        .property("keyString", "valueString")
        .property("keyInt", 11)
        .property("keyBool", true);
    c.log_event(at(5), ev, &mut (), None, &mut log).unwrap();
    c.flush();
    let sent = next(&mut c, &mut log, at(5)).unwrap();
    let expected = format!(
        concat!(
            r#"{{"api_key":"API_KEY","events":[{{"event_type":"Node.js Event","user_id":"datamonster@gmail.com","#,
            r#""insert_id":"5f0adeff-6668-4427-8d02-57d803a2b841","location_lat":37.77,"location_lng":-122.39,"#,
            r#""ip":"127.0.0.1","library":"amplitude-rust/{}","event_properties":{{"keyString":"valueString","#,
            r#""keyInt":11,"keyBool":true}},"time":1700000000005}}]}}"#
        ),
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(String::from_utf8(sent.raw).unwrap(), expected);
    assert_eq!(sent.url, "https://api2.amplitude.com/2/httpapi");
}

#[test]
fn throttled_429_naming_nobody_waits_the_pause_and_counts_the_attempt() {
    let (mut c, mut log, ids) = flushed(2, 2);
    let sent = next(&mut c, &mut log, at(0)).unwrap();
    respond(
        &mut c,
        &mut log,
        at(0),
        &sent,
        429,
        r#"{"code":429,"error":"Too many requests"}"#,
    );
    assert!(next(&mut c, &mut log, at(29_999)).is_none());
    let again = next(&mut c, &mut log, at(30_000)).expect("retried after the pause");
    respond(&mut c, &mut log, at(30_000), &again, 200, OK_200);
    for id in &ids {
        assert_eq!(log.of(*id), vec![Outcome::Delivered]);
    }
    assert_eq!(c.counters().failed_requests, 1);
}

#[test]
fn too_large_413_teaches_later_batches_the_servers_limit() {
    let mut c = client(Config::new("KEY").flush_queue_size(8));
    let mut log = Log::default();
    log_n(&mut c, &mut log, at(0), 8, 8);
    let sent = next(&mut c, &mut log, at(0)).unwrap();
    respond(&mut c, &mut log, at(0), &sent, 413, TOO_LARGE_413);
    assert_eq!(c.batch_limit(), 4);
    for _ in 0..2 {
        let half = next(&mut c, &mut log, at(0)).unwrap();
        respond(&mut c, &mut log, at(0), &half, 200, OK_200);
    }
    // New events go in batches of the learned size; after 16 full successes (the two
    // halves and 14 more) it is probed back up.
    log_n(&mut c, &mut log, at(1), 4 * 14, 8);
    for _ in 0..14 {
        let b = next(&mut c, &mut log, at(1)).unwrap();
        assert_eq!(b.body["events"].as_array().unwrap().len(), 4);
        respond(&mut c, &mut log, at(1), &b, 200, OK_200);
    }
    assert_eq!(c.batch_limit(), 5);
    assert_eq!(c.counters().delivered, 8 + 56);
}
