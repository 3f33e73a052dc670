#!/usr/bin/env bash
# Runs the whole test suite: installs dependencies, builds, runs every test with CTest. .ci/run calls
# this. The AddressSanitizer + UndefinedBehaviorSanitizer run (scripts/test-sanitize.sh) is not in it
# yet: its cold build on CI's 2 cores has not been timed, so it cannot be shown to fit the 90 minutes
# (docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
