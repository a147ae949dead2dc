#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sets up, builds and runs the whole test suite twice: the release build, then the
# AddressSanitizer + UBSan build (sanitizer env vars come from the CTest properties).
# Ends with one line "N passed, N failed" summing both runs; exits non-zero on any failure.
# Environment: SHOAL_TEST_JOBS (ctest -j, default 2), SHOAL_TEST_TIMEOUT (seconds per test
# without its own TIMEOUT, default 300), SHOAL_SKIP_ASAN=1 skips the sanitizer phase.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

test_jobs=${SHOAL_TEST_JOBS:-2}
test_timeout=${SHOAL_TEST_TIMEOUT:-300}
total_passed=0
total_failed=0
problems=()
notes=()
timings=()

now() { date +%s; }
# record NAME T0 RC: notes the wall time of a phase that started at T0 and ended with RC.
record() {
  local secs=$(( $(now) - $2 ))
  timings+=("$(printf '%-14s %5ds' "$1" "$secs")$( (($3)) && echo "  (exit $3)")")
  echo "==> [$1] ${secs}s, exit $3"
}
# phase NAME CMD...: runs CMD, records its wall time, returns its status.
phase() {
  local name=$1 t0 rc; shift
  t0=$(now)
  echo "==> [$name] $*"
  "$@"; rc=$?
  record "$name" "$t0" "$rc"
  return "$rc"
}

# run_ctest NAME BUILD_DIR [extra ctest args...]: runs ctest, adds its counts to the totals.
run_ctest() {
  local name=$1 dir=$2; shift 2
  local log="$dir/ctest.log" rc line failed total t0
  mkdir -p "$dir"
  t0=$(now)
  echo "==> [$name] ctest --test-dir $dir -j$test_jobs --timeout $test_timeout $*"
  ctest --test-dir "$dir" --output-on-failure -j"$test_jobs" --timeout "$test_timeout" "$@" \
    2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  record "$name" "$t0" "$rc"
  line=$(grep -Eo '[0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1 || true)
  if [[ -n "$line" ]]; then
    failed=$(awk '{print $1}' <<<"$line")
    total=$(awk '{print $NF}' <<<"$line")
    # A test that only timed out (none failed a check) is run once more, alone: a
    # machine busier than ours can starve a process test. It counts as passed when the
    # second run passes, and the summary names it, so a hang is seen, not hidden.
    local listed timed_out
    listed=$(sed -n '/The following tests FAILED:/,$p' "$log" | grep -E '^[[:space:]]+[0-9]+ - ' || true)
    timed_out=$(grep -c '(Timeout)$' <<<"$listed" || true)
    if ((failed > 0 && timed_out == failed)); then
      echo "==> [$name] $failed test(s) timed out; running them once more"
      if ctest --test-dir "$dir" --output-on-failure --rerun-failed -j1 --timeout "$test_timeout" \
          2>&1 | tee "$dir/ctest-rerun.log"; then
        while IFS= read -r t; do
          notes+=("$name: timed out, then passed when run again: ${t#"${t%%[![:space:]]*}"}")
        done <<<"$listed"
        failed=0
        rc=0
      fi
    fi
    total_passed=$(( total_passed + total - failed ))
    total_failed=$(( total_failed + failed ))
    if ((failed > 0)); then
      problems+=("$name: $failed of $total test(s) failed")
      # Name each failed test and the lines that say why, so a log that is only seen
      # by its tail still tells which test failed and how.
      while IFS= read -r t; do
        problems+=("  $t")
      done < <(sed -n '/The following tests FAILED:/,$p' "$log" | grep -E '^[[:space:]]+[0-9]+ - ' | sed 's/^[[:space:]]*//')
      while IFS= read -r t; do
        problems+=("    $t")
      done < <(grep -E '(Failure|\[  FAILED  \]|Expected|Which is|Value of|Actual|timed out|Timeout|Sanitizer|runtime error)' "$log" | grep -v '^\[  FAILED  \] *[0-9]* tests\?, listed below' | head -n 40)
    fi
    if ((failed == 0 && rc != 0)); then problems+=("$name: ctest exited $rc"); fi
  elif grep -q 'No tests were found' "$log"; then
    echo "==> [$name] no tests registered in $dir"
  else
    problems+=("$name: ctest exited $rc without a summary")
  fi
}

finish() {
  echo
  echo "==> timing"
  printf '    %s\n' "${timings[@]}"
  if ((${#notes[@]})); then
    echo "==> notes"
    printf '    %s\n' "${notes[@]}"
  fi
  if ((${#problems[@]})); then
    echo "==> problems"
    printf '    %s\n' "${problems[@]}"
  fi
  echo "$total_passed passed, $total_failed failed"
  ((total_failed == 0 && ${#problems[@]} == 0))
  exit $?
}

phase setup scripts/setup.sh || { problems+=("setup failed"); finish; }

if phase build-release scripts/build.sh release; then
  run_ctest test-release build/release
else
  problems+=("release build failed")
fi

if [[ "${SHOAL_SKIP_ASAN:-0}" == 1 ]]; then
  echo "==> [asan] skipped (SHOAL_SKIP_ASAN=1)"
elif phase build-asan scripts/build.sh asan; then
  run_ctest test-asan build/asan
else
  problems+=("asan build failed")
fi

finish
