#!/usr/bin/env bash
# The long run of the install engine's crash-consistency test: a child process installs, confirms
# and rolls back sealed releases while it is SIGKILLed at random points, and after each kill the
# install directory must hold a complete release matching its signed hashes, with no staging left.
# Usage: scripts/install-crash-test.sh [ITERATIONS] (default 1000; AIRLOCK_CRASH_SEED=N replays a run).
# Needs a build: cmake --build build --target install_test
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${AIRLOCK_BIN_DIR:-build/bin}/install_test"
if [[ ! -x "$bin" ]]; then
  echo "install-crash-test: $bin is missing; build it with: cmake --build build --target install_test" >&2
  exit 2
fi
AIRLOCK_CRASH_ITERATIONS="${1:-1000}" exec "$bin" --gtest_filter='InstallCrash.*'
