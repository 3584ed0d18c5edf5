#!/usr/bin/env bash
# A/B runs of e2e_bench, alternating, each on freshly started servers.
#
# Servers that have served earlier runs or tests carry their state into the next run (quorum
# queues left by tests, WAL and segment files, dropped databases' leftovers), and a later run
# on them is slower: in one session the NOTIFY-off p99 at 2,000/s went from 161 to 525 ms over
# five runs on the same servers (docs/performance.md). Each run here gets its own PostgreSQL
# and RabbitMQ, started by scripts/servers.sh under DIR and stopped afterwards.
#
# usage: bench/e2e_ab.sh OUT ROUNDS 'A=BIN_DIR [e2e_bench flags]' 'B=BIN_DIR [flags]' [-- COMMON FLAGS]
#   e.g. bench/e2e_ab.sh /tmp/ab 2 "A=/tmp/old/bin" "B=build/bin" -- --phases steady --steady-rates "" --steady-seconds 30
#   Variant flags are split on spaces. Each run writes OUT-<name><round>.md and .log;
#   OUT.progress lists finished runs. Environment: OSS_AB_DIR (servers, default .run/ab),
#   OSS_PG_FSYNC (default on, as for benchmarks).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 4 ] || { sed -n 2,15p "$0"; exit 2; }
out=$1 rounds=$2
shift 2
variants=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do variants+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
common=("$@")
[ "${#variants[@]}" -ge 2 ] || { echo "e2e_ab: at least two variants NAME=BIN_DIR [flags]" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]?$ ]] || { echo "e2e_ab: ROUNDS must be 1..99" >&2; exit 2; }
dir=$(realpath -m "${OSS_AB_DIR:-.run/ab}")
bench=build/bin/e2e_bench
[ -x "$bench" ] || bench=build-pch/bin/e2e_bench
[ -x "$bench" ] || { echo "e2e_ab: build e2e_bench first (cmake --build build)" >&2; exit 2; }
trap 'scripts/servers.sh stop "$dir" >/dev/null 2>&1 || true' EXIT
for r in $(seq 1 "$rounds"); do
  for v in "${variants[@]}"; do
    name=${v%%=*} rest=${v#*=}
    read -r -a words <<<"$rest"
    bin_dir=${words[0]}
    scripts/servers.sh stop "$dir" >/dev/null 2>&1 || true
    rm -rf "$dir"
    OSS_PG_FSYNC=${OSS_PG_FSYNC:-on} scripts/servers.sh start "$dir" >/dev/null
    # shellcheck disable=SC1091
    source "$dir/env"
    rc=0
    timeout 1800 "$bench" --pg-base "$OSS_TEST_PG_URL_BASE" --amqp "$OSS_TEST_AMQP_URL" --bin-dir "$bin_dir" \
      --servers-dir "$dir" "${common[@]}" "${words[@]:1}" --markdown-out "$out-$name$r.md" >"$out-$name$r.log" 2>&1 || rc=$?
    echo "$name$r rc=$rc $(date -u +%H:%M:%S)" >>"$out.progress"
  done
done
echo "done" >>"$out.progress"
