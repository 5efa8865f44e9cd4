# Shared by the bench scripts (sourced from the repository root): installs Debian's Redis
# when missing, builds the release binary, finds free ports, and cleans up on exit.

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  echo "installing redis-server and redis-tools (Debian)..." >&2
  apt-get update -qq >/dev/null && apt-get install -y -qq redis-server redis-tools >/dev/null
fi
# FERROCACHE_BIN: measure that binary instead (A/B runs of an older build).
if [ -z "${FERROCACHE_BIN:-}" ]; then
  cargo build --release -q -p ferrocache
fi
BIN=${FERROCACHE_BIN:-target/release/ferrocache}

free_run() { # a base port with $1 free consecutive ports
  python3 - "$1" <<'PY'
import socket, sys, random
n = int(sys.argv[1])
while True:
    base = random.randint(20000, 50000)
    socks = []
    try:
        for i in range(n):
            s = socket.socket(); s.bind(("127.0.0.1", base + i)); socks.append(s)
        print(base); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
PY
}

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# A Redis primary with 2 replicas (appendonly, appendfsync $1) on free ports; sets R (the
# primary's port). Their pids are the first three of PIDS.
start_redis_group() {
  R=$(free_run 3)
  for i in 0 1 2; do
    local port=$((R + i)) dir="$WORK/redis-$i"; mkdir -p "$dir"
    local args=(--port "$port" --dir "$dir" --appendonly yes --appendfsync "$1" --save "" --daemonize no --logfile "$dir/log")
    [ "$i" -gt 0 ] && args+=(--replicaof 127.0.0.1 "$R")
    redis-server "${args[@]}" & PIDS+=($!)
  done
  for _ in $(seq 1 50); do redis-cli -p "$R" ping >/dev/null 2>&1 && break; sleep 0.2; done
  # Replicas sync only after repl-diskless-sync-delay (5 s): until both are online the
  # primary replicates to nobody and would be measured without its replication cost.
  for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$R" info replication | grep -c 'state=online')" = 2 ] && return
    sleep 0.2
  done
  echo "Redis's replicas did not come online" >&2; exit 1
}

# `ferrocache up` on free ports with any extra flags; sets F (group `default`'s primary
# endpoint) and UP (the pid of `up`). Admin ports are reserved for the coordinators and the
# two gateways' health ports after them.
start_ferrocache() {
  F=$(free_run 2); A=$(free_run 5); D=$(free_run 3)
  "$BIN" up --data-dir "$WORK/ferrocache" --port "$F" --admin-port "$A" --datanode-port "$D" "$@" > "$WORK/up.log" 2>&1 &
  UP=$!; PIDS+=($UP)
  for _ in $(seq 1 120); do grep -q "Press Ctrl-C" "$WORK/up.log" && break; sleep 0.5; done
  if ! grep -q "Press Ctrl-C" "$WORK/up.log"; then
    cat "$WORK/up.log"; tail -n 20 "$WORK"/ferrocache/logs/*.log
    echo "ferrocache did not start" >&2; exit 1
  fi
}
