#!/usr/bin/env bash
# Scale benchmark of `ncclfr report` (docs/performance.md, "Viewer"): writes a synthetic job of
# --ranks ranks with a planted host stall (`ncclfr synth`), times the report, and opens it --runs
# times in headless chromium, timing load + parse + first paint. Fails when the report is larger
# than 50 MB or its median open-and-draw time exceeds 3 s (the issue's bounds).
#
#   bench/viewer_report.sh [--build DIR] [--ranks 24576] [--runs 5] [--data DIR]
#
# The dumps (about 9 GB at 24,576 ranks) go to --data (default /tmp/ncclfr-bench-viewer-RANKS) and are
# kept for the next run; delete the folder when done.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build" ranks=24576 runs=5 data=""
while (($#)); do
  case "$1" in
    --build) build=$2; shift ;;
    --ranks) ranks=$2; shift ;;
    --runs) runs=$2; shift ;;
    --data) data=$2; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "viewer_report.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
data=${data:-/tmp/ncclfr-bench-viewer-$ranks}
ncclfr="$build/bin/ncclfr"
[ -x "$ncclfr" ] || { echo "viewer_report.sh: build ncclfr first ($ncclfr)" >&2; exit 2; }
[ -f "$root/viewer/test/node_modules/playwright-core/package.json" ] ||
  { echo "viewer_report.sh: run scripts/install-deps.sh first (playwright-core)" >&2; exit 2; }

if [ ! -f "$data/.complete" ]; then
  rm -rf "$data"
  echo "writing $ranks synthetic dumps to $data ..."
  start=$(date +%s%N)
  "$ncclfr" synth --ranks "$ranks" --scenario host_stall -o "$data/dumps"
  echo "synth: $(( ($(date +%s%N) - start) / 1000000 )) ms"
  touch "$data/.complete"
fi

report="$data/report.html"
start=$(date +%s%N)
"$ncclfr" report "$data/dumps" -o "$report"
gen_ms=$(( ($(date +%s%N) - start) / 1000000 ))
bytes=$(stat -c %s "$report")
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
gen=$(awk -v m="$gen_ms" 'BEGIN { printf "%.1f", m / 1e3 }')
echo "report: $mb MB written in $gen s"

out=$(node "$root/viewer/test/report_check.mjs" --open "$report" --runs "$runs")
echo "$out"
median=$(echo "$out" | sed -n 's/.*open-and-draw wall ms: median \([0-9]*\).*/\1/p')

echo
echo "ranks $ranks | report $mb MB | written in $gen s | open-and-draw median ${median} ms of $runs"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/Mem:/ {print $2}') GiB; chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'); $(date -u +%Y-%m-%d); commit $(git -C "$root" rev-parse --short HEAD)"
ok=0
[ "$bytes" -le 50000000 ] || { echo "FAIL: the report is larger than 50 MB" >&2; ok=1; }
[ -n "$median" ] && [ "$median" -le 3000 ] || { echo "FAIL: median open-and-draw time above 3 s" >&2; ok=1; }
exit $ok
