//! Validation against the HTTP V2 rules of spec §3, with errors that name the field and
//! the rule.

use core::fmt;

use crate::event::{Event, StrField, Target, UserOp};
use crate::json::{MAX_DEPTH, MAX_OBJECT_KEYS, MAX_STRING_CHARS, validate_json_nested};
use crate::value::Value;

/// Ids the server refuses (compared case-insensitively).
pub const REJECTED_IDS: [&str; 14] = [
    "anonymous",
    "nil",
    "none",
    "null",
    "n/a",
    "na",
    "undefined",
    "unknown",
    "",
    "00000000-0000-0000-0000-000000000000",
    "{}",
    "lmy47d",
    "0",
    "-1",
];

/// Most group types per event.
pub const MAX_GROUP_TYPES: usize = 5;
/// Most group values per event (all types together).
pub const MAX_GROUP_VALUES: usize = 10;

/// The part of an event a validation error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Field {
    /// `event_type`
    EventType,
    /// `user_id`
    UserId,
    /// `device_id`
    DeviceId,
    /// both `user_id` and `device_id`
    Ids,
    /// `insert_id`
    InsertId,
    /// a descriptive string field
    Str(StrField),
    /// `location_lat` / `location_lng`
    Location,
    /// `price`
    Price,
    /// `revenue`
    Revenue,
    /// `plan`
    Plan,
    /// `ingestion_metadata`
    IngestionMetadata,
    /// the whole `event_properties` object
    EventPropertiesObject,
    /// the property entry at this index of [`Event::properties`]
    Property(Target, u16),
    /// the property entry list as a whole
    Properties,
    /// `groups`
    Groups,
}

/// The rule a field broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Rule {
    /// Required but absent or empty.
    Missing,
    /// Shorter than the minimum id length.
    TooShort {
        /// The minimum in characters.
        min: u16,
    },
    /// One of [`REJECTED_IDS`].
    ReservedValue,
    /// A string over 1024 characters.
    TooLong,
    /// NaN or an infinity (JSON has no such numbers).
    NotFinite,
    /// More than 1024 keys, more than 5 group types or more than 10 group values.
    TooMany,
    /// More entries than the event's fixed capacity.
    OverCapacity,
    /// Nesting deeper than 40 levels.
    TooDeep,
    /// Plain user properties mixed with operations (`$set`, …) in one object.
    MixedOperations,
    /// A group value that is not a string or a list of strings.
    NotAString,
    /// A whole-object value that is not a JSON object.
    NotAnObject,
}

/// An event that would be refused by the server (or could not be encoded), naming what
/// was wrong.
///
/// ```
/// use amplitude_core::{Event, validate::{validate, Field, Rule, Rules, ValidationError}};
/// let ev: Event = Event::new("Login").user_id("abc");
/// assert_eq!(
///     validate(&ev, &Rules::default()),
///     Err(ValidationError { field: Field::UserId, rule: Rule::TooShort { min: 5 } })
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ValidationError {
    /// What was wrong.
    pub field: Field,
    /// Which rule it broke.
    pub rule: Rule,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::EventType => f.write_str("event_type"),
            Field::UserId => f.write_str("user_id"),
            Field::DeviceId => f.write_str("device_id"),
            Field::Ids => f.write_str("user_id/device_id"),
            Field::InsertId => f.write_str("insert_id"),
            Field::Str(s) => f.write_str(s.key()),
            Field::Location => f.write_str("location_lat/location_lng"),
            Field::Price => f.write_str("price"),
            Field::Revenue => f.write_str("revenue"),
            Field::Plan => f.write_str("plan"),
            Field::IngestionMetadata => f.write_str("ingestion_metadata"),
            Field::EventPropertiesObject => f.write_str("event_properties"),
            Field::Property(t, i) => {
                let name = match t {
                    Target::Event => "event_properties",
                    Target::User(_) => "user_properties",
                    Target::Group => "groups",
                    Target::GroupProperty(_) => "group_properties",
                };
                write!(f, "{name} entry #{i}")
            }
            Field::Properties => f.write_str("properties"),
            Field::Groups => f.write_str("groups"),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Missing => f.write_str("is required"),
            Rule::TooShort { min } => write!(f, "is shorter than {min} characters"),
            Rule::ReservedValue => f.write_str("is a value the server rejects"),
            Rule::TooLong => write!(f, "is longer than {MAX_STRING_CHARS} characters"),
            Rule::NotFinite => f.write_str("is not a finite number"),
            Rule::TooMany => f.write_str("has too many entries"),
            Rule::OverCapacity => f.write_str("exceeds the event's property capacity"),
            Rule::TooDeep => write!(f, "nests deeper than {MAX_DEPTH} levels"),
            Rule::MixedOperations => f.write_str("mixes plain keys with operations"),
            Rule::NotAString => f.write_str("must be a string or a list of strings"),
            Rule::NotAnObject => f.write_str("must be a JSON object"),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.rule)
    }
}

impl core::error::Error for ValidationError {}

/// The configurable part of validation.
///
/// ```
/// use amplitude_core::validate::Rules;
/// let rules = Rules { min_id_length: 3 };
/// # let _ = rules;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rules {
    /// Minimum length of `user_id` / `device_id` in characters (server default 5; sent as
    /// `options.min_id_length` when different).
    pub min_id_length: u16,
}

impl Default for Rules {
    fn default() -> Self {
        Self { min_id_length: 5 }
    }
}

fn too_long(s: &str) -> bool {
    s.len() > MAX_STRING_CHARS && s.chars().count() > MAX_STRING_CHARS
}

fn check_str(field: Field, s: &str) -> Result<(), ValidationError> {
    if too_long(s) {
        Err(ValidationError {
            field,
            rule: Rule::TooLong,
        })
    } else {
        Ok(())
    }
}

fn check_id(field: Field, id: &str, rules: &Rules) -> Result<(), ValidationError> {
    if REJECTED_IDS.iter().any(|r| r.eq_ignore_ascii_case(id)) {
        return Err(ValidationError {
            field,
            rule: Rule::ReservedValue,
        });
    }
    let min = usize::from(rules.min_id_length);
    if id.len() < min || (id.len() < min * 4 && id.chars().count() < min) {
        return Err(ValidationError {
            field,
            rule: Rule::TooShort {
                min: rules.min_id_length,
            },
        });
    }
    check_str(field, id)
}

fn check_value(field: Field, v: &Value<'_>, depth: usize) -> Result<(), ValidationError> {
    let err = |rule| Err(ValidationError { field, rule });
    match v {
        Value::Float(f) if !f.is_finite() => err(Rule::NotFinite),
        Value::Str(s) => check_str(field, s),
        Value::List(items) => {
            if depth >= MAX_DEPTH {
                return err(Rule::TooDeep);
            }
            items
                .iter()
                .try_for_each(|i| check_value(field, i, depth + 1))
        }
        Value::Object(members) => {
            if depth >= MAX_DEPTH {
                return err(Rule::TooDeep);
            }
            if members.len() > MAX_OBJECT_KEYS {
                return err(Rule::TooMany);
            }
            members.iter().try_for_each(|(k, v)| {
                check_str(field, k)?;
                check_value(field, v, depth + 1)
            })
        }
        // Raw JSON was checked on entry, but on its own: its nesting adds to the depth
        // it sits at. Typed values are checked once encoded (with their depth too).
        Value::Raw(r) if depth > 0 => match validate_json_nested(r.as_str().as_bytes(), depth) {
            Ok(()) => Ok(()),
            Err(_) => err(Rule::TooDeep),
        },
        _ => Ok(()),
    }
}

/// Check `event` against the HTTP V2 rules. The seed's example event passes:
///
/// ```
/// use amplitude_core::{Event, validate::{validate, Rules}};
/// let ev: Event = Event::new("Node.js Event")
///     .user_id("datamonster@gmail.com")
///     .location(37.77, -122.39)
///     .ip("127.0.0.1")
///     .property("keyString", "valueString")
///     .property("keyInt", 11)
///     .property("keyBool", true);
/// assert_eq!(validate(&ev, &Rules::default()), Ok(()));
/// ```
pub fn validate<const N: usize>(
    event: &Event<'_, N>,
    rules: &Rules,
) -> Result<(), ValidationError> {
    let err = |field, rule| Err(ValidationError { field, rule });
    if event.event_type.is_empty() {
        return err(Field::EventType, Rule::Missing);
    }
    check_str(Field::EventType, event.event_type)?;
    match (event.user_id, event.device_id) {
        (None, None) => return err(Field::Ids, Rule::Missing),
        (u, d) => {
            if let Some(u) = u {
                check_id(Field::UserId, u, rules)?;
            }
            if let Some(d) = d {
                check_id(Field::DeviceId, d, rules)?;
            }
        }
    }
    if let Some(id) = event.insert_id {
        if id.is_empty() {
            return err(Field::InsertId, Rule::Missing);
        }
        check_str(Field::InsertId, id)?;
    }
    for f in StrField::ALL {
        if let Some(s) = event.get_string(f) {
            check_str(Field::Str(f), s)?;
        }
    }
    let finite = |v: Option<f64>| v.is_none_or(f64::is_finite);
    if !finite(event.location_lat) || !finite(event.location_lng) {
        return err(Field::Location, Rule::NotFinite);
    }
    if !finite(event.price) {
        return err(Field::Price, Rule::NotFinite);
    }
    if !finite(event.revenue) {
        return err(Field::Revenue, Rule::NotFinite);
    }
    if let Some(p) = event.plan {
        for s in [p.branch, p.source, p.version, p.version_id]
            .into_iter()
            .flatten()
        {
            check_str(Field::Plan, s)?;
        }
    }
    if let Some(m) = event.ingestion_metadata {
        for s in [m.source_name, m.source_version].into_iter().flatten() {
            check_str(Field::IngestionMetadata, s)?;
        }
    }
    match event.event_properties_object {
        None | Some(Value::Serde(_)) => {}
        Some(Value::Raw(r)) if r.as_str().starts_with('{') => {}
        Some(v @ Value::Object(_)) => check_value(Field::EventPropertiesObject, &v, 0)?,
        Some(_) => return err(Field::EventPropertiesObject, Rule::NotAnObject),
    }
    if event.overflowed() {
        return err(Field::Properties, Rule::OverCapacity);
    }
    let (mut plain_user, mut op_user, mut plain_group, mut op_group) = (false, false, false, false);
    let (mut group_types, mut group_values) = (0usize, 0usize);
    let mut counts = [0usize; 4];
    for (i, p) in event.properties().iter().enumerate() {
        let field = Field::Property(p.target, i as u16);
        check_str(field, p.key)?;
        check_value(field, &p.value, 0)?;
        let slot = match p.target {
            Target::Event => 0,
            Target::User(op) => {
                if op == UserOp::Plain {
                    plain_user = true
                } else {
                    op_user = true
                }
                1
            }
            Target::GroupProperty(op) => {
                if op == UserOp::Plain {
                    plain_group = true
                } else {
                    op_group = true
                }
                2
            }
            Target::Group => {
                group_types += 1;
                group_values += match p.value {
                    Value::Str(_) => 1,
                    Value::List(items) if items.iter().all(|v| matches!(v, Value::Str(_))) => {
                        items.len()
                    }
                    _ => return err(field, Rule::NotAString),
                };
                3
            }
        };
        counts[slot] += 1;
        if counts[slot] > MAX_OBJECT_KEYS {
            return err(field, Rule::TooMany);
        }
        if (plain_user && op_user) || (plain_group && op_group) {
            return err(field, Rule::MixedOperations);
        }
    }
    if group_types > MAX_GROUP_TYPES || group_values > MAX_GROUP_VALUES {
        return err(Field::Groups, Rule::TooMany);
    }
    Ok(())
}
