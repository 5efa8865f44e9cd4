#!/usr/bin/env python3
"""Keyspace notifications side by side: runs each command of a file (one per line, shell
quoting; `#` lines are comments) on a redis-server and on a Ferrocache endpoint with
notify-keyspace-events KEA, collects the `__keyevent@0__:*` messages each command caused,
and prints every command whose reply or events differ.

Usage: python3 fuzz/notifications.py REDIS_PORT FERROCACHE_PORT [FILE]
(default FILE: fuzz/notifications.txt). Both are FLUSHALLed first; needs redis-py.
"""
import shlex, sys, time

import redis


def run(port, commands):
    r = redis.Redis(port=port)
    r.flushall()
    r.config_set("notify-keyspace-events", "KEA")
    sub = r.pubsub()
    sub.psubscribe("__keyevent@0__:*")
    sub.get_message(timeout=1)
    seen = []
    try:
        for command in commands:
            try:
                reply = r.execute_command(*command)
            except redis.ResponseError as e:
                reply = f"ERR {e}"
            # Events are published after the reply: wait for a quiet spell.
            time.sleep(0.05)
            events = []
            while (m := sub.get_message(timeout=0.1)) is not None:
                if m["type"] == "pmessage":
                    events.append((m["channel"].decode().split(":", 1)[1], m["data"].decode()))
            seen.append((reply, events))
    finally:
        r.config_set("notify-keyspace-events", "")
    return seen


def main():
    redis_port, ferrocache_port = int(sys.argv[1]), int(sys.argv[2])
    path = sys.argv[3] if len(sys.argv) > 3 else "fuzz/notifications.txt"
    with open(path) as f:
        commands = [shlex.split(l) for l in f if l.strip() and not l.lstrip().startswith("#")]
    theirs, ours = run(redis_port, commands), run(ferrocache_port, commands)
    diffs = 0
    for command, a, b in zip(commands, theirs, ours):
        if a != b:
            diffs += 1
            print("DIFF", command, "\n  redis:     ", *a, "\n  ferrocache:", *b)
    print(f"{len(commands)} commands, {diffs} differ")
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
