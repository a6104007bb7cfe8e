//! Encoding an [`Event`] to compact HTTP V2 JSON in a caller-owned buffer.

use core::fmt;

use crate::event::{Event, StrField, Target, UserOp};
use crate::json::{BufferFull, JsonError, JsonWriter, validate_json_nested};
use crate::value::Value;

/// The `library` value sent when the event has none.
pub const LIBRARY: &str = concat!("amplitude-rust/", env!("CARGO_PKG_VERSION"));

/// Why an event could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EncodeError {
    /// The output buffer is too small for the event.
    BufferFull,
    /// A typed value produced NaN or an infinity.
    NonFiniteFloat,
    /// A typed value has a map key that is not a string or integer.
    NonStringKey,
    /// A typed value has an integer outside the 64-bit range.
    NumberOutOfRange,
    /// A typed value's `Serialize` implementation reported an error.
    Serialize,
    /// A typed value's JSON breaks a limit (depth, string length, key count).
    Limits(JsonError),
    /// A whole-object value did not produce a JSON object.
    NotAnObject,
}

impl From<BufferFull> for EncodeError {
    fn from(_: BufferFull) -> Self {
        EncodeError::BufferFull
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferFull => f.write_str("event does not fit in the buffer"),
            EncodeError::NonFiniteFloat => f.write_str("typed value contains NaN or infinity"),
            EncodeError::NonStringKey => {
                f.write_str("typed value has a map key that is not a string")
            }
            EncodeError::NumberOutOfRange => {
                f.write_str("typed value has an integer outside 64 bits")
            }
            EncodeError::Serialize => f.write_str("typed value failed to serialize"),
            EncodeError::Limits(e) => write!(f, "typed value: {e}"),
            EncodeError::NotAnObject => f.write_str("event_properties is not a JSON object"),
        }
    }
}

impl core::error::Error for EncodeError {}

/// A small, fast, seedable generator (SplitMix64) for `insert_id`s. Not cryptographic:
/// ids only need to be unique, and devices seed it from whatever entropy they have.
///
/// ```
/// use amplitude_core::encode::Rng;
/// let mut a = Rng::new(7);
/// let mut b = Rng::new(7);
/// assert_eq!(a.uuid_v4(), b.uuid_v4());
/// let id = a.uuid_v4();
/// assert_eq!(id[14], b'4');
/// ```
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A random UUID (version 4, variant 1) as 36 ASCII bytes.
    pub fn uuid_v4(&mut self) -> [u8; 36] {
        let hi = (self.next_u64() & !0xF000) | 0x4000;
        let lo = (self.next_u64() & !(0xC << 60)) | (0x8 << 60);
        let bytes = (u128::from(hi) << 64 | u128::from(lo)).to_be_bytes();
        // Where each byte's two hex digits go in `8-4-4-4-12`.
        const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
        let mut out = [b'-'; 36];
        for (&b, &o) in bytes.iter().zip(AT.iter()) {
            out[o] = b"0123456789abcdef"[usize::from(b >> 4)];
            out[o + 1] = b"0123456789abcdef"[usize::from(b & 15)];
        }
        out
    }
}

/// What encoding learned about the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoded {
    /// Bytes written.
    pub len: usize,
    /// Whether the event carried its own `time` (else the batch builder adds one).
    pub has_time: bool,
}

/// Write `v`, which sits `depth` arrays/objects deep in its property (as
/// [`crate::validate::validate`] counts it): typed values are checked against the limits
/// with that depth included.
fn write_value(w: &mut JsonWriter<'_>, v: &Value<'_>, depth: usize) -> Result<(), EncodeError> {
    match v {
        Value::Null => w.raw(b"null")?,
        Value::Bool(b) => w.bool(*b)?,
        Value::Int(i) => w.i64(*i)?,
        Value::UInt(u) => w.u64(*u)?,
        Value::Float(f) => w.f64(*f)?,
        Value::Str(s) => w.str(s)?,
        Value::Raw(r) => w.raw(r.as_str().as_bytes())?,
        Value::List(items) => {
            w.raw(b"[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    w.raw(b",")?;
                }
                write_value(w, item, depth + 1)?;
            }
            w.raw(b"]")?;
        }
        Value::Object(members) => {
            w.raw(b"{")?;
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    w.raw(b",")?;
                }
                w.key_first(k)?;
                write_value(w, v, depth + 1)?;
            }
            w.raw(b"}")?;
        }
        Value::Serde(t) => {
            let start = w.len();
            t.write_json(w)?;
            if !w.is_counting() {
                validate_json_nested(&w.as_bytes()[start..], depth).map_err(EncodeError::Limits)?;
            }
        }
    }
    Ok(())
}

/// Write the entries of `target` as object members; returns whether any was written.
fn write_members(
    w: &mut JsonWriter<'_>,
    props: &[crate::event::Prop<'_>],
    target: Target,
    mut first: bool,
) -> Result<bool, EncodeError> {
    let mut any = false;
    for p in props.iter().filter(|p| p.target == target) {
        if !first {
            w.raw(b",")?;
        }
        first = false;
        any = true;
        w.key_first(p.key)?;
        write_value(w, &p.value, 0)?;
    }
    Ok(any)
}

/// `user_properties` / `group_properties`: plain members, or one object per operation.
/// `op_of` tells which operation of this object an entry is for (`None`: another object).
fn write_op_object(
    w: &mut JsonWriter<'_>,
    props: &[crate::event::Prop<'_>],
    key: &str,
    target: fn(UserOp) -> Target,
    op_of: fn(Target) -> Option<UserOp>,
) -> Result<(), EncodeError> {
    // One pass: a bit per operation present (bit 0: plain keys).
    let mut present = 0u16;
    for p in props {
        if let Some(op) = op_of(p.target) {
            present |= 1 << (op as u16);
        }
    }
    if present == 0 {
        return Ok(());
    }
    let has = |op: UserOp| present & (1 << (op as u16)) != 0;
    w.key_plain(key)?;
    w.raw(b"{")?;
    if has(UserOp::Plain) {
        write_members(w, props, target(UserOp::Plain), true)?;
    } else {
        let mut first = true;
        for op in UserOp::OPS {
            if !has(op) {
                continue;
            }
            if first {
                w.key_first_plain(op.key())?;
            } else {
                w.key_plain(op.key())?;
            }
            first = false;
            if op == UserOp::ClearAll {
                w.raw(b"\"-\"")?;
            } else {
                w.raw(b"{")?;
                write_members(w, props, target(op), true)?;
                w.raw(b"}")?;
            }
        }
    }
    w.raw(b"}")?;
    Ok(())
}

/// Encode `event` as one JSON object into `w`. `insert_id` comes from `rng` when the
/// event has none; `library` is [`LIBRARY`] when the event has none. The event must have
/// passed [`crate::validate::validate`]. On error the writer may hold a partial object
/// (truncate it back).
///
/// ```
/// use amplitude_core::{Event, encode::{encode_event, Rng}, json::JsonWriter};
/// let ev: Event = Event::new("Login").user_id("user-1234").insert_id("abc").time(1);
/// let mut buf = [0u8; 256];
/// let mut w = JsonWriter::new(&mut buf);
/// encode_event(&ev, &mut Rng::new(1), &mut w)?;
/// let json = core::str::from_utf8(w.as_bytes()).unwrap();
/// assert!(json.starts_with(r#"{"event_type":"Login","user_id":"user-1234","time":1,"insert_id":"abc","library":"amplitude-rust/"#));
/// # Ok::<(), amplitude_core::encode::EncodeError>(())
/// ```
pub fn encode_event<const N: usize>(
    event: &Event<'_, N>,
    rng: &mut Rng,
    w: &mut JsonWriter<'_>,
) -> Result<Encoded, EncodeError> {
    let start = w.len();
    w.raw(b"{\"event_type\":")?;
    w.str(event.event_type)?;
    if let Some(u) = event.user_id {
        w.key_plain("user_id")?;
        w.str(u)?;
    }
    if let Some(d) = event.device_id {
        w.key_plain("device_id")?;
        w.str(d)?;
    }
    if let Some(t) = event.time {
        w.key_plain("time")?;
        w.i64(t)?;
    }
    w.key_plain("insert_id")?;
    match event.insert_id {
        Some(id) => w.str(id)?,
        None => {
            w.raw(b"\"")?;
            w.raw(&rng.uuid_v4())?;
            w.raw(b"\"")?;
        }
    }
    for (key, v) in [
        ("session_id", event.session_id),
        ("event_id", event.event_id),
        ("quantity", event.quantity),
    ] {
        if let Some(v) = v {
            w.key_plain(key)?;
            w.i64(v)?;
        }
    }
    for (key, v) in [
        ("location_lat", event.location_lat),
        ("location_lng", event.location_lng),
        ("price", event.price),
        ("revenue", event.revenue),
    ] {
        if let Some(v) = v {
            w.key_plain(key)?;
            w.f64(v)?;
        }
    }
    for f in StrField::ALL {
        if let Some(s) = event.get_string(f) {
            w.key_plain(f.key())?;
            w.str(s)?;
        }
    }
    if event.get_string(StrField::Library).is_none() {
        w.key_plain("library")?;
        w.str(LIBRARY)?;
    }
    let props = event.properties();
    let has_event_props = props.iter().any(|p| p.target == Target::Event);
    if has_event_props || event.event_properties_object.is_some() {
        w.key_plain("event_properties")?;
        let mut first = true;
        if let Some(obj) = &event.event_properties_object {
            let at = w.len();
            write_value(w, obj, 0)?;
            if w.is_counting() {
                // Measuring: assume members follow (at most one comma too many).
                first = false;
            } else {
                let written = &w.as_bytes()[at..];
                if written.first() != Some(&b'{') || written.last() != Some(&b'}') {
                    return Err(EncodeError::NotAnObject);
                }
                first = written.len() == 2
                    || written[1..written.len() - 1]
                        .iter()
                        .all(|b| b.is_ascii_whitespace());
            }
            w.truncate(w.len() - 1);
        } else {
            w.raw(b"{")?;
        }
        write_members(w, props, Target::Event, first)?;
        w.raw(b"}")?;
    }
    write_op_object(w, props, "user_properties", Target::User, |t| match t {
        Target::User(op) => Some(op),
        _ => None,
    })?;
    if props.iter().any(|p| p.target == Target::Group) {
        w.key_plain("groups")?;
        w.raw(b"{")?;
        write_members(w, props, Target::Group, true)?;
        w.raw(b"}")?;
    }
    write_op_object(
        w,
        props,
        "group_properties",
        Target::GroupProperty,
        |t| match t {
            Target::GroupProperty(op) => Some(op),
            _ => None,
        },
    )?;
    if let Some(p) = event.plan {
        w.key_plain("plan")?;
        write_str_object(
            w,
            &[
                ("branch", p.branch),
                ("source", p.source),
                ("version", p.version),
                ("versionId", p.version_id),
            ],
        )?;
    }
    if let Some(m) = event.ingestion_metadata {
        w.key_plain("ingestion_metadata")?;
        write_str_object(
            w,
            &[
                ("source_name", m.source_name),
                ("source_version", m.source_version),
            ],
        )?;
    }
    if let Some(s) = event.skip_user_properties_sync {
        w.key_plain("$skip_user_properties_sync")?;
        w.bool(s)?;
    }
    w.raw(b"}")?;
    Ok(Encoded {
        len: w.len() - start,
        has_time: event.time.is_some(),
    })
}

/// The size [`encode_event`] would write for `event` (a byte more when it has a
/// whole-object `event_properties`), without writing anything.
///
/// ```
/// use amplitude_core::{Event, encode::{encode_event, encoded_len, Rng}, json::JsonWriter};
/// let ev: Event = Event::new("Login").user_id("user-1234").property("n", 1);
/// let mut buf = [0u8; 512];
/// let mut w = JsonWriter::new(&mut buf);
/// assert_eq!(encoded_len(&ev)?, encode_event(&ev, &mut Rng::new(1), &mut w)?.len);
/// # Ok::<(), amplitude_core::encode::EncodeError>(())
/// ```
pub fn encoded_len<const N: usize>(event: &Event<'_, N>) -> Result<usize, EncodeError> {
    let mut w = JsonWriter::counting();
    encode_event(event, &mut Rng::new(0), &mut w).map(|e| e.len)
}

fn write_str_object(
    w: &mut JsonWriter<'_>,
    fields: &[(&str, Option<&str>)],
) -> Result<(), EncodeError> {
    w.raw(b"{")?;
    let mut first = true;
    for (k, v) in fields {
        if let Some(v) = v {
            if first {
                w.key_first_plain(k)?;
            } else {
                w.key_plain(k)?;
            }
            first = false;
            w.str(v)?;
        }
    }
    w.raw(b"}")?;
    Ok(())
}
