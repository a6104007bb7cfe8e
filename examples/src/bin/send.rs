//! `send`: stream NDJSON events (one HTTP V2 event object per line) to Amplitude.
//!
//! ```text
//! send --api-key KEY [--server-url URL | --eu] [--batch] [--flush-queue-size N]
//!      [--flush-interval-ms MS] [--max-retries N] [--request-timeout-ms MS]
//!      [--throttle-pause-ms MS] [--min-id-length N] [--shutdown-timeout-ms MS]
//!      [--input PATH]
//! ```
//!
//! Reads stdin unless `--input` is given. A line that does not parse or validate is
//! reported on stderr as `line N: <reason>` and counted invalid; blank lines are
//! skipped. When the queue is full, reading waits for room (memory stays bounded).
//! At the end it flushes, shuts down, and prints as its last stdout line
//! `{"read":R,"invalid":I,"accepted":A,"delivered":D,"rejected":J,"dropped":X,"pending":P}`.
//! Exit code 0 iff invalid, rejected, dropped and pending are all 0; 1 otherwise;
//! 2 when it cannot start (bad arguments, unreadable input, bad options).

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use amplitude_examples::ndjson::with_event;
use amplitude_reqwest::{Client, LogError, Options, ServerZone};
use clap::Parser;

/// Send NDJSON events (one HTTP V2 event object per line) to Amplitude.
#[derive(Parser, Debug)]
#[command(name = "send", version)]
struct Args {
    /// The project's API key.
    #[arg(long)]
    api_key: String,
    /// Send to this URL instead of Amplitude's (e.g. a local server).
    #[arg(long, conflicts_with = "eu")]
    server_url: Option<String>,
    /// Use Amplitude's EU data centre.
    #[arg(long)]
    eu: bool,
    /// Use the Batch API instead of HTTP V2.
    #[arg(long)]
    batch: bool,
    /// Events per request (and the batch trigger), 1–2000.
    #[arg(long, default_value_t = 200)]
    flush_queue_size: u16,
    /// Send waiting events at the latest this long after they were read.
    #[arg(long, default_value_t = 10_000)]
    flush_interval_ms: u64,
    /// Failed attempts after which an event is dropped.
    #[arg(long, default_value_t = 12)]
    max_retries: u8,
    /// Time one request may take.
    #[arg(long, default_value_t = 10_000)]
    request_timeout_ms: u64,
    /// How long throttled users/devices are paused after a 429.
    #[arg(long, default_value_t = 30_000)]
    throttle_pause_ms: u64,
    /// Minimum user_id/device_id length.
    #[arg(long, default_value_t = 5)]
    min_id_length: u16,
    /// Time allowed for the final flush and shutdown; what is left is dropped.
    #[arg(long, default_value_t = 30_000)]
    shutdown_timeout_ms: u64,
    /// Requests in flight at once, 1–16.
    #[arg(long, default_value_t = 4)]
    max_in_flight: usize,
    /// Queue capacity in events; reading waits when it is full [default: a batch per
    /// request in flight plus one, at least 2048].
    #[arg(long)]
    queue_events: Option<usize>,
    /// Queue capacity in bytes of encoded events [default: 256 per event, at least 1 MiB].
    #[arg(long)]
    queue_bytes: Option<usize>,
    /// Read events from this file instead of stdin.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Benchmark mode: read every line into memory, queue them all with sending off, and
    /// print `{"held":N,"rss_before_kb":A,"rss_after_kb":B}` (memory per queued event);
    /// nothing is sent.
    #[arg(long)]
    hold: bool,
}

/// Resident set size of this process in KiB (Linux), 0 where unknown.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `--hold`: how much memory queued events take, with sending off.
fn hold(args: &Args, input: Box<dyn Read>) -> ExitCode {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for line in BufReader::new(input).split(b'\n') {
        match line {
            Ok(l) if !l.trim_ascii().is_empty() => lines.push(l),
            Ok(_) => {}
            Err(e) => {
                eprintln!("send: reading input failed: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let bytes: usize = lines.iter().map(Vec::len).sum();
    let options = options(args)
        .offline(true)
        // Encoding adds `insert_id` and `library`: room for twice the input.
        .queue_capacity(2 * bytes + (1 << 16), lines.len() + 1);
    let client = match amplitude_reqwest::init(&args.api_key, options) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("send: {e}");
            return ExitCode::from(2);
        }
    };
    let before = rss_kib();
    let mut held = 0u64;
    let mut refused = 0u64;
    for (i, line) in lines.iter().enumerate() {
        let reason = match with_event(line.trim_ascii(), |event| client.log_event(event)) {
            Ok(Ok(_)) => {
                held += 1;
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        refused += 1;
        if refused <= 10 {
            eprintln!("line {}: {reason}", i + 1);
        }
    }
    let after = rss_kib();
    let encoded = client.queued_bytes();
    let _ = client.shutdown_blocking(Duration::ZERO);
    println!(
        r#"{{"held":{held},"rss_before_kb":{before},"rss_after_kb":{after},"input_bytes":{bytes},"encoded_bytes":{encoded}}}"#
    );
    ExitCode::SUCCESS
}

fn options(a: &Args) -> Options {
    // Streaming needs little queue: what is in flight plus the batches being filled.
    let queue_events = a.queue_events.unwrap_or_else(|| {
        (usize::from(a.flush_queue_size) * (a.max_in_flight.min(16) + 1)).max(2048)
    });
    let queue_bytes = a
        .queue_bytes
        .unwrap_or_else(|| queue_events.saturating_mul(256).max(1 << 20));
    let mut o = Options::default()
        .use_batch(a.batch)
        .flush_queue_size(a.flush_queue_size)
        .flush_interval(Duration::from_millis(a.flush_interval_ms))
        .max_retries(a.max_retries)
        .request_timeout(Duration::from_millis(a.request_timeout_ms))
        .throttle_pause(Duration::from_millis(a.throttle_pause_ms))
        .min_id_length(a.min_id_length)
        .max_in_flight(a.max_in_flight)
        .queue_capacity(queue_bytes, queue_events)
        .drop_timeout(Duration::ZERO);
    if a.eu {
        o = o.server_zone(ServerZone::Eu);
    }
    if let Some(url) = &a.server_url {
        o = o.server_url(url.clone());
    }
    o
}

/// Shows progress on stderr when it is a terminal.
struct Progress {
    on: bool,
    last: Instant,
}

impl Progress {
    fn tick(&mut self, client: &Client, read: u64, invalid: u64) {
        if !self.on || self.last.elapsed() < Duration::from_millis(250) {
            return;
        }
        self.last = Instant::now();
        let c = client.counters();
        eprint!(
            "\rread {read}  invalid {invalid}  delivered {}  rejected {}  dropped {}  pending {}   ",
            c.delivered,
            c.rejected,
            c.dropped,
            c.pending()
        );
    }

    fn done(&self) {
        if self.on {
            eprintln!();
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let input: Box<dyn Read> = match &args.input {
        Some(path) => match File::open(path) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("send: cannot open {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        None => Box::new(io::stdin().lock()),
    };
    if args.hold {
        return hold(&args, input);
    }
    let client = match amplitude_reqwest::init(&args.api_key, options(&args)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("send: {e}");
            return ExitCode::from(2);
        }
    };
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let mut line = Vec::with_capacity(4096);
    let (mut number, mut read, mut invalid) = (0u64, 0u64, 0u64);
    let mut progress = Progress {
        on: io::stderr().is_terminal(),
        last: Instant::now(),
    };
    let stderr = io::stderr();
    let mut read_error = None;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
        number += 1;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        read += 1;
        // Wait as long as it takes for room: the sender always makes progress (every
        // event is eventually delivered, rejected or dropped).
        let result = with_event(text, |event| {
            client.log_event_wait(event, Duration::from_secs(24 * 3600))
        });
        let reason = match result {
            Ok(Ok(_)) => None,
            Ok(Err(LogError::Closed)) => {
                invalid += 1;
                let _ = writeln!(stderr.lock(), "line {number}: client stopped");
                break;
            }
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(reason) = reason {
            invalid += 1;
            let _ = writeln!(stderr.lock(), "line {number}: {reason}");
        }
        if read % 4096 == 0 {
            progress.tick(&client, read, invalid);
        }
    }
    let read_failed = read_error.is_some();
    if let Some(e) = read_error {
        eprintln!("send: reading input failed after line {number}: {e}");
    }
    let timeout = Duration::from_millis(args.shutdown_timeout_ms);
    let start = Instant::now();
    // Not on a runtime thread here, so the blocking calls cannot fail.
    if let Ok(report) = client.flush_blocking(timeout) {
        progress.tick(&client, read, invalid);
        if report.timed_out {
            eprintln!("send: flush timed out: {report}");
        }
    }
    let _ = client.shutdown_blocking(timeout.saturating_sub(start.elapsed()));
    progress.done();
    let c = client.counters();
    let pending = c.pending();
    println!(
        r#"{{"read":{read},"invalid":{invalid},"accepted":{},"delivered":{},"rejected":{},"dropped":{},"pending":{pending}}}"#,
        c.accepted, c.delivered, c.rejected, c.dropped
    );
    if invalid == 0 && c.rejected == 0 && c.dropped == 0 && pending == 0 && !read_failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
