//! Prints the RAM the core needs for a given queue configuration (all of it is fixed at
//! compile time): `cargo run -p amplitude-core --example ram_budget`.

use amplitude_core::client::Client;
use amplitude_core::event::{DEFAULT_PROPERTIES, Prop};
use amplitude_core::queue::{Meta, RamQueue, Slot};
use amplitude_core::response::{Body, Classified};
use amplitude_core::{Config, Event};
use core::mem::size_of;

fn report<const BYTES: usize, const EVENTS: usize>(label: &str) {
    type C<'c, const B: usize, const E: usize> = Client<'c, RamQueue<[u8; B], [Slot; E]>>;
    let client = size_of::<C<'static, BYTES, EVENTS>>();
    println!(
        "{label:<28} queue bytes {BYTES:>6}  slots {EVENTS:>4} x {:>2} B = {:>6}  client total {client:>6} B  overhead {:>5} B",
        size_of::<Slot>(),
        EVENTS * size_of::<Slot>(),
        client - BYTES - EVENTS * size_of::<Slot>(),
    );
}

fn main() {
    println!(
        "Per-record metadata: Meta {} B, Slot (Meta + offset + length) {} B",
        size_of::<Meta>(),
        size_of::<Slot>()
    );
    report::<{ 16 * 1024 }, 64>("16 KiB queue, 64 events");
    report::<{ 64 * 1024 }, 256>("64 KiB queue, 256 events");
    report::<{ 64 * 1024 }, 512>("64 KiB queue, 512 events");
    println!(
        "Caller-owned buffers on top: the request body buffer (its size bounds the request) and the response buffer."
    );
    println!(
        "Transient stack: Event<{DEFAULT_PROPERTIES}> {} B ({} B per property entry); classified response {} B (body {} B)",
        size_of::<Event<'static>>(),
        size_of::<Prop<'static>>(),
        size_of::<Classified>(),
        size_of::<Body>()
    );
    let _ = Config::new("k");
}
