#!/usr/bin/env bash
# The main job, for now: build, then make keys, seal the sample app, inspect, open it again, compare, and
# show that a tampered bundle is refused.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
AIRLOCK=build/bin/airlock
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { printf '\n== %s\n' "$*"; }
step "keys: an ed25519 release-signing key and an x25519 device key"
$AIRLOCK keygen --type ed25519 --out "$work/release"
$AIRLOCK keygen --type x25519 --out "$work/device"

step "seal examples/sample-app as com.example.app 1.0.0"
$AIRLOCK bundle seal examples/sample-app --app com.example.app --version 1.0.0 \
  --sign-key "$work/release.key" --recipient "$work/device.pub" --out "$work/app-1.0.0.alb"

step "inspect"
$AIRLOCK bundle inspect "$work/app-1.0.0.alb" --verify-key "$work/release.pub"

step "open on the device side"
$AIRLOCK bundle open "$work/app-1.0.0.alb" --verify-key "$work/release.pub" \
  --decrypt-key "$work/device.key" --out "$work/opened"
diff -r examples/sample-app "$work/opened" && echo "opened files are identical to the sample app"

step "tamper with one payload byte: the bundle is refused and nothing is written"
cp "$work/app-1.0.0.alb" "$work/tampered.alb"
size=$(stat -c %s "$work/tampered.alb")
printf '\xff' | dd of="$work/tampered.alb" bs=1 seek=$((size - 20)) conv=notrunc status=none
if $AIRLOCK bundle open "$work/tampered.alb" --verify-key "$work/release.pub" \
     --decrypt-key "$work/device.key" --out "$work/tampered-out"; then
  echo "tampered bundle was accepted: this is a bug" >&2
  exit 1
fi
[ ! -e "$work/tampered-out" ] && echo "refused (exit 1), and $work/tampered-out was not created"
