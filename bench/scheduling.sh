#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# node.batch_scheduling off against on, beside nginx, in one run: hot-document GET and
# new-document PUT at 32 connections, on one core and on two, with context switches and
# server CPU per request (docs/benchmarks.md "Batch scheduling"). Not a test: it prints a
# markdown table.
#
# Builds nothing and installs nothing. It expects
#   - build/release/app/shoal        (scripts/build.sh release shoal)
#   - wrk, nginx, taskset, curl      (scripts/setup.sh --bench)
#
#   bench/scheduling.sh              10 s per measurement, two rounds (about 5 minutes)
#   bench/scheduling.sh -d 3 -r 1    a quick smoke run
#
# Options:
#   -d, --duration S   seconds per measured wrk run (default 10)
#   -w, --warmup S     seconds of warm-up before each, not recorded (default 1)
#   -r, --rounds N     rounds; off and on alternate within each (default 2)
#   --shoal PATH       the shoal binary (default build/release/app/shoal)
#   --keep             keep the temporary directory
#
# Placement: "1 core" pins nginx or shoal to core SERVER_CPU (default 0) and wrk (one
# thread) to WRK_CPU (default 1); "2 cores" lets shoal use both and leaves wrk unpinned.
# Context switches are the node's voluntary plus involuntary ones over every thread
# (/proc/PID/task/*/status) during the measured run, divided by its requests.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_name=scheduling.sh
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
duration=10
warmup=1
rounds=2
shoal="$root/build/release/app/shoal"
server_cpu="${SERVER_CPU:-0}"
wrk_cpu="${WRK_CPU:-1}"

while (($#)); do
  case "$1" in
    -d|--duration) duration="$2"; shift 2 ;;
    -w|--warmup) warmup="$2"; shift 2 ;;
    -r|--rounds) rounds="$2"; shift 2 ;;
    --shoal) shoal="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) log "unknown option $1"; usage >&2; exit 2 ;;
  esac
done

require_tools wrk nginx taskset curl
require_cluster_machine "$shoal"
tmp=$(mktemp -d)

switches() { # switches PID: voluntary + involuntary context switches of all its threads
  cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^(non)?voluntary_ctxt_switches:/ { n += $2 } END { print n + 0 }'
}
cpu_ticks() { # cpu_ticks PID: user + system clock ticks of the process
  awk '{ print $14 + $15 }' /proc/"$1"/stat
}

# measure LABEL PID URL PLACEMENT [SCRIPT ARGS...]: one wrk run; appends a row
rows=()
measure() {
  local label=$1 pid=$2 url=$3 placement=$4
  shift 4
  local script=() sargs=() wargs=()
  if (($#)); then # a wrk script and the id prefix it takes
    script=(-s "$root/$1")
    sargs=(-- "$2")
    wargs=(-- "$2w")
  fi
  local pre=()
  [[ "$placement" == "1 core" ]] && pre=(taskset -c "$wrk_cpu")
  "${pre[@]}" wrk -t1 -c32 -d"${warmup}s" "${script[@]}" "$url" "${wargs[@]}" >/dev/null 2>&1 || true
  local s0 c0 s1 c1 raw="$tmp/wrk-${#rows[@]}.txt"
  s0=$(switches "$pid")
  c0=$(cpu_ticks "$pid")
  "${pre[@]}" wrk -t1 -c32 -d"${duration}s" --latency "${script[@]}" "$url" "${sargs[@]}" >"$raw" 2>&1
  s1=$(switches "$pid")
  c1=$(cpu_ticks "$pid")
  local parsed rps p50 p99 errors total
  parsed=$(parse_wrk "$raw")
  IFS='|' read -r rps p50 p99 errors <<<"$parsed"
  total=$(awk '/requests in/ { print $1 }' "$raw")
  local cs_req cpu_us
  cs_req=$(awk -v a="$s0" -v b="$s1" -v n="$total" 'BEGIN { if (n > 0) printf "%.3f", (b - a) / n; else print "-" }')
  cpu_us=$(awk -v a="$c0" -v b="$c1" -v n="$total" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { if (n > 0) printf "%.1f", (b - a) / hz * 1e6 / n; else print "-" }')
  # nginx's master is not the process that serves: its counts say nothing.
  [[ "$label" == nginx* ]] && cs_req="-" && cpu_us="-"
  rows+=("$label|$placement|$rps|$p50|$p99|$cs_req|$cpu_us|$errors")
}

start_nginx '{"name":"hot","value":42}' application/json
nginx_get=$nginx_url
for ((r = 1; r <= rounds; r++)); do
  measure "nginx GET #$r" "$nginx_pid" "$nginx_get" "1 core"
  measure "nginx PUT #$r" "$nginx_pid" "$nginx_get" "1 core" bench/put_new.lua "n$r"
done
stop_pid "$nginx_pid"

for ((r = 1; r <= rounds; r++)); do
  for placement in "1 core" "2 cores"; do
    cpus=$server_cpu
    [[ "$placement" == "2 cores" ]] && cpus="0-1"
    for mode in false true; do
      start_shoal "s$r-$mode-${cpus}" "$cpus" --set "node.batch_scheduling=$mode"
      doc="${shoal_url}v1/collections/bench/docs/hot"
      curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/json' \
        --data '{"name":"hot","value":42}' "$doc"
      name="batch $([[ $mode == true ]] && echo on || echo off)"
      measure "shoal GET, $name #$r" "$shoal_pid" "$doc" "$placement"
      measure "shoal PUT new, $name #$r" "$shoal_pid" "$shoal_url" "$placement" bench/put_new.lua "p$r$mode${cpus/-/}"
      stop_shoal
    done
  done
done

echo
echo "32 connections, one wrk thread, ${duration} s per row after ${warmup} s of warm-up; rounds alternate off and on."
echo "Command: bench/scheduling.sh -d $duration -w $warmup -r $rounds"
echo
echo "| row | placement | req/s | p50 ms | p99 ms | context switches / request | server CPU µs / request | errors |"
echo "|---|---|---|---|---|---|---|---|"
for row in "${rows[@]}"; do
  IFS='|' read -r a b c d e f g h <<<"$row"
  echo "| $a | $b | $c | $d | $e | $f | $g | $h |"
done
