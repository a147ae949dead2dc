#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Shoal against nginx with wrk, side by side in one run, and the peak RSS of a loaded node.
# Not a test: it prints markdown tables for docs/benchmarks.md.
#
# Builds nothing and installs nothing. It expects
#   - build/release/app/shoal      (scripts/build.sh release, or ninja -C build/release shoal)
#   - wrk, nginx, taskset, curl    (scripts/setup.sh --bench)
#
#   bench/run.sh                   everything, 10 s per measurement (about 5 minutes)
#   bench/run.sh -d 3 -w 1 --docs 100000 --no-sweep     a quick smoke run
#
# Options:
#   -d, --duration S   seconds per measured wrk run (default 10)
#   -w, --warmup S     seconds of warm-up before each measured run, not recorded (default 1)
#   --docs N           documents of 200 bytes to load for the RSS measurement (default 1000000)
#   --no-sweep         skip the http.threads x actors.threads sweep and the two-core variant
#   --sweep-only       only the nginx baselines, the sweep (all four combinations) and the
#                      two-core variant: no (a)/(b)/(c) rows, no RSS
#   --no-rss           skip the RSS measurement
#   --shoal PATH       the shoal binary (default build/release/app/shoal)
#   --baseline PATH    also compare with another shoal binary (an older build): hot GET and
#                      PUT new of both, alternating in ROUNDS rounds, with the ratio of
#                      each to nginx and of the two to each other (section (e))
#   --rounds N         rounds of the comparison (default 3)
#   -o, --out FILE     also write the report to FILE
#   --keep             keep the temporary directory (raw wrk output, logs, data)
#
# Placement: nginx (one worker) and shoal are pinned to core SERVER_CPU (default 0) and wrk
# to core WRK_CPU (default 1), on 127.0.0.1, one wrk thread. The "two cores" variant lets
# shoal use cores 0 and 1 and leaves wrk unpinned: it is reported separately.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_name=run.sh
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
duration=10
warmup=1
docs=1000000
sweep=1
rss=1
main=1
shoal="$root/build/release/app/shoal"
baseline=""
rounds=3
out=""
keep=0
server_cpu="${SERVER_CPU:-0}"
wrk_cpu="${WRK_CPU:-1}"
conns=32

while (($#)); do
  case "$1" in
    -d|--duration) duration="$2"; shift 2 ;;
    -w|--warmup) warmup="$2"; shift 2 ;;
    --docs) docs="$2"; shift 2 ;;
    --no-sweep) sweep=0; shift ;;
    --sweep-only) main=0; rss=0; sweep=1; shift ;;
    --no-rss) rss=0; shift ;;
    --shoal) shoal="$2"; shift 2 ;;
    --baseline) baseline="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    -o|--out) out="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done

missing=()
for tool in wrk nginx taskset curl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "run.sh: missing ${missing[*]}: install them with scripts/setup.sh --bench" >&2
  exit 1
fi
if [[ -n "$baseline" && ! -x "$baseline" ]]; then
  echo "run.sh: no shoal binary at $baseline (--baseline)" >&2
  exit 1
fi
if [[ ! -x "$shoal" ]]; then
  echo "run.sh: no shoal binary at $shoal: build it first (scripts/build.sh release)" >&2
  exit 1
fi
cores=$(getconf _NPROCESSORS_ONLN)
if ((cores < 2)); then
  echo "run.sh: needs at least 2 cores (server and wrk on different cores); this machine has $cores" >&2
  exit 1
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/shoal-bench.XXXXXX")"
pids=()
shoal_pid=""
nginx_pid=""








# ---------------------------------------------------------------- servers
# Each start tries up to three free ports: another program may take the port first.

# start_node NAME CPUS [--set k=v ...]: bench/lib.sh's start_shoal, and doc_url, the hot
# document the GET runs read.
start_node() {
  start_shoal "$@" || return 1
  doc_url="${shoal_url}v1/collections/bench/docs/hot"
}

stop_shoal() {
  stop_pid "$shoal_pid"
}

hot_doc='{"id":"hot","name":"a hot document","tags":["bench","get"],"pad":"xxxxxxxxxxxxxxxxxxxx"}'
put_hot() {
  curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/json' --data "$hot_doc" \
    "http://127.0.0.1:$shoal_port/v1/collections/bench/docs/hot"
}

# ---------------------------------------------------------------- wrk and parsing
clk_tck=$(getconf CLK_TCK)

cpu_ticks() { # cpu_ticks PID: user+system clock ticks of PID and its children (nginx workers)
  local p total=0 t
  for p in "$1" $(pgrep -P "$1" || true); do
    t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }') || t=0
    total=$((total + ${t:-0}))
  done
  echo "$total"
}


rows=()     # "section|label|server|config|conns|rps|p50|p99|errors|server cpu %|wrk cpu %|cmd"
run_seq=0

# wrk_run SECTION LABEL SERVER CONFIG CONNS WRKPIN URL [SCRIPT ARGS...]
# WRKPIN: "pin" (taskset to WRK_CPU) or "free". Prints nothing; appends a row.
wrk_run() {
  local section="$1" label="$2" server="$3" config="$4" c="$5" pin="$6" url="$7"
  shift 7
  local script=() sargs=()
  if (($#)); then
    script=(-s "$root/$1")
    shift
    ((${#@})) && sargs=(-- "$@")
  fi
  local pre=()
  [[ "$pin" == pin ]] && pre=(taskset -c "$wrk_cpu")
  local t=1
  run_seq=$((run_seq + 1))
  local raw
  raw="$tmp/wrk-$(printf %02d "$run_seq").txt"
  log "$label — $server $config, $c connection(s)"
  if ((warmup > 0)); then
    local wargs=("${sargs[@]}")
    # PUT-new scripts: a distinct id prefix for the warm-up.
    if ((${#wargs[@]} > 1)); then wargs[1]="${wargs[1]}w"; fi
    "${pre[@]}" wrk -t"$t" -c"$c" -d"${warmup}s" "${script[@]}" "$url" "${wargs[@]}" >/dev/null 2>&1 || true
  fi
  local cmd=("${pre[@]}" wrk -t"$t" -c"$c" -d"${duration}s" --latency "${script[@]}" "$url" "${sargs[@]}")
  local spid="$shoal_pid"
  [[ "$server" == nginx ]] && spid="$nginx_pid"
  local s0 w0 t0 s1 w1 t1
  s0=$(cpu_ticks "$spid"); times >"$tmp/times"; w0=$(children_cpu); t0=$(date +%s.%N)
  "${cmd[@]}" >"$raw" 2>&1 || { log "wrk failed: $(cat "$raw")"; return 1; }
  s1=$(cpu_ticks "$spid"); times >"$tmp/times"; w1=$(children_cpu); t1=$(date +%s.%N)
  local cpu
  cpu=$(awk -v s0="$s0" -v s1="$s1" -v w0="$w0" -v w1="$w1" -v t0="$t0" -v t1="$t1" -v hz="$clk_tck" \
    'BEGIN { d = t1 - t0; printf "%.0f|%.0f", 100 * (s1 - s0) / hz / d, 100 * (w1 - w0) / d }')
  local parsed
  parsed=$(parse_wrk "$raw")
  local shown
  shown=$(printf '%s ' "${cmd[@]}" | sed "s|$root/||g; s|127.0.0.1:[0-9]*|127.0.0.1:\$PORT|g")
  rows+=("$section|$label|$server|$config|$c|$parsed|$cpu|${shown% }   # $label, $config")
}

# value of column N (1-based) of the first row matching SECTION and LABEL
# (columns: section label server config conns req/s p50 p99 errors server-cpu wrk-cpu command)
row_field() {
  local section="$1" label="$2" n="$3" r
  for r in "${rows[@]}"; do
    IFS='|' read -r -a f <<<"$r"
    if [[ "${f[0]}" == "$section" && "${f[1]}" == "$label" ]]; then
      echo "${f[$((n - 1))]}"
      return
    fi
  done
  echo ""
}

max() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (a > b ? a : b) }'; }

started=$(date +%s)
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
compilers_at_start=$(pgrep -c cc1plus || true)
log "temporary directory $tmp; $duration s per run, $warmup s warm-up"
log "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"

# ---------------------------------------------------------------- (a)(b)(c) as shipped
start_nginx ok
pin="pin core $server_cpu"
wrk_run base "nginx GET #1" nginx "1 worker, $pin" "$conns" pin "$nginx_url"
wrk_run base "nginx PUT" nginx "1 worker, $pin" "$conns" pin "$nginx_url" bench/put_new.lua nginx

if ((main)); then
  start_node shoal-default "$server_cpu"
  put_hot
  default_cmd=$(cat "$tmp/shoal-default/command")
  wrk_run main "shoal GET hot" shoal "defaults, $pin" "$conns" pin "$doc_url"
  wrk_run main "shoal PUT new" shoal "defaults, $pin" "$conns" pin "$shoal_url" bench/put_new.lua a
  wrk_run sync "PUT new, sync=false, 64" shoal "defaults, $pin" 64 pin "$shoal_url" bench/put_new.lua b
  stop_shoal

  start_node shoal-sync "$server_cpu" --set storage.sync=true
  sync_cmd=$(cat "$tmp/shoal-sync/command")
  wrk_run sync "PUT new, sync=true, 64" shoal "storage.sync=true, $pin" 64 pin "$shoal_url" bench/put_new.lua c
  wrk_run sync "PUT new, sync=true, 1" shoal "storage.sync=true, $pin" 1 pin "$shoal_url" bench/put_new.lua d
  stop_shoal
fi

# ---------------------------------------------------------------- thread sweep
sweep_cmds=()
if ((sweep)); then
  for combo in "1 1" "1 2" "2 1" "2 2"; do
    read -r ht at <<<"$combo"
    cfg="http.threads=$ht actors.threads=$at"
    if ((main && ht == 1 && at == 1)); then
      # 0 (the default) means one thread per CPU of the affinity mask; shoal is pinned to
      # one core here, so the rows above are this combination.
      for l in "GET hot" "PUT new"; do
        local_row="sweep|$l|shoal|$cfg (= defaults, rows above)|$conns"
        for n in 6 7 8 9 10 11; do local_row+="|$(row_field main "shoal $l" "$n")"; done
        rows+=("$local_row|")
      done
      continue
    fi
    start_node "shoal-h$ht-a$at" "$server_cpu" --set "http.threads=$ht" --set "actors.threads=$at"
    sweep_cmds+=("$(cat "$tmp/shoal-h$ht-a$at/command")")
    put_hot
    wrk_run sweep "GET hot" shoal "$cfg, $pin" "$conns" pin "$doc_url"
    wrk_run sweep "PUT new" shoal "$cfg, $pin" "$conns" pin "$shoal_url" bench/put_new.lua "s$ht$at"
    stop_shoal
  done

  # Two cores for shoal, wrk unpinned: not comparable with the pinned rows.
  wrk_run free "nginx GET" nginx "1 worker, pin core $server_cpu, wrk unpinned" "$conns" free "$nginx_url"
  start_node shoal-2cores "0-$((cores - 1))"
  free_cmd=$(cat "$tmp/shoal-2cores/command")
  put_hot
  wrk_run free "shoal GET hot" shoal "defaults, cores 0-$((cores - 1)), wrk unpinned" "$conns" free "$doc_url"
  wrk_run free "shoal PUT new" shoal "defaults, cores 0-$((cores - 1)), wrk unpinned" "$conns" free "$shoal_url" bench/put_new.lua f
  stop_shoal
fi

# ---------------------------------------------------------------- (e) against a baseline binary
if [[ -n "$baseline" ]]; then
  candidate="$shoal"
  for ((round = 1; round <= rounds; round++)); do
    for which in baseline candidate; do
      [[ "$which" == baseline ]] && shoal="$baseline" || shoal="$candidate"
      start_node "shoal-$which-$round" "$server_cpu"
      put_hot
      wrk_run "cmp-$which" "GET hot #$round" shoal "$which, $pin" "$conns" pin "$doc_url"
      wrk_run "cmp-$which" "PUT new #$round" shoal "$which, $pin" "$conns" pin "$shoal_url" bench/put_new.lua "$which$round"
      stop_shoal
    done
  done
  shoal="$candidate"
fi

wrk_run base "nginx GET #2" nginx "1 worker, $pin" "$conns" pin "$nginx_url"
stop_pid "$nginx_pid"

# ---------------------------------------------------------------- (d) RSS after loading
rss_report=""
if ((rss)); then
  # Loading is not a throughput measurement: shoal may use every core, wrk is unpinned.
  start_node shoal-rss "0-$((cores - 1))"
  rss_cmd=$(cat "$tmp/shoal-rss/command")
  before_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$shoal_pid/status")
  load_threads=2
  per_thread=$(((docs + load_threads - 1) / load_threads))
  mkdir -p "$tmp/load"
  log "loading $((per_thread * load_threads)) documents of 200 bytes"
  load_start=$(date +%s.%N)
  wrk -t"$load_threads" -c32 -d900s -s "$root/bench/put_new.lua" "http://127.0.0.1:$shoal_port/" \
    -- load 200 "$per_thread" "$tmp/load" >"$tmp/load/wrk.txt" 2>&1 &
  load_pid=$!
  pids+=("$load_pid")
  for ((i = 0; i < 6000; i++)); do  # at most 10 minutes
    n=$(find "$tmp/load" -name 'done-*' | wc -l)
    ((n >= load_threads)) && break
    alive "$load_pid" || break
    sleep 0.1
  done
  load_end=$(date +%s.%N)
  if alive "$load_pid"; then kill -INT "$load_pid" 2>/dev/null || true; fi
  wait "$load_pid" 2>/dev/null || true
  forget_pid "$load_pid"
  read -r created failed < <(cat "$tmp"/load/done-* 2>/dev/null | awk '{ c += $1; f += $2 } END { print c + 0, f + 0 }')
  load_rate=$(awk -v n="$created" -v a="$load_start" -v b="$load_end" 'BEGIN { printf "%.0f", n / (b - a) }')
  sleep 2
  hwm_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$shoal_pid/status")
  rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$shoal_pid/status")
  metrics=$(curl -fsS "http://127.0.0.1:$shoal_port/metrics")
  keys=$(awk '/^shoal_shard_keys_estimate\{/ { s += $NF } END { printf "%.0f", s }' <<<"$metrics")
  live=$(awk '/^shoal_storage_live_data_bytes/ { printf "%.0f", $NF }' <<<"$metrics")
  stop_shoal
  disk=$(du -sm "$tmp/shoal-rss/data" | cut -f1)
  mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
  rss_report=$(cat <<EOF
| measure | value |
|---|---|
| documents PUT (201 Created) | $created (failed: $failed) |
| documents present (sum of shoal_shard_keys_estimate) | $keys |
| load rate (wrk -t2 -c32, shoal on cores 0-$((cores - 1))) | $load_rate docs/s |
| VmRSS before loading | $(mib "$before_kb") MiB |
| VmHWM (peak RSS) after loading | $(mib "$hwm_kb") MiB |
| VmRSS after loading | $(mib "$rss_kb") MiB |
| shoal_storage_live_data_bytes | $live |
| data directory after shutdown (du -sm) | $disk MiB |

Server: \`$rss_cmd\`
Load: \`wrk -t$load_threads -c32 -d900s -s bench/put_new.lua http://127.0.0.1:\$PORT/ -- load 200 $per_thread \$TMP/load\` (each thread stops after $per_thread PUTs; run.sh sends SIGINT once both are done)
EOF
)
fi

# ---------------------------------------------------------------- report
n1=$(row_field base "nginx GET #1" 6)
n2=$(row_field base "nginx GET #2" 6)
# Noise only ever lowers a rate: the higher of the two runs is the better estimate of
# nginx, and it keeps shoal's ratios on the conservative side.
nget=$(max "$n1" "$n2")
nput=$(row_field base "nginx PUT" 6)

table_header='| scenario | server | config | conns | req/s | p50 ms | p99 ms | errors | server CPU | wrk CPU | ratio |
|---|---|---|---|---|---|---|---|---|---|---|'
row_line() { # row_line ROW RATIO
  IFS='|' read -r -a f <<<"$1"
  echo "| ${f[1]} | ${f[2]} | ${f[3]} | ${f[4]} | ${f[5]} | ${f[6]} | ${f[7]} | ${f[8]} | ${f[9]}% | ${f[10]}% | $2 |"
}

report() {
  local r f
  echo "## Results"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')),"
  echo "$duration s per run after a $warmup s warm-up, wrk -t1 pinned to core $wrk_cpu, servers pinned to core $server_cpu."
  echo "CPU columns: user+system time of the server process (nginx: master and worker) and of wrk during the measured run, in % of one core."
  echo "Load average at start $load_at_start ($compilers_at_start compiler processes), at end $(cut -d' ' -f1-3 /proc/loadavg) ($(pgrep -c cc1plus || true))."
  echo "nginx GET baseline: #1 $n1 req/s, #2 $n2 req/s (spread $(awk -v a="$n1" -v b="$n2" 'BEGIN { d = a - b; if (d < 0) d = -d; printf "%.0f", 100 * d / ((a + b) / 2) }')%); ratios to "nginx GET" use the higher, $nget req/s."
  echo
  echo "### (a) hot GET and (b) PUT of new 100-byte documents"
  echo
  echo "$table_header"
  for r in "${rows[@]}"; do
    IFS='|' read -r -a f <<<"$r"
    case "${f[0]}|${f[1]}" in
      "base|nginx GET #1"|"base|nginx GET #2") row_line "$r" "$(ratio "${f[5]}" "$nget") × nginx GET" ;;
      "base|nginx PUT") row_line "$r" "$(ratio "${f[5]}" "$nget") × nginx GET" ;;
      "main|shoal GET hot") row_line "$r" "**$(ratio "${f[5]}" "$nget") × nginx GET**" ;;
      "main|shoal PUT new") row_line "$r" "**$(ratio "${f[5]}" "$nput") × nginx PUT**, $(ratio "${f[5]}" "$nget") × nginx GET" ;;
    esac
  done
  if ((main)); then
    echo
    echo "### (c) PUT of new documents with storage.sync=true"
    echo
    local ns64 s64 s1
    ns64=$(row_field sync "PUT new, sync=false, 64" 6)
    s64=$(row_field sync "PUT new, sync=true, 64" 6)
    s1=$(row_field sync "PUT new, sync=true, 1" 6)
    echo "$table_header"
    for r in "${rows[@]}"; do
      IFS='|' read -r -a f <<<"$r"
      [[ "${f[0]}" == sync ]] || continue
      row_line "$r" "$(ratio "${f[5]}" "$ns64") × non-sync 64"
    done
    echo
    echo "sync 64 / non-sync 64 = **$(ratio "$s64" "$ns64")**; sync 64 / sync 1 = $(ratio "$s64" "$s1") (group commit)."
  fi
  if ((sweep)); then
    echo
    echo "### Thread settings, both servers pinned to core $server_cpu"
    echo
    echo "$table_header"
    for r in "${rows[@]}"; do
      IFS='|' read -r -a f <<<"$r"
      [[ "${f[0]}" == sweep ]] || continue
      if [[ "${f[1]}" == "GET hot" ]]; then
        row_line "$r" "$(ratio "${f[5]}" "$nget") × nginx GET"
      else
        row_line "$r" "$(ratio "${f[5]}" "$nput") × nginx PUT"
      fi
    done
    echo
    echo "### Two cores for shoal (taskset -c 0-$((cores - 1))), wrk unpinned — not comparable with the pinned rows"
    echo
    echo "$table_header"
    local nfree
    nfree=$(row_field free "nginx GET" 6)
    for r in "${rows[@]}"; do
      IFS='|' read -r -a f <<<"$r"
      [[ "${f[0]}" == free ]] || continue
      row_line "$r" "$(ratio "${f[5]}" "$nfree") × nginx GET (same placement)"
    done
  fi
  if [[ -n "$baseline" ]]; then
    echo
    echo "### (e) This build against a baseline build, alternating in $rounds rounds"
    echo
    echo "Candidate: \`${shoal#$root/}\`; baseline: \`$baseline\`. Each round starts the baseline, then the candidate, fresh."
    echo
    echo "$table_header"
    local kind sum_b sum_c
    for r in "${rows[@]}"; do
      IFS='|' read -r -a f <<<"$r"
      [[ "${f[0]}" == cmp-* ]] || continue
      if [[ "${f[1]}" == GET* ]]; then
        row_line "$r" "$(ratio "${f[5]}" "$nget") × nginx GET"
      else
        row_line "$r" "$(ratio "${f[5]}" "$nput") × nginx PUT"
      fi
    done
    echo
    for kind in GET PUT; do
      sum_b=0
      sum_c=0
      for ((round = 1; round <= rounds; round++)); do
        local label="GET hot #$round"
        [[ "$kind" == PUT ]] && label="PUT new #$round"
        sum_b=$(awk -v a="$sum_b" -v b="$(row_field cmp-baseline "$label" 6)" 'BEGIN { print a + b }')
        sum_c=$(awk -v a="$sum_c" -v b="$(row_field cmp-candidate "$label" 6)" 'BEGIN { print a + b }')
      done
      local ref="$nget" refname="nginx GET"
      [[ "$kind" == PUT ]] && ref="$nput" && refname="nginx PUT"
      echo "- $kind, mean of $rounds rounds: baseline $(awk -v s="$sum_b" -v n="$rounds" 'BEGIN { printf "%.0f", s / n }') req/s = $(ratio "$(awk -v s="$sum_b" -v n="$rounds" 'BEGIN { print s / n }')" "$ref") × $refname; candidate $(awk -v s="$sum_c" -v n="$rounds" 'BEGIN { printf "%.0f", s / n }') req/s = $(ratio "$(awk -v s="$sum_c" -v n="$rounds" 'BEGIN { print s / n }')" "$ref") × $refname; **candidate / baseline = $(ratio "$sum_c" "$sum_b")**"
    done
  fi
  if [[ -n "$rss_report" ]]; then
    echo
    echo "### (d) Memory after loading $docs documents of 200 bytes"
    echo
    echo "$rss_report"
  fi
  echo
  echo "### Commands"
  echo
  echo "Ports are free ports picked by the run; \$TMP is its temporary directory."
  echo
  echo '```'
  echo "nginx -e \$TMP/nginx/error.log -p \$TMP/nginx -c \$TMP/nginx/nginx.conf   # under taskset -c $server_cpu"
  if ((main)); then
    echo "$default_cmd"
    echo "$sync_cmd"
  fi
  if ((sweep)); then
    printf '%s\n' "${sweep_cmds[@]}"
    echo "$free_cmd"
  fi
  for r in "${rows[@]}"; do
    IFS='|' read -r -a f <<<"$r"
    [[ -n "${f[11]:-}" ]] && echo "${f[11]}"
  done
  echo '```'
  echo
  echo "Whole run: $(($(date +%s) - started)) s."
}

if [[ -n "$out" ]]; then
  report | tee "$out"
else
  report
fi
