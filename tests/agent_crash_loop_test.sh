#!/usr/bin/env bash
# Crash-loop rollbacks through `airlock-agent started` against a real airlockd on 127.0.0.1
# (issue 11, "the app crashing N times in a row rolls back"): a supervisor (tests/agent_app.sh)
# runs `started` at every start of an app that keeps crashing; the crash_loop_limit-th start of
# the unconfirmed release rolls back to the last good one, byte for byte, reported once as
# crash_loop, never retried. Also with the daemon already waiting for the confirmation.
#   tests/agent_crash_loop_test.sh BIN_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/lib.sh"
server_test_setup "agent test" "$1" "$2"
require_tools python3 curl
. "$(dirname "$0")/agent_env.sh"
agent_env_start io.example.crashloop

DEV="$W/device"
APPSH="sh $SRC/tests/agent_app.sh $G $W/agent.toml $DEV $W/app.log"
# The supervisor restarts the app after each switch and rollback; a healthy app confirms itself.
agent_config "$W/agent.toml" "$DEV" "$APPSH" 60s
# The restart command starts the app once and returns; the test plays the supervisor's next starts.
agent_config "$W/once.toml" "$DEV" "$G --config $W/agent.toml started >>$W/app.log" 60s
release() {  # VERSION [crash]: a folder whose files name the version; `crash`: the app dies at start
  mkdir -p "$W/src-$1/js"
  echo "<html>$1</html>" >"$W/src-$1/index.html"
  echo "console.log('$1')" >"$W/src-$1/js/app.js"
  [ -n "${2:-}" ] && echo "this release crashes at start" >"$W/src-$1/crash"
  publish "$1" "$W/src-$1"
}
same_tree() { diff -r "$1" "$2" >/dev/null; }
status_field() { "$G" --config "$W/agent.toml" status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
slots() { ls -A "$DEV/releases" | tr '\n' ' '; }

run 0 "^enrolled with" "$G" --config "$W/agent.toml" enroll
# Nothing installed, nothing awaits: `started` changes nothing and exits 0.
run 0 "^nothing awaits confirmation; running the built-in release$" "$G" --config "$W/agent.toml" started
release 1.0.0
run 0 "installed and confirmed 1.0.0" "$G" --config "$W/agent.toml" update
release 1.1.0
run 0 "installed and confirmed 1.1.0" "$G" --config "$W/agent.toml" update
R11=$(status_field release)
same_tree "$DEV/current" "$W/src-1.1.0" && ok || bad "current is not 1.1.0's files"
run 0 "^nothing awaits confirmation; running 1.1.0 \(release $R11\)$" "$G" --config "$W/agent.toml" started
[ "$(status_field state)" = confirmed ] && ok || bad "started changed a confirmed release"

# ---- 1.2.0 crashes at every start: the third start rolls back, within the update ----
release 1.2.0 crash
: >"$W/app.log"
run 1 "^airlock-agent: error: .*rolled back 1.2.0 \(crash_loop\); running 1.1.0$" \
  "$G" --config "$W/agent.toml" update
[ "$(grep -vc '^airlock-agent: error: ' "$W/err")" -eq 0 ] && [ "$(wc -l <"$W/err")" -eq 1 ] && ok ||
  bad "update's stderr is not one line: $(cat "$W/err")"
R12=$(sed -n 's/^installed 1.2.0 as release \([^;]*\);.*/\1/p' "$W/out")
[ -n "$R12" ] && ok || bad "no release id for 1.2.0 in: $(cat "$W/out")"
python3 - "$W/app.log" "$R12" "$R11" <<'PY' && ok || bad "the supervisor's log: $(cat "$W/app.log")"
import sys
log = open(sys.argv[1]).read().splitlines()
r12, r11 = sys.argv[2], sys.argv[3]
want = [
    "restart 1.2.0",
    f"counted start 1 of 3 of release {r12} (1.2.0), awaiting its confirmation", "crashed",
    f"counted start 2 of 3 of release {r12} (1.2.0), awaiting its confirmation", "crashed",
    "rolled back 1.2.0 (crash_loop): started 3 times without a confirmation; "
    f"running 1.1.0 (release {r11})",
    f"confirmed release {r11} (1.1.0)",
    # the agent runs the restart command for the release it rolled back to
    "restart 1.1.0",
    f"nothing awaits confirmation; running 1.1.0 (release {r11})",
    f"confirmed release {r11} (1.1.0)",
]
assert log == want, log
PY
same_tree "$DEV/current" "$W/src-1.1.0" && ok || bad "current is not 1.1.0's files after the crash loop"
[ "$(readlink "$DEV/current")" = "releases/$R11" ] && ok || bad "current -> $(readlink "$DEV/current")"
[ "$(slots)" = "$R11 " ] && ok || bad "slots after the rollback (only 1.1.0's stays): $(slots)"
"$G" --config "$W/agent.toml" status --json >"$W/status.json"
python3 - "$W/status.json" "$R11" "$R12" <<'PY' && ok || bad "status: $(cat "$W/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["release"] == sys.argv[2] and s["version"] == "1.1.0" and s["state"] == "confirmed", s
assert s["last_rollback_reason"] == "crash_loop", s
assert {"release": sys.argv[3], "version": "1.2.0", "reason": "crash_loop"} in s["failed"], s
PY

# ---- never retried ----
run 1 "failed before \(crash_loop\) and is never retried; staying on 1.1.0" \
  "$G" --config "$W/agent.toml" update
same_tree "$DEV/current" "$W/src-1.1.0" && ok || bad "the crashed release was installed again"
[ ! -e "$DEV/releases/$R12" ] && ok || bad "the crashed release was staged again"

# ---- 1.3.0 crashes too; the update is already waiting for its confirmation when the supervisor's
# ---- later starts come (the daemon's case) ----
release 1.3.0 crash
: >"$W/app.log"
"$G" --config "$W/once.toml" update >"$W/update.out" 2>"$W/update.err" </dev/null &
AGENT_PID=$!
for _ in $(seq 1 600); do  # bounded wait for the first start (the restart command) to be counted
  grep -q "^counted start 1 of 3 of release 1.3.0-" "$W/app.log" 2>/dev/null && break
  kill -0 "$AGENT_PID" 2>/dev/null || break
  sleep 0.05
done
R13=$(sed -n 's/^counted start 1 of 3 of release \([^ ]*\) .*/\1/p' "$W/app.log")
[ -n "$R13" ] && ok || bad "1.3.0 was not started: $(cat "$W/app.log" "$W/update.out" "$W/update.err")"
run 0 "^counted start 2 of 3 of release $R13 \(1.3.0\), awaiting its confirmation$" \
  "$G" --config "$W/agent.toml" started
kill -0 "$AGENT_PID" 2>/dev/null && ok || bad "the update did not wait for the confirmation"
run 0 "^rolled back 1.3.0 \(crash_loop\): started 3 times without a confirmation; running 1.1.0 \(release $R11\)$" \
  "$G" --config "$W/agent.toml" started
same_tree "$DEV/current" "$W/src-1.1.0" && ok || bad "current is not 1.1.0's files after started rolled back"
wait "$AGENT_PID"
code=$?
AGENT_PID=""
[ "$code" -eq 1 ] && ok || bad "the waiting update exited $code"
[ "$(cat "$W/update.err")" = "airlock-agent: error: rollback: rolled back 1.3.0 (crash_loop); running 1.1.0" ] && ok ||
  bad "the waiting update said: $(cat "$W/update.err")"
run 0 "^nothing awaits confirmation; running 1.1.0" "$G" --config "$W/agent.toml" started
run 1 "failed before \(crash_loop\) and is never retried; staying on 1.1.0" \
  "$G" --config "$W/agent.toml" update
same_tree "$DEV/current" "$W/src-1.1.0" && ok || bad "current is not 1.1.0's files at the end"

# ---- what the server heard: each crash loop once, as crash_loop ----
device_events "$DEV" >"$W/events.json"
python3 - "$W/events.json" <<'PY' && ok || bad "reported events: $(cat "$W/events.json")"
import json, sys
events = json.load(open(sys.argv[1]))["events"]
seen = [(e["version"], e["kind"], e.get("reason_code", "")) for e in events]
for v in ("1.2.0", "1.3.0"):
    assert (v, "installed", "") in seen, seen
    rolled = [s for s in seen if s[0] == v and s[1] == "rolled_back"]
    assert rolled == [(v, "rolled_back", "crash_loop")], (v, rolled)
    assert (v, "confirmed", "") not in seen, seen
PY

echo "agent.crash_loop: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
