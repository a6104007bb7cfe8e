//! An allocation-free `serde::Serializer` producing compact JSON through [`JsonWriter`].
//!
//! It exists (instead of using serde-json-core's serializer for output) because user types
//! are arbitrary: `char` fields, integer map keys and non-finite floats must become JSON
//! or a typed error, never a panic.

use serde::ser::{self, Serialize};

use crate::encode::EncodeError;
use crate::json::JsonWriter;

/// Serialize `value` as one JSON value.
pub(crate) fn write<T: Serialize + ?Sized>(
    value: &T,
    w: &mut JsonWriter<'_>,
) -> Result<(), EncodeError> {
    value.serialize(Ser { w })
}

impl ser::Error for EncodeError {
    fn custom<T: core::fmt::Display>(_msg: T) -> Self {
        EncodeError::Serialize
    }
}

struct Ser<'w, 'b> {
    w: &'w mut JsonWriter<'b>,
}

struct Compound<'w, 'b> {
    w: &'w mut JsonWriter<'b>,
    first: bool,
    /// Closing bytes: `]`, `}`, `]}` or `}}`.
    close: &'static [u8],
}

impl Compound<'_, '_> {
    fn sep(&mut self) -> Result<(), EncodeError> {
        if !self.first {
            self.w.raw(b",")?;
        }
        self.first = false;
        Ok(())
    }
    fn finish(self) -> Result<(), EncodeError> {
        Ok(self.w.raw(self.close)?)
    }
}

impl<'w, 'b> ser::Serializer for Ser<'w, 'b> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Compound<'w, 'b>;
    type SerializeTuple = Compound<'w, 'b>;
    type SerializeTupleStruct = Compound<'w, 'b>;
    type SerializeTupleVariant = Compound<'w, 'b>;
    type SerializeMap = Compound<'w, 'b>;
    type SerializeStruct = Compound<'w, 'b>;
    type SerializeStructVariant = Compound<'w, 'b>;

    fn serialize_bool(self, v: bool) -> Result<(), EncodeError> {
        Ok(self.w.bool(v)?)
    }
    fn serialize_i8(self, v: i8) -> Result<(), EncodeError> {
        Ok(self.w.i64(v.into())?)
    }
    fn serialize_i16(self, v: i16) -> Result<(), EncodeError> {
        Ok(self.w.i64(v.into())?)
    }
    fn serialize_i32(self, v: i32) -> Result<(), EncodeError> {
        Ok(self.w.i64(v.into())?)
    }
    fn serialize_i64(self, v: i64) -> Result<(), EncodeError> {
        Ok(self.w.i64(v)?)
    }
    fn serialize_i128(self, v: i128) -> Result<(), EncodeError> {
        let v = i64::try_from(v).map_err(|_| EncodeError::NumberOutOfRange)?;
        Ok(self.w.i64(v)?)
    }
    fn serialize_u8(self, v: u8) -> Result<(), EncodeError> {
        Ok(self.w.u64(v.into())?)
    }
    fn serialize_u16(self, v: u16) -> Result<(), EncodeError> {
        Ok(self.w.u64(v.into())?)
    }
    fn serialize_u32(self, v: u32) -> Result<(), EncodeError> {
        Ok(self.w.u64(v.into())?)
    }
    fn serialize_u64(self, v: u64) -> Result<(), EncodeError> {
        Ok(self.w.u64(v)?)
    }
    fn serialize_u128(self, v: u128) -> Result<(), EncodeError> {
        let v = u64::try_from(v).map_err(|_| EncodeError::NumberOutOfRange)?;
        Ok(self.w.u64(v)?)
    }
    fn serialize_f32(self, v: f32) -> Result<(), EncodeError> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), EncodeError> {
        if !v.is_finite() {
            return Err(EncodeError::NonFiniteFloat);
        }
        Ok(self.w.f64(v)?)
    }
    fn serialize_char(self, v: char) -> Result<(), EncodeError> {
        let mut b = [0u8; 4];
        Ok(self.w.str(v.encode_utf8(&mut b))?)
    }
    fn serialize_str(self, v: &str) -> Result<(), EncodeError> {
        Ok(self.w.str(v)?)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), EncodeError> {
        self.w.raw(b"[")?;
        for (i, b) in v.iter().enumerate() {
            if i > 0 {
                self.w.raw(b",")?;
            }
            self.w.u64(u64::from(*b))?;
        }
        Ok(self.w.raw(b"]")?)
    }
    fn serialize_none(self) -> Result<(), EncodeError> {
        Ok(self.w.raw(b"null")?)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), EncodeError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), EncodeError> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), EncodeError> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _n: &'static str,
        _i: u32,
        variant: &'static str,
    ) -> Result<(), EncodeError> {
        Ok(self.w.str(variant)?)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _n: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _n: &'static str,
        _i: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.w.raw(b"{")?;
        self.w.key_first(variant)?;
        value.serialize(Ser { w: &mut *self.w })?;
        Ok(self.w.raw(b"}")?)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'w, 'b>, EncodeError> {
        self.w.raw(b"[")?;
        Ok(Compound {
            w: self.w,
            first: true,
            close: b"]",
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'w, 'b>, EncodeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _n: &'static str,
        len: usize,
    ) -> Result<Compound<'w, 'b>, EncodeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _n: &'static str,
        _i: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'b>, EncodeError> {
        self.w.raw(b"{")?;
        self.w.key_first(variant)?;
        self.w.raw(b"[")?;
        Ok(Compound {
            w: self.w,
            first: true,
            close: b"]}",
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'w, 'b>, EncodeError> {
        self.w.raw(b"{")?;
        Ok(Compound {
            w: self.w,
            first: true,
            close: b"}",
        })
    }
    fn serialize_struct(
        self,
        _n: &'static str,
        len: usize,
    ) -> Result<Compound<'w, 'b>, EncodeError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _n: &'static str,
        _i: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'b>, EncodeError> {
        self.w.raw(b"{")?;
        self.w.key_first(variant)?;
        self.w.raw(b"{")?;
        Ok(Compound {
            w: self.w,
            first: true,
            close: b"}}",
        })
    }
    fn collect_str<T: core::fmt::Display + ?Sized>(self, value: &T) -> Result<(), EncodeError> {
        // Render through a small stack buffer, then escape.
        let mut buf = Fixed {
            buf: [0; 256],
            len: 0,
        };
        core::fmt::write(&mut buf, format_args!("{value}")).map_err(|_| EncodeError::Serialize)?;
        let s = core::str::from_utf8(&buf.buf[..buf.len]).map_err(|_| EncodeError::Serialize)?;
        Ok(self.w.str(s)?)
    }
}

struct Fixed {
    buf: [u8; 256],
    len: usize,
}

impl core::fmt::Write for Fixed {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let dst = self
            .buf
            .get_mut(self.len..self.len + s.len())
            .ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.sep()?;
        value.serialize(Ser { w: &mut *self.w })
    }
    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), EncodeError> {
        self.sep()?;
        key.serialize(KeySer { w: &mut *self.w })?;
        Ok(self.w.raw(b":")?)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        value.serialize(Ser { w: &mut *self.w })
    }
    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.sep()?;
        self.w.key_first(key)?;
        value.serialize(Ser { w: &mut *self.w })
    }
    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

/// Map keys: strings, chars and integers (quoted, as serde_json does); anything else is
/// an error because JSON keys are strings.
struct KeySer<'w, 'b> {
    w: &'w mut JsonWriter<'b>,
}

impl KeySer<'_, '_> {
    fn int(self, neg: bool, v: u64) -> Result<(), EncodeError> {
        self.w.raw(b"\"")?;
        if neg {
            self.w.raw(b"-")?;
        }
        self.w.u64(v)?;
        Ok(self.w.raw(b"\"")?)
    }
}

macro_rules! key_err {
    ($($f:ident($($t:ty),*)),* $(,)?) => {$(
        fn $f(self $(, _: $t)*) -> Result<(), EncodeError> { Err(EncodeError::NonStringKey) }
    )*};
}

impl ser::Serializer for KeySer<'_, '_> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = ser::Impossible<(), EncodeError>;
    type SerializeTuple = ser::Impossible<(), EncodeError>;
    type SerializeTupleStruct = ser::Impossible<(), EncodeError>;
    type SerializeTupleVariant = ser::Impossible<(), EncodeError>;
    type SerializeMap = ser::Impossible<(), EncodeError>;
    type SerializeStruct = ser::Impossible<(), EncodeError>;
    type SerializeStructVariant = ser::Impossible<(), EncodeError>;

    fn serialize_str(self, v: &str) -> Result<(), EncodeError> {
        Ok(self.w.str(v)?)
    }
    fn serialize_char(self, v: char) -> Result<(), EncodeError> {
        let mut b = [0u8; 4];
        Ok(self.w.str(v.encode_utf8(&mut b))?)
    }
    fn serialize_i8(self, v: i8) -> Result<(), EncodeError> {
        self.int(v < 0, u64::from(v.unsigned_abs()))
    }
    fn serialize_i16(self, v: i16) -> Result<(), EncodeError> {
        self.int(v < 0, u64::from(v.unsigned_abs()))
    }
    fn serialize_i32(self, v: i32) -> Result<(), EncodeError> {
        self.int(v < 0, u64::from(v.unsigned_abs()))
    }
    fn serialize_i64(self, v: i64) -> Result<(), EncodeError> {
        self.int(v < 0, v.unsigned_abs())
    }
    fn serialize_u8(self, v: u8) -> Result<(), EncodeError> {
        self.int(false, v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), EncodeError> {
        self.int(false, v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), EncodeError> {
        self.int(false, v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), EncodeError> {
        self.int(false, v)
    }
    fn serialize_unit_variant(
        self,
        _n: &'static str,
        _i: u32,
        variant: &'static str,
    ) -> Result<(), EncodeError> {
        Ok(self.w.str(variant)?)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _n: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        value.serialize(self)
    }
    key_err!(
        serialize_bool(bool),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str)
    );
    fn serialize_some<T: Serialize + ?Sized>(self, _v: &T) -> Result<(), EncodeError> {
        Err(EncodeError::NonStringKey)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _x: &T,
    ) -> Result<(), EncodeError> {
        Err(EncodeError::NonStringKey)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, EncodeError> {
        Err(EncodeError::NonStringKey)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, EncodeError> {
        Err(EncodeError::NonStringKey)
    }
    fn serialize_tuple_struct(
        self,
        _n: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeTupleStruct, EncodeError> {
        Err(EncodeError::NonStringKey)
    }
    fn serialize_tuple_variant(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeTupleVariant, EncodeError> {
        Err(EncodeError::NonStringKey)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, EncodeError> {
        Err(EncodeError::NonStringKey)
    }
    fn serialize_struct(
        self,
        _n: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeStruct, EncodeError> {
        Err(EncodeError::NonStringKey)
    }
    fn serialize_struct_variant(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeStructVariant, EncodeError> {
        Err(EncodeError::NonStringKey)
    }
    fn collect_str<T: core::fmt::Display + ?Sized>(self, value: &T) -> Result<(), EncodeError> {
        Ser { w: self.w }.collect_str(value)
    }
}
