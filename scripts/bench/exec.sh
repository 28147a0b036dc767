#!/usr/bin/env bash
# Exec latency and attach throughput, side by side in one run:
#   `cairn exec CTR true`  beside  `runc exec` of a container runc started
#   200 MB through `cairn run -i --rm busybox cat`  beside  a plain pipe
# Usage (as root): scripts/bench/exec.sh [N] [MB]   (default 200 execs each, 200 MB)
# It builds this tree's binaries, starts a scratch cairnd (its own root,
# socket and cgroup parent) and removes everything it made at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-200}
mb=${2:-200}
work=$(mktemp -d /tmp/cairn-bench-exec.XXXXXX)
cg=cairn-bench-exec-$$
daemon=
runc_id=bench-exec-$$
cleanup() {
  set +e
  runc --root "$work/runc" kill "$runc_id" KILL >/dev/null 2>&1
  sleep 0.2
  runc --root "$work/runc" delete -f "$runc_id" >/dev/null 2>&1
  if [ -n "$daemon" ]; then
    for c in $(CAIRN_SOCKET="$work/sock" "$work/bin/cairn" ps -a --format json | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p'); do
      CAIRN_SOCKET="$work/sock" "$work/bin/cairn" rm -f "$c" >/dev/null 2>&1
    done
    kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  fi
  rmdir /sys/fs/cgroup/*/"$cg" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
go build -o "$work/bin/" ./cmd/cairnd ./cmd/cairn
go run ./scripts/mkbusybox "$work/busybox.tar"
export CAIRN_SOCKET="$work/sock"
cairn() { "$work/bin/cairn" "$@"; }
"$work/bin/cairnd" --root "$work/root" --socket "$CAIRN_SOCKET" --cgroup-parent "$cg" --metrics-addr "" >"$work/cairnd.log" 2>&1 &
daemon=$!
for _ in $(seq 200); do cairn image ls >/dev/null 2>&1 && break; sleep 0.05; done
cairn image import "$work/busybox.tar" busybox >/dev/null
cairn run -d --name bench busybox sleep 100000 >/dev/null

# runc's container: the same rootfs, detached, no terminal.
mkdir -p "$work/bundle/rootfs" "$work/runc"
tar -xf "$work/busybox.tar" -C "$work/bundle/rootfs"
(cd "$work/bundle" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"sleep", "100000"/' config.json)
runc --root "$work/runc" run -d --bundle "$work/bundle" "$runc_id" </dev/null >/dev/null 2>&1

ms() { echo "scale=3; ($2 - $1) / 1000000" | bc; }
: >"$work/cairn.ms"; : >"$work/runc.ms"
for _ in 1 2 3 4 5; do cairn exec bench true; runc --root "$work/runc" exec "$runc_id" true; done # warm
for _ in $(seq "$n"); do
  t0=$(date +%s%N); cairn exec bench true; t1=$(date +%s%N)
  runc --root "$work/runc" exec "$runc_id" true; t2=$(date +%s%N)
  ms "$t0" "$t1" >>"$work/cairn.ms"; ms "$t1" "$t2" >>"$work/runc.ms"
done
stats() { sort -n "$1" | awk '{a[NR]=$1} END {printf "median %.1f ms  p90 %.1f ms  p99 %.1f ms  (n=%d)", a[int(NR*0.5)+1], a[int(NR*0.9)], a[int(NR*0.99)], NR}'; }
med() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int(NR*0.5)+1]}'; }
echo "machine: $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d" " -f1-3 /proc/loadavg)"
echo "cairn exec bench true:   $(stats "$work/cairn.ms")"
echo "runc exec (runc's ctr):  $(stats "$work/runc.ms")"
echo "ratio of medians:        $(echo "scale=2; $(med "$work/cairn.ms") / $(med "$work/runc.ms")" | bc)"

# Attach throughput: a file through run -i cat, and through a plain pipe.
head -c "$((mb << 20))" /dev/urandom >"$work/data"
cat "$work/data" >/dev/null # in the page cache for both
mbps() { echo "scale=1; $mb * 1000000000 / ($2 - $1)" | bc; }
t0=$(date +%s%N); cairn run -i --rm busybox cat <"$work/data" | cat >/dev/null; t1=$(date +%s%N)
t2=$(date +%s%N); cat "$work/data" | cat >/dev/null; t3=$(date +%s%N)
echo "run -i --rm busybox cat, ${mb} MB:  $(mbps "$t0" "$t1") MB/s ($(ms "$t0" "$t1") ms, container start and removal included)"
echo "plain pipe (cat | cat), ${mb} MB:    $(mbps "$t2" "$t3") MB/s"
