//! log → encode → enqueue → batch → classify allocates nothing (the core is `no_std`
//! without `alloc`; this proves no hidden allocation through dependencies either).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use amplitude_core::Event;
use amplitude_core::client::Client;
use amplitude_core::config::Config;
use amplitude_core::outcome::NoSink;
use amplitude_core::queue::{RamQueue, Slot};
use amplitude_core::response::classify;
use amplitude_core::transport::Response;
use embassy_time::Instant;

struct Counting;
static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::SeqCst) {
            ALLOCS.fetch_add(1, Ordering::SeqCst);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn the_pipeline_allocates_nothing() {
    let mut queue_bytes = vec![0u8; 128 * 1024];
    let mut slots = vec![Slot::EMPTY; 512];
    let mut body = vec![0u8; 64 * 1024];
    let q = RamQueue::new(&mut queue_bytes[..], &mut slots[..]);
    let mut client: Client<'_, _> =
        Client::new(Config::new("KEY").clock_offset_ms(1_700_000_000_000), q, 1);
    let bodies = [
        &br#"{"code":200,"events_ingested":50,"payload_size_bytes":50,"server_upload_time":1396381378123}"#[..],
        br#"{"code":400,"events_with_invalid_id_lengths":{"device_id":[0]},"error":"Invalid id length for user_id or device_id"}"#,
        br#"{"code":429,"error":"Too many requests for some devices and users","eps_threshold":30,"throttled_devices":{"C8F9E604-F01A-4BD9-95C6-8E5357DF265D":31},"throttled_users":{"datamonster@amplitude.com":32},"throttled_events":[3,4,7],"exceeded_daily_quota_users":{"datanom@amplitude.com":500200},"exceeded_daily_quota_devices":{"A1A1A000-F01A-4BD9-95C6-8E5357DF265D":500900}}"#,
    ];
    let list = [
        amplitude_core::Value::Int(1),
        amplitude_core::Value::Str("two"),
    ];

    COUNTING.store(true, Ordering::SeqCst);
    for i in 0..300u32 {
        let ev: Event = Event::new("Node.js Event")
            .user_id("datamonster@gmail.com")
            .location(37.77, -122.39)
            .ip("127.0.0.1")
            .property("keyString", "valueString")
            .property("keyInt", i)
            .property("keyBool", true)
            .property("list", &list);
        client
            .log_event(
                Instant::from_millis(u64::from(i)),
                ev,
                &mut (),
                None,
                &mut NoSink,
            )
            .unwrap();
    }
    client.flush();
    let out = client
        .next_request(Instant::from_millis(400), &mut body, &mut NoSink)
        .unwrap();
    let flight = out.flight;
    for b in bodies {
        let _ = classify(429, b);
    }
    client.on_response(
        Instant::from_millis(401),
        flight,
        Ok(Response::new(200, bodies[0])),
        &mut NoSink,
    );
    COUNTING.store(false, Ordering::SeqCst);

    assert_eq!(client.counters().delivered, 200);
    assert_eq!(
        ALLOCS.load(Ordering::SeqCst),
        0,
        "allocations on the hot path"
    );
}
