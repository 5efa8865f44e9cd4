//! High-availability operations under load: planned switches (TestFailover,
//! PrimaryClusterId) lose nothing even in `none` durability; `sync` durability loses no
//! acknowledged write across kill -9 failovers; `async` refuses writes while replicas lag;
//! replicas come and go online without client errors; bad admin input changes nothing.

mod support;

use std::time::{Duration, Instant};

use ferrocache_proto::admin::v1 as api;
use redis::cmd;
use support::workload::{lost_writes, Writers};
use support::{eventually, redis_conn, Cluster, Options};

fn primary_of(g: &api::ReplicationGroup) -> (String, String) {
    let m = g.node_groups[0].node_group_members.iter().find(|m| m.current_role == "primary").expect("a primary");
    (m.cache_cluster_id.clone(), m.datanode_id.clone())
}

async fn modify(
    cluster: &Cluster,
    req: api::ModifyReplicationGroupRequest,
) -> Result<api::ReplicationGroup, tonic::Status> {
    let mut admin = cluster.admin(0).await;
    admin.modify_replication_group(req).await.map(|r| r.into_inner().replication_group.expect("group"))
}

/// Waits until `node` is the primary and every member is online again.
async fn wait_primary(cluster: &Cluster, group: &str, node: &str) {
    eventually(Duration::from_secs(20), &format!("{node} primary and all members online"), || async {
        let g = cluster.describe(group).await;
        primary_of(&g).0 == node
            && g.status == "available"
            && g.node_groups[0].node_group_members.iter().all(|m| m.member_status == "online")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_switches_lose_nothing_even_without_sync() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 3, gateway: true, ..Default::default() });
    let (port, _) = cluster.create_group("planned", 2, "everysec").await;
    let (first, _) = primary_of(&cluster.describe("planned").await);
    let writers = Writers::start(port, 4, "p");
    writers.progress(200, Duration::from_secs(10)).await;

    let mut admin = cluster.admin(0).await;
    let started = Instant::now();
    let g = admin
        .test_failover(api::TestFailoverRequest {
            replication_group_id: "planned".into(),
            node_group_id: "0001".into(),
        })
        .await
        .expect("TestFailover")
        .into_inner()
        .replication_group
        .expect("group");
    assert_eq!(g.status, "modifying");
    let target = g.pending_primary_cluster_id.clone();
    assert!(!target.is_empty() && target != first);
    wait_primary(&cluster, "planned", &target).await;
    eprintln!("TestFailover: {first} -> {target} in {:?}", started.elapsed());
    writers.progress(200, Duration::from_secs(10)).await;

    // And back to the first primary, by name.
    let req = api::ModifyReplicationGroupRequest {
        replication_group_id: "planned".into(),
        primary_cluster_id: first.clone(),
        ..Default::default()
    };
    // The old primary must be back in sync first (online is not enough): a client retries.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        match modify(&cluster, req.clone()).await {
            Ok(_) => break,
            Err(s) if s.code() == tonic::Code::FailedPrecondition && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(s) => panic!("PrimaryClusterId: {s:?}"),
        }
    }
    wait_primary(&cluster, "planned", &first).await;
    writers.progress(200, Duration::from_secs(10)).await;

    let record = writers.stop().await;
    assert!(
        record.errors.is_empty(),
        "clients saw errors during planned switches: {:?}",
        &record.errors[..record.errors.len().min(5)]
    );
    let lost = lost_writes(port, &record).await;
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {:?}",
        lost.len(),
        record.acked.len(),
        &lost[..lost.len().min(10)]
    );
    let events =
        admin.describe_events(api::DescribeEventsRequest::default()).await.expect("events").into_inner().events;
    assert!(events.iter().any(|e| e.message.contains("planned (TestFailover)")));
    assert!(events.iter().any(|e| e.message.contains("planned (ModifyReplicationGroup PrimaryClusterId)")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_durability_loses_no_acknowledged_write_across_kills() {
    let mut cluster = Cluster::start(Options { coordinators: 1, datanodes: 3, gateway: true, ..Default::default() });
    let (port, _) = cluster.create_group("strict", 2, "everysec").await;
    let req = api::ModifyReplicationGroupRequest {
        replication_group_id: "strict".into(),
        durability: "sync".into(),
        min_replicas_to_ack: Some(1),
        ..Default::default()
    };
    let g = modify(&cluster, req).await.expect("modify");
    assert_eq!((g.durability.as_str(), g.min_replicas_to_ack), ("sync", 1));
    // The change is in force once the primary reports it (the group is "modifying" until then).
    cluster.wait_available("strict").await;
    let info: String = cmd("INFO").arg("replication").query_async(&mut redis_conn(port).await).await.expect("info");
    assert!(info.contains("ferrocache_durability:sync"), "available before the primary applied sync: {info}");

    let writers = Writers::start(port, 4, "s");
    writers.progress(200, Duration::from_secs(10)).await;
    for round in 1..=3 {
        let (_, datanode) = primary_of(&cluster.describe("strict").await);
        let killed = Instant::now();
        cluster.kill(&datanode);
        writers.progress(100, Duration::from_secs(15)).await;
        eprintln!("round {round}: kill -9 {datanode}; writes back after {:?}", writers.first_ack_after(killed));
        cluster.restart(&datanode);
        eventually(Duration::from_secs(30), "every member online again", || async {
            let g = cluster.describe("strict").await;
            g.node_groups[0].node_group_members.iter().all(|m| m.member_status == "online")
        })
        .await;
        writers.progress(100, Duration::from_secs(10)).await;
    }
    let record = writers.stop().await;
    let lost = lost_writes(port, &record).await;
    eprintln!("sync: {} acknowledged, {} errors, {} lost", record.acked.len(), record.errors.len(), lost.len());
    assert!(lost.is_empty(), "sync durability lost acknowledged writes: {:?}", &lost[..lost.len().min(10)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_durability_refuses_writes_while_replicas_lag() {
    let mut cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: true, ..Default::default() });
    let (port, _) = cluster.create_group("bounded", 1, "everysec").await;
    let req = api::ModifyReplicationGroupRequest {
        replication_group_id: "bounded".into(),
        durability: "async".into(),
        max_replica_lag_ms: Some(300),
        // Keep the primary where it is while its replica is frozen.
        automatic_failover_enabled: Some(false),
        ..Default::default()
    };
    modify(&cluster, req).await.expect("modify");
    let g = cluster.describe("bounded").await;
    let replica = g.node_groups[0].node_group_members.iter().find(|m| m.current_role == "replica").expect("replica");
    let mut c = redis_conn(port).await;
    eventually(Duration::from_secs(5), "writes accepted in async mode", || async {
        cmd("SET").arg("a").arg("1").query_async::<()>(&mut c.clone()).await.is_ok()
    })
    .await;

    cluster.pause(&replica.datanode_id);
    let refused = async {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match cmd("SET").arg("b").arg("1").query_async::<()>(&mut c).await {
                Err(e) if e.to_string().contains("NOREPLICAS") => return e.to_string(),
                _ if Instant::now() > deadline => panic!("writes were never refused while the replica was frozen"),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    .await;
    assert!(refused.contains("durability async allows 300 ms"), "{refused}");
    cluster.resume(&replica.datanode_id);
    eventually(Duration::from_secs(15), "writes accepted again once the replica caught up", || async {
        cmd("SET").arg("c").arg("1").query_async::<()>(&mut c.clone()).await.is_ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_are_added_and_removed_under_load_without_errors() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 4, gateway: true, ..Default::default() });
    let (port, reader_port) = cluster.create_group("elastic", 1, "everysec").await;
    let writers = Writers::start(port, 2, "e");
    let readers_stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = readers_stop.clone();
    let reader = tokio::spawn(async move {
        let mut c = redis_conn(reader_port).await;
        let mut errors = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Err(e) = cmd("GET").arg("e0-1").query_async::<Option<String>>(&mut c).await {
                errors.push(e.to_string());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        errors
    });
    writers.progress(300, Duration::from_secs(10)).await;
    let mut admin = cluster.admin(0).await;
    // Every datanode must have registered (under load a heartbeat can be late): retry while
    // the coordinator says there is no room.
    let increase = api::IncreaseReplicaCountRequest {
        replication_group_id: "elastic".into(),
        new_replica_count: 3,
        apply_immediately: true,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let g = loop {
        match admin.increase_replica_count(increase.clone()).await {
            Ok(r) => break r.into_inner().replication_group.expect("group"),
            Err(s) if s.code() == tonic::Code::FailedPrecondition && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(s) => panic!("increase: {s:?}"),
        }
    };
    assert_eq!(g.member_clusters.len(), 4);
    eventually(Duration::from_secs(30), "new replicas online", || async {
        let g = cluster.describe("elastic").await;
        g.node_groups[0].node_group_members.len() == 4
            && g.node_groups[0].node_group_members.iter().all(|m| m.member_status == "online")
    })
    .await;
    writers.progress(300, Duration::from_secs(10)).await;
    admin
        .decrease_replica_count(api::DecreaseReplicaCountRequest {
            replication_group_id: "elastic".into(),
            new_replica_count: Some(1),
            ..Default::default()
        })
        .await
        .expect("decrease");
    assert_eq!(cluster.describe("elastic").await.member_clusters.len(), 2);
    writers.progress(300, Duration::from_secs(10)).await;
    readers_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let read_errors = reader.await.expect("reader");
    let record = writers.stop().await;
    assert!(record.errors.is_empty(), "writers saw errors: {:?}", &record.errors[..record.errors.len().min(5)]);
    assert!(read_errors.is_empty(), "readers saw errors: {:?}", &read_errors[..read_errors.len().min(5)]);
    assert!(lost_writes(port, &record).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_admin_input_is_refused_and_changes_nothing() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: false, ..Default::default() });
    let port = support::free_port_pair();
    let mut admin = cluster.admin(0).await;
    let create = api::CreateReplicationGroupRequest {
        replication_group_id: "solid".into(),
        replicas_per_node_group: Some(1),
        port: Some(port as i32),
        ..Default::default()
    };
    eventually(Duration::from_secs(20), "group created", || {
        let mut admin = admin.clone();
        let create = create.clone();
        async move { admin.create_replication_group(create).await.is_ok() }
    })
    .await;
    cluster.wait_available("solid").await;
    let before = cluster.describe("solid").await;
    let code =
        |r: Result<tonic::Response<api::ModifyReplicationGroupResponse>, tonic::Status>| r.expect_err("refused").code();
    let m = |f: &dyn Fn(&mut api::ModifyReplicationGroupRequest)| {
        let mut r = api::ModifyReplicationGroupRequest { replication_group_id: "solid".into(), ..Default::default() };
        f(&mut r);
        r
    };
    assert_eq!(
        code(admin.modify_replication_group(m(&|r| r.replication_group_id = "nope".into())).await),
        tonic::Code::NotFound
    );
    assert_eq!(
        code(admin.modify_replication_group(m(&|r| r.primary_cluster_id = "other-009".into())).await),
        tonic::Code::InvalidArgument
    );
    assert_eq!(
        code(admin.modify_replication_group(m(&|r| r.primary_cluster_id = "solid-001".into())).await),
        tonic::Code::FailedPrecondition
    );
    assert_eq!(
        code(admin.modify_replication_group(m(&|r| r.durability = "eventually".into())).await),
        tonic::Code::InvalidArgument
    );
    assert_eq!(
        code(
            admin
                .modify_replication_group(m(&|r| {
                    r.durability = "sync".into();
                    r.min_replicas_to_ack = Some(2)
                }))
                .await
        ),
        tonic::Code::FailedPrecondition
    );
    assert_eq!(
        code(
            admin
                .modify_replication_group(m(&|r| {
                    r.multi_az_enabled = Some(true);
                    r.automatic_failover_enabled = Some(false)
                }))
                .await
        ),
        tonic::Code::InvalidArgument
    );
    let inc = |n: i32| api::IncreaseReplicaCountRequest {
        replication_group_id: "solid".into(),
        new_replica_count: n,
        apply_immediately: true,
    };
    assert_eq!(admin.increase_replica_count(inc(6)).await.expect_err("6").code(), tonic::Code::InvalidArgument);
    assert_eq!(admin.increase_replica_count(inc(1)).await.expect_err("same").code(), tonic::Code::InvalidArgument);
    assert_eq!(
        admin.increase_replica_count(inc(2)).await.expect_err("no datanode").code(),
        tonic::Code::FailedPrecondition
    );
    let dec = |n: i32| api::DecreaseReplicaCountRequest {
        replication_group_id: "solid".into(),
        new_replica_count: Some(n),
        ..Default::default()
    };
    assert_eq!(admin.decrease_replica_count(dec(-1)).await.expect_err("-1").code(), tonic::Code::InvalidArgument);
    assert_eq!(
        admin.decrease_replica_count(dec(0)).await.expect_err("failover needs one").code(),
        tonic::Code::FailedPrecondition
    );
    let remove_primary = api::DecreaseReplicaCountRequest {
        replication_group_id: "solid".into(),
        replicas_to_remove: vec!["solid-001".into()],
        ..Default::default()
    };
    assert_eq!(
        admin.decrease_replica_count(remove_primary).await.expect_err("primary").code(),
        tonic::Code::FailedPrecondition
    );
    let tf = api::TestFailoverRequest { replication_group_id: "solid".into(), node_group_id: "0009".into() };
    assert_eq!(admin.test_failover(tf).await.expect_err("ng").code(), tonic::Code::NotFound);

    let after = cluster.describe("solid").await;
    assert_eq!(after, before, "refused requests changed the group");
}
