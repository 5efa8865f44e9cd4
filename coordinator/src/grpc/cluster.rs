//! `internal.v1.Cluster`: datanode heartbeats (leader only) and topology watches (any
//! coordinator, from its applied state).

use std::sync::Arc;
use std::time::Duration;

use ferrocache_common::time::now_ms;
use ferrocache_proto::internal::v1 as pb;
use pb::cluster_server::Cluster;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::convert;
use crate::topology::{Change, Datanode, GroupStatus, Role, Snapshot, SnapshotStatus};
use crate::Coordinator;

/// Watchers get the topology again at least this often, so they can tell silence from death.
const RESEND: Duration = Duration::from_secs(3);

pub struct ClusterService {
    pub coordinator: Arc<Coordinator>,
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let req = request.into_inner();
        if req.datanode_id.is_empty() || req.address.is_empty() {
            return Err(Status::invalid_argument("datanode_id and address are required"));
        }
        let c = &self.coordinator;
        c.require_leader()?;
        let topology = c.linearizable().await?;
        let known = topology.datanodes.get(&req.datanode_id);
        if known.map(|d| (d.address.as_str(), d.zone.as_str())) != Some((req.address.as_str(), req.zone.as_str())) {
            let datanode = Datanode {
                id: req.datanode_id.clone(),
                address: req.address.clone(),
                zone: req.zone.clone(),
                registered_ms: now_ms(),
            };
            c.propose(Change::RegisterDatanode { datanode }).await?;
        }
        if c.liveness.record(&req.datanode_id, req.nodes, &req.incarnation) {
            promote_past_restarted_primaries(c, &topology, &req.datanode_id).await?;
        }
        for report in req.snapshots {
            let pending = topology
                .snapshots
                .get(&report.snapshot_name)
                .is_some_and(|s| s.status == SnapshotStatus::Creating && s.datanode_id == req.datanode_id);
            if pending {
                let change = Change::SnapshotDone {
                    name: report.snapshot_name,
                    ok: report.ok,
                    key_count: report.key_count,
                    bytes: report.bytes,
                    error: report.error,
                    at_ms: now_ms(),
                };
                c.propose(change).await?;
            }
        }
        let topology = c.topology().topology;
        let here = |s: &&Snapshot| s.datanode_id == req.datanode_id;
        let take_snapshots = topology
            .snapshots
            .values()
            .filter(here)
            .filter(|s| s.status == SnapshotStatus::Creating)
            .map(|s| pb::SnapshotTask { snapshot_name: s.name.clone(), node_id: s.node_id.clone() })
            .collect();
        let keep_snapshots = topology.snapshots.values().filter(here).map(|s| s.name.clone()).collect();
        let nodes = topology
            .assignments(&req.datanode_id)
            .into_iter()
            .map(|(g, ng, m)| {
                let primary = ng.members.iter().find(|p| p.role == Role::Primary);
                pb::NodeAssignment {
                    node_id: m.node_id.clone(),
                    replication_group_id: g.id.clone(),
                    node_group_id: ng.id.clone(),
                    role: match m.role {
                        Role::Primary => pb::Role::Primary as i32,
                        Role::Replica => pb::Role::Replica as i32,
                    },
                    config_epoch: ng.config_epoch,
                    primary_node_id: primary.map(|p| p.node_id.clone()).unwrap_or_default(),
                    primary_address: primary
                        .and_then(|p| topology.datanodes.get(&p.datanode_id))
                        .map(|d| d.address.clone())
                        .unwrap_or_default(),
                    append_fsync: g.append_fsync.clone(),
                    slots: ng.slots.iter().map(|(a, b)| pb::SlotRange { start: *a as u32, end: *b as u32 }).collect(),
                    durability: g.durability.mode.as_str().into(),
                    min_replicas_to_ack: g.durability.min_replicas_to_ack,
                    max_replica_lag_ms: g.durability.max_replica_lag_ms,
                    pause_writes: m.role == Role::Primary && ng.handoff.is_some(),
                    // Only while the group is being created: a node that has served since
                    // never reloads the snapshot.
                    restore: g
                        .restored_from
                        .as_ref()
                        .filter(|_| m.role == Role::Primary && g.status == GroupStatus::Creating)
                        .map(|r| pb::RestoreFrom {
                            snapshot_name: r.snapshot_name.clone(),
                            datanode_address: topology
                                .datanodes
                                .get(&r.datanode_id)
                                .map(|d| d.address.clone())
                                .unwrap_or_default(),
                        }),
                    parameters: g.parameters.clone().into_iter().collect(),
                    migrating_slots: g
                        .resharding
                        .as_ref()
                        .and_then(|r| r.active.as_ref())
                        .filter(|m| m.from == ng.id)
                        .map(|m| pb::SlotRange { start: m.first as u32, end: m.last as u32 })
                        .into_iter()
                        .collect(),
                }
            })
            .collect();
        Ok(Response::new(pb::HeartbeatResponse { nodes, lease_ms: c.lease_ms(), take_snapshots, keep_snapshots }))
    }

    async fn gateway_heartbeat(
        &self,
        request: Request<pb::GatewayHeartbeatRequest>,
    ) -> Result<Response<pb::GatewayHeartbeatResponse>, Status> {
        let req = request.into_inner();
        if req.gateway_id.is_empty() || req.announce_host.is_empty() || req.gateway_id.len() > 256 {
            return Err(Status::invalid_argument("gateway_id and announce_host are required"));
        }
        let c = &self.coordinator;
        c.require_leader()?;
        c.liveness.record_gateway(&req.gateway_id);
        let gateway = crate::topology::Gateway { id: req.gateway_id, host: req.announce_host, online: true };
        if c.topology().topology.gateways.get(&gateway.id) != Some(&gateway) {
            c.propose(Change::SetGateway { gateway, at_ms: now_ms() }).await?;
        }
        Ok(Response::new(pb::GatewayHeartbeatResponse {}))
    }

    type WatchTopologyStream = ReceiverStream<Result<pb::Topology, Status>>;

    async fn watch_topology(
        &self,
        _: Request<pb::WatchTopologyRequest>,
    ) -> Result<Response<Self::WatchTopologyStream>, Status> {
        let mut rx = self.coordinator.state_machine.subscribe();
        let cancel = self.coordinator.cancel.clone();
        let (tx, out) = mpsc::channel(4);
        tokio::spawn(async move {
            loop {
                let published = rx.borrow_and_update().clone();
                if tx.send(Ok(convert::routing(&published.topology, published.index))).await.is_err() {
                    return;
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    changed = rx.changed() => if changed.is_err() { return },
                    _ = tokio::time::sleep(RESEND) => {}
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(out)))
    }
}

/// A datanode restarted: each primary it hosts may have come back without the writes of its
/// last fsync interval, which its replicas do have. Before the datanode learns its roles
/// again (this heartbeat's answer), the replica with the highest offset is promoted, so a
/// fast restart never makes the replicas resynchronize from the poorer copy — the data loss
/// that auto-restarted Redis primaries are known for. Groups with `appendfsync always` keep
/// their primary: it has every write it acknowledged.
async fn promote_past_restarted_primaries(
    c: &crate::Coordinator,
    topology: &crate::topology::Topology,
    datanode_id: &str,
) -> Result<(), Status> {
    for (g, ng, m) in topology.assignments(datanode_id) {
        if m.role != Role::Primary || !g.automatic_failover || g.append_fsync == "always" {
            continue;
        }
        let best = ng
            .members
            .iter()
            .filter(|r| r.role == Role::Replica && r.datanode_id != datanode_id)
            .filter_map(|r| c.liveness.node_status(&r.datanode_id, &r.node_id).map(|s| (r, s)))
            // Its link to the dead primary broke a moment ago, so `in_sync` may be off already.
            .filter(|(_, s)| s.role == pb::Role::Replica as i32 && !s.full_sync_in_progress)
            .max_by_key(|(_, s)| s.replication_offset);
        let Some((replica, status)) = best else { continue };
        let change = Change::Failover {
            group_id: g.id.clone(),
            node_group_id: ng.id.clone(),
            new_primary: replica.node_id.clone(),
            reason: format!(
                "datanode {datanode_id} of primary {} restarted (it may lack its last writes); promoting the replica with the highest offset ({})",
                m.node_id, status.replication_offset
            ),
            at_ms: now_ms(),
        };
        tracing::warn!(group = %g.id, node = %m.node_id, new_primary = %replica.node_id, "primary's datanode restarted; failing over");
        c.propose(change).await?;
    }
    Ok(())
}
