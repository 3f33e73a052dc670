#!/usr/bin/env bash
# `airlock-agent --config FILE run`, the daemon loop (issue 11, CLI contract), against a real airlockd
# on 127.0.0.1 behind the man in the middle (tests/mitm/proxy.py), which makes the server's 429 and
# key_pending answers:
#   - with a 1 s poll interval it installs and confirms releases published while it runs;
#   - after an error it backs off; the server's Retry-After (429 on the check, key_pending) sets the
#     next wait; a line says which;
#   - SIGTERM while it waits between cycles, or for the server's Retry-After: exit 0 at once, "stopping";
#   - SIGTERM during a cycle: the switched release is confirmed and the cycle finishes, or the wait
#     for its confirmation is given up (the journal keeps it); either way INSTALL_DIR/current holds
#     exactly the files of a published release, and the next start carries on.
# Waits for the agent are bounded loops on its output or `status --json`, never fixed sleeps.
#   tests/agent_run_test.sh BIN_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"
server_test_setup "agent run test" "$1" "$2"
require_tools python3 curl

init_server
start_server --behind-proxy
APP=io.example.run
setup_app "$APP"
src() { echo "$W/src-$APP-$1"; }  # VERSION: the release's published files
release() { publish "$APP" "$1" --channel production; }
status_of() { status_field "$W/agent.toml" "$1"; }
swap() { printf '%s\n' "$1" >"$SWAPS"; }
# A healthy app (its restart command confirms), polled every second.
agent_config "$W/agent.toml" "$VIA" "$APP" "$W/device" "$(confirming "$W/agent.toml")" 30s \
  'poll_interval = "1s"'

# start_agent CONFIG: `run` in the background (AGENT_PID), its output in $W/run.out.
start_agent() {
  : >"$W/run.out"
  MARK=0
  "$G" --config "$1" run >"$W/run.out" 2>&1 </dev/null &
  AGENT_PID=$!
}
# mark: await_line looks only at what the agent prints from now on.
mark() { MARK=$(wc -l <"$W/run.out"); }
# await_line REGEX [SECONDS]: a line matching REGEX, printed since the mark, within SECONDS (60).
await_line() {
  local tries
  for tries in $(seq 1 $((${2:-60} * 20))); do
    tail -n "+$((MARK + 1))" "$W/run.out" | grep -Eq -- "$1" && { ok; return 0; }
    kill -0 "$AGENT_PID" 2>/dev/null || break
    sleep 0.05
  done
  tail -n "+$((MARK + 1))" "$W/run.out" | grep -Eq -- "$1" && { ok; return 0; }
  bad "run printed no line /$1/: $(tail -n 6 "$W/run.out" | tr '\n' '|')"
  return 1
}
# await_exit SECONDS: the agent exits within SECONDS; sets RC (killed and 137 if it did not).
await_exit() {
  local tries
  for tries in $(seq 1 $(($1 * 20))); do
    kill -0 "$AGENT_PID" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$AGENT_PID" 2>/dev/null; then
    bad "run did not exit within $1 s: $(tail -n 4 "$W/run.out" | tr '\n' '|')"
    kill -KILL "$AGENT_PID"
    wait "$AGENT_PID" 2>/dev/null
    RC=137
  else
    wait "$AGENT_PID"
    RC=$?
  fi
  AGENT_PID=""
}
# stopped_cleanly SECONDS: after a SIGTERM, exit 0 within SECONDS, "stopping" the last line.
stopped_cleanly() {
  await_exit "$1"
  [ "$RC" -eq 0 ] && ok || bad "run exited $RC after SIGTERM"
  [ "$(tail -n 1 "$W/run.out")" = stopping ] && ok ||
    bad "the last line is not 'stopping': $(tail -n 3 "$W/run.out" | tr '\n' '|')"
}
# await_status VERSION STATE: `status --json` says so within 60 s (polled while run works).
await_status() {
  local tries
  for tries in $(seq 1 600); do
    [ "$(status_of version) $(status_of state)" = "$1 $2" ] && { ok; return 0; }
    kill -0 "$AGENT_PID" 2>/dev/null || break
    sleep 0.1
  done
  bad "status is not $1 $2: $("$G" --config "$W/agent.toml" status) / $(tail -n 4 "$W/run.out" | tr '\n' '|')"
}

# ---- releases published while it runs are installed and confirmed ----
release 1.0.0
run 0 "^enrolled with" "$G" --config "$W/agent.toml" enroll
start_agent "$W/agent.toml"
await_status 1.0.0 confirmed
same_tree "$W/device/current" "$(src 1.0.0)" && ok || bad "current is not 1.0.0's files"
await_line "^next check in 1 s$"
release 1.1.0
await_status 1.1.0 confirmed
same_tree "$W/device/current" "$(src 1.1.0)" && ok || bad "current is not 1.1.0's files"
await_line "^installed and confirmed 1\.1\.0 \(release 1\.1\.0-[0-9a-f]{16}\)$"

# ---- an error without Retry-After: the back-off (capped at the 1 s interval) is said ----
mark
swap "{\"POST /v1/check\": {\"answer\": {\"status\": 503,
       \"body\": {\"error\": \"unavailable\", \"message\": \"down for a moment\"}}}}"
await_line "^update failed: .*HTTP 503 unavailable: down for a moment$"
await_line "^next check in 1 s \(back-off after an error\)$"

# ---- the server's 429 with Retry-After: the next check waits that long, and says so ----
mark
swap "{\"POST /v1/check\": {\"answer\": {\"status\": 429, \"headers\": {\"Retry-After\": \"3\"},
       \"body\": {\"error\": \"too_many_requests\", \"message\": \"slow down\"}}}}"
await_line "^update failed: .*HTTP 429 too_many_requests: slow down \(retry after 3 s\)$"
await_line "^next check in 3 s \(the server's Retry-After\)$"
: >"$SWAPS"
mark
await_line "^up to date on 1\.1\.0 \(up_to_date\)$"

# ---- key_pending with Retry-After: said, then SIGTERM during that wait ends it at once ----
mark
swap "{\"POST /v1/check\": {\"answer\": {\"status\": 200, \"headers\": {\"Retry-After\": \"30\"},
       \"body\": {\"update\": false, \"reason\": \"key_pending\"}}}}"
await_line "^the server is still wrapping this device's key \(key_pending\): asking again in 30 s \(Retry-After\)$"
kill -TERM "$AGENT_PID"
stopped_cleanly 10
grep -q "^up to date on 1.1.0 (key_pending)$" "$W/run.out" && ok || bad "the key_pending cycle did not end"
: >"$SWAPS"

# ---- SIGTERM while it waits between cycles (poll interval 1 h): exit 0 at once ----
agent_config "$W/idle.toml" "$VIA" "$APP" "$W/device" "$(confirming "$W/idle.toml")" 30s \
  'poll_interval = "1h"'
start_agent "$W/idle.toml"
await_line "^next check in [0-9]+ s$"
kill -TERM "$AGENT_PID"
stopped_cleanly 10
[ "$(status_of state)" = confirmed ] && ok || bad "idle stop changed the state"

# ---- SIGTERM during a cycle, while the switched release's app starts: the cycle finishes ----
# The restart command (run by the agent between switch and confirmation) sends the agent SIGTERM,
# then confirms as a healthy app does.
agent_config "$W/finish.toml" "$VIA" "$APP" "$W/device" \
  "kill -TERM \$PPID; $(confirming "$W/finish.toml")" 30s 'poll_interval = "1h"'
release 1.2.0
start_agent "$W/finish.toml"
stopped_cleanly 60
grep -Eq "^installed and confirmed 1\.2\.0 " "$W/run.out" && ok ||
  bad "the interrupted cycle did not finish: $(cat "$W/run.out")"
same_tree "$W/device/current" "$(src 1.2.0)" && ok || bad "current is not 1.2.0's files"
[ "$(status_of version) $(status_of state)" = "1.2.0 confirmed" ] && ok || bad "status after 1.2.0"

# ---- SIGTERM during a cycle, while it waits for a confirmation: that wait is given up ----
# An app that never confirms, and a health timeout far beyond the bound on the exit: the agent
# stops without waiting for it, leaving the journal awaiting the confirmation.
agent_config "$W/abandon.toml" "$VIA" "$APP" "$W/device" "kill -TERM \$PPID" 5m \
  'poll_interval = "1h"'
release 1.3.0
start_agent "$W/abandon.toml"
stopped_cleanly 30
grep -Eq "^stopped waiting for the confirmation of 1\.3\.0 \(release 1\.3\.0-[0-9a-f]{16}\); " "$W/run.out" &&
  ok || bad "the confirmation wait was not given up: $(cat "$W/run.out")"
same_tree "$W/device/current" "$(src 1.3.0)" && ok || bad "current is not 1.3.0's files"
[ "$(status_of version) $(status_of state)" = "1.3.0 awaiting_health" ] && ok ||
  bad "status after the abandoned wait: $("$G" --config "$W/agent.toml" status)"
# The next start goes on waiting for that confirmation, and takes it.
R13=$(status_of release)
start_agent "$W/agent.toml"
await_line "^still waiting for the confirmation of 1\.3\.0 \(release $R13\)$"
run 0 "^confirmed release $R13 \(1\.3\.0\)$" "$G" --config "$W/agent.toml" confirm --release "$R13"
await_line "^installed and confirmed 1\.3\.0 \(release $R13\)$"
same_tree "$W/device/current" "$(src 1.3.0)" && ok || bad "current is not 1.3.0's files"
kill -TERM "$AGENT_PID"
stopped_cleanly 10

echo "agent.run: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
