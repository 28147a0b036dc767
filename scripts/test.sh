#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, checks
# formatting, vet and staticcheck, then runs every test with the race
# detector. Run as root: root-only tests (real containers) must not skip.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --dev
export PATH="$(go env GOPATH)/bin:$PATH"

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "not gofmt-formatted:"; echo "$unformatted"; exit 1
fi
echo "== go vet"
go vet -tags seccomp ./...
echo "== staticcheck"
staticcheck -tags seccomp ./...
echo "== go test -race"
export CAIRN_REQUIRE_ROOT_TESTS=1
# -tags seccomp: runc's seccomp support (libseccomp); tests check that
# the default profile is really loaded.
go test -race -count=1 -parallel 4 -timeout 15m -tags seccomp ./...
# Crash points are compiled out of release builds; their own tests run in both.
go test -race -count=1 -tags crashpoints ./internal/crashpoint/
echo "== fuzz (image archive and metadata readers, 20s each)"
for target in FuzzArchive FuzzMetadata; do
  go test -run '^$' -fuzz "^${target}\$" -fuzztime 20s -fuzzminimizetime 2s ./imagearchive/
done
