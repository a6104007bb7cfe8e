//! Classifying HTTP V2 responses (spec §5) into what to do with the batch (spec §6).
//!
//! Bodies are parsed with serde-json-core into fixed-size sets: index lists become bit
//! sets over the batch, user and device ids become hashes. Missing, non-JSON, truncated
//! or oddly shaped bodies are tolerated: the status alone then decides.

use core::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Most events a request may carry (the server requires fewer than 2000).
pub const MAX_EVENTS_PER_REQUEST: usize = 1999;

/// A set of batch indices (`0..2048`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct IndexSet {
    bits: [u64; 32],
    /// An index was listed that lies outside every possible batch.
    pub out_of_range: bool,
}

impl fmt::Debug for IndexSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries((0..2048).filter(|&i| self.contains(i)))
            .finish()
    }
}

impl IndexSet {
    /// Add `i`.
    pub fn insert(&mut self, i: u64) {
        if i < 2048 {
            self.bits[(i / 64) as usize] |= 1 << (i % 64);
        } else {
            self.out_of_range = true;
        }
    }

    /// Whether `i` is in the set.
    pub fn contains(&self, i: usize) -> bool {
        i < 2048 && self.bits[i / 64] & (1 << (i % 64)) != 0
    }

    /// Whether any index below `n` is in the set.
    pub fn any_below(&self, n: usize) -> bool {
        (0..n.min(2048)).any(|i| self.contains(i))
    }

    /// Whether the set lists anything at all.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }
}

/// Hash of an id as the queue stores it: FNV-1a, never 0 (0 means "no id").
///
/// ```
/// use amplitude_core::response::key_hash;
/// assert_ne!(key_hash(b"d", "device-1"), key_hash(b"u", "device-1"));
/// ```
pub fn key_hash(kind: &[u8; 1], id: &str) -> u32 {
    finish(fnv(fnv(FNV_START, kind), id.as_bytes()))
}

const FNV_START: u32 = 0x811c_9dc5;

fn fnv(mut h: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn finish(h: u32) -> u32 {
    if h == 0 { 1 } else { h }
}

/// [`key_hash`] of the string whose JSON text (between the quotes, escapes and all) is
/// `escaped`, without unescaping into a buffer (so any length and any escape, surrogate
/// pairs included, works). Malformed escapes hash as written.
fn key_hash_escaped(kind: &[u8; 1], escaped: &str) -> u32 {
    let b = escaped.as_bytes();
    let hex4 = |at: usize| -> Option<u32> {
        let s = b.get(at..at + 4)?;
        let mut v = 0u32;
        for &c in s {
            v = (v << 4) | char::from(c).to_digit(16)?;
        }
        Some(v)
    };
    let mut h = fnv(FNV_START, kind);
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            let start = i;
            while i < b.len() && b[i] != b'\\' {
                i += 1;
            }
            h = fnv(h, &b[start..i]);
            continue;
        }
        let simple = match b.get(i + 1) {
            Some(b'"') => Some(b'"'),
            Some(b'\\') => Some(b'\\'),
            Some(b'/') => Some(b'/'),
            Some(b'b') => Some(0x08),
            Some(b'f') => Some(0x0c),
            Some(b'n') => Some(b'\n'),
            Some(b'r') => Some(b'\r'),
            Some(b't') => Some(b'\t'),
            _ => None,
        };
        if let Some(c) = simple {
            h = fnv(h, &[c]);
            i += 2;
            continue;
        }
        let decoded = (b.get(i + 1) == Some(&b'u'))
            .then(|| hex4(i + 2))
            .flatten()
            .and_then(|hi| {
                if (0xD800..0xDC00).contains(&hi) {
                    let lo = (b.get(i + 6..i + 8) == Some(b"\\u"))
                        .then(|| hex4(i + 8))
                        .flatten()?;
                    let cp = 0x10000
                        + ((hi - 0xD800) << 10)
                        + lo.checked_sub(0xDC00).filter(|l| *l < 0x400)?;
                    Some((char::from_u32(cp)?, 12))
                } else {
                    Some((char::from_u32(hi)?, 6))
                }
            });
        match decoded {
            Some((c, len)) => {
                let mut buf = [0u8; 4];
                h = fnv(h, c.encode_utf8(&mut buf).as_bytes());
                i += len;
            }
            None => {
                h = fnv(h, &b[i..i + 1]);
                i += 1;
            }
        }
    }
    finish(h)
}

/// A fixed-capacity set of id hashes; remembers if more ids were listed than it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    keys: heapless::Vec<u32, 64>,
    /// More ids were listed than fit.
    pub overflow: bool,
}

impl KeySet {
    /// Whether `key` is in the set.
    pub fn contains(&self, key: u32) -> bool {
        key != 0 && self.keys.contains(&key)
    }

    /// The hashes.
    pub fn keys(&self) -> &[u32] {
        &self.keys
    }

    /// Whether nothing was listed.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && !self.overflow
    }

    fn insert(&mut self, key: u32) {
        if !self.keys.contains(&key) && self.keys.push(key).is_err() {
            self.overflow = true;
        }
    }
}

/// Everything the core reads from a response body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    /// `code`
    pub code: Option<u64>,
    /// `error` starts with `Invalid API key`.
    pub invalid_api_key: bool,
    /// `missing_field` is present (a request-level field is missing).
    pub missing_field: bool,
    /// `events_with_invalid_fields` (all fields together).
    pub invalid_fields: IndexSet,
    /// `events_with_missing_fields`.
    pub missing_fields: IndexSet,
    /// `events_with_invalid_id_lengths`.
    pub invalid_id_lengths: IndexSet,
    /// `silenced_events`.
    pub silenced_events: IndexSet,
    /// `silenced_devices` (hashed like device ids).
    pub silenced_devices: KeySet,
    /// `throttled_events`.
    pub throttled_events: IndexSet,
    /// `throttled_devices` keys.
    pub throttled_devices: KeySet,
    /// `throttled_users` keys.
    pub throttled_users: KeySet,
    /// `exceeded_daily_quota_devices` keys.
    pub quota_devices: KeySet,
    /// `exceeded_daily_quota_users` keys.
    pub quota_users: KeySet,
    /// `server_upload_time` (ms since the epoch).
    pub server_upload_time: Option<u64>,
}

/// How the response treats the request as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Class {
    /// 2xx: every event delivered.
    Delivered,
    /// 400 naming a request-level problem (`missing_field`, bad API key): reject all.
    RejectAll(crate::outcome::RejectReason),
    /// 400 about individual events: reject the listed ones (bisect if none usable).
    BadEvents,
    /// 403: blocked, not retryable.
    Forbidden,
    /// 413: split the batch.
    TooLarge,
    /// 429: drop quota-exceeded keys, pause throttled ones.
    Throttled,
    /// 408, 5xx, other statuses: retry with backoff.
    Retry,
}

/// A classified response: the class and the parsed body (empty when there was none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// What to do with the request.
    pub class: Class,
    /// What the body said.
    pub body: Body,
    /// Whether the body was JSON the classifier could read.
    pub body_parsed: bool,
}

/// Classify a response by status and body; never panics, whatever the bytes.
///
/// ```
/// use amplitude_core::response::{classify, Class};
/// let c = classify(400, br#"{"code":400,"events_with_invalid_id_lengths":{"device_id":[0]},"error":"Invalid id length for user_id or device_id"}"#);
/// assert_eq!(c.class, Class::BadEvents);
/// assert!(c.body.invalid_id_lengths.contains(0));
/// let c = classify(502, b"<html>Bad Gateway</html>");
/// assert_eq!(c.class, Class::Retry);
/// ```
pub fn classify(status: u16, body: &[u8]) -> Classified {
    // No unescape buffer: strings arrive as written, and ids are hashed through their
    // escapes (serde-json-core cannot unescape surrogate pairs).
    let parsed = serde_json_core::from_slice::<Body>(body)
        .ok()
        .map(|(b, _)| b);
    let body_parsed = parsed.is_some();
    let body = parsed.unwrap_or_default();
    use crate::outcome::RejectReason;
    let class = match status {
        200..=299 => Class::Delivered,
        400 if body.missing_field => Class::RejectAll(RejectReason::MissingRequestField),
        400 if body.invalid_api_key => Class::RejectAll(RejectReason::InvalidApiKey),
        400 => Class::BadEvents,
        403 => Class::Forbidden,
        413 => Class::TooLarge,
        429 => Class::Throttled,
        _ => Class::Retry,
    };
    Classified {
        class,
        body,
        body_parsed,
    }
}

// ---- deserialization ----------------------------------------------------------------

enum Key {
    Code,
    Error,
    MissingField,
    InvalidFields,
    MissingFields,
    InvalidIdLengths,
    SilencedEvents,
    SilencedDevices,
    ThrottledEvents,
    ThrottledDevices,
    ThrottledUsers,
    QuotaDevices,
    QuotaUsers,
    ServerUploadTime,
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
                Ok(match s {
                    "code" => Key::Code,
                    "error" => Key::Error,
                    "missing_field" => Key::MissingField,
                    "events_with_invalid_fields" => Key::InvalidFields,
                    "events_with_missing_fields" => Key::MissingFields,
                    "events_with_invalid_id_lengths" => Key::InvalidIdLengths,
                    "silenced_events" => Key::SilencedEvents,
                    "silenced_devices" => Key::SilencedDevices,
                    "throttled_events" => Key::ThrottledEvents,
                    "throttled_devices" => Key::ThrottledDevices,
                    "throttled_users" => Key::ThrottledUsers,
                    "exceeded_daily_quota_devices" => Key::QuotaDevices,
                    "exceeded_daily_quota_users" => Key::QuotaUsers,
                    "server_upload_time" => Key::ServerUploadTime,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// `[i, j, …]` into an index set.
struct Indices<'s>(&'s mut IndexSet);

impl<'de> DeserializeSeed<'de> for Indices<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Indices<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of indices")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(i) = seq.next_element::<u64>()? {
            self.0.insert(i);
        }
        Ok(())
    }
}

/// `{field: [indices], …}` into one index set.
struct FieldIndices<'s>(&'s mut IndexSet);

impl<'de> DeserializeSeed<'de> for FieldIndices<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldIndices<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of index lists")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(Indices(&mut *self.0))?;
        }
        Ok(())
    }
}

/// An id string, hashed into a key set.
struct HashedId<'s>(&'s mut KeySet, &'static [u8; 1]);

impl<'de> DeserializeSeed<'de> for HashedId<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for HashedId<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an id")
    }
    /// serde-json-core (read without an unescape buffer) hands strings over as written.
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<(), E> {
        self.0.insert(key_hash_escaped(self.1, s));
        Ok(())
    }
    /// Deserializers that unescape (serde_json, for one) hand over the text itself.
    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.0.insert(key_hash(self.1, s));
        Ok(())
    }
}

/// `{id: count, …}` (or `[id, …]`) into a key set.
struct Ids<'s>(&'s mut KeySet, &'static [u8; 1]);

impl<'de> DeserializeSeed<'de> for Ids<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Ids<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object keyed by id")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(HashedId(&mut *self.0, self.1))?.is_some() {
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

/// `[id, …]` into a key set.
struct IdList<'s>(&'s mut KeySet, &'static [u8; 1]);

impl<'de> DeserializeSeed<'de> for IdList<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for IdList<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of ids")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(HashedId(&mut *self.0, self.1))?
            .is_some()
        {}
        Ok(())
    }
}

/// The `error` string: only its prefix matters.
struct ErrorText;

struct IsInvalidKey(bool);

impl<'de> DeserializeSeed<'de> for ErrorText {
    type Value = IsInvalidKey;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<IsInvalidKey, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for ErrorText {
    type Value = IsInvalidKey;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an error message")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<IsInvalidKey, E> {
        Ok(IsInvalidKey(s.starts_with("Invalid API key")))
    }
}

impl<'de> de::Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Body;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an HTTP V2 response object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
                let mut b = Body::default();
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Code => b.code = map.next_value::<Option<u64>>()?,
                        Key::Error => b.invalid_api_key = map.next_value_seed(ErrorText)?.0,
                        Key::MissingField => {
                            map.next_value::<IgnoredAny>()?;
                            b.missing_field = true;
                        }
                        Key::InvalidFields => {
                            map.next_value_seed(FieldIndices(&mut b.invalid_fields))?
                        }
                        Key::MissingFields => {
                            map.next_value_seed(FieldIndices(&mut b.missing_fields))?
                        }
                        Key::InvalidIdLengths => {
                            map.next_value_seed(FieldIndices(&mut b.invalid_id_lengths))?
                        }
                        Key::SilencedEvents => {
                            map.next_value_seed(Indices(&mut b.silenced_events))?
                        }
                        Key::SilencedDevices => {
                            map.next_value_seed(IdList(&mut b.silenced_devices, b"d"))?
                        }
                        Key::ThrottledEvents => {
                            map.next_value_seed(Indices(&mut b.throttled_events))?
                        }
                        Key::ThrottledDevices => {
                            map.next_value_seed(Ids(&mut b.throttled_devices, b"d"))?
                        }
                        Key::ThrottledUsers => {
                            map.next_value_seed(Ids(&mut b.throttled_users, b"u"))?
                        }
                        Key::QuotaDevices => {
                            map.next_value_seed(Ids(&mut b.quota_devices, b"d"))?
                        }
                        Key::QuotaUsers => map.next_value_seed(Ids(&mut b.quota_users, b"u"))?,
                        Key::ServerUploadTime => {
                            b.server_upload_time = map.next_value::<Option<u64>>()?
                        }
                        Key::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(b)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod hash_tests {
    use super::*;

    #[test]
    fn escaped_ids_hash_like_the_ids_they_spell() {
        for (escaped, plain) in [
            ("device-1", "device-1"),
            (r"d\u00e9vice\/1", "dévice/1"),
            (r"\ud83d\ude00-user", "😀-user"),
            (r#"a\"b\\c\n"#, "a\"b\\c\n"),
            (r"\u2713", "✓"),
        ] {
            assert_eq!(
                key_hash_escaped(b"u", escaped),
                key_hash(b"u", plain),
                "{escaped}"
            );
        }
        // Malformed escapes do not panic.
        for bad in [r"\", r"\u12", r"\ud800", r"\ud800\u0041", r"\x"] {
            let _ = key_hash_escaped(b"u", bad);
        }
    }

    #[test]
    fn a_throttled_emoji_user_is_recognised() {
        let body = br#"{"code":429,"throttled_users":{"\ud83d\ude00-user":31},"exceeded_daily_quota_devices":{"d\u00e9vice-1":500900}}"#;
        let c = classify(429, body);
        assert!(c.body_parsed);
        assert!(c.body.throttled_users.contains(key_hash(b"u", "😀-user")));
        assert!(c.body.quota_devices.contains(key_hash(b"d", "dévice-1")));
    }
}
