//! Pub/sub through the gateways with real clients: messages cross gateways (a publisher on
//! one, subscribers on another), patterns and shard channels, PUBSUB introspection counted
//! over every gateway, RESP2's subscribed mode and RESP3 push frames, and a slow subscriber
//! cut off at the output buffer limit instead of buffered without bound.

mod support;

use std::time::{Duration, Instant};

use redis::Value;
use support::{q, raw_exchange, redis_conn, wait_for_port, Cluster, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_reach_subscribers_on_every_gateway() {
    let mut cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: true, ..Default::default() });
    let (port, reader) = cluster.create_group("ps", 1, "everysec").await;
    cluster.add_gateway("gateway-2", "127.0.0.2");
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.2", port)).await.is_err() {
        assert!(Instant::now() < deadline, "the second gateway never opened its endpoint");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_port(reader).await;

    // A redis-rs subscriber on gateway 2, a pattern subscriber on gateway 1.
    let client2 = redis::Client::open(format!("redis://127.0.0.2:{port}/")).unwrap();
    let mut sub = client2.get_async_pubsub().await.unwrap();
    sub.subscribe("news").await.unwrap();
    let client1 = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut psub = client1.get_async_pubsub().await.unwrap();
    psub.psubscribe("n*").await.unwrap();

    // The subscriptions were acknowledged by the primary before SUBSCRIBE answered, so this
    // PUBLISH (through gateway 1, the reader endpoint even) counts and reaches both.
    let mut c = redis_conn(reader).await;
    assert_eq!(q::<i64>(&mut c, &["PUBLISH", "news", "hello"]).await.unwrap(), 2);
    assert_eq!(q::<i64>(&mut c, &["PUBLISH", "other", "nobody"]).await.unwrap(), 0);
    let msg = tokio::time::timeout(Duration::from_secs(5), sub.on_message().next()).await.unwrap().unwrap();
    assert_eq!((msg.get_channel_name(), msg.get_payload::<String>().unwrap().as_str()), ("news", "hello"));
    let pmsg = tokio::time::timeout(Duration::from_secs(5), psub.on_message().next()).await.unwrap().unwrap();
    assert_eq!(pmsg.get_pattern::<String>().unwrap(), "n*");
    assert_eq!(pmsg.get_payload::<String>().unwrap(), "hello");

    // Introspection counts every gateway's clients.
    assert_eq!(q::<Vec<String>>(&mut c, &["PUBSUB", "CHANNELS"]).await.unwrap(), ["news"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["PUBSUB", "CHANNELS", "x*"]).await.unwrap(), Vec::<String>::new());
    assert_eq!(
        q::<(String, i64, String, i64)>(&mut c, &["PUBSUB", "NUMSUB", "news", "none"]).await.unwrap(),
        ("news".into(), 1, "none".into(), 0)
    );
    assert_eq!(q::<i64>(&mut c, &["PUBSUB", "NUMPAT"]).await.unwrap(), 1);
    assert!(q::<Value>(&mut c, &["PUBSUB", "NOPE"]).await.unwrap_err().to_string().contains("Try PUBSUB HELP"));

    // Unsubscribing is seen everywhere.
    sub.unsubscribe("news").await.unwrap();
    let mut numsub = 1;
    for _ in 0..50 {
        numsub = q::<(String, i64)>(&mut c, &["PUBSUB", "NUMSUB", "news"]).await.unwrap().1;
        if numsub == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(numsub, 0);

    // RESP2 subscribed mode: only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET.
    let want = b"*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n";
    let got = raw_exchange(port, b"SUBSCRIBE a b\r\nGET k\r\nPING\r\n", want).await;
    assert!(got.ends_with(want), "{}", String::from_utf8_lossy(&got));
    let want = b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n";
    assert!(raw_exchange(port, b"UNSUBSCRIBE\r\n", want).await.ends_with(want));

    // RESP3: confirmations and messages are push frames, and other commands still work.
    let mut raw = tokio::net::TcpStream::connect(("127.0.0.2", port)).await.unwrap();
    raw.write_all(b"HELLO 3\r\nSSUBSCRIBE {s}1\r\nGET k\r\n").await.unwrap();
    let mut got = Vec::new();
    let confirmed = b">3\r\n$10\r\nssubscribe\r\n$4\r\n{s}1\r\n:1\r\n_\r\n";
    read_until(&mut raw, &mut got, confirmed).await;
    assert_eq!(q::<i64>(&mut c, &["SPUBLISH", "{s}1", "sharded"]).await.unwrap(), 1);
    assert_eq!(q::<Vec<String>>(&mut c, &["PUBSUB", "SHARDCHANNELS"]).await.unwrap(), ["{s}1"]);
    let message = b">3\r\n$8\r\nsmessage\r\n$4\r\n{s}1\r\n$7\r\nsharded\r\n";
    read_until(&mut raw, &mut got, message).await;
    // NUMSUB / SHARDNUMSUB answer a flat array under RESP3 too, as Redis does.
    raw.write_all(b"PUBSUB SHARDNUMSUB {s}1\r\nPUBSUB NUMSUB a\r\n").await.unwrap();
    read_until(&mut raw, &mut got, b"*2\r\n$4\r\n{s}1\r\n:1\r\n*2\r\n$1\r\na\r\n:0\r\n").await;
    // MEMORY STATS: a map whose ratios are doubles (clients read them as floats).
    raw.write_all(b"MEMORY STATS\r\n").await.unwrap();
    read_until(&mut raw, &mut got, b"$13\r\nfragmentation\r\n,1\r\n$19\r\nfragmentation.bytes\r\n:0\r\n").await;
    assert!(String::from_utf8_lossy(&got).contains("$18\r\ndataset.percentage\r\n,"));
}

async fn read_until(raw: &mut tokio::net::TcpStream, got: &mut Vec<u8>, want: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !got.ends_with(want) && Instant::now() < deadline {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(1), raw.read(&mut buf)).await.map_or(0, |r| r.unwrap_or(0));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.ends_with(want), "{}", String::from_utf8_lossy(got));
}

/// Asks `raw` for its CLIENT ID (read into `got`).
async fn client_id(raw: &mut tokio::net::TcpStream, got: &mut Vec<u8>) -> String {
    raw.write_all(b"CLIENT ID\r\n").await.unwrap();
    read_until(raw, got, b"\r\n").await;
    String::from_utf8_lossy(&got[1..got.len() - 2]).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_does_not_read_is_disconnected() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 1, gateway: true, ..Default::default() });
    let (port, _) = cluster.create_group("slow", 0, "everysec").await;
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    slow.write_all(b"SUBSCRIBE firehose\r\n").await.unwrap();
    let mut confirmation = [0u8; 64];
    let _ = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut confirmation)).await.unwrap();

    // Publish far more than the 32 MB limit while the subscriber reads nothing.
    let mut c = redis_conn(port).await;
    let payload = "x".repeat(256 * 1024);
    for _ in 0..200 {
        let _: i64 = q(&mut c, &["PUBLISH", "firehose", &payload]).await.unwrap();
    }
    // The gateway let go of it: once the bytes already in flight are read, the socket ends.
    let mut total = 0usize;
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(n) => total += n,
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(ended, "the slow subscriber is still connected after {total} bytes");
    assert!(total < 200 * 256 * 1024, "it got everything ({total} bytes): nothing was cut");
    // Everyone else carries on, and the subscription goes with the connection.
    let mut receivers = 1;
    for _ in 0..50 {
        receivers = q::<i64>(&mut c, &["PUBLISH", "firehose", "x"]).await.unwrap();
        if receivers == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(receivers, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyspace_notifications_follow_redis() {
    // One runtime thread each, as `ferrocache up` runs them: the gateway then handles a
    // reply and the feed one after the other, which the tracking checks below need.
    let opts = Options {
        datanodes: 1,
        gateway: true,
        gateway_workers: Some(1),
        datanode_workers: Some(1),
        ..Default::default()
    };
    let cluster = Cluster::start(opts);
    let (port, _) = cluster.create_group("notify", 0, "everysec").await;
    let mut c = redis_conn(port).await;
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut sub = client.get_async_pubsub().await.unwrap();
    sub.psubscribe("__key*__:*").await.unwrap();

    // Off by default: nothing is published.
    let _: () = q(&mut c, &["SET", "quiet", "1"]).await.unwrap();
    let _: String = q(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]).await.unwrap();
    let got: String = q::<Vec<String>>(&mut c, &["CONFIG", "GET", "notify-keyspace-events"]).await.unwrap().join(" ");
    assert_eq!(got, "notify-keyspace-events AKE");

    let _: () = q(&mut c, &["SET", "k", "v"]).await.unwrap();
    let _: i64 = q(&mut c, &["RPUSH", "l", "a"]).await.unwrap();
    let _: String = q(&mut c, &["LPOP", "l"]).await.unwrap();
    let _: i64 = q(&mut c, &["PEXPIRE", "k", "50"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _: Option<String> = q(&mut c, &["GET", "k"]).await.unwrap();
    // Inside MULTI/EXEC each command fires its events, as in Redis.
    let _: () =
        redis::pipe().atomic().cmd("INCR").arg("t").cmd("RENAME").arg("t").arg("u").query_async(&mut c).await.unwrap();
    // So does each command a script runs.
    let script = "redis.call('SET', KEYS[1], 'x') redis.call('LPUSH', KEYS[2], 'a') return 1";
    let _: i64 = q(&mut c, &["EVAL", script, "2", "sk", "sl"]).await.unwrap();
    // Streams: XADD's own trim fires xtrim after xadd; XREADGROUP creating its consumer fires
    // xgroup-createconsumer.
    let _: String = q(&mut c, &["XADD", "st", "MAXLEN", "1", "1-1", "f", "v"]).await.unwrap();
    let _: String = q(&mut c, &["XADD", "st", "MAXLEN", "1", "2-1", "f", "v"]).await.unwrap();
    let _: String = q(&mut c, &["XGROUP", "CREATE", "st", "g", "0"]).await.unwrap();
    let _: redis::Value = q(&mut c, &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "st", ">"]).await.unwrap();
    // A BITFIELD that changes no bit announces nothing; a BITOP with an empty result only del.
    let _: () = q(&mut c, &["SET", "bf", "a"]).await.unwrap();
    let _: Vec<i64> = q(&mut c, &["BITFIELD", "bf", "SET", "u8", "0", "97"]).await.unwrap();
    let _: i64 = q(&mut c, &["BITOP", "AND", "bf", "nokey"]).await.unwrap();

    let want = [
        ("__keyspace@0__:k", "set"),
        ("__keyevent@0__:set", "k"),
        ("__keyspace@0__:l", "rpush"),
        ("__keyevent@0__:rpush", "l"),
        ("__keyspace@0__:l", "lpop"),
        ("__keyevent@0__:lpop", "l"),
        ("__keyspace@0__:l", "del"),
        ("__keyevent@0__:del", "l"),
        ("__keyspace@0__:k", "expire"),
        ("__keyevent@0__:expire", "k"),
        ("__keyspace@0__:k", "expired"),
        ("__keyevent@0__:expired", "k"),
        ("__keyspace@0__:t", "incrby"),
        ("__keyevent@0__:incrby", "t"),
        ("__keyspace@0__:t", "rename_from"),
        ("__keyevent@0__:rename_from", "t"),
        ("__keyspace@0__:u", "rename_to"),
        ("__keyevent@0__:rename_to", "u"),
        ("__keyspace@0__:sk", "set"),
        ("__keyevent@0__:set", "sk"),
        ("__keyspace@0__:sl", "lpush"),
        ("__keyevent@0__:lpush", "sl"),
        ("__keyspace@0__:st", "xadd"),
        ("__keyevent@0__:xadd", "st"),
        ("__keyspace@0__:st", "xadd"),
        ("__keyevent@0__:xadd", "st"),
        ("__keyspace@0__:st", "xtrim"),
        ("__keyevent@0__:xtrim", "st"),
        ("__keyspace@0__:st", "xgroup-create"),
        ("__keyevent@0__:xgroup-create", "st"),
        ("__keyspace@0__:st", "xgroup-createconsumer"),
        ("__keyevent@0__:xgroup-createconsumer", "st"),
        ("__keyspace@0__:bf", "set"),
        ("__keyevent@0__:set", "bf"),
        ("__keyspace@0__:bf", "del"),
        ("__keyevent@0__:del", "bf"),
    ];
    let mut got = Vec::new();
    let mut stream = sub.on_message();
    while got.len() < want.len() {
        let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await else { break };
        got.push((m.get_channel_name().to_string(), m.get_payload::<String>().unwrap()));
    }
    let want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(got, want);
    drop(stream);

    // MEMORY USAGE counts the key, its value and the per-key overhead.
    let _: () = q(&mut c, &["SET", "sized", &"x".repeat(1000)]).await.unwrap();
    let usage: i64 = q(&mut c, &["MEMORY", "USAGE", "sized"]).await.unwrap();
    assert!((1000..1300).contains(&usage), "{usage}");
    assert_eq!(q::<Option<i64>>(&mut c, &["MEMORY", "USAGE", "missing"]).await.unwrap(), None);
    client_tracking(port, &mut c).await;
}

/// CLIENT TRACKING: RESP3 pushes in the default mode (once per read), BCAST by prefix, a
/// RESP2 redirect to a `__redis__:invalidate` subscriber, and a flush invalidating all.
async fn client_tracking(port: u16, c: &mut support::Conn) {
    let connect = || tokio::net::TcpStream::connect(("127.0.0.1", port));
    let mut reader = connect().await.unwrap();
    let mut got = Vec::new();
    reader.write_all(b"HELLO 3\r\nCLIENT TRACKING ON\r\nGET tk\r\n").await.unwrap();
    read_until(&mut reader, &mut got, b"+OK\r\n_\r\n").await;
    let _: () = q(c, &["SET", "tk", "1"]).await.unwrap();
    read_until(&mut reader, &mut got, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$2\r\ntk\r\n").await;
    // Told once: until it reads the key again, a change is not announced to it.
    got.clear();
    let _: () = q(c, &["SET", "tk", "2"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    reader.write_all(b"PING\r\n").await.unwrap();
    read_until(&mut reader, &mut got, b"+PONG\r\n").await;
    assert_eq!(got, b"+PONG\r\n", "{}", String::from_utf8_lossy(&got));

    let mut bcast = connect().await.unwrap();
    let mut bgot = Vec::new();
    bcast.write_all(b"HELLO 3\r\nCLIENT TRACKING ON BCAST PREFIX user:\r\nPING\r\n").await.unwrap();
    read_until(&mut bcast, &mut bgot, b"+OK\r\n+PONG\r\n").await;
    let _: () = q(c, &["SET", "other", "1"]).await.unwrap();
    let _: () = q(c, &["SET", "user:1", "1"]).await.unwrap();
    bgot.clear();
    read_until(&mut bcast, &mut bgot, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$6\r\nuser:1\r\n").await;
    assert!(!String::from_utf8_lossy(&bgot).contains("other"), "BCAST under user: only");
    // The keys one command changed come in one message, as Redis sends them once per turn.
    let _: () = q(c, &["MSET", "user:2", "a", "user:3", "b"]).await.unwrap();
    read_until(&mut bcast, &mut bgot, b">2\r\n$10\r\ninvalidate\r\n*2\r\n$6\r\nuser:2\r\n$6\r\nuser:3\r\n").await;

    // NOLOOP: a client is not told of its own writes, only of the others'.
    let mut own = connect().await.unwrap();
    let mut ogot = Vec::new();
    own.write_all(b"HELLO 3\r\nCLIENT TRACKING ON BCAST PREFIX loop: NOLOOP\r\nSET loop:1 a\r\nPING\r\n")
        .await
        .unwrap();
    read_until(&mut own, &mut ogot, b"+OK\r\n+OK\r\n+PONG\r\n").await;
    let _: () = q(c, &["SET", "loop:2", "b"]).await.unwrap();
    read_until(&mut own, &mut ogot, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$6\r\nloop:2\r\n").await;
    assert!(!String::from_utf8_lossy(&ogot).contains("loop:1"), "{}", String::from_utf8_lossy(&ogot));
    // The BCAST client without NOLOOP of the same gateway hears of neither (other prefix),
    // and one with the prefix but no NOLOOP hears of its own write, after the write's reply
    // (as Redis 7 sends it), both for BCAST and for a key it read.
    let mut echo = connect().await.unwrap();
    let mut egot = Vec::new();
    echo.write_all(b"HELLO 3\r\nCLIENT TRACKING ON BCAST PREFIX echo:\r\n").await.unwrap();
    read_until(&mut echo, &mut egot, b"+OK\r\n").await;
    egot.clear();
    echo.write_all(b"SET echo:1 a\r\n").await.unwrap();
    read_until(&mut echo, &mut egot, b"+OK\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$6\r\necho:1\r\n").await;
    assert!(egot.starts_with(b"+OK"), "{}", String::from_utf8_lossy(&egot));
    let mut writer = connect().await.unwrap();
    let mut wgot = Vec::new();
    let _: () = q(c, &["SET", "mine", "1"]).await.unwrap();
    // The SET's change reaches this gateway on the primary's feed, not with its reply: once
    // the BCAST client hears of a later write, the feed is past it. Otherwise the writer's
    // read below could be told of it (an early invalidation, harmless to a cache, but not
    // what the loop counts).
    let _: () = q(c, &["SET", "user:sync", "1"]).await.unwrap();
    bgot.clear();
    read_until(&mut bcast, &mut bgot, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$9\r\nuser:sync\r\n").await;
    writer.write_all(b"HELLO 3\r\nCLIENT TRACKING ON\r\nGET mine\r\n").await.unwrap();
    read_until(&mut writer, &mut wgot, b"+OK\r\n$1\r\n1\r\n").await;
    for n in 2..22 {
        wgot.clear();
        writer.write_all(b"INCR mine\r\n").await.unwrap();
        let reply_then_push = format!(":{n}\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$4\r\nmine\r\n");
        read_until(&mut writer, &mut wgot, reply_then_push.as_bytes()).await;
        assert_eq!(wgot, reply_then_push.as_bytes(), "the INCR's reply comes before its invalidation");
        wgot.clear();
        writer.write_all(b"GET mine\r\n").await.unwrap();
        read_until(&mut writer, &mut wgot, format!("{n}\r\n").as_bytes()).await;
    }

    // A write whose reply came before another client's read is not announced to that
    // reader, though the change can reach the gateway after the read (feed and replies are
    // different streams): as in Redis, only later writes are. Many tries, the race is narrow.
    let mut readers = Vec::new();
    for i in 0..100 {
        let key = format!("fresh{i}");
        let _: () = q(c, &["SET", &key, "1"]).await.unwrap();
        let mut r = connect().await.unwrap();
        let mut rgot = Vec::new();
        r.write_all(format!("HELLO 3\r\nCLIENT TRACKING ON\r\nGET {key}\r\n").as_bytes()).await.unwrap();
        read_until(&mut r, &mut rgot, b"$1\r\n1\r\n").await;
        readers.push((r, rgot));
    }
    // Past every SET above on the feed, then a round trip on each reader.
    let _: () = q(c, &["SET", "user:fresh", "1"]).await.unwrap();
    bgot.clear();
    read_until(&mut bcast, &mut bgot, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$10\r\nuser:fresh\r\n").await;
    for (r, rgot) in &mut readers {
        r.write_all(b"PING\r\n").await.unwrap();
        read_until(r, rgot, b"+PONG\r\n").await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    for (i, (r, rgot)) in readers.iter_mut().enumerate() {
        let mut buf = [0u8; 4096];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1), r.read(&mut buf)).await {
            rgot.extend_from_slice(&buf[..n]);
        }
        assert!(!String::from_utf8_lossy(rgot).contains("invalidate"), "reader {i}: {}", String::from_utf8_lossy(rgot));
    }
    // They still track their keys.
    let _: () = q(c, &["SET", "fresh7", "2"]).await.unwrap();
    let (r, rgot) = &mut readers[7];
    read_until(r, rgot, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$6\r\nfresh7\r\n").await;
    drop(readers);

    // A script's declared keys are tracked once it ran a read-only command, as in Redis.
    wgot.clear();
    let eval = |body: &str, key: &str| format!("EVAL \"{body}\" 1 {key}\r\n");
    writer.write_all(eval("redis.call('set', 'sk3', 'x')", "sk1").as_bytes()).await.unwrap();
    read_until(&mut writer, &mut wgot, b"_\r\n").await;
    writer.write_all(eval("return redis.call('get', 'sk3')", "sk2").as_bytes()).await.unwrap();
    read_until(&mut writer, &mut wgot, b"$1\r\nx\r\n").await;
    let _: () = q(c, &["MSET", "sk1", "1", "sk2", "1"]).await.unwrap();
    wgot.clear();
    read_until(&mut writer, &mut wgot, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nsk2\r\n").await;
    writer.write_all(b"PING\r\n").await.unwrap();
    read_until(&mut writer, &mut wgot, b"+PONG\r\n").await;
    assert!(!String::from_utf8_lossy(&wgot).contains("sk1"), "a script that only wrote tracks nothing");
    // Inside MULTI too.
    wgot.clear();
    let queued = format!("MULTI\r\n{}EXEC\r\n", eval("return redis.call('get', 'sk3')", "sk4"));
    writer.write_all(queued.as_bytes()).await.unwrap();
    read_until(&mut writer, &mut wgot, b"*1\r\n$1\r\nx\r\n").await;
    let _: () = q(c, &["SET", "sk4", "1"]).await.unwrap();
    read_until(&mut writer, &mut wgot, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nsk4\r\n").await;

    // RESP2: invalidations go to the redirect target as __redis__:invalidate messages.
    let mut listener = connect().await.unwrap();
    let mut lgot = Vec::new();
    let listener_id = client_id(&mut listener, &mut lgot).await;
    listener.write_all(b"SUBSCRIBE __redis__:invalidate\r\n").await.unwrap();
    read_until(&mut listener, &mut lgot, b":1\r\n").await;
    let redirect = format!("CLIENT TRACKING ON REDIRECT {listener_id}\r\nGET rk\r\nCLIENT GETREDIR\r\n");
    let mut tracked = connect().await.unwrap();
    let mut tgot = Vec::new();
    tracked.write_all(redirect.as_bytes()).await.unwrap();
    read_until(&mut tracked, &mut tgot, format!("+OK\r\n$-1\r\n:{listener_id}\r\n").as_bytes()).await;
    let _: () = q(c, &["SET", "rk", "1"]).await.unwrap();
    let message = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$2\r\nrk\r\n";
    read_until(&mut listener, &mut lgot, message).await;
    // A RESP3 target gets `invalidate` pushes, subscribed to __redis__:invalidate or not.
    let mut listener3 = connect().await.unwrap();
    let mut l3got = Vec::new();
    let id3 = client_id(&mut listener3, &mut l3got).await;
    listener3.write_all(b"HELLO 3\r\n").await.unwrap();
    read_until(&mut listener3, &mut l3got, b"modules\r\n*0\r\n").await;
    listener3.write_all(b"SUBSCRIBE __redis__:invalidate\r\n").await.unwrap();
    read_until(&mut listener3, &mut l3got, b":1\r\n").await;
    let mut tracked3 = connect().await.unwrap();
    let mut t3got = Vec::new();
    tracked3.write_all(format!("CLIENT TRACKING ON REDIRECT {id3}\r\nGET rk3\r\n").as_bytes()).await.unwrap();
    read_until(&mut tracked3, &mut t3got, b"+OK\r\n$-1\r\n").await;
    let _: () = q(c, &["SET", "rk3", "1"]).await.unwrap();
    read_until(&mut listener3, &mut l3got, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nrk3\r\n").await;
    // ... and unsubscribed: a RESP3 connection takes pushes whatever it did.
    let mut listener4 = connect().await.unwrap();
    let mut l4got = Vec::new();
    let id4 = client_id(&mut listener4, &mut l4got).await;
    listener4.write_all(b"HELLO 3\r\n").await.unwrap();
    read_until(&mut listener4, &mut l4got, b"modules\r\n*0\r\n").await;
    let mut tracked4 = connect().await.unwrap();
    let mut t4got = Vec::new();
    tracked4.write_all(format!("CLIENT TRACKING ON REDIRECT {id4}\r\nGET rk4\r\n").as_bytes()).await.unwrap();
    read_until(&mut tracked4, &mut t4got, b"+OK\r\n$-1\r\n").await;
    let _: () = q(c, &["SET", "rk4", "1"]).await.unwrap();
    read_until(&mut listener4, &mut l4got, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nrk4\r\n").await;

    // RESP3 with a redirect whose target disconnects: the tracking client is told
    // `tracking-redir-broken` (its invalidations have nowhere to go), as Redis tells it.
    let mut gone = connect().await.unwrap();
    let mut ggot = Vec::new();
    let gone_id = client_id(&mut gone, &mut ggot).await;
    let mut orphan = connect().await.unwrap();
    let mut rgot = Vec::new();
    let setup = format!("HELLO 3\r\nCLIENT TRACKING ON REDIRECT {gone_id}\r\nGET bk\r\n");
    orphan.write_all(setup.as_bytes()).await.unwrap();
    read_until(&mut orphan, &mut rgot, b"+OK\r\n_\r\n").await;
    gone.write_all(b"QUIT\r\n").await.unwrap();
    read_until(&mut gone, &mut ggot, b"+OK\r\n").await;
    drop(gone);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _: () = q(c, &["SET", "bk", "1"]).await.unwrap();
    read_until(&mut orphan, &mut rgot, format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{gone_id}\r\n").as_bytes())
        .await;
    orphan.write_all(b"CLIENT TRACKINGINFO\r\n").await.unwrap();
    read_until(&mut orphan, &mut rgot, b"*0\r\n").await;
    assert!(String::from_utf8_lossy(&rgot).contains("broken_redirect"), "{}", String::from_utf8_lossy(&rgot));

    // A flush invalidates everything: a null instead of keys.
    let _: () = q(c, &["FLUSHALL"]).await.unwrap();
    read_until(&mut reader, &mut got, b">2\r\n$10\r\ninvalidate\r\n_\r\n").await;
    let info: redis::Value = q(c, &["CLIENT", "TRACKINGINFO"]).await.unwrap();
    assert!(format!("{info:?}").contains("off"), "{info:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_after_another_clients_unsubscribe_does_not_count_it() {
    // As `ferrocache up` runs it: one runtime thread, which serves clients in arrival order.
    let opts = Options { datanodes: 1, gateway: true, gateway_workers: Some(1), ..Default::default() };
    let cluster = Cluster::start(opts);
    let (port, _) = cluster.create_group("order", 0, "everysec").await;
    let mut publisher = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut lost = 0;
    for _ in 0..50 {
        let mut sub = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut got = Vec::new();
        sub.write_all(b"SUBSCRIBE chan1 chan2 chan3\r\n").await.unwrap();
        read_until(&mut sub, &mut got, b"chan3\r\n:3\r\n").await;
        // Redis's suite sends UNSUBSCRIBE and PUBLISHes on another connection at once,
        // reading no confirmation: Redis has run the UNSUBSCRIBE by then.
        sub.write_all(b"UNSUBSCRIBE\r\n").await.unwrap();
        publisher.write_all(b"PUBLISH chan1 hello\r\n").await.unwrap();
        let mut reply = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), publisher.read(&mut reply)).await.unwrap().unwrap();
        if &reply[..n] != b":0\r\n" {
            lost += 1;
        }
    }
    assert_eq!(lost, 0, "PUBLISH counted a client that had unsubscribed");
}
