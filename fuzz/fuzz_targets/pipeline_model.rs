#![no_main]
//! See `amplitude_core_fuzz::pipeline`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| amplitude_core_fuzz::pipeline::check(data));
