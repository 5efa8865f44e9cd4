#!/usr/bin/env bash
# Runs Redis's own test suite (tests/unit/*.tcl of Debian's redis source) against a running
# Ferrocache endpoint in the suite's external-server mode, one file at a time, and prints
# ok / err / exception counts per file. Failures are in $OUT/<file>.log.
#
# Usage: fuzz/redis-suite.sh <port> [unit ...]   (default: the data-type and server units)
#   e.g. ferrocache up --port 16379 ... & fuzz/redis-suite.sh 16379 unit/type/hash unit/multi
#
# Debian ships Redis 7.0: where 7.0 and 7.2 differ (list and set encodings, double
# formatting, blocking commands in scripts, XREADGROUP on a deleted key) the suite expects
# 7.0 and Ferrocache answers as 7.2. Tests needing DEBUG, replication or a local server
# process are skipped by tag. Each file starts with SCRIPT KILL, FUNCTION KILL, CLIENT
# UNPAUSE, maxmemory 0 and busy-reply-threshold 5000, so a file that fails half-way does
# not fail the next ones (the group keeps what a file set).
set -euo pipefail
PORT=${1:?usage: fuzz/redis-suite.sh <port> [unit ...]}
shift
UNITS=("$@")
if [ ${#UNITS[@]} -eq 0 ]; then
  UNITS=(unit/type/string unit/type/incr unit/type/hash unit/type/list unit/type/set unit/type/zset
    unit/type/stream unit/type/stream-cgroups unit/keyspace unit/expire unit/bitops unit/bitfield
    unit/geo unit/hyperloglog unit/scan unit/sort unit/multi unit/pubsub unit/scripting
    unit/functions unit/tracking unit/introspection unit/introspection-2 unit/pause unit/protocol
    unit/info-command unit/dump)
fi
VERSION=7.0.15
SRC=${REDIS_SUITE_DIR:-/tmp/redis-suite}/redis-$VERSION
OUT=${REDIS_SUITE_DIR:-/tmp/redis-suite}/logs
if [ ! -x "$SRC/runtest" ]; then
  command -v tclsh >/dev/null || { apt-get update -qq && apt-get install -y -qq tcl >/dev/null; }
  mkdir -p "$(dirname "$SRC")"
  curl -sf -m 120 -o "$SRC.tar.gz" "http://deb.debian.org/debian/pool/main/r/redis/redis_$VERSION.orig.tar.gz"
  tar xzf "$SRC.tar.gz" -C "$(dirname "$SRC")"
fi
mkdir -p "$OUT"
cd "$SRC"
TAGS='-needs:repl -needs:debug -needs:save -needs:local-process -needs:latency'
for unit in "${UNITS[@]}"; do
  for cleanup in "SCRIPT KILL" "FUNCTION KILL" "CLIENT UNPAUSE" "CONFIG SET maxmemory 0" "CONFIG SET busy-reply-threshold 5000"; do
    # shellcheck disable=SC2086
    redis-cli -p "$PORT" $cleanup >/dev/null 2>&1 || true
  done
  log="$OUT/$(echo "$unit" | tr / _).log"
  timeout 900 ./runtest --host 127.0.0.1 --port "$PORT" --single "$unit" --clients 1 --timeout 60 --tags "$TAGS" >"$log" 2>&1 || true
  plain=$(sed 's/\x1b\[[0-9;]*m//g' "$log")
  printf '%-32s ok=%-4s err=%-3s exception=%s\n' "$unit" \
    "$(grep -c '^\[ok\]' <<<"$plain" || true)" "$(grep -c '^\[err\]' <<<"$plain" || true)" \
    "$(grep -c '^\[exception\]' <<<"$plain" || true)"
done
