#!/usr/bin/env bash
# Builds ncclfr and runs every test (the README's test command; .ci/run calls it).
#
#   scripts/test.sh                      # normal build in build/, all tests
#   scripts/test.sh --sanitize=address   # AddressSanitizer + UBSan build in build-asan/
#   scripts/test.sh --sanitize=thread    # ThreadSanitizer build in build-tsan/
#   scripts/test.sh -- -R recorder       # anything after -- goes to ctest
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

sanitize=""
ctest_args=()
while (($#)); do
  case "$1" in
    --sanitize=address|--sanitize=thread) sanitize="${1#--sanitize=}" ;;
    --sanitize=*) echo "test.sh: --sanitize takes 'address' or 'thread', not '${1#--sanitize=}'" >&2; exit 2 ;;
    --) shift; ctest_args=("$@"); break ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

case "$sanitize" in
  address) build="$root/build-asan" ;;
  thread) build="$root/build-tsan" ;;
  *) build="$root/build" ;;
esac

"$root/scripts/install-deps.sh"
jobs=$(nproc)
cmake -S "$root" -B "$build" -DNCCLFR_SANITIZE="$sanitize" >"$build.configure.log" 2>&1 ||
  { cat "$build.configure.log" >&2; exit 1; }
cmake --build "$build" -j"$jobs"
cd "$build"
ctest --output-on-failure -j"$jobs" --timeout 600 "${ctest_args[@]}"
