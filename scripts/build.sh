#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configures and builds Shoal with CMake + Ninja.
#   scripts/build.sh [release]   optimized build in build/release (tests and benchmarks)
#   scripts/build.sh asan        -Og -g1 with AddressSanitizer + UBSan in build/asan (tests only)
#   scripts/build.sh release shoal   only the named targets (here the server: what serve.sh runs)
# Environment: SHOAL_JOBS overrides the parallel job count (default: cores, capped by memory).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

flavor=${1:-release}
targets=("${@:2}")
case "$flavor" in
  release)
    dir=build/release
    args=(-DCMAKE_BUILD_TYPE=Release)
    mem_per_job_mib=2048 ;;
  asan)
    # -Og -g1: less than half the compile time of -O1 -g on the CAF-heavy files (the typed
    # handlers and requests instantiate a lot), with line tables for the sanitizers'
    # stack traces. Use -O1 -g by hand when a report needs variables in a debugger.
    dir=build/asan
    args=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-Og -g1"
          -DSHOAL_SANITIZERS=address,undefined -DSHOAL_BUILD_BENCH=OFF)
    mem_per_job_mib=3072 ;;
  *) echo "usage: $0 [release|asan]" >&2; exit 2 ;;
esac

# ccache is picked up by cmake/build_options.cmake when installed; keep its cache bounded.
export CCACHE_DIR=${CCACHE_DIR:-${HOME:-/root}/.cache/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-2G}

# One job per core, but never more than memory allows (CAF + Beast TUs are heavy).
if [[ -n "${SHOAL_JOBS:-}" ]]; then
  jobs=$SHOAL_JOBS
else
  cores=$(nproc 2>/dev/null || echo 1)
  avail_kib=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo 2>/dev/null || echo 0)
  by_mem=$(( avail_kib / 1024 / mem_per_job_mib ))
  jobs=$(( cores < by_mem ? cores : by_mem ))
  (( jobs >= 1 )) || jobs=1
fi

# A build dir made by another generator or from another source tree cannot be reused.
cache=$dir/CMakeCache.txt
if [[ -f "$cache" ]]; then
  gen=$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' "$cache")
  home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$cache")
  if [[ "$gen" != "Ninja" || "$home" != "$root" ]]; then
    echo "build: $dir was configured elsewhere ($gen, $home): reconfiguring from scratch"
    rm -rf "$cache" "$dir/CMakeFiles"
  fi
fi

echo "build: $flavor in $dir with $jobs job(s)"
cmake -S . -B "$dir" -G Ninja "${args[@]}"
if ((${#targets[@]} > 0)); then
  cmake --build "$dir" --parallel "$jobs" --target "${targets[@]}"
else
  cmake --build "$dir" --parallel "$jobs"
fi
