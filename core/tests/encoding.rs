//! Encoded events parse with `serde_json` and round-trip every field, for arbitrary
//! events with arbitrary Unicode and control characters.

use amplitude_core::encode::{LIBRARY, Rng, encode_event};
use amplitude_core::json::{JsonWriter, validate_json};
use amplitude_core::validate::{Rules, validate};
use amplitude_core::{Event, Identify, RawJson, Value};
use amplitude_mock::strategies::{OwnedEvent, owned_event, owned_value};
use proptest::prelude::*;

fn encode(e: &OwnedEvent) -> Option<serde_json::Value> {
    e.with_event(|ev| {
        validate(&ev, &Rules::default()).ok()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut w = JsonWriter::new(&mut buf);
        encode_event(&ev, &mut Rng::new(3), &mut w).expect("valid events encode");
        let text = w.as_bytes();
        assert_eq!(
            validate_json(text),
            Ok(()),
            "our validator accepts our output"
        );
        Some(serde_json::from_slice(text).expect("encoded events are valid JSON"))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn encoded_events_round_trip_every_field(e in owned_event()) {
        let Some(j) = encode(&e) else { return Ok(()) };
        prop_assert_eq!(j["event_type"].as_str(), Some(e.event_type.as_str()));
        prop_assert_eq!(j.get("user_id").and_then(|v| v.as_str()), e.user_id.as_deref());
        prop_assert_eq!(j.get("device_id").and_then(|v| v.as_str()), e.device_id.as_deref());
        prop_assert_eq!(j.get("time").and_then(|v| v.as_i64()), e.time);
        prop_assert_eq!(j.get("session_id").and_then(|v| v.as_i64()), e.session_id);
        match &e.insert_id {
            Some(id) => prop_assert_eq!(j["insert_id"].as_str(), Some(id.as_str())),
            None => {
                let id = j["insert_id"].as_str().unwrap();
                prop_assert_eq!(id.len(), 36);
                prop_assert_eq!(&id[14..15], "4");
            }
        }
        if let Some((lat, lng)) = e.location {
            prop_assert_eq!(j["location_lat"].as_f64(), Some(lat));
            prop_assert_eq!(j["location_lng"].as_f64(), Some(lng));
        }
        prop_assert_eq!(j.get("price").and_then(|v| v.as_f64()), e.price);
        for (f, v) in &e.strings {
            prop_assert_eq!(j[f.key()].as_str(), Some(v.as_str()));
        }
        prop_assert_eq!(j["library"].as_str(), Some(LIBRARY));
        for (k, v) in &e.event_properties {
            prop_assert_eq!(&j["event_properties"][k], &v.to_json());
        }
        if e.event_properties.is_empty() {
            prop_assert!(j.get("event_properties").is_none());
        }
        for (k, v) in &e.user_properties {
            prop_assert_eq!(&j["user_properties"][k], &v.to_json());
        }
        for (t, names) in &e.groups {
            let want = if names.len() == 1 { serde_json::json!(names[0]) } else { serde_json::json!(names) };
            prop_assert_eq!(&j["groups"][t], &want);
        }
    }

    #[test]
    fn strings_escape_exactly_like_serde_json(s in any::<String>()) {
        let mut buf = vec![0u8; s.len() * 6 + 2];
        let mut w = JsonWriter::new(&mut buf);
        w.str(&s).unwrap();
        let back: String = serde_json::from_slice(w.as_bytes()).unwrap();
        prop_assert_eq!(back, s);
    }

    #[test]
    fn raw_json_accepts_what_serde_json_accepts(v in owned_value()) {
        let text = serde_json::to_string(&v.to_json()).unwrap();
        prop_assert!(RawJson::new(&text).is_ok(), "{}", text);
    }

    #[test]
    fn raw_json_rejects_what_serde_json_rejects(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
        let ours = validate_json(&bytes).is_ok();
        let theirs = serde_json::from_slice::<serde_json::Value>(&bytes).is_ok();
        // Ours is stricter only on limits (depth, string length, key count), which short
        // random inputs cannot reach.
        prop_assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn typed_values_serialize_like_serde_json(v in owned_value()) {
        let mut buf = vec![0u8; 1 << 16];
        let mut w = JsonWriter::new(&mut buf);
        amplitude_core::ToJson::write_json(&v, &mut w).unwrap();
        let ours: serde_json::Value = serde_json::from_slice(w.as_bytes()).unwrap();
        prop_assert_eq!(ours, v.to_json());
    }
}

#[test]
fn identify_groups_operations_and_first_operation_wins() {
    let ev = Identify::<16>::new()
        .set("plan", "pro")
        .set_once("plan", "free")
        .add("logins", 1)
        .append("tags", "a")
        .unset("old")
        .user_id("user-1234")
        .into_event();
    let mut buf = [0u8; 1024];
    let mut w = JsonWriter::new(&mut buf);
    encode_event(&ev, &mut Rng::new(1), &mut w).unwrap();
    let j: serde_json::Value = serde_json::from_slice(w.as_bytes()).unwrap();
    assert_eq!(j["event_type"], "$identify");
    assert_eq!(
        j["user_properties"],
        serde_json::json!({"$set":{"plan":"pro"},"$add":{"logins":1},"$append":{"tags":"a"},"$unset":{"old":"-"}})
    );
    let cleared = Identify::<16>::new()
        .clear_all()
        .set("x", 1)
        .device_id("device-1")
        .into_event();
    let mut w = JsonWriter::new(&mut buf);
    encode_event(&cleared, &mut Rng::new(1), &mut w).unwrap();
    let j: serde_json::Value = serde_json::from_slice(w.as_bytes()).unwrap();
    assert_eq!(j["user_properties"], serde_json::json!({"$clearAll":"-"}));
}

#[test]
fn typed_struct_is_logged_as_event_properties() {
    #[derive(serde::Serialize)]
    struct ButtonClicked<'a> {
        button_color: &'a str,
        clicks: u32,
        initial: char,
        scores: std::collections::BTreeMap<u8, f32>,
    }
    let props = ButtonClicked {
        button_color: "red",
        clicks: 2,
        initial: 'é',
        scores: [(1, 0.5)].into(),
    };
    let ev: Event = Event::new("Button Clicked")
        .user_id("user-1234")
        .event_properties(Value::serde(&props))
        .property("extra", true);
    let mut buf = [0u8; 1024];
    let mut w = JsonWriter::new(&mut buf);
    encode_event(&ev, &mut Rng::new(1), &mut w).unwrap();
    let j: serde_json::Value = serde_json::from_slice(w.as_bytes()).unwrap();
    assert_eq!(
        j["event_properties"],
        serde_json::json!({"button_color":"red","clicks":2,"initial":"é","scores":{"1":0.5},"extra":true})
    );
}

#[test]
fn non_finite_floats_and_bad_keys_are_typed_errors_not_panics() {
    let nan = [f64::NAN];
    let ev: Event = Event::new("x")
        .user_id("user-1234")
        .property("v", Value::serde(&nan));
    let mut buf = [0u8; 512];
    let mut w = JsonWriter::new(&mut buf);
    assert_eq!(
        encode_event(&ev, &mut Rng::new(1), &mut w),
        Err(amplitude_core::encode::EncodeError::NonFiniteFloat)
    );
    let m: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
    let ev: Event = Event::new("x")
        .user_id("user-1234")
        .property("v", Value::serde(&m));
    let mut w = JsonWriter::new(&mut buf);
    assert_eq!(
        encode_event(&ev, &mut Rng::new(1), &mut w),
        Err(amplitude_core::encode::EncodeError::NonStringKey)
    );
    let ev: Event = Event::new("x")
        .user_id("user-1234")
        .property("v", f64::INFINITY);
    assert!(validate(&ev, &Rules::default()).is_err());
}
