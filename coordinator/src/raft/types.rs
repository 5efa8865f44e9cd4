//! The Raft type configuration: log entries carry topology [`Change`]s and produce
//! [`Outcome`]s; nodes are coordinators addressed by `host:port`.

use std::io::Cursor;

use crate::topology::{Change, Outcome};

openraft::declare_raft_types!(
    /// Ferrocache coordinator's Raft types.
    pub TypeConfig:
        D = Change,
        R = Outcome,
);

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
