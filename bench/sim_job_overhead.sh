#!/usr/bin/env bash
# A sim/ job's step time with and without the recorder (issue 7, item 2): examples/nccl_job on
# sim/ (4 ranks, tensor-parallel groups of 2; all-gather, reduce-scatter, a send/recv ring, an
# all-reduce and every fifth step a broadcast), with and without LD_PRELOAD=libncclfr.so, measured
# side by side in one run.
#
# A step's time is the slope between a short and a long job, (T(long) - T(short)) / (long - short)
# steps, so process start, communicator setup and teardown cancel out. Each round runs the four jobs
# (with/without the recorder x short/long) in an order that flips every round, so drift hits both
# alike. Prints the median step time of each, their ratio, the median and range of the per-round
# ratios (the noise: on a busy machine one round's ratio can be far from the median), and
# what that makes per NCCL call; the recorder runs in its default mode (NCCLFR_TIMING=full, CUDA
# events on sim/'s driver). --step-ms 0: no simulated compute, the worst case for a ratio.
#
#   bench/sim_job_overhead.sh [--build DIR] [--rounds 9] [--short 10] [--long 110] [--ranks 4]
#                             [--step-ms 0] [--tsv FILE]
#
# --tsv appends "key<TAB>value" lines for bench/run_all.sh. Exit codes: 0 done; 1 a job failed;
# 2 bad usage or a missing build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build" rounds=9 short=10 long=110 ranks=4 step_ms=0 tsv=""
while (($#)); do
  case "$1" in
    --build) build=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --short) short=$2; shift ;;
    --long) long=$2; shift ;;
    --ranks) ranks=$2; shift ;;
    --step-ms) step_ms=$2; shift ;;
    --tsv) tsv=$2; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "sim_job_overhead.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
((long > short && short >= 1 && rounds >= 1 && ranks >= 2 && ranks % 2 == 0)) ||
  { echo "sim_job_overhead.sh: need --long > --short >= 1, --rounds >= 1, an even --ranks >= 2" >&2; exit 2; }
build=$(cd "$build" && pwd)
for f in bin/ncclfr bin/ncclfr-simrun bin/nccl_job recorder/libncclfr.so; do
  [ -e "$build/$f" ] || { echo "sim_job_overhead.sh: $build/$f is missing: build first" >&2; exit 2; }
done
tmp=$(mktemp -d /tmp/ncclfr-bench-simjob-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

job_args=(--layout tp-dp --tp 2 --step-ms "$step_ms" --quiet)

# Prints the wall time of one job in microseconds.
run_job() {  # shim(0|1) steps
  local shim=$1 steps=$2 start end
  local env=(env -u LD_PRELOAD)
  if [ "$shim" = 1 ]; then
    env=(env LD_PRELOAD="$build/recorder/libncclfr.so" NCCLFR_SHM_DIR="$tmp/shm" NCCLFR_DUMP_DIR="$tmp/dumps")
  fi
  start=$(date +%s%N)
  if ! "${env[@]}" "$build/bin/ncclfr-simrun" -q -n "$ranks" --timeout 300 -- \
      "$build/bin/nccl_job" --steps "$steps" "${job_args[@]}" >"$tmp/job.log" 2>&1; then
    echo "sim_job_overhead.sh: the job failed (recorder=$shim, $steps steps):" >&2
    tail -n 5 "$tmp/job.log" >&2
    exit 1
  fi
  end=$(date +%s%N)
  echo $(((end - start) / 1000))
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# One untimed pair first: page cache, the dynamic loader's caches.
run_job 0 "$short" >/dev/null
run_job 1 "$short" >/dev/null

: >"$tmp/off" && : >"$tmp/on" && : >"$tmp/ratio"
for ((r = 0; r < rounds; r++)); do
  if ((r % 2 == 0)); then order="0:$short 1:$short 0:$long 1:$long"; else order="1:$long 0:$long 1:$short 0:$short"; fi
  declare -A t=()
  for item in $order; do t[$item]=$(run_job "${item%%:*}" "${item##*:}"); done
  off=$(awk -v a="${t[0:$long]}" -v b="${t[0:$short]}" -v n=$((long - short)) 'BEGIN { printf "%.3f", (a - b) / n }')
  on=$(awk -v a="${t[1:$long]}" -v b="${t[1:$short]}" -v n=$((long - short)) 'BEGIN { printf "%.3f", (a - b) / n }')
  echo "$off" >>"$tmp/off"
  echo "$on" >>"$tmp/on"
  awk -v a="$on" -v b="$off" 'BEGIN { if (b > 0) printf "%.4f\n", a / b }' >>"$tmp/ratio"
  echo "round $((r + 1))/$rounds: step without recorder ${off} us, with ${on} us" >&2
  unset t
done

# Calls per rank and step, read from the recorder itself (which also shows it was recording).
env LD_PRELOAD="$build/recorder/libncclfr.so" NCCLFR_SHM_DIR="$tmp/shm" NCCLFR_DUMP_DIR="$tmp/dumps" \
  NCCLFR_DUMP_ON_EXIT=1 "$build/bin/ncclfr-simrun" -q -n "$ranks" --job-id calls --timeout 300 -- \
  "$build/bin/nccl_job" --steps "$long" "${job_args[@]}" >"$tmp/job.log" 2>&1 ||
  { echo "sim_job_overhead.sh: the counting job failed" >&2; tail -n 5 "$tmp/job.log" >&2; exit 1; }
dump=$(find "$tmp/dumps/calls" -name '*_r0_*.ncclfr' | head -1)
[ -n "$dump" ] || { echo "sim_job_overhead.sh: the recorder wrote no exit dump for rank 0" >&2; exit 1; }
entries=$("$build/bin/ncclfr" show "$dump" | sed -n 's/.*entries: \([0-9]*\) recorded.*/\1/p' | head -1)
calls=$(awk -v e="$entries" -v s="$long" 'BEGIN { printf "%.2f", e / s }')

off=$(median <"$tmp/off")
on=$(median <"$tmp/on")
ratio=$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.3f", a / b }')
round_ratio=$(median <"$tmp/ratio")
ratio_min=$(sort -g "$tmp/ratio" | head -1)
ratio_max=$(sort -g "$tmp/ratio" | tail -1)
per_call=$(awk -v a="$on" -v b="$off" -v c="$calls" 'BEGIN { printf "%.2f", (a - b) / c }')
echo "sim/ job, $ranks ranks, step-ms $step_ms: step without recorder $off us, with $on us (medians of $rounds rounds); ratio $ratio (per-round ratios: median $(printf '%.3f' "$round_ratio"), from $ratio_min to $ratio_max); $calls NCCL calls per rank and step: $per_call us per call"
if [ -n "$tsv" ]; then
  printf 'simjob_ranks\t%s\nsimjob_rounds\t%s\nsimjob_off_us\t%s\nsimjob_on_us\t%s\nsimjob_ratio\t%s\nsimjob_round_ratio\t%.3f\nsimjob_ratio_min\t%s\nsimjob_ratio_max\t%s\nsimjob_calls_per_step\t%s\nsimjob_per_call_us\t%s\n' \
    "$ranks" "$rounds" "$off" "$on" "$ratio" "$round_ratio" "$ratio_min" "$ratio_max" "$calls" "$per_call" >>"$tsv"
fi
