//! No-SDK floor for the peer benchmark.
//!
//! Reads an NDJSON file of events, pre-builds HTTP V2 request bodies of `--batch` events
//! each (the lines are copied verbatim into `{"api_key":…,"events":[…]}`), then posts
//! them to `--url` over keep-alive HTTP/1.1 connections, `--in-flight` requests at a time
//! (one per connection). No validation, no retries, no queue: the physical limit of the
//! machine and the sink. Prints one JSON summary line on stdout.
//!
//! Usage: `floor --url http://127.0.0.1:P/2/httpapi --input events.ndjson
//!         [--api-key K] [--batch 1000] [--in-flight 1]`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

struct Args {
    url: String,
    input: String,
    api_key: String,
    batch: usize,
    in_flight: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut url = None;
    let mut input = None;
    let mut api_key = "peer-bench-key".to_string();
    let mut batch = 1000usize;
    let mut in_flight = 1usize;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--url" => url = Some(val("--url")?),
            "--input" => input = Some(val("--input")?),
            "--api-key" => api_key = val("--api-key")?,
            "--batch" => {
                batch = val("--batch")?
                    .parse()
                    .map_err(|e| format!("--batch: {e}"))?
            }
            "--in-flight" => {
                in_flight = val("--in-flight")?
                    .parse()
                    .map_err(|e| format!("--in-flight: {e}"))?
            }
            "-h" | "--help" => {
                println!(
                    "usage: floor --url URL --input FILE [--api-key K] [--batch N] [--in-flight N]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if batch == 0 || in_flight == 0 {
        return Err("--batch and --in-flight must be at least 1".into());
    }
    if api_key.contains(['"', '\\']) {
        return Err("--api-key must not contain quotes or backslashes".into());
    }
    Ok(Args {
        url: url.ok_or("--url is required")?,
        input: input.ok_or("--input is required")?,
        api_key,
        batch,
        in_flight,
    })
}

/// Splits `http://host:port/path` into (`host:port`, `/path`). Only plain HTTP.
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// URLs are supported, got {url:?}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("no host in {url:?}"));
    }
    Ok((authority.to_string(), path.to_string()))
}

fn build_bodies(ndjson: &str, api_key: &str, batch: usize) -> (Vec<(Bytes, usize)>, usize) {
    let mut bodies = Vec::new();
    let mut total = 0usize;
    let head = format!("{{\"api_key\":\"{api_key}\",\"events\":[");
    let mut cur = String::new();
    let mut n = 0usize;
    for line in ndjson.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if n == 0 {
            cur.clear();
            cur.push_str(&head);
        } else {
            cur.push(',');
        }
        cur.push_str(line);
        n += 1;
        total += 1;
        if n == batch {
            cur.push_str("]}");
            bodies.push((Bytes::from(cur.clone()), n));
            n = 0;
        }
    }
    if n > 0 {
        cur.push_str("]}");
        bodies.push((Bytes::from(cur), n));
    }
    (bodies, total)
}

/// Pulls the next body index from `next` and posts it until all are sent.
async fn worker(
    authority: String,
    path: String,
    bodies: Arc<Vec<(Bytes, usize)>>,
    next: Arc<AtomicUsize>,
) -> Result<(usize, usize), String> {
    let stream = TcpStream::connect(&authority)
        .await
        .map_err(|e| format!("connect {authority}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let (mut events, mut requests) = (0usize, 0usize);
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some((body, n)) = bodies.get(i) else {
            return Ok((events, requests));
        };
        let req = Request::post(path.as_str())
            .header(hyper::header::HOST, authority.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body.clone()))
            .map_err(|e| format!("request: {e}"))?;
        sender
            .ready()
            .await
            .map_err(|e| format!("connection closed: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("request {i}: {e}"))?;
        let status = resp.status();
        let text = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("response {i}: {e}"))?
            .to_bytes();
        if status != StatusCode::OK {
            return Err(format!(
                "request {i}: HTTP {status}: {}",
                String::from_utf8_lossy(&text)
            ));
        }
        let want = format!("\"events_ingested\":{n}");
        if !String::from_utf8_lossy(&text).contains(&want) {
            return Err(format!(
                "request {i}: sink did not confirm {n} events: {}",
                String::from_utf8_lossy(&text)
            ));
        }
        events += n;
        requests += 1;
    }
}

async fn run(args: Args) -> Result<String, String> {
    let t0 = Instant::now();
    let (authority, path) = split_url(&args.url)?;
    let ndjson = std::fs::read_to_string(&args.input)
        .map_err(|e| format!("cannot read {}: {e}", args.input))?;
    let (bodies, total) = build_bodies(&ndjson, &args.api_key, args.batch);
    drop(ndjson);
    let build_s = t0.elapsed().as_secs_f64();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let t1 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.in_flight {
        tasks.push(tokio::spawn(worker(
            authority.clone(),
            path.clone(),
            bodies.clone(),
            next.clone(),
        )));
    }
    let (mut events, mut requests) = (0usize, 0usize);
    for t in tasks {
        let (e, r) = t.await.map_err(|e| format!("worker panicked: {e}"))??;
        events += e;
        requests += r;
    }
    let send_s = t1.elapsed().as_secs_f64();
    if events != total {
        return Err(format!("sent {events} of {total} events"));
    }
    Ok(format!(
        "{{\"events_read\":{total},\"events_sent\":{events},\"requests\":{requests},\"in_flight\":{},\"build_s\":{build_s:.4},\"send_s\":{send_s:.4}}}",
        args.in_flight
    ))
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("floor: {e}");
            std::process::exit(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("floor: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    match rt.block_on(run(args)) {
        Ok(summary) => println!("{summary}"),
        Err(e) => {
            eprintln!("floor: {e}");
            std::process::exit(1);
        }
    }
}
