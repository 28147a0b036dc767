#!/usr/bin/env bash
# Installs what building, the demo and the tests need on a fresh Debian
# machine, as root: busybox-static (the test image) from apt; for the tests
# (--dev) also umoci and skopeo (they build the test images: multi-layer OCI
# layouts, docker and OCI archives, zstd layers), Debian's prometheus (a
# real server scrapes cairnd in a test; promtool checks the metrics and the
# alert rules), and staticcheck from the Go module proxy; and the CNI
# reference plugins v1.10.0 (bridge, host-local, portmap, loopback, firewall,
# tuning) into /opt/cni/bin with `go install` from the module proxy (Debian's
# containernetworking-plugins 1.1.1 predates CNI GC), with iptables for them.
# Does nothing that is already done.
set -euo pipefail
# libseccomp-dev: cairn is built with -tags seccomp (runc's seccomp support
# links libseccomp), so every build needs it.
packages=(busybox-static iptables libseccomp-dev)
if [ "${1:-}" = "--dev" ]; then
  packages+=(umoci skopeo prometheus)
  # Pull and push tests: Debian's docker-registry (distribution), started by
  # the tests on 127.0.0.1 with a config of their own, and htpasswd for its
  # basic auth.
  packages+=(docker-registry apache2-utils)
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
# docker-registry's packaged service listens on every interface: never run it.
if dpkg -s docker-registry >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
fi
gobin=$(go env GOPATH)/bin
if [ "${1:-}" = "--dev" ] && [ ! -x "$gobin/staticcheck" ]; then
  go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
cni_dir=${CNI_PLUGIN_DIR:-/opt/cni/bin}
cni_version=v1.10.0
# `go install` stamps no version into the plugins: a marker file says which.
if [ ! -x "$cni_dir/portmap" ] || [ ! -e "$cni_dir/.installed-$cni_version" ]; then
  mkdir -p "$cni_dir"
  GOBIN="$cni_dir" go install \
    github.com/containernetworking/plugins/plugins/main/bridge@$cni_version \
    github.com/containernetworking/plugins/plugins/ipam/host-local@$cni_version \
    github.com/containernetworking/plugins/plugins/main/loopback@$cni_version \
    github.com/containernetworking/plugins/plugins/meta/portmap@$cni_version \
    github.com/containernetworking/plugins/plugins/meta/firewall@$cni_version \
    github.com/containernetworking/plugins/plugins/meta/tuning@$cni_version
  touch "$cni_dir/.installed-$cni_version"
fi
