//! `/metrics` on every process: Prometheus text that parses, with values that move under
//! load (commands, keys, hits and misses) and the Raft state.

mod support;

use std::collections::HashMap;

use support::{q, redis_conn, scrape, Cluster, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A sample's metric name without its labels.
fn family(sample: &str) -> String {
    sample.split('{').next().unwrap_or(sample).to_string()
}

fn sum(samples: &HashMap<String, f64>, prefix: &str) -> f64 {
    samples.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_process_serves_metrics_that_move_under_load() {
    let cluster = Cluster::start(Options { datanodes: 2, metrics: true, ..Default::default() });
    let (port, _) = cluster.create_group("m", 1, "everysec").await;
    let gateway = cluster.metrics_port("gateway");
    let before = scrape(gateway).await;
    let mut c = redis_conn(port).await;
    for i in 0..100 {
        let _: () = q(&mut c, &["SET", &format!("k{i}"), "v"]).await.unwrap();
    }
    for i in 0..50 {
        let _: String = q(&mut c, &["GET", &format!("k{i}")]).await.unwrap();
    }
    for i in 0..10 {
        let _: Option<String> = q(&mut c, &["GET", &format!("missing{i}")]).await.unwrap();
    }
    let after = scrape(gateway).await;
    assert!(after["ferrocache_commands_total"] - before["ferrocache_commands_total"] >= 160.0, "{after:?}");
    assert!(after["ferrocache_curr_connections"] >= 1.0);

    // The primary's datanode counts the keys, hits and misses; the replica follows.
    let mut primaries = 0.0;
    let mut names: std::collections::HashSet<String> = after.keys().map(|k| family(k)).collect();
    for name in ["datanode-1", "datanode-2"] {
        let m = scrape(cluster.metrics_port(name)).await;
        names.extend(m.keys().map(|k| family(k)));
        assert_eq!(m["ferrocache_datanode_nodes"], 1.0, "{name}: {m:?}");
        primaries += sum(&m, "ferrocache_is_master{");
        if sum(&m, "ferrocache_is_master{") == 1.0 {
            assert_eq!(sum(&m, "ferrocache_curr_items{"), 100.0, "{m:?}");
            assert!(sum(&m, "ferrocache_cache_hits_total{") >= 50.0, "{m:?}");
            assert!(sum(&m, "ferrocache_cache_misses_total{") >= 10.0, "{m:?}");
            // Writes reached the log, and the replica acknowledged them.
            assert!(sum(&m, "ferrocache_storage_log_bytes{") > 0.0, "{m:?}");
            assert!(sum(&m, "ferrocache_replica_offset_lag{") >= 0.0 && m.keys().any(|k| k.contains("replica=")));
        }
    }
    assert_eq!(primaries, 1.0);
    let coordinator = scrape(cluster.metrics_port("coordinator-1")).await;
    assert_eq!(coordinator["ferrocache_raft_is_leader"], 1.0);
    assert_eq!(coordinator["ferrocache_replication_groups"], 1.0);
    assert!(coordinator["ferrocache_raft_last_applied_index"] > 0.0);
    names.extend(coordinator.keys().map(|k| family(k)));
    // The Grafana dashboard asks only for series some process serves.
    let dashboard =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/grafana/ferrocache-dashboard.json"))
            .expect("the dashboard");
    let mut asked = 0;
    for (i, _) in dashboard.match_indices("ferrocache_") {
        let name: String = dashboard[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if name.len() > "ferrocache_".len() {
            asked += 1;
            assert!(names.contains(&name), "the dashboard uses {name}, which no process serves");
        }
    }
    assert!(asked > 20, "{asked}");
    // Anything but /metrics is not found.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", gateway)).await.unwrap();
    s.write_all(b"GET /other HTTP/1.1\r\n\r\n").await.unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    assert!(body.starts_with("HTTP/1.1 404"));
}

/// `appendfsync always` is a group commit: concurrent writers share fsyncs (each write is
/// still on disk before its reply), so a burst of writes takes far fewer fsyncs than writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_shares_fsyncs_between_concurrent_writers() {
    let cluster = Cluster::start(Options { datanodes: 1, metrics: true, ..Default::default() });
    let (port, _) = cluster.create_group("g", 0, "always").await;
    let fsyncs = |m: &HashMap<String, f64>| sum(m, "ferrocache_storage_fsyncs_total{");
    let before = fsyncs(&scrape(cluster.metrics_port("datanode-1")).await);
    let (clients, each) = (40, 25);
    let mut tasks = Vec::new();
    for c in 0..clients {
        tasks.push(tokio::spawn(async move {
            let mut conn = redis_conn(port).await;
            for i in 0..each {
                let _: () = q(&mut conn, &["SET", &format!("k{c}:{i}"), "v"]).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let after = fsyncs(&scrape(cluster.metrics_port("datanode-1")).await);
    let writes = (clients * each) as f64;
    assert!(after - before >= 1.0, "always fsyncs");
    assert!(after - before < writes / 2.0, "{} fsyncs for {writes} writes", after - before);
}
