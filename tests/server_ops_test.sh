#!/usr/bin/env bash
# airlockd as an operator meets it (issue 12, "The server"), with the real binaries on 127.0.0.1:
# owner-only data folder, one airlockd per SQLite data folder, host names for --listen, a publish
# refused before any upload, blob collection, the Capgo form missing, a rollback to the current
# release, and `channel list` showing a rolled-back channel.
#   tests/server_ops_test.sh BIN_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/lib.sh"
server_test_setup "server ops test" "$1" "$2"
PID2=""  # a second airlockd
trap 'stop_pid "$PID2"; stop_and_clean' EXIT
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $1" "$W/out"; }
blobs() { (cd "$W/data/blobs" && find . -type f | sort); }

require_tools python3 curl sqlite3

# ---- the data folder is owner-only ----
init_server
start_server
for f in airlock.db access.db vault.db; do
  [ "$(stat -c %a "$W/data/$f")" = 600 ] && ok || bad "$f is $(stat -c %a "$W/data/$f"), wanted 600"
done
[ "$(stat -c %a "$W/data")" = 700 ] && ok || bad "DATA is $(stat -c %a "$W/data"), wanted 700"

# ---- a second airlockd on the same data folder refuses to start (SO_REUSEPORT would let it bind) ----
run 1 "^airlockd: the data directory $W/data is in use by another airlockd \(it holds $W/data/airlockd.lock\); the SQLite store is for one process" \
  "$D" --data "$W/data" --listen "127.0.0.1:$PORT" --threads 1
[ "$(wc -l <"$W/err")" = 1 ] && ok || bad "the refusal is not one line: $(cat "$W/err")"
curl -sf -o /dev/null "$SERVER/healthz" && ok || bad "the first airlockd stopped answering"

# ---- an install from before: group/other bits are removed at start, and the log says so ----
kill "$PID"; wait "$PID" 2>/dev/null; PID=""
chmod 0755 "$W/data"
chmod 0644 "$W/data/airlock.db" "$W/data/access.db"
start_server
[ "$(stat -c %a "$W/data")" = 700 ] && ok || bad "DATA was not tightened"
[ "$(stat -c %a "$W/data/airlock.db")$(stat -c %a "$W/data/access.db")" = 600600 ] && ok ||
  bad "the databases were not tightened"
grep -q "tightened $W/data/airlock.db to owner-only (mode 0600)" "$W/airlockd.log" && ok ||
  bad "the log does not say airlock.db was tightened: $(head -c 400 "$W/airlockd.log")"
grep -q "tightened $W/data to owner-only (mode 0700)" "$W/airlockd.log" && ok || bad "DATA tightening not logged"

# ---- --listen with a host name ----
P2=$(free_port)
"$D" --data "$W/data2" --listen "localhost:$P2" --threads 1 >"$W/d2.log" 2>&1 &
PID2=$!
for _ in $(seq 1 200); do
  curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$P2/healthz" && break
  kill -0 "$PID2" 2>/dev/null || break
  sleep 0.05
done
curl -sf -o /dev/null "http://127.0.0.1:$P2/healthz" && ok || bad "--listen localhost:PORT: $(cat "$W/d2.log")"
kill "$PID2"; wait "$PID2" 2>/dev/null; PID2=""
# A name that does not resolve (an empty label: refused without asking any DNS server).
run 1 "^airlockd: cannot resolve the listen host no..such.host: " \
  "$D" --data "$W/data3" --listen "no..such.host:$(free_port)" --threads 1
[ ! -e "$W/data3" ] && ok || bad "a refused start created its data folder"

# ---- a publish is checked before anything is uploaded ----
S=(--server "$SERVER" --token "$TOKEN")
APP=com.example.ops
run 0 "created app $APP" "$A" app create "$APP" "${S[@]}"
run 0 "" "$A" channel create "$APP" production --default "${S[@]}"
run 0 "published $APP 1.0.0" "$A" release publish "$APP" "${S[@]}" --version 1.0.0 \
  --from "$SRC/examples/sample-app" --channel production
# Without --capgo, on an app with a Capgo key: a warning naming what Capgo devices will get.
grep -qx "airlock: warning: app $APP has a Capgo key but this release is published without --capgo: Capgo devices on channel production will get no_bundle for 1.0.0" "$W/err" &&
  ok || bad "no Capgo warning: $(cat "$W/err")"
SHA_100=$(sqlite3 "$W/data/airlock.db" "SELECT sha256 FROM releases WHERE version='1.0.0'")
blobs >"$W/blobs.before"
run 1 "^airlock: error: GET /api/v1/apps/$APP/releases/check\?version=1.0.0&channel=production: HTTP 409 already_exists: release 1.0.0 exists$" \
  "$A" release publish "$APP" "${S[@]}" --version 1.0.0 --from "$SRC/examples/sample-app" --channel production
one_error_line
run 1 "^airlock: error: GET /api/v1/apps/$APP/releases/check\?version=1.0.1&channel=nochannel: HTTP 404 not_found: .*nochannel" \
  "$A" release publish "$APP" "${S[@]}" --version 1.0.1 --from "$SRC/examples/sample-app" --channel nochannel
one_error_line
blobs | cmp -s - "$W/blobs.before" && ok || bad "a refused publish uploaded a blob: $(blobs | diff - "$W/blobs.before")"
# A read-only token may not publish: refused at the check, nothing uploaded.
curl -s -o "$W/tok.json" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"name":"reader","roles":["read-only"]}' "$SERVER/api/v1/tokens"
RO=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("token",""))' "$W/tok.json")
run 1 "^airlock: error: GET /api/v1/apps/$APP/releases/check\?version=1.0.1&channel=production: HTTP 403 forbidden" \
  "$A" release publish "$APP" --server "$SERVER" --token "$RO" --version 1.0.1 \
  --from "$SRC/examples/sample-app" --channel production
blobs | cmp -s - "$W/blobs.before" && ok || bad "a forbidden publish uploaded a blob"
chk() {  # QUERY: the HTTP status of GET .../releases/check?QUERY (body in $W/chk.json)
  curl -s -o "$W/chk.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
    "$SERVER/api/v1/apps/$APP/releases/check?$1"
}
[ "$(chk 'version=1.0.1&channel=production')" = 200 ] && grep -q '"version":"1.0.1"' "$W/chk.json" && ok ||
  bad "check of a new version: $(cat "$W/chk.json")"
# Build metadata ('+', percent-encoded) arrives intact; a bad version is 400.
[ "$(chk 'version=1.0.1%2Bci.7&channel=production')" = 200 ] && grep -q '"version":"1.0.1+ci.7"' "$W/chk.json" &&
  ok || bad "check of 1.0.1+ci.7: $(cat "$W/chk.json")"
[ "$(chk 'version=1.0&channel=production')" = 400 ] && grep -q '"bad_request"' "$W/chk.json" && ok ||
  bad "check of a bad version: $(cat "$W/chk.json")"
[ "$(chk 'channel=production')" = 400 ] && ok || bad "check without a version: $(cat "$W/chk.json")"

# ---- /updates names the release that lacks the Capgo form ----
capgo_updates() {
  curl -s -H 'Content-Type: application/json' -d "{\"platform\":\"android\",\"device_id\":\"7239a82f-4ea8-4e33-9085-f4ad974d3fc4\",\"app_id\":\"$APP\",\"version_build\":\"1.0.0\",\"version_name\":\"builtin\",\"plugin_version\":\"8.51.23\",\"is_emulator\":false,\"is_prod\":true}" \
    "$SERVER/updates"
}
capgo_updates >"$W/out"
json 'assert d["error"]=="no_bundle" and d["message"]=="Cannot get bundle: release 1.0.0 of channel production has no Capgo form (published without --capgo)", d' &&
  ok || bad "/updates for a release without Capgo: $(cat "$W/out")"
run 0 "published $APP 1.0.1" "$A" release publish "$APP" "${S[@]}" --version 1.0.1 \
  --from "$SRC/examples/sample-app" --channel production --capgo --rollback-target
! grep -q "warning" "$W/err" && ok || bad "a --capgo publish warned: $(cat "$W/err")"
capgo_updates >"$W/out"
json 'assert d.get("version")=="1.0.1" and "error" not in d, d' && ok || bad "/updates with Capgo: $(cat "$W/out")"

# ---- rollback to the current release: nothing changes, and it says so ----
run 0 "" "$A" release publish "$APP" "${S[@]}" --version 1.0.2 --from "$SRC/examples/sample-app" \
  --channel production --capgo
run 0 "rolled back production to 1.0.1" "$A" release rollback "$APP" "${S[@]}" --channel production --to 1.0.1
run 0 "^production +1\.0\.1 \(rolled back\) +100%" "$A" channel list "$APP" "${S[@]}"
state() {
  sqlite3 "$W/data/airlock.db" "SELECT current_version, rolled_back FROM channels WHERE name='production'"
  ls "$W/data/tuf/$APP"
}
state >"$W/state.before"
run 0 "^channel production already serves 1.0.1; nothing changed: production: current 1.0.1 \(rolled back\)" \
  "$A" release rollback "$APP" "${S[@]}" --channel production --to 1.0.1
state | cmp -s - "$W/state.before" && ok || bad "a rollback to the current release changed something"
# The server itself: 200, "changed": false, no new targets metadata accepted.
code=$(curl -s -o "$W/out" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"to":"1.0.1"}' "$SERVER/api/v1/apps/$APP/channels/production/rollback")
[ "$code" = 200 ] && json 'assert d["changed"] is False and d["current_version"]=="1.0.1" and d["rolled_back"] is True, d' &&
  ok || bad "server rollback to the current release: $code $(cat "$W/out")"
state | cmp -s - "$W/state.before" && ok || bad "the server's no-op rollback changed something"

# ---- blob collection ----
# An orphan older than the grace period goes; a referenced old one and a fresh orphan stay.
upload() {  # FILE: uploads it as a blob, prints its sha256
  curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$1" "$SERVER/api/v1/blobs" && sha256sum <"$1" | cut -c1-64
}
head -c 5000 /dev/urandom >"$W/old-orphan"
head -c 3000 /dev/urandom >"$W/fresh-orphan"
OLD=$(upload "$W/old-orphan")
FRESH=$(upload "$W/fresh-orphan")
blob_path() { echo "$W/data/blobs/${1:0:2}/$1"; }
[ -f "$(blob_path "$OLD")" ] && [ -f "$(blob_path "$FRESH")" ] && ok || bad "uploads not stored"
touch -d '3 days ago' "$(blob_path "$OLD")" "$(blob_path "$SHA_100")"
run 0 "^would remove 1 unreferenced blob\(s\) older than 86400 s \(5000 bytes\); kept [0-9]+ referenced and 1 recent unreferenced$" \
  "$D" --data "$W/data" gc --dry-run
[ -f "$(blob_path "$OLD")" ] && ok || bad "--dry-run removed a blob"
run 0 "^removed 1 unreferenced blob\(s\) older than 86400 s \(5000 bytes\)" "$D" --data "$W/data" gc
[ ! -e "$(blob_path "$OLD")" ] && ok || bad "the old orphan was kept"
[ -f "$(blob_path "$FRESH")" ] && ok || bad "the fresh orphan was removed"
[ -f "$(blob_path "$SHA_100")" ] && ok || bad "the referenced blob (release 1.0.0) was removed"
curl -sf -o /dev/null "$SERVER/v1/blobs/$SHA_100" && ok || bad "release 1.0.0's blob is no longer served"
# Uploading bytes already held refreshes the blob, so a collection running now keeps it.
touch -d '3 days ago' "$(blob_path "$FRESH")"
[ "$(upload "$W/fresh-orphan")" = "$FRESH" ] && ok || bad "re-upload"
run 0 "^removed 0 unreferenced" "$D" --data "$W/data" gc
[ -f "$(blob_path "$FRESH")" ] && ok || bad "a blob re-uploaded just now was collected"
# --gc-grace sets the age.
touch -d '2 minutes ago' "$(blob_path "$FRESH")"
run 0 "^removed 1 unreferenced blob\(s\) older than 60 s \(3000 bytes\)" "$D" --data "$W/data" --gc-grace 60 gc
[ ! -e "$(blob_path "$FRESH")" ] && ok || bad "--gc-grace 60 kept a 2-minute-old orphan"
run 2 "gc_grace" "$D" --data "$W/data" --gc-grace 5 gc
# Not a new empty store: without the server's database, gc refuses and creates nothing.
mkdir -p "$W/other/blobs"
run 1 "^airlockd gc: $W/other/airlock.db does not exist; pass the server's --database \(or its --config\)$" \
  "$D" --data "$W/other" gc
[ ! -e "$W/other/airlock.db" ] && ok || bad "gc created a database"
# On a schedule: the serving airlockd collects at start, then every --gc-interval.
head -c 700 /dev/urandom >"$W/sched-orphan"
SCHED=$(upload "$W/sched-orphan")
touch -d '2 days ago' "$(blob_path "$SCHED")"
kill "$PID"; wait "$PID" 2>/dev/null; PID=""
PORT=$(free_port)
"$D" --data "$W/data" --listen "127.0.0.1:$PORT" --threads 1 --gc-interval 3600 --gc-grace 3600 \
  >"$W/sched.log" 2>&1 &
PID=$!
for _ in $(seq 1 200); do
  grep -q "blob collection removed 1 unreferenced blob(s) (700 bytes)" "$W/sched.log" && break
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.05
done
grep -q "blob collection removed 1 unreferenced blob(s) (700 bytes)" "$W/sched.log" && ok ||
  bad "the scheduled collection did not run: $(head -c 600 "$W/sched.log")"
[ ! -e "$(blob_path "$SCHED")" ] && ok || bad "the scheduled collection kept an old orphan"
[ -f "$(blob_path "$SHA_100")" ] && ok || bad "the scheduled collection removed a referenced blob"

echo "server.ops: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
