//! The sans-IO client: a deterministic state machine driven with explicit `now` values.
//!
//! ```text
//! log_event ─► middleware ─► validate ─► encode ─► queue
//! next_request(now, buf) ─► (transport) ─► on_response(now, flight, result) ─► outcomes
//! next_wakeup(now): when to call next_request again
//! ```
//!
//! No timers, sockets or allocation inside: drivers (the embassy driver in this crate,
//! the tokio sender in `amplitude-reqwest`, firmware loops, property tests in virtual
//! time) decide when to call what.

use core::any::Any;
use core::fmt;

use embassy_time::{Duration, Instant};

use crate::config::{Config, QueueFullPolicy};
use crate::encode::{EncodeError, Rng, encode_event};
use crate::event::Event;
use crate::json::JsonWriter;
use crate::middleware::Chain;
use crate::outcome::{Counters, DropReason, EventId, Outcome, OutcomeSink, RejectReason, Report};
use crate::queue::{Batcher, Meta, PushError, State};
use crate::response::{Class, classify, key_hash};
use crate::retry::{Decision, ExponentialBackoff, RetryPolicy};
use crate::transport::{Request, Response, TransportError};
use crate::validate::{ValidationError, validate};

/// Why `log_event` did not accept an event. Nothing is queued and no outcome follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LogError {
    /// The event breaks an HTTP V2 rule.
    Invalid(ValidationError),
    /// A typed value could not be encoded.
    Encode(EncodeError),
    /// The queue is full (policy: reject newest), or nothing could be evicted.
    QueueFull,
    /// Called re-entrantly (from inside the same client's outcome sink).
    Busy,
    /// The encoded event is larger than one request may be, or than the queue.
    TooLarge {
        /// Its encoded size in bytes (0 when it did not even fit in the queue).
        bytes: usize,
    },
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Invalid(e) => write!(f, "invalid event: {e}"),
            LogError::Encode(e) => write!(f, "event could not be encoded: {e}"),
            LogError::QueueFull => f.write_str("queue full"),
            LogError::Busy => f.write_str("client busy (re-entrant call)"),
            LogError::TooLarge { bytes: 0 } => f.write_str("event larger than the queue"),
            LogError::TooLarge { bytes } => {
                write!(f, "event of {bytes} bytes exceeds the request size limit")
            }
        }
    }
}

impl core::error::Error for LogError {}

/// What happened to a logged event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Logged {
    /// Queued; its final outcome will be reported with this id.
    Queued(EventId),
    /// A middleware stopped it (counted in [`Counters::filtered`]).
    Filtered,
    /// Opt-out is on (counted in [`Counters::opted_out`]).
    OptedOut,
}

/// An event validated and encoded outside the client (see [`prepare`]).
#[derive(Debug, Clone, Copy)]
pub struct Prepared<'b> {
    /// The encoded event object.
    pub json: &'b [u8],
    /// Hash of its `device_id` (0 if none).
    pub device_key: u32,
    /// Hash of its `user_id` (0 if none).
    pub user_key: u32,
    /// Whether it carries its own `time`.
    pub has_time: bool,
}

/// Why an event was refused outside the client (see [`Client::count_refused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Refused {
    /// Validation or encoding failed.
    Invalid,
    /// A middleware stopped it.
    Filtered,
    /// Opt-out was on.
    OptedOut,
}

/// Validate and encode `event` into `buf` without touching a client: the part of
/// logging that a multi-threaded caller runs outside its lock. Queue the result with
/// [`Client::enqueue_prepared`].
///
/// ```
/// use amplitude_core::{Event, client::prepare, encode::Rng, validate::Rules};
/// let mut buf = [0u8; 512];
/// let ev: Event = Event::new("Login").user_id("user-1234");
/// let p = prepare(&ev, &Rules::default(), &mut Rng::new(1), &mut buf).unwrap();
/// assert!(p.json.starts_with(br#"{"event_type":"Login""#));
/// ```
pub fn prepare<'b, const N: usize>(
    event: &Event<'_, N>,
    rules: &crate::validate::Rules,
    rng: &mut Rng,
    buf: &'b mut [u8],
) -> Result<Prepared<'b>, LogError> {
    validate(event, rules).map_err(LogError::Invalid)?;
    let mut w = JsonWriter::new(buf);
    let enc = encode_event(event, rng, &mut w).map_err(|e| match e {
        EncodeError::BufferFull => LogError::TooLarge { bytes: 0 },
        e => LogError::Encode(e),
    })?;
    let len = enc.len;
    Ok(Prepared {
        json: &buf[..len],
        device_key: event.device_id.map_or(0, |d| key_hash(b"d", d)),
        user_key: event.user_id.map_or(0, |u| key_hash(b"u", u)),
        has_time: enc.has_time,
    })
}

/// A request in flight, to pass back to [`Client::on_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FlightId(u8);

/// A request to send, built by [`Client::next_request`].
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'r> {
    /// Pass back with the result.
    pub flight: FlightId,
    /// URL and body.
    pub request: Request<'r>,
    /// Events in the body.
    pub events: usize,
}

#[derive(Debug, Clone, Copy, Default)]
struct Flight {
    active: bool,
    events: u16,
}

/// Longest pause a 429's `Retry-After` can impose on throttled keys.
const MAX_THROTTLE_PAUSE: Duration = Duration::from_secs(300);

/// Full batches delivered at a 413-learned limit before it is raised by an eighth.
const PROBE_AFTER: u16 = 16;

/// Bytes reserved per event for a rendered `,"time":<ms>` member.
const TIME_MEMBER: usize = 29;

/// Order keys of records that must not be overtaken in this scan: an exact list, then a
/// bitmap that may over-block (never under-block) when the list is full.
struct Blocked {
    exact: heapless::Vec<u32, 64>,
    bloom: [u64; 64],
    spilled: bool,
}

impl Blocked {
    fn new() -> Self {
        Self {
            exact: heapless::Vec::new(),
            bloom: [0; 64],
            spilled: false,
        }
    }
    fn insert(&mut self, k: u32) {
        if self.exact.contains(&k) {
            return;
        }
        if self.exact.push(k).is_err() {
            self.spilled = true;
        }
        let b = (k as usize) % 4096;
        self.bloom[b / 64] |= 1 << (b % 64);
    }
    fn contains(&self, k: u32) -> bool {
        if self.exact.contains(&k) {
            return true;
        }
        let b = (k as usize) % 4096;
        self.spilled && self.bloom[b / 64] & (1 << (b % 64)) != 0
    }
}

/// One pass over the queue in log order, yielding each record that may go now: not in
/// flight, not waiting for a retry or a pause, and not behind an earlier record of the
/// same device (or user, without a device) that is. Also finds the earliest time a
/// waiting record becomes sendable.
struct Cursor {
    pos: usize,
    blocked: Blocked,
    earliest: Option<Instant>,
}

impl Cursor {
    fn new() -> Self {
        Self {
            pos: 0,
            blocked: Blocked::new(),
            earliest: None,
        }
    }

    fn next<Q: Batcher>(
        &mut self,
        queue: &Q,
        pauses: &[(u32, Instant)],
        now: Instant,
    ) -> Option<(usize, Meta)> {
        while self.pos < queue.len() {
            let pos = self.pos;
            self.pos += 1;
            let m = *queue.meta(pos);
            let key = m.order_key();
            let pause_end = pauses
                .iter()
                .filter(|&&(k, until)| {
                    until > now && k != 0 && (k == m.device_key || k == m.user_key)
                })
                .map(|p| p.1)
                .max();
            let waiting_until = match m.state {
                State::InFlight { .. } => Some(None),
                State::Queued if m.not_before > now => {
                    Some(Some(m.not_before.max(pause_end.unwrap_or(m.not_before))))
                }
                State::Queued if pause_end.is_some() => Some(pause_end),
                State::Queued => None,
            };
            if let Some(until) = waiting_until {
                if let Some(t) = until {
                    self.earliest = Some(self.earliest.map_or(t, |e| e.min(t)));
                }
                self.blocked.insert(key);
                continue;
            }
            if self.blocked.contains(key) {
                continue;
            }
            return Some((pos, m));
        }
        None
    }
}

/// The client state machine. `Q` is the queue, `R` the retry policy, `F` how many
/// requests may be in flight at once.
///
/// ```
/// use amplitude_core::{Event, client::Client, config::Config, outcome::NoSink};
/// use amplitude_core::queue::{RamQueue, Slot};
/// use amplitude_core::transport::Response;
/// use embassy_time::Instant;
///
/// let mut client: Client<'_, _> = Client::new(Config::new("KEY"), RamQueue::new([0u8; 4096], [Slot::EMPTY; 16]), 1);
/// let t0 = Instant::from_millis(0);
/// let ev: Event = Event::new("Button Clicked").user_id("datamonster@gmail.com");
/// client.log_event(t0, ev, &mut (), None, &mut NoSink).unwrap();
/// client.flush();
/// let mut buf = [0u8; 4096];
/// let out = client.next_request(t0, &mut buf, &mut NoSink).unwrap();
/// assert_eq!(out.events, 1);
/// let flight = out.flight;
/// client.on_response(t0, flight, Ok(Response::new(200, br#"{"code":200}"#)), &mut NoSink);
/// assert_eq!(client.counters().delivered, 1);
/// ```
pub struct Client<'c, Q, R = ExponentialBackoff, const F: usize = 1> {
    config: Config<'c>,
    queue: Q,
    retry: R,
    rng: Rng,
    counters: Counters,
    next_id: u64,
    flush_upto: u64,
    flights: [Flight; F],
    pauses: heapless::Vec<(u32, Instant), 32>,
    backoff_until: Instant,
    consecutive_failures: u32,
    clock_offset_ms: Option<i64>,
    envelope_len: usize,
    /// Events per request a 413 taught us (`u16::MAX`: none).
    learned_limit: u16,
    /// Full batches delivered since the learned limit last changed.
    full_successes: u16,
}

impl<'c, Q: Batcher> Client<'c, Q, ExponentialBackoff, 1> {
    /// A client with the default retry policy (its attempts = `config.max_retries`),
    /// one request in flight, and `seed` for `insert_id`s and jitter.
    pub fn new(config: Config<'c>, queue: Q, seed: u64) -> Self {
        let retry = ExponentialBackoff {
            max_attempts: u32::from(config.max_retries),
            ..ExponentialBackoff::default()
        };
        Client::with_policy(config, queue, retry, seed)
    }
}

impl<'c, Q: Batcher, R: RetryPolicy + Clone, const F: usize> Client<'c, Q, R, F> {
    /// A client with an explicit retry policy and `F` requests in flight.
    pub fn with_policy(config: Config<'c>, queue: Q, retry: R, seed: u64) -> Self {
        let mut key_len = 0usize;
        for b in config.api_key.bytes() {
            key_len += match b {
                b'"' | b'\\' | 0x08 | 0x09 | 0x0a | 0x0c | 0x0d => 2,
                0..=0x1f => 6,
                _ => 1,
            };
        }
        let options = if config.rules.min_id_length == 5 {
            0
        } else {
            r#","options":{"min_id_length":65535}"#.len()
        };
        let envelope_len = r#"{"api_key":"","events":[]}"#.len() + key_len + options;
        Self {
            config,
            queue,
            retry,
            rng: Rng::new(seed),
            counters: Counters::default(),
            next_id: 0,
            flush_upto: 0,
            flights: [Flight::default(); F],
            pauses: heapless::Vec::new(),
            backoff_until: Instant::from_ticks(0),
            consecutive_failures: 0,
            clock_offset_ms: config.clock_offset_ms,
            envelope_len,
            learned_limit: u16::MAX,
            full_successes: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config<'c> {
        &self.config
    }

    /// Change opt-out at run time.
    pub fn set_opt_out(&mut self, yes: bool) {
        self.config.opt_out = yes;
    }

    /// Stop or resume sending; events keep queueing while offline (up to the queue's
    /// capacity and its full policy).
    pub fn set_offline(&mut self, yes: bool) {
        self.config.offline = yes;
    }

    /// The running totals.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The queue (to inspect its length and bytes).
    pub fn queue(&self) -> &Q {
        &self.queue
    }

    /// The wall-clock offset in use (configured or learned), ms since the epoch at
    /// `Instant` zero.
    pub fn clock_offset_ms(&self) -> Option<i64> {
        self.clock_offset_ms
    }

    /// Events per request now: the configured size, lowered by what 413 responses taught.
    pub fn batch_limit(&self) -> usize {
        self.config
            .batch_limit()
            .min(usize::from(self.learned_limit).max(1))
    }

    /// Largest encoded event that can ever be sent in one request.
    pub fn max_event_bytes(&self) -> usize {
        self.config
            .max_request_bytes
            .saturating_sub(self.envelope_len + TIME_MEMBER)
    }

    /// Run `chain` over `event`, validate it, encode it and queue it.
    ///
    /// Evictions made room for it (policy [`QueueFullPolicy::EvictOldest`]) are reported
    /// to `sink` before this returns.
    pub fn log_event<const N: usize, C: Chain<N> + ?Sized, S: OutcomeSink + ?Sized>(
        &mut self,
        now: Instant,
        mut event: Event<'_, N>,
        chain: &mut C,
        extra: Option<&dyn Any>,
        sink: &mut S,
    ) -> Result<Logged, LogError> {
        if self.config.opt_out {
            self.counters.opted_out += 1;
            return Ok(Logged::OptedOut);
        }
        if !chain.run_all(&mut event, extra) {
            self.counters.filtered += 1;
            return Ok(Logged::Filtered);
        }
        self.enqueue(now, &event, sink).map(Logged::Queued)
    }

    /// Validate, encode and queue an event that already went through middleware.
    pub fn enqueue<const N: usize, S: OutcomeSink + ?Sized>(
        &mut self,
        now: Instant,
        event: &Event<'_, N>,
        sink: &mut S,
    ) -> Result<EventId, LogError> {
        if let Err(e) = validate(event, &self.config.rules) {
            self.counters.invalid += 1;
            return Err(LogError::Invalid(e));
        }
        let device_key = event.device_id.map_or(0, |d| key_hash(b"d", d));
        let user_key = event.user_id.map_or(0, |u| key_hash(b"u", u));
        let id = EventId(self.next_id);
        let meta = Meta::new(id, now, device_key, user_key, event.time.is_some());
        let max = self.max_event_bytes();
        let mut too_large = 0usize;
        loop {
            let rng = &mut self.rng;
            let mut write = |w: &mut JsonWriter<'_>| {
                let start = w.len();
                let enc = encode_event(event, rng, w)?;
                if enc.len > max {
                    too_large = enc.len;
                    w.truncate(start);
                    return Err(EncodeError::NotAnObject);
                }
                Ok(())
            };
            match self.queue.push(meta, &mut write) {
                Ok(()) => break,
                Err(PushError::Encode(_)) if too_large > 0 => {
                    self.counters.invalid += 1;
                    return Err(LogError::TooLarge { bytes: too_large });
                }
                Err(PushError::Encode(e)) => {
                    self.counters.invalid += 1;
                    return Err(LogError::Encode(e));
                }
                Err(PushError::TooLarge) => {
                    // Larger than the whole queue; say so in request terms when it is
                    // also larger than a request may be.
                    let size = crate::encode::encoded_len(event).unwrap_or(0);
                    self.counters.invalid += 1;
                    let bytes = if size > max { size } else { 0 };
                    return Err(LogError::TooLarge { bytes });
                }
                Err(PushError::Full) => {
                    // Size it first: an event that can never fit must not cost evictions.
                    let size = match crate::encode::encoded_len(event) {
                        Ok(size) => size,
                        Err(e) => {
                            self.counters.invalid += 1;
                            return Err(LogError::Encode(e));
                        }
                    };
                    self.make_room(size, sink)?;
                }
            }
        }
        self.next_id += 1;
        self.counters.accepted += 1;
        Ok(id)
    }

    /// Queue an event prepared (validated and encoded) outside the client with
    /// [`prepare`], so that a multi-threaded caller holds its lock only for the copy.
    pub fn enqueue_prepared<S: OutcomeSink + ?Sized>(
        &mut self,
        now: Instant,
        prepared: &Prepared<'_>,
        sink: &mut S,
    ) -> Result<EventId, LogError> {
        let len = prepared.json.len();
        if len > self.max_event_bytes() {
            self.counters.invalid += 1;
            return Err(LogError::TooLarge { bytes: len });
        }
        let id = EventId(self.next_id);
        let meta = Meta::new(
            id,
            now,
            prepared.device_key,
            prepared.user_key,
            prepared.has_time,
        );
        loop {
            match self.queue.push(meta, &mut |w| Ok(w.raw(prepared.json)?)) {
                Ok(()) => break,
                Err(PushError::Full) => self.make_room(len, sink)?,
                Err(PushError::TooLarge) => {
                    self.counters.invalid += 1;
                    return Err(LogError::TooLarge { bytes: 0 });
                }
                Err(PushError::Encode(e)) => {
                    self.counters.invalid += 1;
                    return Err(LogError::Encode(e));
                }
            }
        }
        self.next_id += 1;
        self.counters.accepted += 1;
        Ok(id)
    }

    /// Count an event refused before it reached the client (by [`prepare`] or by a
    /// middleware run outside it), so the counters stay complete.
    pub fn count_refused(&mut self, why: Refused) {
        match why {
            Refused::Invalid => self.counters.invalid += 1,
            Refused::Filtered => self.counters.filtered += 1,
            Refused::OptedOut => self.counters.opted_out += 1,
        }
    }

    /// After a full queue refused an event of `size` bytes: evict the oldest waiting
    /// event if the policy allows and that can help, else say why not.
    fn make_room<S: OutcomeSink + ?Sized>(
        &mut self,
        size: usize,
        sink: &mut S,
    ) -> Result<(), LogError> {
        let (slots, bytes) = self.queue.capacity();
        if size > self.max_event_bytes() {
            self.counters.invalid += 1;
            return Err(LogError::TooLarge { bytes: size });
        }
        if size > bytes {
            self.counters.invalid += 1;
            return Err(LogError::TooLarge { bytes: 0 });
        }
        // Bytes and slots held by requests in flight cannot be freed by evicting.
        let (mut flying, mut flying_bytes) = (0usize, 0usize);
        for pos in 0..self.queue.len() {
            if self.queue.meta(pos).state != State::Queued {
                flying += 1;
                flying_bytes += self.queue.bytes(pos).len();
            }
        }
        let could_fit = flying < slots && flying_bytes + size <= bytes;
        if self.config.queue_full == QueueFullPolicy::RejectNewest
            || !could_fit
            || !self.evict_oldest(sink)
        {
            self.counters.refused_full += 1;
            return Err(LogError::QueueFull);
        }
        Ok(())
    }

    /// Drop the oldest record that is not in flight; `false` if there is none.
    fn evict_oldest<S: OutcomeSink + ?Sized>(&mut self, sink: &mut S) -> bool {
        let Some(victim) = (0..self.queue.len())
            .map(|p| *self.queue.meta(p))
            .find(|m| m.state == State::Queued)
        else {
            return false;
        };
        let outcome = Outcome::Dropped(DropReason::QueueFull);
        self.remove(&mut |m: &Meta| m.id == victim.id, &mut |_| outcome, sink);
        true
    }

    /// Ask for everything logged so far to be sent without waiting for the batch size or
    /// interval. Returns the id of the first event *not* covered.
    pub fn flush(&mut self) -> EventId {
        self.flush_upto = self.next_id;
        EventId(self.next_id)
    }

    /// Whether every event with an id below `upto` has its final outcome.
    pub fn is_settled(&self, upto: EventId) -> bool {
        (0..self.queue.len()).all(|p| self.queue.meta(p).id >= upto)
    }

    /// Requests currently in flight.
    pub fn in_flight(&self) -> usize {
        self.flights.iter().filter(|f| f.active).count()
    }

    /// Whether a request should go now, and if not, when to look again.
    fn due(&self, now: Instant) -> (bool, Option<Instant>) {
        let limit = self.batch_limit();
        let mut count = 0usize;
        let mut urgent = false;
        let mut oldest: Option<Instant> = None;
        let mut cur = Cursor::new();
        while let Some((_, m)) = cur.next(&self.queue, &self.pauses, now) {
            count += 1;
            if m.id.0 < self.flush_upto
                || m.resend
                || m.logged_at + self.config.flush_interval <= now
            {
                urgent = true;
            }
            oldest = Some(oldest.map_or(m.logged_at, |o: Instant| o.min(m.logged_at)));
            if urgent || count >= limit {
                break;
            }
        }
        let waiting = cur.earliest;
        let go = count > 0 && (urgent || count >= limit);
        let interval_due = oldest.map(|o| o + self.config.flush_interval);
        let next = match (waiting, interval_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        (go, next)
    }

    /// When [`Client::next_request`] should be called again, if nothing else happens
    /// (a new event, a flush, a response). `None`: nothing to do until then.
    pub fn next_wakeup(&self, now: Instant) -> Option<Instant> {
        if self.config.offline || self.flights.iter().all(|f| f.active) {
            return None;
        }
        let (go, next) = self.due(now);
        let t = if go { Some(now) } else { next };
        t.map(|t| t.max(self.backoff_until))
    }

    /// Build the next request into `buf`, if one is due: up to the batch limit of
    /// sendable events, never over `min(max_request_bytes, buf.len())` bytes. An event
    /// that cannot fit in any such request is dropped ([`DropReason::TooLarge`]) and
    /// reported to `sink`.
    pub fn next_request<'b, S: OutcomeSink + ?Sized>(
        &mut self,
        now: Instant,
        buf: &'b mut [u8],
        sink: &mut S,
    ) -> Option<Outgoing<'b>>
    where
        'c: 'b,
    {
        if self.config.offline {
            return None;
        }
        let slot = self.flights.iter().position(|f| !f.active)? as u8;
        let max_bytes = self.config.max_request_bytes.min(buf.len());
        loop {
            if now < self.backoff_until || !self.due(now).0 {
                return None;
            }
            let mut w = JsonWriter::new(&mut *buf);
            self.write_head(&mut w).ok()?;
            let tail = self.tail_len();
            let mut picked = 0usize;
            let mut limit = self.batch_limit();
            let mut oversize: Option<EventId> = None;
            let mut cur = Cursor::new();
            while let Some((pos, m)) = cur.next(&self.queue, &self.pauses, now) {
                let cap = usize::from(m.split_cap).max(1);
                if picked + 1 > limit.min(cap) {
                    break;
                }
                let time = if m.has_time {
                    None
                } else {
                    self.clock_offset_ms
                };
                let len = self.queue.bytes(pos).len()
                    + if time.is_some() { TIME_MEMBER } else { 0 }
                    + usize::from(picked > 0);
                if w.len() + len + tail > max_bytes {
                    if picked == 0 {
                        oversize = Some(m.id);
                    }
                    break;
                }
                if self.write_record(&mut w, pos, picked > 0, time).is_err() {
                    break;
                }
                self.queue.meta_mut(pos).state = State::InFlight {
                    slot,
                    index: picked as u16,
                };
                picked += 1;
                limit = limit.min(cap);
            }
            if let Some(id) = oversize {
                self.remove(
                    &mut |m: &Meta| m.id == id,
                    &mut |_| Outcome::Dropped(DropReason::TooLarge),
                    sink,
                );
                continue;
            }
            if picked == 0 || self.write_tail(&mut w).is_err() {
                return None;
            }
            let len = w.len();
            self.flights[usize::from(slot)] = Flight {
                active: true,
                events: picked as u16,
            };
            self.counters.requests += 1;
            return Some(Outgoing {
                flight: FlightId(slot),
                request: Request {
                    url: self.config.server_url,
                    body: &buf[..len],
                },
                events: picked,
            });
        }
    }

    fn write_head(&self, w: &mut JsonWriter<'_>) -> Result<(), crate::json::BufferFull> {
        w.raw(b"{")?;
        w.key_first("api_key")?;
        w.str(self.config.api_key)?;
        w.key("events")?;
        w.raw(b"[")
    }

    /// Bytes [`Client::write_tail`] writes.
    fn tail_len(&self) -> usize {
        let digits = |mut n: u16| {
            let mut d = 1;
            while n >= 10 {
                n /= 10;
                d += 1;
            }
            d
        };
        let min = self.config.rules.min_id_length;
        2 + if min == 5 {
            0
        } else {
            r#","options":{"min_id_length":}"#.len() + digits(min)
        }
    }

    fn write_tail(&self, w: &mut JsonWriter<'_>) -> Result<(), crate::json::BufferFull> {
        w.raw(b"]")?;
        if self.config.rules.min_id_length != 5 {
            w.key("options")?;
            w.raw(b"{")?;
            w.key_first("min_id_length")?;
            w.u64(u64::from(self.config.rules.min_id_length))?;
            w.raw(b"}")?;
        }
        w.raw(b"}")
    }

    /// One queued record, with `time` rendered from its logged-at when it has none.
    fn write_record(
        &self,
        w: &mut JsonWriter<'_>,
        pos: usize,
        comma: bool,
        time_offset: Option<i64>,
    ) -> Result<(), crate::json::BufferFull> {
        if comma {
            w.raw(b",")?;
        }
        let rec = self.queue.bytes(pos);
        match time_offset {
            Some(offset) => {
                w.raw(&rec[..rec.len() - 1])?;
                w.key("time")?;
                w.i64(offset.saturating_add(self.queue.meta(pos).logged_at.as_millis() as i64))?;
                w.raw(b"}")
            }
            None => w.raw(rec),
        }
    }

    /// Remove records matching `pick`, reporting `outcome(meta)` for each.
    fn remove<S: OutcomeSink + ?Sized>(
        &mut self,
        pick: &mut dyn FnMut(&Meta) -> bool,
        outcome: &mut dyn FnMut(&Meta) -> Outcome,
        sink: &mut S,
    ) {
        let counters = &mut self.counters;
        self.queue.remove_where(pick, &mut |m, json| {
            let outcome = outcome(m);
            counters.count(outcome);
            sink.on_outcome(&Report {
                id: m.id,
                outcome,
                json,
                attempts: m.attempts,
            });
        });
    }

    /// Settle the records of `slot`: those for which `decide` gives an outcome are removed
    /// with it; the others go back to the queue through `requeue`.
    fn settle<S: OutcomeSink + ?Sized>(
        &mut self,
        slot: u8,
        decide: &dyn Fn(&Meta, u16) -> Option<Outcome>,
        requeue: &mut dyn FnMut(&mut Meta, u16),
        sink: &mut S,
    ) {
        let of_slot = |m: &Meta| match m.state {
            State::InFlight { slot: s, index } if s == slot => Some(index),
            _ => None,
        };
        self.remove(
            &mut |m| of_slot(m).is_some_and(|i| decide(m, i).is_some()),
            &mut |m| {
                of_slot(m)
                    .and_then(|i| decide(m, i))
                    .unwrap_or(Outcome::Delivered)
            },
            sink,
        );
        for pos in 0..self.queue.len() {
            let m = self.queue.meta_mut(pos);
            if let Some(i) = of_slot(m) {
                m.state = State::Queued;
                m.resend = true;
                requeue(m, i);
            }
        }
    }

    fn learn_clock(&mut self, now: Instant, server_ms: Option<u64>) {
        if self.config.clock_offset_ms.is_some() {
            return;
        }
        if let Some(ms) = server_ms.and_then(|ms| i64::try_from(ms).ok()) {
            self.clock_offset_ms = Some(ms - now.as_millis() as i64);
        }
    }

    fn pause(&mut self, key: u32, until: Instant, now: Instant) {
        self.pauses.retain(|p| p.1 > now && p.0 != key);
        if self.pauses.push((key, until)).is_err() {
            // Full: replace the pause that ends first (records keep their own not_before).
            if let Some(i) = (0..self.pauses.len()).min_by_key(|&i| self.pauses[i].1) {
                self.pauses[i] = (key, until);
            }
        }
    }

    /// Apply the result of sending `flight`: outcomes for what is final, backoff, pauses
    /// or splits for the rest (spec §6).
    pub fn on_response<S: OutcomeSink + ?Sized>(
        &mut self,
        now: Instant,
        flight: FlightId,
        result: Result<Response<'_>, TransportError>,
        sink: &mut S,
    ) {
        let slot = flight.0;
        let Some(f) = self.flights.get_mut(usize::from(slot)).filter(|f| f.active) else {
            return;
        };
        f.active = false;
        let n = f.events;
        let resp = match result {
            Err(TransportError::InvalidUrl) => {
                let o = Outcome::Dropped(DropReason::InvalidUrl);
                return self.settle(slot, &|_, _| Some(o), &mut |_, _| {}, sink);
            }
            Err(_) => return self.retry_flight(now, slot, None, sink),
            Ok(r) => r,
        };
        let hint = resp
            .retry_after_secs
            .map(|s| Duration::from_secs(u64::from(s)));
        let c = classify(resp.status, resp.body);
        if c.class != Class::Retry {
            self.consecutive_failures = 0;
        }
        let b = &c.body;
        match c.class {
            Class::Delivered => {
                self.learn_clock(now, b.server_upload_time.or(resp.date_ms));
                if usize::from(n) >= self.batch_limit()
                    && usize::from(self.learned_limit) < self.config.batch_limit()
                {
                    self.full_successes += 1;
                    if self.full_successes >= PROBE_AFTER {
                        self.full_successes = 0;
                        self.learned_limit = self
                            .learned_limit
                            .saturating_add((self.learned_limit / 8).max(1));
                    }
                }
                self.settle(slot, &|_, _| Some(Outcome::Delivered), &mut |_, _| {}, sink);
            }
            Class::RejectAll(reason) => self.settle(
                slot,
                &|_, _| Some(Outcome::Rejected(reason)),
                &mut |_, _| {},
                sink,
            ),
            Class::Forbidden => self.settle(
                slot,
                &|_, _| Some(Outcome::Rejected(RejectReason::Forbidden)),
                &mut |_, _| {},
                sink,
            ),
            Class::BadEvents => {
                let n_us = usize::from(n);
                let reason = |m: &Meta, i: u16| {
                    let i = usize::from(i);
                    if b.invalid_fields.contains(i) {
                        Some(RejectReason::InvalidFields)
                    } else if b.missing_fields.contains(i) {
                        Some(RejectReason::MissingFields)
                    } else if b.invalid_id_lengths.contains(i) {
                        Some(RejectReason::InvalidIdLength)
                    } else if b.silenced_events.contains(i)
                        || b.silenced_devices.contains(m.device_key)
                    {
                        Some(RejectReason::Silenced)
                    } else {
                        None
                    }
                };
                let usable = [
                    &b.invalid_fields,
                    &b.missing_fields,
                    &b.invalid_id_lengths,
                    &b.silenced_events,
                ]
                .iter()
                .any(|s| s.any_below(n_us))
                    || (0..self.queue.len()).any(|p| {
                        let m = self.queue.meta(p);
                        matches!(m.state, State::InFlight { slot: s, .. } if s == slot)
                            && b.silenced_devices.contains(m.device_key)
                    });
                if usable {
                    self.settle(
                        slot,
                        &|m, i| reason(m, i).map(Outcome::Rejected),
                        &mut |m, _| m.not_before = now,
                        sink,
                    );
                } else {
                    self.split(now, slot, n, Outcome::Rejected(RejectReason::Invalid), sink);
                }
            }
            Class::TooLarge => {
                if n > 1 {
                    // The server's limit is below ours: remember it for later batches
                    // (probed back up slowly on success), not only for these events.
                    self.learned_limit = self.learned_limit.min(n / 2);
                    self.full_successes = 0;
                }
                self.split(now, slot, n, Outcome::Dropped(DropReason::TooLarge), sink)
            }
            Class::Throttled => self.throttled(now, slot, n, &c.body, hint, sink),
            Class::Retry => self.retry_flight(now, slot, hint, sink),
        }
    }

    /// Halve the batch (bisection for a 400 without usable indices, and 413); a lone
    /// event gets `alone`.
    fn split<S: OutcomeSink + ?Sized>(
        &mut self,
        now: Instant,
        slot: u8,
        n: u16,
        alone: Outcome,
        sink: &mut S,
    ) {
        if n <= 1 {
            self.settle(slot, &|_, _| Some(alone), &mut |_, _| {}, sink);
        } else {
            let half = n / 2;
            self.settle(
                slot,
                &|_, _| None,
                &mut |m, _| {
                    m.split_cap = m.split_cap.min(half);
                    m.not_before = now;
                },
                sink,
            );
        }
    }

    fn throttled<S: OutcomeSink + ?Sized>(
        &mut self,
        now: Instant,
        slot: u8,
        n: u16,
        b: &crate::response::Body,
        hint: Option<Duration>,
        sink: &mut S,
    ) {
        let until = now
            + hint
                .map(|h| h.min(MAX_THROTTLE_PAUSE))
                .unwrap_or(self.config.throttle_pause)
                .max(self.retry.min_delay());
        let quota =
            |m: &Meta| b.quota_devices.contains(m.device_key) || b.quota_users.contains(m.user_key);
        let throttled = |m: &Meta, i: u16| {
            b.throttled_devices.contains(m.device_key)
                || b.throttled_users.contains(m.user_key)
                || b.throttled_events.contains(usize::from(i))
        };
        let any_known = (0..self.queue.len()).any(|p| {
            let m = self.queue.meta(p);
            match m.state {
                State::InFlight { slot: s, index } if s == slot => quota(m) || throttled(m, index),
                _ => false,
            }
        });
        if !any_known {
            // A 429 that names nobody in the batch: wait the pause like any retryable
            // failure, counting the attempt so that it cannot go on forever.
            let pause = until - now;
            return self.retry_flight(now, slot, Some(pause), sink);
        }
        for &k in b
            .throttled_devices
            .keys()
            .iter()
            .chain(b.throttled_users.keys())
        {
            self.pause(k, until, now);
        }
        self.settle(
            slot,
            &|m, _| quota(m).then_some(Outcome::Dropped(DropReason::DailyQuota)),
            &mut |m, i| {
                if throttled(m, i) {
                    // A key over its budget in one request is refused whole every time:
                    // its events travel in smaller requests after the pause.
                    m.not_before = until;
                    m.split_cap = m.split_cap.min((n / 2).max(1));
                } else {
                    m.not_before = now;
                }
            },
            sink,
        );
    }

    fn retry_flight<S: OutcomeSink + ?Sized>(
        &mut self,
        now: Instant,
        slot: u8,
        hint: Option<Duration>,
        sink: &mut S,
    ) {
        self.counters.failed_requests += 1;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        // The next request of any kind waits too, so a dead server sees no hot loop.
        let global =
            match self
                .retry
                .decide(self.consecutive_failures.min(16), hint, self.rng.next_u64())
            {
                Decision::Retry(d) => d,
                Decision::GiveUp => self.retry.min_delay(),
            };
        self.backoff_until = now + global;
        for pos in 0..self.queue.len() {
            let m = self.queue.meta_mut(pos);
            if matches!(m.state, State::InFlight { slot: s, .. } if s == slot) {
                m.attempts = m.attempts.saturating_add(1);
            }
        }
        let r = self.rng.next_u64();
        let retry = self.retry.clone();
        let decide = |m: &Meta| retry.decide(u32::from(m.attempts), hint, r);
        self.settle(
            slot,
            &|m, _| {
                (decide(m) == Decision::GiveUp)
                    .then_some(Outcome::Dropped(DropReason::RetriesExhausted))
            },
            &mut |m, _| {
                if let Decision::Retry(d) = decide(m) {
                    m.not_before = now + d;
                }
            },
            sink,
        );
    }

    /// Drop every pending event (including those in flight) with `reason`: for shutdown
    /// deadlines and drains. In-flight requests are forgotten; late responses are ignored.
    pub fn drop_all<S: OutcomeSink + ?Sized>(&mut self, reason: DropReason, sink: &mut S) {
        for f in &mut self.flights {
            f.active = false;
        }
        self.remove(&mut |_| true, &mut |_| Outcome::Dropped(reason), sink);
    }
}
