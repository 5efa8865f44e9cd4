//! INFO: the gateway's own sections (server, clients, stats) joined with the node's
//! (memory, persistence, replication, keyspace), filtered by the requested section names.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use ferrocache_common::Reply;

use crate::connection::Session;
use crate::endpoints::Endpoint;
use crate::Shared;

/// Every section, in Redis's order (INFO without arguments shows all but the per-command
/// ones, see [`in_default`]).
const ALL: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];
fn in_default(name: &str) -> bool {
    !matches!(name, "commandstats" | "latencystats")
}

pub fn gateway_sections(shared: &Arc<Shared>, endpoint: &Endpoint, session: &Session) -> Vec<(String, String)> {
    let uptime = shared.started.elapsed().as_secs();
    // A cluster node port is a Redis Cluster node to its clients (redis-cli --cluster looks
    // for cluster_enabled:1); the proxy endpoints are standalone servers to theirs.
    let node_port = endpoint.kind == crate::router::EndpointKind::Node;
    let now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
    let server = format!(
        "redis_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nferrocache_version:{}\r\nredis_mode:{}\r\nos:{}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:10\r\nconfigured_hz:10\r\nlru_clock:{}\r\nexecutable:ferrocache\r\nconfig_file:\r\nio_threads_active:0\r\nreplication_group_id:{}\r\n",
        crate::REDIS_VERSION,
        env!("CARGO_PKG_VERSION"),
        if node_port { "cluster" } else { "standalone" },
        std::env::consts::OS,
        std::process::id(),
        shared.run_id,
        endpoint.port,
        now_us,
        uptime,
        uptime / 86400,
        // Redis's LRU clock: seconds, 24 bits.
        (now_us / 1_000_000) & ((1 << 24) - 1),
        endpoint.group_id,
    );
    // Clients a CLIENT PAUSE holds count as blocked, as in Redis (added to the node's).
    // CLIENT TRACKING is this gateway's: its own clients and table.
    let [tracking_clients, tracking_keys, tracking_items, tracking_prefixes] =
        shared.pubsub.tracking_counts(&endpoint.group_id);
    let clients = format!(
        "connected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}\r\ntracking_clients:{tracking_clients}\r\n",
        shared.clients.count(&session.scope()),
        shared.config.maxclients,
        session.pause.held()
    );
    let t = &session.stats.traffic;
    let [ops, input, output] = t.rates.per_second();
    let stats = format!(
        "total_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{ops}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ninstantaneous_input_kbps:{:.2}\r\ninstantaneous_output_kbps:{:.2}\r\nrejected_connections:{}\r\nevicted_clients:{}\r\ntotal_error_replies:{}\r\ntracking_total_keys:{tracking_keys}\r\ntracking_total_items:{tracking_items}\r\ntracking_total_prefixes:{tracking_prefixes}\r\n",
        t.connections.load(Ordering::Relaxed),
        t.commands.load(Ordering::Relaxed),
        t.net_input.load(Ordering::Relaxed),
        t.net_output.load(Ordering::Relaxed),
        input as f64 / 1024.0,
        output as f64 / 1024.0,
        t.rejected.load(Ordering::Relaxed),
        t.evicted_clients.load(Ordering::Relaxed),
        session.stats.total_error_replies.load(Ordering::Relaxed),
    );
    let cluster = format!("cluster_enabled:{}\r\n", u8::from(node_port));
    vec![
        ("server".into(), server),
        ("clients".into(), clients),
        ("stats".into(), stats),
        ("cpu".into(), ferrocache_common::cpu::info_fields("ferrocache_gateway_used_cpu_")),
        ("cluster".into(), cluster),
        ("modules".into(), String::new()),
        ("commandstats".into(), session.stats.commandstats()),
        ("errorstats".into(), session.stats.errorstats()),
        ("latencystats".into(), session.stats.latencystats()),
    ]
}

/// A section's fields with a count both the gateway and the node give (blocked_clients)
/// given once, summed, where it first appears.
fn sum_repeated(body: &str) -> String {
    let mut fields: Vec<(&str, String)> = Vec::new();
    for line in body.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let earlier = fields.iter_mut().find(|(n, _)| *n == name);
        match (earlier, value.parse::<u64>()) {
            (Some((_, sum)), Ok(v)) if sum.parse::<u64>().is_ok() => {
                *sum = (sum.parse::<u64>().unwrap_or(0) + v).to_string();
            }
            _ => fields.push((name, value.to_string())),
        }
    }
    fields.iter().map(|(n, v)| format!("{n}:{v}\r\n")).collect()
}

/// The gateway's commandstats with the node's (the commands its scripts ran) added in:
/// one line per command, counts summed, in name order.
fn merge_commandstats(body: &str) -> String {
    let mut merged: std::collections::BTreeMap<&str, [u64; 4]> = std::collections::BTreeMap::new();
    for line in body.split("\r\n").filter(|l| !l.is_empty()) {
        let Some((name, fields)) = line.split_once(':') else { continue };
        let sums = merged.entry(name).or_default();
        for (key, value) in fields.split(',').filter_map(|f| f.split_once('=')) {
            let slot = match key {
                "calls" => 0,
                "usec" => 1,
                "rejected_calls" => 2,
                "failed_calls" => 3,
                _ => continue,
            };
            sums[slot] += value.parse::<u64>().unwrap_or(0);
        }
    }
    merged
        .into_iter()
        .map(|(name, [calls, usec, rejected, failed])| {
            let per_call = if calls > 0 { usec as f64 / calls as f64 } else { 0.0 };
            format!(
                "{name}:calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}\r\n"
            )
        })
        .collect()
}

/// Splits a node's INFO text ("# Name\r\nfields...") into (lowercase name, fields).
fn node_sections(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split("\r\n") {
        if let Some(name) = line.strip_prefix("# ") {
            out.push((name.to_ascii_lowercase(), String::new()));
        } else if !line.is_empty() {
            if let Some((_, body)) = out.last_mut() {
                body.push_str(line);
                body.push_str("\r\n");
            }
        }
    }
    out
}

fn title(name: &str) -> String {
    if name == "cpu" {
        return "CPU".into();
    }
    let mut c = name.chars();
    c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
}

/// ROLE from the node's INFO replication fields: a primary answers its offset and its
/// replicas (presented at the reader endpoint, where clients reach them), a replica its
/// primary (the primary endpoint), link state and offset.
/// LASTSAVE from the node's INFO: when its newest base (Redis's RDB) was written.
pub fn last_save(node: Reply) -> Reply {
    let (Reply::Bulk(b) | Reply::Verbatim(b)) = &node else { return node };
    let text = String::from_utf8_lossy(b);
    let field = text.split("\r\n").find_map(|l| l.strip_prefix("rdb_last_save_time:"));
    match field.and_then(|v| v.parse::<i64>().ok()) {
        Some(t) => Reply::Integer(t),
        None => Reply::error("ERR this node does not report its last save yet"),
    }
}

pub fn role(node: Reply, host: &str, (primary_port, reader_port): (u16, u16)) -> Reply {
    let (Reply::Bulk(b) | Reply::Verbatim(b)) = &node else { return node };
    let text = String::from_utf8_lossy(b);
    let field = |name: &str| text.split("\r\n").find_map(|l| l.strip_prefix(name)?.strip_prefix(':'));
    let offset = |name: &str| field(name).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let bulk = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    if field("role") == Some("slave") {
        let state = if field("master_link_status") == Some("up") { "connected" } else { "connect" };
        return Reply::Array(vec![
            bulk("slave"),
            bulk(host),
            Reply::Integer(primary_port as i64),
            bulk(state),
            Reply::Integer(offset("slave_repl_offset")),
        ]);
    }
    let replicas = text
        .split("\r\n")
        .filter(|l| l.starts_with("slave") && l.contains(":node="))
        .map(|l| {
            let acked = l.split(',').find_map(|kv| kv.strip_prefix("offset=")).unwrap_or("0");
            Reply::Array(vec![bulk(host), bulk(&reader_port.to_string()), bulk(acked)])
        })
        .collect();
    Reply::Array(vec![bulk("master"), Reply::Integer(offset("master_repl_offset")), Reply::Array(replicas)])
}

pub fn compose(requested: &[String], mut sections: Vec<(String, String)>, node: Reply) -> Reply {
    if let Reply::Bulk(b) | Reply::Verbatim(b) = &node {
        sections.extend(node_sections(&String::from_utf8_lossy(b)));
    }
    let everything = requested.iter().any(|r| r == "all" || r == "everything");
    let wanted = |name: &str| {
        if everything {
            return true;
        }
        if requested.is_empty() || requested.iter().any(|r| r == "default") {
            return in_default(name) || requested.iter().any(|r| r == name);
        }
        requested.iter().any(|r| r == name)
    };
    let mut out = String::new();
    for name in ALL {
        if !wanted(name) {
            continue;
        }
        // The gateway and the node may both contribute to a section (stats).
        let bodies: Vec<&str> = sections.iter().filter(|(n, _)| n == name).map(|(_, b)| b.as_str()).collect();
        if !bodies.is_empty() {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            let body = bodies.concat();
            let body = match *name {
                "clients" => sum_repeated(&body),
                "commandstats" => merge_commandstats(&body),
                _ => body,
            };
            out.push_str(&format!("# {}\r\n{}", title(name), body));
        }
    }
    Reply::Verbatim(Bytes::from(out))
}
