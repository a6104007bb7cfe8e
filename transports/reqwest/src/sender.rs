//! The background sender: builds requests from the queue, keeps up to `max_in_flight`
//! of them in flight, feeds the responses back to the core, and sleeps until the core's
//! next wake-up, a response, or a nudge from `log_event`, `flush` or `shutdown`.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant as StdInstant};

use amplitude_core::client::FlightId;
use amplitude_core::transport::{Request, Response, Transport, TransportError};

use crate::report::ReportBuf;
use crate::state::{Inner, Phase};

/// Bytes of response body kept per request (the rest is discarded by the transport).
const RESPONSE_BUF: usize = 64 * 1024;

/// How the sender runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SenderConfig {
    pub(crate) max_in_flight: usize,
    pub(crate) max_request_bytes: usize,
}

/// A response, owned so it can leave the request's future.
struct Owned {
    status: u16,
    retry_after_secs: Option<u32>,
    date_ms: Option<u64>,
    body: Vec<u8>,
    truncated: bool,
}

/// A finished request: its result and its response buffer (for reuse).
pub(crate) struct Done {
    flight: FlightId,
    response_buf: Vec<u8>,
    result: Result<Owned, TransportError>,
}

/// How the sender hands a request to its transport: the body is the sender's to give.
pub(crate) trait Dispatch: Clone {
    /// Send `body` to `url`, reading the response into `response_buf`.
    fn dispatch(
        self,
        url: &'static str,
        body: Vec<u8>,
        response_buf: Vec<u8>,
        flight: FlightId,
    ) -> impl Future<Output = Done>;
}

/// The response, owned (so the buffer it borrows can be returned).
fn owned(result: Result<Response<'_>, TransportError>) -> Result<Owned, TransportError> {
    result.map(|r| Owned {
        status: r.status,
        retry_after_secs: r.retry_after_secs,
        date_ms: r.date_ms,
        body: r.body.to_vec(),
        truncated: r.truncated,
    })
}

/// The reqwest transport takes the body as it is (no copy).
impl Dispatch for crate::transport::ReqwestTransport {
    async fn dispatch(
        mut self,
        url: &'static str,
        body: Vec<u8>,
        mut response_buf: Vec<u8>,
        flight: FlightId,
    ) -> Done {
        let result = owned(self.send_owned(url, body, &mut response_buf).await);
        Done {
            flight,
            response_buf,
            result,
        }
    }
}

/// Any core transport, lending it the body.
#[derive(Clone)]
pub(crate) struct Lend<T>(pub(crate) T);

impl<T: Transport + Clone> Dispatch for Lend<T> {
    async fn dispatch(
        mut self,
        url: &'static str,
        body: Vec<u8>,
        mut response_buf: Vec<u8>,
        flight: FlightId,
    ) -> Done {
        let result = self
            .0
            .send(Request { url, body: &body }, &mut response_buf)
            .await;
        let result = owned(result);
        Done {
            flight,
            response_buf,
            result,
        }
    }
}

/// Marks the sender as gone when its future ends or is dropped (a runtime shutting
/// down drops it), so waiters stop waiting for it.
struct AliveGuard(Arc<Inner>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.sender_alive.store(false, Ordering::Release);
        drop(self.0.lock());
        self.0.wake_waiters();
        tracing::debug!("sender stopped");
    }
}

/// The sender loop; returns after a shutdown.
pub(crate) async fn run<T: Dispatch>(inner: Arc<Inner>, transport: T, cfg: SenderConfig) {
    let _alive = AliveGuard(inner.clone());
    let mut flights = Vec::with_capacity(cfg.max_in_flight);
    for _ in 0..cfg.max_in_flight {
        flights.push(None);
    }
    // Requests are built here, then copied out at their exact size.
    let mut scratch: Vec<u8> = Vec::new();
    let mut response_bufs: Vec<Vec<u8>> = Vec::new();
    let mut reports = ReportBuf::default();
    let mut done: Option<Done> = None;
    let mut sleep = pin!(tokio::time::sleep(Duration::ZERO));
    tracing::debug!(url = inner.url, "sender started");
    loop {
        let now_std = StdInstant::now();
        let now = inner.clock.at(now_std);
        let mut progressed = false;
        let (target, completed, exit) = {
            let mut st = inner.lock();
            if let Some(d) = done.take() {
                let result = match &d.result {
                    Ok(o) => Ok(Response {
                        status: o.status,
                        retry_after_secs: o.retry_after_secs,
                        date_ms: o.date_ms,
                        body: &o.body,
                        truncated: o.truncated,
                    }),
                    Err(e) => Err(*e),
                };
                match &result {
                    Ok(r) if (200..300).contains(&r.status) => {
                        tracing::trace!(status = r.status, "response")
                    }
                    Ok(r) => tracing::debug!(status = r.status, "response"),
                    Err(e) => tracing::debug!(error = %e, "no response"),
                }
                if st.phase != Phase::Stopped {
                    let before = *st.core.counters();
                    st.with_sink(|core, sink| core.on_response(now, d.flight, result, sink));
                    let after = *st.core.counters();
                    let status = d.result.as_ref().map_or(0, |o| o.status);
                    if after.rejected > before.rejected {
                        let events = after.rejected - before.rejected;
                        tracing::warn!(events, status, "events rejected by the server");
                    }
                    if after.dropped > before.dropped {
                        let events = after.dropped - before.dropped;
                        tracing::warn!(events, status, "events dropped");
                    }
                }
                response_bufs.push(d.response_buf);
                progressed = true;
            }
            if st.phase != Phase::Stopped {
                while st.core.in_flight() < cfg.max_in_flight {
                    let Some(slot) = flights.iter().position(Option::is_none) else {
                        break;
                    };
                    if scratch.is_empty() {
                        // Zeroed allocations are mapped lazily: only what is written is touched.
                        scratch = vec![0u8; cfg.max_request_bytes];
                    }
                    let out = st.with_sink(|core, sink| {
                        core.next_request(now, &mut scratch, sink)
                            .map(|o| (o.flight, o.request.body.len(), o.events))
                    });
                    let Some((flight, len, events)) = out else {
                        break;
                    };
                    tracing::trace!(events, bytes = len, "sending");
                    let response_buf = response_bufs
                        .pop()
                        .unwrap_or_else(|| vec![0u8; RESPONSE_BUF]);
                    // The core sends every request to its configured URL.
                    flights[slot] = Some(Box::pin(transport.clone().dispatch(
                        inner.url,
                        scratch[..len].to_vec(),
                        response_buf,
                        flight,
                    )));
                    progressed = true;
                }
            }
            let (completed, exit) = st.settle_waiters(now_std);
            let exit = exit || st.phase == Phase::Stopped;
            Inner::take_reports(&mut st, &mut reports);
            let in_flight = st.core.in_flight();
            let mut target = if exit || in_flight >= cfg.max_in_flight {
                None
            } else {
                st.core.next_wakeup(now).map(|t| inner.clock.std_at(t))
            };
            for w in st.waiters.iter().filter(|w| w.done.is_none()) {
                target = Some(target.map_or(w.deadline, |t| t.min(w.deadline)));
            }
            // With requests in flight, a response wakes the sender soon anyway.
            st.sender_wake_at = target.or((in_flight > 0).then_some(now_std));
            st.since_wake = 0;
            (target, completed, exit)
        };
        // Outcomes reach the callback before the flushes they complete return.
        inner.deliver(&mut reports);
        if !completed.is_empty() {
            inner.complete(completed);
        } else if progressed {
            // Room in the queue for a `log_event_wait` caller.
            inner.cond.notify_all();
        }
        if exit {
            tracing::debug!("shutdown complete");
            return;
        }
        // Never spin: a target that is already due after a pass that did nothing is
        // pushed out a little.
        let target = target.map(|t| {
            if t <= now_std && !progressed {
                now_std + Duration::from_millis(1)
            } else {
                t
            }
        });
        if let Some(t) = target {
            sleep.as_mut().reset(tokio::time::Instant::from_std(t));
        }
        let mut notified = pin!(inner.wake.notified());
        done = poll_fn(|cx| {
            for f in flights.iter_mut() {
                let ready = match f {
                    Some(fut) => Pin::as_mut(fut).poll(cx),
                    None => continue,
                };
                if let Poll::Ready(d) = ready {
                    *f = None;
                    return Poll::Ready(Some(d));
                }
            }
            if notified.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            if target.is_some() && sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await;
    }
}
