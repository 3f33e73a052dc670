#!/usr/bin/env bash
# Interop 3 (the issue's "done when"): `airlock repo` + `airlock-agent tuf-client` over HTTP. A device that
# trusted the first root still updates after a root rotation and a timestamp key rotation, and picks up a
# re-published target (a new sealed bundle under the same name). tuf-js cross-checks the final state.
source "$(dirname "$0")/lib.sh"
need "$AIRLOCK" "$AGENT"

step "publish release 1.0.0"
make_bundle "$W/app-1.0.0.alb" 1.0.0
"$AIRLOCK" repo init "$W/repo" --app com.example.interop
"$AIRLOCK" repo add-target "$W/repo" "$W/app-1.0.0.alb" --name app.alb \
  --custom '{"channels":["stable"],"security_floor":1}'
"$AIRLOCK" repo publish "$W/repo"
"$AIRLOCK" repo verify "$W/repo"
start_server "$W/repo" repo

step "device installs 1.0.0"
"$AGENT" tuf-client --metadata-dir "$W/md" init "$W/repo/metadata/1.root.json"
agent_download "$URL_repo" "$W/md" "$W/td1" app.alb
same "$W/app-1.0.0.alb" "$W/td1/app.alb" "release 1.0.0"

step "rotate the root and timestamp keys, publish 1.1.0"
"$AIRLOCK" keygen --type ed25519 --out "$W/newroot" >/dev/null
"$AIRLOCK" keygen --type ecdsa-p256 --out "$W/newts" >/dev/null
"$AIRLOCK" repo rotate "$W/repo" --role root --new-key "$W/newroot.key"
"$AIRLOCK" repo rotate "$W/repo" --role timestamp --new-key "$W/newts.key"
"$AIRLOCK" repo publish "$W/repo"
make_bundle "$W/app-1.1.0.alb" 1.1.0
"$AIRLOCK" repo add-target "$W/repo" "$W/app-1.1.0.alb" --name app.alb \
  --custom '{"channels":["stable"],"security_floor":2}'
"$AIRLOCK" repo publish "$W/repo"
"$AIRLOCK" repo verify "$W/repo"

step "the device (old trusted root) updates to 1.1.0"
agent_download "$URL_repo" "$W/md" "$W/td2" app.alb
same "$W/app-1.1.0.alb" "$W/td2/app.alb" "release 1.1.0"
same "$W/repo/metadata/root.json" "$W/md/root.json" "device's trusted root"

step "tuf-js from the first root agrees"
tufjs "$W/repo/metadata/1.root.json" "$URL_repo" "$W/jsmd" "$W/jstd" app.alb >"$W/custom.jsonl"
same "$W/app-1.1.0.alb" "$W/jstd/app.alb" "tuf-js download"
grep -q '"version":"1.1.0"' "$W/custom.jsonl" || fail "custom: $(cat "$W/custom.jsonl")"
echo "ok"
