//! One HTTP V2 event object per line, parsed once into borrowed structures and turned
//! into a core [`Event`] without copying strings (only JSON strings with escapes, and
//! the lists behind `user_properties`, `group_properties` and `groups`, allocate).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use amplitude_core::event::{IngestionMetadata, Plan, StrField, Target, UserOp};
use amplitude_core::json::JsonError;
use amplitude_core::{Event, RawJson, Value};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// Why a line is not a usable event.
#[derive(Debug)]
pub enum LineError {
    /// Not a JSON object of known event fields with the right types.
    Json(serde_json::Error),
    /// A property object is malformed.
    Field {
        /// The field (`event_properties`, `user_properties`, `groups`, …).
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::Json(e) => e.fmt(f),
            LineError::Field { field, reason } => write!(f, "{field}: {reason}"),
        }
    }
}

impl std::error::Error for LineError {}

impl From<serde_json::Error> for LineError {
    fn from(e: serde_json::Error) -> Self {
        LineError::Json(e)
    }
}

fn field_err(field: &'static str, reason: impl fmt::Display) -> LineError {
    LineError::Field {
        field,
        reason: reason.to_string(),
    }
}

/// A JSON string, borrowed from the line unless it has escapes.
#[derive(Debug)]
struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

/// The members of a JSON object, in order, values kept as raw JSON.
#[derive(Debug, Default)]
struct Entries<'a>(Vec<(Str<'a>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Entries<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::with_capacity(map.size_hint().unwrap_or(4).min(64));
                while let Some(entry) = map.next_entry::<Str<'de>, &'de RawValue>()? {
                    v.push(entry);
                }
                Ok(Entries(v))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// A list of JSON strings.
struct StrList<'a>(Vec<Str<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for StrList<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = StrList<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<Str<'de>>()? {
                    v.push(s);
                }
                Ok(StrList(v))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanLine<'a> {
    #[serde(borrow)]
    branch: Option<Str<'a>>,
    #[serde(borrow)]
    source: Option<Str<'a>>,
    #[serde(borrow)]
    version: Option<Str<'a>>,
    #[serde(borrow, rename = "versionId")]
    version_id: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetadataLine<'a> {
    #[serde(borrow)]
    source_name: Option<Str<'a>>,
    #[serde(borrow)]
    source_version: Option<Str<'a>>,
}

/// Every field of spec §3; anything else is refused (`unknown field`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    #[serde(borrow)]
    event_type: Str<'a>,
    #[serde(borrow)]
    user_id: Option<Str<'a>>,
    #[serde(borrow)]
    device_id: Option<Str<'a>>,
    time: Option<i64>,
    #[serde(borrow)]
    insert_id: Option<Str<'a>>,
    session_id: Option<i64>,
    event_id: Option<i64>,
    location_lat: Option<f64>,
    location_lng: Option<f64>,
    price: Option<f64>,
    revenue: Option<f64>,
    quantity: Option<i64>,
    #[serde(rename = "$skip_user_properties_sync")]
    skip_user_properties_sync: Option<bool>,
    #[serde(borrow)]
    plan: Option<PlanLine<'a>>,
    #[serde(borrow)]
    ingestion_metadata: Option<MetadataLine<'a>>,
    #[serde(borrow)]
    event_properties: Option<&'a RawValue>,
    #[serde(borrow)]
    user_properties: Option<&'a RawValue>,
    #[serde(borrow)]
    groups: Option<&'a RawValue>,
    #[serde(borrow)]
    group_properties: Option<&'a RawValue>,
    #[serde(borrow)]
    app_version: Option<Str<'a>>,
    #[serde(borrow)]
    version_name: Option<Str<'a>>,
    #[serde(borrow)]
    platform: Option<Str<'a>>,
    #[serde(borrow)]
    os_name: Option<Str<'a>>,
    #[serde(borrow)]
    os_version: Option<Str<'a>>,
    #[serde(borrow)]
    device_brand: Option<Str<'a>>,
    #[serde(borrow)]
    device_manufacturer: Option<Str<'a>>,
    #[serde(borrow)]
    device_model: Option<Str<'a>>,
    #[serde(borrow)]
    carrier: Option<Str<'a>>,
    #[serde(borrow)]
    country: Option<Str<'a>>,
    #[serde(borrow)]
    region: Option<Str<'a>>,
    #[serde(borrow)]
    city: Option<Str<'a>>,
    #[serde(borrow)]
    dma: Option<Str<'a>>,
    #[serde(borrow)]
    language: Option<Str<'a>>,
    #[serde(borrow)]
    library: Option<Str<'a>>,
    #[serde(borrow)]
    user_agent: Option<Str<'a>>,
    #[serde(borrow)]
    partner_id: Option<Str<'a>>,
    #[serde(borrow)]
    idfa: Option<Str<'a>>,
    #[serde(borrow)]
    idfv: Option<Str<'a>>,
    #[serde(borrow)]
    adid: Option<Str<'a>>,
    #[serde(borrow)]
    android_id: Option<Str<'a>>,
    #[serde(borrow)]
    android_app_set_id: Option<Str<'a>>,
    #[serde(borrow)]
    ip: Option<Str<'a>>,
    #[serde(borrow, rename = "productId")]
    product_id: Option<Str<'a>>,
    #[serde(borrow, rename = "revenueType")]
    revenue_type: Option<Str<'a>>,
    #[serde(borrow)]
    currency: Option<Str<'a>>,
}

impl<'a> Line<'a> {
    fn strings(&self) -> [(StrField, &Option<Str<'a>>); StrField::COUNT] {
        use StrField as F;
        [
            (F::AppVersion, &self.app_version),
            (F::VersionName, &self.version_name),
            (F::Platform, &self.platform),
            (F::OsName, &self.os_name),
            (F::OsVersion, &self.os_version),
            (F::DeviceBrand, &self.device_brand),
            (F::DeviceManufacturer, &self.device_manufacturer),
            (F::DeviceModel, &self.device_model),
            (F::Carrier, &self.carrier),
            (F::Country, &self.country),
            (F::Region, &self.region),
            (F::City, &self.city),
            (F::Dma, &self.dma),
            (F::Language, &self.language),
            (F::Library, &self.library),
            (F::UserAgent, &self.user_agent),
            (F::PartnerId, &self.partner_id),
            (F::Idfa, &self.idfa),
            (F::Idfv, &self.idfv),
            (F::Adid, &self.adid),
            (F::AndroidId, &self.android_id),
            (F::AndroidAppSetId, &self.android_app_set_id),
            (F::Ip, &self.ip),
            (F::ProductId, &self.product_id),
            (F::RevenueType, &self.revenue_type),
            (F::Currency, &self.currency),
        ]
    }
}

fn op_of(key: &str) -> Option<UserOp> {
    Some(match key {
        "$set" => UserOp::Set,
        "$setOnce" => UserOp::SetOnce,
        "$add" => UserOp::Add,
        "$append" => UserOp::Append,
        "$prepend" => UserOp::Prepend,
        "$preInsert" => UserOp::PreInsert,
        "$postInsert" => UserOp::PostInsert,
        "$remove" => UserOp::Remove,
        "$unset" => UserOp::Unset,
        "$clearAll" => UserOp::ClearAll,
        _ => return None,
    })
}

/// `user_properties` or `group_properties`: plain members, or operation objects.
#[derive(Default)]
struct OpProps<'a> {
    plain: Entries<'a>,
    ops: Vec<(UserOp, Entries<'a>)>,
    clear_all: bool,
}

impl<'a> OpProps<'a> {
    fn parse(field: &'static str, raw: &'a RawValue) -> Result<Self, LineError> {
        let top: Entries<'a> = serde_json::from_str(raw.get()).map_err(|e| field_err(field, e))?;
        let mut out = OpProps::default();
        for (key, value) in top.0 {
            match op_of(&key.0) {
                Some(UserOp::ClearAll) => out.clear_all = true,
                Some(op) => {
                    let members: Entries<'a> = serde_json::from_str(value.get())
                        .map_err(|e| field_err(field, format_args!("{}: {e}", key.0)))?;
                    out.ops.push((op, members));
                }
                None => out.plain.0.push((key, value)),
            }
        }
        Ok(out)
    }

    fn push_into<'s>(
        &'s self,
        field: &'static str,
        event: &mut Event<'s>,
        target: fn(UserOp) -> Target,
    ) -> Result<(), LineError> {
        let raw =
            |v: &'s RawValue| RawJson::new(v.get()).map_err(|e: JsonError| field_err(field, e));
        for (k, v) in &self.plain.0 {
            event.push(target(UserOp::Plain), &k.0, Value::Raw(raw(v)?));
        }
        for (op, members) in &self.ops {
            for (k, v) in &members.0 {
                event.push(target(*op), &k.0, Value::Raw(raw(v)?));
            }
        }
        if self.clear_all {
            event.push(target(UserOp::ClearAll), "$clearAll", Value::Str("-"));
        }
        Ok(())
    }
}

/// A `groups` value: one group name or a list of them.
enum GroupValue<'a> {
    One(Str<'a>),
    Many(Vec<Str<'a>>),
}

fn parse_groups(raw: &RawValue) -> Result<Vec<(Str<'_>, GroupValue<'_>)>, LineError> {
    let entries: Entries<'_> =
        serde_json::from_str(raw.get()).map_err(|e| field_err("groups", e))?;
    entries
        .0
        .into_iter()
        .map(|(k, v)| {
            let text = v.get().trim_start();
            let value = if text.starts_with('[') {
                let list: StrList<'_> =
                    serde_json::from_str(v.get()).map_err(|e| field_err("groups", e))?;
                GroupValue::Many(list.0)
            } else {
                let one: Str<'_> = serde_json::from_str(v.get()).map_err(|_| {
                    field_err(
                        "groups",
                        format_args!("{} must be a string or a list of strings", k.0),
                    )
                })?;
                GroupValue::One(one)
            };
            Ok((k, value))
        })
        .collect()
}

/// Parse one NDJSON line (an HTTP V2 event object, spec §3) and hand the event to `f`.
///
/// ```
/// use amplitude_examples::ndjson::with_event;
/// let line = br#"{"event_type":"Song Played","user_id":"user-1234","event_properties":{"genre":["rock"],"ctx":{"a":1}}}"#;
/// let kind = with_event(line, |ev| ev.event_type.to_owned()).unwrap();
/// assert_eq!(kind, "Song Played");
/// assert!(with_event(br#"{"event_type":"x","time":1.5}"#, |_| ()).is_err());
/// ```
pub fn with_event<R>(line: &[u8], f: impl FnOnce(Event<'_>) -> R) -> Result<R, LineError> {
    let l: Line<'_> = serde_json::from_slice(line)?;
    let user_props = l
        .user_properties
        .map(|raw| OpProps::parse("user_properties", raw))
        .transpose()?;
    let group_props = l
        .group_properties
        .map(|raw| OpProps::parse("group_properties", raw))
        .transpose()?;
    let groups = l.groups.map(parse_groups).transpose()?;
    let group_lists: Vec<Vec<Value<'_>>> = groups
        .iter()
        .flatten()
        .filter_map(|(_, v)| match v {
            GroupValue::Many(list) => Some(list.iter().map(|s| Value::Str(&s.0)).collect()),
            GroupValue::One(_) => None,
        })
        .collect();

    let mut e: Event<'_> = Event::new(&l.event_type.0);
    e.user_id = l.user_id.as_ref().map(|s| &*s.0);
    e.device_id = l.device_id.as_ref().map(|s| &*s.0);
    e.insert_id = l.insert_id.as_ref().map(|s| &*s.0);
    e.time = l.time;
    e.session_id = l.session_id;
    e.event_id = l.event_id;
    e.location_lat = l.location_lat;
    e.location_lng = l.location_lng;
    e.price = l.price;
    e.revenue = l.revenue;
    e.quantity = l.quantity;
    e.skip_user_properties_sync = l.skip_user_properties_sync;
    e.plan = l.plan.as_ref().map(|p| Plan {
        branch: p.branch.as_ref().map(|s| &*s.0),
        source: p.source.as_ref().map(|s| &*s.0),
        version: p.version.as_ref().map(|s| &*s.0),
        version_id: p.version_id.as_ref().map(|s| &*s.0),
    });
    e.ingestion_metadata = l.ingestion_metadata.as_ref().map(|m| IngestionMetadata {
        source_name: m.source_name.as_ref().map(|s| &*s.0),
        source_version: m.source_version.as_ref().map(|s| &*s.0),
    });
    for (field, value) in l.strings() {
        if let Some(v) = value {
            e.set_string(field, &v.0);
        }
    }
    if let Some(raw) = l.event_properties {
        let props = RawJson::new(raw.get()).map_err(|err| field_err("event_properties", err))?;
        e.event_properties_object = Some(Value::Raw(props));
    }
    if let Some(p) = &user_props {
        p.push_into("user_properties", &mut e, Target::User)?;
    }
    if let Some(p) = &group_props {
        p.push_into("group_properties", &mut e, Target::GroupProperty)?;
    }
    let mut lists = group_lists.iter();
    for (k, v) in groups.iter().flatten() {
        match v {
            GroupValue::One(s) => {
                e.push(Target::Group, &k.0, Value::Str(&s.0));
            }
            GroupValue::Many(_) => {
                if let Some(list) = lists.next() {
                    e.push(Target::Group, &k.0, Value::List(list));
                }
            }
        }
    }
    Ok(f(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use amplitude_core::event::Target;

    fn props(line: &str) -> Vec<(Target, String, String)> {
        with_event(line.as_bytes(), |e| {
            e.properties()
                .iter()
                .map(|p| (p.target, p.key.to_owned(), format!("{:?}", p.value)))
                .collect()
        })
        .unwrap()
    }

    #[test]
    fn strings_without_escapes_are_borrowed_and_escaped_ones_decoded() {
        let line = br#"{"event_type":"a\"b","user_id":"plain-user"}"#;
        with_event(line, |e| {
            assert_eq!(e.event_type, "a\"b");
            let uid = e.user_id.unwrap();
            assert_eq!(uid, "plain-user");
            // Borrowed from the line itself.
            let range = line.as_ptr_range();
            assert!(range.contains(&uid.as_ptr()));
        })
        .unwrap();
    }

    #[test]
    fn user_property_operations_become_operation_entries() {
        let p = props(
            r#"{"event_type":"x","user_id":"user-1","user_properties":{"$set":{"a":1,"b":[true]},"$clearAll":"-"}}"#,
        );
        assert_eq!(
            p,
            vec![
                (Target::User(UserOp::Set), "a".into(), "RawJson(1)".into()),
                (
                    Target::User(UserOp::Set),
                    "b".into(),
                    "RawJson([true])".into()
                ),
                (
                    Target::User(UserOp::ClearAll),
                    "$clearAll".into(),
                    "Str(\"-\")".into()
                ),
            ]
        );
        let p = props(r#"{"event_type":"x","user_id":"user-1","user_properties":{"plan":"pro"}}"#);
        assert_eq!(
            p,
            vec![(
                Target::User(UserOp::Plain),
                "plan".into(),
                "RawJson(\"pro\")".into()
            )]
        );
    }

    #[test]
    fn groups_take_a_string_or_a_list_of_strings() {
        let p = props(
            r#"{"event_type":"x","user_id":"user-1","groups":{"org":"acme","teams":["a","b"]}}"#,
        );
        assert_eq!(p[0], (Target::Group, "org".into(), "Str(\"acme\")".into()));
        assert_eq!(p[1].2, "List([Str(\"a\"), Str(\"b\")])");
        let err = with_event(
            br#"{"event_type":"x","user_id":"user-1","groups":{"org":5}}"#,
            |_| (),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "groups: org must be a string or a list of strings"
        );
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let msg = |l: &str| with_event(l.as_bytes(), |_| ()).unwrap_err().to_string();
        assert!(msg("{").contains("EOF"));
        assert!(msg(r#"{"event_type":"x","user_id":42}"#).contains("expected a string"));
        assert!(
            msg(r#"{"event_type":"x","user_properties":{"$set":5}}"#)
                .starts_with("user_properties: $set:")
        );
        assert!(
            msg(r#"{"event_type":"x","plan":{"branch":"m","extra":1}}"#)
                .contains("unknown field `extra`")
        );
        assert!(msg(r#"{"event_type":"x","event_properties":{"s":"#).contains("EOF"));
    }
}
