//! The HTTP/1.1 layer: accept loop, routing, body reading, fault injection and
//! accounting around the pure validation in `request`.

use std::collections::VecDeque;
use std::fmt;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::config::{Config, EndpointLimits};
use super::faults::{self, Fault};
use super::reply::Reply;
use super::request::{self, Rules};
use super::state::{RateRules, State};

/// Bytes of an over-limit body the server still reads (and discards) so the client
/// can see the 413 instead of a reset connection; beyond this it stops reading.
const DRAIN_LIMIT: u64 = 256 * 1024 * 1024;

/// How long `stop` waits for open connections to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// State shared by the accept loop, every connection and the [`MockServer`](super::MockServer) handle.
pub(crate) struct Shared {
    pub config: Config,
    state: Mutex<State>,
    seq: AtomicU64,
    script: Mutex<VecDeque<Fault>>,
    shutdown: watch::Receiver<bool>,
}

impl Shared {
    pub fn new(config: Config, shutdown: watch::Receiver<bool>) -> Self {
        let keep = config.keep_events;
        Self {
            config,
            state: Mutex::new(State::new(keep)),
            seq: AtomicU64::new(0),
            script: Mutex::new(VecDeque::new()),
            shutdown,
        }
    }

    /// The state, even if a thread panicked while holding it (the counters stay usable).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn script(&self) -> MutexGuard<'_, VecDeque<Fault>> {
        self.script.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn push_fault(&self, fault: Fault) {
        self.script().push_back(fault);
    }

    /// Forgets everything: counters, events, de-duplication, windows, queued faults,
    /// and restarts the fault sequence.
    pub fn reset(&self) {
        let mut state = self.state();
        *state = State::new(self.config.keep_events);
        self.script().clear();
        self.seq.store(0, Ordering::SeqCst);
    }

    fn next_fault(&self) -> Option<Fault> {
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        if let Some(fault) = self.script().pop_front() {
            return Some(fault);
        }
        faults::draw(&self.config.faults, n)
    }
}

/// Error returned to hyper to close a connection without responding.
#[derive(Debug)]
struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DropConnection {}

type Resp = Response<Full<Bytes>>;

#[derive(Clone, Copy, Debug)]
enum Endpoint {
    HttpV2,
    Batch,
}

impl Endpoint {
    fn limits(self, config: &Config) -> EndpointLimits {
        match self {
            Self::HttpV2 => config.http_v2,
            Self::Batch => config.batch,
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::HttpV2 => "/2/httpapi",
            Self::Batch => "/batch",
        }
    }
}

/// Accepts connections until `shutdown` turns true, then closes idle connections,
/// lets in-flight requests finish (up to [`DRAIN_TIMEOUT`]) and returns.
pub(crate) async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("amplitude-mock-server: cannot listen: {e}");
            return;
        }
    };
    let mut connections = JoinSet::new();
    while !*shutdown.borrow() {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, shared.clone(), shutdown.clone()));
                }
                // Out of file descriptors and the like: back off briefly instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

async fn connection(stream: TcpStream, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| handle(shared.clone(), req));
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Resp, DropConnection> {
    let method = req.method().clone();
    match (method, req.uri().path()) {
        (Method::POST, "/2/httpapi") => ingest(&shared, Endpoint::HttpV2, req).await,
        (Method::POST, "/batch") => ingest(&shared, Endpoint::Batch, req).await,
        (Method::GET, "/summary") => {
            let summary = shared.state().snapshot();
            let body = serde_json::to_vec(&summary).unwrap_or_default();
            Ok(respond(200, "application/json", Bytes::from(body), None))
        }
        (Method::GET, "/events") => Ok(events_ndjson(&shared)),
        (Method::POST, "/reset") => {
            shared.reset();
            Ok(reply(Reply::plain_ok(), None))
        }
        (_, "/2/httpapi" | "/batch" | "/reset") => Ok(not_allowed("POST")),
        (_, "/summary" | "/events") => Ok(not_allowed("GET")),
        _ => Ok(reply(Reply::with_message(404, "Not found"), None)),
    }
}

fn not_allowed(allow: &'static str) -> Resp {
    let mut resp = reply(Reply::with_message(405, "Method not allowed"), None);
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

fn events_ndjson(shared: &Shared) -> Resp {
    let events: Vec<Bytes> = {
        let state = shared.state();
        if !state.keeps_events() {
            return reply(
                Reply::with_message(
                    409,
                    "Event retention is off (start the server with keep_events / --keep-events)",
                ),
                None,
            );
        }
        state.events().to_vec()
    };
    let mut out = Vec::with_capacity(events.iter().map(|e| e.len() + 1).sum());
    for event in &events {
        if event.iter().any(|&b| b == b'\n' || b == b'\r') {
            // Pretty-printed input: re-encode compactly so each event stays on one line.
            match serde_json::from_slice::<serde_json::Value>(event) {
                Ok(value) if serde_json::to_writer(&mut out, &value).is_ok() => {}
                _ => continue,
            }
        } else {
            out.extend_from_slice(event);
        }
        out.push(b'\n');
    }
    respond(200, "application/x-ndjson", Bytes::from(out), None)
}

fn respond(status: u16, content_type: &'static str, body: Bytes, retry_after: Option<u64>) -> Resp {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(secs) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

fn reply(reply: Reply, retry_after: Option<u64>) -> Resp {
    let retry_after = retry_after.filter(|_| matches!(reply.status, 429 | 503));
    respond(reply.status, reply.content_type, reply.body, retry_after)
}

enum Encoding {
    Identity,
    Gzip,
}

fn encoding(req: &Request<Incoming>) -> Result<Encoding, String> {
    let Some(value) = req.headers().get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let text = value.to_str().map_err(|_| "(non-ASCII)".to_owned())?.trim();
    if text.eq_ignore_ascii_case("gzip") || text.eq_ignore_ascii_case("x-gzip") {
        Ok(Encoding::Gzip)
    } else if text.is_empty() || text.eq_ignore_ascii_case("identity") {
        Ok(Encoding::Identity)
    } else {
        Err(text.to_owned())
    }
}

enum ReadBody {
    Complete(Bytes),
    /// Over the limit; carries the number of bytes seen.
    TooLarge(u64),
}

/// Reads the body, keeping at most `keep` bytes; a larger body is drained (up to
/// [`DRAIN_LIMIT`]) and reported as too large.
async fn read_body(mut body: Incoming, keep: usize) -> Result<ReadBody, hyper::Error> {
    let hint = body.size_hint().exact().unwrap_or(0);
    let mut buf = Vec::with_capacity(
        usize::try_from(hint)
            .unwrap_or(0)
            .min(keep.saturating_add(1)),
    );
    let mut seen: u64 = 0;
    let mut over = false;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        seen += data.len() as u64;
        if over {
            if seen > DRAIN_LIMIT {
                return Ok(ReadBody::TooLarge(seen));
            }
        } else if buf.len() + data.len() > keep {
            over = true;
            buf = Vec::new();
        } else {
            buf.extend_from_slice(&data);
        }
    }
    Ok(if over {
        ReadBody::TooLarge(seen)
    } else {
        ReadBody::Complete(Bytes::from(buf))
    })
}

enum Decoded {
    Body(Bytes),
    TooLarge,
    Invalid,
}

fn gunzip(body: &[u8], max: usize) -> Decoded {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max.saturating_add(1)));
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    match flate2::read::MultiGzDecoder::new(body)
        .take(limit)
        .read_to_end(&mut out)
    {
        Ok(_) if out.len() > max => Decoded::TooLarge,
        Ok(_) => Decoded::Body(Bytes::from(out)),
        Err(_) => Decoded::Invalid,
    }
}

/// What one ingestion request contributes to the summary.
#[derive(Default)]
struct Record {
    bytes_received: u64,
    bytes_decompressed: u64,
    status: Option<u16>,
    events_rejected: u64,
    events_invalid: u64,
    events_throttled: u64,
    events_throttled_listed: u64,
    events_too_large: u64,
    fault: Option<FaultKind>,
}

#[derive(Clone, Copy)]
enum FaultKind {
    Before,
    After,
    Stall,
    Drop,
}

impl Record {
    fn apply(&self, state: &mut State) {
        let s = &mut state.summary;
        s.requests += 1;
        s.bytes_received += self.bytes_received;
        s.bytes_decompressed += self.bytes_decompressed;
        s.events_rejected += self.events_rejected;
        s.events_invalid += self.events_invalid;
        s.events_throttled += self.events_throttled;
        s.events_throttled_listed += self.events_throttled_listed;
        s.events_too_large += self.events_too_large;
        match self.fault {
            Some(FaultKind::Before) => s.faults.fail_before_ingest += 1,
            Some(FaultKind::After) => s.faults.fail_after_ingest += 1,
            Some(FaultKind::Stall) => s.faults.stall += 1,
            Some(FaultKind::Drop) => s.faults.drop += 1,
            None => {}
        }
        if let Some(status) = self.status {
            state.count_status(status);
        }
    }
}

async fn ingest(
    shared: &Shared,
    endpoint: Endpoint,
    req: Request<Incoming>,
) -> Result<Resp, DropConnection> {
    let started = Instant::now();
    let config = &shared.config;
    let limits = endpoint.limits(config);
    let encoding = encoding(&req);
    let keep = match encoding {
        Ok(Encoding::Gzip) => limits
            .max_bytes
            .saturating_add(limits.max_bytes / 8)
            .saturating_add(4096),
        _ => limits.max_bytes,
    };
    // A client that goes away mid-body is not counted as a request.
    let body = read_body(req.into_body(), keep)
        .await
        .map_err(|_| DropConnection)?;
    let fault = shared.next_fault();
    let mut record = Record {
        bytes_received: match &body {
            ReadBody::Complete(b) => b.len() as u64,
            ReadBody::TooLarge(n) => *n,
        },
        ..Record::default()
    };
    let mut events_in_request = 0usize;

    let (out, ingested) = match fault {
        Some(Fault::Drop) => {
            record.fault = Some(FaultKind::Drop);
            record.apply(&mut shared.state());
            log(config, endpoint, "dropped", 0, &record, started);
            return Err(DropConnection);
        }
        Some(Fault::Stall(duration)) => {
            // Count the request now: the client may well give up (and hyper drop this
            // future) before the stall ends.
            record.fault = Some(FaultKind::Stall);
            record.apply(&mut shared.state());
            let mut shutdown = shared.shutdown.clone();
            let status = tokio::select! {
                _ = tokio::time::sleep(duration) => 504,
                _ = shutdown.changed() => 503,
            };
            shared.state().count_status(status);
            record.status = Some(status);
            log(config, endpoint, "", 0, &record, started);
            return Ok(reply(Reply::status(status), config.retry_after));
        }
        Some(Fault::Status(status)) => {
            record.fault = Some(FaultKind::Before);
            (Reply::status(status), false)
        }
        _ => process(
            shared,
            limits,
            encoding,
            body,
            fault,
            &mut record,
            &mut events_in_request,
        ),
    };
    record.status = Some(out.status);
    record.apply(&mut shared.state());
    let outcome = if ingested { "ingested" } else { "" };
    log(
        config,
        endpoint,
        outcome,
        events_in_request,
        &record,
        started,
    );
    Ok(reply(out, config.retry_after))
}

/// Decodes, validates, throttles and ingests one request. Returns the reply and
/// whether the events were ingested.
fn process(
    shared: &Shared,
    limits: EndpointLimits,
    encoding: Result<Encoding, String>,
    body: ReadBody,
    fault: Option<Fault>,
    record: &mut Record,
    events_in_request: &mut usize,
) -> (Reply, bool) {
    let config = &shared.config;
    let body = match body {
        ReadBody::Complete(body) => body,
        ReadBody::TooLarge(_) => return (Reply::too_large(), false),
    };
    let body = match encoding {
        Err(other) => return (Reply::unsupported_encoding(&other), false),
        Ok(Encoding::Identity) => body,
        Ok(Encoding::Gzip) => match gunzip(&body, limits.max_bytes) {
            Decoded::Body(decoded) => decoded,
            Decoded::TooLarge => {
                record.bytes_decompressed = limits.max_bytes as u64 + 1;
                return (Reply::too_large(), false);
            }
            Decoded::Invalid => return (Reply::bad_request("Invalid gzip request body"), false),
        },
    };
    record.bytes_decompressed = body.len() as u64;
    if body.len() > limits.max_bytes {
        return (Reply::too_large(), false);
    }

    let rules = Rules {
        max_events: limits.max_events,
        api_keys: &config.api_keys,
    };
    let accepted = match request::validate(&body, &rules) {
        Ok(accepted) => accepted,
        Err(refused) => {
            *events_in_request = refused.events;
            if refused.reply.status == 413 {
                record.events_too_large = refused.events as u64;
            } else {
                record.events_rejected = refused.events as u64;
                record.events_invalid = refused.listed as u64;
            }
            return (refused.reply, false);
        }
    };
    let count = accepted.events.len();
    *events_in_request = count;
    let rate_rules = RateRules {
        eps: limits.eps,
        window: config.eps_window,
        daily_quota: config.daily_quota,
    };

    let mut state = shared.state();
    if let Err(throttled) = state.admit(Instant::now(), &accepted.events, &rate_rules) {
        drop(state);
        record.events_throttled = count as u64;
        record.events_throttled_listed = throttled.throttled_events.len() as u64;
        return (Reply::throttled(&throttled), false);
    }
    state.ingest(&accepted.events, &body);
    drop(state);

    match fault {
        Some(Fault::StatusAfterIngest(status)) => {
            record.fault = Some(FaultKind::After);
            (Reply::status(status), true)
        }
        _ => (Reply::ok(count, body.len()), true),
    }
}

fn log(
    config: &Config,
    endpoint: Endpoint,
    outcome: &str,
    events: usize,
    record: &Record,
    started: Instant,
) {
    if !config.log_requests {
        return;
    }
    let status = record
        .status
        .map_or_else(|| "---".to_owned(), |s| s.to_string());
    let fault = match record.fault {
        Some(FaultKind::Before) => " fault=fail",
        Some(FaultKind::After) => " fault=fail-after-ingest",
        Some(FaultKind::Stall) => " fault=stall",
        Some(FaultKind::Drop) => " fault=drop",
        None => "",
    };
    eprintln!(
        "POST {} {status} events={events} bytes={} {:.1}ms{fault}{}{outcome}",
        endpoint.path(),
        record.bytes_received,
        started.elapsed().as_secs_f64() * 1000.0,
        if outcome.is_empty() { "" } else { " " },
    );
}
