#!/usr/bin/env bash
# Build Epoch and run every test (ctest: Criterion unit tests + Python
# integration tests), first in build/ with the proxies' socket I/O through
# libuv (io = libuv), then with AddressSanitizer and UndefinedBehaviorSanitizer
# in build-asan/ through io_uring, the default (skip with EPOCH_SKIP_ASAN=1):
# each I/O layer gets the whole suite.
#
# Ends with the line "N passed, N failed" (ctest tests over both passes; a
# build that fails counts as one failed test) and exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

total_passed=0
total_failed=0
LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/epoch-test.XXXXXX")
trap 'rm -rf "$LOG_DIR"' EXIT

# run_pass NAME BUILD_DIR [cmake args...]
run_pass() {
  local name=$1 dir=$2
  shift 2
  local log=$LOG_DIR/$name.ctest.log
  echo "==== [$name] configure + build ($dir) ===="
  if ! cmake -S . -B "$dir" "$@" || ! cmake --build "$dir" -j2; then
    echo "==== [$name] BUILD FAILED ===="
    total_failed=$((total_failed + 1))
    return 0
  fi
  echo "==== [$name] ctest ===="
  local rc=0
  ctest --test-dir "$dir" --output-on-failure -j3 2>&1 | tee "$log" || rc=$?
  # "100% tests passed, 0 tests failed out of 2"
  local line
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
  if [[ -z $line ]]; then
    echo "==== [$name] ctest reported no result (exit $rc) ===="
    total_failed=$((total_failed + 1))
    return 0
  fi
  local failed total
  failed=$(sed -E 's/^[0-9]+% tests passed, ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  total=$(sed -E 's/^[0-9]+% tests passed, ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
  if [[ $total -eq 0 ]]; then
    echo "==== [$name] ctest ran no test ===="
    total_failed=$((total_failed + 1))
    return 0
  fi
  if [[ $rc -ne 0 && $failed -eq 0 ]]; then
    failed=1
  fi
  total_passed=$((total_passed + total - failed))
  total_failed=$((total_failed + failed))
  echo "==== [$name] $((total - failed)) passed, $failed failed ===="
}

bash scripts/deps.sh

start=$SECONDS
EPOCH_TEST_IO=libuv run_pass normal build

if [[ ${EPOCH_SKIP_ASAN:-0} != 1 ]]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  EPOCH_TEST_IO=io_uring run_pass asan build-asan -DEPOCH_SANITIZE=ON
else
  echo "==== [asan] skipped (EPOCH_SKIP_ASAN=1) ===="
fi

# CI shows the head and the tail of this output: repeat each failed test with
# the start of its details here, at the end, so that the tail names it
for log in "$LOG_DIR"/*.ctest.log; do
  [[ -e $log ]] || continue
  awk -v pass="$(basename "$log" .ctest.log)" '
    / \.\.\. FAIL / { n = 40; print "==== [" pass "] " $0; next }
    n > 0 && /^    / { print; n--; next }
    { n = 0 }' "$log"
done

echo "==== total time $((SECONDS - start))s ===="
echo "$total_passed passed, $total_failed failed"
[[ $total_failed -eq 0 ]]
