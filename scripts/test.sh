#!/usr/bin/env bash
# The README's test command (and what .ci/run calls): installs what is missing, builds,
# starts throwaway PostgreSQL + RabbitMQ, runs unit, integration and end-to-end tests, then
# the sanitizer step (scripts/sanitizers.sh: unit tests and the hardest end-to-end tests under
# ASan+UBSan, the shared-state unit tests under TSan), the dashboard in headless Chromium,
# the fuzzers and the ops checks, and stops the servers again.
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
log "configure + build ($build)"
cmake -S . -B "$build" -G Ninja -DOSS_BUILD_TESTS=ON ${OSS_SANITIZE:+-DOSS_SANITIZE=$OSS_SANITIZE} \
  ${OSS_SANITIZE:+-DCMAKE_BUILD_TYPE=Debug} >/dev/null
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
log "unit tests (each test binary whole; scripts/test.sh -L unit runs one process per test)"
"$root/scripts/lib/run-test-binaries.py" . unit --jobs "$(nproc)" --timeout 300
timing "unit tests"
# Two lanes: the tests on the shared servers one at a time, and beside them the tests that start
# servers of their own (the 3-node cluster, the reliability scenarios): tests/CMakeLists.txt.
log "integration and end-to-end tests (real servers; logs of started programs in $OSS_TEST_LOG_DIR)"
ctest --output-on-failure --timeout 900 -j 2 -L integration
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
