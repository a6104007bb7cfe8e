//! Property values: everything an event property, user property or group value can hold.

use core::fmt;

use crate::json::{JsonError, validate_json};

/// A pre-encoded JSON value, checked once on entry.
///
/// Lets std users pass through data they already hold as JSON text (for example a
/// `serde_json::Value` rendered with `to_string`) without the core parsing it again.
///
/// ```
/// use amplitude_core::RawJson;
/// let nested = RawJson::new(r#"{"plan":"pro","seats":[1,2]}"#)?;
/// assert_eq!(nested.as_str(), r#"{"plan":"pro","seats":[1,2]}"#);
/// assert!(RawJson::new("{oops}").is_err());
/// # Ok::<(), amplitude_core::json::JsonError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawJson<'a>(&'a str);

impl<'a> RawJson<'a> {
    /// Accept `text` if it is exactly one JSON value within Amplitude's limits
    /// (see [`validate_json`]); surrounding whitespace is trimmed.
    pub fn new(text: &'a str) -> Result<Self, JsonError> {
        validate_json(text.as_bytes())?;
        Ok(Self(text.trim_matches([' ', '\t', '\n', '\r'])))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

impl fmt::Debug for RawJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawJson({})", self.0)
    }
}

/// A value that writes itself as JSON — the bridge for typed (`serde::Serialize`) data.
///
/// Every `T: serde::Serialize` implements it through the core's allocation-free
/// serializer, so a typed struct can be an event's properties:
///
/// ```
/// use amplitude_core::{Event, Value};
/// #[derive(serde::Serialize)]
/// struct Cart { items: u32, total: f64 }
/// let cart = Cart { items: 3, total: 9.5 };
/// let ev: Event = Event::new("Checkout").user_id("user-1234").property("cart", Value::serde(&cart));
/// # let _ = ev;
/// ```
pub trait ToJson {
    /// Write this value as one JSON value.
    fn write_json(
        &self,
        w: &mut crate::json::JsonWriter<'_>,
    ) -> Result<(), crate::encode::EncodeError>;
}

impl<T: serde::Serialize + ?Sized> ToJson for T {
    fn write_json(
        &self,
        w: &mut crate::json::JsonWriter<'_>,
    ) -> Result<(), crate::encode::EncodeError> {
        crate::ser::write(self, w)
    }
}

/// One property value.
///
/// Conversions exist from the obvious Rust types, so builders read naturally:
///
/// ```
/// use amplitude_core::Value;
/// assert_eq!(Value::from(11), Value::Int(11));
/// assert_eq!(Value::from("hi"), Value::Str("hi"));
/// assert_eq!(Value::from(None::<bool>), Value::Null);
/// ```
#[derive(Clone, Copy)]
pub enum Value<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer (for values above `i64::MAX`).
    UInt(u64),
    /// A float; must be finite (validation rejects NaN and infinities, which JSON lacks).
    Float(f64),
    /// A string.
    Str(&'a str),
    /// An array of values.
    List(&'a [Value<'a>]),
    /// A nested object, as key/value pairs.
    Object(&'a [(&'a str, Value<'a>)]),
    /// Pre-encoded, validated JSON.
    Raw(RawJson<'a>),
    /// Typed data written by its `serde::Serialize` implementation.
    Serde(&'a (dyn ToJson + Sync)),
}

impl<'a> Value<'a> {
    /// Wrap any `serde::Serialize` value (`Sync`, so that events stay `Send`).
    pub fn serde<T: serde::Serialize + Sync>(value: &'a T) -> Self {
        Value::Serde(value)
    }
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("Null"),
            Value::Bool(v) => write!(f, "Bool({v})"),
            Value::Int(v) => write!(f, "Int({v})"),
            Value::UInt(v) => write!(f, "UInt({v})"),
            Value::Float(v) => write!(f, "Float({v})"),
            Value::Str(v) => write!(f, "Str({v:?})"),
            Value::List(v) => f.debug_tuple("List").field(v).finish(),
            Value::Object(v) => f.debug_tuple("Object").field(v).finish(),
            Value::Raw(v) => fmt::Debug::fmt(v, f),
            Value::Serde(_) => f.write_str("Serde(..)"),
        }
    }
}

impl PartialEq for Value<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::UInt(a), Value::UInt(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => a == b,
            (Value::Raw(a), Value::Raw(b)) => a == b,
            (Value::Serde(a), Value::Serde(b)) => core::ptr::addr_eq(
                *a as *const (dyn ToJson + Sync),
                *b as *const (dyn ToJson + Sync),
            ),
            _ => false,
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value<'_> {
            fn from(v: $t) -> Self { Value::Int(i64::from(v)) }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<u64> for Value<'_> {
    fn from(v: u64) -> Self {
        match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(v),
        }
    }
}

impl From<usize> for Value<'_> {
    fn from(v: usize) -> Self {
        Value::from(v as u64)
    }
}

impl From<isize> for Value<'_> {
    fn from(v: isize) -> Self {
        Value::Int(v as i64)
    }
}

impl From<f64> for Value<'_> {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<f32> for Value<'_> {
    fn from(v: f32) -> Self {
        Value::Float(f64::from(v))
    }
}

impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Str(v)
    }
}

impl<'a> From<&'a [Value<'a>]> for Value<'a> {
    fn from(v: &'a [Value<'a>]) -> Self {
        Value::List(v)
    }
}

impl<'a, const N: usize> From<&'a [Value<'a>; N]> for Value<'a> {
    fn from(v: &'a [Value<'a>; N]) -> Self {
        Value::List(v)
    }
}

impl<'a> From<RawJson<'a>> for Value<'a> {
    fn from(v: RawJson<'a>) -> Self {
        Value::Raw(v)
    }
}

impl<'a, T: Into<Value<'a>>> From<Option<T>> for Value<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
