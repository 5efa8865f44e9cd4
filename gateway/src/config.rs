//! Gateway configuration: flags (each with an environment variable) and checks.

/// Runs a gateway: serves every replication group's Redis endpoints and routes commands to
/// the datanodes.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayConfig {
    /// Address of the gateway's gRPC server (health checks and reflection).
    #[arg(long, env = "FERROCACHE_GRPC_LISTEN", default_value = "127.0.0.1:7300")]
    pub grpc_listen: std::net::SocketAddr,
    /// Address the Redis endpoints bind to (their ports come from each group's Port).
    #[arg(long, env = "FERROCACHE_BIND", default_value = "127.0.0.1")]
    pub bind: String,
    /// Host that cluster clients are told to connect to (CLUSTER SLOTS/SHARDS/NODES, MOVED);
    /// default: the bind address, or 127.0.0.1 when binding every interface.
    #[arg(long, env = "FERROCACHE_ANNOUNCE_HOST")]
    pub announce_host: Option<String>,
    /// This gateway's id among the cluster's gateways (default: its announce host).
    #[arg(long = "id", env = "FERROCACHE_GATEWAY_ID")]
    pub id: Option<String>,
    /// Coordinator addresses (host:port), comma-separated.
    #[arg(long, env = "FERROCACHE_COORDINATORS", value_delimiter = ',', default_value = "127.0.0.1:7000")]
    pub coordinators: Vec<String>,
    /// Largest bulk string a client may send (Redis's proto-max-bulk-len).
    #[arg(long, env = "FERROCACHE_PROTO_MAX_BULK_LEN", default_value_t = 512 << 20)]
    pub proto_max_bulk_len: usize,
    /// Most arguments in one command.
    #[arg(long, env = "FERROCACHE_MAX_ARGS", default_value_t = 1 << 20)]
    pub max_args: usize,
    /// Most bytes buffered for one client's unparsed input (client-query-buffer-limit).
    #[arg(long, env = "FERROCACHE_QUERY_BUFFER_LIMIT", default_value_t = 1 << 30)]
    pub query_buffer_limit: usize,
    /// Most client connections per replication group on this gateway (Redis's maxclients:
    /// each group's endpoints count apart, so one group cannot take another's connections;
    /// all together stay within the process's open-file limit).
    #[arg(long, env = "FERROCACHE_MAXCLIENTS", default_value_t = 10000)]
    pub maxclients: usize,
    /// How long a command may wait for its node before the client gets an error, in ms
    /// (WAIT is bounded by its own timeout instead).
    #[arg(long, env = "FERROCACHE_COMMAND_TIMEOUT_MS", default_value_t = 10_000)]
    pub command_timeout_ms: u64,
    /// How long the gateway keeps re-sending a command that was refused because routes were
    /// changing (a failover), in ms, before the client gets the error (bounded by
    /// command-timeout-ms).
    #[arg(long, env = "FERROCACHE_RETRY_WINDOW_MS", default_value_t = 5_000)]
    pub retry_window_ms: u64,
    /// Most commands one connection may have in flight before the gateway stops reading it.
    #[arg(long, env = "FERROCACHE_MAX_PIPELINE", default_value_t = 4096)]
    pub max_pipeline: usize,
    /// PEM certificate chain for TLS on the endpoints of groups with transit encryption
    /// (`ferrocache generate-certificates` makes one, with its CA).
    #[arg(long, env = "FERROCACHE_TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert-file.
    #[arg(long, env = "FERROCACHE_TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<std::path::PathBuf>,
    /// Serve Prometheus metrics on this address (`GET /metrics`); off when unset.
    #[arg(long, env = "FERROCACHE_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl GatewayConfig {
    /// The host cluster clients reach this gateway's node ports at.
    pub fn announce_host(&self) -> String {
        match &self.announce_host {
            Some(h) if !h.is_empty() => h.clone(),
            _ if self.bind == "0.0.0.0" || self.bind == "::" || self.bind.is_empty() => "127.0.0.1".into(),
            _ => self.bind.clone(),
        }
    }

    pub fn gateway_id(&self) -> String {
        match &self.id {
            Some(id) if !id.is_empty() => id.clone(),
            _ => self.announce_host(),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.coordinators.is_empty() {
            return Err("at least one coordinator address is required".into());
        }
        if self.maxclients == 0 || self.max_pipeline == 0 {
            return Err("maxclients and max-pipeline must be positive".into());
        }
        if self.query_buffer_limit > (1 << 31) - (64 << 20) {
            return Err("query-buffer-limit must stay below 2 GiB (a command must fit one internal message)".into());
        }
        if self.query_buffer_limit < self.proto_max_bulk_len {
            return Err("query-buffer-limit must be at least proto-max-bulk-len".into());
        }
        Ok(())
    }
}
