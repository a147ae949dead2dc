#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Job queue benchmarks (docs/benchmarks.md, "Job queues"): the enqueue rate next to the
# document PUT rate in the same run (both are one durable write), jobs/s end to end
# (enqueue to succeeded) with the built-in no-op handler, and jobs/s through external pull
# workers that lease 10 at a time. Not a test: it prints a markdown report.
#
# Builds nothing and installs nothing. It expects
#   - build/release/app/shoal        (ninja -C build/release shoal)
#   - wrk, taskset, curl             (scripts/setup.sh --bench)
#
#   bench/jobs.sh                         everything (about 2 minutes)
#   bench/jobs.sh -d 2 -r 1 --jobs 5000   a quick smoke run
#
# Options:
#   -d, --duration S   seconds per measured wrk run of the enqueue/PUT section (default 10)
#   -w, --warmup S     seconds of warm-up before each of those runs (default 1)
#   -r, --rounds N     enqueue/PUT pairs, alternating (default 3); the report shows each
#                      and the median ratio
#   --jobs N           jobs in each end-to-end section (default 100000)
#   --workers N        in-process workers of the no-op queue (default 64)
#   --pullers N        connections of the external pull workers (default 32)
#   --shoal PATH       the shoal binary (default build/release/app/shoal)
#   -o, --out FILE     also write the report to FILE
#   --keep             keep the temporary directory (raw wrk output, logs, data)
#
# Placement: shoal is pinned to core SERVER_CPU (default 0) and wrk (one thread) to core
# WRK_CPU (default 1), on 127.0.0.1, with --set log.access_log=false.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_name=jobs.sh
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
duration=10
warmup=1
rounds=3
jobs=100000
workers=64
pullers=32
shoal="$root/build/release/app/shoal"
out=""
server_cpu="${SERVER_CPU:-0}"
wrk_cpu="${WRK_CPU:-1}"
conns=32

while (($#)); do
  case "$1" in
    -d|--duration) duration="$2"; shift 2 ;;
    -w|--warmup) warmup="$2"; shift 2 ;;
    -r|--rounds) rounds="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --pullers) pullers="$2"; shift 2 ;;
    --shoal) shoal="$2"; shift 2 ;;
    -o|--out) out="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "jobs.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done

for tool in wrk taskset curl; do
  command -v "$tool" >/dev/null 2>&1 || { log "missing $tool: install it with scripts/setup.sh --bench"; exit 1; }
done
[[ -x "$shoal" ]] || { log "no shoal binary at $shoal: ninja -C build/release shoal"; exit 1; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/shoal-jobs-bench.XXXXXX")"

# The queues: bench-enq and bench-ext have no in-process workers (jobs only accumulate,
# or wait for the pull workers); bench-noop runs the built-in no-op handler.
cat >"$tmp/jobs.toml" <<TOML
[jobs]
workers = $workers

[jobs.queues.bench-enq]
workers = 0

[jobs.queues.bench-ext]
workers = 0
TOML

start_shoal main "$server_cpu" --config "$tmp/jobs.toml"
log "shoal on $shoal_url (pid $shoal_pid), pinned to core $server_cpu; wrk on core $wrk_cpu"

# queue_field QUEUE FIELD: one count of GET /v1/queues/QUEUE
queue_field() {
  curl -fsS "${shoal_url}v1/queues/$1" | grep -o "\"$2\":[0-9]*" | cut -d: -f2
}

# timed_wrk LABEL SCRIPT ARGS...: wrk -t1 -c$conns for $duration s (after a warm-up);
# prints "req/s|p50|p99|errors".
timed_wrk() {
  local label="$1" script="$2"
  shift 2
  local raw="$tmp/$label.txt"
  if ((warmup > 0)); then
    taskset -c "$wrk_cpu" wrk -t1 -c"$conns" -d"${warmup}s" -s "$root/$script" "$shoal_url" -- "$@" >/dev/null 2>&1 || true
  fi
  taskset -c "$wrk_cpu" wrk -t1 -c"$conns" -d"${duration}s" --latency -s "$root/$script" "$shoal_url" -- "$@" >"$raw" 2>&1
  parse_wrk "$raw"
}

# until_done CONNS SCRIPT DONE_DIR ARGS...: runs wrk in its one-pass mode until thread 1
# wrote DONE_DIR/done-1 (at most 10 minutes); prints the elapsed seconds.
until_done() {
  local c="$1" script="$2" dir="$3"
  shift 3
  mkdir -p "$dir"
  rm -f "$dir"/done-*
  local t0 t1 i
  t0=$(date +%s.%N)
  taskset -c "$wrk_cpu" wrk -t1 -c"$c" -d900s -s "$root/$script" "$shoal_url" -- "$@" >"$dir/wrk.txt" 2>&1 &
  local wpid=$!
  pids+=("$wpid")
  for ((i = 0; i < 60000; i++)); do
    [[ -e "$dir/done-1" ]] && break
    alive "$wpid" || break
    sleep 0.01
  done
  t1=$(date +%s.%N)
  if alive "$wpid"; then kill -INT "$wpid" 2>/dev/null || true; fi
  wait "$wpid" 2>/dev/null || true
  forget_pid "$wpid"
  [[ -e "$dir/done-1" ]] || { log "wrk ($script) did not finish: $(cat "$dir/wrk.txt")"; return 1; }
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

# ------------------------------------------------------------------ enqueue vs PUT
pairs=()
ratios=()
for ((r = 1; r <= rounds; r++)); do
  log "round $r: enqueue (bench-enq), then PUT, $duration s each"
  enq=$(timed_wrk "enqueue-$r" bench/enqueue.lua bench-enq ext 100)
  put=$(timed_wrk "put-$r" bench/put_new.lua "r$r" 100)
  pairs+=("$enq;$put")
  ratios+=("$(ratio "${enq%%|*}" "${put%%|*}")")
done
median_ratio=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')

# ------------------------------------------------------------------ end to end, in-process
log "end to end: $jobs no-op jobs, enqueued by wrk -c$conns, run by $workers in-process workers"
t0=$(date +%s.%N)
enqueue_s=$(until_done "$conns" bench/enqueue.lua "$tmp/noop" bench-noop noop 100 "$jobs" "$tmp/noop")
for ((i = 0; i < 60000; i++)); do
  done_jobs=$(queue_field bench-noop succeeded)
  ((done_jobs >= jobs)) && break
  sleep 0.02
done
t1=$(date +%s.%N)
e2e_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
e2e_rate=$(awk -v n="$jobs" -v s="$e2e_s" 'BEGIN { printf "%.0f", n / s }')
noop_enqueue_rate=$(awk -v n="$jobs" -v s="$enqueue_s" 'BEGIN { printf "%.0f", n / s }')
noop_dead=$(queue_field bench-noop dead)

# ------------------------------------------------------------------ external pull workers
log "pull workers: $jobs jobs enqueued first, then leased 10 at a time over $pullers connections"
until_done "$conns" bench/enqueue.lua "$tmp/ext-fill" bench-ext ext 100 "$jobs" "$tmp/ext-fill" >/dev/null
pull_s=$(until_done "$pullers" bench/pull_worker.lua "$tmp/pull" bench-ext 10 "$tmp/pull")
pulled=$(queue_field bench-ext succeeded)
pull_rate=$(awk -v n="$pulled" -v s="$pull_s" 'BEGIN { printf "%.0f", n / s }')

stop_pid "$shoal_pid"

# ------------------------------------------------------------------ report
report() {
  echo "### Job queues ($(date -u +%Y-%m-%d), $(nproc) cores, shoal on core $server_cpu, wrk on core $wrk_cpu)"
  echo
  echo "Enqueue (POST /v1/queues/bench-enq/jobs, a queue without workers) next to PUT of a new"
  echo "document, the same 100-byte body, wrk -t1 -c$conns, ${duration} s each, alternating:"
  echo
  echo "| round | enqueue req/s | p99 ms | PUT req/s | p99 ms | enqueue/PUT |"
  echo "|---|---|---|---|---|---|"
  local i
  for ((i = 0; i < ${#pairs[@]}; i++)); do
    IFS='|' read -r er _ e99 _ <<<"${pairs[$i]%%;*}"
    IFS='|' read -r pr _ p99 _ <<<"${pairs[$i]##*;}"
    echo "| $((i + 1)) | $er | $e99 | $pr | $p99 | ${ratios[$i]} |"
  done
  echo
  echo "Median enqueue/PUT: **$median_ratio**."
  echo
  echo "| end to end | jobs | seconds | jobs/s |"
  echo "|---|---|---|---|"
  echo "| no-op in-process handler ($workers workers), from the first enqueue to the last succeeded | $jobs | $e2e_s | **$e2e_rate** |"
  echo "| (its enqueue phase alone, wrk -c$conns) | $jobs | $enqueue_s | $noop_enqueue_rate |"
  echo "| external pull workers, lease 10 + complete each, wrk -c$pullers | $pulled | $pull_s | **$pull_rate** |"
  echo
  echo "Dead no-op jobs: $noop_dead (must be 0)."
  echo
  echo "Command: \`bench/jobs.sh -d $duration -w $warmup -r $rounds --jobs $jobs --workers $workers --pullers $pullers\`"
}
report | tee "${out:-/dev/null}"
