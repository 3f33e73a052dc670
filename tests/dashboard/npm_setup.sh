#!/usr/bin/env bash
# CTest fixture of dashboard.e2e: installs playwright-core exactly as package-lock.json pins it into
# NODE_DIR (under the build tree), once; skips `npm ci` when NODE_DIR already holds an install of
# the same lock file. Only the npm package: the browser is Debian's chromium (scripts/setup.sh),
# never one downloaded by Playwright. Without node/npm: a failure under CI=true, else a note (the
# test itself then skips with its own message).
#   npm_setup.sh SRC_DIR NODE_DIR
set -euo pipefail
src="$1" dir="$2"
for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    [ "${CI:-}" = "true" ] && { echo "FAIL: $tool is required under CI=true but missing" >&2; exit 1; }
    echo "SKIP: $tool missing; dashboard.e2e will skip"
    exit 0
  fi
done
mkdir -p "$dir"
if cmp -s "$src/package-lock.json" "$dir/package-lock.json" && [ -f "$dir/node_modules/.installed" ] &&
   [ -d "$dir/node_modules/playwright-core" ]; then
  echo "playwright-core already installed in $dir"
  exit 0
fi
cp "$src/package.json" "$src/package-lock.json" "$dir/"
# PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core downloads nothing by itself, said twice.
(cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
touch "$dir/node_modules/.installed"
node -e 'console.log("playwright-core", require(require("path").join(process.argv[1], "node_modules", "playwright-core", "package.json")).version)' "$dir"
