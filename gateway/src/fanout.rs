//! The proxy endpoints of a cluster-mode group: commands that span node groups.
//!
//! A plain client on the primary or reader endpoint never sees MOVED: the gateway routes
//! each key itself. Multi-key commands whose keys fall in several slots are split per slot
//! and their replies merged (MGET, MSET, DEL, UNLINK, EXISTS, TOUCH; not atomic across
//! node groups, as with Redis Enterprise's proxy); commands about the whole keyspace (DBSIZE,
//! KEYS, SCAN, RANDOMKEY, FLUSHALL) run on every node group. Every part is re-sent while
//! routes change, like any single command.

use std::time::Duration;

use bytes::Bytes;
use ferrocache_common::command::{key_positions, CommandSpec};
use ferrocache_common::slot::{key_slot, SLOT_COUNT};
use ferrocache_common::Reply;

use crate::cluster::CROSSSLOT;
use crate::request::{data, Request};
use crate::retry;
use crate::router::EndpointKind;
use crate::Shared;

/// Where one part goes.
#[derive(Debug, Clone)]
pub enum To {
    /// The node group owning this slot.
    Slot(u16),
    /// Node group number `index`, or a given replica of it (a READONLY node connection).
    Shard { index: usize, member: Option<std::sync::Arc<str>> },
}

/// Sends one command and waits for its final reply, re-sending it while it is refused for
/// changing routes (or, for reads, lost with a broken link), within the retry window.
/// `bounded`: the command timeout applies (not to WAIT and blocking commands).
pub async fn call(
    shared: &Shared,
    group: &str,
    kind: EndpointKind,
    to: To,
    request: Request,
    is_write: bool,
    bounded: bool,
) -> Reply {
    let started = tokio::time::Instant::now();
    let until = started + Duration::from_millis(shared.config.retry_window_ms);
    let timeout = if bounded { shared.config.command_timeout_ms } else { 100 * 365 * 86_400_000 };
    let deadline = started + Duration::from_millis(timeout);
    loop {
        let target = match &to {
            To::Slot(slot) => shared.router.target(group, kind, Some(*slot)),
            To::Shard { index, member } => shared.router.target_shard(group, *index, kind, member.as_deref()),
        };
        let (reply, version, readonly) = match target {
            Ok(t) => {
                let (version, readonly) = (t.version, t.readonly);
                let slot = match &to {
                    To::Slot(s) => Some(*s),
                    To::Shard { .. } => None,
                };
                let rx = shared.router.send(t, slot, request.clone()).await;
                let reply = match tokio::time::timeout_at(deadline, rx).await {
                    Ok(Ok(r)) => r,
                    Ok(Err(_)) => Reply::error("ERR internal error: the reply was lost"),
                    Err(_) => return Reply::error(crate::connection::NODE_TIMED_OUT),
                };
                (reply, version, readonly)
            }
            Err(e) if e.is_transient() => (e.into(), shared.router.table().version, false),
            Err(e) => return e.into(),
        };
        let now = tokio::time::Instant::now();
        if !retry::retryable(retry::classify(&reply, readonly), is_write) || now >= until {
            return reply;
        }
        shared.router.changed_since(version, Duration::from_millis(50).min(until - now)).await;
    }
}

/// The commands split across slots on proxy endpoints, and how their parts combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Merge {
    /// MGET: values back in the order the keys were given.
    Values,
    /// MSET: OK when every part is.
    Ok,
    /// DEL, UNLINK, EXISTS, TOUCH: the sum.
    Sum,
}

fn merge_kind(name: &str) -> Option<Merge> {
    match name {
        "mget" => Some(Merge::Values),
        "mset" => Some(Merge::Ok),
        "del" | "unlink" | "exists" | "touch" => Some(Merge::Sum),
        _ => None,
    }
}

/// What a proxy endpoint does with a keyed command.
pub enum Plan {
    /// All keys in one slot (or none): send it whole.
    Whole(Option<u16>),
    /// Keys in several slots, and the command can be split.
    Split,
    /// Keys in several slots, and it cannot.
    CrossSlot,
}

pub fn plan(spec: &CommandSpec, args: &[Bytes]) -> Plan {
    match crate::cluster::command_slot(spec, args) {
        Ok(slot) => Plan::Whole(slot),
        Err(_) if merge_kind(spec.name).is_some() => Plan::Split,
        Err(_) => Plan::CrossSlot,
    }
}

/// Runs a multi-key command whose keys span slots: one part per slot, in parallel.
pub async fn split(shared: &Shared, group: &str, kind: EndpointKind, spec: &CommandSpec, args: Vec<Bytes>) -> Reply {
    let Some(merge) = merge_kind(spec.name) else { return Reply::error(CROSSSLOT) };
    let step = if merge == Merge::Ok { 2 } else { 1 };
    // slot -> (positions of its keys among all keys, the part's arguments)
    let mut parts: Vec<(u16, Vec<usize>, Vec<Bytes>)> = Vec::new();
    for (n, i) in key_positions(spec, &args).into_iter().enumerate() {
        let slot = key_slot(&args[i]);
        let part = match parts.iter_mut().position(|p| p.0 == slot) {
            Some(p) => &mut parts[p],
            None => {
                parts.push((slot, Vec::new(), vec![args[0].clone()]));
                parts.last_mut().expect("just pushed")
            }
        };
        part.1.push(n);
        part.2.extend(args[i..i + step].iter().cloned());
    }
    let total = parts.iter().map(|p| p.1.len()).sum::<usize>();
    let calls = parts
        .iter()
        .map(|(slot, _, part)| call(shared, group, kind, To::Slot(*slot), data(part.clone()), spec.is_write(), true));
    let replies = futures::future::join_all(calls).await;
    if let Some(e) = replies.iter().find(|r| matches!(r, Reply::Error(_))) {
        return e.clone();
    }
    match merge {
        Merge::Ok => Reply::ok(),
        Merge::Sum => Reply::Integer(replies.iter().map(|r| if let Reply::Integer(n) = r { *n } else { 0 }).sum()),
        Merge::Values => {
            let mut values = vec![Reply::NullBulk; total];
            for ((_, positions, _), reply) in parts.iter().zip(replies) {
                let Reply::Array(items) = reply else { return Reply::error("ERR unexpected reply from a node") };
                for (pos, item) in positions.iter().zip(items) {
                    values[*pos] = item;
                }
            }
            Reply::Array(values)
        }
    }
}

/// Runs a keyspace-wide command (DBSIZE, KEYS, FLUSHALL, FLUSHDB, RANDOMKEY) on every node
/// group of `shards` and combines the replies.
pub async fn every_shard(
    shared: &Shared,
    group: &str,
    kind: EndpointKind,
    shards: usize,
    spec: &CommandSpec,
    request: Request,
) -> Reply {
    let part = |index: usize| {
        let to = To::Shard { index, member: None };
        call(shared, group, kind, to, request.clone(), spec.is_write(), !spec.is_wait())
    };
    if spec.name == "randomkey" {
        // A random node group's random key; an empty one passes to the next.
        let start = rand::random_range(0..shards.max(1));
        for i in 0..shards {
            match part((start + i) % shards).await {
                Reply::NullBulk => continue,
                r => return r,
            }
        }
        return Reply::NullBulk;
    }
    let replies = futures::future::join_all((0..shards).map(part)).await;
    if let Some(e) = replies.iter().find(|r| matches!(r, Reply::Error(_))) {
        return e.clone();
    }
    match spec.name {
        "dbsize" => Reply::Integer(replies.iter().map(|r| if let Reply::Integer(n) = r { *n } else { 0 }).sum()),
        // WAIT on a proxy: the replicas of every node group, so the smallest count holds.
        "wait" => {
            Reply::Integer(replies.iter().map(|r| if let Reply::Integer(n) = r { *n } else { 0 }).min().unwrap_or(0))
        }
        // WAITAOF: each count's smallest over the node groups.
        "waitaof" => {
            let count = |r: &Reply, i: usize| match r {
                Reply::Array(v) => match v.get(i) {
                    Some(Reply::Integer(n)) => *n,
                    _ => 0,
                },
                _ => 0,
            };
            let min = |i| replies.iter().map(|r| count(r, i)).min().unwrap_or(0);
            Reply::Array(vec![Reply::Integer(min(0)), Reply::Integer(min(1))])
        }
        "keys" => Reply::Array(
            replies.into_iter().flat_map(|r| if let Reply::Array(keys) = r { keys } else { Vec::new() }).collect(),
        ),
        _ => replies.into_iter().next().unwrap_or_else(Reply::ok),
    }
}

/// SCAN on a proxy endpoint. The cursor is a slot number (as on a single node group): the
/// node group owning that slot scans from it, and the next cursor never skips past the end
/// of its run of slots, so the node groups after it are scanned too.
pub async fn scan(shared: &Shared, group: &str, kind: EndpointKind, args: Vec<Bytes>) -> Reply {
    let cursor = std::str::from_utf8(&args[1]).ok().and_then(|t| t.parse::<u64>().ok());
    let Some(cursor) = cursor else { return Reply::error("ERR invalid cursor") };
    let cursor = cursor.min(SLOT_COUNT as u64 - 1) as u16;
    let owners = {
        let table = shared.router.table();
        match table.groups.get(group) {
            Some(g) => (0..SLOT_COUNT).map(|s| g.shard_of(s).map(|(i, _)| i)).collect::<Vec<_>>(),
            None => return Reply::error(format!("CLUSTERDOWN replication group '{group}' does not exist")),
        }
    };
    let mine = owners[cursor as usize];
    // The end of this node group's run of slots from the cursor.
    let run_end = (cursor..SLOT_COUNT).find(|&s| owners[s as usize] != mine);
    let reply = call(shared, group, kind, To::Slot(cursor), data(args), false, true).await;
    let Reply::Array(mut parts) = reply else { return reply };
    if parts.len() != 2 {
        return Reply::Array(parts);
    }
    let next = match &parts[0] {
        Reply::Bulk(b) => std::str::from_utf8(b).ok().and_then(|t| t.parse::<u16>().ok()).unwrap_or(0),
        _ => 0,
    };
    let next = match run_end {
        Some(end) if next == 0 || next > end => end,
        Some(_) => next,
        None => next,
    };
    parts[0] = Reply::Bulk(Bytes::from(next.to_string()));
    Reply::Array(parts)
}
