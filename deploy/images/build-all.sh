#!/usr/bin/env bash
# `make images`: build every container image here and prove that each one starts and works.
#
#   deploy/images/build-all.sh [SERVICE ...]        (default: every service and the risk sidecar)
#
# 1. installs docker.io and debootstrap with apt when missing; starts dockerd when no daemon
#    answers (and stops it at the end);
# 2. builds the local base quorum-base:bookworm-py311 once (deploy/images/build-base.sh);
# 3. builds quorum-<service>:<tag> for each service, one after the other, with BuildKit (pip cache
#    mount shared by all images, dependency layer before the code layer), FROM the local base;
# 4. starts the local Kafka broker when none answers (and stops it at the end);
# 5. runs deploy/images/smoke.py: every image as a container against the broker (health, joining,
#    graceful stop), then prints the timing table. Exits non-zero on any failure.
#
# Environment: QUORUM_BASE_IMAGE (default quorum-base:bookworm-py311; set it to e.g.
# python:3.11-slim-bookworm where a registry is reachable), QUORUM_IMAGE_TAG (default: the Helm
# chart's appVersion), QUORUM_BUILD_NETWORK (default host), QUORUM_BUILD_CA_BUNDLE (a CA file handed
# to pip as a build secret; default: pip's configured cert or the system bundle), QUORUM_DOCKER,
# QUORUM_KEEP_DOCKERD=1 (leave a dockerd this script started running), and the local broker's
# QUORUM_KAFKA_PORT / QUORUM_KAFKA_DIR (or QUORUM_KAFKA_BOOTSTRAP_SERVERS for another broker).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=deploy/images/lib.sh
source "$HERE/lib.sh"
cd "$ROOT"

PY="${PY:-$ROOT/.venv/bin/python}"
ALL_SERVICES=(ingest regime alpha manager portfolio risk execution critic admin desk risk-sidecar)
if [[ $# -gt 0 ]]; then SERVICES=("$@"); else SERVICES=("${ALL_SERVICES[@]}"); fi
BASE="${QUORUM_BASE_IMAGE:-quorum-base:bookworm-py311}"
TAG="${QUORUM_IMAGE_TAG:-$(sed -nE 's/^appVersion: *"?([^"]+)"?.*/\1/p' deploy/helm/quorum/Chart.yaml)}"
NETWORK="${QUORUM_BUILD_NETWORK:-host}"
CA_BUNDLE="${QUORUM_BUILD_CA_BUNDLE:-${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}}"
BOOTSTRAP="${QUORUM_KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:${QUORUM_KAFKA_PORT:-19092}}"
[[ -x "$PY" ]] || die "$PY is missing: run \`make install\` first"
[[ -n "$TAG" ]] || die "no image tag: set QUORUM_IMAGE_TAG"

WORK="$(mktemp -d /tmp/quorum-images.XXXXXX)"
BUILDS="$WORK/builds.tsv"
KAFKA_STARTED=""
cleanup() {
  local rc=$?
  if [[ -n "$DOCKER_BIN" ]] && docker_cli info >/dev/null 2>&1; then
    ids="$(docker_cli ps -aq --filter label=quorum.imgtest 2>/dev/null || true)"
    [[ -z "$ids" ]] || docker_cli rm -f $ids >/dev/null 2>&1 || true
  fi
  [[ -z "$KAFKA_STARTED" ]] || "$PY" -m quorum_common.kafka_local down >/dev/null 2>&1 || true
  [[ -n "${QUORUM_KEEP_DOCKERD:-}" ]] || stop_dockerd
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

started_all=$(now_ms)
ensure_tools
ensure_dockerd
log "docker client $DOCKER_BIN; base $BASE; tag $TAG; build network $NETWORK"

if [[ "$BASE" == quorum-base:* ]]; then
  t0=$(now_ms)
  QUORUM_BASE_IMAGE="$BASE" bash "$HERE/build-base.sh"
  log "base image step: $(since "$t0") s"
fi

secret=()
[[ -s "$CA_BUNDLE" ]] && secret=(--secret "id=ca_bundle,src=$CA_BUNDLE")
failed=()
for svc in "${SERVICES[@]}"; do
  if [[ "$svc" == risk-sidecar ]]; then
    build=(-f services/risk_sidecar/Dockerfile services/risk_sidecar)
  else
    dir="services/${svc//-/_}"
    [[ -f "$dir/Dockerfile" ]] || die "unknown service $svc (no $dir/Dockerfile)"
    build=(-f "$dir/Dockerfile" "${secret[@]}" .)
  fi
  log "building quorum-$svc:$TAG"
  old_id="$(docker_cli image inspect -f '{{.Id}}' "quorum-$svc:$TAG" 2>/dev/null || true)"
  t0=$(now_ms)
  if docker_cli build --progress=plain --network "$NETWORK" --build-arg "BASE_IMAGE=$BASE" \
       -t "quorum-$svc:$TAG" "${build[@]}" >"$WORK/build-$svc.log" 2>&1; then
    secs=$(since "$t0")
    printf '%s\t%s\tok\n' "$svc" "$secs" >>"$BUILDS"
    log "built quorum-$svc:$TAG in $secs s"
    # The image this tag named before is garbage now (unless something else still uses it).
    if [[ -n "$old_id" && "$old_id" != "$(docker_cli image inspect -f '{{.Id}}' "quorum-$svc:$TAG")" ]]; then
      docker_cli rmi "$old_id" >/dev/null 2>&1 || true
    fi
  else
    tail -40 "$WORK/build-$svc.log" >&2
    printf '%s\t%s\tFAIL\n' "$svc" "$(since "$t0")" >>"$BUILDS"
    failed+=("$svc")
    log "FAILED to build quorum-$svc:$TAG"
  fi
done
[[ ${#failed[@]} -eq 0 ]] || die "image builds failed: ${failed[*]}"

if [[ -z "${QUORUM_KAFKA_BOOTSTRAP_SERVERS:-}" ]] && ! "$PY" -m quorum_common.kafka_local status >/dev/null 2>&1; then
  log "starting the local Kafka broker"
  "$PY" -m quorum_common.kafka_local up >"$WORK/kafka.log" 2>&1 || { tail -20 "$WORK/kafka.log" >&2; die "broker did not start"; }
  KAFKA_STARTED=1
fi

rc=0
PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" "$PY" "$HERE/smoke.py" --docker "$DOCKER_BIN" --tag "$TAG" \
  --bootstrap "$BOOTSTRAP" \
  --builds "$BUILDS" "${SERVICES[@]}" 2> >(grep -v BGQUEUE >&2) || rc=$?
log "make images: $(since "$started_all") s in all"
exit $rc
