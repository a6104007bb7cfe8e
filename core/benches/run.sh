#!/usr/bin/env bash
# Run amplitude-core's micro-benchmarks (core/benches/pipeline.rs) and print, after
# criterion's own report, a summary of medians with the log_event / serde_json ratios.
#
#   core/benches/run.sh                # everything (about 2 minutes)
#   core/benches/run.sh log_event      # only benchmarks whose id contains "log_event"
#   core/benches/run.sh --quick        # criterion's quick mode (rougher, ~20 s)
#
# Numbers are only meaningful on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec cargo bench -p amplitude-core --bench pipeline -- "$@"
