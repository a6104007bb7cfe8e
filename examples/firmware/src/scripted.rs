//! An in-firmware stand-in for the Amplitude server: a [`Transport`] that reads each
//! request body and answers like HTTP V2 would, with faults injected by a script.
//!
//! Rules, checked in this order for every request that the script does not override:
//! 1. more than [`MAX_EVENTS`] events → `413`;
//! 2. events carrying `"bad":true` → `400` listing their indices in
//!    `events_with_invalid_fields` (nothing ingested);
//! 3. events of [`THROTTLED_DEVICE`] while its throttle window is open → `429` naming the
//!    device and listing those events (nothing ingested; the window opens at the first
//!    such request and lasts [`THROTTLE_WINDOW_MS`]);
//! 4. otherwise `200`, ingesting every event once per `insert_id`.
//!
//! While ingesting it checks that each device's events arrive in the order they were
//! logged (property `n` increases), and remembers whether other devices got through while
//! the throttled one was paused.

use core::cell::Cell;

use amplitude_core::transport::{Request, Response, Transport, TransportError};
use heapless::Vec;

/// Largest number of events the server takes in one request.
pub const MAX_EVENTS: usize = 8;
/// The device that the server throttles.
pub const THROTTLED_DEVICE: &str = "device-T";
/// How long the throttle window stays open (virtual ms).
pub const THROTTLE_WINDOW_MS: u64 = 5_000;

/// A scripted answer that replaces the rules for one request. A script entry `(n, step)`
/// applies to request number `n` (1-based); an `IngestThen500` that finds a request the
/// rules would not accept waits for the next one that they would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The request fails without a response.
    Fail(TransportError),
    /// `500`, nothing ingested.
    Error500,
    /// Everything ingested, then `500` (the ambiguous case: a resend must not duplicate).
    IngestThen500,
    /// `503` with `Retry-After: 2`, nothing ingested.
    Unavailable,
}

/// What the server saw, for the firmware's checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests received.
    pub requests: u32,
    /// Distinct events ingested.
    pub unique: u32,
    /// Events received again after they had been ingested (dropped by `insert_id`).
    pub duplicates: u32,
    /// Answers by kind.
    pub ok: u32,
    pub too_large: u32,
    pub bad_request: u32,
    pub throttled: u32,
    pub server_errors: u32,
    pub transport_errors: u32,
    /// Largest request seen, in events.
    pub max_events_seen: u32,
    /// A device's events arrived out of log order.
    pub order_violations: u32,
    /// Events of other devices ingested while the throttled device was paused.
    pub others_during_pause: u32,
    /// Virtual time when the throttled device's first event was ingested.
    pub throttled_ingested_at: Option<u64>,
    /// Virtual time of the first 429.
    pub first_429_at: Option<u64>,
    /// Malformed request bodies.
    pub malformed: u32,
}

/// One event as the server reads it from the body.
#[derive(Clone, Copy)]
struct Seen<'b> {
    insert_id: u64,
    device: &'b [u8],
    n: Option<u64>,
    bad: bool,
}

/// The scripted server. Responses are written into the caller's buffer.
pub struct ScriptedServer<'s, const K: usize> {
    script: Vec<(u32, Step), 16>,
    clock_ms: &'s Cell<u64>,
    ingested: Vec<u64, K>,
    last_n: Vec<(u64, u64), 16>,
    throttle_until: Option<u64>,
    pub tally: Tally,
}

impl<'s, const K: usize> ScriptedServer<'s, K> {
    /// A server following `script` (request number → step), reading virtual time from
    /// `clock_ms`, able to remember `K` ingested events.
    pub fn new(script: &[(u32, Step)], clock_ms: &'s Cell<u64>) -> Self {
        Self {
            script: script.iter().copied().take(16).collect(),
            clock_ms,
            ingested: Vec::new(),
            last_n: Vec::new(),
            throttle_until: None,
            tally: Tally::default(),
        }
    }

    fn ingest(&mut self, events: &[Seen<'_>]) {
        let now = self.clock_ms.get();
        for e in events {
            if self.ingested.contains(&e.insert_id) {
                self.tally.duplicates += 1;
                continue;
            }
            if self.ingested.push(e.insert_id).is_err() {
                self.tally.malformed += 1;
                continue;
            }
            self.tally.unique += 1;
            let device = fnv(e.device);
            if e.device == THROTTLED_DEVICE.as_bytes() {
                self.tally.throttled_ingested_at.get_or_insert(now);
            } else if self
                .throttle_until
                .is_some_and(|_| self.tally.throttled_ingested_at.is_none())
            {
                self.tally.others_during_pause += 1;
            }
            if let Some(n) = e.n {
                match self.last_n.iter_mut().find(|(d, _)| *d == device) {
                    Some((_, last)) => {
                        if n <= *last {
                            self.tally.order_violations += 1;
                        }
                        *last = n;
                    }
                    None => {
                        if self.last_n.push((device, n)).is_err() {
                            self.tally.malformed += 1;
                        }
                    }
                }
            }
        }
    }
}

impl<const K: usize> Transport for ScriptedServer<'_, K> {
    async fn send<'b>(
        &mut self,
        request: Request<'_>,
        buf: &'b mut [u8],
    ) -> Result<Response<'b>, TransportError> {
        self.tally.requests += 1;
        let number = self.tally.requests;
        let mut events: Vec<Seen<'_>, 64> = Vec::new();
        if parse_events(request.body, &mut events).is_err() {
            self.tally.malformed += 1;
            return Ok(respond(
                buf,
                400,
                b"{\"code\":400,\"error\":\"Invalid JSON request body\"}",
                None,
            ));
        }
        self.tally.max_events_seen = self.tally.max_events_seen.max(events.len() as u32);

        let due = self.script.iter().position(|(n, _)| *n <= number);
        let step = due.map(|i| self.script[i].1);
        if let (Some(i), Some(step)) = (due, step)
            && step != Step::IngestThen500
        {
            self.script.remove(i);
        }
        match step {
            Some(Step::Fail(e)) => {
                self.tally.transport_errors += 1;
                return Err(e);
            }
            Some(Step::Error500) => {
                self.tally.server_errors += 1;
                return Ok(respond(
                    buf,
                    500,
                    b"{\"code\":500,\"error\":\"Internal error\"}",
                    None,
                ));
            }
            Some(Step::Unavailable) => {
                self.tally.server_errors += 1;
                return Ok(respond(buf, 503, b"{\"code\":503}", Some(2)));
            }
            Some(Step::IngestThen500) | None => {}
        }

        let mut w = Writer { buf, len: 0 };
        let verdict = self.judge(&events);
        if step == Some(Step::IngestThen500) && verdict == Verdict::Accept {
            // The server does its work, then fails to say so.
            if let Some(i) = due {
                self.script.remove(i);
            }
            self.ingest(&events);
            self.tally.server_errors += 1;
            let len = w.len;
            return Ok(Response::new(500, &w.buf[..len]));
        }
        match verdict {
            Verdict::TooLarge => {
                self.tally.too_large += 1;
                w.put(b"{\"code\":413,\"error\":\"Payload too large\"}");
            }
            Verdict::Bad => {
                self.tally.bad_request += 1;
                w.put(b"{\"code\":400,\"error\":\"Request missing required field\",\"events_with_invalid_fields\":{\"time\":");
                w.indices(&events, |e| e.bad);
                w.put(b"}}");
            }
            Verdict::Throttled => {
                self.tally.throttled += 1;
                self.tally.first_429_at.get_or_insert(self.clock_ms.get());
                w.put(b"{\"code\":429,\"error\":\"Too many requests for some devices and users\",\"eps_threshold\":30,\"throttled_devices\":{\"");
                w.put(THROTTLED_DEVICE.as_bytes());
                w.put(b"\":31},\"throttled_events\":");
                w.indices(&events, is_throttled);
                w.put(b"}");
            }
            Verdict::Accept => {
                self.ingest(&events);
                self.tally.ok += 1;
                w.put(b"{\"code\":200,\"events_ingested\":");
                w.num(events.len() as u64);
                w.put(b",\"payload_size_bytes\":");
                w.num(request.body.len() as u64);
                w.put(b",\"server_upload_time\":1767225600000}");
            }
        }
        let len = w.len;
        Ok(Response::new(verdict.status(), &w.buf[..len]))
    }
}

/// What the rules say about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    TooLarge,
    Bad,
    Throttled,
    Accept,
}

impl Verdict {
    fn status(self) -> u16 {
        match self {
            Verdict::TooLarge => 413,
            Verdict::Bad => 400,
            Verdict::Throttled => 429,
            Verdict::Accept => 200,
        }
    }
}

fn is_throttled(e: &Seen<'_>) -> bool {
    e.device == THROTTLED_DEVICE.as_bytes()
}

impl<const K: usize> ScriptedServer<'_, K> {
    /// Apply the rules (opening the throttle window at the first throttled request).
    fn judge(&mut self, events: &[Seen<'_>]) -> Verdict {
        if events.len() > MAX_EVENTS {
            return Verdict::TooLarge;
        }
        if events.iter().any(|e| e.bad) {
            return Verdict::Bad;
        }
        if events.iter().any(is_throttled) {
            let now = self.clock_ms.get();
            let until = *self.throttle_until.get_or_insert(now + THROTTLE_WINDOW_MS);
            if now < until {
                return Verdict::Throttled;
            }
        }
        Verdict::Accept
    }
}

fn respond<'b>(
    buf: &'b mut [u8],
    status: u16,
    body: &[u8],
    retry_after: Option<u32>,
) -> Response<'b> {
    let n = body.len().min(buf.len());
    buf[..n].copy_from_slice(&body[..n]);
    let mut r = Response::new(status, &buf[..n]);
    r.retry_after_secs = retry_after;
    r.truncated = n < body.len();
    r
}

/// Appends to a byte buffer, silently stopping when it is full (the response is then cut,
/// as a real transport would cut it).
struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Writer<'_> {
    /// A JSON array of the indices of `events` that match.
    fn indices(&mut self, events: &[Seen<'_>], pick: impl Fn(&Seen<'_>) -> bool) {
        self.put(b"[");
        for (k, (i, _)) in events
            .iter()
            .enumerate()
            .filter(|(_, e)| pick(e))
            .enumerate()
        {
            if k > 0 {
                self.put(b",");
            }
            self.num(i as u64);
        }
        self.put(b"]");
    }

    fn put(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    fn num(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.put(&digits[i..]);
    }
}

/// FNV-1a, to remember ids compactly.
fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Split the `events` array of an HTTP V2 body into its objects and read the fields the
/// server cares about. Strings are skipped correctly (escapes included), so braces inside
/// values cannot confuse it.
fn parse_events<'b, const M: usize>(body: &'b [u8], out: &mut Vec<Seen<'b>, M>) -> Result<(), ()> {
    const KEY: &[u8] = b"\"events\":[";
    let start = find(body, KEY).ok_or(())? + KEY.len();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut object_start = 0;
    for (i, &b) in body.iter().enumerate().skip(start) {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => {
                if depth == 0 {
                    object_start = i;
                }
                depth += 1;
            }
            b'}' => {
                depth = depth.checked_sub(1).ok_or(())?;
                if depth == 0 {
                    out.push(read_event(&body[object_start..=i])?)
                        .map_err(|_| ())?;
                }
            }
            b']' if depth == 0 => return Ok(()),
            _ => {}
        }
    }
    Err(())
}

fn read_event(obj: &[u8]) -> Result<Seen<'_>, ()> {
    let insert_id = string_field(obj, b"\"insert_id\":\"").ok_or(())?;
    let device = string_field(obj, b"\"device_id\":\"").unwrap_or(b"");
    let n = find(obj, b"\"n\":").map(|at| {
        obj[at + 4..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'))
    });
    Ok(Seen {
        insert_id: fnv(insert_id),
        device,
        n,
        bad: find(obj, b"\"bad\":true").is_some(),
    })
}

/// The raw (unescaped) contents of the first string after `key`.
fn string_field<'o>(obj: &'o [u8], key: &[u8]) -> Option<&'o [u8]> {
    let from = find(obj, key)? + key.len();
    let len = obj[from..].iter().position(|&b| b == b'"')?;
    Some(&obj[from..from + len])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
