#!/usr/bin/env bash
# How well does `lockstorm explore` find and shrink known bugs?
#
# Explores each entry of the table below (a mutant or a correct lock, the fault groups to draw
# from, the nodes) with one seed and fixed budgets, then prints one Markdown row per entry:
# found or not, in which case and after how long, fault events first → minimal, shrink steps
# and runs, how often the minimal schedule reproduced, and what it violated. The correct locks
# are expected to spend their budget with no violation.
#
#   scripts/explore-acceptance.sh                      # the whole table, ~30-45 min
#   ONLY="no-ttl redlock" BUDGET=30 scripts/explore-acceptance.sh
#
# Env: LOCKSTORM_BIN (default build/lockstorm), SEED (1), BUDGET (60 s of search),
# SHRINK_BUDGET (90 s), CONFIRM (5 runs), OUT (runs/explore-acceptance), ONLY (impl names).
# Output: the table on stdout and OUT/acceptance.md; each explore's run dir under OUT/.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${LOCKSTORM_BIN:-build/lockstorm}"
seed="${SEED:-1}"
budget="${BUDGET:-60}"
shrink_budget="${SHRINK_BUDGET:-90}"
confirm="${CONFIRM:-5}"
out="${OUT:-runs/explore-acceptance}"
only="${ONLY:-}"
[ -x "$bin" ] || { echo "explore-acceptance.sh: $bin not built (scripts/build.sh)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "explore-acceptance.sh: needs python3" >&2; exit 2; }

# impl | fault groups ("" = the workload alone) | nodes | expected (bug | correct)
table=(
  "get-then-set||1|bug"
  "del-release||1|bug"
  "token-dropped-before-release||1|bug"
  "bad-quorum||3|bug"
  "no-ttl|crash|1|bug"
  "setnx-expire|crash|1|bug"
  "wallclock-deadline|clock|1|bug"
  "no-drift|clock|3|bug"
  "no-elapsed-check|latency|3|bug"
  "redlock|restart|3|bug"
  "redlock|clock|3|bug"
  "token-lua|partition|1|correct"
  "redlock|partition,latency|3|correct"
)

mkdir -p "$out"
md="$out/acceptance.md"
{
  echo "| impl | faults | nodes | expected | found | case | time to find | faults first → minimal | shrink steps (runs) | reproduced | violations of the minimal schedule |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
} >"$md"
for row in "${table[@]}"; do
  IFS='|' read -r impl faults nodes expected <<<"$row"
  if [ -n "$only" ] && [[ " $only " != *" $impl "* ]]; then continue; fi
  dir="$out/$impl-${faults:-none}"
  dir="${dir//,/+}"
  rm -rf "$dir"
  args=(explore --impl "$impl" --nodes "$nodes" --budget "$budget" --shrink-budget "$shrink_budget"
        --confirm-runs "$confirm" --seed "$seed" --out "$dir")
  [ -n "$faults" ] && args+=(--faults "$faults")
  echo "== $impl, faults ${faults:-none}, $nodes node(s)" >&2
  set +e
  "$bin" "${args[@]}" >"$dir.log" 2>&1
  rc=$?
  set -e
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
    echo "| $impl | ${faults:-none} | $nodes | $expected | error (exit $rc, see $dir.log) |||||||" >>"$md"
    continue
  fi
  python3 - "$dir/explore.json" "$impl" "${faults:-none}" "$nodes" "$expected" >>"$md" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
impl, faults, nodes, expected = sys.argv[2:6]
if not j["found"]:
    print(f"| {impl} | {faults} | {nodes} | {expected} | no ({j['cases']} cases, "
          f"{j['elapsed_ms'] / 1000:.0f} s) | | | | | | |")
else:
    print(f"| {impl} | {faults} | {nodes} | {expected} | yes | {j['failing_case']} | "
          f"{j['time_to_find_ms'] / 1000:.1f} s | {j['first_faults']} → {j['minimal_faults']} | "
          f"{j['shrink_steps']} ({j['shrink_runs']}{', budget' if j['shrink_exhausted'] else ''}) | "
          f"{j['reproduced']}/{j['confirm_runs']} | {j['minimal_summary']} |")
EOF
done
cat "$md"
