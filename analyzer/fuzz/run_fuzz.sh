#!/usr/bin/env bash
# Builds the libFuzzer target with clang (ASan + UBSan) in build-fuzz/ and fuzzes the dump reader and
# the analysis for a while, starting from synthetic dumps of every scenario.
#
#   analyzer/fuzz/run_fuzz.sh [SECONDS]     # default 60; crashers land in build-fuzz/crashes/
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-60}
build="$root/build-fuzz"
# Warnings stay warnings here: this build only fuzzes, and clang warns about things g++ does not.
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DNCCLFR_SANITIZE=address -DNCCLFR_BUILD_BENCH=OFF \
  -DNCCLFR_WERROR=OFF >"$build.configure.log" 2>&1 ||
  { cat "$build.configure.log" >&2; exit 1; }
cmake --build "$build" -j2 --target ncclfr_fuzz_analyze ncclfr
corpus="$build/corpus"
mkdir -p "$corpus" "$build/crashes"
if [ -z "$(ls -A "$corpus")" ]; then
  for s in healthy host_stall device_stall mismatch unmatched_p2p died error; do
    "$build/bin/ncclfr" synth --ranks 8 --entries 24 --scenario "$s" -o "$build/seed-$s" >/dev/null
    cp "$build/seed-$s/rank000003.ncclfr" "$corpus/$s-3.ncclfr"
    cp "$build/seed-$s/rank000000.ncclfr" "$corpus/$s-0.ncclfr"
    rm -rf "$build/seed-$s"
  done
fi
cp -n "$root"/analyzer/fuzz/corpus/* "$corpus"/ 2>/dev/null || true
ASAN_OPTIONS=detect_leaks=1 "$build/analyzer/ncclfr_fuzz_analyze" -max_total_time="$seconds" -max_len=65536 \
  -artifact_prefix="$build/crashes/" -timeout=10 "$corpus"
