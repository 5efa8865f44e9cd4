//! The leader's health loop: turns what datanodes report into committed member statuses
//! (online / syncing / offline) and moves new groups from `creating` to `available` once
//! every member is online. Only changes are proposed, so a steady cluster writes nothing.

use std::sync::Arc;
use std::time::Duration;

use ferrocache_common::time::{now_ms, rfc3339};
use ferrocache_proto::internal::v1 as pb;
use tokio_util::sync::CancellationToken;

use crate::topology::{Change, GroupStatus, MemberStatus, Role};
use crate::Coordinator;

const PERIOD: Duration = Duration::from_millis(250);

/// A planned switch whose target has not caught up by then is abandoned (writes resume).
const HANDOFF_TIMEOUT_MS: i64 = 10_000;

pub struct HealthLoop {
    pub coordinator: Arc<Coordinator>,
}

impl HealthLoop {
    pub async fn run(self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(PERIOD);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            if !self.coordinator.is_leader() {
                continue;
            }
            if let Some(change) = self.failover() {
                tracing::warn!(?change, "automatic failover");
                if let Err(e) = self.coordinator.propose(change).await {
                    tracing::warn!("failover not committed: {e}");
                }
                continue;
            }
            if let Some(change) = self.handoff() {
                tracing::info!(?change, "planned switch");
                if let Err(e) = self.coordinator.propose(change).await {
                    tracing::warn!("planned switch step not committed: {e}");
                }
                continue;
            }
            if let Some(change) = self.snapshots() {
                tracing::info!(?change, "automatic snapshots");
                if let Err(e) = self.coordinator.propose(change).await {
                    tracing::warn!("snapshot change not committed: {e}");
                }
                continue;
            }
            if let Some(change) = self.silent_gateway() {
                if let Err(e) = self.coordinator.propose(change).await {
                    tracing::debug!("gateway status not committed: {e}");
                }
                continue;
            }
            if let Some(change) = self.observe() {
                if let Err(e) = self.coordinator.propose(change).await {
                    tracing::debug!("status update not committed: {e}");
                }
            }
        }
    }

    /// A primary whose datanode has been silent past the timeout *and* whose replicas all
    /// report their link to it down (two kinds of observer agree) is replaced by the
    /// fully synced replica with the highest offset. Its lease expired before the timeout.
    /// Groups with automatic failover disabled are left alone.
    fn failover(&self) -> Option<Change> {
        let c = &self.coordinator;
        if !c.liveness.can_judge() {
            return None;
        }
        let topology = c.topology().topology;
        for g in topology.groups.values().filter(|g| g.automatic_failover) {
            for ng in &g.node_groups {
                let Some(primary) = ng.members.iter().find(|m| m.role == Role::Primary) else { continue };
                if c.liveness.is_live(&primary.datanode_id) {
                    continue;
                }
                let reports: Vec<(&str, pb::NodeStatus)> = ng
                    .members
                    .iter()
                    .filter(|m| m.role == Role::Replica)
                    .filter_map(|m| c.liveness.node_status(&m.datanode_id, &m.node_id).map(|s| (m.node_id.as_str(), s)))
                    .collect();
                // A replica that still hears the primary vetoes: only our link may be broken.
                // The veto lapses after twice the timeout: by then the primary's lease has
                // long expired (it refuses writes), so promoting is safe and ends the outage,
                // and the replicas that still hear it have everything it wrote.
                let silent = c.liveness.silent_for(&primary.datanode_id);
                if reports.iter().any(|(_, s)| s.in_sync) && silent < c.liveness.timeout() * 2 {
                    continue;
                }
                let best = reports
                    .iter()
                    .filter(|(_, s)| s.role == pb::Role::Replica as i32 && !s.full_sync_in_progress)
                    .max_by_key(|(_, s)| s.replication_offset);
                if let Some((node_id, status)) = best {
                    return Some(Change::Failover {
                        group_id: g.id.clone(),
                        node_group_id: ng.id.clone(),
                        new_primary: node_id.to_string(),
                        reason: format!(
                            "primary {} on datanode {} unreachable; promoting the replica with the highest offset ({})",
                            primary.node_id, primary.datanode_id, status.replication_offset
                        ),
                        at_ms: now_ms(),
                    });
                }
            }
        }
        None
    }

    /// Drives planned switches: once the primary reports its writes paused and the target
    /// replica reports the same offset, the target is promoted (nothing acknowledged is left
    /// behind); a switch that does not get there in time is abandoned and writes resume.
    fn handoff(&self) -> Option<Change> {
        let c = &self.coordinator;
        let topology = c.topology().topology;
        let now = now_ms();
        for g in topology.groups.values() {
            for ng in &g.node_groups {
                let Some(h) = &ng.handoff else { continue };
                let status = |node_id: &str| {
                    let m = ng.members.iter().find(|m| m.node_id == node_id)?;
                    c.liveness.node_status(&m.datanode_id, &m.node_id)
                };
                let primary = ng.members.iter().find(|m| m.role == Role::Primary).and_then(|p| status(&p.node_id));
                let target = status(&h.target);
                if let (Some(p), Some(t)) = (&primary, &target) {
                    if p.writes_paused && t.in_sync && t.replication_offset >= p.replication_offset {
                        return Some(Change::Failover {
                            group_id: g.id.clone(),
                            node_group_id: ng.id.clone(),
                            new_primary: h.target.clone(),
                            reason: format!(
                                "planned ({}); {} caught up at offset {}",
                                h.reason, h.target, t.replication_offset
                            ),
                            at_ms: now,
                        });
                    }
                }
                if now - h.started_ms > HANDOFF_TIMEOUT_MS {
                    let why = match (primary, target) {
                        (None, _) => "the primary stopped reporting".to_string(),
                        (_, None) => format!("{} stopped reporting", h.target),
                        (Some(p), Some(t)) => format!(
                            "{} did not catch up within {} ms (offset {} of {})",
                            h.target, HANDOFF_TIMEOUT_MS, t.replication_offset, p.replication_offset
                        ),
                    };
                    return Some(Change::AbortHandoff {
                        group_id: g.id.clone(),
                        node_group_id: ng.id.clone(),
                        reason: why,
                        at_ms: now,
                    });
                }
            }
        }
        None
    }

    /// Automatic snapshots: one a day per group with a retention limit, taken inside its
    /// snapshot window; those older than the limit are deleted.
    fn snapshots(&self) -> Option<Change> {
        let c = &self.coordinator;
        let topology = c.topology().topology;
        let now = now_ms();
        const DAY_MS: i64 = 86_400_000;
        let expired = topology.snapshots.values().find(|s| {
            s.automatic
                && topology
                    .groups
                    .get(&s.group_id)
                    .is_some_and(|g| now - s.created_ms > g.snapshot_retention_limit as i64 * DAY_MS)
        });
        if let Some(s) = expired {
            return Some(Change::DeleteSnapshot { name: s.name.clone(), at_ms: now });
        }
        let minute = (now.rem_euclid(DAY_MS) / 60_000) as u32;
        for g in topology.groups.values() {
            if g.snapshot_retention_limit == 0 || g.status != GroupStatus::Available {
                continue;
            }
            let Ok((start, end)) = crate::grpc::requests::snapshot_window(&g.snapshot_window) else { continue };
            let inside = if start <= end { (start..end).contains(&minute) } else { minute >= start || minute < end };
            // Once per window: nothing automatic of this group in the last ~day.
            let recent = topology
                .snapshots
                .values()
                .any(|s| s.automatic && s.group_id == g.id && now - s.created_ms < DAY_MS - 3_600_000);
            if !inside || recent {
                continue;
            }
            let stamp: String =
                rfc3339(now).chars().take(16).map(|ch| if ch == ':' || ch == 'T' { '-' } else { ch }).collect();
            let name = format!("automatic.{}-{stamp}", g.id);
            match crate::grpc::admin::new_snapshot(c, g, &name, true, now) {
                Ok(snapshot) => return Some(Change::CreateSnapshot { snapshot }),
                Err(e) => tracing::debug!(group = %g.id, "automatic snapshot not possible yet: {}", e.message()),
            }
        }
        None
    }

    /// A gateway listed online that stopped reporting is listed offline, so cluster clients
    /// are no longer sent to it.
    fn silent_gateway(&self) -> Option<Change> {
        let c = &self.coordinator;
        if !c.liveness.can_judge() {
            return None;
        }
        let topology = c.topology().topology;
        let g = topology.gateways.values().find(|g| g.online && !c.liveness.gateway_live(&g.id))?;
        let gateway = crate::topology::Gateway { online: false, ..g.clone() };
        Some(Change::SetGateway { gateway, at_ms: now_ms() })
    }

    fn observe(&self) -> Option<Change> {
        let c = &self.coordinator;
        let topology = c.topology().topology;
        let (mut members, mut groups) = (Vec::new(), Vec::new());
        for g in topology.groups.values() {
            let mut all_online = true;
            for (_, m) in g.members() {
                let status = match c.liveness.node_status(&m.datanode_id, &m.node_id) {
                    Some(s) if s.role == pb::Role::Primary as i32 || s.in_sync => MemberStatus::Online,
                    Some(_) => MemberStatus::Syncing,
                    // The datanode is up but has not opened the node yet.
                    None if c.liveness.is_live(&m.datanode_id) => m.status,
                    None if c.liveness.can_judge() => MemberStatus::Offline,
                    None => m.status,
                };
                if status != MemberStatus::Online {
                    all_online = false;
                }
                if status != m.status {
                    members.push((g.id.clone(), m.node_id.clone(), status));
                }
            }
            if g.status == GroupStatus::Creating && all_online {
                groups.push((g.id.clone(), GroupStatus::Available));
            }
        }
        if members.is_empty() && groups.is_empty() {
            return None;
        }
        Some(Change::SetStatuses { at_ms: now_ms(), members, groups })
    }
}
