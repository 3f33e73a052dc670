# Shared by the agent tests that need a real airlockd (agent_crash_loop_test.sh,
# agent_crash_test.sh): source it after lib.sh and server_test_setup.

# agent_env_start APP: a fresh airlockd on 127.0.0.1 (TOKEN, SERVER, S), the app APP with a
# default channel `production` (ENROLL: its device enrollment token) and its root in
# $W/root-APP.json (lib.sh setup_app).
agent_env_start() {
  APP="$1"
  init_server
  start_server
  S=(--server "$SERVER" --token "$TOKEN")
  setup_app "$APP"
  ENROLL=$(cat "$W/enroll-$APP")
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
trusted_root = "$W/root-$APP.json"
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
