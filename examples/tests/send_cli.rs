//! The `send` CLI's contract: the summary line, exit codes, `line N: reason` reports,
//! stdin or file input, backpressure and the shutdown deadline — run as the built
//! binary against the local server.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use amplitude_mock::server::{Config, MockServer};
use serde_json::Value;

struct Run {
    code: i32,
    summary: Value,
    stdout: String,
    stderr: String,
}

fn input_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("amp-send-{}-{name}.ndjson", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn finish(out: Output) -> Run {
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let last = stdout.lines().last().unwrap_or("");
    let summary = serde_json::from_str(last).unwrap_or(Value::Null);
    Run {
        code: out.status.code().unwrap_or(-1),
        summary,
        stdout,
        stderr,
    }
}

fn send(args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_send"));
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).unwrap();
    }
    finish(child.wait_with_output().unwrap())
}

fn counts(run: &Run) -> [u64; 7] {
    let s = &run.summary;
    [
        "read",
        "invalid",
        "accepted",
        "delivered",
        "rejected",
        "dropped",
        "pending",
    ]
    .map(|k| {
        s[k].as_u64()
            .unwrap_or_else(|| panic!("summary has {k}: {}", run.stdout))
    })
}

fn events(n: usize, devices: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"event_type":"Page Viewed","user_id":"user-{d:04}","device_id":"device-{d:04}","event_id":{i},"time":1767225600000,"event_properties":{{"i":{i},"tags":["a","b"],"ctx":{{"n":{i}}}}}}}"#,
                d = i % devices
            ) + "\n"
        })
        .collect()
}

#[test]
fn a_valid_file_is_delivered_and_summarised() {
    let server = MockServer::start(Config::default().eps(0)).unwrap();
    let path = input_file("valid", &events(500, 10));
    let url = server.http_v2_url();
    let run = send(
        &[
            "--api-key",
            "k",
            "--server-url",
            &url,
            "--input",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(counts(&run), [500, 0, 500, 500, 0, 0, 0]);
    let s = server.summary();
    assert_eq!(s.events_ingested, 500);
    assert_eq!(s.order_violations, 0);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn every_spec_field_and_property_shape_reaches_the_server() {
    let server = MockServer::start(Config::default()).unwrap();
    let line = r#"{"event_type":"Order Completed","user_id":"user-\"q\"-1","device_id":"device-0001","time":1767225600123,"insert_id":"ins-0001","session_id":1767225600000,"event_id":7,"location_lat":37.77,"location_lng":-122.39,"price":9.5,"revenue":19.25,"quantity":2,"productId":"sku-1","revenueType":"purchase","currency":"EUR","ip":"$remote","platform":"iOS","os_name":"ios","os_version":"18.1","app_version":"5.0.2","language":"de","country":"Germany","city":"Berlin","plan":{"branch":"main","source":"web","version":"3","versionId":"v3"},"ingestion_metadata":{"source_name":"cli","source_version":"1"},"$skip_user_properties_sync":false,"event_properties":{"cart":{"items":[{"sku":"a","n":1},{"sku":"b","n":null}]},"deep":[[[1]]]},"user_properties":{"$set":{"plan":"pro","seats":[1,2]},"$add":{"logins":1},"$unset":{"trial":"-"}},"groups":{"company":"acme","teams":["red","blue"]},"group_properties":{"$set":{"size":10}}}"#;
    let url = server.http_v2_url();
    let run = send(&["--api-key", "k", "--server-url", &url], Some(line));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let events = server.events();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    let expected: Value = serde_json::from_str(line).unwrap();
    for (k, v) in expected.as_object().unwrap() {
        assert_eq!(&e[k], v, "field {k}");
    }
}

#[test]
fn invalid_lines_are_reported_by_number_and_the_rest_are_sent() {
    let server = MockServer::start(Config::default()).unwrap();
    let text = [
        r#"{"event_type":"ok","user_id":"user-0001"}"#,
        r#"not json"#,
        r#"{"user_id":"user-0002"}"#,
        r#"{"event_type":"short id","user_id":"abc"}"#,
        r#"{"event_type":"float time","user_id":"user-0003","time":1.5}"#,
        r#"{"event_type":"unknown","user_id":"user-0004","colour":"red"}"#,
        "",
        r#"{"event_type":"not an object","user_id":"user-0005","event_properties":[1]}"#,
        r#"{"event_type":"ok too","device_id":"device-0001"}"#,
    ]
    .join("\n");
    let url = server.http_v2_url();
    let run = send(&["--api-key", "k", "--server-url", &url], Some(&text));
    assert_eq!(run.code, 1);
    assert_eq!(counts(&run), [8, 6, 2, 2, 0, 0, 0]);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 6, "{}", run.stderr);
    for (line, n) in lines.iter().zip([2, 3, 4, 5, 6, 8]) {
        assert!(line.starts_with(&format!("line {n}: ")), "{line}");
    }
    assert!(
        lines[1].contains("missing field `event_type`"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("user_id is shorter than 5 characters"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].contains("invalid type: floating point"),
        "{}",
        lines[3]
    );
    assert!(lines[4].contains("unknown field `colour`"), "{}", lines[4]);
    assert!(lines[5].contains("event_properties"), "{}", lines[5]);
    assert_eq!(server.summary().events_ingested, 2);
}

#[test]
fn rejected_events_make_the_exit_code_nonzero() {
    let server = MockServer::start(Config::default().api_key("the-right-key")).unwrap();
    let url = server.http_v2_url();
    let run = send(
        &["--api-key", "a-wrong-key", "--server-url", &url],
        Some(&events(20, 2)),
    );
    assert_eq!(run.code, 1);
    assert_eq!(counts(&run), [20, 0, 20, 0, 20, 0, 0]);
}

#[test]
fn an_unreachable_server_ends_in_dropped_events_and_a_nonzero_exit() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/2/httpapi");
    let started = Instant::now();
    let run = send(
        &["--api-key", "k", "--server-url", &url, "--max-retries", "1"],
        Some(&events(10, 2)),
    );
    assert_eq!(run.code, 1);
    assert_eq!(counts(&run), [10, 0, 10, 0, 0, 10, 0]);
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_full_queue_makes_reading_wait_instead_of_failing() {
    let server = MockServer::start(Config::default().eps(0)).unwrap();
    let url = server.http_v2_url();
    let run = send(
        &[
            "--api-key",
            "k",
            "--server-url",
            &url,
            "--queue-events",
            "16",
            "--flush-queue-size",
            "8",
        ],
        Some(&events(2000, 20)),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(counts(&run), [2000, 0, 2000, 2000, 0, 0, 0]);
    assert_eq!(server.summary().events_ingested, 2000);
}

#[test]
fn the_shutdown_timeout_bounds_the_run_and_what_is_left_is_dropped() {
    let server = MockServer::start(Config::default().stall(1.0, Duration::from_secs(10))).unwrap();
    let url = server.http_v2_url();
    let started = Instant::now();
    let run = send(
        &[
            "--api-key",
            "k",
            "--server-url",
            &url,
            "--request-timeout-ms",
            "5000",
            "--shutdown-timeout-ms",
            "300",
        ],
        Some(&events(30, 3)),
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(run.code, 1);
    assert_eq!(counts(&run), [30, 0, 30, 0, 0, 30, 0]);
}

#[test]
fn bad_arguments_and_unreadable_input_exit_with_2() {
    let run = send(&["--server-url", "http://127.0.0.1:9/2/httpapi"], Some(""));
    assert_eq!(run.code, 2, "missing --api-key");
    let run = send(
        &[
            "--api-key",
            "k",
            "--eu",
            "--server-url",
            "http://127.0.0.1:9/",
        ],
        Some(""),
    );
    assert_eq!(run.code, 2, "--eu conflicts with --server-url");
    let run = send(
        &[
            "--api-key",
            "k",
            "--input",
            "/nonexistent/amp-send-input.ndjson",
        ],
        None,
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("cannot open"), "{}", run.stderr);
    let run = send(&["--api-key", "k", "--flush-queue-size", "0"], Some(""));
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("flush_queue_size"), "{}", run.stderr);
}

#[test]
fn empty_input_sends_nothing_and_succeeds() {
    let server = MockServer::start(Config::default()).unwrap();
    let url = server.http_v2_url();
    let run = send(&["--api-key", "k", "--server-url", &url], Some("\n\n"));
    assert_eq!(run.code, 0);
    assert_eq!(counts(&run), [0; 7]);
    assert_eq!(server.summary().requests, 0);
}
