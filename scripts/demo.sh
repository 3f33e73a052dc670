#!/usr/bin/env bash
# The main job, end to end on the built-in defaults: the update server airlockd starts, a developer
# makes an app and a channel and publishes 1.0.0 then 1.1.0, a device's airlock-agent enrolls and
# installs and confirms each; a 1.2.0 tampered with on the server is refused (the device stays on
# 1.1.0); a 1.3.0 that crashes at start is never confirmed and is rolled back. Everything happens in
# a temporary folder, on 127.0.0.1, and is removed at the end.
#   scripts/demo.sh              install dependencies (scripts/setup.sh), build into build/, run
#   scripts/demo.sh --bin DIR    run with the binaries in DIR (builds nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--bin" ] && [ -n "${2:-}" ]; then
  bin=$(cd "$2" && pwd)
else
  bash scripts/setup.sh
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build --target airlock airlockd airlock-agent
  bin=$PWD/build/bin
fi
airlock=$bin/airlock
airlockd=$bin/airlockd
agent=$bin/airlock-agent

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
# Keys, vault and settings of this demo stay in $work (never in your home folder).
export HOME="$work/home" XDG_CONFIG_HOME="$work/config"
export AIRLOCK_VAULT_PASSPHRASE="demo passphrase"   # a real developer types it, or uses an HSM
export AIRLOCK_ACTOR=demo
unset AIRLOCK_VAULT AIRLOCK_SERVER AIRLOCK_TOKEN AIRLOCK_AUDIT_LOG AIRLOCK_AGENT_CONFIG
mkdir -p "$HOME"

step() { printf '\n== %s\n' "$*"; }
say() { printf '   %s\n' "$*"; }
indent() { sed 's/^/   | /'; }
bug() {
  echo "DEMO FAILED: $*" >&2
  exit 1
}

step "1. Start the update server (airlockd) with its built-in defaults: SQLite and a file key vault"
"$airlockd" init --data "$work/server" >"$work/init.out" 2>&1 || { cat "$work/init.out"; exit 1; }
token=$(sed -n 's/^Owner API token.*: \(.*\)$/\1/p' "$work/init.out")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
server="http://127.0.0.1:$port"
"$airlockd" --data "$work/server" --listen "127.0.0.1:$port" --public-url "$server" \
  >"$work/airlockd.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  curl -sf -o /dev/null "$server/healthz" && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/airlockd.log" >&2; exit 1; }
  sleep 0.1
done
curl -sf -o /dev/null "$server/healthz" || bug "airlockd did not answer /healthz"
say "airlockd is listening on $server (its data folder: a temporary folder)."
say "It printed an owner API token once; the developer's commands below use it."

step "2. The developer makes an app and its production channel"
app=io.example.demo
S=(--server "$server" --token "$token")
"$airlock" app create "$app" "${S[@]}" --no-capgo >"$work/app.out" 2>&1 ||
  { cat "$work/app.out"; exit 1; }
enroll=$(sed -n 's/^Device enrollment token.*: \(enr_[0-9a-f]*\)$/\1/p' "$work/app.out")
say "app $app: its root and targets signing keys were made in the developer's own vault;"
say "the server holds only the online keys that re-sign timestamps."
"$airlock" channel create "$app" production --default "${S[@]}" >/dev/null
say "channel 'production' created."
"$airlock" app root "$app" --out "$work/root.json" "${S[@]}" >/dev/null
say "root.json exported: the device's trust anchor. The device believes only what these keys signed."

# A release: the app's files (index.html) and start.sh, which "starts the app". A healthy app tells
# the agent so with `airlock-agent confirm --release ID`; a broken one never does.
make_release() {  # VERSION healthy|crashes
  local dir="$work/releases/$1"
  mkdir -p "$dir"
  echo "<html><body>Example app $1</body></html>" >"$dir/index.html"
  if [ "$2" = healthy ]; then
    cat >"$dir/start.sh" <<SH
echo "   [app] version \$AIRLOCK_VERSION started; it tells the agent it is healthy"
"$agent" --config "$work/agent.toml" confirm --release "\$AIRLOCK_RELEASE" >/dev/null 2>&1 || true
SH
  else
    cat >"$dir/start.sh" <<SH
echo "   [app] version \$AIRLOCK_VERSION crashed at start (it never says it is healthy)"
exit 1
SH
  fi
}
publish() {  # VERSION [PUBLISH FLAGS...]
  local version="$1"
  shift
  "$airlock" release publish "$app" "${S[@]}" --version "$version" --from "$work/releases/$version" \
    --channel production --encrypt device "$@" >"$work/publish.out" 2>&1 || { cat "$work/publish.out"; exit 1; }
  say "published $version: sealed (encrypted, signed by the developer's key), listed in signed TUF metadata."
}
device_version() {
  "$agent" --config "$work/agent.toml" status --json |
    python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["version"], s["state"])'
}
show_device() {
  say "device: $("$agent" --config "$work/agent.toml" status)"
  say "device's current/index.html: $(cat "$work/device/current/index.html")"
}

step "3. A device: airlock-agent with a config file, then enroll"
cat >"$work/agent.toml" <<TOML
server = "$server"
app = "$app"
channel = "production"
install_dir = "$work/device"
trusted_root = "$work/root.json"
enrollment_token = "$enroll"
restart_command = 'sh "$work/device/current/start.sh"'
health_timeout = "3s"
TOML
indent <"$work/agent.toml"
"$agent" --config "$work/agent.toml" enroll | indent
say "the device made its own keys (they never leave it) and registered them with the server."

step "4. Release 1.0.0: the device installs it, starts it, and the app confirms it"
make_release 1.0.0 healthy
publish 1.0.0
"$agent" --config "$work/agent.toml" update | indent
[ "$(device_version)" = "1.0.0 confirmed" ] || bug "the device is not on a confirmed 1.0.0"
show_device

step "5. Release 1.1.0: the same, one version up"
make_release 1.1.0 healthy
publish 1.1.0
"$agent" --config "$work/agent.toml" update | indent
[ "$(device_version)" = "1.1.0 confirmed" ] || bug "the device is not on a confirmed 1.1.0"
show_device

step "6. Release 1.2.0, tampered with on the server: someone flips one byte of the stored bundle"
make_release 1.2.0 healthy
# No delta for this one (--deltas 0): the device must fetch the whole bundle that was tampered with.
publish 1.2.0 --deltas 0
sha=$(curl -sf -H "Authorization: Bearer $token" "$server/api/v1/apps/$app/releases" |
  python3 -c 'import json,sys; print([r for r in json.load(sys.stdin)["releases"] if r["version"]=="1.2.0"][0]["sha256"])')
python3 - "$work/server/blobs/${sha:0:2}/$sha" <<'PY'
import sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
data[len(data) // 2] ^= 0x01
open(path, "wb").write(bytes(data))
PY
say "the server now serves a 1.2.0 whose bytes differ from what the developer signed."
if "$agent" --config "$work/agent.toml" update >"$work/update.out" 2>"$work/update.err"; then
  bug "the tampered 1.2.0 was accepted"
fi
indent <"$work/update.out"
indent <"$work/update.err"
[ "$(device_version)" = "1.1.0 confirmed" ] || bug "the device left 1.1.0"
say "refused: the download's SHA-256 is not the one in the signed metadata. Nothing was installed:"
show_device

step "7. Release 1.3.0 has a bug: it crashes at start and never confirms, so it is rolled back"
make_release 1.3.0 crashes
publish 1.3.0
if "$agent" --config "$work/agent.toml" update >"$work/update.out" 2>"$work/update.err"; then
  bug "the unconfirmed 1.3.0 was kept"
fi
indent <"$work/update.out"
indent <"$work/update.err"
[ "$(device_version)" = "1.1.0 confirmed" ] || bug "the device is not back on 1.1.0"
say "no confirmation within health_timeout (3 s): the agent switched back to 1.1.0 and restarted it."
show_device
if "$agent" --config "$work/agent.toml" update >"$work/update.out" 2>"$work/update.err"; then
  bug "the failed 1.3.0 was offered and taken again"
fi
indent <"$work/update.err"
say "a failed release is remembered and never tried again on this device."

step "8. What the server heard from the device (its event log)"
device=$(cat "$work/device/identity/device_id")
curl -sf -H "Authorization: Bearer $token" "$server/api/v1/apps/$app/devices/$device/events" |
  python3 -c '
import json, sys
for e in sorted(json.load(sys.stdin)["events"], key=lambda e: e["seq"]):
    reason = " (" + e["reason_code"] + ")" if e["reason_code"] else ""
    print(e["version"], e["kind"] + reason)' | indent

step "Done: the device is on 1.1.0, confirmed; the tampered and the broken release never stuck."
say "The server is stopped and the temporary folder removed."
