//! `ferrocache up`: a whole local cluster as child processes of this executable, on
//! 127.0.0.1 — three coordinators, datanodes over zones a, b and c (three by default),
//! gateways on 127.0.0.1, 127.0.0.2, ... (two by default) — and replication group `default` (one primary, two replicas; with `--shards`,
//! a cluster-mode group of that many node groups) when it does not exist yet.
//! Supervises them: a child that dies is reported and started again (after 0.5 s, doubling
//! up to 30 s while it keeps dying young), and the rest keeps serving — so a `kill -9` of a
//! primary's datanode shows a failover, then the datanode rejoining as a replica.
//! Stops every child cleanly on SIGINT/SIGTERM: gateway first, then datanodes (which flush
//! their data), then coordinators.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use ferrocache_proto::admin::v1 as api;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::admin::call;
use crate::roles::shutdown_token;

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Where every process keeps its data; logs go to <data-dir>/logs/.
    #[arg(long, env = "FERROCACHE_DATA_DIR", default_value = "./ferrocache-data")]
    pub data_dir: PathBuf,
    /// Primary endpoint port of group `default`; its reader endpoint is the next port.
    #[arg(long, default_value_t = 6379)]
    pub port: u16,
    /// Admin API port of the first coordinator; the other two use the next two ports, and
    /// the gateways' gRPC health ports the ones after them.
    #[arg(long, default_value_t = 7000)]
    pub admin_port: u16,
    /// gRPC port of the first datanode; the others use the next ports.
    #[arg(long, default_value_t = 7100)]
    pub datanode_port: u16,
    /// Datanodes to start, spread over zones a, b and c (1-64).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub datanodes: u16,
    /// Node groups (shards) of group `default` when it is created: more than one makes it
    /// cluster mode enabled (configuration endpoint: the port after the reader endpoint).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=500))]
    pub shards: i32,
    /// AppendFsync of group `default` when it is created (always | everysec | no).
    #[arg(long, default_value = "everysec")]
    pub append_fsync: String,
    /// Replicas per node group of group `default` when it is created (0-5; at most
    /// datanodes - 1).
    #[arg(long, default_value_t = 2)]
    pub replicas: i32,
    /// Start the processes only; create no group.
    #[arg(long)]
    pub no_default_group: bool,
    /// Gateways to start (1-8): gateway i binds 127.0.0.i (every group's ports on each) and
    /// serves gRPC health on the port after the coordinators' (then the next ones). Cluster
    /// clients are told of all of them; plain clients pick one address.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub gateways: u8,
}

/// Prints a line; a closed stdout (`ferrocache up | head`) must not stop the cluster.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// The same for stderr.
macro_rules! esay {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

struct Proc {
    name: String,
    args: Vec<String>,
    child: Child,
    started: tokio::time::Instant,
    /// Restarts in a row of a child that died young (for the backoff).
    failures: u32,
    /// Set while the child is dead: when to start it again.
    restart_at: Option<tokio::time::Instant>,
}

/// A child that ran this long before dying is restarted without delay growth.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

fn start_child(exe: &Path, name: &str, args: &[String], logs: &Path) -> std::io::Result<Child> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(logs.join(format!("{name}.log")))?;
    let mut command = Command::new(exe);
    command.args(args).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).kill_on_drop(true);
    // The children share this machine: a runtime thread per core in each of eight busy
    // processes mostly wakes threads on other cores (measured on 2 cores: a fifth more CPU
    // per request, 20-30 % fewer requests/s). A TOKIO_WORKER_THREADS of the user's wins.
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        command.env("TOKIO_WORKER_THREADS", shared_machine_workers().to_string());
    }
    command.spawn()
}

/// Runtime threads per child: a quarter of the cores, at least one.
fn shared_machine_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 4).max(1))
}

fn spawn(exe: &Path, name: &str, args: &[String], logs: &Path) -> std::io::Result<Proc> {
    let child = start_child(exe, name, args, logs)?;
    Ok(Proc {
        name: name.to_string(),
        args: args.to_vec(),
        child,
        started: tokio::time::Instant::now(),
        failures: 0,
        restart_at: None,
    })
}

/// Restarts children that die, until `cancel`.
async fn supervise(procs: &mut [Proc], logs: &Path, cancel: &CancellationToken) {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            esay!("cannot find my own executable to restart children: {e}");
            return cancel.cancelled().await;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = tokio::time::Instant::now();
        for p in procs.iter_mut() {
            match p.restart_at {
                None => {
                    let Ok(Some(status)) = p.child.try_wait() else { continue };
                    if now.duration_since(p.started) >= HEALTHY_RUN {
                        p.failures = 0;
                    }
                    let backoff = FIRST_BACKOFF.saturating_mul(1 << p.failures.min(6)).min(MAX_BACKOFF);
                    p.failures += 1;
                    esay!(
                        "{} exited ({status}); restarting it in {:.1}s (log: {}/{}.log)",
                        p.name,
                        backoff.as_secs_f64(),
                        logs.display(),
                        p.name
                    );
                    p.restart_at = Some(now + backoff);
                }
                Some(at) if now >= at => match start_child(&exe, &p.name, &p.args, logs) {
                    Ok(child) => {
                        say!("{} restarted", p.name);
                        p.child = child;
                        p.started = now;
                        p.restart_at = None;
                    }
                    Err(e) => {
                        esay!("cannot restart {}: {e}; trying again", p.name);
                        p.restart_at = Some(now + MAX_BACKOFF);
                    }
                },
                Some(_) => {}
            }
        }
    }
}

pub async fn run(a: UpArgs) -> ExitCode {
    let cancel = shutdown_token();
    let mut procs = Vec::new();
    let result = start(&a, &mut procs, &cancel).await;
    match &result {
        Ok(()) => supervise(&mut procs, &a.data_dir.join("logs"), &cancel).await,
        Err(e) => esay!("ferrocache up failed: {e}"),
    }
    stop(procs).await;
    if result.is_ok() {
        say!("Stopped. Data is kept in {}", a.data_dir.display());
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn start(a: &UpArgs, procs: &mut Vec<Proc>, cancel: &CancellationToken) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own executable: {e}"))?;
    let logs = a.data_dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
    let coordinators: Vec<String> = (0..3).map(|i| format!("127.0.0.1:{}", a.admin_port + i)).collect();
    let peers = coordinators.iter().enumerate().map(|(i, c)| format!("{}={c}", i + 1)).collect::<Vec<_>>().join(",");
    let dir = |name: &str| a.data_dir.join(name).display().to_string();
    let s = |v: &str| v.to_string();
    for (i, addr) in coordinators.iter().enumerate() {
        let name = format!("coordinator-{}", i + 1);
        let args = vec![
            s("coordinator"),
            s("--id"),
            (i + 1).to_string(),
            s("--peers"),
            peers.clone(),
            s("--listen"),
            addr.clone(),
            s("--data-dir"),
            dir(&name),
            s("--endpoint-port-base"),
            a.port.to_string(),
        ];
        procs.push(spawn(&exe, &name, &args, &logs).map_err(|e| format!("cannot start {name}: {e}"))?);
    }
    for i in 0..a.datanodes as usize {
        let zone = ["a", "b", "c"][i % 3];
        // The first three keep the names (and data folders) `up` always gave them.
        let name = if i < 3 { format!("datanode-{zone}") } else { format!("datanode-{zone}{}", i / 3 + 1) };
        let args = vec![
            s("datanode"),
            s("--id"),
            name.clone(),
            s("--zone"),
            s(zone),
            s("--listen"),
            format!("127.0.0.1:{}", a.datanode_port + i as u16),
            s("--data-dir"),
            dir(&name),
            s("--coordinators"),
            coordinators.join(","),
        ];
        procs.push(spawn(&exe, &name, &args, &logs).map_err(|e| format!("cannot start {name}: {e}"))?);
    }
    // TLS for groups that ask for it: a cluster CA and a gateway certificate, made once.
    let tls_dir = a.data_dir.join("tls");
    let mut hosts = vec![s("localhost"), s("::1")];
    hosts.extend((1..=8).map(|i| format!("127.0.0.{i}")));
    crate::certificates::ensure(&tls_dir, &hosts, false)?;
    let (cert, key) = crate::certificates::gateway_files(&tls_dir);
    let mut binds = Vec::new();
    for i in 0..a.gateways as u16 {
        let bind = format!("127.0.0.{}", i + 1);
        let name = if i == 0 { s("gateway") } else { format!("gateway-{}", i + 1) };
        let args = vec![
            s("gateway"),
            s("--coordinators"),
            coordinators.join(","),
            s("--bind"),
            bind.clone(),
            s("--grpc-listen"),
            format!("127.0.0.1:{}", a.admin_port + 3 + i),
            s("--tls-cert-file"),
            cert.display().to_string(),
            s("--tls-key-file"),
            key.display().to_string(),
        ];
        procs.push(spawn(&exe, &name, &args, &logs).map_err(|e| format!("cannot start {name}: {e}"))?);
        binds.push(bind);
    }
    say!(
        "Started 3 coordinators, {} datanodes (zones a, b, c) and {} gateway(s) on {}; logs in {}",
        a.datanodes,
        a.gateways,
        binds.join(", "),
        logs.display()
    );

    let endpoint = format!("http://{}", coordinators[0]);
    let group = tokio::select! {
        _ = cancel.cancelled() => return Err("interrupted".into()),
        name = first_exit(procs) => return Err(format!("{name} exited during start-up; see {}/{name}.log", logs.display())),
        g = ensure_default_group(a, &endpoint) => g?,
    };
    match group {
        Some(g) => {
            let ng = g.node_groups.first();
            let ep = |e: Option<&api::Endpoint>| e.map(|e| format!("{}:{}", e.address, e.port)).unwrap_or_default();
            say!("Replication group '{}' is {}:", g.replication_group_id, g.status);
            say!(
                "  primary endpoint: {}   (redis-cli -p {})",
                ep(ng.and_then(|n| n.primary_endpoint.as_ref())),
                a.port
            );
            say!(
                "  reader endpoint:  {}   (redis-cli -p {})",
                ep(ng.and_then(|n| n.reader_endpoint.as_ref())),
                a.port + 1
            );
            if let Some(c) = &g.configuration_endpoint {
                say!(
                    "  configuration endpoint: {}:{}   ({} node groups; redis-cli -c -p {})",
                    c.address,
                    c.port,
                    g.node_groups.len(),
                    c.port
                );
            }
        }
        None => say!("No default group created (--no-default-group)."),
    }
    say!("Admin API: {endpoint}   (ferrocache describe-replication-groups --endpoint {endpoint})");
    say!("Press Ctrl-C to stop.");
    Ok(())
}

/// Finds group `default`, creating it when absent, and waits until it is available.
async fn ensure_default_group(a: &UpArgs, endpoint: &str) -> Result<Option<api::ReplicationGroup>, String> {
    let patience = Duration::from_secs(60);
    let describe = || {
        call(endpoint, patience, |mut c| async move {
            c.describe_replication_groups(api::DescribeReplicationGroupsRequest {
                replication_group_id: "default".into(),
            })
            .await
        })
    };
    match describe().await {
        Ok(_) => {}
        Err(s) if s.code() == tonic::Code::NotFound && !a.no_default_group => {
            let req = api::CreateReplicationGroupRequest {
                replication_group_id: "default".into(),
                replication_group_description: "created by ferrocache up".into(),
                replicas_per_node_group: Some(a.replicas),
                num_node_groups: (a.shards > 1).then_some(a.shards),
                append_fsync: a.append_fsync.clone(),
                port: Some(a.port as i32),
                ..Default::default()
            };
            let deadline = tokio::time::Instant::now() + patience;
            loop {
                let r = call(endpoint, patience, |mut c| {
                    let req = req.clone();
                    async move { c.create_replication_group(req).await }
                })
                .await;
                match r {
                    Ok(_) => break,
                    // Datanodes not registered yet: they heartbeat within a second.
                    Err(s) if s.code() == tonic::Code::FailedPrecondition && tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(300)).await
                    }
                    Err(s) => return Err(format!("cannot create group default: {}", s.message())),
                }
            }
        }
        Err(s) if s.code() == tonic::Code::NotFound => return Ok(None),
        Err(s) => return Err(format!("the admin API at {endpoint} does not answer: {}", s.message())),
    }
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let groups = describe().await.map_err(|s| s.message().to_string())?;
        if let Some(g) = groups.replication_groups.into_iter().next() {
            if g.status == "available" || tokio::time::Instant::now() >= deadline {
                return Ok(Some(g));
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Resolves with the name of the first child that exits.
async fn first_exit(procs: &mut [Proc]) -> String {
    loop {
        for p in procs.iter_mut() {
            if let Ok(Some(_)) = p.child.try_wait() {
                return p.name.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn stop(mut procs: Vec<Proc>) {
    // Gateway first (no new commands), then datanodes (flush), then coordinators.
    let order = ["gateway", "datanode", "coordinator"];
    for prefix in order {
        let mut group: Vec<&mut Proc> = procs.iter_mut().filter(|p| p.name.starts_with(prefix)).collect();
        for p in group.iter() {
            if p.restart_at.is_some() {
                continue;
            }
            if let Some(pid) = p.child.id() {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            }
        }
        for p in group.iter_mut() {
            if tokio::time::timeout(Duration::from_secs(10), p.child.wait()).await.is_err() {
                esay!("{} did not stop within 10s; killing it", p.name);
                let _ = p.child.kill().await;
            }
        }
    }
}
