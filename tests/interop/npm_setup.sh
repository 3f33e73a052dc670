#!/usr/bin/env bash
# CTest fixture: installs tuf-js and @tufjs/models exactly as package-lock.json pins them into NODE_DIR
# (under the build tree), once. Skips `npm ci` when NODE_DIR already holds an install of the same lock file.
#   npm_setup.sh SRC_DIR NODE_DIR
set -euo pipefail
src="$1" dir="$2"
command -v node >/dev/null || { echo "node is not installed" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm is not installed" >&2; exit 1; }
mkdir -p "$dir"
if cmp -s "$src/package-lock.json" "$dir/package-lock.json" && [ -f "$dir/node_modules/.installed" ] &&
   [ -d "$dir/node_modules/tuf-js" ]; then
  echo "tuf-js already installed in $dir"
  exit 0
fi
cp "$src/package.json" "$src/package-lock.json" "$dir/"
(cd "$dir" && npm ci --no-audit --no-fund)
touch "$dir/node_modules/.installed"
node -e 'for (const p of ["tuf-js", "@tufjs/models"]) console.log(p, require(require("path").join(process.argv[1], "node_modules", p, "package.json")).version)' "$dir"
