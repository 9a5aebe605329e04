#!/usr/bin/env bash
# Builds the frame fuzzer with clang (-fsanitize=fuzzer,address,undefined) in
# build/risk_sidecar_fuzz and runs it for FUZZ_SECONDS (default 20). Exits non-zero on a crash,
# leak, sanitizer report or timeout; the reproducer is left in build/risk_sidecar_fuzz/artifacts/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
BUILD_DIR=build/risk_sidecar_fuzz
CC=clang CXX=clang++ cmake -S services/risk_sidecar -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQUORUM_RISK_FUZZ=ON \
  -DQUORUM_RISK_BUILD_TESTS=OFF -DQUORUM_RISK_BUILD_BENCH=OFF
cmake --build "$BUILD_DIR" --target frame_fuzzer

# Work on a copy of the seed corpus so runs never modify the checked-in seeds.
mkdir -p "$BUILD_DIR/corpus" "$BUILD_DIR/artifacts"
cp -n services/risk_sidecar/fuzz/corpus/* "$BUILD_DIR/corpus/" 2>/dev/null || true

echo "fuzz.sh: fuzzing for ${FUZZ_SECONDS}s"
set +e
"$BUILD_DIR/frame_fuzzer" "$BUILD_DIR/corpus" \
  -max_total_time="$FUZZ_SECONDS" -max_len=2200 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$BUILD_DIR/artifacts/" 2>"$BUILD_DIR/fuzz.log"
rc=$?
set -e
grep -E "^(stat::|#[0-9]+ *DONE|Done )|ERROR|SUMMARY|Test unit written" "$BUILD_DIR/fuzz.log" || true
if [ "$rc" -ne 0 ]; then
  echo "fuzz.sh: FAILED (exit $rc); see $BUILD_DIR/fuzz.log and $BUILD_DIR/artifacts/" >&2
  tail -n 40 "$BUILD_DIR/fuzz.log" >&2
  exit "$rc"
fi
echo "fuzz.sh: no crash in ${FUZZ_SECONDS}s"
