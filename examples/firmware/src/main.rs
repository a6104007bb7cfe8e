//! Firmware for a Cortex-M4F (QEMU `mps2-an386`) that runs the Amplitude core client
//! against a server played inside the firmware, and checks every outcome.
//!
//! `cargo run --release` boots it in QEMU; it prints its progress over semihosting and
//! exits with status 0 when every check passed, non-zero otherwise (a panic exits 1).
//!
//! 1. **Plumbing**: the SysTick time driver advances (`Timer::after(10 ms)`).
//! 2. **Fault scenario** (sans-IO client, virtual time): 40 events from five devices
//!    through a middleware chain into a 16 KiB queue; the scripted server answers with a
//!    transport error, a timeout, 500s (one after ingesting), a 503 with `Retry-After`,
//!    413s, a 400 listing bad events by index, and 429s for one throttled device. Checks:
//!    every accepted event gets exactly one outcome, bad events are rejected and all
//!    others delivered exactly once (`insert_id` absorbs the ambiguous 500), per-device
//!    order holds, no request exceeds the server's limit, and other devices flow while the
//!    throttled one is paused.
//! 3. **Async driver** (real time): the core's embassy driver sends from its own task
//!    while the main task logs and flushes.
#![no_std]
#![no_main]

use core::cell::Cell;
use core::sync::atomic::{AtomicU32, Ordering};

use amplitude_core::Event;
use amplitude_core::client::Client;
use amplitude_core::config::Config;
use amplitude_core::driver::Shared;
use amplitude_core::event::Target;
use amplitude_core::middleware::{Middleware, Next, Payload};
use amplitude_core::outcome::{Counters, NoSink, Outcome, OutcomeSink, RejectReason, Report};
use amplitude_core::queue::{RamQueue, Slot};
use amplitude_core::transport::{Request, Response, Transport, TransportError};
use cortex_m_semihosting::{debug, hprintln};
use embassy_executor::Spawner;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time::{Duration, Instant, Timer};
use panic_semihosting as _;

mod scripted;
mod time_driver;

use scripted::{ScriptedServer, Step, Tally};

/// Processor clock of the mps2-an386 board.
const CORE_HZ: u32 = 25_000_000;
/// Queue memory, fixed at compile time.
const QUEUE_BYTES: usize = 16 * 1024;
/// Queue records, fixed at compile time.
const QUEUE_SLOTS: usize = 64;
/// Largest request body built.
const BODY_BYTES: usize = 8 * 1024;
/// Response body kept for classification.
const RESPONSE_BYTES: usize = 1024;

type Queue = RamQueue<&'static mut [u8; QUEUE_BYTES], &'static mut [Slot; QUEUE_SLOTS]>;

/// Stop QEMU with a failure status after printing why.
fn fail(what: &str) -> ! {
    hprintln!("FAIL: {}", what);
    hprintln!("firmware: 0 passed, 1 failed");
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

/// Check a condition; on failure print it and exit non-zero.
macro_rules! check {
    ($cond:expr, $($what:tt)+) => {
        if !$cond {
            hprintln!($($what)+);
            fail(stringify!($cond));
        }
    };
}

/// Memory that must outlive `main`'s stack frame (and would not fit in it comfortably).
struct Memory {
    arena: [u8; QUEUE_BYTES],
    slots: [Slot; QUEUE_SLOTS],
    body: [u8; BODY_BYTES],
    response: [u8; RESPONSE_BYTES],
}

static MEMORY: static_cell::ConstStaticCell<Memory> = static_cell::ConstStaticCell::new(Memory {
    arena: [0; QUEUE_BYTES],
    slots: [Slot::EMPTY; QUEUE_SLOTS],
    body: [0; BODY_BYTES],
    response: [0; RESPONSE_BYTES],
});

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let Some(peripherals) = cortex_m::Peripherals::take() else {
        fail("core peripherals already taken");
    };
    time_driver::init(peripherals.SYST, CORE_HZ);
    let memory = MEMORY.take();

    timer_advances().await;
    fault_scenario(
        &mut memory.arena,
        &mut memory.slots,
        &mut memory.body,
        &mut memory.response,
    )
    .await;
    async_driver(spawner).await;

    // Plain closing line for test-result readers: the three parts above.
    hprintln!("firmware: 3 passed, 0 failed");
    debug::exit(debug::EXIT_SUCCESS);
}

/// 1. The time driver works.
async fn timer_advances() {
    let start = Instant::now();
    Timer::after(Duration::from_millis(10)).await;
    let waited = start.elapsed();
    hprintln!("timer: waited {} ms for 10 ms", waited.as_millis());
    check!(
        waited >= Duration::from_millis(10) && waited <= Duration::from_millis(500),
        "Timer::after(10 ms) took {} ms",
        waited.as_millis()
    );
}

/// Drops `debug` events and stamps the firmware version on the others.
struct FirmwareMiddleware;

impl Middleware for FirmwareMiddleware {
    fn run<'p, 'a>(&mut self, payload: &mut Payload<'p, 'a>, next: Next<'_, 'p, 'a>) {
        if payload.event.event_type == "debug" {
            return;
        }
        payload.event.push(Target::Event, "fw", "1.4.2".into());
        next.run(payload);
    }
}

/// Records each event's outcome and how often one arrived.
struct Outcomes {
    seen: [Option<Outcome>; 64],
    repeats: u32,
}

impl OutcomeSink for Outcomes {
    fn on_outcome(&mut self, report: &Report<'_>) {
        match self.seen.get_mut(report.id.0 as usize) {
            Some(slot @ None) => *slot = Some(report.outcome),
            _ => self.repeats += 1,
        }
    }
}

const DEVICES: [&str; 5] = [
    "device-A",
    "device-B",
    "device-C",
    "device-D",
    scripted::THROTTLED_DEVICE,
];
/// Events logged with `"bad":true` (by log position); the server rejects them.
const BAD: [usize; 2] = [5, 22];

/// 2. Faults of every kind, in virtual time.
async fn fault_scenario(
    arena: &'static mut [u8; QUEUE_BYTES],
    slots: &'static mut [Slot; QUEUE_SLOTS],
    body: &mut [u8],
    response: &mut [u8],
) {
    let config = Config::new("firmware-api-key")
        .server_url("http://relay.local/2/httpapi")
        .flush_queue_size(16)
        .throttle_pause(Duration::from_secs(10))
        .clock_offset_ms(1_767_225_600_000);
    let mut client: Client<'_, Queue> =
        Client::new(config, RamQueue::new(arena, slots), 0x5eed_cafe);
    let mut chain = [FirmwareMiddleware];
    let mut outcomes = Outcomes {
        seen: [None; 64],
        repeats: 0,
    };

    let t0 = Instant::from_millis(0);
    let mut accepted = 0usize;
    for n in 0..40usize {
        let ev: Event = Event::new("sensor reading")
            .device_id(DEVICES[n % DEVICES.len()])
            .property("n", n)
            .property("bad", BAD.contains(&n));
        check!(
            client
                .log_event(t0, ev, &mut chain[..], None, &mut outcomes)
                .is_ok(),
            "event {} refused",
            n
        );
        accepted += 1;
        if n % 10 == 0 {
            let debug_event: Event = Event::new("debug").device_id("device-A");
            check!(
                client
                    .log_event(t0, debug_event, &mut chain[..], None, &mut outcomes)
                    .is_ok(),
                "debug event refused"
            );
        }
    }
    check!(
        client.counters().filtered == 4,
        "filtered {}",
        client.counters().filtered
    );
    check!(
        client.counters().accepted == accepted as u64,
        "accepted {}",
        client.counters().accepted
    );

    let script = [
        (1, Step::Fail(TransportError::Closed)),
        (2, Step::Error500),
        (3, Step::Fail(TransportError::Timeout)),
        (4, Step::IngestThen500),
        (7, Step::Unavailable),
    ];
    let clock = Cell::new(0u64);
    let mut server: ScriptedServer<'_, 64> = ScriptedServer::new(&script, &clock);

    let mut now = t0;
    let mut rounds = 0u32;
    loop {
        rounds += 1;
        check!(
            rounds < 2_000,
            "no progress after {} rounds: {:?}",
            rounds,
            client.counters()
        );
        clock.set(now.as_millis());
        if let Some(out) = client.next_request(now, body, &mut outcomes) {
            let flight = out.flight;
            let result = server.send(out.request, response).await;
            client.on_response(now, flight, result, &mut outcomes);
            check_balance(client.counters());
            continue;
        }
        if client.counters().pending() == 0 {
            break;
        }
        match client.next_wakeup(now) {
            // Virtual time: jump straight to the next deadline.
            Some(t) => now = t.max(now + Duration::from_millis(1)),
            None => fail("events pending but no wake-up scheduled"),
        }
    }

    let c = client.counters();
    let t: Tally = server.tally;
    hprintln!("fault scenario: {:?}", c);
    hprintln!("server: {:?}", t);
    hprintln!("virtual time: {} ms", now.as_millis());
    check_balance(c);
    check!(
        outcomes.repeats == 0,
        "{} events got a second outcome",
        outcomes.repeats
    );
    for (i, o) in outcomes.seen.iter().take(accepted).enumerate() {
        // Ids count accepted events; the filtered `debug` events took none, so an id is
        // the event's `n`.
        let expected = if BAD.contains(&i) {
            Outcome::Rejected(RejectReason::InvalidFields)
        } else {
            Outcome::Delivered
        };
        check!(
            *o == Some(expected),
            "event {}: {:?}, expected {:?}",
            i,
            o,
            expected
        );
    }
    check!(
        c.delivered == (accepted - BAD.len()) as u64,
        "delivered {}",
        c.delivered
    );
    check!(
        c.rejected == BAD.len() as u64 && c.dropped == 0,
        "rejected {} dropped {}",
        c.rejected,
        c.dropped
    );
    check!(
        t.unique as u64 == c.delivered,
        "server ingested {} unique, client delivered {}",
        t.unique,
        c.delivered
    );
    check!(
        t.duplicates > 0,
        "the ambiguous 500 should have caused a deduplicated resend"
    );
    check!(
        t.order_violations == 0,
        "{} per-device order violations",
        t.order_violations
    );
    check!(
        t.too_large > 0 && t.bad_request > 0 && t.throttled > 0,
        "not every fault was exercised: {:?}",
        t
    );
    check!(
        t.transport_errors == 2 && t.server_errors == 3,
        "scripted faults not all hit: {:?}",
        t
    );
    check!(
        t.others_during_pause > 0,
        "no other device got through while one was throttled"
    );
    check!(
        t.max_events_seen <= 16,
        "a request carried {} events, over the limit of 16",
        t.max_events_seen
    );
    check!(
        t.malformed == 0,
        "server saw {} malformed requests",
        t.malformed
    );
    match (t.first_429_at, t.throttled_ingested_at) {
        (Some(a), Some(b)) => check!(
            b >= a + 10_000,
            "throttled device resumed after {} ms, before its pause",
            b - a
        ),
        _ => fail("throttled device was never throttled or never delivered"),
    }
    hprintln!("fault scenario: ok");
}

fn check_balance(c: &Counters) {
    check!(
        c.accepted == c.delivered + c.rejected + c.dropped + c.pending(),
        "counters do not balance: {:?}",
        c
    );
}

/// A server that answers every request with 200 and counts what it got.
struct AlwaysOk {
    requests: &'static AtomicU32,
}

impl Transport for AlwaysOk {
    async fn send<'b>(
        &mut self,
        _request: Request<'_>,
        buf: &'b mut [u8],
    ) -> Result<Response<'b>, TransportError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        // A little latency, like a network.
        Timer::after(Duration::from_millis(2)).await;
        let body = b"{\"code\":200}";
        let n = body.len().min(buf.len());
        buf[..n].copy_from_slice(&body[..n]);
        Ok(Response::new(200, &buf[..n]))
    }
}

type Driver = Shared<'static, CriticalSectionRawMutex, RamQueue<[u8; 4096], [Slot; 32]>, NoSink>;

static DRIVER: static_cell::StaticCell<Driver> = static_cell::StaticCell::new();
static DRIVER_BUFFERS: static_cell::ConstStaticCell<([u8; 4096], [u8; 256])> =
    static_cell::ConstStaticCell::new(([0; 4096], [0; 256]));
static DRIVER_REQUESTS: AtomicU32 = AtomicU32::new(0);

#[embassy_executor::task]
async fn sender(shared: &'static Driver, transport: AlwaysOk) -> ! {
    let (body, response) = DRIVER_BUFFERS.take();
    shared.run(transport, body, response).await
}

/// 3. The async driver with real time.
async fn async_driver(spawner: Spawner) {
    let config = Config::new("firmware-api-key")
        .server_url("http://relay.local/2/httpapi")
        .flush_queue_size(8)
        .flush_interval(Duration::from_millis(200));
    let client = Client::new(config, RamQueue::new([0u8; 4096], [Slot::EMPTY; 32]), 42);
    let shared: &'static Driver = DRIVER.init(Shared::new(client, NoSink));
    let requests: &'static AtomicU32 = &DRIVER_REQUESTS;
    let Ok(token) = sender(shared, AlwaysOk { requests }) else {
        fail("sender task already spawned");
    };
    spawner.spawn(token);

    let start = Instant::now();
    for n in 0..20usize {
        let ev: Event = Event::new("button pressed")
            .device_id("device-async")
            .property("n", n);
        check!(
            shared.log_event(ev, &mut ()).is_ok(),
            "driver refused event {}",
            n
        );
    }
    check!(
        shared.flush(Duration::from_secs(5)).await.is_ok(),
        "flush did not settle"
    );
    let c = shared.counters();
    hprintln!(
        "async driver: {:?}, {} requests, {} ms",
        c,
        requests.load(Ordering::Relaxed),
        start.elapsed().as_millis()
    );
    check!(
        c.delivered == 20 && c.pending() == 0,
        "driver delivered {}",
        c.delivered
    );
    check!(
        requests.load(Ordering::Relaxed) >= 3,
        "20 events at 8 per request need at least 3 requests"
    );
    hprintln!("async driver: ok");
}
