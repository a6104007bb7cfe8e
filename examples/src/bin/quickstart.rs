//! `quickstart`: the SDK end to end in a few seconds.
//!
//! ```text
//! cargo run -p amplitude-examples --bin quickstart
//! AMPLITUDE_API_KEY=... cargo run -p amplitude-examples --bin quickstart [-- --eu | --server-url URL]
//! ```
//!
//! Without `AMPLITUDE_API_KEY` it starts a local Amplitude-compatible server on
//! loopback, logs the example event and a few thousand realistic events through two
//! middleware (one logs and counts, one drops "Debug" events), flushes, and prints
//! each outcome next to what the server ingested. Exit code 0 only if every accepted
//! event was delivered and the server ingested exactly those.
//!
//! With `AMPLITUDE_API_KEY` set it sends to Amplitude (US, `--eu`, or `--server-url`)
//! instead, a hundred events by default.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amplitude_examples::sample::Sampler;
use amplitude_mock::server::{Config, MockServer};
use amplitude_reqwest::{Event, LogError, Options, ServerZone};
use clap::Parser;

/// Log events to a local Amplitude-compatible server (or to Amplitude with
/// AMPLITUDE_API_KEY set) and check every outcome.
#[derive(Parser, Debug)]
#[command(name = "quickstart")]
struct Args {
    /// With AMPLITUDE_API_KEY: send to this URL instead of Amplitude's.
    #[arg(long, conflicts_with = "eu")]
    server_url: Option<String>,
    /// With AMPLITUDE_API_KEY: use Amplitude's EU data centre.
    #[arg(long)]
    eu: bool,
    /// Sample events to log after the example event [default: 3000 locally, 100 to Amplitude].
    #[arg(long)]
    events: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let api_key = std::env::var("AMPLITUDE_API_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    let mut options = Options::default().flush_interval(Duration::from_secs(1));
    let server = match &api_key {
        Some(_) => {
            if args.eu {
                options = options.server_zone(ServerZone::Eu);
            }
            if let Some(url) = &args.server_url {
                options = options.server_url(url.clone());
            }
            None
        }
        None => match MockServer::start(Config::default()) {
            Ok(server) => {
                options = options.server_url(server.http_v2_url());
                Some(server)
            }
            Err(e) => {
                eprintln!("quickstart: cannot start the local server: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    println!("sending to {}", options.url());

    // Every accepted event's final outcome, counted by kind.
    let outcomes: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let sink = outcomes.clone();
    options = options.on_outcome(move |report| {
        let mut map = sink.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(report.outcome.to_string()).or_default() += 1;
    });

    let client = match amplitude_reqwest::init(
        api_key.as_deref().unwrap_or("quickstart-local-key"),
        options,
    ) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("quickstart: {e}");
            return ExitCode::FAILURE;
        }
    };

    // Middleware 1: log the first few events, count them all.
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    client.add_event_middleware(move |payload, next| {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        if n < 3 {
            println!(
                "  [middleware] {} from {}",
                payload.event.event_type,
                payload.event.user_id.unwrap_or("-")
            );
        }
        next.run(payload);
    });
    // Middleware 2: drop debug events (not calling `next` stops the event).
    client.add_event_middleware(|payload, next| {
        if payload.event.event_type != "Debug" {
            next.run(payload);
        }
    });

    let started = Instant::now();
    let (mut accepted, mut filtered, mut refused) = (0u64, 0u64, 0u64);
    let mut count = |result: Result<_, LogError>| match result {
        Ok(_) => accepted += 1,
        Err(LogError::Filtered) => filtered += 1,
        Err(e) => {
            refused += 1;
            eprintln!("  not accepted: {e}");
        }
    };

    // The example event.
    let event: Event = Event::new("Node.js Event")
        .user_id("datamonster@gmail.com")
        .location(37.77, -122.39)
        .ip("127.0.0.1")
        .property("keyString", "valueString")
        .property("keyInt", 11)
        .property("keyBool", true);
    count(client.log_event(event));

    // Realistic events: 50 users, mixed event types and property shapes.
    let n = args
        .events
        .unwrap_or(if server.is_some() { 3000 } else { 100 });
    let mut sampler = Sampler::new(42);
    let users = sampler.users(50);
    for _ in 0..n {
        let sample = sampler.next_event(&users);
        count(client.log_event(sample.event()));
    }

    let report = match client.flush_blocking(Duration::from_secs(60)) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("quickstart: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _ = client.shutdown_blocking(Duration::from_secs(5));
    let elapsed = started.elapsed();
    let counters = client.counters();

    println!();
    println!(
        "logged {} events in {elapsed:.2?}",
        seen.load(Ordering::Relaxed)
    );
    println!("  filtered by middleware  {filtered:>6}");
    println!("  refused                 {refused:>6}");
    println!("  accepted                {accepted:>6}");
    println!("outcomes (from the outcome callback):");
    for (outcome, n) in outcomes.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        println!("  {outcome:<24}{n:>6}");
    }
    println!("flush: {report}");

    let mut ok = refused == 0
        && counters.accepted == accepted
        && counters.delivered == accepted
        && counters.pending() == 0;
    if let Some(server) = server {
        let summary = server.stop();
        println!("server:");
        println!("  requests                {:>6}", summary.requests);
        println!("  events ingested         {:>6}", summary.events_ingested);
        println!("  duplicates              {:>6}", summary.duplicates);
        ok &= summary.events_ingested == counters.delivered;
    }
    if ok {
        println!("OK: every accepted event was delivered exactly once");
        ExitCode::SUCCESS
    } else {
        println!("MISMATCH: see the counts above");
        ExitCode::FAILURE
    }
}
