#!/usr/bin/env bash
# Cluster mode on this machine, with redis-benchmark (50 clients, 100-byte values):
#  1. throughput of group `default` with 1 node group and with 3 (each 1 primary + 1
#     replica, 6 datanodes, AppendFsync everysec), through the proxy (primary) endpoint,
#     and with 3 through the configuration endpoint (redis-benchmark --cluster);
#  2. a resharding 3 -> 4 node groups of a group holding KEYS keys while redis-benchmark
#     writes: how long it takes, how many keys moved, the SET rate during it against before.
# Usage: bench/cluster.sh [requests] [keys]   (default 200000 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
KEYS=${2:-1000000}

source bench/lib.sh

UP_PID=
start() { # shards
  F=$(free_run 16); A=$(free_run 3); D=$(free_run 6)
  rm -rf "$WORK/ferrocache"
  "$BIN" up --data-dir "$WORK/ferrocache" --port "$F" --admin-port "$A" --datanode-port "$D" \
    --datanodes 6 --shards "$1" --replicas 1 > "$WORK/up.log" 2>&1 &
  UP_PID=$!; PIDS+=("$UP_PID")
  for _ in $(seq 1 120); do grep -q "Press Ctrl-C" "$WORK/up.log" && break; sleep 0.5; done
  grep -q "Press Ctrl-C" "$WORK/up.log" || { cat "$WORK/up.log"; echo "ferrocache did not start" >&2; exit 1; }
}
stop() {
  kill -INT "$UP_PID"; wait "$UP_PID" 2>/dev/null || true
}
rps() { # port test pipeline [extra redis-benchmark flags]
  local port=$1 t=$2 p=$3; shift 3
  redis-benchmark -p "$port" -n "$N" -c 50 -d 100 -P "$p" -r 100000 --csv -q -t "$t" "$@" 2>/dev/null \
    | awk -F'","' '/^"/ && !/^"test"/ { gsub(/"/, "", $0); split($0, f, ","); print f[2]; exit }'
}

echo "| node groups | endpoint | test | pipeline | requests/s |"
echo "|---|---|---|---|---|"
for shards in 1 3; do
  start "$shards"
  for P in 1 16; do
    for T in set get; do
      echo "| $shards | proxy | ${T^^} | $P | $(rps "$F" "$T" "$P") |"
    done
  done
  if [ "$shards" = 3 ]; then
    for P in 1 16; do
      for T in set get; do
        echo "| $shards | configuration (--cluster) | ${T^^} | $P | $(rps "$((F + 2))" "$T" "$P" --cluster) |"
      done
    done
  fi
  stop
done

echo
echo "Resharding 3 -> 4 node groups holding $KEYS keys:"
start 3
python3 -c "
import sys
for i in range($KEYS):
    sys.stdout.write(f'SET key:{i} {i}\r\n')
" | redis-cli -p "$F" --pipe > "$WORK/load.log"
echo "  loaded: $(redis-cli -p "$F" dbsize) keys"
before=$(rps "$F" set 1)
echo "  SET rate before: $before requests/s"
start_ns=$(date +%s%N)
"$BIN" modify-replication-group-shard-configuration --endpoint "http://127.0.0.1:$A" \
  --replication-group-id default --node-group-count 4 --apply-immediately > /dev/null
during=$(rps "$F" set 1)
while "$BIN" describe-replication-groups --endpoint "http://127.0.0.1:$A" --replication-group-id default \
    | grep -q '"Status": "modifying"'; do sleep 0.2; done
end_ns=$(date +%s%N)
echo "  SET rate while slots move: $during requests/s (ratio $(python3 -c "print(f'{$during / $before:.2f}')"))"
echo "  resharding took $(( (end_ns - start_ns) / 1000000 )) ms; keys afterwards: $(redis-cli -p "$F" dbsize)"
"$BIN" describe-events --endpoint "http://127.0.0.1:$A" --source-type replication-group \
  | grep -o 'Resharding of default completed[^"]*' | tail -1 | sed 's/^/  /'
stop
