#!/usr/bin/env bash
# The `airlock app|channel|release|rollout|device` contract against a real airlockd on 127.0.0.1:
# exit codes (0 ok, 1 failure, 2 usage), the one-line errors with the server's code and message,
# files on disk (app root == the server's root.json, key record, Capgo public key), device list.
#   tests/server_cli_test.sh BIN_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/lib.sh"
server_test_setup "server cli test" "$1" "$2"
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $1" "$W/out"; }

require_tools python3 curl openssl

# ---- airlockd ----
init_server

# ---- the server's vault passphrase is its own (issue 12) ----
# This shell is set up for the CLI ($AIRLOCK_VAULT_PASSPHRASE): airlockd ignores that variable,
# generated DATA/vault.pass (0600) and said so in one line.
grep -qF "\"vault file:$W/data/vault.db: secret from $W/data/vault.pass (generated now" "$W/init.out" \
  && ok || bad "init did not say where its passphrase came from: $(head -3 "$W/init.out")"
[ "$(stat -c %a "$W/data/vault.pass")" = 600 ] && [ -f "$W/data/vault.pass" ] && [ ! -L "$W/data/vault.pass" ] \
  && ok || bad "vault.pass is not a 0600 regular file"
# A vault whose passphrase file is gone: a clear error and nothing written (no new passphrase).
"$D" --data "$W/d2" init >/dev/null 2>&1 || bad "airlockd init d2"
rm "$W/d2/vault.pass"
tree_state "$W/d2" >"$W/d2.before"
run 1 "^airlockd init: key store file:$W/d2/vault.db: not_found: the vault $W/d2/vault.db exists but its passphrase file $W/d2/vault.pass does not; airlockd makes no new passphrase for an existing vault: restore the file, or give --vault-passphrase-file FILE or \\\$AIRLOCKD_VAULT_PASSPHRASE \\(\\\$AIRLOCK_VAULT_PASSPHRASE is the airlock CLI's; airlockd ignores it\\)$" \
  "$D" --data "$W/d2" init
tree_state "$W/d2" | cmp -s - "$W/d2.before" && ok ||
  bad "airlockd init wrote into a data folder whose vault lost its passphrase file"
run 1 "the vault $W/d2/vault.db exists but its passphrase file" "$D" --data "$W/d2" --listen 127.0.0.1:0
[ ! -e "$W/d2/vault.pass" ] && grep -qxF "$(cd "$W/d2" && sha256sum ./vault.db)" "$W/d2.before" && ok ||
  bad "airlockd made a new passphrase file for an existing vault"
# Attack: DATA/vault.pass planted as a symbolic link to a passphrase the attacker knows. Refused
# before any vault is made; the link's target is not touched.
mkdir -p "$W/d3" && printf 'attacker knows this\n' >"$W/planted" && ln -s "$W/planted" "$W/d3/vault.pass"
run 1 "^airlockd init: key store file:$W/d3/vault.db: invalid_argument: $W/d3/vault.pass is a symbolic link" \
  "$D" --data "$W/d3" init
[ ! -e "$W/d3/vault.db" ] && [ "$(cat "$W/planted")" = "attacker knows this" ] && ok ||
  bad "airlockd used a symlinked vault.pass"
# A dangling link (to where the attacker wants the passphrase written): still refused, nothing made.
mkdir -p "$W/d4" && ln -s "$W/written-here" "$W/d4/vault.pass"
run 1 "$W/d4/vault.pass is a symbolic link" "$D" --data "$W/d4" init
[ ! -e "$W/written-here" ] && [ ! -e "$W/d4/vault.db" ] && ok || bad "airlockd wrote through a link"
# $AIRLOCKD_VAULT_PASSPHRASE: used and named; no vault.pass; another value is the wrong key.
AIRLOCKD_VAULT_PASSPHRASE="server secret" run 0 "secret from \\\$AIRLOCKD_VAULT_PASSPHRASE\"" \
  "$D" --data "$W/d5" init
[ ! -e "$W/d5/vault.pass" ] && ok || bad "vault.pass written although AIRLOCKD_VAULT_PASSPHRASE was set"
AIRLOCKD_VAULT_PASSPHRASE="not it" run 1 "wrong_key: wrong vault passphrase" \
  "$D" --data "$W/d5" --listen 127.0.0.1:0
# Another file vault with no server passphrase: the message names the flag and the variable.
run 1 "^airlockd init: key store file:$W/other.db: invalid_argument: no passphrase for the vault file:$W/other.db: give --vault-passphrase-file FILE \\(vault_passphrase_file\\) or set \\\$AIRLOCKD_VAULT_PASSPHRASE" \
  "$D" --data "$W/d6" --vault "file:$W/other.db" init
[ ! -e "$W/other.db" ] && ok || bad "a vault was made without a passphrase"
printf 'file secret\n' >"$W/pass6"
run 0 "secret from --vault-passphrase-file $W/pass6" \
  "$D" --data "$W/d6" --vault "file:$W/other.db" --vault-passphrase-file "$W/pass6" init

# A restart from another shell (another developer's $AIRLOCK_VAULT_PASSPHRASE) opens the vault.
AIRLOCK_VAULT_PASSPHRASE="another developer" start_server
grep -qF "secret from $W/data/vault.pass\"" "$W/airlockd.log" && ok || bad "restart: no passphrase source line"
S=(--server "$SERVER" --token "$TOKEN")
APP=com.example.cli

# ---- usage errors (exit 2) ----
run 2 "" "$A" app create
run 2 "--server" "$A" app create "$APP" --token "$TOKEN"
run 2 "--token" "$A" app create "$APP" --server "$SERVER"
run 2 "http" "$A" app create "$APP" --server "ftp://127.0.0.1:$PORT" --token "$TOKEN"
run 2 "app id" "$A" app create "bad/app" "${S[@]}"
run 2 "threshold" "$A" app create "$APP" "${S[@]}" --root-threshold 2
run 2 "" "$A" rollout set "$APP" "${S[@]}" --channel production --percent 101
run 2 "" "$A" rollout set "$APP" "${S[@]}" --channel production
run 2 "" "$A" release publish "$APP" "${S[@]}" --version 1.0.0 --from "$SRC/examples/sample-app"
run 2 "not a semver" "$A" release publish "$APP" "${S[@]}" --version 1.0 \
  --from "$SRC/examples/sample-app" --channel production
run 2 "" "$A" release publish "$APP" "${S[@]}" --version 1.0.0 \
  --from "$SRC/examples/sample-app" --channel production --encrypt sometimes
run 2 "not a semver" "$A" release rollback "$APP" "${S[@]}" --channel production --to latest
run 2 "channel name" "$A" channel create "$APP" "no/slash" "${S[@]}"
run 2 "" "$A" device list "$APP" "${S[@]}" --limit 0
# The token never appears in any output.
! grep -qF -- "$TOKEN" "$W/out" "$W/err" && ok || bad "the token was printed"

# ---- server unreachable, bad token (exit 1, one line) ----
run 1 "cannot reach http://127.0.0.1:1" "$A" device list "$APP" --server http://127.0.0.1:1 --token "$TOKEN"
one_error_line
run 1 "^airlock: error: GET /api/v1/apps/$APP/devices\?limit=100: HTTP 401 unauthorized" \
  "$A" device list "$APP" --server "$SERVER" --token wrong-token
one_error_line
! grep -q wrong-token "$W/err" && ok || bad "the bad token was printed"

# ---- app create ----
run 0 "created app $APP" "$A" app create "$APP" "${S[@]}"
grep -q "Device enrollment token (shown once, store it now): enr_[0-9a-f]\{64\}$" "$W/out" && ok ||
  bad "no enrollment token line"
ENROLL=$(sed -n 's/^Device enrollment token.*: \(enr_[0-9a-f]*\)$/\1/p' "$W/out")
grep -q "created vault file:$XDG_CONFIG_HOME/airlock/vault.db" "$W/out" && ok || bad "vault not reported"
grep -q "created root key file:$XDG_CONFIG_HOME/airlock/vault.db#$APP.root" "$W/out" && ok ||
  bad "root key not reported"
grep -q "created targets key file:$XDG_CONFIG_HOME/airlock/vault.db#$APP.targets" "$W/out" && ok ||
  bad "targets key not reported"
[ "$(stat -c %a "$XDG_CONFIG_HOME/airlock")" = 700 ] && ok || bad "config dir is not 0700"
[ -f "$XDG_CONFIG_HOME/airlock/apps/$APP.json" ] && ok || bad "no key record"
CAPGO_PUB="$XDG_CONFIG_HOME/airlock/apps/$APP.capgo.pub.pem"
grep -q "BEGIN RSA PUBLIC KEY" "$CAPGO_PUB" && ok || bad "no Capgo public key (PKCS#1 PEM)"
grep -q "Capgo public key (the plugin's publicKey): $CAPGO_PUB" "$W/out" && ok || bad "Capgo key path not printed"
# The keys are in the vault with their purposes.
run 0 "$APP.root +root +ed25519 +active" "$A" key list --vault "file:$XDG_CONFIG_HOME/airlock/vault.db"
grep -Eq "$APP.targets +targets +ed25519 +active" "$W/out" && ok || bad "targets key not in vault"
grep -Eq "$APP.capgo +capgo +rsa[-0-9]* +active" "$W/out" && ok || bad "Capgo key not in vault"
# Again: the server refuses (409), exit 1, its code and message on one line.
run 1 "^airlock: error: app $APP already exists on $SERVER" "$A" app create "$APP" "${S[@]}"
one_error_line
# Refused with no default vault yet: the vault (and its audit log) it made for the app's keys goes.
fresh="$W/fresh-config"
XDG_CONFIG_HOME="$fresh" run 1 "already exists" "$A" app create "$APP" "${S[@]}"
[ -z "$(find "$fresh" -type f 2>/dev/null)" ] && ok ||
  bad "a refused app create left $(find "$fresh" -type f | head -3 | tr '\n' ' ')"

# ---- app root ----
run 0 "wrote $W/root.json: root v1 of $APP, signed by 1 of 1 root key" \
  "$A" app root "$APP" --out "$W/root.json" --server "$SERVER"
curl -sf -o "$W/served-root.json" "$SERVER/tuf/$APP/root.json" && cmp -s "$W/root.json" "$W/served-root.json" &&
  ok || bad "app root output differs from the served root.json"
run 0 "" "$A" app root "$APP" --out "$W/root2.json" "${S[@]}" --json
json 'assert d["version"]==1 and d["root_threshold"]==1 and len(d["root_keyids"])==1, d' && ok || bad "app root --json"
run 1 "no trusted root for app com.example.nope on this machine" "$A" app root com.example.nope --out "$W/nope.json" --server "$SERVER"
[ ! -e "$W/nope.json" ] && ok || bad "app root wrote a file on failure"

# ---- channels ----
run 0 "created channel production: current -, rollout 100%, paused no, default yes" \
  "$A" channel create "$APP" production --default "${S[@]}"
run 0 "" "$A" channel create "$APP" beta --allow-self-assign --no-ios --rollout-percent 20 \
  --min-native-version 2.0.0 "${S[@]}" --json
json 'assert d["name"]=="beta" and d["allow_self_assign"] is True and d["ios"] is False and d["android"] is True and d["rollout_percent"]==20 and d["min_native_version"]=="2.0.0" and d["default"] is False, d' &&
  ok || bad "channel create --json"
run 1 "^airlock: error: POST /api/v1/apps/$APP/channels: HTTP 409 already_exists" \
  "$A" channel create "$APP" production "${S[@]}"
one_error_line
run 1 "HTTP 404 not_found" "$A" channel create com.example.nope production "${S[@]}"
run 0 "^CHANNEL +CURRENT +ROLLOUT +PAUSED" "$A" channel list "$APP" "${S[@]}"
aligned
grep -Eq "^beta +- +20% +no +no +yes +android,electron +2\.0\.0$" "$W/out" && ok || bad "channel list row: $(cat "$W/out")"
run 0 "" "$A" channel list "$APP" "${S[@]}" --json
json 'assert sorted(c["name"] for c in d["channels"])==["beta","production"], d' && ok || bad "channel list --json"
run 0 "^APP +NAME +CREATED$" "$A" app list "${S[@]}"
aligned
grep -q "^$APP " "$W/out" && ok || bad "app list lacks $APP"
run 0 "" "$A" app list "${S[@]}" --json
json 'assert "'"$APP"'" in [a["app_id"] for a in d["apps"]], d' && ok || bad "app list --json"

# ---- release publish ----
run 0 "published $APP 1.0.0 to channel production" "$A" release publish "$APP" "${S[@]}" \
  --version 1.0.0 --from "$SRC/examples/sample-app" --channel production
grep -q "releases/1.0.0/bundle.alb (.* bytes, sha256 [0-9a-f]\{64\}, encryption device)" "$W/out" && ok ||
  bad "publish output"
# (Notices aside: the default vault says it has no access control whenever it is opened; the app
# has a Capgo key and this publish has no --capgo, so a warning says so, tests/server_ops_test.sh.)
[ -z "$(grep -v -e '^airlock: notice: ' -e '^airlock: warning: .* without --capgo' "$W/err")" ] && ok ||
  bad "publish wrote to stderr (a progress bar?) when it is not a terminal"
# docs/operations/server.md, "TUF files": every file in DATA/tuf/APP is served, the unversioned
# names (timestamp.json, root.json) with no-cache, the versioned ones immutable; snapshot.json and
# targets.json do not exist under unversioned names.
for f in $(ls "$W/data/tuf/$APP"); do
  curl -sf -D "$W/h" -o /dev/null "$SERVER/tuf/$APP/$f" || { bad "/tuf/$APP/$f is not served"; continue; }
  case "$f" in
    timestamp.json | root.json) want="no-cache" ;;
    [0-9]*.root.json | [0-9]*.snapshot.json | [0-9]*.targets.json) want="public, max-age=31536000, immutable" ;;
    *) bad "unexpected file $f in DATA/tuf/$APP"; continue ;;
  esac
  grep -qix "cache-control: $want"$'\r' "$W/h" && ok || bad "/tuf/$APP/$f: Cache-Control is not $want"
done
for f in snapshot.json targets.json; do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVER/tuf/$APP/$f")" = 404 ] && ok ||
    bad "/tuf/$APP/$f is served, server.md says it is not"
done
# The same version again: the server's 409, from the check made before anything is uploaded.
run 1 "^airlock: error: GET /api/v1/apps/$APP/releases/check\?version=1.0.0&channel=production: HTTP 409 already_exists" \
  "$A" release publish "$APP" "${S[@]}" --version 1.0.0 --from "$SRC/examples/sample-app" --channel production
one_error_line
run 1 "HTTP 404" "$A" release publish "$APP" "${S[@]}" --version 1.0.5 --from "$SRC/examples/sample-app" \
  --channel nochannel
run 1 "no app key" "$A" release publish "$APP" "${S[@]}" --version 1.0.5 --from "$SRC/examples/sample-app" \
  --channel production --encrypt app
run 1 "does not exist" "$A" release publish "$APP" "${S[@]}" --version 1.0.5 --from "$W/missing" \
  --channel production
# 1.0.1: with Capgo, security floor 1 (so 1.0.0 is no longer an allowed rollback).
run 0 "" "$A" release publish "$APP" "${S[@]}" --version 1.0.1 --from "$SRC/examples/sample-app" \
  --channel production --capgo --security-floor 1 --json
json 'assert d["version"]=="1.0.1" and d["target"]=="releases/1.0.1/bundle.alb" and d["encryption"]=="device" and d["capgo"]["length"]>0 and len(d["sha256"])==64, d' &&
  ok || bad "publish --json"
SHA_101=$(json 'print(d["sha256"])')
# The blob is served byte-exact and is a sealed bundle.
curl -sf -o "$W/101.alb" "$SERVER/v1/blobs/$SHA_101" && [ "$(sha256sum <"$W/101.alb" | cut -c1-64)" = "$SHA_101" ] &&
  ok || bad "the published blob is not served"
run 0 "1.0.1" "$A" bundle inspect "$W/101.alb"
# 1.0.2 from a zip, unencrypted, to beta.
(cd "$SRC/examples/sample-app" && python3 -c '
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for root, _, files in os.walk("."):
        for f in sorted(files):
            p = os.path.join(root, f)[2:]
            z.write(p, p)
' "$W/app.zip")
run 0 "releases/1.0.2/bundle.zip .*encryption none" "$A" release publish "$APP" "${S[@]}" \
  --version 1.0.2 --from "$W/app.zip" --channel beta --encrypt none --security-floor 1
SHA_ZIP=$(sha256sum <"$W/app.zip" | cut -c1-64)
grep -q "sha256 $SHA_ZIP" "$W/out" && ok || bad "--encrypt none did not publish the zip itself"
run 0 "" "$A" release list "$APP" "${S[@]}" --json
json 'assert [r["version"] for r in d["releases"]]==["1.0.2","1.0.1","1.0.0"], d' && ok || bad "release list order"
run 0 "^1\.0\.2 +none" "$A" release list "$APP" "${S[@]}"
# One header, its columns apart (it once ran "ENCRYPTIONLENGTH" together), rows under them.
head -1 "$W/out" | grep -Eq "^VERSION +ENCRYPTION +LENGTH +CAPGO +CREATED$" && ok || bad "release list header: $(head -1 "$W/out")"
aligned
# The published metadata verifies as a client would (the agent's TUF client, from `app root`), and
# its targets list the served blob.
if [ -x "$BIN/airlock-agent" ]; then
  mkdir -p "$W/md"
  run 2 "--metadata-dir is required" "$BIN/airlock-agent" tuf-client init "$W/root.json"
  [ ! -e "$W/md/root.json" ] && ok || bad "a refused tuf-client init wrote root.json"
  run 0 "^trusted root $W/root.json stored in $W/md$" "$BIN/airlock-agent" tuf-client init "$W/root.json" --metadata-dir "$W/md"
  [ "$(wc -l <"$W/out")" -eq 1 ] && ok || bad "tuf-client init printed $(wc -l <"$W/out") lines"
  run 2 "--metadata-url is required" "$BIN/airlock-agent" tuf-client refresh --metadata-dir "$W/md"
  run 0 "^metadata in $W/md is verified and up to date$" "$BIN/airlock-agent" tuf-client refresh --metadata-dir "$W/md" --metadata-url "$SERVER/tuf/$APP"
  python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))["signed"]["targets"]["releases/1.0.1/bundle.alb"]
assert t["hashes"]["sha256"] == sys.argv[2] and t["custom"]["security_floor"] == 1, t
assert t["custom"]["app_id"] == sys.argv[3] and t["custom"]["version"] == "1.0.1", t
' "$W/md/targets.json" "$SHA_101" "$APP" && ok || bad "trusted targets.json does not list the 1.0.1 blob"
  # A standard TUF client downloads the target through its consistent-snapshot path
  # (/tuf/APP/targets/releases/1.0.1/<sha256>.bundle.alb), verified against the signed length and hash.
  mkdir -p "$W/tgt"
  run 0 "" "$BIN/airlock-agent" tuf-client download --metadata-dir "$W/md" --metadata-url "$SERVER/tuf/$APP" \
    --target-base-url "$SERVER/tuf/$APP/targets" --target-dir "$W/tgt" --target-name releases/1.0.1/bundle.alb
  # One line naming where the verified target was saved (the URL-encoded name the TUF conformance
  # contract fixes).
  [ "$(wc -l <"$W/out")" -eq 1 ] && grep -q "^releases/1.0.1/bundle.alb -> $W/tgt/releases%2F1.0.1%2Fbundle.alb ([0-9]* bytes, verified)$" "$W/out" &&
    ok || bad "tuf-client download output: $(cat "$W/out")"
  got_sha=$(sha256sum <"$W/tgt/releases%2F1.0.1%2Fbundle.alb" | cut -c1-64)
  [ "$got_sha" = "$SHA_101" ] && ok || bad "tuf-client download: sha256 $got_sha, wanted $SHA_101"
  # A name whose digest is not a held blob is 404, like any unknown path.
  code=$(curl -s -o /dev/null -w '%{http_code}' "$SERVER/tuf/$APP/targets/releases/1.0.1/$(printf '0%.0s' $(seq 64)).bundle.alb")
  [ "$code" = 404 ] && ok || bad "unknown consistent target path: HTTP $code, wanted 404"
fi

# On a terminal, uploads show a progress bar (on stderr).
if command -v script >/dev/null; then
  script -qec "'$A' release publish '$APP' --server '$SERVER' --token '$TOKEN' --version 1.0.4 --from '$SRC/examples/sample-app' --channel beta" \
    /dev/null >"$W/tty.out" 2>&1 </dev/null
  grep -q "uploading releases/1.0.4/bundle.alb \[#*\] 100%" "$W/tty.out" && ok ||
    bad "no progress bar on a terminal: $(head -c 300 "$W/tty.out")"
fi

# ---- rollouts ----
run 0 "production: current 1.0.1, rollout 50%, paused no" "$A" rollout set "$APP" "${S[@]}" \
  --channel production --percent 50
run 0 "" "$A" rollout pause "$APP" "${S[@]}" --channel production --json
json 'assert d["paused"] is True and d["rollout_percent"]==50, d' && ok || bad "rollout pause"
run 0 "paused no" "$A" rollout resume "$APP" "${S[@]}" --channel production
run 1 "HTTP 404" "$A" rollout pause "$APP" "${S[@]}" --channel nochannel

# ---- rollback ----
# 1.0.0 has security floor 0 < 1 (the highest signed): the CLI refuses before signing anything.
run 1 "^airlock: error: release 1.0.0 has security floor 0, below the app's highest \(1\)" \
  "$A" release rollback "$APP" "${S[@]}" --channel production --to 1.0.0
one_error_line
# The server refuses it too (1.0.0 is not a signed rollback target, and is below the floor).
code=$(curl -s -o "$W/rb.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"to":"1.0.0"}' "$SERVER/api/v1/apps/$APP/channels/production/rollback")
[ "$code" = 422 ] && grep -q "not signed as a rollback target" "$W/rb.json" && ok ||
  bad "server rollback to 1.0.0: HTTP $code $(cat "$W/rb.json")"
run 1 "list no release 9.9.9" "$A" release rollback "$APP" "${S[@]}" --channel production --to 9.9.9
# A release publish below the highest floor is refused before anything is signed; the floor is carried.
run 1 "--security-floor 0 is below the app's highest signed floor 1" "$A" release publish "$APP" "${S[@]}" \
  --version 1.0.3 --from "$SRC/examples/sample-app" --channel production --security-floor 0
run 0 "security floor 1; not a rollback target" "$A" release publish "$APP" "${S[@]}" --version 1.0.3 \
  --from "$SRC/examples/sample-app" --channel production
# 1.0.1 was not signed as a rollback target: the CLI signs it so (targets N+1) with the rollback.
run 0 "rolled back production to 1.0.1 \(signed as a rollback target in targets v[0-9]+\): production: current 1.0.1" \
  "$A" release rollback "$APP" "${S[@]}" --channel production --to 1.0.1
# Only to a channel the release is signed for: 1.0.2 is signed for beta only.
run 1 "release 1.0.2 .* is not signed for channel production" \
  "$A" release rollback "$APP" "${S[@]}" --channel production --to 1.0.2
# --security-fix raises the floor: 1.0.5 carries 2, and 1.0.3 (floor 1) can no longer be gone back to.
run 0 "security floor 2; a rollback target" "$A" release publish "$APP" "${S[@]}" --version 1.0.5 \
  --from "$SRC/examples/sample-app" --channel production --security-fix --rollback-target --allow-channel beta
grep -q "signed for channels production, beta" "$W/out" && ok || bad "--allow-channel not signed"
run 1 "release 1.0.3 has security floor 1, below the app's highest \(2\)" \
  "$A" release rollback "$APP" "${S[@]}" --channel production --to 1.0.3
run 0 "" "$A" release publish "$APP" "${S[@]}" --version 1.0.6 --from "$SRC/examples/sample-app" \
  --channel production --json
run 0 "rolled back production to 1.0.5: production: current 1.0.5" \
  "$A" release rollback "$APP" "${S[@]}" --channel production --to 1.0.5

# ---- devices ----
run 0 "^0 devices$" "$A" device list "$APP" "${S[@]}"
openssl genpkey -algorithm x25519 -out "$W/dev.pem" 2>/dev/null
DEVPUB=$(openssl pkey -in "$W/dev.pem" -pubout -outform DER 2>/dev/null | tail -c 32 | od -An -tx1 | tr -d ' \n')
DEVSIGN=$("$SRC/tests/device_request.sh" keygen "$W/dev-sign.pem")
device_post() {  # DEVICE KEY PATH BODY OUT: a signed device request; prints the HTTP status
  printf '%s' "$4" >"$W/device-body"
  local headers=()
  while IFS= read -r line; do headers+=(-H "$line"); done < <(
    "$SRC/tests/device_request.sh" headers "$2" POST "$3" "$1" "$W/device-body")
  curl -s -o "$5" -w '%{http_code}' -H 'Content-Type: application/json' "${headers[@]}" \
    --data-binary "@$W/device-body" "$SERVER$3"
}
device_post dev-0001 "$W/dev-sign.pem" /v1/enroll \
  "{\"app_id\":\"$APP\",\"device_id\":\"dev-0001\",\"public_key\":\"$DEVPUB\",\"signing_key\":\"$DEVSIGN\",\"platform\":\"android\",\"enrollment_token\":\"$ENROLL\"}" \
  "$W/enroll.json" >"$W/code"
[ "$(cat "$W/code")" = 201 ] && ok || bad "enroll: HTTP $(cat "$W/code") $(cat "$W/enroll.json")"
run 0 "^dev-0001 +android " "$A" device list "$APP" "${S[@]}"
grep -q "^1 device$" "$W/out" && ok || bad "device count"
run 0 "" "$A" device list "$APP" "${S[@]}" --json
json "assert [x['device_id'] for x in d['devices']]==['dev-0001'] and d['devices'][0]['public_key']=='$DEVPUB', d" &&
  ok || bad "device list --json"

# ---- device proof, approval, revocation, preauthorized keys (issue 10 item 3) ----
CHECK1="{\"app_id\":\"$APP\",\"device_id\":\"dev-0001\",\"version\":\"0.1.0\",\"native_version\":\"1.0.0\",\"platform\":\"android\"}"
events() { sqlite3 "$W/data/airlock.db" "SELECT count(*) FROM device_events"; }
[ "$(device_post dev-0001 "$W/dev-sign.pem" /v1/check "$CHECK1" "$W/check.json")" = 200 ] && ok ||
  bad "signed check: $(cat "$W/check.json")"
# Another key signing as dev-0001: 401, nothing stored.
"$SRC/tests/device_request.sh" keygen "$W/thief.pem" >/dev/null
REPORT1="{\"app_id\":\"$APP\",\"device_id\":\"dev-0001\",\"events\":[{\"seq\":1,\"version\":\"1.0.0\",\"kind\":\"failed\",\"occurred_at\":1}]}"
before=$(events)
[ "$(device_post dev-0001 "$W/thief.pem" /v1/report "$REPORT1" "$W/r.json")" = 401 ] && ok ||
  bad "a report signed by another key: $(cat "$W/r.json")"
grep -q '"bad device signature' "$W/r.json" && ok || bad "401 reason: $(cat "$W/r.json")"
[ "$(events)" = "$before" ] && ok || bad "the forged report was stored"
# Revoked: 403 on every device route, also for a correctly signed request.
run 0 "^device dev-0001 of $APP: revoked$" "$A" device revoke "$APP" dev-0001 "${S[@]}"
for route in /v1/check /v1/report; do
  body=$CHECK1
  [ "$route" = /v1/report ] && body=$REPORT1
  [ "$(device_post dev-0001 "$W/dev-sign.pem" "$route" "$body" "$W/r.json")" = 403 ] &&
    grep -q '"device_revoked"' "$W/r.json" && ok || bad "revoked device on $route: $(cat "$W/r.json")"
done
[ "$(events)" = "$before" ] && ok || bad "a revoked device's report was stored"
run 1 "409 conflict: device dev-0001 is revoked" "$A" device approve "$APP" dev-0001 "${S[@]}"
one_error_line
run 0 "^dev-0001 +android +revoked " "$A" device list "$APP" "${S[@]}"
# Policy approve: a new device waits as pending (403 device_pending) until approved.
run 0 "^enrollment policy of $APP: token$" "$A" device policy "$APP" "${S[@]}"
run 0 "^enrollment policy of $APP: approve$" "$A" device policy "$APP" approve "${S[@]}"
run 2 "" "$A" device policy "$APP" anyone "${S[@]}"
"$SRC/tests/device_request.sh" keygen "$W/dev2.pem" >"$W/dev2.pub"
ENROLL2="{\"app_id\":\"$APP\",\"device_id\":\"dev-0002\",\"public_key\":\"$DEVPUB\",\"signing_key\":\"$(cat "$W/dev2.pub")\",\"platform\":\"android\",\"enrollment_token\":\"$ENROLL\"}"
[ "$(device_post dev-0002 "$W/dev2.pem" /v1/enroll "$ENROLL2" "$W/e.json")" = 201 ] &&
  grep -q '"status":"pending"' "$W/e.json" && ok || bad "approve-policy enroll: $(cat "$W/e.json")"
CHECK2=${CHECK1//dev-0001/dev-0002}
[ "$(device_post dev-0002 "$W/dev2.pem" /v1/check "$CHECK2" "$W/c.json")" = 403 ] &&
  grep -q '"device_pending"' "$W/c.json" && ok || bad "pending device checked: $(cat "$W/c.json")"
run 0 "^device dev-0002 of $APP: active$" "$A" device approve "$APP" dev-0002 "${S[@]}"
[ "$(device_post dev-0002 "$W/dev2.pem" /v1/check "$CHECK2" "$W/c.json")" = 200 ] && ok ||
  bad "approved device: $(cat "$W/c.json")"
# Policy preauth: only listed signing keys enroll, each for its device id.
run 0 "^enrollment policy of $APP: preauth$" "$A" device policy "$APP" preauth "${S[@]}"
"$SRC/tests/device_request.sh" keygen "$W/dev3.pem" >"$W/dev3.pub"
"$SRC/tests/device_request.sh" keygen "$W/dev4.pem" >"$W/dev4.pub"
printf '{"signing_key":"%s","device_id":"dev-0003"}\n\n{"signing_key":"%s"}\n' \
  "$(cat "$W/dev3.pub")" "$(cat "$W/dev4.pub")" >"$W/factory.jsonl"
run 0 "^preauthorized 2 new keys of 2 for $APP$" "$A" device preauthorize "$APP" --keys "$W/factory.jsonl" "${S[@]}"
run 0 "^preauthorized 0 new keys of 2 for $APP$" "$A" device preauthorize "$APP" --keys "$W/factory.jsonl" "${S[@]}"
echo '[{"signing_key":"zz"}]' >"$W/bad-factory.json"
run 1 "400 bad_request: keys\[0\]: signing_key must be an Ed25519 key" \
  "$A" device preauthorize "$APP" --keys "$W/bad-factory.json" "${S[@]}"
one_error_line
enroll_as() {  # DEVICE KEY: the HTTP status of a signed enrollment of DEVICE with KEY's public key
  device_post "$1" "$2" /v1/enroll \
    "{\"app_id\":\"$APP\",\"device_id\":\"$1\",\"public_key\":\"$DEVPUB\",\"signing_key\":\"$(cat "${2%.pem}.pub")\",\"platform\":\"android\",\"enrollment_token\":\"$ENROLL\"}" \
    "$W/e.json"
}
"$SRC/tests/device_request.sh" keygen "$W/dev5.pem" >"$W/dev5.pub"
[ "$(enroll_as dev-0005 "$W/dev5.pem")" = 403 ] && grep -q '"not_preauthorized"' "$W/e.json" && ok ||
  bad "an unlisted key enrolled: $(cat "$W/e.json")"
[ "$(enroll_as dev-0009 "$W/dev3.pem")" = 403 ] && ok || bad "a key listed for dev-0003 enrolled dev-0009"
[ "$(enroll_as dev-0003 "$W/dev3.pem")" = 201 ] && ok || bad "the listed key: $(cat "$W/e.json")"
[ "$(enroll_as dev-0004 "$W/dev4.pem")" = 201 ] && ok || bad "the listed key without id: $(cat "$W/e.json")"
[ "$(enroll_as dev-0006 "$W/dev4.pem")" = 403 ] && ok || bad "one preauthorized key enrolled two devices"
sqlite3 "$W/data/airlock.db" "SELECT device_id FROM devices WHERE app_id='$APP' ORDER BY device_id" \
  | tr '\n' ' ' >"$W/ids"
[ "$(cat "$W/ids")" = "dev-0001 dev-0002 dev-0003 dev-0004 " ] && ok || bad "devices: $(cat "$W/ids")"
run 0 "" "$A" device policy "$APP" token "${S[@]}"

# ---- airlock token create|list|revoke ----
run 2 "--role" "$A" token create ci "${S[@]}"
run 2 "--role: bogus not in" "$A" token create ci --role bogus "${S[@]}"
run 2 "--expires-in" "$A" token create ci --role read-only --expires-in 10 "${S[@]}"
run 2 "token name" "$A" token create "bad name" --role read-only "${S[@]}"
# A read-only token may list devices but not publish (403 from the server).
run 0 "^created token reader \(tok_[0-9a-f]{16}, roles read-only, apps all, expires -\); store it now, it is not shown again:$" \
  "$A" token create reader --role read-only "${S[@]}"
RO=$(sed -n 2p "$W/out")
[[ "$RO" == alk_* ]] && ok || bad "token create printed no alk_ token: $(cat "$W/out")"
run 0 "" "$A" token create ci-publisher --role release-manager --app "$APP" --expires-in 90d "${S[@]}" --json
json 'import time; assert d["name"]=="ci-publisher" and d["roles"]==["release-manager"] and d["apps"]==["'"$APP"'"] and abs(d["expires"]-time.time()-90*86400)<600 and d["token"].startswith("alk_"), d' &&
  ok || bad "token create --json"
CI_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$W/out")
CI_TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$W/out")
run 0 "^ID +NAME +KIND +ROLES +APPS +EXPIRES +LAST USED +STATE$" "$A" token list "${S[@]}"
aligned
grep -Eq "^$CI_ID +ci-publisher +token +release-manager +$APP +[0-9T:-]+Z +- +active$" "$W/out" && ok ||
  bad "token list row: $(cat "$W/out")"
! grep -q alk_ "$W/out" && ok || bad "token list printed a token"
run 0 "" "$A" token list "${S[@]}" --json
json 'assert "'"$CI_ID"'" in [p.get("id") for p in d["principals"]], d' && ok || bad "token list --json"
run 0 "" "$A" channel list "$APP" --server "$SERVER" --token "$CI_TOKEN"
# Revoked: the token stops working at once.
run 0 "^revoked token ci-publisher \($CI_ID\); tokens it minted are revoked with it$" "$A" token revoke "$CI_ID" "${S[@]}"
run 1 "HTTP 401 unauthorized" "$A" channel list "$APP" --server "$SERVER" --token "$CI_TOKEN"
one_error_line
run 0 "^$CI_ID +ci-publisher .* revoked$" "$A" token list "${S[@]}"
run 1 "^airlock: error: DELETE /api/v1/tokens/tok_0000000000000000: HTTP 404 not_found" \
  "$A" token revoke tok_0000000000000000 "${S[@]}"
one_error_line
if [ -n "$RO" ]; then
  run 0 "dev-0001" "$A" device list "$APP" --server "$SERVER" --token "$RO"
  run 1 "HTTP 403 forbidden" "$A" rollout pause "$APP" --server "$SERVER" --token "$RO" --channel production
else
  bad "could not create a read-only token: $(cat "$W/tok.json")"
fi

# ---- an app with PEM keys: two root keys (threshold 2), a targets key, an app key, no Capgo ----
APP2=com.example.pem
for k in r1 r2 t; do openssl genpkey -algorithm ed25519 -out "$W/$k.pem" 2>/dev/null; done
openssl pkey -in "$W/t.pem" -pubout -out "$W/t.pub" 2>/dev/null
openssl genpkey -algorithm x25519 -out "$W/appkey.pem" 2>/dev/null
openssl pkey -in "$W/appkey.pem" -pubout -out "$W/appkey.pub" 2>/dev/null
run 2 "threshold" "$A" app create "$APP2" "${S[@]}" --root-key "$W/r1.pem" --root-threshold 2 \
  --targets-key "$W/t.pem"
run 0 "root keys \(threshold 2\)" "$A" app create "$APP2" "${S[@]}" --root-key "$W/r1.pem" \
  --root-key "$W/r2.pem" --root-threshold 2 --targets-key "$W/t.pem" --app-key "$W/appkey.pub" --no-capgo
! grep -q "Capgo" "$W/out" && ok || bad "--no-capgo still made a Capgo key"
run 0 "" "$A" app root "$APP2" --out "$W/root-pem.json" --server "$SERVER" --json
json 'assert d["root_threshold"]==2 and len(d["root_keyids"])==2, d' && ok || bad "two root keys, threshold 2"
run 0 "" "$A" channel create "$APP2" production --default "${S[@]}"
run 1 "no Capgo key" "$A" release publish "$APP2" "${S[@]}" --version 2.0.0 --from "$SRC/examples/sample-app" \
  --channel production --capgo
run 0 "\"encryption\": \"app\"" "$A" release publish "$APP2" "${S[@]}" --version 2.0.0 \
  --from "$SRC/examples/sample-app" --channel production --encrypt app --json
SHA_APP=$(json 'print(d["sha256"])')
curl -sf -o "$W/app.alb" "$SERVER/v1/blobs/$SHA_APP" && ok || bad "app-mode blob not served"
run 0 "" "$A" bundle open "$W/app.alb" --verify-key "$W/t.pub" --decrypt-key "$W/appkey.pem" --out "$W/opened"
diff -r "$SRC/examples/sample-app" "$W/opened" >/dev/null && ok || bad "app-mode bundle does not open to the app"
# A bundle signed with another key than the targets key (--sign-key), metadata still by the targets key.
openssl genpkey -algorithm ed25519 -out "$W/other.pem" 2>/dev/null
openssl pkey -in "$W/other.pem" -pubout -out "$W/other.pub" 2>/dev/null
run 0 "" "$A" release publish "$APP2" "${S[@]}" --version 2.0.1 --from "$SRC/examples/sample-app" \
  --channel production --encrypt app --sign-key "$W/other.pem" --json
curl -sf -o "$W/other.alb" "$SERVER/v1/blobs/$(json 'print(d["sha256"])')" && ok || bad "blob 2.0.1"
run 0 "" "$A" bundle open "$W/other.alb" --verify-key "$W/other.pub" --decrypt-key "$W/appkey.pem" --out "$W/opened2"
# A targets key the root does not list: refused before anything is uploaded.
run 1 "is not a targets key of app $APP2" "$A" release publish "$APP2" "${S[@]}" --version 2.0.2 \
  --from "$SRC/examples/sample-app" --channel production --encrypt app --targets-key "$W/other.pem"

# `app root` starts from the root `app create` pinned; without it, nothing is trusted.
PIN2="$XDG_CONFIG_HOME/airlock/apps/$APP2.root.json"
cmp -s "$PIN2" "$W/root-pem.json" && ok || bad "app root is not the pinned root"
mv "$PIN2" "$W/pin2.bak"
run 1 "no trusted root for app $APP2 on this machine" "$A" app root "$APP2" --out "$W/root-x.json" --server "$SERVER"
[ ! -e "$W/root-x.json" ] && ok || bad "app root wrote a root it does not trust"
run 0 "root v1 of $APP2" "$A" app root "$APP2" --out "$W/root-x.json" --server "$SERVER" --trusted-root "$W/pin2.bak"
cmp -s "$PIN2" "$W/pin2.bak" && ok || bad "--trusted-root with no pin did not pin it"

# ---- a half-made app: `app create` resumes, with a new enrollment token ----
APP3=com.example.resume
# As if an earlier `app create` had stopped right after POST /api/v1/apps: no root, no targets.
status=$(curl -s -o "$W/half.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' --data "{\"app_id\":\"$APP3\"}" "$SERVER/api/v1/apps")
[ "$status" = 201 ] && ok || bad "POST /api/v1/apps answered $status"
OLD3=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["enrollment_token"])' "$W/half.json")
run 0 "finished creating app $APP3 on $SERVER \(root v1, targets v1\)" "$A" app create "$APP3" "${S[@]}" --no-capgo
grep -q "resumed: the app existed on the server without a root; enrollment token rotated" "$W/out" && ok ||
  bad "the resume is not reported"
NEW3=$(sed -n 's/^Device enrollment token.*: \(enr_[0-9a-f]*\)$/\1/p' "$W/out")
[ -n "$NEW3" ] && [ "$NEW3" != "$OLD3" ] && ok || bad "no new enrollment token"
run 0 "wrote $W/root3.json: root v1 of $APP3" "$A" app root "$APP3" --out "$W/root3.json" --server "$SERVER"
enroll3() {  # DEVICE TOKEN: the HTTP status of POST /v1/enroll
  [ -f "$W/sign-$1.pem" ] || "$SRC/tests/device_request.sh" keygen "$W/sign-$1.pem" >"$W/sign-$1.pub"
  device_post "$1" "$W/sign-$1.pem" /v1/enroll \
    "{\"app_id\":\"$APP3\",\"device_id\":\"$1\",\"public_key\":\"$(printf '%064d' 7)\",\"signing_key\":\"$(cat "$W/sign-$1.pub")\",\"platform\":\"android\",\"enrollment_token\":\"$2\"}" \
    /dev/null
}
[ "$(enroll3 dev-a "$OLD3")" = 401 ] && ok || bad "the first token (never shown) still enrolls"
[ "$(enroll3 dev-a "$NEW3")" = 201 ] && ok || bad "the new token does not enroll"
# Complete now: a third run changes nothing.
run 1 "^airlock: error: app $APP3 already exists on $SERVER" "$A" app create "$APP3" "${S[@]}" --no-capgo
one_error_line
[ "$(enroll3 dev-b "$NEW3")" = 201 ] && ok || bad "the refused rerun changed the token"

# ---- app enrollment-token ----
run 0 "new device enrollment token for $APP3" "$A" app enrollment-token "$APP3" "${S[@]}"
NEWER3=$(sed -n 's/^Device enrollment token.*: \(enr_[0-9a-f]*\)$/\1/p' "$W/out")
[ "$(enroll3 dev-c "$NEW3")" = 401 ] && ok || bad "a replaced token still enrolls"
[ "$(enroll3 dev-c "$NEWER3")" = 201 ] && ok || bad "the replacing token does not enroll"
[ "$(enroll3 dev-a "$NEWER3")" = 200 ] && ok || bad "an enrolled device lost its enrollment"
run 0 "" "$A" app enrollment-token "$APP3" "${S[@]}" --json
json 'assert d["app_id"]=="com.example.resume" and len(d["enrollment_token"])==68, d' && ok ||
  bad "app enrollment-token --json"
run 1 "HTTP 404" "$A" app enrollment-token com.example.nope "${S[@]}"
one_error_line

# ---- usage errors exit 2 in every program ----
run 2 "" "$D"
run 2 "" "$D" --no-such-option
run 2 "" "$BIN/airlock-agent"
run 2 "" "$BIN/airlock-agent" --no-such-option
run 2 "" "$A"
run 2 "" "$A" token
run 0 "Usage: airlock token" "$A" token --help

# ---- --cacert: an airlockd with a private CA, over TLS on 127.0.0.1 ----
kill "$PID" 2>/dev/null
wait "$PID" 2>/dev/null
PID=""
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=Test CA" \
  -keyout "$W/ca.key" -out "$W/ca.pem" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$W/tls.key" -out "$W/tls.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$W/ext.cnf"
openssl x509 -req -in "$W/tls.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial -days 2 \
  -extfile "$W/ext.cnf" -out "$W/tls.pem" 2>/dev/null
PORT=$(free_port)
TLS_SERVER="https://127.0.0.1:$PORT"
"$D" --data "$W/data" --listen "127.0.0.1:$PORT" --public-url "$TLS_SERVER" --threads 2 \
  --tls-cert "$W/tls.pem" --tls-key "$W/tls.key" >"$W/airlockd-tls.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do
  curl -sf -o /dev/null --max-time 2 --cacert "$W/ca.pem" "$TLS_SERVER/healthz" && break
  sleep 0.05
done
T=(--server "$TLS_SERVER" --token "$TOKEN")
run 1 "^airlock: error: cannot reach $TLS_SERVER: SSL certificate problem: unable to get local issuer certificate \(for a server with a private CA, pass --cacert FILE\)$" \
  env -u CURL_CA_BUNDLE -u SSL_CERT_FILE "$A" app list "${T[@]}"
one_error_line
run 0 "^APP +NAME +CREATED$" env -u CURL_CA_BUNDLE -u SSL_CERT_FILE "$A" app list "${T[@]}" --cacert "$W/ca.pem"
grep -q "^$APP " "$W/out" && ok || bad "app list over TLS lacks $APP"
run 0 "^APP " env -u SSL_CERT_FILE CURL_CA_BUNDLE="$W/ca.pem" "$A" app list "${T[@]}"
run 0 "^APP " env -u CURL_CA_BUNDLE SSL_CERT_FILE="$W/ca.pem" "$A" app list "${T[@]}"
# Another CA's file is a certificate error naming the file; a missing file is named as such.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=Other CA" \
  -keyout "$W/other-ca.key" -out "$W/other-ca.pem" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign" 2>/dev/null
run 1 "certificate problem.*\(CA certificates from $W/other-ca.pem\)$" "$A" app list "${T[@]}" \
  --cacert "$W/other-ca.pem"
run 1 "^airlock: error: CA file from --cacert: .*$W/nope.pem" "$A" app list "${T[@]}" --cacert "$W/nope.pem"
one_error_line

echo "server.cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
