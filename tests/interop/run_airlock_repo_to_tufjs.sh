#!/usr/bin/env bash
# Interop 1: a repository made by `airlock repo` (init, add-target of a sealed bundle and of a plain file,
# publish) is refreshed by tuf-js's Updater, and both targets download byte for byte, with the bundle's
# app_id/version in the signed `custom` field.
source "$(dirname "$0")/lib.sh"
need "$AIRLOCK"

step "airlock repo init / add-target / publish"
make_bundle "$W/app.alb" 1.0.0
echo "release notes" >"$W/notes.txt"
"$AIRLOCK" repo init "$W/repo" --app com.example.interop
"$AIRLOCK" repo add-target "$W/repo" "$W/app.alb"
"$AIRLOCK" repo add-target "$W/repo" "$W/notes.txt" --name docs/notes.txt --custom '{"channels":["beta"]}'
"$AIRLOCK" repo publish "$W/repo"
start_server "$W/repo" repo

step "tuf-js refreshes and downloads"
tufjs "$W/repo/metadata/1.root.json" "$URL_repo" "$W/md" "$W/td" app.alb docs/notes.txt >"$W/custom.jsonl"
same "$W/app.alb" "$W/td/app.alb" "bundle downloaded by tuf-js"
same "$W/notes.txt" "$W/td/docs/notes.txt" "file downloaded by tuf-js"
grep -q '"name":"app.alb".*"version":"1.0.0"' "$W/custom.jsonl" || fail "custom of app.alb: $(cat "$W/custom.jsonl")"
grep -q '"name":"app.alb".*"app_id":"com.example.interop"' "$W/custom.jsonl" || fail "custom app_id"
grep -q '"name":"docs/notes.txt".*"channels":\["beta"\]' "$W/custom.jsonl" || fail "custom of notes"
echo "ok"
