//! The coordinators' Raft group under kill -9: the admin API keeps working through the
//! survivors, a restarted member catches up, and bad admin input is refused cleanly.

mod support;

use std::time::{Duration, Instant};

use ferrocache_proto::admin::v1 as api;
use ferrocache_proto::internal::v1 as pb;
use pb::cluster_client::ClusterClient;
use support::{Cluster, Options};

/// Calls DescribeReplicationGroups on coordinator `i` until it answers; returns how long
/// that took.
async fn admin_answers(cluster: &Cluster, i: usize, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let mut admin = cluster.admin(i).await;
        if admin.describe_replication_groups(api::DescribeReplicationGroupsRequest::default()).await.is_ok() {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "admin API on coordinator {} did not answer within {within:?}", i + 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The groups coordinator `i` has applied locally (its topology watch serves its own state).
async fn local_groups(cluster: &Cluster, i: usize) -> Vec<String> {
    let Ok(mut client) = ClusterClient::connect(cluster.endpoint(i)).await else {
        return vec![];
    };
    let Ok(stream) = client.watch_topology(pb::WatchTopologyRequest {}).await else {
        return vec![];
    };
    match stream.into_inner().message().await {
        Ok(Some(t)) => t.groups.into_iter().map(|g| g.replication_group_id).collect(),
        _ => vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_survives_losing_any_coordinator() {
    let mut cluster = Cluster::start(Options { coordinators: 3, datanodes: 3, gateway: false, ..Default::default() });
    admin_answers(&cluster, 0, Duration::from_secs(20)).await;
    // Kill each member in turn (so the leader is killed at least once) and check that the
    // others keep serving, then that the restarted one catches up with what it missed.
    for victim in 0..3 {
        let name = format!("coordinator-{}", victim + 1);
        cluster.kill(&name);
        let survivor = (victim + 1) % 3;
        let took = admin_answers(&cluster, survivor, Duration::from_secs(10)).await;
        eprintln!("{name} killed: admin API answered again after {took:?}");
        let group = format!("g{victim}");
        let mut admin = cluster.admin(survivor).await;
        let req = api::CreateReplicationGroupRequest {
            replication_group_id: group.clone(),
            replicas_per_node_group: Some(0),
            ..Default::default()
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match admin.create_replication_group(req.clone()).await {
                Ok(_) => break,
                Err(s) if Instant::now() < deadline => {
                    eprintln!("create {group} retried: {}", s.message());
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(s) => panic!("create {group}: {s:?}"),
            }
        }
        cluster.restart(&name);
        let deadline = Instant::now() + Duration::from_secs(15);
        while !local_groups(&cluster, victim).await.contains(&group) {
            assert!(Instant::now() < deadline, "{name} did not catch up with {group}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_admin_input_is_refused() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: false, ..Default::default() });
    admin_answers(&cluster, 0, Duration::from_secs(20)).await;
    let mut admin = cluster.admin(0).await;
    let create =
        |id: &str| api::CreateReplicationGroupRequest { replication_group_id: id.into(), ..Default::default() };
    let code = |r: Result<tonic::Response<api::CreateReplicationGroupResponse>, tonic::Status>| r.unwrap_err().code();

    let mut bad = create("ok");
    bad.replicas_per_node_group = Some(6);
    assert_eq!(code(admin.create_replication_group(bad).await), tonic::Code::InvalidArgument);
    assert_eq!(code(admin.create_replication_group(create("1-starts-with-digit")).await), tonic::Code::InvalidArgument);
    let mut bad = create("ok");
    bad.append_fsync = "sometimes".into();
    assert_eq!(code(admin.create_replication_group(bad).await), tonic::Code::InvalidArgument);
    // Three nodes need three datanodes; there are two.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut two = create("two");
    two.replicas_per_node_group = Some(1);
    loop {
        match admin.create_replication_group(two.clone()).await {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(s) => panic!("{s:?}"),
        }
    }
    let status = admin.create_replication_group(create("three")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert_eq!(code(admin.create_replication_group(two.clone()).await), tonic::Code::AlreadyExists);
    let missing = admin
        .describe_replication_groups(api::DescribeReplicationGroupsRequest { replication_group_id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let missing = admin
        .delete_replication_group(api::DeleteReplicationGroupRequest { replication_group_id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    // Nothing changed: only "two" exists.
    let groups =
        admin.describe_replication_groups(api::DescribeReplicationGroupsRequest::default()).await.unwrap().into_inner();
    assert_eq!(
        groups.replication_groups.iter().map(|g| g.replication_group_id.as_str()).collect::<Vec<_>>(),
        vec!["two"]
    );
    let deleted = admin
        .delete_replication_group(api::DeleteReplicationGroupRequest { replication_group_id: "two".into() })
        .await
        .unwrap();
    assert_eq!(deleted.into_inner().replication_group.unwrap().status, "deleting");
    let events = admin.describe_events(api::DescribeEventsRequest::default()).await.unwrap().into_inner().events;
    assert!(events.iter().any(|e| e.message.contains("two deleted")), "{events:?}");
}

/// `ferrocache health` on a coordinator: SERVING only while it knows a leader.
fn health(cluster: &Cluster, i: usize) -> bool {
    std::process::Command::new(support::BIN)
        .args(["health", "--endpoint", &cluster.endpoint(i)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_health_tells_whether_a_leader_is_known() {
    let mut cluster = Cluster::start(Options { coordinators: 3, datanodes: 1, gateway: false, ..Default::default() });
    admin_answers(&cluster, 0, Duration::from_secs(20)).await;
    support::eventually(Duration::from_secs(5), "coordinator-1 SERVING", || async { health(&cluster, 0) }).await;
    // Without a majority nobody can lead: the survivor says NOT_SERVING.
    cluster.kill("coordinator-2");
    cluster.kill("coordinator-3");
    support::eventually(Duration::from_secs(20), "coordinator-1 NOT_SERVING without a majority", || async {
        !health(&cluster, 0)
    })
    .await;
    cluster.restart("coordinator-2");
    support::eventually(Duration::from_secs(20), "coordinator-1 SERVING again", || async { health(&cluster, 0) }).await;
}
