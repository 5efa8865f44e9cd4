//! The public admin API (`admin.v1.Admin`), in ElastiCache's terms. Followers forward each
//! call to the leader, so any coordinator can be the endpoint.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use admin::admin_client::AdminClient;
use admin::admin_server::Admin;
use ferrocache_common::ids::{cache_cluster_id, validate_replication_group_id};
use ferrocache_common::time::now_ms;
use ferrocache_proto::admin::v1 as admin;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::convert;
use crate::error::Error;
use crate::placement::place;
use crate::topology::{
    Change, GroupStatus, Member, MemberStatus, NodeGroup, Outcome, Rejection, ReplicationGroup, Role,
};
use crate::Coordinator;

const FORWARDED: &str = "x-ferrocache-forwarded";

pub struct AdminService {
    pub coordinator: Arc<Coordinator>,
}

/// Where a call should go: handled here (None) or forwarded to the leader.
fn forward_target<T>(c: &Coordinator, req: &Request<T>) -> Result<Option<String>, Status> {
    if c.is_leader() {
        return Ok(None);
    }
    match c.leader() {
        Some((_, addr)) if req.metadata().get(FORWARDED).is_none() => Ok(Some(addr)),
        leader => Err(Error::NotLeader { leader: leader.map(|l| l.1) }.into()),
    }
}

async fn leader_client(addr: &str) -> Result<AdminClient<Channel>, Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| Status::internal(e.to_string()))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .map_err(|e| Status::unavailable(format!("cannot reach the leader at {addr}: {e}")))?;
    Ok(AdminClient::new(channel))
}

fn forwarded<T>(req: Request<T>) -> Request<T> {
    let mut r = Request::new(req.into_inner());
    r.metadata_mut().insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
    r
}

fn rejection(r: Rejection) -> Status {
    let msg = r.to_string();
    match r {
        Rejection::AlreadyExists(_) => Error::AlreadyExists(format!("ReplicationGroupAlreadyExists: {msg}")),
        Rejection::NotFound(_) => Error::NotFound(format!("ReplicationGroupNotFoundFault: {msg}")),
        Rejection::PortInUse(_) => Error::InvalidArgument(format!("InvalidParameterValue: {msg}")),
        Rejection::NoFreePort | Rejection::NotAReplica(_) => Error::FailedPrecondition(msg),
    }
    .into()
}

fn invalid(msg: impl Into<String>) -> Status {
    Error::InvalidArgument(format!("InvalidParameterValue: {}", msg.into())).into()
}

/// A create request that passed validation.
#[derive(Debug)]
struct CreatePlan {
    id: String,
    count: usize,
    azs: Vec<String>,
    fsync: String,
    port: Option<u16>,
}

/// Checks a create request.
fn validate_create(req: &admin::CreateReplicationGroupRequest) -> Result<CreatePlan, Status> {
    let id = req.replication_group_id.to_ascii_lowercase();
    validate_replication_group_id(&id).map_err(invalid)?;
    if req.replication_group_description.len() > 255 {
        return Err(invalid("ReplicationGroupDescription must be at most 255 characters"));
    }
    if let Some(n) = req.num_node_groups {
        if n != 1 {
            return Err(invalid(format!(
                "NumNodeGroups {n}: only 1 node group (cluster mode disabled) is supported so far"
            )));
        }
    }
    let count = match (req.num_cache_clusters, req.replicas_per_node_group) {
        (Some(_), Some(_)) => return Err(invalid("NumCacheClusters and ReplicasPerNodeGroup are mutually exclusive")),
        (Some(n), None) if !(1..=6).contains(&n) => {
            return Err(invalid(format!("NumCacheClusters must be between 1 and 6, got {n}")))
        }
        (Some(n), None) => n as usize,
        (None, Some(r)) if !(0..=5).contains(&r) => {
            return Err(invalid(format!("ReplicasPerNodeGroup must be between 0 and 5, got {r}")))
        }
        (None, Some(r)) => r as usize + 1,
        (None, None) => 3,
    };
    if !req.preferred_cache_cluster_a_zs.is_empty() && req.preferred_cache_cluster_a_zs.len() != count {
        return Err(invalid(format!(
            "PreferredCacheClusterAZs has {} zones but the group has {count} nodes",
            req.preferred_cache_cluster_a_zs.len()
        )));
    }
    let fsync = match req.append_fsync.as_str() {
        "" => "everysec".to_string(),
        f @ ("always" | "everysec" | "no") => f.to_string(),
        other => return Err(invalid(format!("AppendFsync must be always, everysec or no, got '{other}'"))),
    };
    let port = match req.port {
        None => None,
        Some(p) if (1..65535).contains(&p) => Some(p as u16),
        Some(p) => return Err(invalid(format!("Port must be between 1 and 65534, got {p}"))),
    };
    Ok(CreatePlan { id, count, azs: req.preferred_cache_cluster_a_zs.clone(), fsync, port })
}

#[tonic::async_trait]
impl Admin for AdminService {
    #[tracing::instrument(name = "CreateReplicationGroup", skip_all)]
    async fn create_replication_group(
        &self,
        request: Request<admin::CreateReplicationGroupRequest>,
    ) -> Result<Response<admin::CreateReplicationGroupResponse>, Status> {
        let c = &self.coordinator;
        if let Some(addr) = forward_target(c, &request)? {
            return leader_client(&addr).await?.create_replication_group(forwarded(request)).await;
        }
        let req = request.into_inner();
        let CreatePlan { id, count, azs, fsync, port } = validate_create(&req)?;
        let topology = c.linearizable().await?;
        if topology.groups.contains_key(&id) {
            return Err(rejection(Rejection::AlreadyExists(id)));
        }
        let live: HashSet<String> = c.liveness.live_datanodes().into_iter().collect();
        let placed =
            place(&topology, &live, count, &azs).map_err(|e| Status::from(Error::FailedPrecondition(e.to_string())))?;
        let now = now_ms();
        let members = placed
            .into_iter()
            .enumerate()
            .map(|(i, d)| Member {
                node_id: cache_cluster_id(&id, i),
                datanode_id: d.id,
                role: if i == 0 { Role::Primary } else { Role::Replica },
                preferred_az: d.zone,
                status: MemberStatus::Creating,
            })
            .collect();
        let group = ReplicationGroup {
            id: id.clone(),
            description: req.replication_group_description.clone(),
            status: GroupStatus::Creating,
            append_fsync: fsync,
            primary_port: 0,
            reader_port: 0,
            created_ms: now,
            node_groups: vec![NodeGroup { id: "0001".into(), config_epoch: 1, slots: vec![(0, 16383)], members }],
        };
        let change =
            Change::CreateReplicationGroup { group, requested_port: port, port_base: c.config.endpoint_port_base };
        match c.propose(change).await? {
            Outcome::Group(g) => {
                let topology = c.topology().topology;
                tracing::info!(group = %g.id, port = g.primary_port, "replication group created");
                Ok(Response::new(admin::CreateReplicationGroupResponse {
                    replication_group: Some(convert::replication_group(
                        &g,
                        &topology,
                        Some(&c.liveness),
                        &c.config.endpoint_address,
                    )),
                }))
            }
            Outcome::Rejected(r) => Err(rejection(r)),
            Outcome::Ok => Err(Status::internal("unexpected outcome")),
        }
    }

    #[tracing::instrument(name = "DescribeReplicationGroups", skip_all)]
    async fn describe_replication_groups(
        &self,
        request: Request<admin::DescribeReplicationGroupsRequest>,
    ) -> Result<Response<admin::DescribeReplicationGroupsResponse>, Status> {
        let c = &self.coordinator;
        if let Some(addr) = forward_target(c, &request)? {
            return leader_client(&addr).await?.describe_replication_groups(forwarded(request)).await;
        }
        let req = request.into_inner();
        let topology = c.linearizable().await?;
        let wanted = req.replication_group_id.to_ascii_lowercase();
        if !wanted.is_empty() && !topology.groups.contains_key(&wanted) {
            return Err(rejection(Rejection::NotFound(wanted)));
        }
        let groups = topology
            .groups
            .values()
            .filter(|g| wanted.is_empty() || g.id == wanted)
            .map(|g| convert::replication_group(g, &topology, Some(&c.liveness), &c.config.endpoint_address))
            .collect();
        Ok(Response::new(admin::DescribeReplicationGroupsResponse { replication_groups: groups }))
    }

    #[tracing::instrument(name = "DeleteReplicationGroup", skip_all)]
    async fn delete_replication_group(
        &self,
        request: Request<admin::DeleteReplicationGroupRequest>,
    ) -> Result<Response<admin::DeleteReplicationGroupResponse>, Status> {
        let c = &self.coordinator;
        if let Some(addr) = forward_target(c, &request)? {
            return leader_client(&addr).await?.delete_replication_group(forwarded(request)).await;
        }
        let id = request.into_inner().replication_group_id.to_ascii_lowercase();
        if id.is_empty() {
            return Err(invalid("ReplicationGroupId is required"));
        }
        let topology = c.topology().topology;
        match c.propose(Change::DeleteReplicationGroup { id, at_ms: now_ms() }).await? {
            Outcome::Group(g) => {
                tracing::info!(group = %g.id, "replication group deleted");
                Ok(Response::new(admin::DeleteReplicationGroupResponse {
                    replication_group: Some(convert::replication_group(
                        &g,
                        &topology,
                        None,
                        &c.config.endpoint_address,
                    )),
                }))
            }
            Outcome::Rejected(r) => Err(rejection(r)),
            Outcome::Ok => Err(Status::internal("unexpected outcome")),
        }
    }

    #[tracing::instrument(name = "DescribeEvents", skip_all)]
    async fn describe_events(
        &self,
        request: Request<admin::DescribeEventsRequest>,
    ) -> Result<Response<admin::DescribeEventsResponse>, Status> {
        let c = &self.coordinator;
        if let Some(addr) = forward_target(c, &request)? {
            return leader_client(&addr).await?.describe_events(forwarded(request)).await;
        }
        let req = request.into_inner();
        let duration = req.duration.unwrap_or(60);
        if !(1..=20160).contains(&duration) {
            return Err(invalid("Duration must be between 1 and 20160 minutes"));
        }
        let max = req.max_records.unwrap_or(100);
        if !(1..=1000).contains(&max) {
            return Err(invalid("MaxRecords must be between 1 and 1000"));
        }
        let source_type = req.source_type.to_ascii_lowercase();
        if !["", "replication-group", "cache-cluster", "datanode"].contains(&source_type.as_str()) {
            return Err(invalid("SourceType must be replication-group, cache-cluster or datanode"));
        }
        let since = now_ms() - duration as i64 * 60_000;
        let topology = c.linearizable().await?;
        let matching: Vec<_> = topology
            .events
            .iter()
            .filter(|e| e.at_ms >= since)
            .filter(|e| req.source_identifier.is_empty() || e.source_id == req.source_identifier)
            .filter(|e| source_type.is_empty() || e.source_type == source_type)
            .collect();
        let skip = matching.len().saturating_sub(max as usize);
        let events = matching.into_iter().skip(skip).map(convert::event).collect();
        Ok(Response::new(admin::DescribeEventsResponse { events }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> admin::CreateReplicationGroupRequest {
        admin::CreateReplicationGroupRequest { replication_group_id: "Default".into(), ..Default::default() }
    }

    #[test]
    fn create_validation() {
        let plan = validate_create(&req()).unwrap();
        assert_eq!((plan.id.as_str(), plan.count, plan.fsync.as_str(), plan.port), ("default", 3, "everysec", None));
        let bad = |f: &dyn Fn(&mut admin::CreateReplicationGroupRequest)| {
            let mut r = req();
            f(&mut r);
            validate_create(&r).unwrap_err().code()
        };
        assert_eq!(bad(&|r| r.replicas_per_node_group = Some(6)), tonic::Code::InvalidArgument);
        assert_eq!(bad(&|r| r.num_cache_clusters = Some(0)), tonic::Code::InvalidArgument);
        assert_eq!(
            bad(&|r| {
                r.num_cache_clusters = Some(2);
                r.replicas_per_node_group = Some(1)
            }),
            tonic::Code::InvalidArgument
        );
        assert_eq!(bad(&|r| r.append_fsync = "sometimes".into()), tonic::Code::InvalidArgument);
        assert_eq!(bad(&|r| r.replication_group_id = "1bad".into()), tonic::Code::InvalidArgument);
        assert_eq!(bad(&|r| r.preferred_cache_cluster_a_zs = vec!["a".into()]), tonic::Code::InvalidArgument);
        assert_eq!(bad(&|r| r.port = Some(70000)), tonic::Code::InvalidArgument);
        assert_eq!(bad(&|r| r.num_node_groups = Some(3)), tonic::Code::InvalidArgument);
    }
}
