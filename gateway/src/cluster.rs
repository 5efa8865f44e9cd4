//! Cluster mode as Redis Cluster clients see it.
//!
//! A cluster-mode-enabled group presents each member as a Redis Cluster *node*: every
//! gateway listens on one port per member (the member's `port`), and CLUSTER SLOTS, SHARDS
//! and NODES list those ports. A command on a node port runs only if its keys hash to one
//! slot (else `-CROSSSLOT`) owned by that node's group (else `-MOVED slot host:port` naming
//! the owner's primary port); a replica's port serves reads after READONLY and redirects
//! everything else to its primary, as a Redis replica does. The gateway still routes by the
//! coordinators' slot map underneath, so a client holding a stale map is redirected, never
//! served from the wrong node group.
//!
//! Node ids are derived from member ids (the same on every gateway and across restarts).

use bytes::Bytes;
use ferrocache_common::command::{key_positions, CommandSpec};
use ferrocache_common::slot::{key_slot, SLOT_COUNT};
use ferrocache_common::Reply;

use crate::router::{EndpointKind, Group, Member, Shard};

pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// Redis Cluster's refusals of commands that reach beyond database 0.
pub fn refused_in_cluster_mode(spec: &CommandSpec, args: &[Bytes]) -> Option<Reply> {
    let other_db = |arg: &[u8]| arg != b"0";
    match spec.name {
        "move" => Some(Reply::error("ERR MOVE is not allowed in cluster mode")),
        "swapdb" => Some(Reply::error("ERR SWAPDB is not allowed in cluster mode")),
        "copy" => {
            let db = args.iter().skip(3).position(|a| a.eq_ignore_ascii_case(b"DB")).and_then(|i| args.get(i + 4));
            db.filter(|d| other_db(d))
                .map(|_| Reply::error("ERR Copying to another database is not allowed in cluster mode"))
        }
        _ => None,
    }
}
pub const DISABLED: &str = "ERR This instance has cluster support disabled";

/// Where cluster clients are told each node group lives: node group i at the host of
/// gateway i mod n (every gateway serves every port; spreading the groups spreads the
/// clients, and a lost gateway's groups move to the others once it is listed offline).
/// This gateway alone while no gateway list is known.
#[derive(Debug, Clone, Copy)]
pub struct Hosts<'a> {
    pub all: &'a [String],
    pub me: &'a str,
}

impl<'a> Hosts<'a> {
    pub fn of_shard(&self, index: usize) -> &'a str {
        if self.all.is_empty() {
            self.me
        } else {
            &self.all[index % self.all.len()]
        }
    }
}

/// The 40-hex-digit node name cluster clients see for a member.
pub fn node_name(member_id: &str) -> String {
    (0u64..3)
        .map(|seed| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for b in member_id.bytes() {
                h ^= b as u64;
                h = h.wrapping_mul(0x0000_0100_0000_01B3);
            }
            // splitmix64's finalizer: similar member ids get unrelated-looking names.
            h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            h ^= h >> 31;
            format!("{h:016x}")
        })
        .collect::<String>()[..40]
        .to_string()
}

/// The one slot all of a command's keys hash to: Ok(None) without keys, Err when they span
/// several slots.
pub fn command_slot(spec: &CommandSpec, args: &[Bytes]) -> Result<Option<u16>, Reply> {
    let mut slot = None;
    for i in key_positions(spec, args) {
        let s = key_slot(&args[i]);
        match slot {
            None => slot = Some(s),
            Some(first) if first != s => return Err(Reply::error(CROSSSLOT)),
            Some(_) => {}
        }
    }
    Ok(slot)
}

/// Where a command received on a cluster node port goes.
#[derive(Debug, PartialEq)]
pub enum NodeRoute {
    /// To the node group owning `slot` (its primary, or for a READONLY replica connection
    /// that replica).
    Slot { slot: u16, kind: EndpointKind, member: Option<std::sync::Arc<str>> },
    /// A command without keys: to this port's own node group.
    Shard { index: usize, kind: EndpointKind, member: Option<std::sync::Arc<str>> },
    /// Answered at once (MOVED, CROSSSLOT, CLUSTERDOWN).
    Reply(Reply),
}

/// Decides a command on the node port `port` of `group`, as a Redis Cluster node would.
pub fn node_route(
    group: &Group,
    port: u16,
    hosts: Hosts,
    spec: &CommandSpec,
    args: &[Bytes],
    readonly_connection: bool,
) -> NodeRoute {
    let Some((mine, shard, me)) = group.member_at(port) else {
        return NodeRoute::Reply(Reply::error("CLUSTERDOWN this node is no longer part of the cluster"));
    };
    let is_primary = shard.primary.as_ref().is_some_and(|p| p.node_id == me.node_id);
    let reads_here = !is_primary && readonly_connection && !spec.is_write();
    let (kind, member) =
        if reads_here { (EndpointKind::Reader, Some(me.node_id.clone())) } else { (EndpointKind::Primary, None) };
    let slot = match command_slot(spec, args) {
        Err(e) => return NodeRoute::Reply(e),
        Ok(None) => {
            if !is_primary && !reads_here {
                // A replica without READONLY redirects even keyless data commands (DBSIZE
                // answers for its own keys in Redis; here it answers for its node group).
                return NodeRoute::Shard { index: mine, kind: EndpointKind::Primary, member: None };
            }
            return NodeRoute::Shard { index: mine, kind, member };
        }
        Ok(Some(slot)) => slot,
    };
    let Some((owner, owning)) = group.shard_of(slot) else {
        return NodeRoute::Reply(Reply::error("CLUSTERDOWN Hash slot not served"));
    };
    if owner != mine || !(is_primary || reads_here) {
        return match &owning.primary {
            Some(p) => NodeRoute::Reply(Reply::error(format!("MOVED {slot} {}:{}", hosts.of_shard(owner), p.port))),
            None => NodeRoute::Reply(Reply::error("CLUSTERDOWN Hash slot not served")),
        };
    }
    NodeRoute::Slot { slot, kind, member }
}

/// CLUSTER subcommands that need a node's keyspace: COUNTKEYSINSLOT and GETKEYSINSLOT go to
/// the slot's owner.
pub enum ClusterReply {
    Now(Reply),
    Forward { slot: u16, args: Vec<Bytes> },
}

fn bulk(s: impl Into<String>) -> Reply {
    Reply::Bulk(Bytes::from(s.into()))
}

fn slot_arg(arg: &[u8]) -> Result<u16, Reply> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
        .filter(|s| (0..SLOT_COUNT as i64).contains(s))
        .map(|s| s as u16)
        .ok_or_else(|| Reply::error("ERR Invalid or out of range slot"))
}

/// CLUSTER on any endpoint of `group` (`port` = the endpoint's port; a node port names
/// "myself").
pub fn command(group: Option<&Group>, port: u16, hosts: Hosts, args: &[Bytes]) -> ClusterReply {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    // As Redis without cluster support: every subcommand, KEYSLOT and HELP included.
    let Some(group) = group.filter(|g| g.cluster_enabled) else {
        return ClusterReply::Now(Reply::error(DISABLED));
    };
    if sub == "keyslot" {
        return ClusterReply::Now(match args.len() {
            3 => Reply::Integer(key_slot(&args[2]) as i64),
            _ => Reply::error("ERR wrong number of arguments for 'cluster|keyslot' command"),
        });
    }
    if sub == "help" {
        return ClusterReply::Now(help());
    }
    let arity = |n: usize| {
        (args.len() != n).then(|| Reply::error(format!("ERR wrong number of arguments for 'cluster|{sub}' command")))
    };
    let me = group.member_at(port);
    let reply = match sub.as_str() {
        "slots" => arity(2).unwrap_or_else(|| slots(group, hosts)),
        "shards" => arity(2).unwrap_or_else(|| shards(group, hosts)),
        "nodes" => arity(2).unwrap_or_else(|| Reply::Verbatim(Bytes::from(nodes(group, hosts, port)))),
        "info" => arity(2).unwrap_or_else(|| Reply::Verbatim(Bytes::from(info(group, me.map(|(_, s, _)| s))))),
        "myid" => arity(2).unwrap_or_else(|| match me.or_else(|| first_primary(group)) {
            Some((_, _, m)) => bulk(node_name(&m.node_id)),
            None => Reply::error("ERR no node"),
        }),
        // Nodes do not gossip (the coordinators hold the topology): there is no cluster bus,
        // so no links to describe.
        "links" => arity(2).unwrap_or_else(|| Reply::Array(vec![])),
        "myshardid" => arity(2).unwrap_or_else(|| match me.or_else(|| first_primary(group)) {
            Some((_, s, _)) => bulk(node_name(&format!("shard:{}:{}", group.id, s.id))),
            None => Reply::error("ERR no node"),
        }),
        "countkeysinslot" => {
            if let Some(e) = arity(3) {
                e
            } else {
                match slot_arg(&args[2]) {
                    Ok(slot) => return ClusterReply::Forward { slot, args: args.to_vec() },
                    Err(e) => e,
                }
            }
        }
        "getkeysinslot" => {
            if let Some(e) = arity(4) {
                e
            } else {
                let count = std::str::from_utf8(&args[3]).ok().and_then(|t| t.parse::<i64>().ok());
                match (slot_arg(&args[2]), count) {
                    (Err(e), _) => e,
                    (_, None) => Reply::error("ERR Invalid number of keys"),
                    (_, Some(n)) if n < 0 => Reply::error("ERR Invalid number of keys"),
                    (Ok(slot), Some(_)) => return ClusterReply::Forward { slot, args: args.to_vec() },
                }
            }
        }
        "addslots" | "addslotsrange" | "delslots" | "delslotsrange" | "failover" | "forget" | "meet" | "replicate"
        | "reset" | "setslot" | "bumpepoch" | "flushslots" | "set-config-epoch" | "saveconfig" => {
            Reply::error(format!(
                "ERR CLUSTER {} is not available: the coordinators own the topology (use the admin API, e.g. \
             ModifyReplicationGroupShardConfiguration or TestFailover)",
                sub.to_uppercase()
            ))
        }
        _ => Reply::error(format!("ERR unknown subcommand '{}'. Try CLUSTER HELP.", String::from_utf8_lossy(&args[1]))),
    };
    ClusterReply::Now(reply)
}

fn first_primary(group: &Group) -> Option<(usize, &Shard, &Member)> {
    group.shards.iter().enumerate().find_map(|(i, s)| s.primary.as_ref().map(|p| (i, s, p)))
}

fn node_entry(m: &Member, host: &str) -> Reply {
    Reply::Array(vec![bulk(host), Reply::Integer(m.port as i64), bulk(node_name(&m.node_id)), Reply::Array(vec![])])
}

/// CLUSTER SLOTS: each contiguous range, its primary first, then its replicas.
fn slots(group: &Group, hosts: Hosts) -> Reply {
    let mut ranges: Vec<(u16, u16, &Shard, &str)> = group
        .shards
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.slots.iter().map(move |&(a, b)| (a, b, s, hosts.of_shard(i))))
        .collect();
    ranges.sort_by_key(|r| r.0);
    Reply::Array(
        ranges
            .into_iter()
            .filter(|(_, _, s, _)| s.primary.is_some())
            .map(|(a, b, s, host)| {
                let mut entry = vec![Reply::Integer(a as i64), Reply::Integer(b as i64)];
                entry.extend(s.members().map(|m| node_entry(m, host)));
                Reply::Array(entry)
            })
            .collect(),
    )
}

/// CLUSTER SHARDS (Redis 7): each node group's slots and nodes.
fn shards(group: &Group, hosts: Hosts) -> Reply {
    Reply::Array(
        group
            .shards
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let host = hosts.of_shard(i);
                let slots = s.slots.iter().flat_map(|&(a, b)| [Reply::Integer(a as i64), Reply::Integer(b as i64)]);
                let nodes = s.members().map(|m| {
                    let primary = s.primary.as_ref().is_some_and(|p| p.node_id == m.node_id);
                    Reply::Map(vec![
                        bulk("id"),
                        bulk(node_name(&m.node_id)),
                        bulk("port"),
                        Reply::Integer(m.port as i64),
                        bulk("ip"),
                        bulk(host),
                        bulk("endpoint"),
                        bulk(host),
                        bulk("role"),
                        bulk(if primary { "master" } else { "replica" }),
                        bulk("replication-offset"),
                        Reply::Integer(0),
                        bulk("health"),
                        bulk(if primary || m.in_sync { "online" } else { "loading" }),
                    ])
                });
                Reply::Map(vec![
                    bulk("slots"),
                    Reply::Array(slots.collect()),
                    bulk("nodes"),
                    Reply::Array(nodes.collect()),
                ])
            })
            .collect(),
    )
}

/// CLUSTER NODES: Redis's text format, one line per member.
fn nodes(group: &Group, hosts: Hosts, port: u16) -> String {
    let mut out = String::new();
    // "myself" is the member on this port as presented at this gateway; a client that came
    // to a port presented at another gateway still gets a "myself" line.
    let here = group
        .shards
        .iter()
        .enumerate()
        .any(|(i, s)| hosts.of_shard(i) == hosts.me && s.members().any(|m| m.port == port));
    for (i, s) in group.shards.iter().enumerate() {
        let host = hosts.of_shard(i);
        let primary_name = s.primary.as_ref().map(|p| node_name(&p.node_id));
        for m in s.members() {
            let is_primary = s.primary.as_ref().is_some_and(|p| p.node_id == m.node_id);
            let mut flags = Vec::new();
            if m.port == port && (host == hosts.me || !here) {
                flags.push("myself");
            }
            flags.push(if is_primary { "master" } else { "slave" });
            let master = if is_primary { "-".to_string() } else { primary_name.clone().unwrap_or_else(|| "-".into()) };
            let bus = m.port.checked_add(10000).unwrap_or(0);
            out.push_str(&format!(
                "{} {host}:{}@{bus} {} {master} 0 0 {} connected",
                node_name(&m.node_id),
                m.port,
                flags.join(","),
                s.config_epoch,
            ));
            if is_primary {
                for &(a, b) in &s.slots {
                    if a == b {
                        out.push_str(&format!(" {a}"));
                    } else {
                        out.push_str(&format!(" {a}-{b}"));
                    }
                }
            }
            out.push('\n');
        }
    }
    out
}

/// CLUSTER INFO.
fn info(group: &Group, mine: Option<&Shard>) -> String {
    let assigned: usize = group.shards.iter().flat_map(|s| &s.slots).map(|&(a, b)| (b - a) as usize + 1).sum();
    let served: usize = group
        .shards
        .iter()
        .filter(|s| s.primary.is_some())
        .flat_map(|s| &s.slots)
        .map(|&(a, b)| (b - a) as usize + 1)
        .sum();
    let known: usize = group.shards.iter().map(|s| s.members().count()).sum();
    let current_epoch = group.shards.iter().map(|s| s.config_epoch).max().unwrap_or(0);
    let state = if served == SLOT_COUNT as usize { "ok" } else { "fail" };
    [
        format!("cluster_state:{state}"),
        format!("cluster_slots_assigned:{assigned}"),
        format!("cluster_slots_ok:{served}"),
        "cluster_slots_pfail:0".into(),
        format!("cluster_slots_fail:{}", assigned - served),
        format!("cluster_known_nodes:{known}"),
        format!("cluster_size:{}", group.shards.iter().filter(|s| !s.slots.is_empty()).count()),
        format!("cluster_current_epoch:{current_epoch}"),
        format!("cluster_my_epoch:{}", mine.map_or(current_epoch, |s| s.config_epoch)),
        "cluster_stats_messages_sent:0".into(),
        "cluster_stats_messages_received:0".into(),
        "total_cluster_links_buffer_limit_exceeded:0".into(),
    ]
    .iter()
    .map(|l| format!("{l}\r\n"))
    .collect()
}

fn help() -> Reply {
    let lines = [
        "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "COUNTKEYSINSLOT <slot>",
        "    Return the number of keys in <slot>.",
        "GETKEYSINSLOT <slot> <count>",
        "    Return key names stored by current node in a slot.",
        "INFO",
        "    Return information about the cluster.",
        "KEYSLOT <key>",
        "    Return the hash slot for <key>.",
        "MYID",
        "    Return the node id.",
        "MYSHARDID",
        "    Return the node's shard id.",
        "NODES",
        "    Return cluster configuration seen by node. Output format:",
        "    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
        "SHARDS",
        "    Return information about slot range mappings and the nodes associated with them.",
        "LINKS",
        "    Return information about all network links between this node and its peers.",
        "    Output format is an array where each array element is a map containing attributes of a link",
        "SLOTS",
        "    Return information about slots range mappings. Each range is made of:",
        "    start, end, master and replicas IP addresses, ports and ids",
        "HELP",
        "    Print this help.",
    ];
    Reply::Array(lines.iter().map(|l| Reply::Simple(l.to_string())).collect())
}

#[cfg(test)]
mod tests;
