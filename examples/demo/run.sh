#!/usr/bin/env bash
# The demo (scripts/demo.sh runs it after building): an 8-rank training job on sim/ — tensor
# parallel groups of 2, data parallel groups of 4 — in which rank 5's host thread stops before a
# tensor-parallel all-gather, as a hung data loader would make it. libncclfr.so records every rank;
# when the job stalls, the ranks dump; `ncclfr analyze` names the rank and the reason.
#
# usage: examples/demo/run.sh BUILD_DIR [OUT_DIR]
set -euo pipefail
build=$(cd "${1:?usage: run.sh BUILD_DIR [OUT_DIR]}" && pwd)
out=${2:-$(mktemp -d /tmp/ncclfr-demo-XXXXXX)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
ranks=8
job=demo
dumps="$out/dumps"
rm -rf "$dumps" "$out/logs"

for f in "$build/bin/ncclfr" "$build/bin/ncclfr-simrun" "$build/bin/nccl_job" "$build/recorder/libncclfr.so"; do
  [ -e "$f" ] || { echo "demo: $f is missing: build first (scripts/demo.sh does)" >&2; exit 2; }
done

cat <<EOF
== ncclfr demo =====================================================================
A simulated job: $ranks ranks, tensor-parallel groups of 2, data-parallel groups of 4.
Rank 5 hangs before step 12's tensor-parallel all-gather; every other rank waits in NCCL.
The recorder is preloaded (LD_PRELOAD=libncclfr.so) with NCCLFR_TIMEOUT=3s.
Dumps go to $dumps/$job/
EOF

# The job runs in the background; it hangs for good at step 12, as a real job would.
NCCLFR_DUMP_DIR="$dumps" NCCLFR_TIMEOUT=3s NCCLFR_TRIGGER_POLL=250ms \
LD_PRELOAD="$build/recorder/libncclfr.so" \
  "$build/bin/ncclfr-simrun" -q -n "$ranks" --job-id "$job" --timeout 120 --grace 5 --log-dir "$out/logs" -- \
  "$build/bin/nccl_job" --layout tp-dp --tp 2 --steps 100 --step-ms 5 \
  --fault host_stall --fault-rank 5 --fault-step 12 --fault-comm tp &
launcher=$!

# Wait until every rank has written its dump of the incident (the stalled rank too: a peer's
# trigger asks it), then end the job the way a person would, with Ctrl-C.
start=$SECONDS
while :; do
  n=$( (find "$dumps/$job" -name '*.ncclfr' 2>/dev/null || true) | wc -l)
  if [ "$n" -ge "$ranks" ]; then break; fi
  if ! kill -0 "$launcher" 2>/dev/null; then echo "demo: the job ended before every rank dumped ($n of $ranks)" >&2; break; fi
  if [ $((SECONDS - start)) -gt 60 ]; then echo "demo: only $n of $ranks dumps after 60 s" >&2; break; fi
  sleep 0.2
done
echo "The job hung; $n rank dumps written after $((SECONDS - start)) s. Stopping the job (Ctrl-C)."
kill -INT "$launcher" 2>/dev/null || true
wait "$launcher" 2>/dev/null || true

echo
echo "\$ ncclfr analyze $dumps/$job"
set +e
"$build/bin/ncclfr" analyze "$dumps/$job"
status=$?
set -e
"$build/bin/ncclfr" analyze --json "$dumps/$job" >"$out/verdict.json" 2>/dev/null || true
if "$build/bin/ncclfr" report --help >/dev/null 2>&1; then
  "$build/bin/ncclfr" report "$dumps/$job" -o "$out/report.html" >/dev/null 2>&1 &&
    echo "HTML report: $out/report.html"
fi
echo "Verdict as JSON: $out/verdict.json; rank logs: $out/logs/"
# analyze exits 1 when it found a problem: here that is the expected outcome.
[ "$status" -eq 1 ] || { echo "demo: expected the analyzer to find the hang (exit 1), got $status" >&2; exit 1; }
