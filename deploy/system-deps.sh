#!/usr/bin/env bash
# Installs the system packages the build and the tests need, only those missing (Debian/Ubuntu, as root).
# Java runs the local Kafka broker, Maven fetches its jars; the C++ risk sidecar needs a compiler,
# CMake, Ninja, GoogleTest, Google Benchmark and clang (libFuzzer); the monitoring tests run a real
# Prometheus (and promtool); Go builds Helm for the chart tests.
set -euo pipefail
want=(openjdk-17-jre-headless maven g++ cmake ninja-build libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev python3-venv prometheus golang-go)
have_cmd() { command -v "$1" >/dev/null 2>&1; }
missing=()
for pkg in "${want[@]}"; do
  case "$pkg" in
    openjdk-17-jre-headless) have_cmd java && continue ;;
    maven) have_cmd mvn && continue ;;
    g++) have_cmd g++ && continue ;;
    cmake) have_cmd cmake && continue ;;
    ninja-build) have_cmd ninja && continue ;;
    python3-venv) python3 -c 'import venv, ensurepip' 2>/dev/null && continue ;;
    prometheus) have_cmd prometheus && have_cmd promtool && continue ;;
    golang-go) have_cmd go && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "[system-deps] everything present"
  exit 0
fi
echo "[system-deps] installing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "[system-deps] error: not root; install these packages first: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "[system-deps] done"
