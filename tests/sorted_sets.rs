//! Sorted sets through the gateway with a real Redis client: ZADD's flags, ranges by rank,
//! score and lex (exclusive bounds, infinities, LIMIT, REV), set algebra with weights and
//! aggregates, pops (blocking ones woken by other clients), RESP2 vs RESP3 reply shapes,
//! Redis's error lines, and replication to a replica.

mod support;

use std::time::{Duration, Instant};

use redis::Value;
use support::{err, int, q, raw_exchange, redis_conn, strs, Cluster, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sorted_sets_follow_redis() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: true, ..Default::default() });
    let (port, reader) = cluster.create_group("zsets", 1, "everysec").await;
    let mut c = redis_conn(port).await;

    // ZADD and its flags.
    assert_eq!(int(&mut c, &["ZADD", "z", "1", "a", "2", "b", "3", "c"]).await, 3);
    assert_eq!(int(&mut c, &["ZADD", "z", "1", "a", "5", "b"]).await, 0, "updates are not counted");
    assert_eq!(int(&mut c, &["ZADD", "z", "CH", "1", "a", "2", "b", "4", "d"]).await, 2);
    assert_eq!(int(&mut c, &["ZADD", "z", "NX", "9", "a", "9", "e"]).await, 1);
    assert_eq!(int(&mut c, &["ZADD", "z", "XX", "CH", "0", "e", "0", "new"]).await, 1);
    assert_eq!(int(&mut c, &["ZADD", "z", "GT", "CH", "5", "a", "-1", "b"]).await, 1, "GT raises a only");
    assert_eq!(int(&mut c, &["ZADD", "z", "LT", "CH", "9", "a", "-1", "b"]).await, 1, "LT lowers b only");
    assert_eq!(q::<f64>(&mut c, &["ZADD", "z", "INCR", "2.5", "c"]).await.unwrap(), 5.5);
    assert_eq!(q::<Option<f64>>(&mut c, &["ZADD", "z", "NX", "INCR", "1", "c"]).await.unwrap(), None);
    assert_eq!(int(&mut c, &["ZADD", "nokey", "XX", "1", "a"]).await, 0);
    assert_eq!(int(&mut c, &["EXISTS", "nokey"]).await, 0, "XX creates nothing");
    assert!(err(&mut c, &["ZADD", "z", "NX", "XX", "1", "a"]).await.contains("XX and NX options at the same time"));
    assert!(err(&mut c, &["ZADD", "z", "GT", "LT", "1", "a"]).await.contains("GT, LT, and/or NX options"));
    assert!(err(&mut c, &["ZADD", "z", "INCR", "1", "a", "2", "b"]).await.contains("INCR option supports a single"));
    assert!(err(&mut c, &["ZADD", "z", "1", "a", "2"]).await.contains("syntax error"));
    assert!(err(&mut c, &["ZADD", "z", "x", "a"]).await.contains("not a valid float"));
    assert!(err(&mut c, &["ZADD", "z", "nan", "a"]).await.contains("not a valid float"));
    let _: () = q(&mut c, &["SET", "str", "v"]).await.unwrap();
    assert!(err(&mut c, &["ZADD", "str", "1", "a"]).await.starts_with("WRONGTYPE"));
    assert_eq!(q::<String>(&mut c, &["TYPE", "z"]).await.unwrap(), "zset");

    // Now: b=-1, e=0, d=4, a=5, c=5.5.
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "0", "-1"]).await, ["b", "e", "d", "a", "c"]);
    assert_eq!(int(&mut c, &["ZCARD", "z"]).await, 5);
    assert_eq!(q::<f64>(&mut c, &["ZSCORE", "z", "c"]).await.unwrap(), 5.5);
    assert_eq!(q::<Option<f64>>(&mut c, &["ZSCORE", "z", "zz"]).await.unwrap(), None);
    assert_eq!(q::<Vec<Option<f64>>>(&mut c, &["ZMSCORE", "z", "a", "zz"]).await.unwrap(), [Some(5.0), None]);
    assert_eq!(q::<f64>(&mut c, &["ZINCRBY", "z", "-10", "a"]).await.unwrap(), -5.0);
    assert_eq!(int(&mut c, &["ZRANK", "z", "a"]).await, 0);
    assert_eq!(int(&mut c, &["ZREVRANK", "z", "a"]).await, 4);
    assert_eq!(q::<Option<i64>>(&mut c, &["ZRANK", "z", "zz"]).await.unwrap(), None);
    assert_eq!(q::<(i64, f64)>(&mut c, &["ZRANK", "z", "c", "WITHSCORE"]).await.unwrap(), (4, 5.5));

    // Ranges by rank, score and lex.
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "-2", "100"]).await, ["d", "c"]);
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "3", "1"]).await, Vec::<String>::new());
    assert_eq!(strs(&mut c, &["ZREVRANGE", "z", "0", "1"]).await, ["c", "d"]);
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "0", "0", "REV", "WITHSCORES"]).await, ["c", "5.5"]);
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "(-1", "4", "BYSCORE"]).await, ["e", "d"]);
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "1", "2"]).await, ["d", "e"]);
    assert_eq!(strs(&mut c, &["ZRANGEBYSCORE", "z", "-inf", "(0", "WITHSCORES"]).await, ["a", "-5", "b", "-1"]);
    assert_eq!(strs(&mut c, &["ZREVRANGEBYSCORE", "z", "5.5", "4"]).await, ["c", "d"]);
    assert_eq!(strs(&mut c, &["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "4", "-1"]).await, ["c"]);
    assert_eq!(strs(&mut c, &["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "-1", "3"]).await, Vec::<String>::new());
    assert_eq!(int(&mut c, &["ZCOUNT", "z", "(-1", "+inf"]).await, 3);
    assert_eq!(int(&mut c, &["ZCOUNT", "z", "5", "1"]).await, 0);
    assert!(err(&mut c, &["ZCOUNT", "z", "x", "1"]).await.contains("min or max is not a float"));
    assert!(err(&mut c, &["ZRANGE", "z", "0", "1", "LIMIT", "0", "1"]).await.contains("LIMIT is only supported"));
    assert!(err(&mut c, &["ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"]).await.contains("WITHSCORES not supported"));
    assert!(err(&mut c, &["ZRANGE", "z", "a", "1"]).await.contains("not an integer"));
    assert!(err(&mut c, &["ZRANGEBYSCORE", "z", "0", "1", "REV"]).await.contains("syntax error"));

    assert_eq!(int(&mut c, &["ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e"]).await, 5);
    assert_eq!(strs(&mut c, &["ZRANGEBYLEX", "lex", "-", "[c"]).await, ["a", "b", "c"]);
    assert_eq!(strs(&mut c, &["ZRANGEBYLEX", "lex", "(a", "(d"]).await, ["b", "c"]);
    assert_eq!(strs(&mut c, &["ZREVRANGEBYLEX", "lex", "+", "[c", "LIMIT", "0", "2"]).await, ["e", "d"]);
    assert_eq!(strs(&mut c, &["ZRANGE", "lex", "[d", "-", "BYLEX", "REV"]).await, ["d", "c", "b", "a"]);
    assert_eq!(int(&mut c, &["ZLEXCOUNT", "lex", "[b", "+"]).await, 4);
    assert!(err(&mut c, &["ZLEXCOUNT", "lex", "b", "+"]).await.contains("not valid string range item"));
    assert_eq!(int(&mut c, &["ZREMRANGEBYLEX", "lex", "[b", "(d"]).await, 2);
    assert_eq!(strs(&mut c, &["ZRANGE", "lex", "0", "-1"]).await, ["a", "d", "e"]);
    assert_eq!(int(&mut c, &["ZREMRANGEBYRANK", "lex", "-1", "-1"]).await, 1);
    assert_eq!(int(&mut c, &["ZREMRANGEBYSCORE", "lex", "-inf", "+inf"]).await, 2);
    assert_eq!(int(&mut c, &["EXISTS", "lex"]).await, 0, "an emptied sorted set vanishes");

    // ZRANGESTORE.
    assert_eq!(int(&mut c, &["ZRANGESTORE", "dst", "z", "-inf", "(4", "BYSCORE"]).await, 3);
    assert_eq!(strs(&mut c, &["ZRANGE", "dst", "0", "-1", "WITHSCORES"]).await, ["a", "-5", "b", "-1", "e", "0"]);
    assert_eq!(int(&mut c, &["ZRANGESTORE", "dst", "z", "10", "20"]).await, 0);
    assert_eq!(int(&mut c, &["EXISTS", "dst"]).await, 0, "an empty result deletes the destination");

    // Infinities and float formatting.
    assert_eq!(int(&mut c, &["ZADD", "inf", "-inf", "lo", "+inf", "hi", "0.1", "x", "1e20", "big"]).await, 4);
    assert_eq!(
        strs(&mut c, &["ZRANGE", "inf", "0", "-1", "WITHSCORES"]).await,
        ["lo", "-inf", "x", "0.1", "big", "1e+20", "hi", "inf"]
    );
    assert!(err(&mut c, &["ZINCRBY", "inf", "-inf", "hi"]).await.contains("resulting score is not a number"));
    assert!(err(&mut c, &["ZINCRBY", "inf", "x", "hi"]).await.contains("not a valid float"));

    // Pops.
    assert_eq!(strs(&mut c, &["ZPOPMIN", "inf"]).await, ["lo", "-inf"]);
    assert_eq!(strs(&mut c, &["ZPOPMAX", "inf", "2"]).await, ["hi", "inf", "big", "1e+20"]);
    assert_eq!(strs(&mut c, &["ZPOPMAX", "nokey"]).await, Vec::<String>::new());
    assert!(err(&mut c, &["ZPOPMIN", "inf", "-1"]).await.contains("must be positive"));
    assert_eq!(
        q::<Value>(&mut c, &["ZMPOP", "2", "nokey", "inf", "MIN", "COUNT", "5"]).await.unwrap(),
        Value::Array(vec![
            Value::BulkString(b"inf".to_vec()),
            Value::Array(vec![Value::Array(vec![
                Value::BulkString(b"x".to_vec()),
                Value::BulkString(b"0.1".to_vec())
            ])]),
        ])
    );
    assert_eq!(int(&mut c, &["EXISTS", "inf"]).await, 0);
    assert_eq!(q::<Value>(&mut c, &["ZMPOP", "1", "nokey", "MAX"]).await.unwrap(), Value::Nil);
    assert!(err(&mut c, &["ZMPOP", "1", "z", "UP"]).await.contains("syntax error"));

    // Set algebra, with plain sets as inputs scoring 1.
    assert_eq!(int(&mut c, &["ZADD", "z1", "1", "a", "2", "b", "3", "c"]).await, 3);
    assert_eq!(int(&mut c, &["ZADD", "z2", "10", "b", "20", "c", "30", "d"]).await, 3);
    assert_eq!(int(&mut c, &["SADD", "plain", "c", "d"]).await, 2);
    assert_eq!(
        strs(&mut c, &["ZUNION", "2", "z1", "z2", "WITHSCORES"]).await,
        ["a", "1", "b", "12", "c", "23", "d", "30"]
    );
    assert_eq!(
        strs(&mut c, &["ZINTER", "2", "z1", "z2", "WEIGHTS", "2", "0.5", "AGGREGATE", "MAX", "WITHSCORES"]).await,
        ["b", "5", "c", "10"]
    );
    assert_eq!(strs(&mut c, &["ZINTER", "3", "z1", "z2", "plain", "AGGREGATE", "MIN", "WITHSCORES"]).await, ["c", "1"]);
    assert_eq!(strs(&mut c, &["ZDIFF", "2", "z1", "z2"]).await, ["a"]);
    assert_eq!(int(&mut c, &["ZUNIONSTORE", "u", "3", "z1", "z2", "plain"]).await, 4);
    assert_eq!(
        strs(&mut c, &["ZRANGE", "u", "0", "-1", "WITHSCORES"]).await,
        ["a", "1", "b", "12", "c", "24", "d", "31"]
    );
    assert_eq!(int(&mut c, &["ZINTERSTORE", "u", "2", "z1", "nokey"]).await, 0);
    assert_eq!(int(&mut c, &["EXISTS", "u"]).await, 0);
    assert_eq!(int(&mut c, &["ZDIFFSTORE", "u", "1", "z2"]).await, 3);
    assert_eq!(int(&mut c, &["ZINTERCARD", "2", "z1", "z2"]).await, 2);
    assert_eq!(int(&mut c, &["ZINTERCARD", "2", "z1", "z2", "LIMIT", "1"]).await, 1);
    assert!(err(&mut c, &["ZUNION", "0", "z1"]).await.contains("at least 1 input key is needed for 'zunion' command"));
    assert!(err(&mut c, &["ZUNION", "3", "z1", "z2"]).await.contains("syntax error"));
    assert!(err(&mut c, &["ZUNION", "1", "z1", "WEIGHTS", "x"]).await.contains("weight value is not a float"));
    assert!(err(&mut c, &["ZDIFF", "1", "z1", "WEIGHTS", "1"]).await.contains("syntax error"));
    assert!(err(&mut c, &["ZUNION", "2", "z1", "str"]).await.starts_with("WRONGTYPE"));
    assert!(err(&mut c, &["ZINTERCARD", "0", "z1"]).await.contains("at least 1 input key is needed for 'zintercard'"));
    assert!(err(&mut c, &["ZINTERCARD", "2", "z1", "z2", "LIMIT", "-1"]).await.contains("LIMIT can't be negative"));

    // Random members and scans.
    let picked = strs(&mut c, &["ZRANDMEMBER", "z1", "5"]).await;
    assert_eq!(picked.len(), 3, "a positive count never repeats");
    assert_eq!(strs(&mut c, &["ZRANDMEMBER", "z1", "-6"]).await.len(), 6, "a negative count may repeat");
    assert_eq!(strs(&mut c, &["ZRANDMEMBER", "z1", "1", "WITHSCORES"]).await.len(), 2);
    assert_eq!(q::<Option<String>>(&mut c, &["ZRANDMEMBER", "nokey"]).await.unwrap(), None);
    let (cursor, found): (String, Vec<String>) = q(&mut c, &["ZSCAN", "z1", "0", "MATCH", "[ab]"]).await.unwrap();
    assert_eq!((cursor.as_str(), found), ("0", vec!["a".into(), "1".into(), "b".into(), "2".into()]));
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "z1"]).await.unwrap(), "listpack");

    // RESP3: WITHSCORES gives [member, score] pairs with double scores; ZSCORE a double.
    let want = b"*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2\r\n,1.5\r\n";
    let got = raw_exchange(port, b"HELLO 3\r\nZRANGE z1 0 1 WITHSCORES\r\nZADD z1 INCR -1.5 c\r\n", &want[..]).await;
    assert!(got.ends_with(want), "{}", String::from_utf8_lossy(&got));
    let want = b"*2\r\n$1\r\na\r\n,1\r\n";
    let got = raw_exchange(port, b"HELLO 3\r\nZPOPMIN z1\r\n", &want[..]).await;
    assert!(got.ends_with(want), "ZPOPMIN without a count stays flat: {}", String::from_utf8_lossy(&got));

    // A large set: ranks stay exact.
    let mut pipe = redis::pipe();
    for i in 0..5000 {
        pipe.cmd("ZADD").arg("big").arg(i * 2).arg(format!("m{i}")).ignore();
    }
    let _: () = pipe.query_async(&mut c).await.unwrap();
    assert_eq!(int(&mut c, &["ZRANK", "big", "m4321"]).await, 4321);
    assert_eq!(int(&mut c, &["ZCOUNT", "big", "(100", "200"]).await, 50);
    assert_eq!(strs(&mut c, &["ZRANGE", "big", "2500", "2501"]).await, ["m2500", "m2501"]);
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "big"]).await.unwrap(), "skiplist");

    // Everything reached the replica.
    let _: i64 = q(&mut c, &["WAIT", "1", "5000"]).await.unwrap();
    let mut r = redis_conn(reader).await;
    assert_eq!(
        strs(&mut r, &["ZRANGE", "z", "0", "-1", "WITHSCORES"]).await,
        strs(&mut c, &["ZRANGE", "z", "0", "-1", "WITHSCORES"]).await
    );
    assert_eq!(int(&mut r, &["ZCARD", "big"]).await, 5000);
    assert_eq!(strs(&mut r, &["ZRANGE", "z2", "0", "-1"]).await, ["b", "c", "d"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_sorted_set_pops_wait_for_adds() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 1, gateway: true, ..Default::default() });
    let (port, _) = cluster.create_group("bz", 0, "everysec").await;
    let mut adder = redis_conn(port).await;

    let mut c = redis_conn(port).await;
    let start = Instant::now();
    assert_eq!(q::<Value>(&mut c, &["BZPOPMIN", "empty", "0.2"]).await.unwrap(), Value::Nil);
    assert!(start.elapsed() >= Duration::from_millis(190));

    let mut b = redis_conn(port).await;
    let waiter =
        tokio::spawn(async move { q::<(String, String, f64)>(&mut b, &["BZPOPMAX", "none", "jobs", "5"]).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(int(&mut adder, &["ZADD", "jobs", "1", "low", "9", "high"]).await, 2);
    assert_eq!(waiter.await.unwrap().unwrap(), ("jobs".into(), "high".into(), 9.0));

    let mut b = redis_conn(port).await;
    let waiter =
        tokio::spawn(async move { q::<Value>(&mut b, &["BZMPOP", "5", "1", "later", "MIN", "COUNT", "2"]).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(int(&mut adder, &["ZADD", "later", "3", "x"]).await, 1);
    assert_eq!(
        waiter.await.unwrap().unwrap(),
        Value::Array(vec![
            Value::BulkString(b"later".to_vec()),
            Value::Array(vec![Value::Array(vec![Value::BulkString(b"x".to_vec()), Value::BulkString(b"3".to_vec())])]),
        ])
    );
    assert_eq!(int(&mut adder, &["EXISTS", "later"]).await, 0);
    assert_eq!(strs(&mut adder, &["ZRANGE", "jobs", "0", "-1"]).await, ["low"]);
}

/// Geo commands: Redis's geohash scores, coordinates, distances, geohash strings, and
/// searches that scan the cells Redis scans (so even unsorted results come in its order).
/// The expected replies are redis-server 7.0's for the same commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geo_follows_redis() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: true, ..Default::default() });
    let (port, reader) = cluster.create_group("geo", 1, "everysec").await;
    let mut c = redis_conn(port).await;
    support::expect_all(
        &mut c,
        &[
            ("GEOADD Sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania", "2"),
            ("GEOADD Sicily 12.758489 38.788135 edge1 17.241510 38.788135 edge2 13.583333 37.316667 Agrigento 15.0 37.0 p1 14.5 37.5 p2", "5"),
            ("GEOADD Sicily NX XX 13.5 38.1 Palermo", "(error) ERR syntax error"),
            ("GEOADD Sicily 181 38.1 x", "(error) ERR invalid longitude,latitude pair 181.000000,38.100000"),
            ("GEOADD Sicily CH 13.361389 38.115556 Palermo", "0"),
            ("ZSCORE Sicily Palermo", "3479099956230698"),
            ("GEOPOS Sicily Palermo NonExisting", "[[13.36138933897018433,38.11555639549629859],nil]"),
            ("GEODIST Sicily Palermo Catania", "166274.1516"),
            ("GEODIST Sicily Palermo Catania km", "166.2742"),
            ("GEODIST Sicily Palermo Catania parsec", "(error) ERR unsupported unit provided. please use M, KM, FT, MI"),
            ("GEODIST Sicily Palermo Foo", "nil"),
            ("GEOHASH Sicily Palermo Catania Foo", "[sqc8b49rny0,sqdtr74hyu0,nil]"),
            ("GEORADIUS Sicily 15 37 200 km", "[p1,Agrigento,Palermo,p2,Catania]"),
            (
                "GEORADIUS Sicily 15 37 200 km WITHDIST WITHCOORD WITHHASH ASC COUNT 2",
                "[[p1,0.0001,3476504601741708,[14.99999910593032837,37.00000026605963654]],[Catania,56.4413,3479447370796909,[15.08726745843887329,37.50266842333162032]]]",
            ),
            ("GEORADIUS Sicily 15 37 200 km COUNT 2 ANY", "[p1,Agrigento]"),
            ("GEORADIUS Sicily 15 37 200 km ANY", "(error) ERR the ANY argument requires COUNT argument"),
            ("GEORADIUS Sicily 15 37 -1 km", "(error) ERR radius cannot be negative"),
            ("GEORADIUS Sicily 15 37 200 km STORE dst", "5"),
            ("ZCARD dst", "5"),
            ("GEORADIUS_RO Sicily 15 37 200 km STORE dst", "(error) ERR syntax error"),
            ("GEORADIUSBYMEMBER Sicily Agrigento 100 km WITHDIST", "[[Agrigento,0.0000],[Palermo,90.9778],[p2,83.5147]]"),
            ("GEORADIUSBYMEMBER Sicily Nobody 100 km", "(error) ERR could not decode requested zset member"),
            ("GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 400 400 km", "[p1,Agrigento,Palermo,edge1,p2,Catania,edge2]"),
            ("GEOSEARCH Sicily FROMMEMBER Palermo BYBOX 200 100 km WITHCOORD", "[[Palermo,[13.36138933897018433,38.11555639549629859]]]"),
            ("GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km STORE x", "(error) ERR syntax error"),
            ("GEOSEARCHSTORE dst3 Sicily FROMLONLAT 15 37 BYRADIUS 200 km DESC COUNT 3", "3"),
            ("ZRANGE dst3 0 -1", "[Agrigento,Palermo,p2]"),
            (
                "GEOSEARCHSTORE dst3 Sicily FROMLONLAT 15 37 BYRADIUS 200 km WITHDIST",
                "(error) ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            ),
            ("GEOSEARCH Sicily FROMLONLAT -170 -80 BYRADIUS 5000 km", "[]"),
            ("GEOADD pole 0 85 a 179.9 -85 b -179.9 0 c", "3"),
            // Redis does not look across the antimeridian: neither does Ferrocache.
            ("GEOSEARCH pole FROMLONLAT 180 0 BYRADIUS 100 km WITHDIST", "[]"),
        ],
    )
    .await;
    let _: i64 = redis::cmd("WAIT").arg(1).arg(5000).query_async(&mut c).await.unwrap();
    let mut r = redis_conn(reader).await;
    assert_eq!(
        support::run_line(&mut r, "ZRANGE dst3 0 -1 WITHSCORES").await,
        support::run_line(&mut c, "ZRANGE dst3 0 -1 WITHSCORES").await
    );
}
