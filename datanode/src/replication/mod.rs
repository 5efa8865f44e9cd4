//! Replication between the nodes of one node group.
//!
//! ```text
//!  primary node                               replica node
//!  apply batch -> effects -> Backlog ──Sync stream (gRPC)──▶ Follower applies in order
//!                      ▲                                   │
//!                      └──────────── acks (offsets) ◀──────┘
//! ```
//! `source` serves the stream on the primary's datanode; `follower` is the replica's loop.

pub mod backlog;
pub mod follower;
pub mod source;
