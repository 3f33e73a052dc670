#!/usr/bin/env bash
# `airlock alert ...` against a real airlockd on 127.0.0.1 (issue 14, "Monitor"): the rules and
# their settings (refused for a read-only token and for bad values, nothing changed), an operator
# declaring the timestamp key compromised, airlockd's monitor rotating it and revoking the old key
# on its own, the alert shown, acknowledged and resolved once, and every step in the audit chain.
#   tests/alert_cli_test.sh BIN_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/lib.sh"
server_test_setup "alert cli test" "$1" "$2"
require_tools python3 curl sqlite3
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $1" "$W/out"; }
APP=com.example.mon

init_server
SERVER_FLAGS="--monitor-interval 1" start_server
S=(--server "$SERVER" --token "$TOKEN")
# Rules that read the wall clock would add alerts to the counts below depending on when CI runs:
# odd_hour (quiet hours, 0-5 UTC by default) for setup_app's changes at night, and
# daily_usage_anomaly for this test's own refused requests if it runs across 00:00 UTC (the daily
# report is still written). Both are tested against a fixed clock in monitor_test.
run 0 "rule odd_hour" "$A" alert rules set odd_hour enabled=false "${S[@]}"
run 0 "rule daily_usage_anomaly" "$A" alert rules set daily_usage_anomaly enabled=false "${S[@]}"
setup_app "$APP"
timestamp_keyid() {
  curl -sf -H "Authorization: Bearer $TOKEN" "$SERVER/api/v1/apps/$APP" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["online_keys"]["timestamp_keyid"])'
}

# ---- rules ----
run 0 "key_failures +medium +suspend_key" "$A" alert rules "${S[@]}"
run 0 "" "$A" alert rules --json "${S[@]}"
[ "$(json 'print([r["settings"]["threshold"] for r in d["rules"] if r["rule"]=="key_failures"][0])')" = 5 ] &&
  ok || bad "key_failures threshold is not the default 5: $(cat "$W/out")"
run 2 "settings is required" "$A" alert rules set key_failures "${S[@]}"
run 1 "threshold must be an integer 1 to 1000000" "$A" alert rules set key_failures threshold=0 "${S[@]}"
run 1 "unknown setting 'treshold'" "$A" alert rules set key_failures treshold=3 "${S[@]}"
run 1 "no rule nope" "$A" alert rules set nope threshold=3 "${S[@]}"
run 0 "" "$A" token create viewer --role read-only "${S[@]}"
VIEWER=$(tail -1 "$W/out")
run 1 "403|may not" "$A" alert rules set key_failures threshold=1 --server "$SERVER" --token "$VIEWER"
run 0 "" "$A" alert rules --json "${S[@]}"
[ "$(json 'print([r["settings"]["threshold"] for r in d["rules"] if r["rule"]=="key_failures"][0])')" = 5 ] &&
  ok || bad "a refused change changed the threshold"
run 0 "rule key_failures" "$A" alert rules set key_failures threshold=3 window=300 "${S[@]}"
run 0 "" "$A" alert rules --json "${S[@]}"
[ "$(json 'r=[r for r in d["rules"] if r["rule"]=="key_failures"][0]["settings"]; print(r["threshold"], r["window"])')" = "3 300" ] &&
  ok || bad "the change did not stick: $(cat "$W/out")"

# ---- a declared compromise: rotated and revoked by airlockd itself ----
OLD=$(timestamp_keyid)
[ -n "$OLD" ] && ok || bad "no timestamp key id"
run 1 "403|may not" "$A" alert declare-compromise "$APP.timestamp" --reason "x" --server "$SERVER" --token "$VIEWER"
run 0 "declared key $APP.timestamp compromised" "$A" alert declare-compromise "$APP.timestamp" \
  --reason "CI image leaked" "${S[@]}"
# The monitor ticks every second; wait (bounded) for its action.
for _ in $(seq 1 100); do
  "$A" alert list --json "${S[@]}" >"$W/out" 2>"$W/err"
  [ "$(json 'print(len([a for a in d["alerts"] if a["action_state"]=="done"]))' 2>/dev/null)" = 1 ] && break
  sleep 0.1
done
[ "$(json 'print(d["alerts"][0]["rule"], d["alerts"][0]["level"], d["alerts"][0]["action_state"])')" = \
  "compromise_declared high done" ] && ok || bad "no done compromise alert: $(cat "$W/out") $(tail -5 "$W/airlockd.log")"
NEW=$(timestamp_keyid)
[ -n "$NEW" ] && [ "$NEW" != "$OLD" ] && ok || bad "the timestamp key was not rotated ($OLD -> $NEW)"
run 0 "compromise_declared" "$A" alert list "${S[@]}"
run 0 "action_result: rotated $APP.timestamp .*revoked $APP.timestamp@1" "$A" alert show 1 "${S[@]}"
run 1 "404|no alert" "$A" alert show 7 "${S[@]}"
run 1 "403|may not" "$A" alert ack 1 --server "$SERVER" --token "$VIEWER"
run 0 "alert 1 acknowledged" "$A" alert ack 1 --note "on it" "${S[@]}"
run 1 "409|acknowledged" "$A" alert ack 1 "${S[@]}"
run 0 "alert 1 resolved" "$A" alert resolve 1 --note "new root signed" "${S[@]}"
run 0 "compromise_declared" "$A" alert list --status resolved "${S[@]}"
run 0 "" "$A" alert list --status open --json "${S[@]}"
[ "$(json 'print(len(d["alerts"]))')" = 0 ] && ok || bad "a resolved alert is still open"

# ---- every step is in the server's audit chain ----
LOG="$W/data/vault.db.audit"
ops=$(sqlite3 "$LOG" "SELECT operation || ':' || result FROM records WHERE purpose = 'monitor' ORDER BY seq" | tr '\n' ' ')
for want in "alert.rules.set:0" "alert.raise:0" "alert.action:0" "alert.ack:0" "alert.resolve:0"; do
  case " $ops " in *" $want "*) ok ;; *) bad "no $want in the audit chain: $ops" ;; esac
done
[ "$(sqlite3 "$LOG" "SELECT COUNT(*) FROM records WHERE operation = 'revoke' AND key_name = '$APP.timestamp@1' AND result = 0")" = 1 ] &&
  ok || bad "the old key's revocation is not in the usage log"
run 0 "" "$A" audit verify --audit "$LOG"

# ---- the scheduled reports (made by the ticks above) and the weekly review's sign-off ----
run 0 "weekly" "$A" alert reports "${S[@]}"
run 0 "" "$A" alert reports --period weekly --json "${S[@]}"
WEEKLY=$(json 'print(d["reports"][0]["id"])')
[ -n "$WEEKLY" ] && ok || bad "no weekly report: $(cat "$W/out")"
run 0 '"period": "weekly"' "$A" alert report "$WEEKLY" "${S[@]}"
run 1 "403|may not" "$A" alert sign-off "$WEEKLY" --note x --server "$SERVER" --token "$VIEWER"
run 0 "signed off report $WEEKLY \(weekly from .*\) as owner" "$A" alert sign-off "$WEEKLY" \
  --note "read it" "${S[@]}"
run 1 "409|signed off" "$A" alert sign-off "$WEEKLY" "${S[@]}"

echo "alert cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
