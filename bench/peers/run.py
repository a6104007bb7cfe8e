#!/usr/bin/env python3
"""Peer comparison benchmark: the official Amplitude SDKs, a no-SDK floor and `send`.

One command does everything:

    python3 bench/peers/run.py            # or bench/peers/run.sh

1. generates 100,000 deterministic events (NDJSON) in bench/peers/work/;
2. builds the local counting sink and the floor client (bench/peers/sink, release),
   installs the pinned Node SDKs (`npm ci`) and the pinned Python SDK (venv in work/);
3. inside a fresh network namespace with only loopback (when `unshare` allows it),
   starts the sink on 127.0.0.1 and runs every peer against it, 3 times, then runs
   each peer's "hold" mode (events queued, nothing flushed) to measure memory per
   queued event;
4. writes bench/peers/results.md, results.svg and results.json, and prints the table.

Only the standard library is used. Nothing is sent anywhere but 127.0.0.1; the
installs (step 2) use the package registries through npm, pip and cargo.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import http.client
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORK = HERE / "work"
LOGS = WORK / "logs"
EVENTS = WORK / "events.ndjson"
EVENTS_META = WORK / "events.meta.json"
SINK_DIR = HERE / "sink"
SINK_BIN = SINK_DIR / "target" / "release" / "peer-bench-sink"
FLOOR_BIN = SINK_DIR / "target" / "release" / "floor"
RUSAGE_BIN = SINK_DIR / "target" / "release" / "rusage"
NODE_DIR = HERE / "node"
PY_DIR = HERE / "python"
VENV = WORK / "venv"
VENV_PY = VENV / "bin" / "python"
DEFAULT_SEND = REPO / "target" / "release" / "send"

API_KEY = "peer-bench-key"
FLUSH_SIZE = 1000
CLK_TCK = os.sysconf("SC_CLK_TCK")

sys.path.insert(0, str(HERE))
import events as events_mod  # noqa: E402  (the generator beside this file)


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which and why."""


def log(msg: str) -> None:
    print(f"[peers] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- setup


def run_step(what: str, argv: list[str], cwd: Path | None = None, env: dict | None = None) -> str:
    log(f"{what}: {' '.join(str(a) for a in argv)}")
    try:
        p = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except FileNotFoundError as e:
        raise BenchError(f"{what}: {e}") from e
    if p.returncode != 0:
        tail = "\n".join(p.stdout.strip().splitlines()[-25:])
        raise BenchError(f"{what} failed (exit {p.returncode}):\n{tail}")
    return p.stdout


def ensure_events(n: int) -> dict:
    WORK.mkdir(parents=True, exist_ok=True)
    if EVENTS.exists() and EVENTS_META.exists():
        try:
            meta = json.loads(EVENTS_META.read_text())
            if (meta.get("events") == n and meta.get("seed") == events_mod.SEED
                    and meta.get("file_bytes") == EVENTS.stat().st_size):
                log(f"events: reusing {EVENTS} ({n} events)")
                return meta
        except (ValueError, OSError):
            pass
    log(f"events: generating {n} events into {EVENTS}")
    meta = events_mod.write_ndjson(str(EVENTS), n_events=n)
    meta["file_bytes"] = EVENTS.stat().st_size
    EVENTS_META.write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def ensure_sink() -> None:
    if not shutil.which("cargo"):
        raise BenchError("cargo not found: needed to build the sink (bench/peers/sink)")
    run_step("build sink + floor", ["cargo", "build", "--release", "--locked", "--quiet",
                                    "--manifest-path", SINK_DIR / "Cargo.toml"])
    for b in (SINK_BIN, FLOOR_BIN, RUSAGE_BIN):
        if not b.exists():
            raise BenchError(f"build finished but {b} is missing")


def pinned_node_versions() -> dict[str, str]:
    return json.loads((NODE_DIR / "package.json").read_text())["dependencies"]


def installed_node_version(pkg: str) -> Optional[str]:
    pj = NODE_DIR / "node_modules" / pkg / "package.json"
    try:
        return json.loads(pj.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def ensure_node() -> None:
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            raise BenchError(f"{tool} not found: needed for the Node SDK peers")
    want = pinned_node_versions()
    if all(installed_node_version(k) == v for k, v in want.items()):
        log("node: pinned SDKs already installed")
        return
    run_step("install Node SDKs", ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
             cwd=NODE_DIR)
    bad = {k: installed_node_version(k) for k, v in want.items() if installed_node_version(k) != v}
    if bad:
        raise BenchError(f"npm ci did not install the pinned versions: {bad}")


def pinned_python() -> tuple[str, str]:
    for line in (PY_DIR / "requirements.txt").read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.-]+)==([^\s#]+)", line)
        if m:
            return m.group(1), m.group(2)
    raise BenchError("python/requirements.txt pins no package")


def installed_python_version(pkg: str) -> Optional[str]:
    if not VENV_PY.exists():
        return None
    p = subprocess.run([str(VENV_PY), "-c",
                        f"import importlib.metadata as m; print(m.version({pkg!r}))"],
                       text=True, capture_output=True)
    return p.stdout.strip() if p.returncode == 0 else None


def ensure_python() -> None:
    pkg, ver = pinned_python()
    if installed_python_version(pkg) == ver:
        log(f"python: {pkg}=={ver} already in {VENV}")
        return
    if not VENV_PY.exists():
        run_step("create venv", [sys.executable, "-m", "venv", VENV])
    run_step("install Python SDK", [VENV_PY, "-m", "pip", "install", "--quiet",
                                    "--disable-pip-version-check", "-r", PY_DIR / "requirements.txt"])
    if installed_python_version(pkg) != ver:
        raise BenchError(f"pip did not install {pkg}=={ver}")


# --------------------------------------------------------------------------- peers


@dataclass
class Peer:
    key: str
    label: str
    version: str
    argv: Callable[[str, Path], list[str]]
    hold_argv: Optional[Callable[[Path], list[str]]] = None
    unavailable: Optional[str] = None  # reason the peer cannot run (row still shown)
    hold_na: str = "n/a"  # shown instead of bytes per queued event when there is no hold mode
    settings: str = ""
    notes: list[str] = field(default_factory=list)


def clean_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "node_options")}
    env["NO_PROXY"] = env["no_proxy"] = "*"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def tool_version(argv: list[str]) -> str:
    try:
        p = subprocess.run(argv, text=True, capture_output=True, timeout=10)
        out = (p.stdout or p.stderr).strip().splitlines()
        return out[0] if p.returncode == 0 and out else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def build_peers(args) -> list[Peer]:
    node = shutil.which("node") or "node"
    an_v = installed_node_version("@amplitude/analytics-node") or "?"
    an_core = installed_node_version("@amplitude/analytics-core") or "?"
    on_v = installed_node_version("@amplitude/node") or "?"
    py_pkg, _ = pinned_python()
    py_v = installed_python_version(py_pkg) or "?"
    peers: list[Peer] = []

    for k in args.floor_in_flight:
        peers.append(Peer(
            key=f"floor-{k}", label=f"floor (no SDK, {k} in flight)", version="-",
            argv=lambda url, inp, k=k: [FLOOR_BIN, "--url", url, "--input", inp,
                                        "--api-key", API_KEY, "--batch", FLUSH_SIZE,
                                        "--in-flight", k],
            settings=f"pre-built bodies of {FLUSH_SIZE} events, keep-alive, {k} request(s) in flight",
            hold_na="n/a (no queue)",
        ))

    flush_every = [False, True] if args.analytics_node_manual_flush else [False]
    for manual in flush_every:
        extra = ["--flush-every", str(FLUSH_SIZE)] if manual else []
        peers.append(Peer(
            key="analytics-node" + ("-manual" if manual else ""),
            label="@amplitude/analytics-node" + (" + flush() every 1000" if manual else ""),
            version=f"{an_v} (core {an_core})",
            argv=lambda url, inp, extra=extra: [node, NODE_DIR / "analytics_node.js", "--url", url,
                                                "--input", inp, "--api-key", API_KEY,
                                                "--flush-size", FLUSH_SIZE, *extra],
            hold_argv=None if manual else (lambda inp: [node, "--expose-gc", NODE_DIR / "analytics_node.js",
                                                        "--hold", "--input", inp]),
            hold_na="same SDK as the row above",
            settings=("flushQueueSize 1000, flushIntervalMillis 3,600,000"
                      + ("; the driver awaits flush() after every 1000 track() calls" if manual
                         else "; one flush() after the last track()")),
        ))
    peers.append(Peer(
        key="amplitude-node", label="@amplitude/node (older SDK)", version=on_v,
        argv=lambda url, inp: [node, NODE_DIR / "amplitude_node.js", "--url", url, "--input", inp,
                               "--api-key", API_KEY, "--flush-size", FLUSH_SIZE],
        hold_argv=lambda inp: [node, "--expose-gc", NODE_DIR / "amplitude_node.js", "--hold",
                               "--input", inp],
        settings="maxCachedEvents 1000 (flushes when reached), uploadIntervalInSec 3600",
    ))
    peers.append(Peer(
        key="python", label="amplitude-analytics (Python)", version=py_v,
        argv=lambda url, inp: [VENV_PY, PY_DIR / "driver.py", "--url", url, "--input", inp,
                               "--api-key", API_KEY, "--flush-size", FLUSH_SIZE],
        hold_argv=lambda inp: [VENV_PY, PY_DIR / "driver.py", "--hold", "--input", inp],
        settings="flush_queue_size 1000, flush_interval_millis 3,600,000",
    ))

    send = Path(args.send)
    send_unavailable = None
    send_version = "-"
    if not send.exists():
        send_unavailable = f"not built ({send} missing; `cargo build --release` in the workspace)"
    elif not os.access(send, os.X_OK):
        send_unavailable = f"{send} is not executable"
    else:
        send_version = tool_version([str(send), "--version"])
        if send_version == "?":
            send_version = "workspace " + tool_version(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    peers.append(Peer(
        key="send", label="send (this project)", version=send_version,
        argv=lambda url, inp: [send, "--api-key", API_KEY, "--server-url", url,
                               "--flush-queue-size", FLUSH_SIZE, "--input", inp],
        # `send --hold` queues every event with sending off and prints
        # {"held":N,"rss_before_kb":A,"rss_after_kb":B}.
        hold_argv=lambda inp: [send, "--api-key", API_KEY, "--hold", "--input", inp],
        unavailable=send_unavailable,
        settings="--flush-queue-size 1000, every other option at its default (its flush interval "
                 "and in-flight limit are its own; a run takes well under its 10 s default interval)",
    ))
    if args.peers:
        wanted = set(args.peers)
        unknown = wanted - {p.key for p in peers}
        if unknown:
            raise BenchError(f"unknown peer(s) {sorted(unknown)}; known: {[p.key for p in peers]}")
        peers = [p for p in peers if p.key in wanted]
    return peers


# --------------------------------------------------------------------------- processes

_children: dict[int, subprocess.Popen] = {}
_children_lock = threading.Lock()


def _track(p: subprocess.Popen) -> None:
    with _children_lock:
        _children[p.pid] = p


def _untrack(p: subprocess.Popen) -> None:
    with _children_lock:
        _children.pop(p.pid, None)


def kill_children() -> None:
    """Ends and reaps every process group this harness started (each child leads one).

    Polls with WNOHANG instead of Popen.wait(): this also runs from a signal handler
    that may have interrupted a Popen.wait() holding that Popen's lock."""
    with _children_lock:
        procs = list(_children.values())
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    pending = list(procs)
    deadline = time.monotonic() + 3
    while pending:
        for p in list(pending):
            try:
                pid, _ = os.waitpid(p.pid, os.WNOHANG)
            except ChildProcessError:
                pid = p.pid
            if pid != 0:
                pending.remove(p)
                _untrack(p)
        if not pending:
            break
        if time.monotonic() > deadline:
            for p in pending:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    os.waitpid(p.pid, 0)
                except ChildProcessError:
                    pass
                _untrack(p)
            break
        time.sleep(0.02)


def _on_signal(signum, _frame):
    kill_children()
    raise SystemExit(128 + signum)


@dataclass
class Measured:
    rc: Optional[int]
    wall_s: float
    user_s: float
    sys_s: float
    maxrss_kb: int
    timed_out: bool
    stdout: str
    stderr_tail: str

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    def summary(self) -> Optional[dict]:
        for line in reversed(self.stdout.strip().splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    return None
        return None


def run_measured(argv: list, name: str, timeout_s: float) -> Measured:
    """Runs argv to completion under the `rusage` launcher (see sink/src/bin/rusage.rs):
    wall time, user+sys CPU and max RSS of the program come from its wait4()."""
    LOGS.mkdir(parents=True, exist_ok=True)
    out_path, err_path = LOGS / f"{name}.stdout", LOGS / f"{name}.stderr"
    ru_path = LOGS / f"{name}.rusage.json"
    ru_path.unlink(missing_ok=True)
    with open(out_path, "w") as out, open(err_path, "w") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen([str(RUSAGE_BIN), str(ru_path), "--", *[str(a) for a in argv]],
                             stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                             env=clean_env(), cwd=str(WORK), start_new_session=True)
        _track(p)
        timed_out = threading.Event()

        def on_timeout():
            timed_out.set()
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout_s, on_timeout)
        timer.start()
        try:
            p.wait()
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        _untrack(p)
        # The program's own children (none expected) could outlive it; end the group.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    stderr = err_path.read_text(errors="replace")
    try:
        ru = json.loads(ru_path.read_text())
    except (OSError, ValueError):
        ru = {"rc": p.returncode, "wall_s": wall, "user_s": 0.0, "sys_s": 0.0, "maxrss_kb": 0}
    return Measured(rc=ru["rc"], wall_s=ru["wall_s"], user_s=ru["user_s"], sys_s=ru["sys_s"],
                    maxrss_kb=ru["maxrss_kb"], timed_out=timed_out.is_set(),
                    stdout=out_path.read_text(errors="replace"),
                    stderr_tail="\n".join(stderr.strip().splitlines()[-8:]))


class Sink:
    def __init__(self, threads: int):
        LOGS.mkdir(parents=True, exist_ok=True)
        self.err = open(LOGS / "sink.stderr", "w")
        self.proc = subprocess.Popen([str(SINK_BIN), "--port", "0", "--threads", str(threads)],
                                     stdout=subprocess.PIPE, stderr=self.err, stdin=subprocess.DEVNULL,
                                     start_new_session=True, env=clean_env())
        _track(self.proc)
        line = b""
        deadline = time.monotonic() + 10
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise BenchError(f"sink did not start (exit {self.proc.poll()}); see {LOGS / 'sink.stderr'}")
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                ch = os.read(self.proc.stdout.fileno(), 1)
                if not ch:
                    continue
                line += ch
        m = re.match(r"LISTENING 127\.0\.0\.1:(\d+)", line.decode())
        if not m:
            raise BenchError(f"unexpected sink banner {line!r}")
        self.port = int(m.group(1))
        self.url = f"http://127.0.0.1:{self.port}/2/httpapi"

    def _call(self, method: str, path: str) -> dict:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request(method, path)
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                raise BenchError(f"sink {method} {path}: HTTP {r.status}")
            return json.loads(body)
        finally:
            c.close()

    def stats(self) -> dict:
        return self._call("GET", "/stats")

    def reset(self) -> dict:
        return self._call("POST", "/reset")

    def cpu_s(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # fields[0] is the state (field 3 of stat); utime/stime are fields 14/15.
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        _untrack(self.proc)
        self.err.close()


# --------------------------------------------------------------------------- measuring


def throughput_run(peer: Peer, sink: Sink, run_no: int, n: int, timeout_s: float) -> dict:
    sink.reset()
    cpu0 = sink.cpu_s()
    m = run_measured(peer.argv(sink.url, EVENTS), f"{peer.key}.run{run_no}", timeout_s)
    # Responses are counted before they are sent, so the counters are final once the
    # client has exited; a short settle covers requests a killed client left behind.
    time.sleep(0.05)
    cpu1 = sink.cpu_s()
    st = sink.stats()
    unique = st["events"] - st["duplicate_events"]
    rec = {
        "peer": peer.key, "run": run_no, "rc": m.rc, "timed_out": m.timed_out,
        "wall_s": m.wall_s, "user_s": m.user_s, "sys_s": m.sys_s, "cpu_s": m.cpu_s,
        "maxrss_kb": m.maxrss_kb, "sink_cpu_s": cpu1 - cpu0,
        "received": st["events"], "unique": unique, "duplicates": st["duplicate_events"],
        "missing": max(0, n - unique), "requests": st["requests"],
        # The harness's own GET /stats opened one of the counted connections.
        "bad_requests": st["bad_requests"], "connections": max(0, st["connections"] - 1),
        "max_in_flight": st["max_in_flight"], "body_bytes": st["body_bytes"],
        "gzip_requests": st["gzip_requests"],
        "events_per_s": unique / m.wall_s if m.wall_s > 0 else 0.0,
        "summary": m.summary(),
    }
    ok = m.rc == 0 and not m.timed_out
    if not ok:
        why = f"timed out after {timeout_s:.0f}s" if m.timed_out else f"exit {m.rc}"
        rec["error"] = f"{why}: {m.stderr_tail}"
    log(f"{peer.key} run {run_no}: {'ok' if ok else 'FAILED ' + rec['error'].splitlines()[0]}; "
        f"{unique}/{n} events ({st['duplicate_events']} dup) in {m.wall_s:.2f}s, "
        f"cpu {m.cpu_s:.2f}s, maxrss {m.maxrss_kb / 1024:.0f} MiB, sink cpu {cpu1 - cpu0:.2f}s, "
        f"{st['requests']} req / {rec['connections']} conn / max {st['max_in_flight']} in flight")
    return rec


def hold_run(peer: Peer, run_no: int, mean_event_bytes: float, timeout_s: float) -> dict:
    m = run_measured(peer.hold_argv(EVENTS), f"{peer.key}.hold{run_no}", timeout_s)
    s = m.summary() or {}
    rec = {"peer": peer.key, "run": run_no, "rc": m.rc, "timed_out": m.timed_out,
           "wall_s": m.wall_s, "maxrss_kb": m.maxrss_kb, "summary": s}
    try:
        held = int(s["held"])
        growth_kb = int(s["rss_after_kb"]) - int(s["rss_before_kb"])
        rec.update(held=held, growth_kb=growth_kb, bytes_per_event=growth_kb * 1024 / held,
                   ratio_to_json=(growth_kb * 1024 / held) / mean_event_bytes)
    except (KeyError, ValueError, TypeError, ZeroDivisionError):
        rec["error"] = f"no hold summary (exit {m.rc}{', timed out' if m.timed_out else ''}): {m.stderr_tail}"
    if m.rc != 0 and "error" not in rec:
        rec["error"] = f"exit {m.rc}: {m.stderr_tail}"
    log(f"{peer.key} hold {run_no}: " + (f"FAILED {rec['error'].splitlines()[0]}" if "error" in rec else
                                          f"{rec['bytes_per_event']:.0f} B/event held "
                                          f"({rec['ratio_to_json']:.1f}x its JSON), {m.wall_s:.1f}s"))
    return rec


# --------------------------------------------------------------------------- reporting


def med_range(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def fmt_num(x: float, digits: int = 0) -> str:
    if x >= 100 or digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def fmt_mr(values: list[float], digits: int = 2, scale: float = 1.0) -> str:
    if not values:
        return "–"
    vs = [v * scale for v in values]
    med, lo, hi = med_range(vs)
    if len(vs) == 1:
        return fmt_num(med, digits)
    return f"{fmt_num(med, digits)} ({fmt_num(lo, digits)}–{fmt_num(hi, digits)})"


def aggregate(peers: list[Peer], runs: list[dict], holds: list[dict]) -> list[dict]:
    rows = []
    for p in peers:
        rs = [r for r in runs if r["peer"] == p.key]
        good = [r for r in rs if "error" not in r]
        hs = [h for h in holds if h["peer"] == p.key and "error" not in h]
        rows.append({
            "peer": p, "runs": rs, "good": good, "holds": hs,
            "failed": [r for r in rs if "error" in r],
            "hold_failed": [h for h in holds if h["peer"] == p.key and "error" in h],
        })
    return rows


def markdown(rows: list[dict], meta: dict, env: dict, args) -> str:
    n = meta["events"]
    L = []
    L.append("# Peer comparison: official Amplitude SDKs vs. a no-SDK floor vs. `send`\n")
    L.append(f"Generated by `bench/peers/run.py` on {env['date']}. "
             f"{n:,} events ({meta['users']:,} users, mean {meta['mean_event_bytes']:.0f} bytes of JSON "
             f"per event, SHA-256 `{meta['sha256'][:16]}…`), batches of {FLUSH_SIZE}, "
             f"{args.runs} run(s) per peer; cells show the median and, in brackets, the range.\n")
    L.append("| peer | version | events/s | wall s | CPU s (user+sys) | peak RSS MiB | sink CPU s | "
             "bytes per queued event | delivered | requests / connections / max in flight |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    for row in rows:
        p = row["peer"]
        if p.unavailable:
            L.append(f"| {p.label} | {p.version} | {p.unavailable} | | | | | | | |")
            continue
        g = row["good"]
        if not g:
            err = row["failed"][0]["error"].splitlines()[0] if row["failed"] else "not run"
            L.append(f"| {p.label} | {p.version} | FAILED: {err} | | | | | | | |")
            continue
        hold = fmt_mr([h["bytes_per_event"] for h in row["holds"]], 0) if row["holds"] else (
            "failed" if row["hold_failed"] else p.hold_na)
        if row["holds"]:
            ratio = statistics.median(h["ratio_to_json"] for h in row["holds"])
            hold += f" ({ratio:.1f}× JSON)"
        missing = [r["missing"] for r in g]
        dups = [r["duplicates"] for r in g]
        delivered = "all" if max(missing) == 0 and max(dups) == 0 else (
            f"missing {max(missing):,}, duplicates {max(dups):,} (worst run)")
        if row["failed"]:
            delivered += f"; {len(row['failed'])} run(s) failed"
        req = f"{statistics.median(r['requests'] for r in g):.0f} / " \
              f"{statistics.median(r['connections'] for r in g):.0f} / " \
              f"{max(r['max_in_flight'] for r in g)}"
        L.append(f"| {p.label} | {p.version} | {fmt_mr([r['events_per_s'] for r in g], 0)} | "
                 f"{fmt_mr([r['wall_s'] for r in g], 2)} | {fmt_mr([r['cpu_s'] for r in g], 2)} | "
                 f"{fmt_mr([r['maxrss_kb'] for r in g], 0, 1 / 1024)} | "
                 f"{fmt_mr([r['sink_cpu_s'] for r in g], 2)} "
                 f"({statistics.median(r['sink_cpu_s'] / r['wall_s'] for r in g):.0%} of wall) | "
                 f"{hold} | {delivered} | {req} |")
    L.append("")
    L.append("**Columns.** *events/s*: distinct events counted by the sink ÷ wall time of the whole "
             "process (start-up, reading the NDJSON, logging, sending, final flush, exit). *CPU s*: "
             "user+sys of the process (and any children it waited for), from `wait4()` in a small "
             "launcher (`sink/src/bin/rusage.rs`). *peak RSS*: its `ru_maxrss` (the launcher keeps the "
             "harness's own memory out of that figure). *sink CPU s*: CPU time the sink process used during the run (from "
             "`/proc/PID/stat`); compare with the wall time to see that the sink is never the limit. "
             "*bytes per queued event*: separate *hold* run: the driver reads the NDJSON lines into "
             "memory, samples its RSS (after a full GC), logs all events with flushing pushed out of "
             "reach (flush size > N, one-hour interval), samples RSS again and divides the growth by "
             "N; the ratio compares it with the event's encoded JSON size. *delivered*: the sink "
             "hashes every event it receives; *missing* = events never received, *duplicates* = "
             "events received more than once.\n")
    for row in rows:
        phases = [r["summary"] for r in row["good"] if r.get("summary") and "send_s" in r["summary"]]
        if phases:
            rates = [n / ph["send_s"] for ph in phases if ph["send_s"] > 0]
            if rates:
                L.append(f"- {row['peer'].label}: sending alone (after reading the file and building "
                         f"the bodies) ran at {fmt_mr(rates, 0)} events/s.")
    L.append("")
    L.append("## What each peer was told\n")
    for row in rows:
        p = row["peer"]
        L.append(f"- **{p.label}** ({p.version}): {p.settings}.")
    L.append("")
    L.append("Everyone: batches of 1000 events, a one-hour flush interval (longer than any run, below "
             "Node's 2³¹ ms timer limit), the server URL pointing at the sink, no compression "
             "(none of the SDKs compresses for a non-Amplitude URL), retries left at their defaults. "
             "Each driver reads the NDJSON, parses every line and hands the event object to the SDK's "
             "log/track call, then flushes and exits.\n")
    L.append("## Environment\n")
    for k in ("machine", "cpu", "kernel", "load", "node", "python_sdk_interpreter", "rustc", "netns"):
        L.append(f"- {k}: {env.get(k, '?')}")
    L.append("")
    L.append("## Every run\n")
    L.append("| peer | run | events/s | wall s | CPU s | peak RSS MiB | sink CPU s | received | dup | "
             "missing | requests | connections | max in flight | status |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        for r in row["runs"]:
            status = "ok" if "error" not in r else r["error"].splitlines()[0]
            L.append(f"| {row['peer'].key} | {r['run']} | {r['events_per_s']:,.0f} | {r['wall_s']:.2f} | "
                     f"{r['cpu_s']:.2f} | {r['maxrss_kb'] / 1024:.0f} | {r['sink_cpu_s']:.2f} | "
                     f"{r['received']:,} | {r['duplicates']:,} | {r['missing']:,} | {r['requests']} | "
                     f"{r['connections']} | {r['max_in_flight']} | {status} |")
    L.append("")
    if any(row["holds"] or row["hold_failed"] for row in rows):
        L.append("| peer | hold run | held | RSS before KiB | RSS after KiB | bytes/event | × JSON | status |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---|")
        for row in rows:
            for h in sorted(row["holds"] + row["hold_failed"], key=lambda h: h["run"]):
                s = h.get("summary") or {}
                if "error" in h:
                    L.append(f"| {row['peer'].key} | {h['run']} | | | | | | {h['error'].splitlines()[0]} |")
                else:
                    L.append(f"| {row['peer'].key} | {h['run']} | {h['held']:,} | {s['rss_before_kb']:,} | "
                             f"{s['rss_after_kb']:,} | {h['bytes_per_event']:,.0f} | {h['ratio_to_json']:.1f} | ok |")
        L.append("")
    return "\n".join(L) + "\n"


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg_chart(rows: list[dict], meta: dict) -> str:
    """Four bar panels (median bar, min–max whisker), drawn by hand."""
    import math

    def series(metric):
        out = []
        for row in rows:
            p = row["peer"]
            if metric == "hold":
                vals = [h["bytes_per_event"] for h in row["holds"]]
            else:
                vals = [metric(r) for r in row["good"]]
            why = p.unavailable.split(" (")[0] if p.unavailable else (p.hold_na if metric == "hold" else None)
            out.append((p.label, vals, why))
        return out

    json_b = meta["mean_event_bytes"]
    panels = [
        ("Throughput — events/s delivered (log scale, higher is better)",
         series(lambda r: r["events_per_s"]), True, lambda v: f"{v:,.0f}"),
        ("CPU seconds for 100,000 events, user+sys (log scale, lower is better)",
         series(lambda r: r["cpu_s"]), True, lambda v: f"{v:.2f} s"),
        ("Peak RSS, MiB (lower is better)",
         series(lambda r: r["maxrss_kb"] / 1024), False, lambda v: f"{v:,.0f} MiB"),
        (f"Memory per queued event, bytes (JSON is {meta['mean_event_bytes']:.0f} B; lower is better)",
         series("hold"), False, lambda v: f"{v:,.0f} B"),
    ]
    width, label_w, bar_w, row_h, top = 960, 330, 470, 24, 30
    colors = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"]
    out = []
    y = 10
    body = []
    for pi, (title, data, logscale, fmt) in enumerate(panels):
        body.append(f'<text x="10" y="{y + 18}" font-size="15" font-weight="bold">{_esc(title)}</text>')
        y += top
        vals = [v for _, vs, _ in data for v in vs if v > 0]
        if vals:
            vmax = max(vals)
            vmin = min(vals)
            if logscale:
                lo = math.floor(math.log10(vmin)) if vmin > 0 else 0
                hi = math.ceil(math.log10(vmax))
                if hi == lo:
                    hi += 1

                def xpos(v, lo=lo, hi=hi):
                    return label_w + bar_w * (math.log10(max(v, 10 ** lo)) - lo) / (hi - lo)
                ticks = [(10 ** e, xpos(10 ** e)) for e in range(lo, hi + 1)]
            else:
                hi_v = vmax * 1.05

                def xpos(v, hi_v=hi_v):
                    return label_w + bar_w * v / hi_v
                step = 10 ** math.floor(math.log10(hi_v)) if hi_v > 0 else 1
                if hi_v / step < 3:
                    step /= 2
                ticks = [(k * step, xpos(k * step)) for k in range(0, int(hi_v / step) + 1)]
        else:
            ticks = []

            def xpos(v):
                return label_w
        h_panel = row_h * len(data)
        if pi == 3 and ticks:
            jx = xpos(json_b)
            body.append(f'<line x1="{jx:.1f}" y1="{y - 4}" x2="{jx:.1f}" y2="{y + h_panel}" stroke="#c00" '
                        f'stroke-dasharray="4 3"/>')
            body.append(f'<text x="{jx + 4:.1f}" y="{y + h_panel + 24}" font-size="10" fill="#c00">'
                        f'encoded JSON, {json_b:.0f} B</text>')
        for tv, tx in ticks:
            body.append(f'<line x1="{tx:.1f}" y1="{y}" x2="{tx:.1f}" y2="{y + h_panel}" stroke="#ddd"/>')
            lab = f"{tv:,.0f}" if tv >= 1 else f"{tv:g}"
            body.append(f'<text x="{tx:.1f}" y="{y + h_panel + 13}" font-size="10" text-anchor="middle" '
                        f'fill="#666">{lab}</text>')
        for i, (label, vs, unavailable) in enumerate(data):
            cy = y + i * row_h
            body.append(f'<text x="{label_w - 8}" y="{cy + 16}" font-size="12" text-anchor="end">{_esc(label)}</text>')
            if not vs:
                why = unavailable or "n/a"
                body.append(f'<text x="{label_w + 6}" y="{cy + 16}" font-size="11" fill="#888">{_esc(why)}</text>')
                continue
            med, lo_v, hi_v2 = med_range(vs)
            x0, xm = label_w, xpos(med)
            color = colors[i % len(colors)]
            body.append(f'<rect x="{x0}" y="{cy + 4}" width="{max(1.0, xm - x0):.1f}" height="{row_h - 8}" '
                        f'fill="{color}"><title>{_esc(label)}: {_esc(fmt(med))} '
                        f'(range {_esc(fmt(lo_v))}–{_esc(fmt(hi_v2))})</title></rect>')
            if len(vs) > 1:
                xa, xb = xpos(lo_v), xpos(hi_v2)
                body.append(f'<line x1="{xa:.1f}" y1="{cy + row_h / 2}" x2="{xb:.1f}" y2="{cy + row_h / 2}" '
                            f'stroke="#222" stroke-width="1.2"/>')
                for xx in (xa, xb):
                    body.append(f'<line x1="{xx:.1f}" y1="{cy + 7}" x2="{xx:.1f}" y2="{cy + row_h - 7}" '
                                f'stroke="#222" stroke-width="1.2"/>')
            body.append(f'<text x="{max(xm, xpos(hi_v2)) + 6:.1f}" y="{cy + 16}" font-size="11">'
                        f'{_esc(fmt(med))}</text>')
        y += h_panel + (42 if pi == 3 else 30)
    height = y + 10
    out.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
               f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif">')
    out.append(f'<rect width="{width}" height="{height}" fill="white"/>')
    out.extend(body)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def environment(netns: str) -> dict:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}",
        "cpu": cpu,
        "kernel": platform.release(),
        "node": tool_version(["node", "--version"]),
        "python_sdk_interpreter": tool_version([str(VENV_PY), "--version"]),
        "rustc": tool_version(["rustc", "--version"]),
        "netns": netns,
    }


# --------------------------------------------------------------------------- main


def measure(args, meta: dict, netns: str) -> int:
    peers = build_peers(args)
    n = meta["events"]
    runs: list[dict] = []
    holds: list[dict] = []
    load_start = os.getloadavg()[0]
    sink = Sink(args.sink_threads)
    log(f"sink listening on {sink.url} (pid {sink.proc.pid}, {args.sink_threads} threads)")
    try:
        runnable = [p for p in peers if not p.unavailable]
        for p in peers:
            if p.unavailable:
                log(f"{p.key}: skipped — {p.unavailable}")
        for run_no in range(1, args.runs + 1):
            for p in runnable:
                if not sink.alive():
                    raise BenchError(f"the sink died; see {LOGS / 'sink.stderr'}")
                runs.append(throughput_run(p, sink, run_no, n, args.timeout))
        if not args.no_hold:
            for run_no in range(1, args.hold_runs + 1):
                for p in runnable:
                    if p.hold_argv:
                        holds.append(hold_run(p, run_no, meta["mean_event_bytes"], args.timeout))
    finally:
        sink.stop()

    rows = aggregate(peers, runs, holds)
    env = environment(netns)
    env["load"] = (f"1-minute load average {load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end "
                   f"(on {os.cpu_count()} CPUs; other work on the machine shows up as noise)")
    md = markdown(rows, meta, env, args)
    # A run limited with --peers is not the comparison: keep it out of the committed files.
    out_dir, stem = (WORK, "results.partial") if args.peers else (HERE, "results")
    (out_dir / f"{stem}.md").write_text(md)
    (out_dir / f"{stem}.svg").write_text(svg_chart(rows, meta))
    (out_dir / f"{stem}.json").write_text(json.dumps({
        "environment": env, "events": meta, "flush_size": FLUSH_SIZE,
        "peers": [{"key": p.key, "label": p.label, "version": p.version, "settings": p.settings,
                   "unavailable": p.unavailable} for p in peers],
        "runs": runs, "holds": holds}, indent=1, default=str) + "\n")
    print(md)
    log(f"wrote {out_dir / stem}.md, .svg and .json")
    failures = [r for r in runs if "error" in r] + [h for h in holds if "error" in h]
    if failures:
        log(f"{len(failures)} run(s) failed; see the status columns and {LOGS}")
        return 1
    return 0


def netns_available() -> bool:
    if os.environ.get("PEER_BENCH_NO_NETNS") or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    try:
        return subprocess.run(["unshare", "--net", "--", "ip", "link", "set", "lo", "up"],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def parse_args(argv: list[str]):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="throughput runs per peer (default 3)")
    ap.add_argument("--hold-runs", type=int, default=None,
                    help="memory (hold) runs per peer (default: same as --runs)")
    ap.add_argument("--no-hold", action="store_true", help="skip the memory-per-queued-event runs")
    ap.add_argument("--events", type=int, default=100_000, help="events to generate (default 100000)")
    ap.add_argument("--peers", nargs="*", help="only these peer keys (floor-1, analytics-node, "
                    "analytics-node-manual, amplitude-node, python, send)")
    ap.add_argument("--floor-in-flight", type=lambda s: [int(x) for x in s.split(",") if x],
                    default=[1, 4], help="floor rows: requests in flight, comma-separated (default 1,4)")
    ap.add_argument("--no-analytics-node-manual-flush", dest="analytics_node_manual_flush",
                    action="store_false", help="drop the analytics-node row that calls flush() every 1000 events")
    ap.add_argument("--send", default=str(DEFAULT_SEND), help=f"the send CLI (default {DEFAULT_SEND})")
    ap.add_argument("--sink-threads", type=int, default=2, help="sink worker threads (default 2)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds before a run is killed (default 300)")
    ap.add_argument("--skip-setup", action="store_true", help="do not build or install (expects it done)")
    ap.add_argument("--no-netns", action="store_true", help="do not isolate the runs in a network namespace")
    ap.add_argument("--in-netns", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.runs < 1 or a.events < 1 or (a.hold_runs is not None and a.hold_runs < 0):
        ap.error("--runs and --events must be >= 1, --hold-runs >= 0")
    if any(k < 1 for k in a.floor_in_flight):
        ap.error("--floor-in-flight values must be >= 1")
    if a.hold_runs is None:
        a.hold_runs = a.runs
    return a


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        if args.in_netns:
            run_step("bring up loopback in the benchmark's network namespace", ["ip", "link", "set", "lo", "up"])
            meta = json.loads(EVENTS_META.read_text())
            return measure(args, meta, "isolated (unshare --net: only loopback exists)")
        meta = ensure_events(args.events)
        if not args.skip_setup:
            ensure_sink()
            ensure_node()
            ensure_python()
        for b in (SINK_BIN, FLOOR_BIN, RUSAGE_BIN):
            if not b.exists():
                raise BenchError(f"{b} missing: run without --skip-setup")
        if not args.no_netns and netns_available():
            log("running the measurements in a fresh network namespace (loopback only)")
            p = subprocess.Popen(["unshare", "--net", "--", sys.executable, str(Path(__file__).resolve()),
                                  *argv, "--in-netns"], start_new_session=True)
            _track(p)
            rc = p.wait()
            _untrack(p)
            return rc
        log("network namespace not available (or --no-netns): running in the host namespace; "
            "every peer is still pointed at 127.0.0.1 only")
        return measure(args, meta, "host namespace (peers pointed at 127.0.0.1 only)")
    except BenchError as e:
        log(f"ERROR: {e}")
        return 2
    finally:
        kill_children()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
