//! Numbered databases (SELECT 0–15) of a cluster-mode-disabled group, through the gateway
//! with a real client: separate keyspaces, MOVE / SWAPDB / COPY ... DB as Redis answers them,
//! WATCH, blocked clients and keyspace events per database, a transaction's SELECT, and
//! every database on the replicas and after a failover.

mod support;

use std::time::{Duration, Instant};

use support::{err, int, q, redis_conn, Cluster, Conn, Options};

/// A connection whose client selects database `db` when it connects (as `redis://host/db`).
async fn conn_to(port: u16, db: u16) -> Conn {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/{db}")).expect("client");
    client.get_multiplexed_async_connection().await.expect("connection")
}

async fn get(c: &mut Conn, key: &str) -> Option<String> {
    q(c, &["GET", key]).await.expect("GET")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_are_separate_replicate_and_survive_a_failover() {
    let mut cluster = Cluster::start(Options { coordinators: 1, datanodes: 3, gateway: true, ..Default::default() });
    let (port, reader_port) = cluster.create_group("dbs", 2, "everysec").await;
    let mut db0 = redis_conn(port).await;
    let mut db5 = conn_to(port, 5).await;
    let _: () = q(&mut db0, &["SET", "k", "zero"]).await.unwrap();
    let _: () = q(&mut db5, &["SET", "k", "five"]).await.unwrap();
    let _: () = q(&mut db5, &["HSET", "h", "f", "v"]).await.unwrap();
    assert_eq!(get(&mut db0, "k").await.as_deref(), Some("zero"));
    assert_eq!(get(&mut db5, "k").await.as_deref(), Some("five"));
    assert_eq!((int(&mut db0, &["DBSIZE"]).await, int(&mut db5, &["DBSIZE"]).await), (1, 2));

    // MOVE, COPY ... DB and SWAPDB, with Redis's answers.
    let _: () = q(&mut db5, &["SET", "m", "moved", "EX", "1000"]).await.unwrap();
    assert_eq!(int(&mut db5, &["MOVE", "m", "0"]).await, 1);
    assert_eq!(int(&mut db5, &["MOVE", "k", "0"]).await, 0, "the target has the key");
    assert!(err(&mut db5, &["MOVE", "k", "16"]).await.contains("DB index is out of range"));
    assert!(int(&mut db0, &["TTL", "m"]).await > 900, "MOVE keeps the expiry");
    assert_eq!(int(&mut db5, &["COPY", "h", "h", "DB", "7"]).await, 1);
    let _: () = q(&mut db0, &["SWAPDB", "5", "6"]).await.unwrap();
    assert_eq!(get(&mut db5, "k").await, None, "database 5 now holds what 6 held");
    let mut db6 = conn_to(port, 6).await;
    assert_eq!(get(&mut db6, "k").await.as_deref(), Some("five"));
    let _: () = q(&mut db0, &["SWAPDB", "6", "5"]).await.unwrap();
    assert!(err(&mut db0, &["SWAPDB", "0", "x"]).await.contains("invalid second DB index"));
    let keyspace: String = q(&mut db0, &["INFO", "keyspace"]).await.unwrap();
    assert!(keyspace.contains("db0:keys=2,expires=1") && keyspace.contains("db5:keys=2,expires=0"), "{keyspace}");
    assert!(keyspace.contains("db7:keys=1"), "{keyspace}");
    let clients: String = q(&mut db5, &["CLIENT", "LIST"]).await.unwrap();
    assert!(clients.contains(" db=5 ") && clients.contains(" db=0 "), "{clients}");

    // A blocked client waits on its own database's key.
    let mut blocker = conn_to(port, 3).await;
    let popped = tokio::spawn(async move {
        let started = Instant::now();
        let got: Option<(String, String)> = q(&mut blocker, &["BLPOP", "queue", "10"]).await.unwrap();
        (got, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _: () = q(&mut db0, &["RPUSH", "queue", "not-for-db3"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!popped.is_finished(), "a push to database 0 woke a client blocked in database 3");
    let mut db3 = conn_to(port, 3).await;
    let _: () = q(&mut db3, &["RPUSH", "queue", "for-db3"]).await.unwrap();
    let (got, _) = popped.await.unwrap();
    assert_eq!(got, Some(("queue".to_string(), "for-db3".to_string())));
    assert_eq!(int(&mut db0, &["LLEN", "queue"]).await, 1);

    // WATCH names a key of the connection's database.
    let mut watcher = conn_to(port, 2).await;
    let _: () = q(&mut watcher, &["WATCH", "w"]).await.unwrap();
    let _: () = q(&mut db0, &["SET", "w", "db0"]).await.unwrap();
    let _: () = q(&mut watcher, &["MULTI"]).await.unwrap();
    let _: String = q(&mut watcher, &["SET", "w", "mine"]).await.unwrap();
    let ran: Option<Vec<String>> = q(&mut watcher, &["EXEC"]).await.unwrap();
    assert_eq!(ran, Some(vec!["OK".to_string()]), "a write to w in database 0 does not abort");
    let _: () = q(&mut watcher, &["WATCH", "w"]).await.unwrap();
    let mut db2 = conn_to(port, 2).await;
    let _: () = q(&mut db2, &["SET", "w", "theirs"]).await.unwrap();
    let _: () = q(&mut watcher, &["MULTI"]).await.unwrap();
    let _: String = q(&mut watcher, &["SET", "w", "mine"]).await.unwrap();
    let ran: Option<Vec<String>> = q(&mut watcher, &["EXEC"]).await.unwrap();
    assert_eq!(ran, None, "a write to w in database 2 aborts");

    // A SELECT inside MULTI moves the rest of the transaction, and the connection.
    let mut mover = redis_conn(port).await;
    let _: () = q(&mut mover, &["MULTI"]).await.unwrap();
    let _: String = q(&mut mover, &["SELECT", "9"]).await.unwrap();
    let _: String = q(&mut mover, &["SET", "t", "nine"]).await.unwrap();
    let _: Vec<String> = q(&mut mover, &["EXEC"]).await.unwrap();
    assert_eq!(get(&mut mover, "t").await.as_deref(), Some("nine"), "the connection stays in database 9");
    assert_eq!(get(&mut db0, "t").await, None);

    // The replicas hold every database; a failover keeps them all.
    let acked: i64 = q(&mut db0, &["WAIT", "2", "5000"]).await.unwrap();
    assert_eq!(acked, 2);
    let mut reader5 = conn_to(reader_port, 5).await;
    assert_eq!(get(&mut reader5, "k").await.as_deref(), Some("five"));
    let group = cluster.describe("dbs").await;
    let primary = group.node_groups[0].node_group_members.iter().find(|m| m.current_role == "primary").unwrap();
    cluster.kill(&primary.datanode_id.clone());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let written = match tokio::time::timeout(Duration::from_secs(2), conn_to(port, 5)).await {
            Ok(mut c) => q::<()>(&mut c, &["SET", "after", "1"]).await.is_ok(),
            Err(_) => false,
        };
        if written {
            break;
        }
        assert!(Instant::now() < deadline, "no write after the failover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut db5 = conn_to(port, 5).await;
    let mut db9 = conn_to(port, 9).await;
    let mut db0 = redis_conn(port).await;
    assert_eq!(get(&mut db5, "k").await.as_deref(), Some("five"));
    assert_eq!(get(&mut db9, "t").await.as_deref(), Some("nine"));
    assert_eq!(get(&mut db0, "k").await.as_deref(), Some("zero"));
    assert_eq!(get(&mut db0, "m").await.as_deref(), Some("moved"));
    let mut db7 = conn_to(port, 7).await;
    let copied: Option<String> = q(&mut db7, &["HGET", "h", "f"]).await.unwrap();
    assert_eq!(copied.as_deref(), Some("v"));
}
