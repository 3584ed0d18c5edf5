#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, clang 14, with ASan+UBSan) of the parsers that take
# untrusted input: the wire envelope and the workflow file.
#   scripts/fuzz.sh            30 s per target (CI runs it with 20)
#   scripts/fuzz.sh 3600       an hour per target
#   scripts/fuzz.sh --build-only   build the fuzzers, run nothing
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
# Rebuilt only when a file the fuzzers are built from is newer than both binaries. Each source
# is compiled once, to an object shared by both fuzzers, with one compiler per core: built one
# fuzzer after the other, in one compiler call each, this was most of the script's CI time.
sources=(tests/fuzz/fuzz_envelope.cpp tests/fuzz/fuzz_workflow.cpp "${domain_src[@]}" "${core_src[@]}")
if [ -x "$out/fuzz_envelope" ] && [ -x "$out/fuzz_workflow" ] &&
   [ -z "$(find tests/fuzz order-status-service/src/domain libs/core -type f -newer "$out/fuzz_envelope" -print -quit)" ] &&
   [ -z "$(find tests/fuzz order-status-service/src/domain libs/core -type f -newer "$out/fuzz_workflow" -print -quit)" ]; then
  echo "[fuzz] fuzzers are up to date"
else
  echo "[fuzz] building fuzz_envelope and fuzz_workflow (${#sources[@]} sources, $(nproc) at a time)"
  rm -rf "$out/obj" && mkdir -p "$out/obj"
  export CXX out
  printf '%s\n' "${sources[@]}" | FLAGS="${flags[*]}" xargs -P "$(nproc)" -I{} sh -c \
    'o="$out/obj/$(echo "$1" | tr / _).o"; $CXX $FLAGS -c "$1" -o "$o" || { echo "[fuzz] compiling $1 FAILED" >&2; exit 255; }' _ {}
  shared=()
  for s in "${domain_src[@]}" "${core_src[@]}"; do shared+=("$out/obj/$(echo "$s" | tr / _).o"); done
  for target in envelope workflow; do
    "$CXX" "${flags[@]}" "$out/obj/tests_fuzz_fuzz_$target.cpp.o" "${shared[@]}" -lfmt -o "$out/fuzz_$target.tmp"
    mv "$out/fuzz_$target.tmp" "$out/fuzz_$target"
  done
fi
[ "$build_only" = 0 ] || exit 0
# Both fuzzers run at once, each on its own core when there are two.
fuzz() {  # fuzz TARGET
  mkdir -p "$out/$1/corpus"
  cp -n tests/fuzz/corpus/$1/* "$out/$1/corpus/" 2>/dev/null || true
  (cd "$out/$1" && "../fuzz_$1" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
     -print_final_stats=1 corpus >"run.log" 2>&1)
}
echo "[fuzz] running envelope and workflow for ${seconds}s each"
declare -A pid
for target in envelope workflow; do fuzz "$target" & pid[$target]=$!; done
failed=0
for target in envelope workflow; do
  if wait "${pid[$target]}"; then
    echo "[fuzz] $target: $(grep -E "stat::number_of_executed_units" "$out/$target/run.log" | tail -1)"
  else
    tail -40 "$out/$target/run.log"; echo "[fuzz] $target FAILED (crash inputs in $out/$target/)" >&2; failed=1
  fi
done
[ "$failed" = 0 ] || exit 1
echo "[fuzz] no crashes"
