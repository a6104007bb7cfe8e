//! Realistic, reproducible sample events: users with stable ids and device profiles,
//! weighted event types, and properties of mixed types (string, int, float, bool,
//! list, nested object).

use amplitude_core::{Event, RawJson, Value};

/// Event types and their weights; "Debug" events are there for filters to drop.
const EVENT_TYPES: [(&str, u32); 9] = [
    ("Page Viewed", 30),
    ("Button Clicked", 18),
    ("Search Performed", 10),
    ("Product Viewed", 12),
    ("Add To Cart", 7),
    ("Order Completed", 3),
    ("Song Played", 8),
    ("Sign In", 4),
    ("Debug", 8),
];
const SCREENS: [&str; 6] = ["home", "search", "product", "cart", "checkout", "profile"];
const SOURCES: [&str; 4] = ["organic", "push", "email", "referral"];
const TAGS: [&str; 4] = ["new", "sale", "featured", "gift"];
const PLATFORMS: [(&str, &str); 3] = [("iOS", "18.1"), ("Android", "15"), ("Web", "126.0")];

/// A user with a stable id, device and platform.
#[derive(Debug, Clone)]
pub struct SampleUser {
    /// `user_id`
    pub user_id: String,
    /// `device_id`
    pub device_id: String,
    /// `platform`
    pub platform: &'static str,
    /// `os_version`
    pub os_version: &'static str,
}

/// A small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Sampler(u64);

impl Sampler {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// `n` users with stable ids (`user-0000`…) and device ids.
    ///
    /// ```
    /// use amplitude_examples::sample::Sampler;
    /// let users = Sampler::new(1).users(3);
    /// assert_eq!(users[2].user_id, "user-0002");
    /// ```
    pub fn users(&mut self, n: usize) -> Vec<SampleUser> {
        (0..n)
            .map(|i| {
                let (platform, os_version) = PLATFORMS[self.below(3) as usize];
                SampleUser {
                    user_id: format!("user-{i:04}"),
                    device_id: format!("device-{:016x}", self.next_u64()),
                    platform,
                    os_version,
                }
            })
            .collect()
    }

    /// The next sample event of one of `users`.
    pub fn next_event<'u>(&mut self, users: &'u [SampleUser]) -> SampleEvent<'u> {
        let total: u32 = EVENT_TYPES.iter().map(|e| e.1).sum();
        let mut pick = self.below(u64::from(total)) as u32;
        let mut event_type = EVENT_TYPES[0].0;
        for (name, weight) in EVENT_TYPES {
            if pick < weight {
                event_type = name;
                break;
            }
            pick -= weight;
        }
        let user = &users[self.below(users.len() as u64) as usize];
        let first_tag = self.below(3) as usize;
        let tags = 1 + self.below(2) as usize;
        SampleEvent {
            event_type,
            user,
            screen: SCREENS[self.below(SCREENS.len() as u64) as usize],
            quantity: 1 + self.below(12) as i64,
            price: (50 + self.below(25_000)) as f64 / 100.0,
            premium: self.below(10) < 3,
            tags: [Value::Str(TAGS[first_tag]), Value::Str(TAGS[first_tag + 1])],
            ntags: tags,
            context: format!(
                r#"{{"source":"{}","position":{}}}"#,
                SOURCES[self.below(SOURCES.len() as u64) as usize],
                1 + self.below(20)
            ),
        }
    }
}

/// One generated event; [`SampleEvent::event`] borrows it as a core [`Event`].
#[derive(Debug, Clone)]
pub struct SampleEvent<'u> {
    /// Its `event_type`.
    pub event_type: &'static str,
    /// Whose event it is.
    pub user: &'u SampleUser,
    screen: &'static str,
    quantity: i64,
    price: f64,
    premium: bool,
    tags: [Value<'static>; 2],
    ntags: usize,
    context: String,
}

impl SampleEvent<'_> {
    /// The event, ready to log.
    ///
    /// ```
    /// use amplitude_examples::sample::Sampler;
    /// let mut s = Sampler::new(7);
    /// let users = s.users(2);
    /// let sample = s.next_event(&users);
    /// let event = sample.event();
    /// assert_eq!(event.properties().len(), 6);
    /// ```
    pub fn event(&self) -> Event<'_> {
        let mut e: Event<'_> = Event::new(self.event_type)
            .user_id(&self.user.user_id)
            .device_id(&self.user.device_id)
            .platform(self.user.platform)
            .os_version(self.user.os_version)
            .property("screen", self.screen)
            .property("quantity", self.quantity)
            .property("price", self.price)
            .property("premium", self.premium)
            .property("tags", &self.tags[..self.ntags]);
        if let Ok(raw) = RawJson::new(&self.context) {
            e = e.property("context", raw);
        }
        e
    }
}
