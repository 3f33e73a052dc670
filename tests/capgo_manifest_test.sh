#!/usr/bin/env bash
# Issue 15, "Capgo manifest mode": `airlock release publish --capgo --capgo-manifest` against a real
# airlockd on 127.0.0.1; the /updates reply a manifest-capable plugin (8.51.14) gets is opened with
# the plugin's own algorithm (DownloadService.java: file_hash recovered with the app's public key,
# each file downloaded, AES-128-CBC with the bundle's session key and IV, ".br" names brotli-
# decompressed, the SHA-256 of the result compared), implemented here with the openssl and brotli
# command-line tools rather than Airlock's code. Every file must equal the published one; a file
# altered on the server's disk must fail the plugin's checksum.
#   tests/capgo_manifest_test.sh BIN_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/lib.sh"
server_test_setup "capgo manifest test" "$1" "$2"
require_tools python3 curl openssl brotli

init_server
start_server
S=(--server "$SERVER" --token "$TOKEN")
APP=com.example.capgomanifest
run 0 "created app $APP" "$A" app create "$APP" "${S[@]}"
run 0 "" "$A" channel create "$APP" production "${S[@]}" --default

mkdir -p "$W/dist/assets"
python3 - "$W/dist" <<'PY'
import sys, os
d = sys.argv[1]
open(f"{d}/index.html", "w").write("<html><script src=assets/app.js></script></html>\n")
open(f"{d}/assets/app.js", "w").write("".join(f"function f{i}(){{return {i};}}\n" for i in range(3000)))
open(f"{d}/assets/logo.bin", "wb").write(os.urandom(20000))  # incompressible: stays plain
PY
run 2 "--capgo-manifest needs --capgo" "$A" release publish "$APP" "${S[@]}" --version 1.0.0 \
  --from "$W/dist" --channel production --capgo-manifest
run 0 "releases/1.0.0/capgo/ \(3 files, " "$A" release publish "$APP" "${S[@]}" --version 1.0.0 \
  --from "$W/dist" --channel production --capgo --capgo-manifest

# The app's public key as the plugin holds it (PKCS#1), and as SPKI for openssl.
CAPGO_PUB="$XDG_CONFIG_HOME/airlock/apps/$APP.capgo.pub.pem"
openssl rsa -RSAPublicKey_in -in "$CAPGO_PUB" -pubout -out "$W/pub.pem" 2>/dev/null &&
  ok || bad "cannot read $CAPGO_PUB"
KEY_ID=$(grep -v -- '-----' "$CAPGO_PUB" | tr -d '\n' | cut -c1-20)

# plugin.py [TAMPER]: the plugin's manifest download; prints "ok N" or the first failure.
cat >"$W/plugin.py" <<'PY'
import json, hashlib, http.client, os, subprocess, sys, tempfile, urllib.request
server, app, key_id, pub, dist, work = sys.argv[1:7]
host, port = server.split("//")[1].split(":")
body = {"platform": "android", "device_id": "2f0c5b6e-1a7d-4c1e-9b3a-5d6e7f8a9b0c", "app_id": app,
        "custom_id": "", "version_build": "0.9", "version_code": "1", "version_os": "14",
        "version_name": "builtin", "plugin_version": "8.51.14", "is_emulator": False,
        "is_prod": True, "install_source": "com.android.vending", "defaultChannel": "",
        "key_id": key_id}
c = http.client.HTTPConnection(host, int(port), timeout=10)
c.request("POST", "/updates", body=json.dumps(body), headers={"Content-Type": "application/json"})
reply = json.loads(c.getresponse().read())
assert reply.get("version") == "1.0.0" and reply.get("manifest"), reply

def recover(block_hex):  # CryptoCipher.decryptChecksum / decryptRSA: PKCS#1 type 1 with the public key
    f = os.path.join(work, "block")
    open(f, "wb").write(bytes.fromhex(block_hex))
    return subprocess.run(["openssl", "pkeyutl", "-verifyrecover", "-pubin", "-inkey", pub,
                           "-pkeyopt", "rsa_padding_mode:pkcs1", "-in", f],
                          check=True, capture_output=True).stdout

import base64
iv_b64, key_b64 = reply["session_key"].split(":")
aes_key = recover(base64.b64decode(key_b64).hex()).hex()
iv = base64.b64decode(iv_b64).hex()
names = set()
for e in reply["manifest"]:
    name = e["file_name"]
    expected = recover(e["file_hash"]).hex()
    enc = os.path.join(work, "enc")
    urllib.request.urlretrieve(e["download_url"], enc)
    dec = os.path.join(work, "dec")
    subprocess.run(["openssl", "enc", "-d", "-aes-128-cbc", "-K", aes_key, "-iv", iv, "-in", enc,
                    "-out", dec], check=True, capture_output=True)
    target = name[:-3] if name.endswith(".br") else name
    if name.endswith(".br"):
        out = os.path.join(work, "plain")
        subprocess.run(["brotli", "-d", "-f", "-o", out, dec], check=True, capture_output=True)
        dec = out
    data = open(dec, "rb").read()
    if hashlib.sha256(data).hexdigest() != expected:
        print(f"checksum fail {name}")
        sys.exit(1)
    if data != open(os.path.join(dist, target), "rb").read():
        print(f"differs {target}")
        sys.exit(1)
    names.add(name)
print("ok", len(names), " ".join(sorted(names)))
PY
mkdir -p "$W/plugin"
run 0 "^ok 3 assets/app.js.br assets/logo.bin index.html$" python3 "$W/plugin.py" "$SERVER" "$APP" \
  "$KEY_ID" "$W/pub.pem" "$W/dist" "$W/plugin"

# A file altered on the server's disk: the plugin's checksum refuses it.
SHA=$(python3 - "$SERVER" "$APP" <<'PY'
import json, sys, urllib.request
base = f"{sys.argv[1]}/tuf/{sys.argv[2]}"
get = lambda p: json.load(urllib.request.urlopen(f"{base}/{p}"))["signed"]
snap = get("timestamp.json")["meta"]["snapshot.json"]["version"]
tv = get(f"{snap}.snapshot.json")["meta"]["targets.json"]["version"]
print(get(f"{tv}.targets.json")["targets"]["releases/1.0.0/capgo/index.html"]["hashes"]["sha256"])
PY
)
BLOB="$W/data/blobs/${SHA:0:2}/$SHA"
python3 - "$BLOB" <<'PY'
import sys
from subprocess import run
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[0] ^= 1; open(p, "wb").write(b)
PY
python3 "$W/plugin.py" "$SERVER" "$APP" "$KEY_ID" "$W/pub.pem" "$W/dist" "$W/plugin" >"$W/out" 2>&1
grep -Eq "checksum fail index.html|bad decrypt" "$W/out" && ok || bad "altered file not refused: $(cat "$W/out")"

echo "capgo.manifest: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
