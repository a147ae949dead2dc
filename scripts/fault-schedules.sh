#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs N randomized fault schedules against three replicated shoal members, each in its
# own network namespace (tests/integration/partition_test.cpp,
# PartitionTest.RandomFaultSchedulesKeepHistoriesLinearizable), and checks every
# schedule's history for linearizability. CI runs 3 schedules of 15 s; this runs longer
# ones. Needs root (network namespaces) and a build (scripts/build.sh release).
#
#   scripts/fault-schedules.sh [N [SECONDS [BUILD_DIR]]]    defaults: 50 schedules of 30 s,
#                                                           build/release
#   SHOAL_FAULT_SEED=S scripts/fault-schedules.sh ...       replays a run's schedules
#
# Prints one line per schedule (its faults, operations, verdict) and the summary, and
# keeps the whole output in fault-schedules-<time>.log in the current directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
schedules="${1:-50}"
seconds="${2:-30}"
build="${3:-$root/build/release}"
binary="$build/tests/integration/shoal_partition_tests"
if [[ ! -x "$binary" ]]; then
  echo "fault-schedules.sh: no $binary: build first (scripts/build.sh release)" >&2
  exit 1
fi
if ((EUID != 0)); then
  echo "fault-schedules.sh: needs root (network namespaces)" >&2
  exit 1
fi
log="fault-schedules-$(date -u +%Y%m%dT%H%M%SZ).log"
echo "fault-schedules.sh: $schedules schedules of $seconds s; full output in $log" >&2
# The test tears its namespaces and processes down itself, also when it fails; a timeout
# of 2 minutes per schedule bounds a hang.
status=0
SHOAL_FAULT_SCHEDULES="$schedules" SHOAL_FAULT_SCHEDULE_S="$seconds" \
  timeout --signal=TERM --kill-after=30 "$((schedules * 120 + 120))" \
  "$binary" --gtest_filter='PartitionTest.RandomFaultSchedulesKeepHistoriesLinearizable' \
  >"$log" 2>&1 || status=$?
grep -E '^\[ (faults|schedule) ' "$log" || true
grep -E 'Failure|had two leaders|differs between replicas' "$log" | head -20 || true
if ((status != 0)); then
  echo "fault-schedules.sh: FAILED (exit $status); see $log" >&2
  exit 1
fi
echo "fault-schedules.sh: passed" >&2
