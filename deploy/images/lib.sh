# Shared helpers of the image scripts (sourced, not run).
# shellcheck shell=bash

log() { printf '[images %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The docker client to use. BuildKit is required (cache and secret mounts): a client with the buildx
# plugin, or a classic client (< 23) whose built-in BuildKit is switched on with DOCKER_BUILDKIT=1.
# QUORUM_DOCKER overrides the choice.
_pick_docker() {
  if [[ -n "${QUORUM_DOCKER:-}" ]]; then echo "$QUORUM_DOCKER"; return; fi
  local c major
  for c in docker /usr/bin/docker; do
    command -v "$c" >/dev/null 2>&1 || continue
    if "$c" buildx version >/dev/null 2>&1; then echo "$c"; return; fi
    major="$("$c" --version 2>/dev/null | sed -nE 's/^Docker version ([0-9]+)\..*/\1/p')"
    if [[ -n "$major" && "$major" -lt 23 ]]; then echo "$c"; return; fi
  done
}
DOCKER_BIN="$(_pick_docker)"
docker_cli() {
  [[ -n "$DOCKER_BIN" ]] || die "no docker client with BuildKit (install docker-buildx, or set QUORUM_DOCKER)"
  DOCKER_BUILDKIT=1 "$DOCKER_BIN" "$@"
}

# Start dockerd in the background when no daemon answers; DOCKERD_PID is set when we started it.
DOCKERD_PID=""
ensure_dockerd() {
  if docker_cli info >/dev/null 2>&1; then return; fi
  command -v dockerd >/dev/null || die "no docker daemon answers and dockerd is missing (apt-get install -y docker.io)"
  local logf="${QUORUM_DOCKERD_LOG:-/tmp/quorum-dockerd.log}"
  log "starting dockerd (log: $logf)"
  dockerd >"$logf" 2>&1 &
  DOCKERD_PID=$!
  local i
  for i in $(seq 1 60); do
    docker_cli info >/dev/null 2>&1 && return
    kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -20 "$logf" >&2; die "dockerd exited"; }
    sleep 1
  done
  die "dockerd did not answer within 60 s (log: $logf)"
}
stop_dockerd() {
  [[ -n "$DOCKERD_PID" ]] || return 0
  log "stopping dockerd (pid $DOCKERD_PID)"
  kill "$DOCKERD_PID" 2>/dev/null || true
  local i
  for i in $(seq 1 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || return 0; sleep 1; done
}

# The Debian bookworm archive URI apt uses on this machine (deb822 .sources or one-line .list files);
# $1: apt's configuration folder (default /etc/apt).
debian_mirror() {
  local f apt="${1:-/etc/apt}"
  for f in "$apt/sources.list" "$apt"/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    sed -E 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }'
  done | head -1 | grep . && return
  for f in "$apt"/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
         { uri = ""; ok = 0
           for (i = 1; i <= NF; i++) {
             if ($i ~ /^URIs:/) { split($i, u, /[ \t]+/); uri = u[2] }
             if ($i ~ /^Suites:/) { n = split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == "bookworm") ok = 1 }
           }
           if (ok && uri != "") { print uri; exit } }' "$f"
  done | head -1
}

# Milliseconds since the epoch, and the seconds (one decimal) elapsed since such a stamp.
now_ms() { date +%s%3N; }
since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

# Install docker.io and debootstrap with apt when they are missing (root on Debian only).
ensure_tools() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [[ ${#missing[@]} -gt 0 ]] || return 0
  [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null || die "missing ${missing[*]}: install them (apt-get install -y ${missing[*]})"
  log "installing ${missing[*]} with apt"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; } \
    || die "apt-get install ${missing[*]} failed"
  DOCKER_BIN="$(_pick_docker)"
}
