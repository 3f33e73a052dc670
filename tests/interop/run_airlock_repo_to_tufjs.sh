#!/usr/bin/env bash
# Interop 1: a repository made by `airlock repo` (init, add-target of a sealed bundle and of a plain file,
# publish) is refreshed by tuf-js's Updater, and both targets download byte for byte, with the bundle's
# app_id/version in the signed `custom` field. The generated keys are outside the served directory, and
# verify warns about a private key left inside it.
source "$(dirname "$0")/lib.sh"
need "$AIRLOCK"

step "airlock repo init / add-target / publish"
make_bundle "$W/app.alb" 1.0.0
echo "release notes" >"$W/notes.txt"
"$AIRLOCK" repo init "$W/repo" --app com.example.interop >"$W/init.out"
no_private_keys_in "$W/repo"
for k in root targets snapshot timestamp; do
  [ "$(stat -c %a "$AIRLOCK_KEY_DIR/$k.key")" = 600 ] || fail "$AIRLOCK_KEY_DIR/$k.key is not mode 0600"
done
[ "$(stat -c %a "$AIRLOCK_KEY_DIR")" = 700 ] || fail "$AIRLOCK_KEY_DIR is not mode 0700"
grep -q "$AIRLOCK_KEY_DIR" "$W/init.out" || fail "init does not say where the keys are: $(cat "$W/init.out")"
"$AIRLOCK" repo add-target "$W/repo" "$W/app.alb"
"$AIRLOCK" repo add-target "$W/repo" "$W/notes.txt" --name docs/notes.txt --custom '{"channels":["beta"]}'
"$AIRLOCK" repo publish "$W/repo" 2>"$W/publish.err"
[ ! -s "$W/publish.err" ] || fail "publish warned: $(cat "$W/publish.err")"
no_private_keys_in "$W/repo"
start_server "$W/repo" repo

step "tuf-js refreshes and downloads"
tufjs "$W/repo/metadata/1.root.json" "$URL_repo" "$W/md" "$W/td" app.alb docs/notes.txt >"$W/custom.jsonl"
same "$W/app.alb" "$W/td/app.alb" "bundle downloaded by tuf-js"
same "$W/notes.txt" "$W/td/docs/notes.txt" "file downloaded by tuf-js"
grep -q '"name":"app.alb".*"version":"1.0.0"' "$W/custom.jsonl" || fail "custom of app.alb: $(cat "$W/custom.jsonl")"
grep -q '"name":"app.alb".*"app_id":"com.example.interop"' "$W/custom.jsonl" || fail "custom app_id"
grep -q '"name":"docs/notes.txt".*"channels":\["beta"\]' "$W/custom.jsonl" || fail "custom of notes"

step "verify warns about a private key inside the repository"
"$AIRLOCK" repo verify "$W/repo" 2>"$W/verify.err" >/dev/null
[ ! -s "$W/verify.err" ] || fail "verify warned about a clean repository: $(cat "$W/verify.err")"
cp "$AIRLOCK_KEY_DIR/targets.key" "$W/repo/targets/oops.pem"
"$AIRLOCK" repo verify "$W/repo" 2>"$W/verify.err" >/dev/null
grep -q "warning: .*private key" "$W/verify.err" || fail "no warning: $(cat "$W/verify.err")"
grep -q "oops.pem" "$W/verify.err" || fail "warning does not name the file: $(cat "$W/verify.err")"
echo "ok"
