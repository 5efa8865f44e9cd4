//! A connection's commands on a cluster-mode group: CLUSTER and the other cluster-client
//! commands, and data commands on node ports (Redis Cluster's redirects) or on the proxy
//! endpoints (split and fanned out by the gateway).

use std::sync::Arc;

use bytes::Bytes;
use ferrocache_common::command::{self, Flag, Route};
use ferrocache_common::Reply;
use tokio::sync::oneshot;

use super::{deadline, route, Session, Slot, Waiting};
use crate::endpoints::Endpoint;
use crate::router::EndpointKind;
use crate::Shared;

/// CLUSTER, READONLY, READWRITE and ASKING: cluster clients' connection commands.
pub(super) fn cluster_command(
    session: &mut Session,
    endpoint: &Endpoint,
    shared: &Arc<Shared>,
    spec: &command::CommandSpec,
    args: &[Bytes],
) -> Slot {
    use crate::cluster::{self, ClusterReply};
    let proto = session.proto;
    let table = shared.router.table();
    let me = shared.config.announce_host();
    let group = table.groups.get(&endpoint.group_id);
    let enabled = group.is_some_and(|g| g.cluster_enabled);
    let reply = match spec.name {
        "readonly" | "readwrite" | "asking" if !enabled => Reply::error(cluster::DISABLED),
        "readonly" => {
            session.readonly = true;
            Reply::ok()
        }
        "readwrite" => {
            session.readonly = false;
            Reply::ok()
        }
        // Slots never sit half-migrated between node groups here, so there is no ASK to follow.
        "asking" => Reply::ok(),
        _ => match cluster::command(group, endpoint.port, hosts(&table, &me), args) {
            ClusterReply::Now(r) => r,
            ClusterReply::Forward { slot, args } => {
                let group = endpoint.group_id.clone();
                let task_shared = shared.clone();
                return spawned(proto, shared, true, async move {
                    let to = crate::fanout::To::Slot(slot);
                    let request = crate::request::data(args);
                    crate::fanout::call(&task_shared, &group, EndpointKind::Primary, to, request, false, true).await
                });
            }
        },
    };
    Slot::Ready(reply, proto)
}

/// A data command on a cluster-mode group: on a node port as a Redis Cluster node answers
/// (MOVED, CROSSSLOT); on the proxy endpoints routed, split or fanned out by the gateway.
/// What a cluster node port answers at once for a command it does not serve (MOVED,
/// CROSSSLOT, CLUSTERDOWN): WATCH and a command queued in MULTI are redirected before they
/// are taken, as Redis Cluster redirects them.
pub(super) fn node_port_redirect(
    session: &Session,
    endpoint: &Endpoint,
    shared: &Shared,
    spec: &command::CommandSpec,
    args: &[Bytes],
) -> Option<Reply> {
    use crate::cluster::{node_route, NodeRoute};
    if endpoint.kind != EndpointKind::Node {
        return None;
    }
    let table = shared.router.table();
    let Some(g) = table.groups.get(&endpoint.group_id) else {
        return Some(Reply::error(format!("CLUSTERDOWN replication group '{}' does not exist", endpoint.group_id)));
    };
    let me = shared.config.announce_host();
    match node_route(g, endpoint.port, hosts(&table, &me), spec, args, session.readonly) {
        NodeRoute::Reply(r) => Some(r),
        _ => None,
    }
}

pub(super) async fn cluster_data(
    session: &mut Session,
    endpoint: &Endpoint,
    shared: &Arc<Shared>,
    spec: &'static command::CommandSpec,
    args: Vec<Bytes>,
) -> Slot {
    use crate::cluster::{node_route, NodeRoute};
    use crate::fanout::{self, Plan, To};
    let proto = session.proto;
    // The typed request, made once the routing below is done with the arguments.
    let typed = |args: Vec<Bytes>| crate::request::classify(spec, args, 0).map_err(|answer| Slot::Ready(answer, proto));
    let (group, kind, is_write) = (endpoint.group_id.clone(), endpoint.kind, spec.may_write());
    // WAIT and blocking commands are bounded by their own timeouts.
    let bounded = !(spec.is_wait() || spec.has(Flag::Blocking));
    let to = if endpoint.kind == EndpointKind::Node {
        let decision = {
            let table = shared.router.table();
            let Some(g) = table.groups.get(&group) else {
                return Slot::Ready(
                    Reply::error(format!("CLUSTERDOWN replication group '{group}' does not exist")),
                    proto,
                );
            };
            let me = shared.config.announce_host();
            node_route(g, endpoint.port, hosts(&table, &me), spec, &args, session.readonly)
        };
        match decision {
            NodeRoute::Reply(r) => return Slot::Ready(r, proto),
            NodeRoute::Slot { slot, kind, member: None } => (kind, Some(slot)),
            NodeRoute::Slot { slot, kind, member: Some(m) } => {
                let index =
                    shared.router.table().groups.get(&group).and_then(|g| g.shard_of(slot)).map_or(0, |(i, _)| i);
                let request = match typed(args) {
                    Ok(r) => r,
                    Err(answer) => return answer,
                };
                return part(
                    proto,
                    shared,
                    group,
                    kind,
                    To::Shard { index, member: Some(m) },
                    request,
                    is_write,
                    bounded,
                );
            }
            NodeRoute::Shard { index, kind, member } => {
                let request = match typed(args) {
                    Ok(r) => r,
                    Err(answer) => return answer,
                };
                return part(proto, shared, group, kind, To::Shard { index, member }, request, is_write, bounded);
            }
        }
    } else if spec.route == Route::AllShards || spec.is_wait() {
        let shards = shared.router.table().groups.get(&group).map_or(0, |g| g.shards.len());
        let task_shared = shared.clone();
        if spec.name == "scan" {
            return spawned(
                proto,
                shared,
                bounded,
                async move { fanout::scan(&task_shared, &group, kind, args).await },
            );
        }
        let request = match typed(args) {
            Ok(r) => r,
            Err(answer) => return answer,
        };
        return spawned(proto, shared, bounded, async move {
            fanout::every_shard(&task_shared, &group, kind, shards, spec, request).await
        });
    } else {
        match fanout::plan(spec, &args) {
            Plan::CrossSlot => return Slot::Ready(Reply::error(crate::cluster::CROSSSLOT), proto),
            Plan::Split => {
                let task_shared = shared.clone();
                return spawned(proto, shared, bounded, async move {
                    fanout::split(&task_shared, &group, kind, spec, args).await
                });
            }
            Plan::Whole(None) => {
                let request = match typed(args) {
                    Ok(r) => r,
                    Err(answer) => return answer,
                };
                let to = To::Shard { index: 0, member: None };
                return part(proto, shared, group, kind, to, request, is_write, bounded);
            }
            Plan::Whole(Some(slot)) => (kind, Some(slot)),
        }
    };
    // One slot: the ordinary path (the link's own reply, retried by the connection).
    let (kind, slot) = to;
    let deadline = bounded.then(|| deadline(shared, session.now));
    let request = match typed(args) {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let (rx, retry) = route(
        shared,
        &mut session.routes,
        &group,
        kind,
        slot,
        request,
        is_write,
        (!spec.is_wait()).then_some(session.now),
        true,
    )
    .await;
    Slot::Waiting(Box::new(Waiting { rx, mapper: None, proto, blocking: deadline.is_none(), deadline, retry }))
}

/// A reply computed on its own task (parts sent to several nodes, merged).
fn spawned(
    proto: u8,
    shared: &Arc<Shared>,
    bounded: bool,
    work: impl std::future::Future<Output = Reply> + Send + 'static,
) -> Slot {
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let _ = tx.send(work.await);
    });
    let deadline = bounded.then(|| deadline(shared, std::time::Instant::now()));
    Slot::Waiting(Box::new(Waiting { rx, mapper: None, proto, deadline, blocking: false, retry: None }))
}

/// Sends one command to a given node group (or replica) on its own task.
#[allow(clippy::too_many_arguments)]
fn part(
    proto: u8,
    shared: &Arc<Shared>,
    group: String,
    kind: EndpointKind,
    to: crate::fanout::To,
    request: crate::request::Request,
    is_write: bool,
    bounded: bool,
) -> Slot {
    let task_shared = shared.clone();
    spawned(proto, shared, bounded, async move {
        crate::fanout::call(&task_shared, &group, kind, to, request, is_write, bounded).await
    })
}

/// The gateways cluster clients are told about (see [`crate::cluster::Hosts`]).
pub(super) fn hosts<'a>(table: &'a crate::router::Table, me: &'a str) -> crate::cluster::Hosts<'a> {
    crate::cluster::Hosts { all: &table.gateway_hosts, me }
}
