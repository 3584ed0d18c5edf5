#!/usr/bin/env bash
# The README's test command (and what .ci/run calls): installs what is missing, builds,
# starts throwaway PostgreSQL + RabbitMQ, runs the integration and end-to-end tests (two lanes:
# tests/CMakeLists.txt), then the sanitizer step (scripts/sanitizers.sh: every unit test and the
# hardest end-to-end tests under ASan+UBSan, the shared-state unit tests and the multi-threaded
# programs under TSan), the dashboard in headless Chromium, the fuzzers and the ops checks, and
# stops the servers again. The unit tests run in the sanitizer step only (once, instrumented);
# with OSS_SANITIZERS=0 they run plain before the integration tests.
#   scripts/test.sh              everything
#   scripts/test.sh -L unit      only unit tests (no servers needed) — any ctest arguments pass through
# Environment: BUILD_DIR (default build), OSS_SANITIZE ("address,undefined" to build the main
# build with sanitizers), OSS_SANITIZERS=0 (skip the sanitizer step; CI never does)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build="${BUILD_DIR:-build}"
log() { printf '[test] %s\n' "$*" >&2; }
step_start=$(date +%s)
timing() { local now; now=$(date +%s); log "$1 took $((now - step_start)) s"; step_start=$now; }

scripts/install-deps.sh --ops --browser
# The full run compiles and runs the unit tests once, under ASan+UBSan in the sanitizer step;
# with ctest arguments, or without the sanitizer step, the plain tree has them as usual.
plain_unit=ON
if [ "$#" -eq 0 ] && [ "${OSS_SANITIZERS:-1}" != 0 ] && [ -z "${OSS_SANITIZE:-}" ]; then plain_unit=OFF; fi
log "configure + build ($build)"
cmake -S . -B "$build" -G Ninja -DOSS_BUILD_TESTS=ON -DOSS_BUILD_UNIT_TESTS="$plain_unit" \
  ${OSS_SANITIZE:+-DOSS_SANITIZE=$OSS_SANITIZE} ${OSS_SANITIZE:+-DCMAKE_BUILD_TYPE=Debug} >/dev/null
cmake --build "$build" -j "$(nproc)"
timing "build"

servers_dir="$root/.run/test-servers"
export OSS_TEST_LOG_DIR="$root/.run/test-logs"
mkdir -p "$OSS_TEST_LOG_DIR"
# Absolute path: a failing step leaves the shell in the build directory.
cleanup() { "$root/scripts/servers.sh" stop "$servers_dir" >/dev/null 2>&1 || true; }
trap cleanup EXIT
log "starting PostgreSQL and RabbitMQ in $servers_dir"
scripts/servers.sh start "$servers_dir"
# shellcheck disable=SC1091
source "$servers_dir/env"

cd "$build"
if [ "$#" -gt 0 ]; then
  ctest --output-on-failure --timeout 900 "$@"
  exit $?
fi
if [ "$plain_unit" = ON ]; then
  log "unit tests (each test binary whole; scripts/test.sh -L unit runs one process per test)"
  "$root/scripts/lib/run-test-binaries.py" . unit --jobs "$(nproc)" --timeout 300
  timing "unit tests"
else
  log "unit tests: in the sanitizer step, under ASan+UBSan (and the shared-state ones under TSan)"
fi
# Two at a time: the tests with servers of their own (the 3-node cluster, the reliability
# scenarios) beside the others, and two tests on the shared servers at once except those that
# stop or kill them (tests/CMakeLists.txt, tests/resources.json).
log "integration and end-to-end tests (real servers; logs of started programs in $OSS_TEST_LOG_DIR)"
ctest --output-on-failure --timeout 900 -j 2 --resource-spec-file "$root/tests/resources.json" -L integration
timing "integration and end-to-end tests"
cd "$root"
if [ "${OSS_SANITIZERS:-1}" != 0 ]; then
  log "sanitizers (scripts/sanitizers.sh): ASan+UBSan and TSan builds, tests under them"
  # The plain tree's e2e test binaries run against the sanitized programs (no second compile).
  OSS_E2E_TEST_TREE="$build" scripts/sanitizers.sh
  timing "sanitizers"
fi
log "dashboard in headless Chromium (tests/browser)"
tests/browser/run.sh "$build"
timing "browser test"
log "fuzzing the envelope and workflow parsers (libFuzzer, ASan+UBSan), ${OSS_FUZZ_SECONDS:-20}s each"
scripts/fuzz.sh "${OSS_FUZZ_SECONDS:-20}"
timing "fuzzing"
log "ops checks (compose file, alert rules, dashboards, Dockerfile build steps, database roles)"
BUILD_DIR="$build" scripts/check-ops.sh
log "all tests passed"
