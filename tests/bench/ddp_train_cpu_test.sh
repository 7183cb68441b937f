#!/usr/bin/env bash
# examples/gpu/ddp_train.py on CPU (gloo, 2 ranks started by ncclfr-simrun, which sets torchrun's
# variables), with libncclfr.so preloaded: the loop runs, rank 0 writes its summary and sees the
# preload; then scripts/gpu-validate.sh's part 2 (--ddp-cpu) must run its four configurations and
# write their table. Exit 77 (ctest: skipped) when no python3 with torch is found; the GPU run itself
# is scripts/gpu-validate.sh's part 2 on a GPU machine.
#
#   ddp_train_cpu_test.sh BUILD SOURCE
set -euo pipefail
build=$1 src=$2
py=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import torch, torch.distributed' 2>/dev/null; then py=$(command -v "$p"); break; fi
done
if [ -z "$py" ]; then
  echo "ddp_train_cpu_test: SKIP: no python3 with torch here (Debian: python3-torch)"
  exit 77
fi
# A sanitized libncclfr.so cannot be preloaded into an uninstrumented Python.
if ldd "$build/recorder/libncclfr.so" 2>/dev/null | grep -E 'lib(a|t|ub)san' >/dev/null; then
  echo "ddp_train_cpu_test: SKIP: sanitized build (its libncclfr.so needs the sanitizer runtime first in the process)"
  exit 77
fi
tmp=$(mktemp -d /tmp/ncclfr-ddp-test-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
LD_PRELOAD="$build/recorder/libncclfr.so" NCCLFR_SHM_DIR="$tmp/shm" NCCLFR_DUMP_DIR="$tmp/dumps" \
  "$build/bin/ncclfr-simrun" -q --no-sim -n 2 --timeout 100 -- \
  "$py" "$src/examples/gpu/ddp_train.py" --device cpu --steps 4 --warmup 1 --hidden 32 --layers 2 --batch 4 \
  --bucket-mb 0.001 --out "$tmp/summary.json"
"$py" - "$tmp/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["ranks"] == 2 and s["steps"] == 4, s
assert s["median_step_ms"] > 0 and s["p10_step_ms"] <= s["p90_step_ms"], s
assert s["ncclfr_preloaded"] is True, "libncclfr.so was not mapped into the training process"
print("ddp_train_cpu_test: PASS:", json.dumps(s, sort_keys=True))
PY

# Part 2 of scripts/gpu-validate.sh around it (rounds, the four configurations, the table), on CPU.
out="$tmp/validate"
bash "$src/scripts/gpu-validate.sh" --sim --build "$build" --out "$out" --parts 2 --ddp-cpu --python "$py" \
  --rounds 1 --ddp-steps 3 >"$tmp/validate.log" 2>&1 || { cat "$tmp/validate.log"; echo "ddp_train_cpu_test: FAIL: gpu-validate.sh --parts 2 --ddp-cpu" >&2; exit 1; }
for row in "| no | off (0) | " "| no | on (2000) | " "| yes | off (0) | " "| yes | on (2000) | "; do
  grep -qF "$row" "$out/figures.md" || { cat "$out/figures.md"; echo "ddp_train_cpu_test: FAIL: no row '$row'" >&2; exit 1; }
done
[ "$(grep -c $'\tpass\t' "$out/checks.tsv")" = 4 ] || { cat "$out/checks.tsv"; echo "ddp_train_cpu_test: FAIL: expected 4 passing runs" >&2; exit 1; }
echo "ddp_train_cpu_test: PASS (gpu-validate.sh part 2 on CPU)"
