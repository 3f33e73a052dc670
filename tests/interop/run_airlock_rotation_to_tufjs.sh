#!/usr/bin/env bash
# Interop 1b: tuf-js follows what `airlock repo` does over time: a root key rotation and a timestamp key
# rotation (each a new root version signed by the old and new thresholds), a delegation with a target in
# it, and a re-published target. A tuf-js client that trusted 1.root.json keeps its metadata directory
# between runs and must walk the root chain.
source "$(dirname "$0")/lib.sh"
need "$AIRLOCK"

step "version 1"
echo "one" >"$W/v1.txt"
"$AIRLOCK" repo init "$W/repo" --app com.example.interop
"$AIRLOCK" repo add-target "$W/repo" "$W/v1.txt" --name app.txt
"$AIRLOCK" repo publish "$W/repo"
start_server "$W/repo" repo
tufjs "$W/repo/metadata/1.root.json" "$URL_repo" "$W/md" "$W/td" app.txt >/dev/null
same "$W/v1.txt" "$W/td/app.txt" "first download"

step "rotate root and timestamp keys, delegate, re-publish"
"$AIRLOCK" keygen --type ecdsa-p256 --out "$W/root2" >/dev/null
"$AIRLOCK" keygen --type ed25519 --out "$W/ts2" >/dev/null
"$AIRLOCK" keygen --type ecdsa-p256 --out "$W/rel" >/dev/null
"$AIRLOCK" repo rotate "$W/repo" --role root --new-key "$W/root2.key"
"$AIRLOCK" repo rotate "$W/repo" --role timestamp --new-key "$W/ts2.key"
"$AIRLOCK" repo delegate "$W/repo" --role releases --paths 'releases/*' --key "$W/rel.pub" --terminating
echo "two" >"$W/v2.txt"
head -c 5000 /dev/urandom >"$W/rel.bin"
"$AIRLOCK" repo add-target "$W/repo" "$W/v2.txt" --name app.txt
"$AIRLOCK" repo add-target "$W/repo" "$W/rel.bin" --name releases/rel.bin --role releases
"$AIRLOCK" repo publish "$W/repo" --expires-in timestamp=2h
"$AIRLOCK" repo verify "$W/repo"

step "tuf-js (old trusted root) updates"
tufjs "$W/repo/metadata/1.root.json" "$URL_repo" "$W/md" "$W/td2" app.txt releases/rel.bin >/dev/null
same "$W/v2.txt" "$W/td2/app.txt" "re-published target"
same "$W/rel.bin" "$W/td2/releases/rel.bin" "delegated target"
same "$W/repo/metadata/root.json" "$W/md/root.json" "trusted root after rotation"
[ -f "$W/repo/metadata/3.root.json" ] || fail "no third root version after two rotations"
echo "ok"
