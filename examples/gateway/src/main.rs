//! A Linux "gateway" built like firmware: embassy-executor, an embassy-net stack on a TAP
//! device, the amplitude-embassy-net transport and the core client with its async driver.
//! It logs events for many devices, flushes, and reports what happened to each.
//!
//! Run it as root inside a network namespace that holds the TAP device (see `run.sh`):
//!
//! ```text
//! amplitude-gateway-example --tap tap0 --ip 192.168.69.2 --gateway 192.168.69.100 \
//!     --url http://192.168.69.100:8080/2/httpapi --events 3000 --devices 40
//! ```
//!
//! It prints one `key=value` summary line and exits 0 only when every logged event was
//! delivered (none rejected, dropped or left pending).

use std::cell::Cell;
use std::str::FromStr;

use amplitude_core::outcome::{Outcome, OutcomeSink, Report};
use amplitude_core::queue::{RamQueue, Slot};
use amplitude_core::transport::{Request, Response, Transport, TransportError};
use amplitude_core::{Client, Config, Event, LogError};
use amplitude_embassy_net::{
    Config as TransportConfig, ConnectionStats, EmbassyNetTransport, TlsBuffers, TlsMode,
};
use embassy_executor::Spawner;
use embassy_net::tcp::client::{TcpClient, TcpClientState};
use embassy_net::{Ipv4Address, Ipv4Cidr, Runner, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time::{Duration, Instant, Timer};
use static_cell::StaticCell;

/// Queue memory: enough for a burst, small enough that logging must wait for sending.
const QUEUE_BYTES: usize = 256 * 1024;
const QUEUE_SLOTS: usize = 1024;
/// Largest request body (the core also caps requests at 200 events).
const BODY_BYTES: usize = 64 * 1024;
const RESPONSE_BYTES: usize = 2048;
const TCP_TX: usize = 8192;
const TCP_RX: usize = 4096;

#[derive(Debug, Clone)]
struct Args {
    tap: String,
    ip: Ipv4Address,
    prefix: u8,
    gateway: Ipv4Address,
    url: String,
    events: u32,
    devices: u32,
    flush_secs: u64,
    seed: u64,
    insecure_tls: bool,
    request_timeout_ms: u64,
}

impl Args {
    fn parse() -> Result<Self, String> {
        let mut a = Args {
            tap: "tap0".into(),
            ip: Ipv4Address::new(192, 168, 69, 2),
            prefix: 24,
            gateway: Ipv4Address::new(192, 168, 69, 100),
            url: "http://192.168.69.100:8080/2/httpapi".into(),
            events: 3000,
            devices: 40,
            flush_secs: 300,
            seed: 1,
            insecure_tls: false,
            request_timeout_ms: 20_000,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--tap" => a.tap = value()?,
                "--ip" => a.ip = parse(&value()?)?,
                "--prefix" => a.prefix = parse(&value()?)?,
                "--gateway" => a.gateway = parse(&value()?)?,
                "--url" => a.url = value()?,
                "--events" => a.events = parse(&value()?)?,
                "--devices" => a.devices = parse::<u32>(&value()?)?.max(1),
                "--flush-secs" => a.flush_secs = parse(&value()?)?,
                "--seed" => a.seed = parse(&value()?)?,
                "--insecure-tls" => a.insecure_tls = true,
                "--request-timeout-ms" => a.request_timeout_ms = parse(&value()?)?,
                "-h" | "--help" => {
                    return Err("usage: amplitude-gateway-example [--tap NAME] [--ip A.B.C.D] [--prefix N] \
                                [--gateway A.B.C.D] [--url URL] [--events N] [--devices N] [--flush-secs S] [--seed N] [--insecure-tls] [--request-timeout-ms MS]"
                        .into());
                }
                other => return Err(format!("unknown argument {other}")),
            }
        }
        if a.url.starts_with("https://") && !a.insecure_tls {
            return Err(
                "an https:// URL needs --insecure-tls: the embedded TLS stack encrypts but cannot \
                        verify the server's certificate"
                    .into(),
            );
        }
        Ok(a)
    }
}

/// 32 bytes from the operating system's random source, to seed the TLS key exchange.
fn os_random_seed() -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    Ok(seed)
}

fn parse<T: FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("bad value {s:?}"))
}

/// Remembers the first few events that were not delivered (the client counts them all).
struct Failures;

static FAILURES: std::sync::Mutex<Vec<(u64, Outcome)>> = std::sync::Mutex::new(Vec::new());

impl OutcomeSink for Failures {
    fn on_outcome(&mut self, report: &Report<'_>) {
        if report.outcome != Outcome::Delivered
            && let Ok(mut f) = FAILURES.lock()
            && f.len() < 5
        {
            f.push((report.id.0, report.outcome));
        }
    }
}

type Queue = RamQueue<Vec<u8>, Vec<Slot>>;
type Shared = amplitude_core::driver::Shared<'static, CriticalSectionRawMutex, Queue, Failures>;
type NetTransport = EmbassyNetTransport<'static, 1, TCP_TX, TCP_RX>;

/// Passes requests to the transport and publishes its connection counters and the
/// transport errors seen, for the final report.
struct Observed {
    inner: NetTransport,
    stats:
        &'static embassy_sync::blocking_mutex::CriticalSectionMutex<Cell<(ConnectionStats, u64)>>,
}

impl Transport for Observed {
    async fn send<'b>(
        &mut self,
        request: Request<'_>,
        buf: &'b mut [u8],
    ) -> Result<Response<'b>, TransportError> {
        let result = self.inner.send(request, buf).await;
        let failed = u64::from(result.is_err());
        let stats = self.inner.stats();
        self.stats.lock(|c| {
            let (_, errors) = c.get();
            c.set((stats, errors + failed));
        });
        result
    }
}

static STATS: embassy_sync::blocking_mutex::CriticalSectionMutex<Cell<(ConnectionStats, u64)>> =
    embassy_sync::blocking_mutex::CriticalSectionMutex::new(Cell::new((
        ConnectionStats {
            requests: 0,
            connects: 0,
            reused: 0,
            stale_retries: 0,
        },
        0,
    )));

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, TunTapDevice>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn sender(
    shared: &'static Shared,
    transport: Observed,
    body: &'static mut [u8],
    response: &'static mut [u8],
) -> ! {
    shared.run(transport, body, response).await
}

/// End the process: the executor never returns on its own.
fn finish(code: u8) -> ! {
    std::process::exit(i32::from(code));
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let args = match Args::parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            finish(2);
        }
    };
    gateway(spawner, args).await;
}

async fn gateway(spawner: Spawner, args: Args) -> ! {
    let device = match TunTapDevice::new(&args.tap) {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "cannot open TAP device {}: {e} (run as root, inside the namespace that holds it)",
                args.tap
            );
            finish(2);
        }
    };
    let net_config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(args.ip, args.prefix),
        gateway: Some(args.gateway),
        dns_servers: heapless::Vec::new(),
    });
    static RESOURCES: StaticCell<StackResources<4>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        device,
        net_config,
        RESOURCES.init(StackResources::new()),
        args.seed,
    );
    let Ok(net) = net_task(runner) else {
        finish(2);
    };
    spawner.spawn(net);
    stack.wait_config_up().await;

    static TCP_STATE: StaticCell<TcpClientState<1, TCP_TX, TCP_RX>> = StaticCell::new();
    static TCP: StaticCell<TcpClient<'static, 1, TCP_TX, TCP_RX>> = StaticCell::new();
    let tcp = TCP.init(TcpClient::new(stack, TCP_STATE.init(TcpClientState::new())));
    static HEADER: StaticCell<[u8; 1024]> = StaticCell::new();
    let transport = EmbassyNetTransport::new(
        stack,
        tcp,
        HEADER.init([0; 1024]),
        TransportConfig::default()
            .connect_timeout(Duration::from_secs(5))
            .request_timeout(Duration::from_millis(args.request_timeout_ms)),
    );

    static TLS: StaticCell<TlsBuffers> = StaticCell::new();
    let transport = if args.insecure_tls {
        let seed = match os_random_seed() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cannot read /dev/urandom: {e}");
                finish(2);
            }
        };
        transport.with_tls(TLS.init(TlsBuffers::new()), TlsMode::InsecureNoVerify, seed)
    } else {
        transport
    };

    static URL: StaticCell<String> = StaticCell::new();
    let url: &'static str = URL.init(args.url.clone());
    let config = Config::new("gateway-api-key")
        .server_url(url)
        .flush_interval(Duration::from_millis(500));
    let queue = RamQueue::new(vec![0u8; QUEUE_BYTES], vec![Slot::EMPTY; QUEUE_SLOTS]);
    static SHARED: StaticCell<Shared> = StaticCell::new();
    let shared: &'static Shared =
        SHARED.init(Shared::new(Client::new(config, queue, args.seed), Failures));

    static BODY: StaticCell<Vec<u8>> = StaticCell::new();
    static RESPONSE: StaticCell<Vec<u8>> = StaticCell::new();
    let Ok(send) = sender(
        shared,
        Observed {
            inner: transport,
            stats: &STATS,
        },
        BODY.init(vec![0; BODY_BYTES]),
        RESPONSE.init(vec![0; RESPONSE_BYTES]),
    ) else {
        finish(2);
    };
    spawner.spawn(send);

    let device_ids: Vec<String> = (0..args.devices)
        .map(|d| format!("gw-device-{d:04}"))
        .collect();
    let mut per_device = vec![0i64; device_ids.len()];
    let started = Instant::now();
    let mut queue_waits = 0u64;
    for n in 0..args.events {
        let d = (n % args.devices) as usize;
        per_device[d] += 1;
        loop {
            let ev: Event = Event::new("gateway reading")
                .device_id(&device_ids[d])
                .event_id(per_device[d])
                .property("n", n)
                .property("temperature", 20.5 + f64::from(n % 10));
            match shared.log_event(ev, &mut ()) {
                Ok(_) => break,
                // Backpressure: wait for the sender to make room.
                Err(LogError::QueueFull) => {
                    queue_waits += 1;
                    Timer::after(Duration::from_millis(5)).await;
                }
                Err(e) => {
                    eprintln!("event {n} refused: {e}");
                    finish(1);
                }
            }
        }
    }
    let logged_in = started.elapsed();
    let flushed = shared.flush(Duration::from_secs(args.flush_secs)).await;
    let elapsed = started.elapsed();
    let c = shared.counters();
    let (stats, transport_errors) = STATS.lock(|s| s.get());
    let failures = FAILURES.lock().map(|f| f.clone()).unwrap_or_default();
    println!(
        "gateway: events={} accepted={} delivered={} rejected={} dropped={} pending={} requests={} failed_requests={} \
         transport_errors={} connects={} reused={} stale_retries={} queue_waits={} log_ms={} total_ms={}",
        args.events,
        c.accepted,
        c.delivered,
        c.rejected,
        c.dropped,
        c.pending(),
        c.requests,
        c.failed_requests,
        transport_errors,
        stats.connects,
        stats.reused,
        stats.stale_retries,
        queue_waits,
        logged_in.as_millis(),
        elapsed.as_millis(),
    );
    for (id, outcome) in failures {
        println!("gateway: event {id}: {outcome}");
    }
    let ok = flushed.is_ok()
        && c.accepted == u64::from(args.events)
        && c.delivered == c.accepted
        && c.rejected == 0
        && c.dropped == 0;
    if !ok {
        eprintln!("gateway: FAILED (flush settled: {})", flushed.is_ok());
    }
    finish(if ok { 0 } else { 1 });
}
