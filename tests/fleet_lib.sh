# Shared by bench/fleet.sh and the fleet tests (tests/fleet_smoke_test.sh,
# tests/fleet_scaleout_test.sh); source it after tests/lib.sh and server_test_setup.

# start_fault_proxy PORT_VAR UPSTREAM_PORT... -- FLAGS...: starts $BIN/fault-proxy
# (tools/fleet/fault_proxy.h) on a free port in front of 127.0.0.1:UPSTREAM_PORT... (round-robin),
# with fault-proxy FLAGS; sets FPROXY (its pid) and the variable named PORT_VAR to its port. Its
# output (the fault counts when it stops) goes to $W/fault-proxy.log.
start_fault_proxy() {
  local var="$1" ups=() tries
  shift
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do ups+=(--upstream "$1"); shift; done
  [ "$#" -gt 0 ] && shift
  rm -f "$W/fault-proxy.port"
  "$BIN/fault-proxy" "${ups[@]}" --port-file "$W/fault-proxy.port" "$@" >"$W/fault-proxy.log" 2>&1 &
  FPROXY=$!
  for tries in $(seq 1 200); do [ -s "$W/fault-proxy.port" ] && break; sleep 0.05; done
  [ -s "$W/fault-proxy.port" ] || { echo "FAIL: fault-proxy did not start: $(cat "$W/fault-proxy.log")"; exit 1; }
  printf -v "$var" '%s' "$(cat "$W/fault-proxy.port")"
}

# start_airlockd PORT PUBLIC_URL PID_VAR: airlockd on $W/data (and $DATABASE when set) on
# 127.0.0.1:PORT, handing out PUBLIC_URL (e.g. the proxy's) as its public URL, with the words of
# $SERVER_FLAGS; waits (bounded) for /healthz and sets the variable named PID_VAR to its pid.
start_airlockd() {
  local port="$1" public="$2" pid_var="$3" pid tries database=() extra=()
  [ -n "${DATABASE:-}" ] && database=(--database "$DATABASE")
  [ -n "${SERVER_FLAGS:-}" ] && read -ra extra <<<"$SERVER_FLAGS"
  "$D" --data "$W/data" "${database[@]}" --listen "127.0.0.1:$port" --public-url "$public" \
    --threads 2 "${extra[@]}" >"$W/airlockd-$port.log" 2>&1 &
  pid=$!
  printf -v "$pid_var" '%s' "$pid"
  for tries in $(seq 1 300); do
    curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$port/healthz" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "FAIL: airlockd did not start: $(cat "$W/airlockd-$port.log")"
  exit 1
}

# small_release APP VERSION: a small release folder $W/rel-VERSION (a few files naming the
# version), published on APP's production channel with --encrypt device through $SERVER.
small_release() {
  local dir="$W/rel-$2"
  mkdir -p "$dir/js" "$dir/css"
  echo "<html><script src=js/app.js></script>$1 $2</html>" >"$dir/index.html"
  echo "console.log('$1 $2')" >"$dir/js/app.js"
  head -c 3000 /dev/urandom | base64 >"$dir/css/app.css"
  run 0 "" "$A" release publish "$1" --server "$SERVER" --token "$TOKEN" --version "$2" \
    --from "$dir" --encrypt device --channel production
}
