//! Proptest strategies (feature `proptest`): arbitrary events, hostile strings included,
//! and arbitrary server behaviour schedules.
//!
//! Events are generated as [`OwnedEvent`]s (owned data) and lent out as core
//! [`Event`]s with [`OwnedEvent::with_event`].

use amplitude_core::Event;
use amplitude_core::event::{StrField, Target};
use amplitude_core::transport::TransportError;
use amplitude_core::value::Value;
use proptest::prelude::*;

/// Property capacity of generated events.
pub const PROPS: usize = 40;

/// A JSON-like property value that owns its data.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedValue {
    /// `null`
    Null,
    /// bool
    Bool(bool),
    /// integer
    Int(i64),
    /// finite float
    Float(f64),
    /// string
    Str(String),
    /// list
    List(Vec<OwnedValue>),
    /// object
    Object(Vec<(String, OwnedValue)>),
}

impl serde::Serialize for OwnedValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            OwnedValue::Null => s.serialize_none(),
            OwnedValue::Bool(b) => s.serialize_bool(*b),
            OwnedValue::Int(i) => s.serialize_i64(*i),
            OwnedValue::Float(f) => s.serialize_f64(*f),
            OwnedValue::Str(v) => s.serialize_str(v),
            OwnedValue::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            OwnedValue::Object(members) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl OwnedValue {
    /// The same value as `serde_json` data (for round-trip checks).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// An event with owned data.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedEvent {
    /// `event_type`
    pub event_type: String,
    /// `user_id`
    pub user_id: Option<String>,
    /// `device_id`
    pub device_id: Option<String>,
    /// `time`
    pub time: Option<i64>,
    /// `insert_id`
    pub insert_id: Option<String>,
    /// `session_id`
    pub session_id: Option<i64>,
    /// `location_lat`/`location_lng`
    pub location: Option<(f64, f64)>,
    /// `price`
    pub price: Option<f64>,
    /// descriptive strings
    pub strings: Vec<(StrField, String)>,
    /// `event_properties` entries (scalars go in as scalars, the rest as typed values)
    pub event_properties: Vec<(String, OwnedValue)>,
    /// plain `user_properties` entries
    pub user_properties: Vec<(String, OwnedValue)>,
    /// `groups` entries (type → names)
    pub groups: Vec<(String, Vec<String>)>,
}

fn lend(v: &OwnedValue) -> Value<'_> {
    match v {
        OwnedValue::Null => Value::Null,
        OwnedValue::Bool(b) => Value::Bool(*b),
        OwnedValue::Int(i) => Value::Int(*i),
        OwnedValue::Float(f) => Value::Float(*f),
        OwnedValue::Str(s) => Value::Str(s),
        other => Value::Serde(other),
    }
}

impl OwnedEvent {
    /// Lend the event to `f` as a core [`Event`].
    pub fn with_event<R>(&self, f: impl FnOnce(Event<'_, PROPS>) -> R) -> R {
        let group_values: Vec<Vec<Value<'_>>> = self
            .groups
            .iter()
            .map(|(_, names)| names.iter().map(|n| Value::Str(n)).collect())
            .collect();
        let mut ev: Event<'_, PROPS> = Event::with_capacity(&self.event_type);
        ev.user_id = self.user_id.as_deref();
        ev.device_id = self.device_id.as_deref();
        ev.time = self.time;
        ev.insert_id = self.insert_id.as_deref();
        ev.session_id = self.session_id;
        if let Some((lat, lng)) = self.location {
            ev = ev.location(lat, lng);
        }
        ev.price = self.price;
        for (field, v) in &self.strings {
            ev = ev.string(*field, v);
        }
        for (k, v) in &self.event_properties {
            ev.push(Target::Event, k, lend(v));
        }
        for (k, v) in &self.user_properties {
            ev.push(
                Target::User(amplitude_core::event::UserOp::Plain),
                k,
                lend(v),
            );
        }
        for ((t, _), values) in self.groups.iter().zip(&group_values) {
            let v = if values.len() == 1 {
                values[0]
            } else {
                Value::List(values)
            };
            ev.push(Target::Group, t, v);
        }
        f(ev)
    }
}

/// Strings that stress escaping: quotes, backslashes, every control character,
/// non-ASCII of every UTF-8 width, and the ids the server rejects.
pub fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "[\\x00-\\x1f\"\\\\/]{0,12}",
        2 => "[a-zé✓😀\\u{7f}\\u{80}\\u{7ff}\\u{800}\\u{ffff}\\u{10000}\\u{10ffff}]{0,16}",
        1 => Just(String::new()),
    ]
}

/// An id: usually valid, sometimes short, reserved or hostile.
pub fn id_string() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z0-9@._-]{5,24}",
        1 => "[a-z]{0,4}",
        1 => prop::sample::select(amplitude_core::validate::REJECTED_IDS.to_vec()).prop_map(str::to_owned),
        1 => hostile_string(),
    ]
}

/// A property value of bounded depth.
pub fn owned_value() -> impl Strategy<Value = OwnedValue> {
    let leaf = prop_oneof![
        Just(OwnedValue::Null),
        any::<bool>().prop_map(OwnedValue::Bool),
        any::<i64>().prop_map(OwnedValue::Int),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(OwnedValue::Float),
        hostile_string().prop_map(OwnedValue::Str),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(OwnedValue::List),
            prop::collection::vec(("[a-z]{1,6}", inner), 0..4).prop_map(|mut m| {
                // JSON objects with duplicate keys do not round-trip; keep the first.
                let mut seen = std::collections::HashSet::new();
                m.retain(|(k, _)| seen.insert(k.clone()));
                OwnedValue::Object(m)
            }),
        ]
    })
}

const STR_FIELDS: [StrField; 6] = [
    StrField::Platform,
    StrField::OsName,
    StrField::AppVersion,
    StrField::Country,
    StrField::Language,
    StrField::Ip,
];

/// An arbitrary event: every kind of field, hostile strings, sometimes invalid.
pub fn owned_event() -> impl Strategy<Value = OwnedEvent> {
    let ids = (prop::option::of(id_string()), prop::option::of(id_string()));
    let scalars = (
        prop::option::of(0i64..4_102_444_800_000),
        prop::option::of("[a-f0-9-]{8,36}"),
        prop::option::of(any::<i64>()),
    );
    let floats = (
        prop::option::of((-90.0f64..90.0, -180.0f64..180.0)),
        prop::option::of(-1e6f64..1e6),
    );
    let strings = prop::collection::vec(
        (prop::sample::select(STR_FIELDS.to_vec()), hostile_string()),
        0..3,
    );
    let props = prop::collection::vec((hostile_string(), owned_value()), 0..6);
    let user_props = prop::collection::vec(("[a-z]{1,8}", owned_value()), 0..3);
    let groups = prop::collection::vec(
        ("[a-z]{1,8}", prop::collection::vec("[a-zA-Z ]{1,10}", 1..3)),
        0..2,
    );
    (
        hostile_string(),
        ids,
        scalars,
        floats,
        strings,
        props,
        user_props,
        groups,
    )
        .prop_map(
            |(
                event_type,
                (user_id, device_id),
                (time, insert_id, session_id),
                (location, price),
                strings,
                mut event_properties,
                mut user_properties,
                mut groups,
            )| {
                let mut seen = std::collections::HashSet::new();
                event_properties.retain(|(k, _)| seen.insert(k.clone()));
                let mut seen = std::collections::HashSet::new();
                user_properties.retain(|(k, _)| seen.insert(k.clone()));
                let mut seen = std::collections::HashSet::new();
                groups.retain(|(k, _)| seen.insert(k.clone()));
                let mut seen = std::collections::HashSet::new();
                let strings = strings
                    .into_iter()
                    .filter(|(f, _)| seen.insert(*f))
                    .collect();
                OwnedEvent {
                    event_type,
                    user_id,
                    device_id,
                    time,
                    insert_id,
                    session_id,
                    location,
                    price,
                    strings,
                    event_properties,
                    user_properties,
                    groups,
                }
            },
        )
}

/// A valid, realistic event for one of `devices` devices (ids `device-N`).
pub fn valid_event(devices: u32) -> impl Strategy<Value = OwnedEvent> {
    (
        0..devices.max(1),
        "[A-Za-z ]{1,20}",
        prop::collection::vec(("[a-z]{1,8}", owned_value()), 0..4),
    )
        .prop_map(|(d, event_type, mut props)| {
            let mut seen = std::collections::HashSet::new();
            props.retain(|(k, _)| seen.insert(k.clone()));
            OwnedEvent {
                event_type,
                user_id: None,
                device_id: Some(format!("device-{d}")),
                time: None,
                insert_id: None,
                session_id: None,
                location: None,
                price: None,
                strings: Vec::new(),
                event_properties: props,
                user_properties: Vec::new(),
                groups: Vec::new(),
            }
        })
}

/// What the server does with one request in a schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerAction {
    /// 200.
    Accept,
    /// 400 naming these batch positions (taken modulo the batch size).
    RejectIndices(Vec<u16>),
    /// 400 with nothing usable: the client must bisect.
    RejectUnlisted,
    /// 400 `missing_field` (the whole request is refused).
    MissingField,
    /// 413 when the batch has more than this many events, else 200.
    TooLargeOver(u16),
    /// 429 throttling the devices of these batch positions (modulo the batch size).
    Throttle(Vec<u16>),
    /// 429 with a daily quota exceeded for the device at this position.
    DailyQuota(u16),
    /// A 5xx status.
    ServerError(u16),
    /// 408.
    RequestTimeout,
    /// A transport failure.
    Transport(TransportError),
    /// 200 with a body that is not JSON.
    AcceptGarbage,
}

/// One server action, weighted towards realistic failures.
pub fn server_action() -> impl Strategy<Value = ServerAction> {
    prop_oneof![
        6 => Just(ServerAction::Accept),
        1 => prop::collection::vec(any::<u16>(), 1..4).prop_map(ServerAction::RejectIndices),
        1 => Just(ServerAction::RejectUnlisted),
        1 => Just(ServerAction::MissingField),
        1 => (1u16..8).prop_map(ServerAction::TooLargeOver),
        2 => prop::collection::vec(any::<u16>(), 1..3).prop_map(ServerAction::Throttle),
        1 => any::<u16>().prop_map(ServerAction::DailyQuota),
        2 => prop::sample::select(vec![500u16, 502, 503, 504]).prop_map(ServerAction::ServerError),
        1 => Just(ServerAction::RequestTimeout),
        2 => prop::sample::select(vec![TransportError::Timeout, TransportError::Closed, TransportError::Connect, TransportError::Dns])
            .prop_map(ServerAction::Transport),
        1 => Just(ServerAction::AcceptGarbage),
    ]
}

/// A schedule of server behaviour: one action per request, then 200s.
pub fn schedule(max_len: usize) -> impl Strategy<Value = Vec<ServerAction>> {
    prop::collection::vec(server_action(), 0..max_len)
}

/// The reply `action` gives to a request with this body (it reads the body to name
/// real indices and device ids).
pub fn reply_for(action: &ServerAction, body: &[u8]) -> crate::Reply {
    use crate::Reply;
    let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    let events = parsed
        .get("events")
        .and_then(|e| e.as_array())
        .cloned()
        .unwrap_or_default();
    let n = events.len().max(1);
    let device = |i: u16| {
        events
            .get(usize::from(i) % n)
            .and_then(|e| e.get("device_id"))
            .and_then(|d| d.as_str())
            .map(str::to_owned)
    };
    match action {
        ServerAction::Accept => Reply::ok(events.len()),
        ServerAction::AcceptGarbage => Reply::status(200, "<html>ok</html>"),
        ServerAction::RejectIndices(ix) => {
            let list: Vec<usize> = ix.iter().map(|i| usize::from(*i) % n).collect();
            Reply::status(400, serde_json::json!({"code":400,"error":"Request missing required field","events_with_invalid_fields":{"time":list}}).to_string())
        }
        ServerAction::RejectUnlisted => {
            Reply::status(400, r#"{"code":400,"error":"Invalid event"}"#)
        }
        ServerAction::MissingField => Reply::status(
            400,
            r#"{"code":400,"error":"Request missing required field","missing_field":"api_key"}"#,
        ),
        ServerAction::TooLargeOver(k) if events.len() > usize::from(*k) => {
            Reply::status(413, r#"{"code":413,"error":"Payload too large"}"#)
        }
        ServerAction::TooLargeOver(_) => Reply::ok(events.len()),
        ServerAction::Throttle(ix) => {
            let mut devices = serde_json::Map::new();
            for i in ix {
                if let Some(d) = device(*i) {
                    devices.insert(d, serde_json::json!(31));
                }
            }
            Reply::Status {
                status: 429,
                body: serde_json::json!({"code":429,"error":"Too many requests for some devices and users","eps_threshold":30,"throttled_devices":devices}).to_string().into_bytes(),
                retry_after: None,
            }
        }
        ServerAction::DailyQuota(i) => {
            let mut devices = serde_json::Map::new();
            if let Some(d) = device(*i) {
                devices.insert(d, serde_json::json!(500_900));
            }
            Reply::status(429, serde_json::json!({"code":429,"error":"Too many requests","exceeded_daily_quota_devices":devices}).to_string())
        }
        ServerAction::ServerError(s) => {
            Reply::status(*s, format!(r#"{{"code":{s},"error":"server error"}}"#))
        }
        ServerAction::RequestTimeout => Reply::status(408, ""),
        ServerAction::Transport(e) => Reply::Fail(*e),
    }
}
