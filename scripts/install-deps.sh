#!/usr/bin/env bash
# Installs what building, the demo and the tests need on a fresh Debian
# machine: busybox-static (the test image) from apt, and for the tests umoci
# and skopeo (they build the test images: multi-layer OCI layouts, docker
# and OCI archives, zstd layers) and staticcheck from the Go module proxy.
# Needs root. Does nothing that is already done.
set -euo pipefail
packages=(busybox-static)
if [ "${1:-}" = "--dev" ]; then
  packages+=(umoci skopeo)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
gobin=$(go env GOPATH)/bin
if [ "${1:-}" = "--dev" ] && [ ! -x "$gobin/staticcheck" ]; then
  go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
