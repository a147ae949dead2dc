#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Cluster benchmark on loopback: the cost of forwarding a request to the shard's owner,
# how long a cluster takes to form, and how long a dead or silent node takes to notice.
# Not a test: it prints markdown for docs/benchmarks.md.
#
# Builds nothing and installs nothing. It expects
#   - build/release/app/shoal (or --shoal PATH)
#   - wrk, taskset, curl        (scripts/setup.sh --bench)
#   - xxhsum (package xxhash) is used when present to find the shard of a key; without it
#     the owner of a key is found from the nodes' shoal_shard_keys_estimate metric
#
#   bench/cluster.sh                 everything (about 2 minutes)
#   bench/cluster.sh -d 2 -r 1       a quick smoke run
#
# Options:
#   -d, --duration S   seconds per measured wrk run (default 5)
#   -w, --warmup S     warm-up seconds before each measured wrk run, not recorded (default 1)
#   -c, --conns N      wrk connections (default 32)
#   -r, --runs N       rounds of each measurement: (a) N local and N forwarded runs,
#                      alternating; (b) N cluster starts; (c) N failures of each kind (default 3)
#   --shoal PATH       the shoal binary (default build/release/app/shoal)
#   -o, --out FILE     also write the report to FILE
#   --keep             keep the temporary directory (configs, node logs, raw wrk output)
#   -q, --wait-quiet   first wait (at most 15 min) for 30 quiet seconds: no compiler running
#                      and under 20% of one core busy
#
# What one run does, on 127.0.0.1 with free ports picked in 20000-29999 (never the demo
# cluster's 8080-8083) and data in a fresh temporary directory. Every node is started as
#   shoal serve --config $TMP/NAME/cluster.toml --set node.id=nK --set log.access_log=false
# with a config written by this script: 64 shards, heartbeat_ms 250, reconnect_max_ms
# 2000, failure_timeout_ms 2000 unless said otherwise.
#
# (a) Three nodes, all pinned to core SERVER_CPU (default 0); wrk -t1 -cN --latency pinned
#     to core WRK_CPU (default 1), always against n1. One document owned by n1 (local) and
#     one owned by n2 (forwarded by n1 to n2 over CAF), the same ~90-byte JSON, PUT once.
#     Runs alternate local, forwarded, local, ... and the report gives the median of each.
#     CPU columns: user+system time of each node and of wrk during the run, in % of one
#     core; "CPU us/req": the three nodes' CPU time divided by the requests served.
# (b) Five nodes started at once (no pinning). Per node, one poller asks /v1/cluster
#     every 20 ms; formed = the moment the last node lists all five up. Also the moment
#     the slowest node first answered HTTP at all (process start + opening RocksDB).
# (c) Three nodes (no pinning); the victim is n3, observed through n1, with a document
#     owned by n3. Two kinds of failure, each N times:
#       SIGKILL n3: the kernel closes its sockets; then n3 is started again.
#       SIGSTOP n3: the process hangs with its sockets open; then SIGCONT.
#     Measured from the signal: the first 503 shard_unavailable for the document through
#     n1 (one poller sending GETs back to back with curl), and the first /v1/cluster of
#     n1 that shows n3 "down" (a second poller, every 20 ms); after the restart or the
#     SIGCONT, the time until n1 shows n3 up again and serves the document (200).
#     With failure_timeout_ms 2000 (the default) and 500.
#
# Every process is started by this script and stopped by its PID (SIGCONT, SIGTERM,
# SIGKILL after 30 s) from an EXIT trap.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_name=cluster.sh
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
duration=5
warmup=1
conns=32
runs=3
shoal="$root/build/release/app/shoal"
out=""
keep=0
wait_quiet=0
server_cpu="${SERVER_CPU:-0}"
wrk_cpu="${WRK_CPU:-1}"

while (($#)); do
  case "$1" in
    -d|--duration) duration="$2"; shift 2 ;;
    -w|--warmup) warmup="$2"; shift 2 ;;
    -c|--conns) conns="$2"; shift 2 ;;
    -r|--runs) runs="$2"; shift 2 ;;
    --shoal) shoal="$2"; shift 2 ;;
    -o|--out) out="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -q|--wait-quiet) wait_quiet=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "cluster.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done
[[ "$shoal" == /* ]] || shoal="$PWD/$shoal"

require_tools wrk taskset curl
require_cluster_machine "$shoal"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/shoal-cluster-bench.XXXXXX")"
pids=()

# shellcheck source=bench/cluster_lib.sh
source "$root/bench/cluster_lib.sh"

quiet_note=""
if ((wait_quiet)); then
  log "waiting for 30 quiet seconds: no cc1plus, < 20% of a core busy (at most 15 min)"
  busy() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
  quiet=0 waited=0 b_prev=$(busy)
  while ((quiet < 30 && waited < 900)); do
    sleep 1
    waited=$((waited + 1))
    b_now=$(busy)
    if pgrep -x cc1plus >/dev/null 2>&1 || ((5 * (b_now - b_prev) > $(getconf CLK_TCK))); then
      quiet=0
    else
      quiet=$((quiet + 1))
    fi
    b_prev=$b_now
  done
  if ((quiet >= 30)); then
    quiet_note="The run started after 30 quiet seconds (no compiler, under 20% of a core busy; waited $waited s)."
  else
    quiet_note="The run started after 15 min of waiting without 30 quiet seconds in a row."
  fi
  log "$quiet_note"
fi

commands=()
started=$(date +%s)
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
compilers_at_start=$(pgrep -c -x cc1plus || true)
head_commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | wc -l)
shoal_built=$(date -u -r "$shoal" +%Y-%m-%dT%H:%MZ)
log "temporary directory $tmp; $duration s per wrk run, $warmup s warm-up, $runs rounds"

# ---------------------------------------------------------------- (a) local vs forwarded
log "(a) three nodes on core $server_cpu, wrk on core $wrk_cpu"
start_cluster get 3 "$server_cpu" 2000
node_cmd 1 "$server_cpu"
commands+=("$(printf '%s ' "${node_line[@]}" | sed "s|$tmp|\$TMP|g; s|$root/||g")  # (a), also n2, n3")
local_key=$(find_key n1)
fwd_key=$(find_key n2)
put_doc 1 "$local_key"
put_doc 1 "$fwd_key"
for key in "$local_key" "$fwd_key"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$(url 1 "/v1/collections/bench/docs/$key")")
  [[ "$code" == 200 ]] || { log "GET bench/$key through n1 answered $code"; exit 1; }
done
log "local key bench/$local_key (owner n1), forwarded key bench/$fwd_key (owner n2)"

a_rows=()
run_seq=0
get_run() { # get_run KIND KEY
  local kind="$1" key="$2" u raw k
  u=$(url 1 "/v1/collections/bench/docs/$key")
  run_seq=$((run_seq + 1))
  raw="$tmp/wrk-$(printf %02d "$run_seq").txt"
  log "(a) $kind GET, run $run_seq"
  ((warmup > 0)) && { taskset -c "$wrk_cpu" wrk -t1 -c"$conns" -d"${warmup}s" "$u" >/dev/null 2>&1 || true; }
  local cmd=(taskset -c "$wrk_cpu" wrk -t1 -c"$conns" -d"${duration}s" --latency "$u")
  local c0=() c1=() w0 w1 t0 t1
  for k in 1 2 3; do c0[k]=$(cpu_ticks "${node_pids[k]}"); done
  times >"$tmp/times"; w0=$(children_cpu); t0=$(date +%s.%N)
  "${cmd[@]}" >"$raw" 2>&1 || { log "wrk failed: $(cat "$raw")"; exit 1; }
  t1=$(date +%s.%N); times >"$tmp/times"; w1=$(children_cpu)
  for k in 1 2 3; do c1[k]=$(cpu_ticks "${node_pids[k]}"); done
  local parsed
  parsed=$(parse_wrk_counted "$raw")
  a_rows+=("$kind|$parsed|$(awk -v hz="$clk_tck" -v t0="$t0" -v t1="$t1" -v w0="$w0" -v w1="$w1" \
    -v a0="${c0[1]}" -v a1="${c1[1]}" -v b0="${c0[2]}" -v b1="${c1[2]}" -v d0="${c0[3]}" -v d1="${c1[3]}" \
    -v reqs="$(cut -d'|' -f5 <<<"$parsed")" 'BEGIN {
      d = t1 - t0; n = (a1 - a0 + b1 - b0 + d1 - d0) / hz
      printf "%.0f|%.0f|%.0f|%.0f|%.1f", 100 * (a1 - a0) / hz / d, 100 * (b1 - b0) / hz / d,
             100 * (d1 - d0) / hz / d, 100 * (w1 - w0) / d, (reqs > 0 ? 1e6 * n / reqs : 0) }')")
  commands+=("$(printf '%s ' "${cmd[@]}" | sed 's|127.0.0.1:[0-9]*|127.0.0.1:$N1|')  # (a) $kind")
}
for ((r = 1; r <= runs; r++)); do
  get_run local "$local_key"
  get_run forwarded "$fwd_key"
done
stop_cluster

# ---------------------------------------------------------------- (b) five nodes forming
# form_once NAME LABEL: starts the five nodes of NAME at once and appends a row of b_rows
form_once() {
  local name="$1" label="$2" t0 k p pollers=()
  rm -f "$tmp/$name"/formed-n*
  t0=$(now_ms)
  for ((k = 1; k <= 5; k++)); do start_node "$k" ""; done
  for ((k = 1; k <= 5; k++)); do
    (
      first=""
      for ((i = 0; i < 1500; i++)); do # at most ~30 s
        body=$(curl -s -m 1 "$(url "$k" /v1/cluster)" 2>/dev/null || true)
        [[ -z "$first" && -n "$body" ]] && first=$(now_ms)
        if (($(grep -o '"state":"up"' <<<"$body" | wc -l) == 5)); then
          echo "$first $(now_ms)" >"$tmp/$name/formed-n$k"
          exit 0
        fi
        sleep 0.02
      done
    ) &
    pollers+=("$!")
    pids+=("$!")
  done
  for p in "${pollers[@]}"; do wait "$p" 2>/dev/null || true; forget_pid "$p"; done
  if (($(find "$tmp/$name" -name "formed-n*" | wc -l) < 5)); then
    log "five nodes did not form within 30 s; logs in $tmp/$name"
    exit 1
  fi
  b_rows+=("$label|$(cat "$tmp/$name"/formed-n* | awk -v t0="$t0" '
    { if ($1 - t0 > h) h = $1 - t0; if ($2 - t0 > u) u = $2 - t0; if (NR == 1 || $2 - t0 < f) f = $2 - t0 }
    END { print h "|" f "|" u }')")
}

b_rows=()
for ((r = 1; r <= runs; r++)); do
  log "(b) five nodes forming, run $r: fresh data directories, then the same again"
  cluster_name=form-$r
  cluster_size=5
  rm -rf "${tmp:?}/${cluster_name:?}"
  write_config "$cluster_name" 5 2000
  form_once "$cluster_name" fresh
  stop_cluster
  form_once "$cluster_name" existing
  stop_cluster
done
node_cmd 1 ""
commands+=("$(printf '%s ' "${node_line[@]}" | sed "s|$tmp|\$TMP|g; s|$root/||g")  # (b) and n2..n5, all at once; (c) the same with 3 nodes")

# ---------------------------------------------------------------- (c) failure detection
# poll_503 URL OUT: GETs back to back until a 503 shard_unavailable; writes "ms polls"
poll_503() {
  local i body
  for ((i = 1; i <= 20000; i++)); do
    body=$(curl -s -m 10 -w ' %{http_code}' "$1" 2>/dev/null || true)
    if [[ "$body" == *shard_unavailable*' 503' ]]; then echo "$(now_ms) $i" >"$2"; return 0; fi
    (($(now_ms) - poll_t0 > 30000)) && return 1
  done
}
# poll_state URL NODE STATE OUT: /v1/cluster every 20 ms until NODE has STATE; writes "ms"
poll_state() {
  local i
  for ((i = 0; i < 1500; i++)); do
    if curl -s -m 2 "$1" 2>/dev/null | grep -q "\"id\":\"$2\",\"state\":\"$3\""; then
      now_ms >"$4"
      return 0
    fi
    sleep 0.02
  done
  return 1
}
# poll_back URL NODE OUT: until n1 shows NODE up and serves the document (200); writes "ms"
poll_back() {
  local i
  for ((i = 0; i < 1500; i++)); do
    if curl -s -m 2 "$(url 1 /v1/cluster)" 2>/dev/null | grep -q "\"id\":\"$2\",\"state\":\"up\"" \
       && [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null)" == 200 ]]; then
      now_ms >"$3"
      return 0
    fi
    sleep 0.02
  done
  return 1
}

c_rows=()
for ft in 2000 500; do
  log "(c) failure_timeout_ms=$ft"
  start_cluster "fail-$ft" 3 "" "$ft"
  victim_key=$(find_key n3)
  put_doc 1 "$victim_key"
  doc_url=$(url 1 "/v1/collections/bench/docs/$victim_key")
  for kind in SIGKILL SIGSTOP; do
    for ((r = 1; r <= runs; r++)); do
      dir="$tmp/fail-$ft/$kind-$r"
      mkdir -p "$dir"
      [[ "$(curl -s -o /dev/null -w '%{http_code}' "$doc_url")" == 200 ]] \
        || { log "bench/$victim_key is not served through n1 before $kind"; exit 1; }
      poll_t0=$(now_ms)
      # Out of the job table first, or bash reports "Killed" for it on stderr; its zombie
      # is reaped when this script exits.
      [[ $kind == SIGKILL ]] && disown "${node_pids[3]}" 2>/dev/null
      kill -"${kind#SIG}" "${node_pids[3]}"
      poll_503 "$doc_url" "$dir/first503" & p1=$!
      poll_state "$(url 1 /v1/cluster)" n3 down "$dir/down" & p2=$!
      pids+=("$p1" "$p2")
      wait "$p1" || true; wait "$p2" || true
      forget_pid "$p1"; forget_pid "$p2"
      [[ -f "$dir/first503" && -f "$dir/down" ]] || { log "$kind of n3 was not noticed within 30 s"; exit 1; }
      # Bring n3 back: a new process after SIGKILL, SIGCONT after SIGSTOP.
      back_t0=$(now_ms)
      if [[ $kind == SIGKILL ]]; then
        forget_pid "${node_pids[3]}"
        start_node 3 ""
      else
        kill -CONT "${node_pids[3]}"
      fi
      poll_back "$doc_url" n3 "$dir/back" || { log "n3 did not come back within 30 s after $kind"; exit 1; }
      read -r t503 polls <"$dir/first503"
      c_rows+=("$ft|$kind|$r|$((t503 - poll_t0))|$polls|$(($(cat "$dir/down") - poll_t0))|$(($(cat "$dir/back") - back_t0))")
      # Let every node see the cluster whole again before the next round.
      for ((i = 0; i < 300; i++)); do formed && break; sleep 0.1; done
    done
  done
  stop_cluster
done

# ---------------------------------------------------------------- report
report() {
  echo "## Cluster results"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), HEAD \`$head_commit\`$( ((dirty)) && echo " with $dirty modified tracked file(s) in the working tree"), shoal binary built $shoal_built, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))."
  [[ -n "$quiet_note" ]] && echo "$quiet_note"
  echo "Load average at start $load_at_start ($compilers_at_start compiler processes), at end $(cut -d' ' -f1-3 /proc/loadavg) ($(pgrep -c -x cc1plus || true)). Whole run: $(($(date +%s) - started)) s."
  echo
  echo "### (a) GET of one document through n1: owned by n1 (local) or by n2 (forwarded)"
  echo
  echo "Three nodes on core $server_cpu, wrk -t1 -c$conns on core $wrk_cpu, $duration s per run after a $warmup s warm-up, in this order."
  echo
  echo "| run | owner | req/s | p50 ms | p99 ms | errors | n1 CPU | n2 CPU | n3 CPU | wrk CPU | CPU us/req |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  local i=0 row f lr=() lp=() fr=() fp=() lc=() fc=() l1=() f1=() f2=()
  for row in "${a_rows[@]}"; do
    i=$((i + 1))
    IFS='|' read -r -a f <<<"$row"
    echo "| $i | ${f[0]} ($([[ ${f[0]} == local ]] && echo n1 || echo n2)) | ${f[1]} | ${f[2]} | ${f[3]} | ${f[4]} | ${f[6]}% | ${f[7]}% | ${f[8]}% | ${f[9]}% | ${f[10]} |"
    if [[ ${f[0]} == local ]]; then
      lr+=("${f[1]}"); lp+=("${f[3]}"); lc+=("${f[10]}")
      l1+=("$(awk -v c="${f[6]}" -v r="${f[1]}" 'BEGIN { printf "%.1f", (r > 0 ? 1e4 * c / r : 0) }')")
    else
      fr+=("${f[1]}"); fp+=("${f[3]}"); fc+=("${f[10]}")
      f1+=("$(awk -v c="${f[6]}" -v r="${f[1]}" 'BEGIN { printf "%.1f", (r > 0 ? 1e4 * c / r : 0) }')")
      f2+=("$(awk -v c="${f[7]}" -v r="${f[1]}" 'BEGIN { printf "%.1f", (r > 0 ? 1e4 * c / r : 0) }')")
    fi
  done
  local mlr mfr mlp mfp
  mlr=$(median "${lr[@]}"); mfr=$(median "${fr[@]}"); mlp=$(median "${lp[@]}"); mfp=$(median "${fp[@]}")
  echo
  echo "| median of $runs | req/s | p99 ms | CPU us/req, all nodes | CPU us/req, n1 | CPU us/req, n2 |"
  echo "|---|---|---|---|---|---|"
  echo "| local | $mlr | $mlp | $(median "${lc[@]}") | $(median "${l1[@]}") | - |"
  echo "| forwarded | $mfr | $mfp | $(median "${fc[@]}") | $(median "${f1[@]}") | $(median "${f2[@]}") |"
  echo "| **forwarded / local** | **$(ratio "$mfr" "$mlr")** | $(ratio "$mfp" "$mlp") | $(ratio "$(median "${fc[@]}")" "$(median "${lc[@]}")") | | |"
  echo
  echo "Per-node CPU per request is the node's CPU % × 10,000 / req/s. Documents: bench/$local_key (shard owner n1) and bench/$fwd_key (owner n2)."
  echo
  echo "### (b) Five nodes started at once"
  echo
  echo "| data directories | slowest node's first HTTP answer ms | first node to list all 5 up ms | **last node to list all 5 up ms** |"
  echo "|---|---|---|---|"
  local kind2 fh=() fn=() au=()
  for kind2 in fresh existing; do
    fh=(); fn=(); au=()
    for row in "${b_rows[@]}"; do
      IFS='|' read -r -a f <<<"$row"
      [[ "${f[0]}" == "$kind2" ]] || continue
      fh+=("${f[1]}"); fn+=("${f[2]}"); au+=("${f[3]}")
    done
    echo "| $kind2, median of $runs ($(range "${au[@]}") for the last) | $(median "${fh[@]}") | $(median "${fn[@]}") | **$(median "${au[@]}")** |"
  done
  echo
  echo "Times from starting the first of the five processes; each node polled every 20 ms (plus one curl). \"fresh\": new data directories (RocksDB creates the 64 column families); \"existing\": the same five started again after a clean stop."
  echo
  echo "### (c) A node fails: n3 killed or stopped, seen through n1"
  echo
  echo "heartbeat_ms 250. Times in ms from the signal, median of $runs (min–max)."
  echo
  echo "| failure_timeout_ms | failure | first 503 shard_unavailable | GETs sent until then | n1 shows n3 down | n3 back (restart / SIGCONT) until n1 shows it up and serves the document |"
  echo "|---|---|---|---|---|---|"
  local ft kind a=() b=() c=() d=()
  for ft in 2000 500; do
    for kind in SIGKILL SIGSTOP; do
      a=(); b=(); c=(); d=()
      for row in "${c_rows[@]}"; do
        IFS='|' read -r -a f <<<"$row"
        [[ "${f[0]}" == "$ft" && "${f[1]}" == "$kind" ]] || continue
        a+=("${f[3]}"); b+=("${f[4]}"); c+=("${f[5]}"); d+=("${f[6]}")
      done
      echo "| $ft | $kind | **$(median "${a[@]}")** ($(range "${a[@]}")) | $(median "${b[@]}") | **$(median "${c[@]}")** ($(range "${c[@]}")) | $(median "${d[@]}") ($(range "${d[@]}")) |"
    done
  done
  echo
  echo "### Commands"
  echo
  echo "\$TMP is the run's temporary directory, \$N1 n1's HTTP port (free ports picked by the run)."
  echo
  echo '```'
  printf '%s\n' "${commands[@]}"
  echo '```'
}

if [[ -n "$out" ]]; then
  report | tee "$out"
else
  report
fi
