//! The core's async driver (feature `embassy`) over `MockTransport`, in virtual time
//! (embassy-time's mock driver): it batches, retries with backoff, and `flush` resolves
//! only once the flushed events are final.

use amplitude_core::config::Config;
use amplitude_core::driver::Shared;
use amplitude_core::outcome::{Outcome, Report};
use amplitude_core::queue::{RamQueue, Slot};
use amplitude_core::transport::TransportError;
use amplitude_core::{Client, Event, Logged};
use amplitude_mock::{MockTransport, Reply, count_events};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time::{Duration, Instant, MockDriver};
use futures_lite::future;

#[test]
fn driver_batches_retries_and_flush_waits_for_final_outcomes() {
    let transport = MockTransport::new();
    transport
        .push(Reply::status(503, ""))
        .push(Reply::Fail(TransportError::Timeout));
    let outcomes = std::cell::RefCell::new(Vec::new());
    let sink = |r: &Report<'_>| outcomes.borrow_mut().push(r.outcome);
    let config = Config::new("KEY")
        .flush_queue_size(10)
        .flush_interval(Duration::from_secs(10));
    let client: Client<'_, _> = Client::new(
        config,
        RamQueue::new([0u8; 16 * 1024], [Slot::EMPTY; 64]),
        3,
    );
    let shared: Shared<'_, CriticalSectionRawMutex, _, _> = Shared::new(client, sink);
    let (mut body, mut resp) = ([0u8; 8192], [0u8; 512]);
    let started = Instant::now();

    let script = async {
        let names: Vec<String> = (0..25).map(|i| format!("device-{}", i % 5)).collect();
        for (i, dev) in names.iter().enumerate() {
            let ev: Event = Event::new("Tick").device_id(dev).property("i", i);
            assert!(matches!(
                shared.log_event(ev, &mut ()),
                Ok(Logged::Queued(_))
            ));
        }
        // 25 events at flush size 10: two batches go without waiting; the first meets a
        // 503 and a timeout before it is delivered.
        shared
            .flush(Duration::from_secs(120))
            .await
            .expect("flush settles");
        let counters = shared.counters();
        assert_eq!(counters.delivered, 25);
        assert_eq!(counters.pending(), 0);
        assert!(
            Instant::now() - started >= Duration::from_millis(500),
            "two backoffs of at least 250 ms"
        );
    };
    let run = async {
        shared.run(transport.clone(), &mut body, &mut resp).await;
    };
    let clock = async {
        loop {
            for _ in 0..4 {
                future::yield_now().await;
            }
            MockDriver::get().advance(Duration::from_millis(10));
        }
    };
    future::block_on(future::or(script, future::or(run, clock)));

    assert_eq!(
        outcomes
            .borrow()
            .iter()
            .filter(|o| **o == Outcome::Delivered)
            .count(),
        25
    );
    let requests = transport.requests();
    assert!(
        requests.iter().all(|r| count_events(&r.body) <= 10),
        "batches respect the flush size"
    );
    assert_eq!(
        requests
            .iter()
            .filter(|r| matches!(r.reply, Reply::Status { status: 200, .. }))
            .map(|r| count_events(&r.body))
            .sum::<usize>(),
        25
    );
}
