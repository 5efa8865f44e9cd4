//! Online resharding: a cluster-mode group grows from 3 to 5 node groups and shrinks back
//! while clients write through both endpoints, and a move survives kill -9 of the source
//! primary, the target primary and the coordinator leader. Afterwards every acknowledged key is there with
//! its value and TTL, and every slot has exactly one owner.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrocache_proto::admin::v1 as api;
use parking_lot::Mutex;
use redis::AsyncCommands;
use support::{int, q, redis_conn, Cluster, Options};

async fn reshard(cluster: &Cluster, id: &str, count: i32) {
    let mut admin = cluster.admin(0).await;
    admin
        .modify_replication_group_shard_configuration(api::ModifyReplicationGroupShardConfigurationRequest {
            replication_group_id: id.into(),
            node_group_count: count,
            apply_immediately: true,
            ..Default::default()
        })
        .await
        .expect("resharding starts");
}

/// Waits until the group is available with `count` node groups and no resharding.
async fn settled(cluster: &Cluster, id: &str, count: usize, within: Duration) -> api::ReplicationGroup {
    let deadline = Instant::now() + within;
    loop {
        let g = cluster.describe(id).await;
        if g.status == "available" && g.resharding.is_none() && g.node_groups.len() == count {
            return g;
        }
        assert!(Instant::now() < deadline, "not resharded within {within:?}: {:?} {:?}", g.status, g.resharding);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every slot owned by exactly one node group.
fn assert_covered(g: &api::ReplicationGroup) {
    let mut owners = vec![0u8; 16384];
    for ng in &g.node_groups {
        for range in ng.slots.split(',').filter(|r| !r.is_empty()) {
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            let (a, b) = (a.parse::<usize>().unwrap(), b.parse::<usize>().unwrap());
            for owner in &mut owners[a..=b] {
                *owner += 1;
            }
        }
    }
    assert!(owners.iter().all(|&n| n == 1), "a slot is unowned or owned twice");
}

/// Writers through the proxy endpoint and through a cluster client, each recording what
/// was acknowledged; errors other than the redirects clients follow are counted.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(String, String)>>>,
    errors: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    async fn start(proxy_port: u16, config_port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for w in 0..2 {
            let (stop, acked, errors) = (stop.clone(), acked.clone(), errors.clone());
            let mut c = redis_conn(proxy_port).await;
            tasks.push(tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (k, v) = (format!("proxy:{w}:{i}"), i.to_string());
                    match c.set::<_, _, ()>(&k, &v).await {
                        Ok(()) => acked.lock().push((k, v)),
                        Err(e) => {
                            record(&errors, format!("proxy {k}: {e}"));
                            pause_after_error().await;
                        }
                    }
                    i += 1;
                }
            }));
        }
        let client = redis::cluster::ClusterClient::builder(vec![format!("redis://127.0.0.1:{config_port}/")])
            .retries(10)
            .build()
            .unwrap();
        let mut cc = client.get_async_connection().await.expect("cluster connection");
        let (s, a, e) = (stop.clone(), acked.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !s.load(Ordering::Relaxed) {
                let (k, v) = (format!("cc:{i}"), i.to_string());
                match cc.set::<_, _, ()>(&k, &v).await {
                    Ok(()) => a.lock().push((k, v)),
                    Err(err) => {
                        record(&e, format!("cluster client {k}: {err}"));
                        pause_after_error().await;
                    }
                }
                i += 1;
            }
        }));
        Load { stop, acked, errors, tasks }
    }

    async fn finish(self) -> (Vec<(String, String)>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        let acked = std::mem::take(&mut *self.acked.lock());
        let errors = std::mem::take(&mut *self.errors.lock());
        (acked, errors)
    }
}

/// A writer whose connection is gone fails at once, without ever yielding: it must pause,
/// or the runtime can never stop it (a failing test would hang instead of failing).
async fn pause_after_error() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

/// Keeps the first errors (a writer failing in a tight loop must not fill the memory).
fn record(errors: &Mutex<Vec<String>>, e: String) {
    let mut errors = errors.lock();
    if errors.len() < 10_000 {
        errors.push(e);
    }
}

/// Loads keys of every type, some with a TTL.
async fn preload(port: u16, n: usize) {
    let mut c = redis_conn(port).await;
    for chunk in 0..n / 500 {
        let mut pipe = redis::pipe();
        for i in chunk * 500..(chunk + 1) * 500 {
            match i % 5 {
                0 => pipe.cmd("SET").arg(format!("s:{i}")).arg(i).arg("EX").arg(3600).ignore(),
                1 => pipe.cmd("HSET").arg(format!("h:{i}")).arg("f").arg(i).ignore(),
                2 => pipe.cmd("RPUSH").arg(format!("l:{i}")).arg(i).arg("x").ignore(),
                3 => pipe.cmd("ZADD").arg(format!("z:{i}")).arg(i).arg("m").ignore(),
                _ => pipe.cmd("SET").arg(format!("s:{i}")).arg(i).ignore(),
            };
        }
        let _: () = pipe.query_async(&mut c).await.expect("preload");
    }
}

/// Every preloaded key is there with its value (and its TTL where it had one).
async fn check_preloaded(port: u16, n: usize) {
    let mut c = redis_conn(port).await;
    for i in 0..n {
        match i % 5 {
            0 | 4 => {
                let v: Option<String> = c.get(format!("s:{i}")).await.unwrap();
                assert_eq!(v, Some(i.to_string()), "s:{i}");
                if i % 5 == 0 {
                    let ttl: i64 = c.ttl(format!("s:{i}")).await.unwrap();
                    assert!(ttl > 3000, "s:{i} kept its TTL: {ttl}");
                }
            }
            1 => {
                let v: Option<String> = c.hget(format!("h:{i}"), "f").await.unwrap();
                assert_eq!(v, Some(i.to_string()), "h:{i}");
            }
            2 => {
                let v: Vec<String> = c.lrange(format!("l:{i}"), 0, -1).await.unwrap();
                assert_eq!(v, vec![i.to_string(), "x".into()], "l:{i}");
            }
            _ => {
                let v: Option<f64> = c.zscore(format!("z:{i}"), "m").await.unwrap();
                assert_eq!(v, Some(i as f64), "z:{i}");
            }
        }
    }
}

async fn check_acked(port: u16, acked: &[(String, String)]) {
    let mut c = redis_conn(port).await;
    for chunk in acked.chunks(500) {
        let keys: Vec<&str> = chunk.iter().map(|(k, _)| k.as_str()).collect();
        let mut args = vec!["MGET"];
        args.extend(&keys);
        let values: Vec<Option<String>> = q(&mut c, &args).await.unwrap();
        for ((k, v), got) in chunk.iter().zip(values) {
            assert_eq!(got.as_deref(), Some(v.as_str()), "acknowledged write {k} lost");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grow_and_shrink_under_load() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 6, gateway: true, ..Default::default() });
    let (proxy, config) = cluster.create_cluster_group("rs", 3, 1).await;
    let n = 10_000;
    preload(proxy, n).await;
    let load = Load::start(proxy, config).await;

    let started = Instant::now();
    reshard(&cluster, "rs", 5).await;
    let g = settled(&cluster, "rs", 5, Duration::from_secs(120)).await;
    eprintln!("3 -> 5 node groups in {:?}", started.elapsed());
    assert_covered(&g);
    let counts: Vec<usize> = g.node_groups.iter().map(|ng| ng.slots.len()).collect();
    assert!(counts.iter().all(|&c| c > 0), "every node group owns slots: {counts:?}");

    let started = Instant::now();
    reshard(&cluster, "rs", 3).await;
    let g = settled(&cluster, "rs", 3, Duration::from_secs(120)).await;
    eprintln!("5 -> 3 node groups in {:?}", started.elapsed());
    assert_covered(&g);
    let ids: HashSet<&str> = g.node_groups.iter().map(|ng| ng.node_group_id.as_str()).collect();
    assert_eq!(ids, HashSet::from(["0001", "0002", "0003"]));

    let (acked, errors) = load.finish().await;
    assert!(errors.is_empty(), "{} client errors, first: {:?}", errors.len(), errors.first());
    assert!(acked.len() > 100, "the writers wrote during the moves: {}", acked.len());
    check_preloaded(proxy, n).await;
    check_acked(proxy, &acked).await;
    let mut c = redis_conn(proxy).await;
    assert_eq!(int(&mut c, &["DBSIZE"]).await as usize, n + acked.len(), "no key duplicated or resurrected");
}

/// Once `ready` holds for group `id` (within 60 s), kill -9 the datanode of node group
/// `ng`'s primary, which must happen while the group is still resharding.
async fn kill_primary_when(
    cluster: &mut Cluster,
    id: &str,
    ng: &str,
    ready: impl Fn(&api::ReplicationGroup) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let g = cluster.describe(id).await;
        if ready(&g) {
            let group = g.node_groups.iter().find(|n| n.node_group_id == ng).expect("node group");
            let p = group.node_group_members.iter().find(|m| m.current_role == "primary").expect("a primary");
            eprintln!("killing {} (primary {}) mid-move", p.datanode_id, p.cache_cluster_id);
            assert!(g.resharding.is_some(), "still resharding when {} dies", p.cache_cluster_id);
            let killed = p.datanode_id.clone();
            cluster.kill(&killed);
            return killed;
        }
        assert!(Instant::now() < deadline, "not ready to kill {ng}'s primary within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The group as coordinator `i` describes it (None while it cannot answer).
async fn describe_via(cluster: &Cluster, i: usize, id: &str) -> Option<api::ReplicationGroup> {
    let mut admin = api::admin_client::AdminClient::connect(cluster.endpoint(i)).await.ok()?;
    let r = admin
        .describe_replication_groups(api::DescribeReplicationGroupsRequest { replication_group_id: id.into() })
        .await
        .ok()?;
    r.into_inner().replication_groups.into_iter().next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_survive_kill_of_source_and_target_primaries_and_the_coordinator_leader() {
    // Small moves, so the resharding is still under way while processes die.
    let mut cluster = Cluster::start(Options {
        coordinators: 3,
        datanodes: 6,
        gateway: true,
        coordinator_args: &["--resharding-slots-per-move", "24"],
        ..Default::default()
    });
    // Durability "sync": a primary killed with kill -9 loses nothing it acknowledged only in
    // this mode (the default, like Redis, replicates asynchronously: the last writes a
    // primary acknowledged before it died may not have reached its replica).
    let (proxy, config) = cluster
        .create_cluster(api::CreateReplicationGroupRequest {
            replication_group_id: "rk".into(),
            num_node_groups: Some(2),
            replicas_per_node_group: Some(1),
            durability: "sync".into(),
            ..Default::default()
        })
        .await;
    let n = 20_000;
    preload(proxy, n).await;
    let load = Load::start(proxy, config).await;
    reshard(&cluster, "rk", 3).await;

    // Once slots are moving, kill -9 the datanode of node group 0001's primary (a source),
    // then that of the new node group 0003's primary (the target) once it has taken slots.
    // Each comes back as a replica 2 s later: a "sync" node group needs a replica to take
    // writes (and copied slots) again.
    let source =
        kill_primary_when(&mut cluster, "rk", "0001", |g| g.resharding.as_ref().is_some_and(|r| r.slots_moved > 0))
            .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.restart(&source);
    let target = kill_primary_when(&mut cluster, "rk", "0003", |g| {
        g.node_groups.iter().any(|ng| ng.node_group_id == "0003" && !ng.slots.is_empty())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.restart(&target);
    // Then every coordinator in turn, so the leader dies at least once while slots move.
    let coordinators = cluster.names("coordinator");
    for (i, name) in coordinators.iter().enumerate() {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let other = (i + 1) % coordinators.len();
        let progress = describe_via(&cluster, other, "rk").await.and_then(|g| g.resharding);
        eprintln!("killing {name}; resharding: {progress:?}");
        assert!(progress.is_some(), "still resharding when {name} dies (else the test proves nothing)");
        cluster.kill(name);
        tokio::time::sleep(Duration::from_secs(2)).await;
        cluster.restart(name);
    }

    let deadline = Instant::now() + Duration::from_secs(180);
    let g = loop {
        let g = describe_via(&cluster, 0, "rk").await;
        if let Some(g) = &g {
            if g.status == "available" && g.resharding.is_none() && g.node_groups.len() == 3 {
                break g.clone();
            }
        }
        assert!(Instant::now() < deadline, "resharding did not complete: {:?}", g.map(|g| g.resharding));
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_covered(&g);
    let (acked, errors) = load.finish().await;
    // Writes in flight on the killed primary may fail ("may or may not have run"); none
    // acknowledged may be missing.
    eprintln!("{} writes acknowledged, {} failed during the kills", acked.len(), errors.len());
    check_preloaded(proxy, n).await;
    check_acked(proxy, &acked).await;
}
