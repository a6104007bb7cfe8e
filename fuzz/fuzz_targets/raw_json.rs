#![no_main]
//! See `amplitude_core_fuzz::raw_json`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| amplitude_core_fuzz::raw_json::check(data));
