//! Command semantics through a real Redis client (the `redis` crate) against a real
//! cluster: strings, keys, expiry, connection and server commands.

mod support;

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{cmd, RedisResult, Value};
use support::{raw_exchange, redis_conn, Cluster, Options};

async fn q<T: redis::FromRedisValue>(c: &mut MultiplexedConnection, args: &[&str]) -> RedisResult<T> {
    let mut command = cmd(args[0]);
    for a in &args[1..] {
        command.arg(*a);
    }
    command.query_async(c).await
}

async fn err(c: &mut MultiplexedConnection, args: &[&str]) -> String {
    match q::<Value>(c, args).await {
        Ok(v) => panic!("{args:?} should fail, got {v:?}"),
        Err(e) => {
            let code = e.code().unwrap_or("").to_string();
            let detail = e.detail().unwrap_or("").to_string();
            format!("{code} {detail}").trim().to_string()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_behave_like_redis() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 1, gateway: true, ..Default::default() });
    let (port, _) = cluster.create_group("cmds", 0, "everysec").await;
    let mut c = redis_conn(port).await;
    strings(&mut c).await;
    counters_and_ranges(&mut c).await;
    keys_and_expiry(&mut c).await;
    connection_and_server(&mut c, port).await;
    hashes(&mut c).await;
    server_odds_and_ends(&mut c).await;
    slowlog_latency_and_command_stats(&mut c).await;
    monitor_streams_commands(&mut c, port).await;
    client_controls(&mut c, port).await;
    redis_suite_details(&mut c).await;
    // UNSUBSCRIBE of channels never subscribed to confirms each of them.
    let want = b"*3\r\n$11\r\nunsubscribe\r\n$3\r\nfoo\r\n:0\r\n*3\r\n$11\r\nunsubscribe\r\n$3\r\nbar\r\n:0\r\n";
    let got = raw_exchange(port, b"UNSUBSCRIBE foo bar\r\n", want).await;
    assert!(got.ends_with(want), "{}", String::from_utf8_lossy(&got));
}

/// Details Redis's own test suite checks (tests/unit/*.tcl run against a gateway).
async fn redis_suite_details(c: &mut MultiplexedConnection) {
    use support::expect_all;
    // Test suites turn snapshots off with CONFIG SET save "": kept and shown, schedules nothing.
    let _: () = q(c, &["CONFIG", "SET", "save", ""]).await.unwrap();
    let _: () = q(c, &["CONFIG", "SET", "save", "3600 1 300 100"]).await.unwrap();
    assert_eq!(q::<Vec<String>>(c, &["CONFIG", "GET", "save"]).await.unwrap(), ["save", "3600 1 300 100"]);
    assert!(err(c, &["CONFIG", "SET", "save", "3600"]).await.contains("Invalid save parameters"));
    expect_all(
        c,
        &[
            // The 6.x names of the listpack limits are aliases: one setting, both names.
            ("CONFIG SET zset-max-ziplist-entries 0", "OK"),
            ("ZADD suite:z 1 a", "1"),
            ("OBJECT ENCODING suite:z", "skiplist"),
            ("CONFIG SET zset-max-listpack-entries 128", "OK"),
            ("OBJECT ENCODING suite:z", "listpack"),
            ("CONFIG SET hash-max-listpack-value 8", "OK"),
            ("HSET suite:h f 0", "1"),
            ("HINCRBYFLOAT suite:h f 0.0000005", "0.0000005"),
            ("OBJECT ENCODING suite:h", "hashtable"),
            ("CONFIG SET hash-max-ziplist-value 64", "OK"),
            ("CONFIG GET hash-max-listpack-value", "[hash-max-listpack-value,64]"),
            ("CONFIG SET stream-node-max-entries 10", "OK"),
            ("CONFIG SET list-compress-depth 2", "OK"),
            ("XADD suite:s 1-18446744073709551615 a b", "1-18446744073709551615"),
            ("XADD suite:s 1-* c d", "(error) ERR The ID specified in XADD is equal or smaller"),
            ("SET suite:str foobar", "OK"),
            ("BITCOUNT suite:str -6 -7", "0"),
            ("LPOP suite:list 1 1", "(error) ERR wrong number of arguments for 'lpop' command"),
            ("FUNCTION LOAD foo bar", "(error) ERR Unknown option given: foo"),
            ("COMMAND LIST bad_arg", "(error) ERR syntax error"),
            ("CLIENT KILL USER no_such_user", "(error) ERR No such user 'no_such_user'"),
            // Writing back what CONFIG GET showed succeeds (Redis's own suite does it with
            // every parameter); what Ferrocache fixes cannot change.
            ("CONFIG SET appendonly yes maxclients 10000", "OK"),
            ("CONFIG SET appendonly no", "(error) ERR CONFIG SET failed (possibly related to argument 'appendonly') - argument(s) must be one of the following: yes"),
            ("CONFIG SET maxclients 5", "(error) ERR CONFIG SET failed (possibly related to argument 'maxclients') - set by the gateway's --maxclients"),
        ],
    )
    .await;
    // The asking client's own line counts the command it is running in its query buffer,
    // and CLIENT LIST has Redis 7.2's fields (no 7.4 watch=).
    let me: String = q(c, &["CLIENT", "INFO"]).await.unwrap();
    assert!(me.contains(" multi=-1 qbuf=26 ") && !me.contains("watch="), "{me}");
    // The commands a transaction ran count in commandstats.
    let _: () = q(c, &["CONFIG", "RESETSTAT"]).await.unwrap();
    let () = redis::pipe().atomic().cmd("SET").arg("suite:t").arg("v").ignore().query_async(c).await.unwrap();
    let stats: String = q(c, &["INFO", "commandstats"]).await.unwrap();
    assert!(stats.contains("cmdstat_set:calls=1,"), "{stats}");
    // rdb_changes_since_last_save counts the changes since the newest base.
    let changes = |info: String| {
        info.lines().find_map(|l| l.strip_prefix("rdb_changes_since_last_save:")?.trim().parse::<u64>().ok())
    };
    let before = changes(q(c, &["INFO", "persistence"]).await.unwrap()).expect("rdb_changes_since_last_save");
    let _: () = q(c, &["SET", "suite:dirty", "1"]).await.unwrap();
    let after = changes(q(c, &["INFO", "persistence"]).await.unwrap()).unwrap();
    assert!(after > before, "{before} -> {after}");
}

/// CLIENT KILL / PAUSE / UNPAUSE / UNBLOCK / NO-TOUCH / LIST fields, over raw connections.
async fn client_controls(c: &mut MultiplexedConnection, port: u16) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let open = || async move {
        let (rd, wr) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap().into_split();
        (tokio::io::BufReader::new(rd).lines(), wr)
    };
    let (mut lines, mut wr) = open().await;
    wr.write_all(b"CLIENT ID\r\n").await.unwrap();
    let id: u64 = next(&mut lines).await.trim_start_matches(':').parse().unwrap();

    // CLIENT LIST shows what a connection is doing.
    wr.write_all(b"MULTI\r\nGET a\r\n").await.unwrap();
    assert_eq!(next(&mut lines).await, "+OK");
    assert_eq!(next(&mut lines).await, "+QUEUED");
    let list: String = q(c, &["CLIENT", "LIST", "ID", &id.to_string()]).await.unwrap();
    assert!(list.contains(" flags=x ") && list.contains(" multi=1 "), "{list}");
    wr.write_all(b"DISCARD\r\n").await.unwrap();
    assert_eq!(next(&mut lines).await, "+OK");

    // UNBLOCK: as if timed out, or with an error.
    wr.write_all(b"BLPOP client:nothing 0\r\n").await.unwrap();
    support::eventually(Duration::from_secs(5), "the client shows as blocked", || {
        let mut c = c.clone();
        async move {
            let list: String = q(&mut c, &["CLIENT", "LIST", "ID", &id.to_string()]).await.unwrap();
            list.contains(" flags=b ")
        }
    })
    .await;
    assert_eq!(q::<i64>(c, &["CLIENT", "UNBLOCK", &id.to_string()]).await.unwrap(), 1);
    assert_eq!(next(&mut lines).await, "*-1");
    assert_eq!(q::<i64>(c, &["CLIENT", "UNBLOCK", &id.to_string()]).await.unwrap(), 0);
    wr.write_all(b"BLPOP client:nothing 0\r\n").await.unwrap();
    support::eventually(Duration::from_secs(5), "blocked again", || {
        let mut c = c.clone();
        let id = id.to_string();
        async move { q::<i64>(&mut c, &["CLIENT", "UNBLOCK", &id, "ERROR"]).await.unwrap() == 1 }
    })
    .await;
    assert_eq!(next(&mut lines).await, "-UNBLOCKED client unblocked via CLIENT UNBLOCK");
    assert_eq!(
        err(c, &["CLIENT", "UNBLOCK", "1", "MAYBE"]).await,
        "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
    );

    // PAUSE WRITE holds writes, not reads, until UNPAUSE.
    assert_eq!(q::<String>(c, &["CLIENT", "PAUSE", "10000", "WRITE"]).await.unwrap(), "OK");
    wr.write_all(b"SET client:paused 1\r\n").await.unwrap();
    let held = tokio::time::timeout(Duration::from_millis(300), next(&mut lines)).await;
    assert!(held.is_err(), "a write went through a pause");
    let _: Option<String> = q(c, &["GET", "client:paused"]).await.unwrap();
    assert_eq!(q::<String>(c, &["CLIENT", "UNPAUSE"]).await.unwrap(), "OK");
    assert_eq!(next(&mut lines).await, "+OK");
    assert_eq!(err(c, &["CLIENT", "PAUSE", "10", "SOME"]).await, "ERR CLIENT PAUSE mode must be WRITE or ALL");
    assert_eq!(err(c, &["CLIENT", "PAUSE", "-1"]).await, "ERR timeout is negative");
    // A timeout the clock cannot hold pauses (it must not break the connection).
    assert_eq!(q::<String>(c, &["CLIENT", "PAUSE", "9223372036854775807", "WRITE"]).await.unwrap(), "OK");
    assert_eq!(q::<String>(c, &["CLIENT", "UNPAUSE"]).await.unwrap(), "OK");

    assert_eq!(q::<String>(c, &["CLIENT", "NO-TOUCH", "ON"]).await.unwrap(), "OK");
    let info: String = q(c, &["CLIENT", "INFO"]).await.unwrap();
    assert!(info.contains(" flags=T "), "{info}");
    assert_eq!(q::<String>(c, &["CLIENT", "NO-TOUCH", "OFF"]).await.unwrap(), "OK");
    let help: Vec<String> = q(c, &["CLIENT", "HELP"]).await.unwrap();
    assert!(help[0].starts_with("CLIENT <subcommand>"), "{help:?}");

    // KILL: by address (old form) and by id (new form); the connection closes.
    assert_eq!(err(c, &["CLIENT", "KILL", "1.2.3.4:5"]).await, "ERR No such client");
    assert_eq!(err(c, &["CLIENT", "KILL", "ID", "x"]).await, "ERR client-id should be greater than 0");
    assert_eq!(err(c, &["CLIENT", "KILL", "TYPE", "x"]).await, "ERR Unknown client type 'x'");
    assert_eq!(q::<i64>(c, &["CLIENT", "KILL", "ID", &id.to_string()]).await.unwrap(), 1);
    let closed = tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await.unwrap();
    assert!(matches!(closed, Ok(None) | Err(_)), "{closed:?}");
}

type Lines = tokio::io::Lines<tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>>;

async fn next(lines: &mut Lines) -> String {
    tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await.unwrap().unwrap().unwrap()
}

/// MONITOR streams this gateway's commands for the group in Redis's format, credentials
/// redacted, admin commands left out; RESET ends it.
async fn monitor_streams_commands(c: &mut MultiplexedConnection, port: u16) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (rd, mut wr) = socket.into_split();
    let mut lines = tokio::io::BufReader::new(rd).lines();
    wr.write_all(b"MONITOR\r\n").await.unwrap();
    assert_eq!(next(&mut lines).await, "+OK");
    let _: Value = q(c, &["CONFIG", "GET", "maxmemory"]).await.unwrap();
    assert_eq!(q::<String>(c, &["SET", "mon:k", "a \"b\"\n"]).await.unwrap(), "OK");
    let _: Value = redis::cmd("AUTH").arg("nobody").arg("secret").query_async(c).await.unwrap_or(Value::Nil);
    let line = next(&mut lines).await;
    let (stamp, rest) = line.split_once(' ').unwrap();
    assert!(stamp.starts_with('+') && stamp.contains('.'), "{line}");
    assert!(rest.starts_with("[0 127.0.0.1:") && rest.ends_with("] \"SET\" \"mon:k\" \"a \\\"b\\\"\\n\""), "{line}");
    let line = next(&mut lines).await;
    assert!(line.ends_with("\"AUTH\" \"(redacted)\" \"(redacted)\""), "{line}");
    // What never runs is not shown: an unknown command, one of the wrong arity.
    let _ = q::<Value>(c, &["NOSUCH", "x"]).await;
    let _ = q::<Value>(c, &["GET"]).await;
    let _: Value = q(c, &["GET", "mon:k"]).await.unwrap();
    let line = next(&mut lines).await;
    assert!(line.ends_with("\"GET\" \"mon:k\""), "{line}");
    // The commands a script runs come from the primary, as Redis shows them: `[db lua]`.
    let script = "redis.call('SELECT', 2); return redis.call('GET', KEYS[1])";
    let _: Value = q(c, &["EVAL", script, "1", "mon:k"]).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.push(next(&mut lines).await);
    }
    assert!(seen[0].contains("] \"EVAL\""), "{seen:?}");
    assert!(seen[1].ends_with(" [0 lua] \"SELECT\" \"2\""), "{seen:?}");
    assert!(seen[2].ends_with(" [2 lua] \"GET\" \"mon:k\""), "{seen:?}");
    wr.write_all(b"RESET\r\n").await.unwrap();
    assert_eq!(next(&mut lines).await, "+RESET");
    // A client that merely subscribes to the internal feed learns nothing of scripts.
    let mut sub = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap().get_async_pubsub().await.unwrap();
    sub.subscribe(std::str::from_utf8(ferrocache_common::MONITOR_FEED).unwrap()).await.unwrap();
    let _: Value = q(c, &["EVAL", "return redis.call('GET', KEYS[1])", "1", "mon:k"]).await.unwrap();
    let mut messages = tokio_stream::StreamExt::fuse(sub.on_message());
    assert!(tokio::time::timeout(Duration::from_millis(300), tokio_stream::StreamExt::next(&mut messages))
        .await
        .is_err());
    let channels: Vec<String> = q(c, &["PUBSUB", "CHANNELS"]).await.unwrap();
    assert!(channels.is_empty(), "{channels:?}");
}

/// SLOWLOG, LATENCY and INFO commandstats / errorstats / latencystats are measured (the
/// gateway times each command from arrival to reply).
async fn slowlog_latency_and_command_stats(c: &mut MultiplexedConnection) {
    use support::expect_all;
    expect_all(
        c,
        &[
            ("CONFIG RESETSTAT", "OK"),
            ("LATENCY LATEST", "[]"),
            ("LATENCY HISTORY command", "[]"),
            ("LATENCY GRAPH command", "(error) ERR No samples available for event 'command'"),
            ("LATENCY NOPE", "(error) ERR unknown subcommand 'NOPE'. Try LATENCY HELP."),
            ("SLOWLOG GET -2", "(error) ERR count should be greater than or equal to -1"),
            ("SLOWLOG LEN x", "(error) ERR wrong number of arguments for 'slowlog|len' command"),
            (
                "SLOWLOG GET 1 2",
                "(error) ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP.",
            ),
            // Every container's subcommand is checked as Redis's processCommand checks it.
            ("OBJECT FOO k", "(error) ERR unknown subcommand 'FOO'. Try OBJECT HELP."),
            ("OBJECT ENCODING", "(error) ERR wrong number of arguments for 'object|encoding' command"),
            ("MEMORY DOCTOR x", "(error) ERR wrong number of arguments for 'memory|doctor' command"),
            ("SCRIPT LOAD", "(error) ERR wrong number of arguments for 'script|load' command"),
            ("PUBSUB NUMPAT x", "(error) ERR wrong number of arguments for 'pubsub|numpat' command"),
            ("CLUSTER FOO", "(error) ERR unknown subcommand 'FOO'. Try CLUSTER HELP."),
            ("MEMORY USAGE stat:none SAMPLES -1", "(error) ERR syntax error"),
            ("SCRIPT FLUSH ASYNC SYNC", "(error) ERR SCRIPT FLUSH only support SYNC|ASYNC option"),
            ("ACL CAT a b", "(error) ERR unknown subcommand or wrong number of arguments for 'CAT'. Try ACL HELP."),
            ("CONFIG SET slowlog-log-slower-than 0", "OK"),
            ("SLOWLOG RESET", "OK"),
            ("SET stat:k v", "OK"),
            ("GET stat:k", "v"),
            ("GET stat:k extra", "(error) ERR wrong number of arguments for 'get' command"),
            ("INCR stat:k", "(error) ERR value is not an integer or out of range"),
            // RESET logs itself once done, as in Redis: SET, GET, INCR after it.
            ("SLOWLOG LEN", "4"),
            ("CONFIG SET slowlog-max-len 2", "OK"),
            ("SLOWLOG LEN", "2"),
            ("CONFIG SET slowlog-log-slower-than -1", "OK"),
        ],
    )
    .await;
    let entries: Vec<Value> = q(c, &["SLOWLOG", "GET", "1"]).await.unwrap();
    let text = format!("{entries:?}");
    // The newest: the second SLOWLOG LEN (the CONFIG SET after it turned the log off).
    assert!(text.contains("\"SLOWLOG\"") && text.contains("\"LEN\"") && text.contains("127.0.0.1:"), "{text}");
    let doctor: String = q(c, &["LATENCY", "DOCTOR"]).await.unwrap();
    assert!(doctor.starts_with("I'm sorry, Dave, I can't do that. Latency monitoring is disabled"), "{doctor}");
    // A 20 ms script is a latency spike past a 5 ms threshold.
    let spin = "local t = redis.call('TIME') local s = t[1] * 1000000 + t[2] \
        repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - s > 20000 return 1";
    let _: Value = q(c, &["CONFIG", "SET", "latency-monitor-threshold", "5"]).await.unwrap();
    let _: Value = q(c, &["EVAL", spin, "0"]).await.unwrap();
    let latest: Vec<Vec<Value>> = q(c, &["LATENCY", "LATEST"]).await.unwrap();
    assert_eq!(latest.len(), 1, "{latest:?}");
    assert_eq!(latest[0][0], Value::BulkString(b"command".to_vec()));
    assert!(matches!(latest[0][2], Value::Int(ms) if ms >= 20), "{latest:?}");
    let doctor: String = q(c, &["LATENCY", "DOCTOR"]).await.unwrap();
    // (CONFIG SET itself may be a spike too on a loaded machine.)
    assert!(doctor.contains("1. command: ") && doctor.contains(" latency spikes (average "), "{doctor}");
    assert_eq!(q::<i64>(c, &["LATENCY", "RESET"]).await.unwrap(), 1);
    let _: Value = q(c, &["CONFIG", "SET", "latency-monitor-threshold", "0"]).await.unwrap();

    let stats: String = q(c, &["INFO", "commandstats"]).await.unwrap();
    for want in
        ["cmdstat_set:calls=1,", "cmdstat_get:calls=1,", "rejected_calls=1,failed_calls=0", "cmdstat_incr:calls=1,"]
    {
        assert!(stats.contains(want), "{want} in {stats}");
    }
    assert!(stats.contains("cmdstat_config|set:calls="), "{stats}");
    let errors: String = q(c, &["INFO", "errorstats"]).await.unwrap();
    assert!(errors.contains("errorstat_ERR:count="), "{errors}");
    let latency: String = q(c, &["INFO", "latencystats"]).await.unwrap();
    assert!(latency.contains("latency_percentiles_usec_set:p50="), "{latency}");
    let histogram: Vec<Value> = q(c, &["LATENCY", "HISTOGRAM", "set"]).await.unwrap();
    let text = format!("{histogram:?}");
    assert!(text.contains("calls") && text.contains("histogram_usec"), "{text}");
    let everything: String = q(c, &["INFO", "everything"]).await.unwrap();
    let order: Vec<&str> = everything.lines().filter(|l| l.starts_with("# ")).collect();
    assert_eq!(
        order,
        [
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# CPU",
            "# Modules",
            "# Commandstats",
            "# Errorstats",
            "# Latencystats",
            "# Cluster",
            "# Keyspace"
        ]
    );
}

/// LOLWUT, LASTSAVE, MODULE, PFDEBUG/PFSELFTEST, RESTORE-ASKING and WAITAOF, with the replies
/// redis-server gives (7.0; WAITAOF as 7.2 documents it).
async fn server_odds_and_ends(c: &mut MultiplexedConnection) {
    use support::expect_all;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let saved: i64 = q(c, &["LASTSAVE"]).await.unwrap();
    assert!(saved > now - 600 && saved <= now + 1, "LASTSAVE {saved}, now {now}");
    expect_all(
        c,
        &[
            ("LOLWUT", "Redis ver. 7.2.0\n"),
            ("LOLWUT VERSION 5x", "(error) ERR value is not an integer or out of range"),
            ("MODULE LIST", "[]"),
            ("MODULE LOAD /x.so", "(error) ERR MODULE command not allowed. If the enable-module-command option"),
            ("MODULE LIST x", "(error) ERR wrong number of arguments for 'module|list' command"),
            ("MODULE foo", "(error) ERR unknown subcommand 'foo'. Try MODULE HELP."),
            ("DEBUG SLEEP 0", "(error) ERR DEBUG command not allowed. If the enable-debug-command option"),
            ("DEBUG", "(error) ERR wrong number of arguments for 'debug' command"),
            ("PFSELFTEST", "OK"),
            ("PFADD hll a b c", "1"),
            // Sparse while small, as in Redis (the same runs Redis prints).
            ("PFDEBUG ENCODING hll", "sparse"),
            ("PFDEBUG DECODE hll", "Z:8436 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603"),
            // The estimate is cached in the header until the next change.
            ("GETRANGE hll 15 15", "\u{fffd}"),
            ("PFCOUNT hll", "3"),
            ("GETRANGE hll 15 15", "\0"),
            ("PFADD hll a b c", "0"),
            ("GETRANGE hll 15 15", "\0"),
            ("PFDEBUG TODENSE hll", "1"),
            ("PFDEBUG ENCODING hll", "dense"),
            ("PFDEBUG DECODE hll", "(error) ERR HLL encoding is not sparse"),
            ("PFDEBUG TODENSE hll", "0"),
            ("PFDEBUG FOO hll", "(error) ERR Unknown PFDEBUG subcommand 'FOO'"),
            ("PFDEBUG GETREG nokey", "(error) ERR The specified key does not exist"),
            ("SET plain x", "OK"),
            ("PFDEBUG GETREG plain", "(error) WRONGTYPE Key is not a valid HyperLogLog string value."),
            ("WAITAOF -1 0 0", "(error) ERR value is out of range, must be positive"),
            ("WAITAOF 1 0 -1", "(error) ERR timeout is negative"),
            // appendfsync everysec: the log is fsynced within a second; no replicas here.
            ("WAITAOF 1 0 0", "[1,0]"),
            ("WAITAOF 0 1 100", "[1,0]"),
        ],
    )
    .await;
    let regs: Vec<i64> = q(c, &["PFDEBUG", "GETREG", "hll"]).await.unwrap();
    assert_eq!((regs.len(), regs.iter().filter(|&&r| r > 0).count()), (16384, 3));
    // A sparse HyperLogLog written by Redis (PFADD h a b c there) reads, decodes and
    // becomes dense on GETREG / TODENSE.
    let sparse: Vec<u8> =
        [&b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80"[..], &[0x60, 0xF3, 0x80, 0x50, 0xB1, 0x84, 0x4B, 0xFB, 0x80, 0x42, 0x5A]]
            .concat();
    let _: () = redis::cmd("SET").arg("sparse").arg(&sparse).query_async(c).await.unwrap();
    expect_all(
        c,
        &[
            ("PFDEBUG ENCODING sparse", "sparse"),
            ("PFDEBUG DECODE sparse", "Z:8436 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603"),
            ("PFCOUNT sparse", "3"),
            ("PFDEBUG TODENSE sparse", "1"),
            ("PFDEBUG ENCODING sparse", "dense"),
            ("PFCOUNT sparse", "3"),
        ],
    )
    .await;
    let dump: Vec<u8> = redis::cmd("DUMP").arg("hll").query_async(c).await.unwrap();
    let restored: String = redis::cmd("RESTORE-ASKING").arg("hll2").arg(0).arg(dump).query_async(c).await.unwrap();
    assert_eq!(restored, "OK");
    expect_all(c, &[("PFCOUNT hll2", "3")]).await;
}

async fn hashes(c: &mut MultiplexedConnection) {
    assert_eq!(q::<i64>(c, &["HSET", "user:1", "name", "ada", "age", "36"]).await.unwrap(), 2);
    assert_eq!(q::<String>(c, &["HMSET", "user:1", "lang", "en"]).await.unwrap(), "OK");
    assert_eq!(q::<String>(c, &["HGET", "user:1", "name"]).await.unwrap(), "ada");
    let all: std::collections::HashMap<String, String> = q(c, &["HGETALL", "user:1"]).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all["age"], "36");
    let vals: Vec<Option<String>> = q(c, &["HMGET", "user:1", "name", "nope"]).await.unwrap();
    assert_eq!(vals, vec![Some("ada".to_string()), None]);
    assert_eq!(q::<i64>(c, &["HINCRBY", "user:1", "age", "1"]).await.unwrap(), 37);
    assert_eq!(q::<String>(c, &["HINCRBYFLOAT", "user:1", "score", "0.5"]).await.unwrap(), "0.5");
    // A small hash lists its fields in insertion order, as Redis's listpack does (a removed
    // field's neighbours keep their places; a field added back goes last).
    let keys: Vec<String> = q(c, &["HKEYS", "user:1"]).await.unwrap();
    assert_eq!(keys, vec!["name", "age", "lang", "score"]);
    assert_eq!(q::<i64>(c, &["HDEL", "user:1", "age"]).await.unwrap(), 1);
    assert_eq!(q::<i64>(c, &["HSET", "user:1", "age", "37"]).await.unwrap(), 1);
    let keys: Vec<String> = q(c, &["HKEYS", "user:1"]).await.unwrap();
    assert_eq!(keys, vec!["name", "lang", "score", "age"]);
    assert_eq!(q::<i64>(c, &["HLEN", "user:1"]).await.unwrap(), 4);
    let (cursor, items): (String, Vec<String>) =
        cmd("HSCAN").arg("user:1").arg(0).arg("MATCH").arg("n*").query_async(c).await.unwrap();
    assert_eq!((cursor.as_str(), items), ("0", vec!["name".to_string(), "ada".to_string()]));
    let picked: Vec<String> = q(c, &["HRANDFIELD", "user:1", "2"]).await.unwrap();
    assert_eq!(picked.len(), 2);
    assert_eq!(q::<String>(c, &["TYPE", "user:1"]).await.unwrap(), "hash");
    assert_eq!(err(c, &["GET", "user:1"]).await, "WRONGTYPE Operation against a key holding the wrong kind of value");
    assert_eq!(err(c, &["HSET", "user:1", "x"]).await, "ERR wrong number of arguments for 'hset' command");
    let (_, typed): (String, Vec<String>) =
        cmd("SCAN").arg(0).arg("TYPE").arg("hash").arg("COUNT").arg(100000).query_async(c).await.unwrap();
    assert_eq!(typed, vec!["user:1"]);
    assert_eq!(q::<i64>(c, &["HDEL", "user:1", "name", "age", "lang", "score"]).await.unwrap(), 4);
    assert_eq!(q::<i64>(c, &["EXISTS", "user:1"]).await.unwrap(), 0);
}

async fn strings(c: &mut MultiplexedConnection) {
    assert_eq!(q::<String>(c, &["SET", "s", "hello"]).await.unwrap(), "OK");
    assert_eq!(q::<String>(c, &["GET", "s"]).await.unwrap(), "hello");
    assert_eq!(q::<Option<String>>(c, &["GET", "missing"]).await.unwrap(), None);
    assert_eq!(q::<Option<String>>(c, &["SET", "s", "x", "NX"]).await.unwrap(), None);
    assert_eq!(q::<Option<String>>(c, &["SET", "s", "world", "XX", "GET"]).await.unwrap(), Some("hello".into()));
    assert_eq!(err(c, &["SET", "s", "v", "NX", "XX"]).await, "ERR syntax error");
    assert_eq!(err(c, &["SET", "s", "v", "EX", "0"]).await, "ERR invalid expire time in 'set' command");
    assert_eq!(err(c, &["SET", "s", "v", "EX", "abc"]).await, "ERR value is not an integer or out of range");
    assert_eq!(q::<i64>(c, &["SETNX", "s", "y"]).await.unwrap(), 0);
    assert_eq!(q::<i64>(c, &["SETNX", "s2", "y"]).await.unwrap(), 1);
    assert_eq!(q::<String>(c, &["SETEX", "se", "100", "v"]).await.unwrap(), "OK");
    assert_eq!(err(c, &["SETEX", "se", "-1", "v"]).await, "ERR invalid expire time in 'setex' command");
    assert_eq!(q::<String>(c, &["PSETEX", "pse", "100000", "v"]).await.unwrap(), "OK");
    assert_eq!(q::<Option<String>>(c, &["GETSET", "s", "new"]).await.unwrap(), Some("world".into()));
    assert_eq!(q::<Option<String>>(c, &["GETDEL", "s"]).await.unwrap(), Some("new".into()));
    assert_eq!(q::<i64>(c, &["EXISTS", "s"]).await.unwrap(), 0);
    assert_eq!(q::<String>(c, &["MSET", "a", "1", "b", "2"]).await.unwrap(), "OK");
    assert_eq!(err(c, &["MSET", "a", "1", "b"]).await, "ERR wrong number of arguments for 'mset' command");
    assert_eq!(
        q::<Vec<Option<String>>>(c, &["MGET", "a", "nope", "b"]).await.unwrap(),
        vec![Some("1".into()), None, Some("2".into())]
    );
    assert_eq!(q::<i64>(c, &["MSETNX", "a", "9", "c", "3"]).await.unwrap(), 0);
    assert_eq!(q::<i64>(c, &["MSETNX", "c", "3", "d", "4"]).await.unwrap(), 1);
    assert_eq!(q::<i64>(c, &["APPEND", "ap", "Hello"]).await.unwrap(), 5);
    assert_eq!(q::<i64>(c, &["APPEND", "ap", " World"]).await.unwrap(), 11);
    assert_eq!(q::<i64>(c, &["STRLEN", "ap"]).await.unwrap(), 11);
    assert_eq!(q::<i64>(c, &["STRLEN", "nope"]).await.unwrap(), 0);
    // GETEX changes the expiry and returns the value.
    assert_eq!(q::<String>(c, &["GETEX", "ap", "EX", "100"]).await.unwrap(), "Hello World");
    assert_eq!(q::<i64>(c, &["TTL", "ap"]).await.unwrap(), 100);
    assert_eq!(q::<String>(c, &["GETEX", "ap", "PERSIST"]).await.unwrap(), "Hello World");
    assert_eq!(q::<i64>(c, &["TTL", "ap"]).await.unwrap(), -1);
    assert_eq!(err(c, &["GETEX", "ap", "EX", "1", "PX", "1"]).await, "ERR syntax error");
    // Binary-safe values.
    let blob: Vec<u8> = (0..=255u8).collect();
    let _: () = cmd("SET").arg("bin").arg(&blob).query_async(c).await.unwrap();
    let back: Vec<u8> = cmd("GET").arg("bin").query_async(c).await.unwrap();
    assert_eq!(back, blob);
}

async fn counters_and_ranges(c: &mut MultiplexedConnection) {
    assert_eq!(q::<i64>(c, &["INCR", "n"]).await.unwrap(), 1);
    assert_eq!(q::<i64>(c, &["INCRBY", "n", "10"]).await.unwrap(), 11);
    assert_eq!(q::<i64>(c, &["DECR", "n"]).await.unwrap(), 10);
    assert_eq!(q::<i64>(c, &["DECRBY", "n", "20"]).await.unwrap(), -10);
    let _: () = cmd("SET").arg("big").arg("9223372036854775807").query_async(c).await.unwrap();
    assert_eq!(err(c, &["INCR", "big"]).await, "ERR increment or decrement would overflow");
    let _: () = cmd("SET").arg("str").arg("abc").query_async(c).await.unwrap();
    assert_eq!(err(c, &["INCR", "str"]).await, "ERR value is not an integer or out of range");
    assert_eq!(q::<String>(c, &["INCRBYFLOAT", "f", "10.5"]).await.unwrap(), "10.5");
    assert_eq!(q::<String>(c, &["INCRBYFLOAT", "f", "0.1"]).await.unwrap(), "10.6");
    assert_eq!(err(c, &["INCRBYFLOAT", "str", "1"]).await, "ERR value is not a valid float");
    let _: () = cmd("SET").arg("r").arg("This is a string").query_async(c).await.unwrap();
    assert_eq!(q::<String>(c, &["GETRANGE", "r", "0", "3"]).await.unwrap(), "This");
    assert_eq!(q::<String>(c, &["GETRANGE", "r", "-3", "-1"]).await.unwrap(), "ing");
    assert_eq!(q::<String>(c, &["GETRANGE", "r", "10", "100"]).await.unwrap(), "string");
    assert_eq!(q::<i64>(c, &["SETRANGE", "r", "10", "Redis!"]).await.unwrap(), 16);
    assert_eq!(q::<String>(c, &["GET", "r"]).await.unwrap(), "This is a Redis!");
    assert_eq!(q::<i64>(c, &["SETRANGE", "pad", "3", "x"]).await.unwrap(), 4);
    assert_eq!(q::<Vec<u8>>(c, &["GET", "pad"]).await.unwrap(), b"\0\0\0x".to_vec());
    assert_eq!(err(c, &["SETRANGE", "pad", "-1", "x"]).await, "ERR offset is out of range");
}

async fn keys_and_expiry(c: &mut MultiplexedConnection) {
    let _: () = cmd("FLUSHALL").query_async(c).await.unwrap();
    for k in ["k1", "k2", "k3", "other"] {
        let _: () = cmd("SET").arg(k).arg("v").query_async(c).await.unwrap();
    }
    assert_eq!(q::<i64>(c, &["DBSIZE"]).await.unwrap(), 4);
    let mut keys: Vec<String> = q(c, &["KEYS", "k?"]).await.unwrap();
    keys.sort();
    assert_eq!(keys, vec!["k1", "k2", "k3"]);
    assert_eq!(q::<i64>(c, &["EXISTS", "k1", "k1", "nope"]).await.unwrap(), 2);
    assert_eq!(q::<String>(c, &["TYPE", "k1"]).await.unwrap(), "string");
    assert_eq!(q::<String>(c, &["TYPE", "nope"]).await.unwrap(), "none");
    assert_eq!(q::<i64>(c, &["DEL", "k1", "nope"]).await.unwrap(), 1);
    assert_eq!(q::<i64>(c, &["UNLINK", "k2"]).await.unwrap(), 1);
    assert_eq!(q::<i64>(c, &["TOUCH", "k3", "other", "x"]).await.unwrap(), 2);
    // SCAN visits every key exactly as a full iteration must.
    for i in 0..300 {
        let _: () = cmd("SET").arg(format!("scan:{i}")).arg(i).query_async(c).await.unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, batch): (String, Vec<String>) =
            cmd("SCAN").arg(&cursor).arg("MATCH").arg("scan:*").arg("COUNT").arg(50).query_async(c).await.unwrap();
        seen.extend(batch);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 300);
    assert_eq!(err(c, &["SCAN", "abc"]).await, "ERR invalid cursor");
    let random: Option<String> = q(c, &["RANDOMKEY"]).await.unwrap();
    assert!(random.is_some());
    // Expiry, relative and absolute, and its queries.
    assert_eq!(q::<i64>(c, &["EXPIRE", "k3", "100"]).await.unwrap(), 1);
    assert_eq!(q::<i64>(c, &["TTL", "k3"]).await.unwrap(), 100);
    assert!(q::<i64>(c, &["PTTL", "k3"]).await.unwrap() > 99_000);
    assert_eq!(q::<i64>(c, &["EXPIRE", "k3", "50", "GT"]).await.unwrap(), 0);
    assert_eq!(q::<i64>(c, &["EXPIRE", "k3", "50", "LT"]).await.unwrap(), 1);
    let at: i64 = q(c, &["EXPIRETIME", "k3"]).await.unwrap();
    let pat: i64 = q(c, &["PEXPIRETIME", "k3"]).await.unwrap();
    assert_eq!(at, (pat + 500) / 1000, "rounded to the nearest second, as Redis does");
    let _: () = q(c, &["SET", "k4", "v", "PXAT", "99999999999999"]).await.unwrap();
    assert_eq!(q::<i64>(c, &["EXPIRETIME", "k4"]).await.unwrap(), 100_000_000_000);
    assert_eq!(q::<i64>(c, &["PERSIST", "k3"]).await.unwrap(), 1);
    assert_eq!(q::<i64>(c, &["TTL", "k3"]).await.unwrap(), -1);
    assert_eq!(q::<i64>(c, &["TTL", "nope"]).await.unwrap(), -2);
    assert_eq!(q::<i64>(c, &["EXPIRETIME", "k3"]).await.unwrap(), -1);
    assert_eq!(q::<i64>(c, &["PEXPIREAT", "k3", "1"]).await.unwrap(), 1);
    assert_eq!(q::<i64>(c, &["EXISTS", "k3"]).await.unwrap(), 0, "a past expiry deletes");
    // Lazy and active expiry: the key vanishes and DBSIZE drops without anyone reading it.
    let _: () = cmd("SET").arg("short").arg("v").arg("PX").arg(100).query_async(c).await.unwrap();
    let _: () = cmd("SET").arg("short2").arg("v").arg("PX").arg(100).query_async(c).await.unwrap();
    let before: i64 = q(c, &["DBSIZE"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after: i64 = q(c, &["DBSIZE"]).await.unwrap();
    assert_eq!(after, before - 2, "active expiry removed both keys");
    assert_eq!(q::<Option<String>>(c, &["GET", "short"]).await.unwrap(), None);
    // RENAME / COPY.
    assert_eq!(err(c, &["RENAME", "nope", "x"]).await, "ERR no such key");
    let _: () = cmd("SET").arg("src").arg("v").arg("EX").arg(100).query_async(c).await.unwrap();
    assert_eq!(q::<String>(c, &["RENAME", "src", "dst"]).await.unwrap(), "OK");
    assert_eq!(q::<i64>(c, &["TTL", "dst"]).await.unwrap(), 100, "RENAME keeps the TTL");
    assert_eq!(q::<i64>(c, &["RENAMENX", "dst", "other"]).await.unwrap(), 0);
    assert_eq!(q::<i64>(c, &["COPY", "dst", "other"]).await.unwrap(), 0);
    assert_eq!(q::<i64>(c, &["COPY", "dst", "other", "REPLACE"]).await.unwrap(), 1);
    assert_eq!(q::<String>(c, &["GET", "other"]).await.unwrap(), "v");
}

async fn connection_and_server(c: &mut MultiplexedConnection, port: u16) {
    assert_eq!(q::<String>(c, &["PING"]).await.unwrap(), "PONG");
    assert_eq!(q::<String>(c, &["PING", "hi"]).await.unwrap(), "hi");
    assert_eq!(q::<String>(c, &["ECHO", "x"]).await.unwrap(), "x");
    assert_eq!(q::<String>(c, &["SELECT", "0"]).await.unwrap(), "OK");
    assert_eq!(err(c, &["SELECT", "16"]).await, "ERR DB index is out of range");
    assert_eq!(q::<String>(c, &["CLIENT", "SETNAME", "tester"]).await.unwrap(), "OK");
    assert_eq!(q::<String>(c, &["CLIENT", "GETNAME"]).await.unwrap(), "tester");
    assert_eq!(
        err(c, &["CLIENT", "SETNAME", "bad name"]).await,
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    let id: i64 = q(c, &["CLIENT", "ID"]).await.unwrap();
    let list: String = q(c, &["CLIENT", "LIST"]).await.unwrap();
    assert!(list.contains(&format!("id={id} ")) && list.contains("name=tester"), "{list}");
    let info: String = q(c, &["CLIENT", "INFO"]).await.unwrap();
    assert!(info.starts_with(&format!("id={id} ")));
    // Redis 7.2's fields in its order; clients (redis-py's client_info) read some as numbers.
    let fields: Vec<(&str, &str)> = info.split_whitespace().filter_map(|f| f.split_once('=')).collect();
    let names: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        names,
        [
            "id",
            "addr",
            "laddr",
            "fd",
            "name",
            "age",
            "idle",
            "flags",
            "db",
            "sub",
            "psub",
            "ssub",
            "multi",
            "qbuf",
            "qbuf-free",
            "argv-mem",
            "multi-mem",
            "rbs",
            "rbp",
            "obl",
            "oll",
            "omem",
            "tot-mem",
            "events",
            "cmd",
            "user",
            "redir",
            "resp",
            "lib-name",
            "lib-ver"
        ]
    );
    let field = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v).unwrap();
    for int in [
        "id",
        "age",
        "idle",
        "db",
        "sub",
        "psub",
        "multi",
        "qbuf",
        "qbuf-free",
        "obl",
        "argv-mem",
        "oll",
        "omem",
        "tot-mem",
    ] {
        assert!(field(int).parse::<i64>().is_ok(), "{int} in {info}");
    }
    // The command in flight is this CLIENT INFO: its name with the subcommand, its arguments.
    assert_eq!((field("cmd"), field("argv-mem")), ("client|info", "10"), "{info}");
    assert_eq!(err(c, &["CLIENT", "NOPE"]).await, "ERR unknown subcommand 'NOPE'. Try CLIENT HELP.");
    let count: i64 = q(c, &["COMMAND", "COUNT"]).await.unwrap();
    assert!(count > 50);
    let info: Vec<Value> = q(c, &["COMMAND", "INFO", "get"]).await.unwrap();
    assert_eq!(info.len(), 1);
    // ACL categories, not the group; COMMAND DOCS names the version a command came in.
    let text = format!("{info:?}");
    assert!(text.contains("@read") && text.contains("@string") && text.contains("@fast"), "{text}");
    // Categories in Redis's order; a container lists its subcommands with their own keys.
    assert!(text.find("@read") < text.find("@string") && text.find("@string") < text.find("@fast"), "{text}");
    let object = format!("{:?}", q::<Value>(c, &["COMMAND", "INFO", "object", "xinfo|stream"]).await.unwrap());
    assert!(object.contains("object|encoding") && object.contains("xinfo|stream"), "{object}");
    let listed: Vec<String> = q(c, &["COMMAND", "LIST", "FILTERBY", "PATTERN", "xgroup*"]).await.unwrap();
    assert!(listed.contains(&"xgroup".to_string()) && listed.contains(&"xgroup|create".to_string()), "{listed:?}");
    let listed: Vec<String> = q(c, &["COMMAND", "LIST", "FILTERBY", "ACLCAT", "hyperloglog"]).await.unwrap();
    assert_eq!(listed, ["pfadd", "pfcount", "pfdebug", "pfmerge", "pfselftest"]);
    let docs = format!("{:?}", q::<Value>(c, &["COMMAND", "DOCS", "getdel", "waitaof"]).await.unwrap());
    assert!(docs.contains("6.2.0") && docs.contains("7.2.0"), "{docs}");
    let keys: Vec<String> = q(c, &["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"]).await.unwrap();
    assert_eq!(keys, vec!["a", "b"]);
    // Movable keys, as Redis finds them.
    let keys: Vec<String> =
        q(c, &["COMMAND", "GETKEYS", "XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"]).await.unwrap();
    assert_eq!(keys, vec!["s1", "s2"]);
    let keys: Vec<String> = q(c, &["COMMAND", "GETKEYS", "EVAL", "return 1", "2", "k1", "k2", "arg"]).await.unwrap();
    assert_eq!(keys, vec!["k1", "k2"]);
    let keys: Vec<String> =
        q(c, &["COMMAND", "GETKEYS", "SORT", "l", "LIMIT", "0", "1", "STORE", "dst"]).await.unwrap();
    assert_eq!(keys, vec!["l", "dst"]);
    // Key specifications, tips and documented arguments, as redis-server gives them (the
    // bytes are redis-server 7.0's for the same input).
    let got = raw_exchange(port, b"COMMAND INFO get\r\n", b"limit\r\n:0\r\n*0\r\n").await;
    assert_eq!(
        String::from_utf8_lossy(&got),
        "*1\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n\
         +@string\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n\
         *4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n\
         $4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\n\
         limit\r\n:0\r\n*0\r\n"
    );
    let tips = format!("{:?}", q::<Value>(c, &["COMMAND", "INFO", "keys"]).await.unwrap());
    assert!(tips.contains("request_policy:all_shards") && tips.contains("nondeterministic_output"), "{tips}");
    let docs = format!("{:?}", q::<Value>(c, &["COMMAND", "DOCS", "set", "config|get"]).await.unwrap());
    for part in ["complexity", "history", "arguments", "KEEPTTL", "unix-time-milliseconds", "config|get", "parameter"] {
        assert!(docs.contains(part), "COMMAND DOCS lacks {part}: {docs}");
    }
    let got = raw_exchange(
        port,
        b"COMMAND GETKEYSANDFLAGS LMOVE a b LEFT RIGHT\r\nCOMMAND GETKEYSANDFLAGS SET k v GET\r\n\
          COMMAND GETKEYSANDFLAGS OBJECT ENCODING k\r\nCOMMAND GETKEYSANDFLAGS EVAL s 5 a\r\n\
          COMMAND GETKEYSANDFLAGS SPUBLISH c m\r\nCOMMAND GETKEYS GET\r\n",
        b"'command|getkeys' command\r\n",
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&got),
        "*2\r\n*2\r\n$1\r\na\r\n*3\r\n+RW\r\n+access\r\n+delete\r\n*2\r\n$1\r\nb\r\n*2\r\n+RW\r\n+insert\r\n\
         *1\r\n*2\r\n$1\r\nk\r\n*3\r\n+RW\r\n+access\r\n+update\r\n*1\r\n*2\r\n$1\r\nk\r\n*1\r\n+RO\r\n*0\r\n\
         -ERR The command has no key arguments\r\n-ERR wrong number of arguments for 'command|getkeys' command\r\n"
    );
    // CLIENT REPLY OFF / SKIP: those commands and the silenced ones answer nothing (the
    // bytes are redis-server's for the same input).
    let got = raw_exchange(
        port,
        b"CLIENT REPLY OFF\r\nSET a 1\r\nCLIENT REPLY SKIP\r\nGET a\r\nCLIENT REPLY ON\r\nCLIENT REPLY SKIP\r\nGET a\r\nGET a\r\nCLIENT REPLY FOO\r\nCLIENT NO-EVICT on\r\nCLIENT NO-EVICT x\r\n",
        b"+OK\r\n-ERR syntax error\r\n",
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&got), "+OK\r\n$1\r\n1\r\n-ERR syntax error\r\n+OK\r\n-ERR syntax error\r\n");
    let time: Vec<String> = q(c, &["TIME"]).await.unwrap();
    assert_eq!(time.len(), 2);
    let info: String = q(c, &["INFO"]).await.unwrap();
    for section in ["# Server", "# Clients", "# Memory", "# Persistence", "# Replication", "# Keyspace"] {
        assert!(info.contains(section), "INFO lacks {section}: {info}");
    }
    assert!(info.contains("role:master"));
    assert!(info.contains("db0:keys="));
    let only: String = q(c, &["INFO", "keyspace"]).await.unwrap();
    assert!(only.starts_with("# Keyspace") && !only.contains("# Server"), "{only}");
    assert_eq!(q::<i64>(c, &["WAIT", "0", "0"]).await.unwrap(), 0);
    assert_eq!(q::<String>(c, &["FLUSHDB"]).await.unwrap(), "OK");
    assert_eq!(q::<i64>(c, &["DBSIZE"]).await.unwrap(), 0);
}
