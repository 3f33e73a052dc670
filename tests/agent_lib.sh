# Shared by the tests of airlock-agent against a real airlockd (agent_test.sh,
# agent_attack_test.sh, agent_run_test.sh); source it after tests/lib.sh and server_test_setup.

# publish APP VERSION [ARGS...]: a release folder $W/src-APP-VERSION whose files name the app and
# version, published with --encrypt device, no deltas (these tests attack the whole bundle; deltas
# have tests/agent_delta_test.sh) and ARGS (e.g. --channel production).
publish() {
  local app="$1" version="$2"
  shift 2
  mkdir -p "$W/src-$app-$version/js"
  echo "<html>$app $version</html>" >"$W/src-$app-$version/index.html"
  echo "console.log('$app $version')" >"$W/src-$app-$version/js/app.js"
  run 0 "" "$A" release publish "$app" --server "$SERVER" --token "$TOKEN" --version "$version" \
    --from "$W/src-$app-$version" --encrypt device --deltas 0 "$@"
}

# agent_config FILE SERVER APP INSTALL_DIR RESTART_COMMAND HEALTH_TIMEOUT [TOML_LINE...]: an agent
# configuration on channel production with APP's trusted root and enrollment token (setup_app). The restart
# command is a TOML literal string (no single quotes in it).
agent_config() {
  local file="$1"
  cat >"$file" <<TOML
server = "$2"
app = "$3"
channel = "production"
install_dir = "$4"
trusted_root = "$W/root-$3.json"
enrollment_token = "$(cat "$W/enroll-$3")"
restart_command = '$5'
health_timeout = "$6"
TOML
  shift 6
  [ "$#" -eq 0 ] || printf '%s\n' "$@" >>"$file"
}
# confirming CONFIG: a restart command that confirms the release it was started with, as a healthy
# app does.
confirming() { echo "$G --config $1 confirm --release \"\$AIRLOCK_RELEASE\""; }

# status_field CONFIG KEY: one field of `airlock-agent --config CONFIG status --json`.
status_field() {
  "$G" --config "$1" status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}
same_tree() { diff -r "$1" "$2" >/dev/null; }
