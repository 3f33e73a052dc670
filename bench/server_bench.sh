#!/usr/bin/env bash
# Benchmark (not a test, not in ctest): airlockd beside nginx serving the same bytes on 127.0.0.1.
#
#   bench/server_bench.sh BUILD_DIR
#
# Sets up airlockd the way an operator would: `airlockd init`, start, then over the API with the airlock
# CLI: app create, channel create, release publish (examples/sample-app, --encrypt none, with --capgo),
# and with curl: device enrollment (POST /v1/enroll) and two blob uploads (POST /api/v1/blobs, 5 MiB and
# 64 MiB of random bytes). nginx (bench/nginx.conf.in) serves the same reply bytes: for the POST routes a
# static file holding exactly what airlockd answered, for the blobs hard links to airlockd's blob files.
# Measured with wrk (WRK_ARGS, default -t2 -c32 -d5s), back to back per line:
#   GET /healthz, POST /v1/check (warm cache), POST /updates (Capgo)  -> requests/s
#   GET /v1/blobs/<sha256> for the 5 MiB (-c16) and the 64 MiB (-c4) blob -> MiB/s
# and prints the ratios airlockd/nginx, then the figure lines that bench/run collects:
# `check_vs_nginx ratio=R goal>=0.8 met|missed`, `updates_vs_nginx ...` and `download_vs_nginx ...`
# (the lower of the two blob ratios, goal >= 0.9). Every reply is checked identical (bytes) before measuring.
# AIRLOCKD_ARGS adds flags to airlockd (e.g. "--access-log off"); PERF_DIR=DIR records `perf record -g`
# of airlockd during each of its runs into DIR/<name>.data. Installs nothing (scripts/setup.sh
# installs nginx and wrk). Both servers are stopped by PID and the temporary folder removed on exit.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
BUILD_DIR=$(cd "$1" && pwd)
AIRLOCKD="$BUILD_DIR/bin/airlockd"
AIRLOCK="$BUILD_DIR/bin/airlock"
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
WRK_ARGS=${WRK_ARGS:-"-t2 -c32 -d5s"}
AIRLOCKD_ARGS=${AIRLOCKD_ARGS:-}
APP=com.example.bench
DEVICE=3f2a9c4e-0000-4000-8000-00000000be0c

for tool in wrk nginx curl sha256sum python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "server_bench: $tool not found (run scripts/setup.sh)" >&2; exit 1; }
done
NGINX=$(command -v nginx)
for bin in "$AIRLOCKD" "$AIRLOCK"; do
  [ -x "$bin" ] || { echo "server_bench: $bin not found (build the airlockd and airlock targets)" >&2; exit 1; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/airlock-server-bench.XXXXXX")
AIRLOCKD_PID=""
NGINX_PID=""
cleanup() {
  local pid
  for pid in "$AIRLOCKD_PID" "$NGINX_PID"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() {  # URL: wait until it answers (up to 10 s)
  for _ in $(seq 100); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "server_bench: $1 did not answer" >&2
  return 1
}

# --- airlockd, set up through its own flow ------------------------------------------------------
export XDG_CONFIG_HOME="$TMP/config" HOME="$TMP/home" AIRLOCK_VAULT_PASSPHRASE="server bench"
unset AIRLOCK_VAULT AIRLOCK_SERVER AIRLOCK_TOKEN AIRLOCK_AUDIT_LOG
mkdir -p "$HOME" "$TMP/www/v1/blobs" "$TMP/nginx/tmp"
DATA="$TMP/data"
TOKEN=$("$AIRLOCKD" --data "$DATA" init | sed -n 's/^Owner API token.*: \(.*\)$/\1/p')
[ -n "$TOKEN" ] || { echo "server_bench: airlockd init gave no token" >&2; exit 1; }
A_PORT=$(free_port)
A="http://127.0.0.1:$A_PORT"
# shellcheck disable=SC2086
"$AIRLOCKD" --data "$DATA" --listen "127.0.0.1:$A_PORT" --public-url "$A" $AIRLOCKD_ARGS \
  2>"$TMP/airlockd.log" >/dev/null &
AIRLOCKD_PID=$!
wait_http "$A/healthz"
S=(--server "$A" --token "$TOKEN")
"$AIRLOCK" app create "$APP" "${S[@]}" >"$TMP/app.out"
ENROLL=$(sed -n 's/^Device enrollment token.*: \(enr_[0-9a-f]*\)$/\1/p' "$TMP/app.out")
[ -n "$ENROLL" ] || { echo "server_bench: no enrollment token" >&2; cat "$TMP/app.out" >&2; exit 1; }
"$AIRLOCK" channel create "$APP" production --default "${S[@]}" >/dev/null
"$AIRLOCK" release publish "$APP" "${S[@]}" --version 1.0.0 --from "$SRC/examples/sample-app" \
  --channel production --encrypt none --capgo >/dev/null
DEVICE_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
# Device requests are signed with the device's Ed25519 key (docs/api/server-api.md, "Device
# authentication"); a signature holds for 300 s, longer than the benchmark's signed requests need.
SIGNING_KEY=$("$SRC/tests/device_request.sh" keygen "$TMP/device-sign.pem")
device_headers() {  # PATH BODY: the signature headers of a device request, one per line
  printf '%s' "$2" >"$TMP/device-body"
  "$SRC/tests/device_request.sh" headers "$TMP/device-sign.pem" POST "$1" "$DEVICE" "$TMP/device-body"
}
curl_headers() {  # PATH BODY: the signature headers as curl -H arguments, NUL separated
  while IFS= read -r line; do printf -- '-H\0%s\0' "$line"; done < <(device_headers "$1" "$2")
}
ENROLL_BODY="{\"app_id\":\"$APP\",\"device_id\":\"$DEVICE\",\"public_key\":\"$DEVICE_KEY\",\"signing_key\":\"$SIGNING_KEY\",\"platform\":\"android\",\"enrollment_token\":\"$ENROLL\"}"
mapfile -d '' ENROLL_HEADERS < <(curl_headers /v1/enroll "$ENROLL_BODY")
ENROLLED=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  "${ENROLL_HEADERS[@]}" --data "$ENROLL_BODY" "$A/v1/enroll")
[ "$ENROLLED" = 201 ] || { echo "server_bench: enroll answered $ENROLLED" >&2; exit 1; }

# Blobs: uploaded through the admin API (streamed upload route), then served from DATA/blobs.
upload_blob() {  # MIB -> prints the sha256
  local file="$TMP/blob-$1" sha status
  head -c $(($1 * 1024 * 1024)) /dev/urandom >"$file"
  sha=$(sha256sum "$file" | cut -d' ' -f1)
  status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/octet-stream' -H "X-Airlock-Sha256: $sha" --data-binary "@$file" \
    "$A/api/v1/blobs")
  [ "$status" = 201 ] || { echo "server_bench: blob upload answered $status" >&2; return 1; }
  rm "$file"
  ln "$DATA/blobs/${sha:0:2}/$sha" "$TMP/www/v1/blobs/$sha"  # same inode, same page cache
  echo "$sha"
}
SHA5=$(upload_blob 5)
SHA64=$(upload_blob 64)

CHECK_BODY="{\"app_id\":\"$APP\",\"device_id\":\"$DEVICE\",\"version\":\"0.9.0\",\"native_version\":\"1.0.0\",\"platform\":\"android\"}"
UPDATES_BODY="{\"app_id\":\"$APP\",\"device_id\":\"$DEVICE\",\"version_name\":\"0.9.0\",\"version_build\":\"1.0.0\",\"platform\":\"android\",\"is_emulator\":false,\"is_prod\":true,\"plugin_version\":\"6.0.0\",\"custom_id\":\"\",\"version_code\":\"1\",\"version_os\":\"14\"}"
mapfile -d '' CHECK_HEADERS < <(curl_headers /v1/check "$CHECK_BODY")
post() {  # PATH BODY OUT [curl args]: POST, store the body, print the status
  curl -s -o "$3" -w '%{http_code}' -X POST -H 'Content-Type: application/json' "${@:4}" --data "$2" "$A$1"
}
[ "$(post /v1/check "$CHECK_BODY" "$TMP/www/v1/check" "${CHECK_HEADERS[@]}")" = 200 ] || { echo "server_bench: /v1/check failed: $(cat "$TMP/www/v1/check")" >&2; exit 1; }
grep -q '"update":true' "$TMP/www/v1/check" || { echo "server_bench: /v1/check offers no update: $(cat "$TMP/www/v1/check")" >&2; exit 1; }
[ "$(post /updates "$UPDATES_BODY" "$TMP/www/updates")" = 200 ] || { echo "server_bench: /updates failed: $(cat "$TMP/www/updates")" >&2; exit 1; }
grep -q '"url"' "$TMP/www/updates" || { echo "server_bench: /updates offers no bundle: $(cat "$TMP/www/updates")" >&2; exit 1; }
curl -sf -o "$TMP/www/healthz" "$A/healthz"

# --- nginx -------------------------------------------------------------------------------------
N_PORT=$(free_port)
if [ "$(id -u)" -eq 0 ]; then USER_LINE="user root;"; else USER_LINE="# running as $(id -un)"; fi
sed -e "s|@USER_LINE@|$USER_LINE|" -e "s|@PORT@|$N_PORT|" -e "s|@ROOT@|$TMP/www|" \
  "$HERE/nginx.conf.in" >"$TMP/nginx/nginx.conf"
"$NGINX" -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx/" -e "$TMP/nginx/error.log" &
NGINX_PID=$!
N="http://127.0.0.1:$N_PORT"
wait_http "$N/healthz"

# --- same bytes? -------------------------------------------------------------------------------
digest() {  # URL [BODY [curl args]]: sha256 of the 200 answer (GET, or POST with BODY)
  if [ $# -gt 1 ]; then
    curl -sf -X POST -H 'Content-Type: application/json' "${@:3}" --data "$2" "$1" | sha256sum | cut -d' ' -f1
  else
    curl -sf "$1" | sha256sum | cut -d' ' -f1
  fi
}
same() {  # PATH [BODY]
  local a n
  a=$(digest "$A$1" "${@:2}")
  n=$(digest "$N$1" "${@:2}")
  [ "$a" = "$n" ] || { echo "server_bench: $1 differs between airlockd ($a) and nginx ($n)" >&2; exit 1; }
}
same /healthz
same /v1/check "$CHECK_BODY" "${CHECK_HEADERS[@]}"
same /updates "$UPDATES_BODY"
OTHER_DEVICE_UPDATES=${UPDATES_BODY/$DEVICE/00000000-0000-4000-0001-000000000001}
[ "$(digest "$A/updates" "$OTHER_DEVICE_UPDATES")" = "$(digest "$N/updates")" ] ||
  { echo "server_bench: the /updates reply depends on the device id" >&2; exit 1; }
same "/v1/blobs/$SHA5"
same "/v1/blobs/$SHA64"
[ "$(digest "$A/v1/blobs/$SHA64")" = "$SHA64" ] || { echo "server_bench: blob digest mismatch" >&2; exit 1; }

# --- wrk ---------------------------------------------------------------------------------------
# Prints requests/s and MiB/s of body; fails if wrk saw errors or non-2xx answers.
run_wrk() {  # NAME URL [wrk args...]
  local name=$1 url=$2 out perf_pid=""
  shift 2
  if [ -n "${PERF_DIR:-}" ] && [[ $name == *-airlockd ]]; then
    perf record -F 999 -g -p "$AIRLOCKD_PID" -o "$PERF_DIR/$name.data" 2>/dev/null >/dev/null &
    perf_pid=$!
  fi
  # shellcheck disable=SC2086
  out=$(wrk $WRK_ARGS "$@" "$url")
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
  echo "$out" >"$TMP/wrk-$name.txt"
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
    echo "server_bench: wrk reported errors for $name:" >&2
    echo "$out" >&2
    exit 1
  fi
  awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}
post_lua() {  # BODY FILE [PATH]: with PATH, the request carries the device's signature headers
  printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[%s]]\n' "$1" >"$2"
  if [ $# -gt 2 ]; then
    device_headers "$3" "$1" | while IFS= read -r line; do
      printf 'wrk.headers["%s"] = "%s"\n' "${line%%: *}" "${line#*: }"
    done >>"$2"
  fi
}
post_lua "$CHECK_BODY" "$TMP/check.lua" /v1/check
# Capgo /updates rate-limits per device (burst 10, 1/s), so every request is another device, as in real
# traffic (many devices, each checking now and then). The reply does not depend on the device id
# (checked above: same bytes for two ids).
cat >"$TMP/updates.lua" <<LUA
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  n = 0
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local template = [[${UPDATES_BODY/$DEVICE/00000000-0000-4000-%04d-%012d}]]
function request()
  n = n + 1
  return wrk.format(nil, nil, nil, string.format(template, tid, n))
end
LUA

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mib() { awk -v r="$1" -v m="$2" 'BEGIN { printf "%.0f", r * m }'; }

echo "server_bench: airlockd on $A (pid $AIRLOCKD_PID, args: ${AIRLOCKD_ARGS:-none}), nginx on $N (pid $NGINX_PID), wrk $WRK_ARGS" >&2
echo "server_bench: $(nproc) cores; wrk runs on the same cores as the server under test" >&2

# Warm up both (page cache, connections, the channel cache).
for url in "$A/v1/blobs/$SHA64" "$N/v1/blobs/$SHA64"; do wrk -t1 -c4 -d1s "$url" >/dev/null; done
wrk -t1 -c4 -d1s -s "$TMP/check.lua" "$A/v1/check" >/dev/null

H_A=$(run_wrk healthz-airlockd "$A/healthz")
H_N=$(run_wrk healthz-nginx "$N/healthz")
C_A=$(run_wrk check-airlockd "$A/v1/check" -s "$TMP/check.lua")
C_N=$(run_wrk check-nginx "$N/v1/check" -s "$TMP/check.lua")
U_A=$(run_wrk updates-airlockd "$A/updates" -s "$TMP/updates.lua")
U_N=$(run_wrk updates-nginx "$N/updates" -s "$TMP/updates.lua")
# Large bodies: fewer connections and a longer per-request timeout than wrk's 2 s.
B5_A=$(run_wrk blob5-airlockd "$A/v1/blobs/$SHA5" -c16 --timeout 20s)
B5_N=$(run_wrk blob5-nginx "$N/v1/blobs/$SHA5" -c16 --timeout 20s)
B64_A=$(run_wrk blob64-airlockd "$A/v1/blobs/$SHA64" -c4 --timeout 30s)
B64_N=$(run_wrk blob64-nginx "$N/v1/blobs/$SHA64" -c4 --timeout 30s)

printf '\n%-40s %12s %12s %7s\n' "benchmark" "airlockd" "nginx" "ratio"
printf '%-40s %12s %12s %7s\n' "GET /healthz (small JSON), req/s" "$H_A" "$H_N" "$(ratio "$H_A" "$H_N")"
printf '%-40s %12s %12s %7s\n' "POST /v1/check (warm), req/s" "$C_A" "$C_N" "$(ratio "$C_A" "$C_N")"
printf '%-40s %12s %12s %7s\n' "POST /updates (Capgo), req/s" "$U_A" "$U_N" "$(ratio "$U_A" "$U_N")"
printf '%-40s %12s %12s %7s\n' "GET /v1/blobs (5 MiB), MiB/s" "$(mib "$B5_A" 5)" "$(mib "$B5_N" 5)" "$(ratio "$B5_A" "$B5_N")"
printf '%-40s %12s %12s %7s\n' "GET /v1/blobs (64 MiB), MiB/s" "$(mib "$B64_A" 64)" "$(mib "$B64_N" 64)" "$(ratio "$B64_A" "$B64_N")"
echo
echo "reply sizes: check $(wc -c <"$TMP/www/v1/check") B, updates $(wc -c <"$TMP/www/updates") B; access log: $(wc -l <"$TMP/airlockd.log") lines"
echo "goals (issue 5): checks >= 0.8x, downloads >= 0.9x of nginx"
# The figures, one line each (bench/run collects them); the download figure is the lower of the two
# blob sizes.
verdict() {  # NAME A B GOAL: NAME ratio=A/B goal>=GOAL met|missed
  awk -v n="$1" -v a="$2" -v b="$3" -v g="$4" 'BEGIN { r = (b > 0) ? a / b : 0;
    printf "%s ratio=%.2f goal>=%s %s\n", n, r, g, (r >= g) ? "met" : "missed" }'
}
verdict check_vs_nginx "$C_A" "$C_N" 0.8
verdict updates_vs_nginx "$U_A" "$U_N" 0.8
if awk -v a="$B5_A" -v b="$B5_N" -v c="$B64_A" -v d="$B64_N" 'BEGIN { exit !(a / b <= c / d) }'; then
  verdict download_vs_nginx "$B5_A" "$B5_N" 0.9
else
  verdict download_vs_nginx "$B64_A" "$B64_N" 0.9
fi
