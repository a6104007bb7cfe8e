//! Micro-benchmarks of the core's hot paths:
//!
//! - `log_event`: one pass-through middleware + validate + encode + enqueue into a
//!   `RamQueue`, for the seed's event and for a typical event with six mixed properties,
//!   next to `serde_json` serializing the same event (a derived struct with the same
//!   fields, and a `serde_json::Value`) into a reused buffer;
//! - `batch`: `next_request` building a request from a full queue (200 and 1999 events,
//!   1999 being the most a request may carry);
//! - `classify`: the spec's 200, 400 and 429 bodies.
//!
//! After criterion's own output, a summary table prints the medians and the ratio of
//! `log_event` to `serde_json`. Run with `core/benches/run.sh` or
//! `cargo bench -p amplitude-core --bench pipeline`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration as StdDuration, Instant as StdInstant, SystemTime};

use amplitude_core::client::{Client, prepare};
use amplitude_core::config::Config;
use amplitude_core::encode::{LIBRARY, Rng};
use amplitude_core::middleware::{Middleware, Next, Payload};
use amplitude_core::outcome::{DropReason, NoSink};
use amplitude_core::queue::{Batcher, RamQueue, Slot};
use amplitude_core::response::classify;
use amplitude_core::validate::Rules;
use amplitude_core::{Event, Value};
use criterion::{BatchSize, Criterion, criterion_group};
use embassy_time::Instant;
use serde::Serialize;

type BoxQueue = RamQueue<Box<[u8]>, Box<[Slot]>>;

/// Passes every event on untouched: the cost of running a middleware chain.
struct PassThrough;

impl Middleware for PassThrough {
    fn run<'p, 'a>(&mut self, payload: &mut Payload<'p, 'a>, next: Next<'_, 'p, 'a>) {
        next.run(payload)
    }
}

/// A queue whose memory has been written once (not lazily mapped zero pages), so that no
/// timed iteration pays for first-touch page faults.
fn queue(bytes: usize, events: usize) -> BoxQueue {
    RamQueue::new(
        vec![0xa5u8; bytes].into_boxed_slice(),
        vec![Slot::EMPTY; events].into_boxed_slice(),
    )
}

const INSERT_ID: &str = "5f0adeff-6668-4427-8d02-57d803a2b841";

// ---- the two events, as core events and as serde_json data -------------------------------

fn seed_event() -> Event<'static> {
    Event::new("Node.js Event")
        .user_id("datamonster@gmail.com")
        .location(37.77, -122.39)
        .ip("127.0.0.1")
        .property("keyString", "valueString")
        .property("keyInt", 11)
        .property("keyBool", true)
}

#[derive(Serialize)]
struct SeedProps {
    #[serde(rename = "keyString")]
    key_string: &'static str,
    #[serde(rename = "keyInt")]
    key_int: i64,
    #[serde(rename = "keyBool")]
    key_bool: bool,
}

/// The same JSON the core writes for the seed event (generated `insert_id` included).
#[derive(Serialize)]
struct SeedJson {
    event_type: &'static str,
    user_id: &'static str,
    insert_id: &'static str,
    location_lat: f64,
    location_lng: f64,
    library: &'static str,
    ip: &'static str,
    event_properties: SeedProps,
}

fn seed_json() -> SeedJson {
    SeedJson {
        event_type: "Node.js Event",
        user_id: "datamonster@gmail.com",
        insert_id: INSERT_ID,
        location_lat: 37.77,
        location_lng: -122.39,
        library: LIBRARY,
        ip: "127.0.0.1",
        event_properties: SeedProps {
            key_string: "valueString",
            key_int: 11,
            key_bool: true,
        },
    }
}

const ITEMS: [Value<'static>; 3] = [
    Value::Str("sku-1"),
    Value::Str("sku-2"),
    Value::Str("sku-3"),
];
const SHIPPING: [(&str, Value<'static>); 3] = [
    ("country", Value::Str("DE")),
    ("express", Value::Bool(true)),
    ("days", Value::Int(2)),
];

/// A typical event: ids, a session and six mixed properties (string, int, float, bool,
/// list, nested object).
fn typical_event() -> Event<'static> {
    Event::new("Checkout Completed")
        .user_id("user-48213")
        .device_id("C8F9E604-F01A-4BD9-95C6-8E5357DF265D")
        .session_id(1_396_381_370_000)
        .platform("iOS")
        .property("plan", "pro")
        .property("seats", 12)
        .property("total", 99.95)
        .property("trial", false)
        .property("items", Value::List(&ITEMS))
        .property("shipping", Value::Object(&SHIPPING))
}

#[derive(Serialize)]
struct Shipping {
    country: &'static str,
    express: bool,
    days: i64,
}

#[derive(Serialize)]
struct TypicalProps {
    plan: &'static str,
    seats: i64,
    total: f64,
    trial: bool,
    items: [&'static str; 3],
    shipping: Shipping,
}

#[derive(Serialize)]
struct TypicalJson {
    event_type: &'static str,
    user_id: &'static str,
    device_id: &'static str,
    insert_id: &'static str,
    session_id: i64,
    platform: &'static str,
    library: &'static str,
    event_properties: TypicalProps,
}

fn typical_json() -> TypicalJson {
    TypicalJson {
        event_type: "Checkout Completed",
        user_id: "user-48213",
        device_id: "C8F9E604-F01A-4BD9-95C6-8E5357DF265D",
        insert_id: INSERT_ID,
        session_id: 1_396_381_370_000,
        platform: "iOS",
        library: LIBRARY,
        event_properties: TypicalProps {
            plan: "pro",
            seats: 12,
            total: 99.95,
            trial: false,
            items: ["sku-1", "sku-2", "sku-3"],
            shipping: Shipping {
                country: "DE",
                express: true,
                days: 2,
            },
        },
    }
}

// ---- log_event ------------------------------------------------------------------------------

/// A client over a large queue.
fn log_client() -> Client<'static, BoxQueue> {
    Client::new(Config::new("API_KEY"), queue(LOG_ARENA, LOG_SLOTS), 1)
}

const LOG_SLOTS: usize = 4096;
const LOG_ARENA: usize = 4 << 20;

/// Time `iters` calls of `log_event` (the event cloned into each call, as a caller
/// building it would pass it); the queue is emptied, untimed, whenever it fills.
fn time_log_event(
    client: &mut Client<'static, BoxQueue>,
    event: &Event<'static>,
    iters: u64,
) -> StdDuration {
    let mut pass = PassThrough;
    let mut chain: [&mut dyn Middleware; 1] = [&mut pass];
    let now = Instant::from_millis(0);
    let mut total = StdDuration::ZERO;
    let mut left = iters;
    while left > 0 {
        if client.queue().len() == LOG_SLOTS {
            client.drop_all(DropReason::Shutdown, &mut NoSink);
        }
        let n = left.min((LOG_SLOTS - client.queue().len()) as u64);
        let start = StdInstant::now();
        for _ in 0..n {
            let r = client.log_event(
                now,
                black_box(event.clone()),
                &mut chain[..],
                None,
                &mut NoSink,
            );
            black_box(r).expect("queued");
        }
        total += start.elapsed();
        left -= n;
    }
    total
}

/// The serde_json baselines write the very JSON the core writes (but for the generated
/// `insert_id`): a fair comparison.
fn assert_same_json(event: &Event<'static>, baseline: &impl Serialize) {
    let mut buf = [0u8; 2048];
    let ours = prepare(event, &Rules::default(), &mut Rng::new(3), &mut buf).expect("valid");
    let mut ours: serde_json::Value = serde_json::from_slice(ours.json).unwrap();
    let theirs = serde_json::to_value(baseline).unwrap();
    ours["insert_id"] = theirs["insert_id"].clone();
    assert_eq!(ours, theirs, "the baseline serializes another event");
}

fn bench_log_event(c: &mut Criterion) {
    assert_same_json(&seed_event(), &seed_json());
    assert_same_json(&typical_event(), &typical_json());
    let mut g = c.benchmark_group("log_event");
    let mut client = log_client();
    for (name, event) in [("seed", seed_event()), ("typical", typical_event())] {
        g.bench_function(format!("{name}/amplitude"), |b| {
            b.iter_custom(|iters| time_log_event(&mut client, &event, iters))
        });
    }
    let mut out = Vec::with_capacity(1024);
    let seed = seed_json();
    g.bench_function("seed/serde_json_struct", |b| {
        b.iter(|| {
            out.clear();
            serde_json::to_writer(&mut out, black_box(&seed)).unwrap();
            black_box(&out);
        })
    });
    let typical = typical_json();
    g.bench_function("typical/serde_json_struct", |b| {
        b.iter(|| {
            out.clear();
            serde_json::to_writer(&mut out, black_box(&typical)).unwrap();
            black_box(&out);
        })
    });
    let seed_value = serde_json::to_value(seed_json()).unwrap();
    let typical_value = serde_json::to_value(typical_json()).unwrap();
    for (name, value) in [("seed", &seed_value), ("typical", &typical_value)] {
        g.bench_function(format!("{name}/serde_json_value"), |b| {
            b.iter(|| {
                out.clear();
                serde_json::to_writer(&mut out, black_box(value)).unwrap();
                black_box(&out);
            })
        });
    }
    g.finish();
}

// ---- batch building -----------------------------------------------------------------------

fn full_client(n: usize) -> Client<'static, BoxQueue> {
    let config = Config::new("API_KEY")
        .flush_queue_size(n as u16)
        .clock_offset_ms(1_700_000_000_000);
    let mut client = Client::new(config, queue(4 << 20, n), 7);
    for i in 0..n {
        let ev = seed_event().time(1_700_000_000_000 + i as i64 * (i % 2) as i64);
        client
            .log_event(
                Instant::from_millis(i as u64),
                ev,
                &mut (),
                None,
                &mut NoSink,
            )
            .expect("queued");
    }
    client
}

fn bench_batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch");
    g.sample_size(30);
    let mut buf = vec![0u8; 1_000_000];
    for n in [200usize, 1999] {
        g.bench_function(format!("next_request/{n}"), |b| {
            b.iter_batched_ref(
                || full_client(n),
                |client| {
                    let out = client
                        .next_request(Instant::from_millis(n as u64), &mut buf, &mut NoSink)
                        .expect("a full batch is due");
                    assert_eq!(out.events, n);
                    black_box(out.request.body.len())
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

// ---- classification -----------------------------------------------------------------------

const BODIES: [(&str, u16, &str); 5] = [
    (
        "200",
        200,
        r#"{"code":200,"events_ingested":50,"payload_size_bytes":50,"server_upload_time":1396381378123}"#,
    ),
    (
        "400_missing_field",
        400,
        r#"{"code":400,"error":"Request missing required field","missing_field":"api_key","events_with_invalid_fields":{"time":[3,4,7]},"events_with_missing_fields":{"event_type":[3,4,7]}}"#,
    ),
    (
        "400_id_length",
        400,
        r#"{"code":400,"events_with_invalid_id_lengths":{"device_id":[0]},"error":"Invalid id length for user_id or device_id"}"#,
    ),
    (
        "400_api_key",
        400,
        r#"{"code":400,"error":"Invalid API key: my_api_key"}"#,
    ),
    (
        "429",
        429,
        r#"{"code":429,"error":"Too many requests for some devices and users","eps_threshold":30,"throttled_devices":{"C8F9E604-F01A-4BD9-95C6-8E5357DF265D":31},"throttled_users":{"datamonster@amplitude.com":32},"throttled_events":[3,4,7],"exceeded_daily_quota_users":{"datanom@amplitude.com":500200},"exceeded_daily_quota_devices":{"A1A1A000-F01A-4BD9-95C6-8E5357DF265D":500900}}"#,
    ),
];

fn bench_classify(c: &mut Criterion) {
    let mut g = c.benchmark_group("classify");
    for (name, status, body) in BODIES {
        g.bench_function(name, |b| {
            b.iter(|| black_box(classify(black_box(status), black_box(body.as_bytes()))))
        });
    }
    g.finish();
}

// ---- summary --------------------------------------------------------------------------------

/// Medians (ns) of the benchmarks measured since `since`, read back from criterion's
/// saved estimates (`<id dir>/new/{benchmark,estimates}.json`).
fn medians(dir: &Path, since: SystemTime, out: &mut Vec<(String, f64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.ends_with("new") {
            let est = p.join("estimates.json");
            let fresh = std::fs::metadata(&est)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since);
            let read = |f: &Path| -> Option<serde_json::Value> {
                serde_json::from_slice(&std::fs::read(f).ok()?).ok()
            };
            if let (true, Some(b), Some(est)) = (fresh, read(&p.join("benchmark.json")), read(&est))
                && let (Some(id), Some(ns)) = (
                    b["full_id"].as_str(),
                    est["median"]["point_estimate"].as_f64(),
                )
            {
                out.push((id.to_owned(), ns));
            }
        } else if p.is_dir() {
            medians(&p, since, out);
        }
    }
}

fn criterion_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("CRITERION_HOME") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(d).join("criterion"));
    }
    // <target>/<profile>/deps/<bench binary>
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.join("criterion"))
}

fn summary(started: SystemTime) {
    let Some(dir) = criterion_dir() else { return };
    let mut all = Vec::new();
    medians(&dir, started, &mut all);
    let get = |id: &str| all.iter().find(|(i, _)| i == id).map(|(_, ns)| *ns);
    let fmt = |ns: Option<f64>| ns.map_or("-".to_owned(), |ns| format!("{ns:.0} ns"));
    eprintln!("\nSummary (criterion medians)");
    eprintln!(
        "{:<10} {:>12} {:>18} {:>17} {:>14} {:>13}",
        "log_event",
        "amplitude",
        "serde_json struct",
        "serde_json Value",
        "ratio/struct",
        "ratio/Value"
    );
    for name in ["seed", "typical"] {
        let ours = get(&format!("log_event/{name}/amplitude"));
        let st = get(&format!("log_event/{name}/serde_json_struct"));
        let va = get(&format!("log_event/{name}/serde_json_value"));
        let ratio = |b: Option<f64>| match (ours, b) {
            (Some(o), Some(b)) => format!("{:.2}x", o / b),
            _ => "-".into(),
        };
        eprintln!(
            "{:<10} {:>12} {:>18} {:>17} {:>14} {:>13}",
            name,
            fmt(ours),
            fmt(st),
            fmt(va),
            ratio(st),
            ratio(va)
        );
    }
    for n in [200, 1999] {
        let t = get(&format!("batch/next_request/{n}"));
        let per = t.map_or("-".into(), |t| format!("{:.1} ns/event", t / n as f64));
        eprintln!("batch of {n:<5} {:>14}  ({per})", fmt(t));
    }
    for (name, _, _) in BODIES {
        eprintln!(
            "classify {name:<18} {:>10}",
            fmt(get(&format!("classify/{name}")))
        );
    }
}

criterion_group!(benches, bench_log_event, bench_batch, bench_classify);

fn main() {
    let started = SystemTime::now();
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary(started);
}
