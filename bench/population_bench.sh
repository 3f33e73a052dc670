#!/usr/bin/env bash
# /v1/check under a large enrolled fleet (issue 16), a benchmark, not a test:
#   bench/population_bench.sh BUILD_DIR sqlite|pg STRIDE DURATION SMALL LARGE [FLEET]
# One airlockd (--threads 2) on SQLite or on a PostgreSQL of its own (pg-test-server), one app with
# channels production (release 1.0.0 of examples/sample-app, --encrypt none) and beta (empty).
# Devices are written straight into the devices table (bench/population.py: rows as /v1/enroll
# writes them, a mixed population), in stages: SMALL devices, then up to LARGE, then (with FLEET,
# PostgreSQL only) up to FLEET. airlockd is restarted after each stage (cold caches each time).
# The requests are signed /v1/check requests of every STRIDE-th device of the stage's population
# (the first SMALL are all signable; beyond them every STRIDE-th), cycled through by wrk.
#   latency: wrk -t2 -c8 --latency for DURATION at SMALL and at LARGE; the figure is
#            check_p99_1m_vs_1k_DB = p99(LARGE) / p99(SMALL), goal <= 1.2.
#   fleet:   wrk -t2 -c32 --latency for DURATION at FLEET; fleet_checks_per_s_vs_14k =
#            req/s / 14000, goal >= 1.0 with p99 <= 10 ms (both needed for "met").
# Prints one `population ...` line per measurement, then the figure lines.
set -u
if [ $# -lt 6 ]; then
  echo "usage: $0 BUILD_DIR sqlite|pg STRIDE DURATION SMALL LARGE [FLEET]" >&2
  exit 2
fi
BUILD="$(cd "$1" && pwd)"
DB=$2 STRIDE=$3 DURATION=$4 SMALL=$5 LARGE=$6 FLEET=${7:-}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../tests/lib.sh"
server_test_setup "population bench" "$BUILD/bin" "$HERE/.."
export AIRLOCK_ACTOR=bench
require_tools python3 curl wrk
[ "$DB" = pg ] && require_tools psql
die() {
  echo "population_bench: $*"
  sed 's/^/    /' "$W/out" "$W/err" 2>/dev/null | head -8
  exit 1
}
step() { "$@" >"$W/out" 2>"$W/err" </dev/null || die "failed: $*"; }
APP=io.example.fleet

init_server
[ "$DB" = pg ] && start_postgres
start_server
S=(--server "$SERVER" --token "$TOKEN")
step "$A" app create "$APP" "${S[@]}" --no-capgo
step "$A" channel create "$APP" production --default "${S[@]}"
step "$A" channel create "$APP" beta "${S[@]}"
step "$A" release publish "$APP" "${S[@]}" --version 1.0.0 --from "$SRC/examples/sample-app" \
  --channel production --encrypt none

DEVICE_COLUMNS="app_id, device_id, public_key, platform, channel_override, last_seen, signing_key, status"
populate() {  # FIRST END STRIDE: devices FIRST..END-1 into the database
  local t0=$SECONDS
  if [ "$DB" = pg ]; then
    python3 "$HERE/population.py" rows "$1" "$2" "$3" "$APP" |
      psql -q -v ON_ERROR_STOP=1 "$DATABASE" \
        -c "\\copy devices ($DEVICE_COLUMNS) FROM STDIN WITH (FORMAT csv)" >"$W/out" 2>"$W/err" ||
      die "COPY failed"
    # Hint bits, statistics and the bulk load's WAL settled now, not during the measurement.
    psql -q "$DATABASE" -c "VACUUM (ANALYZE) devices" -c "CHECKPOINT" >/dev/null 2>&1
  else
    python3 "$HERE/population.py" sqlite "$W/data/airlock.db" "$1" "$2" "$3" "$APP" \
      >"$W/out" 2>"$W/err" || die "insert failed"
  fi
  echo "population_bench: $DB: devices $1..$(($2 - 1)) written in $((SECONDS - t0)) s" >&2
}
ms() {  # wrk latency text (e.g. 812.00us, 3.21ms, 1.02s) -> milliseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n;
    else if (v ~ /s$/) n *= 1000; else if (v ~ /m$/) n *= 60000; printf "%.3f", n }'
}
# measure POPULATION STEP CONNECTIONS: restart airlockd, sign the requests, warm up, run wrk; sets
# RPS and P99 (ms) and prints a population line.
measure() {
  local pop=$1 stride=$2 conns=$3 sample out
  stop_pid "$PID"
  PID=""
  start_server
  sample=$(python3 "$HERE/population.py" lua "$W/check.lua" "$stride" "$pop" "$APP") ||
    die "lua failed"
  wrk -t2 -c"$conns" -d2s -s "$W/check.lua" "$SERVER/v1/check" >/dev/null
  out=$(wrk -t2 -c"$conns" -d"$DURATION" --latency -s "$W/check.lua" "$SERVER/v1/check")
  echo "$out" >"$W/out"
  # Any answer but 2xx, or a connect/read/write error, fails the run. A request still unanswered
  # after wrk's timeout (2 s) is counted; wrk leaves it out of its latency distribution, so when
  # 1 % or more of the requests timed out the p99 is taken as the timeout.
  if grep -qE 'Non-2xx' <<<"$out" ||
    grep -qE 'Socket errors: connect [1-9]|read [1-9]|write [1-9]' <<<"$out"; then
    echo "$out"
    grep -v '"msg":"request"' "$W/airlockd.log" | tail -5
    die "wrk saw errors at $pop devices"
  fi
  local timeouts requests
  timeouts=$(sed -n 's/.*timeout \([0-9]*\).*/\1/p' <<<"$out")
  timeouts=${timeouts:-0}
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  RPS=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
  P99=$(ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  if [ $((timeouts * 100)) -ge "${requests:-1}" ]; then P99=2000; fi
  echo "population db=$DB devices=$pop distinct_devices_checking=$sample connections=$conns" \
    "rps=$RPS p99_ms=$P99 requests=$requests timeouts_2s=$timeouts" \
    "load=$(cut -d' ' -f1 /proc/loadavg)"
}
verdict() { awk -v r="$1" -v g="$2" -v op="$3" 'BEGIN { ok = (op == "<=") ? r <= g : r >= g;
  printf "ratio=%.2f goal%s%s %s", r, op, g, ok ? "met" : "missed" }'; }

populate 0 "$SMALL" 1
measure "$SMALL" 1 8
P99_SMALL=$P99
populate "$SMALL" "$LARGE" "$STRIDE"
measure "$LARGE" "$STRIDE" 8
P99_LARGE=$P99
echo "check_p99_1m_vs_1k_$DB $(verdict "$(awk -v a="$P99_LARGE" -v b="$P99_SMALL" \
  'BEGIN { print (b > 0) ? a / b : 99 }')" 1.2 "<=") (p99 ${P99_LARGE} ms at $LARGE devices," \
  "${P99_SMALL} ms at $SMALL)"
if [ -n "$FLEET" ]; then
  [ "$DB" = pg ] || die "the fleet figure is for PostgreSQL"
  populate "$LARGE" "$FLEET" "$STRIDE"
  measure "$FLEET" "$STRIDE" 32
  v=$(verdict "$(awk -v r="$RPS" 'BEGIN { print r / 14000 }')" 1.0 ">=")
  p99_ok=$(awk -v p="$P99" 'BEGIN { print (p <= 10) ? "met" : "missed" }')
  [ "$p99_ok" = met ] || v="${v% *} missed"
  echo "fleet_checks_per_s_vs_14k $v p99_ms=$P99 p99_goal<=10 $p99_ok" \
    "($RPS checks/s at $FLEET devices)"
fi
