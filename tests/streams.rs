//! Streams through the gateway with real clients: the X commands' replies and errors (the
//! expected values were checked against redis-server 7.0 with the same commands), blocking
//! reads, replicas holding the same groups and pending lists, and real libraries: a redis-py
//! consumer group and an `rq` worker processing jobs (rq keeps job results in streams).

mod support;

use std::time::Duration;

use support::{expect_all, python_with, redis_conn, run_line as run, run_python, Cluster, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_commands_answer_as_redis() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: true, ..Default::default() });
    let (port, reader) = cluster.create_group("streams", 1, "everysec").await;
    let mut c = redis_conn(port).await;
    expect_all(
        &mut c,
        &[
            ("XADD s 1-1 a 1", "1-1"),
            ("XADD s 1-1 a 1", "(error) ERR The ID specified in XADD is equal or smaller"),
            ("XADD s 0-0 a 1", "(error) ERR The ID specified in XADD must be greater than 0-0"),
            ("XADD s 1-* b 2", "1-2"),
            ("XADD s 5 c 3 d 4", "5-0"),
            ("XADD s 5-* e 5", "5-1"),
            ("XADD s 6-0 f", "(error) ERR wrong number of arguments for 'xadd' command"),
            ("XADD nos NOMKSTREAM 8-0 f v", "nil"),
            ("EXISTS nos", "0"),
            ("XADD s MAXLEN 3 MINID 1 9-0 f v", "(error) ERR syntax error, MAXLEN and MINID options"),
            ("XADD s LIMIT 10 9-0 f v", "(error) ERR syntax error, LIMIT cannot be used without specifying"),
            ("XADD s MAXLEN 100 LIMIT 10 9-0 f v", "(error) ERR syntax error, LIMIT cannot be used without the special ~"),
            ("XADD s MAXLEN -1 9-0 f v", "(error) ERR The MAXLEN argument must be >= 0"),
            ("XADD s bad-id f v", "(error) ERR Invalid stream ID specified as stream command argument"),
            ("XLEN s", "4"),
            ("XLEN nosuch", "0"),
            ("XRANGE s - + COUNT 2", "[[1-1,[a,1]],[1-2,[b,2]]]"),
            ("XRANGE s - + COUNT 0", "nil"),
            ("XRANGE s (1-1 (5-1", "[[1-2,[b,2]],[5-0,[c,3,d,4]]]"),
            ("XRANGE s 5 5", "[[5-0,[c,3,d,4]],[5-1,[e,5]]]"),
            ("XRANGE s (- +", "(error) ERR Invalid stream ID"),
            ("XRANGE s - (0-0", "(error) ERR invalid end ID for the interval"),
            ("XREVRANGE s + - COUNT 1", "[[5-1,[e,5]]]"),
            ("XRANGE nosuch - +", "[]"),
            ("XADD s MAXLEN ~ 2 10-0 f v", "10-0"),
            ("XLEN s", "5"),
            ("XTRIM s MAXLEN 2", "3"),
            ("XTRIM s FOO 1", "(error) ERR syntax error"),
            ("XTRIM s MAXLEN 1 LIMIT 5", "(error) ERR syntax error, LIMIT cannot be used without the special ~"),
            ("XTRIM s MAXLEN ~ 0 LIMIT 1", "0"),
            ("XTRIM nosuch MAXLEN 1", "0"),
            ("SET str v", "OK"),
            ("XADD str 1-1 a b", "(error) WRONGTYPE"),
            ("XDEL s 10-0 11-0", "1"),
            ("XDEL s bad", "(error) ERR Invalid stream ID"),
            ("XADD s 12-0 a b", "12-0"),
            ("XADD s 13-0 a b", "13-0"),
            ("XDEL s 13-0", "1"),
            ("XSETID s 12-5", "(error) ERR The ID specified in XSETID is smaller than current max_deleted_entry_id"),
            ("XSETID s 20-0 ENTRIESADDED 1", "(error) ERR The entries_added specified in XSETID is smaller"),
            ("XSETID s 20-0 MAXDELETEDID 25-0", "(error) ERR The ID specified in XSETID is smaller than the provided"),
            ("XSETID nosuch 1-1", "(error) ERR no such key"),
            ("XSETID s 20-0 ENTRIESADDED 100 MAXDELETEDID 15-0", "OK"),
            ("TYPE s", "stream"),
            ("OBJECT ENCODING s", "stream"),
            ("XINFO FOO s", "(error) ERR unknown subcommand 'FOO'. Try XINFO HELP"),
            ("XINFO STREAM nosuch", "(error) ERR no such key"),
            (
                "XINFO STREAM s",
                "[length,2,radix-tree-keys,1,radix-tree-nodes,2,last-generated-id,20-0,max-deleted-entry-id,15-0,entries-added,100,recorded-first-entry-id,5-1,groups,0,first-entry,[5-1,[e,5]],last-entry,[12-0,[a,b]]]",
            ),
        ],
    )
    .await;

    // Consumer groups: deliveries, pending entries, claims, acknowledgements.
    expect_all(
        &mut c,
        &[
            ("XADD g 1-0 a 1", "1-0"),
            ("XADD g 2-0 b 2", "2-0"),
            ("XADD g 3-0 c 3", "3-0"),
            ("XGROUP CREATE g grp 0", "OK"),
            ("XGROUP CREATE g grp 0", "(error) BUSYGROUP Consumer Group name already exists"),
            ("XGROUP CREATE nosuch grp 0", "(error) ERR The XGROUP subcommand requires the key to exist"),
            ("XGROUP CREATE mk grp $ MKSTREAM", "OK"),
            ("XREADGROUP GROUP grp alice COUNT 2 STREAMS g >", "[[g,[[1-0,[a,1]],[2-0,[b,2]]]]]"),
            ("XREADGROUP GROUP grp bob STREAMS g >", "[[g,[[3-0,[c,3]]]]]"),
            ("XREADGROUP GROUP grp bob STREAMS g >", "nil"),
            ("XREADGROUP GROUP grp alice STREAMS g 0", "[[g,[[1-0,[a,1]],[2-0,[b,2]]]]]"),
            ("XREADGROUP GROUP nog alice STREAMS g >", "(error) NOGROUP No such key 'g' or consumer group 'nog'"),
            ("XREADGROUP GROUP grp alice STREAMS g $", "(error) ERR The $ ID is meaningless"),
            ("XREAD STREAMS g >", "(error) ERR The > ID can be specified only when calling XREADGROUP"),
            ("XREAD STREAMS g 0 0", "(error) ERR Unbalanced XREAD list of streams"),
            ("XREAD COUNT 1 STREAMS g 1-0", "[[g,[[2-0,[b,2]]]]]"),
            ("XPENDING g grp", "[3,1-0,3-0,[[alice,2],[bob,1]]]"),
            ("XACK g grp 1-0 9-9", "1"),
            ("XACK g nog 1-0", "0"),
            ("XDEL g 2-0", "1"),
            ("XREADGROUP GROUP grp alice STREAMS g 0", "[[g,[[2-0,nil]]]]"),
            ("XCLAIM g grp dave 0 3-0 JUSTID", "[3-0]"),
            ("XCLAIM g grp dave 0 3-0 FOO", "(error) ERR Unrecognized XCLAIM option 'FOO'"),
            // A claim that takes nothing creates no consumer (Redis 7.2 creates it lazily).
            ("XCLAIM g grp nobody 0 9-9", "[]"),
            ("XAUTOCLAIM g grp nobody 3600000 0", "[0-0,[],[2-0]]"),
            ("XAUTOCLAIM g grp erin 0 0 COUNT 5", "[0-0,[[3-0,[c,3]]],[]]"),
            ("XPENDING g grp - + 10 erin", "[[3-0,erin,"),
            ("XINFO GROUPS g", "[[name,grp,consumers,4,pending,1,last-delivered-id,3-0,entries-read,3,lag,0]]"),
            ("XGROUP DELCONSUMER g grp erin", "1"),
            ("XGROUP CREATECONSUMER g grp carol", "1"),
            ("XGROUP DESTROY g grp", "1"),
            ("XGROUP DESTROY g grp", "0"),
        ],
    )
    .await;

    // A replica holds the same entries, groups and pending entries.
    let _: i64 = redis::cmd("WAIT").arg(1).arg(5000).query_async(&mut c).await.expect("wait");
    let mut r = redis_conn(reader).await;
    for line in ["XRANGE s - +", "XINFO STREAM s", "XINFO GROUPS mk", "XINFO STREAM g", "XLEN g"] {
        assert_eq!(run(&mut r, line).await, run(&mut c, line).await, "{line} on the replica");
    }

    // DUMP writes Redis's stream form (type 19, RDB 10) and RESTORE brings back the same
    // entries, counters, groups, pending entries and consumers.
    for i in 0..250 {
        let _: String = redis::cmd("XADD")
            .arg("big")
            .arg(format!("{}-1", i + 1))
            .arg("f")
            .arg(i)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    let _: i64 = redis::cmd("XDEL").arg("big").arg("7-1").query_async(&mut c).await.unwrap();
    let _: String =
        redis::cmd("XGROUP").arg("CREATE").arg("big").arg("grp").arg("0").query_async(&mut c).await.unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("grp")
        .arg("zoe")
        .arg("COUNT")
        .arg(3)
        .arg("STREAMS")
        .arg("big")
        .arg(">")
        .query_async(&mut c)
        .await
        .unwrap();
    let payload: Vec<u8> = redis::cmd("DUMP").arg("big").query_async(&mut c).await.unwrap();
    assert_eq!(payload[0], 19, "Redis 7.0's stream type");
    let _: String = redis::cmd("RESTORE").arg("big2").arg(0).arg(payload.as_slice()).query_async(&mut c).await.unwrap();
    assert_eq!(run(&mut c, "XINFO STREAM big2 FULL").await, run(&mut c, "XINFO STREAM big FULL").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_reads_get_what_is_added_after_they_blocked() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 1, gateway: true, ..Default::default() });
    let (port, _) = cluster.create_group("blocking", 0, "everysec").await;
    let mut c = redis_conn(port).await;
    assert_eq!(run(&mut c, "XADD b 1-0 a 1").await, "1-0");
    assert_eq!(run(&mut c, "XGROUP CREATE b grp $").await, "OK");
    let mut reader = redis_conn(port).await;
    let read = tokio::spawn(async move { run(&mut reader, "XREAD BLOCK 5000 STREAMS b $").await });
    let mut consumer = redis_conn(port).await;
    let grouped =
        tokio::spawn(async move { run(&mut consumer, "XREADGROUP GROUP grp c1 BLOCK 5000 STREAMS b >").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(run(&mut c, "XADD b 2-0 b 2").await, "2-0");
    assert_eq!(run(&mut c, "XADD b 3-0 c 3").await, "3-0");
    // `$` stood for 1-0 when XREAD blocked: it gets 2-0 (only the first batch that woke it).
    let got = tokio::time::timeout(Duration::from_secs(5), read).await.expect("woken").expect("task");
    assert!(got.starts_with("[[b,[[2-0,[b,2]]"), "{got}");
    let got = tokio::time::timeout(Duration::from_secs(5), grouped).await.expect("woken").expect("task");
    assert!(got.starts_with("[[b,[[2-0,[b,2]]"), "{got}");
    let pending = run(&mut c, "XPENDING b grp").await;
    assert!(pending.starts_with("[1,2-0,2-0,[[c1,1]]]") || pending.starts_with("[2,2-0,3-0,[[c1,2]]]"), "{pending}");
    let started = std::time::Instant::now();
    assert_eq!(run(&mut c, "XREAD BLOCK 200 STREAMS b $").await, "nil");
    assert!(started.elapsed() >= Duration::from_millis(190), "BLOCK 200 waited {:?}", started.elapsed());
}

/// redis-py's consumer group API and an `rq` worker (job results live in streams), both
/// unchanged and installed from PyPI when missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_consumer_group_and_rq_worker_work() {
    if !python_with("redis, rq", &["redis", "rq"]) {
        return;
    }
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 1, gateway: true, ..Default::default() });
    let (port, _) = cluster.create_group("py", 0, "everysec").await;
    let script = format!(
        r#"
import redis
r = redis.Redis(port={port})
for i in range(10):
    r.xadd("events", {{"n": i}})
r.xgroup_create("events", "workers", id="0")
seen = []
for consumer in ["w1", "w2"]:
    for _, entries in r.xreadgroup("workers", consumer, {{"events": ">"}}, count=5):
        for entry_id, fields in entries:
            seen.append(int(fields[b"n"]))
            r.xack("events", "workers", entry_id)
assert sorted(seen) == list(range(10)), seen
assert r.xpending("events", "workers")["pending"] == 0
info = r.xinfo_groups("events")[0]
assert info["last-delivered-id"] == r.xinfo_stream("events")["last-generated-id"], info

from rq import Queue, SimpleWorker
q = Queue("jobs", connection=r)
jobs = [q.enqueue("operator.add", i, 1) for i in range(5)]
SimpleWorker([q], connection=r).work(burst=True)
assert [j.return_value() for j in jobs] == [1, 2, 3, 4, 5], [j.get_status() for j in jobs]
print("OK")
"#
    );
    let (ok, text) = run_python(&script);
    assert!(ok && text.contains("OK"), "{text}");
}
