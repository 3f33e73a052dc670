#!/usr/bin/env python3
"""Crash consistency of the real airlock-agent binary (issue 11, "Crash consistency").

Driven by tests/agent_crash_test.sh, which starts airlockd on 127.0.0.1, publishes the releases
(each on its own channel, so that a device walks from one to the next) and writes SPEC (JSON). Then:

  rounds: the device starts from its built-in release (journal, slots and downloads removed; its
  identity, trusted metadata and report queue kept) and walks the releases in order, one phase
  per release: `airlock-agent update` with that release's channel is started and SIGKILLed (its
  whole process group: the restart command and the app's `started`/`confirm` die with it) after a
  random delay, again and again, until one update finishes by itself. The app (tests/agent_app.sh)
  confirms a healthy release, crashes at every start of a release holding `crash` (a crash_loop
  rollback) and, in some phases, never confirms (a health_timeout rollback).

After every kill, with no agent command run yet, `install_dir/current` must resolve to a complete
release whose files are byte-identical to one published release's source files (or the built-in).
Then `airlock-agent status` (recovery) must succeed and leave no staging, trash or stray slot, every
slot must be byte-identical to its release's sources, and `current` to the release status names.
When a phase's update finishes, the releases remembered as failed may only be failed legitimately:
never confirmed (health_timeout, or crash_loop for the crashing release). At the end, without
kills, the device converges to the newest release not legitimately failed, confirmed.

A first round without kills measures how long each phase's update takes; the kill delays are then
uniform in [0, 0.85 x that] (plus the health timeout in a phase whose app never confirms; widened
after 5 kills in one phase). They are seeded: AIRLOCK_CRASH_SEED replays the sequence of delays
(not the machine's timing). Where each kill landed (the journal's state after the kill) is
printed as a histogram.
"""
import hashlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

spec = json.load(open(sys.argv[1]))
AGENT = spec["agent"]
DEV = spec["install_dir"]
BUILTIN = spec["builtin_dir"]
NO_CONFIRM = spec["no_confirm_flag"]
RELEASES = spec["releases"]  # [{version, config, src, crashes}], oldest first
ITERATIONS = int(os.environ.get("AIRLOCK_CRASH_ITERATIONS", "200"))
SEED = int(os.environ.get("AIRLOCK_CRASH_SEED", str(random.SystemRandom().randrange(1 << 32))))
LEGIT = {"health_timeout", "crash_loop"}  # reasons a release is failed without any fault
rng = random.Random(SEED)
print(f"agent.crash: seed {SEED} (AIRLOCK_CRASH_SEED={SEED} replays), {ITERATIONS} kills",
      flush=True)


class Failure(Exception):
    pass


_hashes = {}  # (dev, inode, size, mtime, ctime) -> sha256: a slot's files are hashed once


def file_hash(p):
    st = os.stat(p)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in _hashes:
        with open(p, "rb") as f:
            _hashes[key] = hashlib.sha256(f.read()).hexdigest()
    return _hashes[key]


def tree(root):
    """{relative path: sha256} of every file under root; symlinks and special files are errors."""
    out = {}
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(d, name)
            if os.path.islink(p):
                raise Failure(f"{p} is a symlink")
        for name in files:
            p = os.path.join(d, name)
            out[os.path.relpath(p, root)] = file_hash(p)
    return out


SOURCES = {r["version"]: tree(r["src"]) for r in RELEASES}
SOURCES["builtin"] = tree(BUILTIN)


def identify(root):
    """The version whose published files root holds byte for byte, or a Failure."""
    t = tree(root)
    for version, files in SOURCES.items():
        if t == files:
            return version
    raise Failure(f"{root} matches no published release: {sorted(t)[:5]} ...")


def current_version(may_be_absent):
    cur = os.path.join(DEV, "current")
    if not os.path.lexists(cur):
        if may_be_absent:
            return None
        raise Failure("current is absent after an agent command ran")
    target = os.readlink(cur)
    if target != BUILTIN and not target.startswith("releases/"):
        raise Failure(f"current -> {target}")
    resolved = os.path.realpath(cur)
    if not os.path.isdir(resolved):
        raise Failure(f"current -> {target}, not a directory")
    version = identify(resolved)
    if (target == BUILTIN) != (version == "builtin"):
        raise Failure(f"current -> {target} holds {version}'s files")
    if version != "builtin" and not os.path.basename(target).startswith(version + "-"):
        raise Failure(f"current -> {target} holds {version}'s files")
    return version


def agent(config, *args, timeout=120):
    p = subprocess.run([AGENT, "--config", config, *args], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def status(config):
    code, out, err = agent(config, "status", "--json")
    if code != 0:
        raise Failure(f"status exited {code}: {err.strip()}")
    return json.loads(out)


def check_at_rest(config):
    """After an agent command: no staging survives, every slot is whole, current is status's."""
    s = status(config)
    releases = os.path.join(DEV, "releases")
    names = sorted(os.listdir(releases)) if os.path.isdir(releases) else []
    stray = [n for n in names if n.startswith(".")]
    if stray or os.path.lexists(os.path.join(DEV, ".current.tmp")):
        raise Failure(f"left after recovery: {stray} {os.listdir(DEV)}")
    named = {s["release"], s["last_good_release"]} - {""}
    extra = [n for n in names if n not in named]
    if len(extra) > (1 if s["state"] == "staged" else 0):
        raise Failure(f"slots {names}, status names {sorted(named)} (state {s['state']})")
    for n in names:
        v = identify(os.path.join(releases, n))
        if not n.startswith(v + "-"):
            raise Failure(f"slot {n} holds {v}'s files")
    v = current_version(False)
    want = s["version"] if s["release"] else "builtin"
    if v != want:
        raise Failure(f"current holds {v}, status says {want} ({s})")
    for f in s["failed"]:
        if f["reason"] not in LEGIT:
            raise Failure(f"release {f['release']} failed with {f['reason']}: {s}")
    return s


def journal_state():
    """Where the kill landed, read from the journal (for the histogram only)."""
    try:
        db = sqlite3.connect(f"file:{DEV}/agent.db?mode=ro", uri=True, timeout=1)
        try:
            state = db.execute("SELECT state FROM agent_state WHERE id = 1").fetchone()[0]
        finally:
            db.close()
    except Exception:  # noqa: BLE001 - a histogram label, not a check
        return "opening"
    if state in ("confirmed", "idle"):
        downloads = os.path.join(DEV, "downloads")
        parts = os.listdir(downloads) if os.path.isdir(downloads) else []
        return f"{state}, downloading" if parts else f"{state}, checking"
    return state


def reset_device():
    for name in ("agent.db", "agent.db-wal", "agent.db-shm", ".lock", "current", ".current.tmp"):
        p = os.path.join(DEV, name)
        if os.path.lexists(p):
            os.remove(p)
    for name in ("releases", "downloads"):
        shutil.rmtree(os.path.join(DEV, name), ignore_errors=True)


def start_update(config):
    log = open(os.path.join(spec["work"], "update.out"), "w")
    return subprocess.Popen([AGENT, "--config", config, "update"], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True), log


def finished_update_ok(release, code, out):
    """A phase's update that finished by itself: installed, or failed legitimately."""
    v = release["version"]
    if code == 0 and (f"installed and confirmed {v}" in out or f"up to date on {v}" in out):
        return
    reasons = "|".join(sorted(LEGIT))
    pattern = rf"(rolled back {re.escape(v)} \(({reasons})\)|failed before \(({reasons})\))"
    if code == 1 and re.search(pattern, out):
        return
    raise Failure(f"update for {v} exited {code}: {out.strip()}")


kills = 0
histogram = {}
estimate = {}  # release version -> seconds its update took from scratch, unkilled (calibration)
HEALTH_TIMEOUT = float(spec["health_timeout_seconds"])
rounds = 0
spent = {"killed updates": 0.0, "checks after kills": 0.0, "unkilled updates": 0.0}


def run_phase(release, silent, final, absent_ok, on):
    """Updates (killing them unless final) until one finishes by itself; returns the version the
    device then runs and whether the kill budget is spent."""
    global kills
    # A whole update of this phase, unkilled, takes about `span` seconds.
    span = estimate.get(release["version"], 1.0) + (HEALTH_TIMEOUT if silent else 0)
    attempts = 0
    while True:
        # Each kill restarts the work not yet journaled; a phase killed again and again widens its
        # range so that it ends even on a machine slower than at calibration.
        attempts += 1
        delay = rng.uniform(0, 0.85 * span * 1.2 ** max(0, attempts - 5))
        t0 = time.monotonic()
        proc, log = start_update(release["config"])
        try:
            proc.wait(timeout=300 if final else delay)
        except subprocess.TimeoutExpired:
            if final:
                raise Failure(f"update for {release['version']} did not end in 300 s")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            log.close()
            t1 = time.monotonic()
            spent["killed updates"] += t1 - t0
            kills += 1
            where = journal_state()
            histogram[where] = histogram.get(where, 0) + 1
            current_version(absent_ok)
            check_at_rest(release["config"])
            spent["checks after kills"] += time.monotonic() - t1
            absent_ok = False
            if kills >= ITERATIONS:
                final = True
            continue
        log.close()
        spent["unkilled updates"] += time.monotonic() - t0
        if final and release["version"] not in estimate:
            estimate[release["version"]] = time.monotonic() - t0
        out = open(os.path.join(spec["work"], "update.out")).read()
        finished_update_ok(release, proc.returncode, out)
        s = check_at_rest(release["config"])
        failed = {f["version"]: f["reason"] for f in s["failed"]}
        v = release["version"]
        if v in failed:  # legitimately failed: back on the release before it
            if not release["crashes"] and not silent and failed[v] != "health_timeout":
                raise Failure(f"the healthy {v} failed with {failed[v]}")
            want = on
        elif release["crashes"]:
            raise Failure(f"the crashing {v} was confirmed: {s}")
        else:
            want = v
        got = s["version"] if s["release"] else "builtin"
        if got != want or s["state"] not in ("confirmed", "idle"):
            raise Failure(f"after the phase of {v}: on {got} ({s['state']}), want {want}")
        return want, final


def converged(release, on):
    """Without kills: the newest release not legitimately failed, confirmed; updating again
    changes nothing."""
    code, out, err = agent(release["config"], "update")
    s = check_at_rest(release["config"])
    failed = {f["version"] for f in s["failed"]}
    newest = next((r["version"] for r in reversed(RELEASES) if r["version"] not in failed),
                  "builtin")
    print(f"agent.crash: converged on {on} (failed legitimately: {sorted(failed) or 'none'}); "
          f"a further update: {(out + err).strip()}", flush=True)
    if on != newest or current_version(False) != newest:
        raise Failure(f"not on the newest good release {newest}: on {on}, {s}")
    if s["state"] not in ("confirmed", "idle"):
        raise Failure(f"not at rest: {s}")
    downloads = os.path.join(DEV, "downloads")
    if os.path.isdir(downloads) and os.listdir(downloads):
        raise Failure(f"downloads left behind: {os.listdir(downloads)}")
    if newest == release["version"] and code != 0:
        raise Failure(f"a further update failed: {out}{err}")
    if newest != release["version"] and not (code == 1 and "failed before" in err + out):
        raise Failure(f"a further update did not refuse the failed {release['version']}: "
                      f"{out}{err}")


def main():
    global rounds
    # Round 1 is not killed: it measures how long each phase's update takes (the kill delays).
    final = True
    while True:
        rounds += 1
        reset_device()
        on = "builtin"  # the version the device runs before each phase
        for i, release in enumerate(RELEASES):
            silent = not release["crashes"] and not final and rng.random() < 0.1
            if silent:
                open(NO_CONFIRM, "w").close()
            elif os.path.exists(NO_CONFIRM):
                os.remove(NO_CONFIRM)
            on, final = run_phase(release, silent, final, i == 0, on)
        if rounds == 1:
            final = ITERATIONS == 0
        elif final:
            converged(RELEASES[-1], on)
            return


started = time.monotonic()
try:
    main()
except Failure as e:
    print(f"FAIL: {e}\nagent.crash: seed {SEED}, after {kills} kills in {rounds} rounds; "
          f"last update's output:\n{open(os.path.join(spec['work'], 'update.out')).read()}")
    sys.exit(1)

took = time.monotonic() - started
print(f"agent.crash: {kills} kills in {rounds} rounds, {took:.1f} s; an unkilled update took "
      + ", ".join(f"{v} {t:.2f} s" for v, t in sorted(estimate.items())))
print("agent.crash: time in " + ", ".join(f"{k} {v:.1f} s" for k, v in spent.items()))
print("agent.crash: where the kills landed (the journal's state after the kill):")
for where, n in sorted(histogram.items(), key=lambda kv: -kv[1]):
    print(f"  {where:16s} {n}")
print("agent.crash: passed")
