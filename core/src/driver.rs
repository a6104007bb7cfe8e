//! The async driver (feature `embassy`): shares a [`Client`] between tasks behind an
//! embassy-sync mutex and sends through a [`Transport`], sleeping with embassy-time.
//!
//! ```no_run
//! # async fn demo<T: amplitude_core::transport::Transport>(transport: T) {
//! use amplitude_core::{Event, Client, Config, outcome::NoSink};
//! use amplitude_core::driver::Shared;
//! use amplitude_core::queue::{RamQueue, Slot};
//! use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
//!
//! let client: Client<'_, _> = Client::new(Config::new("KEY"), RamQueue::new([0u8; 8192], [Slot::EMPTY; 32]), 7);
//! let shared: Shared<CriticalSectionRawMutex, _, _> = Shared::new(client, NoSink);
//! let ev: Event = Event::new("Boot").device_id("gateway-0042");
//! shared.log_event(ev, &mut ()).unwrap();
//! let mut body = [0u8; 8192];
//! let mut response = [0u8; 1024];
//! // Usually spawned as its own task; runs forever.
//! shared.run(transport, &mut body, &mut response).await;
//! # }
//! ```

use core::cell::RefCell;

use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::RawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Duration, Instant, Timer};

use crate::client::{Client, LogError, Logged};
use crate::event::Event;
use crate::middleware::Chain;
use crate::outcome::{Counters, DropReason, EventId, OutcomeSink};
use crate::queue::Batcher;
use crate::retry::RetryPolicy;
use crate::transport::Transport;

type SharedState<'c, Q, S, R, const F: usize> = Inner<Client<'c, Q, R, F>, S>;

struct Inner<C, S> {
    client: C,
    sink: S,
}

/// A client and its outcome sink, shared between the tasks that log and the task that
/// sends.
pub struct Shared<'c, M: RawMutex, Q, S, R = crate::retry::ExponentialBackoff, const F: usize = 1> {
    inner: Mutex<M, RefCell<SharedState<'c, Q, S, R, F>>>,
    wake: Signal<M, ()>,
    progress: Signal<M, ()>,
}

/// Why a flush or shutdown returned before everything was final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Unsettled {
    /// Events still pending when the deadline passed.
    pub pending: u64,
}

impl<'c, M: RawMutex, Q: Batcher, S: OutcomeSink, R: RetryPolicy + Clone, const F: usize>
    Shared<'c, M, Q, S, R, F>
{
    /// Share `client`, reporting outcomes to `sink`.
    pub fn new(client: Client<'c, Q, R, F>, sink: S) -> Self {
        Self {
            inner: Mutex::new(RefCell::new(Inner { client, sink })),
            wake: Signal::new(),
            progress: Signal::new(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Client<'c, Q, R, F>, &mut S) -> T) -> Option<T> {
        self.inner.lock(|cell| {
            let mut inner = cell.try_borrow_mut().ok()?;
            let Inner { client, sink } = &mut *inner;
            Some(f(client, sink))
        })
    }

    /// Run `chain` over the event (outside the lock), then validate, encode and queue it.
    /// Wakes the sender when a batch is due. Returns [`LogError::Busy`] when called from
    /// inside this client's own outcome sink.
    pub fn log_event<const N: usize, C: Chain<N> + ?Sized>(
        &self,
        mut event: Event<'_, N>,
        chain: &mut C,
    ) -> Result<Logged, LogError> {
        if self.with(|c, _| c.config().opt_out).ok_or(LogError::Busy)? {
            return self
                .with(|c, s| c.log_event(Instant::now(), event, &mut (), None, s))
                .ok_or(LogError::Busy)?;
        }
        if !chain.run_all(&mut event, None) {
            return self
                .with(|c, s| c.log_event(Instant::now(), event, &mut FilterAll, None, s))
                .ok_or(LogError::Busy)?;
        }
        let now = Instant::now();
        let (result, due) = self
            .with(|c, s| {
                let r = c.enqueue(now, &event, s);
                (r, c.next_wakeup(now) == Some(now))
            })
            .ok_or(LogError::Busy)?;
        if due {
            self.wake.signal(());
        }
        result.map(Logged::Queued)
    }

    /// The running totals.
    pub fn counters(&self) -> Counters {
        self.with(|c, _| *c.counters()).unwrap_or_default()
    }

    /// Send everything logged so far and wait until it has final outcomes, or until
    /// `timeout` passes.
    pub async fn flush(&self, timeout: Duration) -> Result<(), Unsettled> {
        let deadline = Instant::now() + timeout;
        let upto = self.with(|c, _| c.flush()).unwrap_or(EventId(0));
        self.wake.signal(());
        loop {
            let (settled, pending) = self
                .with(|c, _| (c.is_settled(upto), c.counters().pending()))
                .unwrap_or((false, 0));
            if settled {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Unsettled { pending });
            }
            let tick = Timer::at(deadline.min(now + Duration::from_millis(100)));
            futures_lite::future::or(self.progress.wait(), tick).await;
        }
    }

    /// Flush with `timeout`, then drop whatever is still pending
    /// ([`DropReason::Shutdown`]); reports how many that were.
    pub async fn shutdown(&self, timeout: Duration) -> Result<(), Unsettled> {
        let r = self.flush(timeout).await;
        self.with(|c, s| c.drop_all(DropReason::Shutdown, s));
        r
    }

    /// The sending loop: build requests when due, send them through `transport`, apply
    /// the results; sleep until the next deadline, a due batch or a flush. `body` bounds
    /// the request size, `response` the response body kept for classification.
    pub async fn run<T: Transport>(
        &self,
        mut transport: T,
        body: &mut [u8],
        response: &mut [u8],
    ) -> ! {
        loop {
            let now = Instant::now();
            let out = self.with(|c, s| {
                c.next_request(now, body, s).map(|o| {
                    (
                        o.flight,
                        c.config().server_url,
                        o.events,
                        o.request.body.len(),
                    )
                })
            });
            if let Some(Some((flight, url, events, len))) = out {
                debug!("sending {} events", events);
                let result = transport
                    .send(
                        crate::transport::Request {
                            url,
                            body: &body[..len],
                        },
                        response,
                    )
                    .await;
                if let Err(e) = &result {
                    warn!("transport error: {}", e);
                }
                let _ = events;
                self.with(|c, s| c.on_response(Instant::now(), flight, result, s));
                self.progress.signal(());
                continue;
            }
            let wake_at = self.with(|c, _| c.next_wakeup(now)).flatten();
            match wake_at {
                Some(t) => {
                    futures_lite::future::or(self.wake.wait(), Timer::at(t)).await;
                }
                None => self.wake.wait().await,
            }
        }
    }
}

/// A chain that filters everything (used to count an event a middleware stopped).
struct FilterAll;

impl<const N: usize> Chain<N> for FilterAll {
    fn run_all<'a>(
        &mut self,
        _event: &mut Event<'a, N>,
        _extra: Option<&dyn core::any::Any>,
    ) -> bool {
        false
    }
}
