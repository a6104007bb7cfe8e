//! embassy-time driver on the Cortex-M SysTick: a 1 kHz tick extended to 64 bits in
//! software, and a generic timer queue that the tick interrupt drains.
//!
//! A periodic tick costs one short interrupt per millisecond and keeps the driver small
//! and obviously correct; `embassy-time` is built with `tick-hz-1_000` to match.

use core::cell::{Cell, RefCell};
use core::task::Waker;

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use critical_section::Mutex;
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

/// Ticks per second; must equal `embassy_time_driver::TICK_HZ`.
const TICK_HZ: u32 = 1_000;
const _: () = assert!(TICK_HZ as u64 == embassy_time_driver::TICK_HZ);

struct SysTickDriver {
    /// Ticks since `init`.
    ticks: Mutex<Cell<u64>>,
    /// Tick at which the queue has its next expiry (`u64::MAX`: none).
    alarm: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    ticks: Mutex::new(Cell::new(0)),
    alarm: Mutex::new(Cell::new(u64::MAX)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

impl Driver for SysTickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.ticks.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow_ref_mut(cs);
            if queue.schedule_wake(at, waker) {
                // Wakes whatever is already due and tells when the next one is.
                let next = queue.next_expiration(self.ticks.borrow(cs).get());
                self.alarm.borrow(cs).set(next);
            }
        });
    }
}

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let ticks = DRIVER.ticks.borrow(cs);
        let now = ticks.get() + 1;
        ticks.set(now);
        let alarm = DRIVER.alarm.borrow(cs);
        if now >= alarm.get() {
            let next = DRIVER.queue.borrow_ref_mut(cs).next_expiration(now);
            alarm.set(next);
        }
    });
}

/// Start the tick. `core_hz` is the processor clock (25 MHz on mps2-an386).
pub fn init(mut syst: SYST, core_hz: u32) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(core_hz / TICK_HZ - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}
