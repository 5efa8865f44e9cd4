//! The datanode's link to the coordinators: a heartbeat every interval to the leader,
//! reporting each node's role, offset and sync state; the reply says what to host.
//! A follower coordinator answers with the leader's address, which is tried next.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrocache_proto::internal::v1 as pb;
use pb::cluster_client::ClusterClient;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::host::Host;
use crate::node::Role;

/// gRPC header naming the leader's address in a follower's UNAVAILABLE answer.
pub const LEADER_HEADER: &str = "x-ferrocache-leader";

/// How long the heartbeat waits for a node's lock before it reports the node as it last
/// was: a command holding it for long (KEYS, FLUSHALL, SORT on big data) is a busy node,
/// not a dead one, and must not cost a failover.
const LOCK_WAIT: Duration = Duration::from_millis(5);

/// How long the lease renewal waits for a node's lock: longer than the report's wait, as a
/// primary under heavy load takes its lock batch after batch and a lapsed lease refuses
/// writes; shorter than any long command, which it must not wait out.
const LEASE_LOCK_WAIT: Duration = Duration::from_millis(100);

/// How long a beat waits for its reply's assignments to be applied (that takes every node's
/// lock, which a long command may have taken since the report) before it goes on without
/// renewing leases; the next beats wait for that application to finish.
const RECONCILE_WAIT: Duration = Duration::from_millis(100);

/// How long a node may hold its lock (outside a script) and still be reported alive. Past
/// it the lock is taken to be stuck: the heartbeat goes silent, so the coordinators fail
/// over this datanode's primaries (Sentinel's default down-after, 30 s).
const STUCK_AFTER: Duration = Duration::from_secs(30);

pub struct Heartbeat {
    pub host: Arc<Host>,
    pub datanode_id: String,
    pub advertise: String,
}

impl Heartbeat {
    /// Starts the heartbeat on a thread of its own, with its own small runtime for the
    /// coordinator connection. The datanode's runtime may have a single worker (`ferrocache
    /// up` gives each process a share of the cores), and a batch that computes for seconds
    /// on it (an EXEC of heavy commands, a huge DEL) would silence a heartbeat that shared
    /// it: the coordinators would fail over a node that is only busy. The returned future
    /// ends when the thread does (after `cancel`).
    pub fn spawn(self, cancel: CancellationToken) -> std::io::Result<impl std::future::Future<Output = ()>> {
        let main = tokio::runtime::Handle::current();
        let (done, ended) = tokio::sync::oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        std::thread::Builder::new().name("heartbeat".into()).spawn(move || {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run(&rt, &main, &cancel)));
            if ran.is_err() {
                // A bug in applying assignments. A datanode that lives on without heartbeats
                // never learns of its own demotion: stop, as a panicking write does
                // (panic_guard), and let the supervisor restart it.
                tracing::error!("the heartbeat panicked: stopping the datanode");
                eprintln!("ferrocache datanode: the heartbeat panicked; stopping");
                std::process::abort();
            }
            let _ = done.send(());
        })?;
        Ok(async move {
            let _ = ended.await;
        })
    }

    /// The heartbeat loop. Only the waits and the RPC run inside `rt`; what touches nodes
    /// runs outside it with the datanode's runtime entered, so the tasks it starts (a
    /// follower, a restore) are the datanode's, and its lock waits block only this thread.
    fn run(self, rt: &tokio::runtime::Runtime, main: &tokio::runtime::Handle, cancel: &CancellationToken) {
        let coordinators = self.host.config.coordinators.clone();
        let interval = Duration::from_millis(self.host.config.heartbeat_interval_ms);
        let mut channels: HashMap<String, Channel> = HashMap::new();
        let mut target = coordinators.first().cloned().unwrap_or_default();
        let mut next_index = 0usize;
        // What each node last reported: repeated while a script or a long command holds its
        // lock.
        let mut last: HashMap<String, pb::NodeStatus> = HashMap::new();
        // Since when a node's lock has been out of reach (outside a script).
        let mut held_since: HashMap<String, std::time::Instant> = HashMap::new();
        // An application of assignments is still waiting for a node's lock.
        let reconciling = Arc::new(AtomicBool::new(false));
        let mut ticker = {
            let _rt = rt.enter();
            tokio::time::interval(interval)
        };
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let go = rt.block_on(async {
                tokio::select! {
                    _ = cancel.cancelled() => false,
                    _ = ticker.tick() => true,
                    _ = self.host.refresh.notified() => {
                        ticker.reset();
                        true
                    }
                }
            });
            if !go {
                return;
            }
            let channel = match channels.get(&target) {
                Some(c) => c.clone(),
                None => match tonic::transport::Endpoint::from_shared(format!("http://{target}")) {
                    Ok(e) => {
                        let _rt = rt.enter();
                        let c = e.connect_timeout(Duration::from_secs(1)).connect_lazy();
                        channels.insert(target.clone(), c.clone());
                        c
                    }
                    Err(_) => {
                        next_index += 1;
                        target = coordinators[next_index % coordinators.len()].clone();
                        continue;
                    }
                },
            };
            let mut client = ClusterClient::new(ferrocache_common::credentials::channel(channel));
            let (report, held) = self.report(&mut last, &mut held_since);
            if held.is_some_and(|since| since.elapsed() > STUCK_AFTER) {
                tracing::error!("a node's lock has been held for over {STUCK_AFTER:?}; heartbeats stop");
                continue;
            }
            let stalled = self.host.runtime_stalled_for();
            if stalled > STUCK_AFTER {
                tracing::error!("the datanode's runtime has not run for {stalled:?}; heartbeats stop");
                continue;
            }
            let mut request = tonic::Request::new(report);
            request.set_timeout(Duration::from_secs(2));
            let sent_at = std::time::Instant::now();
            match rt.block_on(client.heartbeat(request)) {
                Ok(resp) => {
                    let resp = resp.into_inner();
                    let busy = self.host.nodes().iter().any(|n| n.busy.running());
                    if held.is_some() || busy || reconciling.load(Ordering::Acquire) {
                        // Reconciling takes node locks: the beat after the script (or the long
                        // command) does it, and the lease waits for it too (a lease must never
                        // outlive a demotion this reply carries). Writes after it are retried
                        // until then.
                        continue;
                    }
                    // A long command may take a node's lock between the report and now: the
                    // assignments are applied on a thread of the datanode's runtime, so this
                    // thread goes on beating (the node is busy, not dead) if that waits.
                    let (applied_tx, applied) = std::sync::mpsc::sync_channel(1);
                    reconciling.store(true, Ordering::Release);
                    let (host, flag, nodes) = (self.host.clone(), reconciling.clone(), resp.nodes.clone());
                    main.spawn_blocking(move || {
                        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| host.reconcile(&nodes)));
                        let Ok(result) = ran else {
                            tracing::error!("applying assignments panicked: stopping the datanode");
                            eprintln!("ferrocache datanode: applying assignments panicked; stopping");
                            std::process::abort();
                        };
                        flag.store(false, Ordering::Release);
                        let _ = applied_tx.send(result);
                    });
                    match applied.recv_timeout(RECONCILE_WAIT) {
                        Ok(Err(e)) => tracing::error!("applying assignments failed: {e}"),
                        Ok(Ok(())) => {}
                        Err(_) => {
                            tracing::info!("applying assignments waits for a busy node; leases wait for it");
                            continue;
                        }
                    }
                    let _main = main.enter();
                    for task in &resp.take_snapshots {
                        self.host.snapshots.take(&task.snapshot_name, self.host.node(&task.node_id));
                    }
                    self.host.snapshots.keep_only(&resp.keep_snapshots);
                    // The lease counts from when the request left, never from the reply; it is
                    // taken after the assignments, so a node demoted by this reply gets none.
                    let until = sent_at + Duration::from_millis(resp.lease_ms);
                    for node in self.host.nodes() {
                        node.renew_lease(until, LEASE_LOCK_WAIT);
                    }
                }
                Err(status) => {
                    let hint = status.metadata().get(LEADER_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
                    match hint {
                        Some(leader) if !leader.is_empty() && leader != target => target = leader,
                        _ => {
                            tracing::debug!(%target, "heartbeat failed: {}", status.message());
                            next_index += 1;
                            target = coordinators[next_index % coordinators.len()].clone();
                        }
                    }
                }
            }
        }
    }

    /// Each node's status; a node whose lock a script or a long command holds repeats its
    /// `last` report (it is alive, only busy: Redis's BUSY, not a failure). Also: since when
    /// the longest-held lock outside a script has been out of reach, if any is.
    fn report(
        &self,
        last: &mut HashMap<String, pb::NodeStatus>,
        held_since: &mut HashMap<String, std::time::Instant>,
    ) -> (pb::HeartbeatRequest, Option<std::time::Instant>) {
        let mut held = None;
        let nodes = self
            .host
            .nodes()
            .iter()
            .filter_map(|n| {
                let Some((role, in_sync, full_sync, paused, durability)) = n.try_with_state_within(LOCK_WAIT, |st| {
                    (st.role.clone(), st.in_sync, st.full_syncing, st.writes_paused, st.durability)
                }) else {
                    if !n.busy.running() {
                        let since = *held_since.entry(n.id.clone()).or_insert_with(std::time::Instant::now);
                        held = Some(held.map_or(since, |h: std::time::Instant| h.min(since)));
                    }
                    return last.get(&n.id).map(|s| pb::NodeStatus { replication_offset: n.offset(), ..s.clone() });
                };
                held_since.remove(&n.id);
                let status = pb::NodeStatus {
                    node_id: n.id.clone(),
                    role: match role {
                        Role::Primary => pb::Role::Primary as i32,
                        Role::Replica { .. } => pb::Role::Replica as i32,
                    },
                    replication_offset: n.offset(),
                    in_sync: in_sync || role == Role::Primary,
                    full_sync_in_progress: full_sync,
                    writes_paused: paused,
                    durability: durability.mode.as_str().into(),
                    min_replicas_to_ack: durability.min_replicas_to_ack as u32,
                    max_replica_lag_ms: durability.max_replica_lag_ms,
                };
                last.insert(n.id.clone(), status.clone());
                Some(status)
            })
            .collect();
        let request = pb::HeartbeatRequest {
            datanode_id: self.datanode_id.clone(),
            address: self.advertise.clone(),
            zone: self.host.config.zone.clone(),
            nodes,
            snapshots: self.host.snapshots.reports(),
            incarnation: incarnation().to_string(),
        };
        (request, held)
    }
}

/// This process's incarnation (random, fixed for its life).
fn incarnation() -> &'static str {
    static INCARNATION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    INCARNATION.get_or_init(|| format!("{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>()))
}
