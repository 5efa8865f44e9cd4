//! The nodes this datanode hosts, reconciled with the coordinator's assignments.

use std::collections::HashMap;
use std::sync::Arc;

use ferrocache_proto::internal::v1 as pb;
use parking_lot::RwLock;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::DatanodeConfig;
use crate::durability::Durability;
use crate::node::{AppendFsync, Node, NodeSpec, Role};
use crate::replication::follower::Follower;
use crate::snapshot::{self, Snapshots};
use crate::storage::files::NodeFiles;
use crate::storage::writer::CompactionPolicy;
use crate::storage::StoreError;

pub struct Host {
    pub config: DatanodeConfig,
    /// Data left by versions that stored nodes in sled (imported on first open).
    pub db: Option<sled::Db>,
    pub cancel: CancellationToken,
    pub tracker: TaskTracker,
    /// Wakes the heartbeat early (a request showed our configuration is behind).
    pub refresh: tokio::sync::Notify,
    pub snapshots: Arc<Snapshots>,
    /// Nodes being restored from a snapshot (not serving yet).
    restoring: parking_lot::Mutex<std::collections::HashSet<String>>,
    nodes: RwLock<HashMap<String, Arc<Node>>>,
    /// The coordinators' assignments were applied at least once since start.
    assigned: std::sync::atomic::AtomicBool,
    /// When the runtime last ran its pulse task (ms after `started`): the heartbeat,
    /// on a thread of its own, stops when the runtime is wedged.
    runtime_ran_ms: std::sync::atomic::AtomicU64,
    started: std::time::Instant,
}

impl Host {
    pub fn new(config: DatanodeConfig, db: Option<sled::Db>, cancel: CancellationToken) -> Host {
        let snapshots = Arc::new(Snapshots::new(config.data_dir.join("snapshots")));
        Host {
            config,
            db,
            cancel,
            tracker: TaskTracker::new(),
            refresh: tokio::sync::Notify::new(),
            snapshots,
            restoring: parking_lot::Mutex::new(std::collections::HashSet::new()),
            nodes: RwLock::new(HashMap::new()),
            assigned: std::sync::atomic::AtomicBool::new(false),
            runtime_ran_ms: std::sync::atomic::AtomicU64::new(0),
            started: std::time::Instant::now(),
        }
    }

    /// Marks the datanode's runtime as running (its pulse task, every 100 ms).
    pub fn runtime_ran(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.runtime_ran_ms.store(now, std::sync::atomic::Ordering::Relaxed);
    }

    /// How long the runtime has gone without running its pulse task.
    pub fn runtime_stalled_for(&self) -> std::time::Duration {
        let ran = self.runtime_ran_ms.load(std::sync::atomic::Ordering::Relaxed);
        self.started.elapsed().saturating_sub(std::time::Duration::from_millis(ran))
    }

    /// Ready to serve (what gRPC health reports): it has loaded what the coordinators assign
    /// it, and no node is restoring a snapshot or in a full sync.
    pub fn ready(&self) -> bool {
        self.assigned.load(std::sync::atomic::Ordering::Relaxed)
            && self.restoring.lock().is_empty()
            && self.nodes().iter().all(|n| !n.try_with_state(|st| st.full_syncing).unwrap_or(false))
    }

    pub fn node(&self, id: &str) -> Option<Arc<Node>> {
        self.nodes.read().get(id).cloned()
    }

    pub fn nodes(&self) -> Vec<Arc<Node>> {
        self.nodes.read().values().cloned().collect()
    }

    /// Makes the hosted nodes match the coordinator's assignments: opens new nodes, changes
    /// roles, and drops (and deletes the data of) nodes no longer assigned here.
    pub fn reconcile(self: &Arc<Self>, assignments: &[pb::NodeAssignment]) -> Result<(), StoreError> {
        self.reconcile_nodes(assignments)?;
        self.assigned.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn reconcile_nodes(self: &Arc<Self>, assignments: &[pb::NodeAssignment]) -> Result<(), StoreError> {
        for a in assignments {
            let role = if a.role == pb::Role::Primary as i32 {
                Role::Primary
            } else {
                Role::Replica { primary_node_id: a.primary_node_id.clone(), primary_address: a.primary_address.clone() }
            };
            let existing = self.node(&a.node_id);
            match existing {
                Some(node) => {
                    let changed = node.with_state(|st| st.role != role || st.config_epoch != a.config_epoch);
                    if changed {
                        tracing::info!(node = %node.id, ?role, epoch = a.config_epoch, "role changed");
                        // A promoted node answers its first write under the group's settings.
                        node.set_settings(Durability::from_assignment(a), a.pause_writes);
                        node.set_role(role.clone(), a.config_epoch);
                        self.start_follower(&node, &role);
                    }
                }
                None if self.restoring.lock().contains(&a.node_id) => continue,
                None => {
                    let files = Arc::new(NodeFiles::open(&self.config.data_dir.join("nodes"), &a.node_id)?);
                    if let Some(db) = self.db.as_ref().filter(|_| files.is_empty().unwrap_or(false)) {
                        crate::storage::legacy::import(db, &a.node_id, &files)?;
                    }
                    let spec = NodeSpec {
                        id: a.node_id.clone(),
                        group_id: a.replication_group_id.clone(),
                        node_group_id: a.node_group_id.clone(),
                        role: role.clone(),
                        config_epoch: a.config_epoch,
                        fsync: AppendFsync::parse(&a.append_fsync),
                        backlog_bytes: self.config.repl_backlog_bytes,
                        max_string: self.config.proto_max_bulk_len,
                        compaction: CompactionPolicy::new(self.config.log_compaction_min_bytes),
                    };
                    let node = Arc::new(Node::open(spec, files)?);
                    let fresh = node.with_state(|st| st.dbs.is_empty() && st.position.offset == 0);
                    if let Some(restore) = a.restore.clone().filter(|_| fresh) {
                        node.set_settings(Durability::from_assignment(a), a.pause_writes);
                        node.set_parameters(&a.parameters.clone().into_iter().collect());
                        self.restore(node, restore);
                        continue;
                    }
                    tracing::info!(node = %node.id, group = %node.group_id, ?role, keys = node.with_state(|st| st.dbs.len()), "hosting node");
                    // Before it serves: no write is answered under the default settings.
                    node.set_settings(Durability::from_assignment(a), a.pause_writes);
                    self.nodes.write().insert(a.node_id.clone(), node.clone());
                    self.start_follower(&node, &role);
                }
            }
            if let Some(node) = self.node(&a.node_id) {
                let ranges = |rs: &[pb::SlotRange]| {
                    ferrocache_common::slot::SlotSet::from_ranges(
                        rs.iter().map(|r| (r.start.min(u16::MAX as u32) as u16, r.end.min(u16::MAX as u32) as u16)),
                    )
                };
                node.set_slots(ranges(&a.slots), ranges(&a.migrating_slots));
                node.set_settings(Durability::from_assignment(a), a.pause_writes);
                node.set_parameters(&a.parameters.clone().into_iter().collect());
            }
        }
        let gone: Vec<Arc<Node>> = {
            let mut nodes = self.nodes.write();
            let stale: Vec<String> =
                nodes.keys().filter(|id| !assignments.iter().any(|a| &a.node_id == *id)).cloned().collect();
            stale.iter().filter_map(|id| nodes.remove(id)).collect()
        };
        for node in gone {
            tracing::info!(node = %node.id, group = %node.group_id, "node removed; deleting its data");
            node.cancel.lock().cancel();
            node.sync_store()?;
            node.stop_preallocating();
            node.files().destroy()?;
        }
        Ok(())
    }

    /// Loads a new primary from a snapshot before it serves (commands meanwhile get
    /// `TRYAGAIN`, which gateways retry); a failure is retried at the next heartbeat.
    fn restore(self: &Arc<Self>, node: Arc<Node>, from: pb::RestoreFrom) {
        self.restoring.lock().insert(node.id.clone());
        let host = self.clone();
        self.tracker.spawn(async move {
            let name = from.snapshot_name.clone();
            tracing::info!(node = %node.id, snapshot = %name, from = %from.datanode_address, "restoring from snapshot");
            let loaded = match host.snapshots.read_local(&name) {
                Ok(data) => Ok(data),
                Err(_) => snapshot::fetch(&from.datanode_address, &name).await,
            };
            let entries = loaded.and_then(|data| snapshot::file::parse(&data).map_err(|e| e.to_string()));
            match entries {
                Ok(entries) => {
                    let now = ferrocache_common::time::now_ms();
                    let entries: Vec<crate::databases::DbEntry> =
                        entries.into_iter().filter(|(_, _, e)| !e.is_expired(now)).collect();
                    let keys = entries.len();
                    let position = node.with_state(|st| st.position.clone());
                    let installing = node.clone();
                    let installed =
                        tokio::task::spawn_blocking(move || installing.install_full_sync(entries, position, None))
                            .await;
                    match installed.unwrap_or(Err(StoreError::WriterGone)) {
                        Ok(()) => {
                            tracing::info!(node = %node.id, snapshot = %name, keys, "restored from snapshot");
                            host.nodes.write().insert(node.id.clone(), node.clone());
                        }
                        Err(e) => tracing::error!(node = %node.id, snapshot = %name, "restore failed: {e}"),
                    }
                }
                Err(e) => tracing::error!(node = %node.id, snapshot = %name, "restore failed (retrying): {e}"),
            }
            host.restoring.lock().remove(&node.id);
        });
    }

    fn start_follower(&self, node: &Arc<Node>, role: &Role) {
        let token = self.cancel.child_token();
        let old = std::mem::replace(&mut *node.cancel.lock(), token.clone());
        old.cancel();
        if let Role::Replica { primary_node_id, primary_address } = role {
            let follower = Follower {
                node: node.clone(),
                primary_node_id: primary_node_id.clone(),
                primary_address: primary_address.clone(),
            };
            self.tracker.spawn(follower.run(token));
        }
    }
}
