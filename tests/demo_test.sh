#!/usr/bin/env bash
# scripts/demo.sh (the README's first command) with the built binaries: exits 0, tells the story
# (1.0.0 and 1.1.0 installed and confirmed, the tampered 1.2.0 refused, the unconfirmed 1.3.0 rolled
# back to 1.1.0 and never retried), and cleans up (its server stopped, its folder removed).
#   tests/demo_test.sh BIN_DIR SOURCE_DIR
set -u
BIN="$1"
SRC="$2"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
. "$(dirname "$0")/lib.sh"
require_tools python3 curl

run 0 "" bash "$SRC/scripts/demo.sh" --bin "$BIN"
for line in \
  '^   \| installed and confirmed 1\.0\.0 \(release 1\.0\.0-[0-9a-f]{16}\)$' \
  '^   \| installed and confirmed 1\.1\.0 \(release 1\.1\.0-[0-9a-f]{16}\)$' \
  '^   \| airlock-agent: error: [a-z_]+: refused 1\.2\.0 \(hash_mismatch\): ' \
  '^   \|    \[app\] version 1\.3\.0 crashed at start' \
  '^   \| airlock-agent: error: [a-z_]+: rolled back 1\.3\.0 \(health_timeout\); running 1\.1\.0$' \
  'failed before \(health_timeout\) and is never retried; staying on 1\.1\.0$' \
  '^   \| 1\.2\.0 failed \(hash_mismatch\)$' \
  '^   \| 1\.3\.0 rolled_back \(health_timeout\)$' \
  '^== Done: the device is on 1\.1\.0, confirmed'; do
  grep -Eq -- "$line" "$W/out" && ok || bad "the demo did not print /$line/"
done
# Cleaning up: its folder is gone and its server no longer answers.
DIR=$(sed -n 's#^   | install_dir = "\(.*\)/device"$#\1#p' "$W/out")
URL=$(sed -n 's#^   | server = "\(.*\)"$#\1#p' "$W/out")
[ -n "$DIR" ] && [ ! -e "$DIR" ] && ok || bad "the demo's folder '$DIR' was not removed"
[ -n "$URL" ] && ! curl -sf -o /dev/null --max-time 2 "$URL/healthz" && ok ||
  bad "the demo's server '$URL' still answers"

echo "demo: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
