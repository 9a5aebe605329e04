#!/usr/bin/env bash
# Installs (idempotently) the Debian packages the sidecar's build, tests, fuzzer and benchmarks
# need. Packages already installed are skipped, so this is fast on a warm CI image.
set -euo pipefail

PACKAGES=(
  cmake ninja-build g++          # build
  libgtest-dev libgmock-dev      # GoogleTest (CMake's GTest package config references gmock)
  libbenchmark-dev               # Google Benchmark
  clang libclang-rt-14-dev       # libFuzzer + ASan/UBSan runtimes for scripts/fuzz.sh
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
# python3 runs the benchmark converters and the pytest suite; any python3 on PATH will do.
if ! command -v python3 >/dev/null 2>&1; then
  missing+=(python3)
fi

if [ "${#missing[@]}" -eq 0 ]; then
  echo "deps.sh: all packages present"
  exit 0
fi
echo "deps.sh: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
