#!/usr/bin/env bash
# The build steps of docker/Dockerfile, runnable outside Docker too (scripts/check-ops.sh does).
#
#   docker/build.sh OUT_DIR
#
# 1. scripts/install-deps.sh             the Debian 12 build packages (as root: apt-get)
# 2. cmake configure (Ninja, RelWithDebInfo, no tests/benchmarks) + build of the two programs
# 3. installs them into OUT_DIR/usr/local/bin, the shipped workflow into OUT_DIR/etc/oss/, and
#    writes OUT_DIR/runtime-packages.txt: the Debian packages that hold the shared libraries
#    the programs load (the runtime stage installs exactly those).
#
# Environment: BUILD_DIR (default build-docker). When BUILD_DIR already holds a CMake cache it is
# reused as configured (only re-checked), so CI can skip a full rebuild; a fresh directory gets
# the Dockerfile's exact options.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:?usage: docker/build.sh OUT_DIR}"
build="${BUILD_DIR:-build-docker}"
log() { printf '[docker-build] %s\n' "$*" >&2; }
cd "$root"

"$root/scripts/install-deps.sh"

if [ -f "$build/CMakeCache.txt" ]; then
  log "reusing the configured build directory $build"
  cmake -S . -B "$build" >/dev/null
else
  log "configuring $build"
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOSS_BUILD_TESTS=OFF -DOSS_BUILD_BENCH=OFF >/dev/null
fi
log "building outbox-relay and order-status-service"
cmake --build "$build" --target outbox-relay order-status-service

mkdir -p "$out/usr/local/bin" "$out/etc/oss"
install -m 0755 "$build/bin/outbox-relay" "$build/bin/order-status-service" "$out/usr/local/bin/"
install -m 0755 "$root/docker/healthcheck.sh" "$out/usr/local/bin/oss-healthcheck"
install -m 0644 "$root/order-status-service/src/domain/shipped_workflow.json" "$out/etc/oss/workflow.json"

# Shared libraries → owning Debian packages. dpkg records /usr/lib paths (merged /usr), ldd may
# print /lib ones: try the resolved path, then the /usr spelling.
pkgs=$(ldd "$out/usr/local/bin/outbox-relay" "$out/usr/local/bin/order-status-service" |
  awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u | while read -r lib; do
    real=$(readlink -f "$lib")
    for p in "$real" "/usr${real#/usr}" "/usr$real" "$lib"; do
      if pkg=$(dpkg -S "$p" 2>/dev/null); then echo "${pkg%%:*}"; break; fi
    done
  done | sed 's/,.*//' | sort -u)
[ -n "$pkgs" ] || { log "could not map the programs' libraries to Debian packages"; exit 1; }
printf '%s\n' $pkgs >"$out/runtime-packages.txt"
log "runtime packages: $(tr '\n' ' ' <"$out/runtime-packages.txt")"
"$out/usr/local/bin/outbox-relay" --help >/dev/null
"$out/usr/local/bin/order-status-service" --help >/dev/null
log "done: $out"
