//! Inputs found by the fuzz targets in `fuzz/` (see `fuzz/run.sh`), replayed as plain tests.

use amplitude_core::encode::{EncodeError, Rng, encode_event};
use amplitude_core::json::{JsonError, JsonWriter, MAX_DEPTH};
use amplitude_core::transport::parse_http_date;
use amplitude_core::validate::{Rule, Rules, validate};
use amplitude_core::{Event, RawJson, Value};

/// `levels` nested one-element lists around `inner` (leaked: a test's few bytes).
fn nest(levels: usize, inner: Value<'static>) -> Value<'static> {
    let mut v = inner;
    for _ in 0..levels {
        v = Value::List(Box::leak(vec![v].into_boxed_slice()));
    }
    v
}

fn brackets(n: usize) -> String {
    format!("{}{}", "[".repeat(n), "]".repeat(n))
}

/// encode_event found a property nested 58 deep: 28 borrowed lists around a typed value
/// nested 30 deep, each part within the limit of 40 alone. Raw and typed values now count
/// the depth they sit at.
#[test]
fn raw_json_nested_in_lists_counts_towards_the_depth_limit() {
    for (outer, inner, ok) in [
        (20, 20, true),
        (20, 21, false),
        (39, 1, true),
        (39, 2, false),
    ] {
        assert_eq!(outer + inner <= MAX_DEPTH, ok);
        let text = brackets(inner);
        let text: &'static str = Box::leak(text.into_boxed_str());
        let raw = RawJson::new(text).expect("within the limit on its own");
        let v = nest(outer, Value::Raw(raw));
        let ev: Event = Event::new("Deep").user_id("user-1234").property("p", v);
        let got = validate(&ev, &Rules::default()).map_err(|e| e.rule);
        assert_eq!(
            got,
            if ok { Ok(()) } else { Err(Rule::TooDeep) },
            "{outer}+{inner}"
        );
    }
}

#[test]
fn typed_value_nested_in_lists_counts_towards_the_depth_limit() {
    for (outer, inner, ok) in [
        (28, 12, true),
        (28, 30, false),
        (39, 1, true),
        (39, 2, false),
    ] {
        let typed: &'static serde_json::Value =
            Box::leak(Box::new(serde_json::from_str(&brackets(inner)).unwrap()));
        let v = nest(outer, Value::serde(typed));
        let ev: Event = Event::new("Deep").user_id("user-1234").property("p", v);
        assert_eq!(
            validate(&ev, &Rules::default()),
            Ok(()),
            "typed values are checked when encoded"
        );
        let mut buf = [0u8; 1024];
        let mut w = JsonWriter::new(&mut buf);
        let got = encode_event(&ev, &mut Rng::new(1), &mut w).map(|_| ());
        let want = if ok {
            Ok(())
        } else {
            Err(EncodeError::Limits(JsonError::TooDeep))
        };
        assert_eq!(got, want, "{outer}+{inner}");
    }
}

/// classify_response found `Sun, 06 Nov`1994 08:49:37 GMT` read as a date: the separators
/// around the month were not checked.
#[test]
fn http_date_needs_every_separator() {
    assert_eq!(
        parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(784_111_777_000)
    );
    for bad in [
        &b"Sun, 06 Nov`1994 08:49:37 GMT"[..],
        b"Sun, 06-Nov 1994 08:49:37 GMT",
        b"Sun, 06 Nov 1994T08:49:37 GMT",
        b"Sun, 06 Nov 1994 08-49:37 GMT",
    ] {
        assert_eq!(
            parse_http_date(bad),
            None,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}
