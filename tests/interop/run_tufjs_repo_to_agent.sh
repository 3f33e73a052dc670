#!/usr/bin/env bash
# Interop 2: a repository made with @tufjs/models (ed25519 and ECDSA P-256 keys, root threshold 2, a root
# rotation, a delegated role, pretty-printed metadata) is refreshed by `airlock-agent tuf-client`, which
# downloads a top-level and a delegated target byte for byte and keeps exactly the served metadata.
source "$(dirname "$0")/lib.sh"
need "$AGENT"

step "make the repository with @tufjs/models"
node "$INTEROP_SRC_DIR/make_repo.js" "$W/gen"
start_server "$W/gen/repo" gen

step "airlock-agent tuf-client init / refresh / download"
"$AGENT" tuf-client --metadata-dir "$W/md" init "$W/gen/repo/metadata/1.root.json"
"$AGENT" tuf-client --metadata-url "${URL_gen}metadata/" --metadata-dir "$W/md" refresh
same "$W/gen/repo/metadata/2.root.json" "$W/md/root.json" "trusted root after refresh"
agent_download "$URL_gen" "$W/md" "$W/td" hello.txt releases/app-1.0.bin
same "$W/gen/expected/hello.txt" "$W/td/$(quote hello.txt)" "hello.txt"
same "$W/gen/expected/releases/app-1.0.bin" "$W/td/$(quote releases/app-1.0.bin)" "delegated target"
for f in root timestamp snapshot targets releases; do
  same "$W/gen/repo/metadata/$( [ $f = root ] || [ $f = timestamp ] && echo "$f" || echo "1.$f").json" \
    "$W/md/$f.json" "trusted $f metadata"
done
[ "$(ls "$W/md" | sort | tr '\n' ' ')" = "releases.json root.json snapshot.json targets.json timestamp.json " ] \
  || fail "metadata dir holds: $(ls "$W/md" | tr '\n' ' ')"

step "a missing target fails with exit 1"
set +e
agent_download "$URL_gen" "$W/md" "$W/td" no-such-target >/dev/null 2>&1
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "download of a missing target exited $rc, wanted 1"
echo "ok"
