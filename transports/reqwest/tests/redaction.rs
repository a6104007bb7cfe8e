//! The API key never appears in logs (captured at TRACE level) or in `Debug` output,
//! even when the server echoes it back in an error.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amplitude_mock::server::{Config, Fault, MockServer};
use amplitude_reqwest::{Event, Options, ReqwestTransport};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Metadata, Subscriber};

const KEY: &str = "sk-SECRET-0123456789abcdef";

/// Writes every span and event field, at every level, into a string.
struct Capture(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut out = self.0.lock().unwrap();
        out.push_str(span.metadata().name());
        span.record(&mut Fields(&mut out));
        out.push('\n');
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        values.record(&mut Fields(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut out = self.0.lock().unwrap();
        let _ = write!(
            out,
            "{} {}: ",
            event.metadata().level(),
            event.metadata().target()
        );
        event.record(&mut Fields(&mut out));
        out.push('\n');
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn the_api_key_is_never_logged_or_printed() {
    let logs = Arc::new(Mutex::new(String::new()));
    tracing::subscriber::set_global_default(Capture(logs.clone())).unwrap();

    // A server that refuses the key (and echoes it in its 400 body), then one that
    // accepts it after faults.
    let refusing = MockServer::start(Config::default().api_key("another-key")).unwrap();
    let options = Options::default()
        .server_url(refusing.http_v2_url())
        .retry_backoff(Duration::from_millis(5), Duration::from_millis(20));
    let mut debug = format!("{options:?}");
    let client = amplitude_reqwest::init(KEY, options).unwrap();
    client
        .log_event(Event::new("Login").user_id("user-0001"))
        .unwrap();
    let r = client.flush_blocking(Duration::from_secs(10)).unwrap();
    assert_eq!(r.rejected, 1);
    write!(debug, "{client:?} {r:?}").unwrap();
    client.shutdown_blocking(Duration::from_secs(5)).unwrap();

    let flaky = MockServer::start(Config::default()).unwrap();
    flaky.push_fault(Fault::Status(500)).unwrap();
    flaky.push_fault(Fault::Drop).unwrap();
    let client = amplitude_reqwest::init(
        KEY,
        Options::default()
            .server_url(flaky.http_v2_url())
            .retry_backoff(Duration::from_millis(5), Duration::from_millis(20)),
    )
    .unwrap();
    for i in 0..5 {
        let user = format!("user-{i:04}");
        client
            .log_event(Event::new("Login").user_id(&user))
            .unwrap();
    }
    let r = client.flush_blocking(Duration::from_secs(10)).unwrap();
    assert_eq!(r.delivered, 5, "{r}");
    write!(debug, "{client:?} {:?}", ReqwestTransport::new().unwrap()).unwrap();
    drop(client);

    let logs = logs.lock().unwrap();
    assert!(
        logs.contains("sender started"),
        "logs were captured:\n{logs}"
    );
    assert!(!logs.contains(KEY), "the key leaked into the logs:\n{logs}");
    assert!(
        !debug.contains(KEY),
        "the key leaked into Debug output: {debug}"
    );
}
