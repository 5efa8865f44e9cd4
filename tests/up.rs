//! `ferrocache up` as a user runs it: the cluster comes up with group `default`, the
//! primary and reader endpoints behave, `describe-replication-groups --output json` shows
//! the group, and after SIGTERM a second `up` on the same data dir finds the data again.

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use redis::cmd;
use support::{redis_conn, BIN};

/// A base port with `n` free consecutive ports.
fn free_run(n: u16) -> u16 {
    loop {
        let base = support::free_port();
        if base < 60000 && (0..n).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
}

/// The pid of the process `up` runs as `--id <id>` with data under `dir`.
fn child_pid(dir: &std::path::Path, id: &str) -> Option<u32> {
    let dir = dir.display().to_string();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        let has_id = args.windows(2).any(|w| w[0] == "--id" && w[1] == id);
        if has_id && args.iter().any(|a| a.starts_with(&dir)) {
            // A zombie (killed, not yet reaped) has no command line left; skip dead ones.
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            if !status.lines().any(|l| l.starts_with("State:") && l.contains('Z')) {
                return Some(pid);
            }
        }
    }
    None
}

struct Up {
    child: Child,
}

impl Up {
    fn start(dir: &std::path::Path, port: u16, admin: u16, datanode: u16) -> Up {
        let mut child = Command::new(BIN)
            .args(["up", "--data-dir", &dir.display().to_string()])
            .args([
                "--port",
                &port.to_string(),
                "--admin-port",
                &admin.to_string(),
                "--datanode-port",
                &datanode.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ferrocache up");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let done = line.contains("Press Ctrl-C");
                let _ = tx.send(line);
                if done {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        loop {
            let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).unwrap_or_else(|_| {
                panic!("ferrocache up did not come up within 60s; printed: {seen:#?}");
            });
            let done = line.contains("Press Ctrl-C");
            seen.push(line);
            if done {
                break;
            }
        }
        assert!(seen.iter().any(|l| l.contains("'default' is available")), "{seen:#?}");
        Up { child }
    }

    fn terminate(mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "up exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "up did not stop within 40s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
            let _ = self.child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_describes_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (port, admin, datanode) = (free_run(2), free_run(5), free_run(3));
    let up = Up::start(dir.path(), port, admin, datanode);

    let mut primary = redis_conn(port).await;
    let mut reader = redis_conn(port + 1).await;
    let ok: String = cmd("SET").arg("k").arg("v").query_async(&mut primary).await.unwrap();
    assert_eq!(ok, "OK");
    let v: String = cmd("GET").arg("k").query_async(&mut primary).await.unwrap();
    assert_eq!(v, "v");
    let start = Instant::now();
    loop {
        let v: Option<String> = cmd("GET").arg("k").query_async(&mut reader).await.unwrap();
        if v.as_deref() == Some("v") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(1), "the reader endpoint did not see k within a second");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let e = cmd("SET").arg("k2").arg("v").query_async::<()>(&mut reader).await.unwrap_err();
    assert_eq!(e.code(), Some("READONLY"));
    assert_eq!(e.detail(), Some("You can't write against a read only replica."));

    let out = Command::new(BIN)
        .args(["describe-replication-groups", "--output", "json", "--endpoint", &format!("http://127.0.0.1:{admin}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let group = &json["ReplicationGroups"][0];
    assert_eq!(group["ReplicationGroupId"], "default");
    assert_eq!(group["Status"], "available");
    let members = group["NodeGroups"][0]["NodeGroupMembers"].as_array().unwrap();
    assert_eq!(members.iter().filter(|m| m["CurrentRole"] == "primary").count(), 1);
    assert_eq!(members.iter().filter(|m| m["CurrentRole"] == "replica").count(), 2);
    let zones: std::collections::HashSet<_> =
        members.iter().map(|m| m["PreferredAvailabilityZone"].to_string()).collect();
    assert_eq!(zones.len(), 3);
    assert_eq!(group["NodeGroups"][0]["PrimaryEndpoint"]["Port"], port as i64);

    // The CLI's conventions are the AWS CLI's: --endpoint-url, --query, --output text, exit
    // codes (252 usage, 254 service error, 255 unreachable) and fault names.
    let cli = |args: &[&str]| Command::new(BIN).args(args).output().unwrap();
    let endpoint = format!("http://127.0.0.1:{admin}");
    let out = cli(&[
        "describe-replication-groups",
        "--endpoint-url",
        &endpoint,
        "--query",
        "ReplicationGroups[0].ReplicationGroupId",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "\"default\"");
    let out = cli(&["describe-replication-groups", "--endpoint-url", &endpoint, "--output", "text"]);
    assert!(String::from_utf8_lossy(&out.stdout).lines().any(|l| l.starts_with("REPLICATIONGROUPS\t")));
    assert_eq!(cli(&["describe-replication-groups", "--no-such-flag"]).status.code(), Some(252));
    let out = cli(&["describe-replication-groups", "--endpoint-url", &endpoint, "--replication-group-id", "nope"]);
    assert_eq!(out.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&out.stderr).contains("(ReplicationGroupNotFoundFault)"));
    assert_eq!(cli(&["describe-replication-groups", "--endpoint-url", "http://127.0.0.1:1"]).status.code(), Some(255));

    // up supervises: kill -9 the primary's datanode; the group fails over, up keeps running
    // and starts the datanode again, which rejoins.
    let primary_host =
        members.iter().find(|m| m["CurrentRole"] == "primary").unwrap()["DatanodeId"].as_str().unwrap().to_string();
    let old_pid = child_pid(dir.path(), &primary_host).expect("the primary's datanode runs");
    kill(Pid::from_raw(old_pid as i32), Signal::SIGKILL).unwrap();
    let killed = Instant::now();
    loop {
        let mut c = redis_conn(port).await;
        if cmd("SET").arg("after-kill").arg("1").query_async::<()>(&mut c).await.is_ok() {
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(20), "no write accepted within 20s of the primary's kill");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("writes back {:?} after the primary's kill", killed.elapsed());
    // About a second here; the bound leaves room for a busy CI machine.
    assert!(killed.elapsed() < Duration::from_secs(5), "writes came back only after {:?}", killed.elapsed());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child_pid(dir.path(), &primary_host).is_some_and(|p| p != old_pid) {
            break;
        }
        assert!(Instant::now() < deadline, "up did not restart {primary_host} within 30s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The restarted datanode rejoins, its member as a replica.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new(BIN)
            .args([
                "describe-replication-groups",
                "--endpoint-url",
                &endpoint,
                "--query",
                "ReplicationGroups[0].NodeGroups[0].NodeGroupMembers",
            ])
            .output()
            .unwrap();
        let members: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let rejoined = members.as_array().is_some_and(|ms| {
            ms.iter().any(|m| {
                m["DatanodeId"] == primary_host.as_str()
                    && m["CurrentRole"] == "replica"
                    && m["MemberStatus"] == "online"
            })
        });
        if rejoined {
            break;
        }
        assert!(Instant::now() < deadline, "{primary_host} did not rejoin as an online replica within 30s: {members}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut primary = redis_conn(port).await;
    // Written a moment before the kill, maybe not yet on the primary's disk: the restarted
    // datanode's primary is not trusted with it; a replica that has it was promoted.
    let v: Option<String> = cmd("GET").arg("k").query_async(&mut primary).await.unwrap();
    assert_eq!(v.as_deref(), Some("v"), "a write acknowledged before the primary's kill is kept");
    for i in 0..100 {
        let _: () = cmd("SET").arg(format!("key:{i}")).arg(i).query_async(&mut primary).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    drop((primary, reader));
    up.terminate();

    let up = Up::start(dir.path(), port, admin, datanode);
    let mut primary = redis_conn(port).await;
    let v: Option<String> = cmd("GET").arg("k").query_async(&mut primary).await.unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    let n: i64 = cmd("DBSIZE").query_async(&mut primary).await.unwrap();
    assert_eq!(n, 102);
    up.terminate();
}
