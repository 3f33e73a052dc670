#!/usr/bin/env bash
# The dashboard end to end (issue 14, "Dashboard"): a real airlockd on 127.0.0.1 with an app, a
# channel and releases published by the `airlock` CLI, a real airlock-agent that enrolls and
# updates (so real device reports exist), a device that reports an event whose detail is HTML, an
# admin request whose path is HTML (it lands in the audit log) and an alert whose summary is HTML;
# then Debian's headless Chromium, driven by playwright-core (tests/dashboard/e2e.js): a wrong token
# is refused with the server's message, the right one logs in, the release page shows the funnel
# the server computes and the adoption plot, the channel page pauses the rollout (checked here
# through the admin API), the alert is acknowledged (checked here too), a pending publish is refused
# to the owner whose token minted the requester's (self_approval shown) and approved by a second
# principal (checked here), every hostile string is
# shown as text and nothing of it runs or loads, and the token never reaches a URL or localStorage.
#   tests/dashboard/dashboard_test.sh BIN_DIR SOURCE_DIR NODE_DIR
# NODE_DIR holds playwright-core (the dashboard.npm_ci fixture, npm_setup.sh). Without node or
# chromium the test fails under CI=true and is skipped elsewhere (tests/lib.sh require_tools).
set -u
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../agent_lib.sh"
NODE_DIR="$3"
CHROMIUM="${AIRLOCK_CHROMIUM:-/usr/bin/chromium}"
server_test_setup "dashboard test" "$1" "$2"
require_tools node python3 curl openssl
if [ ! -x "$CHROMIUM" ]; then
  [ "${CI:-}" = "true" ] && { echo "FAIL: $CHROMIUM is required under CI=true but missing"; exit 1; }
  echo "SKIP: $CHROMIUM missing (Debian package chromium; scripts/setup.sh installs it)"
  exit 0
fi
[ -d "$NODE_DIR/node_modules/playwright-core" ] ||
  { echo "FAIL: playwright-core is not installed in $NODE_DIR (the dashboard.npm_ci fixture)"; exit 1; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $1" "$W/out"; }
APP=com.example.dash
XSS='<img src=x onerror="window.__pwned=1">'

init_server
SERVER_FLAGS="--monitor-interval 1" start_server
setup_app "$APP"
S=(--server "$SERVER" --token "$TOKEN")
H=(-H "Authorization: Bearer $TOKEN")

# ---- a real device: enroll, install and confirm 1.0.0, then 1.1.0 ----
agent_config "$W/agent.toml" "$SERVER" "$APP" "$W/device" \
  "echo started >>$W/restarts; $(confirming "$W/agent.toml")" 30s
run 0 "^enrolled with $SERVER: active$" "$G" --config "$W/agent.toml" enroll
publish "$APP" 1.0.0 --channel production
run 0 "installed and confirmed 1.0.0" "$G" --config "$W/agent.toml" update
publish "$APP" 1.1.0 --channel production
run 0 "installed and confirmed 1.1.0" "$G" --config "$W/agent.toml" update
AGENT_DEVICE=$(cat "$W/device/identity/device_id")

# ---- a hostile device: enrolls and reports a failure of 1.1.0 whose detail is HTML ----
openssl genpkey -algorithm x25519 -out "$W/evil-x.pem" 2>/dev/null
EVILPUB=$(openssl pkey -in "$W/evil-x.pem" -pubout -outform DER | tail -c 32 | od -An -tx1 | tr -d ' \n')
EVILSIGN=$("$SRC/tests/device_request.sh" keygen "$W/evil.pem")
EVIL=evil-device-1
device_post() {  # PATH BODY: a request signed by the hostile device; prints the HTTP status
  printf '%s' "$2" >"$W/device-body"
  local headers=() line
  while IFS= read -r line; do headers+=(-H "$line"); done < <(
    "$SRC/tests/device_request.sh" headers "$W/evil.pem" POST "$1" "$EVIL" "$W/device-body")
  curl -s -o "$W/out" -w '%{http_code}' -H 'Content-Type: application/json' "${headers[@]}" \
    --data-binary "@$W/device-body" "$SERVER$1"
}
BODY=$(python3 -c 'import json,sys; print(json.dumps({"app_id": sys.argv[1], "device_id": sys.argv[2],
  "public_key": sys.argv[3], "signing_key": sys.argv[4], "platform": "android",
  "enrollment_token": sys.argv[5]}))' "$APP" "$EVIL" "$EVILPUB" "$EVILSIGN" "$(cat "$W/enroll-$APP")")
[ "$(device_post /v1/enroll "$BODY")" = 201 ] && ok || bad "hostile device enroll: $(cat "$W/out")"
BODY=$(python3 -c 'import json,sys,time; print(json.dumps({"app_id": sys.argv[1],
  "device_id": sys.argv[2], "events": [{"seq": 1, "version": "1.1.0", "kind": "failed",
  "reason_code": "hash_mismatch", "detail": sys.argv[3], "occurred_at": int(time.time())}]}))' \
  "$APP" "$EVIL" "$XSS")
[ "$(device_post /v1/report "$BODY")" = 200 ] && ok || bad "hostile report: $(cat "$W/out")"

# ---- an admin request whose path is HTML: refused (400), recorded in the audit log ----
code=$(curl -s -o "$W/out" -w '%{http_code}' -X POST "${H[@]}" \
  "$SERVER/api/v1/apps/%3Cimg%20src=x%20onerror=%22window.__pwned=1%22%3E/channels/production/pause")
[ "$code" = 400 ] || [ "$code" = 404 ] && ok || bad "hostile admin path: HTTP $code $(cat "$W/out")"
curl -sf "${H[@]}" "$SERVER/api/v1/audit?limit=50" >"$W/out"
python3 - "$W/out" "$XSS" <<'PY' && ok || bad "the audit log does not hold the hostile path"
import json, sys
d = json.load(open(sys.argv[1]))
assert any(sys.argv[2] in r["details"] for r in d["records"]), d
PY

# ---- four-eyes: a CI token publishes 1.2.0 to a channel that needs approval; it waits (before the
# compromise below rotates the timestamp key, which needs a new root before the next publish) ----
run 0 "" "$A" channel create "$APP" beta --require-approval "${S[@]}"
run 0 "" "$A" token create ci --role release-manager "${S[@]}"
CI_TOKEN=$(tail -1 "$W/out")
run 0 "" "$A" token create bob --role release-manager "${S[@]}"
BOB=$(tail -1 "$W/out")
mkdir -p "$W/src-1.2.0" && echo "<html>1.2.0</html>" >"$W/src-1.2.0/index.html"
run 0 "waiting for approval 1: publish 1.2.0 on channel beta" "$A" release publish "$APP" \
  --server "$SERVER" --token "$CI_TOKEN" --version 1.2.0 --from "$W/src-1.2.0" --encrypt device \
  --channel beta

# ---- an alert whose summary is HTML: an operator declares a key compromised with that reason ----
run 0 "declared key $APP.timestamp compromised" "$A" alert declare-compromise "$APP.timestamp" \
  --reason "$XSS" "${S[@]}"
compromise_alert() { json 'print([a["id"] for a in d["alerts"] if a["rule"] == "compromise_declared"][0])'; }
for _ in $(seq 1 100); do  # the monitor ticks every second; wait (bounded) for the alert
  curl -sf "${H[@]}" "$SERVER/api/v1/alerts" >"$W/out" && compromise_alert >/dev/null 2>&1 && break
  sleep 0.1
done
ALERT=$(compromise_alert 2>/dev/null)
[ -n "$ALERT" ] && ok || bad "no alert raised: $(cat "$W/out")"

# ---- what the server says about 1.1.0, for the browser to find on the page ----
code=$(curl -s -o "$W/stats.json" -w '%{http_code}' "${H[@]}" "$SERVER/api/v1/apps/$APP/releases/1.1.0/stats")
[ "$code" = 200 ] && ok || bad "GET .../releases/1.1.0/stats: HTTP $code $(cat "$W/stats.json")"
python3 - "$W/stats.json" <<'PY' && ok || bad "the release stats do not count the two devices: $(cat "$W/stats.json")"
import json, sys
d = json.load(open(sys.argv[1]))
f = d["funnel"]
# The agent took 1.1.0 through every step; the hostile device reported one failure.
assert f["confirmed"] >= 1 and f["installed"] >= 1 and f["failed"] >= 1, f
assert d["failed_by_reason"].get("hash_mismatch", 0) >= 1, d
PY

echo "release 1.1.0 as the server counts it: $(cat "$W/stats.json")"

# ---- the browser ----
DASH_SERVER="$SERVER" DASH_TOKEN="$TOKEN" DASH_APP="$APP" DASH_VERSION=1.1.0 DASH_XSS="$XSS" \
  DASH_STATS="$W/stats.json" DASH_EVIL_DEVICE="$EVIL" DASH_AGENT_DEVICE="$AGENT_DEVICE" \
  DASH_ALERT="$ALERT" DASH_APPROVER="$BOB" DASH_CHROMIUM="$CHROMIUM" NODE_PATH="$NODE_DIR/node_modules" \
  node "$SRC/tests/dashboard/e2e.js" >"$W/e2e.out" 2>&1
rc=$?
cat "$W/e2e.out"
[ "$rc" -eq 0 ] && ok || bad "the browser test failed (exit $rc)"
pass=$((pass + $(grep -c '^ok ' "$W/e2e.out")))

# ---- what the browser did, seen through the admin API ----
run 0 "" "$A" channel list "$APP" --json "${S[@]}"
json "c=[c for c in d['channels'] if c['name']=='production'][0]; assert c['paused'] is True, c" &&
  ok || bad "the channel is not paused after the dashboard paused it: $(cat "$W/out")"
curl -sf "${H[@]}" "$SERVER/api/v1/alerts/$ALERT" >"$W/out"
json "assert d['status'] == 'acknowledged' and d['acked_by'] == 'owner', d" && ok ||
  bad "the alert is not acknowledged by the dashboard's user: $(cat "$W/out")"

# The owner (who minted the requester's token) was refused; bob approved: beta serves 1.2.0.
curl -sf "${H[@]}" "$SERVER/api/v1/apps/$APP/approvals" >"$W/out"
json "a=d['approvals'][0]; assert (a['status'], a['decided_by'], a['version']) == ('approved', 'bob', '1.2.0'), a" &&
  ok || bad "the approval was not decided by bob in the dashboard: $(cat "$W/out")"
curl -sf "${H[@]}" "$SERVER/api/v1/apps/$APP/channels/beta" >"$W/out"
json "assert d['current_version'] == '1.2.0', d" && ok || bad "beta does not serve 1.2.0: $(cat "$W/out")"

echo "dashboard e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
