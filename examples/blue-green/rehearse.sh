#!/bin/sh
# Rehearses a blue/green deploy of this example on a local sandbox, without AWS:
#   1. starts `cortado sandbox serve` (time x60) prepared for this config,
#   2. deploys v1 (creates the service: the first revision is blue),
#   3. deploys v2 (a new GREETING, so a new revision): green scales up, test traffic moves, ./smoke.sh runs as the gate at
#      POST_TEST_TRAFFIC_SHIFT, production traffic moves, a 1-minute bake, clean-up,
#   4. stops the sandbox (also on failure or Ctrl-C), so the next run starts from nothing.
# SMOKE_FAIL=1 ./rehearse.sh rehearses a failing gate (rolled back, exit 3).
# Extra arguments go to the second deploy (e.g. --until test-traffic, --output json).
# CORTADO_BIN runs that binary instead of building this checkout.
set -eu
cd "$(dirname "$0")"
PORT="${CORTADO_SANDBOX_PORT:-4577}"
# The binary itself (not `cargo run`, nor a shell function run in the background, whose PID
# is a subshell's), so that stopping $SERVER stops the server.
if [ -z "${CORTADO_BIN:-}" ]; then
  cargo build --quiet --locked
  CORTADO_BIN="${CARGO_TARGET_DIR:-$(cd ../.. && pwd)/target}/debug/cortado"
fi
cortado() { "$CORTADO_BIN" "$@"; }
if curl -fs "http://127.0.0.1:$PORT/_sandbox/faults" >/dev/null 2>&1; then
  echo "a sandbox already listens on port $PORT (stop it, or set CORTADO_SANDBOX_PORT)" >&2
  exit 1
fi
"$CORTADO_BIN" sandbox serve --port "$PORT" --speed 60 --prepare cortado.yml &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox
for _ in $(seq 1 300); do
  kill -0 "$SERVER" 2>/dev/null || { echo "the sandbox did not start (is port $PORT taken? set CORTADO_SANDBOX_PORT)" >&2; exit 1; }
  curl -fs "$AWS_ENDPOINT_URL/_sandbox/faults" >/dev/null 2>&1 && break
  sleep 0.2
done
echo "== v1: create the service"
SMOKE_FAIL=0 cortado deploy -c cortado.yml
echo "== v2: blue/green with the smoke gate"
GREETING="hello, green" cortado deploy -c cortado.yml "$@"
