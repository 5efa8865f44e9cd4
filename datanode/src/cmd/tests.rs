//! Command semantics on a bare keyspace; the whole path through a real client is tested in
//! `tests/`.

use super::*;

struct Harness {
    dbs: crate::databases::Databases,
    /// The database commands run in (SELECT).
    db: usize,
    now: i64,
    primary: bool,
    log: Vec<Vec<Bytes>>,
    scripts: crate::script::Scripts,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            dbs: Default::default(),
            db: 0,
            now: 1_000_000,
            primary: true,
            log: Vec::new(),
            scripts: Default::default(),
        }
    }

    fn run(&mut self, cmd: &str) -> Reply {
        self.run_args(&cmd.split(' ').collect::<Vec<_>>())
    }

    /// Runs a command given as separate arguments (which may be empty or hold spaces).
    fn run_args(&mut self, args: &[&str]) -> Reply {
        let args: Vec<Bytes> = args.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect();
        let mut out = WriteSet::default();
        let (ks, others) = self.dbs.split(self.db);
        let mut ctx = Ctx {
            ks,
            db: self.db,
            others,
            now: self.now,
            primary: self.primary,
            out: &mut out,
            max_string: 1 << 20,
            block: None,
            lfu: None,
            no_touch: false,
            woken: false,
            encodings: Default::default(),
            hll_sparse_max: crate::hll::DEFAULT_SPARSE_MAX_BYTES,
            in_script: false,
            script: Some(crate::script::Env { scripts: &mut self.scripts, oom: false, slots: None, monitor: false }),
        };
        let reply = execute(&mut ctx, &args);
        drop(ctx);
        place_effects(&mut out.effects, self.db);
        self.log.extend(out.effects);
        reply
    }
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn err(s: &str) -> Reply {
    Reply::Error(s.into())
}

#[test]
fn set_options() {
    let mut h = Harness::new();
    assert_eq!(h.run("SET k v"), Reply::ok());
    assert_eq!(h.run("SET k w NX"), Reply::NullBulk);
    assert_eq!(h.run("SET k w XX GET"), bulk("v"));
    assert_eq!(h.run("SET k2 w XX"), Reply::NullBulk);
    assert_eq!(h.run("SET k v NX XX"), err(errors::SYNTAX));
    assert_eq!(h.run("SET k v EX 10 PX 10"), err(errors::SYNTAX));
    assert_eq!(h.run("SET k v EX 0"), err("ERR invalid expire time in 'set' command"));
    assert_eq!(h.run("SET k v EX x"), err(errors::NOT_INTEGER));
    assert_eq!(h.run("SET k v EX 9223372036854775807"), err("ERR invalid expire time in 'set' command"));
    assert_eq!(h.run("SET k v EX 10"), Reply::ok());
    assert_eq!(h.run("PTTL k"), Reply::Integer(10_000));
    assert_eq!(h.run("SET k v2 KEEPTTL"), Reply::ok());
    assert_eq!(h.run("TTL k"), Reply::Integer(10));
    assert_eq!(h.run("SET k v3"), Reply::ok());
    assert_eq!(h.run("TTL k"), Reply::Integer(-1));
}

#[test]
fn relative_expiry_replicates_as_absolute() {
    let mut h = Harness::new();
    h.run("SET k v EX 5");
    h.run("EXPIRE k 100");
    let log: Vec<String> = h
        .log
        .iter()
        .map(|e| e.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(log, vec!["SET k v PXAT 1005000", "PEXPIREAT k 1100000"]);
}

#[test]
fn expiry_hides_and_deletes_on_primary_only() {
    let mut h = Harness::new();
    h.run("SET k v PX 10");
    h.now += 10;
    h.primary = false;
    assert_eq!(h.run("GET k"), Reply::NullBulk);
    assert_eq!(h.dbs.len(), 1, "a replica waits for its primary's DEL");
    h.primary = true;
    h.log.clear();
    assert_eq!(h.run("GET k"), Reply::NullBulk);
    assert_eq!(h.dbs.len(), 0);
    assert_eq!(h.log, vec![vec![Bytes::from_static(b"DEL"), Bytes::from_static(b"k")]]);
}

#[test]
fn counters() {
    let mut h = Harness::new();
    assert_eq!(h.run("INCR n"), Reply::Integer(1));
    assert_eq!(h.run("INCRBY n 41"), Reply::Integer(42));
    assert_eq!(h.run("DECRBY n -8"), Reply::Integer(50));
    assert_eq!(h.run("DECRBY n -9223372036854775808"), err("ERR decrement would overflow"));
    h.run("SET n 9223372036854775807");
    assert_eq!(h.run("INCR n"), err(errors::OVERFLOW));
    h.run("SET s abc");
    assert_eq!(h.run("INCR s"), err(errors::NOT_INTEGER));
    h.run("SET f 10.50");
    assert_eq!(h.run("INCRBYFLOAT f 0.1"), bulk("10.6"));
    // Long double arithmetic, as redis-server answers (f64 would give 5010.6).
    assert_eq!(h.run("INCRBYFLOAT f 5.0e3"), bulk("5010.60000000000000009"));
    assert_eq!(h.run("INCRBYFLOAT s 1"), err(errors::NOT_FLOAT));
}

#[test]
fn ranges() {
    let mut h = Harness::new();
    h.run("SET s This_is_a_string");
    assert_eq!(h.run("GETRANGE s 0 3"), bulk("This"));
    assert_eq!(h.run("GETRANGE s -3 -1"), bulk("ing"));
    assert_eq!(h.run("GETRANGE s 0 -1"), bulk("This_is_a_string"));
    assert_eq!(h.run("GETRANGE s 10 100"), bulk("string"));
    assert_eq!(h.run("GETRANGE s -1 -5"), bulk(""));
    assert_eq!(h.run("GETRANGE missing 0 -1"), bulk(""));
    assert_eq!(h.run("SETRANGE k2 5 hi"), Reply::Integer(7));
    assert_eq!(h.run("GET k2"), Reply::Bulk(Bytes::from_static(b"\0\0\0\0\0hi")));
    assert_eq!(h.run("SETRANGE k3 0 "), Reply::Integer(0));
    assert_eq!(h.run("EXISTS k3"), Reply::Integer(0));
    assert_eq!(h.run("SETRANGE k2 -1 x"), err("ERR offset is out of range"));
    assert_eq!(h.run("APPEND k2 !"), Reply::Integer(8));
}

#[test]
fn keys_rename_copy_scan() {
    let mut h = Harness::new();
    h.run("MSET a 1 b 2 c 3");
    assert_eq!(h.run("MSET a"), err("ERR wrong number of arguments for 'mset' command"));
    assert_eq!(h.run("EXISTS a a z"), Reply::Integer(2));
    assert_eq!(h.run("RENAME z y"), err(errors::NO_SUCH_KEY));
    assert_eq!(h.run("RENAMENX a b"), Reply::Integer(0));
    assert_eq!(h.run("RENAME a z"), Reply::ok());
    assert_eq!(h.run("COPY z z"), err("ERR source and destination objects are the same"));
    assert_eq!(h.run("COPY z b"), Reply::Integer(0));
    assert_eq!(h.run("COPY z b REPLACE"), Reply::Integer(1));
    assert_eq!(h.run("GET b"), bulk("1"));
    assert_eq!(h.run("TYPE b"), Reply::Simple("string".into()));
    assert_eq!(h.run("TYPE nope"), Reply::Simple("none".into()));
    let Reply::Array(mut all) = h.run("KEYS *") else { panic!() };
    all.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(all, vec![bulk("b"), bulk("c"), bulk("z")]);
    let mut seen = 0;
    let mut cursor = "0".to_string();
    loop {
        let Reply::Array(parts) = h.run(&format!("SCAN {cursor} COUNT 1")) else { panic!() };
        let (Reply::Bulk(c), Reply::Array(keys)) = (&parts[0], &parts[1]) else { panic!() };
        seen += keys.len();
        cursor = String::from_utf8_lossy(c).into_owned();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen, 3);
    assert_eq!(h.run("SCAN x"), err("ERR invalid cursor"));
    assert_eq!(h.run("SCAN 0 COUNT 0"), err(errors::SYNTAX));
}

#[test]
fn expire_flags() {
    let mut h = Harness::new();
    h.run("SET k v");
    assert_eq!(h.run("EXPIRE k 100 XX"), Reply::Integer(0));
    assert_eq!(h.run("EXPIRE k 100 NX"), Reply::Integer(1));
    assert_eq!(h.run("EXPIRE k 50 GT"), Reply::Integer(0));
    assert_eq!(h.run("EXPIRE k 50 LT"), Reply::Integer(1));
    assert_eq!(h.run("EXPIRE k 50 NX XX"), err("ERR NX and XX, GT or LT options at the same time are not compatible"));
    assert_eq!(h.run("EXPIRE k 50 FOO"), err("ERR Unsupported option FOO"));
    assert_eq!(h.run("PERSIST k"), Reply::Integer(1));
    assert_eq!(h.run("PERSIST k"), Reply::Integer(0));
    assert_eq!(h.run("EXPIRE k -1"), Reply::Integer(1));
    assert_eq!(h.run("EXISTS k"), Reply::Integer(0));
    assert_eq!(h.run("TTL k"), Reply::Integer(-2));
    assert_eq!(h.run("GET"), err("ERR wrong number of arguments for 'get' command"));
}

#[test]
fn hashes() {
    let mut h = Harness::new();
    assert_eq!(h.run("HSET h a 1 b 2"), Reply::Integer(2));
    assert_eq!(h.run("HSET h a 9 c 3"), Reply::Integer(1));
    assert_eq!(h.run("HSET h a"), err("ERR wrong number of arguments for 'hset' command"));
    assert_eq!(h.run("HGET h a"), bulk("9"));
    assert_eq!(h.run("HGET h zz"), Reply::NullBulk);
    assert_eq!(h.run("HLEN h"), Reply::Integer(3));
    assert_eq!(h.run("HSETNX h a x"), Reply::Integer(0));
    assert_eq!(h.run("HSETNX h d 4"), Reply::Integer(1));
    assert_eq!(h.run("HINCRBY h a 1"), Reply::Integer(10));
    assert_eq!(h.run("HINCRBYFLOAT h f 1.5"), bulk("1.5"));
    h.run("HSET h s abc");
    assert_eq!(h.run("HINCRBY h s 1"), err("ERR hash value is not an integer"));
    assert_eq!(h.run("HINCRBYFLOAT h s 1"), err("ERR hash value is not a float"));
    assert_eq!(h.run("HSTRLEN h s"), Reply::Integer(3));
    assert_eq!(h.run("HEXISTS h s"), Reply::Integer(1));
    assert_eq!(h.run("TYPE h"), Reply::Simple("hash".into()));
    h.run("SET str v");
    assert_eq!(h.run("HGET str a"), err(errors::WRONGTYPE));
    assert_eq!(h.run("GET h"), err(errors::WRONGTYPE));
    assert_eq!(h.run("HDEL h a b c d f s zz"), Reply::Integer(6));
    assert_eq!(h.run("EXISTS h"), Reply::Integer(0), "an emptied hash is deleted");
    assert_eq!(h.run("HRANDFIELD h"), Reply::NullBulk);
    assert_eq!(h.run("HGETALL h"), Reply::Map(vec![]));
}

#[test]
fn lcs_follows_redis() {
    let mut h = Harness::new();
    h.run("MSET key1 ohmytext key2 mynewtext");
    assert_eq!(h.run("LCS key1 key2"), bulk("mytext"));
    assert_eq!(h.run("LCS key1 key2 LEN"), Reply::Integer(6));
    let range = |a: i64, b: i64| Reply::Array(vec![Reply::Integer(a), Reply::Integer(b)]);
    let idx =
        |matches: Vec<Reply>| Reply::Map(vec![bulk("matches"), Reply::Array(matches), bulk("len"), Reply::Integer(6)]);
    // Redis's documented example.
    assert_eq!(
        h.run("LCS key1 key2 IDX"),
        idx(vec![Reply::Array(vec![range(4, 7), range(5, 8)]), Reply::Array(vec![range(2, 3), range(0, 1)])])
    );
    assert_eq!(
        h.run("LCS key1 key2 IDX MINMATCHLEN 4 WITHMATCHLEN"),
        idx(vec![Reply::Array(vec![range(4, 7), range(5, 8), Reply::Integer(4)])])
    );
    assert_eq!(h.run("LCS key1 missing"), bulk(""));
    assert_eq!(
        h.run("LCS key1 key2 LEN IDX"),
        err("ERR If you want both the length and indexes, please just use IDX.")
    );
    assert_eq!(h.run("LCS key1 key2 MINMATCHLEN"), err("ERR syntax error"));
    h.run("RPUSH l a");
    assert_eq!(h.run("LCS key1 l"), err("ERR The specified keys must contain string values"));
}

#[test]
fn databases_move_swap_copy_and_flush_as_redis_and_replay_from_their_effects() {
    let mut h = Harness::new();
    assert_eq!(h.run("SET k v0"), Reply::ok());
    h.db = 3;
    assert_eq!(h.run("GET k"), Reply::NullBulk, "databases are separate");
    assert_eq!(h.run("SET k v3"), Reply::ok());
    assert_eq!(h.run("SET only3 x"), Reply::ok());
    assert_eq!(h.run("MOVE k 0"), Reply::Integer(0), "the target has the key");
    assert_eq!(h.run("MOVE nothing 0"), Reply::Integer(0));
    assert_eq!(h.run("MOVE only3 3"), err("ERR source and destination objects are the same"));
    assert_eq!(h.run("MOVE only3 16"), err("ERR DB index is out of range"));
    assert_eq!(h.run("MOVE only3 -1"), err("ERR DB index is out of range"));
    assert_eq!(h.run("MOVE only3 x"), err("ERR value is not an integer or out of range"));
    assert_eq!(h.run("PEXPIRE only3 100000"), Reply::Integer(1));
    assert_eq!(h.run("MOVE only3 5"), Reply::Integer(1));
    assert_eq!(h.run("EXISTS only3"), Reply::Integer(0));
    assert_eq!(h.run("COPY k k DB 3"), err("ERR source and destination objects are the same"));
    assert_eq!(h.run("COPY k k DB 7"), Reply::Integer(1));
    assert_eq!(h.run("COPY k k DB 7"), Reply::Integer(0));
    assert_eq!(h.run("COPY k k DB 99"), err("ERR DB index is out of range"));
    assert_eq!(h.run("SWAPDB 3 x"), err("ERR invalid second DB index"));
    assert_eq!(h.run("SWAPDB -1 0"), err("ERR DB index is out of range"));
    assert_eq!(h.run("SWAPDB 0 3"), Reply::ok());
    assert_eq!(h.run("GET k"), bulk("v0"), "database 3 now holds what 0 held");
    assert_eq!(h.run("SWAPDB 5 7"), Reply::ok());
    h.db = 7;
    assert!(matches!(h.run("PTTL only3"), Reply::Integer(ms) if ms > 0), "MOVE keeps the expiry");
    h.db = 5;
    assert_eq!(h.run("GET k"), bulk("v3"));
    assert_eq!(h.run("DBSIZE"), Reply::Integer(1));
    assert_eq!(h.run("FLUSHDB"), Reply::ok());
    assert_eq!(h.run("DBSIZE"), Reply::Integer(0));
    assert_eq!(h.dbs.len(), 3, "FLUSHDB empties one database");
    // A replica applying the log ends up with the same databases.
    let mut replica = Harness::new();
    replica.primary = false;
    for effect in h.log.clone() {
        let (db, args) = effect_db(&effect).expect("a known database");
        replica.db = db;
        let mut out = WriteSet::default();
        let (ks, others) = replica.dbs.split(db);
        let mut ctx = Ctx {
            ks,
            db,
            others,
            now: replica.now,
            primary: false,
            out: &mut out,
            max_string: 1 << 20,
            block: None,
            lfu: None,
            no_touch: false,
            woken: false,
            encodings: Default::default(),
            hll_sparse_max: crate::hll::DEFAULT_SPARSE_MAX_BYTES,
            in_script: false,
            script: None,
        };
        execute(&mut ctx, args);
    }
    assert_eq!(replica.dbs.live_entries(0), h.dbs.live_entries(0));
    h.db = 0;
    assert_eq!(h.run("FLUSHALL"), Reply::ok());
    assert_eq!(h.dbs.len(), 0);
    assert_eq!(effect_db(&in_db(16, vec![Bytes::from_static(b"DEL")])), None, "no database 16");
}

#[test]
fn the_key_is_checked_before_the_arguments_where_redis_checks_it_first() {
    let mut h = Harness::new();
    let wrongtype = err(errors::WRONGTYPE);
    h.run("SET str x");
    h.run("HSET h f 1");
    assert_eq!(h.run("LINDEX nokey abc"), Reply::NullBulk);
    assert_eq!(h.run("LINDEX str abc"), wrongtype);
    assert_eq!(h.run("LSET nokey abc v"), err("ERR no such key"));
    assert_eq!(h.run("LSET str abc v"), wrongtype);
    assert_eq!(h.run("SMOVE nokey str m"), Reply::Integer(0));
    assert_eq!(h.run("GETEX nokey EX abc"), Reply::NullBulk);
    assert_eq!(h.run("GETEX h EX abc"), wrongtype);
    assert_eq!(
        h.run("EXPIRE str abc NX XX"),
        err("ERR NX and XX, GT or LT options at the same time are not compatible")
    );
    assert_eq!(h.run("INCRBYFLOAT h abc"), wrongtype);
    assert_eq!(h.run("HINCRBYFLOAT str f +inf"), err("ERR value is NaN or Infinity"));
    assert_eq!(h.run("ZUNIONSTORE out 2 str h AGGREGATE NOPE"), wrongtype);
    assert_eq!(h.run("ZINTERCARD 1 str LIMIT -1"), wrongtype);
    assert_eq!(h.run("LPOS nokey x COUNT abc"), err("ERR COUNT can't be negative"));
    assert_eq!(h.run("LPOS nokey x MAXLEN abc"), err("ERR MAXLEN can't be negative"));
}

#[test]
fn floats_are_read_as_redis_reads_them() {
    let mut h = Harness::new();
    assert_eq!(h.run("ZADD z 0x10 a"), Reply::Integer(1));
    assert_eq!(h.run("ZSCORE z a"), Reply::Double(16.0));
    assert_eq!(h.run("ZADD z 1e400 b"), err("ERR value is not a valid float"));
    assert_eq!(h.run("INCRBYFLOAT f 0x10"), bulk("16"));
    // A score range's bounds go through strtod alone: spaces first, "" and "(" are 0.
    assert_eq!(h.run_args(&["ZCOUNT", "z", " 1", "+inf"]), Reply::Integer(1));
    assert_eq!(h.run_args(&["ZCOUNT", "z", "", "0x10"]), Reply::Integer(1));
    assert_eq!(h.run_args(&["ZCOUNT", "z", "(", "+inf"]), Reply::Integer(1));
    assert_eq!(h.run_args(&["ZCOUNT", "z", "1 ", "+inf"]), err("ERR min or max is not a float"));
}
