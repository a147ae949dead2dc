#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the commands of README.md's "Try it" section against a real node, as a newcomer
# pastes them: every command must succeed, nothing may answer 5xx, and what the comments
# promise must show (the query finds document 42, the job is accepted, the delete takes).
# The one liberty taken: before the query it waits for the index to say "ready", as the
# README tells the reader to check. The change feed's endless `curl -N` is skipped.
#   tests/integration/readme_try_it.sh SHOAL_BINARY README.md
set -euo pipefail
shoal=$1
readme=$2
work=$(mktemp -d)
pid=""
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$shoal" serve --set http.port=0 --set "storage.path=$work/data" --set cluster.shards=8 \
  > "$work/node.log" 2>&1 &
pid=$!
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$work/node.log" | head -1)
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n $port ]] || { echo "the node did not start:"; cat "$work/node.log"; exit 1; }
base="http://127.0.0.1:$port"

# The sh blocks of the section, continuation lines joined, one command per line.
awk '/^## Try it/ {on=1; next} on && /^## / {exit} on && /^```sh/ {code=1; next}
     on && /^```/ {code=0; next} on && code' "$readme" |
  sed -e ':a' -e '/\\$/N; s/\\\n//; ta' | sed 's/  */ /g' |
  grep -v '^\s*#' | grep -v '^\s*$' > "$work/commands"
[[ $(wc -l < "$work/commands") -ge 10 ]] || { echo "found too few commands:"; cat "$work/commands"; exit 1; }

transcript="$work/transcript"
while IFS= read -r line; do
  command=${line//http:\/\/127.0.0.1:8080/$base}
  if [[ $command == *"curl -N"* ]]; then continue; fi
  if [[ $command == *"/query"* ]]; then
    for _ in $(seq 1 100); do
      curl -s "$base/v1/collections/users/indexes/age" | grep -q '"state":"ready"' && break
      sleep 0.1
    done
  fi
  echo "\$ $command" >> "$transcript"
  if ! bash -o pipefail -c "$command" >> "$transcript" 2>&1; then
    echo "README command failed: $line"; cat "$transcript"; exit 1
  fi
  echo >> "$transcript"
done < "$work/commands"

fail() { echo "README: $1"; cat "$transcript"; exit 1; }
if grep -q '^HTTP/1.1 5' "$transcript"; then fail "a command was answered 5xx"; fi
grep -q '"docs":\[{"id":"42"' "$transcript" || fail "the query did not find document 42"
grep -q '^HTTP/1.1 202' "$transcript" || fail "the job was not accepted"
grep -q '^HTTP/1.1 204' "$transcript" || fail "the delete did not answer 204"
[[ $(grep -c '^HTTP/1.1 404' "$transcript") -ge 1 ]] || fail "the read after the delete was not 404"
echo "README Try it: $(wc -l < "$work/commands") commands ran as documented"
