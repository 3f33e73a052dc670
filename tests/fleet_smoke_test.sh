#!/usr/bin/env bash
# The fleet simulation, small (issue 16, "A faulty fleet"): bench/fleet.sh with 50 agents through the
# fault proxy at 5 % faults. No timing is asserted, so it runs 8 poll cycles (an agent meets a
# damaging fault in about 15 % of cycles: after 3 cycles one of 50 agents is still behind in about
# one run in seven; after 8, in about one in 10^5). The outcome is: every agent converged on the new
# release (fleet-sim's exit 0 and the last cycle), 0 bad installs, both verdict lines printed, and
# the proxy did damage replies (the run is not a fault-free one by luck).
#   tests/fleet_smoke_test.sh BIN_DIR SOURCE_DIR
set -u
BUILD="$(cd "$1/.." && pwd)"
out=$(bash "$2/bench/fleet.sh" "$BUILD" --agents 50 --threads 8 --cycles 8 2>&1)
rc=$?
echo "$out"
fail=0
[ "$rc" -eq 0 ] || { echo "FAIL: bench/fleet.sh exit $rc"; fail=1; }
echo "$out" | grep -Eq '^fleet_within_3_cycles share=[01]\.[0-9]{4} goal>=0\.999 (met|missed)$' ||
  { echo "FAIL: no fleet_within_3_cycles verdict"; fail=1; }
echo "$out" | grep -Eq '^cycle=8 on_new=50 agents=50 share=1\.0000 bad_installs=0 ' ||
  { echo "FAIL: not every agent converged within 8 cycles"; fail=1; }
echo "$out" | grep -Eq '^fleet_bad_installs count=0 goal=0 met$' || { echo "FAIL: bad installs"; fail=1; }
damaged=$(echo "$out" | sed -n 's/^faults: none=[0-9]* truncate=\([0-9]*\) corrupt=\([0-9]*\) stall=\([0-9]*\) reset=\([0-9]*\) replay=\([0-9]*\)$/\1+\2+\3+\4+\5/p')
[ -n "$damaged" ] && [ $((damaged)) -gt 0 ] || { echo "FAIL: the proxy damaged no reply"; fail=1; }
exit "$fail"
