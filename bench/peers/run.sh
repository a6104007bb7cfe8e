#!/usr/bin/env bash
# Peer comparison benchmark; see bench/peers/README.md. All arguments go to run.py.
set -euo pipefail
exec python3 "$(dirname "$0")/run.py" "$@"
