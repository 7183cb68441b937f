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
grep -qx "ncclfr report: cannot write $out/no/such/dir/r.html: No such file or directory" "$out/last.err" ||
  fail "unwritable report: the error line does not name the path asked for: $(cat "$out/last.err")"
expect 2 "unknown incident" "$ncclfr" report "$out/dumps" --incident nope -o "$out/x.html"
expect 2 "missing -o" "$ncclfr" report "$out/dumps"
expect 2 "unwritable trace" "$ncclfr" export --format chrome-trace "$out/dumps" -o "$out/no/such/dir/t.json"
grep -qx "ncclfr export: cannot write $out/no/such/dir/t.json: No such file or directory" "$out/last.err" ||
  fail "unwritable trace: the error line does not name the path asked for: $(cat "$out/last.err")"
expect 2 "per-rank folder in a missing folder" "$ncclfr" export --format chrome-trace --per-rank "$out/dumps" -o "$out/no/such/pr"
grep -q "cannot write $out/no/such/pr: " "$out/last.err" || fail "per-rank: no 'cannot write' line: $(cat "$out/last.err")"
[ ! -e "$out/no" ] || fail "per-rank export created the missing parent folders"

# An output that is a dump, or one of the inputs, is refused and left as it was.
dump=$(ls "$out/dumps"/*.ncclfr | head -1)
sum=$(cksum <"$dump")
expect 2 "report onto an input dump" "$ncclfr" report "$out/dumps" -o "$dump"
grep -qx "ncclfr: refusing to overwrite $dump: it is one of the inputs" "$out/last.err" || fail "report onto an input: $(cat "$out/last.err")"
cp "$dump" "$out/lone.ncclfr"
expect 2 "export onto another dump" "$ncclfr" export --format chrome-trace "$out/dumps" -o "$out/lone.ncclfr"
grep -qx "ncclfr: refusing to overwrite $out/lone.ncclfr: it is an ncclfr dump" "$out/last.err" || fail "export onto a dump: $(cat "$out/last.err")"
expect 2 "export onto an input named explicitly" "$ncclfr" export --format chrome-trace "$dump" -o "$dump"
[ "$(cksum <"$dump")" = "$sum" ] && [ "$(cksum <"$out/lone.ncclfr")" = "$sum" ] || fail "a dump was overwritten"
expect 0 "report replaces an earlier report" "$ncclfr" report "$out/dumps" -o "$out/report.html"

[ ! -e "$out/x.json" ] && [ ! -e "$out/x.html" ] || fail "a failed command left a file behind"
ls "$out" | grep -q '\.tmp' && fail "a temporary file was left behind"
echo "PASS"
