#!/usr/bin/env bash
# Configures and builds a CMake preset (default: "default" → build/). Idempotent and incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-default}"
case "$preset" in
  default) dir=build ;;
  *) dir="build-$preset" ;;
esac
[ -f "$dir/CMakeCache.txt" ] || cmake --preset "$preset" >/dev/null
set +e
cmake --build "$dir" -j"$(nproc)" | grep -vE '^\[ *[0-9]+%\] (Building|Linking)|^make\['
rc=${PIPESTATUS[0]}
set -e
exit "$rc"
