#!/usr/bin/env bash
# Benchmark (issue 15; bench/run calls it): the bytes a device downloads for a small change, Airlock's
# delta beside `zstd -19 --patch-from` and `bsdiff` of the same pair, measured in the same run, plus
# the apply time and the peak RSS of a process applying the delta (build/bin/delta_bench).
#
#   bench/delta_bench.sh BUILD_DIR
#
# Pairs:
#   web     the dist/ folder of the npm package vue 3.4.37 and 3.4.38 (a real front-end build and
#           its next patch release; `npm pack`, cached in BUILD_DIR/bench-cache/); without the npm
#           registry, a generated pair (said in the output)
#   binary  one generated C program (3000 functions) compiled with gcc -O2 twice, the second time
#           with one function changed
# zstd and bsdiff get each tree as an uncompressed, deterministic tar (names sorted, mtime 0, owner
# 0): the form they patch best. Ends with `delta_vs_zstd ratio=R goal<=1.0 met|missed` (Airlock delta
# bytes over zstd's patch bytes, web pair) and `delta_vs_zstd_binary ratio=R`.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD=$(cd "$1" && pwd)
TOOL="$BUILD/bin/delta_bench"
[ -x "$TOOL" ] || { echo "delta_bench is not built (cmake --build $BUILD --target delta_bench)" >&2; exit 1; }
for t in zstd bsdiff tar gcc; do command -v "$t" >/dev/null || { echo "missing $t (scripts/setup.sh)" >&2; exit 1; }; done
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
CACHE="$BUILD/bench-cache"
mkdir -p "$CACHE"

web_pair() {
  local v
  for v in 3.4.37 3.4.38; do
    if [ ! -s "$CACHE/vue-$v.tgz" ]; then
      (cd "$CACHE" && timeout 120 npm pack "vue@$v" >/dev/null 2>&1) || return 1
    fi
    mkdir -p "$W/web-$v"
    tar -xzf "$CACHE/vue-$v.tgz" -C "$W/web-$v"
  done
  mv "$W/web-3.4.37/package/dist" "$W/web-base"
  mv "$W/web-3.4.38/package/dist" "$W/web-new"
  WEB_NAME="vue 3.4.37 -> 3.4.38 dist/ (npm)"
}
generated_web_pair() {
  python3 - "$W" <<'PY'
import os, random, sys
w = sys.argv[1]
rng = random.Random(1)
lib = "".join(f"export function f{i}(a,b){{return a*{rng.randint(1,99)}+b;}}\n" for i in range(20000))
for name, marker in (("web-base", "1"), ("web-new", "2")):
    os.makedirs(f"{w}/{name}/assets", exist_ok=True)
    open(f"{w}/{name}/assets/vendor.js", "w").write(lib)
    open(f"{w}/{name}/assets/app.js", "w").write(lib[:40000] + f"console.log('build {marker}');\n")
    open(f"{w}/{name}/index.html", "w").write("<html><script src=assets/app.js></script></html>\n")
PY
  WEB_NAME="generated web app (the npm registry was not reachable)"
}
binary_pair() {
  local v
  for v in base new; do
    python3 - "$W/prog-$v.c" "$v" <<'PY'
import sys
path, which = sys.argv[1], sys.argv[2]
with open(path, "w") as f:
    f.write("#include <stdio.h>\n")
    for i in range(3000):
        k = i * 7 + (1 if which == "new" and i == 1500 else 0)
        f.write(f"int f{i}(int x) {{ int s = 0; for (int j = 0; j < x; ++j) s += j * {k} ^ {i}; return s; }}\n")
    f.write("int main(void) { long t = 0;\n")
    for i in range(0, 3000, 10):
        f.write(f"  t += f{i}({i % 17});\n")
    f.write('  printf("%ld\\n", t); return 0; }\n')
PY
    mkdir -p "$W/bin-$v"
    gcc -O2 -o "$W/bin-$v/prog" "$W/prog-$v.c"
  done
}

# measure NAME BASE NEW: one row; sets RATIO.
measure() {
  local name="$1" base="$2" new="$3" out
  out=$("$TOOL" "$base" "$new" "$W/work-$name")
  local delta bundle make
  delta=$(sed -n 's/.*delta_bytes=\([0-9]*\).*/\1/p' <<<"$out")
  bundle=$(sed -n 's/.*bundle_bytes=\([0-9]*\).*/\1/p' <<<"$out")
  make=$(sed -n 's/.*make_s=\([0-9.]*\).*/\1/p' <<<"$out")
  local apply
  apply=$("$TOOL" --apply "$base" "$W/work-$name")
  diff -r "$W/work-$name/out" "$new" >/dev/null || { echo "FAIL: the applied $name tree differs" >&2; exit 1; }
  for side in base new; do
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$W/$name-$side.tar" \
      -C "$([ $side = base ] && echo "$base" || echo "$new")" .
  done
  zstd -q -19 --patch-from="$W/$name-base.tar" "$W/$name-new.tar" -o "$W/$name.zst"
  bsdiff "$W/$name-base.tar" "$W/$name-new.tar" "$W/$name.bsdiff"
  local zst bsd
  zst=$(stat -c %s "$W/$name.zst")
  bsd=$(stat -c %s "$W/$name.bsdiff")
  RATIO=$(python3 -c "print(f'{$delta / $zst:.2f}')")
  printf '| %s | %s | %s | %s | %s | %s | %s s | %s |\n' "$name" "$(stat -c %s "$W/$name-new.tar")" \
    "$bundle" "$delta" "$zst" "$bsd" "$(sed -n 's/.*apply_s=\([0-9.]*\).*/\1/p' <<<"$apply")" \
    "$(( $(sed -n 's/.*apply_rss_kb=\([0-9]*\).*/\1/p' <<<"$apply") / 1024 )) MB"
  echo "  ($name: delta made in $make s)" >&2
}

web_pair || { rm -rf "$W"/web-*; generated_web_pair; }
binary_pair
echo "web pair: $WEB_NAME"
echo "binary pair: a generated C program, gcc -O2, one function changed"
echo "| pair | new tree (tar bytes) | whole bundle | Airlock delta | zstd -19 --patch-from | bsdiff | apply | apply peak RSS |"
echo "|---|---|---|---|---|---|---|---|"
measure web "$W/web-base" "$W/web-new"
WEB_RATIO=$RATIO
measure binary "$W/bin-base" "$W/bin-new"
BIN_RATIO=$RATIO
verdict=$(python3 -c "print('met' if $WEB_RATIO <= 1.0 else 'missed')")
echo "delta_vs_zstd_binary ratio=$BIN_RATIO"
echo "delta_vs_zstd ratio=$WEB_RATIO goal<=1.0 $verdict"
