#!/usr/bin/env bash
# `ncclfr report` and `ncclfr export` from the command line, without a browser: files written,
# traces valid (viewer_trace_check), and the documented exit codes for bad usage and bad input.
#   cli_test.sh NCCLFR TRACE_CHECK OUT_DIR
set -uo pipefail
ncclfr=$1 tracecheck=$2 out=$3
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() {  # expect CODE what... -- command
  local code=$1; shift
  local what=$1; shift
  "$@" >"$out/last.out" 2>"$out/last.err"
  local rc=$?
  [ $rc -eq "$code" ] || { cat "$out/last.err" >&2; fail "$what: exit $rc, expected $code"; }
  echo "ok    $what (exit $rc)"
}
rm -rf "$out"
mkdir -p "$out"
"$ncclfr" synth --ranks 32 --scenario device_stall --entries 512 -o "$out/dumps" >/dev/null || fail "synth"

expect 0 "report written" "$ncclfr" report "$out/dumps" -o "$out/report.html"
grep -q 'id="ncclfr-data"' "$out/report.html" || fail "the report has no data block"
grep -q "calls shown" "$out/last.out" || fail "report says nothing about what it wrote"
expect 0 "narrow window" "$ncclfr" report "$out/dumps" -o "$out/narrow.html" --before 1 --after 0
expect 0 "trace written" "$ncclfr" export --format chrome-trace "$out/dumps" -o "$out/trace.json"
"$tracecheck" "$out/trace.json" --ranks 32 || fail "trace invalid"
expect 0 "a few ranks, newest calls" "$ncclfr" export --format chrome-trace "$out/dumps" --ranks 0-3,17 --last 50 -o "$out/part.json"
"$tracecheck" "$out/part.json" --ranks 4 || fail "partial trace invalid"
expect 0 "trace to stdout" "$ncclfr" export --format chrome-trace "$out/dumps" --ranks 1 -o -
"$tracecheck" "$out/last.out" || fail "stdout trace invalid"
expect 0 "per-rank traces" "$ncclfr" export --format chrome-trace --per-rank "$out/dumps" -o "$out/per-rank"
[ "$(ls "$out/per-rank" | wc -l)" -eq 32 ] || fail "per-rank: expected 32 files"
"$tracecheck" "$out/per-rank/rank17.json" || fail "per-rank trace invalid"

expect 2 "no dumps" "$ncclfr" report "$out/nothing-here" -o "$out/x.html"
expect 2 "unknown format" "$ncclfr" export --format json "$out/dumps" -o "$out/x.json"
expect 2 "bad rank list" "$ncclfr" export --format chrome-trace "$out/dumps" --ranks 5-1 -o "$out/x.json"
expect 2 "ranks without dumps" "$ncclfr" export --format chrome-trace "$out/dumps" --ranks 1000 -o "$out/x.json"
expect 2 "unwritable report" "$ncclfr" report "$out/dumps" -o "$out/no/such/dir/r.html"
expect 2 "unknown incident" "$ncclfr" report "$out/dumps" --incident nope -o "$out/x.html"
expect 2 "missing -o" "$ncclfr" report "$out/dumps"
[ ! -e "$out/x.json" ] && [ ! -e "$out/x.html" ] || fail "a failed command left a file behind"
ls "$out" | grep -q '\.tmp' && fail "a temporary file was left behind"
echo "PASS"
