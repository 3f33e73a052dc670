#!/usr/bin/env bash
# Builds the server and monitor tests with ThreadSanitizer into build-tsan/ (-DAIRLOCK_SANITIZE=thread)
# and runs them under it: the server_test and monitor_test executables (the HTTP server's threads, the
# channel and device caches, the key service, the monitor's ticks, two servers on one PostgreSQL) and
# the shell tests that drive the sanitized airlockd (server.cli, server.alerts, server.alerts.pg,
# server.approvals, server.ops). Any report fails: halt_on_error=1, exitcode 66. Only races inside
# third-party libraries may be suppressed, in tests/sanitizers/tsan.supp, with a reason per line.
# Not in CI (a third configuration does not fit the 2-core machine's 90 minutes beside ASan).
# Extra arguments go to the gtest executables (e.g. --gtest_filter='Http*').
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAIRLOCK_SANITIZE=thread >/dev/null
cmake --build build-tsan -j "$(nproc)" --target server_test monitor_test airlockd airlock \
  airlock-agent pg-test-server
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 history_size=4 suppressions=$PWD/tests/sanitizers/tsan.supp"
# TSan's shadow memory needs the fixed layout that address-space randomization with more than 28 bits
# (Linux 6.x defaults) breaks ("unexpected memory mapping"): run without ASLR.
norand=(setarch "$(uname -m)" -R)
status=0
for t in server_test monitor_test; do
  echo "== $t under ThreadSanitizer"
  AIRLOCK_BIN_DIR="$PWD/build-tsan/bin" "${norand[@]}" "build-tsan/bin/$t" "$@" || status=1
done
echo "== server shell tests under ThreadSanitizer"
"${norand[@]}" ctest --test-dir build-tsan --output-on-failure \
  -R '^server\.(cli|alerts|alerts\.pg|approvals|ops)$' || status=1
[ "$status" -eq 0 ] && echo "test-tsan: no race reported" || echo "test-tsan: FAILED"
exit "$status"
