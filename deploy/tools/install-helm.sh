#!/usr/bin/env bash
# Installs Helm into the repository's ignored .cache/bin/ when it is missing (or not the pinned version),
# built from source through the Go module proxy configured for `go` (go env GOPROXY); prints the
# binary's path on stdout.
#   deploy/tools/install-helm.sh            # -> <repo>/.cache/bin/helm
# Needs a Go toolchain >= 1.21 on PATH or in /usr/local/go. Helm 3.22 needs Go 1.26; an older
# Go >= 1.21 fetches that toolchain through the same proxy by itself (GOTOOLCHAIN=auto).
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# Kubernetes version of Helm's default capabilities (what upstream's Makefile derives from client-go v0.37).
HELM_K8S_MINOR="${HELM_K8S_MINOR:-37}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="$ROOT/.cache/bin"
HELM="$BIN/helm"
STAMP="$BIN/.helm-version"
RECIPE="$HELM_VERSION k8s1.$HELM_K8S_MINOR"

if [[ -x "$HELM" && -f "$STAMP" && "$(cat "$STAMP")" == "$RECIPE" ]] && "$HELM" version >/dev/null 2>&1; then
  echo "$HELM"
  exit 0
fi
mkdir -p "$BIN"

go_ok() {  # usable: Go >= 1.21 (can switch toolchains through the proxy)
  local v
  v="$("$1" env GOVERSION 2>/dev/null)" || return 1
  v="${v#go}"
  local major="${v%%.*}" rest="${v#*.}"
  local minor="${rest%%.*}"
  [[ "$major" -gt 1 || ( "$major" -eq 1 && "${minor%%[!0-9]*}" -ge 21 ) ]]
}

GO=""
for candidate in "$(command -v go || true)" /usr/local/go/bin/go; do
  if [[ -n "$candidate" && -x "$candidate" ]] && go_ok "$candidate"; then GO="$candidate"; break; fi
done
if [[ -z "$GO" ]]; then
  echo "install-helm.sh: error: Helm is built from source and needs Go >= 1.21 (on PATH or /usr/local/go)" >&2
  exit 1
fi

echo "install-helm.sh: building helm $HELM_VERSION with $("$GO" env GOVERSION) (a few minutes)" >&2
GOBIN="$BIN" GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" GOFLAGS="${GOFLAGS:-} -trimpath" \
  "$GO" install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${HELM_K8S_MINOR} \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${HELM_K8S_MINOR}" \
  "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2
"$HELM" version >/dev/null
echo "$RECIPE" > "$STAMP"
echo "$HELM"
