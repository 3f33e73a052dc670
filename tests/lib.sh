# Shared by the shell tests of the CLIs (cli_test.sh, keys_cli_test.sh, audit_cli_test.sh,
# server_cli_test.sh). Source it after setting W (the test's temporary folder, which it removes
# itself). Set RUN_IGNORE_CASE=1 before sourcing to match run's patterns case-insensitively.
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

# The servers below listen on 127.0.0.1 only, on ports picked free.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# start_server: starts $D (airlockd) with --data $W/data on a free port, sets PORT, SERVER and PID,
# and waits (bounded) for /healthz; retries with another port if the one picked was taken meanwhile.
start_server() {
  local attempt tries
  for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    SERVER="http://127.0.0.1:$PORT"
    "$D" --data "$W/data" --listen "127.0.0.1:$PORT" --public-url "$SERVER" --threads 2 \
      >"$W/airlockd.log" 2>&1 &
    PID=$!
    for tries in $(seq 1 300); do
      if curl -sf -o /dev/null --max-time 2 "$SERVER/healthz"; then return 0; fi
      if ! kill -0 "$PID" 2>/dev/null; then break; fi
      sleep 0.05
    done
    kill "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
    PID=""
    grep -qi "in use" "$W/airlockd.log" || break
  done
  echo "FAIL: airlockd did not start:"
  cat "$W/airlockd.log"
  exit 1
}
