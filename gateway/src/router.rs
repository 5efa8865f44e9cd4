//! Routing: the latest topology from the coordinators, turned into "which node serves this
//! command", and the links to those nodes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use ferrocache_common::Reply;
use ferrocache_proto::internal::v1 as pb;
use parking_lot::{Mutex, RwLock};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::link::{NodeLink, Pending};
use crate::request::Request;

/// Which endpoint of a group a client connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    /// Everything goes to the primary (in cluster mode: of the key's node group; the
    /// gateway splits and fans out what spans several).
    Primary,
    /// Reads are spread over in-sync replicas; writes are refused.
    Reader,
    /// Cluster mode: one member presented as a Redis Cluster node (MOVED, ASK, CROSSSLOT).
    Node,
}

#[derive(Debug, Clone)]
pub struct Member {
    /// Shared with every [`Target`] picked from it: routing a command copies no string.
    pub node_id: Arc<str>,
    pub address: Arc<str>,
    pub in_sync: bool,
    /// Cluster mode: the gateway port presenting this member as a cluster node.
    pub port: u16,
}

#[derive(Debug, Clone)]
pub struct Shard {
    pub id: String,
    pub config_epoch: u64,
    /// Inclusive slot ranges this node group owns.
    pub slots: Vec<(u16, u16)>,
    pub primary: Option<Member>,
    pub replicas: Vec<Member>,
}

impl Shard {
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.primary.iter().chain(self.replicas.iter())
    }
}

/// No node group owns the slot (only while a group is being changed).
const UNOWNED: u16 = u16::MAX;

fn fill(owners: &mut [u16], ranges: &[(u16, u16)], owner: u16) {
    for &(a, b) in ranges {
        let end = (b as usize).min(owners.len().saturating_sub(1));
        if let Some(span) = owners.get_mut(a as usize..=end) {
            span.fill(owner);
        }
    }
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
    pub cluster_enabled: bool,
    pub configuration_port: u16,
    /// Who may connect and what each may do.
    pub acl: Arc<crate::acl::Acl>,
    /// TLS on the endpoints.
    pub transit_encryption: crate::tls::TransitEncryption,
    /// Index in `shards` of each slot's owner (shared with the previous table while the
    /// slots do not change).
    owners: Arc<Vec<u16>>,
}

impl Group {
    /// The node group owning `slot`.
    pub fn shard_of(&self, slot: u16) -> Option<(usize, &Shard)> {
        let i = *self.owners.get(slot as usize)?;
        self.shards.get(i as usize).map(|s| (i as usize, s))
    }

    /// Whether two tables share one slot index for this group (it was not rebuilt).
    pub fn shares_slot_index(&self, other: &Group) -> bool {
        Arc::ptr_eq(&self.owners, &other.owners)
    }

    /// The member presented on a cluster node `port`, with its node group.
    pub fn member_at(&self, port: u16) -> Option<(usize, &Shard, &Member)> {
        self.shards.iter().enumerate().find_map(|(i, s)| s.members().find(|m| m.port == port).map(|m| (i, s, m)))
    }

    /// Indexes the slots' owners. With the group's previous table at hand, only what changed
    /// is touched: unchanged slots share the previous index, and a slot move rewrites just
    /// the moved slots (the topology is resent every few seconds, and a 500-node-group group
    /// should cost nothing when nothing moved).
    fn index_slots(&mut self, previous: Option<&Group>) {
        let same_order = previous.filter(|p| {
            p.shards.len() == self.shards.len() && p.shards.iter().zip(&self.shards).all(|(a, b)| a.id == b.id)
        });
        let Some(p) = same_order else {
            let mut owners = vec![UNOWNED; ferrocache_common::slot::SLOT_COUNT as usize];
            for (i, s) in self.shards.iter().enumerate() {
                fill(&mut owners, &s.slots, i as u16);
            }
            self.owners = Arc::new(owners);
            return;
        };
        let changed: Vec<usize> =
            (0..self.shards.len()).filter(|&i| p.shards[i].slots != self.shards[i].slots).collect();
        if changed.is_empty() {
            self.owners = p.owners.clone();
            return;
        }
        let mut owners = (*p.owners).clone();
        for &i in &changed {
            fill(&mut owners, &p.shards[i].slots, UNOWNED);
        }
        for &i in &changed {
            fill(&mut owners, &self.shards[i].slots, i as u16);
        }
        self.owners = Arc::new(owners);
    }
}

#[derive(Debug, Default)]
pub struct Table {
    pub version: u64,
    pub groups: HashMap<String, Group>,
    /// Hosts of the gateways reporting now, ordered by gateway id (cluster clients are told
    /// of node group i at host i mod n).
    pub gateway_hosts: Vec<String>,
}

impl Table {
    pub fn from_proto(t: pb::Topology) -> Table {
        Table::from_proto_after(t, None)
    }

    /// The table for topology `t`, reusing what `previous` already indexed.
    pub fn from_proto_after(t: pb::Topology, previous: Option<&Table>) -> Table {
        let groups = t
            .groups
            .into_iter()
            .map(|g| {
                let shards = g
                    .node_groups
                    .into_iter()
                    .map(|s| {
                        let member = |m: &pb::MemberRoute| Member {
                            node_id: m.node_id.as_str().into(),
                            address: m.datanode_address.as_str().into(),
                            in_sync: m.in_sync,
                            port: m.port.min(u16::MAX as u32) as u16,
                        };
                        Shard {
                            id: s.node_group_id.clone(),
                            config_epoch: s.config_epoch,
                            slots: s
                                .slots
                                .iter()
                                .map(|r| (r.start.min(u16::MAX as u32) as u16, r.end.min(u16::MAX as u32) as u16))
                                .collect(),
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
                let mut group = Group {
                    id: g.replication_group_id.clone(),
                    status: g.status,
                    primary_port: g.primary_port as u16,
                    reader_port: g.reader_port as u16,
                    shards,
                    parameters: g.parameters.into_iter().collect(),
                    cluster_enabled: g.cluster_enabled,
                    configuration_port: g.configuration_port.min(u16::MAX as u32) as u16,
                    transit_encryption: crate::tls::TransitEncryption::from_proto(&g.transit_encryption),
                    acl: crate::acl::Acl::from_proto(
                        g.acl_users,
                        previous.and_then(|p| p.groups.get(&g.replication_group_id)).map(|p| &p.acl),
                    ),
                    owners: Arc::default(),
                };
                group.index_slots(previous.and_then(|p| p.groups.get(&group.id)));
                (g.replication_group_id, group)
            })
            .collect();
        Table { version: t.version, groups, gateway_hosts: t.gateways.into_iter().map(|g| g.announce_host).collect() }
    }
}

pub struct Router {
    table: RwLock<Arc<Table>>,
    /// The table's version, for waiters that need newer routes.
    version: tokio::sync::watch::Sender<u64>,
    /// The same, for the per-command check of a [`RouteCache`] (one atomic load).
    current: AtomicU64,
    links: Mutex<HashMap<String, Arc<NodeLink>>>,
    next_reader: AtomicUsize,
    cancel: CancellationToken,
}

/// Why a command has nowhere to go.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouteError {
    #[error("CLUSTERDOWN replication group '{0}' does not exist")]
    NoGroup(String),
    #[error("CLUSTERDOWN Hash slot not served")]
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
    pub node_id: Arc<str>,
    pub address: Arc<str>,
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
            current: AtomicU64::new(0),
            links: Mutex::new(HashMap::new()),
            next_reader: AtomicUsize::new(0),
            cancel,
        }
    }

    pub fn table(&self) -> Arc<Table> {
        self.table.read().clone()
    }

    /// The current table's version (cheaper than [`Router::table`]).
    pub fn version(&self) -> u64 {
        self.current.load(Ordering::Acquire)
    }

    pub fn set_table(&self, table: Table) {
        // Links to nodes that moved or vanished are closed; new ones open on first use.
        let live: HashMap<&str, &str> = table
            .groups
            .values()
            .flat_map(|g| g.shards.iter())
            .flat_map(|s| s.primary.iter().chain(s.replicas.iter()))
            .map(|m| (&*m.node_id, &*m.address))
            .collect();
        self.links.lock().retain(|id, link| {
            let keep = live.get(id.as_str()) == Some(&link.address.as_str());
            if !keep {
                link.retire();
            }
            keep
        });
        let version = table.version;
        *self.table.write() = Arc::new(table);
        self.current.store(version, Ordering::Release);
        self.version.send_replace(version);
    }

    /// Waits until the routes are newer than `version`, or `max` passes.
    pub async fn changed_since(&self, version: u64, max: std::time::Duration) {
        let mut rx = self.version.subscribe();
        let _ = tokio::time::timeout(max, rx.wait_for(|v| *v > version)).await;
    }

    /// Picks the node for a command on `group`'s endpoint: the node group owning `slot`
    /// (the first node group for commands without keys).
    pub fn target(&self, group: &str, kind: EndpointKind, slot: Option<u16>) -> Result<Target, RouteError> {
        let table = self.table.read();
        let Some(g) = table.groups.get(group) else {
            return Err(RouteError::NoGroup(group.to_string()));
        };
        let shard = match slot {
            Some(slot) => g.shard_of(slot).map(|(_, s)| s),
            None => g.shards.first(),
        };
        let Some(shard) = shard else {
            return Err(RouteError::NoShard);
        };
        self.pick(&table, group, shard, kind, None)
    }

    /// Picks the node of node group `index` (fan-out over every node group), or, for a
    /// cluster node endpoint, the member `node_id` itself when `kind` is Reader.
    pub fn target_shard(
        &self,
        group: &str,
        index: usize,
        kind: EndpointKind,
        member: Option<&str>,
    ) -> Result<Target, RouteError> {
        let table = self.table.read();
        let Some(g) = table.groups.get(group) else {
            return Err(RouteError::NoGroup(group.to_string()));
        };
        let Some(shard) = g.shards.get(index) else {
            return Err(RouteError::NoShard);
        };
        self.pick(&table, group, shard, kind, member)
    }

    fn pick(
        &self,
        table: &Table,
        group: &str,
        shard: &Shard,
        kind: EndpointKind,
        member: Option<&str>,
    ) -> Result<Target, RouteError> {
        let to = |m: &Member, readonly| Target {
            node_id: m.node_id.clone(),
            address: m.address.clone(),
            config_epoch: shard.config_epoch,
            readonly,
            version: table.version,
        };
        if let Some(m) = member.and_then(|id| shard.replicas.iter().find(|m| &*m.node_id == id)) {
            if kind == EndpointKind::Reader {
                return Ok(to(m, true));
            }
        }
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
        if let Some(l) = links.get(&*target.node_id) {
            if *l.address == *target.address {
                return l.clone();
            }
            l.close();
        }
        let link = NodeLink::spawn(target.node_id.to_string(), target.address.to_string(), self.cancel.child_token());
        links.insert(target.node_id.to_string(), link.clone());
        link
    }

    /// Whether the node refused writes that grow memory when it last replied here.
    pub fn out_of_memory(&self, target: &Target) -> bool {
        self.link(target).out_of_memory()
    }

    /// How far the node's CLIENT TRACKING feed was as of its newest replies here.
    pub fn feed_mark(&self, target: &Target) -> ferrocache_common::tracking_feed::FeedMark {
        self.link(target).feed_mark()
    }

    /// Sends a command to its node; the reply arrives on the returned receiver. `slot` is
    /// the slot of every key it has (None: it has none).
    pub async fn send(&self, target: Target, slot: Option<u16>, request: Request) -> oneshot::Receiver<Reply> {
        let routed = Routed {
            link: self.link(&target),
            config_epoch: target.config_epoch,
            readonly: target.readonly,
            version: target.version,
            kind: EndpointKind::Primary,
            reusable: false,
        };
        routed.send(slot, request).await
    }

    /// [`Router::target`] through a connection's cache: the route of its previous command
    /// when the table has not changed since and the group has a single node group (every
    /// slot goes to the same node), else picked and linked as usual.
    pub fn route<'c>(
        &self,
        cache: &'c mut RouteCache,
        group: &str,
        kind: EndpointKind,
        slot: Option<u16>,
    ) -> Result<&'c Routed, RouteError> {
        let version = self.version();
        let hit = cache.0.as_ref().is_some_and(|r| r.reusable && r.version == version && r.kind == kind);
        if !hit {
            let (target, single) = {
                let table = self.table.read();
                let single = table.groups.get(group).is_some_and(|g| g.shards.len() == 1);
                drop(table);
                (self.target(group, kind, slot)?, single)
            };
            cache.0 = Some(Routed {
                link: self.link(&target),
                config_epoch: target.config_epoch,
                readonly: target.readonly,
                version: target.version,
                kind,
                // A reader endpoint spreads each command over the in-sync replicas.
                reusable: single && kind != EndpointKind::Reader,
            });
        }
        cache.0.as_ref().ok_or(RouteError::NoShard)
    }
}

/// A connection's last route (see [`Router::route`]): under pipelined GETs, looking the
/// group up in the table, the node's link up in the link map (two locks, two SipHashes)
/// and copying the target cost ~5 % of the gateway per command.
#[derive(Default)]
pub struct RouteCache(Option<Routed>);

/// Where a command goes, with the link that takes it there.
pub struct Routed {
    link: Arc<NodeLink>,
    pub config_epoch: u64,
    pub readonly: bool,
    /// The routing table's version this choice came from.
    pub version: u64,
    kind: EndpointKind,
    /// It may serve the connection's next command too.
    reusable: bool,
}

impl Routed {
    /// Sends a command on this route; the reply arrives on the returned receiver. `slot`
    /// is the slot of every key it has (None: it has none).
    pub async fn send(&self, slot: Option<u16>, request: Request) -> oneshot::Receiver<Reply> {
        let (tx, rx) = oneshot::channel();
        self.link
            .send(Pending {
                request,
                keyed: slot.is_some(),
                slot: slot.unwrap_or(0) as u32,
                config_epoch: self.config_epoch,
                readonly: self.readonly,
                reply: tx,
            })
            .await;
        rx
    }
}
