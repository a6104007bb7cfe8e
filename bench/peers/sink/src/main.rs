//! Counting sink for the peer benchmark.
//!
//! An HTTP/1.1 server on 127.0.0.1 that answers every `POST` like Amplitude's HTTP V2
//! endpoint does on success (`{"code":200,"events_ingested":N,...}`) after counting the
//! events in the body, and exposes its counters at `GET /stats` (`POST /reset` zeroes
//! them). Every event's bytes are hashed so that resent events show up as
//! `duplicate_events`.
//!
//! Usage: `peer-bench-sink [--port P] [--threads T]`. Port 0 (the default) picks a free
//! port; the chosen address is printed as `LISTENING 127.0.0.1:P` on stdout.

use std::collections::HashSet;
use std::convert::Infallible;
use std::hash::{DefaultHasher, Hasher};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use peer_bench_sink::scan_events;
use tokio::net::TcpListener;

/// Largest body accepted (the Batch API's limit); larger ones get 413.
const MAX_BODY: usize = 20 * 1024 * 1024;

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    events: AtomicU64,
    body_bytes: AtomicU64,
    bad_requests: AtomicU64,
    gzip_requests: AtomicU64,
    connections: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    duplicate_events: AtomicU64,
    /// Hashes of every event body seen since the last reset (to spot resends).
    seen: Mutex<HashSet<u64>>,
}

impl Stats {
    fn reset(&self) {
        for a in [
            &self.requests,
            &self.events,
            &self.body_bytes,
            &self.bad_requests,
            &self.gzip_requests,
            &self.connections,
            &self.duplicate_events,
        ] {
            a.store(0, Ordering::Relaxed);
        }
        self.max_in_flight
            .store(self.in_flight.load(Ordering::Relaxed), Ordering::Relaxed);
        match self.seen.lock() {
            Ok(mut seen) => *seen = HashSet::new(),
            Err(poisoned) => *poisoned.into_inner() = HashSet::new(),
        }
    }

    fn json(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            concat!(
                "{{\"requests\":{},\"events\":{},\"body_bytes\":{},\"bad_requests\":{},",
                "\"gzip_requests\":{},\"connections\":{},\"in_flight\":{},\"max_in_flight\":{},",
                "\"duplicate_events\":{}}}"
            ),
            g(&self.requests),
            g(&self.events),
            g(&self.body_bytes),
            g(&self.bad_requests),
            g(&self.gzip_requests),
            g(&self.connections),
            g(&self.in_flight),
            g(&self.max_in_flight),
            g(&self.duplicate_events),
        )
    }
}

struct Args {
    port: u16,
    threads: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 0,
        threads: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--port" => args.port = val("--port")?.parse().map_err(|e| format!("--port: {e}"))?,
            "--threads" => {
                args.threads = val("--threads")?
                    .parse()
                    .map_err(|e| format!("--threads: {e}"))?;
                if args.threads == 0 {
                    return Err("--threads must be at least 1".into());
                }
            }
            "-h" | "--help" => {
                println!("usage: peer-bench-sink [--port P (0 = any)] [--threads T (default 2)]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(stats: &Stats, status: StatusCode, msg: &str) -> Response<Full<Bytes>> {
    stats.bad_requests.fetch_add(1, Ordering::Relaxed);
    let msg = msg.replace('\\', "\\\\").replace('"', "\\\"");
    json_response(
        status,
        format!("{{\"code\":{},\"error\":\"{msg}\"}}", status.as_u16()),
    )
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

async fn ingest(stats: &Stats, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let gzip = req
        .headers()
        .get(hyper::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let wire = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return error_response(
                stats,
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("body unreadable or over {MAX_BODY} bytes: {e}"),
            );
        }
    };
    let wire_len = wire.len();
    let body = if gzip {
        stats.gzip_requests.fetch_add(1, Ordering::Relaxed);
        let mut out = Vec::with_capacity(wire_len * 4);
        let dec = flate2::read::GzDecoder::new(&wire[..]).take(MAX_BODY as u64 + 1);
        let mut dec = dec;
        if let Err(e) = dec.read_to_end(&mut out) {
            return error_response(stats, StatusCode::BAD_REQUEST, &format!("bad gzip: {e}"));
        }
        if out.len() > MAX_BODY {
            return error_response(stats, StatusCode::PAYLOAD_TOO_LARGE, "Payload too large");
        }
        Bytes::from(out)
    } else {
        wire
    };
    let mut hashes = Vec::new();
    let scanned = scan_events(&body, |ev| {
        let mut h = DefaultHasher::new();
        h.write(ev);
        hashes.push(h.finish());
    });
    match scanned {
        Ok(s) if !s.has_api_key => error_response(
            stats,
            StatusCode::BAD_REQUEST,
            "Request missing required field",
        ),
        Ok(s) => {
            let dups = {
                let mut seen = stats.seen.lock().unwrap_or_else(|p| p.into_inner());
                hashes.into_iter().filter(|h| !seen.insert(*h)).count()
            };
            stats
                .duplicate_events
                .fetch_add(dups as u64, Ordering::Relaxed);
            stats.requests.fetch_add(1, Ordering::Relaxed);
            stats.events.fetch_add(s.events as u64, Ordering::Relaxed);
            stats
                .body_bytes
                .fetch_add(wire_len as u64, Ordering::Relaxed);
            json_response(
                StatusCode::OK,
                format!(
                    "{{\"code\":200,\"events_ingested\":{},\"payload_size_bytes\":{},\"server_upload_time\":{}}}",
                    s.events,
                    body.len(),
                    now_ms()
                ),
            )
        }
        Err(e) => error_response(stats, StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

async fn handle(
    stats: Arc<Stats>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() == Method::GET && req.uri().path() == "/stats" {
        return Ok(json_response(StatusCode::OK, stats.json()));
    }
    if req.method() == Method::POST && req.uri().path() == "/reset" {
        stats.reset();
        return Ok(json_response(StatusCode::OK, stats.json()));
    }
    if req.method() != Method::POST {
        return Ok(error_response(
            &stats,
            StatusCode::METHOD_NOT_ALLOWED,
            "only POST (ingest), GET /stats and POST /reset are served",
        ));
    }
    let now = stats.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    stats.max_in_flight.fetch_max(now, Ordering::Relaxed);
    let resp = ingest(&stats, req).await;
    stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    Ok(resp)
}

async fn serve(port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!("LISTENING {}", listener.local_addr()?);
    let stats = Arc::new(Stats::default());
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let (stream, _) = match accepted {
            Ok(x) => x,
            Err(e) => {
                eprintln!("sink: accept failed: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        stats.connections.fetch_add(1, Ordering::Relaxed);
        let stats = stats.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(stats.clone(), req));
            // Clients that close mid-request are not the sink's problem; ignore.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("peer-bench-sink: {e}");
            std::process::exit(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("peer-bench-sink: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(serve(args.port)) {
        eprintln!("peer-bench-sink: {e}");
        std::process::exit(1);
    }
}
