//! Parsing and validation of an ingestion request body (spec §2–§4), without I/O or state.
//!
//! The body is parsed once into borrowed views: the envelope keeps each event as a
//! `&RawValue` slice of the body, and each event is scanned key by key, type-checking
//! the fields the protocol defines and keeping only what ingestion needs (ids,
//! `insert_id`, `event_id`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::reply::Reply;

/// Ids Amplitude refuses as `user_id` / `device_id` (compared case-insensitively): the
/// same list the SDK core validates against.
use amplitude_core::validate::REJECTED_IDS;

/// Default minimum length of `user_id` / `device_id`.
pub(crate) const DEFAULT_MIN_ID_LENGTH: usize = 5;

/// Key of `events_with_missing_fields` for events that have neither id.
pub(crate) const MISSING_ID_FIELD: &str = "user_id or device_id";

/// A request that passed validation.
#[derive(Debug)]
pub(crate) struct Accepted<'a> {
    pub events: Vec<EventView<'a>>,
}

/// A request refused during parsing or validation, with the number of events it
/// carried when known.
#[derive(Debug)]
pub(crate) struct Refused {
    pub reply: Reply,
    pub events: usize,
    /// Events named in index lists (400 with per-event problems).
    pub listed: usize,
}

/// What ingestion needs from one valid event.
#[derive(Debug)]
pub(crate) struct EventView<'a> {
    /// The event's JSON text, borrowed from the body.
    pub raw: &'a str,
    pub device_id: Option<Cow<'a, str>>,
    pub user_id: Option<Cow<'a, str>>,
    pub insert_id: Option<Cow<'a, str>>,
    pub event_id: Option<i64>,
}

/// Settings of one validation pass.
pub(crate) struct Rules<'c> {
    pub max_events: usize,
    pub api_keys: &'c [String],
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    api_key: Option<&'a RawValue>,
    #[serde(borrow, default)]
    events: Option<&'a RawValue>,
    #[serde(borrow, default)]
    options: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Options<'a> {
    #[serde(borrow, default)]
    min_id_length: Option<&'a RawValue>,
}

/// Parses and validates `body` (already decompressed and within the byte limit).
pub(crate) fn validate<'a>(body: &'a [u8], rules: &Rules<'_>) -> Result<Accepted<'a>, Refused> {
    let refuse = |reply: Reply| Refused {
        reply,
        events: 0,
        listed: 0,
    };
    let text = std::str::from_utf8(body)
        .map_err(|_| refuse(Reply::bad_request("Invalid JSON request body: not UTF-8")))?;
    if first_byte(text) != Some(b'{') {
        return Err(refuse(Reply::bad_request(
            "Invalid JSON request body: expected an object",
        )));
    }
    let envelope: Envelope<'a> = serde_json::from_str(text).map_err(|e| {
        refuse(Reply::bad_request(&format!(
            "Invalid JSON request body: {e}"
        )))
    })?;

    let Some(api_key) = envelope.api_key else {
        return Err(refuse(Reply::missing_field("api_key")));
    };
    let Some(events) = envelope.events else {
        return Err(refuse(Reply::missing_field("events")));
    };
    let key = match json_string(api_key) {
        Some(key) => key,
        None => return Err(refuse(Reply::invalid_api_key(api_key.get()))),
    };
    let key_ok =
        !key.is_empty() && (rules.api_keys.is_empty() || rules.api_keys.iter().any(|k| *k == *key));
    if !key_ok {
        return Err(refuse(Reply::invalid_api_key(&key)));
    }
    if first_byte(events.get()) != Some(b'[') {
        return Err(refuse(Reply::missing_field_with(
            "events",
            "Request field must be an array",
        )));
    }
    let min_id_length = match envelope.options {
        None => DEFAULT_MIN_ID_LENGTH,
        Some(options) => parse_min_id_length(options).map_err(refuse)?,
    };
    let raw_events: Vec<&'a RawValue> = serde_json::from_str(events.get()).map_err(|e| {
        refuse(Reply::bad_request(&format!(
            "Invalid JSON request body: {e}"
        )))
    })?;
    let count = raw_events.len();
    if count > rules.max_events {
        return Err(Refused {
            reply: Reply::too_large(),
            events: count,
            listed: 0,
        });
    }

    let mut problems = Problems::default();
    let mut views = Vec::with_capacity(count);
    for (index, raw) in raw_events.into_iter().enumerate() {
        if let Some(view) = check_event(index, raw, min_id_length, &mut problems) {
            views.push(view);
        }
    }
    if problems.is_empty() {
        Ok(Accepted { events: views })
    } else {
        let listed = problems.listed();
        Err(Refused {
            reply: problems.into_reply(),
            events: count,
            listed,
        })
    }
}

fn parse_min_id_length(options: &RawValue) -> Result<usize, Reply> {
    let invalid =
        || Reply::bad_request("Invalid options: min_id_length must be a non-negative integer");
    if first_byte(options.get()) == Some(b'n') {
        return Ok(DEFAULT_MIN_ID_LENGTH);
    }
    if first_byte(options.get()) != Some(b'{') {
        return Err(Reply::bad_request("Invalid options: expected an object"));
    }
    let options: Options<'_> = serde_json::from_str(options.get()).map_err(|_| invalid())?;
    match options.min_id_length {
        None => Ok(DEFAULT_MIN_ID_LENGTH),
        Some(raw) if raw.get() == "null" => Ok(DEFAULT_MIN_ID_LENGTH),
        Some(raw) => json_integer(raw)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(invalid),
    }
}

/// Per-event problems, by kind and field, in the spec's response shape.
#[derive(Default)]
struct Problems {
    invalid: BTreeMap<&'static str, Vec<usize>>,
    missing: BTreeMap<&'static str, Vec<usize>>,
    id_lengths: BTreeMap<&'static str, Vec<usize>>,
    bad_events: usize,
}

impl Problems {
    fn is_empty(&self) -> bool {
        self.bad_events == 0
    }

    fn listed(&self) -> usize {
        self.bad_events
    }

    fn into_reply(self) -> Reply {
        Reply::invalid_events(self.invalid, self.missing, self.id_lengths)
    }
}

fn add(map: &mut BTreeMap<&'static str, Vec<usize>>, field: &'static str, index: usize) {
    let list = map.entry(field).or_default();
    if list.last() != Some(&index) {
        list.push(index);
    }
}

/// JSON type a known event field must have (`null` is always accepted as "absent").
#[derive(Clone, Copy)]
enum Kind {
    String,
    Integer,
    Number,
    Object,
    Bool,
}

fn field_kind(name: &str) -> Option<(&'static str, Kind)> {
    use Kind::*;
    let known: (&'static str, Kind) = match name {
        "app_version" => ("app_version", String),
        "version_name" => ("version_name", String),
        "platform" => ("platform", String),
        "os_name" => ("os_name", String),
        "os_version" => ("os_version", String),
        "device_brand" => ("device_brand", String),
        "device_manufacturer" => ("device_manufacturer", String),
        "device_model" => ("device_model", String),
        "carrier" => ("carrier", String),
        "country" => ("country", String),
        "region" => ("region", String),
        "city" => ("city", String),
        "dma" => ("dma", String),
        "language" => ("language", String),
        "library" => ("library", String),
        "user_agent" => ("user_agent", String),
        "partner_id" => ("partner_id", String),
        "idfa" => ("idfa", String),
        "idfv" => ("idfv", String),
        "adid" => ("adid", String),
        "android_id" => ("android_id", String),
        "android_app_set_id" => ("android_app_set_id", String),
        "ip" => ("ip", String),
        "productId" => ("productId", String),
        "revenueType" => ("revenueType", String),
        "currency" => ("currency", String),
        "quantity" => ("quantity", Integer),
        "session_id" => ("session_id", Integer),
        "location_lat" => ("location_lat", Number),
        "location_lng" => ("location_lng", Number),
        "price" => ("price", Number),
        "revenue" => ("revenue", Number),
        "event_properties" => ("event_properties", Object),
        "user_properties" => ("user_properties", Object),
        "groups" => ("groups", Object),
        "group_properties" => ("group_properties", Object),
        "plan" => ("plan", Object),
        "ingestion_metadata" => ("ingestion_metadata", Object),
        "$skip_user_properties_sync" => ("$skip_user_properties_sync", Bool),
        _ => return None,
    };
    Some(known)
}

fn kind_accepts(kind: Kind, raw: &RawValue) -> bool {
    let text = raw.get();
    match first_byte(text) {
        Some(b'n') => true,
        Some(b'"') => matches!(kind, Kind::String),
        Some(b'{') => matches!(kind, Kind::Object),
        Some(b't' | b'f') => matches!(kind, Kind::Bool),
        Some(b'[') => false,
        Some(_) => match kind {
            Kind::Number => true,
            Kind::Integer => json_integer(raw).is_some(),
            _ => false,
        },
        None => false,
    }
}

/// The fields of one event that validation looks at, scanned in one pass.
#[derive(Default)]
struct EventFields<'a> {
    event_type: Option<&'a RawValue>,
    user_id: Option<&'a RawValue>,
    device_id: Option<&'a RawValue>,
    insert_id: Option<&'a RawValue>,
    time: Option<&'a RawValue>,
    event_id: Option<&'a RawValue>,
    wrong_types: Vec<&'static str>,
}

impl<'de> Deserialize<'de> for EventFields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = EventFields<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = EventFields::default();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    let slot = match key.0.as_ref() {
                        "event_type" => &mut fields.event_type,
                        "user_id" => &mut fields.user_id,
                        "device_id" => &mut fields.device_id,
                        "insert_id" => &mut fields.insert_id,
                        "time" => &mut fields.time,
                        "event_id" => &mut fields.event_id,
                        other => {
                            if let Some((name, kind)) = field_kind(other) {
                                if !kind_accepts(kind, value) && !fields.wrong_types.contains(&name)
                                {
                                    fields.wrong_types.push(name);
                                }
                            }
                            continue;
                        }
                    };
                    *slot = if value.get() == "null" {
                        None
                    } else {
                        Some(value)
                    };
                }
                Ok(fields)
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// An object key, borrowed from the body unless it contains escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Outcome of checking `user_id` or `device_id`.
enum IdCheck<'a> {
    Absent,
    Valid(Cow<'a, str>),
    WrongType,
    Rejected,
    TooShort,
}

fn check_id(raw: Option<&RawValue>, min_len: usize) -> IdCheck<'_> {
    let Some(raw) = raw else {
        return IdCheck::Absent;
    };
    let text = raw.get();
    let id: Cow<'_, str> = match first_byte(text) {
        Some(b'"') => match json_string(raw) {
            Some(s) => s,
            None => return IdCheck::WrongType,
        },
        // Numbers sent as ids are checked as their text.
        Some(b'-' | b'0'..=b'9') => Cow::Borrowed(text),
        _ => return IdCheck::WrongType,
    };
    if REJECTED_IDS.iter().any(|r| r.eq_ignore_ascii_case(&id)) {
        return IdCheck::Rejected;
    }
    if id.chars().count() < min_len {
        return IdCheck::TooShort;
    }
    IdCheck::Valid(id)
}

/// Checks one event; records its problems and returns its view when it has none.
fn check_event<'a>(
    index: usize,
    raw: &'a RawValue,
    min_id_length: usize,
    problems: &mut Problems,
) -> Option<EventView<'a>> {
    let before = problems_len(problems);
    let fields = if first_byte(raw.get()) == Some(b'{') {
        serde_json::from_str::<EventFields<'a>>(raw.get()).ok()
    } else {
        None
    };
    let Some(fields) = fields else {
        add(&mut problems.invalid, "event", index);
        problems.bad_events += 1;
        return None;
    };

    match fields.event_type {
        None => add(&mut problems.missing, "event_type", index),
        Some(t) => match json_string(t) {
            Some(s) if !s.is_empty() => {}
            Some(_) => add(&mut problems.missing, "event_type", index),
            None => add(&mut problems.invalid, "event_type", index),
        },
    }

    let mut ids: [Option<Cow<'a, str>>; 2] = [None, None];
    let mut present = 0;
    for (slot, (name, raw_id)) in ids
        .iter_mut()
        .zip([("user_id", fields.user_id), ("device_id", fields.device_id)])
    {
        match check_id(raw_id, min_id_length) {
            IdCheck::Absent => {}
            IdCheck::Valid(id) => {
                present += 1;
                *slot = Some(id);
            }
            IdCheck::WrongType | IdCheck::Rejected => {
                present += 1;
                add(&mut problems.invalid, name, index);
            }
            IdCheck::TooShort => {
                present += 1;
                add(&mut problems.id_lengths, name, index);
            }
        }
    }
    if present == 0 {
        add(&mut problems.missing, MISSING_ID_FIELD, index);
    }

    if let Some(time) = fields.time {
        if json_integer(time).is_none() {
            add(&mut problems.invalid, "time", index);
        }
    }
    let event_id = match fields.event_id {
        None => None,
        Some(raw_id) => match json_integer(raw_id) {
            Some(n) => Some(n),
            None => {
                add(&mut problems.invalid, "event_id", index);
                None
            }
        },
    };
    let insert_id = match fields.insert_id {
        None => None,
        Some(raw_insert) => match json_string(raw_insert) {
            Some(s) if s.is_empty() => None,
            Some(s) => Some(s),
            None => {
                add(&mut problems.invalid, "insert_id", index);
                None
            }
        },
    };
    for name in fields.wrong_types {
        add(&mut problems.invalid, name, index);
    }

    if problems_len(problems) != before {
        problems.bad_events += 1;
        return None;
    }
    let [user_id, device_id] = ids;
    Some(EventView {
        raw: raw.get(),
        device_id,
        user_id,
        insert_id,
        event_id,
    })
}

fn problems_len(problems: &Problems) -> usize {
    [&problems.invalid, &problems.missing, &problems.id_lengths]
        .iter()
        .map(|m| m.values().map(Vec::len).sum::<usize>())
        .sum()
}

fn first_byte(text: &str) -> Option<u8> {
    text.bytes().find(|b| !b.is_ascii_whitespace())
}

/// The value of a JSON string, borrowed when it has no escapes; `None` when `raw` is
/// not a string.
fn json_string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// The value of a JSON number written as an integer (no fraction, no exponent) that
/// fits an `i64`.
fn json_integer(raw: &RawValue) -> Option<i64> {
    let text = raw.get();
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules<'static> {
        Rules {
            max_events: 1999,
            api_keys: &[],
        }
    }

    fn body_of(refused: Refused) -> String {
        String::from_utf8(refused.reply.body.to_vec()).unwrap()
    }

    #[test]
    fn accepts_a_valid_event_and_borrows_its_fields() {
        let body = br#"{"api_key":"k","events":[{"event_type":"a","device_id":"device-1","insert_id":"i-1","event_id":7,"time":1}]}"#;
        let ok = validate(body, &rules()).unwrap();
        assert_eq!(ok.events.len(), 1);
        let e = &ok.events[0];
        assert!(matches!(e.device_id, Some(Cow::Borrowed("device-1"))));
        assert_eq!(e.insert_id.as_deref(), Some("i-1"));
        assert_eq!(e.event_id, Some(7));
        assert!(e.raw.starts_with('{') && e.raw.ends_with('}'));
    }

    #[test]
    fn escaped_ids_are_decoded() {
        let body = br#"{"api_key":"k","events":[{"event_type":"a","user_id":"us\u0065r-1"}]}"#;
        let ok = validate(body, &rules()).unwrap();
        assert_eq!(ok.events[0].user_id.as_deref(), Some("user-1"));
    }

    #[test]
    fn numeric_ids_are_length_checked_as_text() {
        let body = br#"{"api_key":"k","events":[{"event_type":"a","user_id":1234},{"event_type":"a","user_id":12345}]}"#;
        let refused = validate(body, &rules()).unwrap_err();
        assert_eq!(
            body_of(refused),
            r#"{"code":400,"error":"Invalid id length for user_id or device_id","events_with_invalid_id_lengths":{"user_id":[0]}}"#
        );
    }

    #[test]
    fn rejected_ids_compare_case_insensitively() {
        let body = br#"{"api_key":"k","events":[{"event_type":"a","device_id":"UNDEFINED"}],"options":{"min_id_length":1}}"#;
        let refused = validate(body, &rules()).unwrap_err();
        assert!(body_of(refused).contains(r#""events_with_invalid_fields":{"device_id":[0]}"#));
    }

    #[test]
    fn integer_checks_refuse_fractions_exponents_and_strings() {
        for bad in ["1.0", "1e3", "\"1\"", "true", "99999999999999999999"] {
            let body = format!(
                r#"{{"api_key":"k","events":[{{"event_type":"a","device_id":"device-1","time":{bad}}}]}}"#
            );
            let refused = validate(body.as_bytes(), &rules()).unwrap_err();
            assert!(body_of(refused).contains(r#"{"time":[0]}"#), "{bad}");
        }
    }

    #[test]
    fn non_object_events_are_invalid() {
        let body = br#"{"api_key":"k","events":[1,{"event_type":"a","device_id":"device-1"}]}"#;
        let refused = validate(body, &rules()).unwrap_err();
        assert_eq!(refused.listed, 1);
        assert!(body_of(refused).contains(r#""events_with_invalid_fields":{"event":[0]}"#));
    }

    #[test]
    fn top_level_must_be_an_object() {
        for body in [&b"[1]"[..], b"", b"\xff", b"{\"api_key\":"] {
            let refused = validate(body, &rules()).unwrap_err();
            assert_eq!(refused.reply.status, 400);
        }
    }
}
