#!/usr/bin/env bash
# Memory per key: loads N keys (16-byte keys, 16-byte values, like `key:000000000042`) into a
# plain redis-server and into a Ferrocache group (no replicas, AppendFsync everysec), then
# prints bytes per key for each: Redis's used_memory and RSS growth, and the growth of the
# Ferrocache primary datanode's RSS (everything it holds: the keyspace, the log writer's
# buffers, gRPC buffers) next to Ferrocache's own used_memory estimate; then the same
# datanode after a restart (and how long the restart took until every key was served), and
# a replica added afterwards, after its full sync.
#
# Usage: bench/memory.sh [keys] [string|hll]   (default 1000000 string keys; `hll`: each
# key a HyperLogLog of three elements, `PFADD key a<i> b<i> c<i>`)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
KIND=${2:-string}

source bench/lib.sh

# The load, in RESP, for redis-cli --pipe.
python3 - "$N" "$KIND" > "$WORK/load.resp" <<'PY'
import sys
n, kind = int(sys.argv[1]), sys.argv[2]
out = sys.stdout.buffer
def command(*args):
    out.write(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
for i in range(n):
    k = b"key:%012d" % i
    if kind == "hll":
        command(b"PFADD", k, b"a%d" % i, b"b%d" % i, b"c%d" % i)
    else:
        command(b"SET", k, b"val:%012d" % i)
PY

rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
field() { redis-cli -p "$1" info memory | awk -F: -v f="$2" '$1 == f { gsub("\r", "", $2); print $2 }'; }

# Redis.
R=$(free_run 1)
redis-server --port "$R" --save "" --appendonly no --daemonize no --logfile "$WORK/redis.log" & RPID=$!; PIDS+=($RPID)
for _ in $(seq 1 50); do redis-cli -p "$R" ping >/dev/null 2>&1 && break; sleep 0.2; done
r_used0=$(field "$R" used_memory); r_rss0=$(rss_kb "$RPID")
redis-cli -p "$R" --pipe < "$WORK/load.resp" >/dev/null
r_used1=$(field "$R" used_memory); r_rss1=$(rss_kb "$RPID")

# Ferrocache: the launcher's cluster with a group without replicas.
F=$(free_run 2); A=$(free_run 4); D=$(free_run 3)
start_up() {
  UP_STARTED=$(date +%s.%N)
  : > "$WORK/up.log"
  "$BIN" up --data-dir "$WORK/ferrocache" --port "$F" --admin-port "$A" --datanode-port "$D" --replicas 0 > "$WORK/up.log" 2>&1 & UP=$!; PIDS+=($UP)
  for _ in $(seq 1 120); do grep -q "Press Ctrl-C" "$WORK/up.log" && break; sleep 0.5; done
  grep -q "Press Ctrl-C" "$WORK/up.log" || { cat "$WORK/up.log"; echo "ferrocache did not start" >&2; exit 1; }
}
start_up
primary=$("$BIN" describe-replication-groups --endpoint "http://127.0.0.1:$A" --output json \
  | python3 -c 'import json,sys; g=json.load(sys.stdin)["ReplicationGroups"][0]; print([m["DatanodeAddress"] for m in g["NodeGroups"][0]["NodeGroupMembers"] if m["CurrentRole"]=="primary"][0])')
dport=${primary##*:}
FPID=$(pgrep -f -- "datanode.*--listen 127.0.0.1:$dport" | head -1)
f_used0=$(field "$F" used_memory); f_rss0=$(rss_kb "$FPID")
redis-cli -p "$F" --pipe < "$WORK/load.resp" >/dev/null
sleep 2
f_used1=$(field "$F" used_memory); f_rss1=$(rss_kb "$FPID")
f_keys=$(redis-cli -p "$F" dbsize)

# The same datanode after a restart: the keyspace reloaded from sled, without what sled
# keeps in memory after a burst of writes.
kill -TERM "$UP"; wait "$UP" 2>/dev/null || true
start_up
# Up until every key is served again (the coordinators and gateways start meanwhile too).
for _ in $(seq 1 2400); do [ "$(redis-cli -p "$F" dbsize 2>/dev/null)" = "$N" ] && break; sleep 0.05; done
restart_s=$(python3 -c "import time; print(f'{time.time() - $UP_STARTED:.1f}')")
FPID=$(pgrep -f -- "datanode.*--listen 127.0.0.1:$dport" | head -1)
f_rss2=$(rss_kb "$FPID")
restart_log=$(cat "$WORK"/ferrocache/logs/datanode-*.log | grep -o 'node data loaded.*' | tail -1 || true)

# A replica added now gets a full sync; its datanode's RSS growth is what holding the
# copy costs.
before=$(for p in $(pgrep -f -- "ferrocache datanode"); do echo "$p:$(rss_kb "$p")"; done)
"$BIN" increase-replica-count --endpoint "http://127.0.0.1:$A" --replication-group-id default --new-replica-count 1 --apply-immediately >/dev/null
replica=""
for _ in $(seq 1 600); do
  replica=$("$BIN" describe-replication-groups --endpoint "http://127.0.0.1:$A" --output json \
    | python3 -c 'import json,sys; g=json.load(sys.stdin)["ReplicationGroups"][0]; m=[m for m in g["NodeGroups"][0]["NodeGroupMembers"] if m["CurrentRole"]=="replica" and m["DatanodeAddress"]]; print(m[0]["DatanodeAddress"] if m else "")' 2>/dev/null || true)
  [ -n "$replica" ] && break; sleep 0.5
done
rport=${replica##*:}
RPID=$(pgrep -f -- "datanode.*--listen 127.0.0.1:$rport" | head -1)
for _ in $(seq 1 600); do
  cat "$WORK"/ferrocache/logs/datanode-*.log 2>/dev/null | grep -q "full sync done" && break; sleep 0.5
done
sleep 2
r_before=$(echo "$before" | awk -F: -v p="$RPID" '$1 == p { print $2 }')
f_rss3=$(( $(rss_kb "$RPID") - ${r_before:-0} ))

echo "restart: ${restart_s}s from launch until all $N keys were served ($restart_log)"
python3 - "$N" "$r_used0" "$r_used1" "$r_rss0" "$r_rss1" "$f_used0" "$f_used1" "$f_rss0" "$f_rss1" "$f_keys" "$f_rss2" "$f_rss3" <<'PY'
import sys
n, ru0, ru1, rr0, rr1, fu0, fu1, fr0, fr1, fk, fr2, fr3 = map(int, sys.argv[1:])
r_used, r_rss = (ru1 - ru0) / n, (rr1 - rr0) * 1024 / n
f_used, f_rss = (fu1 - fu0) / n, (fr1 - fr0) * 1024 / n
print(f"keys loaded: redis {n}, ferrocache {fk}")
print("| measure | redis | ferrocache | ratio |")
print("|---|---|---|---|")
print(f"| bytes/key, used_memory | {r_used:.0f} | {f_used:.0f} | {f_used / r_used:.2f} |")
print(f"| bytes/key, process RSS growth right after the load | {r_rss:.0f} | {f_rss:.0f} | {f_rss / r_rss:.2f} |")
f_rss2 = (fr2 - fr0) * 1024 / n
print(f"| bytes/key, process RSS after a restart (reloaded) | {r_rss:.0f} | {f_rss2:.0f} | {f_rss2 / r_rss:.2f} |")
f_rss3 = fr3 * 1024 / n
print(f"| bytes/key, RSS growth of a replica's datanode after its full sync | {r_rss:.0f} | {f_rss3:.0f} | {f_rss3 / r_rss:.2f} |")
PY
