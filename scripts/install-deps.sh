#!/usr/bin/env bash
# Installs what building, the demo and the tests need on a fresh Debian
# machine, as root: busybox-static (the test image) from apt; for the tests
# (--dev) also umoci and skopeo (they build the test images: multi-layer OCI
# layouts, docker and OCI archives, zstd layers), Debian's prometheus (a
# real server scrapes cairnd in a test; promtool checks the metrics and the
# alert rules), and staticcheck from the Go module proxy. Does nothing that
# is already done.
set -euo pipefail
# libseccomp-dev: cairn is built with -tags seccomp (runc's seccomp support
# links libseccomp), so every build needs it.
packages=(busybox-static libseccomp-dev)
if [ "${1:-}" = "--dev" ]; then
  packages+=(umoci skopeo prometheus)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  # The packages' services are not started here (no systemd in CI
  # containers); the tests start their own instances on 127.0.0.1.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
gobin=$(go env GOPATH)/bin
if [ "${1:-}" = "--dev" ] && [ ! -x "$gobin/staticcheck" ]; then
  go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
