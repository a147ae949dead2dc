# SPDX-License-Identifier: Apache-2.0
# Helpers for the benchmarks that run shoal clusters on loopback (bench/cluster.sh,
# bench/replication.sh); sourced after bench/lib.sh. Expects $tmp, $shoal, $root, the
# pids array of lib.sh, and sets the arrays below.

now_ms() { echo $(($(date +%s%N) / 1000000)); }


# ---------------------------------------------------------------- clusters
# A cluster NAME has nodes n1..nN; node K listens on http_port[K] and actor_port[K].
declare -a node_pids http_port actor_port
cluster_name=""
cluster_size=0

write_config() { # write_config NAME N FAILURE_TIMEOUT_MS [RF]: picks free ports, writes the file
  local name="$1" n="$2" ft="$3" rf="${4:-1}" k p used=" "
  mkdir -p "$tmp/$name"
  http_port=(); actor_port=()
  for ((k = 1; k <= n; k++)); do
    for which in http actor; do
      while :; do
        p=$((20000 + RANDOM % 10000))
        [[ "$used" == *" $p "* ]] && continue
        port_free "$p" && break
      done
      used+="$p "
      if [[ $which == http ]]; then http_port[k]=$p; else actor_port[k]=$p; fi
    done
  done
  {
    echo "[cluster]"
    echo "shards = 64"
    echo "secret = \"cluster-bench-secret-0123456789\""
    echo "heartbeat_ms = 250"
    echo "failure_timeout_ms = $ft"
    echo "reconnect_max_ms = 2000"
    echo "replication_factor = $rf"
    for ((k = 1; k <= n; k++)); do
      printf '\n[[cluster.nodes]]\nid = "n%d"\nhost = "127.0.0.1"\nhttp_port = %d\nactor_port = %d\n' \
        "$k" "${http_port[k]}" "${actor_port[k]}"
    done
    printf '\n[storage]\npath = "%s/%s/data/{node}"\n' "$tmp" "$name"
  } >"$tmp/$name/cluster.toml"
}

extra_sets=() # more --set options for every node started from now on

node_cmd() { # node_cmd K CPUS: the command line of node K of the current cluster
  local pre=()
  [[ -n "$2" ]] && pre=(taskset -c "$2")
  node_line=("${pre[@]}" "$shoal" serve --config "$tmp/$cluster_name/cluster.toml"
             --set "node.id=n$1" --set log.access_log=false "${extra_sets[@]}")
}

start_node() { # start_node K CPUS
  node_cmd "$1" "$2"
  echo "# $(date -u +%T.%N) ${node_line[*]}" >>"$tmp/$cluster_name/n$1.log"
  "${node_line[@]}" >>"$tmp/$cluster_name/n$1.log" 2>&1 &
  node_pids[$1]=$!
  pids+=("$!")
}

url() { echo "http://127.0.0.1:${http_port[$1]}$2"; }
ups() { curl -s -m 2 "$(url "$1" /v1/cluster)" 2>/dev/null | grep -o '"state":"up"' | wc -l; }

formed() { # formed: every node is ready and lists every node up
  local k
  for ((k = 1; k <= cluster_size; k++)); do
    [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$(url "$k" /readyz)" 2>/dev/null)" == 200 ]] || return 1
    (($(ups "$k") == cluster_size)) || return 1
  done
}

stop_cluster() {
  local k list=()
  for ((k = 1; k <= cluster_size; k++)); do [[ -n "${node_pids[k]:-}" ]] && list+=("${node_pids[k]}"); done
  ((${#list[@]})) && stop_pids "${list[@]}"
  node_pids=()
}

# start_cluster NAME N CPUS FAILURE_TIMEOUT_MS [RF]: starts and waits up to 60 s until formed.
# A port taken between the check and the bind makes a node exit: then new ports, up to
# three times.
start_cluster() {
  local name="$1" n="$2" cpus="$3" ft="$4" rf="${5:-1}" attempt k i died
  for attempt in 1 2 3; do
    cluster_name=$name
    cluster_size=$n
    rm -rf "${tmp:?}/${name:?}"
    write_config "$name" "$n" "$ft" "$rf"
    for ((k = 1; k <= n; k++)); do start_node "$k" "$cpus"; done
    died=0
    for ((i = 0; i < 600; i++)); do
      for ((k = 1; k <= n; k++)); do alive "${node_pids[k]}" || died=$k; done
      ((died)) && break
      formed && return 0
      sleep 0.1
    done
    if ((died)); then
      log "node n$died of $name exited during start-up (attempt $attempt): $(tail -2 "$tmp/$name/n$died.log" | tr '\n' ' ')"
      stop_cluster
      continue
    fi
    log "the cluster $name did not form within 60 s; its logs are in $tmp/$name"
    exit 1
  done
  log "the cluster $name could not start in three attempts"
  exit 1
}

# ---------------------------------------------------------------- keys and owners
hot_doc='{"id":"hot","name":"a hot document","tags":["bench","get"],"pad":"xxxxxxxxxxxxxxxxxxxx"}'

put_doc() { # put_doc NODE ID: PUT the hot document as bench/ID through NODE
  curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/json' --data "$hot_doc" \
    "$(url "$1" "/v1/collections/bench/docs/$2")"
}

keys_sum() { # the sum of shoal_shard_keys_estimate of node K
  curl -s -m 2 "$(url "$1" /metrics)" | awk '/^shoal_shard_keys_estimate/ { s += $2 } END { print s + 0 }'
}

# shard_of ID: the shard of bench/ID (of 64), by the on-disk contract (needs xxhsum)
shard_of() {
  local h r=0 i
  h=$({ printf bench; printf '\0'; printf %s "$1"; } | xxhsum -H1 | cut -d' ' -f1)
  for ((i = 0; i < ${#h}; i++)); do r=$(((r * 16 + 16#${h:i:1}) % 64)); done
  echo "$r"
}

# leader_of SHARD K: the owner of SHARD in node K's /v1/cluster (with replicated shards its
# leader; empty while it has none or K does not answer)
leader_of() {
  { curl -s -m 2 "$(url "$2" /v1/cluster)" 2>/dev/null | grep -o "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4; } || true
}

# owner_of ID: the node id owning bench/ID, from the on-disk contract
# shard = XXH64("bench" "\0" ID, seed 0) mod shards and n1's /v1/cluster owners; without
# xxhsum, by PUTting it through n1 and seeing whose key estimate grows.
owner_of() {
  if command -v xxhsum >/dev/null 2>&1; then
    leader_of "$(shard_of "$1")" 1
  else
    local before=() k
    for ((k = 1; k <= cluster_size; k++)); do before[k]=$(keys_sum "$k"); done
    put_doc 1 "$1"
    for ((k = 1; k <= cluster_size; k++)); do
      (($(keys_sum "$k") > before[k])) && { echo "n$k"; return; }
    done
  fi
}

find_key() { # find_key NODE: a document id owned by NODE (k1, k2, ...)
  local i
  for ((i = 1; i < 1000; i++)); do
    [[ "$(owner_of "k$i")" == "$1" ]] && { echo "k$i"; return 0; }
  done
  log "no key owned by $1 among k1..k999"
  exit 1
}

# ---------------------------------------------------------------- CPU and wrk parsing
clk_tck=$(getconf CLK_TCK)
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }' || echo 0; }

# parse_wrk_counted FILE: lib.sh's parse_wrk, then "|requests" (how many wrk completed)
parse_wrk_counted() {
  echo "$(parse_wrk "$1")|$(awk '/ requests in / { n = $1 } END { print n + 0 }' "$1")"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
range() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s–%s", lo, hi }'; }
