#!/usr/bin/env bash
# airlock-agent against a real airlockd on 127.0.0.1 (issue 11): releases published with the
# `airlock` CLI are enrolled for, verified, installed and confirmed; a tampered blob on the server's
# disk and a release nobody confirms are refused or rolled back, the device staying on its release;
# a failed release is never retried; every step is reported to the server.
#   tests/agent_test.sh BIN_DIR SOURCE_DIR [sqlite|postgres]
# With "postgres", airlockd keeps its state on a PostgreSQL of the test's own (tests/lib.sh
# start_postgres) instead of its embedded SQLite file, and the test checks that it did.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"
server_test_setup "agent test" "$1" "$2"
STORE="${3:-sqlite}"
require_tools python3 curl
[ "$STORE" = postgres ] && require_tools psql

init_server
[ "$STORE" = postgres ] && start_postgres
start_server
APP=io.example.agent
setup_app "$APP"
release() { publish "$APP" "$1" --channel production; }  # VERSION
src() { echo "$W/src-$APP-$1"; }                        # VERSION: the release's published files
# The app's restart command confirms the release it was started with (as a healthy app does).
agent_config "$W/agent.toml" "$SERVER" "$APP" "$W/device" \
  "echo started >>$W/restarts; $(confirming "$W/agent.toml")" 30s
# An app that never comes up healthy.
agent_config "$W/silent.toml" "$SERVER" "$APP" "$W/device" "echo started >>$W/restarts" 2s
status_of() { status_field "$W/agent.toml" "$1"; }

# ---- enroll, first install ----
run 1 "no identity yet: run .airlock-agent enroll. first" "$G" --config "$W/agent.toml" update
run 0 "^enrolled with $SERVER: active$" "$G" --config "$W/agent.toml" enroll
[ "$(stat -c %a "$W/device/identity/ed25519.key")" = 600 ] && ok || bad "signing key mode"
run 0 "up to date on 0.0.0 \(no_release\)" "$G" --config "$W/agent.toml" update
release 1.0.0
run 0 "^offered 1.0.0 on channel production, [0-9]+ bytes$" "$G" --config "$W/agent.toml" check
run 0 "installed and confirmed 1.0.0" "$G" --config "$W/agent.toml" update
same_tree "$W/device/current" "$(src 1.0.0)" && ok || bad "current is not 1.0.0's files"
[ "$(status_of version)" = 1.0.0 ] && [ "$(status_of state)" = confirmed ] && ok ||
  bad "status after 1.0.0: $("$G" --config "$W/agent.toml" status --json)"
run 0 "up to date on 1.0.0 \(up_to_date\)" "$G" --config "$W/agent.toml" update
release 1.1.0
run 0 "installed and confirmed 1.1.0" "$G" --config "$W/agent.toml" update
same_tree "$W/device/current" "$(src 1.1.0)" && ok || bad "current is not 1.1.0's files"
R11=$(status_of release)

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
[ "$(status_of release)" = "$R11" ] && ok || bad "the tampered release changed the device"
same_tree "$W/device/current" "$(src 1.1.0)" && ok || bad "current changed after the tampered 1.2.0"
[ -z "$(ls -A "$W/device/downloads" 2>/dev/null | grep -v '\.part$')" ] && ok || bad "a tampered blob was kept"

# ---- nobody confirms 1.3.0: rolled back to 1.1.0, never retried ----
release 1.3.0
run 1 "rolled back 1.3.0 \(health_timeout\); running 1.1.0" "$G" --config "$W/silent.toml" update
same_tree "$W/device/current" "$(src 1.1.0)" && ok || bad "current is not 1.1.0 after the rollback"
[ "$(status_of release)" = "$R11" ] && ok || bad "status after the rollback"
run 1 "failed before \(health_timeout\) and is never retried; staying on 1.1.0" \
  "$G" --config "$W/agent.toml" update
same_tree "$W/device/current" "$(src 1.1.0)" && ok || bad "the failed release was retried"

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

# ---- the server kept all that in the store it was pointed at ----
EVENTS=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['events']))" "$W/events.json")
if [ "$STORE" = postgres ]; then
  [ ! -e "$W/data/airlock.db" ] && ok || bad "airlockd made a SQLite file though given PostgreSQL"
  IN_PG=$(psql "$DATABASE" -Atc "SELECT count(*) FROM device_events WHERE app_id = '$APP' AND device_id = '$DEVICE'")
  [ "$IN_PG" = "$EVENTS" ] && [ "$EVENTS" -ge 5 ] && ok ||
    bad "PostgreSQL holds $IN_PG events of the device, the API answered $EVENTS"
else
  [ -s "$W/data/airlock.db" ] && ok || bad "no SQLite store in the data folder"
fi

echo "agent.e2e ($STORE): $pass passed, $fail failed"
[ "$fail" -eq 0 ]
