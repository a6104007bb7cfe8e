//! Replay fuzz inputs without libFuzzer or sanitizers, with a full backtrace:
//!
//! ```text
//! cargo run --example replay -- <target> <file>...
//! ```

use amplitude_core_fuzz::{classify, encode, pipeline, raw_json};

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().expect("usage: replay <target> <file>...");
    let check: fn(&[u8]) = match target.as_str() {
        "classify_response" => classify::check,
        "encode_event" => encode::check,
        "raw_json" => raw_json::check,
        "pipeline_model" => pipeline::check,
        other => panic!("unknown target {other}"),
    };
    for file in args {
        let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        eprintln!("{file}: {} bytes", data.len());
        if std::env::var_os("SHOW").is_some() {
            match target.as_str() {
                "pipeline_model" => eprintln!("{:#?}", pipeline::decode(&data)),
                "encode_event" => eprintln!("{:#?}", encode::decode(&data)),
                "classify_response" => eprintln!("{:#?}", classify::decode(&data)),
                _ => eprintln!("{:?}", String::from_utf8_lossy(&data)),
            }
        }
        check(&data);
        eprintln!("{file}: ok");
    }
}
