//! Datanode configuration: flags (each with an environment variable) and checks.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Runs a datanode: hosts the nodes the coordinators assign to it, keeps their data durable
/// (an append-only log per node, compacted into images) and streams replication between them.
#[derive(Debug, Clone, clap::Args)]
pub struct DatanodeConfig {
    /// This datanode's stable id; by default generated once and kept in the data dir.
    #[arg(long, env = "FERROCACHE_DATANODE_ID")]
    pub id: Option<String>,
    /// Address the gRPC server listens on.
    #[arg(long, env = "FERROCACHE_LISTEN", default_value = "127.0.0.1:7100")]
    pub listen: SocketAddr,
    /// host:port others dial to reach this datanode (default: the listen address).
    #[arg(long, env = "FERROCACHE_ADVERTISE")]
    pub advertise: Option<String>,
    /// Where node data lives (`nodes/<node id>/`: log segments and compacted images).
    #[arg(long, env = "FERROCACHE_DATA_DIR", default_value = "./ferrocache-data/datanode")]
    pub data_dir: PathBuf,
    /// Availability zone, used to spread a group's nodes.
    #[arg(long, env = "FERROCACHE_ZONE", default_value = "")]
    pub zone: String,
    /// Coordinator addresses (host:port), comma-separated.
    #[arg(long, env = "FERROCACHE_COORDINATORS", value_delimiter = ',', default_value = "127.0.0.1:7000")]
    pub coordinators: Vec<String>,
    /// Heartbeat interval to the coordinator leader, in ms.
    #[arg(long, env = "FERROCACHE_HEARTBEAT_INTERVAL_MS", default_value_t = 200)]
    pub heartbeat_interval_ms: u64,
    /// Serve Prometheus metrics on this address (`GET /metrics`); off when unset.
    #[arg(long, env = "FERROCACHE_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// sled's page cache, in bytes, while importing node data an older version kept in sled.
    #[arg(long, env = "FERROCACHE_SLED_CACHE_BYTES", default_value_t = 64 << 20)]
    pub sled_cache_bytes: u64,
    /// A node's log is compacted into a new image once it is larger than the last image and
    /// than this many bytes (Redis's auto-aof-rewrite-min-size).
    #[arg(long, env = "FERROCACHE_LOG_COMPACTION_MIN_BYTES", default_value_t = 64 << 20)]
    pub log_compaction_min_bytes: u64,
    /// Replication backlog per primary, in bytes (Redis's repl-backlog-size).
    #[arg(long, env = "FERROCACHE_REPL_BACKLOG_BYTES", default_value_t = 64 << 20)]
    pub repl_backlog_bytes: usize,
    /// Sync durability: how long a write waits for its replica acknowledgements before the
    /// client is told it may not survive a failover, in ms.
    #[arg(long, env = "FERROCACHE_SYNC_ACK_TIMEOUT_MS", default_value_t = 2000)]
    pub sync_ack_timeout_ms: u64,
    /// Largest string a write may create (Redis's proto-max-bulk-len).
    #[arg(long, env = "FERROCACHE_PROTO_MAX_BULK_LEN", default_value_t = 512 << 20)]
    pub proto_max_bulk_len: usize,
}

impl DatanodeConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.coordinators.is_empty() {
            return Err("at least one coordinator address is required".into());
        }
        if self.heartbeat_interval_ms == 0 {
            return Err("heartbeat interval must be positive".into());
        }
        Ok(())
    }
}
