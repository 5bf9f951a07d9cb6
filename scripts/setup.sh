#!/usr/bin/env bash
# Installs what lockstorm needs from Debian's packages (and the node adapter's npm packages).
# Idempotent: installs only what is missing. Needs root only when something is missing.
#   scripts/setup.sh        what building and running lockstorm needs
#   scripts/setup.sh test   also what the tests need (chromium, for the HTML report's test)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake pkg-config git
  libhiredis-dev libssl-dev openssl librapidcheck-dev nlohmann-json3-dev libbenchmark-dev libgtest-dev libgmock-dev
  libcli11-dev redis-server redis-tools redis-sentinel python3 python3-redis)
if [ "${1:-}" = test ]; then PACKAGES+=(chromium fonts-liberation); fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node may come from elsewhere than Debian (as on this project's machines): only a missing
# node/npm command asks for Debian's packages.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/setup.sh: missing Debian packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 4
  fi
  echo "scripts/setup.sh: installing ${missing[*]}"
  # Packages must not start services (a system redis-server on 6379) on install.
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

# The node-redlock adapter's dependencies (npm registry), if npm is there.
if command -v npm >/dev/null 2>&1 && [ -x impls/exec/node/install.sh ]; then
  impls/exec/node/install.sh >/dev/null || echo "scripts/setup.sh: warning: npm install for impls/exec/node failed; the node adapter test will be skipped" >&2
fi
exit 0
