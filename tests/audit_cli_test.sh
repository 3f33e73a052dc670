#!/usr/bin/env bash
# End-to-end checks of `airlock audit` and `airlock access`: exit codes (0 ok, 1 verification or access
# failure, 2 usage), tamper detection naming the record, the TOTP gate, tokens shown once.
#   tests/audit_cli_test.sh BIN_DIR
set -u
BIN="$1/airlock"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
RUN_IGNORE_CASE=1
. "$(dirname "$0")/lib.sh"

# TOTP code for a base32 secret now (RFC 6238, SHA1, 6 digits), computed independently with python.
totp() {
  python3 - "$1" "${2:-0}" <<'PY'
import base64, hashlib, hmac, struct, sys, time
key = base64.b32decode(sys.argv[1] + "=" * (-len(sys.argv[1]) % 8))
step = int(time.time()) // 30 + int(sys.argv[2])
mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
o = mac[-1] & 15
print("%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7fffffff) % 1000000))
PY
}

V="file:$W/keys.vault"
export AIRLOCK_ACTOR=alice
export AIRLOCK_VAULT_PASSPHRASE="audit cli test passphrase"
unset AIRLOCK_VAULT AIRLOCK_AUDIT_LOG AIRLOCK_ACCESS_STORE AIRLOCK_TOTP
# The default vault ($XDG_CONFIG_HOME/airlock/vault.db) is the test's own, never the caller's.
export XDG_CONFIG_HOME="$W/config" HOME="$W/home"

# --- usage ---------------------------------------------------------------------------------------------
run 0 "verify" "$BIN" audit --help
run 2 "" "$BIN" audit
# Without --vault: the default vault's log, which does not exist here (exit 1, naming it).
run 1 "audit log $W/config/airlock/vault.db.audit does not exist" "$BIN" audit verify
run 2 "period" "$BIN" audit report --vault "$V"
run 2 "period" "$BIN" audit report --vault "$V" --period yearly
run 1 "does not exist" "$BIN" audit verify --vault "$V"
run 2 "audit" "$BIN" audit verify --vault "pkcs11:token=x"

# --- access: bootstrap, TOTP, tokens --------------------------------------------------------------------
# Access control belongs to a vault: its key seals the TOTP secrets, its sealed state records that it
# has access control.
run 1 "no vault" "$BIN" access add alice --role owner --vault "$V"
[ -e "$W/keys.vault.access" ] && bad "access file made without a vault" || ok
run 0 "" "$BIN" vault init --vault "$V" --kdf-memory-kib 256 --kdf-passes 1
grep -q "has no access control: anyone with its passphrase may use every key" "$W/err" && ok \
  || bad "a vault without access control does not say so"
run 2 "owner" "$BIN" access add alice --role auditor --vault "$V"
run 0 "added alice" "$BIN" access add alice --role owner --vault "$V"
grep -q "has access control from now on" "$W/err" && ok || bad "first owner does not switch access control on"
run 2 "role" "$BIN" access add bob --role wizard --vault "$V"
run 0 "secret_base32" "$BIN" access totp-enroll alice --vault "$V" --json
ASECRET=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret_base32"])' "$W/out")
# Granting a custodian role needs the granting owner's own second factor.
run 2 "your own TOTP code" "$BIN" access add carol --role key-custodian --vault "$V"
run 0 "added carol" "$BIN" access add carol --role key-custodian --vault "$V" --totp "$(totp "$ASECRET")"
# Only principal managers may add people.
AIRLOCK_ACTOR=carol run 1 "access denied" "$BIN" access add eve --role owner --vault "$V"
run 0 "secret_base32" "$BIN" access totp-enroll carol --vault "$V" --json
SECRET=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret_base32"])' "$W/out")
[ -n "$SECRET" ] && ok || bad "no TOTP secret printed"
if [ -f "$W/keys.vault.access" ] && [ "$(stat -c %a "$W/keys.vault.access")" = "600" ]; then ok; else
  bad "access store is not mode 600"; fi
# Custodian action: missing code is a usage error, a wrong one a failure, the right one passes once.
run 2 "TOTP" "$BIN" access check key.rotate --name carol --vault "$V"
CODE=$(totp "$SECRET")
WRONG=$(printf '%06d' $(( (10#$CODE + 1) % 1000000 )))
run 1 "does not match" "$BIN" access check key.rotate --name carol --totp "$WRONG" --vault "$V"
run 0 "carol may key.rotate" "$BIN" access check key.rotate --name carol --totp "$CODE" --vault "$V"
run 1 "replay" "$BIN" access check key.rotate --name carol --totp "$CODE" --vault "$V"
run 1 "access denied" "$BIN" access check key.sign --name carol --vault "$V"
run 0 "" "$BIN" access token-create ci --role release-manager --vault "$V" --json
TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$W/out")
if grep -q "${TOKEN#alk_}" "$W/keys.vault.access" "$W/keys.vault.audit"; then bad "token stored in clear"
else ok; fi
run 0 "ci .*token .*release-manager" "$BIN" access list --vault "$V"

# --- audit log and report -------------------------------------------------------------------------------
run 0 "principal-add" "$BIN" audit log --vault "$V"
run 0 "totp-check|authorize" "$BIN" audit log --vault "$V" --result denied
run 0 "" "$BIN" audit log --vault "$V" --actor nobody
run 2 "result" "$BIN" audit log --vault "$V" --result maybe
run 2 "time" "$BIN" audit log --vault "$V" --since yesterday
run 0 "" "$BIN" audit log --vault "$V" --since 24h --until 2100-01-01 --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d) >= 5 and d[0]["seq"] == 1' \
  "$W/out" && ok || bad "audit log --json"
run 0 "denied" "$BIN" audit report --vault "$V" --period daily
run 0 "" "$BIN" audit report --vault "$V" --period quarterly --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["denied"] >= 2 and d["period"] == "quarterly"' \
  "$W/out" && ok || bad "audit report --json"
run 2 "max-age" "$BIN" audit report --vault "$V" --period weekly --max-age root

# --- verify, checkpoints, tampering ---------------------------------------------------------------------
run 0 "OK" "$BIN" audit verify --vault "$V"
"$BIN" keygen --type ed25519 --out "$W/audit" >/dev/null 2>&1
"$BIN" keygen --type ed25519 --out "$W/other" >/dev/null 2>&1
run 0 "checkpoint at seq" "$BIN" audit checkpoint --vault "$V" --sign-key "$W/audit.key"
run 0 "OK" "$BIN" audit verify --vault "$V" --audit-pub "$W/audit.pub" --min-checkpoints 1
run 1 "not a trusted audit key" "$BIN" audit verify --vault "$V" --audit-pub "$W/other.pub"
# The vault pins its own checkpoint key; a checkpoint signed by another key needs --audit-pub.
run 1 "not a trusted audit key" "$BIN" audit verify --vault "$V"
run 0 "" "$BIN" audit verify --vault "$V" --json --audit-pub "$W/audit.pub"
HEAD=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["head"])' "$W/out")
run 0 "OK" "$BIN" audit verify --vault "$V" --expect-head "$HEAD" --audit-pub "$W/audit.pub"
run 2 "expect-head" "$BIN" audit verify --vault "$V" --expect-head nothex
cp "$W/keys.vault.audit" "$W/clean.audit"

# Edit a field: record 3 named.
sqlite3 "$W/keys.vault.audit" "DROP TRIGGER records_no_update; UPDATE records SET actor='mallory' WHERE seq=3"
run 1 "record 3" "$BIN" audit verify --vault "$V"
# --json prints the report and still exits 1 on tampering.
"$BIN" audit verify --vault "$V" --json >"$W/out" 2>/dev/null; rc=$?
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["first_bad_seq"] == 3 and d["error"] == "hash_mismatch"' \
  "$W/out" && [ $rc -eq 1 ] && ok || bad "verify --json on an edited record"

# Delete a record: the missing seq is named.
cp "$W/clean.audit" "$W/keys.vault.audit"
sqlite3 "$W/keys.vault.audit" "DROP TRIGGER records_no_delete; DELETE FROM records WHERE seq=2"
run 1 "record 2" "$BIN" audit verify --vault "$V"

# Truncate the tail under the checkpoint.
cp "$W/clean.audit" "$W/keys.vault.audit"
LAST=$(sqlite3 "$W/keys.vault.audit" "SELECT max(seq) FROM records")
sqlite3 "$W/keys.vault.audit" "DROP TRIGGER records_no_delete; DELETE FROM records WHERE seq=$LAST"
run 1 "record $LAST: .*checkpoint covers" "$BIN" audit verify --vault "$V"

# Forge the checkpoint signature.
cp "$W/clean.audit" "$W/keys.vault.audit"
sqlite3 "$W/keys.vault.audit" "DROP TRIGGER checkpoints_no_update; UPDATE checkpoints SET signature=zeroblob(64) WHERE id=(SELECT max(id) FROM checkpoints)"
run 1 "checkpoint at seq $LAST: .*signature" "$BIN" audit verify --vault "$V" --audit-pub "$W/audit.pub"

# --- attacks on the chain, against the vault's sealed head ------------------------------------------------
# Every key or access command is one session: its records are chained, a checkpoint signed by the
# vault's checkpoint key closes it, and the head is sealed into the vault. `audit verify --vault`
# (no other argument) checks the log against that head.
C="$W/chain.vault"
VC="file:$C"
run 0 "" "$BIN" vault init --vault "$VC" --kdf-memory-kib 256 --kdf-passes 1
run 0 "" "$BIN" key create a --vault "$VC" --type ed25519 --purpose targets
run 0 "" "$BIN" key create b --vault "$VC" --type ed25519 --purpose snapshot
printf 'm' >"$W/m"
run 0 "" "$BIN" key sign a --vault "$VC" --in "$W/m" --out "$W/m.sig"
run 1 "" "$BIN" key sign nope --vault "$VC" --in "$W/m" --out "$W/m.sig2"  # failed, recorded
run 0 "" "$BIN" key sign b --vault "$VC" --in "$W/m" --out "$W/m.sig3"
run 0 "head sealed in the vault" "$BIN" audit verify --vault "$VC"
cp "$C.audit" "$W/clean2.audit"
cp "$C" "$W/vault.before"
NCP=$(sqlite3 "$C.audit" "SELECT count(*) FROM checkpoints WHERE number IS NOT NULL")
[ "$NCP" -ge 4 ] && ok || bad "sessions did not write numbered checkpoints ($NCP)"
TOP=$(sqlite3 "$C.audit" "SELECT max(seq) FROM records")
MID=$((TOP / 2))
DROP="DROP TRIGGER records_no_update; DROP TRIGGER records_no_delete; DROP TRIGGER checkpoints_no_delete;"
attack() {  # attack NAME PATTERN SQL: tamper with a clean copy; verify must fail with one line
  cp "$W/clean2.audit" "$C.audit"
  sqlite3 "$C.audit" "$DROP $3"
  run 1 "$2" "$BIN" audit verify --vault "$VC"
  one_error_line
  cmp -s "$C" "$W/vault.before" && ok || bad "$1: verify changed the vault"
}
attack "edit" "record $MID: .*edited" "UPDATE records SET reason='nothing to see' WHERE seq=$MID"
attack "delete middle" "record $MID: .*missing" "DELETE FROM records WHERE seq=$MID"
attack "delete checkpoint" "checkpoint at seq [0-9]+: .*checkpoint 2 is missing" "DELETE FROM checkpoints WHERE number=2"
attack "delete newest checkpoint" "number $((NCP - 1)) but checkpoint $NCP was written" \
  "DELETE FROM checkpoints WHERE number=$NCP"
# The newest K records cut off, their checkpoint left in place, or deleted too.
for K in 1 3; do
  attack "truncate $K" "record $((TOP - K + 1)): .*checkpoint covers" "DELETE FROM records WHERE seq>$((TOP - K))"
  attack "truncate $K and its checkpoint" "record $((TOP - K + 1)): .*before the expected head $TOP .*cut off" \
    "DELETE FROM records WHERE seq>$((TOP - K)); DELETE FROM checkpoints WHERE seq>$((TOP - K))"
done
# Truncation with the checkpoint deleted is what the log alone cannot show: verified without the vault
# (--audit only) it passes, with a note; the vault's head is what catches it.
cp "$W/clean2.audit" "$C.audit"
sqlite3 "$C.audit" "$DROP DELETE FROM records WHERE seq>$((TOP - 1)); DELETE FROM checkpoints WHERE seq>$((TOP - 1))"
run 0 "OK" "$BIN" audit verify --audit "$C.audit"
# A replaced log (another log's id) is not the vault's log.
cp "$W/clean2.audit" "$C.audit"
sqlite3 "$C.audit" "UPDATE meta SET value='00000000000000000000000000000000' WHERE name='log_id'"
run 1 "not the log vault" "$BIN" audit verify --vault "$VC"
one_error_line
# Verifying against the vault needs its passphrase (it holds the head); without it: refused.
cp "$W/clean2.audit" "$C.audit"
AIRLOCK_VAULT_PASSPHRASE=wrong run 1 "wrong vault passphrase" "$BIN" audit verify --vault "$VC"
# Untouched: exit 0.
run 0 "OK" "$BIN" audit verify --vault "$VC"
cmp -s "$C" "$W/vault.before" && ok || bad "verify changed the vault"

# --- the same attacks on a PKCS#11 store's log, against the head the token holds ----------------------
# A token has no vault file: the log is named with --audit, the checkpoint key is generated on the token
# (private, not extractable) and the head is kept in a private data object on the token (login only).
P11_MODULE=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so; do
  [ -e "$m" ] && P11_MODULE="$m" && break
done
if [ -n "$P11_MODULE" ] && command -v softhsm2-util >/dev/null; then
  mkdir -p "$W/softhsm/tokens"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\n' "$W/softhsm/tokens" >"$W/softhsm/softhsm2.conf"
  export SOFTHSM2_CONF="$W/softhsm/softhsm2.conf"
  softhsm2-util --init-token --free --label audit-cli --pin 1234 --so-pin 5678 >/dev/null \
    && ok || bad "softhsm2-util cannot initialise a token"
  P="pkcs11:token=audit-cli"
  PL="$W/p11.audit"
  export AIRLOCK_PKCS11_MODULE="$P11_MODULE" AIRLOCK_PKCS11_PIN=1234
  run 0 "" "$BIN" key create a --vault "$P" --audit "$PL" --type ed25519 --purpose targets
  run 0 "" "$BIN" key create b --vault "$P" --audit "$PL" --type ecdsa-p256 --purpose snapshot
  run 0 "" "$BIN" key sign a --vault "$P" --audit "$PL" --in "$W/m" --out "$W/p.sig"
  run 1 "" "$BIN" key sign nope --vault "$P" --audit "$PL" --in "$W/m" --out "$W/p.sig2"  # failed, recorded
  run 0 "" "$BIN" key sign b --vault "$P" --audit "$PL" --in "$W/m" --out "$W/p.sig3"
  run 0 "head held on the token" "$BIN" audit verify --vault "$P" --audit "$PL"
  # The checkpoint key lives on the token, purpose audit, and its creation is a record.
  run 0 "audit-checkpoint-[0-9a-f]{8}.*audit" "$BIN" key list --vault "$P" --audit "$PL"
  run 0 "create +audit-checkpoint-" "$BIN" audit log --audit "$PL" --operation create
  cp "$PL" "$W/clean3.audit"
  cp -r "$W/softhsm/tokens" "$W/tokens.before"
  NCP=$(sqlite3 "$PL" "SELECT count(*) FROM checkpoints WHERE number IS NOT NULL")
  [ "$NCP" -ge 4 ] && ok || bad "PKCS#11 sessions did not write numbered checkpoints ($NCP)"
  TOP=$(sqlite3 "$PL" "SELECT max(seq) FROM records")
  MID=$((TOP / 2))
  # The token's objects (keys, metadata, the state with the head) are byte-for-byte as before; SoftHSM2
  # rewrites its token.object (login bookkeeping) on every login, so that file is left out.
  same_token() { diff -r --exclude=token.object "$W/softhsm/tokens" "$W/tokens.before" >/dev/null; }
  # attack_p11 NAME CODE SEQ PATTERN SQL: tamper with a clean copy; verify with no extra argument must
  # exit 1 with one error line matching PATTERN, --json must name CODE at SEQ, and the token is unchanged.
  attack_p11() {
    cp "$W/clean3.audit" "$PL"
    sqlite3 "$PL" "$DROP $5"
    run 1 "$4" "$BIN" audit verify --vault "$P" --audit "$PL"
    one_error_line
    "$BIN" audit verify --vault "$P" --audit "$PL" --json >"$W/out" 2>/dev/null; local rc=$?
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] is False and d["anchored"] is True and d["error"] == sys.argv[2] and d["first_bad_seq"] == int(sys.argv[3]), d' \
      "$W/out" "$2" "$3" && [ $rc -eq 1 ] && ok || bad "$1: verify --json: $(cat "$W/out")"
    same_token && ok || bad "$1: verify changed the token"
  }
  attack_p11 "p11 edit" hash_mismatch $MID "record $MID: .*edited" \
    "UPDATE records SET reason='nothing to see' WHERE seq=$MID"
  attack_p11 "p11 delete middle" hash_mismatch $MID "record $MID: .*missing" "DELETE FROM records WHERE seq=$MID"
  CP3=$(sqlite3 "$W/clean3.audit" "SELECT seq FROM checkpoints WHERE number=3")
  attack_p11 "p11 delete checkpoint" truncated "$CP3" "checkpoint at seq [0-9]+: .*checkpoint 2 is missing" \
    "DELETE FROM checkpoints WHERE number=2"
  attack_p11 "p11 delete newest checkpoint" truncated $((TOP + 1)) "number $((NCP - 1)) but checkpoint $NCP was written" \
    "DELETE FROM checkpoints WHERE number=$NCP"
  for K in 1 3; do
    attack_p11 "p11 truncate $K" truncated $((TOP - K + 1)) "record $((TOP - K + 1)): .*checkpoint covers" \
      "DELETE FROM records WHERE seq>$((TOP - K))"
    attack_p11 "p11 truncate $K and its checkpoint" truncated $((TOP - K + 1)) \
      "record $((TOP - K + 1)): .*before the expected head $TOP .*cut off" \
      "DELETE FROM records WHERE seq>$((TOP - K)); DELETE FROM checkpoints WHERE seq>$((TOP - K))"
  done
  # The log alone cannot show the last cut (checkpoint deleted too); the token's head does (above).
  cp "$W/clean3.audit" "$PL"
  sqlite3 "$PL" "$DROP DELETE FROM records WHERE seq>$((TOP - 1)); DELETE FROM checkpoints WHERE seq>$((TOP - 1))"
  run 0 "OK" "$BIN" audit verify --audit "$PL"
  # Another log in its place is not the token's log.
  cp "$W/clean3.audit" "$PL"
  sqlite3 "$PL" "UPDATE meta SET value='00000000000000000000000000000000' WHERE name='log_id'"
  run 1 "not the log token $P keeps" "$BIN" audit verify --vault "$P" --audit "$PL"
  one_error_line
  # The head is read after login: without the right PIN, verify against the token is refused.
  cp "$W/clean3.audit" "$PL"
  AIRLOCK_PKCS11_PIN=9999 run 1 "PIN" "$BIN" audit verify --vault "$P" --audit "$PL"
  run 0 "OK" "$BIN" audit verify --vault "$P" --audit "$PL"
  same_token && ok || bad "verify changed the token"
  # A new session moves the head forward; the old log copy is then a cut-off log.
  run 0 "" "$BIN" key sign a --vault "$P" --audit "$PL" --in "$W/m" --out "$W/p.sig4"
  cp "$W/clean3.audit" "$PL"
  run 1 "record $((TOP + 1)): .*cut off" "$BIN" audit verify --vault "$P" --audit "$PL"
  unset SOFTHSM2_CONF AIRLOCK_PKCS11_MODULE AIRLOCK_PKCS11_PIN
else
  missing_service "SoftHSM2 (softhsm2 package)"
fi

echo "audit_cli_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
