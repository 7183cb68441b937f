#!/usr/bin/env bash
# The `ncclfr` analyzer CLI end to end on synthetic dumps: exit codes (0 healthy, 1 problem, 2 bad
# input), several jobs refused with their list, --job and --incident, --json, the text report's
# wording (global ranks, send or recv, plurals), what hostOnly and endOnly dumps still name, damaged
# files (one line each), show, db (tables, integer ns times, indexes), synth argument checks.
#
#   cli_test.sh NCCLFR_BINARY
set -uo pipefail
ncclfr=$1
tmp=$(mktemp -d /tmp/ncclfr-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
check() {  # check NAME CONDITION...
  local name=$1
  shift
  if "$@"; then echo "ok: $name"; else echo "FAIL: $name" >&2; failures=$((failures + 1)); fi
}
lacks() { ! grep -q -- "$1" "$2"; }  # lacks PATTERN FILE
run() {  # run EXPECTED_CODE OUTFILE ARGS...: runs ncclfr, keeps stdout in OUTFILE and stderr beside it
  local want=$1 out=$2
  shift 2
  "$ncclfr" "$@" >"$out" 2>"$out.err"
  local got=$?
  [ "$got" = "$want" ] || { echo "  ncclfr $* exited $got, expected $want" >&2; cat "$out.err" >&2; return 1; }
}

"$ncclfr" synth --ranks 16 --entries 64 --scenario healthy -o "$tmp/healthy" >/dev/null
"$ncclfr" synth --ranks 16 --entries 64 --scenario host_stall --fault-rank 6 -o "$tmp/hang" >/dev/null
"$ncclfr" synth --ranks 16 --entries 64 --scenario mismatch --fault-rank 0 -o "$tmp/mismatch" >/dev/null

check "healthy exits 0" run 0 "$tmp/o1" analyze "$tmp/healthy"
check "healthy says OK" grep -q '^ncclfr: OK:' "$tmp/o1"
check "a hang exits 1" run 1 "$tmp/o2" analyze "$tmp/hang"
check "the hang names rank 6" grep -q '^ncclfr: HANG: rank 6: host_stall' "$tmp/o2"
check "a mismatch on rank 0 names rank 0" run 1 "$tmp/o3" analyze --json "$tmp/mismatch"
check "json status desync" grep -q '"status": "desync"' "$tmp/o3"
check "json reason mismatch" grep -q '"reason": "mismatch"' "$tmp/o3"
check "json format field" grep -q '"format": 2' "$tmp/o3"
check "healthy says how many ranks left a dump" grep -q '^  job synth-job, incident .*: 16 of 16 ranks have a dump$' "$tmp/o1"
check "the hang's header labels the comm rank" grep -q '^  1\. rank 6 (.*): host_stall in .* on comm 0x[0-9a-f]* (tp), where it is comm rank [0-9]*$' "$tmp/o2"
check "the hang's states are words" lacks 'not_enqueued' "$tmp/o2"

# The text report of an unmatched send: the call as a send, every rank by its global rank, the
# comm rank labelled, the numbers explained, one call held up in the singular.
"$ncclfr" synth --ranks 16 --entries 64 --scenario unmatched_p2p -o "$tmp/p2p" >/dev/null
check "unmatched send exits 1" run 1 "$tmp/o44" analyze "$tmp/p2p"
check "unmatched send: the summary names the send and its peer" \
  grep -q '^ncclfr: DESYNC: rank 1: unmatched_p2p in send #24 to rank 9 on comm 0x[0-9a-f]* (pp)$' "$tmp/o44"
check "unmatched send: the header names the send and labels the comm rank" \
  grep -q '^  1\. rank 1 (.*): unmatched_p2p in send #24 to rank 9 on comm 0x[0-9a-f]* (pp), where it is comm rank 0$' "$tmp/o44"
check "unmatched send: the evidence says send" grep -q "rank 1's send #24 to rank 9 on comm .* has no matching receive" "$tmp/o44"
check "unmatched send: the chain names rank 9" grep -q 'its stream is held by send #24 to rank 9 on comm' "$tmp/o44"
check "unmatched send: no peer by comm rank" lacks 'to comm rank\|from comm rank' "$tmp/o44"
check "unmatched send: no bare p2p #" lacks 'p2p #' "$tmp/o44"
check "unmatched send: 1 call, singular" grep -qx '     holds up 1 call another rank waits in' "$tmp/o44"
check "unmatched send: no rank-communicator pairs" lacks 'rank-communicator' "$tmp/o44"
check "unmatched send: the numbers are explained" grep -q '#N: a 0-based sequence' "$tmp/o44"
check "unmatched send: both counts" grep -q 'rank 1 issued 25 sends to rank 9 (#0 to #24), rank 9 issued 24 receives from rank 1 (#0 to #23)$' "$tmp/o44"
check "unmatched send: json exits 1" run 1 "$tmp/o45" analyze --json "$tmp/p2p"
check "unmatched send: json op is send" grep -q '"op": "send"' "$tmp/o45"
check "unmatched send: json op is never send/recv" lacks '"op": "send/recv"' "$tmp/o45"

# Timing modes that measure less still name what the dumps show.
"$ncclfr" synth --ranks 16 --entries 64 --scenario missing --fault-rank 9 --timing hostOnly -o "$tmp/missing-host" >/dev/null
check "hostOnly missing exits 1" run 1 "$tmp/o46" analyze "$tmp/missing-host"
check "hostOnly missing names rank 9" grep -q '^ncclfr: HANG: rank 9: missing on comm 0x[0-9a-f]* (tp)$' "$tmp/o46"
check "hostOnly missing says what cannot be told" grep -q 'recorded with NCCLFR_TIMING=host, so whether its peers wait for it (or for what) cannot be told' "$tmp/o46"
"$ncclfr" synth --ranks 16 --entries 64 --scenario unmatched_p2p --timing hostOnly -o "$tmp/p2p-host" >/dev/null
check "hostOnly unmatched send exits 1" run 1 "$tmp/o47" analyze "$tmp/p2p-host"
check "hostOnly unmatched send is named" \
  grep -q '^ncclfr: DESYNC: rank 1: unmatched_p2p in send #24 to rank 9 on comm 0x[0-9a-f]* (pp)$' "$tmp/o47"
for sc in device_stall transport; do
  "$ncclfr" synth --ranks 16 --entries 64 --scenario $sc --timing endOnly -o "$tmp/$sc-end" >/dev/null
  check "endOnly $sc exits 1" run 1 "$tmp/o48-$sc" analyze "$tmp/$sc-end"
  check "endOnly $sc: the summary names the tp communicator" \
    grep -q '^ncclfr: HANG: .*allReduce #[0-9]* on comm 0x[0-9a-f]* (tp) is stuck in the transport' "$tmp/o48-$sc"
  check "endOnly $sc: the transport note once" [ "$(grep -c 'none completed it: stuck in the transport' "$tmp/o48-$sc")" = 1 ]
done

# Several jobs: refused with the list, exit 2; --job picks one.
"$ncclfr" synth --ranks 8 --entries 32 --scenario healthy --job other-job -o "$tmp/mixed/a" >/dev/null
"$ncclfr" synth --ranks 8 --entries 32 --scenario device_stall --fault-rank 3 -o "$tmp/mixed/b" >/dev/null
check "several jobs exit 2" run 2 "$tmp/o4" analyze "$tmp/mixed"
check "several jobs are listed" grep -q 'dumps of 2 jobs: other-job (8 dumps), synth-job (8 dumps); pick one with --job' "$tmp/o4.err"
check "--job picks one" run 1 "$tmp/o5" analyze --job synth-job "$tmp/mixed"
check "--job verdict" grep -q '^ncclfr: HANG: rank 3: device_stall' "$tmp/o5"
check "unknown --job exits 2" run 2 "$tmp/o6" analyze --job nope "$tmp/mixed"

# Incidents.
"$ncclfr" synth --ranks 8 --entries 32 --scenario host_stall --fault-rank 1 --incident 20261121T080000.000Z-r0 -o "$tmp/inc/1" >/dev/null
"$ncclfr" synth --ranks 8 --entries 32 --scenario device_stall --fault-rank 2 --incident 20261121T090000.000Z-r3 -o "$tmp/inc/2" >/dev/null
check "latest incident by default" run 1 "$tmp/o7" analyze "$tmp/inc"
check "latest incident verdict" grep -q '^ncclfr: HANG: rank 2: device_stall' "$tmp/o7"
check "--incident picks the earlier" run 1 "$tmp/o8" analyze --incident 20261121T080000.000Z-r0 "$tmp/inc"
check "earlier incident verdict" grep -q '^ncclfr: HANG: rank 1: host_stall' "$tmp/o8"
check "unknown --incident exits 2" run 2 "$tmp/o9" analyze --incident nope "$tmp/inc"

# Bad input: nothing there, nothing readable, damaged files beside good ones.
check "missing path exits 2" run 2 "$tmp/o10" analyze "$tmp/does-not-exist"
mkdir -p "$tmp/junk" && echo "not a dump" >"$tmp/junk/x.ncclfr"
check "only junk exits 2" run 2 "$tmp/o11" analyze "$tmp/junk"
check "junk gets one line" grep -q 'x.ncclfr: not an ncclfr dump (wrong magic)' "$tmp/o11.err"
cp -r "$tmp/hang" "$tmp/damaged"
f=$(ls "$tmp/damaged"/*.ncclfr | head -1)
head -c 100 "$f" >"$f.cut" && mv "$f.cut" "$f"
: >"$tmp/damaged/empty.ncclfr"
check "damaged files: exit 1" run 1 "$tmp/o12" analyze "$tmp/damaged"
check "damaged files: incomplete" grep -q '^ncclfr: INCOMPLETE: rank 6: host_stall' "$tmp/o12"
check "damaged files: one line each" test "$(grep -c 'ncclfr: ' "$tmp/o12.err")" -eq 2
check "bad usage exits 2" run 2 "$tmp/o13" analyze --no-such-flag "$tmp/hang"

# show
check "show exits 0" run 0 "$tmp/o14" show "$(ls "$tmp/hang"/*.ncclfr | head -1)"
check "show lists communicators and entries" grep -q 'allReduce' "$tmp/o14"
check "show of junk exits 2" run 2 "$tmp/o15" show "$tmp/junk/x.ncclfr"
one=$(ls "$tmp/hang"/*.ncclfr | head -1)
check "show --comm past the table exits 2" run 2 "$tmp/o15" show "$one" --comm 99
check "show --comm past the table says how many" grep -q -- "--comm 99: .* has [0-9]* communicators (indexes 0 to " "$tmp/o15.err"
check "show --comm -1 exits 2" run 2 "$tmp/o15" show "$one" --comm -1
check "show --last -1 exits 2" run 2 "$tmp/o15" show "$one" --last -1
check "show --last -1 says why" grep -qx -- "--last: must be 0 or more, not -1" "$tmp/o15.err"
check "a mistyped subcommand exits 2" run 2 "$tmp/o15" anlyze "$tmp/hang"
check "a mistyped subcommand is named" grep -qx "ncclfr: unknown subcommand 'anlyze' (ncclfr --help lists them)" "$tmp/o15.err"

# db
check "db exits 0" run 0 "$tmp/o16" db "$tmp/hang" -o "$tmp/trace.sqlite"
if command -v sqlite3 >/dev/null; then
  check "db entries" test "$(sqlite3 "$tmp/trace.sqlite" 'SELECT count(*) FROM entries')" -eq $((16 * 64))
  check "db dumps" test "$(sqlite3 "$tmp/trace.sqlite" 'SELECT count(*) FROM dumps')" -eq 16
  check "db integer ns times" test "$(sqlite3 "$tmp/trace.sqlite" "SELECT typeof(enqueue_ns) FROM entries LIMIT 1")" = integer
  check "db indexes" test "$(sqlite3 "$tmp/trace.sqlite" "SELECT count(*) FROM sqlite_master WHERE type='index'")" -ge 4
  check "db view" test "$(sqlite3 "$tmp/trace.sqlite" "SELECT count(*) FROM entries_by_rank WHERE global_rank = 6")" -eq 64
  check "db timeout_ns NULL when the dumps do not say" test "$(sqlite3 "$tmp/trace.sqlite" "SELECT count(*) FROM dumps WHERE timeout_ns IS NULL")" -eq 16
else
  echo "skip: sqlite3 shell not installed, db contents not checked"
fi
check "db with damaged input exits 1" run 1 "$tmp/o17" db "$tmp/damaged" -o "$tmp/trace2.sqlite"

# Outputs never destroy inputs: a dump, an input file, an unrelated file (db), all refused with exit 2
# and the file left as it was.
one=$(ls "$tmp/hang"/*.ncclfr | head -1)
cp "$one" "$tmp/one.ncclfr"
sum_before=$(cksum <"$one")
check "db onto one of its inputs exits 2" run 2 "$tmp/o20" db "$tmp/hang" -o "$one"
check "db onto an input says so" grep -q "^ncclfr: refusing to overwrite $one: it is one of the inputs$" "$tmp/o20.err"
check "db onto a dump that is no input exits 2" run 2 "$tmp/o21" db "$tmp/healthy" -o "$tmp/one.ncclfr"
check "db onto a dump says so" grep -q "refusing to overwrite $tmp/one.ncclfr: it is an ncclfr dump" "$tmp/o21.err"
echo "my notes" >"$tmp/notes.txt"
check "db onto an unrelated file exits 2" run 2 "$tmp/o22" db "$tmp/hang" -o "$tmp/notes.txt"
check "db onto an unrelated file says so" grep -q "refusing to overwrite $tmp/notes.txt: it is neither empty nor an SQLite database" "$tmp/o22.err"
check "the inputs are intact" test "$(cksum <"$one")" = "$sum_before" -a "$(cksum <"$tmp/one.ncclfr")" = "$sum_before"
check "the notes are intact" grep -qx "my notes" "$tmp/notes.txt"
check "db replaces its own database" run 0 "$tmp/o23" db "$tmp/hang" -o "$tmp/trace.sqlite"
: >"$tmp/empty.sqlite"
check "db fills an empty file" run 0 "$tmp/o24" db "$tmp/hang" -o "$tmp/empty.sqlite"
check "no temporary file left" test -z "$(ls "$tmp" | grep '\.tmp')"

# db with nothing readable writes nothing; unwritable outputs are named as the user gave them.
check "db of junk only exits 2" run 2 "$tmp/o25" db "$tmp/junk" -o "$tmp/junk.sqlite"
check "db of junk only writes nothing" test ! -e "$tmp/junk.sqlite"
check "db of junk only says so" grep -q "none of the 1 dumps could be read: $tmp/junk.sqlite not written" "$tmp/o25.err"
check "db of junk only claims nothing" test ! -s "$tmp/o25"
check "db to a missing folder exits 2" run 2 "$tmp/o26" db "$tmp/hang" -o "$tmp/no/such/x.sqlite"
check "db to a missing folder names the path" grep -qx "ncclfr: cannot write $tmp/no/such/x.sqlite: No such file or directory" "$tmp/o26.err"

# A FIFO named like a dump is refused at once, not read forever.
mkfifo "$tmp/fifo.ncclfr"
for c in analyze show db; do
  extra=()
  [ "$c" = db ] && extra=(-o "$tmp/fifo.sqlite")
  timeout 20 "$ncclfr" "$c" "$tmp/fifo.ncclfr" "${extra[@]}" >"$tmp/o27" 2>"$tmp/o27.err"
  rc=$?
  check "$c of a FIFO exits 2 at once (got $rc)" test "$rc" -eq 2
  check "$c of a FIFO says why" grep -q "fifo.ncclfr: not a regular file" "$tmp/o27.err"
done
rm -f "$tmp/fifo.ncclfr"

# salvage: a shm folder that is not there is bad input, not "nothing to salvage".
check "salvage of a missing shm folder exits 2" run 2 "$tmp/o28" salvage --shm-dir "$tmp/no-shm" -o "$tmp/salvaged"
check "salvage names the missing folder" test "$(grep -c "$tmp/no-shm" "$tmp/o28.err")" -eq 1
check "salvage wrote nothing" test ! -e "$tmp/salvaged"

# trigger: a missing folder is made (live ranks poll it before their first dump creates it), with a
# warning that nothing shows a job there; a folder with a job's files gets none; a file is refused.
check "trigger of a missing folder exits 0" run 0 "$tmp/o29" trigger "$tmp/dumpdir/nojob"
check "trigger of a missing folder warns" grep -q "^ncclfr: warning: $tmp/dumpdir/nojob did not exist (created it), and no process on this host records job 'nojob'" "$tmp/o29.err"
check "trigger of a missing folder warns once" test "$(wc -l <"$tmp/o29.err")" -eq 1
check "trigger wrote generation 1" test -f "$tmp/dumpdir/nojob/ncclfr-trigger.1"
check "trigger of a job's folder exits 0" run 0 "$tmp/o30" trigger "$tmp/hang"
check "trigger of a job's folder does not warn" test ! -s "$tmp/o30.err"
check "trigger of a file exits 2" run 2 "$tmp/o31" trigger "$tmp/notes.txt"
check "trigger of a file says so" grep -q "notes.txt is not a folder" "$tmp/o31.err"

# synth argument checks
check "synth unknown scenario exits 2" run 2 "$tmp/o18" synth --ranks 8 --scenario nope -o "$tmp/x"
check "synth bad layout exits 2" run 2 "$tmp/o19" synth --ranks 10 --tp 4 --scenario healthy -o "$tmp/x"
for bad in "--tp 0" "--pp -1" "--fault-rank -1" "--steps 0" "--steps -5" "--stale-copy-of -1" "--untracked-rank -2"; do
  # shellcheck disable=SC2086 # the option and its value are two words
  check "synth $bad exits 2" run 2 "$tmp/o40" synth --ranks 8 --scenario healthy $bad -o "$tmp/x"
done
check "synth --stale-copy-of past the ranks exits 2" run 2 "$tmp/o41" synth --ranks 8 --scenario died --stale-copy-of 99 -o "$tmp/x"
check "synth --stale-copy-of past the ranks says so" grep -q "stale-copy-of must be below --ranks" "$tmp/o41.err"
check "synth into a folder that holds dumps exits 2" run 2 "$tmp/o42" synth --ranks 8 --scenario healthy -o "$tmp/healthy"
check "synth into a folder that holds dumps says so" grep -q "already holds dumps" "$tmp/o42.err"
check "synth left the folder's dumps alone" test "$(find "$tmp/healthy" -name '*.ncclfr' | wc -l)" = 16
check "synth larger than the free disk exits 2" run 2 "$tmp/o43" synth --ranks 4000000 --entries 16777216 --scenario healthy -o "$tmp/huge"
check "synth larger than the free disk says so" grep -q "GB free at" "$tmp/o43.err"
check "synth larger than the free disk wrote nothing" test ! -e "$tmp/huge"

[ "$failures" = 0 ] || { echo "cli_test: $failures check(s) failed" >&2; exit 1; }
echo "cli_test: all checks passed"
