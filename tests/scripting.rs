//! Lua scripting through the gateway with a real client: EVAL/EVALSHA/SCRIPT with Redis's
//! semantics, a script's writes atomic for other clients and on replicas, loaded scripts
//! carried to a replica added later (full sync) and kept across a failover, busy scripts
//! answered BUSY and ended by SCRIPT KILL / FUNCTION KILL, cluster-mode routing.

mod support;

use std::time::Duration;

use ferrocache_proto::admin::v1 as api;
use redis::Value;
use support::{eventually, redis_conn, Cluster, Options};

type Conn = redis::aio::MultiplexedConnection;

async fn q(c: &mut Conn, args: &[&str]) -> redis::RedisResult<Value> {
    let mut command = redis::cmd(args[0]);
    for a in &args[1..] {
        command.arg(*a);
    }
    command.query_async(c).await
}

fn primary(g: &api::ReplicationGroup) -> String {
    let m = g.node_groups[0].node_group_members.iter().find(|m| m.current_role == "primary").expect("a primary");
    m.cache_cluster_id.clone()
}

const INCR_1000: &str = "for i = 1, 1000 do redis.call('INCR', KEYS[1]) end return redis.call('GET', KEYS[1])";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_are_atomic_replicate_and_survive_a_failover() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: true, ..Default::default() });
    let (port, reader) = cluster.create_group("lua", 0, "everysec").await;
    let mut c = redis_conn(port).await;

    // The client library's Script: EVALSHA, then SCRIPT LOAD on NOSCRIPT.
    let incr_by = redis::Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    let n: i64 = incr_by.key("s").arg(5).invoke_async(&mut c).await.unwrap();
    assert_eq!(n, 5);
    let n: i64 = incr_by.key("s").arg(2).invoke_async(&mut c).await.unwrap();
    assert_eq!(n, 7);

    // INFO commandstats counts the commands scripts run, as Redis does: a refused one as
    // rejected, one answering an error as failed.
    q(&mut c, &["CONFIG", "RESETSTAT"]).await.unwrap();
    q(&mut c, &["SET", "mykey", "myval"]).await.unwrap();
    let body = "redis.call('set', KEYS[1], 0) redis.call('expire', KEYS[1], 0) \
                redis.call('geoadd', KEYS[1], 0, 0, 'bar') \
                redis.pcall('incr', 'nosuchtype', 'extra') redis.pcall('lpush', KEYS[1], 'x') return 1";
    assert_eq!(q(&mut c, &["EVAL", body, "1", "mykey"]).await.unwrap(), Value::Int(1));
    let stats = match q(&mut c, &["INFO", "commandstats"]).await.unwrap() {
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::VerbatimString { text, .. } => text,
        other => panic!("{other:?}"),
    };
    for want in ["cmdstat_eval:calls=1,", "cmdstat_set:calls=2,", "cmdstat_expire:calls=1,", "cmdstat_geoadd:calls=1,"]
    {
        assert!(stats.contains(want), "{want} in {stats}");
    }
    let lpush = stats.lines().find(|l| l.starts_with("cmdstat_lpush:")).unwrap_or_default();
    assert!(lpush.ends_with("failed_calls=1"), "{stats}");
    let incr = stats.lines().find(|l| l.starts_with("cmdstat_incr:")).unwrap_or_default();
    assert!(incr.contains("calls=0,") && incr.contains("rejected_calls=1,"), "{stats}");

    // 1000 INCRs in one script: a concurrent reader sees the counter before or after, never
    // in between.
    let mut watcher = redis_conn(port).await;
    let watch = tokio::spawn(async move {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..300 {
            if let Ok(Value::BulkString(v)) = q(&mut watcher, &["GET", "counter"]).await {
                seen.insert(String::from_utf8_lossy(&v).parse::<i64>().unwrap_or(-1));
            }
        }
        seen
    });
    for _ in 0..5 {
        let _: Value = q(&mut c, &["EVAL", INCR_1000, "1", "counter"]).await.unwrap();
    }
    let seen = watch.await.unwrap();
    assert!(seen.iter().all(|n| n % 1000 == 0), "a reader saw a script half done: {seen:?}");
    assert_eq!(q(&mut c, &["GET", "counter"]).await.unwrap(), Value::BulkString(b"5000".to_vec()));
    let Value::BulkString(sha) = q(&mut c, &["SCRIPT", "LOAD", "return 'loaded:' .. ARGV[1]"]).await.unwrap() else {
        panic!("SCRIPT LOAD answers the SHA1")
    };
    let sha = String::from_utf8(sha).unwrap();
    // A function library, loaded before the replica exists: the full sync must carry it.
    let library = "#!lua name=counters\n\
        redis.register_function('bump', function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)\n\
        redis.register_function{function_name='peek', callback=function(keys) return redis.call('GET', keys[1]) end, flags={'no-writes'}}\n";
    assert_eq!(q(&mut c, &["FUNCTION", "LOAD", library]).await.unwrap(), Value::BulkString(b"counters".to_vec()));
    let e = q(&mut c, &["FUNCTION", "LOAD", library]).await.unwrap_err().to_string();
    assert!(e.contains("Library 'counters' already exists"), "{e}");
    assert_eq!(q(&mut c, &["FCALL", "bump", "1", "fcounter", "5"]).await.unwrap(), Value::Int(5));
    let e = q(&mut c, &["FCALL_RO", "bump", "1", "fcounter", "5"]).await.unwrap_err().to_string();
    assert!(e.contains("Can not execute a script with write flag using *_ro command"), "{e}");

    // A replica added now gets the keys, the loaded scripts and the functions by full sync.
    let mut admin = cluster.admin(0).await;
    let increase = api::IncreaseReplicaCountRequest {
        replication_group_id: "lua".into(),
        new_replica_count: 1,
        apply_immediately: true,
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match admin.increase_replica_count(increase.clone()).await {
            Ok(_) => break,
            // Every datanode must have registered first.
            Err(s) if s.code() == tonic::Code::FailedPrecondition && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(s) => panic!("increase: {s:?}"),
        }
    }
    eventually(Duration::from_secs(30), "the new replica online", || async {
        let g = cluster.describe("lua").await;
        g.node_groups[0].node_group_members.len() == 2
            && g.node_groups[0].node_group_members.iter().all(|m| m.member_status == "online")
    })
    .await;
    // The replica holds the same result.
    let mut r = redis_conn(reader).await;
    eventually(Duration::from_secs(10), "the replica has the scripts' writes", || {
        let mut r = r.clone();
        async move { q(&mut r, &["GET", "counter"]).await.ok() == Some(Value::BulkString(b"5000".to_vec())) }
    })
    .await;
    // Read-only scripts run on replicas; writes there are refused.
    let got = q(&mut r, &["EVAL_RO", "return redis.call('GET', KEYS[1])", "1", "counter"]).await.unwrap();
    assert_eq!(got, Value::BulkString(b"5000".to_vec()));
    assert_eq!(q(&mut r, &["FCALL_RO", "peek", "1", "fcounter"]).await.unwrap(), Value::BulkString(b"5".to_vec()));
    let e = q(&mut r, &["EVAL", "return redis.call('SET', 'x', 1)", "0"]).await.unwrap_err().to_string();
    assert!(e.contains("read only replica"), "{e}");
    // FUNCTION LOAD writes (its subcommand says, not FUNCTION): a replica's library never
    // diverges from its primary's.
    let lib = "#!lua name=onreplica
redis.register_function('r1', function() return 1 end)";
    let e = q(&mut r, &["FUNCTION", "LOAD", lib]).await.unwrap_err().to_string();
    assert!(e.contains("read only replica"), "{e}");
    assert_eq!(q(&mut r, &["FUNCTION", "LIST", "LIBRARYNAME", "onreplica"]).await.unwrap(), Value::Array(vec![]));
    let e = q(&mut c, &["EVAL_RO", "return redis.call('SET', 'x', 1)", "0"]).await.unwrap_err().to_string();
    assert!(e.contains("Write commands are not allowed from read-only scripts"), "{e}");

    // The loaded script is known to the replica, so EVALSHA works after a failover.
    let before = primary(&cluster.describe("lua").await);
    admin
        .test_failover(api::TestFailoverRequest { replication_group_id: "lua".into(), node_group_id: "0001".into() })
        .await
        .expect("TestFailover");
    eventually(Duration::from_secs(20), "the replica took over", || async {
        let g = cluster.describe("lua").await;
        primary(&g) != before && g.status == "available"
    })
    .await;
    let mut after = redis_conn(port).await;
    eventually(Duration::from_secs(10), "EVALSHA on the new primary", || {
        let (mut after, sha) = (after.clone(), sha.clone());
        async move {
            q(&mut after, &["EVALSHA", &sha, "0", "x"]).await.ok() == Some(Value::BulkString(b"loaded:x".to_vec()))
        }
    })
    .await;
    assert_eq!(q(&mut after, &["GET", "counter"]).await.unwrap(), Value::BulkString(b"5000".to_vec()));
    // So do the functions; SCRIPT FLUSH leaves them alone.
    assert_eq!(q(&mut after, &["FCALL", "bump", "1", "fcounter", "2"]).await.unwrap(), Value::Int(7));
    assert_eq!(q(&mut after, &["SCRIPT", "FLUSH"]).await.unwrap(), Value::Okay);
    assert_eq!(q(&mut after, &["FCALL", "peek", "1", "fcounter"]).await.unwrap(), Value::BulkString(b"7".to_vec()));
    let Value::BulkString(dump) = q(&mut after, &["FUNCTION", "DUMP"]).await.unwrap() else { panic!("FUNCTION DUMP") };
    assert_eq!(q(&mut after, &["FUNCTION", "FLUSH"]).await.unwrap(), Value::Okay);
    let e = q(&mut after, &["FCALL", "peek", "1", "fcounter"]).await.unwrap_err().to_string();
    assert!(e.contains("Function not found"), "{e}");
    let mut restore = redis::cmd("FUNCTION");
    restore.arg("RESTORE").arg(dump);
    assert_eq!(restore.query_async::<Value>(&mut after).await.unwrap(), Value::Okay);
    assert_eq!(q(&mut after, &["FCALL", "peek", "1", "fcounter"]).await.unwrap(), Value::BulkString(b"7".to_vec()));
}

/// The first BUSY answer to a read once the script started on another connection (until it
/// has, reads are answered as usual).
async fn first_busy(c: &mut Conn) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match q(c, &["GET", "busy:probe"]).await {
            Err(e) => return e.to_string(),
            Ok(_) if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            Ok(_) => panic!("the script never made the node busy"),
        }
    }
}

/// Waits for `EVAL`/`FCALL` on `c` to fail (it runs on its own task meanwhile).
fn run_script(mut c: Conn, args: &'static [&'static str]) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        match q(&mut c, args).await {
            Ok(v) => format!("{v:?}"),
            Err(e) => e.to_string(),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_scripts_answer_busy_and_script_kill_ends_them() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: true, ..Default::default() });
    let (port, reader) = cluster.create_group("busy", 1, "everysec").await;
    let mut c = redis_conn(port).await;
    // lua-time-limit is busy-reply-threshold's old name.
    assert_eq!(q(&mut c, &["CONFIG", "SET", "lua-time-limit", "300"]).await.unwrap(), Value::Okay);
    let got = q(&mut c, &["CONFIG", "GET", "busy-reply-threshold"]).await.unwrap();
    assert_eq!(
        got,
        Value::Array(vec![Value::BulkString(b"busy-reply-threshold".to_vec()), Value::BulkString(b"300".to_vec())])
    );
    // (The client shows an error code as `BUSY: ...`.)
    let busy_eval = "BUSY: Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
    let busy_function = "BUSY: Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

    // A script that never ends: others wait, then get BUSY; SCRIPT KILL ends it.
    let spin = run_script(redis_conn(port).await, &["EVAL", "while true do end", "0"]);
    let e = first_busy(&mut c).await;
    assert!(e.contains(busy_eval), "{e}");
    // So are the commands the gateway answers itself (the script came through it), as
    // Redis answers every command but a few; AUTH, HELLO, MULTI ... are still served.
    let e = q(&mut c, &["PING"]).await.unwrap_err().to_string();
    assert!(e.contains(busy_eval), "{e}");
    let e = q(&mut c, &["ECHO", "x"]).await.unwrap_err().to_string();
    assert!(e.contains(busy_eval), "{e}");
    assert!(q(&mut c, &["HELLO", "2"]).await.is_ok());
    // A command queued meanwhile is refused and dooms its transaction; the EXEC is refused
    // too and discards it, as Redis's is.
    let mut tx = redis_conn(port).await;
    q(&mut tx, &["MULTI"]).await.unwrap();
    let e = q(&mut tx, &["INCR", "busy:n"]).await.unwrap_err().to_string();
    assert!(e.contains(busy_eval), "{e}");
    let e = q(&mut tx, &["EXEC"]).await.unwrap_err().to_string();
    assert!(e.contains("Transaction discarded because of: BUSY"), "{e}");
    let e = q(&mut c, &["FUNCTION", "KILL"]).await.unwrap_err().to_string();
    assert!(e.contains(busy_eval), "{e}");
    assert_eq!(q(&mut c, &["SCRIPT", "KILL"]).await.unwrap(), Value::Okay);
    let e = spin.await.unwrap();
    assert!(e.contains("Script killed by user with SCRIPT KILL... script: "), "{e}");
    assert_eq!(q(&mut c, &["PING"]).await.unwrap(), Value::SimpleString("PONG".into()));
    assert_eq!(q(&mut c, &["GET", "k"]).await.unwrap(), Value::Nil);
    assert_eq!(q(&mut c, &["GET", "busy:n"]).await.unwrap(), Value::Nil, "the refused transaction did not run");
    let e = q(&mut c, &["SCRIPT", "KILL"]).await.unwrap_err().to_string();
    assert!(e.contains("No scripts in execution right now."), "{e}");

    // One that wrote cannot be killed: it runs to its end (3 s, past the failure detector),
    // the primary stays primary, and its writes reach the replica.
    let before = primary(&cluster.describe("busy").await);
    const WRITE_THEN_SPIN: &str = "redis.call('SET', KEYS[1], 'v') \
        local t = tonumber(redis.call('TIME')[1]) \
        while tonumber(redis.call('TIME')[1]) < t + 3 do end return 'done'";
    let long = run_script(redis_conn(port).await, &["EVAL", WRITE_THEN_SPIN, "1", "w"]);
    first_busy(&mut c).await;
    let e = q(&mut c, &["SCRIPT", "KILL"]).await.unwrap_err().to_string();
    assert!(e.contains("Sorry the script already executed write commands"), "{e}");
    assert!(long.await.unwrap().contains("done"));
    assert_eq!(q(&mut c, &["GET", "w"]).await.unwrap(), Value::BulkString(b"v".to_vec()));
    let g = cluster.describe("busy").await;
    assert_eq!(primary(&g), before, "a busy primary is not a failed one");
    let r = redis_conn(reader).await;
    eventually(Duration::from_secs(10), "the replica has the script's write", || {
        let mut r = r.clone();
        async move { q(&mut r, &["GET", "w"]).await.ok() == Some(Value::BulkString(b"v".to_vec())) }
    })
    .await;

    // A function: FUNCTION STATS shows it, SCRIPT KILL points at FUNCTION KILL, which ends it.
    let library = "#!lua name=spin\nredis.register_function('spin', function() while true do end end)";
    assert_eq!(q(&mut c, &["FUNCTION", "LOAD", library]).await.unwrap(), Value::BulkString(b"spin".to_vec()));
    let spin = run_script(redis_conn(port).await, &["FCALL", "spin", "0"]);
    assert!(first_busy(&mut c).await.contains(busy_function));
    let stats = format!("{:?}", q(&mut c, &["FUNCTION", "STATS"]).await.unwrap());
    assert!(stats.contains("running_script") && stats.contains("duration_ms") && stats.contains("spin"), "{stats}");
    let e = q(&mut c, &["SCRIPT", "KILL"]).await.unwrap_err().to_string();
    assert!(e.contains(busy_function), "{e}");
    assert_eq!(q(&mut c, &["FUNCTION", "KILL"]).await.unwrap(), Value::Okay);
    let e = spin.await.unwrap();
    assert!(e.contains("Script killed by user with SCRIPT KILL... script: spin, on @user_function:"), "{e}");
    assert_eq!(q(&mut c, &["EVAL", "return 1", "0"]).await.unwrap(), Value::Int(1));
}

/// INCRs KEYS[1] after spinning ARGV[1] microseconds (past the time a datanode's stream waits
/// for a script before going on without it).
const SPIN_THEN_INCR: &str = "local t = redis.call('TIME') local start = t[1] * 1000000 + t[2] \
    repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start >= tonumber(ARGV[1]) \
    return redis.call('INCR', KEYS[1])";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_scripts_from_many_clients_keep_each_clients_order() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: true, ..Default::default() });
    let (port, _) = cluster.create_group("order", 0, "everysec").await;
    // Every client pipelines scripts and reads of what they wrote; the datanode runs what
    // arrived together as one batch, and some scripts outlast the stream's wait for them.
    let clients = (0..12).map(|client| async move {
        let mut c = redis_conn(port).await;
        let key = format!("order:{client}");
        let mut pipe = redis::pipe();
        for round in 0..40 {
            let spin = if round % 10 == 3 { "3000" } else { "0" };
            pipe.cmd("EVAL").arg(SPIN_THEN_INCR).arg(1).arg(&key).arg(spin);
            pipe.cmd("GET").arg(&key);
        }
        let got: Vec<Value> = pipe.query_async(&mut c).await.unwrap();
        for (round, pair) in got.chunks(2).enumerate() {
            let n = round as i64 + 1;
            assert_eq!(pair[0], Value::Int(n), "client {client}, round {round}");
            assert_eq!(pair[1], Value::BulkString(n.to_string().into_bytes()), "client {client}, round {round}");
        }
    });
    tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(clients)).await.unwrap();

    // Scripts back to back run as one run on a thread of their own; one that holds the node
    // long hands the rest back to the stream. None may run before the one holding the node
    // or be answered BUSY as if another client's script held it (each client here only
    // waits for its own scripts, far below busy-reply-threshold).
    let clients = (0..12).map(|client| async move {
        let mut c = redis_conn(port).await;
        let key = format!("run:{client}");
        let mut pipe = redis::pipe();
        for round in 0..150 {
            let spin = if round % 25 == 7 { "2000" } else { "0" };
            pipe.cmd("EVAL").arg(SPIN_THEN_INCR).arg(1).arg(&key).arg(spin);
        }
        let got: Vec<Value> = pipe.query_async(&mut c).await.unwrap();
        for (round, reply) in got.into_iter().enumerate() {
            assert_eq!(reply, Value::Int(round as i64 + 1), "client {client}, script {round}");
        }
    });
    tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(clients)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_in_cluster_mode_route_by_their_keys() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: true, ..Default::default() });
    let (proxy, _) = cluster.create_cluster_group("luac", 2, 0).await;
    let mut c = redis_conn(proxy).await;
    // "a" (slot 15495) and "b" (slot 3300) live in different node groups.
    let set = "return redis.call('SET', KEYS[1], ARGV[1])";
    for key in ["a", "b"] {
        assert_eq!(q(&mut c, &["EVAL", set, "1", key, key]).await.unwrap(), Value::Okay);
        assert_eq!(q(&mut c, &["GET", key]).await.unwrap(), Value::BulkString(key.as_bytes().to_vec()));
    }
    let e = q(&mut c, &["EVAL", "return 1", "2", "a", "b"]).await.unwrap_err().to_string();
    assert!(e.contains("don't hash to the same slot"), "{e}");
    let e = q(&mut c, &["EVAL", "return redis.call('GET', 'b')", "1", "a"]).await.unwrap_err().to_string();
    assert!(e.contains("Script attempted to access a non local key in a cluster node"), "{e}");
    // SCRIPT LOAD reaches every node group.
    let Value::BulkString(sha) = q(&mut c, &["SCRIPT", "LOAD", "return redis.call('GET', KEYS[1])"]).await.unwrap()
    else {
        panic!("SCRIPT LOAD answers the SHA1")
    };
    let sha = String::from_utf8(sha).unwrap();
    for key in ["a", "b"] {
        let got = q(&mut c, &["EVALSHA", &sha, "1", key]).await.unwrap();
        assert_eq!(got, Value::BulkString(key.as_bytes().to_vec()));
    }
}

/// Python's `limits` (its Redis moving-window, fixed-window and sliding-window limiters;
/// the moving and sliding ones run Lua scripts), unchanged. Installed from PyPI when missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_limits_rate_limiters_work() {
    if !support::python_with("limits, redis", &["redis", "limits"]) {
        return;
    }
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 1, gateway: true, ..Default::default() });
    let (port, _) = cluster.create_group("limits", 0, "everysec").await;
    let script = format!(
        r#"
from limits import storage, strategies, parse
s = storage.RedisStorage("redis://127.0.0.1:{port}")
for name, cls in [("moving", strategies.MovingWindowRateLimiter),
                  ("fixed", strategies.FixedWindowRateLimiter),
                  ("sliding", strategies.SlidingWindowCounterRateLimiter)]:
    limiter = cls(s)
    item = parse("5/minute")
    hits = [limiter.hit(item, "user", name) for _ in range(8)]
    assert hits == [True] * 5 + [False] * 3, (name, hits)
    stats = limiter.get_window_stats(item, "user", name)
    assert stats.remaining == 0, (name, stats)
    assert limiter.test(item, "other", name), name
print("OK")
"#
    );
    let (ok, text) = support::run_python(&script);
    assert!(ok && text.contains("OK"), "{text}");
}

/// cmsgpack and struct pack byte for byte as Redis's (the expected bytes are redis-server
/// 7.0's) and their errors read the same; BullMQ's scripts rely on cmsgpack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_libraries_pack_as_redis() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 1, gateway: true, ..Default::default() });
    let (port, _) = cluster.create_group("msgpack", 0, "everysec").await;
    let mut c = redis_conn(port).await;
    let packed = |v: Value| match v {
        Value::BulkString(b) => b,
        other => panic!("{other:?}"),
    };
    let got =
        q(&mut c, &["EVAL", "return cmsgpack.pack(1, -1, 200, -200, 70000, 1.5, 0.1, 2^40, -2^40, 2^63)", "0"]).await;
    let want = b"\x01\xff\xcc\xc8\xd1\xff8\xce\x00\x01\x11p\xca?\xc0\x00\x00\xcb?\xb9\x99\x99\x99\x99\x99\x9a\xcf\x00\x00\x01\x00\x00\x00\x00\x00\xd3\xff\xff\xff\x00\x00\x00\x00\x00\xca_\x00\x00\x00";
    assert_eq!(packed(got.unwrap()), want.to_vec());
    let got = q(&mut c, &["EVAL", "return cmsgpack.pack({1,2,{a=1}}, {}, {[1]=1,[3]=3}, true, nil)", "0"]).await;
    assert_eq!(packed(got.unwrap()), b"\x93\x01\x02\x81\xa1a\x01\x90\x82\x01\x01\x03\x03\xc3\xc0".to_vec());
    let got =
        q(&mut c, &["EVAL", "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 'a', {1, 2}), 2)}", "0"]).await.unwrap();
    assert_eq!(got, Value::Array(vec![Value::Int(3), Value::Int(1), Value::BulkString(b"a".to_vec())]));
    let e = q(&mut c, &["EVAL", "return cmsgpack.unpack('\\193')", "0"]).await.unwrap_err().to_string();
    assert!(e.contains("user_script:1: Bad data format in input. script: "), "{e}");
    let got = q(&mut c, &["EVAL", "local ok, e = pcall(cmsgpack.unpack, '\\220') return e", "0"]).await.unwrap();
    assert_eq!(got, Value::BulkString(b"Missing bytes in input.".to_vec()));

    let got =
        q(&mut c, &["EVAL", "return struct.pack('>i2<I4 b B h H l L', 1, 2, -1, 255, -2, 65535, -3, 4)", "0"]).await;
    let want = b"\x00\x01\x02\x00\x00\x00\xff\xff\xfe\xff\xff\xff\xfd\xff\xff\xff\xff\xff\xff\xff\x04\x00\x00\x00\x00\x00\x00\x00";
    assert_eq!(packed(got.unwrap()), want.to_vec());
    let got = q(&mut c, &["EVAL", "return {struct.unpack('b c0', struct.pack('b c0', 3, 'abc'))}", "0"]).await.unwrap();
    assert_eq!(got, Value::Array(vec![Value::BulkString(b"abc".to_vec()), Value::Int(5)]));
    let got = q(&mut c, &["EVAL", "return struct.size('>i2 b !4 i')", "0"]).await.unwrap();
    assert_eq!(got, Value::Int(8));
    // redis.setresp(3): RESP3 types reach the script as Redis gives them.
    let _: Value = q(&mut c, &["HSET", "h", "a", "1"]).await.unwrap();
    let _: Value = q(&mut c, &["SADD", "s", "x"]).await.unwrap();
    let script = "redis.setresp(3) local h = redis.call('HGETALL', 'h') local s = redis.call('SMEMBERS', 's') \
        local z = redis.call('GET', 'nosuch') return {h.map.a, tostring(s.set.x), tostring(z == nil), {double = 1.5}}";
    let got = q(&mut c, &["EVAL", script, "0"]).await.unwrap();
    let want = ["1", "true", "true", "1.5"].map(|s| Value::BulkString(s.as_bytes().to_vec()));
    assert_eq!(got, Value::Array(want.to_vec()));
    let e = q(&mut c, &["EVAL", "return struct.pack('q', 1)", "0"]).await.unwrap_err().to_string();
    assert!(e.contains("user_script:1: bad argument #1 to 'pack' (invalid format option 'q') script: "), "{e}");
}
