#!/usr/bin/env bash
# Benchmarks of issue 11 part A, side by side in one run, on a scratch
# cairnd (its own root, socket and cgroup parent), as root:
#   1. `cairn stats --no-stream` over N running containers (default 100);
#   2. `cairn run --rm busybox true` without a seccomp filter or limits,
#      with the defaults (Docker's seccomp profile, pids limit 4096,
#      nofile), and with the defaults plus memory, CPU and pids limits,
#      interleaved so that the machine's drift hits each alike.
# Usage: scripts/bench/workload.sh [CONTAINERS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
containers=${1:-100}
runs=${2:-60}
tmp=$(mktemp -d /tmp/cairn-bench-workload.XXXXXX)
go build -tags seccomp -o "$tmp/bin/" ./cmd/cairnd ./cmd/cairn
go run ./scripts/mkbusybox "$tmp/busybox.tar"
cgroup=cairn-bench-$$
"$tmp/bin/cairnd" --root "$tmp/root" --socket "$tmp/s.sock" --metrics-addr "" --cgroup-parent "$cgroup" --config "" >"$tmp/cairnd.log" 2>&1 &
daemon=$!
cleanup() {
  CAIRN_SOCKET="$tmp/s.sock" "$tmp/bin/cairn" ps -a --format json 2>/dev/null | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p' |
    xargs -r env CAIRN_SOCKET="$tmp/s.sock" "$tmp/bin/cairn" rm -f >/dev/null 2>&1 || true
  kill "$daemon" 2>/dev/null || true
  wait "$daemon" 2>/dev/null || true
  rmdir /sys/fs/cgroup/*/"$cgroup" 2>/dev/null || true # the containers' parent, empty by now
  rm -rf "$tmp"
}
trap cleanup EXIT
export CAIRN_SOCKET="$tmp/s.sock"
cairn="$tmp/bin/cairn"
for _ in $(seq 100); do "$cairn" ps >/dev/null 2>&1 && break; sleep 0.1; done
"$cairn" image import "$tmp/busybox.tar" busybox >/dev/null

ms() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1e6}'; }
p90() { sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int(NR*0.9+0.5)]/1e6}'; }

echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -r); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ); commit $(git rev-parse --short HEAD)$(git diff --quiet || echo +changes)"

# 2. run --rm true, three variants interleaved.
declare -A times
variants=(plain defaults limits)
args_plain="--security-opt seccomp=unconfined --pids-limit -1"
args_defaults=""
args_limits="--memory 256m --cpus 1 --pids-limit 100"
for v in "${variants[@]}"; do a="args_$v"; "$cairn" run --rm ${!a} busybox true; done # warm up
for i in $(seq "$runs"); do
  for v in "${variants[@]}"; do
    a="args_$v"
    t0=$(ms); "$cairn" run --rm ${!a} busybox true; t1=$(ms)
    times[$v]+="$((t1 - t0))"$'\n'
  done
done
echo
echo "cairn run --rm busybox true, $runs runs each, interleaved (ms):"
printf '  %-60s %8s %8s\n' variant median p90
base=$(printf '%s' "${times[plain]}" | median)
for v in "${variants[@]}"; do
  a="args_$v"
  med=$(printf '%s' "${times[$v]}" | median)
  printf '  %-60s %8s %8s   %+.1f%%\n' "$v (${!a:-no flags: seccomp default, pids 4096})" "$med" "$(printf '%s' "${times[$v]}" | p90)" \
    "$(awk -v m="$med" -v b="$base" 'BEGIN {print (m-b)/b*100}')"
done

# 1. stats over many containers.
for _ in $(seq "$containers"); do "$cairn" run -d --memory 64m busybox sleep 3600 >/dev/null; done
"$cairn" stats --no-stream >/dev/null
st=""
for _ in $(seq 20); do
  t0=$(ms); "$cairn" stats --no-stream >/dev/null; t1=$(ms)
  st+="$((t1 - t0))"$'\n'
done
rows=$("$cairn" stats --no-stream --format json | wc -l)
echo
echo "cairn stats --no-stream over $rows running containers, 20 runs (ms; includes the 100 ms CPU window):"
printf '  median %s   p90 %s\n' "$(printf '%s' "$st" | median)" "$(printf '%s' "$st" | p90)"
