//! Runs a command and reports its resource usage, for the peer benchmark.
//!
//! `rusage OUT.json -- PROGRAM [ARGS...]` starts PROGRAM (stdio inherited), waits for it
//! with `wait4()` and writes `{"rc":…,"signal":…,"wall_s":…,"user_s":…,"sys_s":…,
//! "maxrss_kb":…}` to OUT.json, then exits with the program's exit code (128 + signal
//! if it was killed).
//!
//! Why a separate launcher: on Linux a child's `ru_maxrss` keeps the high-water mark
//! of the memory image it had before `exec`, i.e. a copy of its parent. Started from a
//! Python harness, every peer would report at least the harness's own RSS. Started from
//! this small process, the floor under the figure is a couple of MiB.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (out, cmd) = match args.split_first() {
        Some((out, rest)) if rest.first().map(String::as_str) == Some("--") && rest.len() > 1 => {
            (out.clone(), &rest[1..])
        }
        _ => {
            eprintln!("usage: rusage OUT.json -- PROGRAM [ARGS...]");
            std::process::exit(2);
        }
    };
    let t0 = Instant::now();
    let child = match Command::new(&cmd[0]).args(&cmd[1..]).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rusage: cannot start {:?}: {e}", cmd[0]);
            std::process::exit(127);
        }
    };
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value; wait4 fills it in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = loop {
        // SAFETY: `status` and `ru` are valid for writes; `pid` is our own child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    let wall = t0.elapsed().as_secs_f64();
    if r != pid {
        eprintln!("rusage: wait4 failed: {}", std::io::Error::last_os_error());
        std::process::exit(125);
    }
    let st = std::process::ExitStatus::from_raw(status);
    let (rc, sig) = match (st.code(), st.signal()) {
        (Some(c), _) => (c, 0),
        (None, Some(s)) => (128 + s, s),
        (None, None) => (125, 0),
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let json = format!(
        "{{\"rc\":{rc},\"signal\":{sig},\"wall_s\":{wall:.6},\"user_s\":{:.6},\"sys_s\":{:.6},\"maxrss_kb\":{}}}\n",
        tv(ru.ru_utime),
        tv(ru.ru_stime),
        ru.ru_maxrss
    );
    let written = std::fs::File::create(&out).and_then(|mut f| f.write_all(json.as_bytes()));
    if let Err(e) = written {
        eprintln!("rusage: cannot write {out}: {e}");
        std::process::exit(125);
    }
    std::process::exit(rc);
}
