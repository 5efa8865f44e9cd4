//! Ferrocache datanode: hosts nodes (members of node groups), keeps each keyspace in memory
//! and durable in its log (segments of the replication stream's batches plus compacted
//! bases), executes commands arriving from gateways, and replicates.
//!
//! ```text
//!  gateway ──Data.Execute (batches)──▶ service ─▶ node (keyspace + backlog + store)
//!                                                   │
//!  replica datanodes ◀──Replication.Sync── source ◀─┘      follower ─▶ remote primary
//!  coordinator ◀── heartbeat (own thread; status) / assignments ──▶ host.reconcile
//! ```

pub mod cmd;
pub mod config;
pub mod databases;
pub mod durability;
pub mod geohash;
pub mod heartbeat;
pub mod hll;
pub mod host;
pub mod info;
pub mod keyspace;
pub mod lazyfree;
pub mod long_double;
pub mod memory;
pub mod metrics;
pub mod migration;
pub mod node;
pub mod notify;
pub mod panic_guard;
pub mod pubsub;
pub mod rdb;
pub mod replication;
pub mod script;
pub mod service;
pub mod set;
pub mod slot_table;
pub mod snapshot;
pub mod storage;
pub mod stream;
pub mod strval;
pub mod transaction;
pub mod value;
pub mod zset;

use ferrocache_common::credentials::guarded;
use std::sync::Arc;
use std::time::Duration;

use ferrocache_proto::internal::v1::data_server::DataServer;
use ferrocache_proto::internal::v1::replication_server::ReplicationServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::DatanodeConfig;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("storage: {0}")]
    Storage(#[from] sled::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Largest gRPC message (protobuf's own limit is 2 GiB): a command as large as a client may
/// send (the gateway's query buffer, 1 GiB by default) must fit.
pub(crate) const MAX_MESSAGE: usize = (1 << 31) - 1;

/// Largest single reply sent to a gateway (a larger one answers an error instead).
pub(crate) const MAX_REPLY: usize = MAX_MESSAGE - (1 << 20);

/// Runs a datanode on `listener` until `cancel` fires, then flushes storage.
pub async fn run(config: DatanodeConfig, listener: TcpListener, cancel: CancellationToken) -> Result<()> {
    config.validate().map_err(Error::Config)?;
    std::fs::create_dir_all(&config.data_dir)?;
    let id = datanode_id(&config)?;
    let advertise = config.advertise.clone().unwrap_or(listener.local_addr()?.to_string());
    // sled holds node data only as versions before the log layout left it: opened to import
    // that data, never created.
    let legacy = config.data_dir.join("sled");
    let db = if legacy.exists() {
        Some(sled::Config::new().path(legacy).cache_capacity(config.sled_cache_bytes).flush_every_ms(None).open()?)
    } else {
        None
    };
    let host = Arc::new(host::Host::new(config, db.clone(), cancel.child_token()));
    tracing::info!(datanode = %id, %advertise, zone = %host.config.zone, "datanode starting");
    if let Some(addr) = host.config.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(addr).await?;
        let h = host.clone();
        let render: ferrocache_common::metrics::Render = Arc::new(move || metrics::render(&h));
        tokio::spawn(ferrocache_common::metrics::serve(metrics, render, cancel.child_token()));
    }

    let heartbeat = heartbeat::Heartbeat { host: host.clone(), datanode_id: id, advertise };
    host.tracker.spawn(heartbeat.spawn(host.cancel.clone())?);
    host.tracker.spawn(maintenance(host.clone()));
    host.tracker.spawn(runtime_pulse(host.clone()));

    let (health, health_service) = tonic_health::server::health_reporter();
    // NOT_SERVING until the first assignments are loaded, and while a node restores a
    // snapshot or takes a full sync: probes and orchestrators see the truth.
    health.set_not_serving::<DataServer<service::DataService>>().await;
    health.set_service_status("", tonic_health::ServingStatus::NotServing).await;
    {
        let (health, host, cancel) = (health.clone(), host.clone(), cancel.clone());
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let ready = host.ready();
                if last != Some(ready) {
                    let status = if ready {
                        tonic_health::ServingStatus::Serving
                    } else {
                        tonic_health::ServingStatus::NotServing
                    };
                    health.set_service_status("", status).await;
                    if ready {
                        health.set_serving::<DataServer<service::DataService>>().await;
                    } else {
                        health.set_not_serving::<DataServer<service::DataService>>().await;
                    }
                    last = Some(ready);
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        });
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(ferrocache_proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let data = DataServer::new(service::DataService::new(host.clone()))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let replication = ReplicationServer::new(replication::source::ReplicationSource::new(host.clone()))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    // Windows far above HTTP/2's 64 KB default: a batch of pipelined writes is often larger,
    // and a stream stalled on window updates shows up as ~40 ms latency spikes.
    let served = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .initial_stream_window_size(Some(4 << 20))
        .initial_connection_window_size(Some(8 << 20))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(guarded(data))
        .add_service(guarded(replication))
        .serve_with_incoming_shutdown(ferrocache_common::net::nodelay_incoming(listener), cancel.cancelled())
        .await;
    // Stop replication and background work, then make every write durable.
    host.cancel.cancel();
    host.tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), host.tracker.wait()).await;
    for node in host.nodes() {
        let id = node.id.clone();
        match tokio::task::spawn_blocking(move || node.sync_store()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(node = %id, "final sync failed: {e}"),
            Err(e) => tracing::error!(node = %id, "final sync panicked: {e}"),
        }
    }
    if let Some(db) = db {
        db.flush_async().await?;
    }
    tracing::info!("datanode stopped");
    served?;
    Ok(())
}

/// Active expiry every 100 ms. (Fsync is each node's storage writer's job.)
async fn maintenance(host: Arc<host::Host>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = host.cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        for node in host.nodes() {
            if let Err(e) = node.active_expire(500) {
                tracing::error!(node = %node.id, "active expiry failed: {e}");
            }
        }
    }
}

/// Shows the heartbeat's thread that this runtime still runs tasks (see
/// [`host::Host::runtime_stalled_for`]); nothing else here, so no lock can hold it up.
async fn runtime_pulse(host: Arc<host::Host>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = host.cancel.cancelled() => return,
            _ = tick.tick() => host.runtime_ran(),
        }
    }
}

fn datanode_id(config: &DatanodeConfig) -> Result<String> {
    if let Some(id) = &config.id {
        return Ok(id.clone());
    }
    let path = config.data_dir.join("datanode.id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        return Ok(id.trim().to_string());
    }
    let id = format!("dn-{:08x}", rand::random::<u32>());
    std::fs::write(&path, &id)?;
    Ok(id)
}
