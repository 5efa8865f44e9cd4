#!/usr/bin/env bash
# Compares a Ferrocache replication group with a plain Redis primary + 2 replicas, in one
# run on this machine, with redis-benchmark: SET and GET, 50 clients, 100-byte values,
# without pipelining and with -P 16. Prints requests/s, p50/p99 latency and the
# Ferrocache/Redis ratios as a Markdown table.
#
# Like for like: Redis runs with appendonly yes / appendfsync $FSYNC and two replicas;
# Ferrocache's group has two replicas and AppendFsync $FSYNC (default everysec, both).
# twemproxy (Debian's nutcracker) in front of the same Redis primary is the proxy peer: what
# one proxy hop costs with no replication or durability of its own.
#
# Usage: [FSYNC=always|everysec|no] bench/compare.sh [requests] [tests]   (default 200000 "set get")
#   tests: any of set get zadd hset lpush zrange (ZRANGE reads the top 10 of a 1000-member
#   sorted set; the others are redis-benchmark's own tests).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
TESTS=${2:-set get}
FSYNC=${FSYNC:-everysec}

source bench/lib.sh
if ! command -v nutcracker >/dev/null; then
  echo "installing nutcracker (twemproxy, Debian)..." >&2
  apt-get install -y -qq nutcracker >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq nutcracker >/dev/null; }
fi

start_redis_group "$FSYNC"

# twemproxy in front of the Redis primary.
T=$(free_run 1)
cat > "$WORK/nutcracker.yml" <<YML
bench:
  listen: 127.0.0.1:$T
  redis: true
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: false
  servers:
    - 127.0.0.1:$R:1
YML
nutcracker -c "$WORK/nutcracker.yml" -s "$(free_run 1)" > "$WORK/nutcracker.log" 2>&1 & PIDS+=($!)

# Ferrocache: `up` with a group of 1 primary + 2 replicas.
start_ferrocache --append-fsync "$FSYNC"

# A 1000-member sorted set for the zrange test, on both.
for port in "$R" "$F"; do
  python3 -c 'print("ZADD bench:zset " + " ".join(f"{i} member:{i}" for i in range(1000)))' | redis-cli -p "$port" >/dev/null
done

# Runs one redis-benchmark; prints "rps p50 p99".
run() { # port test pipeline
  local what=(-t "$2")
  [ "$2" = zrange ] && what=(ZRANGE bench:zset 0 9 WITHSCORES)
  redis-benchmark -p "$1" -n "$N" -c 50 -d 100 -P "$3" -r 100000 --csv -q "${what[@]}" 2>/dev/null \
    | awk -F'","' 'NR==2 { gsub(/"/, "", $0); split($0, f, ","); print f[2], f[5], f[7] }'
}

echo "appendfsync: $FSYNC"
echo "| test | pipeline | redis rps | twemproxy rps (ratio) | ferrocache rps | ratio | redis p50/p99 ms | ferrocache p50/p99 ms |"
echo "|---|---|---|---|---|---|---|---|"
for P in 1 16; do
  for TEST in $TESTS; do
    read -r rr rp50 rp99 <<<"$(run "$R" "$TEST" "$P")"
    read -r tr _ _ <<<"$(run "$T" "$TEST" "$P")"
    read -r fr fp50 fp99 <<<"$(run "$F" "$TEST" "$P")"
    ratio=$(python3 -c "print(f'{$fr / $rr:.2f}')")
    tratio=$(python3 -c "print(f'{$tr / $rr:.2f}')")
    echo "| ${TEST^^} | $P | $rr | $tr ($tratio) | $fr | $ratio | $rp50 / $rp99 | $fp50 / $fp99 |"
  done
done
