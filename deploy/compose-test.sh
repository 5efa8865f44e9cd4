#!/usr/bin/env bash
# The compose test: the whole cluster in containers, checked from the host. Skipped (exit 0,
# with a message) when no Docker engine is reachable. Leaves no container, network or
# volume behind, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  echo "compose test: SKIPPED (no Docker engine reachable)"
  exit 0
fi
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi
if ! command -v redis-cli >/dev/null 2>&1; then
  apt-get update -qq >/dev/null && apt-get install -y -qq redis-tools >/dev/null
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export FERROCACHE_PORT=$(free_port) FERROCACHE_READER_PORT=$(free_port) FERROCACHE_ADMIN_PORT=$(free_port)
export FERROCACHE_IMAGE=ferrocache:compose-test
PROJECT=ferrocache-ci-$$
dc() { "${COMPOSE[@]}" -p "$PROJECT" -f deploy/docker-compose.yml "$@"; }
cleanup() {
  dc down -v --remove-orphans >/dev/null 2>&1 || true
  left=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"; docker network ls -q --filter "label=com.docker.compose.project=$PROJECT"; docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")
  if [ -n "$left" ]; then echo "compose test: LEFT BEHIND: $left" >&2; exit 1; fi
  echo "compose test: cleaned up (no container, network or volume left)"
}
trap cleanup EXIT
step() { echo "compose test: $*"; }
fail() { echo "compose test: FAILED: $*" >&2; dc ps >&2 || true; dc logs --tail 30 >&2 || true; exit 1; }

step "building the image"
deploy/build-image.sh "$FERROCACHE_IMAGE"

wait_healthy() { # every long-running service healthy, init exited 0
  for _ in $(seq 1 90); do
    local ok=1
    for svc in $(dc config --services); do
      id=$(dc ps -q "$svc" 2>/dev/null || true)
      [ -n "$id" ] || { ok=0; break; }
      if [ "$svc" = init ]; then
        [ "$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$id")" = "exited 0" ] || ok=0
      else
        [ "$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id")" = healthy ] || ok=0
      fi
    done
    [ "$ok" = 1 ] && return 0
    sleep 2
  done
  fail "services not healthy within 180s"
}
rc() { redis-cli -p "$1" "${@:2}"; }
expect() { # port expected command...
  local got
  got=$(rc "$1" "${@:3}" 2>&1) || true
  [ "$got" = "$2" ] || fail "redis-cli -p $1 ${*:3}: expected '$2', got '$got'"
}
eventually_expect() {
  for _ in $(seq 1 50); do
    [ "$(rc "$1" "${@:3}" 2>&1)" = "$2" ] && return 0
    sleep 0.2
  done
  expect "$@"
}

step "docker compose up"
dc up -d >/dev/null 2>&1
wait_healthy
step "ok: every service healthy, init created group default"

expect "$FERROCACHE_PORT" OK set k v
expect "$FERROCACHE_PORT" v get k
eventually_expect "$FERROCACHE_READER_PORT" v get k
step "ok: write and read through the gateway from the host (primary and reader endpoints)"

step "restarting a datanode (the primary's) and a coordinator"
dc restart datanode-a1 coordinator-2 >/dev/null 2>&1
wait_healthy
eventually_expect "$FERROCACHE_PORT" v get k
step "ok: data intact after restarts"

describe() { docker run --rm --network "${PROJECT}_default" "$FERROCACHE_IMAGE" describe-replication-groups --endpoint http://coordinator-1:7000; }
replica=$(describe | python3 -c 'import json,sys; g=json.load(sys.stdin)["ReplicationGroups"][0]; print(next(m["DatanodeId"] for m in g["NodeGroups"][0]["NodeGroupMembers"] if m["CurrentRole"]=="replica"))')
step "killing $replica (hosts a replica)"
dc kill "$replica" >/dev/null 2>&1
sleep 4  # the coordinators mark it offline; the reader endpoint stops using it
expect "$FERROCACHE_PORT" OK set k2 v2
expect "$FERROCACHE_PORT" v2 get k2
eventually_expect "$FERROCACHE_READER_PORT" v2 get k2
step "ok: group keeps serving with a replica's container killed"
dc start "$replica" >/dev/null 2>&1
wait_healthy

step "docker compose down, then up again (volumes keep the data)"
rc "$FERROCACHE_PORT" wait 2 5000 >/dev/null
dc down >/dev/null 2>&1
dc up -d >/dev/null 2>&1
wait_healthy
eventually_expect "$FERROCACHE_PORT" v get k
eventually_expect "$FERROCACHE_PORT" v2 get k2
step "ok: data back after down/up"
step "PASSED"
