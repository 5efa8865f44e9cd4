#!/usr/bin/env bash
# CPU time per request, by process: what each request costs the machine, summed over every
# process that serves it (user + system time from /proc, in microseconds per request).
# Unlike requests/s it barely depends on what else the shared machine is doing, so it shows
# whether a change made the path cheaper. Same set-up as compare.sh: a Redis primary with 2
# replicas (appendonly, appendfsync $FSYNC) and a Ferrocache group with 2 replicas
# (AppendFsync $FSYNC); redis-benchmark with 50 clients and 100-byte values.
#
# Usage: [FSYNC=always|everysec|no] bench/cpu.sh [requests] [tests]   (default 200000 "set get")
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
TESTS=${2:-set get}
FSYNC=${FSYNC:-everysec}

source bench/lib.sh

start_redis_group "$FSYNC"
start_ferrocache --append-fsync "$FSYNC"

# "kind pid" for every process of a system: Redis's servers, or Ferrocache's children of `up`.
redis_procs() { echo "primary ${PIDS[0]}"; for p in "${PIDS[@]:1:2}"; do echo "replica $p"; done; }
ferro_procs() {
  for p in $(pgrep -P "$UP"); do
    echo "$(tr '\0' ' ' < "/proc/$p/cmdline" | awk '{print ($2 == "datanode" ? $4 : $2)}') $p"
  done
}
# Total user+system ticks per kind.
ticks() {
  while read -r kind pid; do
    echo "$kind $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)"
  done | awk '{t[$1] += $2} END {for (k in t) print k, t[k]}' | sort
}
HZ=$(getconf CLK_TCK)

measure() { # system port test pipeline
  local procs=$1 port=$2 test=$3 pipe=$4 before after
  before=$($procs | ticks)
  redis-benchmark -p "$port" -c 50 -n "$N" -d 100 -r 100000 -P "$pipe" -t "$test" -q > /dev/null
  after=$($procs | ticks)
  join <(echo "$before") <(echo "$after") | while read -r kind b a; do
    printf '%s=%.1f ' "$kind" "$(echo "($a - $b) * 1000000 / $HZ / $N" | bc -l)"
  done
}

echo "CPU microseconds per request (user + system), $N requests each, appendfsync $FSYNC"
echo
echo "| test | pipeline | redis (primary, 2 replicas summed) | ferrocache, by process (datanode-a the primary) |"
echo "|---|---|---|---|"
for test in $TESTS; do
  for pipe in 1 16; do
    r=$(measure redis_procs "$R" "$test" "$pipe")
    f=$(measure ferro_procs "$F" "$test" "$pipe")
    echo "| ${test^^} | $pipe | $r | $f |"
  done
done
