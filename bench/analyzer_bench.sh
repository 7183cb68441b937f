#!/usr/bin/env bash
# Benchmarks of the analyzer's targets (docs/performance.md, "Analyzer"): synthetic hung jobs are
# written into a scratch folder (about 15 GB at most at a time, deleted as it goes), then timed
# with the files in the page cache (one untimed warm-up run first). Prints a markdown table of
# medians. Not part of the test suite.
#
#   bench/analyzer_bench.sh BUILD_DIR [RUNS]     # default 5 runs; scratch in $TMPDIR or /tmp
set -euo pipefail
build=$(cd "${1:?usage: analyzer_bench.sh BUILD_DIR [RUNS]}" && pwd)
runs=${2:-5}
ncclfr="$build/bin/ncclfr"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/ncclfr-bench-XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# measure NAME EXPECTED_CODE ARGS...: RUNS timed runs; seconds and peak RSS (MB) medians
measure() {
  local name=$1 want=$2
  shift 2
  "$ncclfr" "$@" >/dev/null 2>&1 || true  # warm-up: pages into the cache
  local times=() rss=()
  for ((i = 0; i < runs; i++)); do
    /usr/bin/time -f '%e %M' -o "$scratch/time.txt" "$ncclfr" "$@" >/dev/null 2>&1 || true
    local out
    out=$(tail -1 "$scratch/time.txt")
    times+=("${out% *}")
    rss+=("$(( ${out#* } / 1024 ))")
  done
  local t m
  t=$(printf '%s\n' "${times[@]}" | median)
  m=$(printf '%s\n' "${rss[@]}" | median)
  printf '| %s | %s s | %s MB | %s |\n' "$name" "$t" "$m" "$(printf '%s ' "${times[@]}")"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -r)"
echo "date: $(date -u +%Y-%m-%d), commit: $(git -C "$build/.." rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo
echo "| case | median wall | median peak RSS | all runs (s) |"
echo "|---|---|---|---|"

"$ncclfr" synth --ranks 24576 --tp 8 --pp 4 --entries 4096 --scenario host_stall -o "$scratch/j24k" >/dev/null
measure "analyze: 24,576 ranks x 4,096 entries, 3 comms/rank (TP 8, PP 4, DP 768), host stall" 1 analyze "$scratch/j24k"
measure "analyze --json: same" 1 analyze --json "$scratch/j24k"
rm -rf "$scratch/j24k"

"$ncclfr" synth --ranks 100000 --tp 8 --pp 4 --entries 512 --scenario device_stall -o "$scratch/j100k" >/dev/null
measure "analyze: 100,000 ranks x 512 entries, 3 comms/rank (TP 8, PP 4, DP 3,125), device stall" 1 analyze "$scratch/j100k"
rm -rf "$scratch/j100k"

"$ncclfr" synth --ranks 1000 --tp 8 --pp 1 --entries 4096 --scenario host_stall -o "$scratch/j1k" >/dev/null
measure "db: 1,000 ranks x 4,096 entries (4,096,000 rows)" 0 db "$scratch/j1k" -o "$scratch/trace.sqlite"
rm -rf "$scratch/j1k" "$scratch/trace.sqlite"
