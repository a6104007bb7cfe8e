//! `middleware`: the four kinds of middleware, runnable.
//!
//! ```text
//! cargo run -p amplitude-examples --bin middleware
//! ```
//!
//! Each middleware gets the payload (`event`, plus `extra` data passed with
//! `log_event_with`) and `next`. Calling `next.run(payload)` passes the event on;
//! returning without calling it stops the event. They run in the order added, before
//! validation, on the thread that logs.
//!
//! 1. **Logging**: print what goes through.
//! 2. **Filtering**: drop events nobody should see (debug events, test users).
//! 3. **Modifying**: enrich events (a property, the app version, the country from the
//!    request context in `extra`) and remove personal data (the IP address).
//! 4. **Routing a copy**: send a copy of purchase events to a second destination.
//!
//! Two local Amplitude-compatible servers stand in for the two destinations; the
//! program checks what each one received and exits 0 when it is what the middleware
//! promised.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use amplitude_core::event::StrField;
use amplitude_examples::sample::Sampler;
use amplitude_mock::server::{Config, MockServer};
use amplitude_reqwest::{Client, Event, Options, Target};

/// Request context a web handler would pass along with its events.
struct RequestContext {
    country: &'static str,
}

fn start() -> Result<(MockServer, Client), String> {
    let server = MockServer::start(Config::default()).map_err(|e| e.to_string())?;
    let client = amplitude_reqwest::init(
        "middleware-example-key",
        Options::default().server_url(server.http_v2_url()),
    )
    .map_err(|e| e.to_string())?;
    Ok((server, client))
}

fn run() -> Result<bool, String> {
    let (main_server, client) = start()?;
    let (copy_server, copies) = start()?;

    // 1. Logging.
    let logged = Arc::new(AtomicU64::new(0));
    let n = logged.clone();
    client.add_event_middleware(move |payload, next| {
        if n.fetch_add(1, Ordering::Relaxed) < 3 {
            println!(
                "[log] {} user={} device={}",
                payload.event.event_type,
                payload.event.user_id.unwrap_or("-"),
                payload.event.device_id.unwrap_or("-"),
            );
        }
        next.run(payload);
    });

    // 2. Filtering: debug events and internal test users never leave the process.
    client.add_event_middleware(|payload, next| {
        let test_user = payload
            .event
            .user_id
            .is_some_and(|u| u.starts_with("test-"));
        if payload.event.event_type == "Debug" || test_user {
            return;
        }
        next.run(payload);
    });

    // 3. Modifying: enrich, and strip the IP address.
    client.add_event_middleware(|payload, next| {
        payload
            .event
            .push(Target::Event, "source", "backend".into());
        if payload.event.get_string(StrField::AppVersion).is_none() {
            *payload.event = payload.event.clone().app_version("5.0.2");
        }
        if let Some(ctx) = payload
            .extra
            .and_then(|x| x.downcast_ref::<RequestContext>())
        {
            *payload.event = payload.event.clone().country(ctx.country);
        }
        payload.event.clear_string(StrField::Ip);
        next.run(payload);
    });

    // 4. Routing a copy: purchases also go to a second project.
    let routing = copies.clone();
    client.add_event_middleware(move |payload, next| {
        if payload.event.event_type == "Order Completed" {
            if let Err(e) = routing.log_event(payload.event.clone()) {
                eprintln!("copy not accepted: {e}");
            }
        }
        next.run(payload);
    });

    let mut sampler = Sampler::new(7);
    let users = sampler.users(20);
    let (mut accepted, mut filtered, mut orders) = (0u64, 0u64, 0u64);
    for i in 0..500 {
        let sample = sampler.next_event(&users);
        let event = sample.event().ip("203.0.113.7");
        let result = if i % 2 == 0 {
            client.log_event_with(event, &RequestContext { country: "Germany" })
        } else {
            client.log_event(event)
        };
        match result {
            Ok(_) => {
                accepted += 1;
                orders += u64::from(sample.event_type == "Order Completed");
            }
            Err(amplitude_reqwest::LogError::Filtered) => filtered += 1,
            Err(e) => return Err(format!("event refused: {e}")),
        }
    }
    let test_event: Event = Event::new("Page Viewed").user_id("test-qa-robot");
    if client.log_event(test_event).is_ok() {
        return Err("the test user's event was not filtered".into());
    }
    filtered += 1;

    let main_report = client
        .flush_blocking(Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    let copy_report = copies
        .flush_blocking(Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    println!();
    println!(
        "logged {}, filtered {filtered}, accepted {accepted}",
        logged.load(Ordering::Relaxed)
    );
    println!("main project: {main_report}");
    println!("copies:       {copy_report}");

    let events = main_server.events();
    let all_enriched = events.iter().all(|e| {
        e["event_properties"]["source"] == "backend"
            && e.get("ip").is_none()
            && e["app_version"].is_string()
            && e["event_type"] != "Debug"
    });
    let with_country = events.iter().filter(|e| e["country"] == "Germany").count();
    let copied = copy_server.events();
    let only_orders = copied.iter().all(|e| e["event_type"] == "Order Completed");
    println!(
        "main server: {} events, enriched and without IP: {all_enriched}, with country from the request context: {with_country}",
        events.len()
    );
    println!(
        "copy server: {} events, all purchases: {only_orders}",
        copied.len()
    );
    Ok(events.len() as u64 == accepted
        && all_enriched
        && with_country > 0
        && copied.len() as u64 == orders
        && only_orders)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => {
            println!("OK");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!("MISMATCH");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("middleware: {e}");
            ExitCode::FAILURE
        }
    }
}
