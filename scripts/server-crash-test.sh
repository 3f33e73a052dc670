#!/usr/bin/env bash
# The long run of airlockd's crash-consistency test (ctest server.crash.sqlite and server.crash.pg,
# tests/server_crash_test.sh): the real airlockd SIGKILLed at random points of uploads, publishes,
# rollout changes and rollbacks; after each restart no half release is visible to devices or the
# admin API and the store, the blobs and the TUF repository are consistent.
# Usage: scripts/server-crash-test.sh [ITERATIONS [sqlite|pg|both]] (default 1000 per store, both;
# AIRLOCK_CRASH_SEED=N replays a run's operations and delays). Needs a build:
#   cmake --build build --target airlock airlockd airlock-agent pg-test-server
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(cd "${AIRLOCK_BIN_DIR:-build/bin}" 2>/dev/null && pwd || true)"
for b in airlock airlockd airlock-agent pg-test-server; do
  if [[ -z "$bin" || ! -x "$bin/$b" ]]; then
    echo "server-crash-test: $b is missing; build with: cmake --build build --target airlock airlockd airlock-agent pg-test-server" >&2
    exit 2
  fi
done
stores="${2:-both}"
[ "$stores" = both ] && stores="sqlite pg"
for store in $stores; do
  AIRLOCK_CRASH_ITERATIONS="${1:-1000}" bash tests/server_crash_test.sh "$bin" "$PWD" "$store"
done
