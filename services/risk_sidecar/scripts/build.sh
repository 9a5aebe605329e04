#!/usr/bin/env bash
# Configures and builds the sidecar (Release, Ninja) into build/risk_sidecar at the repo root.
# Extra arguments are passed to the CMake configure step (e.g. -DQUORUM_RISK_BUILD_BENCH=OFF).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
BUILD_DIR="${QUORUM_RISK_BUILD_DIR:-build/risk_sidecar}"
cmake -S services/risk_sidecar -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$BUILD_DIR"
echo "build.sh: built $ROOT/$BUILD_DIR/quorum-risk-sidecar"
