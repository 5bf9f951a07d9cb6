#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds if needed, runs unit and integration
# tests (integration tests start real redis-servers on loopback).
#   scripts/test.sh            all tests (build/)
#   scripts/test.sh asan|tsan  unit tests under ASan+UBSan or TSan (build-asan/, build-tsan/)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
preset="${1:-default}"
scripts/build.sh "$preset"
if [ "$preset" = default ]; then
  ctest --preset default -j2 --timeout 600
else
  ctest --preset "$preset" -j2 --timeout 600
fi
