#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Mutation check of the rules that protect data (docs/testing.md, "Mutation check").
#
# Applies, one at a time, a small deliberate bug to one production file, rebuilds only the
# unit test binaries named for it, runs them and reports which tests failed. Every
# mutation must be killed by at least one unit test: the script exits non-zero when one
# survives, no longer applies (its original text is not found exactly once, e.g. after a
# refactor) or does not compile. Runs on demand, never from CI.
#
#   scripts/mutation-check.sh              every mutation (baseline first)
#   scripts/mutation-check.sh --only ID    one mutation (repeatable)
#   scripts/mutation-check.sh --list       the mutations, and whether each still applies
#
# Environment: SHOAL_JOBS (build jobs, default 2), SHOAL_MUTATION_BUILD (build dir,
# default build/mutation), SHOAL_MUTATION_TIMEOUT (seconds per test binary, default 120).
set -euo pipefail
shopt -s inherit_errexit # a failing helper inside $(...) stops the script too
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

build=${SHOAL_MUTATION_BUILD:-build/mutation}
[[ "$build" == /* ]] || build=$root/$build # test binaries run from their own folder
jobs=${SHOAL_JOBS:-2}
test_timeout=${SHOAL_MUTATION_TIMEOUT:-120}
logs=$build/mutation-logs

# -- the mutations ---------------------------------------------------------------------
# mutation ID FILE TARGETS DESCRIPTION ORIGINAL MUTATED
#   FILE      the production file, relative to the repository root
#   TARGETS   the unit test targets (tests/*/CMakeLists.txt) to rebuild and run
#   ORIGINAL  text that must occur exactly once in FILE; MUTATED replaces it
ids=() files=() targets=() descriptions=() originals=() mutateds=()
mutation() {
  ids+=("$1") files+=("$2") targets+=("$3") descriptions+=("$4") originals+=("$5") mutateds+=("$6")
}

# If-Match and If-None-Match (documents/documents.cpp)
mutation doc-if-match documents/documents.cpp "shoal_documents_tests shoal_host_tests" \
  "a write ignores If-Match: a write against a stale version goes through" \
  'if (req.if_match.present() && !matches(req.if_match, current)) return false;' \
  '// mutation: If-Match not checked'
mutation doc-if-none-match documents/documents.cpp "shoal_documents_tests shoal_host_tests" \
  "a write ignores If-None-Match: 'create only if absent' overwrites a document" \
  'if (req.if_none_match.present() && matches(req.if_none_match, current)) return false;' \
  '// mutation: If-None-Match not checked'
mutation doc-stale-etag documents/documents.cpp "shoal_documents_tests shoal_host_tests" \
  "a version list matches any current version: a stale ETag passes If-Match" \
  'return current && std::find(p.versions.begin(), p.versions.end(), *current) != p.versions.end();' \
  'return current && !p.versions.empty();'

# The fsync hold before a reply (shard/gate.cpp, documents/module.cpp)
mutation gate-early-release shard/gate.cpp "shoal_shard_tests shoal_documents_tests shoal_host_tests" \
  "synced(n) also releases the commit at sequence n + 1, before its fsync" \
  'while (!held_.empty() && held_.front().sequence <= durable) {' \
  'while (!held_.empty() && held_.front().sequence <= durable + 1) {'
mutation gate-range-not-pending shard/gate.cpp "shoal_shard_tests shoal_documents_tests shoal_host_tests" \
  "a held del_range no longer makes keys pending: reads of deleted keys answer before the fsync" \
  'return pending_ranges_ > 0 || pending_keys_.count(std::string(key)) != 0;' \
  'return pending_keys_.count(std::string(key)) != 0;'
mutation doc-reply-before-fsync documents/module.cpp "shoal_documents_tests shoal_host_tests" \
  "the documents module answers without waiting for the key's fsync" \
  'if (!ctx_.pending(key)) return to.deliver(std::move(r));' \
  'return to.deliver(std::move(r)); // mutation: no fsync barrier'

# Lease expiry and stale leases (jobs/job_queue.cpp)
mutation lease-expires-late jobs/job_queue.cpp "shoal_jobs_tests shoal_workers_tests" \
  "a lease is not expired at its deadline, only after it" \
  'it != leases_.end() && it->first <= now_ms; ++it) {' \
  'it != leases_.end() && it->first < now_ms; ++it) {'
mutation lease-expired-not-requeued jobs/job_queue.cpp "shoal_jobs_tests shoal_workers_tests" \
  "an expired lease's job is dropped from memory instead of waiting for its retry" \
  $'    untrack(id);\n    track(id, r, now_ms);\n' \
  $'    untrack(id); // mutation: not tracked again\n'
mutation lease-stale-accepted jobs/job_queue.cpp "shoal_jobs_tests shoal_workers_tests" \
  "complete/fail accept any lease id while the job runs (a stale lease finishes it)" \
  '|| r.lease_id != lease_id)' \
  '|| lease_id.empty())'

# Index maintenance on update and delete (query/shard_index.cpp)
mutation index-stale-on-update query/shard_index.cpp "shoal_shard_index_tests shoal_host_tests" \
  "an update that changes an indexed value keeps the old index entry" \
  'if (!old_key.empty()) batch.del(std::move(old_key));' \
  'if (!old_key.empty() && new_key.empty()) batch.del(std::move(old_key));'
mutation index-kept-on-delete query/shard_index.cpp "shoal_shard_index_tests shoal_host_tests" \
  "a delete keeps the document's index entries" \
  'if (!old_key.empty()) batch.del(std::move(old_key));' \
  'if (!old_key.empty() && !new_key.empty()) batch.del(std::move(old_key));'

# Change-log resume positions (changes/change_log.cpp, changes/module.cpp)
mutation changes-resume-skips changes/change_log.cpp "shoal_change_log_tests shoal_host_tests" \
  "a read after position n starts at n + 2: one event is silently skipped" \
  'const auto from = key(collection, after + 1);' \
  'const auto from = key(collection, after + 2);'
mutation changes-trimmed-not-gone changes/change_log.cpp "shoal_change_log_tests shoal_host_tests" \
  "a resume position older than the retention reads on (a silent gap) instead of 410 gone" \
  'if (after > b->published || after + 1 < b->first)' \
  'if (after > b->published)'
mutation changes-publish-before-fsync changes/module.cpp "shoal_change_log_tests shoal_host_tests" \
  "an event (and its resume position) is readable before its write's fsync" \
  'if (!ctx_.pending(key)) return publish(p.collection, p.seq);' \
  'return publish(p.collection, p.seq); // mutation: no fsync barrier'

# Write-then-reply in virtual actors (host/virtual_actor.cpp)
mutation vactor-reply-before-write host/virtual_actor.cpp "shoal_host_tests" \
  "a call that changed the state is answered when its write starts, not when it is durable" \
  $'    st.in_write.push_back(std::move(h));\n    start_write(self);\n' \
  $'    start_write(self);\n    deliver(self, std::move(h)); // mutation: reply before the write\n'
mutation vactor-rides-older-write host/virtual_actor.cpp "shoal_host_tests" \
  "a call that saw a newer state than the write in flight is answered by that older write" \
  'if (st.after_write.empty() && st.latest == st.writing_text)' \
  'if (st.after_write.empty())'
mutation vactor-call-out-early host/virtual_actor.cpp "shoal_host_tests" \
  "a call out leaves while the write of the state it was made from is still in flight" \
  'if (failure || it->first <= st.writes - (st.writing ? 1 : 0)) {' \
  'if (failure || it->first <= st.writes) {'

# The handshake trust check (cluster/handshake.cpp, remote/gateway.cpp, remote/membership.cpp)
mutation handshake-length-only cluster/handshake.cpp "shoal_cluster_tests shoal_remote_tests" \
  "same_proof compares lengths only: any proof of the right length is accepted" \
  'return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;' \
  'return a.size() == b.size();'
mutation gateway-forwards-untrusted remote/gateway.cpp "shoal_remote_tests" \
  "the gateway forwards shard requests from a node that never completed the handshake" \
  $'    if (!trusted(self)) return untrusted();\n    auto* local = local_shard(self, shard);' \
  $'    auto* local = local_shard(self, shard); // mutation: no trust check'
mutation gateway-auth-unchecked remote/gateway.cpp "shoal_remote_tests" \
  "the acceptor trusts a dialer whose proof of the secret is wrong (only an empty one is refused)" \
  'if (!hs::same_proof(expected, a.proof)) {' \
  'if (a.proof.empty()) {'
mutation dialer-trusts-bad-acceptor remote/membership.cpp "shoal_remote_tests" \
  "the dialer goes on with an acceptor whose proof of the secret is wrong" \
  'if (!hs::same_proof(expected, ack.proof)) {' \
  'if (ack.proof.empty()) {'

# -- helpers -----------------------------------------------------------------------------

usage() { sed -n '11,16p' "$0" | sed 's/^# \{0,1\}//'; }

# count_in FILE TEXT: how often TEXT occurs in FILE (exact, multi-line).
count_in() {
  MUT_TEXT=$2 python3 -c '
import os, sys
print(open(sys.argv[1], encoding="utf-8").read().count(os.environ["MUT_TEXT"]))' "$1"
}

# substitute FILE ORIGINAL MUTATED: replaces the one occurrence of ORIGINAL; fails loudly
# (exit 3) when it does not occur exactly once, so a moved or rewritten rule is reported
# instead of silently tested with no bug in it.
substitute() {
  MUT_FROM=$2 MUT_TO=$3 python3 -c '
import os, sys
path, old, new = sys.argv[1], os.environ["MUT_FROM"], os.environ["MUT_TO"]
text = open(path, encoding="utf-8").read()
n = text.count(old)
if n != 1:
    sys.stderr.write(f"{path}: the original text occurs {n} times, expected exactly once\n")
    sys.exit(3)
open(path, "w", encoding="utf-8").write(text.replace(old, new, 1))' "$1"
}

# The pristine copy of the file being mutated, and where it goes back.
saved=$(mktemp -d)
current_file=
# restore: puts the mutated file back. `cat >` rather than `cp -p`: the file must get a
# new mtime, or ninja would keep the object compiled from the mutated text.
restore() {
  if [[ -n "$current_file" ]]; then
    cat "$saved/original" >"$current_file"
    current_file=
  fi
}
on_exit() {
  local rc=$?
  restore
  rm -rf "$saved"
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# configure: a Release build with ccache, without benchmarks, as scripts/build.sh makes
# build/release; reconfigured from scratch when made by another generator or tree.
configure() {
  export CCACHE_DIR=${CCACHE_DIR:-${HOME:-/root}/.cache/ccache}
  export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-2G}
  local cache=$build/CMakeCache.txt
  if [[ -f "$cache" ]]; then
    local gen home
    gen=$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' "$cache")
    home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$cache")
    if [[ "$gen" != "Ninja" || "$home" != "$root" ]]; then
      rm -rf "$cache" "$build/CMakeFiles"
    fi
  fi
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHOAL_BUILD_BENCH=OFF \
    >"$logs/configure.log" 2>&1 || { cat "$logs/configure.log"; return 1; }
}

# build_targets LOG TARGET...: builds the targets at most $jobs at a time.
build_targets() {
  local log=$1; shift
  cmake --build "$build" --parallel "$jobs" --target "$@" >"$log" 2>&1
}

# binary_of TARGET: the test executable of TARGET (tests/<folder>/<TARGET>).
binary_of() {
  local bin
  bin=$(find "$build/tests" -type f -name "$1" -perm -u+x -print -quit)
  [[ -n "$bin" ]] || { echo "mutation-check: no binary for $1 under $build/tests" >&2; return 1; }
  echo "$bin"
}

# run_tests LOGDIR TARGET...: runs each binary and prints one line per failing test,
# "Suite.Test" from gtest's "[  FAILED  ]" lines; a binary that died before gtest's
# summary (a crash, or killed by the timeout) adds "TARGET: crashed (exit N) in
# Suite.Test" or "TARGET: timed out after Ns in Suite.Test", naming the test that was
# running. Prints nothing when every test passed.
run_tests() {
  local dir=$1; shift
  local t bin log rc last failed
  for t in "$@"; do
    bin=$(binary_of "$t")
    log=$dir/$t.log
    rc=0
    # From the binary's folder, as ctest runs it (gtest_discover_tests' working dir).
    (cd "$(dirname "$bin")" && timeout "$test_timeout" "$bin" --gtest_color=no) >"$log" 2>&1 \
      || rc=$?
    ((rc != 0)) || continue
    # "[  FAILED  ] Suite.Test (N ms)", once per test, and again in the summary; not the
    # "[  FAILED  ] 2 tests, listed below:" line.
    failed=$(sed -n 's/^\[  FAILED  \] \([^ ,]*\.[^ ,]*\).*/\1/p' "$log" | sort -u)
    [[ -z "$failed" ]] || echo "$failed"
    # gtest's last line "[==========] N tests from M test suites ran." means it finished.
    if ! grep -q '^\[==========\] .* ran\.' "$log"; then
      last=$(sed -n 's/^\[ RUN      \] //p' "$log" | tail -n1)
      if ((rc == 124)); then
        echo "$t: timed out after ${test_timeout}s in ${last:-?}"
      else
        echo "$t: crashed (exit $rc) in ${last:-?}"
      fi
    elif [[ -z "$failed" ]]; then
      echo "$t: exit $rc after its summary, no test failed"
    fi
  done
}

# -- options -----------------------------------------------------------------------------

only=()
list=0
while (($#)); do
  case "$1" in
    --only) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; only+=("$2"); shift 2 ;;
    --list) list=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "mutation-check: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

selected=()
if ((${#only[@]})); then
  for id in "${only[@]}"; do
    found=
    for i in "${!ids[@]}"; do [[ "${ids[$i]}" == "$id" ]] && found=$i; done
    [[ -n "$found" ]] || { echo "mutation-check: no mutation '$id' (see --list)" >&2; exit 2; }
    selected+=("$found")
  done
else
  selected=("${!ids[@]}")
fi

if ((list)); then
  stale=0
  for i in "${selected[@]}"; do
    n=$(count_in "${files[$i]}" "${originals[$i]}")
    state="applies"
    ((n == 1)) || { state="NO LONGER APPLIES (original found $n times)"; stale=1; }
    printf '%-28s %-26s %s\n' "${ids[$i]}" "${files[$i]}" "$state"
    printf '    %s\n    targets: %s\n' "${descriptions[$i]}" "${targets[$i]}"
  done
  exit "$stale"
fi

# -- baseline ----------------------------------------------------------------------------

# The mutated files must be unmodified: each is restored to its committed text, and the
# end checks that git sees no change in any of them.
mutated_files=()
for i in "${selected[@]}"; do mutated_files+=("${files[$i]}"); done
mapfile -t mutated_files < <(printf '%s\n' "${mutated_files[@]}" | sort -u)
if ! git diff --quiet HEAD -- "${mutated_files[@]}"; then
  echo "mutation-check: commit or stash your changes to these files first:" >&2
  git diff --name-only HEAD -- "${mutated_files[@]}" >&2
  exit 2
fi

all_targets=()
for i in "${selected[@]}"; do read -ra ts <<<"${targets[$i]}"; all_targets+=("${ts[@]}"); done
mapfile -t all_targets < <(printf '%s\n' "${all_targets[@]}" | sort -u)

rm -rf "$logs"
mkdir -p "$logs/baseline"
started=$(date +%s)
echo "mutation-check: ${#selected[@]} mutation(s), build dir $build, -j$jobs"
echo "mutation-check: baseline build of ${all_targets[*]}"
configure
if ! build_targets "$logs/baseline/build.log" "${all_targets[@]}"; then
  tail -n 40 "$logs/baseline/build.log"
  echo "mutation-check: the un-mutated build failed; nothing to check" >&2
  exit 1
fi
t0=$(date +%s)
baseline_failures=$(run_tests "$logs/baseline" "${all_targets[@]}")
if [[ -n "$baseline_failures" ]]; then
  echo "mutation-check: the un-mutated tests fail; fix them first:" >&2
  echo "$baseline_failures" | sed 's/^/    /' >&2
  exit 1
fi
echo "mutation-check: baseline passes (build $((t0 - started))s, tests $(($(date +%s) - t0))s)"

# -- the mutations, one at a time ---------------------------------------------------------

results=() counts=() times=() names=()
for i in "${selected[@]}"; do
  id=${ids[$i]} file=${files[$i]}
  read -ra ts <<<"${targets[$i]}"
  dir=$logs/$id
  mkdir -p "$dir"
  echo
  echo "== $id: ${descriptions[$i]}"
  echo "   $file; ${ts[*]}"
  m0=$(date +%s)
  cp "$file" "$saved/original"
  current_file=$file
  if ! substitute "$file" "${originals[$i]}" "${mutateds[$i]}" 2>"$dir/apply.log"; then
    current_file=
    cat "$dir/apply.log"
    results+=("NO-LONGER-APPLIES") counts+=(0) times+=(0) names+=("mutation $id no longer applies")
    echo "   NO LONGER APPLIES"
    continue
  fi
  git diff -- "$file" >"$dir/mutation.diff"
  if ! build_targets "$dir/build.log" "${ts[@]}"; then
    restore
    results+=("COMPILE-ERROR") counts+=(0) times+=($(($(date +%s) - m0)))
    names+=("not killed by tests: compile error, see $dir/build.log")
    echo "   COMPILE ERROR (not killed by tests): $dir/build.log"
    grep -m3 'error:' "$dir/build.log" | sed 's/^/   /' || true
    continue
  fi
  failures=$(run_tests "$dir" "${ts[@]}")
  restore
  secs=$(($(date +%s) - m0))
  if [[ -n "$failures" ]]; then
    n=$(wc -l <<<"$failures")
    results+=("KILLED") counts+=("$n") times+=("$secs")
    first=$(head -n3 <<<"$failures" | paste -sd, - | sed 's/,/, /g')
    if ((n > 3)); then first+=", ..."; fi
    names+=("$first")
    echo "   KILLED by $n test(s) in ${secs}s:"
    sed 's/^/     /' <<<"$failures" | head -n 10
  else
    results+=("SURVIVED") counts+=(0) times+=("$secs")
    names+=("no test of ${ts[*]} failed")
    echo "   SURVIVED (${secs}s)"
  fi
done

# -- report ------------------------------------------------------------------------------

# Every mutated file is back to its committed text.
if ! git diff --quiet HEAD -- "${mutated_files[@]}"; then
  echo "mutation-check: a production file was not restored:" >&2
  git diff --stat HEAD -- "${mutated_files[@]}" >&2
  exit 1
fi

echo
echo "== mutation check: $(($(date +%s) - started))s in all"
printf '%-28s %-17s %6s %6s  %s\n' "mutation" "result" "failed" "time" "first failing tests"
bad=0
for k in "${!selected[@]}"; do
  printf '%-28s %-17s %6s %5ss  %s\n' "${ids[${selected[$k]}]}" "${results[$k]}" "${counts[$k]}" \
    "${times[$k]}" "${names[$k]}"
  [[ "${results[$k]}" == KILLED ]] || bad=1
done
echo "logs: $logs"
exit "$bad"
