#!/usr/bin/env bash
# The main job: build, then make keys, seal the sample app, inspect, open it again, compare, show
# that a tampered bundle is refused, and start the update server airlockd, ask it /healthz and stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
AIRLOCK=build/bin/airlock
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { printf '\n== %s\n' "$*"; }
step "keys: an ed25519 release-signing key and an x25519 device key"
$AIRLOCK keygen --type ed25519 --out "$work/release"
$AIRLOCK keygen --type x25519 --out "$work/device"

step "seal examples/sample-app as com.example.app 1.0.0"
$AIRLOCK bundle seal examples/sample-app --app com.example.app --version 1.0.0 \
  --sign-key "$work/release.key" --recipient "$work/device.pub" --out "$work/app-1.0.0.alb"

step "inspect"
$AIRLOCK bundle inspect "$work/app-1.0.0.alb" --verify-key "$work/release.pub"

step "open on the device side"
$AIRLOCK bundle open "$work/app-1.0.0.alb" --verify-key "$work/release.pub" \
  --decrypt-key "$work/device.key" --out "$work/opened"
diff -r examples/sample-app "$work/opened" && echo "opened files are identical to the sample app"

step "tamper with one payload byte: the bundle is refused and nothing is written"
cp "$work/app-1.0.0.alb" "$work/tampered.alb"
size=$(stat -c %s "$work/tampered.alb")
printf '\xff' | dd of="$work/tampered.alb" bs=1 seek=$((size - 20)) conv=notrunc status=none
if $AIRLOCK bundle open "$work/tampered.alb" --verify-key "$work/release.pub" \
     --decrypt-key "$work/device.key" --out "$work/tampered-out"; then
  echo "tampered bundle was accepted: this is a bug" >&2
  exit 1
fi
[ ! -e "$work/tampered-out" ] && echo "refused (exit 1), and $work/tampered-out was not created"

step "the update server: airlockd init, then start it with its built-in defaults on a free port"
AIRLOCKD=build/bin/airlockd
$AIRLOCKD init --data "$work/server"    # data folder, online key store, owner API token (shown once)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
$AIRLOCKD --data "$work/server" --listen "127.0.0.1:$port" 2>"$work/airlockd.log" &
server_pid=$!
trap 'kill -TERM "$server_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/airlockd.log" >&2; exit 1; }
  sleep 0.1
done
echo "GET http://127.0.0.1:$port/healthz -> $(curl -sf "http://127.0.0.1:$port/healthz")"

step "stop it (SIGTERM: graceful)"
kill -TERM "$server_pid"
wait "$server_pid" && echo "airlockd exited 0; its log:"
sed 's/^/  /' "$work/airlockd.log"
