//! `amplitude-mock-server`: a local Amplitude-compatible HTTP V2 / Batch server.
//!
//! Prints `listening on http://HOST:PORT` once bound, logs one line per ingestion
//! request to stderr (unless `--quiet`), and on SIGINT/SIGTERM (or end of stdin with
//! `--exit-on-stdin-eof`) prints the summary as one JSON line on stdout and exits 0.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::Duration;

use amplitude_mock::server::{Config, EndpointLimits, FaultConfig, MockServer};
use clap::Parser;

/// Local Amplitude-compatible HTTP server (POST /2/httpapi, POST /batch, GET /summary,
/// GET /events, POST /reset) with throttling, de-duplication and seeded fault injection.
///
/// Prints `listening on http://HOST:PORT` when ready; on SIGINT/SIGTERM prints the
/// summary JSON on stdout and exits 0.
#[derive(Parser, Debug)]
#[command(name = "amplitude-mock-server", version)]
struct Args {
    /// Address to bind (use a loopback address).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// Port to bind; 0 picks a free port (read it from the printed address).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Accepted API key; repeat for several. Without any, every non-empty key is accepted.
    #[arg(long = "api-key", value_name = "KEY")]
    api_keys: Vec<String>,
    /// HTTP V2 throttling threshold: events/s per device and per user, averaged over
    /// --eps-window-secs; 0 turns throttling off.
    #[arg(long, default_value_t = EndpointLimits::http_v2().eps)]
    eps: u32,
    /// Batch API throttling threshold (events/s per device and per user); 0 = off.
    #[arg(long, default_value_t = EndpointLimits::batch().eps)]
    batch_eps: u32,
    /// Window over which events/s are averaged, in seconds.
    #[arg(long, default_value_t = 30.0)]
    eps_window_secs: f64,
    /// Events allowed per device and per user in a rolling 24 h (default: no quota).
    #[arg(long, value_name = "EVENTS")]
    daily_quota: Option<u64>,
    /// Largest accepted number of events in one HTTP V2 request (more → 413).
    #[arg(long, default_value_t = EndpointLimits::http_v2().max_events)]
    max_events: usize,
    /// Largest accepted HTTP V2 body in bytes, after gzip decompression (more → 413).
    #[arg(long, default_value_t = EndpointLimits::http_v2().max_bytes)]
    max_bytes: usize,
    /// Largest accepted number of events in one Batch request.
    #[arg(long, default_value_t = EndpointLimits::batch().max_events)]
    batch_max_events: usize,
    /// Largest accepted Batch body in bytes, after decompression.
    #[arg(long, default_value_t = EndpointLimits::batch().max_bytes)]
    batch_max_bytes: usize,
    /// Seed of the fault generator (same seed + same sequential client = same faults).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Rate (0..1) of requests answered 500/502/503/504 without ingesting.
    #[arg(long, default_value_t = 0.0, value_name = "RATE")]
    fail_rate: f64,
    /// Rate (0..1) of requests ingested and then answered 500 (the ambiguous case).
    #[arg(long, default_value_t = 0.0, value_name = "RATE")]
    fail_after_ingest_rate: f64,
    /// Rate (0..1) of requests that hang for --stall-ms, are not ingested, then get 504.
    #[arg(long, default_value_t = 0.0, value_name = "RATE")]
    stall_rate: f64,
    /// How long a stalled request hangs, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    stall_ms: u64,
    /// Rate (0..1) of requests whose connection is closed without a response.
    #[arg(long, default_value_t = 0.0, value_name = "RATE")]
    drop_rate: f64,
    /// Send `Retry-After: SECS` with 503 and 429 responses.
    #[arg(long, value_name = "SECS")]
    retry_after: Option<u64>,
    /// Keep every ingested event (for GET /events); otherwise only hashes are kept.
    #[arg(long)]
    keep_events: bool,
    /// Worker threads of the server runtime.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Do not log requests to stderr.
    #[arg(long)]
    quiet: bool,
    /// Also exit (printing the summary) when stdin reaches end of file.
    #[arg(long)]
    exit_on_stdin_eof: bool,
}

impl Args {
    fn config(&self) -> Result<Config, String> {
        if !self.eps_window_secs.is_finite() || self.eps_window_secs < 0.0 {
            return Err(format!(
                "--eps-window-secs must be a non-negative number, got {}",
                self.eps_window_secs
            ));
        }
        Ok(Config {
            host: self.host,
            port: self.port,
            api_keys: self.api_keys.clone(),
            http_v2: EndpointLimits {
                max_events: self.max_events,
                max_bytes: self.max_bytes,
                eps: self.eps,
            },
            batch: EndpointLimits {
                max_events: self.batch_max_events,
                max_bytes: self.batch_max_bytes,
                eps: self.batch_eps,
            },
            eps_window: Duration::from_secs_f64(self.eps_window_secs),
            daily_quota: self.daily_quota,
            keep_events: self.keep_events,
            faults: FaultConfig {
                seed: self.seed,
                fail_rate: self.fail_rate,
                fail_after_ingest_rate: self.fail_after_ingest_rate,
                stall_rate: self.stall_rate,
                stall: Duration::from_millis(self.stall_ms),
                drop_rate: self.drop_rate,
            },
            retry_after: self.retry_after,
            worker_threads: self.workers,
            log_requests: !self.quiet,
        })
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match args.config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("amplitude-mock-server: {e}");
            return ExitCode::from(2);
        }
    };
    let server = match MockServer::start(config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("amplitude-mock-server: {e}");
            return ExitCode::from(2);
        }
    };
    let mut stdout = io::stdout();
    if writeln!(stdout, "listening on {}", server.url())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        // Nobody can read the address; nothing useful left to do.
        return ExitCode::from(1);
    }

    if let Err(e) = wait_for_exit(args.exit_on_stdin_eof) {
        eprintln!("amplitude-mock-server: cannot wait for signals: {e}");
        return ExitCode::from(1);
    }

    let summary = server.stop();
    let json = serde_json::to_string(&summary).unwrap_or_else(|_| "{}".to_owned());
    let _ = writeln!(stdout, "{json}").and_then(|()| stdout.flush());
    ExitCode::SUCCESS
}

/// Blocks until SIGINT, SIGTERM or (when asked) end of stdin.
fn wait_for_exit(on_stdin_eof: bool) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
    // Without --exit-on-stdin-eof the sender stays here, so `eof_rx` never completes.
    let mut _unused_sender = None;
    if on_stdin_eof {
        std::thread::Builder::new()
            .name("stdin-eof".into())
            .spawn(move || {
                let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
                let _ = eof_tx.send(());
            })?;
    } else {
        _unused_sender = Some(eof_tx);
    }
    runtime.block_on(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r,
                _ = term.recv() => Ok(()),
                _ = eof_rx => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::select! {
                r = tokio::signal::ctrl_c() => r,
                _ = eof_rx => Ok(()),
            }
        }
    })
}
