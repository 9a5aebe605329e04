#!/usr/bin/env bash
# Builds the sidecar and runs the GoogleTest suite through ctest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
bash services/risk_sidecar/scripts/build.sh -DQUORUM_RISK_BUILD_TESTS=ON
ctest --test-dir "${QUORUM_RISK_BUILD_DIR:-build/risk_sidecar}" --output-on-failure -j 2
