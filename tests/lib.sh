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
