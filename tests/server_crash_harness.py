#!/usr/bin/env python3
"""Crash consistency of the real airlockd (issue 16, "A faulty fleet").

Driven by tests/server_crash_test.sh, which starts airlockd on 127.0.0.1 (SQLite or PostgreSQL),
creates an app with a Capgo key, publishes 1.0.0, enrolls a device and writes SPEC (JSON). Then,
AIRLOCK_CRASH_ITERATIONS times (default 50): one operation is started through the real clients

  publish   `airlock release publish --capgo` (seal, upload two blobs, sign targets, POST the
            release); a version whose publish was killed is retried until it is published
  upload    `POST /api/v1/blobs` of 3 MiB of fresh random bytes (curl)
  rollout   `airlock rollout set --percent P`, `pause` or `resume`
  rollback  `airlock release rollback --to V` (re-signs targets, moves the channel back)

and airlockd is SIGKILLed after a random delay (uniform over the operation's unkilled duration,
measured in a first calibration pass; a kill after the operation ended is a kill at rest), then
restarted with the same flags on the same port. After every restart, before any write:

  - the store: PRAGMA integrity_check and foreign_key_check (SQLite); on both stores every
    release's bundle and Capgo blob exists in DATA/blobs with its recorded SHA-256 and length,
    every channel's current release exists, and the admin API (release list, channel) says the
    same as the tables;
  - blobs: every file in DATA/blobs is named by its content's SHA-256 (no half blob is visible);
    no upload-* file survives the restart;
  - TUF: timestamp -> snapshot -> targets on disk are coherent, their versions never go back,
    every release's target is listed with its hash and length, and `airlock-agent tuf-client
    refresh` (the pinned root, the trusted metadata kept across restarts) verifies the served
    repository;
  - devices: /v1/check (`airlock-agent check`) offers nothing or the channel's current release,
    Capgo /updates answers nothing or the channel's current release with its Capgo blob, and the
    offered blob downloads with its hash;
  - durability: what a client was told succeeded (exit 0) is there after the restart; what was
    killed is either wholly there or wholly absent (channel state is the one before or after).

At the end, unkilled: a new publish and a rollout to 100 % succeed and the device is offered it.
"""
import atexit
import hashlib
import http.client
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

spec = json.load(open(sys.argv[1]))
W = spec["work"]
DATA = os.path.join(W, "data")
APP = spec["app"]
URL = spec["server"]
HOST, PORT = URL.removeprefix("http://").split(":")
ITERATIONS = int(os.environ.get("AIRLOCK_CRASH_ITERATIONS", "50"))
SEED = int(os.environ.get("AIRLOCK_CRASH_SEED", str(random.SystemRandom().randrange(1 << 32))))
rng = random.Random(SEED)
AUTH = {"Authorization": "Bearer " + spec["token"]}
SRV = ["--server", URL, "--token", spec["token"]]
print(f"server.crash.{spec['store']}: seed {SEED} (AIRLOCK_CRASH_SEED={SEED} replays), "
      f"{ITERATIONS} kills", flush=True)


class Failure(Exception):
    pass


def request(method, path, body=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection(HOST, int(PORT), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def admin(path):
    status, body = request("GET", f"/api/v1/apps/{APP}{path}", headers=AUTH)
    if status != 200:
        raise Failure(f"GET {path}: {status} {body[:200]!r}")
    return json.loads(body)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---- airlockd ----
server = {"proc": None}
LOG = open(os.path.join(W, "airlockd.log"), "ab")


def start_server():
    proc = subprocess.Popen(spec["airlockd"], stdin=subprocess.DEVNULL, stdout=LOG, stderr=LOG)
    open(os.path.join(W, "airlockd.pid"), "w").write(str(proc.pid))
    server["proc"] = proc
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failure(f"airlockd exited {proc.returncode} at start (see {W}/airlockd.log)")
        try:
            if request("GET", "/healthz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise Failure("airlockd did not answer /healthz within 60 s of a restart")


def stop_server():
    proc = server["proc"]
    if proc is not None and proc.poll() is None:
        proc.terminate()
        proc.wait()


atexit.register(stop_server)


def kill_server():
    proc = server["proc"]
    proc.send_signal(signal.SIGKILL)
    proc.wait()


# ---- operations ----
state = {"published": ["1.0.0"], "next": 1, "pending": None}  # pending: a version killed mid-publish


def op_publish():
    version = state["pending"] or f"1.0.{state['next']}"
    cmd = [spec["airlock"], "release", "publish", APP, *SRV, "--version", version, "--from",
           spec["src"], "--channel", "production", "--capgo", "--encrypt", "none"]
    if rng.random() < 0.5:
        cmd.append("--rollback-target")
    return cmd, ("publish", version)


def op_upload():
    path = os.path.join(W, "upload.bin")
    with open(path, "wb") as f:
        f.write(os.urandom(3 << 20))
    cmd = ["curl", "-sS", "-f", "-o", "/dev/null", "-H", "Authorization: Bearer " + spec["token"],
           "-H", "Content-Type: application/octet-stream", "--data-binary", "@" + path,
           URL + "/api/v1/blobs"]
    return cmd, ("upload", sha256_file(path))


def op_rollout():
    r = rng.random()
    if r < 0.6:
        percent = rng.choice([0, 10, 50, 90, 100])
        return ([spec["airlock"], "rollout", "set", APP, *SRV, "--channel", "production",
                 "--percent", str(percent)], ("rollout", percent))
    which = "pause" if r < 0.8 else "resume"
    return ([spec["airlock"], "rollout", which, APP, *SRV, "--channel", "production"],
            (which, None))


def op_rollback():
    channel = admin("/channels/production")
    current = channel["current_version"]
    older = [v for v in state["published"] if key(v) < key(current)] if current else []
    if not older:
        return op_publish()
    to = rng.choice(older)
    return ([spec["airlock"], "release", "rollback", APP, *SRV, "--channel", "production", "--to",
             to], ("rollback", to))


def key(version):
    return tuple(int(x) for x in version.split("."))


OPS = [("publish", op_publish, 0.45), ("upload", op_upload, 0.15), ("rollout", op_rollout, 0.25),
       ("rollback", op_rollback, 0.15)]


def pick_op():
    r = rng.random()
    for name, fn, weight in OPS:
        if r < weight:
            return name, fn
        r -= weight
    return OPS[0][0], OPS[0][1]


# ---- the checks ----
last_versions = {"timestamp": 0, "snapshot": 0, "targets": 0}


def read_json(path):
    with open(path) as f:
        return json.load(f)


def tuf_on_disk():
    """The targets map timestamp.json leads to, checking the chain and that no version went back."""
    d = os.path.join(DATA, "tuf", APP)
    ts = read_json(os.path.join(d, "timestamp.json"))["signed"]
    sv = ts["meta"]["snapshot.json"]["version"]
    snap_path = os.path.join(d, f"{sv}.snapshot.json")
    if not os.path.exists(snap_path):
        raise Failure(f"timestamp v{ts['version']} names a missing snapshot v{sv}")
    snap = read_json(snap_path)["signed"]
    tv = snap["meta"]["targets.json"]["version"]
    targets_path = os.path.join(d, f"{tv}.targets.json")
    if not os.path.exists(targets_path):
        raise Failure(f"snapshot v{sv} names a missing targets v{tv}")
    now = {"timestamp": ts["version"], "snapshot": sv, "targets": tv}
    for role, v in now.items():
        if v < last_versions[role]:
            raise Failure(f"{role} went back from v{last_versions[role]} to v{v}")
    last_versions.update(now)
    return read_json(targets_path)["signed"]["targets"]


def blob_path(sha):
    return os.path.join(DATA, "blobs", sha[:2], sha)


def check_blob(sha, length, what):
    p = blob_path(sha)
    if not os.path.isfile(p):
        raise Failure(f"{what}: blob {sha} is missing")
    if os.path.getsize(p) != length or sha256_file(p) != sha:
        raise Failure(f"{what}: blob {sha} has {os.path.getsize(p)} bytes of another hash")


_hashed = {}


def check_all_blobs():
    root = os.path.join(DATA, "blobs")
    for d, _, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            st = os.stat(p)
            k = (st.st_ino, st.st_size, st.st_mtime_ns)
            if _hashed.get(p) != k:
                if sha256_file(p) != name:
                    raise Failure(f"{p} does not hold the bytes its name says (a half blob)")
                _hashed[p] = k
    leftovers = [n for n in os.listdir(os.path.join(DATA, "uploads")) if n.startswith("upload-")]
    if leftovers:
        raise Failure(f"uploads left after a restart: {leftovers}")


def db_rows():
    """(releases {version: (sha256, length, capgo_sha256, capgo_length)}, channels {name: current})
    read from the store directly."""
    if spec["store"] == "sqlite":
        db = sqlite3.connect(f"file:{DATA}/airlock.db?mode=ro", uri=True, timeout=10)
        try:
            ok = db.execute("PRAGMA integrity_check").fetchall()
            if ok != [("ok",)]:
                raise Failure(f"PRAGMA integrity_check: {ok}")
            fk = db.execute("PRAGMA foreign_key_check").fetchall()
            if fk:
                raise Failure(f"PRAGMA foreign_key_check: {fk}")
            rel = db.execute("SELECT version, sha256, length, capgo_sha256, capgo_length "
                             "FROM releases WHERE app_id = ?", (APP,)).fetchall()
            ch = db.execute("SELECT name, current_version FROM channels WHERE app_id = ?",
                            (APP,)).fetchall()
        finally:
            db.close()
    else:
        def psql(sql):
            p = subprocess.run(["psql", "-X", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1",
                                spec["database"], "-c", sql], capture_output=True, text=True,
                               timeout=30)
            if p.returncode != 0:
                raise Failure(f"psql: {p.stderr.strip()}")
            return [tuple(line.split("|")) for line in p.stdout.splitlines() if line]
        rel = [(v, s, int(n), cs or None, int(cn) if cn else None) for v, s, n, cs, cn in psql(
            f"SELECT version, sha256, length, capgo_sha256, capgo_length FROM releases "
            f"WHERE app_id = '{APP}'")]
        ch = [(n, c or None) for n, c in psql(
            f"SELECT name, current_version FROM channels WHERE app_id = '{APP}'")]
    return {r[0]: tuple(r[1:]) for r in rel}, dict(ch)


def check_at_rest(expect):
    releases, channels = db_rows()
    listed = {r["version"]: r for r in admin("/releases")["releases"]}
    if set(listed) != set(releases):
        raise Failure(f"the admin API lists {sorted(listed)}, the store holds {sorted(releases)}")
    targets = tuf_on_disk()
    for v, (sha, length, capgo_sha, capgo_length) in releases.items():
        r = listed[v]
        if (r["sha256"], r["length"]) != (sha, length):
            raise Failure(f"release {v}: the admin API and the store disagree")
        check_blob(sha, length, f"release {v}")
        if capgo_sha:
            check_blob(capgo_sha, capgo_length, f"release {v} (Capgo)")
        t = targets.get(r["target"])
        if t is None or t["hashes"]["sha256"] != sha or t["length"] != length:
            raise Failure(f"release {v}: its target {r['target']} is not in the served targets")
    # A kill between the TUF write and the store's commit leaves a target no release names: devices
    # are not offered it (/v1/check and /updates read the store), and the retried publish signs the
    # version again. Counted, to show that the harness reaches that point.
    orphans = {t.get("custom", {}).get("version") for t in targets.values()} - set(releases)
    for v in orphans - seen_orphans:
        seen_orphans.add(v)
        stats["kills between the TUF write and the commit"] += 1
    for name, current in channels.items():
        if current is not None and current not in releases:
            raise Failure(f"channel {name} points at {current}, which is not a release")
    check_all_blobs()
    channel = admin("/channels/production")
    if channel["current_version"] != channels["production"]:
        raise Failure("the admin API and the store disagree on the channel's release")

    # Durability: what succeeded is there; what was killed is wholly there or wholly absent.
    published_ok = [v for v in state["published"] if v not in releases]
    if published_ok:
        raise Failure(f"acknowledged releases lost: {published_ok}")
    for field, allowed in expect.items():
        if channel[field] not in allowed:
            raise Failure(f"channel {field} is {channel[field]!r}, expected one of {allowed}")

    # The pinned root verifies the served repository (and no rollback of it since the last run).
    p = subprocess.run([spec["agent"], "tuf-client", "refresh", "--metadata-dir", spec["tuf_md"],
                        "--metadata-url", f"{URL}/tuf/{APP}"], capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        raise Failure(f"tuf-client refresh exited {p.returncode}: {p.stderr.strip()}")

    # /v1/check: nothing, or the channel's release.
    current = channel["current_version"]
    p = subprocess.run([spec["agent"], "--config", spec["agent_config"], "check"],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise Failure(f"airlock-agent check exited {p.returncode}: {p.stderr.strip()}")
    out = p.stdout.strip()
    if out.startswith("offered "):
        offered = out.split()[1]
        if offered != current or channel["paused"]:
            raise Failure(f"/v1/check offered {offered}; the channel: {channel}")
        sha = listed[offered]["sha256"]
        status, body = request("GET", f"/v1/blobs/{sha}")
        if status != 200 or hashlib.sha256(body).hexdigest() != sha:
            raise Failure(f"/v1/blobs/{sha} answered {status} with other bytes")
    elif not out.startswith("no update"):
        raise Failure(f"airlock-agent check said: {out}")

    # Capgo /updates from a device never seen (the per-device rate limit stays out of the way).
    body = {"platform": "android", "device_id": str(uuid.uuid4()), "app_id": APP, "custom_id": "",
            "version_build": "1.0", "version_code": "1", "version_os": "14",
            "version_name": "builtin", "plugin_version": "8.51.14", "is_emulator": False,
            "is_prod": True, "install_source": "com.android.vending", "defaultChannel": "",
            "key_id": spec["capgo_key_id"]}
    status, text = request("POST", "/updates", json.dumps(body),
                        {"Content-Type": "application/json"})
    reply = json.loads(text) if text else {}
    if status != 200:
        raise Failure(f"/updates answered {status}: {text[:200]!r}")
    if "version" in reply and "url" in reply:
        if reply["version"] != current or channel["paused"]:
            raise Failure(f"/updates offered {reply['version']}; the channel: {channel}")
        capgo_sha = releases[current][2]
        path = reply["url"].removeprefix(URL)
        status, blob = request("GET", path)
        if status != 200 or hashlib.sha256(blob).hexdigest() != capgo_sha:
            raise Failure(f"/updates' {reply['url']} answered {status} with other bytes")
    elif "error" not in reply:
        raise Failure(f"/updates answered neither a release nor an error: {reply}")
    return channel


# ---- the loop ----
def run_op(cmd, delay, kill):
    """Runs cmd; kills airlockd after delay (if kill). Returns (exit code, output, kill landed in
    the operation)."""
    t0 = time.monotonic()
    out = open(os.path.join(W, "op.out"), "w")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    inside = True
    if kill:
        try:
            proc.wait(timeout=delay)
            inside = False
            time.sleep(max(0.0, delay - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            pass
        kill_server()
    try:
        code = proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise Failure(f"{cmd[:3]} did not end within 120 s of the kill")
    out.close()
    return code, open(os.path.join(W, "op.out")).read(), inside, time.monotonic() - t0


def expectation(op, channel):
    """The channel states allowed after op (killed or not): before and after."""
    kind, arg = op
    e = {"current_version": [channel["current_version"]],
         "rollout_percent": [channel["rollout_percent"]], "paused": [channel["paused"]]}
    if kind == "publish":
        e["current_version"].append(arg)
    elif kind == "rollback":
        e["current_version"].append(arg)
    elif kind == "rollout":
        e["rollout_percent"].append(arg)
    elif kind in ("pause", "resume"):
        e["paused"].append(kind == "pause")
    return e


def apply_success(op, e):
    """After op exited 0: only the after state is allowed."""
    kind, arg = op
    if kind == "publish":
        state["published"].append(arg)
        state["pending"] = None
        state["next"] = max(state["next"], key(arg)[2] + 1)
        e["current_version"] = [arg]
    elif kind == "rollback":
        e["current_version"] = [arg]
    elif kind == "rollout":
        e["rollout_percent"] = [arg]
    elif kind in ("pause", "resume"):
        e["paused"] = [kind == "pause"]


kills = 0
histogram = {}
seen_orphans = set()
stats = {"kills between the TUF write and the commit": 0}
durations = {}
started = time.monotonic()
try:
    start_server()
    channel = check_at_rest({})
    # Calibration: each kind once, unkilled, to learn how long it takes.
    for name, fn, _ in OPS:
        cmd, op = fn()
        e = expectation(op, channel)
        code, out, _, took = run_op(cmd, 0, False)
        if code != 0:
            raise Failure(f"unkilled {op}: exit {code}: {out.strip()}")
        durations[name] = took
        apply_success(op, e)
        channel = check_at_rest(e)
    print("server.crash: an unkilled operation took " +
          ", ".join(f"{k} {v:.2f} s" for k, v in durations.items()), flush=True)
    while kills < ITERATIONS:
        name, fn = pick_op()
        cmd, op = fn()
        name = op[0] if op[0] in durations else name
        e = expectation(op, channel)
        delay = rng.uniform(0, 1.1 * durations.get(name, durations["publish"]))
        code, out, inside, _ = run_op(cmd, delay, True)
        kills += 1
        where = f"{op[0]}, " + ("during" if inside else "after it ended")
        histogram[where] = histogram.get(where, 0) + 1
        if code == 0:
            apply_success(op, e)
        elif not inside:
            raise Failure(f"{op} failed before any kill: exit {code}: {out.strip()}")
        elif op[0] == "publish":
            state["pending"] = op[1]
        start_server()
        try:
            channel = check_at_rest(e)
        except Failure as f:
            raise Failure(f"after kill {kills} ({where}, {delay:.3f} s): {f}") from None
        if op[0] == "publish" and code != 0 and op[1] in db_rows()[0]:
            # The kill landed after the commit but before the client heard: published.
            state["published"].append(op[1])
            state["pending"] = None
            state["next"] = key(op[1])[2] + 1
    # Unkilled at the end: the server still publishes, and the device is offered the release.
    subprocess.run([spec["airlock"], "rollout", "resume", APP, *SRV, "--channel", "production"],
                   check=True, capture_output=True, timeout=60)
    cmd, op = op_publish()
    cmd = [*cmd[:-1]] if cmd[-1] == "--rollback-target" else cmd
    e = expectation(op, channel)
    code, out, _, _ = run_op(cmd, 0, False)
    if code != 0:
        raise Failure(f"the final publish of {op[1]} exited {code}: {out.strip()}")
    apply_success(op, e)
    subprocess.run([spec["airlock"], "rollout", "set", APP, *SRV, "--channel", "production",
                    "--percent", "100"], check=True, capture_output=True, timeout=60)
    check_at_rest({"current_version": [op[1]], "rollout_percent": [100], "paused": [False]})
    p = subprocess.run([spec["agent"], "--config", spec["agent_config"], "check"],
                       capture_output=True, text=True, timeout=60)
    if not p.stdout.startswith(f"offered {op[1]} on channel production"):
        raise Failure(f"after the final publish of {op[1]} the device was told: "
                      f"{p.stdout.strip()} {p.stderr.strip()}")
except Failure as f:
    print(f"FAIL: {f}\nserver.crash: seed {SEED}, after {kills} kills; the last client output:\n"
          f"{open(os.path.join(W, 'op.out')).read() if os.path.exists(os.path.join(W, 'op.out')) else ''}")
    sys.exit(1)

print(f"server.crash.{spec['store']}: {kills} kills in {time.monotonic() - started:.1f} s, "
      f"{len(state['published'])} releases published; where the kills landed:")
for where, n in sorted(histogram.items(), key=lambda kv: -kv[1]):
    print(f"  {where:28s} {n}")
for k, v in stats.items():
    print(f"server.crash.{spec['store']}: {k}: {v}")
print(f"server.crash.{spec['store']}: passed")
