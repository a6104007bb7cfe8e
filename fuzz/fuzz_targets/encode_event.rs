#![no_main]
//! See `amplitude_core_fuzz::encode`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| amplitude_core_fuzz::encode::check(data));
