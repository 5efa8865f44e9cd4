//! Durability across restarts: `appendfsync always` keeps every acknowledged write through
//! kill -9; `everysec` keeps everything written a second before a crash; a clean SIGTERM
//! keeps everything.

mod support;

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cmd;
use support::{redis_conn, Cluster, Options};

async fn write(c: &mut MultiplexedConnection, prefix: &str, n: usize) {
    for i in 0..n {
        let _: () = cmd("SET").arg(format!("{prefix}{i}")).arg(i).query_async(c).await.unwrap();
    }
}

async fn missing(c: &mut MultiplexedConnection, prefix: &str, n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    for i in 0..n {
        let v: Option<String> = cmd("GET").arg(format!("{prefix}{i}")).query_async(c).await.unwrap();
        if v.as_deref() != Some(&i.to_string()) {
            out.push(i);
        }
    }
    out
}

async fn reconnect_when_served(port: u16, probe: &str) -> MultiplexedConnection {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut c = redis_conn(port).await;
        if let Ok(Some(_)) = cmd("GET").arg(probe).query_async::<Option<String>>(&mut c).await {
            return c;
        }
        assert!(tokio::time::Instant::now() < deadline, "group on {port} not served again within 20s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_restarts() {
    let mut cluster = Cluster::start(Options { coordinators: 1, datanodes: 1, gateway: true, ..Default::default() });
    let (always_port, _) = cluster.create_group("always", 0, "always").await;
    let (everysec_port, _) = cluster.create_group("everysec", 0, "everysec").await;
    let mut always = redis_conn(always_port).await;
    let mut everysec = redis_conn(everysec_port).await;

    write(&mut everysec, "old", 500).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Every write below is acknowledged before the crash.
    write(&mut always, "acked", 1000).await;
    cluster.kill("datanode-1");
    cluster.restart("datanode-1");

    let mut always = reconnect_when_served(always_port, "acked0").await;
    assert_eq!(
        missing(&mut always, "acked", 1000).await,
        Vec::<usize>::new(),
        "appendfsync always lost acknowledged writes"
    );
    let mut everysec = reconnect_when_served(everysec_port, "old0").await;
    assert_eq!(
        missing(&mut everysec, "old", 500).await,
        Vec::<usize>::new(),
        "everysec lost writes older than a second"
    );

    // A clean stop flushes everything, however recent.
    write(&mut everysec, "recent", 300).await;
    cluster.stop("datanode-1");
    cluster.restart("datanode-1");
    let mut everysec = reconnect_when_served(everysec_port, "recent0").await;
    assert_eq!(missing(&mut everysec, "recent", 300).await, Vec::<usize>::new());

    // Expiry times are absolute: a TTL keeps running while the node is down.
    let _: () = cmd("SET").arg("ttl").arg("v").arg("EX").arg(100).query_async(&mut everysec).await.unwrap();
    cluster.stop("datanode-1");
    cluster.restart("datanode-1");
    let mut everysec = reconnect_when_served(everysec_port, "ttl").await;
    let ttl: i64 = cmd("TTL").arg("ttl").query_async(&mut everysec).await.unwrap();
    assert!((95..=100).contains(&ttl), "ttl {ttl}");
}
