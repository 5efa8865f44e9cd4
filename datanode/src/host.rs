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
use crate::storage::{SledStore, Store, StoreError};

pub struct Host {
    pub config: DatanodeConfig,
    pub db: sled::Db,
    pub cancel: CancellationToken,
    pub tracker: TaskTracker,
    /// Wakes the heartbeat early (a request showed our configuration is behind).
    pub refresh: tokio::sync::Notify,
    nodes: RwLock<HashMap<String, Arc<Node>>>,
}

impl Host {
    pub fn new(config: DatanodeConfig, db: sled::Db, cancel: CancellationToken) -> Host {
        Host {
            config,
            db,
            cancel,
            tracker: TaskTracker::new(),
            refresh: tokio::sync::Notify::new(),
            nodes: RwLock::new(HashMap::new()),
        }
    }

    pub fn node(&self, id: &str) -> Option<Arc<Node>> {
        self.nodes.read().get(id).cloned()
    }

    pub fn nodes(&self) -> Vec<Arc<Node>> {
        self.nodes.read().values().cloned().collect()
    }

    /// Makes the hosted nodes match the coordinator's assignments: opens new nodes, changes
    /// roles, and drops (and deletes the data of) nodes no longer assigned here.
    pub fn reconcile(&self, assignments: &[pb::NodeAssignment]) -> Result<(), StoreError> {
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
                        node.set_role(role.clone(), a.config_epoch);
                        self.start_follower(&node, &role);
                    }
                }
                None => {
                    let store: Arc<dyn Store> = Arc::new(SledStore::open(&self.db, &a.node_id)?);
                    let spec = NodeSpec {
                        id: a.node_id.clone(),
                        group_id: a.replication_group_id.clone(),
                        node_group_id: a.node_group_id.clone(),
                        role: role.clone(),
                        config_epoch: a.config_epoch,
                        fsync: AppendFsync::parse(&a.append_fsync),
                        backlog_bytes: self.config.repl_backlog_bytes,
                        max_string: self.config.proto_max_bulk_len,
                    };
                    let node = Arc::new(Node::open(spec, store)?);
                    tracing::info!(node = %node.id, group = %node.group_id, ?role, keys = node.with_state(|st| st.ks.len()), "hosting node");
                    self.nodes.write().insert(a.node_id.clone(), node.clone());
                    self.start_follower(&node, &role);
                }
            }
            if let Some(node) = self.node(&a.node_id) {
                node.set_settings(Durability::from_assignment(a), a.pause_writes);
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
            node.store().destroy()?;
        }
        Ok(())
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
