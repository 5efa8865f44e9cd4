//! The topology model: datanodes, replication groups, node groups, members, events.
//!
//! Pure and deterministic: it is the Raft state machine's state, changed only by
//! [`Topology::apply`] on committed [`Change`]s, so every coordinator holds the same copy.
//! Decisions that need judgement (placement, when a group is available) are made by the
//! leader *before* proposing; `apply` only checks that they still hold.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

pub mod access;
pub mod resharding;
pub use access::{AuthTokenUpdate, User, UserGroup, UserUpdate};
pub use resharding::{Resharding, SlotMove};

/// Events kept for DescribeEvents (oldest dropped first).
pub const MAX_EVENTS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Datanode {
    pub id: String,
    pub address: String,
    pub zone: String,
    pub registered_ms: i64,
}

/// A gateway that has reported to the coordinators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gateway {
    pub id: String,
    pub host: String,
    pub online: bool,
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
    /// Cluster mode enabled: the gateway port presenting this member as a Redis Cluster
    /// node (0 otherwise).
    #[serde(default)]
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeGroup {
    /// `0001`, ...
    pub id: String,
    pub config_epoch: u64,
    /// Inclusive slot ranges.
    pub slots: Vec<(u16, u16)>,
    pub members: Vec<Member>,
    /// A planned switch under way: the primary pauses writes until `target` has caught up.
    #[serde(default)]
    pub handoff: Option<Handoff>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// The replica to promote.
    pub target: String,
    pub started_ms: i64,
    pub reason: String,
}

/// TLS on a group's Redis endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransitEncryption {
    /// TLS and plain-text clients are both served (moving clients over).
    Preferred,
    /// Plain-text clients are refused.
    Required,
}

impl TransitEncryption {
    pub fn as_str(&self) -> &'static str {
        match self {
            TransitEncryption::Preferred => "preferred",
            TransitEncryption::Required => "required",
        }
    }
}

/// ModifyReplicationGroup's TLS change (an enum, not `Option<Option<_>>`: JSON would not
/// tell "turn off" from "unchanged").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransitSetting {
    Off,
    On(TransitEncryption),
}

impl TransitSetting {
    pub fn mode(self) -> Option<TransitEncryption> {
        match self {
            TransitSetting::Off => None,
            TransitSetting::On(m) => Some(m),
        }
    }
}

/// When a primary answers a write (see docs/failover.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DurabilityMode {
    /// Asynchronous replication, as Redis does: answered once applied on the primary.
    #[default]
    None,
    /// Asynchronous, but refused while the most up-to-date replica lags past a bound.
    Async,
    /// Answered only once `min_replicas_to_ack` replicas have the write.
    Sync,
}

impl DurabilityMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            DurabilityMode::None => "none",
            DurabilityMode::Async => "async",
            DurabilityMode::Sync => "sync",
        }
    }

    pub fn parse(s: &str) -> Option<DurabilityMode> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Some(DurabilityMode::None),
            "async" => Some(DurabilityMode::Async),
            "sync" => Some(DurabilityMode::Sync),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Durability {
    pub mode: DurabilityMode,
    pub min_replicas_to_ack: u32,
    pub max_replica_lag_ms: u64,
}

impl Default for Durability {
    fn default() -> Durability {
        Durability { mode: DurabilityMode::None, min_replicas_to_ack: 1, max_replica_lag_ms: 1000 }
    }
}

fn enabled() -> bool {
    true
}

fn default_snapshot_window() -> String {
    "05:00-06:00".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotStatus {
    Creating,
    Available,
    Failed,
}

impl SnapshotStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            SnapshotStatus::Creating => "creating",
            SnapshotStatus::Available => "available",
            SnapshotStatus::Failed => "failed",
        }
    }
}

/// A point-in-time copy of a group, kept as a file on one datanode (docs/snapshots.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub name: String,
    pub group_id: String,
    pub group_description: String,
    /// The member it is taken from, and its datanode (which keeps the file).
    pub node_id: String,
    pub datanode_id: String,
    /// Taken by the snapshot window (deleted after the retention limit) rather than on request.
    pub automatic: bool,
    pub created_ms: i64,
    pub status: SnapshotStatus,
    pub key_count: u64,
    pub bytes: u64,
    pub failure: String,
    pub num_cache_clusters: u32,
    pub append_fsync: String,
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
    #[serde(default)]
    pub durability: Durability,
    #[serde(default = "enabled")]
    pub automatic_failover: bool,
    #[serde(default)]
    pub multi_az: bool,
    /// Days automatic snapshots are kept; 0 = none are taken.
    #[serde(default)]
    pub snapshot_retention_limit: u32,
    /// Daily UTC window "hh:mm-hh:mm" for automatic snapshots.
    #[serde(default = "default_snapshot_window")]
    pub snapshot_window: String,
    /// The snapshot the group was restored from (its primary loads it when first opened).
    #[serde(default)]
    pub restored_from: Option<RestoreSource>,
    /// Redis parameters set on the group (normalized values; unset ones are defaults).
    #[serde(default)]
    pub parameters: std::collections::BTreeMap<String, String>,
    /// Cluster mode enabled: node groups own slot ranges, cluster clients connect to the
    /// configuration endpoint and the members' ports.
    #[serde(default)]
    pub cluster_enabled: bool,
    /// Cluster mode enabled: the configuration endpoint's port (0 otherwise).
    #[serde(default)]
    pub configuration_port: u16,
    /// Slots moving between node groups (ModifyReplicationGroupShardConfiguration).
    #[serde(default)]
    pub resharding: Option<Resharding>,
    /// SHA-256 of each AUTH token clients may give (two during a rotation).
    #[serde(default)]
    pub auth_tokens: Vec<String>,
    #[serde(default)]
    pub auth_token_modified_ms: i64,
    /// RBAC: user groups whose users may connect (exclusive with tokens).
    #[serde(default)]
    pub user_group_ids: Vec<String>,
    /// TLS on the endpoints (None: off).
    #[serde(default)]
    pub transit_encryption: Option<TransitEncryption>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreSource {
    pub snapshot_name: String,
    pub datanode_id: String,
}

impl ReplicationGroup {
    pub fn members(&self) -> impl Iterator<Item = (&NodeGroup, &Member)> {
        self.node_groups.iter().flat_map(|ng| ng.members.iter().map(move |m| (ng, m)))
    }

    pub fn node_group_mut(&mut self, id: &str) -> Option<&mut NodeGroup> {
        self.node_groups.iter_mut().find(|ng| ng.id == id)
    }

    /// Replicas per node group (the first node group's count; all are kept equal).
    pub fn replica_count(&self) -> usize {
        self.node_groups.first().map_or(0, |ng| ng.members.iter().filter(|m| m.role == Role::Replica).count())
    }
}

/// A group's settings that ModifyReplicationGroup changes; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub description: Option<String>,
    pub durability: Option<Durability>,
    pub automatic_failover: Option<bool>,
    pub multi_az: Option<bool>,
    pub snapshot_retention_limit: Option<u32>,
    pub snapshot_window: Option<String>,
    /// Parameters to set (merged into the group's).
    #[serde(default)]
    pub parameters: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    pub auth_token: Option<AuthTokenUpdate>,
    #[serde(default)]
    pub user_groups_to_add: Vec<String>,
    #[serde(default)]
    pub user_groups_to_remove: Vec<String>,
    #[serde(default)]
    pub transit_encryption: Option<TransitSetting>,
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
        group: Box<ReplicationGroup>,
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
    /// ModifyReplicationGroup's setting changes.
    ModifyReplicationGroup {
        id: String,
        settings: Settings,
        at_ms: i64,
    },
    /// Starts a planned switch to `target` (the primary pauses writes until it catches up).
    BeginHandoff {
        group_id: String,
        node_group_id: String,
        target: String,
        reason: String,
        at_ms: i64,
    },
    /// Gives up a planned switch (the primary takes writes again).
    AbortHandoff {
        group_id: String,
        node_group_id: String,
        reason: String,
        at_ms: i64,
    },
    /// New replicas (placed by the leader) join node groups.
    AddReplicas {
        group_id: String,
        /// (node group id, member)
        members: Vec<(String, Member)>,
        at_ms: i64,
    },
    /// Replicas leave their node groups (their data is deleted).
    RemoveReplicas {
        group_id: String,
        node_ids: Vec<String>,
        at_ms: i64,
    },
    CreateSnapshot {
        snapshot: Snapshot,
    },
    /// What the datanode reported after writing (or failing to write) the file.
    SnapshotDone {
        name: String,
        ok: bool,
        key_count: u64,
        bytes: u64,
        error: String,
        at_ms: i64,
    },
    DeleteSnapshot {
        name: String,
        at_ms: i64,
    },
    /// Resharding begins: new node groups join (members placed, no slots yet) and the
    /// moves to make are recorded.
    StartResharding {
        group_id: String,
        add: Vec<NodeGroup>,
        moves: Vec<SlotMove>,
        remove: Vec<String>,
        at_ms: i64,
    },
    /// The next move becomes active: its slots freeze for writes on the source.
    BeginSlotMove {
        group_id: String,
        at_ms: i64,
    },
    /// The active move's keys are on the target: its slots change owner and both node
    /// groups' config epochs rise. After the last move, emptied node groups leave.
    CompleteSlotMove {
        group_id: String,
        keys: u64,
        at_ms: i64,
    },
    /// The active move failed (a primary was lost, a copy broke): it goes back to the front
    /// of the queue, the source takes writes again.
    AbortSlotMove {
        group_id: String,
        reason: String,
        at_ms: i64,
    },
    /// A gateway reported (online) or went silent (offline).
    SetGateway {
        gateway: Gateway,
        at_ms: i64,
    },
    CreateUser {
        user: User,
    },
    ModifyUser {
        id: String,
        update: UserUpdate,
        at_ms: i64,
    },
    DeleteUser {
        id: String,
        at_ms: i64,
    },
    CreateUserGroup {
        group: UserGroup,
    },
    ModifyUserGroup {
        id: String,
        add: Vec<String>,
        remove: Vec<String>,
        at_ms: i64,
    },
    DeleteUserGroup {
        id: String,
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
    Group(Box<ReplicationGroup>),
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
    /// Another planned switch is under way in that node group.
    HandoffInProgress(String),
    NoHandoff(String),
    MemberExists(String),
    SnapshotExists(String),
    SnapshotNotFound(String),
    ReshardingInProgress(String),
    NoSlotMove(String),
    UserExists(String),
    UserNotFound(String),
    UserGroupExists(String),
    UserGroupNotFound(String),
    /// (user, user group)
    UserInUse(String, String),
    /// (user group, replication group)
    UserGroupInUse(String, String),
    NoDefaultUser(String),
    BuiltinUser,
    /// A group would have both AUTH tokens and user groups.
    AuthConflict(String),
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::AlreadyExists(id) => write!(f, "replication group {id} already exists"),
            Rejection::NotFound(id) => write!(f, "replication group {id} not found"),
            Rejection::PortInUse(p) => write!(f, "port {p} (or {}) is used by another replication group", p + 1),
            Rejection::NoFreePort => write!(f, "no free endpoint port pair is left"),
            Rejection::NotAReplica(id) => write!(f, "{id} is not a replica of that node group"),
            Rejection::HandoffInProgress(ng) => write!(f, "a primary switch is already under way in node group {ng}"),
            Rejection::NoHandoff(ng) => write!(f, "no primary switch is under way in node group {ng}"),
            Rejection::MemberExists(id) => write!(f, "cache cluster {id} already exists"),
            Rejection::SnapshotExists(n) => write!(f, "snapshot {n} already exists"),
            Rejection::SnapshotNotFound(n) => write!(f, "snapshot {n} not found"),
            Rejection::ReshardingInProgress(g) => write!(f, "replication group {g} is already resharding"),
            Rejection::NoSlotMove(g) => write!(f, "replication group {g} has no slot move to take this step"),
            Rejection::UserExists(u) => write!(f, "user {u} already exists"),
            Rejection::UserNotFound(u) => write!(f, "user {u} not found"),
            Rejection::UserGroupExists(u) => write!(f, "user group {u} already exists"),
            Rejection::UserGroupNotFound(u) => write!(f, "user group {u} not found"),
            Rejection::UserInUse(u, ug) => write!(f, "user {u} belongs to user group {ug}; remove it there first"),
            Rejection::UserGroupInUse(ug, g) => {
                write!(f, "user group {ug} is used by replication group {g}; remove it there first")
            }
            Rejection::NoDefaultUser(ug) => {
                write!(f, "user group {ug} must include a user whose user name is 'default'")
            }
            Rejection::BuiltinUser => write!(f, "the built-in default user cannot be modified or deleted"),
            Rejection::AuthConflict(g) => write!(
                f,
                "replication group {g} cannot have both an AUTH token and user groups (remove the token with AuthTokenUpdateStrategy DELETE in the same call)"
            ),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Topology {
    pub datanodes: BTreeMap<String, Datanode>,
    pub groups: BTreeMap<String, ReplicationGroup>,
    pub events: VecDeque<Event>,
    #[serde(default)]
    pub snapshots: BTreeMap<String, Snapshot>,
    #[serde(default)]
    pub users: BTreeMap<String, User>,
    #[serde(default)]
    pub user_groups: BTreeMap<String, UserGroup>,
    #[serde(default)]
    pub gateways: BTreeMap<String, Gateway>,
}

impl Topology {
    pub(crate) fn event(&mut self, at_ms: i64, source_type: &str, source_id: &str, message: String) {
        self.events.push_back(Event { at_ms, source_id: source_id.into(), source_type: source_type.into(), message });
        while self.events.len() > MAX_EVENTS {
            self.events.pop_front();
        }
    }

    /// Every port a group's endpoints use on the gateways.
    pub(crate) fn ports_in_use(&self) -> std::collections::BTreeSet<u16> {
        let mut used = std::collections::BTreeSet::new();
        for g in self.groups.values() {
            used.extend([g.primary_port, g.reader_port]);
            used.extend(g.members().map(|(_, m)| m.port).filter(|&p| p != 0));
        }
        used
    }

    /// Whether the `len` ports from `first` are all free (and below the last port).
    fn ports_free(used: &std::collections::BTreeSet<u16>, first: u16, len: usize) -> bool {
        (first as usize + len) < u16::MAX as usize && used.range(first..first + len as u16).next().is_none()
    }

    /// The lowest free port from `from` on (for members added to a cluster-mode group).
    pub(crate) fn free_port_from(used: &std::collections::BTreeSet<u16>, from: u16) -> Option<u16> {
        (from..u16::MAX - 1).find(|p| !used.contains(p))
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
                if let Some(ug) = group.user_group_ids.iter().find(|u| !self.user_groups.contains_key(*u)) {
                    return Outcome::Rejected(Rejection::UserGroupNotFound(ug.clone()));
                }
                // Primary and reader endpoints, then (cluster mode) one port per member, the
                // first of which is the configuration endpoint: one block of ports.
                let block = 2 + if group.cluster_enabled { group.members().count() } else { 0 };
                let used = self.ports_in_use();
                let port = match requested_port {
                    Some(p) if !Self::ports_free(&used, p, block) => return Outcome::Rejected(Rejection::PortInUse(p)),
                    Some(p) => p,
                    None => match (port_base..u16::MAX - 1).step_by(2).find(|&p| Self::ports_free(&used, p, block)) {
                        Some(p) => p,
                        None => return Outcome::Rejected(Rejection::NoFreePort),
                    },
                };
                group.primary_port = port;
                group.reader_port = port + 1;
                if group.cluster_enabled {
                    group.configuration_port = port + 2;
                    let mut next = port + 2;
                    for ng in &mut group.node_groups {
                        for m in &mut ng.members {
                            m.port = next;
                            next += 1;
                        }
                    }
                }
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
                self.groups.insert(group.id.clone(), (*group).clone());
                Outcome::Group(group)
            }
            Change::DeleteReplicationGroup { id, at_ms } => match self.groups.remove(&id) {
                Some(mut g) => {
                    self.event(at_ms, "replication-group", &id, format!("Replication group {id} deleted"));
                    // As in ElastiCache: automatic snapshots go with the group, manual ones stay.
                    self.snapshots.retain(|_, s| !(s.automatic && s.group_id == id));
                    g.status = GroupStatus::Deleting;
                    Outcome::Group(Box::new(g))
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
                ng.handoff = None;
                let epoch = ng.config_epoch;
                let msg = format!("Failover from {old} to {new_primary} in node group {node_group_id} (config epoch {epoch}): {reason}");
                self.event(at_ms, "replication-group", &group_id, msg);
                Outcome::Ok
            }
            Change::ModifyReplicationGroup { id, settings, at_ms } => {
                let Some(mut current) = self.groups.get(&id).cloned() else {
                    return Outcome::Rejected(Rejection::NotFound(id));
                };
                let mut said = Vec::new();
                if let Err(r) = access::apply_group_access(
                    self,
                    &mut current,
                    settings.auth_token.clone(),
                    &settings.user_groups_to_add,
                    &settings.user_groups_to_remove,
                    at_ms,
                    &mut said,
                ) {
                    return Outcome::Rejected(r);
                }
                let Some(g) = self.groups.get_mut(&id) else {
                    return Outcome::Rejected(Rejection::NotFound(id));
                };
                *g = current;
                if let Some(d) = settings.description {
                    g.description = d;
                }
                if let Some(d) = settings.durability {
                    if d != g.durability {
                        said.push(match d.mode {
                            DurabilityMode::None => "durability none".to_string(),
                            DurabilityMode::Async => format!("durability async (max lag {} ms)", d.max_replica_lag_ms),
                            DurabilityMode::Sync => {
                                format!("durability sync ({} replica acks)", d.min_replicas_to_ack)
                            }
                        });
                        g.durability = d;
                    }
                }
                if let Some(a) = settings.automatic_failover {
                    if a != g.automatic_failover {
                        said.push(format!("automatic failover {}", if a { "enabled" } else { "disabled" }));
                        g.automatic_failover = a;
                    }
                }
                if let Some(m) = settings.multi_az {
                    if m != g.multi_az {
                        said.push(format!("Multi-AZ {}", if m { "enabled" } else { "disabled" }));
                        g.multi_az = m;
                    }
                }
                if let Some(days) = settings.snapshot_retention_limit {
                    if days != g.snapshot_retention_limit {
                        said.push(format!("snapshot retention {days} days"));
                        g.snapshot_retention_limit = days;
                    }
                }
                for (name, value) in settings.parameters.unwrap_or_default() {
                    if g.parameters.get(&name) != Some(&value) {
                        said.push(format!("parameter {name} = '{value}'"));
                        g.parameters.insert(name, value);
                    }
                }
                if let Some(t) = settings.transit_encryption.map(TransitSetting::mode) {
                    if t != g.transit_encryption {
                        said.push(match t {
                            Some(m) => format!("transit encryption {}", m.as_str()),
                            None => "transit encryption disabled".into(),
                        });
                        g.transit_encryption = t;
                    }
                }
                if let Some(w) = settings.snapshot_window {
                    if w != g.snapshot_window {
                        said.push(format!("snapshot window {w}"));
                        g.snapshot_window = w;
                    }
                }
                let group = g.clone();
                if !said.is_empty() {
                    self.event(
                        at_ms,
                        "replication-group",
                        &id,
                        format!("Replication group {id} modified: {}", said.join(", ")),
                    );
                }
                Outcome::Group(Box::new(group))
            }
            Change::BeginHandoff { group_id, node_group_id, target, reason, at_ms } => {
                let Some(ng) = self.groups.get_mut(&group_id).and_then(|g| g.node_group_mut(&node_group_id)) else {
                    return Outcome::Rejected(Rejection::NotFound(group_id));
                };
                if ng.handoff.is_some() {
                    return Outcome::Rejected(Rejection::HandoffInProgress(node_group_id));
                }
                if !ng.members.iter().any(|m| m.node_id == target && m.role == Role::Replica) {
                    return Outcome::Rejected(Rejection::NotAReplica(target));
                }
                ng.handoff = Some(Handoff { target: target.clone(), started_ms: at_ms, reason: reason.clone() });
                let msg = format!("Primary switch to {target} started in node group {node_group_id}: {reason}");
                self.event(at_ms, "replication-group", &group_id, msg);
                Outcome::Ok
            }
            Change::AbortHandoff { group_id, node_group_id, reason, at_ms } => {
                let Some(ng) = self.groups.get_mut(&group_id).and_then(|g| g.node_group_mut(&node_group_id)) else {
                    return Outcome::Rejected(Rejection::NotFound(group_id));
                };
                let Some(h) = ng.handoff.take() else {
                    return Outcome::Rejected(Rejection::NoHandoff(node_group_id));
                };
                let msg = format!("Primary switch to {} in node group {node_group_id} abandoned: {reason}", h.target);
                self.event(at_ms, "replication-group", &group_id, msg);
                Outcome::Ok
            }
            Change::AddReplicas { group_id, mut members, at_ms } => {
                let mut used = self.ports_in_use();
                let Some(g) = self.groups.get_mut(&group_id) else {
                    return Outcome::Rejected(Rejection::NotFound(group_id));
                };
                if let Some((_, m)) = members.iter().find(|(_, m)| g.members().any(|(_, e)| e.node_id == m.node_id)) {
                    return Outcome::Rejected(Rejection::MemberExists(m.node_id.clone()));
                }
                if let Some((ng, _)) = members.iter().find(|(ng, _)| !g.node_groups.iter().any(|n| &n.id == ng)) {
                    return Outcome::Rejected(Rejection::NotFound(format!("{group_id}/{ng}")));
                }
                if g.cluster_enabled {
                    // Each new member is a cluster node too: it gets the next free port.
                    for (_, m) in &mut members {
                        let Some(p) = Self::free_port_from(&used, g.primary_port) else {
                            return Outcome::Rejected(Rejection::NoFreePort);
                        };
                        m.port = p;
                        used.insert(p);
                    }
                }
                let mut events = Vec::new();
                for (ng_id, m) in members {
                    events.push((
                        m.node_id.clone(),
                        format!("Cache cluster {} added on datanode {} as replica", m.node_id, m.datanode_id),
                    ));
                    if let Some(ng) = g.node_group_mut(&ng_id) {
                        ng.members.push(m);
                    }
                }
                let group = g.clone();
                for (node_id, msg) in events {
                    self.event(at_ms, "cache-cluster", &node_id, msg);
                }
                Outcome::Group(Box::new(group))
            }
            Change::RemoveReplicas { group_id, node_ids, at_ms } => {
                let Some(g) = self.groups.get_mut(&group_id) else {
                    return Outcome::Rejected(Rejection::NotFound(group_id));
                };
                if let Some(id) =
                    node_ids.iter().find(|id| !g.members().any(|(_, m)| &m.node_id == *id && m.role == Role::Replica))
                {
                    return Outcome::Rejected(Rejection::NotAReplica(id.clone()));
                }
                for ng in &mut g.node_groups {
                    ng.members.retain(|m| !node_ids.contains(&m.node_id));
                    if ng.handoff.as_ref().is_some_and(|h| node_ids.contains(&h.target)) {
                        ng.handoff = None;
                    }
                }
                let group = g.clone();
                for id in node_ids {
                    self.event(
                        at_ms,
                        "cache-cluster",
                        &id,
                        format!("Cache cluster {id} removed from replication group {group_id}"),
                    );
                }
                Outcome::Group(Box::new(group))
            }
            Change::CreateSnapshot { snapshot } => {
                if self.snapshots.contains_key(&snapshot.name) {
                    return Outcome::Rejected(Rejection::SnapshotExists(snapshot.name));
                }
                if !self.groups.contains_key(&snapshot.group_id) {
                    return Outcome::Rejected(Rejection::NotFound(snapshot.group_id));
                }
                let kind = if snapshot.automatic { "Automatic snapshot" } else { "Snapshot" };
                let msg =
                    format!("{kind} {} of {} started from {}", snapshot.name, snapshot.group_id, snapshot.node_id);
                self.event(snapshot.created_ms, "replication-group", &snapshot.group_id, msg);
                self.snapshots.insert(snapshot.name.clone(), snapshot);
                Outcome::Ok
            }
            Change::SnapshotDone { name, ok, key_count, bytes, error, at_ms } => {
                let Some(s) = self.snapshots.get_mut(&name) else {
                    return Outcome::Rejected(Rejection::SnapshotNotFound(name));
                };
                if s.status != SnapshotStatus::Creating {
                    return Outcome::Ok;
                }
                let group = s.group_id.clone();
                let msg = if ok {
                    s.status = SnapshotStatus::Available;
                    s.key_count = key_count;
                    s.bytes = bytes;
                    format!("Snapshot {name} of {group} is available ({key_count} keys, {bytes} bytes)")
                } else {
                    s.status = SnapshotStatus::Failed;
                    s.failure = error.clone();
                    format!("Snapshot {name} of {group} failed: {error}")
                };
                self.event(at_ms, "replication-group", &group, msg);
                Outcome::Ok
            }
            Change::DeleteSnapshot { name, at_ms } => match self.snapshots.remove(&name) {
                Some(s) => {
                    self.event(at_ms, "replication-group", &s.group_id, format!("Snapshot {name} deleted"));
                    Outcome::Ok
                }
                None => Outcome::Rejected(Rejection::SnapshotNotFound(name)),
            },
            Change::StartResharding { group_id, add, moves, remove, at_ms } => {
                self.start_resharding(group_id, add, moves, remove, at_ms)
            }
            Change::BeginSlotMove { group_id, .. } => self.begin_slot_move(group_id),
            Change::CompleteSlotMove { group_id, keys, at_ms } => self.complete_slot_move(group_id, keys, at_ms),
            Change::AbortSlotMove { group_id, reason, at_ms } => self.abort_slot_move(group_id, reason, at_ms),
            Change::SetGateway { gateway, at_ms } => {
                if self.gateways.get(&gateway.id) != Some(&gateway) {
                    let state = if gateway.online { "online" } else { "offline" };
                    let msg = format!("Gateway {} at {} is {state}", gateway.id, gateway.host);
                    self.event(at_ms, "gateway", &gateway.id.clone(), msg);
                    self.gateways.insert(gateway.id.clone(), gateway);
                }
                Outcome::Ok
            }
            Change::CreateUser { user } => self.create_user(user),
            Change::ModifyUser { id, update, at_ms } => self.modify_user(id, update, at_ms),
            Change::DeleteUser { id, at_ms } => self.delete_user(id, at_ms),
            Change::CreateUserGroup { group } => self.create_user_group(group),
            Change::ModifyUserGroup { id, add, remove, at_ms } => self.modify_user_group(id, add, remove, at_ms),
            Change::DeleteUserGroup { id, at_ms } => self.delete_user_group(id, at_ms),
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
mod tests;
