//! End-to-end: the sink counts what the floor sends, flags resends, answers bad bodies
//! with 400, accepts gzip, and the rusage launcher reports a child's exit code.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

struct Sink {
    child: Child,
    port: u16,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sink() -> Sink {
    let mut child = Command::new(env!("CARGO_BIN_EXE_peer-bench-sink"))
        .args(["--port", "0", "--threads", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("sink starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("banner");
    let port = line
        .trim()
        .strip_prefix("LISTENING 127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected banner {line:?}"))
        .parse()
        .expect("port");
    Sink { child, port }
}

/// One HTTP/1.1 request on a fresh connection; returns (status, body).
fn http(port: u16, method: &str, path: &str, headers: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write head");
    s.write_all(body).expect("write body");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    let status = resp[9..12].parse().expect("status");
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn stat(port: u16, key: &str) -> u64 {
    let (status, body) = http(port, "GET", "/stats", "", b"");
    assert_eq!(status, 200);
    let at = body.find(&format!("\"{key}\":")).expect(key) + key.len() + 3;
    body[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .expect("number")
}

fn write_events(n: usize) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("peer-bench-test-{}.ndjson", std::process::id()));
    let mut f = std::fs::File::create(&path).expect("temp file");
    for i in 0..n {
        writeln!(
            f,
            r#"{{"event_type":"e","user_id":"user_{i:05}","time":{i},"event_properties":{{"s":"]}}","l":[1,{{"a":null}}]}}}}"#
        )
        .expect("write");
    }
    path
}

#[test]
fn floor_delivers_every_event_and_resends_show_as_duplicates() {
    let sink = start_sink();
    let events = write_events(2_345);
    let url = format!("http://127.0.0.1:{}/2/httpapi", sink.port);
    for in_flight in ["1", "3"] {
        let out = Command::new(env!("CARGO_BIN_EXE_floor"))
            .args(["--url", &url, "--input"])
            .arg(&events)
            .args(["--batch", "1000", "--in-flight", in_flight])
            .output()
            .expect("floor runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary = String::from_utf8_lossy(&out.stdout);
        assert!(summary.contains("\"events_sent\":2345"), "{summary}");
        assert!(summary.contains("\"requests\":3"), "{summary}");
    }
    assert_eq!(stat(sink.port, "events"), 4_690);
    assert_eq!(stat(sink.port, "requests"), 6);
    assert_eq!(stat(sink.port, "duplicate_events"), 2_345);
    let (status, _) = http(sink.port, "POST", "/reset", "", b"");
    assert_eq!(status, 200);
    assert_eq!(stat(sink.port, "events"), 0);
    let _ = std::fs::remove_file(events);
}

#[test]
fn bad_bodies_get_400_and_are_not_counted() {
    let sink = start_sink();
    for body in [
        &b"not json"[..],
        br#"{"api_key":"k"}"#,
        br#"{"events":[{"e":1}]}"#,
        br#"{"api_key":"k","events":[{"e":1}"#,
    ] {
        let (status, resp) = http(sink.port, "POST", "/2/httpapi", "", body);
        assert_eq!(status, 400, "{resp}");
        assert!(resp.contains("\"code\":400"), "{resp}");
    }
    assert_eq!(stat(sink.port, "events"), 0);
    assert_eq!(stat(sink.port, "bad_requests"), 4);
}

#[test]
fn gzip_bodies_are_counted() {
    let sink = start_sink();
    let body = br#"{"api_key":"k","events":[{"e":1},{"e":2},{"e":3}]}"#;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(body).expect("gzip");
    let gz = enc.finish().expect("gzip");
    let (status, resp) = http(
        sink.port,
        "POST",
        "/2/httpapi",
        "Content-Encoding: gzip\r\n",
        &gz,
    );
    assert_eq!(status, 200, "{resp}");
    assert!(resp.contains("\"events_ingested\":3"), "{resp}");
    assert_eq!(stat(sink.port, "gzip_requests"), 1);
}

#[test]
fn rusage_passes_the_exit_code_through_and_writes_json() {
    let out = std::env::temp_dir().join(format!("peer-bench-rusage-{}.json", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_rusage"))
        .arg(&out)
        .args(["--", "sh", "-c", "exit 7"])
        .status()
        .expect("rusage runs");
    assert_eq!(status.code(), Some(7));
    let json = std::fs::read_to_string(&out).expect("json written");
    assert!(json.contains("\"rc\":7"), "{json}");
    assert!(json.contains("\"maxrss_kb\":"), "{json}");
    let _ = std::fs::remove_file(out);
}
