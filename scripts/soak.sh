#!/usr/bin/env bash
# Soak (a script, not a test, not in CI): airlockd under mixed device traffic at 80 % of the capacity
# measured at the start, for SOAK_MINUTES (default 10), with 0 errors and flat memory.
#
#   scripts/soak.sh [BUILD_DIR]      (default build; needs the airlockd and airlock targets, wrk)
#
# Set-up as bench/server_bench.sh: `airlockd init` on a free 127.0.0.1 port (access log off, so the
# log does not fill the disk), app, default channel, a release published with --capgo, one enrolled
# device, and a 1 MiB blob. The traffic is one wrk Lua script cycling through, out of every 10
# requests, 5 signed POST /v1/check, 4 POST /updates (each from another Capgo device id, as real
# traffic) and 1 GET /v1/blobs/<sha256> of the 1 MiB blob.
#   1. capacity: SOAK_CONNECTIONS (default 32) connections as fast as they go for 10 s -> C req/s;
#   2. soak: the same mix at 0.8 x C for SOAK_MINUTES, in wrk segments of SOAK_SEGMENT_SECONDS (default 60) (device signatures hold
#      300 s, so each segment is signed afresh); wrk's delay() paces each connection, re-tuned after
#      every segment from the rate the previous one reached. Any socket error, timeout or non-2xx
#      answer fails the soak.
#   3. memory: airlockd's RSS (VmRSS) sampled every 10 s and printed; the verdict compares the
#      highest RSS of the last third with the highest of the second third (after warm-up): growth
#      above SOAK_RSS_SLACK_PCT (default 10) % is "growing".
# Ends with one line: `soak: PASS ...` or `soak: FAIL ...` (exit 1).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
BUILD_DIR=$(cd "${1:-$SRC/build}" && pwd)
AIRLOCKD="$BUILD_DIR/bin/airlockd"
AIRLOCK="$BUILD_DIR/bin/airlock"
MINUTES=${SOAK_MINUTES:-10}
CONNS=${SOAK_CONNECTIONS:-32}
SLACK=${SOAK_RSS_SLACK_PCT:-10}
SEG=${SOAK_SEGMENT_SECONDS:-60}
APP=com.example.soak
DEVICE=5e1d0a4c-0000-4000-8000-00000000500a
for tool in wrk curl sha256sum python3 openssl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "soak: $tool not found (run scripts/setup.sh)" >&2; exit 1; }
done
for bin in "$AIRLOCKD" "$AIRLOCK"; do
  [ -x "$bin" ] || { echo "soak: $bin not found (build the airlockd and airlock targets)" >&2; exit 1; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/airlock-soak.XXXXXX")
AIRLOCKD_PID="" SAMPLER_PID=""
cleanup() {
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null && wait "$SAMPLER_PID" 2>/dev/null
  if [ -n "$AIRLOCKD_PID" ] && kill -0 "$AIRLOCKD_PID" 2>/dev/null; then
    kill -TERM "$AIRLOCKD_PID"
    wait "$AIRLOCKD_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

export XDG_CONFIG_HOME="$TMP/config" HOME="$TMP/home" AIRLOCK_VAULT_PASSPHRASE="soak"
unset AIRLOCK_VAULT AIRLOCK_SERVER AIRLOCK_TOKEN AIRLOCK_AUDIT_LOG
mkdir -p "$HOME"
TOKEN=$("$AIRLOCKD" --data "$TMP/data" init | sed -n 's/^Owner API token.*: \(.*\)$/\1/p')
PORT=$(free_port)
A="http://127.0.0.1:$PORT"
"$AIRLOCKD" --data "$TMP/data" --listen "127.0.0.1:$PORT" --public-url "$A" --access-log off \
  >"$TMP/airlockd.log" 2>&1 &
AIRLOCKD_PID=$!
for _ in $(seq 100); do curl -sf -o /dev/null "$A/healthz" && break; sleep 0.1; done
S=(--server "$A" --token "$TOKEN")
"$AIRLOCK" app create "$APP" "${S[@]}" >"$TMP/app.out"
ENROLL=$(sed -n 's/^Device enrollment token.*: \(enr_[0-9a-f]*\)$/\1/p' "$TMP/app.out")
"$AIRLOCK" channel create "$APP" production --default "${S[@]}" >/dev/null
"$AIRLOCK" release publish "$APP" "${S[@]}" --version 1.0.0 --from "$SRC/examples/sample-app" \
  --channel production --encrypt none --capgo >/dev/null
SIGNING_KEY=$("$SRC/tests/device_request.sh" keygen "$TMP/device-sign.pem")
DEVICE_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
ENROLL_BODY="{\"app_id\":\"$APP\",\"device_id\":\"$DEVICE\",\"public_key\":\"$DEVICE_KEY\",\"signing_key\":\"$SIGNING_KEY\",\"platform\":\"android\",\"enrollment_token\":\"$ENROLL\"}"
sign() {  # PATH BODY: the device's signature headers, one "Name: value" per line
  printf '%s' "$2" >"$TMP/body"
  "$SRC/tests/device_request.sh" headers "$TMP/device-sign.pem" POST "$1" "$DEVICE" "$TMP/body"
}
mapfile -t H < <(sign /v1/enroll "$ENROLL_BODY")
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  -H "${H[0]}" -H "${H[1]}" -H "${H[2]}" --data "$ENROLL_BODY" "$A/v1/enroll")
[ "$code" = 201 ] || { echo "soak: enroll answered $code" >&2; exit 1; }
head -c 1048576 /dev/urandom >"$TMP/blob"
BLOB=$(sha256sum "$TMP/blob" | cut -d' ' -f1)
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/octet-stream' --data-binary "@$TMP/blob" "$A/api/v1/blobs")
[ "$code" = 201 ] || { echo "soak: blob upload answered $code" >&2; exit 1; }

CHECK_BODY="{\"app_id\":\"$APP\",\"device_id\":\"$DEVICE\",\"version\":\"0.9.0\",\"native_version\":\"1.0.0\",\"platform\":\"android\"}"
UPDATES_BODY="{\"app_id\":\"$APP\",\"device_id\":\"00000000-0000-4000-%04d-%012d\",\"version_name\":\"0.9.0\",\"version_build\":\"1.0.0\",\"platform\":\"android\",\"is_emulator\":false,\"is_prod\":true,\"plugin_version\":\"6.0.0\",\"custom_id\":\"\",\"version_code\":\"1\",\"version_os\":\"14\"}"

# mix.lua DELAY_MS [SEGMENT]: the request mix, freshly signed; DELAY_MS paces each connection.
# SEGMENT keeps the Capgo device ids of one segment apart from the others'.
write_lua() {
  local delay=$1 seg=${2:-0} line
  {
    echo "local threads = 0"
    echo "function setup(thread) threads = threads + 1; thread:set('tid', threads + 64 * $seg) end"
    echo "function init(args) n = 0 end"
    echo "local check_headers = {['Content-Type'] = 'application/json'}"
    while IFS= read -r line; do
      echo "check_headers['${line%%: *}'] = '${line#*: }'"
    done < <(sign /v1/check "$CHECK_BODY")
    echo "local check_body = [[$CHECK_BODY]]"
    echo "local updates = [[$UPDATES_BODY]]"
    echo "local json = {['Content-Type'] = 'application/json'}"
    echo "function request()"
    echo "  n = n + 1"
    echo "  local k = n % 10"
    echo "  if k < 5 then return wrk.format('POST', '/v1/check', check_headers, check_body) end"
    echo "  if k < 9 then return wrk.format('POST', '/updates', json, string.format(updates, tid, n)) end"
    echo "  return wrk.format('GET', '/v1/blobs/$BLOB')"
    echo "end"
    [ "$delay" != 0 ] && echo "function delay() return $delay end"
    true
  } >"$TMP/mix.lua"
}
# The answers are what the mix expects before any load: an update offered to the device and to Capgo.
mapfile -t H < <(sign /v1/check "$CHECK_BODY")
curl -sf -X POST -H 'Content-Type: application/json' -H "${H[0]}" -H "${H[1]}" -H "${H[2]}" \
  --data "$CHECK_BODY" "$A/v1/check" | grep -q '"update":true' || { echo "soak: /v1/check offers nothing" >&2; exit 1; }

# run_wrk SECONDS: the mix; prints requests/s; fails on any error.
ERRORS=0
run_wrk() {
  local out
  out=$(wrk -t2 -c"$CONNS" -d"$1"s --timeout 10s -s "$TMP/mix.lua" "$A")
  echo "$out" >>"$TMP/wrk.log"
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
    echo "soak: wrk reported errors:" >&2
    grep -E 'Non-2xx|Socket errors' <<<"$out" >&2
    ERRORS=$((ERRORS + 1))
  fi
  awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

write_lua 0
wrk -t1 -c4 -d2s -s "$TMP/mix.lua" "$A" >/dev/null
CAPACITY=$(run_wrk 10)
TARGET=$(awk -v c="$CAPACITY" 'BEGIN { printf "%.0f", 0.8 * c }')
# Each connection sends one request per (latency + delay); start from latency ~ 0.
DELAY=$(awk -v n="$CONNS" -v t="$TARGET" 'BEGIN { d = 1000 * n / t; printf "%d", (d < 1 ? 1 : d) }')
echo "soak: capacity $CAPACITY req/s (mix of 5 /v1/check, 4 /updates, 1 1-MiB blob per 10); target $TARGET req/s for $MINUTES min, $CONNS connections"

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$AIRLOCKD_PID/status"; }
(
  start=$(date +%s)
  while kill -0 "$AIRLOCKD_PID" 2>/dev/null; do
    echo "$(($(date +%s) - start)) $(rss)" >>"$TMP/rss.log"
    echo "soak: t=$(($(date +%s) - start))s airlockd RSS $(rss) KiB"
    sleep 10
  done
) &
SAMPLER_PID=$!

SEGMENTS=$(((MINUTES * 60 + SEG - 1) / SEG))
RATES=()
for seg in $(seq 1 "$SEGMENTS"); do
  write_lua "$DELAY" "$seg"
  rate=$(run_wrk "$SEG")
  RATES+=("$rate")
  echo "soak: segment $seg/$SEGMENTS (${SEG} s): $rate req/s (target $TARGET, delay ${DELAY} ms per request per connection)"
  # Re-tune: scale the period per request so that the next segment lands on the target.
  DELAY=$(awk -v d="$DELAY" -v r="$rate" -v t="$TARGET" -v n="$CONNS" 'BEGIN {
    period = (r > 0) ? 1000 * n / r : d; lat = period - d; if (lat < 0) lat = 0;
    nd = 1000 * n / t - lat; if (nd < 1) nd = 1; printf "%d", nd }')
done
kill "$SAMPLER_PID" 2>/dev/null
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""
kill -0 "$AIRLOCKD_PID" 2>/dev/null || { echo "soak: FAIL airlockd died: $(tail -3 "$TMP/airlockd.log")"; exit 1; }

read -r FIRST LAST GROWTH VERDICT < <(python3 - "$TMP/rss.log" "$SLACK" <<'PY'
import sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 2]
slack = float(sys.argv[2])
third = max(1, len(rows) // 3)
warm = max(r for _, r in rows[third:2 * third] or rows)
last = max(r for _, r in rows[-third:])
growth = 100.0 * (last - warm) / warm
print(warm, last, f"{growth:.1f}", "flat" if growth <= slack else "growing")
PY
)
MEAN=$(printf '%s\n' "${RATES[@]}" | awk '{ s += $1 } END { printf "%.0f", s / NR }')
echo "soak: mean $MEAN req/s over $MINUTES min (target $TARGET = 80 % of $CAPACITY); wrk segments with errors: $ERRORS"
echo "soak: RSS peak after warm-up $FIRST KiB, in the last third $LAST KiB: ${GROWTH} % -> memory $VERDICT (slack $SLACK %)"
if [ "$ERRORS" -eq 0 ] && [ "$VERDICT" = flat ]; then
  echo "soak: PASS 0 errors, memory flat, $MEAN req/s for $MINUTES min"
else
  echo "soak: FAIL errors in $ERRORS segment(s), memory $VERDICT"
  exit 1
fi
