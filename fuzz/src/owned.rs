//! An event that owns its data, generated with `arbitrary` (or read from a JSON event),
//! lent out as a core [`Event`], and rendered as the JSON the core should produce for it.

use arbitrary::Arbitrary;
use serde_json::{Map, Value as Json};
use typed_arena::Arena;

use amplitude_core::event::{IngestionMetadata, Plan, StrField, Target, UserOp};
use amplitude_core::{Event, RawJson, Value};

/// Property capacity of lent events.
pub const PROPS: usize = 48;

/// A property value that owns its data, with a choice of how the core receives it.
#[derive(Arbitrary, Debug, Clone, PartialEq)]
pub enum OwnedValue {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// [`Value::Int`]
    Int(i64),
    /// [`Value::UInt`]
    UInt(u64),
    /// [`Value::Float`] (any bits: NaN and infinities included)
    Float(f64),
    /// [`Value::Str`]
    Str(String),
    /// [`Value::List`] (borrowed slices)
    List(Vec<OwnedValue>),
    /// [`Value::Object`] (borrowed pairs)
    Object(Vec<(String, OwnedValue)>),
    /// [`Value::Raw`] when the text is valid JSON within limits, else [`Value::Str`].
    Raw(String),
    /// [`Value::Serde`]: written by the core's serializer.
    Typed(Box<OwnedValue>),
}

impl serde::Serialize for OwnedValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            OwnedValue::Null => s.serialize_none(),
            OwnedValue::Bool(b) => s.serialize_bool(*b),
            OwnedValue::Int(i) => s.serialize_i64(*i),
            OwnedValue::UInt(u) => s.serialize_u64(*u),
            OwnedValue::Float(f) => s.serialize_f64(*f),
            OwnedValue::Str(v) | OwnedValue::Raw(v) => s.serialize_str(v),
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
            OwnedValue::Typed(inner) => inner.serialize(s),
        }
    }
}

/// Which object a property goes to (operations by index into [`UserOp::OPS`], or plain).
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
pub enum OwnedTarget {
    /// `event_properties`
    Event,
    /// `user_properties` (`None` = plain)
    User(Option<u8>),
    /// `groups`
    Group,
    /// `group_properties` (`None` = plain)
    GroupProperty(Option<u8>),
}

impl OwnedTarget {
    /// The core's target.
    pub fn target(self) -> Target {
        let op = |o: Option<u8>| o.map_or(UserOp::Plain, |i| UserOp::OPS[usize::from(i) % 10]);
        match self {
            OwnedTarget::Event => Target::Event,
            OwnedTarget::User(o) => Target::User(op(o)),
            OwnedTarget::Group => Target::Group,
            OwnedTarget::GroupProperty(o) => Target::GroupProperty(op(o)),
        }
    }
}

/// An event with owned data covering every field of the core's [`Event`].
#[derive(Arbitrary, Debug, Clone, Default, PartialEq)]
pub struct OwnedEvent {
    pub event_type: String,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub time: Option<i64>,
    pub insert_id: Option<String>,
    pub session_id: Option<i64>,
    pub event_id: Option<i64>,
    pub quantity: Option<i64>,
    pub location: Option<(f64, f64)>,
    pub price: Option<f64>,
    pub revenue: Option<f64>,
    pub skip_user_properties_sync: Option<bool>,
    /// branch, source, version, versionId
    pub plan: Option<[Option<String>; 4]>,
    /// source_name, source_version
    pub ingestion_metadata: Option<[Option<String>; 2]>,
    /// descriptive strings (field index modulo [`StrField::COUNT`]; the last one wins)
    pub strings: Vec<(u8, String)>,
    pub props: Vec<(OwnedTarget, String, OwnedValue)>,
    pub event_properties_object: Option<OwnedValue>,
}

/// Storage for the borrowed slices of lent values.
#[derive(Default)]
pub struct Arenas<'a> {
    values: Arena<Value<'a>>,
    members: Arena<(&'a str, Value<'a>)>,
}

impl<'a> Arenas<'a> {
    /// Lend `v` as a core value.
    pub fn lend(&'a self, v: &'a OwnedValue) -> Value<'a> {
        match v {
            OwnedValue::Null => Value::Null,
            OwnedValue::Bool(b) => Value::Bool(*b),
            OwnedValue::Int(i) => Value::Int(*i),
            OwnedValue::UInt(u) => Value::UInt(*u),
            OwnedValue::Float(f) => Value::Float(*f),
            OwnedValue::Str(s) => Value::Str(s),
            OwnedValue::List(items) => {
                let lent: Vec<Value<'a>> = items.iter().map(|i| self.lend(i)).collect();
                Value::List(self.values.alloc_extend(lent))
            }
            OwnedValue::Object(members) => {
                let lent: Vec<(&'a str, Value<'a>)> = members
                    .iter()
                    .map(|(k, v)| (k.as_str(), self.lend(v)))
                    .collect();
                Value::Object(self.members.alloc_extend(lent))
            }
            OwnedValue::Raw(text) => match raw(text) {
                Some(r) => Value::Raw(r),
                None => Value::Str(text),
            },
            OwnedValue::Typed(inner) => Value::Serde(&**inner),
        }
    }
}

impl OwnedEvent {
    /// Lend this event as a core [`Event`] whose nested values live in `arenas`.
    pub fn lend<'a>(&'a self, arenas: &'a Arenas<'a>) -> Event<'a, PROPS> {
        let mut ev: Event<'a, PROPS> = Event::with_capacity(&self.event_type);
        ev.user_id = self.user_id.as_deref();
        ev.device_id = self.device_id.as_deref();
        ev.time = self.time;
        ev.insert_id = self.insert_id.as_deref();
        ev.session_id = self.session_id;
        ev.event_id = self.event_id;
        ev.quantity = self.quantity;
        if let Some((lat, lng)) = self.location {
            ev = ev.location(lat, lng);
        }
        ev.price = self.price;
        ev.revenue = self.revenue;
        ev.skip_user_properties_sync = self.skip_user_properties_sync;
        ev.plan = self.plan.as_ref().map(|[b, s, v, id]| Plan {
            branch: b.as_deref(),
            source: s.as_deref(),
            version: v.as_deref(),
            version_id: id.as_deref(),
        });
        ev.ingestion_metadata = self
            .ingestion_metadata
            .as_ref()
            .map(|[n, v]| IngestionMetadata {
                source_name: n.as_deref(),
                source_version: v.as_deref(),
            });
        for (f, s) in &self.strings {
            ev = ev.string(str_field(*f), s);
        }
        for (t, k, v) in &self.props {
            ev.push(t.target(), k, arenas.lend(v));
        }
        ev.event_properties_object = self
            .event_properties_object
            .as_ref()
            .map(|v| arenas.lend(v));
        ev
    }

    /// The descriptive string fields as the event ends up with them (last one wins).
    pub fn string_fields(&self) -> Vec<(StrField, &str)> {
        let mut out: Vec<(StrField, &str)> = Vec::new();
        for (f, s) in &self.strings {
            let f = str_field(*f);
            out.retain(|(g, _)| *g != f);
            out.push((f, s));
        }
        out
    }

    /// Read a JSON event (as sent on the wire) into an owned event: the seed corpus holds
    /// real events in this form. `None` when `json` is not an object.
    pub fn from_json(json: &Json) -> Option<OwnedEvent> {
        let obj = json.as_object()?;
        let s = |k: &str| obj.get(k).and_then(Json::as_str).map(str::to_owned);
        let i = |k: &str| obj.get(k).and_then(Json::as_i64);
        let f = |k: &str| obj.get(k).and_then(Json::as_f64);
        let mut ev = OwnedEvent {
            event_type: s("event_type").unwrap_or_default(),
            user_id: s("user_id"),
            device_id: s("device_id"),
            time: i("time"),
            insert_id: s("insert_id"),
            session_id: i("session_id"),
            event_id: i("event_id"),
            quantity: i("quantity"),
            location: f("location_lat").zip(f("location_lng")),
            price: f("price"),
            revenue: f("revenue"),
            skip_user_properties_sync: obj
                .get("$skip_user_properties_sync")
                .and_then(Json::as_bool),
            ..OwnedEvent::default()
        };
        if let Some(p) = obj.get("plan").and_then(Json::as_object) {
            let g = |k: &str| p.get(k).and_then(Json::as_str).map(str::to_owned);
            ev.plan = Some([g("branch"), g("source"), g("version"), g("versionId")]);
        }
        if let Some(m) = obj.get("ingestion_metadata").and_then(Json::as_object) {
            let g = |k: &str| m.get(k).and_then(Json::as_str).map(str::to_owned);
            ev.ingestion_metadata = Some([g("source_name"), g("source_version")]);
        }
        for (n, f) in StrField::ALL.iter().enumerate() {
            if let Some(v) = s(f.key()) {
                ev.strings.push((n as u8, v));
            }
        }
        let mut props = |target: fn(Option<u8>) -> OwnedTarget, key: &str| {
            let Some(o) = obj.get(key).and_then(Json::as_object) else {
                return;
            };
            for (k, v) in o {
                match UserOp::OPS.iter().position(|op| op.key() == k) {
                    Some(op) => {
                        let members = v.as_object().cloned().unwrap_or_default();
                        for (k, v) in members {
                            ev.props.push((target(Some(op as u8)), k, owned_of(&v)));
                        }
                        if UserOp::OPS[op] == UserOp::ClearAll {
                            ev.props
                                .push((target(Some(op as u8)), "-".into(), OwnedValue::Null));
                        }
                    }
                    None => ev.props.push((target(None), k.clone(), owned_of(v))),
                }
            }
        };
        props(|_| OwnedTarget::Event, "event_properties");
        props(OwnedTarget::User, "user_properties");
        props(|_| OwnedTarget::Group, "groups");
        props(OwnedTarget::GroupProperty, "group_properties");
        Some(ev)
    }
}

/// `text` as raw JSON when the core accepts it and `serde_json` can read it back (numbers
/// beyond f64, like `1e400`, are valid JSON that serde_json refuses: the `raw_json` target
/// covers that difference; here such text is lent as a plain string).
pub fn raw(text: &str) -> Option<RawJson<'_>> {
    let r = RawJson::new(text).ok()?;
    serde_json::from_str::<Json>(text).ok()?;
    Some(r)
}

/// The descriptive string field with this index (modulo the count).
pub fn str_field(i: u8) -> StrField {
    StrField::ALL[usize::from(i) % StrField::COUNT]
}

/// A `serde_json` value as an owned value (numbers as integers when they are).
pub fn owned_of(v: &Json) -> OwnedValue {
    match v {
        Json::Null => OwnedValue::Null,
        Json::Bool(b) => OwnedValue::Bool(*b),
        Json::Number(n) => n
            .as_i64()
            .map(OwnedValue::Int)
            .or_else(|| n.as_u64().map(OwnedValue::UInt))
            .unwrap_or_else(|| OwnedValue::Float(n.as_f64().unwrap_or(0.0))),
        Json::String(s) => OwnedValue::Str(s.clone()),
        Json::Array(items) => OwnedValue::List(items.iter().map(owned_of).collect()),
        Json::Object(m) => {
            OwnedValue::Object(m.iter().map(|(k, v)| (k.clone(), owned_of(v))).collect())
        }
    }
}

/// The JSON the core should write for `v` (as lent by [`Arenas::lend`]); `None` when it
/// has no JSON form (a non-finite float).
pub fn expected_json(v: &OwnedValue) -> Option<Json> {
    Some(match v {
        OwnedValue::Null => Json::Null,
        OwnedValue::Bool(b) => Json::Bool(*b),
        OwnedValue::Int(i) => Json::from(*i),
        OwnedValue::UInt(u) => Json::from(*u),
        OwnedValue::Float(f) => Json::Number(serde_json::Number::from_f64(*f)?),
        OwnedValue::Str(s) => Json::String(s.clone()),
        OwnedValue::List(items) => {
            Json::Array(items.iter().map(expected_json).collect::<Option<_>>()?)
        }
        OwnedValue::Object(members) => {
            let mut m = Map::new();
            for (k, v) in members {
                m.insert(k.clone(), expected_json(v)?);
            }
            Json::Object(m)
        }
        OwnedValue::Raw(text) => match raw(text) {
            Some(_) => serde_json::from_str(text).ok()?,
            None => Json::String(text.clone()),
        },
        OwnedValue::Typed(inner) => typed_json(inner)?,
    })
}

/// The JSON of a value written through `serde::Serialize` (raw texts are plain strings
/// there).
fn typed_json(v: &OwnedValue) -> Option<Json> {
    match v {
        OwnedValue::Raw(s) => Some(Json::String(s.clone())),
        OwnedValue::Typed(inner) => typed_json(inner),
        OwnedValue::List(items) => Some(Json::Array(
            items.iter().map(typed_json).collect::<Option<_>>()?,
        )),
        OwnedValue::Object(members) => {
            let mut m = Map::new();
            for (k, v) in members {
                m.insert(k.clone(), typed_json(v)?);
            }
            Some(Json::Object(m))
        }
        other => expected_json(other),
    }
}
