#!/usr/bin/env bash
# lockstorm as a CI gate for a lock change: run one lock through chosen scenarios against
# embedded redis-servers, compare with a baseline, write a Markdown summary, and fail the job on
# an unexpected violation or a regression. The GitHub Actions and GitLab CI templates
# (templates/) call exactly this; run it locally to see what CI will do (docs/ci-gate.md).
#
#   scripts/ci-gate.sh --impl 'mylock=exec:python3 my_lock.py' \
#       [--scenarios contention,client-crash] [--baseline DIR] [--out DIR] \
#       [--repeat 3] [--duration SECONDS] [--clients N] [--seed 1] [--threshold-pct 25]
#
# --duration, --clients: seconds per run and clients (default: each scenario's own; a fault
#   scheduled later than a shorter duration is refused by `lockstorm run`).
# --baseline DIR: a previous gate's --out (e.g. main's, restored from a CI cache or artifact);
#   each scenario is compared with DIR/SCENARIO (`lockstorm compare`); scenarios missing from it
#   are reported and not compared. Without it only violations fail the gate.
# Output in --out (default runs/ci-gate): one run directory per scenario (report.json/md/html,
# junit.xml, history.jsonl), SCENARIO/compare.md, and summary.md — also appended to
# $GITHUB_STEP_SUMMARY when that is set.
# Exit: 0 the gate passes; 1 an unexpected violation (run exit 1 or 2) or a regression (compare
# exit 1); 3 a run was inconclusive or interrupted; 4 bad input or a run that could not start.
# Env: LOCKSTORM_BIN (default build/lockstorm, built by scripts/build.sh if missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

impl="" scenarios="contention,client-crash" baseline="" out="runs/ci-gate"
repeat=3 duration="" clients="" seed=1 threshold=25
die() { echo "ci-gate.sh: $*" >&2; exit 4; }
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) ;;
    *) [ $# -ge 2 ] || die "$1: expected a value after it" ;;
  esac
  case "$1" in
    --impl) impl="${2:-}"; shift 2 ;;
    --scenarios) scenarios="${2:-}"; shift 2 ;;
    --baseline) baseline="${2:-}"; shift 2 ;;
    --out) out="${2:-}"; shift 2 ;;
    --repeat) repeat="${2:-}"; shift 2 ;;
    --duration) duration="${2:-}"; shift 2 ;;
    --clients) clients="${2:-}"; shift 2 ;;
    --seed) seed="${2:-}"; shift 2 ;;
    --threshold-pct) threshold="${2:-}"; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (expected --impl, --scenarios, --baseline, --out, --repeat, --duration, --clients, --seed, --threshold-pct)" ;;
  esac
done
[ -n "$impl" ] || die "--impl: expected the lock under test, e.g. 'mylock=exec:python3 my_lock.py'"
[ -n "$scenarios" ] || die "--scenarios: expected a comma-separated list of scenarios"
[[ "$repeat" =~ ^[0-9]+$ ]] && [ "$repeat" -ge 1 ] || die "--repeat: expected a whole number >= 1, got '$repeat'"
if [ -n "$baseline" ] && [ ! -d "$baseline" ]; then
  die "--baseline: expected a directory (a previous gate's --out), got '$baseline'"
fi

bin="${LOCKSTORM_BIN:-$root/build/lockstorm}"
if [ ! -x "$bin" ]; then
  "$root/scripts/setup.sh" >&2
  "$root/scripts/build.sh" default lockstorm >&2
fi
[ -x "$bin" ] || die "LOCKSTORM_BIN: $bin is not an executable"

mkdir -p "$out" || die "--out: cannot create '$out'"
summary="$out/summary.md"
worst=0  # 0 pass, 3 inconclusive, 1 failed
fail() { worst=1; }
rows=()
IFS=',' read -r -a list <<<"$scenarios"
names=()
for s in "${list[@]}"; do
  # The run's directory: the scenario's name, or a scenario file's base name without .json.
  name="$(basename -- "$s")"
  name="${name%.json}"
  case "$name" in
    ""|.|..) die "--scenarios: bad entry '$s' (expected a scenario name or a .json file)" ;;
  esac
  names+=("$name")
  dir="$out/$name"
  rm -rf -- "$dir"
  set +e
  "$bin" run --impl "$impl" --scenario "$s" --repeat "$repeat" ${duration:+--duration "$duration"} \
    ${clients:+--clients "$clients"} \
    --seed "$seed" --out "$dir" --quiet --progress never >"$out/$name.log" 2>&1
  rc=$?
  set -e
  case "$rc" in
    0) run="pass" ;;
    1) run="**FAIL: safety violation**"; fail ;;
    2) run="**FAIL: liveness violation**"; fail ;;
    3) run="inconclusive"; [ "$worst" = 0 ] && worst=3 ;;
    *) echo "ci-gate.sh: scenario $s could not run (exit $rc): $(tail -n 1 "$out/$name.log")" >&2
       exit 4 ;;
  esac
  cmp="no baseline"
  if [ -n "$baseline" ]; then
    if [ -f "$baseline/$name/report.json" ]; then
      set +e
      "$bin" compare "$baseline/$name" "$dir" --threshold-pct "$threshold" \
        --out "$dir/compare.md" >/dev/null 2>"$out/$name.compare.err"
      crc=$?
      set -e
      case "$crc" in
        0) cmp="pass" ;;
        1) cmp="**FAIL: regression** (see below)"; fail ;;
        *) echo "ci-gate.sh: compare of $s failed (exit $crc): $(head -n 1 "$out/$name.compare.err")" >&2
           exit 4 ;;
      esac
    else
      cmp="not in the baseline"
    fi
  fi
  rows+=("| $name | $run | $cmp |")
done

{
  echo "# lockstorm gate: ${impl%%=*}"
  echo
  echo "seed $seed · $repeat repetition(s) per scenario${duration:+ of $duration s} · threshold ${threshold} %${baseline:+ · baseline $baseline}"
  echo
  echo "| scenario | run | compare with the baseline |"
  echo "|---|---|---|"
  printf '%s\n' "${rows[@]}"
  for name in "${names[@]}"; do
    echo
    # Each report's own headings, one level down.
    if [ -f "$out/$name/report.md" ]; then
      sed 's/^## /### /; s/^### \([A-Z]\)/#### \1/' "$out/$name/report.md"
    else
      echo "### $name: no report.md (see $out/$name.log)"
    fi
    if [ -f "$out/$name/compare.md" ]; then
      echo
      sed 's/^## /### /' "$out/$name/compare.md"
    fi
  done
} >"$summary"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat "$summary" >>"$GITHUB_STEP_SUMMARY"; fi
echo "ci-gate.sh: $(printf '%s\n' "${rows[@]}" | tr -d '*' | sed 's/^| //; s/ |$//; s/ | /: /; s/ | / · /' | paste -sd ';' -)"
echo "ci-gate.sh: summary $summary (exit $worst)"
exit "$worst"
