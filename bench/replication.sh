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
#   bench/replication.sh               everything (about 5 minutes)
#   bench/replication.sh -d 2 -r 1 -k 3 -m 10  a quick smoke run
#
# Options:
#   -d, --duration S   seconds per measured wrk run (default 5)
#   -w, --warmup S     warm-up seconds before each measured wrk run, not recorded (default 1)
#   -c, --conns N      wrk connections (default 32)
#   -r, --runs N       rounds of (a): one cluster with one copy, one with three (default 3; 0 skips (a))
#   -k, --kills N      leader kills in (b) (default 20; 0 skips (b))
#   -m, --missed-mb N  megabytes the restarted member misses in (c) (default 100; 0 skips (c))
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
# (c) Snapshot catch-up. Three nodes, replication_factor 3, unpinned, with a snapshot
#     every 64 entries and 16 kept after it (--set cluster.snapshot_entries=64
#     cluster.snapshot_trailing=16, so that what a member misses is compacted away in
#     every shard: the case this measures). n3 is killed with SIGKILL; once n1 names
#     leaders on n1 and n2 for every shard, M megabytes of new 10 KiB documents are PUT
#     through n1 (wrk -t2 -c16, bench/put_new.lua with a count), and n3 starts again from
#     its data. Catch-up time: from n3's start until every shard's digest on n3 (GET
#     /v1/admin/replicas/{shard}: applied index, keys, checksum) equals n1's, polled.
#     n3's shoal_replication_snapshot_bytes_total{direction="installed"} gives the bytes
#     that came as streamed images; MB/s is those bytes over the catch-up time.
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
missed_mb=100
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
    -m|--missed-mb) missed_mb="$2"; shift 2 ;;
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
b_rows=()
if ((kills > 0)); then
  log "(b) $kills leader kills, replication_factor 3, failure_timeout_ms 2000"
  start_cluster failover 3 "" 2000 3
  wait_led
  probe_shard=$(shard_of probe)
  probe_body='{"probe":true}'
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
fi

# ---------------------------------------------------------------- (c) snapshot catch-up
c_row=""
if ((missed_mb > 0)); then
  log "(c) n3 misses $missed_mb MB, then catches up"
  extra_sets=(--set cluster.snapshot_entries=64 --set cluster.snapshot_trailing=16)
  start_cluster catchup 3 "" 2000 3
  wait_led
  disown "${node_pids[3]}" 2>/dev/null || true
  kill -KILL "${node_pids[3]}"
  forget_pid "${node_pids[3]}"
  for ((t = 0; t < 300; t++)); do
    body=$(curl -s -m 2 "$(url 1 /v1/cluster)" 2>/dev/null || true)
    owners=$(grep -o '"owners":{[^}]*}' <<<"$body" || true)
    [[ -n "$owners" && "$owners" != *null* && "$owners" != *'"n3"'* ]] && break
    sleep 0.1
  done
  doc_bytes=10240
  docs=$((missed_mb * 1048576 / doc_bytes))
  per_thread=$(((docs + 1) / 2))
  done_dir="$tmp/catchup/done"
  mkdir -p "$done_dir"
  cmd=(wrk -t2 -c16 -d600s -s "$root/bench/put_new.lua" "$(url 1 /)" -- missed "$doc_bytes"
       "$per_thread" "$done_dir")
  "${cmd[@]}" >"$tmp/catchup/wrk.txt" 2>&1 &
  wrk_pid=$!
  pids+=("$wrk_pid")
  w0=$(now_ms)
  until [[ -f "$done_dir/done-1" && -f "$done_dir/done-2" ]]; do
    alive "$wrk_pid" || { log "wrk stopped early: $(cat "$tmp/catchup/wrk.txt")"; exit 1; }
    sleep 0.2
  done
  write_ms=$(($(now_ms) - w0))
  kill -INT "$wrk_pid" 2>/dev/null || true
  wait "$wrk_pid" 2>/dev/null || true
  forget_pid "$wrk_pid"
  created=$(cat "$done_dir"/done-* | awk '{ c += $1; f += $2 } END { print c " " f }')
  commands+=("$(printf '%s ' "${cmd[@]}" | sed "s|127.0.0.1:[0-9]*|127.0.0.1:\$N1|; s|$tmp|\$TMP|g; s|$root/||g")  # (c)")
  sent_total() { # bytes n1 and n2 sent as images so far
    local k sum=0 v
    for k in 1 2; do
      v=$(curl -s -m 2 "$(url "$k" /metrics)" | awk '/^shoal_replication_snapshot_bytes_total\{direction="sent"\}/ { print $2 }')
      sum=$((sum + ${v:-0}))
    done
    echo "$sum"
  }
  sent_before=$(sent_total)
  t0=$(now_ms)
  start_node 3 ""
  node_cmd 3 ""
  commands+=("$(printf '%s ' "${node_line[@]}" | sed "s|$tmp|\$TMP|g; s|$root/||g")  # (c), also n1, n2 before")
  pending=()
  for ((s = 0; s < 64; s++)); do pending+=("$s"); done
  while ((${#pending[@]} > 0)); do
    left=()
    for s in "${pending[@]}"; do
      a=$(curl -s -m 2 "$(url 1 "/v1/admin/replicas/$s")" 2>/dev/null || true)
      b=$(curl -s -m 2 "$(url 3 "/v1/admin/replicas/$s")" 2>/dev/null || true)
      da=$(grep -o '"applied_index":[0-9]*,"keys":[0-9]*,"checksum":"[0-9a-f]*"' <<<"$a" || true)
      db=$(grep -o '"applied_index":[0-9]*,"keys":[0-9]*,"checksum":"[0-9a-f]*"' <<<"$b" || true)
      [[ -n "$da" && "$da" == "$db" ]] || left+=("$s")
    done
    pending=("${left[@]}")
    (($(now_ms) - t0 > 300000)) && { log "n3 did not catch up within 300 s"; exit 1; }
    ((${#pending[@]} > 0)) && sleep 0.1
  done
  catchup_ms=$(($(now_ms) - t0))
  installed=$(curl -s -m 2 "$(url 3 /metrics)" | awk '/^shoal_replication_snapshot_bytes_total\{direction="installed"\}/ { print $2 }')
  sent=$(($(sent_total) - sent_before))
  c_row="$missed_mb|$created|$write_ms|$catchup_ms|${installed:-0}|$sent"
  log "(c) caught up in $catchup_ms ms, ${installed:-0} bytes installed from images"
  stop_cluster
  extra_sets=()
fi

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
  if ((runs > 0)); then
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
  fi
  if ((kills > 0)); then
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
  fi
  if [[ -n "$c_row" ]]; then
    local c
    IFS='|' read -r -a c <<<"$c_row"
    read -r created failed <<<"${c[1]}"
    echo "### (c) Snapshot catch-up: a member that missed ${c[0]} MB"
    echo
    echo "replication_factor 3, a snapshot every 64 entries with 16 kept; n3 killed, then ${c[0]} MB of new 10 KiB documents PUT through n1 ($created created, $failed refused, in $((c[2] / 1000)).$(printf '%03d' $((c[2] % 1000))) s), then n3 started again."
    echo
    echo "| missed MB | catch-up s (start to every digest equal) | images sent MB | installed MB | installed MB/s |"
    echo "|---|---|---|---|---|"
    echo "| ${c[0]} | $(awk -v m="${c[3]}" 'BEGIN { printf "%.2f", m / 1000 }') | $(awk -v b="${c[5]}" 'BEGIN { printf "%.1f", b / 1048576 }') | $(awk -v b="${c[4]}" 'BEGIN { printf "%.1f", b / 1048576 }') | $(awk -v b="${c[4]}" -v m="${c[3]}" 'BEGIN { printf "%.1f", b / 1048576 / (m / 1000) }') |"
    echo
    echo "Installed bytes are the shards' keys and values: each document is there twice, as itself and in the change feed's event of its write. The catch-up time includes n3's start-up and its groups' first contact with their leaders."
    echo
  fi
  echo "Commands (\$TMP is the temporary directory, \$N1 n1's HTTP port):"
  echo
  echo '```'
  printf '%s\n' "${commands[@]}"
  echo '```'
}

if [[ -n "$out" ]]; then report | tee "$out"; else report; fi
