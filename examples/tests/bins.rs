//! The quickstart and middleware examples run end to end against their in-process
//! local servers and check their own results (exit code 0 only when they hold).

use std::process::Command;

fn run(exe: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(exe)
        .args(args)
        .env_remove("AMPLITUDE_API_KEY")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn quickstart_delivers_every_accepted_event_to_the_local_server() {
    let (code, out) = run(env!("CARGO_BIN_EXE_quickstart"), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("[middleware] Node.js Event from datamonster@gmail.com"),
        "{out}"
    );
    assert!(
        out.contains("OK: every accepted event was delivered exactly once"),
        "{out}"
    );
    // The filtering middleware dropped the debug events.
    let filtered: u64 = out
        .lines()
        .find(|l| l.contains("filtered by middleware"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .expect("filtered count printed");
    assert!(filtered > 0, "{out}");
}

#[test]
fn quickstart_event_count_is_adjustable() {
    let (code, out) = run(env!("CARGO_BIN_EXE_quickstart"), &["--events", "10"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("logged 11 events"), "{out}");
}

#[test]
fn middleware_example_filters_modifies_and_routes_a_copy() {
    let (code, out) = run(env!("CARGO_BIN_EXE_middleware"), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("enriched and without IP: true"), "{out}");
    assert!(out.contains("all purchases: true"), "{out}");
}
