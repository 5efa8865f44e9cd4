//! The public admin API (`admin.v1.Admin`), in ElastiCache's terms. Followers forward each
//! call to the leader, so any coordinator can be the endpoint.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use admin::admin_client::AdminClient;
use admin::admin_server::Admin;
use ferrocache_common::ids::{cache_cluster_id, cluster_member_id};
use ferrocache_common::time::now_ms;
use ferrocache_proto::admin::v1 as admin;
use tonic::{Request, Response, Status};

use super::convert;
use super::requests::{self, invalid, CreatePlan};
use crate::error::Error;
use crate::placement::{place_beside, place_shards};
use crate::topology::{
    Change, Datanode, GroupStatus, Member, MemberStatus, NodeGroup, Outcome, Rejection, ReplicationGroup,
    RestoreSource, Role, Snapshot, SnapshotStatus, Topology,
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

async fn leader_client(addr: &str) -> Result<AdminClient<ferrocache_common::credentials::Channel>, Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| Status::internal(e.to_string()))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .map_err(|e| Status::unavailable(format!("cannot reach the leader at {addr}: {e}")))?;
    Ok(AdminClient::new(ferrocache_common::credentials::channel(channel)))
}

fn forwarded<T>(req: Request<T>) -> Request<T> {
    let mut r = Request::new(req.into_inner());
    r.metadata_mut().insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
    r
}

pub(super) fn rejection(r: Rejection) -> Status {
    let msg = r.to_string();
    match r {
        Rejection::AlreadyExists(_) => Error::AlreadyExists(format!("ReplicationGroupAlreadyExists: {msg}")),
        Rejection::NotFound(_) => Error::NotFound(format!("ReplicationGroupNotFoundFault: {msg}")),
        Rejection::PortInUse(_) => Error::InvalidArgument(format!("InvalidParameterValue: {msg}")),
        Rejection::NoFreePort
        | Rejection::NotAReplica(_)
        | Rejection::HandoffInProgress(_)
        | Rejection::NoHandoff(_)
        | Rejection::MemberExists(_) => Error::FailedPrecondition(format!("InvalidReplicationGroupState: {msg}")),
        Rejection::ReshardingInProgress(_) | Rejection::NoSlotMove(_) => {
            Error::FailedPrecondition(format!("InvalidReplicationGroupState: {msg}"))
        }
        Rejection::SnapshotExists(_) => Error::AlreadyExists(format!("SnapshotAlreadyExistsFault: {msg}")),
        Rejection::SnapshotNotFound(_) => Error::NotFound(format!("SnapshotNotFoundFault: {msg}")),
        Rejection::UserExists(_) => Error::AlreadyExists(format!("UserAlreadyExists: {msg}")),
        Rejection::UserNotFound(_) => Error::NotFound(format!("UserNotFound: {msg}")),
        Rejection::UserGroupExists(_) => Error::AlreadyExists(format!("UserGroupAlreadyExists: {msg}")),
        Rejection::UserGroupNotFound(_) => Error::NotFound(format!("UserGroupNotFound: {msg}")),
        Rejection::UserInUse(..) => Error::FailedPrecondition(format!("InvalidUserState: {msg}")),
        Rejection::UserGroupInUse(..) => Error::FailedPrecondition(format!("InvalidUserGroupState: {msg}")),
        Rejection::NoDefaultUser(_) => Error::InvalidArgument(format!("DefaultUserRequired: {msg}")),
        Rejection::BuiltinUser => Error::InvalidArgument(format!("InvalidParameterValue: {msg}")),
        Rejection::AuthConflict(_) => Error::InvalidArgument(format!("InvalidParameterCombination: {msg}")),
    }
    .into()
}

/// Where a restore reads its snapshot: it must be complete, on a live datanode.
fn restore_source(topology: &Topology, live: &HashSet<String>, name: &str) -> Result<RestoreSource, Status> {
    let Some(snap) = topology.snapshots.get(name) else {
        return Err(rejection(Rejection::SnapshotNotFound(name.to_string())));
    };
    if snap.status != SnapshotStatus::Available {
        return Err(Error::FailedPrecondition(format!(
            "InvalidSnapshotState: snapshot {name} is {}, not available",
            snap.status.as_str()
        ))
        .into());
    }
    if !live.contains(&snap.datanode_id) {
        return Err(Error::FailedPrecondition(format!(
            "InvalidSnapshotState: datanode {} holding snapshot {name} is not reachable",
            snap.datanode_id
        ))
        .into());
    }
    Ok(RestoreSource { snapshot_name: name.to_string(), datanode_id: snap.datanode_id.clone() })
}

fn required_id(id: &str) -> Result<String, Status> {
    if id.is_empty() {
        return Err(invalid("ReplicationGroupId is required"));
    }
    Ok(id.to_ascii_lowercase())
}

fn find_group(topology: &Topology, id: &str) -> Result<ReplicationGroup, Status> {
    topology.groups.get(id).cloned().ok_or_else(|| rejection(Rejection::NotFound(id.to_string())))
}

impl AdminService {
    /// The group as DescribeReplicationGroups shows it now.
    fn describe(&self, id: &str) -> Option<admin::ReplicationGroup> {
        let c = &self.coordinator;
        let topology = c.topology().topology;
        let g = topology.groups.get(id)?;
        Some(convert::replication_group(g, &topology, Some(&c.liveness), &c.config.endpoint_address))
    }

    /// Proposes a change that answers with the group; maps rejections.
    async fn propose_group(&self, change: Change) -> Result<ReplicationGroup, Status> {
        match self.coordinator.propose(change).await? {
            Outcome::Group(g) => Ok(*g),
            Outcome::Ok => Err(Status::internal("unexpected outcome")),
            Outcome::Rejected(r) => Err(rejection(r)),
        }
    }

    async fn propose_ok(&self, change: Change) -> Result<(), Status> {
        match self.coordinator.propose(change).await? {
            Outcome::Rejected(r) => Err(rejection(r)),
            _ => Ok(()),
        }
    }

    /// Starts a planned switch to `target` after checking it can take over.
    async fn begin_handoff(&self, g: &ReplicationGroup, ng: &str, target: &str, reason: &str) -> Result<(), Status> {
        let member = g.members().find(|(_, m)| m.node_id == target).map(|(_, m)| m.clone());
        let Some(member) = member else {
            return Err(invalid(format!("{target} is not a member of replication group {}", g.id)));
        };
        let status = self.coordinator.liveness.node_status(&member.datanode_id, &member.node_id);
        if !status.is_some_and(|s| s.in_sync && !s.full_sync_in_progress) {
            return Err(Error::FailedPrecondition(format!(
                "InvalidCacheClusterState: {target} is not an online, in-sync replica; it cannot be promoted now"
            ))
            .into());
        }
        self.propose_ok(Change::BeginHandoff {
            group_id: g.id.clone(),
            node_group_id: ng.to_string(),
            target: target.to_string(),
            reason: reason.to_string(),
            at_ms: now_ms(),
        })
        .await
    }
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
        let plan = requests::validate_create(&req)?;
        let topology = c.linearizable().await?;
        if topology.groups.contains_key(&plan.id) {
            return Err(rejection(Rejection::AlreadyExists(plan.id)));
        }
        let live: HashSet<String> = c.liveness.live_datanodes().into_iter().collect();
        let restored_from = match &plan.snapshot_name {
            None => None,
            Some(name) => Some(restore_source(&topology, &live, name)?),
        };
        let CreatePlan {
            id,
            shards,
            cluster_enabled,
            fsync,
            port,
            durability,
            automatic_failover,
            multi_az,
            snapshot_retention_limit,
            snapshot_window,
            auth_token,
            user_group_ids,
            transit_encryption,
            ..
        } = plan;
        if let Some(ug) = user_group_ids.iter().find(|u| !topology.user_groups.contains_key(*u)) {
            return Err(rejection(Rejection::UserGroupNotFound(ug.clone())));
        }
        if cluster_enabled && restored_from.is_some() {
            return Err(invalid("restoring a snapshot into a cluster-mode-enabled group is not supported yet"));
        }
        let wanted: Vec<(usize, Vec<String>)> = shards.iter().map(|s| (s.members, s.azs.clone())).collect();
        let placed = place_shards(&topology, &live, &wanted)
            .map_err(|e| Status::from(Error::FailedPrecondition(format!("InsufficientCacheClusterCapacity: {e}"))))?;
        let now = now_ms();
        let node_groups = shards
            .into_iter()
            .zip(placed)
            .map(|(shard, datanodes)| {
                let members = datanodes
                    .into_iter()
                    .enumerate()
                    .map(|(i, d)| Member {
                        node_id: if cluster_enabled {
                            cluster_member_id(&id, &shard.id, i)
                        } else {
                            cache_cluster_id(&id, i)
                        },
                        datanode_id: d.id,
                        role: if i == 0 { Role::Primary } else { Role::Replica },
                        preferred_az: d.zone,
                        status: MemberStatus::Creating,
                        port: 0,
                    })
                    .collect();
                NodeGroup { id: shard.id, config_epoch: 1, slots: shard.slots, members, handoff: None }
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
            node_groups,
            durability,
            automatic_failover,
            multi_az,
            snapshot_retention_limit,
            snapshot_window,
            restored_from,
            parameters: Default::default(),
            cluster_enabled,
            configuration_port: 0,
            resharding: None,
            auth_token_modified_ms: if auth_token.is_some() { now } else { 0 },
            auth_tokens: auth_token.into_iter().collect(),
            user_group_ids,
            transit_encryption,
        };
        let change = Change::CreateReplicationGroup {
            group: Box::new(group),
            requested_port: port,
            port_base: c.config.endpoint_port_base,
        };
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

    #[tracing::instrument(name = "ModifyReplicationGroup", skip_all)]
    async fn modify_replication_group(
        &self,
        request: Request<admin::ModifyReplicationGroupRequest>,
    ) -> Result<Response<admin::ModifyReplicationGroupResponse>, Status> {
        let c = &self.coordinator;
        if let Some(addr) = forward_target(c, &request)? {
            return leader_client(&addr).await?.modify_replication_group(forwarded(request)).await;
        }
        let req = request.into_inner();
        let id = required_id(&req.replication_group_id)?;
        let g = find_group(&*c.linearizable().await?, &id)?;
        let plan = requests::validate_modify(&req, &g)?;
        if plan.changes_settings() {
            self.propose_group(Change::ModifyReplicationGroup {
                id: id.clone(),
                settings: plan.settings,
                at_ms: now_ms(),
            })
            .await?;
        }
        if let Some((ng, target)) = &plan.promote {
            self.begin_handoff(&g, ng, target, "ModifyReplicationGroup PrimaryClusterId").await?;
        }
        tracing::info!(group = %id, "replication group modified");
        Ok(Response::new(admin::ModifyReplicationGroupResponse { replication_group: self.describe(&id) }))
    }

    #[tracing::instrument(name = "ModifyReplicationGroupShardConfiguration", skip_all)]
    async fn modify_replication_group_shard_configuration(
        &self,
        request: Request<admin::ModifyReplicationGroupShardConfigurationRequest>,
    ) -> Result<Response<admin::ModifyReplicationGroupShardConfigurationResponse>, Status> {
        let c = &self.coordinator;
        if let Some(addr) = forward_target(c, &request)? {
            return leader_client(&addr).await?.modify_replication_group_shard_configuration(forwarded(request)).await;
        }
        let req = request.into_inner();
        let id = required_id(&req.replication_group_id)?;
        let topology = c.linearizable().await?;
        let g = find_group(&topology, &id)?;
        let live: HashSet<String> = c.liveness.live_datanodes().into_iter().collect();
        let change = super::resharding::plan(c.config.resharding_slots_per_move, &topology, &live, &g, &req, now_ms())?;
        self.propose_group(change).await?;
        tracing::info!(group = %id, node_groups = req.node_group_count, "resharding started");
        Ok(Response::new(admin::ModifyReplicationGroupShardConfigurationResponse {
            replication_group: self.describe(&id),
        }))
    }

    #[tracing::instrument(name = "TestFailover", skip_all)]
    async fn test_failover(
        &self,
        request: Request<admin::TestFailoverRequest>,
    ) -> Result<Response<admin::TestFailoverResponse>, Status> {
        let c = &self.coordinator;
        if let Some(addr) = forward_target(c, &request)? {
            return leader_client(&addr).await?.test_failover(forwarded(request)).await;
        }
        let req = request.into_inner();
        let id = required_id(&req.replication_group_id)?;
        let g = find_group(&*c.linearizable().await?, &id)?;
        let ng = match req.node_group_id.as_str() {
            "" => g.node_groups.first(),
            wanted => g.node_groups.iter().find(|ng| ng.id == wanted),
        };
        let Some(ng) = ng else {
            return Err(Error::NotFound(format!(
                "NodeGroupNotFoundFault: node group {} not found in {id}",
                req.node_group_id
            ))
            .into());
        };
        // The most up-to-date replica that is in sync takes over.
        let best = ng
            .members
            .iter()
            .filter(|m| m.role == Role::Replica)
            .filter_map(|m| c.liveness.node_status(&m.datanode_id, &m.node_id).map(|s| (m, s)))
            .filter(|(_, s)| s.in_sync && !s.full_sync_in_progress)
            .max_by_key(|(_, s)| s.replication_offset)
            .map(|(m, _)| m.node_id.clone());
        let Some(target) = best else {
            return Err(Error::FailedPrecondition(format!(
                "InvalidReplicationGroupState: node group {} of {id} has no online, in-sync replica to fail over to",
                ng.id
            ))
            .into());
        };
        self.begin_handoff(&g, &ng.id.clone(), &target, "TestFailover").await?;
        tracing::info!(group = %id, %target, "test failover started");
        Ok(Response::new(admin::TestFailoverResponse { replication_group: self.describe(&id) }))
    }

    #[tracing::instrument(name = "IncreaseReplicaCount", skip_all)]
    async fn increase_replica_count(
        &self,
        request: Request<admin::IncreaseReplicaCountRequest>,
    ) -> Result<Response<admin::IncreaseReplicaCountResponse>, Status> {
        let c = &self.coordinator;
        if let Some(addr) = forward_target(c, &request)? {
            return leader_client(&addr).await?.increase_replica_count(forwarded(request)).await;
        }
        let req = request.into_inner();
        let id = required_id(&req.replication_group_id)?;
        let topology = c.linearizable().await?;
        let g = find_group(&topology, &id)?;
        let wanted = requests::validate_increase(&req, &g)?;
        let live: HashSet<String> = c.liveness.live_datanodes().into_iter().collect();
        let mut next_index = g.members().count();
        let mut added = Vec::new();
        for ng in &g.node_groups {
            if g.cluster_enabled {
                next_index = ng.members.len();
            }
            let existing: Vec<Datanode> =
                ng.members.iter().filter_map(|m| topology.datanodes.get(&m.datanode_id).cloned()).collect();
            let have = ng.members.iter().filter(|m| m.role == Role::Replica).count();
            let placed = place_beside(&topology, &live, &existing, wanted - have, &[]).map_err(|e| {
                Status::from(Error::FailedPrecondition(format!("InsufficientCacheClusterCapacity: {e}")))
            })?;
            for d in placed {
                // Ids are never reused, so a removed replica's leftovers cannot be confused with a new one.
                let node_id = loop {
                    let candidate = if g.cluster_enabled {
                        cluster_member_id(&id, &ng.id, next_index)
                    } else {
                        cache_cluster_id(&id, next_index)
                    };
                    next_index += 1;
                    if !g.members().any(|(_, m)| m.node_id == candidate)
                        && !added.iter().any(|(_, m): &(String, Member)| m.node_id == candidate)
                    {
                        break candidate;
                    }
                };
                let member = Member {
                    node_id,
                    datanode_id: d.id,
                    role: Role::Replica,
                    preferred_az: d.zone,
                    status: MemberStatus::Creating,
                    port: 0,
                };
                added.push((ng.id.clone(), member));
            }
        }
        self.propose_group(Change::AddReplicas { group_id: id.clone(), members: added, at_ms: now_ms() }).await?;
        tracing::info!(group = %id, replicas = wanted, "replica count increased");
        Ok(Response::new(admin::IncreaseReplicaCountResponse { replication_group: self.describe(&id) }))
    }

    #[tracing::instrument(name = "DecreaseReplicaCount", skip_all)]
    async fn decrease_replica_count(
        &self,
        request: Request<admin::DecreaseReplicaCountRequest>,
    ) -> Result<Response<admin::DecreaseReplicaCountResponse>, Status> {
        let c = &self.coordinator;
        if let Some(addr) = forward_target(c, &request)? {
            return leader_client(&addr).await?.decrease_replica_count(forwarded(request)).await;
        }
        let req = request.into_inner();
        let id = required_id(&req.replication_group_id)?;
        let g = find_group(&*c.linearizable().await?, &id)?;
        let offsets = |node_id: &str| {
            g.members()
                .find(|(_, m)| m.node_id == node_id)
                .and_then(|(_, m)| c.liveness.node_status(&m.datanode_id, &m.node_id))
                .map(|s| s.replication_offset)
        };
        let remove = requests::replicas_to_remove(&req, &g, &offsets)?;
        self.propose_group(Change::RemoveReplicas { group_id: id.clone(), node_ids: remove, at_ms: now_ms() }).await?;
        tracing::info!(group = %id, "replica count decreased");
        Ok(Response::new(admin::DecreaseReplicaCountResponse { replication_group: self.describe(&id) }))
    }

    #[tracing::instrument(name = "CreateSnapshot", skip_all)]
    async fn create_snapshot(
        &self,
        request: Request<admin::CreateSnapshotRequest>,
    ) -> Result<Response<admin::CreateSnapshotResponse>, Status> {
        let c = &self.coordinator;
        if let Some(addr) = forward_target(c, &request)? {
            return leader_client(&addr).await?.create_snapshot(forwarded(request)).await;
        }
        let req = request.into_inner();
        let id = required_id(&req.replication_group_id)?;
        requests::validate_snapshot_name(&req.snapshot_name)?;
        let topology = c.linearizable().await?;
        let g = find_group(&topology, &id)?;
        if topology.snapshots.contains_key(&req.snapshot_name) {
            return Err(rejection(Rejection::SnapshotExists(req.snapshot_name)));
        }
        let snapshot = new_snapshot(c, &g, &req.snapshot_name, false, now_ms())?;
        self.propose_ok(Change::CreateSnapshot { snapshot: snapshot.clone() }).await?;
        tracing::info!(group = %id, snapshot = %snapshot.name, node = %snapshot.node_id, "snapshot started");
        Ok(Response::new(admin::CreateSnapshotResponse { snapshot: Some(convert::snapshot(&snapshot)) }))
    }

    #[tracing::instrument(name = "DescribeSnapshots", skip_all)]
    async fn describe_snapshots(
        &self,
        request: Request<admin::DescribeSnapshotsRequest>,
    ) -> Result<Response<admin::DescribeSnapshotsResponse>, Status> {
        let c = &self.coordinator;
        if let Some(addr) = forward_target(c, &request)? {
            return leader_client(&addr).await?.describe_snapshots(forwarded(request)).await;
        }
        let req = request.into_inner();
        let source = req.snapshot_source.to_ascii_lowercase();
        if !["", "manual", "automated"].contains(&source.as_str()) {
            return Err(invalid("SnapshotSource must be manual or automated"));
        }
        let topology = c.linearizable().await?;
        if !req.snapshot_name.is_empty() && !topology.snapshots.contains_key(&req.snapshot_name) {
            return Err(rejection(Rejection::SnapshotNotFound(req.snapshot_name)));
        }
        let group = req.replication_group_id.to_ascii_lowercase();
        let snapshots = topology
            .snapshots
            .values()
            .filter(|s| req.snapshot_name.is_empty() || s.name == req.snapshot_name)
            .filter(|s| group.is_empty() || s.group_id == group)
            .filter(|s| source.is_empty() || (source == "automated") == s.automatic)
            .map(convert::snapshot)
            .collect();
        Ok(Response::new(admin::DescribeSnapshotsResponse { snapshots }))
    }

    #[tracing::instrument(name = "DeleteSnapshot", skip_all)]
    async fn delete_snapshot(
        &self,
        request: Request<admin::DeleteSnapshotRequest>,
    ) -> Result<Response<admin::DeleteSnapshotResponse>, Status> {
        let c = &self.coordinator;
        if let Some(addr) = forward_target(c, &request)? {
            return leader_client(&addr).await?.delete_snapshot(forwarded(request)).await;
        }
        let name = request.into_inner().snapshot_name;
        if name.is_empty() {
            return Err(invalid("SnapshotName is required"));
        }
        let topology = c.linearizable().await?;
        let Some(snapshot) = topology.snapshots.get(&name).cloned() else {
            return Err(rejection(Rejection::SnapshotNotFound(name)));
        };
        self.propose_ok(Change::DeleteSnapshot { name: name.clone(), at_ms: now_ms() }).await?;
        tracing::info!(snapshot = %name, "snapshot deleted");
        let mut shown = convert::snapshot(&snapshot);
        shown.snapshot_status = "deleting".into();
        Ok(Response::new(admin::DeleteSnapshotResponse { snapshot: Some(shown) }))
    }
    #[tracing::instrument(name = "CreateUser", skip_all)]
    async fn create_user(&self, request: Request<admin::CreateUserRequest>) -> Result<Response<admin::User>, Status> {
        if let Some(addr) = forward_target(&self.coordinator, &request)? {
            return leader_client(&addr).await?.create_user(forwarded(request)).await;
        }
        self.do_create_user(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(name = "DescribeUsers", skip_all)]
    async fn describe_users(
        &self,
        request: Request<admin::DescribeUsersRequest>,
    ) -> Result<Response<admin::DescribeUsersResponse>, Status> {
        if let Some(addr) = forward_target(&self.coordinator, &request)? {
            return leader_client(&addr).await?.describe_users(forwarded(request)).await;
        }
        self.do_describe_users(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(name = "ModifyUser", skip_all)]
    async fn modify_user(&self, request: Request<admin::ModifyUserRequest>) -> Result<Response<admin::User>, Status> {
        if let Some(addr) = forward_target(&self.coordinator, &request)? {
            return leader_client(&addr).await?.modify_user(forwarded(request)).await;
        }
        self.do_modify_user(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(name = "DeleteUser", skip_all)]
    async fn delete_user(&self, request: Request<admin::DeleteUserRequest>) -> Result<Response<admin::User>, Status> {
        if let Some(addr) = forward_target(&self.coordinator, &request)? {
            return leader_client(&addr).await?.delete_user(forwarded(request)).await;
        }
        self.do_delete_user(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(name = "CreateUserGroup", skip_all)]
    async fn create_user_group(
        &self,
        request: Request<admin::CreateUserGroupRequest>,
    ) -> Result<Response<admin::UserGroup>, Status> {
        if let Some(addr) = forward_target(&self.coordinator, &request)? {
            return leader_client(&addr).await?.create_user_group(forwarded(request)).await;
        }
        self.do_create_user_group(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(name = "DescribeUserGroups", skip_all)]
    async fn describe_user_groups(
        &self,
        request: Request<admin::DescribeUserGroupsRequest>,
    ) -> Result<Response<admin::DescribeUserGroupsResponse>, Status> {
        if let Some(addr) = forward_target(&self.coordinator, &request)? {
            return leader_client(&addr).await?.describe_user_groups(forwarded(request)).await;
        }
        self.do_describe_user_groups(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(name = "ModifyUserGroup", skip_all)]
    async fn modify_user_group(
        &self,
        request: Request<admin::ModifyUserGroupRequest>,
    ) -> Result<Response<admin::UserGroup>, Status> {
        if let Some(addr) = forward_target(&self.coordinator, &request)? {
            return leader_client(&addr).await?.modify_user_group(forwarded(request)).await;
        }
        self.do_modify_user_group(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(name = "DeleteUserGroup", skip_all)]
    async fn delete_user_group(
        &self,
        request: Request<admin::DeleteUserGroupRequest>,
    ) -> Result<Response<admin::UserGroup>, Status> {
        if let Some(addr) = forward_target(&self.coordinator, &request)? {
            return leader_client(&addr).await?.delete_user_group(forwarded(request)).await;
        }
        self.do_delete_user_group(request.into_inner()).await.map(Response::new)
    }
}

/// A snapshot record for `g`, taken from its most up-to-date in-sync replica (so the primary's
/// writes are not held up), or from the primary when it has no such replica.
pub fn new_snapshot(
    c: &Coordinator,
    g: &ReplicationGroup,
    name: &str,
    automatic: bool,
    at_ms: i64,
) -> Result<Snapshot, Status> {
    if g.node_groups.len() > 1 {
        // A snapshot file holds one node group; per-node-group snapshots are still to come,
        // and a partial copy must not pass for a whole one.
        return Err(Error::FailedPrecondition(format!(
            "InvalidReplicationGroupState: snapshots of a group with {} node groups are not supported yet",
            g.node_groups.len()
        ))
        .into());
    }
    let status = |m: &Member| c.liveness.node_status(&m.datanode_id, &m.node_id);
    let replica = g
        .members()
        .filter(|(_, m)| m.role == Role::Replica)
        .filter_map(|(_, m)| status(m).filter(|s| s.in_sync && !s.full_sync_in_progress).map(|s| (m, s)))
        .max_by_key(|(_, s)| s.replication_offset)
        .map(|(m, _)| m);
    let source =
        replica.or_else(|| g.members().map(|(_, m)| m).find(|m| m.role == Role::Primary && status(m).is_some()));
    let Some(source) = source else {
        return Err(Error::FailedPrecondition(format!(
            "InvalidReplicationGroupState: no member of {} is reachable to take a snapshot from",
            g.id
        ))
        .into());
    };
    Ok(Snapshot {
        name: name.to_string(),
        group_id: g.id.clone(),
        group_description: g.description.clone(),
        node_id: source.node_id.clone(),
        datanode_id: source.datanode_id.clone(),
        automatic,
        created_ms: at_ms,
        status: SnapshotStatus::Creating,
        key_count: 0,
        bytes: 0,
        failure: String::new(),
        num_cache_clusters: g.members().count() as u32,
        append_fsync: g.append_fsync.clone(),
    })
}
