#!/usr/bin/env bash
# airlock-agent against a real airlockd on 127.0.0.1 (issue 11): releases published with the
# `airlock` CLI are enrolled for, verified, installed and confirmed; a tampered blob on the server's
# disk and a release nobody confirms are refused or rolled back, the device staying on its release;
# a failed release is never retried; every step is reported to the server.
#   tests/agent_test.sh BIN_DIR SOURCE_DIR
set -u
BIN="$1"
SRC="$2"
A="$BIN/airlock"
D="$BIN/airlockd"
G="$BIN/airlock-agent"
W=$(mktemp -d)
PID=""
cleanup() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
  fi
  rm -rf "$W"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"
require_tools python3 curl

export XDG_CONFIG_HOME="$W/config"
export HOME="$W/home"
export AIRLOCK_VAULT_PASSPHRASE="agent test"
export AIRLOCK_ACTOR=ci
unset AIRLOCK_VAULT AIRLOCK_SERVER AIRLOCK_TOKEN AIRLOCK_AUDIT_LOG AIRLOCK_AGENT_CONFIG
mkdir -p "$HOME"

"$D" --data "$W/data" init >"$W/init.out" 2>&1 || { cat "$W/init.out"; echo "FAIL: airlockd init"; exit 1; }
TOKEN=$(sed -n 's/^Owner API token.*: \(.*\)$/\1/p' "$W/init.out")
start_server
S=(--server "$SERVER" --token "$TOKEN")
APP=io.example.agent

run 0 "" "$A" app create "$APP" "${S[@]}" --no-capgo
ENROLL=$(sed -n 's/^Device enrollment token.*: \(enr_[0-9a-f]*\)$/\1/p' "$W/out")
run 0 "" "$A" channel create "$APP" production --default "${S[@]}"
run 0 "" "$A" app root "$APP" --out "$W/root.json" "${S[@]}"

release() {  # VERSION: a release folder whose files name the version, published with --encrypt device
  mkdir -p "$W/src-$1/js"
  echo "<html>$1</html>" >"$W/src-$1/index.html"
  echo "console.log('$1')" >"$W/src-$1/js/app.js"
  run 0 "" "$A" release publish "$APP" "${S[@]}" --version "$1" --from "$W/src-$1" \
    --channel production --encrypt device
}
config() {  # FILE RESTART_COMMAND HEALTH_TIMEOUT
  cat >"$1" <<TOML
server = "$SERVER"
app = "$APP"
channel = "production"
install_dir = "$W/device"
trusted_root = "$W/root.json"
enrollment_token = "$ENROLL"
restart_command = '$2'
health_timeout = "$3"
TOML
}
# The app's restart command confirms the release it was started with (as a healthy app does).
config "$W/agent.toml" "echo started >>$W/restarts; $G --config $W/agent.toml confirm --release \"\$AIRLOCK_RELEASE\"" 30s
# An app that never comes up healthy.
config "$W/silent.toml" "echo started >>$W/restarts" 2s
same_tree() { diff -r "$1" "$2" >/dev/null; }
status_field() { "$G" --config "$W/agent.toml" status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# ---- enroll, first install ----
run 1 "no identity yet: run .airlock-agent enroll. first" "$G" --config "$W/agent.toml" update
run 0 "^enrolled with $SERVER: active$" "$G" --config "$W/agent.toml" enroll
[ "$(stat -c %a "$W/device/identity/ed25519.key")" = 600 ] && ok || bad "signing key mode"
run 0 "up to date on 0.0.0 \(no_release\)" "$G" --config "$W/agent.toml" update
release 1.0.0
run 0 "^offered 1.0.0 on channel production, [0-9]+ bytes$" "$G" --config "$W/agent.toml" check
run 0 "installed and confirmed 1.0.0" "$G" --config "$W/agent.toml" update
same_tree "$W/device/current" "$W/src-1.0.0" && ok || bad "current is not 1.0.0's files"
[ "$(status_field version)" = 1.0.0 ] && [ "$(status_field state)" = confirmed ] && ok ||
  bad "status after 1.0.0: $("$G" --config "$W/agent.toml" status --json)"
run 0 "up to date on 1.0.0 \(up_to_date\)" "$G" --config "$W/agent.toml" update
release 1.1.0
run 0 "installed and confirmed 1.1.0" "$G" --config "$W/agent.toml" update
same_tree "$W/device/current" "$W/src-1.1.0" && ok || bad "current is not 1.1.0's files"
R11=$(status_field release)

# ---- a confirmation for another release counts for nothing ----
run 1 "" "$G" --config "$W/agent.toml" confirm --release "1.0.0-0000000000000000"

# ---- tampered on the server's disk after its key was wrapped for this device: refused ----
release 1.2.0
run 0 "^offered 1.2.0 on channel production, [0-9]+ bytes$" "$G" --config "$W/agent.toml" check
SHA=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['sha256'])" <(curl -s \
  -H "Authorization: Bearer $TOKEN" "$SERVER/api/v1/apps/$APP/releases" |
  python3 -c "import json,sys; print(json.dumps([r for r in json.load(sys.stdin)['releases'] if r['version']=='1.2.0'][0]))"))
BLOB="$W/data/blobs/${SHA:0:2}/$SHA"
python3 - "$BLOB" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0x01
open(p, 'wb').write(bytes(b))
PY
run 1 "refused 1.2.0 \(hash_mismatch\): " "$G" --config "$W/agent.toml" update
[ "$(status_field release)" = "$R11" ] && ok || bad "the tampered release changed the device"
same_tree "$W/device/current" "$W/src-1.1.0" && ok || bad "current changed after the tampered 1.2.0"
[ -z "$(ls -A "$W/device/downloads" 2>/dev/null | grep -v '\.part$')" ] && ok || bad "a tampered blob was kept"

# ---- nobody confirms 1.3.0: rolled back to 1.1.0, never retried ----
release 1.3.0
run 1 "rolled back 1.3.0 \(health_timeout\); running 1.1.0" "$G" --config "$W/silent.toml" update
same_tree "$W/device/current" "$W/src-1.1.0" && ok || bad "current is not 1.1.0 after the rollback"
[ "$(status_field release)" = "$R11" ] && ok || bad "status after the rollback"
run 1 "failed before \(health_timeout\) and is never retried; staying on 1.1.0" \
  "$G" --config "$W/agent.toml" update
same_tree "$W/device/current" "$W/src-1.1.0" && ok || bad "the failed release was retried"

# ---- what the server heard ----
DEVICE=$(cat "$W/device/identity/device_id")
curl -s -H "Authorization: Bearer $TOKEN" "$SERVER/api/v1/apps/$APP/devices/$DEVICE/events" >"$W/events.json"
python3 - "$W/events.json" <<'PY' && ok || bad "reported events: $(cat "$W/events.json")"
import json, sys
events = json.load(open(sys.argv[1]))["events"]
seen = [(e["version"], e["kind"], e.get("reason_code", "")) for e in events]
want = [("1.0.0", "confirmed", ""), ("1.1.0", "confirmed", ""), ("1.2.0", "failed", "hash_mismatch"),
        ("1.3.0", "installed", ""), ("1.3.0", "rolled_back", "health_timeout")]
missing = [w for w in want if w not in seen]
assert not missing, (missing, seen)
PY

echo "agent.e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
