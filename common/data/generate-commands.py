#!/usr/bin/env python3
"""Writes common/data/commands.resp: what redis-server says of its commands (COMMAND DOCS'
complexity, history, arguments ...; COMMAND INFO's tips and key specifications), for the
gateway's COMMAND INFO / COMMAND DOCS / COMMAND GETKEYSANDFLAGS.

Run against a redis-server 7.0 (Debian's) on PORT:
    python3 common/data/generate-commands.py PORT > common/data/commands.resp
The few commands and subcommands Redis 7.2 added are written from ADDITIONS below.

The file is one RESP3 map: name ("set", "config|get") -> [docs map (no subcommands: the
gateway lists the ones it serves), tips set, key specifications set]. RESP3 keeps Redis's
types (simple/bulk strings, sets, maps), so the gateway replays them as Redis sends them.
"""
import socket
import sys


class Simple(str):
    pass


class Set(list):
    pass


class Map(list):
    """Keys and values alternate."""


def read(f):
    line = f.readline()[:-2]
    kind, rest = chr(line[0]), line[1:]
    if kind == "+":
        return Simple(rest.decode())
    if kind == ":":
        return int(rest)
    if kind == "$":
        data = f.read(int(rest) + 2)[:-2]
        return data.decode()
    if kind in "*~%":
        n = int(rest) * (2 if kind == "%" else 1)
        items = [read(f) for _ in range(n)]
        return {"*": list, "~": Set, "%": Map}[kind](items)
    if kind == "_":
        return None
    raise ValueError(f"unexpected RESP3 type {kind!r}")


def write(out, v):
    if isinstance(v, Simple):
        out.append(b"+" + v.encode() + b"\r\n")
    elif isinstance(v, bool):
        raise ValueError("no booleans")
    elif isinstance(v, int):
        out.append(b":%d\r\n" % v)
    elif isinstance(v, str):
        data = v.encode()
        out.append(b"$%d\r\n" % len(data) + data + b"\r\n")
    elif isinstance(v, Map):
        out.append(b"%%%d\r\n" % (len(v) // 2))
        for item in v:
            write(out, item)
    elif isinstance(v, (Set, list)):
        out.append((b"~" if isinstance(v, Set) else b"*") + b"%d\r\n" % len(v))
        for item in v:
            write(out, item)
    else:
        raise ValueError(f"cannot write {v!r}")


def query(port, *args):
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    out = [b"HELLO 3\r\n"]
    out.append(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args))
    s.sendall(b"".join(out))
    read(f)  # HELLO's reply
    return read(f)


def pairs(m):
    return list(zip(m[0::2], m[1::2]))


def doc(summary, since, group, complexity, arguments=None, history=None):
    m = Map(["summary", summary, "since", since, "group", group, "complexity", complexity])
    if history is not None:
        m += ["history", Set(history)]
    if arguments is not None:
        m += ["arguments", arguments]
    return m


def arg(name, kind, token=None, arguments=None, flags=None, since=None):
    m = Map(["name", name, "type", kind])
    if token is not None:
        m += ["token", token]
    if since is not None:
        m += ["since", since]
    if flags is not None:
        m += ["flags", Set(Simple(f) for f in flags)]
    if arguments is not None:
        m += ["arguments", arguments]
    return m


# Redis 7.2's additions (its src/commands/*.json), in 7.0's reply shapes.
ADDITIONS = {
    "waitaof": [
        doc(
            "Blocks until all of the preceding write commands sent by the connection are written "
            "to the append-only file of the master and/or replicas.",
            "7.2.0", "generic", "O(1)",
            [arg("numlocal", "integer"), arg("numreplicas", "integer"), arg("timeout", "integer")],
        ),
        Set([Simple("request_policy:all_shards"), Simple("response_policy:agg_min")]),
        Set(),
    ],
    "client|no-touch": [
        doc(
            "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
            "7.2.0", "connection", "O(1)",
            [arg("enabled", "oneof", arguments=[arg("on", "pure-token", "ON"), arg("off", "pure-token", "OFF")])],
        ),
        Set(),
        Set(),
    ],
    "client|setinfo": [
        doc(
            "Sets information specific to the client or connection.",
            "7.2.0", "connection", "O(1)",
            [arg("attr", "oneof", arguments=[
                arg("libname", "string", "lib-name"),
                arg("libver", "string", "lib-ver"),
                arg("libinstancename", "string", "lib-instance-name"),
            ])],
        ),
        Set(),
        Set(),
    ],
    "cluster|myshardid": [
        doc("Return the node shard id", "7.0.0", "cluster", "O(1)", history=[]),
        Set([Simple("nondeterministic_output")]),
        Set(),
    ],
}


def main():
    port = int(sys.argv[1])
    docs = dict(pairs(query(port, "COMMAND", "DOCS")))
    infos = {}
    for entry in query(port, "COMMAND", "INFO"):
        infos[entry[0]] = entry
        for sub in entry[9]:
            infos[sub[0]] = sub
    table = {}
    for name, d in docs.items():
        subs = {}
        kept = Map()
        for k, v in pairs(d):
            if k == "subcommands":
                subs = dict(pairs(v))
            else:
                kept += [k, v]
        table[name] = kept
        table.update(subs)
    out_map = Map()
    for name in sorted(set(table) | set(ADDITIONS)):
        if name in ADDITIONS:
            entry = ADDITIONS[name]
        else:
            info = infos[name]
            entry = [table[name], info[7], info[8]]
        out_map += [name, entry]
    out = []
    write(out, out_map)
    sys.stdout.buffer.write(b"".join(out))


if __name__ == "__main__":
    main()
