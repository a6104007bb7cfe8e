//! Checks behind the cargo-fuzz targets of `amplitude-core`.
//!
//! Each fuzz target in `fuzz_targets/` is one line calling a `check` function here, so the
//! same checks also run as ordinary tests (`cargo test` in this directory replays every
//! committed seed and regression input on stable Rust).
//!
//! - [`raw_json`]: the raw-JSON validator against `serde_json`.
//! - [`classify`]: arbitrary responses applied to a real client's batch.
//! - [`encode`]: arbitrary events encoded and read back with `serde_json`.
//! - [`pipeline`]: arbitrary operation sequences against a reference model.

pub mod classify;
pub mod encode;
pub mod owned;
pub mod pipeline;
pub mod raw_json;

/// Every file of `seeds/<target>` (sorted by name), for replaying a seed corpus in tests.
#[cfg(test)]
pub(crate) fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|f| {
            let f = f.unwrap().path();
            (f.display().to_string(), std::fs::read(&f).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}
