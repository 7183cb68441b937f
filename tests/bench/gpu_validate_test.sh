#!/usr/bin/env bash
# Runs scripts/gpu-validate.sh in its CPU mode (--sim) and checks what it says, not how fast
# anything was: every planted fault's check passed, every NCCLFR_TIMING mode measured, the DDP part
# skipped with its reason, and the figures file holds a row for each.
#
#   gpu_validate_test.sh BUILD SOURCE [--pack] [gpu-validate.sh options...]
#   --pack: bundle BUILD with --pack first and validate from the bundle, as on a GPU machine.
# Exit codes: 0 pass; 1 fail.
set -euo pipefail
build=$1 src=$2
shift 2
pack=0
if [ "${1:-}" = --pack ]; then pack=1; shift; fi
tmp=$(mktemp -d /tmp/ncclfr-gpu-validate-test-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "gpu_validate_test: FAIL: $*" >&2; exit 1; }

if [ "$pack" = 1 ]; then
  bash "$src/scripts/gpu-validate.sh" --pack "$tmp/pack" --build "$build" || fail "--pack failed"
  for f in bin/ncclfr bin/ncclfr-simrun bin/nccl_job bin/ncclfr_timing_bench recorder/libncclfr.so sim/lib/libnccl.so.2 MANIFEST; do
    [ -e "$tmp/pack/$f" ] || fail "the bundle lacks $f"
  done
  ls "$tmp/pack/lib" | grep '^libcapnp' >/dev/null || fail "the bundle lacks libcapnp (libncclfr.so needs it)"
  build="$tmp/pack"
fi

code=0
bash "$src/scripts/gpu-validate.sh" --sim --build "$build" --out "$tmp/out" "$@" >"$tmp/log" 2>&1 || code=$?
cat "$tmp/log"
[ "$code" = 0 ] || fail "gpu-validate.sh --sim exited $code"
checks="$tmp/out/checks.tsv"
[ -s "$checks" ] || fail "no checks.tsv"
! grep -q $'\tfail\t' "$checks" || fail "a check failed"
parts=$(sed -n 's/.*--parts \([0-9,]*\).*/\1/p' <<<"$*")
parts=${parts:-1,2,3}
if [[ ",$parts," == *",1,"* ]]; then
  cases=$(sed -n 's/.*--cases \([^ ]*\).*/\1/p' <<<"$*")
  for c in ${cases//,/ }; do
    n=${c%%:*} f=${c#*:}
    grep -q "^part1: $n rank(s), $f on rank $((n - 1))"$'\tpass\t' "$checks" || fail "no passing check for $c"
    grep -q "^| $n rank(s), $f on rank $((n - 1)) | " "$tmp/out/figures.md" || fail "figures.md has no row for $c"
  done
fi
if [[ ",$parts," == *",3,"* ]]; then
  for m in none full end host; do
    grep -q "^part3: timing $m"$'\tpass\t' "$checks" || fail "NCCLFR_TIMING=$m was not measured"
  done
  grep -q '^| full | [0-9]' "$tmp/out/figures.md" || fail "figures.md has no timing row for full"
fi
if [[ ",$parts," == *",2,"* ]]; then
  grep -q $'^part2: PyTorch DDP overhead\tskip\tno GPU' "$checks" || fail "part 2 was not skipped with its reason"
  grep -q '^PyTorch DDP: skipped (no GPU' "$tmp/out/figures.md" || fail "figures.md does not say why DDP was skipped"
fi
grep -q '^gpu-validate: [0-9]* passed, 0 failed' "$tmp/log" || fail "no closing count line"
echo "gpu_validate_test: PASS"
