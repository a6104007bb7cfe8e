//! Everything the server remembers: counters, de-duplication, per-device order,
//! throttling windows and (optionally) the ingested events.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::Hasher;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::reply::Throttled;
use super::request::EventView;
use super::summary::Summary;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Fingerprint of an `insert_id`, as recorded per device by the server's order
/// tracking (see [`MockServer::device_order`](super::MockServer::device_order)).
///
/// The value is stable within one process (it is a SipHash with fixed keys), so a
/// test can compare it with what the server recorded.
///
/// ```
/// use amplitude_mock::server::insert_id_fingerprint;
///
/// assert_eq!(insert_id_fingerprint("a"), insert_id_fingerprint("a"));
/// assert_ne!(insert_id_fingerprint("a"), insert_id_fingerprint("b"));
/// ```
pub fn insert_id_fingerprint(insert_id: &str) -> u64 {
    fingerprint(&[insert_id.as_bytes()])
}

fn fingerprint(parts: &[&[u8]]) -> u64 {
    let mut h = DefaultHasher::new();
    for part in parts {
        h.write_usize(part.len());
        h.write(part);
    }
    h.finish()
}

/// Event counts in time buckets over a sliding span.
#[derive(Debug, Default)]
struct Window {
    buckets: VecDeque<(Instant, u64)>,
    total: u64,
}

impl Window {
    fn expire(&mut self, now: Instant, span: Duration) {
        while let Some(&(at, n)) = self.buckets.front() {
            if now.saturating_duration_since(at) >= span {
                self.total -= n;
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }

    fn add(&mut self, now: Instant, n: u64, granularity: Duration) {
        self.total += n;
        if let Some(back) = self.buckets.back_mut() {
            if now.saturating_duration_since(back.0) < granularity {
                back.1 += n;
                return;
            }
        }
        self.buckets.push_back((now, n));
    }
}

#[derive(Debug, Default)]
struct KeyRate {
    recent: Window,
    day: Window,
}

/// Per-device order record.
#[derive(Debug, Default)]
struct DeviceTrack {
    /// Fingerprints of the `insert_id`s ingested for the device, in order
    /// (events without `insert_id` record the fingerprint of `""`).
    order: Vec<u64>,
    last_event_id: Option<i64>,
}

/// Throttling settings of one request.
pub(crate) struct RateRules {
    pub eps: u32,
    pub window: Duration,
    pub daily_quota: Option<u64>,
}

/// The server's memory; one instance behind a mutex.
#[derive(Debug)]
pub(crate) struct State {
    pub summary: Summary,
    dedup: HashSet<u64>,
    devices: HashMap<Box<str>, DeviceTrack>,
    users: HashSet<u64>,
    device_rates: HashMap<Box<str>, KeyRate>,
    user_rates: HashMap<Box<str>, KeyRate>,
    events: Vec<Bytes>,
    keep_events: bool,
}

impl State {
    pub fn new(keep_events: bool) -> Self {
        Self {
            summary: Summary::default(),
            dedup: HashSet::new(),
            devices: HashMap::new(),
            users: HashSet::new(),
            device_rates: HashMap::new(),
            user_rates: HashMap::new(),
            events: Vec::new(),
            keep_events,
        }
    }

    /// Counts a response of `status`.
    pub fn count_status(&mut self, status: u16) {
        *self.summary.responses.entry(status).or_insert(0) += 1;
    }

    /// A copy of the counters, with the distinct device and user counts filled in.
    pub fn snapshot(&self) -> Summary {
        let mut summary = self.summary.clone();
        summary.devices = self.devices.len() as u64;
        summary.users = self.users.len() as u64;
        summary
    }

    /// Checks the request against the per-device/per-user rate and the daily quota.
    /// When it passes, its events are counted in the windows; when it does not,
    /// nothing is counted and the 429 body is returned.
    pub fn admit(
        &mut self,
        now: Instant,
        events: &[EventView<'_>],
        rules: &RateRules,
    ) -> Result<(), Box<Throttled>> {
        let throttling = rules.eps > 0 && !rules.window.is_zero();
        if !throttling && rules.daily_quota.is_none() {
            return Ok(());
        }
        let mut per_device: HashMap<&str, u64> = HashMap::new();
        let mut per_user: HashMap<&str, u64> = HashMap::new();
        for event in events {
            if let Some(d) = event.device_id.as_deref() {
                *per_device.entry(d).or_insert(0) += 1;
            }
            if let Some(u) = event.user_id.as_deref() {
                *per_user.entry(u).or_insert(0) += 1;
            }
        }

        let budget = f64::from(rules.eps) * rules.window.as_secs_f64();
        let window_secs = rules.window.as_secs_f64();
        let mut verdict = Throttled {
            eps_threshold: rules.eps,
            ..Throttled::default()
        };
        let check = |rates: &mut HashMap<Box<str>, KeyRate>,
                     counts: &HashMap<&str, u64>,
                     throttled: &mut BTreeMap<String, u64>,
                     exceeded: &mut BTreeMap<String, u64>| {
            for (&key, &n) in counts {
                let Some(rate) = rates.get_mut(key) else {
                    // A key never seen has empty windows.
                    if throttling && n as f64 > budget {
                        throttled.insert(key.to_owned(), (n as f64 / window_secs).ceil() as u64);
                    }
                    if let Some(quota) = rules.daily_quota {
                        if n > quota {
                            exceeded.insert(key.to_owned(), n);
                        }
                    }
                    continue;
                };
                if throttling {
                    rate.recent.expire(now, rules.window);
                    let used = rate.recent.total + n;
                    if used as f64 > budget {
                        throttled.insert(key.to_owned(), (used as f64 / window_secs).ceil() as u64);
                    }
                }
                if let Some(quota) = rules.daily_quota {
                    rate.day.expire(now, DAY);
                    let used = rate.day.total + n;
                    if used > quota {
                        exceeded.insert(key.to_owned(), used);
                    }
                }
            }
        };
        check(
            &mut self.device_rates,
            &per_device,
            &mut verdict.throttled_devices,
            &mut verdict.exceeded_daily_quota_devices,
        );
        check(
            &mut self.user_rates,
            &per_user,
            &mut verdict.throttled_users,
            &mut verdict.exceeded_daily_quota_users,
        );

        let refused = !verdict.throttled_devices.is_empty()
            || !verdict.throttled_users.is_empty()
            || !verdict.exceeded_daily_quota_devices.is_empty()
            || !verdict.exceeded_daily_quota_users.is_empty();
        if refused {
            let hit = |id: Option<&str>, a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>| {
                id.is_some_and(|id| a.contains_key(id) || b.contains_key(id))
            };
            verdict.throttled_events = events
                .iter()
                .enumerate()
                .filter(|(_, e)| {
                    hit(
                        e.device_id.as_deref(),
                        &verdict.throttled_devices,
                        &verdict.exceeded_daily_quota_devices,
                    ) || hit(
                        e.user_id.as_deref(),
                        &verdict.throttled_users,
                        &verdict.exceeded_daily_quota_users,
                    )
                })
                .map(|(i, _)| i)
                .collect();
            return Err(Box::new(verdict));
        }

        let recent_step = rules.window / 32;
        let day_step = DAY / 96;
        for (rates, counts) in [
            (&mut self.device_rates, &per_device),
            (&mut self.user_rates, &per_user),
        ] {
            for (&key, &n) in counts {
                let rate = match rates.get_mut(key) {
                    Some(rate) => rate,
                    None => rates.entry(Box::from(key)).or_default(),
                };
                if throttling {
                    rate.recent.add(now, n, recent_step);
                }
                if rules.daily_quota.is_some() {
                    rate.day.add(now, n, day_step);
                }
            }
        }
        Ok(())
    }

    /// Stores the events of an accepted request (dropping duplicates) and returns the
    /// number of duplicates. `body` is the buffer the event views borrow from.
    pub fn ingest(&mut self, events: &[EventView<'_>], body: &Bytes) -> u64 {
        let mut duplicates = 0;
        for event in events {
            if let Some(insert_id) = event.insert_id.as_deref() {
                let key = match (event.device_id.as_deref(), event.user_id.as_deref()) {
                    (Some(d), _) => fingerprint(&[b"d", d.as_bytes(), insert_id.as_bytes()]),
                    (None, Some(u)) => fingerprint(&[b"u", u.as_bytes(), insert_id.as_bytes()]),
                    (None, None) => fingerprint(&[b"-", insert_id.as_bytes()]),
                };
                if !self.dedup.insert(key) {
                    duplicates += 1;
                    continue;
                }
            }
            if let Some(device) = event.device_id.as_deref() {
                let track = match self.devices.get_mut(device) {
                    Some(track) => track,
                    None => self.devices.entry(Box::from(device)).or_default(),
                };
                track.order.push(insert_id_fingerprint(
                    event.insert_id.as_deref().unwrap_or(""),
                ));
                if let Some(id) = event.event_id {
                    if track.last_event_id.is_some_and(|last| id < last) {
                        self.summary.order_violations += 1;
                    }
                    track.last_event_id = Some(id);
                }
            }
            if let Some(user) = event.user_id.as_deref() {
                self.users.insert(fingerprint(&[user.as_bytes()]));
            }
            if self.keep_events {
                self.events.push(sub_slice(body, event.raw));
            }
        }
        let received = events.len() as u64;
        self.summary.events_received += received;
        self.summary.events_ingested += received - duplicates;
        self.summary.duplicates += duplicates;
        duplicates
    }

    /// The kept events' JSON texts, in ingest order (empty when events are not kept).
    pub fn events(&self) -> &[Bytes] {
        &self.events
    }

    /// Whether full events are kept.
    pub fn keeps_events(&self) -> bool {
        self.keep_events
    }

    /// Fingerprints of the `insert_id`s ingested for `device_id`, in order.
    pub fn device_order(&self, device_id: &str) -> Vec<u64> {
        self.devices
            .get(device_id)
            .map(|t| t.order.clone())
            .unwrap_or_default()
    }
}

/// `part` as a slice of `body` without copying when it lies inside it.
fn sub_slice(body: &Bytes, part: &str) -> Bytes {
    let start = (part.as_ptr() as usize).wrapping_sub(body.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if start <= body.len() && end <= body.len() => body.slice(start..end),
        _ => Bytes::copy_from_slice(part.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn view<'a>(
        raw: &'a str,
        device: &'a str,
        insert: Option<&'a str>,
        event_id: Option<i64>,
    ) -> EventView<'a> {
        EventView {
            raw,
            device_id: Some(Cow::Borrowed(device)),
            user_id: None,
            insert_id: insert.map(Cow::Borrowed),
            event_id,
        }
    }

    #[test]
    fn window_expires_old_buckets() {
        let t0 = Instant::now();
        let mut w = Window::default();
        w.add(t0, 5, Duration::from_millis(10));
        w.add(t0 + Duration::from_millis(5), 1, Duration::from_millis(10));
        assert_eq!(w.buckets.len(), 1);
        w.add(t0 + Duration::from_millis(50), 2, Duration::from_millis(10));
        assert_eq!(w.total, 8);
        w.expire(t0 + Duration::from_millis(1000), Duration::from_millis(980));
        assert_eq!(w.total, 2);
    }

    #[test]
    fn ingest_drops_duplicates_and_records_order() {
        let body = Bytes::from_static(b"{}{}{}");
        let text = std::str::from_utf8(&body).unwrap();
        let mut state = State::new(true);
        let events = [
            view(&text[0..2], "dev-1", Some("a"), Some(2)),
            view(&text[2..4], "dev-1", Some("a"), Some(2)),
            view(&text[4..6], "dev-1", Some("b"), Some(1)),
        ];
        assert_eq!(state.ingest(&events, &body), 1);
        assert_eq!(state.summary.events_ingested, 2);
        assert_eq!(state.summary.order_violations, 1);
        assert_eq!(
            state.device_order("dev-1"),
            vec![insert_id_fingerprint("a"), insert_id_fingerprint("b")]
        );
        assert_eq!(state.events().len(), 2);
        assert_eq!(state.events()[1].as_ptr(), body[4..].as_ptr());
    }

    #[test]
    fn admit_counts_only_admitted_requests() {
        let mut state = State::new(false);
        let rules = RateRules {
            eps: 1,
            window: Duration::from_secs(2),
            daily_quota: None,
        };
        let now = Instant::now();
        let two = [
            view("{}", "dev-1", None, None),
            view("{}", "dev-1", None, None),
        ];
        assert!(state.admit(now, &two, &rules).is_ok());
        let refused = state.admit(now, &two, &rules).unwrap_err();
        assert_eq!(refused.throttled_devices.get("dev-1"), Some(&2));
        assert_eq!(refused.throttled_events, vec![0, 1]);
        // The refused request was not counted, so after the window it all passes again.
        assert!(
            state
                .admit(now + Duration::from_secs(2), &two, &rules)
                .is_ok()
        );
    }
}
