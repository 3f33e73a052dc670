#!/usr/bin/env bash
# End-to-end checks of the `airlock vault` / `airlock key` contract (issue 4): exit codes (0 ok,
# 1 failure, 2 usage), the bytes on disk, ed25519 signatures checked by `openssl pkeyutl -verify`.
#   tests/keys_cli_test.sh BIN_DIR
set -u
BIN="$1/airlock"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
RUN_IGNORE_CASE=1
. "$(dirname "$0")/lib.sh"

export AIRLOCK_VAULT_PASSPHRASE="cli test passphrase"
export AIRLOCK_BACKUP_PASSPHRASE="cli backup passphrase"
export AIRLOCK_ACTOR=ci
unset AIRLOCK_TOTP AIRLOCK_AUDIT_LOG AIRLOCK_ACCESS_STORE
V="file:$W/keys.vault"
FAST=(--kdf-memory-kib 256 --kdf-passes 1)

# init
run 0 "initialised" "$BIN" vault init --vault "$V" "${FAST[@]}"
[ "$(stat -c %a "$W/keys.vault")" = 600 ] && ok || bad "vault mode is not 0600"
run 1 "already exists" "$BIN" vault init --vault "$V" "${FAST[@]}"
run 2 "" "$BIN" vault init --vault "nope:$W/x"
# No --vault: the default vault, the one `app create` uses (HOME in a temp dir). A missing one is
# an error that names it, and nothing is made (issue 12).
mkdir -p "$W/home"
run 1 "no vault at $W/home/.config/airlock/vault.db" env -u AIRLOCK_VAULT -u XDG_CONFIG_HOME HOME="$W/home" "$BIN" key list
[ -z "$(ls -A "$W/home")" ] && ok || bad "a failed key list left files in HOME: $(ls -AR "$W/home")"
run 0 "initialised file:$W/home/.config/airlock/vault.db" env -u AIRLOCK_VAULT -u XDG_CONFIG_HOME HOME="$W/home" \
  "$BIN" vault init --kdf-memory-kib 64 --kdf-passes 1
[ "$(stat -c %a "$W/home/.config/airlock")" = 700 ] && ok || bad "default vault folder is not 0700"
run 0 "" env -u AIRLOCK_VAULT -u XDG_CONFIG_HOME HOME="$W/home" "$BIN" key list
run 0 "" env -u AIRLOCK_VAULT -u XDG_CONFIG_HOME HOME="$W/home" "$BIN" audit verify
# A failed init over an existing vault leaves the folder byte-for-byte as it was.
tree_state "$W/home" >"$W/home.before"
run 1 "already exists" env -u AIRLOCK_VAULT -u XDG_CONFIG_HOME HOME="$W/home" "$BIN" vault init
tree_state "$W/home" | cmp -s - "$W/home.before" && ok || bad "a failed vault init changed the folder"
# Restore into a vault that does not exist: an error, and no audit log is made.
run 1 "" "$BIN" vault restore --vault "file:$W/nowhere/v.db" --in "$W/missing.backup"
[ ! -e "$W/nowhere" ] && ok || bad "a failed vault restore left files"
# No passphrase and no terminal: the hint names the real flag and variable.
run 2 "no vault passphrase: give --passphrase-file FILE, set \\\$AIRLOCK_VAULT_PASSPHRASE, or run on a terminal" \
  env -u AIRLOCK_VAULT_PASSPHRASE -u AIRLOCK_VAULT -u XDG_CONFIG_HOME HOME="$W/home" "$BIN" key list

# create / list
run 0 "created file:" "$BIN" key create root --vault "$V" --type ed25519 --purpose root
run 0 "" "$BIN" key create targets --vault "$V" --type ecdsa-p256 --purpose targets
run 0 "" "$BIN" key create wrap --vault "$V" --type x25519 --purpose content-wrap
run 2 "purpose" "$BIN" key create bad --vault "$V" --type ed25519 --purpose nope
run 2 "type" "$BIN" key create bad --vault "$V" --type dsa --purpose root
run 2 "cannot serve" "$BIN" key create bad --vault "$V" --type x25519 --purpose root
run 1 "already exists" "$BIN" key create root --vault "$V" --type ed25519 --purpose root
run 0 "" "$BIN" key list --vault "$V" --json
# Besides the three: the vault's audit checkpoint key, made on first need.
python3 -c 'import json,sys; k=[x for x in json.load(open(sys.argv[1])) if x["purpose"]!="audit"]; assert [x["name"] for x in k]==["root","targets","wrap"], k; assert k[0]["state"]=="active"' "$W/out" && ok || bad "key list --json"
python3 -c 'import json,sys; a=[x["name"] for x in json.load(open(sys.argv[1])) if x["purpose"]=="audit"]; assert len(a)==1 and a[0].startswith("audit-checkpoint-"), a' "$W/out" && ok || bad "no audit checkpoint key"
# A vault without access control says so whenever it is opened.
grep -q "has no access control: anyone with its passphrase may use every key" "$W/err" && ok || bad "no access-control notice"
AIRLOCK_VAULT="$V" run 0 "root" "$BIN" key list

# wrong passphrase: exit 1, vault unchanged
cp "$W/keys.vault" "$W/before"
AIRLOCK_VAULT_PASSPHRASE=wrong run 1 "wrong vault passphrase" "$BIN" key list --vault "$V"
cmp -s "$W/keys.vault" "$W/before" && ok || bad "vault changed after a wrong passphrase"
printf 'cli test passphrase\n' >"$W/pass"
env -u AIRLOCK_VAULT_PASSPHRASE "$BIN" key list --vault "$V" --passphrase-file "$W/pass" >/dev/null && ok || bad "--passphrase-file"
env -u AIRLOCK_VAULT_PASSPHRASE "$BIN" key list --vault "$V" </dev/null >/dev/null 2>"$W/err"
[ $? -eq 2 ] && ok || bad "no passphrase and no terminal should be a usage error"

# sign, verified by openssl
printf 'release 1.0.0' >"$W/msg"
run 0 "" "$BIN" key sign root --vault "$V" --in "$W/msg" --out "$W/sig"
run 0 "" "$BIN" key public root --vault "$V" --out "$W/root.pub"
openssl pkeyutl -verify -pubin -inkey "$W/root.pub" -rawin -in "$W/msg" -sigfile "$W/sig" >/dev/null 2>&1 && ok || bad "openssl does not verify the ed25519 signature"
[ "$(stat -c %s "$W/sig")" = 64 ] && ok || bad "ed25519 signature is not 64 raw bytes"
run 2 "cannot sign" "$BIN" key sign wrap --vault "$V" --in "$W/msg" --out "$W/sig2"
run 1 "no key" "$BIN" key sign missing --vault "$V" --in "$W/msg" --out "$W/sig2"

# lifecycle
run 0 "suspended" "$BIN" key suspend targets --vault "$V"
run 1 "suspended and cannot be used" "$BIN" key sign targets --vault "$V" --in "$W/msg" --out "$W/sig2"
[ -e "$W/sig2" ] && bad "signature written by a suspended key" || ok
run 0 "active" "$BIN" key resume targets --vault "$V" --totp 000000
run 0 "" "$BIN" key sign targets --vault "$V" --in "$W/msg" --out "$W/sig2"
run 0 "retired" "$BIN" key retire targets --vault "$V"
run 2 "cannot go from retired to active" "$BIN" key resume targets --vault "$V"
run 1 "retired" "$BIN" key sign targets --vault "$V" --in "$W/msg" --out "$W/sig3"
run 0 "revoked" "$BIN" key revoke targets --vault "$V"
run 1 "revoked" "$BIN" key sign targets --vault "$V" --in "$W/msg" --out "$W/sig3"

# rotate: old becomes root@1 (retired), still verifiable; new root signs
run 0 "root@1" "$BIN" key rotate root --vault "$V"
run 0 "" "$BIN" key public root@1 --vault "$V" --out "$W/root1.pub"
cmp -s "$W/root.pub" "$W/root1.pub" && ok || bad "root@1 is not the old root key"
openssl pkeyutl -verify -pubin -inkey "$W/root1.pub" -rawin -in "$W/msg" -sigfile "$W/sig" >/dev/null 2>&1 && ok || bad "old signature no longer verifies"
run 1 "retired" "$BIN" key sign root@1 --vault "$V" --in "$W/msg" --out "$W/sig4"
run 0 "" "$BIN" key sign root --vault "$V" --in "$W/msg" --out "$W/sig4"
run 0 "no key is due" "$BIN" key rotate --due --vault "$V"
run 2 "either NAME or --due" "$BIN" key rotate --vault "$V"

# compromised: root -> root@2 compromised, new root
run 0 "compromised" "$BIN" key compromised root --vault "$V"
run 1 "compromised" "$BIN" key sign root@2 --vault "$V" --in "$W/msg" --out "$W/sig5"

# backup / restore (with 2-of-3 shares of the root key)
run 0 "backed up" "$BIN" vault backup --vault "$V" --out "$W/backup.json" --shares 2/3
ls "$W"/backup.json.root.share-*-of-3.json >/dev/null 2>&1 && ok || bad "no share files"
run 1 "already exists" "$BIN" vault backup --vault "$V" --out "$W/backup.json"
run 2 "share spec" "$BIN" vault backup --vault "$V" --out "$W/b2.json" --shares 1/3
V2="file:$W/restored.vault"
run 0 "" "$BIN" vault init --vault "$V2" "${FAST[@]}"
# The keys of the vault (its sealed header pins the head of the audit log, which records each
# refused attempt as it must, so those bytes change).
vault_files() { "$BIN" key list --vault "$V2" --json 2>/dev/null; }
before=$(vault_files)
[ -n "$before" ] && ok || bad "cannot list the restored vault's keys"
AIRLOCK_BACKUP_PASSPHRASE=wrong run 1 "wrong backup passphrase" "$BIN" vault restore --in "$W/backup.json" --vault "$V2"
[ "$(vault_files)" = "$before" ] && ok || bad "a restore with the wrong backup passphrase changed the vault"
# A tampered backup (one character of its longest sealed value changed): refused, the existing
# vault's files byte for byte as before.
python3 - "$W/backup.json" "$W/tampered.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
best = [None, None, ""]
def walk(node):
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        if isinstance(value, str) and len(value) > len(best[2]):
            best[:] = [node, key, value]
        else:
            walk(value)
walk(doc)
node, key, value = best
i = len(value) // 2
node[key] = value[:i] + ("B" if value[i] != "B" else "C") + value[i + 1:]
json.dump(doc, open(sys.argv[2], "w"))
PY
run 1 "" "$BIN" vault restore --in "$W/tampered.json" --vault "$V2"
[ "$(vault_files)" = "$before" ] && ok || bad "a tampered backup changed the vault it was restored into"
run 0 "restored root " "$BIN" vault restore --in "$W/backup.json" --vault "$V2"
run 0 "" "$BIN" key public root --vault "$V2" --out "$W/restored.pub"
"$BIN" key public root --vault "$V" --out "$W/current.pub" && cmp -s "$W/restored.pub" "$W/current.pub" && ok || bad "restored root differs"
V3="file:$W/shares.vault"
run 0 "" "$BIN" vault init --vault "$V3" "${FAST[@]}"
run 2 "needs 2 shares" "$BIN" vault restore --vault "$V3" --share "$W/backup.json.root.share-1-of-3.json"
run 0 "restored root" "$BIN" vault restore --vault "$V3" --share "$W/backup.json.root.share-1-of-3.json" --share "$W/backup.json.root.share-3-of-3.json"
run 0 "" "$BIN" key sign root --vault "$V3" --in "$W/msg" --out "$W/sig6"
openssl pkeyutl -verify -pubin -inkey "$W/current.pub" -rawin -in "$W/msg" -sigfile "$W/sig6" >/dev/null 2>&1 && ok || bad "share-restored root does not sign as root"

# no private key bytes on disk in plaintext
if grep -aq "PRIVATE KEY" "$W/keys.vault" "$W/backup.json" "$W"/backup.json.root.share-*; then bad "PEM on disk"; else ok; fi

# every operation was recorded
[ -s "$W/keys.vault.audit" ] && ok || bad "no audit log beside the vault"

# access control: once a principal is enrolled, custodian operations need a valid TOTP code
VA="file:$W/access.vault"
run 0 "" "$BIN" vault init --vault "$VA" "${FAST[@]}"
AIRLOCK_ACTOR=alice run 0 "" "$BIN" access add alice --role owner --vault "$VA"
AIRLOCK_ACTOR=alice run 0 "" "$BIN" access totp-enroll alice --vault "$VA" --json
SECRET=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret_base32"])' "$W/out")
# totp SECRET [STEP_OFFSET]
totp() {
  python3 - "$1" "${2:-0}" <<'PY'
import base64, hashlib, hmac, struct, sys, time
key = base64.b32decode(sys.argv[1] + "=" * (-len(sys.argv[1]) % 8))
mac = hmac.new(key, struct.pack(">Q", int(time.time()) // 30 + int(sys.argv[2])), hashlib.sha1).digest()
o = mac[-1] & 15
print("%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7fffffff) % 1000000))
PY
}
# The TOTP secret is sealed under the vault key: neither its base32 form nor its raw bytes are in
# the access file.
grep -q "$SECRET" "$W/access.vault.access" && bad "TOTP secret in clear (base32)" || ok
python3 -c 'import base64,sys; s=sys.argv[1]; raw=base64.b32decode(s+"="*(-len(s)%8)); sys.exit(1 if raw in open(sys.argv[2],"rb").read() else 0)' "$SECRET" "$W/access.vault.access" \
  && ok || bad "TOTP secret in clear (raw bytes)"
AIRLOCK_ACTOR=alice run 0 "" "$BIN" key create r --vault "$VA" --type ed25519 --purpose root
AIRLOCK_ACTOR=alice run 0 "" "$BIN" key create t --vault "$VA" --type ed25519 --purpose targets
[ -s "$W/err" ] && bad "notice on a vault with access control: $(cat "$W/err")" || ok
AIRLOCK_ACTOR=alice run 2 "requires a TOTP code" "$BIN" key rotate r --vault "$VA"
AIRLOCK_ACTOR=mallory run 1 "access denied" "$BIN" key sign r --vault "$VA" --in "$W/msg" --out "$W/sig7"
CODE=$(totp "$SECRET")
BADCODE=$(printf '%06d' $(( (10#$CODE + 1) % 1000000 )))
AIRLOCK_ACTOR=alice run 1 "does not match" "$BIN" key rotate r --vault "$VA" --totp "$BADCODE"
AIRLOCK_ACTOR=alice run 0 "r@1" "$BIN" key rotate r --vault "$VA" --totp "$CODE"

# Signing with a root key is a custodian operation with its second factor: a release manager is
# refused, a custodian without a code too; nothing is written.
AIRLOCK_ACTOR=alice run 0 "" "$BIN" access add rel --role release-manager --vault "$VA"
AIRLOCK_ACTOR=alice run 2 "your own TOTP code" "$BIN" access add carol --role key-custodian --vault "$VA"
AIRLOCK_ACTOR=alice run 0 "added carol" "$BIN" access add carol --role key-custodian --vault "$VA" \
  --totp "$(totp "$SECRET" 1)"
AIRLOCK_ACTOR=alice run 0 "" "$BIN" access totp-enroll carol --vault "$VA" --json
CSECRET=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret_base32"])' "$W/out")
AIRLOCK_ACTOR=rel run 0 "" "$BIN" key sign t --vault "$VA" --in "$W/msg" --out "$W/sig-t"
AIRLOCK_ACTOR=rel run 1 "access denied.*key.sign-root" "$BIN" key sign r --vault "$VA" --in "$W/msg" --out "$W/sig-r" --totp "$(totp "$CSECRET")"
AIRLOCK_ACTOR=carol run 2 "key.sign-root requires a TOTP code" "$BIN" key sign r --vault "$VA" --in "$W/msg" --out "$W/sig-r"
[ -e "$W/sig-r" ] && bad "a root signature was written without custodian and TOTP" || ok
AIRLOCK_ACTOR=carol run 0 "" "$BIN" key sign r --vault "$VA" --in "$W/msg" --out "$W/sig-r" --totp "$(totp "$CSECRET")"

# Re-enrolling a TOTP needs the current code (or two custodians): without it, refused, and the old
# secret still works.
cp "$W/access.vault.access" "$W/access.before"
AIRLOCK_ACTOR=carol run 2 "current code" "$BIN" access totp-enroll carol --vault "$VA"
AIRLOCK_ACTOR=alice run 2 "current code" "$BIN" access totp-enroll carol --vault "$VA"
AIRLOCK_ACTOR=carol run 1 "does not match" "$BIN" access totp-enroll carol --vault "$VA" --totp "$BADCODE"
AIRLOCK_ACTOR=alice run 1 "access denied.*two different key custodians" "$BIN" access totp-enroll carol --vault "$VA" \
  --custodian "alice:$(totp "$SECRET" 1)"
AIRLOCK_ACTOR=carol run 2 "current code" "$BIN" access totp-remove carol --vault "$VA"
[ "$(sqlite3 "$W/access.vault.access" "SELECT hex(totp_secret) FROM principals WHERE name='carol'")" = \
  "$(sqlite3 "$W/access.before" "SELECT hex(totp_secret) FROM principals WHERE name='carol'")" ] \
  && ok || bad "a refused re-enrolment changed carol's secret"
AIRLOCK_ACTOR=carol run 0 "secret_base32" "$BIN" access totp-enroll carol --vault "$VA" --totp "$(totp "$CSECRET" 1)" --json

# A vault with access control whose access file is deleted (or emptied) refuses every operation,
# naming the file; the keys are unchanged and nothing is signed or exported.
sqlite3 "$W/access.vault" "SELECT name, key_id, state, hex(sealed) FROM vault_keys ORDER BY name" >"$W/keys.before"
mv "$W/access.vault.access" "$W/access.saved"
for cmd in "key sign t --in $W/msg --out $W/sig-gone" "key public t --out $W/pub-gone" "key list" \
    "vault backup --out $W/backup-gone.json" "key create x --type ed25519 --purpose targets"; do
  AIRLOCK_ACTOR=alice run 1 "access file $W/access.vault.access is missing" "$BIN" $cmd --vault "$VA"
done
# Nor can anyone enrol a new owner into a fresh access file.
AIRLOCK_ACTOR=mallory run 1 "is missing" "$BIN" access add mallory --role owner --vault "$VA"
[ -e "$W/access.vault.access" ] && bad "an access file was re-created" || ok
for f in sig-gone pub-gone backup-gone.json; do [ -e "$W/$f" ] && bad "$f written without access control" || ok; done
sqlite3 "$W/access.vault" "SELECT name, key_id, state, hex(sealed) FROM vault_keys ORDER BY name" >"$W/keys.after"
cmp -s "$W/keys.before" "$W/keys.after" && ok || bad "vault keys changed while the access file was missing"
# An access file with no principals is refused too.
cp "$W/access.saved" "$W/access.vault.access"
sqlite3 "$W/access.vault.access" "DELETE FROM principals"
AIRLOCK_ACTOR=alice run 1 "holds no principals" "$BIN" key sign t --vault "$VA" --in "$W/msg" --out "$W/sig-gone"
AIRLOCK_ACTOR=mallory run 1 "holds no principals" "$BIN" access add mallory --role owner --vault "$VA"
# Put back, it works again.
cp "$W/access.saved" "$W/access.vault.access"
AIRLOCK_ACTOR=rel run 0 "" "$BIN" key sign t --vault "$VA" --in "$W/msg" --out "$W/sig-back"

# key URIs wherever the CLI takes a key (bundle seal --sign-key, repo init --*-key): signatures come
# from the vault, every use is in its audit log, no private key file is written anywhere
export AIRLOCK_KEY_DIR="$W/no-generated-keys"
VS="$W/sign.vault"
run 0 "" "$BIN" vault init --vault "file:$VS" "${FAST[@]}"
for k in "rel targets" "root root" "targets targets" "snapshot snapshot" "timestamp timestamp"; do
  set -- $k
  run 0 "" "$BIN" key create "$1" --vault "file:$VS" --type ed25519 --purpose "$2"
done
run 0 "" "$BIN" key public rel --vault "file:$VS" --out "$W/rel.pub"
mkdir -p "$W/app" && echo "hello" >"$W/app/index.html"
openssl genpkey -algorithm x25519 -out "$W/dev.key" 2>/dev/null
openssl pkey -in "$W/dev.key" -pubout -out "$W/dev.pub" 2>/dev/null
run 0 "signed by" "$BIN" bundle seal "$W/app" --app com.example.uri --version 1.0.0 \
  --sign-key "file:$VS#rel" --recipient "$W/dev.pub" --out "$W/app.alb"
run 0 "verified" "$BIN" bundle open "$W/app.alb" --verify-key "$W/rel.pub" --decrypt-key "$W/dev.key" --out "$W/opened"
run 0 "verified" "$BIN" bundle open "$W/app.alb" --verify-key "file:$VS#rel" --decrypt-key "$W/dev.key" --out "$W/opened2"
run 1 "" "$BIN" bundle seal "$W/app" --app com.example.uri --version 1.0.1 \
  --sign-key "file:$VS#missing" --recipient "$W/dev.pub" --out "$W/app2.alb"
run 0 "" "$BIN" audit log --vault "file:$VS" --key rel --json
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r=r if isinstance(r,list) else r.get("records",[]); assert any(x.get("operation")=="sign" for x in r), r' "$W/out" && ok || bad "bundle seal signature not in the audit log"

R="$W/repo"
run 0 "initialised" "$BIN" repo init "$R" --app com.example.uri --root-key "file:$VS#root" \
  --targets-key "file:$VS#targets" --snapshot-key "file:$VS#snapshot" --timestamp-key "file:$VS#timestamp"
grep -q "file:$VS#root" "$R/.airlock/repo.json" && ok || bad "repo.json does not record the key URI"
run 0 "" "$BIN" repo add-target "$R" "$W/app.alb"
run 0 "" "$BIN" repo publish "$R"
run 0 "" "$BIN" repo verify "$R"
[ ! -e "$AIRLOCK_KEY_DIR" ] && ok || bad "repo init wrote keys to $AIRLOCK_KEY_DIR"
if grep -rlaq "PRIVATE KEY" "$W" --exclude-dir=opened --exclude-dir=opened2 --exclude=dev.key; then
  bad "a PEM private key was written: $(grep -rla "PRIVATE KEY" "$W" --exclude=dev.key)"
else ok; fi

# key rotate --repo: new root metadata signed by the old and new root keys, published; a client that
# trusted 1.root.json (repo verify starts there) follows to 2.root.json
run 0 "root@1" "$BIN" key rotate root --vault "file:$VS" --repo "$R"
[ -f "$R/metadata/2.root.json" ] && ok || bad "no 2.root.json"
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); assert len(m["signatures"])==2, m["signatures"]' "$R/metadata/2.root.json" && ok || bad "2.root.json is not signed by old and new root keys"
run 0 "" "$BIN" repo verify "$R"
run 0 "" "$BIN" repo publish "$R"
run 0 "" "$BIN" repo verify "$R"
run 0 "" "$BIN" key list --vault "file:$VS" --json
python3 -c 'import json,sys; k={x["name"]:x["state"] for x in json.load(open(sys.argv[1]))}; assert k["root@1"]=="retired" and k["root"]=="active", k' "$W/out" && ok || bad "root@1 not retired after rotate --repo"
run 1 "retired" "$BIN" key sign root@1 --vault "file:$VS" --in "$W/msg" --out "$W/sig-retired"
run 0 "targets@1" "$BIN" key rotate targets --vault "file:$VS" --repo "$R"
run 0 "" "$BIN" repo verify "$R"
run 1 "does not use" "$BIN" key rotate rel --vault "file:$VS" --repo "$R"
unset AIRLOCK_KEY_DIR

# capgo encrypt --private-key KEY_URI: the Capgo key stays in the vault (or on a PKCS#11 token); the
# output opens with the public key through `capgo decrypt` and, as the plugin does, with the openssl tool
ZIP="$W/capgo-in.zip"
python3 -c 'import sys,zipfile; z=zipfile.ZipFile(sys.argv[1],"w"); z.writestr("index.html","<html>capgo</html>\n"); z.close()' "$ZIP"
# capgo_checks URI PUB: encrypt with the key URI, then open the output both ways with PUB
capgo_checks() {
  local uri="$1" pub="$2"
  rm -f "$W/cg.zip" "$W/cg-rt.zip" "$W/cg-plugin.zip"
  run 0 "checksum" "$BIN" capgo encrypt "$ZIP" --private-key "$uri" --out "$W/cg.zip" --json
  local ck sk
  ck=$(sed -n 's/.*"checksum": "\(.*\)".*/\1/p' "$W/out")
  sk=$(sed -n 's/.*"session_key": "\(.*\)".*/\1/p' "$W/out")
  [ "${#ck}" = 512 ] && ok || bad "capgo checksum of $uri is not one RSA-2048 block (${#ck} hex)"
  run 0 "" "$BIN" capgo decrypt "$W/cg.zip" --public-key "$pub" --session-key "$sk" --checksum "$ck" --out "$W/cg-rt.zip"
  cmp -s "$W/cg-rt.zip" "$ZIP" && ok || bad "capgo round trip with $uri differs"
  local iv_hex key_hex digest
  iv_hex=$(printf '%s' "${sk%%:*}" | base64 -d | od -An -tx1 | tr -d ' \n')
  printf '%s' "${sk#*:}" | base64 -d >"$W/cg-sk.bin"
  key_hex=$(openssl pkeyutl -verifyrecover -pubin -inkey "$pub" -pkeyopt rsa_padding_mode:pkcs1 \
    -in "$W/cg-sk.bin" | od -An -tx1 | tr -d ' \n')
  openssl enc -d -aes-128-cbc -K "$key_hex" -iv "$iv_hex" -in "$W/cg.zip" -out "$W/cg-plugin.zip"
  cmp -s "$W/cg-plugin.zip" "$ZIP" && ok || bad "plugin-style decryption of $uri output differs"
  printf "$(printf '%s' "$ck" | sed 's/../\\x&/g')" >"$W/cg-ck.bin"
  digest=$(openssl pkeyutl -verifyrecover -pubin -inkey "$pub" -pkeyopt rsa_padding_mode:pkcs1 \
    -in "$W/cg-ck.bin" | od -An -tx1 | tr -d ' \n')
  [ "$digest" = "$(sha256sum "$ZIP" | cut -d' ' -f1)" ] && ok || bad "capgo checksum of $uri does not recover to the sha256"
}
run 2 "cannot serve" "$BIN" key create cg-ed --vault "file:$VS" --type ed25519 --purpose capgo
run 0 "" "$BIN" key create capgo --vault "file:$VS" --type rsa --purpose capgo
run 0 "" "$BIN" key public capgo --vault "file:$VS" --out "$W/capgo.pub"
[ "$(openssl pkey -pubin -in "$W/capgo.pub" -noout -text 2>/dev/null | sed -n 's/.*Public-Key: (\([0-9]*\) bit).*/\1/p')" = 2048 ] \
  && ok || bad "capgo key is not RSA-2048"
capgo_checks "file:$VS#capgo" "$W/capgo.pub"
run 0 "" "$BIN" audit log --vault "file:$VS" --key capgo --json
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r=r if isinstance(r,list) else r.get("records",[]); n=sum(1 for x in r if x.get("operation")=="sign" and x.get("result")=="ok"); assert n==2, r' "$W/out" \
  && ok || bad "capgo encrypt did not record two signatures (session key, checksum) in the audit log"
# another purpose, a missing key, a suspended key: refused, nothing written
run 2 "purpose capgo" "$BIN" capgo encrypt "$ZIP" --private-key "file:$VS#rel" --out "$W/cg-bad.zip"
[ -e "$W/cg-bad.zip" ] && bad "capgo output written with a targets key" || ok
run 1 "" "$BIN" capgo encrypt "$ZIP" --private-key "file:$VS#nope" --out "$W/cg-bad.zip"
[ -e "$W/cg-bad.zip" ] && bad "capgo output written with a missing key" || ok
run 0 "suspended" "$BIN" key suspend capgo --vault "file:$VS"
run 1 "suspended" "$BIN" capgo encrypt "$ZIP" --private-key "file:$VS#capgo" --out "$W/cg-bad.zip"
[ -e "$W/cg-bad.zip" ] && bad "capgo output written with a suspended key" || ok

# key import: an existing Capgo user's key (the Capgo CLI's RSA-2048 PKCS#1 .capgo_key_v2, here the
# one the vectors were made with) moves into the vault; apps that ship its public key keep working.
# The vectors are read in place and never modified.
CV="$(cd "$(dirname "$0")" && pwd)/vectors/capgo"
CAPGO_PEM="$CV/capgo_key_v2.pem"
if [ -f "$CAPGO_PEM" ]; then
  pem_sum=$(sha256sum "$CAPGO_PEM" | cut -d' ' -f1)
  run 0 "imported file:.*#legacy" "$BIN" key import legacy --purpose capgo --from "$CAPGO_PEM" --vault "file:$VS"
  run 0 "" "$BIN" key list --vault "file:$VS" --json
  python3 -c 'import json,sys; k={x["name"]:x for x in json.load(open(sys.argv[1]))}; assert k["legacy"]["origin"]=="imported" and k["legacy"]["purpose"]=="capgo" and k["legacy"]["type"]=="rsa" and k["legacy"]["state"]=="active", k["legacy"]; assert k["rel"]["origin"]=="generated", k["rel"]' "$W/out" \
    && ok || bad "key list does not show legacy as an imported capgo key"
  # The vault's public key is the vectors' (the one apps ship).
  run 0 "" "$BIN" key public legacy --vault "file:$VS" --out "$W/legacy.pub"
  cmp -s "$W/legacy.pub" <(openssl pkey -pubin -in "$CV/pub_spki.pem" 2>/dev/null) && ok || bad "imported public key is not the vectors' public key"
  capgo_checks "file:$VS#legacy" "$CV/pub_spki.pem"
  # capgo decrypt with the app's own PKCS#1 public key, byte-exact zip
  run 0 "checksum" "$BIN" capgo encrypt "$ZIP" --private-key "file:$VS#legacy" --out "$W/legacy.zip" --json
  ck=$(sed -n 's/.*"checksum": "\(.*\)".*/\1/p' "$W/out")
  sk=$(sed -n 's/.*"session_key": "\(.*\)".*/\1/p' "$W/out")
  run 0 "" "$BIN" capgo decrypt "$W/legacy.zip" --public-key "$CV/capgo_key_v2.pub.pem" --session-key "$sk" --checksum "$ck" --out "$W/legacy-rt.zip"
  cmp -s "$W/legacy-rt.zip" "$ZIP" && ok || bad "capgo decrypt with the vectors' public key differs"
  # PKCS#8 works too (same key, same id); a taken name is a failure, not a usage error
  openssl pkcs8 -topk8 -nocrypt -in "$CAPGO_PEM" -out "$W/capgo8.pem" 2>/dev/null
  run 0 "imported" "$BIN" key import legacy8 --purpose capgo --from "$W/capgo8.pem" --vault "file:$VS" --json
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["origin"]=="imported" and j["uri"].endswith("#legacy8"), j' "$W/out" && ok || bad "key import --json"
  run 1 "already exists" "$BIN" key import legacy --purpose capgo --from "$CAPGO_PEM" --vault "file:$VS"
  # usage errors (exit 2): other purposes, a key that is not RSA-2048+, missing options
  run 2 "generated inside the store" "$BIN" key import t2 --purpose targets --from "$CAPGO_PEM" --vault "file:$VS"
  run 2 "generated inside the store" "$BIN" key import t2 --purpose root --from "$CAPGO_PEM" --vault "file:$VS"
  run 2 "purpose" "$BIN" key import t2 --purpose nope --from "$CAPGO_PEM" --vault "file:$VS"
  openssl genpkey -algorithm ed25519 -out "$W/ed.pem" 2>/dev/null
  run 2 "must be RSA" "$BIN" key import t2 --purpose capgo --from "$W/ed.pem" --vault "file:$VS"
  openssl genrsa -traditional -out "$W/rsa1024.pem" 1024 2>/dev/null || openssl genrsa -out "$W/rsa1024.pem" 1024 2>/dev/null
  run 2 "2048" "$BIN" key import t2 --purpose capgo --from "$W/rsa1024.pem" --vault "file:$VS"
  run 2 "" "$BIN" key import t2 --purpose capgo --vault "file:$VS"
  run 2 "" "$BIN" key import --purpose capgo --from "$CAPGO_PEM" --vault "file:$VS"
  run 1 "" "$BIN" key import t2 --purpose capgo --from "$W/does-not-exist.pem" --vault "file:$VS"
  openssl pkey -in "$CAPGO_PEM" -aes256 -passout pass:x -out "$W/capgo-enc.pem" 2>/dev/null
  run 1 "decrypt it first" "$BIN" key import t2 --purpose capgo --from "$W/capgo-enc.pem" --vault "file:$VS"
  run 0 "" "$BIN" key list --vault "file:$VS" --json
  python3 -c 'import json,sys; k=[x["name"] for x in json.load(open(sys.argv[1]))]; assert "t2" not in k, k' "$W/out" && ok || bad "a refused import stored a key"
  [ "$(sha256sum "$CAPGO_PEM" | cut -d' ' -f1)" = "$pem_sum" ] && ok || bad "key import modified $CAPGO_PEM"
  run 0 "" "$BIN" audit log --vault "file:$VS" --key legacy --json
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r=r if isinstance(r,list) else r.get("records",[]); assert any(x.get("operation")=="import" and x.get("result")=="ok" for x in r), r' "$W/out" \
    && ok || bad "key import not recorded as operation import in the audit log"
  if grep -aq "PRIVATE KEY" "$VS"; then bad "PEM in the vault file after import"; else ok; fi
else
  bad "no Capgo vector key at $CAPGO_PEM"
fi

# The same on a SoftHSM2 token, where the block is C_Sign(CKM_RSA_PKCS) on the token.
P11_MODULE=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so; do
  [ -e "$m" ] && P11_MODULE="$m" && break
done
if [ -n "$P11_MODULE" ] && command -v softhsm2-util >/dev/null; then
  mkdir -p "$W/softhsm/tokens"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\n' "$W/softhsm/tokens" >"$W/softhsm/softhsm2.conf"
  export SOFTHSM2_CONF="$W/softhsm/softhsm2.conf"
  softhsm2-util --init-token --free --label capgo-cli --pin 1234 --so-pin 5678 >/dev/null \
    && ok || bad "softhsm2-util cannot initialise a token"
  P11="pkcs11:token=capgo-cli"
  export AIRLOCK_PKCS11_MODULE="$P11_MODULE" AIRLOCK_PKCS11_PIN=1234 AIRLOCK_AUDIT_LOG="$W/p11.audit"
  run 0 "" "$BIN" key create capgo --vault "$P11" --type rsa --purpose capgo
  run 0 "" "$BIN" key public capgo --vault "$P11" --out "$W/capgo-p11.pub"
  capgo_checks "$P11;object=capgo" "$W/capgo-p11.pub"
  # key import onto the token: C_CreateObject, then used like a generated key
  run 0 "imported pkcs11:" "$BIN" key import legacy --purpose capgo --from "$CAPGO_PEM" --vault "$P11"
  capgo_checks "$P11;object=legacy" "$CV/pub_spki.pem"
  run 1 "already exists" "$BIN" key import legacy --purpose capgo --from "$CAPGO_PEM" --vault "$P11"
  run 2 "generated inside the store" "$BIN" key import t2 --purpose content-wrap --from "$CAPGO_PEM" --vault "$P11"
  [ "$(sha256sum "$CAPGO_PEM" | cut -d' ' -f1)" = "$pem_sum" ] && ok || bad "key import modified $CAPGO_PEM"
  unset SOFTHSM2_CONF AIRLOCK_PKCS11_MODULE AIRLOCK_PKCS11_PIN AIRLOCK_AUDIT_LOG
else
  missing_service "SoftHSM2 (softhsm2 package)"
fi

echo "keys CLI: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
