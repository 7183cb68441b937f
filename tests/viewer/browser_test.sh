#!/usr/bin/env bash
# The viewer end to end: `ncclfr report` and `ncclfr export` from the CLI, the report in headless
# chromium (viewer/test/report_check.mjs; wording_check.cjs: its words are the analyzer's), the trace
# through viewer_trace_check.
#
#   browser_test.sh synth  --ncclfr BIN --fixture BIN --trace-check BIN --out DIR
#       a synthetic job with a planted host stall, and a hostile one (HTML in host names)
#   browser_test.sh sim    --ncclfr BIN --trace-check BIN --out DIR --simrun BIN --job BIN --recorder LIB
#                          [--preload-first LIB]   (a sanitizer runtime, for a sanitized recorder)
#       a real job on sim/, recorded by libncclfr.so, with a planted host stall
#
# Exit 0 passed, 1 failed, 77 skipped (no node, no playwright-core, no chromium: said loudly).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mode=${1:-}
shift || true
ncclfr="" fixture="" tracecheck="" out="" simrun="" job="" recorder="" preload_first=""
while (($#)); do
  case "$1" in
    --ncclfr) ncclfr=$2 ;;
    --fixture) fixture=$2 ;;
    --trace-check) tracecheck=$2 ;;
    --out) out=$2 ;;
    --simrun) simrun=$2 ;;
    --job) job=$2 ;;
    --recorder) recorder=$2 ;;
    --preload-first) preload_first=$2 ;;
    *) echo "browser_test.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift 2
done
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() {
  echo "SKIPPED: $* -- the browser test of the HTML report did NOT run (scripts/install-deps.sh installs what it needs)" >&2
  exit 77
}

command -v node >/dev/null || skip "node is not installed"
[ -x /usr/bin/chromium ] || [ -n "${NCCLFR_CHROMIUM:-}" ] || skip "/usr/bin/chromium is not installed"
[ -f "$root/viewer/test/node_modules/playwright-core/package.json" ] ||
  skip "playwright-core is not installed in viewer/test/node_modules (npm install there)"

rm -rf "$out"
mkdir -p "$out"
check=(node "$root/viewer/test/report_check.mjs")

# The suspect, its communicator and frontier, as `ncclfr analyze --json` reports them.
suspect_of() {
  node -e '
    let s = ""; process.stdin.on("data", d => s += d).on("end", () => {
      const v = JSON.parse(s), x = (v.suspects || [])[0];
      if (!x) { console.error("no suspect in the verdict: " + v.summary); process.exit(1); }
      console.log([x.rank, x.comm, x.seq, x.reason].join(" "));
    });'
}

case "$mode" in
  synth)
    "$ncclfr" synth --ranks 16 --scenario host_stall -o "$out/dumps" >/dev/null || fail "ncclfr synth"
    incident_args=()
    ranks=16
    ;;
  sim)
    # A 4-rank tp x dp training loop on sim/, recorded, whose rank 2 stops before its all-reduce
    # of step 3. Each rank's watchdog dumps after NCCLFR_TIMEOUT; the job's own watchdog ends it.
    export NCCLFR_DUMP_DIR="$out/dumps" NCCLFR_TIMEOUT=2
    jobid="viewer-browser-$$"
    LD_PRELOAD="${preload_first:+$preload_first }$recorder" "$simrun" -n 4 --timeout 90 --grace 5 --job-id "$jobid" --log-dir "$out/logs" -q -- \
      "$job" --steps 12 --layout tp-dp --fault host_stall --fault-rank 2 --fault-step 3 --quiet \
      --watchdog-timeout 8
    rc=$?
    unset NCCLFR_DUMP_DIR NCCLFR_TIMEOUT
    [ "$rc" -ne 0 ] || fail "the sim job with a planted stall exited 0"
    n=$(find "$out/dumps" -name '*.ncclfr' | wc -l)
    [ "$n" -ge 4 ] || { tail -n 5 "$out"/logs/* >&2; fail "the recorded sim job left $n dumps, expected one per rank (4)"; }
    # Ending the job (its watchdog, then the launcher's SIGTERM) can make later incidents; the
    # planted stall is the first one, and it must have every rank's dump.
    incidents=$("$ncclfr" analyze --incident '?' "$out/dumps" 2>&1 | sed -n 's/.*; it has: //p')
    first=${incidents%%,*}
    [ -n "$first" ] || fail "no incident found in the sim job's dumps"
    incident_args=(--incident "$first")
    ranks=4
    ;;
  *) echo "usage: browser_test.sh synth|sim ..." >&2; exit 2 ;;
esac

"$ncclfr" analyze --json "${incident_args[@]}" "$out/dumps" >"$out/verdict.json"
[ $? -eq 1 ] || fail "ncclfr analyze did not report a problem for the planted stall"
read -r rank comm frontier reason < <(suspect_of <"$out/verdict.json") || fail "no suspect"
echo "verdict: suspect rank $rank ($reason) in #$frontier on comm $comm"
if [ "$mode" = sim ] && { [ "$rank" != 2 ] || [ "$reason" != host_stall ]; }; then
  # The report below must mark the rank that stalled: a verdict naming another is a failure here too.
  fail "the verdict names rank $rank ($reason), but a host stall was planted on rank 2"
fi

"$ncclfr" report "${incident_args[@]}" "$out/dumps" -o "$out/report.html" || fail "ncclfr report"
"$ncclfr" export --format chrome-trace "${incident_args[@]}" "$out/dumps" -o "$out/trace.json" || fail "ncclfr export"
"$tracecheck" "$out/trace.json" --ranks "$ranks" || fail "the exported trace is not valid"
"$ncclfr" export --format chrome-trace --per-rank "${incident_args[@]}" "$out/dumps" -o "$out/trace-per-rank" >/dev/null ||
  fail "ncclfr export --per-rank"
for f in "$out"/trace-per-rank/*.json; do "$tracecheck" "$f" >/dev/null || fail "$f is not valid"; done

"${check[@]}" --report "$out/report.html" --rank "$rank" --comm "$comm" --frontier "$frontier" --reason "$reason" \
  --screenshot "$out/report.png"
rc=$?
[ $rc -eq 77 ] && skip "chromium could not be started"
[ $rc -eq 0 ] || fail "browser checks of $out/report.html"

if [ "$mode" = synth ]; then
  out_line=$("$fixture" hostile "$out/hostile-dumps") || fail "viewer_fixture"
  "$ncclfr" report "$out/hostile-dumps" -o "$out/hostile.html" >/dev/null || fail "ncclfr report (hostile dumps)"
  "$ncclfr" export --format chrome-trace "$out/hostile-dumps" -o "$out/hostile-trace.json" >/dev/null ||
    fail "ncclfr export (hostile dumps)"
  "$tracecheck" "$out/hostile-trace.json" --ranks 8 || fail "the hostile dumps' trace is not valid"
  "${check[@]}" --hostile "$out/hostile.html" --text '<img src=x onerror=alert(1)>' --screenshot "$out/hostile.png"
  rc=$?
  [ $rc -eq 77 ] && skip "chromium could not be started"
  [ $rc -eq 0 ] || fail "browser checks of $out/hostile.html ($out_line)"

  # Every other kind of verdict and timing mode opens, draws and answers clicks without an error.
  pages=()
  for x in healthy:full device_stall:endOnly mismatch:full missing:full died:full unmatched_p2p:full \
           error:endOnly host_stall:hostOnly; do
    sc=${x%%:*} timing=${x##*:}
    "$ncclfr" synth --ranks 32 --scenario "$sc" --timing "$timing" --entries 256 -o "$out/smoke/$sc-$timing" >/dev/null ||
      fail "ncclfr synth $sc $timing"
    "$ncclfr" report "$out/smoke/$sc-$timing" -o "$out/smoke/$sc-$timing.html" >/dev/null || fail "ncclfr report $sc $timing"
    pages+=("$out/smoke/$sc-$timing.html")
  done
  "$ncclfr" synth --ranks 32 --scenario host_stall --no-global-rank --entries 256 -o "$out/smoke/no-rank" >/dev/null &&
    "$ncclfr" report "$out/smoke/no-rank" -o "$out/smoke/no-rank.html" >/dev/null || fail "report without global ranks"
  pages+=("$out/smoke/no-rank.html")
  "${check[@]}" --smoke "$(IFS=,; echo "${pages[*]}")"
  rc=$?
  [ $rc -eq 77 ] && skip "chromium could not be started"
  [ $rc -eq 0 ] || fail "browser checks of the other verdicts"

  # The report says what `ncclfr analyze` says, in its words: the ranks with a dump, what a suspect
  # holds up, a send with its peer.
  wording=(env NODE_PATH="$root/viewer/test/node_modules" node "$here/wording_check.cjs")
  first_of() {  # first_of DUMPS: the first suspect's blocking and call ("send #24 to rank 9")
    "$ncclfr" analyze --json "$1" | node -e '
      let s = ""; process.stdin.on("data", d => s += d).on("end", () => {
        const x = JSON.parse(s).suspects[0], dir = { send: " to ", recv: " from " }[x.op];
        console.log(x.blocking + "\t" + x.op + " #" + x.seq + (dir && x.peer ? dir + x.peer.label : ""));
      });'
  }
  IFS=$'\t' read -r blocking _ < <(first_of "$out/dumps")
  "${wording[@]}" "$out/report.html" 16 16 "$blocking"
  rc=$?
  [ $rc -eq 77 ] && skip "chromium could not be started"
  [ $rc -eq 0 ] || fail "the report's words of $out/report.html"
  IFS=$'\t' read -r blocking call < <(first_of "$out/smoke/unmatched_p2p-full")
  "${wording[@]}" "$out/smoke/unmatched_p2p-full.html" 32 32 "$blocking" "$call"
  rc=$?
  [ $rc -eq 77 ] && skip "chromium could not be started"
  [ $rc -eq 0 ] || fail "the report's words of $out/smoke/unmatched_p2p-full.html"
fi
echo "PASS: $mode (artifacts in $out)"
