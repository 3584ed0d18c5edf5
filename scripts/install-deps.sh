#!/usr/bin/env bash
# Installs the Debian 12 packages the build, the servers and the tests need, when missing.
# As root it runs apt-get; otherwise it prints the exact command to run.
#   scripts/install-deps.sh            build + servers + tests
#   scripts/install-deps.sh --browser  also Chromium and Node.js for the dashboard test
#   scripts/install-deps.sh --ops      also docker-compose and prometheus (promtool) for CI checks
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config git python3 iproute2
      libpqxx-dev libpq-dev librabbitmq-dev libboost-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
      libssl-dev libgtest-dev libgmock-dev googletest libbenchmark-dev
      postgresql-15 postgresql-client-15 rabbitmq-server clang-14 libclang-rt-14-dev)
for a in "$@"; do
  case "$a" in
    --browser) pkgs+=(chromium nodejs npm) ;;
    --ops) pkgs+=(docker-compose prometheus) ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node/npm may come from elsewhere than Debian (e.g. a preinstalled Node.js whose package
# already ships npm and conflicts with Debian's npm); accept working commands.
if command -v node >/dev/null && command -v npm >/dev/null; then
  kept=()
  for p in "${missing[@]}"; do
    case "$p" in nodejs|npm) ;; *) kept+=("$p") ;; esac
  done
  missing=("${kept[@]}")
fi
read -r -a missing <<<"${missing[*]:-}"
if [ "${#missing[@]}" -eq 0 ]; then echo "[deps] all present"; exit 0; fi
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
  echo "[deps] missing: ${missing[*]}" >&2
  echo "[deps] run as root: apt-get update && $cmd" >&2
  exit 2
fi
echo "[deps] installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The rabbitmq-server and postgresql packages try to start system-wide servers; we never use
# them (our own nodes run from scripts/servers.sh), so keep them from starting.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "[deps] done"
