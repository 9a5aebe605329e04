#!/usr/bin/env bash
# Installs Helm into the repository's ignored .cache/bin/ when it is missing (or not the pinned version),
# built from source through the Go module proxy; prints the binary's path on stdout.
#   deploy/tools/install-helm.sh            # -> <repo>/.cache/bin/helm
# Without a Go toolchain (>= 1.21) on PATH or in /usr/local/go, the pinned Go toolchain is itself
# fetched from the module proxy (golang.org/toolchain) into .cache/go-toolchain/.
# Helm 3.22 needs Go 1.26; an older Go >= 1.21 switches to it by itself (GOTOOLCHAIN=auto).
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# Kubernetes version of Helm's default capabilities (what upstream's Makefile derives from client-go v0.37).
HELM_K8S_MINOR="${HELM_K8S_MINOR:-37}"
GO_TOOLCHAIN="${GO_TOOLCHAIN:-go1.26.0}"
GOPROXY="${GOPROXY:-https://proxy.golang.org}"
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
candidates=("$(command -v go || true)" /usr/local/go/bin/go)
# INSTALL_HELM_FRESH=1 ignores any installed Go (exercises the fresh-machine path).
[[ "${INSTALL_HELM_FRESH:-0}" == 1 ]] && candidates=()
for candidate in "${candidates[@]}" "$ROOT/.cache/go-toolchain/bin/go"; do
  if [[ -n "$candidate" && -x "$candidate" ]] && go_ok "$candidate"; then GO="$candidate"; break; fi
done

if [[ -z "$GO" ]]; then
  case "$(uname -m)" in
    x86_64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; *) echo "install-helm.sh: unsupported machine $(uname -m)" >&2; exit 1 ;;
  esac
  zip="$ROOT/.cache/go-toolchain.zip"
  url="${GOPROXY%%,*}/golang.org/toolchain/@v/v0.0.1-${GO_TOOLCHAIN}.linux-${arch}.zip"
  echo "install-helm.sh: no Go >= 1.21; fetching $url" >&2
  curl -fsSL --retry 3 -o "$zip" "$url"
  rm -rf "$ROOT/.cache/go-toolchain" "$ROOT/.cache/go-toolchain.unzip"
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$zip" "$ROOT/.cache/go-toolchain.unzip"
  mv "$ROOT/.cache/go-toolchain.unzip/golang.org/toolchain@v0.0.1-${GO_TOOLCHAIN}.linux-${arch}" "$ROOT/.cache/go-toolchain"
  rm -rf "$ROOT/.cache/go-toolchain.unzip" "$zip"
  chmod +x "$ROOT/.cache/go-toolchain/bin/"* "$ROOT/.cache/go-toolchain/pkg/tool/"*/* 2>/dev/null || true
  GO="$ROOT/.cache/go-toolchain/bin/go"
fi

echo "install-helm.sh: building helm $HELM_VERSION with $("$GO" env GOVERSION) (a few minutes)" >&2
GOBIN="$BIN" GOPROXY="$GOPROXY" GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" GOFLAGS="${GOFLAGS:-} -trimpath" \
  "$GO" install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${HELM_K8S_MINOR} \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${HELM_K8S_MINOR}" \
  "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2
"$HELM" version >/dev/null
echo "$RECIPE" > "$STAMP"
echo "$HELM"
