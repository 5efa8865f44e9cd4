//! The Raft state machine: the [`Topology`], persisted in sled after every applied batch
//! together with the last applied log id and membership, so a restarted coordinator starts
//! from where it was. Snapshots are the same JSON document.
//!
//! Every applied change is published on a `watch` channel: topology watchers (gateways) and
//! the admin service read the latest committed topology from it without locking.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{BasicNode, EntryPayload, LogId, OptionalSend, StorageIOError, StoredMembership};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::types::{Entry, NodeId, StorageError, TypeConfig};
use crate::topology::{Outcome, Topology};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Applied {
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, BasicNode>,
    pub topology: Topology,
}

/// The committed topology and the log index it reflects.
#[derive(Debug, Clone, Default)]
pub struct Published {
    pub index: u64,
    pub topology: Arc<Topology>,
}

#[derive(Clone)]
pub struct StateMachine {
    db: sled::Db,
    tree: sled::Tree,
    state: Arc<tokio::sync::Mutex<Applied>>,
    publish: Arc<watch::Sender<Published>>,
    current: Arc<tokio::sync::Mutex<Option<StoredSnapshot>>>,
}

/// The last snapshot built or installed, kept in sled beside the state.
#[derive(Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

fn sm_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_state_machine(&e).into()
}

impl StateMachine {
    pub fn open(db: &sled::Db) -> Result<StateMachine, Box<dyn std::error::Error + Send + Sync>> {
        let tree = db.open_tree("state_machine")?;
        let applied: Applied = match tree.get("applied")? {
            Some(v) => serde_json::from_slice(&v)?,
            None => Applied::default(),
        };
        let published = Published {
            index: applied.last_applied.map_or(0, |l| l.index),
            topology: Arc::new(applied.topology.clone()),
        };
        let current: Option<StoredSnapshot> = match tree.get("snapshot")? {
            Some(v) => Some(serde_json::from_slice(&v)?),
            None => None,
        };
        Ok(StateMachine {
            current: Arc::new(tokio::sync::Mutex::new(current)),
            db: db.clone(),
            tree,
            state: Arc::new(tokio::sync::Mutex::new(applied)),
            publish: Arc::new(watch::channel(published).0),
        })
    }

    pub fn subscribe(&self) -> watch::Receiver<Published> {
        self.publish.subscribe()
    }

    async fn keep_snapshot(&self, snapshot: StoredSnapshot) -> Result<(), StorageError> {
        self.tree.insert("snapshot", serde_json::to_vec(&snapshot).map_err(sm_err)?).map_err(sm_err)?;
        *self.current.lock().await = Some(snapshot);
        Ok(())
    }

    async fn persist(&self, applied: &Applied) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(applied).map_err(sm_err)?;
        self.tree.insert("applied", bytes).map_err(sm_err)?;
        self.db.flush_async().await.map_err(sm_err)?;
        self.publish.send_replace(Published {
            index: applied.last_applied.map_or(0, |l| l.index),
            topology: Arc::new(applied.topology.clone()),
        });
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (data, meta) = {
            let state = self.state.lock().await;
            let data = serde_json::to_vec(&*state).map_err(sm_err)?;
            let meta = SnapshotMeta {
                last_log_id: state.last_applied,
                last_membership: state.membership.clone(),
                snapshot_id: format!("{}-{}", state.last_applied.map_or(0, |l| l.index), rand_suffix()),
            };
            (data, meta)
        };
        self.keep_snapshot(StoredSnapshot { meta: meta.clone(), data: data.clone() }).await?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError> {
        let state = self.state.lock().await;
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut state = self.state.lock().await;
        let mut outcomes = Vec::new();
        for entry in entries {
            state.last_applied = Some(entry.log_id);
            outcomes.push(match entry.payload {
                EntryPayload::Blank => Outcome::Ok,
                EntryPayload::Normal(change) => state.topology.apply(change),
                EntryPayload::Membership(m) => {
                    state.membership = StoredMembership::new(Some(entry.log_id), m);
                    Outcome::Ok
                }
            });
        }
        self.persist(&state).await?;
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let mut applied: Applied = serde_json::from_slice(snapshot.get_ref()).map_err(sm_err)?;
        applied.last_applied = meta.last_log_id;
        applied.membership = meta.last_membership.clone();
        {
            let mut state = self.state.lock().await;
            *state = applied;
            self.persist(&state).await?;
        }
        self.keep_snapshot(StoredSnapshot { meta: meta.clone(), data: snapshot.into_inner() }).await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self
            .current
            .lock()
            .await
            .clone()
            .map(|s| Snapshot { meta: s.meta, snapshot: Box::new(Cursor::new(s.data)) }))
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
