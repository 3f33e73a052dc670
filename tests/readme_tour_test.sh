#!/usr/bin/env bash
# readme.tour: runs README.md's quick tour exactly as written, so a README that drifts from the code
# fails CI. The tour is every ```sh block between the <!-- tour:begin --> and <!-- tour:end -->
# markers, joined in order and run by bash with -e -u -o pipefail (any failing command fails the
# tour). It runs from a stand-in for the repository root whose build/bin is the binaries under test
# and whose examples/ is the checkout's, with TMPDIR, HOME and PORT (a free port on 127.0.0.1) set by
# this test; whatever the tour leaves running is stopped. Then the state the tour ends in is
# checked: the device back on 1.0.0 after the rollback, confirmed. The same harness runs
# docs/operations/keys.md's backup-and-restore example (<!-- example:keys-restore:begin -->).
# Usage: readme_tour_test.sh BIN_DIR SOURCE_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh"
server_test_setup "unused" "$1" "$2"
unset AIRLOCK_VAULT_PASSPHRASE   # the tour sets its own

# extract_blocks FILE NAME OUT: the ```sh blocks between <!-- NAME:begin --> and <!-- NAME:end --> in
# FILE, joined in order into OUT; exit 1 when the markers or blocks are missing.
extract_blocks() {
  python3 - "$1" "$2" "$3" <<'PY'
import re, sys
path, name, out = sys.argv[1:]
text = open(path, encoding="utf-8").read()
m = re.search(r"<!-- " + re.escape(name) + r":begin -->(.*?)<!-- " + re.escape(name) + r":end -->",
              text, re.S)
if not m:
    sys.exit("no <!-- %s:begin --> ... <!-- %s:end --> in %s" % (name, name, path))
blocks = re.findall(r"^```sh\n(.*?)^```$", m.group(1), re.S | re.M)
if not blocks:
    sys.exit("no ```sh blocks between the %s markers in %s" % (name, path))
open(out, "w").write("\n".join(blocks))
PY
}

# run_tour SCRIPT NAME: runs SCRIPT from a stand-in repository root in $W/NAME; exit status of the tour.
run_tour() {
  local root="$W/$2"
  mkdir -p "$root/build" "$root/tmp"
  ln -s "$BIN" "$root/build/bin"
  ln -s "$SRC/examples" "$root/examples"
  (
    cd "$root" &&
      TMPDIR="$root/tmp" PORT=$(free_port) timeout 600 bash -euo pipefail -c \
        'trap "kill \$(jobs -p) 2>/dev/null; wait" EXIT; . "$0"' "$1" </dev/null
  ) >"$root/tour.log" 2>&1
}

extract_blocks "$SRC/README.md" tour "$W/tour.sh" || { echo "FAIL: cannot extract the tour"; exit 1; }
[ "$(grep -c . "$W/tour.sh")" -gt 40 ] && ok || bad "the tour has fewer than 40 lines"

if run_tour "$W/tour.sh" readme; then
  ok
else
  bad "README.md's quick tour failed; its output ends with:"
  tail -25 "$W/readme/tour.log" | sed 's/^/    /'
fi
tour_dir=$(find "$W/readme/tmp" -mindepth 1 -maxdepth 1 -type d -name 'tmp.*' | head -1)
if [ -n "$tour_dir" ] && [ -f "$tour_dir/device/current/index.html" ]; then
  cmp -s "$tour_dir/device/current/index.html" "$SRC/examples/sample-app/index.html" && ok ||
    bad "the device is not back on 1.0.0's files after the tour's rollback"
  grep -q 'com.example.app: 1.0.0 (release 1.0.0-[0-9a-f]*), confirmed' "$W/readme/tour.log" && ok ||
    bad "the tour's last status is not a confirmed 1.0.0"
  grep -q 'the Capgo round trip gives the zip back' "$W/readme/tour.log" && ok ||
    bad "the tour did not reach its Capgo round trip"
else
  bad "the tour made no device folder"
fi
# The tour stopped its server itself (kill %1): nothing of it still answers.
port_line=$(grep -o 'http://127.0.0.1:[0-9]*' "$W/readme/tour.log" | head -1)
if [ -n "$port_line" ] && curl -sf -o /dev/null --max-time 2 "$port_line/healthz"; then
  bad "airlockd still answers on $port_line after the tour"
else
  ok
fi

# The harness fails a tour with a failing command: the same tour with one misspelt option.
sed 's/--percent 20/--percentage 20/' "$W/tour.sh" >"$W/broken.sh"
if cmp -s "$W/tour.sh" "$W/broken.sh"; then
  bad "the tour no longer has '--percent 20' to break"
elif run_tour "$W/broken.sh" broken; then
  bad "a tour with a misspelt option passed"
else
  # It stopped at that command: the rollout line ran (and failed), the rollback after it never did.
  if grep -q 'percent' "$W/broken/tour.log" && ! grep -q 'rolled back production' "$W/broken/tour.log"; then
    ok
  else
    bad "the broken tour did not stop at the misspelt option:"
    tail -5 "$W/broken/tour.log"
  fi
fi

# docs/operations/keys.md's backup and restore example, run as written in a folder whose default
# vault holds a root key: both restored vaults then hold that key, with its key id.
extract_blocks "$SRC/docs/operations/keys.md" example:keys-restore "$W/restore.sh" ||
  { echo "FAIL: cannot extract the keys.md example"; exit 1; }
mkdir -p "$W/restore"
(
  cd "$W/restore" &&
    export PATH="$BIN:$PATH" AIRLOCK_VAULT_PASSPHRASE="vault passphrase" \
      AIRLOCK_BACKUP_PASSPHRASE="backup passphrase" &&
    airlock vault init &&
    airlock key create com.example.app.root --type ed25519 --purpose root --json >root.json &&
    bash -euo pipefail "$W/restore.sh" </dev/null
) >"$W/restore.log" 2>&1 && ok || { bad "keys.md's restore example failed:"; tail -8 "$W/restore.log"; }
root_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key_id"])' "$W/restore/root.json" 2>/dev/null)
for vault in new other; do
  if [ -n "$root_id" ] && (cd "$W/restore" && AIRLOCK_VAULT_PASSPHRASE="vault passphrase" "$A" key list --vault "file:$vault/keys.vault" --json 2>/dev/null) |
    python3 -c 'import json,sys; ks=json.load(sys.stdin); ks=ks.get("keys",ks) if isinstance(ks,dict) else ks; sys.exit(0 if any(k.get("name")=="com.example.app.root" and k.get("key_id")==sys.argv[1] for k in ks) else 1)' "$root_id"; then
    ok
  else
    bad "the $vault vault does not hold com.example.app.root ($root_id) after keys.md's example"
  fi
done

echo "readme.tour: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
