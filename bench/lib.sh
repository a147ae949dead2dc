# SPDX-License-Identifier: Apache-2.0
# Helpers shared by the bench scripts (run.sh, actors.sh, cluster.sh, jobs.sh, data.sh). Not run on its own.
# A script sets `bench_name` (its name, for messages) and sources this file first; later
# it sets `tmp` (its temporary directory) and `keep` (1: keep $tmp), and appends the PID of
# every process it starts to `pids`. The EXIT trap installed here stops every process in
# `pids` and removes $tmp, unless the run failed or `keep` is set.

pids=()
tmp=""
keep=0

usage() { awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"; }

log() { echo "$bench_name: $*" >&2; }

# require_tools TOOL...: exits naming the missing ones (scripts/setup.sh --bench installs them)
require_tools() {
  local missing=() tool
  for tool in "$@"; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
  ((${#missing[@]} == 0)) && return 0
  log "missing ${missing[*]}: install them with scripts/setup.sh --bench"
  exit 1
}

# require_cluster_machine SHOAL: exits unless SHOAL is executable and there are two cores
# (nodes on one, wrk on the other)
require_cluster_machine() {
  if [[ ! -x "$1" ]]; then
    log "no shoal binary at $1: build it first (scripts/build.sh release)"
    exit 1
  fi
  if (($(getconf _NPROCESSORS_ONLN) < 2)); then
    log "needs at least 2 cores (nodes and wrk on different cores)"
    exit 1
  fi
}

alive() { # alive PID: running (a child that exited but is not reaped yet is a zombie)
  local state
  # The state follows the command name in parentheses, which may contain spaces.
  state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $1 }') || return 1
  [[ -n "$state" && "$state" != Z ]]
}

forget_pid() { # forget_pid PID: once reaped, a PID may be reused by an unrelated process
  local left=() p
  for p in "${pids[@]}"; do [[ "$p" == "$1" ]] || left+=("$p"); done
  pids=("${left[@]}")
}

stop_pids() { # stop_pids PID...: SIGCONT + SIGTERM to all, up to 60 s, then SIGKILL; reaps
  local pid i left
  for pid in "$@"; do
    if alive "$pid"; then
      kill -CONT "$pid" 2>/dev/null || true # a stopped process would not act on SIGTERM
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for ((i = 0; i < 600; i++)); do
    left=0
    for pid in "$@"; do alive "$pid" && left=1; done
    ((left)) || break
    sleep 0.1
  done
  for pid in "$@"; do
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
  done
}

stop_pid() { stop_pids "$1"; }

cleanup() {
  local status=$?
  ((status == 0 || status == 130)) || keep=1 # keep the logs of a failed run
  if ((${#pids[@]})); then stop_pids "${pids[@]}"; fi
  [[ -n "$tmp" ]] || return 0
  if ((keep)); then
    echo "$bench_name: kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() { # a port nothing listens on (nothing answers a connect), below the ephemeral range
  local p
  while :; do
    p=$((10000 + RANDOM % 20000))
    if port_free "$p"; then
      echo "$p"
      return
    fi
  done
}

wait_http() { # wait_http URL PID: until URL answers 200, or fail when PID died / 30 s passed
  local url="$1" pid="$2" i
  for ((i = 0; i < 300; i++)); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
    if ! alive "$pid"; then
      log "the server for $url exited; its log is in $tmp"
      return 1
    fi
    sleep 0.1
  done
  log "$url did not answer within 30 s"
  return 1
}

# `times` must run in the script's shell, not in $(...): `times >"$tmp/times"` first.
children_cpu() { # user+system seconds of the reaped children of this shell (wrk)
  awk 'NR == 2 {
    split($1, u, /[ms]/); split($2, s, /[ms]/)
    printf "%.3f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$tmp/times"
}

ratio() { # ratio A B: A/B with two decimals, or "-" when either is missing
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}

# Scripts that start single nodes (actors.sh, jobs.sh) set `root`, `shoal` and `tmp`.

# start_shoal NAME CPUS [--set k=v ...]: sets shoal_pid, shoal_port and shoal_url.
# Tries up to three free ports: another program may take the port first.
# start_nginx BODY [TYPE]: nginx with one worker on core $server_cpu, answering every
# request 200 with BODY (no single quotes) as TYPE (default text/plain); its files under
# $tmp/nginx. Sets nginx_pid, nginx_port and nginx_url; tries up to three free ports, since
# another program may take one first.
start_nginx() {
  local body=$1 type=${2:-text/plain} _
  mkdir -p "$tmp/nginx"
  for _ in 1 2 3; do
    nginx_port=$(free_port)
    nginx_url="http://127.0.0.1:$nginx_port/"
    cat >"$tmp/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  default_type $type;
  server {
    listen 127.0.0.1:$nginx_port;
    location / { return 200 '$body'; }
  }
}
EOF
    taskset -c "$server_cpu" nginx -e "$tmp/nginx/error.log" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" \
      >>"$tmp/nginx/stdout.log" 2>&1 &
    nginx_pid=$!
    pids+=("$nginx_pid")
    wait_http "$nginx_url" "$nginx_pid" && return 0
    alive "$nginx_pid" && return 1 # running but not answering
    stop_pid "$nginx_pid"
  done
  return 1
}

start_shoal() {
  local name="$1" cpus="$2" _
  shift 2
  mkdir -p "$tmp/$name"
  for _ in 1 2 3; do
    shoal_port=$(free_port)
    rm -rf "$tmp/$name/data"
    local cmd=(taskset -c "$cpus" "$shoal" serve --set "http.port=$shoal_port"
               --set "storage.path=$tmp/$name/data" --set log.access_log=false "$@")
    echo "${cmd[*]}" | sed "s|$tmp|\$TMP|g; s|$root/||g; s|http.port=[0-9]*|http.port=\$PORT|" >"$tmp/$name/command"
    "${cmd[@]}" >>"$tmp/$name/shoal.log" 2>&1 &
    shoal_pid=$!
    pids+=("$shoal_pid")
    shoal_url="http://127.0.0.1:$shoal_port/"
    wait_http "${shoal_url}healthz" "$shoal_pid" && return 0
    alive "$shoal_pid" && return 1
    stop_pid "$shoal_pid"
  done
  return 1
}

stop_shoal() {
  stop_pid "$shoal_pid"
}

# parse_wrk FILE: "req/s|p50 ms|p99 ms|errors" from wrk --latency output
parse_wrk() {
  awk '
    function ms(v) {
      if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
      if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
      if (v ~ /m$/)  return substr(v, 1, length(v) - 1) * 60000
      if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
      return v + 0
    }
    /^Requests\/sec:/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ { sock = $0; sub(/^ *Socket errors: */, "", sock) }
    END {
      err = ""
      if (non2xx != "") err = non2xx " non-2xx"
      if (sock != "") err = err (err == "" ? "" : "; ") "socket " sock
      if (err == "") err = "0"
      printf "%.0f|%.2f|%.2f|%s", rps, p50, p99, err
    }' "$1"
}
