//! `encode_event`: an arbitrary event either fails with a typed error that the event
//! really deserves, or encodes to JSON that `serde_json` reads back field for field —
//! never invalid JSON, never a panic. The same event goes through `prepare` and through
//! a client (with a pass-through middleware) into a request body, with the same bytes.

use arbitrary::{Arbitrary, Unstructured};
use serde_json::{Map, Value as Json};

use amplitude_core::Logged;
use amplitude_core::client::{Client, LogError, prepare};
use amplitude_core::config::Config;
use amplitude_core::encode::{EncodeError, LIBRARY, Rng, encode_event};
use amplitude_core::event::{StrField, Target, UserOp};
use amplitude_core::json::{JsonError, JsonWriter, MAX_DEPTH, MAX_STRING_CHARS};
use amplitude_core::middleware::{Middleware, Next, Payload};
use amplitude_core::outcome::NoSink;
use amplitude_core::queue::{RamQueue, Slot};
use amplitude_core::validate::{
    Field, MAX_GROUP_TYPES, MAX_GROUP_VALUES, REJECTED_IDS, Rule, Rules, ValidationError, validate,
};
use embassy_time::Instant;

use crate::owned::{Arenas, OwnedEvent, OwnedTarget, OwnedValue, PROPS, expected_json, raw};
use crate::raw_json::measure;

const BIG: usize = 1 << 18;

/// Decode the fuzz input: a JSON event (the seed corpus) or `arbitrary` bytes, plus an
/// optional small buffer size.
pub fn decode(data: &[u8]) -> Option<(OwnedEvent, Option<u16>)> {
    if data.first() == Some(&b'{')
        && let Some(ev) = serde_json::from_slice::<Json>(data)
            .ok()
            .and_then(|j| OwnedEvent::from_json(&j))
    {
        return Some((ev, None));
    }
    let mut u = Unstructured::new(data);
    let ev = OwnedEvent::arbitrary(&mut u).ok()?;
    let small = u16::arbitrary(&mut u).ok();
    Some((ev, small))
}

/// Run every check on the fuzz input.
pub fn check(data: &[u8]) {
    if let Some((ev, small)) = decode(data) {
        check_event(&ev, small);
    }
}

/// Passes every event on untouched.
struct PassThrough;

impl Middleware<PROPS> for PassThrough {
    fn run<'p, 'a>(&mut self, payload: &mut Payload<'p, 'a, PROPS>, next: Next<'_, 'p, 'a, PROPS>) {
        next.run(payload)
    }
}

/// Check one event.
pub fn check_event(ev: &OwnedEvent, small: Option<u16>) {
    let arenas = Arenas::default();
    let event = ev.lend(&arenas);
    let rules = Rules::default();
    let validity = validate(&event, &rules);
    let mut big = vec![0u8; BIG];
    let mut w = JsonWriter::new(&mut big);
    let encoded = encode_event(&event, &mut Rng::new(7), &mut w);
    let mut pbuf = vec![0u8; BIG];
    let prepared = prepare(&event, &rules, &mut Rng::new(7), &mut pbuf);

    if let Err(e) = validity {
        justify_invalid(ev, e);
        assert_eq!(prepared.err(), Some(LogError::Invalid(e)));
        // Encoding is only defined for valid events, but must still be safe and JSON.
        if encoded.is_ok() {
            serde_json::from_slice::<Json>(w.as_bytes())
                .expect("even invalid events encode to JSON");
        }
        return;
    }
    let enc = match encoded {
        Err(e) => {
            justify_encode_error(ev, e);
            assert_eq!(prepared.err(), Some(LogError::Encode(e)));
            return;
        }
        Ok(enc) => enc,
    };
    let bytes = w.as_bytes().to_vec();
    assert_eq!(enc.len, bytes.len());
    assert_eq!(enc.has_time, ev.time.is_some());
    let json: Json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    round_trip(ev, &json);
    output_rules(&json);

    let p = prepared.expect("prepare agrees with validate + encode");
    assert_eq!(p.json, &bytes[..], "prepare wrote other bytes");

    if let Some(k) = small {
        let mut buf = vec![0u8; usize::from(k)];
        let mut w = JsonWriter::new(&mut buf);
        match encode_event(&event, &mut Rng::new(7), &mut w) {
            Ok(_) => assert_eq!(w.as_bytes(), &bytes[..], "same event, other bytes"),
            Err(EncodeError::BufferFull) => assert!(usize::from(k) < bytes.len()),
            Err(e) => panic!("{e:?} in a {k}-byte buffer, but it encodes in a large one"),
        }
    }

    through_client(ev, &json, bytes.len());
}

/// Log the event through a client and a pass-through middleware; the request carries the
/// same event.
fn through_client(ev: &OwnedEvent, json: &Json, len: usize) {
    let arenas = Arenas::default();
    let event = ev.lend(&arenas);
    let queue = RamQueue::new(
        vec![0u8; BIG].into_boxed_slice(),
        vec![Slot::EMPTY; 4].into_boxed_slice(),
    );
    let mut client: Client<'_, _> = Client::new(Config::new("fuzz-key"), queue, 11);
    let mut pass = PassThrough;
    let mut chain: [&mut dyn Middleware<PROPS>; 1] = [&mut pass];
    let t0 = Instant::from_millis(0);
    match client.log_event(t0, event, &mut chain[..], None, &mut NoSink) {
        Ok(Logged::Queued(_)) => {}
        Err(LogError::TooLarge { bytes }) => {
            assert!(bytes == len && len > client.max_event_bytes());
            return;
        }
        other => panic!("a valid, encodable event was not queued: {other:?}"),
    }
    client.flush();
    let mut buf = vec![0u8; 1 << 20];
    let out = client
        .next_request(t0, &mut buf, &mut NoSink)
        .expect("a flushed event is sent");
    let body: Json = serde_json::from_slice(out.request.body).expect("request body is JSON");
    let events = body["events"].as_array().expect("events array");
    assert_eq!(events.len(), 1);
    let mut sent = events[0].clone();
    let mut want = json.clone();
    if ev.insert_id.is_none() {
        check_uuid(sent["insert_id"].as_str().expect("generated insert_id"));
        sent["insert_id"] = Json::Null;
        want["insert_id"] = Json::Null;
    }
    assert_eq!(sent, want, "the request carries another event");
}

fn check_uuid(id: &str) {
    let b = id.as_bytes();
    assert_eq!(b.len(), 36, "uuid {id}");
    for (i, c) in b.iter().enumerate() {
        match i {
            8 | 13 | 18 | 23 => assert_eq!(*c, b'-', "uuid {id}"),
            _ => assert!(matches!(c, b'0'..=b'9' | b'a'..=b'f'), "uuid {id}"),
        }
    }
    assert_eq!(b[14], b'4', "uuid version {id}");
    assert!(
        matches!(b[19], b'8' | b'9' | b'a' | b'b'),
        "uuid variant {id}"
    );
}

// ---- what the encoding must contain ---------------------------------------------------

fn float_eq(actual: Option<&Json>, want: Option<f64>, key: &str) {
    match want {
        None => assert!(actual.is_none(), "{key} present"),
        Some(f) => {
            let got = actual
                .and_then(Json::as_f64)
                .unwrap_or_else(|| panic!("{key} missing"));
            assert_eq!(got.to_bits(), f.to_bits(), "{key}: {got} != {f}");
        }
    }
}

fn members(ev: &OwnedEvent, target: Target) -> Map<String, Json> {
    let mut m = Map::new();
    for (t, k, v) in &ev.props {
        if t.target() == target {
            m.insert(
                k.clone(),
                expected_json(v).expect("validated values are finite"),
            );
        }
    }
    m
}

/// `user_properties` / `group_properties`: plain members, or one object per operation.
fn op_object(ev: &OwnedEvent, target: fn(UserOp) -> Target) -> Option<Json> {
    let has = |t: Target| ev.props.iter().any(|(o, _, _)| o.target() == t);
    if has(target(UserOp::Plain)) {
        return Some(Json::Object(members(ev, target(UserOp::Plain))));
    }
    let mut out = Map::new();
    for op in UserOp::OPS {
        if !has(target(op)) {
            continue;
        }
        let v = if op == UserOp::ClearAll {
            Json::from("-")
        } else {
            Json::Object(members(ev, target(op)))
        };
        out.insert(op.key().to_owned(), v);
    }
    (!out.is_empty()).then_some(Json::Object(out))
}

fn round_trip(ev: &OwnedEvent, json: &Json) {
    let obj = json.as_object().expect("an event is an object");
    let mut want = Map::new();
    want.insert("event_type".into(), ev.event_type.clone().into());
    if let Some(u) = &ev.user_id {
        want.insert("user_id".into(), u.clone().into());
    }
    if let Some(d) = &ev.device_id {
        want.insert("device_id".into(), d.clone().into());
    }
    for (k, v) in [
        ("time", ev.time),
        ("session_id", ev.session_id),
        ("event_id", ev.event_id),
        ("quantity", ev.quantity),
    ] {
        if let Some(v) = v {
            want.insert(k.into(), v.into());
        }
    }
    match &ev.insert_id {
        Some(id) => {
            want.insert("insert_id".into(), id.clone().into());
        }
        None => {
            let id = obj["insert_id"].as_str().expect("generated insert_id");
            check_uuid(id);
            want.insert("insert_id".into(), id.into());
        }
    }
    let floats = [
        ("location_lat", ev.location.map(|l| l.0)),
        ("location_lng", ev.location.map(|l| l.1)),
        ("price", ev.price),
        ("revenue", ev.revenue),
    ];
    for (k, v) in floats {
        float_eq(obj.get(k), v, k);
        if let Some(a) = obj.get(k) {
            want.insert(k.into(), a.clone());
        }
    }
    let strings = ev.string_fields();
    for (f, s) in &strings {
        want.insert(f.key().into(), (*s).into());
    }
    if !strings.iter().any(|(f, _)| *f == StrField::Library) {
        want.insert("library".into(), LIBRARY.into());
    }
    let event_props = ev.props.iter().any(|(t, _, _)| *t == OwnedTarget::Event);
    if event_props || ev.event_properties_object.is_some() {
        let mut m = match ev.event_properties_object.as_ref().map(expected_json) {
            None => Map::new(),
            Some(Some(Json::Object(m))) => m,
            Some(other) => panic!("event_properties object encoded from {other:?}"),
        };
        m.extend(members(ev, Target::Event));
        want.insert("event_properties".into(), Json::Object(m));
    }
    if let Some(u) = op_object(ev, Target::User) {
        want.insert("user_properties".into(), u);
    }
    let groups = members(ev, Target::Group);
    if ev.props.iter().any(|(t, _, _)| *t == OwnedTarget::Group) {
        want.insert("groups".into(), Json::Object(groups));
    }
    if let Some(g) = op_object(ev, Target::GroupProperty) {
        want.insert("group_properties".into(), g);
    }
    let str_object = |pairs: &[(&str, &Option<String>)]| {
        let mut m = Map::new();
        for (k, v) in pairs {
            if let Some(v) = v {
                m.insert((*k).into(), v.clone().into());
            }
        }
        Json::Object(m)
    };
    if let Some([b, s, v, id]) = &ev.plan {
        let p = str_object(&[
            ("branch", b),
            ("source", s),
            ("version", v),
            ("versionId", id),
        ]);
        want.insert("plan".into(), p);
    }
    if let Some([n, v]) = &ev.ingestion_metadata {
        let m = str_object(&[("source_name", n), ("source_version", v)]);
        want.insert("ingestion_metadata".into(), m);
    }
    if let Some(s) = ev.skip_user_properties_sync {
        want.insert("$skip_user_properties_sync".into(), s.into());
    }
    assert_eq!(obj, &want, "the encoding does not round-trip");
}

// ---- the server's rules, checked on the output ----------------------------------------

fn depth(v: &Json) -> usize {
    match v {
        Json::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Json::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn strings_within_limit(v: &Json, path: &str) {
    match v {
        Json::String(s) => assert!(
            s.chars().count() <= MAX_STRING_CHARS,
            "{path}: string of {} chars accepted",
            s.chars().count()
        ),
        Json::Array(a) => a.iter().for_each(|v| strings_within_limit(v, path)),
        Json::Object(m) => m.iter().for_each(|(k, v)| {
            assert!(
                k.chars().count() <= MAX_STRING_CHARS,
                "{path}: key of {} chars accepted",
                k.chars().count()
            );
            strings_within_limit(v, path)
        }),
        _ => {}
    }
}

/// What the server would refuse must not have passed validation (spec §3).
fn output_rules(json: &Json) {
    let obj = json.as_object().unwrap();
    assert!(!obj["event_type"].as_str().unwrap().is_empty());
    assert!(obj.contains_key("user_id") || obj.contains_key("device_id"));
    for k in ["user_id", "device_id"] {
        if let Some(id) = obj.get(k).and_then(Json::as_str) {
            assert!(
                id.chars().count() >= 5,
                "{k} {id:?} shorter than 5 accepted"
            );
            assert!(
                !REJECTED_IDS.iter().any(|r| r.eq_ignore_ascii_case(id)),
                "{k} {id:?} is rejected by the server"
            );
        }
    }
    strings_within_limit(json, "event");
    for k in [
        "event_properties",
        "user_properties",
        "groups",
        "group_properties",
    ] {
        let Some(Json::Object(m)) = obj.get(k) else {
            continue;
        };
        let ops = k.ends_with("_properties")
            && k != "event_properties"
            && m.keys().next().is_some_and(|k| k.starts_with('$'));
        for (name, v) in m {
            let inner: Vec<&Json> = match (ops, v) {
                (true, Json::Object(o)) => o.values().collect(),
                _ => vec![v],
            };
            for v in inner {
                assert!(depth(v) <= MAX_DEPTH, "{k}.{name} nests {} deep", depth(v));
            }
        }
    }
    if let Some(Json::Object(g)) = obj.get("groups") {
        assert!(g.len() <= MAX_GROUP_TYPES, "{} group types", g.len());
        let values: usize = g.values().map(|v| v.as_array().map_or(1, Vec::len)).sum();
        assert!(values <= MAX_GROUP_VALUES, "{values} group values");
    }
}

// ---- errors must be deserved -----------------------------------------------------------

/// How the core receives `v` (see [`Arenas::lend`]), as far as validation can see it.
enum Seen<'v> {
    Scalar(Option<f64>),
    Str(&'v str),
    List(&'v [OwnedValue]),
    Object(&'v [(String, OwnedValue)]),
    /// Raw JSON or typed data: checked when it is made or encoded, not by `validate`.
    Opaque,
}

fn seen(v: &OwnedValue) -> Seen<'_> {
    match v {
        OwnedValue::Float(f) => Seen::Scalar(Some(*f)),
        OwnedValue::Str(s) => Seen::Str(s),
        OwnedValue::Raw(s) if raw(s).is_none() => Seen::Str(s),
        OwnedValue::List(l) => Seen::List(l),
        OwnedValue::Object(o) => Seen::Object(o),
        OwnedValue::Raw(_) | OwnedValue::Typed(_) => Seen::Opaque,
        _ => Seen::Scalar(None),
    }
}

fn long(s: &str) -> bool {
    s.chars().count() > MAX_STRING_CHARS
}

/// Whether `v`, validated starting at `depth`, breaks `rule`.
fn value_breaks(v: &OwnedValue, rule: Rule, depth: usize) -> bool {
    match seen(v) {
        Seen::Scalar(f) => rule == Rule::NotFinite && f.is_some_and(|f| !f.is_finite()),
        Seen::Str(s) => rule == Rule::TooLong && long(s),
        // Raw JSON nested in lists/objects: its own nesting counts on top.
        Seen::Opaque => {
            rule == Rule::TooDeep
                && depth > 0
                && matches!(v, OwnedValue::Raw(t) if measure(t.as_bytes()).is_ok_and(|s| s.depth + depth > MAX_DEPTH))
        }
        Seen::List(items) => {
            (rule == Rule::TooDeep && depth >= MAX_DEPTH)
                || items.iter().any(|i| value_breaks(i, rule, depth + 1))
        }
        Seen::Object(m) => {
            (rule == Rule::TooDeep && depth >= MAX_DEPTH)
                || (rule == Rule::TooMany && m.len() > 1024)
                || m.iter().any(|(k, v)| {
                    (rule == Rule::TooLong && long(k)) || value_breaks(v, rule, depth + 1)
                })
        }
    }
}

fn id_breaks(id: Option<&String>, rule: Rule) -> bool {
    let Some(id) = id else { return false };
    match rule {
        Rule::ReservedValue => REJECTED_IDS.iter().any(|r| r.eq_ignore_ascii_case(id)),
        Rule::TooShort { min } => id.chars().count() < usize::from(min),
        Rule::TooLong => long(id),
        _ => false,
    }
}

fn justify_invalid(ev: &OwnedEvent, e: ValidationError) {
    let opt_long = |s: &Option<String>| s.as_deref().is_some_and(long);
    let finite = |f: Option<f64>| f.is_none_or(f64::is_finite);
    let ok = match (e.field, e.rule) {
        (Field::EventType, Rule::Missing) => ev.event_type.is_empty(),
        (Field::EventType, Rule::TooLong) => long(&ev.event_type),
        (Field::Ids, Rule::Missing) => ev.user_id.is_none() && ev.device_id.is_none(),
        (Field::UserId, r) => id_breaks(ev.user_id.as_ref(), r),
        (Field::DeviceId, r) => id_breaks(ev.device_id.as_ref(), r),
        (Field::InsertId, Rule::Missing) => ev.insert_id.as_deref() == Some(""),
        (Field::InsertId, Rule::TooLong) => opt_long(&ev.insert_id),
        (Field::Str(f), Rule::TooLong) => {
            ev.string_fields().iter().any(|(g, s)| *g == f && long(s))
        }
        (Field::Location, Rule::NotFinite) => ev
            .location
            .is_some_and(|(a, b)| !a.is_finite() || !b.is_finite()),
        (Field::Price, Rule::NotFinite) => !finite(ev.price),
        (Field::Revenue, Rule::NotFinite) => !finite(ev.revenue),
        (Field::Plan, Rule::TooLong) => ev.plan.as_ref().is_some_and(|p| p.iter().any(opt_long)),
        (Field::IngestionMetadata, Rule::TooLong) => ev
            .ingestion_metadata
            .as_ref()
            .is_some_and(|p| p.iter().any(opt_long)),
        (Field::EventPropertiesObject, Rule::NotAnObject) => match &ev.event_properties_object {
            Some(OwnedValue::Object(_) | OwnedValue::Typed(_)) => false,
            Some(OwnedValue::Raw(s)) => !raw(s).is_some_and(|r| r.as_str().starts_with('{')),
            Some(_) => true,
            None => false,
        },
        (Field::EventPropertiesObject, r) => ev
            .event_properties_object
            .as_ref()
            .is_some_and(|v| value_breaks(v, r, 0)),
        (Field::Properties, Rule::OverCapacity) => ev.props.len() > PROPS,
        (Field::Property(t, i), rule) => {
            let Some((ot, k, v)) = ev.props.get(usize::from(i)) else {
                panic!("{e:?} names a property that does not exist")
            };
            assert_eq!(ot.target(), t, "{e:?} names the wrong target");
            let before = &ev.props[..usize::from(i)];
            let count = |f: &dyn Fn(Target) -> bool| {
                ev.props[..=usize::from(i)]
                    .iter()
                    .filter(|(o, _, _)| f(o.target()))
                    .count()
            };
            match rule {
                Rule::TooLong => long(k) || value_breaks(v, rule, 0),
                Rule::NotFinite | Rule::TooDeep => value_breaks(v, rule, 0),
                Rule::TooMany => {
                    value_breaks(v, rule, 0)
                        || count(&|x| std::mem::discriminant(&x) == std::mem::discriminant(&t))
                            > 1024
                }
                Rule::NotAString => {
                    t == Target::Group
                        && !matches!(seen(v), Seen::Str(_))
                        && !matches!(v, OwnedValue::List(l) if l.iter().all(|x| matches!(seen(x), Seen::Str(_))))
                }
                Rule::MixedOperations => {
                    let all: Vec<Target> = before
                        .iter()
                        .map(|(o, _, _)| o.target())
                        .chain([t])
                        .collect();
                    let mixed = |plain: Target, is: fn(Target) -> Option<UserOp>| {
                        all.contains(&plain)
                            && all
                                .iter()
                                .any(|x| is(*x).is_some_and(|o| o != UserOp::Plain))
                    };
                    mixed(Target::User(UserOp::Plain), |x| match x {
                        Target::User(o) => Some(o),
                        _ => None,
                    }) || mixed(Target::GroupProperty(UserOp::Plain), |x| match x {
                        Target::GroupProperty(o) => Some(o),
                        _ => None,
                    })
                }
                _ => false,
            }
        }
        (Field::Groups, Rule::TooMany) => {
            let groups: Vec<&OwnedValue> = ev
                .props
                .iter()
                .filter(|(t, _, _)| *t == OwnedTarget::Group)
                .map(|(_, _, v)| v)
                .collect();
            let values: usize = groups
                .iter()
                .map(|v| match v {
                    OwnedValue::List(l) => l.len(),
                    _ => 1,
                })
                .sum();
            groups.len() > MAX_GROUP_TYPES || values > MAX_GROUP_VALUES
        }
        _ => false,
    };
    assert!(ok, "undeserved validation error {e:?} ({e})");
}

/// Whether some typed subtree of `v` satisfies `bad`, given the depth it sits at.
fn any_typed(v: &OwnedValue, depth: usize, bad: &dyn Fn(&OwnedValue, usize) -> bool) -> bool {
    match v {
        OwnedValue::Typed(inner) => bad(inner, depth),
        OwnedValue::List(items) => items.iter().any(|i| any_typed(i, depth + 1, bad)),
        OwnedValue::Object(m) => m.iter().any(|(_, v)| any_typed(v, depth + 1, bad)),
        _ => false,
    }
}

fn event_values(ev: &OwnedEvent) -> impl Iterator<Item = &OwnedValue> {
    ev.props
        .iter()
        .map(|(_, _, v)| v)
        .chain(ev.event_properties_object.as_ref())
}

fn justify_encode_error(ev: &OwnedEvent, e: EncodeError) {
    let non_finite =
        |v: &OwnedValue, _| expected_json(&OwnedValue::Typed(Box::new(v.clone()))).is_none();
    let over_limit = |v: &OwnedValue, depth: usize, want: JsonError| {
        // Measure the text as written (duplicate keys and all), not a map of it.
        let Ok(text) = serde_json::to_string(v) else {
            return false;
        };
        let Ok(s) = measure(text.as_bytes()) else {
            return false;
        };
        match want {
            JsonError::TooDeep => s.depth + depth > MAX_DEPTH,
            JsonError::StringTooLong => s.longest_string > MAX_STRING_CHARS,
            JsonError::TooManyKeys => s.most_keys > 1024,
            JsonError::Syntax { .. } | JsonError::NumberOutOfRange { .. } => false,
        }
    };
    let ok = match e {
        EncodeError::NonFiniteFloat => event_values(ev).any(|v| any_typed(v, 0, &non_finite)),
        EncodeError::Limits(l) => {
            event_values(ev).any(|v| any_typed(v, 0, &|t, d| over_limit(t, d, l)))
        }
        EncodeError::NotAnObject => !matches!(
            ev.event_properties_object.as_ref().map(expected_json),
            Some(Some(Json::Object(_)))
        ),
        EncodeError::BufferFull
        | EncodeError::NonStringKey
        | EncodeError::NumberOutOfRange
        | EncodeError::Serialize => false,
    };
    assert!(ok, "undeserved encoding error {e:?} ({e})");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_pass() {
        for (name, data) in crate::seeds("encode_event") {
            eprintln!("{name}");
            check(&data);
        }
    }

    #[test]
    fn seed_events_are_read_as_json_events() {
        for (name, data) in crate::seeds("encode_event") {
            if name.ends_with(".json") {
                let (ev, small) = decode(&data).unwrap();
                assert!(small.is_none() && !ev.event_type.is_empty(), "{name}");
            }
        }
    }
}
