//! Routing: the latest topology from the coordinators, turned into "which node serves this
//! command", and the links to those nodes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use ferrocache_common::Reply;
use ferrocache_proto::internal::v1 as pb;
use parking_lot::{Mutex, RwLock};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::link::{NodeLink, Pending};

/// Which endpoint of a group a client connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    /// Everything goes to the primary.
    Primary,
    /// Reads are spread over in-sync replicas; writes are refused.
    Reader,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub node_id: String,
    pub address: String,
    pub in_sync: bool,
}

#[derive(Debug, Clone)]
pub struct Shard {
    pub id: String,
    pub config_epoch: u64,
    pub primary: Option<Member>,
    pub replicas: Vec<Member>,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub status: String,
    pub primary_port: u16,
    pub reader_port: u16,
    pub shards: Vec<Shard>,
    /// The group's Redis parameters (set ones only), for CONFIG GET.
    pub parameters: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default)]
pub struct Table {
    pub version: u64,
    pub groups: HashMap<String, Group>,
}

impl Table {
    pub fn from_proto(t: pb::Topology) -> Table {
        let groups = t
            .groups
            .into_iter()
            .map(|g| {
                let shards = g
                    .node_groups
                    .into_iter()
                    .map(|s| {
                        let member = |m: &pb::MemberRoute| Member {
                            node_id: m.node_id.clone(),
                            address: m.datanode_address.clone(),
                            in_sync: m.in_sync,
                        };
                        Shard {
                            id: s.node_group_id.clone(),
                            config_epoch: s.config_epoch,
                            primary: s.members.iter().find(|m| m.role == pb::Role::Primary as i32).map(member),
                            replicas: s
                                .members
                                .iter()
                                .filter(|m| m.role == pb::Role::Replica as i32)
                                .map(member)
                                .collect(),
                        }
                    })
                    .collect();
                let group = Group {
                    id: g.replication_group_id.clone(),
                    status: g.status,
                    primary_port: g.primary_port as u16,
                    reader_port: g.reader_port as u16,
                    shards,
                    parameters: g.parameters.into_iter().collect(),
                };
                (g.replication_group_id, group)
            })
            .collect();
        Table { version: t.version, groups }
    }
}

pub struct Router {
    table: RwLock<Arc<Table>>,
    /// The table's version, for waiters that need newer routes.
    version: tokio::sync::watch::Sender<u64>,
    links: Mutex<HashMap<String, Arc<NodeLink>>>,
    next_reader: AtomicUsize,
    cancel: CancellationToken,
}

/// Why a command has nowhere to go.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouteError {
    #[error("CLUSTERDOWN replication group '{0}' does not exist")]
    NoGroup(String),
    #[error("CLUSTERDOWN The cluster is down")]
    NoShard,
    /// Between a primary's loss and its replacement: worth waiting for.
    #[error("CLUSTERDOWN replication group '{0}' has no available primary")]
    NoPrimary(String),
}

impl RouteError {
    /// Whether new routes may fix it soon (a failover in progress).
    pub fn is_transient(&self) -> bool {
        matches!(self, RouteError::NoPrimary(_))
    }
}

impl From<RouteError> for Reply {
    fn from(e: RouteError) -> Reply {
        Reply::error(e.to_string())
    }
}

/// Where one command goes.
pub struct Target {
    pub node_id: String,
    pub address: String,
    pub config_epoch: u64,
    pub readonly: bool,
    /// The routing table's version this choice came from.
    pub version: u64,
}

impl Router {
    pub fn new(cancel: CancellationToken) -> Router {
        Router {
            table: RwLock::new(Arc::new(Table::default())),
            version: tokio::sync::watch::channel(0).0,
            links: Mutex::new(HashMap::new()),
            next_reader: AtomicUsize::new(0),
            cancel,
        }
    }

    pub fn table(&self) -> Arc<Table> {
        self.table.read().clone()
    }

    pub fn set_table(&self, table: Table) {
        // Links to nodes that moved or vanished are closed; new ones open on first use.
        let live: HashMap<&str, &str> = table
            .groups
            .values()
            .flat_map(|g| g.shards.iter())
            .flat_map(|s| s.primary.iter().chain(s.replicas.iter()))
            .map(|m| (m.node_id.as_str(), m.address.as_str()))
            .collect();
        self.links.lock().retain(|id, link| {
            let keep = live.get(id.as_str()) == Some(&link.address.as_str());
            if !keep {
                link.close();
            }
            keep
        });
        let version = table.version;
        *self.table.write() = Arc::new(table);
        self.version.send_replace(version);
    }

    /// Waits until the routes are newer than `version`, or `max` passes.
    pub async fn changed_since(&self, version: u64, max: std::time::Duration) {
        let mut rx = self.version.subscribe();
        let _ = tokio::time::timeout(max, rx.wait_for(|v| *v > version)).await;
    }

    /// Picks the node for a command on `group`'s endpoint.
    pub fn target(&self, group: &str, kind: EndpointKind, _slot: u16) -> Result<Target, RouteError> {
        let table = self.table.read();
        let Some(g) = table.groups.get(group) else {
            return Err(RouteError::NoGroup(group.to_string()));
        };
        // Cluster mode disabled: one node group holds every slot.
        let Some(shard) = g.shards.first() else {
            return Err(RouteError::NoShard);
        };
        let to = |m: &Member, readonly| Target {
            node_id: m.node_id.clone(),
            address: m.address.clone(),
            config_epoch: shard.config_epoch,
            readonly,
            version: table.version,
        };
        if kind == EndpointKind::Reader {
            let synced: Vec<&Member> = shard.replicas.iter().filter(|m| m.in_sync).collect();
            if !synced.is_empty() {
                let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % synced.len();
                return Ok(to(synced[i], true));
            }
            // No replica to read from: like ElastiCache's reader endpoint, fall back to the primary.
            if let Some(p) = &shard.primary {
                return Ok(to(p, true));
            }
        } else if let Some(p) = &shard.primary {
            return Ok(to(p, false));
        }
        Err(RouteError::NoPrimary(group.to_string()))
    }

    fn link(&self, target: &Target) -> Arc<NodeLink> {
        let mut links = self.links.lock();
        if let Some(l) = links.get(&target.node_id) {
            if l.address == target.address {
                return l.clone();
            }
            l.close();
        }
        let link = NodeLink::spawn(target.node_id.clone(), target.address.clone(), self.cancel.child_token());
        links.insert(target.node_id.clone(), link.clone());
        link
    }

    /// Sends a command to its node; the reply arrives on the returned receiver.
    pub async fn send(&self, target: Target, slot: u16, args: Vec<Bytes>) -> oneshot::Receiver<Reply> {
        let (tx, rx) = oneshot::channel();
        let link = self.link(&target);
        link.send(Pending {
            args,
            slot: slot as u32,
            config_epoch: target.config_epoch,
            readonly: target.readonly,
            reply: tx,
        })
        .await;
        rx
    }
}
