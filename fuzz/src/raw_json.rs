//! `raw_json`: [`validate_json`] / [`RawJson::new`] accept exactly what `serde_json`
//! accepts, within the limits (depth ≤ 40, strings ≤ 1024 characters, objects ≤ 1024
//! keys). When `serde_json` accepts and the core refuses, the refusal must be a limit
//! error for a limit the input really exceeds.

use std::fmt;

use amplitude_core::RawJson;
use amplitude_core::json::{
    JsonError, MAX_DEPTH, MAX_OBJECT_KEYS, MAX_STRING_CHARS, validate_json,
};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// What `serde_json` saw while parsing: the deepest nesting, the longest string (keys
/// included, in characters after unescaping) and the most members of one object
/// (duplicates counted).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Deepest nesting of arrays and objects (a top-level `[]` is 1).
    pub depth: usize,
    /// Longest string or key, in characters.
    pub longest_string: usize,
    /// Most members in one object.
    pub most_keys: usize,
}

impl Stats {
    /// Whether the text is within the core's limits.
    pub fn within_limits(&self) -> bool {
        self.depth <= MAX_DEPTH
            && self.longest_string <= MAX_STRING_CHARS
            && self.most_keys <= MAX_OBJECT_KEYS
    }
}

struct Measure<'s> {
    stats: &'s mut Stats,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Measure<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Measure<'_> {
    fn string(&mut self, s: &str) {
        let n = s.chars().count();
        self.stats.longest_string = self.stats.longest_string.max(n);
    }
    fn nest(&mut self) -> usize {
        let d = self.depth + 1;
        self.stats.depth = self.stats.depth.max(d);
        d
    }
}

impl<'de> Visitor<'de> for Measure<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(mut self, s: &str) -> Result<(), E> {
        self.string(s);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.nest();
        while seq
            .next_element_seed(Measure {
                stats: &mut *self.stats,
                depth,
            })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let depth = self.nest();
        let mut keys = 0usize;
        while map
            .next_key_seed(Measure {
                stats: &mut *self.stats,
                depth,
            })?
            .is_some()
        {
            keys += 1;
            map.next_value_seed(Measure {
                stats: &mut *self.stats,
                depth,
            })?;
        }
        self.stats.most_keys = self.stats.most_keys.max(keys);
        Ok(())
    }
}

/// Parse `text` with `serde_json` (exactly as `serde_json::from_slice::<Value>` would
/// accept it) and measure it.
pub fn measure(text: &[u8]) -> Result<Stats, serde_json::Error> {
    let mut stats = Stats::default();
    let mut de = serde_json::Deserializer::from_slice(text);
    Measure {
        stats: &mut stats,
        depth: 0,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(stats)
}

/// Check the core's verdict on `text` against `serde_json`'s. Panics on any disagreement.
pub fn check(text: &[u8]) {
    let ours = validate_json(text);
    let theirs = measure(text);
    match (&ours, &theirs) {
        (Ok(()), Ok(stats)) => assert!(
            stats.within_limits(),
            "accepted JSON that breaks a limit: {stats:?}"
        ),
        (Ok(()), Err(e)) => panic!("accepted what serde_json refuses: {e}"),
        (Err(JsonError::NumberOutOfRange { at }), Ok(_)) => {
            panic!("refused a number serde_json reads, at byte {at}")
        }
        (Err(JsonError::Syntax { at }), Ok(_)) => {
            panic!("refused valid JSON as a syntax error at byte {at}")
        }
        (Err(JsonError::TooDeep), Ok(s)) => assert!(s.depth > MAX_DEPTH, "TooDeep but {s:?}"),
        (Err(JsonError::StringTooLong), Ok(s)) => {
            assert!(
                s.longest_string > MAX_STRING_CHARS,
                "StringTooLong but {s:?}"
            )
        }
        (Err(JsonError::TooManyKeys), Ok(s)) => {
            assert!(s.most_keys > MAX_OBJECT_KEYS, "TooManyKeys but {s:?}")
        }
        (Err(_), Err(_)) => {}
    }
    if let Err(JsonError::Syntax { at }) = ours {
        assert!(at <= text.len(), "error offset {at} past the end");
    }
    if let Ok(s) = std::str::from_utf8(text) {
        match RawJson::new(s) {
            Ok(raw) => {
                assert!(
                    ours.is_ok(),
                    "RawJson::new accepted what validate_json refused"
                );
                let inner = raw.as_str();
                assert_eq!(inner, s.trim_matches([' ', '\t', '\n', '\r']));
                if theirs.is_ok() {
                    let a: serde_json::Value = serde_json::from_str(inner).expect("trimmed text");
                    let b: serde_json::Value = serde_json::from_slice(text).expect("accepted");
                    assert_eq!(a, b, "trimming changed the value");
                }
            }
            Err(e) => assert_eq!(Err(e), ours, "RawJson::new and validate_json disagree"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_pass() {
        for (name, data) in crate::seeds("raw_json") {
            eprintln!("{name}");
            check(&data);
        }
    }

    #[test]
    fn limits_are_measured_like_the_core_counts_them() {
        let s = measure(br#"[[{"a\u00e9":"\ud83d\ude00xy"}]]"#).unwrap();
        assert_eq!(
            s,
            Stats {
                depth: 3,
                longest_string: 3,
                most_keys: 1
            }
        );
        assert_eq!(measure(br#"{"a":1,"a":2}"#).unwrap().most_keys, 2);
    }

    #[test]
    fn limit_boundaries_agree() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        check(deep(40).as_bytes());
        check(deep(41).as_bytes());
        check(format!("\"{}\"", "é".repeat(1024)).as_bytes());
        check(format!("\"{}\"", "é".repeat(1025)).as_bytes());
        let obj = |n: usize| {
            let members: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{i}")).collect();
            format!("{{{}}}", members.join(","))
        };
        check(obj(1024).as_bytes());
        check(obj(1025).as_bytes());
    }
}
