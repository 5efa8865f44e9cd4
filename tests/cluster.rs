//! Cluster mode enabled: a group of three node groups over six datanodes, used by a real
//! cluster client (the `redis` crate's) on the configuration endpoint and by plain clients
//! on the proxy endpoints, with slot ownership enforced by the datanodes themselves.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use ferrocache_proto::admin::v1 as api;
use ferrocache_proto::internal::v1 as pb;
use redis::AsyncCommands;
use support::{err, int, q, raw_exchange, redis_conn, strs, Cluster, Options};

/// The error code (first word) a command answers with.
async fn code(c: &mut support::Conn, args: &[&str]) -> String {
    let e = q::<redis::Value>(c, args).await.unwrap_err();
    e.code().unwrap_or_default().to_string()
}

async fn cluster_group(cluster: &Cluster, id: &str, shards: i32) -> (api::ReplicationGroup, u16, u16) {
    let (primary, reader) = cluster
        .create(api::CreateReplicationGroupRequest {
            replication_group_id: id.into(),
            num_node_groups: Some(shards),
            replicas_per_node_group: Some(1),
            ..Default::default()
        })
        .await;
    (cluster.describe(id).await, primary, reader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_clients_and_plain_clients_share_a_three_shard_group() {
    let cluster =
        Cluster::start(Options { coordinators: 1, datanodes: 6, gateway: true, metrics: true, ..Default::default() });
    cluster.wait_datanodes_live(6).await;
    let (group, primary_port, _reader_port) = cluster_group(&cluster, "c1", 3).await;

    // The admin API: cluster mode, a configuration endpoint, slots spread evenly, members of
    // a node group on different datanodes and zones, primaries on different datanodes.
    assert!(group.cluster_enabled);
    let config = group.configuration_endpoint.clone().expect("configuration endpoint");
    let slots: Vec<&str> = group.node_groups.iter().map(|ng| ng.slots.as_str()).collect();
    assert_eq!(slots, ["0-5461", "5462-10922", "10923-16383"]);
    let mut primaries = HashSet::new();
    for ng in &group.node_groups {
        let m = &ng.node_group_members;
        assert_eq!(m.len(), 2);
        assert_ne!(m[0].datanode_id, m[1].datanode_id);
        assert_ne!(m[0].preferred_availability_zone, m[1].preferred_availability_zone);
        assert!(m[0].cache_cluster_id.starts_with(&format!("c1-{}-", ng.node_group_id)));
        primaries.insert(m.iter().find(|m| m.current_role == "primary").unwrap().datanode_id.clone());
    }
    assert_eq!(primaries.len(), 3, "primaries spread over datanodes");

    // CLUSTER commands on the configuration endpoint.
    let config_port = config.port as u16;
    let mut node = redis_conn(config_port).await;
    let info: String = q(&mut node, &["CLUSTER", "INFO"]).await.unwrap();
    assert!(info.contains("cluster_state:ok") && info.contains("cluster_size:3"), "{info}");
    let shards: Vec<redis::Value> = q(&mut node, &["CLUSTER", "SHARDS"]).await.unwrap();
    assert_eq!(shards.len(), 3);
    let nodes: String = q(&mut node, &["CLUSTER", "NODES"]).await.unwrap();
    assert_eq!(nodes.lines().count(), 6);
    assert_eq!(nodes.lines().filter(|l| l.contains("master")).count(), 3);
    assert_eq!(int(&mut node, &["CLUSTER", "KEYSLOT", "foo"]).await, 12182);
    // A key of another node group: MOVED to that node group's primary port.
    let moved = q::<redis::Value>(&mut node, &["GET", "foo"]).await.unwrap_err();
    assert_eq!(moved.code(), Some("MOVED"), "{moved}");
    assert!(moved.to_string().contains("12182 127.0.0.1:"), "{moved}");
    assert_eq!(code(&mut node, &["MGET", "a", "b"]).await, "CROSSSLOT");
    // WATCH and a command queued in MULTI are redirected before they are taken; EXEC then
    // discards the transaction (cluster clients rely on the MOVED at WATCH to re-route).
    assert_eq!(code(&mut node, &["WATCH", "foo"]).await, "MOVED");
    assert_eq!(code(&mut node, &["WATCH", "a", "b"]).await, "CROSSSLOT");
    let tx = raw_exchange(config_port, b"MULTI\r\nSET foo 1\r\nEXEC\r\n", b"previous errors.\r\n").await;
    let tx = String::from_utf8_lossy(&tx);
    assert!(
        tx.starts_with("+OK\r\n-MOVED 12182 127.0.0.1:")
            && tx.ends_with("-EXECABORT Transaction discarded because of previous errors.\r\n"),
        "{tx}"
    );

    client_tracking_over_node_groups(primary_port, config_port).await;

    // The `redis` crate's cluster client writes and reads 100k keys.
    let client = redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{config_port}/")]).unwrap();
    let conn = client.get_async_connection().await.expect("cluster connection");
    let writers = (0..16).map(|w| {
        let mut c = conn.clone();
        tokio::spawn(async move {
            for i in (w..100_000).step_by(16) {
                let _: () = c.set(format!("key:{i}"), i).await.expect("SET");
            }
        })
    });
    for w in futures::future::join_all(writers).await {
        w.unwrap();
    }
    let readers = (0..16).map(|w| {
        let mut c = conn.clone();
        tokio::spawn(async move {
            for i in (w..100_000).step_by(16) {
                let v: Option<i64> = c.get(format!("key:{i}")).await.expect("GET");
                assert_eq!(v, Some(i as i64), "key:{i}");
            }
        })
    });
    for r in futures::future::join_all(readers).await {
        r.unwrap();
    }
    // Each node group holds its own share.
    let mut per_shard = Vec::new();
    for ng in &group.node_groups {
        let primary = ng.node_group_members.iter().find(|m| m.current_role == "primary").unwrap();
        let mut c = redis_conn(primary.read_endpoint.as_ref().unwrap().port as u16).await;
        per_shard.push(int(&mut c, &["DBSIZE"]).await);
    }
    assert_eq!(per_shard.iter().sum::<i64>(), 100_000, "{per_shard:?}");
    assert!(per_shard.iter().all(|&n| n > 30_000), "keys spread over the node groups: {per_shard:?}");

    // PUBSUB on a node port answers from the subscribers connected to that port, as a Redis
    // Cluster node does (clients merging over the nodes count each subscriber once); the
    // proxy endpoint answers for the whole group.
    let node_ports: Vec<u16> = group
        .node_groups
        .iter()
        .map(|ng| ng.node_group_members.iter().find(|m| m.current_role == "primary").unwrap())
        .map(|m| m.read_endpoint.as_ref().unwrap().port as u16)
        .collect();
    let _on_a = subscriber(node_ports[0], "on-a").await;
    let _on_b = subscriber(node_ports[1], "on-b").await;
    let mut at_a = redis_conn(node_ports[0]).await;
    assert_eq!(strs(&mut at_a, &["PUBSUB", "CHANNELS"]).await, ["on-a"]);
    let numsub: Vec<redis::Value> = q(&mut at_a, &["PUBSUB", "NUMSUB", "on-a", "on-b"]).await.unwrap();
    let counts: Vec<i64> =
        numsub.iter().filter_map(|v| if let redis::Value::Int(n) = v { Some(*n) } else { None }).collect();
    assert_eq!(counts, [1, 0], "{numsub:?}");
    let mut all = strs(&mut redis_conn(primary_port).await, &["PUBSUB", "CHANNELS"]).await;
    all.sort();
    assert_eq!(all, ["on-a", "on-b"]);
    let mut c = redis_conn(config_port).await;
    let in_slot = int(&mut c, &["CLUSTER", "COUNTKEYSINSLOT", "0"]).await;
    assert!(in_slot > 0);
    let keys: Vec<String> = strs(&mut c, &["CLUSTER", "GETKEYSINSLOT", "0", "3"]).await;
    assert_eq!(keys.len(), 3.min(in_slot as usize));

    // Plain clients on the proxy endpoint: keys of every node group, multi-key commands
    // split and merged, keyspace-wide commands over every node group.
    let mut plain = redis_conn(primary_port).await;
    assert_eq!(int(&mut plain, &["DBSIZE"]).await, 100_000);
    // Database 0 only, as Redis Cluster.
    assert!(err(&mut plain, &["SELECT", "1"]).await.contains("SELECT is not allowed in cluster mode"));
    let _: () = q(&mut plain, &["SELECT", "0"]).await.unwrap();
    assert!(err(&mut plain, &["MOVE", "a", "1"]).await.contains("MOVE is not allowed in cluster mode"));
    assert!(err(&mut plain, &["SWAPDB", "0", "1"]).await.contains("SWAPDB is not allowed in cluster mode"));
    let copy = err(&mut plain, &["COPY", "a", "b", "DB", "1"]).await;
    assert!(copy.contains("Copying to another database is not allowed in cluster mode"), "{copy}");
    let _: () = q(&mut plain, &["MSET", "a", "1", "b", "2", "c", "3", "foo", "4"]).await.unwrap();
    let got: Vec<Option<String>> = q(&mut plain, &["MGET", "foo", "a", "missing", "b", "c"]).await.unwrap();
    assert_eq!(got, [Some("4"), Some("1"), None, Some("2"), Some("3")].map(|v| v.map(String::from)));
    assert_eq!(int(&mut plain, &["EXISTS", "a", "b", "c", "foo", "missing"]).await, 4);
    assert_eq!(int(&mut plain, &["DEL", "a", "b", "missing"]).await, 2);
    assert_eq!(code(&mut plain, &["SUNIONSTORE", "x", "a", "b"]).await, "CROSSSLOT");
    let _: () = q(&mut plain, &["MULTI"]).await.unwrap();
    let _: String = q(&mut plain, &["SET", "a", "1"]).await.unwrap();
    let _: String = q(&mut plain, &["SET", "foo", "1"]).await.unwrap();
    assert_eq!(code(&mut plain, &["EXEC"]).await, "CROSSSLOT", "a transaction spans one slot");
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, batch): (String, Vec<String>) =
            q(&mut plain, &["SCAN", &cursor, "MATCH", "key:*", "COUNT", "1000"]).await.unwrap();
        seen.extend(batch);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 100_000, "SCAN walks every node group");

    // The datanodes refuse keys of slots their node group does not own, whoever asks.
    let ng = &group.node_groups[0];
    let member = ng.node_group_members.iter().find(|m| m.current_role == "primary").unwrap();
    let mut data = pb::data_client::DataClient::connect(format!("http://{}", member.datanode_address)).await.unwrap();
    let foreign = ferrocache_common::slot::key_slot(b"foo") as u32;
    let batch = pb::CommandBatch {
        node_id: member.cache_cluster_id.clone(),
        commands: vec![pb::Command {
            id: 1,
            slot: foreign,
            config_epoch: 0,
            request: Some(pb::command::Request::Data(pb::DataRequest {
                args: vec!["SET".into(), "foo".into(), "stolen".into()],
                ..Default::default()
            })),
            readonly: false,
            keyed: true,
        }],
        cancel: vec![],
    };
    let mut replies = data.execute(tokio_stream::iter(vec![batch])).await.unwrap().into_inner();
    let reply = tokio::time::timeout(Duration::from_secs(5), replies.message()).await.unwrap().unwrap().unwrap();
    let value = ferrocache_common::Reply::from(reply.replies[0].value.clone().unwrap());
    assert!(matches!(&value, ferrocache_common::Reply::Error(e) if e.starts_with("TRYAGAIN")), "{value:?}");
    let v: String = q(&mut plain, &["GET", "foo"]).await.unwrap();
    assert_eq!(v, "4");

    // Node groups' members report what they hold.
    let described = cluster.describe("c1").await;
    let offsets: HashMap<String, u64> = described
        .node_groups
        .iter()
        .flat_map(|ng| ng.node_group_members.iter())
        .map(|m| (m.cache_cluster_id.clone(), m.replication_offset))
        .collect();
    assert_eq!(offsets.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_cluster_requests_are_refused() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: true, ..Default::default() });
    // A group first: it waits for a leader and the datanodes, so the refusals below are
    // about the requests alone.
    let (port, _) = cluster.create_group("plain", 1, "everysec").await;
    let mut admin = cluster.admin(0).await;
    let bad = |f: &dyn Fn(&mut api::CreateReplicationGroupRequest)| {
        let mut r = api::CreateReplicationGroupRequest { replication_group_id: "bad".into(), ..Default::default() };
        f(&mut r);
        r
    };
    for req in [
        bad(&|r| r.num_node_groups = Some(501)),
        bad(&|r| {
            r.num_node_groups = Some(2);
            r.cluster_mode = "disabled".into()
        }),
        bad(&|r| {
            r.node_group_configuration =
                vec![api::NodeGroupConfiguration { slots: "0-100".into(), ..Default::default() }]
        }),
    ] {
        let e = admin.create_replication_group(req).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    }
    // Two datanodes cannot hold a node group of three members.
    let e = admin
        .create_replication_group(bad(&|r| {
            r.num_node_groups = Some(2);
            r.replicas_per_node_group = Some(2)
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    // A cluster-mode-disabled group answers CLUSTER as Redis does without cluster support.
    let mut c = redis_conn(port).await;
    assert!(err(&mut c, &["CLUSTER", "SLOTS"]).await.contains("cluster support disabled"));
    assert!(err(&mut c, &["CLUSTER", "KEYSLOT", "foo"]).await.contains("cluster support disabled"));
}

/// kill -9 of one node group's primary: that node group fails over on its own, the others
/// never stop serving, a cluster client follows the new primary, and nothing acknowledged
/// by WAIT is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_group_fails_over_on_its_own() {
    let mut cluster = Cluster::start(Options { coordinators: 1, datanodes: 6, gateway: true, ..Default::default() });
    let (group, _, _) = cluster_group(&cluster, "fo", 3).await;
    let config_port = group.configuration_endpoint.clone().unwrap().port as u16;
    let client = redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{config_port}/")]).unwrap();
    let mut conn = client.get_async_connection().await.expect("cluster connection");
    for i in 0..3000 {
        let _: () = conn.set(format!("k{i}"), i).await.unwrap();
    }
    // Every node group's replica has every write before the kill.
    for ng in &group.node_groups {
        let primary = ng.node_group_members.iter().find(|m| m.current_role == "primary").unwrap();
        let mut c = redis_conn(primary.read_endpoint.as_ref().unwrap().port as u16).await;
        assert_eq!(int(&mut c, &["WAIT", "1", "5000"]).await, 1);
    }
    let victim = &group.node_groups[1];
    let old = victim.node_group_members.iter().find(|m| m.current_role == "primary").unwrap();
    let replica = victim.node_group_members.iter().find(|m| m.current_role == "replica").unwrap();
    cluster.kill(&old.datanode_id);

    // Node groups 0001 and 0003 keep answering at once: "bar" is slot 5061 (0001).
    let started = std::time::Instant::now();
    let _: () = conn.set("bar", "during").await.expect("another node group's write");
    assert!(started.elapsed() < Duration::from_secs(1), "0001 waited {:?}", started.elapsed());

    // "hello" is slot 866 (0001), "k1" 12706 (0003); find a key of 0002 and write it until it
    // is taken again: the cluster client follows the MOVED to the promoted replica's port.
    let key = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| (5462..=10922).contains(&ferrocache_common::slot::key_slot(k.as_bytes())))
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match conn.set::<_, _, ()>(&key, "after").await {
            Ok(()) => break,
            Err(e) => assert!(std::time::Instant::now() < deadline, "no write to 0002 within 20 s: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("node group 0002 took writes again {:?} after the kill", started.elapsed());
    let after = cluster.describe("fo").await;
    let ng = after.node_groups.iter().find(|ng| ng.node_group_id == victim.node_group_id).unwrap();
    let primary = ng.node_group_members.iter().find(|m| m.current_role == "primary").unwrap();
    assert_eq!(primary.cache_cluster_id, replica.cache_cluster_id, "the replica was promoted");
    assert_eq!(ng.config_epoch, victim.config_epoch + 1);
    let mut node = redis_conn(config_port).await;
    let slots: Vec<redis::Value> = q(&mut node, &["CLUSTER", "SLOTS"]).await.unwrap();
    let text = format!("{slots:?}");
    assert!(text.contains(&replica.read_endpoint.as_ref().unwrap().port.to_string()), "{text}");
    for i in 0..3000 {
        let k = format!("k{i}");
        let v: Option<String> = conn.get(&k).await.unwrap();
        let want = if k == key { "after".to_string() } else { i.to_string() };
        assert_eq!(v.as_deref(), Some(want.as_str()), "acknowledged write {k} lost");
    }
}

/// Where the external clients are: `FERROCACHE_EXTERNAL_CLIENTS=required` (set by CI, which
/// installs them) makes their absence a failure; otherwise the test says it skipped.
fn external_clients() -> bool {
    let python =
        std::process::Command::new("python3").args(["-c", "import redis.cluster"]).status().is_ok_and(|s| s.success());
    let cli = std::process::Command::new("redis-cli").arg("--version").output().is_ok_and(|o| o.status.success());
    if python && cli {
        return true;
    }
    let required = std::env::var("FERROCACHE_EXTERNAL_CLIENTS").is_ok_and(|v| v == "required");
    assert!(
        !required,
        "redis-cli and redis-py are required here (python3 -m pip install redis; apt-get install redis-tools)"
    );
    eprintln!("SKIPPED: redis-cli or redis-py is not installed");
    false
}

/// redis-cli -c, redis-cli --cluster check and redis-py's RedisCluster, unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_and_redis_py_cluster_clients_work_unchanged() {
    if !external_clients() {
        return;
    }
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 3, gateway: true, ..Default::default() });
    let (primary, config) = cluster.create_cluster_group("ext", 3, 0).await;
    let config = config.to_string();
    let run = |cmd: &str, args: &[&str], input: Option<String>| {
        use std::io::Write;
        let mut child = std::process::Command::new(cmd)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        if let Some(text) = input {
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let sets: String = (0..2000).map(|i| format!("SET cli:{i} v{i}\n")).collect();
    let out = tokio::task::block_in_place(|| run("redis-cli", &["-c", "-p", &config], Some(sets)));
    assert_eq!(out.lines().filter(|l| l.trim() == "OK").count(), 2000, "{out}");
    let gets: String = (0..2000).map(|i| format!("GET cli:{i}\n")).collect();
    let out = tokio::task::block_in_place(|| run("redis-cli", &["-c", "-p", &config], Some(gets)));
    let values: Vec<&str> = out.lines().filter(|l| l.starts_with('v')).collect();
    assert_eq!(values.len(), 2000);
    let check =
        tokio::task::block_in_place(|| run("redis-cli", &["--cluster", "check", &format!("127.0.0.1:{config}")], None));
    assert!(check.contains("[OK] All 16384 slots covered."), "{check}");
    assert!(check.contains("[OK] All nodes agree about slots configuration."), "{check}");
    let script = format!(
        "from redis.cluster import RedisCluster\n\
         rc = RedisCluster(host='127.0.0.1', port={config})\n\
         p = rc.pipeline()\n\
         for i in range(100000):\n    p.set(f'py:{{i}}', i)\n    \
         if i % 1000 == 999: p.execute()\n\
         p.execute()\n\
         for i in range(0, 100000, 1000):\n    \
         keys = [f'py:{{j}}' for j in range(i, i + 1000)]\n    \
         assert rc.mget_nonatomic(keys) == [str(j).encode() for j in range(i, i + 1000)], i\n\
         print('ok')\n"
    );
    let out = tokio::task::block_in_place(|| run("python3", &["-c", &script], None));
    assert_eq!(out.trim(), "ok");
    let mut plain = redis_conn(primary).await;
    assert_eq!(int(&mut plain, &["DBSIZE"]).await, 102_000);
}

/// Two gateways: cluster clients are told of both (node groups spread over them) and keep
/// working when one is killed, once the coordinators list it offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_clients_are_spread_over_gateways_and_survive_losing_one() {
    let mut cluster = Cluster::start(Options { coordinators: 1, datanodes: 3, gateway: true, ..Default::default() });
    cluster.add_gateway("gateway-2", "127.0.0.2");
    let (_, config) = cluster.create_cluster_group("two", 3, 0).await;
    let slot_hosts = |port: u16| async move {
        let mut c = redis_conn(port).await;
        let slots: Vec<(i64, i64, Vec<redis::Value>)> =
            q::<Vec<redis::Value>>(&mut c, &["CLUSTER", "SLOTS"]).await.map(|v| parse_slots(&v)).unwrap_or_default();
        slots
            .iter()
            .filter_map(|(_, _, nodes)| match nodes.first() {
                Some(redis::Value::Array(n)) => match n.first() {
                    Some(redis::Value::BulkString(h)) => Some(String::from_utf8_lossy(h).into_owned()),
                    _ => None,
                },
                _ => None,
            })
            .collect::<HashSet<String>>()
    };
    support::eventually(Duration::from_secs(15), "CLUSTER SLOTS names both gateways", || async {
        slot_hosts(config).await == HashSet::from(["127.0.0.1".to_string(), "127.0.0.2".to_string()])
    })
    .await;

    let client = redis::cluster::ClusterClientBuilder::new(vec![format!("redis://127.0.0.1:{config}/")])
        .retries(20)
        .build()
        .unwrap();
    let mut conn = client.get_async_connection().await.expect("cluster connection");
    for i in 0..300 {
        let _: () = conn.set(format!("g:{i}"), i).await.expect("SET before the loss");
    }
    cluster.kill("gateway-2");
    let lost = std::time::Instant::now();
    for i in 300..600 {
        let key = format!("g:{i}");
        loop {
            match conn.set::<_, _, ()>(&key, i).await {
                Ok(()) => break,
                Err(e) => {
                    assert!(
                        lost.elapsed() < Duration::from_secs(30),
                        "writes did not resume after losing a gateway: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    eprintln!("600 keys written; the last 300 across the loss of a gateway ({:?})", lost.elapsed());
    assert_eq!(slot_hosts(config).await, HashSet::from(["127.0.0.1".to_string()]));
    for i in 0..600 {
        let v: i64 = conn.get(format!("g:{i}")).await.expect("GET");
        assert_eq!(v, i);
    }
}

/// CLUSTER SLOTS as (first, last, nodes).
fn parse_slots(v: &[redis::Value]) -> Vec<(i64, i64, Vec<redis::Value>)> {
    v.iter()
        .filter_map(|r| match r {
            redis::Value::Array(e) if e.len() >= 3 => match (&e[0], &e[1]) {
                (redis::Value::Int(a), redis::Value::Int(b)) => Some((*a, *b, e[2..].to_vec())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// A RESP2 subscriber to `channel` on `port`, subscribed once this returns.
async fn subscriber(port: u16, channel: &str) -> redis::aio::PubSub {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut sub = client.get_async_pubsub().await.unwrap();
    sub.subscribe(channel).await.unwrap();
    sub
}

/// CLIENT TRACKING and MONITOR hear every node group's primary: a tracked key of each node
/// group is invalidated when another client writes it, and a script on another node group
/// shows in MONITOR.
async fn client_tracking_over_node_groups(primary_port: u16, config_port: u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    async fn read_until(raw: &mut tokio::net::TcpStream, want: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !got.windows(want.len()).any(|w| w == want) && tokio::time::Instant::now() < deadline {
            let mut buf = [0u8; 4096];
            let read = tokio::time::timeout(Duration::from_secs(1), raw.read(&mut buf)).await;
            got.extend_from_slice(&buf[..read.map_or(0, |r| r.unwrap_or(0))]);
        }
        assert!(got.windows(want.len()).any(|w| w == want), "{}", String::from_utf8_lossy(&got));
        got
    }
    let mut tracker = tokio::net::TcpStream::connect(("127.0.0.1", primary_port)).await.unwrap();
    tracker.write_all(b"HELLO 3\r\nCLIENT TRACKING ON\r\n").await.unwrap();
    read_until(&mut tracker, b"+OK\r\n").await;
    let mut writer = redis_conn(primary_port).await;
    // bar, book: the first node group; foo: the third.
    for key in ["bar", "foo"] {
        tracker.write_all(format!("GET {key}\r\n").as_bytes()).await.unwrap();
        read_until(&mut tracker, b"_\r\n").await;
        let _: () = q(&mut writer, &["SET", key, "v"]).await.unwrap();
        let want = format!(">2\r\n$10\r\ninvalidate\r\n*1\r\n${}\r\n{key}\r\n", key.len());
        read_until(&mut tracker, want.as_bytes()).await;
    }
    let mut monitor = tokio::net::TcpStream::connect(("127.0.0.1", config_port)).await.unwrap();
    monitor.write_all(b"MONITOR\r\n").await.unwrap();
    read_until(&mut monitor, b"+OK\r\n").await;
    let _: redis::Value = q(&mut writer, &["EVAL", "return redis.call('GET', KEYS[1])", "1", "foo"]).await.unwrap();
    read_until(&mut monitor, b" [0 lua] \"GET\" \"foo\"\r\n").await;
    for key in ["bar", "foo"] {
        let _: i64 = q(&mut writer, &["DEL", key]).await.unwrap();
    }
}
