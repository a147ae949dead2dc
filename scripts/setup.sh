#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages Shoal needs, and only those that are missing.
# Idempotent; with everything present it only asks dpkg and returns in well under a second.
#   scripts/setup.sh           build + test dependencies
#   scripts/setup.sh --bench   also wrk, nginx-light, util-linux (taskset) and xxhash
#                              (xxhsum) for benchmarks
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git ca-certificates
  # libraries (docs/DESIGN stack table): Boost 1.81 with JSON and URL, not Debian's default 1.74
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libcaf-dev librocksdb-dev libspdlog-dev libfmt-dev
  libtoml11-dev libcli11-dev libxxhash-dev libssl-dev
  # consensus for replicated shards (docs/replication.md): canonical raft 0.15
  libraft-dev
  # tests and micro benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # what the scripts and the integration tests run besides the compiler (not in a minbase system)
  curl procps
  # the shell worker of docs/jobs.md, run by the job integration tests
  jq
  # the cluster tests put a real haproxy in front of three nodes
  haproxy
  # the partition tests run each member in its own network namespace (ip netns, veth)
  iproute2
)

for arg in "$@"; do
  case "$arg" in
    --bench) packages+=(wrk nginx-light util-linux xxhash) ;;
    -h|--help) sed -n '3,6p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${#missing[@]} missing package(s): ${missing[*]}"
sudo=()
if ((EUID != 0)); then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "setup: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"
echo "setup: done"
