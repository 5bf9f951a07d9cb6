#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds if needed, runs unit and integration
# tests (integration tests start real redis-servers on loopback; none is left behind).
#   scripts/test.sh            all tests, build/
#   scripts/test.sh asan|tsan  unit tests under ASan+UBSan or TSan, build-asan/ or build-tsan/
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
preset="${1:-default}"
if [ "$preset" = default ]; then
  scripts/build.sh default
  ctest --preset default -j2 --timeout 600
else
  scripts/build.sh "$preset" unit_tests
  ctest --preset "$preset" -j2 --timeout 600
fi
