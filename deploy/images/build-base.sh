#!/usr/bin/env bash
# Build the local base image quorum-base:bookworm-py311 (Debian bookworm minbase + its Python 3.11)
# with debootstrap and `docker import`, for machines that cannot reach a container registry.
#
#   deploy/images/build-base.sh [--force]
#
# The Debian mirror is the one apt already uses on this machine (/etc/apt/sources.list*), or
# QUORUM_DEBIAN_MIRROR. Skips the build when the image exists (unless --force). Needs root,
# debootstrap and a running docker daemon (deploy/images/lib.sh starts one when needed).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/images/lib.sh
source "$HERE/lib.sh"

BASE_TAG="${QUORUM_BASE_IMAGE:-quorum-base:bookworm-py311}"
SUITE=bookworm
PACKAGES=python3,python3-venv,ca-certificates,passwd

if [[ "${1:-}" != "--force" ]] && docker_cli image inspect "$BASE_TAG" >/dev/null 2>&1; then
  log "base image $BASE_TAG present; skipping (--force rebuilds)"
  exit 0
fi
command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install -y debootstrap"
[[ $EUID -eq 0 ]] || die "debootstrap needs root"

MIRROR="${QUORUM_DEBIAN_MIRROR:-$(debian_mirror)}"
[[ -n "$MIRROR" ]] || die "no Debian mirror found in /etc/apt/sources.list*; set QUORUM_DEBIAN_MIRROR"
ROOTFS="$(mktemp -d /tmp/quorum-base.XXXXXX)"
trap 'rm -rf --one-file-system "$ROOTFS"' EXIT

log "debootstrap --variant=minbase $SUITE from $MIRROR (+ $PACKAGES)"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 \
  || { tail -30 "$ROOTFS.log" >&2; die "debootstrap failed (log: $ROOTFS.log)"; }
rm -f "$ROOTFS.log"

# Trim what an image does not need; keep apt usable (sources.list stays pointed at the mirror).
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb \
  "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/var/log/*.log \
  "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/*

log "docker import -> $BASE_TAG"
tar --numeric-owner --xattrs -C "$ROOTFS" -c . | docker_cli import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  --message "debootstrap --variant=minbase $SUITE ($MIRROR) + $PACKAGES" \
  - "$BASE_TAG" >/dev/null
version="$(docker_cli run --rm --network none "$BASE_TAG" python3 -c 'import sys, venv; print(sys.version.split()[0])')"
[[ "$version" == 3.11.* ]] || die "$BASE_TAG has Python $version, expected 3.11"
docker_cli run --rm --network none "$BASE_TAG" sh -c 'command -v useradd >/dev/null' \
  || die "$BASE_TAG lacks useradd (package passwd)"
log "$BASE_TAG ready: Python $version, $(docker_cli image inspect -f '{{.Size}}' "$BASE_TAG" | awk '{printf "%.0f MB", $1/1e6}')"
