//! ModifyReplicationGroupShardConfiguration checked and turned into a `StartResharding`
//! change: which node groups stay, which are added (their members placed now), and the
//! slot moves that balance the group over the ones that stay.

use std::collections::HashSet;

use ferrocache_common::ids::{cluster_member_id, node_group_id};
use ferrocache_proto::admin::v1 as admin;
use tonic::Status;

use super::requests::{invalid, MAX_NODE_GROUPS};
use crate::error::Error;
use crate::placement::place_shards;
use crate::topology::{resharding, Change, Member, MemberStatus, NodeGroup, ReplicationGroup, Role, Topology};

fn precondition(msg: String) -> Status {
    Error::FailedPrecondition(format!("InvalidReplicationGroupState: {msg}")).into()
}

/// Plans a resharding of `g` to `req.node_group_count` node groups.
pub fn plan(
    per_move: u16,
    topology: &Topology,
    live: &HashSet<String>,
    g: &ReplicationGroup,
    req: &admin::ModifyReplicationGroupShardConfigurationRequest,
    at_ms: i64,
) -> Result<Change, Status> {
    let n = req.node_group_count;
    if !(1..=MAX_NODE_GROUPS as i32).contains(&n) {
        return Err(invalid(format!("NodeGroupCount must be between 1 and {MAX_NODE_GROUPS}, got {n}")));
    }
    let n = n as usize;
    if !g.cluster_enabled {
        return Err(precondition(format!("{} is not cluster mode enabled", g.id)));
    }
    if g.resharding.is_some() {
        return Err(precondition(format!("{} is already resharding", g.id)));
    }
    if g.node_groups.iter().any(|ng| ng.handoff.is_some()) {
        return Err(precondition(format!("{} has a primary switch under way", g.id)));
    }
    let current: Vec<String> = g.node_groups.iter().map(|ng| ng.id.clone()).collect();
    let unknown = |ids: &[String]| ids.iter().find(|id| !current.contains(id)).cloned();
    if let Some(id) = unknown(&req.node_groups_to_remove).or_else(|| unknown(&req.node_groups_to_retain)) {
        return Err(invalid(format!("node group {id} is not in {}", g.id)));
    }
    if !req.node_groups_to_remove.is_empty() && !req.node_groups_to_retain.is_empty() {
        return Err(invalid("NodeGroupsToRemove and NodeGroupsToRetain are mutually exclusive"));
    }
    let mut keep: Vec<String> = if n >= current.len() {
        if !req.node_groups_to_remove.is_empty() || !req.node_groups_to_retain.is_empty() {
            return Err(invalid("NodeGroupsToRemove/NodeGroupsToRetain are only for shrinking"));
        }
        current.clone()
    } else if !req.node_groups_to_retain.is_empty() {
        if req.node_groups_to_retain.len() != n {
            return Err(invalid(format!("NodeGroupsToRetain must name {n} node groups")));
        }
        current.iter().filter(|id| req.node_groups_to_retain.contains(id)).cloned().collect()
    } else if !req.node_groups_to_remove.is_empty() {
        if current.len() - req.node_groups_to_remove.len() != n {
            return Err(invalid(format!(
                "removing {} of {} node groups does not leave {n}",
                req.node_groups_to_remove.len(),
                current.len()
            )));
        }
        current.iter().filter(|id| !req.node_groups_to_remove.contains(id)).cloned().collect()
    } else {
        // As ElastiCache requires one of them, but the natural default is the newest go.
        current[..n].to_vec()
    };
    // New node groups: the next free ids, members placed like a new group's.
    let members = g.node_groups.first().map_or(1, |ng| ng.members.len());
    let mut add = Vec::new();
    let mut next = 0;
    while keep.len() < n {
        let id = loop {
            let id = node_group_id(next);
            next += 1;
            if !current.contains(&id) {
                break id;
            }
        };
        keep.push(id.clone());
        add.push(id);
    }
    let placed = place_shards(topology, live, &vec![(members, Vec::new()); add.len()])
        .map_err(|e| precondition(format!("InsufficientCacheClusterCapacity: {e}")))?;
    let add: Vec<NodeGroup> = add
        .into_iter()
        .zip(placed)
        .map(|(id, datanodes)| NodeGroup {
            members: datanodes
                .into_iter()
                .enumerate()
                .map(|(i, d)| Member {
                    node_id: cluster_member_id(&g.id, &id, i),
                    datanode_id: d.id,
                    role: if i == 0 { Role::Primary } else { Role::Replica },
                    preferred_az: d.zone,
                    status: MemberStatus::Creating,
                    port: 0,
                })
                .collect(),
            id,
            config_epoch: 1,
            slots: Vec::new(),
            handoff: None,
        })
        .collect();
    let all: Vec<NodeGroup> = g.node_groups.iter().cloned().chain(add.iter().cloned()).collect();
    let moves = resharding::plan(&all, &keep, per_move);
    let remove: Vec<String> = current.into_iter().filter(|id| !keep.contains(id)).collect();
    Ok(Change::StartResharding { group_id: g.id.clone(), add, moves, remove, at_ms })
}
