//! The classifier never panics, whatever a server (or a proxy) sends.

use amplitude_core::response::{Class, classify};
use proptest::prelude::*;

fn json_ish() -> impl Strategy<Value = Vec<u8>> {
    let atoms = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\\",
        "\\u00",
        "code",
        "\"code\"",
        "400",
        "-1",
        "1e999",
        "18446744073709551616",
        "\"throttled_devices\"",
        "\"events_with_invalid_fields\"",
        "\"throttled_events\"",
        "\"error\"",
        "\"Invalid API key\"",
        "\"missing_field\"",
        "\"silenced_devices\"",
        "null",
        "true",
        "\"exceeded_daily_quota_users\"",
        "{\"a\":[1,2]}",
        " ",
    ]);
    prop::collection::vec(atoms, 0..40).prop_map(|v| v.concat().into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_bytes(status in any::<u16>(), body in prop::collection::vec(any::<u8>(), 0..300)) {
        let c = classify(status, &body);
        if (200..300).contains(&status) {
            prop_assert_eq!(c.class, Class::Delivered);
        }
    }

    #[test]
    fn never_panics_on_json_shaped_noise(status in prop::sample::select(vec![200u16, 400, 413, 429, 500]), body in json_ish()) {
        let _ = classify(status, &body);
    }
}
