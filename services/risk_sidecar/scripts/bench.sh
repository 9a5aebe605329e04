#!/usr/bin/env bash
# Runs the Google Benchmark binary (JSON output) and converts it to bench/results/sidecar_check.json;
# then the Python client -> sidecar round-trip benchmark (bench/results/sidecar_roundtrip.json)
# unless SKIP_ROUNDTRIP=1. Each check figure is the median of BENCH_REPETITIONS runs (default 9) of
# BENCH_MIN_TIME seconds (default 0.2). PYTHON selects the interpreter (default python3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
BUILD_DIR="${QUORUM_RISK_BUILD_DIR:-build/risk_sidecar}"
bash services/risk_sidecar/scripts/build.sh -DQUORUM_RISK_BUILD_BENCH=ON
"$BUILD_DIR/check_bench" --benchmark_format=console --benchmark_min_time="${BENCH_MIN_TIME:-0.2}" \
  --benchmark_repetitions="${BENCH_REPETITIONS:-9}" \
  --benchmark_out="$BUILD_DIR/check_bench.json" --benchmark_out_format=json
"$PYTHON" services/risk_sidecar/bench/gbench_to_result.py "$BUILD_DIR/check_bench.json"
if [ "${SKIP_ROUNDTRIP:-0}" != "1" ]; then
  "$PYTHON" services/risk_sidecar/bench/roundtrip_bench.py --binary "$BUILD_DIR/quorum-risk-sidecar"
fi
