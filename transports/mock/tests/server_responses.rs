//! Every ingestion answer of the mock server, with literal bodies (spec §2, §3, §5).

mod server_support;

use amplitude_mock::server::{Config, MockServer};
use server_support::{envelope, event, get, gzip, post, request};

fn server() -> MockServer {
    MockServer::start(Config::default().eps(0)).expect("server starts")
}

#[test]
fn ok_response_has_the_spec_fields_and_a_date_header() {
    let server = server();
    let body = envelope(&[event("device-1", "a"), event("device-2", "b")]);
    let resp = post(server.addr(), "/2/httpapi", &body);
    assert_eq!(resp.status, 200);
    let prefix = format!(
        r#"{{"code":200,"events_ingested":2,"payload_size_bytes":{},"server_upload_time":"#,
        body.len()
    );
    assert!(resp.text().starts_with(&prefix), "{}", resp.text());
    let upload = resp.json()["server_upload_time"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(upload <= now && now - upload < 60_000, "{upload} vs {now}");
    let date = resp.header("date").expect("Date header");
    assert!(date.ends_with(" GMT"), "{date}");
    assert_eq!(resp.header("content-type"), Some("application/json"));
}

#[test]
fn empty_events_are_accepted() {
    let server = server();
    let resp = post(
        server.addr(),
        "/2/httpapi",
        r#"{"api_key":"k","events":[]}"#,
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["events_ingested"], 0);
}

#[test]
fn unknown_top_level_keys_and_options_are_accepted() {
    let server = server();
    let body = r#"{"api_key":"k","client_upload_time":"2026-01-01T00:00:00Z","options":{"min_id_length":1},"events":[{"event_type":"a","user_id":"u"}]}"#;
    let resp = post(server.addr(), "/2/httpapi", body);
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[test]
fn missing_api_key_is_a_missing_field() {
    let server = server();
    let resp = post(server.addr(), "/2/httpapi", r#"{"events":[]}"#);
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.text(),
        r#"{"code":400,"error":"Request missing required field","missing_field":"api_key"}"#
    );
}

#[test]
fn keys_are_case_sensitive() {
    let server = server();
    let resp = post(
        server.addr(),
        "/2/httpapi",
        r#"{"api_key":"k","Events":[]}"#,
    );
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.text(),
        r#"{"code":400,"error":"Request missing required field","missing_field":"events"}"#
    );
}

#[test]
fn events_that_are_not_an_array_name_the_field() {
    let server = server();
    let resp = post(
        server.addr(),
        "/2/httpapi",
        r#"{"api_key":"k","events":{}}"#,
    );
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["missing_field"], "events");
}

#[test]
fn unlisted_api_key_is_invalid() {
    let server = MockServer::start(Config::default().api_key("good-key")).unwrap();
    let resp = post(
        server.addr(),
        "/2/httpapi",
        r#"{"api_key":"my_api_key","events":[]}"#,
    );
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.text(),
        r#"{"code":400,"error":"Invalid API key: my_api_key"}"#
    );
    let resp = post(
        server.addr(),
        "/2/httpapi",
        r#"{"api_key":"good-key","events":[]}"#,
    );
    assert_eq!(resp.status, 200);
}

#[test]
fn empty_api_key_is_invalid_by_default() {
    let server = server();
    let resp = post(server.addr(), "/2/httpapi", r#"{"api_key":"","events":[]}"#);
    assert_eq!(resp.text(), r#"{"code":400,"error":"Invalid API key: "}"#);
}

#[test]
fn per_event_problems_are_listed_by_index() {
    let server = server();
    let events = [
        r#"{"event_type":"ok","device_id":"device-0"}"#,
        r#"{"device_id":"device-1","time":1.5}"#,
        r#"{"event_type":"no ids"}"#,
        r#"{"event_type":"short","device_id":"abc"}"#,
        r#"{"event_type":"rejected","user_id":"Anonymous"}"#,
        r#"{"event_type":"time","user_id":"user-5","time":"1396381378123"}"#,
        r#"{"event_type":"ok","user_id":"user-6","time":1396381378123}"#,
        r#""not an object""#,
        r#"{"event_type":"types","device_id":"device-8","price":"1","event_properties":[]}"#,
    ]
    .map(String::from);
    let resp = post(server.addr(), "/2/httpapi", &envelope(&events));
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.text(),
        concat!(
            r#"{"code":400,"error":"Request missing required field","#,
            r#""events_with_invalid_fields":{"event":[7],"event_properties":[8],"price":[8],"time":[1,5],"user_id":[4]},"#,
            r#""events_with_missing_fields":{"event_type":[1],"user_id or device_id":[2]},"#,
            r#""events_with_invalid_id_lengths":{"device_id":[3]}}"#
        )
    );
    // The whole request is refused: not even the valid events 0 and 6 are ingested.
    let summary = server.summary();
    assert_eq!(summary.events_ingested, 0);
    assert_eq!(summary.events_rejected, 9);
    assert_eq!(summary.events_invalid, 7);
    assert_eq!(summary.status(400), 1);
}

#[test]
fn short_ids_alone_get_the_id_length_error() {
    let server = server();
    let resp = post(
        server.addr(),
        "/2/httpapi",
        &envelope(&[r#"{"event_type":"a","device_id":"dev"}"#.to_owned()]),
    );
    assert_eq!(
        resp.text(),
        r#"{"code":400,"error":"Invalid id length for user_id or device_id","events_with_invalid_id_lengths":{"device_id":[0]}}"#
    );
}

#[test]
fn min_id_length_option_overrides_the_default() {
    let server = server();
    let body = r#"{"api_key":"k","events":[{"event_type":"a","device_id":"ab"}],"options":{"min_id_length":2}}"#;
    assert_eq!(post(server.addr(), "/2/httpapi", body).status, 200);
    let body = r#"{"api_key":"k","events":[{"event_type":"a","device_id":"ab"}],"options":{"min_id_length":3}}"#;
    assert_eq!(post(server.addr(), "/2/httpapi", body).status, 400);
    let body = r#"{"api_key":"k","events":[],"options":{"min_id_length":-1}}"#;
    assert_eq!(
        post(server.addr(), "/2/httpapi", body).text(),
        r#"{"code":400,"error":"Invalid options: min_id_length must be a non-negative integer"}"#
    );
}

#[test]
fn invalid_json_is_a_400() {
    let server = server();
    for body in ["", "not json", "[]", r#"{"api_key":"k","events":[}"#] {
        let resp = post(server.addr(), "/2/httpapi", body);
        assert_eq!(resp.status, 400, "{body:?}");
        assert!(
            resp.json()["error"]
                .as_str()
                .unwrap()
                .starts_with("Invalid JSON request body"),
            "{}",
            resp.text()
        );
    }
}

#[test]
fn batch_endpoint_takes_the_same_body() {
    let server = server();
    let resp = post(
        server.addr(),
        "/batch",
        &envelope(&[event("device-1", "a")]),
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["events_ingested"], 1);
    let resp = post(server.addr(), "/batch", r#"{"api_key":"k"}"#);
    assert_eq!(resp.json()["missing_field"], "events");
}

#[test]
fn gzip_bodies_are_decoded() {
    let server = server();
    let body = envelope(&[event("device-1", "a"), event("device-1", "b")]);
    let compressed = gzip(body.as_bytes());
    let resp = request(
        server.addr(),
        "POST",
        "/2/httpapi",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &compressed,
    )
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["payload_size_bytes"], body.len());
    let summary = server.summary();
    assert_eq!(summary.bytes_received, compressed.len() as u64);
    assert_eq!(summary.bytes_decompressed, body.len() as u64);
    assert_eq!(server.events()[1]["insert_id"], "b");
}

#[test]
fn corrupt_gzip_is_a_400() {
    let server = server();
    let resp = request(
        server.addr(),
        "POST",
        "/2/httpapi",
        &[("Content-Encoding", "gzip")],
        b"{\"api_key\":\"k\",\"events\":[]}",
    )
    .unwrap();
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.text(),
        r#"{"code":400,"error":"Invalid gzip request body"}"#
    );
}

#[test]
fn unknown_content_encoding_is_a_415() {
    let server = server();
    let resp = request(
        server.addr(),
        "POST",
        "/2/httpapi",
        &[("Content-Encoding", "br")],
        b"{}",
    )
    .unwrap();
    assert_eq!(resp.status, 415);
    assert_eq!(
        resp.text(),
        r#"{"code":415,"error":"Unsupported Content-Encoding: br"}"#
    );
}

#[test]
fn unknown_paths_and_methods() {
    let server = server();
    let resp = get(server.addr(), "/nope");
    assert_eq!(resp.status, 404);
    assert_eq!(resp.text(), r#"{"code":404,"error":"Not found"}"#);
    let resp = get(server.addr(), "/2/httpapi");
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("POST"));
    let resp = post(server.addr(), "/summary", "");
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("GET"));
    // None of these are ingestion requests.
    assert_eq!(server.summary().requests, 0);
}

#[tokio::test]
async fn works_from_a_tokio_test_too() {
    // Starting, using and dropping the server inside an async context is fine.
    let server = server();
    let addr = server.addr();
    let resp = tokio::task::spawn_blocking(move || {
        post(addr, "/2/httpapi", r#"{"api_key":"k","events":[]}"#)
    })
    .await
    .unwrap();
    assert_eq!(resp.status, 200);
    drop(server);
}
