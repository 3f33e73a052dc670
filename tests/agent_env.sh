# Shared by the agent tests that need a real airlockd (agent_crash_loop_test.sh,
# agent_crash_test.sh): the set-up of agent_test.sh as functions. Source it after lib.sh, with W
# (the test's temporary folder), BIN and PID set (the caller's trap stops $PID and removes $W).
A="$BIN/airlock"
D="$BIN/airlockd"
G="$BIN/airlock-agent"

# agent_env_start APP: a fresh airlockd on 127.0.0.1 (TOKEN, SERVER, S), the app APP with a
# default channel `production` (ENROLL: its device enrollment token) and its root in $W/root.json.
agent_env_start() {
  APP="$1"
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
  run 0 "" "$A" app create "$APP" "${S[@]}" --no-capgo
  ENROLL=$(sed -n 's/^Device enrollment token.*: \(enr_[0-9a-f]*\)$/\1/p' "$W/out")
  run 0 "" "$A" channel create "$APP" production --default "${S[@]}"
  run 0 "" "$A" app root "$APP" --out "$W/root.json" "${S[@]}"
  [ "$fail" -eq 0 ] || { echo "FAIL: set-up"; exit 1; }
}

# publish VERSION FOLDER [CHANNEL]: publishes FOLDER as VERSION (--encrypt device) on CHANNEL
# (default production).
publish() {
  run 0 "" "$A" release publish "$APP" "${S[@]}" --version "$1" --from "$2" \
    --channel "${3:-production}" --encrypt device
}

# agent_config FILE INSTALL_DIR RESTART_COMMAND HEALTH_TIMEOUT [CHANNEL] [MORE_TOML]
agent_config() {
  cat >"$1" <<TOML
server = "$SERVER"
app = "$APP"
channel = "${5:-production}"
install_dir = "$2"
trusted_root = "$W/root.json"
enrollment_token = "$ENROLL"
restart_command = '$3'
health_timeout = "$4"
${6:-}
TOML
}

# The events the server holds for the device of INSTALL_DIR, as JSON on stdout.
device_events() {
  curl -s -H "Authorization: Bearer $TOKEN" \
    "$SERVER/api/v1/apps/$APP/devices/$(cat "$1/identity/device_id")/events"
}
