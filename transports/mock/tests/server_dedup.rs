//! `insert_id` de-duplication, per-device order, event retention, `/events`,
//! `/summary` and `/reset`.

mod server_support;

use amplitude_mock::server::{Config, MockServer, insert_id_fingerprint};
use server_support::{envelope, event, events_for, get, post};

fn fingerprints(ids: &[&str]) -> Vec<u64> {
    ids.iter().map(|i| insert_id_fingerprint(i)).collect()
}

#[test]
fn duplicates_are_dropped_per_device_and_insert_id() {
    let server = MockServer::start(Config::default().eps(0)).unwrap();
    let first = [
        event("device-1", "a"),
        event("device-1", "b"),
        event("device-2", "a"),
    ];
    assert_eq!(
        post(server.addr(), "/2/httpapi", &envelope(&first)).status,
        200
    );
    // A resend of the whole request, plus one new event and one duplicate within the request.
    let second = [
        event("device-1", "a"),
        event("device-1", "b"),
        event("device-2", "a"),
        event("device-1", "c"),
        event("device-1", "c"),
    ];
    let resp = post(server.addr(), "/2/httpapi", &envelope(&second));
    assert_eq!(resp.status, 200);
    // Like Amplitude, the answer counts every event of the request.
    assert_eq!(resp.json()["events_ingested"], 5);

    let summary = server.summary();
    assert_eq!(summary.events_received, 8);
    assert_eq!(summary.events_ingested, 4);
    assert_eq!(summary.duplicates, 4);
    assert_eq!(summary.devices, 2);

    let ids: Vec<_> = server
        .events()
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["device_id"].as_str().unwrap(),
                e["insert_id"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        ids,
        ["device-1/a", "device-1/b", "device-2/a", "device-1/c"]
    );
    assert_eq!(
        server.device_order("device-1"),
        fingerprints(&["a", "b", "c"])
    );
    assert_eq!(server.device_order("device-2"), fingerprints(&["a"]));
    assert!(server.device_order("device-3").is_empty());
    assert_eq!(server.events_for_device("device-2").len(), 1);
}

#[test]
fn events_without_device_dedup_by_user() {
    let server = MockServer::start(Config::default().eps(0)).unwrap();
    let e = r#"{"event_type":"a","user_id":"user-1","insert_id":"x"}"#.to_owned();
    let other_user = r#"{"event_type":"a","user_id":"user-2","insert_id":"x"}"#.to_owned();
    let no_insert = r#"{"event_type":"a","user_id":"user-1"}"#.to_owned();
    let body = envelope(&[e.clone(), e, other_user, no_insert.clone(), no_insert]);
    assert_eq!(post(server.addr(), "/2/httpapi", &body).status, 200);
    let summary = server.summary();
    assert_eq!(summary.duplicates, 1);
    assert_eq!(summary.events_ingested, 4);
    assert_eq!(summary.users, 2);
}

#[test]
fn order_violations_are_counted_from_event_ids() {
    let server = MockServer::start(Config::default().eps(0)).unwrap();
    let with_id = |device: &str, insert: &str, id: i64| {
        format!(
            r#"{{"event_type":"a","device_id":"{device}","insert_id":"{insert}","event_id":{id}}}"#
        )
    };
    let events = [
        with_id("device-1", "a", 1),
        with_id("device-2", "b", 9),
        with_id("device-1", "c", 2),
        with_id("device-1", "d", 2),
    ];
    assert_eq!(
        post(server.addr(), "/2/httpapi", &envelope(&events)).status,
        200
    );
    assert_eq!(server.summary().order_violations, 0);
    let late = [with_id("device-1", "e", 1), with_id("device-2", "f", 10)];
    assert_eq!(
        post(server.addr(), "/2/httpapi", &envelope(&late)).status,
        200
    );
    assert_eq!(server.summary().order_violations, 1);
}

#[test]
fn light_mode_keeps_only_what_dedup_and_order_need() {
    let server = MockServer::start(Config::default().eps(0).keep_events(false)).unwrap();
    let body = envelope(&events_for("device-1", "i", 3));
    assert_eq!(post(server.addr(), "/2/httpapi", &body).status, 200);
    assert_eq!(post(server.addr(), "/2/httpapi", &body).status, 200);
    let summary = server.summary();
    assert_eq!(summary.events_ingested, 3);
    assert_eq!(summary.duplicates, 3);
    assert!(server.events().is_empty());
    assert_eq!(
        server.device_order("device-1"),
        fingerprints(&["i-0", "i-1", "i-2"])
    );
    let resp = get(server.addr(), "/events");
    assert_eq!(resp.status, 409);
}

#[test]
fn events_endpoint_is_ndjson_in_ingest_order() {
    let server = MockServer::start(Config::default().eps(0)).unwrap();
    // A pretty-printed event must still come out on one line.
    let pretty = "{\n  \"event_type\": \"multi\",\n  \"device_id\": \"device-2\"\n}".to_owned();
    let body = envelope(&[event("device-1", "a"), pretty]);
    assert_eq!(post(server.addr(), "/2/httpapi", &body).status, 200);
    let resp = get(server.addr(), "/events");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<&str> = resp.text().split_terminator('\n').collect();
    assert_eq!(lines.len(), 2, "{}", resp.text());
    // Compact events come back byte for byte.
    assert_eq!(
        lines[0],
        r#"{"event_type":"test","device_id":"device-1","insert_id":"a"}"#
    );
    let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(
        second,
        serde_json::json!({"event_type": "multi", "device_id": "device-2"})
    );
}

#[test]
fn summary_endpoint_matches_the_library_summary() {
    let server = MockServer::start(Config::default().eps(0)).unwrap();
    post(
        server.addr(),
        "/2/httpapi",
        &envelope(&[event("device-1", "a")]),
    );
    post(server.addr(), "/2/httpapi", r#"{"events":[]}"#);
    let resp = get(server.addr(), "/summary");
    assert_eq!(resp.status, 200);
    let over_http: amplitude_mock::server::Summary = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(over_http, server.summary());
    assert_eq!(over_http.requests, 2);
    assert_eq!(
        resp.json()["responses"],
        serde_json::json!({"200": 1, "400": 1})
    );
}

#[test]
fn reset_forgets_everything() {
    let server = MockServer::start(Config::default().eps(0)).unwrap();
    let body = envelope(&[event("device-1", "a")]);
    post(server.addr(), "/2/httpapi", &body);
    let resp = post(server.addr(), "/reset", "");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), r#"{"code":200}"#);
    assert_eq!(server.summary(), Default::default());
    assert!(server.events().is_empty());
    // The insert_id is no longer known, so the same event is ingested again.
    post(server.addr(), "/2/httpapi", &body);
    assert_eq!(server.summary().duplicates, 0);
    assert_eq!(server.summary().events_ingested, 1);
    server.reset();
    assert_eq!(server.summary().requests, 0);
}

#[test]
fn concurrent_clients_are_all_counted() {
    let server = MockServer::start(Config::default().eps(0).keep_events(false)).unwrap();
    let addr = server.addr();
    let threads: Vec<_> = (0..6)
        .map(|t| {
            std::thread::spawn(move || {
                for r in 0..15 {
                    let body = envelope(&events_for(&format!("device-{t}"), &format!("r{r}"), 100));
                    assert_eq!(post(addr, "/2/httpapi", &body).status, 200);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let summary = server.stop();
    assert_eq!(summary.requests, 90);
    assert_eq!(summary.events_ingested, 9000);
    assert_eq!(summary.devices, 6);
    assert_eq!(summary.duplicates, 0);
}
