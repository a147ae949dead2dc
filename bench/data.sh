#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Caching, index, query and change-feed benchmarks (issue 6; docs/benchmarks.md), side by
# side in one run. Not a test: it prints a markdown report.
#
#   1. hot GET: a node with the document read cache (the default) next to a node without
#      it (storage.doc_cache_bytes=0) and nginx answering a fixed 200 of the same size;
#      each GET reads a random document of the same hot set
#   2. TTL cache: PUT ?ttl=300 of random keys, and GET of existing ones, next to document
#      PUT and GET of the same key space and body size
#   3. an equality query matching 10 of --docs documents, from an index, next to the same
#      query on an unindexed copy of the field with "allow_scan": true (a full scan)
#   4. the index build rate on those documents (documents/s)
#   5. the change feed: --subscribers streams of one collection while wrk writes to it;
#      writes/s, events/s delivered, and whether every subscriber got every event
#
# Builds nothing and installs nothing. It expects
#   - build/release/app/shoal                (ninja -C build/release shoal)
#   - wrk, nginx, taskset, curl, mkfifo       (scripts/setup.sh --bench)
#
#   bench/data.sh                             everything (about 8 minutes)
#   bench/data.sh -d 1 -w 0 -r 1 --docs 2000  a quick smoke run
#
# Options:
#   -d, --duration S    seconds per measured wrk run, and of the change-feed writes (default 10)
#   -w, --warmup S      seconds of warm-up before each measured run (default 1)
#   -r, --rounds N      rounds of sections 1-3, alternating within a round (default 3); the
#                       report shows each and the median ratios
#   --docs N            documents of section 3 and 4, a multiple of 10 (default 1000000)
#   -c, --connections N wrk connections (default 32)
#   --scan-connections N  wrk connections of the full-scan query (default 1)
#   --hot N             hot documents of section 1 (default 1000)
#   --keys N            key space of section 2 (default 100000)
#   --subscribers N     change-feed subscribers (default 10)
#   --shoal PATH        the shoal binary (default build/release/app/shoal)
#   -o, --out FILE      also write the report to FILE
#   --keep              keep the temporary directory (raw wrk output, logs, data)
#
# Placement: shoal and nginx are pinned to core SERVER_CPU (default 0); wrk (one thread)
# and the index-build polls to WRK_CPU (default 1), the change-feed subscribers (curl and
# awk) to SUB_CPU (default WRK_CPU); all on 127.0.0.1, with --set log.access_log=false.
# Section 2's PUTs give their keys a 300 s lifetime: with -d over a minute, keys may expire
# before a later round's GETs, which then count 404s as errors.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_name=data.sh
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

command_line="bench/data.sh${*:+ $*}"
[[ -n "${SUB_CPU:-}" ]] && command_line="SUB_CPU=$SUB_CPU $command_line"
[[ -n "${WRK_CPU:-}" ]] && command_line="WRK_CPU=$WRK_CPU $command_line"
[[ -n "${SERVER_CPU:-}" ]] && command_line="SERVER_CPU=$SERVER_CPU $command_line"
duration=10
warmup=1
rounds=3
docs=1000000
conns=32
scan_conns=1
hot=1000
keys=100000
subscribers=10
shoal="$root/build/release/app/shoal"
out=""
server_cpu="${SERVER_CPU:-0}"
wrk_cpu="${WRK_CPU:-1}"
sub_cpu="${SUB_CPU:-$wrk_cpu}"

while (($#)); do
  case "$1" in
    -d|--duration) duration="$2"; shift 2 ;;
    -w|--warmup) warmup="$2"; shift 2 ;;
    -r|--rounds) rounds="$2"; shift 2 ;;
    --docs) docs="$2"; shift 2 ;;
    -c|--connections) conns="$2"; shift 2 ;;
    --scan-connections) scan_conns="$2"; shift 2 ;;
    --hot) hot="$2"; shift 2 ;;
    --keys) keys="$2"; shift 2 ;;
    --subscribers) subscribers="$2"; shift 2 ;;
    --shoal) shoal="$2"; shift 2 ;;
    -o|--out) out="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "data.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done

for n in duration warmup rounds docs conns scan_conns hot keys subscribers; do
  [[ "${!n}" =~ ^[0-9]+$ ]] || { log "$n must be a whole number, not '${!n}'"; exit 2; }
done
((duration >= 1 && rounds >= 1 && conns >= 1 && scan_conns >= 1 && hot >= 1 && keys >= 1)) ||
  { log "-d, -r, -c, --scan-connections, --hot and --keys must be at least 1"; exit 2; }
((docs >= 10 && docs % 10 == 0)) || { log "--docs must be a multiple of 10, at least 10"; exit 2; }
for tool in wrk nginx taskset curl mkfifo; do
  command -v "$tool" >/dev/null 2>&1 || { log "missing $tool: install it with scripts/setup.sh --bench"; exit 1; }
done
[[ -x "$shoal" ]] || { log "no shoal binary at $shoal: ninja -C build/release shoal"; exit 1; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/shoal-data-bench.XXXXXX")"
mkdir -p "$tmp/wrk"
started=$(date +%s)
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
compilers_at_start=$(pgrep -c cc1plus || true)
log "temporary directory $tmp; shoal and nginx on core $server_cpu, wrk on core $wrk_cpu"

# ------------------------------------------------------------------ helpers
errors=()        # "what: errors" of every measured run that had any
declare -A shown # label -> the wrk command of its first measured run, as the report shows it
shown_order=()

# show CMD...: the command as the report prints it (repository paths relative, ports and
# the temporary directory as variables)
show() {
  printf '%s ' "$@" | sed "s|$tmp|\$TMP|g; s|$root/||g; s|127.0.0.1:[0-9]*|127.0.0.1:\$PORT|g; s/ $//"
}

# measure LABEL CONNS TIMEOUT URL SCRIPT ARGS...: wrk -t1 -cCONNS, $warmup s of warm-up,
# then $duration s measured; sets `m` to "req/s|p50 ms|p99 ms|errors". When `drain` names
# a command, it runs after each wrk run, to wait for the requests wrk left behind.
m=""
drain=""
measure() {
  local label="$1" c="$2" timeout="$3" url="$4" script="$5"
  shift 5
  local raw
  raw="$tmp/wrk/$label-$(date +%s%N).txt"
  log "$label: wrk -c$c for $duration s"
  if ((warmup > 0)); then
    taskset -c "$wrk_cpu" wrk -t1 -c"$c" -d"${warmup}s" --timeout "$timeout" -s "$root/$script" \
      "$url" -- "$@" >/dev/null 2>&1 || true
    if [[ -n "$drain" ]]; then "$drain"; fi
  fi
  local cmd=(taskset -c "$wrk_cpu" wrk -t1 -c"$c" -d"${duration}s" --timeout "$timeout" --latency
             -s "$root/$script" "$url" -- "$@")
  "${cmd[@]}" >"$raw" 2>&1 || { log "wrk failed: $(cat "$raw")"; exit 1; }
  if [[ -n "$drain" ]]; then "$drain"; fi
  m=$(parse_wrk "$raw")
  local err="${m##*|}"
  [[ "$err" == 0 ]] || errors+=("$label: $err")
  if [[ -z "${shown[$label]:-}" ]]; then
    shown[$label]="$(show "${cmd[@]}")   # $label"
    shown_order+=("$label")
  fi
}

rps() { echo "${1%%|*}"; }                           # rps "req/s|p50|p99|errors"
p99() { local a; IFS='|' read -r _ _ a _ <<<"$1"; echo "$a"; }

median() { # median V...: the middle value (the lower one of an even count); "-" skipped
  printf '%s\n' "$@" | grep -v '^-$' | sort -g | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : "-") }'
}

since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }'; }
per_s() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }'; }

core_ticks() { # core_ticks CPU: "busy total" clock ticks of core CPU so far; "" unless CPU is one core
  [[ "$1" =~ ^[0-9]+$ ]] || return 0
  awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}
busy() { # busy "B0 T0" "B1 T1": the busy share of a core between two core_ticks, e.g. 97%
  awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ")
    if (a == "" || b == "" || y[2] == x[2]) print "-"; else printf "%.0f%%", 100 * (y[1] - x[1]) / (y[2] - x[2]) }'
}

metric() { # metric URL NAME: the value of an unlabelled metric of GET URLmetrics
  curl -fsS "${1}metrics" | awk -v n="$2" '$1 == n { v = $2 } END { printf "%.0f", v }'
}

# start_pass NAME URL ARGS...: wrk -t1 -c$conns with bench/data_load.lua in the background,
# its done file in $tmp/NAME (see bench/data_load.lua for ARGS). Sets pass_pid, pass_dir,
# pass_t0 and pass_cmd.
start_pass() {
  local name="$1" url="$2"
  shift 2
  pass_dir="$tmp/$name"
  mkdir -p "$pass_dir"
  rm -f "$pass_dir"/done-* "$pass_dir/stop"
  local cmd=(taskset -c "$wrk_cpu" wrk -t1 -c"$conns" -d3600s -s "$root/bench/data_load.lua" "$url"
             -- "done=$pass_dir" "$@")
  pass_cmd=$(show "${cmd[@]}")
  pass_t0=$(date +%s.%N)
  "${cmd[@]}" >"$pass_dir/wrk.txt" 2>&1 &
  pass_pid=$!
  pids+=("$pass_pid")
}

# finish_pass: waits for the pass's done file, stops wrk; sets pass_ok (2xx answers),
# pass_failed (other answers) and pass_s (seconds from its start to the done file).
finish_pass() {
  while [[ ! -s "$pass_dir/done-1" ]] && alive "$pass_pid"; do sleep 0.02; done
  pass_s=$(since "$pass_t0")
  if alive "$pass_pid"; then kill -INT "$pass_pid" 2>/dev/null || true; fi
  wait "$pass_pid" 2>/dev/null || true
  forget_pid "$pass_pid"
  [[ -s "$pass_dir/done-1" ]] || { log "wrk (bench/data_load.lua) ended early: $(cat "$pass_dir/wrk.txt")"; exit 1; }
  read -r pass_ok pass_failed <"$pass_dir/done-1"
}

# one_pass NAME URL ARGS...: start_pass and finish_pass; fails unless every request got a 2xx.
one_pass() {
  start_pass "$@"
  finish_pass
  ((pass_failed == 0)) || { log "$1: $pass_failed requests failed (see $pass_dir)"; exit 1; }
}

# ------------------------------------------------------------------ 1. hot GET
# A hot document as bench/data_load.lua writes it (body=pad, 100 bytes), which is also
# what shoal answers for it (stored normalized); nginx answers the same bytes.
hot_body=$(awk 'BEGIN { h = "{\"n\":0,\"pad\":\""; p = ""; for (i = length(h) + 2; i < 100; i++) p = p "x"; printf "%s%s\"}", h, p }')


start_nginx "$hot_body" application/json
start_shoal cached "$server_cpu"
cached_pid=$shoal_pid cached_url=$shoal_url
start_shoal uncached "$server_cpu" --set storage.doc_cache_bytes=0
uncached_pid=$shoal_pid uncached_url=$shoal_url
hot_path=/v1/collections/hot/docs/h
for node in cached uncached; do
  url_var="${node}_url"
  log "loading $hot hot documents into the $node node, then reading each once"
  one_pass "load-hot-$node" "${!url_var}" "path=$hot_path" "count=$hot"
  one_pass "warm-hot-$node" "${!url_var}" "path=$hot_path" "count=$hot" method=GET
done
[[ "$(curl -fsS "${cached_url}v1/collections/hot/docs/h0")" == "$hot_body" ]] ||
  { log "h0 is not the body nginx answers: $(curl -sS "${cached_url}v1/collections/hot/docs/h0")"; exit 1; }
hits0=$(metric "$cached_url" shoal_doc_cache_hits_total)
miss0=$(metric "$cached_url" shoal_doc_cache_misses_total)
uhits0=$(metric "$uncached_url" shoal_doc_cache_hits_total)
umiss0=$(metric "$uncached_url" shoal_doc_cache_misses_total)

get_ng=() get_ca=() get_un=()
for ((r = 1; r <= rounds; r++)); do
  log "section 1, round $r/$rounds: nginx, cached, uncached"
  measure "nginx-get" "$conns" 2s "$nginx_url" bench/data_random.lua "path=$hot_path" "count=$hot"
  get_ng+=("$m")
  measure "cached-get" "$conns" 2s "$cached_url" bench/data_random.lua "path=$hot_path" "count=$hot"
  get_ca+=("$m")
  measure "uncached-get" "$conns" 2s "$uncached_url" bench/data_random.lua "path=$hot_path" "count=$hot"
  get_un+=("$m")
done
hits=$(($(metric "$cached_url" shoal_doc_cache_hits_total) - hits0))
miss=$(($(metric "$cached_url" shoal_doc_cache_misses_total) - miss0))
uhits=$(($(metric "$uncached_url" shoal_doc_cache_hits_total) - uhits0))
umiss=$(($(metric "$uncached_url" shoal_doc_cache_misses_total) - umiss0))
cached_cmd=$(cat "$tmp/cached/command")
uncached_cmd=$(cat "$tmp/uncached/command")
stop_pids "$uncached_pid" "$nginx_pid"

# ------------------------------------------------------------------ 2. TTL cache
# On the cached node (defaults): first every key of both spaces exists, then rounds.
log "filling $keys cache keys and $keys documents"
one_pass fill-cache "$cached_url" path=/v1/cache/c "count=$keys" 'query=?ttl=3600'
fill_cache_cmd=$pass_cmd
one_pass fill-kv "$cached_url" path=/v1/collections/kv/docs/k "count=$keys"
evict0=$(metric "$cached_url" shoal_cache_evictions_total)
cput=() dput=() cget=() dget=()
for ((r = 1; r <= rounds; r++)); do
  log "section 2, round $r/$rounds: cache PUT, document PUT, cache GET, document GET"
  measure "cache-put" "$conns" 2s "$cached_url" bench/data_random.lua method=PUT path=/v1/cache/c \
    "count=$keys" 'query=?ttl=300'
  cput+=("$m")
  measure "doc-put" "$conns" 2s "$cached_url" bench/data_random.lua method=PUT \
    path=/v1/collections/kv/docs/k "count=$keys"
  dput+=("$m")
  measure "cache-get" "$conns" 2s "$cached_url" bench/data_random.lua path=/v1/cache/c "count=$keys"
  cget+=("$m")
  measure "doc-get" "$conns" 2s "$cached_url" bench/data_random.lua path=/v1/collections/kv/docs/k \
    "count=$keys"
  dget+=("$m")
done
evictions=$(($(metric "$cached_url" shoal_cache_evictions_total) - evict0))
cache_entries=$(metric "$cached_url" shoal_cache_entries)
stop_pid "$cached_pid"

# ------------------------------------------------------------------ 3 and 4. index and query
# {"k": i % M, "k_copy": i % M} with M = docs / 10: k == X and k_copy == X match 10 each.
values=$((docs / 10))
start_shoal query "$server_cpu" --set http.request_timeout_ms=300000
query_pid=$shoal_pid query_url=$shoal_url
query_cmd=$(cat "$tmp/query/command")
log "loading $docs documents {\"k\", \"k_copy\", \"pad\"}"
one_pass load-docs "$query_url" path=/v1/collections/docs/docs/d "count=$docs" body=kv "mod=$values"
load_cmd=$pass_cmd
load_s=$pass_s
load_rate=$(per_s "$docs" "$load_s")

log "building the index on k over $docs documents"
built0=$(metric "$query_url" shoal_index_build_documents_total)
index_url="${query_url}v1/collections/docs/indexes/k"
t0=$(date +%s.%N)
code=$(curl -sS -o "$tmp/index-put.json" -w '%{http_code}' -X PUT "$index_url")
[[ "$code" == 201 ]] || { log "PUT $index_url answered $code: $(cat "$tmp/index-put.json")"; exit 1; }
for ((i = 0; ; i++)); do
  progress=$(taskset -c "$wrk_cpu" curl -fsS "$index_url")
  [[ "$progress" == *'"state":"ready"'* ]] && break
  ((i < 72000)) || { log "the index was not ready within an hour: $progress"; exit 1; }
  alive "$query_pid" || { log "shoal exited while building the index"; exit 1; }
  sleep 0.05
done
build_s=$(since "$t0")
build_rate=$(per_s "$docs" "$build_s")
built=$(($(metric "$query_url" shoal_index_build_documents_total) - built0))
index_indexed=$(grep -o '"indexed":[0-9]*' <<<"$progress" | cut -d: -f2)
index_total=$(grep -o '"total":[0-9]*' <<<"$progress" | cut -d: -f2)

query_post() { # query_post BODY [?explain=true]
  curl -fsS -X POST -H 'Content-Type: application/json' --data "$1" "${query_url}v1/collections/docs/query${2:-}"
}
plan_k=$(query_post '{"where":{"k":0},"limit":10}' '?explain=true')
plan_scan=$(query_post '{"where":{"k_copy":0},"limit":10,"allow_scan":true}' '?explain=true')
[[ "$plan_k" == *'"scan":"index"'* ]] || { log "the k query does not use the index: $plan_k"; exit 1; }
[[ "$plan_scan" == *'"scan":"full"'* ]] || { log "the k_copy query is not a full scan: $plan_scan"; exit 1; }
for x in 0 $((values / 2)) $((values - 1)); do
  a=$(query_post "{\"where\":{\"k\":$x},\"limit\":10}" | grep -o '"id":"d[0-9]*"' | sort | tr '\n' ' ')
  b=$(query_post "{\"where\":{\"k_copy\":$x},\"limit\":10,\"allow_scan\":true}" |
      grep -o '"id":"d[0-9]*"' | sort | tr '\n' ' ')
  n=$(wc -w <<<"$a")
  [[ "$n" == 10 && "$a" == "$b" ]] || { log "k == $x: the index answered [$a], the scan [$b]"; exit 1; }
done

# wrk stops with a scan still running in the shards; a query sent after it is answered
# only once every shard is done with it (a shard's mailbox is in order).
drain_scan() { query_post '{"where":{"k":0},"limit":10}' >/dev/null; }
qidx=() qidx_low=() qscan=()
for ((r = 1; r <= rounds; r++)); do
  log "section 3, round $r/$rounds: indexed query (-c$conns, -c$scan_conns), full scan (-c$scan_conns)"
  measure "query-index" "$conns" 120s "$query_url" bench/data_query.lua collection=docs field=k \
    "values=$values"
  qidx+=("$m")
  if ((scan_conns != conns)); then
    measure "query-index-c$scan_conns" "$scan_conns" 120s "$query_url" bench/data_query.lua \
      collection=docs field=k "values=$values"
  fi
  qidx_low+=("$m")
  drain=drain_scan
  measure "query-scan" "$scan_conns" 120s "$query_url" bench/data_query.lua collection=docs \
    field=k_copy "values=$values" scan=true
  drain=""
  qscan+=("$m")
done
stop_pid "$query_pid"

# ------------------------------------------------------------------ 5. change feed
# changes.heartbeat_ms=500: a stream that goes idle gets a keep-alive within a second,
# which is when a subscriber writes its last count (below).
start_shoal feed "$server_cpu" --set changes.heartbeat_ms=500
feed_pid=$shoal_pid feed_url=$shoal_url
feed_cmd=$(cat "$tmp/feed/command")
changes_url="${feed_url}v1/collections/feed/changes"

log "writes without subscribers (collection feed0), $duration s"
start_pass feed-alone "$feed_url" path=/v1/collections/feed0/docs/f
s0=$(core_ticks "$server_cpu") w0=$(core_ticks "$wrk_cpu")
sleep "$duration"
alone_busy="server core $(busy "$s0" "$(core_ticks "$server_cpu")"), client core $(busy "$w0" "$(core_ticks "$wrk_cpu")")"
touch "$pass_dir/stop"
finish_pass
alone_ok=$pass_ok alone_failed=$pass_failed alone_s=$pass_s
alone_rate=$(per_s "$alone_ok" "$alone_s")

# A subscriber is curl -N into a FIFO read by awk. awk counts "event: put", appends each
# event's document id to DIR/ids, keeps the last "id:" (the resume point), and writes its
# count to DIR/progress at the stream's first id, every 1000 events, on each keep-alive
# and at the end. A stream that ends (overflow: the client fell behind) is reopened with
# Last-Event-ID; the count goes on from the previous connection's.
# shellcheck disable=SC2016 # an awk program
sub_prog='
function save() { printf "%d\n", base + n > progress; close(progress) }
{ sub(/\r$/, "") }
/^id: / { last = substr($0, 5); if (!seen) { seen = 1; save() }; next }
/^event: put$/ { put = 1; n++; if (n % 1000 == 0) save(); next }
/^event: / { put = 0; ended = substr($0, 8); next }
/^data: / {
  if (put && match($0, /"id":"[^"]*"/)) print substr($0, RSTART + 6, RLENGTH - 7) >> ids
  put = 0
  next
}
/^:/ { save() }
END { save(); print last > lastf; close(lastf); print ended > endf; close(endf) }'
sub_curl=() sub_awk=() sub_opens=()
stopping=0
overflows=0
# mawk reads a pipe in whole buffers unless interactive: it would see the stream late.
awk_opts=()
[[ "$(awk -W version 2>&1 || true)" == *mawk* ]] && awk_opts=(-W interactive)

start_subscriber() { # start_subscriber I [LAST_EVENT_ID]
  local i="$1" last="${2:-}" base=0 hdr=()
  local d="$tmp/subs/$i"
  mkdir -p "$d"
  [[ -s "$d/progress" ]] && base=$(cat "$d/progress")
  rm -f "$d/fifo"
  mkfifo "$d/fifo"
  taskset -c "$sub_cpu" awk "${awk_opts[@]}" -v base="$base" -v progress="$d/progress" -v ids="$d/ids" \
    -v lastf="$d/last-id" -v endf="$d/ended" "$sub_prog" <"$d/fifo" &
  sub_awk[i]=$!
  pids+=("$!")
  [[ -n "$last" ]] && hdr=(-H "Last-Event-ID: $last")
  taskset -c "$sub_cpu" curl -fsSN "${hdr[@]}" "$changes_url" >"$d/fifo" 2>"$d/curl.err" &
  sub_curl[i]=$!
  pids+=("$!")
  sub_opens[i]=$((${sub_opens[i]:-0} + 1))
}

end_awk() { # end_awk I: waits up to 10 s for subscriber I's awk to finish its input
  local j
  for ((j = 0; j < 100; j++)); do alive "${sub_awk[$1]}" || break; sleep 0.1; done
  stop_pid "${sub_awk[$1]}"
}

tend_subscribers() { # reopens the stream of each subscriber whose curl ended
  local i
  ((stopping)) && return 0
  for ((i = 1; i <= subscribers; i++)); do
    alive "${sub_curl[i]}" && continue
    stop_pid "${sub_curl[i]}"
    end_awk "$i"
    local why err
    why=$(cat "$tmp/subs/$i/ended")
    err=$(tail -c 200 "$tmp/subs/$i/curl.err")
    [[ "$why" == overflow ]] && overflows=$((overflows + 1))
    log "subscriber $i: the stream ended${why:+ (event: $why)}${err:+ (curl: $err)}; resuming"
    [[ -s "$tmp/subs/$i/last-id" && "$(cat "$tmp/subs/$i/last-id")" != "" ]] ||
      { log "subscriber $i: no event id to resume from"; exit 1; }
    start_subscriber "$i" "$(cat "$tmp/subs/$i/last-id")"
  done
}

progress_of() { # awk rewrites the file in place: an empty read is a rewrite under way
  local v="" j
  for ((j = 0; j < 100; j++)); do
    v=$(cat "$tmp/subs/$1/progress" 2>/dev/null || true)
    [[ -n "$v" || ! -e "$tmp/subs/$1/progress" ]] && break
    sleep 0.01
  done
  echo "${v:-0}"
}
delivered() { # the sum of the subscribers' counts
  local i s=0
  for ((i = 1; i <= subscribers; i++)); do s=$((s + $(progress_of "$i"))); done
  echo "$s"
}

log "starting $subscribers subscribers of $changes_url"
for ((i = 1; i <= subscribers; i++)); do start_subscriber "$i"; done
for ((j = 0; ; j++)); do
  ready=0
  for ((i = 1; i <= subscribers; i++)); do [[ -s "$tmp/subs/$i/progress" ]] && ready=$((ready + 1)); done
  ((ready == subscribers)) && break
  ((j < 300)) || { log "only $ready of $subscribers subscribers connected within 30 s"; exit 1; }
  for ((i = 1; i <= subscribers; i++)); do
    alive "${sub_curl[i]}" || { log "subscriber $i: curl ended: $(cat "$tmp/subs/$i/curl.err")"; exit 1; }
  done
  sleep 0.1
done

events0=$(metric "$feed_url" shoal_change_events_total)
log "writes with $subscribers subscribers (collection feed), $duration s"
start_pass feed-subscribed "$feed_url" path=/v1/collections/feed/docs/f
feed_pass_cmd=$pass_cmd
s0=$(core_ticks "$server_cpu") w0=$(core_ticks "$wrk_cpu")
# Few forks while measuring: the clock is bash's, the subscribers are looked at 4 times a second.
end_us=$((${EPOCHREALTIME//[!0-9]/} + duration * 1000000))
while ((${EPOCHREALTIME//[!0-9]/} < end_us)); do
  tend_subscribers
  sleep 0.25
done
in_window=$(delivered) # at the end of the writes, to within 1000 events per subscriber
feed_busy="server core $(busy "$s0" "$(core_ticks "$server_cpu")"), client core $(busy "$w0" "$(core_ticks "$wrk_cpu")")"
touch "$pass_dir/stop"
finish_pass
feed_ok=$pass_ok feed_failed=$pass_failed feed_s=$pass_s
feed_rate=$(per_s "$feed_ok" "$feed_s")
window_rate=$(per_s "$in_window" "$feed_s")
t_writes_done=$(date +%s.%N)

# Until every subscriber counted every acknowledged write, or nothing moved for 10 s.
want=$((feed_ok * subscribers))
last_total=-1 still=0
while :; do
  tend_subscribers
  total=$(delivered)
  ((total >= want)) && break
  if ((total == last_total)); then still=$((still + 1)); else still=0; fi
  last_total=$total
  ((still < 100)) || { log "the subscribers stopped at $total of $want events"; break; }
  sleep 0.1
done
catch_up_s=$(since "$t_writes_done")
committed=$(($(metric "$feed_url" shoal_change_events_total) - events0))
stopping=1
for ((i = 1; i <= subscribers; i++)); do
  stop_pid "${sub_curl[i]}"
  end_awk "$i"
done
stop_pid "$feed_pid"

sub_events=() sub_distinct=() complete=0 reopened=0
for ((i = 1; i <= subscribers; i++)); do
  d="$tmp/subs/$i"
  e=$(progress_of "$i")
  u=$(sort -u "$d/ids" 2>/dev/null | wc -l)
  sub_events+=("$e")
  sub_distinct+=("$u")
  ((e == feed_ok && u == feed_ok)) && complete=$((complete + 1))
  reopened=$((reopened + sub_opens[i] - 1))
done
events_total=0
for e in "${sub_events[@]}"; do events_total=$((events_total + e)); done
events_min=$(printf '%s\n' "${sub_events[@]}" | sort -n | head -1)
events_max=$(printf '%s\n' "${sub_events[@]}" | sort -n | tail -1)
distinct_min=$(printf '%s\n' "${sub_distinct[@]}" | sort -n | head -1)

# ------------------------------------------------------------------ report
fmt() { awk -v v="$1" 'BEGIN { if (v == "-" || v == "") { print "-"; exit }
  s = sprintf("%.0f", v); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }
  print s o }'; }

report() {
  local i r_cn=() r_un=() r_cu=() r_cp=() r_cg=() r_ix=() r_il=()
  echo "### Caching, indexes, queries and the change feed ($(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) cores; shoal and nginx pinned to core $server_cpu, wrk to core $wrk_cpu)"
  echo
  echo "\`$command_line\`, wrk -t1, ${duration} s per measured run after ${warmup} s of warm-up,"
  echo "$rounds round(s) alternating within each round, medians of the per-round ratios."
  echo "Load average at start $load_at_start ($compilers_at_start compiler processes), at end"
  echo "$(cut -d' ' -f1-3 /proc/loadavg) ($(pgrep -c cc1plus || true))."
  echo
  echo "**1. Hot GET** of $hot documents of 100 bytes (a random one each request, -c$conns): a"
  echo "node with the document read cache (defaults) and one without (storage.doc_cache_bytes=0);"
  echo "nginx answers a fixed 200 with the same 100-byte body."
  echo
  echo "| round | nginx req/s | cached req/s | p99 ms | uncached req/s | p99 ms | cached/nginx | uncached/nginx | cached/uncached |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for ((i = 0; i < rounds; i++)); do
    local n c u
    n=$(rps "${get_ng[i]}") c=$(rps "${get_ca[i]}") u=$(rps "${get_un[i]}")
    r_cn+=("$(ratio "$c" "$n")") r_un+=("$(ratio "$u" "$n")") r_cu+=("$(ratio "$c" "$u")")
    echo "| $((i + 1)) | $(fmt "$n") | $(fmt "$c") | $(p99 "${get_ca[i]}") | $(fmt "$u") | $(p99 "${get_un[i]}") | ${r_cn[i]} | ${r_un[i]} | ${r_cu[i]} |"
  done
  echo
  echo "Median cached/nginx **$(median "${r_cn[@]}")**, uncached/nginx **$(median "${r_un[@]}")**,"
  echo "cached/uncached **$(median "${r_cu[@]}")**. Document cache during the rounds: cached node"
  echo "$(fmt "$hits") hits, $(fmt "$miss") misses; uncached node $(fmt "$uhits") hits, $(fmt "$umiss") misses."
  echo
  echo "**2. TTL cache** over HTTP, random keys of $keys (-c$conns), 100-byte bodies: cache PUT"
  echo "\`?ttl=300\` next to document PUT (replacing documents of the same key space), cache GET"
  echo "next to document GET (every key exists: both spaces were filled first), on the cached node."
  echo
  echo "| round | cache PUT/s | p99 ms | doc PUT/s | p99 ms | cache/doc PUT | cache GET/s | p99 ms | doc GET/s | p99 ms | cache/doc GET |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  for ((i = 0; i < rounds; i++)); do
    local a b c2 d2
    a=$(rps "${cput[i]}") b=$(rps "${dput[i]}") c2=$(rps "${cget[i]}") d2=$(rps "${dget[i]}")
    r_cp+=("$(ratio "$a" "$b")") r_cg+=("$(ratio "$c2" "$d2")")
    echo "| $((i + 1)) | $(fmt "$a") | $(p99 "${cput[i]}") | $(fmt "$b") | $(p99 "${dput[i]}") | ${r_cp[i]} | $(fmt "$c2") | $(p99 "${cget[i]}") | $(fmt "$d2") | $(p99 "${dget[i]}") | ${r_cg[i]} |"
  done
  local cget_med ng_med
  cget_med=$(median "$(for x in "${cget[@]}"; do rps "$x"; done)")
  ng_med=$(median "$(for x in "${get_ng[@]}"; do rps "$x"; done)")
  echo
  echo "Median cache/doc PUT **$(median "${r_cp[@]}")**, cache/doc GET **$(median "${r_cg[@]}")**;"
  echo "median cache GET $(fmt "$cget_med")/s = $(ratio "$cget_med" "$ng_med") × the median nginx fixed 200 of section 1."
  echo "Cache evictions during the rounds: $evictions; entries at the end: $(fmt "$cache_entries")."
  echo
  echo "**3. Equality query** returning 10 of $(fmt "$docs") documents ({\"k\": i % $values, \"k_copy\": i % $values, \"pad\"},"
  echo "~100 bytes), a random value each request: \`{\"where\":{\"k\":X},\"limit\":10}\` answered from"
  echo "the index on k, next to \`{\"where\":{\"k_copy\":X},\"limit\":10,\"allow_scan\":true}\` (k_copy has"
  echo "no index: a full scan, checked with ?explain=true; both answer the same 10 ids). The scan"
  echo "runs with **$scan_conns connection(s)** only (wrk --timeout 120s, http.request_timeout_ms=300000);"
  echo "the indexed query runs with $conns, and with $scan_conns too for a like-for-like ratio."
  echo
  echo "| round | indexed q/s (-c$conns) | p50 ms | p99 ms | indexed q/s (-c$scan_conns) | p50 ms | scan q/s (-c$scan_conns) | p50 ms | p99 ms | indexed (-c$conns) / scan | indexed / scan, both -c$scan_conns |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  for ((i = 0; i < rounds; i++)); do
    local x xl s xp50 xlp50 sp50
    x=$(rps "${qidx[i]}") xl=$(rps "${qidx_low[i]}") s=$(rps "${qscan[i]}")
    IFS='|' read -r _ xp50 _ _ <<<"${qidx[i]}"
    IFS='|' read -r _ xlp50 _ _ <<<"${qidx_low[i]}"
    IFS='|' read -r _ sp50 _ _ <<<"${qscan[i]}"
    r_ix+=("$(ratio "$x" "$s")") r_il+=("$(ratio "$xl" "$s")")
    echo "| $((i + 1)) | $(fmt "$x") | $xp50 | $(p99 "${qidx[i]}") | $(fmt "$xl") | $xlp50 | $(fmt "$s") | $sp50 | $(p99 "${qscan[i]}") | ${r_ix[i]} | ${r_il[i]} |"
  done
  echo
  echo "Median indexed/scan **$(median "${r_ix[@]}")** (-c$conns against -c$scan_conns), **$(median "${r_il[@]}")**"
  echo "at the same $scan_conns connection(s)."
  echo
  echo "**4. Index build** on k over the same documents (PUT the index, GET it every 50 ms until"
  echo "\"ready\"; query.index_build_batch default):"
  echo
  echo "| documents | seconds | documents/s | indexed / total | shoal_index_build_documents_total | load before (wrk -c$conns) |"
  echo "|---|---|---|---|---|---|"
  echo "| $(fmt "$docs") | $build_s | **$(fmt "$build_rate")** | $index_indexed / $index_total | +$built | $(fmt "$load_rate") docs/s |"
  echo
  echo "**5. Change feed**: $subscribers subscribers (curl -N into awk, pinned to core(s) $sub_cpu) on"
  echo "one collection while wrk -c$conns PUTs new 100-byte documents for $duration s;"
  echo "changes.heartbeat_ms=500. The same writes to another collection without subscribers first."
  echo "\"busy\" is the share of the server core ($server_cpu) and the client core ($wrk_cpu) in use"
  echo "during the writes, by any process (builds included)."
  echo
  echo "| measure | value |"
  echo "|---|---|"
  echo "| writes/s without subscribers | $(fmt "$alone_rate") ($alone_ok in $alone_s s, $alone_failed failed; busy: $alone_busy) |"
  echo "| writes/s with $subscribers subscribers | **$(fmt "$feed_rate")** ($feed_ok acknowledged in $feed_s s, $feed_failed failed; busy: $feed_busy) = $(ratio "$feed_rate" "$alone_rate") × without |"
  echo "| events committed (shoal_change_events_total) | $(fmt "$committed") |"
  echo "| events delivered while writing, all subscribers | **$(fmt "$window_rate")/s** ($(fmt "$(per_s "$window_rate" "$subscribers")")/s per subscriber; counted to within 1000 per subscriber) |"
  echo "| events delivered in all | $(fmt "$events_total") (per subscriber $(fmt "$events_min") to $(fmt "$events_max"); distinct documents at least $(fmt "$distinct_min")) |"
  echo "| every subscriber got every acknowledged write exactly once | **$([[ "$complete" == "$subscribers" ]] && echo yes || echo "no: $complete of $subscribers")** |"
  echo "| last events delivered after the last write was acknowledged | within $catch_up_s s (a count is written at least once a second when idle) |"
  echo "| streams reopened with Last-Event-ID (after an overflow) | $reopened ($overflows) |"
  echo
  if ((${#errors[@]})); then
    echo "Errors (non-2xx, socket): $(printf '%s; ' "${errors[@]}" | sed 's/; $//')."
  else
    echo "Every measured run: 0 non-2xx answers, 0 socket errors."
  fi
  echo
  echo "Commands (ports are free ports picked by the run; \$TMP is its temporary directory):"
  echo
  echo '```'
  echo "$command_line"
  echo "nginx -e \$TMP/nginx/error.log -p \$TMP/nginx -c \$TMP/nginx/nginx.conf   # taskset -c $server_cpu; location / { return 200 '<100 bytes>'; }"
  echo "$cached_cmd"
  echo "$uncached_cmd"
  echo "$query_cmd"
  echo "$feed_cmd"
  echo "$fill_cache_cmd"
  echo "$load_cmd"
  echo "$feed_pass_cmd   # until \$TMP/feed-subscribed/stop exists ($duration s)"
  echo "taskset -c $sub_cpu curl -fsSN $(show "$changes_url")   # x$subscribers, each into awk through a FIFO"
  local l
  for l in "${shown_order[@]}"; do echo "${shown[$l]}"; done
  echo '```'
  echo
  echo "Whole run: $(($(date +%s) - started)) s."
}
report | tee "${out:-/dev/null}"
