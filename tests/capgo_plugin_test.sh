#!/usr/bin/env bash
# Capgo plugin parity: a real airlockd on 127.0.0.1 answers the requests @capgo/capacitor-updater
# 8.51.14 sends, and tests/capgo/plugin_rules.py reads every reply the way the plugin's own Android
# and iOS code does (each rule names the plugin file and lines it follows).
#   tests/capgo_plugin_test.sh BIN_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/lib.sh"
server_test_setup "capgo plugin test" "$1" "$2"
require_tools python3 curl

init_server
start_server
S=(--server "$SERVER" --token "$TOKEN")
APP=com.example.capgo

run 0 "created app $APP" "$A" app create "$APP" "${S[@]}"
run 0 "" "$A" channel create "$APP" production "${S[@]}" --default
run 0 "" "$A" channel create "$APP" beta "${S[@]}" --allow-self-assign
run 0 "" "$A" channel create "$APP" internal "${S[@]}"
run 0 "" "$A" release publish "$APP" "${S[@]}" --version 1.0.1 --from "$SRC/examples/sample-app" \
  --channel production --capgo

# The key id the plugin computes from the app's public key (CryptoCipher.calcKeyId: the first 20
# characters of the PKCS#1 PEM body), from the public key `app create` wrote.
CAPGO_PUB="$XDG_CONFIG_HOME/airlock/apps/$APP.capgo.pub.pem"
KEY_ID=$(grep -v -- '-----' "$CAPGO_PUB" | tr -d '\n' | cut -c1-20)
[ ${#KEY_ID} -eq 20 ] && ok || bad "no key id from $CAPGO_PUB"

# The release recorded the key id that the targets key signed beside its Capgo form.
python3 - "$SERVER" "$APP" "$KEY_ID" >"$W/custom.out" 2>&1 <<'PY' && ok || { bad "signed capgo_key_id"; cat "$W/custom.out"; }
import json, sys, urllib.request
server, app, key_id = sys.argv[1:]
get = lambda name: json.load(urllib.request.urlopen(f"{server}/tuf/{app}/{name}"))["signed"]
snapshot = get("timestamp.json")["meta"]["snapshot.json"]["version"]
targets = get(f"{snapshot}.snapshot.json")["meta"]["targets.json"]["version"]
t = get(f"{targets}.targets.json")["targets"]
capgo = [v for k, v in t.items() if k.endswith("capgo.zip")]
assert capgo and capgo[0]["custom"]["capgo_key_id"] == key_id, (capgo, key_id)
PY

if python3 "$SRC/tests/capgo/plugin_rules.py" "$SERVER" "$APP" "$KEY_ID" >"$W/rules.out" 2>&1; then
  ok
else
  bad "the plugin's parsing rules"
fi
grep '^FAIL' "$W/rules.out"
# Every rule ran (a rule that raised would end the script early).
RULES=$(grep -c '^ok ' "$W/rules.out")
EXPECTED=$(grep -c '^ *check("' "$SRC/tests/capgo/plugin_rules.py")
[ "$RULES" -eq "$EXPECTED" ] && ok || { bad "$RULES of $EXPECTED rules passed"; cat "$W/rules.out"; }

echo "capgo.plugin: $pass passed, $fail failed ($RULES plugin rules)"
[ "$fail" -eq 0 ]
