#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sets up, builds (release) and runs one Shoal node in the foreground.
# Arguments go to `shoal serve`; with none: HTTP on 127.0.0.1:8080, data in ./data, 64 shards.
#   scripts/serve.sh
#   scripts/serve.sh --config config/single-node.toml --set http.port=9090
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
scripts/build.sh release shoal   # the server only, not the tests and benchmarks
exec build/release/app/shoal serve "$@"
