#!/usr/bin/env bash
# The device side's install cost (issue 11): peak RSS of `airlock-agent update` installing a large
# release, and its install throughput beside the raw OpenSSL bound measured in the same run.
#   bench/agent_bench.sh BUILD_DIR [SIZE_MB=100] [RUNS=3]
# Everything runs on 127.0.0.1 in a temporary folder under ${TMPDIR:-/tmp} (TMPDIR=/dev/shm measures
# CPU work without the disk). Per run: a tiny release is installed (the fixed cost of a cycle: TUF
# refresh, check, key, restart command, confirmation, reports), then a SIZE_MB one (the same cycle
# plus download + verify + decrypt + unpack of its bundle), each timed as a whole `update`, the large
# one under /usr/bin/time -v (peak RSS); install time = large - tiny. Releases are published with
# --deltas 0: this measures the whole-bundle install (deltas have their own benchmark). The restart
# command confirms at once (it runs `airlock-agent confirm` before the agent starts waiting), so no
# health wait is timed.
# Then build/bin/agent_bench_bound measures the raw bound (AES-256-GCM decryption + SHA-256 over a
# bundle of the same folder, 64 KiB chunks, in memory) and DecryptBundlePayload alone over it.
# Prints one line per run and, with the medians over the runs:
#   agent_rss_mb value=.. goal<=16 met|missed
#   install_vs_openssl ratio=.. goal>=0.5 met|missed
#   decrypt_vs_openssl ratio=.. goal>=0.8 met|missed
set -u
BUILD="$(cd "$1" && pwd)"
SIZE_MB="${2:-100}"
RUNS="${3:-3}"
BIN="$BUILD/bin"
A="$BIN/airlock"
D="$BIN/airlockd"
G="$BIN/airlock-agent"
BOUND="$BIN/agent_bench_bound"
for b in "$A" "$D" "$G" "$BOUND"; do
  [ -x "$b" ] || { echo "missing $b (build airlock airlockd airlock-agent agent_bench_bound)"; exit 1; }
done
[ -x /usr/bin/time ] || { echo "missing /usr/bin/time (apt-get install time)"; exit 1; }
. "$(dirname "$0")/../tests/lib.sh"
server_test_setup "agent bench" "$BIN"
export AIRLOCK_ACTOR=bench
export TMPDIR="$W"
require_tools python3 curl
die() { echo "agent_bench: $*"; sed 's/^/    /' "$W/out" "$W/err" 2>/dev/null | head -8; exit 1; }
step() { "$@" >"$W/out" 2>"$W/err" </dev/null || die "failed: $*"; }

init_server
start_server
S=(--server "$SERVER" --token "$TOKEN")
APP=io.example.bench
step "$A" app create "$APP" "${S[@]}" --no-capgo
ENROLL=$(sed -n 's/^Device enrollment token.*: \(enr_[0-9a-f]*\)$/\1/p' "$W/out")
step "$A" channel create "$APP" production --default "${S[@]}"
step "$A" app root "$APP" --out "$W/root.json" "${S[@]}"
cat >"$W/agent.toml" <<TOML
server = "$SERVER"
app = "$APP"
channel = "production"
install_dir = "$W/device"
trusted_root = "$W/root.json"
enrollment_token = "$ENROLL"
restart_command = '$G --config $W/agent.toml confirm --release "\$AIRLOCK_RELEASE"'
health_timeout = "60s"
TOML
step "$G" --config "$W/agent.toml" enroll

# The release's files, reproducible (seeded): about 90 % incompressible (media and fonts of 0.2 to
# 8 MiB, already compressed formats) and 10 % text (JavaScript, JSON, HTML) that deflates well.
python3 - "$W/big" "$SIZE_MB" <<'PY'
import os, random, sys
root, total = sys.argv[1], int(float(sys.argv[2]) * (1 << 20))
rng = random.Random(20261205)
words = [''.join(rng.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rng.randint(2, 10)))
         for _ in range(2000)]
def text(n):
    out, size = [], 0
    while size < n:
        line = ' '.join(rng.choice(words) for _ in range(12)) + ';\n'
        out.append(line)
        size += len(line)
    return ''.join(out)[:n].encode()
made, i = 0, 0
media = int(total * 0.9)
while made < total:
    i += 1
    if made < media:
        n = min(rng.randint(200 << 10, 8 << 20), media - made) or 1
        sub, ext = rng.choice([('assets/img', 'png'), ('assets/video', 'mp4'), ('assets/fonts', 'woff2')])
        data = rng.randbytes(n)
    else:
        n = min(rng.randint(4 << 10, 512 << 10), total - made)
        sub, ext = rng.choice([('js', 'js'), ('data', 'json'), ('pages', 'html')])
        data = text(n)
    os.makedirs(os.path.join(root, sub), exist_ok=True)
    with open(os.path.join(root, sub, 'f%04d.%s' % (i, ext)), 'wb') as f:
        f.write(data)
    made += n
PY
mkdir -p "$W/tiny"
echo "<html>tiny</html>" >"$W/tiny/index.html"

# update VERSION FOLDER: publishes, checks (for the bundle size), then times `update` under
# /usr/bin/time -v. Sets SECONDS_TAKEN, RSS_KB, CPU_S (the agent's user + system seconds) and BYTES.
update() {
  step "$A" release publish "$APP" "${S[@]}" --version "$1" --from "$2" --channel production \
    --encrypt device --deltas 0
  step "$G" --config "$W/agent.toml" check
  BYTES=$(sed -n 's/^offered .*, \([0-9]*\) bytes$/\1/p' "$W/out")
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$W/time.txt" "$G" --config "$W/agent.toml" update >"$W/out" 2>"$W/err" \
    </dev/null || die "update $1 failed"
  t1=$(date +%s.%N)
  grep -q "installed and confirmed $1" "$W/out" "$W/err" || die "update $1 did not confirm"
  SECONDS_TAKEN=$(python3 -c "print($t1 - $t0)")
  RSS_KB=$(sed -n 's/^\s*Maximum resident set size (kbytes): //p' "$W/time.txt")
  CPU_S=$(awk -F': ' '/(User|System) time \(seconds\)/ {s += $2} END {print s}' "$W/time.txt")
}

echo "agent_bench: ${SIZE_MB} MB release, $RUNS runs, in $W ($(df -PT "$W" | awk 'NR==2{print $2}')), load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
: >"$W/runs"
for r in $(seq 1 "$RUNS"); do
  update "$r.0.0" "$W/tiny"
  tiny=$SECONDS_TAKEN
  tiny_rss=$RSS_KB
  tiny_cpu=$CPU_S
  update "$r.0.1" "$W/big"
  big=$SECONDS_TAKEN
  rss=$RSS_KB
  bytes=$BYTES
  bound=$("$BOUND" "$W/big" 3) || die "agent_bench_bound failed"
  raw=$(echo "$bound" | sed -n 's/.*raw_mib_s=\([0-9.]*\).*/\1/p')
  dec=$(echo "$bound" | sed -n 's/.*decrypt_mib_s=\([0-9.]*\).*/\1/p')
  opn=$(echo "$bound" | sed -n 's/.*open_mib_s=\([0-9.]*\).*/\1/p')
  python3 - "$r" "$tiny" "$big" "$rss" "$bytes" "$raw" "$dec" "$(cut -d' ' -f1 /proc/loadavg)" \
    "$tiny_rss" "$opn" "$tiny_cpu" "$CPU_S" \
    <<'PY' >>"$W/runs"
import sys
r, tiny, big, rss, size, raw, dec, load, tiny_rss, opn, tiny_cpu, cpu = sys.argv[1:]
tiny, big, rss, size, raw, dec = float(tiny), float(big), int(rss), int(size), float(raw), float(dec)
tiny_rss, opn, tiny_cpu, cpu = int(tiny_rss), float(opn), float(tiny_cpu), float(cpu)
install = max(big - tiny, 1e-6)
mib = size / (1 << 20)
print("run %s: bundle %.1f MiB; update %.3f s, tiny update %.3f s -> install %.3f s = %.1f MiB/s "
      "(agent CPU %.2f s); peak RSS %.1f MB (tiny update %.1f MB); raw bound %.1f MiB/s; "
      "DecryptBundlePayload %.1f MiB/s; OpenBundle %.1f MiB/s (%.3f s of the install); load %s"
      % (r, mib, big, tiny, install, mib / install, cpu - tiny_cpu, rss / 1024, tiny_rss / 1024,
         raw, dec, opn, mib / opn, load))
print("data", rss / 1024, mib / install / raw, dec / raw)
PY
  grep "^run $r:" "$W/runs" | tail -1
done
python3 - "$W/runs" <<'PY'
import statistics, sys
rows = [l.split()[1:] for l in open(sys.argv[1]) if l.startswith("data ")]
rss, inst, dec = (statistics.median(float(r[i]) for r in rows) for i in range(3))
v = lambda ok: "met" if ok else "missed"
print("agent_rss_mb value=%.1f goal<=16 %s" % (rss, v(rss <= 16)))
print("install_vs_openssl ratio=%.2f goal>=0.5 %s" % (inst, v(inst >= 0.5)))
print("decrypt_vs_openssl ratio=%.2f goal>=0.8 %s" % (dec, v(dec >= 0.8)))
PY
