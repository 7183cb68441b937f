#!/usr/bin/env bash
# Builds a Release copy of ncclfr in its own folder, runs every benchmark in bench/ — issue 7's and
# each part's own — and writes the table into docs/performance.md (between the run_all.sh markers;
# the rest of the file is left alone), with the machine, date, commit, load average, medians and
# ratios.
#
#   bench/run_all.sh                 # everything, figures into docs/performance.md
#   bench/run_all.sh --quick         # a small subset, to check that it all works: the table goes to
#                                    # OUT/performance.md (a copy), not into docs/
#   options: --build DIR (default build-bench)  --out DIR (logs, CSV; default /tmp/ncclfr-bench-DATE)
#            --doc FILE  --jobs N (default 2)  --no-build
#
# What runs (each skipped with a note when its program is missing):
#   recorder_overhead      the recorder's hot path per NCCL call, with and without the shim (recorder)
#   dump_latency           dump latency versus ring size, 1k/4k/64k entries (issue 7)
#   sim_job_overhead.sh    a sim/ job's step time with and without the recorder (issue 7)
#   bench/*.sh of the other parts (viewer_report.sh, analyzer_*.sh, ...): run with --build DIR; their
#                          last summary line goes into the table
#   any other Google Benchmark program in BUILD/bin: medians of its benchmarks
#
# Measure on a quiet machine: the load average is recorded next to the figures. Exit codes: 0 done
# (a benchmark that failed is marked in the table); 1 the build failed or the table could not be
# written; 2 bad usage.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-bench" out="" doc="" quick=0 jobs=2 do_build=1
while (($#)); do
  case "$1" in
    --build) build=$2; shift ;;
    --out) out=$2; shift ;;
    --doc) doc=$2; shift ;;
    --quick) quick=1 ;;
    --jobs) jobs=$2; shift ;;
    --no-build) do_build=0 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "run_all.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "run_all.sh: --jobs takes a positive integer" >&2; exit 2; }
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=${out:-/tmp/ncclfr-bench-$stamp}
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ -z "$doc" ]; then
  if [ "$quick" = 1 ]; then
    doc="$out/performance.md"
    [ -f "$root/docs/performance.md" ] && cp "$root/docs/performance.md" "$doc"
  else
    doc="$root/docs/performance.md"
  fi
fi

# ---------------------------------------------------------------------------------------------
# The build: Release, no tests. GCC 12 reports a false -Wrestrict inside std::string at -O3 (GCC
# bug 105329); it stays a warning here so that warnings-as-errors does not stop the build.
if [ "$do_build" = 1 ]; then
  echo "run_all: building Release in $build (log: $out/build.log)"
  if ! { cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DNCCLFR_BUILD_TESTS=OFF -DNCCLFR_BUILD_BENCH=ON \
           -DCMAKE_CXX_FLAGS= && cmake --build "$build" -j"$jobs"; } >"$out/build.log" 2>&1; then
    echo "run_all.sh: the build failed; the end of $out/build.log:" >&2
    grep -E 'error|Error' "$out/build.log" | head -n 10 >&2 || tail -n 10 "$out/build.log" >&2
    exit 1
  fi
fi
build=$(cd "$build" && pwd)
bin="$build/bin"

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
load_start=$(loadavg)
started="$(date -u +%Y-%m-%d) at $(date -u +%H:%M) UTC"
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  dirty=" (the working tree had uncommitted changes)"
fi
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
mem=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
compiler=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null | head -1)
compiler_version=$("${compiler:-c++}" --version 2>/dev/null | head -1)

# rows.tsv: one line per figure, section<TAB>columns... (turned into tables at the end).
rows="$out/rows.tsv"
: >"$rows"
note() { printf 'note\t%s\n' "$1" >>"$rows"; echo "run_all: $1"; }

# Google Benchmark CSV -> "name<TAB>real<TAB>cpu<TAB>unit<TAB>counters..." for the median rows, with
# the run parameters (min_time, repeats, iterations, real_time) taken out of the name.
gb_medians() {
  awk -F, 'NR > 1 && $1 ~ /_median"$/ {
    n = $1; gsub(/"/, "", n); sub(/_median$/, "", n)
    k = split(n, p, "/"); name = p[1]
    for (i = 2; i <= k; i++) if (p[i] !~ /^(min_time|repeats|iterations):/ && p[i] != "real_time") name = name "/" p[i]
    line = name "\t" $3 "\t" $4 "\t" $5
    for (i = 11; i <= NF; i++) line = line "\t" $i
    print line
  }' "$1"
}

# ---------------------------------------------------------------------------------------------
# 1. The recorder's hot path per call (bench/recorder_overhead.cc, the recorder's).
if [ -x "$bin/recorder_overhead" ]; then
  echo "run_all: recorder_overhead (load $(loadavg))"
  filter=()
  [ "$quick" = 1 ] && filter=(--benchmark_filter=AllReduce)
  if "$bin/recorder_overhead" "${filter[@]}" --benchmark_format=csv >"$out/recorder_overhead.csv" 2>"$out/recorder_overhead.err"; then
    gb_medians "$out/recorder_overhead.csv" >"$out/recorder_overhead.tsv"
    for op in AllReduce Send GroupSendRecv; do
      for t in 1 4; do
        no=$(awk -F'\t' -v n="BM_${op}_NoShim/threads:$t" '$1 == n { print $3 }' "$out/recorder_overhead.tsv")
        yes=$(awk -F'\t' -v n="BM_${op}_Shim/threads:$t" '$1 == n { print $3 }' "$out/recorder_overhead.tsv")
        [ -n "$no" ] && [ -n "$yes" ] || continue
        # A group step is 4 calls (start, send, recv, end).
        per=1
        [ "$op" = GroupSendRecv ] && per=4
        printf 'recorder\t%s\t%s\t%s\n' "$op" "$t" \
          "$(awk -v a="$no" -v b="$yes" -v d="$per" 'BEGIN { printf "%.1f\t%.1f\t%.1f", a / d, b / d, (b - a) / d }')" >>"$rows"
      done
    done
  else
    note "recorder_overhead failed: $(tail -n 1 "$out/recorder_overhead.err")"
  fi
else
  note "recorder_overhead is not built (bench/recorder_bench.cmake): skipped"
fi

# ---------------------------------------------------------------------------------------------
# 2. Dump latency versus ring size.
if [ -x "$bin/dump_latency" ]; then
  sizes="1024 4096 65536"
  [ "$quick" = 1 ] && sizes="1024 4096"
  for n in $sizes; do
    echo "run_all: dump_latency --entries $n (load $(loadavg))"
    if "$bin/dump_latency" --entries "$n" --benchmark_format=csv >"$out/dump_latency_$n.csv" 2>"$out/dump_latency_$n.err"; then
      gb_medians "$out/dump_latency_$n.csv" >"$out/dump_latency_$n.tsv"
      # Columns: name real cpu unit bytes entries.
      sig=$(awk -F'\t' -v n="DumpOnSignal/$n" '$1 == n { print $2 }' "$out/dump_latency_$n.tsv")
      conv=$(awk -F'\t' -v n="RingToDump/$n" '$1 == n { print $2 }' "$out/dump_latency_$n.tsv")
      write=$(awk -F'\t' -v n="WriteDumpFile/$n" '$1 == n { print $2 }' "$out/dump_latency_$n.tsv")
      bytes=$(awk -F'\t' -v n="WriteDumpFile/$n" '$1 == n { printf "%.2f", $5 / 1e6 }' "$out/dump_latency_$n.tsv")
      printf 'dump\t%s\t%s\t%s\t%s\t%s\n' "$n" "$sig" "$conv" "$write" "$bytes" >>"$rows"
    else
      note "dump_latency --entries $n failed: $(tail -n 1 "$out/dump_latency_$n.err")"
    fi
  done
else
  note "dump_latency is not built (bench/dump_bench.cmake): skipped"
fi

# ---------------------------------------------------------------------------------------------
# 3. A sim/ job's step time with and without the recorder.
if [ -x "$bin/nccl_job" ] && [ -x "$bin/ncclfr-simrun" ]; then
  echo "run_all: sim_job_overhead.sh (load $(loadavg))"
  args=()
  [ "$quick" = 1 ] && args=(--rounds 2 --short 5 --long 25)
  if bash "$root/bench/sim_job_overhead.sh" --build "$build" "${args[@]}" --tsv "$out/simjob.tsv" \
      >"$out/simjob.log" 2>&1; then
    get() { awk -F'\t' -v k="$1" '$1 == k { print $2 }' "$out/simjob.tsv"; }
    printf 'simjob\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(get simjob_ranks)" "$(get simjob_rounds)" "$(get simjob_off_us)" \
      "$(get simjob_on_us)" "$(get simjob_ratio)" "$(get simjob_round_ratio) ($(get simjob_ratio_min) .. $(get simjob_ratio_max))" "$(get simjob_calls_per_step)" \
      "$(get simjob_per_call_us)" >>"$rows"
  else
    note "sim_job_overhead.sh failed: $(tail -n 1 "$out/simjob.log")"
  fi
else
  note "examples/nccl_job or ncclfr-simrun is not built: the sim/ job benchmark is skipped"
fi

# ---------------------------------------------------------------------------------------------
# 4. The other parts' scripts, called the way each documents; a script unknown here gets --build DIR
#    in a full run and is left out of a quick one. A script that prints a markdown table has the
#    table copied; otherwise its last line (not its "machine:"/"date:" lines) is the summary.
for script in "$root"/bench/*.sh; do
  name=$(basename "$script")
  case "$name" in run_all.sh|sim_job_overhead.sh) continue ;; esac
  case "$name:$quick" in
    viewer_report.sh:0) args=(--build "$build") ;;
    viewer_report.sh:1) args=(--build "$build" --ranks 256 --runs 1 --data "$out/viewer-data") ;;
    analyzer_bench.sh:0) args=("$build") ;;
    analyzer_bench.sh:1) note "$name: not run with --quick (it writes synthetic jobs of up to 100,000 ranks)"; continue ;;
    *:0) args=(--build "$build") ;;
    *) note "$name: not run with --quick (its quick options are unknown here)"; continue ;;
  esac
  echo "run_all: $name (load $(loadavg))"
  log="$out/${name%.sh}.log"
  code=0
  bash "$script" "${args[@]}" >"$log" 2>&1 || code=$?
  if grep -q '^|' "$log"; then
    printf 'script\t%s\t%s\t%s\n' "$name" "$code" "table below" >>"$rows"
    { echo; echo "\`$name\` (exit $code):"; echo; grep '^|' "$log"; } >>"$out/script-tables.md"
  else
    summary=$(grep -Ev '^(machine|date):' "$log" | grep -v '^[[:space:]]*$' | tail -n 1)
    printf 'script\t%s\t%s\t%s\n' "$name" "$code" "${summary//|/\\|}" >>"$rows"
  fi
done

# ---------------------------------------------------------------------------------------------
# 5. Any other Google Benchmark program (one a part added without a script).
for exe in "$bin"/*; do
  [ -x "$exe" ] && [ -f "$exe" ] || continue
  name=$(basename "$exe")
  case "$name" in recorder_overhead|dump_latency) continue ;; esac
  ldd "$exe" 2>/dev/null | grep libbenchmark >/dev/null || continue
  echo "run_all: $name (load $(loadavg))"
  if "$exe" --benchmark_format=csv >"$out/$name.csv" 2>"$out/$name.err"; then
    gb_medians "$out/$name.csv" >"$out/$name.tsv"
    # Without repetitions there are no median rows: take every run.
    [ -s "$out/$name.tsv" ] || awk -F, 'NR > 1 { n = $1; gsub(/"/, "", n); print n "\t" $3 "\t" $4 "\t" $5 }' \
      "$out/$name.csv" >"$out/$name.tsv"
    while IFS=$'\t' read -r bname real cpu unit _; do
      printf 'gb\t%s\t%s\t%s\t%s\t%s\n' "$name" "$bname" "$real" "$cpu" "$unit" >>"$rows"
    done <"$out/$name.tsv"
  else
    note "$name failed: $(tail -n 1 "$out/$name.err")"
  fi
done

load_end=$(loadavg)

# ---------------------------------------------------------------------------------------------
# The table.
section="$out/section.md"
{
  echo "<!-- bench/run_all.sh: begin (generated; edit the script, not this section) -->"
  echo "## Benchmarks (bench/run_all.sh$([ "$quick" = 1 ] && echo " --quick: a check that it works, not figures"))"
  echo
  echo "Measured $started (to $(date -u +%H:%M)), commit $commit$dirty; $(nproc) cores ($cpu), $mem;"
  echo "$compiler_version, Release (-O3). Load average $load_start at the start, $load_end at the end."
  echo "Medians; ratios and differences are between runs made side by side in one run of the script."
  if grep -q '^recorder' "$rows"; then
    echo
    echo "### The recorder's hot path (bench/recorder_overhead.cc)"
    echo
    echo "CPU ns per NCCL call over a null NCCL that returns at once, NCCLFR_TIMING=host; target <= 100 ns added."
    echo
    echo "| call | threads | without libncclfr.so | with | added |"
    echo "|---|---|---|---|---|"
    awk -F'\t' '$1 == "recorder" { printf "| %s | %s | %s | %s | %s |\n", $2, $3, $4, $5, $6 }' "$rows"
  fi
  if grep -q '^dump' "$rows"; then
    echo
    echo "### Dump latency versus ring size (bench/dump_latency.cc)"
    echo
    echo "Wall ms. \"On signal\" is the recorder's live dump path end to end (NCCLFR_DUMP_SIGNAL: drain, convert,"
    echo "write the file, return); the converter and the writer alone beside it. Target: <= 5 ms at 4,096 entries."
    echo
    echo "| ring entries | dump on signal (ms) | ringToDump (ms) | writeDumpFile (ms) | file (MB) |"
    echo "|---|---|---|---|---|"
    awk -F'\t' '$1 == "dump" { printf "| %s | %.3f | %.3f | %.3f | %s |\n", $2, $3, $4, $5, $6 }' "$rows"
  fi
  if grep -q '^simjob' "$rows"; then
    echo
    echo "### A sim/ job's step time (bench/sim_job_overhead.sh)"
    echo
    echo "examples/nccl_job on sim/, tensor-parallel groups of 2, no simulated compute (the worst case for a ratio);"
    echo "a step is the slope between a short and a long job; rounds alternate the order; recorder in its default mode."
    echo
    echo "| ranks | rounds | step without (us) | step with (us) | ratio | per-round ratios: median (range) | NCCL calls per rank and step | added per call (us) |"
    echo "|---|---|---|---|---|---|---|---|"
    awk -F'\t' '$1 == "simjob" { printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $2, $3, $4, $5, $6, $7, $8, $9 }' "$rows"
  fi
  if grep -q '^script' "$rows"; then
    echo
    echo "### The parts' own benchmark scripts"
    echo
    echo "| script | exit | summary |"
    echo "|---|---|---|"
    awk -F'\t' '$1 == "script" { printf "| %s | %s | %s |\n", $2, $3, $4 }' "$rows"
    [ -f "$out/script-tables.md" ] && cat "$out/script-tables.md"
  fi
  if grep -q '^gb' "$rows"; then
    echo
    echo "### Other Google Benchmark programs"
    echo
    echo "| program | benchmark | real | CPU | unit |"
    echo "|---|---|---|---|---|"
    awk -F'\t' '$1 == "gb" { printf "| %s | %s | %s | %s | %s |\n", $2, $3, $4, $5, $6 }' "$rows"
  fi
  if grep -q '^note' "$rows"; then
    echo
    awk -F'\t' '$1 == "note" { print "- " $2 }' "$rows"
  fi
  echo "<!-- bench/run_all.sh: end -->"
} >"$section"

# Replace the section between the markers, or append it; everything else in the file stays.
mkdir -p "$(dirname "$doc")"
if [ ! -f "$doc" ]; then
  printf '# Performance\n\nWhat ncclfr costs, measured. Each part keeps its own section; bench/run_all.sh writes the one\nbetween its markers.\n\n' >"$doc"
fi
tmpdoc="$doc.tmp.$$"
if grep -q '^<!-- bench/run_all.sh: begin' "$doc"; then
  awk -v sec="$section" '
    /^<!-- bench\/run_all.sh: begin/ { while ((getline line < sec) > 0) print line; skip = 1; next }
    /^<!-- bench\/run_all.sh: end/ { skip = 0; next }
    !skip { print }' "$doc" >"$tmpdoc"
else
  { cat "$doc"; echo; cat "$section"; } >"$tmpdoc"
fi
mv "$tmpdoc" "$doc" || { echo "run_all.sh: cannot write $doc" >&2; exit 1; }
echo
cat "$section"
echo
echo "run_all: table written to $doc; logs and raw CSV in $out"
