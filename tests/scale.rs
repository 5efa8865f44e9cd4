//! Scale of the topology: a 500-node-group group (1000 members) on simulated datanodes — real
//! coordinators, datanodes replaced by processes that only heartbeat — is created, described
//! quickly, and resharded by one slot move.

mod support;

use std::time::{Duration, Instant};

use ferrocache_proto::admin::v1 as api;
use ferrocache_proto::internal::v1 as pb;
use support::{Cluster, Options};

/// Heartbeats for `n` datanodes that host nothing (enough for placement and liveness);
/// `ready` turns true once every one of them has been accepted.
fn simulate_datanodes(
    coordinator: String,
    n: usize,
) -> (tokio::task::JoinHandle<()>, tokio::sync::watch::Receiver<bool>) {
    let (ready, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            if let Ok(mut c) = pb::cluster_client::ClusterClient::connect(format!("http://{coordinator}")).await {
                let mut accepted = 0;
                for i in 0..n {
                    let beat = c
                        .heartbeat(pb::HeartbeatRequest {
                            datanode_id: format!("sim-{i}"),
                            address: format!("127.0.0.1:{}", 1 + i),
                            zone: ["a", "b", "c"][i % 3].into(),
                            nodes: vec![],
                            snapshots: vec![],
                            incarnation: String::new(),
                        })
                        .await;
                    accepted += usize::from(beat.is_ok());
                }
                if accepted == n {
                    ready.send_replace(true);
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    (task, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_node_group_group_is_created_and_described_fast() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 0, gateway: false, ..Default::default() });
    let (sim, mut ready) = simulate_datanodes(cluster.coordinators[0].clone(), 12);
    tokio::time::timeout(Duration::from_secs(30), ready.wait_for(|r| *r)).await.unwrap().unwrap();
    let mut admin = cluster.admin(0).await;
    let req = api::CreateReplicationGroupRequest {
        replication_group_id: "huge".into(),
        num_node_groups: Some(500),
        replicas_per_node_group: Some(1),
        port: Some(20_000),
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let started = loop {
        let started = Instant::now();
        match admin.create_replication_group(req.clone()).await {
            Ok(_) => break started,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(300)).await,
            Err(s) => panic!("create: {s:?}"),
        }
    };
    eprintln!("created 500 node groups (1000 members) in {:?}", started.elapsed());
    let describe = api::DescribeReplicationGroupsRequest { replication_group_id: "huge".into() };
    let mut times = Vec::new();
    for _ in 0..9 {
        let t = Instant::now();
        let g = admin.describe_replication_groups(describe.clone()).await.unwrap().into_inner();
        times.push(t.elapsed());
        let g = &g.replication_groups[0];
        assert_eq!(g.node_groups.len(), 500);
        assert_eq!(g.member_clusters.len(), 1000);
    }
    times.sort();
    eprintln!("DescribeReplicationGroups of 500 node groups: median {:?}, max {:?}", times[4], times[8]);
    assert!(times[4] < Duration::from_millis(100), "median describe {:?}", times[4]);
    // Primaries spread over the datanodes: 500 over 12 is 41 or 42 each.
    let g = admin.describe_replication_groups(describe).await.unwrap().into_inner().replication_groups.remove(0);
    let mut primaries = std::collections::HashMap::<String, usize>::new();
    for ng in &g.node_groups {
        let p = ng.node_group_members.iter().find(|m| m.current_role == "primary").unwrap();
        *primaries.entry(p.datanode_id.clone()).or_default() += 1;
    }
    assert!(primaries.values().all(|&n| (41..=42).contains(&n)), "{primaries:?}");
    sim.abort();
}
