#!/usr/bin/env bash
# End-to-end check of the embedded stack on Linux, inside a private network namespace:
# amplitude-mock-server (with injected faults) and the gateway (embassy-net on a TAP
# device + amplitude-embassy-net + the core client) talk over 192.168.69.0/24, which
# exists only inside that namespace. Passes when the server ingested every event the
# gateway logged exactly once (duplicates from resends are absorbed by insert_id) and
# in per-device order. Run as root. Everything is torn down on exit, failure included.
#
# Environment (all optional):
#   EVENTS (3000) DEVICES (40) SEED (7)
#   FAIL_RATE (0.05) FAIL_AFTER_INGEST_RATE (0.05) STALL_RATE (0.02) STALL_MS (1500) DROP_RATE (0.05)
#   PROFILE (debug|release, default debug)   TIMEOUT_SECS (600)
#   REQUEST_TIMEOUT_MS (20000): the gateway's per-request timeout; below STALL_MS, stalls
#                               become transport timeouts instead of late 504s
#   TLS=1: the gateway speaks TLS 1.3 (embedded-tls, unverified by explicit opt-in) to a
#          TLS terminator (tls_proxy.py, self-signed P-256 certificate made here) that
#          relays to the server; needs openssl.
set -euo pipefail

EVENTS=${EVENTS:-3000}
DEVICES=${DEVICES:-40}
SEED=${SEED:-7}
FAIL_RATE=${FAIL_RATE:-0.05}
FAIL_AFTER_INGEST_RATE=${FAIL_AFTER_INGEST_RATE:-0.05}
STALL_RATE=${STALL_RATE:-0.02}
STALL_MS=${STALL_MS:-1500}
DROP_RATE=${DROP_RATE:-0.05}
PROFILE=${PROFILE:-debug}
TIMEOUT_SECS=${TIMEOUT_SECS:-600}
TLS=${TLS:-0}
REQUEST_TIMEOUT_MS=${REQUEST_TIMEOUT_MS:-20000}

HOST_IP=192.168.69.100   # the namespace's end of the TAP device: the server binds here
DEVICE_IP=192.168.69.2   # the gateway's embassy-net address
PORT=8080
TLS_PORT=8443
NS=amp-gateway-$$
TAP=tap0

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
server_pid=""
proxy_pid=""

cleanup() {
    local status=$?
    for pid in "$proxy_pid" "$server_pid"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    # Any process still in the namespace (a gateway that timed out) goes with it.
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT INT TERM

if [[ $(id -u) -ne 0 ]]; then
    echo "run.sh: needs root (network namespace and TAP device)" >&2
    exit 2
fi
tools=(ip python3 cargo)
[[ "$TLS" == 1 ]] && tools+=(openssl)
for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool not found" >&2; exit 2; }
done

release_flag=()
[[ "$PROFILE" == release ]] && release_flag=(--release)
echo "== building ($PROFILE)"
(cd "$root" && cargo build --quiet "${release_flag[@]}" -p amplitude-mock --bin amplitude-mock-server)
(cd "$here" && cargo build --quiet "${release_flag[@]}")
server_bin=$root/target/$PROFILE/amplitude-mock-server
gateway_bin=$here/target/$PROFILE/amplitude-gateway-example

echo "== namespace $NS with $TAP at $HOST_IP/24"
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip tuntap add name "$TAP" mode tap
ip netns exec "$NS" ip addr add "$HOST_IP/24" dev "$TAP"
ip netns exec "$NS" ip link set "$TAP" up

echo "== server: fail=$FAIL_RATE fail-after-ingest=$FAIL_AFTER_INGEST_RATE stall=$STALL_RATE/${STALL_MS}ms drop=$DROP_RATE seed=$SEED"
ip netns exec "$NS" "$server_bin" --host "$HOST_IP" --port "$PORT" --seed "$SEED" \
    --fail-rate "$FAIL_RATE" --fail-after-ingest-rate "$FAIL_AFTER_INGEST_RATE" \
    --stall-rate "$STALL_RATE" --stall-ms "$STALL_MS" --drop-rate "$DROP_RATE" --quiet \
    >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 100); do
    grep -q "listening on" "$work/server.out" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; exit 1; }
    sleep 0.1
done
grep -q "listening on" "$work/server.out" || { echo "run.sh: server did not start" >&2; exit 1; }

url="http://$HOST_IP:$PORT/2/httpapi"
tls_flag=()
if [[ "$TLS" == 1 ]]; then
    echo "== TLS terminator on $HOST_IP:$TLS_PORT (self-signed P-256 certificate)"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -subj "/CN=$HOST_IP" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
    ip netns exec "$NS" python3 "$here/tls_proxy.py" "$work/cert.pem" "$work/key.pem" \
        "$HOST_IP" "$TLS_PORT" "$HOST_IP" "$PORT" >"$work/proxy.out" 2>"$work/proxy.err" &
    proxy_pid=$!
    for _ in $(seq 100); do
        grep -q "listening" "$work/proxy.out" 2>/dev/null && break
        kill -0 "$proxy_pid" 2>/dev/null || { cat "$work/proxy.err" >&2; exit 1; }
        sleep 0.1
    done
    url="https://$HOST_IP:$TLS_PORT/2/httpapi"
    tls_flag=(--insecure-tls)
fi

echo "== gateway: $EVENTS events from $DEVICES devices to $url"
status=0
ip netns exec "$NS" timeout "$TIMEOUT_SECS" "$gateway_bin" --tap "$TAP" --ip "$DEVICE_IP" --gateway "$HOST_IP" \
    --url "$url" "${tls_flag[@]}" --events "$EVENTS" --devices "$DEVICES" --seed "$SEED" --request-timeout-ms "$REQUEST_TIMEOUT_MS" \
    | tee "$work/gateway.out" || status=$?

echo "== server summary"
ip netns exec "$NS" python3 - "$HOST_IP" "$PORT" "$EVENTS" "$work/gateway.out" "$status" <<'PY'
import json, re, sys, urllib.request

host, port, events, gateway_out, gateway_status = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
summary = json.load(urllib.request.urlopen(f"http://{host}:{port}/summary", timeout=10))
faults = summary.get("faults", {})
print(f"server: requests={summary['requests']} responses={summary['responses']} "
      f"received={summary['events_received']} ingested={summary['events_ingested']} "
      f"duplicates={summary['duplicates']} order_violations={summary['order_violations']} "
      f"devices={summary['devices']} faults={faults}")
line = next((l for l in open(gateway_out) if l.startswith("gateway: events=")), "")
fields = dict(re.findall(r"(\w+)=(\d+)", line))
delivered = int(fields.get("delivered", -1))
problems = []
if gateway_status != 0:
    problems.append(f"gateway exited with {gateway_status}")
if delivered != events:
    problems.append(f"gateway delivered {delivered} of {events}")
if summary["events_ingested"] != events:
    problems.append(f"server ingested {summary['events_ingested']} unique events, expected {events}")
if summary["order_violations"] != 0:
    problems.append(f"{summary['order_violations']} per-device order violations")
if problems:
    print("FAIL: " + "; ".join(problems))
    print("gateway: 0 passed, 1 failed")
    sys.exit(1)
print(f"PASS: {events} events sent, {summary['events_ingested']} ingested exactly once "
      f"({summary['duplicates']} resent duplicates absorbed by insert_id)")
print("gateway: 1 passed, 0 failed")
PY
