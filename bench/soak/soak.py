#!/usr/bin/env python3
"""Soak: push N events through the `send` CLI into amplitude-mock-server with every fault
kind enabled, and check that nothing is lost or duplicated and that memory stays bounded.

    python3 bench/soak/soak.py --events 1000000     # the full soak
    python3 bench/soak/soak.py --events 50000       # what CI runs

Faults (all seeded): 5xx before ingesting, 5xx after ingesting (the ambiguous case), stalls
past the client's request timeout, dropped connections, 413 (the server's event limit is
below the client's batch size), and 429 for a few hot devices that carry 10% of the events.
Each event carries a per-device `event_id`, so the server can count per-device order
violations. Passes only if every event is ingested exactly once (insert_id dedup absorbs
resends of ambiguous failures), no order violation, and `send` reports everything delivered.
RSS of `send` is sampled every 0.5 s and printed.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench", "peers"))
import events as gen  # noqa: E402  (the benchmark's deterministic event generator)

HOT_DEVICES = [f"hot-device-{i:02d}" for i in range(5)]


def write_events(path, n, seed):
    """The benchmark's realistic events; every 10th goes to one of 5 hot devices."""
    rng = random.Random(seed)
    counters = {}
    with open(path, "w") as f:
        for i, ev in enumerate(gen.generate(n_events=n, seed=seed)):
            if i % 10 == 0:
                ev["device_id"] = rng.choice(HOT_DEVICES)
                ev["user_id"] = ev["device_id"] + "-user"
            dev = ev["device_id"]
            counters[dev] = counters.get(dev, 0) + 1
            ev["event_id"] = counters[dev]
            f.write(json.dumps(ev, separators=(",", ":")))
            f.write("\n")


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--debug", action="store_true", help="use the debug builds (as `cargo test` leaves them)")
    args = ap.parse_args()

    work = os.path.join(ROOT, "target", "soak")
    os.makedirs(work, exist_ok=True)
    profile = "debug" if args.debug else "release"
    if not args.skip_build:
        subprocess.run(["cargo", "build", "-q", "--profile", "dev" if args.debug else "release",
                        "-p", "amplitude-examples", "--bin", "send",
                        "-p", "amplitude-mock", "--bin", "amplitude-mock-server"], cwd=ROOT, check=True)
    send = os.path.join(ROOT, "target", profile, "send")
    server_bin = os.path.join(ROOT, "target", profile, "amplitude-mock-server")

    data = os.path.join(work, f"events-{args.events}-{args.seed}.ndjson")
    if not os.path.exists(data):
        t = time.time()
        write_events(data, args.events, args.seed)
        print(f"generated {args.events} events in {time.time() - t:.1f}s -> {data}", flush=True)

    server = subprocess.Popen(
        [server_bin, "--host", "127.0.0.1", "--port", "0", "--quiet", "--seed", str(args.seed),
         "--fail-rate", "0.03", "--fail-after-ingest-rate", "0.03", "--stall-rate", "0.01", "--stall-ms", "1500",
         "--drop-rate", "0.02", "--max-events", "400", "--eps", "100", "--eps-window-secs", "5",
         "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline().strip()
        if not line.startswith("listening on "):
            sys.exit(f"server did not start: {line!r}")
        url = line.split()[-1] + "/2/httpapi"
        print(f"server: {url}", flush=True)

        t0 = time.time()
        proc = subprocess.Popen(
            [send, "--api-key", "soak-key", "--server-url", url, "--flush-queue-size", "1000",
             "--request-timeout-ms", "500", "--throttle-pause-ms", "1000", "--max-retries", "20",
             "--shutdown-timeout-ms", "120000", "--input", data],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        samples = []
        while proc.poll() is None:
            r = rss_kib(proc.pid)
            if r is not None:
                samples.append((time.time() - t0, r))
            time.sleep(0.5)
        out, err = proc.communicate()
        wall = time.time() - t0
        server.stdin.close()
        summary_line = server.stdout.read().strip().splitlines()
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()

    print("send RSS samples (s, MiB): " + ", ".join(f"{s:.1f}:{r / 1024:.1f}" for s, r in samples), flush=True)
    last = out.strip().splitlines()[-1] if out.strip() else "{}"
    report = json.loads(last)
    srv = json.loads(summary_line[-1]) if summary_line else {}
    print(f"send summary: {last}")
    print(f"server summary: {json.dumps(srv, sort_keys=True)}")
    peak = max((r for _, r in samples), default=0) / 1024
    print(f"{args.events} events in {wall:.1f}s ({args.events / wall:,.0f} events/s), peak sampled RSS {peak:.1f} MiB, "
          f"{len(samples)} samples")
    if err.strip():
        print("send stderr (last lines):\n  " + "\n  ".join(err.strip().splitlines()[-5:]))

    problems = []
    if report.get("delivered") != args.events:
        problems.append(f"send delivered {report.get('delivered')} of {args.events}")
    for k in ("invalid", "rejected", "dropped", "pending"):
        if report.get(k):
            problems.append(f"send {k} = {report[k]}")
    if srv.get("events_ingested") != args.events:
        problems.append(f"server ingested {srv.get('events_ingested')} unique events, expected {args.events}")
    if srv.get("order_violations"):
        problems.append(f"{srv['order_violations']} per-device order violations")
    faults = srv.get("faults", {})
    for kind in ("fail_before_ingest", "fail_after_ingest", "stall", "drop"):
        if not faults.get(kind):
            problems.append(f"no {kind} fault was injected (the soak did not test it)")
    for status, what in (("413", "413 limit"), ("429", "429 throttling")):
        if not srv.get("responses", {}).get(status):
            problems.append(f"no {what} response (the soak did not test it)")
    if len(samples) >= 8:
        # Bounded memory: the second half of the run does not grow beyond the first half's peak by much.
        half = len(samples) // 2
        first, second = max(r for _, r in samples[:half]), max(r for _, r in samples[half:])
        if second > first * 1.5 + 8 * 1024:
            problems.append(f"RSS kept growing: first half peak {first / 1024:.1f} MiB, second half {second / 1024:.1f} MiB")
    if problems:
        print("SOAK FAILED:\n- " + "\n- ".join(problems))
        sys.exit(1)
    print(f"soak: 1 passed, 0 failed ({args.events} events, {srv.get('duplicates', 0)} duplicates absorbed by insert_id, "
          f"{sum(faults.values())} faults injected)")


if __name__ == "__main__":
    main()
