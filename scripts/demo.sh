#!/usr/bin/env bash
# Installs what is needed, builds cairnd and cairn into ./bin, starts cairnd
# on a scratch root, imports a busybox image and runs containers through the
# whole lifecycle. Run as root (no sudo needed or used). KEEP=1 leaves the daemon running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
echo "== build"
go build -tags seccomp -o bin/ ./cmd/cairnd ./cmd/cairn
work=${CAIRN_DEMO_DIR:-/tmp/cairn-demo}
rm -rf "$work" && mkdir -p "$work"
export CAIRN_SOCKET="$work/cairn.sock"
cairn() { ./bin/cairn "$@"; }
step() {
  printf '\n$ cairn'
  for a in "$@"; do
    case "$a" in *[[:space:]\"\$\;]*) printf " '%s'" "$a" ;; *) printf ' %s' "$a" ;; esac
  done
  printf '\n'
  cairn "$@"
}

start_daemon() {
  ./bin/cairnd --root "$work/root" --socket "$CAIRN_SOCKET" --metrics-addr 127.0.0.1:9464 >>"$work/cairnd.log" 2>&1 &
  daemon=$!
  for _ in $(seq 200); do cairn image ls >/dev/null 2>&1 && return; sleep 0.05; done
  echo "cairnd did not start; see $work/cairnd.log" >&2; exit 1
}
start_daemon
cleanup() {
  if [ "${KEEP:-}" = 1 ]; then
    echo; echo "cairnd left running (pid $daemon): export CAIRN_SOCKET=$CAIRN_SOCKET; log: $work/cairnd.log"
    return
  fi
  cairn ps -aq --no-trunc 2>/dev/null | xargs -r ./bin/cairn rm -f >/dev/null 2>&1 || true
  kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
}
trap cleanup EXIT
go run ./scripts/mkbusybox "$work/busybox.tar"
step image import "$work/busybox.tar" busybox
step run --rm busybox sh -c 'echo "hello from $(hostname), pid $$ in my own namespaces"'
step run --name web -d busybox sh -c 'trap "echo bye; exit 0" TERM; echo started; while true; do sleep 1; done'
step pause web
echo "freezer: $(cat /sys/fs/cgroup/freezer/cairn/"$(cairn inspect --format '{{.id}}' web)"/freezer.state)"
step ps
step unpause web
step stop web
step logs web
step run --rm busybox sh -c 'exit 3' || echo "(exit status $?)"
step history web
step rm web

echo; echo "== crash recovery: kill -9 cairnd while containers run, exit or stay paused"
step run -d --name survivor busybox sh -c 'echo data >> /root/file; while true; do sleep 1; done'
step run -d --name napper busybox sh -c 'while true; do sleep 1; done'
step pause napper
step run -d --name quick busybox sh -c 'sleep 1; exit 7'
step ps
kill -9 "$daemon"; wait "$daemon" 2>/dev/null || true
echo; echo "(cairnd killed with SIGKILL; 'quick' exits with 7 while it is down)"; sleep 2
start_daemon
echo "(cairnd restarted: recovery reattached what runs and recorded what exited)"
step ps -a
step history survivor
step history quick
echo; echo "demo done: the journal is $work/root/cairn.db, the daemon log $work/cairnd.log"
