//! The topology model: datanodes, replication groups, node groups, members, events.
//!
//! Pure and deterministic: it is the Raft state machine's state, changed only by
//! [`Topology::apply`] on committed [`Change`]s, so every coordinator holds the same copy.
//! Decisions that need judgement (placement, when a group is available) are made by the
//! leader *before* proposing; `apply` only checks that they still hold.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// Events kept for DescribeEvents (oldest dropped first).
pub const MAX_EVENTS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Datanode {
    pub id: String,
    pub address: String,
    pub zone: String,
    pub registered_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Primary,
    Replica,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberStatus {
    /// Placed, not yet reporting.
    Creating,
    /// Reporting; a replica is in sync with its primary.
    Online,
    /// A replica that is reporting but still (re)syncing.
    Syncing,
    /// Its datanode stopped reporting.
    Offline,
}

impl MemberStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            MemberStatus::Creating => "creating",
            MemberStatus::Online => "online",
            MemberStatus::Syncing => "syncing",
            MemberStatus::Offline => "offline",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// CacheClusterId, e.g. `default-002`.
    pub node_id: String,
    pub datanode_id: String,
    pub role: Role,
    pub preferred_az: String,
    pub status: MemberStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeGroup {
    /// `0001`, ...
    pub id: String,
    pub config_epoch: u64,
    /// Inclusive slot ranges.
    pub slots: Vec<(u16, u16)>,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupStatus {
    Creating,
    Available,
    Modifying,
    Deleting,
}

impl GroupStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            GroupStatus::Creating => "creating",
            GroupStatus::Available => "available",
            GroupStatus::Modifying => "modifying",
            GroupStatus::Deleting => "deleting",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationGroup {
    pub id: String,
    pub description: String,
    pub status: GroupStatus,
    pub append_fsync: String,
    pub primary_port: u16,
    pub reader_port: u16,
    pub created_ms: i64,
    pub node_groups: Vec<NodeGroup>,
}

impl ReplicationGroup {
    pub fn members(&self) -> impl Iterator<Item = (&NodeGroup, &Member)> {
        self.node_groups.iter().flat_map(|ng| ng.members.iter().map(move |m| (ng, m)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at_ms: i64,
    pub source_id: String,
    /// "replication-group" | "cache-cluster" | "datanode"
    pub source_type: String,
    pub message: String,
}

/// A committed change. Times are chosen by the proposer so every replica applies the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    RegisterDatanode {
        datanode: Datanode,
    },
    CreateReplicationGroup {
        group: ReplicationGroup,
        requested_port: Option<u16>,
        port_base: u16,
    },
    DeleteReplicationGroup {
        id: String,
        at_ms: i64,
    },
    /// Promote `new_primary` in its node group (the old primary becomes a replica) and raise
    /// the node group's config epoch.
    Failover {
        group_id: String,
        node_group_id: String,
        new_primary: String,
        reason: String,
        at_ms: i64,
    },
    /// Member statuses observed by the leader's health loop, and the group statuses that follow.
    SetStatuses {
        at_ms: i64,
        members: Vec<(String, String, MemberStatus)>,
        groups: Vec<(String, GroupStatus)>,
    },
}

/// What applying a change produced (returned to the proposer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    Ok,
    Group(ReplicationGroup),
    /// The change no longer holds (a race with another change); nothing was applied.
    Rejected(Rejection),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rejection {
    AlreadyExists(String),
    NotFound(String),
    PortInUse(u16),
    NoFreePort,
    NotAReplica(String),
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::AlreadyExists(id) => write!(f, "replication group {id} already exists"),
            Rejection::NotFound(id) => write!(f, "replication group {id} not found"),
            Rejection::PortInUse(p) => write!(f, "port {p} (or {}) is used by another replication group", p + 1),
            Rejection::NoFreePort => write!(f, "no free endpoint port pair is left"),
            Rejection::NotAReplica(id) => write!(f, "{id} is not a replica of that node group"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Topology {
    pub datanodes: BTreeMap<String, Datanode>,
    pub groups: BTreeMap<String, ReplicationGroup>,
    pub events: VecDeque<Event>,
}

impl Topology {
    fn event(&mut self, at_ms: i64, source_type: &str, source_id: &str, message: String) {
        self.events.push_back(Event { at_ms, source_id: source_id.into(), source_type: source_type.into(), message });
        while self.events.len() > MAX_EVENTS {
            self.events.pop_front();
        }
    }

    fn port_taken(&self, port: u16) -> bool {
        self.groups
            .values()
            .any(|g| [g.primary_port, g.reader_port].iter().any(|&p| p == port || p == port.wrapping_add(1)))
    }

    pub fn apply(&mut self, change: Change) -> Outcome {
        match change {
            Change::RegisterDatanode { datanode } => {
                let known = self.datanodes.get(&datanode.id);
                let message = match known {
                    None => format!(
                        "Datanode {} registered at {} in zone '{}'",
                        datanode.id, datanode.address, datanode.zone
                    ),
                    Some(old) => format!(
                        "Datanode {} moved from {} to {} (zone '{}')",
                        datanode.id, old.address, datanode.address, datanode.zone
                    ),
                };
                self.event(datanode.registered_ms, "datanode", &datanode.id.clone(), message);
                self.datanodes.insert(datanode.id.clone(), datanode);
                Outcome::Ok
            }
            Change::CreateReplicationGroup { mut group, requested_port, port_base } => {
                if self.groups.contains_key(&group.id) {
                    return Outcome::Rejected(Rejection::AlreadyExists(group.id));
                }
                let port = match requested_port {
                    Some(p) if self.port_taken(p) => return Outcome::Rejected(Rejection::PortInUse(p)),
                    Some(p) => p,
                    None => match (port_base..u16::MAX - 1).step_by(2).find(|&p| !self.port_taken(p)) {
                        Some(p) => p,
                        None => return Outcome::Rejected(Rejection::NoFreePort),
                    },
                };
                group.primary_port = port;
                group.reader_port = port + 1;
                let n = group.members().count();
                self.event(
                    group.created_ms,
                    "replication-group",
                    &group.id,
                    format!("Replication group {} created with {n} nodes", group.id),
                );
                let created: Vec<(String, String)> = group
                    .members()
                    .map(|(_, m)| {
                        let msg = format!(
                            "Cache cluster {} created on datanode {} as {}",
                            m.node_id,
                            m.datanode_id,
                            role_name(m.role)
                        );
                        (m.node_id.clone(), msg)
                    })
                    .collect();
                for (node_id, msg) in created {
                    self.event(group.created_ms, "cache-cluster", &node_id, msg);
                }
                self.groups.insert(group.id.clone(), group.clone());
                Outcome::Group(group)
            }
            Change::DeleteReplicationGroup { id, at_ms } => match self.groups.remove(&id) {
                Some(mut g) => {
                    self.event(at_ms, "replication-group", &id, format!("Replication group {id} deleted"));
                    g.status = GroupStatus::Deleting;
                    Outcome::Group(g)
                }
                None => Outcome::Rejected(Rejection::NotFound(id)),
            },
            Change::Failover { group_id, node_group_id, new_primary, reason, at_ms } => {
                let Some(ng) = self
                    .groups
                    .get_mut(&group_id)
                    .and_then(|g| g.node_groups.iter_mut().find(|ng| ng.id == node_group_id))
                else {
                    return Outcome::Rejected(Rejection::NotFound(group_id));
                };
                if !ng.members.iter().any(|m| m.node_id == new_primary && m.role == Role::Replica) {
                    return Outcome::Rejected(Rejection::NotAReplica(new_primary));
                }
                let mut old = String::new();
                for m in &mut ng.members {
                    if m.role == Role::Primary {
                        m.role = Role::Replica;
                        old = m.node_id.clone();
                    } else if m.node_id == new_primary {
                        m.role = Role::Primary;
                    }
                }
                ng.config_epoch += 1;
                let epoch = ng.config_epoch;
                let msg = format!("Failover from {old} to {new_primary} in node group {node_group_id} (config epoch {epoch}): {reason}");
                self.event(at_ms, "replication-group", &group_id, msg);
                Outcome::Ok
            }
            Change::SetStatuses { at_ms, members, groups } => {
                let mut events = Vec::new();
                for (group_id, node_id, status) in members {
                    if let Some(g) = self.groups.get_mut(&group_id) {
                        for ng in &mut g.node_groups {
                            for m in &mut ng.members {
                                if m.node_id == node_id && m.status != status {
                                    events.push((
                                        m.node_id.clone(),
                                        format!(
                                            "Cache cluster {} is {} (was {})",
                                            m.node_id,
                                            status.as_str(),
                                            m.status.as_str()
                                        ),
                                    ));
                                    m.status = status;
                                }
                            }
                        }
                    }
                }
                for (group_id, status) in groups {
                    if let Some(g) = self.groups.get_mut(&group_id) {
                        if g.status != status {
                            g.status = status;
                            events.push((
                                group_id.clone(),
                                format!("Replication group {group_id} is {}", status.as_str()),
                            ));
                        }
                    }
                }
                for (source, message) in events {
                    let kind = if self.groups.contains_key(&source) { "replication-group" } else { "cache-cluster" };
                    self.event(at_ms, kind, &source, message);
                }
                Outcome::Ok
            }
        }
    }

    /// Members hosted by a datanode, with their groups.
    pub fn assignments(&self, datanode_id: &str) -> Vec<(&ReplicationGroup, &NodeGroup, &Member)> {
        self.groups
            .values()
            .flat_map(|g| g.members().map(move |(ng, m)| (g, ng, m)))
            .filter(|(_, _, m)| m.datanode_id == datanode_id)
            .collect()
    }
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Primary => "primary",
        Role::Replica => "replica",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: &str) -> ReplicationGroup {
        ReplicationGroup {
            id: id.into(),
            description: String::new(),
            status: GroupStatus::Creating,
            append_fsync: "everysec".into(),
            primary_port: 0,
            reader_port: 0,
            created_ms: 1,
            node_groups: vec![NodeGroup {
                id: "0001".into(),
                config_epoch: 1,
                slots: vec![(0, 16383)],
                members: vec![Member {
                    node_id: format!("{id}-001"),
                    datanode_id: "dn1".into(),
                    role: Role::Primary,
                    preferred_az: "a".into(),
                    status: MemberStatus::Creating,
                }],
            }],
        }
    }

    #[test]
    fn ports_are_allocated_in_pairs_and_checked() {
        let mut t = Topology::default();
        let Outcome::Group(g) =
            t.apply(Change::CreateReplicationGroup { group: group("a"), requested_port: None, port_base: 6379 })
        else {
            panic!()
        };
        assert_eq!((g.primary_port, g.reader_port), (6379, 6380));
        let Outcome::Group(g) =
            t.apply(Change::CreateReplicationGroup { group: group("b"), requested_port: None, port_base: 6379 })
        else {
            panic!()
        };
        assert_eq!(g.primary_port, 6381);
        assert_eq!(
            t.apply(Change::CreateReplicationGroup { group: group("c"), requested_port: Some(6380), port_base: 6379 }),
            Outcome::Rejected(Rejection::PortInUse(6380))
        );
        assert_eq!(
            t.apply(Change::CreateReplicationGroup { group: group("a"), requested_port: None, port_base: 6379 }),
            Outcome::Rejected(Rejection::AlreadyExists("a".into()))
        );
    }

    #[test]
    fn statuses_and_deletion_leave_events() {
        let mut t = Topology::default();
        t.apply(Change::CreateReplicationGroup { group: group("a"), requested_port: Some(7000), port_base: 6379 });
        t.apply(Change::SetStatuses {
            at_ms: 5,
            members: vec![("a".into(), "a-001".into(), MemberStatus::Online)],
            groups: vec![("a".into(), GroupStatus::Available)],
        });
        assert_eq!(t.groups["a"].status, GroupStatus::Available);
        assert_eq!(t.groups["a"].node_groups[0].members[0].status, MemberStatus::Online);
        assert!(matches!(t.apply(Change::DeleteReplicationGroup { id: "a".into(), at_ms: 9 }), Outcome::Group(_)));
        assert!(t.groups.is_empty());
        assert_eq!(
            t.apply(Change::DeleteReplicationGroup { id: "a".into(), at_ms: 9 }),
            Outcome::Rejected(Rejection::NotFound("a".into()))
        );
        assert!(t.events.iter().any(|e| e.message.contains("deleted")));
    }

    #[test]
    fn failover_swaps_roles_and_raises_the_epoch() {
        let mut t = Topology::default();
        let mut g = group("a");
        g.node_groups[0].members.push(Member {
            node_id: "a-002".into(),
            datanode_id: "dn2".into(),
            role: Role::Replica,
            preferred_az: "b".into(),
            status: MemberStatus::Online,
        });
        t.apply(Change::CreateReplicationGroup { group: g, requested_port: Some(7000), port_base: 6379 });
        let failover = |new: &str| Change::Failover {
            group_id: "a".into(),
            node_group_id: "0001".into(),
            new_primary: new.into(),
            reason: "test".into(),
            at_ms: 3,
        };
        assert_eq!(t.apply(failover("a-001")), Outcome::Rejected(Rejection::NotAReplica("a-001".into())));
        assert_eq!(t.apply(failover("a-002")), Outcome::Ok);
        let ng = &t.groups["a"].node_groups[0];
        assert_eq!(ng.config_epoch, 2);
        let roles: Vec<(&str, Role)> = ng.members.iter().map(|m| (m.node_id.as_str(), m.role)).collect();
        assert_eq!(roles, vec![("a-001", Role::Replica), ("a-002", Role::Primary)]);
        assert!(t.events.iter().any(|e| e.message.starts_with("Failover from a-001 to a-002")));
    }
}
