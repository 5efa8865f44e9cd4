//! Admin subcommands, named and shaped like `aws elasticache`: flags are the API's
//! parameters in kebab case; errors read "An error occurred (Code) when calling the X
//! operation: message" and exit with 254, as the AWS CLI does.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use api::admin_client::AdminClient;
use ferrocache_proto::admin::v1 as api;

use crate::cli::AdminOptions;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: AdminOptions,
    /// Require this password from every client (AUTH <token>): 16-128 printable characters
    /// without spaces, '"', '/' or '@'.
    #[arg(long, default_value = "", conflicts_with = "user_group_ids")]
    pub auth_token: String,
    /// RBAC instead of a token: these user groups' users may connect.
    #[arg(long, num_args = 1.., value_delimiter = ' ')]
    pub user_group_ids: Vec<String>,
    #[command(flatten)]
    pub transit: crate::ha::TransitFlags,
    /// The group's id (1-40 letters, digits, hyphens; starts with a letter).
    #[arg(long)]
    pub replication_group_id: String,
    /// A description of the group (up to 255 characters).
    #[arg(long, default_value = "")]
    pub replication_group_description: String,
    /// Nodes in the group, primary included (1-6).
    #[arg(long, conflicts_with = "replicas_per_node_group")]
    pub num_cache_clusters: Option<i32>,
    /// Replicas of the primary (0-5); default 2.
    #[arg(long)]
    pub replicas_per_node_group: Option<i32>,
    /// Zones for the nodes, primary first (one per node).
    #[arg(long, num_args = 1.., value_delimiter = ' ')]
    pub preferred_cache_cluster_azs: Vec<String>,
    /// always | everysec | no
    #[arg(long, default_value = "everysec")]
    pub append_fsync: String,
    /// Primary endpoint port (reader endpoint: Port+1); allocated when omitted.
    #[arg(long)]
    pub port: Option<i32>,
    /// Node groups (shards), 1-500; more than one makes the group cluster mode enabled,
    /// with the 16384 hash slots spread evenly.
    #[arg(long)]
    pub num_node_groups: Option<i32>,
    /// enabled | disabled (default: enabled when there is more than one node group).
    #[arg(long, default_value = "", value_parser = ["", "enabled", "disabled"])]
    pub cluster_mode: String,
    /// Per node group, as JSON like the AWS CLI takes it:
    /// '[{"NodeGroupId":"0001","Slots":"0-8191","ReplicaCount":1,"PrimaryAvailabilityZone":"a",
    /// "ReplicaAvailabilityZones":["b"]}, ...]'
    #[arg(long, value_parser = parse_node_group_configuration)]
    pub node_group_configuration: Option<NodeGroupConfigurations>,
    #[command(flatten)]
    pub failover: crate::ha::FailoverFlags,
    #[command(flatten)]
    pub durability: crate::ha::DurabilityFlags,
    #[command(flatten)]
    pub snapshots: crate::ha::SnapshotFlags,
    /// Restore: the new group starts with this snapshot's keys and TTLs.
    #[arg(long, default_value = "")]
    pub snapshot_name: String,
    /// Succeed (and describe the group) when it already exists. Not an ElastiCache flag:
    /// for init steps that run on every start.
    #[arg(long)]
    pub exists_ok: bool,
    /// Retry until enough datanodes have registered, then wait until the group is
    /// available, for up to this many seconds (0: return at once, as ElastiCache does).
    #[arg(long, default_value_t = 0)]
    pub wait_seconds: u64,
}

/// `--node-group-configuration`'s parsed value.
#[derive(Debug, Clone)]
pub struct NodeGroupConfigurations(pub Vec<api::NodeGroupConfiguration>);

fn parse_node_group_configuration(text: &str) -> Result<NodeGroupConfigurations, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "PascalCase")]
    struct Entry {
        #[serde(default)]
        node_group_id: String,
        #[serde(default)]
        slots: String,
        replica_count: Option<i32>,
        #[serde(default)]
        primary_availability_zone: String,
        #[serde(default)]
        replica_availability_zones: Vec<String>,
    }
    let entries: Vec<Entry> = serde_json::from_str(text).map_err(|e| format!("not a JSON list of node groups: {e}"))?;
    Ok(NodeGroupConfigurations(
        entries
            .into_iter()
            .map(|e| api::NodeGroupConfiguration {
                node_group_id: e.node_group_id,
                slots: e.slots,
                replica_count: e.replica_count,
                primary_availability_zone: e.primary_availability_zone,
                replica_availability_zones: e.replica_availability_zones,
            })
            .collect(),
    ))
}

#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    #[command(flatten)]
    pub opts: AdminOptions,
    /// Only this replication group (all when omitted).
    #[arg(long, default_value = "")]
    pub replication_group_id: String,
}

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub opts: AdminOptions,
    /// The replication group (its id, as given at creation; case-insensitive).
    #[arg(long)]
    pub replication_group_id: String,
}

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub opts: AdminOptions,
    /// Only events of this source: a group id, cache cluster id or datanode id.
    #[arg(long, default_value = "")]
    pub source_identifier: String,
    /// replication-group | cache-cluster | datanode
    #[arg(long, default_value = "")]
    pub source_type: String,
    /// Minutes back (default 60).
    #[arg(long)]
    pub duration: Option<i32>,
    /// At most this many events, newest kept (default 100, up to 1000).
    #[arg(long)]
    pub max_records: Option<i32>,
}

pub async fn connect(endpoint: &str) -> Result<AdminClient<ferrocache_common::credentials::Channel>, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())
        .map_err(|e| tonic::Status::invalid_argument(format!("bad --endpoint {endpoint}: {e}")))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("cannot reach {endpoint}: {e}")))?;
    Ok(AdminClient::new(ferrocache_common::credentials::channel(channel)))
}

/// Calls `f`, retrying for up to `patience` while the cluster has no leader or the
/// coordinator is unreachable.
pub async fn call<T, F, Fut>(endpoint: &str, patience: Duration, mut f: F) -> Result<T, tonic::Status>
where
    F: FnMut(AdminClient<ferrocache_common::credentials::Channel>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let result = match connect(endpoint).await {
            Ok(client) => f(client).await.map(|r| r.into_inner()),
            Err(e) => Err(e),
        };
        match result {
            Err(s) if s.code() == tonic::Code::Unavailable && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => return other,
        }
    }
}

/// Prints an error as the AWS CLI does (the fault name, when the message starts with one)
/// and exits 254 for a service error, 255 when no coordinator could be reached.
pub fn fail(operation: &str, status: tonic::Status) -> ExitCode {
    let msg = status.message();
    let (fault, detail) = match msg.split_once(": ") {
        Some((f, d)) if !f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric()) => (f.to_string(), d),
        _ => (format!("{:?}", status.code()), msg),
    };
    eprintln!("An error occurred ({fault}) when calling the {operation} operation: {detail}");
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => ExitCode::from(255),
        _ => ExitCode::from(254),
    }
}

const PATIENCE: Duration = Duration::from_secs(10);

/// Calls one operation with retries and prints its answer, or its error as the AWS CLI does.
pub async fn invoke<Req, Resp, F, Fut>(
    opts: &AdminOptions,
    operation: &str,
    req: Req,
    rpc: F,
    print: impl FnOnce(Resp) -> ExitCode,
) -> ExitCode
where
    Req: Clone,
    F: Fn(AdminClient<ferrocache_common::credentials::Channel>, Req) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
{
    match call(&opts.endpoint, PATIENCE, |c| rpc(c, req.clone())).await {
        Ok(r) => print(r),
        Err(s) => fail(operation, s),
    }
}

pub async fn create(a: CreateArgs) -> ExitCode {
    let req = api::CreateReplicationGroupRequest {
        replication_group_id: a.replication_group_id.clone(),
        replication_group_description: a.replication_group_description,
        num_cache_clusters: a.num_cache_clusters,
        replicas_per_node_group: a.replicas_per_node_group,
        preferred_cache_cluster_a_zs: a.preferred_cache_cluster_azs,
        append_fsync: a.append_fsync,
        port: a.port,
        num_node_groups: a.num_node_groups,
        cluster_mode: a.cluster_mode,
        node_group_configuration: a.node_group_configuration.map(|c| c.0).unwrap_or_default(),
        automatic_failover_enabled: a.failover.automatic_failover(),
        multi_az_enabled: a.failover.multi_az(),
        durability: a.durability.durability,
        min_replicas_to_ack: a.durability.min_replicas_to_ack,
        max_replica_lag_ms: a.durability.max_replica_lag_ms,
        snapshot_name: a.snapshot_name,
        snapshot_retention_limit: a.snapshots.snapshot_retention_limit,
        snapshot_window: a.snapshots.snapshot_window,
        auth_token: a.auth_token,
        user_group_ids: a.user_group_ids,
        transit_encryption_enabled: a.transit.enabled(),
        transit_encryption_mode: a.transit.transit_encryption_mode,
    };
    let output = a.opts.output;
    let patience = Duration::from_secs(a.wait_seconds).max(PATIENCE);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(a.wait_seconds);
    let created = loop {
        let r = call(&a.opts.endpoint, patience, |mut c| {
            let req = req.clone();
            async move { c.create_replication_group(req).await }
        })
        .await;
        match r {
            // Too few datanodes yet: they register with their first heartbeat.
            Err(s) if s.code() == tonic::Code::FailedPrecondition && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            Err(s) if s.code() == tonic::Code::AlreadyExists && a.exists_ok => break None,
            Err(s) => return fail("CreateReplicationGroup", s),
            Ok(r) => break r.replication_group,
        }
    };
    if a.wait_seconds == 0 && created.is_some() {
        return output::print_group_response(created.as_ref(), output);
    }
    // Describe (and with --wait-seconds, wait for `available`).
    let describe = api::DescribeReplicationGroupsRequest { replication_group_id: a.replication_group_id };
    loop {
        let r = call(&a.opts.endpoint, patience, |mut c| {
            let req = describe.clone();
            async move { c.describe_replication_groups(req).await }
        })
        .await;
        match r {
            Ok(r) => {
                let group = r.replication_groups.into_iter().next();
                let available = group.as_ref().is_some_and(|g| g.status == "available");
                if available || tokio::time::Instant::now() >= deadline {
                    return output::print_group_response(group.as_ref(), output);
                }
            }
            Err(s) => return fail("DescribeReplicationGroups", s),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub async fn describe(a: DescribeArgs) -> ExitCode {
    let req = api::DescribeReplicationGroupsRequest { replication_group_id: a.replication_group_id };
    let output = a.opts.output;
    invoke(
        &a.opts,
        "DescribeReplicationGroups",
        req,
        |mut c, r| async move { c.describe_replication_groups(r).await },
        |r| output::print_groups(&r.replication_groups, output),
    )
    .await
}

pub async fn delete(a: DeleteArgs) -> ExitCode {
    let req = api::DeleteReplicationGroupRequest { replication_group_id: a.replication_group_id };
    let output = a.opts.output;
    invoke(
        &a.opts,
        "DeleteReplicationGroup",
        req,
        |mut c, r| async move { c.delete_replication_group(r).await },
        |r| output::print_group_response(r.replication_group.as_ref(), output),
    )
    .await
}

pub async fn events(a: EventsArgs) -> ExitCode {
    let req = api::DescribeEventsRequest {
        source_identifier: a.source_identifier,
        source_type: a.source_type,
        duration: a.duration,
        max_records: a.max_records,
    };
    let output = a.opts.output;
    invoke(
        &a.opts,
        "DescribeEvents",
        req,
        |mut c, r| async move { c.describe_events(r).await },
        |r| output::print_events(&r.events, output),
    )
    .await
}

#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// gRPC address of the process (coordinator, datanode or gateway).
    #[arg(long, default_value = "http://127.0.0.1:7000")]
    pub endpoint: String,
}

pub async fn health(a: HealthArgs) -> ExitCode {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let channel = match tonic::transport::Endpoint::from_shared(a.endpoint.clone()) {
        Ok(e) => e.connect_timeout(Duration::from_secs(2)).timeout(Duration::from_secs(2)).connect().await,
        Err(e) => {
            eprintln!("bad --endpoint {}: {e}", a.endpoint);
            return ExitCode::from(2);
        }
    };
    let status = match channel {
        Ok(c) => HealthClient::new(c).check(HealthCheckRequest { service: String::new() }).await,
        Err(e) => {
            eprintln!("{}: unreachable: {e}", a.endpoint);
            return ExitCode::FAILURE;
        }
    };
    match status.map(|r| r.into_inner().status()) {
        Ok(ServingStatus::Serving) => {
            println!("SERVING");
            ExitCode::SUCCESS
        }
        Ok(other) => {
            println!("{}", other.as_str_name());
            ExitCode::FAILURE
        }
        Err(s) => {
            eprintln!("{}: {}", a.endpoint, s.message());
            ExitCode::FAILURE
        }
    }
}
