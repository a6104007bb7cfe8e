//! Fault injection: each kind scripted, random faults seeded, accounting.

mod server_support;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use amplitude_mock::server::{Config, Fault, MockServer};
use server_support::{HttpResponse, envelope, event, post, request, request_with_timeout};

fn send(server: &MockServer, insert_id: &str) -> std::io::Result<HttpResponse> {
    let body = envelope(&[event("device-1", insert_id)]);
    request(server.addr(), "POST", "/2/httpapi", &[], body.as_bytes())
}

fn server() -> MockServer {
    MockServer::start(Config::default().eps(0)).unwrap()
}

#[test]
fn status_fault_answers_without_ingesting() {
    let server = MockServer::start(Config::default().eps(0).retry_after(3)).unwrap();
    server.push_fault(Fault::Status(503)).unwrap();
    server.push_fault(Fault::Status(500)).unwrap();
    let resp = send(&server, "a").unwrap();
    assert_eq!(resp.status, 503);
    assert_eq!(resp.text(), r#"{"code":503,"error":"Service unavailable"}"#);
    assert_eq!(resp.header("retry-after"), Some("3"));
    assert!(resp.header("date").is_some());
    let resp = send(&server, "a").unwrap();
    assert_eq!(
        resp.text(),
        r#"{"code":500,"error":"Internal server error"}"#
    );
    assert_eq!(resp.header("retry-after"), None);
    assert_eq!(server.summary().events_ingested, 0);
    // Queued faults are used up; the next request goes through.
    assert_eq!(send(&server, "a").unwrap().status, 200);
    let summary = server.summary();
    assert_eq!(summary.events_ingested, 1);
    assert_eq!(summary.faults.fail_before_ingest, 2);
    assert_eq!(summary.faults.total(), 2);
}

#[test]
fn gateway_errors_have_non_json_bodies() {
    let server = server();
    server.push_fault(Fault::Status(502)).unwrap();
    let resp = send(&server, "a").unwrap();
    assert_eq!(resp.status, 502);
    assert_eq!(resp.header("content-type"), Some("text/html"));
    assert!(serde_json::from_slice::<serde_json::Value>(&resp.body).is_err());
}

#[test]
fn failure_after_ingest_is_the_ambiguous_case() {
    let server = server();
    server.push_fault(Fault::StatusAfterIngest(500)).unwrap();
    let resp = send(&server, "a").unwrap();
    assert_eq!(resp.status, 500);
    // The events were ingested although the client saw a 500…
    assert_eq!(server.summary().events_ingested, 1);
    // …so the client's resend (same insert_id) is a duplicate.
    assert_eq!(send(&server, "a").unwrap().status, 200);
    let summary = server.summary();
    assert_eq!(summary.events_ingested, 1);
    assert_eq!(summary.duplicates, 1);
    assert_eq!(summary.faults.fail_after_ingest, 1);
    assert_eq!(summary.status(500), 1);
}

#[test]
fn failure_after_ingest_leaves_refusals_alone() {
    let server = server();
    server.push_fault(Fault::StatusAfterIngest(500)).unwrap();
    let resp = post(server.addr(), "/2/httpapi", r#"{"events":[]}"#);
    assert_eq!(resp.status, 400);
    assert_eq!(server.summary().faults.total(), 0);
}

#[test]
fn stall_hangs_then_answers_504_without_ingesting() {
    let server = server();
    server
        .push_fault(Fault::Stall(Duration::from_millis(300)))
        .unwrap();
    let started = Instant::now();
    let resp = send(&server, "a").unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(resp.status, 504);
    let summary = server.summary();
    assert_eq!(summary.events_ingested, 0);
    assert_eq!(summary.faults.stall, 1);
}

#[test]
fn stall_outlasts_a_client_timeout() {
    let server = server();
    server
        .push_fault(Fault::Stall(Duration::from_secs(30)))
        .unwrap();
    let body = envelope(&[event("device-1", "a")]);
    let err = request_with_timeout(
        server.addr(),
        "POST",
        "/2/httpapi",
        &[],
        body.as_bytes(),
        Duration::from_millis(200),
    )
    .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    // Stopping the server cuts the stall short instead of waiting 30 s.
    let started = Instant::now();
    let summary = server.stop();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(summary.events_ingested, 0);
    assert_eq!(summary.faults.stall, 1);
}

#[test]
fn drop_closes_the_connection_without_a_response() {
    let server = server();
    server.push_fault(Fault::Drop).unwrap();
    let err = send(&server, "a").unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
        ),
        "{err}"
    );
    let summary = server.summary();
    assert_eq!(summary.faults.drop, 1);
    assert_eq!(summary.events_ingested, 0);
    assert_eq!(summary.requests, 1);
    assert!(summary.responses.is_empty());
    assert_eq!(send(&server, "a").unwrap().status, 200);
}

#[test]
fn faults_only_hit_ingestion_endpoints() {
    let server = MockServer::start(Config::default().drop_rate(1.0)).unwrap();
    assert_eq!(server_support::get(server.addr(), "/summary").status, 200);
    assert!(send(&server, "a").is_err());
}

#[test]
fn invalid_fault_statuses_are_refused() {
    let server = server();
    assert!(server.push_fault(Fault::Status(200)).is_err());
    assert!(server.push_fault(Fault::StatusAfterIngest(600)).is_err());
    assert!(server.push_fault(Fault::Status(403)).is_ok());
    let resp = send(&server, "a").unwrap();
    assert_eq!(resp.text(), r#"{"code":403,"error":"Forbidden"}"#);
}

/// Sends `n` requests one after another and returns each outcome: the status, or 0
/// for a dropped connection.
fn outcomes(server: &MockServer, n: usize) -> Vec<u16> {
    (0..n)
        .map(|i| send(server, &format!("i-{i}")).map_or(0, |r| r.status))
        .collect()
}

fn random_faults(seed: u64) -> Config {
    Config::default()
        .eps(0)
        .seed(seed)
        .fail_rate(0.2)
        .fail_after_ingest_rate(0.2)
        .drop_rate(0.1)
        .stall(0.05, Duration::from_millis(20))
}

#[test]
fn random_faults_are_reproducible_with_a_seed() {
    let a = MockServer::start(random_faults(42)).unwrap();
    let b = MockServer::start(random_faults(42)).unwrap();
    let c = MockServer::start(random_faults(43)).unwrap();
    let seq_a = outcomes(&a, 60);
    assert_eq!(seq_a, outcomes(&b, 60));
    assert_ne!(seq_a, outcomes(&c, 60));
    // After a reset the sequence starts over.
    a.reset();
    assert_eq!(seq_a, outcomes(&a, 60));

    let count = |s: u16| seq_a.iter().filter(|&&x| x == s).count() as u64;
    let summary = a.summary();
    assert_eq!(summary.faults.drop, count(0));
    assert!(summary.faults.drop > 0 && summary.faults.fail_after_ingest > 0);
    assert!(summary.faults.fail_before_ingest > 0);
    assert_eq!(summary.status(200), count(200));
    assert_eq!(
        summary.faults.total(),
        60 - count(200),
        "every non-200 outcome is a fault: {seq_a:?}"
    );
    // 200s and failures after ingest ingested their (distinct) events.
    assert_eq!(
        summary.events_ingested,
        count(200) + summary.faults.fail_after_ingest
    );
}
