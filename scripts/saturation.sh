#!/usr/bin/env bash
# Who saturates first as clients grow: redis-server or lockstorm?
#
# Runs `lockstorm run --impl token-lua` at 1, 10, 100 and 1000 clients (keys = clients, every
# hold 0 ms — a scenario file with one zero-length hold band — TTL 2 s, no contract samples)
# against one embedded redis-server, and for each step samples utime+stime of lockstorm and of
# its redis-server (pid from the run dir's servers.json) from /proc every 0.25 s. CPU % is
# over the intervals in which history.jsonl grew (the workload running; the connection setup
# of 1000 client threads, the liveness probes and the checkers are left out), in % of one
# CPU. cycles/s = acquired / safety-phase time, and acquire p50/p99, come from report.json.
#
#   scripts/saturation.sh                 # build-bench/lockstorm, placement split
#   LOCKSTORM_PIN=none CLIENTS="1 1000" DURATION=5 scripts/saturation.sh
#   KEYS=100000 CLIENTS=1000 scripts/saturation.sh   # keys (default: = clients): fewer collisions
#
# Placement (LOCKSTORM_PIN): split (default: lockstorm on CPU 0, redis on CPU 1 — each can
# use at most 100 %, so whichever reaches ~100 % first is the bottleneck), same, none.
# Output: a table on stdout, plus bench-results/saturation-<pin>.tsv. ~25 s per step.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${LOCKSTORM_BIN:-build-bench/lockstorm}"
pin="${LOCKSTORM_PIN:-split}"
clients_list="${CLIENTS:-1 10 100 1000}"
duration="${DURATION:-8}"
ttl_ms="${TTL_MS:-2000}"
[ -x "$bin" ] || { echo "saturation.sh: $bin not built (cmake --build build-bench --target lockstorm)" >&2; exit 2; }
# 1000 clients need > 1024 open files in lockstorm, and redis-server inherits the limit
# (maxclients = limit - 32). Until lockstorm raises it itself (harness/limits.h), raise the
# soft limit to the hard one here.
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
hz=$(getconf CLK_TCK)
work=$(mktemp -d /tmp/lockstorm-saturation-XXXXXX)
trap 'rm -rf "$work"' EXIT
cat >"$work/scenario.json" <<EOF
{"name": "saturation", "description": "uncontended-ish cycles with zero holds",
 "workload": {"clients": 1, "keys": 1, "duration_ms": 1000, "ttl_ms": $ttl_ms,
              "wait_ms": $((2 * ttl_ms)),
              "holds": [{"weight": 1, "lo_ttl_frac": 0, "hi_ttl_frac": 0}]}}
EOF

ticks() {  # utime+stime of pid $1 in clock ticks (empty if gone)
  awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || true
}
runq_ns() {  # time every thread of pid $1 spent runnable but waiting for a CPU (schedstat), ns
  { cat /proc/"$1"/task/*/schedstat 2>/dev/null || true; } | awk '{s += $2} END {printf "%.0f", s}'
}

mkdir -p bench-results
tsv="bench-results/saturation-$pin.tsv"
printf 'clients\tcycles_per_s\tacq_p50_us\tacq_p99_us\tredis_cpu_pct\tlockstorm_cpu_pct\tredis_cpu_us_per_cycle\tlockstorm_cpu_us_per_cycle\tredis_runq_pct\tlockstorm_runq_pct\tunknown\tverdict\tsteal_pct\n' >"$tsv"
echo "lockstorm saturation: token-lua, keys = clients, hold 0, ttl $ttl_ms ms, ${duration} s per step, pin $pin, $(nproc) CPUs, open files $(ulimit -Sn)"
for c in $clients_list; do
  out="$work/run-$c"
  "$bin" run --impl token-lua --scenario "$work/scenario.json" --clients "$c" --keys "${KEYS:-$c}" \
    --duration "$duration" --ttl-ms "$ttl_ms" --no-samples --pin "$pin" --quiet --seed 1 \
    --out "$out" >"$work/log-$c" 2>&1 &
  lpid=$!
  rpid=""
  samples="$work/samples-$c"
  : >"$samples"
  # Sample every 0.25 s until lockstorm exits: time, lockstorm ticks, redis ticks, history size.
  while kill -0 "$lpid" 2>/dev/null; do
    if [ -z "$rpid" ] && [ -s "$out/servers.json" ]; then
      rpid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["pid"])' \
             "$out/servers.json" 2>/dev/null || true)
    fi
    if [ -n "$rpid" ]; then
      lt=$(ticks "$lpid"); rt=$(ticks "$rpid")
      hs=$(stat -c %s "$out/history.jsonl" 2>/dev/null || echo 0)
      lw=$(runq_ns "$lpid"); rw=$(runq_ns "$rpid")
      st=$(awk '/^cpu /{print $9}' /proc/stat)  # steal: time the hypervisor ran something else
      [ -n "$lt" ] && [ -n "$rt" ] && echo "$(date +%s.%N) $lt $rt $hs $lw $rw $st" >>"$samples"
    fi
    sleep 0.25
  done
  rc=0; wait "$lpid" || rc=$?
  if [ ! -f "$out/report.json" ]; then
    echo "clients $c: lockstorm exited $rc without a report:"; tail -5 "$work/log-$c"; continue
  fi
  python3 - "$out/report.json" "$samples" "$hz" "$c" "$(nproc)" >>"$tsv" <<'PY'
import json, sys
report, samples, hz, clients = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
ncpu = int(sys.argv[5])
row = json.load(open(report))["results"][0]
acq = row["latency_us"]["acquire"]
cycles = row["counts"]["acquired"] / (row["elapsed_us"] / 1e6) if row["elapsed_us"] else 0
s = [tuple(map(float, l.split())) for l in open(samples) if len(l.split()) == 7]
# Intervals in which the history grew: the workload was running. Drop the first and last
# such interval (partial), unless that leaves nothing.
active = [i for i in range(1, len(s)) if s[i][3] > s[i - 1][3]]
if len(active) > 2:
    active = active[1:-1]
dt = sum(s[i][0] - s[i - 1][0] for i in active)
lk = sum(s[i][1] - s[i - 1][1] for i in active)
rd = sum(s[i][2] - s[i - 1][2] for i in active)
lw = sum(max(s[i][4] - s[i - 1][4], 0) for i in active)  # thread exits make it drop
rw = sum(max(s[i][5] - s[i - 1][5], 0) for i in active)
st = sum(s[i][6] - s[i - 1][6] for i in active)
pct = lambda t: 100.0 * t / hz / dt if dt > 0 else float("nan")
per_cycle = lambda t: 1e6 * t / hz / (cycles * dt) if dt > 0 and cycles > 0 else float("nan")
wait = lambda ns: 100.0 * ns / 1e9 / dt if dt > 0 else float("nan")
print(f"{clients}\t{cycles:.0f}\t{acq['p50']}\t{acq['p99']}\t{pct(rd):.0f}\t{pct(lk):.0f}\t"
      f"{per_cycle(rd):.1f}\t{per_cycle(lk):.1f}\t{wait(rw):.0f}\t{wait(lw):.0f}\t"
      f"{row['counts']['unknown']}\t{row['verdict']}\t{pct(st) / ncpu:.0f}")
PY
done

python3 - "$tsv" "$pin" "$(nproc)" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
pin, ncpu = sys.argv[2], int(sys.argv[3])
print(f"{'clients':>7} {'cycles/s':>8} {'acq p50':>8} {'acq p99':>8} {'redis':>6} {'lockstorm':>9} "
      f"{'redis':>6} {'lockstorm':>9} {'redis':>6} {'lockstorm':>9} {'unknown':>7} {'steal':>6}  verdict")
print(f"{'':>7} {'':>8} {'us':>8} {'us':>8} {'CPU%':>6} {'CPU%':>9} {'us/cyc':>6} {'us/cyc':>9} "
      f"{'runq%':>6} {'runq%':>9} {'':>7} {'%':>6}")
for r in rows:
    print(f"{r['clients']:>7} {r['cycles_per_s']:>8} {r['acq_p50_us']:>8} {r['acq_p99_us']:>8} "
          f"{r['redis_cpu_pct']:>6} {r['lockstorm_cpu_pct']:>9} {r['redis_cpu_us_per_cycle']:>6} "
          f"{r['lockstorm_cpu_us_per_cycle']:>9} {r['redis_runq_pct']:>6} "
          f"{r['lockstorm_runq_pct']:>9} {r['unknown']:>7} {r['steal_pct']:>6}  {r['verdict']}")
# steal% = % of the machine's CPU time the hypervisor gave to other guests meanwhile (a
# shared host: CPU% and cycles/s then vary from run to run; the CPU µs per cycle less so).
# CPU% is in % of one CPU; runq% = % of the time the process's threads spent runnable but
# waiting for a CPU (summed over threads: 300 = three threads waiting all the time).
# Demand = (CPU% + runq%) / what the process can use: redis (one thread) one CPU; lockstorm
# one CPU under split and same, under none the machine minus redis. A process whose demand
# reaches 90 % always has work: it is saturated (on a busy machine, at its share of the CPU).
def cap_l(rc):
    return 100.0 if pin in ("split", "same") else 100.0 * ncpu - min(rc, 100.0)
first = None
for r in rows:
    rc, lc = float(r["redis_cpu_pct"]), float(r["lockstorm_cpu_pct"])
    rq, lq = float(r["redis_runq_pct"]), float(r["lockstorm_runq_pct"])
    rd, ld = (rc + rq) / 100.0, (lc + lq) / cap_l(rc)
    if rd >= 0.9 or ld >= 0.9:
        if rd >= 0.9 and ld >= 0.9:  # both: the one needing more of its CPU per cycle
            rcpc, lcpc = float(r["redis_cpu_us_per_cycle"]), float(r["lockstorm_cpu_us_per_cycle"])
            who = "redis-server" if rcpc / 100.0 >= lcpc / cap_l(rc) else "lockstorm"
        else:
            who = "redis-server" if rd >= 0.9 else "lockstorm"
        first = f"{who} (at {r['clients']} clients, pin {pin}: demand redis {100 * rd:.0f} %, lockstorm {100 * ld:.0f} %)"
        break
print(f"first to saturate: {first or 'neither (demand below 90 %)'}")
busy = [r["clients"] for r in rows
        if float(r["redis_runq_pct"]) > 0.5 * float(r["redis_cpu_pct"]) and
        float(r["lockstorm_runq_pct"]) > 0.5 * float(r["lockstorm_cpu_pct"])]
if busy:
    print(f"warning: at {', '.join(busy)} clients both processes waited for a CPU more than half "
          f"as long as they ran: other work shares these CPUs; the CPU-per-cycle projection "
          f"below does not depend on it")
if rows:
    r = rows[-1]
    rcpc, lcpc = float(r["redis_cpu_us_per_cycle"]), float(r["lockstorm_cpu_us_per_cycle"])
    if pin == "split":
        caps = {"redis-server": 1e6 / rcpc, "lockstorm": 1e6 / lcpc}
    elif pin == "same":
        caps = {"both (one CPU)": 1e6 / (rcpc + lcpc)}
    else:
        caps = {"redis-server": 1e6 / rcpc, "lockstorm": ncpu * 1e6 / (rcpc + lcpc)}
    who = min(caps, key=caps.get)
    print(f"projection for an otherwise idle machine at {r['clients']} clients: lockstorm "
          f"{lcpc:.0f} us CPU/cycle, redis {rcpc:.0f} us/cycle -> caps " +
          ", ".join(f"{k} {v:.0f}/s" for k, v in caps.items()) + f": {who} saturates first")
PY
