#!/usr/bin/env bash
# Four-eyes approval and release statistics against a real airlockd on 127.0.0.1 (issue 14,
# "Releases: approval and statistics"), with the `airlock` CLI and a real airlock-agent: a publish to
# a channel that requires approval waits (the device is not offered it), its requester cannot approve
# it, a second principal does and the device installs it; one token cannot switch the guard off or
# jump a rollout past the threshold, nor can the token that minted it approve for it; `release stats` shows the funnel the agent's reports made.
#   tests/approval_cli_test.sh BIN_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"
server_test_setup "approval cli test" "$1" "$2"
require_tools python3 curl
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $1" "$W/out"; }
APP=io.example.foureyes

init_server
SERVER_FLAGS="--stats-interval 1" start_server
setup_app "$APP"
S=(--server "$SERVER" --token "$TOKEN")
agent_config "$W/agent.toml" "$SERVER" "$APP" "$W/device" "$(confirming "$W/agent.toml")" 30s
run 0 "" "$A" token create bob --role release-manager "${S[@]}"
BOB=$(tail -1 "$W/out")
run 0 "" "$A" token create rita --role read-only "${S[@]}"
RITA=$(tail -1 "$W/out")
run 0 "" "$A" token create ci --role release-manager "${S[@]}"
CI_TOKEN=$(tail -1 "$W/out")
# From here the CI's token publishes (publish uses $TOKEN); bob, minted beside it, approves. The
# owner token minted both, so it may not approve the CI's requests (run below).
OWNER=$TOKEN
TOKEN=$CI_TOKEN
S=(--server "$SERVER" --token "$TOKEN")

publish "$APP" 1.0.0 --channel production
run 0 "^enrolled" "$G" --config "$W/agent.toml" enroll
run 0 "installed and confirmed 1.0.0" "$G" --config "$W/agent.toml" update

# ---- the policy: tightening needs nobody ----
run 0 "approval for publishes and rollouts above 50%" "$A" channel approval "$APP" production \
  --required --rollout-above 50 "${S[@]}"

# ---- a publish waits; its requester cannot approve it ----
publish "$APP" 1.1.0 --channel production
grep -q "waiting for approval 1: publish 1.1.0 on channel production" "$W/out" && ok ||
  bad "publish did not wait for approval: $(cat "$W/out")"
run 0 "up to date on 1.0.0" "$G" --config "$W/agent.toml" update
run 1 "self_approval|a second principal must approve it" "$A" release approve "$APP" 1 "${S[@]}"
run 1 "403|may not" "$A" release approve "$APP" 1 --server "$SERVER" --token "$RITA"
run 1 "self_approval" "$A" release approve "$APP" 1 --server "$SERVER" --token "$OWNER"
run 0 "1 +production +publish 1.1.0 +ci .* pending" "$A" release approvals "$APP" --status pending "${S[@]}"
run 0 "approved 1: publish 1.1.0 on channel production" "$A" release approve "$APP" 1 \
  --server "$SERVER" --token "$BOB"
run 1 "already approved" "$A" release approve "$APP" 1 --server "$SERVER" --token "$BOB"
run 0 "installed and confirmed 1.1.0" "$G" --config "$W/agent.toml" update

# ---- one token cannot loosen the guard or jump the rollout ----
run 0 "rollout 40%" "$A" rollout set "$APP" --channel production --percent 40 "${S[@]}"
run 0 "waiting for approval 2: rollout to 100%" "$A" rollout set "$APP" --channel production \
  --percent 100 "${S[@]}"
run 0 "waiting for approval 3: policy: approval not required" "$A" channel approval "$APP" \
  production --not-required "${S[@]}"
run 0 "" "$A" channel list "$APP" --json "${S[@]}"
[ "$(json 'c=d["channels"][0]; print(c["rollout_percent"], c["approval_required"])')" = "40 True" ] &&
  ok || bad "a pending change took effect: $(cat "$W/out")"
run 0 "rejected 3" "$A" release reject "$APP" 3 "${S[@]}"
run 0 "approved 2: rollout to 100%" "$A" release approve "$APP" 2 --server "$SERVER" --token "$BOB"
run 0 "" "$A" channel list "$APP" --json "${S[@]}"
[ "$(json 'c=d["channels"][0]; print(c["rollout_percent"], c["approval_required"])')" = "100 True" ] &&
  ok || bad "the approved rollout or the rejected policy: $(cat "$W/out")"

# ---- statistics from the agent's own reports ----
run 0 "" "$A" release stats "$APP" 1.1.0 --json "${S[@]}"
[ "$(json 'f=d["funnel"]; print(f["offered"], f["downloaded"], f["installed"], f["confirmed"], f["failed"])')" = \
  "1 1 1 1 0" ] && ok || bad "funnel of 1.1.0: $(cat "$W/out")"
[ "$(json 'a=d["adoption"]; print(a["active_devices"], a["on_release"], a["share"])')" = "1 1 1.0" ] &&
  ok || bad "adoption of 1.1.0: $(cat "$W/out")"
run 0 "success rate 100.0%; on it now 1 of 1 active devices" "$A" release stats "$APP" 1.1.0 "${S[@]}"
run 0 "" "$A" release stats "$APP" 1.0.0 --json "${S[@]}"
[ "$(json 'print(d["funnel"]["confirmed"], d["adoption"]["on_release"])')" = "1 0" ] &&
  ok || bad "1.0.0 still counted as installed: $(cat "$W/out")"
run 1 "404|no release" "$A" release stats "$APP" 9.9.9 "${S[@]}"
# The same figures on /metrics, refreshed every second (--stats-interval 1): wait (bounded) for them.
want="airlock_release_devices{app=\"$APP\",channel=\"production\",version=\"1.1.0\",step=\"confirmed\"} 1"
for _ in $(seq 1 100); do
  curl -sf "$SERVER/metrics" >"$W/metrics" && grep -qF "$want" "$W/metrics" && break
  sleep 0.1
done
grep -qF "$want" "$W/metrics" && ok || bad "/metrics lacks '$want': $(grep airlock_release "$W/metrics")"
grep -qF "airlock_release_adoption_ratio{app=\"$APP\",channel=\"production\",version=\"1.1.0\"} 1" \
  "$W/metrics" && ok || bad "/metrics adoption: $(grep airlock_release "$W/metrics")"

echo "approval cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
