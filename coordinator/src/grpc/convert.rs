//! Topology model -> protobuf messages (admin API and routing), kept at the edge.

use ferrocache_common::time::rfc3339;
use ferrocache_proto::admin::v1 as admin;
use ferrocache_proto::internal::v1 as pb;

use crate::liveness::Liveness;
use crate::topology::{role_name, Event, GroupStatus, MemberStatus, ReplicationGroup, Role, Snapshot, Topology};

fn slots_text(slots: &[(u16, u16)]) -> String {
    slots.iter().map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect::<Vec<_>>().join(",")
}

/// Whether a node reports applying these settings (a datanode raises zero bounds to 1).
fn durability_applied(d: &crate::topology::Durability, status: &pb::NodeStatus) -> bool {
    status.durability == d.mode.as_str()
        && status.min_replicas_to_ack == d.min_replicas_to_ack.max(1)
        && status.max_replica_lag_ms == d.max_replica_lag_ms.max(1)
}

pub fn replication_group(
    g: &ReplicationGroup,
    topology: &Topology,
    liveness: Option<&Liveness>,
    host: &str,
) -> admin::ReplicationGroup {
    let endpoint = |port: u16| Some(admin::Endpoint { address: host.to_string(), port: port as i32 });
    let status = |m: &crate::topology::Member| liveness.and_then(|l| l.node_status(&m.datanode_id, &m.node_id));
    let switching = g.node_groups.iter().find_map(|ng| ng.handoff.as_ref());
    // A primary still answering writes under the previous durability settings: the change
    // is not in force yet.
    let applying = g.node_groups.iter().flat_map(|ng| &ng.members).filter(|m| m.role == Role::Primary).any(|m| {
        status(m).is_some_and(|s| s.role == pb::Role::Primary as i32 && !durability_applied(&g.durability, &s))
    });
    // A planned switch shows as "modifying", as ElastiCache shows its own failover tests.
    let group_status = if (switching.is_some() || applying) && g.status == GroupStatus::Available {
        "modifying"
    } else {
        g.status.as_str()
    };
    admin::ReplicationGroup {
        replication_group_id: g.id.clone(),
        description: g.description.clone(),
        status: group_status.into(),
        member_clusters: g.members().map(|(_, m)| m.node_id.clone()).collect(),
        node_groups: g
            .node_groups
            .iter()
            .map(|ng| admin::NodeGroup {
                node_group_id: ng.id.clone(),
                status: if ng.handoff.is_some() { "modifying".into() } else { g.status.as_str().into() },
                primary_endpoint: endpoint(g.primary_port),
                reader_endpoint: endpoint(g.reader_port),
                slots: slots_text(&ng.slots),
                config_epoch: ng.config_epoch,
                node_group_members: ng
                    .members
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let dn = topology.datanodes.get(&m.datanode_id);
                        let offset = status(m).map_or(0, |s| s.replication_offset);
                        let primary_offset = ng
                            .members
                            .iter()
                            .find(|p| p.role == Role::Primary)
                            .and_then(status)
                            .map_or(0, |s| s.replication_offset);
                        admin::NodeGroupMember {
                            cache_cluster_id: m.node_id.clone(),
                            cache_node_id: format!("{:04}", i + 1),
                            read_endpoint: endpoint(if g.cluster_enabled {
                                m.port
                            } else if m.role == Role::Primary {
                                g.primary_port
                            } else {
                                g.reader_port
                            }),
                            preferred_availability_zone: m.preferred_az.clone(),
                            current_role: role_name(m.role).into(),
                            datanode_id: m.datanode_id.clone(),
                            datanode_address: dn.map(|d| d.address.clone()).unwrap_or_default(),
                            replication_offset: offset,
                            member_status: m.status.as_str().into(),
                            replication_lag: if m.role == Role::Replica {
                                primary_offset.saturating_sub(offset)
                            } else {
                                0
                            },
                        }
                    })
                    .collect(),
            })
            .collect(),
        automatic_failover: enabled(g.automatic_failover),
        multi_az: enabled(g.multi_az),
        resharding: g.resharding.as_ref().map(|r| admin::ReshardingStatus {
            slot_migration: Some(admin::SlotMigration {
                progress_percentage: if r.slots_to_move == 0 {
                    100.0
                } else {
                    r.slots_moved as f64 * 100.0 / r.slots_to_move as f64
                },
            }),
            slots_moved: r.slots_moved as i32,
            slots_to_move: r.slots_to_move as i32,
            keys_moved: r.keys_moved as i64,
            node_groups_to_remove: r.remove.clone(),
        }),
        cluster_enabled: g.cluster_enabled,
        append_fsync: g.append_fsync.clone(),
        configuration_endpoint: if g.cluster_enabled { endpoint(g.configuration_port) } else { None },
        durability: g.durability.mode.as_str().into(),
        min_replicas_to_ack: g.durability.min_replicas_to_ack as i32,
        max_replica_lag_ms: g.durability.max_replica_lag_ms as i32,
        pending_primary_cluster_id: switching.map(|h| h.target.clone()).unwrap_or_default(),
        snapshot_retention_limit: g.snapshot_retention_limit as i32,
        snapshot_window: g.snapshot_window.clone(),
        auth_token_enabled: !g.auth_tokens.is_empty(),
        auth_token_last_modified_date: if g.auth_token_modified_ms > 0 {
            rfc3339(g.auth_token_modified_ms)
        } else {
            String::new()
        },
        user_group_ids: g.user_group_ids.clone(),
        transit_encryption_enabled: g.transit_encryption.is_some(),
        transit_encryption_mode: g.transit_encryption.map(|m| m.as_str().to_string()).unwrap_or_default(),
        cache_parameters: g
            .parameters
            .iter()
            .map(|(k, v)| admin::ParameterNameValue { parameter_name: k.clone(), parameter_value: v.clone() })
            .collect(),
    }
}

pub fn snapshot(s: &Snapshot) -> admin::Snapshot {
    admin::Snapshot {
        snapshot_name: s.name.clone(),
        replication_group_id: s.group_id.clone(),
        replication_group_description: s.group_description.clone(),
        snapshot_status: s.status.as_str().into(),
        snapshot_source: if s.automatic { "automated" } else { "manual" }.into(),
        cache_cluster_id: s.node_id.clone(),
        snapshot_create_time: rfc3339(s.created_ms),
        key_count: s.key_count,
        cache_size: s.bytes,
        num_cache_clusters: s.num_cache_clusters as i32,
        append_fsync: s.append_fsync.clone(),
        failure_reason: s.failure.clone(),
        datanode_id: s.datanode_id.clone(),
    }
}

fn enabled(on: bool) -> String {
    if on { "enabled" } else { "disabled" }.into()
}

pub fn event(e: &Event) -> admin::Event {
    admin::Event {
        source_identifier: e.source_id.clone(),
        source_type: e.source_type.clone(),
        message: e.message.clone(),
        date: rfc3339(e.at_ms),
    }
}

pub fn routing(topology: &Topology, version: u64) -> pb::Topology {
    let groups = topology
        .groups
        .values()
        .map(|g| pb::GroupRoute {
            replication_group_id: g.id.clone(),
            status: g.status.as_str().into(),
            primary_port: g.primary_port as u32,
            reader_port: g.reader_port as u32,
            parameters: g.parameters.clone().into_iter().collect(),
            cluster_enabled: g.cluster_enabled,
            configuration_port: g.configuration_port as u32,
            transit_encryption: g.transit_encryption.map(|m| m.as_str().to_string()).unwrap_or_default(),
            acl_users: topology.acl_users(g).into_iter().map(|(name, rules)| pb::AclUser { name, rules }).collect(),
            node_groups: g
                .node_groups
                .iter()
                .map(|ng| pb::ShardRoute {
                    node_group_id: ng.id.clone(),
                    config_epoch: ng.config_epoch,
                    slots: ng.slots.iter().map(|(a, b)| pb::SlotRange { start: *a as u32, end: *b as u32 }).collect(),
                    members: ng
                        .members
                        .iter()
                        .map(|m| pb::MemberRoute {
                            node_id: m.node_id.clone(),
                            datanode_address: topology
                                .datanodes
                                .get(&m.datanode_id)
                                .map(|d| d.address.clone())
                                .unwrap_or_default(),
                            role: match m.role {
                                Role::Primary => pb::Role::Primary as i32,
                                Role::Replica => pb::Role::Replica as i32,
                            },
                            zone: m.preferred_az.clone(),
                            in_sync: m.status == MemberStatus::Online,
                            port: m.port as u32,
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    let gateways = topology
        .gateways
        .values()
        .filter(|g| g.online)
        .map(|g| pb::GatewayRoute { gateway_id: g.id.clone(), announce_host: g.host.clone() })
        .collect();
    pb::Topology { version, groups, gateways }
}
