//! Firmware for a Cortex-M4F (QEMU `mps2-an386`).
//!
//! `cargo run --release` boots it in QEMU; it prints its progress over semihosting and
//! exits with status 0 when every check passed, non-zero otherwise (a panic exits 1).
#![no_std]
#![no_main]

use cortex_m_semihosting::{debug, hprintln};
use embassy_executor::Spawner;
use embassy_time::{Duration, Instant, Timer};
use panic_semihosting as _;

mod time_driver;

/// Processor clock of the mps2-an386 board.
const CORE_HZ: u32 = 25_000_000;

/// Stop QEMU with a failure status after printing why.
fn fail(what: &str) -> ! {
    hprintln!("FAIL: {}", what);
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let Some(peripherals) = cortex_m::Peripherals::take() else {
        fail("core peripherals already taken");
    };
    time_driver::init(peripherals.SYST, CORE_HZ);

    let start = Instant::now();
    Timer::after(Duration::from_millis(10)).await;
    let waited = start.elapsed();
    hprintln!("timer: waited {} ms for 10 ms", waited.as_millis());
    if waited < Duration::from_millis(10) || waited > Duration::from_millis(500) {
        fail("Timer::after(10 ms) did not take 10 ms");
    }

    hprintln!("PASS");
    debug::exit(debug::EXIT_SUCCESS);
}
