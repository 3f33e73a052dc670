#!/usr/bin/env bash
# Runs the whole test suite: installs dependencies, builds, runs every test with CTest; then the
# GoogleTest cases of every module and the fuzz corpora replays again under AddressSanitizer +
# UndefinedBehaviorSanitizer (scripts/test-sanitize.sh: its own build in build-asan/). .ci/run
# calls this. Costs and what the sanitized part leaves out: docs/testing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
bash scripts/test-sanitize.sh -R '^([A-Z].*|fuzz_replay\..*)$'
