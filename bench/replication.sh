#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Replicated shards on loopback: what three copies of every shard cost a write, and how
# long a shard takes no writes when its leader dies. Not a test: it prints markdown for
# docs/benchmarks.md.
#
# Builds nothing and installs nothing. It expects
#   - build/release/app/shoal (or --shoal PATH)
#   - wrk, taskset, curl, xxhsum (scripts/setup.sh --bench)
#
#   bench/replication.sh               everything (about 4 minutes)
#   bench/replication.sh -d 2 -r 1 -k 3  a quick smoke run
#
# Options:
#   -d, --duration S   seconds per measured wrk run (default 5)
#   -w, --warmup S     warm-up seconds before each measured wrk run, not recorded (default 1)
#   -c, --conns N      wrk connections (default 32)
#   -r, --runs N       rounds of (a): one cluster with one copy, one with three (default 3)
#   -k, --kills N      leader kills in (b) (default 20)
#   --shoal PATH       the shoal binary (default build/release/app/shoal)
#   -o, --out FILE     also write the report to FILE
#   --keep             keep the temporary directory (configs, node logs, raw wrk output)
#
# What one run does, on 127.0.0.1 with free ports in 20000-29999 and data in a fresh
# temporary directory; every node is `shoal serve --config $TMP/NAME/cluster.toml --set
# node.id=nK --set log.access_log=false` with a config written by this script: 64 shards,
# heartbeat_ms 250, failure_timeout_ms 2000 (the defaults), reconnect_max_ms 2000, and
# cluster.replication_factor 1 or 3.
#
# (a) Three nodes pinned to core SERVER_CPU (default 0), wrk -t1 -cN --latency pinned to
#     core WRK_CPU (default 1), always against n1, with bench/put_new.lua: every request
#     PUTs a new ~100-byte document, spread over all shards (so n1 forwards two thirds of
#     them with one copy, and with three copies forwards to each shard's leader). Rounds
#     alternate a fresh cluster with replication_factor 1 and one with 3; with 3, the run
#     starts once every shard has a leader. The report gives the median of each and
#     their ratio.
# (b) Three nodes, replication_factor 3, unpinned. N times: the leader L of the shard of
#     bench/probe is killed with SIGKILL; a poller PUTs bench/probe through another node
#     back to back (curl -m 2) until it is acknowledged (200). Failover time: from the
#     signal to that acknowledgement. Then L starts again from its data and the next
#     round waits until every node lists all three up and the shard has a leader.
#
# Every process is started by this script and stopped by its PID (SIGCONT, SIGTERM,
# SIGKILL after 30 s) from an EXIT trap.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_name=replication.sh
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
duration=5
warmup=1
conns=32
runs=3
kills=20
shoal="$root/build/release/app/shoal"
out=""
keep=0
server_cpu="${SERVER_CPU:-0}"
wrk_cpu="${WRK_CPU:-1}"

while (($#)); do
  case "$1" in
    -d|--duration) duration="$2"; shift 2 ;;
    -w|--warmup) warmup="$2"; shift 2 ;;
    -c|--conns) conns="$2"; shift 2 ;;
    -r|--runs) runs="$2"; shift 2 ;;
    -k|--kills) kills="$2"; shift 2 ;;
    --shoal) shoal="$2"; shift 2 ;;
    -o|--out) out="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "replication.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done
[[ "$shoal" == /* ]] || shoal="$PWD/$shoal"

require_tools wrk taskset curl xxhsum
require_cluster_machine "$shoal"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/shoal-replication-bench.XXXXXX")"
pids=()
# shellcheck source=bench/cluster_lib.sh
source "$root/bench/cluster_lib.sh"

# all_led K: node K's view names a leader for every one of the 64 shards
all_led() {
  local body
  body=$(curl -s -m 2 "$(url "$1" /v1/cluster)" 2>/dev/null) || return 1
  ! grep -q '"owners":{[^}]*null' <<<"$body" && grep -q '"owners":{' <<<"$body"
}

wait_led() { # wait_led: up to 30 s until n1 names a leader for every shard
  local i
  for ((i = 0; i < 300; i++)); do all_led 1 && return 0; sleep 0.1; done
  log "the shards of $cluster_name did not all get a leader within 30 s; logs in $tmp/$cluster_name"
  exit 1
}

started=$(date +%s)
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
head_commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
shoal_built=$(date -u -r "$shoal" +%Y-%m-%dT%H:%MZ)
commands=()
log "temporary directory $tmp"

# ---------------------------------------------------------------- (a) PUT, one copy vs three
a_rows=()
run_seq=0
for ((r = 1; r <= runs; r++)); do
  for rf in 1 3; do
    run_seq=$((run_seq + 1))
    log "(a) round $r, replication_factor $rf"
    start_cluster "put-rf$rf-$r" 3 "$server_cpu" 2000 "$rf"
    ((rf > 1)) && wait_led
    raw="$tmp/wrk-$(printf %02d "$run_seq").txt"
    u=$(url 1 /)
    ((warmup > 0)) && { taskset -c "$wrk_cpu" wrk -t1 -c"$conns" -d"${warmup}s" \
      -s "$root/bench/put_new.lua" "$u" -- "warm$run_seq" >/dev/null 2>&1 || true; }
    cmd=(taskset -c "$wrk_cpu" wrk -t1 -c"$conns" -d"${duration}s" --latency
         -s "$root/bench/put_new.lua" "$u" -- "run$run_seq")
    "${cmd[@]}" >"$raw" 2>&1 || { log "wrk failed: $(cat "$raw")"; exit 1; }
    a_rows+=("$rf|$(parse_wrk "$raw")")
    ((r == 1)) && {
      node_cmd 1 "$server_cpu"
      commands+=("$(printf '%s ' "${node_line[@]}" | sed "s|$tmp|\$TMP|g; s|$root/||g")  # (a) rf $rf, also n2, n3")
      commands+=("$(printf '%s ' "${cmd[@]}" | sed "s|127.0.0.1:[0-9]*|127.0.0.1:\$N1|; s|$root/||g")  # (a)")
    }
    stop_cluster
  done
done

# ---------------------------------------------------------------- (b) failover
log "(b) $kills leader kills, replication_factor 3, failure_timeout_ms 2000"
start_cluster failover 3 "" 2000 3
wait_led
probe_shard=$(shard_of probe)
probe_body='{"probe":true}'
b_rows=()
for ((i = 1; i <= kills; i++)); do
  leader=""
  for ((t = 0; t < 300; t++)); do
    leader=$(leader_of "$probe_shard" 1)
    [[ -n "$leader" ]] && break
    sleep 0.1
  done
  [[ -n "$leader" ]] || { log "shard $probe_shard has no leader before kill $i"; exit 1; }
  k=${leader#n}
  via=$((k % 3 + 1))
  code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
    --data "$probe_body" "$(url "$via" /v1/collections/bench/docs/probe)" || true)
  [[ "$code" == 200 || "$code" == 201 ]] || { log "the probe write before kill $i answered $code"; exit 1; }
  disown "${node_pids[k]}" 2>/dev/null || true
  t0=$(date +%s%N)
  kill -KILL "${node_pids[k]}"
  polls=0
  while :; do
    polls=$((polls + 1))
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
      --data "$probe_body" "$(url "$via" /v1/collections/bench/docs/probe)" || true)
    [[ "$code" == 200 ]] && break
    (($(date +%s%N) - t0 > 30000000000)) && { log "no write acknowledged 30 s after kill $i"; exit 1; }
  done
  t1=$(date +%s%N)
  b_rows+=("$(((t1 - t0) / 1000000))|$polls|$leader")
  log "(b) kill $i of $leader: writes acknowledged again after $(((t1 - t0) / 1000000)) ms"
  forget_pid "${node_pids[k]}"
  start_node "$k" ""
  for ((t = 0; t < 600; t++)); do formed && break; sleep 0.1; done
  formed || { log "the cluster did not form again after kill $i"; exit 1; }
done
node_cmd 1 ""
commands+=("$(printf '%s ' "${node_line[@]}" | sed "s|$tmp|\$TMP|g; s|$root/||g")  # (b), also n2, n3")
stop_cluster

# ---------------------------------------------------------------- report
percentile() { # percentile P VALUES...: nearest-rank
  local p="$1"
  shift
  printf '%s\n' "$@" | sort -g | awk -v p="$p" '{ a[NR] = $1 } END { i = int((p * NR + 99) / 100); if (i < 1) i = 1; print a[i] }'
}

report() {
  echo "## Replicated shards: one copy against three"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), HEAD \`$head_commit\`, shoal binary built $shoal_built, $(nproc) cores. Load average at start $load_at_start, at end $(cut -d' ' -f1-3 /proc/loadavg). Whole run: $(($(date +%s) - started)) s."
  echo
  echo "### (a) New-document PUTs through n1, three nodes"
  echo
  echo "Nodes on core $server_cpu, wrk -t1 -c$conns on core $wrk_cpu, $duration s per run after a $warmup s warm-up; a fresh cluster per run, in this order."
  echo
  echo "| run | replication_factor | req/s | p50 ms | p99 ms | errors |"
  echo "|---|---|---|---|---|---|"
  local i=0 row f r1=() p1=() r3=() p3=()
  for row in "${a_rows[@]}"; do
    i=$((i + 1))
    IFS='|' read -r -a f <<<"$row"
    echo "| $i | ${f[0]} | ${f[1]} | ${f[2]} | ${f[3]} | ${f[4]} |"
    if [[ ${f[0]} == 1 ]]; then r1+=("${f[1]}"); p1+=("${f[3]}"); else r3+=("${f[1]}"); p3+=("${f[3]}"); fi
  done
  local m1 m3 q1 q3
  m1=$(median "${r1[@]}"); m3=$(median "${r3[@]}"); q1=$(median "${p1[@]}"); q3=$(median "${p3[@]}")
  echo
  echo "| median of $runs | req/s | p99 ms |"
  echo "|---|---|---|"
  echo "| one copy | $m1 | $q1 |"
  echo "| three copies | $m3 | $q3 |"
  echo "| **three / one** | **$(ratio "$m3" "$m1")** | $(ratio "$q3" "$q1") |"
  echo
  echo "### (b) Failover: the leader of a shard killed, until a write to it is acknowledged"
  echo
  local ms=() row2
  for row2 in "${b_rows[@]}"; do IFS='|' read -r -a f <<<"$row2"; ms+=("${f[0]}"); done
  echo "replication_factor 3, failure_timeout_ms 2000 and heartbeat_ms 250 (the defaults), $kills kills of the shard's leader, the writes through another node back to back."
  echo
  echo "| kills | median ms | p90 ms | p99 ms | max ms | all, in order |"
  echo "|---|---|---|---|---|---|"
  echo "| $kills | $(median "${ms[@]}") | $(percentile 90 "${ms[@]}") | $(percentile 99 "${ms[@]}") | $(percentile 100 "${ms[@]}") | $(IFS=,; echo "${ms[*]}" | sed 's/,/, /g') |"
  echo
  echo "Commands (\$TMP is the temporary directory, \$N1 n1's HTTP port):"
  echo
  echo '```'
  printf '%s\n' "${commands[@]}"
  echo '```'
}

if [[ -n "$out" ]]; then report | tee "$out"; else report; fi
