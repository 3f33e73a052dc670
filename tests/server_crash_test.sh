#!/usr/bin/env bash
# Crash consistency of the real airlockd (issue 16, "A faulty fleet"): airlockd SIGKILLed at random
# points of uploads, publishes, rollout changes and rollbacks, AIRLOCK_CRASH_ITERATIONS times
# (default 50 per store in CI; scripts/server-crash-test.sh runs more), AIRLOCK_CRASH_SEED replays
# the sequence of operations and delays. The loop and its checks are in
# tests/server_crash_harness.py; this sets up the store, the server, the app and a device.
#   tests/server_crash_test.sh BIN_DIR SOURCE_DIR sqlite|pg
set -u
. "$(dirname "$0")/lib.sh"
server_test_setup "server crash test" "$1" "$2"
STORE="${3:-sqlite}"
trap 'kill -9 "$(cat "$W/airlockd.pid" 2>/dev/null)" 2>/dev/null; stop_and_clean' EXIT
require_tools python3 curl
[ "$STORE" = pg ] && require_tools psql
. "$(dirname "$0")/agent_env.sh"
APP=io.example.srvcrash

[ "$STORE" = pg ] && start_postgres
init_server
start_server
S=(--server "$SERVER" --token "$TOKEN")
# An app with a Capgo key (so that /updates has something to offer) and its default channel.
run 0 "created app $APP" "$A" app create "$APP" "${S[@]}"
ENROLL=$(sed -n 's/^Device enrollment token.*: \(enr_[0-9a-f]*\)$/\1/p' "$W/out")
run 0 "" "$A" channel create "$APP" production --default "${S[@]}"
run 0 "" "$A" app root "$APP" --out "$W/root-$APP.json" "${S[@]}"
KEY_ID=$(grep -v -- '-----' "$XDG_CONFIG_HOME/airlock/apps/$APP.capgo.pub.pem" | tr -d '\n' | cut -c1-20)

# SOURCE VERSION: a small web folder naming the version, and 1 MiB of random bytes (an upload and
# a sealing that take a moment, so that kills land inside them too).
mkdir -p "$W/src/assets"
echo "<html>crash test</html>" >"$W/src/index.html"
for i in $(seq 1 8); do echo "asset $i" >"$W/src/assets/a$i.txt"; done
head -c 1048576 /dev/urandom >"$W/src/assets/big.bin"
run 0 "" "$A" release publish "$APP" "${S[@]}" --version 1.0.0 --from "$W/src" \
  --channel production --capgo --encrypt none --rollback-target

mkdir -p "$W/device"
agent_config "$W/agent.toml" "$W/device" "true" 1s production
run 0 "^enrolled with" "$G" --config "$W/agent.toml" enroll
run 0 "^offered 1.0.0 on channel production" "$G" --config "$W/agent.toml" check
run 0 "" "$G" tuf-client init "$W/root-$APP.json" --metadata-dir "$W/tuf-md"
[ "$fail" -eq 0 ] || { echo "FAIL: set-up"; exit 1; }

# The harness starts airlockd itself (and restarts it after each kill) with these flags on this port.
stop_pid "$PID"
PID=""
database=()
[ -n "${DATABASE:-}" ] && database=(--database "$DATABASE")
python3 - "$W/spec.json" "$D" "$A" "$G" "$W" "$SERVER" "$TOKEN" "$APP" "$KEY_ID" "$STORE" \
  "$PORT" "${database[@]}" <<'PY'
import json, sys
spec, d, a, g, w, server, token, app, key_id, store, port, *database = sys.argv[1:]
cmd = [d, "--data", f"{w}/data", *database, "--listen", f"127.0.0.1:{port}", "--public-url",
       server, "--threads", "2"]
json.dump({"airlockd": cmd, "airlock": a, "agent": g, "work": w, "server": server, "token": token,
           "app": app, "capgo_key_id": key_id, "store": store, "database": (database or [""])[-1],
           "src": f"{w}/src", "agent_config": f"{w}/agent.toml", "tuf_md": f"{w}/tuf-md"},
          open(spec, "w"))
PY
python3 "$SRC/tests/server_crash_harness.py" "$W/spec.json" || { bad "the crash harness"; tail -5 "$W/airlockd.log"; }

echo "server.crash.$STORE: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
