#!/usr/bin/env bash
# The README's main command: builds ncclfr, runs a simulated 8-rank job in which one rank hangs,
# records it with libncclfr.so, and prints the analyzer's verdict.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build"
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$build" >"$build.configure.log" 2>&1 || { cat "$build.configure.log" >&2; exit 1; }
cmake --build "$build" -j"$(nproc)"
if [ ! -x "$root/examples/demo/run.sh" ]; then
  echo "demo: ncclfr is built in $build; the planted-hang demo needs sim/, the recorder and the analyzer, which are not in this tree yet" >&2
  exit 1
fi
exec "$root/examples/demo/run.sh" "$build"
