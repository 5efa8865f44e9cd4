//! Ferrocache coordinator: one member of the Raft group (openraft, log and state in sled)
//! that holds the cluster's topology. Its leader runs the control loops and every member
//! serves the admin API (followers forward to the leader).
//!
//! ```text
//!  admin clients ─▶ grpc::admin ─┐            datanodes ─heartbeat─▶ grpc::cluster ─▶ liveness
//!                                ├─ propose ─▶ raft (log_store, state_machine: Topology)
//!  health loop (leader) ─────────┘                 │ published topology
//!  gateways ◀── WatchTopology ◀────────────────────┘
//! ```

pub mod config;
pub mod error;
pub mod grpc;
pub mod health;
pub mod liveness;
pub mod placement;
pub mod raft;
pub mod resharding;
pub mod topology;

use ferrocache_common::credentials::guarded;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferrocache_proto::admin::v1::admin_server::AdminServer;
use ferrocache_proto::internal::v1::cluster_server::ClusterServer;
use ferrocache_proto::internal::v1::raft_server::RaftServer;
use openraft::BasicNode;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::CoordinatorConfig;
use error::{Error, Result};
use raft::state_machine::{Published, StateMachine};
use raft::types::Raft;
use topology::{Change, Outcome, Topology};

/// One coordinator: its Raft node and what its services share.
pub struct Coordinator {
    pub id: u64,
    pub config: CoordinatorConfig,
    pub raft: Raft,
    pub state_machine: StateMachine,
    pub liveness: liveness::Liveness,
    pub cancel: CancellationToken,
}

impl Coordinator {
    /// The current leader's id and address, when known.
    pub fn leader(&self) -> Option<(u64, String)> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id)?;
        Some((id, node.addr.clone()))
    }

    /// How long a primary may write after sending a heartbeat: well inside the silence after
    /// which its datanode is declared failed, so it has stopped before anyone replaces it.
    pub fn lease_ms(&self) -> u64 {
        self.config.datanode_timeout_ms * 2 / 3
    }

    /// Whether this coordinator is part of a working Raft group: it follows a known leader,
    /// or it leads and a majority acknowledged it lately (openraft keeps a leader that lost
    /// its majority in office; it just cannot commit).
    pub fn has_quorum(&self) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        match m.current_leader {
            Some(id) if id == self.id => {
                let voters = m.membership_config.membership().voter_ids().count();
                let stale = self.config.raft_heartbeat_ms.saturating_mul(10).max(2000);
                voters <= 1 || m.millis_since_quorum_ack.is_some_and(|ms| ms < stale)
            }
            Some(_) => true,
            None => false,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.id)
    }

    pub fn require_leader(&self) -> Result<()> {
        if self.is_leader() {
            Ok(())
        } else {
            Err(Error::NotLeader { leader: self.leader().map(|l| l.1) })
        }
    }

    /// The latest applied topology (may trail the leader on a follower).
    pub fn topology(&self) -> Published {
        self.state_machine.subscribe().borrow().clone()
    }

    /// The topology with every change committed before this call applied (leader only).
    pub async fn linearizable(&self) -> Result<Arc<Topology>> {
        self.raft.ensure_linearizable().await.map_err(|e| match e.forward_to_leader() {
            Some(f) => Error::NotLeader { leader: f.leader_node.as_ref().map(|n: &BasicNode| n.addr.clone()) },
            None => Error::Raft(e.to_string()),
        })?;
        Ok(self.topology().topology)
    }

    /// Commits a change through Raft and returns what applying it produced.
    pub async fn propose(&self, change: Change) -> Result<Outcome> {
        match tokio::time::timeout(Duration::from_secs(10), self.raft.client_write(change)).await {
            Ok(Ok(resp)) => Ok(resp.data),
            Ok(Err(e)) => Err(match e.forward_to_leader() {
                Some(f) => Error::NotLeader { leader: f.leader_node.as_ref().map(|n: &BasicNode| n.addr.clone()) },
                None => Error::Raft(e.to_string()),
            }),
            Err(_) => Err(Error::Raft("the change was not committed within 10s".into())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage: {0}")]
    Storage(String),
    #[error("raft: {0}")]
    Raft(String),
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Runs a coordinator on `listener` until `cancel` fires.
pub async fn run(
    config: CoordinatorConfig,
    listener: TcpListener,
    cancel: CancellationToken,
) -> std::result::Result<(), StartError> {
    config.validate().map_err(StartError::Config)?;
    let peers = config.peer_map().map_err(StartError::Config)?;
    std::fs::create_dir_all(&config.data_dir)?;
    let db = sled::open(config.data_dir.join("sled")).map_err(|e| StartError::Storage(e.to_string()))?;
    let log_store = raft::log_store::LogStore::open(&db).map_err(|e| StartError::Storage(e.to_string()))?;
    let state_machine = StateMachine::open(&db).map_err(|e| StartError::Storage(e.to_string()))?;
    let hb = config.raft_heartbeat_ms;
    let raft_config = openraft::Config {
        cluster_name: "ferrocache".into(),
        heartbeat_interval: hb,
        election_timeout_min: hb * 4,
        election_timeout_max: hb * 8,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(2000),
        max_in_snapshot_log_to_keep: 500,
        ..Default::default()
    }
    .validate()
    .map_err(|e| StartError::Config(e.to_string()))?;
    let raft = Raft::new(
        config.id,
        Arc::new(raft_config),
        raft::network::Network::default(),
        log_store,
        state_machine.clone(),
    )
    .await
    .map_err(|e| StartError::Raft(e.to_string()))?;
    let id = config.id;
    let coordinator = Arc::new(Coordinator {
        id,
        liveness: liveness::Liveness::new(Duration::from_millis(config.datanode_timeout_ms)),
        config,
        raft: raft.clone(),
        state_machine,
        cancel: cancel.child_token(),
    });
    // The lowest id forms the group on first start; afterwards this is a no-op.
    if peers.keys().next() == Some(&id) {
        let members: BTreeMap<u64, BasicNode> =
            peers.iter().map(|(i, a)| (*i, BasicNode { addr: a.clone() })).collect();
        match raft.initialize(members).await {
            Ok(()) => tracing::info!("raft group initialized with {} members", peers.len()),
            Err(e) => tracing::debug!("raft group already initialized: {e}"),
        }
    }
    tracing::info!(id, listen = %listener.local_addr()?, "coordinator starting");
    let health_loop = health::HealthLoop { coordinator: coordinator.clone() };
    let health_task = tokio::spawn(health_loop.run(coordinator.cancel.clone()));
    let resharding_loop = resharding::ReshardingLoop { coordinator: coordinator.clone() };
    let resharding_task = tokio::spawn(resharding_loop.run(coordinator.cancel.clone()));

    if let Some(addr) = coordinator.config.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| StartError::Config(format!("--metrics-listen {addr}: {e}")))?;
        let c = coordinator.clone();
        let render: ferrocache_common::metrics::Render = Arc::new(move || metrics(&c));
        tokio::spawn(ferrocache_common::metrics::serve(listener, render, coordinator.cancel.child_token()));
    }
    let (health, health_service) = tonic_health::server::health_reporter();
    // NOT_SERVING while no leader is known (no admin call could succeed).
    health.set_not_serving::<AdminServer<grpc::admin::AdminService>>().await;
    health.set_service_status("", tonic_health::ServingStatus::NotServing).await;
    {
        let (health, c) = (health.clone(), coordinator.clone());
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let serving = c.has_quorum();
                if last != Some(serving) {
                    let status = if serving {
                        tonic_health::ServingStatus::Serving
                    } else {
                        tonic_health::ServingStatus::NotServing
                    };
                    health.set_service_status("", status).await;
                    if serving {
                        health.set_serving::<AdminServer<grpc::admin::AdminService>>().await;
                    } else {
                        health.set_not_serving::<AdminServer<grpc::admin::AdminService>>().await;
                    }
                    last = Some(serving);
                }
                tokio::select! {
                    _ = c.cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        });
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(ferrocache_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| StartError::Config(e.to_string()))?;
    let served = tonic::transport::Server::builder()
        .timeout(Duration::from_secs(30))
        .concurrency_limit_per_connection(256)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(guarded(AdminServer::new(grpc::admin::AdminService { coordinator: coordinator.clone() })))
        .add_service(guarded(ClusterServer::new(grpc::cluster::ClusterService { coordinator: coordinator.clone() })))
        .add_service(guarded(
            RaftServer::new(grpc::raft::RaftService { coordinator: coordinator.clone() })
                .max_decoding_message_size(256 << 20)
                .max_encoding_message_size(256 << 20),
        ))
        .serve_with_incoming_shutdown(ferrocache_common::net::nodelay_incoming(listener), cancel.cancelled())
        .await;
    coordinator.cancel.cancel();
    let _ = health_task.await;
    let _ = resharding_task.await;
    if let Err(e) = raft.shutdown().await {
        tracing::warn!("raft shutdown: {e}");
    }
    let _ = db.flush_async().await;
    tracing::info!("coordinator stopped");
    served?;
    Ok(())
}

/// The coordinator's metrics page: Raft state and the topology it holds.
fn metrics(c: &Coordinator) -> String {
    let mut p = ferrocache_common::metrics::Page::default();
    {
        let metrics = c.raft.metrics();
        let m = metrics.borrow();
        p.gauge("ferrocache_raft_term", "Current Raft term.", &[], m.current_term as f64);
        p.gauge(
            "ferrocache_raft_is_leader",
            "1 on the Raft leader.",
            &[],
            (m.current_leader == Some(c.id)) as u8 as f64,
        );
        p.gauge(
            "ferrocache_raft_last_applied_index",
            "Index of the last applied Raft log entry.",
            &[],
            m.last_applied.map_or(0, |l| l.index) as f64,
        );
    }
    p.gauge(
        "ferrocache_raft_has_quorum",
        "1 while part of a working Raft group (health SERVING).",
        &[],
        c.has_quorum() as u8 as f64,
    );
    let topology = c.topology().topology;
    p.gauge("ferrocache_replication_groups", "Replication groups.", &[], topology.groups.len() as f64);
    p.gauge("ferrocache_datanodes", "Datanodes registered.", &[], topology.datanodes.len() as f64);
    if c.is_leader() {
        p.gauge(
            "ferrocache_datanodes_live",
            "Datanodes heard from within the timeout.",
            &[],
            c.liveness.live_datanodes().len() as f64,
        );
    }
    let failovers = topology.events.iter().filter(|e| e.message.starts_with("Failover from")).count();
    p.gauge("ferrocache_failover_events", "Failovers among the events kept (DescribeEvents).", &[], failovers as f64);
    p.finish()
}
