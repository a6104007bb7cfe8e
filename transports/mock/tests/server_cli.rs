//! The `amplitude-mock-server` binary: address line, flags, summary on exit.

mod server_support;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};

use amplitude_mock::server::Summary;
use server_support::{envelope, event, events_for, post};

const BIN: &str = env!("CARGO_BIN_EXE_amplitude-mock-server");

/// Starts the binary and reads its address line.
fn spawn(args: &[&str]) -> (Child, BufReader<ChildStdout>, SocketAddr) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim_end()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let addr: SocketAddr = url.parse().unwrap();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);
    (child, stdout, addr)
}

fn final_summary(child: &mut Child, mut stdout: BufReader<ChildStdout>) -> Summary {
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    serde_json::from_str(rest.trim()).unwrap_or_else(|e| panic!("{e}: {rest:?}"))
}

#[test]
fn prints_the_summary_at_stdin_eof() {
    let (mut child, stdout, addr) = spawn(&["--exit-on-stdin-eof", "--eps", "0"]);
    let resp = post(
        addr,
        "/2/httpapi",
        &envelope(&[event("device-1", "a"), event("device-1", "a")]),
    );
    assert_eq!(resp.status, 200);
    drop(child.stdin.take());
    let summary = final_summary(&mut child, stdout);
    assert_eq!(summary.events_ingested, 1);
    assert_eq!(summary.duplicates, 1);
    // Without --quiet each request is logged to stderr.
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("POST /2/httpapi 200 events=2"), "{log}");
}

#[cfg(unix)]
#[test]
fn prints_the_summary_on_sigterm() {
    let (mut child, stdout, addr) = spawn(&[
        "--quiet",
        "--api-key",
        "k1",
        "--api-key",
        "k2",
        "--keep-events",
    ]);
    let body = |key: &str| {
        format!(
            r#"{{"api_key":"{key}","events":[{}]}}"#,
            event("device-1", key)
        )
    };
    assert_eq!(post(addr, "/2/httpapi", &body("k1")).status, 200);
    assert_eq!(post(addr, "/2/httpapi", &body("k2")).status, 200);
    assert_eq!(post(addr, "/2/httpapi", &body("k3")).status, 400);
    let events = server_support::get(addr, "/events");
    assert_eq!(events.text().lines().count(), 2);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let summary = final_summary(&mut child, stdout);
    assert_eq!(summary.events_ingested, 2);
    assert_eq!(summary.status(400), 1);
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.is_empty(), "--quiet still logged: {log}");
}

#[test]
fn limit_and_fault_flags_apply() {
    let (mut child, stdout, addr) = spawn(&[
        "--quiet",
        "--exit-on-stdin-eof",
        "--max-events",
        "2",
        "--eps",
        "1",
        "--eps-window-secs",
        "3",
        "--fail-rate",
        "0",
        "--retry-after",
        "5",
    ]);
    assert_eq!(
        post(
            addr,
            "/2/httpapi",
            &envelope(&events_for("device-1", "a", 3))
        )
        .status,
        413
    );
    assert_eq!(
        post(
            addr,
            "/2/httpapi",
            &envelope(&events_for("device-1", "b", 2))
        )
        .status,
        200
    );
    assert_eq!(
        post(
            addr,
            "/2/httpapi",
            &envelope(&events_for("device-1", "c", 1))
        )
        .status,
        200
    );
    let throttled = post(
        addr,
        "/2/httpapi",
        &envelope(&events_for("device-1", "d", 1)),
    );
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.header("retry-after"), Some("5"));
    drop(child.stdin.take());
    let summary = final_summary(&mut child, stdout);
    assert_eq!(summary.status(413), 1);
    assert_eq!(summary.status(429), 1);
}

#[test]
fn drop_rate_flag_drops_connections() {
    let (mut child, stdout, addr) = spawn(&[
        "--quiet",
        "--exit-on-stdin-eof",
        "--drop-rate",
        "1",
        "--seed",
        "9",
    ]);
    let body = envelope(&[event("device-1", "a")]);
    assert!(server_support::request(addr, "POST", "/2/httpapi", &[], body.as_bytes()).is_err());
    drop(child.stdin.take());
    assert_eq!(final_summary(&mut child, stdout).faults.drop, 1);
}

#[test]
fn bad_flags_fail_with_a_message() {
    let out = Command::new(BIN)
        .args(["--fail-rate", "1.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fail_rate must be between 0.0 and 1.0"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    let out = Command::new(BIN)
        .args(["--port", "not-a-port"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_documents_every_flag() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--port",
        "--host",
        "--api-key",
        "--eps",
        "--daily-quota",
        "--max-events",
        "--max-bytes",
        "--seed",
        "--fail-rate",
        "--fail-after-ingest-rate",
        "--stall-rate",
        "--stall-ms",
        "--drop-rate",
        "--retry-after",
        "--quiet",
        "--keep-events",
        "--exit-on-stdin-eof",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}
