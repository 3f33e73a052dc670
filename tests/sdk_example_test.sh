#!/usr/bin/env bash
# libairlock-client as an app uses it (issue 11, "Library"): the build is installed into a
# temporary prefix; only the library, its headers, airlock-client.pc and the CMake package land
# there; the library exports only the public API; examples/c-client is compiled against that
# prefix alone (pkg-config's flags, checked to name nothing in the source or build tree), and so
# are a C++ program (client.hpp) and a find_package(AirlockClient) project. Then the example, through
# the C API only, enrolls with a real airlockd on 127.0.0.1, installs a published release and
# confirms it from its restart command, and a release tampered on the server's disk is refused
# with AIRLOCK_E_HASH_MISMATCH and one nobody confirms is rolled back with AIRLOCK_E_ROLLBACK, the
# device staying on its release.
#   tests/sdk_example_test.sh BIN_DIR SOURCE_DIR BUILD_DIR CMAKE
set -u
. "$(dirname "$0")/lib.sh"
server_test_setup "sdk test" "$1" "$2"
BUILD="$3"
CMAKE="$4"
require_tools python3 curl pkg-config cc c++ nm readelf c++filt

unset PKG_CONFIG_PATH CPATH C_INCLUDE_PATH CPLUS_INCLUDE_PATH LIBRARY_PATH LD_LIBRARY_PATH

# ---- install into a temporary prefix: the library and nothing else ----
P="$W/prefix"
run 0 "" "$CMAKE" --install "$BUILD" --prefix "$P" --component airlock_client
LIB=$(cd "$P" && ls -d lib*/libairlock-client.so 2>/dev/null | head -1)
LIBDIR="$P/$(dirname "${LIB:-lib/x}")"
(cd "$P" && find . -type f -o -type l | sed 's|^\./||' | sed "s|^$(dirname "${LIB:-lib/x}")/|LIBDIR/|" |
  sort) >"$W/installed"
cat >"$W/want" <<'LIST'
LIBDIR/cmake/AirlockClient/AirlockClientConfig.cmake
LIBDIR/cmake/AirlockClient/AirlockClientConfigVersion.cmake
LIBDIR/cmake/AirlockClient/AirlockClientTargets-relwithdebinfo.cmake
LIBDIR/cmake/AirlockClient/AirlockClientTargets.cmake
LIBDIR/libairlock-client.so
LIBDIR/libairlock-client.so.0
LIBDIR/libairlock-client.so.0.1.0
LIBDIR/pkgconfig/airlock-client.pc
include/airlock/airlock.h
include/airlock/client.hpp
include/airlock/export.h
LIST
# The per-configuration targets file is named for the build type.
sed -i "s/relwithdebinfo/$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" | tr A-Z a-z)/" "$W/want"
diff "$W/want" "$W/installed" >"$W/diff" && ok || bad "installed files differ: $(cat "$W/diff")"

# The SONAME carries the ABI version; only the public API is exported.
readelf -d "$LIBDIR/libairlock-client.so.0.1.0" | grep -q 'SONAME.*\[libairlock-client\.so\.0\]' &&
  ok || bad "SONAME: $(readelf -d "$LIBDIR/libairlock-client.so.0.1.0" | grep SONAME)"
nm -D --defined-only "$LIBDIR/libairlock-client.so" | awk '{print $3}' | sed 's/@.*//' | c++filt |
  sort -u >"$W/symbols"
grep -q '^airlock_open$' "$W/symbols" && grep -q '^airlock::sdk::Client::Update()$' "$W/symbols" &&
  ok || bad "the public API is not exported: $(head -5 "$W/symbols")"
grep -Ev '^(airlock_[a-z_0-9]+|airlock::sdk::.*|AIRLOCK_CLIENT_0)$' "$W/symbols" >"$W/leaked"
[ ! -s "$W/leaked" ] && ok || bad "$(wc -l <"$W/leaked") internal symbols exported, e.g. $(head -3 "$W/leaked")"
# The public headers include only each other and these standard headers (add one here knowingly).
STD_HEADERS='stddef\.h|stdint\.h|cstdint|functional|memory|optional|string|utility|variant|vector'
grep -h '#include' "$P"/include/airlock/* |
  grep -Ev "^#include (<($STD_HEADERS)>|\"airlock/[a-z_]+\.h(pp)?\")\$" >"$W/includes"
[ ! -s "$W/includes" ] && ok || bad "public headers include: $(cat "$W/includes")"

# ---- build against the prefix only ----
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig"
CFLAGS_PC=$(pkg-config --cflags airlock-client)
LIBS_PC=$(pkg-config --libs airlock-client)
[ "$(pkg-config --modversion airlock-client)" = 0.1.0 ] && ok || bad "pc version"
case "$CFLAGS_PC $LIBS_PC" in
  *"$SRC"* | *"$BUILD"*) bad "pkg-config points into the source or build tree: $CFLAGS_PC $LIBS_PC" ;;
  *"$P"*) ok ;;
  *) bad "pkg-config does not point into the prefix: $CFLAGS_PC $LIBS_PC" ;;
esac
mkdir -p "$W/example"
cp "$SRC/examples/c-client/main.c" "$W/example/main.c"
EX="$W/example/c-client"
# shellcheck disable=SC2086
run 0 "" cc -std=c99 -pedantic -Wall -Wextra -Werror $CFLAGS_PC "$W/example/main.c" -o "$EX" $LIBS_PC \
  -Wl,-rpath,"$LIBDIR"
[ -x "$EX" ] || { echo "FAIL: the example did not build: $(cat "$W/err")"; exit 1; }
readelf -d "$EX" | grep -q 'NEEDED.*\[libairlock-client\.so\.0\]' && ok || bad "example's NEEDED"
# The C++ header alone (no internal header, no Boost/OpenSSL/SQLite/nlohmann/tl) compiles and links.
cat >"$W/example/hello.cc" <<'CC'
#include <airlock/client.hpp>
#include <cstdio>
int main(int argc, char** argv) {
  if (argc != 2) return 64;
  auto client = airlock::sdk::Client::Open(argv[1]);
  if (!client) {
    std::printf("%s\n", client.error().ToString().c_str());
    return static_cast<int>(client.error().code());
  }
  auto status = client->Status();
  std::printf("version %s state %s (library %s)\n", status->version.c_str(), status->state.c_str(),
              airlock::sdk::Version());
  return 0;
}
CC
# shellcheck disable=SC2086
run 0 "" c++ -std=c++20 -Wall -Wextra -Werror $CFLAGS_PC "$W/example/hello.cc" -o "$W/example/hello" \
  $LIBS_PC -Wl,-rpath,"$LIBDIR"
run 2 "^not_found: config file $W/nothing.toml does not exist$" "$W/example/hello" "$W/nothing.toml"
# The example's own CMake build (pkg-config through CMAKE_PREFIX_PATH), and find_package.
run 0 "" "$CMAKE" -S "$SRC/examples/c-client" -B "$W/ex-build" -DCMAKE_PREFIX_PATH="$P"
run 0 "" "$CMAKE" --build "$W/ex-build"
[ -x "$W/ex-build/c-client" ] && ok || bad "examples/c-client/CMakeLists.txt did not build"
mkdir -p "$W/fp"
cp "$W/example/hello.cc" "$W/fp/hello.cc"
cat >"$W/fp/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(fp LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(AirlockClient 0.1 REQUIRED)
add_executable(hello hello.cc)
target_link_libraries(hello PRIVATE AirlockClient::airlock-client)
CMAKE
run 0 "" "$CMAKE" -S "$W/fp" -B "$W/fp/build" -DCMAKE_PREFIX_PATH="$P"
run 0 "" "$CMAKE" --build "$W/fp/build"
[ -x "$W/fp/build/hello" ] && ok || bad "find_package(AirlockClient) did not build"

# ---- against a real airlockd ----
init_server
start_server
S=(--server "$SERVER" --token "$TOKEN")
APP=io.example.sdk
run 0 "" "$A" app create "$APP" "${S[@]}" --no-capgo
ENROLL=$(sed -n 's/^Device enrollment token.*: \(enr_[0-9a-f]*\)$/\1/p' "$W/out")
run 0 "" "$A" channel create "$APP" production --default "${S[@]}"
run 0 "" "$A" app root "$APP" --out "$W/root.json" "${S[@]}"
release() {  # VERSION
  mkdir -p "$W/src-$1"
  echo "<html>$1</html>" >"$W/src-$1/index.html"
  run 0 "" "$A" release publish "$APP" "${S[@]}" --version "$1" --from "$W/src-$1" \
    --channel production --encrypt device --deltas 0  # the whole bundle is what is tampered with
}
# The restart command starts "the app", which confirms its release through the C API.
cat >"$W/agent.toml" <<TOML
server = "$SERVER"
app = "$APP"
channel = "production"
install_dir = "$W/device"
trusted_root = "$W/root.json"
enrollment_token = "$ENROLL"
restart_command = '$EX $W/agent.toml confirm >>$W/confirms 2>&1'
health_timeout = "30s"
TOML
same_tree() { diff -r "$1" "$2" >/dev/null; }

run 0 "^io.example.sdk: version 0.0.0, release built-in, state idle$" "$EX" "$W/agent.toml" status
run 2 "update failed: not_found \(2\): this device has no identity yet" "$EX" "$W/agent.toml" update
run 0 "^enrolled: active$" "$EX" "$W/agent.toml" enroll
run 0 "^outcome: up_to_date$" "$EX" "$W/agent.toml" update
release 1.0.0
run 0 "^outcome: installed$" "$EX" "$W/agent.toml" update
grep -q "installed and confirmed 1.0.0" "$W/out" && grep -q "offered 1.0.0 on channel production" "$W/out" &&
  grep -Eq "downloaded [0-9]+ bytes" "$W/out" && ok || bad "update's lines: $(cat "$W/out")"
grep -Eq "^confirmed 1\.0\.0-[0-9a-f]{16}$" "$W/confirms" && ok || bad "the app did not confirm: $(cat "$W/confirms")"
same_tree "$W/device/current" "$W/src-1.0.0" && ok || bad "current is not 1.0.0's files"
run 0 "^io.example.sdk: version 1.0.0, release 1\.0\.0-[0-9a-f]{16}, state confirmed$" "$EX" "$W/agent.toml" status
R10=$(sed -n 's/.*release \(1\.0\.0-[0-9a-f]*\),.*/\1/p' "$W/out")
run 2 "confirm failed: not_found \(2\): confirmation for release 0\.9\.0-0000000000000000 ignored" \
  "$EX" "$W/agent.toml" confirm 0.9.0-0000000000000000

# ---- a release tampered on the server's disk: refused, hash_mismatch, nothing changes ----
release 1.1.0
# Checked first: the server wraps the content key for this device before the blob is tampered with.
run 0 "^offered 1.1.0 on channel production, [0-9]+ bytes$" "$EX" "$W/agent.toml" check
SHA=$(curl -s -H "Authorization: Bearer $TOKEN" "$SERVER/api/v1/apps/$APP/releases" |
  python3 -c "import json,sys; print([r for r in json.load(sys.stdin)['releases'] if r['version']=='1.1.0'][0]['sha256'])")
python3 - "$W/data/blobs/${SHA:0:2}/$SHA" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0x01
open(p, 'wb').write(bytes(b))
PY
: >"$W/confirms"
run 1 "^code: hash_mismatch \(11\), reason: hash_mismatch$" "$EX" "$W/agent.toml" update
grep -q "^outcome: refused$" "$W/out" && grep -q "refused 1.1.0 (hash_mismatch)" "$W/out" && ok ||
  bad "refusal lines: $(cat "$W/out")"
same_tree "$W/device/current" "$W/src-1.0.0" && ok || bad "current changed after the tampered 1.1.0"
[ ! -s "$W/confirms" ] && ok || bad "the app was restarted for a refused release"
run 0 "^io.example.sdk: version 1.0.0, release $R10, state confirmed$" "$EX" "$W/agent.toml" status

# ---- an app that never confirms 1.2.0: rolled back with AIRLOCK_E_ROLLBACK, health_timeout ----
sed -e "s|^restart_command = .*|restart_command = 'echo started >>$W/restarts'|" \
  -e 's|^health_timeout = .*|health_timeout = "2s"|' "$W/agent.toml" >"$W/silent.toml"
release 1.2.0
run 0 "^offered 1.2.0 on channel production, [0-9]+ bytes$" "$EX" "$W/silent.toml" check
run 1 "^code: rollback \(13\), reason: health_timeout$" "$EX" "$W/silent.toml" update
grep -q "^outcome: rolled_back$" "$W/out" && ok || bad "rollback lines: $(cat "$W/out")"
same_tree "$W/device/current" "$W/src-1.0.0" && ok || bad "current is not 1.0.0 after the rollback"
run 0 "never retried: 1\.2\.0-[0-9a-f]{16} \(health_timeout\)" "$EX" "$W/agent.toml" status
grep -q "^io.example.sdk: version 1.0.0, release $R10, state confirmed$" "$W/out" && ok ||
  bad "status after the rollback: $(cat "$W/out")"

echo "sdk.example: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
