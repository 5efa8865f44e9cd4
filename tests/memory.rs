//! CONFIG and memory limits through the gateway: parameters set group-wide (CONFIG SET goes
//! through the coordinators and every member applies it), maxmemory with each eviction
//! policy under a write-heavy load, Redis's OOM error, evictions replicated to replicas,
//! OBJECT IDLETIME / FREQ.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use redis::{cmd, Value};
use support::{q, redis_conn, Cluster, Conn, Options};

/// What one write may add past the limit (evictions happen before writes, as in Redis).
const SLACK: i64 = 4096;

async fn ok(c: &mut Conn, args: &[&str]) {
    let r: String = q(c, args).await.unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert_eq!(r, "OK", "{args:?}");
}

async fn info_field(c: &mut Conn, name: &str) -> i64 {
    let info: String = cmd("INFO").query_async(c).await.unwrap();
    info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok()).unwrap_or(-1)
}

/// What maxmemory is compared with, as Redis's own tests read it: used_memory less what is
/// not counted for eviction (the replication backlog).
async fn counted_memory(c: &mut Conn) -> i64 {
    info_field(c, "used_memory").await - info_field(c, "mem_not_counted_for_evict").await
}

/// Writes `n` keys of `size` bytes in pipelines; returns how many writes were refused.
async fn fill(c: &mut Conn, prefix: &str, n: usize, size: usize, ttl: Option<u64>) -> usize {
    let value = "v".repeat(size);
    let mut refused = 0;
    for chunk in 0..n.div_ceil(100) {
        let mut pipe = redis::pipe();
        for i in chunk * 100..((chunk + 1) * 100).min(n) {
            let key = format!("{prefix}{i}");
            match ttl {
                Some(t) => pipe.cmd("SET").arg(&key).arg(&value).arg("EX").arg(t),
                None => pipe.cmd("SET").arg(&key).arg(&value),
            };
        }
        // redis-rs turns a pipeline holding an error reply into an error.
        match pipe.query_async::<Vec<Value>>(c).await {
            Ok(replies) => refused += replies.iter().filter(|v| matches!(v, Value::ServerError(_))).count(),
            Err(_) => refused += 1,
        }
    }
    refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_and_eviction_follow_redis() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: true, ..Default::default() });
    let (port, reader) = cluster.create_group("mem", 1, "everysec").await;
    let mut c = redis_conn(port).await;

    // CONFIG GET / SET with Redis's replies and errors.
    let got: HashMap<String, String> = q(&mut c, &["CONFIG", "GET", "maxmemory*"]).await.unwrap();
    assert_eq!(got.get("maxmemory").map(String::as_str), Some("0"));
    assert_eq!(got.get("maxmemory-policy").map(String::as_str), Some("noeviction"));
    assert_eq!(got.get("maxmemory-samples").map(String::as_str), Some("5"));
    let err = q::<Value>(&mut c, &["CONFIG", "SET", "maxmemory-policy", "sometimes"]).await.unwrap_err().to_string();
    assert!(err.contains("CONFIG SET failed (possibly related to argument 'maxmemory-policy')"), "{err}");
    let err = q::<Value>(&mut c, &["CONFIG", "SET", "nosuch", "1"]).await.unwrap_err().to_string();
    assert!(err.contains("Unknown option or number of arguments for CONFIG SET - 'nosuch'"), "{err}");
    let err = q::<Value>(&mut c, &["CONFIG", "SET", "maxmemory", "1mb", "maxmemory", "2mb"]).await.unwrap_err();
    assert!(err.to_string().contains("duplicate parameter"), "{err}");
    ok(
        &mut c,
        &["CONFIG", "SET", "maxmemory", "2mb", "maxmemory-policy", "allkeys-lru", "hash-max-listpack-entries", "64"],
    )
    .await;
    let got: HashMap<String, String> = q(&mut c, &["CONFIG", "GET", "maxmemory", "hash-max-listpack-*"]).await.unwrap();
    assert_eq!(got.get("maxmemory").map(String::as_str), Some("2097152"));
    assert_eq!(got.get("hash-max-listpack-entries").map(String::as_str), Some("64"));
    // repl-backlog-size sizes the primary's replication backlog (INFO replication).
    assert_eq!(info_field(&mut c, "repl_backlog_size").await, 64 << 20, "the node's own until set");
    ok(&mut c, &["CONFIG", "SET", "repl-backlog-size", "2mb"]).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while info_field(&mut c, "repl_backlog_size").await != 2 << 20 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(info_field(&mut c, "repl_backlog_size").await, 2 << 20);
    let described = cluster.describe("mem").await;
    assert!(described
        .cache_parameters
        .iter()
        .any(|p| p.parameter_name == "maxmemory" && p.parameter_value == "2097152"));

    // allkeys-lru under a write-heavy load: memory stays under the limit, hot keys survive.
    // (2 MB: the 512 KB slot index of the database counts too, as Redis counts its dicts.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..20 {
        let _: () = q(&mut c, &["SET", &format!("hot{i}"), &"h".repeat(1000)]).await.unwrap();
    }
    for round in 0..10 {
        assert_eq!(fill(&mut c, &format!("load{round}:"), 500, 1000, None).await, 0, "allkeys-lru refuses nothing");
        for i in 0..20 {
            let _: Option<String> = q(&mut c, &["GET", &format!("hot{i}")]).await.unwrap();
        }
    }
    // As in Redis, eviction runs before each write, so the last write may overshoot by its size.
    let used = counted_memory(&mut c).await;
    assert!(used > 0 && used <= (2 << 20) + SLACK, "used_memory {used} over maxmemory");
    let evicted = info_field(&mut c, "evicted_keys").await;
    assert!(evicted > 3000, "evicted_keys {evicted}");
    let mut hot_left = 0;
    for i in 0..20 {
        hot_left += q::<i64>(&mut c, &["EXISTS", &format!("hot{i}")]).await.unwrap();
    }
    assert!(hot_left >= 15, "LRU kept only {hot_left} of 20 hot keys");
    assert_eq!(info_field(&mut c, "maxmemory").await, 2 << 20);

    // Evictions reach the replica as deletions.
    let _: i64 = q(&mut c, &["WAIT", "1", "5000"]).await.unwrap();
    let mut r = redis_conn(reader).await;
    let primary_keys: i64 = q(&mut c, &["DBSIZE"]).await.unwrap();
    assert_eq!(q::<i64>(&mut r, &["DBSIZE"]).await.unwrap(), primary_keys);

    // volatile-ttl: only keys with an expiry go, soonest first.
    ok(&mut c, &["FLUSHALL"]).await;
    ok(&mut c, &["CONFIG", "SET", "maxmemory-policy", "volatile-ttl"]).await;
    assert_eq!(fill(&mut c, "keep:", 300, 1000, None).await, 0);
    assert_eq!(fill(&mut c, "ttl:", 2000, 1000, Some(100_000)).await, 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "keep:0", "keep:299"]).await.unwrap(), 2, "persistent keys kept");
    assert!(counted_memory(&mut c).await <= (2 << 20) + SLACK);

    // volatile-lru with no key carrying an expiry, and noeviction: Redis's OOM error.
    ok(&mut c, &["FLUSHALL"]).await;
    ok(&mut c, &["CONFIG", "SET", "maxmemory-policy", "volatile-lru"]).await;
    assert!(fill(&mut c, "p:", 2000, 1000, None).await > 0, "nothing to evict: writes refused");
    ok(&mut c, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]).await;
    let err = q::<Value>(&mut c, &["SET", "more", "x"]).await.unwrap_err();
    assert_eq!(err.code(), Some("OOM"), "{err}");
    assert!(err.to_string().contains("command not allowed when used memory > 'maxmemory'"), "{err}");
    // In MULTI, as Redis: a command queued while out of memory is refused and dooms the
    // transaction; an EXEC whose queue would grow memory is refused whole.
    ok(&mut c, &["MULTI"]).await;
    let err = q::<Value>(&mut c, &["GET", "p:1"]).await.unwrap_err();
    assert_eq!(err.code(), Some("OOM"), "{err}");
    let err = q::<Value>(&mut c, &["EXEC"]).await.unwrap_err();
    assert!(err.to_string().contains("previous errors"), "{err}");
    let mut other = redis_conn(port).await;
    ok(&mut other, &["CONFIG", "SET", "maxmemory", "0"]).await;
    ok(&mut c, &["MULTI"]).await;
    assert_eq!(q::<String>(&mut c, &["SET", "more", "x"]).await.unwrap(), "QUEUED");
    ok(&mut other, &["CONFIG", "SET", "maxmemory", "1mb"]).await;
    let err = q::<Value>(&mut c, &["EXEC"]).await.unwrap_err();
    assert_eq!(err.code(), Some("EXECABORT"), "{err}");
    assert!(err.to_string().contains("OOM command not allowed"), "{err}");
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "more"]).await.unwrap(), None);
    assert_eq!(q::<i64>(&mut c, &["DEL", "p:0"]).await.unwrap(), 1, "DEL works when out of memory");
    let _: Option<String> = q(&mut c, &["GET", "p:1"]).await.unwrap();

    // OBJECT IDLETIME under LRU, OBJECT FREQ under LFU.
    ok(&mut c, &["CONFIG", "SET", "maxmemory", "0"]).await;
    ok(&mut c, &["SET", "idle", "1"]).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(q::<i64>(&mut c, &["OBJECT", "IDLETIME", "idle"]).await.unwrap() >= 1);
    // CLIENT NO-TOUCH: the client's reads leave the key idle; its TOUCH still touches.
    let mut quiet = redis_conn(port).await;
    ok(&mut quiet, &["CLIENT", "NO-TOUCH", "ON"]).await;
    let _: Option<String> = q(&mut quiet, &["GET", "idle"]).await.unwrap();
    assert!(q::<i64>(&mut c, &["OBJECT", "IDLETIME", "idle"]).await.unwrap() >= 1, "a NO-TOUCH read touched");
    let _: i64 = q(&mut quiet, &["TOUCH", "idle"]).await.unwrap();
    assert_eq!(q::<i64>(&mut c, &["OBJECT", "IDLETIME", "idle"]).await.unwrap(), 0);
    ok(&mut c, &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]).await;
    for _ in 0..50 {
        let _: Option<String> = q(&mut c, &["GET", "idle"]).await.unwrap();
    }
    assert!(q::<i64>(&mut c, &["OBJECT", "FREQ", "idle"]).await.unwrap() >= 5);
    let err = q::<Value>(&mut c, &["OBJECT", "IDLETIME", "idle"]).await.unwrap_err().to_string();
    assert!(err.contains("An LFU maxmemory policy is selected"), "{err}");
    ok(&mut c, &["CONFIG", "RESETSTAT"]).await;
    assert_eq!(info_field(&mut c, "evicted_keys").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_and_restore_speak_redis_serialization() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: true, ..Default::default() });
    let (port, reader) = cluster.create_group("dump", 1, "everysec").await;
    let mut c = redis_conn(port).await;

    // A payload made by redis-server 7.0 (`SET k 42`, `DUMP k`).
    let from_redis = b"\x00\xc0*\n\x00\x81\xfb\\\xfa\x86cOP".to_vec();
    let r: String = cmd("RESTORE").arg("k").arg(0).arg(&from_redis).query_async(&mut c).await.unwrap();
    assert_eq!(r, "OK");
    assert_eq!(q::<String>(&mut c, &["GET", "k"]).await.unwrap(), "42");
    let err = cmd("RESTORE").arg("k").arg(0).arg(&from_redis).query_async::<Value>(&mut c).await.unwrap_err();
    assert!(err.to_string().contains("Target key name already exists"), "{err}");
    let mut bad = from_redis.clone();
    bad[2] ^= 1;
    let err = cmd("RESTORE").arg("x").arg(0).arg(&bad).query_async::<Value>(&mut c).await.unwrap_err();
    assert!(err.to_string().contains("DUMP payload version or checksum are wrong"), "{err}");

    // Every type round-trips through DUMP / RESTORE, with TTLs.
    let _: i64 = q(&mut c, &["RPUSH", "l", "a", "b", "c"]).await.unwrap();
    let _: i64 = q(&mut c, &["SADD", "s", "x", "y"]).await.unwrap();
    let _: i64 = q(&mut c, &["HSET", "h", "f", "v"]).await.unwrap();
    let _: i64 = q(&mut c, &["ZADD", "z", "1.5", "m", "-2", "n"]).await.unwrap();
    for key in ["k", "l", "s", "h", "z"] {
        let payload: Vec<u8> = cmd("DUMP").arg(key).query_async(&mut c).await.unwrap();
        let copy = format!("{key}-copy");
        let r: String = cmd("RESTORE").arg(&copy).arg(60_000).arg(&payload).query_async(&mut c).await.unwrap();
        assert_eq!(r, "OK");
        let t: String = q(&mut c, &["TYPE", &copy]).await.unwrap();
        assert_eq!(t, q::<String>(&mut c, &["TYPE", key]).await.unwrap());
        assert!(q::<i64>(&mut c, &["PTTL", &copy]).await.unwrap() > 50_000);
    }
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGE", "z-copy", "0", "-1", "WITHSCORES"]).await.unwrap(),
        ["n", "-2", "m", "1.5"]
    );
    assert_eq!(q::<Option<Vec<u8>>>(&mut c, &["DUMP", "missing"]).await.unwrap(), None);

    // The replica restores the same keys, with the same absolute expiry.
    let _: i64 = q(&mut c, &["WAIT", "1", "5000"]).await.unwrap();
    let mut r = redis_conn(reader).await;
    assert_eq!(q::<Vec<String>>(&mut r, &["LRANGE", "l-copy", "0", "-1"]).await.unwrap(), ["a", "b", "c"]);
    let primary_at: i64 = q(&mut c, &["PEXPIRETIME", "h-copy"]).await.unwrap();
    assert_eq!(q::<i64>(&mut r, &["PEXPIRETIME", "h-copy"]).await.unwrap(), primary_at);
}

/// Redis's lazyfree: UNLINK of a big value and FLUSHALL ASYNC free in the background and
/// count in INFO; used_memory counts the backlog as not counted for eviction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlink_and_flush_async_free_in_the_background() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: true, ..Default::default() });
    let (port, _) = cluster.create_group("lazy", 1, "everysec").await;
    let mut c = redis_conn(port).await;
    let empty = info_field(&mut c, "used_memory").await;
    let members: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
    let mut sadd = cmd("SADD");
    sadd.arg("big").arg(&members);
    let _: i64 = sadd.query_async(&mut c).await.unwrap();
    let _: String = q(&mut c, &["SET", "small", "x"]).await.unwrap();
    let full = info_field(&mut c, "used_memory").await;
    assert!(full > empty + 500_000, "used_memory {empty} -> {full}");
    let backlog = info_field(&mut c, "mem_not_counted_for_evict").await;
    assert!(backlog > 0 && backlog == info_field(&mut c, "mem_replication_backlog").await);

    ok(&mut c, &["CONFIG", "RESETSTAT"]).await;
    assert_eq!(info_field(&mut c, "lazyfreed_objects").await, 0);
    assert_eq!(q::<i64>(&mut c, &["UNLINK", "big", "small", "missing"]).await.unwrap(), 2);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "big"]).await.unwrap(), 0);
    let freed = |want: i64| async move {
        let mut c = redis_conn(port).await;
        for _ in 0..100 {
            if info_field(&mut c, "lazyfreed_objects").await == want
                && info_field(&mut c, "lazyfree_pending_objects").await == 0
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("lazyfreed_objects never reached {want}");
    };
    // The big set goes to the background; the small string is freed at once.
    freed(1).await;
    assert!(info_field(&mut c, "used_memory").await < full);

    for i in 0..50 {
        let _: String = q(&mut c, &["SET", &format!("k{i}"), "v"]).await.unwrap();
    }
    ok(&mut c, &["FLUSHALL", "ASYNC"]).await;
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]).await.unwrap(), 0);
    freed(51).await;
    // Without ASYNC nothing goes to the background.
    let _: String = q(&mut c, &["SET", "k", "v"]).await.unwrap();
    ok(&mut c, &["FLUSHALL"]).await;
    freed(51).await;
    let err = q::<Value>(&mut c, &["FLUSHALL", "LATER"]).await.unwrap_err();
    assert!(err.to_string().contains("syntax error"), "{err}");
}
