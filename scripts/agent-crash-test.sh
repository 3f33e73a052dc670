#!/usr/bin/env bash
# The long run of the agent's crash-consistency test (ctest agent.crash, tests/agent_crash_test.sh):
# the real airlock-agent, updating from a real airlockd on 127.0.0.1, SIGKILLed at random points of
# its installs; after each kill `install_dir/current` must be a complete published release and no
# staging may survive the next command; at the end the agent converges to the newest good release.
# Usage: scripts/agent-crash-test.sh [ITERATIONS] (default 1000; AIRLOCK_CRASH_SEED=N replays a
# run's kill delays). Needs a build: cmake --build build --target airlock airlockd airlock-agent
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(cd "${AIRLOCK_BIN_DIR:-build/bin}" 2>/dev/null && pwd || true)"
for b in airlock airlockd airlock-agent; do
  if [[ -z "$bin" || ! -x "$bin/$b" ]]; then
    echo "agent-crash-test: $b is missing; build with: cmake --build build --target airlock airlockd airlock-agent" >&2
    exit 2
  fi
done
AIRLOCK_CRASH_ITERATIONS="${1:-1000}" exec bash tests/agent_crash_test.sh "$bin" "$PWD"
