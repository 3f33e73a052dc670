# Shared by the shell tests of the CLIs (cli_test.sh, keys_cli_test.sh, audit_cli_test.sh, ...).
# The CLI tests source it after setting W (the test's temporary folder, which they remove
# themselves); the tests against a real airlockd (server_cli_test.sh, publish_trust_test.sh, the
# agent tests) call server_test_setup instead, which makes W and cleans up. Set RUN_IGNORE_CASE=1
# before sourcing to match run's patterns case-insensitively.
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# run CODE PATTERN CMD...: expects exit CODE and, if PATTERN is not empty, stdout or stderr to match
# the extended regex PATTERN. The command reads no terminal (stdin is /dev/null); its output stays
# in $W/out and $W/err for further checks.
run() {
  local want="$1" pattern="$2"
  shift 2
  "$@" >"$W/out" 2>"$W/err" </dev/null
  local got=$?
  if [ "$got" -ne "$want" ]; then
    bad "exit $got, wanted $want: $*"
    sed 's/^/    /' "$W/out" "$W/err" | head -8
    return
  fi
  if [ -n "$pattern" ] && ! grep -Eq${RUN_IGNORE_CASE:+i} -- "$pattern" "$W/out" "$W/err"; then
    bad "output does not match /$pattern/: $*"
    sed 's/^/    /' "$W/out" "$W/err" | head -8
    return
  fi
  ok
}

# A failure prints exactly one line on stderr, "airlock: error: ..." (besides "airlock: notice: ..."
# lines, e.g. a vault saying it has no access control).
one_error_line() {
  if [ "$(grep -vc '^airlock: notice: ' "$W/err")" -eq 1 ] && grep -q '^airlock: error: ' "$W/err"; then
    ok
  else
    bad "stderr is not one 'airlock: error:' line: $(head -3 "$W/err")"
  fi
}

# tree_state DIR: every entry under DIR (relative path, type, mode) and each file's sha256, sorted;
# compare two calls to show that a command left DIR byte-for-byte as it was.
tree_state() {
  (cd "$1" && find . -printf '%p %y %m\n' | sort && find . -type f -exec sha256sum {} + | sort)
}

# missing_service WHAT: a service or tool a test needs is missing. Under CI=true that is a failure
# (CI installs everything; a silent skip would hide a check that never ran); elsewhere a note.
missing_service() {
  if [ "${CI:-}" = "true" ]; then
    bad "$1 is required under CI=true but missing"
  else
    echo "note: $1 missing; its checks were skipped (they fail under CI=true)"
  fi
}

# require_tools TOOL...: a test that cannot run at all without these tools fails under CI=true and
# is skipped (exit 0) elsewhere, as missing_service.
require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null && continue
    [ "${CI:-}" = "true" ] && { echo "FAIL: $tool is required under CI=true but missing"; exit 1; }
    echo "SKIP: $tool missing"
    exit 0
  done
}

# ---- tests against a real airlockd on 127.0.0.1 ----

# server_test_setup PASSPHRASE BIN_DIR [SOURCE_DIR]: sets BIN, SRC and the binaries A (airlock),
# D (airlockd), G (airlock-agent); makes W, removed on exit after stopping what the test started
# (AGENT_PID, PID, PROXY, then PostgreSQL); isolates the developer's environment in W (vault
# passphrase PASSPHRASE, actor "ci", no AIRLOCK_* setting from outside).
server_test_setup() {
  local passphrase="$1"
  BIN="$2"
  SRC="${3:-}"
  A="$BIN/airlock"
  D="$BIN/airlockd"
  G="$BIN/airlock-agent"
  W=$(mktemp -d)
  PID="" PROXY="" PG_PID="" AGENT_PID="" DATABASE=""
  trap stop_and_clean EXIT
  export XDG_CONFIG_HOME="$W/config" HOME="$W/home" AIRLOCK_VAULT_PASSPHRASE="$passphrase"
  export AIRLOCK_ACTOR=ci
  unset AIRLOCK_VAULT AIRLOCK_SERVER AIRLOCK_TOKEN AIRLOCK_AUDIT_LOG AIRLOCK_AGENT_CONFIG
  mkdir -p "$HOME"
}
# stop_pid PID...: SIGTERM and reap each (empty arguments skipped).
stop_pid() {
  local p
  for p in "$@"; do
    [ -n "$p" ] || continue
    kill "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
}
stop_and_clean() {
  stop_pid "${AGENT_PID:-}" "${PID:-}" "${PROXY:-}"
  stop_postgres
  rm -rf "$W"
}

# init_server: `airlockd init` in $W/data; sets TOKEN, the owner's API token.
init_server() {
  "$D" --data "$W/data" init >"$W/init.out" 2>&1 || { cat "$W/init.out"; echo "FAIL: airlockd init"; exit 1; }
  TOKEN=$(sed -n 's/^Owner API token.*: \(.*\)$/\1/p' "$W/init.out")
  [ -n "$TOKEN" ] || { echo "FAIL: no owner token in: $(cat "$W/init.out")"; exit 1; }
}

# The servers below listen on 127.0.0.1 only, on ports picked free.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# start_server [--behind-proxy]: starts $D (airlockd) with --data $W/data (and --database $DATABASE
# when set, see start_postgres) on a free port, sets PORT, SERVER and PID, and waits (bounded) for
# /healthz; retries with another port if the one picked was taken meanwhile. --behind-proxy first
# starts the proxy (start_proxy) in front of that port and makes it airlockd's public URL, so that
# the blob URLs handed to devices go through it too. Words of $SERVER_FLAGS (if set) are passed on.
start_server() {
  local attempt tries public
  local database=() extra=()
  [ -n "${DATABASE:-}" ] && database=(--database "$DATABASE")
  [ -n "${SERVER_FLAGS:-}" ] && read -ra extra <<<"$SERVER_FLAGS"
  for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    SERVER="http://127.0.0.1:$PORT"
    public="$SERVER"
    if [ "${1:-}" = --behind-proxy ]; then
      start_proxy "$PORT"
      public="$VIA"
    fi
    "$D" --data "$W/data" "${database[@]}" --listen "127.0.0.1:$PORT" --public-url "$public" \
      --threads 2 "${extra[@]}" >"$W/airlockd.log" 2>&1 &
    PID=$!
    for tries in $(seq 1 300); do
      if curl -sf -o /dev/null --max-time 2 "$SERVER/healthz"; then return 0; fi
      if ! kill -0 "$PID" 2>/dev/null; then break; fi
      sleep 0.05
    done
    stop_pid "$PID" "$PROXY"
    PID="" PROXY=""
    grep -qi "in use" "$W/airlockd.log" || break
  done
  echo "FAIL: airlockd did not start:"
  cat "$W/airlockd.log"
  exit 1
}
# start_proxy UPSTREAM_PORT: the man in the middle (tests/mitm/proxy.py) in front of
# 127.0.0.1:UPSTREAM_PORT; what it forges is read from the file $SWAPS ($W/swaps.json, emptied
# here) on every request, what it saw goes to $W/proxy.log. Sets PROXY (its pid) and VIA (its URL).
start_proxy() {
  local tries
  SWAPS="$W/swaps.json"
  : >"$SWAPS"
  rm -f "$W/proxy.port"
  python3 "$SRC/tests/mitm/proxy.py" "$1" "$SWAPS" "$W/proxy.port" "$W/proxy.log" 2>"$W/proxy.err" &
  PROXY=$!
  for tries in $(seq 1 200); do [ -s "$W/proxy.port" ] && break; sleep 0.05; done
  [ -s "$W/proxy.port" ] || { echo "FAIL: proxy did not start: $(cat "$W/proxy.err")"; exit 1; }
  VIA="http://127.0.0.1:$(cat "$W/proxy.port")"
}

# setup_app APP [CHANNEL...]: creates APP (no Capgo key) with its default channel production and the
# other CHANNELs, on $SERVER with $TOKEN; keeps its device enrollment token in $W/enroll-APP and its
# trusted root (`airlock app root`) in $W/root-APP.json.
setup_app() {
  local app="$1" channel
  shift
  run 0 "created app $app" "$A" app create "$app" --server "$SERVER" --token "$TOKEN" --no-capgo
  sed -n 's/^Device enrollment token.*: \(enr_[0-9a-f]*\)$/\1/p' "$W/out" >"$W/enroll-$app"
  run 0 "" "$A" channel create "$app" production --default --server "$SERVER" --token "$TOKEN"
  for channel in "$@"; do
    run 0 "" "$A" channel create "$app" "$channel" --server "$SERVER" --token "$TOKEN"
  done
  run 0 "" "$A" app root "$app" --out "$W/root-$app.json" --server "$SERVER" --token "$TOKEN"
}

# start_postgres: a fresh database on a PostgreSQL of the test's own, on 127.0.0.1 and a free port,
# started by $BIN/pg-test-server (storage/pg_test_server.h, the C++ tests' server too) and stopped
# on exit. Sets DATABASE (its URL, which start_server hands to airlockd) and PG_PID. Without
# PostgreSQL installed the test fails under CI=true and is skipped (exit 0) elsewhere, as
# require_tools does.
start_postgres() {
  local tries rc
  [ -x "$BIN/pg-test-server" ] || { echo "FAIL: $BIN/pg-test-server is not built"; exit 1; }
  "$BIN/pg-test-server" >"$W/pg.url" 2>"$W/pg.err" &
  PG_PID=$!
  # initdb takes seconds on a loaded machine: up to 2 minutes. The URL is one line.
  for tries in $(seq 1 2400); do
    [ -s "$W/pg.url" ] && [ -z "$(tail -c 1 "$W/pg.url")" ] && break
    kill -0 "$PG_PID" 2>/dev/null || break
    sleep 0.05
  done
  if [ -s "$W/pg.url" ] && [ -z "$(tail -c 1 "$W/pg.url")" ]; then
    DATABASE=$(head -n 1 "$W/pg.url")
    return 0
  fi
  kill "$PG_PID" 2>/dev/null
  wait "$PG_PID" 2>/dev/null
  rc=$?
  PG_PID=""
  if [ "$rc" -eq 77 ]; then
    [ "${CI:-}" = "true" ] && { echo "FAIL: PostgreSQL is required under CI=true but missing"; exit 1; }
    echo "SKIP: PostgreSQL missing: $(cat "$W/pg.err")"
    exit 0
  fi
  echo "FAIL: PostgreSQL did not start (pg-test-server exit $rc; 0 or 143: not within 2 minutes): $(cat "$W/pg.err")"
  exit 1
}
# stop_postgres: stops what start_postgres started (pg_ctl stop, its folder removed).
stop_postgres() {
  [ -n "${PG_PID:-}" ] || return 0
  kill "$PG_PID" 2>/dev/null
  wait "$PG_PID" 2>/dev/null || echo "FAIL: pg-test-server: $(cat "$W/pg.err")"
  PG_PID=""
}

# aligned: $W/out is one table as cli/table.h prints it: one upper-case header line, then rows whose
# cells each start where their header's column does (two spaces before each). A trailing count line
# ("3 devices") is allowed.
aligned() {
  if python3 - "$W/out" <<'PY'; then ok; else bad "not one aligned table: $(head -3 "$W/out")"; fi
import re, sys
lines = [l.rstrip("\n") for l in open(sys.argv[1]) if l.strip()]
if lines and re.fullmatch(r"\d+ [a-z]+", lines[-1]):
    lines = lines[:-1]
head, rows = lines[0], lines[1:]
assert head == head.upper() and head[0] != " ", head
starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", head)]
assert len(starts) >= 2, head
for row in rows:
    assert row != row.upper() or any(c.isdigit() for c in row), "a second header? " + row
    for s in starts[1:]:
        assert row[s - 2:s] == "  " and row[s] != " ", (row, s)
PY
}
