//! High-availability admin subcommands: modify-replication-group, test-failover,
//! increase-replica-count, decrease-replica-count, and snapshots (`aws elasticache`'s names
//! and flags).

use std::process::ExitCode;

use ferrocache_proto::admin::v1 as api;

use crate::admin::invoke;
use crate::cli::AdminOptions;
use crate::output;

/// `--automatic-failover-enabled` / `--no-automatic-failover-enabled` and the Multi-AZ pair,
/// as the AWS CLI spells them.
#[derive(Debug, clap::Args)]
pub struct FailoverFlags {
    /// Promote a replica automatically when the primary fails (needs a replica).
    #[arg(long, conflicts_with = "no_automatic_failover_enabled")]
    pub automatic_failover_enabled: bool,
    /// Leave the primary in place when it fails (no automatic failover).
    #[arg(long)]
    pub no_automatic_failover_enabled: bool,
    /// Spread members over zones and require automatic failover.
    #[arg(long, conflicts_with = "no_multi_az_enabled")]
    pub multi_az_enabled: bool,
    /// Do not require members in different zones.
    #[arg(long)]
    pub no_multi_az_enabled: bool,
}

fn either(on: bool, off: bool) -> Option<bool> {
    match (on, off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

/// TLS on a group's Redis endpoints.
#[derive(Debug, clap::Args)]
pub struct TransitFlags {
    /// TLS on the group's endpoints (the gateways need --tls-cert-file and --tls-key-file).
    #[arg(long, conflicts_with = "no_transit_encryption_enabled")]
    pub transit_encryption_enabled: bool,
    /// Turn TLS on the endpoints off (from mode preferred only).
    #[arg(long)]
    pub no_transit_encryption_enabled: bool,
    /// required: plain-text clients are refused; preferred: TLS and plain text both served
    /// (to move clients over). Turning TLS on for an existing group needs preferred.
    #[arg(long, default_value = "", value_parser = ["", "preferred", "required"])]
    pub transit_encryption_mode: String,
}

impl TransitFlags {
    pub fn enabled(&self) -> Option<bool> {
        either(self.transit_encryption_enabled, self.no_transit_encryption_enabled)
    }
}

impl FailoverFlags {
    pub fn automatic_failover(&self) -> Option<bool> {
        either(self.automatic_failover_enabled, self.no_automatic_failover_enabled)
    }

    pub fn multi_az(&self) -> Option<bool> {
        either(self.multi_az_enabled, self.no_multi_az_enabled)
    }
}

#[derive(Debug, clap::Args)]
pub struct DurabilityFlags {
    /// none (asynchronous, Redis's behaviour) | async (refuse writes while the best replica
    /// lags more than --max-replica-lag-ms) | sync (answer a write once
    /// --min-replicas-to-ack replicas have it).
    #[arg(long, default_value = "")]
    pub durability: String,
    /// For sync durability: replicas that must have a write before it is answered (1-5).
    #[arg(long)]
    pub min_replicas_to_ack: Option<i32>,
    /// For async durability: the lag bound in ms (default 1000).
    #[arg(long)]
    pub max_replica_lag_ms: Option<i32>,
}

#[derive(Debug, clap::Args)]
pub struct SnapshotFlags {
    /// Days to keep automatic snapshots (0-35; 0 takes none).
    #[arg(long)]
    pub snapshot_retention_limit: Option<i32>,
    /// Daily UTC window for automatic snapshots, e.g. 05:00-06:00 (at least 60 minutes).
    #[arg(long, default_value = "")]
    pub snapshot_window: String,
}

#[derive(Debug, clap::Args)]
pub struct ModifyArgs {
    #[command(flatten)]
    pub opts: AdminOptions,
    /// The replication group (its id, as given at creation; case-insensitive).
    #[arg(long)]
    pub replication_group_id: String,
    /// A description of the group (up to 255 characters).
    #[arg(long, default_value = "")]
    pub replication_group_description: String,
    /// Switch the primary to this replica (planned and lossless: writes pause until it has
    /// caught up).
    #[arg(long, default_value = "")]
    pub primary_cluster_id: String,
    #[command(flatten)]
    pub failover: FailoverFlags,
    #[command(flatten)]
    pub durability: DurabilityFlags,
    #[command(flatten)]
    pub snapshots: SnapshotFlags,
    /// A Redis parameter to set group-wide, as NAME=VALUE (repeatable), e.g.
    /// --parameter maxmemory=100mb --parameter maxmemory-policy=allkeys-lru.
    #[arg(long = "parameter", value_name = "NAME=VALUE")]
    pub parameters: Vec<String>,
    /// Accepted for compatibility; changes always apply immediately.
    #[arg(long)]
    pub apply_immediately: bool,
    /// A new AUTH token, applied as --auth-token-update-strategy says.
    #[arg(long, default_value = "")]
    pub auth_token: String,
    /// ROTATE (default with --auth-token: old and new tokens both work), SET (the new token
    /// becomes the only one) or DELETE (no token required).
    #[arg(long, default_value = "", value_parser = ["", "ROTATE", "SET", "DELETE", "rotate", "set", "delete"])]
    pub auth_token_update_strategy: String,
    #[command(flatten)]
    pub transit: TransitFlags,
    /// User groups to attach (RBAC).
    #[arg(long, num_args = 1.., value_delimiter = ' ')]
    pub user_group_ids_to_add: Vec<String>,
    /// User groups to detach.
    #[arg(long, num_args = 1.., value_delimiter = ' ')]
    pub user_group_ids_to_remove: Vec<String>,
}

pub async fn modify(a: ModifyArgs) -> ExitCode {
    let req = api::ModifyReplicationGroupRequest {
        replication_group_id: a.replication_group_id,
        automatic_failover_enabled: a.failover.automatic_failover(),
        multi_az_enabled: a.failover.multi_az(),
        durability: a.durability.durability,
        min_replicas_to_ack: a.durability.min_replicas_to_ack,
        max_replica_lag_ms: a.durability.max_replica_lag_ms,
        primary_cluster_id: a.primary_cluster_id,
        apply_immediately: a.apply_immediately,
        auth_token: a.auth_token,
        auth_token_update_strategy: a.auth_token_update_strategy,
        user_group_ids_to_add: a.user_group_ids_to_add,
        transit_encryption_enabled: a.transit.enabled(),
        transit_encryption_mode: a.transit.transit_encryption_mode,
        user_group_ids_to_remove: a.user_group_ids_to_remove,
        replication_group_description: a.replication_group_description,
        snapshot_retention_limit: a.snapshots.snapshot_retention_limit,
        snapshot_window: a.snapshots.snapshot_window,
        parameter_name_values: a
            .parameters
            .iter()
            .map(|p| {
                let (name, value) = p.split_once('=').unwrap_or((p.as_str(), ""));
                api::ParameterNameValue { parameter_name: name.to_string(), parameter_value: value.to_string() }
            })
            .collect(),
    };
    let out = a.opts.output;
    invoke(
        &a.opts,
        "ModifyReplicationGroup",
        req,
        |mut c, r| async move { c.modify_replication_group(r).await },
        |r| output::print_group_response(r.replication_group.as_ref(), out),
    )
    .await
}

#[derive(Debug, clap::Args)]
pub struct TestFailoverArgs {
    #[command(flatten)]
    pub opts: AdminOptions,
    /// The replication group (its id, as given at creation; case-insensitive).
    #[arg(long)]
    pub replication_group_id: String,
    /// The node group whose primary is switched (default: the first, 0001).
    #[arg(long, default_value = "")]
    pub node_group_id: String,
}

pub async fn test_failover(a: TestFailoverArgs) -> ExitCode {
    let req = api::TestFailoverRequest { replication_group_id: a.replication_group_id, node_group_id: a.node_group_id };
    let out = a.opts.output;
    invoke(
        &a.opts,
        "TestFailover",
        req,
        |mut c, r| async move { c.test_failover(r).await },
        |r| output::print_group_response(r.replication_group.as_ref(), out),
    )
    .await
}

#[derive(Debug, clap::Args)]
pub struct IncreaseArgs {
    #[command(flatten)]
    pub opts: AdminOptions,
    /// The replication group (its id, as given at creation; case-insensitive).
    #[arg(long)]
    pub replication_group_id: String,
    /// Replicas per node group afterwards (more than now, at most 5).
    #[arg(long)]
    pub new_replica_count: i32,
    /// Accepted for compatibility; changes always apply immediately.
    #[arg(long)]
    pub apply_immediately: bool,
}

pub async fn increase(a: IncreaseArgs) -> ExitCode {
    let req = api::IncreaseReplicaCountRequest {
        replication_group_id: a.replication_group_id,
        new_replica_count: a.new_replica_count,
        apply_immediately: a.apply_immediately,
    };
    let out = a.opts.output;
    invoke(
        &a.opts,
        "IncreaseReplicaCount",
        req,
        |mut c, r| async move { c.increase_replica_count(r).await },
        |r| output::print_group_response(r.replication_group.as_ref(), out),
    )
    .await
}

#[derive(Debug, clap::Args)]
pub struct DecreaseArgs {
    #[command(flatten)]
    pub opts: AdminOptions,
    /// The replication group (its id, as given at creation; case-insensitive).
    #[arg(long)]
    pub replication_group_id: String,
    /// Replicas per node group afterwards (the least up-to-date ones go).
    #[arg(long, conflicts_with = "replicas_to_remove")]
    pub new_replica_count: Option<i32>,
    /// Replicas to remove, by CacheClusterId.
    #[arg(long, num_args = 1.., value_delimiter = ' ')]
    pub replicas_to_remove: Vec<String>,
    /// Accepted for compatibility; changes always apply immediately.
    #[arg(long)]
    pub apply_immediately: bool,
}

pub async fn decrease(a: DecreaseArgs) -> ExitCode {
    let req = api::DecreaseReplicaCountRequest {
        replication_group_id: a.replication_group_id,
        new_replica_count: a.new_replica_count,
        replicas_to_remove: a.replicas_to_remove,
        apply_immediately: a.apply_immediately,
    };
    let out = a.opts.output;
    invoke(
        &a.opts,
        "DecreaseReplicaCount",
        req,
        |mut c, r| async move { c.decrease_replica_count(r).await },
        |r| output::print_group_response(r.replication_group.as_ref(), out),
    )
    .await
}

#[derive(Debug, clap::Args)]
pub struct CreateSnapshotArgs {
    #[command(flatten)]
    pub opts: AdminOptions,
    /// The replication group (its id, as given at creation; case-insensitive).
    #[arg(long)]
    pub replication_group_id: String,
    /// 1-255 letters, digits and hyphens, starting with a letter.
    #[arg(long)]
    pub snapshot_name: String,
}

pub async fn create_snapshot(a: CreateSnapshotArgs) -> ExitCode {
    let req =
        api::CreateSnapshotRequest { replication_group_id: a.replication_group_id, snapshot_name: a.snapshot_name };
    let out = a.opts.output;
    invoke(
        &a.opts,
        "CreateSnapshot",
        req,
        |mut c, r| async move { c.create_snapshot(r).await },
        |r| output::print_snapshot(r.snapshot.as_ref(), out),
    )
    .await
}

#[derive(Debug, clap::Args)]
pub struct DescribeSnapshotsArgs {
    #[command(flatten)]
    pub opts: AdminOptions,
    /// Only this group's snapshots.
    #[arg(long, default_value = "")]
    pub replication_group_id: String,
    /// Only this snapshot.
    #[arg(long, default_value = "")]
    pub snapshot_name: String,
    /// manual | automated
    #[arg(long, default_value = "")]
    pub snapshot_source: String,
}

pub async fn describe_snapshots(a: DescribeSnapshotsArgs) -> ExitCode {
    let req = api::DescribeSnapshotsRequest {
        replication_group_id: a.replication_group_id,
        snapshot_name: a.snapshot_name,
        snapshot_source: a.snapshot_source,
    };
    let out = a.opts.output;
    invoke(
        &a.opts,
        "DescribeSnapshots",
        req,
        |mut c, r| async move { c.describe_snapshots(r).await },
        |r| output::print_snapshots(&r.snapshots, out),
    )
    .await
}

#[derive(Debug, clap::Args)]
pub struct DeleteSnapshotArgs {
    #[command(flatten)]
    pub opts: AdminOptions,
    /// The snapshot (its name).
    #[arg(long)]
    pub snapshot_name: String,
}

pub async fn delete_snapshot(a: DeleteSnapshotArgs) -> ExitCode {
    let req = api::DeleteSnapshotRequest { snapshot_name: a.snapshot_name };
    let out = a.opts.output;
    invoke(
        &a.opts,
        "DeleteSnapshot",
        req,
        |mut c, r| async move { c.delete_snapshot(r).await },
        |r| output::print_snapshot(r.snapshot.as_ref(), out),
    )
    .await
}
