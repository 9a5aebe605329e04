#!/usr/bin/env bash
# Offline run of the Kafka pipeline benchmark (`bench/run.py pipeline`) on a bare x86-64 Linux machine
# that has Python 3.12 with the scientific stack (numpy, pandas, scipy, scikit-learn, statsmodels,
# matplotlib, ...) but no Java, no Maven and no network. Everything else comes from .devcarry/:
#   jre.tar.xz     a jlink'ed OpenJDK 17 runtime (java on PATH for quorum_common.kafka_local)
#   kafka.tar.xz   the Kafka 3.9.1 broker jars, laid out as $QUORUM_KAFKA_CACHE/3.9.1/lib (+ .complete)
#   wheels.tar.xz  wheels/always/*.whl (installed) and wheels/ifmissing/*.whl (installed only when the
#                  interpreter cannot import them already)
# Usage (repo root): bash .devcarry/run.sh        Results: $OUT/{log.txt,pipeline.json,broker.log,service-logs.tar.gz}
# Knobs: PY (python3), WORK (/tmp/devcarry), OUT, WHEELS (an unpacked wheels/ folder: skips wheels.tar.xz),
#        NO_PIP (non-empty: unzip the wheels instead of pip, as done anyway when "$PY -m pip" is missing),
#        BENCH ("bench/run.py pipeline"), BENCH_TIMEOUT_S (480), and the repo's own QUORUM_* variables
#        (QUORUM_KAFKA_PORT, QUORUM_KAFKA_DIR, QUORUM_BASE_PORT, QUORUM_ADMIN_PORT, ...), passed through.
set -uo pipefail
shopt -s nullglob
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CARRY=${CARRY:-$REPO/.devcarry}
PY=${PY:-python3}
WORK=${WORK:-/tmp/devcarry}
OUT=${OUT:-$WORK/out}
WHEELS=${WHEELS:-}
BENCH=${BENCH:-bench/run.py pipeline}
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-480}
KAFKA_STATE=${QUORUM_KAFKA_DIR:-$REPO/.kafka}
RUN_DIR=${QUORUM_RUN_DIR:-$REPO/.run}
RESULTS=${QUORUM_BENCH_RESULTS:-$REPO/bench/results}
unset PYTHONPATH
mkdir -p "$OUT" "$WORK"

untar() {  # untar ARCHIVE DEST: tar+xz when xz exists, else Python's tarfile (lzma)
  if command -v xz >/dev/null 2>&1; then
    tar -xJf "$1" -C "$2"
  else
    "$PY" -c 'import sys, tarfile
t = tarfile.open(sys.argv[1])
t.extractall(sys.argv[2], **({"filter": "fully_trusted"} if hasattr(tarfile, "data_filter") else {}))' "$1" "$2"
  fi
}

import_name() {  # import_name WHEEL: the module that tells whether its distribution is there
  local dist
  dist=$(basename "$1" | cut -d- -f1 | tr 'A-Z' 'a-z')
  case $dist in
    cffi) echo _cffi_backend ;;
    *) echo "$dist" ;;
  esac
}

stop_all() {  # services by their .run/*.pid files, then the broker by its pid file (idempotent)
  "$PY" -c 'from quorum_desk import local; local.down()' || true
}

main() {
  PS4='+ [${SECONDS}s] '
  set -x
  cd "$REPO" || return 1
  date -u; nproc; uname -srm; "$PY" -V; command -v "$PY"; free -g | head -2; df -h /tmp | tail -1
  command -v java || echo "no java on PATH (expected on the bare machine)"

  # 1. Unpack the runtime, the jars and the wheels (in parallel).
  rm -rf "$WORK/jre" "$WORK/kafka" "$WORK/site" "$WORK/wheels"
  mkdir -p "$WORK/kafka"
  local pids=() fail=0 p
  untar "$CARRY/jre.tar.xz" "$WORK" & pids+=($!)
  untar "$CARRY/kafka.tar.xz" "$WORK/kafka" & pids+=($!)
  if [ -z "$WHEELS" ]; then
    untar "$CARRY/wheels.tar.xz" "$WORK" & pids+=($!)
    WHEELS=$WORK/wheels
  fi
  for p in "${pids[@]}"; do wait "$p" || fail=1; done
  [ "$fail" = 0 ] || { echo "FAILED: unpacking"; return 1; }

  export JAVA_HOME=$WORK/jre
  export PATH=$JAVA_HOME/bin:$PATH
  command -v java
  java -version
  ldd "$JAVA_HOME/lib/server/libjvm.so" | grep "not found" && echo "WARNING: libjvm.so misses system libraries"
  export QUORUM_KAFKA_CACHE=$WORK/kafka
  ls "$QUORUM_KAFKA_CACHE/3.9.1/lib" | wc -l
  test -e "$QUORUM_KAFKA_CACHE/3.9.1/lib/.complete" || { echo "FAILED: no broker jars"; return 1; }

  # 2. Python packages: the missing ones from the wheels, into $WORK/site.
  local wheels=("$WHEELS"/always/*.whl) w mod
  { set +x; } 2>/dev/null
  for w in "$WHEELS"/ifmissing/*.whl; do
    mod=$(import_name "$w")
    if "$PY" -c "import $mod" >/dev/null 2>&1; then
      echo "already importable, not installed: $mod"
    else
      wheels+=("$w")
    fi
  done
  set -x
  if [ -z "${NO_PIP:-}" ] && "$PY" -m pip --version >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$WORK/site" "${wheels[@]}" \
      || { echo "FAILED: pip install"; return 1; }
  else
    echo "no pip: unzipping the wheels into $WORK/site"
    "$PY" - "$WORK/site" "${wheels[@]}" <<'EOF' || { echo "FAILED: unzip wheels"; return 1; }
import os, shutil, sys, zipfile
site = sys.argv[1]
for whl in sys.argv[2:]:
    with zipfile.ZipFile(whl) as z:
        z.extractall(site)
for data in [d for d in os.listdir(site) if d.endswith(".data")]:
    for kind in ("purelib", "platlib"):
        lib = os.path.join(site, data, kind)
        for name in os.listdir(lib) if os.path.isdir(lib) else []:
            shutil.move(os.path.join(lib, name), os.path.join(site, name))
    shutil.rmtree(os.path.join(site, data))
EOF
  fi
  local pp=$WORK/site:$REPO/libs/common d pkg
  { set +x; } 2>/dev/null
  for d in "$REPO"/services/*/ "$REPO"/services/*/client/; do
    for pkg in "$d"quorum_*/__init__.py; do pp=$pp:${d%/}; break; done
  done
  set -x
  export PYTHONPATH=$pp
  echo "PYTHONPATH=$PYTHONPATH"

  # 3. Every module the bench and the services import, with versions.
  "$PY" - <<'EOF' || echo "WARNING: the import check failed (see above); running the bench anyway"
import importlib, importlib.util, time, sys
failed = []
mods = ("numpy pandas scipy sklearn statsmodels matplotlib networkx prometheus_client yaml httpx jinja2 psutil requests "
        "typing_extensions click anyio joblib h11 threadpoolctl "
        "confluent_kafka fastavro pydantic pydantic_core pydantic_settings dotenv typing_inspection annotated_types "
        "annotated_doc fastapi starlette uvicorn opentelemetry.sdk.trace orjson cvxpy clarabel osqp qdldl hmmlearn "
        "riskfolio skfolio plotly arch ccxt cryptography astropy.stats xlsxwriter formulaic patsy pytz cloudpickle "
        "wrapt narwhals quorum_common.kafka_local quorum_desk.local quorum_ingest.app quorum_regime.app quorum_alpha.app "
        "quorum_manager.app quorum_portfolio.app quorum_risk.app quorum_execution.app quorum_critic.app quorum_admin.app").split()
for name in mods:
    t = time.perf_counter()
    try:
        m = importlib.import_module(name)
    except Exception as exc:
        failed.append(name)
        print(f"IMPORT FAILED {name}: {type(exc).__name__}: {exc}")
        continue
    top = sys.modules[name.split(".")[0]]
    print(f"{name:28s} {str(getattr(top, '__version__', '')):12s} {time.perf_counter() - t:5.2f}s {getattr(m, '__file__', '')}")
spec = importlib.util.find_spec("backtesting")  # only its CSVs are read (never imported: it needs bokeh)
print("backtesting CSVs:", spec and spec.origin)
import cvxpy
from arch.compat.numba import HAS_NUMBA
print("cvxpy solvers:", cvxpy.installed_solvers(), "| arch uses numba:", HAS_NUMBA)
from quorum_ingest.datasets import load_frames
from quorum_ingest.config import DESK_DATASETS
for name in DESK_DATASETS:
    print("data set", name, {s: len(f) for s, f in load_frames(name).items()})
from quorum_common import kafka_local
print("broker", kafka_local.BOOTSTRAP, "jars", kafka_local.lib_dir(), "state", kafka_local.STATE_DIR)
sys.exit(1 if failed else 0)
EOF

  # 4. The benchmark (it starts and stops the broker and the services itself).
  export PYTHONUNBUFFERED=1
  touch "$WORK/bench.start"
  (  # note which java binary the broker runs, once it has a pid
    { set +x; } 2>/dev/null
    for _ in $(seq 600); do
      if [ -s "$KAFKA_STATE/broker.pid" ] && [ -e "/proc/$(cat "$KAFKA_STATE/broker.pid")/exe" ]; then
        echo "broker pid $(cat "$KAFKA_STATE/broker.pid") runs $(readlink "/proc/$(cat "$KAFKA_STATE/broker.pid")/exe")"
        break
      fi
      sleep 1
    done
  ) &
  local spy=$! t0=$SECONDS rc
  # shellcheck disable=SC2086
  timeout -k 30 "$BENCH_TIMEOUT_S" "$PY" $BENCH
  rc=$?
  echo "bench exit $rc after $((SECONDS - t0)) s"
  kill "$spy" 2>/dev/null
  stop_all

  # 5. Results back to $OUT.
  if [ "$RESULTS/pipeline.json" -nt "$WORK/bench.start" ]; then
    cp "$RESULTS/pipeline.json" "$OUT/pipeline.json"
  else
    echo "no fresh $RESULTS/pipeline.json"
  fi
  [ -f "$KAFKA_STATE/broker.log" ] && tail -c 15000000 "$KAFKA_STATE/broker.log" > "$OUT/broker.log"
  [ -d "$RUN_DIR/logs" ] && tar -czf "$OUT/service-logs.tar.gz" -C "$RUN_DIR" logs
  set +x
  echo "===== nproc $(nproc), $("$PY" -V 2>&1), bench exit $rc"
  if [ -f "$OUT/pipeline.json" ]; then
    "$PY" - "$OUT/pipeline.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print("machine:", r["machine"])
for f in r["figures"]:
    print(f"{f['name']:58s} {f['value']:>10} {f['unit']:8s} target={f['target']} met={f['met']}")
EOF
  fi
  return "$rc"
}

trap stop_all INT TERM
main "$@" 2>&1 | tee -a "$OUT/log.txt"
exit "${PIPESTATUS[0]}"
