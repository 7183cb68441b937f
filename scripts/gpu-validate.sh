#!/usr/bin/env bash
# Validates ncclfr on a real NVIDIA GPU (issue 7; docs/gpu-validation.md):
#   part 1  examples/nccl_job over real NCCL with libncclfr.so preloaded, 1 rank and then 2 and 4
#           ranks on one GPU (each rank its own NCCL_HOSTID), with a planted host stall and a planted
#           device stall: the dumps must exist and `ncclfr analyze --json` must name the rank and
#           the reason;
#   part 2  examples/gpu/ddp_train.py (PyTorch DDP) with and without LD_PRELOAD=libncclfr.so and
#           with PyTorch's flight recorder on and off (TORCH_NCCL_TRACE_BUFFER_SIZE=2000 / 0),
#           step times side by side;
#   part 3  the recorder's per-call cost in each NCCLFR_TIMING mode (full, end, host) on the real
#           driver (bench/timing_modes.cc).
# Figures go to OUT/figures.md (a table for docs/performance.md, with date and device) and
# OUT/results.tsv; the table is printed at the end.
#
# --sim runs the same parts 1 and 3 on sim/ (no GPU needed; part 2 is skipped and says why): that is
# what the ctest bench_gpu_validate_sim runs.
#
#   scripts/gpu-validate.sh [--gpu | --sim] [--build DIR] [--out DIR] [--parts 1,2,3]
#                           [--ranks "1 2 4"] [--faults host_stall,device_stall] [--cases 2:host_stall,...]
#                           [--ddp-ranks 2] [--ddp-steps 60] [--rounds 3] [--timing-batches 400]
#                           [--python PY] [--ddp-cpu]
#   scripts/gpu-validate.sh --pack DIR [--build DIR]
#
# The build (--build, default build-gpu/) needs bin/{ncclfr,ncclfr-simrun,nccl_job,ncclfr_timing_bench}
# and recorder/libncclfr.so. When it is missing and cmake and Cap'n Proto are there, it is built in
# place. A GPU machine without them (no compilers, no network) runs a build made elsewhere:
# `--pack DIR` copies those files, sim/lib and the shared libraries they need that a bare machine
# lacks (libcapnp, libkj, libsqlite3) into DIR, and `--build DIR` there uses it.
#
# --ddp-cpu runs part 2's loop on CPU (gloo, ranks started by ncclfr-simrun) to check the script
# itself where there is no GPU; gloo makes no NCCL call, so it measures nothing about the recorder.
#
# Exit codes: 0 every check passed (skipped parts say why); 1 a check failed; 2 bad usage, or
# something needed is missing (GPU, build, libraries).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

mode="" build="" out="" parts="1,2,3" ranks_list="1 2 4" faults="host_stall,device_stall" cases=""
ddp_ranks=2 ddp_steps=60 ddp_warmup=10 rounds=3 timing_batches=400 pack="" py=python3 ddp_cpu=0
while (($#)); do
  case "$1" in
    --gpu) mode=gpu ;;
    --sim) mode=sim ;;
    --build) build=$2; shift ;;
    --out) out=$2; shift ;;
    --parts) parts=$2; shift ;;
    --ranks) ranks_list=$2; shift ;;
    --faults) faults=$2; shift ;;
    --cases) cases=$2; shift ;;
    --ddp-ranks) ddp_ranks=$2; shift ;;
    --ddp-steps) ddp_steps=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --timing-batches) timing_batches=$2; shift ;;
    --pack) pack=$2; shift ;;
    --python) py=$2; shift ;;
    --ddp-cpu) ddp_cpu=1 ;;
    -h|--help) sed -n '2,35p' "$0"; exit 0 ;;
    *) echo "gpu-validate: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "gpu-validate: $*" >&2; exit 2; }
[[ "$ddp_ranks" =~ ^[1-9][0-9]*$ && "$ddp_steps" =~ ^[1-9][0-9]*$ && "$rounds" =~ ^[1-9][0-9]*$ &&
   "$timing_batches" =~ ^[1-9][0-9]*$ ]] || die "--ddp-ranks, --ddp-steps, --rounds and --timing-batches take positive integers"
build=${build:-$root/build-gpu}
need_files=(bin/ncclfr bin/ncclfr-simrun bin/nccl_job bin/ncclfr_timing_bench recorder/libncclfr.so)

# ---------------------------------------------------------------------------------------------
# --pack: a build a machine without compilers can run.
if [ -n "$pack" ]; then
  for f in "${need_files[@]}"; do [ -e "$build/$f" ] || die "--pack: $build/$f is missing (build first)"; done
  rm -rf "$pack"
  mkdir -p "$pack/bin" "$pack/recorder" "$pack/lib"
  for f in "${need_files[@]}"; do cp -p "$build/$f" "$pack/$f"; done
  [ -d "$build/sim/lib" ] && mkdir -p "$pack/sim" && cp -a "$build/sim/lib" "$pack/sim/lib"
  # What the CLI and the recorder link beyond the C and C++ runtimes, which every machine has (and
  # which must not be replaced: the preloaded process, PyTorch say, brings its own expectations).
  for f in "$pack/bin/ncclfr" "$pack/recorder/libncclfr.so"; do
    ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' |
      grep -Ev '/(libc|libm|libdl|libpthread|librt|libgcc_s|libstdc\+\+|ld-linux[^/]*)\.so' |
      while read -r lib; do cp -pL "$lib" "$pack/lib/"; done
  done
  {
    echo "ncclfr build for scripts/gpu-validate.sh --build $(basename "$pack")"
    echo "from: $build"
    echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "made: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), $(ldd --version | head -1)"
  } >"$pack/MANIFEST"
  echo "gpu-validate: packed $build into $pack ($(du -sh "$pack" | cut -f1)); libraries: $(ls "$pack/lib" | tr '\n' ' ')"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Mode, output, build.
if [ -z "$mode" ]; then
  if command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep '^GPU' >/dev/null; then mode=gpu; else
    die "no NVIDIA GPU found (nvidia-smi -L lists none): run with --sim for the CPU mode"
  fi
fi
if [ "$mode" = gpu ]; then
  command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep '^GPU' >/dev/null || die "--gpu: nvidia-smi lists no GPU"
fi
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=${out:-/tmp/ncclfr-gpu-validate-$stamp}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work="$out/work"
rm -rf "$work"
mkdir -p "$work"

# Where libcudart.so.13 and libnccl.so.2 are on a GPU machine: NCCL_HOME/CUDA_HOME, the CUDA
# Toolkit, PyTorch's pip packages (nvidia/nccl/lib, nvidia/cu13/lib, ...), the loader's cache.
cuda_lib_dirs() {
  local d dirs=()
  for d in ${NCCL_HOME:+"$NCCL_HOME/lib" "$NCCL_HOME/lib64"} ${CUDA_HOME:+"$CUDA_HOME/lib64" "$CUDA_HOME/lib"} \
           /usr/local/cuda/lib64 /usr/local/cuda/lib; do
    [ -d "$d" ] && dirs+=("$d")
  done
  if command -v python3 >/dev/null; then
    while read -r d; do [ -n "$d" ] && dirs+=("$d"); done < <(python3 - 2>/dev/null <<'EOF' || true
import glob, os
try:
    import nvidia
    for p in nvidia.__path__:
        for lib in sorted(glob.glob(os.path.join(p, "*", "lib"))):
            print(lib)
except Exception:
    pass
EOF
)
  fi
  printf '%s\n' "${dirs[@]}"
}

build_in_place() {
  command -v cmake >/dev/null || return 1
  # Release; GCC 12's false -Wrestrict inside std::string at -O3 (GCC bug 105329) stays a warning.
  local args=(-DCMAKE_BUILD_TYPE=Release -DNCCLFR_BUILD_TESTS=OFF)
  local targets=(ncclfr ncclfr-simrun nccl_job ncclfr_timing_bench ncclfr_preload)
  [ "$mode" = sim ] && targets+=(ncclfr_sim_nccl ncclfr_sim_cuda ncclfr_sim_cudart)
  if [ "$mode" = gpu ] && [ -z "${NCCL_HOME:-}" ]; then
    # NCCL's headers may come with PyTorch's nvidia-nccl package only.
    local d
    while read -r d; do
      if [ -f "$d/../include/nccl.h" ]; then args+=(-DNCCL_HOME="$(cd "$d/.." && pwd)"); break; fi
    done < <(cuda_lib_dirs)
  fi
  echo "gpu-validate: building in $build (log: $out/build.log)"
  cmake -S "$root" -B "$build" "${args[@]}" >"$out/build.log" 2>&1 &&
    cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >>"$out/build.log" 2>&1
}
missing=""
for f in "${need_files[@]}"; do [ -e "$build/$f" ] || missing="$missing $f"; done
if [ -n "$missing" ]; then
  build_in_place || die "$build lacks$missing and cannot be built here (see $out/build.log if any): build on a machine with the dependencies, then 'scripts/gpu-validate.sh --pack DIR' and '--build DIR' here"
fi
build=$(cd "$build" && pwd)
for f in "${need_files[@]}"; do [ -e "$build/$f" ] || die "$build/$f is missing after the build (see $out/build.log)"; done
preload="$build/recorder/libncclfr.so"
ncclfr="$build/bin/ncclfr"

# A packed build's own libraries, then (GPU) the CUDA and NCCL libraries the examples link.
libpath="${LD_LIBRARY_PATH:-}"
[ -d "$build/lib" ] && libpath="$build/lib${libpath:+:$libpath}"
if [ "$mode" = gpu ]; then
  while read -r d; do [ -n "$d" ] && libpath="$libpath:$d"; done < <(cuda_lib_dirs)
  # Two ranks on one GPU talk over sockets: the loopback always works, a VM's other interfaces may not.
  export NCCL_SOCKET_IFNAME=${NCCL_SOCKET_IFNAME:-lo}
  export NCCL_IB_DISABLE=${NCCL_IB_DISABLE:-1}
else
  [ -f "$build/sim/lib/libnccl.so.2" ] || die "--sim: $build/sim/lib/libnccl.so.2 is missing (sim/ is not built)"
fi
export LD_LIBRARY_PATH="${libpath#:}"
for f in "$ncclfr" "$preload" $([ "$mode" = gpu ] && echo "$build/bin/nccl_job $build/bin/ncclfr_timing_bench"); do
  if ldd "$f" 2>&1 | grep 'not found' >/dev/null; then
    die "$f cannot be loaded here: $(ldd "$f" 2>&1 | grep 'not found' | sed 's/^[[:space:]]*//' | tr '\n' ';') (LD_LIBRARY_PATH=$LD_LIBRARY_PATH)"
  fi
done
"$ncclfr" --version >/dev/null 2>"$work/version.err" || die "$ncclfr does not run here: $(head -1 "$work/version.err")"

launcher=("$build/bin/ncclfr-simrun" -q)
[ "$mode" = gpu ] && launcher+=(--no-sim)

if [ "$mode" = gpu ]; then
  device=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | sed 's/, / (driver /; s/$/)/')
  ngpus=$(nvidia-smi -L | grep -c '^GPU')
else
  device="sim/ (CPU stand-ins for CUDA and NCCL) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
  ngpus=0
fi
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -f "$build/MANIFEST" ] && commit="$(sed -n 's/^commit: //p' "$build/MANIFEST") (packed build)"
date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)
echo "gpu-validate: mode $mode; device: $device; build $build; out $out"

# ---------------------------------------------------------------------------------------------
# Bookkeeping: every check is one line of checks.tsv; figures are key<TAB>value in results.tsv.
passed=0 failed=0 skipped=0
: >"$out/checks.tsv"
: >"$out/results.tsv"
check() {  # name pass|fail|skip detail
  printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$out/checks.tsv"
  case "$2" in
    pass) passed=$((passed + 1)); echo "  PASS  $1: $3" ;;
    fail) failed=$((failed + 1)); echo "  FAIL  $1: $3" ;;
    skip) skipped=$((skipped + 1)); echo "  SKIP  $1: $3" ;;
  esac
}
result() { printf '%s\t%s\n' "$1" "$2" >>"$out/results.tsv"; }
want_part() { [[ ",$parts," == *",$1,"* ]]; }

# The first suspect of a JSON verdict as "status rank reason" (python3, else node).
json_verdict() {
  if command -v python3 >/dev/null; then
    python3 - "$1" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
s = (v.get("suspects") or [{}])[0]
print(v.get("status"), "none" if s.get("rank") is None else s.get("rank"), s.get("reason") or "none")
EOF
  elif command -v node >/dev/null; then
    node -e 'const v = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
             const s = (v.suspects || [])[0] || {};
             console.log(v.status, s.rank ?? "none", s.reason || "none");' "$1"
  else
    echo "unknown unknown unknown"
  fi
}

count_dumps() { (find "$1" -name '*.ncclfr' 2>/dev/null || true) | wc -l; }

# ---------------------------------------------------------------------------------------------
# Part 1: planted faults, recorded and analyzed.
# NCCLFR_TIMEOUT, seconds. On a GPU, communicator setup over sockets can take seconds, and the
# recorder reports an init that outlasts the timeout as a stall of its own.
fault_timeout=3
[ "$mode" = gpu ] && fault_timeout=10
run_fault_case() {  # ranks fault
  local n=$1 fault=$2 name="p1-${1}r-$2" rank=$(($1 - 1))
  local dir="$work/$name" job="$name"
  mkdir -p "$dir/dumps/$job"
  env NCCLFR_DUMP_DIR="$dir/dumps" NCCLFR_SHM_DIR="$dir/shm" NCCLFR_TIMEOUT=${fault_timeout}s NCCLFR_TRIGGER_POLL=250ms \
      NCCLFR_LOG=info LD_PRELOAD="$preload" \
    "${launcher[@]}" -n "$n" --nnodes "$n" --job-id "$job" --timeout 180 --grace 5 --log-dir "$dir/logs" -- \
    "$build/bin/nccl_job" --steps 60 --step-ms 5 --count 4096 --fault "$fault" --fault-rank "$rank" --fault-step 3 \
    >"$dir/launcher.log" 2>&1 &
  local pid=$! start=$SECONDS limit=90 triggered=0 got
  while :; do
    got=$(count_dumps "$dir/dumps/$job")
    [ "$got" -ge "$n" ] && break
    kill -0 "$pid" 2>/dev/null || break
    # A lone rank stuck on its host leaves no call pending: nothing can tell it from an idle
    # process, so ask for its dump the way a person would.
    if [ "$n" = 1 ] && [ "$fault" = host_stall ] && [ "$triggered" = 0 ] && ((SECONDS - start > fault_timeout + 2)); then
      "$ncclfr" trigger "$dir/dumps/$job" --detail "gpu-validate: a lone rank stopped calling NCCL" >>"$dir/trigger.log" 2>&1 || true
      triggered=1
    fi
    ((SECONDS - start > limit)) && break
    sleep 0.2
  done
  sleep 0.5  # a rank that is writing its dump right now
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  got=$(count_dumps "$dir/dumps/$job")
  local code=0
  "$ncclfr" analyze --json "$dir/dumps/$job" >"$dir/verdict.json" 2>"$dir/analyze.err" || code=$?
  "$ncclfr" analyze "$dir/dumps/$job" >"$dir/verdict.txt" 2>&1 || true
  local first status srank sreason
  first=$(head -1 "$dir/verdict.txt")
  read -r status srank sreason < <(json_verdict "$dir/verdict.json" 2>/dev/null || echo "unreadable none none")
  result "part1_${n}r_${fault}_dumps" "$got"
  result "part1_${n}r_${fault}_verdict" "$status $srank $sreason"
  local what="$n rank(s), $fault on rank $rank"
  if [ "$got" -lt "$n" ]; then
    check "part1: $what" fail "$got of $n dumps after $((SECONDS - start)) s (logs: $dir/logs)"
  elif [ "$n" = 1 ] && [ "$fault" = host_stall ]; then
    # Expected: a dump on request, and no suspect (nothing is pending; see docs/gpu-validation.md).
    if [ "$code" = 0 ] && [ "$status" = ok ]; then
      check "part1: $what" pass "dump on request (ncclfr trigger); verdict ok, as expected for a lone rank: $first"
    else
      check "part1: $what" fail "expected a healthy verdict for a lone rank with nothing pending, got exit $code: $first"
    fi
  elif [ "$code" = 1 ] && [ "$srank" = "$rank" ] && [ "$sreason" = "$fault" ]; then
    check "part1: $what" pass "$got dumps; suspects[0] = rank $srank, $sreason: $first"
  else
    check "part1: $what" fail "$got dumps; expected suspects[0] = rank $rank, $fault; got exit $code, status $status, rank $srank, reason $sreason: $first (dumps: $dir/dumps/$job)"
  fi
}

if want_part 1; then
  echo "part 1: planted faults over $([ "$mode" = gpu ] && echo "real NCCL on one GPU" || echo "sim/")"
  if [ -z "$cases" ]; then
    for n in $ranks_list; do
      for f in ${faults//,/ }; do cases="$cases,$n:$f"; done
    done
  fi
  for c in ${cases//,/ }; do
    n=${c%%:*} f=${c#*:}
    [[ "$n" =~ ^[1-9][0-9]*$ && ("$f" == host_stall || "$f" == device_stall) ]] ||
      die "a case is RANKS:host_stall or RANKS:device_stall, not '$c'"
    run_fault_case "$n" "$f"
  done
fi

# ---------------------------------------------------------------------------------------------
# Part 3: per-call cost of each NCCLFR_TIMING mode (before part 2: it is the quick one).
declare -A timing_line=()
if want_part 3; then
  echo "part 3: the recorder's cost per NCCL call, each NCCLFR_TIMING mode ($timing_batches batches of 32 calls)"
  for m in none full end host; do
    dir="$work/p3-$m"
    mkdir -p "$dir"
    envs=(env NCCL_DEBUG=VERSION)
    [ "$m" != none ] && envs+=(LD_PRELOAD="$preload" NCCLFR_TIMING="$m" NCCLFR_SHM_DIR="$dir/shm" NCCLFR_DUMP_DIR="$dir/dumps")
    if "${envs[@]}" "${launcher[@]}" -n 1 --timeout 300 -- "$build/bin/ncclfr_timing_bench" --batches "$timing_batches" \
        >"$dir/out.log" 2>&1; then
      line=$(grep '^timing_bench:' "$dir/out.log" | tail -1)
      timing_line[$m]=$line
      shim=$(sed -n 's/.* shim=\([a-z]*\).*/\1/p' <<<"$line")
      for k in direct_ns shim_ns added_ns added_p10_ns added_p90_ns; do
        result "part3_${m}_$k" "$(sed -n "s/.* $k=\([-0-9.]*\).*/\1/p" <<<"$line")"
      done
      if { [ "$m" = none ] && [ "$shim" = no ]; } || { [ "$m" != none ] && [ "$shim" = yes ]; }; then
        check "part3: timing $m" pass "${line#timing_bench: }"
      else
        check "part3: timing $m" fail "the recorder was $([ "$shim" = yes ] && echo "in front of NCCL" || echo "not in front of NCCL"): $line"
      fi
    else
      check "part3: timing $m" fail "ncclfr_timing_bench failed: $(tail -n 2 "$dir/out.log" | tr '\n' ' ')"
    fi
  done
  nccl_version=$(grep -ho 'NCCL version [^ ]*' "$work"/p3-none/out.log 2>/dev/null | head -1 | cut -d' ' -f3)
  result nccl_version "${nccl_version:-unknown}"
fi

# ---------------------------------------------------------------------------------------------
# Part 2: PyTorch DDP, recorder on/off x PyTorch flight recorder on/off.
declare -A ddp_median=()
ddp_calls=""
run_ddp() {  # config round
  local cfg=$1 r=$2 dir="$work/p2/$1-$2"
  mkdir -p "$dir"
  local fr=0
  [[ "$cfg" == fr || "$cfg" == *+fr ]] && fr=2000
  local envs=(env -u LD_PRELOAD)
  if [[ "$cfg" == ncclfr* ]]; then
    envs=(env LD_PRELOAD="$preload" NCCLFR_DUMP_DIR="$dir/dumps" NCCLFR_SHM_DIR="$dir/shm" NCCLFR_DUMP_ON_EXIT=1 NCCLFR_JOB=ddp)
  fi
  envs+=(TORCH_NCCL_TRACE_BUFFER_SIZE=$fr TORCH_FR_BUFFER_SIZE=$fr PYTHONUNBUFFERED=1)
  local run=(timeout 300 "$py" -m torch.distributed.run --standalone --nproc_per_node "$ddp_ranks")
  local train=("$root/examples/gpu/ddp_train.py" --steps "$ddp_steps" --warmup "$ddp_warmup" --out "$dir/summary.json")
  if [ "$ddp_cpu" = 1 ]; then
    # ncclfr-simrun sets torchrun's variables; torchrun itself is broken in some distributions' torch.
    run=("$build/bin/ncclfr-simrun" -q --no-sim -n "$ddp_ranks" --timeout 300 -- "$py")
    train+=(--device cpu --hidden 64 --layers 2 --batch 8 --bucket-mb 0.001)
  fi
  if ! "${envs[@]}" "${run[@]}" "${train[@]}" >"$dir/out.log" 2>&1; then
    check "part2: ddp $cfg round $r" fail "the training job failed: $(tail -n 3 "$dir/out.log" | tr '\n' ' ')"
    return
  fi
  local med pre trace
  read -r med pre trace < <("$py" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["median_step_ms"], s["ncclfr_preloaded"], s["trace_buffer_size"] or "unset")' "$dir/summary.json")
  if [ "$trace" != "$fr" ]; then
    check "part2: ddp $cfg round $r" fail "the training saw TORCH_NCCL_TRACE_BUFFER_SIZE=$trace, not $fr"
    return
  fi
  med=$(printf '%.3f' "$med")
  echo "$med" >>"$work/p2/$cfg.medians"
  if [[ "$cfg" == ncclfr* ]] && [ "$ddp_cpu" = 1 ]; then
    if [ "$pre" != True ]; then
      check "part2: ddp $cfg round $r" fail "libncclfr.so is not mapped into the training process"
      return
    fi
  elif [[ "$cfg" == ncclfr* ]]; then
    local got
    got=$(count_dumps "$dir/dumps")
    if [ "$pre" != True ] || [ "$got" -lt "$ddp_ranks" ]; then
      check "part2: ddp $cfg round $r" fail "libncclfr.so mapped: $pre; exit dumps: $got of $ddp_ranks"
      return
    fi
    if ! "$ncclfr" analyze "$dir/dumps/ddp" >"$dir/verdict.txt" 2>&1; then
      check "part2: ddp $cfg round $r" fail "the exit dumps of a healthy job do not analyze as healthy: $(head -1 "$dir/verdict.txt")"
      return
    fi
    if [ -z "$ddp_calls" ]; then
      local d entries
      d=$(find "$dir/dumps/ddp" -name '*_r0_*.ncclfr' | head -1)
      entries=$("$ncclfr" show "$d" 2>/dev/null | sed -n 's/.*entries: \([0-9]*\) recorded.*/\1/p' | head -1)
      [ -n "$entries" ] && ddp_calls=$(awk -v e="$entries" -v s=$((ddp_steps + ddp_warmup)) 'BEGIN { printf "%.1f", e / s }')
    fi
  elif [ "$pre" = True ]; then
    check "part2: ddp $cfg round $r" fail "libncclfr.so is mapped into a run that should not have it"
    return
  fi
  check "part2: ddp $cfg round $r" pass "median step $med ms"
}

median_of() { sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

ddp_skip=""
if want_part 2; then
  if [ "$ddp_cpu" = 1 ]; then
    command -v "$py" >/dev/null && "$py" -c 'import torch.distributed' 2>/dev/null || ddp_skip="$py has no torch here"
  elif [ "$mode" != gpu ]; then
    ddp_skip="no GPU (--sim mode): PyTorch DDP over NCCL needs a real GPU and torch"
  elif ! command -v "$py" >/dev/null || ! "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    ddp_skip="$py has no torch with CUDA here"
  fi
  if [ -n "$ddp_skip" ]; then
    check "part2: PyTorch DDP overhead" skip "$ddp_skip"
  else
    echo "part 2: PyTorch DDP, $ddp_ranks ranks on $([ "$ddp_cpu" = 1 ] && echo "CPU (gloo: no NCCL, a check of the script)" || echo "$ngpus GPU(s)"), $ddp_steps timed steps, $rounds rounds"
    mkdir -p "$work/p2"
    configs=(base fr ncclfr ncclfr+fr)
    for ((r = 1; r <= rounds; r++)); do
      # Rotate the order each round so that drift does not favour one configuration.
      for ((k = 0; k < 4; k++)); do run_ddp "${configs[$(((k + r) % 4))]}" "$r"; done
    done
    for cfg in "${configs[@]}"; do
      if [ -s "$work/p2/$cfg.medians" ]; then ddp_median[$cfg]=$(median_of "$work/p2/$cfg.medians"); result "part2_${cfg}_median_step_ms" "${ddp_median[$cfg]}"; fi
    done
    result part2_calls_per_step "${ddp_calls:-unknown}"
    result part2_torch "$("$py" -c 'import torch; print(torch.__version__)')"
  fi
fi

# ---------------------------------------------------------------------------------------------
# Figures.
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%+.3f%%", (a / b - 1) * 100 }'; }
{
  if [ "$mode" = gpu ]; then
    echo "### Real GPU: scripts/gpu-validate.sh, $date_utc"
  else
    echo "### sim/ (no GPU): scripts/gpu-validate.sh --sim, $date_utc"
    echo
    echo "Figures from sim/'s CPU stand-ins say nothing about a GPU; they show the script works."
  fi
  echo
  echo "Device: $device. NCCL ${nccl_version:-unknown}. Commit $commit. $(nproc) CPU cores, load average $(cut -d' ' -f1-3 /proc/loadavg)."
  if want_part 1; then
    echo
    echo "| planted fault | dumps | verdict (status, first suspect's rank and reason) | check |"
    echo "|---|---|---|---|"
    awk -F'\t' '$1 ~ /^part1: / { sub(/^part1: /, "", $1); print $1 "\t" $2 }' "$out/checks.tsv" |
      while IFS=$'\t' read -r what st; do
        n=${what%% *}; f=$(sed 's/.*, \([a-z_]*\) on rank.*/\1/' <<<"$what")
        printf '| %s | %s | %s | %s |\n' "$what" "$(awk -F'\t' -v k="part1_${n}r_${f}_dumps" '$1 == k { print $2 }' "$out/results.tsv")" \
          "$(awk -F'\t' -v k="part1_${n}r_${f}_verdict" '$1 == k { print $2 }' "$out/results.tsv")" "$st"
      done
  fi
  if want_part 3; then
    echo
    echo "Per-call cost of the recorder (bench/timing_modes.cc: a 1-rank all-reduce of 256 floats, batches of 32 calls"
    echo "through ncclAllReduce (recorded) and pncclAllReduce (not) alternately; medians; target <= 1500 ns with CUDA events):"
    echo
    echo "| NCCLFR_TIMING | NCCL call (ns) | through the recorder (ns) | added per call (ns) | p10 .. p90 of added (ns) |"
    echo "|---|---|---|---|---|"
    for m in none full end host; do
      [ -n "${timing_line[$m]:-}" ] || continue
      g() { sed -n "s/.* $1=\([-0-9.]*\).*/\1/p" <<<"${timing_line[$m]}"; }
      printf '| %s | %s | %s | %s | %s .. %s |\n' "$([ "$m" = none ] && echo "not preloaded (control)" || echo "$m")" \
        "$(g direct_ns)" "$(g shim_ns)" "$(g added_ns)" "$(g added_p10_ns)" "$(g added_p90_ns)"
    done
  fi
  if want_part 2; then
    echo
    if [ -n "$ddp_skip" ]; then
      echo "PyTorch DDP: skipped ($ddp_skip)."
    else
      b=${ddp_median[base]:-}
      echo "PyTorch DDP (examples/gpu/ddp_train.py), $ddp_ranks ranks on $([ "$ddp_cpu" = 1 ] && echo "CPU with gloo (no NCCL: the recorder has nothing to record; a check of the script, not a figure)" || echo "$ngpus GPU(s)"), median step over $ddp_steps steps, median of $rounds rounds;"
      echo "about ${ddp_calls:-?} NCCL calls per rank and step. Target: <= 0.1% step time."
      echo
      echo "| libncclfr.so | PyTorch flight recorder | median step (ms) | vs. neither | vs. the same without libncclfr.so |"
      echo "|---|---|---|---|---|"
      echo "| no | off (0) | ${ddp_median[base]:-n/a} | | |"
      echo "| no | on (2000) | ${ddp_median[fr]:-n/a} | $(pct "${ddp_median[fr]:-}" "$b") | |"
      echo "| yes | off (0) | ${ddp_median[ncclfr]:-n/a} | $(pct "${ddp_median[ncclfr]:-}" "$b") | $(pct "${ddp_median[ncclfr]:-}" "$b") |"
      echo "| yes | on (2000) | ${ddp_median[ncclfr+fr]:-n/a} | $(pct "${ddp_median[ncclfr+fr]:-}" "$b") | $(pct "${ddp_median[ncclfr+fr]:-}" "${ddp_median[fr]:-}") |"
    fi
  fi
} >"$out/figures.md"

echo
cat "$out/figures.md"
echo
echo "figures: $out/figures.md; checks: $out/checks.tsv; logs and dumps: $work"
echo "gpu-validate: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] || exit 1
exit 0
