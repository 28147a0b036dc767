#!/usr/bin/env bash
# Side-by-side image benchmarks (docs/benchmarks.md, issue 8 part B), as root:
#   1. cairn pull of a 5-layer, ~200 MB image from Debian's docker-registry on
#      127.0.0.1, beside `skopeo copy docker://... oci:...` of the same image;
#      then a second image sharing 4 of its 5 layers (only the new one moves).
#   2. cairn image load of the same image (oci-archive, gzip layers) beside
#      `tar -xzf` of its layers into directories on the same disk (with and
#      without a sync, since a load syncs what it extracted).
# Every number is the median of RUNS runs, each on a fresh store or directory.
# Needs: go, docker-registry, skopeo, umoci (scripts/install-deps.sh --dev).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-5}
LAYER_MB=${LAYER_MB:-40}
work=$(mktemp -d /var/tmp/cairn-bench-images.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  umount -R "$work"/root/layer/mounts/*/merged 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

go build -o "$work/bin/" ./cmd/cairnd ./cmd/cairn
cairn="$work/bin/cairn"

# The image: umoci layers of files, half random (incompressible) and half
# text, ~LAYER_MB MB each, plus a sixth for the second image.
L="$work/layout"
umoci init --layout "$L" >/dev/null
umoci new --image "$L:bench" >/dev/null
mklayer() { # n
  local d="$work/src-$1"
  mkdir -p "$d/data/layer$1"
  for f in $(seq 1 8); do
    head -c $((LAYER_MB * 1024 * 1024 / 16)) /dev/urandom >"$d/data/layer$1/random-$f"
    (yes "layer $1 file $f: some text that compresses well" || true) | head -c $((LAYER_MB * 1024 * 1024 / 16)) >"$d/data/layer$1/text-$f"
  done
  tar -C "$d" -cf "$work/layer$1.tar" data
}
for i in 1 2 3 4 5 6; do mklayer "$i"; done
for i in 1 2 3 4 5; do umoci raw add-layer --image "$L:bench" "$work/layer$i.tar" >/dev/null; done
umoci config --image "$L:bench" --config.cmd true >/dev/null
# bench2 = the first 4 layers of bench + layer 6.
umoci new --image "$L:second" >/dev/null
for i in 1 2 3 4 6; do umoci raw add-layer --image "$L:second" "$work/layer$i.tar" >/dev/null; done
skopeo copy -q "oci:$L:bench" "oci-archive:$work/bench.oci.tar:bench"
image_mb=$(du -sm "$work/bench.oci.tar" | cut -f1)

# The registry, on loopback only, and cairnd on a disk root.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
until curl -fs "http://127.0.0.1:$port/v2/" >/dev/null; do sleep 0.1; done
skopeo copy -q --dest-tls-verify=false "oci:$L:bench" "docker://127.0.0.1:$port/bench:v1"
skopeo copy -q --dest-tls-verify=false "oci:$L:second" "docker://127.0.0.1:$port/bench:second"

export CAIRN_SOCKET="$work/cairn.sock"
"$work/bin/cairnd" --root "$work/root" --socket "$CAIRN_SOCKET" --metrics-addr "" --cgroup-parent "cairn-bench-$$" >"$work/cairnd.log" 2>&1 &
pids+=($!)
until "$cairn" version >/dev/null 2>&1; do sleep 0.1; done

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
fresh_store() { "$cairn" image rm "127.0.0.1:$port/bench:v1" >/dev/null 2>&1 || true; "$cairn" image prune -a >/dev/null; }
ref="127.0.0.1:$port/bench:v1"

pull_s=(); skopeo_s=(); umoci_s=(); load_s=(); tar_s=(); tarsync_s=()
for r in $(seq 1 "$RUNS"); do
  fresh_store
  t0=$(now); "$cairn" pull -q --insecure-registry "$ref" >/dev/null; t1=$(now)
  pull_s+=("$(echo "$t1 - $t0" | bc)")
  rm -rf "$work/skopeo-oci"; sync
  t0b=$(now); t0=$t0b; skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$work/skopeo-oci:x"; t1=$(now)
  skopeo_s+=("$(echo "$t1 - $t0" | bc)")
  # What gets a runnable rootfs the containers/umoci way: the copy, then an
  # unpack of its layers (and a sync, as cairn's pull makes its layers durable).
  rm -rf "$work/umoci-bundle"
  t0=$(now); umoci unpack --image "$work/skopeo-oci:x" "$work/umoci-bundle" >/dev/null; sync; t2=$(now)
  umoci_s+=("$(echo "$t2 - $t0 + $t1 - $t0b" | bc)")
  fresh_store; sync
  t0=$(now); "$cairn" image load -i "$work/bench.oci.tar" >/dev/null; t1=$(now)
  load_s+=("$(echo "$t1 - $t0" | bc)")
  # tar -xzf of the same gzip layer blobs, one directory each.
  blobs=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(' '.join(l['digest'].split(':')[1] for l in m['layers']))" \
    "$L/blobs/sha256/$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['manifests'][0]['digest'].split(':')[1])" "$L/index.json")")
  for mode in plain sync; do
    rm -rf "$work/tarx"; mkdir -p "$work/tarx"; sync
    t0=$(now)
    for b in $blobs; do mkdir "$work/tarx/$b"; tar -C "$work/tarx/$b" -xzf "$L/blobs/sha256/$b"; done
    [ "$mode" = sync ] && sync
    t1=$(now)
    if [ "$mode" = plain ]; then tar_s+=("$(echo "$t1 - $t0" | bc)"); else tarsync_s+=("$(echo "$t1 - $t0" | bc)"); fi
  done
done
# The second image: 4 of its 5 layers are stored already.
fresh_store
"$cairn" pull -q --insecure-registry "$ref" >/dev/null
t0=$(now); out=$("$cairn" pull --insecure-registry "127.0.0.1:$port/bench:second" 2>&1); t1=$(now)
second_s=$(echo "$t1 - $t0" | bc)
moved=$(grep -c "Verified" <<<"$out" || true)
kept=$(grep -c "Already exists" <<<"$out" || true)

m() { printf '%s\n' "$@" | median; }
p=$(m "${pull_s[@]}"); s=$(m "${skopeo_s[@]}"); u=$(m "${umoci_s[@]}"); l=$(m "${load_s[@]}"); x=$(m "${tar_s[@]}"); xs=$(m "${tarsync_s[@]}")
echo "machine: $(nproc) cores $(lscpu | sed -n 's/Model name: *//p'), $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r), $(date -u +%F)"
echo "image: 5 layers, ${image_mb} MB compressed (gzip), $((LAYER_MB * 5)) MB uncompressed; median of $RUNS runs"
echo
echo "| operation | seconds | MB/s (compressed) | ratio |"
echo "|---|---|---|---|"
printf '| cairn pull (download, verify, extract, sync, register) | %.2f | %.0f | %.2f× skopeo |\n' "$p" "$(echo "$image_mb / $p" | bc -l)" "$(echo "$s / $p" | bc -l)"
printf '| skopeo copy docker:// → oci: (download, verify, write blobs) | %.2f | %.0f | 1 |\n' "$s" "$(echo "$image_mb / $s" | bc -l)"
printf '| skopeo copy, then umoci unpack and sync (a runnable rootfs) | %.2f | %.0f | cairn pull %.2f× faster |\n' "$u" "$(echo "$image_mb / $u" | bc -l)" "$(echo "$u / $p" | bc -l)"
printf '| cairn image load -i oci-archive (spool, verify, extract, sync, register) | %.2f | %.0f | %.2f× tar, %.2f× tar+sync |\n' "$l" "$(echo "$image_mb / $l" | bc -l)" "$(echo "$x / $l" | bc -l)" "$(echo "$xs / $l" | bc -l)"
printf '| tar -xzf of the 5 layers | %.2f | %.0f | 1 |\n' "$x" "$(echo "$image_mb / $x" | bc -l)"
printf '| tar -xzf of the 5 layers, then sync | %.2f | %.0f | |\n' "$xs" "$(echo "$image_mb / $xs" | bc -l)"
printf '| cairn pull of a second image sharing 4 of 5 layers | %.2f | | %s layer moved, %s already stored |\n' "$second_s" "$moved" "$kept"
