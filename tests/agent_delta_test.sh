#!/usr/bin/env bash
# Issue 15, "Done when": deltas end to end against a real airlockd on 127.0.0.1 (through
# tests/mitm/proxy.py, so a lying server can be played). A device on 1.0.0 takes 1.0.1 as a patch and
# ends with exactly the files a full install gives; a tampered delta, a delta for another base and a
# device whose installed files were edited all fall back to the whole bundle, are reported
# (`delta_refused` with the reason) and end on the right files.
#   tests/agent_delta_test.sh BIN_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"
server_test_setup "agent delta test" "$1" "$2"
require_tools python3 curl

init_server
start_server --behind-proxy
APP=io.example.delta
setup_app "$APP"

# release VERSION: a web app folder of ~300 KB; each version changes one line of app.js.
release() {
  local dir="$W/src-$1"
  mkdir -p "$dir/assets"
  python3 - "$dir" "$1" <<'PY'
import random, sys
d, version = sys.argv[1], sys.argv[2]
rng = random.Random(7)  # the same vendor code in every version
vendor = "".join(f"function f{i}(a,b){{return a*{rng.randint(1,999)}+b;}}\n" for i in range(6000))
open(f"{d}/assets/vendor.js", "w").write(vendor)
open(f"{d}/assets/app.js", "w").write(vendor[:20000] + f"console.log('app {version}');\n")
open(f"{d}/index.html", "w").write("<html><script src=assets/app.js></script></html>\n")
PY
  run 0 "" "$A" release publish "$APP" --server "$SERVER" --token "$TOKEN" --version "$1" \
    --from "$dir" --encrypt device --channel production
  cp "$W/out" "$W/publish-$1.out"
}
# device NAME: an enrolled device whose app confirms every release.
device() {
  agent_config "$W/$1.toml" "$VIA" "$APP" "$W/$1" "$(confirming "$W/$1.toml")" 30s
  run 0 "enrolled" "$G" --config "$W/$1.toml" enroll
}
update() { "$G" --config "$W/$1.toml" update >"$W/out" 2>"$W/err"; }
# delta_reported NAME REASON: the server holds a delta_refused event with REASON from device NAME.
delta_reported() {
  local id
  id=$(cat "$W/$1/identity/device_id")
  curl -sf -H "Authorization: Bearer $TOKEN" "$SERVER/api/v1/apps/$APP/devices/$id/events" |
    python3 -c "
import json, sys
events = json.load(sys.stdin)['events']
assert any(e['kind'] == 'delta_refused' and e['reason_code'] == '$2' for e in events), events
" && ok || bad "$1: the server has no delta_refused ($2)"
}
# target_field VERSION NAME FIELD: a target of the app's current signed targets metadata.
target_field() {
  python3 - "$SERVER/tuf/$APP" "releases/$1/$2" "$3" <<'PY'
import json, sys, urllib.request
base, name, field = sys.argv[1:4]
get = lambda path: json.load(urllib.request.urlopen(f"{base}/{path}"))
snap = get("timestamp.json")["signed"]["meta"]["snapshot.json"]["version"]
tv = get(f"{snap}.snapshot.json")["signed"]["meta"]["targets.json"]["version"]
t = get(f"{tv}.targets.json")["signed"]["targets"][name]
print({"length": t["length"], "sha256": t["hashes"]["sha256"]}[field])
PY
}

release 1.0.0
for d in good edited tampered otherbase; do device "$d"; done
for d in good edited tampered otherbase; do
  update "$d" && grep -q "installed and confirmed 1.0.0" "$W/out" && ok || bad "$d: 1.0.0 not installed"
done

# ---- publish 1.0.1: a patch from 1.0.0 (kept in this machine's release cache by its publish) ----
release 1.0.1
grep -Eq '^  releases/1\.0\.1/delta-from-1\.0\.0\.ald \([0-9]+ bytes, [0-9.]+ % of the bundle, from 1\.0\.0\)$' \
  "$W/publish-1.0.1.out" && ok || bad "publish does not show the delta: $(cat "$W/publish-1.0.1.out")"
DELTA_LEN=$(target_field 1.0.1 delta-from-1.0.0.ald length)
BUNDLE_LEN=$(target_field 1.0.1 bundle.alb length)
[ "$DELTA_LEN" -lt $((BUNDLE_LEN / 20)) ] && ok || bad "delta $DELTA_LEN not under 5 % of $BUNDLE_LEN"

# ---- 1. a device on 1.0.0 takes the patch: only the delta is downloaded, the files are exact ----
: >"$W/proxy.log"
update good && grep -q "patched 1.0.0 to 1.0.1 with a $DELTA_LEN-byte patch delta" "$W/out" && ok ||
  bad "good: no patch: $(cat "$W/out" "$W/err")"
same_tree "$W/good/current" "$W/src-1.0.1" && ok || bad "good: files differ from 1.0.1"
[ "$(status_field "$W/good.toml" version)" = 1.0.1 ] && ok || bad "good: not on 1.0.1"
BUNDLE_SHA=$(target_field 1.0.1 bundle.alb sha256)
DELTA_SHA=$(target_field 1.0.1 delta-from-1.0.0.ald sha256)
grep -q "GET /v1/blobs/$DELTA_SHA 200" "$W/proxy.log" && ! grep -q "/v1/blobs/$BUNDLE_SHA" "$W/proxy.log" &&
  ok || bad "good: downloads were not the delta alone: $(grep blobs "$W/proxy.log")"
# The same files as a full install of 1.0.1 (the other devices below end there by the bundle).

# ---- 2. installed files edited on the device: the whole bundle, reported ----
echo "tampered" >>"$W/edited/current/assets/vendor.js"
update edited && grep -q "installed and confirmed 1.0.1" "$W/out" && ok ||
  bad "edited: not installed: $(cat "$W/out" "$W/err")"
grep -q "not using the delta from 1.0.0 (installed_modified)" "$W/out" && ok || bad "edited: no fallback line"
same_tree "$W/edited/current" "$W/src-1.0.1" && ok || bad "edited: files differ from 1.0.1"
delta_reported edited installed_modified

# ---- 3. the delta's bytes altered on the server's disk: the whole bundle, reported ----
BLOB="$W/data/blobs/${DELTA_SHA:0:2}/$DELTA_SHA"
cp "$BLOB" "$W/delta.saved"
python3 -c "
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[-40] ^= 1; open(p, 'wb').write(b)" "$BLOB"
update tampered && grep -q "installed and confirmed 1.0.1" "$W/out" && ok ||
  bad "tampered: not installed: $(cat "$W/out" "$W/err")"
grep -q "not using the delta from 1.0.0 (hash_mismatch)" "$W/out" && ok || bad "tampered: no fallback line: $(cat "$W/out")"
same_tree "$W/tampered/current" "$W/src-1.0.1" && ok || bad "tampered: files differ from 1.0.1"
delta_reported tampered hash_mismatch
cp "$W/delta.saved" "$BLOB"

# ---- 4. a delta for another base, offered as if it were from 1.0.0 ----
release 1.0.2
swap() { printf '%s\n' "$1" >"$SWAPS"; }
swap "{\"POST /v1/check\": {\"save\": \"$W/check-1.0.2.json\"}}"
run 0 "" "$G" --config "$W/otherbase.toml" check
: >"$SWAPS"
python3 - "$W/check-1.0.2.json" "$(target_field 1.0.2 delta-from-1.0.1.ald length)" \
  "$(target_field 1.0.2 delta-from-1.0.1.ald sha256)" "$VIA" >"$W/check-forged.json" <<'PY'
import json, sys
answer = json.load(open(sys.argv[1]))
length, sha, via = int(sys.argv[2]), sys.argv[3], sys.argv[4]
answer["deltas"] = [{"base_version": "1.0.0", "method": "patch", "length": length, "sha256": sha,
                     "name": "releases/1.0.2/delta-from-1.0.1.ald", "url": f"{via}/v1/blobs/{sha}"}]
print(json.dumps(answer))
PY
swap "{\"POST /v1/check\": \"$W/check-forged.json\"}"
update otherbase && grep -q "installed and confirmed 1.0.2" "$W/out" && ok ||
  bad "otherbase: not installed: $(cat "$W/out" "$W/err")"
grep -q "not using the delta from 1.0.0 (metadata_invalid)" "$W/out" && ok || bad "otherbase: no fallback line: $(cat "$W/out")"
same_tree "$W/otherbase/current" "$W/src-1.0.2" && ok || bad "otherbase: files differ from 1.0.2"
: >"$SWAPS"
delta_reported otherbase metadata_invalid

# ---- 5. the patched device moves on by its next delta (from 1.0.1) ----
update good && grep -q "patched 1.0.1 to 1.0.2" "$W/out" && ok || bad "good: no patch to 1.0.2: $(cat "$W/out")"
same_tree "$W/good/current" "$W/src-1.0.2" && ok || bad "good: files differ from 1.0.2"

echo "agent.delta: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
