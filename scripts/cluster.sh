#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A Shoal cluster on this machine (loopback), in the background, for trying it out.
#
#   scripts/cluster.sh up              start the three nodes of config/cluster-3.toml and wait
#                                      until every node is ready and sees all nodes up
#   scripts/cluster.sh up --haproxy    the same, plus HAProxy on 127.0.0.1:8080 in front
#   scripts/cluster.sh status          each node's view of the cluster, one line per node
#   scripts/cluster.sh haproxy         start HAProxy in front of the running cluster
#   scripts/cluster.sh kill NODE [SIG] SIGKILL (or SIG: STOP, CONT, TERM...) one node, to
#                                      watch the others notice
#   scripts/cluster.sh start NODE      start that node again (it rejoins by itself)
#   scripts/cluster.sh down            stop everything started here (SIGTERM, then SIGKILL)
#
# Options of `up`:
#   --nodes N        a cluster of N nodes, 1..9 (default: the nodes of the config file).
#                    Another count than the file's writes run/cluster/cluster.toml with
#                    nodes n1..nN on consecutive ports from the file's first node, and
#                    keeps its data apart in ./data/cluster-N/{node}: ownership of the
#                    shards depends on the member list.
#   --config FILE    the cluster file (default config/cluster-3.toml)
#   --haproxy        also start HAProxy with config/haproxy.cfg (127.0.0.1:8080)
#   --set KEY=VALUE  passed to every node (repeatable), e.g. --set log.level=debug
#   --shoal PATH     the binary (default build/release/app/shoal; only that one is built
#                    when missing, by scripts/setup.sh and scripts/build.sh release)
#   --timeout S      how long to wait for the cluster to form (default 30)
#
# Data stays in ./data/{node} (storage.path of the config) between runs. Logs and PID
# files are in run/cluster/: nK.log, nK.pid (the PID alone: `kill $(cat run/cluster/n2.pid)`
# works), haproxy.log, haproxy.pid.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
run_dir=run/cluster
me="cluster.sh"

die() { echo "$me: $*" >&2; exit 1; }
say() { echo "$me: $*"; }

usage() { awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"; }

# ---------------------------------------------------------------- processes
# A PID file alone is not proof: after a reboot or a long time the PID may belong to
# another program. Each start also records the process start time (/proc/PID/stat field
# 22); a PID only counts as ours when both match.
start_time_of() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $20 }'; }

alive() { # alive PID: running and not a zombie
  local state
  state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $1 }') || return 1
  [[ -n "$state" && "$state" != Z ]]
}

ours() { # ours NAME: prints the PID of run/cluster/NAME.pid when it is our running process
  local pid start
  [[ -f "$run_dir/$1.pid" ]] || return 1
  pid=$(cat "$run_dir/$1.pid")
  start=$(cat "$run_dir/$1.started" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  [[ "$(start_time_of "$pid")" == "$start" ]] || return 1
  echo "$pid"
}

record() { # record NAME PID
  echo "$2" >"$run_dir/$1.pid"
  start_time_of "$2" >"$run_dir/$1.started"
}

forget() { rm -f "$run_dir/$1.pid" "$run_dir/$1.started"; }

stop_names() { # stop_names NAME...: SIGTERM (SIGCONT first: a stopped process ignores it
  # until continued), up to 20 s (a node drains up to http.drain_timeout_ms, 10 s by
  # default), then SIGKILL
  local name pid i left names=() pids=()
  for name in "$@"; do
    if pid=$(ours "$name"); then
      names+=("$name"); pids+=("$pid")
      kill -CONT "$pid" 2>/dev/null || true
      kill -TERM "$pid" 2>/dev/null || true
    else
      forget "$name"
    fi
  done
  for ((i = 0; i < 200; i++)); do
    left=0
    for pid in "${pids[@]}"; do alive "$pid" && left=1; done
    ((left)) || break
    sleep 0.1
  done
  for i in "${!names[@]}"; do
    if alive "${pids[$i]}"; then
      say "${names[$i]} (PID ${pids[$i]}) did not stop within 20 s: SIGKILL"
      kill -KILL "${pids[$i]}" 2>/dev/null || true
    else
      say "stopped ${names[$i]} (PID ${pids[$i]})"
    fi
    forget "${names[$i]}"
  done
}

port_in_use() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# ---------------------------------------------------------------- the node list
# node_list FILE: "id host http_port actor_port" per [[cluster.nodes]] table of FILE.
node_list() {
  awk '
    function value(line) {
      sub(/^[^=]*=[ \t]*/, "", line); sub(/[ \t]*#.*$/, "", line)
      gsub(/"/, "", line); gsub(/_/, "", line); return line
    }
    function flush() { if (id != "") print id, host, http, actor; id = host = http = actor = "" }
    /^[ \t]*\[\[cluster\.nodes\]\]/ { flush(); in_node = 1; next }
    /^[ \t]*\[/ { flush(); in_node = 0; next }
    in_node && /^[ \t]*id[ \t]*=/ { id = value($0) }
    in_node && /^[ \t]*host[ \t]*=/ { host = value($0) }
    in_node && /^[ \t]*http_port[ \t]*=/ { http = value($0) }
    in_node && /^[ \t]*actor_port[ \t]*=/ { actor = value($0) }
    END { flush() }' "$1"
}

# with_nodes FILE N: FILE with its [[cluster.nodes]] tables replaced by n1..nN on
# consecutive ports starting at the first node's ports
with_nodes() {
  local first host http actor
  first=$(node_list "$1" | head -1)
  read -r _ host http actor <<<"$first"
  awk -v n="$2" -v host="$host" -v http="$http" -v actor="$actor" '
    /^[ \t]*\[\[cluster\.nodes\]\]/ {
      if (!done) {
        for (i = 1; i <= n; i++) {
          if (i > 1) print ""
          printf "[[cluster.nodes]]\nid = \"n%d\"\nhost = \"%s\"\nhttp_port = %d\nactor_port = %d\n",
                 i, host, http + i - 1, actor + i - 1
        }
        print ""
        done = 1
      }
      skip = 1; next
    }
    /^[ \t]*\[/ { skip = 0 }
    !skip { print }' "$1"
}

load_nodes() { # fills ids, hosts, http_ports from run/cluster/nodes
  ids=(); hosts=(); http_ports=()
  [[ -f "$run_dir/nodes" ]] || return 1
  local id host http actor
  while read -r id host http actor; do
    ids+=("$id"); hosts+=("$host"); http_ports+=("$http")
  done <"$run_dir/nodes"
  ((${#ids[@]} > 0))
}

# ---------------------------------------------------------------- HTTP probes
http_code() { curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true; }
cluster_json() { curl -s -m 2 "http://$1:$2/v1/cluster" 2>/dev/null || true; }
count_up() { grep -o '"state":"up"' <<<"$1" | wc -l; }

# one_line JSON: "n1 up, n2 up 120ms, n3 down 2300ms (connection lost)"
one_line() {
  sed -n 's/.*"nodes":\[\(.*\)\],"shards".*/\1/p' <<<"$1" | sed 's/},{/}\n{/g' | while read -r obj; do
    local id state hb reason
    id=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' <<<"$obj")
    state=$(sed -n 's/.*"state":"\([^"]*\)".*/\1/p' <<<"$obj")
    hb=$(sed -n 's/.*"last_heartbeat_ms":\([0-9]*\).*/\1/p' <<<"$obj")
    reason=$(sed -n 's/.*"reason":"\(\([^"\\]\|\\.\)*\)".*/\1/p' <<<"$obj" | sed 's/\\"/"/g')
    printf '%s %s' "$id" "$state"
    [[ -n "$hb" && "$state" != up ]] && printf ' (last heartbeat %s ms ago)' "$hb"
    [[ -n "$reason" ]] && printf ' [%s]' "$reason"
    printf ', '
  done | sed 's/, $//'
}

# ---------------------------------------------------------------- haproxy
start_haproxy() {
  command -v haproxy >/dev/null 2>&1 || die "haproxy is not installed: scripts/setup.sh installs it"
  if pid=$(ours haproxy); then say "haproxy is already running (PID $pid)"; return 0; fi
  load_nodes || die "no cluster in $run_dir: scripts/cluster.sh up first"
  port_in_use 127.0.0.1 8080 && die "127.0.0.1:8080 is in use already (ss -ltnp shows by what)"
  # config/haproxy.cfg names the three nodes of config/cluster-3.toml. For another
  # member list, run/cluster/haproxy.cfg is that file with one server line per node.
  local cfg=config/haproxy.cfg i
  {
    awk '/^[ \t]*server[ \t]/ { exit } { print }' config/haproxy.cfg
    for i in "${!ids[@]}"; do
      echo "    server ${ids[$i]} ${hosts[$i]}:${http_ports[$i]}"
    done
  } >"$run_dir/haproxy.cfg"
  if cmp -s "$run_dir/haproxy.cfg" config/haproxy.cfg; then
    rm -f "$run_dir/haproxy.cfg"
  else
    cfg="$run_dir/haproxy.cfg"
  fi
  haproxy -c -q -f "$cfg" || die "haproxy -c -f $cfg failed"
  nohup haproxy -f "$cfg" -db </dev/null >"$run_dir/haproxy.log" 2>&1 &
  local hpid=$!
  record haproxy "$hpid"
  for ((i = 0; i < 100; i++)); do
    [[ "$(http_code http://127.0.0.1:8080/readyz)" == 200 ]] && break
    alive "$hpid" || { tail -20 "$run_dir/haproxy.log" >&2; forget haproxy; die "haproxy exited"; }
    sleep 0.1
  done
  [[ "$(http_code http://127.0.0.1:8080/readyz)" == 200 ]] \
    || { tail -20 "$run_dir/haproxy.log" >&2; stop_names haproxy; die "haproxy did not answer /readyz with 200 within 10 s"; }
  say "haproxy (PID $hpid) on http://127.0.0.1:8080, round robin over ${ids[*]} ($cfg; log $run_dir/haproxy.log)"
}

# ---------------------------------------------------------------- up
shoal=build/release/app/shoal
config=config/cluster-3.toml
nodes=""
haproxy=0
timeout=30
sets=()

start_node() { # start_node INDEX
  local id=${ids[$1]}
  local cmd=("$shoal" serve --config "$(cat "$run_dir/config")" --set "node.id=$id")
  [[ -f "$run_dir/sets" ]] && while IFS= read -r s; do cmd+=(--set "$s"); done <"$run_dir/sets"
  echo "${cmd[*]}" >>"$run_dir/$id.log"
  nohup "${cmd[@]}" </dev/null >>"$run_dir/$id.log" 2>&1 &
  record "$id" $!
}

cmd_up() {
  while (($#)); do
    case "$1" in
      --nodes) nodes="$2"; shift 2 ;;
      --config) config="$2"; shift 2 ;;
      --haproxy) haproxy=1; shift ;;
      --set) sets+=("$2"); shift 2 ;;
      --shoal) shoal="$2"; shift 2 ;;
      --timeout) timeout="$2"; shift 2 ;;
      *) die "unknown option of up: $1 (try --help)" ;;
    esac
  done
  [[ -f "$config" ]] || die "no config file $config"
  [[ -z "$nodes" || "$nodes" =~ ^[1-9]$ ]] || die "--nodes takes 1..9"
  [[ "$timeout" =~ ^[0-9]+$ ]] || die "--timeout takes whole seconds"

  mkdir -p "$run_dir"
  if load_nodes; then
    local running=() id
    for id in "${ids[@]}" haproxy; do ours "$id" >/dev/null && running+=("$id"); done
    ((${#running[@]} == 0)) || die "already running here: ${running[*]} (scripts/cluster.sh status, or down first)"
  fi

  # Packages and the binary, as scripts/serve.sh does, but only when something is missing.
  local need_setup=0
  command -v curl >/dev/null 2>&1 || need_setup=1
  ((haproxy)) && ! command -v haproxy >/dev/null 2>&1 && need_setup=1
  [[ -x "$shoal" ]] || need_setup=1
  ((need_setup)) && scripts/setup.sh
  if [[ ! -x "$shoal" ]]; then
    [[ "$shoal" == build/release/app/shoal ]] || die "no binary at $shoal"
    scripts/build.sh release
  fi

  # The member list: the file's, or n1..nN derived from it.
  local file_count
  file_count=$(node_list "$config" | wc -l)
  ((file_count > 0)) || die "$config lists no [[cluster.nodes]]"
  rm -f "$run_dir/cluster.toml" "$run_dir/haproxy.cfg"
  local used=$config
  if [[ -n "$nodes" && "$nodes" != "$file_count" ]]; then
    used="$run_dir/cluster.toml"
    with_nodes "$config" "$nodes" >"$used"
    sets=("storage.path=./data/cluster-$nodes/{node}" "${sets[@]}")
  fi
  node_list "$used" >"$run_dir/nodes"
  echo "$used" >"$run_dir/config"
  echo "$shoal" >"$run_dir/shoal"
  printf '%s\n' "${sets[@]}" | sed '/^$/d' >"$run_dir/sets"
  load_nodes

  local i host port
  for i in "${!ids[@]}"; do
    for port in "${http_ports[$i]}" $(awk -v id="${ids[$i]}" '$1 == id { print $4 }' "$run_dir/nodes"); do
      port_in_use "${hosts[$i]}" "$port" \
        && die "${hosts[$i]}:$port (node ${ids[$i]}) is in use already (ss -ltnp shows by what)"
    done
  done
  ((haproxy)) && port_in_use 127.0.0.1 8080 && die "127.0.0.1:8080 (haproxy) is in use already"

  trap 'echo; say "interrupted: stopping the nodes"; stop_names "${ids[@]}"; exit 130' INT TERM
  for i in "${!ids[@]}"; do
    : >"$run_dir/${ids[$i]}.log" # a fresh log per `up`; `start NODE` appends
    start_node "$i"
  done
  say "started ${#ids[@]} node(s) from $used; waiting up to $timeout s for all to be ready and up"

  # Ready = every /readyz is 200 and every node's /v1/cluster lists all nodes up.
  local deadline=$((SECONDS + timeout)) all_ok dead=""
  while :; do
    all_ok=1
    for i in "${!ids[@]}"; do
      if ! ours "${ids[$i]}" >/dev/null; then dead=${ids[$i]}; break 2; fi
      if [[ "$(http_code "http://${hosts[$i]}:${http_ports[$i]}/readyz")" != 200 ]] \
         || (($(count_up "$(cluster_json "${hosts[$i]}" "${http_ports[$i]}")") != ${#ids[@]})); then
        all_ok=0
      fi
    done
    ((all_ok)) && break
    ((SECONDS < deadline)) || break
    sleep 0.1
  done
  if ! ((all_ok)) || [[ -n "$dead" ]]; then
    if [[ -n "$dead" ]]; then
      echo "$me: node $dead exited during start-up; the end of $run_dir/$dead.log:" >&2
      tail -20 "$run_dir/$dead.log" >&2
    else
      echo "$me: the cluster did not form within $timeout s" >&2
      for i in "${!ids[@]}"; do
        local json
        json=$(cluster_json "${hosts[$i]}" "${http_ports[$i]}")
        echo "--- ${ids[$i]}: /readyz $(http_code "http://${hosts[$i]}:${http_ports[$i]}/readyz"), sees: $(one_line "$json"); the end of $run_dir/${ids[$i]}.log:" >&2
        tail -10 "$run_dir/${ids[$i]}.log" >&2
      done
    fi
    stop_names "${ids[@]}" >&2
    die "start-up failed; the logs are kept in $run_dir"
  fi
  trap - INT TERM

  local data
  data=$(sed -n 's/^storage\.path=//p' "$run_dir/sets" | tail -1)
  [[ -n "$data" ]] || data=$(awk '/^[ \t]*\[/ { s = ($0 ~ /^[ \t]*\[storage\]/) } s && /^[ \t]*path[ \t]*=/ {
                                    sub(/^[^=]*=[ \t]*/, ""); sub(/[ \t]*#.*$/, ""); gsub(/"/, ""); print }' "$used")
  say "${#ids[@]} node(s) up and ready; data in ${data:-./data}, {node} being the node's id"
  for i in "${!ids[@]}"; do
    printf '  %-4s http://%s:%s  PID %s  log %s\n' "${ids[$i]}" "${hosts[$i]}" "${http_ports[$i]}" \
      "$(cat "$run_dir/${ids[$i]}.pid")" "$run_dir/${ids[$i]}.log"
  done
  ((haproxy)) && start_haproxy
  local a="http://${hosts[0]}:${http_ports[0]}" b="http://${hosts[-1]}:${http_ports[-1]}" via_haproxy=""
  ((haproxy)) && via_haproxy="or through HAProxy: curl -i http://127.0.0.1:8080/v1/collections/users/docs/42
"
  cat <<EOF

Any node answers any request (a node forwards to the shard's owner), e.g.:
  curl -i -X PUT -H 'Content-Type: application/json' -d '{"name":"Ada"}' $a/v1/collections/users/docs/42
  curl -i $b/v1/collections/users/docs/42
  curl -s $a/v1/cluster
${via_haproxy}Then: scripts/cluster.sh status | kill NODE | start NODE | down
EOF
}

# ---------------------------------------------------------------- status
cmd_status() {
  load_nodes || { say "no cluster started from here ($run_dir/nodes is missing)"; return 0; }
  local i pid json ready owned total state
  say "$(cat "$run_dir/config"), ${#ids[@]} node(s)"
  for i in "${!ids[@]}"; do
    if pid=$(ours "${ids[$i]}"); then state="PID $pid"; else state="not running"; fi
    json=$(cluster_json "${hosts[$i]}" "${http_ports[$i]}")
    if [[ -z "$json" || "$json" != *'"nodes"'* ]]; then
      printf '%-4s %-12s http://%s:%s  no answer\n' "${ids[$i]}" "$state" "${hosts[$i]}" "${http_ports[$i]}"
      continue
    fi
    ready=$(grep -o '"ready":[a-z]*' <<<"$json" | cut -d: -f2)
    [[ "$ready" == true ]] && ready=ready || ready="NOT ready"
    total=$(grep -o '"count":[0-9]*' <<<"$json" | cut -d: -f2)
    owned=$(grep -o "\"[0-9]*\":\"${ids[$i]}\"" <<<"$json" | wc -l)
    printf '%-4s %-12s http://%s:%s  %s, owns %s/%s shards; sees: %s\n' "${ids[$i]}" "$state" \
      "${hosts[$i]}" "${http_ports[$i]}" "$ready" "$owned" "$total" "$(one_line "$json")"
  done
  if pid=$(ours haproxy); then
    printf '%-4s %-12s http://127.0.0.1:8080  /readyz through it: %s\n' haproxy "PID $pid" \
      "$(http_code http://127.0.0.1:8080/readyz)"
  fi
}

# ---------------------------------------------------------------- kill / start one node
index_of() {
  local i
  for i in "${!ids[@]}"; do [[ "${ids[$i]}" == "$1" ]] && { echo "$i"; return 0; }; done
  return 1
}

cmd_kill() {
  [[ $# -ge 1 ]] || die "usage: scripts/cluster.sh kill NODE [SIGNAL] (default SIGKILL)"
  load_nodes || die "no cluster in $run_dir"
  index_of "$1" >/dev/null || die "no node $1 (nodes: ${ids[*]})"
  local pid sig=${2:-KILL}
  sig=${sig#SIG}
  pid=$(ours "$1") || die "$1 is not running"
  kill -"$sig" "$pid"
  say "sent SIG$sig to $1 (PID $pid); scripts/cluster.sh status shows who noticed"
  [[ "$sig" == STOP ]] && say "it hangs with its ports open; resume it with: scripts/cluster.sh kill $1 CONT"
  return 0
}

cmd_start() {
  [[ $# -ge 1 ]] || die "usage: scripts/cluster.sh start NODE"
  load_nodes || die "no cluster in $run_dir: scripts/cluster.sh up first"
  local i pid
  i=$(index_of "$1") || die "no node $1 (nodes: ${ids[*]})"
  pid=$(ours "$1") && die "$1 is running already (PID $pid)"
  shoal=$(cat "$run_dir/shoal")
  start_node "$i"
  local deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    ours "$1" >/dev/null || { tail -20 "$run_dir/$1.log" >&2; die "$1 exited"; }
    # Done when it is ready and every running node (itself included) sees every running
    # node up: the others notice it on their next redial, up to cluster.reconnect_max_ms.
    local j running=() ok=1
    for j in "${!ids[@]}"; do ours "${ids[$j]}" >/dev/null && running+=("$j"); done
    [[ "$(http_code "http://${hosts[$i]}:${http_ports[$i]}/readyz")" == 200 ]] || ok=0
    for j in "${running[@]}"; do
      (($(count_up "$(cluster_json "${hosts[$j]}" "${http_ports[$j]}")") >= ${#running[@]})) || ok=0
    done
    if ((ok)); then
      say "$1 is back (PID $(cat "$run_dir/$1.pid")); the ${#running[@]} running nodes see each other up"
      return 0
    fi
    sleep 0.1
  done
  say "$1 runs (PID $(cat "$run_dir/$1.pid")) but not every node sees it up after 30 s: scripts/cluster.sh status"
}

# ---------------------------------------------------------------- down
cmd_down() {
  local names=(haproxy)
  load_nodes && names+=("${ids[@]}")
  local any=0 n
  for n in "${names[@]}"; do ours "$n" >/dev/null && any=1; done
  if ((any)); then
    stop_names haproxy # first, so no client is sent to a node that is going away
    stop_names "${names[@]:1}"
  else
    for n in "${names[@]}"; do forget "$n"; done
    say "nothing is running"
  fi
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down ;;
  status) shift; cmd_status ;;
  haproxy) shift; start_haproxy ;;
  kill) shift; cmd_kill "$@" ;;
  start) shift; cmd_start "$@" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
