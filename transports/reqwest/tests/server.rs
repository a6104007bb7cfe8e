//! The std client over loopback HTTP against the local Amplitude-compatible server:
//! delivery, runtimes, and every fault kind the server injects — with the invariants
//! checked on the server's side (each event ingested once, per-device order kept,
//! requests within the limits, only throttled devices paused).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use amplitude_mock::server::{Config, Fault, MockServer};
use amplitude_reqwest::{Client, Event, Options, Outcome, RejectReason};
use common::{Recorder, assert_delivered_exactly_once_in_order, fast_options, log_all, plan};

fn start(config: Config) -> MockServer {
    MockServer::start(config).expect("server starts")
}

fn client(server: &MockServer, rec: &Recorder, options: Options) -> Client {
    amplitude_reqwest::init(
        "test-key",
        rec.options(options.server_url(server.http_v2_url())),
    )
    .expect("client starts")
}

/// Log `planned`, flush, and check the delivery invariants.
fn run(config: Config, options: Options, planned: &[common::Planned]) -> MockServer {
    let server = start(config);
    let rec = Recorder::default();
    let c = client(&server, &rec, options);
    log_all(&c, planned);
    let r = c.flush_blocking(Duration::from_secs(60)).unwrap();
    assert!(r.is_settled(), "{r}");
    assert_delivered_exactly_once_in_order(&server, &c, &rec, planned);
    c.shutdown_blocking(Duration::from_secs(5)).unwrap();
    server
}

#[test]
fn delivers_over_loopback_with_batches_and_keep_alive() {
    let planned = plan("basic", &[50; 20]);
    let server = run(
        Config::default(),
        fast_options().flush_queue_size(200),
        &planned,
    );
    let s = server.summary();
    assert!(s.requests <= 12, "{s:?}");
    assert_eq!(s.duplicates, 0);
    assert_eq!(s.status(200), s.requests);
}

#[test]
fn retries_5xx_answers_given_before_ingesting() {
    let planned = plan("fail", &[40; 6]);
    let server = run(
        Config::default().seed(1).fail_rate(0.3),
        fast_options().flush_queue_size(30),
        &planned,
    );
    assert!(server.summary().faults.fail_before_ingest > 0);
}

#[test]
fn resends_after_5xx_given_after_ingesting_without_double_counting() {
    let planned = plan("after", &[40; 6]);
    let server = run(
        Config::default().seed(2).fail_after_ingest_rate(0.3),
        fast_options().flush_queue_size(30),
        &planned,
    );
    let s = server.summary();
    assert!(s.faults.fail_after_ingest > 0);
    assert!(s.duplicates > 0, "resent events were de-duplicated: {s:?}");
}

#[test]
fn times_out_stalled_requests_and_retries() {
    let planned = plan("stall", &[30; 5]);
    let server = run(
        Config::default()
            .seed(3)
            .stall(0.25, Duration::from_secs(3)),
        fast_options()
            .flush_queue_size(25)
            .request_timeout(Duration::from_millis(200)),
        &planned,
    );
    assert!(server.summary().faults.stall > 0);
}

#[test]
fn retries_dropped_connections() {
    let planned = plan("drop", &[40; 6]);
    let server = run(
        Config::default().seed(4).drop_rate(0.3),
        fast_options().flush_queue_size(30),
        &planned,
    );
    assert!(server.summary().faults.drop > 0);
}

#[test]
fn splits_batches_the_server_finds_too_large() {
    // The server takes at most 7 events or 3000 bytes; the client sends up to 40.
    let planned = plan("split", &[30; 4]);
    let server = run(
        Config::default().max_events(7).max_bytes(3000),
        fast_options().flush_queue_size(40),
        &planned,
    );
    let s = server.summary();
    assert!(s.status(413) > 0, "{s:?}");
}

#[test]
fn requests_stay_within_the_configured_limits() {
    // Server limits equal to the client's: not a single 413.
    let planned = plan("limits", &[40; 5]);
    let server = run(
        Config::default().max_events(50).max_bytes(6000),
        fast_options().flush_queue_size(50).max_request_bytes(6000),
        &planned,
    );
    let s = server.summary();
    assert_eq!(s.status(413), 0, "{s:?}");
    assert!(
        s.requests >= 200 * 200 / 6000,
        "byte limit forced small requests: {s:?}"
    );
}

#[test]
fn a_429_pauses_only_the_throttled_device() {
    // 40 events per device per second; the hot device logs 120, the others 10 each.
    let mut per_device = vec![120];
    per_device.extend([10; 8]);
    let planned = plan("hot", &per_device);
    let server = start(Config::default().eps(40).eps_window(Duration::from_secs(1)));
    let rec = Recorder::default();
    let c = client(&server, &rec, fast_options().flush_queue_size(30));
    let started = Instant::now();
    log_all(&c, &planned);
    let r = c.flush_blocking(Duration::from_secs(30)).unwrap();
    assert!(r.is_settled(), "{r}");
    assert_delivered_exactly_once_in_order(&server, &c, &rec, &planned);
    assert!(server.summary().status(429) > 0);
    let mut last: HashMap<String, Duration> = HashMap::new();
    for r in rec.all() {
        let device = r.json["device_id"].as_str().unwrap().to_owned();
        let at = r.at - started;
        let e = last.entry(device).or_default();
        *e = (*e).max(at);
    }
    let hot = last["hot-device-000"];
    let coolest = last
        .iter()
        .filter(|(d, _)| *d != "hot-device-000")
        .map(|(_, t)| *t)
        .max()
        .unwrap();
    assert!(
        hot >= Duration::from_secs(1) && coolest + Duration::from_millis(800) < hot,
        "other devices kept flowing while the hot one was paused: cool done at {coolest:?}, hot at {hot:?}"
    );
}

#[test]
fn every_fault_at_once() {
    let mut per_device = vec![90];
    per_device.extend([25; 9]);
    let planned = plan("chaos", &per_device);
    let server = run(
        Config::default()
            .seed(5)
            .fail_rate(0.1)
            .fail_after_ingest_rate(0.1)
            .stall(0.05, Duration::from_secs(2))
            .drop_rate(0.1)
            .max_events(20)
            .eps(60)
            .eps_window(Duration::from_secs(1))
            .retry_after(0),
        fast_options()
            .flush_queue_size(30)
            .max_retries(30)
            .request_timeout(Duration::from_millis(300)),
        &planned,
    );
    let s = server.summary();
    assert!(s.faults.total() > 0, "{s:?}");
    assert!(s.status(413) > 0, "{s:?}");
}

#[test]
fn a_refused_api_key_rejects_every_event_and_reports_it() {
    let server = start(Config::default().api_key("the-right-key"));
    let rec = Recorder::default();
    let c = client(&server, &rec, fast_options());
    for p in &plan("key", &[3]) {
        c.log_event(p.event()).unwrap();
    }
    let r = c.flush_blocking(Duration::from_secs(10)).unwrap();
    assert_eq!((r.rejected, r.pending), (3, 0), "{r}");
    assert_eq!(
        rec.count(|o| *o == Outcome::Rejected(RejectReason::InvalidApiKey)),
        3
    );
}

#[test]
fn retry_after_from_the_server_is_honoured() {
    let server = start(Config::default().retry_after(1));
    server.push_fault(Fault::Status(503)).unwrap();
    let rec = Recorder::default();
    let c = client(&server, &rec, fast_options());
    let started = Instant::now();
    c.log_event(Event::new("Wait").user_id("user-0001"))
        .unwrap();
    let r = c.flush_blocking(Duration::from_secs(10)).unwrap();
    assert_eq!(r.delivered, 1, "{r}");
    assert!(started.elapsed() >= Duration::from_millis(950));
}

#[test]
fn an_unreachable_server_ends_in_dropped_events_not_a_hang() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let rec = Recorder::default();
    let c = amplitude_reqwest::init(
        "test-key",
        rec.options(
            fast_options()
                .max_retries(2)
                .server_url(format!("http://127.0.0.1:{port}/2/httpapi")),
        ),
    )
    .unwrap();
    c.log_event(Event::new("Lost").user_id("user-0001"))
        .unwrap();
    let r = c.flush_blocking(Duration::from_secs(10)).unwrap();
    assert_eq!(r.dropped, 1, "{r}");
}

#[tokio::test(flavor = "current_thread")]
async fn the_sender_runs_on_a_current_thread_runtime() {
    let server = start(Config::default());
    let rec = Recorder::default();
    let c = client(
        &server,
        &rec,
        fast_options().runtime(tokio::runtime::Handle::current()),
    );
    let planned = plan("ct", &[20; 5]);
    log_all(&c, &planned);
    let r = c.flush().await;
    assert_eq!(r.delivered, 100, "{r}");
    let r = c.shutdown(Duration::from_secs(5)).await;
    assert_eq!(r.total(), 0);
    assert_eq!(server.summary().events_ingested, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_runs_on_a_multi_thread_runtime_and_logs_come_from_tasks() {
    let server = start(Config::default());
    let rec = Recorder::default();
    let c = client(
        &server,
        &rec,
        fast_options().runtime(tokio::runtime::Handle::current()),
    );
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let c = c.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    let user = format!("user-{t}-{i:03}");
                    c.log_event(Event::new("From Task").user_id(&user)).unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let r = c.flush().await;
    assert_eq!(r.delivered, 200, "{r}");
    assert_eq!(server.summary().events_ingested, 200);
}

#[test]
fn the_default_sender_thread_works_from_plain_code() {
    let server = start(Config::default());
    let rec = Recorder::default();
    let c = client(&server, &rec, fast_options());
    let planned = plan("plain", &[10; 3]);
    log_all(&c, &planned);
    drop(c); // the last handle's drop delivers what is queued
    assert_eq!(server.summary().events_ingested, 30);
    assert_eq!(rec.count(|o| *o == Outcome::Delivered), 30);
}
