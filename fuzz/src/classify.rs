//! `classify_response`: an arbitrary response (status, `Retry-After`, `Date`, body) is
//! applied to a real client's batch of `n` events. Nothing panics; outcomes go only to
//! events of that batch, each at most once, exactly as the classification says (spec §6);
//! counters balance; the client keeps working afterwards. The header parsers and the
//! body parser are checked against independent readings of the same bytes.
//!
//! Input format (so that seeds are readable): four lines — status, batch size,
//! `Retry-After` value, `Date` value — then the body, all bytes after the fourth newline.

use std::collections::HashMap;

use amplitude_core::client::Client;
use amplitude_core::config::Config;
use amplitude_core::outcome::{DropReason, EventId, Outcome, OutcomeSink, RejectReason, Report};
use amplitude_core::queue::{RamQueue, Slot};
use amplitude_core::response::{Body, Class, classify, key_hash};
use amplitude_core::transport::{Response, parse_http_date, parse_retry_after};
use amplitude_core::{Event, Logged};
use embassy_time::Instant;

/// The decoded fuzz input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input<'a> {
    /// HTTP status.
    pub status: u16,
    /// Events in the batch (1..=200).
    pub n: usize,
    /// Raw `Retry-After` header value.
    pub retry_after: &'a [u8],
    /// Raw `Date` header value.
    pub date: &'a [u8],
    /// Response body.
    pub body: &'a [u8],
}

fn number(line: &[u8]) -> u64 {
    line.iter()
        .filter(|b| b.is_ascii_digit())
        .fold(0u64, |n, b| {
            n.wrapping_mul(10).wrapping_add(u64::from(b - b'0'))
        })
}

/// Split the input into its fields (missing lines are empty).
pub fn decode(data: &[u8]) -> Input<'_> {
    let mut rest = data;
    let mut line = || {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let l = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or(&[]);
        l
    };
    let status = number(line()) as u16;
    let n = match number(line()) {
        0 => 1,
        k => ((k - 1) % 200) as usize + 1,
    };
    let retry_after = line();
    let date = line();
    Input {
        status,
        n,
        retry_after,
        date,
        body: rest,
    }
}

/// Records every outcome by event id.
#[derive(Default)]
struct Outcomes(HashMap<EventId, Outcome>);

impl OutcomeSink for Outcomes {
    fn on_outcome(&mut self, r: &Report<'_>) {
        serde_json::from_slice::<serde_json::Value>(r.json).expect("reported JSON");
        let before = self.0.insert(r.id, r.outcome);
        assert!(
            before.is_none(),
            "{:?} got a second outcome {:?}",
            r.id,
            r.outcome
        );
    }
}

const DEVICES: usize = 7;
const USERS: usize = 5;

fn device(i: usize) -> Option<String> {
    (i % 4 != 3).then(|| format!("device-{}", i % DEVICES))
}

fn user(i: usize) -> String {
    format!("user-{}", i % USERS)
}

/// Independent reading of `Retry-After` (delta-seconds only).
fn retry_after_oracle(v: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(v)
        .ok()?
        .trim_matches(|c: char| c.is_ascii_whitespace());
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Independent reading of an IMF-fixdate, as leniently as the core reads it (day 1–31 in
/// any month, second 60 allowed, any day name).
fn http_date_oracle(v: &[u8]) -> Option<u64> {
    let b = v.trim_ascii();
    // The day name is not checked (any three bytes), the rest must be ASCII.
    let s = std::str::from_utf8(b.get(3..)?).ok()?;
    let s = format!("Day{s}");
    let b = s.as_bytes();
    if b.len() != 29 || &b[3..5] != b", " || !s.ends_with(" GMT") {
        return None;
    }
    let field = |r: std::ops::Range<usize>| -> Option<u64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let day = field(5..7)?;
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months.iter().position(|m| s.get(8..11) == Some(*m))? as u64;
    let year = field(12..16)?;
    let (h, mi, sec) = (field(17..19)?, field(20..22)?, field(23..25)?);
    if b[4] != b' '
        || b[7] != b' '
        || b[11] != b' '
        || b[16] != b' '
        || b[19] != b':'
        || b[22] != b':'
    {
        return None;
    }
    if year < 1970 || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let mut days: u64 = (1970..year).map(|y| if leap(y) { 366 } else { 365 }).sum();
    let lengths = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    days += lengths[..month as usize].iter().sum::<u64>() + day - 1;
    Some(((days * 24 + h) * 60 + mi) * 60 * 1000 + sec * 1000)
}

/// What the client must do with event `i` of the batch, per the classification.
fn expected(
    c: &amplitude_core::response::Classified,
    i: usize,
    n: usize,
    max_retries: u8,
) -> Option<Outcome> {
    let b: &Body = &c.body;
    let dk = device(i).map_or(0, |d| key_hash(b"d", &d));
    let uk = key_hash(b"u", &user(i));
    match c.class {
        Class::Delivered => Some(Outcome::Delivered),
        Class::RejectAll(r) => Some(Outcome::Rejected(r)),
        Class::Forbidden => Some(Outcome::Rejected(RejectReason::Forbidden)),
        Class::BadEvents => {
            let silenced = |j: usize| {
                device(j).is_some_and(|d| b.silenced_devices.contains(key_hash(b"d", &d)))
            };
            let usable = [
                &b.invalid_fields,
                &b.missing_fields,
                &b.invalid_id_lengths,
                &b.silenced_events,
            ]
            .iter()
            .any(|s| s.any_below(n))
                || (0..n).any(silenced);
            if !usable {
                return (n == 1).then_some(Outcome::Rejected(RejectReason::Invalid));
            }
            let r = if b.invalid_fields.contains(i) {
                RejectReason::InvalidFields
            } else if b.missing_fields.contains(i) {
                RejectReason::MissingFields
            } else if b.invalid_id_lengths.contains(i) {
                RejectReason::InvalidIdLength
            } else if b.silenced_events.contains(i) || silenced(i) {
                RejectReason::Silenced
            } else {
                return None;
            };
            Some(Outcome::Rejected(r))
        }
        Class::TooLarge => (n == 1).then_some(Outcome::Dropped(DropReason::TooLarge)),
        Class::Throttled => {
            let named = |j: usize| {
                let dk = device(j).map_or(0, |d| key_hash(b"d", &d));
                let uk = key_hash(b"u", &user(j));
                b.quota_devices.contains(dk)
                    || b.quota_users.contains(uk)
                    || b.throttled_devices.contains(dk)
                    || b.throttled_users.contains(uk)
                    || b.throttled_events.contains(j)
            };
            if !(0..n).any(named) {
                // Names nobody in the batch: a counted retry after the pause.
                return (max_retries == 0)
                    .then_some(Outcome::Dropped(DropReason::RetriesExhausted));
            }
            (b.quota_devices.contains(dk) || b.quota_users.contains(uk))
                .then_some(Outcome::Dropped(DropReason::DailyQuota))
        }
        Class::Retry => {
            (max_retries == 0).then_some(Outcome::Dropped(DropReason::RetriesExhausted))
        }
    }
}

/// Run every check on the fuzz input.
pub fn check(data: &[u8]) {
    let input = decode(data);
    check_input(&input);
}

/// Check one decoded input.
pub fn check_input(input: &Input<'_>) {
    let Input {
        status,
        n,
        retry_after,
        date,
        body,
    } = *input;

    // Header parsers against independent readings.
    let ra = parse_retry_after(retry_after);
    assert_eq!(
        ra,
        retry_after_oracle(retry_after),
        "Retry-After {:?}",
        String::from_utf8_lossy(retry_after)
    );
    let dm = parse_http_date(date);
    assert_eq!(
        dm,
        http_date_oracle(date),
        "Date {:?}",
        String::from_utf8_lossy(date)
    );

    // The classifier against serde_json reading the same body with the same visitor.
    let c = classify(status, body);
    let want_class = match status {
        200..=299 => "delivered",
        400 => "400",
        403 => "forbidden",
        413 => "too large",
        429 => "throttled",
        _ => "retry",
    };
    let got_class = match c.class {
        Class::Delivered => "delivered",
        Class::RejectAll(_) | Class::BadEvents => "400",
        Class::Forbidden => "forbidden",
        Class::TooLarge => "too large",
        Class::Throttled => "throttled",
        Class::Retry => "retry",
    };
    assert_eq!(
        got_class, want_class,
        "status {status} classified as {:?}",
        c.class
    );
    if !c.body_parsed {
        assert_eq!(c.body, Body::default(), "an unread body must say nothing");
    }
    // What serde_json reads, the classifier must read the same. (serde-json-core is more
    // lenient — raw control characters in strings, for one — and may read bodies that
    // serde_json refuses; the status still decides the class then. serde_json in turn
    // skips ignored strings without checking their UTF-8: JSON text is UTF-8, so only
    // UTF-8 bodies are compared.)
    // (Ids are hashed through their escapes, surrogate pairs included, so escaped and
    // plain spellings of an id agree.)
    if let (Ok(b), Ok(_)) = (
        serde_json::from_slice::<Body>(body),
        std::str::from_utf8(body),
    ) {
        assert!(
            c.body_parsed,
            "a body serde_json reads was not parsed: {b:?}"
        );
        assert_eq!(
            c.body, b,
            "serde-json-core and serde_json read different bodies"
        );
    }

    // A real client: a batch of n events in flight, k more queued behind it.
    let max_retries = (n % 3) as u8;
    let config = Config::new("fuzz-key")
        .flush_queue_size(n as u16)
        .max_retries(max_retries);
    let queue = RamQueue::new(
        vec![0u8; 1 << 16].into_boxed_slice(),
        vec![Slot::EMPTY; 256].into_boxed_slice(),
    );
    let mut client: Client<'_, _> = Client::new(config, queue, 3);
    let mut sink = Outcomes::default();
    let t0 = Instant::from_millis(1_000);
    let log = |client: &mut Client<'_, _>, sink: &mut Outcomes, i: usize| {
        let d = device(i);
        let u = user(i);
        let mut ev: Event = Event::new("Fuzz Event").user_id(&u);
        if let Some(d) = &d {
            ev = ev.device_id(d);
        }
        let r = client.log_event(t0, ev, &mut (), None, sink);
        assert_eq!(r, Ok(Logged::Queued(EventId(i as u64))));
    };
    for i in 0..n {
        log(&mut client, &mut sink, i);
    }
    let mut buf = vec![0u8; 1 << 16];
    let out = client
        .next_request(t0, &mut buf, &mut sink)
        .expect("a full batch is due");
    assert_eq!(out.events, n);
    let flight = out.flight;
    let extra = 3;
    for i in n..n + extra {
        log(&mut client, &mut sink, i);
    }
    let response = Response {
        status,
        retry_after_secs: ra,
        date_ms: dm,
        body,
        truncated: false,
    };
    client.on_response(t0, flight, Ok(response), &mut sink);

    for (id, o) in &sink.0 {
        assert!(
            (id.0 as usize) < n,
            "outcome {o:?} for {id:?}, which was not in the batch of {n}"
        );
    }
    for i in 0..n {
        let got = sink.0.get(&EventId(i as u64)).copied();
        assert_eq!(
            got,
            expected(&c, i, n, max_retries),
            "event {i} of {n}, {:?}",
            c.class
        );
    }
    let counters = *client.counters();
    assert_eq!(counters.accepted, (n + extra) as u64);
    assert_eq!(
        counters.pending(),
        (n + extra - sink.0.len()) as u64,
        "counters and outcomes disagree"
    );

    // The client keeps working: follow its wake-ups, accept everything, all events end.
    let mut now = t0;
    for _ in 0..3 * n + 20 {
        if counters_done(&client) {
            break;
        }
        let Some(t) = client.next_wakeup(now) else {
            panic!("pending events but no wake-up");
        };
        assert!(t >= now, "wake-up in the past");
        now = t;
        if let Some(out) = client.next_request(now, &mut buf, &mut sink) {
            let flight = out.flight;
            client.on_response(
                now,
                flight,
                Ok(Response::new(200, br#"{"code":200}"#)),
                &mut sink,
            );
        } else {
            // Nothing sent at a wake-up (a record behind a later-waiting one of its
            // device): the next wake-up must lie in the future, or this is a hot loop.
            let later = client.next_wakeup(now);
            assert!(
                later.is_none_or(|t| t > now),
                "hot loop: wake-up {later:?} at {now:?} sends nothing"
            );
        }
    }
    assert!(
        counters_done(&client),
        "events still pending: {:?}",
        client.counters()
    );
    assert_eq!(sink.0.len(), n + extra);
}

fn counters_done<Q: amplitude_core::queue::Batcher>(c: &Client<'_, Q>) -> bool {
    c.counters().pending() == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_pass() {
        for (name, data) in crate::seeds("classify_response") {
            eprintln!("{name}");
            check(&data);
        }
    }

    #[test]
    fn input_lines_decode() {
        let i = decode(b"429\n3\n 30\nSun, 06 Nov 1994 08:49:37 GMT\n{\"code\":429}");
        assert_eq!(
            (i.status, i.n, i.retry_after, i.body),
            (429, 3, &b" 30"[..], &b"{\"code\":429}"[..])
        );
        assert_eq!(http_date_oracle(i.date), Some(784111777000));
    }
}
