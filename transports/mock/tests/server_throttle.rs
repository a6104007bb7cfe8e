//! 429: per-device and per-user throttling and the daily quota (spec §4, §5).

mod server_support;

use std::time::Duration;

use amplitude_mock::server::{Config, MockServer};
use server_support::{envelope, event, events_for, post};

/// Throttling at 1 event/s averaged over 2 s: a budget of 2 events per key.
fn tight() -> Config {
    Config::default().eps(1).eps_window(Duration::from_secs(2))
}

fn user_event(user_id: &str, insert_id: &str) -> String {
    format!(r#"{{"event_type":"test","user_id":"{user_id}","insert_id":"{insert_id}"}}"#)
}

#[test]
fn only_the_busy_device_is_throttled() {
    let server = MockServer::start(tight()).unwrap();
    let events = [
        event("busy-device", "a"),
        event("quiet-device", "q"),
        event("busy-device", "b"),
        event("busy-device", "c"),
    ];
    let resp = post(server.addr(), "/2/httpapi", &envelope(&events));
    assert_eq!(resp.status, 429);
    assert_eq!(
        resp.text(),
        r#"{"code":429,"error":"Too many requests for some devices and users","eps_threshold":1,"throttled_devices":{"busy-device":2},"throttled_users":{},"throttled_events":[0,2,3]}"#
    );
    // Nothing of the throttled request was ingested.
    assert_eq!(server.summary().events_ingested, 0);

    // Everybody else keeps flowing: the quiet device alone is accepted…
    let resp = post(
        server.addr(),
        "/2/httpapi",
        &envelope(&[event("quiet-device", "q")]),
    );
    assert_eq!(resp.status, 200);
    // …and so is the busy device within its budget.
    let resp = post(
        server.addr(),
        "/2/httpapi",
        &envelope(&events_for("busy-device", "x", 2)),
    );
    assert_eq!(resp.status, 200);
    // One more is over it.
    let resp = post(
        server.addr(),
        "/2/httpapi",
        &envelope(&[event("busy-device", "y")]),
    );
    assert_eq!(resp.status, 429);
    assert_eq!(resp.json()["throttled_devices"]["busy-device"], 2);

    let summary = server.summary();
    assert_eq!(summary.events_ingested, 3);
    assert_eq!(summary.events_throttled, 5);
    assert_eq!(summary.events_throttled_listed, 4);
    assert_eq!(summary.status(429), 2);
    assert_eq!(summary.status(200), 2);
}

#[test]
fn users_are_throttled_too() {
    let server = MockServer::start(tight()).unwrap();
    let events = [
        user_event("busy@example.com", "1"),
        user_event("busy@example.com", "2"),
        user_event("busy@example.com", "3"),
        user_event("calm@example.com", "4"),
    ];
    let resp = post(server.addr(), "/2/httpapi", &envelope(&events));
    assert_eq!(resp.status, 429);
    let body = resp.json();
    assert_eq!(body["throttled_users"]["busy@example.com"], 2);
    assert_eq!(body["throttled_devices"], serde_json::json!({}));
    assert_eq!(body["throttled_events"], serde_json::json!([0, 1, 2]));
}

#[test]
fn the_window_slides() {
    let server = MockServer::start(
        Config::default()
            .eps(2)
            .eps_window(Duration::from_millis(500)),
    )
    .unwrap();
    // Budget: 2 events/s × 0.5 s = 1 event per 0.5 s.
    assert_eq!(
        post(
            server.addr(),
            "/2/httpapi",
            &envelope(&[event("device-1", "a")])
        )
        .status,
        200
    );
    assert_eq!(
        post(
            server.addr(),
            "/2/httpapi",
            &envelope(&[event("device-1", "b")])
        )
        .status,
        429
    );
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        post(
            server.addr(),
            "/2/httpapi",
            &envelope(&[event("device-1", "b")])
        )
        .status,
        200
    );
}

#[test]
fn batch_has_its_own_threshold() {
    let server = MockServer::start(Config::default()).unwrap();
    // 1000 events of one device: over HTTP V2's budget (30/s × 30 s = 900)…
    let many = events_for("device-1", "e", 1000);
    assert_eq!(
        post(server.addr(), "/2/httpapi", &envelope(&many)).status,
        429
    );
    // …but well within the Batch API's (1000/s × 30 s).
    assert_eq!(post(server.addr(), "/batch", &envelope(&many)).status, 200);
}

#[test]
fn zero_eps_turns_throttling_off() {
    let server = MockServer::start(Config::default().eps(0)).unwrap();
    for round in 0..3 {
        let resp = post(
            server.addr(),
            "/2/httpapi",
            &envelope(&events_for("device-1", &format!("r{round}"), 1500)),
        );
        assert_eq!(resp.status, 200);
    }
    assert_eq!(server.summary().events_ingested, 4500);
}

#[test]
fn retry_after_is_sent_with_429_when_configured() {
    let server = MockServer::start(tight().retry_after(7)).unwrap();
    let resp = post(
        server.addr(),
        "/2/httpapi",
        &envelope(&events_for("device-1", "a", 3)),
    );
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("retry-after"), Some("7"));
    let resp = post(
        server.addr(),
        "/2/httpapi",
        &envelope(&events_for("device-2", "a", 1)),
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("retry-after"), None);
}

#[test]
fn daily_quota_is_reported_per_key() {
    let server = MockServer::start(Config::default().eps(0).daily_quota(3)).unwrap();
    let first = [
        event("device-1", "a"),
        event("device-1", "b"),
        user_event("user-1", "u1"),
    ];
    assert_eq!(
        post(server.addr(), "/2/httpapi", &envelope(&first)).status,
        200
    );
    let second = [
        event("device-2", "c"),
        event("device-1", "d"),
        event("device-1", "e"),
        user_event("user-1", "u2"),
    ];
    let resp = post(server.addr(), "/2/httpapi", &envelope(&second));
    assert_eq!(resp.status, 429);
    assert_eq!(
        resp.text(),
        r#"{"code":429,"error":"Too many requests for some devices and users","eps_threshold":0,"throttled_devices":{},"throttled_users":{},"throttled_events":[1,2],"exceeded_daily_quota_devices":{"device-1":4}}"#
    );
    // device-2 and user-1 are still within quota.
    let third = [event("device-2", "c"), user_event("user-1", "u2")];
    assert_eq!(
        post(server.addr(), "/2/httpapi", &envelope(&third)).status,
        200
    );
    let fourth = [user_event("user-1", "u3"), user_event("user-1", "u4")];
    let resp = post(server.addr(), "/2/httpapi", &envelope(&fourth));
    assert_eq!(resp.json()["exceeded_daily_quota_users"]["user-1"], 4);
}
