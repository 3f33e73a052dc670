#!/usr/bin/env bash
# Benchmark (not a test, not in ctest): airlockd beside nginx serving the same bytes on 127.0.0.1.
#
#   bench/server_bench.sh BUILD_DIR
#
# Starts BUILD_DIR/bin/airlockd with a fresh data folder and nginx (bench/nginx.conf.in) on free ports,
# measures with wrk (-t2 -c32 -d10s by default; WRK_ARGS overrides):
#   (1) GET /healthz — small JSON reply; nginx serves a static file with airlockd's exact body bytes;
#   (2) GET /v1/blobs/<sha256> — a 5 MiB random blob; nginx serves a hard link to the same file;
#   (3) POST /updates (Capgo) — only if airlockd answers it with something other than 404/405.
# and prints requests/s, MiB/s and the ratios airlockd/nginx. Installs nothing: scripts/setup.sh installs
# nginx and wrk. Both servers are stopped by PID and the temporary folder removed on exit.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
BUILD_DIR=$(cd "$1" && pwd)
AIRLOCKD="$BUILD_DIR/bin/airlockd"
HERE=$(cd "$(dirname "$0")" && pwd)
WRK_ARGS=${WRK_ARGS:-"-t2 -c32 -d10s"}
BLOB_MIB=5

for tool in wrk nginx curl sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || { echo "server_bench: $tool not found (run scripts/setup.sh)" >&2; exit 1; }
done
NGINX=$(command -v nginx)
[ -x "$AIRLOCKD" ] || { echo "server_bench: $AIRLOCKD not found (build the airlockd target)" >&2; exit 1; }

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

# --- data: a 5 MiB random blob in airlockd's layout -------------------------------------------
DATA="$TMP/data"
mkdir -p "$DATA/blobs" "$TMP/www/v1/blobs" "$TMP/nginx/tmp"
head -c $((BLOB_MIB * 1024 * 1024)) /dev/urandom >"$TMP/blob"
SHA=$(sha256sum "$TMP/blob" | cut -d' ' -f1)
mkdir -p "$DATA/blobs/${SHA:0:2}"
mv "$TMP/blob" "$DATA/blobs/${SHA:0:2}/$SHA"
ln "$DATA/blobs/${SHA:0:2}/$SHA" "$TMP/www/v1/blobs/$SHA"  # same inode, same page cache

# --- airlockd ----------------------------------------------------------------------------------
A_PORT=$(free_port)
"$AIRLOCKD" --data "$DATA" --listen "127.0.0.1:$A_PORT" 2>"$TMP/airlockd.log" >/dev/null &
AIRLOCKD_PID=$!
wait_http "http://127.0.0.1:$A_PORT/healthz"
A="http://127.0.0.1:$A_PORT"

# nginx serves airlockd's exact /healthz body.
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
same() {  # PATH: both servers must answer 200 with identical bodies
  local a n
  a=$(curl -sf "$A$1" | sha256sum | cut -d' ' -f1)
  n=$(curl -sf "$N$1" | sha256sum | cut -d' ' -f1)
  if [ "$a" != "$n" ]; then
    echo "server_bench: $1 differs between airlockd ($a) and nginx ($n)" >&2
    exit 1
  fi
}
same /healthz
same "/v1/blobs/$SHA"
[ "$(curl -sf "$A/v1/blobs/$SHA" | sha256sum | cut -d' ' -f1)" = "$SHA" ] || { echo "server_bench: blob digest mismatch" >&2; exit 1; }

# --- wrk ---------------------------------------------------------------------------------------
# Prints requests/s; fails if wrk saw errors or non-2xx answers.
run_wrk() {  # NAME URL [wrk args...]
  local name=$1 url=$2 out
  shift 2
  # shellcheck disable=SC2086
  out=$(wrk $WRK_ARGS "$@" "$url")
  echo "$out" >"$TMP/wrk-$name.txt"
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
    echo "server_bench: wrk reported errors for $name:" >&2
    echo "$out" >&2
    exit 1
  fi
  awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mib() { awk -v r="$1" -v m="$BLOB_MIB" 'BEGIN { printf "%.0f", r * m }'; }

echo "server_bench: airlockd on $A (pid $AIRLOCKD_PID), nginx on $N (pid $NGINX_PID), wrk $WRK_ARGS" >&2
echo "server_bench: $(nproc) cores; wrk runs on the same cores as the server under test" >&2

# Warm up both (page cache, connections).
wrk -t1 -c4 -d1s "$A/v1/blobs/$SHA" >/dev/null
wrk -t1 -c4 -d1s "$N/v1/blobs/$SHA" >/dev/null

H_A=$(run_wrk healthz-airlockd "$A/healthz")
H_N=$(run_wrk healthz-nginx "$N/healthz")
B_A=$(run_wrk blob-airlockd "$A/v1/blobs/$SHA")
B_N=$(run_wrk blob-nginx "$N/v1/blobs/$SHA")

# Capgo POST /updates: only if airlockd has the route.
UPD_STATUS=$(curl -s -o "$TMP/updates-body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  --data '{"app_id":"com.example.app","device_id":"00000000-0000-4000-8000-000000000000","version_name":"1.0.0","version_build":"1.0.0","platform":"android","is_emulator":false,"is_prod":true,"plugin_version":"6.0.0","custom_id":"","version_code":"1","version_os":"14"}' \
  "$A/updates" || true)

printf '\n%-38s %14s %14s %8s\n' "benchmark" "airlockd" "nginx" "ratio"
printf '%-38s %14s %14s %8s\n' "GET /healthz (small JSON), req/s" "$H_A" "$H_N" "$(ratio "$H_A" "$H_N")"
printf '%-38s %14s %14s %8s\n' "GET /v1/blobs (5 MiB), MiB/s" "$(mib "$B_A")" "$(mib "$B_N")" "$(ratio "$B_A" "$B_N")"
if [ "$UPD_STATUS" = "404" ] || [ "$UPD_STATUS" = "405" ] || [ "$UPD_STATUS" = "000" ]; then
  echo "POST /updates: skipped (airlockd answered $UPD_STATUS: no Capgo route yet)"
else
  # nginx returns the same body bytes airlockd answered; wrk posts the same request.
  cp "$TMP/updates-body" "$TMP/www/updates"
  cat >"$TMP/post.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"app_id":"com.example.app","device_id":"00000000-0000-4000-8000-000000000000","version_name":"1.0.0","version_build":"1.0.0","platform":"android","is_emulator":false,"is_prod":true,"plugin_version":"6.0.0","custom_id":"","version_code":"1","version_os":"14"}'
EOF
  # nginx refuses POST to static files (405); answer it with the stored body instead.
  sed -i "s|location = /healthz {|location = /updates { error_page 405 =200 \$uri; default_type application/json; }\n    location = /healthz {|" \
    "$TMP/nginx/nginx.conf"
  kill -HUP "$NGINX_PID"
  sleep 1
  U_A=$(run_wrk updates-airlockd "$A/updates" -s "$TMP/post.lua")
  U_N=$(run_wrk updates-nginx "$N/updates" -s "$TMP/post.lua")
  printf '%-38s %14s %14s %8s\n' "POST /updates (Capgo), req/s" "$U_A" "$U_N" "$(ratio "$U_A" "$U_N")"
  echo "(airlockd answered POST /updates with HTTP $UPD_STATUS)"
fi
echo
echo "goals (issue 5): checks >= 0.8x, downloads >= 0.9x of nginx"
