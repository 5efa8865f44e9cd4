#!/usr/bin/env bash
# Failover time: starts a cluster (1 coordinator, 3 datanodes, 1 gateway; group of 1 primary
# + 2 replicas), then N times: kill -9 the primary's datanode while a writer retries SETs, and
# measures kill -> first acknowledged write. Restarts the killed datanode (it rejoins as a
# replica) before the next round. Prints every time and the median.
# Usage: bench/failover.sh [rounds]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-20}
command -v redis-cli >/dev/null || { apt-get update -qq >/dev/null && apt-get install -y -qq redis-tools >/dev/null; }
cargo build --release -q -p ferrocache
BIN=$PWD/target/release/ferrocache
WORK=$(mktemp -d)
declare -A PID
cleanup() {
  for p in "${PID[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

C=$(port); G=$(port); DN=()
start() { # name args...
  "$BIN" "${@:2}" >>"$WORK/$1.log" 2>&1 & PID[$1]=$!
}
start coordinator coordinator --id 1 --peers "1=127.0.0.1:$C" --listen "127.0.0.1:$C" --data-dir "$WORK/coordinator"
declare -A DNARGS
for z in a b c; do
  p=$(port)
  DNARGS[datanode-$z]="datanode --id datanode-$z --zone $z --listen 127.0.0.1:$p --data-dir $WORK/datanode-$z --coordinators 127.0.0.1:$C"
  # shellcheck disable=SC2086
  start "datanode-$z" ${DNARGS[datanode-$z]}
done
start gateway gateway --coordinators "127.0.0.1:$C" --grpc-listen "127.0.0.1:$G"
P=$(port)
"$BIN" create-replication-group --replication-group-id bench --replicas-per-node-group 2 --port "$P" \
  --wait-seconds 60 --endpoint "http://127.0.0.1:$C" >/dev/null

primary_datanode() {
  "$BIN" describe-replication-groups --replication-group-id bench --endpoint "http://127.0.0.1:$C" |
    python3 -c 'import json,sys; g=json.load(sys.stdin)["ReplicationGroups"][0]; print(next(m["DatanodeId"] for m in g["NodeGroups"][0]["NodeGroupMembers"] if m["CurrentRole"]=="primary"))'
}
all_online() {
  "$BIN" describe-replication-groups --replication-group-id bench --endpoint "http://127.0.0.1:$C" |
    python3 -c 'import json,sys; g=json.load(sys.stdin)["ReplicationGroups"][0]; ms=g["NodeGroups"][0]["NodeGroupMembers"]; sys.exit(0 if all(m["MemberStatus"]=="online" for m in ms) else 1)'
}

times=()
for round in $(seq 1 "$ROUNDS"); do
  for _ in $(seq 1 100); do all_online && break; sleep 0.2; done
  victim=$(primary_datanode)
  redis-cli -p "$P" set warm "$round" >/dev/null
  t0=$(date +%s.%N)
  kill -9 "${PID[$victim]}"
  wait "${PID[$victim]}" 2>/dev/null || true
  until [ "$(timeout 1 redis-cli -p "$P" set "after-$round" x 2>/dev/null)" = OK ]; do sleep 0.02; done
  t1=$(date +%s.%N)
  dt=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
  times+=("$dt")
  echo "round $round: killed $victim, first acknowledged write after ${dt}s"
  # shellcheck disable=SC2086
  start "$victim" ${DNARGS[$victim]}
done
python3 - "${times[@]}" <<'PY'
import statistics, sys
t = sorted(float(x) for x in sys.argv[1:])
print(f"rounds: {len(t)}  median: {statistics.median(t):.2f}s  min: {t[0]:.2f}s  max: {t[-1]:.2f}s")
PY
