#!/usr/bin/env bash
# Runs the whole test suite: installs dependencies, builds, runs every test with CTest; then the
# AddressSanitizer + UndefinedBehaviorSanitizer run (scripts/test-sanitize.sh, build-asan/) of the C++
# unit tests (every GoogleTest case, the fuzz corpora replays) and the server's shell tests, which
# drive the sanitized airlockd and airlock. .ci/run calls this. The other shell tests (cli.*, keys.cli,
# agent.*, demo, readme.tour, package.deb, sdk.example, dashboard.*, interop.*, openapi.*, bench.*)
# run in the plain build only, to keep CI well inside its 90 minutes on 2 cores; docs/testing.md says
# why each is left out and what the runs cost.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
# GoogleTest suites are CamelCase, the shell tests lower case: the first alternative is every C++ test.
bash scripts/test-sanitize.sh \
  -R '^([A-Z].*|fuzz_replay\..*|server\.(cli|approvals|alerts|alerts\.pg|publish_trust|ops)|capgo\.plugin)$'
