//! FAILOVER: Redis's coordinated failover, asked of the primary. Here the coordinators run it
//! as a planned switch (TestFailover): writes pause, the most up-to-date in-sync replica
//! catches up and takes over, nothing acknowledged is lost. Like Redis, it answers OK at once
//! and the switch completes in the background.

use bytes::Bytes;
use ferrocache_common::Reply;
use ferrocache_proto::admin::v1 as admin;

use crate::router::EndpointKind;
use crate::Shared;

fn lower(a: &[u8]) -> String {
    String::from_utf8_lossy(a).to_ascii_lowercase()
}

/// FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms] on `endpoint_kind` of `group`;
/// `node_group`: the node group a node port belongs to (None: the group's only one).
pub async fn failover(
    shared: &Shared,
    group: &str,
    endpoint_kind: EndpointKind,
    node_group: Option<String>,
    args: &[Bytes],
) -> Reply {
    let mut i = 1;
    let (mut to, mut abort) = (false, false);
    while i < args.len() {
        match lower(&args[i]).as_str() {
            "to" if i + 2 < args.len() => {
                to = true;
                i += 3;
                if args.get(i).is_some_and(|a| lower(a) == "force") {
                    i += 1;
                }
            }
            "abort" => {
                abort = true;
                i += 1;
            }
            "timeout" if i + 1 < args.len() => {
                match ferrocache_common::int::parse_i64(&args[i + 1]) {
                    Some(ms) if ms > 0 => {}
                    Some(_) => return Reply::error("ERR FAILOVER timeout must be greater than 0"),
                    None => return Reply::error(ferrocache_common::reply::errors::NOT_INTEGER),
                }
                i += 2;
            }
            _ => return Reply::error(ferrocache_common::reply::errors::SYNTAX),
        }
    }
    if endpoint_kind == EndpointKind::Reader {
        return Reply::error("ERR FAILOVER is not valid when server is a replica.");
    }
    if abort {
        // The switch is the coordinators' once begun: it completes, or they roll it back.
        return Reply::error("ERR No failover in progress.");
    }
    if to {
        return Reply::error(
            "ERR FAILOVER TO is not served: the coordinators promote the most up-to-date in-sync replica",
        );
    }
    let node_group = match node_group {
        Some(id) => id,
        None => {
            let table = shared.router.table();
            match table.groups.get(group).map(|g| g.shards.as_slice()) {
                Some([only]) => only.id.clone(),
                Some(_) => {
                    return Reply::error(
                        "ERR FAILOVER on a cluster-mode group is asked of a node: connect to one of its node ports",
                    )
                }
                None => return Reply::error(format!("CLUSTERDOWN replication group '{group}' does not exist")),
            }
        }
    };
    let request = admin::TestFailoverRequest { replication_group_id: group.to_string(), node_group_id: node_group };
    let started = crate::config_command::admin_call(shared, |mut client| {
        let request = request.clone();
        async move { client.test_failover(request).await.map(|_| ()) }
    })
    .await;
    match started {
        Ok(()) => Reply::ok(),
        Err(e) if e.contains("no online, in-sync replica") => Reply::error("ERR FAILOVER requires connected replicas."),
        Err(e) => Reply::error(format!("ERR FAILOVER could not start: {e}")),
    }
}
