#!/usr/bin/env bash
# Regenerates the committed protobuf and Connect code under api/ with buf and
# local plugins (no network needed once the tools are installed).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$(go env GOPATH)/bin:$PATH"
command -v buf >/dev/null || go install github.com/bufbuild/buf/cmd/buf@v1.75.0
command -v protoc-gen-go >/dev/null || go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
command -v protoc-gen-connect-go >/dev/null || go install connectrpc.com/connect/cmd/protoc-gen-connect-go@v1.21.1
buf lint
buf generate
