#!/usr/bin/env bash
# One end-to-end run: an 8-rank nccl_job on sim/ with libncclfr.so preloaded and one planted fault;
# once the ranks have dumped (and, for a killed rank, `ncclfr salvage` has turned its ring into a
# dump, unless REASON is "missing"), `ncclfr analyze` must name the fault rank and the reason as
# its first suspect.
#
#   e2e_fault.sh BUILD FAULT RANK REASON [nccl_job args...]
#   FAULT is nccl_job's --fault (none for a healthy run, REASON "ok" then); RANK is --fault-rank.
#   NCCLFR_E2E_PRELOAD_FIRST: a library to preload before libncclfr.so (a sanitizer's runtime).
set -uo pipefail
build=$1 fault=$2 rank=$3 reason=$4
shift 4
ranks=8
job="e2e-$fault-$$"
tmp=$(mktemp -d /tmp/ncclfr-e2e-XXXXXX)
[ -n "${NCCLFR_E2E_KEEP:-}" ] || trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/shm" "$tmp/dumps"
dumps="$tmp/dumps/$job"

fault_args=(--fault "$fault")
[ "$fault" != none ] && fault_args+=(--fault-rank "$rank" --fault-step 3)
steps=8
[ "$fault" = none ] && steps=4

NCCLFR_DUMP_DIR="$tmp/dumps" NCCLFR_SHM_DIR="$tmp/shm" NCCLFR_TIMEOUT=${NCCLFR_E2E_TIMEOUT:-2s} NCCLFR_TRIGGER_POLL=200ms \
NCCLFR_DUMP_ON_EXIT=1 LD_PRELOAD="${NCCLFR_E2E_PRELOAD_FIRST:+$NCCLFR_E2E_PRELOAD_FIRST }$build/recorder/libncclfr.so" \
  "$build/bin/ncclfr-simrun" -q -n "$ranks" --job-id "$job" --timeout 90 --grace 3 --no-kill-on-failure \
  --log-dir "$tmp/logs" -- "$build/bin/nccl_job" --steps "$steps" --step-ms 5 "${fault_args[@]}" "$@" &
launcher=$!

# A killed rank leaves no dump of its own: wait for the others', then salvage its ring.
want=$ranks
[ "$fault" = die ] && want=$((ranks - 1))
start=$SECONDS
while :; do
  n=$( (find "$dumps" -name '*.ncclfr' 2>/dev/null || true) | wc -l)
  [ "$n" -ge "$want" ] && break
  kill -0 "$launcher" 2>/dev/null || break
  if [ $((SECONDS - start)) -gt 60 ]; then echo "e2e: only $n of $want dumps after 60 s" >&2; break; fi
  sleep 0.2
done
sleep 0.5
kill -INT "$launcher" 2>/dev/null
wait "$launcher" 2>/dev/null
# REASON "missing": the killed rank's ring is not salvaged, so it has no dump at all (a node lost
# with its /dev/shm): the analysis must name it from what its peers saw.
if [ "$fault" = die ] && [ "$reason" != missing ]; then
  "$build/bin/ncclfr" salvage --shm-dir "$tmp/shm" -o "$tmp/dumps" || { echo "e2e: salvage failed" >&2; exit 1; }
fi

"$build/bin/ncclfr" analyze "$dumps" >"$tmp/verdict.txt" 2>"$tmp/analyze.err"
code=$?
"$build/bin/ncclfr" analyze --json "$dumps" >"$tmp/verdict.json" 2>/dev/null
cat "$tmp/verdict.txt"
cat "$tmp/analyze.err" >&2
first=$(head -1 "$tmp/verdict.txt")
if [ "$reason" = ok ]; then
  [ "$code" = 0 ] && [[ "$first" == "ncclfr: OK:"* ]] && grep -q '"status": "ok"' "$tmp/verdict.json" &&
    grep -q '"suspects": \[\]' "$tmp/verdict.json" && { echo "e2e: PASS (healthy)"; exit 0; }
  echo "e2e: FAIL: expected a healthy verdict, exit code $code" >&2
  exit 1
fi
if [ "$code" = 1 ] && [[ "$first" =~ ^ncclfr:\ [A-Z]+:\ rank\ $rank:\ $reason( |$) ]]; then
  echo "e2e: PASS (rank $rank, $reason)"
  exit 0
fi
echo "e2e: FAIL: expected suspects[0] = rank $rank, $reason; exit code $code; rank logs:" >&2
tail -n 3 "$tmp"/logs/*.err >&2 2>/dev/null
exit 1
