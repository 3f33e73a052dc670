#!/usr/bin/env bash
# Issue 10 item 1: the developer's CLI never signs on the strength of what the server says.
# A man in the middle (tests/mitm/proxy.py) in front of a real airlockd forwards everything but swaps
# the root and targets metadata for forged ones (tests/mitm/forge.py, signed by an attacker key that
# also lists the developer's key ids). `release publish`, `release rollback` and `app root` through it
# are refused with exit 1 and one line naming what did not verify; nothing is signed or uploaded (the
# proxy saw no write, the server's targets version and blob folder are unchanged). Through the same
# proxy with no forgery, they succeed.
#   tests/publish_trust_test.sh BIN_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/lib.sh"
server_test_setup "publish trust test" "$1" "$2"

require_tools python3 curl openssl

init_server
start_server
APP=com.example.trust
DIRECT=(--server "$SERVER" --token "$TOKEN")
setup_app "$APP"
run 0 "published $APP 1.0.0" "$A" release publish "$APP" "${DIRECT[@]}" --version 1.0.0 \
  --from "$SRC/examples/sample-app" --channel production
run 0 "published $APP 1.0.1" "$A" release publish "$APP" "${DIRECT[@]}" --version 1.0.1 \
  --from "$SRC/examples/sample-app" --channel production
TV=$(curl -sf -H "Authorization: Bearer $TOKEN" "$SERVER/api/v1/apps/$APP" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["targets_version"])')
[ "$TV" = 3 ] && ok || bad "targets version $TV after two publishes, wanted 3"

# ---- the man in the middle ----
start_proxy "$PORT"
THROUGH=(--server "$VIA" --token "$TOKEN")

# The attacker's material: a key, a blob of its own on the server (uploads are content-addressed and
# open to any token holder), forged roots and targets that list the developer's key ids too.
openssl genpkey -algorithm ed25519 -out "$W/evil.pem" 2>/dev/null
head -c 4096 /dev/urandom >"$W/evil.bin"
EVIL_SHA=$(sha256sum <"$W/evil.bin" | cut -c1-64)
curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" -H "X-Airlock-Sha256: $EVIL_SHA" \
  --data-binary @"$W/evil.bin" "$SERVER/api/v1/blobs" && ok || bad "attacker blob upload"
curl -sf -o "$W/root1.json" "$SERVER/tuf/$APP/1.root.json"
curl -sf -o "$W/targets3.json" "$SERVER/tuf/$APP/3.targets.json"
python3 "$SRC/tests/mitm/forge.py" root "$W/root1.json" "$W/evil.pem" 1 "$W/forged-root1.json"
python3 "$SRC/tests/mitm/forge.py" root "$W/root1.json" "$W/evil.pem" 2 "$W/forged-root2.json"
python3 "$SRC/tests/mitm/forge.py" targets "$W/targets3.json" "$W/evil.pem" releases/evil/bundle.alb \
  "$EVIL_SHA" 4096 "$W/forged-targets3.json"

# state: the server's targets version and its blob count, read directly (not through the proxy).
state() {
  echo "$(curl -sf -H "Authorization: Bearer $TOKEN" "$SERVER/api/v1/apps/$APP" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["targets_version"])') $(find "$W/data/blobs" -type f | wc -l)"
}
# refused PATTERN CMD...: exit 1, one error line matching PATTERN, the proxy saw no write, the
# server's state is unchanged, no targets metadata was signed into the output.
refused() {
  local pattern="$1"
  shift
  local before
  before=$(state)
  : >"$W/proxy.log"
  run 1 "$pattern" "$@"
  one_error_line
  ! grep -Eq '^(POST|PUT|PATCH|DELETE) ' "$W/proxy.log" && ok ||
    bad "a write went through the proxy: $(grep -E '^(POST|PUT|PATCH|DELETE) ' "$W/proxy.log" | head -3)"
  [ "$(state)" = "$before" ] && ok || bad "server state changed: $before -> $(state)"
}

# 1. The old attack: a forged root.json (signed by the attacker, listing the developer's root and
#    targets key ids too) and forged current targets listing the attacker's blob. The CLI trusts its
#    pinned root, so the forged targets do not verify.
cat >"$SWAPS" <<JSON
{"GET /tuf/$APP/root.json": "$W/forged-root1.json",
 "GET /tuf/$APP/1.root.json": "$W/forged-root1.json",
 "GET /tuf/$APP/3.targets.json": "$W/forged-targets3.json"}
JSON
refused "3.targets.json is not signed by the trusted root v1's targets keys" \
  "$A" release publish "$APP" "${THROUGH[@]}" --version 1.0.2 --from "$SRC/examples/sample-app" --channel production
refused "3.targets.json is not signed by the trusted root v1's targets keys" \
  "$A" release rollback "$APP" "${THROUGH[@]}" --channel production --to 1.0.0

# 2. A forged root rotation (v2 signed only by the attacker): refused as a chain that does not verify.
cat >"$SWAPS" <<JSON
{"GET /tuf/$APP/2.root.json": "$W/forged-root2.json",
 "GET /tuf/$APP/3.targets.json": "$W/forged-targets3.json"}
JSON
refused "2.root.json does not verify from the trusted root v1" \
  "$A" release publish "$APP" "${THROUGH[@]}" --version 1.0.2 --from "$SRC/examples/sample-app" --channel production
refused "2.root.json does not verify from the trusted root v1" \
  "$A" app root "$APP" "${THROUGH[@]}" --out "$W/root-out.json"
[ ! -e "$W/root-out.json" ] && ok || bad "app root wrote a root through a forged chain"

# 3. Genuine but old targets, with the server claiming that old version is current (a rollback of the
#    developer's view): refused, since this machine already verified v3.
curl -sf -H "Authorization: Bearer $TOKEN" "$SERVER/api/v1/apps/$APP" |
  python3 -c 'import json,sys; d=json.load(sys.stdin); d["targets_version"]=2; print(json.dumps(d))' >"$W/app-old.json"
echo "{\"GET /api/v1/apps/$APP\": \"$W/app-old.json\"}" >"$SWAPS"
refused "is v2, but this machine already verified v3" \
  "$A" release publish "$APP" "${THROUGH[@]}" --version 1.0.2 --from "$SRC/examples/sample-app" --channel production

# 3b. The server lists root v2 but serves no 2.root.json (a withheld rotation): refused.
curl -sf -H "Authorization: Bearer $TOKEN" "$SERVER/api/v1/apps/$APP" |
  python3 -c 'import json,sys; d=json.load(sys.stdin); d["root_version"]=2; print(json.dumps(d))' >"$W/app-root2.json"
echo "{\"GET /api/v1/apps/$APP\": \"$W/app-root2.json\"}" >"$SWAPS"
refused "the server lists root v2 of app $APP but serves no verifiable chain beyond v1" \
  "$A" release publish "$APP" "${THROUGH[@]}" --version 1.0.2 --from "$SRC/examples/sample-app" --channel production

# 4. No pinned root and none given: refused, never trust on first use.
mv "$XDG_CONFIG_HOME/airlock/apps/$APP.root.json" "$W/pinned.json"
: >"$SWAPS"
refused "no trusted root for app $APP on this machine.*--trusted-root" \
  "$A" release publish "$APP" "${THROUGH[@]}" --version 1.0.2 --from "$SRC/examples/sample-app" --channel production
mv "$W/pinned.json" "$XDG_CONFIG_HOME/airlock/apps/$APP.root.json"

# 5. `--encrypt app`: the server swaps the app's public key for the attacker's, so that releases would
#    be encrypted to it. The CLI seals only to the key recorded at `app create`.
APPK=com.example.appkey
openssl genpkey -algorithm x25519 -out "$W/appkey.pem" 2>/dev/null
openssl pkey -in "$W/appkey.pem" -pubout -out "$W/appkey.pub" 2>/dev/null
openssl genpkey -algorithm x25519 -out "$W/evilkey.pem" 2>/dev/null
openssl pkey -in "$W/evilkey.pem" -pubout -out "$W/evilkey.pub" 2>/dev/null
run 0 "created app $APPK" "$A" app create "$APPK" "${DIRECT[@]}" --no-capgo --app-key "$W/appkey.pub"
run 0 "" "$A" channel create "$APPK" production --default "${DIRECT[@]}"
curl -sf -H "Authorization: Bearer $TOKEN" "$SERVER/api/v1/apps/$APPK" |
  python3 -c 'import json,sys; d=json.load(sys.stdin); d["app_key"]=open(sys.argv[1]).read(); print(json.dumps(d))' \
    "$W/evilkey.pub" >"$W/appk-evil.json"
echo "{\"GET /api/v1/apps/$APPK\": \"$W/appk-evil.json\"}" >"$SWAPS"
: >"$W/proxy.log"
run 1 "the server's app key for $APPK is not the one this machine trusts" "$A" release publish "$APPK" \
  "${THROUGH[@]}" --version 1.0.0 --from "$SRC/examples/sample-app" --channel production --encrypt app
one_error_line
! grep -Eq '^(POST|PUT) ' "$W/proxy.log" && ok || bad "an app-key swap let a write through"
: >"$SWAPS"
run 0 "published $APPK 1.0.0" "$A" release publish "$APPK" "${THROUGH[@]}" --version 1.0.0 \
  --from "$SRC/examples/sample-app" --channel production --encrypt app

# 5b. `--encrypt device` (the default): the server swaps the app's content key for the attacker's, so
#     that the blob it receives (and serves publicly) opens with the attacker's key. Refused before
#     anything is sealed or uploaded.
curl -sf -H "Authorization: Bearer $TOKEN" "$SERVER/api/v1/apps/$APP" |
  python3 -c 'import json,sys; d=json.load(sys.stdin); d["content_key"]=open(sys.argv[1]).read(); print(json.dumps(d))' \
    "$W/evilkey.pub" >"$W/app-evilck.json"
echo "{\"GET /api/v1/apps/$APP\": \"$W/app-evilck.json\"}" >"$SWAPS"
refused "the server's content key for $APP is not the one this machine trusts" \
  "$A" release publish "$APP" "${THROUGH[@]}" --version 1.0.2 --from "$SRC/examples/sample-app" --channel production
: >"$SWAPS"

# 6. The same proxy, no forgery: publish and rollback succeed through it.
: >"$SWAPS"
run 0 "published $APP 1.0.2 to channel production" "$A" release publish "$APP" "${THROUGH[@]}" \
  --version 1.0.2 --from "$SRC/examples/sample-app" --channel production
run 0 "rolled back production to 1.0.1 \(signed as a rollback target in targets v5\)" \
  "$A" release rollback "$APP" "${THROUGH[@]}" --channel production --to 1.0.1
run 0 "wrote $W/root-ok.json: root v1" "$A" app root "$APP" "${THROUGH[@]}" --out "$W/root-ok.json"
cmp -s "$W/root-ok.json" "$W/root1.json" && ok || bad "app root is not the pinned root"
# A CI machine without the app record: --trusted-root, --targets-key and --content-key.
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["content_key_pem"], end="")' \
  "$XDG_CONFIG_HOME/airlock/apps/$APP.json" >"$W/content.pub"
run 0 "published $APP 1.0.3" env XDG_CONFIG_HOME="$W/ci-config" "$A" release publish "$APP" "${THROUGH[@]}" \
  --version 1.0.3 --from "$SRC/examples/sample-app" --channel production \
  --trusted-root "$W/root1.json" --targets-key "file:$XDG_CONFIG_HOME/airlock/vault.db#$APP.targets" \
  --content-key "$W/content.pub"

echo "publish_trust: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
