#!/usr/bin/env bash
# Two airlockd sharing one PostgreSQL and one data folder (the scale-out set-up), both running the
# monitor every second (issue 14, "each alert once with two airlockd on one PostgreSQL"): refused
# requests spread over both servers raise one alert, a compromise declared on one server is rotated
# once (one NAME@1, revoked; no NAME@2), and each alert is raised and acted on once in the audit
# chain. The race itself (both ticking over the same events at once) is exercised deterministically
# by monitor_test's TwoServersOnOnePostgresRaiseEachAlertOnce.
#   tests/alert_pg_test.sh BIN_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/lib.sh"
server_test_setup "alert pg test" "$1" "$2"
PID2=""
trap 'stop_pid "$PID2"; stop_and_clean' EXIT
require_tools python3 curl sqlite3
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $1" "$W/out"; }
APP=com.example.pg

start_postgres
init_server
SERVER_FLAGS="--monitor-interval 1" start_server
# The second airlockd: same data folder and database, another port.
P2=$(free_port)
SERVER2="http://127.0.0.1:$P2"
"$D" --data "$W/data" --database "$DATABASE" --listen "127.0.0.1:$P2" --public-url "$SERVER2" \
  --threads 2 --monitor-interval 1 >"$W/airlockd2.log" 2>&1 &
PID2=$!
for _ in $(seq 1 300); do
  curl -sf -o /dev/null --max-time 2 "$SERVER2/healthz" && break
  kill -0 "$PID2" 2>/dev/null || break
  sleep 0.05
done
curl -sf -o /dev/null "$SERVER2/healthz" && ok || { echo "FAIL: second airlockd: $(cat "$W/airlockd2.log")"; exit 1; }
# No quiet-hours items in the counts below when this runs at night (as in alert_cli_test.sh).
run 0 "rule odd_hour" "$A" alert rules set odd_hour enabled=false --server "$SERVER" --token "$TOKEN"
setup_app "$APP"

# Six refused requests, three on each server, against a threshold of six.
run 0 "" "$A" alert rules set admin_auth_failures threshold=6 --server "$SERVER2" --token "$TOKEN"
for s in "$SERVER" "$SERVER2" "$SERVER" "$SERVER2" "$SERVER" "$SERVER2"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer alk_$(printf 'b%.0s' $(seq 1 64))" "$s/api/v1/apps")
  [ "$code" = 401 ] && ok || bad "a made-up token got $code"
done
# A compromise declared on the second server.
run 0 "declared" "$A" alert declare-compromise "$APP.snapshot" --reason "drill" --server "$SERVER2" --token "$TOKEN"

# Wait (bounded) until both alerts exist and the rotation is done, as seen from the first server.
for _ in $(seq 1 150); do
  "$A" alert list --json --server "$SERVER" --token "$TOKEN" >"$W/out" 2>"$W/err"
  [ "$(json 'print(sorted((a["rule"], a["action_state"]) for a in d["alerts"]))' 2>/dev/null)" = \
    "[('admin_auth_failures', 'none'), ('compromise_declared', 'done')]" ] && break
  sleep 0.1
done
[ "$(json 'print(len(d["alerts"]))')" = 2 ] && ok || bad "not exactly two alerts: $(cat "$W/out")"
# Give both monitors three more ticks each to raise anything twice, then look again from the other.
sleep 3
run 0 "" "$A" alert list --json --server "$SERVER2" --token "$TOKEN"
[ "$(json 'print(sorted(a["rule"] for a in d["alerts"]))')" = "['admin_auth_failures', 'compromise_declared']" ] &&
  ok || bad "the second server sees other alerts: $(cat "$W/out")"
LOG="$W/data/vault.db.audit"
q() { sqlite3 "$LOG" "$1"; }
[ "$(q "SELECT COUNT(*) FROM records WHERE operation = 'alert.raise'")" = 2 ] && ok || bad "alert.raise records: $(q "SELECT operation, details FROM records WHERE purpose = 'monitor'")"
[ "$(q "SELECT COUNT(*) FROM records WHERE operation = 'alert.action' AND result = 0")" = 1 ] && ok || bad "not one action record"
[ "$(q "SELECT COUNT(*) FROM records WHERE operation = 'rotate' AND key_name LIKE '$APP.snapshot%'")" = 1 ] && ok ||
  bad "the key was not rotated exactly once: $(q "SELECT operation, key_name FROM records WHERE key_name LIKE '$APP.snapshot%'")"
[ "$(q "SELECT COUNT(*) FROM records WHERE operation = 'revoke' AND key_name = '$APP.snapshot@1' AND result = 0")" = 1 ] &&
  ok || bad "the old key was not revoked once"
[ "$(q "SELECT COUNT(*) FROM records WHERE key_name = '$APP.snapshot@2'")" = 0 ] && ok || bad "rotated twice"
run 0 "" "$A" audit verify --audit "$LOG"

echo "alert pg: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
