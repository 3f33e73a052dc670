#!/usr/bin/env bash
# Builds the tree with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/ and runs the
# whole test suite on it (the C++ tests and the shell tests, which then drive the sanitized
# binaries). Any finding fails its test: -fno-sanitize-recover=all, halt_on_error, and LeakSanitizer
# at every exit with only third-party leaks suppressed (tests/sanitizers/lsan.supp). Extra arguments
# go to ctest (e.g. -R 'server|capgo').
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Clang: it compiles this tree with the sanitizers in about two thirds of GCC's CPU time
# (docs/testing.md), and the build is the run's largest cost. A build-asan/ made by another
# compiler is started afresh.
# -O1 -g1: line tables are all a report's stack needs; no benchmarks (they measure speed, which a
# sanitized build does not have).
if [[ -f build-asan/CMakeCache.txt ]] && ! grep -q '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang++' build-asan/CMakeCache.txt; then
  rm -rf build-asan
fi
CC=clang CXX=clang++ cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAIRLOCK_SANITIZE=address \
  -DAIRLOCK_BUILD_BENCH=OFF "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" \
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" >/dev/null
cmake --build build-asan -j "$(nproc)"
# Full unwinding on malloc: third-party libraries built without frame pointers (SoftHSM2) otherwise
# leave their frames out of a leak's stack, and the suppression cannot match. verify_asan_link_order=0:
# the tests that run a sanitized binary under faketime preload libfaketime ahead of the ASan
# runtime, which ASan otherwise refuses to start with.
export ASAN_OPTIONS="detect_leaks=1:fast_unwind_on_malloc=0:strict_string_checks=1:verify_asan_link_order=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/sanitizers/lsan.supp"
ctest --test-dir build-asan --output-on-failure -j "$(nproc)" "$@"
