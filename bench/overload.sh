#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Overload: a hot-document GET at 2,000 connections against the same node's capacity at
# 32 connections, in one run, for several admission settings (docs/benchmarks.md
# "Overload"). Not a test: it prints a markdown table.
#
# Builds nothing and installs nothing. It expects
#   - build/release/app/shoal    (scripts/build.sh release, or ninja -C build/release shoal)
#   - wrk, taskset, curl         (scripts/setup.sh --bench)
#
#   bench/overload.sh              10 s per measurement (about 2 minutes)
#   bench/overload.sh -d 3 -w 1    a quick smoke run
#
# Options:
#   -d, --duration S   seconds per measured wrk run (default 10)
#   -w, --warmup S     seconds of warm-up at 32 connections first, not recorded (default 2)
#   -c, --conns N      connections of the overload run (default 2000)
#   --shoal PATH       the shoal binary (default build/release/app/shoal)
#   --keep             keep the temporary directory (raw wrk output, probe samples, logs)
#
# Placement: shoal on core SERVER_CPU (default 0); wrk (one thread) and the probe on core
# WRK_CPU (default 1). The probe is a loop of single curl GETs of the same document during
# the overload run, one at a time: its timings show what a newcomer waits for an answer,
# split by status (a 503 must come at once). Goodput counts 2xx answers only.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_name=overload.sh
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
duration=10
warmup=2
conns=2000
shoal="$root/build/release/app/shoal"
server_cpu="${SERVER_CPU:-0}"
wrk_cpu="${WRK_CPU:-1}"

while (($#)); do
  case "$1" in
    -d|--duration) duration="$2"; shift 2 ;;
    -w|--warmup) warmup="$2"; shift 2 ;;
    -c|--conns) conns="$2"; shift 2 ;;
    --shoal) shoal="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) log "unknown option $1"; usage >&2; exit 2 ;;
  esac
done

require_tools wrk taskset curl
require_cluster_machine "$shoal"
# wrk needs a descriptor per connection, and so does the node.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < conns + 100)); then
  log "needs $((conns + 100)) open files, the limit is $(ulimit -n)"
  exit 1
fi
tmp=$(mktemp -d)

# name|settings (the node's --set arguments)
scenarios=(
  "no limit: every request admitted at once|--set http.min_inflight=1000000 --set http.max_inflight=1000000"
  "adaptive limit (defaults)|"
  "adaptive limit, queue_timeout_ms=20|--set http.queue_timeout_ms=20"
  "fixed limit 64, no queue (the shedding before)|--set http.min_inflight=64 --set http.max_inflight=64 --set http.max_queued=0"
)

# wrk_run OUT CONNS SECONDS URL: raw output to OUT (with --latency)
wrk_run() {
  taskset -c "$wrk_cpu" wrk -t1 -c"$2" -d"$3s" --latency "$4" >"$1" 2>&1 || {
    log "wrk failed: $(cat "$1")"
    return 1
  }
}

# total requests and non-2xx answers of a wrk output: "TOTAL NON2XX"
wrk_counts() {
  awk '/requests in/ { total = $1 } /Non-2xx or 3xx responses:/ { bad = $NF }
       END { printf "%d %d", total, bad + 0 }' "$1"
}

# probe URL OUT STOPFILE: one curl GET at a time until STOPFILE exists; "status seconds" lines
probe() {
  while [[ ! -e "$3" ]]; do
    taskset -c "$wrk_cpu" curl -s -o /dev/null -m 10 -w '%{http_code} %{time_total}\n' "$1" >>"$2" || true
  done
}

# percentile of the probe's times (ms) for STATUS: "count p50 p99" (p = nearest rank)
probe_stats() {
  awk -v s="$2" '$1 == s { print $2 * 1000 }' "$1" | sort -n | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "0 - -"; exit }
      i50 = int(NR * 0.5 + 0.999); i99 = int(NR * 0.99 + 0.999)
      printf "%d %.2f %.2f", NR, v[i50], v[i99]
    }'
}

metric() { # metric NAME: its unlabelled value on the node's /metrics
  curl -fsS "${shoal_url}metrics" | awk -v n="$1" '$1 == n { printf "%.0f", $2 }'
}

rows=()
i=0
for scenario in "${scenarios[@]}"; do
  i=$((i + 1))
  name="${scenario%%|*}"
  read -r -a sets <<<"${scenario#*|}"
  start_shoal "s$i" "$server_cpu" "${sets[@]}"
  doc="${shoal_url}v1/collections/bench/docs/hot"
  curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/json' \
    --data '{"name":"hot","value":42,"tags":["a","b"]}' "$doc"
  wrk_run "$tmp/s$i/warm.txt" 32 "$warmup" "$doc"
  wrk_run "$tmp/s$i/c32.txt" 32 "$duration" "$doc"
  capacity=$(parse_wrk "$tmp/s$i/c32.txt" | cut -d'|' -f1)
  rm -f "$tmp/s$i/stop"
  probe "$doc" "$tmp/s$i/probe.txt" "$tmp/s$i/stop" &
  probe_pid=$!
  pids+=("$probe_pid")
  wrk_run "$tmp/s$i/over.txt" "$conns" "$duration" "$doc"
  touch "$tmp/s$i/stop"
  wait "$probe_pid" || true
  forget_pid "$probe_pid"
  read -r total bad <<<"$(wrk_counts "$tmp/s$i/over.txt")"
  p99=$(parse_wrk "$tmp/s$i/over.txt" | cut -d'|' -f3)
  goodput=$(awk -v t="$total" -v b="$bad" -v d="$duration" 'BEGIN { printf "%.0f", (t - b) / d }')
  shed=$(awk -v t="$total" -v b="$bad" 'BEGIN { if (t == 0) print "-"; else printf "%.1f", 100 * b / t }')
  read -r ok_n ok_p50 ok_p99 <<<"$(probe_stats "$tmp/s$i/probe.txt" 200)"
  read -r no_n no_p50 no_p99 <<<"$(probe_stats "$tmp/s$i/probe.txt" 503)"
  limit=$(metric shoal_http_concurrency_limit)
  rejected=$(metric shoal_http_rejected_requests_total)
  stop_shoal
  rows+=("| $name | $capacity | $goodput | **$(ratio "$goodput" "$capacity")** | $shed% | $p99 | $ok_n: $ok_p50 / $ok_p99 | $no_n: $no_p50 / $no_p99 | $limit | $rejected |")
done

echo
echo "Hot-document GET; capacity = req/s at 32 connections, then $conns connections for ${duration} s (same node, same run)."
echo "shoal on core $server_cpu, wrk -t1 and the probe on core $wrk_cpu. Command: bench/overload.sh -d $duration -w $warmup -c $conns"
echo
echo "| settings | capacity (32 conns) req/s | goodput at $conns (2xx/s) | goodput / capacity | 503 share | p99 all (ms) | probe 200s: n, p50 / p99 ms | probe 503s: n, p50 / p99 ms | limit at end | 503s counted by the node |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
