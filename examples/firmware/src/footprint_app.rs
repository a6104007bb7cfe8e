//! What both footprint images share: the client, its buffers, and a short workload.

use amplitude_core::config::Config;
use amplitude_core::driver::Shared;
use amplitude_core::queue::{RamQueue, Slot};
use amplitude_core::{Client, Event};
use cortex_m_semihosting::debug;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time::Duration;

/// Processor clock of the mps2-an386 board.
pub const CORE_HZ: u32 = 25_000_000;
/// Queue memory.
pub const QUEUE_BYTES: usize = 16 * 1024;
/// Queue records.
pub const QUEUE_SLOTS: usize = 64;
/// Largest request body.
pub const BODY_BYTES: usize = 8 * 1024;
/// Response body kept for classification.
pub const RESPONSE_BYTES: usize = 1024;

/// The configured memory of the core client.
pub struct CoreBuffers {
    pub arena: [u8; QUEUE_BYTES],
    pub slots: [Slot; QUEUE_SLOTS],
    pub body: [u8; BODY_BYTES],
    pub response: [u8; RESPONSE_BYTES],
}

/// Every buffer the application configures, in one static so its size can be read off the
/// image (`footprint.sh` subtracts it to find the SDK's own overhead).
pub struct Buffers<E> {
    pub core: CoreBuffers,
    pub extra: E,
}

impl<E> Buffers<E> {
    pub const fn new(extra: E) -> Self {
        Self {
            core: CoreBuffers {
                arena: [0; QUEUE_BYTES],
                slots: [Slot::EMPTY; QUEUE_SLOTS],
                body: [0; BODY_BYTES],
                response: [0; RESPONSE_BYTES],
            },
            extra,
        }
    }
}

pub type Queue = RamQueue<&'static mut [u8; QUEUE_BYTES], &'static mut [Slot; QUEUE_SLOTS]>;
pub type Driver = Shared<'static, CriticalSectionRawMutex, Queue, amplitude_core::outcome::NoSink>;

static DRIVER: static_cell::StaticCell<Driver> = static_cell::StaticCell::new();

/// Start the time driver and build the shared client over the queue memory.
pub fn start(
    arena: &'static mut [u8; QUEUE_BYTES],
    slots: &'static mut [Slot; QUEUE_SLOTS],
) -> &'static Driver {
    let Some(peripherals) = cortex_m::Peripherals::take() else {
        exit(false);
    };
    super::time_driver::init(peripherals.SYST, CORE_HZ);
    let config = Config::new("footprint-api-key")
        .server_url("http://192.168.69.100:8080/2/httpapi")
        .flush_interval(Duration::from_secs(1));
    let queue = RamQueue::new(arena, slots);
    DRIVER.init(Shared::new(
        Client::new(config, queue, 0x5eed),
        amplitude_core::outcome::NoSink,
    ))
}

/// Log a few events, flush, and exit (status 0 when `must_deliver` is met).
pub async fn log_and_flush(shared: &'static Driver, must_deliver: bool) -> ! {
    for n in 0..32u32 {
        let ev: Event = Event::new("footprint")
            .device_id("device-footprint")
            .property("n", n)
            .property("ok", true);
        if shared.log_event(ev, &mut ()).is_err() {
            exit(false);
        }
    }
    let settled = shared.flush(Duration::from_secs(2)).await.is_ok();
    exit(settled || !must_deliver)
}

/// Leave QEMU with a status.
pub fn exit(ok: bool) -> ! {
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    #[allow(clippy::empty_loop)]
    loop {}
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    exit(false)
}
