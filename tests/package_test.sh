#!/usr/bin/env bash
# The .deb packages (cmake/install.cmake, packaging/): cpack builds them from the build folder, their
# contents, Depends and maintainer scripts are as documented, they unpack into a scratch root (never
# the real system), their systemd units pass `systemd-analyze verify` (and broken copies fail it),
# and the unpacked airlockd, on the packaged default config changed only in its data folder and port,
# initialises, starts and answers /healthz.
#   tests/package_test.sh BUILD_DIR SOURCE_DIR
set -u
BUILD="$1"
. "$(dirname "$0")/lib.sh"
server_test_setup "package test" "$BUILD/bin" "$2"

require_tools cpack dpkg-deb dpkg-shlibdeps systemd-analyze help2man curl python3 readelf

# ---- build the packages (into $W/pkg, nothing is left in the build folder) ----
start=$(date +%s)
if ! cpack -G DEB -B "$W/pkg" --config "$BUILD/CPackConfig.cmake" >"$W/cpack.log" 2>&1; then
  cat "$W/cpack.log"
  echo "FAIL: cpack"
  exit 1
fi
echo "cpack: $(($(date +%s) - start)) s"
V=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$BUILD/CPackConfig.cmake")
ARCH=$(dpkg --print-architecture)
SERVER_DEB="$W/pkg/airlockd_${V}_${ARCH}.deb"
CLI_DEB="$W/pkg/airlock_${V}_${ARCH}.deb"
AGENT_DEB="$W/pkg/airlock-agent_${V}_${ARCH}.deb"
for deb in "$SERVER_DEB" "$CLI_DEB" "$AGENT_DEB"; do
  [ -f "$deb" ] || { echo "FAIL: no $deb; cpack made: $(ls "$W/pkg")"; exit 1; }
done

# ---- contents: exactly these files (directories aside) ----
files() { dpkg-deb -c "$1" | awk '{print $6}' | grep -v '/$' | sort | tr '\n' ' '; }
expect_files() {
  local got
  got=$(files "$1")
  if [ "$got" = "$2" ]; then ok; else bad "$(basename "$1") holds: $got; wanted: $2"; fi
}
expect_files "$SERVER_DEB" "./etc/airlock/airlockd.toml ./usr/bin/airlockd \
./usr/lib/systemd/system/airlockd.service ./usr/share/doc/airlock/examples/airlockd.toml \
./usr/share/man/man8/airlockd.8.gz "
expect_files "$CLI_DEB" "./usr/bin/airlock ./usr/share/man/man1/airlock.1.gz "
expect_files "$AGENT_DEB" "./usr/bin/airlock-agent ./usr/lib/systemd/system/airlock-agent.service \
./usr/share/doc/airlock/examples/agent.toml ./usr/share/man/man8/airlock-agent.8.gz "

# ---- control fields: Depends from dpkg-shlibdeps, adduser for the scripts that use it ----
field() { dpkg-deb -f "$1" "$2"; }
depends_on() {
  local deb="$1" dep
  shift
  for dep in "$@"; do
    if field "$deb" Depends | tr ',' '\n' | grep -Eq "^ *$dep( |$)"; then
      ok
    else
      bad "$(basename "$deb") Depends lacks $dep: $(field "$deb" Depends)"
    fi
  done
}
depends_on "$SERVER_DEB" adduser libc6 libssl3 libsqlite3-0 libpq5 libarchive13
depends_on "$AGENT_DEB" adduser libc6 libssl3 libsqlite3-0 libarchive13
# The agent speaks HTTP(S) through Boost.Beast and OpenSSL (client/http.h), not libcurl: a device
# installs none of libcurl's protocol and auth libraries.
if field "$AGENT_DEB" Depends | tr ',' '\n' | grep -Eq "^ *libcurl"; then
  bad "$(basename "$AGENT_DEB") depends on libcurl: $(field "$AGENT_DEB" Depends)"
else
  ok
fi
depends_on "$CLI_DEB" libc6 libssl3 libcurl4
if field "$CLI_DEB" Depends | grep -q adduser; then bad "the CLI package needs no adduser"; else ok; fi
[ "$(field "$SERVER_DEB" Recommends)" = "airlock" ] && ok || bad "airlockd does not recommend airlock"
[ "$(dpkg-deb -I "$SERVER_DEB" conffiles)" = "/etc/airlock/airlockd.toml" ] && ok ||
  bad "airlockd's conffiles: $(dpkg-deb -I "$SERVER_DEB" conffiles 2>&1)"

# ---- unpack into a scratch root ----
ROOT="$W/root"
for deb in "$SERVER_DEB" "$CLI_DEB" "$AGENT_DEB"; do dpkg-deb -x "$deb" "$ROOT" || bad "unpack $deb"; done
for prog in airlockd airlock airlock-agent; do
  if readelf -S "$ROOT/usr/bin/$prog" | grep -q '\.debug_info'; then bad "$prog is not stripped"; else ok; fi
done
run 0 "^Usage: airlock-agent" "$ROOT/usr/bin/airlock-agent" --help
run 0 "^airlock $V" "$ROOT/usr/bin/airlock" --version
# The man pages are help2man's rendering of --help (the flags are there).
zcat "$ROOT/usr/share/man/man8/airlockd.8.gz" | sed 's/\\-/-/g' | grep -q -- '--vault-passphrase-file' && ok ||
  bad "airlockd.8 lacks the options from --help"
zcat "$ROOT/usr/share/man/man1/airlock.1.gz" | grep -q '^\.SH "SEE ALSO"' && ok ||
  bad "airlock.1 lacks its SEE ALSO"

# ---- maintainer scripts: syntax, then run against stubs that record what they would do ----
for pkg in airlockd airlock-agent; do
  deb="$W/pkg/${pkg}_${V}_${ARCH}.deb"
  mkdir -p "$W/ctl/$pkg"
  dpkg-deb -e "$deb" "$W/ctl/$pkg"
  for s in postinst prerm postrm; do
    [ -x "$W/ctl/$pkg/$s" ] && sh -n "$W/ctl/$pkg/$s" && ok || bad "$pkg $s missing or not sh"
  done
done
mkdir -p "$W/stubs"
for tool in adduser install systemctl; do
  printf '#!/bin/sh\necho "%s $*" >>"%s"\n' "$tool" "$W/calls" >"$W/stubs/$tool"
done
printf '#!/bin/sh\nexit 2\n' >"$W/stubs/getent"  # no such user yet
chmod +x "$W/stubs"/*
postinst_creates() {
  local pkg="$1" user="$2" dir="$3" mode="$4"
  : >"$W/calls"
  run 0 "" env PATH="$W/stubs:$PATH" sh "$W/ctl/$pkg/postinst" configure ""
  grep -qx "adduser --system --group --no-create-home --home $dir --gecos .* $user" "$W/calls" && ok ||
    bad "$pkg postinst does not add the system user $user: $(cat "$W/calls")"
  if [ -d "$dir" ]; then
    ok  # this machine has the folder already; the script leaves it alone
  else
    grep -qx "install -d -m $mode -o $user -g $user $dir" "$W/calls" && ok ||
      bad "$pkg postinst does not make $dir ($mode): $(cat "$W/calls")"
  fi
  if grep -q "systemctl \(enable\|start\)" "$W/calls"; then bad "$pkg postinst starts the service"; else ok; fi
}
postinst_creates airlockd airlock /var/lib/airlock 0700
postinst_creates airlock-agent airlock-agent /var/lib/airlock-agent 0750

# ---- systemd-analyze verify on the unpacked units ----
# verify needs ExecStart's binary and Documentation='s man page to exist: a copy of each unit points
# at the scratch root's binaries, MANPATH at its man pages. A unit passes only with exit 0 and no
# output at all (verify exits 0 on an unknown key, with a warning).
mkdir -p "$W/units"
verify_unit() {  # verify_unit UNIT_FILE -> 0 when clean
  MANPATH="$ROOT/usr/share/man" systemd-analyze verify "$1" >"$W/verify.out" 2>&1 &&
    [ ! -s "$W/verify.out" ]
}
for unit in airlockd airlock-agent; do
  sed "s|/usr/bin/|$ROOT/usr/bin/|g" "$ROOT/usr/lib/systemd/system/$unit.service" \
    >"$W/units/$unit.service"
  if verify_unit "$W/units/$unit.service"; then ok; else bad "$unit.service: $(cat "$W/verify.out")"; fi
  grep -q '^NoNewPrivileges=yes$' "$W/units/$unit.service" && grep -q '^ProtectSystem=strict$' \
    "$W/units/$unit.service" && grep -q "^User=" "$W/units/$unit.service" && ok ||
    bad "$unit.service lacks its own user, NoNewPrivileges or ProtectSystem=strict"
done
grep -q '^StateDirectory=airlock$' "$W/units/airlockd.service" && ok || bad "airlockd: StateDirectory"
# The check is real: broken copies of airlockd.service fail it.
mkdir -p "$W/broken"
broken() {  # broken NAME SED_EXPRESSION
  sed "$2" "$W/units/airlockd.service" >"$W/broken/$1.service"
  if verify_unit "$W/broken/$1.service"; then bad "verify passed a broken unit ($1)"; else ok; fi
}
broken typo 's/^ProtectSystem=strict$/ProtectSystm=strict/'
broken nobinary "s|$ROOT/usr/bin/airlockd|$ROOT/usr/bin/airlockd-missing|"
broken noman 's/^Documentation=man:airlockd(8)$/Documentation=man:airlockd-missing(8)/'
broken badvalue 's/^NoNewPrivileges=yes$/NoNewPrivileges=perhaps/'

# ---- the unpacked airlockd on the packaged default config ----
# The config is the packaged one with exactly two lines changed: the data folder and the port.
CONF="$W/airlockd.toml"
start_packaged_server() {
  local attempt tries
  for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    sed -e "s|^data = \"/var/lib/airlock\"$|data = \"$W/data\"|" \
      -e "s|^listen = \"127.0.0.1:8080\"$|listen = \"127.0.0.1:$PORT\"|" \
      "$ROOT/etc/airlock/airlockd.toml" >"$CONF"
    [ "$(diff "$ROOT/etc/airlock/airlockd.toml" "$CONF" | grep -c '^>')" -eq 2 ] ||
      { echo "FAIL: the default config's data or listen line moved"; exit 1; }
    "$ROOT/usr/bin/airlockd" --config "$CONF" >"$W/airlockd.log" 2>&1 &
    PID=$!
    for tries in $(seq 1 300); do
      if curl -sf -o "$W/healthz" --max-time 2 "http://127.0.0.1:$PORT/healthz"; then return 0; fi
      if ! kill -0 "$PID" 2>/dev/null; then break; fi
      sleep 0.05
    done
    kill "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
    PID=""
    grep -qi "in use" "$W/airlockd.log" || break
  done
  echo "FAIL: the packaged airlockd did not start:"
  cat "$W/airlockd.log"
  exit 1
}
unset AIRLOCK_VAULT_PASSPHRASE
start_packaged_server
ok
echo "first start: $(($(date +%s) - start)) s"
# The documented first steps: init prints the owner token once; the vault is on the default path.
kill "$PID" && wait "$PID"
PID=""
run 0 "Owner API token" "$ROOT/usr/bin/airlockd" --config "$CONF" init
[ -f "$W/data/airlock.db" ] && [ -f "$W/data/vault.db" ] && [ -f "$W/data/vault.pass" ] && ok ||
  bad "the default config's data folder lacks airlock.db, vault.db or vault.pass: $(ls "$W/data")"
start_packaged_server
ok
kill "$PID"
wait "$PID"
rc=$?
PID=""
[ "$rc" -eq 0 ] && ok || bad "airlockd exited $rc on SIGTERM"

echo "package test: $pass passed, $fail failed ($(($(date +%s) - start)) s)"
[ "$fail" -eq 0 ]
