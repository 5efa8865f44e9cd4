//! Admin requests checked and turned into plans before anything is proposed: bad input gets
//! INVALID_ARGUMENT (or FAILED_PRECONDITION when valid in general but not for this group)
//! with ElastiCache's fault names, and changes nothing.

use ferrocache_common::acl::hash_password;
use ferrocache_common::ids::{validate_id, validate_replication_group_id, validate_secret};
use ferrocache_proto::admin::v1 as admin;
use tonic::Status;

use crate::error::Error;
use crate::topology::{
    AuthTokenUpdate, Durability, DurabilityMode, ReplicationGroup, Role, Settings, TransitEncryption, TransitSetting,
};

pub fn invalid(msg: impl Into<String>) -> Status {
    Error::InvalidArgument(format!("InvalidParameterValue: {}", msg.into())).into()
}

/// Most node groups one group may have (ElastiCache's limit).
pub const MAX_NODE_GROUPS: usize = 500;

/// One node group of a create request: its id, slots, and members' zones (primary first;
/// empty = any).
#[derive(Debug, Clone, PartialEq)]
pub struct ShardPlan {
    pub id: String,
    pub slots: Vec<(u16, u16)>,
    pub members: usize,
    pub azs: Vec<String>,
}

/// A create request that passed validation.
#[derive(Debug)]
pub struct CreatePlan {
    pub id: String,
    pub shards: Vec<ShardPlan>,
    pub cluster_enabled: bool,
    pub fsync: String,
    pub port: Option<u16>,
    pub durability: Durability,
    pub automatic_failover: bool,
    pub multi_az: bool,
    /// Restore from this snapshot.
    pub snapshot_name: Option<String>,
    pub snapshot_retention_limit: u32,
    pub snapshot_window: String,
    /// SHA-256 of the AUTH token.
    pub auth_token: Option<String>,
    pub user_group_ids: Vec<String>,
    pub transit_encryption: Option<TransitEncryption>,
}

fn transit_mode(mode: &str) -> Result<Option<TransitEncryption>, Status> {
    match mode.to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "preferred" => Ok(Some(TransitEncryption::Preferred)),
        "required" => Ok(Some(TransitEncryption::Required)),
        other => Err(invalid(format!("TransitEncryptionMode must be preferred or required, got '{other}'"))),
    }
}

/// TransitEncryptionEnabled/Mode of a modify request against the group's current setting;
/// None = unchanged. As ElastiCache: TLS turns on in "preferred" mode, and off only from it.
fn transit_change(
    enabled: Option<bool>,
    mode: &str,
    current: Option<TransitEncryption>,
) -> Result<Option<TransitSetting>, Status> {
    let mode = transit_mode(mode)?;
    match (enabled, mode, current) {
        (None, None, _) => Ok(None),
        (Some(true), None, Some(_)) => Ok(None),
        (Some(true) | None, Some(m), Some(_)) => Ok(Some(TransitSetting::On(m))),
        (Some(true), Some(TransitEncryption::Preferred), None) => {
            Ok(Some(TransitSetting::On(TransitEncryption::Preferred)))
        }
        (Some(true), _, None) => Err(combination(
            "turning transit encryption on needs TransitEncryptionMode preferred (set required once every client uses TLS)",
        )),
        (None, Some(_), None) => Err(combination("TransitEncryptionMode needs transit encryption enabled")),
        (Some(false), Some(_), _) => Err(combination("TransitEncryptionMode cannot go with TransitEncryptionEnabled false")),
        (Some(false), None, Some(TransitEncryption::Required)) => {
            Err(combination("set TransitEncryptionMode preferred before turning transit encryption off"))
        }
        (Some(false), None, Some(TransitEncryption::Preferred)) => Ok(Some(TransitSetting::Off)),
        (Some(false), None, None) => Ok(None),
    }
}

/// Checks an AUTH token and returns its hash (only the hash is ever stored).
pub fn auth_token_hash(token: &str) -> Result<String, Status> {
    validate_secret("AuthToken", token).map_err(invalid)?;
    Ok(hash_password(token.as_bytes()))
}

/// Checks user group ids (lowercased, without repeats).
pub fn user_group_ids(ids: &[String]) -> Result<Vec<String>, Status> {
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        let id = id.to_ascii_lowercase();
        validate_id("UserGroupId", &id).map_err(invalid)?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

pub fn combination(msg: impl Into<String>) -> Status {
    Error::InvalidArgument(format!("InvalidParameterCombination: {}", msg.into())).into()
}

/// Checks a create request.
pub fn validate_create(req: &admin::CreateReplicationGroupRequest) -> Result<CreatePlan, Status> {
    let id = req.replication_group_id.to_ascii_lowercase();
    validate_replication_group_id(&id).map_err(invalid)?;
    if req.replication_group_description.len() > 255 {
        return Err(invalid("ReplicationGroupDescription must be at most 255 characters"));
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
    let (shards, cluster_enabled) = shard_plans(req, count)?;
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
    // Durability and failover flags must hold in every node group: the smallest decides.
    let replicas = shards.iter().map(|s| s.members).min().unwrap_or(count) - 1;
    let durability =
        durability(&req.durability, req.min_replicas_to_ack, req.max_replica_lag_ms, Durability::default(), replicas)?
            .unwrap_or_default();
    let automatic_failover = req.automatic_failover_enabled.unwrap_or(replicas > 0);
    let multi_az = req.multi_az_enabled.unwrap_or(false);
    failover_flags(automatic_failover, multi_az, replicas)?;
    let snapshot_name = match req.snapshot_name.as_str() {
        "" => None,
        name => Some(name.to_string()),
    };
    let snapshot_retention_limit = retention(req.snapshot_retention_limit)?.unwrap_or(0);
    let snapshot_window = match req.snapshot_window.as_str() {
        "" => "05:00-06:00".to_string(),
        w => {
            snapshot_window(w)?;
            w.to_string()
        }
    };
    let auth_token = match req.auth_token.as_str() {
        "" => None,
        t => Some(auth_token_hash(t)?),
    };
    let user_group_ids = user_group_ids(&req.user_group_ids)?;
    if auth_token.is_some() && !user_group_ids.is_empty() {
        return Err(combination("AuthToken and UserGroupIds cannot be used together"));
    }
    let transit_encryption = match (req.transit_encryption_enabled, transit_mode(&req.transit_encryption_mode)?) {
        (Some(true), None) => Some(TransitEncryption::Required),
        (Some(true), Some(m)) => Some(m),
        (_, Some(_)) => return Err(combination("TransitEncryptionMode needs TransitEncryptionEnabled")),
        (_, None) => None,
    };
    Ok(CreatePlan {
        transit_encryption,
        auth_token,
        user_group_ids,
        snapshot_name,
        snapshot_retention_limit,
        snapshot_window,
        id,
        shards,
        cluster_enabled,
        fsync,
        port,
        durability,
        automatic_failover,
        multi_az,
    })
}

/// The node groups a create request asks for (NumNodeGroups, NodeGroupConfiguration,
/// ClusterMode), each with `count` members unless its configuration says otherwise, and
/// whether the group is cluster mode enabled.
fn shard_plans(req: &admin::CreateReplicationGroupRequest, count: usize) -> Result<(Vec<ShardPlan>, bool), Status> {
    let configs = &req.node_group_configuration;
    let n = match (req.num_node_groups, configs.len()) {
        (Some(n), c) if c > 0 && n as usize != c => {
            return Err(invalid(format!("NumNodeGroups {n} does not match the {c} NodeGroupConfiguration entries")))
        }
        (Some(n), _) if !(1..=MAX_NODE_GROUPS as i32).contains(&n) => {
            return Err(invalid(format!("NumNodeGroups must be between 1 and {MAX_NODE_GROUPS}, got {n}")))
        }
        (Some(n), _) => n as usize,
        (None, 0) => 1,
        (None, c) if c > MAX_NODE_GROUPS => {
            return Err(invalid(format!("at most {MAX_NODE_GROUPS} node groups, got {c}")))
        }
        (None, c) => c,
    };
    let cluster_enabled = match req.cluster_mode.to_ascii_lowercase().as_str() {
        "" => n > 1,
        "enabled" => true,
        "disabled" if n > 1 => {
            return Err(invalid(format!("ClusterMode disabled allows one node group, not {n}")));
        }
        "disabled" => false,
        other => return Err(invalid(format!("ClusterMode must be enabled or disabled, got '{other}'"))),
    };
    if cluster_enabled && req.num_cache_clusters.is_some() {
        return Err(invalid("NumCacheClusters is for cluster mode disabled; use ReplicasPerNodeGroup"));
    }
    if n > 1 && !req.preferred_cache_cluster_a_zs.is_empty() {
        return Err(invalid("PreferredCacheClusterAZs is for one node group; use NodeGroupConfiguration zones"));
    }
    let even = ferrocache_common::slot::even_ranges(n);
    let mut shards = Vec::with_capacity(n);
    for (i, &default_range) in even.iter().enumerate() {
        let default_id = ferrocache_common::ids::node_group_id(i);
        let Some(c) = configs.get(i) else {
            let azs = if n == 1 { req.preferred_cache_cluster_a_zs.clone() } else { Vec::new() };
            shards.push(ShardPlan { id: default_id, slots: vec![default_range], members: count, azs });
            continue;
        };
        let id = if c.node_group_id.is_empty() { default_id } else { c.node_group_id.clone() };
        if id.len() != 4 || !id.chars().all(|ch| ch.is_ascii_digit()) || id == "0000" {
            return Err(invalid(format!("NodeGroupId must be 4 digits from 0001, got '{id}'")));
        }
        let slots = if c.slots.is_empty() {
            vec![default_range]
        } else {
            ferrocache_common::slot::parse_ranges(&c.slots).map_err(|e| invalid(format!("node group {id}: {e}")))?
        };
        let members = match c.replica_count {
            None => count,
            Some(r) if (0..=5).contains(&r) => r as usize + 1,
            Some(r) => return Err(invalid(format!("node group {id}: ReplicaCount must be 0-5, got {r}"))),
        };
        if !c.replica_availability_zones.is_empty() && c.replica_availability_zones.len() != members - 1 {
            return Err(invalid(format!(
                "node group {id}: {} ReplicaAvailabilityZones for {} replicas",
                c.replica_availability_zones.len(),
                members - 1
            )));
        }
        let mut azs = Vec::new();
        if !c.primary_availability_zone.is_empty() || !c.replica_availability_zones.is_empty() {
            azs.push(c.primary_availability_zone.clone());
            azs.extend(c.replica_availability_zones.iter().cloned());
            azs.resize(members, String::new());
        }
        shards.push(ShardPlan { id, slots, members, azs });
    }
    check_slot_cover(&shards)?;
    Ok((shards, cluster_enabled))
}

/// Node groups must have distinct ids and own every slot exactly once.
fn check_slot_cover(shards: &[ShardPlan]) -> Result<(), Status> {
    let mut ids: Vec<&str> = shards.iter().map(|s| s.id.as_str()).collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(invalid(format!("NodeGroupId {} is given twice", w[0])));
    }
    let mut owner = vec![0u32; ferrocache_common::slot::SLOT_COUNT as usize];
    for s in shards {
        for &(a, b) in &s.slots {
            for slot in a..=b {
                owner[slot as usize] += 1;
            }
        }
    }
    if let Some(slot) = owner.iter().position(|&n| n != 1) {
        let what = if owner[slot] == 0 { "is not assigned" } else { "is assigned twice" };
        return Err(invalid(format!("slot {slot} {what}: the node groups' slots must cover 0-16383 exactly once")));
    }
    Ok(())
}

fn precondition(msg: impl Into<String>) -> Status {
    Error::FailedPrecondition(msg.into()).into()
}

/// The durability a request asks for, starting from `current`; `None` when it names none.
fn durability(
    mode: &str,
    min_acks: Option<i32>,
    max_lag: Option<i32>,
    current: Durability,
    replicas: usize,
) -> Result<Option<Durability>, Status> {
    if mode.is_empty() && min_acks.is_none() && max_lag.is_none() {
        return Ok(None);
    }
    let mut d = current;
    if !mode.is_empty() {
        d.mode = DurabilityMode::parse(mode)
            .ok_or_else(|| invalid(format!("Durability must be none, async or sync, got '{mode}'")))?;
    }
    if let Some(n) = min_acks {
        if !(1..=5).contains(&n) {
            return Err(invalid(format!("MinReplicasToAck must be between 1 and 5, got {n}")));
        }
        d.min_replicas_to_ack = n as u32;
    }
    if let Some(ms) = max_lag {
        if !(1..=3_600_000).contains(&ms) {
            return Err(invalid(format!("MaxReplicaLagMs must be between 1 and 3600000, got {ms}")));
        }
        d.max_replica_lag_ms = ms as u64;
    }
    if d.mode == DurabilityMode::Sync && d.min_replicas_to_ack as usize > replicas {
        return Err(precondition(format!(
            "InvalidReplicationGroupState: sync durability with MinReplicasToAck {} needs at least that many replicas; the group has {replicas}",
            d.min_replicas_to_ack
        )));
    }
    if d.mode == DurabilityMode::Async && replicas == 0 {
        return Err(precondition(
            "InvalidReplicationGroupState: async durability bounds replica lag and needs at least one replica",
        ));
    }
    Ok(Some(d))
}

/// ElastiCache's rules: automatic failover needs a replica; Multi-AZ needs automatic failover.
fn failover_flags(automatic_failover: bool, multi_az: bool, replicas: usize) -> Result<(), Status> {
    if multi_az && !automatic_failover {
        return Err(invalid("MultiAZEnabled requires AutomaticFailoverEnabled"));
    }
    if automatic_failover && replicas == 0 {
        return Err(precondition(
            "InvalidReplicationGroupState: automatic failover needs at least one replica (ReplicasPerNodeGroup >= 1)",
        ));
    }
    Ok(())
}

/// A ModifyReplicationGroup request that passed validation against its group.
#[derive(Debug, Default)]
pub struct ModifyPlan {
    pub settings: Settings,
    /// PrimaryClusterId: the replica to switch to.
    pub promote: Option<(String, String)>,
}

impl ModifyPlan {
    pub fn changes_settings(&self) -> bool {
        self.settings != Settings::default()
    }
}

pub fn validate_modify(req: &admin::ModifyReplicationGroupRequest, g: &ReplicationGroup) -> Result<ModifyPlan, Status> {
    let replicas = g.replica_count();
    let mut plan = ModifyPlan::default();
    if req.replication_group_description.len() > 255 {
        return Err(invalid("ReplicationGroupDescription must be at most 255 characters"));
    }
    if !req.replication_group_description.is_empty() {
        plan.settings.description = Some(req.replication_group_description.clone());
    }
    plan.settings.durability =
        durability(&req.durability, req.min_replicas_to_ack, req.max_replica_lag_ms, g.durability, replicas)?;
    plan.settings.snapshot_retention_limit = retention(req.snapshot_retention_limit)?;
    if !req.snapshot_window.is_empty() {
        snapshot_window(&req.snapshot_window)?;
        plan.settings.snapshot_window = Some(req.snapshot_window.clone());
    }
    if !req.parameter_name_values.is_empty() {
        let mut set = std::collections::BTreeMap::new();
        for p in &req.parameter_name_values {
            let (name, value) =
                ferrocache_common::parameters::normalize_against(&g.parameters, &p.parameter_name, &p.parameter_value)
                    .map_err(|e| invalid(format!("InvalidParameterValue: {e}")))?;
            set.insert(name.to_string(), value);
        }
        plan.settings.parameters = Some(set);
    }
    plan.settings.automatic_failover = req.automatic_failover_enabled;
    plan.settings.multi_az = req.multi_az_enabled;
    let af = req.automatic_failover_enabled.unwrap_or(g.automatic_failover);
    let maz = req.multi_az_enabled.unwrap_or(g.multi_az);
    if req.automatic_failover_enabled.is_some() || req.multi_az_enabled.is_some() {
        failover_flags(af, maz, replicas)?;
    }
    if req.multi_az_enabled == Some(true) {
        let zones: std::collections::HashSet<&str> = g.members().map(|(_, m)| m.preferred_az.as_str()).collect();
        if zones.len() < 2 {
            return Err(precondition(
                "InvalidReplicationGroupState: Multi-AZ needs members in at least two zones; add replicas on datanodes in other zones first",
            ));
        }
    }
    plan.settings.auth_token =
        match (req.auth_token_update_strategy.to_ascii_uppercase().as_str(), req.auth_token.as_str()) {
            ("", "") => None,
            ("" | "ROTATE", t) if !t.is_empty() => Some(AuthTokenUpdate::Rotate(auth_token_hash(t)?)),
            ("SET", t) if !t.is_empty() => Some(AuthTokenUpdate::Set(auth_token_hash(t)?)),
            ("DELETE", "") => Some(AuthTokenUpdate::Delete),
            ("DELETE", _) => return Err(combination("AuthTokenUpdateStrategy DELETE takes no AuthToken")),
            ("SET" | "ROTATE", _) => {
                return Err(combination("AuthTokenUpdateStrategy SET and ROTATE need an AuthToken"))
            }
            (other, _) => {
                return Err(invalid(format!("AuthTokenUpdateStrategy must be SET, ROTATE or DELETE, got '{other}'")))
            }
        };
    plan.settings.transit_encryption =
        transit_change(req.transit_encryption_enabled, &req.transit_encryption_mode, g.transit_encryption)?;
    plan.settings.user_groups_to_add = user_group_ids(&req.user_group_ids_to_add)?;
    plan.settings.user_groups_to_remove = user_group_ids(&req.user_group_ids_to_remove)?;
    if let Some(u) = plan.settings.user_groups_to_remove.iter().find(|u| !g.user_group_ids.contains(u)) {
        return Err(invalid(format!("user group {u} is not attached to replication group {}", g.id)));
    }
    if !req.primary_cluster_id.is_empty() {
        let wanted = req.primary_cluster_id.to_ascii_lowercase();
        let Some((ng, m)) = g.members().find(|(_, m)| m.node_id == wanted) else {
            return Err(invalid(format!("PrimaryClusterId {wanted} is not a member of replication group {}", g.id)));
        };
        if m.role == Role::Primary {
            return Err(precondition(format!("InvalidCacheClusterState: {wanted} is already the primary")));
        }
        plan.promote = Some((ng.id.clone(), wanted));
    }
    Ok(plan)
}

/// Which replicas a DecreaseReplicaCount request removes, given each replica's offset
/// (None = not reporting: removed first).
pub fn replicas_to_remove(
    req: &admin::DecreaseReplicaCountRequest,
    g: &ReplicationGroup,
    offsets: &dyn Fn(&str) -> Option<u64>,
) -> Result<Vec<String>, Status> {
    let current = g.replica_count();
    let named = !req.replicas_to_remove.is_empty();
    let remove: Vec<String> = match (req.new_replica_count, named) {
        (Some(_), true) => return Err(invalid("NewReplicaCount and ReplicasToRemove are mutually exclusive")),
        (None, false) => return Err(invalid("either NewReplicaCount or ReplicasToRemove is required")),
        (Some(n), false) => {
            if n < 0 || n as usize >= current {
                return Err(invalid(format!(
                    "NewReplicaCount must be between 0 and {} (fewer than the current {current}), got {n}",
                    current.saturating_sub(1)
                )));
            }
            let mut out = Vec::new();
            for ng in &g.node_groups {
                let mut replicas: Vec<&str> =
                    ng.members.iter().filter(|m| m.role == Role::Replica).map(|m| m.node_id.as_str()).collect();
                // The least up-to-date go first; a pending switch's target stays.
                replicas.sort_by_key(|id| {
                    let target = ng.handoff.as_ref().is_some_and(|h| h.target == *id);
                    (target, offsets(id).map_or(0, |o| o + 1))
                });
                let drop = replicas.len().saturating_sub(n as usize);
                out.extend(replicas.into_iter().take(drop).map(str::to_string));
            }
            out
        }
        (None, true) => {
            let mut out = Vec::new();
            for id in &req.replicas_to_remove {
                let id = id.to_ascii_lowercase();
                match g.members().find(|(_, m)| m.node_id == id) {
                    None => {
                        return Err(invalid(format!("{id} is not a member of replication group {}", g.id)));
                    }
                    Some((_, m)) if m.role == Role::Primary => {
                        return Err(precondition(format!(
                            "InvalidCacheClusterState: {id} is the primary; switch the primary first (PrimaryClusterId)"
                        )));
                    }
                    Some(_) if out.contains(&id) => return Err(invalid(format!("{id} is named twice"))),
                    Some(_) => out.push(id),
                }
            }
            out
        }
    };
    for ng in &g.node_groups {
        let left = ng.members.iter().filter(|m| m.role == Role::Replica && !remove.contains(&m.node_id)).count();
        if left == 0 && (g.automatic_failover || g.multi_az) {
            return Err(precondition(
                "InvalidReplicationGroupState: automatic failover needs at least one replica; disable it first",
            ));
        }
        if g.durability.mode == DurabilityMode::Sync && left < g.durability.min_replicas_to_ack as usize {
            return Err(precondition(format!(
                "InvalidReplicationGroupState: sync durability needs {} replica(s); lower MinReplicasToAck first",
                g.durability.min_replicas_to_ack
            )));
        }
        if ng.handoff.as_ref().is_some_and(|h| remove.contains(&h.target)) {
            return Err(precondition("InvalidReplicationGroupState: that replica is being promoted"));
        }
    }
    Ok(remove)
}

fn retention(days: Option<i32>) -> Result<Option<u32>, Status> {
    match days {
        None => Ok(None),
        Some(d) if (0..=35).contains(&d) => Ok(Some(d as u32)),
        Some(d) => Err(invalid(format!("SnapshotRetentionLimit must be between 0 and 35 days, got {d}"))),
    }
}

/// Parses a daily UTC window "hh:mm-hh:mm" into (start, end) minutes of the day; it may wrap
/// past midnight and must last at least an hour (ElastiCache's rule).
pub fn snapshot_window(w: &str) -> Result<(u32, u32), Status> {
    let bad = || invalid(format!("SnapshotWindow must look like 05:00-06:00 (UTC, at least 60 minutes), got '{w}'"));
    let minute = |t: &str| -> Option<u32> {
        let (h, m) = t.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    let (a, b) = w.split_once('-').ok_or_else(bad)?;
    let (start, end) = (minute(a).ok_or_else(bad)?, minute(b).ok_or_else(bad)?);
    if (end + 1440 - start) % 1440 < 60 {
        return Err(bad());
    }
    Ok((start, end))
}

/// ElastiCache's rule for snapshot names, as for group ids but up to 255 characters.
pub fn validate_snapshot_name(name: &str) -> Result<(), Status> {
    if name.is_empty() || name.len() > 255 {
        return Err(invalid("SnapshotName must be 1 to 255 characters long"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic())
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        || name.ends_with('-')
        || name.contains("--")
    {
        return Err(invalid(format!(
            "SnapshotName '{name}' must start with a letter and hold only letters, digits and single hyphens"
        )));
    }
    Ok(())
}

/// The replica count an IncreaseReplicaCount request asks for.
pub fn validate_increase(req: &admin::IncreaseReplicaCountRequest, g: &ReplicationGroup) -> Result<usize, Status> {
    let current = g.replica_count();
    let n = req.new_replica_count;
    if n as i64 <= current as i64 || n > 5 {
        return Err(invalid(format!("NewReplicaCount must be more than the current {current} and at most 5, got {n}")));
    }
    Ok(n as usize)
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
        assert_eq!((plan.id.as_str(), plan.fsync.as_str(), plan.port), ("default", "everysec", None));
        assert_eq!(
            plan.shards,
            vec![ShardPlan { id: "0001".into(), slots: vec![(0, 16383)], members: 3, azs: vec![] }]
        );
        assert!(!plan.cluster_enabled);
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
        assert_eq!(bad(&|r| r.num_node_groups = Some(501)), tonic::Code::InvalidArgument);
        assert_eq!(bad(&|r| r.num_node_groups = Some(0)), tonic::Code::InvalidArgument);
        assert_eq!(
            bad(&|r| {
                r.num_node_groups = Some(2);
                r.cluster_mode = "disabled".into()
            }),
            tonic::Code::InvalidArgument
        );
        assert_eq!(bad(&|r| r.durability = "eventual".into()), tonic::Code::InvalidArgument);
        assert_eq!(
            bad(&|r| {
                r.multi_az_enabled = Some(true);
                r.automatic_failover_enabled = Some(false)
            }),
            tonic::Code::InvalidArgument
        );
        assert_eq!(bad(&|r| r.snapshot_retention_limit = Some(36)), tonic::Code::InvalidArgument);
        assert_eq!(bad(&|r| r.snapshot_window = "01:00-01:10".into()), tonic::Code::InvalidArgument);
    }

    #[test]
    fn cluster_mode_node_groups() {
        let mut r = req();
        r.num_node_groups = Some(3);
        r.replicas_per_node_group = Some(1);
        let plan = validate_create(&r).unwrap();
        assert!(plan.cluster_enabled);
        let ids: Vec<&str> = plan.shards.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["0001", "0002", "0003"]);
        assert_eq!(plan.shards[1].slots, vec![(5462, 10922)]);
        assert!(plan.shards.iter().all(|s| s.members == 2));
        let cfg = |id: &str, slots: &str| admin::NodeGroupConfiguration {
            node_group_id: id.into(),
            slots: slots.into(),
            replica_count: Some(0),
            primary_availability_zone: "b".into(),
            ..Default::default()
        };
        r.num_node_groups = None;
        r.node_group_configuration = vec![cfg("0001", "0-99,200-16383"), cfg("0002", "100-199")];
        let plan = validate_create(&r).unwrap();
        assert_eq!(plan.shards[0].slots, vec![(0, 99), (200, 16383)]);
        assert_eq!((plan.shards[1].members, plan.shards[1].azs.clone()), (1, vec!["b".to_string()]));
        r.node_group_configuration = vec![cfg("0001", "0-99"), cfg("0002", "100-199")];
        assert!(validate_create(&r).unwrap_err().message().contains("slot 200 is not assigned"));
        r.node_group_configuration = vec![cfg("0001", "0-16383"), cfg("0002", "100-199")];
        assert!(validate_create(&r).unwrap_err().message().contains("assigned twice"));
        r.node_group_configuration = vec![cfg("0001", "0-8000"), cfg("0001", "8001-16383")];
        assert!(validate_create(&r).unwrap_err().message().contains("given twice"));
        r.node_group_configuration = vec![];
        r.num_node_groups = Some(1);
        r.cluster_mode = "enabled".into();
        assert!(validate_create(&r).unwrap().cluster_enabled, "one shard can be cluster mode enabled");
    }

    #[test]
    fn windows_names_and_durability() {
        assert_eq!(snapshot_window("05:00-06:00").unwrap(), (300, 360));
        assert_eq!(snapshot_window("23:30-00:30").unwrap(), (1410, 30));
        for bad in ["05:00-05:30", "5:00-6:00", "25:00-26:00", "05:00", "ab:cd-ef:gh"] {
            assert!(snapshot_window(bad).is_err(), "{bad}");
        }
        assert!(validate_snapshot_name("nightly-1").is_ok());
        for bad in ["", "1x", "a--b", "a-", "automatic.x", "a b"] {
            assert!(validate_snapshot_name(bad).is_err(), "{bad}");
        }
        let mut r = req();
        r.replicas_per_node_group = Some(0);
        r.durability = "sync".into();
        assert_eq!(validate_create(&r).unwrap_err().code(), tonic::Code::FailedPrecondition);
        r.durability = String::new();
        let plan = validate_create(&r).unwrap();
        assert!(!plan.automatic_failover, "no replica: automatic failover off by default");
        r.automatic_failover_enabled = Some(true);
        assert_eq!(validate_create(&r).unwrap_err().code(), tonic::Code::FailedPrecondition);
    }
}
