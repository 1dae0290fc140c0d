#!/bin/sh
# Rehearses a CodeDeploy blue/green deploy of this example on a local sandbox, without AWS:
#   1. starts `cortado sandbox serve` (time x60) prepared for this config: the target group
#      pair, listeners :80 (production) and :8080 (test), the CodeDeploy application and
#      deployment group named in ecspresso.yml,
#   2. deploys v1 (creates the service: ECS creates a CODE_DEPLOY service's first task set),
#   3. deploys v2 (a new GREETING, so a new revision) through CodeDeploy: CreateDeployment
#      with the AppSpec, the replacement task set, test traffic, the AfterAllowTestTraffic
#      hook, production traffic, the original task set terminated.
# IMAGE_TAG=v1--crash-20s ./rehearse.sh rehearses a crash-looping replacement (stopped with
# CodeDeploy's rollback, exit 3); IMAGE_TAG=v1--hook-fail ./rehearse.sh a failing hook.
# Extra arguments go to the second deploy (e.g. --output json, --wait-until terminated).
set -eu
cd "$(dirname "$0")"
PORT="${CORTADO_SANDBOX_PORT:-4578}"
V2_TAG="${IMAGE_TAG:-v1}"
unset IMAGE_TAG
# The binary itself (not `cargo run`), so that stopping the sandbox stops the server;
# CORTADO_BIN runs that binary instead of building this checkout.
BIN="${CORTADO_BIN:-}"
if [ -z "$BIN" ]; then
  cargo build --quiet --locked
  BIN="${CARGO_TARGET_DIR:-$(cd ../.. && pwd)/target}/debug/cortado"
fi
cortado() { "$BIN" "$@"; }
if curl -fs "http://127.0.0.1:$PORT/_sandbox/faults" >/dev/null 2>&1; then
  echo "a sandbox already listens on port $PORT (stop it, or set CORTADO_SANDBOX_PORT)" >&2
  exit 1
fi
"$BIN" sandbox serve --port "$PORT" --speed 60 --prepare ecspresso.yml &
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
cortado deploy -c ecspresso.yml
echo "== v2: CodeDeploy blue/green"
IMAGE_TAG="$V2_TAG" GREETING="hello, green" cortado deploy -c ecspresso.yml "$@"
