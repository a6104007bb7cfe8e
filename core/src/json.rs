//! Compact JSON output into a caller-owned buffer, and a strict validator for
//! pre-encoded JSON.
//!
//! [`JsonWriter`] is the one place where JSON text is produced: string escaping, number
//! formatting and raw pass-through all live here. [`validate_json`] checks text that
//! users hand over as pre-encoded JSON (and the bodies typed events serialize to)
//! against the JSON grammar and the spec's limits.

use core::fmt;

/// The output buffer was too small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferFull;

impl fmt::Display for BufferFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("output buffer full")
    }
}

impl core::error::Error for BufferFull {}

/// Appends JSON tokens to a byte slice, tracking the written length.
///
/// ```
/// use amplitude_core::json::JsonWriter;
/// let mut buf = [0u8; 64];
/// let mut w = JsonWriter::new(&mut buf);
/// w.raw(b"{")?;
/// w.key_first("a\"b")?;
/// w.i64(-5)?;
/// w.raw(b"}")?;
/// assert_eq!(w.as_bytes(), br#"{"a\"b":-5}"#);
/// # Ok::<(), amplitude_core::json::BufferFull>(())
/// ```
pub struct JsonWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    /// Measure only: count the bytes, store nothing.
    counting: bool,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// For each byte: 0 = copy as is, otherwise the escape letter (`u` = `\u00XX`).
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

impl<'b> JsonWriter<'b> {
    /// A writer that fills `buf` from the start.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self {
            buf,
            len: 0,
            counting: false,
        }
    }

    /// A writer that only counts: it never fills up and stores nothing, so
    /// [`JsonWriter::as_bytes`] is empty. Used to size an event before making room for it.
    ///
    /// ```
    /// use amplitude_core::json::JsonWriter;
    /// let mut w = JsonWriter::counting();
    /// w.str("a\"b")?;
    /// assert_eq!(w.len(), 6);
    /// # Ok::<(), amplitude_core::json::BufferFull>(())
    /// ```
    pub fn counting() -> JsonWriter<'static> {
        JsonWriter {
            buf: &mut [],
            len: 0,
            counting: true,
        }
    }

    /// Whether this writer only counts (see [`JsonWriter::counting`]).
    pub fn is_counting(&self) -> bool {
        self.counting
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        if self.counting {
            &[]
        } else {
            &self.buf[..self.len]
        }
    }

    /// Forget everything after `len` bytes (used to undo a partial write).
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
        }
    }

    /// Append bytes as they are (they must already be valid JSON in context).
    #[inline]
    pub fn raw(&mut self, bytes: &[u8]) -> Result<(), BufferFull> {
        let end = self.len.checked_add(bytes.len()).ok_or(BufferFull)?;
        if self.counting {
            self.len = end;
            return Ok(());
        }
        let dst = self.buf.get_mut(self.len..end).ok_or(BufferFull)?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    #[inline]
    fn byte(&mut self, b: u8) -> Result<(), BufferFull> {
        if self.counting {
            self.len += 1;
            return Ok(());
        }
        let slot = self.buf.get_mut(self.len).ok_or(BufferFull)?;
        *slot = b;
        self.len += 1;
        Ok(())
    }

    /// Append `s` as a quoted, escaped JSON string.
    pub fn str(&mut self, s: &str) -> Result<(), BufferFull> {
        let bytes = s.as_bytes();
        let Some(first) = first_escape(bytes) else {
            // Nothing to escape (the usual case): one bounds check, one copy.
            return self.quoted(b"\"", bytes, b"\"");
        };
        self.byte(b'"')?;
        self.raw(&bytes[..first])?;
        let mut start = first;
        for (i, &b) in bytes.iter().enumerate().skip(first) {
            let esc = ESCAPE[b as usize];
            if esc == 0 {
                continue;
            }
            self.raw(&bytes[start..i])?;
            if esc == b'u' {
                self.raw(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 15) as usize],
                ])?;
            } else {
                self.raw(&[b'\\', esc])?;
            }
            start = i + 1;
        }
        self.raw(&bytes[start..])?;
        self.byte(b'"')
    }

    /// `open`, `bytes` and `close` in one go.
    #[inline]
    fn quoted(&mut self, open: &[u8], bytes: &[u8], close: &[u8]) -> Result<(), BufferFull> {
        let n = open.len() + bytes.len() + close.len();
        let end = self.len.checked_add(n).ok_or(BufferFull)?;
        if self.counting {
            self.len = end;
            return Ok(());
        }
        let dst = self.buf.get_mut(self.len..end).ok_or(BufferFull)?;
        let (a, rest) = dst.split_at_mut(open.len());
        a.copy_from_slice(open);
        let (b, c) = rest.split_at_mut(bytes.len());
        b.copy_from_slice(bytes);
        c.copy_from_slice(close);
        self.len = end;
        Ok(())
    }

    /// Append `,"key":` for a key that needs no escaping (the encoder's own field names).
    #[inline]
    pub(crate) fn key_plain(&mut self, key: &str) -> Result<(), BufferFull> {
        debug_assert!(first_escape(key.as_bytes()).is_none());
        self.quoted(b",\"", key.as_bytes(), b"\":")
    }

    /// Append `"key":` for a key that needs no escaping (first member of an object).
    #[inline]
    pub(crate) fn key_first_plain(&mut self, key: &str) -> Result<(), BufferFull> {
        debug_assert!(first_escape(key.as_bytes()).is_none());
        self.quoted(b"\"", key.as_bytes(), b"\":")
    }

    /// Append `"key":` (first member of an object: no leading comma).
    pub fn key_first(&mut self, key: &str) -> Result<(), BufferFull> {
        if first_escape(key.as_bytes()).is_none() {
            return self.quoted(b"\"", key.as_bytes(), b"\":");
        }
        self.str(key)?;
        self.byte(b':')
    }

    /// Append `,"key":`.
    pub fn key(&mut self, key: &str) -> Result<(), BufferFull> {
        if first_escape(key.as_bytes()).is_none() {
            return self.quoted(b",\"", key.as_bytes(), b"\":");
        }
        self.byte(b',')?;
        self.key_first(key)
    }

    /// Append a signed integer.
    pub fn i64(&mut self, v: i64) -> Result<(), BufferFull> {
        if v < 0 {
            self.byte(b'-')?;
        }
        self.u64(v.unsigned_abs())
    }

    /// Append an unsigned integer.
    pub fn u64(&mut self, mut v: u64) -> Result<(), BufferFull> {
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.raw(&tmp[i..])
    }

    /// Append a finite float in the shortest form that reads back the same value.
    /// Non-finite values have no JSON form and are written as `null` (validation rejects
    /// them before encoding).
    pub fn f64(&mut self, v: f64) -> Result<(), BufferFull> {
        if !v.is_finite() {
            return self.raw(b"null");
        }
        let mut b = ryu::Buffer::new();
        self.raw(b.format_finite(v).as_bytes())
    }

    /// Append `true` or `false`.
    pub fn bool(&mut self, v: bool) -> Result<(), BufferFull> {
        self.raw(if v { b"true" } else { b"false" })
    }
}

/// Index of the first byte of `bytes` that a JSON string must escape (control characters,
/// `"` and `\\`), checking eight bytes at a time.
#[inline]
fn first_escape(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Whether any byte of `x` is zero / below 0x20 (exact as a yes-or-no answer).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH != 0;
    let below_space = |x: u64| x.wrapping_sub(ONES * 0x20) & !x & HIGH != 0;
    let mut at = 0;
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        if below_space(x)
            || zero(x ^ (ONES * u64::from(b'"')))
            || zero(x ^ (ONES * u64::from(b'\\')))
        {
            break;
        }
        at += 8;
    }
    bytes[at..]
        .iter()
        .position(|&b| ESCAPE[usize::from(b)] != 0)
        .map(|i| at + i)
}

/// Why a piece of text is not acceptable JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum JsonError {
    /// Not valid JSON: the byte offset where parsing failed.
    Syntax {
        /// Byte offset of the first offending byte (or the end of input).
        at: usize,
    },
    /// Arrays and objects nest deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A string is longer than [`MAX_STRING_CHARS`] characters.
    StringTooLong,
    /// An object has more than [`MAX_OBJECT_KEYS`] keys.
    TooManyKeys,
    /// A number too large for a 64-bit float (`1e400`): JSON parsers refuse it.
    NumberOutOfRange {
        /// Byte offset where the number starts.
        at: usize,
    },
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::Syntax { at } => write!(f, "invalid JSON at byte {at}"),
            JsonError::TooDeep => write!(f, "JSON nests deeper than {MAX_DEPTH} levels"),
            JsonError::StringTooLong => {
                write!(f, "JSON string longer than {MAX_STRING_CHARS} characters")
            }
            JsonError::TooManyKeys => {
                write!(f, "JSON object with more than {MAX_OBJECT_KEYS} keys")
            }
            JsonError::NumberOutOfRange { at } => {
                write!(
                    f,
                    "JSON number at byte {at} is too large for a 64-bit float"
                )
            }
        }
    }
}

impl core::error::Error for JsonError {}

/// Deepest nesting of arrays and objects Amplitude accepts in properties.
pub const MAX_DEPTH: usize = 40;
/// Longest string value (in characters) Amplitude keeps.
pub const MAX_STRING_CHARS: usize = 1024;
/// Most keys an object may have.
pub const MAX_OBJECT_KEYS: usize = 1024;

/// Check that `text` is exactly one JSON value (RFC 8259; surrounding whitespace allowed)
/// within Amplitude's limits: depth ≤ 40, strings ≤ 1024 characters, objects ≤ 1024 keys.
///
/// ```
/// use amplitude_core::json::{validate_json, JsonError};
/// assert!(validate_json(br#"{"a":[1,2.5e3,true,null,"\u00e9"]}"#).is_ok());
/// assert_eq!(validate_json(b"[1,]"), Err(JsonError::Syntax { at: 3 }));
/// ```
pub fn validate_json(text: &[u8]) -> Result<(), JsonError> {
    validate_json_nested(text, 0)
}

/// [`validate_json`] for text that sits `depth` arrays/objects deep inside other JSON
/// (a raw or typed value inside a nested property): its own nesting counts on top, so the
/// whole stays within [`MAX_DEPTH`].
///
/// ```
/// use amplitude_core::json::{validate_json_nested, JsonError, MAX_DEPTH};
/// assert_eq!(validate_json_nested(b"[[]]", MAX_DEPTH - 2), Ok(()));
/// assert_eq!(validate_json_nested(b"[[]]", MAX_DEPTH - 1), Err(JsonError::TooDeep));
/// ```
pub fn validate_json_nested(text: &[u8], depth: usize) -> Result<(), JsonError> {
    let mut p = Scanner { s: text, i: 0 };
    p.ws();
    p.value(depth)?;
    p.ws();
    if p.i != text.len() {
        return Err(p.err());
    }
    Ok(())
}

struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn err(&self) -> JsonError {
        JsonError::Syntax { at: self.i }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn lit(&mut self, word: &[u8]) -> Result<(), JsonError> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err())
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), JsonError> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string(),
            Some(b't') => self.lit(b"true"),
            Some(b'f') => self.lit(b"false"),
            Some(b'n') => self.lit(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err()),
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        self.i += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        let mut keys = 0usize;
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err());
            }
            self.string()?;
            keys += 1;
            if keys > MAX_OBJECT_KEYS {
                return Err(JsonError::TooManyKeys);
            }
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err());
            }
            self.i += 1;
            self.ws();
            self.value(depth)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err()),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        self.i += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            self.value(depth)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err()),
            }
        }
    }

    fn hex4(&mut self) -> Result<u16, JsonError> {
        let mut v = 0u16;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return Err(self.err()),
            };
            v = (v << 4) | u16::from(d);
            self.i += 1;
        }
        Ok(v)
    }

    /// A string: valid UTF-8, no raw control characters, valid escapes (surrogates paired).
    fn string(&mut self) -> Result<(), JsonError> {
        self.i += 1;
        let mut chars = 0usize;
        loop {
            let Some(b) = self.peek() else {
                return Err(self.err());
            };
            match b {
                b'"' => {
                    self.i += 1;
                    return if chars > MAX_STRING_CHARS {
                        Err(JsonError::StringTooLong)
                    } else {
                        Ok(())
                    };
                }
                b'\\' => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            self.i += 1;
                            let u = self.hex4()?;
                            if (0xD800..0xDC00).contains(&u) {
                                // A high surrogate must be followed by an escaped low one.
                                self.lit(b"\\u")?;
                                let at = self.i;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(JsonError::Syntax { at });
                                }
                            } else if (0xDC00..0xE000).contains(&u) {
                                return Err(JsonError::Syntax { at: self.i - 4 });
                            }
                        }
                        _ => return Err(self.err()),
                    }
                }
                0x00..=0x1f => return Err(self.err()),
                0x20..=0x7f => self.i += 1,
                _ => {
                    let width = match b {
                        0xC2..=0xDF => 2,
                        0xE0..=0xEF => 3,
                        0xF0..=0xF4 => 4,
                        _ => return Err(self.err()),
                    };
                    let end = self.i + width;
                    let seq = self.s.get(self.i..end).ok_or(self.err())?;
                    if core::str::from_utf8(seq).is_err() {
                        return Err(self.err());
                    }
                    self.i = end;
                }
            }
            chars += 1;
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<(), JsonError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let int_start = self.i;
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err()),
        }
        let int = int_start..self.i;
        let mut frac = self.i..self.i;
        if self.peek() == Some(b'.') {
            self.i += 1;
            let f = self.i;
            if self.digits() == 0 {
                return Err(self.err());
            }
            frac = f..self.i;
        }
        let mut exp: i64 = 0;
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            let negative = self.peek() == Some(b'-');
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            let e = self.i;
            if self.digits() == 0 {
                return Err(self.err());
            }
            for &d in &self.s[e..self.i] {
                exp = (exp * 10 + i64::from(d - b'0')).min(1 << 40);
            }
            if negative {
                exp = -exp;
            }
        }
        if overflows_f64(&self.s[int], &self.s[frac], exp) {
            return Err(JsonError::NumberOutOfRange { at: start });
        }
        Ok(())
    }
}

/// Digits of the smallest decimal that rounds to infinity as an `f64`
/// (2^1024 − 2^970, halfway between `f64::MAX` and 2^1024), times 10^-308.
const F64_OVERFLOW: &[u8] = b"179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792";

/// Whether the number `int.frac × 10^exp` is too large for an `f64` (JSON parsers such as
/// serde_json refuse it; small ones just become 0).
fn overflows_f64(int: &[u8], frac: &[u8], exp: i64) -> bool {
    // Significant digits and the decimal exponent of the first one.
    let int_sig = int.iter().position(|&d| d != b'0').map(|p| &int[p..]);
    let (first_exp, lead_frac) = match int_sig {
        Some(digits) => (digits.len() as i64 - 1, 0),
        None => match frac.iter().position(|&d| d != b'0') {
            Some(p) => (-(p as i64) - 1, p),
            None => return false, // zero
        },
    };
    let e10 = first_exp + exp;
    if e10 != 308 {
        return e10 > 308;
    }
    let digits = int_sig
        .unwrap_or(&[])
        .iter()
        .chain(&frac[lead_frac..])
        .copied();
    let mut digits = digits.chain(core::iter::repeat(b'0'));
    for &limit in F64_OVERFLOW {
        let d = digits.next().unwrap_or(b'0');
        if d != limit {
            return d > limit;
        }
    }
    true // exactly halfway: rounds to even, which is 2^1024
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &str) -> heapless::Vec<u8, 256> {
        let mut buf = [0u8; 256];
        let mut w = JsonWriter::new(&mut buf);
        w.str(s).unwrap();
        heapless::Vec::from_slice(w.as_bytes()).unwrap()
    }

    #[test]
    fn escapes_quotes_backslashes_and_control_characters() {
        assert_eq!(&enc("a\"b\\c")[..], br#""a\"b\\c""#);
        assert_eq!(&enc("\n\t\r\u{8}\u{c}")[..], br#""\n\t\r\b\f""#);
        assert_eq!(&enc("\u{0}\u{1f}")[..], br#""\u0000\u001f""#);
        assert_eq!(&enc("é✓😀")[..], "\"é✓😀\"".as_bytes());
    }

    #[test]
    fn word_at_a_time_scan_finds_the_first_byte_to_escape() {
        let naive = |b: &[u8]| b.iter().position(|&c| ESCAPE[usize::from(c)] != 0);
        for fill in [b'a', 0x7f, 0x80, 0xff, b'!', b'#', b'[', b']'] {
            for len in 0..20 {
                let mut buf = [fill; 20];
                assert_eq!(first_escape(&buf[..len]), naive(&buf[..len]));
                for at in 0..len {
                    for c in 0u8..=255 {
                        buf[at] = c;
                        assert_eq!(
                            first_escape(&buf[..len]),
                            naive(&buf[..len]),
                            "{c:#x} at {at}"
                        );
                        buf[at] = fill;
                    }
                }
            }
        }
    }

    #[test]
    fn numbers_are_shortest_round_trip_forms() {
        let mut buf = [0u8; 64];
        let mut w = JsonWriter::new(&mut buf);
        w.i64(i64::MIN).unwrap();
        w.raw(b" ").unwrap();
        w.f64(0.1).unwrap();
        w.raw(b" ").unwrap();
        w.f64(-1e300).unwrap();
        assert_eq!(w.as_bytes(), b"-9223372036854775808 0.1 -1e300");
    }

    #[test]
    fn numbers_too_large_for_f64_are_refused_like_serde_json_does() {
        for bad in [&b"1e400"[..], b"-2e308", b"1.7976931348623159e308", b"179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792", b"0.00001e314"] {
            assert!(matches!(validate_json(bad), Err(JsonError::NumberOutOfRange { .. })), "{:?}", core::str::from_utf8(bad));
        }
        for good in [&b"1.7976931348623157e308"[..], b"1.7976931348623158e308", b"1e-400", b"0e999999", b"0.0", b"179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497791"] {
            assert_eq!(validate_json(good), Ok(()), "{:?}", core::str::from_utf8(good));
        }
    }

    #[test]
    fn full_buffer_is_reported_not_overrun() {
        let mut buf = [0u8; 3];
        let mut w = JsonWriter::new(&mut buf);
        assert_eq!(w.str("abcd"), Err(BufferFull));
    }

    #[test]
    fn validator_rejects_what_json_rejects() {
        for bad in [
            &b""[..],
            b"01",
            b"1.",
            b".5",
            b"-",
            b"1e",
            b"tru",
            b"[1 2]",
            b"{\"a\" 1}",
            b"{a:1}",
            b"\"\x01\"",
            b"\"\\x\"",
            b"\"\\ud800\"",
            b"\"\\udc00\"",
            b"\"\xff\"",
            b"{} {}",
            b"[",
            b"\"abc",
        ] {
            assert!(
                validate_json(bad).is_err(),
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
        for good in [
            &b" 0 "[..],
            b"-0.0e+5",
            b"\"\\ud83d\\ude00\"",
            b"[[],{}]",
            b"{\"\":null}",
        ] {
            assert_eq!(validate_json(good), Ok(()));
        }
    }

    #[test]
    fn validator_enforces_limits() {
        let mut deep = [b'['; 82];
        deep[41..].fill(b']');
        assert_eq!(validate_json(&deep[..]), Err(JsonError::TooDeep));
        let ok = &deep[1..81];
        assert_eq!(validate_json(ok), Ok(()));
    }
}
