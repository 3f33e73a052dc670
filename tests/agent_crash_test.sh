#!/usr/bin/env bash
# Crash consistency of the real airlock-agent binary against a real airlockd on 127.0.0.1 (issue
# 11, "Crash consistency"): updates SIGKILLed at random points of their installs, AIRLOCK_CRASH_ITERATIONS
# times (default 200; scripts/agent-crash-test.sh runs 1000), AIRLOCK_CRASH_SEED replays a run. The
# loop and its checks are in tests/agent_crash_harness.py; this sets up the server and releases.
#   tests/agent_crash_test.sh BIN_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/lib.sh"
server_test_setup "agent test" "$1" "$2"
require_tools python3 curl
. "$(dirname "$0")/agent_env.sh"
agent_env_start io.example.crash

DEV="$W/device"
mkdir -p "$W/builtin"
echo "<html>built-in</html>" >"$W/builtin/index.html"
# VERSION MB [crash]: index.html and js/app.js naming the version, 12 small files (files to
# unpack and fsync) and MB MiB of random bytes (a download and a decryption that take a while).
source_tree() {
  local dir="$W/src-$1"
  mkdir -p "$dir/js" "$dir/assets"
  echo "<html>$1</html>" >"$dir/index.html"
  echo "console.log('$1')" >"$dir/js/app.js"
  for i in $(seq 1 12); do echo "$1 asset $i" >"$dir/assets/a$i.txt"; done
  [ "$2" -gt 0 ] && head -c "$(($2 * 1048576))" /dev/urandom >"$dir/assets/big.bin"
  [ -n "${3:-}" ] && echo "this release crashes at start" >"$dir/crash"
  true
}
APPSH="sh $SRC/tests/agent_app.sh $G $W/agent.toml $DEV $W/app.log $W/no-confirm"
MORE="builtin_dir = \"$W/builtin\"
crash_loop_limit = 3"
agent_config "$W/agent.toml" "$DEV" "$APPSH" 1s production "$MORE"
run 0 "^enrolled with" "$G" --config "$W/agent.toml" enroll
RELEASES=""
for spec in "1.0.0 0" "1.1.0 2" "1.2.0 2 crash" "1.3.0 3"; do
  set -- $spec
  source_tree "$@"
  run 0 "" "$A" channel create "$APP" "ch-$1" --allow-self-assign "${S[@]}"
  publish "$1" "$W/src-$1" "ch-$1"
  agent_config "$W/agent-$1.toml" "$DEV" "$APPSH" 1s "ch-$1" "$MORE"
  # The server wraps the content key for this device on its key-service threads: wait (bounded)
  # until it offers the release, so that no kill lands in a key_pending back-off.
  for _ in $(seq 1 100); do
    "$G" --config "$W/agent-$1.toml" check 2>/dev/null | grep -q "^offered $1 " && break
    sleep 0.1
  done
  run 0 "^offered $1 on channel ch-$1" "$G" --config "$W/agent-$1.toml" check
  RELEASES="$RELEASES{\"version\": \"$1\", \"config\": \"$W/agent-$1.toml\", \"src\": \"$W/src-$1\", \"crashes\": $([ -n "${3:-}" ] && echo true || echo false)},"
done
[ "$fail" -eq 0 ] || { echo "FAIL: set-up"; exit 1; }
cat >"$W/spec.json" <<JSON
{"agent": "$G", "install_dir": "$DEV", "builtin_dir": "$W/builtin", "work": "$W", "health_timeout_seconds": 1,
 "no_confirm_flag": "$W/no-confirm", "releases": [${RELEASES%,}]}
JSON
python3 "$SRC/tests/agent_crash_harness.py" "$W/spec.json" || { bad "the crash harness"; tail -20 "$W/app.log"; }

echo "agent.crash: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
