#!/usr/bin/env python3
"""Enrolled-device populations for bench/population_bench.sh (not a test).

  population.py rows FIRST END STRIDE APP
      prints CSV rows (the devices table's columns, storage/sql_rows.h kDeviceColumns) for the
      devices numbered FIRST..END-1, as `POST /v1/enroll` writes them (status active, no override
      unless the mix gives one). A device whose number is a multiple of STRIDE gets a signing key
      derived from its number, so its requests can be signed later; the others get random keys.
  population.py sqlite DB FIRST END STRIDE APP
      inserts the same rows straight into the SQLite database DB (one transaction).
  population.py lua OUT STRIDE POPULATION APP
      writes a wrk script whose requests are `POST /v1/check` of every device numbered below
      POPULATION and a multiple of STRIDE, each signed now (a signature holds for 300 s).

The mix (deterministic per device number): platform android 60 % / ios 40 %; 1 % of devices on the
"beta" channel (channel_override); last_seen 1 to 25 hours ago, so a check touches last_seen as a
real hourly poll does; in the request mix 70 % of checks come from version 0.9.0 (an update is
offered) and 30 % from 1.0.0 (up to date).
"""
import base64
import csv
import hashlib
import os
import sqlite3
import sys
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def device_id(i):
    return "be0c%04x-%04x-4000-8000-%012x" % (i >> 32 & 0xFFFF, i >> 16 & 0xFFFF, i)


def signing_key(i):
    seed = hashlib.sha256(b"airlock-bench-device-%d" % i).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def rows(first, end, stride, app):
    now = int(time.time())
    for i in range(first, end):
        h = hashlib.blake2b(b"%d" % i, digest_size=8).digest()
        if i % stride == 0:
            sign = signing_key(i).public_key().public_bytes(*RAW).hex()
        else:
            sign = os.urandom(32).hex()
        platform = "android" if h[0] < 154 else "ios"
        override = "beta" if h[1] < 3 else None
        last_seen = now - 3600 - (int.from_bytes(h[2:4], "big") % 86400)
        yield (app, device_id(i), os.urandom(32).hex(), platform, override, last_seen, sign,
               "active")


def write_lua(out, stride, population, app):
    now = str(int(time.time()))
    reqs = []
    for i in range(0, population, stride):
        h = hashlib.blake2b(b"%d" % i, digest_size=8).digest()
        dev = device_id(i)
        platform = "android" if h[0] < 154 else "ios"
        version = "0.9.0" if h[4] < 179 else "1.0.0"
        body = ('{"app_id":"%s","device_id":"%s","version":"%s","native_version":"1.0.0",'
                '"platform":"%s"}' % (app, dev, version, platform))
        canonical = "airlock-device-request-v1\nPOST\n/v1/check\n%s\n%s\n%s" % (
            dev, now, hashlib.sha256(body.encode()).hexdigest())
        sig = base64.b64encode(signing_key(i).sign(canonical.encode())).decode()
        reqs.append((dev, sig, body))
    with open(out, "w") as f:
        f.write("local reqs = {\n")
        for dev, sig, body in reqs:
            f.write('{"%s","%s",[[%s]]},\n' % (dev, sig, body))
        f.write("}\n")
        f.write("""local n = 0
function setup(thread) n = n + 1; thread:set("offset", n * 7919) end
function init(args) i = offset end
function request()
  i = i + 1
  local r = reqs[i %% #reqs + 1]
  return wrk.format("POST", "/v1/check", {["Content-Type"] = "application/json",
    ["X-Airlock-Device"] = r[1], ["X-Airlock-Timestamp"] = "%s", ["X-Airlock-Signature"] = r[2]},
    r[3])
end
""" % now)
    print(len(reqs))


def main(argv):
    cmd = argv[1]
    if cmd == "rows":
        first, end, stride, app = int(argv[2]), int(argv[3]), int(argv[4]), argv[5]
        w = csv.writer(sys.stdout, lineterminator="\n")
        for r in rows(first, end, stride, app):
            w.writerow(["" if v is None else v for v in r])
    elif cmd == "sqlite":
        db, first, end, stride, app = argv[2], int(argv[3]), int(argv[4]), int(argv[5]), argv[6]
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA busy_timeout = 10000")
        with conn:
            conn.executemany("INSERT INTO devices (app_id, device_id, public_key, platform, "
                             "channel_override, last_seen, signing_key, status) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows(first, end, stride, app))
        conn.execute("ANALYZE")
        # Fold the insert's write-ahead log into the database now, so airlockd's first write does
        # not pay for a checkpoint of this bulk load (that stalled checks beyond wrk's 2 s timeout).
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    elif cmd == "lua":
        write_lua(argv[2], int(argv[3]), int(argv[4]), argv[5])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
