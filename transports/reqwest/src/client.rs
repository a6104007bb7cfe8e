//! The std [`Client`]: cheap to clone, safe to share, non-blocking `log_event`, a
//! background sender, `flush`, `shutdown` and an outcome for every event.

use std::any::Any;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant as StdInstant};

use amplitude_core::client::{Prepared, Refused, prepare};
use amplitude_core::config::{Config, QueueFullPolicy};
use amplitude_core::middleware::{Chain, Next, Payload};
use amplitude_core::outcome::{Counters, EventId};
use amplitude_core::queue::{Batcher, RamQueue, Slot};
use amplitude_core::retry::ExponentialBackoff;
use amplitude_core::transport::Transport;
use amplitude_core::validate::Rules;
use amplitude_core::{Event, LogError as CoreLogError};

use crate::error::{BlockingError, InitError, LogError};
use crate::middleware::FnMiddleware;
use crate::options::Options;
use crate::report::FlushReport;
use crate::sender::{self, Dispatch, Lend, SenderConfig};
use crate::state::{
    Clock, CoreClient, Inner, InnerConfig, Phase, deadline_from, enter_middleware, intern,
    random_seed, with_scratch,
};
use crate::transport::ReqwestTransport;

/// Create a client that sends to Amplitude with `api_key` through
/// [`ReqwestTransport`], its sender running in the background.
///
/// ```no_run
/// use amplitude_reqwest::{Event, Options};
///
/// let client = amplitude_reqwest::init("YOUR_API_KEY", Options::default()).unwrap();
/// let event: Event = Event::new("Button Clicked").user_id("datamonster@gmail.com");
/// client.log_event(event).unwrap();
/// let report = client.flush_blocking(std::time::Duration::from_secs(10)).unwrap();
/// println!("{report}");
/// ```
pub fn init(api_key: impl AsRef<str>, options: Options) -> Result<Client, InitError> {
    let (inner, cfg) = setup(api_key.as_ref(), &options)?;
    let plain_http = options.url().starts_with("http://");
    let transport = ReqwestTransport::builder()
        .timeout(options.request_timeout)
        .plain_http_only(plain_http);
    #[cfg(feature = "gzip")]
    let transport = transport.gzip(options.gzip);
    let transport = transport.build().map_err(InitError::Transport)?;
    let thread = match &options.runtime {
        Some(handle) => {
            spawn_on(handle, sender::run(inner.clone(), transport, cfg));
            None
        }
        None => Some(spawn_thread(inner.clone(), transport, cfg)?),
    };
    Ok(Client::from_parts(inner, thread))
}

/// Spawn the sender on a runtime (needs the concrete, `Send` future of the reqwest
/// transport).
fn spawn_on(handle: &tokio::runtime::Handle, fut: impl Future<Output = ()> + Send + 'static) {
    drop(handle.spawn(fut));
}

/// Run the sender on its own thread with a single-threaded tokio runtime.
fn spawn_thread<T: Dispatch + Send + 'static>(
    inner: Arc<Inner>,
    transport: T,
    cfg: SenderConfig,
) -> Result<JoinHandle<()>, InitError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(InitError::Runtime)?;
    std::thread::Builder::new()
        .name("amplitude-sender".into())
        .spawn(move || rt.block_on(sender::run(inner, transport, cfg)))
        .map_err(InitError::Runtime)
}

/// Check the options and build the shared state.
fn setup(api_key: &str, o: &Options) -> Result<(Arc<Inner>, SenderConfig), InitError> {
    if api_key.is_empty() {
        return Err(InitError::EmptyApiKey);
    }
    o.check()
        .map_err(|(name, reason)| InitError::InvalidOption { name, reason })?;
    let url = o.url();
    if ReqwestTransport::check_url(url).is_err() {
        return Err(InitError::InvalidServerUrl(url.to_owned()));
    }
    let base = StdInstant::now();
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let emb = |d: Duration| {
        embassy_time::Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
    };
    let url = intern(url);
    let config = Config::new(intern(api_key))
        .server_url(url)
        .flush_queue_size(o.flush_queue_size)
        .flush_interval(emb(o.flush_interval))
        .max_retries(o.max_retries)
        .throttle_pause(emb(o.throttle_pause))
        .max_request_bytes(o.max_request_bytes)
        .min_id_length(o.min_id_length)
        .queue_full(o.queue_full)
        .offline(o.offline)
        .clock_offset_ms(unix_ms);
    let retry = ExponentialBackoff {
        base: emb(o.backoff_base),
        cap: emb(o.backoff_cap),
        max_attempts: u32::from(o.max_retries),
        ..ExponentialBackoff::default()
    };
    let queue = RamQueue::new(
        vec![0u8; o.queue_bytes].into_boxed_slice(),
        vec![Slot::EMPTY; o.queue_events].into_boxed_slice(),
    );
    let core: CoreClient = CoreClient::with_policy(config, queue, retry, random_seed());
    let inner = Inner::new(
        core,
        InnerConfig {
            clock: Clock::new(base),
            rules: Rules {
                min_id_length: o.min_id_length,
            },
            batch: u32::from(o.flush_queue_size),
            flush_timeout: o.flush_timeout,
            drop_timeout: o.drop_timeout,
            flush_interval: o.flush_interval,
            opt_out: o.opt_out,
            on_outcome: o.on_outcome.clone(),
            url,
        },
    );
    let cfg = SenderConfig {
        max_in_flight: o.max_in_flight,
        max_request_bytes: o.max_request_bytes,
    };
    Ok((Arc::new(inner), cfg))
}

/// The last handle's drop flushes (bounded) and stops the sender.
struct Handle {
    inner: Arc<Inner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let inner = &self.inner;
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let on_runtime = tokio::runtime::Handle::try_current().is_ok();
        let key = match inner.begin_wait(inner.drop_timeout, true) {
            Ok(key) => key,
            Err(_) => {
                // Stopped already: its thread is ending (joined unless that would
                // block a runtime thread).
                if let Some(t) = thread.filter(|_| !on_runtime) {
                    let _ = t.join();
                }
                return;
            }
        };
        if on_runtime {
            // Blocking here could stall the sender itself: it finishes in the background.
            tracing::debug!("client dropped on a runtime thread; sender drains in the background");
            return;
        }
        let deadline = deadline_from(StdInstant::now(), inner.drop_timeout);
        let report = inner.wait_blocking(key, deadline);
        if !report.all_delivered() {
            tracing::warn!(%report, "client dropped before every event was delivered");
        }
        if let Some(t) = thread {
            if !inner.sender_alive.load(Ordering::Acquire) || report.pending == 0 {
                let _ = t.join();
            }
        }
    }
}

/// An Amplitude client for std programs: `Clone + Send + Sync` (clones share one
/// queue and sender), logging never blocks on the network, and every accepted event
/// ends with exactly one outcome — delivered, rejected by the server, or dropped with
/// a reason — reported to [`Options::on_outcome`] and counted in [`Client::counters`].
///
/// The sender runs on its own thread (default) or on a tokio runtime you give it
/// ([`Options::runtime`]), so the client works the same in async and plain code.
/// Dropping the last handle flushes for at most [`Options::drop_timeout`]; call
/// [`Client::shutdown`] to control that.
///
/// ```
/// use std::time::Duration;
/// use amplitude_mock::server::{Config, MockServer};
/// use amplitude_reqwest::{Event, Options};
///
/// let server = MockServer::start(Config::default()).unwrap();
/// let client = amplitude_reqwest::init(
///     "API_KEY",
///     Options::default().server_url(server.http_v2_url()),
/// ).unwrap();
/// let event: Event = Event::new("Node.js Event")
///     .user_id("datamonster@gmail.com")
///     .location(37.77, -122.39)
///     .ip("127.0.0.1")
///     .property("keyString", "valueString")
///     .property("keyInt", 11)
///     .property("keyBool", true);
/// client.log_event(event).unwrap();
/// let report = client.flush_blocking(Duration::from_secs(10)).unwrap();
/// assert_eq!(report.delivered, 1);
/// assert_eq!(server.summary().events_ingested, 1);
/// ```
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.handle.inner;
        f.debug_struct("Client")
            .field("url", &inner.url)
            .field("counters", &self.counters())
            .field("sender_alive", &inner.sender_alive.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client sending through a transport of your own (for example
    /// `amplitude_mock::MockTransport` in tests). Its sender runs on its own thread,
    /// or — with [`Options::runtime`] — on a blocking thread of that runtime.
    ///
    /// ```
    /// use amplitude_mock::MockTransport;
    /// use amplitude_reqwest::{Client, Event, Options};
    ///
    /// let transport = MockTransport::new();
    /// let client = Client::with_transport("KEY", Options::default(), transport.clone()).unwrap();
    /// let event: Event = Event::new("Login").user_id("user-1234");
    /// client.log_event(event).unwrap();
    /// let report = client.flush_blocking(std::time::Duration::from_secs(5)).unwrap();
    /// assert_eq!(report.delivered, 1);
    /// assert_eq!(transport.requests().len(), 1);
    /// ```
    pub fn with_transport<T>(
        api_key: impl AsRef<str>,
        options: Options,
        transport: T,
    ) -> Result<Client, InitError>
    where
        T: Transport + Clone + Send + 'static,
    {
        let (inner, cfg) = setup(api_key.as_ref(), &options)?;
        let transport = Lend(transport);
        let thread =
            match &options.runtime {
                Some(handle) => {
                    let h = handle.clone();
                    let sender_inner = inner.clone();
                    drop(handle.spawn_blocking(move || {
                        h.block_on(sender::run(sender_inner, transport, cfg))
                    }));
                    None
                }
                None => Some(spawn_thread(inner.clone(), transport, cfg)?),
            };
        Ok(Client::from_parts(inner, thread))
    }

    fn from_parts(inner: Arc<Inner>, thread: Option<JoinHandle<()>>) -> Self {
        Client {
            handle: Arc::new(Handle {
                inner,
                thread: Mutex::new(thread),
            }),
        }
    }

    fn inner(&self) -> &Arc<Inner> {
        &self.handle.inner
    }

    /// Run the middleware, validate and encode `event` (all outside the client's lock),
    /// then queue it; returns at once. The event is sent by the background sender when
    /// a batch is full, the flush interval passes, or on [`flush`](Self::flush).
    ///
    /// `serde_json` data can be attached with [`Value::serde`](crate::Value::serde) or
    /// as pre-encoded [`RawJson`](crate::RawJson).
    pub fn log_event(&self, event: Event<'_>) -> Result<EventId, LogError> {
        self.log(event, None, None)
    }

    /// Like [`log_event`](Self::log_event), passing `extra` data to the middleware
    /// (as `payload.extra`).
    pub fn log_event_with(&self, event: Event<'_>, extra: &dyn Any) -> Result<EventId, LogError> {
        self.log(event, Some(extra), None)
    }

    /// Like [`log_event`](Self::log_event), but when the queue is full, wait up to
    /// `max_wait` on this thread for room (backpressure for producers that must not
    /// drop). On a tokio runtime thread it does not wait and behaves like `log_event`.
    pub fn log_event_wait(
        &self,
        event: Event<'_>,
        max_wait: Duration,
    ) -> Result<EventId, LogError> {
        let wait = tokio::runtime::Handle::try_current()
            .is_err()
            .then_some(max_wait);
        self.log(event, None, wait)
    }

    fn log(
        &self,
        mut event: Event<'_>,
        extra: Option<&dyn Any>,
        wait: Option<Duration>,
    ) -> Result<EventId, LogError> {
        let inner = self.inner();
        if inner.opt_out.load(Ordering::Relaxed) {
            inner.lock().core.count_refused(Refused::OptedOut);
            return Err(LogError::OptedOut);
        }
        if inner.has_middleware.load(Ordering::Acquire) {
            let id = Arc::as_ptr(inner) as usize;
            let Some(_guard) = enter_middleware(id) else {
                return Err(LogError::Reentrant);
            };
            let passed = {
                let mut chain = inner
                    .middleware
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                chain.as_mut_slice().run_all(&mut event, extra)
            };
            if !passed {
                inner.lock().core.count_refused(Refused::Filtered);
                return Err(LogError::Filtered);
            }
        }
        with_scratch(inner.max_event_bytes, |rng, buf| {
            match prepare(&event, &inner.rules, rng, buf) {
                Ok(prepared) => self.enqueue(&prepared, wait),
                Err(e) => {
                    inner.lock().core.count_refused(Refused::Invalid);
                    Err(e.into())
                }
            }
        })
    }

    fn enqueue(
        &self,
        prepared: &Prepared<'_>,
        wait: Option<Duration>,
    ) -> Result<EventId, LogError> {
        let inner = self.inner();
        let deadline = wait.map(|w| deadline_from(StdInstant::now(), w));
        let mut st = inner.lock();
        loop {
            if st.phase != Phase::Running || !inner.sender_alive.load(Ordering::Acquire) {
                return Err(LogError::Closed);
            }
            if let Some(deadline) = deadline {
                let (slots, bytes) = st.core.queue().capacity();
                let q = st.core.queue();
                let fits = q.len() < slots && q.used_bytes() + prepared.json.len() <= bytes;
                let now = StdInstant::now();
                if !fits
                    && now < deadline
                    && st.core.config().queue_full == QueueFullPolicy::RejectNewest
                    && prepared.json.len() <= bytes
                {
                    // Make sure the sender is working on it, then wait for room.
                    st.sender_wake_at = Some(now);
                    inner.wake.notify_one();
                    let step = (deadline - now).min(Duration::from_millis(50));
                    st = inner
                        .cond
                        .wait_timeout(st, step)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    continue;
                }
            }
            let now_std = StdInstant::now();
            let now = inner.clock.at(now_std);
            let result = st.with_sink(|core, sink| core.enqueue_prepared(now, prepared, sink));
            return match result {
                Ok(id) => {
                    st.since_wake += 1;
                    let evicted = st.reports.as_ref().is_some_and(|r| !r.is_empty());
                    // Wake the sender when a batch is full, or when it would otherwise
                    // sleep past this event's flush interval.
                    let due = deadline_from(now_std, inner.flush_interval);
                    let late = st.sender_wake_at.is_none_or(|t| t > due);
                    let wake = late || st.since_wake >= inner.batch || evicted;
                    if wake {
                        st.sender_wake_at = Some(now_std);
                        st.since_wake = 0;
                    }
                    drop(st);
                    if wake {
                        inner.wake.notify_one();
                    }
                    Ok(id)
                }
                Err(CoreLogError::QueueFull) => {
                    drop(st);
                    inner.wake.notify_one();
                    Err(LogError::QueueFull)
                }
                Err(e) => Err(e.into()),
            };
        }
    }

    /// Add a middleware at the end of the chain. It sees every event before
    /// validation and may change it, stop it (by not calling `next.run`), or copy it
    /// elsewhere.
    ///
    /// ```
    /// use amplitude_reqwest::{Client, Event, LogError, Options, Target};
    /// use amplitude_mock::MockTransport;
    ///
    /// let client = Client::with_transport("KEY", Options::default(), MockTransport::new()).unwrap();
    /// client.add_event_middleware(|payload, next| {
    ///     if payload.event.event_type == "Debug" {
    ///         return; // not calling next: filtered
    ///     }
    ///     payload.event.push(Target::Event, "source", "backend".into());
    ///     next.run(payload);
    /// });
    /// let debug: Event = Event::new("Debug").user_id("user-1234");
    /// assert_eq!(client.log_event(debug), Err(LogError::Filtered));
    /// let click: Event = Event::new("Click").user_id("user-1234");
    /// assert!(client.log_event(click).is_ok());
    /// ```
    pub fn add_event_middleware<F>(&self, middleware: F)
    where
        F: for<'p, 'a, 'n> FnMut(&mut Payload<'p, 'a>, Next<'n, 'p, 'a>) + Send + 'static,
    {
        let inner = self.inner();
        inner
            .middleware
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(FnMiddleware::new(middleware));
        inner.has_middleware.store(true, Ordering::Release);
    }

    /// Send everything queued now, with the same retries as the background sender,
    /// and resolve when the events logged before this call have their final outcomes
    /// or [`Options::flush_timeout`] passes (then `timed_out` is set and `pending`
    /// counts what is left; it keeps being sent). Works on any executor.
    pub async fn flush(&self) -> FlushReport {
        self.flush_within(self.inner().flush_timeout).await
    }

    /// [`flush`](Self::flush) with an explicit timeout.
    pub async fn flush_within(&self, timeout: Duration) -> FlushReport {
        let inner = self.inner();
        match inner.begin_wait(timeout, false) {
            Ok(key) => inner.wait(key).await,
            Err(report) => report,
        }
    }

    /// [`flush`](Self::flush) for code without async: blocks this thread for at most
    /// about `timeout`. Refuses (instead of blocking) on a tokio runtime thread.
    pub fn flush_blocking(&self, timeout: Duration) -> Result<FlushReport, BlockingError> {
        refuse_inside_runtime()?;
        let inner = self.inner();
        Ok(match inner.begin_wait(timeout, false) {
            Ok(key) => inner.wait_blocking(key, deadline_from(StdInstant::now(), timeout)),
            Err(report) => report,
        })
    }

    /// Stop accepting events, deliver what is queued until `timeout`, then drop what
    /// is left (each reported as `Dropped(Shutdown)`) and stop the sender. The report
    /// covers the events pending at the call; `dropped` includes those dropped here.
    /// Later calls to `log_event` return [`LogError::Closed`].
    pub async fn shutdown(&self, timeout: Duration) -> FlushReport {
        let inner = self.inner();
        let report = match inner.begin_wait(timeout, true) {
            Ok(key) => inner.wait(key).await,
            Err(report) => report,
        };
        // The sender's thread (if any) ends on its own; it is joined when the last
        // handle is dropped off a runtime thread.
        report
    }

    /// [`shutdown`](Self::shutdown) for code without async. Refuses (instead of
    /// blocking) on a tokio runtime thread.
    pub fn shutdown_blocking(&self, timeout: Duration) -> Result<FlushReport, BlockingError> {
        refuse_inside_runtime()?;
        let inner = self.inner();
        let report = match inner.begin_wait(timeout, true) {
            Ok(key) => inner.wait_blocking(key, deadline_from(StdInstant::now(), timeout)),
            Err(report) => report,
        };
        self.join_thread();
        Ok(report)
    }

    /// Join the sender thread once it has stopped.
    fn join_thread(&self) {
        if self.inner().sender_alive.load(Ordering::Acquire) {
            return;
        }
        let thread = self
            .handle
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }

    /// Turn opt-out on or off: while on, events are not accepted
    /// ([`LogError::OptedOut`]) and counted in [`Counters::opted_out`].
    pub fn set_opt_out(&self, opt_out: bool) {
        self.inner().opt_out.store(opt_out, Ordering::Relaxed);
    }

    /// Stop sending (events keep queueing) or resume. While offline, flushes wait
    /// until their deadline.
    ///
    /// ```
    /// # let client = amplitude_reqwest::init("KEY", amplitude_reqwest::Options::default().offline(true)).unwrap();
    /// client.set_offline(false); // sends what queued meanwhile
    /// ```
    pub fn set_offline(&self, offline: bool) {
        let inner = self.inner();
        inner.lock().core.set_offline(offline);
        inner.wake.notify_one();
    }

    /// Running totals: at every moment
    /// `accepted == delivered + rejected + dropped + pending()`.
    pub fn counters(&self) -> Counters {
        *self.inner().lock().core.counters()
    }

    /// Events in the queue (waiting or in flight).
    pub fn queued(&self) -> usize {
        self.inner().lock().core.queue().len()
    }

    /// Bytes of encoded events in the queue (each event also takes 56 bytes of
    /// metadata).
    pub fn queued_bytes(&self) -> usize {
        use amplitude_core::queue::Batcher;
        self.inner().lock().core.queue().used_bytes()
    }
}

fn refuse_inside_runtime() -> Result<(), BlockingError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        Err(BlockingError::InsideRuntime)
    } else {
        Ok(())
    }
}
