#!/usr/bin/env bash
# Issue 11, "Tests": each attack on a device, by a server (or a man in the middle) that lies, against
# airlock-agent and a real airlockd on 127.0.0.1. The agent's `server` is tests/mitm/proxy.py in front
# of airlockd (whose public URL is the proxy, so blob downloads pass through it too); the proxy
# replays, forges, cuts or stretches chosen answers. For every attack `airlock-agent update` must exit
# 1 with one error line "refused VERSION (REASON): ...", INSTALL_DIR/current must still hold the
# previous release's exact files, `status --json` must be unchanged, and (when the device can still
# talk to the server) the server must have the `failed` event with that reason.
#   tests/agent_attack_test.sh BIN_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"
server_test_setup "agent attack test" "$1" "$2"
require_tools python3 curl faketime openssl

init_server
# airlockd behind the proxy (its public URL), so that blob downloads pass through the proxy too.
start_server --behind-proxy
APP=io.example.attacks
OTHER=io.example.other
setup_app "$APP" beta
setup_app "$OTHER"

# config FILE INSTALL_DIR: through the proxy; the app's restart command confirms its release.
config() { agent_config "$1" "$VIA" "$APP" "$2" "$(confirming "$1")" 30s; }
config "$W/agent.toml" "$W/device"
config "$W/agent2.toml" "$W/device2"
agent() { "$G" --config "$W/agent.toml" "$@"; }
status_json() { agent status --json; }
swap() { printf '%s\n' "$1" >"$SWAPS"; }
# release_field APP VERSION FIELD: from the server's release list (read directly, not via the proxy).
release_field() {
  curl -sf -H "Authorization: Bearer $TOKEN" "$SERVER/api/v1/apps/$1/releases" |
    python3 -c "import json,sys; print([r for r in json.load(sys.stdin)['releases'] if r['version']=='$2'][0]['$3'])"
}
# offer OUT BASE APP VERSION [KEY=JSON...]: a check answer for APP's release VERSION (target, length,
# sha256, blob URL through the proxy), built on the saved answer BASE (its wrapped key and the rest),
# with KEY=JSON overrides.
offer() {
  local out="$1" base="$2" app="$3" version="$4"
  shift 4
  python3 - "$base" "$version" "$(release_field "$app" "$version" target)" \
    "$(release_field "$app" "$version" length)" "$(release_field "$app" "$version" sha256)" "$VIA" \
    "$@" >"$out" <<'PY'
import json, sys
base, version, target, length, sha, via = sys.argv[1:7]
answer = json.load(open(base))
answer.update({"update": True, "version": version, "rollback": False,
               "target": {"name": target, "length": int(length), "sha256": sha},
               "url": f"{via}/v1/blobs/{sha}"})
for kv in sys.argv[7:]:
    k, v = kv.split("=", 1)
    answer[k] = json.loads(v)
print(json.dumps(answer))
PY
}

# ---- the device's history: 1.0.0 then 1.1.0, installed and confirmed (the check answers saved) ----
publish "$APP" 1.0.0 --channel production
run 0 "^enrolled with $VIA: active$" agent enroll
swap "{\"POST /v1/check\": {\"save\": \"$W/check-1.0.0.json\"}}"
run 0 "installed and confirmed 1.0.0" agent update
: >"$SWAPS"
curl -sf -o "$W/timestamp-old.json" "$SERVER/tuf/$APP/timestamp.json"
SNAP_OLD=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['signed']['meta']['snapshot.json']['version'])" "$W/timestamp-old.json")
curl -sf -o "$W/snapshot-old.json" "$SERVER/tuf/$APP/$SNAP_OLD.snapshot.json"
publish "$APP" 1.1.0 --channel production
run 0 "installed and confirmed 1.1.0" agent update
DEVICE=$(cat "$W/device/identity/device_id")

CURRENT_SRC="$W/src-$APP-1.1.0"
# status_without_failed: `status --json` less its list of failed releases (a release whose bundle
# failed its own checks is added there, never to be retried; see attack 9).
status_without_failed() {
  status_json | python3 -c "import json,sys; s=json.load(sys.stdin); s.pop('failed'); print(json.dumps(s))"
}
failed_list() { status_json | python3 -c "import json,sys; print(json.dumps(json.load(sys.stdin)['failed']))"; }
# attack REASON VERSION [PREFIX...]: `update` (after PREFIX, e.g. faketime) is refused with REASON;
# nothing on the device changed (status, and its failed list unless FAILED_ADDS names the release).
attack() {
  local reason="$1" version="$2" before failed_before
  shift 2
  before=$(status_without_failed)
  failed_before=$(failed_list)
  run 1 "" "$@" "$G" --config "$W/agent.toml" update
  if [ "$(grep -c . "$W/err")" -eq 1 ] &&
    grep -Eq "^airlock-agent: error: [a-z_]+: refused ${version//./\\.} \($reason\): " "$W/err"; then
    ok
  else
    bad "wanted one error line 'refused $version ($reason): ...', got: $(head -3 "$W/err")"
  fi
  diff -r "$W/device/current" "$CURRENT_SRC" >/dev/null && ok ||
    bad "$reason: current no longer holds $(basename "$CURRENT_SRC")'s files"
  [ "$(status_without_failed)" = "$before" ] && ok || bad "$reason: status changed: $(status_json)"
  local want="$failed_before"
  if [ -n "${FAILED_ADDS:-}" ]; then
    want=$(python3 -c "import json,sys; l=json.loads(sys.argv[1]); l.append({'reason': sys.argv[2], 'release': sys.argv[3], 'version': sys.argv[4]}); print(json.dumps(l))" \
      "$failed_before" "$reason" "$FAILED_ADDS" "$version")
  fi
  [ "$(failed_list)" = "$want" ] && ok || bad "$reason: failed list $(failed_list), wanted $want"
}
# reported VERSION REASON: the server's newest event for this device is `failed` with REASON.
reported() {
  curl -sf -H "Authorization: Bearer $TOKEN" "$SERVER/api/v1/apps/$APP/devices/$DEVICE/events" |
    python3 -c "
import json, sys
events = sorted(json.load(sys.stdin)['events'], key=lambda e: e['seq'])
last = events[-1]
assert (last['version'], last['kind'], last['reason_code']) == ('$1', 'failed', '$2'), last
" && ok || bad "the server did not get 'failed $1 ($2)'"
}

publish "$APP" 1.2.0 --channel production
# A second device of the same app takes 1.2.0 (its check answer, with its wrapped key, is saved).
swap "{\"POST /v1/check\": {\"save\": \"$W/check-1.2.0-device2.json\"}}"
run 0 "^enrolled with" "$G" --config "$W/agent2.toml" enroll
run 0 "installed and confirmed 1.2.0" "$G" --config "$W/agent2.toml" update

# ---- 1. metadata replaced by an older signed version ----
# The timestamp of the 1.0.0 days (genuine, unexpired, signed by the online key): older than the one
# this device trusts.
swap "{\"GET /tuf/$APP/timestamp.json\": \"$W/timestamp-old.json\",
       \"POST /v1/check\": {\"save\": \"$W/check-1.2.0.json\"}}"
attack downgrade_refused 1.2.0
reported 1.2.0 downgrade_refused
# The current timestamp, but the snapshot it names swapped for the 1.0.0 days' snapshot: the
# timestamp signs the snapshot's hash, so the old one fails that check before its version is read.
SNAP_NOW=$(curl -sf "$SERVER/tuf/$APP/timestamp.json" |
  python3 -c "import json,sys; print(json.load(sys.stdin)['signed']['meta']['snapshot.json']['version'])")
swap "{\"GET /tuf/$APP/$SNAP_NOW.snapshot.json\": \"$W/snapshot-old.json\"}"
attack hash_mismatch 1.2.0
grep -q "snapshot: sha256 does not match" "$W/err" && ok || bad "snapshot replay: $(cat "$W/err")"
reported 1.2.0 hash_mismatch

# ---- 2. an expired timestamp: the device's clock 2 days on (the timestamp lives 1 day, the snapshot
# 7). The proxy answers the check itself (the server would refuse the skewed signed request), the
# metadata is the server's own. The failed event stays queued: the server refuses reports signed at a
# skewed time.
swap "{\"POST /v1/check\": \"$W/check-1.2.0.json\"}"
attack metadata_expired 1.2.0 faketime -f +2d
# Fresh metadata again: the refusal does not stick (the install itself is tried last, below).

# ---- 3. an older release offered as new: the server's genuine 1.0.0 answer replayed ----
swap "{\"POST /v1/check\": \"$W/check-1.0.0.json\"}"
attack downgrade_refused 1.0.0
reported 1.0.0 downgrade_refused
# ... and claimed to be a channel rollback: 1.0.0 was never signed as a rollback target.
python3 -c "import json,sys; a=json.load(open(sys.argv[1])); a['rollback']=True; print(json.dumps(a))" \
  "$W/check-1.0.0.json" >"$W/check-1.0.0-rollback.json"
swap "{\"POST /v1/check\": \"$W/check-1.0.0-rollback.json\"}"
attack downgrade_refused 1.0.0
reported 1.0.0 downgrade_refused

# ---- 4. a release for another channel: 1.3.0 signed for beta only, offered for production ----
publish "$APP" 1.3.0 --channel beta
offer "$W/check-1.3.0.json" "$W/check-1.2.0.json" "$APP" 1.3.0 '"channel"="production"'
swap "{\"POST /v1/check\": \"$W/check-1.3.0.json\"}"
attack wrong_channel 1.3.0
reported 1.3.0 wrong_channel

# ---- 5. a release for another app (same server): not in this app's signed targets ----
publish "$OTHER" 1.4.0 --channel production
offer "$W/check-other.json" "$W/check-1.2.0.json" "$OTHER" 1.4.0
swap "{\"POST /v1/check\": \"$W/check-other.json\"}"
attack target_unknown 1.4.0
reported 1.4.0 target_unknown
# ... or under this app's target name of the same version: the signed hash differs from the claim.
publish "$OTHER" 1.2.0 --channel production
offer "$W/check-other-1.2.0.json" "$W/check-1.2.0.json" "$OTHER" 1.2.0 \
  "\"target\"={\"name\":\"releases/1.2.0/bundle.alb\",\"length\":$(release_field "$OTHER" 1.2.0 length),\"sha256\":\"$(release_field "$OTHER" 1.2.0 sha256)\"}"
swap "{\"POST /v1/check\": \"$W/check-other-1.2.0.json\"}"
attack hash_mismatch 1.2.0
reported 1.2.0 hash_mismatch

# ---- 6. an endless download, then a truncated one (the genuine offer of 1.2.0) ----
SHA12=$(release_field "$APP" 1.2.0 sha256)
LEN12=$(release_field "$APP" 1.2.0 length)
: >"$W/proxy.log"
swap "{\"GET /v1/blobs/$SHA12\": {\"endless\": true}}"
attack download_failed 1.2.0
reported 1.2.0 download_failed
# The proxy logs the stream once its next write finds the connection closed (bounded wait).
for _ in $(seq 1 200); do
  SENT=$(sed -n "s|^GET /v1/blobs/$SHA12 200 sent=\([0-9]*\)$|\1|p" "$W/proxy.log")
  [ -n "$SENT" ] && break
  grep -q "capped$" "$W/proxy.log" && break
  sleep 0.05
done
[ -n "$SENT" ] && ok || bad "the agent did not hang up on the endless body: $(cat "$W/proxy.log")"
[ -z "$(ls -A "$W/device/downloads" 2>/dev/null)" ] && ok || bad "an oversized download was kept"
# Cut after 100 bytes, every time: the agent keeps what it got and resumes (HTTP Range) at the next
# attempt, so each of the 3 attempts gains 100 bytes and the download stays short.
swap "{\"GET /v1/blobs/$SHA12\": {\"truncate\": 100}}"
attack download_failed 1.2.0
reported 1.2.0 download_failed

# ---- 7. a server that answers another device's wrapped key (1.2.0's, wrapped for device 2) ----
swap "{\"POST /v1/check\": \"$W/check-1.2.0-device2.json\"}"
attack decrypt_failed 1.2.0
reported 1.2.0 decrypt_failed

# ---- none of that sticks: the genuine 1.2.0 installs (fresh metadata, the same release), even
# through a network that cuts the timestamp once and the blob once: a refusal that transport can
# cause is tried again within the same `update` (3 attempts), and each refusal is still reported.
events_json() { curl -sf -H "Authorization: Bearer $TOKEN" "$SERVER/api/v1/apps/$APP/devices/$DEVICE/events"; }
SEQ_BEFORE=$(events_json | python3 -c "import json,sys; print(max(e['seq'] for e in json.load(sys.stdin)['events']))")
: >"$W/proxy.log"
swap "{\"GET /tuf/$APP/timestamp.json\": {\"truncate\": 20, \"times\": 1},
       \"GET /v1/blobs/$SHA12\": {\"truncate\": $((LEN12 / 3)), \"times\": 1}}"
run 0 "installed and confirmed 1.2.0" agent update
grep -q "^refused 1.2.0 (metadata_failed): .*; trying again in 1 s (attempt 2 of 3)$" "$W/out" &&
  grep -q "^refused 1.2.0 (download_failed): .*; trying again in 2 s (attempt 3 of 3)$" "$W/out" &&
  ok || bad "wanted two retried refusals, got: $(cat "$W/out")"
[ "$(grep -c "^GET /v1/blobs/$SHA12 " "$W/proxy.log")" -eq 2 ] && ok ||
  bad "wanted the blob fetched twice: $(cat "$W/proxy.log")"
events_json | python3 -c "
import json, sys
events = sorted(json.load(sys.stdin)['events'], key=lambda e: e['seq'])
new = [(e['kind'], e['reason_code'] or '') for e in events if e['seq'] > $SEQ_BEFORE]
failed = [k for k in new if k[0] == 'failed']
assert failed == [('failed', 'metadata_failed'), ('failed', 'download_failed')], new
assert ('installed', '') in new[new.index(failed[-1]):], new
" && ok || bad "the retried refusals were not reported before the install"
: >"$SWAPS"
diff -r "$W/device/current" "$W/src-$APP-1.2.0" >/dev/null && ok || bad "current is not 1.2.0's files"
CURRENT_SRC="$W/src-$APP-1.2.0"

# ---- 8. a release below the security floor this device has seen ----
# 2.0.0 (floor 0) is signed for beta and production; then 1.5.0 raises the floor to 1 and installs.
publish "$APP" 2.0.0 --channel beta --allow-channel production
publish "$APP" 1.5.0 --channel production --security-fix
run 0 "installed and confirmed 1.5.0" agent update
CURRENT_SRC="$W/src-$APP-1.5.0"
offer "$W/check-2.0.0.json" "$W/check-1.2.0.json" "$APP" 2.0.0 '"channel"="production"'
swap "{\"POST /v1/check\": \"$W/check-2.0.0.json\"}"
attack downgrade_refused 2.0.0
grep -q "security floor 0 is below the highest seen (1)" "$W/err" && ok || bad "floor: $(cat "$W/err")"
reported 2.0.0 downgrade_refused

# ---- 9. a target signed by a key that is not in the trusted root ----
: >"$SWAPS"
run 0 "" "$A" keygen --type ed25519 --out "$W/evil"
publish "$APP" 1.6.0 --channel production --sign-key "$W/evil.key"
FAILED_ADDS="1.6.0-$(release_field "$APP" 1.6.0 sha256 | cut -c1-16)" attack signature_invalid 1.6.0
reported 1.6.0 signature_invalid
run 1 "failed before \(signature_invalid\) and is never retried; staying on 1.5.0" agent update

# ---- 10. targets metadata signed by a key that is not in the trusted root ----
# The server's next targets version, re-signed by an attacker's key and listing a blob of its own.
publish "$APP" 1.7.0 --channel production
TV=$(curl -sf -H "Authorization: Bearer $TOKEN" "$SERVER/api/v1/apps/$APP" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["targets_version"])')
curl -sf -o "$W/targets.json" "$SERVER/tuf/$APP/$TV.targets.json"
openssl genpkey -algorithm ed25519 -out "$W/evil.pem" 2>/dev/null
python3 "$SRC/tests/mitm/forge.py" targets "$W/targets.json" "$W/evil.pem" releases/evil/bundle.alb \
  "$(printf 'evil' | sha256sum | cut -c1-64)" 4 "$W/forged-targets.json"
swap "{\"GET /tuf/$APP/$TV.targets.json\": \"$W/forged-targets.json\"}"
attack signature_invalid 1.7.0
reported 1.7.0 signature_invalid

# ---- the expired-metadata refusal was queued (its report signed at a skewed time was refused) and
# reached the server once the device talked to it again.
curl -sf -H "Authorization: Bearer $TOKEN" "$SERVER/api/v1/apps/$APP/devices/$DEVICE/events" |
  python3 -c "
import json, sys
events = json.load(sys.stdin)['events']
assert any((e['version'], e['kind'], e['reason_code']) == ('1.2.0', 'failed', 'metadata_expired')
           for e in events)
" && ok || bad "the queued metadata_expired report never reached the server"

echo "agent.attacks: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
