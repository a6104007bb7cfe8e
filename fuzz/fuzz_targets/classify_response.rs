#![no_main]
//! See `amplitude_core_fuzz::classify`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| amplitude_core_fuzz::classify::check(data));
