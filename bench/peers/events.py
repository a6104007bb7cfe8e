"""Deterministic generator of the benchmark's events (NDJSON, one HTTP V2 event a line).

Every run of the benchmark sends the same bytes: the generator is seeded and uses no
clock. 1,000 users, each with a stable user_id, device_id (UUID) and platform/version
profile; events carry an explicit time and six event properties of mixed types
(string, int, float, bool, list, nested object). No insert_id: each SDK adds its own,
as it would for a typical server-side caller. About 330 bytes per encoded event.
"""

import hashlib
import json
import random

SEED = 20260101
BASE_TIME_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z

EVENT_TYPES = [
    ("Page Viewed", 30), ("Button Clicked", 18), ("Search Performed", 10),
    ("Product Viewed", 12), ("Add To Cart", 7), ("Checkout Started", 3),
    ("Order Completed", 2), ("Song Played", 8), ("Video Paused", 4),
    ("Sign In", 3), ("Notification Opened", 3),
]
SCREENS = ["home", "search", "product", "cart", "checkout", "profile", "settings",
           "library", "player"]
SOURCES = ["organic", "push", "email", "deeplink", "ad", "referral"]
TAGS = ["new", "sale", "featured", "trending", "limited", "bundle", "gift"]
PLATFORMS = [("iOS", ["17.4", "17.5.1", "18.0", "18.1"]),
             ("Android", ["13", "14", "15"]),
             ("Web", ["124.0", "125.0", "126.0"])]
APP_VERSIONS = ["4.12.0", "4.12.1", "4.13.0", "5.0.2"]


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:32]}"


def _users(rng: random.Random, n_users: int):
    users = []
    for i in range(n_users):
        platform, os_versions = rng.choice(PLATFORMS)
        users.append({
            "user_id": f"usr_{i:04d}",
            "device_id": _uuid(rng),
            "platform": platform,
            "os_version": rng.choice(os_versions),
            "app_version": rng.choice(APP_VERSIONS),
        })
    return users


def generate(n_events: int = 100_000, n_users: int = 1_000, seed: int = SEED):
    """Yields `n_events` event dicts, the same ones for the same arguments."""
    rng = random.Random(seed)
    users = _users(rng, n_users)
    names = [e for e, _ in EVENT_TYPES]
    weights = [w for _, w in EVENT_TYPES]
    t = BASE_TIME_MS
    for _ in range(n_events):
        t += rng.randint(1, 40)
        u = rng.choice(users)
        event = {
            "event_type": rng.choices(names, weights)[0],
            "user_id": u["user_id"],
            "device_id": u["device_id"],
            "time": t,
        }
        for k in ("platform", "os_version", "app_version"):
            if k in u:
                event[k] = u[k]
        event["event_properties"] = {
            "screen": rng.choice(SCREENS),
            "quantity": rng.randint(1, 12),
            "price": round(rng.uniform(0.5, 250.0), 2),
            "premium": rng.random() < 0.3,
            "tags": rng.sample(TAGS, rng.randint(1, 2)),
            "context": {"source": rng.choice(SOURCES), "position": rng.randint(1, 20)},
        }
        yield event


def write_ndjson(path: str, n_events: int = 100_000, n_users: int = 1_000, seed: int = SEED) -> dict:
    """Writes the events to `path`; returns count, bytes, mean size and SHA-256."""
    digest = hashlib.sha256()
    total = 0
    count = 0
    users = set()
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for e in generate(n_events, n_users, seed):
            line = json.dumps(e, separators=(",", ":"), ensure_ascii=False) + "\n"
            f.write(line)
            b = line.encode("utf-8")
            digest.update(b)
            total += len(b) - 1
            count += 1
            users.add(e["user_id"])
    return {"events": count, "users": len(users), "bytes": total,
            "mean_event_bytes": total / count if count else 0.0,
            "sha256": digest.hexdigest(), "seed": seed}


if __name__ == "__main__":
    import sys
    out = sys.argv[1] if len(sys.argv) > 1 else "events.ndjson"
    print(json.dumps(write_ndjson(out)))
