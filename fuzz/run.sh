#!/usr/bin/env bash
# One fuzzing campaign (docs/fuzzing.md):
#   fuzz/run.sh MINUTES [TARGET...]        (no TARGET: every target of fuzz/targets.cmake)
# Builds the libFuzzer targets with clang into build-fuzz/ (-DAIRLOCK_FUZZ=ON; the libraries are
# instrumented too: -fsanitize=fuzzer-no-link,address,undefined), runs each target for MINUTES
# minutes starting from fuzz/corpus/TARGET, merges what found new coverage into fuzz/corpus/TARGET
# (-merge=1: only inputs that add coverage are kept), and copies every crash, leak, timeout or
# out-of-memory input into fuzz/corpus/TARGET/crash-* so that the replay test (ctest -R
# fuzz_replay) runs it as a regression on every build. After a crash the target is started again
# for the rest of its time (at most 20 restarts). Ends with one line per target:
#   TARGET minutes=M runs=N cov=C corpus=F crashes=K
# and writes the same table to build-fuzz/campaign/summary.md.
# Environment: FUZZ_PARALLEL (default 1) targets at once, run under nice -n 10; FUZZ_BUILD=0
# skips the build; FUZZ_RSS_MB (default 2048) and FUZZ_TIMEOUT_S (default 25) per input.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
if [[ $# -lt 1 || ! $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  echo "usage: fuzz/run.sh MINUTES [TARGET...]" >&2
  exit 2
fi
minutes=$1
shift
if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  mapfile -t targets < <(sed -n 's/^airlock_fuzz(\([a-z0-9_]*\) .*/\1/p' "$here/fuzz/targets.cmake")
fi
for t in "${targets[@]}"; do
  if ! grep -q "^airlock_fuzz($t " "$here/fuzz/targets.cmake"; then
    echo "fuzz/run.sh: unknown target $t (see fuzz/targets.cmake)" >&2
    exit 2
  fi
done
command -v clang++ >/dev/null || { echo "fuzz/run.sh: clang++ is required" >&2; exit 1; }

build="$here/build-fuzz"
if [[ ${FUZZ_BUILD:-1} != 0 ]]; then
  # -fsanitize=function (part of "undefined") is left out: clang 14 cannot assemble its prologue
  # data in Boost.Asio's code ("Cannot represent a difference across sections", server/http_*.cc).
  flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=function"
  CC=clang CXX=clang++ cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DAIRLOCK_FUZZ=ON -DAIRLOCK_BUILD_TESTS=OFF -DAIRLOCK_BUILD_BENCH=OFF \
    "-DCMAKE_C_FLAGS=$flags" "-DCMAKE_CXX_FLAGS=$flags" >/dev/null
  nice -n 10 cmake --build "$build" -j 2 --target "${targets[@]}"
fi

seconds=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
campaign="$build/campaign"
mkdir -p "$campaign"

run_target() {
  local t=$1 work="$campaign/$1" corpus="$here/fuzz/corpus/$1"
  rm -rf "$work"
  mkdir -p "$work/new" "$work/artifacts" "$corpus"
  local start end left restarts=0
  start=$(date +%s)
  end=$((start + seconds))
  : >"$work/log"
  while :; do
    left=$((end - $(date +%s)))
    ((left > 0)) || break
    # New inputs go to $work/new (the first directory); the committed corpus is read only.
    set +e
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      nice -n 10 "$build/bin/$t" -max_total_time="$left" -print_final_stats=1 \
      -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -timeout="${FUZZ_TIMEOUT_S:-25}" \
      -artifact_prefix="$work/artifacts/" "$work/new" "$corpus" >>"$work/log" 2>&1
    local rc=$?
    set -e
    [[ $rc == 0 ]] && break
    restarts=$((restarts + 1))
    ((restarts <= 20)) || break
  done
  # Keep what adds coverage to the committed corpus.
  "$build/bin/$t" -merge=1 -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -timeout="${FUZZ_TIMEOUT_S:-25}" \
    "$corpus" "$work/new" >"$work/merge.log" 2>&1 || true
  local crashes=0 f base
  for f in "$work/artifacts"/*; do
    [[ -f $f ]] || continue
    base=$(basename "$f")
    case $base in
      crash-*) cp "$f" "$corpus/$base" ;;
      *) cp "$f" "$corpus/crash-$base" ;;  # leak-, timeout-, oom-, slow-unit-
    esac
    crashes=$((crashes + 1))
  done
  local runs cov files
  runs=$(grep -h 'stat::number_of_executed_units' "$work/log" | awk '{s += $2} END {print s + 0}')
  cov=$(grep -ho 'cov: [0-9]*' "$work/log" | awk '{c = $2} END {print c + 0}')
  files=$(find "$corpus" -type f | wc -l)
  printf '%s minutes=%s runs=%s cov=%s corpus=%s crashes=%s\n' "$t" "$minutes" "$runs" "$cov" \
    "$files" "$crashes" >"$work/result"
}

parallel=${FUZZ_PARALLEL:-1}
for t in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= parallel)); do wait -n || true; done
  echo "fuzzing $t for $minutes min (log: $campaign/$t/log)" >&2
  run_target "$t" &
done
wait

{
  echo "| target | minutes | runs | cov | corpus | crashes |"
  echo "|---|---|---|---|---|---|"
  for t in "${targets[@]}"; do
    sed -E 's/^([^ ]+) minutes=([^ ]+) runs=([^ ]+) cov=([^ ]+) corpus=([^ ]+) crashes=([^ ]+)$/| \1 | \2 | \3 | \4 | \5 | \6 |/' \
      "$campaign/$t/result"
  done
} >"$campaign/summary.md"
status=0
for t in "${targets[@]}"; do
  cat "$campaign/$t/result"
  grep -q 'crashes=0$' "$campaign/$t/result" || status=1
done
exit $status
