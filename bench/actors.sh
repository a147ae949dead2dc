#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Virtual-actor benchmarks: counter calls over HTTP next to document PUTs in the same run,
# activation of 100,000 distinct counters, memory per active actor, and the in-process
# Google Benchmark (shoal_actor_bench). Not a test: it prints markdown tables for
# docs/benchmarks.md ("Virtual actors"). Same placement and helpers as bench/run.sh.
#
# Builds nothing and installs nothing. It expects
#   - build/release/app/shoal and build/release/bench/shoal_actor_bench
#       (ninja -C build/release shoal shoal_actor_bench)
#   - wrk, taskset, curl         (scripts/setup.sh --bench)
#
#   bench/actors.sh                          everything (about 2 minutes)
#   bench/actors.sh -d 2 --ids 20000 --no-micro     a quick smoke run
#
# Options:
#   -d, --duration S   seconds per measured wrk run of the hot-counter section (default 10)
#   -w, --warmup S     seconds of warm-up before each of those runs, not recorded (default 1)
#   --ids N            distinct counters for the activation and memory sections (default 100000)
#   --no-micro         skip the in-process benchmark
#   --wait-quiet       first wait for 30 quiet seconds in a row (at most 15 min): no compiler
#                      (cc1plus), no other shoal process (someone's node or test binary), and
#                      under 20% of one core busy machine-wide in each of those seconds
#   --shoal PATH       the shoal binary (default build/release/app/shoal)
#   --micro PATH       the in-process benchmark (default build/release/bench/shoal_actor_bench)
#   -o, --out FILE     also write the report to FILE
#   --keep             keep the temporary directory (raw wrk output, logs, data)
#
# Placement: shoal is pinned to core SERVER_CPU (default 0) and wrk (one thread) to core
# WRK_CPU (default 1), on 127.0.0.1, every node with --set log.access_log=false. The
# in-process benchmark runs afterwards, unpinned (its CAF workers use every core).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_name=actors.sh
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
duration=10
warmup=1
ids=100000
micro=1
wait_quiet=0
shoal="$root/build/release/app/shoal"
micro_bin="$root/build/release/bench/shoal_actor_bench"
out=""
keep=0
server_cpu="${SERVER_CPU:-0}"
wrk_cpu="${WRK_CPU:-1}"
conns=32

while (($#)); do
  case "$1" in
    -d|--duration) duration="$2"; shift 2 ;;
    -w|--warmup) warmup="$2"; shift 2 ;;
    --ids) ids="$2"; shift 2 ;;
    --no-micro) micro=0; shift ;;
    --wait-quiet) wait_quiet=1; shift ;;
    --shoal) shoal="$2"; shift 2 ;;
    --micro) micro_bin="$2"; shift 2 ;;
    -o|--out) out="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "actors.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done

missing=()
tools=(wrk taskset curl)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "actors.sh: missing ${missing[*]}: install them with scripts/setup.sh --bench" >&2
  exit 1
fi
if [[ ! -x "$shoal" ]]; then
  echo "actors.sh: no shoal binary at $shoal: build it first (ninja -C build/release shoal)" >&2
  exit 1
fi
if ((micro)) && [[ ! -x "$micro_bin" ]]; then
  echo "actors.sh: no $micro_bin: build it (ninja -C build/release shoal_actor_bench) or pass --no-micro" >&2
  exit 1
fi
cores=$(getconf _NPROCESSORS_ONLN)
if ((cores < 2)); then
  echo "actors.sh: needs at least 2 cores (server and wrk on different cores); this machine has $cores" >&2
  exit 1
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/shoal-actors-bench.XXXXXX")"
pids=()
shoal_pid=""

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$shoal_pid/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# metric NAME: the sum of the samples of NAME in /metrics (all label sets)
metric() {
  curl -fsS "${shoal_url}metrics" | awk -v n="$1" '
    index($0, n "{") == 1 || index($0, n " ") == 1 { s += $NF } END { printf "%.0f", s }'
}

# call ID METHOD: POST a counter method, prints the response body
call() {
  curl -fsS -X POST "${shoal_url}v1/actors/counter/$1/method/$2"
}

# ---------------------------------------------------------------- wrk and parsing
clk_tck=$(getconf CLK_TCK)

cpu_ticks() { # cpu_ticks PID: user+system clock ticks of PID
  sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'
}

busy_ticks() { # clock ticks every CPU of the machine spent busy (user nice system irq softirq steal)
  awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

# cpu_columns S0 S1 W0 W1 B0 B1 T0 T1: "shoal %|wrk %|others %" of one core over T1 - T0;
# others = the machine's busy time minus shoal's and wrk's (other engineers' work).
cpu_columns() {
  awk -v s0="$1" -v s1="$2" -v w0="$3" -v w1="$4" -v b0="$5" -v b1="$6" -v t0="$7" -v t1="$8" -v hz="$clk_tck" \
    'BEGIN { d = t1 - t0; s = (s1 - s0) / hz; w = w1 - w0; o = (b1 - b0) / hz - s - w; if (o < 0) o = 0
             printf "%.0f|%.0f|%.0f", 100 * s / d, 100 * w / d, 100 * o / d }'
}

shown() { # the command as recorded: paths relative to the repo, $PORT and $TMP
  printf '%s ' "$@" | sed "s|$tmp|\$TMP|g; s|$root/||g; s|127.0.0.1:[0-9]*|127.0.0.1:\$PORT|g; s| $||"
}

rows=()     # "label|conns|rps|p50|p99|errors|server cpu %|wrk cpu %|others cpu %"
commands=() # every recorded command, in order
run_seq=0

# wrk_run LABEL URL SCRIPT ARGS...: a warm-up (not recorded) and a measured run of
# $duration s, wrk -t1 -c$conns pinned to WRK_CPU. put_new.lua gets a distinct id prefix
# for the warm-up. Appends a row.
wrk_run() {
  local label="$1" url="$2" script="$3"
  shift 3
  local sargs=(-- "$@") pre=(taskset -c "$wrk_cpu")
  run_seq=$((run_seq + 1))
  local raw
  raw="$tmp/wrk-$(printf %02d "$run_seq").txt"
  log "$label, $conns connections"
  if ((warmup > 0)); then
    local wargs=("${sargs[@]}")
    [[ "$script" == bench/put_new.lua ]] && wargs[1]="${wargs[1]}w"
    "${pre[@]}" wrk -t1 -c"$conns" -d"${warmup}s" -s "$root/$script" "$url" "${wargs[@]}" >/dev/null 2>&1 || true
  fi
  local cmd=("${pre[@]}" wrk -t1 -c"$conns" -d"${duration}s" --latency -s "$root/$script" "$url" "${sargs[@]}")
  local s0 w0 b0 t0 s1 w1 b1 t1
  s0=$(cpu_ticks "$shoal_pid"); times >"$tmp/times"; w0=$(children_cpu); b0=$(busy_ticks); t0=$(date +%s.%N)
  "${cmd[@]}" >"$raw" 2>&1 || { log "wrk failed: $(cat "$raw")"; return 1; }
  s1=$(cpu_ticks "$shoal_pid"); times >"$tmp/times"; w1=$(children_cpu); b1=$(busy_ticks); t1=$(date +%s.%N)
  local cpu
  cpu=$(cpu_columns "$s0" "$s1" "$w0" "$w1" "$b0" "$b1" "$t0" "$t1")
  rows+=("$label|$conns|$(parse_wrk "$raw")|$cpu")
  commands+=("$(shown "${cmd[@]}")   # $label")
}

# pass_run LABEL DONE_DIR SCRIPT ARGS...: wrk -t1 -c$conns pinned to WRK_CPU with a script
# in its one-pass mode (each thread writes DONE_DIR/done-<thread> "<ok> <failed>" and
# stops). The rate is the calls answered over the wall-clock time from starting wrk to
# the done file (polled every 10 ms); wrk gets SIGINT then, and its --latency output
# gives p50/p99. Sets pass_row:
# "calls|ok|failed|seconds|calls/s|p50|p99|errors|server cpu|wrk cpu|others cpu".
pass_run() {
  local label="$1" done_dir="$2" script="$3"
  shift 3
  mkdir -p "$done_dir"
  rm -f "$done_dir"/done-*
  run_seq=$((run_seq + 1))
  local raw
  raw="$tmp/wrk-$(printf %02d "$run_seq").txt"
  log "$label, $conns connections"
  local cmd=(taskset -c "$wrk_cpu" wrk -t1 -c"$conns" -d900s --latency -s "$root/$script"
             "$shoal_url" -- "$@")
  local s0 w0 b0 t0 s1 w1 b1 t1 i
  s0=$(cpu_ticks "$shoal_pid"); times >"$tmp/times"; w0=$(children_cpu); b0=$(busy_ticks); t0=$(date +%s.%N)
  "${cmd[@]}" >"$raw" 2>&1 &
  local wpid=$!
  pids+=("$wpid")
  for ((i = 0; i < 60000; i++)); do # at most 10 minutes
    [[ -e "$done_dir/done-1" ]] && break
    alive "$wpid" || break
    sleep 0.01
  done
  t1=$(date +%s.%N); s1=$(cpu_ticks "$shoal_pid"); b1=$(busy_ticks)
  if alive "$wpid"; then kill -INT "$wpid" 2>/dev/null || true; fi
  wait "$wpid" 2>/dev/null || true
  forget_pid "$wpid"
  times >"$tmp/times"; w1=$(children_cpu)
  local ok failed
  read -r ok failed < <(cat "$done_dir"/done-* 2>/dev/null | awk '{ o += $1; f += $2 } END { print o + 0, f + 0 }')
  local parsed
  parsed=$(parse_wrk "$raw")
  # wrk's CPU time is known once it is reaped: a little past t1 (its SIGINT exit).
  pass_row=$(awk -v ok="$ok" -v f="$failed" -v t0="$t0" -v t1="$t1" -v p="$parsed" -v c="$(cpu_columns "$s0" "$s1" "$w0" "$w1" "$b0" "$b1" "$t0" "$t1")" 'BEGIN {
      d = t1 - t0; split(p, a, "|")
      printf "%d|%d|%d|%.2f|%.0f|%s|%s|%s|%s", ok + f, ok, f, d, (ok + f) / d, a[2], a[3], a[4], c }')
  commands+=("$(shown "${cmd[@]}")   # $label")
}

field() { echo "$1" | cut -d'|' -f"$2"; }
row_of() { # row_of LABEL: the row with that label
  local r
  for r in "${rows[@]}"; do [[ "${r%%|*}" == "$1" ]] && { echo "$r"; return; }; done
  echo ""
}

# ---------------------------------------------------------------- wait for a quiet machine
quiet_note=""
if ((wait_quiet)); then
  log "waiting for 30 quiet seconds: no cc1plus, no shoal* process, < 20% of a core busy (at most 15 min)"
  clk=$(getconf CLK_TCK)
  quiet=0
  waited=0
  b_prev=$(awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat)
  while ((quiet < 30 && waited < 900)); do
    sleep 1
    waited=$((waited + 1))
    b_now=$(awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat)
    if pgrep -x 'cc1plus|shoal.*' >/dev/null 2>&1 || ((5 * (b_now - b_prev) > clk)); then
      quiet=0
    else
      quiet=$((quiet + 1))
    fi
    b_prev=$b_now
  done
  if ((quiet >= 30)); then
    quiet_note="started after 30 quiet seconds (no compiler, no other shoal process, under 20% of a core busy; waited ${waited} s)"
  else
    quiet_note="started after 15 min of waiting without 30 quiet seconds in a row"
  fi
  log "$quiet_note"
fi

started=$(date +%s)
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
compilers_at_start=$(pgrep -c -x cc1plus || true)
head_commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | wc -l)
shoal_built=$(date -u -r "$shoal" +%Y-%m-%dT%H:%MZ)
log "temporary directory $tmp; $duration s per run, $warmup s warm-up, $ids distinct counters"

# ---------------------------------------------------------------- (1) hot counter vs PUT
start_shoal hot "$server_cpu"
hot_cmd=$(cat "$tmp/hot/command")
first=$(call hot increment)
[[ "$first" == '{"value":1}' ]] || { log "unexpected answer to the first increment: $first"; exit 1; }
wrk_run "counter increment, hot #1" "$shoal_url" bench/actor_call.lua hot hot increment
wrk_run "document PUT new #1" "$shoal_url" bench/put_new.lua a
wrk_run "counter increment, hot #2" "$shoal_url" bench/actor_call.lua hot hot increment
wrk_run "document PUT new #2" "$shoal_url" bench/put_new.lua b
wrk_run "counter get (read-only), hot" "$shoal_url" bench/actor_call.lua hot hot get
hot_value=$(call hot get)
hot_calls=$(metric shoal_actor_calls_total)
stop_shoal

# ---------------------------------------------------------------- (2)(3) distinct counters, memory
many_settings=(--set actors.max_active=200000 --set actors.idle_timeout_ms=3600000)
start_shoal many "$server_cpu" "${many_settings[@]}"
many_cmd=$(cat "$tmp/many/command")
sleep 1
many_rss0=$(rss_kb)
pass_run "pass 1 over $ids counters (activations)" "$tmp/many/pass1" bench/actor_call.lua cycle c "$ids" 1 "$tmp/many/pass1"
pass1="$pass_row"
sleep 2
many_rss1=$(rss_kb)
many_active=$(metric shoal_actors_active)
many_activations=$(metric shoal_actor_activations_total)
pass_run "pass 2 over the same $ids counters (all active)" "$tmp/many/pass2" bench/actor_call.lua cycle c "$ids" 1 "$tmp/many/pass2"
pass2="$pass_row"
sleep 2
many_rss2=$(rss_kb)
many_active2=$(metric shoal_actors_active)
many_passivations=$(metric shoal_actor_passivations_total)
sample=$(call c-$((ids - 1)) get)
stop_shoal

# The same node loaded with as many small documents: what the store alone costs per key.
start_shoal docs "$server_cpu" "${many_settings[@]}"
docs_cmd=$(cat "$tmp/docs/command")
sleep 1
docs_rss0=$(rss_kb)
pass_run "control: $ids new small documents" "$tmp/docs/load" bench/put_new.lua m 0 "$ids" "$tmp/docs/load"
docs_pass="$pass_row"
sleep 2
docs_rss1=$(rss_kb)
docs_keys=$(metric shoal_shard_keys_estimate)
stop_shoal
# put_new.lua counts 201 as created: its "<created> <failed>" lands in ok/failed.

# ---------------------------------------------------------------- (4) in-process
micro_cmd=""
if ((micro)); then
  log "in-process benchmark (shoal_actor_bench)"
  micro_cmd="$(shown "$micro_bin") --benchmark_color=false --benchmark_out=\$TMP/micro.json --benchmark_out_format=json"
  times >"$tmp/times"; mw0=$(children_cpu); mb0=$(busy_ticks); mt0=$(date +%s.%N)
  "$micro_bin" --benchmark_color=false --benchmark_out="$tmp/micro.json" --benchmark_out_format=json \
    >"$tmp/micro.txt" 2>&1 \
    || { log "shoal_actor_bench failed: $(tail -5 "$tmp/micro.txt")"; exit 1; }
  times >"$tmp/times"; mw1=$(children_cpu); mb1=$(busy_ticks); mt1=$(date +%s.%N)
  # "shoal %|bench %|others %": the benchmark is the child here, shoal is not running
  micro_cpu=$(cpu_columns 0 0 "$mw0" "$mw1" "$mb0" "$mb1" "$mt0" "$mt1")
fi

# ---------------------------------------------------------------- report
row_line() { # row_line ROW RATIO
  IFS='|' read -r -a f <<<"$1"
  echo "| ${f[0]} | ${f[1]} | ${f[2]} | ${f[3]} | ${f[4]} | ${f[5]} | ${f[6]}% | ${f[7]}% | ${f[8]}% | $2 |"
}

report() {
  local i1 i2 p1 p2 g
  i1=$(field "$(row_of "counter increment, hot #1")" 3)
  i2=$(field "$(row_of "counter increment, hot #2")" 3)
  p1=$(field "$(row_of "document PUT new #1")" 3)
  p2=$(field "$(row_of "document PUT new #2")" 3)
  g=$(field "$(row_of "counter get (read-only), hot")" 3)
  local isum psum
  isum=$(awk -v a="$i1" -v b="$i2" 'BEGIN { print a + b }')
  psum=$(awk -v a="$p1" -v b="$p2" 'BEGIN { print a + b }')
  echo "## Results"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), HEAD \`$head_commit\`$( ((dirty)) && echo " with $dirty modified tracked file(s) in the working tree"), shoal binary built $shoal_built, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))."
  [[ -n "$quiet_note" ]] && echo "The run $quiet_note."
  echo "Load average at start $load_at_start ($compilers_at_start compiler processes), at end $(cut -d' ' -f1-3 /proc/loadavg) ($(pgrep -c -x cc1plus || true))."
  echo "shoal pinned to core $server_cpu, wrk -t1 -c$conns pinned to core $wrk_cpu. CPU columns: user+system time during the measured run, in % of one core, of shoal, of wrk, and of everything else on the machine (others: the machine's busy time minus the two; high means the row was disturbed)."
  echo
  echo "### (1) One hot counter and document PUTs, same node, $conns connections"
  echo
  echo "$duration s per row after a $warmup s warm-up, in this order."
  echo
  echo "| scenario | conns | req/s | p50 ms | p99 ms | errors | shoal CPU | wrk CPU | others CPU | ratio |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  row_line "$(row_of "counter increment, hot #1")" "**$(ratio "$i1" "$p1") × PUT #1**"
  row_line "$(row_of "document PUT new #1")" "1.00"
  row_line "$(row_of "counter increment, hot #2")" "**$(ratio "$i2" "$p2") × PUT #2**"
  row_line "$(row_of "document PUT new #2")" "1.00"
  row_line "$(row_of "counter get (read-only), hot")" "$(ratio "$g" "$(awk -v s="$psum" 'BEGIN { print s / 2 }')") × mean PUT"
  echo
  echo "Counter increment / document PUT over both pairs: **$(ratio "$isum" "$psum")**. The counter's final \`get\`: \`$hot_value\`; \`shoal_actor_calls_total\` on that node: $hot_calls."
  echo
  echo "### (2) $ids distinct counters, $conns connections"
  echo
  echo "| pass | calls | 200 | other | seconds | calls/s | p50 ms | p99 ms | wrk errors | shoal CPU | wrk CPU | others CPU |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  local r
  for r in "1 (every call activates)|$pass1" "2 (all active)|$pass2"; do
    IFS='|' read -r -a f <<<"$r"
    echo "| ${f[0]} | ${f[1]} | ${f[2]} | ${f[3]} | ${f[4]} | **${f[5]}** | ${f[6]} | ${f[7]} | ${f[8]} | ${f[9]}% | ${f[10]}% | ${f[11]}% |"
  done
  echo
  echo "Pass 1 / pass 2: $(ratio "$(field "$pass1" 5)" "$(field "$pass2" 5)"); pass 2 / hot increment (mean of #1 and #2): $(ratio "$(field "$pass2" 5)" "$(awk -v s="$isum" 'BEGIN { print s / 2 }')"). Counter \`c-$((ids - 1))\` afterwards: \`$sample\`."
  echo
  echo "### (3) Memory per active actor"
  echo
  local d_many d_docs per_actor per_doc net docs_n
  d_many=$((many_rss1 - many_rss0))
  d_docs=$((docs_rss1 - docs_rss0))
  docs_n=$(field "$docs_pass" 2)
  per_actor=$(awk -v d="$d_many" -v n="$many_active" 'BEGIN { if (n > 0) printf "%.0f", d * 1024 / n; else print "-" }')
  per_doc=$(awk -v d="$d_docs" -v n="$docs_n" 'BEGIN { if (n > 0) printf "%.0f", d * 1024 / n; else print "-" }')
  net=$(awk -v a="$per_actor" -v b="$per_doc" 'BEGIN { printf "%.0f", a - b }')
  echo "| measure | value |"
  echo "|---|---|"
  echo "| VmRSS before pass 1 | $(mib "$many_rss0") MiB |"
  echo "| VmRSS after pass 1 | $(mib "$many_rss1") MiB |"
  echo "| shoal_actors_active after pass 1 | $many_active (activations: $many_activations) |"
  echo "| VmRSS after pass 2 | $(mib "$many_rss2") MiB (active: $many_active2, passivations: $many_passivations) |"
  echo "| **RSS delta / active actor** (pass 1) | **$per_actor bytes** |"
  echo "| control: VmRSS before / after $docs_n new documents (${docs_keys} keys) | $(mib "$docs_rss0") / $(mib "$docs_rss1") MiB |"
  echo "| control: RSS delta / document | $per_doc bytes |"
  echo "| actor delta minus document delta | **$net bytes** per actor |"
  echo
  echo "Control load: $(field "$docs_pass" 5) docs/s (shoal CPU $(field "$docs_pass" 9)%, others $(field "$docs_pass" 11)%). A counter's state is \`{\"value\":1}\` (12 bytes with its format byte) under a 16-byte key; a control document is about 30 bytes of JSON plus 9 bytes of header under a 17-byte key. Both are written to the same RocksDB memtables, so the difference of the two deltas is what an active actor costs beyond its stored state."
  if ((micro)); then
    echo
    echo "### (4) In-process (shoal_actor_bench)"
    echo
    echo "| benchmark | calls/s | wall time per call | iterations | counters |"
    echo "|---|---|---|---|---|"
    # The console table (the JSON file keeps full precision): "NAME TIME UNIT CPU UNIT
    # ITERATIONS key=value..." with values like 85.197k/s or 3.048k.
    awk '
      function num(v) {
        sub(/\/s$/, "", v)
        if (v ~ /k$/) return substr(v, 1, length(v) - 1) * 1e3
        if (v ~ /M$/) return substr(v, 1, length(v) - 1) * 1e6
        if (v ~ /G$/) return substr(v, 1, length(v) - 1) * 1e9
        return v + 0
      }
      /^BM_/ {
        if ($0 ~ /ERROR OCCURRED/) { printf "| `%s` | error | | | |\n", $1; next }
        ips = ""; extra = ""
        for (i = 7; i <= NF; i++) {
          split($i, kv, "=")
          if (kv[1] == "items_per_second") ips = sprintf("%.0f", num(kv[2]))
          else extra = extra (extra == "" ? "" : ", ") kv[1] "=" sprintf("%.0f", num(kv[2]))
        }
        printf "| `%s` | %s | %s %s | %s | %s |\n", $1, ips, $2, $3, $6, extra
      }' "$tmp/micro.txt"
    echo
    echo "Over the whole in-process run ($(awk -v a="$mt0" -v b="$mt1" 'BEGIN { printf "%.0f", b - a }') s) the benchmark process used $(field "$micro_cpu" 2)% of one core and everything else $(field "$micro_cpu" 3)%."
    echo "Context: $(grep -m1 '^Run on' "$tmp/micro.txt"); $(grep -m1 '^Load Average' "$tmp/micro.txt")."
  fi
  echo
  echo "### Commands"
  echo
  echo "\$PORT is a free port picked by the run, \$TMP its temporary directory."
  echo
  echo '```'
  echo "$hot_cmd"
  echo "$many_cmd"
  echo "$docs_cmd"
  printf '%s\n' "${commands[@]}"
  [[ -n "$micro_cmd" ]] && echo "$micro_cmd"
  echo '```'
  echo
  echo "Each row of (1) is preceded by the same wrk command with -d${warmup}s (warm-up, output discarded; PUTs with the id prefix aw/bw)."
  echo "Whole run: $(($(date +%s) - started)) s."
}

if [[ -n "$out" ]]; then
  report | tee "$out"
else
  report
fi
