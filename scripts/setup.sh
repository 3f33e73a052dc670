#!/usr/bin/env bash
# Installs every Debian package Airlock needs to build, test and benchmark. Idempotent: packages that are
# already present are skipped, so a second run does no network work.
set -euo pipefail

# help2man (man pages from --help), dpkg-dev (cpack's dpkg-shlibdeps) and systemd
# (systemd-analyze verify) serve the packages (cmake/install.cmake, tests/package_test.sh); chromium is
# the headless browser of the dashboard test (tests/dashboard/, driven by playwright-core from npm).
# nginx, wrk, zstd, bsdiff, time and python3-cryptography serve the benchmarks (bench/run).
PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config clang clang-tidy clang-format libclang-rt-14-dev
  libssl-dev openssl libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev
  libzstd-dev libbrotli-dev brotli libarchive-dev libexpected-dev libcurl4-openssl-dev faketime zip unzip
  libsqlite3-dev libargon2-dev libp11-kit-dev softhsm2 sqlite3
  libboost1.81-dev libpq-dev postgresql libtomlplusplus-dev rapidjson-dev
  nginx wrk zstd bsdiff time python3-cryptography
  help2man dpkg-dev systemd
  chromium
)
# Node.js (for the independent TUF implementation used in interop tests) may come from elsewhere; only
# install Debian's when there is none, so an existing newer one is never replaced.
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
