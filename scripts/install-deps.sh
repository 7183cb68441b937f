#!/usr/bin/env bash
# Installs what building and testing ncclfr needs on Debian 12, and nothing that is already there.
# Idempotent: a second run checks, finds everything, and returns in well under a second.
# Both README commands (scripts/demo.sh, scripts/test.sh) call it first.
set -euo pipefail

# Debian packages: build tools, the dump format, the CLI, tests, benchmarks, the fuzzer and the
# browser test of the HTML report.
packages=(
  cmake g++ make pkgconf
  capnproto libcapnp-dev
  libcli11-dev catch2 nlohmann-json3-dev libsqlite3-dev sqlite3
  libbenchmark-dev
  clang libclang-rt-14-dev
  chromium
)
# node and npm may come from Debian or from NodeSource (whose nodejs bundles npm and conflicts with
# Debian's npm): ask for the packages only when the commands are missing.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep '^install ok installed$' >/dev/null; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then sudo=(sudo); else
      echo "install-deps: need root to install ${missing[*]} (run as root or install sudo)" >&2
      exit 2
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine may have empty package lists; refresh them only when an install fails.
  if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/ncclfr-apt.log 2>&1; then
    "${sudo[@]}" apt-get update -q >>/tmp/ncclfr-apt.log 2>&1
    if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/ncclfr-apt.log 2>&1; then
      echo "install-deps: apt-get failed; see /tmp/ncclfr-apt.log" >&2
      tail -n 5 /tmp/ncclfr-apt.log >&2
      exit 2
    fi
  fi
fi

# playwright-core drives Debian's chromium in the viewer's browser test. It is installed into the
# build tree's own node_modules (never a browser download: PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD).
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -f "$root/viewer/test/package.json" ] && [ ! -d "$root/viewer/test/node_modules/playwright-core" ]; then
  echo "install-deps: installing playwright-core for the browser test" >&2
  (cd "$root/viewer/test" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent) ||
    { echo "install-deps: npm install in viewer/test failed" >&2; exit 2; }
fi
exit 0
