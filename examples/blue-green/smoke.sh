#!/bin/sh
# The verification gate of examples/blue-green: cortado runs it (no shell around it, in this
# directory) while ECS holds the deployment at POST_TEST_TRAFFIC_SHIFT, with the deployment's
# facts in CORTADO_* variables. Exit 0 continues the deployment; anything else rolls it back.
#
# A real gate would exercise the green tasks through the test listener, for example
#   curl -fsS "$CORTADO_TEST_URL/health"
# The sandbox's load balancers have no data plane, so this one only shows what it was given.
# SMOKE_FAIL=1 makes it fail, to rehearse a rollback.
set -eu
echo "checking $CORTADO_REVISION of $CORTADO_SERVICE at $CORTADO_STAGE"
echo "test listener: ${CORTADO_TEST_URL:-unknown}"
echo "green target group: ${CORTADO_GREEN_TARGET_GROUP_ARN:-unknown}"
if [ "${SMOKE_FAIL:-0}" = "1" ]; then
  echo "smoke test failed (SMOKE_FAIL=1)" >&2
  exit 1
fi
echo "smoke test passed"
