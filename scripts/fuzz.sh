#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, clang 14, with ASan+UBSan) of the parsers that take
# untrusted input: the wire envelope and the workflow file.
#   scripts/fuzz.sh            30 s per target (CI runs it with 20)
#   scripts/fuzz.sh 3600       an hour per target
#   scripts/fuzz.sh --build-only   build the fuzzers, run nothing (scripts/test.sh does this in
#                                  the background while the plain tests run)
# Crashes are written to .run/fuzz/<target>/ and fail the script.
set -euo pipefail
cd "$(dirname "$0")/.."
build_only=0
if [ "${1:-}" = --build-only ]; then build_only=1; shift; fi
seconds="${1:-30}"
out=.run/fuzz
mkdir -p "$out"
CXX=${FUZZ_CXX:-clang++-14}
command -v "$CXX" >/dev/null || { echo "[fuzz] $CXX not found (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 2; }
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -Iorder-status-service/src -Ilibs/core/include -DSPDLOG_FMT_EXTERNAL)
core_src=(libs/core/src/duration.cpp libs/core/src/time.cpp)
domain_src=(order-status-service/src/domain/workflow.cpp order-status-service/src/domain/shipped_workflow.cpp
            order-status-service/src/domain/envelope.cpp order-status-service/src/domain/state_machine.cpp)
for target in envelope workflow; do
  # Rebuilt only when a file it is built from is newer than the binary (the background build of
  # scripts/test.sh may have made it).
  if [ -x "$out/fuzz_$target" ] && [ -z "$(find tests/fuzz order-status-service/src/domain libs/core -type f \
        -newer "$out/fuzz_$target" -print -quit)" ]; then
    echo "[fuzz] $target is up to date"
  else
    echo "[fuzz] building $target"
    "$CXX" "${flags[@]}" "tests/fuzz/fuzz_$target.cpp" "${domain_src[@]}" "${core_src[@]}" -lfmt -o "$out/fuzz_$target.tmp"
    mv "$out/fuzz_$target.tmp" "$out/fuzz_$target"
  fi
done
[ "$build_only" = 0 ] || exit 0
for target in envelope workflow; do
  mkdir -p "$out/$target/corpus"
  cp -n tests/fuzz/corpus/$target/* "$out/$target/corpus/" 2>/dev/null || true
  echo "[fuzz] running $target for ${seconds}s"
  (cd "$out/$target" && "../fuzz_$target" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
     -print_final_stats=1 corpus >"run.log" 2>&1) || { tail -40 "$out/$target/run.log"; echo "[fuzz] $target FAILED" >&2; exit 1; }
  grep -E "stat::number_of_executed_units|cov:" "$out/$target/run.log" | tail -2
done
echo "[fuzz] no crashes"
