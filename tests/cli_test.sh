#!/usr/bin/env bash
# End-to-end checks of the `airlock` CLI contract: exit codes (0 ok, 1 verification/security failure,
# 2 usage), the one-line error, the bytes on disk, and that nothing half-written is left behind.
#   tests/cli_test.sh BIN_DIR VECTORS_DIR
set -u
BIN="$1/airlock"
VEC="$2/capgo"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
RUN_IGNORE_CASE=1
. "$(dirname "$0")/lib.sh"

# absent PATH: nothing was created there, and no temporary leftovers sit beside it.
absent() {
  if [ -e "$1" ]; then bad "$1 exists after a failure"; else ok; fi
  local left
  left=$(find "$(dirname "$1")" -maxdepth 1 -name '.*tmp*' -o -maxdepth 1 -name '.airlock-*' | head -1)
  if [ -n "$left" ]; then bad "temporary leftover $left"; else ok; fi
}

# --- help and usage -----------------------------------------------------------------------------------
run 0 "keygen" "$BIN" --help
for sub in "keygen" "bundle seal" "bundle open" "bundle inspect" "capgo encrypt" "capgo decrypt" \
  "capgo keygen" "token" "token create" "token list" "token revoke" "app list"; do
  # shellcheck disable=SC2086
  run 0 "Usage|usage" "$BIN" $sub --help
done
run 2 "" "$BIN"
run 2 "" "$BIN" frobnicate
run 2 "type" "$BIN" keygen --type dsa --out "$W/k"
run 2 "out" "$BIN" keygen --type ed25519
absent "$W/k.key"

# --- keygen -------------------------------------------------------------------------------------------
for t in ed25519 ecdsa-p256 rsa-4096 x25519; do
  run 0 "key id" "$BIN" keygen --type "$t" --out "$W/$t"
  [ "$(stat -c %a "$W/$t.key")" = 600 ] && ok || bad "$t.key mode is $(stat -c %a "$W/$t.key")"
  grep -q "BEGIN PRIVATE KEY" "$W/$t.key" && ok || bad "$t.key is not PKCS#8 PEM"
  grep -q "BEGIN PUBLIC KEY" "$W/$t.pub" && ok || bad "$t.pub is not SPKI PEM"
  # OpenSSL itself agrees the files hold a key pair.
  diff <(openssl pkey -in "$W/$t.key" -pubout 2>/dev/null) "$W/$t.pub" >/dev/null && ok || bad "$t pair mismatch"
done
cp "$W/ed25519.key" "$W/ed25519.key.orig"
run 1 "exists" "$BIN" keygen --type ed25519 --out "$W/ed25519"
cmp -s "$W/ed25519.key" "$W/ed25519.key.orig" && ok || bad "keygen overwrote an existing key"
run 0 '"key_id"' "$BIN" keygen --type ed25519 --out "$W/json" --json

# --- bundle seal / inspect / open ---------------------------------------------------------------------
APP="$ROOT/examples/sample-app"
SEAL=("$BIN" bundle seal "$APP" --app com.example.app --version 1.0.0 --sign-key "$W/ed25519.key")
run 0 "sealed com.example.app 1.0.0" "${SEAL[@]}" --recipient "$W/x25519.pub" --recipient "$W/rsa-4096.pub" --out "$W/app.alb"
run 0 "signature: +not verified" "$BIN" bundle inspect "$W/app.alb"
run 0 "signature: +verified" "$BIN" bundle inspect "$W/app.alb" --verify-key "$W/ed25519.pub"
grep -Eq "payload: +verified" "$W/out" && ok || bad "inspect --verify-key does not say the payload was verified"
grep -Eq "payload: +not verified" <("$BIN" bundle inspect "$W/app.alb") && ok || bad "inspect without a key claims a verified payload"
run 0 '"file_count": 3' "$BIN" bundle inspect "$W/app.alb" --json
OPEN=("$BIN" bundle open --verify-key "$W/ed25519.pub" --decrypt-key "$W/x25519.key")
run 0 "every size and SHA-256 verified" "${OPEN[@]}" "$W/app.alb" --out "$W/opened"
diff -r "$APP" "$W/opened" >/dev/null && ok || bad "opened files differ from the sample app"
run 0 '"signature": "verified"' "$BIN" bundle open "$W/app.alb" --verify-key "$W/ed25519.pub" \
  --decrypt-key "$W/rsa-4096.key" --out "$W/opened-rsa" --json
diff -r "$APP" "$W/opened-rsa" >/dev/null && ok || bad "rsa recipient: opened files differ"
run 0 "" "${SEAL[@]}" --recipient "$W/x25519.pub" --out "$W/app.tar.alb" --format tar
run 0 "" "${OPEN[@]}" "$W/app.tar.alb" --out "$W/opened-tar"
diff -r "$APP" "$W/opened-tar" >/dev/null && ok || bad "tar bundle: opened files differ"
# Sealing a zip: the Capgo vector's zip.
run 0 "" "$BIN" bundle seal "$VEC/full/bundle.zip" --app com.example.otatest --version 1.0.0 \
  --sign-key "$W/ecdsa-p256.key" --recipient "$W/x25519.pub" --out "$W/zip.alb"
run 0 "" "$BIN" bundle open "$W/zip.alb" --verify-key "$W/ecdsa-p256.pub" --decrypt-key "$W/x25519.key" --out "$W/opened-zip"
diff -r "$VEC/dist" "$W/opened-zip" >/dev/null && ok || bad "zip bundle: opened files differ"

# Usage errors: exit 2, nothing written.
run 2 "version" "$BIN" bundle seal "$APP" --app com.example.app --version 1.0 --sign-key "$W/ed25519.key" --recipient "$W/x25519.pub" --out "$W/v.alb"
absent "$W/v.alb"
run 2 "" "$BIN" bundle seal "$APP" --app com.example.app --version 1.0.0 --sign-key "$W/ed25519.key" --out "$W/v.alb"
run 2 "cannot sign" "$BIN" bundle seal "$APP" --app com.example.app --version 1.0.0 --sign-key "$W/x25519.key" --recipient "$W/x25519.pub" --out "$W/v.alb"
absent "$W/v.alb"
run 1 "exists" "${SEAL[@]}" --recipient "$W/x25519.pub" --out "$W/app.alb"

# Verification failures: exit 1, one clear line, nothing at --out.
flip() {  # flip FILE OFFSET: xor one byte
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
size=$(stat -c %s "$W/app.alb")
cp "$W/app.alb" "$W/t1.alb"; flip "$W/t1.alb" $((size - 10))
run 1 "payload does not match" "${OPEN[@]}" "$W/t1.alb" --out "$W/o1"; one_error_line; absent "$W/o1"
# The same flipped payload byte, header and signature intact: inspect --verify-key reads the payload too.
run 1 "payload digest" "$BIN" bundle inspect "$W/t1.alb" --verify-key "$W/ed25519.pub"; one_error_line
cp "$W/app.alb" "$W/t2.alb"; flip "$W/t2.alb" 40
run 1 "signature" "${OPEN[@]}" "$W/t2.alb" --out "$W/o2"; one_error_line; absent "$W/o2"
head -c $((size - 100)) "$W/app.alb" >"$W/t3.alb"
run 1 "truncated" "${OPEN[@]}" "$W/t3.alb" --out "$W/o3"; one_error_line; absent "$W/o3"
cp "$W/app.alb" "$W/t4.alb"; printf 'x' >>"$W/t4.alb"
run 1 "trailing data" "${OPEN[@]}" "$W/t4.alb" --out "$W/o4"; one_error_line; absent "$W/o4"
head -c 4096 /dev/urandom >"$W/t5.alb"
run 1 "not an Airlock sealed bundle" "${OPEN[@]}" "$W/t5.alb" --out "$W/o5"; one_error_line; absent "$W/o5"
run 1 "not encrypted to" "$BIN" bundle open "$W/app.alb" --verify-key "$W/ed25519.pub" --decrypt-key "$W/json.key" --out "$W/o6"
one_error_line; absent "$W/o6"
run 1 "signed by key" "$BIN" bundle open "$W/app.alb" --verify-key "$W/json.pub" --decrypt-key "$W/x25519.key" --out "$W/o7"
one_error_line; absent "$W/o7"
run 1 "unpack|limit" "${OPEN[@]}" "$W/app.alb" --out "$W/o8" --max-unpacked-size 10; absent "$W/o8"
run 1 "" "${OPEN[@]}" "$W/missing.alb" --out "$W/o9"; one_error_line; absent "$W/o9"
echo "garbage" >"$W/garbage.pub"
run 1 "verification key" "$BIN" bundle open "$W/app.alb" --verify-key "$W/garbage.pub" --decrypt-key "$W/x25519.key" --out "$W/o10"
one_error_line; absent "$W/o10"

# A header changed and signed again by the genuine key (a buggy or hostile signing tool): a header with
# a key given twice, and one whose archive field names the other format.
u32be() { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 >> 24)) $((($1 >> 16) & 255)) $((($1 >> 8) & 255)) $(($1 & 255)))"; }
resign() {  # resign IN OUT SED_EXPRESSION
  local hlen slen
  hlen=$(od -An -tu4 --endian=big -j8 -N4 "$1" | tr -d ' ')
  slen=$(od -An -tu4 --endian=big -j $((12 + hlen)) -N4 "$1" | tr -d ' ')
  tail -c +13 "$1" | head -c "$hlen" | sed "$3" >"$W/h.json"
  { printf 'ALB1\r\n\x1a\n'; u32be "$(stat -c %s "$W/h.json")"; cat "$W/h.json"; } >"$W/head.bin"
  { printf 'airlock-bundle/v1\n'; cat "$W/head.bin"; } >"$W/msg.bin"
  local sig keyid
  sig=$(openssl pkeyutl -sign -inkey "$W/ed25519.key" -rawin -in "$W/msg.bin" | od -An -tx1 | tr -d ' \n')
  keyid=$(tail -c +$((17 + hlen)) "$1" | head -c "$slen" | sed -n 's/.*"keyid":"\([0-9a-f]*\)".*/\1/p')
  printf '{"keyid":"%s","scheme":"ed25519","sig":"%s"}' "$keyid" "$sig" >"$W/sig.json"
  { cat "$W/head.bin"; u32be "$(stat -c %s "$W/sig.json")"; cat "$W/sig.json"; tail -c +$((17 + hlen + slen)) "$1"; } >"$2"
}
resign "$W/app.alb" "$W/same.alb" 's/x/x/'
run 0 "signature: +verified" "$BIN" bundle inspect "$W/same.alb" --verify-key "$W/ed25519.pub"
resign "$W/app.alb" "$W/dup.alb" 's/^{/{"version":"9.9.9",/'
run 1 'duplicate key "version"' "$BIN" bundle inspect "$W/dup.alb" --verify-key "$W/ed25519.pub"; one_error_line
run 1 'duplicate key "version"' "${OPEN[@]}" "$W/dup.alb" --out "$W/o11"; one_error_line; absent "$W/o11"
resign "$W/app.alb" "$W/arch.alb" 's/"archive":"zip"/"archive":"tar"/'
run 0 "archive: +tar" "$BIN" bundle inspect "$W/arch.alb" --verify-key "$W/ed25519.pub"
run 1 "archive is zip but the signed header says tar" "${OPEN[@]}" "$W/arch.alb" --out "$W/o12"
one_error_line; absent "$W/o12"
resign "$W/app.alb" "$W/rar.alb" 's/"archive":"zip"/"archive":"rar"/'
run 1 "unknown archive format 'rar'" "${OPEN[@]}" "$W/rar.alb" --out "$W/o13"; one_error_line; absent "$W/o13"

# Never overwrite: an output folder holding anything, or a file, is left as it is.
mkdir -p "$W/full"; echo mine >"$W/full/keep"
run 1 "already exists" "${OPEN[@]}" "$W/app.alb" --out "$W/full"; one_error_line
[ "$(ls -A "$W/full")" = keep ] && [ "$(cat "$W/full/keep")" = mine ] && ok || bad "open changed an existing folder"
echo mine >"$W/file-out"
run 1 "already exists" "${OPEN[@]}" "$W/app.alb" --out "$W/file-out"; one_error_line
[ "$(cat "$W/file-out")" = mine ] && ok || bad "open replaced an existing file"

# --- TUF metadata: a key given twice in signed JSON -------------------------------------------------
# "version" twice in targets' signed object: a parser keeping the last value sees exactly what was
# signed, so the signature verifies; one keeping the first sees version 99. Refused before either.
R="$W/repo"
run 0 "" "$BIN" repo init "$R" --app com.example.app --key-dir "$W/repo-keys"
run 0 "" "$BIN" repo add-target "$R" "$W/app.alb"
run 0 "" "$BIN" repo publish "$R"
run 0 "verified" "$BIN" repo verify "$R"
sed -i 's/^  "_type": "targets",/  "version": 99,\n  "_type": "targets",/' "$R/metadata/2.targets.json"
grep -q '"version": 99' "$R/metadata/2.targets.json" && ok || bad "could not edit targets metadata"
before=$(find "$R" -type f -exec sha256sum {} + | sort)
run 1 'duplicate key "version"' "$BIN" repo verify "$R"; one_error_line
[ "$(find "$R" -type f -exec sha256sum {} + | sort)" = "$before" ] && ok || bad "repo verify changed the repository"

# --- capgo --------------------------------------------------------------------------------------------
CK=$(sed -n 's/.*"checksum": "\(.*\)".*/\1/p' "$VEC/full/encrypt_out_v3.json")
SK=$(sed -n 's/.*"ivSessionKey": "\(.*\)".*/\1/p' "$VEC/full/encrypt_out_v3.json")
run 0 "" "$BIN" capgo decrypt "$VEC/full/bundle_encrypted.zip" --public-key "$VEC/capgo_key_v2.pub.pem" \
  --session-key "$SK" --checksum "$CK" --out "$W/capgo.zip"
cmp -s "$W/capgo.zip" "$VEC/full/bundle.zip" && ok || bad "capgo vector does not decrypt to bundle.zip"
run 0 "checksum" "$BIN" capgo encrypt "$VEC/full/bundle.zip" --private-key "$VEC/capgo_key_v2.pem" --out "$W/enc.zip" --json
CK2=$(sed -n 's/.*"checksum": "\(.*\)".*/\1/p' "$W/out")
SK2=$(sed -n 's/.*"session_key": "\(.*\)".*/\1/p' "$W/out")
# Open our output the way the Capgo plugin does, with the openssl tool instead of our code.
IV_HEX=$(printf '%s' "${SK2%%:*}" | base64 -d | od -An -tx1 | tr -d ' \n')
printf '%s' "${SK2#*:}" | base64 -d >"$W/sk.bin"
KEY_HEX=$(openssl pkeyutl -verifyrecover -pubin -inkey "$VEC/pub_spki.pem" -pkeyopt rsa_padding_mode:pkcs1 \
  -in "$W/sk.bin" | od -An -tx1 | tr -d ' \n')
openssl enc -d -aes-128-cbc -K "$KEY_HEX" -iv "$IV_HEX" -in "$W/enc.zip" -out "$W/plugin.zip"
cmp -s "$W/plugin.zip" "$VEC/full/bundle.zip" && ok || bad "plugin-style decryption of our capgo output differs"
printf "$(printf '%s' "$CK2" | sed 's/../\\x&/g')" >"$W/ck.bin"
DIGEST=$(openssl pkeyutl -verifyrecover -pubin -inkey "$VEC/pub_spki.pem" -pkeyopt rsa_padding_mode:pkcs1 \
  -in "$W/ck.bin" | od -An -tx1 | tr -d ' \n')
[ "$DIGEST" = "$(sha256sum "$VEC/full/bundle.zip" | cut -d' ' -f1)" ] && ok || bad "capgo checksum does not recover to the zip's sha256"
run 0 "" "$BIN" capgo decrypt "$W/enc.zip" --public-key "$VEC/capgo_key_v2.pub.pem" --session-key "$SK2" --checksum "$CK2" --out "$W/rt.zip"
cmp -s "$W/rt.zip" "$VEC/full/bundle.zip" && ok || bad "capgo round trip differs"
# Never overwrite: an existing output is left as it is, for decrypt and encrypt alike.
# Refused before any work, with the plain message every command uses.
echo mine >"$W/mine.zip"
run 1 "^airlock: error: $W/mine.zip already exists$" "$BIN" capgo decrypt "$W/enc.zip" --public-key "$VEC/capgo_key_v2.pub.pem" --session-key "$SK2" --checksum "$CK2" --out "$W/mine.zip"
one_error_line
run 1 "^airlock: error: $W/mine.zip already exists$" "$BIN" capgo encrypt "$VEC/full/bundle.zip" --private-key "$VEC/capgo_key_v2.pem" --out "$W/mine.zip"
one_error_line
ln -s "$W/nowhere.zip" "$W/dangling.zip"
run 1 "^airlock: error: $W/dangling.zip already exists$" "$BIN" capgo encrypt "$VEC/full/bundle.zip" --private-key "$VEC/capgo_key_v2.pem" --out "$W/dangling.zip"
[ ! -e "$W/nowhere.zip" ] && ok || bad "capgo encrypt wrote through a dangling symlink"
[ "$(cat "$W/mine.zip")" = mine ] && ok || bad "capgo replaced an existing output"
[ -z "$(ls -A "$W" | grep '^\.mine\.zip\.tmp-')" ] && ok || bad "capgo left a temporary file"
LEGACY_CK=$(sed -n 's/.*"checksum": "\(.*\)".*/\1/p' "$VEC/full/encrypt_out_v2_legacy_checksum.json")
LEGACY_SK=$(sed -n 's/.*"ivSessionKey": "\(.*\)".*/\1/p' "$VEC/full/encrypt_out_v2_legacy_checksum.json")
run 1 "legacy" "$BIN" capgo decrypt "$VEC/full/bundle_encrypted_v2run.zip" --public-key "$VEC/capgo_key_v2.pub.pem" \
  --session-key "$LEGACY_SK" --checksum "$LEGACY_CK" --out "$W/legacy.zip"
one_error_line; absent "$W/legacy.zip"
cp "$VEC/full/bundle_encrypted.zip" "$W/tampered-capgo.zip"; chmod u+w "$W/tampered-capgo.zip"; flip "$W/tampered-capgo.zip" 100
run 1 "" "$BIN" capgo decrypt "$W/tampered-capgo.zip" --public-key "$VEC/capgo_key_v2.pub.pem" --session-key "$SK" --checksum "$CK" --out "$W/tc.zip"
one_error_line; absent "$W/tc.zip"
run 1 "" "$BIN" capgo decrypt "$VEC/full/bundle_encrypted.zip" --public-key "$VEC/capgo_key_v2.pub.pem" \
  --session-key "${SK2}" --checksum "$CK" --out "$W/wk.zip"
absent "$W/wk.zip"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$W/other.pem" 2>/dev/null
openssl pkey -in "$W/other.pem" -pubout -out "$W/other.pub.pem"
run 1 "" "$BIN" capgo decrypt "$VEC/full/bundle_encrypted.zip" --public-key "$W/other.pub.pem" --session-key "$SK" --checksum "$CK" --out "$W/ok.zip"
one_error_line; absent "$W/ok.zip"
run 2 "" "$BIN" capgo decrypt "$VEC/full/bundle_encrypted.zip" --public-key "$VEC/capgo_key_v2.pub.pem" --out "$W/x.zip"

# --- capgo keygen: Capgo's own key files (RSA-2048, PKCS#1), usable by encrypt/decrypt -------------
run 2 "--out" "$BIN" capgo keygen
run 0 "^wrote $W/ck.pem \(RSA-2048 private key, mode 0600\) and $W/ck.pub.pem" "$BIN" capgo keygen --out "$W/ck"
[ "$(stat -c %a "$W/ck.pem")" = 600 ] && ok || bad "ck.pem mode is $(stat -c %a "$W/ck.pem")"
head -1 "$W/ck.pem" | grep -qx -- "-----BEGIN RSA PRIVATE KEY-----" && ok || bad "ck.pem is not PKCS#1"
head -1 "$W/ck.pub.pem" | grep -qx -- "-----BEGIN RSA PUBLIC KEY-----" && ok || bad "ck.pub.pem is not PKCS#1"
openssl rsa -in "$W/ck.pem" -noout -text 2>/dev/null | grep -q "Private-Key: (2048 bit" && ok ||
  bad "ck.pem is not RSA-2048"
run 0 "checksum" "$BIN" capgo encrypt "$VEC/full/bundle.zip" --private-key "$W/ck.pem" --out "$W/ck-enc.zip" --json
CK3=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["checksum"])' "$W/out")
SK3=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["session_key"])' "$W/out")
run 0 "" "$BIN" capgo decrypt "$W/ck-enc.zip" --public-key "$W/ck.pub.pem" --session-key "$SK3" --checksum "$CK3" --out "$W/ck-rt.zip"
cmp -s "$W/ck-rt.zip" "$VEC/full/bundle.zip" && ok || bad "capgo keygen key does not round-trip"
# Never replaces a key: either file existing refuses, and both are left as they were.
cp "$W/ck.pem" "$W/ck.pem.before"
run 1 "^airlock: error: $W/ck.pem already exists$" "$BIN" capgo keygen --out "$W/ck"
one_error_line
cmp -s "$W/ck.pem" "$W/ck.pem.before" && ok || bad "capgo keygen replaced a private key"
echo pub >"$W/ck2.pub.pem"
run 1 "^airlock: error: $W/ck2.pub.pem already exists$" "$BIN" capgo keygen --out "$W/ck2"
[ ! -e "$W/ck2.pem" ] && [ "$(cat "$W/ck2.pub.pem")" = pub ] && ok || bad "capgo keygen left half a pair"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
