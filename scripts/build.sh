#!/usr/bin/env bash
# Configures and builds a CMake preset (default: "default" → build/), optionally one target.
# Idempotent and incremental.   scripts/build.sh [PRESET [TARGET]]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-default}"
target="${2:-all}"
case "$preset" in
  default) dir=build ;;
  *) dir="build-$preset" ;;
esac
[ -f "$dir/CMakeCache.txt" ] || cmake --preset "$preset" >/dev/null
set +e
cmake --build "$dir" -j"$(nproc)" --target "$target" | grep -vE '^\[ *[0-9]+%\] (Building|Linking)|^make\['
rc=${PIPESTATUS[0]}
set -e
exit "$rc"
