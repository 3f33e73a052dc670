#!/usr/bin/env bash
# The fleet simulation (issue 16, "A faulty fleet"): AGENTS in-process agents (tools/fleet/fleet_sim.cc,
# over libairlock-client) enroll to a real airlockd (SQLite) through fault-proxy at FAULT_RATE (spread
# over truncate, corrupt, stall, reset and replay; stalls hold a reply 1 s); a small release is
# published with the airlock CLI; then poll cycles, the share on the new release and the bad
# installs printed after each. Admin calls go to airlockd directly; every device request (enroll,
# check, TUF metadata, blobs, reports) goes through the proxy, which forwards from 200 loopback
# source addresses (airlockd limits enrollments per address, as devices come from many).
#   bench/fleet.sh BUILD_DIR [--agents N] [--fault-rate R] [--threads T] [--cycles C] [--retries K]
#                  [--shipped-rules]
# Ends with
#   fleet_within_3_cycles share=S goal>=0.999 met|missed
#   fleet_bad_installs count=C goal=0 met|missed
# and exits 0 when every agent converged and none is bad. Everything runs under a temporary folder.
set -u
BUILD="$(cd "$1" && pwd)"
shift
AGENTS=1000 RATE=0.05 THREADS=16 CYCLES=3 RETRIES=6 RULES=off
while [ "$#" -gt 0 ]; do
  case "$1" in
    --agents) AGENTS="$2"; shift 2 ;;
    --fault-rate) RATE="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --cycles) CYCLES="$2"; shift 2 ;;
    --retries) RETRIES="$2"; shift 2 ;;
    --shipped-rules) RULES=shipped; shift ;;
    *) echo "usage: bench/fleet.sh BUILD_DIR [--agents N] [--fault-rate R] [--threads T] [--cycles C] [--retries K] [--shipped-rules]"; exit 2 ;;
  esac
done
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/../tests/lib.sh"
. "$HERE/../tests/fleet_lib.sh"
server_test_setup "fleet bench" "$BUILD/bin" "$HERE/.."
for b in "$A" "$D" "$BIN/fault-proxy" "$BIN/fleet-sim"; do
  [ -x "$b" ] || { echo "missing $b (build airlock airlockd fault-proxy fleet-sim)"; exit 1; }
done
FPROXY=""
trap 'stop_pid "$FPROXY"; stop_and_clean' EXIT
require_tools python3 curl
APP=com.example.fleet

init_server
# airlockd's port first (the proxy needs it), then the proxy, then airlockd with the proxy as its
# public URL so that the blob URLs handed to devices go through the faults too.
UP=$(free_port)
start_fault_proxy PP "$UP" -- --fault-rate "$RATE" --source-addresses 200 --seed "${SEED:-$$}"
VIA="http://127.0.0.1:$PP"
start_airlockd "$UP" "$VIA" PID
SERVER="http://127.0.0.1:$UP"
setup_app "$APP"
# The monitor's rules on device failure reports: a corrupted blob reports hash_mismatch, a
# corrupted signed file signature_invalid, any refusal counts as a failed install (which pauses the
# release), and over plain HTTP the proxy's corruption is indistinguishable from tampering to the
# devices (the server's own copy is intact, so no key moves). Off unless --shipped-rules: the
# simulation measures delivery; docs/benchmarks.md has a run with the rules as shipped.
if [ "$RULES" = off ]; then
  for rule in release_failure_rate tampered_content mass_verification_failures foreign_signature; do
    run 0 "" "$A" alert rules set "$rule" enabled=false --server "$SERVER" --token "$TOKEN"
  done
fi
small_release "$APP" 1.0.0
[ "$fail" -eq 0 ] || exit 1

echo "fleet: $AGENTS agents, fault rate $RATE, $THREADS threads, $CYCLES cycles, $RETRIES retries after an error, failure-report rules $RULES"
start=$(date +%s)
"$BIN/fleet-sim" --server "$VIA" --app "$APP" --root "$W/root-$APP.json" \
  --enrollment-token "$(cat "$W/enroll-$APP")" --dir "$W/agents" --version 1.0.0 \
  --release-dir "$W/rel-1.0.0" --agents "$AGENTS" --threads "$THREADS" --cycles "$CYCLES" \
  --retries "$RETRIES" 2>"$W/fleet.err"
rc=$?
stop_pid "$FPROXY"
FPROXY=""
echo "faults: $(tail -n 1 "$W/fault-proxy.log")"
echo "took $(($(date +%s) - start)) s"
[ "$rc" -eq 0 ] || { echo "fleet-sim exit $rc; its stderr:"; head -40 "$W/fleet.err"; }
exit "$rc"
