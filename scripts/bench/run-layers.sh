#!/usr/bin/env bash
# `cairn run --rm IMAGE true` on a 10-layer image beside the flat busybox
# image (docs/benchmarks.md, issue 8: target within 10%), as root, in one
# run: the two are timed alternately, RUNS times each, on one cairnd, and
# the medians compared. The 10-layer image is the busybox rootfs plus nine
# small layers, made by umoci and loaded from an oci-archive skopeo wrote.
# Needs: go, umoci, skopeo (scripts/install-deps.sh --dev).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-30}
work=$(mktemp -d /var/tmp/cairn-bench-run.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  umount -R "$work"/root/layer/mounts/*/merged 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

go build -o "$work/bin/" ./cmd/cairnd ./cmd/cairn
go run ./scripts/mkbusybox "$work/busybox.tar"
cairn="$work/bin/cairn"

L="$work/layout"
umoci init --layout "$L" >/dev/null
umoci new --image "$L:ten" >/dev/null
umoci raw add-layer --image "$L:ten" "$work/busybox.tar" >/dev/null
for i in $(seq 2 10); do
  mkdir -p "$work/l$i/layer$i"
  echo "layer $i" >"$work/l$i/layer$i/file"
  tar -C "$work/l$i" -cf "$work/l$i.tar" "layer$i"
  umoci raw add-layer --image "$L:ten" "$work/l$i.tar" >/dev/null
done
umoci config --image "$L:ten" --config.cmd true >/dev/null
skopeo copy -q "oci:$L:ten" "oci-archive:$work/ten.tar:ten:latest"

export CAIRN_SOCKET="$work/cairn.sock"
"$work/bin/cairnd" --root "$work/root" --socket "$CAIRN_SOCKET" --metrics-addr "" --cgroup-parent "cairn-bench-$$" >"$work/cairnd.log" 2>&1 &
pids+=($!)
until "$cairn" version >/dev/null 2>&1; do sleep 0.1; done
"$cairn" image import "$work/busybox.tar" busybox >/dev/null
"$cairn" image load -i "$work/ten.tar" >/dev/null
layers=$("$cairn" image inspect ten:latest | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d.get("image", d).get("diff_ids", [])))')

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
flat=(); ten=()
for img in busybox ten:latest; do "$cairn" run --rm "$img" true; done # warm up
for r in $(seq 1 "$RUNS"); do
  t0=$(now); "$cairn" run --rm busybox true; t1=$(now); flat+=("$(echo "$t1 - $t0" | bc)")
  t0=$(now); "$cairn" run --rm ten:latest true; t1=$(now); ten+=("$(echo "$t1 - $t0" | bc)")
done
f=$(printf '%s\n' "${flat[@]}" | median); t=$(printf '%s\n' "${ten[@]}" | median)
echo "machine: $(nproc) cores $(lscpu | sed -n 's/Model name: *//p'), $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r), $(date -u '+%F %H:%M UTC')"
echo "median of $RUNS runs each, alternating; the 10-layer image has $layers layers"
echo
echo "| image | ms per cairn run --rm IMAGE true | ratio |"
echo "|---|---|---|"
printf '| busybox (flat, 1 layer) | %.1f | 1 |\n' "$(echo "$f * 1000" | bc -l)"
printf '| busybox + 9 layers (10 layers) | %.1f | %.3f× |\n' "$(echo "$t * 1000" | bc -l)" "$(echo "$t / $f" | bc -l)"
