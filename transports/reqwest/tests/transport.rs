//! `ReqwestTransport` on its own against the local server: status, headers, bounded
//! bodies, and how each failure maps onto the core's transport errors.

use std::time::Duration;

use amplitude_core::transport::{Request, Transport, TransportError};
use amplitude_mock::server::{Config, Fault, MockServer};
use amplitude_reqwest::ReqwestTransport;

const BODY: &[u8] = br#"{"api_key":"k","events":[{"event_type":"a","user_id":"user-0001"}]}"#;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn reads_status_date_and_body() {
    let server = MockServer::start(Config::default()).unwrap();
    let url = server.http_v2_url();
    let mut t = ReqwestTransport::new().unwrap();
    let mut buf = [0u8; 1024];
    let r = runtime()
        .block_on(t.send(
            Request {
                url: &url,
                body: BODY,
            },
            &mut buf,
        ))
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(!r.truncated);
    let body: serde_json::Value = serde_json::from_slice(r.body).unwrap();
    assert_eq!(body["events_ingested"], 1);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let date = r.date_ms.expect("Date header parsed");
    assert!(date.abs_diff(now_ms) < 5_000, "{date} vs {now_ms}");
}

#[test]
fn reads_retry_after_and_cuts_long_bodies_at_the_buffer() {
    let server = MockServer::start(Config::default().retry_after(7)).unwrap();
    server.push_fault(Fault::Status(503)).unwrap();
    let url = server.http_v2_url();
    let mut t = ReqwestTransport::new().unwrap();
    let mut buf = [0u8; 8];
    let r = runtime()
        .block_on(t.send(
            Request {
                url: &url,
                body: BODY,
            },
            &mut buf,
        ))
        .unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.retry_after_secs, Some(7));
    assert_eq!(r.body.len(), 8);
    assert!(r.truncated);
    // The connection stays usable.
    let mut big = [0u8; 256];
    let r = runtime()
        .block_on(t.send(
            Request {
                url: &url,
                body: BODY,
            },
            &mut big,
        ))
        .unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn maps_failures_onto_transport_errors() {
    let rt = runtime();
    let mut buf = [0u8; 256];
    let mut t = ReqwestTransport::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let send = |t: &mut ReqwestTransport, url: &str, buf: &mut [u8]| {
        rt.block_on(async {
            t.send(Request { url, body: BODY }, buf)
                .await
                .map(|r| r.status)
        })
    };

    assert_eq!(
        send(&mut t, "not a url", &mut buf),
        Err(TransportError::InvalidUrl)
    );
    assert_eq!(
        send(&mut t, "ftp://127.0.0.1/x", &mut buf),
        Err(TransportError::InvalidUrl)
    );

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    assert_eq!(
        send(
            &mut t,
            &format!("http://127.0.0.1:{port}/2/httpapi"),
            &mut buf
        ),
        Err(TransportError::Connect)
    );

    let server = MockServer::start(Config::default()).unwrap();
    let url = server.http_v2_url();
    server
        .push_fault(Fault::Stall(Duration::from_secs(3)))
        .unwrap();
    assert_eq!(send(&mut t, &url, &mut buf), Err(TransportError::Timeout));
    server.push_fault(Fault::Drop).unwrap();
    assert_eq!(send(&mut t, &url, &mut buf), Err(TransportError::Closed));
    assert_eq!(send(&mut t, &url, &mut buf), Ok(200));
}

#[cfg(feature = "gzip")]
#[test]
fn gzip_bodies_are_accepted_and_smaller() {
    let server = MockServer::start(Config::default()).unwrap();
    let url = server.http_v2_url();
    let mut t = ReqwestTransport::builder().gzip(true).build().unwrap();
    let events: Vec<String> = (0..50)
        .map(|i| format!(r#"{{"event_type":"Page Viewed","user_id":"user-{i:04}"}}"#))
        .collect();
    let body = format!(r#"{{"api_key":"k","events":[{}]}}"#, events.join(","));
    let mut buf = [0u8; 256];
    let r = runtime()
        .block_on(t.send(
            Request {
                url: &url,
                body: body.as_bytes(),
            },
            &mut buf,
        ))
        .unwrap();
    assert_eq!(r.status, 200);
    let s = server.summary();
    assert_eq!(s.events_ingested, 50);
    assert!(s.bytes_received * 3 < s.bytes_decompressed, "{s:?}");
}
