//! Automatic failover: kill -9 of a primary's datanode promotes the replica with the highest
//! offset, writes succeed again within seconds, nothing acknowledged by WAIT is lost, the old
//! primary rejoins as a replica, and a paused primary stops accepting writes once its lease
//! lapses (fencing).

mod support;

use std::time::{Duration, Instant};

use ferrocache_proto::internal::v1 as pb;
use redis::cmd;
use support::{eventually, redis_conn, Cluster, Options};

fn primary_of(group: &ferrocache_proto::admin::v1::ReplicationGroup) -> (String, String) {
    let m = group.node_groups[0].node_group_members.iter().find(|m| m.current_role == "primary").expect("a primary");
    (m.cache_cluster_id.clone(), m.datanode_id.clone())
}

/// Retries a SET on fresh connections until one is acknowledged; returns how long it took.
async fn first_successful_write(port: u16, key: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let mut c = redis_conn(port).await;
        if cmd("SET").arg(key).arg("v").query_async::<()>(&mut c).await.is_ok() {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "no write succeeded within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_loss_fails_over_without_losing_acknowledged_writes() {
    let mut cluster = Cluster::start(Options { coordinators: 1, datanodes: 3, gateway: true, ..Default::default() });
    let (port, reader_port) = cluster.create_group("fo", 2, "everysec").await;
    let before = cluster.describe("fo").await;
    let (old_primary, old_datanode) = primary_of(&before);
    assert_eq!(before.automatic_failover, "enabled");

    let mut c = redis_conn(port).await;
    for i in 0..300 {
        let _: () = cmd("SET").arg(format!("k{i}")).arg(i).query_async(&mut c).await.unwrap();
    }
    let acked: i64 = cmd("WAIT").arg(2).arg(5000).query_async(&mut c).await.unwrap();
    assert_eq!(acked, 2);

    cluster.kill(&old_datanode);
    let took = first_successful_write(port, "after-failover", Duration::from_secs(10)).await;
    eprintln!("kill -9 of the primary's datanode -> first successful write after {took:?}");

    let after = cluster.describe("fo").await;
    let (new_primary, _) = primary_of(&after);
    assert_ne!(new_primary, old_primary, "a replica was promoted");
    assert_eq!(after.node_groups[0].config_epoch, before.node_groups[0].config_epoch + 1);
    let mut c = redis_conn(port).await;
    for i in 0..300 {
        let v: Option<String> = cmd("GET").arg(format!("k{i}")).query_async(&mut c).await.unwrap();
        assert_eq!(v.as_deref(), Some(i.to_string().as_str()), "acknowledged write k{i} lost");
    }

    // The old primary comes back as a replica of the new one and catches up.
    cluster.restart(&old_datanode);
    eventually(Duration::from_secs(20), "old primary rejoins as an online replica", || {
        let cluster = &cluster;
        let old = old_primary.clone();
        async move {
            let g = cluster.describe("fo").await;
            g.node_groups[0]
                .node_group_members
                .iter()
                .any(|m| m.cache_cluster_id == old && m.current_role == "replica" && m.member_status == "online")
        }
    })
    .await;
    let _: () = cmd("SET").arg("last").arg("1").query_async(&mut c).await.unwrap();
    let acked: i64 = cmd("WAIT").arg(2).arg(5000).query_async(&mut c).await.unwrap();
    assert_eq!(acked, 2, "both replicas, the old primary included, follow the new primary");
    let mut r = redis_conn(reader_port).await;
    for _ in 0..4 {
        let v: Option<String> = cmd("GET").arg("after-failover").query_async(&mut r).await.unwrap();
        assert_eq!(v.as_deref(), Some("v"));
    }
    let mut admin = cluster.admin(0).await;
    let events = admin.describe_events(ferrocache_proto::admin::v1::DescribeEventsRequest::default()).await.unwrap();
    assert!(events.into_inner().events.iter().any(|e| e.message.starts_with("Failover from")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_primary_is_fenced() {
    let mut cluster = Cluster::start(Options { coordinators: 1, datanodes: 3, gateway: true, ..Default::default() });
    let (port, _) = cluster.create_group("fence", 2, "everysec").await;
    let (old_primary, old_datanode) = primary_of(&cluster.describe("fence").await);
    let mut c = redis_conn(port).await;
    let _: () = cmd("SET").arg("k").arg("v").query_async(&mut c).await.unwrap();

    cluster.pause(&old_datanode);
    eventually(Duration::from_secs(20), "a replica promoted in place of the paused primary", || async {
        primary_of(&cluster.describe("fence").await).0 != old_primary
    })
    .await;
    first_successful_write(port, "k2", Duration::from_secs(10)).await;
    // The old primary wakes up: its lease lapsed long ago, so a write sent straight to it
    // (bypassing the gateway's new routing) must be refused.
    cluster.resume(&old_datanode);
    let address = cluster.datanode_address(&old_datanode);
    let mut client = pb::data_client::DataClient::connect(format!("http://{address}")).await.unwrap();
    let batch = pb::CommandBatch {
        node_id: old_primary.clone(),
        commands: vec![pb::Command {
            id: 1,
            slot: 0,
            config_epoch: 1,
            request: Some(pb::command::Request::Data(pb::DataRequest {
                args: vec!["SET".into(), "split-brain".into(), "x".into()],
                ..Default::default()
            })),
            readonly: false,
            keyed: false,
        }],
        cancel: vec![],
    };
    let mut replies = client.execute(tokio_stream::iter(vec![batch])).await.unwrap().into_inner();
    let reply = replies.message().await.unwrap().expect("a reply batch");
    let value = ferrocache_common::Reply::from(reply.replies[0].value.clone().unwrap());
    match value {
        ferrocache_common::Reply::Error(e) => assert!(e.starts_with("TRYAGAIN") || e.starts_with("READONLY"), "{e}"),
        other => panic!("the fenced primary accepted a write: {other:?}"),
    }
    let v: Option<String> = cmd("GET").arg("split-brain").query_async(&mut c).await.unwrap_or(None);
    assert_eq!(v, None);
}

/// Redis's FAILOVER, asked of the primary endpoint, runs the coordinators' planned switch:
/// OK at once, then the replica takes over with every write; the reader endpoint and a
/// group without replicas refuse it with Redis's errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failover_command_switches_to_the_replica() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: true, ..Default::default() });
    let (port, reader) = cluster.create_group("fo", 1, "everysec").await;
    let (lonely, _) = cluster.create_group("lonely", 0, "everysec").await;
    let mut c = redis_conn(port).await;
    eventually(Duration::from_secs(20), "the group available", || async {
        cluster.describe("fo").await.status == "available"
    })
    .await;
    for i in 0..100 {
        let _: () = cmd("SET").arg(format!("k{i}")).arg(i).query_async(&mut c).await.unwrap();
    }
    let before = primary_of(&cluster.describe("fo").await).0;
    let mut r = redis_conn(reader).await;
    let e = cmd("FAILOVER").query_async::<String>(&mut r).await.unwrap_err().to_string();
    assert!(e.contains("FAILOVER is not valid when server is a replica"), "{e}");
    let e = cmd("FAILOVER").arg("TIMEOUT").arg(0).query_async::<String>(&mut c).await.unwrap_err().to_string();
    assert!(e.contains("FAILOVER timeout must be greater than 0"), "{e}");
    let mut l = redis_conn(lonely).await;
    let e = cmd("FAILOVER").query_async::<String>(&mut l).await.unwrap_err().to_string();
    assert!(e.contains("FAILOVER requires connected replicas"), "{e}");
    assert_eq!(cmd("FAILOVER").query_async::<String>(&mut c).await.unwrap(), "OK");
    eventually(Duration::from_secs(20), "the replica took over", || async {
        let g = cluster.describe("fo").await;
        primary_of(&g).0 != before && g.status == "available"
    })
    .await;
    let mut after = redis_conn(port).await;
    eventually(Duration::from_secs(10), "every write on the new primary", || {
        let mut after = after.clone();
        async move { cmd("DBSIZE").query_async::<i64>(&mut after).await.ok() == Some(100) }
    })
    .await;
    let _: () = cmd("SET").arg("after").arg(1).query_async(&mut after).await.unwrap();
}

/// A primary busy for longer than the coordinators' failure timeout and the gateway's link
/// keep-alive limit — one EXEC computing for ~4 s on a datanode whose runtime has a single
/// worker, as `ferrocache up` runs it on two cores — is alive, not failed: no failover, the
/// link holds (the EXEC answers, and so does another client's GET sent meanwhile), writes go
/// on at the same primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_primary_is_not_failed_over() {
    let cluster = Cluster::start(Options {
        coordinators: 1,
        datanodes: 2,
        coordinator_args: &["--datanode-timeout-ms", "600"],
        datanode_workers: Some(1),
        ..Default::default()
    });
    let (port, _) = cluster.create_group("busy", 1, "everysec").await;
    cluster.wait_available("busy").await;
    let before = cluster.describe("busy").await;
    let (primary, _) = primary_of(&before);
    let mut c = redis_conn(port).await;
    let size = 32 << 20;
    let _: i64 = cmd("SETRANGE").arg("big").arg(size - 1).arg("x").query_async(&mut c).await.unwrap();
    // As many BITCOUNTs as take ~4 s on this build and machine: six failure timeouts, and
    // past the gateway's 3 s keep-alive limit for the link (1 s interval + 2 s timeout).
    let mut probe = redis::pipe();
    probe.atomic();
    for _ in 0..8 {
        probe.cmd("BITCOUNT").arg("big");
    }
    let start = Instant::now();
    let _: Vec<i64> = probe.query_async(&mut c).await.unwrap();
    let one = (start.elapsed() / 8).max(Duration::from_micros(100));
    let n = (Duration::from_millis(4500).as_micros() / one.as_micros()).clamp(1, 45000) as usize;
    let mut other = redis_conn(port).await;
    let meanwhile = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got: redis::RedisResult<Option<String>> = cmd("GET").arg("other").query_async(&mut other).await;
        got
    });
    let mut exec = redis::pipe();
    exec.atomic();
    for _ in 0..n {
        exec.cmd("BITCOUNT").arg("big");
    }
    let start = Instant::now();
    let counts: Vec<i64> = exec.query_async(&mut c).await.expect("the busy EXEC answers");
    let busy = start.elapsed();
    eprintln!("one BITCOUNT of {size} bytes took {one:?}; EXEC of {n} took {busy:?}");
    assert_eq!(counts, vec![4; n], "x is 0b01111000");
    assert!(busy > Duration::from_millis(3200), "the EXEC was too short to test anything: {busy:?}");
    let got = meanwhile.await.unwrap();
    assert_eq!(got.expect("a GET sent during the EXEC answers once it is done"), None);
    // Past the batch: the primary is where it was, its epoch unchanged, and it takes writes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = cluster.describe("busy").await;
    assert_eq!(primary_of(&after).0, primary, "a busy primary was failed over");
    assert_eq!(after.node_groups[0].config_epoch, before.node_groups[0].config_epoch);
    first_successful_write(port, "after-busy", Duration::from_secs(5)).await;
}

/// A node that hangs (SIGSTOP, no failover target) costs its clients the gateway's command
/// timeout, not forever: each command waiting on it is answered with the timeout error once
/// its own deadline passes (also on a connection that was idle for longer than the timeout,
/// and for commands pipelined behind the first), and the connection serves again once the
/// node is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_to_a_hung_node_times_out_at_the_gateway() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const TIMEOUT: Duration = Duration::from_millis(800);
    let mut cluster = Cluster::start(Options {
        coordinators: 1,
        datanodes: 1,
        gateway: true,
        gateway_args: &["--command-timeout-ms", "800"],
        ..Default::default()
    });
    let (port, _) = cluster.create_group("hang", 0, "everysec").await;
    let (_, datanode) = primary_of(&cluster.describe("hang").await);
    let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let get = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    // Reads until `n` CRLF-terminated replies are in (or 10 s pass).
    async fn replies(raw: &mut tokio::net::TcpStream, n: usize) -> String {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.windows(2).filter(|w| w == b"\r\n").count() < n && Instant::now() < deadline {
            let mut buf = [0u8; 4096];
            let read = tokio::time::timeout(Duration::from_secs(1), raw.read(&mut buf)).await;
            got.extend_from_slice(&buf[..read.map_or(0, |r| r.unwrap_or(0))]);
        }
        String::from_utf8_lossy(&got).into_owned()
    }
    raw.write_all(get).await.unwrap();
    assert_eq!(replies(&mut raw, 1).await, "$-1\r\n");
    // Longer than the timeout with nothing in flight: the next command's deadline is its own.
    tokio::time::sleep(TIMEOUT + Duration::from_millis(400)).await;

    cluster.pause(&datanode);
    let sent = Instant::now();
    raw.write_all(&get.repeat(3)).await.unwrap();
    let got = replies(&mut raw, 3).await;
    let took = sent.elapsed();
    let timed_out = "-ERR timed out waiting for the node that serves this key; the command may or may not have run\r\n";
    assert_eq!(got, timed_out.repeat(3), "after {took:?}");
    assert!(took >= TIMEOUT - Duration::from_millis(50), "answered before the timeout: {took:?}");
    assert!(took < TIMEOUT * 4, "the timeout error came late: {took:?}");

    cluster.resume(&datanode);
    let back = Instant::now();
    loop {
        raw.write_all(get).await.unwrap();
        let got = replies(&mut raw, 1).await;
        if got == "$-1\r\n" {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(20), "the connection does not serve again: {got:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
