//! Test harness: a real cluster of `ferrocache` processes on loopback, on free ports, in a
//! temporary directory. Processes can be killed (-9), stopped (SIGTERM) and restarted.
//! When a test fails, the tail of every process's log is printed.

#![allow(dead_code)]

pub mod partition;
pub mod workload;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api::admin_client::AdminClient;
use ferrocache_proto::admin::v1 as api;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub const BIN: &str = env!("CARGO_BIN_EXE_ferrocache");

/// A port nothing listens on, chosen below the kernel's ephemeral range (32768 and up) so
/// that outgoing connections of other tests cannot take it before our process binds it.
pub fn free_port() -> u16 {
    free_port_block(1)
}

/// Two consecutive free ports (primary and reader endpoints).
pub fn free_port_pair() -> u16 {
    free_port_block(2)
}

/// `n` consecutive free ports (a cluster-mode group's endpoints and node ports).
///
/// A port is free when we test it, but the process that will own it binds it later; tests of
/// one binary run in parallel threads, so without bookkeeping two tests (or two processes of
/// one test) could be handed the same port in that window. Every port handed out is remembered
/// for the life of the test process and never handed out again.
pub fn free_port_block(n: u16) -> u16 {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    static STATE: AtomicU64 = AtomicU64::new(0);
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let seed = std::process::id() as u64
        ^ (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
    let _ = STATE.compare_exchange(0, seed | 1, Ordering::Relaxed, Ordering::Relaxed);
    let step = |mut x: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    loop {
        // xorshift seeded per test process, so concurrent test binaries start apart; the range
        // stays below Linux's ephemeral ports (32768+), which outgoing connections take.
        let prev = STATE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| Some(step(x))).unwrap_or(1);
        let base = 10_000 + (step(prev) % 22_000) as u16;
        let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        let handed = handed.get_or_insert_with(HashSet::new);
        let ports = base..base + n;
        if ports.clone().any(|p| handed.contains(&p)) {
            continue;
        }
        if ports.clone().all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            handed.extend(ports);
            return base;
        }
    }
}

pub struct Proc {
    pub name: String,
    args: Vec<String>,
    child: Option<Child>,
    log: PathBuf,
    /// Runs as this uid (so partitions can single out its traffic).
    pub uid: Option<u32>,
    /// Environment variables of its own.
    env: Vec<(String, String)>,
}

impl Proc {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let mut command = Command::new(BIN);
        if let Some(uid) = self.uid {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(uid);
        }
        let child = command
            .args(&self.args)
            .env("RUST_LOG", "info,openraft=warn,sled=warn,h2=warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn ferrocache");
        self.child = Some(child);
    }

    fn signal(&mut self, sig: Signal) {
        if let Some(c) = &mut self.child {
            let _ = kill(Pid::from_raw(c.id() as i32), sig);
        }
    }

    fn wait(&mut self, timeout: Duration) {
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub procs: Vec<Proc>,
    pub coordinators: Vec<String>,
    /// The uid the next added process runs as.
    next_uid: Option<u32>,
    secret: Option<&'static str>,
    metrics: bool,
    metrics_ports: std::collections::HashMap<String, u16>,
    /// Environment of the next added process.
    next_env: Vec<(String, String)>,
}

pub struct Options {
    pub coordinators: usize,
    pub datanodes: usize,
    pub gateway: bool,
    /// Run each datanode as its own uid (root only), for [`partition`].
    pub own_uids: bool,
    /// More flags for every coordinator.
    pub coordinator_args: &'static [&'static str],
    /// The cluster secret every process gets (the test process must install it too, with
    /// `ferrocache_common::credentials::install`, to call the admin API).
    pub secret: Option<&'static str>,
    /// Give the gateway a TLS certificate (made with `generate-certificates` in the
    /// cluster's directory; the CA is at [`Cluster::tls_ca`]).
    pub gateway_tls: bool,
    /// Give every process a `--metrics-listen` port ([`Cluster::metrics_port`]).
    pub metrics: bool,
    /// Runtime worker threads of each datanode (TOKIO_WORKER_THREADS; default: one per core).
    pub datanode_workers: Option<usize>,
    /// More flags for the gateway.
    pub gateway_args: &'static [&'static str],
    /// Runtime worker threads of the gateway (default: one per core).
    pub gateway_workers: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            coordinators: 1,
            datanodes: 3,
            gateway: true,
            own_uids: false,
            coordinator_args: &[],
            secret: None,
            gateway_tls: false,
            metrics: false,
            datanode_workers: None,
            gateway_args: &[],
            gateway_workers: None,
        }
    }
}

impl Cluster {
    pub fn start(opts: Options) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let coordinators: Vec<String> = (0..opts.coordinators).map(|_| format!("127.0.0.1:{}", free_port())).collect();
        let peers =
            coordinators.iter().enumerate().map(|(i, a)| format!("{}={a}", i + 1)).collect::<Vec<_>>().join(",");
        let mut cluster = Cluster {
            dir,
            procs: Vec::new(),
            coordinators: coordinators.clone(),
            next_uid: None,
            secret: opts.secret,
            metrics: opts.metrics,
            metrics_ports: Default::default(),
            next_env: Vec::new(),
        };
        for (i, addr) in coordinators.iter().enumerate() {
            let name = format!("coordinator-{}", i + 1);
            let data = cluster.path(&name);
            let id = (i + 1).to_string();
            let mut args = vec!["coordinator", "--id", &id, "--peers", &peers, "--listen", addr, "--data-dir", &data];
            args.extend_from_slice(opts.coordinator_args);
            cluster.add(&name, &args);
        }
        let zones = ["a", "b", "c"];
        let uid_base = 20_000 + (std::process::id() % 1000) * 40;
        if opts.own_uids {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(cluster.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        for i in 0..opts.datanodes {
            let name = format!("datanode-{}", i + 1);
            let data = cluster.path(&name);
            if opts.own_uids {
                let uid = uid_base + i as u32;
                std::fs::create_dir_all(&data).expect("data dir");
                std::os::unix::fs::chown(&data, Some(uid), Some(uid)).expect("chown");
                cluster.next_uid = Some(uid);
            }
            let listen = format!("127.0.0.1:{}", free_port());
            let zone = zones[i % zones.len()];
            if let Some(workers) = opts.datanode_workers {
                cluster.next_env = vec![("TOKIO_WORKER_THREADS".into(), workers.to_string())];
            }
            cluster.add(
                &name,
                &[
                    "datanode",
                    "--id",
                    &name,
                    "--zone",
                    zone,
                    "--listen",
                    &listen,
                    "--data-dir",
                    &data,
                    "--coordinators",
                    &coordinators.join(","),
                ],
            );
        }
        if opts.gateway {
            let grpc = format!("127.0.0.1:{}", free_port());
            let coordinators = coordinators.join(",");
            let mut args = vec!["gateway", "--coordinators", &coordinators, "--grpc-listen", &grpc];
            let tls = cluster.dir.path().join("tls");
            let (cert, key) =
                (tls.join("gateway.pem").display().to_string(), tls.join("gateway.key").display().to_string());
            if opts.gateway_tls {
                let made = Command::new(BIN)
                    .args(["generate-certificates", "--out-dir", &tls.display().to_string()])
                    .stdout(Stdio::null())
                    .status()
                    .expect("generate-certificates");
                assert!(made.success(), "generate-certificates failed");
                args.extend(["--tls-cert-file", &cert, "--tls-key-file", &key]);
            }
            args.extend(opts.gateway_args);
            if let Some(workers) = opts.gateway_workers {
                cluster.next_env = vec![("TOKIO_WORKER_THREADS".into(), workers.to_string())];
            }
            cluster.add("gateway", &args);
        }
        cluster
    }

    /// Starts another gateway whose Redis endpoints bind to `bind` (another loopback address,
    /// e.g. 127.0.0.2, so the groups' ports do not clash with the first gateway's).
    pub fn add_gateway(&mut self, name: &str, bind: &str) {
        let grpc = format!("127.0.0.1:{}", free_port());
        let coordinators = self.coordinators.join(",");
        self.add(name, &["gateway", "--coordinators", &coordinators, "--grpc-listen", &grpc, "--bind", bind]);
    }

    /// The `--metrics-listen` port of process `name` (with `metrics`).
    pub fn metrics_port(&self, name: &str) -> u16 {
        self.metrics_ports[name]
    }

    /// The CA that signed the gateway's certificate (with `gateway_tls`).
    pub fn tls_ca(&self) -> PathBuf {
        self.dir.path().join("tls").join("ca.pem")
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn add(&mut self, name: &str, args: &[&str]) {
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if let Some(secret) = self.secret {
            args.extend(["--cluster-secret".to_string(), secret.to_string()]);
        }
        if self.metrics {
            let port = free_port();
            self.metrics_ports.insert(name.to_string(), port);
            args.extend(["--metrics-listen".to_string(), format!("127.0.0.1:{port}")]);
        }
        let mut p = Proc {
            name: name.to_string(),
            args,
            child: None,
            log: self.dir.path().join(format!("{name}.log")),
            uid: self.next_uid.take(),
            env: std::mem::take(&mut self.next_env),
        };
        p.start();
        self.procs.push(p);
    }

    fn proc(&mut self, name: &str) -> &mut Proc {
        self.procs.iter_mut().find(|p| p.name == name).unwrap_or_else(|| panic!("no process {name}"))
    }

    /// kill -9.
    pub fn kill(&mut self, name: &str) {
        let p = self.proc(name);
        p.signal(Signal::SIGKILL);
        p.wait(Duration::from_secs(5));
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self, name: &str) {
        let p = self.proc(name);
        p.signal(Signal::SIGTERM);
        p.wait(Duration::from_secs(15));
    }

    /// SIGSTOP (a process that hangs without dying); returns once the kernel shows it stopped.
    pub fn pause(&mut self, name: &str) {
        let p = self.proc(name);
        let pid = p.child.as_ref().map(|c| c.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            p.signal(Signal::SIGSTOP);
            let state = pid.and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok());
            // The state letter follows the command name's closing parenthesis.
            let stopped = state
                .as_deref()
                .and_then(|s| s.rsplit(')').next())
                .is_some_and(|rest| rest.trim_start().starts_with('T'));
            if stopped || pid.is_none() {
                return;
            }
            assert!(Instant::now() < deadline, "{name} did not stop after SIGSTOP");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn resume(&mut self, name: &str) {
        self.proc(name).signal(Signal::SIGCONT);
    }

    /// The gRPC address a datanode listens on.
    pub fn datanode_address(&self, name: &str) -> String {
        let p = self.procs.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("no process {name}"));
        let i = p.args.iter().position(|a| a == "--listen").expect("--listen");
        p.args[i + 1].clone()
    }

    /// The process id of a running process.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.procs.iter().find(|p| p.name == name).and_then(|p| p.child.as_ref()).map(|c| c.id())
    }

    pub fn uid_of(&self, name: &str) -> Option<u32> {
        self.procs.iter().find(|p| p.name == name).and_then(|p| p.uid)
    }

    /// The coordinators' ports (what a cut from the coordinators blocks).
    pub fn coordinator_ports(&self) -> Vec<u16> {
        self.coordinators.iter().filter_map(|a| a.rsplit(':').next()?.parse().ok()).collect()
    }

    /// Starts a stopped process again. A port the old process held can stay busy for a
    /// moment after it died, so a start that exits at once is retried.
    pub fn restart(&mut self, name: &str) {
        let p = self.proc(name);
        for _ in 0..40 {
            p.start();
            std::thread::sleep(Duration::from_millis(300));
            let exited = p.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            if !exited {
                return;
            }
            p.child = None;
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("{name} does not stay up after a restart");
    }

    pub fn names(&self, prefix: &str) -> Vec<String> {
        self.procs.iter().filter(|p| p.name.starts_with(prefix)).map(|p| p.name.clone()).collect()
    }

    pub fn endpoint(&self, i: usize) -> String {
        format!("http://{}", self.coordinators[i])
    }

    /// An admin client on coordinator `i`, retried until it connects (10 s).
    pub async fn admin(&self, i: usize) -> AdminClient<ferrocache_common::credentials::Channel> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match ferrocache_common::credentials::connect(self.endpoint(i)).await {
                Ok(c) => return AdminClient::new(c),
                Err(e) if Instant::now() > deadline => panic!("coordinator {i} unreachable: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Creates a group on a fresh port pair and waits until it is available and the
    /// gateway answers on its endpoints. Returns (primary port, reader port).
    pub async fn create_group(&self, id: &str, replicas: i32, append_fsync: &str) -> (u16, u16) {
        let port = free_port_pair();
        let req = api::CreateReplicationGroupRequest {
            replication_group_id: id.into(),
            replicas_per_node_group: Some(replicas),
            append_fsync: append_fsync.into(),
            port: Some(port as i32),
            ..Default::default()
        };
        self.create(req).await
    }

    /// Creates a cluster-mode group of `shards` node groups with `replicas` replicas each;
    /// returns (proxy primary endpoint port, configuration endpoint port).
    pub async fn create_cluster_group(&self, id: &str, shards: i32, replicas: i32) -> (u16, u16) {
        self.create_cluster(api::CreateReplicationGroupRequest {
            replication_group_id: id.into(),
            num_node_groups: Some(shards),
            replicas_per_node_group: Some(replicas),
            ..Default::default()
        })
        .await
    }

    /// Creates a cluster-mode group as `req` says; returns (proxy port, configuration port).
    pub async fn create_cluster(&self, req: api::CreateReplicationGroupRequest) -> (u16, u16) {
        let id = req.replication_group_id.clone();
        let (proxy, _) = self.create(req).await;
        let config = self.describe(&id).await.configuration_endpoint.expect("configuration endpoint").port as u16;
        (proxy, config)
    }

    /// Creates a group as `req` says (its Port is chosen here when absent: free ports for
    /// the endpoints and, in cluster mode, one per member), waits until it is available and
    /// answers on its endpoints. Returns (primary port, reader port).
    pub async fn create(&self, mut req: api::CreateReplicationGroupRequest) -> (u16, u16) {
        let id = req.replication_group_id.clone();
        let port = match req.port {
            Some(p) => p as u16,
            None => {
                let p = free_port_block(40);
                req.port = Some(p as i32);
                p
            }
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut admin = self.admin(0).await;
            match admin.create_replication_group(req.clone()).await {
                Ok(_) => break,
                Err(s)
                    if Instant::now() < deadline
                        && matches!(s.code(), tonic::Code::FailedPrecondition | tonic::Code::Unavailable) =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(s) => panic!("create {id}: {s:?}"),
            }
        }
        self.wait_available(&id).await;
        wait_for_port(port).await;
        wait_for_port(port + 1).await;
        (port, port + 1)
    }

    /// Waits until the (single) coordinator hears from `n` datanodes: placement spreads a new
    /// group over the datanodes live at its creation (needs `metrics` in the options).
    pub async fn wait_datanodes_live(&self, n: usize) {
        let port = self.metrics_port("coordinator-1");
        eventually(Duration::from_secs(30), &format!("{n} datanodes live"), || async move {
            // The port opens a moment after the process starts.
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                return false;
            }
            scrape(port).await.get("ferrocache_datanodes_live").copied() == Some(n as f64)
        })
        .await;
    }

    pub async fn describe(&self, id: &str) -> api::ReplicationGroup {
        let mut admin = self.admin(0).await;
        let r = admin
            .describe_replication_groups(api::DescribeReplicationGroupsRequest { replication_group_id: id.into() })
            .await
            .expect("describe");
        r.into_inner().replication_groups.into_iter().next().expect("group")
    }

    pub async fn wait_available(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut admin = self.admin(0).await;
            if let Ok(r) = admin
                .describe_replication_groups(api::DescribeReplicationGroupsRequest { replication_group_id: id.into() })
                .await
            {
                if r.into_inner().replication_groups.first().is_some_and(|g| g.status == "available") {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "group {id} not available within 30s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn print_logs(&self) {
        for p in &self.procs {
            let text = std::fs::read_to_string(&p.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            eprintln!("----- {} (last {} lines) -----", p.name, tail.len());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
        for p in &mut self.procs {
            p.signal(Signal::SIGKILL);
            p.wait(Duration::from_secs(5));
        }
    }
}

/// Scrapes `GET /metrics` on `port`: every sample as (name with labels) -> value.
pub async fn scrape(port: u16) -> std::collections::HashMap<String, f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("metrics port");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut body)).await.unwrap().unwrap();
    let (head, text) = body.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut out = std::collections::HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample line: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in: {line}"));
        out.insert(name.to_string(), value);
    }
    out
}

pub async fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port} after 20s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn redis_conn(port: u16) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.get_multiplexed_async_connection().await {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => panic!("cannot connect to {port}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Sends raw RESP bytes on a fresh connection and reads until the input ends with `want`
/// (or 5 s pass); returns what was read, for checking exact wire shapes (RESP3 frames).
pub async fn raw_exchange(port: u16, request: &[u8], want: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    raw.write_all(request).await.expect("write");
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !got.ends_with(want) && Instant::now() < deadline {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(1), raw.read(&mut buf)).await.map_or(0, |r| r.unwrap_or(0));
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// A client connection to a gateway endpoint.
pub type Conn = redis::aio::MultiplexedConnection;

/// Sends one command (name and arguments as strings) and converts its reply.
pub async fn q<T: redis::FromRedisValue>(c: &mut Conn, args: &[&str]) -> redis::RedisResult<T> {
    let mut command = redis::cmd(args[0]);
    for a in &args[1..] {
        command.arg(*a);
    }
    command.query_async(c).await
}

/// The error a command must answer (as the client shows it); panics when it succeeds.
pub async fn err(c: &mut Conn, args: &[&str]) -> String {
    match q::<redis::Value>(c, args).await {
        Ok(v) => panic!("{args:?} should fail, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

/// An integer reply; panics on an error.
pub async fn int(c: &mut Conn, args: &[&str]) -> i64 {
    q(c, args).await.unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// An array of strings; panics on an error.
pub async fn strs(c: &mut Conn, args: &[&str]) -> Vec<String> {
    q(c, args).await.unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Retries `f` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < deadline, "not within {timeout:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn data_dir(cluster: &Cluster, name: &str) -> PathBuf {
    Path::new(cluster.dir.path()).join(name)
}

/// Whether python3 can import `modules`, installing `packages` from PyPI when not. False
/// means the test should skip; under FERROCACHE_EXTERNAL_CLIENTS=required (CI) it fails.
pub fn python_with(modules: &str, packages: &[&str]) -> bool {
    let importable = || {
        std::process::Command::new("python3")
            .args(["-c", &format!("import {modules}")])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !importable() {
        let _ = std::process::Command::new("python3").args(["-m", "pip", "install", "-q"]).args(packages).status();
    }
    if importable() {
        return true;
    }
    let required = std::env::var("FERROCACHE_EXTERNAL_CLIENTS").is_ok_and(|v| v == "required");
    assert!(!required, "python3 with {packages:?} is required here (python3 -m pip install {})", packages.join(" "));
    eprintln!("SKIPPED: python3 -m pip install {} failed", packages.join(" "));
    false
}

/// Runs a Python script (blocking the runtime's thread in place); its output, and whether
/// it exited 0.
pub fn run_python(script: &str) -> (bool, String) {
    let out = tokio::task::block_in_place(|| std::process::Command::new("python3").args(["-c", script]).output())
        .expect("python3");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A reply in a compact form: `[a,b]` arrays, `{k:v}` maps, `nil`, `(error) ...`.
pub fn show(v: &redis::Value) -> String {
    match v {
        redis::Value::Nil => "nil".into(),
        redis::Value::Int(i) => i.to_string(),
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Okay => "OK".into(),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(","))
        }
        redis::Value::Map(pairs) => {
            format!(
                "{{{}}}",
                pairs.iter().map(|(k, v)| format!("{}:{}", show(k), show(v))).collect::<Vec<_>>().join(",")
            )
        }
        redis::Value::ServerError(e) => format!("(error) {} {}", e.code(), e.details().unwrap_or_default()),
        other => format!("{other:?}"),
    }
}

pub async fn run_line(c: &mut Conn, line: &str) -> String {
    let mut parts = line.split(' ');
    let mut command = redis::cmd(parts.next().unwrap_or_default());
    for a in parts {
        command.arg(a);
    }
    match command.query_async::<redis::Value>(c).await {
        Ok(v) => show(&v),
        Err(e) => format!("(error) {} {}", e.code().unwrap_or("?"), e.detail().unwrap_or_default()),
    }
}

/// Runs `(command, expected)` pairs; every mismatch is reported at once.
pub async fn expect_all(c: &mut Conn, cases: &[(&str, &str)]) {
    let mut wrong = Vec::new();
    for (line, want) in cases {
        let got = run_line(c, line).await;
        if !got.starts_with(want) {
            wrong.push(format!("{line}\n   got:  {got}\n   want: {want}"));
        }
    }
    assert!(wrong.is_empty(), "{} replies differ from Redis:\n{}", wrong.len(), wrong.join("\n"));
}
