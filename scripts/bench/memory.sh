#!/usr/bin/env bash
# Memory of idle containers, Cairn and containerd side by side in one run:
# N `sleep 1000` containers under a scratch cairnd, then N under a scratch
# containerd (Debian's 1.6, runc shim v2, one shim per container), each
# measured with scripts/bench/footprint as the whole footprint of the shims
# divided by N: the shims' PSS summed (PSS shares every page among the
# processes that map it), plus for Cairn the standby shim and the resident
# pages of the daemon's sealed shim binary (a memfd) that no shim maps.
# The daemons themselves are reported but not counted.
#
#   scripts/bench/memory.sh [-n N] [--settle S] [--bin DIR] [--no-containerd]
#
# --bin DIR runs the cairnd and cairn (the shim) found in DIR
# instead of building this tree's, e.g. to measure an older commit.
# Needs root and, for the containerd side,
#   apt-get install containerd runc umoci skopeo
# Everything runs under one temp dir with its own sockets, roots and cgroup
# parents, never the system's; everything the script started is stopped and
# removed when it ends, also on failure or Ctrl-C. containerd 1.6's shims put
# their sockets in /run/containerd/s (hard-coded there); they remove them
# when they exit, and the script removes the directories if it created them.
set -euo pipefail
cd "$(dirname "$0")/../.."

n=50
settle=10
bindir=""
with_containerd=1
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=$2; shift 2 ;;
    --settle) settle=$2; shift 2 ;;
    --bin) bindir=$(cd "$2" && pwd); shift 2 ;;
    --no-containerd) with_containerd=0; shift ;;
    *) echo "usage: $0 [-n N] [--settle S] [--bin DIR] [--no-containerd]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
if [ "$with_containerd" = 1 ]; then
  for tool in containerd ctr containerd-shim-runc-v2 runc umoci skopeo; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install containerd runc umoci skopeo (or --no-containerd)" >&2; exit 1; }
  done
fi

tmp=$(mktemp -d /tmp/cairn-membench-XXXXXX)
tag=$(basename "$tmp" | tr -dc 'a-zA-Z0-9')
cgparent="cairn-membench-$tag"
ns="membench-$tag"
cairnd_pid=""
containerd_pid=""
created_run_containerd=0
[ -e /run/containerd ] || created_run_containerd=1

log() { printf '== %s\n' "$*" >&2; }

cleanup_cairn() {
  [ -n "$cairnd_pid" ] || return 0
  local i
  for i in $(seq "$n"); do "$cairn" --socket "$tmp/cairn/sock" rm -f "m$i" >/dev/null 2>&1 || true; done
  kill "$cairnd_pid" 2>/dev/null || true
  wait "$cairnd_pid" 2>/dev/null || true
  cairnd_pid=""
  # Shims that outlived a failed removal: identified by our exec dir.
  for pid in $(pgrep -f -- "shim --exec-dir $tmp/cairn/root/exec" || true); do kill -9 "$pid" 2>/dev/null || true; done
  for d in /sys/fs/cgroup/*/"$cgparent"; do [ -d "$d" ] && rmdir "$d"/* "$d" 2>/dev/null || true; done
}

cleanup_containerd() {
  [ -n "$containerd_pid" ] || return 0
  local c
  for c in $(ctr -a "$tmp/ctrd/sock" -n "$ns" tasks ls -q 2>/dev/null || true); do
    ctr -a "$tmp/ctrd/sock" -n "$ns" tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true
  done
  for c in $(ctr -a "$tmp/ctrd/sock" -n "$ns" tasks ls -q 2>/dev/null || true); do
    for _ in $(seq 50); do
      ctr -a "$tmp/ctrd/sock" -n "$ns" tasks rm "$c" >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
  for c in $(ctr -a "$tmp/ctrd/sock" -n "$ns" containers ls -q 2>/dev/null || true); do
    ctr -a "$tmp/ctrd/sock" -n "$ns" containers rm "$c" >/dev/null 2>&1 || true
  done
  ctr -a "$tmp/ctrd/sock" -n "$ns" images rm docker.io/library/busybox:latest >/dev/null 2>&1 || true
  kill "$containerd_pid" 2>/dev/null || true
  wait "$containerd_pid" 2>/dev/null || true
  containerd_pid=""
  for pid in $(pgrep -f -- "containerd-shim-runc-v2 -namespace $ns " || true); do kill -9 "$pid" 2>/dev/null || true; done
  for d in /sys/fs/cgroup/*/"$ns"; do [ -d "$d" ] && rmdir "$d"/* "$d" 2>/dev/null || true; done
}

cleanup() {
  set +e
  cleanup_cairn
  cleanup_containerd
  # Anything still mounted under the temp dir (overlay rootfs of a
  # container whose removal failed) would make rm -rf fail.
  grep -o " $tmp/[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$tmp"
  if [ "$created_run_containerd" = 1 ]; then
    rmdir /run/containerd/s /run/containerd/runc /run/containerd 2>/dev/null
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$tmp/bin"
log "building the footprint tool and the busybox image"
go build -o "$tmp/bin/footprint" ./scripts/bench/footprint
go run ./scripts/mkbusybox "$tmp/busybox.tar"
if [ -z "$bindir" ]; then
  log "building this tree's cairnd and cairn"
  go build -tags seccomp -o "$tmp/bin/" ./cmd/cairnd ./cmd/cairn
  bindir="$tmp/bin"
fi
cairnd="$bindir/cairnd"
cairn="$bindir/cairn"
shim="$bindir/cairn"

footprint() { "$tmp/bin/footprint" "$@"; }
pids_csv() { tr '\n' ',' | sed 's/,$//'; }

# ---- Cairn
log "cairn: $n containers (shim binary $(basename "$shim"), $(stat -c %s "$shim") bytes)"
mkdir -p "$tmp/cairn"
"$cairnd" --root "$tmp/cairn/root" --socket "$tmp/cairn/sock" --shim "$shim" \
  --cgroup-parent "$cgparent" --metrics-addr "" >"$tmp/cairn/log" 2>&1 &
cairnd_pid=$!
for _ in $(seq 100); do "$cairn" --socket "$tmp/cairn/sock" image ls >/dev/null 2>&1 && break; sleep 0.1; done
"$cairn" --socket "$tmp/cairn/sock" image import "$tmp/busybox.tar" busybox >/dev/null
for i in $(seq "$n"); do
  "$cairn" --socket "$tmp/cairn/sock" run -d --name "m$i" busybox sleep 1000 >/dev/null
done
sleep "$settle"
running="" standby=""
for pid in $(pgrep -P "$cairnd_pid"); do
  if [ -n "$(pgrep -P "$pid")" ]; then running="$running $pid"; else standby="$standby $pid"; fi
done
echo "### cairn: $n containers, $(echo "$running" | wc -w) shims, $(echo "$standby" | wc -w) standby"
footprint -memfd "$cairnd_pid:cairn-shim" -per "$n" \
  "shims=$(echo "$running" | tr ' ' '\n' | grep . | pids_csv)" \
  "standby=$(echo "$standby" | tr ' ' '\n' | grep . | pids_csv)" | grep -v '^shims '
echo "cairnd: $(grep VmRSS /proc/"$cairnd_pid"/status | tr -s ' ')"
cleanup_cairn

# ---- containerd
if [ "$with_containerd" = 1 ]; then
  log "containerd: $n containers"
  mkdir -p "$tmp/ctrd"
  cat >"$tmp/ctrd/config.toml" <<EOF
version = 2
root = "$tmp/ctrd/root"
state = "$tmp/ctrd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$tmp/ctrd/sock"
[ttrpc]
  address = "$tmp/ctrd/sock.ttrpc"
[debug]
  address = "$tmp/ctrd/debug.sock"
EOF
  containerd --config "$tmp/ctrd/config.toml" >"$tmp/ctrd/log" 2>&1 &
  containerd_pid=$!
  for _ in $(seq 100); do ctr -a "$tmp/ctrd/sock" version >/dev/null 2>&1 && break; sleep 0.1; done
  # The busybox rootfs tar as a one-layer image.
  (cd "$tmp" && umoci init --layout oci && umoci new --image oci:latest &&
    umoci unpack --image oci:latest bundle >/dev/null && tar -C bundle/rootfs -xf busybox.tar &&
    umoci repack --image oci:latest bundle && umoci config --image oci:latest --config.cmd sh &&
    skopeo copy -q oci:oci:latest docker-archive:busybox-image.tar:busybox:latest) >&2
  ctr -a "$tmp/ctrd/sock" -n "$ns" images import "$tmp/busybox-image.tar" >/dev/null
  for i in $(seq "$n"); do
    ctr -a "$tmp/ctrd/sock" -n "$ns" run -d --null-io --runc-root "$tmp/ctrd/runc" \
      docker.io/library/busybox:latest "m$i" sleep 1000
  done
  sleep "$settle"
  shims=$(pgrep -f -- "containerd-shim-runc-v2 -namespace $ns " | pids_csv)
  echo "### containerd $(containerd --version | awk '{print $3}'): $n containers, $(echo "$shims" | tr ',' '\n' | wc -l) shims"
  footprint -per "$n" "shims=$shims" | grep -v '^shims '
  echo "containerd: $(grep VmRSS /proc/"$containerd_pid"/status | tr -s ' ')"
  cleanup_containerd
fi
