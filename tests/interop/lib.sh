# Shared helpers for the TUF interop tests; sourced by the run_*.sh drivers.
# Environment (set by CTest, see CMakeLists.txt):
#   AIRLOCK_BIN_DIR   build/bin (airlock, airlock-agent)
#   INTEROP_NODE_DIR  the directory where `npm ci` installed tuf-js and @tufjs/models
#   INTEROP_SRC_DIR   tests/interop in the source tree (the node scripts)
#   INTEROP_WORK_DIR  a scratch directory under the build tree
# Exports AIRLOCK_KEY_DIR=$W/keys (where `airlock repo init` puts the keys it generates).
# Every server started here listens on 127.0.0.1 only and is killed when the script exits.
set -euo pipefail

: "${AIRLOCK_BIN_DIR:?}" "${INTEROP_NODE_DIR:?}" "${INTEROP_SRC_DIR:?}" "${INTEROP_WORK_DIR:?}"
export INTEROP_NODE_DIR
AIRLOCK="$AIRLOCK_BIN_DIR/airlock"
AGENT="$AIRLOCK_BIN_DIR/airlock-agent"
mkdir -p "$INTEROP_WORK_DIR"
W=$(mktemp -d "$INTEROP_WORK_DIR/$(basename "$0" .sh).XXXXXX")
# `airlock repo init` without keys writes the keys it generates to the per-user key directory: keep them
# in the scratch directory, never in the real user's ~/.config.
export AIRLOCK_KEY_DIR="$W/keys"
SERVER_PIDS=()

cleanup() {
  local rc=$?
  for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${SERVER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$rc" -eq 0 ]; then rm -rf "$W"; else echo "interop: FAILED (scratch kept in $W)" >&2; fi
  exit "$rc"
}
trap cleanup EXIT

step() { echo "--- $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# need BINARY...: fail early, and clearly, when a binary has not been built.
need() {
  for b in "$@"; do [ -x "$b" ] || fail "$b is not built"; done
}

# start_server DIR NAME: serves DIR on 127.0.0.1; sets URL_<NAME> to http://127.0.0.1:PORT/ and logs
# requests to $W/NAME.log.
start_server() {
  local dir="$1" name="$2" port=""
  node "$INTEROP_SRC_DIR/serve.js" "$dir" --log "$W/$name.log" >"$W/$name.port" 2>"$W/$name.err" &
  SERVER_PIDS+=($!)
  for _ in $(seq 1 100); do
    port=$(head -n 1 "$W/$name.port" 2>/dev/null || true)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || fail "server for $dir did not start: $(cat "$W/$name.err")"
  printf -v "URL_$name" 'http://127.0.0.1:%s/' "$port"
}

# tufjs ROOT_JSON BASE_URL MD TD NAME...: refresh with tuf-js's Updater and download the targets.
tufjs() {
  local root="$1" base="$2" md="$3" td="$4"
  shift 4
  local args=()
  for t in "$@"; do args+=(--target "$t"); done
  node "$INTEROP_SRC_DIR/tufjs_update.js" --root "$root" --metadata-url "${base}metadata/" \
    --target-url "${base}targets/" --metadata-dir "$md" --target-dir "$td" "${args[@]}"
}

# agent_download BASE_URL MD TD NAME...: airlock-agent's conformance front end, refresh then download.
agent_download() {
  local base="$1" md="$2" td="$3"
  shift 3
  local args=()
  for t in "$@"; do args+=(--target-name "$t"); done
  mkdir -p "$td"
  "$AGENT" tuf-client --metadata-url "${base}metadata/" --metadata-dir "$md" "${args[@]}" \
    --target-dir "$td" --target-base-url "${base}targets/" download
}

# quote NAME: the target's file name in a tuf-client target dir (URL-quoted, no safe characters).
quote() { node -e 'process.stdout.write(encodeURIComponent(process.argv[1]).replace(/[!\x27()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase()))' "$1"; }

# same EXPECTED ACTUAL WHAT
same() { cmp -s "$1" "$2" || fail "$3: $2 differs from $1"; }

# make_bundle OUT VERSION: seals a small app folder as a bundle of app com.example.interop.
make_bundle() {
  local out="$1" version="$2"
  [ -f "$W/sign.key" ] || "$AIRLOCK" keygen --type ed25519 --out "$W/sign" >/dev/null
  [ -f "$W/device.key" ] || "$AIRLOCK" keygen --type x25519 --out "$W/device" >/dev/null
  rm -rf "$W/app-src" && mkdir -p "$W/app-src/assets"
  echo "<html>version $version</html>" >"$W/app-src/index.html"
  head -c 20000 /dev/urandom >"$W/app-src/assets/blob.bin"
  "$AIRLOCK" bundle seal "$W/app-src" --app com.example.interop --version "$version" \
    --sign-key "$W/sign.key" --recipient "$W/device.pub" --out "$out" >/dev/null
}

# no_private_keys_in DIR: nothing a web server pointed at DIR could serve is a private key.
no_private_keys_in() {
  local found
  found=$(grep -rl -e 'PRIVATE KEY' "$1" || true)
  [ -z "$found" ] || fail "private key material inside $1: $found"
  found=$(find "$1" -name '*.key')
  [ -z "$found" ] || fail "key files inside $1: $found"
}
