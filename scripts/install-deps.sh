#!/usr/bin/env bash
# Installs what building, the demo and the tests need on a fresh Debian
# machine: busybox-static (the test image) from apt, staticcheck from the Go
# module proxy. Needs root. Does nothing that is already done.
set -euo pipefail
if ! dpkg -s busybox-static >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
gobin=$(go env GOPATH)/bin
if [ "${1:-}" = "--dev" ] && [ ! -x "$gobin/staticcheck" ]; then
  go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
