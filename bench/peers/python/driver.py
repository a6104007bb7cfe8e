"""Peer-benchmark driver for the official Python SDK (amplitude-analytics).

Normal mode: track every NDJSON event (the SDK's consumer thread sends a batch each
time flush_queue_size events are ready), then flush(), wait, shutdown() and exit.
--hold mode: track every event with flushing pushed out of reach, report RSS growth.
"""

import argparse
import gc
import json
import os
import re
import sys
import threading

from amplitude import Amplitude, BaseEvent, Config
from amplitude.constants import SDK_VERSION

# One hour: far beyond any run.
FLUSH_INTERVAL_MS = 3600 * 1000


def rss_kb() -> int:
    gc.collect()
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("VmRSS not found in /proc/self/status")


def report(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url")
    p.add_argument("--input", required=True)
    p.add_argument("--api-key", default="peer-bench-key")
    p.add_argument("--flush-size", type=int, default=1000)
    p.add_argument("--hold", action="store_true")
    a = p.parse_args()
    if not a.hold and not a.url:
        p.error("--url is required unless --hold")
    if a.url and not re.match(r"^http://127\.0\.0\.1:\d+/", a.url):
        p.error(f"refusing a server URL that is not http://127.0.0.1:PORT/...: {a.url}")
    if a.flush_size <= 0:
        p.error("--flush-size must be positive")

    with open(a.input, encoding="utf-8") as f:
        lines = [line for line in f.read().split("\n") if line]

    counts = {"ok": 0, "failed": 0}
    lock = threading.Lock()

    def on_result(event, code, message=None):
        with lock:
            counts["ok" if code == 200 else "failed"] += 1

    config = Config(
        server_url=a.url or "http://127.0.0.1:9/2/httpapi",
        flush_queue_size=len(lines) + 1 if a.hold else a.flush_size,
        flush_interval_millis=FLUSH_INTERVAL_MS,
        callback=None if a.hold else on_result,
    )
    client = Amplitude(a.api_key, configuration=config)

    if a.hold:
        before = rss_kb()
        for line in lines:
            client.track(BaseEvent(**json.loads(line)))
        after = rss_kb()
        report({"sdk": "amplitude-analytics (Python)", "version": SDK_VERSION, "held": len(lines),
                "rss_before_kb": before, "rss_after_kb": after})
        # The SDK's threads would flush on exit; leave without sending anything.
        sys.stdout.flush()
        os._exit(0)

    for line in lines:
        client.track(BaseEvent(**json.loads(line)))
    for fut in client.flush():
        if fut is not None:
            fut.result()
    client.shutdown()
    report({"sdk": "amplitude-analytics (Python)", "version": SDK_VERSION, "tracked": len(lines),
            "sdk_ok": counts["ok"], "sdk_failed": counts["failed"],
            "options": {"flush_queue_size": a.flush_size, "flush_interval_millis": FLUSH_INTERVAL_MS}})
    # Every event has its final callback by now. The SDK's non-daemon consumer thread
    # may still sit in a wait of flush_interval_millis (an hour here) that shutdown()
    # does not interrupt, which would keep the interpreter from exiting: leave directly.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
