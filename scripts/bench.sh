#!/usr/bin/env bash
# Benchmarks in one sitting with one CPU placement:
#   1. redis-benchmark, 1 connection, `SET k v NX PX 10000`, against a redis-server of its own;
#   2. build-release/lockstorm_bench: each built-in lock's uncontended acquire+release cycle,
#      a bare hiredis loop doing the same commands, lockstorm's transport doing that SET, the
#      fault proxy's overhead, the checker's throughput, and (bench/runner_bench.cc) the full
#      runner path vs a bare hiredis loop, interleaved in one run (BM_RunnerVsBare: cycles/s,
#      acquire p50/p99, CPU per cycle and their ratios as user counters).
# The placement goes into the JSON context (pin, lockstorm_cpus, server_cpus) and into the
# first line of bench-results/redis-benchmark.txt.
# Placement: LOCKSTORM_PIN=split (default: clients on CPU 0, servers on CPU 1), same (all on
# CPU 0) or none. JSON goes to bench-results/ (Google Benchmark's format, with context).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release lockstorm_bench
pin="${LOCKSTORM_PIN:-split}"
export LOCKSTORM_PIN="$pin"
client_cpu=0; server_cpu=1
[ "$pin" = same ] && server_cpu=0
[ "$(nproc)" -lt 2 ] && server_cpu=0
mkdir -p bench-results
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset_s=(); taskset_c=()
if [ "$pin" != none ]; then taskset_s=(taskset -c "$server_cpu"); taskset_c=(taskset -c "$client_cpu"); fi
"${taskset_s[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$tmp" --logfile "$tmp/redis.log" --daemonize no &
server_pid=$!
trap 'kill $server_pid 2>/dev/null; wait $server_pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
echo "== redis-benchmark -c 1 SET k v NX PX 10000 (pin=$pin: client cpu $client_cpu, server cpu $server_cpu)"
{
  echo "pin=$pin client_cpus=$([ "$pin" = none ] && echo all || echo "$client_cpu")" \
       "server_cpus=$([ "$pin" = none ] && echo all || echo "$server_cpu")"
  "${taskset_c[@]}" redis-benchmark -p "$port" -c 1 -n 100000 -q SET lockstorm:bench:k v NX PX 10000
} | tee bench-results/redis-benchmark.txt
echo "== lockstorm_bench (pin=$pin)"
build-release/lockstorm_bench --benchmark_min_time=2 --benchmark_out=bench-results/lockstorm_bench.json \
  --benchmark_out_format=json "$@"
