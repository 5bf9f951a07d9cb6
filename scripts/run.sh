#!/usr/bin/env bash
# The main job: installs what is missing, builds if needed, starts its own redis-servers, runs
# every built-in lock through the contention scenario and writes the report. Extra arguments
# go to `lockstorm run` (e.g. --impl token-lua --duration 5 --out runs/mine).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh default
exec build/lockstorm run --scenario contention "$@"
