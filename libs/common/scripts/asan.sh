#!/usr/bin/env bash
# The Avro codec's compiled fast path (libs/common/csrc/avrofast.cc) under AddressSanitizer and
# UndefinedBehaviorSanitizer: builds an instrumented copy of the extension in a temporary folder, loads
# it in place of the installed one and runs the codec tests with many more corrupt messages
# (FUZZ_ROUNDS per schema, default 3000). Any memory error or undefined behaviour aborts the run.
#
#   libs/common/scripts/asan.sh            (`make codec-asan`; part of `make test`)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
CXX="${CXX:-g++}"
OUT="$(mktemp -d /tmp/quorum-asan.XXXXXX)"
trap 'rm -rf "$OUT"' EXIT

include="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
suffix="$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
"$CXX" -std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
  -shared -fPIC -I"$include" libs/common/csrc/avrofast.cc -o "$OUT/_avrofast$suffix"

cat >"$OUT/avrofast_asan.py" <<PLUGIN
"""pytest plugin: the instrumented extension replaces the installed one before anything imports it."""
import importlib.util
import sys

_spec = importlib.util.spec_from_file_location("quorum_common._avrofast", "$OUT/_avrofast$suffix")
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
sys.modules["quorum_common._avrofast"] = _module

from quorum_common import avro_fast  # noqa: E402

assert avro_fast._avrofast is _module, "the instrumented extension is not the one in use"
PLUGIN

echo "[codec-asan] instrumented build: $OUT/_avrofast$suffix"
LD_PRELOAD="$("$CXX" -print-file-name=libasan.so):$("$CXX" -print-file-name=libubsan.so)" \
ASAN_OPTIONS="detect_leaks=0:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1" \
PYTHONPATH="$OUT" QUORUM_FUZZ_ROUNDS="${FUZZ_ROUNDS:-3000}" \
  "$PY" -m pytest -q --capture=sys -p avrofast_asan -p no:cacheprovider -k "not backend" \
  libs/common/tests/test_avro_fast.py libs/common/tests/test_codec.py
echo "[codec-asan] no memory error or undefined behaviour"
