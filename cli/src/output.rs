//! Printing admin responses: JSON with ElastiCache's field names (what `aws elasticache`
//! prints), or a compact table for people.

use std::process::ExitCode;

use ferrocache_proto::admin::v1 as api;
use serde_json::{json, Value};

use crate::cli::Output;

fn endpoint(e: &Option<api::Endpoint>) -> Value {
    match e {
        Some(e) => json!({ "Address": e.address, "Port": e.port }),
        None => Value::Null,
    }
}

pub fn group_json(g: &api::ReplicationGroup) -> Value {
    json!({
        "ReplicationGroupId": g.replication_group_id,
        "Description": g.description,
        "Status": g.status,
        "MemberClusters": g.member_clusters,
        "NodeGroups": g.node_groups.iter().map(|ng| json!({
            "NodeGroupId": ng.node_group_id,
            "Status": ng.status,
            "PrimaryEndpoint": endpoint(&ng.primary_endpoint),
            "ReaderEndpoint": endpoint(&ng.reader_endpoint),
            "Slots": ng.slots,
            "ConfigEpoch": ng.config_epoch,
            "NodeGroupMembers": ng.node_group_members.iter().map(|m| json!({
                "CacheClusterId": m.cache_cluster_id,
                "CacheNodeId": m.cache_node_id,
                "ReadEndpoint": endpoint(&m.read_endpoint),
                "PreferredAvailabilityZone": m.preferred_availability_zone,
                "CurrentRole": m.current_role,
                "DatanodeId": m.datanode_id,
                "DatanodeAddress": m.datanode_address,
                "ReplicationOffset": m.replication_offset,
                "MemberStatus": m.member_status,
                "ReplicationLag": m.replication_lag,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "AutomaticFailover": g.automatic_failover,
        "MultiAZ": g.multi_az,
        "ClusterEnabled": g.cluster_enabled,
        "ConfigurationEndpoint": endpoint(&g.configuration_endpoint),
        "AppendFsync": g.append_fsync,
        "Durability": g.durability,
        "MinReplicasToAck": g.min_replicas_to_ack,
        "MaxReplicaLagMs": g.max_replica_lag_ms,
        "PendingPrimaryClusterId": g.pending_primary_cluster_id,
        "SnapshotRetentionLimit": g.snapshot_retention_limit,
        "SnapshotWindow": g.snapshot_window,
        "AuthTokenEnabled": g.auth_token_enabled,
        "AuthTokenLastModifiedDate": g.auth_token_last_modified_date,
        "UserGroupIds": g.user_group_ids,
        "TransitEncryptionEnabled": g.transit_encryption_enabled,
        "TransitEncryptionMode": g.transit_encryption_mode,
    })
}

static QUERY: std::sync::OnceLock<Option<jmespath::Expression<'static>>> = std::sync::OnceLock::new();

/// Compiles `--query` once, before anything is called.
pub fn set_query(query: Option<&str>) -> Result<(), String> {
    let compiled = match query {
        Some(q) => Some(jmespath::compile(q).map_err(|e| e.to_string())?),
        None => None,
    };
    let _ = QUERY.set(compiled);
    Ok(())
}

/// The response after `--query`.
fn queried(v: &Value) -> Result<Value, String> {
    let Some(Some(expr)) = QUERY.get() else { return Ok(v.clone()) };
    let result = expr.search(v).map_err(|e| e.to_string())?;
    serde_json::to_value(&*result).map_err(|e| e.to_string())
}

/// aws's text output: per object a line of its scalars (in key order) after the key that led
/// to it, uppercased; lists of scalars on one line; nested objects and lists below.
fn text_lines(v: &Value, identifier: Option<&str>, out: &mut Vec<String>) {
    let scalar = |v: &Value| !matches!(v, Value::Object(_) | Value::Array(_));
    let show = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        other => other.to_string(),
    };
    let line = |values: Vec<String>| {
        let mut parts: Vec<String> = identifier.map(|i| i.to_uppercase()).into_iter().collect();
        parts.extend(values);
        parts.join("\t")
    };
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let scalars: Vec<String> = keys.iter().filter(|k| scalar(&map[**k])).map(|k| show(&map[*k])).collect();
            if !scalars.is_empty() {
                out.push(line(scalars));
            }
            for k in keys.into_iter().filter(|k| !scalar(&map[*k])) {
                text_lines(&map[k], Some(k), out);
            }
        }
        Value::Array(items) if items.iter().all(scalar) => {
            if !items.is_empty() {
                out.push(line(items.iter().map(show).collect()));
            }
        }
        Value::Array(items) => items.iter().for_each(|i| text_lines(i, identifier, out)),
        other => out.push(show(other)),
    }
}

/// Prints a response as JSON or text (`--output`), after `--query`.
pub fn emit(v: &Value, output: Output) -> ExitCode {
    let v = match queried(v) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("--query: {e}");
            return ExitCode::from(255);
        }
    };
    if matches!(output, Output::Text) {
        let mut lines = Vec::new();
        text_lines(&v, None, &mut lines);
        for l in lines {
            println!("{l}");
        }
        return ExitCode::SUCCESS;
    }
    match serde_json::to_string_pretty(&v) {
        Ok(s) => {
            println!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot print the response: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_table(groups: &[api::ReplicationGroup]) {
    println!("{:<24} {:<10} {:<22} {:<22}", "REPLICATION GROUP", "STATUS", "PRIMARY ENDPOINT", "READER ENDPOINT");
    for g in groups {
        let ng = g.node_groups.first();
        let ep = |e: Option<&api::Endpoint>| e.map(|e| format!("{}:{}", e.address, e.port)).unwrap_or_default();
        println!(
            "{:<24} {:<10} {:<22} {:<22}",
            g.replication_group_id,
            g.status,
            ep(ng.and_then(|n| n.primary_endpoint.as_ref())),
            ep(ng.and_then(|n| n.reader_endpoint.as_ref()))
        );
        if let Some(c) = &g.configuration_endpoint {
            println!("  configuration endpoint {}:{} ({} node groups)", c.address, c.port, g.node_groups.len());
        }
        for m in g.node_groups.iter().flat_map(|n| n.node_group_members.iter()) {
            println!(
                "  {:<20} {:<8} zone={:<6} {:<9} offset={:<10} datanode={}",
                m.cache_cluster_id,
                m.current_role,
                m.preferred_availability_zone,
                m.member_status,
                m.replication_offset,
                m.datanode_id
            );
        }
    }
}

pub fn print_group_response(g: Option<&api::ReplicationGroup>, output: Output) -> ExitCode {
    let Some(g) = g else {
        eprintln!("the response holds no replication group");
        return ExitCode::FAILURE;
    };
    match output {
        Output::Json | Output::Text => emit(&json!({ "ReplicationGroup": group_json(g) }), output),
        Output::Table => {
            print_table(std::slice::from_ref(g));
            ExitCode::SUCCESS
        }
    }
}

pub fn print_groups(groups: &[api::ReplicationGroup], output: Output) -> ExitCode {
    match output {
        Output::Json | Output::Text => {
            emit(&json!({ "ReplicationGroups": groups.iter().map(group_json).collect::<Vec<_>>() }), output)
        }
        Output::Table => {
            print_table(groups);
            ExitCode::SUCCESS
        }
    }
}

pub fn print_events(events: &[api::Event], output: Output) -> ExitCode {
    match output {
        Output::Json | Output::Text => emit(
            &json!({
                "Events": events.iter().map(|e| json!({
                    "SourceIdentifier": e.source_identifier,
                    "SourceType": e.source_type,
                    "Message": e.message,
                    "Date": e.date,
                })).collect::<Vec<_>>()
            }),
            output,
        ),
        Output::Table => {
            for e in events {
                println!("{}  {:<18} {:<22} {}", e.date, e.source_type, e.source_identifier, e.message);
            }
            ExitCode::SUCCESS
        }
    }
}

fn snapshot_json(s: &api::Snapshot) -> Value {
    json!({
        "SnapshotName": s.snapshot_name,
        "ReplicationGroupId": s.replication_group_id,
        "ReplicationGroupDescription": s.replication_group_description,
        "SnapshotStatus": s.snapshot_status,
        "SnapshotSource": s.snapshot_source,
        "CacheClusterId": s.cache_cluster_id,
        "SnapshotCreateTime": s.snapshot_create_time,
        "KeyCount": s.key_count,
        "CacheSize": s.cache_size,
        "NumCacheClusters": s.num_cache_clusters,
        "AppendFsync": s.append_fsync,
        "FailureReason": s.failure_reason,
        "DatanodeId": s.datanode_id,
    })
}

fn print_snapshot_table(snapshots: &[api::Snapshot]) {
    for s in snapshots {
        println!(
            "{:<40} {:<20} {:<10} {:<9} {:>10} keys {:>12} bytes  {}",
            s.snapshot_name,
            s.replication_group_id,
            s.snapshot_status,
            s.snapshot_source,
            s.key_count,
            s.cache_size,
            s.snapshot_create_time
        );
    }
}

pub fn print_snapshot(s: Option<&api::Snapshot>, output: Output) -> ExitCode {
    let Some(s) = s else {
        eprintln!("the response holds no snapshot");
        return ExitCode::FAILURE;
    };
    match output {
        Output::Json | Output::Text => emit(&json!({ "Snapshot": snapshot_json(s) }), output),
        Output::Table => {
            print_snapshot_table(std::slice::from_ref(s));
            ExitCode::SUCCESS
        }
    }
}

pub fn print_snapshots(snapshots: &[api::Snapshot], output: Output) -> ExitCode {
    match output {
        Output::Json | Output::Text => {
            emit(&json!({ "Snapshots": snapshots.iter().map(snapshot_json).collect::<Vec<_>>() }), output)
        }
        Output::Table => {
            print_snapshot_table(snapshots);
            ExitCode::SUCCESS
        }
    }
}
