#!/usr/bin/env bash
# Run every fuzz target of amplitude-core for N seconds each (default 30).
#
#   fuzz/run.sh [seconds]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`, about a minute) and a nightly
# toolchain; where only a stable toolchain exists, stable runs with RUSTC_BOOTSTRAP=1
# (libFuzzer instrumentation and AddressSanitizer need -Z flags).
#
# Each target starts from its committed seeds (fuzz/seeds/<target>, read-only) plus its
# working corpus (fuzz/corpus/<target>, git-ignored). A crash leaves the input in
# fuzz/artifacts/<target>/ and makes this script exit non-zero after all targets ran.
set -uo pipefail

secs="${1:-30}"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

targets=(classify_response encode_event raw_json pipeline_model)

if cargo +nightly --version >/dev/null 2>&1; then
    fuzz=(cargo +nightly fuzz)
else
    echo "fuzz: no nightly toolchain, using stable with RUSTC_BOOTSTRAP=1"
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
if ! "${fuzz[@]}" --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 1
fi

"${fuzz[@]}" build || exit 1

failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" artifacts
    dict=()
    case "$t" in
        classify_response | encode_event | raw_json) dict=(-dict=dict/json.dict) ;;
    esac
    echo "=== $t: ${secs}s"
    if ! "${fuzz[@]}" run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" \
        2>"artifacts/$t.log"; then
        failed+=("$t")
        tail -n 60 "artifacts/$t.log"
    else
        grep -E "^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added)" \
            "artifacts/$t.log" | sed "s/^/  /"
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)"
    exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${secs}s without a failure"
