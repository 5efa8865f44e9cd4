//! Snapshots: taken from a replica while the group serves, restored into a new group with
//! every key, value and TTL; automatic snapshots in the snapshot window; bad requests refused.

mod support;

use std::time::{Duration, Instant};

use ferrocache_proto::admin::v1 as api;
use redis::cmd;
use support::{eventually, redis_conn, Cluster, Options};

async fn snapshot_status(cluster: &Cluster, name: &str) -> Option<api::Snapshot> {
    let mut admin = cluster.admin(0).await;
    let req = api::DescribeSnapshotsRequest { snapshot_name: name.into(), ..Default::default() };
    admin.describe_snapshots(req).await.ok()?.into_inner().snapshots.into_iter().next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_delete_then_restore_brings_back_every_key_and_ttl() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 3, gateway: true, ..Default::default() });
    let (port, _) = cluster.create_group("source", 1, "everysec").await;
    let mut c = redis_conn(port).await;
    for i in 0..500 {
        let _: () = cmd("SET").arg(format!("s{i}")).arg(format!("v{i}")).query_async(&mut c).await.unwrap();
    }
    for i in 0..50 {
        let _: () = cmd("SET").arg(format!("t{i}")).arg(i).arg("EX").arg(1000).query_async(&mut c).await.unwrap();
        let _: () =
            cmd("HSET").arg(format!("h{i}")).arg("f").arg(i).arg("g").arg("x").query_async(&mut c).await.unwrap();
    }
    let _: () = cmd("SET").arg("gone").arg("soon").arg("PX").arg(300).query_async(&mut c).await.unwrap();
    let acked: i64 = cmd("WAIT").arg(1).arg(5000).query_async(&mut c).await.unwrap();
    assert_eq!(acked, 1);
    let ttl_before: i64 = cmd("PTTL").arg("t7").query_async(&mut c).await.unwrap();

    let mut admin = cluster.admin(0).await;
    let created = admin
        .create_snapshot(api::CreateSnapshotRequest {
            replication_group_id: "source".into(),
            snapshot_name: "backup-1".into(),
        })
        .await
        .expect("CreateSnapshot")
        .into_inner()
        .snapshot
        .expect("snapshot");
    assert_eq!((created.snapshot_status.as_str(), created.snapshot_source.as_str()), ("creating", "manual"));
    let g = cluster.describe("source").await;
    let replica = g.node_groups[0].node_group_members.iter().find(|m| m.current_role == "replica").expect("replica");
    assert_eq!(created.cache_cluster_id, replica.cache_cluster_id, "taken from the replica, not the primary");
    eventually(Duration::from_secs(10), "snapshot available", || async {
        snapshot_status(&cluster, "backup-1").await.is_some_and(|s| s.snapshot_status == "available")
    })
    .await;
    let snap = snapshot_status(&cluster, "backup-1").await.expect("snapshot");
    assert!(snap.key_count >= 600 && snap.key_count <= 601, "{snap:?}");
    assert!(snap.cache_size > 0);

    admin
        .delete_replication_group(api::DeleteReplicationGroupRequest { replication_group_id: "source".into() })
        .await
        .expect("delete");
    tokio::time::sleep(Duration::from_millis(400)).await; // "gone" expires meanwhile
    let port2 = support::free_port_pair();
    let restore = api::CreateReplicationGroupRequest {
        replication_group_id: "restored".into(),
        replicas_per_node_group: Some(1),
        port: Some(port2 as i32),
        snapshot_name: "backup-1".into(),
        ..Default::default()
    };
    admin.create_replication_group(restore).await.expect("restore");
    cluster.wait_available("restored").await;
    support::wait_for_port(port2).await;
    let mut r = redis_conn(port2).await;
    let n: i64 = cmd("DBSIZE").query_async(&mut r).await.unwrap();
    assert_eq!(n, 600, "every live key is back, the expired one is not");
    for i in (0..500).step_by(37) {
        let v: Option<String> = cmd("GET").arg(format!("s{i}")).query_async(&mut r).await.unwrap();
        assert_eq!(v, Some(format!("v{i}")));
    }
    let h: Vec<String> = cmd("HMGET").arg("h9").arg("f").arg("g").query_async(&mut r).await.unwrap();
    assert_eq!(h, vec!["9".to_string(), "x".to_string()]);
    let ttl_after: i64 = cmd("PTTL").arg("t7").query_async(&mut r).await.unwrap();
    assert!(ttl_after > 0 && ttl_after <= ttl_before, "TTL kept as an absolute time: {ttl_before} -> {ttl_after}");
    // The replica got it too.
    let acked: i64 = cmd("WAIT").arg(1).arg(5000).query_async(&mut r).await.unwrap();
    assert_eq!(acked, 1);
    let mut reader = redis_conn(port2 + 1).await;
    eventually(Duration::from_secs(10), "replica has the restored keys", || {
        let mut reader = reader.clone();
        async move { cmd("DBSIZE").query_async::<i64>(&mut reader).await.ok() == Some(600) }
    })
    .await;
    let _: Option<String> = cmd("GET").arg("s1").query_async(&mut reader).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_requests_are_checked_and_files_go_with_their_snapshot() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: false, ..Default::default() });
    let (_, _) = create_without_gateway(&cluster, "checked").await;
    let mut admin = cluster.admin(0).await;
    let create = |group: &str, name: &str| api::CreateSnapshotRequest {
        replication_group_id: group.into(),
        snapshot_name: name.into(),
    };
    let code = |r: Result<tonic::Response<api::CreateSnapshotResponse>, tonic::Status>| r.expect_err("refused").code();
    assert_eq!(code(admin.create_snapshot(create("nope", "x1")).await), tonic::Code::NotFound);
    assert_eq!(code(admin.create_snapshot(create("checked", "1bad")).await), tonic::Code::InvalidArgument);
    assert_eq!(code(admin.create_snapshot(create("checked", "automatic.x")).await), tonic::Code::InvalidArgument);
    admin.create_snapshot(create("checked", "keep-me")).await.expect("create");
    assert_eq!(code(admin.create_snapshot(create("checked", "keep-me")).await), tonic::Code::AlreadyExists);
    eventually(Duration::from_secs(10), "snapshot available", || async {
        snapshot_status(&cluster, "keep-me").await.is_some_and(|s| s.snapshot_status == "available")
    })
    .await;
    let snap = snapshot_status(&cluster, "keep-me").await.expect("snapshot");
    let file = support::data_dir(&cluster, &snap.datanode_id).join("snapshots").join("keep-me.fcsnap");
    assert!(file.exists(), "{file:?}");

    let restore = api::CreateReplicationGroupRequest {
        replication_group_id: "again".into(),
        snapshot_name: "no-such".into(),
        ..Default::default()
    };
    assert_eq!(
        admin.create_replication_group(restore).await.expect_err("unknown snapshot").code(),
        tonic::Code::NotFound
    );
    let del = |name: &str| api::DeleteSnapshotRequest { snapshot_name: name.into() };
    assert_eq!(admin.delete_snapshot(del("no-such")).await.expect_err("unknown").code(), tonic::Code::NotFound);
    let deleted = admin.delete_snapshot(del("keep-me")).await.expect("delete").into_inner().snapshot.expect("snapshot");
    assert_eq!(deleted.snapshot_status, "deleting");
    eventually(Duration::from_secs(5), "snapshot file deleted", || async { !file.exists() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_snapshots_are_taken_in_the_window() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: false, ..Default::default() });
    create_without_gateway(&cluster, "nightly").await;
    // A window around now (UTC).
    let minute = (ferrocache_common::time::now_ms() / 60_000 % 1440) as u32;
    let at = |m: u32| format!("{:02}:{:02}", (m % 1440) / 60, m % 60);
    let window = format!("{}-{}", at(minute + 1440 - 10), at(minute + 60));
    let mut admin = cluster.admin(0).await;
    let req = api::ModifyReplicationGroupRequest {
        replication_group_id: "nightly".into(),
        snapshot_retention_limit: Some(1),
        snapshot_window: window.clone(),
        ..Default::default()
    };
    let g = admin.modify_replication_group(req).await.expect("modify").into_inner().replication_group.expect("group");
    assert_eq!((g.snapshot_retention_limit, g.snapshot_window.as_str()), (1, window.as_str()));
    let start = Instant::now();
    let automated = loop {
        let req = api::DescribeSnapshotsRequest { snapshot_source: "automated".into(), ..Default::default() };
        let found = admin.describe_snapshots(req).await.expect("describe").into_inner().snapshots;
        if let Some(s) = found.into_iter().find(|s| s.snapshot_status == "available") {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "no automatic snapshot in the window");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(automated.snapshot_name.starts_with("automatic.nightly-"), "{}", automated.snapshot_name);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let req = api::DescribeSnapshotsRequest { replication_group_id: "nightly".into(), ..Default::default() };
    assert_eq!(
        admin.describe_snapshots(req).await.expect("describe").into_inner().snapshots.len(),
        1,
        "one per window"
    );
}

/// Creates a one-replica group through the admin API alone (no gateway), waiting until available.
async fn create_without_gateway(cluster: &Cluster, id: &str) -> (u16, u16) {
    let port = support::free_port_pair();
    let create = api::CreateReplicationGroupRequest {
        replication_group_id: id.into(),
        replicas_per_node_group: Some(1),
        port: Some(port as i32),
        ..Default::default()
    };
    let admin = cluster.admin(0).await;
    eventually(Duration::from_secs(20), "group created", || {
        let mut admin = admin.clone();
        let create = create.clone();
        async move { admin.create_replication_group(create).await.is_ok() }
    })
    .await;
    cluster.wait_available(id).await;
    (port, port + 1)
}
