#!/usr/bin/env bash
# Sets up every peer of the benchmark, idempotently: one virtualenv per Python peer under
# benchmarks/.venvs/, generated code under benchmarks/.gen/, and the Go program under
# benchmarks/go/bin/. Only package registries are used (PyPI, the Go module proxy); once
# everything is installed a re-run touches nothing and works offline.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
VENVS="$BENCH/.venvs"
GEN="$BENCH/.gen"
PY="${BENCH_PYTHON:-python3}"
# Versions of the peers; bump here.
CONNECTRPC_VERSION="${CONNECTRPC_VERSION:-0.13.0}"
CONNECT_GO_VERSION="${CONNECT_GO_VERSION:-v1.21.1}"
PROTOC_GEN_GO_VERSION="${PROTOC_GEN_GO_VERSION:-v1.36.12}"

log() { printf '[setup] %s\n' "$*" >&2; }

mkdir -p "$VENVS" "$GEN"

# make_venv NAME STAMP PACKAGES...: (re)creates a venv when its package list changed.
make_venv() {
  local name="$1"; shift
  local dir="$VENVS/$name" want="$*"
  if [[ -x "$dir/bin/python" && -f "$dir/.bench-stamp" && "$(cat "$dir/.bench-stamp")" == "$want" ]]; then
    return 0
  fi
  log "venv $name: $want"
  rm -rf "$dir"
  uv venv -q --python "$PY" "$dir"
  VIRTUAL_ENV="$dir" uv pip install -q "$@"
  printf '%s' "$want" >"$dir/.bench-stamp"
}

# The ASGI servers every ASGI peer runs on: uvicorn (HTTP/1.1), hypercorn (HTTP/1.1 and h2c;
# ours only), granian (Rust, HTTP/1.1 and h2c, no trailers) and pyvoy (Envoy with embedded
# Python; HTTP/1.1 and h2c with trailers, so gRPC); and gunicorn for the WSGI apps.
GRANIAN_VERSION="${GRANIAN_VERSION:-2.8.9}"
PYVOY_VERSION="${PYVOY_VERSION:-1.3.0}"
# gunicorn 23: in newer releases (26 and 27 at least) gthread hands every new connection to a
# worker thread that waits up to 5 s for its first bytes, so a client pool's idle connections
# (Go's and pyqwest's dial some ahead) stall all 4 threads for 5 s at a time (seen here at
# c=32); 23 waits for the first bytes in its poller.
GUNICORN_VERSION="${GUNICORN_VERSION:-23.0.0}"
COMMON=(uvicorn httptools "grpcio-tools>=1.66" aiohttp "granian==$GRANIAN_VERSION" "pyvoy==$PYVOY_VERSION"
  "gunicorn==$GUNICORN_VERSION")
make_venv ours -e "$ROOT" "${COMMON[@]}" hypercorn py-spy pyinstrument
make_venv official "connectrpc==$CONNECTRPC_VERSION" "protoc-gen-connectrpc==$CONNECTRPC_VERSION" \
  protobuf "${COMMON[@]}"
make_venv grpc grpcio "grpcio-tools>=1.66" protobuf aiohttp

# --- Python code generation (protoc from grpcio-tools) ---------------------------------
gen_py() {
  local name="$1" out="$GEN/$1"; shift
  local py="$VENVS/$name/bin/python"
  local stamp
  stamp="$(cat "$BENCH/proto/bench/v1/bench.proto" "$VENVS/$name/.bench-stamp" | sha256sum | cut -c1-16)"
  if [[ -f "$out/.stamp" && "$(cat "$out/.stamp")" == "$stamp" ]]; then return 0; fi
  log "generating Python code for $name"
  rm -rf "$out" && mkdir -p "$out"
  "$py" -m grpc_tools.protoc -I "$BENCH/proto" --python_out="$out" --pyi_out="$out" "$@" \
    "$BENCH/proto/bench/v1/bench.proto"
  touch "$out/bench/__init__.py" "$out/bench/v1/__init__.py"
  printf '%s' "$stamp" >"$out/.stamp"
}
gen_py ours
gen_py official --plugin=protoc-gen-connectrpc="$VENVS/official/bin/protoc-gen-connectrpc" \
  --connectrpc_out="$GEN/official" --connectrpc_opt=protobuf=google
gen_py grpc --grpc_python_out="$GEN/grpc"

# --- Go: protoc-gen-go and protoc-gen-connect-go from the module proxy -------------------
GOBIN_DIR="$VENVS/gobin"
mkdir -p "$GOBIN_DIR"
if [[ ! -x "$GOBIN_DIR/protoc-gen-go" ]]; then
  log "go install protoc-gen-go $PROTOC_GEN_GO_VERSION"
  GOBIN="$GOBIN_DIR" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
fi
if [[ ! -x "$GOBIN_DIR/protoc-gen-connect-go" ]]; then
  log "go install protoc-gen-connect-go $CONNECT_GO_VERSION"
  GOBIN="$GOBIN_DIR" go install "connectrpc.com/connect/cmd/protoc-gen-connect-go@$CONNECT_GO_VERSION"
fi
GO_DIR="$BENCH/go"
go_stamp="$(cat "$BENCH/proto/bench/v1/bench.proto" "$GO_DIR"/*.go "$GO_DIR/go.mod" | sha256sum | cut -c1-16)"
if [[ ! -x "$GO_DIR/bin/connectbench" || "$(cat "$GO_DIR/bin/.stamp" 2>/dev/null)" != "$go_stamp" ]]; then
  log "building the connect-go peer"
  rm -rf "$GO_DIR/gen" && mkdir -p "$GO_DIR/gen"
  PATH="$GOBIN_DIR:$PATH" "$VENVS/grpc/bin/python" -m grpc_tools.protoc -I "$BENCH/proto" \
    --go_out="$GO_DIR/gen" --go_opt=module=connectbench/gen \
    --connect-go_out="$GO_DIR/gen" --connect-go_opt=module=connectbench/gen \
    "$BENCH/proto/bench/v1/bench.proto"
  (cd "$GO_DIR" && go build -o bin/connectbench .)
  printf '%s' "$go_stamp" >"$GO_DIR/bin/.stamp"
fi
log "ready"
