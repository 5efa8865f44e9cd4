//! The leader's resharding loop: drives every group's slot moves, one at a time.
//!
//! For each move: commit `BeginSlotMove` (the source's assignment then freezes the slots),
//! ask the source primary to copy them to the target primary (`ExportSlots`), and commit
//! `CompleteSlotMove` (the slots change owner, both config epochs rise) or, when the copy
//! failed, `AbortSlotMove` (the move waits for another try). A new leader finds the active
//! move in the topology and copies it again: copies are idempotent, and ownership changes
//! only in the commit, so a move survives the death of any process.

use std::sync::Arc;
use std::time::Duration;

use ferrocache_common::time::now_ms;
use ferrocache_proto::internal::v1 as pb;
use tokio_util::sync::CancellationToken;

use crate::topology::{Change, MemberStatus, ReplicationGroup, Role, SlotMove, Topology};
use crate::Coordinator;

const PERIOD: Duration = Duration::from_millis(100);
/// Longest a copy may take before the move is abandoned and retried.
const COPY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct ReshardingLoop {
    pub coordinator: Arc<Coordinator>,
}

/// What the loop does next for a group.
enum Step {
    Begin,
    Copy(SlotMove),
}

/// The primary of node group `ng` that may take part in a move: online, on a known datanode.
fn primary(topology: &Topology, g: &ReplicationGroup, ng: &str) -> Option<(String, String)> {
    let group = g.node_groups.iter().find(|n| n.id == ng)?;
    let m = group.members.iter().find(|m| m.role == Role::Primary && m.status == MemberStatus::Online)?;
    let address = topology.datanodes.get(&m.datanode_id)?.address.clone();
    Some((m.node_id.clone(), address))
}

impl ReshardingLoop {
    pub async fn run(self, cancel: CancellationToken) {
        let mut busy = false;
        loop {
            // Back to back while there is work; a short pause when there is none.
            let pause = if busy { Duration::ZERO } else { PERIOD };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
            busy = false;
            if !self.coordinator.is_leader() {
                continue;
            }
            let Some((group, step)) = self.next_step() else { continue };
            busy = true;
            match step {
                Step::Begin => {
                    let change = Change::BeginSlotMove { group_id: group.clone(), at_ms: now_ms() };
                    if let Err(e) = self.coordinator.propose(change).await {
                        tracing::warn!(%group, "slot move not begun: {e}");
                    }
                }
                Step::Copy(m) => self.copy(&group, m).await,
            }
        }
    }

    /// The first group with something to do: an active move to copy, or a next move whose
    /// node groups both have a primary online (new node groups come online first).
    fn next_step(&self) -> Option<(String, Step)> {
        let topology = self.coordinator.topology().topology;
        for g in topology.groups.values() {
            let Some(r) = &g.resharding else { continue };
            if let Some(m) = &r.active {
                return Some((g.id.clone(), Step::Copy(m.clone())));
            }
            let Some(next) = r.pending.first() else { continue };
            let ready = primary(&topology, g, &next.from).is_some()
                && primary(&topology, g, &next.to).is_some()
                && g.node_groups.iter().all(|ng| ng.handoff.is_none());
            if ready {
                return Some((g.id.clone(), Step::Begin));
            }
        }
        None
    }

    async fn copy(&self, group: &str, m: SlotMove) {
        let topology = self.coordinator.topology().topology;
        let Some(g) = topology.groups.get(group) else { return };
        let outcome = match (primary(&topology, g, &m.from), primary(&topology, g, &m.to)) {
            (Some((source, source_address)), Some((target, target_address))) => {
                let req = pb::ExportSlotsRequest {
                    node_id: source,
                    first_slot: m.first as u32,
                    last_slot: m.last as u32,
                    target_node_id: target,
                    target_address,
                };
                export(&source_address, req).await
            }
            _ => Err("a primary of the two node groups is not online".to_string()),
        };
        let change = match outcome {
            Ok(keys) => {
                tracing::info!(%group, first = m.first, last = m.last, keys, from = %m.from, to = %m.to, "slots moved");
                Change::CompleteSlotMove { group_id: group.to_string(), keys, at_ms: now_ms() }
            }
            Err(reason) => {
                tracing::warn!(%group, first = m.first, last = m.last, "slot copy failed: {reason}");
                // Give failovers a moment before the next try.
                tokio::time::sleep(Duration::from_millis(500)).await;
                Change::AbortSlotMove { group_id: group.to_string(), reason, at_ms: now_ms() }
            }
        };
        if let Err(e) = self.coordinator.propose(change).await {
            tracing::warn!(%group, "slot move step not committed: {e}");
        }
    }
}

async fn export(address: &str, req: pb::ExportSlotsRequest) -> Result<u64, String> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(COPY_TIMEOUT)
        .connect()
        .await
        .map_err(|e| format!("source {address} unreachable: {e}"))?;
    let mut client = pb::replication_client::ReplicationClient::new(ferrocache_common::credentials::channel(channel));
    client.export_slots(req).await.map(|r| r.into_inner().keys).map_err(|s| s.message().to_string())
}
