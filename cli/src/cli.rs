//! Command-line definitions: doc comments are the `--help` texts.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::{admin, ha, roles, up};

/// Ferrocache: a Redis-compatible, replicated, durable data store.
///
/// Start a local cluster with `ferrocache up`, then point any Redis client at port 6379
/// (primary endpoint) or 6380 (reader endpoint). Admin subcommands mirror
/// `aws elasticache`.
#[derive(Debug, Parser)]
#[command(name = "ferrocache", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// The cluster secret (16-256 printable characters): every process of a cluster and every
    /// admin call must give the same one; internal RPCs and the admin API refuse calls without
    /// it. Unset: nothing is checked (local development only).
    #[arg(long, env = "FERROCACHE_CLUSTER_SECRET", global = true, hide_env_values = true)]
    pub cluster_secret: Option<String>,
    /// A JMESPath expression applied to the response before it is printed (as `aws --query`),
    /// e.g. 'ReplicationGroups[].NodeGroups[0].PrimaryEndpoint.Port'.
    #[arg(long, global = true)]
    pub query: Option<String>,
    /// Log lines as text or as one JSON object per line (`up` passes it to its processes).
    #[arg(long, env = "FERROCACHE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum Output {
    #[default]
    Json,
    /// Tab-separated, as `aws --output text` (one line per object, scalars in key order).
    Text,
    Table,
}

/// Options shared by the admin subcommands.
#[derive(Debug, clap::Args)]
pub struct AdminOptions {
    /// Admin API of any coordinator (followers forward to the leader). `--endpoint` is an
    /// alias.
    #[arg(
        long = "endpoint-url",
        visible_alias = "endpoint",
        env = "FERROCACHE_ENDPOINT",
        default_value = "http://127.0.0.1:7000",
        global = true
    )]
    pub endpoint: String,
    /// Output format: json (ElastiCache's field names, as `aws elasticache`), text or table.
    #[arg(long, value_enum, default_value_t = Output::Json, global = true)]
    pub output: Output,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a local cluster (3 coordinators, 3 datanodes in zones a/b/c, 2 gateways) as child
    /// processes on 127.0.0.1 (gateways on 127.0.0.1 and 127.0.0.2), supervised, and create
    /// replication group `default` if it does not exist.
    Up(up::UpArgs),
    /// Run a coordinator (a member of the Raft group holding the topology; serves the admin API).
    Coordinator(ferrocache_coordinator::CoordinatorConfig),
    /// Run a datanode (hosts nodes, stores their data, replicates).
    Datanode(ferrocache_datanode::DatanodeConfig),
    /// Run a gateway (Redis endpoints for every replication group).
    Gateway(ferrocache_gateway::GatewayConfig),
    /// Create a replication group: one node group (a primary and 0-5 replicas), or 2-500 in
    /// cluster mode.
    CreateReplicationGroup(admin::CreateArgs),
    /// Describe all replication groups, or one.
    DescribeReplicationGroups(admin::DescribeArgs),
    /// Delete a replication group and its data.
    DeleteReplicationGroup(admin::DeleteArgs),
    /// List recent events (creations, deletions, member status changes, datanodes joining).
    DescribeEvents(admin::EventsArgs),
    /// Change a group's settings online (durability, automatic failover, Multi-AZ), or switch
    /// its primary to a chosen replica without losing writes (--primary-cluster-id).
    ModifyReplicationGroup(ha::ModifyArgs),
    /// Change a cluster-mode group's number of node groups online: slots move between node
    /// groups a batch at a time (--wait shows the progress).
    ModifyReplicationGroupShardConfiguration(crate::resharding::ShardConfigurationArgs),
    /// Switch a node group's primary to its most up-to-date replica, losing no writes (writes
    /// pause for well under a second while it catches up).
    TestFailover(ha::TestFailoverArgs),
    /// Add replicas to a group online; each full-syncs while the group keeps serving.
    IncreaseReplicaCount(ha::IncreaseArgs),
    /// Remove replicas from a group online (never the primary).
    DecreaseReplicaCount(ha::DecreaseArgs),
    /// Take a point-in-time snapshot of a group (from a replica when there is one).
    CreateSnapshot(ha::CreateSnapshotArgs),
    /// List snapshots (all, a group's, or one).
    DescribeSnapshots(ha::DescribeSnapshotsArgs),
    /// Delete a snapshot and its file.
    DeleteSnapshot(ha::DeleteSnapshotArgs),
    /// Create an RBAC user: a user name, passwords and a Redis ACL access string.
    CreateUser(crate::users::CreateUserArgs),
    /// Describe all users (the built-in `default` included), or one.
    DescribeUsers(crate::users::UserIdArgs),
    /// Change a user's access string or passwords; every gateway applies it at once.
    ModifyUser(crate::users::ModifyUserArgs),
    /// Delete a user (it must belong to no user group).
    DeleteUser(crate::users::UserIdArgs),
    /// Create a user group (it must include a user named `default`).
    CreateUserGroup(crate::users::CreateUserGroupArgs),
    /// Describe all user groups, or one.
    DescribeUserGroups(crate::users::UserGroupIdArgs),
    /// Add users to or remove users from a user group.
    ModifyUserGroup(crate::users::ModifyUserGroupArgs),
    /// Delete a user group (no replication group may use it).
    DeleteUserGroup(crate::users::UserGroupIdArgs),
    /// Make a cluster CA and a gateway certificate signed by it, for TLS on the Redis
    /// endpoints (groups with --transit-encryption-enabled).
    GenerateCertificates(crate::certificates::GenerateArgs),
    /// Ask any Ferrocache process's gRPC health service whether it is serving; exit 0 if so
    /// (for container and orchestrator health checks).
    Health(admin::HealthArgs),
}

impl Command {
    /// The service name spans are exported under.
    pub fn role(&self) -> &'static str {
        match self {
            Command::Coordinator(_) => "coordinator",
            Command::Datanode(_) => "datanode",
            Command::Gateway(_) => "gateway",
            Command::Up(_) => "up",
            _ => "cli",
        }
    }

    pub fn default_log_filter(&self) -> &'static str {
        match self {
            Command::Coordinator(_) | Command::Datanode(_) | Command::Gateway(_) => {
                "info,openraft=warn,sled=warn,h2=warn,tower=warn"
            }
            Command::Up(_) => "info",
            _ => "warn",
        }
    }
}

pub async fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Up(args) => up::run(args).await,
        Command::Coordinator(c) => roles::coordinator(c).await,
        Command::Datanode(c) => roles::datanode(c).await,
        Command::Gateway(c) => roles::gateway(c).await,
        Command::CreateReplicationGroup(a) => admin::create(a).await,
        Command::DescribeReplicationGroups(a) => admin::describe(a).await,
        Command::DeleteReplicationGroup(a) => admin::delete(a).await,
        Command::DescribeEvents(a) => admin::events(a).await,
        Command::ModifyReplicationGroup(a) => ha::modify(a).await,
        Command::ModifyReplicationGroupShardConfiguration(a) => crate::resharding::modify(a).await,
        Command::TestFailover(a) => ha::test_failover(a).await,
        Command::IncreaseReplicaCount(a) => ha::increase(a).await,
        Command::DecreaseReplicaCount(a) => ha::decrease(a).await,
        Command::CreateSnapshot(a) => ha::create_snapshot(a).await,
        Command::DescribeSnapshots(a) => ha::describe_snapshots(a).await,
        Command::DeleteSnapshot(a) => ha::delete_snapshot(a).await,
        Command::CreateUser(a) => crate::users::create_user(a).await,
        Command::DescribeUsers(a) => crate::users::describe_users(a).await,
        Command::ModifyUser(a) => crate::users::modify_user(a).await,
        Command::DeleteUser(a) => crate::users::delete_user(a).await,
        Command::CreateUserGroup(a) => crate::users::create_user_group(a).await,
        Command::DescribeUserGroups(a) => crate::users::describe_user_groups(a).await,
        Command::ModifyUserGroup(a) => crate::users::modify_user_group(a).await,
        Command::DeleteUserGroup(a) => crate::users::delete_user_group(a).await,
        Command::GenerateCertificates(a) => crate::certificates::generate(a),
        Command::Health(a) => admin::health(a).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every argument of every subcommand says what it is in `--help`.
    #[test]
    fn every_argument_has_help() {
        let cli = super::Cli::command();
        let mut missing = Vec::new();
        for sub in cli.get_subcommands() {
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{} --{}", sub.get_name(), arg.get_long().unwrap_or(id)));
                }
            }
        }
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }
}
