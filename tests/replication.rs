//! Replication between real datanodes: replicas follow the primary, the reader endpoint
//! serves them, WAIT counts their acknowledgements, expiry replicates, and a replica that
//! was killed resumes with a partial resync (or a full sync when its data is gone).

mod support;

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cmd;
use support::{data_dir, eventually, redis_conn, Cluster, Options};

async fn get(c: &mut MultiplexedConnection, key: &str) -> Option<String> {
    cmd("GET").arg(key).query_async(c).await.unwrap_or(None)
}

async fn all_present(c: &mut MultiplexedConnection, prefix: &str, n: usize) -> bool {
    for i in 0..n {
        if get(c, &format!("{prefix}{i}")).await.as_deref() != Some(&i.to_string()) {
            return false;
        }
    }
    true
}

fn log_of(cluster: &Cluster, name: &str) -> String {
    std::fs::read_to_string(cluster.dir.path().join(format!("{name}.log"))).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_follow_resync_and_serve_reads() {
    let mut cluster = Cluster::start(Options { coordinators: 1, datanodes: 3, gateway: true, ..Default::default() });
    let (primary_port, reader_port) = cluster.create_group("repl", 2, "everysec").await;
    let group = cluster.describe("repl").await;
    let members = &group.node_groups[0].node_group_members;
    assert_eq!(members.len(), 3);
    let zones: std::collections::HashSet<_> = members.iter().map(|m| m.preferred_availability_zone.clone()).collect();
    assert_eq!(zones.len(), 3, "members spread over three zones");

    let mut primary = redis_conn(primary_port).await;
    let mut reader = redis_conn(reader_port).await;
    for i in 0..500 {
        let _: () = cmd("SET").arg(format!("k{i}")).arg(i).query_async(&mut primary).await.unwrap();
    }
    let acked: i64 = cmd("WAIT").arg(2).arg(5000).query_async(&mut primary).await.unwrap();
    assert_eq!(acked, 2, "both replicas acknowledge");
    assert!(all_present(&mut reader, "k", 500).await, "the reader endpoint serves every key");
    let _: () = cmd("HSET").arg("h").arg("f").arg("v").arg("g").arg("w").query_async(&mut primary).await.unwrap();
    let _: () = cmd("HINCRBYFLOAT").arg("h").arg("n").arg("0.1").query_async(&mut primary).await.unwrap();
    let acked: i64 = cmd("WAIT").arg(2).arg(5000).query_async(&mut primary).await.unwrap();
    assert_eq!(acked, 2);
    let replica_hash: std::collections::HashMap<String, String> =
        cmd("HGETALL").arg("h").query_async(&mut reader).await.unwrap();
    assert_eq!(replica_hash.len(), 3, "a hash replicates whole: {replica_hash:?}");
    assert_eq!(replica_hash["n"], "0.1");
    // A commit larger than a replication message (32 MB) goes as effects, split if need be,
    // not as one record.
    let big = "v".repeat(33 << 20);
    let _: () = cmd("SET").arg("big").arg(&big).query_async(&mut primary).await.unwrap();
    let acked: i64 = cmd("WAIT").arg(2).arg(10000).query_async(&mut primary).await.unwrap();
    assert_eq!(acked, 2, "both replicas acknowledge the large value");
    let len: i64 = cmd("STRLEN").arg("big").query_async(&mut reader).await.unwrap();
    assert_eq!(len, 33 << 20);
    let _: () = cmd("DEL").arg("big").query_async(&mut primary).await.unwrap();

    // The reader endpoint refuses writes, as a Redis replica does.
    let e = cmd("SET").arg("x").arg("y").query_async::<()>(&mut reader).await.unwrap_err();
    assert_eq!(e.code(), Some("READONLY"));
    let info: String = cmd("INFO").arg("replication").query_async(&mut primary).await.unwrap();
    assert!(info.contains("connected_slaves:2"), "{info}");
    let info: String = cmd("INFO").arg("replication").query_async(&mut reader).await.unwrap();
    assert!(info.contains("role:slave") && info.contains("master_link_status:up"), "{info}");
    // ROLE, as Redis answers it: the primary with its replicas' acknowledged offsets (at the
    // reader endpoint), a replica with its primary (the primary endpoint) and link state.
    let role: redis::Value = cmd("ROLE").query_async(&mut primary).await.unwrap();
    let shown = support::show(&role);
    assert!(
        shown.starts_with("[master,") && shown.matches(&format!("[127.0.0.1,{reader_port},")).count() == 2,
        "{shown}"
    );
    let role: redis::Value = cmd("ROLE").query_async(&mut reader).await.unwrap();
    let shown = support::show(&role);
    assert!(shown.starts_with(&format!("[slave,127.0.0.1,{primary_port},connected,")), "{shown}");

    // Expiry replicates as absolute times and the primary's deletion reaches replicas.
    let _: () = cmd("SET").arg("ttl").arg("v").arg("PX").arg(300).query_async(&mut primary).await.unwrap();
    eventually(Duration::from_secs(1), "replica sees the key", || {
        let mut r = reader.clone();
        async move { get(&mut r, "ttl").await.is_some() }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(get(&mut reader, "ttl").await, None);

    // Kill -9 a replica's datanode, keep writing, restart it: it resumes from its offset.
    let replica_dn = members.iter().find(|m| m.current_role == "replica").unwrap().datanode_id.clone();
    cluster.kill(&replica_dn);
    for i in 0..200 {
        let _: () = cmd("SET").arg(format!("after{i}")).arg(i).query_async(&mut primary).await.unwrap();
    }
    cluster.restart(&replica_dn);
    eventually(Duration::from_secs(15), "restarted replica catches up", || {
        let mut p = primary.clone();
        async move { cmd("WAIT").arg(2).arg(200).query_async::<i64>(&mut p).await.unwrap_or(0) == 2 }
    })
    .await;
    assert!(log_of(&cluster, &replica_dn).contains("partial resync"), "the replica resumed instead of a full sync");
    eventually(Duration::from_secs(5), "reads see the writes made while it was down", || {
        let mut r = reader.clone();
        async move { all_present(&mut r, "after", 200).await }
    })
    .await;

    // Lose a replica's data entirely: it comes back with a full sync.
    cluster.kill(&replica_dn);
    std::fs::remove_dir_all(data_dir(&cluster, &replica_dn).join("nodes")).unwrap();
    let _: () = cmd("SET").arg("during").arg("1").query_async(&mut primary).await.unwrap();
    cluster.restart(&replica_dn);
    eventually(Duration::from_secs(15), "wiped replica resyncs", || {
        let mut p = primary.clone();
        async move { cmd("WAIT").arg(2).arg(200).query_async::<i64>(&mut p).await.unwrap_or(0) == 2 }
    })
    .await;
    assert!(log_of(&cluster, &replica_dn).contains("full sync done"));
    assert!(all_present(&mut reader, "k", 500).await);
}
