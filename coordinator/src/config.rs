//! Coordinator configuration: flags (each with an environment variable) and checks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Runs a coordinator: one member of the Raft group that holds the topology and serves the
/// admin API.
#[derive(Debug, Clone, clap::Args)]
pub struct CoordinatorConfig {
    /// This member's Raft id (1, 2, 3, ...), one of those in --peers.
    #[arg(long, env = "FERROCACHE_COORDINATOR_ID")]
    pub id: u64,
    /// Every member as id=host:port, comma-separated, e.g. 1=10.0.0.1:7000,2=10.0.0.2:7000.
    /// The lowest id initializes the group on first start.
    #[arg(long, env = "FERROCACHE_PEERS", value_delimiter = ',', required = true)]
    pub peers: Vec<String>,
    /// Address the gRPC server (admin API + internal services) listens on.
    #[arg(long, env = "FERROCACHE_LISTEN", default_value = "127.0.0.1:7000")]
    pub listen: SocketAddr,
    /// Where the Raft log and state live (sled).
    #[arg(long, env = "FERROCACHE_DATA_DIR", default_value = "./ferrocache-data/coordinator")]
    pub data_dir: PathBuf,
    /// Host clients use to reach the gateways' endpoints (shown in Describe* responses).
    #[arg(long, env = "FERROCACHE_ENDPOINT_ADDRESS", default_value = "127.0.0.1")]
    pub endpoint_address: String,
    /// First port handed out to replication groups that name no Port (primary, then reader).
    #[arg(long, env = "FERROCACHE_ENDPOINT_PORT_BASE", default_value_t = 6379)]
    pub endpoint_port_base: u16,
    /// A datanode silent for this long is considered down (and its primaries failed over),
    /// in ms. Primaries' write leases last two thirds of it.
    #[arg(long, env = "FERROCACHE_DATANODE_TIMEOUT_MS", default_value_t = 1500)]
    pub datanode_timeout_ms: u64,
    /// Raft heartbeat interval in ms; elections start after 4-8 intervals of silence.
    #[arg(long, env = "FERROCACHE_RAFT_HEARTBEAT_MS", default_value_t = 200)]
    pub raft_heartbeat_ms: u64,
    /// Resharding: most slots moved in one step. Writes to a step's slots wait (the
    /// gateways retry them) while its keys are copied: fewer slots, shorter waits, more steps.
    #[arg(long, env = "FERROCACHE_RESHARDING_SLOTS_PER_MOVE", default_value_t = 256,
          value_parser = clap::value_parser!(u16).range(1..=16384))]
    pub resharding_slots_per_move: u16,
    /// Serve Prometheus metrics on this address (`GET /metrics`); off when unset.
    #[arg(long, env = "FERROCACHE_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl CoordinatorConfig {
    /// Parses --peers into id -> address.
    pub fn peer_map(&self) -> Result<BTreeMap<u64, String>, String> {
        let mut peers = BTreeMap::new();
        for p in &self.peers {
            let (id, addr) = p.split_once('=').ok_or_else(|| format!("peer '{p}' is not id=host:port"))?;
            let id: u64 = id.trim().parse().map_err(|_| format!("peer id '{id}' is not a number"))?;
            if addr.trim().is_empty() {
                return Err(format!("peer {id} has no address"));
            }
            if peers.insert(id, addr.trim().to_string()).is_some() {
                return Err(format!("peer id {id} appears twice"));
            }
        }
        Ok(peers)
    }

    pub fn validate(&self) -> Result<(), String> {
        let peers = self.peer_map()?;
        if !peers.contains_key(&self.id) {
            return Err(format!("--id {} is not one of --peers", self.id));
        }
        if self.raft_heartbeat_ms == 0 || self.datanode_timeout_ms == 0 {
            return Err("intervals must be positive".into());
        }
        Ok(())
    }
}
