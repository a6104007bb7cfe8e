//! 413 limits on events and bytes, per endpoint, counted after decompression (spec §4).

mod server_support;

use amplitude_mock::server::{Config, MockServer};
use server_support::{envelope, event, events_for, gzip, post, request};

const TOO_LARGE: &str = r#"{"code":413,"error":"Payload too large"}"#;

/// `n` events spread over many devices so throttling never interferes.
fn spread_events(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| event(&format!("device-{:05}", i % 500), &format!("i-{i}")))
        .collect()
}

#[test]
fn http_v2_refuses_2000_events_and_accepts_1999() {
    let server = MockServer::start(Config::default().eps(0)).unwrap();
    let resp = post(server.addr(), "/2/httpapi", &envelope(&spread_events(2000)));
    assert_eq!(resp.status, 413);
    assert_eq!(resp.text(), TOO_LARGE);
    let resp = post(server.addr(), "/2/httpapi", &envelope(&spread_events(1999)));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let summary = server.summary();
    assert_eq!(summary.events_too_large, 2000);
    assert_eq!(summary.events_ingested, 1999);
    assert_eq!(summary.status(413), 1);
}

#[test]
fn http_v2_refuses_a_megabyte() {
    let server = MockServer::start(Config::default().eps(0)).unwrap();
    let filler = |n: usize| {
        format!(
            r#"{{"api_key":"k","events":[{{"event_type":"a","device_id":"device-1","event_properties":{{"pad":"{}"}}}}]}}"#,
            "x".repeat(n)
        )
    };
    let overhead = filler(0).len();
    let at_limit = filler(999_999 - overhead);
    assert_eq!(at_limit.len(), 999_999);
    assert_eq!(post(server.addr(), "/2/httpapi", &at_limit).status, 200);
    let over = filler(1_000_000 - overhead);
    let resp = post(server.addr(), "/2/httpapi", &over);
    assert_eq!(resp.status, 413);
    assert_eq!(resp.text(), TOO_LARGE);
    // The same megabyte is fine for the Batch API (20 MB).
    assert_eq!(post(server.addr(), "/batch", &over).status, 200);
}

#[test]
fn limits_are_configurable() {
    let server = MockServer::start(Config::default().eps(0).max_events(3).max_bytes(400)).unwrap();
    assert_eq!(
        post(
            server.addr(),
            "/2/httpapi",
            &envelope(&events_for("device-1", "a", 3))
        )
        .status,
        200
    );
    assert_eq!(
        post(
            server.addr(),
            "/2/httpapi",
            &envelope(&events_for("device-1", "b", 4))
        )
        .status,
        413
    );
    let big = envelope(&events_for("device-1", &"long-insert-id-".repeat(8), 3));
    assert!(big.len() > 400);
    assert_eq!(post(server.addr(), "/2/httpapi", &big).status, 413);
}

#[test]
fn batch_accepts_2000_events_and_refuses_2001() {
    let server = MockServer::start(Config::default().eps(0)).unwrap();
    assert_eq!(
        post(server.addr(), "/batch", &envelope(&spread_events(2000))).status,
        200
    );
    let resp = post(server.addr(), "/batch", &envelope(&spread_events(2001)));
    assert_eq!(resp.status, 413);
    assert_eq!(resp.text(), TOO_LARGE);
}

#[test]
fn gzip_limits_count_decompressed_bytes() {
    let server = MockServer::start(Config::default().eps(0)).unwrap();
    // Compresses to a few kilobytes, but is 2 MB once decompressed.
    let body = format!(
        r#"{{"api_key":"k","events":[{{"event_type":"a","device_id":"device-1","event_properties":{{"pad":"{}"}}}}]}}"#,
        "x".repeat(2_000_000)
    );
    let compressed = gzip(body.as_bytes());
    assert!(compressed.len() < 100_000);
    let resp = request(
        server.addr(),
        "POST",
        "/2/httpapi",
        &[("Content-Encoding", "gzip")],
        &compressed,
    )
    .unwrap();
    assert_eq!(resp.status, 413);
    assert_eq!(resp.text(), TOO_LARGE);
    assert_eq!(server.summary().events_ingested, 0);
}

#[test]
fn a_huge_body_still_gets_its_413() {
    // The server drains the over-limit body, so the client reads the answer instead
    // of a reset connection.
    let server = MockServer::start(Config::default().eps(0).max_bytes(1000)).unwrap();
    let body = vec![b' '; 5_000_000];
    let resp = request(server.addr(), "POST", "/2/httpapi", &[], &body).unwrap();
    assert_eq!(resp.status, 413);
    let summary = server.summary();
    assert_eq!(summary.bytes_received, 5_000_000);
    assert_eq!(summary.status(413), 1);
}
