#!/usr/bin/env bash
# CTest fixture: installs the OpenAPI validator exactly as package-lock.json pins it into NODE_DIR (under
# the build tree), once. Skips `npm ci` when NODE_DIR already holds an install of the same lock file.
#   npm_setup.sh SRC_DIR NODE_DIR
set -euo pipefail
src="$1" dir="$2"
command -v node >/dev/null || { echo "node is not installed" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm is not installed" >&2; exit 1; }
mkdir -p "$dir"
if cmp -s "$src/package-lock.json" "$dir/package-lock.json" && [ -f "$dir/node_modules/.installed" ]; then
  echo "OpenAPI validator already installed in $dir"
  exit 0
fi
cp "$src/package.json" "$src/package-lock.json" "$dir/"
(cd "$dir" && npm ci --no-audit --no-fund)
touch "$dir/node_modules/.installed"
