#!/usr/bin/env python3
"""Differential check: random commands (strings, lists, hashes, sets, sorted sets, bitmaps,
keys) with hostile arguments sent to a redis-server and to a Ferrocache endpoint side by
side; every reply that differs is printed, and both are flushed to start again in step.

Usage: python3 fuzz/differential.py REDIS_PORT FERROCACHE_PORT [COMMANDS] [SEED]
(e.g. `redis-server --port 7000 --save ""` and `ferrocache up --port 7100`). Both are
FLUSHALLed first. Commands that depend on time or randomness are left out.

Known differences, not bugs: Debian's redis-server is 7.0 while Ferrocache follows 7.2
(BITCOUNT/BITPOS check their range before the key, ZRANK ... WITHSCORE exists, doubles are
printed shortest-first as 7.2's fpconv does: 9223372036854776000 not 9.2233720368547758e+18);
HyperLogLogs are byte for byte Redis's (sparse while small).
"""
import random, socket, sys, time

def conn(port):
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(5)
    return s

def enc(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        if isinstance(a, str): a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out

class R:
    def __init__(self, port):
        self.s = conn(port); self.buf = b""
    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d: raise EOFError
            self.buf += d
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l
    def n(self, k):
        while len(self.buf) < k:
            d = self.s.recv(65536)
            if not d: raise EOFError
            self.buf += d
        r, self.buf = self.buf[:k], self.buf[k:]
        return r
    def reply(self):
        l = self.line(); t = l[:1]; rest = l[1:]
        if t in (b"+", b"-", b":"): return (t, rest)
        if t == b"$":
            k = int(rest)
            if k < 0: return None
            v = self.n(k + 2)[:-2]; return v
        if t == b"*":
            k = int(rest)
            if k < 0: return ("nil-array",)
            return [self.reply() for _ in range(k)]
        return ("?", l)
    def cmd(self, args):
        self.s.sendall(enc(args)); return self.reply()

keys = ["k1", "k2", "{t}a", "{t}b", "l1", "h1", "s1", "z1"]
SKIP = ("PFADD", "PFCOUNT", "PEXPIRE", "PSETEX", "SETEX", "EXPIRE", "GETEX", "PTTL", "TTL", "EXPIRETIME")
def rk(): return random.choice(keys)
def rv():
    return random.choice(["1", "0", "-1", "abc", "", "3.5", "-inf", "+inf", "nan", "9223372036854775807",
                          "-9223372036854775808", "9223372036854775808", "1e3", " 1", "0x10", "10", "2", "100", "-5", "*", "a*", "x"])
def ri(): return random.choice(["0", "1", "-1", "2", "-2", "10", "-100", "100", "abc", "1.5", "9223372036854775807", "-9223372036854775808"])
CMDS = [
 lambda: ["SET", rk(), rv()] + random.choice([[], ["NX"], ["XX"], ["GET"], ["EX", ri()], ["PX", ri()], ["KEEPTTL"], ["EX", "10", "PX", "10"], ["NX", "XX"], ["EXAT", ri()], ["GET", "NX"]]),
 lambda: ["GET", rk()], lambda: ["INCR", rk()], lambda: ["INCRBY", rk(), ri()], lambda: ["INCRBYFLOAT", rk(), rv()],
 lambda: ["DECRBY", rk(), ri()], lambda: ["APPEND", rk(), rv()], lambda: ["GETRANGE", rk(), ri(), ri()],
 lambda: ["SETRANGE", rk(), ri(), rv()], lambda: ["STRLEN", rk()], lambda: ["GETDEL", rk()], lambda: ["GETEX", rk()] + random.choice([[], ["PERSIST"], ["EX", ri()], ["PX", "0"]]),
 lambda: ["MSETNX", rk(), rv(), rk(), rv()], lambda: ["SETNX", rk(), rv()], lambda: ["LCS", rk(), rk()],
 lambda: ["LPUSH", rk(), rv(), rv()], lambda: ["RPUSH", rk(), rv()], lambda: ["LPOP", rk()] + random.choice([[], [ri()]]),
 lambda: ["RPOP", rk()] + random.choice([[], [ri()]]), lambda: ["LRANGE", rk(), ri(), ri()], lambda: ["LINDEX", rk(), ri()],
 lambda: ["LSET", rk(), ri(), rv()], lambda: ["LREM", rk(), ri(), rv()], lambda: ["LTRIM", rk(), ri(), ri()],
 lambda: ["LINSERT", rk(), random.choice(["BEFORE", "AFTER", "X"]), rv(), rv()], lambda: ["LPOS", rk(), rv()] + random.choice([[], ["RANK", ri()], ["COUNT", ri()], ["MAXLEN", ri()]]),
 lambda: ["LMOVE", rk(), rk(), random.choice(["LEFT", "RIGHT", "UP"]), random.choice(["LEFT", "RIGHT"])],
 lambda: ["HSET", rk(), rv(), rv()], lambda: ["HGET", rk(), rv()], lambda: ["HINCRBY", rk(), rv(), ri()], lambda: ["HINCRBYFLOAT", rk(), rv(), rv()],
 lambda: ["HDEL", rk(), rv()], lambda: ["HLEN", rk()], lambda: ["HSTRLEN", rk(), rv()], lambda: ["HSETNX", rk(), rv(), rv()], lambda: ["HMGET", rk(), rv(), rv()],
 lambda: ["SADD", rk(), rv(), rv()], lambda: ["SREM", rk(), rv()], lambda: ["SCARD", rk()], lambda: ["SISMEMBER", rk(), rv()], lambda: ["SMISMEMBER", rk(), rv(), rv()],
 lambda: ["SINTERCARD", random.choice(["1", "2", "0", "-1", "x"]), rk(), rk()] + random.choice([[], ["LIMIT", ri()]]),
 lambda: ["SMOVE", rk(), rk(), rv()], lambda: ["SDIFFSTORE", rk(), rk(), rk()],
 lambda: ["ZADD", rk()] + random.choice([[], ["NX"], ["XX"], ["GT"], ["LT"], ["CH"], ["INCR"], ["NX", "GT"], ["XX", "LT", "CH"]]) + [rv(), rv()],
 lambda: ["ZSCORE", rk(), rv()], lambda: ["ZINCRBY", rk(), rv(), rv()], lambda: ["ZRANGE", rk(), ri(), ri()] + random.choice([[], ["WITHSCORES"], ["REV"], ["BYSCORE"], ["BYLEX"], ["BYSCORE", "LIMIT", ri(), ri()]]),
 lambda: ["ZRANGEBYSCORE", rk(), random.choice(["-inf", "(1", "1", "+inf", "x", "(", "[1"]), random.choice(["-inf", "(1", "1", "+inf", "x"])],
 lambda: ["ZRANGEBYLEX", rk(), random.choice(["-", "+", "[a", "(a", "a"]), random.choice(["-", "+", "[z", "(z", "z"])],
 lambda: ["ZRANK", rk(), rv()] + random.choice([[], ["WITHSCORE"]]), lambda: ["ZREM", rk(), rv()], lambda: ["ZCARD", rk()], lambda: ["ZCOUNT", rk(), rv(), rv()],
 lambda: ["ZPOPMIN", rk()] + random.choice([[], [ri()]]), lambda: ["ZCARD", rk()],
 lambda: ["ZMSCORE", rk(), rv(), rv()], lambda: ["ZREMRANGEBYRANK", rk(), ri(), ri()], lambda: ["ZREMRANGEBYSCORE", rk(), rv(), rv()],
 lambda: ["ZUNIONSTORE", rk(), random.choice(["1", "2", "0", "x", "3"]), rk(), rk()] + random.choice([[], ["WEIGHTS", rv(), rv()], ["AGGREGATE", random.choice(["SUM", "MIN", "MAX", "X"])]]),
 lambda: ["EXPIRE", rk(), ri()] + random.choice([[], ["NX"], ["XX"], ["GT"], ["LT"], ["NX", "XX"]]), lambda: ["TTL", rk()], lambda: ["PERSIST", rk()], lambda: ["TYPE", rk()],
 lambda: ["DEL", rk(), rk()], lambda: ["EXISTS", rk(), rk()], lambda: ["RENAME", rk(), rk()], lambda: ["RENAMENX", rk(), rk()], lambda: ["COPY", rk(), rk()] + random.choice([[], ["REPLACE"]]),
 lambda: ["OBJECT", "ENCODING", rk()], lambda: ["SETBIT", rk(), ri(), random.choice(["0", "1", "2"])], lambda: ["GETBIT", rk(), ri()], lambda: ["BITCOUNT", rk()] + random.choice([[], [ri(), ri()], [ri(), ri(), "BIT"]]),
 lambda: ["BITPOS", rk(), random.choice(["0", "1"])] + random.choice([[], [ri()], [ri(), ri()]]),
 lambda: ["PFADD", rk(), rv()], lambda: ["PFCOUNT", rk()],
 lambda: ["SORT", rk()] + random.choice([[], ["ALPHA"], ["DESC"], ["LIMIT", ri(), ri()]]),
 lambda: ["GETSET", rk(), rv()], lambda: ["MGET", rk(), rk()], lambda: ["MSET", rk(), rv(), rk(), rv()],
 lambda: ["PEXPIRE", rk(), ri()], lambda: ["PTTL", rk()], lambda: ["EXPIRETIME", rk()], lambda: ["PERSIST", rk()],
 lambda: ["SINTER", rk(), rk()], lambda: ["SUNIONSTORE", rk(), rk(), rk()], lambda: ["SMEMBERS", rk()],
 lambda: ["ZREVRANGEBYSCORE", rk(), random.choice(["+inf", "(5", "5", "x"]), random.choice(["-inf", "(1", "1"])] + random.choice([[], ["WITHSCORES"], ["LIMIT", ri(), ri()]]),
 lambda: ["ZLEXCOUNT", rk(), random.choice(["-", "[a", "(a", "x"]), random.choice(["+", "[z", "(z"])],
 lambda: ["ZREMRANGEBYLEX", rk(), random.choice(["-", "[a", "(a", "x"]), random.choice(["+", "[z", "(z"])],
 lambda: ["ZRANGESTORE", rk(), rk(), ri(), ri()] + random.choice([[], ["BYSCORE"], ["REV"], ["LIMIT", "0", "1"], ["BYSCORE", "LIMIT", ri(), ri()]]),
 lambda: ["ZREVRANK", rk(), rv()], lambda: ["ZREVRANGE", rk(), ri(), ri()] + random.choice([[], ["WITHSCORES"]]),
 lambda: ["LMPOP", random.choice(["1", "2", "0", "x"]), rk(), rk(), random.choice(["LEFT", "RIGHT", "UP"])] + random.choice([[], ["COUNT", ri()]]),
 lambda: ["ZMPOP", random.choice(["1", "2", "0", "x"]), rk(), rk(), random.choice(["MIN", "MAX", "UP"])] + random.choice([[], ["COUNT", ri()]]),
 lambda: ["BITOP", random.choice(["AND", "OR", "XOR", "NOT", "X"]), rk(), rk()] + random.choice([[], [rk()]]),
 lambda: ["BITFIELD", rk(), "GET", random.choice(["u8", "i8", "u64", "i64", "x8"]), ri()],
 lambda: ["BITFIELD", rk(), "INCRBY", random.choice(["u8", "i8", "u63", "i64"]), ri(), ri()] + random.choice([[], ["OVERFLOW", random.choice(["WRAP", "SAT", "FAIL", "X"])]]),
 lambda: ["SETEX", rk(), ri(), rv()], lambda: ["PSETEX", rk(), ri(), rv()], lambda: ["GETRANGE", rk(), ri(), ri()],
 lambda: ["HEXISTS", rk(), rv()], lambda: ["HKEYS", rk()], lambda: ["HVALS", rk()], lambda: ["HGETALL", rk()],
 lambda: ["LLEN", rk()], lambda: ["RPOPLPUSH", rk(), rk()], lambda: ["LPUSHX", rk(), rv()], lambda: ["RPUSHX", rk(), rv()],
 lambda: ["SINTERSTORE", rk(), rk(), rk()], lambda: ["SDIFF", rk(), rk()], lambda: ["SRANDMEMBER", rk(), "0"],
 lambda: ["ZADD", rk(), "INCR", rv(), rv(), rv(), rv()], lambda: ["ZDIFF", random.choice(["1", "2", "x"]), rk(), rk()] + random.choice([[], ["WITHSCORES"]]),
 lambda: ["ZINTER", random.choice(["1", "2", "x"]), rk(), rk()] + random.choice([[], ["WITHSCORES"], ["WEIGHTS", rv(), rv()]]),
 lambda: ["INCR", rk()], lambda: ["DECR", rk()], lambda: ["SETRANGE", rk(), ri(), rv()], lambda: ["GETBIT", rk(), ri()],
 lambda: ["UNLINK", rk()], lambda: ["TOUCH", rk(), rk()], lambda: ["EXISTS", rk()],
 lambda: ["HMSET", rk(), rv(), rv()] + random.choice([[], [rv()]]), lambda: ["HSET", rk()] + random.choice([[], [rv()], [rv(), rv(), rv()]]),
]
def main(p1, p2, n, seed):
    random.seed(seed)
    a, b = R(p1), R(p2)
    a.cmd(["FLUSHALL"]); b.cmd(["FLUSHALL"])
    bad = 0
    for i in range(n):
        c = random.choice(CMDS)()
        if c[0] in SKIP: continue
        if c[0] == "SET" and any(x in ("EX", "PX", "EXAT") for x in c): continue
        ra, rb = a.cmd(c), b.cmd(c)
        if c[0] in ("OBJECT",): continue
        if c[0] in ("SDIFF", "SINTER", "SMEMBERS", "HKEYS", "HVALS", "HGETALL") and isinstance(ra, list) and isinstance(rb, list):
            ra, rb = sorted(map(repr, ra)), sorted(map(repr, rb))
        if ra != rb:
            bad += 1
            print("DIFF", c, "\n  redis:", repr(ra)[:150], "\n  ferro:", repr(rb)[:150])
            if bad > 40: break
            # resync state
            a.cmd(["FLUSHALL"]); b.cmd(["FLUSHALL"])
    print("done", n, "diffs", bad)
if __name__ == "__main__":
    a = sys.argv[1:]
    main(int(a[0]), int(a[1]), int(a[2]) if len(a) > 2 else 3000, int(a[3]) if len(a) > 3 else 1)
