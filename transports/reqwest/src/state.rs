//! The state shared by the client handles and the background sender.

use std::cell::RefCell;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant as StdInstant};

use amplitude_core::client::Client as Core;
use amplitude_core::encode::Rng;
use amplitude_core::outcome::{DropReason, EventId, Outcome, OutcomeSink, Report};
use amplitude_core::queue::{RamQueue, Slot};
use amplitude_core::retry::ExponentialBackoff;
use amplitude_core::validate::Rules;
use embassy_time::Instant;
use tokio::sync::Notify;

use crate::middleware::FnMiddleware;
use crate::options::{MAX_IN_FLIGHT, OutcomeCallback};
use crate::report::{FlushReport, ReportBuf};

/// The queue of a std client: boxed byte store and slot table.
pub(crate) type Queue = RamQueue<Box<[u8]>, Box<[Slot]>>;
/// The core client as the std client uses it.
pub(crate) type CoreClient = Core<'static, Queue, ExponentialBackoff, MAX_IN_FLIGHT>;

/// Maps `std::time::Instant` to the core's `embassy_time::Instant` (zero = client start).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    base: StdInstant,
}

impl Clock {
    pub(crate) fn new(base: StdInstant) -> Self {
        Self { base }
    }

    pub(crate) fn at(&self, t: StdInstant) -> Instant {
        let us = t.saturating_duration_since(self.base).as_micros();
        Instant::from_micros(u64::try_from(us).unwrap_or(u64::MAX / 2))
    }

    pub(crate) fn std_at(&self, t: Instant) -> StdInstant {
        deadline_from(self.base, Duration::from_micros(t.as_micros()))
    }
}

/// `base + d`, saturating at a far future instead of overflowing.
pub(crate) fn deadline_from(base: StdInstant, d: Duration) -> StdInstant {
    base.checked_add(d)
        .or_else(|| base.checked_add(Duration::from_secs(1 << 32)))
        .unwrap_or(base)
}

/// A random seed from the standard library's per-process random keys.
pub(crate) fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Strings the core borrows for the life of the process (API keys, URLs), each stored
/// once however many clients use it.
pub(crate) fn intern(s: &str) -> &'static str {
    static SET: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = SET
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(&found) = set.get(s) {
        return found;
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    set.insert(leaked);
    leaked
}

/// Where the client is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    ShuttingDown,
    Stopped,
}

/// A flush or shutdown waiting for the events logged before it.
#[derive(Debug)]
pub(crate) struct Waiter {
    pub(crate) key: u64,
    pub(crate) upto: EventId,
    pub(crate) deadline: StdInstant,
    pub(crate) shutdown: bool,
    pub(crate) start_pending: u64,
    pub(crate) delivered: u64,
    pub(crate) rejected: u64,
    pub(crate) dropped: u64,
    pub(crate) done: Option<FlushReport>,
}

impl Waiter {
    pub(crate) fn report(&self, timed_out: bool, stopped: bool) -> FlushReport {
        let settled = self.delivered + self.rejected + self.dropped;
        FlushReport {
            delivered: self.delivered,
            rejected: self.rejected,
            dropped: self.dropped,
            pending: self.start_pending.saturating_sub(settled),
            timed_out,
            stopped,
        }
    }
}

/// Everything behind the client's mutex.
pub(crate) struct State {
    pub(crate) core: CoreClient,
    pub(crate) waiters: Vec<Waiter>,
    /// Outcomes waiting for the callback (only when one is set).
    pub(crate) reports: Option<ReportBuf>,
    pub(crate) phase: Phase,
    /// When the sender looks at the queue next on its own (`None`: not before
    /// something wakes it). `log_event` wakes it when an event is due earlier.
    pub(crate) sender_wake_at: Option<StdInstant>,
    /// Events queued since the sender last looked.
    pub(crate) since_wake: u32,
    pub(crate) next_key: u64,
}

impl State {
    /// Run `f` on the core with a sink feeding the waiters and the report buffer.
    pub(crate) fn with_sink<T>(
        &mut self,
        f: impl FnOnce(&mut CoreClient, &mut Sink<'_>) -> T,
    ) -> T {
        let State {
            core,
            waiters,
            reports,
            ..
        } = self;
        let mut sink = Sink {
            waiters,
            reports: reports.as_mut(),
        };
        f(core, &mut sink)
    }

    /// Find waiters whose events are settled or whose deadline passed, and carry out a
    /// due shutdown. Returns the reports to hand out with [`Inner::complete`] once the
    /// outcome callback has seen every outcome, and whether the sender must stop.
    pub(crate) fn settle_waiters(&mut self, now: StdInstant) -> (Vec<(u64, FlushReport)>, bool) {
        let mut done = Vec::new();
        let mut shutdown_due = false;
        for w in self.waiters.iter().filter(|w| w.done.is_none()) {
            let settled = self.core.is_settled(w.upto);
            if settled || now >= w.deadline {
                if w.shutdown {
                    shutdown_due = true;
                } else {
                    done.push((w.key, w.report(!settled, false)));
                }
            }
        }
        if shutdown_due {
            return (self.stop(), true);
        }
        (done, false)
    }

    /// Drop whatever is still pending (reported as `Dropped(Shutdown)`) and stop.
    /// Returns the reports of every waiter (for [`Inner::complete`]).
    pub(crate) fn stop(&mut self) -> Vec<(u64, FlushReport)> {
        let before: Vec<u64> = self
            .waiters
            .iter()
            .map(|w| w.report(false, false).pending)
            .collect();
        let dropped_before = self.core.counters().dropped;
        self.with_sink(|core, sink| core.drop_all(DropReason::Shutdown, sink));
        let dropped = self.core.counters().dropped - dropped_before;
        if dropped > 0 {
            tracing::warn!(dropped, "shutdown dropped events that were not delivered");
        }
        self.phase = Phase::Stopped;
        self.waiters
            .iter()
            .zip(before)
            .filter(|(w, _)| w.done.is_none())
            .map(|(w, pending_before)| (w.key, w.report(pending_before > 0, false)))
            .collect()
    }
}

/// The outcome sink the core reports to: counts for waiters, copies for the callback.
pub(crate) struct Sink<'a> {
    waiters: &'a mut [Waiter],
    reports: Option<&'a mut ReportBuf>,
}

impl OutcomeSink for Sink<'_> {
    fn on_outcome(&mut self, r: &Report<'_>) {
        for w in self.waiters.iter_mut() {
            if w.done.is_none() && r.id < w.upto {
                match r.outcome {
                    Outcome::Delivered => w.delivered += 1,
                    Outcome::Rejected(_) => w.rejected += 1,
                    Outcome::Dropped(_) => w.dropped += 1,
                }
            }
        }
        match r.outcome {
            Outcome::Delivered => {}
            Outcome::Rejected(reason) => {
                tracing::debug!(
                    id = r.id.0,
                    ?reason,
                    attempts = r.attempts,
                    "event rejected"
                )
            }
            Outcome::Dropped(reason) => {
                tracing::debug!(id = r.id.0, ?reason, attempts = r.attempts, "event dropped")
            }
        }
        if let Some(buf) = self.reports.as_deref_mut() {
            buf.push(r);
        }
    }
}

/// Shared by every handle of a client and by its sender.
pub(crate) struct Inner {
    pub(crate) state: Mutex<State>,
    /// Blocking waiters (flush_blocking, log_event_wait, drop) wait on this.
    pub(crate) cond: Condvar,
    /// Wakes the sender.
    pub(crate) wake: Notify,
    /// Wakes async waiters when a waiter completes or the sender stops.
    pub(crate) progress: Notify,
    pub(crate) sender_alive: AtomicBool,
    pub(crate) opt_out: AtomicBool,
    pub(crate) middleware: Mutex<Vec<FnMiddleware>>,
    pub(crate) has_middleware: AtomicBool,
    pub(crate) on_outcome: Option<OutcomeCallback>,
    callback_lock: Mutex<()>,
    pub(crate) clock: Clock,
    pub(crate) rules: Rules,
    pub(crate) batch: u32,
    pub(crate) max_event_bytes: usize,
    pub(crate) flush_timeout: Duration,
    pub(crate) drop_timeout: Duration,
    pub(crate) flush_interval: Duration,
    pub(crate) url: &'static str,
}

/// Settings of [`Inner::new`].
pub(crate) struct InnerConfig {
    pub(crate) clock: Clock,
    pub(crate) rules: Rules,
    pub(crate) batch: u32,
    pub(crate) flush_timeout: Duration,
    pub(crate) drop_timeout: Duration,
    pub(crate) flush_interval: Duration,
    pub(crate) opt_out: bool,
    pub(crate) on_outcome: Option<OutcomeCallback>,
    pub(crate) url: &'static str,
}

impl Inner {
    pub(crate) fn new(core: CoreClient, c: InnerConfig) -> Self {
        let max_event_bytes = core.max_event_bytes();
        Self {
            state: Mutex::new(State {
                core,
                waiters: Vec::new(),
                reports: c.on_outcome.as_ref().map(|_| ReportBuf::default()),
                phase: Phase::Running,
                sender_wake_at: None,
                since_wake: 0,
                next_key: 0,
            }),
            cond: Condvar::new(),
            wake: Notify::new(),
            progress: Notify::new(),
            sender_alive: AtomicBool::new(true),
            opt_out: AtomicBool::new(c.opt_out),
            middleware: Mutex::new(Vec::new()),
            has_middleware: AtomicBool::new(false),
            on_outcome: c.on_outcome,
            callback_lock: Mutex::new(()),
            clock: c.clock,
            rules: c.rules,
            batch: c.batch,
            max_event_bytes,
            flush_timeout: c.flush_timeout,
            drop_timeout: c.drop_timeout,
            flush_interval: c.flush_interval,
            url: c.url,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wake every waiter (async and blocking).
    pub(crate) fn wake_waiters(&self) {
        self.progress.notify_waiters();
        self.cond.notify_all();
    }

    /// Hand collected outcomes to the callback (outside the state lock), then clear them.
    pub(crate) fn deliver(&self, buf: &mut ReportBuf) {
        if buf.is_empty() {
            return;
        }
        if let Some(cb) = &self.on_outcome {
            let _serial = self
                .callback_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            buf.for_each(|r| {
                if catch_unwind(AssertUnwindSafe(|| cb(r))).is_err() {
                    tracing::error!(id = r.id.0, "outcome callback panicked");
                }
            });
        }
        buf.clear();
    }

    /// Hand out waiter reports (after their outcomes went to the callback).
    pub(crate) fn complete(&self, done: Vec<(u64, FlushReport)>) {
        if done.is_empty() {
            return;
        }
        {
            let mut st = self.lock();
            for (key, report) in done {
                if let Some(w) = st.waiters.iter_mut().find(|w| w.key == key) {
                    w.done.get_or_insert(report);
                }
            }
        }
        self.wake_waiters();
    }

    /// Move the outcomes collected in `st` into `into` (for [`Inner::deliver`]).
    pub(crate) fn take_reports(st: &mut State, into: &mut ReportBuf) {
        if let Some(r) = st.reports.as_mut() {
            if !r.is_empty() {
                std::mem::swap(r, into);
            }
        }
    }

    /// Register a flush (or shutdown) of everything logged so far. `Err` carries the
    /// final report when there is nothing to wait for (the client is stopped).
    pub(crate) fn begin_wait(&self, timeout: Duration, shutdown: bool) -> Result<u64, FlushReport> {
        let mut st = self.lock();
        if st.phase == Phase::Stopped || !self.sender_alive.load(Ordering::Acquire) {
            return Err(FlushReport {
                pending: st.core.counters().pending(),
                stopped: true,
                ..FlushReport::default()
            });
        }
        if shutdown {
            st.phase = Phase::ShuttingDown;
        }
        let upto = st.core.flush();
        let start_pending = st.core.counters().pending();
        let key = st.next_key;
        st.next_key += 1;
        st.waiters.push(Waiter {
            key,
            upto,
            deadline: deadline_from(StdInstant::now(), timeout),
            shutdown,
            start_pending,
            delivered: 0,
            rejected: 0,
            dropped: 0,
            done: None,
        });
        drop(st);
        self.wake.notify_one();
        Ok(key)
    }

    /// The report of waiter `key` if it is complete (removing the waiter).
    fn take_done(st: &mut State, key: u64) -> Option<FlushReport> {
        let pos = st.waiters.iter().position(|w| w.key == key)?;
        let report = st.waiters[pos].done?;
        st.waiters.swap_remove(pos);
        Some(report)
    }

    /// Complete waiter `key` without the sender (it is not running): a shutdown is
    /// carried out here, a flush reports what is still pending.
    pub(crate) fn finish_without_sender(&self, key: u64) -> FlushReport {
        let mut reports = ReportBuf::default();
        let report = {
            let mut st = self.lock();
            if let Some(r) = Self::take_done(&mut st, key) {
                return r;
            }
            let others = if st.phase == Phase::ShuttingDown {
                st.stop()
            } else {
                Vec::new()
            };
            Self::take_reports(&mut st, &mut reports);
            let report = match st.waiters.iter().position(|w| w.key == key) {
                Some(pos) => {
                    let w = st.waiters.swap_remove(pos);
                    let own = others.iter().find(|(k, _)| *k == key).map(|(_, r)| *r);
                    let mut r = w.done.or(own).unwrap_or_else(|| w.report(false, true));
                    r.stopped = true;
                    r
                }
                None => FlushReport {
                    stopped: true,
                    ..FlushReport::default()
                },
            };
            (report, others)
        };
        let (report, others) = report;
        self.deliver(&mut reports);
        self.complete(others);
        self.wake_waiters();
        report
    }

    /// Wait (async, on any executor) for waiter `key` to complete.
    pub(crate) async fn wait(&self, key: u64) -> FlushReport {
        let mut guard = WaitGuard {
            inner: self,
            key: Some(key),
        };
        loop {
            let mut notified = pin!(self.progress.notified());
            notified.as_mut().enable();
            let done = Self::take_done(&mut self.lock(), key);
            if let Some(r) = done {
                guard.key = None;
                return r;
            }
            if !self.sender_alive.load(Ordering::Acquire) {
                guard.key = None;
                return self.finish_without_sender(key);
            }
            notified.await;
        }
    }

    /// Wait on this thread for waiter `key`, at most until a second past `deadline`
    /// (the sender completes it at `deadline`; the margin covers a stalled sender).
    pub(crate) fn wait_blocking(&self, key: u64, deadline: StdInstant) -> FlushReport {
        let hard = deadline_from(deadline, Duration::from_secs(1));
        let mut st = self.lock();
        loop {
            if let Some(r) = Self::take_done(&mut st, key) {
                return r;
            }
            if !self.sender_alive.load(Ordering::Acquire) {
                drop(st);
                return self.finish_without_sender(key);
            }
            let now = StdInstant::now();
            if now >= hard {
                let Some(pos) = st.waiters.iter().position(|w| w.key == key) else {
                    return FlushReport::default();
                };
                let report = st.waiters[pos].report(true, false);
                if !st.waiters[pos].shutdown {
                    st.waiters.swap_remove(pos);
                }
                return report;
            }
            let step = (hard - now).min(Duration::from_millis(100));
            st = self
                .cond
                .wait_timeout(st, step)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Removes a cancelled flush's waiter (a shutdown's stays: the shutdown goes on).
struct WaitGuard<'a> {
    inner: &'a Inner,
    key: Option<u64>,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let mut st = self.inner.lock();
            if let Some(pos) = st.waiters.iter().position(|w| w.key == key && !w.shutdown) {
                st.waiters.swap_remove(pos);
            }
        }
    }
}

thread_local! {
    /// Per-thread insert_id generator and encoding buffer, so logging allocates nothing.
    static SCRATCH: RefCell<Option<(Rng, Vec<u8>)>> = const { RefCell::new(None) };
    /// Clients whose middleware runs on this thread (to refuse re-entrant logging).
    static IN_MIDDLEWARE: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` with this thread's generator and a buffer of `size` bytes. A nested call
/// (from a serializer that logs) gets fresh ones.
pub(crate) fn with_scratch<T>(size: usize, f: impl FnOnce(&mut Rng, &mut [u8]) -> T) -> T {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            let (rng, buf) = slot.get_or_insert_with(|| (Rng::new(random_seed()), Vec::new()));
            if buf.len() < size {
                // Zeroed allocations are mapped lazily: only what is written is touched.
                *buf = vec![0u8; size];
            }
            f(rng, &mut buf[..size])
        }
        Err(_) => f(&mut Rng::new(random_seed()), &mut vec![0u8; size]),
    })
}

/// Marks the middleware of the client at `id` as running on this thread; `None` when
/// it already is (re-entrant logging).
pub(crate) fn enter_middleware(id: usize) -> Option<MiddlewareGuard> {
    IN_MIDDLEWARE.with(|v| {
        let mut v = v.borrow_mut();
        if v.contains(&id) {
            return None;
        }
        v.push(id);
        Some(MiddlewareGuard(id))
    })
}

/// Unmarks on drop (also when a middleware panics).
pub(crate) struct MiddlewareGuard(usize);

impl Drop for MiddlewareGuard {
    fn drop(&mut self) {
        IN_MIDDLEWARE.with(|v| v.borrow_mut().retain(|&x| x != self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_round_trips_std_instants_to_the_microsecond() {
        let base = StdInstant::now();
        let clock = Clock::new(base);
        let later = base + Duration::from_millis(1234) + Duration::from_micros(5);
        let t = clock.at(later);
        assert_eq!(t.as_micros(), 1_234_005);
        assert_eq!(clock.std_at(t), later);
        // Before the base saturates at zero.
        assert_eq!(
            clock
                .at(base.checked_sub(Duration::from_secs(1)).unwrap_or(base))
                .as_micros(),
            0
        );
    }

    #[test]
    fn deadlines_saturate_instead_of_overflowing() {
        let now = StdInstant::now();
        assert!(deadline_from(now, Duration::MAX) > now + Duration::from_secs(3600 * 24 * 365));
    }

    #[test]
    fn interned_strings_are_stored_once() {
        let a = intern("https://example.test/2/httpapi");
        let b = intern(&String::from("https://example.test/2/httpapi"));
        assert!(std::ptr::eq(a, b));
        assert_ne!(intern("k1").as_ptr(), intern("k2").as_ptr());
    }

    #[test]
    fn waiter_reports_count_what_is_left() {
        let w = Waiter {
            key: 0,
            upto: EventId(10),
            deadline: StdInstant::now(),
            shutdown: false,
            start_pending: 10,
            delivered: 6,
            rejected: 1,
            dropped: 1,
            done: None,
        };
        let r = w.report(true, false);
        assert_eq!((r.pending, r.timed_out, r.total()), (2, true, 10));
    }

    #[test]
    fn nested_scratch_use_gets_its_own_buffer() {
        let outer = with_scratch(64, |_, buf| {
            buf[0] = 1;
            with_scratch(64, |_, inner| {
                inner[0] = 2;
                inner[0]
            }) + buf[0]
        });
        assert_eq!(outer, 3);
    }
}
