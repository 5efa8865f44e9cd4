//! Ferrocache gateway: speaks RESP2/RESP3 to Redis clients on each replication group's
//! endpoints and routes every command to the node that serves it.
//!
//! ```text
//!  client ─RESP─▶ connection ─┬─ local (PING, HELLO, CLIENT, COMMAND, INFO part)
//!                              └─ router ─▶ link (one batched gRPC stream per node) ─▶ datanode
//!  coordinator ─WatchTopology─▶ watch ─▶ router table + endpoints (listeners per group)
//! ```

pub mod acl;
pub mod batch_codec;
pub mod busy;
pub mod client_eviction;
pub mod clients;
pub mod cluster;
pub mod config;
pub mod config_command;
pub mod connection;
pub mod endpoints;
pub mod failover_command;
pub mod fanout;
pub mod info;
pub mod link;
pub mod local;
pub mod monitor;
pub mod node_queue;
pub mod pause;
pub mod pubsub;
pub mod registration;
pub mod request;
pub mod resp;
pub mod retry;
pub mod router;
pub mod stats;
pub mod tls;
pub mod tracking;
pub mod traffic;
pub mod transaction;
pub mod watch;

use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::GatewayConfig;

/// The Redis version Ferrocache answers as (HELLO, INFO): the command set it follows.
pub const REDIS_VERSION: &str = "7.2.0";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// What every connection of this gateway shares.
pub struct Shared {
    pub config: GatewayConfig,
    pub router: Arc<router::Router>,
    pub clients: clients::Clients,
    pub pubsub: pubsub::Hub,
    pub cancel: CancellationToken,
    pub started: Instant,
    pub run_id: String,
    /// ACL LOG: denials and failed logins on this gateway, per group (a group's users see
    /// their group's entries only).
    pub acl_log: PerGroup<parking_lot::Mutex<acl::AclLog>>,
    /// TLS for groups with transit encryption (from --tls-cert-file / --tls-key-file).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Command statistics, slowlog and latency events, per group.
    pub stats: PerGroup<stats::GroupStats>,
    /// CLIENT PAUSE, per group.
    pub pauses: PerGroup<pause::Pause>,
}

/// One `T` per replication group, made on first use.
pub struct PerGroup<T> {
    groups: parking_lot::RwLock<std::collections::HashMap<String, Arc<T>>>,
}

impl<T> Default for PerGroup<T> {
    fn default() -> Self {
        PerGroup { groups: Default::default() }
    }
}

impl<T> PerGroup<T> {
    /// Every group's `T` so far.
    pub fn all(&self) -> Vec<Arc<T>> {
        self.groups.read().values().cloned().collect()
    }
}

/// Samples every group's traffic for INFO's instantaneous_* rates, until the gateway stops.
async fn sample_traffic(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(traffic::PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        for group in shared.stats.all() {
            group.traffic.sample(now);
        }
    }
}

impl<T: Default> PerGroup<T> {
    pub fn group(&self, group: &str) -> Arc<T> {
        if let Some(g) = self.groups.read().get(group) {
            return g.clone();
        }
        self.groups.write().entry(group.to_string()).or_default().clone()
    }
}

/// Runs a gateway until `cancel` fires: endpoints open as the coordinators' topology names
/// groups; `grpc` serves health checks and reflection.
pub async fn run(config: GatewayConfig, grpc: TcpListener, cancel: CancellationToken) -> Result<(), Error> {
    config.validate().map_err(Error::Config)?;
    let tls = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key).map_err(Error::Config)?),
        _ => None,
    };
    let router = Arc::new(router::Router::new(cancel.child_token()));
    let shared = Arc::new(Shared {
        pubsub: pubsub::Hub::new(router.clone(), cancel.child_token()),
        router,
        clients: clients::Clients::default(),
        cancel: cancel.clone(),
        started: Instant::now(),
        acl_log: Default::default(),
        tls,
        stats: Default::default(),
        pauses: Default::default(),
        run_id: format!("{:016x}{:016x}{:08x}", rand::random::<u64>(), rand::random::<u64>(), rand::random::<u32>()),
        config,
    });
    if let Some(addr) = shared.config.metrics_listen {
        let listener =
            TcpListener::bind(addr).await.map_err(|e| Error::Config(format!("--metrics-listen {addr}: {e}")))?;
        let s = shared.clone();
        let render: ferrocache_common::metrics::Render = Arc::new(move || metrics(&s));
        tokio::spawn(ferrocache_common::metrics::serve(listener, render, cancel.child_token()));
    }
    tokio::spawn(sample_traffic(shared.clone()));
    tokio::spawn(registration::run(
        shared.config.coordinators.clone(),
        shared.config.gateway_id(),
        shared.config.announce_host(),
        cancel.child_token(),
    ));
    let endpoints = Arc::new(endpoints::Endpoints::new(shared.clone()));
    let watcher = watch::TopologyWatcher {
        coordinators: shared.config.coordinators.clone(),
        router: shared.router.clone(),
        endpoints,
        shared: shared.clone(),
    };
    // Health: SERVING once a topology has arrived (the endpoints can then open).
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", tonic_health::ServingStatus::NotServing).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(ferrocache_proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let grpc_server = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .serve_with_incoming_shutdown(ferrocache_common::net::nodelay_incoming(grpc), cancel.clone().cancelled_owned());
    let router = shared.router.clone();
    let ready = async move {
        while router.table().version == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        health.set_service_status("", tonic_health::ServingStatus::Serving).await;
        std::future::pending::<()>().await
    };
    tracing::info!(coordinators = ?shared.config.coordinators, "gateway starting");
    let served = tokio::select! {
        _ = watcher.run(cancel.clone()) => Ok(()),
        r = grpc_server => r,
        _ = ready => Ok(()),
    };
    tracing::info!("gateway stopped");
    served?;
    Ok(())
}

/// The gateway's metrics page (ElastiCache's names where they exist).
fn metrics(shared: &Shared) -> String {
    use std::sync::atomic::Ordering;
    let mut p = ferrocache_common::metrics::Page::default();
    let c = &shared.clients;
    p.gauge("ferrocache_curr_connections", "Client connections open (CurrConnections).", &[], c.total() as f64);
    p.counter(
        "ferrocache_new_connections_total",
        "Client connections accepted (NewConnections).",
        &[],
        c.total_connections.load(Ordering::Relaxed) as f64,
    );
    p.counter(
        "ferrocache_rejected_connections_total",
        "Connections refused at maxclients.",
        &[],
        c.rejected_connections.load(Ordering::Relaxed) as f64,
    );
    p.counter("ferrocache_commands_total", "Commands received.", &[], c.total_commands.load(Ordering::Relaxed) as f64);
    let table = shared.router.table();
    p.gauge("ferrocache_routes_version", "Version of the routing table in use.", &[], table.version as f64);
    p.gauge("ferrocache_replication_groups", "Replication groups served.", &[], table.groups.len() as f64);
    p.finish()
}
