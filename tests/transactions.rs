//! MULTI / EXEC / DISCARD / WATCH with Redis's semantics, through the gateway with a real
//! client, and replicas applying a transaction all or nothing.

mod support;

use std::time::Duration;

use redis::{cmd, Value};
use support::{redis_conn, Cluster, Options};

type Conn = redis::aio::MultiplexedConnection;

async fn q(c: &mut Conn, args: &[&str]) -> redis::RedisResult<Value> {
    let mut command = cmd(args[0]);
    for a in &args[1..] {
        command.arg(*a);
    }
    command.query_async(c).await
}

/// The client library names EXECABORT by its kind; the message is Redis's.
const ABORTED: &str = "Transaction discarded because of previous errors";

fn ok() -> Value {
    Value::Okay
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_follow_redis() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: true, ..Default::default() });
    let (port, reader) = cluster.create_group("tx", 1, "everysec").await;
    let mut c = redis_conn(port).await;

    assert_eq!(q(&mut c, &["MULTI"]).await.unwrap(), ok());
    assert_eq!(q(&mut c, &["SET", "a", "1"]).await.unwrap(), Value::SimpleString("QUEUED".into()));
    assert_eq!(q(&mut c, &["PING"]).await.unwrap(), Value::SimpleString("QUEUED".into()));
    assert_eq!(q(&mut c, &["INCR", "a"]).await.unwrap(), Value::SimpleString("QUEUED".into()));
    assert!(q(&mut c, &["MULTI"]).await.unwrap_err().to_string().contains("MULTI calls can not be nested"));
    assert_eq!(
        q(&mut c, &["EXEC"]).await.unwrap(),
        Value::Array(vec![ok(), Value::SimpleString("PONG".into()), Value::Int(2)])
    );
    assert!(q(&mut c, &["EXEC"]).await.unwrap_err().to_string().contains("EXEC without MULTI"));
    assert!(q(&mut c, &["DISCARD"]).await.unwrap_err().to_string().contains("DISCARD without MULTI"));

    // Queueing errors abort the whole transaction; run-time errors do not.
    q(&mut c, &["MULTI"]).await.unwrap();
    q(&mut c, &["SET", "b", "1"]).await.unwrap();
    assert!(q(&mut c, &["NOSUCHCOMMAND"]).await.is_err());
    let e = q(&mut c, &["EXEC"]).await.unwrap_err().to_string();
    assert!(e.contains(ABORTED), "{e}");
    assert_eq!(q(&mut c, &["EXISTS", "b"]).await.unwrap(), Value::Int(0));
    q(&mut c, &["MULTI"]).await.unwrap();
    assert!(q(&mut c, &["GET"]).await.is_err());
    assert!(q(&mut c, &["EXEC"]).await.unwrap_err().to_string().contains(ABORTED));
    q(&mut c, &["SET", "s", "text"]).await.unwrap();
    q(&mut c, &["MULTI"]).await.unwrap();
    q(&mut c, &["INCR", "s"]).await.unwrap();
    q(&mut c, &["SET", "after", "yes"]).await.unwrap();
    // The client library surfaces the first error inside EXEC's reply; the rest still ran.
    let e = q(&mut c, &["EXEC"]).await.unwrap_err().to_string();
    assert!(e.contains("not an integer"), "{e}");
    assert_eq!(q(&mut c, &["GET", "after"]).await.unwrap(), Value::BulkString(b"yes".to_vec()));
    q(&mut c, &["MULTI"]).await.unwrap();
    q(&mut c, &["SET", "d", "1"]).await.unwrap();
    assert_eq!(q(&mut c, &["DISCARD"]).await.unwrap(), ok());
    assert_eq!(q(&mut c, &["EXISTS", "d"]).await.unwrap(), Value::Int(0));

    // WATCH: a write by another client aborts EXEC (nil); an untouched key lets it run.
    let mut other = redis_conn(port).await;
    q(&mut c, &["WATCH", "w"]).await.unwrap();
    q(&mut other, &["SET", "w", "changed"]).await.unwrap();
    q(&mut c, &["MULTI"]).await.unwrap();
    q(&mut c, &["SET", "w", "mine"]).await.unwrap();
    assert_eq!(q(&mut c, &["EXEC"]).await.unwrap(), Value::Nil);
    assert_eq!(q(&mut c, &["GET", "w"]).await.unwrap(), Value::BulkString(b"changed".to_vec()));
    q(&mut c, &["WATCH", "w"]).await.unwrap();
    q(&mut c, &["MULTI"]).await.unwrap();
    q(&mut c, &["SET", "w", "mine"]).await.unwrap();
    assert_eq!(q(&mut c, &["EXEC"]).await.unwrap(), Value::Array(vec![ok()]));
    // Expiry counts as a change.
    q(&mut c, &["SET", "e", "v", "PX", "100"]).await.unwrap();
    q(&mut c, &["WATCH", "e"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    q(&mut c, &["MULTI"]).await.unwrap();
    q(&mut c, &["SET", "x", "1"]).await.unwrap();
    assert_eq!(q(&mut c, &["EXEC"]).await.unwrap(), Value::Nil);
    // UNWATCH forgets.
    q(&mut c, &["WATCH", "w"]).await.unwrap();
    q(&mut other, &["SET", "w", "again"]).await.unwrap();
    q(&mut c, &["UNWATCH"]).await.unwrap();
    q(&mut c, &["MULTI"]).await.unwrap();
    q(&mut c, &["GET", "w"]).await.unwrap();
    assert_eq!(q(&mut c, &["EXEC"]).await.unwrap(), Value::Array(vec![Value::BulkString(b"again".to_vec())]));
    q(&mut c, &["MULTI"]).await.unwrap();
    assert!(q(&mut c, &["WATCH", "w"]).await.unwrap_err().to_string().contains("WATCH inside MULTI is not allowed"));
    q(&mut c, &["DISCARD"]).await.unwrap();

    // The client library's atomic pipelines are MULTI/EXEC.
    let (n, v): (i64, String) = redis::pipe()
        .atomic()
        .cmd("INCRBY")
        .arg("counter")
        .arg(5)
        .cmd("GET")
        .arg("w")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((n, v.as_str()), (5, "again"));

    // Writes inside MULTI on the reader endpoint are refused and doom the transaction.
    let mut r = redis_conn(reader).await;
    q(&mut r, &["MULTI"]).await.unwrap();
    assert!(q(&mut r, &["SET", "k", "v"]).await.unwrap_err().to_string().contains("read only replica"));
    assert!(q(&mut r, &["EXEC"]).await.unwrap_err().to_string().contains(ABORTED));

    // What a flush touches: the watched keys that existed (in the flushed database only);
    // a key missing before and after has not changed.
    let watch_then = |c: &mut Conn, key: &'static str| {
        let mut c = c.clone();
        async move {
            q(&mut c, &["WATCH", key]).await.unwrap();
            q(&mut c, &["FLUSHALL"]).await.unwrap();
            q(&mut c, &["MULTI"]).await.unwrap();
            q(&mut c, &["PING"]).await.unwrap();
            q(&mut c, &["EXEC"]).await.unwrap()
        }
    };
    assert_eq!(watch_then(&mut c, "never-set").await, Value::Array(vec![Value::SimpleString("PONG".into())]));
    q(&mut c, &["SET", "present", "1"]).await.unwrap();
    assert_eq!(watch_then(&mut c, "present").await, Value::Nil);
    q(&mut c, &["SET", "db0-key", "1"]).await.unwrap();
    q(&mut c, &["WATCH", "db0-key"]).await.unwrap();
    q(&mut other, &["SELECT", "1"]).await.unwrap();
    q(&mut other, &["SET", "db1-key", "1"]).await.unwrap();
    q(&mut other, &["FLUSHDB"]).await.unwrap();
    q(&mut c, &["MULTI"]).await.unwrap();
    q(&mut c, &["PING"]).await.unwrap();
    assert_eq!(q(&mut c, &["EXEC"]).await.unwrap(), Value::Array(vec![Value::SimpleString("PONG".into())]));
    q(&mut other, &["SELECT", "0"]).await.unwrap();

    // CONFIG queued in MULTI is answered when queued: GET as of then, a bad SET its error
    // inside EXEC's reply (as Redis), a SET of the value in force OK.
    q(&mut c, &["MULTI"]).await.unwrap();
    q(&mut c, &["CONFIG", "SET", "maxmemory", "bla"]).await.unwrap();
    let e = q(&mut c, &["EXEC"]).await.unwrap_err().to_string();
    assert!(e.contains("CONFIG SET failed (possibly related to argument 'maxmemory')"), "{e}");
    q(&mut c, &["MULTI"]).await.unwrap();
    q(&mut c, &["CONFIG", "GET", "maxmemory"]).await.unwrap();
    q(&mut c, &["CONFIG", "SET", "maxmemory", "0"]).await.unwrap();
    let got = format!("{:?}", q(&mut c, &["EXEC"]).await.unwrap());
    assert!(got.contains("maxmemory") && got.ends_with("ok])"), "{got}");

    // SMOVE of a member the destination already holds changes only the source.
    q(&mut c, &["SADD", "src", "a", "b"]).await.unwrap();
    q(&mut c, &["SADD", "dst", "a"]).await.unwrap();
    q(&mut c, &["WATCH", "dst"]).await.unwrap();
    assert_eq!(q(&mut other, &["SMOVE", "src", "dst", "a"]).await.unwrap(), Value::Int(1));
    q(&mut c, &["MULTI"]).await.unwrap();
    q(&mut c, &["SADD", "dst", "c"]).await.unwrap();
    assert_eq!(q(&mut c, &["EXEC"]).await.unwrap(), Value::Array(vec![Value::Int(1)]));
    assert_eq!(q(&mut c, &["SCARD", "dst"]).await.unwrap(), Value::Int(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_apply_a_transaction_all_or_nothing() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: true, ..Default::default() });
    let (port, reader) = cluster.create_group("atomic", 1, "everysec").await;
    let mut c = redis_conn(port).await;
    let mut r = redis_conn(reader).await;
    // Watch the replica while a 3000-write transaction (three replication messages' worth)
    // lands: it must see none of it or all of it.
    let watcher = tokio::spawn(async move {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..400 {
            if let Ok(Value::Int(n)) = q(&mut r, &["DBSIZE"]).await {
                seen.insert(n);
                if n == 3000 {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        seen
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut pipe = redis::pipe();
    pipe.atomic();
    for i in 0..3000 {
        pipe.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
    }
    let () = pipe.query_async(&mut c).await.unwrap();
    let seen = watcher.await.unwrap();
    assert!(seen.iter().all(|n| *n == 0 || *n == 3000), "the replica showed part of a transaction: {seen:?}");
    assert!(seen.contains(&3000), "{seen:?}");
}
